//! The hostile ingest corpus (`tests/corpus/ingest/cases.json` at the repository root):
//! every case against a real collector on 127.0.0.1, on each backend. A refused case gets
//! its 4xx JSON error and stores nothing; an accepted one (hostile text that is valid data)
//! is stored verbatim; afterwards the collector still accepts a good report and the
//! process's memory has stayed bounded.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use beacon_collector::{CollectorConfig, RateLimit};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;
use serde_json::Value;
use support::{Running, backends, client, json_of, local, today};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

/// How much the test process's resident memory may grow over the whole corpus (client
/// and collector share it): generous, but far below what a decoded bomb would take.
const RSS_GROWTH_LIMIT_KB: u64 = 256 * 1024;
/// The listener's body deadline in this test (30 s by default), so that the cases that
/// never finish their body end soon.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    body: BodySpec,
    transform: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    raw: Option<String>,
    expect: Expect,
}

#[derive(Deserialize)]
struct BodySpec {
    text: Option<String>,
    #[serde(default)]
    seed: bool,
    #[serde(default)]
    set: BTreeMap<String, Value>,
    truncate: Option<usize>,
    #[serde(default)]
    replace: Vec<(String, String)>,
    repeat: Option<Repeat>,
    nest: Option<Nest>,
    hex: Option<String>,
}

#[derive(Deserialize)]
struct Repeat {
    unit: String,
    count: usize,
}

#[derive(Deserialize)]
struct Nest {
    open: String,
    #[serde(default)]
    inner: String,
    close: String,
    count: usize,
}

#[derive(Deserialize)]
struct Expect {
    status: u16,
    code: Option<String>,
    #[serde(default)]
    verbatim: Vec<String>,
    within_secs: Option<u64>,
}

fn corpus() -> Vec<Case> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/ingest/cases.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let corpus: Corpus = serde_json::from_str(&text).expect("cases.json is a corpus");
    corpus.cases
}

/// The bytes of a case's body, built from its recipe, before any transform.
fn body(spec: &BodySpec) -> Vec<u8> {
    let mut text = if spec.seed {
        seed_text(&spec.set)
    } else {
        spec.text.clone().expect("a body has text or seed")
    };
    if let Some(len) = spec.truncate {
        text.truncate(len);
    }
    for (from, to) in &spec.replace {
        assert!(text.contains(from.as_str()), "{from:?} not in the body");
        text = text.replacen(from.as_str(), to, 1);
    }
    if let Some(Repeat { unit, count }) = &spec.repeat {
        let repeated = if unit.contains('#') {
            (0..*count)
                .map(|i| unit.replace('#', &i.to_string()))
                .collect()
        } else {
            unit.repeat(*count)
        };
        text = text.replace("$REPEAT", &repeated);
    }
    if let Some(nest) = &spec.nest {
        let nested = format!(
            "{}{}{}",
            nest.open.repeat(nest.count),
            nest.inner,
            nest.close.repeat(nest.count)
        );
        text = text.replace("$NEST", &nested);
    }
    let bytes = spec.hex.as_deref().map(|hex| {
        let digits: String = hex.split_whitespace().collect();
        hex::decode(digits).expect("hex bytes")
    });
    match text.split_once("$BYTES") {
        Some((before, after)) => {
            let mut out = before.as_bytes().to_vec();
            out.extend(bytes.expect("$BYTES needs hex"));
            out.extend_from_slice(after.as_bytes());
            out
        }
        None => text.into_bytes(),
    }
}

/// The seed report with `set` applied, as compact JSON; a fresh uuid unless set.
fn seed_text(set: &BTreeMap<String, Value>) -> String {
    let mut doc: Value =
        serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed is JSON");
    doc["uuid"] = uuid::Uuid::new_v4()
        .hyphenated()
        .to_string()
        .to_uppercase()
        .into();
    for (pointer, value) in set {
        let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
        let object = doc
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {parent:?} of the seed"));
        object.insert(key.to_owned(), value.clone());
    }
    doc.to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

fn transformed(body: Vec<u8>, transform: Option<&str>) -> Vec<u8> {
    match transform {
        None => body,
        Some("gzip") => gzip(&body),
        Some("gzip_twice") => gzip(&gzip(&body)),
        Some("gzip_two_members") => {
            let (first, second) = body.split_at(body.len() / 2);
            [gzip(first), gzip(second)].concat()
        }
        Some("gzip_trailing_garbage") => [gzip(&body), b"garbage".to_vec()].concat(),
        Some("gzip_truncated") => {
            let whole = gzip(&body);
            whole[..whole.len() / 2].to_vec()
        }
        Some(other) => panic!("unknown transform {other}"),
    }
}

/// Resident memory of this process, in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_is_refused_cleanly_or_stored_as_data() {
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus holds {} cases", cases.len());
    for backend in backends().await {
        let mut config = CollectorConfig::new(local());
        config.rate_limit = RateLimit::disabled();
        config.connections.body_read_timeout = BODY_READ_TIMEOUT;
        let collector = Running::with_config(backend.store.clone(), config, client()).await;
        let rss_before = rss_kb();
        let (raw, http): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|c| c.raw.is_some());
        // The clients that never finish their body wait for the collector's timeout: run
        // them beside the rest of the corpus.
        let addr = collector.base.trim_start_matches("http://").to_owned();
        let stalled: Vec<_> = raw
            .iter()
            .map(|case| {
                let kind = case.raw.clone().expect("a raw case");
                let body = body(&case.body);
                let within = Duration::from_secs(case.expect.within_secs.unwrap_or(10));
                tokio::spawn(raw_exchange(addr.clone(), kind, body, within))
            })
            .collect();
        let mut unexpected = Vec::new();
        for case in http {
            unexpected.extend(check_http_case(&collector, case, backend.name).await);
        }
        for (case, exchange) in raw.iter().zip(stalled) {
            let outcome = exchange.await.expect("raw client task");
            unexpected.extend(check_raw_case(case, &outcome, backend.name));
            let count = collector.store.count().await.expect("count");
            assert_eq!(
                count,
                count_after_http(&cases),
                "{}: {}",
                backend.name,
                case.name
            );
        }
        assert!(
            unexpected.is_empty(),
            "unexpected answers:\n{}",
            unexpected.join("\n")
        );
        let rss_after = rss_kb();
        assert!(
            rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KB,
            "{}: resident memory grew from {rss_before} kB to {rss_after} kB",
            backend.name
        );
        let good = seed_text(&BTreeMap::new());
        let (status, answer) = json_of(collector.post_json(good).await).await;
        assert_eq!(
            status, 201,
            "{}: a good report after the corpus: {answer}",
            backend.name
        );
        collector.stop().await;
    }
}

/// Reports the corpus stores: one per accepted case, each of its own node.
fn count_after_http(cases: &[Case]) -> u64 {
    cases.iter().filter(|c| c.expect.status < 300).count() as u64
}

/// Sends one case and checks what it did to the store; an answer other than the expected
/// status and code is returned, so that one run lists them all.
async fn check_http_case(collector: &Running, case: &Case, backend: &str) -> Option<String> {
    let label = format!("{backend}: case {:?}", case.name);
    let sent = transformed(body(&case.body), case.transform.as_deref());
    let json = BTreeMap::from([("content-type".to_owned(), support::JSON.to_owned())]);
    let headers = case.headers.as_ref().unwrap_or(&json);
    let mut request = collector.client.post(collector.url("/api/telemetry"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let before = collector.store.count().await.expect("count");
    let started = Instant::now();
    let response = request.body(sent.clone()).send().await;
    let response = response.unwrap_or_else(|error| panic!("{label}: no answer: {error}"));
    let (status, answer) = json_of(response).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{label}: answered after {:?}",
        started.elapsed()
    );
    let after = collector.store.count().await.expect("count");
    if status >= 300 {
        assert_eq!(after, before, "{label}: a refused request stored something");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{label}: {answer}"
        );
    }
    if status != case.expect.status || answer["code"].as_str() != case.expect.code.as_deref() {
        return Some(format!("{label}: {status} {answer}"));
    }
    if status >= 300 {
        return None;
    }
    assert_eq!(after, before + 1, "{label}: one report stored");
    let uuid = answer["uuid"].as_str().expect("the stored uuid");
    let day = answer["day"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(today);
    let stored = collector.stored(uuid, day).await;
    let sent: Value = serde_json::from_slice(&sent).expect("an accepted body is JSON");
    let kept: Value = serde_json::from_str(&stored.raw).expect("the stored report is JSON");
    for pointer in &case.expect.verbatim {
        assert_eq!(
            kept.pointer(pointer),
            sent.pointer(pointer),
            "{label}: {pointer}"
        );
    }
    let columns = [
        ("/os_name", stored.os_name.as_deref()),
        ("/os_version", stored.os_version.as_deref()),
        ("/emqx_version", Some(stored.emqx_version.as_str())),
    ];
    for (pointer, column) in columns {
        assert_eq!(
            column,
            sent.pointer(pointer).and_then(Value::as_str),
            "{label}: column {pointer}"
        );
    }
    None
}

/// What a raw TCP client saw.
#[derive(Debug)]
enum Outcome {
    /// A complete answer: status and body.
    Answered(u16, String),
    /// The collector closed the connection without answering.
    Closed,
    /// No complete answer within the bound, only these bytes: no timeout ended the request.
    StillOpen(String),
}

/// Sends the request head of `kind` and part of `body`, then reads until an answer, a
/// close, or `within` passes.
async fn raw_exchange(addr: String, kind: String, body: Vec<u8>, within: Duration) -> Outcome {
    let mut stream = TcpStream::connect(&addr)
        .await
        .expect("connect to the collector");
    let head = |framing: String| {
        format!(
            "POST /api/telemetry HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{framing}\r\n"
        )
    };
    let (head, sent) = match kind.as_str() {
        "huge_length" => (head("content-length: 1000000000\r\n".into()), body.clone()),
        "short_body" => (
            head(format!("content-length: {}\r\n", body.len() + 100)),
            body.clone(),
        ),
        "chunked_forever" => {
            let half = &body[..body.len() / 2];
            let mut chunk = format!("{:x}\r\n", half.len()).into_bytes();
            chunk.extend_from_slice(half);
            chunk.extend_from_slice(b"\r\n");
            (head("transfer-encoding: chunked\r\n".into()), chunk)
        }
        other => panic!("unknown raw kind {other}"),
    };
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    stream
        .write_all(&sent)
        .await
        .expect("send part of the body");
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0_u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
            if answer_of(&received).is_some() {
                return;
            }
        }
    })
    .await;
    match answer_of(&received) {
        Some((status, body)) => Outcome::Answered(status, body),
        None if read.is_ok() => Outcome::Closed,
        None => Outcome::StillOpen(String::from_utf8_lossy(&received).into_owned()),
    }
}

/// Status and body of a complete HTTP/1.1 answer in `bytes` (by its Content-Length).
fn answer_of(bytes: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })?;
    (body.len() >= length).then(|| (status, body[..length].to_owned()))
}

/// Checks what a raw client saw; a description of an unexpected outcome.
fn check_raw_case(case: &Case, outcome: &Outcome, backend: &str) -> Option<String> {
    let label = format!("{backend}: case {:?}", case.name);
    match outcome {
        Outcome::Answered(status, body) => {
            let answer: Value = serde_json::from_str(body).unwrap_or_default();
            let fits = *status == case.expect.status
                && answer["code"].as_str() == case.expect.code.as_deref()
                && answer["message"].is_string();
            (!fits).then(|| format!("{label}: answered {status}: {body}"))
        }
        Outcome::Closed => Some(format!("{label}: closed without an answer")),
        Outcome::StillOpen(received) => Some(format!(
            "{label}: no answer within {} s; received {received:?}",
            case.expect.within_secs.unwrap_or(10)
        )),
    }
}
