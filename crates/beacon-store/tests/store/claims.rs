//! Deletion claims (trust on first use), on SQLite and PostgreSQL: the first deletion
//! hash of a node is kept, a report with another one stores nothing, and a node whose
//! first report had none cannot be claimed later.

use crate::support;

use beacon_store::testing::sample_report;
use beacon_store::{ForgetOutcome, InsertOutcome, NewReport};
use chrono::{Days, NaiveDate};
use support::{each_backend, open};

fn day(n: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).expect("day") + Days::new(n)
}

/// A report of `uuid` on day `n` announcing `hash`.
fn report(uuid: &str, n: u64, hash: Option<&str>) -> NewReport {
    let mut report = sample_report(uuid, day(n));
    report.analytics.deletion_secret_sha256 = hash.map(str::to_owned);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_with_another_hash_stores_nothing_and_the_owner_still_deletes() {
    each_backend(|backend| async move {
        let store = open(&backend).await;
        let name = backend.name;
        let (owner, forger) = ("aa".repeat(32), "ff".repeat(32));
        let first = store.insert(report("N1", 0, Some(&owner))).await;
        assert_eq!(first.expect("insert"), InsertOutcome::Inserted, "{name}");
        for n in [0, 1] {
            let forged = store.insert(report("N1", n, Some(&forger))).await;
            assert_eq!(
                forged.expect("insert"),
                InsertOutcome::HashMismatch,
                "{name}"
            );
        }
        assert_eq!(
            store.count().await.expect("count"),
            1,
            "{name}: nothing stored"
        );
        let hashless = store.insert(report("N1", 2, None)).await;
        assert_eq!(hashless.expect("insert"), InsertOutcome::Inserted, "{name}");
        let same = store
            .insert(report("N1", 3, Some(&owner.to_uppercase())))
            .await;
        assert_eq!(same.expect("insert"), InsertOutcome::Inserted, "{name}");

        let forged = store.forget_node("N1", &forger).await.expect("forget");
        assert_eq!(forged, ForgetOutcome::WrongSecret, "{name}");
        let deleted = store.forget_node("N1", &owner).await.expect("forget");
        assert_eq!(deleted, ForgetOutcome::Deleted { reports: 3 }, "{name}");
        let gone = store.forget_node("N1", &owner).await.expect("forget");
        assert_eq!(
            gone,
            ForgetOutcome::UnknownNode,
            "{name}: the claim went too"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_hash_cannot_be_claimed_later() {
    each_backend(|backend| async move {
        let store = open(&backend).await;
        let name = backend.name;
        let claimer = "cc".repeat(32);
        store.insert(report("N2", 0, None)).await.expect("insert");
        let later = store.insert(report("N2", 1, Some(&claimer))).await;
        assert_eq!(
            later.expect("insert"),
            InsertOutcome::Inserted,
            "{name}: the report is stored, its hash claims nothing"
        );
        let outcome = store.forget_node("N2", &claimer).await.expect("forget");
        assert_eq!(outcome, ForgetOutcome::WrongSecret, "{name}");
        assert_eq!(store.count().await.expect("count"), 2, "{name}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_one_batch_the_first_hash_of_a_node_wins() {
    each_backend(|backend| async move {
        let store = open(&backend).await;
        let name = backend.name;
        let (first, second) = ("aa".repeat(32), "bb".repeat(32));
        let reports = vec![
            report("N3", 0, Some(&first)),
            report("N3", 1, Some(&second)),
            report("N3", 2, Some(&first)),
        ];
        let outcome = store
            .bulk_insert(Box::new(reports.into_iter()))
            .await
            .expect("bulk");
        assert_eq!((outcome.inserted, outcome.refused), (2, 1), "{name}");
        let forged = store.forget_node("N3", &second).await.expect("forget");
        assert_eq!(forged, ForgetOutcome::WrongSecret, "{name}");
        let deleted = store.forget_node("N3", &first).await.expect("forget");
        assert_eq!(deleted, ForgetOutcome::Deleted { reports: 2 }, "{name}");
    })
    .await;
}
