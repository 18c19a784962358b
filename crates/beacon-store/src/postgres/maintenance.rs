//! Maintenance on PostgreSQL, each task in one transaction that takes the writer's lock.

use chrono::NaiveDate;

use super::writer::{Context, LOCK, PgWriter};
use crate::maintenance::secret_matches;
use crate::{ForgetOutcome, StoreError, sql};

impl PgWriter {
    /// Sets the visibility map that index-only scans of the rollups need, and statistics.
    pub(super) async fn optimize(&self) -> Result<(), StoreError> {
        const OP: &str = "vacuum rollups";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        client
            .batch_execute("VACUUM (ANALYZE) rollups")
            .await
            .context(db, OP)
    }

    pub(super) async fn delete_oldest_day(
        &self,
        before: NaiveDate,
    ) -> Result<Option<u64>, StoreError> {
        const OP: &str = "delete old reports";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
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

    pub(super) async fn prune_snapshots(&self, before_week: NaiveDate) -> Result<u64, StoreError> {
        const OP: &str = "prune snapshots";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
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
    pub(super) async fn forget(
        &self,
        uuid: &str,
        presented: &str,
    ) -> Result<ForgetOutcome, StoreError> {
        const OP: &str = "forget node";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
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
        for statement in sql::FORGET_SNAPSHOTS {
            tx.execute(statement, &[&uuid]).await.context(db, OP)?;
        }
        tx.commit().await.context(db, OP)?;
        Ok(ForgetOutcome::Deleted { reports })
    }
}
