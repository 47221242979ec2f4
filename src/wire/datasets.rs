//! Datasets: the upload request (`PUT /v1/{tenant}/datasets/{name}`), its answer, and the
//! dataset listing.

use serde::Serialize;

use super::{WireError, MAX_CHUNK_ROWS};

/// A dataset's name: a table of the tenant's `main` schema, `[a-z_][a-z0-9_]{0,62}` (so it is
/// a plain identifier, safe to quote into SQL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatasetName(String);

impl DatasetName {
    pub fn parse(s: &str) -> Result<Self, WireError> {
        let mut bytes = s.bytes();
        let ok = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
            && s.len() <= 63
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(WireError::InvalidRequest(
                "a dataset name is 1 to 63 of a-z, 0-9 and '_', not starting with a digit".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an upload's body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadFormat {
    /// Header, delimiter and types sniffed by DuckDB's CSV reader.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Parquet, GeoParquet included (its geometry columns become GEOMETRY).
    Parquet,
    /// A GeoJSON FeatureCollection, or Features (GeoJSON lines), parsed by duckstream
    /// ([`super::geojson`]), never by GDAL.
    GeoJson,
}

impl UploadFormat {
    /// From the `format` query parameter, else the `Content-Type`.
    pub fn parse(format: Option<&str>, content_type: Option<&str>) -> Result<Self, WireError> {
        if let Some(f) = format {
            return match f {
                "csv" => Ok(Self::Csv),
                "ndjson" | "jsonl" => Ok(Self::Ndjson),
                "parquet" | "geoparquet" => Ok(Self::Parquet),
                "geojson" => Ok(Self::GeoJson),
                other => Err(WireError::InvalidRequest(format!(
                    "`format` must be csv, ndjson, parquet or geojson, not `{other}`"
                ))),
            };
        }
        let mime = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        match mime.as_deref() {
            Some("text/csv") => Ok(Self::Csv),
            Some("application/x-ndjson" | "application/jsonl" | "application/json-seq") => {
                Ok(Self::Ndjson)
            }
            Some("application/vnd.apache.parquet" | "application/parquet") => Ok(Self::Parquet),
            Some("application/geo+json") => Ok(Self::GeoJson),
            _ => Err(WireError::InvalidRequest(
                "name the format: ?format=csv|ndjson|parquet|geojson, or a Content-Type \
                 (text/csv, application/x-ndjson, application/vnd.apache.parquet, \
                 application/geo+json)"
                    .into(),
            )),
        }
    }

    /// The spool file's extension (DuckDB's readers look at it).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
            Self::Parquet => "parquet",
            Self::GeoJson => "geojson",
        }
    }
}

/// Whether an upload replaces the dataset or adds to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UploadMode {
    #[default]
    Replace,
    Append,
}

/// A validated upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRequest {
    pub dataset: DatasetName,
    pub format: UploadFormat,
    pub mode: UploadMode,
    /// Bad rows that may be skipped (CSV); 0: any bad row fails the load.
    pub max_bad_rows: u64,
    /// Columns holding WKT text or WKB bytes that become GEOMETRY (GeoJSON's and GeoParquet's
    /// geometries are GEOMETRY already).
    pub geometry_columns: Vec<String>,
}

impl UploadRequest {
    pub fn new(
        dataset: &str,
        format: Option<&str>,
        content_type: Option<&str>,
        mode: Option<&str>,
        max_bad_rows: Option<&str>,
    ) -> Result<Self, WireError> {
        let format = UploadFormat::parse(format, content_type)?;
        let mode = match mode {
            None | Some("replace") => UploadMode::Replace,
            Some("append") => UploadMode::Append,
            Some(other) => {
                return Err(WireError::InvalidRequest(format!(
                    "`mode` must be replace or append, not `{other}`"
                )))
            }
        };
        let max_bad_rows = match max_bad_rows {
            None => 0,
            Some(n) => n
                .parse::<u64>()
                .ok()
                .filter(|&n| n <= MAX_CHUNK_ROWS as u64 * 10_000)
                .ok_or_else(|| {
                    WireError::InvalidRequest("`max_bad_rows` must be a number of rows".into())
                })?,
        };
        if max_bad_rows > 0 && format != UploadFormat::Csv {
            return Err(WireError::InvalidRequest(
                "`max_bad_rows` applies to CSV uploads (other formats are loaded whole or not \
                 at all)"
                    .into(),
            ));
        }
        Ok(Self {
            dataset: DatasetName::parse(dataset)?,
            format,
            mode,
            max_bad_rows,
            geometry_columns: Vec::new(),
        })
    }

    /// Sets the columns to turn into GEOMETRY (comma-separated names, as in the file).
    pub fn with_geometry_columns(mut self, list: Option<&str>) -> Result<Self, WireError> {
        for name in list.unwrap_or_default().split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            if name.len() > 128 || name.contains('"') || name.contains('\0') {
                return Err(WireError::InvalidRequest(format!(
                    "`geometry_columns`: `{name}` is not a column name"
                )));
            }
            self.geometry_columns.push(name.to_string());
        }
        Ok(self)
    }
}

/// A row an upload skipped (`max_bad_rows`), as DuckDB's reader reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedRow {
    /// The line in the uploaded file (1 = the first).
    pub line: u64,
    pub message: String,
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadResult {
    pub dataset: String,
    /// Rows loaded by this upload.
    pub rows: u64,
    /// Rows skipped (at most `max_bad_rows`).
    pub rejected: u64,
    /// The first skipped rows, with their lines and reasons (at most 10).
    pub rejects: Vec<RejectedRow>,
    /// Bytes received (decompressed).
    pub bytes: u64,
    pub elapsed_ms: u64,
    /// The tenant's data version after the write.
    pub version: u64,
}

/// A line of an upload's NDJSON answer (when the client accepts `application/x-ndjson`):
/// `progress` lines while DuckDB loads, then one `result` or `error` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UploadLine {
    Progress {
        phase: &'static str,
        bytes: u64,
        elapsed_ms: u64,
    },
    Result(UploadResult),
    Error {
        code: &'static str,
        message: String,
    },
}

impl UploadLine {
    /// The line, `\n`-terminated.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = simd_json::serde::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// One column of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
}

/// A GEOMETRY column, with its coordinate reference system when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GeometryColumn {
    pub name: String,
    pub crs: Option<String>,
}

/// A dataset, as `GET /v1/{tenant}/datasets` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatasetDetail {
    pub name: String,
    pub rows: u64,
    pub columns: Vec<ColumnInfo>,
    pub geometry_columns: Vec<GeometryColumn>,
    pub data_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_validated() {
        let r = UploadRequest::new("trips", Some("csv"), None, Some("append"), Some("5")).unwrap();
        assert_eq!(
            (r.format, r.mode, r.max_bad_rows),
            (UploadFormat::Csv, UploadMode::Append, 5)
        );
        let r = UploadRequest::new(
            "t",
            None,
            Some("application/geo+json; charset=utf-8"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(r.format, UploadFormat::GeoJson);
        for (name, format, ct, mode, bad) in [
            ("1x", Some("csv"), None, None, None),
            ("Trips", Some("csv"), None, None, None),
            ("a\"b", Some("csv"), None, None, None),
            ("t", None, Some("text/plain"), None, None),
            ("t", Some("xls"), None, None, None),
            ("t", Some("csv"), None, Some("merge"), None),
            ("t", Some("csv"), None, None, Some("-1")),
            ("t", Some("parquet"), None, None, Some("3")),
        ] {
            assert!(
                UploadRequest::new(name, format, ct, mode, bad).is_err(),
                "{name} {format:?}"
            );
        }
    }
}
