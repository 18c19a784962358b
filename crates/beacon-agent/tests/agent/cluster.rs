//! What the broker node carries between the nodes of a cluster, as the agent keeps it: a
//! later runtime switch made on another node (an off stops sending at once; a boot-time
//! off is kept), and the cluster's id in place of the node's own.

use std::time::Duration;

use beacon_agent::{RuntimeSwitch, SwitchError, SwitchSource};

use crate::support::{
    CountingListener, RecordingResolver, fast, settings, start, start_with_resolver,
};
use crate::switches::quiet;

/// A change made on another node, `version` changes after the first.
fn from_peer(enable: bool, version: u64) -> RuntimeSwitch {
    RuntimeSwitch {
        enable,
        version,
        at: chrono::Utc::now(),
        origin: "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_switch_off_from_the_cluster_stops_sending_and_persists() {
    let mut listener = CountingListener::bind().await;
    let resolver = RecordingResolver::new(listener.addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://localhost:{}/api/telemetry", listener.addr.port());
    let mut settings = fast(&url, "1s");
    settings.timeout = Duration::from_secs(3600);
    let agent = start_with_resolver(settings, dir.path(), &resolver);
    let _in_flight = listener.next_connection().await;

    let off = from_peer(false, 1);
    assert!(agent.adopt_switch(off.clone()).await.expect("adopted"));
    let status = agent.status();
    assert_eq!(
        (status.enable, status.source),
        (false, SwitchSource::Runtime)
    );
    let (names, accepts) = (resolver.names().len(), listener.accepts());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        resolver.names().len(),
        names,
        "no lookup after the peer's off"
    );
    assert_eq!(
        listener.accepts(),
        accepts,
        "no connection after the peer's off"
    );

    assert!(
        !agent.adopt_switch(off.clone()).await.expect("same"),
        "the same change again"
    );
    let older_on = RuntimeSwitch {
        at: off.at + chrono::TimeDelta::hours(1),
        ..from_peer(true, 0)
    };
    assert!(
        !agent.adopt_switch(older_on).await.expect("older"),
        "an older version"
    );
    assert_eq!(agent.runtime_switch(), Some(off.clone()));
    agent.shutdown().await;

    let agent = start(quiet(), dir.path());
    assert_eq!(
        agent.runtime_switch(),
        Some(off),
        "persisted with its version"
    );
    assert!(!agent.status().enable);
    let on = agent.set_enabled(true).await.expect("on here");
    assert!(on.enable);
    let mine = agent.runtime_switch().expect("set");
    assert_eq!(
        (mine.version, mine.origin),
        (2, agent.uuid()),
        "a change after the peer's"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn a_boot_time_off_keeps_the_node_off_but_records_the_clusters_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env_off = settings(
        "url = \"http://127.0.0.1:9/api/telemetry\"\ninitial_delay = 1h",
        &[("EMQX_TELEMETRY__ENABLE", "false")],
    );
    let agent = start(env_off, dir.path());
    assert!(
        agent
            .adopt_switch(from_peer(true, 1))
            .await
            .expect("recorded")
    );
    let status = agent.status();
    assert!(!status.enable);
    assert_eq!(
        status.source.to_string(),
        "environment EMQX_TELEMETRY__ENABLE"
    );
    assert_eq!(status.next_report_at, None);
    assert_eq!(agent.runtime_switch().map(|s| s.enable), Some(true));

    // Off from this node is a change for the cluster, though this node was off already.
    agent
        .set_enabled(false)
        .await
        .expect("the cluster's switch goes off");
    assert_eq!(
        agent.runtime_switch().map(|s| (s.enable, s.version)),
        Some((false, 2))
    );
    let again = agent.set_enabled(false).await.expect_err("already");
    assert!(
        matches!(again, SwitchError::AlreadyInState { enabled: false }),
        "{again:?}"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn the_clusters_id_replaces_the_nodes_own_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(quiet(), dir.path());
    let (uuid, own) = (agent.uuid(), agent.cluster_uuid());
    let clusters = "5EAAF818-6186-11ED-AC1D-3DFDC18ED1BB";
    assert_ne!(own, clusters);
    assert!(agent.adopt_cluster_uuid(clusters).expect("adopted"));
    assert!(
        !agent.adopt_cluster_uuid(clusters).expect("same"),
        "no change"
    );
    let report = agent.preview();
    assert_eq!(report.uuid, uuid);
    assert_eq!(report.cluster_uuid.as_deref(), Some(clusters));
    let refused = agent
        .adopt_cluster_uuid("not-an-id")
        .expect_err("not an id");
    assert!(refused.to_string().contains("not-an-id"), "{refused}");
    assert_eq!(agent.cluster_uuid(), clusters);
    agent.shutdown().await;

    let on_disk = std::fs::read_to_string(dir.path().join("cluster.uuid")).expect("file");
    assert_eq!(on_disk.trim(), clusters);
    let agent = start(quiet(), dir.path());
    assert_eq!(
        (agent.uuid(), agent.cluster_uuid()),
        (uuid, clusters.to_owned())
    );
    agent.shutdown().await;
}
