//! Rollup and export reads on PostgreSQL's read pool.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::writer::Context;
use super::{PostgresStore, fold, query_cached};
use crate::analytics::{ExportCursor, Scope, Source};
use crate::counting::{self, Settled};
use crate::maintenance::WriterQueue;
use crate::rollup::ALL;
use crate::rows::RollupRow;
use crate::sql::EXPORT_REPORTS;
use crate::{StoreError, StoredReport, rows};

/// Distinct keys of a kind over every version and OS, with their counts.
const ROLLUP_KEY_COUNTS: &str = "SELECT k1, CAST(sum(n) AS BIGINT) AS n
    FROM rollups WHERE version = $1 AND os = $1 AND kind = $2 GROUP BY k1";

#[async_trait::async_trait]
impl Source for PostgresStore {
    /// Settles first, then reads the counters and adds the counter deltas not folded yet
    /// (see `fold`), both from one snapshot: each counted report is in one or the other.
    async fn rollups<T: RollupRow>(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<T>, StoreError> {
        // Not SQLite's way (adding what the marked reports would count, worked out on a
        // `REPEATABLE READ` snapshot): tried, and under load it made reads slower and the
        // collector bigger, each read redoing a count's work (BENCHMARKS.md).
        counting::settle(self.queue()).await?;
        let (db, op) = (self.db.as_str(), T::OP);
        let mut client = self.reader(op).await?;
        let tx = snapshot(&mut client).await.context(db, op)?;
        let in_scope = |kind: &str, version: &str, os: &str| {
            kinds.contains(&kind) && version == scope.version && os == scope.os
        };
        let deltas = fold::unfolded_deltas(&tx, db, in_scope).await?;
        let mut out = Vec::new();
        for &kind in kinds {
            let params: [&(dyn ToSql + Sync); 5] = [
                &scope.version,
                &scope.os,
                &kind,
                &scope.first_week,
                &scope.last_week,
            ];
            let rows = query_cached(&tx, T::SQL, &params).await.context(db, op)?;
            let counted = rows.iter().map(|row| T::decode(kind, row));
            let counted = counted.collect::<Result<_, _>>().context(db, op)?;
            out.extend(rows::with_deltas(counted, &deltas, scope, kind));
        }
        tx.commit().await.context(db, op)?;
        Ok(out)
    }

    /// The keys with a count above zero once the deltas not folded yet are added.
    async fn keys(&self, _: &Settled, kind: &'static str) -> Result<Vec<String>, StoreError> {
        const OP: &str = "read rollup keys";
        let db = self.db.as_str();
        let mut client = self.reader(OP).await?;
        let tx = snapshot(&mut client).await.context(db, OP)?;
        let everywhere =
            |k: &str, version: &str, os: &str| k == kind && version == ALL && os == ALL;
        let deltas = fold::unfolded_deltas(&tx, db, everywhere).await?;
        let params: [&(dyn ToSql + Sync); 2] = [&ALL, &kind];
        let rows = query_cached(&tx, ROLLUP_KEY_COUNTS, &params)
            .await
            .context(db, OP)?;
        let mut counts = BTreeMap::new();
        for row in &rows {
            let key: String = row.try_get(0).context(db, OP)?;
            counts.insert(key, row.try_get::<_, i64>(1).context(db, OP)?);
        }
        for delta in deltas {
            *counts.entry(delta.k1).or_insert(0) += delta.n;
        }
        tx.commit().await.context(db, OP)?;
        Ok(counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(key, _)| key)
            .collect())
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

/// A read-only transaction whose statements all read one snapshot.
async fn snapshot(client: &mut Object) -> Result<Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}
