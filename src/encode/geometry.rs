//! GEOMETRY values: DuckDB stores them as WKB; this module writes them as GeoJSON geometry
//! objects, WKT strings or PostGIS's EWKB, straight from the bytes (no per-row SQL function,
//! no allocation beyond the output buffer).
//!
//! Accepted input: ISO WKB (types 1–7, `+1000` Z, `+2000` M, `+3000` ZM) and extended WKB
//! (the `0x80000000` Z, `0x40000000` M and `0x20000000` SRID flags), either byte order, every
//! type from Point to GeometryCollection, empty ones included (an empty point is NaN
//! coordinates).
//!
//! Invariants:
//! - Malformed input (truncated, an unknown type, a count larger than the bytes left, nesting
//!   deeper than [`MAX_DEPTH`]) is an error, never a panic or an out-of-bounds read; the output
//!   may then hold a partial value, which the caller discards.
//! - GeoJSON has no M: M values are dropped, Z kept (as the spatial extension's
//!   `ST_AsGeoJSON` does). Coordinates are shortest round-trip doubles.
//! - WKT is written as `ST_AsText` writes it (`POINT Z (1 2 3)`, `MULTIPOINT (1 2, 3 4)`,
//!   `POLYGON EMPTY`), numbers in shortest round-trip form without a trailing `.0`.

use crate::wire::json;

/// Geometry collections nested deeper than this are refused (the writers recurse).
pub const MAX_DEPTH: usize = 64;

/// Why a WKB value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed WKB: {0}")]
pub struct BadWkb(pub &'static str);

/// Which output a writer produces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    GeoJson,
    Wkt,
}

/// Appends the GeoJSON geometry object of `wkb`.
pub fn write_geojson(out: &mut Vec<u8>, wkb: &[u8]) -> Result<(), BadWkb> {
    let mut r = Reader { b: wkb, pos: 0 };
    geometry(&mut r, out, Out::GeoJson, 0)?;
    finished(&r)
}

/// Appends `wkb` as WKT, inside a JSON string.
pub fn write_wkt(out: &mut Vec<u8>, wkb: &[u8]) -> Result<(), BadWkb> {
    let mut r = Reader { b: wkb, pos: 0 };
    out.push(b'"');
    geometry(&mut r, out, Out::Wkt, 0)?;
    out.push(b'"');
    finished(&r)
}

/// Appends `wkb` as EWKB, PostGIS's form: each geometry's ISO Z/M type code (`+1000`…)
/// becomes EWKB's flag bits (`0x80000000` Z, `0x40000000` M), in the value's own byte order;
/// coordinates are copied as they are. (No SRID: DuckDB's CRS is a name, not always an
/// EPSG code, and PostGIS clients read an EWKB without one as SRID 0.)
pub fn write_ewkb(out: &mut Vec<u8>, wkb: &[u8]) -> Result<(), BadWkb> {
    let mut r = Reader { b: wkb, pos: 0 };
    ewkb(&mut r, out, 0)?;
    finished(&r)
}

fn ewkb(r: &mut Reader<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), BadWkb> {
    if depth > MAX_DEPTH {
        return Err(BadWkb("geometry collections nested too deep"));
    }
    let h = header(r)?;
    let flags = if h.z { 0x8000_0000 } else { 0 } | if h.m { 0x4000_0000 } else { 0 };
    out.push(u8::from(h.little));
    put_u32(out, h.kind | flags, h.little);
    let point = 8 * h.dims();
    match h.kind {
        1 => r.copy(point, out),
        2 => {
            let n = r.count(h.little, point)?;
            put_u32(out, n as u32, h.little);
            r.copy(n * point, out)
        }
        3 => {
            let rings = r.count(h.little, 4)?;
            put_u32(out, rings as u32, h.little);
            (0..rings).try_for_each(|_| {
                let n = r.count(h.little, point)?;
                put_u32(out, n as u32, h.little);
                r.copy(n * point, out)
            })
        }
        _ => {
            let n = r.count(h.little, 5)?;
            put_u32(out, n as u32, h.little);
            (0..n).try_for_each(|_| ewkb(r, out, depth + 1))
        }
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32, little: bool) {
    out.extend_from_slice(&if little {
        v.to_le_bytes()
    } else {
        v.to_be_bytes()
    });
}

fn finished(r: &Reader<'_>) -> Result<(), BadWkb> {
    if r.pos == r.b.len() {
        Ok(())
    } else {
        Err(BadWkb("bytes after the geometry"))
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], BadWkb> {
        let end = self.pos.checked_add(N).ok_or(BadWkb("truncated"))?;
        let bytes = self.b.get(self.pos..end).ok_or(BadWkb("truncated"))?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(bytes);
        Ok(a)
    }

    fn u32(&mut self, little: bool) -> Result<u32, BadWkb> {
        let a = self.take::<4>()?;
        Ok(if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        })
    }

    fn f64(&mut self, little: bool) -> Result<f64, BadWkb> {
        let a = self.take::<8>()?;
        Ok(if little {
            f64::from_le_bytes(a)
        } else {
            f64::from_be_bytes(a)
        })
    }

    /// Copies the next `n` bytes to `out`.
    fn copy(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), BadWkb> {
        let end = self.pos.checked_add(n).ok_or(BadWkb("truncated"))?;
        out.extend_from_slice(self.b.get(self.pos..end).ok_or(BadWkb("truncated"))?);
        self.pos = end;
        Ok(())
    }

    /// A count of items of at least `min_size` bytes each, checked against the bytes left.
    fn count(&mut self, little: bool, min_size: usize) -> Result<usize, BadWkb> {
        let n = self.u32(little)? as usize;
        let left = self.b.len() - self.pos;
        if n.saturating_mul(min_size.max(1)) > left {
            return Err(BadWkb("a count larger than the bytes left"));
        }
        Ok(n)
    }
}

/// A geometry's header: its byte order, base type (1–7) and dimensions.
struct Header {
    little: bool,
    kind: u32,
    z: bool,
    m: bool,
}

impl Header {
    fn dims(&self) -> usize {
        2 + usize::from(self.z) + usize::from(self.m)
    }
}

fn header(r: &mut Reader<'_>) -> Result<Header, BadWkb> {
    let little = match r.take::<1>()?[0] {
        0 => false,
        1 => true,
        _ => return Err(BadWkb("a byte order other than 0 or 1")),
    };
    let raw = r.u32(little)?;
    let (mut z, mut m) = (raw & 0x8000_0000 != 0, raw & 0x4000_0000 != 0);
    if raw & 0x2000_0000 != 0 {
        r.u32(little)?; // EWKB's SRID: the column's CRS says it already.
    }
    let iso = raw & 0x0FFF_FFFF;
    let kind = iso % 1000;
    match iso / 1000 {
        0 => {}
        1 => z = true,
        2 => m = true,
        3 => (z, m) = (true, true),
        _ => return Err(BadWkb("an unknown geometry type")),
    }
    if !(1..=7).contains(&kind) {
        return Err(BadWkb("an unknown geometry type"));
    }
    Ok(Header { little, kind, z, m })
}

const NAMES: [(&str, &str); 7] = [
    ("Point", "POINT"),
    ("LineString", "LINESTRING"),
    ("Polygon", "POLYGON"),
    ("MultiPoint", "MULTIPOINT"),
    ("MultiLineString", "MULTILINESTRING"),
    ("MultiPolygon", "MULTIPOLYGON"),
    ("GeometryCollection", "GEOMETRYCOLLECTION"),
];

fn geometry(r: &mut Reader<'_>, out: &mut Vec<u8>, form: Out, depth: usize) -> Result<(), BadWkb> {
    if depth > MAX_DEPTH {
        return Err(BadWkb("geometry collections nested too deep"));
    }
    let h = header(r)?;
    let (geojson_name, wkt_name) = NAMES[(h.kind - 1) as usize];
    match form {
        Out::GeoJson => {
            out.extend_from_slice(b"{\"type\":\"");
            out.extend_from_slice(geojson_name.as_bytes());
            out.extend_from_slice(if h.kind == 7 {
                b"\",\"geometries\":"
            } else {
                b"\",\"coordinates\":"
            });
        }
        Out::Wkt => {
            out.extend_from_slice(wkt_name.as_bytes());
            out.extend_from_slice(match (h.z, h.m) {
                (false, false) => b"".as_slice(),
                (true, false) => b" Z",
                (false, true) => b" M",
                (true, true) => b" ZM",
            });
        }
    }
    match h.kind {
        1..=3 => {
            if form == Out::Wkt {
                out.push(b' ');
            }
            coordinates(r, out, form, &h, false)?;
        }
        // GeoJSON has no empty position: a MultiPoint's empty points are left out (as
        // `ST_AsGeoJSON` does).
        4 if form == Out::GeoJson => {
            let n = r.count(h.little, 5)?;
            out.push(b'[');
            let mut first = true;
            for _ in 0..n {
                let m = header(r)?;
                if m.kind != 1 {
                    return Err(BadWkb("a member of another type than its collection"));
                }
                let coords = read_point(r, &m)?;
                if is_empty(&coords, &m) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_position(out, &coords, &m);
            }
            out.push(b']');
        }
        4..=7 => {
            let n = r.count(h.little, 5)?;
            if form == Out::Wkt {
                out.push(b' ');
            }
            let kind = h.kind;
            list(out, form, n, |out| {
                if kind == 7 {
                    geometry(r, out, form, depth + 1)
                } else {
                    member(r, out, form, kind - 3, depth + 1)
                }
            })?;
        }
        _ => return Err(BadWkb("an unknown geometry type")),
    }
    if form == Out::GeoJson {
        out.push(b'}');
    }
    Ok(())
}

/// One member of a Multi* geometry: a whole WKB geometry of `kind`, written without its type.
fn member(
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
    form: Out,
    kind: u32,
    depth: usize,
) -> Result<(), BadWkb> {
    if depth > MAX_DEPTH {
        return Err(BadWkb("geometry collections nested too deep"));
    }
    let h = header(r)?;
    if h.kind != kind {
        return Err(BadWkb("a member of another type than its collection"));
    }
    coordinates(r, out, form, &h, true)
}

/// What follows the type of a Point, LineString or Polygon whose header `h` was read:
/// GeoJSON's `coordinates` value, or WKT's `(1 2)`, `(0 0, 1 1)`, `((…))` or `EMPTY`. A point
/// inside a MultiPoint (`bare_point`) is `1 2` in WKT, without parentheses.
fn coordinates(
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
    form: Out,
    h: &Header,
    bare_point: bool,
) -> Result<(), BadWkb> {
    let point = 8 * h.dims();
    match h.kind {
        1 => {
            let coords = read_point(r, h)?;
            match (form, is_empty(&coords, h)) {
                (Out::GeoJson, true) => out.extend_from_slice(b"[]"),
                (Out::Wkt, true) => out.extend_from_slice(b"EMPTY"),
                (Out::GeoJson, false) => write_position(out, &coords, h),
                (Out::Wkt, false) if bare_point => write_wkt_point(out, &coords, h),
                (Out::Wkt, false) => {
                    out.push(b'(');
                    write_wkt_point(out, &coords, h);
                    out.push(b')');
                }
            }
        }
        2 => {
            let n = r.count(h.little, point)?;
            points(r, out, form, h, n)?;
        }
        _ => {
            let rings = r.count(h.little, 4)?;
            list(out, form, rings, |out| {
                let n = r.count(h.little, point)?;
                points(r, out, form, h, n)
            })?;
        }
    }
    Ok(())
}

/// An empty point: WKB writes it as NaN coordinates.
fn is_empty(coords: &[f64; 4], h: &Header) -> bool {
    coords[..h.dims()].iter().all(|c| c.is_nan())
}

/// `n` items written by `each`: `[a,b]` in GeoJSON, `(a, b)` in WKT, `EMPTY` for none in WKT.
fn list(
    out: &mut Vec<u8>,
    form: Out,
    n: usize,
    mut each: impl FnMut(&mut Vec<u8>) -> Result<(), BadWkb>,
) -> Result<(), BadWkb> {
    match form {
        Out::GeoJson => out.push(b'['),
        Out::Wkt if n == 0 => {
            out.extend_from_slice(b"EMPTY");
            return Ok(());
        }
        Out::Wkt => out.push(b'('),
    }
    for i in 0..n {
        if i > 0 {
            out.extend_from_slice(if form == Out::Wkt { b", " } else { b"," });
        }
        each(out)?;
    }
    out.push(if form == Out::Wkt { b')' } else { b']' });
    Ok(())
}

fn points(
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
    form: Out,
    h: &Header,
    n: usize,
) -> Result<(), BadWkb> {
    list(out, form, n, |out| {
        let coords = read_point(r, h)?;
        match form {
            Out::GeoJson => write_position(out, &coords, h),
            Out::Wkt => write_wkt_point(out, &coords, h),
        }
        Ok(())
    })
}

fn read_point(r: &mut Reader<'_>, h: &Header) -> Result<[f64; 4], BadWkb> {
    let mut c = [0.0; 4];
    for v in c.iter_mut().take(h.dims()) {
        *v = r.f64(h.little)?;
    }
    Ok(c)
}

/// `[x,y]` or `[x,y,z]` (GeoJSON has no M).
fn write_position(out: &mut Vec<u8>, c: &[f64; 4], h: &Header) {
    out.push(b'[');
    write_coord(out, c[0]);
    out.push(b',');
    write_coord(out, c[1]);
    if h.z {
        out.push(b',');
        write_coord(out, c[2]);
    }
    out.push(b']');
}

/// A GeoJSON number: non-finite values have none, so they are `null`.
fn write_coord(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        json::write_f64(out, v);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_wkt_point(out: &mut Vec<u8>, c: &[f64; 4], h: &Header) {
    for (i, v) in c.iter().take(h.dims()).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_wkt_number(out, *v);
    }
}

/// Shortest round-trip, `1` rather than `1.0`, as `ST_AsText` writes them.
fn write_wkt_number(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(match (v.is_nan(), v < 0.0) {
            (true, _) => b"nan".as_slice(),
            (false, false) => b"inf",
            (false, true) => b"-inf",
        });
        return;
    }
    let start = out.len();
    json::write_f64(out, v);
    if out[start..].ends_with(b".0") {
        out.truncate(out.len() - 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, y: f64) -> Vec<u8> {
        let mut v = vec![1, 1, 0, 0, 0];
        v.extend_from_slice(&x.to_le_bytes());
        v.extend_from_slice(&y.to_le_bytes());
        v
    }

    fn geojson(wkb: &[u8]) -> Result<String, BadWkb> {
        let mut out = Vec::new();
        write_geojson(&mut out, wkb).map(|()| String::from_utf8(out).unwrap())
    }

    fn wkt(wkb: &[u8]) -> Result<String, BadWkb> {
        let mut out = Vec::new();
        write_wkt(&mut out, wkb).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn ewkb_flags_z_and_m_in_every_header_and_keeps_the_coordinates() {
        let ewkb = |wkb: &[u8]| {
            let mut out = Vec::new();
            write_ewkb(&mut out, wkb).map(|()| out)
        };
        // A 2D point: ISO WKB and EWKB are the same bytes.
        assert_eq!(ewkb(&point(1.0, 2.0)).unwrap(), point(1.0, 2.0));
        // POINT Z (1 2 3): ISO type 1001 becomes 0x80000001.
        let mut z = vec![1];
        z.extend_from_slice(&1001u32.to_le_bytes());
        for c in [1.0f64, 2.0, 3.0] {
            z.extend_from_slice(&c.to_le_bytes());
        }
        let out = ewkb(&z).unwrap();
        assert_eq!(&out[..5], &[1, 1, 0, 0, 0x80]);
        assert_eq!(&out[5..], &z[5..]);
        // A big-endian multipoint M: the member's header changes too, in its byte order.
        let mut m = vec![0];
        m.extend_from_slice(&2004u32.to_be_bytes());
        m.extend_from_slice(&1u32.to_be_bytes());
        m.push(0);
        m.extend_from_slice(&2001u32.to_be_bytes());
        for c in [1.0f64, 2.0, 9.0] {
            m.extend_from_slice(&c.to_be_bytes());
        }
        let out = ewkb(&m).unwrap();
        assert_eq!(&out[1..5], &0x4000_0004u32.to_be_bytes());
        assert_eq!(&out[10..14], &0x4000_0001u32.to_be_bytes());
        assert_eq!(out.len(), m.len());
        // Malformed: an error, never a panic.
        assert!(ewkb(&point(1.0, 2.0)[..12]).is_err());
        assert!(ewkb(&[1, 7, 0, 0, 0, 255, 255, 255, 255]).is_err());
    }

    #[test]
    fn points_in_both_forms_and_byte_orders() {
        let p = point(1.0, 2.5);
        assert_eq!(
            geojson(&p).unwrap(),
            r#"{"type":"Point","coordinates":[1.0,2.5]}"#
        );
        assert_eq!(wkt(&p).unwrap(), r#""POINT (1 2.5)""#);
        let mut be = vec![0, 0, 0, 0, 1];
        be.extend_from_slice(&1.0f64.to_be_bytes());
        be.extend_from_slice(&2.5f64.to_be_bytes());
        assert_eq!(geojson(&be).unwrap(), geojson(&p).unwrap());
        let empty = point(f64::NAN, f64::NAN);
        assert_eq!(
            geojson(&empty).unwrap(),
            r#"{"type":"Point","coordinates":[]}"#
        );
        assert_eq!(wkt(&empty).unwrap(), r#""POINT EMPTY""#);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let p = point(1.0, 2.0);
        for cut in 0..p.len() {
            assert!(geojson(&p[..cut]).is_err(), "{cut}");
        }
        let mut extra = p.clone();
        extra.push(0);
        assert!(geojson(&extra).is_err());
        // A LineString claiming 2^32-1 points.
        assert!(geojson(&[1, 2, 0, 0, 0, 255, 255, 255, 255]).is_err());
        assert!(geojson(&[1, 99, 0, 0, 0]).is_err());
        assert!(geojson(&[7, 1, 0, 0, 0]).is_err());
        // Collections nested past the limit.
        let mut deep = Vec::new();
        for _ in 0..=MAX_DEPTH + 1 {
            deep.extend_from_slice(&[1, 7, 0, 0, 0, 1, 0, 0, 0]);
        }
        assert!(geojson(&deep).is_err());
        // Every byte string up to 3 bytes, and mutations of a collection, never panic.
        let mut gc = vec![1, 7, 0, 0, 0, 2, 0, 0, 0];
        gc.extend_from_slice(&p);
        gc.extend_from_slice(&p);
        for i in 0..gc.len() {
            for b in [0u8, 1, 7, 0xff] {
                let mut m = gc.clone();
                m[i] = b;
                let _ = geojson(&m);
                let _ = wkt(&m);
            }
        }
    }
}
