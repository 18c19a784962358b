//! A cluster node in its own process, killed with SIGKILL and restarted on the same
//! ports: it rejoins by itself, MQTT flows through it again, and the routes its dead
//! run left in the replicated table are removed, so every node counts only live
//! topics. Nodes 1 and 2 run in this process; node 3 is this test binary again,
//! running the ignored helper test below.

use crate::common;

use std::net::SocketAddr;
use std::process::Stdio;

use beacon_broker::{Broker, RunningBroker};
use common::ports::cluster_ports;
use common::{TestClient, node_config, settle, within};
use rumqttc::SubscribeReasonCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Tells the helper test it runs as node 3, with this HOCON config.
const CHILD_CONFIG: &str = "BEACON_TEST_CLUSTER_NODE_CONFIG";
/// The helper test by its full name in the test binary, for `--exact`.
const CHILD_TEST: &str = "cluster_restart::a_cluster_node_runs_in_this_process_until_killed";

/// Node 3 as a child process; killed when dropped.
struct ChildNode {
    child: Child,
    mqtt: SocketAddr,
}

impl ChildNode {
    async fn start(config: &str) -> ChildNode {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([CHILD_TEST, "--exact", "--ignored", "--nocapture"])
            .env(CHILD_CONFIG, config)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node 3");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mqtt = within("node 3 to start", async {
            while let Some(line) = lines.next_line().await.expect("read node 3") {
                if let Some(addr) = line.strip_prefix("READY ") {
                    return addr.parse().expect("an address");
                }
            }
            panic!("node 3 exited before it was ready");
        })
        .await;
        // Keeps reading, so the child never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ChildNode { child, mqtt }
    }

    /// SIGKILL: no goodbye to the cluster, sockets left as the kernel leaves them.
    async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL node 3");
    }
}

async fn subscribed(addr: SocketAddr, id: &str, filter: &str) -> TestClient {
    let mut client = TestClient::connect(addr, id).await;
    assert!(matches!(
        client.subscribe(filter).await,
        SubscribeReasonCode::Success(_)
    ));
    client
}

/// A client `id` of the node at `publisher_addr` publishes; `to` receives it.
async fn delivered(publisher_addr: SocketAddr, to: &mut TestClient, topic: &str, id: &str) {
    let mut publisher = TestClient::connect(publisher_addr, id).await;
    publisher.publish(topic, id, false).await;
    let got = within("a publish across nodes", to.next_publish()).await;
    assert_eq!((&got.topic[..], &got.payload[..]), (topic, id.as_bytes()));
}

async fn topic_filters_become(nodes: &[&RunningBroker], n: u64) {
    for node in nodes {
        let reading = settle(node, |r| r.topic_filters == n).await;
        assert_eq!(reading.topic_filters, n, "topic filters counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_and_restarted_rejoins_and_its_dead_routes_are_removed() {
    let ports = cluster_ports(3);
    let starts: Vec<_> = [1, 2]
        .map(|i| tokio::spawn(Broker::start(common::config(&node_config(i, &ports)))))
        .into();
    let node3 = ChildNode::start(&node_config(3, &ports)).await;
    let mut nodes = Vec::new();
    for start in starts {
        let node = within("nodes 1 and 2", start).await.expect("task");
        nodes.push(node.expect("node starts"));
    }
    let addr1 = nodes[0].mqtt_addr().expect("listener");
    let addr2 = nodes[1].mqtt_addr().expect("listener");
    let (n1, n2) = (&nodes[0], &nodes[1]);

    // A subscriber of node 3's first run, then SIGKILL and a quick restart: the
    // route it left is removed even though node 3 is back before it counts as dead.
    let _gone = subscribed(node3.mqtt, "sub-on-3", "left/by/3").await;
    topic_filters_become(&[n1, n2], 1).await;
    node3.kill().await;
    let node3 = ChildNode::start(&node_config(3, &ports)).await;
    topic_filters_become(&[n1, n2], 0).await;

    // MQTT flows through the restarted node both ways.
    let mut on1 = subscribed(addr1, "sub-on-1", "to/1").await;
    delivered(node3.mqtt, &mut on1, "to/1", "pub-on-3").await;
    let mut on3 = subscribed(node3.mqtt, "sub-on-3-again", "to/3").await;
    topic_filters_become(&[n1, n2], 2).await;
    delivered(addr2, &mut on3, "to/3", "pub-on-2").await;

    // Killed for good: the leader removes its routes, and nodes 1 and 2 go on.
    node3.kill().await;
    topic_filters_become(&[n1, n2], 1).await;
    delivered(addr2, &mut on1, "to/1", "pub-on-2-after").await;
}

/// Node 3's process: runs a broker with the config from [`CHILD_CONFIG`] until it
/// is killed. Run only by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "node 3's process, started by a_node_killed_and_restarted_rejoins..."]
async fn a_cluster_node_runs_in_this_process_until_killed() {
    let Ok(config) = std::env::var(CHILD_CONFIG) else {
        return;
    };
    let node = Broker::start(common::config(&config))
        .await
        .expect("node 3 starts");
    println!("READY {}", node.mqtt_addr().expect("listener"));
    std::future::pending::<()>().await;
}
