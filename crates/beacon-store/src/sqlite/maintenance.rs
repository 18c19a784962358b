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
    for statement in sql::FORGET_WEEKS.into_iter().chain(sql::FORGET_NODE) {
        tx.execute(statement, params![uuid])?;
    }
    tx.commit()?;
    Ok(ForgetOutcome::Deleted {
        reports: reports as u64,
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::migrations::SQLITE;
    use crate::sql::{FORGET_REPORTS, FORGET_WEEKS};

    /// Forgetting one node must not read whole tables: they hold every report.
    #[test]
    fn forgetting_a_node_seeks_its_rows_instead_of_scanning_the_tables() {
        let conn = Connection::open_in_memory().expect("open");
        for migration in SQLITE {
            conn.execute_batch(migration.sql).expect(migration.name);
        }
        for statement in std::iter::once(FORGET_REPORTS).chain(FORGET_WEEKS) {
            let mut explain = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .expect("explain");
            let plan: Vec<String> = explain
                .query_map(["node"], |row| row.get(3))
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("rows");
            let scans: Vec<&String> = plan
                .iter()
                .filter(|step| {
                    ["reports", "node_weeks", "cluster_weeks"]
                        .iter()
                        .any(|table| step.starts_with(&format!("SCAN {table}")))
                })
                .collect();
            assert!(scans.is_empty(), "{statement}\n{plan:#?}");
        }
    }
}
