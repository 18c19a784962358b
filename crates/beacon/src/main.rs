//! `beacon`: the one binary. It parses the command line and wires the library crates
//! together; it holds no telemetry, storage or HTTP logic of its own.

mod broker_cmd;
mod collector_cmd;
mod demo_cmd;
mod node_config;
mod signals;
mod telemetry_cmd;

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
    /// Run the MQTT broker node, with telemetry and the dashboard.
    Broker(broker_cmd::Args),
    /// Run the telemetry collector: ingest endpoint, storage, health and metrics.
    Collector(collector_cmd::Args),
    /// Start a collector and a broker reporting to it, with clients moving the numbers.
    Demo(demo_cmd::Args),
    /// What telemetry does on this node: status, the next report, the reports sent.
    Telemetry(telemetry_cmd::Args),
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
            Command::Broker(args) => broker_cmd::run(args).await,
            Command::Collector(args) => collector_cmd::run(args).await,
            Command::Demo(args) => demo_cmd::run(args).await,
            Command::Telemetry(args) => telemetry_cmd::run(args).await,
        }
    })
}
