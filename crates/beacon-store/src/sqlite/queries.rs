//! Rollup and export reads on SQLite's read-only connections.

use chrono::NaiveDate;
use rusqlite::{Connection, Row, params};

use super::SqliteStore;
use crate::analytics::{ExportCursor, KeyRow, Scope, Source, WeekRow};
use crate::counting::Settled;
use crate::rollup::ALL;
use crate::sql::{EXPORT_REPORTS, ROLLUP_KEYS, ROLLUPS_BY_KEY, ROLLUPS_BY_WEEK};
use crate::{StoreError, StoredReport, rows};

impl SqliteStore {
    /// The rows of `sql` for each of `kinds` in `scope`.
    async fn per_kind<T: Send + 'static>(
        &self,
        op: &'static str,
        sql: &'static str,
        scope: &Scope,
        kinds: &[&'static str],
        decode: fn(&'static str, &Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let (scope, kinds) = (scope.clone(), kinds.to_vec());
        self.read(op, move |conn| {
            let mut rows = Vec::new();
            for kind in kinds {
                rows.extend(read_kind(conn, sql, &scope, kind, decode)?);
            }
            Ok(rows)
        })
        .await
    }
}

#[async_trait::async_trait]
impl Source for SqliteStore {
    async fn by_week(
        &self,
        _: &Settled,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<WeekRow>, StoreError> {
        let op = "read weekly rollups";
        self.per_kind(op, ROLLUPS_BY_WEEK, scope, kinds, |kind, row| {
            rows::week_row(kind, row)
        })
        .await
    }

    async fn by_key(
        &self,
        _: &Settled,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<KeyRow>, StoreError> {
        let op = "read rollups";
        self.per_kind(op, ROLLUPS_BY_KEY, scope, kinds, |kind, row| {
            rows::key_row(kind, row)
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

fn read_kind<T>(
    conn: &Connection,
    sql: &str,
    scope: &Scope,
    kind: &'static str,
    decode: fn(&'static str, &Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let params = (
        scope.version.as_str(),
        scope.os.as_str(),
        kind,
        scope.first_week,
        scope.last_week,
    );
    let rows = statement.query_map(params, |row| decode(kind, row))?;
    rows.collect()
}
