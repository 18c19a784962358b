//! Real MQTT clients against a real broker on 127.0.0.1: the probe's readings, topic
//! rewrite, auto-subscription, isolation of brokers in one process, shutdown.

use crate::common;

use std::net::TcpListener;

use beacon_broker::Reading;
use common::{TestClient, settle, start, within};
use rumqttc::{QoS, SubscribeReasonCode};

const PER_TOPIC: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_follows_clients_topics_and_messages() {
    let broker = start("").await;
    let addr = broker.mqtt_addr().expect("listener enabled");

    let mut a = TestClient::connect(addr, "a").await;
    let mut b = TestClient::connect(addr, "b").await;
    let mut c = TestClient::connect(addr, "c").await;
    assert!(matches!(
        a.subscribe("t/1").await,
        SubscribeReasonCode::Success(_)
    ));
    assert!(matches!(
        a.subscribe("t/2").await,
        SubscribeReasonCode::Success(_)
    ));
    assert!(matches!(
        b.subscribe("t/1").await,
        SubscribeReasonCode::Success(_)
    ));

    for i in 0..PER_TOPIC {
        c.publish("t/1", &format!("one {i}"), false).await;
        c.publish("t/2", &format!("two {i}"), false).await;
    }
    c.publish("r/1", "kept", true).await;
    c.publish("r/2", "kept too", true).await;
    c.publish("$delayed/3600/t/1", "later", false).await;

    for _ in 0..2 * PER_TOPIC {
        a.next_publish().await;
    }
    for _ in 0..PER_TOPIC {
        b.next_publish().await;
    }
    c.disconnect().await;

    let expected = Reading {
        connections: 2,
        sessions: 2,
        publishes_received: 2 * PER_TOPIC as u64 + 3,
        publishes_sent: 3 * PER_TOPIC as u64,
        topic_filters: 2,
        retained_messages: 2,
        delayed_publishes: 1,
        rewrite_rules: 0,
        auto_subscriptions: 0,
        authenticators: vec![],
        authorization_sources: vec![],
        plugins: vec![
            "rmqtt-delayed-0.24.0".into(),
            "rmqtt-retainer-0.24.0".into(),
        ],
    };
    // Sessions and connections end asynchronously after the socket closes.
    let reading = settle(&broker, |n| n == &expected).await;
    assert_eq!(reading, expected);

    // A retained message is delivered to a new subscriber, and counted as sent.
    let mut d = TestClient::connect(addr, "d").await;
    d.subscribe("r/1").await;
    let kept = d.next_publish().await;
    assert!(kept.retain);
    assert_eq!(&kept.payload[..], b"kept");
    let reading = settle(&broker, |n| n.publishes_sent == expected.publishes_sent + 1).await;
    assert_eq!(reading.publishes_sent, expected.publishes_sent + 1);
    assert_eq!(reading.topic_filters, 3);
    assert_eq!(reading.connections, 3);

    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_features_run_no_plugin() {
    let broker = start("retainer.enable = false\ndelayed { enable = false }").await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    let mut a = TestClient::connect(addr, "a").await;
    a.subscribe("$delayed/#").await;
    a.publish("r/1", "not kept", true).await;
    // Without the delayed plugin the topic is an ordinary one.
    a.publish("$delayed/60/x", "now", false).await;
    assert_eq!(a.next_publish().await.topic, "$delayed/60/x");

    let reading = broker.probe().await;
    assert_eq!(reading.retained_messages, 0);
    assert_eq!(reading.delayed_publishes, 0);
    assert!(reading.plugins.is_empty());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_rewrite_rewrites_published_topics() {
    let broker = start(
        r#"rewrite = [
             {action = publish, source_topic = "x/#", re = "^x/(.+)$", dest_topic = "y/$1"}
             {action = subscribe, source_topic = "old/#", re = "^old/(.+)$", dest_topic = "new/$1"}
           ]"#,
    )
    .await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    let mut sub = TestClient::connect(addr, "sub").await;
    let mut publisher = TestClient::connect(addr, "pub").await;
    sub.subscribe("y/#").await;
    sub.subscribe("old/+").await;

    publisher.publish("x/a/b", "moved", false).await;
    let got = sub.next_publish().await;
    assert_eq!(got.topic, "y/a/b");
    assert_eq!(&got.payload[..], b"moved");

    // The subscription to old/+ was rewritten to new/+.
    publisher.publish("new/z", "renamed", false).await;
    assert_eq!(sub.next_publish().await.topic, "new/z");

    let reading = broker.probe().await;
    assert_eq!(reading.rewrite_rules, 2);
    assert!(
        reading
            .plugins
            .contains(&"rmqtt-topic-rewrite-0.24.0".to_string())
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_subscription_subscribes_on_connect() {
    let broker = start(
        r#"auto_subscribe.topics = [
             {topic = "c/${clientid}", qos = 1}
             {topic = "broadcast", qos = 0}
           ]"#,
    )
    .await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    let mut device = TestClient::connect(addr, "dev1").await;
    // rmqtt subscribes right after CONNACK; wait until both filters are routed.
    assert_eq!(
        settle(&broker, |n| n.topic_filters == 2)
            .await
            .topic_filters,
        2
    );

    let mut publisher = TestClient::connect(addr, "pub").await;
    publisher.publish("c/dev1", "for you", false).await;
    let got = device.next_publish().await;
    assert_eq!(got.topic, "c/dev1");
    assert_eq!(got.qos, QoS::AtLeastOnce);

    let reading = broker.probe().await;
    assert_eq!(reading.auto_subscriptions, 2);
    assert!(
        reading
            .plugins
            .contains(&"rmqtt-auto-subscription-0.24.0".to_string())
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_in_one_process_are_independent() {
    let first = start("").await;
    let second = start("").await;
    let mut a = TestClient::connect(first.mqtt_addr().expect("listener"), "a").await;
    a.subscribe("t").await;
    a.publish("t", "hello", false).await;
    a.publish("kept", "stored", true).await;
    a.next_publish().await;

    let reading = settle(&first, |n| {
        n.publishes_sent == 1 && n.retained_messages == 1
    })
    .await;
    assert_eq!((reading.connections, reading.retained_messages), (1, 1));
    assert_eq!((reading.publishes_received, reading.publishes_sent), (2, 1));
    assert_eq!(
        second.probe().await,
        Reading {
            plugins: reading.plugins.clone(),
            ..Reading::default()
        }
    );
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_clients_and_frees_the_port() {
    let broker = start("").await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    let mut a = TestClient::connect(addr, "a").await;
    a.subscribe("t").await;
    assert_eq!(settle(&broker, |n| n.connections == 1).await.connections, 1);

    within("shutdown", broker.shutdown()).await;
    within("client to be disconnected", a.closed_by_broker()).await;
    TcpListener::bind(addr).expect("port is free after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_listener_serves_nothing() {
    let broker = start("listeners.tcp.default.enable = false").await;
    assert_eq!(broker.mqtt_addr(), None);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taken_port_is_reported() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr");
    let mut config = common::config("");
    config.set_listener(Some(taken));
    let err = beacon_broker::Broker::start(config)
        .await
        .expect_err("port is taken");
    assert!(
        err.to_string().contains(&taken.to_string()),
        "error names the address: {err}"
    );
}
