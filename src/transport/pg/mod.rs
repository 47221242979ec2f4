//! The PostgreSQL endpoint: psql, every PostgreSQL driver, Grafana's PostgreSQL data source and
//! BI tools reach the same tenants, sandbox, limits and result formats as HTTP, through the
//! PostgreSQL wire protocol (version 3). pgwire reads and writes the messages; this module
//! decides what they mean.
//!
//! Files: [`connection`] (one connection's state), [`startup`] (login: the database names
//! the tenant, the password is an API key or a token), [`session`] (a connection's settings, `SET`/`SHOW`), [`statement`] (what a
//! statement is, answered here or by the engine), [`simple`] (the simple query protocol),
//! [`extended`] (the extended protocol; its statements and portals in [`portals`]),
//! [`params`] (`Bind` values),
//! [`rows`] (a running query's messages to the socket), [`copy_data`] (`COPY … TO STDOUT`'s
//! formats), [`cancel`] (`CancelRequest`).
//!
//! Invariants:
//! - The endpoint runs on a tokio runtime of its own (`pg` threads), apart from actix's, so
//!   its connections never slow HTTP's; DuckDB work still runs only on the engine's executor
//!   threads.
//! - Rows are sent while DuckDB produces them, through the engine's bounded channel: a client
//!   that reads slowly stops the socket's writes, then the executor, then DuckDB.
//! - At most `max_connections` connections are open; one more is refused at startup with
//!   SQLSTATE 53300, as PostgreSQL refuses past `max_connections`.
//! - A password travels only over TLS, or from loopback.
//! - No statement reaches DuckDB unless the engine runs it: `SET`, `SHOW`, transactions and
//!   the like are answered here and never change DuckDB's settings.

mod cancel;
mod connection;
mod copy_data;
mod extended;
mod params;
mod portals;
mod rows;
mod session;
mod simple;
mod startup;
mod statement;

use std::net::SocketAddr;
use std::sync::Arc;

use pgwire::api::PgWireServerHandlers;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::auth::Authenticator;
use crate::engine::Engine;
use crate::metrics::Metrics;

pub use pgwire::tokio::TlsAcceptor;

/// What the endpoint needs, built by the application.
pub struct PgSettings {
    pub max_connections: usize,
    /// With it, `SSLRequest` is answered `S`.
    pub tls: Option<TlsAcceptor>,
}

/// What every connection shares.
struct Shared {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    metrics: Arc<Metrics>,
    cancels: cancel::Registry,
    /// The process's shutdown: open connections close.
    shutdown: CancellationToken,
}

/// The endpoint, serving on its own runtime until dropped.
pub struct PgEndpoint {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl PgEndpoint {
    /// Binds `addr` and serves on a runtime of two threads. Connections stop being accepted
    /// when `drain` fires and close when `shutdown` does.
    pub fn start(
        addr: SocketAddr,
        settings: PgSettings,
        engine: Arc<Engine>,
        auth: Arc<Authenticator>,
        metrics: Arc<Metrics>,
        drain: CancellationToken,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pg")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            engine,
            auth,
            metrics,
            cancels: cancel::Registry::default(),
            shutdown,
        });
        let listener = {
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        runtime.spawn(accept_loop(listener, settings, shared, drain));
        tracing::info!(%addr, "PostgreSQL endpoint listening");
        Ok(Self {
            addr,
            runtime: Some(runtime),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for PgEndpoint {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Dropped from async code too (the tests' servers): never block there.
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    settings: PgSettings,
    shared: Arc<Shared>,
    drain: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = drain.cancelled() => return,
        };
        let _ = socket.set_nodelay(true);
        let permit = Arc::clone(&permits).try_acquire_owned().ok();
        let conn = Arc::new(connection::Connection::new(
            Arc::clone(&shared),
            peer,
            permit,
        ));
        let tls = settings.tls.clone();
        let shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            let serve = pgwire::tokio::process_socket(socket, tls, Handlers(Arc::clone(&conn)));
            tokio::select! {
                r = serve => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "PostgreSQL connection ended");
                },
                _ = shutdown.cancelled() => {}
            }
            conn.close();
        });
    }
}

/// pgwire's view of one connection: every handler is the connection itself.
struct Handlers(Arc<connection::Connection>);

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        Arc::clone(&self.0)
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        Arc::clone(&self.0)
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::clone(&self.0)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::clone(&self.0)
    }
}
