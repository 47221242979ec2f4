//! Encodes DuckDB data chunks into the protocol's `data` lines (NDJSON, rows as arrays).
//!
//! The hot loop of the gateway: it reads DuckDB's vectors in place (no Arrow, no intermediate
//! values) and appends JSON text to the line being built.
//!
//! Invariants:
//! - A line holds at most `chunk_rows` rows and is closed as soon as it reaches `chunk_bytes`
//!   (so one line is never much larger than the byte cap plus one row).
//! - `seq` counts emitted lines from 0 without gaps; `rows()` counts every row emitted.
//! - Vectors are only read for rows `< chunk.len()` and, for nested types, within the child
//!   ranges DuckDB reports; all pointer reads happen while the owning chunk is alive.

pub mod json;
pub mod plan;

use bytes::Bytes;
use duckdb::ffi;

use crate::engine::duck::DataChunk;
use crate::wire::lines;
pub use plan::{Plan, UnsupportedType};

/// One finished `data` line.
#[derive(Debug)]
pub struct Line {
    pub bytes: Bytes,
    pub rows: usize,
}

/// Turns chunks into `data` lines.
pub struct Encoder {
    plans: Vec<Plan>,
    line: LineBuf,
    limits: ResultLimits,
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
}

/// Whether `push` consumed its chunk or stopped at a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The result reached a limit; the rows before it were emitted or are pending.
    LimitReached,
}

/// The line being built, and the counters across lines.
struct LineBuf {
    query_id: String,
    chunk_rows: usize,
    chunk_bytes: usize,
    buf: Vec<u8>,
    rows_in_line: usize,
    seq: u64,
    rows: u64,
    /// Bytes of the lines emitted so far.
    bytes: u64,
    capacity: usize,
}

impl Encoder {
    pub fn new(plans: Vec<Plan>, query_id: &str, chunk_rows: usize, chunk_bytes: usize) -> Self {
        Self {
            plans,
            line: LineBuf {
                query_id: query_id.to_string(),
                chunk_rows: chunk_rows.max(1),
                chunk_bytes: chunk_bytes.max(1),
                buf: Vec::new(),
                rows_in_line: 0,
                seq: 0,
                rows: 0,
                bytes: 0,
                capacity: 64 * 1024,
            },
            limits: ResultLimits::NONE,
        }
    }

    /// Caps the result (rows and NDJSON bytes of its data lines).
    pub fn with_limits(mut self, limits: ResultLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Rows waiting in the open line.
    pub fn pending_rows(&self) -> usize {
        self.line.rows_in_line
    }

    /// Encodes every row of `chunk`, handing each line that fills up to `emit`.
    pub fn push<E>(
        &mut self,
        chunk: &DataChunk,
        mut emit: impl FnMut(Line) -> Result<(), E>,
    ) -> Result<Flow, E> {
        let n = chunk.len();
        let limits = self.limits;
        // SAFETY: the vectors belong to `chunk`, which outlives `cols`; plans match the
        // result's column types (both come from the same prepared statement).
        let cols: Vec<Col<'_>> = self
            .plans
            .iter()
            .enumerate()
            .map(|(i, p)| unsafe { Col::bind(p, chunk.vector(i)) })
            .collect();
        let line = &mut self.line;
        for row in 0..n {
            if line.rows + line.rows_in_line as u64 >= limits.max_rows
                || line.bytes + line.buf.len() as u64 >= limits.max_bytes
            {
                return Ok(Flow::LimitReached);
            }
            if line.rows_in_line == 0 {
                line.open();
            } else {
                line.buf.push(b',');
            }
            line.buf.reserve(64);
            line.buf.push(b'[');
            for (i, col) in cols.iter().enumerate() {
                if i > 0 {
                    line.buf.push(b',');
                }
                // SAFETY: row < n = the chunk's size.
                unsafe { write_value(col, row, &mut line.buf) };
            }
            line.buf.push(b']');
            line.rows_in_line += 1;
            if line.rows_in_line >= line.chunk_rows || line.buf.len() >= line.chunk_bytes {
                emit(line.close())?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Closes the open line, if it holds any rows.
    pub fn flush(&mut self) -> Option<Line> {
        (self.line.rows_in_line > 0).then(|| self.line.close())
    }
}

impl LineBuf {
    fn open(&mut self) {
        self.buf = Vec::with_capacity(self.capacity);
        lines::data_prefix(&mut self.buf, &self.query_id, self.seq);
    }

    fn close(&mut self) -> Line {
        self.buf.extend_from_slice(b"]}\n");
        // Size the next buffer like this one, so that lines rarely reallocate.
        self.capacity = self.buf.len().next_power_of_two().min(self.chunk_bytes * 2);
        let rows = std::mem::take(&mut self.rows_in_line);
        self.seq += 1;
        self.rows += rows as u64;
        self.bytes += self.buf.len() as u64;
        Line {
            bytes: Bytes::from(std::mem::take(&mut self.buf)),
            rows,
        }
    }
}

/// A vector bound to its plan for one chunk.
struct Col<'p> {
    plan: &'p Plan,
    data: *const u8,
    validity: *const u64,
    children: Vec<Col<'p>>,
}

static UNION_TAG: Plan = Plan::U8;

impl<'p> Col<'p> {
    /// # Safety
    /// `vec` must be a live vector whose type is the one `plan` was built from.
    unsafe fn bind(plan: &'p Plan, vec: ffi::duckdb_vector) -> Self {
        unsafe {
            let children = match plan {
                Plan::List(child) => vec![Col::bind(child, ffi::duckdb_list_vector_get_child(vec))],
                Plan::Array(child, _) => {
                    vec![Col::bind(child, ffi::duckdb_array_vector_get_child(vec))]
                }
                Plan::Map(key, value) => {
                    let entries = ffi::duckdb_list_vector_get_child(vec);
                    vec![
                        Col::bind(key, ffi::duckdb_struct_vector_get_child(entries, 0)),
                        Col::bind(value, ffi::duckdb_struct_vector_get_child(entries, 1)),
                    ]
                }
                Plan::Struct(fields) => fields
                    .iter()
                    .enumerate()
                    .map(|(i, (_, p))| {
                        Col::bind(p, ffi::duckdb_struct_vector_get_child(vec, i as u64))
                    })
                    .collect(),
                Plan::Union(members) => std::iter::once(Col::bind(
                    &UNION_TAG,
                    ffi::duckdb_struct_vector_get_child(vec, 0),
                ))
                .chain(members.iter().enumerate().map(|(i, (_, p))| {
                    Col::bind(p, ffi::duckdb_struct_vector_get_child(vec, i as u64 + 1))
                }))
                .collect(),
                _ => Vec::new(),
            };
            Col {
                plan,
                data: ffi::duckdb_vector_get_data(vec) as *const u8,
                validity: ffi::duckdb_vector_get_validity(vec),
                children,
            }
        }
    }

    #[inline(always)]
    unsafe fn is_valid(&self, row: usize) -> bool {
        self.validity.is_null() || unsafe { (*self.validity.add(row / 64) >> (row % 64)) & 1 == 1 }
    }

    #[inline(always)]
    unsafe fn get<T: Copy>(&self, row: usize) -> T {
        unsafe { (self.data as *const T).add(row).read_unaligned() }
    }

    /// The bytes of a VARCHAR/BLOB/BIT value (`duckdb_string_t`: inlined up to 12 bytes).
    #[inline(always)]
    unsafe fn bytes(&self, row: usize) -> &'p [u8] {
        unsafe {
            let p = self.data.add(row * 16);
            let len = (p as *const u32).read_unaligned() as usize;
            if len <= 12 {
                std::slice::from_raw_parts(p.add(4), len)
            } else {
                let ptr = (p.add(8) as *const *const u8).read_unaligned();
                std::slice::from_raw_parts(ptr, len)
            }
        }
    }

    #[inline(always)]
    unsafe fn i128_at(&self, row: usize) -> i128 {
        let h: ffi::duckdb_hugeint = unsafe { self.get(row) };
        ((h.upper as i128) << 64) | h.lower as i128
    }
}

fn write_list(col: &Col<'_>, offset: usize, len: usize, out: &mut Vec<u8>) {
    out.push(b'[');
    for i in 0..len {
        if i > 0 {
            out.push(b',');
        }
        // SAFETY: DuckDB's list entries index within the child vector.
        unsafe { write_value(col, offset + i, out) };
    }
    out.push(b']');
}

/// Appends the JSON form of `col[row]`.
///
/// # Safety
/// `row` must be within the vector `col` was bound to.
unsafe fn write_value(col: &Col<'_>, row: usize, out: &mut Vec<u8>) {
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
            Plan::I128 => json::write_int(out, col.i128_at(row)),
            Plan::U128 => {
                let h: ffi::duckdb_uhugeint = col.get(row);
                json::write_int(out, ((h.upper as u128) << 64) | h.lower as u128)
            }
            Plan::F32 => json::write_f32(out, col.get::<f32>(row)),
            Plan::F64 => json::write_f64(out, col.get::<f64>(row)),
            Plan::Decimal { width, scale } => {
                let v: i128 = match width {
                    plan::Width::W8 => col.get::<i8>(row).into(),
                    plan::Width::W16 => col.get::<i16>(row).into(),
                    plan::Width::W32 => col.get::<i32>(row).into(),
                    plan::Width::W64 => col.get::<i64>(row).into(),
                    plan::Width::W128 => col.i128_at(row),
                };
                json::write_decimal(out, v, *scale)
            }
            Plan::Varchar => json::write_str(out, col.bytes(row)),
            Plan::Blob => json::write_base64(out, col.bytes(row)),
            Plan::Bit => json::write_bits(out, col.bytes(row)),
            Plan::Date => json::write_date(out, col.get::<i32>(row)),
            Plan::Time(t) => json::write_time(out, col.get::<i64>(row), t.per_sec as u64, t.digits),
            Plan::TimeTz => {
                let tz = ffi::duckdb_from_time_tz(ffi::duckdb_time_tz {
                    bits: col.get::<u64>(row),
                });
                let t = tz.time;
                let micros = ((i64::from(t.hour) * 60 + i64::from(t.min)) * 60 + i64::from(t.sec))
                    * 1_000_000
                    + i64::from(t.micros);
                json::write_time_tz(out, micros, tz.offset)
            }
            Plan::Timestamp { ticks, utc } => {
                json::write_timestamp(out, col.get::<i64>(row), ticks.per_sec, ticks.digits, *utc)
            }
            Plan::Interval => {
                let iv: ffi::duckdb_interval = col.get(row);
                json::write_interval(out, iv.months, iv.days, iv.micros)
            }
            Plan::Uuid => {
                let h: ffi::duckdb_hugeint = col.get(row);
                json::write_uuid(out, h.lower, h.upper)
            }
            Plan::Enum { width, values } => {
                let idx = match width {
                    plan::Width::W8 => col.get::<u8>(row) as usize,
                    plan::Width::W16 => col.get::<u16>(row) as usize,
                    _ => col.get::<u32>(row) as usize,
                };
                match values.get(idx) {
                    Some(v) => out.extend_from_slice(v),
                    None => out.extend_from_slice(b"null"),
                }
            }
            Plan::List(_) => {
                let e: ffi::duckdb_list_entry = col.get(row);
                write_list(&col.children[0], e.offset as usize, e.length as usize, out)
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
                let e: ffi::duckdb_list_entry = col.get(row);
                let (keys, values) = (&col.children[0], &col.children[1]);
                out.push(b'{');
                let mut scratch = Vec::new();
                for i in e.offset as usize..(e.offset + e.length) as usize {
                    if i > e.offset as usize {
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
                    write_value(values, i, out);
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
