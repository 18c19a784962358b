//! Rollup and export reads on SQLite's read-only connections.

use chrono::NaiveDate;
use rusqlite::{Connection, params};

use super::{SqliteStore, count};
use crate::analytics::{ExportCursor, Scope, Source};
use crate::counting::Settled;
use crate::rollup::{ALL, Delta};
use crate::rows::RollupRow;
use crate::sql::{EXPORT_REPORTS, ROLLUP_KEYS};
use crate::{StoreError, StoredReport, rows};

#[async_trait::async_trait]
impl Source for SqliteStore {
    /// The counters, the deltas counted chunks logged for them, and the ingest log are
    /// read in one transaction, so that each report is counted once: by the counters if
    /// its chunk was folded before the snapshot, by its chunk's logged deltas if it was
    /// counted but not folded, or by the deltas worked out from the log (once for the
    /// reads that arrive together, see `shared_reads`).
    async fn rollups<T: RollupRow>(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<T>, StoreError> {
        let (scope, kinds, db) = (scope.clone(), kinds.to_vec(), self.readers.db.clone());
        self.read_shared(move |snapshot, uncounted| {
            read_scope(snapshot, &scope, &kinds, uncounted).map_err(StoreError::sqlite(&db, T::OP))
        })
        .await
    }

    async fn keys(&self, _: &Settled, kind: &'static str) -> Result<Vec<String>, StoreError> {
        self.read("read rollup keys", move |conn| {
            let mut statement = conn.prepare_cached(ROLLUP_KEYS)?;
            let keys = statement.query_map(params![ALL, kind], |row| row.get(0))?;
            keys.collect()
        })
        .await
    }

    async fn export_rows(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: ExportCursor,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError> {
        self.read_reports("export reports", move |conn| {
            let mut statement = conn.prepare_cached(EXPORT_REPORTS)?;
            let params = params![from, to, after.day, after.uuid, limit];
            let rows = statement.query_map(params, |row| rows::report(row))?;
            rows.collect()
        })
        .await
    }
}

fn read_scope<T: RollupRow>(
    snapshot: &Connection,
    scope: &Scope,
    kinds: &[&'static str],
    uncounted: &[Delta],
) -> rusqlite::Result<Vec<T>> {
    let in_scope = |kind: &str, version: &str, os: &str| {
        kinds.contains(&kind) && version == scope.version && os == scope.os
    };
    let (_, mut deltas) = count::unfolded_deltas(snapshot, in_scope)?;
    let uncounted = uncounted
        .iter()
        .filter(|d| in_scope(d.kind, &d.version, &d.os));
    deltas.extend(uncounted.cloned());
    let mut rows = Vec::new();
    for kind in kinds {
        let counted = read_kind(snapshot, scope, kind)?;
        rows.extend(rows::with_deltas(counted, &deltas, scope, kind));
    }
    Ok(rows)
}

fn read_kind<T: RollupRow>(
    conn: &Connection,
    scope: &Scope,
    kind: &'static str,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(T::SQL)?;
    let params = (
        scope.version.as_str(),
        scope.os.as_str(),
        kind,
        scope.first_week,
        scope.last_week,
    );
    let rows = statement.query_map(params, |row| T::decode(kind, row))?;
    rows.collect()
}
