//! Real parts for the agent's tests: config files, a fake collector with scripted answers,
//! a listener that counts connections, a resolver that records names, log capture.
//! Everything listens on 127.0.0.1 ephemeral ports.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use beacon_agent::dns::{Addrs, Name, Resolve, Resolving};
use beacon_agent::{Agent, AgentHandle, AgentSettings, BrokerReading, Network};
use beacon_config::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Generous upper bound for anything the tests wait for.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Like [`wait_until`] for an async check.
pub async fn wait_until_async<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Settings from a `telemetry { ... }` body and `EMQX_*` variables, as the broker reads them.
pub fn settings(telemetry_block: &str, env: &[(&str, &str)]) -> AgentSettings {
    let text = format!("telemetry {{\n{telemetry_block}\n}}\n");
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let config = Config::from_str(&text, Path::new("etc/emqx.conf"), env).expect("config");
    AgentSettings::from_config(&config, None).expect("settings")
}

/// Settings that report to `url` quickly: `initial_delay` 0, the given interval.
pub fn fast(url: &str, interval: &str) -> AgentSettings {
    settings(
        &format!("url = \"{url}\"\ninterval = {interval}\ninitial_delay = 0s\ntimeout = 30s"),
        &[],
    )
}

pub fn start(settings: AgentSettings, dir: &Path) -> AgentHandle {
    Agent::start(
        settings,
        dir.to_path_buf(),
        Arc::new(BrokerReading::default()),
    )
    .expect("start")
}

/// An agent reporting every `interval` to `collector_url`, once its first report is sent.
pub async fn started_and_reported(
    collector_url: &str,
    interval: &str,
    dir: &Path,
) -> (AgentHandle, chrono::DateTime<chrono::Utc>) {
    let agent = start(fast(collector_url, interval), dir);
    wait_until("the first report", || {
        agent.status().last_report_at.is_some()
    })
    .await;
    let last = agent.status().last_report_at.expect("last report time");
    (agent, last)
}

pub fn start_with_resolver(
    settings: AgentSettings,
    dir: &Path,
    resolver: &Arc<RecordingResolver>,
) -> AgentHandle {
    let network = Network {
        resolver: Some(resolver.clone()),
    };
    let broker = Arc::new(BrokerReading::default());
    Agent::start_with(settings, dir.to_path_buf(), broker, network).expect("start")
}

/// Resolves every name to one loopback address, remembering the names asked for.
#[derive(Debug)]
pub struct RecordingResolver {
    target: SocketAddr,
    names: Mutex<Vec<String>>,
}

impl RecordingResolver {
    pub fn new(target: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            target,
            names: Mutex::new(Vec::new()),
        })
    }

    pub fn names(&self) -> Vec<String> {
        self.names.lock().expect("names").clone()
    }
}

impl Resolve for RecordingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        self.names
            .lock()
            .expect("names")
            .push(name.as_str().to_owned());
        let addr = self.target;
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) })
    }
}

/// A TCP listener that counts connections and holds them open without answering.
pub struct CountingListener {
    pub addr: SocketAddr,
    accepts: Arc<AtomicUsize>,
    held: mpsc::UnboundedReceiver<TcpStream>,
}

impl CountingListener {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepts = Arc::new(AtomicUsize::new(0));
        let (keep, held) = mpsc::unbounded_channel();
        let counter = accepts.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                if keep.send(stream).is_err() {
                    return;
                }
            }
        });
        Self {
            addr,
            accepts,
            held,
        }
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// The next connection accepted (waits for it).
    pub async fn next_connection(&mut self) -> TcpStream {
        tokio::time::timeout(PATIENCE, self.held.recv())
            .await
            .expect("a connection in time")
            .expect("listener alive")
    }
}

/// One answer of the fake collector.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub retry_after_secs: Option<u64>,
}

impl Reply {
    pub const ACCEPT: Reply = Reply {
        status: 201,
        retry_after_secs: None,
    };

    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after_secs: None,
        }
    }
}

/// What the fake collector received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub report: serde_json::Value,
}

struct FakeState {
    script: Mutex<VecDeque<Reply>>,
    then: Reply,
    received: Mutex<Vec<Received>>,
}

/// An HTTP collector on 127.0.0.1 that answers from a script, then with `then`.
pub struct FakeCollector {
    pub addr: SocketAddr,
    state: Arc<FakeState>,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeCollector {
    pub async fn start(script: &[Reply], then: Reply) -> Self {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            script,
            then,
        )
    }

    pub fn start_on(listener: TcpListener, script: &[Reply], then: Reply) -> Self {
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(FakeState {
            script: Mutex::new(script.iter().copied().collect()),
            then,
            received: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/api/telemetry", axum::routing::post(ingest))
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Self {
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/api/telemetry", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    pub fn count(&self) -> usize {
        self.state.received.lock().expect("received").len()
    }
}

impl Drop for FakeCollector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn ingest(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .expect("gzip body");
    let report = serde_json::from_str(&text).expect("json report");
    state.received.lock().expect("received").push(Received {
        at: Instant::now(),
        headers,
        report,
    });
    let reply = state
        .script
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or(state.then);
    let status = StatusCode::from_u16(reply.status).expect("status");
    match reply.retry_after_secs {
        Some(secs) => (status, [("retry-after", secs.to_string())], "{}").into_response(),
        None => (status, "{\"ok\":true}").into_response(),
    }
}

/// Log lines written while the returned guard lives (this thread only: use the
/// current-thread runtime, where the agent's task runs on the test's thread).
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(logs.clone())
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }

    /// Lines at `level` (e.g. "WARN") that contain `needle`.
    pub fn count(&self, level: &str, needle: &str) -> usize {
        self.text()
            .lines()
            .filter(|l| l.contains(&format!(" {level} ")) && l.contains(needle))
            .count()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A test CA and certificates it issues, written as PEM files.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub cert_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("ca key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("ca cert");
        Self {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost: returns (cert file, key file).
    pub fn issue_server(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("params");
        let (cert, key) = self.sign(&params);
        let cert_path = dir.join(format!("{stem}.crt"));
        let key_path = dir.join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert).expect("write cert");
        std::fs::write(&key_path, key).expect("write key");
        (cert_path, key_path)
    }

    /// A certificate with `params` issued by this CA: (certificate PEM, key PEM).
    pub fn sign(&self, params: &rcgen::CertificateParams) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.cert_pem).expect("write ca");
        path
    }
}
