//! The application: [`Application::build`] validates the configuration and wires engine,
//! authentication, metrics and routes; [`Application::run_until_stopped`] serves until a signal
//! or [`Application::shutdown_token`]. `main` and the integration tests start the server the
//! same way.
//!
//! This is the composition root: the only module that turns the configuration into the
//! settings of the layers below (engine, transports, auth), so none of them imports `config`.
//!
//! Shutdown path ([`shutdown`]): SIGINT/SIGTERM drains. `/readyz` turns 503, the listener
//! closes, answers close their connections, WebSockets close with 1012 once their queries are
//! done and SSE subscriptions end with a `reconnect` event; one-shot queries run on. After
//! `shutdown_timeout` (or a second signal, or the shutdown token) the process token cancels
//! whatever still runs (each stream ends with an `error` line `shutting_down`) and actix stops.

mod fds;
mod routes;
mod shutdown;
mod state;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service as _};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::{App, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::auth::token::TokenSigner;
use crate::auth::{Authenticator, KeyBook, TokenTtl};
use crate::config::{Config, ConfigError, Limits, PgBind, StorageKind};
use crate::encode::ResultLimits;
use crate::engine::{
    Engine, EngineSettings, LakeSettings, LakeStore, LocalFiles, S3Settings, TenantLimits,
    TenantStore, LAKE_EXTENSIONS,
};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::transport::pg::{PgEndpoint, PgSettings};
use crate::transport::{self, WsSettings};
use state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the demo tenant: {0}")]
    Demo(String),
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("no randomness for the token secret: {0}")]
    Random(getrandom::Error),
    #[error("cannot start the compression workers: {0}")]
    Workers(std::io::Error),
    #[error("cannot set up the tenant store: {0}")]
    Storage(String),
    #[error("cannot use the PostgreSQL endpoint's TLS certificate or key: {0}")]
    PgTls(String),
}

pub struct Application {
    port: u16,
    open: bool,
    server: Server,
    shutdown: CancellationToken,
    /// The engine's drain token: a signal fires it first.
    drain: CancellationToken,
    /// How long running one-shot queries may go on after a signal before they are cancelled.
    drain_timeout: std::time::Duration,
    /// The PostgreSQL endpoint, unless `[pg] bind = "off"`.
    pg: Option<PgEndpoint>,
}

impl Application {
    /// Validates `config`, the data directory, seeds the demo tenant if asked, binds, and
    /// prepares the server (it serves once [`Self::run_until_stopped`] is awaited). Needs an
    /// Actix system.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        let server_cfg = &config.server;
        let data_dir = server_cfg.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartupError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        if server_cfg.demo && config.storage.kind == StorageKind::Local {
            let (dir, rows) = (data_dir.clone(), server_cfg.demo_rows);
            tokio::task::spawn_blocking(move || crate::demo::ensure_demo(&dir, rows))
                .await
                .map_err(|e| StartupError::Demo(e.to_string()))?
                .map_err(|e| StartupError::Demo(e.to_string()))?;
        }

        check_fd_limit(config.limits.max_streams() as u64);

        let drain_timeout = server_cfg
            .shutdown_timeout
            .max(std::time::Duration::from_secs(1));
        let bind = server_cfg.bind;
        let bind_error = |source| StartupError::Bind { addr: bind, source };
        let listener = TcpListener::bind(bind).map_err(bind_error)?;
        let port = listener.local_addr().map_err(bind_error)?.port();

        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new(GatewayError::CODES)?);
        let auth = authenticator(&config)?;
        let open = auth.is_open();
        if open && !bind.ip().is_loopback() {
            tracing::warn!(%bind, "no tenants file: every tenant is open (--insecure)");
        }
        let store = tenant_store(&config, &metrics).map_err(StartupError::Storage)?;
        let engine = Engine::with_store(
            engine_settings(&config),
            store,
            shutdown.clone(),
            Arc::clone(&metrics),
        );
        // Spool files of uploads a crash interrupted: their data never committed.
        engine
            .clean_spool()
            .await
            .map_err(|source| StartupError::DataDir {
                path: data_dir.join(".spool").display().to_string(),
                source,
            })?;
        let transport = transport_settings(&config).map_err(StartupError::Workers)?;
        let drain = engine.drain_token().clone();
        let state = AppState::new(engine, auth, metrics, transport);
        let pg = pg_endpoint(&config, &state, drain.clone(), shutdown.clone())?;
        if config.storage.kind == StorageKind::Lake {
            maintain_in_background(&state, &config, shutdown.clone());
        }
        unload_idle_in_background(&state, &config, shutdown.clone());
        let origins = server_cfg.cors_allow_origins.clone();
        let draining = drain.clone();
        let server = HttpServer::new(move || {
            let draining = draining.clone();
            // The last `wrap` is the outermost: CORS answers preflights, the status fix sees
            // its answer.
            App::new()
                .wrap(routes::cors(&origins))
                .wrap_fn(move |req, srv| {
                    // actix-cors answers a preflight with 200; the protocol says 204 (no body).
                    let preflight = req.method() == Method::OPTIONS;
                    let fut = srv.call(req);
                    let draining = draining.clone();
                    async move {
                        let mut res = fut.await?;
                        if preflight && res.status() == StatusCode::OK {
                            *res.response_mut().status_mut() = StatusCode::NO_CONTENT;
                        }
                        // A draining server closes each connection after its answer, so the
                        // client's next request goes through the balancer to another replica.
                        if draining.is_cancelled() {
                            res.response_mut()
                                .head_mut()
                                .set_connection_type(ConnectionType::Close);
                        }
                        Ok(res)
                    }
                })
                .configure(|cfg| state.register(cfg))
                .configure(routes::configure)
        })
        // Before `listen`, which reads it. Without it a response's small last write (the `end`
        // line, the chunked terminator) waited for the client's delayed ACK: ~40 ms on every
        // keep-alive request (docs/BENCHMARKS.md).
        .tcp_nodelay(true)
        .listen(listener)
        .map_err(bind_error)?
        .disable_signals()
        // Past the drain deadline, cancelled queries get a moment to send their last line.
        .shutdown_timeout(drain_timeout.as_secs() + 2)
        .run();

        Ok(Self {
            port,
            open,
            server,
            shutdown,
            drain,
            drain_timeout,
            pg,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PostgreSQL endpoint's port, when it listens.
    pub fn pg_port(&self) -> Option<u16> {
        self.pg.as_ref().map(|pg| pg.addr().port())
    }

    /// Whether the server runs without authentication (no tenants file).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Cancelling this token shuts the server down, as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The drain token: cancelling it drains and stops the server, as a signal would.
    pub fn drain_token(&self) -> CancellationToken {
        self.drain.clone()
    }

    /// Serves until SIGINT/SIGTERM or a token, then stops: a signal (or the drain token)
    /// drains first, the shutdown token stops at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let (token, drain) = (self.shutdown.clone(), self.drain.clone());
        let deadline = self.drain_timeout;
        actix_web::rt::spawn(async move {
            tokio::select! {
                _ = drain.cancelled() => {}
                _ = shutdown::wait_for_signal() => {
                    tracing::info!(drain_secs = deadline.as_secs(), "signal received, draining");
                }
            }
            drain.cancel();
            actix_web::rt::spawn(shutdown::hard_stop(token, deadline));
            // Stops accepting at once and waits for open connections (bounded by the server's
            // shutdown timeout, past the drain deadline).
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.shutdown.cancel();
        drop(self.pg);
        result
    }
}

/// `duckstream load`: loads `args.file` into a dataset without serving, through the same
/// engine path as an upload (the file is linked, or copied, into the tenant's spool); a
/// missing tenant is provisioned first. The server must not be running on this data
/// directory (DuckDB locks its files).
pub async fn load_offline(
    config: Config,
    args: crate::config::LoadArgs,
) -> Result<crate::wire::datasets::UploadResult, String> {
    use crate::wire::datasets::{UploadRequest, UploadResult};
    config.validate().map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let tenant = crate::wire::TenantId::parse(&args.tenant).map_err(|e| e.to_string())?;
    let ext = args
        .file
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| match e {
            "jsonl" => "ndjson",
            "geoparquet" => "parquet",
            "json" => "geojson",
            other => other,
        })
        .map(str::to_string);
    let request = UploadRequest::new(
        &args.dataset,
        args.format.as_deref().or(ext.as_deref()),
        None,
        args.mode.as_deref(),
        args.max_bad_rows.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    let bytes = std::fs::metadata(&args.file)
        .map_err(|e| format!("{}: {e}", args.file.display()))?
        .len();
    let metrics = Arc::new(Metrics::new(GatewayError::CODES).map_err(|e| e.to_string())?);
    let store = tenant_store(&config, &metrics)?;
    let engine = Engine::with_store(
        engine_settings(&config),
        store,
        CancellationToken::new(),
        metrics,
    );
    // An operator loading into a tenant that does not exist yet provisions it.
    if let Err(GatewayError::TenantNotFound(_)) = engine.data_version(&tenant).await {
        engine
            .create_tenant(&tenant)
            .await
            .map_err(|e| e.log_chain())?;
    }
    let spool = engine
        .spool_file(&tenant, request.format.extension())
        .await
        .map_err(|e| e.log_chain())?;
    if std::fs::hard_link(&args.file, &spool).is_err() {
        tokio::fs::copy(&args.file, &spool)
            .await
            .map_err(|e| format!("cannot copy {} to the spool: {e}", args.file.display()))?;
    }
    let dataset = request.dataset.as_str().to_string();
    let loaded = engine.upload(&tenant, request, spool.clone()).await;
    let _ = tokio::fs::remove_file(&spool).await;
    let (loaded, version) = loaded.map_err(|e| e.log_chain())?;
    Ok(UploadResult {
        dataset,
        rows: loaded.rows,
        rejected: loaded.rejected,
        rejects: loaded.rejects,
        bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
        version,
    })
}

/// Keys from the tenants file (none: open), and the token signer.
fn authenticator(config: &Config) -> Result<Authenticator, StartupError> {
    let auth = &config.auth;
    let signer = match &auth.token_secret {
        Some(secret) => TokenSigner::new(secret.0.as_bytes()),
        None => {
            if auth.tenants.is_some() {
                tracing::warn!(
                    "no token_secret: tokens are signed with a random secret and are valid \
                     on this process only, until it restarts"
                );
            }
            TokenSigner::random().map_err(StartupError::Random)?
        }
    };
    let keys = auth.tenants.as_deref().map(|file| KeyBook {
        admin: file.admin_keys.clone(),
        tenants: file
            .tenants
            .iter()
            .map(|(id, t)| (id.clone(), t.keys.clone()))
            .collect(),
    });
    let ttl = TokenTtl {
        default_secs: auth.token_ttl.as_secs(),
        max_secs: auth.token_max_ttl.as_secs(),
    };
    Ok(Authenticator::new(keys, signer, ttl))
}

/// What a tenant with `limits` may use, as the engine keeps it.
fn tenant_limits(limits: &Limits) -> TenantLimits {
    TenantLimits {
        pool_size: limits.pool_size(),
        max_streams: limits.max_streams(),
        queue_size: limits.queue_size(),
        query_timeout: limits.query_timeout(),
        result: ResultLimits {
            max_rows: limits.max_result_rows().unwrap_or(u64::MAX),
            max_bytes: limits.max_result_bytes().unwrap_or(u64::MAX),
        },
        threads: limits.threads(),
        memory_limit: limits.memory_limit().map(str::to_string),
        max_temp_size: limits.max_temp_size().map(str::to_string),
        max_upload_bytes: limits.max_upload_bytes(),
        cache_ttl: limits.cache_ttl(),
        max_subscriptions: limits.max_subscriptions(),
        min_interval: limits.min_interval(),
        scratch_bytes: limits.scratch_bytes(),
    }
}

/// Raises the descriptor limit to its hard limit and tells the operator when even that is
/// below what a tenant's `max_streams` needs ([`fds`]).
fn check_fd_limit(max_streams: u64) {
    match fds::check(max_streams) {
        Some(l) if !l.enough() => tracing::warn!(
            soft = l.soft,
            hard = l.hard,
            needed = l.needed,
            max_streams,
            "the file-descriptor limit is below what max_streams needs (plus {} for DuckDB \
             and the listener): connections past it will fail; raise it (ulimit -n, systemd \
             LimitNOFILE=) or lower max_streams",
            fds::RESERVED
        ),
        Some(l) => tracing::info!(limit = l.soft, needed = l.needed, "file-descriptor limit"),
        None => tracing::warn!("the file-descriptor limit could not be read"),
    }
}

/// Storage upkeep ([`crate::engine::MaintenancePolicy`]) every few seconds until shutdown;
/// none with a zero interval.
fn maintain_in_background(state: &AppState, config: &Config, shutdown: CancellationToken) {
    let st = &config.storage;
    if st.maintenance_interval.is_zero() {
        return;
    }
    let policy = crate::engine::MaintenancePolicy {
        interval: st.maintenance_interval,
        after_writes: st.maintenance_after_writes,
    };
    let tick = st
        .maintenance_interval
        .min(std::time::Duration::from_secs(10));
    let engine = state.engine.clone().into_inner();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => engine.maintain(&policy).await,
            }
        }
    });
}

/// Closes idle tenants' databases ([`crate::engine::Engine::unload_idle`]) every quarter of the
/// idle time (at most every 30 s) until shutdown; never with a zero idle time.
fn unload_idle_in_background(state: &AppState, config: &Config, shutdown: CancellationToken) {
    let idle = config.engine.tenant_idle;
    if idle.is_zero() {
        return;
    }
    let tick = (idle / 4).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(30),
    );
    let engine = state.engine.clone().into_inner();
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(tick) => { engine.unload_idle(idle).await; }
            }
        }
    });
}

/// The store `[storage]` chooses: the data directory's files, or DuckLakes.
pub fn tenant_store(config: &Config, metrics: &Metrics) -> Result<Arc<dyn TenantStore>, String> {
    let st = &config.storage;
    if st.kind == StorageKind::Local {
        return Ok(Arc::new(LocalFiles::new(&config.server.data_dir)));
    }
    Ok(Arc::new(LakeStore::new(
        lake_settings(config),
        metrics.store.clone(),
    )?))
}

/// `[storage]`'s lake settings, for the lake store.
fn lake_settings(config: &Config) -> LakeSettings {
    let st = &config.storage;
    let reveal = |s: &Option<crate::config::Secret>| s.as_ref().map(|s| s.0.clone());
    LakeSettings {
        catalog: reveal(&st.lake_catalog).unwrap_or_default(),
        data: st.lake_data.clone().unwrap_or_default(),
        s3: S3Settings {
            endpoint: st.s3_endpoint.clone(),
            url_style: st.s3_url_style.clone(),
            use_ssl: st.s3_use_ssl,
            region: st.s3_region.clone(),
            key_id: st.s3_key_id.clone(),
            secret: reveal(&st.s3_secret),
            session_token: reveal(&st.s3_session_token),
        },
        lock_wait: st.lock_wait,
        retention: st.snapshot_retention,
        role_secret: reveal(&st.lake_role_secret),
        extension_repository: config.engine.extension_repository.clone(),
        extension_directory: config.engine.extension_directory.clone(),
    }
}

/// The extensions every tenant database loads: the configured ones, and a lake's own.
fn extensions(config: &Config) -> Vec<String> {
    let mut list = config.engine.extensions.clone();
    if config.storage.kind == StorageKind::Lake {
        for name in LAKE_EXTENSIONS {
            if !list.iter().any(|e| e.eq_ignore_ascii_case(name)) {
                list.push(name.to_string());
            }
        }
    }
    list
}

fn engine_settings(config: &Config) -> EngineSettings {
    let e = &config.engine;
    EngineSettings {
        data_dir: config.server.data_dir.clone(),
        executor_threads: e.executor_threads,
        max_queued: e.max_queued,
        queue_timeout: e.queue_timeout,
        stall_timeout: (!e.stall_timeout.is_zero()).then_some(e.stall_timeout),
        chunk_rows: e.chunk_rows,
        chunk_bytes: e.chunk_bytes,
        stream_buffer: e.stream_buffer,
        preserve_insertion_order: e.preserve_insertion_order,
        extensions: extensions(config),
        extension_repository: e.extension_repository.clone(),
        extension_directory: e.extension_directory.clone(),
        cache: crate::engine::CacheSettings {
            max_bytes: e.cache_bytes,
            max_entry_bytes: e.cache_max_entry_bytes,
        },
        limits: tenant_limits(&config.limits),
        tenant_limits: config
            .tenant_limits()
            .iter()
            .map(|(id, l)| (id.clone(), tenant_limits(l)))
            .collect(),
    }
}

/// Starts the PostgreSQL endpoint on its own runtime, unless it is off.
fn pg_endpoint(
    config: &Config,
    state: &AppState,
    drain: CancellationToken,
    shutdown: CancellationToken,
) -> Result<Option<PgEndpoint>, StartupError> {
    let PgBind::At(addr) = config.pg.bind else {
        return Ok(None);
    };
    let tls = match (&config.pg.tls_cert, &config.pg.tls_key) {
        (Some(cert), Some(key)) => Some(pg_tls(cert, key).map_err(StartupError::PgTls)?),
        _ => None,
    };
    let settings = PgSettings {
        max_connections: config.pg.max_connections,
        tls,
    };
    PgEndpoint::start(
        addr,
        settings,
        state.engine.clone().into_inner(),
        state.auth.clone().into_inner(),
        state.metrics.clone().into_inner(),
        drain,
        shutdown,
    )
    .map(Some)
    .map_err(|source| StartupError::Bind { addr, source })
}

/// The endpoint's TLS from PEM files: a certificate chain and its private key.
fn pg_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<transport::pg::TlsAcceptor, String> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| e.to_string())?;
    Ok(transport::pg::TlsAcceptor::from(Arc::new(config)))
}

fn transport_settings(config: &Config) -> std::io::Result<transport::Settings> {
    let ws = &config.websocket;
    Ok(transport::Settings {
        compression: transport::compress::Pool::new(
            config.engine.compress_workers,
            config.engine.zstd_window_log,
        )?,
        zstd_level: config.engine.zstd_level,
        stream_buffer: config.engine.stream_buffer,
        max_body_bytes: config.server.max_body_bytes,
        body_timeout: config.server.body_timeout,
        max_upload_record_bytes: config.server.max_upload_record_bytes,
        sse_keepalive: config.sse.keepalive,
        subscription_max_bytes: config.engine.cache_max_entry_bytes,
        ws: WsSettings {
            queries_per_socket: ws.queries_per_socket,
            max_subscriptions: ws.max_subscriptions,
            heartbeat: ws.heartbeat,
            send_budget_bytes: ws.send_budget_bytes,
            total_budget: Arc::new(tokio::sync::Semaphore::new(ws.total_budget_bytes)),
            total_budget_bytes: ws.total_budget_bytes,
            slow_consumer_timeout: ws.slow_consumer_timeout,
            ping_interval: ws.ping_interval,
            pong_timeout: ws.pong_timeout,
            max_message_bytes: ws.max_message_bytes,
        },
    })
}

/// `duckstream lake import|export TENANT`: moves a tenant between the data directory's
/// files and the lake that `[storage]` names (the lake settings are required, whatever
/// `--storage` says). Prints what it did as JSON.
pub async fn lake_command(
    config: Config,
    command: crate::config::LakeCommand,
) -> Result<String, String> {
    use crate::config::LakeCommand;
    let mut lake_config = config.clone();
    lake_config.storage.kind = StorageKind::Lake;
    lake_config.validate().map_err(|e| e.to_string())?;
    let settings = lake_settings(&lake_config);
    let data_dir = config.server.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        // A one-off command: its metrics are never served.
        let metrics = Metrics::new(GatewayError::CODES).map_err(|e| e.to_string())?;
        let store = LakeStore::new(settings, metrics.store)?;
        let local = |tenant: &str, given: Option<std::path::PathBuf>| {
            given.unwrap_or_else(|| data_dir.join(format!("{tenant}.duckdb")))
        };
        let parse = |t: &str| crate::wire::TenantId::parse(t).map_err(|e| e.to_string());
        match command {
            LakeCommand::Import { tenant, from } => {
                let id = parse(&tenant)?;
                let file = local(&tenant, from);
                let (tables, version) = store.import_file(&id, &file).map_err(|e| e.log_chain())?;
                Ok(format!(
                    r#"{{"tenant":"{id}","tables":{tables},"data_version":{version}}}"#
                ))
            }
            LakeCommand::Export { tenant, to } => {
                let id = parse(&tenant)?;
                let file = local(&tenant, to);
                let tables = store.export_file(&id, &file).map_err(|e| e.log_chain())?;
                Ok(format!(r#"{{"tenant":"{id}","tables":{tables}}}"#))
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?
}
