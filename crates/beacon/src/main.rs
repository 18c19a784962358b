//! `beacon`: the one binary. It parses the command line and wires the library crates
//! together; it holds no telemetry, storage or HTTP logic of its own.

mod collector_cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "beacon",
    version,
    about = "MQTT broker node with anonymous usage telemetry, and its collector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the telemetry collector: ingest endpoint, storage, health and metrics.
    Collector(collector_cmd::Args),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEACON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a person at a terminal: logs piped to files stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cli.command {
            Command::Collector(args) => collector_cmd::run(args).await,
        }
    })
}
