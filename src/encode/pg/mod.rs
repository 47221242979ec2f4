//! The PostgreSQL format: a result as PostgreSQL's backend messages, ready for the wire. The
//! header is a `RowDescription`, each batch a run of `DataRow`s, the end a `CommandComplete`
//! (`SELECT n`) and a failure an `ErrorResponse` with a SQLSTATE ([`sqlstate`]). Only the
//! PostgreSQL endpoint (`crate::transport::pg`) asks for it.
//!
//! Invariants:
//! - Every message is whole: a batch never splits a `DataRow`, so the transport may cut a
//!   batch at message boundaries and send each message as it is.
//! - Each column is text or binary as the client's `Bind` asked ([`PgColumns`]); its type is
//!   a built-in PostgreSQL type ([`types`]), the same in both forms.
//! - A failure after the header is an `ErrorResponse` in the stream
//!   ([`super::ErrorPlace::InStream`]): PostgreSQL clients drop the rows of a failed query.

mod binary;
mod text;
pub mod types;

use std::cell::Cell;

use bytes::Bytes;

use super::geometry::BadWkb;
use super::ndjson::{bind_columns, Col};
use super::plan::Plan;
use super::{BatchSizes, ErrorFrame, ErrorPlace, Flow, Line, Options, ResultEncoder, ResultLimits};
use super::{Stopped, UnsupportedType};
use crate::duck::{DataChunk, LogicalType};
use crate::wire::PgColumns;
use types::{PgType, Shape};

pub struct PgEncoder {
    header: Bytes,
    plans: Vec<Plan>,
    /// Per column: how its values are written, and whether in binary.
    layout: Vec<(Shape, bool)>,
    fallible: bool,
    bad: Cell<Option<(usize, BadWkb)>>,
    out: Batch,
}

/// The batch being built, and the counters across batches.
struct Batch {
    sizes: BatchSizes,
    limits: ResultLimits,
    buf: Vec<u8>,
    rows_in_batch: usize,
    batches: usize,
    rows: u64,
    bytes: u64,
}

impl PgEncoder {
    pub fn new(
        columns: &[(String, LogicalType)],
        formats: PgColumns,
        sizes: BatchSizes,
        limits: ResultLimits,
        options: Options,
    ) -> Result<Self, UnsupportedType> {
        let mut described = Vec::with_capacity(columns.len());
        let mut plans = Vec::with_capacity(columns.len());
        let mut layout = Vec::with_capacity(columns.len());
        for (i, (name, t)) in columns.iter().enumerate() {
            let (plan, type_name) = Plan::build(t, options.geometry)?;
            let (ty, shape) = types::column_type(&plan, &type_name);
            let binary = formats.is_binary(i);
            described.push((name.as_str(), ty, binary));
            plans.push(plan);
            layout.push((shape, binary));
        }
        let fallible = plans.iter().any(Plan::holds_geometry);
        Ok(Self {
            header: row_description(&described),
            plans,
            layout,
            fallible,
            bad: Cell::new(None),
            out: Batch {
                sizes: BatchSizes {
                    rows: sizes.rows.max(1),
                    bytes: sizes.bytes.max(1),
                    ..sizes
                },
                limits,
                buf: Vec::new(),
                rows_in_batch: 0,
                batches: 0,
                rows: 0,
                bytes: 0,
            },
        })
    }
}

/// What `Describe` of a statement answers, made by the encoder its result will have: the
/// `RowDescription` of its columns (each in text: no `Bind` asked for formats yet) and each
/// parameter's OID (0 where DuckDB could not tell its type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub header: Bytes,
    pub params: Vec<u32>,
}

/// The [`Description`] of a statement with `columns` and parameters of types `params` (as
/// DuckDB prepared it).
pub fn describe(
    columns: &[(String, LogicalType)],
    params: &[LogicalType],
    options: Options,
) -> Result<Description, UnsupportedType> {
    let sizes = BatchSizes {
        rows: 1,
        bytes: 1,
        first_rows: 1,
    };
    let encoder = PgEncoder::new(columns, PgColumns::Text, sizes, ResultLimits::NONE, options)?;
    let params = params
        .iter()
        .map(|t| {
            if t.id() == crate::duck::type_id::INVALID {
                return 0;
            }
            Plan::build(t, options.geometry)
                .map(|(plan, name)| types::column_type(&plan, &name).0.oid)
                .unwrap_or(0)
        })
        .collect();
    Ok(Description {
        header: encoder.header,
        params,
    })
}

impl Batch {
    /// The row cap of the open batch: the first is small, each next twice the one before.
    fn cap(&self) -> usize {
        let doubled = self.sizes.first_rows << self.batches.min(20);
        doubled.min(self.sizes.rows).max(1)
    }

    fn at_limit(&self) -> bool {
        self.rows + self.rows_in_batch as u64 >= self.limits.max_rows
            || self.bytes + self.buf.len() as u64 >= self.limits.max_bytes
    }

    fn close(&mut self) -> Line {
        let rows = std::mem::take(&mut self.rows_in_batch);
        self.rows += rows as u64;
        self.bytes += self.buf.len() as u64;
        self.batches += 1;
        let (bytes, capacity) = super::seal(std::mem::take(&mut self.buf), self.sizes.bytes);
        self.buf = Vec::with_capacity(capacity);
        Line { bytes, rows }
    }

    /// Appends `row` as one `DataRow`.
    ///
    /// # Safety
    /// `row` must be below the size of the chunk `cols` were bound to.
    unsafe fn write_row(&mut self, cols: &[Col<'_, '_>], layout: &[(Shape, bool)], row: usize) {
        let buf = &mut self.buf;
        let start = buf.len();
        buf.push(b'D');
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&(layout.len() as i16).to_be_bytes());
        for (col, &(shape, binary)) in cols.iter().zip(layout) {
            // SAFETY: the caller's contract.
            if !unsafe { col.is_valid(row) } {
                buf.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            let at = buf.len();
            buf.extend_from_slice(&[0; 4]);
            // SAFETY: the caller's contract; the value is valid.
            unsafe {
                if binary {
                    binary::write(col, row, shape, buf);
                } else {
                    text::write(col, row, shape, buf);
                }
            }
            let n = (buf.len() - at - 4) as i32;
            buf[at..at + 4].copy_from_slice(&n.to_be_bytes());
        }
        let n = (buf.len() - start - 1) as i32;
        buf[start + 1..start + 5].copy_from_slice(&n.to_be_bytes());
    }
}

impl ResultEncoder for PgEncoder {
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
            if out.at_limit() {
                return Ok(Flow::LimitReached);
            }
            let row_start = out.buf.len();
            // SAFETY: row < the chunk's size.
            unsafe { out.write_row(&cols, &self.layout, row) };
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
            if out.rows_in_batch >= out.cap() || out.buf.len() >= out.sizes.bytes {
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
        command_complete(&format!("SELECT {}", self.out.rows))
    }

    fn fail(&mut self, _query_id: &str, code: &str, message: &str) -> ErrorFrame {
        error_frame(code, message)
    }
}

/// What ends a failed result: an `ErrorResponse` in the stream.
pub fn error_frame(code: &str, message: &str) -> ErrorFrame {
    ErrorFrame {
        bytes: error_response(
            "ERROR",
            sqlstate(code, message),
            &client_message(code, message),
        ),
        place: ErrorPlace::InStream,
    }
}

/// The SQLSTATE of a gateway error `code` (`crate::error::GatewayError::code`), refined by
/// DuckDB's error class at the start of `message` where one code covers several.
pub fn sqlstate(code: &str, message: &str) -> &'static str {
    match code {
        "invalid_sql" => match message.split(':').next().unwrap_or_default() {
            "Catalog Error" if message.contains("Table with name") => "42P01",
            "Catalog Error" if message.contains("Function with name") => "42883",
            "Catalog Error" => "42704",
            "Binder Error" if message.contains("not found") => "42703",
            "Binder Error" => "42803",
            _ => "42601",
        },
        // The catalogs' `current_setting` of a setting PostgreSQL does not have either.
        "query_failed" if message.contains("unrecognized configuration parameter") => "42704",
        "query_failed" => match message.split(':').next().unwrap_or_default() {
            "Conversion Error" | "Invalid Input Error" => "22P02",
            "Out of Range Error" => "22003",
            "Division by Zero Error" | "Divide by Zero Error" => "22012",
            _ => "XX000",
        },
        "forbidden" | "access_denied" => "42501",
        "unauthenticated" | "token_expired" => "28000",
        "too_many_connections" | "too_busy" | "too_many_queries" => "53300",
        "cancelled" | "timeout" => "57014",
        "shutting_down" => "57P01",
        "limit_exceeded" => "54000",
        "out_of_memory" => "53200",
        "invalid_params" => "22023",
        "unsupported_type" | "extension_unavailable" => "0A000",
        "tenant_not_found" | "tenant_deleted" => "3D000",
        "storage_unavailable" | "tenant_unavailable" => "57P03",
        "invalid_request" => "22023",
        "bad_message" => "08P01",
        _ => "XX000",
    }
}

/// PostgreSQL's own words where clients look for them (psql and drivers match the cancel
/// messages); the gateway's safe message otherwise.
pub fn client_message(code: &str, message: &str) -> String {
    match code {
        "cancelled" => "canceling statement due to user request".into(),
        "timeout" => "canceling statement due to statement timeout".into(),
        _ => message.into(),
    }
}

/// A `RowDescription` of `(name, type, binary)` columns (no table or column of origin; no
/// type modifier).
fn row_description(columns: &[(&str, PgType, bool)]) -> Bytes {
    let mut out = vec![b'T', 0, 0, 0, 0];
    out.extend_from_slice(&(columns.len() as i16).to_be_bytes());
    for (name, ty, binary) in columns {
        out.extend_from_slice(name.replace('\0', "").as_bytes());
        out.push(0);
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&ty.oid.to_be_bytes());
        out.extend_from_slice(&ty.len.to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes());
        out.extend_from_slice(&i16::from(*binary).to_be_bytes());
    }
    seal_message(out)
}

/// A `CommandComplete` with `tag`.
pub fn command_complete(tag: &str) -> Bytes {
    let mut out = vec![b'C', 0, 0, 0, 0];
    out.extend_from_slice(tag.as_bytes());
    out.push(0);
    seal_message(out)
}

/// An `ErrorResponse` (`severity` ERROR or FATAL).
pub fn error_response(severity: &str, sqlstate: &str, message: &str) -> Bytes {
    let mut out = vec![b'E', 0, 0, 0, 0];
    for (field, value) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        out.push(field);
        out.extend_from_slice(value.replace('\0', "").as_bytes());
        out.push(0);
    }
    out.push(0);
    seal_message(out)
}

/// Writes the length after the message's type byte.
fn seal_message(mut out: Vec<u8>) -> Bytes {
    let n = (out.len() - 1) as i32;
    out[1..5].copy_from_slice(&n.to_be_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_postgresql_sqlstates() {
        for (code, message, state) in [
            (
                "invalid_sql",
                "Parser Error: syntax error at or near \"SELEC\"",
                "42601",
            ),
            (
                "invalid_sql",
                "Catalog Error: Table with name nope does not exist!",
                "42P01",
            ),
            ("forbidden", "this token may not read table roads", "42501"),
            ("cancelled", "the query was cancelled", "57014"),
            ("too_many_connections", "…", "53300"),
            (
                "query_failed",
                "Conversion Error: Could not convert",
                "22P02",
            ),
        ] {
            assert_eq!(sqlstate(code, message), state, "{code}: {message}");
        }
    }

    #[test]
    fn messages_are_whole_backend_messages() {
        let c = command_complete("SELECT 3");
        assert_eq!(&c[..], b"C\0\0\0\x0dSELECT 3\0");
        let e = error_frame("cancelled", "the query was cancelled");
        assert_eq!(e.place, ErrorPlace::InStream);
        assert_eq!(e.bytes[0], b'E');
        let len = i32::from_be_bytes([e.bytes[1], e.bytes[2], e.bytes[3], e.bytes[4]]);
        assert_eq!(len as usize, e.bytes.len() - 1);
        let text = String::from_utf8_lossy(&e.bytes);
        assert!(text.contains("C57014\0"), "{text}");
        assert!(
            text.contains("canceling statement due to user request"),
            "{text}"
        );
    }
}
