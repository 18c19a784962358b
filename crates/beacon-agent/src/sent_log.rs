//! The local record of what left the machine: the last reports the collector answered,
//! with time and answer, in `telemetry/sent.jsonl` (one JSON object a line, oldest first).

use std::collections::VecDeque;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::AgentError;
use crate::datadir::{DataDir, SENT_LOG_FILE};

/// How many sent reports are kept.
pub const SENT_LOG_CAPACITY: usize = 20;

/// One report that reached the collector, and what the collector answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentRecord {
    /// When the answer arrived.
    pub at: DateTime<Utc>,
    pub url: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Whether the collector took the report (2xx).
    pub accepted: bool,
    /// The start of the answer's body, as text.
    pub answer: String,
    /// The report exactly as sent.
    pub report: serde_json::Value,
}

/// The records in memory, mirrored to the file after each append.
#[derive(Debug, Default)]
pub(crate) struct SentLog {
    records: VecDeque<SentRecord>,
}

impl SentLog {
    /// The records on disk; an unreadable file starts an empty log (with a warning).
    pub(crate) fn load(data: &DataDir) -> Self {
        let records = read_records(data).unwrap_or_else(|error| {
            warn!(%error, "starting a new sent-report log");
            Vec::new()
        });
        let mut log = Self::default();
        for record in records {
            log.push(record);
        }
        log
    }

    pub(crate) fn records(&self) -> Vec<SentRecord> {
        self.records.iter().cloned().collect()
    }

    /// Adds `record`, drops the oldest beyond capacity, and rewrites the file.
    pub(crate) fn append(&mut self, data: &DataDir, record: SentRecord) {
        self.push(record);
        let mut text = String::new();
        for record in &self.records {
            // A record holds JSON values and strings only; it always serializes.
            if let Ok(line) = serde_json::to_string(record) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        data.save(SENT_LOG_FILE, text.as_bytes());
    }

    fn push(&mut self, record: SentRecord) {
        self.records.push_back(record);
        while self.records.len() > SENT_LOG_CAPACITY {
            self.records.pop_front();
        }
    }
}

/// The sent-report log of a node's data directory, oldest first. Lines that cannot be
/// read are skipped with a warning naming the line.
pub fn read_sent_log(data_dir: &Path) -> Result<Vec<SentRecord>, AgentError> {
    read_records(&DataDir::new(data_dir.to_path_buf()))
}

fn read_records(data: &DataDir) -> Result<Vec<SentRecord>, AgentError> {
    let path = data.path(SENT_LOG_FILE);
    let bytes = data
        .read(SENT_LOG_FILE)
        .map_err(|source| AgentError::Read {
            path: path.clone(),
            source,
        })?
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .filter_map(|(index, line)| {
            serde_json::from_str(line)
                .map_err(|error| {
                    warn!(path = %path.display(), line = index + 1, %error, "skipping unreadable sent-report record");
                })
                .ok()
        })
        .collect();
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u16) -> SentRecord {
        SentRecord {
            at: Utc::now(),
            url: "https://127.0.0.1:1/api/telemetry".into(),
            status: 200 + n,
            accepted: true,
            answer: String::new(),
            report: serde_json::json!({"n": n}),
        }
    }

    #[test]
    fn keeps_the_last_twenty_across_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().to_path_buf());
        let mut log = SentLog::load(&data);
        for n in 0..25 {
            log.append(&data, record(n));
        }
        let on_disk = read_sent_log(dir.path()).expect("read");
        assert_eq!(on_disk.len(), SENT_LOG_CAPACITY);
        assert_eq!(on_disk.first().map(|r| r.status), Some(205));
        assert_eq!(on_disk, log.records());
        let mut reloaded = SentLog::load(&data);
        reloaded.append(&data, record(99));
        assert_eq!(reloaded.records().len(), SENT_LOG_CAPACITY);
        assert_eq!(reloaded.records().first().map(|r| r.status), Some(206));
    }

    #[test]
    fn bad_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().to_path_buf());
        let good = serde_json::to_string(&record(1)).expect("json");
        std::fs::create_dir_all(dir.path().join("telemetry")).expect("mkdir");
        std::fs::write(data.path(SENT_LOG_FILE), format!("{{broken\n{good}\n\n")).expect("write");
        assert_eq!(read_sent_log(dir.path()).expect("read").len(), 1);
        assert!(
            read_sent_log(&dir.path().join("absent"))
                .expect("read")
                .is_empty()
        );
    }
}
