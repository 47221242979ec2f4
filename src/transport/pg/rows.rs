//! A running query's result on the socket: the engine's frames already hold PostgreSQL's
//! backend messages ([`crate::encode::pg`]); a [`Result`] cuts them at message boundaries and
//! writes them in order, a number of rows at a time when a portal asks (`Execute` with a row
//! limit), while a `CancelRequest` or a closed socket reaches DuckDB.
//!
//! Invariants:
//! - Frames are taken from the engine's bounded channel only as fast as the socket takes
//!   their messages (pgwire's sink waits while the socket is full): a slow client pauses
//!   DuckDB. A suspended portal holds at most one frame.
//! - Dropping a [`Result`] (the socket failed, the portal closed, the connection ended)
//!   cancels its query as a disconnect ([`crate::engine::RunningQuery::guard`]).
//! - A result the cache holds ([`Result::cached`]) is sent from its stored frames exactly as a
//!   run's; a run's frames are copied to the cache's recorder as they are read, and kept only
//!   once its last frame was read (a portal closed early, an error: nothing is kept).
//! - A result ends with a `CommandComplete` (its rows counted per `Execute`, as PostgreSQL
//!   counts them) or its `ErrorResponse`; a stream that stops without either is an error,
//!   never a clean short result.

use bytes::{Bytes, BytesMut};
use futures::sink::{Sink, SinkExt};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::data::RowDescription;
use pgwire::messages::extendedquery::PortalSuspended;
use pgwire::messages::response::CommandComplete;
use pgwire::messages::{DecodeContext, PgWireBackendMessage};
use std::fmt::Debug;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::copy_data;
use super::statement::{CopyFormat, CopyOut};
use crate::engine::{
    CachedResult, CancelOnDrop, Frame, FrameKind, Recorder, RunningQuery, StreamSlot,
};
use crate::metrics::{Metrics, Transport};

/// How a turn of sending ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Complete,
    /// The row limit was reached: more rows wait (`PortalSuspended` sent).
    Suspended,
    /// It ended with an `ErrorResponse` (sent).
    Failed,
}

/// How many rows a turn sends, and how it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// An `Execute`: up to this many rows (0: all), then `PortalSuspended` if more wait, or
    /// `SELECT n`.
    Portal(usize),
    /// A cursor's `FETCH`: up to this many rows (`None`: all), then `FETCH n`.
    Fetch(Option<u64>),
}

impl Turn {
    fn limit(self) -> Option<u64> {
        match self {
            Self::Portal(0) => None,
            Self::Portal(n) => Some(n as u64),
            Self::Fetch(n) => n,
        }
    }

    fn tag(self, rows: u64) -> String {
        match self {
            Self::Portal(_) => format!("SELECT {rows}"),
            Self::Fetch(_) => format!("FETCH {rows}"),
        }
    }
}

/// Where a result's frames come from.
enum Source {
    /// A running query, and the recorder that keeps its frames for the cache (a miss).
    Running {
        frames: mpsc::Receiver<Frame>,
        recorder: Option<Box<Recorder>>,
    },
    /// A result the cache holds: its stored frames, in order.
    Cached(std::vec::IntoIter<Bytes>),
}

/// A started result, partly or not yet sent.
pub struct Result {
    source: Source,
    /// What a `CancelRequest` fires to stop it.
    cancel: CancellationToken,
    /// Messages of the last frame not sent yet.
    buf: BytesMut,
    /// The `RowDescription`, once read.
    description: Option<RowDescription>,
    finished: bool,
    sent: Sent,
    _guard: Option<CancelOnDrop>,
    _slot: Option<StreamSlot>,
}

impl Result {
    /// Takes over `running`, started under `cancel` (a `CancelRequest` fires it); its frames
    /// go to `recorder` too when the cache may keep them.
    pub fn new(
        running: RunningQuery,
        cancel: CancellationToken,
        recorder: Option<Box<Recorder>>,
        metrics: &Metrics,
    ) -> Self {
        Self {
            source: Source::Running {
                frames: running.frames,
                recorder,
            },
            cancel,
            buf: BytesMut::new(),
            description: None,
            finished: false,
            sent: Sent::new(metrics),
            _guard: Some(running.guard),
            _slot: running.stream_slot,
        }
    }

    /// A result the cache holds (nothing runs: a `CancelRequest` has nothing to stop).
    pub fn cached(result: &CachedResult, metrics: &Metrics) -> Self {
        Self {
            source: Source::Cached(result.chunks.clone().into_iter()),
            cancel: CancellationToken::new(),
            buf: BytesMut::new(),
            description: None,
            finished: false,
            sent: Sent::new(metrics),
            _guard: None,
            _slot: None,
        }
    }

    /// What cancels the result (the connection's `CancelRequest` target while it sends).
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The result's `RowDescription`; `None` when it failed before one.
    pub async fn description(&mut self) -> PgWireResult<Option<RowDescription>> {
        if self.description.is_none() && !self.finished {
            self.fill().await?;
            if self.buf.first() == Some(&b'T') {
                if let Some(PgWireBackendMessage::RowDescription(d)) = self.decode()? {
                    self.description = Some(d);
                }
            }
        }
        Ok(self
            .description
            .as_ref()
            .map(|d| RowDescription::new(clone_fields(d))))
    }

    /// Sends the result's messages: its `RowDescription` too when `describe`, then the rows
    /// `turn` allows, then its end (or `PortalSuspended`).
    pub async fn send<C>(
        &mut self,
        client: &mut C,
        describe: bool,
        turn: Turn,
    ) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let description = self.description().await?;
        if let (true, Some(d)) = (describe, description) {
            client.feed(PgWireBackendMessage::RowDescription(d)).await?;
        }
        let mut rows = 0;
        let complete =
            |rows| PgWireBackendMessage::CommandComplete(CommandComplete::new(turn.tag(rows)));
        loop {
            if self.finished && self.buf.is_empty() {
                // Drained by an earlier turn: nothing more.
                client.feed(complete(rows)).await?;
                return Ok(Ended::Complete);
            }
            if turn.limit() == Some(rows) {
                if let Turn::Fetch(_) = turn {
                    client.feed(complete(rows)).await?;
                    return Ok(Ended::Complete);
                }
                client
                    .feed(PgWireBackendMessage::PortalSuspended(PortalSuspended::new()))
                    .await?;
                return Ok(Ended::Suspended);
            }
            if self.buf.is_empty() {
                // The batch is out: the rows leave now, while DuckDB works on the next.
                client.flush().await?;
                self.fill().await?;
            }
            match self.decode()? {
                Some(PgWireBackendMessage::DataRow(row)) => {
                    rows += 1;
                    client.feed(PgWireBackendMessage::DataRow(row)).await?;
                }
                Some(PgWireBackendMessage::CommandComplete(_)) => {
                    client.feed(complete(rows)).await?;
                    return Ok(Ended::Complete);
                }
                Some(error @ PgWireBackendMessage::ErrorResponse(_)) => {
                    client.feed(error).await?;
                    return Ok(Ended::Failed);
                }
                Some(_) | None => {}
            }
        }
    }

    /// Sends the result as `COPY … TO STDOUT` data: `CopyOutResponse`, each row a `CopyData`,
    /// `CopyDone`, `COPY n`; a failure ends it with its
    /// `ErrorResponse`, as PostgreSQL aborts a COPY.
    pub async fn copy_out<C>(&mut self, client: &mut C, copy: &CopyOut) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let description = self.description().await?;
        let names: Vec<String> = description
            .map(|d| d.fields.iter().map(|f| f.name.clone()).collect())
            .unwrap_or_default();
        let binary = copy.format == CopyFormat::Binary;
        let start = CopyOutResponse::new(
            i8::from(binary),
            names.len() as i16,
            vec![i16::from(binary); names.len()],
        );
        client
            .feed(PgWireBackendMessage::CopyOutResponse(start))
            .await?;
        let mut out = copy_data::Writer::new(copy);
        out.start(&names);
        if copy.format != CopyFormat::Binary && out.has_data() {
            // A header line is a message of its own; binary's signature goes with row one.
            client.feed(copy_message(&mut out)).await?;
        }
        let mut rows = 0u64;
        loop {
            if self.buf.is_empty() {
                client.flush().await?;
                self.fill().await?;
            }
            match self.decode()? {
                Some(PgWireBackendMessage::DataRow(row)) => {
                    rows += 1;
                    out.row(&row);
                    // One row per message, as PostgreSQL sends them (psycopg reads so).
                    client.feed(copy_message(&mut out)).await?;
                }
                Some(PgWireBackendMessage::CommandComplete(_)) => {
                    out.finish();
                    if out.has_data() {
                        client.feed(copy_message(&mut out)).await?;
                    }
                    client
                        .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
                        .await?;
                    let tag = CommandComplete::new(format!("COPY {rows}"));
                    client
                        .feed(PgWireBackendMessage::CommandComplete(tag))
                        .await?;
                    return Ok(Ended::Complete);
                }
                Some(error @ PgWireBackendMessage::ErrorResponse(_)) => {
                    client.feed(error).await?;
                    return Ok(Ended::Failed);
                }
                Some(_) | None => {}
            }
        }
    }

    /// Reads the next frame with messages into `buf`.
    async fn fill(&mut self) -> PgWireResult<()> {
        while self.buf.is_empty() {
            if self.finished {
                return Err(ended_early());
            }
            let next = match &mut self.source {
                Source::Running { frames, recorder } => match frames.recv().await {
                    Some(frame) if frame.kind == FrameKind::Note => continue,
                    Some(frame) => {
                        record(recorder, &frame);
                        self.sent.add(frame.rows, frame.bytes.len());
                        Some((frame.bytes, frame.kind.is_final()))
                    }
                    None => None,
                },
                Source::Cached(chunks) => chunks.next().map(|bytes| {
                    self.sent.add(count_rows(&bytes), bytes.len());
                    (bytes, chunks.len() == 0)
                }),
            };
            let Some((bytes, last)) = next else {
                self.finished = true;
                return Err(ended_early());
            };
            self.finished = last;
            self.buf = BytesMut::from(bytes);
        }
        Ok(())
    }

    /// The next whole message of `buf`.
    fn decode(&mut self) -> PgWireResult<Option<PgWireBackendMessage>> {
        PgWireBackendMessage::decode(&mut self.buf, &DecodeContext::default())
    }
}

/// The rows and bytes a result hands to the socket (`duckstream_rows_sent_total` and
/// `duckstream_bytes_sent_total`, `transport="pg"`), counted as its frames are taken.
struct Sent {
    rows: prometheus::IntCounter,
    bytes: prometheus::IntCounter,
}

impl Sent {
    fn new(metrics: &Metrics) -> Self {
        let label = [Transport::Pg.as_str()];
        Self {
            rows: metrics.rows_sent.with_label_values(&label),
            bytes: metrics.bytes_sent.with_label_values(&label),
        }
    }

    fn add(&self, rows: usize, bytes: usize) {
        self.rows.inc_by(rows as u64);
        self.bytes.inc_by(bytes as u64);
    }
}

/// The `DataRow` messages (`D`) in a frame of whole backend messages.
fn count_rows(bytes: &[u8]) -> usize {
    let mut rows = 0;
    let mut at = 0;
    while let (Some(&tag), Some(len)) = (bytes.get(at), bytes.get(at + 1..at + 5)) {
        rows += usize::from(tag == b'D');
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        at += 1 + len.max(4);
    }
    rows
}

/// Copies `frame` to the cache's recorder: kept once the result's `End` is read, dropped at
/// an error or past the entry's size.
fn record(recorder: &mut Option<Box<Recorder>>, frame: &Frame) {
    let Some(r) = recorder.take() else {
        return;
    };
    match frame.kind {
        FrameKind::Error(_) => {}
        FrameKind::End => {
            if let Some(r) = r.push(&frame.bytes, frame.rows) {
                r.complete();
            }
        }
        _ => *recorder = r.push(&frame.bytes, frame.rows),
    }
}

fn clone_fields(d: &RowDescription) -> Vec<pgwire::messages::data::FieldDescription> {
    d.fields
        .iter()
        .map(|f| {
            pgwire::messages::data::FieldDescription::new(
                f.name.clone(),
                f.table_id,
                f.column_id,
                f.type_id,
                f.type_size,
                f.type_modifier,
                f.format_code,
            )
        })
        .collect()
}

/// What `out` gathered, as one `CopyData`.
fn copy_message(out: &mut copy_data::Writer) -> PgWireBackendMessage {
    PgWireBackendMessage::CopyData(CopyData::new(out.take()))
}

fn ended_early() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "XX000".into(),
        "the result ended before it was complete".into(),
    )))
}

/// Writes each whole message of `bytes` (queued; the caller's next flush sends them).
pub async fn send_messages<C>(client: &mut C, bytes: Bytes) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut buf = BytesMut::from(bytes);
    let context = DecodeContext::default();
    while let Some(message) = PgWireBackendMessage::decode(&mut buf, &context)? {
        client.feed(message).await?;
    }
    Ok(())
}
