//! Real brokers on 127.0.0.1 form a raft cluster from static seeds, in one process
//! (each has its own rmqtt context): routes, retained messages and topic counts are
//! shared, and the opaque channel carries requests between nodes.

use crate::common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use beacon_broker::{Broker, BrokerError, ClusterAnswerer, ClusterError, RunningBroker};
use common::ports::cluster_ports;
use common::{TestClient, name, node_config, settle, within};
use rumqttc::SubscribeReasonCode;

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts nodes 1..=n of the cluster together, as operators do.
async fn start_cluster(ports: &[u16]) -> Vec<RunningBroker> {
    let starts: Vec<_> = (1..=ports.len())
        .map(|i| tokio::spawn(Broker::start(common::config(&node_config(i, ports)))))
        .collect();
    let mut brokers = Vec::new();
    for start in starts {
        let broker = within("the cluster to form", start)
            .await
            .expect("start task")
            .expect("node starts");
        brokers.push(broker);
    }
    brokers
}

/// Answers "<node name> heard <request>".
struct Echo(String);

#[async_trait::async_trait]
impl ClusterAnswerer for Echo {
    async fn answer(&self, request: Vec<u8>) -> Vec<u8> {
        format!("{} heard {}", self.0, String::from_utf8_lossy(&request)).into_bytes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_routes_retained_messages_topic_counts_and_requests() {
    let ports = cluster_ports(3);
    let nodes = start_cluster(&ports).await;
    let clusters: Vec<_> = nodes
        .iter()
        .map(|n| n.cluster().expect("a cluster node"))
        .collect();
    assert_eq!(clusters[0].node_name(), name(1));
    assert_eq!(clusters[0].peers(), [name(2), name(3)]);
    assert_eq!(clusters[2].peers(), [name(1), name(2)]);
    for cluster in &clusters {
        assert_eq!(cluster.leader().await, Some(name(1)), "{cluster:?}");
    }

    // A subscriber on node 1 receives a publish made on node 3.
    let addr = |i: usize| nodes[i - 1].mqtt_addr().expect("listener");
    let mut subscriber = TestClient::connect(addr(1), "sub-on-1").await;
    assert!(matches!(
        subscriber.subscribe("cluster/news").await,
        SubscribeReasonCode::Success(_)
    ));
    let node3 = settle(&nodes[2], |r| r.topic_filters == 1).await;
    assert_eq!(node3.topic_filters, 1, "the route reached node 3");
    let mut publisher = TestClient::connect(addr(3), "pub-on-3").await;
    publisher
        .publish("cluster/news", "from node 3", false)
        .await;
    let got = within("the forwarded publish", subscriber.next_publish()).await;
    assert_eq!(
        (&got.topic[..], &got.payload[..]),
        ("cluster/news", &b"from node 3"[..])
    );

    // A retained message published on node 2 is read on node 1.
    let mut retainer = TestClient::connect(addr(2), "retain-on-2").await;
    retainer.publish("cluster/kept", "kept on 2", true).await;
    let mut reader = TestClient::connect(addr(1), "reader-on-1").await;
    reader.subscribe("cluster/kept").await;
    let kept = within("the retained message", reader.next_publish()).await;
    assert_eq!(&kept.payload[..], b"kept on 2");
    assert!(kept.retain);

    // The route table is replicated: every node counts both filters.
    for node in &nodes {
        let reading = settle(node, |r| r.topic_filters == 2).await;
        assert_eq!(reading.topic_filters, 2);
    }

    // Requests: node 3 has no answerer yet, node 2 has one.
    clusters[1].answer_with(Arc::new(Echo(name(2))));
    let answers = clusters[0].ask_all(b"hello".to_vec(), ASK_TIMEOUT).await;
    assert_eq!(
        answers,
        [
            (name(2), Ok(format!("{} heard hello", name(2)).into_bytes())),
            (name(3), Err(ClusterError::NotReady)),
        ]
    );
    clusters[2].answer_with(Arc::new(Echo(name(3))));
    let answers = clusters[0].ask_all(b"again".to_vec(), ASK_TIMEOUT).await;
    let texts: Vec<(String, String)> = answers
        .into_iter()
        .map(|(peer, answer)| (peer, String::from_utf8(answer.expect("answered")).unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            (name(2), format!("{} heard again", name(2))),
            (name(3), format!("{} heard again", name(3))),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_is_not_running_answers_with_an_error_in_time() {
    let ports = cluster_ports(2);
    // Node 1 bootstraps the raft group, so it starts without node 2.
    let node = Broker::start(common::config(&node_config(1, &ports)))
        .await
        .expect("the bootstrapper starts alone");
    let cluster = node.cluster().expect("a cluster node");
    assert_eq!(cluster.leader().await, Some(name(1)));
    let asked = tokio::time::Instant::now();
    let answers = cluster.ask_all(b"anyone?".to_vec(), ASK_TIMEOUT).await;
    assert!(asked.elapsed() < ASK_TIMEOUT + Duration::from_secs(2));
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (peer, answer) = &answers[0];
    assert_eq!(peer, &name(2));
    assert!(
        matches!(
            answer,
            Err(ClusterError::Unreachable(_) | ClusterError::Timeout(_))
        ),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_broker_has_no_cluster() {
    let node = common::start("node.name = \"solo@127.0.0.1\"").await;
    assert!(node.cluster().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_cluster_port_is_refused_before_anything_starts() {
    for (taken, role) in [(0u16, "gRPC"), (1000, "raft")] {
        let ports = cluster_ports(1);
        let holder = TcpListener::bind(("127.0.0.1", ports[0] + taken)).expect("hold the port");
        let err = Broker::start(common::config(&node_config(1, &ports)))
            .await
            .expect_err("a taken port is refused");
        let text = err.to_string();
        assert!(matches!(err, BrokerError::ClusterBind { .. }), "{text}");
        assert!(text.contains(role), "{text}");
        let addr = holder.local_addr().expect("bound").to_string();
        assert!(text.contains(&addr), "{text}");
    }
}
