//! `Bind`'s parameter values, text or binary, into the gateway's [`Param`]s: the same values
//! HTTP's `params` give, so the engine binds them the same way (DuckDB casts a text value to
//! the type the statement needs).
//!
//! Invariants:
//! - Binary values are read by the type the client gave in `Parse`; a binary value of a type
//!   without a reader is refused (22P03), never guessed.
//! - Dates, timestamps, times, intervals, UUIDs, numerics and `bytea` arrive as their text,
//!   which DuckDB casts (`\x..` escapes for bytes); a binary array as the text of a DuckDB
//!   list (`[1, 2, NULL]`, strings double-quoted), its elements read by the element type the
//!   array names.

use bytes::Bytes;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::extendedquery::Bind;

use crate::wire::{json, Param};

/// The parameters of `bind`, read with the types `oids` gives (0: unspecified).
pub fn decode(bind: &Bind, oids: &[u32]) -> PgWireResult<Vec<Param>> {
    let codes = &bind.parameter_format_codes;
    if codes.len() > 1 && codes.len() != bind.parameters.len() {
        return Err(error(
            "08P01",
            "bind message has a wrong number of format codes".into(),
        ));
    }
    bind.parameters
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let binary = match codes.len() {
                0 => false,
                1 => codes[0] == 1,
                _ => codes[i] == 1,
            };
            let oid = oids.get(i).copied().unwrap_or(0);
            match value {
                None => Ok(Param::Null),
                Some(v) if binary => binary_param(oid, v),
                Some(v) => text_param(oid, v),
            }
        })
        .collect()
}

/// The highest `$n` of `sql` outside quotes (the parameters a statement takes).
pub fn count(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let (mut highest, mut i, mut quoted) = (0, 0, None);
    while i < bytes.len() {
        let b = bytes[i];
        match quoted {
            Some(q) if b == q => quoted = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quoted = Some(b),
            None if b == b'$' => {
                let digits: String = sql[i + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse::<usize>() {
                    highest = highest.max(n);
                }
            }
            None => {}
        }
        i += 1;
    }
    highest
}

fn text_param(oid: u32, value: &Bytes) -> PgWireResult<Param> {
    let text = std::str::from_utf8(value)
        .map_err(|_| error("22021", "a text parameter is not valid UTF-8".into()))?;
    let bad = || {
        error(
            "22P02",
            format!("invalid input syntax for type with OID {oid}: \"{text}\""),
        )
    };
    Ok(match oid {
        16 => match text.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => Param::Bool(true),
            "f" | "false" | "no" | "off" | "0" => Param::Bool(false),
            _ => return Err(bad()),
        },
        20 | 21 | 23 => Param::Int(text.trim().parse().map_err(|_| bad())?),
        700 | 701 => Param::Float(text.trim().parse().map_err(|_| bad())?),
        oid if NUMBER_ARRAYS.contains(&oid) => Param::Text(number_list(text).ok_or_else(bad)?),
        _ => Param::Text(text.to_string()),
    })
}

/// Arrays of numbers: `int2[]`, `int4[]`, `int8[]`, `oid[]`, `float4[]`, `float8[]`,
/// `numeric[]` (asyncpg's introspection binds `$1::oid[]`).
const NUMBER_ARRAYS: &[u32] = &[1005, 1007, 1016, 1028, 1021, 1022, 1231];

/// A one-dimensional array of numbers in PostgreSQL's text form (`{1,2,NULL}`) as the list
/// text DuckDB casts to a list (`[1,2,NULL]`); `None` for anything else.
fn number_list(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let number = |e: &str| {
        let e = e.trim();
        e.eq_ignore_ascii_case("NULL")
            || (!e.is_empty()
                && e.bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
                && e.parse::<f64>().is_ok())
    };
    if !inner.trim().is_empty() && !inner.split(',').all(number) {
        return None;
    }
    Some(format!("[{inner}]"))
}

fn binary_param(oid: u32, v: &Bytes) -> PgWireResult<Param> {
    let wrong = || {
        error(
            "22P03",
            format!("incorrect binary data format for type with OID {oid}"),
        )
    };
    let fixed = |n: usize| -> PgWireResult<&[u8]> {
        if v.len() == n {
            Ok(&v[..])
        } else {
            Err(wrong())
        }
    };
    Ok(match oid {
        16 => Param::Bool(fixed(1)?[0] != 0),
        21 => Param::Int(i16::from_be_bytes(fixed(2)?.try_into().map_err(|_| wrong())?).into()),
        23 => Param::Int(i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| wrong())?).into()),
        26 => Param::Int(u32::from_be_bytes(fixed(4)?.try_into().map_err(|_| wrong())?).into()),
        20 => Param::Int(i64::from_be_bytes(
            fixed(8)?.try_into().map_err(|_| wrong())?,
        )),
        700 => Param::Float(f32::from_be_bytes(fixed(4)?.try_into().map_err(|_| wrong())?).into()),
        701 => Param::Float(f64::from_be_bytes(
            fixed(8)?.try_into().map_err(|_| wrong())?,
        )),
        0 | 18 | 19 | 25 | 114 | 705 | 1042 | 1043 | 3802 => text_param(0, v)?,
        17 => Param::Text(v.iter().map(|b| format!("\\x{b:02x}")).collect()),
        1082 => {
            let days = i32::from_be_bytes(fixed(4)?.try_into().map_err(|_| wrong())?);
            let mut out = Vec::new();
            json::write_date(&mut out, days.saturating_add(10_957));
            Param::Text(unquote(out))
        }
        1114 | 1184 => {
            let micros = i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| wrong())?);
            let mut out = Vec::new();
            let unix = micros.saturating_add(946_684_800_000_000);
            json::write_timestamp(&mut out, unix, 1_000_000, 6, oid == 1184);
            Param::Text(unquote(out))
        }
        2950 => {
            let b = fixed(16)?;
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Param::Text(format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            ))
        }
        1700 => Param::Text(numeric_text(v).ok_or_else(wrong)?),
        1083 => {
            let micros = i64::from_be_bytes(fixed(8)?.try_into().map_err(|_| wrong())?);
            Param::Text(time_text(micros))
        }
        1186 => {
            let b = fixed(16)?;
            let micros = i64::from_be_bytes(b[..8].try_into().map_err(|_| wrong())?);
            let days = i32::from_be_bytes(b[8..12].try_into().map_err(|_| wrong())?);
            let months = i32::from_be_bytes(b[12..].try_into().map_err(|_| wrong())?);
            Param::Text(format!("{months} months {days} days {micros} microseconds"))
        }
        oid if ARRAYS.contains(&oid) => Param::Text(array_text(v).ok_or_else(wrong)?),
        _ => return Err(wrong()),
    })
}

/// The array types whose binary values are read (each one's elements by the type it names).
const ARRAYS: [u32; 18] = [
    199, 1000, 1001, 1005, 1007, 1009, 1015, 1016, 1021, 1022, 1028, 1115, 1182, 1183, 1185, 1187,
    1231, 2951,
];

/// The type of a cast `::oid` (26) or `::oid[]` (1028) at the start of `text` (lower case),
/// `pg_catalog.` optional, spaces anywhere between.
fn oid_cast(text: &str) -> Option<u32> {
    let text = text.trim_start().strip_prefix("::")?.trim_start();
    let text = match text.strip_prefix("pg_catalog") {
        Some(rest) => rest.trim_start().strip_prefix('.')?.trim_start(),
        None => text,
    };
    let after = text.strip_prefix("oid")?;
    if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let after = after.trim_start();
    let array = after
        .strip_prefix('[')
        .is_some_and(|r| r.trim_start().starts_with(']'));
    Some(if array { 1028 } else { 26 })
}

/// Parameter types the text casts to and DuckDB does not keep apart: `$1::oid` and
/// `$1::oid[]` are BIGINT to DuckDB, but a client must hear `oid` (26) and `oid[]` (1028), the
/// types it has codecs for (asyncpg binds its own type lookup's `$1::oid[]` with the only
/// array codecs it has before the lookup: `oid[]` and `text[]`). `oids[i]` is parameter
/// `$i+1`'s; an entry the client gave (not 0) stays.
pub fn declared_oids(sql: &str, oids: &mut [u32]) {
    let lower = sql.to_ascii_lowercase();
    for (i, oid) in oids.iter_mut().enumerate().filter(|(_, o)| **o == 0) {
        let param = format!("${}", i + 1);
        let mut rest = lower.as_str();
        while let Some(at) = rest.find(&param) {
            rest = &rest[at + param.len()..];
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                continue;
            }
            if let Some(declared) = oid_cast(rest) {
                *oid = declared;
                break;
            }
        }
    }
}

/// `hh:mm:ss.ffffff` of microseconds since midnight.
fn time_text(micros: i64) -> String {
    let (s, us) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    format!("{:02}:{:02}:{:02}.{us:06}", s / 3600, s / 60 % 60, s % 60)
}

/// The DuckDB list text of an array's binary form: its header (dimensions, a flags word, the
/// element type, each dimension's size and lower bound), then its elements, each with its
/// length (-1: NULL).
fn array_text(v: &[u8]) -> Option<String> {
    let int =
        |i: usize| -> Option<i32> { Some(i32::from_be_bytes(v.get(i..i + 4)?.try_into().ok()?)) };
    let dims = usize::try_from(int(0)?).ok()?;
    if dims > 6 {
        return None;
    }
    let element = int(8)? as u32;
    let sizes = (0..dims)
        .map(|d| usize::try_from(int(12 + 8 * d)?).ok())
        .collect::<Option<Vec<_>>>()?;
    let mut at = 12 + 8 * dims;
    let mut out = String::new();
    write_level(v, &sizes, element, &mut at, &mut out)?;
    (at == v.len()).then_some(out)
}

/// Writes the elements of one level of an array (all of them for the last dimension), from
/// `at` on.
fn write_level(
    v: &[u8],
    sizes: &[usize],
    element: u32,
    at: &mut usize,
    out: &mut String,
) -> Option<()> {
    out.push('[');
    let Some((&n, inner)) = sizes.split_first() else {
        out.push(']');
        return Some(());
    };
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        if !inner.is_empty() {
            write_level(v, inner, element, at, out)?;
            continue;
        }
        let len = i32::from_be_bytes(v.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        if len < 0 {
            out.push_str("NULL");
            continue;
        }
        let bytes = Bytes::copy_from_slice(v.get(*at..*at + len as usize)?);
        *at += len as usize;
        match binary_param(element, &bytes).ok()? {
            Param::Null => out.push_str("NULL"),
            Param::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Param::Int(n) => out.push_str(&n.to_string()),
            Param::UInt(n) => out.push_str(&n.to_string()),
            Param::Float(f) => out.push_str(&f.to_string()),
            Param::Text(t) => {
                out.push('"');
                out.push_str(&t.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
        }
    }
    out.push(']');
    Some(())
}

/// A value of the type a client's parameter OID says, standing in for the parameter while a
/// statement is described (`Engine::describe`'s hints): NULL where the client gave no type.
pub fn hint(oid: u32) -> Param {
    match oid {
        0 => Param::Null,
        16 => Param::Bool(false),
        20 | 21 | 23 => Param::Int(0),
        700 | 701 => Param::Float(0.0),
        _ => Param::Text(String::new()),
    }
}

/// The text of `numeric`'s binary form.
fn numeric_text(v: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes([*v.get(i)?, *v.get(i + 1)?])) };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(2)?, word(4)? as u16, word(6)?);
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits: Vec<i16> = (0..ndigits as usize)
        .map(|d| word(8 + 2 * d))
        .collect::<Option<_>>()?;
    let mut int = String::new();
    for w in 0..=weight.max(0) {
        let d = if w <= weight {
            digits.get(w as usize).copied().unwrap_or(0)
        } else {
            0
        };
        if int.is_empty() {
            int = d.to_string();
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if weight < 0 {
        int = "0".into();
    }
    let mut frac = String::new();
    let first_frac = weight + 1;
    let groups = (dscale as usize).div_ceil(4);
    for g in 0..groups {
        let idx = first_frac + g as i16;
        let d = if idx >= 0 {
            digits.get(idx as usize).copied().unwrap_or(0)
        } else {
            0
        };
        frac.push_str(&format!("{d:04}"));
    }
    frac.truncate(dscale as usize);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

fn unquote(json: Vec<u8>) -> String {
    String::from_utf8_lossy(&json).trim_matches('"').to_string()
}

fn error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_counted_outside_quotes() {
        assert_eq!(count("SELECT $1, $2 WHERE x = '$5'"), 2);
        assert_eq!(count("SELECT 1"), 0);
        assert_eq!(count("SELECT $10"), 10);
    }

    #[test]
    fn binary_values_read_by_their_type() {
        let b = |bytes: &[u8]| Bytes::copy_from_slice(bytes);
        assert_eq!(
            binary_param(23, &b(&7i32.to_be_bytes())).unwrap(),
            Param::Int(7)
        );
        assert_eq!(
            binary_param(701, &b(&1.5f64.to_be_bytes())).unwrap(),
            Param::Float(1.5)
        );
        assert_eq!(
            binary_param(1082, &b(&1i32.to_be_bytes())).unwrap(),
            Param::Text("2000-01-02".into())
        );
        assert_eq!(
            binary_param(17, &b(b"ab")).unwrap(),
            Param::Text("\\x61\\x62".into())
        );
        assert!(binary_param(23, &b(&[1, 2])).is_err());
        assert!(binary_param(600, &b(&[1])).is_err());
        // 12345.678 as numeric: digits [1, 2345, 6780], weight 1, dscale 3.
        let mut n = Vec::new();
        for w in [3i16, 1, 0, 3, 1, 2345, 6780] {
            n.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(numeric_text(&n).unwrap(), "12345.678");
        let mut small = Vec::new();
        for w in [1i16, -1, 0x4000, 2, 500] {
            small.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(numeric_text(&small).unwrap(), "-0.05");
    }

    #[test]
    fn binary_arrays_intervals_and_times_become_duckdb_text() {
        let array = |element: u32, items: &[Option<&[u8]>]| {
            let mut v = Vec::new();
            for w in [1i32, 0, element as i32, items.len() as i32, 1] {
                v.extend_from_slice(&w.to_be_bytes());
            }
            for item in items {
                match item {
                    Some(b) => {
                        v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        v.extend_from_slice(b);
                    }
                    None => v.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
            Bytes::from(v)
        };
        let ints = array(
            23,
            &[Some(&1i32.to_be_bytes()), None, Some(&3i32.to_be_bytes())],
        );
        assert_eq!(
            binary_param(1007, &ints).unwrap(),
            Param::Text("[1, NULL, 3]".into())
        );
        let texts = array(25, &[Some(b"a,b"), Some(b"say \"hi\"")]);
        assert_eq!(
            binary_param(1009, &texts).unwrap(),
            Param::Text("[\"a,b\", \"say \\\"hi\\\"\"]".into())
        );
        let mut empty = Vec::new();
        for w in [0i32, 0, 23] {
            empty.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(
            binary_param(1007, &Bytes::from(empty)).unwrap(),
            Param::Text("[]".into())
        );
        assert!(binary_param(1007, &Bytes::from_static(&[0, 0, 0, 1])).is_err());
        let mut interval = Vec::new();
        interval.extend_from_slice(&3_000_000i64.to_be_bytes());
        interval.extend_from_slice(&2i32.to_be_bytes());
        interval.extend_from_slice(&1i32.to_be_bytes());
        assert_eq!(
            binary_param(1186, &Bytes::from(interval)).unwrap(),
            Param::Text("1 months 2 days 3000000 microseconds".into())
        );
        let noon = (12 * 3600 + 61) * 1_000_000i64 + 5;
        assert_eq!(
            binary_param(1083, &Bytes::copy_from_slice(&noon.to_be_bytes())).unwrap(),
            Param::Text("12:01:01.000005".into())
        );
    }

    #[test]
    fn text_values_keep_numbers_exact() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert_eq!(
            text_param(20, &b("9007199254740993")).unwrap(),
            Param::Int(9_007_199_254_740_993)
        );
        assert_eq!(text_param(16, &b("t")).unwrap(), Param::Bool(true));
        assert_eq!(text_param(0, &b("x")).unwrap(), Param::Text("x".into()));
        assert!(text_param(23, &b("x")).is_err());
    }

    #[test]
    fn oid_casts_declare_oid_parameters() {
        assert_eq!(oid_cast("::oid[]"), Some(1028));
        assert_eq!(oid_cast(" :: pg_catalog . oid [ ]"), Some(1028));
        assert_eq!(oid_cast("::oid)"), Some(26));
        assert_eq!(oid_cast("::oids"), None);
        assert_eq!(oid_cast(":oid"), None);
        let mut oids = vec![0, 0, 23, 0];
        declared_oids(
            "SELECT * FROM t WHERE a = ANY($1::oid[]) AND b = $2 :: pg_catalog.OID \
             AND c = $3::oid AND d = $4::oidvector AND e = $14::oid",
            &mut oids,
        );
        assert_eq!(oids, vec![1028, 26, 23, 0]);
    }

    #[test]
    fn number_arrays_become_lists_duckdb_casts() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert_eq!(
            text_param(1028, &b("{1009,114, NULL}")).unwrap(),
            Param::Text("[1009,114, NULL]".into())
        );
        assert_eq!(
            text_param(1007, &b("{}")).unwrap(),
            Param::Text("[]".into())
        );
        assert_eq!(
            text_param(1022, &b("{1.5,-2e3}")).unwrap(),
            Param::Text("[1.5,-2e3]".into())
        );
        for bad in ["{a}", "{1,{2}}", "1,2", "{1,'x'}", "{,}"] {
            assert!(text_param(1016, &b(bad)).is_err(), "{bad}");
        }
    }
}
