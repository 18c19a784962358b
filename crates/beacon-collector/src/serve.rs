//! Serving: binding the listener (and the console's, if it has its own), TLS, the
//! connection limits (both listeners, through `beacon_listener`), the background jobs (limiter pruning, retention) and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use beacon_listener::Limits;
use beacon_store::{Maintenance, ReportStore, Store};

use crate::config::{CollectorConfig, TlsFiles};
use crate::error::CollectorError;
use crate::rate_limit::PRUNE_INTERVAL;
use crate::retention::retention;
use crate::routes::{private_router, router};
use crate::state::AppState;

/// How long open connections may finish their requests after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Entry point: binds a listener for a configured collector.
#[derive(Debug)]
pub struct Collector;

impl Collector {
    /// Loads the TLS files (if any) and binds the listening socket, so that the address is
    /// known (and errors surface) before serving starts.
    pub async fn bind(
        config: CollectorConfig,
        store: Arc<dyn ReportStore>,
    ) -> Result<BoundCollector, CollectorError> {
        Self::bind_with(config, store, None).await
    }

    /// [`Collector::bind`] with the whole store: also serves self-service deletion and
    /// runs the retention job.
    pub async fn bind_store(
        config: CollectorConfig,
        store: Arc<dyn Store>,
    ) -> Result<BoundCollector, CollectorError> {
        let maintenance: Arc<dyn Maintenance> = store.clone();
        Self::bind_with(config, store, Some(maintenance)).await
    }

    async fn bind_with(
        config: CollectorConfig,
        store: Arc<dyn ReportStore>,
        maintenance: Option<Arc<dyn Maintenance>>,
    ) -> Result<BoundCollector, CollectorError> {
        let tls = match &config.tls {
            Some(files) => Some(load_tls(files).await?),
            None => None,
        };
        let addr = config.listen;
        let bind_error = |source| CollectorError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_error)?
            .into_std()
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let state = AppState::with_maintenance(store, maintenance, config.rate_limit, config.mode);
        Ok(BoundCollector {
            listener,
            local_addr,
            tls,
            state,
            retention_days: config.retention_days,
            console: None,
            limits: config.connections,
        })
    }
}

async fn load_tls(files: &TlsFiles) -> Result<RustlsConfig, CollectorError> {
    RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|source| CollectorError::Tls {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })
}

/// A collector with its socket bound, ready to serve.
pub struct BoundCollector {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    tls: Option<RustlsConfig>,
    state: AppState,
    retention_days: Option<u32>,
    console: Option<ConsoleMount>,
    limits: Limits,
}

/// Extra routes (the private console) and, if it has one, their own listener.
struct ConsoleMount {
    routes: Router,
    listener: Option<(std::net::TcpListener, SocketAddr)>,
}

impl std::fmt::Debug for BoundCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundCollector")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl BoundCollector {
    /// The address actually bound (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL of the service, `http://` or `https://` by the TLS setting.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Also serves `routes` (the private console) and `/metrics`: on a listener of their
    /// own at `listen` (loopback while ingest is public; same TLS setting and limits), or
    /// beside ingest when `listen` is `None`, which puts them wherever ingest is reachable.
    pub fn with_console(
        mut self,
        routes: Router,
        listen: Option<SocketAddr>,
    ) -> Result<Self, CollectorError> {
        let listener = match listen {
            Some(addr) => {
                let bind_error = |source| CollectorError::Bind { addr, source };
                let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
                listener.set_nonblocking(true).map_err(bind_error)?;
                let local_addr = listener.local_addr().map_err(bind_error)?;
                Some((listener, local_addr))
            }
            None => None,
        };
        self.console = Some(ConsoleMount { routes, listener });
        Ok(self)
    }

    /// Base URL of the console's listener: its own, or the ingest one.
    pub fn console_url(&self) -> Option<String> {
        let mount = self.console.as_ref()?;
        let addr = mount
            .listener
            .as_ref()
            .map_or(self.local_addr, |(_, addr)| *addr);
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        Some(format!("{scheme}://{addr}"))
    }

    /// Serves until `shutdown` completes, then lets open requests finish (bounded grace)
    /// so that every answered report is committed.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CollectorError> {
        let Self {
            listener,
            local_addr: addr,
            tls,
            state,
            retention_days,
            console,
            limits,
        } = self;
        let handle = beacon_listener::Handle::<SocketAddr>::new();
        let console_handle = beacon_listener::Handle::<SocketAddr>::new();
        let stoppers = [handle.clone(), console_handle.clone()];
        let stop_task = tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing open requests");
            for stopper in stoppers {
                stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
            }
        });
        let prune_task = tokio::spawn(prune_limiter(state.clone()));
        let retention_task = match (state.maintenance(), retention_days) {
            (Some(maintenance), Some(days)) => {
                Some(tokio::spawn(retention(Arc::clone(maintenance), days)))
            }
            _ => None,
        };
        let mut app = router(state.clone());
        let private = private_router(state);
        let mut console_server = None;
        match console {
            Some(ConsoleMount {
                routes,
                listener: Some((console_listener, console_addr)),
            }) => {
                let routes = routes.merge(private);
                let served = beacon_listener::serve(
                    console_listener,
                    tls.clone(),
                    console_handle,
                    routes,
                    limits,
                );
                console_server = Some(tokio::spawn(async move {
                    if let Err(source) = served.await {
                        let error = CollectorError::Serve {
                            addr: console_addr,
                            source,
                        };
                        tracing::error!(%error, "the console listener stopped");
                    }
                }));
            }
            Some(ConsoleMount {
                routes,
                listener: None,
            }) => app = app.merge(routes).merge(private),
            // Without a console (a library collector, tests) only `/metrics` is private.
            None => app = app.merge(private),
        }
        let served = beacon_listener::serve(listener, tls, handle, app, limits).await;
        if let Some(console_server) = console_server {
            // The console's grace period runs beside ingest's; wait for it, bounded by it.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, console_server).await;
        }
        stop_task.abort();
        prune_task.abort();
        if let Some(task) = retention_task {
            task.abort();
        }
        served.map_err(|source| CollectorError::Serve { addr, source })
    }
}

async fn prune_limiter(state: AppState) {
    if !state.limiter().is_enabled() {
        return;
    }
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tick.tick().await;
        state.limiter().prune();
    }
}
