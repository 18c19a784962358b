//! The SQLite writer thread: report batches appended to the `incoming` log, where they
//! wait uncounted; chunks of them counted (moved into `reports` and the rollups, see
//! `counting`); and maintenance.
//!
//! An ingest commit only appends to `incoming`, a table without secondary indexes, so it
//! writes a few pages at the end of the file; a random page of every index for every
//! report is what capped ingest before (see BENCHMARKS.md). The chunk that moves the
//! reports into their indexed tables touches each index page once for many reports.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use rusqlite::types::{ToSql, Type};
use rusqlite::{
    Connection, OptionalExtension, Params, Row, TransactionBehavior, params, params_from_iter,
};
use tokio::sync::mpsc;

use super::uncounted::UncountedLog;
use crate::batch::{self, Counters, Job, Run, Task};
use crate::counting::{self, CHUNK};
use crate::maintenance::secret_matches;
use crate::rollup::{self, Changes, Loaded, Wanted};
use crate::{ForgetOutcome, InsertOutcome, NewReport, ReportFacts, StoreError, rows, sql};

const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM reports WHERE day = ?1 AND uuid = ?2)";
/// The columns of a report row, in `reports` and in the `incoming` log alike.
macro_rules! report_columns {
    () => {
        "day, uuid, cluster_uuid, received_at, emqx_version, os_name, os_version, edition,
        node_count, format, raw"
    };
}
/// The log keeps each report's facts too, so that counting never reads its JSON.
const LOG: &str = concat!(
    "INSERT INTO incoming (",
    report_columns!(),
    ", facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
);
const UPSERT: &str = concat!(
    "INSERT INTO reports (",
    report_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
    ON CONFLICT (day, uuid) DO UPDATE SET
        cluster_uuid = excluded.cluster_uuid, received_at = excluded.received_at,
        emqx_version = excluded.emqx_version, os_name = excluded.os_name,
        os_version = excluded.os_version, edition = excluded.edition,
        node_count = excluded.node_count, format = excluded.format, raw = excluded.raw"
);
/// The log is counted oldest first, so a chunk is always its first rows.
const READ_CHUNK: &str = concat!(
    "SELECT id, facts, ",
    report_columns!(),
    " FROM incoming ORDER BY id LIMIT ?1"
);
const DROP_COUNTED: &str = "DELETE FROM incoming WHERE id <= ?1";

const GET_NODE: &str = "SELECT uuid, first_day, first_at, version, os, secret_sha256, secret_at
    FROM nodes WHERE uuid = ?1";
const GET_NODE_WEEK: &str =
    "SELECT uuid, week, received_at, version, os FROM node_weeks WHERE uuid = ?1 AND week = ?2";
const GET_CLUSTER_WEEK: &str = "SELECT cluster_key, week, received_at, version, os, profile
    FROM cluster_weeks WHERE cluster_key = ?1 AND week = ?2";
const PUT_NODE: &str = sql::upsert_nodes!("VALUES ($1, $2, $3, $4, $5, $6, $7)");
const PUT_NODE_WEEK: &str = sql::upsert_node_weeks!("VALUES ($1, $2, $3, $4, $5)");
const PUT_CLUSTER_WEEK: &str = sql::upsert_cluster_weeks!("VALUES ($1, $2, $3, $4, $5, $6)");
const ADD_DELTA: &str = sql::add_to_rollups!("VALUES ($1, $2, $3, $4, $5, $6, $7)");

pub(super) fn spawn(
    conn: Connection,
    db: String,
    jobs: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
) -> Result<(), StoreError> {
    let path = PathBuf::from(&db);
    std::thread::Builder::new()
        .name("beacon-sqlite-writer".into())
        .spawn(move || run(conn, &db, jobs, &counters))
        .map(drop)
        .map_err(|error| StoreError::Io {
            op: "start the writer thread for",
            path,
            error: Arc::new(error),
        })
}

/// Runs until every sender is gone, that is until the store is dropped.
fn run(mut conn: Connection, db: &str, mut jobs: mpsc::Receiver<Job>, counters: &Counters) {
    let mut uncounted = recover_uncounted(&conn).unwrap_or_else(|error| {
        tracing::error!(db, %error, "reading the ingest log failed; retried at the next start");
        UncountedLog::default()
    });
    let mut received = Vec::with_capacity(batch::BATCH_CAP);
    while jobs.blocking_recv_many(&mut received, batch::BATCH_CAP) > 0 {
        for run in batch::runs(received.drain(..)) {
            match run {
                Run::Inserts(inserts) => {
                    let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
                    let result = write_batch(&mut conn, &reports, &uncounted)
                        .map_err(StoreError::sqlite(db, "write report batch"));
                    if result.is_ok() {
                        uncounted.logged(reports.iter().map(|r| (r.day, r.uuid.clone())));
                    }
                    batch::answer(inserts, result, counters);
                }
                Run::Task(Task::Tick) => {}
                Run::Task(Task::Settle { reply }) => {
                    batch::reply(reply, settle(&mut conn, db, &mut uncounted));
                }
                Run::Task(task) => match settle(&mut conn, db, &mut uncounted) {
                    Ok(()) => run_task(&mut conn, db, task),
                    Err(error) => task.fail(error),
                },
            }
        }
        if uncounted.full() {
            try_count_chunk(&mut conn, db, &mut uncounted);
        }
        // A quiet moment: count until a job arrives, one chunk at a time.
        while uncounted.quiet() && jobs.is_empty() {
            if !try_count_chunk(&mut conn, db, &mut uncounted) {
                break;
            }
        }
    }
    if let Err(error) = settle(&mut conn, db, &mut uncounted) {
        tracing::error!(%error, "counting the ingest log failed at shutdown; done at next start");
    }
    tracing::debug!(db, "sqlite writer stopped");
}

/// Counts one chunk; a failure is logged and the chunk stays in the log for the next try.
fn try_count_chunk(conn: &mut Connection, db: &str, uncounted: &mut UncountedLog) -> bool {
    match count_chunk(conn, db, uncounted) {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "counting the ingest log failed; it is retried");
            false
        }
    }
}

/// Appends the reports to the log in one transaction. A report replaces an earlier one of
/// its node and day whether that one is counted, uncounted, or earlier in this batch.
fn write_batch(
    conn: &mut Connection,
    reports: &[&NewReport],
    uncounted: &UncountedLog,
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut exists = tx.prepare_cached(EXISTS)?;
    let mut log = tx.prepare_cached(LOG)?;
    let mut in_batch = std::collections::HashSet::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    for r in reports {
        let replaces = !in_batch.insert((r.day, r.uuid.as_str()))
            || uncounted.holds(r.day, &r.uuid)
            || exists.query_row(params![r.day, r.uuid], |row| row.get(0))?;
        let facts = r.analytics.to_column();
        let facts: [&dyn ToSql; 1] = [&facts];
        log.execute(params_from_iter(row_params(r).into_iter().chain(facts)))?;
        outcomes.push(if replaces {
            InsertOutcome::Replaced
        } else {
            InsertOutcome::Inserted
        });
    }
    drop((exists, log));
    tx.commit()?;
    Ok(outcomes)
}

fn row_params(r: &NewReport) -> [&dyn ToSql; 11] {
    [
        &r.day,
        &r.uuid,
        &r.cluster_uuid,
        &r.received_at,
        &r.emqx_version,
        &r.os_name,
        &r.os_version,
        &r.edition,
        &r.node_count,
        &r.format,
        &r.raw,
    ]
}

/// Counts chunks until the log is empty.
fn settle(conn: &mut Connection, db: &str, uncounted: &mut UncountedLog) -> Result<(), StoreError> {
    while !uncounted.is_empty() {
        count_chunk(conn, db, uncounted)?;
    }
    Ok(())
}

/// Moves the oldest reports of the log into `reports` and the rollups, in one transaction.
fn count_chunk(
    conn: &mut Connection,
    db: &str,
    uncounted: &mut UncountedLog,
) -> Result<(), StoreError> {
    let chunk = move_chunk(conn).map_err(StoreError::sqlite(db, "count the ingest log"))?;
    if chunk.is_empty() {
        // The log is empty whatever the keys say (another process drained it): start over.
        *uncounted = UncountedLog::default();
    }
    uncounted.counted(chunk.iter().map(|r| (r.day, r.uuid.as_str())));
    Ok(())
}

fn move_chunk(conn: &mut Connection) -> rusqlite::Result<Vec<NewReport>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (last_id, reports) = read_chunk(&tx)?;
    let refs: Vec<&NewReport> = reports.iter().collect();
    upsert_all(&tx, &refs)?;
    let loaded = load(&tx, &rollup::wanted(refs.iter().copied()))?;
    let changes = rollup::apply(loaded, refs.iter().copied());
    write_changes(&tx, &changes)?;
    tx.prepare_cached(DROP_COUNTED)?.execute(params![last_id])?;
    tx.commit()?;
    Ok(reports)
}

/// The oldest [`CHUNK`] reports of the log and the id of the last one.
fn read_chunk(conn: &Connection) -> rusqlite::Result<(i64, Vec<NewReport>)> {
    let mut statement = conn.prepare_cached(READ_CHUNK)?;
    let mut rows = statement.query(params![CHUNK as i64])?;
    let (mut last_id, mut reports) = (0, Vec::with_capacity(CHUNK));
    while let Some(row) = rows.next()? {
        last_id = row.get("id")?;
        let facts: Option<String> = row.get("facts")?;
        let facts = ReportFacts::from_column(facts.as_deref()).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(error))
        })?;
        reports.push(counting::reinserted(rows::report(row)?, facts));
    }
    Ok((last_id, reports))
}

/// The keys of the reports logged before a stop but not yet counted.
fn recover_uncounted(conn: &Connection) -> rusqlite::Result<UncountedLog> {
    let mut statement = conn.prepare("SELECT day, uuid FROM incoming")?;
    let keys = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !keys.is_empty() {
        tracing::info!(
            reports = keys.len(),
            "counting reports logged but not yet counted at the last stop"
        );
    }
    Ok(UncountedLog::recovered(keys))
}

/// Reports are applied in log order, so a later report of the same node and day replaces
/// the earlier one.
fn upsert_all(conn: &Connection, reports: &[&NewReport]) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(UPSERT)?;
    for r in reports {
        upsert.execute(row_params(r))?;
    }
    Ok(())
}

fn load(conn: &Connection, wanted: &Wanted) -> rusqlite::Result<Loaded> {
    let nodes = wanted.nodes.iter().map(|uuid| [uuid]);
    let node_weeks = wanted.node_weeks.iter().map(|(uuid, week)| (uuid, week));
    let cluster_weeks = wanted.cluster_weeks.iter().map(|(key, week)| (key, week));
    Ok(Loaded {
        nodes: load_each(conn, GET_NODE, nodes, |row| rows::node(row))?,
        node_weeks: load_each(conn, GET_NODE_WEEK, node_weeks, |row| rows::node_week(row))?,
        cluster_weeks: load_each(conn, GET_CLUSTER_WEEK, cluster_weeks, |row| {
            rows::cluster_week(row)
        })?,
    })
}

/// The row `sql` finds for each key that has one.
fn load_each<P: Params, T>(
    conn: &Connection,
    sql: &str,
    keys: impl Iterator<Item = P>,
    decode: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut found = Vec::new();
    for key in keys {
        found.extend(statement.query_row(key, decode).optional()?);
    }
    Ok(found)
}

fn write_changes(conn: &Connection, changes: &Changes) -> rusqlite::Result<()> {
    let mut put = conn.prepare_cached(PUT_NODE)?;
    for n in &changes.nodes {
        let (version, os) = (&n.dims.version, &n.dims.os);
        let secret = (&n.secret_sha256, &n.secret_at);
        put.execute(params![
            n.uuid,
            n.first_day,
            n.first_at,
            version,
            os,
            secret.0,
            secret.1
        ])?;
    }
    let mut put = conn.prepare_cached(PUT_NODE_WEEK)?;
    for w in &changes.node_weeks {
        put.execute(params![
            w.uuid,
            w.week,
            w.received_at,
            w.dims.version,
            w.dims.os
        ])?;
    }
    let mut put = conn.prepare_cached(PUT_CLUSTER_WEEK)?;
    for c in &changes.cluster_weeks {
        let profile = c.profile.to_json();
        put.execute(params![
            c.key,
            c.week,
            c.received_at,
            c.dims.version,
            c.dims.os,
            profile
        ])?;
    }
    let mut add = conn.prepare_cached(ADD_DELTA)?;
    for d in &changes.deltas {
        add.execute(params![d.version, d.os, d.kind, d.week, d.k1, d.k2, d.n])?;
    }
    conn.prepare_cached(sql::DROP_EMPTY_COUNTERS)?.execute([])?;
    Ok(())
}

fn run_task(conn: &mut Connection, db: &str, task: Task) {
    match task {
        Task::DeleteOldestDay { before, reply } => {
            let result = delete_oldest_day(conn, before);
            batch::reply(
                reply,
                result.map_err(StoreError::sqlite(db, "delete old reports")),
            );
        }
        Task::PruneSnapshots { before_week, reply } => {
            let result = prune_snapshots(conn, before_week);
            batch::reply(
                reply,
                result.map_err(StoreError::sqlite(db, "prune snapshots")),
            );
        }
        Task::Forget {
            uuid,
            secret_sha256,
            reply,
        } => {
            let result = forget(conn, &uuid, &secret_sha256);
            batch::reply(reply, result.map_err(StoreError::sqlite(db, "forget node")));
        }
        Task::Settle { reply } => batch::reply(reply, Ok(())),
        Task::Optimize { reply } => {
            let result = conn.execute_batch("PRAGMA optimize");
            batch::reply(reply, result.map_err(StoreError::sqlite(db, "optimize")));
        }
        Task::Tick => {}
    }
}

fn delete_oldest_day(conn: &mut Connection, before: NaiveDate) -> rusqlite::Result<Option<u64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let oldest: Option<NaiveDate> = tx.query_row(sql::OLDEST_DAY, [], |row| row.get(0))?;
    let Some(day) = oldest.filter(|day| *day < before) else {
        return Ok(None);
    };
    let deleted = tx.execute(sql::DELETE_DAY, params![day])?;
    tx.commit()?;
    Ok(Some(deleted as u64))
}

fn prune_snapshots(conn: &mut Connection, before_week: NaiveDate) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut pruned = 0;
    for statement in sql::PRUNE_SNAPSHOTS {
        pruned += tx.execute(statement, params![before_week])?;
    }
    tx.commit()?;
    Ok(pruned as u64)
}

fn forget(conn: &mut Connection, uuid: &str, presented: &str) -> rusqlite::Result<ForgetOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<Option<String>> = tx
        .query_row(sql::NODE_SECRET, params![uuid], |row| row.get(0))
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
