//! Rollup and export reads on PostgreSQL's read pool.

use chrono::NaiveDate;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::analytics::{ExportCursor, KeyRow, Scope, Source, WeekRow};
use crate::counting::Settled;
use crate::rollup::ALL;
use crate::sql::{EXPORT_REPORTS, ROLLUP_KEYS, ROLLUPS_BY_KEY, ROLLUPS_BY_WEEK};
use crate::{StoreError, StoredReport, rows};

impl PostgresStore {
    /// The rows of `sql` for each of `kinds` in `scope`.
    async fn per_kind<T>(
        &self,
        op: &'static str,
        sql: &str,
        scope: &Scope,
        kinds: &[&'static str],
        decode: fn(&'static str, &Row) -> Result<T, tokio_postgres::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for &kind in kinds {
            let params: [&(dyn ToSql + Sync); 5] = [
                &scope.version,
                &scope.os,
                &kind,
                &scope.first_week,
                &scope.last_week,
            ];
            let rows = self.query_rows(op, sql, &params, |row| decode(kind, row));
            out.extend(rows.await?);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Source for PostgresStore {
    async fn by_week(
        &self,
        _: &Settled,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<WeekRow>, StoreError> {
        let op = "read weekly rollups";
        self.per_kind(op, ROLLUPS_BY_WEEK, scope, kinds, rows::week_row)
            .await
    }

    async fn by_key(
        &self,
        _: &Settled,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<KeyRow>, StoreError> {
        let op = "read rollups";
        self.per_kind(op, ROLLUPS_BY_KEY, scope, kinds, rows::key_row)
            .await
    }

    async fn keys(&self, _: &Settled, kind: &'static str) -> Result<Vec<String>, StoreError> {
        let params: [&(dyn ToSql + Sync); 2] = [&ALL, &kind];
        self.query_rows("read rollup keys", ROLLUP_KEYS, &params, |row| {
            row.try_get(0)
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
        let limit = i64::from(limit);
        let params: [&(dyn ToSql + Sync); 5] = [&from, &to, &after.day, &after.uuid, &limit];
        self.query_rows("export reports", EXPORT_REPORTS, &params, rows::report)
            .await
    }
}
