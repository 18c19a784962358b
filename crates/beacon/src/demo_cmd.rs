//! `beacon demo`: a collector on embedded SQLite over HTTPS (certificate made at start),
//! a broker node reporting to it every few seconds, and a few MQTT clients so that the
//! numbers move. Prints where to look; Ctrl-C stops everything.

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
use beacon_config::Config;
use beacon_console::ConsoleOptions;
use beacon_node::{Node, NodeOptions};
use beacon_store::Store;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio::task::JoinSet;

use crate::node_config;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo keeps its collector database, certificates and node data.
    #[arg(long, value_name = "DIR", default_value = "data/demo")]
    data_dir: PathBuf,
    /// MQTT port to try first; a taken port (another broker) is replaced by a free one.
    #[arg(long, default_value_t = 1883)]
    mqtt_port: u16,
    /// Dashboard port to try first; a taken port is replaced by a free one.
    #[arg(long, default_value_t = 18083)]
    dashboard_port: u16,
    /// How often the broker reports (HOCON duration); short so the collector fills up.
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

    let mut notes = Vec::new();
    let mqtt_port = free_or_other(args.mqtt_port, "MQTT", &mut notes);
    let dashboard_port = free_or_other(args.dashboard_port, "dashboard", &mut notes);
    let config = Config::from_str(
        &node_config_text(
            &args,
            mqtt_port,
            dashboard_port,
            &collector_url,
            &tls.ca,
            &password,
        ),
        &args.data_dir.join("emqx.conf"),
        beacon_config::process_env(),
    )
    .context("the demo's broker configuration is invalid")?;
    let node = Node::start(NodeOptions {
        config,
        data_dir: args.data_dir.join("node"),
        do_not_track: node_config::do_not_track(),
    })
    .await
    .context("cannot start the demo broker")?;
    let mqtt = node
        .mqtt_addr()
        .context("the demo broker has no MQTT listener")?;
    let clients = start_clients(mqtt.port());

    print_banner(&BannerFacts {
        collector_url: &collector_url,
        console_url: &console_url,
        db: &db,
        mqtt,
        dashboard: node.http_addr(),
        password: &password,
        interval: &args.interval,
        notes: &notes,
    })?;

    match args.stop_after {
        Some(seconds) => tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
            () = crate::signals::shutdown_signal() => {}
        },
        None => crate::signals::shutdown_signal().await,
    }
    println!("beacon demo: stopping");
    drop(clients);
    node.shutdown().await;
    let _ = stop_collector.send(());
    collector_task
        .await
        .context("the demo collector task failed")??;
    println!("beacon demo: stopped");
    Ok(())
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

fn node_config_text(
    args: &Args,
    mqtt_port: u16,
    dashboard_port: u16,
    collector_url: &str,
    ca: &Path,
    password: &str,
) -> String {
    format!(
        r#"# Written by `beacon demo`.
listeners.tcp.default.bind = "0.0.0.0:{mqtt_port}"
dashboard {{
  listeners.http.bind = "127.0.0.1:{dashboard_port}"
  default_password = "{password}"
}}
telemetry {{
  url = "{collector_url}/api/telemetry"
  ca_file = "{ca}"
  interval = {interval}
  initial_delay = 3s
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

/// Publishers and a subscriber that keep the broker's numbers moving until dropped.
fn start_clients(port: u16) -> JoinSet<()> {
    let mut clients = JoinSet::new();
    clients.spawn(subscriber(port));
    for n in 0..PUBLISHERS {
        clients.spawn(publisher(port, n));
    }
    clients
}

fn client(id: &str, port: u16) -> (AsyncClient, rumqttc::EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 64)
}

async fn subscriber(port: u16) {
    let (client, mut events) = client("demo-subscriber", port);
    if client.subscribe("demo/#", QoS::AtLeastOnce).await.is_err() {
        return;
    }
    while events.poll().await.is_ok() {}
}

async fn publisher(port: u16, n: usize) {
    let (client, mut events) = client(&format!("demo-sensor-{n}"), port);
    let topic = format!("demo/sensor/{n}");
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
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
    mqtt: SocketAddr,
    dashboard: SocketAddr,
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
    writeln!(
        out,
        "beacon demo: console     {}{}/overview  user admin, password {} (seeded history + this broker)",
        facts.console_url,
        beacon_console::PREFIX,
        facts.password
    )?;
    writeln!(
        out,
        "beacon demo: MQTT broker mqtt://127.0.0.1:{}",
        facts.mqtt.port()
    )?;
    writeln!(
        out,
        "beacon demo: dashboard   http://{}  user admin, password {}",
        facts.dashboard, facts.password
    )?;
    writeln!(
        out,
        "beacon demo: the broker reports to the collector every {}; Ctrl-C stops everything",
        facts.interval
    )?;
    out.flush()
}
