//! `beacon collector`: opens the store, binds the collector service, announces where it
//! listens on stdout (first line: ingest, which scripts and tests parse for the port;
//! second line: the console) and serves until SIGINT or SIGTERM. The private side (the
//! console, its data API and `/metrics`) listens on `--console-listen`, loopback by
//! default; only `--console-on-ingest` puts it beside ingest. The console's admins are
//! managed with `beacon collector user`; reports carried from air-gapped sites are
//! stored with `beacon collector import` or the console's "Import reports" form.

mod import;
mod users;

pub use import::ConsoleImport;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use beacon_collector::{
    Collector, CollectorConfig, ConnectionLimits, DEFAULT_RETENTION_DAYS, IngestMode, RateLimit,
    TlsFiles,
};

use crate::progress::Progress;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Subcommand>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Fill a database with a year of realistic synthetic reports (demos, benchmarks).
    SeedDemoData(SeedArgs),
    /// Manage the console's admin users (kept in the collector database).
    User(users::Args),
    /// Store reports received another way (exported from air-gapped nodes): JSON or
    /// NDJSON files, gzip accepted, through the same checks as ingest.
    Import(import::Args),
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// Storage to fill: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "BEACON_COLLECTOR_DB", default_value = beacon_store::DEFAULT_URL)]
    db: String,
    /// How many reports to generate.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    reports: usize,
    /// Random seed: the same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on. Loopback by default; use 0.0.0.0:PORT to accept reports from
    /// the network, port 0 for any free port (the line printed at start says which).
    #[arg(
        long,
        env = "BEACON_COLLECTOR_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// Storage: sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(long, env = "BEACON_COLLECTOR_DB", default_value = beacon_store::DEFAULT_URL)]
    db: String,
    /// PEM certificate chain: serve HTTPS instead of HTTP (needs --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Ingest requests allowed per source IP per minute (also the burst); 0 disables.
    #[arg(long, value_name = "N", default_value_t = RateLimit::DEFAULT_PER_MINUTE)]
    rate_limit_per_minute: u32,
    /// Delete raw reports older than this many days (daily, and at start); aggregate
    /// counters remain. 0 keeps raw reports forever.
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_RETENTION_DAYS)]
    retention_days: u32,
    /// Address of the private side: the console, its data API and /metrics. Loopback by
    /// default, so that they are not on the public network while ingest is. Same TLS
    /// setting and connection limits as ingest.
    #[arg(
        long,
        visible_alias = "dashboard-listen",
        env = "BEACON_COLLECTOR_CONSOLE_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:8081"
    )]
    console_listen: SocketAddr,
    /// Serve the console, its data API and /metrics beside ingest (on --listen) instead:
    /// wherever ingest is reachable, they are too. Logs a warning at start.
    #[arg(long, conflicts_with = "console_listen")]
    console_on_ingest: bool,
    #[command(flatten)]
    connections: ConnectionArgs,
    /// Validate reports and drop them instead of storing (benchmark baseline).
    #[arg(long, hide = true)]
    discard: bool,
}

/// Where the private side listens: its own address, unless asked for beside ingest.
fn private_listen(args: &ServeArgs) -> Option<SocketAddr> {
    if !args.console_on_ingest {
        return Some(args.console_listen);
    }
    tracing::warn!(
        listen = %args.listen,
        "--console-on-ingest: the console, its data API and /metrics are served wherever \
         ingest is reachable"
    );
    None
}

/// Timeouts and connection caps, the same on ingest and on the console's listener.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// Seconds a client has to send a request's headers, counted from accept (including
    /// the TLS handshake) or from the previous answer.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    header_read_timeout: u64,
    /// Seconds a kept-alive connection may stay silent after an answer before it is
    /// closed (the keep-alive idle timeout); at most --header-read-timeout in effect.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT_IDLE_TIMEOUT.as_secs())]
    idle_timeout: u64,
    /// Seconds a client has to send a request's whole body after its headers.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT_BODY_READ_TIMEOUT.as_secs())]
    body_read_timeout: u64,
    /// Connections open at once on each listener; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Connections open at once from one source IP on each listener; more are closed at
    /// once. The address is counted in memory only.
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,
}

impl ConnectionArgs {
    fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout),
            body_read_timeout: std::time::Duration::from_secs(self.body_read_timeout),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout),
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Some(Subcommand::SeedDemoData(seed)) => seed_demo_data(seed).await,
        Some(Subcommand::User(users)) => users::run(users).await,
        Some(Subcommand::Import(import)) => import::run(import).await,
        None => serve(args.serve).await,
    }
}

/// Closes the store of a collector that stopped serving. The writer counts what is left
/// when the store is dropped, but on a thread (a task) the process would not wait for:
/// closed, the database left behind has an empty ingest log, every acknowledged report in
/// `reports` and the rollups, and no transaction cut off by the exit.
pub(crate) async fn close_store(store: &dyn beacon_store::ReportStore) {
    if let Err(error) = store.close().await {
        tracing::error!(%error, "counting the last reports failed; done at the next start");
    }
}

/// Generates a year of history ending today, in chunks, rollups included.
async fn seed_demo_data(args: SeedArgs) -> anyhow::Result<()> {
    let db_shown = beacon_store::redact_url(&args.db);
    let store = beacon_collector::open_store(&args.db)
        .await
        .with_context(|| format!("cannot open storage {db_shown}"))?;
    let today = chrono::Utc::now().date_naive();
    let progress = Progress::start("beacon collector: seeded", "reports", args.reports as u64);
    let reports = progress.count(beacon_seed::generate(args.reports, today, args.seed));
    let outcome = store
        .bulk_insert(Box::new(reports))
        .await
        .with_context(|| format!("cannot store the generated reports in {db_shown}"))?;
    store
        .close()
        .await
        .with_context(|| format!("cannot count the generated reports in {db_shown}"))?;
    let elapsed = progress.finish();
    let stored = outcome.inserted + outcome.replaced;
    println!(
        "beacon collector: seeded {stored} reports ({} inserted, {} replaced, {} refused) \
         into {db_shown} {}",
        outcome.inserted,
        outcome.replaced,
        outcome.refused,
        elapsed.with_rate(stored)
    );
    Ok(())
}

/// A start line saying how to make the console's first admin, while there is none: the
/// sign-in page alone would leave a new operator with no way in.
async fn first_admin_hint(store: &dyn beacon_store::Store, db_shown: &str) -> String {
    match store.user_names().await {
        Ok(names) if names.is_empty() => format!(
            "beacon collector console has no admin yet: create one with \
             `beacon collector user add NAME --db {db_shown}`\n"
        ),
        Ok(_) => String::new(),
        Err(error) => {
            tracing::warn!(%error, "cannot list the console's admins");
            String::new()
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let private = private_listen(&args);
    let db_shown = beacon_store::redact_url(&args.db);
    let store = beacon_collector::open_store(&args.db)
        .await
        .with_context(|| format!("cannot open storage {db_shown}"))?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let mode = if args.discard {
        IngestMode::Discard
    } else {
        IngestMode::Store
    };
    let config = CollectorConfig {
        listen: args.listen,
        tls,
        rate_limit: RateLimit::per_minute(args.rate_limit_per_minute),
        mode,
        retention_days: (args.retention_days > 0).then_some(args.retention_days),
        connections: args.connections.limits(),
    };
    let console_options = beacon_console::ConsoleOptions {
        secure_cookies: config.tls.is_some(),
        import: Some(Arc::new(ConsoleImport::new(store.clone()))),
        ..beacon_console::ConsoleOptions::default()
    };
    let console = beacon_console::router(Arc::clone(&store), console_options);
    let bound = Collector::bind_store(config, Arc::clone(&store))
        .await?
        .with_console(console, private)?;
    let console_url = bound.console_url().unwrap_or_else(|| bound.url());
    let discarding = if args.discard {
        ", discarding reports"
    } else {
        ""
    };
    // Watched before the start lines, which invite a SIGTERM.
    let stop = crate::signals::shutdown_signal();
    // Both lines in one write: a reader that stops after the first line (and closes the
    // pipe) must not make the second one fail.
    let start_lines = format!(
        "beacon collector listening on {} (storage: {db_shown}{discarding})\n\
         beacon collector console on {console_url}/console/\n{}",
        bound.url(),
        first_admin_hint(&*store, &db_shown).await
    );
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(start_lines.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write the start lines to stdout")?;
    drop(stdout);
    tracing::info!(url = %bound.url(), storage = %db_shown, ?mode, "collector started");
    let served = bound.serve(stop).await;
    close_store(&*store).await;
    served?;
    tracing::info!("collector stopped");
    Ok(())
}
