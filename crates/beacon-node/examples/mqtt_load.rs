//! MQTT publish throughput: `--pairs` publisher/subscriber pairs, each publisher sending
//! `--messages` small payloads to its own topic, each subscriber receiving them (fan-out
//! 1). Prints delivered messages per second up to the last delivery, and how many of the
//! sent messages arrived (a broker may drop messages when a subscriber's queue is full).
//! `--sub-port` puts the subscribers on another node of a cluster than the publishers
//! (`--port`), so that every message crosses the cluster.
//!
//! ```text
//! cargo run --release -p beacon-node --example mqtt_load -- --port 1883 --qos 1
//! ```

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS};

/// A subscriber that got nothing for this long after its first message is done.
const IDLE_END: Duration = Duration::from_secs(3);

struct Args {
    host: String,
    port: u16,
    /// Where the subscribers connect; `--port` when not given.
    sub_port: Option<u16>,
    qos: QoS,
    pairs: usize,
    messages: usize,
    payload: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 1883,
        sub_port: None,
        qos: QoS::AtMostOnce,
        pairs: 4,
        messages: 20_000,
        payload: 64,
        timeout: Duration::from_secs(120),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--host" => args.host = value.clone(),
            "--port" => args.port = u16::try_from(number()?).map_err(|e| e.to_string())?,
            "--sub-port" => {
                args.sub_port = Some(u16::try_from(number()?).map_err(|e| e.to_string())?);
            }
            "--qos" => {
                args.qos = match value.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    other => return Err(format!("--qos must be 0 or 1, not {other}")),
                }
            }
            "--pairs" => args.pairs = number()? as usize,
            "--messages" => args.messages = number()? as usize,
            "--payload" => args.payload = number()? as usize,
            "--timeout" => args.timeout = Duration::from_secs(number()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn client(args: &Args, id: String, port: u16) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(id, args.host.clone(), port);
    options.set_keep_alive(Duration::from_secs(60));
    options.set_inflight(100);
    let (client, mut events) = AsyncClient::new(options, 1000);
    // A broker that cannot forward as fast as a publisher sends stops reading its socket
    // (flow control); that wait is part of what is measured, not a failure.
    let mut network = NetworkOptions::new();
    network.set_connection_timeout(args.timeout.as_secs());
    events.set_network_options(network);
    (client, events)
}

/// What a subscriber got: messages, and when the last one arrived.
struct Received {
    count: usize,
    last_at: Option<Instant>,
}

/// Subscribes, reports ready, then counts PUBLISHes until it has `--messages`, or
/// nothing came for [`IDLE_END`] after the first (a broker that drops messages when a
/// subscriber's queue is full never delivers them all), or the deadline passes.
async fn subscriber(args: &Args, n: usize, ready: tokio::sync::mpsc::Sender<()>) -> Received {
    let port = args.sub_port.unwrap_or(args.port);
    let (client, mut events) = client(args, format!("bench-sub-{n}-{}", std::process::id()), port);
    client
        .subscribe(format!("bench/{n}"), args.qos)
        .await
        .expect("subscribe");
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut got = Received {
        count: 0,
        last_at: None,
    };
    loop {
        let wait_until = match got.last_at {
            Some(at) => deadline.min(tokio::time::Instant::from_std(at + IDLE_END)),
            None => deadline,
        };
        match tokio::time::timeout_at(wait_until, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => ready.send(()).await.expect("ready"),
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                got.count += 1;
                got.last_at = Some(Instant::now());
                if got.count == args.messages {
                    return got;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("subscriber {n}: {error}"),
            Err(_) => return got,
        }
    }
}

async fn publisher(args: &Args, n: usize) {
    let (client, mut events) = client(
        args,
        format!("bench-pub-{n}-{}", std::process::id()),
        args.port,
    );
    let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let payload = vec![b'x'; args.payload];
    for _ in 0..args.messages {
        client
            .publish(format!("bench/{n}"), args.qos, false, payload.clone())
            .await
            .expect("publish queued");
    }
    // Keep the connection until the subscriber has counted; the caller aborts us.
    let _ = driver.await;
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => std::sync::Arc::new(args),
        Err(message) => {
            eprintln!("mqtt_load: {message}");
            std::process::exit(2);
        }
    };
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.pairs);
    let subscribers: Vec<_> = (0..args.pairs)
        .map(|n| {
            let (args, ready) = (args.clone(), ready_tx.clone());
            tokio::spawn(async move { subscriber(&args, n, ready).await })
        })
        .collect();
    for _ in 0..args.pairs {
        ready_rx.recv().await.expect("subscriber ready");
    }
    let started = Instant::now();
    let publishers: Vec<_> = (0..args.pairs)
        .map(|n| {
            let args = args.clone();
            tokio::spawn(async move { publisher(&args, n).await })
        })
        .collect();
    let mut delivered = 0;
    let mut last = started;
    for subscriber in subscribers {
        let got = subscriber.await.expect("subscriber task");
        delivered += got.count;
        last = last.max(got.last_at.unwrap_or(started));
    }
    // Up to the last delivery: the idle wait of a dropping broker is not throughput.
    let seconds = last.duration_since(started).as_secs_f64().max(f64::EPSILON);
    for publisher in publishers {
        publisher.abort();
    }
    let expected = args.pairs * args.messages;
    println!(
        "delivered={delivered} expected={expected} seconds={seconds:.3} per_second={:.0}",
        delivered as f64 / seconds
    );
}
