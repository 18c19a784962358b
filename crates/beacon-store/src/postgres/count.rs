//! Counting on PostgreSQL (see `counting`): a chunk of uncounted reports is counted in
//! one transaction that loads the snapshots the chunk touches, writes the changed ones and
//! the counter deltas (each set as one statement), and clears the chunk's keys from
//! `rollup_pending`.

use chrono::NaiveDate;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::columns::{ClusterWeekColumns, DeltaColumns, NodeColumns, NodeWeekColumns};
use super::ingest::keys;
use super::query_cached;
use super::uncounted::Uncounted;
use super::writer::{Context, LOCK, PgWriter};
use crate::counting;
use crate::rollup::{self, Changes, Loaded, Wanted};
use crate::{NewReport, StoreError, rows, sql};

const MARK_COUNTED: &str = "DELETE FROM rollup_pending p
    USING unnest($1::date[], $2::text[]) AS k (day, uuid)
    WHERE p.day = k.day AND p.uuid = k.uuid";
const READ_UNCOUNTED: &str = "SELECT uuid, cluster_uuid, day, received_at, emqx_version,
        os_name, os_version, edition, node_count, format, raw, p.facts
    FROM reports JOIN rollup_pending p USING (day, uuid) ORDER BY received_at";

const GET_NODES: &str = "SELECT uuid, first_day, first_at, version, os
    FROM nodes WHERE uuid = ANY($1::text[])";
const GET_NODE_WEEKS: &str = "SELECT w.uuid, w.week, w.received_at, w.version, w.os
    FROM node_weeks w JOIN unnest($1::text[], $2::date[]) AS k (uuid, week)
        ON w.uuid = k.uuid AND w.week = k.week";
const GET_CLUSTER_WEEKS: &str =
    "SELECT w.cluster_key, w.week, w.received_at, w.version, w.os, w.profile
    FROM cluster_weeks w JOIN unnest($1::text[], $2::date[]) AS k (cluster_key, week)
        ON w.cluster_key = k.cluster_key AND w.week = k.week";
const PUT_NODES: &str = sql::upsert!(
    nodes,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])"
);
const PUT_NODE_WEEKS: &str = sql::upsert!(
    node_weeks,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])"
);
const PUT_CLUSTER_WEEKS: &str = sql::upsert!(
    cluster_weeks,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[],
        $6::text[])"
);
const ADD_DELTAS: &str = sql::upsert!(
    rollups,
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[],
        $6::text[], $7::int8[])"
);

impl PgWriter {
    /// Counts chunks until nothing is uncounted.
    pub(super) async fn settle(&self, uncounted: &mut Uncounted) -> Result<(), StoreError> {
        while !uncounted.is_empty() {
            self.count_chunk(uncounted).await?;
        }
        Ok(())
    }

    /// Counts the oldest uncounted reports in the rollups, in one transaction.
    pub(super) async fn count_chunk(&self, uncounted: &mut Uncounted) -> Result<(), StoreError> {
        const OP: &str = "update rollups";
        let db = self.db.as_str();
        let chunk = uncounted.chunk();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
        let loaded = load(&tx, &rollup::wanted(chunk.iter().copied()), db).await?;
        let changes = rollup::apply(loaded, chunk.iter().copied());
        write_changes(&tx, &changes).await.context(db, OP)?;
        let (days, uuids) = keys(&chunk);
        query_cached(&tx, MARK_COUNTED, &[&days, &uuids])
            .await
            .context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        let counted = chunk.len();
        uncounted.counted(counted);
        Ok(())
    }

    /// Reports committed but left uncounted at a stop, in the order they arrived.
    pub(super) async fn recover_uncounted(&self) -> Result<Uncounted, StoreError> {
        const OP: &str = "read uncounted reports";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let rows = client.query(READ_UNCOUNTED, &[]).await.context(db, OP)?;
        let reports = rows
            .iter()
            .map(|row| uncounted_report(row, db))
            .collect::<Result<Vec<_>, _>>()?;
        if !reports.is_empty() {
            tracing::info!(
                reports = reports.len(),
                "counting reports left uncounted at the last stop"
            );
        }
        Ok(Uncounted::recovered(reports))
    }
}

/// An uncounted report as read back, with the facts kept beside it.
fn uncounted_report(row: &Row, db: &str) -> Result<NewReport, StoreError> {
    const OP: &str = "read uncounted reports";
    let report = rows::report(row).context(db, OP)?;
    let facts = row.try_get("facts").context(db, OP)?;
    let facts = crate::facts::from_column(facts).map_err(|error| StoreError::Decode {
        db: db.to_owned(),
        column: "facts",
        reason: error.to_string(),
    })?;
    Ok(counting::reinserted(report, facts))
}

async fn load(tx: &Transaction<'_>, wanted: &Wanted, db: &str) -> Result<Loaded, StoreError> {
    let loaded = async {
        let (uuids, weeks) = unzip(&wanted.node_weeks);
        let (keys, cluster_weeks) = unzip(&wanted.cluster_weeks);
        Ok(Loaded {
            nodes: load_rows(tx, GET_NODES, &[&wanted.nodes], rows::node).await?,
            node_weeks: load_rows(tx, GET_NODE_WEEKS, &[&uuids, &weeks], rows::node_week).await?,
            cluster_weeks: load_rows(
                tx,
                GET_CLUSTER_WEEKS,
                &[&keys, &cluster_weeks],
                rows::cluster_week,
            )
            .await?,
        })
    };
    loaded.await.context(db, "read rollup snapshots")
}

/// (key, week) pairs as the two arrays `unnest` takes.
fn unzip(keys: &[(String, NaiveDate)]) -> (Vec<&str>, Vec<NaiveDate>) {
    keys.iter().map(|(key, week)| (key.as_str(), *week)).unzip()
}

async fn load_rows<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    decode: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, tokio_postgres::Error> {
    query_cached(tx, sql, params)
        .await?
        .iter()
        .map(decode)
        .collect()
}

async fn write_changes(
    tx: &Transaction<'_>,
    changes: &Changes,
) -> Result<(), tokio_postgres::Error> {
    let nodes = NodeColumns::of(&changes.nodes);
    let node_weeks = NodeWeekColumns::of(&changes.node_weeks);
    let cluster_weeks = ClusterWeekColumns::of(&changes.cluster_weeks);
    let deltas = DeltaColumns::of(&changes.deltas);
    let writes = [
        (PUT_NODES, changes.nodes.len(), nodes.params()),
        (
            PUT_NODE_WEEKS,
            changes.node_weeks.len(),
            node_weeks.params(),
        ),
        (
            PUT_CLUSTER_WEEKS,
            changes.cluster_weeks.len(),
            cluster_weeks.params(),
        ),
        (ADD_DELTAS, changes.deltas.len(), deltas.params()),
    ];
    for (statement, rows, params) in writes {
        if rows > 0 {
            execute(tx, statement, &params).await?;
        }
    }
    if !changes.deltas.is_empty() {
        execute(tx, sql::DROP_EMPTY_COUNTERS, &[]).await?;
    }
    Ok(())
}

async fn execute(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}
