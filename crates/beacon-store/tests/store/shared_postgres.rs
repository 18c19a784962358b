//! Two stores (as two collectors would open them) on one PostgreSQL schema, inserting the
//! same nodes at once in different orders: no insert fails (no deadlock), each node and day
//! is stored once, and the rollups count every node once. And how a store shares counting
//! and the rollups table with the other collectors on its schema, and reads the tables it
//! counts into.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use beacon_store::testing::{TestDb, sample_report};
use beacon_store::{AnalyticsQuery, Store};
use chrono::NaiveDate;
use tokio::task::JoinSet;

use support::Backend;

use crate::support;

/// Concurrent writers, half of them on each store (each on one, so that the two stores
/// commit independently rather than taking turns).
const WRITERS: usize = 64;
const INSERTS: usize = 60;
/// Nodes every writer inserts, each in its own order.
const SHARED: usize = 16;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date")
}

fn query() -> AnalyticsQuery {
    AnalyticsQuery {
        from: day(),
        to: day(),
        version: None,
        os: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_schema_write_the_same_nodes_without_deadlock_or_double_count() {
    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let stores: [Arc<dyn Store>; 2] = [
        beacon_store::open_store(test_db.url()).await.expect("open"),
        beacon_store::open_store(test_db.url()).await.expect("open"),
    ];
    let mut writers = JoinSet::new();
    for writer in 0..WRITERS {
        let stores = stores.clone();
        writers.spawn(async move {
            let mut failures = Vec::new();
            for n in 0..INSERTS {
                // Writers walk the shared nodes in different directions and strides.
                let step = if writer % 2 == 0 {
                    n * 5
                } else {
                    SHARED * INSERTS - n * 3
                };
                let uuid = format!("shared-{:02}", (step + writer) % SHARED);
                let store = &stores[writer % 2];
                if let Err(error) = store.insert(sample_report(&uuid, day())).await {
                    failures.push(error.to_string());
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = writers.join_next().await {
        failures.extend(joined.expect("writer task"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} inserts failed, e.g. {:?}",
        failures.len(),
        WRITERS * INSERTS,
        failures.first()
    );
    for store in &stores {
        store.settle().await.expect("settle");
    }
    let [first, second] = stores;
    assert_eq!(first.count().await.expect("count"), SHARED as u64);
    for store in [&first, &second] {
        let weeks = store.activity(&query()).await.expect("activity");
        let nodes: HashSet<u64> = weeks.iter().map(|week| week.nodes).collect();
        assert_eq!(nodes, HashSet::from([SHARED as u64]), "{weeks:?}");
        assert!(
            weeks
                .iter()
                .all(|week| week.clusters == 1 && week.new_nodes == SHARED as u64)
        );
    }
    drop((first, second));
    drop(test_db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_nobody_waits_for_gives_way_to_maintenance_on_another_collector() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    // The other collector, in the middle of maintenance: it holds the counting lock.
    let other = support::postgres_admin(&backend).await;
    other.batch_execute("BEGIN").await.expect("begin");
    other
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&counting_lock(&backend)],
        )
        .await
        .expect("take the counting lock");
    store
        .insert(sample_report("gives-way", day()))
        .await
        .expect("insert");
    // The commit asks for a pass within 200 ms; one that queued for the lock would hold a
    // connection and show in pg_locks as a lock not granted.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let queued: i64 = other
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
                AND objid::int8 = hashtext($1)::int8 & 4294967295",
            &[&counting_lock(&backend)],
        )
        .await
        .expect("pg_locks")
        .get(0);
    assert_eq!(queued, 0, "a pass nobody waits for queued behind the lock");
    // A settle does wait for the maintenance, then counts the report.
    let settling = spawn_settle(&store);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !settling.is_finished(),
        "a settle must wait for the maintenance in progress"
    );
    other
        .batch_execute("COMMIT")
        .await
        .expect("release the lock");
    settling.await.expect("settle task").expect("settle");
    let weeks = store.activity(&query()).await.expect("activity");
    assert!(weeks.iter().any(|week| week.nodes == 1), "{weeks:?}");
    drop(store);
    drop(backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_leaves_the_reports_another_collector_is_counting_to_it() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    let other = support::postgres_admin(&backend).await;
    // Counting held off (as maintenance would) while one report is stored...
    hold_counting(&other, &backend, true).await;
    store
        .insert(sample_report("held", day()))
        .await
        .expect("insert");
    // ...then taken by the other collector's count, which is still in progress.
    other.batch_execute("BEGIN").await.expect("begin");
    other
        .query_one(
            "SELECT uuid FROM rollup_pending WHERE uuid = 'held' FOR UPDATE",
            &[],
        )
        .await
        .expect("take the key");
    hold_counting(&other, &backend, false).await;
    for n in 0..3 {
        let report = sample_report(&format!("free-{n}"), day());
        store.insert(report).await.expect("insert");
    }
    let left = uncounted_within(&other, 1, Duration::from_secs(3)).await;
    assert_eq!(
        left, 1,
        "the reports nobody else counts are counted meanwhile, only `held` is left"
    );
    let settling = spawn_settle(&store);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !settling.is_finished(),
        "a settle must wait for the report another count holds"
    );
    // The other count fails: the report is still uncounted, and the settle counts it.
    other.batch_execute("ROLLBACK").await.expect("rollback");
    settling.await.expect("settle task").expect("settle");
    let weeks = store.activity(&query()).await.expect("activity");
    assert!(weeks.iter().any(|week| week.nodes == 4), "{weeks:?}");
    drop(store);
    drop(backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_counts_beside_a_pass_in_progress() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    store
        .insert(sample_report("stuck", day()))
        .await
        .expect("insert");
    store.settle().await.expect("settle");
    // A pass that counts the node's next report waits for its snapshot row.
    let other = support::postgres_admin(&backend).await;
    other.batch_execute("BEGIN").await.expect("begin");
    other
        .query_one(
            "SELECT uuid FROM nodes WHERE uuid = 'stuck' FOR UPDATE",
            &[],
        )
        .await
        .expect("lock the node's snapshot");
    let next_day = day().succ_opt().expect("a date");
    store
        .insert(sample_report("stuck", next_day))
        .await
        .expect("insert");
    assert!(
        a_count_waits_for_a_lock(&other, &backend).await,
        "no pass waited for the node's snapshot"
    );
    store
        .insert(sample_report("free", day()))
        .await
        .expect("insert");
    let settling = spawn_settle(&store);
    let left = uncounted_within(&other, 1, Duration::from_secs(3)).await;
    assert_eq!(
        left, 1,
        "the settle's pass counts `free` beside the stuck one"
    );
    assert!(
        !settling.is_finished(),
        "a settle must wait for the report the stuck pass holds"
    );
    other.batch_execute("ROLLBACK").await.expect("rollback");
    settling.await.expect("settle task").expect("settle");
    let query = AnalyticsQuery {
        to: next_day,
        ..query()
    };
    let weeks = store.activity(&query).await.expect("activity");
    assert!(weeks.iter().any(|week| week.nodes == 2), "{weeks:?}");
    drop(store);
    drop(backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_counts_what_was_marked_before_it_and_not_what_came_after() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    let other = support::postgres_admin(&backend).await;
    store
        .insert(sample_report("before", day()))
        .await
        .expect("insert");
    // The settle's pass starts, and waits for the counting lock...
    hold_counting(&other, &backend, true).await;
    let settling = spawn_settle(&store);
    assert!(
        a_count_waits_for_a_lock(&other, &backend).await,
        "the settle never waited for the counting lock"
    );
    // ...while a report is marked, and its mark held as a count that may yet fail would.
    store
        .insert(sample_report("after", day()))
        .await
        .expect("insert");
    let holder = support::postgres_admin(&backend).await;
    holder.batch_execute("BEGIN").await.expect("begin");
    holder
        .query_one(
            "SELECT uuid FROM rollup_pending WHERE uuid = 'after' FOR UPDATE",
            &[],
        )
        .await
        .expect("hold the later mark");
    hold_counting(&other, &backend, false).await;
    tokio::time::timeout(Duration::from_secs(10), settling)
        .await
        .expect("a settle must not wait for what was marked after it started")
        .expect("settle task")
        .expect("settle");
    let counted = texts(&other, "SELECT uuid FROM nodes", &[]).await;
    assert_eq!(counted, ["before"], "the settle counts what came before it");
    holder.batch_execute("ROLLBACK").await.expect("rollback");
    store.settle().await.expect("settle");
    let weeks = store.activity(&query()).await.expect("activity");
    assert!(weeks.iter().any(|week| week.nodes == 2), "{weeks:?}");
    drop(store);
    drop(backend);
}

/// Whether a count of the store on `backend` waits for a lock within 5 s.
async fn a_count_waits_for_a_lock(client: &tokio_postgres::Client, backend: &Backend) -> bool {
    let schema = support::schema(backend).expect("a schema");
    for _ in 0..50 {
        let waiting: bool = client
            .query_one(
                "SELECT count(*) > 0 FROM pg_stat_activity
                WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&schema],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if waiting {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// New nodes, each reporting on two days of one week: two collectors counting at once
/// take chunks of both days, and both find the nodes new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_nodes_two_collectors_count_at_once_are_counted_once() {
    const NODES: usize = 4_096;
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let stores = [support::open(&backend).await, support::open(&backend).await];
    let other = support::postgres_admin(&backend).await;
    hold_counting(&other, &backend, true).await;
    let next_day = day().succ_opt().expect("a date");
    let reports = (0..NODES).flat_map(move |n| {
        let uuid = format!("node-{n:05}");
        [sample_report(&uuid, day()), sample_report(&uuid, next_day)]
    });
    // The load ends with a count, which waits: both stores' counts start at once below.
    let loading = tokio::spawn({
        let store = Arc::clone(&stores[0]);
        async move { store.bulk_insert(Box::new(reports)).await }
    });
    let stored = uncounted_within(&other, 2 * NODES as i64, Duration::from_secs(30)).await;
    assert_eq!(stored, 2 * NODES as i64, "the load was not stored in 30 s");
    let settling = spawn_settle(&stores[1]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    hold_counting(&other, &backend, false).await;
    loading.await.expect("load task").expect("bulk insert");
    settling.await.expect("settle task").expect("settle");
    let query = AnalyticsQuery {
        to: next_day,
        ..query()
    };
    let weeks = stores[1].activity(&query).await.expect("activity");
    let counted: Vec<_> = weeks
        .iter()
        .map(|week| (week.nodes, week.new_nodes, week.clusters))
        .collect();
    assert_eq!(counted, [(NODES as u64, NODES as u64, 1)], "{weeks:?}");
    drop(stores);
    drop(backend);
}

/// The advisory lock every count shares and maintenance holds alone.
fn counting_lock(backend: &Backend) -> String {
    let schema = support::schema(backend).expect("a schema");
    format!("beacon-store writer {schema}")
}

/// Holds counting off (as maintenance does, but in `client`'s session, so that its
/// transactions can go on after `hold` is false again), or lets it go on.
async fn hold_counting(client: &tokio_postgres::Client, backend: &Backend, hold: bool) {
    let sql = match hold {
        true => "SELECT pg_advisory_lock(hashtext($1))",
        false => "SELECT pg_advisory_unlock(hashtext($1))",
    };
    client
        .execute(sql, &[&counting_lock(backend)])
        .await
        .expect("the counting lock");
}

/// The reports left uncounted, once they are `expected` or after `wait`.
async fn uncounted_within(client: &tokio_postgres::Client, expected: i64, wait: Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left: i64 = client
            .query_one("SELECT count(*) FROM rollup_pending", &[])
            .await
            .expect("uncounted reports")
            .get(0);
        if left == expected || tokio::time::Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn_settle(
    store: &Arc<dyn Store>,
) -> tokio::task::JoinHandle<Result<(), beacon_store::StoreError>> {
    let store = Arc::clone(store);
    tokio::spawn(async move { store.settle().await })
}

#[tokio::test]
async fn rollup_counters_are_in_no_index_so_counting_updates_them_in_place() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    let client = support::postgres_admin(&backend).await;
    let rollups = format!("{}.rollups", support::schema(&backend).expect("a schema"));
    let indexed = texts(
        &client,
        "SELECT a.attname::text FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = $1::text::regclass",
        &[&rollups],
    )
    .await;
    assert!(
        !indexed.is_empty() && !indexed.contains(&"n".to_owned()),
        "{indexed:?}"
    );
    let partial: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_index WHERE indrelid = $1::text::regclass
                AND indpred IS NOT NULL",
            &[&rollups],
        )
        .await
        .expect("partial indexes")
        .get(0);
    assert_eq!(
        partial, 0,
        "an index predicate on `n` makes every update a new row"
    );
    let options: Option<Vec<String>> = client
        .query_one(
            "SELECT reloptions FROM pg_class WHERE oid = $1::text::regclass",
            &[&rollups],
        )
        .await
        .expect("table options")
        .get(0);
    assert!(
        options
            .unwrap_or_default()
            .contains(&"fillfactor=50".to_owned()),
        "pages keep room for the updated counters"
    );
    drop(store);
    drop(backend);
}

/// The tables a count looks its keys up in.
const LOOKED_UP: [&str; 5] = [
    "cluster_weeks",
    "node_weeks",
    "nodes",
    "reports",
    "rollup_pending",
];

/// PostgreSQL plans a count's lookups from table statistics that may be far behind the
/// table (here never taken, as with autovacuum off: the tables look empty to the planner).
/// The lookups still go through the tables' key indexes: reading a whole table for a
/// chunk would cost more with every report stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_looks_its_keys_up_through_the_indexes_whatever_the_statistics_say() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    // The migrations read the new tables whole; what counts is what comes after them.
    drop(support::open(&backend).await);
    let migrated = table_scans(&backend, &LOOKED_UP).await;
    let store = support::open(&backend).await;
    // The same nodes on a second day: its count finds the first day's snapshots.
    for day in [day(), day().succ_opt().expect("a day")] {
        let reports = (0..2_000).map(move |n| sample_report(&format!("looked-up-{n}"), day));
        let outcome = store
            .bulk_insert(Box::new(reports))
            .await
            .expect("bulk insert");
        assert_eq!(outcome.inserted, 2_000);
    }
    store.settle().await.expect("settle");
    drop(store);
    let counted = table_scans(&backend, &LOOKED_UP).await;
    for ((table, seq_before, index_before), (_, seq_after, index_after)) in
        migrated.iter().zip(&counted)
    {
        assert_eq!(seq_before, seq_after, "{table} was read whole: {counted:?}");
        assert!(index_after > index_before, "{table} was never looked up");
    }
    drop(backend);
}

/// The ingest writer plans its statements once per connection (generic plans, made from
/// the statistics of that moment): every batch still looks its nodes' claims up by key,
/// even when the statistics say there are two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_looks_claims_up_by_key_with_plans_made_while_there_were_few() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    for n in 0..2 {
        let report = sample_report(&format!("first-{n}"), day());
        store.insert(report).await.expect("insert");
    }
    drop(store);
    support::wait_closed(&backend).await;
    let admin = support::postgres_admin(&backend).await;
    admin
        .batch_execute("ANALYZE node_claims")
        .await
        .expect("analyze");
    let migrated = table_scans(&backend, &["node_claims"]).await;
    let store = support::open(&backend).await;
    let mut writers = JoinSet::new();
    for writer in 0..16 {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            for n in 0..40 {
                let report = sample_report(&format!("claimed-{writer}-{n}"), day());
                store.insert(report).await.expect("insert");
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }
    drop(store);
    let written = table_scans(&backend, &["node_claims"]).await;
    let ((_, seq_before, index_before), (_, seq_after, index_after)) = (&migrated[0], &written[0]);
    assert_eq!(seq_before, seq_after, "node_claims was read whole");
    assert!(index_after > index_before, "claims were never looked up");
    drop(backend);
}

/// The tables forgetting a node deletes its reports and week snapshots from.
const FORGOTTEN_FROM: [&str; 3] = ["cluster_weeks", "node_weeks", "reports"];

/// Reports and week snapshots are keyed by day or week first, with no index on the node:
/// one random index insert fewer per table for every new node. Forgetting a node still
/// reads only its own rows, walking the days and weeks through the keys, whatever the
/// statistics say (here never taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_a_node_walks_the_days_and_weeks_through_the_keys_whatever_the_statistics_say() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    let secret = "ab".repeat(32);
    let mut reports = Vec::new();
    for week in 0..3 {
        let day = day() - chrono::Days::new(7 * week);
        reports.extend((0..500).map(|n| sample_report(&format!("kept-{n}"), day)));
        // A 4.x report: its cluster is keyed by its uuid, and forgotten with it.
        let forgotten = reports.len() - 500;
        let report = &mut reports[forgotten];
        report.uuid = "forgotten".to_owned();
        report.cluster_uuid = None;
        report.format = 4;
        report.analytics.deletion_secret_sha256 = Some(secret.clone());
    }
    let outcome = store
        .bulk_insert(Box::new(reports.into_iter()))
        .await
        .expect("bulk insert");
    assert_eq!(outcome.inserted, 1_500);
    store.settle().await.expect("settle");
    drop(store);
    let admin = support::postgres_admin(&backend).await;
    let schema = support::schema(&backend).expect("a schema");
    let indexes = texts(
        &admin,
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = ANY($2)
        ORDER BY indexname",
        &[&schema, &FORGOTTEN_FROM.as_slice()],
    )
    .await;
    assert_eq!(
        indexes,
        ["cluster_weeks_pkey", "node_weeks_pkey", "reports_pkey"],
        "one index per table: its key"
    );
    assert_eq!(
        forgotten_snapshots(&admin).await,
        6,
        "three weeks of a node and its cluster"
    );
    let counted = table_scans(&backend, &FORGOTTEN_FROM).await;
    let store = support::open(&backend).await;
    let forgotten = store.forget_node("forgotten", &secret).await;
    assert_eq!(
        forgotten.expect("forget"),
        beacon_store::ForgetOutcome::Deleted { reports: 3 }
    );
    drop(store);
    let forgot = table_scans(&backend, &FORGOTTEN_FROM).await;
    for ((table, seq_before, _), (_, seq_after, _)) in counted.iter().zip(&forgot) {
        assert_eq!(seq_before, seq_after, "{table} was read whole: {forgot:?}");
    }
    let kept: i64 = admin
        .query_one("SELECT count(*) FROM reports", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(kept, 1_497, "the others stay");
    assert_eq!(
        forgotten_snapshots(&admin).await,
        0,
        "the node's week snapshots are gone"
    );
    drop(backend);
}

/// The first column of every row of `sql`, as text.
async fn texts(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Vec<String> {
    let rows = client.query(sql, params).await.expect(sql);
    rows.iter().map(|row| row.get(0)).collect()
}

async fn forgotten_snapshots(admin: &tokio_postgres::Client) -> i64 {
    let snapshots = "SELECT (SELECT count(*) FROM node_weeks WHERE uuid = 'forgotten')
        + (SELECT count(*) FROM cluster_weeks WHERE cluster_key = 'forgotten')";
    admin
        .query_one(snapshots, &[])
        .await
        .expect("snapshots")
        .get(0)
}

/// (table, sequential scans, index scans) of each of `tables`, in name order, once the
/// stores on the schema are closed (a session's statistics reach the server's as it ends).
async fn table_scans(backend: &Backend, tables: &[&str]) -> Vec<(String, i64, i64)> {
    support::wait_closed(backend).await;
    let admin = support::postgres_admin(backend).await;
    let schema = support::schema(backend).expect("a schema");
    let scans: Vec<(String, i64, i64)> = admin
        .query(
            "SELECT relname::text, seq_scan, idx_scan FROM pg_stat_user_tables
            WHERE schemaname = $1 AND relname = ANY($2) ORDER BY relname",
            &[&schema, &tables],
        )
        .await
        .expect("pg_stat_user_tables")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(scans.len(), tables.len(), "{scans:?}");
    scans
}

/// The counter vacuums the queue itself, and keeps its pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_vacuums_its_queue_of_counted_keys_itself_and_keeps_its_pages() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    // More than the 16,384 counted keys after which the counter vacuums.
    let reports = (0..17_000).map(|n| sample_report(&format!("queued-{n}"), day()));
    let outcome = store
        .bulk_insert(Box::new(reports))
        .await
        .expect("bulk insert");
    assert_eq!(outcome.inserted, 17_000);
    let admin = support::postgres_admin(&backend).await;
    let schema = support::schema(&backend).expect("a schema");
    // `last_vacuum` is set by a VACUUM statement, never by autovacuum (off on the test
    // machines anyway): only the counter vacuums here.
    let mut vacuumed = false;
    for _ in 0..100 {
        vacuumed = admin
            .query_one(
                "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables
                WHERE schemaname = $1 AND relname = 'rollup_pending'",
                &[&schema],
            )
            .await
            .expect("pg_stat_user_tables")
            .get(0);
        if vacuumed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(vacuumed, "rollup_pending was never vacuumed");
    // Giving empty tail pages back takes the table's exclusive lock: with other sessions
    // using the queue, a vacuum retried it for up to 5 s, and held it against ingest.
    store.settle().await.expect("settle");
    let pages: i64 = admin
        .query_one("SELECT pg_relation_size('rollup_pending')", &[])
        .await
        .expect("pg_relation_size")
        .get(0);
    assert!(pages > 0, "the vacuum gave the queue's pages back");
    drop(store);
    drop(backend);
}

/// Chunks log their counter deltas, and folds add them to the counters: the folds of two
/// collectors (each folds what both logged once it is idle, and again as it stops) add
/// every delta once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_folds_of_two_collectors_add_every_counted_delta_once() {
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let stores = [support::open(&backend).await, support::open(&backend).await];
    let new_nodes = "SELECT COALESCE(sum(n), 0)::BIGINT FROM rollups
        WHERE version = '' AND os = '' AND kind = 'new_nodes'";
    let logged = "SELECT count(*) FROM counter_deltas";
    for round in 0..3 {
        let inserts = (0..300).map(|n| {
            let store = Arc::clone(&stores[n % 2]);
            let uuid = format!("fold-{round}-{n:03}");
            tokio::spawn(async move { store.insert(sample_report(&uuid, day())).await })
        });
        for insert in futures::future::join_all(inserts).await {
            insert.expect("insert task").expect("insert");
        }
        for store in &stores {
            store.settle().await.expect("settle");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while support::admin_i64(&backend, logged).await > 0 {
            assert!(tokio::time::Instant::now() < deadline, "idle stores fold");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let counted = support::admin_i64(&backend, new_nodes).await;
        assert_eq!(counted, 300 * (round + 1), "new nodes after round {round}");
    }
    stores[0]
        .insert(sample_report("fold-last", day()))
        .await
        .expect("insert");
    drop(stores);
    support::wait_closed(&backend).await;
    assert_eq!(
        support::admin_i64(&backend, logged).await,
        0,
        "folded at stop"
    );
    assert_eq!(support::admin_i64(&backend, new_nodes).await, 901);
}

/// Statistics taken while the queue of marked keys was empty say it is empty however long
/// it grows. Counting still looks each of a chunk's keys up in it, rather than reading the
/// whole queue for each chunk (which made chunks take minutes under load, the queue
/// growing faster than they counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_reads_the_queue_key_by_key_whatever_its_statistics_say() {
    const NODES: i64 = 16_384;
    let Some(backend) = TestDb::postgres().map(Backend::from) else {
        return;
    };
    let store = support::open(&backend).await;
    let reports: Vec<_> = (0..NODES)
        .map(|n| sample_report(&format!("queued-{n:05}"), day()))
        .collect();
    let loaded = store.bulk_insert(Box::new(reports.into_iter())).await;
    assert_eq!(loaded.expect("bulk insert").inserted, NODES as u64);
    drop(store);
    support::wait_closed(&backend).await;
    support::admin_execute(
        &backend,
        "DELETE FROM rollups; DELETE FROM counter_deltas; DELETE FROM nodes;
         DELETE FROM node_weeks; DELETE FROM cluster_weeks;
         INSERT INTO rollup_pending (day, uuid) SELECT day, uuid FROM reports;
         UPDATE pg_class SET reltuples = 0, relpages = 1000
             WHERE oid = 'rollup_pending'::regclass;",
    )
    .await;
    let read_before = queue_entries_read(&backend).await;
    let store = support::open(&backend).await;
    store.settle().await.expect("settle");
    drop(store);
    support::wait_closed(&backend).await;
    let pending = support::admin_i64(&backend, "SELECT count(*) FROM rollup_pending").await;
    assert_eq!(pending, 0, "every key counted");
    let read = queue_entries_read(&backend).await - read_before;
    // Each key's entry is read a few times (taken, read back, deleted, swept by the
    // settle; passes that start meanwhile walk the dead entries again: 5 to 9 x NODES),
    // not the whole queue for each chunk (chunks x NODES more: 16 x NODES at this size,
    // growing with it).
    assert!(
        read < 12 * NODES,
        "{read} queue entries read to count {NODES}"
    );
}

async fn queue_entries_read(backend: &Backend) -> i64 {
    support::admin_i64(
        backend,
        "SELECT COALESCE(sum(idx_tup_read), 0)::BIGINT FROM pg_stat_user_indexes
         WHERE relid = 'rollup_pending'::regclass",
    )
    .await
}
