//! Building and running the server: [`Application::build`] wires config, engine, metrics and
//! routes; [`Application::run_until_stopped`] serves until a signal or [`Application::shutdown_token`].
//! `main` and the integration tests start the server the same way.
//!
//! Shutdown path: SIGINT/SIGTERM (or the token) cancels the process token, which cancels every
//! running query (each ends with an `error` line `shutting_down`), `/readyz` turns 503, and
//! actix stops, waiting at most `shutdown_timeout` for streams to drain.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service as _};
use actix_web::http::header;
use actix_web::{error::InternalError, web, App, HttpResponse, HttpServer};
use tokio_util::sync::CancellationToken;

use crate::auth::token::TokenSigner;
use crate::auth::{Access, AuthError, Authenticator, TokenTtl};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::transport::ws::{self, WsSettings};
use crate::transport::{http, sse};
use crate::wire::TenantId;

impl AppState {
    /// The edge of every tenant route: the tenant named in the path, and what the request's
    /// credential allows on it. Runs before a body is read or the engine is touched.
    pub fn authorize(
        &self,
        req: &actix_web::HttpRequest,
        tenant_in_path: &str,
    ) -> Result<Access, GatewayError> {
        let tenant = TenantId::parse(tenant_in_path)?;
        self.auth
            .authorize(req.headers(), req.query_string(), &tenant)
            .map_err(|e| self.auth_refused(&tenant, e))
    }

    /// Counts an authentication or authorisation refusal by reason; the client's error.
    pub fn auth_refused(&self, tenant: &TenantId, e: AuthError) -> GatewayError {
        self.engine
            .metrics()
            .auth_failures
            .with_label_values(&[e.reason()])
            .inc();
        tracing::debug!(%tenant, reason = e.reason(), "request refused");
        e.into()
    }
}

/// Shared by every handler.
pub struct AppState {
    pub engine: Engine,
    pub auth: Authenticator,
    pub zstd_level: i32,
    pub stream_buffer: usize,
    pub max_body_bytes: usize,
    pub ws: WsSettings,
    pub sse_keepalive: std::time::Duration,
    pub body_timeout: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
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
}

pub struct Application {
    port: u16,
    open: bool,
    server: Server,
    shutdown: CancellationToken,
}

impl Application {
    /// Validates the data directory, seeds the demo tenant if asked, binds, and prepares the
    /// server (it serves once [`Self::run_until_stopped`] is awaited). Needs an Actix system.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartupError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        if config.demo {
            let (dir, rows) = (data_dir.clone(), config.demo_rows);
            tokio::task::spawn_blocking(move || crate::demo::ensure_demo(&dir, rows))
                .await
                .map_err(|e| StartupError::Demo(e.to_string()))?
                .map_err(|e| StartupError::Demo(e.to_string()))?;
        }

        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: config.bind,
                source,
            })?
            .port();

        let shutdown = CancellationToken::new();
        let metrics = Arc::new(Metrics::new()?);
        let signer = match &config.token_secret {
            Some(secret) => TokenSigner::new(secret.0.as_bytes()),
            None => {
                if config.tenants.is_some() {
                    tracing::warn!(
                        "no token_secret: tokens are signed with a random secret and are valid \
                         on this process only, until it restarts"
                    );
                }
                TokenSigner::random().map_err(StartupError::Random)?
            }
        };
        let auth = Authenticator::new(
            config.tenants.as_deref(),
            signer,
            TokenTtl {
                default_secs: config.token_ttl.as_secs(),
                max_secs: config.token_max_ttl.as_secs(),
            },
        );
        let open = auth.is_open();
        if open && !config.bind.ip().is_loopback() {
            tracing::warn!(bind = %config.bind, "no tenants file: every tenant is open (--insecure)");
        }
        let state = web::Data::new(AppState {
            engine: Engine::new(&config, shutdown.clone(), metrics),
            auth,
            zstd_level: config.zstd_level,
            stream_buffer: config.stream_buffer,
            max_body_bytes: config.max_body_bytes,
            ws: WsSettings {
                max_queries: config.ws_max_queries,
                send_budget_bytes: config.ws_send_budget_bytes,
                total_budget: Arc::new(tokio::sync::Semaphore::new(config.ws_total_budget_bytes)),
                slow_consumer_timeout: config.ws_slow_consumer_timeout,
                ping_interval: config.ws_ping_interval,
                pong_timeout: config.ws_pong_timeout,
                max_message_bytes: config.ws_max_message_bytes,
            },
            sse_keepalive: config.sse_keepalive,
            body_timeout: config.body_timeout,
        });
        let cors = Arc::new(config.cors_allow_origins.clone());
        let server = HttpServer::new(move || {
            let cors = Arc::clone(&cors);
            App::new()
                .wrap_fn(move |req, srv| {
                    // CORS for browsers on other origins (EventSource, fetch): only the
                    // configured origins get `Access-Control-Allow-Origin`.
                    let origin = req.headers().get(header::ORIGIN).cloned();
                    let allowed = origin.filter(|o| {
                        let o = o.to_str().unwrap_or_default();
                        cors.iter().any(|a| a == "*" || a == o)
                    });
                    let fut = srv.call(req);
                    async move {
                        let mut res = fut.await?;
                        if let Some(origin) = allowed {
                            let h = res.headers_mut();
                            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                            h.append(header::VARY, header::HeaderValue::from_static("origin"));
                        }
                        Ok(res)
                    }
                })
                .app_data(state.clone())
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    let err = GatewayError::InvalidRequest(format!("query string: {e}"));
                    InternalError::from_response(e, actix_web::ResponseError::error_response(&err))
                        .into()
                }))
                .app_data(web::PathConfig::default().error_handler(|e, _| {
                    let err = GatewayError::InvalidTenant;
                    InternalError::from_response(e, actix_web::ResponseError::error_response(&err))
                        .into()
                }))
                .route("/", web::get().to(index))
                .route("/healthz", web::get().to(healthz))
                .route("/readyz", web::get().to(readyz))
                .route("/metrics", web::get().to(metrics_text))
                .route("/v1/{tenant}/query", web::post().to(http::post_query))
                .route("/v1/{tenant}/query", web::get().to(http::get_query))
                .route("/v1/{tenant}/ws", web::get().to(ws::ws_query))
                .route("/v1/{tenant}/sse", web::get().to(sse::get_sse))
                .route("/v1/{tenant}/sse", web::post().to(sse::post_sse))
                .route("/v1/{tenant}/tokens", web::post().to(http::post_token))
                .route(
                    "/v1/{tenant}/{endpoint}",
                    web::method(actix_web::http::Method::OPTIONS).to(preflight),
                )
        })
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?
        .disable_signals()
        .shutdown_timeout(config.shutdown_timeout.as_secs().max(1))
        .run();

        Ok(Self {
            port,
            open,
            server,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server runs without authentication (no tenants file).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Cancelling this token shuts the server down, as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token, then stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let token = self.shutdown.clone();
        actix_web::rt::spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = wait_for_signal() => tracing::info!("signal received, shutting down"),
            }
            // Cancels every running query: their streams end with `shutting_down`.
            token.cancel();
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.shutdown.cancel();
        result
    }
}

async fn wait_for_signal() {
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

async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(
        "duckstream: POST /v1/{tenant}/query {\"sql\": \"...\"}, GET /v1/{tenant}/query?sql=...,\n\
         GET /v1/{tenant}/ws (WebSocket), GET|POST /v1/{tenant}/sse (server-sent events),\n\
         POST /v1/{tenant}/tokens (a token for browsers, with an API key)\n\
         also /healthz, /readyz, /metrics\n",
    )
}

/// CORS preflight: a browser asks before sending `Authorization` or a JSON body from another
/// origin. No credential is checked (browsers send none here); the CORS middleware adds
/// `Access-Control-Allow-Origin` only for the configured origins, so others stay blocked.
async fn preflight() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "authorization, content-type, accept-encoding, last-event-id",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.engine.is_shutting_down() {
        HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(r#"{"status":"shutting_down"}"#)
    } else {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"status":"ready"}"#)
    }
}

async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.engine.metrics().render())
}
