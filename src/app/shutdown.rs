//! Waiting for the signals that stop the server (SIGINT, SIGTERM).
//!
//! Invariant: a signal only cancels the process token; what stops (queries with
//! `shutting_down`, then actix, within `shutdown_timeout`) follows from that one token.

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
