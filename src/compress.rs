//! zstd compression as a pipeline stage on a thread of its own.
//!
//! Why a thread: on two cores, zstd is slower than DuckDB plus the JSON encoder, so it must run
//! beside them, not after them on the same core, and never on the async runtime. The stage
//! reads protocol lines from the executor's bounded channel and writes compressed chunks to
//! another bounded channel; a slow client still pauses DuckDB through both.
//!
//! Invariants:
//! - [`spawn_frames`] produces independent zstd frames that record their content size, one per
//!   batch of lines, so that each WebSocket message decodes on its own (`fzstd` in a browser).
//! - [`spawn_stream`] produces one zstd frame for the whole response, flushed after each batch
//!   of lines that were ready together, so a decoder can always output every line sent so far.
//! - The window stays at or below 8 MiB (levels above 19 are refused by the config).
//! - When the output's reader goes away, the stage exits and drops its input, which stops the
//!   executor's sends.

use std::io::Write;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::engine::{Frame, FrameKind};

/// Batches of ready lines are flushed once they reach this many input bytes.
const MAX_BATCH: usize = 512 * 1024;

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
}

/// What a batch of lines carried (the wire chunk without its bytes).
struct Batch {
    raw_len: usize,
    rows: usize,
    has_data: bool,
    last: bool,
}

/// Takes `first` and the frames already waiting behind it, up to `max` input bytes and never
/// past a final line, handing each to `each`. Batching what is ready means fewer flushes and
/// messages under load, and no waiting when there is nothing more.
fn batch(
    first: Frame,
    input: &mut mpsc::Receiver<Frame>,
    max: usize,
    mut each: impl FnMut(&Frame) -> std::io::Result<()>,
) -> std::io::Result<Batch> {
    let mut b = Batch {
        raw_len: 0,
        rows: 0,
        has_data: false,
        last: false,
    };
    let mut frame = Some(first);
    while let Some(f) = frame.take() {
        b.raw_len += f.bytes.len();
        b.rows += f.rows;
        b.has_data |= f.kind == FrameKind::Data;
        b.last |= f.kind.is_final();
        each(&f)?;
        if b.raw_len < max && !b.last {
            frame = input.try_recv().ok();
        }
    }
    Ok(b)
}

fn encoder(level: i32) -> std::io::Result<zstd::stream::write::Encoder<'static, Vec<u8>>> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::with_capacity(64 * 1024), level)?;
    enc.include_checksum(true)?;
    // At most 8 MiB, so that browsers (which cap the window at 8 MiB) can decode it.
    enc.window_log(23.min(zstd_default_window_log(level)))?;
    Ok(enc)
}

/// zstd's own window for a level on large inputs (so that we only ever lower it).
fn zstd_default_window_log(level: i32) -> u32 {
    match level {
        ..=3 => 21,
        4 => 22,
        _ => 23,
    }
}

/// Batches of ready lines become one message once they reach this many bytes (a single line
/// may be bigger). Small on purpose: a message that actix-ws has accepted has left the byte
/// budget but still waits in its 32-message queue, so this bounds what a connection can hold
/// outside the budget. 64 KiB instead of 256 KiB: 480 vs 754 MiB with 200 reading sockets,
/// the same rows/s, 2 % more bytes on the wire (docs/BENCHMARKS.md).
const MAX_MESSAGE: usize = 64 * 1024;

/// Groups the lines that are ready together into messages, compressing each into an
/// independent zstd frame when `level` is set. Runs on a thread of its own.
pub fn spawn_frames(
    mut input: mpsc::Receiver<Frame>,
    level: Option<i32>,
    capacity: usize,
) -> std::io::Result<mpsc::Receiver<WireChunk>> {
    let (tx, rx) = mpsc::channel(capacity);
    let mut compressor = match level {
        Some(l) => Some(zstd::bulk::Compressor::new(l)?),
        None => None,
    };
    std::thread::Builder::new()
        .name("zstd-frames".into())
        .spawn(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(first) = input.blocking_recv() {
                buf.clear();
                let Ok(b) = batch(first, &mut input, MAX_MESSAGE, |f| {
                    buf.extend_from_slice(&f.bytes);
                    Ok(())
                }) else {
                    return;
                };
                let bytes = match compressor.as_mut() {
                    // A one-shot frame records its content size (zstd's default).
                    Some(c) => match c.compress(&buf) {
                        Ok(v) => Bytes::from(v),
                        Err(_) => return,
                    },
                    None => Bytes::copy_from_slice(&buf),
                };
                let message = WireChunk {
                    bytes,
                    raw_len: b.raw_len,
                    rows: b.rows,
                    has_data: b.has_data,
                    last: b.last,
                };
                if tx.blocking_send(message).is_err() || b.last {
                    return;
                }
            }
        })?;
    Ok(rx)
}

/// Compresses one small line into an independent frame, inline (control lines only).
pub fn compress_small(line: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(line, level)
}

/// How lines are laid out in a byte stream: bare NDJSON, or as server-sent events.
pub trait Framing: Send + Unpin + 'static {
    /// Writes one frame (a line, or a keep-alive) to `out`.
    fn write(&mut self, frame: &Frame, out: &mut dyn Write) -> std::io::Result<()>;

    /// The frame's bytes on the wire, uncompressed.
    fn to_bytes(&mut self, frame: Frame) -> Bytes {
        let mut out = Vec::with_capacity(frame.bytes.len() + 64);
        // Writing into a Vec cannot fail.
        let _ = self.write(&frame, &mut out);
        Bytes::from(out)
    }
}

/// Bare NDJSON: lines as they are (keep-alives write nothing).
pub struct Ndjson;

impl Framing for Ndjson {
    fn write(&mut self, frame: &Frame, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&frame.bytes)
    }

    fn to_bytes(&mut self, frame: Frame) -> Bytes {
        frame.bytes
    }
}

/// Compresses `input` into one zstd stream on a new thread; returns the compressed chunks.
pub fn spawn_stream(
    mut input: mpsc::Receiver<Frame>,
    level: i32,
    capacity: usize,
    mut framing: impl Framing,
) -> std::io::Result<mpsc::Receiver<WireChunk>> {
    let (tx, rx) = mpsc::channel(capacity);
    let mut enc = encoder(level)?;
    std::thread::Builder::new()
        .name("zstd-stream".into())
        .spawn(move || {
            let mut open = true;
            while open {
                let Some(first) = input.blocking_recv() else {
                    break;
                };
                let Ok(b) = batch(first, &mut input, MAX_BATCH, |f| framing.write(f, &mut enc))
                else {
                    return;
                };
                let flushed = if b.last {
                    open = false;
                    enc.do_finish()
                } else {
                    enc.flush()
                };
                if flushed.is_err() {
                    return;
                }
                // Hand the output over and start the next one at the same size, so the
                // encoder does not regrow its buffer from zero for every batch.
                let capacity = enc.get_ref().capacity();
                let bytes = Bytes::from(std::mem::replace(
                    enc.get_mut(),
                    Vec::with_capacity(capacity),
                ));
                let chunk = WireChunk {
                    bytes,
                    raw_len: b.raw_len,
                    rows: b.rows,
                    has_data: b.has_data,
                    last: b.last,
                };
                if tx.blocking_send(chunk).is_err() {
                    return;
                }
            }
            if open {
                // The executor ended without a final line (client gone): close the frame anyway.
                if enc.do_finish().is_ok() {
                    let bytes = Bytes::from(std::mem::take(enc.get_mut()));
                    let _ = tx.blocking_send(WireChunk {
                        bytes,
                        raw_len: 0,
                        rows: 0,
                        has_data: false,
                        last: false,
                    });
                }
            }
        })?;
    Ok(rx)
}
