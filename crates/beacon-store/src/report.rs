use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::{Facts, StoreError};

/// One report as a row: the columns analytics needs, the raw JSON text, and the facts the
/// rollups are built from.
///
/// There is deliberately no field for the client's address: the store never receives one.
#[derive(Debug, Clone, PartialEq)]
pub struct NewReport {
    /// Node uuid as sent; with `day`, the row's key.
    pub uuid: String,
    pub cluster_uuid: Option<String>,
    /// UTC day the report belongs to.
    pub day: NaiveDate,
    /// When the collector received it; stored with microsecond precision.
    pub received_at: DateTime<Utc>,
    pub emqx_version: String,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub edition: Option<String>,
    /// Number of nodes in the reporting cluster.
    pub node_count: i64,
    /// Payload format: 4 (EMQX 4.x) or 5 (EMQX 5.x).
    pub format: i16,
    /// The report's JSON text, exactly as received (after decompression).
    pub raw: String,
    /// What the analytics rollups count; not stored as columns of the report row.
    pub analytics: Facts,
}

/// A report read back from the store: the row's columns and raw JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReport {
    pub uuid: String,
    pub cluster_uuid: Option<String>,
    pub day: NaiveDate,
    pub received_at: DateTime<Utc>,
    pub emqx_version: String,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub edition: Option<String>,
    pub node_count: i64,
    pub format: i16,
    pub raw: String,
}

/// What an insert did to the row of its (`uuid`, `day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// No report of that node that day was stored before.
    Inserted,
    /// An earlier report of that node that day was replaced.
    Replaced,
    /// Nothing was stored: the report carries a deletion hash other than the one the
    /// node's first report fixed (see `claims`).
    HashMismatch,
}

impl NewReport {
    /// Checks the column rules and truncates `received_at` to microseconds.
    ///
    /// Checked here, before queueing, because one row failing inside a group-commit
    /// transaction would fail every other report of its batch. Microseconds are what
    /// PostgreSQL keeps, so both backends give back the same value.
    pub(crate) fn validated(mut self) -> Result<Self, StoreError> {
        if self.uuid.is_empty() {
            return Err(invalid("uuid", "must not be empty".into()));
        }
        // The empty version is the rollups' "every version" value.
        if self.emqx_version.is_empty() {
            return Err(invalid("emqx_version", "must not be empty".into()));
        }
        if self.raw.is_empty() {
            return Err(invalid("raw", "must not be empty".into()));
        }
        if !matches!(self.format, 4 | 5) {
            return Err(invalid(
                "format",
                format!("must be 4 or 5, got {}", self.format),
            ));
        }
        if self.node_count < 0 {
            let reason = format!("must not be negative, got {}", self.node_count);
            return Err(invalid("node_count", reason));
        }
        self.check_no_nul()?;
        self.received_at = self.received_at.trunc_subsecs(6);
        Ok(self)
    }

    /// PostgreSQL text cannot hold NUL, so SQLite is held to the same rule.
    fn check_no_nul(&self) -> Result<(), StoreError> {
        let columns = [
            ("uuid", Some(&self.uuid)),
            ("cluster_uuid", self.cluster_uuid.as_ref()),
            ("emqx_version", Some(&self.emqx_version)),
            ("os_name", self.os_name.as_ref()),
            ("os_version", self.os_version.as_ref()),
            ("edition", self.edition.as_ref()),
            ("raw", Some(&self.raw)),
        ];
        let column = columns
            .into_iter()
            .find(|(_, value)| value.is_some_and(|text| text.contains('\0')))
            .map(|(field, _)| field);
        match column.or_else(|| crate::facts::field_with_nul(&self.analytics)) {
            Some(field) => Err(invalid(field, "must not contain a NUL character".into())),
            None => Ok(()),
        }
    }

    /// The row as [`crate::ReportStore::get`] gives it back (after `received_at` is cut to
    /// microseconds, which `insert` does).
    pub fn to_stored(&self) -> StoredReport {
        StoredReport {
            uuid: self.uuid.clone(),
            cluster_uuid: self.cluster_uuid.clone(),
            day: self.day,
            received_at: self.received_at,
            emqx_version: self.emqx_version.clone(),
            os_name: self.os_name.clone(),
            os_version: self.os_version.clone(),
            edition: self.edition.clone(),
            node_count: self.node_count,
            format: self.format,
            raw: self.raw.clone(),
        }
    }
}

pub(crate) fn invalid(field: &'static str, reason: String) -> StoreError {
    StoreError::InvalidReport { field, reason }
}
