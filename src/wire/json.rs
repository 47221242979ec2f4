//! Low-level JSON writers: strings, numbers, dates and times, straight into a byte buffer.
//!
//! Invariants: every function appends one complete, valid JSON value (or, for
//! [`write_key`], a key and its colon) and nothing else; no function allocates beyond
//! growing `out`. Formats are the ones documented in `docs/PROTOCOL.md`.

use base64::Engine as _;

/// For each byte: 0 = copy as is, b'u' = `\u00XX`, otherwise the letter after the backslash.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `s` (UTF-8) as a JSON string. Non-ASCII text is copied verbatim (valid JSON).
#[inline]
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Writes `"key":`.
pub fn write_key(out: &mut Vec<u8>, key: &str) {
    write_str(out, key.as_bytes());
    out.push(b':');
}

/// Any integer (used for the 128-bit ones; the hot widths go through [`write_u64`]/[`write_i64`]).
#[inline]
pub fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

static PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `n`'s decimal digits straight into `out`'s spare capacity: no temporary buffer and no
/// variable-length copy (the encoder writes ~100 million numbers per 10M rows; this matters).
#[inline]
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let len = n.checked_ilog10().unwrap_or(0) as usize + 1;
    out.reserve(len);
    // SAFETY: `len` bytes were reserved; each is written before `set_len` exposes it.
    unsafe {
        let start = out.as_mut_ptr().add(out.len());
        let mut p = start.add(len);
        while n >= 100 {
            let d = (n % 100) as usize * 2;
            n /= 100;
            p = p.sub(2);
            *p = PAIRS[d];
            *p.add(1) = PAIRS[d + 1];
        }
        if n >= 10 {
            let d = n as usize * 2;
            p = p.sub(2);
            *p = PAIRS[d];
            *p.add(1) = PAIRS[d + 1];
        } else {
            p = p.sub(1);
            *p = b'0' + n as u8;
        }
        debug_assert_eq!(p, start);
        out.set_len(out.len() + len);
    }
}

#[inline]
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u64(out, v.unsigned_abs());
}

/// Non-finite floats have no JSON number: they are the strings "NaN", "Infinity", "-Infinity".
#[inline]
pub fn write_f64(out: &mut Vec<u8>, v: f64) {
    if write_f64_short(out, v) {
        return;
    }
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(v).as_bytes());
    } else {
        write_non_finite(out, v.is_nan(), v.is_sign_negative());
    }
}

/// Fast path for the common case of a double with at most six decimals (coordinates, money,
/// measurements): the same text `ryu` writes, several times faster. Returns `false` (writing
/// nothing) when the value is not such a double.
///
/// Why it is exact and shortest: for 1e-5 <= |v| < 1e9, doubles are less than 1e-7 apart, so at
/// most one decimal with <= 6 fraction digits rounds to `v`. If `s / 1e6 == v` in floating point
/// (division is correctly rounded), the decimal `s * 1e-6` is that one, it parses back to `v`,
/// and trimmed of trailing zeros it is the shortest text that does; `ryu` writes the same digits,
/// in plain notation in this range, with `.0` for whole numbers.
#[inline]
fn write_f64_short(out: &mut Vec<u8>, v: f64) -> bool {
    let a = v.abs();
    if !(1e-5..1e9).contains(&a) {
        return false;
    }
    let scaled = (a * 1e6).round();
    if scaled / 1e6 != a {
        return false;
    }
    let s = scaled as u64;
    let (int, mut frac) = (s / 1_000_000, s % 1_000_000);
    if v < 0.0 {
        out.push(b'-');
    }
    write_u64(out, int);
    out.push(b'.');
    if frac == 0 {
        out.push(b'0');
        return true;
    }
    let mut digits = 6;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    let len = frac.checked_ilog10().unwrap_or(0) as usize + 1;
    for _ in len..digits {
        out.push(b'0');
    }
    write_u64(out, frac);
    true
}

/// FLOAT keeps its own shortest form (0.1f32 is `0.1`, not `0.10000000149011612`).
#[inline]
pub fn write_f32(out: &mut Vec<u8>, v: f32) {
    if v.is_finite() {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(v).as_bytes());
    } else {
        write_non_finite(out, v.is_nan(), v.is_sign_negative());
    }
}

fn write_non_finite(out: &mut Vec<u8>, nan: bool, negative: bool) {
    out.extend_from_slice(match (nan, negative) {
        (true, _) => b"\"NaN\"".as_slice(),
        (false, false) => b"\"Infinity\"",
        (false, true) => b"\"-Infinity\"",
    });
}

/// An exact decimal: the unscaled integer `v` with `scale` digits after the point.
pub fn write_decimal(out: &mut Vec<u8>, v: i128, scale: u8) {
    if scale == 0 {
        return write_int(out, v);
    }
    if v < 0 {
        out.push(b'-');
    }
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v.unsigned_abs()).as_bytes();
    let scale = scale as usize;
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', scale - digits.len()));
        out.extend_from_slice(digits);
    }
}

pub fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + n);
    out.push(b'"');
}

/// DuckDB's BIT: the first byte counts the padding bits at the start of the second byte.
pub fn write_bits(out: &mut Vec<u8>, blob: &[u8]) {
    out.push(b'"');
    if let Some((&padding, data)) = blob.split_first() {
        for (i, byte) in data.iter().enumerate() {
            let first = if i == 0 { padding as usize } else { 0 };
            for bit in first..8 {
                out.push(if byte & (0x80 >> bit) != 0 {
                    b'1'
                } else {
                    b'0'
                });
            }
        }
    }
    out.push(b'"');
}

pub fn write_uuid(out: &mut Vec<u8>, lower: u64, upper: i64) {
    // DuckDB stores UUIDs as a HUGEINT with the top bit flipped, so that they sort as text.
    let hi = (upper as u64) ^ (1u64 << 63);
    let bytes = ((hi as u128) << 64 | lower as u128).to_be_bytes();
    out.push(b'"');
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 0xf) as usize]);
    }
    out.push(b'"');
}

pub fn write_interval(out: &mut Vec<u8>, months: i32, days: i32, micros: i64) {
    out.extend_from_slice(b"{\"months\":");
    write_int(out, months);
    out.extend_from_slice(b",\"days\":");
    write_int(out, days);
    out.extend_from_slice(b",\"micros\":");
    write_int(out, micros);
    out.push(b'}');
}

// ---- dates and times -------------------------------------------------------------------

/// Proleptic Gregorian (year, month, day) from days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u64; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe as i64 + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes two digits at `p`.
///
/// # Safety
/// `p` must be valid for two writes; `v < 100`.
#[inline(always)]
unsafe fn put2(p: *mut u8, v: u32) {
    let d = v as usize * 2;
    // SAFETY: `p` is valid for two writes (the caller's contract); `d + 1 < 200` as `v < 100`.
    unsafe {
        *p = PAIRS[d];
        *p.add(1) = PAIRS[d + 1];
    }
}

#[inline]
fn push2(out: &mut Vec<u8>, v: u32) {
    out.reserve(2);
    // SAFETY: two bytes reserved and written.
    unsafe {
        put2(out.as_mut_ptr().add(out.len()), v);
        out.set_len(out.len() + 2);
    }
}

/// ISO 8601 date. Years 0000..=9999 have four digits; others the expanded form with a sign and
/// six digits (`+010000`, `-000001`), as JavaScript's `Date` reads them. Year 0000 is 1 BC.
#[inline]
fn push_date(out: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        out.reserve(10);
        // SAFETY: ten bytes reserved, all written.
        unsafe {
            let p = out.as_mut_ptr().add(out.len());
            put2(p, y / 100);
            put2(p.add(2), y % 100);
            *p.add(4) = b'-';
            put2(p.add(5), m);
            *p.add(7) = b'-';
            put2(p.add(8), d);
            out.set_len(out.len() + 10);
        }
        return;
    }
    out.push(if y < 0 { b'-' } else { b'+' });
    let digits = y.unsigned_abs().checked_ilog10().unwrap_or(0) as usize + 1;
    for _ in digits..6 {
        out.push(b'0');
    }
    write_u64(out, y.unsigned_abs());
    out.push(b'-');
    push2(out, m);
    out.push(b'-');
    push2(out, d);
}

/// `HH:MM:SS` plus a fraction without trailing zeros (none when zero). `frac` has `digits` digits.
#[inline]
fn push_time(out: &mut Vec<u8>, secs_of_day: u64, frac: u64, digits: u32) {
    out.reserve(8);
    // SAFETY: eight bytes reserved, all written. Hours stay below 100 (a day has 24).
    unsafe {
        let p = out.as_mut_ptr().add(out.len());
        put2(p, (secs_of_day / 3600 % 100) as u32);
        *p.add(2) = b':';
        put2(p.add(3), (secs_of_day / 60 % 60) as u32);
        *p.add(5) = b':';
        put2(p.add(6), (secs_of_day % 60) as u32);
        out.set_len(out.len() + 8);
    }
    if frac != 0 {
        let mut f = frac;
        let mut n = digits as usize;
        while f.is_multiple_of(10) {
            f /= 10;
            n -= 1;
        }
        out.push(b'.');
        let len = f.checked_ilog10().unwrap_or(0) as usize + 1;
        for _ in len..n {
            out.push(b'0');
        }
        write_u64(out, f);
    }
}

pub const DATE_INFINITY: i32 = i32::MAX;
pub const TS_INFINITY: i64 = i64::MAX;

pub fn write_date(out: &mut Vec<u8>, days: i32) {
    match days {
        DATE_INFINITY => out.extend_from_slice(b"\"infinity\""),
        d if d == -DATE_INFINITY => out.extend_from_slice(b"\"-infinity\""),
        d => {
            out.push(b'"');
            push_date(out, i64::from(d));
            out.push(b'"');
        }
    }
}

/// TIME from microseconds (or nanoseconds with `per_sec` = 1e9) since midnight.
pub fn write_time(out: &mut Vec<u8>, ticks: i64, per_sec: u64, digits: u32) {
    let t = ticks.max(0) as u64;
    out.push(b'"');
    push_time(out, t / per_sec, t % per_sec, digits);
    out.push(b'"');
}

/// TIME WITH TIME ZONE: local time and its UTC offset, `12:00:00+05:30`.
pub fn write_time_tz(out: &mut Vec<u8>, micros: i64, offset_secs: i32) {
    let t = micros.max(0) as u64;
    out.push(b'"');
    push_time(out, t / 1_000_000, t % 1_000_000, 6);
    out.push(if offset_secs < 0 { b'-' } else { b'+' });
    let o = offset_secs.unsigned_abs();
    push2(out, o / 3600);
    out.push(b':');
    push2(out, o / 60 % 60);
    if !o.is_multiple_of(60) {
        out.push(b':');
        push2(out, o % 60);
    }
    out.push(b'"');
}

/// TIMESTAMP (`utc` = false) or TIMESTAMPTZ (`utc` = true, with a `Z`) from `ticks` units of
/// `1 / per_sec` seconds since the epoch.
pub fn write_timestamp(out: &mut Vec<u8>, ticks: i64, per_sec: i64, digits: u32, utc: bool) {
    match ticks {
        TS_INFINITY => return out.extend_from_slice(b"\"infinity\""),
        t if t == -TS_INFINITY => return out.extend_from_slice(b"\"-infinity\""),
        _ => {}
    }
    let per_day = per_sec * 86_400;
    let days = ticks.div_euclid(per_day);
    let in_day = ticks.rem_euclid(per_day) as u64;
    out.push(b'"');
    push_date(out, days);
    out.push(b'T');
    push_time(
        out,
        in_day / per_sec as u64,
        in_day % per_sec as u64,
        digits,
    );
    if utc {
        out.push(b'Z');
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut v = Vec::new();
        f(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(
            s(|o| write_str(o, "a\"b\\c\n\u{1}é😀".as_bytes())),
            r#""a\"b\\c\n\u0001é😀""#
        );
    }

    #[test]
    fn doubles_match_ryu_exactly() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut values = vec![
            0.1,
            0.2,
            0.3,
            0.1 + 0.2,
            1.0,
            -1.0,
            3.0,
            1e-5,
            0.00001,
            0.000011,
            999999999.999999,
            123456.5,
            51191.036,
            -3.579308,
            1e9 - 1e-6,
            0.5e-5,
            1e-4,
            2.5,
            100.0,
            1e8,
        ];
        for _ in 0..200_000 {
            let r = next();
            let decimals = (r % 8) as i32;
            let mantissa = (next() % 2_000_000_000_000) as f64 - 1e12;
            values.push(mantissa / 10f64.powi(decimals));
            values.push(f64::from_bits(next()));
        }
        for v in values {
            if !v.is_finite() {
                continue;
            }
            let mut ours = Vec::new();
            write_f64(&mut ours, v);
            let mut buf = ryu::Buffer::new();
            assert_eq!(
                std::str::from_utf8(&ours).unwrap(),
                buf.format_finite(v),
                "{v:e}"
            );
        }
    }

    #[test]
    fn integers_match_itoa() {
        let mut v = 1u64;
        for i in 0..2000u64 {
            for n in [i, v, v - 1, v.wrapping_mul(i | 1), u64::MAX - i] {
                assert_eq!(s(|o| write_u64(o, n)), n.to_string());
                let m = n as i64;
                assert_eq!(s(|o| write_i64(o, m)), m.to_string());
            }
            v = v.wrapping_mul(7).wrapping_add(3);
        }
        assert_eq!(s(|o| write_i64(o, i64::MIN)), i64::MIN.to_string());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(s(|o| write_decimal(o, -5, 3)), "-0.005");
        assert_eq!(s(|o| write_decimal(o, 12345, 2)), "123.45");
        assert_eq!(s(|o| write_decimal(o, 0, 2)), "0.00");
    }

    #[test]
    fn dates_cover_bc_and_far_future() {
        assert_eq!(s(|o| write_date(o, 0)), "\"1970-01-01\"");
        assert_eq!(s(|o| write_date(o, -719_529)), "\"-000001-12-31\"");
        assert_eq!(
            s(|o| write_date(o, 2_932_897)),
            "\"+10000-01-01\"".replace("+1", "+01")
        );
    }

    #[test]
    fn timestamps_trim_fractions() {
        assert_eq!(
            s(|o| write_timestamp(o, 1_500_000, 1_000_000, 6, true)),
            "\"1970-01-01T00:00:01.5Z\""
        );
        assert_eq!(
            s(|o| write_timestamp(o, -1, 1_000_000_000, 9, false)),
            "\"1969-12-31T23:59:59.999999999\""
        );
    }
}
