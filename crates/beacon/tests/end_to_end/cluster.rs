//! Three `beacon broker` processes as one cluster (static seeds, rmqtt's raft engine), as an
//! operator runs them: one config file and data directory each, loopback ports (the
//! cluster's drawn below the ephemeral range, see `tests/ports.rs`).
//! Real MQTT clients, the REST API over HTTP, SIGKILL and restarts; collectors are
//! listeners that count the connections each node opens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use support::{
    START_TIMEOUT, beacon_node, counting_listener, lines_until, spawn_reading, terminate,
};
use tokio::io::{BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tokio::sync::mpsc;

use crate::support;

#[path = "../../../../tests/ports.rs"]
mod ports;
use ports::cluster_ports;

const PASSWORD: &str = "cluster-test-password";
/// Longest wait for anything the cluster converges to (forming, adopting, rejoining).
const CONVERGE: Duration = Duration::from_secs(60);
/// The bound within which a killed node leaves its peers' `nodes_uuid`: Beacon's 10 s
/// without an answer, plus a poll, plus slack for this small shared machine (the issue
/// allows 30 s).
const DROP_BOUND: Duration = Duration::from_secs(20);
const ENV_OFF: &str = "EMQX_TELEMETRY__ENABLE";

/// One node's files: its config file and data directory, kept across restarts.
struct Setup {
    name: String,
    config: PathBuf,
    data: PathBuf,
}

impl Setup {
    fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        Self {
            name: format!("{name}@127.0.0.1"),
            config: dir.join("emqx.conf"),
            data: dir.join("data"),
        }
    }

    /// Writes the config: `cluster` (the seeds, or nothing to run alone) and `telemetry`.
    fn write(&self, cluster: &str, telemetry: &str) {
        let text = format!(
            "node.name = \"{}\"\n{cluster}\n{telemetry}\n\
             listeners.tcp.default.bind = \"127.0.0.1:0\"\n\
             dashboard.listeners.http.bind = \"127.0.0.1:0\"\n\
             dashboard.default_password = \"{PASSWORD}\"\n",
            self.name
        );
        std::fs::write(&self.config, text).expect("write the config");
    }

    /// Starts `beacon broker` on this node's files, with `env` added, and signs in.
    async fn start(&self, env: &[(&str, &str)]) -> Running {
        self.spawn(env).ready().await
    }

    /// Starts the process; [`Starting::ready`] waits for it.
    fn spawn(&self, env: &[(&str, &str)]) -> Starting {
        let mut command = beacon_node(&["broker"]);
        command
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.data)
            .envs(env.iter().copied());
        let (child, lines) = spawn_reading(&mut command);
        Starting {
            name: self.name.clone(),
            child,
            lines,
        }
    }
}

/// A `beacon broker` process that has not said where it listens yet.
struct Starting {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Starting {
    /// Reads where the node listens, and signs in as its admin.
    async fn ready(self) -> Running {
        let Starting {
            name,
            child,
            mut lines,
        } = self;
        let printed = lines_until(&mut lines, "dashboard on http://", START_TIMEOUT).await;
        let after = |prefix: &str| {
            printed
                .iter()
                .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest.trim().to_owned()))
                .unwrap_or_else(|| panic!("no {prefix:?} in {printed:?}"))
        };
        let mqtt = after("MQTT listening on ").parse().expect("MQTT address");
        let base = format!("http://{}", after("dashboard on http://"));
        let http = Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let login = http
            .post(format!("{base}/api/v5/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), StatusCode::OK, "{name} signs in");
        let token = login.json::<Value>().await.expect("json")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        Running {
            name,
            child,
            _lines: lines,
            mqtt,
            base,
            http,
            token,
        }
    }
}

/// A running `beacon broker`, signed in as its admin.
struct Running {
    name: String,
    child: Child,
    _lines: Lines<BufReader<ChildStdout>>,
    mqtt: SocketAddr,
    base: String,
    http: Client,
    token: String,
}

impl Running {
    async fn get(&self, path: &str) -> Value {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.name));
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "GET {path} on {}",
            self.name
        );
        answer.json().await.expect("json")
    }

    /// The report this node would send now.
    async fn report(&self) -> Value {
        self.get("/api/v5/telemetry/data").await
    }

    async fn status(&self) -> Value {
        self.get("/api/v5/telemetry/status").await
    }

    async fn switch(&self, enable: bool) -> Value {
        let answer = self
            .http
            .put(format!("{}/api/v5/telemetry/status", self.base))
            .bearer_auth(&self.token)
            .json(&json!({ "enable": enable }))
            .send()
            .await
            .expect("PUT status");
        let code = answer.status();
        let body: Value = answer.json().await.expect("json");
        assert_eq!(
            code,
            StatusCode::OK,
            "switching {enable} on {}: {body}",
            self.name
        );
        body
    }

    /// GETs `path` until `done` holds, failing after `within` with the last answer.
    async fn until(&self, path: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let body = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not get there within {within:?}; GET {path}: {body}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaped");
    }

    async fn stop(&mut self) {
        let exit = terminate(&mut self.child).await;
        assert!(exit.success(), "{} after SIGTERM: {exit}", self.name);
    }
}

/// The `cluster` block of three nodes b1..b3 on `ports`.
fn seeds(ports: &[u16]) -> String {
    let seeds: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("\"b{}@127.0.0.1:{port}\"", i + 1))
        .collect();
    format!(
        "cluster.discovery_strategy = static\ncluster.static.seeds = [{}]",
        seeds.join(", ")
    )
}

/// Starts the nodes together, as an operator starts a cluster, each with its `env`.
async fn start_all(setups: &[&Setup], env: &[&[(&str, &str)]]) -> Vec<Running> {
    let starting: Vec<Starting> = setups.iter().zip(env).map(|(s, e)| s.spawn(e)).collect();
    let mut running = Vec::new();
    for node in starting {
        running.push(node.ready().await);
    }
    running
}

/// Telemetry that sends nothing during a test.
const QUIET: &str = "telemetry.url = \"http://127.0.0.1:9/api/telemetry\"\n\
                     telemetry.initial_delay = 1h";

/// Telemetry reporting at once and every 2 s to `collector`.
fn eager(collector: SocketAddr) -> String {
    format!(
        "telemetry.url = \"http://{collector}/api/telemetry\"\n\
         telemetry.initial_delay = 0s\n\
         telemetry.interval = 2s\n\
         telemetry.timeout = 1s"
    )
}

/// Waits until every node lists exactly the others' uuids and all share one
/// `cluster_uuid`; returns each node's report.
async fn formed(nodes: &[&Running]) -> Vec<Value> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let mut reports = Vec::new();
        for node in nodes {
            reports.push(node.report().await);
        }
        let uuids: Vec<&str> = reports
            .iter()
            .map(|r| r["uuid"].as_str().expect("uuid"))
            .collect();
        let others_listed = reports.iter().enumerate().all(|(i, r)| {
            let mut others: Vec<&str> = uuids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, u)| *u)
                .collect();
            others.sort_unstable();
            r["nodes_uuid"] == json!(others)
        });
        let one_id = reports
            .iter()
            .all(|r| r["cluster_uuid"] == reports[0]["cluster_uuid"]);
        if others_listed && one_id {
            return reports;
        }
        assert!(
            Instant::now() < deadline,
            "no cluster of {} within {CONVERGE:?}: {reports:#?}",
            nodes.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An MQTT client whose received PUBLISH payloads arrive on a channel.
async fn subscriber(addr: SocketAddr, id: &str, filter: &str) -> mpsc::UnboundedReceiver<String> {
    let (client, mut events) = mqtt_client(addr, id);
    client
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe queued");
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client;
        let mut subscribed_tx = Some(subscribed_tx);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p))
                    if tx
                        .send(String::from_utf8_lossy(&p.payload).into_owned())
                        .is_err() =>
                {
                    return;
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(CONVERGE, subscribed)
        .await
        .expect("SUBACK in time")
        .expect("subscriber alive");
    rx
}

fn mqtt_client(addr: SocketAddr, id: &str) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 16)
}

/// Publishes on `addr` every 300 ms until `received` gets a payload of this round: the
/// subscription's route may take a moment to reach the publisher's node.
async fn delivered_across(
    addr: SocketAddr,
    id: &str,
    topic: &str,
    received: &mut mpsc::UnboundedReceiver<String>,
) {
    let (client, mut events) = mqtt_client(addr, id);
    let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let round = format!("from {id}");
    let arrived = tokio::time::timeout(CONVERGE, async {
        loop {
            client
                .publish(topic, QoS::AtLeastOnce, false, round.clone())
                .await
                .expect("publish queued");
            let wait = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    payload = received.recv() => {
                        if payload.expect("subscriber alive") == round {
                            return;
                        }
                    }
                    () = &mut wait => break,
                }
            }
        }
    })
    .await;
    assert!(
        arrived.is_ok(),
        "no publish from {id} reached the subscriber in {CONVERGE:?}"
    );
    let _ = client.disconnect().await;
    driver.abort();
}

fn uuid_of(report: &Value) -> String {
    report["uuid"].as_str().expect("uuid").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_routes_and_one_identity_and_survive_a_kill() {
    let root = tempfile::tempdir().expect("tempdir");
    let setups: Vec<Setup> = ["b1", "b2", "b3"]
        .iter()
        .map(|n| Setup::new(root.path(), n))
        .collect();
    let [b1, b2, b3] = [&setups[0], &setups[1], &setups[2]];

    // b3 runs alone first: it makes its own cluster_uuid.
    b3.write("", QUIET);
    let mut alone = b3.start(&[]).await;
    let solo = alone.report().await;
    assert_eq!(solo["nodes_uuid"], json!([]), "{solo}");
    let nodes = alone.get("/api/v5/nodes").await;
    assert_eq!(nodes.as_array().map(Vec::len), Some(1), "{nodes}");
    assert_eq!(nodes[0]["node"], "b3@127.0.0.1", "{nodes}");
    alone.stop().await;

    let cluster = seeds(&cluster_ports(3));
    for setup in &setups {
        setup.write(&cluster, QUIET);
    }
    let mut nodes = start_all(&[b1, b2, b3], &[&[], &[], &[]]).await;
    let started = Instant::now();
    let reports = formed(&[&nodes[0], &nodes[1], &nodes[2]]).await;
    eprintln!(
        "cluster formed {:?} after the last start line",
        started.elapsed()
    );
    let cluster_uuid = reports[0]["cluster_uuid"].clone();
    let uuids: Vec<String> = reports.iter().map(uuid_of).collect();
    assert_eq!(uuids[2], uuid_of(&solo), "b3 keeps its own uuid");
    assert_ne!(
        cluster_uuid, solo["cluster_uuid"],
        "b3 gave its cluster_uuid up"
    );
    let mut distinct = uuids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{uuids:?}");

    // Routes are shared: a subscriber on b1 gets what a client publishes on b3.
    let mut received = subscriber(nodes[0].mqtt, "sub-on-b1", "plant/+/temp").await;
    delivered_across(
        nodes[2].mqtt,
        "pub-on-b3",
        "plant/line1/temp",
        &mut received,
    )
    .await;
    // One topic filter in the whole cluster, counted alike on every node; the sessions
    // are the cluster's (the subscriber's on b1).
    for node in &nodes {
        let report = node
            .until("/api/v5/telemetry/data", CONVERGE, |r| {
                r["mqtt_runtime_insights"]["num_topics"] == 1 && r["num_cluster_sessions"] == 1
            })
            .await;
        assert_eq!(report["cluster_uuid"], cluster_uuid, "{report}");
    }
    let listed = nodes[1].get("/api/v5/nodes").await;
    let names: Vec<&Value> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|n| &n["node"])
        .collect();
    assert_eq!(
        names,
        [
            &json!("b1@127.0.0.1"),
            &json!("b2@127.0.0.1"),
            &json!("b3@127.0.0.1")
        ]
    );
    for node in listed.as_array().expect("list") {
        assert_eq!(node["node_status"], "running", "{listed}");
        assert!(node["uptime"].as_u64().is_some_and(|ms| ms > 0), "{listed}");
        assert_eq!(node["version"], env!("CARGO_PKG_VERSION"), "{listed}");
    }

    // SIGKILL b3: the others drop it within the bound and keep serving MQTT.
    nodes[2].kill().await;
    let killed = Instant::now();
    for (i, node) in nodes[..2].iter().enumerate() {
        let other = json!([uuids[1 - i]]);
        node.until("/api/v5/telemetry/data", DROP_BOUND, |r| {
            r["nodes_uuid"] == other
        })
        .await;
    }
    eprintln!(
        "b3 left both peers' nodes_uuid {:?} after SIGKILL",
        killed.elapsed()
    );
    let listed = nodes[0].get("/api/v5/nodes").await;
    assert_eq!(listed[2]["node_status"], "stopped", "{listed}");
    delivered_across(
        nodes[1].mqtt,
        "pub-on-b2",
        "plant/line2/temp",
        &mut received,
    )
    .await;
    let persisted =
        std::fs::read_to_string(b3.data.join("cluster.uuid")).expect("b3's cluster.uuid");
    assert_eq!(
        json!(persisted.trim()),
        cluster_uuid,
        "b3 kept the cluster's id on disk"
    );

    // Restarted, b3 rejoins with its own uuid and the cluster's id.
    nodes[2] = b3.start(&[]).await;
    let reports = formed(&[&nodes[0], &nodes[1], &nodes[2]]).await;
    assert_eq!(reports.iter().map(uuid_of).collect::<Vec<_>>(), uuids);
    assert!(
        reports.iter().all(|r| r["cluster_uuid"] == cluster_uuid),
        "{reports:#?}"
    );

    for node in &mut nodes {
        node.stop().await;
    }
}

/// The number of connections each node's collector has accepted so far.
fn counts(collectors: &[Arc<AtomicUsize>]) -> Vec<usize> {
    collectors
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_switch_is_the_clusters_and_a_boot_time_off_stays_the_nodes() {
    let root = tempfile::tempdir().expect("tempdir");
    let cluster = seeds(&cluster_ports(3));
    let setups: Vec<Setup> = ["b1", "b2", "b3"]
        .iter()
        .map(|n| Setup::new(root.path(), n))
        .collect();
    let mut collectors = Vec::new();
    for setup in &setups {
        let (addr, accepted) = counting_listener().await;
        setup.write(&cluster, &eager(addr));
        collectors.push(accepted);
    }
    let [b1, b2, b3] = [&setups[0], &setups[1], &setups[2]];
    let mut nodes = start_all(&[b1, b2, b3], &[&[], &[], &[]]).await;
    formed(&[&nodes[0], &nodes[1], &nodes[2]]).await;
    // Every node is sending (its collector hangs up, so it retries every few 100 ms).
    let deadline = Instant::now() + CONVERGE;
    while counts(&collectors).contains(&0) {
        assert!(
            Instant::now() < deadline,
            "not every node sends: {:?}",
            counts(&collectors)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Off on b1 is off on every node, and none connects any more.
    nodes[0].switch(false).await;
    for node in &nodes {
        let status = node
            .until("/api/v5/telemetry/status", Duration::from_secs(10), |s| {
                s["enable"] == false
            })
            .await;
        assert_eq!(status["source"], "runtime setting", "{status}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let off = counts(&collectors);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        counts(&collectors),
        off,
        "connections to the collectors while off"
    );

    // Restarted, all three are still off (b3 now also by its environment).
    for node in &mut nodes {
        node.stop().await;
    }
    let mut nodes = start_all(&[b1, b2, b3], &[&[], &[], &[(ENV_OFF, "false")]]).await;
    formed(&[&nodes[0], &nodes[1], &nodes[2]]).await;
    for node in &nodes[..2] {
        let status = node.status().await;
        assert_eq!(
            (&status["enable"], &status["source"]),
            (&json!(false), &json!("runtime setting")),
            "{status}"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        counts(&collectors),
        off,
        "connections to the collectors after the restart"
    );

    // On again at b1 while b2 is down: b2 learns it when it rejoins; b3's environment
    // keeps it off, and its status says so.
    nodes[1].stop().await;
    nodes[0].switch(true).await;
    nodes[1] = b2.start(&[]).await;
    nodes[1]
        .until("/api/v5/telemetry/status", CONVERGE, |s| {
            s["enable"] == true
        })
        .await;
    let status = nodes[2]
        .until("/api/v5/telemetry/status", CONVERGE, |s| {
            s["runtime_switch"]["enable"] == true
        })
        .await;
    let env_source = format!("environment {ENV_OFF}");
    assert_eq!(status["enable"], false, "{status}");
    assert_eq!(status["source"], env_source, "{status}");
    assert_eq!(status["locked_by"], env_source, "{status}");
    let deadline = Instant::now() + CONVERGE;
    while counts(&collectors)[..2]
        .iter()
        .zip(&off)
        .any(|(now, before)| now == before)
    {
        assert!(
            Instant::now() < deadline,
            "b1 and b2 send again: {:?}",
            counts(&collectors)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        counts(&collectors)[2],
        off[2],
        "b3 connected to its collector"
    );

    for node in &mut nodes {
        node.stop().await;
    }
}
