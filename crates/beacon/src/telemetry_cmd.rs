//! `beacon telemetry status|preview|sent|export|upload|forget`: what telemetry does on
//! this node, from the running broker's API (with the local key it leaves in its data
//! directory), or from the data directory itself when the broker is stopped.

mod airgap;

use std::io::Write;

use anyhow::Context;
use beacon_agent::{AgentSettings, Forgotten, SentRecord, TelemetryStatus};
use beacon_node::{LOCAL_API_FILE, LocalApi};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::node_config::{self, NodePaths};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    paths: NodePaths,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Whether telemetry is on, which source decided, the last and next reports.
    Status,
    /// The report that would be sent now (shown also while telemetry is off).
    Preview,
    /// The last reports sent from this node, with the collector's answers.
    Sent,
    /// Write the report that would be sent now to a file, for a node with no route to
    /// the collector (also while telemetry is off); nothing is sent.
    Export(airgap::ExportArgs),
    /// Send a file written by `export` to the collector, from any machine with a route.
    Upload(airgap::UploadArgs),
    /// Ask the collector to delete this node's reports (proved with the node's deletion
    /// secret), then start over with new ids: through a running broker's API (it switches
    /// at once, no restart), or in the data directory of a stopped one.
    Forget,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let source = Source::find(&args.paths).await;
    let (paths, json) = (&args.paths, args.json);
    let mut out = std::io::stdout().lock();
    match args.command {
        Command::Status => {
            let status = source.status(paths).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?;
            } else {
                write_status(&mut out, &status, &source)?;
            }
        }
        Command::Preview => {
            let report = source.preview(paths).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
        Command::Sent => {
            let records = source.sent(paths).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
            } else {
                write_sent(&mut out, &records)?;
            }
        }
        Command::Forget => forget(&mut out, paths, &source, json).await?,
        Command::Export(export) => {
            airgap::export(&mut out, paths, &source, export, json).await?;
        }
        Command::Upload(upload) => airgap::upload(&mut out, paths, upload, json).await?,
    }
    out.flush()?;
    Ok(())
}

async fn forget(
    out: &mut impl Write,
    paths: &NodePaths,
    source: &Source,
    json: bool,
) -> anyhow::Result<()> {
    let settings = AgentSettings::from_config(&paths.load()?, node_config::do_not_track())?;
    let forgotten: Forgotten = match source {
        Source::Running(_) => {
            source
                .request(Method::POST, "/api/v5/telemetry/forget")
                .await?
        }
        Source::Stopped => beacon_agent::forget(&settings, &paths.data_dir).await?,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&forgotten)?)?;
    } else {
        let what = if forgotten.collector_had_data {
            "deleted this node's reports"
        } else {
            "held no report of this node"
        };
        writeln!(out, "The collector at {} {what}.", settings.url)?;
        writeln!(
            out,
            "This node starts over: uuid {} replaces {}.",
            forgotten.new_uuid, forgotten.old_uuid
        )?;
    }
    Ok(())
}

/// Where the answers come from.
enum Source {
    Running(LocalApi),
    Stopped,
}

impl Source {
    /// The running node's API if its local key is there and it answers; else the files.
    async fn find(paths: &NodePaths) -> Self {
        let file = paths.data_dir.join(LOCAL_API_FILE);
        let Some(api) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str::<LocalApi>(&text).ok())
        else {
            return Self::Stopped;
        };
        let probe = Self::Running(api);
        match probe.get::<Value>("/api/v5/telemetry/status").await {
            Ok(_) => probe,
            Err(error) => {
                tracing::debug!(%error, "node not answering; reading its data directory");
                Self::Stopped
            }
        }
    }

    async fn status(&self, paths: &NodePaths) -> anyhow::Result<TelemetryStatus> {
        match self {
            Self::Running(_) => self.get("/api/v5/telemetry/status").await,
            Self::Stopped => Ok(beacon_agent::read_status(
                &paths.data_dir,
                &paths.load()?,
                node_config::do_not_track(),
            )?),
        }
    }

    async fn preview(&self, paths: &NodePaths) -> anyhow::Result<Value> {
        match self {
            Self::Running(_) => self.get("/api/v5/telemetry/data").await,
            Self::Stopped => Ok(serde_json::to_value(beacon_agent::read_preview(
                &paths.data_dir,
            ))?),
        }
    }

    async fn sent(&self, paths: &NodePaths) -> anyhow::Result<Vec<SentRecord>> {
        match self {
            Self::Running(_) => {
                let answer: SentAnswer = self.get("/api/v5/telemetry/sent").await?;
                Ok(answer.reports)
            }
            Self::Stopped => Ok(beacon_agent::read_sent_log(&paths.data_dir)?),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.request(Method::GET, path).await
    }

    async fn request<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        let Self::Running(api) = self else {
            anyhow::bail!("the node is not running");
        };
        let url = format!("{}{path}", api.url);
        // The node is local, and the request carries its API key: a proxy from the
        // environment must never see it.
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot build an HTTP client")?;
        let response = client
            .request(method, &url)
            .basic_auth(&api.key, Some(&api.secret))
            .send()
            .await
            .with_context(|| format!("cannot reach the node at {url}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("the node answered {status} to {url}: {body}");
        }
        response
            .json()
            .await
            .with_context(|| format!("unexpected answer from {url}"))
    }
}

#[derive(serde::Deserialize)]
struct SentAnswer {
    reports: Vec<SentRecord>,
}

fn write_status(
    out: &mut impl Write,
    status: &TelemetryStatus,
    source: &Source,
) -> std::io::Result<()> {
    let state = if status.enable { "enabled" } else { "disabled" };
    writeln!(out, "Telemetry:    {state} (decided by: {})", status.source)?;
    writeln!(out, "Collector:    {}", status.url)?;
    writeln!(
        out,
        "Schedule:     every {}, first report {} after start",
        status.interval, status.initial_delay
    )?;
    let never = || "never".to_owned();
    let last = status.last_report_at.map_or_else(never, |t| t.to_rfc3339());
    writeln!(out, "Last report:  {last}")?;
    let next = match (status.enable, status.next_report_at) {
        (false, _) => "none: telemetry is off".to_owned(),
        (true, Some(at)) => at.to_rfc3339(),
        (true, None) => "when the broker runs".to_owned(),
    };
    writeln!(out, "Next report:  {next}")?;
    if let Some(error) = &status.last_error {
        writeln!(
            out,
            "Last error:   {error} ({} failed attempts)",
            status.consecutive_failures
        )?;
    }
    let node = match source {
        Source::Running(api) => format!("running, dashboard {}", api.url),
        Source::Stopped => "stopped (read from its data directory)".to_owned(),
    };
    writeln!(out, "Node:         {node}")
}

fn write_sent(out: &mut impl Write, records: &[SentRecord]) -> std::io::Result<()> {
    if records.is_empty() {
        return writeln!(out, "No report has been sent from this node.");
    }
    writeln!(
        out,
        "{:<27} {:>6}  {:<9} collector",
        "sent at", "status", "result"
    )?;
    for record in records {
        let result = if record.accepted {
            "accepted"
        } else {
            "refused"
        };
        writeln!(
            out,
            "{:<27} {:>6}  {:<9} {}",
            record.at.to_rfc3339(),
            record.status,
            result,
            record.url
        )?;
    }
    writeln!(
        out,
        "{} report(s); `beacon telemetry sent --json` shows each report in full.",
        records.len()
    )
}
