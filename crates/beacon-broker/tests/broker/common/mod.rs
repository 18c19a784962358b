//! A real MQTT 3.1.1 client (rumqttc) driven step by step, and broker helpers.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use beacon_broker::{Broker, BrokerConfig, Reading, RunningBroker};
use beacon_config::Config;
use rumqttc::{
    AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, Publish, QoS,
    SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

#[path = "../../../../../tests/ports.rs"]
pub mod ports;

/// Generous: the machine is small and shared; no test asserts on durations.
const PATIENCE: Duration = Duration::from_secs(60);

pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Parses `hocon` as a config file; the listener goes to an ephemeral loopback port.
pub fn config(hocon: &str) -> BrokerConfig {
    let text = format!("listeners.tcp.default.bind = \"127.0.0.1:0\"\n{hocon}");
    let config = Config::from_str(&text, Path::new("test/emqx.conf"), Vec::new())
        .expect("test config parses");
    BrokerConfig::from_config(&config).expect("test config is valid")
}

pub async fn start(hocon: &str) -> RunningBroker {
    Broker::start(config(hocon)).await.expect("broker starts")
}

/// Probes the broker until `done` holds or patience runs out, and returns the last
/// reading either way: the caller's exact assertion then shows what differs.
pub async fn settle(broker: &RunningBroker, done: impl Fn(&Reading) -> bool) -> Reading {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let reading = broker.probe().await;
        if done(&reading) || tokio::time::Instant::now() >= deadline {
            return reading;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub struct TestClient {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, ConnectionError>>,
    publishes: VecDeque<Publish>,
    task: JoinHandle<()>,
}

impl TestClient {
    pub async fn connect(addr: SocketAddr, id: &str) -> TestClient {
        Self::try_connect(addr, id, None)
            .await
            .expect("client connects")
    }

    pub async fn try_connect(
        addr: SocketAddr,
        id: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<TestClient, ConnectionError> {
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        if let Some((username, password)) = credentials {
            options.set_credentials(username, password);
        }
        Self::try_connect_with(options).await
    }

    /// Connects with `options` as given (a TLS or WebSocket transport, say); the
    /// keep-alive is set to outlast any test.
    pub async fn try_connect_with(mut options: MqttOptions) -> Result<TestClient, ConnectionError> {
        options.set_keep_alive(Duration::from_secs(60));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, events) = mpsc::unbounded_channel();
        // Stops at the first error so a refused client does not reconnect, and
        // closes the socket once DISCONNECT is sent, as the MQTT client must.
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(Ok(packet)).is_err() {
                            break;
                        }
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        let mut this = TestClient {
            client,
            events,
            publishes: VecDeque::new(),
            task,
        };
        match this.next_packet().await? {
            Packet::ConnAck(_) => Ok(this),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    async fn next_packet(&mut self) -> Result<Packet, ConnectionError> {
        within("a packet from the broker", self.events.recv())
            .await
            .unwrap_or(Err(ConnectionError::RequestsDone))
    }

    /// The next packet that is not a PUBLISH; PUBLISHes are kept for `next_publish`.
    async fn next_reply(&mut self) -> Packet {
        loop {
            match self.next_packet().await.expect("connection stays up") {
                Packet::Publish(p) => self.publishes.push_back(p),
                Packet::PingResp => {}
                other => return other,
            }
        }
    }

    pub async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        match self.next_reply().await {
            Packet::SubAck(ack) => ack.return_codes[0],
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// QoS 1, waiting for the PUBACK so the broker has handled it.
    pub async fn publish(&mut self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .expect("publish queued");
        match self.next_reply().await {
            Packet::PubAck(_) => {}
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// QoS 1 without waiting for an answer (the broker may close instead).
    pub async fn send_publish(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .expect("publish queued");
    }

    pub async fn next_publish(&mut self) -> Publish {
        loop {
            if let Some(p) = self.publishes.pop_front() {
                return p;
            }
            match self.next_packet().await.expect("connection stays up") {
                Packet::Publish(p) => return p,
                Packet::PingResp | Packet::PubAck(_) => {}
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
    }

    /// Waits until the broker closes this connection (or it fails).
    pub async fn closed_by_broker(mut self) {
        while let Ok(packet) = self.next_packet().await {
            if let Packet::Publish(p) = packet {
                self.publishes.push_back(p);
            }
        }
    }

    /// Sends DISCONNECT and closes the connection.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect queued");
        while self.next_packet().await.is_ok() {}
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The EMQX name of node `i` (1-based) of a test cluster.
pub fn name(i: usize) -> String {
    format!("beacon{i}@127.0.0.1")
}

/// The config of node `i` (1-based) of a cluster whose seeds use `ports`.
pub fn node_config(i: usize, ports: &[u16]) -> String {
    let seeds: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(k, port)| format!("\"{}:{port}\"", name(k + 1)))
        .collect();
    format!(
        "node.name = \"{}\"\ncluster {{\n  discovery_strategy = static\n  static.seeds = [{}]\n}}\n",
        name(i),
        seeds.join(", ")
    )
}
