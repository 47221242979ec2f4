//! `COPY … TO STDOUT`'s data: a query's rows (PostgreSQL `DataRow`s, text or binary) rewritten
//! as COPY's text, CSV or binary format, one row per `CopyData` message as PostgreSQL sends
//! them (binary's signature with the first row, its trailer alone).
//!
//! Invariants:
//! - Text: fields split by the delimiter (tab), `\N` for NULL, backslash, delimiter, CR and LF
//!   escaped. CSV: fields quoted when they hold the delimiter, a quote, CR or LF, or are empty
//!   strings (NULL is an empty field); quotes doubled. Binary: `PGCOPY` header, each row its
//!   field count and `DataRow` fields as they are, the `-1` trailer.

use bytes::Bytes;
use pgwire::messages::data::DataRow;

use super::statement::{CopyFormat, CopyOut};

/// The COPY data being written.
pub struct Writer {
    format: CopyFormat,
    header: bool,
    delimiter: u8,
    null: Vec<u8>,
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(copy: &CopyOut) -> Self {
        let csv = copy.format == CopyFormat::Csv;
        let delimiter = copy.delimiter.unwrap_or(if csv { b',' } else { b'\t' });
        let null = copy
            .null
            .clone()
            .unwrap_or_else(|| if csv { String::new() } else { "\\N".into() });
        Self {
            format: copy.format,
            header: copy.header,
            delimiter,
            null: null.into_bytes(),
            buf: Vec::new(),
        }
    }

    /// What comes before the rows: binary COPY's signature, or CSV's header line.
    pub fn start(&mut self, names: &[String]) {
        match self.format {
            CopyFormat::Binary => {
                self.buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
                self.buf.extend_from_slice(&0i32.to_be_bytes());
                self.buf.extend_from_slice(&0i32.to_be_bytes());
            }
            _ if self.header => {
                let fields: Vec<Option<&[u8]>> = names.iter().map(|n| Some(n.as_bytes())).collect();
                self.line(&fields);
            }
            _ => {}
        }
    }

    /// One row.
    pub fn row(&mut self, row: &DataRow) {
        if self.format == CopyFormat::Binary {
            self.buf.extend_from_slice(&row.field_count.to_be_bytes());
            self.buf.extend_from_slice(&row.data);
            return;
        }
        let fields = fields(&row.data);
        self.line(&fields);
    }

    /// What comes after the rows: binary COPY's trailer.
    pub fn finish(&mut self) {
        if self.format == CopyFormat::Binary {
            self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        }
    }

    pub fn has_data(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The gathered bytes, for one `CopyData`.
    pub fn take(&mut self) -> Bytes {
        let capacity = self.buf.len();
        Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(capacity),
        ))
    }

    fn line(&mut self, fields: &[Option<&[u8]>]) {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.buf.push(self.delimiter);
            }
            match field {
                None => self.buf.extend_from_slice(&self.null),
                Some(v) if self.format == CopyFormat::Csv => {
                    csv_field(&mut self.buf, v, self.delimiter)
                }
                Some(v) => text_field(&mut self.buf, v, self.delimiter),
            }
        }
        self.buf.push(b'\n');
    }
}

/// A `DataRow`'s fields: each a length (-1: NULL) and its bytes.
fn fields(data: &[u8]) -> Vec<Option<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = i32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let end = (at + len as usize).min(data.len());
        out.push(Some(&data[at..end]));
        at = end;
    }
    out
}

fn text_field(out: &mut Vec<u8>, v: &[u8], delimiter: u8) {
    for &b in v {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' if delimiter == b'\t' => out.extend_from_slice(b"\\t"),
            d if d == delimiter => {
                out.push(b'\\');
                out.push(d);
            }
            _ => out.push(b),
        }
    }
}

fn csv_field(out: &mut Vec<u8>, v: &[u8], delimiter: u8) {
    let quote = v.is_empty()
        || v.iter()
            .any(|&b| b == delimiter || matches!(b, b'"' | b'\n' | b'\r'));
    if !quote {
        return out.extend_from_slice(v);
    }
    out.push(b'"');
    for &b in v {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn row(values: &[Option<&str>]) -> DataRow {
        let mut data = BytesMut::new();
        for v in values {
            match v {
                None => data.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(s) => {
                    data.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    data.extend_from_slice(s.as_bytes());
                }
            }
        }
        DataRow::new(data, values.len() as i16)
    }

    fn copy(format: CopyFormat, header: bool) -> CopyOut {
        CopyOut {
            query: String::new(),
            format,
            header,
            delimiter: None,
            null: None,
        }
    }

    #[test]
    fn text_and_csv_escape_as_postgresql_does() {
        let values = [Some("a\tb"), None, Some(""), Some("x,\"y\"\n")];
        let mut text = Writer::new(&copy(CopyFormat::Text, false));
        text.row(&row(&values));
        assert_eq!(&text.take()[..], b"a\\tb\t\\N\t\tx,\"y\"\\n\n");
        let mut csv = Writer::new(&copy(CopyFormat::Csv, true));
        csv.start(&["id".into(), "name".into()]);
        csv.row(&row(&values));
        assert_eq!(&csv.take()[..], b"id,name\na\tb,,\"\",\"x,\"\"y\"\"\n\"\n");
    }

    #[test]
    fn binary_is_pgcopy() {
        let mut bin = Writer::new(&copy(CopyFormat::Binary, false));
        bin.start(&[]);
        bin.row(&row(&[Some("ab")]));
        bin.finish();
        let bytes = bin.take();
        assert!(bytes.starts_with(b"PGCOPY\n\xff\r\n\0"));
        assert_eq!(&bytes[19..], &[0, 1, 0, 0, 0, 2, b'a', b'b', 0xff, 0xff]);
    }
}
