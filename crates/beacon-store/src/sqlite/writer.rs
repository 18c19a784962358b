//! The SQLite writer thread: report batches appended to the `incoming` log, chunks of
//! them moved into `reports` and the rollups, and maintenance.
//!
//! An ingest commit only appends to `incoming`, a table without secondary indexes, so it
//! writes a few pages at the end of the file; a random page of every index for every
//! report is what capped ingest before (see BENCHMARKS.md). The chunk that moves the
//! reports into their indexed tables touches each index page once for many reports.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::backlog::{self, Backlog};
use crate::batch::{self, Counters, Job, Run, Task};
use crate::maintenance::secret_matches;
use crate::pending;
use crate::rollup::{self, Changes, ClusterWeek, Dims, Loaded, Node, NodeWeek, Wanted};
use crate::{ForgetOutcome, InsertOutcome, NewReport, StoreError};

const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM reports WHERE day = ?1 AND uuid = ?2)";
/// The columns of a report row, in `reports` and in the `incoming` log alike.
macro_rules! report_columns {
    () => {
        "day, uuid, cluster_uuid, received_at, emqx_version, os_name, os_version, edition,
        node_count, format, raw"
    };
}
const LOG: &str = concat!(
    "INSERT INTO incoming (",
    report_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
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
/// The log is indexed oldest first, so a chunk is always its first rows.
const READ_CHUNK: &str = concat!(
    "SELECT id, ",
    report_columns!(),
    " FROM incoming ORDER BY id LIMIT ?1"
);
const DROP_INDEXED: &str = "DELETE FROM incoming WHERE id <= ?1";

const GET_NODE: &str = "SELECT uuid, first_day, first_at, version, os, secret_sha256, secret_at
    FROM nodes WHERE uuid = ?1";
const GET_NODE_WEEK: &str =
    "SELECT uuid, week, received_at, version, os FROM node_weeks WHERE uuid = ?1 AND week = ?2";
const GET_CLUSTER_WEEK: &str = "SELECT cluster_key, week, received_at, version, os, profile
    FROM cluster_weeks WHERE cluster_key = ?1 AND week = ?2";
const PUT_NODE: &str = "INSERT INTO nodes
        (uuid, first_day, first_at, version, os, secret_sha256, secret_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (uuid) DO UPDATE SET first_day = excluded.first_day,
        first_at = excluded.first_at, version = excluded.version, os = excluded.os,
        secret_sha256 = excluded.secret_sha256, secret_at = excluded.secret_at";
const PUT_NODE_WEEK: &str = "INSERT INTO node_weeks (uuid, week, received_at, version, os)
    VALUES (?1, ?2, ?3, ?4, ?5)
    ON CONFLICT (uuid, week) DO UPDATE SET received_at = excluded.received_at,
        version = excluded.version, os = excluded.os";
const PUT_CLUSTER_WEEK: &str = "INSERT INTO cluster_weeks
        (cluster_key, week, received_at, version, os, profile)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (cluster_key, week) DO UPDATE SET received_at = excluded.received_at,
        version = excluded.version, os = excluded.os, profile = excluded.profile";
const ADD_DELTA: &str = "INSERT INTO rollups (version, os, kind, week, k1, k2, n)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (version, os, kind, week, k1, k2) DO UPDATE SET n = n + excluded.n";
/// Counters back at zero are dropped so that queries never read them.
const DROP_EMPTY: &str = "DELETE FROM rollups WHERE n = 0";

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
    let mut backlog = recover_backlog(&conn).unwrap_or_else(|error| {
        tracing::error!(db, %error, "reading the ingest log failed; retried at the next start");
        Backlog::default()
    });
    let mut received = Vec::with_capacity(batch::BATCH_CAP);
    while jobs.blocking_recv_many(&mut received, batch::BATCH_CAP) > 0 {
        for run in batch::runs(received.drain(..)) {
            match run {
                Run::Inserts(inserts) => {
                    let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
                    let result = write_batch(&mut conn, &reports, &backlog)
                        .map_err(StoreError::sqlite(db, "write report batch"));
                    if result.is_ok() {
                        backlog.logged(reports.iter().map(|r| (r.day, r.uuid.clone())));
                    }
                    batch::answer(inserts, result, counters);
                }
                Run::Task(Task::Tick) => {}
                Run::Task(Task::Flush { reply }) => {
                    batch::reply(reply, index_all(&mut conn, db, &mut backlog));
                }
                Run::Task(task) => match index_all(&mut conn, db, &mut backlog) {
                    Ok(()) => run_task(&mut conn, db, task),
                    Err(error) => task.fail(error),
                },
            }
        }
        if backlog.full() {
            index_logged(&mut conn, db, &mut backlog);
        }
        // A quiet moment: index until a job arrives, one chunk at a time.
        while backlog.quiet() && jobs.is_empty() {
            if !index_logged(&mut conn, db, &mut backlog) {
                break;
            }
        }
    }
    if let Err(error) = index_all(&mut conn, db, &mut backlog) {
        tracing::error!(%error, "indexing the ingest log failed at shutdown; done at next start");
    }
    tracing::debug!(db, "sqlite writer stopped");
}

/// Indexes one chunk; a failure is logged and the chunk stays in the log for the next try.
fn index_logged(conn: &mut Connection, db: &str, backlog: &mut Backlog) -> bool {
    match index_chunk(conn, db, backlog) {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(%error, "indexing the ingest log failed; it is retried");
            false
        }
    }
}

/// Appends the reports to the log in one transaction. A report replaces an earlier one of
/// its node and day whether that one is stored, pending, or earlier in this batch.
fn write_batch(
    conn: &mut Connection,
    reports: &[&NewReport],
    backlog: &Backlog,
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut exists = tx.prepare_cached(EXISTS)?;
    let mut log = tx.prepare_cached(LOG)?;
    let mut in_batch = std::collections::HashSet::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    for r in reports {
        let replaces = !in_batch.insert((r.day, r.uuid.as_str()))
            || backlog.holds(r.day, &r.uuid)
            || exists.query_row(params![r.day, r.uuid], |row| row.get(0))?;
        log.execute(row_params(r))?;
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

fn row_params(r: &NewReport) -> impl rusqlite::Params + '_ {
    (
        r.day,
        &r.uuid,
        &r.cluster_uuid,
        r.received_at,
        &r.emqx_version,
        &r.os_name,
        &r.os_version,
        &r.edition,
        r.node_count,
        r.format,
        &r.raw,
    )
}

fn index_all(conn: &mut Connection, db: &str, backlog: &mut Backlog) -> Result<(), StoreError> {
    while !backlog.is_empty() {
        index_chunk(conn, db, backlog)?;
    }
    Ok(())
}

/// Moves the oldest reports of the log into `reports` and the rollups, in one transaction.
fn index_chunk(conn: &mut Connection, db: &str, backlog: &mut Backlog) -> Result<(), StoreError> {
    let chunk = move_chunk(conn).map_err(StoreError::sqlite(db, "index the ingest log"))?;
    if chunk.is_empty() {
        // The log is empty whatever the keys say (another process drained it): start over.
        *backlog = Backlog::default();
    }
    backlog.indexed(chunk.iter().map(|r| (r.day, r.uuid.as_str())));
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
    tx.prepare_cached(DROP_INDEXED)?.execute(params![last_id])?;
    tx.commit()?;
    Ok(reports)
}

/// The oldest [`backlog::CHUNK`] reports of the log and the id of the last one.
fn read_chunk(conn: &Connection) -> rusqlite::Result<(i64, Vec<NewReport>)> {
    let mut statement = conn.prepare_cached(READ_CHUNK)?;
    let mut rows = statement.query(params![backlog::CHUNK as i64])?;
    let (mut last_id, mut reports) = (0, Vec::with_capacity(backlog::CHUNK));
    while let Some(row) = rows.next()? {
        last_id = row.get("id")?;
        reports.push(pending::reinserted(super::from_row(row)?));
    }
    Ok((last_id, reports))
}

/// The keys of the reports logged before a stop but not yet indexed.
fn recover_backlog(conn: &Connection) -> rusqlite::Result<Backlog> {
    let mut statement = conn.prepare("SELECT day, uuid FROM incoming")?;
    let keys = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !keys.is_empty() {
        tracing::info!(
            reports = keys.len(),
            "indexing reports logged but not yet indexed at the last stop"
        );
    }
    Ok(Backlog::recovered(keys))
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
    let mut loaded = Loaded::default();
    let mut statement = conn.prepare_cached(GET_NODE)?;
    for uuid in &wanted.nodes {
        loaded
            .nodes
            .extend(statement.query_row(params![uuid], node).optional()?);
    }
    let mut statement = conn.prepare_cached(GET_NODE_WEEK)?;
    for (uuid, week) in &wanted.node_weeks {
        let row = statement
            .query_row(params![uuid, week], node_week)
            .optional()?;
        loaded.node_weeks.extend(row);
    }
    let mut statement = conn.prepare_cached(GET_CLUSTER_WEEK)?;
    for (key, week) in &wanted.cluster_weeks {
        let row = statement
            .query_row(params![key, week], cluster_week)
            .optional()?;
        loaded.cluster_weeks.extend(row);
    }
    Ok(loaded)
}

fn node(row: &Row<'_>) -> rusqlite::Result<Node> {
    Ok(Node {
        uuid: row.get("uuid")?,
        first_day: row.get("first_day")?,
        first_at: row.get("first_at")?,
        dims: dims(row)?,
        secret_sha256: row.get("secret_sha256")?,
        secret_at: row.get("secret_at")?,
    })
}

fn node_week(row: &Row<'_>) -> rusqlite::Result<NodeWeek> {
    Ok(NodeWeek {
        uuid: row.get("uuid")?,
        week: row.get("week")?,
        received_at: row.get("received_at")?,
        dims: dims(row)?,
    })
}

fn cluster_week(row: &Row<'_>) -> rusqlite::Result<ClusterWeek> {
    let profile: String = row.get("profile")?;
    let profile = serde_json::from_str(&profile).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(5, Type::Text, Box::new(error))
    })?;
    Ok(ClusterWeek {
        key: row.get("cluster_key")?,
        week: row.get("week")?,
        received_at: row.get("received_at")?,
        dims: dims(row)?,
        profile,
    })
}

fn dims(row: &Row<'_>) -> rusqlite::Result<Dims> {
    Ok(Dims {
        version: row.get("version")?,
        os: row.get("os")?,
    })
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
    conn.prepare_cached(DROP_EMPTY)?.execute([])?;
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
        Task::Flush { reply } => batch::reply(reply, Ok(())),
        Task::Vacuum { reply } => {
            let result = conn.execute_batch("PRAGMA optimize");
            batch::reply(reply, result.map_err(StoreError::sqlite(db, "optimize")));
        }
        Task::Tick => {}
    }
}

fn delete_oldest_day(conn: &mut Connection, before: NaiveDate) -> rusqlite::Result<Option<u64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let oldest: Option<NaiveDate> =
        tx.query_row("SELECT min(day) FROM reports", [], |row| row.get(0))?;
    let Some(day) = oldest.filter(|day| *day < before) else {
        return Ok(None);
    };
    let deleted = tx.execute("DELETE FROM reports WHERE day = ?1", params![day])?;
    tx.commit()?;
    Ok(Some(deleted as u64))
}

fn prune_snapshots(conn: &mut Connection, before_week: NaiveDate) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let nodes = tx.execute(
        "DELETE FROM node_weeks WHERE week < ?1",
        params![before_week],
    )?;
    let clusters = tx.execute(
        "DELETE FROM cluster_weeks WHERE week < ?1",
        params![before_week],
    )?;
    tx.commit()?;
    Ok((nodes + clusters) as u64)
}

/// A 4.x cluster is keyed by a node uuid, so its snapshots go with that node.
fn forget(conn: &mut Connection, uuid: &str, presented: &str) -> rusqlite::Result<ForgetOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<Option<String>> = tx
        .query_row(
            "SELECT secret_sha256 FROM nodes WHERE uuid = ?1",
            params![uuid],
            |row| row.get(0),
        )
        .optional()?;
    let Some(stored) = stored else {
        return Ok(ForgetOutcome::UnknownNode);
    };
    if !secret_matches(stored.as_deref(), presented) {
        return Ok(ForgetOutcome::WrongSecret);
    }
    let reports = tx.execute("DELETE FROM reports WHERE uuid = ?1", params![uuid])?;
    tx.execute("DELETE FROM node_weeks WHERE uuid = ?1", params![uuid])?;
    tx.execute(
        "DELETE FROM cluster_weeks WHERE cluster_key = ?1",
        params![uuid],
    )?;
    tx.execute("DELETE FROM nodes WHERE uuid = ?1", params![uuid])?;
    tx.commit()?;
    Ok(ForgetOutcome::Deleted {
        reports: reports as u64,
    })
}
