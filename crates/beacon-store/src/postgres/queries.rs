//! Rollup and export reads on PostgreSQL's read pool.

use chrono::NaiveDate;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, from_row, query_cached, select_reports};
use crate::analytics::{ExportCursor, KeyRow, Scope, Source, WeekRow};
use crate::rollup::ALL;
use crate::{StoreError, StoredReport};

/// Every query reads one range of the rollups' primary key.
const BY_WEEK: &str = "SELECT week, k1, sum(n)::BIGINT AS n FROM rollups
    WHERE version = $1 AND os = $2 AND kind = $3 AND week BETWEEN $4 AND $5
    GROUP BY week, k1";
const BY_KEY: &str = "SELECT k1, k2, sum(n)::BIGINT AS n FROM rollups
    WHERE version = $1 AND os = $2 AND kind = $3 AND week BETWEEN $4 AND $5
    GROUP BY k1, k2";
const KEYS: &str = "SELECT DISTINCT k1 FROM rollups WHERE version = $1 AND os = $1 AND kind = $2";
const EXPORT: &str = select_reports!(
    "WHERE day BETWEEN $1 AND $2 AND (day, uuid) > ($3, $4) ORDER BY day, uuid LIMIT $5"
);

impl PostgresStore {
    async fn rollup_rows<T>(
        &self,
        op: &'static str,
        sql: &str,
        scope: &Scope,
        kinds: &[&'static str],
        convert: impl Fn(&'static str, &Row) -> Result<T, tokio_postgres::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.reader(op).await?;
        let mut out = Vec::new();
        for &kind in kinds {
            let params: [&(dyn ToSql + Sync); 5] = [
                &scope.version,
                &scope.os,
                &kind,
                &scope.first_week,
                &scope.last_week,
            ];
            let rows = query_cached(&client, sql, &params)
                .await
                .map_err(StoreError::postgres(&self.db, op))?;
            for row in &rows {
                out.push(convert(kind, row).map_err(StoreError::postgres(&self.db, op))?);
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Source for PostgresStore {
    async fn by_week(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<WeekRow>, StoreError> {
        self.rollup_rows("read weekly rollups", BY_WEEK, scope, kinds, |kind, row| {
            Ok(WeekRow {
                kind,
                week: row.try_get("week")?,
                k1: row.try_get("k1")?,
                n: row.try_get("n")?,
            })
        })
        .await
    }

    async fn by_key(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<KeyRow>, StoreError> {
        self.rollup_rows("read rollups", BY_KEY, scope, kinds, |kind, row| {
            Ok(KeyRow {
                kind,
                k1: row.try_get("k1")?,
                k2: row.try_get("k2")?,
                n: row.try_get("n")?,
            })
        })
        .await
    }

    async fn keys(&self, kind: &'static str) -> Result<Vec<String>, StoreError> {
        let op = "read rollup keys";
        let client = self.reader(op).await?;
        let rows = query_cached(&client, KEYS, &[&ALL, &kind])
            .await
            .map_err(StoreError::postgres(&self.db, op))?;
        rows.iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(StoreError::postgres(&self.db, op))
    }

    async fn export_rows(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: ExportCursor,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let op = "export reports";
        let client = self.reader(op).await?;
        let limit = i64::from(limit);
        let rows = query_cached(
            &client,
            EXPORT,
            &[&from, &to, &after.day, &after.uuid, &limit],
        )
        .await
        .map_err(StoreError::postgres(&self.db, op))?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::postgres(&self.db, op))
    }
}
