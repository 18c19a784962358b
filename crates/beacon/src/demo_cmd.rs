//! `beacon demo`: a collector on embedded SQLite over HTTPS (certificate made at start),
//! broker nodes reporting to it every few seconds (one, or a cluster with `--nodes N`;
//! each a `beacon broker` process, see `nodes.rs` for why), and a few MQTT clients so that
//! the numbers move: a subscriber on the first node, publishers on the others, so that a
//! cluster routes every message across nodes. Prints where to look; Ctrl-C stops
//! everything.

mod nodes;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use beacon_collector::{
    Collector, CollectorConfig, ConnectionLimits, DEFAULT_RETENTION_DAYS, IngestMode, RateLimit,
    TlsFiles,
};
use beacon_console::ConsoleOptions;
use beacon_store::Store;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::task::JoinSet;

use crate::progress::Progress;
use nodes::{DemoNode, NodePlan};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo keeps its collector database, certificates and node data.
    #[arg(long, value_name = "DIR", default_value = "data/demo")]
    data_dir: PathBuf,
    /// Broker nodes: 1 runs one node, more form one cluster of that many (up to 9).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// MQTT port to try first (node N tries this + N - 1); a taken port (another broker)
    /// is replaced by a free one.
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
    /// Dashboard port to try first (node N tries this + N - 1); a taken port is replaced
    /// by a free one.
    #[arg(long, default_value_t = 18083)]
    dashboard_port: u16,
    /// How often each node reports (HOCON duration); short so the collector fills up.
    #[arg(long, default_value = "20s")]
    interval: String,
    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    stop_after: Option<u64>,
}

/// Publishing clients; each publishes to its own topic, one subscriber gets them all.
const PUBLISHERS: usize = 3;
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

pub async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let tls = make_certificates(&args.data_dir.join("tls"))?;
    let db = format!("sqlite://{}", args.data_dir.join("collector.db").display());
    let store = beacon_collector::open_store(&db)
        .await
        .with_context(|| format!("cannot open {db}"))?;
    let password = demo_password(&args.data_dir)?;
    prepare_console(&store, &password).await?;
    let console = beacon_console::router(
        Arc::clone(&store),
        ConsoleOptions {
            secure_cookies: true,
            import: Some(Arc::new(crate::collector_cmd::ConsoleImport::new(
                store.clone(),
            ))),
            ..ConsoleOptions::default()
        },
    );
    let collector = Collector::bind_store(
        CollectorConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: Some(TlsFiles {
                cert: tls.cert.clone(),
                key: tls.key.clone(),
            }),
            rate_limit: RateLimit::per_minute(RateLimit::DEFAULT_PER_MINUTE),
            mode: IngestMode::Store,
            retention_days: Some(DEFAULT_RETENTION_DAYS),
            connections: ConnectionLimits::default(),
        },
        Arc::clone(&store),
    )
    .await
    .context("cannot start the demo collector")?
    // Its own loopback port, as `beacon collector` does by default.
    .with_console(console, Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
    .context("cannot mount the demo collector's console")?;
    let collector_url = collector.url();
    let console_url = collector
        .console_url()
        .context("the demo collector has no console")?;
    let (stop_collector, collector_stopped) = tokio::sync::oneshot::channel::<()>();
    let collector_task = tokio::spawn(collector.serve(async {
        let _ = collector_stopped.await;
    }));

    // Watching before the nodes start: Ctrl-C while they start stops them too.
    let stop = crate::signals::shutdown_signal();
    let mut notes = Vec::new();
    let plans = node_plans(&args, &mut notes)?;
    let shared = shared_config_text(&args, &collector_url, &tls.ca, &password);
    let started = tokio::select! {
        started = nodes::start(&plans, &shared) => started,
        () = stop => {
            println!("beacon demo: stopped while the nodes started");
            return Ok(());
        }
    };
    let mut nodes = started?;
    let clients = start_clients(&nodes);

    print_banner(&BannerFacts {
        collector_url: &collector_url,
        console_url: &console_url,
        db: &db,
        nodes: &nodes,
        password: &password,
        interval: &args.interval,
        notes: &notes,
    })?;

    let stop_after = async {
        match args.stop_after {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            None => std::future::pending().await,
        }
    };
    let mut failed = None;
    tokio::select! {
        () = stop_after => {}
        () = crate::signals::shutdown_signal() => {}
        (name, status) = nodes::first_exit(&mut nodes) => {
            failed = Some(format!("node {name} stopped by itself ({})", describe(status)));
        }
    }
    println!("beacon demo: stopping");
    drop(clients);
    nodes::stop(nodes).await;
    let _ = stop_collector.send(());
    collector_task
        .await
        .context("the demo collector task failed")??;
    crate::collector_cmd::close_store(&*store).await;
    if let Some(failed) = failed {
        anyhow::bail!("{failed}; see its log in {}", args.data_dir.display());
    }
    println!("beacon demo: stopped");
    Ok(())
}

fn describe(status: std::io::Result<std::process::ExitStatus>) -> String {
    status.map_or_else(|e| e.to_string(), |s| s.to_string())
}

/// Every node's name, files and ports: node N tries the wanted ports + N - 1.
fn node_plans(args: &Args, notes: &mut Vec<String>) -> anyhow::Result<Vec<NodePlan>> {
    let total = usize::from(args.nodes);
    let mut plans = Vec::with_capacity(total);
    for (number, offset) in (1..=total).zip(0u16..) {
        let wanted = |port: u16| {
            if port == 0 {
                0
            } else {
                port.saturating_add(offset)
            }
        };
        let mqtt = free_or_other(wanted(args.mqtt_port), "MQTT", notes);
        let dashboard = free_or_other(wanted(args.dashboard_port), "dashboard", notes);
        plans.push(NodePlan::new(
            &args.data_dir,
            number,
            total,
            (mqtt, dashboard),
        ));
    }
    nodes::assign_cluster_ports(&mut plans)?;
    Ok(plans)
}

struct DemoTls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A private CA and a certificate for 127.0.0.1 and localhost signed by it, made anew at
/// every start: the broker trusts the CA through `telemetry.ca_file`, as a company running
/// its own collector would.
fn make_certificates(dir: &Path) -> anyhow::Result<DemoTls> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Beacon demo CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate()?;
    let server_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let server_cert = server_params.signed_by(&server_key, &issuer)?;
    let files = DemoTls {
        ca: dir.join("ca.pem"),
        cert: dir.join("collector.pem"),
        key: dir.join("collector.key"),
    };
    for (path, text) in [
        (&files.ca, ca_cert.pem()),
        (&files.cert, server_cert.pem()),
        (&files.key, server_key.serialize_pem()),
    ] {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files)
}

/// Synthetic reports seeded into a new demo database, so the console has a history to show.
const DEMO_HISTORY: usize = 20_000;

/// At the first run: a year of synthetic history, and the console's admin with the demo
/// password. Later runs keep what is there.
async fn prepare_console(store: &Arc<dyn Store>, password: &str) -> anyhow::Result<()> {
    if store.count().await? == 0 {
        println!(
            "beacon demo: seeding {DEMO_HISTORY} synthetic reports of history (first run only)"
        );
        let today = chrono::Utc::now().date_naive();
        let progress = Progress::start("beacon demo: seeded", "reports", DEMO_HISTORY as u64);
        let history = progress.count(beacon_seed::generate(DEMO_HISTORY, today, 1));
        store
            .bulk_insert(Box::new(history))
            .await
            .context("cannot seed the demo history")?;
        progress.finish();
    }
    if store.password_hash("admin").await?.is_none() {
        let hash = beacon_auth::hash_password(password)?;
        store.add_user("admin", &hash).await?;
    }
    Ok(())
}

/// `wanted` if it can be bound on every interface now, else a free port (noted).
fn free_or_other(wanted: u16, what: &str, notes: &mut Vec<String>) -> u16 {
    if wanted != 0 && TcpListener::bind((Ipv4Addr::UNSPECIFIED, wanted)).is_ok() {
        return wanted;
    }
    let free = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port());
    if wanted != 0 {
        notes.push(format!(
            "port {wanted} is taken (another broker?), so the {what} listener uses port {free}"
        ));
    }
    free
}

/// The demo's dashboard password: made at the first demo run, then kept in the demo's
/// directory (readable only by its owner) so that every run prints the same one.
fn demo_password(dir: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("dashboard-password");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_owned());
    }
    let password = beacon_auth::random_password();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(password.as_bytes())?;
    Ok(password)
}

/// A cluster's nodes wait this long before their first report: the cluster forms in
/// about 5 s, and a report sent before a node has adopted the cluster's `cluster_uuid`
/// would count it as a cluster of its own that week.
const CLUSTER_INITIAL_DELAY: &str = "12s";

/// The config every node shares; `nodes.rs` adds each node's listeners and seeds.
fn shared_config_text(args: &Args, collector_url: &str, ca: &Path, password: &str) -> String {
    let initial_delay = if args.nodes > 1 {
        CLUSTER_INITIAL_DELAY
    } else {
        "3s"
    };
    format!(
        r#"dashboard.default_password = "{password}"
telemetry {{
  url = "{collector_url}/api/telemetry"
  ca_file = "{ca}"
  interval = {interval}
  initial_delay = {initial_delay}
}}
retainer {{ enable = true }}
delayed {{ enable = true }}
rewrite = [
  {{ action = all, source_topic = "legacy/#", re = "^legacy/(.+)$", dest_topic = "demo/$1" }}
]
auto_subscribe.topics = [ {{ topic = "demo/announcements", qos = 1 }} ]
"#,
        ca = ca.display(),
        interval = args.interval,
    )
}

/// Publishers and a subscriber that keep the brokers' numbers moving until dropped: the
/// subscriber on the first node, the publishers spread over the others (all on the first
/// when it runs alone).
fn start_clients(nodes: &[DemoNode]) -> JoinSet<()> {
    let port = |node: &DemoNode| node.mqtt.port();
    let mut clients = JoinSet::new();
    clients.spawn(subscriber(port(&nodes[0])));
    let publishing = if nodes.len() > 1 { &nodes[1..] } else { nodes };
    for (n, node) in (0..PUBLISHERS).zip(publishing.iter().cycle()) {
        clients.spawn(publisher(port(node), n));
    }
    clients
}

fn client(id: &str, port: u16) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 64)
}

/// A lost connection (a node restarting) is retried after this; rumqttc reconnects on
/// the next poll.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// Keeps the client connected until its task is dropped.
async fn drive(mut events: rumqttc::EventLoop) {
    loop {
        if events.poll().await.is_err() {
            tokio::time::sleep(RECONNECT_EVERY).await;
        }
    }
}

/// Subscribes at every (re)connection: the session is clean.
async fn subscriber(port: u16) {
    let (client, mut events) = client("demo-subscriber", port);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let _ = client.try_subscribe("demo/#", QoS::AtLeastOnce);
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(RECONNECT_EVERY).await,
        }
    }
}

async fn publisher(port: u16, n: usize) {
    let (client, events) = client(&format!("demo-sensor-{n}"), port);
    let topic = format!("demo/sensor/{n}");
    tokio::spawn(drive(events));
    let _ = client
        .publish(
            format!("{topic}/model"),
            QoS::AtLeastOnce,
            true,
            "beacon-demo",
        )
        .await;
    let mut reading = 20.0_f64;
    loop {
        reading += 0.1;
        let payload = format!("{{\"temperature\":{reading:.1}}}");
        if client
            .publish(&topic, QoS::AtMostOnce, false, payload)
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(PUBLISH_EVERY).await;
    }
}

struct BannerFacts<'a> {
    collector_url: &'a str,
    console_url: &'a str,
    db: &'a str,
    nodes: &'a [DemoNode],
    password: &'a str,
    interval: &'a str,
    notes: &'a [String],
}

fn print_banner(facts: &BannerFacts<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for note in facts.notes {
        writeln!(out, "beacon demo: {note}")?;
    }
    writeln!(
        out,
        "beacon demo: collector   {} (HTTPS, private CA; storage {})",
        facts.collector_url, facts.db
    )?;
    let what = match facts.nodes.len() {
        1 => "this broker".to_owned(),
        n => format!("this cluster of {n} nodes"),
    };
    writeln!(
        out,
        "beacon demo: console     {}{}/overview  user admin, password {} (seeded history + {what})",
        facts.console_url,
        beacon_console::PREFIX,
        facts.password
    )?;
    for node in facts.nodes {
        writeln!(
            out,
            "beacon demo: MQTT broker mqtt://127.0.0.1:{}  dashboard http://{}  ({}, log {})",
            node.mqtt.port(),
            node.dashboard,
            node.name,
            node.log.display()
        )?;
    }
    if facts.nodes.len() > 1 {
        writeln!(
            out,
            "beacon demo: clients     a subscriber on {}, publishers on the other nodes",
            facts.nodes[0].name
        )?;
    }
    writeln!(
        out,
        "beacon demo: dashboards  user admin, password {}",
        facts.password
    )?;
    writeln!(
        out,
        "beacon demo: each node reports to the collector every {}; Ctrl-C stops everything",
        facts.interval
    )?;
    out.flush()
}
