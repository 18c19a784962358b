//! Facts of uncounted reports logged before schema version 5 kept them (see
//! `migrations`): filled once at open, before the writer counts anything.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::{LegacyFacts, StoreError};

/// Fills the `facts` of the log entries that have none, through `legacy`.
pub(super) fn backfill(
    conn: &mut Connection,
    db: &str,
    legacy: Option<LegacyFacts>,
) -> Result<(), StoreError> {
    let (filled, missing) =
        fill(conn, legacy).map_err(StoreError::sqlite(db, "back-fill the facts of the log"))?;
    crate::facts::log_backfill(db, filled, missing);
    Ok(())
}

fn fill(conn: &mut Connection, legacy: Option<LegacyFacts>) -> rusqlite::Result<(usize, usize)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let missing: Vec<(i64, String)> = tx
        .prepare("SELECT id, raw FROM incoming WHERE facts IS NULL")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut filled = 0;
    let mut update = tx.prepare("UPDATE incoming SET facts = ?1 WHERE id = ?2")?;
    for (id, raw) in &missing {
        if let Some(facts) = legacy.and_then(|derive| derive(raw)) {
            update.execute(params![crate::facts::to_column(&facts), id])?;
            filled += 1;
        }
    }
    drop(update);
    tx.commit()?;
    Ok((filled, missing.len()))
}
