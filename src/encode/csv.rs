//! The CSV format (`format: "csv"`, RFC 4180): a header row of column names, then one record
//! per row, for spreadsheets, pandas, polars and DuckDB's own `read_csv`.
//!
//! Values are the protocol's (the same text as in NDJSON rows), unwrapped where CSV can hold
//! them as they are: strings, dates, times, UUIDs, base64 BLOBs and WKT are their text; numbers
//! and booleans as in JSON; LIST, STRUCT, MAP, UNION and GeoJSON geometries are their JSON text.
//!
//! Invariants:
//! - A field is quoted when it holds a comma, a quote, CR or LF, or is an empty string (so that
//!   NULL, an empty field, stays distinct from `""`); quotes inside are doubled.
//! - Every record ends with `\n`; a batch holds whole records, at most `rows` of them, closed
//!   once it reaches `bytes` bytes.
//! - A CSV stream cannot say that it failed: its error goes beside it, and it breaks
//!   ([`super::ErrorPlace::Beside`]).

use std::cell::Cell;

use bytes::Bytes;

use super::geometry::BadWkb;
use super::ndjson::{bind_columns, write_value, Col};
use super::plan::Plan;
use super::{BatchSizes, ErrorFrame, Flow, Line, Options, ResultEncoder, ResultLimits, Stopped};
use crate::duck::{DataChunk, LogicalType};

pub struct CsvEncoder {
    header: Bytes,
    plans: Vec<Plan>,
    fallible: bool,
    bad: Cell<Option<(usize, BadWkb)>>,
    out: Records,
}

/// The batch being built, and the counters across batches.
struct Records {
    sizes: BatchSizes,
    limits: ResultLimits,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    rows_in_batch: usize,
    rows: u64,
    bytes: u64,
}

impl CsvEncoder {
    pub fn new(
        columns: &[(String, LogicalType)],
        sizes: BatchSizes,
        limits: ResultLimits,
        options: Options,
    ) -> Result<Self, super::UnsupportedType> {
        let mut plans = Vec::with_capacity(columns.len());
        let mut header = Vec::new();
        for (i, (name, t)) in columns.iter().enumerate() {
            plans.push(Plan::build(t, options.geometry)?.0);
            if i > 0 {
                header.push(b',');
            }
            write_field(&mut header, name.as_bytes());
        }
        header.push(b'\n');
        let fallible = plans.iter().any(Plan::holds_geometry);
        Ok(Self {
            header: Bytes::from(header),
            plans,
            fallible,
            bad: Cell::new(None),
            out: Records {
                sizes: BatchSizes {
                    rows: sizes.rows.max(1),
                    bytes: sizes.bytes.max(1),
                    ..sizes
                },
                limits,
                buf: Vec::new(),
                scratch: Vec::new(),
                rows_in_batch: 0,
                rows: 0,
                bytes: 0,
            },
        })
    }
}

impl Records {
    fn close(&mut self) -> Line {
        let rows = std::mem::take(&mut self.rows_in_batch);
        self.rows += rows as u64;
        self.bytes += self.buf.len() as u64;
        let (bytes, capacity) = super::seal(std::mem::take(&mut self.buf), self.sizes.bytes);
        self.buf = Vec::with_capacity(capacity);
        Line { bytes, rows }
    }
}

impl ResultEncoder for CsvEncoder {
    fn header(&mut self) -> Bytes {
        self.header.clone()
    }

    fn push(
        &mut self,
        chunk: &DataChunk,
        emit: &mut dyn FnMut(Line) -> Result<(), Stopped>,
    ) -> Result<Flow, Stopped> {
        // SAFETY: the plans were built from the types of the executed statement `chunk`
        // comes from.
        let cols = unsafe { bind_columns(&self.plans, chunk, &self.bad) }?;
        let out = &mut self.out;
        for row in 0..chunk.len() {
            if out.rows + out.rows_in_batch as u64 >= out.limits.max_rows
                || out.bytes + out.buf.len() as u64 >= out.limits.max_bytes
            {
                return Ok(Flow::LimitReached);
            }
            let row_start = out.buf.len();
            for (i, col) in cols.iter().enumerate() {
                if i > 0 {
                    out.buf.push(b',');
                }
                // SAFETY: row < the chunk's size.
                unsafe { write_cell(col, row, &mut out.buf, &mut out.scratch) };
            }
            out.buf.push(b'\n');
            if self.fallible {
                if let Some((column, e)) = self.bad.take() {
                    out.buf.truncate(row_start);
                    return Ok(Flow::Invalid {
                        column,
                        reason: e.0,
                    });
                }
            }
            out.rows_in_batch += 1;
            if out.rows_in_batch >= out.sizes.rows || out.buf.len() >= out.sizes.bytes {
                emit(out.close())?;
            }
        }
        Ok(Flow::Continue)
    }

    fn pending_rows(&self) -> usize {
        self.out.rows_in_batch
    }

    fn flush(&mut self) -> Option<Line> {
        (self.out.rows_in_batch > 0).then(|| self.out.close())
    }

    fn end(&mut self, _elapsed_ms: u64) -> Bytes {
        Bytes::new()
    }

    fn fail(&mut self, query_id: &str, code: &str, message: &str) -> ErrorFrame {
        error_frame(query_id, code, message)
    }
}

/// What ends a failed result: CSV has no words for it, so the stream breaks.
pub fn error_frame(query_id: &str, code: &str, message: &str) -> ErrorFrame {
    ErrorFrame::beside(query_id, code, message)
}

/// Appends `col[row]` as a CSV field (nothing for NULL).
///
/// # Safety
/// `row` must be within the vector `col` was bound to.
unsafe fn write_cell(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        if !col.is_valid(row) {
            return;
        }
        if matches!(col.plan, Plan::Varchar) {
            return write_field(out, col.bytes(row));
        }
        scratch.clear();
        write_value(col, row, scratch);
    }
    if scratch.first() == Some(&b'"') {
        // A JSON string: its text.
        let mut text = Vec::with_capacity(scratch.len());
        unquote_json(scratch, &mut text);
        write_field(out, &text);
    } else {
        write_field(out, scratch);
    }
}

/// Appends `text` as a CSV field, quoted when it must be.
fn write_field(out: &mut Vec<u8>, text: &[u8]) {
    let quote = text.is_empty()
        || text
            .iter()
            .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !quote {
        out.extend_from_slice(text);
        return;
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    for &b in text {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The text of a JSON string literal written by [`crate::wire::json`] (well-formed: quotes,
/// escapes, `\u` escapes with surrogate pairs).
pub(super) fn unquote_json(quoted: &[u8], out: &mut Vec<u8>) {
    let inner = quoted
        .strip_prefix(b"\"")
        .and_then(|q| q.strip_suffix(b"\""))
        .unwrap_or(quoted);
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&e) = inner.get(i + 1) else { break };
        i += 2;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        if e != b'u' {
            continue;
        }
        let hex = |at: usize| {
            inner
                .get(at..at + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
        };
        let Some(first) = hex(i) else { break };
        i += 4;
        let code = if (0xD800..0xDC00).contains(&first) && inner.get(i..i + 2) == Some(b"\\u") {
            match hex(i + 2) {
                Some(low) if (0xDC00..0xE000).contains(&low) => {
                    i += 6;
                    0x10000 + ((first - 0xD800) << 10) + (low - 0xDC00)
                }
                _ => first,
            }
        } else {
            first
        };
        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
        let mut utf8 = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(s: &str) -> String {
        let mut out = Vec::new();
        write_field(&mut out, s.as_bytes());
        String::from_utf8(out).unwrap()
    }

    fn unquoted(s: &str) -> String {
        let mut out = Vec::new();
        unquote_json(s.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fields_are_quoted_only_when_they_must_be() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field(""), "\"\"");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("cr\r"), "\"cr\r\"");
    }

    #[test]
    fn json_strings_unquote_to_their_text() {
        assert_eq!(unquoted(r#""2024-01-02""#), "2024-01-02");
        assert_eq!(unquoted(r#""a\"b\\c\/d\n\t""#), "a\"b\\c/d\n\t");
        assert_eq!(unquoted(r#""\u00e9\u0001""#), "é\u{1}");
        assert_eq!(unquoted(r#""\ud83e\udd86""#), "🦆");
    }
}
