//! Result formats: how DuckDB's data chunks become the bytes of a result.
//!
//! A format is one [`ResultEncoder`]: it opens the result ([`ResultEncoder::header`]), turns
//! chunks into batches of rows ([`ResultEncoder::push`], [`ResultEncoder::flush`]) and closes it
//! ([`ResultEncoder::end`]). The executor drives it
//! the same way for every format ([`error_frame`] ends a failed one), and the transports only
//! frame and compress the pieces, so a
//! new format (Arrow IPC, CSV) is one more file here and one more [`Format`] variant.
//!
//! Today there is one format, [`ndjson`] (the protocol of `docs/PROTOCOL.md`).
//!
//! Invariants:
//! - The header comes first, even for an empty result; nothing follows `end` or `error`.
//! - A batch holds at most `chunk_rows` rows and is closed once it reaches `chunk_bytes`
//!   (so one batch is never much larger than the byte cap plus one row).
//! - `push` stops at the first row that would pass the [`ResultLimits`].
//! - Encoders read DuckDB's vectors only through [`crate::duck`]; they never call its C API.

pub mod geometry;
pub mod ndjson;
pub mod plan;

use bytes::Bytes;

use crate::duck::{DataChunk, LogicalType};
use crate::wire::{Format, GeometryFormat};
pub use plan::UnsupportedType;

/// One finished batch of rows (NDJSON: one `data` line).
#[derive(Debug)]
pub struct Line {
    pub bytes: Bytes,
    pub rows: usize,
}

/// The most a result may hold; `push` stops at the first row that would pass either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultLimits {
    pub max_rows: u64,
    pub max_bytes: u64,
}

impl ResultLimits {
    pub const NONE: Self = Self {
        max_rows: u64::MAX,
        max_bytes: u64::MAX,
    };

    /// The tighter of two limits.
    pub fn min(self, other: Self) -> Self {
        Self {
            max_rows: self.max_rows.min(other.max_rows),
            max_bytes: self.max_bytes.min(other.max_bytes),
        }
    }
}

/// How big a batch may grow before it is handed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSizes {
    pub rows: usize,
    pub bytes: usize,
}

/// How values are written, from the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub geometry: GeometryFormat,
}

/// Whether `push` consumed its chunk or stopped at a limit or a bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The result reached a limit; the rows before it were emitted or are pending.
    LimitReached,
    /// A value could not be encoded (malformed WKB); the rows before it were emitted or are
    /// pending, the bad row was dropped.
    Invalid {
        column: usize,
        reason: &'static str,
    },
}

/// The consumer of a batch refused it (the client is gone, the query was cancelled): stop.
/// The consumer knows why; the encoder only stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// A result format, from DuckDB's chunks to bytes on the wire.
pub trait ResultEncoder: Send {
    /// What opens the result: the schema (NDJSON: the `metadata` line).
    fn header(&mut self) -> Bytes;

    /// Encodes every row of `chunk`, handing each batch that fills up to `emit`.
    fn push(
        &mut self,
        chunk: &DataChunk,
        emit: &mut dyn FnMut(Line) -> Result<(), Stopped>,
    ) -> Result<Flow, Stopped>;

    /// Rows waiting in the open batch.
    fn pending_rows(&self) -> usize;

    /// Closes the open batch, if it holds any rows.
    fn flush(&mut self) -> Option<Line>;

    /// What closes a complete result (NDJSON: the `end` line with its counts).
    fn end(&mut self, elapsed_ms: u64) -> Bytes;
}

/// What ends a result of `format` that failed after its stream began (NDJSON: the `error`
/// line). `None`: the format cannot carry an error, so the stream ends without a final frame
/// and the transport breaks it instead of ending it cleanly.
pub fn error_frame(format: Format, query_id: &str, code: &str, message: &str) -> Option<Bytes> {
    match format {
        Format::Ndjson => Some(crate::wire::lines::error_line(query_id, code, message)),
    }
}

/// The encoder of `format` for a result of `columns` (names and types, as executed).
pub fn encoder(
    format: Format,
    columns: &[(String, LogicalType)],
    query_id: &str,
    sizes: ChunkSizes,
    limits: ResultLimits,
    options: Options,
) -> Result<Box<dyn ResultEncoder>, UnsupportedType> {
    match format {
        Format::Ndjson => Ok(Box::new(ndjson::NdjsonEncoder::new(
            columns, query_id, sizes, limits, options,
        )?)),
    }
}
