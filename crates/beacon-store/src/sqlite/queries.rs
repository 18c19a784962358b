//! Rollup and export reads on SQLite's read-only connections.

use chrono::NaiveDate;
use rusqlite::{Connection, params};

use super::{SqliteStore, from_row, select_reports};
use crate::analytics::{ExportCursor, KeyRow, Scope, Source, WeekRow};
use crate::rollup::ALL;
use crate::{StoreError, StoredReport};

/// Every query reads one range of the rollups' primary key.
const BY_WEEK: &str = "SELECT week, k1, sum(n) FROM rollups
    WHERE version = ?1 AND os = ?2 AND kind = ?3 AND week BETWEEN ?4 AND ?5
    GROUP BY week, k1";
const BY_KEY: &str = "SELECT k1, k2, sum(n) FROM rollups
    WHERE version = ?1 AND os = ?2 AND kind = ?3 AND week BETWEEN ?4 AND ?5
    GROUP BY k1, k2";
const KEYS: &str = "SELECT DISTINCT k1 FROM rollups WHERE version = ?1 AND os = ?1 AND kind = ?2";
const EXPORT: &str = select_reports!(
    "WHERE day BETWEEN ?1 AND ?2 AND (day, uuid) > (?3, ?4) ORDER BY day, uuid LIMIT ?5"
);

#[async_trait::async_trait]
impl Source for SqliteStore {
    async fn by_week(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<WeekRow>, StoreError> {
        let (scope, kinds) = (scope.clone(), kinds.to_vec());
        self.read("read weekly rollups", move |conn| {
            let mut rows = Vec::new();
            for kind in kinds {
                rows.extend(per_week(conn, &scope, kind)?);
            }
            Ok(rows)
        })
        .await
    }

    async fn by_key(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<KeyRow>, StoreError> {
        let (scope, kinds) = (scope.clone(), kinds.to_vec());
        self.read("read rollups", move |conn| {
            let mut rows = Vec::new();
            for kind in kinds {
                rows.extend(per_key(conn, &scope, kind)?);
            }
            Ok(rows)
        })
        .await
    }

    async fn keys(&self, kind: &'static str) -> Result<Vec<String>, StoreError> {
        self.read("read rollup keys", move |conn| {
            let mut statement = conn.prepare_cached(KEYS)?;
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
            let mut statement = conn.prepare_cached(EXPORT)?;
            let rows =
                statement.query_map(params![from, to, after.day, after.uuid, limit], from_row)?;
            rows.collect()
        })
        .await
    }
}

fn per_week(
    conn: &Connection,
    scope: &Scope,
    kind: &'static str,
) -> rusqlite::Result<Vec<WeekRow>> {
    let mut statement = conn.prepare_cached(BY_WEEK)?;
    let rows = statement.query_map(params_of(scope, kind), |row| {
        Ok(WeekRow {
            kind,
            week: row.get(0)?,
            k1: row.get(1)?,
            n: row.get(2)?,
        })
    })?;
    rows.collect()
}

fn per_key(conn: &Connection, scope: &Scope, kind: &'static str) -> rusqlite::Result<Vec<KeyRow>> {
    let mut statement = conn.prepare_cached(BY_KEY)?;
    let rows = statement.query_map(params_of(scope, kind), |row| {
        Ok(KeyRow {
            kind,
            k1: row.get(0)?,
            k2: row.get(1)?,
            n: row.get(2)?,
        })
    })?;
    rows.collect()
}

fn params_of<'a>(scope: &'a Scope, kind: &'a str) -> impl rusqlite::Params + 'a {
    (
        scope.version.as_str(),
        scope.os.as_str(),
        kind,
        scope.first_week,
        scope.last_week,
    )
}
