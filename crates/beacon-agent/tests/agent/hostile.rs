//! The agent against hostile collectors: small servers on 127.0.0.1 that never answer,
//! trickle, hang up, flood, present untrusted certificates or redirect. Every send ends
//! within `telemetry.timeout`, nothing untrusted counts as delivered, a failure streak
//! logs one warning, and repeated failures leak no threads, descriptors or memory.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beacon_agent::{AgentHandle, AgentSettings, read_sent_log};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::support::{CountingListener, TestCa, capture_logs, settings, start, wait_until};

const NOT_DELIVERED: &str = "telemetry report not delivered";
/// Scheduling and loopback latency on a loaded 2-core CI machine.
const SLACK: Duration = Duration::from_millis(700);
/// An interval whose retries come quickly: the first after 1/64 of it, about 31 ms.
const QUICK_RETRIES: Duration = Duration::from_secs(2);
/// An interval with one period per test: one send, no retries before the next.
const HOUR: Duration = Duration::from_secs(3600);

/// What a hostile server does once the request has started to arrive.
#[derive(Clone)]
enum Script {
    /// Holds the connection open and never writes.
    Silent,
    /// Writes a valid answer one byte per second.
    Trickle,
    /// Writes the start of a status line, then closes.
    HangUp,
    /// Answers 200 claiming a 1 GB body and writes as fast as the client reads.
    Flood,
    /// Answers with this status and `Location`, then waits for the client to close.
    Redirect(u16, String),
}

/// A hostile server on 127.0.0.1, plain or TLS.
struct Hostile {
    addr: std::net::SocketAddr,
    /// How long each connection lasted, from accept until the client closed it.
    lasted: Arc<Mutex<Vec<Duration>>>,
    /// Connections on which request bytes arrived (after the TLS handshake, if any).
    requests: Arc<AtomicUsize>,
    written: Arc<AtomicU64>,
}

impl Hostile {
    async fn start(script: Script, tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let hostile = Self {
            addr: listener.local_addr().expect("addr"),
            lasted: Arc::default(),
            requests: Arc::default(),
            written: Arc::default(),
        };
        let (lasted, requests, written) = (
            hostile.lasted.clone(),
            hostile.requests.clone(),
            hostile.written.clone(),
        );
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let at = Instant::now();
                let (script, tls) = (script.clone(), tls.clone());
                let (lasted, requests, written) =
                    (lasted.clone(), requests.clone(), written.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, script, &requests, &written).await,
                        // A refused handshake ends the connection: nothing to serve.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(tcp).await {
                                serve(stream, script, &requests, &written).await;
                            }
                        }
                    }
                    lasted.lock().expect("lasted").push(at.elapsed());
                });
            }
        });
        hostile
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/api/telemetry", self.addr)
    }

    fn lasted(&self) -> Vec<Duration> {
        self.lasted.lock().expect("lasted").clone()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Waits for the request to start, plays `script`, and returns when the client has
/// closed the connection (or the script hung up).
async fn serve<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    script: Script,
    requests: &AtomicUsize,
    written: &AtomicU64,
) {
    let (mut rx, mut tx) = tokio::io::split(stream);
    let mut buf = vec![0u8; 16 * 1024];
    if !matches!(rx.read(&mut buf).await, Ok(n) if n > 0) {
        return;
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let drain = async { while matches!(rx.read(&mut buf).await, Ok(n) if n > 0) {} };
    let play = async {
        match script {
            Script::Silent => std::future::pending().await,
            Script::Trickle => {
                for byte in b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}" {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if tx.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                }
                std::future::pending().await
            }
            Script::HangUp => {
                let _ = tx.write_all(b"HTTP/1.1 20").await;
                let _ = tx.shutdown().await;
            }
            Script::Flood => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n";
                let chunk = vec![b'x'; 64 * 1024];
                let mut next: &[u8] = head;
                while tx.write_all(next).await.is_ok() {
                    written.fetch_add(next.len() as u64, Ordering::SeqCst);
                    next = &chunk;
                }
            }
            Script::Redirect(status, location) => {
                let answer = format!(
                    "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = tx.write_all(answer.as_bytes()).await;
                std::future::pending().await
            }
        }
    };
    tokio::select! {
        () = drain => {}
        () = play => {}
    }
}

/// A TLS acceptor presenting `cert_pem` and `key_pem`.
fn acceptor(cert_pem: &str, key_pem: &str) -> TlsAcceptor {
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert pem");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key pem");
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(config))
}

fn params_for(names: &[&str]) -> rcgen::CertificateParams {
    rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .expect("params")
}

/// An agent sending to `url` every `interval`, trusting `ca`, with `timeout`. The
/// interval is set directly, so that tests may go below `MIN_INTERVAL`.
fn agent_for(
    url: &str,
    interval: Duration,
    timeout: Duration,
    ca: &TestCa,
    dir: &std::path::Path,
) -> AgentHandle {
    let mut settings: AgentSettings =
        settings(&format!("url = \"{url}\"\ninitial_delay = 0s"), &[]);
    settings.interval = interval;
    settings.timeout = timeout;
    settings.ca_file = Some(ca.write(dir, "ca.pem"));
    start(settings, &dir.join("data"))
}

/// Runs an agent trusting `ca` against a server playing `script` until `failures`
/// attempts failed, then checks that nothing was delivered, one warning was logged and
/// every connection ended within `timeout`. Returns the server and the error shown.
async fn fails_quietly_and_in_time(
    script: Script,
    tls: Option<TlsAcceptor>,
    ca: &TestCa,
    timeout: Duration,
    failures: u64,
) -> (Hostile, String) {
    let (logs, _guard) = capture_logs();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let hostile = Hostile::start(script, tls).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent_for(&hostile.url(scheme), QUICK_RETRIES, timeout, ca, dir.path());
    wait_until("failed attempts", || {
        agent.status().consecutive_failures >= failures
    })
    .await;
    let status = agent.status();
    agent.shutdown().await;
    assert_eq!(status.last_report_at, None, "nothing delivered");
    assert!(
        read_sent_log(&dir.path().join("data"))
            .expect("sent log")
            .is_empty(),
        "no answer recorded"
    );
    assert_eq!(logs.count("WARN", NOT_DELIVERED), 1, "{}", logs.text());
    let lasted = hostile.lasted();
    assert!(!lasted.is_empty());
    assert!(
        lasted.iter().all(|d| *d <= timeout + SLACK),
        "connections lasted {lasted:?} with a {timeout:?} timeout"
    );
    (hostile, status.last_error.expect("an error is shown"))
}

/// A plain-HTTP server playing `script` makes every send time out after `timeout`.
async fn times_out(script: Script, timeout: Duration, failures: u64) {
    let ca = TestCa::new("Trusted CA");
    let (_, error) = fails_quietly_and_in_time(script, None, &ca, timeout, failures).await;
    assert!(error.contains("timed out"), "{error}");
}

#[tokio::test]
async fn a_collector_that_never_answers_times_out() {
    times_out(Script::Silent, Duration::from_millis(500), 3).await;
}

#[tokio::test]
async fn a_collector_answering_one_byte_per_second_times_out() {
    // The first byte comes after 1 s: the status line is still incomplete at 1.5 s.
    times_out(Script::Trickle, Duration::from_millis(1500), 2).await;
}

#[tokio::test]
async fn a_collector_hanging_up_mid_answer_is_a_failure() {
    let ca = TestCa::new("Trusted CA");
    let (hostile, _) =
        fails_quietly_and_in_time(Script::HangUp, None, &ca, Duration::from_secs(1), 3).await;
    assert!(hostile.requests() >= 3);
}

#[tokio::test]
async fn a_one_gigabyte_answer_is_not_read_past_its_start() {
    let hostile = Hostile::start(Script::Flood, None).await;
    let rss_before = proc_status("VmRSS");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("Trusted CA");
    let started = Instant::now();
    let agent = agent_for(
        &hostile.url("http"),
        HOUR,
        Duration::from_secs(10),
        &ca,
        dir.path(),
    );
    wait_until("the answer", || !agent.sent_log().is_empty()).await;
    wait_until("the client closed", || !hostile.lasted().is_empty()).await;
    let took = started.elapsed();
    let sent = agent.sent_log();
    agent.shutdown().await;
    assert_eq!((sent.len(), sent[0].status), (1, 200));
    assert!(
        sent[0].answer.len() <= 2048,
        "{} bytes kept",
        sent[0].answer.len()
    );
    // What the server got to write before the client closed is what loopback socket
    // buffers absorb (a few MB with Linux's default tcp_rmem/tcp_wmem maxima), far
    // below the 1 GB claimed: the agent stopped reading.
    let written = hostile.written.load(Ordering::SeqCst);
    assert!(
        written < 32 << 20,
        "{written} bytes written before the client closed"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let grown = proc_status("VmRSS").saturating_sub(rss_before);
    assert!(grown < 32 << 10, "VmRSS grew by {grown} KiB");
}

/// (name, certificate PEM, key PEM) of the untrusted certificates a collector may show.
fn untrusted_certificates(trusted: &TestCa) -> Vec<(&'static str, String, String)> {
    let mut expired = params_for(&["127.0.0.1", "localhost"]);
    expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
    expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let (expired_cert, expired_key) = trusted.sign(&expired);
    let (other_cert, other_key) = trusted.sign(&params_for(&["collector.example"]));
    let own_key = rcgen::KeyPair::generate().expect("key");
    let own = params_for(&["127.0.0.1", "localhost"])
        .self_signed(&own_key)
        .expect("self-signed");
    vec![
        ("expired", expired_cert, expired_key),
        ("another name", other_cert, other_key),
        ("self-signed", own.pem(), own_key.serialize_pem()),
    ]
}

#[tokio::test]
async fn untrusted_certificates_are_refused_before_any_request() {
    let trusted = TestCa::new("Trusted CA");
    for (what, cert, key) in untrusted_certificates(&trusted) {
        let tls = Some(acceptor(&cert, &key));
        let timeout = Duration::from_secs(2);
        let (hostile, error) =
            fails_quietly_and_in_time(Script::Silent, tls, &trusted, timeout, 2).await;
        assert!(
            error.to_lowercase().contains("certificate"),
            "{what}: {error}"
        );
        assert_eq!(
            hostile.requests(),
            0,
            "{what}: no request after the handshake"
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let ca = TestCa::new("Trusted CA");
    let (cert, key) = ca.sign(&params_for(&["127.0.0.1"]));
    for status in [301, 302, 307] {
        let target = CountingListener::bind().await;
        let port = target.addr.port();
        for location in [
            format!("http://127.0.0.1:{port}/api/telemetry"),
            format!("https://localhost:{port}/api/telemetry"),
        ] {
            let (logs, _guard) = capture_logs();
            let hostile = Hostile::start(
                Script::Redirect(status, location.clone()),
                Some(acceptor(&cert, &key)),
            )
            .await;
            let dir = tempfile::tempdir().expect("tempdir");
            let agent = agent_for(
                &hostile.url("https"),
                HOUR,
                Duration::from_secs(2),
                &ca,
                dir.path(),
            );
            wait_until("the answer", || agent.status().consecutive_failures >= 1).await;
            let (state, sent) = (agent.status(), agent.sent_log());
            agent.shutdown().await;
            assert_eq!(state.last_report_at, None, "{status} to {location}");
            assert_eq!(sent.len(), 1);
            assert_eq!((sent[0].status, sent[0].accepted), (status, false));
            assert_eq!(logs.count("WARN", NOT_DELIVERED), 1, "{}", logs.text());
            assert!(
                hostile
                    .lasted()
                    .iter()
                    .all(|d| *d <= Duration::from_secs(2) + SLACK)
            );
        }
        assert_eq!(
            target.accepts(),
            0,
            "{status}: the redirect target saw a connection"
        );
    }
}

/// A number in /proc/self/status: KiB for `Vm*` lines, a count for `Threads`.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[tokio::test]
async fn a_hundred_timed_out_sends_leak_nothing() {
    const WARM_UP: usize = 10;
    const CYCLES: usize = 100;
    let (logs, _guard) = capture_logs();
    let ca = TestCa::new("Trusted CA");
    let (cert, key) = ca.sign(&params_for(&["127.0.0.1"]));
    let hostile = Hostile::start(Script::Silent, Some(acceptor(&cert, &key))).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let timeout = Duration::from_millis(100);
    // Below MIN_INTERVAL on purpose, so that a hundred periods fit in seconds.
    let interval = Duration::from_millis(200);
    let agent = agent_for(&hostile.url("https"), interval, timeout, &ca, dir.path());

    wait_until("warm-up sends", || hostile.lasted().len() >= WARM_UP).await;
    let before = (proc_status("Threads"), open_fds(), proc_status("VmRSS"));
    wait_until("a hundred more", || {
        hostile.lasted().len() >= WARM_UP + CYCLES
    })
    .await;
    let after = (proc_status("Threads"), open_fds(), proc_status("VmRSS"));
    let status = agent.status();
    agent.shutdown().await;

    assert!(status.consecutive_failures >= CYCLES as u64);
    assert_eq!(
        logs.count("WARN", NOT_DELIVERED),
        1,
        "one warning for the whole streak"
    );
    let lasted = hostile.lasted();
    assert!(lasted.iter().all(|d| *d <= timeout + SLACK), "{lasted:?}");
    // The agent runs on this thread and sends to an IP literal (no resolver thread):
    // a send that left a thread or a socket behind would show a hundred times over.
    assert!(after.0 <= before.0, "threads {} -> {}", before.0, after.0);
    assert!(
        after.1 <= before.1 + 2,
        "open descriptors {} -> {}",
        before.1,
        after.1
    );
    // A connection kept alive costs at least its TLS and HTTP buffers (tens of KiB):
    // a hundred of them would pass 4 MiB; allocator slack stays well under it.
    let grown = after.2.saturating_sub(before.2);
    assert!(
        grown < 4 << 10,
        "VmRSS grew by {grown} KiB over {CYCLES} sends"
    );
}
