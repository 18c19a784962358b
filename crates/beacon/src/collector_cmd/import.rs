//! `beacon collector import FILE...`: stores reports the collector received another way
//! (a node's `beacon telemetry export`, carried out of an air-gapped site). Every report
//! takes the ingest path of `POST /api/telemetry` ([`beacon_collector::store_document`]):
//! the same limits, validation, redaction, claims, one row per node and day, and rollups.
//!
//! A file is one JSON report or NDJSON (one report per line), either possibly gzipped
//! (told by its magic bytes, not its name).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use beacon_collector::{AppState, IngestMode, Outcome, RateLimit};
use beacon_store::ReportStore;
use flate2::read::MultiGzDecoder;

use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files of reports: one JSON report, or NDJSON (one per line); gzip accepted.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Storage to import into: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "BEACON_COLLECTOR_DB", default_value = beacon_store::DEFAULT_URL)]
    db: String,
}

/// One report's text and where it came from.
struct Document {
    file: PathBuf,
    /// The line of an NDJSON file; `None` for a file holding one JSON report.
    line: Option<usize>,
    text: Vec<u8>,
}

impl Document {
    fn place(&self) -> String {
        match self.line {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

/// Imports every report of `args.files`; fails (after the summary) if any was refused.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut documents = Vec::new();
    for file in &args.files {
        documents.extend(read_documents(file)?);
    }
    let db_shown = beacon_store::redact_url(&args.db);
    let store = beacon_collector::open_store(&args.db)
        .await
        .with_context(|| format!("cannot open storage {db_shown}"))?;
    let reports: Arc<dyn ReportStore> = store.clone();
    let state = AppState::new(reports, RateLimit::disabled(), IngestMode::Store);
    let total = documents.len() as u64;
    let progress = Progress::start("beacon collector: imported", "reports", total);
    let (mut stored, mut replaced, mut refused) = (0u64, 0u64, Vec::new());
    for document in progress.count(documents.into_iter()) {
        let received_at = chrono::Utc::now();
        match beacon_collector::store_document(&state, &document.text, received_at).await {
            Ok(done) if done.outcome == Outcome::Replaced => replaced += 1,
            Ok(_) => stored += 1,
            Err(error) => refused.push(format!(
                "refused {}: {} ({})",
                document.place(),
                error,
                error.code()
            )),
        }
    }
    store
        .settle()
        .await
        .with_context(|| format!("cannot count the imported reports in {db_shown}"))?;
    let elapsed = progress.finish();
    println!(
        "beacon collector: imported {} reports ({stored} stored, {replaced} replaced a report \
         of the same node and day) into {db_shown}, {} refused, {}",
        stored + replaced,
        refused.len(),
        elapsed.with_rate(total)
    );
    for line in &refused {
        println!("{line}");
    }
    if !refused.is_empty() {
        anyhow::bail!("{} of {total} reports were refused", refused.len());
    }
    Ok(())
}

/// The reports of `file`: gunzipped if it starts with gzip's magic bytes, then one JSON
/// report, or one per non-empty line.
fn read_documents(file: &Path) -> anyhow::Result<Vec<Document>> {
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut text)
            .with_context(|| format!("{} is not valid gzip", file.display()))?;
        text
    } else {
        raw
    };
    let document = |line, text: &[u8]| Document {
        file: file.to_path_buf(),
        line,
        text: text.to_vec(),
    };
    if !is_ndjson(&text) {
        return Ok(vec![document(None, &text)]);
    }
    Ok(text
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty())
        .map(|(index, line)| document(Some(index + 1), line))
        .collect())
}

/// NDJSON when the first non-empty line is a JSON value of its own and more lines follow;
/// a pretty-printed report (an export) starts with a line `{` that is not.
fn is_ndjson(text: &[u8]) -> bool {
    let mut lines = text
        .split(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty());
    let Some(first) = lines.next() else {
        return false;
    };
    lines.next().is_some() && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_ok()
}
