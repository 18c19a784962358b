//! `beacon collector import FILE...`: stores reports the collector received another way
//! (a node's `beacon telemetry export`, carried out of an air-gapped site). Every report
//! takes the ingest path of `POST /api/telemetry` ([`beacon_collector::store_document`]):
//! the same limits, validation, redaction, claims, one row per node and day, and rollups.
//!
//! A file is one JSON report or NDJSON (one report per line), either possibly gzipped
//! (told by its magic bytes, not its name): `beacon_collector::documents`, which the
//! console's import form ([`ConsoleImport`]) reads its uploads with too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use beacon_collector::{AppState, Document, ImportSummary, IngestMode, RateLimit};
use beacon_store::ReportStore;

use crate::progress::Progress;

/// Most bytes a gzipped file or upload may hold once gunzipped: a bound for gzip bombs,
/// far above a bundle of a few hundred thousand reports.
const MAX_DECODED: u64 = 4 << 30;
/// The console's uploads are smaller: an admin's browser, a request held in memory.
const MAX_DECODED_UPLOAD: u64 = 256 << 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files of reports: one JSON report, or NDJSON (one per line); gzip accepted.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Storage to import into: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, env = "BEACON_COLLECTOR_DB", default_value = beacon_store::DEFAULT_URL)]
    db: String,
}

/// Where a report came from: its file, and its line in an NDJSON file.
fn place(file: &Path, document: &Document) -> String {
    match document.line {
        Some(line) => format!("{}:{line}", file.display()),
        None => file.display().to_string(),
    }
}

/// Imports every report of `args.files`; fails (after the summary) if any was refused.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut documents = Vec::new();
    for file in &args.files {
        let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let found = beacon_collector::documents(&raw, MAX_DECODED)
            .with_context(|| format!("cannot read {}", file.display()))?;
        documents.extend(found.into_iter().map(|document| (file.clone(), document)));
    }
    let db_shown = beacon_store::redact_url(&args.db);
    let store = beacon_collector::open_store(&args.db)
        .await
        .with_context(|| format!("cannot open storage {db_shown}"))?;
    let reports: Arc<dyn ReportStore> = store.clone();
    let state = AppState::new(reports, RateLimit::disabled(), IngestMode::Store);
    let total = documents.len() as u64;
    let progress = Progress::start("beacon collector: imported", "reports", total);
    let (mut summary, mut refused) = (ImportSummary::default(), Vec::new());
    for (file, document) in progress.count(documents.into_iter()) {
        let received_at = chrono::Utc::now();
        let result = beacon_collector::store_document(&state, &document.text, received_at).await;
        if let Err(error) = &result {
            refused.push(format!(
                "refused {}: {} ({})",
                place(&file, &document),
                error,
                error.code()
            ));
        }
        summary.add(document.line, result);
    }
    // Closed, not only settled: the process ends next, and must cut off no transaction.
    store
        .close()
        .await
        .with_context(|| format!("cannot count the imported reports in {db_shown}"))?;
    let elapsed = progress.finish();
    let accepted = summary.accepted();
    println!(
        "beacon collector: imported {accepted} report{} ({} stored, {} replaced a report \
         of the same node and day) into {db_shown}, {} refused, {}",
        if accepted == 1 { "" } else { "s" },
        summary.stored,
        summary.replaced,
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

/// The console's "Import reports" form, served by `beacon collector` (and the demo): the
/// upload's reports through the collector's import, the same path as this command's.
#[derive(Clone)]
pub struct ConsoleImport {
    state: AppState,
}

impl ConsoleImport {
    pub fn new(store: Arc<dyn ReportStore>) -> Self {
        Self {
            state: AppState::new(store, RateLimit::disabled(), IngestMode::Store),
        }
    }
}

impl std::fmt::Debug for ConsoleImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleImport")
    }
}

impl beacon_console::ImportReports for ConsoleImport {
    fn import(&self, upload: Vec<u8>) -> beacon_console::ImportFuture {
        let state = self.state.clone();
        Box::pin(async move {
            let documents = beacon_collector::documents(&upload, MAX_DECODED_UPLOAD)
                .map_err(|error| error.to_string())?;
            let summary = beacon_collector::import(&state, documents).await;
            let refused =
                summary
                    .refused
                    .into_iter()
                    .map(|refused| beacon_console::RefusedReport {
                        line: refused.line,
                        code: refused.error.code().to_owned(),
                        message: refused.error.to_string(),
                    });
            Ok(beacon_console::ImportSummary {
                stored: summary.stored,
                replaced: summary.replaced,
                refused: refused.collect(),
            })
        })
    }
}
