//! End-to-end tests of the ingest endpoint against a running collector on 127.0.0.1,
//! storage on SQLite files and on the PostgreSQL server at TEST_DATABASE_URL.

use crate::support;

use std::io::Write;

use beacon_report::fixtures::{EMQX_4_4, SEED_5_0_9};
use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::Value;
use support::{JSON, Running, backends, json_of, seed_with};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).expect("gzip in memory");
    enc.finish().expect("gzip in memory")
}

fn day_of(body: &Value) -> NaiveDate {
    body["day"]
        .as_str()
        .and_then(|day| day.parse().ok())
        .unwrap_or_else(|| panic!("answer has no day: {body}"))
}

#[tokio::test]
async fn seed_payload_is_stored_and_reads_back_identical() {
    for backend in backends().await {
        let collector = Running::start(backend.store.clone()).await;
        let (status, body) = json_of(collector.post_json(SEED_5_0_9).await).await;
        assert_eq!(status, 201, "{}: {body}", backend.name);
        assert_eq!(body["status"], "stored");
        let uuid = "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E";
        let row = collector
            .store
            .get(uuid, day_of(&body))
            .await
            .expect("read back")
            .unwrap_or_else(|| panic!("{}: report not stored", backend.name));
        let stored: Value = serde_json::from_str(&row.raw).expect("stored raw is JSON");
        let original: Value = serde_json::from_str(SEED_5_0_9).expect("seed is JSON");
        assert_eq!(stored, original, "{}: golden read-back", backend.name);
        assert_eq!(
            row.raw, SEED_5_0_9,
            "{}: raw text kept as received",
            backend.name
        );
        assert_eq!(row.emqx_version, "5.0.9");
        assert_eq!(
            row.cluster_uuid.as_deref(),
            Some("5EAAF818-6186-11ED-AC1D-3DFDC18ED1BB")
        );
        assert_eq!(row.os_name.as_deref(), Some("macOS"));
        assert_eq!(row.edition.as_deref(), Some("opensource"));
        assert_eq!(row.format, 5);
        collector.stop().await;
    }
}

#[tokio::test]
async fn emqx_4_payload_is_stored_without_the_5x_sections() {
    for backend in backends().await {
        let collector = Running::start(backend.store.clone()).await;
        let (status, body) = json_of(collector.post_json(EMQX_4_4).await).await;
        assert_eq!(status, 201, "{}: {body}", backend.name);
        let original: Value = serde_json::from_str(EMQX_4_4).expect("fixture is JSON");
        let uuid = original["uuid"].as_str().expect("fixture has a uuid");
        let row = collector.stored(uuid, day_of(&body)).await;
        let stored: Value = serde_json::from_str(&row.raw).expect("stored raw is JSON");
        assert_eq!(stored, original, "{}", backend.name);
        assert_eq!(row.format, 4);
        for section in [
            "mqtt_runtime_insights",
            "authn_authz",
            "bridge",
            "exhook",
            "cluster_uuid",
        ] {
            assert!(
                stored.get(section).is_none(),
                "{}: {section} should be absent",
                backend.name
            );
        }
        collector.stop().await;
    }
}

#[tokio::test]
async fn same_node_three_times_a_day_keeps_the_last_report() {
    for backend in backends().await {
        let collector = Running::start(backend.store.clone()).await;
        let uuid = "0D8E2A4C-1B3F-4E5A-9C7D-112233445566";
        let mut statuses = Vec::new();
        let mut day = None;
        for received in [10, 20, 30] {
            let (status, body) =
                json_of(collector.post_json(seed_with(uuid, received)).await).await;
            statuses.push(status);
            day = Some(day_of(&body));
        }
        assert_eq!(statuses, [201, 200, 200], "{}", backend.name);
        assert_eq!(
            collector.store.count().await.expect("count"),
            1,
            "{}",
            backend.name
        );
        let day = day.expect("three answers");
        let row = collector.stored(uuid, day).await;
        let stored: Value = serde_json::from_str(&row.raw).expect("JSON");
        assert_eq!(stored["messages_received"], 30, "{}", backend.name);
        collector.stop().await;
    }
}

#[tokio::test]
async fn gzip_body_is_accepted() {
    let (_backend, collector) = Running::on_sqlite().await;
    let uuid = "7A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D";
    let response = collector
        .client
        .post(collector.url("/api/telemetry"))
        .header("content-type", "application/json; charset=utf-8")
        .header("content-encoding", "gzip")
        .body(gzip(seed_with(uuid, 7).as_bytes()))
        .send()
        .await
        .expect("post");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 201, "{body}");
    let row = collector.stored(uuid, day_of(&body)).await;
    assert_eq!(row.raw, seed_with(uuid, 7));
    collector.stop().await;
}

/// A bad request, what must come back, and words the message must contain.
struct Bad {
    name: &'static str,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    mentions: &'static [&'static str],
}

fn bad(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    mentions: &'static [&'static str],
) -> Bad {
    Bad {
        name,
        content_type: JSON,
        encoding: None,
        body: body.into(),
        status,
        mentions,
    }
}

fn seed_edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut doc: Value = serde_json::from_str(SEED_5_0_9).expect("seed is JSON");
    edit(&mut doc);
    doc.to_string().into_bytes()
}

fn bad_inputs() -> Vec<Bad> {
    let mut huge = seed_edited(|_| ());
    let padding = format!(",\"padding\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    huge.truncate(huge.len() - 1);
    huge.extend_from_slice(padding.as_bytes());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_in_object = format!("{{\"uuid\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let mut corrupt_gzip = gzip(SEED_5_0_9.as_bytes());
    let mid = corrupt_gzip.len() / 2;
    corrupt_gzip[mid..].fill(0xa5);
    let mut trailing_garbage = gzip(SEED_5_0_9.as_bytes());
    trailing_garbage.extend_from_slice(b"garbage");
    let mut two_members = gzip(SEED_5_0_9.as_bytes());
    two_members.extend_from_slice(&gzip(b" "));
    let bomb = gzip(&vec![0u8; 10 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024, "the bomb must pass the wire limit");
    let mut not_utf8 = SEED_5_0_9.as_bytes().to_vec();
    let at = SEED_5_0_9.find("macOS").expect("seed names macOS");
    not_utf8[at] = 0xff;
    vec![
        bad(
            "truncated JSON",
            &SEED_5_0_9.as_bytes()[..SEED_5_0_9.len() / 2],
            400,
            &["malformed JSON", "line"],
        ),
        bad("array instead of object", "[1, 2, 3]", 400, &["object"]),
        bad(
            "uuid missing",
            seed_edited(|d| {
                d.as_object_mut().map(|o| o.remove("uuid"));
            }),
            400,
            &["uuid"],
        ),
        bad(
            "uuid malformed",
            seed_edited(|d| d["uuid"] = "not-a-uuid".into()),
            400,
            &["uuid"],
        ),
        bad(
            "negative counter",
            seed_edited(|d| d["num_clients"] = (-5).into()),
            400,
            &["num_clients"],
        ),
        bad(
            "counter as string",
            seed_edited(|d| d["num_clients"] = "12".into()),
            400,
            &["num_clients"],
        ),
        bad("10 MB string", huge, 413, &["65536"]),
        bad("nested 10,000 deep", deep, 400, &["deeper"]),
        bad(
            "nested 10,000 deep in a field",
            deep_in_object,
            400,
            &["deeper"],
        ),
        bad("non-UTF-8 bytes", not_utf8, 400, &["UTF-8"]),
        Bad {
            encoding: Some("gzip"),
            ..bad("corrupt gzip", corrupt_gzip, 400, &["gzip"])
        },
        Bad {
            encoding: Some("gzip"),
            ..bad(
                "gzip with trailing garbage",
                trailing_garbage,
                400,
                &["gzip", "7 bytes after"],
            )
        },
        Bad {
            encoding: Some("gzip"),
            ..bad("two gzip members", two_members, 400, &["one gzip member"])
        },
        Bad {
            encoding: Some("gzip"),
            ..bad("gzip bomb", bomb, 413, &["gunzip", "524288"])
        },
        Bad {
            encoding: Some("br"),
            ..bad("unknown encoding", SEED_5_0_9, 415, &["br"])
        },
        Bad {
            content_type: "text/plain",
            ..bad("wrong content type", SEED_5_0_9, 415, &["text/plain"])
        },
        Bad {
            content_type: "application/x-www-form-urlencoded",
            ..bad("form", "uuid=x", 415, &["application/json"])
        },
    ]
}

#[tokio::test]
async fn bad_inputs_are_refused_with_a_named_problem() {
    let (_backend, collector) = Running::on_sqlite().await;
    for case in bad_inputs() {
        let mut request = collector
            .client
            .post(collector.url("/api/telemetry"))
            .header("content-type", case.content_type)
            .body(case.body);
        if let Some(encoding) = case.encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", case.name));
        let (status, body) = json_of(response).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        let code = body["code"].as_str().unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && !message.is_empty(),
            "{}: {body}",
            case.name
        );
        for word in case.mentions {
            assert!(
                message.contains(word),
                "{}: message {message:?} lacks {word:?}",
                case.name
            );
        }
    }
    assert_eq!(
        collector.store.count().await.expect("count"),
        0,
        "nothing bad was stored"
    );
    collector.stop().await;
}

#[tokio::test]
async fn wrong_method_and_unknown_path_answer_json() {
    let (_backend, collector) = Running::on_sqlite().await;
    let response = collector.get("/api/telemetry").await;
    let allow = response
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let (status, body) = json_of(response).await;
    assert_eq!(status, 405);
    assert_eq!(allow.as_deref(), Some("POST"));
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    assert!(
        body["message"].as_str().unwrap_or_default().contains("GET"),
        "{body}"
    );

    let response = collector.get("/api/nothing").await;
    let (status, body) = json_of(response).await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/api/nothing"),
        "{body}"
    );
    collector.stop().await;
}

#[tokio::test]
async fn health_names_the_backend() {
    for backend in backends().await {
        let name = backend.name;
        let collector = Running::start(backend.store.clone()).await;
        let response = collector.get("/healthz").await;
        let (status, body) = json_of(response).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["backend"], name);
        collector.stop().await;
    }
}

#[tokio::test]
async fn settle_answers_once_the_acknowledged_reports_are_counted() {
    for backend in backends().await {
        let name = backend.name;
        let collector = Running::start(backend.store.clone()).await;
        assert_eq!(collector.post_json(SEED_5_0_9).await.status(), 201);
        assert_eq!(collector.post_json(EMQX_4_4).await.status(), 201);
        let response = collector
            .client
            .post(collector.url("/settle"))
            .send()
            .await
            .expect("post /settle");
        let (status, body) = json_of(response).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["status"], "settled", "{name}");
        assert_eq!(body["committed"], 2, "{name}");
        assert_eq!(collector.get("/settle").await.status(), 405, "{name}");
        collector.stop().await;
    }
}

#[tokio::test]
async fn metrics_count_accepted_and_rejected_reports() {
    let (_backend, collector) = Running::on_sqlite().await;
    assert_eq!(collector.post_json(SEED_5_0_9).await.status(), 201);
    assert_eq!(collector.post_json(EMQX_4_4).await.status(), 201);
    assert_eq!(collector.post_json("{").await.status(), 400);
    assert_eq!(collector.post("text/plain", "{}").await.status(), 415);
    let text = collector.metrics().await;
    for line in [
        "beacon_collector_reports_accepted_total{format=\"v5\"} 1",
        "beacon_collector_reports_accepted_total{format=\"v4\"} 1",
        "beacon_collector_reports_rejected_total{reason=\"UNSUPPORTED_MEDIA_TYPE\"} 1",
        "beacon_collector_request_duration_seconds_count{route=\"/api/telemetry\"} 4",
        "beacon_collector_store_commit_duration_seconds_count 2",
        "beacon_store_rows_total 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "metrics lack {line:?}:\n{text}"
        );
    }
    assert!(text.contains("beacon_store_batches_total"), "{text}");
    assert!(
        text.contains("beacon_collector_reports_rejected_total{reason="),
        "{text}"
    );
    collector.stop().await;
}

#[tokio::test]
async fn identifying_values_are_redacted_before_storage() {
    let (_backend, collector) = Running::on_sqlite().await;
    let uuid = "3C4D5E6F-7A8B-4C9D-8E0F-A1B2C3D4E5F6";
    let mut doc: Value = serde_json::from_str(&seed_with(uuid, 1)).expect("JSON");
    doc["os_version"] = "12.5 on 10.1.2.3".into();
    doc["operator_contact"] = "ops@example.com".into();
    let (status, body) = json_of(collector.post_json(doc.to_string()).await).await;
    assert_eq!(status, 201, "{body}");
    let row = collector.stored(uuid, day_of(&body)).await;
    assert!(
        !row.raw.contains("10.1.2.3") && !row.raw.contains("ops@example.com"),
        "{}",
        row.raw
    );
    let stored: Value = serde_json::from_str(&row.raw).expect("JSON");
    assert_eq!(stored["os_version"], beacon_report::privacy::REDACTED);
    assert_eq!(
        row.os_version.as_deref(),
        Some(beacon_report::privacy::REDACTED)
    );
    assert_eq!(
        stored["num_clients"], doc["num_clients"],
        "the rest is kept"
    );
    let text = collector.metrics().await;
    assert!(
        text.contains("beacon_collector_redacted_identifiers_total 2"),
        "{text}"
    );
    collector.stop().await;
}
