//! Rollup and export reads on PostgreSQL's read pool.

use chrono::NaiveDate;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::analytics::{ExportCursor, Scope, Source};
use crate::counting::{self, Settled};
use crate::maintenance::WriterQueue;
use crate::rollup::ALL;
use crate::rows::RollupRow;
use crate::sql::{EXPORT_REPORTS, ROLLUP_KEYS};
use crate::{StoreError, StoredReport, rows};

#[async_trait::async_trait]
impl Source for PostgresStore {
    async fn rollups<T: RollupRow>(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<T>, StoreError> {
        // Not SQLite's way (adding what the marked reports would count, worked out on a
        // `REPEATABLE READ` snapshot): tried, and under load it made reads slower and the
        // collector bigger, each read redoing a count's work (BENCHMARKS.md).
        counting::settle(self.queue()).await?;
        let mut out = Vec::new();
        for &kind in kinds {
            let params: [&(dyn ToSql + Sync); 5] = [
                &scope.version,
                &scope.os,
                &kind,
                &scope.first_week,
                &scope.last_week,
            ];
            let rows = self.query_rows(T::OP, T::SQL, &params, |row| T::decode(kind, row));
            out.extend(rows.await?);
        }
        Ok(out)
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
