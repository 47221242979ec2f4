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
//! - The stream ends after `end` or `error`. Answers go through the result cache as their
//!   lines (framed per response). A reconnect carrying `Last-Event-ID: <query_id>:<n>` whose
//!   stream's result is cached continues after event `n` (nothing left: `204`, which stops an
//!   `EventSource`); otherwise it gets a `resume_unavailable` event, then a fresh result.
//! - With zstd, the whole stream is one zstd frame flushed after every event (compressed on the
//!   shared workers, like the HTTP body).
//! - `subscribe=1` makes the stream a live subscription ([`super::live`]): each result is a
//!   batch of events whose last carries `id: <version>`, so an `EventSource` that reconnects
//!   names (in `Last-Event-ID`) the last result it received whole, and gets nothing until it
//!   changes, or the current one. The stream ends only with an `error` event.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::body::{streaming_response, Streamed};
use super::compress::{self, Framing, Input, Piece};
use super::edge::Authorized;
use super::http::{json_request, QueryParams};
use super::live::{self, Hub};
use super::Settings;
use crate::auth::Access;
use crate::engine::{new_query_id, CachedResult, Engine, Frame, FrameKind, Lookup, QuerySpec};
use crate::engine::{Recorder, Start, Variant};
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
        let kind = line_type(&frame.bytes);
        let line = frame.bytes.strip_suffix(b"\n").unwrap_or(&frame.bytes);
        if frame.kind == FrameKind::Note {
            // Beside the result: no id, so a reconnect still names the last result event.
            write!(out, "event: {kind}\ndata: ")?;
        } else {
            write!(
                out,
                "event: {kind}\nid: {}:{}\ndata: ",
                self.query_id, self.next
            )?;
            self.next += 1;
        }
        out.write_all(line)?;
        out.write_all(b"\n\n")?;
        Ok(())
    }
}

// Each argument is an actix extractor: what the handler uses, named.
#[allow(clippy::too_many_arguments)]
pub async fn get_sse(
    Authorized(access): Authorized,
    req: HttpRequest,
    params: web::Query<QueryParams>,
    engine: web::Data<Engine>,
    hub: web::Data<Hub>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    let params = params.into_inner();
    if params.subscribe.as_deref().is_some_and(|s| s != "0") {
        let interval_ms = match params.interval_ms.as_deref() {
            None => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                GatewayError::InvalidRequest("interval_ms must be a non-negative integer".into())
            })?),
        };
        // The version the client holds: `Last-Event-ID` (an EventSource's reconnect) or the
        // parameter; an id that is not a version (a one-shot stream's) names none.
        let held = req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or(params.last_event_id.clone())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let query = params.into_query()?;
        return subscribe(
            &req,
            access,
            query,
            interval_ms,
            held,
            &engine,
            &hub,
            &settings,
            &metrics,
        )
        .await;
    }
    let query = params.into_request()?;
    run(&req, access, query, &engine, &settings, &metrics).await
}

/// A live subscription as an event stream: one task follows the channel and writes its
/// events into a bounded channel that the body (through the zstd stage, when accepted) reads.
#[allow(clippy::too_many_arguments)]
async fn subscribe(
    req: &HttpRequest,
    access: Access,
    query: QueryRequest,
    interval_ms: Option<u64>,
    held: Option<u64>,
    engine: &Engine,
    hub: &Hub,
    settings: &Settings,
    metrics: &Metrics,
) -> Result<HttpResponse, GatewayError> {
    super::ndjson_only(&query, "SSE streams")?;
    let slot = engine.stream_slot_of(&access.tenant).await?;
    let sub = hub
        .subscribe(&access, query, interval_ms, Transport::Sse)
        .await?;
    let (tx, rx) = mpsc::channel::<Frame>(settings.stream_buffer);
    let heartbeat = settings.ws.heartbeat;
    let label = [Transport::Sse.as_str()];
    let rows = metrics.rows_sent.with_label_values(&label);
    let connections = metrics.active_connections.with_label_values(&label);
    // Fires when actix drops the body (the client left): the subscription ends, even while
    // its channel has nothing to send.
    let gone = CancellationToken::new();
    let left = gone.clone().drop_guard();
    let drain = engine.drain_token().clone();
    actix_web::rt::spawn(async move {
        connections.inc();
        let _slot = slot;
        let id = Arc::clone(&sub.channel.id);
        let how = live::Follow {
            id: &id,
            version: held,
            access: &access,
            heartbeat,
            unsubscribe: CancellationToken::new(),
            gone,
            drain: Some(drain),
        };
        let mut sink = EventSink {
            tx,
            rows,
            first: true,
        };
        live::follow(sub, how, &mut sink).await;
        connections.dec();
    });
    let mut response = event_stream();
    response.insert_header(("X-Accel-Buffering", "no"));
    let bytes_sent = metrics.bytes_sent.with_label_values(&label);
    if super::accepts_zstd(req.headers()) {
        let chunks = settings
            .compression
            .stream(
                Input::frames(rx),
                settings.zstd_level,
                settings.stream_buffer,
                compress::Raw,
            )
            .map_err(GatewayError::internal)?;
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("zstd")));
        let body = futures_util::stream::unfold(
            (chunks, bytes_sent, left),
            |(mut rx, sent, left)| async move {
                let chunk = rx.recv().await?;
                sent.inc_by(chunk.bytes.len() as u64);
                Some((Ok::<_, std::io::Error>(chunk.bytes), (rx, sent, left)))
            },
        );
        return Ok(response.streaming(body));
    }
    let body =
        futures_util::stream::unfold((rx, bytes_sent, left), |(mut rx, sent, left)| async move {
            let frame = rx.recv().await?;
            sent.inc_by(frame.bytes.len() as u64);
            Some((Ok::<_, std::io::Error>(frame.bytes), (rx, sent, left)))
        });
    Ok(response.streaming(body))
}

/// Writes a subscription's lines as server-sent events into the body's channel.
struct EventSink {
    tx: mpsc::Sender<Frame>,
    rows: prometheus::IntCounter,
    /// The first event also tells the browser to reconnect after a second (`retry:`).
    first: bool,
}

impl EventSink {
    async fn event(&mut self, line: &[u8], rows: usize, id: Option<u64>, last: bool) -> bool {
        let kind = line_type(line);
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut out = Vec::with_capacity(line.len() + 64);
        if std::mem::take(&mut self.first) {
            out.extend_from_slice(b"retry: 1000\n");
        }
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        if let Some(v) = id {
            out.extend_from_slice(format!("\nid: {v}").as_bytes());
        }
        out.extend_from_slice(b"\ndata: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\n\n");
        self.rows.inc_by(rows as u64);
        let kind = if last {
            FrameKind::End
        } else {
            FrameKind::Data
        };
        self.tx
            .send(Frame {
                bytes: out.into(),
                rows,
                kind,
            })
            .await
            .is_ok()
    }
}

impl live::Sink for EventSink {
    async fn line(&mut self, line: Bytes, last: bool) -> bool {
        self.event(&line, 0, None, last).await
    }

    async fn delivery(&mut self, delivery: &Arc<live::Delivery>) -> bool {
        let lines = delivery.lines();
        for (i, (line, rows)) in lines.iter().enumerate() {
            // Only the last event of a result carries its version: a result cut short does
            // not count as held.
            let id = (i + 1 == lines.len()).then_some(delivery.version);
            if !self.event(line, *rows, id, false).await {
                return false;
            }
        }
        true
    }
}

/// The `type` of a protocol line (`{"type":"data",…` → `data`).
fn line_type(line: &[u8]) -> &str {
    line.strip_prefix(b"{\"type\":\"")
        .and_then(|rest| rest.iter().position(|b| *b == b'"').map(|end| &rest[..end]))
        .and_then(|t| std::str::from_utf8(t).ok())
        .unwrap_or("message")
}

pub async fn post_sse(
    Authorized(access): Authorized,
    req: HttpRequest,
    payload: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
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

/// The stream a reconnecting client names in `Last-Event-ID` (`<query_id>:<n>`): its id and the
/// last event it received.
fn resumed_from(req: &HttpRequest) -> Option<(String, usize)> {
    let last = req.headers().get("last-event-id")?.to_str().ok()?;
    let (query_id, n) = last.rsplit_once(':')?;
    Some((query_id.to_string(), n.trim().parse().ok()?))
}

/// The events of a cached answer from event `from` on, framed for this response (and
/// compressed when the client accepts zstd), after `notice` if any.
async fn replay(
    req: &HttpRequest,
    result: &CachedResult,
    from: usize,
    notice: Option<Bytes>,
    settings: &Settings,
    metrics: &Metrics,
) -> Result<HttpResponse, GatewayError> {
    let mut out = Vec::with_capacity(result.bytes + 64);
    if let Some(line) = notice {
        let _ = SseFraming::new("".into()).write(&note(line), &mut out);
    }
    let mut framing = SseFraming::new(Arc::clone(&result.query_id));
    framing.next = from as u64;
    for line in result.chunks.iter().skip(from) {
        let piece = Piece::Frame(Frame {
            bytes: line.clone(),
            rows: 0,
            kind: FrameKind::Data,
        });
        let _ = framing.write(&piece, &mut out);
    }
    let zstd = super::accepts_zstd(req.headers());
    let body = if zstd {
        let level = settings.zstd_level;
        tokio::task::spawn_blocking(move || zstd::bulk::compress(&out, level))
            .await
            .map_err(GatewayError::internal)?
            .map_err(GatewayError::internal)?
    } else {
        out
    };
    let label = [Transport::Sse.as_str()];
    metrics
        .bytes_sent
        .with_label_values(&label)
        .inc_by(body.len() as u64);
    let rows: usize = result.chunk_rows.iter().skip(from).sum();
    metrics
        .rows_sent
        .with_label_values(&label)
        .inc_by(rows as u64);
    let mut response = event_stream();
    response
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(("X-Cache", "hit"))
        .insert_header(("X-Query-Id", result.query_id.as_ref()))
        .insert_header(("X-Data-Version", result.stamp.version.to_string()));
    if zstd {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("zstd")));
    }
    Ok(response.body(body))
}

/// A line beside the result (no event id).
fn note(line: Bytes) -> Piece {
    Piece::Frame(Frame {
        bytes: line,
        rows: 0,
        kind: FrameKind::Note,
    })
}

async fn run(
    req: &HttpRequest,
    access: Access,
    query: QueryRequest,
    engine: &Engine,
    settings: &Settings,
    metrics: &Metrics,
) -> Result<HttpResponse, GatewayError> {
    super::ndjson_only(&query, "SSE streams")?;
    let query_id = new_query_id();
    // The response starts once the statement is bound: keep-alives cover DuckDB's work.
    let spec = QuerySpec::new(access.tenant, query, Transport::Sse)
        .query_id(Arc::clone(&query_id))
        .tables(access.tables)
        .start(Start::Bound);
    let resumed = resumed_from(req);
    // A reconnect whose result is gone is told so before the fresh one.
    let notice = resumed
        .as_ref()
        .map(|(id, _)| lines::resume_unavailable_line(id));
    let ticket = match engine.cached(&spec, Variant::Sse).await? {
        Lookup::Hit { result, .. } => {
            return match resumed {
                // The stream it held: what it missed, or nothing (204 stops an EventSource).
                Some((id, n)) if *id == *result.query_id => {
                    let next = n.saturating_add(1);
                    if next >= result.chunks.len() {
                        return Ok(HttpResponse::NoContent().finish());
                    }
                    replay(req, &result, next, None, settings, metrics).await
                }
                _ => replay(req, &result, 0, notice, settings, metrics).await,
            }
            .map(|mut response| {
                super::body::mark_stale(&mut response, engine);
                response
            });
        }
        Lookup::Miss(ticket) => Some(ticket),
        Lookup::Bypass => None,
    };
    let (running, recording) = engine.start_recorded(spec, ticket).await?;
    let recorder = recording.recorder;
    let (every, capacity) = (settings.sse_keepalive, settings.stream_buffer);
    streaming_response(
        running,
        Streamed {
            req,
            response: event_stream(),
            settings,
            metrics,
            stage: move |frames| {
                Input::pieces(with_keepalive(frames, every, capacity, notice, recorder))
            },
            framing: SseFraming::new(query_id),
            transport: Transport::Sse,
            recorder: None,
        },
    )
}

/// Forwards frames (after `notice`, if any), adding a keep-alive whenever `every` passes
/// without one, and copies the result's lines to the cache's `recorder` (stored once `end`
/// has passed). Moves `Bytes` only (no copying, no compression), so it runs on the async
/// runtime.
fn with_keepalive(
    mut input: mpsc::Receiver<Frame>,
    every: Duration,
    capacity: usize,
    notice: Option<Bytes>,
    mut recorder: Option<Box<Recorder>>,
) -> mpsc::Receiver<Piece> {
    let (tx, rx) = mpsc::channel(capacity);
    actix_web::rt::spawn(async move {
        if let Some(line) = notice {
            if tx.send(note(line)).await.is_err() {
                return;
            }
        }
        loop {
            let piece = tokio::select! {
                f = input.recv() => match f {
                    Some(f) => {
                        if let Some(r) = recorder.take() {
                            recorder = r.push(&f.bytes, f.rows);
                        }
                        match f.kind {
                            FrameKind::End => {
                                if let Some(r) = recorder.take() {
                                    r.complete();
                                }
                            }
                            // A failed result is not kept; identical requests go at once.
                            FrameKind::Error(_) => recorder = None,
                            _ => {}
                        }
                        Piece::Frame(f)
                    }
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
