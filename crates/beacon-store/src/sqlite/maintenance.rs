//! Maintenance on SQLite, each task in one immediate transaction.

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::maintenance::secret_matches;
use crate::{ForgetOutcome, sql};

pub(super) fn delete_oldest_day(
    conn: &mut Connection,
    before: NaiveDate,
) -> rusqlite::Result<Option<u64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let oldest: Option<NaiveDate> = tx.query_row(sql::OLDEST_DAY, [], |row| row.get(0))?;
    let Some(day) = oldest.filter(|day| *day < before) else {
        return Ok(None);
    };
    let deleted = tx.execute(sql::DELETE_DAY, params![day])?;
    tx.commit()?;
    Ok(Some(deleted as u64))
}

pub(super) fn prune_snapshots(
    conn: &mut Connection,
    before_week: NaiveDate,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut pruned = 0;
    for statement in sql::PRUNE_SNAPSHOTS {
        pruned += tx.execute(statement, params![before_week])?;
    }
    tx.commit()?;
    Ok(pruned as u64)
}

/// A 4.x cluster is keyed by a node uuid, so its snapshots go with that node (see `sql`).
pub(super) fn forget(
    conn: &mut Connection,
    uuid: &str,
    presented: &str,
) -> rusqlite::Result<ForgetOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<Option<String>> = tx
        .query_row(crate::claims::CLAIMED, params![uuid], |row| row.get(0))
        .optional()?;
    let Some(stored) = stored else {
        return Ok(ForgetOutcome::UnknownNode);
    };
    if !secret_matches(stored.as_deref(), presented) {
        return Ok(ForgetOutcome::WrongSecret);
    }
    let reports = tx.execute(sql::FORGET_REPORTS, params![uuid])?;
    for statement in sql::FORGET_SNAPSHOTS {
        tx.execute(statement, params![uuid])?;
    }
    tx.commit()?;
    Ok(ForgetOutcome::Deleted {
        reports: reports as u64,
    })
}
