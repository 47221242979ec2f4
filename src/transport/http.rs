//! The HTTP transport: `POST /v1/{tenant}/query` (JSON body) and `GET /v1/{tenant}/query?sql=`,
//! answered with a chunked body in the asked format (`format`, else `Accept`, else NDJSON:
//! `application/x-ndjson`, Arrow IPC, CSV, jsonl), zstd-encoded when the client accepts it;
//! and `POST /v1/{tenant}/tokens`.
//!
//! Invariants:
//! - Errors before the stream starts are a status with a JSON `{code, message}` body; after it,
//!   whatever the format's error frame says ([`crate::encode::ErrorPlace`]): an `error` line
//!   in NDJSON, a broken body (no last chunk, the zstd frame unfinished) in the formats that
//!   cannot carry one.
//! - The response body owns the query's cancel guard ([`super::body`]): when actix drops it
//!   (client gone), the query is interrupted.
//! - Query answers go through the result cache ([`crate::engine::Lookup`]), keyed also on the
//!   compression: a hit is the stored body; a cacheable result carries an `ETag`, and
//!   `If-None-Match` naming the current one is answered 304 (GET) or 412 (POST, RFC 9110)
//!   without sending the result.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::body::{cached_response, streaming_response, Streamed};
use super::compress::{Input, Raw};
use super::edge::{read_body, refused, Authorized};
use super::Settings;
use crate::auth::{Access, Authenticator};
use crate::encode;
use crate::engine::{Engine, Lookup, QuerySpec, Variant};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::{Format, QueryRequest, TokenRequest};

/// Query-string form of a query (`GET` on `/query` and `/sse`).
#[derive(Debug, Deserialize)]
pub struct QueryParams {
    pub sql: Option<String>,
    pub params: Option<String>,
    pub chunk_rows: Option<String>,
    pub geometry: Option<String>,
    /// `ndjson`, `arrow`, `csv` or `jsonl`.
    pub format: Option<String>,
    /// `1`/`true`: `progress` lines while DuckDB works.
    pub progress: Option<String>,
    /// SSE only: `1` keeps the stream open as a live subscription.
    pub subscribe: Option<String>,
    /// SSE subscriptions: re-run this often too.
    pub interval_ms: Option<String>,
    /// SSE subscriptions: the version held (as `Last-Event-ID`, for clients that cannot set it).
    pub last_event_id: Option<String>,
}

impl QueryParams {
    /// The query these URL parameters describe.
    pub fn into_request(self) -> Result<QueryRequest, GatewayError> {
        if self.subscribe.is_some() || self.interval_ms.is_some() {
            return Err(GatewayError::InvalidRequest(
                "subscribe and interval_ms are for SSE (GET /v1/{tenant}/sse) and WebSocket".into(),
            ));
        }
        self.into_query()
    }

    /// The query, whatever else the parameters ask.
    pub fn into_query(self) -> Result<QueryRequest, GatewayError> {
        let (geometry, progress, format) = (self.geometry, self.progress, self.format);
        Ok(
            QueryRequest::from_query_string(self.sql, self.params, self.chunk_rows)?
                .with_geometry(geometry.as_deref())?
                .with_format(format.as_deref())?
                .with_progress_text(progress.as_deref())?,
        )
    }
}

/// The query a JSON body describes (POST on `/query` and `/sse`), read within the limits.
pub async fn json_request(
    payload: web::Payload,
    settings: &Settings,
) -> Result<QueryRequest, GatewayError> {
    let mut body = read_body(payload, settings.max_body_bytes, settings.body_timeout).await?;
    Ok(QueryRequest::from_json(&mut body)?)
}

pub async fn post_query(
    Authorized(access): Authorized,
    req: HttpRequest,
    payload: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    let query = json_request(payload, &settings).await?;
    run(
        &req,
        access,
        query,
        &engine,
        &settings,
        &metrics,
        Conditional::Post,
    )
    .await
}

pub async fn get_query(
    Authorized(access): Authorized,
    req: HttpRequest,
    params: web::Query<QueryParams>,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    let query = params.into_inner().into_request()?;
    run(
        &req,
        access,
        query,
        &engine,
        &settings,
        &metrics,
        Conditional::Get,
    )
    .await
}

/// `HEAD /v1/{tenant}/query?sql=…`: what a `GET` would answer, without running the query.
/// Readers of URLs ask first (DuckDB's httpfs, `read_csv('http://…')`): the answer has no
/// length (the result is streamed) and takes no ranges, so they read the whole `GET`.
pub async fn head_query(
    Authorized(access): Authorized,
    req: HttpRequest,
    params: web::Query<QueryParams>,
    engine: web::Data<Engine>,
) -> Result<HttpResponse, GatewayError> {
    let query = params.into_inner().into_request()?;
    let format = negotiate(&req, &query)?;
    engine.check_tenant(&access.tenant).await?;
    // A streamed body: no `Content-Length` (HEAD sends no body either way).
    let nothing = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((header::ACCEPT_RANGES, HeaderValue::from_static("none")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
        .insert_header((
            header::VARY,
            HeaderValue::from_static("accept-encoding, accept"),
        ))
        .streaming(nothing))
}

/// `POST /v1/{tenant}/tokens`: a short-lived token for browsers, issued to an API key.
pub async fn post_token(
    Authorized(access): Authorized,
    payload: web::Payload,
    engine: web::Data<Engine>,
    auth: web::Data<Authenticator>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    let mut body = read_body(payload, settings.max_body_bytes, settings.body_timeout).await?;
    let request = TokenRequest::from_json(&mut body)?;
    engine.check_tenant(&access.tenant).await?;
    let issued = auth
        .issue(&access, request)
        .map_err(|e| refused(&metrics, &access.tenant, e))?;
    tracing::info!(tenant = %access.tenant, expires_at = issued.expires_at, restricted = issued.tables.is_some(), "token issued");
    let body = simd_json::serde::to_vec(&issued).map_err(GatewayError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body))
}

/// What a matching `If-None-Match` gets: `GET` a 304, `POST` a 412 (RFC 9110 §13.1.2).
#[derive(Clone, Copy)]
enum Conditional {
    Get,
    Post,
}

impl Conditional {
    /// The answer when `If-None-Match` names `etag` (or is `*`), else `None`.
    fn answer(self, req: &HttpRequest, etag: &str) -> Option<Result<HttpResponse, GatewayError>> {
        let matches = req
            .headers()
            .get_all(header::IF_NONE_MATCH)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // Weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`.
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
        matches.then(|| match self {
            Self::Get => Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .insert_header((
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-cache"),
                ))
                .finish()),
            Self::Post => Err(GatewayError::PreconditionFailed),
        })
    }
}

/// Answers a query given as a `POST` body elsewhere (Mosaic's REST requests), exactly as
/// `POST /v1/{tenant}/query` does.
pub(super) async fn answer(
    req: &HttpRequest,
    access: Access,
    query: QueryRequest,
    engine: &Engine,
    settings: &Settings,
    metrics: &Metrics,
) -> Result<HttpResponse, GatewayError> {
    run(
        req,
        access,
        query,
        engine,
        settings,
        metrics,
        Conditional::Post,
    )
    .await
}

/// The format of an HTTP answer: the request's `format`, else the first format `Accept`
/// names, else NDJSON. `progress` lines exist only in NDJSON.
fn negotiate(req: &HttpRequest, query: &QueryRequest) -> Result<Format, GatewayError> {
    let format = query
        .format
        .or_else(|| {
            req.headers()
                .get_all(header::ACCEPT)
                .filter_map(|v| v.to_str().ok())
                .find_map(Format::from_accept)
        })
        .unwrap_or_default();
    if query.progress && !encode::layout(format).has_progress() {
        return Err(GatewayError::InvalidRequest(format!(
            "progress lines are part of the NDJSON protocol; format {} has no place for them",
            format.as_str()
        )));
    }
    Ok(format)
}

async fn run(
    req: &HttpRequest,
    access: Access,
    query: QueryRequest,
    engine: &Engine,
    settings: &Settings,
    metrics: &Metrics,
    conditional: Conditional,
) -> Result<HttpResponse, GatewayError> {
    let accepted_at = std::time::Instant::now();
    let format = negotiate(req, &query)?;
    let spec = QuerySpec::new(access.tenant, query, Transport::Http)
        .tables(access.tables)
        .format(format);
    let zstd = super::accepts_zstd(req.headers());
    let ticket = match engine.cached(&spec, Variant::Http { zstd }).await? {
        Lookup::Hit { result, etag } => {
            if let Some(answer) = conditional.answer(req, &etag) {
                return answer;
            }
            let mut response = cached_response(
                &result,
                &etag,
                format.content_type(),
                zstd,
                metrics,
                Transport::Http,
                accepted_at,
            );
            super::body::mark_stale(&mut response, engine);
            return Ok(response);
        }
        Lookup::Miss(ticket) => Some(ticket),
        Lookup::Bypass => None,
    };
    let (running, recording) = engine.start_recorded(spec, ticket).await?;
    let mut response = HttpResponse::Ok();
    response.content_type(format.content_type());
    if let Some(etag) = &recording.etag {
        // The client holds this result already: the execution stops here.
        if let Some(answer) = conditional.answer(req, etag) {
            return answer;
        }
        response.insert_header((header::ETAG, etag.as_str()));
    }
    let recorder = recording.recorder;
    streaming_response(
        running,
        Streamed {
            req,
            response,
            settings,
            metrics,
            stage: Input::frames,
            framing: Raw,
            transport: Transport::Http,
            recorder,
        },
    )
}
