//! PostgreSQL's binary form of values: what each type's `send` function writes, in network
//! byte order. Times count from PostgreSQL's epoch, 2000-01-01.
//!
//! Invariants:
//! - Values are written straight from DuckDB's vectors; nanosecond times and timestamps are
//!   truncated to microseconds (PostgreSQL has no finer unit), seconds and milliseconds scaled.
//! - `json`, `text` and WKT columns send their text (json's binary form is its text).

use super::super::geometry;
use super::super::ndjson::Col;
use super::super::plan::{Plan, Ticks};
use super::text;
use super::types::Shape;
use crate::duck::values;
use crate::wire::{json, GeometryFormat};

/// Days from 1970-01-01 (DuckDB's epoch) to 2000-01-01 (PostgreSQL's).
const EPOCH_DAYS: i64 = 10_957;
const EPOCH_MICROS: i64 = EPOCH_DAYS * 86_400_000_000;

/// Appends the binary form of the valid value `col[row]`, as `shape` says.
///
/// # Safety
/// `row` must be a row of the vector `col` was bound to, and valid (not NULL).
pub unsafe fn write(col: &Col<'_, '_>, row: usize, shape: Shape, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        match shape {
            Shape::Scalar => write_scalar(col, row, out),
            Shape::Json => text::write(col, row, Shape::Json, out),
            Shape::Array { element } => write_array(col, row, element.oid, out),
        }
    }
}

/// # Safety
/// As [`write`]; `col`'s plan is not nested.
unsafe fn write_scalar(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract: reads within the vector, with its plan's physical type.
    unsafe {
        match col.plan {
            Plan::Bool => out.push(u8::from(col.get::<u8>(row) != 0)),
            Plan::I8 => put_i16(out, col.get::<i8>(row).into()),
            Plan::U8 => put_i16(out, col.get::<u8>(row).into()),
            Plan::I16 => put_i16(out, col.get::<i16>(row)),
            Plan::U16 => out.extend_from_slice(&i32::from(col.get::<u16>(row)).to_be_bytes()),
            Plan::I32 => out.extend_from_slice(&col.get::<i32>(row).to_be_bytes()),
            Plan::U32 => put_i64(out, col.get::<u32>(row).into()),
            Plan::I64 => put_i64(out, col.get::<i64>(row)),
            Plan::U64 => write_numeric(out, col.get::<u64>(row).into(), 0, false),
            Plan::I128 => {
                let v = values::i128_at(col.data(), row);
                write_numeric(out, v.unsigned_abs(), 0, v < 0)
            }
            Plan::U128 => write_numeric(out, values::u128_at(col.data(), row), 0, false),
            Plan::Decimal { width, scale } => {
                let v = text::decimal_at(col, row, *width);
                write_numeric(out, v.unsigned_abs(), *scale, v < 0)
            }
            Plan::F32 => out.extend_from_slice(&col.get::<f32>(row).to_be_bytes()),
            Plan::F64 => out.extend_from_slice(&col.get::<f64>(row).to_be_bytes()),
            Plan::Blob => out.extend_from_slice(col.bytes(row)),
            Plan::Geometry(GeometryFormat::Wkb) => {
                if let Err(e) = geometry::write_ewkb(out, col.bytes(row)) {
                    col.report(e);
                }
            }
            Plan::Bit => write_varbit(out, col.bytes(row)),
            Plan::Uuid => {
                let (lower, upper) = values::uuid_at(col.data(), row);
                let hi = (upper as u64) ^ (1u64 << 63);
                out.extend_from_slice(&((hi as u128) << 64 | lower as u128).to_be_bytes());
            }
            Plan::Date => write_date(out, col.get::<i32>(row)),
            Plan::Time(t) => put_i64(out, micros(col.get::<i64>(row), *t)),
            Plan::TimeTz => {
                let (micros, offset) = values::time_tz_at(col.data(), row);
                put_i64(out, micros);
                // PostgreSQL counts the zone in seconds west of UTC.
                out.extend_from_slice(&(-offset).to_be_bytes());
            }
            Plan::Timestamp { ticks, .. } => write_timestamp(out, col.get::<i64>(row), *ticks),
            Plan::Interval => {
                let (months, days, micros) = values::interval_at(col.data(), row);
                put_i64(out, micros);
                out.extend_from_slice(&days.to_be_bytes());
                out.extend_from_slice(&months.to_be_bytes());
            }
            // VARCHAR, ENUM labels, WKT, a NULL-typed column: their text.
            _ => text::write(col, row, Shape::Scalar, out),
        }
    }
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// `ticks` of `unit` as microseconds (nanoseconds truncated).
fn micros(ticks: i64, unit: Ticks) -> i64 {
    match unit.per_sec {
        1_000_000 => ticks,
        1_000_000_000 => ticks.div_euclid(1_000),
        per_sec => ticks.saturating_mul(1_000_000 / per_sec),
    }
}

/// Days since 2000-01-01; infinities stay PostgreSQL's (`i32::MAX`, `i32::MIN`).
fn write_date(out: &mut Vec<u8>, days: i32) {
    let pg = match days {
        json::DATE_INFINITY => i32::MAX,
        d if d == -json::DATE_INFINITY => i32::MIN,
        d => (i64::from(d) - EPOCH_DAYS) as i32,
    };
    out.extend_from_slice(&pg.to_be_bytes());
}

/// Microseconds since 2000-01-01 00:00 (UTC for `timestamptz`); infinities stay PostgreSQL's.
fn write_timestamp(out: &mut Vec<u8>, ticks: i64, unit: Ticks) {
    let pg = match ticks {
        json::TS_INFINITY => i64::MAX,
        t if t == -json::TS_INFINITY => i64::MIN,
        t => micros(t, unit).saturating_sub(EPOCH_MICROS),
    };
    put_i64(out, pg);
}

/// `numeric`'s binary form of `±magnitude / 10^scale`: digit count, weight, sign, display
/// scale, then base-10000 digits (no leading or trailing zero digits).
pub fn write_numeric(out: &mut Vec<u8>, magnitude: u128, scale: u8, negative: bool) {
    let mut buf = itoa::Buffer::new();
    let text = buf.format(magnitude).as_bytes();
    let scale = scale as usize;
    // Integer and fraction digits, each padded to whole groups of four.
    let (int, frac): (Vec<u8>, Vec<u8>) = if text.len() > scale {
        let (i, f) = text.split_at(text.len() - scale);
        (i.to_vec(), f.to_vec())
    } else {
        let mut f = vec![b'0'; scale - text.len()];
        f.extend_from_slice(text);
        (Vec::new(), f)
    };
    let mut padded = vec![b'0'; (4 - int.len() % 4) % 4];
    padded.extend_from_slice(&int);
    let int_groups = padded.len() / 4;
    padded.extend_from_slice(&frac);
    padded.extend(std::iter::repeat_n(b'0', (4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> = padded
        .chunks(4)
        .map(|g| g.iter().fold(0i16, |n, d| n * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = int_groups as i16 - 1;
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading);
    weight -= leading as i16;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    put_i16(out, groups.len() as i16);
    put_i16(out, weight);
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    out.extend_from_slice(&sign.to_be_bytes());
    put_i16(out, scale as i16);
    for g in groups {
        put_i16(out, g);
    }
}

/// `varbit`: the bit count, then the bits from the first, left-aligned. DuckDB's BIT is a
/// padding count, then bytes whose first `padding` bits are not part of the value.
fn write_varbit(out: &mut Vec<u8>, blob: &[u8]) {
    let Some((&padding, data)) = blob.split_first() else {
        return out.extend_from_slice(&0i32.to_be_bytes());
    };
    let bits = (data.len() * 8).saturating_sub(padding as usize);
    out.extend_from_slice(&(bits as i32).to_be_bytes());
    let shift = u32::from(padding % 8);
    let start = out.len();
    for i in 0..data.len() {
        let next = data.get(i + 1).copied().unwrap_or(0);
        let byte = if shift == 0 {
            data[i]
        } else {
            (data[i] << shift) | (next >> (8 - shift))
        };
        out.push(byte);
    }
    out.truncate(start + bits.div_ceil(8));
}

/// A one-dimensional array: dimensions, a has-NULL flag, the element OID, then each element as
/// its length (-1 for NULL) and binary form.
///
/// # Safety
/// As [`write`], for a LIST or ARRAY vector whose element plan is not nested.
unsafe fn write_array(col: &Col<'_, '_>, row: usize, element_oid: u32, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract; the element range is the one DuckDB gives for `row`.
    unsafe {
        let (offset, len) = text::array_range(col, row);
        let element = &col.children()[0];
        let has_null = (offset..offset + len).any(|i| !element.is_valid(i));
        let ndim: i32 = if len == 0 { 0 } else { 1 };
        out.extend_from_slice(&ndim.to_be_bytes());
        out.extend_from_slice(&i32::from(has_null).to_be_bytes());
        out.extend_from_slice(&element_oid.to_be_bytes());
        if len == 0 {
            return;
        }
        out.extend_from_slice(&(len as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for i in offset..offset + len {
            if !element.is_valid(i) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            write_scalar(element, i, out);
            let n = (out.len() - at - 4) as i32;
            out[at..at + 4].copy_from_slice(&n.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(magnitude: u128, scale: u8, negative: bool) -> Vec<i16> {
        let mut out = Vec::new();
        write_numeric(&mut out, magnitude, scale, negative);
        out.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_are_base_10000_digits() {
        // 12345.678: digits [1, 2345, 6780], weight 1, dscale 3.
        assert_eq!(numeric(12_345_678, 3, false), [3, 1, 0, 3, 1, 2345, 6780]);
        // -0.05: one digit 500 at weight -1.
        assert_eq!(numeric(5, 2, true), [1, -1, 0x4000u16 as i16, 2, 500]);
        assert_eq!(numeric(0, 2, false), [0, 0, 0, 2]);
        // 10^20: one digit 1 at weight 5.
        assert_eq!(numeric(10u128.pow(20), 0, false), [1, 5, 0, 0, 1]);
    }

    #[test]
    fn bits_are_left_aligned() {
        // DuckDB's '101': padding 5, then 0b00000101.
        let mut out = Vec::new();
        write_varbit(&mut out, &[5, 0b0000_0101]);
        assert_eq!(out, [0, 0, 0, 3, 0b1010_0000]);
    }

    #[test]
    fn times_count_from_2000() {
        let mut out = Vec::new();
        write_date(&mut out, EPOCH_DAYS as i32 + 1);
        assert_eq!(out, 1i32.to_be_bytes());
        assert_eq!(micros(1_500, types_ns()), 1);
    }

    fn types_ns() -> Ticks {
        crate::encode::plan::NANOS
    }
}
