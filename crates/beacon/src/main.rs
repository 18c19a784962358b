//! `beacon`: the one binary. It parses the command line and wires the library crates
//! together; it holds no telemetry, storage or HTTP logic of its own.

mod broker_cmd;
mod collector_cmd;
mod demo_cmd;
mod node_config;
mod progress;
mod signals;
mod telemetry_cmd;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// jemalloc rather than the system's: glibc's malloc and free were a fifth of the
/// collector's CPU under load; with jemalloc it takes in 3-28% more reports per second
/// (SQLite least, parse-and-discard most) at the same peak RSS (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

/// Beacon's own lines, and only warnings from dependencies: at `info` rmqtt prints its
/// plugins' whole configuration on every start. A target matches by prefix, so `beacon`
/// covers every `beacon_*` crate too.
const DEFAULT_LOG: &str = "warn,beacon=info";

/// `BEACON_LOG`, else `RUST_LOG`, else [`DEFAULT_LOG`]; a filter that does not parse is
/// named on stderr and the default used.
fn log_filter() -> EnvFilter {
    let Some((variable, directives)) = ["BEACON_LOG", "RUST_LOG"].into_iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .map(|value| (name, value))
    }) else {
        return EnvFilter::new(DEFAULT_LOG);
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("{variable}={directives:?} is not a log filter ({e}); using {DEFAULT_LOG:?}");
        EnvFilter::new(DEFAULT_LOG)
    })
}

fn init_logging() {
    let filter = log_filter();
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
