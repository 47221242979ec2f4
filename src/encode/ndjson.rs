//! The NDJSON format (`docs/PROTOCOL.md`): a `metadata` line, `data` lines of rows as JSON
//! arrays, then `end` or `error`; and `jsonl`, the same values as one JSON object per row
//! (column names as keys) with nothing around them, for tools that read plain rows.
//!
//! The hot loop of the gateway: it reads DuckDB's vectors in place (no Arrow, no intermediate
//! values) and appends JSON text to the line being built.
//!
//! Invariants:
//! - A line holds at most `chunk_rows` rows and is closed as soon as it reaches `chunk_bytes`
//!   (so one line is never much larger than the byte cap plus one row).
//! - The first data line holds at most `first_rows` rows ([`FIRST_LINE_ROWS`] unless the
//!   request named `chunk_rows`) and each next one at most twice the one before (up to
//!   `chunk_rows`): the first rows are on their way after a few dozen microseconds of
//!   encoding, not after a whole line's (0.35 ms for 1,000 wide rows).
//! - `seq` counts emitted lines from 0 without gaps; `rows()` counts every row emitted.
//! - `jsonl`: every row is one whole line; a batch is a run of them. It has no words for a
//!   failure: its error goes beside the stream, which breaks ([`super::ErrorPlace::Beside`]).
//! - Vectors are only read for rows `< chunk.len()` and, for nested types, within the child
//!   ranges DuckDB reports; all pointer reads happen while the owning chunk is alive.

use bytes::Bytes;

use std::cell::Cell;

use super::geometry::{self, BadWkb};
use super::plan::{Plan, Width};
use super::{
    BatchSizes, ErrorFrame, ErrorPlace, Flow, Line, Options, ResultEncoder, ResultLimits, Stopped,
};
use crate::duck::{values, DataChunk, LogicalType, Vector};
use crate::wire::json;
use crate::wire::lines::{self, Column};
use crate::wire::GeometryFormat;

/// The row cap of the first data line when the request did not name `chunk_rows`.
pub const FIRST_LINE_ROWS: usize = 128;

/// How rows are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// JSON arrays inside `data` lines, between `metadata` and `end` (the protocol).
    Protocol,
    /// `{"column": value, …}` lines, nothing else (`jsonl`).
    Objects,
}

/// Turns chunks into `data` lines (or `jsonl` rows).
pub struct NdjsonEncoder {
    columns: Vec<Column>,
    /// `jsonl`: each column's rendered `"name":` key (empty for the protocol).
    keys: Vec<Box<[u8]>>,
    plans: Vec<Plan>,
    line: LineBuf,
    limits: ResultLimits,
    /// Whether a column holds GEOMETRY (the only values that can fail to encode).
    fallible: bool,
    /// The first value that failed to encode in the current row, and its column.
    bad: Cell<Option<(usize, BadWkb)>>,
}

/// The line being built, and the counters across lines.
struct LineBuf {
    rows_as: Rows,
    query_id: String,
    chunk_rows: usize,
    /// The open line's row cap: `first_rows`, doubling per line up to `chunk_rows`.
    line_rows: usize,
    chunk_bytes: usize,
    buf: Vec<u8>,
    rows_in_line: usize,
    seq: u64,
    rows: u64,
    /// Bytes of the lines emitted so far.
    bytes: u64,
    capacity: usize,
}

impl NdjsonEncoder {
    /// An encoder for a result of `columns`, or the first column type without a JSON form.
    pub fn new(
        columns: &[(String, LogicalType)],
        query_id: &str,
        sizes: BatchSizes,
        limits: ResultLimits,
        options: Options,
        rows_as: Rows,
    ) -> Result<Self, super::UnsupportedType> {
        let mut plans = Vec::with_capacity(columns.len());
        let mut described = Vec::with_capacity(columns.len());
        for (name, t) in columns {
            let (plan, type_name) = Plan::build(t, options.geometry)?;
            plans.push(plan);
            described.push(Column {
                name: name.clone(),
                type_name,
                crs: t.geometry_crs(),
            });
        }
        let fallible = plans.iter().any(Plan::holds_geometry);
        let keys = match rows_as {
            Rows::Protocol => Vec::new(),
            Rows::Objects => described
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut key = if i == 0 { b"{".to_vec() } else { b",".to_vec() };
                    json::write_key(&mut key, &c.name);
                    key.into_boxed_slice()
                })
                .collect(),
        };
        Ok(Self {
            columns: described,
            keys,
            plans,
            line: LineBuf {
                rows_as,
                query_id: query_id.to_string(),
                chunk_rows: sizes.rows.max(1),
                line_rows: sizes.first_rows.clamp(1, sizes.rows.max(1)),
                chunk_bytes: sizes.bytes.max(1),
                buf: Vec::new(),
                rows_in_line: 0,
                seq: 0,
                rows: 0,
                bytes: 0,
                capacity: 64 * 1024,
            },
            limits,
            fallible,
            bad: Cell::new(None),
        })
    }
}

impl ResultEncoder for NdjsonEncoder {
    fn header(&mut self) -> Bytes {
        match self.line.rows_as {
            Rows::Protocol => lines::metadata_line(&self.line.query_id, &self.columns),
            Rows::Objects => Bytes::new(),
        }
    }

    fn pending_rows(&self) -> usize {
        self.line.rows_in_line
    }

    fn push(
        &mut self,
        chunk: &DataChunk,
        emit: &mut dyn FnMut(Line) -> Result<(), Stopped>,
    ) -> Result<Flow, Stopped> {
        let n = chunk.len();
        let limits = self.limits;
        // SAFETY: the plans were built from the types of the executed statement `chunk`
        // comes from.
        let cols = unsafe { bind_columns(&self.plans, chunk, &self.bad) }?;
        let line = &mut self.line;
        for row in 0..n {
            if line.rows + line.rows_in_line as u64 >= limits.max_rows
                || line.bytes + line.buf.len() as u64 >= limits.max_bytes
            {
                return Ok(Flow::LimitReached);
            }
            if line.rows_in_line == 0 {
                line.open();
            }
            let row_start = line.buf.len();
            line.buf.reserve(64);
            if line.rows_as == Rows::Protocol {
                if line.rows_in_line > 0 {
                    line.buf.push(b',');
                }
                line.buf.push(b'[');
                for (i, col) in cols.iter().enumerate() {
                    if i > 0 {
                        line.buf.push(b',');
                    }
                    // SAFETY: row < n = the chunk's size.
                    unsafe { write_value(col, row, &mut line.buf) };
                }
                line.buf.push(b']');
            } else {
                for (key, col) in self.keys.iter().zip(&cols) {
                    line.buf.extend_from_slice(key);
                    // SAFETY: row < n = the chunk's size.
                    unsafe { write_value(col, row, &mut line.buf) };
                }
                line.buf.extend_from_slice(b"}\n");
            }
            if self.fallible {
                if let Some((column, e)) = self.bad.take() {
                    // Drop the bad row: the line ends with the rows before it.
                    line.buf.truncate(row_start);
                    return Ok(Flow::Invalid {
                        column,
                        reason: e.0,
                    });
                }
            }
            line.rows_in_line += 1;
            if line.rows_in_line >= line.line_rows || line.buf.len() >= line.chunk_bytes {
                emit(line.close())?;
            }
        }
        Ok(Flow::Continue)
    }

    fn flush(&mut self) -> Option<Line> {
        (self.line.rows_in_line > 0).then(|| self.line.close())
    }

    fn end(&mut self, elapsed_ms: u64) -> Bytes {
        if self.line.rows_as == Rows::Objects {
            return Bytes::new();
        }
        lines::end_line(
            &self.line.query_id,
            self.line.rows,
            self.line.seq,
            elapsed_ms,
        )
    }

    fn fail(&mut self, query_id: &str, code: &str, message: &str) -> ErrorFrame {
        error_frame(self.line.rows_as, query_id, code, message)
    }
}

/// What ends a failed result: the protocol's `error` line in the stream; `jsonl`, which has no
/// place for it, breaks.
pub fn error_frame(rows: Rows, query_id: &str, code: &str, message: &str) -> ErrorFrame {
    match rows {
        Rows::Protocol => ErrorFrame {
            bytes: lines::error_line(query_id, code, message),
            place: ErrorPlace::InStream,
        },
        Rows::Objects => ErrorFrame::beside(query_id, code, message),
    }
}

impl LineBuf {
    fn open(&mut self) {
        self.buf = Vec::with_capacity(self.capacity);
        if self.rows_as == Rows::Protocol {
            lines::data_prefix(&mut self.buf, &self.query_id, self.seq);
        }
    }

    fn close(&mut self) -> Line {
        if self.rows_as == Rows::Protocol {
            self.buf.extend_from_slice(b"]}\n");
        }
        let rows = std::mem::take(&mut self.rows_in_line);
        self.line_rows = (self.line_rows * 2).min(self.chunk_rows);
        self.seq += 1;
        self.rows += rows as u64;
        self.bytes += self.buf.len() as u64;
        // The next buffer is sized like this line, so that lines rarely reallocate.
        let (bytes, capacity) = super::seal(std::mem::take(&mut self.buf), self.chunk_bytes);
        self.capacity = capacity;
        Line { bytes, rows }
    }
}

/// Binds each of `chunk`'s vectors to its column's plan (also the CSV encoder's). A chunk
/// always has the result's columns; a missing one ends the result short (the executor then
/// fails the stream) rather than reading out of bounds.
///
/// # Safety
/// `plans` must have been built from the column types of the result `chunk` belongs to.
pub(super) unsafe fn bind_columns<'p, 'c>(
    plans: &'p [Plan],
    chunk: &'c DataChunk,
    bad: &'p Cell<Option<(usize, BadWkb)>>,
) -> Result<Vec<Col<'p, 'c>>, Stopped> {
    let mut cols = Vec::with_capacity(plans.len());
    for (i, p) in plans.iter().enumerate() {
        let vector = chunk.vector(i).ok_or(Stopped)?;
        // SAFETY: the vector belongs to `chunk`, which outlives the returned columns; its
        // type is the one `p` was built from (the caller's contract).
        cols.push(unsafe { Col::bind(p, vector, i, bad) });
    }
    Ok(cols)
}

/// A vector bound to its plan for one chunk (also the CSV encoder's reader).
pub(super) struct Col<'p, 'c> {
    pub(super) plan: &'p Plan,
    data: *const u8,
    validity: *const u64,
    children: Vec<Col<'p, 'c>>,
    /// The result column this vector belongs to (nested vectors: their top column).
    column: usize,
    /// Where a value that cannot be encoded is reported (the encoder's).
    bad: &'p Cell<Option<(usize, BadWkb)>>,
    _chunk: std::marker::PhantomData<Vector<'c>>,
}

static UNION_TAG: Plan = Plan::U8;

impl Col<'_, '_> {
    /// Reports a value that cannot be encoded: the encoder's `push` drops its row and fails
    /// the result. The first report is kept.
    pub(super) fn report(&self, e: BadWkb) {
        if self.bad.get().is_none() {
            self.bad.set(Some((self.column, e)));
        }
    }
}

impl<'p, 'c> Col<'p, 'c> {
    /// # Safety
    /// `vec`'s type must be the one `plan` was built from.
    pub(super) unsafe fn bind(
        plan: &'p Plan,
        vec: Vector<'c>,
        column: usize,
        bad: &'p Cell<Option<(usize, BadWkb)>>,
    ) -> Self {
        let bind = |p: &'p Plan, v: Vector<'c>| {
            // SAFETY: the caller's contract, passed on to the child of the matching type.
            unsafe { Col::bind(p, v, column, bad) }
        };
        // SAFETY: every child access below is sound because the plan matches the vector's type (the
        // caller's contract), so a List plan has a LIST vector, a Struct plan a STRUCT vector
        // with one field per plan field, a Union plan its tag field first, and so on.
        let children = unsafe {
            match plan {
                Plan::List(child) => vec![bind(child, vec.list_child())],
                Plan::Array(child, _) => vec![bind(child, vec.array_child())],
                Plan::Map(key, value) => {
                    let entries = vec.list_child();
                    vec![
                        bind(key, entries.struct_child(0)),
                        bind(value, entries.struct_child(1)),
                    ]
                }
                Plan::Struct(fields) => fields
                    .iter()
                    .enumerate()
                    .map(|(i, (_, p))| bind(p, vec.struct_child(i)))
                    .collect(),
                Plan::Union(members) => std::iter::once(bind(&UNION_TAG, vec.struct_child(0)))
                    .chain(
                        members
                            .iter()
                            .enumerate()
                            .map(|(i, (_, p))| bind(p, vec.struct_child(i + 1))),
                    )
                    .collect(),
                _ => Vec::new(),
            }
        };
        Col {
            plan,
            data: vec.data(),
            validity: vec.validity(),
            children,
            column,
            bad,
            _chunk: std::marker::PhantomData,
        }
    }

    /// # Safety
    /// `row` must be a row of the vector (see [`values`]).
    #[inline(always)]
    pub(super) unsafe fn is_valid(&self, row: usize) -> bool {
        // SAFETY: the caller's contract.
        unsafe { values::is_valid(self.validity, row) }
    }

    /// # Safety
    /// `row` must be a row of the vector, and `T` its physical type.
    #[inline(always)]
    pub(super) unsafe fn get<T: Copy>(&self, row: usize) -> T {
        // SAFETY: the caller's contract.
        unsafe { values::get(self.data, row) }
    }

    /// The vector's data (for the readers of [`values`]).
    pub(super) fn data(&self) -> *const u8 {
        self.data
    }

    /// The child vectors: a list's or array's elements, a map's keys and values, a struct's
    /// fields, a union's tag then members.
    pub(super) fn children(&self) -> &[Col<'p, 'c>] {
        &self.children
    }

    /// # Safety
    /// `row` must be a row of a VARCHAR, BLOB or BIT vector.
    #[inline(always)]
    pub(super) unsafe fn bytes(&self, row: usize) -> &'c [u8] {
        // SAFETY: the caller's contract; the bytes live as long as the chunk ('c).
        unsafe { values::string_at(self.data, row) }
    }
}

/// Appends `len` values of `col` from `offset` as a JSON array.
///
/// # Safety
/// `offset..offset + len` must be rows of `col`: DuckDB's list entry (or array size) for a row
/// of the parent vector gives such a range.
unsafe fn write_list(col: &Col<'_, '_>, offset: usize, len: usize, out: &mut Vec<u8>) {
    out.push(b'[');
    for i in 0..len {
        if i > 0 {
            out.push(b',');
        }
        // SAFETY: `offset + i` is in the range the caller vouches for.
        unsafe { write_value(col, offset + i, out) };
    }
    out.push(b']');
}

/// Appends the JSON form of `col[row]`.
///
/// # Safety
/// `row` must be within the vector `col` was bound to.
pub(super) unsafe fn write_value(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>) {
    // SAFETY: `row` is a row of `col` (the caller's contract), so every read below is within
    // the vector, with the physical type its plan was built from; children are read at the
    // rows their parent's entries give (list offsets, the same row for struct fields).
    unsafe {
        if !col.is_valid(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match col.plan {
            Plan::Null => out.extend_from_slice(b"null"),
            Plan::Bool => out.extend_from_slice(if col.get::<u8>(row) != 0 {
                b"true"
            } else {
                b"false"
            }),
            Plan::I8 => json::write_i64(out, col.get::<i8>(row).into()),
            Plan::I16 => json::write_i64(out, col.get::<i16>(row).into()),
            Plan::I32 => json::write_i64(out, col.get::<i32>(row).into()),
            Plan::I64 => json::write_i64(out, col.get::<i64>(row)),
            Plan::U8 => json::write_u64(out, col.get::<u8>(row).into()),
            Plan::U16 => json::write_u64(out, col.get::<u16>(row).into()),
            Plan::U32 => json::write_u64(out, col.get::<u32>(row).into()),
            Plan::U64 => json::write_u64(out, col.get::<u64>(row)),
            Plan::I128 => json::write_int(out, values::i128_at(col.data, row)),
            Plan::U128 => json::write_int(out, values::u128_at(col.data, row)),
            Plan::F32 => json::write_f32(out, col.get::<f32>(row)),
            Plan::F64 => json::write_f64(out, col.get::<f64>(row)),
            Plan::Decimal { width, scale } => {
                let v: i128 = match width {
                    Width::W8 => col.get::<i8>(row).into(),
                    Width::W16 => col.get::<i16>(row).into(),
                    Width::W32 => col.get::<i32>(row).into(),
                    Width::W64 => col.get::<i64>(row).into(),
                    Width::W128 => values::i128_at(col.data, row),
                };
                json::write_decimal(out, v, *scale)
            }
            Plan::Varchar => json::write_str(out, col.bytes(row)),
            Plan::Blob => json::write_base64(out, col.bytes(row)),
            Plan::Geometry(form) => {
                let wkb = col.bytes(row);
                let written = match form {
                    GeometryFormat::GeoJson => geometry::write_geojson(out, wkb),
                    GeometryFormat::Wkt => geometry::write_wkt(out, wkb),
                    GeometryFormat::Wkb => {
                        json::write_base64(out, wkb);
                        Ok(())
                    }
                };
                if let Err(e) = written {
                    col.report(e);
                }
            }
            Plan::Bit => json::write_bits(out, col.bytes(row)),
            Plan::Date => json::write_date(out, col.get::<i32>(row)),
            Plan::Time(t) => json::write_time(out, col.get::<i64>(row), t.per_sec as u64, t.digits),
            Plan::TimeTz => {
                let (micros, offset) = values::time_tz_at(col.data, row);
                json::write_time_tz(out, micros, offset)
            }
            Plan::Timestamp { ticks, utc } => {
                json::write_timestamp(out, col.get::<i64>(row), ticks.per_sec, ticks.digits, *utc)
            }
            Plan::Interval => {
                let (months, days, micros) = values::interval_at(col.data, row);
                json::write_interval(out, months, days, micros)
            }
            Plan::Uuid => {
                let (lower, upper) = values::uuid_at(col.data, row);
                json::write_uuid(out, lower, upper)
            }
            Plan::Enum { width, values } => {
                let idx = match width {
                    Width::W8 => col.get::<u8>(row) as usize,
                    Width::W16 => col.get::<u16>(row) as usize,
                    _ => col.get::<u32>(row) as usize,
                };
                match values.get(idx) {
                    Some(v) => out.extend_from_slice(v),
                    None => out.extend_from_slice(b"null"),
                }
            }
            Plan::List(_) => {
                let (offset, len) = values::list_entry_at(col.data, row);
                write_list(&col.children[0], offset, len, out)
            }
            Plan::Array(_, size) => write_list(&col.children[0], row * size, *size, out),
            Plan::Struct(fields) => {
                out.push(b'{');
                for (i, ((key, _), child)) in fields.iter().zip(&col.children).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    write_value(child, row, out);
                }
                out.push(b'}');
            }
            Plan::Map(_, _) => {
                let (offset, len) = values::list_entry_at(col.data, row);
                let (keys, entries) = (&col.children[0], &col.children[1]);
                out.push(b'{');
                let mut scratch = Vec::new();
                for i in offset..offset + len {
                    if i > offset {
                        out.push(b',');
                    }
                    // Keys become JSON object keys: a string key as is, any other key as
                    // the text of its JSON form (`1` -> "1").
                    if matches!(keys.plan, Plan::Varchar) && keys.is_valid(i) {
                        json::write_str(out, keys.bytes(i));
                    } else {
                        scratch.clear();
                        write_value(keys, i, &mut scratch);
                        if scratch.first() == Some(&b'"') {
                            out.extend_from_slice(&scratch);
                        } else {
                            json::write_str(out, &scratch);
                        }
                    }
                    out.push(b':');
                    write_value(entries, i, out);
                }
                out.push(b'}');
            }
            Plan::Union(members) => {
                let tag = col.children[0].get::<u8>(row) as usize;
                match (members.get(tag), col.children.get(tag + 1)) {
                    (Some((prefix, _)), Some(member)) => {
                        out.extend_from_slice(prefix);
                        write_value(member, row, out);
                        out.push(b'}');
                    }
                    _ => out.extend_from_slice(b"null"),
                }
            }
        }
    }
}
