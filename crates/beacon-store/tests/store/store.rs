//! Storage tests, written once and run against both backends: a real SQLite file in a
//! temporary directory, and the real PostgreSQL at `TEST_DATABASE_URL` in a schema of the
//! test's own.

use crate::support;

use std::sync::Arc;

use beacon_store::testing::sample_report as report;
use beacon_store::{InsertOutcome, NewReport, StoreError, StoredReport, open};
use chrono::NaiveDate;
use tokio::task::JoinSet;

use support::{Backend, admin_i64, each_backend, postgres_admin, sqlite_admin};

async fn open_store(backend: &Backend) -> Arc<dyn beacon_store::ReportStore> {
    support::open(backend).await
}

fn day(n: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, n).expect("a valid day")
}

/// Runs SQL beside the store, as an operator or a failing disk would.
async fn admin(backend: &Backend, sqlite_sql: &str, postgres_sql: &str) {
    if backend.name == "sqlite" {
        sqlite_admin(backend)
            .execute_batch(sqlite_sql)
            .expect("sqlite admin SQL");
    } else {
        postgres_admin(backend)
            .await
            .batch_execute(postgres_sql)
            .await
            .expect("postgres admin SQL");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_even_when_two_collectors_start_together() {
    each_backend(|backend| async move {
        let (first, second) = tokio::join!(open(&backend.url), open(&backend.url));
        let (first, second) = (first.expect("first open"), second.expect("second open"));
        first.insert(report("A", day(1))).await.expect("insert");
        drop((first, second));
        let third = open_store(&backend).await;
        assert_eq!(third.count().await.expect("count"), 1, "{}", backend.name);
        let recorded = admin_i64(&backend, "SELECT count(*) FROM schema_migrations").await;
        let latest = admin_i64(&backend, "SELECT max(version) FROM schema_migrations").await;
        assert!(recorded >= 1, "{}: no migration recorded", backend.name);
        assert_eq!(
            recorded, latest,
            "{}: a version recorded twice",
            backend.name
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_that_fails_says_what_the_database_said() {
    each_backend(|backend| async move {
        drop(open_store(&backend).await);
        support::wait_closed(&backend).await;
        // The latest migration, forgotten: applied again, it finds its objects there.
        let forget_latest = "DELETE FROM schema_migrations
            WHERE version = (SELECT max(version) FROM schema_migrations)";
        admin(&backend, forget_latest, forget_latest).await;
        let error = open(&backend.url).await.err().expect("the migration fails");
        let message = error.to_string();
        assert!(
            message.contains("schema migration") && message.contains("already exists"),
            "{}: {message}",
            backend.name
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_round_trips() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        let mut full = report("5E8C7A1B-2F3D-4E5F-9A0B-1C2D3E4F5A6B", day(1));
        // Nanoseconds in, microseconds out: the precision both backends keep.
        full.received_at = day(1)
            .and_hms_nano_opt(23, 59, 59, 123_456_789)
            .expect("a valid time")
            .and_utc();
        let minimal = NewReport {
            cluster_uuid: None,
            os_name: None,
            os_version: None,
            edition: None,
            node_count: 1,
            format: 4,
            ..report("minimal-4x-node", day(2))
        };
        for original in [full, minimal] {
            let outcome = store.insert(original.clone()).await.expect("insert");
            assert_eq!(outcome, InsertOutcome::Inserted, "{}", backend.name);
            let stored = store.get(&original.uuid, original.day).await.expect("get");
            let expected = NewReport {
                received_at: chrono::SubsecRound::trunc_subsecs(original.received_at, 6),
                ..original
            };
            assert_eq!(stored, Some(expected.to_stored()), "{}", backend.name);
        }
        let absent = store.get("minimal-4x-node", day(1)).await.expect("get");
        assert_eq!(absent, None, "{}", backend.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_node_three_times_in_one_day_keeps_only_the_last() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        let mut outcomes = Vec::new();
        for version in ["5.0.7", "5.0.8", "5.0.9"] {
            let mut sent = report("A", day(1));
            sent.emqx_version = version.into();
            sent.raw = format!(r#"{{"uuid":"A","emqx_version":"{version}"}}"#);
            outcomes.push(store.insert(sent).await.expect("insert"));
        }
        use InsertOutcome::{Inserted, Replaced};
        assert_eq!(outcomes, [Inserted, Replaced, Replaced], "{}", backend.name);
        assert_eq!(store.count().await.expect("count"), 1, "{}", backend.name);
        let stored = store.get("A", day(1)).await.expect("get").expect("a row");
        assert_eq!(stored.emqx_version, "5.0.9", "{}", backend.name);
        assert!(stored.raw.contains("5.0.9"), "{}", backend.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_days_are_separate_rows_listed_by_day_then_uuid() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        // Byte order puts digits, then upper case, then lower case: both backends must agree.
        for (uuid, n) in [("a", 2), ("B", 2), ("0AAA", 3), ("0AAA", 1), ("0AAA", 2)] {
            let outcome = store.insert(report(uuid, day(n))).await.expect("insert");
            assert_eq!(
                outcome,
                InsertOutcome::Inserted,
                "{} {uuid} {n}",
                backend.name
            );
        }
        assert_eq!(store.count().await.expect("count"), 5, "{}", backend.name);
        let keys = |reports: Vec<StoredReport>| -> Vec<(String, NaiveDate)> {
            reports.into_iter().map(|r| (r.uuid, r.day)).collect()
        };
        let listed = keys(store.list(day(1), day(2)).await.expect("list"));
        let expected = [("0AAA", 1), ("0AAA", 2), ("B", 2), ("a", 2)]
            .map(|(uuid, n)| (uuid.to_owned(), day(n)));
        assert_eq!(listed, expected, "{}", backend.name);
        let last_day = keys(store.list(day(3), day(3)).await.expect("list"));
        assert_eq!(last_day, [("0AAA".to_owned(), day(3))], "{}", backend.name);
        assert!(store.list(day(4), day(9)).await.expect("list").is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_are_all_stored_in_shared_batches() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        let mut tasks = JoinSet::new();
        for n in 0..200 {
            let store = Arc::clone(&store);
            tasks.spawn(async move { store.insert(report(&format!("node-{n:03}"), day(1))).await });
        }
        while let Some(joined) = tasks.join_next().await {
            let outcome = joined.expect("task").expect("insert");
            assert_eq!(outcome, InsertOutcome::Inserted, "{}", backend.name);
        }
        assert_eq!(store.count().await.expect("count"), 200, "{}", backend.name);
        let stats = store.stats();
        assert_eq!(stats.rows, 200, "{}", backend.name);
        assert!(
            stats.batches < stats.rows,
            "{}: no batch held more than one insert: {stats:?}",
            backend.name
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reports_of_one_node_and_day_leave_one_row() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        let mut tasks = JoinSet::new();
        for n in 0..50 {
            let store = Arc::clone(&store);
            let mut sent = report("A", day(1));
            sent.raw = format!(r#"{{"uuid":"A","n":{n}}}"#);
            tasks.spawn(async move { store.insert(sent).await });
        }
        let mut inserted = 0;
        while let Some(joined) = tasks.join_next().await {
            if joined.expect("task").expect("insert") == InsertOutcome::Inserted {
                inserted += 1;
            }
        }
        assert_eq!(
            inserted, 1,
            "{}: exactly one insert creates the row",
            backend.name
        );
        assert_eq!(store.count().await.expect("count"), 1, "{}", backend.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_closed_amid_inserts_counted_every_report_it_accepted_and_takes_no_more() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        let mut writers = JoinSet::new();
        for writer in 0..8 {
            let store = Arc::clone(&store);
            writers.spawn(async move {
                let mut accepted = 0;
                for n in 0..40 {
                    match store
                        .insert(report(&format!("node-{writer}-{n}"), day(1)))
                        .await
                    {
                        Ok(_) => accepted += 1,
                        Err(StoreError::Closed) => break,
                        Err(error) => panic!("insert: {error}"),
                    }
                }
                accepted
            });
        }
        while store.stats().rows < 40 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        store.close().await.expect("close");
        let mut accepted = 0;
        while let Some(joined) = writers.join_next().await {
            accepted += joined.expect("writer");
        }
        let name = backend.name;
        assert!(accepted < 8 * 40, "{name}: the close stopped no writer");
        let stored = admin_i64(&backend, "SELECT count(*) FROM reports").await;
        assert_eq!(stored, accepted, "{name}: every accepted report stored");
        let counted = admin_i64(&backend, "SELECT count(*) FROM nodes").await;
        assert_eq!(counted, accepted, "{name}: every accepted report counted");
        let unfolded = admin_i64(&backend, "SELECT count(*) FROM counter_deltas").await;
        assert_eq!(unfolded, 0, "{name}: every counter delta folded");
        let late = store.insert(report("late", day(1))).await;
        assert!(matches!(late, Err(StoreError::Closed)), "{name}: {late:?}");
        let settled = store.settle().await;
        assert!(
            matches!(settled, Err(StoreError::Closed)),
            "{name}: {settled:?}"
        );
        if let Some(schema) = support::schema(&backend) {
            let busy = format!(
                "SELECT count(*) FROM pg_stat_activity
                WHERE application_name = '{schema}' AND state <> 'idle'"
            );
            assert_eq!(
                admin_i64(&backend, &busy).await,
                0,
                "a session still at work"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_dropping_and_reopening_the_store() {
    each_backend(|backend| async move {
        let sent = report("A", day(1));
        let store = open_store(&backend).await;
        store.insert(sent.clone()).await.expect("insert");
        drop(store);
        let reopened = open_store(&backend).await;
        let stored = reopened.get("A", day(1)).await.expect("get");
        assert_eq!(stored, Some(sent.to_stored()), "{}", backend.name);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_ok_and_backend_is_named() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        store.health().await.expect("healthy");
        assert_eq!(store.backend(), backend.name);
        if backend.name == "sqlite" {
            let mode: String = sqlite_admin(&backend)
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .expect("journal mode");
            assert_eq!(mode, "wal");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_fails_every_waiter_and_later_batches_work() {
    // SQLite's ingest commit writes to its log (see `sqlite::uncounted`).
    failed_batches_then_later_ones_work("incoming", "reports").await;
}

/// On PostgreSQL a batch's claims go with its `BEGIN`, before its `COMMIT` is sent: a
/// connection whose batch failed there must not go back to the pool inside that aborted
/// transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failed_at_its_claims_leaves_no_transaction_open_for_later_ones() {
    failed_batches_then_later_ones_work("node_claims", "node_claims").await;
}

/// Every insert of a batch whose writes to the given table fail fails with the cause; once
/// the cause is gone, batches work again, on every connection of the writer.
async fn failed_batches_then_later_ones_work(sqlite_table: &str, postgres_table: &str) {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        admin(
            &backend,
            &format!(
                "CREATE TRIGGER fail_writes BEFORE INSERT ON {sqlite_table}
                 BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;"
            ),
            &format!(
                "CREATE FUNCTION fail_writes() RETURNS trigger LANGUAGE plpgsql
                     AS $$ BEGIN RAISE EXCEPTION 'simulated write failure'; END $$;
                 CREATE TRIGGER fail_writes BEFORE INSERT ON {postgres_table}
                     FOR EACH ROW EXECUTE FUNCTION fail_writes();"
            ),
        )
        .await;
        let mut tasks = JoinSet::new();
        for n in 0..20 {
            let store = Arc::clone(&store);
            tasks.spawn(async move { store.insert(report(&format!("node-{n}"), day(1))).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined.expect("task") {
                Err(error @ (StoreError::Sqlite { .. } | StoreError::Postgres { .. })) => {
                    let message = error.to_string();
                    assert!(message.contains("simulated write failure"), "{message}");
                }
                other => panic!("{}: expected a database error, got {other:?}", backend.name),
            }
        }
        assert_eq!(store.stats().rows, 0, "{}", backend.name);
        admin(
            &backend,
            "DROP TRIGGER fail_writes;",
            &format!("DROP TRIGGER fail_writes ON {postgres_table}; DROP FUNCTION fail_writes();"),
        )
        .await;
        // One at a time, more than the writer has connections: each batch takes a
        // connection a failed batch may have used.
        for n in 0..8 {
            let outcome = store.insert(report(&format!("after-{n}"), day(1))).await;
            assert_eq!(
                outcome.expect("insert"),
                InsertOutcome::Inserted,
                "{}",
                backend.name
            );
        }
        assert_eq!(store.count().await.expect("count"), 8, "{}", backend.name);
        store.health().await.expect("healthy again");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reports_are_refused_before_the_writer() {
    each_backend(|backend| async move {
        let store = open_store(&backend).await;
        let base = || report("A", day(1));
        let cases = [
            (
                "uuid",
                NewReport {
                    uuid: String::new(),
                    ..base()
                },
            ),
            (
                "emqx_version",
                NewReport {
                    emqx_version: String::new(),
                    ..base()
                },
            ),
            (
                "format",
                NewReport {
                    format: 3,
                    ..base()
                },
            ),
            (
                "node_count",
                NewReport {
                    node_count: -1,
                    ..base()
                },
            ),
            (
                "os_name",
                NewReport {
                    os_name: Some("Linux\0".into()),
                    ..base()
                },
            ),
            (
                "raw",
                NewReport {
                    raw: String::new(),
                    ..base()
                },
            ),
        ];
        for (expected, bad) in cases {
            match store.insert(bad).await {
                Err(StoreError::InvalidReport { field, .. }) => {
                    assert_eq!(field, expected, "{}", backend.name);
                }
                other => panic!(
                    "{}: {expected}: expected InvalidReport, got {other:?}",
                    backend.name
                ),
            }
        }
        store.insert(base()).await.expect("a valid report");
        assert_eq!(store.count().await.expect("count"), 1, "{}", backend.name);
    })
    .await;
}

#[tokio::test]
async fn unusable_urls_give_typed_errors_naming_the_problem() {
    match open("mysql://user:secret@127.0.0.1/db").await {
        Err(StoreError::BadUrl {
            url_redacted,
            reason,
        }) => {
            assert!(reason.contains("mysql"), "{reason}");
            assert!(!url_redacted.contains("secret"), "{url_redacted}");
        }
        other => panic!("expected BadUrl, got {:?}", other.err()),
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").expect("write a plain file");
    let url = format!("sqlite://{}/collector.db", file.display());
    match open(&url).await {
        Err(error @ StoreError::Io { .. }) => {
            assert!(error.to_string().contains("not-a-directory"), "{error}");
        }
        other => panic!("expected an Io error, got {:?}", other.err()),
    }

    let url = format!("sqlite://{}", dir.path().display());
    match open(&url).await {
        Err(error @ StoreError::Sqlite { .. }) => {
            assert!(error.to_string().contains("open"), "{error}");
        }
        other => panic!("a directory is no database file, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_reported_without_its_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let url = "postgres://beacon:hunter2@127.0.0.1:1/db?schema=beacon";
    match open(url).await {
        Err(error @ StoreError::PostgresPool { .. }) => {
            let message = error.to_string();
            assert!(message.contains("127.0.0.1:1"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected a connection error, got {:?}", other.err()),
    }
}
