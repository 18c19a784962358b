//! Connection limits of a real collector on 127.0.0.1: slow and idle clients are closed
//! within their timeouts, the connection caps close the excess at once, and good reports
//! still go through while hundreds of bad connections are held. Source addresses
//! 127.0.0.x stand for distinct clients.

use crate::support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use beacon_collector::{CollectorConfig, ConnectionLimits, RateLimit};
use beacon_listener::testing::{closed_after, connect_from};
use beacon_report::fixtures::SEED_5_0_9;
use support::{Running, client, local, seed_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Short timeouts, so that the tests wait seconds, not minutes.
fn quick() -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(2),
        ..ConnectionLimits::default()
    }
}

async fn collector(limits: ConnectionLimits) -> (support::Backend, Running) {
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.rate_limit = RateLimit::disabled();
    config.connections = limits;
    let running = Running::with_config(backend.store.clone(), config, client()).await;
    (backend, running)
}

fn addr_of(running: &Running) -> SocketAddr {
    let authority = running.base.rsplit("://").next().expect("a base URL");
    authority.parse().expect("an IP:port base URL")
}

/// A refused connection is closed before it is served: at once.
async fn assert_refused(stream: &mut TcpStream, what: &str) {
    assert!(
        closed_after(stream, Duration::from_secs(1)).await.is_some(),
        "{what}: the connection over the cap was not closed"
    );
}

/// An admitted connection waits for its request: still open a moment later.
async fn assert_admitted(stream: &mut TcpStream, what: &str) {
    assert_eq!(
        closed_after(stream, Duration::from_millis(300)).await,
        None,
        "{what}: the connection was closed"
    );
}

/// `GET /healthz` on a raw connection; the status line of the answer.
async fn health_status(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        .await
        .expect("send request");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_slowloris_client_is_closed_within_the_header_timeout() {
    let (_backend, running) = collector(quick()).await;
    let mut stream = connect_from(1, addr_of(&running)).await;
    let (mut reader, mut writer) = stream.split();
    let header = b"POST /api/telemetry HTTP/1.1\r\nHost: collector\r\nX-Slow: aaaaaaaaaaaa";
    let drip = async {
        for byte in header {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let mut buf = [0u8; 1024];
    let started = Instant::now();
    let closed = async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    };
    let elapsed = tokio::select! {
        elapsed = closed => elapsed,
        () = drip => panic!("the server read {} header bytes at one a second", header.len()),
    };
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, the header timeout is 2 s"
    );
    running.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let (_backend, running) = collector(quick()).await;
    let mut stream = connect_from(1, addr_of(&running)).await;
    assert!(health_status(&mut stream).await.contains(" 200 "));
    let closed = closed_after(&mut stream, Duration::from_secs(5)).await;
    let elapsed = closed.expect("the idle connection was closed");
    // The idle timeout (1 s), not the header timeout (2 s).
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_millis(1700),
        "closed after {elapsed:?}"
    );
    running.stop().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused_within_the_body_timeout() {
    let (_backend, running) = collector(quick()).await;
    let mut stream = connect_from(1, addr_of(&running)).await;
    stream
        .write_all(
            b"POST /api/telemetry HTTP/1.1\r\nHost: collector\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await
        .expect("send headers");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    let drip = async {
        for _ in 0..1000 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let mut buf = vec![0u8; 4096];
    let answer = tokio::select! {
        read = reader.read(&mut buf) => read.expect("read the answer"),
        () = drip => panic!("the whole slow body was read"),
    };
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&buf[..answer]);
    assert!(
        elapsed < Duration::from_secs(4),
        "answered after {elapsed:?}: {text}"
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("BODY_READ_TIMEOUT"), "{text}");
    running.stop().await;
}

#[tokio::test]
async fn good_reports_go_through_while_500_bad_connections_are_held() {
    let (_backend, running) = collector(ConnectionLimits::default()).await;
    let to = addr_of(&running);
    let mut held = Vec::new();
    for i in 0..500u16 {
        // Ten sources of 50 connections: under the default cap per IP.
        let host = 10 + u8::try_from(i % 10).expect("small");
        let mut stream = connect_from(host, to).await;
        if i % 2 == 0 {
            stream
                .write_all(b"POST /api/telemetry HTTP/1.1\r\nHost: collector\r\nX-Slow: a")
                .await
                .expect("send half a header");
        }
        held.push(stream);
    }
    for n in 0..20u64 {
        let uuid = uuid::Uuid::new_v4().to_string();
        let started = Instant::now();
        let response = running.post_json(seed_with(&uuid, n)).await;
        assert_eq!(response.status(), 201, "report {n}");
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(1),
            "report {n} took {elapsed:?}"
        );
    }
    for (i, stream) in held.iter_mut().enumerate().step_by(50) {
        assert_admitted(stream, &format!("held connection {i}")).await;
    }
    drop(held);
    running.stop().await;
}

#[tokio::test]
async fn connections_over_the_caps_are_closed_at_once() {
    let limits = ConnectionLimits {
        max_connections: 8,
        max_connections_per_ip: 3,
        ..ConnectionLimits::default()
    };
    let (_backend, running) = collector(limits).await;
    let to = addr_of(&running);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from(20, to).await;
        assert_admitted(&mut stream, "under the cap per IP").await;
        held.push(stream);
    }
    assert_refused(&mut connect_from(20, to).await, "fourth from one IP").await;
    for host in [21, 21, 21, 22, 22] {
        let mut stream = connect_from(host, to).await;
        assert_admitted(&mut stream, "under the global cap").await;
        held.push(stream);
    }
    assert_refused(&mut connect_from(23, to).await, "ninth in all").await;

    // A closed connection gives its place back.
    drop(held.remove(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut stream = connect_from(23, to).await;
        if closed_after(&mut stream, Duration::from_millis(200))
            .await
            .is_none()
        {
            assert!(health_status(&mut stream).await.contains(" 200 "));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was not given back"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn the_tls_listener_has_the_same_limits() {
    let https = support::https();
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.tls = Some(https.files.clone());
    config.connections = ConnectionLimits {
        max_connections_per_ip: 2,
        ..quick()
    };
    let running = Running::with_config(backend.store.clone(), config, https.client).await;
    let to = addr_of(&running);

    // Connected, never starting the handshake: closed by the handshake timeout.
    let mut silent = connect_from(30, to).await;
    let mut second = connect_from(30, to).await;
    assert_refused(
        &mut connect_from(30, to).await,
        "third from one IP over TLS",
    )
    .await;
    let (status, body) = support::json_of(running.post_json(SEED_5_0_9).await).await;
    assert_eq!(status, 201, "{body}");
    let elapsed = closed_after(&mut silent, Duration::from_secs(5)).await;
    let elapsed = elapsed.expect("the silent TLS client was closed");
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    assert!(
        closed_after(&mut second, Duration::from_secs(2))
            .await
            .is_some()
    );
    running.stop().await;
}

/// The status line and body of the answer to a raw request `head`. The server may close
/// before reading all of a huge head: write and read errors end the exchange.
async fn raw_answer(to: SocketAddr, head: &str) -> (String, String) {
    let mut stream = connect_from(1, to).await;
    let _ = stream.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
    });
    assert!(read.await.is_ok(), "no end of the answer in time");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// Heads too large for the service are refused in the API's JSON error shape; only a
/// head beyond hyper's own buffer (64 KiB, a soft limit) gets hyper's empty 431.
#[tokio::test]
async fn heads_too_large_are_refused_in_json() {
    let (_backend, running) = collector(ConnectionLimits::default()).await;
    let to = addr_of(&running);
    let long_uri = format!(
        "GET /healthz?q={} HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
        "a".repeat(10 * 1024)
    );
    let big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: c\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many_headers =
        format!("GET /healthz HTTP/1.1\r\nHost: c\r\n{many}Connection: close\r\n\r\n");
    for (what, head, status, code) in [
        ("a 10 KiB URI", long_uri, "414", "URI_TOO_LONG"),
        ("a 20 KiB header", big_header, "431", "HEADERS_TOO_LARGE"),
        ("150 headers", many_headers, "431", "HEADERS_TOO_LARGE"),
    ] {
        let (line, body) = raw_answer(to, &head).await;
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {line}"
        );
        let json: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("{what}: not JSON ({error}): {body:?}"));
        assert_eq!(json["code"], code, "{what}: {body}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: c\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let (line, body) = raw_answer(to, &huge).await;
    assert!(line.starts_with("HTTP/1.1 431"), "{line}");
    assert_eq!(body, "", "hyper's own refusal");
    running.stop().await;
}
