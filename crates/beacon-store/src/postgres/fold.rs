//! Folding on PostgreSQL (see `counting`): a counted chunk appends its counter deltas, as
//! one text (`rollup::encode`), to `counter_deltas`; a **fold** takes every text logged,
//! merges them per counter, adds each counter once to `rollups` (in key order) and drops
//! the counters it brought to zero, in one transaction. A chunk of 1,024 reports touches
//! about 4,000 counters, most of which the next chunk touches again: adding them chunk by
//! chunk was PostgreSQL's largest statement, and the chunks of two collectors queued for
//! the same counter rows.
//!
//! Folds of all collectors take turns (an advisory lock per schema), and they are the
//! only writers of `rollups`: a fold takes, under that lock, every text committed before
//! it, so none is folded twice or lost, and the counters never see a chunk's deltas
//! without those of the chunks it was counted after. A rollup read adds the texts not
//! folded yet to the counters it reads, both from one snapshot ([`unfolded_deltas`]).

use std::sync::atomic::Ordering;

use deadpool_postgres::Transaction;

use super::columns::DeltaColumns;
use super::count::PgCounter;
use super::writer::Context;
use crate::rollup::{self, Delta};
use crate::{StoreError, sql};

pub(super) const LOG_DELTAS: &str = "INSERT INTO counter_deltas (deltas) VALUES ($1)";
/// Folds of several collectors take turns; a lost fold loses its deletion of the texts
/// with it, so it need not be durable at once.
const LOCK_FOR_FOLD: &str = concat!(
    "SELECT pg_advisory_xact_lock(hashtext($1)), ",
    "set_config('synchronous_commit', 'off', true), ",
    super::key_lookups!()
);
const TAKE_DELTAS: &str = "DELETE FROM counter_deltas RETURNING deltas";
const READ_DELTAS: &str = "SELECT deltas FROM counter_deltas";
const ADD_DELTAS: &str = sql::upsert!(
    rollups,
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[],
        $6::text[], $7::int8[])"
);
/// Counters back at zero are dropped so that queries never read them; only a counter a
/// fold lowered can have reached zero, so only those keys are looked at (the key columns
/// of [`DeltaColumns`]).
const DROP_EMPTIED: &str = "DELETE FROM rollups r
    USING unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[])
        AS k (version, os, kind, week, k1, k2)
    WHERE r.version = k.version AND r.os = k.os AND r.kind = k.kind AND r.week = k.week
        AND r.k1 = k.k1 AND r.k2 = k.k2 AND r.n = 0";

impl PgCounter {
    /// Folds every counter delta logged so far (by any collector) into the counters.
    pub(super) async fn fold(&self) -> Result<(), StoreError> {
        let logged = self.unfolded.swap(0, Ordering::Relaxed);
        let folded = self.try_fold().await;
        if folded.is_err() {
            self.unfolded.fetch_add(logged, Ordering::Relaxed);
        }
        folded
    }

    async fn try_fold(&self) -> Result<(), StoreError> {
        const OP: &str = "fold the counter deltas";
        let started = std::time::Instant::now();
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK_FOR_FOLD, &[&self.fold_key])
            .await
            .context(db, OP)?;
        let mut deltas = merged(&tx, TAKE_DELTAS, db, |_, _, _| true).await?;
        deltas.sort_unstable_by(|a, b| {
            (&a.version, &a.os, a.kind, a.week, &a.k1, &a.k2)
                .cmp(&(&b.version, &b.os, b.kind, b.week, &b.k1, &b.k2))
        });
        add(&tx, &deltas).await.context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        let took_ms = started.elapsed().as_millis();
        tracing::debug!(counters = deltas.len(), took_ms, "fold");
        Ok(())
    }
}

/// The counter deltas logged and not folded yet whose (kind, version, os) `keep` accepts,
/// merged per counter. A rollup read calls it in the transaction it reads the counters in.
pub(super) async fn unfolded_deltas(
    tx: &Transaction<'_>,
    db: &str,
    keep: impl Fn(&str, &str, &str) -> bool,
) -> Result<Vec<Delta>, StoreError> {
    merged(tx, READ_DELTAS, db, keep).await
}

async fn merged(
    tx: &Transaction<'_>,
    sql: &str,
    db: &str,
    keep: impl Fn(&str, &str, &str) -> bool,
) -> Result<Vec<Delta>, StoreError> {
    let rows = tx
        .query(sql, &[])
        .await
        .context(db, "read the counter deltas")?;
    let texts = rows
        .iter()
        .map(|row| row.try_get::<_, &str>(0))
        .collect::<Result<Vec<_>, _>>()
        .context(db, "read the counter deltas")?;
    rollup::merge_encoded(texts, keep).ok_or_else(|| StoreError::Decode {
        db: db.to_owned(),
        column: "counter_deltas.deltas",
        reason: "not a list of counter deltas".to_owned(),
    })
}

/// The merged deltas added to their counters and the emptied counters dropped, in one
/// round trip.
async fn add(tx: &Transaction<'_>, deltas: &[Delta]) -> Result<(), tokio_postgres::Error> {
    if deltas.is_empty() {
        return Ok(());
    }
    let lowered: Vec<Delta> = deltas.iter().filter(|d| d.n < 0).cloned().collect();
    let (all, lowered) = (DeltaColumns::of(deltas), DeltaColumns::of(&lowered));
    let (all, lowered) = (all.params(), lowered.params());
    let (adding, dropping) = (
        tx.prepare_cached(ADD_DELTAS).await?,
        tx.prepare_cached(DROP_EMPTIED).await?,
    );
    // Sent in this order, in one round trip; the first error in that order is the cause.
    let (added, dropped) = tokio::join!(
        tx.execute(&adding, &all),
        tx.execute(&dropping, &lowered[..6]),
    );
    added?;
    dropped.map(drop)
}
