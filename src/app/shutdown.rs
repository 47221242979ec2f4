//! Waiting for the signals that stop the server (SIGINT, SIGTERM), and the deadline after
//! which draining becomes stopping.
//!
//! Invariant: a signal only cancels tokens. The first cancels the drain token (what drains
//! follows from it); the process token follows after the drain deadline or at a second
//! signal, and everything that stops (queries with `shutting_down`, then actix) follows from
//! that one token.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Cancels `process` after `deadline`, or at once on a second signal.
pub async fn hard_stop(process: CancellationToken, deadline: Duration) {
    tokio::select! {
        _ = process.cancelled() => return,
        _ = tokio::time::sleep(deadline) => {}
        _ = wait_for_signal() => tracing::info!("second signal: stopping now"),
    }
    process.cancel();
}

/// Resolves at the first SIGINT or SIGTERM (never, if the handlers cannot be installed).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
