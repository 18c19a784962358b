//! Rollup and export reads on PostgreSQL's read pool.

use chrono::NaiveDate;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::writer::Context;
use super::{PostgresStore, count};
use crate::analytics::{ExportCursor, Scope, Source};
use crate::counting::Settled;
use crate::rollup::ALL;
use crate::rows::RollupRow;
use crate::sql::{EXPORT_REPORTS, ROLLUP_KEYS};
use crate::{StoreError, StoredReport, rows};

#[async_trait::async_trait]
impl Source for PostgresStore {
    /// The counters and the marked reports are read in one `REPEATABLE READ` snapshot, so
    /// that each report is counted once: by the counters if a chunk counted it before the
    /// snapshot, or by the deltas worked out from its mark.
    async fn rollups<T: RollupRow>(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db.as_str();
        let mut client = self.reader(T::OP).await?;
        let snapshot = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .context(db, T::OP)?;
        let uncounted = count::uncounted_deltas(&snapshot, db).await?;
        let statement = snapshot.prepare_cached(T::SQL).await.context(db, T::OP)?;
        let mut out = Vec::new();
        for &kind in kinds {
            let params: [&(dyn ToSql + Sync); 5] = [
                &scope.version,
                &scope.os,
                &kind,
                &scope.first_week,
                &scope.last_week,
            ];
            let counted = snapshot
                .query(&statement, &params)
                .await
                .context(db, T::OP)?
                .iter()
                .map(|row| T::decode(kind, row))
                .collect::<Result<Vec<T>, _>>()
                .context(db, T::OP)?;
            out.extend(rows::with_deltas(counted, &uncounted, scope, kind));
        }
        snapshot.commit().await.context(db, T::OP)?;
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
