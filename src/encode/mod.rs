//! Result formats: how DuckDB's data chunks become the bytes of a result.
//!
//! A format is one [`ResultEncoder`]: it opens the result ([`ResultEncoder::header`]), turns
//! chunks into batches of rows ([`ResultEncoder::push`], [`ResultEncoder::flush`]), closes it
//! ([`ResultEncoder::end`]) or ends it as failed ([`ResultEncoder::fail`]; [`error_frame`]
//! before there is an encoder). The executor drives it the same way for every format, and the
//! transports only frame and compress the pieces, acting on what each format says about
//! itself: where its error goes ([`ErrorPlace`]) and how its bytes may travel ([`Layout`]).
//! So a new format is one more file here and one more [`Format`] variant.
//!
//! The formats: [`ndjson`] (the protocol of `docs/PROTOCOL.md`, and `jsonl`, its rows alone),
//! [`arrow`] (Arrow IPC), [`csv`], and [`pg`] (PostgreSQL's backend messages, for the
//! PostgreSQL endpoint only).
//!
//! Invariants:
//! - Beyond its names and media types (its own methods in `wire`), [`Format`] is matched here
//!   only: every decision about a format is this module's.
//! - The header comes first, even for an empty result; nothing follows `end` or `error`.
//! - A failed result ends in the format's own words ([`ErrorPlace::InStream`]), or its stream
//!   breaks ([`ErrorPlace::Beside`]): it never ends as a clean, shorter result.
//! - A batch holds at most `chunk_rows` rows and is closed once it reaches `chunk_bytes`
//!   (so one batch is never much larger than the byte cap plus one row).
//! - `push` stops at the first row that would pass the [`ResultLimits`].
//! - Encoders read DuckDB's vectors only through [`crate::duck`]; they never call its C API.

pub mod arrow;
pub mod csv;
pub mod geometry;
pub mod ndjson;
pub mod pg;
pub mod plan;

use bytes::Bytes;

use crate::duck::arrow::ArrowOptions;
use crate::duck::{DataChunk, LogicalType};
use crate::wire::{Format, GeometryFormat};
pub use plan::UnsupportedType;

/// One finished batch of rows (NDJSON: one `data` line).
#[derive(Debug)]
pub struct Line {
    pub bytes: Bytes,
    pub rows: usize,
}

/// The most a result may hold: `push` stops before the row that would pass `max_rows`, and
/// after the row that reaches or passes `max_bytes` (so a result may end one row above it).
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
pub struct BatchSizes {
    pub rows: usize,
    pub bytes: usize,
    /// The first batch's row cap; each next one may hold twice as many, up to `rows`. Small,
    /// so that first data leaves after a few dozen microseconds of encoding.
    pub first_rows: usize,
}

/// How values are written, from the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    pub geometry: GeometryFormat,
}

/// Whether `push` consumed its chunk or stopped at a limit or a bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The format could not encode the chunk (DuckDB's Arrow conversion failed): the rows
    /// before it were emitted or are pending.
    Failed(String),
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

    /// What closes a complete result (NDJSON: the `end` line with its counts). Called only
    /// when [`ResultEncoder::failure`] is `None`.
    fn end(&mut self, elapsed_ms: u64) -> Bytes;

    /// The failure path: what ends the result when it fails after its header (a DuckDB error,
    /// a limit, a cancel), with the error's `code` and client-safe `message`. Nothing follows.
    fn fail(&mut self, query_id: &str, code: &str, message: &str) -> ErrorFrame;

    /// Why the last [`ResultEncoder::flush`] lost rows, if it did: the result must then end as
    /// failed, never as a complete shorter one.
    fn failure(&mut self) -> Option<String> {
        None
    }
}

/// `buf` as the bytes of a finished line or batch, and the capacity the next one should start
/// with. A line that closed at the byte cap is just over it, so a buffer grown by doubling
/// held up to twice its bytes, and the line kept that allocation all the way to the socket
/// (64 KiB lines in 128 KiB each). Shrinking in place is cheap (glibc splits the chunk, or
/// `mremap`s it); the next buffer starts an eighth above this line's size, or above the byte
/// cap `max` when one huge value made this line bigger.
pub(crate) fn seal(mut buf: Vec<u8>, max: usize) -> (Bytes, usize) {
    let len = buf.len();
    if buf.capacity() - len > len / 8 {
        buf.shrink_to_fit();
    }
    let next = len.min(max);
    (Bytes::from(buf), next + next / 8)
}

/// Where a failed result's error goes, which only its format knows: what a transport does
/// with the frame that ends the result ([`ErrorFrame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPlace {
    /// In the stream: the frame's bytes are the format's own last words (NDJSON's `error`
    /// line), sent like any other frame; the stream then ends cleanly.
    InStream,
    /// Beside the stream: the format cannot say that it failed (Arrow, CSV, jsonl), so its
    /// stream must break (an HTTP body without its last chunk, its zstd frame unfinished),
    /// since a reader would take a clean end for a complete result. The frame's bytes are the
    /// protocol's `error` line, for a transport with a place beside the stream (a WebSocket
    /// text message, Mosaic's `{"error": …}`); a byte stream drops them.
    Beside,
}

/// The frame that ends a failed result: its bytes, and where they go.
#[derive(Debug)]
pub struct ErrorFrame {
    pub bytes: Bytes,
    pub place: ErrorPlace,
}

impl ErrorFrame {
    /// The protocol's `error` line beside a stream that breaks: how every format that cannot
    /// say that it failed ends a failed result.
    pub(crate) fn beside(query_id: &str, code: &str, message: &str) -> Self {
        Self {
            bytes: crate::wire::lines::error_line(query_id, code, message),
            place: ErrorPlace::Beside,
        }
    }
}

/// What ends a result of `format` that failed before its encoder was made (before its
/// header): the frame its encoder's [`ResultEncoder::fail`] would give.
pub fn error_frame(format: Format, query_id: &str, code: &str, message: &str) -> ErrorFrame {
    match format {
        Format::Ndjson => ndjson::error_frame(ndjson::Rows::Protocol, query_id, code, message),
        Format::Jsonl => ndjson::error_frame(ndjson::Rows::Objects, query_id, code, message),
        Format::Csv => csv::error_frame(query_id, code, message),
        Format::Arrow => arrow::error_frame(query_id, code, message),
        Format::Pg(_) => pg::error_frame(code, message),
    }
}

/// How a format's bytes may travel: what a transport needs to know about a format besides
/// its encoder and its media type ([`Format::content_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The protocol's own lines (NDJSON), each tagged with its query: what SSE events,
    /// WebSocket messages and live subscriptions carry, and the only format with `progress`
    /// lines.
    ProtocolLines,
    /// Whole binary messages (Arrow IPC): a WebSocket sends each as a binary message, between
    /// the protocol's text lines for the same query (`arrow` before, `end` or `error` after).
    BinaryMessages,
    /// A body with no place for the protocol's query ids or control lines (CSV, jsonl): only
    /// an HTTP response carries it. (PostgreSQL's messages too: only its endpoint asks for them.)
    Body,
}

impl Layout {
    /// Whether the format can carry `progress` lines.
    pub fn has_progress(self) -> bool {
        self == Self::ProtocolLines
    }
}

/// How `format`'s bytes may travel.
pub fn layout(format: Format) -> Layout {
    match format {
        Format::Ndjson => Layout::ProtocolLines,
        Format::Arrow => Layout::BinaryMessages,
        Format::Csv | Format::Jsonl | Format::Pg(_) => Layout::Body,
    }
}

/// The batch sizes of `format`: Arrow batches may hold more rows by default (a batch is a unit
/// of columnar work for the reader, not a line to show), unless the request named
/// `chunk_rows`; the byte cap is the server's for every format (it bounds what a stream holds).
/// The first batch is small and the next ones double: always for Arrow (one DuckDB chunk
/// first), and for NDJSON and jsonl lines unless the request named `chunk_rows` (then every
/// line holds that many rows, as asked).
pub fn batch_sizes(format: Format, asked_rows: Option<usize>, server: BatchSizes) -> BatchSizes {
    let (rows, first) = match format {
        Format::Arrow => {
            let rows = asked_rows.unwrap_or(arrow::BATCH_ROWS);
            (rows, arrow::FIRST_BATCH_ROWS)
        }
        Format::Ndjson | Format::Jsonl | Format::Pg(_) if asked_rows.is_none() => {
            (server.rows, ndjson::FIRST_LINE_ROWS)
        }
        _ => {
            let rows = asked_rows.unwrap_or(server.rows);
            (rows, rows)
        }
    };
    let rows = rows.max(1);
    BatchSizes {
        rows,
        bytes: server.bytes,
        first_rows: first.clamp(1, rows),
    }
}

/// The encoder of `format` for a result of `columns` (names and types, as executed);
/// `arrow` gives the result's Arrow settings (asked only for Arrow).
pub fn encoder(
    format: Format,
    columns: &[(String, LogicalType)],
    query_id: &str,
    sizes: BatchSizes,
    limits: ResultLimits,
    options: Options,
    arrow: &mut dyn FnMut() -> ArrowOptions,
) -> Result<Box<dyn ResultEncoder>, UnsupportedType> {
    let rows = match format {
        Format::Ndjson => ndjson::Rows::Protocol,
        Format::Jsonl => ndjson::Rows::Objects,
        Format::Csv => {
            return Ok(Box::new(csv::CsvEncoder::new(
                columns, sizes, limits, options,
            )?))
        }
        Format::Pg(formats) => {
            return Ok(Box::new(pg::PgEncoder::new(
                columns, formats, sizes, limits, options,
            )?))
        }
        Format::Arrow => {
            return Ok(Box::new(
                arrow::ArrowEncoder::new(columns, arrow(), sizes, limits)
                    .map_err(|e| UnsupportedType(e.to_string()))?,
            ))
        }
    };
    Ok(Box::new(ndjson::NdjsonEncoder::new(
        columns, query_id, sizes, limits, options, rows,
    )?))
}

/// What a statement's result in `format` would begin with and its parameters' types, before
/// it runs (the PostgreSQL endpoint's `Describe`): only the PostgreSQL format answers.
pub fn describe(
    format: Format,
    columns: &[(String, LogicalType)],
    params: &[LogicalType],
    options: Options,
) -> Result<pg::Description, UnsupportedType> {
    match format {
        Format::Pg(_) => pg::describe(columns, params, options),
        other => Err(UnsupportedType(format!(
            "a statement is described in the PostgreSQL format only, not {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [Format; 4] = [Format::Ndjson, Format::Jsonl, Format::Csv, Format::Arrow];

    #[test]
    fn only_ndjson_says_in_its_stream_that_it_failed() {
        let line = crate::wire::lines::error_line("q1", "timeout", "too slow");
        for format in FORMATS {
            let frame = error_frame(format, "q1", "timeout", "too slow");
            let place = match format {
                Format::Ndjson => ErrorPlace::InStream,
                _ => ErrorPlace::Beside,
            };
            assert_eq!(frame.place, place, "{format:?}");
            // In the stream or beside it, the words are the protocol's `error` line.
            assert_eq!(frame.bytes, line, "{format:?}");
        }
    }

    #[test]
    fn each_format_says_how_its_bytes_travel() {
        let layouts = FORMATS.map(layout);
        assert_eq!(
            layouts,
            [
                Layout::ProtocolLines,
                Layout::Body,
                Layout::Body,
                Layout::BinaryMessages
            ]
        );
        let with_progress: Vec<_> = FORMATS
            .into_iter()
            .filter(|f| layout(*f).has_progress())
            .collect();
        assert_eq!(with_progress, [Format::Ndjson]);
    }
}
