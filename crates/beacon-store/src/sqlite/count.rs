//! Counting on SQLite (see `counting`): a chunk of the `incoming` log is moved into
//! `reports` and counted in one transaction, which touches each index page once for many
//! reports. The chunk's counter deltas are logged in `counter_deltas` and folded into the
//! rollup counters many chunks at a time ([`fold`]), since most counters a chunk touches
//! the next chunks touch again.

use std::time::Instant;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Params, Row, TransactionBehavior, params};

use super::plan::{Planned, data_version};
use super::uncounted::UncountedLog;
use super::writer::row_params;
use crate::batch::Counters;
use crate::counting::{self, CHUNK};
use crate::rollup::{self, Changes, Delta, Loaded, Wanted};
use crate::{NewReport, StoreError, rows, sql};

/// The columns of a report row but its text, in `reports` and in the `incoming` log alike.
macro_rules! report_fields {
    () => {
        "day, uuid, cluster_uuid, received_at, emqx_version, os_name, os_version, edition,
        node_count, format"
    };
}
/// The columns of a report row, in `reports` and in the `incoming` log alike.
macro_rules! report_columns {
    () => {
        concat!($crate::sqlite::count::report_fields!(), ", raw")
    };
}
pub(super) use {report_columns, report_fields};

const UPSERT: &str = sql::upsert!(
    reports,
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);
/// The log is counted oldest first, so a chunk is always its first rows.
const READ_CHUNK: &str = concat!(
    "SELECT id, facts, ",
    report_columns!(),
    " FROM incoming ORDER BY id LIMIT ?1"
);
/// The whole log, for a read to count: its text is never needed (nor read from disk).
const READ_UNCOUNTED: &str = concat!(
    "SELECT id, facts, ",
    report_fields!(),
    ", '' AS raw FROM incoming ORDER BY id"
);
const DROP_COUNTED: &str = "DELETE FROM incoming WHERE id <= ?1";

const GET_NODE: &str = "SELECT uuid, first_day, first_at, version, os
    FROM nodes WHERE uuid = ?1";
const GET_NODE_WEEK: &str =
    "SELECT uuid, week, received_at, version, os FROM node_weeks WHERE uuid = ?1 AND week = ?2";
const GET_CLUSTER_WEEK: &str = "SELECT cluster_key, week, received_at, version, os, profile
    FROM cluster_weeks WHERE cluster_key = ?1 AND week = ?2";
const PUT_NODE: &str = sql::upsert!(nodes, "VALUES ($1, $2, $3, $4, $5)");
const PUT_NODE_WEEK: &str = sql::upsert!(node_weeks, "VALUES ($1, $2, $3, $4, $5)");
const PUT_CLUSTER_WEEK: &str = sql::upsert!(cluster_weeks, "VALUES ($1, $2, $3, $4, $5, $6)");
const ADD_DELTA: &str = sql::upsert!(rollups, "VALUES ($1, $2, $3, $4, $5, $6, $7)");
const LOG_DELTAS: &str = "INSERT INTO counter_deltas (deltas) VALUES (?1)";
const READ_DELTAS: &str = "SELECT id, deltas FROM counter_deltas ORDER BY id";
const DROP_FOLDED: &str = "DELETE FROM counter_deltas WHERE id <= ?1";
/// Counters back at zero are dropped so that queries never read them (found through the
/// partial index of empty counters).
const DROP_EMPTY_COUNTERS: &str = "DELETE FROM rollups WHERE n = 0";

/// Counts one chunk; a failure goes to the writer's failure streak (see
/// [`Counters::write_failed`]) and the chunk stays in the log for the next try.
pub(super) fn try_count_chunk(
    conn: &mut Connection,
    db: &str,
    uncounted: &mut UncountedLog,
    counters: &Counters,
    limit: usize,
) -> bool {
    let counted = count_chunk(conn, uncounted, limit);
    counted_or_failed(counted, db, counters)
}

/// Writes a chunk planned off the writer (see `plan`), unless another connection
/// committed since it was asked for: then nothing is written, and the chunk stays in the
/// log for the next count.
pub(super) fn try_write_planned(
    conn: &mut Connection,
    db: &str,
    uncounted: &mut UncountedLog,
    counters: &Counters,
    planned: Planned,
) -> bool {
    let started = Instant::now();
    let counted = write_planned(conn, planned).map(|written| {
        if let Some(chunk) = written {
            chunk.noted_in(uncounted, started);
        }
    });
    counted_or_failed(counted, db, counters)
}

/// Folds the counter deltas that counted chunks logged (see [`fold`]); a failure goes to
/// the writer's failure streak and they wait for the next try.
pub(super) fn try_fold(
    conn: &mut Connection,
    db: &str,
    uncounted: &mut UncountedLog,
    counters: &Counters,
) -> bool {
    let folded = fold(conn).map(|()| uncounted.folded());
    done_or_failed(folded, FOLDING, db, counters)
}

/// What a failed count or fold was doing, for the error and the log.
const COUNTING: (&str, &str) = ("count the ingest log", "counting the ingest log");
const FOLDING: (&str, &str) = ("fold the counter deltas", "folding the counter deltas");

fn counted_or_failed(counted: rusqlite::Result<()>, db: &str, counters: &Counters) -> bool {
    done_or_failed(counted, COUNTING, db, counters)
}

fn done_or_failed(
    done: rusqlite::Result<()>,
    (op, doing): (&'static str, &'static str),
    db: &str,
    counters: &Counters,
) -> bool {
    match done {
        Ok(()) => {
            counters.write_succeeded();
            true
        }
        Err(error) => {
            counters.write_failed(doing, &StoreError::sqlite(db, op)(error));
            false
        }
    }
}

/// Counts chunks until the log is empty.
pub(super) fn settle(
    conn: &mut Connection,
    db: &str,
    uncounted: &mut UncountedLog,
) -> Result<(), StoreError> {
    while !uncounted.is_empty() {
        count_chunk(conn, uncounted, CHUNK)
            .map_err(StoreError::sqlite(db, "count the ingest log"))?;
    }
    fold(conn).map_err(StoreError::sqlite(db, FOLDING.0))?;
    uncounted.folded();
    Ok(())
}

/// Counts the oldest `limit` reports of the log on the writer, and notes it in `uncounted`.
fn count_chunk(
    conn: &mut Connection,
    uncounted: &mut UncountedLog,
    limit: usize,
) -> rusqlite::Result<()> {
    let started = Instant::now();
    move_chunk(conn, limit)?.noted_in(uncounted, started);
    Ok(())
}

/// The oldest reports of the log and what counting them changes, worked out from reads
/// only (by the writer inside its transaction, or off it by `plan`).
pub(super) struct Chunk {
    last_id: i64,
    reports: Vec<NewReport>,
    changes: Changes,
}

impl Chunk {
    /// Notes in `uncounted` that this chunk, counted since `started`, left the log.
    fn noted_in(&self, uncounted: &mut UncountedLog, started: Instant) {
        let (deltas, took) = (self.changes.deltas.len(), started.elapsed());
        uncounted.chunk_counted(&self.reports, deltas, took);
    }
}

/// Plans the count of the oldest `limit` reports of the log.
pub(super) fn plan_chunk(conn: &Connection, limit: usize) -> rusqlite::Result<Chunk> {
    let (last_id, reports) = read_log(conn, READ_CHUNK, params![limit as i64])?;
    let changes = changes(conn, &reports)?;
    Ok(Chunk {
        last_id,
        reports,
        changes,
    })
}

/// What counting the whole log would add to the counters, worked out from reads only (a
/// rollup read adds it to the counters it reads in the same transaction).
pub(super) fn uncounted_deltas(conn: &Connection) -> rusqlite::Result<Vec<Delta>> {
    let (_, reports) = read_log(conn, READ_UNCOUNTED, [])?;
    if reports.is_empty() {
        return Ok(Vec::new());
    }
    Ok(changes(conn, &reports)?.deltas)
}

/// What counting `reports` changes, from the snapshot rows they read.
fn changes(conn: &Connection, reports: &[NewReport]) -> rusqlite::Result<Changes> {
    let loaded = load(conn, &rollup::wanted(reports))?;
    Ok(rollup::apply(loaded, reports))
}

/// Moves the oldest `limit` reports of the log into `reports` and counts them (their
/// snapshots written, their counter deltas logged), in one transaction.
fn move_chunk(conn: &mut Connection, limit: usize) -> rusqlite::Result<Chunk> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let chunk = plan_chunk(&tx, limit)?;
    write_chunk(&tx, &chunk)?;
    tx.commit()?;
    Ok(chunk)
}

/// Writes a planned chunk; `None` when another connection committed since it was planned.
fn write_planned(conn: &mut Connection, planned: Planned) -> rusqlite::Result<Option<Chunk>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if data_version(&tx)? != planned.data_version {
        tracing::debug!("a planned chunk is dropped: another connection wrote meanwhile");
        return Ok(None);
    }
    write_chunk(&tx, &planned.chunk)?;
    tx.commit()?;
    Ok(Some(planned.chunk))
}

/// Reports are written in log order, so a later report of the same node and day replaces
/// the earlier one.
fn write_chunk(conn: &Connection, chunk: &Chunk) -> rusqlite::Result<()> {
    let mut upsert = conn.prepare_cached(UPSERT)?;
    for r in &chunk.reports {
        upsert.execute(row_params(r))?;
    }
    write_changes(conn, &chunk.changes)?;
    conn.prepare_cached(DROP_COUNTED)?
        .execute(params![chunk.last_id])?;
    Ok(())
}

/// The reports of the log `sql` reads, oldest first, and the id of the last one.
fn read_log(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> rusqlite::Result<(i64, Vec<NewReport>)> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let (mut last_id, mut reports) = (0, Vec::new());
    while let Some(row) = rows.next()? {
        last_id = row.get("id")?;
        let facts: Option<String> = row.get("facts")?;
        let facts = crate::facts::from_column(facts.as_deref()).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(error))
        })?;
        reports.push(counting::reinserted(rows::report(row)?, facts));
    }
    Ok((last_id, reports))
}

/// The keys of the reports logged before a stop but not yet counted.
pub(super) fn recover_uncounted(conn: &Connection) -> rusqlite::Result<UncountedLog> {
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
        put.execute(params![n.uuid, n.first_day, n.first_at, version, os])?;
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
    if !changes.deltas.is_empty() {
        let deltas = rollup::encode(&changes.deltas);
        conn.prepare_cached(LOG_DELTAS)?.execute([deltas])?;
    }
    Ok(())
}

/// Adds the counter deltas that counted chunks logged to the counters, in one
/// transaction. A counter touched by many chunks is written once: a chunk of a few hundred
/// reports touches thousands of counters, most of them the next chunk touches again, and
/// writing them was a sixth of the writer's time.
pub(super) fn fold(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (last_id, deltas) = unfolded_deltas(&tx, |_, _, _| true)?;
    let mut add = tx.prepare_cached(ADD_DELTA)?;
    for d in &deltas {
        add.execute(params![d.version, d.os, d.kind, d.week, d.k1, d.k2, d.n])?;
    }
    drop(add);
    tx.prepare_cached(DROP_EMPTY_COUNTERS)?.execute([])?;
    tx.prepare_cached(DROP_FOLDED)?.execute([last_id])?;
    tx.commit()
}

/// The counter deltas counted chunks logged and nobody folded yet whose (kind, version,
/// os) `keep` accepts, merged per counter, and the id of the last entry (0 for none). A
/// rollup read adds those of its scope to the counters it reads in the same transaction.
pub(super) fn unfolded_deltas(
    conn: &Connection,
    keep: impl Fn(&str, &str, &str) -> bool,
) -> rusqlite::Result<(i64, Vec<Delta>)> {
    let mut statement = conn.prepare_cached(READ_DELTAS)?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))?;
    let (ids, texts): (Vec<i64>, Vec<String>) = rows.collect::<rusqlite::Result<_>>()?;
    let texts = texts.iter().map(String::as_str);
    let deltas = rollup::merge_encoded(texts, keep).ok_or_else(|| {
        let reason = "a counter_deltas row is not a list of counter deltas";
        rusqlite::Error::FromSqlConversionFailure(1, Type::Text, reason.into())
    })?;
    Ok((ids.last().copied().unwrap_or(0), deltas))
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::NaiveDate;
    use rusqlite::types::ToSql;
    use rusqlite::{Connection, params_from_iter};

    use super::{move_chunk, write_planned};
    use crate::sqlite::plan::Planner;
    use crate::sqlite::writer::{LOG, row_params};
    use crate::{Facts, NewReport};

    fn report(uuid: &str) -> NewReport {
        let day = NaiveDate::from_ymd_opt(2026, 11, 30).expect("day");
        NewReport {
            uuid: uuid.into(),
            cluster_uuid: Some(format!("cluster-{uuid}")),
            day,
            received_at: day.and_hms_opt(12, 0, 0).expect("time").and_utc(),
            emqx_version: "5.0.9".into(),
            os_name: Some("Ubuntu".into()),
            os_version: Some("22.04".into()),
            edition: Some("opensource".into()),
            node_count: 1,
            format: 5,
            raw: format!(r#"{{"uuid":"{uuid}"}}"#),
            analytics: Facts::default(),
        }
    }

    /// A writer connection on a new file, with `uuids` waiting in its ingest log.
    pub(in crate::sqlite) fn logged(path: &std::path::Path, uuids: &[&str]) -> Connection {
        let conn = super::super::open_writer(path, "test", None).expect("open");
        for uuid in uuids {
            let r = report(uuid);
            let facts = crate::facts::to_column(&r.analytics);
            let facts: [&dyn ToSql; 1] = [&facts];
            conn.execute(
                LOG,
                params_from_iter(row_params(&r).into_iter().chain(facts)),
            )
            .expect("log");
        }
        conn
    }

    /// Nodes counted in the rollups, whatever their week, folded or not.
    pub(in crate::sqlite) fn counted_nodes(conn: &Connection) -> i64 {
        let folded: i64 = conn
            .query_row(
                "SELECT COALESCE(sum(n), 0) FROM rollups WHERE kind = 'nodes' AND version = '' AND os = ''",
                [],
                |row| row.get(0),
            )
            .expect("read rollups");
        let all_nodes = |kind: &str, version: &str, os: &str| {
            kind == "nodes" && version.is_empty() && os.is_empty()
        };
        let (_, unfolded) = super::unfolded_deltas(conn, all_nodes).expect("counter deltas");
        folded + unfolded.iter().map(|d| d.n).sum::<i64>()
    }

    /// Another collector on the same file counted the chunk after it was planned: writing
    /// the plan would count its reports twice.
    #[test]
    fn a_plan_is_not_written_once_another_connection_committed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plan.db");
        let mut writer = logged(&path, &["a", "b", "c"]);
        let mut planner = Planner::spawn(&path, "test").expect("planner");
        planner.ask(&writer, 10).expect("ask");
        let planned = planner.ready(true).expect("a plan").expect("planned");
        let mut other = Connection::open(&path).expect("second connection");
        assert_eq!(move_chunk(&mut other, 10).expect("count").reports.len(), 3);
        assert!(
            write_planned(&mut writer, planned)
                .expect("write")
                .is_none()
        );
        assert_eq!(counted_nodes(&writer), 3);
    }

    /// The plan is written as it stands when nothing changed: the same counts as counting
    /// on the writer itself.
    #[test]
    fn a_plan_counts_what_the_writer_would_have() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut writer = logged(&dir.path().join("plan.db"), &["a", "b", "c"]);
        let mut planner = Planner::spawn(&dir.path().join("plan.db"), "test").expect("planner");
        planner.ask(&writer, 2).expect("ask");
        let planned = planner.ready(true).expect("a plan").expect("planned");
        let written = write_planned(&mut writer, planned).expect("write");
        assert_eq!(written.map(|chunk| chunk.reports.len()), Some(2));
        assert_eq!(counted_nodes(&writer), 2);
        assert_eq!(
            move_chunk(&mut writer, 10)
                .expect("count the rest")
                .reports
                .len(),
            1
        );
        assert_eq!(counted_nodes(&writer), 3);
    }

    /// The writer counted by itself after asking: the plan on its way is dropped.
    #[test]
    fn an_outdated_plan_is_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plan.db");
        let writer = logged(&path, &["a"]);
        let mut planner = Planner::spawn(&path, "test").expect("planner");
        planner.ask(&writer, 10).expect("ask");
        planner.outdate();
        assert!(planner.ready(true).is_none());
        assert!(!planner.asked());
    }
}
