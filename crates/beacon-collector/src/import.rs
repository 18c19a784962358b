//! Reports received another way than `POST /api/telemetry` (a node's `beacon telemetry
//! export`, carried out of an air-gapped site), as `beacon collector import` and the
//! console's "Import reports" form take them: the reports of an upload, then each through
//! [`store_document`], the path of ingest (limits, validation, redaction, claims, one row
//! per node and day, rollups).
//!
//! An upload is one JSON report or NDJSON (one report per line), either possibly gzipped
//! (told by its magic bytes, not its name).

use std::io::Read;

use flate2::read::MultiGzDecoder;

use crate::error::ApiError;
use crate::ingest::{Outcome, Stored, store_document};
use crate::state::AppState;

/// One report's text, and its line in an NDJSON upload (`None` for one JSON report).
#[derive(Debug, Clone)]
pub struct Document {
    pub line: Option<usize>,
    pub text: Vec<u8>,
}

/// Why an upload as a whole cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("the upload holds more than {limit} bytes after gunzip")]
    TooLarge { limit: u64 },
}

/// The reports of `upload`: gunzipped (to at most `max_decoded` bytes) if it starts with
/// gzip's magic bytes, then one JSON report, or one per non-empty line.
pub fn documents(upload: &[u8], max_decoded: u64) -> Result<Vec<Document>, UploadError> {
    let gunzipped;
    let text = if upload.starts_with(&[0x1f, 0x8b]) {
        gunzipped = gunzip(upload, max_decoded)?;
        gunzipped.as_slice()
    } else {
        upload
    };
    if !is_ndjson(text) {
        let text = text.to_vec();
        return Ok(vec![Document { line: None, text }]);
    }
    Ok(text
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.trim_ascii().is_empty())
        .map(|(index, line)| Document {
            line: Some(index + 1),
            text: line.to_vec(),
        })
        .collect())
}

fn gunzip(packed: &[u8], max_decoded: u64) -> Result<Vec<u8>, UploadError> {
    let mut text = Vec::new();
    // One byte more than allowed tells a bomb from an upload of exactly the limit.
    MultiGzDecoder::new(packed)
        .take(max_decoded.saturating_add(1))
        .read_to_end(&mut text)
        .map_err(UploadError::Gzip)?;
    if text.len() as u64 > max_decoded {
        return Err(UploadError::TooLarge { limit: max_decoded });
    }
    Ok(text)
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

/// A report the collector refused, and where it was in its upload.
#[derive(Debug)]
pub struct Refused {
    pub line: Option<usize>,
    pub error: ApiError,
}

/// What became of the reports of an import.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Each a node's first report of its day.
    pub stored: u64,
    /// Each replaced an earlier report of the same node and day.
    pub replaced: u64,
    pub refused: Vec<Refused>,
}

impl ImportSummary {
    /// Counts the answer `store_document` gave the report at `line`.
    pub fn add(&mut self, line: Option<usize>, result: Result<Stored, ApiError>) {
        match result {
            Ok(done) if done.outcome == Outcome::Replaced => self.replaced += 1,
            Ok(_) => self.stored += 1,
            Err(error) => self.refused.push(Refused { line, error }),
        }
    }

    /// Reports accepted, stored or replacing another.
    pub fn accepted(&self) -> u64 {
        self.stored + self.replaced
    }
}

/// Stores every document, one after the other, received now.
pub async fn import(state: &AppState, documents: Vec<Document>) -> ImportSummary {
    let mut summary = ImportSummary::default();
    for document in documents {
        let received_at = chrono::Utc::now();
        let result = store_document(state, &document.text, received_at).await;
        summary.add(document.line, result);
    }
    summary
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).expect("gzip");
        encoder.finish().expect("gzip")
    }

    #[test]
    fn ndjson_is_split_by_line_and_a_pretty_report_is_one() {
        let ndjson = documents(b"{\"a\":1}\n\n{\"b\":2}\n", 1024).expect("documents");
        let lines: Vec<_> = ndjson.iter().map(|d| d.line).collect();
        assert_eq!(lines, [Some(1), Some(3)]);
        let pretty = documents(b"{\n  \"a\": 1\n}\n", 1024).expect("documents");
        assert_eq!(pretty.len(), 1);
        assert_eq!(pretty[0].line, None);
    }

    #[test]
    fn gzip_is_read_by_its_magic_bytes_and_bounded() {
        let packed = gzip(b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(documents(&packed, 1024).expect("documents").len(), 2);
        let bomb = gzip(&vec![b' '; 4096]);
        assert!(matches!(
            documents(&bomb, 4095),
            Err(UploadError::TooLarge { limit: 4095 })
        ));
        assert_eq!(documents(&bomb, 4096).expect("at the limit").len(), 1);
    }
}
