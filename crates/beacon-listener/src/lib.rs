//! Accepting HTTP connections with limits, for every listener of both services (the
//! collector's ingest and console listeners, the node's dashboard).
//!
//! It owns the connection-level defences: how long a client may take to send a request's
//! headers and its body, how long a kept-alive connection may stay idle,
//! the TLS handshake deadline, how many connections may be open at once, in all and per
//! source IP, and how large a request's head may be (refused with the JSON error shape
//! `{"code", "message"}` of both services' APIs). Each connection is served by its own
//! task, so a slow client never delays another.
//!
//! It must NOT know routes, reports, users or storage: it serves whatever
//! [`axum::Router`] it is given. The source IP is a key of an in-memory counter only: it
//! is never logged, stored, or kept after the last connection from it closes.

mod caps;
mod refuse;
#[cfg(feature = "testing")]
pub mod testing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
pub use axum_server::Handle;
use axum_server::accept::DefaultAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use tower_http::timeout::RequestBodyDeadlineLayer;

pub use caps::ConnectionCaps;
pub use refuse::{MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES};

/// The limits of one listener. [`Limits::default`] gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request's headers must be complete this long after the connection starts to
    /// wait for them: after accept (or the TLS handshake) and after each answer on a
    /// kept-alive connection. It bounds the TLS handshake too.
    pub header_read_timeout: Duration,
    /// A connection that has sent nothing since its last answer (or since accept) is
    /// closed after this long: the keep-alive idle timeout. Only a shorter value than
    /// `header_read_timeout` changes anything, since that one runs from the same moment.
    pub idle_timeout: Duration,
    /// A request's whole body must arrive this long after its headers.
    pub body_read_timeout: Duration,
    /// Connections open at once on this listener; the excess is closed at accept.
    pub max_connections: usize,
    /// Connections open at once from one source IP; the excess is closed at accept.
    pub max_connections_per_ip: usize,
}

impl Limits {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
    /// EMQX's default `dashboard.listeners.http.max_connections` is 512; a collector
    /// answering many nodes at once gets the same order of magnitude.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    /// Generous, since a NAT can hide many nodes, yet far below the global cap so that
    /// one address cannot take the listener.
    pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: Self::DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) within `limits`, until
/// `handle` stops it. Handlers see the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<RustlsConfig>,
    handle: Handle<SocketAddr>,
    app: Router,
    limits: Limits,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let app = app
        .layer(axum::middleware::from_fn(refuse::oversized_head))
        .layer(RequestBodyDeadlineLayer::new(limits.body_read_timeout))
        .into_make_service_with_connect_info::<SocketAddr>();
    let caps = ConnectionCaps::new(DefaultAcceptor, &limits);
    let mut server = axum_server::from_tcp(listener)?.handle(handle).http1_only();
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(refuse::HYPER_MAX_HEAD)
        .max_headers(refuse::HYPER_MAX_HEADERS);
    // The header clock starts in hyper's HTTP/1 parser; this also bounds a connection
    // that never sends a byte, whatever the protocol detection does.
    let server = server.first_request_timeout(limits.header_read_timeout);
    match tls {
        Some(tls) => {
            let acceptor = RustlsAcceptor::new(http1_only(&tls))
                .handshake_timeout(limits.header_read_timeout)
                .acceptor(caps);
            server.acceptor(acceptor).serve(app).await
        }
        None => server.acceptor(caps).serve(app).await,
    }
}

/// The TLS settings offering only HTTP/1.1 by ALPN: the timeouts above are HTTP/1's, and
/// a client that negotiated h2 would find a server that does not speak it.
fn http1_only(tls: &RustlsConfig) -> RustlsConfig {
    let mut config = (*tls.get_inner()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    RustlsConfig::from_config(Arc::new(config))
}
