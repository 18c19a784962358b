//! The dashboard listener's limits (`dashboard.listeners.http.*`) on a real node: a
//! slowloris client is closed within the header timeout, and connections over the caps
//! are closed at once. Source addresses 127.0.0.x stand for distinct clients.

use crate::support;

use std::time::Duration;

use beacon_listener::testing::{closed_after, connect_from};
use tokio::io::AsyncWriteExt;

const LIMITS: &str = "dashboard.listeners.http.header_read_timeout = 2s\n\
                      dashboard.listeners.http.max_connections = 3\n\
                      dashboard.listeners.http.max_connections_per_ip = 2\n";

#[tokio::test]
async fn the_dashboard_closes_slow_clients_and_connections_over_its_caps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = support::start(dir.path(), LIMITS, &[]).await;
    let to = node.http_addr();

    let mut slow = connect_from(2, to).await;
    slow.write_all(b"GET /api/v5/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
        .await
        .expect("half a header");
    let elapsed = closed_after(&mut slow, Duration::from_secs(6)).await;
    let elapsed = elapsed.expect("the slow client was closed");
    assert!(
        elapsed > Duration::from_millis(1500) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, the header timeout is 2 s"
    );

    let mut held = Vec::new();
    for host in [3, 3, 4] {
        let mut stream = connect_from(host, to).await;
        let closed = closed_after(&mut stream, Duration::from_millis(300)).await;
        assert_eq!(closed, None, "a connection under the caps was closed");
        held.push(stream);
    }
    for (host, what) in [(3, "third from one IP"), (5, "fourth in all")] {
        let mut stream = connect_from(host, to).await;
        let closed = closed_after(&mut stream, Duration::from_secs(1)).await;
        assert!(closed.is_some(), "{what}: not closed at once");
    }
    drop(held);
    node.shutdown().await;
}
