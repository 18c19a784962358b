//! Stopping on SIGINT (Ctrl-C) or SIGTERM, for every long-running subcommand.

use std::future::Future;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Completes on SIGINT or SIGTERM. The handlers are installed by this call, not when the
/// future is first polled: a command that prints its start lines after calling it is not
/// killed by a signal sent as soon as those lines are read (scripts and tests do that).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let term = watch(SignalKind::terminate(), "SIGTERM");
    let int = watch(SignalKind::interrupt(), "SIGINT");
    async move {
        tokio::select! {
            () = received(term) => {}
            () = received(int) => {}
        }
    }
}

fn watch(kind: SignalKind, name: &'static str) -> Option<Signal> {
    signal(kind)
        .inspect_err(|error| tracing::warn!(%error, "cannot watch {name}"))
        .ok()
}

/// Completes when `signal` arrives; never when it could not be watched.
async fn received(signal: Option<Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
