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

use super::http::{json_request, streaming_response, QueryParams};
use crate::auth::Access;
use crate::compress::Framing;
use crate::engine::{Frame, FrameKind, Transport};
use crate::error::GatewayError;
use crate::startup::AppState;
use crate::wire::lines;
use crate::wire::QueryRequest;

/// Lays protocol lines out as server-sent events.
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
    fn write(&mut self, frame: &Frame, out: &mut dyn Write) -> std::io::Result<()> {
        let kind = match frame.kind {
            FrameKind::Keepalive => return out.write_all(b": keepalive\n\n"),
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
    req: HttpRequest,
    path: web::Path<String>,
    params: web::Query<QueryParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let access = state.authorize(&req, &path)?;
    if let Some(resp) = refuse_resume(&req) {
        return Ok(resp);
    }
    let query = params.into_inner().into_request()?;
    run(&req, access, query, &state).await
}

pub async fn post_sse(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GatewayError> {
    let access = state.authorize(&req, &path)?;
    if let Some(resp) = refuse_resume(&req) {
        return Ok(resp);
    }
    let query = json_request(payload, &state).await?;
    run(&req, access, query, &state).await
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
    let line = lines::error_line(
        query_id,
        "resume_unsupported",
        "a finished or interrupted query stream cannot be resumed; close the EventSource on end/error and open a new one to run the query again",
    );
    let mut framing = SseFraming::new(query_id.into());
    let bytes = framing.to_bytes(Frame {
        bytes: line,
        rows: 0,
        kind: FrameKind::Error,
    });
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
    state: &AppState,
) -> Result<HttpResponse, GatewayError> {
    let query_id = super::new_query_id();
    let mut running = state
        .engine
        .start(
            &access.tenant,
            query,
            Transport::Sse,
            Arc::clone(&query_id),
            None,
            access.tables,
        )
        .await?;
    running.frames = with_keepalive(running.frames, state.sse_keepalive, state.stream_buffer);
    streaming_response(
        req,
        event_stream(),
        state,
        running,
        SseFraming::new(query_id),
        Transport::Sse,
    )
}

/// Forwards frames, adding a keep-alive frame whenever `every` passes without one. Moves
/// `Bytes` only (no copying, no compression), so it runs on the async runtime.
fn with_keepalive(
    mut input: mpsc::Receiver<Frame>,
    every: Duration,
    capacity: usize,
) -> mpsc::Receiver<Frame> {
    let (tx, rx) = mpsc::channel(capacity);
    actix_web::rt::spawn(async move {
        loop {
            let frame = tokio::select! {
                f = input.recv() => match f {
                    Some(f) => f,
                    None => return,
                },
                _ = tokio::time::sleep(every) => Frame {
                    bytes: bytes::Bytes::new(),
                    rows: 0,
                    kind: FrameKind::Keepalive,
                },
                _ = tx.closed() => return,
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    rx
}
