//! Air-gapped sites: a node with telemetry off exports its report to a file without
//! touching the network, the file is uploaded from elsewhere to a real collector over
//! verified TLS, a tampered file is refused before any connection, and the collector
//! imports an NDJSON bundle through its ingest path.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use beacon_collector::{Collector, CollectorConfig, RateLimit, TlsFiles};
use beacon_store::testing::TestDb;
use serde_json::Value;
use support::{
    START_TIMEOUT, beacon, beacon_node, counting_listener, lines_until, spawn_reading, terminate,
    text,
};

use crate::support;

/// Where the node's `telemetry.url` points: a listener that counts connections.
async fn counting_collector() -> (String, Arc<AtomicUsize>) {
    let (addr, accepted) = counting_listener().await;
    (format!("http://{addr}/api/telemetry"), accepted)
}

/// `beacon telemetry ARGS` for the node of `data_dir`, configured by the environment.
async fn telemetry(args: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> Output {
    beacon_node(&["telemetry"])
        .args(args)
        .arg("--config")
        .arg("/dev/null")
        .arg("--data-dir")
        .arg(data_dir)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run beacon telemetry")
}

/// A test CA, and a collector certificate it signed for 127.0.0.1: (CA file, TLS files).
fn test_ca(dir: &Path) -> (PathBuf, TlsFiles) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(params, ca_key);
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("server cert");
    let files = TlsFiles {
        cert: dir.join("collector.crt"),
        key: dir.join("collector.key"),
    };
    std::fs::write(&files.cert, cert.pem()).expect("write cert");
    std::fs::write(&files.key, key.serialize_pem()).expect("write key");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("write ca");
    (ca_file, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_with_telemetry_off_then_upload_over_verified_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");
    let (node_url, accepted) = counting_collector().await;
    let node_env = [
        ("EMQX_TELEMETRY__ENABLE", "false"),
        ("EMQX_TELEMETRY__URL", node_url.as_str()),
        ("EMQX_TELEMETRY__INITIAL_DELAY", "0s"),
    ];
    let mut broker_cmd = beacon_node(&["broker", "--config", "/dev/null"]);
    broker_cmd
        .arg("--data-dir")
        .arg(&data_dir)
        .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
        .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0")
        .envs(node_env);
    let (mut broker, mut lines) = spawn_reading(&mut broker_cmd);
    lines_until(&mut lines, "dashboard on", START_TIMEOUT).await;

    let file = dir.path().join("report.json");
    let file_arg = file.to_str().expect("utf-8 path");
    let exported = telemetry(&["export", "--output", file_arg], &data_dir, &node_env).await;
    assert!(exported.status.success(), "{}", text(&exported));
    assert!(text(&exported).contains(file_arg), "{}", text(&exported));
    let bytes = std::fs::read(&file).expect("the exported file");
    let parsed = beacon_report::parse(&bytes).expect("the file is a valid report");
    let uuid = std::fs::read_to_string(data_dir.join("node.uuid")).expect("node.uuid");
    assert_eq!(parsed.report.uuid, uuid.trim());
    let again = telemetry(&["export", "--output", file_arg], &data_dir, &node_env).await;
    assert!(
        !again.status.success() && text(&again).contains("--force"),
        "{}",
        text(&again)
    );
    assert_eq!(terminate(&mut broker).await.code(), Some(0));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "connections to telemetry.url"
    );

    // Another machine, with a route to a collector serving HTTPS under a test CA.
    let (ca_file, tls) = test_ca(dir.path());
    let db = TestDb::sqlite();
    let store = beacon_store::open_store(db.url()).await.expect("store");
    let mut config = CollectorConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.rate_limit = RateLimit::disabled();
    config.tls = Some(tls);
    let bound = Collector::bind_store(config, Arc::clone(&store))
        .await
        .expect("bind");
    let collector = format!("{}/api/telemetry", bound.url());
    assert!(collector.starts_with("https://"), "{collector}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    let elsewhere = dir.path().join("elsewhere");
    let upload = ["upload", file_arg, "--url", collector.as_str()];

    let unverified = telemetry(&upload, &elsewhere, &[]).await;
    assert!(!unverified.status.success(), "{}", text(&unverified));
    assert_eq!(store.count().await.expect("count"), 0, "no CA, no upload");

    let ca_env = [("EMQX_TELEMETRY__CA_FILE", ca_file.to_str().expect("utf-8"))];
    let uploaded = telemetry(&upload, &elsewhere, &ca_env).await;
    assert!(uploaded.status.success(), "{}", text(&uploaded));
    assert_eq!(store.count().await.expect("count"), 1, "stored");

    // A tampered file is refused with the field named, before any connection.
    let mut doc: Value = serde_json::from_slice(&bytes).expect("json");
    doc["uuid"] = Value::from("not a uuid");
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, doc.to_string()).expect("write");
    let tampered_arg = tampered.to_str().expect("utf-8");
    let refused = telemetry(
        &["upload", tampered_arg, "--url", &node_url],
        &elsewhere,
        &[],
    )
    .await;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("`uuid`"), "{}", text(&refused));
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "connections for a bad file"
    );

    let _ = stop.send(());
    serving.await.expect("join").expect("collector ran");
}

/// The seed fixture as one NDJSON line, under `uuid`.
fn report_line(uuid: &str) -> String {
    let mut doc: Value =
        serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("fixture");
    doc["uuid"] = Value::from(uuid);
    doc.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_import_stores_the_good_reports_and_names_the_bad_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::sqlite();
    let (one, two) = (
        uuid::Uuid::new_v4().to_string().to_uppercase(),
        uuid::Uuid::new_v4().to_string().to_uppercase(),
    );
    let lines = [
        report_line(&one),
        "{\"uuid\": 5".to_owned(),
        report_line(&two),
        String::new(),
        report_line(&one),
        report_line("not a uuid"),
    ];
    let bundle = dir.path().join("bundle.ndjson.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines.join("\n").as_bytes()).expect("gzip");
    std::fs::write(&bundle, gz.finish().expect("gzip")).expect("write");

    let output = beacon(&["collector", "import", "--db", db.url()])
        .arg(&bundle)
        .output()
        .await
        .expect("run import");
    let shown = text(&output);
    assert!(!output.status.success(), "some were refused: {shown}");
    assert!(
        shown.contains("imported 3 reports (2 stored, 1 replaced"),
        "{shown}"
    );
    assert!(shown.contains("2 refused"), "{shown}");
    let bundle_name = bundle.display().to_string();
    assert!(shown.contains(&format!("{bundle_name}:2: ")), "{shown}");
    assert!(
        shown.contains(&format!("{bundle_name}:6: field `uuid`")),
        "{shown}"
    );

    let store = beacon_store::open_store(db.url()).await.expect("store");
    assert_eq!(
        store.count().await.expect("count"),
        2,
        "one row per node and day"
    );
}
