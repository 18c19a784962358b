//! The PostgreSQL writer task: report batches with their rollup updates, and maintenance.
//!
//! Every write transaction first takes an advisory lock, so that two collectors sharing a
//! database never update the same snapshot from two stale reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Pool, Transaction};
use tokio::sync::mpsc;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::query_cached;
use crate::batch::{self, Counters, Job, Run, Task};
use crate::maintenance::secret_matches;
use crate::pending::{self, Pending};
use crate::rollup::{self, Changes, ClusterWeek, Dims, Loaded, Node, NodeWeek, Wanted};
use crate::{ForgetOutcome, InsertOutcome, NewReport, StoreError};

/// `xmax = 0` holds only for a row this statement inserted; an `ON CONFLICT` update leaves
/// the updating transaction's id there.
const UPSERT: &str = "INSERT INTO reports (day, uuid, cluster_uuid, received_at, emqx_version,
        os_name, os_version, edition, node_count, format, raw)
    SELECT * FROM unnest($1::date[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
        $6::text[], $7::text[], $8::text[], $9::int8[], $10::int2[], $11::text[])
    ON CONFLICT (day, uuid) DO UPDATE SET
        cluster_uuid = excluded.cluster_uuid, received_at = excluded.received_at,
        emqx_version = excluded.emqx_version, os_name = excluded.os_name,
        os_version = excluded.os_version, edition = excluded.edition,
        node_count = excluded.node_count, format = excluded.format, raw = excluded.raw
    RETURNING day, uuid, (xmax = 0) AS inserted";
const MARK_PENDING: &str = "INSERT INTO rollup_pending (day, uuid)
    SELECT * FROM unnest($1::date[], $2::text[]) ON CONFLICT DO NOTHING";
const UNMARK_PENDING: &str = "DELETE FROM rollup_pending p
    USING unnest($1::date[], $2::text[]) AS k (day, uuid)
    WHERE p.day = k.day AND p.uuid = k.uuid";
const RECOVER_PENDING: &str = super::select_reports!(
    "WHERE (day, uuid) IN (SELECT day, uuid FROM rollup_pending) ORDER BY received_at"
);
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

const GET_NODES: &str = "SELECT uuid, first_day, first_at, version, os, secret_sha256, secret_at
    FROM nodes WHERE uuid = ANY($1::text[])";
const GET_NODE_WEEKS: &str = "SELECT w.uuid, w.week, w.received_at, w.version, w.os
    FROM node_weeks w JOIN unnest($1::text[], $2::date[]) AS k (uuid, week)
        ON w.uuid = k.uuid AND w.week = k.week";
const GET_CLUSTER_WEEKS: &str =
    "SELECT w.cluster_key, w.week, w.received_at, w.version, w.os, w.profile
    FROM cluster_weeks w JOIN unnest($1::text[], $2::date[]) AS k (cluster_key, week)
        ON w.cluster_key = k.cluster_key AND w.week = k.week";
const PUT_NODES: &str = "INSERT INTO nodes
        (uuid, first_day, first_at, version, os, secret_sha256, secret_at)
    SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[],
        $6::text[], $7::timestamptz[])
    ON CONFLICT (uuid) DO UPDATE SET first_day = excluded.first_day,
        first_at = excluded.first_at, version = excluded.version, os = excluded.os,
        secret_sha256 = excluded.secret_sha256, secret_at = excluded.secret_at";
const PUT_NODE_WEEKS: &str = "INSERT INTO node_weeks (uuid, week, received_at, version, os)
    SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])
    ON CONFLICT (uuid, week) DO UPDATE SET received_at = excluded.received_at,
        version = excluded.version, os = excluded.os";
const PUT_CLUSTER_WEEKS: &str = "INSERT INTO cluster_weeks
        (cluster_key, week, received_at, version, os, profile)
    SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[],
        $6::text[])
    ON CONFLICT (cluster_key, week) DO UPDATE SET received_at = excluded.received_at,
        version = excluded.version, os = excluded.os, profile = excluded.profile";
const ADD_DELTAS: &str = "INSERT INTO rollups (version, os, kind, week, k1, k2, n)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[],
        $6::text[], $7::int8[])
    ON CONFLICT (version, os, kind, week, k1, k2) DO UPDATE SET n = rollups.n + excluded.n";
/// Counters back at zero are dropped so that queries never read them.
const DROP_EMPTY: &str = "DELETE FROM rollups WHERE n = 0";

/// Names the database and operation of a failed call.
trait Context<T> {
    fn context(self, db: &str, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, tokio_postgres::Error> {
    fn context(self, db: &str, op: &'static str) -> Result<T, StoreError> {
        self.map_err(StoreError::postgres(db, op))
    }
}

pub(super) struct PgWriter {
    pub(super) pool: Pool,
    pub(super) db: String,
    /// The advisory lock every write transaction takes, per schema.
    pub(super) lock_key: String,
}

impl PgWriter {
    /// Runs until every sender is gone, that is until the store is dropped.
    pub(super) async fn run(self, mut jobs: mpsc::Receiver<Job>, counters: Arc<Counters>) {
        let mut pending = self.recover_pending().await.unwrap_or_else(|error| {
            tracing::error!(%error, "reading pending rollups failed; they apply at the next start");
            Pending::default()
        });
        let mut received = Vec::with_capacity(batch::BATCH_CAP);
        while jobs.recv_many(&mut received, batch::BATCH_CAP).await > 0 {
            for run in batch::runs(received.drain(..)) {
                match run {
                    Run::Inserts(inserts) => {
                        let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
                        let result = self.write_batch(&reports).await;
                        if result.is_ok() {
                            pending.push(reports.into_iter().cloned());
                        }
                        batch::answer(inserts, result, &counters);
                    }
                    Run::Task(Task::Tick) => {}
                    Run::Task(Task::Flush { reply }) => {
                        batch::reply(reply, self.roll_up_all(&mut pending).await);
                    }
                    Run::Task(task) => match self.roll_up_all(&mut pending).await {
                        Ok(()) => self.run_task(task).await,
                        Err(error) => task.fail(error),
                    },
                }
            }
            if pending.due()
                && let Err(error) = self.roll_up_chunk(&mut pending).await
            {
                tracing::error!(%error, "rollup update failed; it is retried with the next chunk");
            }
        }
        if let Err(error) = self.roll_up_all(&mut pending).await {
            tracing::error!(%error, "rollup update failed at shutdown; it applies at the next start");
        }
        tracing::debug!(db = self.db, "postgres writer stopped");
    }

    /// Stores the reports and marks them pending for the rollups, in one transaction.
    async fn write_batch(&self, reports: &[&NewReport]) -> Result<Vec<InsertOutcome>, StoreError> {
        const OP: &str = "write report batch";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        let latest = latest_per_key(reports);
        let rows = query_cached(&tx, UPSERT, &Columns::of(&latest).params())
            .await
            .context(db, OP)?;
        let fresh = inserted_keys(&rows).context(db, OP)?;
        let (days, uuids) = keys(&latest);
        query_cached(&tx, MARK_PENDING, &[&days, &uuids])
            .await
            .context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        Ok(outcomes(reports, &fresh))
    }

    async fn roll_up_all(&self, pending: &mut Pending) -> Result<(), StoreError> {
        while !pending.is_empty() {
            self.roll_up_chunk(pending).await?;
        }
        Ok(())
    }

    /// Applies the rollups of the oldest pending reports in one transaction.
    async fn roll_up_chunk(&self, pending: &mut Pending) -> Result<(), StoreError> {
        const OP: &str = "update rollups";
        let db = self.db.as_str();
        let chunk = pending.chunk();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
        let loaded = load(&tx, &rollup::wanted(chunk.iter().copied()), db).await?;
        let changes = rollup::apply(loaded, chunk.iter().copied());
        write_changes(&tx, &changes).await.context(db, OP)?;
        let (days, uuids) = keys(&chunk);
        query_cached(&tx, UNMARK_PENDING, &[&days, &uuids])
            .await
            .context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        let applied = chunk.len();
        pending.applied(applied);
        Ok(())
    }

    /// Reports committed before a stop whose rollups were not, in the order they arrived.
    async fn recover_pending(&self) -> Result<Pending, StoreError> {
        const OP: &str = "read pending rollups";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let rows = client.query(RECOVER_PENDING, &[]).await.context(db, OP)?;
        let reports = rows
            .iter()
            .map(|row| super::from_row(row).map(pending::reinserted))
            .collect::<Result<Vec<_>, _>>()
            .context(db, OP)?;
        if !reports.is_empty() {
            tracing::info!(
                reports = reports.len(),
                "applying rollups left pending at the last stop"
            );
        }
        Ok(Pending::recovered(reports))
    }

    async fn run_task(&self, task: Task) {
        match task {
            Task::DeleteOldestDay { before, reply } => {
                batch::reply(reply, self.delete_oldest_day(before).await);
            }
            Task::PruneSnapshots { before_week, reply } => {
                batch::reply(reply, self.prune_snapshots(before_week).await);
            }
            Task::Forget {
                uuid,
                secret_sha256,
                reply,
            } => batch::reply(reply, self.forget(&uuid, &secret_sha256).await),
            Task::Flush { reply } => batch::reply(reply, Ok(())),
            Task::Vacuum { reply } => batch::reply(reply, self.vacuum().await),
            Task::Tick => {}
        }
    }

    /// Sets the visibility map that index-only scans of the rollups need, and statistics.
    async fn vacuum(&self) -> Result<(), StoreError> {
        const OP: &str = "vacuum rollups";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        client
            .batch_execute("VACUUM (ANALYZE) rollups")
            .await
            .context(db, OP)
    }

    async fn delete_oldest_day(&self, before: NaiveDate) -> Result<Option<u64>, StoreError> {
        const OP: &str = "delete old reports";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
        let oldest: Option<NaiveDate> = tx
            .query_one("SELECT min(day) FROM reports", &[])
            .await
            .and_then(|row| row.try_get(0))
            .context(db, OP)?;
        let Some(day) = oldest.filter(|day| *day < before) else {
            return Ok(None);
        };
        let deleted = tx
            .execute("DELETE FROM reports WHERE day = $1", &[&day])
            .await
            .context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        Ok(Some(deleted))
    }

    async fn prune_snapshots(&self, before_week: NaiveDate) -> Result<u64, StoreError> {
        const OP: &str = "prune snapshots";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
        let mut pruned = 0;
        for sql in [
            "DELETE FROM node_weeks WHERE week < $1",
            "DELETE FROM cluster_weeks WHERE week < $1",
        ] {
            pruned += tx.execute(sql, &[&before_week]).await.context(db, OP)?;
        }
        tx.commit().await.context(db, OP)?;
        Ok(pruned)
    }

    /// A 4.x cluster is keyed by a node uuid, so its snapshots go with that node.
    async fn forget(&self, uuid: &str, presented: &str) -> Result<ForgetOutcome, StoreError> {
        const OP: &str = "forget node";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        tx.execute(LOCK, &[&self.lock_key]).await.context(db, OP)?;
        let row = tx
            .query_opt("SELECT secret_sha256 FROM nodes WHERE uuid = $1", &[&uuid])
            .await
            .context(db, OP)?;
        let Some(row) = row else {
            return Ok(ForgetOutcome::UnknownNode);
        };
        let stored: Option<String> = row.try_get(0).context(db, OP)?;
        if !secret_matches(stored.as_deref(), presented) {
            return Ok(ForgetOutcome::WrongSecret);
        }
        let reports = tx
            .execute("DELETE FROM reports WHERE uuid = $1", &[&uuid])
            .await
            .context(db, OP)?;
        for sql in [
            "DELETE FROM node_weeks WHERE uuid = $1",
            "DELETE FROM cluster_weeks WHERE cluster_key = $1",
            "DELETE FROM nodes WHERE uuid = $1",
        ] {
            tx.execute(sql, &[&uuid]).await.context(db, OP)?;
        }
        tx.commit().await.context(db, OP)?;
        Ok(ForgetOutcome::Deleted { reports })
    }
}

/// The (day, uuid) keys of `reports`, as the two arrays `unnest` takes.
fn keys<'a>(reports: &[&'a NewReport]) -> (Vec<NaiveDate>, Vec<&'a str>) {
    reports.iter().map(|r| (r.day, r.uuid.as_str())).unzip()
}

fn inserted_keys(rows: &[Row]) -> Result<HashSet<(NaiveDate, String)>, tokio_postgres::Error> {
    let mut fresh = HashSet::new();
    for row in rows {
        if row.try_get::<_, bool>("inserted")? {
            fresh.insert((row.try_get("day")?, row.try_get("uuid")?));
        }
    }
    Ok(fresh)
}

/// One statement cannot update the same row twice, so only the last report of each
/// (day, uuid) in the batch is sent: the same end state as applying them in order.
fn latest_per_key<'a>(reports: &[&'a NewReport]) -> Vec<&'a NewReport> {
    let mut slots: HashMap<(NaiveDate, &str), usize> = HashMap::new();
    let mut latest: Vec<&NewReport> = Vec::with_capacity(reports.len());
    for report in reports {
        let key = (report.day, report.uuid.as_str());
        match slots.get(&key) {
            Some(&slot) => latest[slot] = report,
            None => {
                slots.insert(key, latest.len());
                latest.push(report);
            }
        }
    }
    latest
}

/// The outcome each report would have had if the batch had been applied one at a time:
/// the first report of a key inserted it if the database did, every later one replaced it.
fn outcomes(reports: &[&NewReport], fresh: &HashSet<(NaiveDate, String)>) -> Vec<InsertOutcome> {
    let mut seen = HashSet::new();
    reports
        .iter()
        .map(|report| {
            let first = seen.insert((report.day, report.uuid.as_str()));
            if first && fresh.contains(&(report.day, report.uuid.clone())) {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Replaced
            }
        })
        .collect()
}

async fn load(tx: &Transaction<'_>, wanted: &Wanted, db: &str) -> Result<Loaded, StoreError> {
    const OP: &str = "read rollup snapshots";
    let mut loaded = Loaded::default();
    let rows = query_cached(tx, GET_NODES, &[&wanted.nodes])
        .await
        .context(db, OP)?;
    loaded.nodes = rows
        .iter()
        .map(node)
        .collect::<Result<_, _>>()
        .context(db, OP)?;
    let (uuids, weeks): (Vec<&str>, Vec<NaiveDate>) = wanted
        .node_weeks
        .iter()
        .map(|(uuid, week)| (uuid.as_str(), *week))
        .unzip();
    let rows = query_cached(tx, GET_NODE_WEEKS, &[&uuids, &weeks])
        .await
        .context(db, OP)?;
    loaded.node_weeks = rows
        .iter()
        .map(node_week)
        .collect::<Result<_, _>>()
        .context(db, OP)?;
    let (keys, weeks): (Vec<&str>, Vec<NaiveDate>) = wanted
        .cluster_weeks
        .iter()
        .map(|(key, week)| (key.as_str(), *week))
        .unzip();
    let rows = query_cached(tx, GET_CLUSTER_WEEKS, &[&keys, &weeks])
        .await
        .context(db, OP)?;
    loaded.cluster_weeks = rows
        .iter()
        .map(|row| cluster_week(row, db))
        .collect::<Result<_, _>>()?;
    Ok(loaded)
}

fn node(row: &Row) -> Result<Node, tokio_postgres::Error> {
    Ok(Node {
        uuid: row.try_get("uuid")?,
        first_day: row.try_get("first_day")?,
        first_at: row.try_get("first_at")?,
        dims: dims(row)?,
        secret_sha256: row.try_get("secret_sha256")?,
        secret_at: row.try_get("secret_at")?,
    })
}

fn node_week(row: &Row) -> Result<NodeWeek, tokio_postgres::Error> {
    Ok(NodeWeek {
        uuid: row.try_get("uuid")?,
        week: row.try_get("week")?,
        received_at: row.try_get("received_at")?,
        dims: dims(row)?,
    })
}

fn cluster_week(row: &Row, db: &str) -> Result<ClusterWeek, StoreError> {
    const OP: &str = "read cluster snapshot";
    let profile: String = row.try_get("profile").context(db, OP)?;
    let profile = serde_json::from_str(&profile).map_err(|error| StoreError::Decode {
        db: db.to_owned(),
        column: "cluster_weeks.profile",
        reason: error.to_string(),
    })?;
    Ok(ClusterWeek {
        key: row.try_get("cluster_key").context(db, OP)?,
        week: row.try_get("week").context(db, OP)?,
        received_at: row.try_get("received_at").context(db, OP)?,
        dims: dims(row).context(db, OP)?,
        profile,
    })
}

fn dims(row: &Row) -> Result<Dims, tokio_postgres::Error> {
    Ok(Dims {
        version: row.try_get("version")?,
        os: row.try_get("os")?,
    })
}

async fn write_changes(
    tx: &Transaction<'_>,
    changes: &Changes,
) -> Result<(), tokio_postgres::Error> {
    if !changes.nodes.is_empty() {
        let nodes = NodeColumns::of(&changes.nodes);
        execute(tx, PUT_NODES, &nodes.params()).await?;
    }
    if !changes.node_weeks.is_empty() {
        let weeks = NodeWeekColumns::of(&changes.node_weeks);
        execute(tx, PUT_NODE_WEEKS, &weeks.params()).await?;
    }
    if !changes.cluster_weeks.is_empty() {
        let weeks = ClusterWeekColumns::of(&changes.cluster_weeks);
        execute(tx, PUT_CLUSTER_WEEKS, &weeks.params()).await?;
    }
    if !changes.deltas.is_empty() {
        let deltas = DeltaColumns::of(&changes.deltas);
        execute(tx, ADD_DELTAS, &deltas.params()).await?;
        execute(tx, DROP_EMPTY, &[]).await?;
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

/// The reports as one array per column, for `unnest`.
struct Columns<'a> {
    day: Vec<NaiveDate>,
    uuid: Vec<&'a str>,
    cluster_uuid: Vec<Option<&'a str>>,
    received_at: Vec<DateTime<Utc>>,
    emqx_version: Vec<&'a str>,
    os_name: Vec<Option<&'a str>>,
    os_version: Vec<Option<&'a str>>,
    edition: Vec<Option<&'a str>>,
    node_count: Vec<i64>,
    format: Vec<i16>,
    raw: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(reports: &[&'a NewReport]) -> Self {
        Self {
            day: reports.iter().map(|r| r.day).collect(),
            uuid: reports.iter().map(|r| r.uuid.as_str()).collect(),
            cluster_uuid: reports.iter().map(|r| r.cluster_uuid.as_deref()).collect(),
            received_at: reports.iter().map(|r| r.received_at).collect(),
            emqx_version: reports.iter().map(|r| r.emqx_version.as_str()).collect(),
            os_name: reports.iter().map(|r| r.os_name.as_deref()).collect(),
            os_version: reports.iter().map(|r| r.os_version.as_deref()).collect(),
            edition: reports.iter().map(|r| r.edition.as_deref()).collect(),
            node_count: reports.iter().map(|r| r.node_count).collect(),
            format: reports.iter().map(|r| r.format).collect(),
            raw: reports.iter().map(|r| r.raw.as_str()).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 11] {
        [
            &self.day,
            &self.uuid,
            &self.cluster_uuid,
            &self.received_at,
            &self.emqx_version,
            &self.os_name,
            &self.os_version,
            &self.edition,
            &self.node_count,
            &self.format,
            &self.raw,
        ]
    }
}

struct NodeColumns<'a> {
    uuid: Vec<&'a str>,
    first_day: Vec<NaiveDate>,
    first_at: Vec<DateTime<Utc>>,
    version: Vec<&'a str>,
    os: Vec<&'a str>,
    secret_sha256: Vec<Option<&'a str>>,
    secret_at: Vec<Option<DateTime<Utc>>>,
}

impl<'a> NodeColumns<'a> {
    fn of(nodes: &'a [Node]) -> Self {
        Self {
            uuid: nodes.iter().map(|n| n.uuid.as_str()).collect(),
            first_day: nodes.iter().map(|n| n.first_day).collect(),
            first_at: nodes.iter().map(|n| n.first_at).collect(),
            version: nodes.iter().map(|n| n.dims.version.as_str()).collect(),
            os: nodes.iter().map(|n| n.dims.os.as_str()).collect(),
            secret_sha256: nodes.iter().map(|n| n.secret_sha256.as_deref()).collect(),
            secret_at: nodes.iter().map(|n| n.secret_at).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.uuid,
            &self.first_day,
            &self.first_at,
            &self.version,
            &self.os,
            &self.secret_sha256,
            &self.secret_at,
        ]
    }
}

struct NodeWeekColumns<'a> {
    uuid: Vec<&'a str>,
    week: Vec<NaiveDate>,
    received_at: Vec<DateTime<Utc>>,
    version: Vec<&'a str>,
    os: Vec<&'a str>,
}

impl<'a> NodeWeekColumns<'a> {
    fn of(rows: &'a [NodeWeek]) -> Self {
        Self {
            uuid: rows.iter().map(|w| w.uuid.as_str()).collect(),
            week: rows.iter().map(|w| w.week).collect(),
            received_at: rows.iter().map(|w| w.received_at).collect(),
            version: rows.iter().map(|w| w.dims.version.as_str()).collect(),
            os: rows.iter().map(|w| w.dims.os.as_str()).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.uuid,
            &self.week,
            &self.received_at,
            &self.version,
            &self.os,
        ]
    }
}

struct ClusterWeekColumns<'a> {
    key: Vec<&'a str>,
    week: Vec<NaiveDate>,
    received_at: Vec<DateTime<Utc>>,
    version: Vec<&'a str>,
    os: Vec<&'a str>,
    profile: Vec<String>,
}

impl<'a> ClusterWeekColumns<'a> {
    fn of(rows: &'a [ClusterWeek]) -> Self {
        Self {
            key: rows.iter().map(|c| c.key.as_str()).collect(),
            week: rows.iter().map(|c| c.week).collect(),
            received_at: rows.iter().map(|c| c.received_at).collect(),
            version: rows.iter().map(|c| c.dims.version.as_str()).collect(),
            os: rows.iter().map(|c| c.dims.os.as_str()).collect(),
            profile: rows.iter().map(|c| c.profile.to_json()).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.key,
            &self.week,
            &self.received_at,
            &self.version,
            &self.os,
            &self.profile,
        ]
    }
}

struct DeltaColumns<'a> {
    version: Vec<&'a str>,
    os: Vec<&'a str>,
    kind: Vec<&'a str>,
    week: Vec<NaiveDate>,
    k1: Vec<&'a str>,
    k2: Vec<&'a str>,
    n: Vec<i64>,
}

impl<'a> DeltaColumns<'a> {
    fn of(deltas: &'a [rollup::Delta]) -> Self {
        Self {
            version: deltas.iter().map(|d| d.version.as_str()).collect(),
            os: deltas.iter().map(|d| d.os.as_str()).collect(),
            kind: deltas.iter().map(|d| d.kind).collect(),
            week: deltas.iter().map(|d| d.week).collect(),
            k1: deltas.iter().map(|d| d.k1.as_str()).collect(),
            k2: deltas.iter().map(|d| d.k2.as_str()).collect(),
            n: deltas.iter().map(|d| d.n).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.version,
            &self.os,
            &self.kind,
            &self.week,
            &self.k1,
            &self.k2,
            &self.n,
        ]
    }
}
