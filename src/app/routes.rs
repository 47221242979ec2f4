//! The route table, the server's own routes (`/`, `/healthz`, `/readyz`, `/metrics`) and CORS.
//!
//! `/` is the dashboard page (`src/app/page/`: HTML, one script, one style sheet, embedded in
//! the binary; nothing fetched at run time but the gateway's own API) for browsers, and the
//! list of routes as text for everyone else (`curl`).
//!
//! Invariants:
//! - Every tenant route is under `/v1/{tenant}/` and its handler takes
//!   `transport::edge::Authorized`, so none runs without a checked credential.
//! - Malformed query strings and paths answer with the gateway's JSON error body, like every
//!   other error.
//! - CORS (actix-cors) allows only the configured origins; preflights need no credential.

use actix_cors::Cors;
use actix_web::http::{header, Method};
use actix_web::{error::InternalError, web, HttpResponse};

use crate::engine::Engine;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::transport::{admin, datasets, http, mosaic, sse, ws};

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        let err = GatewayError::InvalidRequest(format!("query string: {e}"));
        InternalError::from_response(e, actix_web::ResponseError::error_response(&err)).into()
    }))
    .app_data(web::PathConfig::default().error_handler(|e, _| {
        let err = GatewayError::InvalidTenant;
        InternalError::from_response(e, actix_web::ResponseError::error_response(&err)).into()
    }))
    .route("/", web::get().to(index))
    .route("/page/app.js", web::get().to(page_script))
    .route("/page/style.css", web::get().to(page_style))
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    .route("/metrics", web::get().to(metrics_text))
    // Before the tenant routes: `admin` is a reserved name, never a tenant.
    .route("/v1/admin/tenants", web::post().to(admin::create_tenant))
    .route("/v1/admin/tenants", web::get().to(admin::list_tenants))
    .route(
        "/v1/admin/tenants/{name}",
        web::delete().to(admin::delete_tenant),
    )
    .route("/v1/{tenant}/query", web::post().to(http::post_query))
    .route("/v1/{tenant}/query", web::get().to(http::get_query))
    .route("/v1/{tenant}/query", web::head().to(http::head_query))
    .route("/v1/{tenant}/ws", web::get().to(ws::ws_query))
    .route("/v1/{tenant}/sse", web::get().to(sse::get_sse))
    .route("/v1/{tenant}/sse", web::post().to(sse::post_sse))
    .route("/v1/{tenant}/mosaic", web::post().to(mosaic::post))
    .route("/v1/{tenant}/mosaic", web::get().to(mosaic::socket))
    .route("/v1/{tenant}/tokens", web::post().to(http::post_token))
    .route(
        "/v1/{tenant}/datasets",
        web::get().to(datasets::list_datasets),
    )
    .route(
        "/v1/{tenant}/datasets/{name}",
        web::put().to(datasets::put_dataset),
    )
    .route(
        "/v1/{tenant}/datasets/{name}",
        web::delete().to(datasets::delete_dataset),
    );
}

/// CORS for browsers on other origins (`EventSource`, `fetch`): only `origins` (or any, with
/// `*`) may read responses. A browser asks before sending `Authorization` or a JSON body; the
/// preflight is answered without a credential (browsers send none there).
pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT_ENCODING,
            header::HeaderName::from_static("last-event-id"),
            header::IF_NONE_MATCH,
        ])
        .expose_headers([
            header::HeaderName::from_static("x-query-id"),
            header::HeaderName::from_static("x-data-version"),
            header::HeaderName::from_static("x-cache"),
            header::ETAG,
        ])
        .max_age(600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// The page's content security policy: its own script, style and API only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

fn page_file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .body(body)
}

async fn page_script() -> HttpResponse {
    page_file(
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    )
}

async fn page_style() -> HttpResponse {
    page_file("text/css; charset=utf-8", include_str!("page/style.css"))
}

/// The page for a browser (`Accept: text/html`), the routes as text for anyone else.
async fn index(req: actix_web::HttpRequest) -> HttpResponse {
    let browser = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if browser {
        return page_file("text/html; charset=utf-8", include_str!("page/index.html"));
    }
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(
        "duckstream: POST /v1/{tenant}/query {\"sql\": \"...\"}, GET /v1/{tenant}/query?sql=...,\n\
         GET /v1/{tenant}/ws (WebSocket), GET|POST /v1/{tenant}/sse (server-sent events),\n\
         POST /v1/{tenant}/tokens (a token for browsers, with an API key)\n\
         POST|GET /v1/{tenant}/mosaic (Mosaic's protocol: REST and WebSocket)\n\
         PUT|DELETE /v1/{tenant}/datasets/{name}, GET /v1/{tenant}/datasets (upload, list)\n\
         POST|GET /v1/admin/tenants, DELETE /v1/admin/tenants/{name} (an admin key)\n\
         also /healthz, /readyz, /metrics; open / in a browser for the dashboard\n",
    )
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn readyz(engine: web::Data<Engine>) -> HttpResponse {
    if engine.is_draining() {
        let status = if engine.is_shutting_down() {
            "shutting_down"
        } else {
            "draining"
        };
        HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(format!(r#"{{"status":"{status}"}}"#))
    } else {
        // Still ready when the storage is down: it is down for every replica alike, and this
        // one still serves cached results (taking all of them out would serve nothing).
        let storage = if engine.storage_reachable() {
            "ok"
        } else {
            "unavailable"
        };
        HttpResponse::Ok()
            .content_type("application/json")
            .body(format!(r#"{{"status":"ready","storage":"{storage}"}}"#))
    }
}

async fn metrics_text(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
