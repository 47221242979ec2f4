//! The streaming response body shared by the HTTP and SSE transports: pieces laid out by a
//! [`Framing`], optionally through the zstd stage, handed to actix as it asks for them.
//!
//! Invariants:
//! - The body owns the query's cancel guard and stream slot: when actix drops it (client
//!   gone), the query is interrupted and the slot freed. A stalled stream's slot is freed
//!   sooner, by its query's control (actix does not poll, nor drop, a body it cannot write).
//! - A stream that ends without its final frame fails the body, so the client sees a broken
//!   stream, never a clean short result.
//! - Time to first byte is observed when the first chunk carrying data is handed to actix,
//!   counted from the moment the request was accepted.
//! - With a cache [`Recorder`], every chunk handed to actix is copied to it, and the result is
//!   stored only once the chunk carrying `end` has gone out: a failed, cut or abandoned
//!   stream is never cached.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;
use futures_util::Stream;
use prometheus::{Histogram, IntCounter, IntGauge};
use tokio::sync::mpsc;

use super::compress::{Framing, Input, Piece, WireChunk};
use super::Settings;
use crate::engine::{CachedResult, CancelOnDrop, Frame, FrameKind, Recorder, StreamSlot};
use crate::engine::{Engine, RunningQuery};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};

/// A response that streams a query: what [`streaming_response`] needs besides the query.
pub struct Streamed<'a, F, S> {
    pub req: &'a HttpRequest,
    pub response: HttpResponseBuilder,
    pub settings: &'a Settings,
    pub metrics: &'a Metrics,
    /// What reads the query's frames: [`Input::frames`], or a stage in between (SSE's
    /// keep-alive).
    pub stage: S,
    pub framing: F,
    pub transport: Transport,
    /// Records the response for the result cache (its ETag is already in `response`).
    pub recorder: Option<Box<Recorder>>,
}

/// Finishes a streaming response: the query's pieces, laid out by `framing`, compressed on the
/// shared workers when the request accepts zstd, counted as they are handed to actix.
/// The body owns the query's cancel guard and stream slot.
pub fn streaming_response<F, S>(
    running: RunningQuery,
    streamed: Streamed<'_, F, S>,
) -> Result<HttpResponse, GatewayError>
where
    F: Framing,
    S: FnOnce(mpsc::Receiver<Frame>) -> Input,
{
    let Streamed {
        req,
        mut response,
        settings,
        metrics,
        stage,
        framing,
        transport,
        recorder,
    } = streamed;
    let RunningQuery {
        query_id,
        accepted_at,
        frames,
        guard,
        stream_slot: slot,
        data_version,
        ..
    } = running;
    let input = stage(frames);
    let zstd = super::accepts_zstd(req.headers());
    let source = if zstd {
        let rx = settings
            .compression
            .stream(input, settings.zstd_level, settings.stream_buffer, framing)
            .map_err(GatewayError::internal)?;
        Source::Compressed(rx)
    } else {
        Source::Plain(input, Box::new(framing))
    };
    let label = [transport.as_str()];
    let connection = metrics.active_connections.with_label_values(&label);
    connection.inc();
    let body = Body {
        connection,
        source,
        finished: false,
        accepted_at,
        ttfb: Some(metrics.ttfb.with_label_values(&label)),
        rows: metrics.rows_sent.with_label_values(&label),
        bytes: metrics.bytes_sent.with_label_values(&label),
        raw_bytes: metrics.uncompressed_bytes.with_label_values(&label),
        recorder,
        _guard: guard,
        _slot: slot,
    };
    // A result that may be cached has an ETag: the browser may keep it and revalidate it.
    let cache_control = if body.recorder.is_some() {
        "private, no-cache"
    } else {
        "no-cache, no-store"
    };
    response
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ))
        .insert_header(("X-Accel-Buffering", "no"))
        .insert_header(("X-Query-Id", query_id.as_ref()))
        .insert_header(("X-Data-Version", data_version.to_string()))
        .insert_header((
            header::VARY,
            HeaderValue::from_static("accept-encoding, accept"),
        ));
    if zstd {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("zstd")));
    }
    Ok(response.streaming(body))
}

enum Source {
    Plain(Input, Box<dyn Framing>),
    Compressed(mpsc::Receiver<WireChunk>),
}

/// The response body: pulls chunks from the pipeline as actix asks for them.
struct Body {
    /// Dropped with the body, and first (fields drop in order): a client that hangs up
    /// interrupts DuckDB before the executor can see the channel close and stop quietly.
    _guard: CancelOnDrop,
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
    recorder: Option<Box<Recorder>>,
    /// The tenant's stream slot, freed with the body.
    _slot: Option<StreamSlot>,
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
        loop {
            let chunk = match this.poll_chunk(cx) {
                Poll::Ready(Some(chunk)) => chunk,
                Poll::Ready(None) => return Poll::Ready(this.end_of_stream()),
                Poll::Pending => return Poll::Pending,
            };
            this.account(&chunk);
            // An empty chunk (the end of a format without a closing line) is not handed to
            // actix: an empty piece of a chunked body would end it.
            if !chunk.bytes.is_empty() {
                return Poll::Ready(Some(Ok(chunk.bytes)));
            }
        }
    }
}

impl Body {
    /// The next chunk of the pipeline.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<WireChunk>> {
        let chunk = match &mut self.source {
            Source::Plain(rx, framing) => match rx.poll_recv(cx) {
                Poll::Ready(Some(piece)) => {
                    let (rows, kind) = match &piece {
                        Piece::Frame(f) => (f.rows, Some(f.kind)),
                        Piece::Keepalive => (0, None),
                    };
                    let has_data = kind == Some(FrameKind::Data);
                    let last = kind.is_some_and(FrameKind::is_final);
                    let bytes = framing.to_bytes(piece);
                    WireChunk {
                        raw_len: bytes.len(),
                        rows,
                        has_data,
                        last,
                        complete: kind == Some(FrameKind::End),
                        text: false,
                        bytes,
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            },
            Source::Compressed(rx) => return rx.poll_recv(cx),
        };
        Poll::Ready(Some(chunk))
    }

    /// Counts a chunk handed on, and copies it to the recorder.
    fn account(&mut self, chunk: &WireChunk) {
        self.finished |= chunk.last;
        if let Some(recorder) = self.recorder.take() {
            self.recorder = if chunk.bytes.is_empty() {
                Some(recorder)
            } else {
                recorder.push(&chunk.bytes, chunk.rows)
            };
            if chunk.last {
                if let Some(recorder) = self.recorder.take() {
                    if chunk.complete {
                        recorder.complete();
                    }
                }
            }
        }
        if chunk.has_data {
            if let Some(ttfb) = self.ttfb.take() {
                ttfb.observe(self.accepted_at.elapsed().as_secs_f64());
            }
        }
        self.rows.inc_by(chunk.rows as u64);
        self.bytes.inc_by(chunk.bytes.len() as u64);
        self.raw_bytes.inc_by(chunk.raw_len as u64);
    }
}

/// Marks an answer from the cache as possibly stale while other replicas' writes go unheard
/// (`X-Stale: storage_unavailable`: a lake's catalog is down): they may have written since.
pub fn mark_stale(response: &mut HttpResponse, engine: &Engine) {
    if !engine.hears_writes() {
        response.headers_mut().insert(
            header::HeaderName::from_static("x-stale"),
            HeaderValue::from_static("storage_unavailable"),
        );
    }
}

/// The answer from a cached result: its stored bytes as they went out the first time (its
/// `query_id` is that execution's), `X-Cache: hit`, and its ETag.
pub fn cached_response(
    result: &CachedResult,
    etag: &str,
    content_type: &'static str,
    zstd: bool,
    metrics: &Metrics,
    transport: Transport,
    accepted_at: Instant,
) -> HttpResponse {
    let label = [transport.as_str()];
    // The whole answer is ready: its first byte goes out now.
    metrics
        .ttfb
        .with_label_values(&label)
        .observe(accepted_at.elapsed().as_secs_f64());
    metrics
        .rows_sent
        .with_label_values(&label)
        .inc_by(result.rows);
    metrics
        .bytes_sent
        .with_label_values(&label)
        .inc_by(result.bytes as u64);
    let mut response = HttpResponse::Ok();
    response
        .content_type(content_type)
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        ))
        .insert_header((header::ETAG, etag))
        .insert_header(("X-Cache", "hit"))
        .insert_header(("X-Query-Id", result.query_id.as_ref()))
        .insert_header(("X-Data-Version", result.stamp.version.to_string()))
        .insert_header((
            header::VARY,
            HeaderValue::from_static("accept-encoding, accept"),
        ));
    if zstd {
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("zstd")));
    }
    let chunks = result.chunks.clone();
    response.streaming(futures_util::stream::iter(
        chunks.into_iter().map(Ok::<_, std::io::Error>),
    ))
}
