//! Counting on SQLite (see `counting`): a chunk of the `incoming` log is moved into
//! `reports` and counted in the rollups in one transaction, which touches each index page
//! once for many reports.

use std::time::Instant;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Params, Row, TransactionBehavior, params};

use super::uncounted::UncountedLog;
use super::writer::row_params;
use crate::batch::Counters;
use crate::counting::{self, CHUNK};
use crate::rollup::{self, Changes, Loaded, Wanted};
use crate::{NewReport, StoreError, rows, sql};

/// The columns of a report row, in `reports` and in the `incoming` log alike.
macro_rules! report_columns {
    () => {
        "day, uuid, cluster_uuid, received_at, emqx_version, os_name, os_version, edition,
        node_count, format, raw"
    };
}
pub(super) use report_columns;

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
    match count_chunk(conn, db, uncounted, limit) {
        Ok(()) => {
            counters.write_succeeded();
            true
        }
        Err(error) => {
            counters.write_failed("counting the ingest log", &error);
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
        count_chunk(conn, db, uncounted, CHUNK)?;
    }
    Ok(())
}

/// Moves the oldest `limit` reports of the log into `reports` and the rollups, in one
/// transaction.
fn count_chunk(
    conn: &mut Connection,
    db: &str,
    uncounted: &mut UncountedLog,
    limit: usize,
) -> Result<(), StoreError> {
    let started = Instant::now();
    let chunk = move_chunk(conn, limit).map_err(StoreError::sqlite(db, "count the ingest log"))?;
    uncounted.paced(chunk.len(), started.elapsed());
    if chunk.is_empty() {
        // The log is empty whatever the keys say (another process drained it): start over.
        *uncounted = UncountedLog::default();
    }
    uncounted.counted(chunk.iter().map(|r| (r.day, r.uuid.as_str())));
    Ok(())
}

fn move_chunk(conn: &mut Connection, limit: usize) -> rusqlite::Result<Vec<NewReport>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (last_id, reports) = read_chunk(&tx, limit)?;
    let refs: Vec<&NewReport> = reports.iter().collect();
    upsert_all(&tx, &refs)?;
    let loaded = load(&tx, &rollup::wanted(refs.iter().copied()))?;
    let changes = rollup::apply(loaded, refs.iter().copied());
    write_changes(&tx, &changes)?;
    tx.prepare_cached(DROP_COUNTED)?.execute(params![last_id])?;
    tx.commit()?;
    Ok(reports)
}

/// The oldest `limit` reports of the log and the id of the last one.
fn read_chunk(conn: &Connection, limit: usize) -> rusqlite::Result<(i64, Vec<NewReport>)> {
    let mut statement = conn.prepare_cached(READ_CHUNK)?;
    let mut rows = statement.query(params![limit as i64])?;
    let (mut last_id, mut reports) = (0, Vec::with_capacity(limit));
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
    let mut add = conn.prepare_cached(ADD_DELTA)?;
    for d in &changes.deltas {
        add.execute(params![d.version, d.os, d.kind, d.week, d.k1, d.k2, d.n])?;
    }
    conn.prepare_cached(DROP_EMPTY_COUNTERS)?.execute([])?;
    Ok(())
}
