//! Off means off: no DNS lookup, no connection, no report, from the moment of the switch.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use beacon_agent::AgentHandle;

use crate::support::{
    CountingListener, FakeCollector, RecordingResolver, Reply, fast, start_with_resolver,
    started_and_reported, wait_until,
};
use crate::switches::{all_cases, expected, node_for};

const CYCLES: usize = 3;

/// Every disabled combination of sources runs with a 1 s schedule while an enabled
/// control agent, set up the same way, completes several cycles: the control proves the
/// resolver and listener see traffic, the disabled agents must cause none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_agents_resolve_nothing_and_connect_nowhere() {
    let listener = CountingListener::bind().await;
    let resolver = RecordingResolver::new(listener.addr);
    let url = format!("http://localhost:{}/api/telemetry", listener.addr.port());
    let mut nodes = Vec::new();
    let mut agents: Vec<AgentHandle> = Vec::new();
    for case in all_cases() {
        let node = node_for(case).await;
        if expected(case, &node.conf()).0 {
            continue;
        }
        let block = format!("url = \"{url}\"\ninterval = 1s\ninitial_delay = 0s");
        agents.push(start_with_resolver(
            node.settings(&block),
            &node.data(),
            &resolver,
        ));
        nodes.push(node);
    }
    assert_eq!(agents.len(), 46, "54 combinations, 8 of them enabled");
    assert!(agents.iter().all(|a| !a.status().enable));

    let control_collector = FakeCollector::start(&[], Reply::ACCEPT).await;
    let control_resolver = RecordingResolver::new(control_collector.addr);
    let control_dir = tempfile::tempdir().expect("tempdir");
    let control_url = format!(
        "http://localhost:{}/api/telemetry",
        control_collector.addr.port()
    );
    let control = start_with_resolver(
        crate::support::settings(
            &format!("url = \"{control_url}\"\ninterval = 1s\ninitial_delay = 0s"),
            &[],
        ),
        control_dir.path(),
        &control_resolver,
    );
    wait_until("the control agent completed several cycles", || {
        control_collector.count() >= CYCLES
    })
    .await;
    assert!(control_resolver.names().iter().all(|n| n == "localhost"));
    assert!(control_resolver.names().len() >= CYCLES);

    assert_eq!(
        resolver.names(),
        Vec::<String>::new(),
        "no DNS lookup while off"
    );
    assert_eq!(listener.accepts(), 0, "no connection while off");
    for agent in agents {
        assert!(agent.sent_log().is_empty());
        agent.shutdown().await;
    }
    control.shutdown().await;
    for node in nodes {
        assert!(!node.data().join("telemetry/sent.jsonl").exists());
    }
}

/// Switching off drops the send in progress (its connection is closed) and stops the
/// timer; switching on again resumes from the persisted last report.
#[tokio::test]
async fn switching_off_cancels_the_send_in_flight_and_stops_the_timer() {
    let mut listener = CountingListener::bind().await;
    let resolver = RecordingResolver::new(listener.addr);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://localhost:{}/api/telemetry", listener.addr.port());
    // A request timeout far beyond the test's patience: only the switch can end the send.
    let mut settings = fast(&url, "1s");
    settings.timeout = Duration::from_secs(3600);
    let agent = start_with_resolver(settings, dir.path(), &resolver);
    let mut in_flight = listener.next_connection().await;

    let status = agent.set_enabled(false).await.expect("off");
    assert!(!status.enable);
    assert_eq!(status.next_report_at, None);
    let mut buf = [0u8; 4096];
    // Reading drains the request already written; then the agent's side must close.
    let closed = tokio::time::timeout(crate::support::PATIENCE, async {
        while let Ok(n) = in_flight.read(&mut buf).await
            && n > 0
        {}
    })
    .await;
    assert!(closed.is_ok(), "the in-flight connection was closed");

    let names_when_off = resolver.names().len();
    let accepts_when_off = listener.accepts();
    // Several 1 s cycles would have passed: nothing may happen while off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(resolver.names().len(), names_when_off);
    assert_eq!(listener.accepts(), accepts_when_off);
    agent.shutdown().await;
}

#[tokio::test]
async fn re_enabling_resumes_from_the_last_report() {
    let collector = FakeCollector::start(&[], Reply::ACCEPT).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (agent, last) = started_and_reported(&collector.url(), "1h", dir.path()).await;
    agent.set_enabled(false).await.expect("off");
    let status = agent.set_enabled(true).await.expect("on");
    let next = status.next_report_at.expect("scheduled again");
    assert!(
        next >= last + chrono::TimeDelta::hours(1),
        "{next} vs {last}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(collector.count(), 1);
    agent.shutdown().await;
}
