//! zstd compression on a shared pool of workers, and the [`Framing`] of byte streams.
//!
//! Why a pool: on two cores, zstd is slower than DuckDB plus the JSON encoder, so it must run
//! beside them, not after them on the same core, and never on the async runtime that serves
//! the sockets. A thread per stream did that, but cost a thread, its stack and its buffers for
//! every stream, busy or not. Now every stream is a task on [`Pool`]: a small tokio runtime of
//! its own (`compress_workers` threads, default the number of cores) whose threads do nothing
//! but compress. A stream reads protocol lines from the executor's bounded channel and writes
//! compressed chunks to another bounded channel; a slow client still pauses DuckDB through
//! both, and a stream waiting on either costs no worker.
//!
//! Invariants:
//! - Fair: one turn compresses one batch (lines up to [`MAX_BATCH`] input bytes plus the line
//!   that passes it, well under a millisecond at level 1) and then yields, so every ready stream gets its turn in order.
//! - First data never queues behind bulk: a stream's first [`FIRST_LANE_BYTES`] run on a lane
//!   of their own (one thread), then the task moves to the bulk workers; a small result never
//!   leaves the first lane.
//! - [`Pool::frames`] produces independent zstd frames that record their content size, one
//!   per batch of lines, so that each WebSocket message decodes on its own (`fzstd` in a
//!   browser). Their zstd context belongs to the worker, not the stream: a WebSocket query
//!   holds none.
//! - [`Pool::stream`] produces one zstd frame for the whole response, flushed after each batch
//!   of lines that were ready together, so a decoder can always output every line sent so far.
//!   Its context lives as long as the stream (a frame's window spans it); compressed bytes
//!   are built in the worker's buffer and handed over at their exact size, so a stream keeps
//!   no output buffer between batches.
//! - A continuous stream's window is the configured `zstd_window_log` (default 17, 128 KiB;
//!   at most 8 MiB, what browsers decode), whatever the level, and its blocks are at most
//!   64 KiB: the two size a stream's context, which lives as long as the stream (585 KiB),
//!   and a small window is also faster (docs/BENCHMARKS.md).
//! - When the output's reader goes away, the stream's task ends and drops its input, which
//!   stops the executor's sends.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::encode::ErrorPlace;
use crate::engine::{Frame, FrameKind};

/// What a byte stream (an HTTP or SSE body) carries: the query's frames, and the transport's
/// own keep-alives between them.
#[derive(Debug)]
pub enum Piece {
    Frame(Frame),
    /// Nothing from the query: the transport shows the line is alive (SSE: a comment).
    Keepalive,
}

impl Piece {
    fn rows(&self) -> usize {
        match self {
            Self::Frame(f) => f.rows,
            Self::Keepalive => 0,
        }
    }

    fn kind(&self) -> Option<FrameKind> {
        match self {
            Self::Frame(f) => Some(f.kind),
            Self::Keepalive => None,
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Frame(f) => f.bytes.len(),
            Self::Keepalive => 0,
        }
    }
}

/// The input of a byte stream: a query's frames as the engine sends them, or pieces from a
/// stage in between (SSE's keep-alive). A byte stream has no place beside it: an error that
/// goes there ([`ErrorPlace::Beside`]) ends the input unsent, and the stream breaks.
pub struct Input {
    source: Source,
    /// A frame said that the stream breaks: nothing more is read.
    broken: bool,
}

enum Source {
    Frames(mpsc::Receiver<Frame>),
    Pieces(mpsc::Receiver<Piece>),
}

impl Input {
    /// The query's frames as the engine sends them.
    pub fn frames(rx: mpsc::Receiver<Frame>) -> Self {
        Self {
            source: Source::Frames(rx),
            broken: false,
        }
    }

    /// Pieces from a stage between the engine and the stream.
    pub fn pieces(rx: mpsc::Receiver<Piece>) -> Self {
        Self {
            source: Source::Pieces(rx),
            broken: false,
        }
    }

    /// `piece`, or the end of the input at an error that goes beside the stream.
    fn in_stream(&mut self, piece: Option<Piece>) -> Option<Piece> {
        let breaks = |p: &Piece| p.kind() == Some(FrameKind::Error(ErrorPlace::Beside));
        match piece {
            Some(p) if breaks(&p) => {
                self.broken = true;
                None
            }
            other => other,
        }
    }

    fn try_recv(&mut self) -> Option<Piece> {
        if self.broken {
            return None;
        }
        let piece = match &mut self.source {
            Source::Frames(rx) => rx.try_recv().ok().map(Piece::Frame),
            Source::Pieces(rx) => rx.try_recv().ok(),
        };
        self.in_stream(piece)
    }

    async fn recv(&mut self) -> Option<Piece> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Piece>> {
        if self.broken {
            return Poll::Ready(None);
        }
        let piece = match &mut self.source {
            Source::Frames(rx) => std::task::ready!(rx.poll_recv(cx)).map(Piece::Frame),
            Source::Pieces(rx) => std::task::ready!(rx.poll_recv(cx)),
        };
        Poll::Ready(self.in_stream(piece))
    }
}

/// Batches of ready lines are flushed once they reach this many input bytes: one turn of a
/// worker (well under a millisecond at level 1), and one compressed chunk waiting for the
/// socket (about 50 KB on the 10M-row scan; 512 KiB held 190 KB per waiting chunk).
const MAX_BATCH: usize = 128 * 1024;

/// A piece of a response body, or one message of a message-based transport, as it goes on
/// the wire.
#[derive(Debug)]
pub struct WireChunk {
    pub bytes: Bytes,
    /// NDJSON bytes this chunk carries, before compression.
    pub raw_len: usize,
    pub rows: usize,
    /// Carries at least one `data` line.
    pub has_data: bool,
    /// Carries the query's final line (`end` or `error`).
    pub last: bool,
    /// Carries the `end` line: the result is complete.
    pub complete: bool,
    /// A JSON control line beside binary results (Arrow on a WebSocket): a text message,
    /// never compressed.
    pub text: bool,
}

/// What a batch of lines carried (the wire chunk without its bytes).
struct Batch {
    raw_len: usize,
    rows: usize,
    has_data: bool,
    last: bool,
    complete: bool,
}

impl Batch {
    /// The batch as it goes on the wire, in `bytes` (a binary message or body chunk).
    fn chunk(self, bytes: Bytes) -> WireChunk {
        WireChunk {
            bytes,
            raw_len: self.raw_len,
            rows: self.rows,
            has_data: self.has_data,
            last: self.last,
            complete: self.complete,
            text: false,
        }
    }
}

/// Takes `first` and the pieces already waiting behind it (`next`), up to `max` input bytes
/// and never past a final frame, handing each to `each`. Batching what is ready means fewer
/// flushes and messages under load, and no waiting when there is nothing more.
fn batch(
    first: Piece,
    mut next: impl FnMut() -> Option<Piece>,
    max: usize,
    mut each: impl FnMut(&Piece) -> std::io::Result<()>,
) -> std::io::Result<Batch> {
    let mut b = Batch {
        raw_len: 0,
        rows: 0,
        has_data: false,
        last: false,
        complete: false,
    };
    let mut piece = Some(first);
    while let Some(p) = piece.take() {
        b.raw_len += p.len();
        b.rows += p.rows();
        b.has_data |= p.kind() == Some(FrameKind::Data);
        b.last |= p.kind().is_some_and(FrameKind::is_final);
        b.complete |= p.kind() == Some(FrameKind::End);
        each(&p)?;
        if b.raw_len < max && !b.last {
            piece = next();
        }
    }
    Ok(b)
}

thread_local! {
    /// A worker's output buffer: a batch is compressed into it and copied out at its exact
    /// size, so no stream keeps an output buffer of its own between batches.
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// A worker's input buffer: the lines of one WebSocket message, gathered before they are
    /// compressed (or copied out as they are).
    static IN: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// A worker's one-shot context for independent frames, with the level it was made for.
    static FRAME_CONTEXT: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// Worker buffers above this are given back after use (a single huge line, say).
const KEEP_BUFFER: usize = 4 << 20;

/// Takes what a worker's buffer holds as exact-size bytes, and empties it.
fn take(buf: &RefCell<Vec<u8>>) -> Bytes {
    let mut b = buf.borrow_mut();
    let bytes = Bytes::copy_from_slice(&b);
    b.clear();
    if b.capacity() > KEEP_BUFFER {
        *b = Vec::new();
    }
    bytes
}

/// A stream encoder's output: the worker's [`OUT`] buffer. Everything written during one turn
/// is taken out before the turn ends, so the stream can move to another worker in between.
struct WorkerOut;

impl Write for WorkerOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        OUT.with(|o| o.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `data` as one independent zstd frame, compressed with the worker's own context.
fn compress_frame(level: i32, data: &[u8]) -> std::io::Result<Bytes> {
    FRAME_CONTEXT.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let Some((_, compressor)) = slot.as_mut() else {
            return Err(std::io::Error::other("no zstd context"));
        };
        OUT.with(|out| {
            {
                let mut o = out.borrow_mut();
                o.clear();
                o.reserve(zstd::zstd_safe::compress_bound(data.len()));
                // A one-shot frame records its content size (zstd's default).
                compressor.compress_to_buffer(data, &mut *o)?;
            }
            Ok(take(out))
        })
    })
}

/// A continuous stream's encoder, with a window of `2^window_log` bytes.
///
/// The context lives as long as the stream. Its input buffer is the window plus a block; its
/// sequence store, literal and output buffers are sized by the block (585 KiB with these
/// sizes, 953 KiB with zstd's 128 KiB blocks, 309 KiB with 16 KiB ones, which cost 15 % more
/// zstd instructions per row and saved only 50 KiB of RSS per stream: docs/BENCHMARKS.md).
/// zstd's own window for level 1 is 512 KiB (1 MiB at level 2, up to 8 MiB at 17..19);
/// 128 KiB, the default, costs 0.1 % more bytes on the 10M-row scan, takes 384 KiB less per
/// stream and 10 % fewer instructions per row (the window stays in the core's cache). Never
/// above 8 MiB, what browsers decode.
fn encoder<W: Write>(
    level: i32,
    window_log: u32,
    out: W,
) -> std::io::Result<zstd::stream::write::Encoder<'static, W>> {
    let mut enc = zstd::stream::write::Encoder::new(out, level)?;
    enc.include_checksum(true)?;
    enc.window_log(window_log.min(MAX_WINDOW_LOG))?;
    // Blocks of 64 KiB instead of 128 KiB: the context's block buffers and sequence store
    // are sized by the block. The same bytes and rows/s on the 10M-row scan
    // (docs/BENCHMARKS.md).
    enc.set_parameter(zstd::zstd_safe::CParameter::MaxBlockSize(MAX_BLOCK))?;
    Ok(enc)
}

/// The largest zstd block of a stream (see [`encoder`]).
const MAX_BLOCK: u32 = 64 * 1024;

/// 8 MiB: browsers refuse larger windows.
const MAX_WINDOW_LOG: u32 = 23;

/// Batches of ready lines become one message once they reach this many bytes (a single line
/// may be bigger). Small on purpose: a message that actix-ws has accepted has left the byte
/// budget but still waits in its 32-message queue, so this bounds what a connection can hold
/// outside the budget. 64 KiB instead of 256 KiB: 480 vs 754 MiB with 200 reading sockets,
/// the same rows/s, 2 % more bytes on the wire (docs/BENCHMARKS.md).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// The compression workers every stream shares (see the module doc). Cloning shares them;
/// the workers stop when the last clone is dropped.
#[derive(Clone)]
pub struct Pool {
    workers: Arc<Workers>,
    /// The window of each continuous stream (see [`encoder`]).
    window_log: u32,
}

/// Two runtimes: `first` runs each stream's first [`FIRST_LANE_BYTES`] (one thread), `bulk`
/// the rest (`compress_workers` threads). A runtime serves its ready tasks in turn, so with
/// one runtime a new stream's first chunk queued behind every busy stream's turn: a small
/// query's first data waited for hundreds of them.
struct Workers {
    first: Runtime,
    bulk: Runtime,
    count: usize,
}

/// A runtime that is shut down without waiting: dropping a runtime waits for its threads,
/// which an async context may not do; its tasks only compress, so nothing is lost.
struct Runtime(Option<tokio::runtime::Runtime>, tokio::runtime::Handle);

impl Runtime {
    fn new(threads: usize, name: &str) -> std::io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(name)
            .build()?;
        let handle = rt.handle().clone();
        Ok(Runtime(Some(rt), handle))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers.count)
            .finish()
    }
}

/// Input bytes a stream compresses on the first lane before it moves to the bulk workers:
/// a small result never leaves it.
const FIRST_LANE_BYTES: usize = 256 * 1024;

const FIRST: u8 = 0;
const MOVING: u8 = 1;
const BULK: u8 = 2;

/// A stream task's place: it counts the task's input and, past [`FIRST_LANE_BYTES`], moves
/// it from the first lane to the bulk workers at its next turn.
struct Lane {
    seen: usize,
    state: Arc<AtomicU8>,
}

impl Lane {
    /// Ends a turn that took `bytes` of input: yields, so that every ready stream gets its
    /// turn in order, or moves the task to the bulk workers.
    async fn turn(&mut self, bytes: usize) {
        self.seen += bytes;
        if self.seen >= FIRST_LANE_BYTES && self.state.load(Ordering::Acquire) == FIRST {
            self.state.store(MOVING, Ordering::Release);
            // Pending until the bulk runtime polls the task again ([`OnFirstLane`]).
            std::future::poll_fn(|_| match self.state.load(Ordering::Acquire) {
                MOVING => Poll::Pending,
                _ => Poll::Ready(()),
            })
            .await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs a stream task on the first lane until it ends (`None`) or asks to move (the task,
/// unfinished, to be spawned on the bulk workers). Moving a boxed future between runtimes
/// is sound: it is pinned on the heap, and its next poll registers the new runtime's waker.
struct OnFirstLane {
    task: Option<Task>,
    state: Arc<AtomicU8>,
}

impl Future for OnFirstLane {
    type Output = Option<Task>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Task>> {
        let Some(task) = self.task.as_mut() else {
            return Poll::Ready(None);
        };
        match task.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending if self.state.load(Ordering::Acquire) == MOVING => {
                self.state.store(BULK, Ordering::Release);
                Poll::Ready(self.task.take())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Pool {
    /// Starts `workers` compression threads (at least one), and the first lane's thread;
    /// continuous streams get a window of `2^window_log` bytes.
    pub fn new(workers: usize, window_log: u32) -> std::io::Result<Pool> {
        let count = workers.max(1);
        Ok(Pool {
            workers: Arc::new(Workers {
                first: Runtime::new(1, "zstd-first")?,
                bulk: Runtime::new(count, "zstd")?,
                count,
            }),
            window_log,
        })
    }

    /// Runs a stream's task, first on the first lane, then on the bulk workers.
    fn spawn<F>(&self, task: impl FnOnce(Lane) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = Arc::new(AtomicU8::new(FIRST));
        let lane = Lane {
            seen: 0,
            state: Arc::clone(&state),
        };
        let first = OnFirstLane {
            task: Some(Box::pin(task(lane))),
            state,
        };
        let bulk = self.workers.bulk.1.clone();
        drop(self.workers.first.1.spawn(async move {
            if let Some(rest) = first.await {
                drop(bulk.spawn(rest));
            }
        }));
    }

    /// Groups the lines that are ready together into messages of about [`MAX_MESSAGE`]
    /// bytes, each an independent zstd frame when `level` is set.
    pub fn frames(
        &self,
        mut input: mpsc::Receiver<Frame>,
        level: Option<i32>,
        capacity: usize,
    ) -> mpsc::Receiver<WireChunk> {
        let (tx, rx) = mpsc::channel(capacity);
        self.spawn(|mut lane| async move {
            loop {
                // Room first, then the lines: what is waiting meanwhile joins the message.
                let Ok(permit) = tx.reserve().await else {
                    return;
                };
                let Some(first) = input.recv().await else {
                    return;
                };
                let Ok(message) = IN.with(|buf| {
                    let b = {
                        let mut buf = buf.borrow_mut();
                        buf.clear();
                        let next = || input.try_recv().ok().map(Piece::Frame);
                        batch(Piece::Frame(first), next, MAX_MESSAGE, |p| {
                            if let Piece::Frame(f) = p {
                                buf.extend_from_slice(&f.bytes);
                            }
                            Ok(())
                        })?
                    };
                    let bytes = match level {
                        Some(l) => compress_frame(l, &buf.borrow())?,
                        None => take(buf),
                    };
                    Ok::<_, std::io::Error>(b.chunk(bytes))
                }) else {
                    return;
                };
                let (last, raw_len) = (message.last, message.raw_len);
                permit.send(message);
                if last {
                    return;
                }
                lane.turn(raw_len).await;
            }
        });
        rx
    }

    /// The messages of a binary result (Arrow IPC) on a WebSocket: each of the format's
    /// frames (the schema, a batch, the end-of-stream marker) is one binary message, an
    /// independent zstd frame when `level` is set; `progress` lines and an error beside the
    /// stream are text messages as they are; after the end-of-stream marker comes the `end`
    /// line (rows, batches, `elapsed_ms` since `accepted_at`), the last message.
    pub fn messages(
        &self,
        mut input: mpsc::Receiver<Frame>,
        level: Option<i32>,
        capacity: usize,
        query_id: Arc<str>,
        accepted_at: std::time::Instant,
    ) -> mpsc::Receiver<WireChunk> {
        let (tx, rx) = mpsc::channel(capacity);
        self.spawn(|mut lane| async move {
            let (mut rows, mut batches) = (0u64, 0u64);
            loop {
                let Ok(permit) = tx.reserve().await else {
                    return;
                };
                let Some(frame) = input.recv().await else {
                    return;
                };
                let raw_len = frame.bytes.len();
                let message = match frame.kind {
                    FrameKind::Note | FrameKind::Error(ErrorPlace::Beside) => WireChunk {
                        bytes: frame.bytes,
                        raw_len,
                        rows: 0,
                        has_data: false,
                        last: frame.kind.is_final(),
                        complete: false,
                        text: true,
                    },
                    FrameKind::Metadata
                    | FrameKind::Data
                    | FrameKind::End
                    | FrameKind::Error(ErrorPlace::InStream) => {
                        let bytes = match level {
                            Some(l) => match compress_frame(l, &frame.bytes) {
                                Ok(b) => b,
                                Err(_) => return,
                            },
                            None => frame.bytes,
                        };
                        if frame.kind == FrameKind::Data {
                            rows += frame.rows as u64;
                            batches += 1;
                        }
                        WireChunk {
                            bytes,
                            raw_len,
                            rows: frame.rows,
                            has_data: frame.kind == FrameKind::Data,
                            // An error in the format's own words ends it; `end` is followed
                            // by the protocol's `end` line.
                            last: matches!(frame.kind, FrameKind::Error(_)),
                            complete: false,
                            text: false,
                        }
                    }
                };
                let last = message.last;
                permit.send(message);
                if last {
                    return;
                }
                if frame.kind == FrameKind::End {
                    let elapsed_ms = accepted_at.elapsed().as_millis() as u64;
                    let line = crate::wire::lines::end_line(&query_id, rows, batches, elapsed_ms);
                    let _ = tx
                        .send(WireChunk {
                            raw_len: line.len(),
                            bytes: line,
                            rows: 0,
                            has_data: false,
                            last: true,
                            complete: true,
                            text: true,
                        })
                        .await;
                    return;
                }
                lane.turn(raw_len).await;
            }
        });
        rx
    }

    /// Compresses `input` into one zstd stream; returns the compressed chunks.
    pub fn stream(
        &self,
        mut input: Input,
        level: i32,
        capacity: usize,
        mut framing: impl Framing,
    ) -> std::io::Result<mpsc::Receiver<WireChunk>> {
        let (tx, rx) = mpsc::channel(capacity);
        let mut enc = encoder(level, self.window_log, WorkerOut)?;
        self.spawn(|mut lane| async move {
            loop {
                let Ok(permit) = tx.reserve().await else {
                    return;
                };
                let Some(first) = input.recv().await else {
                    // Ended without a final line (the client is gone, or the result failed
                    // in a format that cannot say so): the zstd frame stays unfinished, so
                    // that a decoder too sees a truncated stream, and the body breaks.
                    return;
                };
                OUT.with(|o| o.borrow_mut().clear());
                let next = || input.try_recv();
                // Everything this batch writes is in the worker's buffer when `take` runs:
                // there is no await in between.
                let turn =
                    batch(first, next, MAX_BATCH, |p| framing.write(p, &mut enc)).and_then(|b| {
                        if b.last {
                            enc.do_finish()?;
                        } else {
                            enc.flush()?;
                        }
                        Ok(b)
                    });
                let bytes = OUT.with(take);
                let Ok(b) = turn else {
                    return;
                };
                let (last, raw_len) = (b.last, b.raw_len);
                permit.send(b.chunk(bytes));
                if last {
                    return;
                }
                lane.turn(raw_len).await;
            }
        });
        Ok(rx)
    }
}

/// Compresses one small line into an independent frame, inline (control lines only).
pub fn compress_small(line: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(line, level)
}

/// How pieces are laid out in a byte stream: as they are (a chunked HTTP body), or as
/// server-sent events.
pub trait Framing: Send + Unpin + 'static {
    /// Writes one piece to `out`.
    fn write(&mut self, piece: &Piece, out: &mut dyn Write) -> std::io::Result<()>;

    /// The piece's bytes on the wire, uncompressed.
    fn to_bytes(&mut self, piece: Piece) -> Bytes {
        let mut out = Vec::with_capacity(piece.len() + 64);
        // Writing into a Vec cannot fail.
        let _ = self.write(&piece, &mut out);
        Bytes::from(out)
    }
}

/// Frames as they are (keep-alives write nothing): the HTTP body.
pub struct Raw;

impl Framing for Raw {
    fn write(&mut self, piece: &Piece, out: &mut dyn Write) -> std::io::Result<()> {
        match piece {
            Piece::Frame(f) => out.write_all(&f.bytes),
            Piece::Keepalive => Ok(()),
        }
    }

    fn to_bytes(&mut self, piece: Piece) -> Bytes {
        match piece {
            Piece::Frame(f) => f.bytes,
            Piece::Keepalive => Bytes::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window a zstd frame announces (its Window_Descriptor; the frame is not single-segment).
    fn window_of(frame: &[u8]) -> u64 {
        assert_eq!(&frame[..4], &[0x28, 0xB5, 0x2F, 0xFD], "a zstd frame");
        let descriptor = frame[4];
        assert_eq!(
            descriptor & 0x20,
            0,
            "a streamed frame has a window descriptor"
        );
        let w = frame[5];
        let base = 1u64 << (10 + (w >> 3));
        base + base / 8 * u64::from(w & 7)
    }

    fn streamed_window(level: i32, window_log: u32) -> u64 {
        let mut enc = encoder(level, window_log, Vec::new()).unwrap();
        enc.write_all(&vec![b'x'; 4 << 20]).unwrap();
        enc.flush().unwrap();
        window_of(&enc.finish().unwrap())
    }

    fn frame(kind: FrameKind) -> Frame {
        Frame {
            bytes: Bytes::from_static(b"x"),
            rows: 0,
            kind,
        }
    }

    /// The kinds of the pieces ready in `input` (`None`: a keep-alive).
    fn kinds(input: &mut Input) -> Vec<Option<FrameKind>> {
        std::iter::from_fn(|| input.try_recv())
            .map(|p| p.kind())
            .collect()
    }

    #[tokio::test]
    async fn an_error_beside_the_stream_ends_a_byte_stream_unsent() {
        let (tx, rx) = mpsc::channel(8);
        for kind in [
            FrameKind::Metadata,
            FrameKind::Data,
            FrameKind::Error(ErrorPlace::Beside),
            // Never sent after an error; were it, the broken input would not read it.
            FrameKind::Data,
        ] {
            tx.send(frame(kind)).await.unwrap();
        }
        let mut input = Input::frames(rx);
        assert_eq!(
            kinds(&mut input),
            [Some(FrameKind::Metadata), Some(FrameKind::Data)]
        );
        assert!(input.recv().await.is_none());

        // An error in the stream's own words is its last piece, sent like any other.
        let (tx, rx) = mpsc::channel(8);
        tx.send(Piece::Frame(frame(FrameKind::Data))).await.unwrap();
        tx.send(Piece::Keepalive).await.unwrap();
        let error = FrameKind::Error(ErrorPlace::InStream);
        tx.send(Piece::Frame(frame(error))).await.unwrap();
        drop(tx);
        let mut input = Input::pieces(rx);
        assert_eq!(
            kinds(&mut input),
            [Some(FrameKind::Data), None, Some(error)]
        );
        assert!(input.recv().await.is_none());
    }

    #[test]
    fn the_window_is_the_configured_one_at_most_8_mib() {
        assert_eq!(streamed_window(1, 17), 128 << 10);
        assert_eq!(streamed_window(3, 17), 128 << 10);
        assert_eq!(streamed_window(19, 17), 128 << 10);
        assert_eq!(streamed_window(1, 19), 512 << 10);
        assert_eq!(streamed_window(19, 23), 8 << 20);
        assert_eq!(streamed_window(1, 27), 8 << 20);
    }
}
