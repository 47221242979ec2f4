//! The HTTP transport: `POST /v1/{tenant}/query` (JSON body) and `GET /v1/{tenant}/query?sql=`,
//! answered with a chunked `application/x-ndjson` body, zstd-encoded when the client accepts it.
//!
//! Invariants:
//! - Errors before the stream starts are a status with a JSON `{code, message}` body; after it,
//!   an `error` line (produced by the executor).
//! - The response body owns the query's cancel guard: when actix drops it (client gone), the
//!   query is interrupted.
//! - Time to first byte is observed when the first chunk carrying a `data` line is handed to
//!   actix, counted from the moment the request was accepted.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use futures_util::Stream;
use prometheus::{Histogram, IntCounter, IntGauge};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::Access;
use crate::compress::{self, Framing, WireChunk};
use crate::engine::control::CancelOnDrop;
use crate::engine::{ConnectionSlot, Frame, FrameKind, RunningQuery, Transport};
use crate::error::GatewayError;
use crate::startup::AppState;
use crate::wire::{QueryRequest, TokenRequest};

/// Query-string form of a query (`GET`).
#[derive(Debug, Deserialize)]
pub struct QueryParams {
    pub sql: Option<String>,
    pub params: Option<String>,
    pub chunk_rows: Option<String>,
}

pub async fn post_query(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let access = state.authorize(&req, &path)?;
    let query = json_request(payload, &state).await?;
    run(&req, access, query, &state).await
}

pub async fn get_query(
    req: HttpRequest,
    path: web::Path<String>,
    params: web::Query<QueryParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let access = state.authorize(&req, &path)?;
    let query = params.into_inner().into_request()?;
    run(&req, access, query, &state).await
}

/// `POST /v1/{tenant}/tokens`: a short-lived token for browsers, issued to an API key.
pub async fn post_token(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let access = state.authorize(&req, &path)?;
    let mut body = read_body(payload, state.max_body_bytes, state.body_timeout).await?;
    let request = TokenRequest::from_json(&mut body)?;
    state.engine.check_tenant(&access.tenant).await?;
    let issued = state
        .auth
        .issue(&access, request)
        .map_err(|e| state.auth_refused(&access.tenant, e))?;
    tracing::info!(tenant = %access.tenant, expires_at = issued.expires_at, restricted = issued.tables.is_some(), "token issued");
    let body = simd_json::serde::to_vec(&issued).map_err(|e| GatewayError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body))
}

impl QueryParams {
    /// The query these URL parameters describe (GET on `/query` and `/sse`).
    pub(crate) fn into_request(self) -> Result<QueryRequest, GatewayError> {
        QueryRequest::from_query_string(self.sql, self.params, self.chunk_rows)
    }
}

/// The query a JSON body describes (POST on `/query` and `/sse`), read within the limits.
pub(crate) async fn json_request(
    payload: web::Payload,
    state: &AppState,
) -> Result<QueryRequest, GatewayError> {
    let mut body = read_body(payload, state.max_body_bytes, state.body_timeout).await?;
    QueryRequest::from_json(&mut body)
}

/// Reads the request body, refusing it as soon as it passes `limit` bytes, or when it takes
/// longer than `timeout` to arrive (a body trickled byte by byte).
async fn read_body(
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, GatewayError> {
    tokio::time::timeout(timeout, read_body_unbounded(payload, limit))
        .await
        .map_err(|_| GatewayError::BodyTimeout(timeout.as_secs()))?
}

async fn read_body_unbounded(
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, GatewayError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| GatewayError::InvalidRequest(format!("request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn run(
    req: &HttpRequest,
    access: Access,
    query: QueryRequest,
    state: &AppState,
) -> Result<HttpResponse, GatewayError> {
    let running = state
        .engine
        .start(
            &access.tenant,
            query,
            Transport::Http,
            super::new_query_id(),
            None,
            access.tables,
        )
        .await?;
    let mut response = HttpResponse::Ok();
    response.content_type("application/x-ndjson");
    streaming_response(
        req,
        response,
        state,
        running,
        compress::Ndjson,
        Transport::Http,
    )
}

/// Finishes a streaming response: the query's frames, laid out by `framing`, compressed on a
/// thread of their own when the request accepts zstd, counted as they are handed to actix.
pub(crate) fn streaming_response<F: Framing>(
    req: &HttpRequest,
    mut response: HttpResponseBuilder,
    state: &AppState,
    running: RunningQuery,
    framing: F,
    transport: Transport,
) -> Result<HttpResponse, GatewayError> {
    let zstd = super::accepts_zstd(req.headers());
    let query_id = Arc::clone(&running.query_id);
    let source = if zstd {
        let rx = compress::spawn_stream(
            running.frames,
            state.zstd_level,
            state.stream_buffer,
            framing,
        )
        .map_err(|e| GatewayError::Internal(Box::new(e)))?;
        Source::Compressed(rx)
    } else {
        Source::Plain(running.frames, Box::new(framing))
    };
    let metrics = state.engine.metrics();
    let label = [transport.as_str()];
    let connection = metrics.active_connections.with_label_values(&label);
    connection.inc();
    let body = Body {
        connection,
        source,
        finished: false,
        accepted_at: running.accepted_at,
        ttfb: Some(metrics.ttfb.with_label_values(&label)),
        rows: metrics.rows_sent.with_label_values(&label),
        bytes: metrics.bytes_sent.with_label_values(&label),
        raw_bytes: metrics.uncompressed_bytes.with_label_values(&label),
        _guard: running.guard,
        _slot: running.connection,
    };
    response
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store"),
        ))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(("X-Query-Id", query_id.as_ref()))
        .insert_header((header::VARY, HeaderValue::from_static("accept-encoding")));
    if zstd {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("zstd")));
    }
    Ok(response.streaming(body))
}

enum Source {
    Plain(mpsc::Receiver<Frame>, Box<dyn Framing>),
    Compressed(mpsc::Receiver<WireChunk>),
}

/// The response body: pulls chunks from the pipeline as actix asks for them.
struct Body {
    /// The `active_connections` gauge, decremented when the body is dropped.
    connection: IntGauge,
    source: Source,
    /// The final line went out (or the body already failed).
    finished: bool,
    accepted_at: Instant,
    ttfb: Option<Histogram>,
    rows: IntCounter,
    bytes: IntCounter,
    raw_bytes: IntCounter,
    /// Dropped with the body: interrupts the query if it has not ended.
    _guard: CancelOnDrop,
    /// The tenant's connection slot, freed with the body.
    _slot: Option<ConnectionSlot>,
}

impl Body {
    /// The pipeline ended. Without a final line, the body fails instead of ending cleanly, so
    /// that actix aborts the response and the client sees a broken stream, not a short one.
    fn end_of_stream(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.finished {
            return None;
        }
        self.finished = true;
        Some(Err(std::io::Error::other(
            "the stream ended without its final line",
        )))
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        self.connection.dec();
    }
}

impl Stream for Body {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let chunk = match &mut this.source {
            Source::Plain(rx, framing) => match rx.poll_recv(cx) {
                Poll::Ready(Some(frame)) => {
                    let (rows, has_data) = (frame.rows, frame.kind == FrameKind::Data);
                    let last = frame.kind.is_final();
                    let bytes = framing.to_bytes(frame);
                    WireChunk {
                        raw_len: bytes.len(),
                        rows,
                        has_data,
                        last,
                        bytes,
                    }
                }
                Poll::Ready(None) => return Poll::Ready(this.end_of_stream()),
                Poll::Pending => return Poll::Pending,
            },
            Source::Compressed(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some(chunk)) => chunk,
                Poll::Ready(None) => return Poll::Ready(this.end_of_stream()),
                Poll::Pending => return Poll::Pending,
            },
        };
        this.finished |= chunk.last;
        if chunk.has_data {
            if let Some(ttfb) = this.ttfb.take() {
                ttfb.observe(this.accepted_at.elapsed().as_secs_f64());
            }
        }
        this.rows.inc_by(chunk.rows as u64);
        this.bytes.inc_by(chunk.bytes.len() as u64);
        this.raw_bytes.inc_by(chunk.raw_len as u64);
        Poll::Ready(Some(Ok(chunk.bytes)))
    }
}
