//! Load generator for the collector's ingest endpoint.
//!
//! Pre-generates one realistic, varied report per request (from the EMQX 5.0.9 seed, with
//! random node/cluster uuids, versions, OS and counters), then posts them over
//! `--connections` keep-alive HTTP/1.1 connections and prints one line:
//! `ok=N failed=N seconds=S per_second=R p50_ms=X p99_ms=Y`.
//!
//! ```sh
//! cargo run --release -p beacon-collector --example ingest_load -- \
//!     --url http://127.0.0.1:8080/api/telemetry --requests 50000 --connections 32
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
struct Args {
    /// Ingest URL (plain HTTP, loopback).
    #[arg(long)]
    url: String,
    /// Total number of reports to post.
    #[arg(long, default_value_t = 50_000)]
    requests: usize,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Requests posted before the clock starts (connection set-up, warm caches).
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

const VERSIONS: &[&str] = &[
    "5.0.9", "5.1.6", "5.3.2", "5.4.1", "5.5.0", "5.6.1", "5.7.2", "5.8.0",
];
const SYSTEMS: &[(&str, &str)] = &[
    ("Ubuntu", "22.04"),
    ("Ubuntu", "20.04"),
    ("Debian GNU/Linux", "12"),
    ("CentOS Linux", "7"),
    ("Amazon Linux", "2023"),
    ("macOS", "14.2"),
    ("Alpine Linux", "3.19"),
];

fn random_uuid(rng: &mut impl Rng) -> String {
    uuid::Uuid::from_u128(rng.random())
        .hyphenated()
        .to_string()
        .to_uppercase()
}

/// One report: the seed with every varying field drawn at random.
fn varied_report(seed: &Value, rng: &mut impl Rng) -> Result<Bytes, Error> {
    let mut doc = seed.clone();
    let obj = doc.as_object_mut().ok_or("seed is not a JSON object")?;
    let (os_name, os_version) = SYSTEMS.choose(rng).ok_or("no systems")?;
    let version = VERSIONS.choose(rng).ok_or("no versions")?;
    obj.insert("uuid".into(), json!(random_uuid(rng)));
    obj.insert("cluster_uuid".into(), json!(random_uuid(rng)));
    obj.insert("emqx_version".into(), json!(version));
    obj.insert("os_name".into(), json!(os_name));
    obj.insert("os_version".into(), json!(os_version));
    obj.insert(
        "up_time".into(),
        json!(rng.random_range(1_000..10_000_000_000u64)),
    );
    obj.insert("num_clients".into(), json!(rng.random_range(0..200_000u64)));
    obj.insert(
        "messages_received".into(),
        json!(rng.random_range(0..1u64 << 40)),
    );
    obj.insert(
        "messages_sent".into(),
        json!(rng.random_range(0..1u64 << 40)),
    );
    let peers: Vec<String> = (0..rng.random_range(0..4))
        .map(|_| random_uuid(rng))
        .collect();
    obj.insert("nodes_uuid".into(), json!(peers));
    Ok(Bytes::from(serde_json::to_vec(&doc)?))
}

struct Target {
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    Ok(Target {
        authority: authority.to_owned(),
        path: path.to_owned(),
    })
}

#[derive(Default)]
struct Tally {
    ok: usize,
    failed: usize,
    latencies: Vec<Duration>,
}

/// Posts bodies (taken from a shared cursor) over one keep-alive connection.
async fn worker(
    target: Arc<Target>,
    bodies: Arc<Vec<Bytes>>,
    cursor: Arc<AtomicUsize>,
    end: usize,
) -> Result<Tally, Error> {
    let stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut tally = Tally::default();
    loop {
        let index = cursor.fetch_add(1, Ordering::Relaxed);
        let Some(body) = bodies.get(index).filter(|_| index < end) else {
            return Ok(tally);
        };
        let request = Request::post(&target.path)
            .header("host", &target.authority)
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))?;
        let started = Instant::now();
        let response = sender.send_request(request).await?;
        let success = response.status().is_success();
        response.into_body().collect().await?;
        tally.latencies.push(started.elapsed());
        if success {
            tally.ok += 1
        } else {
            tally.failed += 1
        }
    }
}

async fn run_phase(
    target: &Arc<Target>,
    bodies: &Arc<Vec<Bytes>>,
    cursor: &Arc<AtomicUsize>,
    end: usize,
    connections: usize,
) -> Result<Tally, Error> {
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (t, b, c) = (Arc::clone(target), Arc::clone(bodies), Arc::clone(cursor));
            tokio::spawn(worker(t, b, c, end))
        })
        .collect();
    let mut total = Tally::default();
    for handle in workers {
        let tally = handle.await??;
        total.ok += tally.ok;
        total.failed += tally.failed;
        total.latencies.extend(tally.latencies);
    }
    Ok(total)
}

fn percentile_ms(sorted: &[Duration], pct: usize) -> f64 {
    let index = (sorted.len() * pct / 100).min(sorted.len().saturating_sub(1));
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let target = Arc::new(parse_url(&args.url)?);
    let seed: Value = serde_json::from_str(beacon_report::fixtures::SEED_5_0_9)?;
    let mut rng = rand::rng();
    let total = args.warmup + args.requests;
    let bodies = (0..total)
        .map(|_| varied_report(&seed, &mut rng))
        .collect::<Result<Vec<_>, _>>()?;
    let bodies = Arc::new(bodies);
    let cursor = Arc::new(AtomicUsize::new(0));
    run_phase(&target, &bodies, &cursor, args.warmup, args.connections).await?;
    cursor.store(args.warmup, Ordering::Relaxed);
    let started = Instant::now();
    let mut tally = run_phase(&target, &bodies, &cursor, total, args.connections).await?;
    let seconds = started.elapsed().as_secs_f64();
    tally.latencies.sort_unstable();
    println!(
        "ok={} failed={} seconds={seconds:.3} per_second={:.0} p50_ms={:.2} p99_ms={:.2}",
        tally.ok,
        tally.failed,
        tally.ok as f64 / seconds,
        percentile_ms(&tally.latencies, 50),
        percentile_ms(&tally.latencies, 99),
    );
    Ok(())
}
