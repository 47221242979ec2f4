//! Checks an upload's bytes before DuckDB reads them: nesting depth and record size of the
//! text formats while the body streams to its spool file (one pass over the decoded bytes,
//! constant memory, no parse), and the schema of a Parquet file's footer once it is spooled.
//!
//! Why: DuckDB's readers recurse on nesting and hold a record whole. An NDJSON line nested
//! 100,000 levels deep (a 200 KB body) overflowed a DuckDB thread's stack and aborted the
//! process, 3,000 levels burned a core for minutes; a Parquet column of 2,000 nested lists
//! never finished loading (each list level doubles DuckDB 1.5.5's work per row group), and
//! 128 of them made DuckDB raise an INTERNAL error, which invalidates the tenant's database
//! until a restart.
//!
//! Invariants:
//! - Sound, not exact: a body DuckDB (or GDAL, for GeoJSON) would read as nested deeper than
//!   the limit, or with a record longer than the limit, is always refused. What is refused
//!   besides is never valid input (a raw line break inside a JSON string, a JSON comment).
//! - JSON (NDJSON, GeoJSON): depth counts the arrays and objects open outside strings
//!   (escapes skipped), at most [`MAX_JSON_DEPTH`] anywhere. A line break inside a string, and
//!   `/` or `'` outside one, are refused: none is JSON, and GDAL's parser reads comments and
//!   single-quoted strings, which would hide brackets from the count.
//! - NDJSON: each line (without its `\n`) is at most `max_record_bytes`. DuckDB splits lines
//!   at every `\n`, which is also why a string may not hold one.
//! - GeoJSON: each element of a container nested in another is at most `max_record_bytes`:
//!   a FeatureCollection's features, and every part of a lone Feature's geometry and
//!   properties (an approximation of "each feature" that needs no parse).
//! - CSV: each record is at most `max_record_bytes`; line breaks inside double-quoted fields
//!   belong to the record (RFC 4180). CSV does not nest. (DuckDB's reader refuses lines over
//!   its own `max_line_size`, 2 MB, too.)
//! - Parquet: [`check_parquet_footer`] reads the footer's Thrift (compact protocol) with
//!   bounded nesting and constant memory: every schema path has at most [`MAX_PARQUET_DEPTH`]
//!   nodes below the root and at most [`MAX_PARQUET_LISTS`] repeated ones, and the schema's
//!   child counts add up (DuckDB builds its readers from them).

use std::io::Read;

use super::datasets::UploadFormat;
use super::{WireError, MAX_JSON_DEPTH};

/// The deepest schema path of an uploaded Parquet file (nodes below the root; a list takes
/// two). DuckDB 1.5.5's work per row group grows with it (a struct nested 32 deep costs
/// ~4 ms per row group, 64 deep ~30 ms).
pub const MAX_PARQUET_DEPTH: usize = 32;

/// The most repeated fields (lists, maps) on one schema path of an uploaded Parquet file:
/// each one doubles DuckDB 1.5.5's work per row group (8: under 1 ms; 16: 27 ms; 24: 13 s).
pub const MAX_PARQUET_LISTS: usize = 8;

/// Thrift nesting in a Parquet footer (real footers nest under 10 levels).
const MAX_THRIFT_DEPTH: usize = 64;

/// A byte table: `true` for the bytes listed.
const fn table(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

static NONE: [bool; 256] = [false; 256];
static ALL: [bool; 256] = [true; 256];
static CSV_EVENTS: [bool; 256] = table(b"\"\n");
static JSON_STRING_EVENTS: [bool; 256] = table(b"\"\\\n");
static JSON_EVENTS: [bool; 256] = table(b"\"[]{},:\n/'");

fn refuse(message: String) -> WireError {
    WireError::InvalidUpload(message)
}

/// The streaming check of one upload's decoded bytes (see the module doc).
#[derive(Debug)]
pub struct UploadScan {
    format: UploadFormat,
    max_record: u64,
    /// The offset of the next byte.
    pos: u64,
    /// Where the current record (NDJSON line, CSV record, GeoJSON element) began.
    record_start: u64,
    /// The current NDJSON line or CSV record, 1 = the first (for messages).
    record: u64,
    /// JSON: arrays and objects open.
    depth: usize,
    /// Inside a JSON string, or a CSV quoted field.
    quoted: bool,
    /// The previous byte was a backslash inside a JSON string.
    escaped: bool,
}

impl UploadScan {
    pub fn new(format: UploadFormat, max_record_bytes: u64) -> Self {
        Self {
            format,
            max_record: max_record_bytes,
            pos: 0,
            record_start: 0,
            record: 1,
            depth: 0,
            quoted: false,
            escaped: false,
        }
    }

    /// Checks the next bytes of the body. Only the bytes that can change the state are
    /// looked at one by one; the record's length is checked at each of them and at the end.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let mut rest = bytes;
        while let Some(at) = self.next_event(rest) {
            self.pos += at as u64;
            self.event(rest[at]).map_err(refuse)?;
            self.pos += 1;
            rest = &rest[at + 1..];
        }
        self.pos += rest.len() as u64;
        self.check_record(self.pos).map_err(refuse)
    }

    /// Where the next byte that [`matters`](Self::matters) is in `bytes`. CSV's two (`"` and
    /// `\n`) are found with `memchr2` (vectorised, where the table is one byte at a time),
    /// the others by the table.
    fn next_event(&self, bytes: &[u8]) -> Option<usize> {
        if self.format == UploadFormat::Csv {
            return memchr::memchr2(b'"', b'\n', bytes);
        }
        let matters = self.matters();
        bytes.iter().position(|&b| matters[usize::from(b)])
    }

    /// The bytes that can change the state now (any other byte only adds to the record).
    fn matters(&self) -> &'static [bool; 256] {
        match self.format {
            UploadFormat::Parquet => &NONE,
            UploadFormat::Csv => &CSV_EVENTS,
            _ if self.escaped => &ALL,
            _ if self.quoted => &JSON_STRING_EVENTS,
            _ => &JSON_EVENTS,
        }
    }

    /// The current record, up to `end` (excluded), is at most the limit.
    fn check_record(&self, end: u64) -> Result<(), String> {
        let inside = match self.format {
            UploadFormat::Parquet => false,
            UploadFormat::GeoJson => self.depth >= 2,
            _ => true,
        };
        if !inside || end - self.record_start <= self.max_record {
            return Ok(());
        }
        let max = self.max_record;
        Err(match self.format {
            UploadFormat::Ndjson => format!("line {} is longer than {max} bytes", self.record),
            UploadFormat::Csv => format!(
                "record {} is longer than {max} bytes (a quoted field holds its line breaks)",
                self.record
            ),
            _ => format!(
                "the value at byte {} (a feature, or a value nested in two others) is longer \
                 than {max} bytes",
                self.record_start
            ),
        })
    }

    /// The byte at `self.pos`, one that [`matters`](Self::matters).
    fn event(&mut self, b: u8) -> Result<(), String> {
        self.check_record(self.pos)?;
        let (depth, quoted) = (self.depth, self.quoted);
        let ends_record = match self.format {
            UploadFormat::Csv => {
                self.quoted ^= b == b'"';
                b == b'\n' && !self.quoted
            }
            UploadFormat::Ndjson => {
                self.json(b)?;
                b == b'\n'
            }
            _ => {
                // The brackets, commas and colons of a depth-2 container separate its
                // elements: each element lies between two of them.
                self.json(b)?;
                let separates = depth == 2 && b",:]}".contains(&b);
                !quoted && (separates || (depth, self.depth) == (1, 2))
            }
        };
        if ends_record {
            self.record += 1;
            self.record_start = self.pos + 1;
        }
        Ok(())
    }

    /// One byte of JSON: strings, depth, and what no JSON holds.
    fn json(&mut self, b: u8) -> Result<(), String> {
        if self.quoted {
            match b {
                b'\n' => return Err(self.where_("a line break inside a string")),
                _ if self.escaped => self.escaped = false,
                b'\\' => self.escaped = true,
                b'"' => self.quoted = false,
                _ => {}
            }
            return Ok(());
        }
        match b {
            b'"' => self.quoted = true,
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth > MAX_JSON_DEPTH {
                    return Err(
                        self.where_(&format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"))
                    );
                }
            }
            b']' | b'}' => self.depth = self.depth.saturating_sub(1),
            b'/' | b'\'' => {
                return Err(self.where_("not JSON: a comment or a single-quoted string"))
            }
            _ => {}
        }
        Ok(())
    }

    /// `what`, and where: the line (NDJSON) or the byte offset (GeoJSON).
    fn where_(&self, what: &str) -> String {
        match self.format {
            UploadFormat::Ndjson => format!("line {}: {what}", self.record),
            _ => format!("byte {}: {what}", self.pos),
        }
    }
}

/// Checks a Parquet file's footer (its `FileMetaData`, exactly the footer's bytes): see the
/// module doc. Reads `footer` once, front to back, holding nothing but a schema path.
pub fn check_parquet_footer(footer: impl Read) -> Result<(), WireError> {
    let mut thrift = Compact {
        r: std::io::BufReader::new(footer),
    };
    let mut last = 0;
    while let Some((id, ty)) = thrift.field(&mut last)? {
        // `schema` (field 2) is a list of SchemaElement structs; DuckDB's Thrift code reads
        // each element as a struct whatever type the list header names.
        if id == 2 && ty == LIST {
            let (count, _) = thrift.list_header()?;
            let mut tree = SchemaTree::default();
            for _ in 0..count {
                let (repetition, children) = thrift.schema_element()?;
                tree.element(repetition, children)?;
            }
            tree.finish()?;
        } else {
            thrift.skip(ty, 1)?;
        }
    }
    Ok(())
}

fn malformed(what: &str) -> WireError {
    refuse(format!("the Parquet footer is malformed: {what}"))
}

/// The schema's paths, as its elements arrive depth first (each with its child count).
#[derive(Debug, Default)]
struct SchemaTree {
    /// The open groups from the root down: children still to come, and whether repeated.
    open: Vec<(i64, bool)>,
    /// Repeated groups among `open`.
    lists: usize,
    seen: u64,
}

impl SchemaTree {
    fn element(&mut self, repetition: i32, children: i32) -> Result<(), WireError> {
        if self.seen > 0 {
            match self.open.last_mut() {
                Some(parent) => parent.0 -= 1,
                None => return Err(malformed("more schema elements than the root holds")),
            }
        }
        self.seen += 1;
        let repeated = repetition == 2;
        let (depth, lists) = (self.open.len(), self.lists + usize::from(repeated));
        if depth > MAX_PARQUET_DEPTH {
            return Err(refuse(format!(
                "the Parquet schema nests deeper than {MAX_PARQUET_DEPTH} levels"
            )));
        }
        if lists > MAX_PARQUET_LISTS {
            return Err(refuse(format!(
                "the Parquet schema nests more than {MAX_PARQUET_LISTS} lists or maps"
            )));
        }
        if children > 0 {
            self.open.push((i64::from(children), repeated));
            self.lists = lists;
        }
        while let Some(&(0, repeated)) = self.open.last() {
            self.open.pop();
            self.lists -= usize::from(repeated);
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), WireError> {
        match self.open.is_empty() {
            true => Ok(()),
            false => Err(malformed("fewer schema elements than the groups hold")),
        }
    }
}

/// Thrift compact protocol types.
const STRUCT: u8 = 12;
const LIST: u8 = 9;

/// A reader of Thrift's compact protocol that keeps nothing it does not need.
struct Compact<R> {
    r: R,
}

impl<R: Read> Compact<R> {
    fn byte(&mut self) -> Result<u8, WireError> {
        let mut b = [0u8];
        self.r
            .read_exact(&mut b)
            .map_err(|_| malformed("it ends early"))?;
        Ok(b[0])
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift.min(63);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("a number is too long"))
    }

    fn i32(&mut self) -> Result<i32, WireError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64 ^ -((v & 1) as i64)) as i32)
    }

    fn skip_bytes(&mut self, n: u64) -> Result<(), WireError> {
        let skipped = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink());
        match skipped {
            Ok(k) if k == n => Ok(()),
            _ => Err(malformed("it ends early")),
        }
    }

    /// The next field's id and type; `None` at the struct's end.
    fn field(&mut self, last: &mut i16) -> Result<Option<(i16, u8)>, WireError> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let delta = i16::from(b >> 4);
        *last = match delta {
            0 => self.i32()? as i16,
            d => last.wrapping_add(d),
        };
        Ok(Some((*last, b & 0x0f)))
    }

    /// A list's (or set's) element count and type.
    fn list_header(&mut self) -> Result<(u64, u8), WireError> {
        let b = self.byte()?;
        let count = match b >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        Ok((count, b & 0x0f))
    }

    /// One SchemaElement: its repetition type (field 3) and child count (field 5).
    fn schema_element(&mut self) -> Result<(i32, i32), WireError> {
        let (mut repetition, mut children, mut last) = (0, 0, 0);
        while let Some((id, ty)) = self.field(&mut last)? {
            match (id, ty) {
                (3, 5) => repetition = self.i32()?,
                (5, 5) => children = self.i32()?,
                _ => self.skip(ty, 2)?,
            }
        }
        Ok((repetition, children))
    }

    /// Skips a field's value of type `ty`, `depth` levels down.
    fn skip(&mut self, ty: u8, depth: usize) -> Result<(), WireError> {
        match ty {
            1 | 2 => Ok(()),
            _ => self.skip_value(ty, depth),
        }
    }

    /// Skips a value of type `ty`; booleans take a byte here (inside lists and maps).
    fn skip_value(&mut self, ty: u8, depth: usize) -> Result<(), WireError> {
        if depth > MAX_THRIFT_DEPTH {
            return Err(malformed("it nests too deep"));
        }
        match ty {
            1..=3 => self.skip_bytes(1),
            4..=6 => self.varint().map(drop),
            7 => self.skip_bytes(8),
            8 => {
                let n = self.varint()?;
                self.skip_bytes(n)
            }
            9 | 10 => {
                let (count, elem) = self.list_header()?;
                (0..count).try_for_each(|_| self.skip_value(elem, depth + 1))
            }
            11 => {
                let count = self.varint()?;
                let kinds = if count > 0 { self.byte()? } else { 0 };
                (0..count).try_for_each(|_| {
                    self.skip_value(kinds >> 4, depth + 1)?;
                    self.skip_value(kinds & 0x0f, depth + 1)
                })
            }
            STRUCT => {
                let mut last = 0;
                while let Some((_, ty)) = self.field(&mut last)? {
                    self.skip(ty, depth + 1)?;
                }
                Ok(())
            }
            _ => Err(malformed("an unknown value type")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(format: UploadFormat, max: u64, body: &[u8]) -> Result<(), WireError> {
        UploadScan::new(format, max).feed(body)
    }

    /// The same body fed in pieces of every size gives the same answer.
    fn scan_split(format: UploadFormat, max: u64, body: &[u8]) -> Result<(), WireError> {
        let whole = scan(format, max, body);
        for size in [1, 2, 3, 7, 64] {
            let mut s = UploadScan::new(format, max);
            let split = body.chunks(size).try_for_each(|c| s.feed(c));
            assert_eq!(split, whole, "pieces of {size}");
        }
        whole
    }

    fn nested(depth: usize) -> String {
        format!(
            "{{\"a\":{}1{}}}\n",
            "[".repeat(depth - 1),
            "]".repeat(depth - 1)
        )
    }

    #[test]
    fn ndjson_depth_is_limited_per_line_and_strings_do_not_count() {
        let nd = UploadFormat::Ndjson;
        assert!(scan_split(nd, 1 << 20, nested(MAX_JSON_DEPTH).as_bytes()).is_ok());
        let e = scan_split(nd, 1 << 20, nested(MAX_JSON_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let deep = format!("{}{}", nested(10), nested(100_000));
        let e = scan_split(nd, 1 << 30, deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        // Brackets in strings, escaped quotes and backslashes do not fool it.
        let strings = format!(
            "{{\"a\":\"{}\\\"{}\",\"b\":\"\\\\\"}}\n",
            "[".repeat(100),
            "{".repeat(100)
        );
        assert!(scan_split(nd, 1 << 20, strings.as_bytes()).is_ok());
        let fooled = format!("{{\"a\":\"\\\\\"{}", "[".repeat(100));
        assert!(scan_split(nd, 1 << 20, fooled.as_bytes()).is_err());
        // Many shallow lines are fine: depth comes back to 0 at each line's end.
        let many = nested(MAX_JSON_DEPTH).repeat(1000);
        assert!(scan_split(nd, 1 << 20, many.as_bytes()).is_ok());
    }

    #[test]
    fn what_no_json_holds_is_refused() {
        for body in [
            "{\"a\":\"x\ny\"}\n",
            "{\"a\":\"x\\\ny\"}\n",
            "{\"a\":1} /* \" */\n",
            "{'a':1}\n",
        ] {
            for format in [UploadFormat::Ndjson, UploadFormat::GeoJson] {
                assert!(
                    scan_split(format, 1 << 20, body.as_bytes()).is_err(),
                    "{body}"
                );
            }
        }
        // An apostrophe or a slash inside a string is fine.
        let ok = "{\"a\":\"O'Brien/2\"}\n";
        assert!(scan_split(UploadFormat::Ndjson, 1 << 20, ok.as_bytes()).is_ok());
    }

    #[test]
    fn ndjson_lines_are_limited() {
        let line = format!("{{\"a\":\"{}\"}}", "x".repeat(92));
        assert_eq!(line.len(), 100);
        let body = format!("{line}\n{line}\n{line}");
        assert!(scan_split(UploadFormat::Ndjson, 100, body.as_bytes()).is_ok());
        let longer = format!("{line}\n{line}x\n");
        let e = scan_split(UploadFormat::Ndjson, 100, longer.as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("line 2 is longer than 100 bytes"),
            "{e}"
        );
    }

    #[test]
    fn geojson_depth_and_features_are_limited() {
        let feature = |n: usize| {
            format!(
                "{{\"type\":\"Feature\",\"properties\":{{\"n\":\"{}\"}},\"geometry\":{{\"type\":\"Point\",\"coordinates\":[1,2]}}}}",
                "x".repeat(n)
            )
        };
        let size = feature(0).len() as u64;
        let collection = |features: &[String]| {
            format!(
                "{{\"type\":\"FeatureCollection\",\"features\":[\n{}\n]}}",
                features.join(",\n")
            )
        };
        let gj = UploadFormat::GeoJson;
        // An element is what lies between its separators: the feature and a line break or two.
        let limit = size + 2;
        let body = collection(&vec![feature(0); 100]);
        assert!(scan_split(gj, limit, body.as_bytes()).is_ok());
        let body = collection(&[feature(0), feature(3), feature(0)]);
        let e = scan_split(gj, limit, body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        // The collection as a whole is no record.
        let body = collection(&vec![feature(0); 1000]);
        assert!(scan_split(gj, limit, body.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(scan_split(gj, 1 << 30, deep.as_bytes()).is_err());
        let at_limit = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(scan_split(gj, 1 << 30, at_limit.as_bytes()).is_ok());
        // GeoJSON lines: a line may be long as a whole, its parts are each bounded.
        let lines = format!("{}\n{}\n", feature(0), feature(0));
        assert!(scan_split(gj, 60, lines.as_bytes()).is_ok());
        let lines = format!("{}\n{}\n", feature(0), feature(60));
        assert!(scan_split(gj, 60, lines.as_bytes()).is_err());
    }

    #[test]
    fn csv_records_are_limited_and_quoted_line_breaks_belong_to_them() {
        let csv = UploadFormat::Csv;
        let body = "id,text\n1,\"a\nb\nc\"\n2,\"say \"\"hi\"\"\"\n";
        assert!(scan_split(csv, 14, body.as_bytes()).is_ok());
        let e = scan_split(csv, 13, body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("record 3"), "{e}");
        let e = scan_split(csv, 8, body.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("record 2"), "{e}");
        // Quoted line breaks do not end the record: a long quoted field is one record.
        let long = format!("id,text\n1,\"{}\"\n", "ab\n".repeat(100));
        assert!(scan_split(csv, 100, long.as_bytes()).is_err());
        assert!(scan_split(csv, 400, long.as_bytes()).is_ok());
        // Parquet is checked by its footer, not while it streams.
        assert!(scan_split(UploadFormat::Parquet, 1, &[b'['; 1000]).is_ok());
    }

    /// JSON nested `depth` levels, arrays and objects as `shape`'s bits say, with strings
    /// that hold brackets, quotes and backslashes (escaped) at every level.
    fn shaped(depth: usize, shape: u64) -> String {
        let (mut open, mut close) = (String::new(), Vec::new());
        for level in 0..depth {
            let text = ["\"[\"", "\"\\\"{\"", "\"\\\\\"", "\"]}\""][level % 4];
            if shape >> (level % 64) & 1 == 1 {
                open.push_str(&format!("[{text},"));
                close.push(']');
            } else {
                open.push_str(&format!("{{{text}:"));
                close.push('}');
            }
        }
        close.reverse();
        format!("{open}1{}", close.into_iter().collect::<String>())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256, ..proptest::prelude::ProptestConfig::default()
        })]

        /// Valid JSON (serde_json agrees) is refused exactly when it nests deeper than the
        /// limit, however it is split.
        #[test]
        fn depth_is_judged_exactly_on_valid_json(
            depth in 1usize..100,
            shape in proptest::prelude::any::<u64>(),
            piece in 1usize..50,
        ) {
            let line = format!("{}\n", shaped(depth, shape));
            let parsed: Result<serde_json::Value, _> = serde_json::from_str(&line);
            proptest::prop_assert!(parsed.is_ok(), "{}", line);
            for format in [UploadFormat::Ndjson, UploadFormat::GeoJson] {
                let mut s = UploadScan::new(format, 1 << 20);
                let judged = line.as_bytes().chunks(piece).try_for_each(|c| s.feed(c));
                proptest::prop_assert_eq!(judged.is_ok(), depth <= MAX_JSON_DEPTH, "{}", line);
            }
        }
    }

    /// A Thrift compact writer for footers made by hand.
    #[derive(Default)]
    struct W(Vec<u8>);

    impl W {
        fn varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
        }
        fn i32_field(&mut self, delta: u8, v: i32) {
            self.0.push(delta << 4 | 5);
            self.varint(((v << 1) ^ (v >> 31)) as u32 as u64);
        }
        fn element(&mut self, repetition: i32, children: Option<i32>) {
            self.i32_field(3, repetition);
            self.0.push(1 << 4 | 8); // name (field 4)
            self.varint(1);
            self.0.push(b'c');
            if let Some(n) = children {
                self.i32_field(1, n);
            }
            self.0.push(0);
        }
        /// A footer: version, the schema (elements as (repetition, children)), num_rows,
        /// an empty row_groups list and a created_by string.
        fn footer(elements: &[(i32, Option<i32>)]) -> Vec<u8> {
            let mut w = W::default();
            w.i32_field(1, 1);
            w.0.push(1 << 4 | LIST);
            if elements.len() < 15 {
                w.0.push((elements.len() as u8) << 4 | STRUCT);
            } else {
                w.0.push(0xf0 | STRUCT);
                w.varint(elements.len() as u64);
            }
            for &(r, c) in elements {
                w.element(r, c);
            }
            w.0.push(1 << 4 | 6);
            w.varint(0);
            w.0.extend([1 << 4 | LIST, STRUCT]);
            w.0.extend([2 << 4 | 8, 2, b'm', b'e']);
            w.0.push(0);
            w.0
        }
    }

    /// A column of `lists` nested lists (three-level form) around `structs` nested structs.
    fn column(lists: usize, structs: usize) -> Vec<(i32, Option<i32>)> {
        let mut v = vec![(0, Some(1))];
        for _ in 0..lists {
            v.extend([(1, Some(1)), (2, Some(1))]);
        }
        for _ in 0..structs {
            v.push((1, Some(1)));
        }
        v.push((1, None));
        v
    }

    #[test]
    fn parquet_schemas_are_bounded() {
        let check =
            |elements: &[(i32, Option<i32>)]| check_parquet_footer(&W::footer(elements)[..]);
        assert!(check(&column(0, MAX_PARQUET_DEPTH - 1)).is_ok());
        assert!(check(&column(0, MAX_PARQUET_DEPTH)).is_err());
        assert!(check(&column(MAX_PARQUET_LISTS, 0)).is_ok());
        let e = check(&column(MAX_PARQUET_LISTS + 1, 0)).unwrap_err();
        assert!(e.to_string().contains("lists"), "{e}");
        assert!(check(&column(2000, 0)).is_err());
        // Siblings do not add up: 3 columns of 8 lists each, then a flat one.
        let mut wide = vec![(0, Some(4))];
        for _ in 0..3 {
            wide.extend(column(MAX_PARQUET_LISTS, 2).into_iter().skip(1));
        }
        wide.push((1, None));
        assert!(check(&wide).is_ok());
        // Child counts that do not add up are refused.
        assert!(check(&[(0, Some(2)), (1, None)]).is_err());
        assert!(check(&[(0, Some(1)), (1, None), (1, None)]).is_err());
        assert!(check(&[]).is_ok());
        // Cut short, or garbage: refused, never a panic.
        let footer = W::footer(&column(3, 3));
        for cut in 0..footer.len() {
            assert!(
                check_parquet_footer(&footer[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        for bad in [
            &[0x1c; 10_000][..],
            &[0x19; 10_000],
            &[0xff; 64],
            &[0x1b, 0xff],
        ] {
            assert!(check_parquet_footer(bad).is_err());
        }
    }
}
