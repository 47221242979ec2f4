//! PostgreSQL's text form of values, as a PostgreSQL 15 server prints them with its defaults
//! (`DateStyle = ISO`, `IntervalStyle = postgres`, `extra_float_digits = 1`,
//! `bytea_output = hex`, `TimeZone = UTC`).
//!
//! Invariant: written from DuckDB's vectors through the same readers as NDJSON; values whose
//! JSON text is already PostgreSQL's (integers, decimals, UUIDs, dates) reuse it.

use super::super::csv::unquote_json;
use super::super::geometry;
use super::super::ndjson::{write_value, Col};
use super::super::plan::{Plan, Width};
use super::types::Shape;
use crate::duck::values;
use crate::wire::{json, GeometryFormat};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the text form of the valid value `col[row]`, as `shape` says.
///
/// # Safety
/// `row` must be a row of the vector `col` was bound to, and valid (not NULL).
pub unsafe fn write(col: &Col<'_, '_>, row: usize, shape: Shape, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract.
    unsafe {
        match shape {
            Shape::Scalar => write_scalar(col, row, out),
            Shape::Json => write_value(col, row, out),
            Shape::Array { .. } => write_array(col, row, out),
        }
    }
}

/// # Safety
/// As [`write`]; `col`'s plan is not nested.
unsafe fn write_scalar(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract: reads within the vector, with its plan's physical type.
    unsafe {
        match col.plan {
            Plan::Bool => out.push(if col.get::<u8>(row) != 0 { b't' } else { b'f' }),
            Plan::I8 => json::write_i64(out, col.get::<i8>(row).into()),
            Plan::I16 => json::write_i64(out, col.get::<i16>(row).into()),
            Plan::I32 => json::write_i64(out, col.get::<i32>(row).into()),
            Plan::I64 => json::write_i64(out, col.get::<i64>(row)),
            Plan::U8 => json::write_u64(out, col.get::<u8>(row).into()),
            Plan::U16 => json::write_u64(out, col.get::<u16>(row).into()),
            Plan::U32 => json::write_u64(out, col.get::<u32>(row).into()),
            Plan::U64 => json::write_u64(out, col.get::<u64>(row)),
            Plan::I128 => json::write_int(out, values::i128_at(col.data(), row)),
            Plan::U128 => json::write_int(out, values::u128_at(col.data(), row)),
            Plan::Decimal { width, scale } => {
                json::write_decimal(out, decimal_at(col, row, *width), *scale)
            }
            Plan::F32 => write_float(out, f64::from(col.get::<f32>(row)), true),
            Plan::F64 => write_float(out, col.get::<f64>(row), false),
            Plan::Varchar => out.extend_from_slice(col.bytes(row)),
            Plan::Blob => write_bytea(out, col.bytes(row)),
            Plan::Geometry(GeometryFormat::Wkb) => write_ewkb_hex(col, row, out),
            Plan::Timestamp { utc, .. } => {
                let start = out.len();
                write_unquoted(col, row, out);
                timestamp_as_pg(out, start, *utc);
            }
            Plan::Interval => {
                let (months, days, micros) = values::interval_at(col.data(), row);
                write_interval(out, months, days, micros)
            }
            // Dates, times, UUIDs, ENUM labels, bits, WKT: their JSON string's text.
            _ => write_unquoted(col, row, out),
        }
    }
}

/// The unscaled value of a DECIMAL.
///
/// # Safety
/// As [`write`], for a DECIMAL vector of `width`.
pub(super) unsafe fn decimal_at(col: &Col<'_, '_>, row: usize, width: Width) -> i128 {
    // SAFETY: the caller's contract.
    unsafe {
        match width {
            Width::W8 => col.get::<i8>(row).into(),
            Width::W16 => col.get::<i16>(row).into(),
            Width::W32 => col.get::<i32>(row).into(),
            Width::W64 => col.get::<i64>(row).into(),
            Width::W128 => values::i128_at(col.data(), row),
        }
    }
}

/// The value's JSON form, a JSON string's text unquoted.
///
/// # Safety
/// As [`write`].
unsafe fn write_unquoted(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>) {
    let mut json = Vec::new();
    // SAFETY: the caller's contract.
    unsafe { write_value(col, row, &mut json) };
    if json.first() == Some(&b'"') {
        unquote_json(&json, out);
    } else {
        out.extend_from_slice(&json);
    }
}

/// `2024-05-01T12:00:00Z` (the protocol's form, from `start`) as PostgreSQL prints it:
/// `2024-05-01 12:00:00` or, with a time zone, `2024-05-01 12:00:00+00`.
fn timestamp_as_pg(out: &mut Vec<u8>, start: usize, utc: bool) {
    if let Some(t) = out[start..].iter().position(|&b| b == b'T') {
        out[start + t] = b' ';
    }
    if utc && out.last() == Some(&b'Z') {
        out.pop();
        out.extend_from_slice(b"+00");
    }
}

/// `\x` and lowercase hex (`bytea_output = hex`).
/// GEOMETRY as PostGIS's text form: upper-case hex EWKB.
///
/// # Safety
/// As [`write`], for a GEOMETRY vector.
unsafe fn write_ewkb_hex(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut ewkb = Vec::new();
    // SAFETY: the caller's contract.
    let wkb = unsafe { col.bytes(row) };
    match geometry::write_ewkb(&mut ewkb, wkb) {
        Ok(()) => {
            for b in ewkb {
                out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
        Err(e) => col.report(e),
    }
}

fn write_bytea(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(2 + bytes.len() * 2);
    out.extend_from_slice(b"\\x");
    for b in bytes {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
}

/// A float as PostgreSQL prints it with `extra_float_digits = 1`: the shortest text that reads
/// back as the same value, in exponent form when the exponent is below -4 or at least 15
/// (`1e+15`, `1.5e-07`), and `NaN`, `Infinity`, `-Infinity`.
pub fn write_float(out: &mut Vec<u8>, v: f64, single: bool) {
    if v.is_nan() {
        return out.extend_from_slice(b"NaN");
    }
    if v.is_infinite() {
        return out.extend_from_slice(if v < 0.0 { b"-Infinity" } else { b"Infinity" });
    }
    let mut buf = ryu::Buffer::new();
    let shortest = if single {
        buf.format_finite(v as f32)
    } else {
        buf.format_finite(v)
    };
    let (negative, digits, exponent) = decompose(shortest);
    if negative {
        out.push(b'-');
    }
    let max_exponent = if single { 6 } else { 15 };
    if !(-4..max_exponent).contains(&exponent) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        let e = exponent.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        json::write_u64(out, u64::from(e));
    } else if exponent < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exponent - 1) as usize));
        out.extend_from_slice(&digits);
    } else {
        let int_len = exponent as usize + 1;
        for i in 0..int_len.max(digits.len()) {
            if i == int_len {
                out.push(b'.');
            }
            out.push(digits.get(i).copied().unwrap_or(b'0'));
        }
    }
}

/// ryu's text as (sign, significant digits without leading or trailing zeros, the decimal
/// exponent of the first digit). Zero is `[b'0']`, exponent 0.
fn decompose(text: &str) -> (bool, Vec<u8>, i32) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let Some(first) = all.iter().position(|&b| b != b'0') else {
        return (negative, vec![b'0'], 0);
    };
    let last = all.iter().rposition(|&b| b != b'0').unwrap_or(first);
    let exponent = int.len() as i32 - 1 - first as i32 + exp;
    (negative, all[first..=last].to_vec(), exponent)
}

/// An interval as PostgreSQL prints it (`IntervalStyle = postgres`):
/// `1 year 2 mons 3 days 04:05:06.789`, `00:00:00` when empty.
pub fn write_interval(out: &mut Vec<u8>, months: i32, days: i32, micros: i64) {
    let (years, mons) = (months / 12, months % 12);
    let mut any_negative = false;
    let mut first = true;
    for (n, unit) in [(years, "year"), (mons, "mon"), (days, "day")] {
        if n == 0 {
            continue;
        }
        if !first {
            out.push(b' ');
        }
        first = false;
        any_negative |= n < 0;
        json::write_i64(out, n.into());
        out.push(b' ');
        out.extend_from_slice(unit.as_bytes());
        if n != 1 {
            out.push(b's');
        }
    }
    if micros == 0 && !first {
        return;
    }
    if !first {
        out.push(b' ');
    }
    if micros < 0 {
        out.push(b'-');
    } else if any_negative {
        out.push(b'+');
    }
    let m = micros.unsigned_abs();
    let secs = m / 1_000_000;
    let hours = secs / 3600;
    if hours < 10 {
        out.push(b'0');
    }
    json::write_u64(out, hours);
    for part in [secs / 60 % 60, secs % 60] {
        out.push(b':');
        if part < 10 {
            out.push(b'0');
        }
        json::write_u64(out, part);
    }
    let frac = m % 1_000_000;
    if frac != 0 {
        let digits = format!("{frac:06}");
        out.push(b'.');
        out.extend_from_slice(digits.trim_end_matches('0').as_bytes());
    }
}

/// A one-dimensional array: `{1,2,NULL}`, elements quoted when PostgreSQL would.
///
/// # Safety
/// As [`write`], for a LIST or ARRAY vector whose element plan is not nested.
unsafe fn write_array(col: &Col<'_, '_>, row: usize, out: &mut Vec<u8>) {
    // SAFETY: the caller's contract; the element range is the one DuckDB gives for `row`.
    unsafe {
        let (offset, len) = array_range(col, row);
        let element = &col.children()[0];
        out.push(b'{');
        let mut text = Vec::new();
        for i in offset..offset + len {
            if i > offset {
                out.push(b',');
            }
            if !element.is_valid(i) {
                out.extend_from_slice(b"NULL");
                continue;
            }
            text.clear();
            write_scalar(element, i, &mut text);
            write_array_element(out, &text);
        }
        out.push(b'}');
    }
}

/// The rows of `col[row]`'s elements in its child vector.
///
/// # Safety
/// As [`write_array`].
pub(super) unsafe fn array_range(col: &Col<'_, '_>, row: usize) -> (usize, usize) {
    match col.plan {
        Plan::Array(_, size) => (row * size, *size),
        // SAFETY: the caller's contract: a LIST vector.
        _ => unsafe { values::list_entry_at(col.data(), row) },
    }
}

/// An array element's text, in double quotes (with `"` and `\` escaped) when it is empty,
/// `NULL`, or holds a brace, comma, quote, backslash or blank.
fn write_array_element(out: &mut Vec<u8>, text: &[u8]) {
    let quote = text.is_empty()
        || text.eq_ignore_ascii_case(b"NULL")
        || text
            .iter()
            .any(|b| matches!(b, b'{' | b'}' | b',' | b'"' | b'\\') || b.is_ascii_whitespace());
    if !quote {
        return out.extend_from_slice(text);
    }
    out.push(b'"');
    for &b in text {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(v: f64, single: bool) -> String {
        let mut out = Vec::new();
        write_float(&mut out, v, single);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_print_as_postgresql_prints_them() {
        for (v, text) in [
            (1.0, "1"),
            (0.0, "0"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.0, "123456789012345"),
            (1e15, "1e+15"),
            (1.2345e20, "1.2345e+20"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(float(v, false), text, "{v}");
        }
        assert_eq!(float(f64::from(1.1f32), true), "1.1");
        assert_eq!(float(1e6, true), "1e+06");
    }

    fn interval(months: i32, days: i32, micros: i64) -> String {
        let mut out = Vec::new();
        write_interval(&mut out, months, days, micros);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn intervals_print_in_postgres_style() {
        assert_eq!(interval(0, 0, 0), "00:00:00");
        assert_eq!(
            interval(14, 3, 14_706_789_000),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(interval(0, 1, 0), "1 day");
        assert_eq!(interval(0, -1, 7_200_000_000), "-1 days +02:00:00");
        assert_eq!(interval(0, 0, -1_500_000), "-00:00:01.5");
    }

    #[test]
    fn array_elements_are_quoted_when_postgresql_would() {
        let mut out = Vec::new();
        for e in [&b"a"[..], b"", b"null", b"a b", b"x\"y", b"1,2"] {
            write_array_element(&mut out, e);
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"a|""|"null"|"a b"|"x\"y"|"1,2"|"#
        );
    }
}
