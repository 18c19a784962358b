//! Raw connections for the tests of the services that use this crate (behind the
//! `testing` feature, for dev-dependencies only): a client from a chosen loopback
//! address, and how long until the server closes it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `to` from the loopback address 127.0.0.`host`, so that a test can
/// stand for many clients.
///
/// # Panics
/// When the socket cannot be bound or connected.
pub async fn connect_from(host: u8, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, host], 0)))
        .expect("bind a loopback source address");
    socket.connect(to).await.expect("connect")
}

/// How long until the server closes `stream` (end of stream or reset), reading what it
/// sends meanwhile; `None` if it is still open after `limit`.
pub async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(limit, async {
        while let Ok(1..) = stream.read(&mut buf).await {}
    })
    .await;
    closed.ok().map(|()| started.elapsed())
}
