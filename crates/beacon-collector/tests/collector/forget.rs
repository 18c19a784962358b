//! Self-service deletion and retention against a real collector on both backends.

use crate::support;

use beacon_report::fixtures::SEED_5_0_9;
use beacon_store::testing::sample_report;
use beacon_store::{AnalyticsQuery, NewReport};
use chrono::{Days, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{Running, backends};

const SECRET: &str = "3f1d0c5e9a7b2468ace13579bdf02468ace13579bdf02468ace13579bdf02468";

/// The seed report of node `uuid`, announcing the hash of [`SECRET`].
fn report_with_secret(uuid: &str) -> String {
    report_announcing(uuid, SECRET)
}

/// The seed report of node `uuid`, announcing the hash of `secret`.
fn report_announcing(uuid: &str, secret: &str) -> String {
    let mut doc: Value = serde_json::from_str(SEED_5_0_9).expect("seed");
    doc["uuid"] = uuid.into();
    doc["deletion_secret_sha256"] = hex::encode(Sha256::digest(secret.as_bytes())).into();
    doc.to_string()
}

/// The body of a deletion request presenting `secret`.
fn presenting(secret: &str) -> String {
    format!("{{\"secret\": \"{secret}\"}}")
}

async fn delete(collector: &Running, uuid: &str, body: &str) -> (u16, Value) {
    let answer = collector
        .client
        .delete(collector.url(&format!("/api/telemetry/{uuid}")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("delete");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("body");
    // A 204 has no body; every refusal is JSON.
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body)
}

/// A collector with maintenance on `backend` that has stored the first report of node
/// `uuid`, announcing the hash of [`SECRET`].
async fn collector_with_node(backend: &support::Backend, uuid: &str) -> Running {
    let collector = Running::with_maintenance(backend.store.clone(), None).await;
    let status = collector.post_json(report_with_secret(uuid)).await.status();
    assert_eq!(status, 201, "{}", backend.name);
    collector
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_deletes_its_reports_with_its_secret() {
    for backend in backends().await {
        let name = backend.name;
        let collector = Running::with_maintenance(backend.store.clone(), None).await;
        let (uuid, other) = (
            "AAAA0001-0000-4000-8000-000000000001",
            "BBBB0002-0000-4000-8000-000000000002",
        );
        for node in [uuid, other] {
            let status = collector.post_json(report_with_secret(node)).await.status();
            assert_eq!(status, 201, "{name}");
        }

        let (status, body) = delete(&collector, uuid, r#"{"secret": "not-the-secret"}"#).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("WRONG_SECRET")),
            "{name}: {body}"
        );
        assert_eq!(
            backend.store.count().await.expect("count"),
            2,
            "{name}: nothing deleted"
        );

        let (status, body) = delete(&collector, uuid, "{\"nope\": 1}").await;
        assert_eq!(status, 400, "{name}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("secret"),
            "{name}: {body}"
        );

        let (status, _) = delete(&collector, uuid, &format!("{{\"secret\": \"{SECRET}\"}}")).await;
        assert_eq!(status, 204, "{name}");
        assert_eq!(
            backend.store.count().await.expect("count"),
            1,
            "{name}: only the other node is left"
        );
        let left = backend
            .store
            .list(support::today(), support::today())
            .await
            .expect("list");
        assert_eq!(left[0].uuid, other, "{name}");

        // Gone is gone: a second request is refused like a wrong secret (no oracle).
        let (status, body) = delete(&collector, uuid, &presenting(SECRET)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("WRONG_SECRET")),
            "{name}"
        );
        collector.stop().await;
    }
}

const FORGER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_with_a_forged_hash_is_refused_and_the_owner_still_deletes() {
    for backend in backends().await {
        let name = backend.name;
        let uuid = "DDDD0001-0000-4000-8000-000000000001";
        let collector = collector_with_node(&backend, uuid).await;
        let kept = collector.stored(uuid, support::today()).await;

        let forged = collector.post_json(report_announcing(uuid, FORGER)).await;
        let (status, body) = support::json_of(forged).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("DELETION_HASH_MISMATCH")),
            "{name}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("nothing was stored"),
            "{name}: {body}"
        );
        assert_eq!(
            collector.stored(uuid, support::today()).await,
            kept,
            "{name}: the owner's report is untouched"
        );
        let (status, _) = delete(&collector, uuid, &presenting(FORGER)).await;
        assert_eq!(status, 403, "{name}: the forger cannot delete");
        let (status, _) = delete(&collector, uuid, &presenting(SECRET)).await;
        assert_eq!(status, 204, "{name}: the owner still can");
        assert_eq!(backend.store.count().await.expect("count"), 0, "{name}");
        collector.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_uuid_and_a_wrong_secret_get_the_same_answer() {
    for backend in backends().await {
        let name = backend.name;
        let known = "EEEE0001-0000-4000-8000-000000000001";
        let collector = collector_with_node(&backend, known).await;
        let wrong = delete(&collector, known, &presenting(FORGER)).await;
        let unknown = delete(
            &collector,
            "EEEE0002-0000-4000-8000-000000000002",
            &presenting(SECRET),
        )
        .await;
        assert_eq!(wrong, unknown, "{name}: the answer tells nothing");
        assert_eq!(wrong.0, 403, "{name}");
        assert_eq!(backend.store.count().await.expect("count"), 1, "{name}");
        collector.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_request_over_its_size_limit_is_refused_as_too_large() {
    for backend in backends().await {
        let name = backend.name;
        let uuid = "DDDD0001-0000-4000-8000-000000000001";
        let collector = collector_with_node(&backend, uuid).await;
        let padded = format!(
            "{{\"secret\": \"{SECRET}\", \"pad\": \"{}\"}}",
            "x".repeat(5000)
        );
        let (status, body) = delete(&collector, uuid, &padded).await;
        assert_eq!(
            (status, &body["code"]),
            (413, &"BODY_TOO_LARGE".into()),
            "{name}: {body}"
        );
        assert_eq!(backend.store.count().await.expect("count"), 1, "{name}");
        collector.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_sent_a_hash_cannot_be_claimed() {
    for backend in backends().await {
        let name = backend.name;
        let collector = Running::with_maintenance(backend.store.clone(), None).await;
        let uuid = "FFFF0001-0000-4000-8000-000000000001";
        let first = collector.post_json(support::seed_with(uuid, 1)).await;
        assert_eq!(first.status(), 201, "{name}");
        // Stored, as any report of the node; its hash claims nothing.
        let claim = collector.post_json(report_announcing(uuid, FORGER)).await;
        assert_eq!(claim.status(), 200, "{name}");
        let (status, _) = delete(&collector, uuid, &presenting(FORGER)).await;
        assert_eq!(status, 403, "{name}: the claimer cannot delete");
        assert_eq!(backend.store.count().await.expect("count"), 1, "{name}");
        collector.stop().await;
    }
}

/// Active clusters summed over the weeks of `query`.
async fn cluster_weeks(backend: &support::Backend, query: &AnalyticsQuery) -> u64 {
    let weeks = backend.store.activity(query).await.expect("activity");
    weeks.iter().map(|w| w.clusters).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_raw_reports_at_start_and_keeps_the_counts() {
    for backend in backends().await {
        let name = backend.name;
        let today = Utc::now().date_naive();
        for (n, age) in [(1_u32, 0_u64), (2, 10), (3, 40)] {
            let day = today - Days::new(age);
            let raw = support::seed_with(&format!("CCCC000{n}-0000-4000-8000-00000000000{n}"), 1);
            let doc: Value = serde_json::from_str(&raw).expect("json");
            let report = NewReport {
                cluster_uuid: Some(format!("cluster-{n}")),
                received_at: day.and_hms_opt(12, 0, 0).unwrap().and_utc(),
                os_name: Some("macOS".into()),
                os_version: Some("12.5".into()),
                node_count: 1,
                analytics: beacon_report::facts::Facts::of(&doc),
                raw,
                ..sample_report(doc["uuid"].as_str().unwrap(), day)
            };
            backend.store.insert(report).await.expect("insert");
        }
        let year = AnalyticsQuery {
            from: today - Days::new(60),
            to: today,
            version: None,
            os: None,
        };
        let clusters_before = cluster_weeks(&backend, &year).await;

        let collector = Running::with_maintenance(backend.store.clone(), Some(30)).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while backend.store.count().await.expect("count") > 2
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let left: Vec<u64> = backend
            .store
            .list(today - Days::new(60), today)
            .await
            .expect("list")
            .iter()
            .map(|r| (today - r.day).num_days() as u64)
            .collect();
        assert_eq!(
            left,
            [10, 0],
            "{name}: only the report older than 30 days is gone"
        );
        let clusters_after = cluster_weeks(&backend, &year).await;
        assert_eq!(clusters_after, clusters_before, "{name}: the counts remain");
        collector.stop().await;
    }
}
