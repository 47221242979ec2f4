//! The way out of a run: [`Running`] (what one run holds), every frame's send into the bounded
//! channel, the loop from DuckDB's chunks to the encoder's lines, and the final frame.
//!
//! Invariants:
//! - Every send waits on the bounded channel *or* cancellation, never forever: the query's
//!   watcher cancels an HTTP/SSE send that waited `stall_timeout`
//!   ([`QueryControl::wait_begins`](crate::engine::control::QueryControl::wait_begins)); a
//!   WebSocket's tasks bound their own clients. Only the final `error` line waits without
//!   cancellation, for at most [`FINAL_LINE_WAIT`].
//! - Sending the encoder's open line ([`Running::flush`]) is one step, written once: at a line's
//!   age limit, before a stream that ends early says why, and before the `end` line.
//! - The loop adds nothing per chunk to the encoder's own work (no allocation, lock or dynamic
//!   call beyond the encoder's): its lines go straight to the channel.
//! - A stream ends with exactly one of `end` and `error`, unless its reader is gone (or took
//!   nothing for [`FINAL_LINE_WAIT`]).

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::errors::{cancelled, cancelled_error, log_error, outcome_of, stopped, Ended};
use super::progress::Sampler;
use super::{Job, Started};
use crate::duck::{DataChunk, Streaming};
use crate::encode::{self, Flow, Line, ResultEncoder, ResultLimits, Stopped};
use crate::engine::control::CancelReason;
use crate::engine::stamp::Stamp;
use crate::engine::{Frame, FrameKind};
use crate::error::GatewayError;
use crate::metrics::Outcome;

/// A partial line is sent once it is this old, so slow queries still trickle rows out. Its age
/// counts from the end of the last send: time spent waiting for a slow reader is not DuckDB
/// being slow, and cutting lines then would only make more of them.
const LINE_MAX_AGE: Duration = Duration::from_millis(50);
/// How long a final `error` line may wait for a stalled reader.
const FINAL_LINE_WAIT: Duration = Duration::from_secs(15);

/// What one run holds, from the job's start to its final frame.
pub(super) struct Running {
    pub started: Option<oneshot::Sender<Started>>,
    /// What the result depends on ([`crate::engine::QuerySpec::stamp`]), sent with `started`.
    pub stamp: Option<Stamp>,
    /// Sends `progress` lines while DuckDB works, when the request asked.
    pub progress: Option<Sampler>,
    /// The format's encoder, once the result's columns are known.
    pub encoder: Option<Box<dyn ResultEncoder>>,
    pub rows: u64,
    /// Time spent waiting for the reader (the channel was full).
    pub blocked: Duration,
    /// The data version the query's transaction reads, when the database names its own (a
    /// lake's snapshot): the stamp's version then.
    pub read_version: Option<u64>,
}

impl Running {
    pub fn new(started: oneshot::Sender<Started>) -> Self {
        Self {
            started: Some(started),
            stamp: None,
            progress: None,
            encoder: None,
            rows: 0,
            blocked: Duration::ZERO,
            read_version: None,
        }
    }

    /// Sends a frame, waiting for room or cancellation.
    pub fn send(&mut self, job: &Job, frame: Frame) -> Result<(), Ended> {
        let frame = match job.frames.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Ended::Gone),
            Err(mpsc::error::TrySendError::Full(f)) => f,
        };
        // The reader is behind: DuckDB pauses here until it catches up.
        let waiting = Instant::now();
        job.control.wait_begins();
        let sent = futures_executor::block_on(async {
            tokio::select! {
                biased;
                _ = job.control.cancelled() => Err(cancelled(&job.control)),
                r = job.frames.send(frame) => r.map_err(|_| Ended::Gone),
            }
        });
        job.control.wait_ends();
        self.blocked += waiting.elapsed();
        sent
    }

    fn send_line(&mut self, job: &Job, line: Line) -> Result<(), Ended> {
        self.rows += line.rows as u64;
        self.send(
            job,
            Frame {
                bytes: line.bytes,
                rows: line.rows,
                kind: FrameKind::Data,
            },
        )
    }

    /// Closes the encoder's open line and sends it; whether there was one.
    #[inline]
    fn flush(&mut self, job: &Job, encoder: &mut dyn ResultEncoder) -> Result<bool, Ended> {
        match encoder.flush() {
            Some(line) => self.send_line(job, line).map(|()| true),
            None => Ok(false),
        }
    }

    /// Ends a stream the encoder stopped: sends the rows it holds (the allowed part, or the rows
    /// before a bad one), then says why the stream ends there.
    fn flush_then_fail(
        &mut self,
        job: &Job,
        encoder: &mut dyn ResultEncoder,
        e: GatewayError,
    ) -> Ended {
        match self.flush(job, encoder) {
            Ok(_) => Ended::Failed(e),
            Err(end) => end,
        }
    }

    /// Encodes and sends every chunk, from `chunk` (the first) on.
    pub fn stream(
        &mut self,
        job: &Job,
        encoder: &mut dyn ResultEncoder,
        mut chunk: Option<DataChunk>,
        result: &mut Streaming<'_>,
    ) -> Ended {
        let mut last_sent = Instant::now();
        while let Some(c) = chunk.take() {
            let mut failed = None;
            let pushed = encoder.push(&c, &mut |line| {
                let sent = self.send_line(job, line).map_err(|e| {
                    failed = Some(e);
                    Stopped
                });
                last_sent = Instant::now();
                sent
            });
            drop(c);
            match pushed {
                Ok(Flow::Continue) => {}
                Err(Stopped) => {
                    return failed.unwrap_or_else(|| {
                        Ended::Failed(GatewayError::internal("a data chunk lacks a result column"))
                    })
                }
                Ok(Flow::LimitReached) => {
                    return self.flush_then_fail(job, encoder, limit_exceeded(&job.limits))
                }
                Ok(Flow::Invalid { column, reason }) => {
                    let e = GatewayError::QueryFailed(format!(
                        "column {} holds a value that cannot be encoded: malformed WKB ({reason})",
                        column + 1
                    ));
                    return self.flush_then_fail(job, encoder, e);
                }
                Ok(Flow::Failed(message)) => {
                    return self.flush_then_fail(job, encoder, GatewayError::QueryFailed(message))
                }
            }
            if encoder.pending_rows() > 0 && last_sent.elapsed() >= LINE_MAX_AGE {
                match self.flush(job, encoder) {
                    Ok(true) => last_sent = Instant::now(),
                    Ok(false) => {}
                    Err(end) => return end,
                }
            }
            if let Some(end) = stopped(&job.control) {
                return end;
            }
            chunk = match result.next_chunk() {
                Ok(c) => c,
                Err(e) => return job.failures().execution_error(e),
            };
        }
        match self.flush(job, encoder) {
            Ok(_) => Ended::Complete,
            Err(end) => end,
        }
    }

    /// A query whose client is gone (or stalled: counted as a slow consumer).
    fn gone(&self, job: &Job) -> Outcome {
        if job.control.reason() == Some(CancelReason::Stalled) {
            tracing::info!(
                query_id = %job.spec.query_id,
                "the reader took nothing for the stall timeout: query stopped as gone"
            );
            job.metrics
                .slow_consumer_disconnects
                .with_label_values(&[job.spec.label.as_str()])
                .inc();
        }
        Outcome::Disconnected
    }

    /// Sends the last line (or the rejection) and returns the outcome for metrics.
    pub fn finish(&mut self, job: &Job, ended: Ended) -> Outcome {
        match ended {
            Ended::Complete => self.finish_complete(job),
            // The response already started (SSE): the refusal becomes the final line.
            Ended::Rejected(e) if self.started.is_none() => self.finish_failed(job, e),
            Ended::Rejected(e) => {
                log_error(&e);
                let outcome = outcome_of(&e);
                job.metrics.errors.with_label_values(&[e.code()]).inc();
                if let Some(started) = self.started.take() {
                    let _ = started.send(Err(e));
                }
                outcome
            }
            Ended::Failed(e) => self.finish_failed(job, e),
            Ended::Gone => self.gone(job),
        }
    }

    /// Sends the `end` line of a result that is complete.
    fn finish_complete(&mut self, job: &Job) -> Outcome {
        let elapsed_ms = job.accepted_at.elapsed().as_millis() as u64;
        let Some(encoder) = self.encoder.as_mut() else {
            return self.finish_failed(job, GatewayError::internal("no encoder at the end"));
        };
        if let Some(failure) = encoder.failure() {
            // Rows were lost on the way: the result must not end as complete.
            return self.finish_failed(job, GatewayError::QueryFailed(failure));
        }
        let frame = Frame {
            bytes: encoder.end(elapsed_ms),
            rows: 0,
            kind: FrameKind::End,
        };
        match self.send(job, frame) {
            Ok(()) => Outcome::Ok,
            Err(Ended::Gone) => self.gone(job),
            // Cancelled while handing over the very last line.
            Err(_) => self.finish_failed(job, cancelled_error(&job.control)),
        }
    }

    fn finish_failed(&mut self, job: &Job, e: GatewayError) -> Outcome {
        log_error(&e);
        job.metrics.errors.with_label_values(&[e.code()]).inc();
        let outcome = outcome_of(&e);
        let (query_id, message) = (&job.spec.query_id, e.client_message());
        // The format's own failure path; before the header there is no encoder yet.
        let error = match self.encoder.as_mut() {
            Some(encoder) => encoder.fail(query_id, e.code(), &message),
            None => encode::error_frame(job.spec.format, query_id, e.code(), &message),
        };
        let mut frame = Frame {
            bytes: error.bytes,
            rows: 0,
            kind: FrameKind::Error(error.place),
        };
        // The reader may be stalled (that may be why it timed out): wait a bounded time.
        let deadline = Instant::now() + FINAL_LINE_WAIT;
        loop {
            match job.frames.try_send(frame) {
                Ok(()) => return outcome,
                Err(mpsc::error::TrySendError::Closed(_)) => return Outcome::Disconnected,
                Err(mpsc::error::TrySendError::Full(f)) if Instant::now() < deadline => {
                    frame = f;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return outcome,
            }
        }
    }
}

/// The end of a result that passed the server's limits.
fn limit_exceeded(limits: &ResultLimits) -> GatewayError {
    GatewayError::LimitExceeded(format!(
        "the result passed the server's limit ({}); add LIMIT or narrow the query",
        limit_text(limits)
    ))
}

/// The result limits that are set, for a client's message (`1000 rows and 1048576 bytes`).
fn limit_text(limits: &ResultLimits) -> String {
    let mut parts = Vec::new();
    if limits.max_rows != u64::MAX {
        parts.push(format!("{} rows", limits.max_rows));
    }
    if limits.max_bytes != u64::MAX {
        parts.push(format!("{} bytes", limits.max_bytes));
    }
    parts.join(" and ")
}
