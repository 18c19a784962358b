//! The dashboard's listener: served through `beacon_listener` with the limits of
//! `dashboard.listeners.http` (EMQX's `max_connections`, and Beacon's per-IP cap and
//! timeouts under the same listener; `idle_timeout` is the name of EMQX's MQTT listeners).

use std::net::SocketAddr;
use std::time::Duration;

use beacon_config::Config;
use beacon_listener::{Handle, Limits};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::NodeError;

const PREFIX: &str = "dashboard.listeners.http";
/// EMQX's default for `dashboard.listeners.http.max_connections`.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long open requests may finish once the node stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The dashboard's limits from the config; unset keys keep their defaults.
pub(crate) fn limits(config: &Config) -> Result<Limits, NodeError> {
    let count = |name: &str, default: usize| -> Result<usize, NodeError> {
        let value = config.u64(&format!("{PREFIX}.{name}"))?;
        Ok(value.map_or(default, |v| usize::try_from(v.value).unwrap_or(usize::MAX)))
    };
    let time = |name: &str, default: Duration| -> Result<Duration, NodeError> {
        let value = config.duration(&format!("{PREFIX}.{name}"))?;
        Ok(value.map_or(default, |v| v.value))
    };
    Ok(Limits {
        header_read_timeout: time("header_read_timeout", Limits::DEFAULT_HEADER_READ_TIMEOUT)?,
        body_read_timeout: time("body_read_timeout", Limits::DEFAULT_BODY_READ_TIMEOUT)?,
        idle_timeout: time("idle_timeout", Limits::DEFAULT_IDLE_TIMEOUT)?,
        max_connections: count("max_connections", DEFAULT_MAX_CONNECTIONS)?,
        max_connections_per_ip: count(
            "max_connections_per_ip",
            Limits::DEFAULT_MAX_CONNECTIONS_PER_IP,
        )?,
    })
}

/// Serves `app` on `listener` (bound at `addr`) within `limits` until `stopped` resolves.
pub(crate) fn serve_dashboard(
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    limits: Limits,
    app: axum::Router,
    stopped: oneshot::Receiver<()>,
) -> Result<JoinHandle<()>, NodeError> {
    let listener = listener
        .into_std()
        .map_err(|source| NodeError::DashboardBind { addr, source })?;
    let handle = Handle::<SocketAddr>::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        let _ = stopped.await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    Ok(tokio::spawn(async move {
        if let Err(error) = beacon_listener::serve(listener, None, handle, app, limits).await {
            tracing::error!(%error, "dashboard listener failed");
        }
    }))
}
