//! GeoJSON uploads, read by duckstream itself: a FeatureCollection (or Features) becomes
//! newline-delimited JSON rows, one per feature: its properties in their order, then its
//! geometry as base64 ISO WKB under [`GEOMETRY_COLUMN`]. DuckDB's JSON reader infers the
//! columns from those rows, and the loader turns the WKB into GEOMETRY.
//!
//! Why not GDAL (the spatial extension's `ST_Read`): GDAL opens a file by what it holds, not
//! by the format the client named. An `OGRVRTDataSource` body sent as GeoJSON made it read
//! `/etc/passwd`; a VRT naming `/vsicurl/…`, or a `crs` link, made the server fetch URLs.
//! Here the body is only ever parsed as JSON, and nothing it names is opened or fetched.
//!
//! Invariants:
//! - Streaming: memory holds one feature at a time (its properties' text and its
//!   coordinates, 32 bytes a position), whatever the number of features.
//! - Nesting deeper than [`MAX_JSON_DEPTH`] is refused as the bytes are read, before the
//!   parser recurses into it (serde_json's own recursion limit, 128, stays on too);
//!   coordinates nest at most 4 arrays, as a MultiPolygon's do.
//! - The only accepted bodies are one `FeatureCollection`, or one or more `Feature`s (GeoJSON
//!   lines, RFC 8142 sequences): anything else (XML, a VRT, an array, a bare geometry, data
//!   after a FeatureCollection) is [`GeoJsonError::Invalid`].
//! - A `crs` member is data, never a reference: a `name` CRS `EPSG:<n>`,
//!   `urn:ogc:def:crs:EPSG:[version]:<n>` or CRS84 sets the CRS; any other (a `link`, an
//!   unknown name) is ignored, and the coordinates are RFC 7946's WGS 84 ([`DEFAULT_CRS`]).
//! - WKB is little-endian ISO WKB; a geometry with any 3-number position is written with Z
//!   (a position without one gets Z = 0); numbers past the third are ignored (RFC 7946 3.1.1).

use std::collections::HashSet;
use std::fmt;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::MAX_JSON_DEPTH;

/// The column a feature's geometry goes to (the name GDAL's reader gave it).
pub const GEOMETRY_COLUMN: &str = "geom";

/// GeoJSON's coordinates without a `crs` saying otherwise: WGS 84 longitude/latitude.
pub const DEFAULT_CRS: &str = "EPSG:4326";

/// Why a GeoJSON body could not be converted.
#[derive(Debug)]
pub enum GeoJsonError {
    /// Not a GeoJSON FeatureCollection or Feature (the message says where and why).
    Invalid(String),
    /// Reading the body or writing the rows failed (the server's problem, not the client's).
    Io(io::Error),
}

impl fmt::Display for GeoJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(m) => f.write_str(m),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub features: u64,
    /// The geometry column's CRS (`EPSG:<n>`).
    pub crs: String,
    /// The longest row written, in bytes with its newline (DuckDB's `maximum_object_size`).
    pub longest_row: usize,
}

/// Converts a GeoJSON FeatureCollection, a Feature, or a sequence of Features (one a line,
/// or RFC 8142's record separators) read from `input` into NDJSON rows written to `output`.
/// Blocking: reads and writes as it goes.
pub fn to_rows<R: Read, W: Write>(input: R, output: W) -> Result<Converted, GeoJsonError> {
    let mut reader = BufReader::with_capacity(64 << 10, DepthGuard::new(input, MAX_JSON_DEPTH));
    skip_bom(&mut reader).map_err(io_error)?;
    let mut rows = Rows::new(output);
    let (mut texts, mut crs, mut collection) = (0u64, None, false);
    while more_text(&mut reader).map_err(io_error)? {
        let top = TopSeed { rows: &mut rows }
            .deserialize(&mut serde_json::Deserializer::from_reader(&mut reader))
            .map_err(|e| match rows.failed.take() {
                Some(io) => GeoJsonError::Io(io),
                None => json_error(e, texts + 1),
            })?;
        texts += 1;
        collection |= top.collection;
        if collection && texts > 1 {
            return Err(GeoJsonError::Invalid(
                "a FeatureCollection must be the body's only JSON text".into(),
            ));
        }
        crs = crs.or(top.crs);
    }
    if texts == 0 {
        return Err(GeoJsonError::Invalid(
            "the body is empty: send a GeoJSON FeatureCollection or Feature".into(),
        ));
    }
    rows.out.flush().map_err(GeoJsonError::Io)?;
    Ok(Converted {
        features: rows.features,
        crs: crs.unwrap_or_else(|| DEFAULT_CRS.to_string()),
        longest_row: rows.longest,
    })
}

/// Skips whitespace and record separators (RFC 8142) between JSON texts; whether a text
/// follows. (serde_json reads a text up to its closing brace and not a byte further.)
fn more_text<R: BufRead>(reader: &mut R) -> io::Result<bool> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let skip = buf
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x1E))
            .count();
        if skip < buf.len() {
            reader.consume(skip);
            return Ok(true);
        }
        let all = buf.len();
        reader.consume(all);
    }
}

/// A UTF-8 byte order mark is allowed before the JSON (some tools write one).
fn skip_bom<R: BufRead>(reader: &mut R) -> io::Result<()> {
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(())
}

/// The depth guard's refusal is the client's; any other I/O error is the server's.
fn io_error(e: io::Error) -> GeoJsonError {
    if e.kind() == io::ErrorKind::InvalidData {
        GeoJsonError::Invalid(e.to_string())
    } else {
        GeoJsonError::Io(e)
    }
}

/// The parser's error in the body's `text`-th JSON text (its line and column are within that
/// text).
fn json_error(e: serde_json::Error, text: u64) -> GeoJsonError {
    if e.io_error_kind().is_some() {
        return io_error(e.into());
    }
    let which = if text > 1 {
        format!(" (JSON text {text} of the body)")
    } else {
        String::new()
    };
    GeoJsonError::Invalid(format!(
        "not a GeoJSON FeatureCollection or Feature: {e}{which}"
    ))
}

/// Refuses input nesting arrays/objects deeper than `max`, as it is read (strings and their
/// escapes skipped): the parser behind it never recurses that deep.
struct DepthGuard<R> {
    inner: R,
    max: usize,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl<R> DepthGuard<R> {
    fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            depth: 0,
            in_string: false,
            escaped: false,
        }
    }

    /// Whether the nesting stays within `max` after `b`.
    fn step(&mut self, b: u8) -> bool {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return true;
        }
        match b {
            b'"' => self.in_string = true,
            b'[' | b'{' => self.depth += 1,
            b']' | b'}' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.depth <= self.max
    }
}

impl<R: Read> Read for DepthGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if !self.step(b) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the GeoJSON nests arrays and objects deeper than {} levels",
                        self.max
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// The top-level object, a FeatureCollection (its features streamed to the rows as they are
/// read) or a Feature.
struct TopSeed<'a, W: Write> {
    rows: &'a mut Rows<W>,
}

struct Top {
    crs: Option<String>,
    collection: bool,
}

impl<'de, W: Write> DeserializeSeed<'de> for TopSeed<'_, W> {
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, W: Write> Visitor<'de> for TopSeed<'_, W> {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection or Feature (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let rows = self.rows;
        let (mut kind, mut crs, mut has_features) = (None::<String>, None, false);
        let mut lone = Feature::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => kind = Some(map.next_value()?),
                "features" => {
                    map.next_value_seed(FeaturesSeed { rows: &mut *rows })?;
                    has_features = true;
                }
                "properties" => lone.properties = map.next_value()?,
                "geometry" => lone.geometry = map.next_value()?,
                "crs" => crs = named_crs(&map.next_value::<Box<RawValue>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (kind.as_deref(), has_features) {
            (Some("FeatureCollection"), true) => {}
            (Some("FeatureCollection"), false) => {
                return Err(de::Error::custom("a FeatureCollection needs `features`"))
            }
            (Some("Feature"), false) => rows.write(&lone).map_err(de::Error::custom)?,
            (Some("Feature"), true) => {
                return Err(de::Error::custom("a Feature has no `features`"))
            }
            (Some(other), _) => {
                return Err(de::Error::custom(format!(
                    "the upload is a `{other}`, not a FeatureCollection or a Feature"
                )))
            }
            (None, _) => return Err(de::Error::custom("the top-level object has no `type`")),
        }
        Ok(Top {
            crs,
            collection: has_features,
        })
    }
}

/// `features`: each is written as a row as soon as it is read.
struct FeaturesSeed<'a, W: Write> {
    rows: &'a mut Rows<W>,
}

impl<'de, W: Write> DeserializeSeed<'de> for FeaturesSeed<'_, W> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, W: Write> Visitor<'de> for FeaturesSeed<'_, W> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of Features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(feature) = seq.next_element::<Feature>()? {
            self.rows.write(&feature).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

/// The CRS a `crs` member names, if it is a `name` CRS duckstream knows (EPSG codes, CRS84);
/// anything else is ignored. Nothing is ever fetched: a `link` CRS is just not a `name`.
fn named_crs(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Crs {
        #[serde(rename = "type")]
        kind: String,
        properties: Named,
    }
    #[derive(Deserialize)]
    struct Named {
        name: String,
    }
    let crs: Crs = serde_json::from_str(raw.get()).ok()?;
    if crs.kind != "name" {
        return None;
    }
    crs_of_name(&crs.properties.name)
}

/// `EPSG:<n>` for the names of an EPSG CRS, [`DEFAULT_CRS`] for CRS84 (longitude/latitude on
/// WGS 84, what GeoJSON's coordinates are anyway); `None` for any other name.
fn crs_of_name(name: &str) -> Option<String> {
    let name = name.trim().to_ascii_lowercase();
    if matches!(
        name.as_str(),
        "urn:ogc:def:crs:ogc:1.3:crs84" | "urn:ogc:def:crs:ogc::crs84" | "ogc:crs84"
    ) {
        return Some(DEFAULT_CRS.to_string());
    }
    let code = match name.strip_prefix("urn:ogc:def:crs:epsg:") {
        // `urn:ogc:def:crs:EPSG:<version>:<code>`, the version often empty.
        Some(rest) => rest.rsplit_once(':')?.1,
        None => name.strip_prefix("epsg:")?,
    };
    let valid = (1..=9).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("EPSG:{code}"))
}

/// A feature as it is read: the lone Feature's members, or one element of `features`.
#[derive(Default, Deserialize)]
struct Feature {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    properties: Properties,
    #[serde(default)]
    geometry: Option<Geometry>,
}

/// A feature's properties in their order, each value's JSON text as sent.
#[derive(Default)]
struct Properties(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Properties;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("properties: an object or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Properties, E> {
                Ok(Properties::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Properties(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A GeoJSON geometry object.
#[derive(Deserialize)]
struct Geometry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    coordinates: Option<Coords>,
    #[serde(default)]
    geometries: Option<Vec<Geometry>>,
}

impl Geometry {
    fn has_z(&self) -> bool {
        self.coordinates.as_ref().is_some_and(|c| c.has_z)
            || self.geometries.iter().flatten().any(Geometry::has_z)
    }
}

/// Nested coordinate arrays, flat: the arrays in pre-order (a list with its length, or a
/// position) and the positions' numbers in order.
#[derive(Debug, Default, PartialEq)]
struct Coords {
    nodes: Vec<Node>,
    positions: Vec<[f64; 3]>,
    has_z: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    List(u32),
    Position,
}

/// Arrays within `coordinates`, the outermost included: a MultiPolygon's are polygons, rings,
/// positions.
const MAX_COORDS_DEPTH: usize = 4;

impl<'de> Deserialize<'de> for Coords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut coords = Coords::default();
        d.deserialize_seq(ArraySeed {
            coords: &mut coords,
            depth: 1,
        })?;
        Ok(coords)
    }
}

/// One array of `coordinates` at `depth`: a position (numbers) or a list of arrays.
struct ArraySeed<'a> {
    coords: &'a mut Coords,
    depth: usize,
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("coordinates: arrays of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.coords.nodes.len();
        self.coords.nodes.push(Node::List(0));
        let (mut numbers, mut arrays, mut position) = (0usize, 0u32, [0.0; 3]);
        let depth = self.depth;
        while let Some(elem) = seq.next_element_seed(ElemSeed {
            coords: &mut *self.coords,
            depth,
        })? {
            match elem {
                Elem::Number(x) => {
                    if let Some(slot) = position.get_mut(numbers) {
                        *slot = x;
                    }
                    numbers += 1;
                }
                Elem::Array => arrays = arrays.saturating_add(1),
            }
            if numbers > 0 && arrays > 0 {
                return Err(de::Error::custom(
                    "coordinates: an array mixes numbers and arrays",
                ));
            }
        }
        match numbers {
            0 => self.coords.nodes[at] = Node::List(arrays),
            1 => return Err(de::Error::custom("a position needs at least 2 numbers")),
            n => {
                self.coords.nodes[at] = Node::Position;
                self.coords.positions.push(position);
                self.coords.has_z |= n >= 3;
            }
        }
        Ok(())
    }
}

enum Elem {
    Number(f64),
    Array,
}

/// An element of a coordinates array: a number, or an array one level deeper.
struct ElemSeed<'a> {
    coords: &'a mut Coords,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ElemSeed<'_> {
    type Value = Elem;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Elem, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElemSeed<'_> {
    type Value = Elem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or an array of coordinates")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Elem, E> {
        Ok(Elem::Number(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Elem, E> {
        Ok(Elem::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Elem, E> {
        Ok(Elem::Number(v as f64))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Elem, A::Error> {
        if self.depth >= MAX_COORDS_DEPTH {
            return Err(de::Error::custom(format!(
                "coordinates nest more than {MAX_COORDS_DEPTH} arrays"
            )));
        }
        ArraySeed {
            coords: self.coords,
            depth: self.depth + 1,
        }
        .visit_seq(seq)?;
        Ok(Elem::Array)
    }
}

/// GeometryCollections within GeometryCollections, at most.
const MAX_COLLECTION_DEPTH: usize = 8;

/// ISO WKB, little-endian, of one geometry (with Z when `z`).
struct Wkb<'a> {
    out: &'a mut Vec<u8>,
    z: bool,
}

impl Wkb<'_> {
    fn header(&mut self, code: u32) {
        self.out.push(1);
        self.out
            .extend_from_slice(&(code + if self.z { 1000 } else { 0 }).to_le_bytes());
    }

    fn count(&mut self, n: u32) {
        self.out.extend_from_slice(&n.to_le_bytes());
    }

    fn position(&mut self, p: [f64; 3]) {
        let dims = if self.z { 3 } else { 2 };
        for v in &p[..dims] {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn geometry(&mut self, g: &Geometry, depth: usize) -> Result<(), String> {
        if g.kind == "GeometryCollection" {
            if depth >= MAX_COLLECTION_DEPTH {
                return Err(format!(
                    "GeometryCollections nest more than {MAX_COLLECTION_DEPTH} deep"
                ));
            }
            let parts = g
                .geometries
                .as_deref()
                .ok_or("a GeometryCollection needs `geometries`")?;
            self.header(7);
            self.count(u32::try_from(parts.len()).map_err(|_| "too many geometries")?);
            return parts.iter().try_for_each(|p| self.geometry(p, depth + 1));
        }
        let coords = g
            .coordinates
            .as_ref()
            .ok_or_else(|| format!("a {} needs `coordinates`", g.kind))?;
        let mut c = Cursor::new(coords);
        match g.kind.as_str() {
            "Point" => self.point(&mut c),
            "LineString" => self.line(&mut c),
            "Polygon" => self.polygon(&mut c),
            "MultiPoint" => self.multi(&mut c, 4, Self::point),
            "MultiLineString" => self.multi(&mut c, 5, Self::line),
            "MultiPolygon" => self.multi(&mut c, 6, Self::polygon),
            other => Err(format!("`{other}` is not a GeoJSON geometry type")),
        }
    }

    /// A position, or `[]`: the empty point (NaN coordinates, as WKB writes it).
    fn point(&mut self, c: &mut Cursor) -> Result<(), String> {
        let p = match c.node() {
            Some(Node::Position) => c.take_position(),
            Some(Node::List(0)) => [f64::NAN; 3],
            _ => return Err("a Point's coordinates are one position".into()),
        };
        self.header(1);
        self.position(p);
        Ok(())
    }

    fn line(&mut self, c: &mut Cursor) -> Result<(), String> {
        self.header(2);
        self.positions(c, "a LineString's coordinates are an array of positions")
    }

    fn polygon(&mut self, c: &mut Cursor) -> Result<(), String> {
        const SHAPE: &str = "a Polygon's coordinates are an array of rings (arrays of positions)";
        let rings = c.list(SHAPE)?;
        self.header(3);
        self.count(rings);
        (0..rings).try_for_each(|_| self.positions(c, SHAPE))
    }

    fn multi(
        &mut self,
        c: &mut Cursor,
        code: u32,
        part: fn(&mut Self, &mut Cursor) -> Result<(), String>,
    ) -> Result<(), String> {
        let n = c.list("a Multi geometry's coordinates are an array of its parts")?;
        self.header(code);
        self.count(n);
        (0..n).try_for_each(|_| part(self, c))
    }

    /// A count, then that many positions.
    fn positions(&mut self, c: &mut Cursor, shape: &str) -> Result<(), String> {
        let n = c.list(shape)?;
        self.count(n);
        for _ in 0..n {
            match c.node() {
                Some(Node::Position) => {
                    let p = c.take_position();
                    self.position(p);
                }
                _ => return Err(shape.to_string()),
            }
        }
        Ok(())
    }
}

/// Walks [`Coords`] in pre-order.
struct Cursor<'a> {
    coords: &'a Coords,
    next_node: usize,
    next_position: usize,
}

impl<'a> Cursor<'a> {
    fn new(coords: &'a Coords) -> Self {
        Self {
            coords,
            next_node: 0,
            next_position: 0,
        }
    }

    fn node(&mut self) -> Option<Node> {
        let n = self.coords.nodes.get(self.next_node).copied();
        self.next_node += 1;
        n
    }

    /// The position the last [`Cursor::node`] returned as [`Node::Position`].
    fn take_position(&mut self) -> [f64; 3] {
        let p = self.coords.positions.get(self.next_position).copied();
        self.next_position += 1;
        p.unwrap_or([f64::NAN; 3])
    }

    fn list(&mut self, shape: &str) -> Result<u32, String> {
        match self.node() {
            Some(Node::List(n)) => Ok(n),
            _ => Err(shape.to_string()),
        }
    }
}

/// The NDJSON rows being written, one a feature.
struct Rows<W: Write> {
    out: BufWriter<W>,
    line: Vec<u8>,
    wkb: Vec<u8>,
    base64: String,
    features: u64,
    longest: usize,
    /// A write that failed (reported as the server's error, not the client's).
    failed: Option<io::Error>,
}

impl<W: Write> Rows<W> {
    fn new(out: W) -> Self {
        Self {
            out: BufWriter::with_capacity(1 << 20, out),
            line: Vec::new(),
            wkb: Vec::new(),
            base64: String::new(),
            features: 0,
            longest: 0,
            failed: None,
        }
    }

    /// Writes `f` as one row: `{"<property>":<value>,…,"geom":"<base64 WKB>"|null}`.
    fn write(&mut self, f: &Feature) -> Result<(), String> {
        let n = self.features + 1;
        if let Some(kind) = f.kind.as_deref().filter(|k| *k != "Feature") {
            return Err(format!("feature {n} is a `{kind}`, not a Feature"));
        }
        check_keys(&f.properties).map_err(|e| format!("feature {n}: {e}"))?;
        self.line.clear();
        self.line.push(b'{');
        for (key, value) in &f.properties.0 {
            push_string(&mut self.line, key);
            self.line.push(b':');
            push_compact(&mut self.line, value.get());
            self.line.push(b',');
        }
        push_string(&mut self.line, GEOMETRY_COLUMN);
        self.line.push(b':');
        match &f.geometry {
            None => self.line.extend_from_slice(b"null"),
            Some(g) => {
                self.wkb.clear();
                let z = g.has_z();
                Wkb {
                    out: &mut self.wkb,
                    z,
                }
                .geometry(g, 0)
                .map_err(|e| format!("feature {n}: {e}"))?;
                self.base64.clear();
                base64::engine::general_purpose::STANDARD
                    .encode_string(&self.wkb, &mut self.base64);
                self.line.push(b'"');
                self.line.extend_from_slice(self.base64.as_bytes());
                self.line.push(b'"');
            }
        }
        self.line.extend_from_slice(b"}\n");
        self.longest = self.longest.max(self.line.len());
        if let Err(e) = self.out.write_all(&self.line) {
            self.failed = Some(e);
            return Err("the rows could not be written".into());
        }
        self.features = n;
        Ok(())
    }
}

/// No property may take the geometry's column, nor appear twice (DuckDB's reader refuses
/// duplicate keys; a JSON parser would keep one silently).
fn check_keys(properties: &Properties) -> Result<(), String> {
    let mut seen = HashSet::with_capacity(properties.0.len());
    for (key, _) in &properties.0 {
        if key.eq_ignore_ascii_case(GEOMETRY_COLUMN) {
            return Err(format!(
                "the property `{key}` would take the geometry's column `{GEOMETRY_COLUMN}`"
            ));
        }
        if !seen.insert(key.as_str()) {
            return Err(format!("the property `{key}` appears twice"));
        }
    }
    Ok(())
}

fn push_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `json` (valid JSON text) without the whitespace between its tokens: a value that was
/// pretty-printed over lines stays on its row. (Strings hold no raw line breaks: JSON forbids
/// control characters in them, and the parser checked.)
fn push_compact(out: &mut Vec<u8>, json: &str) {
    let (mut in_string, mut escaped) = (false, false);
    for &b in json.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            continue;
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(input: &str) -> Result<(Converted, String), GeoJsonError> {
        let mut out = Vec::new();
        let c = to_rows(input.as_bytes(), &mut out)?;
        Ok((c, String::from_utf8(out).unwrap()))
    }

    fn invalid(input: &str) -> String {
        match convert(input) {
            Err(GeoJsonError::Invalid(m)) => m,
            other => panic!("{input}: {other:?}"),
        }
    }

    /// The WKB (hex, upper case) of one geometry, as written into a row.
    fn wkb_hex(geometry: &str) -> String {
        let (_, rows) = convert(&format!(
            r#"{{"type":"Feature","properties":null,"geometry":{geometry}}}"#
        ))
        .unwrap();
        let row: serde_json::Value = serde_json::from_str(rows.trim_end()).unwrap();
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            row["geom"].as_str().unwrap(),
        )
        .unwrap();
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Known-good bytes: DuckDB 1.5.5 with spatial, `hex(ST_AsWKB(ST_GeomFromText(wkt)))`.
    #[test]
    fn each_geometry_type_is_the_wkb_duckdb_writes() {
        let cases = [
            (r#"{"type":"Point","coordinates":[1,2]}"#, "0101000000000000000000F03F0000000000000040"),
            (r#"{"type":"Point","coordinates":[1,2,3]}"#, "01E9030000000000000000F03F00000000000000400000000000000840"),
            (r#"{"type":"Point","coordinates":[]}"#, "0101000000000000000000F87F000000000000F87F"),
            (r#"{"type":"LineString","coordinates":[[0,0],[1,1]]}"#, "01020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F"),
            (r#"{"type":"LineString","coordinates":[[0,0,1],[1,1,2]]}"#, "01EA0300000200000000000000000000000000000000000000000000000000F03F000000000000F03F000000000000F03F0000000000000040"),
            (r#"{"type":"LineString","coordinates":[]}"#, "010200000000000000"),
            (r#"{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}"#, "0103000000010000000400000000000000000000000000000000000000000000000000F03F0000000000000000000000000000F03F000000000000F03F00000000000000000000000000000000"),
            (r#"{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,0]],[[1,1],[2,1],[2,2],[1,1]]]}"#, "010300000002000000040000000000000000000000000000000000000000000000000024400000000000000000000000000000244000000000000024400000000000000000000000000000000004000000000000000000F03F000000000000F03F0000000000000040000000000000F03F00000000000000400000000000000040000000000000F03F000000000000F03F"),
            (r#"{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}"#, "0104000000020000000101000000000000000000F03F0000000000000040010100000000000000000008400000000000001040"),
            (r#"{"type":"MultiLineString","coordinates":[[[0,0],[1,1]],[[2,2],[3,3]]]}"#, "01050000000200000001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F0102000000020000000000000000000040000000000000004000000000000008400000000000000840"),
            (r#"{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}"#, "0106000000020000000103000000010000000400000000000000000000000000000000000000000000000000F03F0000000000000000000000000000F03F000000000000F03F000000000000000000000000000000000103000000010000000400000000000000000014400000000000001440000000000000184000000000000014400000000000001840000000000000184000000000000014400000000000001440"),
            (r#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]},{"type":"LineString","coordinates":[[0,0],[1,1]]}]}"#, "0107000000020000000101000000000000000000F03F000000000000004001020000000200000000000000000000000000000000000000000000000000F03F000000000000F03F"),
            (r#"{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2,3]}]}"#, "01EF0300000100000001E9030000000000000000F03F00000000000000400000000000000840"),
            (r#"{"type":"GeometryCollection","geometries":[]}"#, "010700000000000000"),
            (r#"{"type":"Point","coordinates":[-1.5,1e300]}"#, "0101000000000000000000F8BF9C7500883CE4377E"),
            // Numbers past the third are ignored (RFC 7946 3.1.1).
            (r#"{"coordinates":[1,2,3,4],"type":"Point"}"#, "01E9030000000000000000F03F00000000000000400000000000000840"),
        ];
        for (geometry, hex) in cases {
            assert_eq!(wkb_hex(geometry), hex, "{geometry}");
        }
    }

    #[test]
    fn rows_keep_property_order_and_values_then_the_geometry() {
        let input = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"z": 1, "a": "x\ny", "n": {"k": [1, 2],
                "b": true}, "f": 1.50}, "geometry": null},
            {"type": "Feature", "properties": null, "geometry": {"type": "Point", "coordinates": [1, 2]}},
            {"properties": {"big": 123456789012345678901234567890}}
        ]}"#;
        let (c, rows) = convert(input).unwrap();
        assert_eq!(
            c,
            Converted {
                features: 3,
                crs: DEFAULT_CRS.into(),
                longest_row: 65
            }
        );
        assert_eq!(
            rows,
            concat!(
                r#"{"z":1,"a":"x\ny","n":{"k":[1,2],"b":true},"f":1.50,"geom":null}"#,
                "\n",
                r#"{"geom":"AQEAAAAAAAAAAADwPwAAAAAAAABA"}"#,
                "\n",
                r#"{"big":123456789012345678901234567890,"geom":null}"#,
                "\n"
            )
        );
    }

    #[test]
    fn a_lone_feature_an_empty_collection_and_a_bom() {
        let (c, rows) =
            convert(r#"{"geometry":null,"properties":{"a":1},"type":"Feature"}"#).unwrap();
        assert_eq!(
            (c.features, rows.as_str()),
            (1, "{\"a\":1,\"geom\":null}\n")
        );
        let (c, rows) = convert(r#"{"type":"FeatureCollection","features":[]}"#).unwrap();
        assert_eq!((c.features, c.longest_row, rows.as_str()), (0, 0, ""));
        let (c, _) = convert("\u{feff}{\"type\":\"FeatureCollection\",\"features\":[{}]}").unwrap();
        assert_eq!(c.features, 1);
    }

    #[test]
    fn a_sequence_of_features_is_rows_too() {
        let lines = concat!(
            "{\"type\":\"Feature\",\"properties\":{\"a\":1},\"geometry\":null}\n",
            "\u{1e}{\"type\":\"Feature\",\"properties\":{\"a\":2},\"geometry\":null}\n\n"
        );
        let (c, rows) = convert(lines).unwrap();
        assert_eq!(c.features, 2);
        assert_eq!(rows, "{\"a\":1,\"geom\":null}\n{\"a\":2,\"geom\":null}\n");
        // Read through a reader that hands out one byte at a time.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        let c = to_rows(Trickle(lines.as_bytes()), &mut out).unwrap();
        assert_eq!((c.features, out), (2, rows.into_bytes()));
    }

    #[test]
    fn a_name_crs_sets_the_crs_and_any_other_is_ignored() {
        let with = |crs: &str| {
            let input = format!(r#"{{"type":"FeatureCollection","crs":{crs},"features":[]}}"#);
            convert(&input).unwrap().0.crs
        };
        for (crs, want) in [
            (
                r#"{"type":"name","properties":{"name":"EPSG:3857"}}"#,
                "EPSG:3857",
            ),
            (
                r#"{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2154"}}"#,
                "EPSG:2154",
            ),
            (
                r#"{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG:6.6:4326"}}"#,
                "EPSG:4326",
            ),
            (
                r#"{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}}"#,
                "EPSG:4326",
            ),
            (
                r#"{"type":"name","properties":{"name":"EPSG:3857'; DROP TABLE x"}}"#,
                "EPSG:4326",
            ),
            (
                r#"{"type":"name","properties":{"name":"/vsicurl/http://127.0.0.1/x"}}"#,
                "EPSG:4326",
            ),
            (
                r#"{"type":"link","properties":{"href":"http://127.0.0.1:9/crs","type":"proj4"}}"#,
                "EPSG:4326",
            ),
            (
                r#"{"type":"name","properties":{"name":"EPSG:1234567890"}}"#,
                "EPSG:4326",
            ),
            ("null", "EPSG:4326"),
            ("[1, {\"a\": 2}]", "EPSG:4326"),
        ] {
            assert_eq!(with(crs), want, "{crs}");
        }
    }

    #[test]
    fn anything_but_a_feature_collection_or_a_feature_is_refused() {
        let vrt = r#"<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>CSV:/etc/passwd</SrcDataSource></OGRVRTLayer></OGRVRTDataSource>"#;
        for (input, says) in [
            (vrt, "expected value at line 1 column 1"),
            ("", "the body is empty"),
            ("[]", "invalid type: sequence"),
            (r#"{"type":"Point","coordinates":[1,2]}"#, "a `Point`"),
            (r#"{"features":[]}"#, "no `type`"),
            (r#"{"type":"FeatureCollection"}"#, "needs `features`"),
            (r#"{"type":"Feature","features":[]}"#, "has no `features`"),
            (
                r#"{"type":"FeatureCollection","features":[]} {"type":"Feature"}"#,
                "only JSON text",
            ),
            (
                r#"{"type":"Feature"} {"type":"FeatureCollection","features":[]}"#,
                "only JSON text",
            ),
            (
                "{\"type\":\"Feature\"}\n<x/>",
                "expected value at line 1 column 1 (JSON text 2",
            ),
            ("  \n ", "the body is empty"),
            (
                r#"{"type":"FeatureCollection","features":[{"type":"Point"}]}"#,
                "feature 1 is a `Point`",
            ),
            (
                r#"{"type":"FeatureCollection","features":{}}"#,
                "an array of Features",
            ),
            (
                r#"{"type":"Feature","properties":[1]}"#,
                "an object or null",
            ),
            (r#"{"type":"Feature","properties":{"geom":1}}"#, "`geom`"),
            (r#"{"type":"Feature","properties":{"GEOM":1}}"#, "`GEOM`"),
            (
                r#"{"type":"Feature","properties":{"a":1,"a":2}}"#,
                "`a` appears twice",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Circle","coordinates":[1,2]}}"#,
                "`Circle`",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Point"}}"#,
                "needs `coordinates`",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1]}}"#,
                "at least 2",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[[1,2]]}}"#,
                "one position",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Point","coordinates":["1",2]}}"#,
                "a number or an array",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[0,0],1]}}"#,
                "mixes",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"LineString","coordinates":[[[0,0]]]}}"#,
                "array of positions",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"Polygon","coordinates":[[0,0]]}}"#,
                "rings",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"MultiPolygon","coordinates":[[[[[0,0]]]]]}}"#,
                "more than 4",
            ),
            (
                r#"{"type":"Feature","geometry":{"type":"GeometryCollection"}}"#,
                "needs `geometries`",
            ),
        ] {
            let m = invalid(input);
            assert!(m.contains(says), "{input}: {m}");
        }
    }

    #[test]
    fn nesting_past_the_limit_is_refused_before_parsing_it() {
        let deep = |n: usize| {
            format!(
                r#"{{"type":"Feature","properties":{{"a":{}1{}}}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        // The top object and `properties` are 2 levels.
        assert_eq!(convert(&deep(MAX_JSON_DEPTH - 2)).unwrap().0.features, 1);
        assert!(invalid(&deep(MAX_JSON_DEPTH - 1)).contains("deeper than 64"));
        // Far past serde_json's own limit, in a string nothing counts.
        assert!(invalid(&deep(100_000)).contains("deeper than 64"));
        let in_string = format!(
            r#"{{"type":"Feature","properties":{{"a":"{}\"{}"}}}}"#,
            "[".repeat(1000),
            "{".repeat(1000)
        );
        assert_eq!(convert(&in_string).unwrap().0.features, 1);
        let collections = (0..10).fold(
            r#"{"type":"Point","coordinates":[0,0]}"#.to_string(),
            |g, _| format!(r#"{{"type":"GeometryCollection","geometries":[{g}]}}"#),
        );
        let m = invalid(&format!(r#"{{"type":"Feature","geometry":{collections}}}"#));
        assert!(m.contains("nest more than 8"), "{m}");
    }

    #[test]
    fn mixed_dimensions_are_written_with_z() {
        assert_eq!(
            wkb_hex(r#"{"type":"LineString","coordinates":[[0,0],[1,1,2]]}"#),
            "01EA03000002000000000000000000000000000000000000000000000000000000000000000000F03F000000000000F03F0000000000000040"
        );
    }
}
