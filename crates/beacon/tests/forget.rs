//! Self-service deletion end to end: a broker reports to a real collector, is stopped,
//! and `beacon telemetry forget` has the collector delete its reports; the node starts
//! over with a new uuid.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use beacon_collector::{Collector, CollectorConfig, RateLimit};
use beacon_store::Store;
use beacon_store::testing::TestDb;
use support::{beacon_node, terminate};

mod support;

/// `beacon ARGS` with the node's config given by the environment, as an operator would.
fn beacon(args: &[&str], data_dir: &Path, collector: &str) -> tokio::process::Command {
    let mut command = beacon_node(args);
    command
        .arg("--config")
        .arg("/dev/null")
        .arg("--data-dir")
        .arg(data_dir)
        .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
        .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0")
        .env("EMQX_TELEMETRY__URL", format!("{collector}/api/telemetry"))
        .env("EMQX_TELEMETRY__INITIAL_DELAY", "0s");
    command
}

async fn count(store: &Arc<dyn Store>) -> u64 {
    store.count().await.expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_forget_deletes_the_nodes_reports_at_the_collector() {
    let db = TestDb::sqlite();
    let store = beacon_store::open_store(db.url()).await.expect("store");
    let mut config = CollectorConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.rate_limit = RateLimit::disabled();
    let bound = Collector::bind_store(config, Arc::clone(&store))
        .await
        .expect("bind");
    let collector = bound.url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");

    let mut broker = beacon(&["broker"], &data_dir, &collector)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the broker");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(&store).await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&store).await, 1, "the broker reported once");
    terminate(&mut broker).await;
    let old_uuid = std::fs::read_to_string(data_dir.join("node.uuid")).expect("node.uuid");

    // A secret that is not the one the reports announced is refused; nothing changes.
    let secret_file = data_dir.join("telemetry/deletion.secret");
    let secret = std::fs::read_to_string(&secret_file).expect("secret");
    std::fs::write(&secret_file, "0".repeat(64)).expect("write");
    let Output { status, stderr, .. } = beacon(&["telemetry", "forget"], &data_dir, &collector)
        .output()
        .await
        .expect("forget");
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(!status.success() && stderr.contains("403"), "{stderr}");
    assert_eq!(count(&store).await, 1);
    std::fs::write(&secret_file, secret).expect("restore");

    let Output {
        status,
        stdout,
        stderr,
    } = beacon(&["telemetry", "forget"], &data_dir, &collector)
        .output()
        .await
        .expect("forget");
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(stdout.contains("deleted this node's reports"), "{stdout}");
    assert_eq!(count(&store).await, 0, "the node's reports are gone");
    let new_uuid = std::fs::read_to_string(data_dir.join("node.uuid")).expect("node.uuid");
    assert_ne!(new_uuid, old_uuid, "the node starts over with a new uuid");
    assert!(stdout.contains(new_uuid.trim()), "{stdout}");

    let _ = stop.send(());
    serving.await.expect("join").expect("collector ran");
}
