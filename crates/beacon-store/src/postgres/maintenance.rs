//! Maintenance on PostgreSQL, run by the counter after a pass, each task in one
//! transaction. A task that changes snapshots takes the counting lock exclusively (counts
//! share it), so no count of any collector on the database runs meanwhile. Retention runs
//! on one collector at a time: each of its transactions only tries its own lock, and a
//! collector that finds it taken stops, leaving the deletion to the one holding it.

use chrono::NaiveDate;

use super::count::{LOCK, PgCounter};
use super::writer::Context;
use crate::batch::{self, MaintenanceTask};
use crate::maintenance::secret_matches;
use crate::{ForgetOutcome, StoreError, sql};

const TRY_RETENTION_LOCK: &str = "SELECT pg_try_advisory_xact_lock(hashtext($1))";
/// Forgetting walks a node's days and weeks through the tables' keys
/// (`sql::FORGET_REPORTS`); planned from statistics, a join with the walk may read whole
/// tables instead (see `key_lookups`).
const LOCK_FOR_FORGET: &str = concat!(
    "SELECT pg_advisory_xact_lock(hashtext($1)), ",
    super::key_lookups!()
);

impl PgCounter {
    pub(super) async fn run_task(&self, task: MaintenanceTask) {
        match task {
            MaintenanceTask::DeleteOldestDay { before, reply } => {
                batch::reply(reply, self.delete_oldest_day(before).await);
            }
            MaintenanceTask::PruneSnapshots { before_week, reply } => {
                batch::reply(reply, self.prune_snapshots(before_week).await);
            }
            MaintenanceTask::Forget {
                uuid,
                secret_sha256,
                reply,
            } => batch::reply(reply, self.forget(&uuid, &secret_sha256).await),
            MaintenanceTask::Optimize { reply } => batch::reply(reply, self.optimize().await),
        }
    }

    /// After a bulk load: the rollups' dead row versions cleared and their statistics made.
    async fn optimize(&self) -> Result<(), StoreError> {
        const OP: &str = "vacuum rollups";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        client
            .batch_execute("VACUUM (ANALYZE) rollups")
            .await
            .context(db, OP)
    }

    /// `None` also when another collector is applying retention right now: it goes on
    /// with the days left.
    async fn delete_oldest_day(&self, before: NaiveDate) -> Result<Option<u64>, StoreError> {
        const OP: &str = "delete old reports";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        if !self.retention_lock(&tx, OP).await? {
            tracing::info!("another collector is applying retention; this one skips it");
            return Ok(None);
        }
        let oldest: Option<NaiveDate> = tx
            .query_one(sql::OLDEST_DAY, &[])
            .await
            .and_then(|row| row.try_get(0))
            .context(db, OP)?;
        let Some(day) = oldest.filter(|day| *day < before) else {
            return Ok(None);
        };
        let deleted = tx.execute(sql::DELETE_DAY, &[&day]).await.context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        Ok(Some(deleted))
    }

    /// Nothing when another collector is applying retention right now.
    async fn prune_snapshots(&self, before_week: NaiveDate) -> Result<u64, StoreError> {
        const OP: &str = "prune snapshots";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        if !self.retention_lock(&tx, OP).await? {
            return Ok(0);
        }
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
        let mut pruned = 0;
        for statement in sql::PRUNE_SNAPSHOTS {
            pruned += tx
                .execute(statement, &[&before_week])
                .await
                .context(db, OP)?;
        }
        tx.commit().await.context(db, OP)?;
        Ok(pruned)
    }

    /// A 4.x cluster is keyed by a node uuid, so its snapshots go with that node.
    async fn retention_lock(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        op: &'static str,
    ) -> Result<bool, StoreError> {
        tx.query_one(TRY_RETENTION_LOCK, &[&self.retention_key])
            .await
            .and_then(|row| row.try_get(0))
            .context(&self.db, op)
    }

    async fn forget(&self, uuid: &str, presented: &str) -> Result<ForgetOutcome, StoreError> {
        const OP: &str = "forget node";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK_FOR_FORGET, &[&self.lock_key])
            .await
            .context(db, OP)?;
        let row = tx
            .query_opt(crate::claims::CLAIMED, &[&uuid])
            .await
            .context(db, OP)?;
        let Some(row) = row else {
            return Ok(ForgetOutcome::UnknownNode);
        };
        let stored: Option<String> = row.try_get(0).context(db, OP)?;
        if !secret_matches(stored.as_deref(), presented) {
            return Ok(ForgetOutcome::WrongSecret);
        }
        let reports = tx
            .execute(sql::FORGET_REPORTS, &[&uuid])
            .await
            .context(db, OP)?;
        for statement in sql::FORGET_WEEKS.into_iter().chain(sql::FORGET_NODE) {
            tx.execute(statement, &[&uuid]).await.context(db, OP)?;
        }
        tx.commit().await.context(db, OP)?;
        Ok(ForgetOutcome::Deleted { reports })
    }
}
