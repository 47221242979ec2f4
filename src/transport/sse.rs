//! The SSE transport: `GET /v1/{tenant}/sse?sql=…&params=…&chunk_rows=…` (what a browser's
//! `EventSource` can send) and `POST /v1/{tenant}/sse` (the HTTP query's JSON body), answered
//! with `text/event-stream`, one event per protocol line.
//!
//! Invariants:
//! - Each line becomes `event: <type>` / `id: <query_id>:<n>` / `data: <line>` and a blank
//!   line; `n` counts the stream's events from 0 (metadata 0, then data, then end or error).
//!   Protocol lines never contain a newline before their end (JSON escapes them), so one `data:`
//!   field always holds exactly one line.
//! - A `: keepalive` comment goes out after `sse_keepalive_secs` without an event, so proxies
//!   keep the stream open while DuckDB works; the response starts as soon as the statement runs.
//! - The stream ends after `end` or `error`. A reconnect carrying `Last-Event-ID` gets one
//!   `error` event `resume_unsupported` and the query is *not* run again.
//! - With zstd, the whole stream is one zstd frame flushed after every event (compressed on a
//!   thread of its own, like the HTTP body).

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::mpsc;

use super::body::{streaming_response, Streamed};
use super::compress::{Framing, Input, Piece};
use super::edge::Authorized;
use super::http::{json_request, QueryParams};
use super::Settings;
use crate::auth::Access;
use crate::engine::{new_query_id, Engine, Frame, FrameKind, QuerySpec, Start};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::lines;
use crate::wire::QueryRequest;

/// Lays frames out as server-sent events.
pub struct SseFraming {
    query_id: Arc<str>,
    next: u64,
}

impl SseFraming {
    pub fn new(query_id: Arc<str>) -> Self {
        Self { query_id, next: 0 }
    }
}

impl Framing for SseFraming {
    fn write(&mut self, piece: &Piece, out: &mut dyn Write) -> std::io::Result<()> {
        let frame = match piece {
            Piece::Keepalive => return out.write_all(b": keepalive\n\n"),
            Piece::Frame(f) => f,
        };
        let kind = match frame.kind {
            FrameKind::Metadata => "metadata",
            FrameKind::Data => "data",
            FrameKind::End => "end",
            FrameKind::Error => "error",
        };
        let line = frame.bytes.strip_suffix(b"\n").unwrap_or(&frame.bytes);
        write!(
            out,
            "event: {kind}\nid: {}:{}\ndata: ",
            self.query_id, self.next
        )?;
        out.write_all(line)?;
        out.write_all(b"\n\n")?;
        self.next += 1;
        Ok(())
    }
}

pub async fn get_sse(
    Authorized(access): Authorized,
    req: HttpRequest,
    params: web::Query<QueryParams>,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    if let Some(resp) = refuse_resume(&req) {
        return Ok(resp);
    }
    let query = params.into_inner().into_request()?;
    run(&req, access, query, &engine, &settings, &metrics).await
}

pub async fn post_sse(
    Authorized(access): Authorized,
    req: HttpRequest,
    payload: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    if let Some(resp) = refuse_resume(&req) {
        return Ok(resp);
    }
    let query = json_request(payload, &settings).await?;
    run(&req, access, query, &engine, &settings, &metrics).await
}

fn event_stream() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response.content_type("text/event-stream").insert_header((
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    ));
    response
}

/// An `EventSource` reconnecting after the stream ended would run the query again and
/// duplicate its rows: a request with `Last-Event-ID` gets one `error` event instead.
fn refuse_resume(req: &HttpRequest) -> Option<HttpResponse> {
    let last = req.headers().get("last-event-id")?.to_str().unwrap_or("?");
    let query_id = last.rsplit_once(':').map(|(q, _)| q).unwrap_or(last);
    let e = GatewayError::ResumeUnsupported;
    let line = lines::error_line(query_id, e.code(), &e.client_message());
    let mut framing = SseFraming::new(query_id.into());
    let bytes = framing.to_bytes(Piece::Frame(Frame {
        bytes: line,
        rows: 0,
        kind: FrameKind::Error,
    }));
    Some(
        event_stream()
            .insert_header(("X-Accel-Buffering", "no"))
            .body(bytes),
    )
}

async fn run(
    req: &HttpRequest,
    access: Access,
    query: QueryRequest,
    engine: &Engine,
    settings: &Settings,
    metrics: &Metrics,
) -> Result<HttpResponse, GatewayError> {
    let query_id = new_query_id();
    // The response starts once the statement is bound: keep-alives cover DuckDB's work.
    let spec = QuerySpec::new(access.tenant, query, Transport::Sse)
        .query_id(Arc::clone(&query_id))
        .tables(access.tables)
        .start(Start::Bound);
    let running = engine.start(spec).await?;
    let (every, capacity) = (settings.sse_keepalive, settings.stream_buffer);
    streaming_response(
        running,
        Streamed {
            req,
            response: event_stream(),
            settings,
            metrics,
            stage: move |frames| Input::Pieces(with_keepalive(frames, every, capacity)),
            framing: SseFraming::new(query_id),
            transport: Transport::Sse,
            recorder: None,
        },
    )
}

/// Forwards frames, adding a keep-alive whenever `every` passes without one. Moves `Bytes`
/// only (no copying, no compression), so it runs on the async runtime.
fn with_keepalive(
    mut input: mpsc::Receiver<Frame>,
    every: Duration,
    capacity: usize,
) -> mpsc::Receiver<Piece> {
    let (tx, rx) = mpsc::channel(capacity);
    actix_web::rt::spawn(async move {
        loop {
            let piece = tokio::select! {
                f = input.recv() => match f {
                    Some(f) => Piece::Frame(f),
                    None => return,
                },
                _ = tokio::time::sleep(every) => Piece::Keepalive,
                _ = tx.closed() => return,
            };
            if tx.send(piece).await.is_err() {
                return;
            }
        }
    });
    rx
}
