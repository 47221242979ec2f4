//! How a query ends when it does not complete: [`Ended`], DuckDB's errors made the gateway's
//! ([`Failures`]), cancellation's reasons made codes, and a failure's metrics outcome and log.
//!
//! Invariants:
//! - A DuckDB error of a query the gateway cancelled is the cancellation, never a failure: a
//!   cancel is read before the error is.
//! - A client never sees a server path (messages pass [`Sandbox::without_paths`]) nor an
//!   `INTERNAL Error` (DuckDB's bug, with its stack trace: logged, shown as `internal`).
//! - One DuckDB message is always the same code: the classification reads only the message, the
//!   cancellation and the extensions the server loads.
//! - A reader that is gone (disconnected, or stalled past the stall timeout) gets no last line.

use crate::duck::{DuckError, DuckErrorKind};
use crate::engine::control::{CancelReason, QueryControl};
use crate::engine::tenant::{self, Tenant};
use crate::error::GatewayError;
use crate::metrics::Outcome;

/// Why the run stopped.
pub(super) enum Ended {
    /// All rows were sent; the `end` line is next.
    Complete,
    /// Failed before the first line: answered through `started`.
    Rejected(GatewayError),
    /// Failed after the first line: an `error` line is next.
    Failed(GatewayError),
    /// The client is gone: nothing more can be sent.
    Gone,
}

/// A failure in the steps before the statement runs (the checks, a derive) is a refusal:
/// answered with a status.
pub(super) fn rejected(end: Ended) -> Ended {
    match end {
        Ended::Failed(e) => Ended::Rejected(e),
        other => other,
    }
}

/// What classifying a DuckDB error needs of the query's tenant. [`Tenant`] is the server's;
/// the unit tests have a stand-in, so the classification is tested without a server.
pub(super) trait Sandbox {
    /// `message` without the server's paths (a client must not learn where files live).
    fn without_paths(&self, message: &str) -> String;
    /// Whether the server loads the extension `name` into tenant databases.
    fn server_loads(&self, name: &str) -> bool;
    /// Whether `message` says the tenant's store (a lake's catalog or object store) could not
    /// be reached.
    fn storage_unreachable(&self, message: &str) -> bool {
        let _ = message;
        false
    }
}

impl Sandbox for Tenant {
    fn without_paths(&self, message: &str) -> String {
        self.redact(message)
    }

    fn server_loads(&self, name: &str) -> bool {
        self.loads_extension(name)
    }

    fn storage_unreachable(&self, message: &str) -> bool {
        Tenant::storage_unreachable(self, message)
    }
}

/// Where a query's DuckDB errors are read: its cancellation (an interrupt the gateway asked for
/// ends the query with the reason it was asked for) and its tenant's [`Sandbox`].
#[derive(Clone, Copy)]
pub(super) struct Failures<'a> {
    pub control: &'a QueryControl,
    pub sandbox: &'a dyn Sandbox,
}

impl Failures<'_> {
    /// Maps a DuckDB error during execution to the gateway's, honouring why it was interrupted.
    pub fn execution_error(&self, e: DuckError) -> Ended {
        let control = self.control;
        if control.is_cancelled() {
            return cancelled(control);
        }
        if e.kind == DuckErrorKind::Interrupted {
            // Not ours: DuckDB stops a query's other threads when one fails, and now and then
            // its fetch reports that interrupt instead of the failure itself (seen with
            // `error()` in a parallel scan). The client still gets a final error line, never a
            // cut stream.
            tracing::warn!(message = %e.message, "DuckDB interrupted a query the gateway did not cancel");
            return Ended::Failed(GatewayError::QueryFailed(
                "DuckDB stopped the query because one of its threads failed, without saying \
                 why; run it again to see the error"
                    .into(),
            ));
        }
        Ended::Failed(classify(e, self.sandbox, |message| {
            if message.starts_with("Out of Memory Error") {
                // The tenant's (or DuckDB's default) memory_limit, not the server's health.
                GatewayError::OutOfMemory(message)
            } else {
                GatewayError::QueryFailed(message)
            }
        }))
    }

    /// DuckDB refused the SQL: a sandbox refusal (its permission errors, external access,
    /// several statements at once) is `forbidden`, anything else `invalid_sql`.
    pub fn sql_error(&self, e: DuckError) -> GatewayError {
        classify(e, self.sandbox, GatewayError::InvalidSql)
    }
}

/// What every DuckDB error is first: a DuckDB bug (an `INTERNAL Error`, whose message carries a
/// stack trace: logged, never shown), a function of an extension the server loads but could
/// not (`extension_unavailable`), or a sandbox refusal; else what `otherwise` makes of the
/// message. Server paths in the message are replaced before a client sees it.
fn classify(
    e: DuckError,
    sandbox: &dyn Sandbox,
    otherwise: impl FnOnce(String) -> GatewayError,
) -> GatewayError {
    if e.message.starts_with("INTERNAL Error") {
        return GatewayError::Internal(Box::new(e));
    }
    if sandbox.storage_unreachable(&e.message) {
        return GatewayError::StorageUnavailable(Box::new(e));
    }
    let message = sandbox.without_paths(&e.message);
    match tenant::missing_extension(&message) {
        Some(ext) if sandbox.server_loads(ext) => GatewayError::ExtensionUnavailable(format!(
            "the query needs DuckDB's {ext} extension, which this server could not load \
             (its operator can point --extension-repository at a copy)"
        )),
        // A feature of an extension that queries may not install or load.
        Some(_) => GatewayError::Forbidden(message),
        None if is_sandbox_refusal(&message) => GatewayError::Forbidden(message),
        None => otherwise(message),
    }
}

fn is_sandbox_refusal(message: &str) -> bool {
    message.starts_with("Permission Error")
        // A write inside the query's read-only transaction (`EXPLAIN ANALYZE DELETE …`).
        || message.contains("transaction is launched in read-only mode")
        || message.contains("multiple statements")
}

/// The query's end if it was cancelled: checked between DuckDB's calls, because DuckDB is
/// interrupted once and forgets an interrupt that came before its current statement began.
#[inline]
pub(super) fn stopped(control: &QueryControl) -> Option<Ended> {
    control.reason().map(|_| cancelled(control))
}

/// The end of a cancelled query.
pub(super) fn cancelled(control: &QueryControl) -> Ended {
    match control.reason() {
        // A reader that took nothing for the stall timeout cannot take a last line either.
        Some(CancelReason::Disconnected | CancelReason::Stalled) | None => Ended::Gone,
        Some(_) => Ended::Failed(cancelled_error(control)),
    }
}

/// The error a cancelled query's last line carries.
pub(super) fn cancelled_error(control: &QueryControl) -> GatewayError {
    match control.reason() {
        Some(CancelReason::Timeout) => GatewayError::Timeout,
        Some(CancelReason::Shutdown) => GatewayError::ShuttingDown,
        Some(CancelReason::TenantDeleted) => GatewayError::TenantDeleted,
        _ => GatewayError::Cancelled,
    }
}

/// How a failed query counts in the metrics.
pub(super) fn outcome_of(e: &GatewayError) -> Outcome {
    match e {
        GatewayError::Cancelled | GatewayError::ShuttingDown | GatewayError::TenantDeleted => {
            Outcome::Cancelled
        }
        GatewayError::Timeout => Outcome::Timeout,
        _ => Outcome::Error,
    }
}

/// Logs a failed query: at error if it is the server's fault, else at debug.
pub(super) fn log_error(e: &GatewayError) {
    if e.is_server_fault() {
        tracing::error!(code = e.code(), error = %e.log_chain(), "query failed");
    } else {
        tracing::debug!(code = e.code(), error = %e.log_chain(), "query refused or stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A server that keeps its data under `/srv/duckstream` and loads the spatial extension.
    struct Server;

    impl Sandbox for Server {
        fn without_paths(&self, message: &str) -> String {
            crate::engine::pool::redact(message, &["/srv/duckstream".to_string()])
        }

        fn server_loads(&self, name: &str) -> bool {
            name == "spatial"
        }
    }

    fn control() -> Arc<QueryControl> {
        QueryControl::new(prometheus::IntCounter::new("interrupts", "interrupts").unwrap())
    }

    fn duck(message: &str) -> DuckError {
        DuckError {
            message: message.to_string(),
            kind: DuckErrorKind::Other,
        }
    }

    /// What DuckDB says when a query is interrupted, whoever asked.
    fn interrupt() -> DuckError {
        DuckError {
            message: "INTERRUPT Error: Interrupted!".into(),
            kind: DuckErrorKind::Interrupted,
        }
    }

    /// The code and client message of `e`'s end, or `gone`.
    fn shown(end: Ended) -> (&'static str, String) {
        match end {
            Ended::Failed(e) | Ended::Rejected(e) => (e.code(), e.client_message()),
            Ended::Gone => ("gone", String::new()),
            Ended::Complete => ("complete", String::new()),
        }
    }

    /// How `message` is shown when DuckDB fails while running, and when it refuses the SQL.
    fn codes(message: &str) -> (&'static str, &'static str) {
        let control = control();
        let failures = Failures {
            control: &control,
            sandbox: &Server,
        };
        let running = shown(failures.execution_error(duck(message))).0;
        (running, failures.sql_error(duck(message)).code())
    }

    #[test]
    fn each_duckdb_message_maps_to_its_code() {
        let cases = [
            (
                "INTERNAL Error: Attempted to access index 3 within vector of size 3\n\nStack Trace:",
                ("internal", "internal"),
            ),
            (
                "Permission Error: File system LocalFileSystem has been disabled by configuration",
                ("forbidden", "forbidden"),
            ),
            (
                "Invalid Input Error: Cannot execute statement of type \"DELETE\" on database \
                 \"t\" which is attached in read-only mode! transaction is launched in read-only \
                 mode",
                ("forbidden", "forbidden"),
            ),
            (
                "Invalid Input Error: Cannot prepare multiple statements at once!",
                ("forbidden", "forbidden"),
            ),
            (
                "Catalog Error: Scalar Function with name st_point does not exist!\nDid you mean \
                 \"point\"? This function is not in the catalog, but it exists in the spatial \
                 extension.",
                ("extension_unavailable", "extension_unavailable"),
            ),
            (
                "Catalog Error: Table Function with name read_xlsx is not in the catalog, but it \
                 exists in the excel extension.",
                ("forbidden", "forbidden"),
            ),
            (
                "Out of Memory Error: failed to allocate data of size 64.0 MiB (1.9 GiB/2.0 GiB used)",
                ("out_of_memory", "invalid_sql"),
            ),
            (
                "Conversion Error: Could not convert string 'x' to INT32",
                ("query_failed", "invalid_sql"),
            ),
            (
                "Binder Error: Referenced column \"nope\" not found in FROM clause!",
                ("query_failed", "invalid_sql"),
            ),
        ];
        for (message, want) in cases {
            assert_eq!(codes(message), want, "{message}");
        }
    }

    #[test]
    fn messages_lose_server_paths_and_duckdb_bugs_stay_in_the_log() {
        let control = control();
        let failures = Failures {
            control: &control,
            sandbox: &Server,
        };
        let e = failures.sql_error(duck(
            "IO Error: Cannot open file \"/srv/duckstream/t.duckdb.wal\"",
        ));
        assert_eq!(e.code(), "invalid_sql");
        assert_eq!(
            e.to_string(),
            "IO Error: Cannot open file \"<server path>/t.duckdb.wal\""
        );
        let e = failures.sql_error(duck("INTERNAL Error: in /srv/duckstream: assertion failed"));
        assert_eq!(
            (e.code(), e.client_message().as_str()),
            ("internal", "internal error")
        );
    }

    #[test]
    fn an_interrupt_is_the_cancellation_the_gateway_asked_for() {
        let cases = [
            (CancelReason::Timeout, "timeout", Outcome::Timeout),
            (CancelReason::Shutdown, "shutting_down", Outcome::Cancelled),
            (
                CancelReason::TenantDeleted,
                "tenant_deleted",
                Outcome::Cancelled,
            ),
            (CancelReason::Client, "cancelled", Outcome::Cancelled),
        ];
        for (reason, code, outcome) in cases {
            let control = control();
            assert!(stopped(&control).is_none());
            control.cancel(reason);
            let failures = Failures {
                control: &control,
                sandbox: &Server,
            };
            let interrupted = interrupt();
            assert_eq!(shown(failures.execution_error(interrupted)).0, code);
            // Whatever DuckDB said once the query was cancelled.
            assert_eq!(
                shown(failures.execution_error(duck("Binder Error: x"))).0,
                code
            );
            assert_eq!(stopped(&control).map(|end| shown(end).0), Some(code));
            assert_eq!(outcome_of(&cancelled_error(&control)), outcome);
        }
        // A reader that is gone or stalled gets no last line.
        for reason in [CancelReason::Disconnected, CancelReason::Stalled] {
            let control = control();
            control.cancel(reason);
            assert_eq!(stopped(&control).map(|end| shown(end).0), Some("gone"));
        }
    }

    #[test]
    fn an_interrupt_nobody_asked_for_is_a_failure_with_a_final_line() {
        let control = control();
        let failures = Failures {
            control: &control,
            sandbox: &Server,
        };
        let interrupted = interrupt();
        assert_eq!(
            shown(failures.execution_error(interrupted)),
            (
                "query_failed",
                "DuckDB stopped the query because one of its threads failed, without saying \
                 why; run it again to see the error"
                    .to_string()
            )
        );
    }

    #[test]
    fn failures_count_as_errors_unless_stopped_on_purpose() {
        assert_eq!(outcome_of(&GatewayError::Timeout), Outcome::Timeout);
        assert_eq!(outcome_of(&GatewayError::Cancelled), Outcome::Cancelled);
        assert_eq!(
            outcome_of(&GatewayError::InvalidSql("x".into())),
            Outcome::Error
        );
        assert_eq!(outcome_of(&GatewayError::internal("x")), Outcome::Error);
        // Before the response started, a failure is a refusal.
        let e = rejected(Ended::Failed(GatewayError::Forbidden("x".into())));
        assert!(matches!(e, Ended::Rejected(GatewayError::Forbidden(_))));
        assert!(matches!(rejected(Ended::Gone), Ended::Gone));
    }
    #[test]
    fn duckdbs_own_refusals_are_forbidden_and_its_mistakes_invalid_sql() {
        let conn = crate::duck::Database::open(std::path::Path::new(":memory:"))
            .and_then(|db| db.connect())
            .expect("an in-memory database");
        conn.execute_batch("CREATE TABLE people (id INTEGER); BEGIN TRANSACTION READ ONLY")
            .expect("a read-only transaction");
        let control = control();
        let failures = Failures {
            control: &control,
            sandbox: &Server,
        };
        let prepared = |sql: &str| conn.prepare(sql).err().expect("refused by DuckDB");
        assert_eq!(
            failures.sql_error(prepared("SELECT 1; SELECT 2")).code(),
            "forbidden"
        );
        assert_eq!(
            failures
                .sql_error(prepared("SELECT nope FROM people"))
                .code(),
            "invalid_sql"
        );
        assert_eq!(
            failures.sql_error(prepared("SELEC 1")).code(),
            "invalid_sql"
        );
        let write = conn
            .execute_batch("INSERT INTO people VALUES (1)")
            .expect_err("refused");
        assert_eq!(shown(failures.execution_error(write)).0, "forbidden");
    }
}
