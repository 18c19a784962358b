//! Two stores (as two collectors would open them) on one PostgreSQL schema, inserting the
//! same nodes at once in different orders: no insert fails (no deadlock), each node and day
//! is stored once, and the rollups count every node once.

use std::collections::HashSet;
use std::sync::Arc;

use beacon_store::testing::{TestDb, sample_report};
use beacon_store::{AnalyticsQuery, Store};
use chrono::NaiveDate;
use tokio::task::JoinSet;

/// Concurrent writers, half of them on each store (each on one, so that the two stores
/// commit independently rather than taking turns).
const WRITERS: usize = 64;
const INSERTS: usize = 60;
/// Nodes every writer inserts, each in its own order.
const SHARED: usize = 16;

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).expect("a date")
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
    let query = AnalyticsQuery {
        from: day(),
        to: day(),
        version: None,
        os: None,
    };
    for store in [&first, &second] {
        let weeks = store.activity(&query).await.expect("activity");
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
