//! The SQLite writer thread: report batches with their rollup updates, and maintenance.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::mpsc;

use crate::batch::{self, Counters, Job, Run, Task};
use crate::maintenance::secret_matches;
use crate::pending::{self, Pending};
use crate::rollup::{self, Changes, ClusterWeek, Dims, Loaded, Node, NodeWeek, Wanted};
use crate::{ForgetOutcome, InsertOutcome, NewReport, StoreError};

const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM reports WHERE day = ?1 AND uuid = ?2)";
const UPSERT: &str = "INSERT INTO reports (day, uuid, cluster_uuid, received_at, emqx_version,
        os_name, os_version, edition, node_count, format, raw)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
    ON CONFLICT (day, uuid) DO UPDATE SET
        cluster_uuid = excluded.cluster_uuid, received_at = excluded.received_at,
        emqx_version = excluded.emqx_version, os_name = excluded.os_name,
        os_version = excluded.os_version, edition = excluded.edition,
        node_count = excluded.node_count, format = excluded.format, raw = excluded.raw";

const MARK_PENDING: &str = "INSERT OR IGNORE INTO rollup_pending (day, uuid) VALUES (?1, ?2)";
const UNMARK_PENDING: &str = "DELETE FROM rollup_pending WHERE day = ?1 AND uuid = ?2";
const RECOVER_PENDING: &str = super::select_reports!(
    "WHERE (day, uuid) IN (SELECT day, uuid FROM rollup_pending) ORDER BY received_at"
);

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
    let mut pending = recover_pending(&conn).unwrap_or_else(|error| {
        tracing::error!(db, %error, "reading pending rollups failed; they apply at the next start");
        Pending::default()
    });
    let mut received = Vec::with_capacity(batch::BATCH_CAP);
    while jobs.blocking_recv_many(&mut received, batch::BATCH_CAP) > 0 {
        for run in batch::runs(received.drain(..)) {
            match run {
                Run::Inserts(inserts) => {
                    let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
                    let result = write_batch(&mut conn, &reports)
                        .map_err(StoreError::sqlite(db, "write report batch"));
                    if result.is_ok() {
                        pending.push(reports.into_iter().cloned());
                    }
                    batch::answer(inserts, result, counters);
                }
                Run::Task(Task::Tick) => {}
                Run::Task(Task::Flush { reply }) => {
                    batch::reply(reply, roll_up_all(&mut conn, db, &mut pending));
                }
                Run::Task(task) => match roll_up_all(&mut conn, db, &mut pending) {
                    Ok(()) => run_task(&mut conn, db, task),
                    Err(error) => task.fail(error),
                },
            }
        }
        if pending.due()
            && let Err(error) = roll_up_chunk(&mut conn, db, &mut pending)
        {
            tracing::error!(%error, "rollup update failed; it is retried with the next chunk");
        }
    }
    if let Err(error) = roll_up_all(&mut conn, db, &mut pending) {
        tracing::error!(%error, "rollup update failed at shutdown; it applies at the next start");
    }
    tracing::debug!(db, "sqlite writer stopped");
}

/// Stores the reports and marks them pending for the rollups, in one transaction.
fn write_batch(
    conn: &mut Connection,
    reports: &[&NewReport],
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let outcomes = upsert_all(&tx, reports)?;
    let mut mark = tx.prepare_cached(MARK_PENDING)?;
    for report in reports {
        mark.execute(params![report.day, report.uuid])?;
    }
    drop(mark);
    tx.commit()?;
    Ok(outcomes)
}

fn roll_up_all(conn: &mut Connection, db: &str, pending: &mut Pending) -> Result<(), StoreError> {
    while !pending.is_empty() {
        roll_up_chunk(conn, db, pending)?;
    }
    Ok(())
}

/// Applies the rollups of the oldest pending reports in one transaction.
fn roll_up_chunk(conn: &mut Connection, db: &str, pending: &mut Pending) -> Result<(), StoreError> {
    let chunk = pending.chunk();
    let applied = chunk.len();
    apply_rollups(conn, &chunk).map_err(StoreError::sqlite(db, "update rollups"))?;
    pending.applied(applied);
    Ok(())
}

fn apply_rollups(conn: &mut Connection, reports: &[&NewReport]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let loaded = load(&tx, &rollup::wanted(reports.iter().copied()))?;
    let changes = rollup::apply(loaded, reports.iter().copied());
    write_changes(&tx, &changes)?;
    let mut done = tx.prepare_cached(UNMARK_PENDING)?;
    for report in reports {
        done.execute(params![report.day, report.uuid])?;
    }
    drop(done);
    tx.commit()
}

/// Reports committed before a stop whose rollups were not, in the order they arrived.
fn recover_pending(conn: &Connection) -> rusqlite::Result<Pending> {
    let mut statement = conn.prepare(RECOVER_PENDING)?;
    let rows = statement.query_map([], super::from_row)?;
    let reports = rows
        .map(|row| row.map(pending::reinserted))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !reports.is_empty() {
        tracing::info!(
            reports = reports.len(),
            "applying rollups left pending at the last stop"
        );
    }
    Ok(Pending::recovered(reports))
}

/// Reports are applied in queue order, so a later report of the same node and day in the
/// same batch replaces the earlier one, as it would in separate batches.
fn upsert_all(conn: &Connection, reports: &[&NewReport]) -> rusqlite::Result<Vec<InsertOutcome>> {
    let mut exists = conn.prepare_cached(EXISTS)?;
    let mut upsert = conn.prepare_cached(UPSERT)?;
    reports
        .iter()
        .map(|r| {
            let existed: bool = exists.query_row(params![r.day, r.uuid], |row| row.get(0))?;
            upsert.execute(params![
                r.day,
                r.uuid,
                r.cluster_uuid,
                r.received_at,
                r.emqx_version,
                r.os_name,
                r.os_version,
                r.edition,
                r.node_count,
                r.format,
                r.raw
            ])?;
            Ok(if existed {
                InsertOutcome::Replaced
            } else {
                InsertOutcome::Inserted
            })
        })
        .collect()
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
