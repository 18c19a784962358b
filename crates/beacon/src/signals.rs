//! Stopping on SIGINT (Ctrl-C) or SIGTERM, for every long-running subcommand.

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::warn!(error = %err, "cannot watch SIGTERM; stopping on SIGINT only");
            wait_ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        () = wait_ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn wait_ctrl_c() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %err, "cannot watch SIGINT");
        std::future::pending::<()>().await;
    }
}
