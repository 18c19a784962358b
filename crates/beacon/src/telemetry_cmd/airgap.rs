//! `beacon telemetry export|upload`: a node with no route to the collector contributes by
//! hand. Export writes the report that would be sent now to a file (nothing leaves the
//! machine, whatever the switch says: the operator asked); upload sends such a file from
//! any machine with a route, through the agent's own sender.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use beacon_agent::AgentSettings;
use reqwest::Url;

use super::Source;
use crate::node_config::{self, NodePaths};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// File to write [default: beacon-report-<uuid>-<date>.json in the current directory].
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// A report written by `beacon telemetry export`.
    file: PathBuf,
    /// Collector endpoint [default: telemetry.url of the config].
    #[arg(long, value_name = "URL")]
    url: Option<Url>,
}

pub(super) async fn export(
    out: &mut impl Write,
    paths: &NodePaths,
    source: &Source,
    args: ExportArgs,
    json: bool,
) -> anyhow::Result<()> {
    let report = source.preview(paths).await?;
    let text = serde_json::to_string_pretty(&report)?;
    let uuid = beacon_report::parse(text.as_bytes())
        .context("this node's report does not pass the collector's validation")?
        .report
        .uuid;
    let file = args.output.unwrap_or_else(|| {
        let day = chrono::Utc::now().date_naive();
        PathBuf::from(format!("beacon-report-{uuid}-{day}.json"))
    });
    write_new(&file, &text, args.force)?;
    let shown = std::path::absolute(&file).unwrap_or(file);
    if json {
        let answer = serde_json::json!({ "file": shown, "uuid": uuid });
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        writeln!(
            out,
            "Wrote the report of node {uuid} to {} (nothing was sent).",
            shown.display()
        )?;
        writeln!(
            out,
            "From a machine that reaches the collector: beacon telemetry upload {}",
            shown.display()
        )?;
    }
    Ok(())
}

/// Writes `text` to `file`, which must not exist unless `force`.
fn write_new(file: &Path, text: &str, force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut handle = options.open(file).map_err(|error| {
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists; use --force to replace it", file.display())
        } else {
            anyhow::Error::new(error).context(format!("cannot create {}", file.display()))
        }
    })?;
    handle
        .write_all(format!("{text}\n").as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))
}

pub(super) async fn upload(
    out: &mut impl Write,
    paths: &NodePaths,
    args: UploadArgs,
    json: bool,
) -> anyhow::Result<()> {
    let file = &args.file;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Refused here, before any connection, with the field the collector would name.
    beacon_report::parse(&bytes)
        .with_context(|| format!("{} is not a valid report", file.display()))?;
    let text = String::from_utf8(bytes).context("the report is not UTF-8")?;
    let settings = AgentSettings::from_config(&paths.load()?, node_config::do_not_track())?;
    let uploaded = beacon_agent::upload(&settings, args.url, &text).await?;
    if json {
        let answer = serde_json::json!({
            "url": uploaded.url.as_str(),
            "status": uploaded.status,
            "answer": uploaded.body,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
    } else {
        writeln!(
            out,
            "Uploaded {} to {}: {} {}",
            file.display(),
            uploaded.url,
            uploaded.status,
            uploaded.body
        )?;
    }
    Ok(())
}
