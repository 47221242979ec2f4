//! Wire types: everything a client sends or receives, validated at the edge.
//!
//! Requests are parsed with simd-json into typed values ([`TenantId`], [`QueryRequest`]);
//! nothing past this module sees raw client input. Responses are built by [`lines`].
//!
//! Invariants:
//! - This module is the bottom layer: it imports nothing else from the crate, so every layer
//!   above may use its types. Its errors are [`WireError`]s, which the gateway's error type
//!   takes in (`crate::error`).
//! - A [`TenantId`] always matches `[a-z0-9_-]{1,64}` (so it is a safe file name); a
//!   [`QueryRequest`] always has a non-empty `sql` and `chunk_rows` within bounds; a
//!   [`TableSet`] holds only plain identifiers.

pub mod admin;
pub mod datasets;
pub mod geojson;
pub mod json;
pub mod lines;
pub mod mosaic;
pub mod pg;
pub mod pg_catalog;
mod tables;
pub mod upload_scan;

use std::fmt;

use simd_json::{BorrowedValue, StaticNode};

pub use pg::PgColumns;
pub use tables::TableSet;

/// Client input that does not make a valid request: each variant is one client-visible code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid tenant name: use 1 to 64 of a-z, 0-9, '_' and '-'")]
    InvalidTenant,
    #[error("{0}")]
    InvalidParams(String),
    /// An upload's bytes that DuckDB must not read (nested too deep, a record too long).
    #[error("{0}")]
    InvalidUpload(String),
}

/// A value to bind to one of a statement's parameters, as the client sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Text(String),
}

/// The largest `chunk_rows` a client may ask for.
pub const MAX_CHUNK_ROWS: usize = 100_000;

/// The deepest JSON nesting accepted. simd-json builds (and drops) values recursively, so
/// deeper input would overflow a worker's stack: it is refused before parsing.
pub const MAX_JSON_DEPTH: usize = 64;

/// Whether `bytes` nests arrays/objects deeper than `max` (strings are skipped, escapes too).
pub(crate) fn too_deep(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses JSON with simd-json after refusing input nested deeper than [`MAX_JSON_DEPTH`].
fn parse_json(bytes: &mut [u8]) -> Result<BorrowedValue<'_>, String> {
    if too_deep(bytes, MAX_JSON_DEPTH) {
        return Err(format!("nested deeper than {MAX_JSON_DEPTH} levels"));
    }
    simd_json::to_borrowed_value(bytes).map_err(|e| e.to_string())
}

/// What a client asks of `POST /v1/{tenant}/tokens` (an empty body asks for the defaults).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Seconds the token lives (default `token_ttl_secs`, at most `token_max_ttl_secs`).
    pub ttl_secs: Option<u64>,
    /// The only tables the token's queries may read (`table` or `schema.table`).
    pub tables: Option<Vec<String>>,
}

impl TokenRequest {
    pub fn from_json(body: &mut [u8]) -> Result<Self, WireError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        if too_deep(body, MAX_JSON_DEPTH) {
            return Err(WireError::InvalidJson(format!(
                "nested deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        simd_json::serde::from_slice(body).map_err(|e| WireError::InvalidRequest(e.to_string()))
    }
}

/// The answer of `POST /v1/{tenant}/tokens`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedToken {
    pub token: String,
    pub tenant: String,
    /// Unix seconds.
    pub expires_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
}

/// A validated tenant name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    /// Names that cannot be tenants: `admin` is the admin routes' (`/v1/admin/…`).
    /// `admin` (the admin routes) and `mosaic` (the catalog of every tenant's scratch space,
    /// which must not be a tenant database's own name).
    pub const RESERVED: &'static [&'static str] = &["admin", mosaic::SCHEMA];

    pub fn parse(s: &str) -> Result<Self, WireError> {
        let ok = !Self::RESERVED.contains(&s)
            && !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_string()))
        } else {
            Err(WireError::InvalidTenant)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a result is laid out on the wire (the request's `format`, or its `Accept` header).
/// NDJSON is the protocol of `docs/PROTOCOL.md`; each format is one encoder in
/// `crate::encode`, which makes every decision about a format (its names and media types are
/// here, with the request that names them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// `metadata`, `data`…, `end` | `error` lines.
    #[default]
    Ndjson,
    /// An Arrow IPC stream: the schema, record batches, the end-of-stream marker.
    Arrow,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row (column names as keys), nothing else.
    Jsonl,
    /// PostgreSQL's backend messages (`RowDescription`, `DataRow`s, `CommandComplete` or
    /// `ErrorResponse`): only the PostgreSQL endpoint asks for it, never a client by name.
    Pg(PgColumns),
}

impl Format {
    /// `ndjson`, `arrow`, `csv` or `jsonl`.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        match s {
            "ndjson" => Ok(Self::Ndjson),
            "arrow" => Ok(Self::Arrow),
            "csv" => Ok(Self::Csv),
            "jsonl" => Ok(Self::Jsonl),
            other => Err(invalid(format!(
                "`format` must be ndjson, arrow, csv or jsonl, not `{other}`"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Arrow => "arrow",
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Pg(_) => "pg",
        }
    }

    /// The media type of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Arrow => ARROW_STREAM,
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Jsonl => "application/jsonl; charset=utf-8",
            Self::Pg(_) => "application/octet-stream",
        }
    }

    /// The format an `Accept` header asks for: the first media type it names (with q > 0)
    /// that is one of the formats' (`application/vnd.apache.arrow.stream`, `text/csv`,
    /// `application/jsonl`, `application/x-ndjson`); `None` for anything else (`*/*`).
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                return None;
            }
            match media.as_str() {
                ARROW_STREAM => Some(Self::Arrow),
                "text/csv" => Some(Self::Csv),
                "application/jsonl" | "application/jsonlines" => Some(Self::Jsonl),
                "application/x-ndjson" => Some(Self::Ndjson),
                _ => None,
            }
        })
    }
}

/// The Arrow IPC stream media type.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// How GEOMETRY values are written in rows (the request's `geometry` option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum GeometryFormat {
    /// A GeoJSON geometry object (`{"type":"Point","coordinates":[1.0,2.0]}`).
    #[default]
    GeoJson,
    /// A WKT string (`"POINT (1 2)"`), as `ST_AsText` writes it.
    Wkt,
    /// The WKB bytes, base64 (standard alphabet, padded), like BLOB values.
    Wkb,
}

impl GeometryFormat {
    /// `geojson`, `wkt` or `wkb`.
    pub fn parse(s: &str) -> Result<Self, WireError> {
        match s {
            "geojson" => Ok(Self::GeoJson),
            "wkt" => Ok(Self::Wkt),
            "wkb" => Ok(Self::Wkb),
            other => Err(invalid(format!(
                "`geometry` must be geojson, wkt or wkb, not `{other}`"
            ))),
        }
    }
}

/// A validated query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub sql: String,
    pub params: Vec<Param>,
    /// Rows per `data` line; `None` takes the server's default.
    pub chunk_rows: Option<usize>,
    /// How GEOMETRY values are written.
    pub geometry: GeometryFormat,
    /// Send `progress` lines while DuckDB works.
    pub progress: bool,
    /// The result format the request names (`None`: the transport's default or `Accept`).
    pub format: Option<Format>,
}

fn invalid(msg: impl Into<String>) -> WireError {
    WireError::InvalidRequest(msg.into())
}

impl QueryRequest {
    /// Parses a JSON body `{"sql": "...", "params": [...], "chunk_rows": 1000}`.
    pub fn from_json(body: &mut [u8]) -> Result<Self, WireError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(WireError::InvalidJson("the body is empty".into()));
        }
        let value = parse_json(body).map_err(WireError::InvalidJson)?;
        let BorrowedValue::Object(obj) = &value else {
            return Err(invalid("the body must be a JSON object"));
        };
        for key in obj.keys() {
            if !matches!(
                key.as_ref(),
                "sql" | "params" | "chunk_rows" | "geometry" | "progress" | "format"
            ) {
                return Err(invalid(format!(
                    "unknown field `{key}` (expected sql, params, chunk_rows, geometry, progress, format)"
                )));
            }
        }
        let sql = match obj.get("sql") {
            Some(BorrowedValue::String(s)) => s.to_string(),
            Some(_) => return Err(invalid("`sql` must be a string")),
            None => return Err(invalid("missing field `sql`")),
        };
        let params = match obj.get("params") {
            None | Some(BorrowedValue::Static(StaticNode::Null)) => Vec::new(),
            Some(BorrowedValue::Array(items)) => params_from(items)?,
            Some(_) => return Err(invalid("`params` must be an array")),
        };
        let chunk_rows = match obj.get("chunk_rows") {
            None | Some(BorrowedValue::Static(StaticNode::Null)) => None,
            Some(BorrowedValue::Static(StaticNode::I64(n))) => {
                Some(chunk_rows_in_range(*n as i128)?)
            }
            Some(BorrowedValue::Static(StaticNode::U64(n))) => {
                Some(chunk_rows_in_range(*n as i128)?)
            }
            Some(_) => return Err(invalid("`chunk_rows` must be an integer")),
        };
        let progress = progress_field(obj.get("progress"))?;
        Ok(Self::new(sql, params, chunk_rows)?
            .with_geometry(geometry_field(obj.get("geometry"))?)?
            .with_format(format_field(obj.get("format"))?)?
            .with_progress(progress))
    }

    /// Sets the `format` from its text (`None`: not named).
    pub fn with_format(mut self, text: Option<&str>) -> Result<Self, WireError> {
        if let Some(t) = text {
            self.format = Some(Format::parse(t)?);
        }
        Ok(self)
    }

    /// Asks for `progress` lines (or not).
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// The `progress` query parameter: `1`/`true` or `0`/`false`.
    pub fn with_progress_text(self, text: Option<&str>) -> Result<Self, WireError> {
        match text.map(str::trim) {
            None | Some("0" | "false") => Ok(self.with_progress(false)),
            Some("1" | "true") => Ok(self.with_progress(true)),
            Some(_) => Err(invalid("`progress` must be true or false")),
        }
    }

    /// Sets the `geometry` option from its text (`None`: the default, GeoJSON).
    pub fn with_geometry(mut self, text: Option<&str>) -> Result<Self, WireError> {
        if let Some(t) = text {
            self.geometry = GeometryFormat::parse(t)?;
        }
        Ok(self)
    }

    /// A request of just this SQL (the defaults for everything else).
    pub fn of_sql(sql: String) -> Result<Self, WireError> {
        Self::new(sql, Vec::new(), None)
    }

    /// Builds a request from URL query parameters (`sql`, `params` as a JSON array, `chunk_rows`).
    pub fn from_query_string(
        sql: Option<String>,
        params: Option<String>,
        chunk_rows_text: Option<String>,
    ) -> Result<Self, WireError> {
        let sql = sql.ok_or_else(|| invalid("missing query parameter `sql`"))?;
        let params = match params {
            None => Vec::new(),
            Some(text) => {
                let mut bytes = text.into_bytes();
                let value = parse_json(&mut bytes)
                    .map_err(|e| WireError::InvalidJson(format!("`params`: {e}")))?;
                match value {
                    BorrowedValue::Array(items) => params_from(&items)?,
                    _ => return Err(invalid("`params` must be a JSON array")),
                }
            }
        };
        let chunk_rows = match chunk_rows_text {
            None => None,
            Some(t) => Some(chunk_rows_in_range(
                t.trim()
                    .parse::<i128>()
                    .map_err(|_| invalid("`chunk_rows` must be an integer"))?,
            )?),
        };
        Self::new(sql, params, chunk_rows)
    }

    fn new(sql: String, params: Vec<Param>, chunk_rows: Option<usize>) -> Result<Self, WireError> {
        if sql.trim().is_empty() {
            return Err(invalid("`sql` is empty"));
        }
        if sql.contains('\0') {
            return Err(invalid("`sql` contains a NUL character"));
        }
        Ok(Self {
            sql,
            params,
            chunk_rows,
            geometry: GeometryFormat::default(),
            progress: false,
            format: None,
        })
    }
}

/// The `progress` field: a boolean (absent or null: false).
fn progress_field(v: Option<&BorrowedValue<'_>>) -> Result<bool, WireError> {
    match v {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => Ok(false),
        Some(BorrowedValue::Static(StaticNode::Bool(b))) => Ok(*b),
        Some(_) => Err(invalid("`progress` must be true or false")),
    }
}

/// The text of a `format` field (absent or null: none).
fn format_field<'v>(v: Option<&'v BorrowedValue<'v>>) -> Result<Option<&'v str>, WireError> {
    match v {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => Ok(None),
        Some(BorrowedValue::String(s)) => Ok(Some(s.as_ref())),
        Some(_) => Err(invalid("`format` must be a string")),
    }
}

/// The text of a `geometry` field (absent or null: none).
fn geometry_field<'v>(v: Option<&'v BorrowedValue<'v>>) -> Result<Option<&'v str>, WireError> {
    match v {
        None | Some(BorrowedValue::Static(StaticNode::Null)) => Ok(None),
        Some(BorrowedValue::String(s)) => Ok(Some(s.as_ref())),
        Some(_) => Err(invalid("`geometry` must be a string")),
    }
}

fn chunk_rows_in_range(n: i128) -> Result<usize, WireError> {
    if (1..=MAX_CHUNK_ROWS as i128).contains(&n) {
        Ok(n as usize)
    } else {
        Err(invalid(format!(
            "`chunk_rows` must be between 1 and {MAX_CHUNK_ROWS}"
        )))
    }
}

/// JSON params to bind values. Arrays and objects are bound as their JSON text, which DuckDB
/// casts to the parameter's type (`'[1,2]'` to `INTEGER[]`, for instance).
fn params_from(items: &[BorrowedValue<'_>]) -> Result<Vec<Param>, WireError> {
    use simd_json::prelude::Writable;
    items
        .iter()
        .map(|v| {
            Ok(match v {
                BorrowedValue::Static(StaticNode::Null) => Param::Null,
                BorrowedValue::Static(StaticNode::Bool(b)) => Param::Bool(*b),
                BorrowedValue::Static(StaticNode::I64(n)) => Param::Int(*n),
                // simd-json reads every non-negative integer as u64: bind those that fit as
                // BIGINT, like negative ones, so that `?` infers the same type either way.
                BorrowedValue::Static(StaticNode::U64(n)) => match i64::try_from(*n) {
                    Ok(i) => Param::Int(i),
                    Err(_) => Param::UInt(*n),
                },
                BorrowedValue::Static(StaticNode::F64(f)) => Param::Float(*f),
                BorrowedValue::String(s) => {
                    if s.contains('\0') {
                        return Err(WireError::InvalidParams(
                            "a parameter contains a NUL character".into(),
                        ));
                    }
                    Param::Text(s.to_string())
                }
                other => Param::Text(other.encode()),
            })
        })
        .collect()
}

/// The longest query `id` a WebSocket client may choose.
pub const MAX_QUERY_ID_LEN: usize = 128;

/// A message from a WebSocket client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Query {
        id: String,
        request: QueryRequest,
    },
    Cancel {
        id: String,
    },
    /// A live query: its result now, then again whenever it would differ.
    Subscribe {
        id: String,
        request: QueryRequest,
        /// Re-run this often too (for data that changes outside the gateway).
        interval_ms: Option<u64>,
        /// The version of the result the client holds (resume after a reconnect).
        version: Option<u64>,
    },
    Unsubscribe {
        id: String,
    },
    Ping,
}

/// A message that could not be understood: what is wrong, and its `id` if it had one.
#[derive(Debug, Clone, PartialEq)]
pub struct BadMessage {
    pub id: Option<String>,
    pub reason: String,
}

impl ClientMessage {
    /// Parses a text frame: `{"type":"query","id":…,"sql":…,"params":[…],"chunk_rows":…}`,
    /// `{"type":"cancel","id":…}` or `{"type":"ping"}`.
    pub fn parse(text: &mut [u8]) -> Result<Self, BadMessage> {
        let bad = |id: Option<&str>, reason: String| BadMessage {
            id: id.map(str::to_string),
            reason,
        };
        let value = parse_json(text).map_err(|e| bad(None, format!("invalid JSON: {e}")))?;
        let BorrowedValue::Object(obj) = &value else {
            return Err(bad(None, "a message must be a JSON object".into()));
        };
        let id = match obj.get("id") {
            None => None,
            Some(BorrowedValue::String(s)) if !s.is_empty() && s.len() <= MAX_QUERY_ID_LEN => {
                Some(s.as_ref())
            }
            Some(_) => {
                return Err(bad(
                    None,
                    format!("`id` must be a string of 1 to {MAX_QUERY_ID_LEN} characters"),
                ))
            }
        };
        let kind = match obj.get("type") {
            Some(BorrowedValue::String(s)) => s.as_ref(),
            Some(_) => return Err(bad(id, "`type` must be a string".into())),
            None => return Err(bad(id, "missing field `type`".into())),
        };
        let need_id = || id.ok_or_else(|| bad(None, format!("missing field `id` in a {kind}")));
        match kind {
            "ping" => Ok(Self::Ping),
            "cancel" => Ok(Self::Cancel {
                id: need_id()?.to_string(),
            }),
            "unsubscribe" => Ok(Self::Unsubscribe {
                id: need_id()?.to_string(),
            }),
            "query" | "subscribe" => {
                let id = need_id()?;
                let live = kind == "subscribe";
                for key in obj.keys() {
                    let known = matches!(
                        key.as_ref(),
                        "type" | "id" | "sql" | "params" | "chunk_rows" | "geometry"
                    ) || matches!(key.as_ref(), "progress" | "format")
                        || (live && matches!(key.as_ref(), "interval_ms" | "version"));
                    if !known {
                        return Err(bad(Some(id), format!("unknown field `{key}`")));
                    }
                }
                let number = |key: &str| match obj.get(key) {
                    None | Some(BorrowedValue::Static(StaticNode::Null)) => Ok(None),
                    Some(BorrowedValue::Static(StaticNode::U64(n))) => Ok(Some(*n)),
                    Some(BorrowedValue::Static(StaticNode::I64(n))) if *n >= 0 => Ok(Some(*n as u64)),
                    Some(_) => Err(bad(Some(id), format!("`{key}` must be a non-negative integer"))),
                };
                let (interval_ms, version) = (number("interval_ms")?, number("version")?);
                let sql = match obj.get("sql") {
                    Some(BorrowedValue::String(s)) => s.to_string(),
                    Some(_) => return Err(bad(Some(id), "`sql` must be a string".into())),
                    None => return Err(bad(Some(id), "missing field `sql`".into())),
                };
                let params = match obj.get("params") {
                    None | Some(BorrowedValue::Static(StaticNode::Null)) => Vec::new(),
                    Some(BorrowedValue::Array(items)) => {
                        params_from(items).map_err(|e| bad(Some(id), e.to_string()))?
                    }
                    Some(_) => return Err(bad(Some(id), "`params` must be an array".into())),
                };
                let chunk_rows = match obj.get("chunk_rows") {
                    None | Some(BorrowedValue::Static(StaticNode::Null)) => None,
                    Some(BorrowedValue::Static(StaticNode::I64(n))) => Some(*n as i128),
                    Some(BorrowedValue::Static(StaticNode::U64(n))) => Some(*n as i128),
                    Some(_) => return Err(bad(Some(id), "`chunk_rows` must be an integer".into())),
                };
                let chunk_rows = chunk_rows
                    .map(chunk_rows_in_range)
                    .transpose()
                    .map_err(|e| bad(Some(id), e.to_string()))?;
                let request = QueryRequest::new(sql, params, chunk_rows)
                    .and_then(|r| r.with_geometry(geometry_field(obj.get("geometry"))?))
                    .and_then(|r| r.with_format(format_field(obj.get("format"))?))
                    .and_then(|r| Ok(r.with_progress(progress_field(obj.get("progress"))?)))
                    .map_err(|e| bad(Some(id), e.to_string()))?;
                if live {
                    return Ok(Self::Subscribe {
                        id: id.to_string(),
                        request,
                        interval_ms,
                        version,
                    });
                }
                Ok(Self::Query {
                    id: id.to_string(),
                    request,
                })
            }
            other => Err(bad(
                id,
                format!(
                    "unknown message type `{other}` (expected query, cancel, subscribe, unsubscribe, ping)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<QueryRequest, WireError> {
        QueryRequest::from_json(&mut s.as_bytes().to_vec())
    }

    fn code(e: WireError) -> &'static str {
        match e {
            WireError::InvalidJson(_) => "invalid_json",
            WireError::InvalidRequest(_) => "invalid_request",
            WireError::InvalidTenant => "invalid_tenant",
            WireError::InvalidParams(_) => "invalid_params",
            WireError::InvalidUpload(_) => "invalid_upload",
        }
    }

    #[test]
    fn tenant_names_are_validated() {
        assert!(TenantId::parse("demo_1-x").is_ok());
        for bad in [
            "",
            "Demo",
            "../x",
            "a/b",
            "a.duckdb",
            "admin",
            &"x".repeat(65),
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_are_parsed_and_checked() {
        let q =
            parse(r#"{"sql":"SELECT ?","params":[1,-2,1.5,"a",null,true,[1,2]],"chunk_rows":10}"#)
                .unwrap();
        assert_eq!(q.chunk_rows, Some(10));
        assert_eq!(
            q.params,
            vec![
                Param::Int(1),
                Param::Int(-2),
                Param::Float(1.5),
                Param::Text("a".into()),
                Param::Null,
                Param::Bool(true),
                Param::Text("[1,2]".into())
            ]
        );
        assert_eq!(code(parse("{").unwrap_err()), "invalid_json");
        assert_eq!(code(parse("{}").unwrap_err()), "invalid_request");
        assert_eq!(code(parse(r#"{"sql":1}"#).unwrap_err()), "invalid_request");
        assert_eq!(
            code(parse(r#"{"sql":"x","chunk_rows":0}"#).unwrap_err()),
            "invalid_request"
        );
        assert_eq!(
            code(parse(r#"{"sql":"x","params":{}}"#).unwrap_err()),
            "invalid_request"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(code(parse(&deep).unwrap_err()), "invalid_json");
        let quoted = format!(r#"{{"sql": "SELECT '{}'"}}"#, "[".repeat(1000));
        assert!(
            parse(&quoted).is_ok(),
            "brackets inside strings do not count"
        );
        let mut msg = format!(
            r#"{{"type":"ping","x":{}{}}}"#,
            "{\"a\":".repeat(5000),
            "}".repeat(5000)
        )
        .into_bytes();
        assert!(ClientMessage::parse(&mut msg).is_err());
    }

    #[test]
    fn client_messages_are_parsed_and_checked() {
        let p = |s: &str| ClientMessage::parse(&mut s.as_bytes().to_vec());
        assert_eq!(p(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            p(r#"{"type":"cancel","id":"a"}"#),
            Ok(ClientMessage::Cancel { id: "a".into() })
        );
        match p(r#"{"type":"query","id":"q","sql":"SELECT 1","chunk_rows":5}"#) {
            Ok(ClientMessage::Query { id, request }) => {
                assert_eq!(id, "q");
                assert_eq!(request.chunk_rows, Some(5));
            }
            other => panic!("{other:?}"),
        }
        let e = p(r#"{"type":"query","id":"q"}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("q"));
        assert!(e.reason.contains("sql"));
        assert!(p(r#"{"type":"query","sql":"x"}"#)
            .unwrap_err()
            .reason
            .contains("id"));
        assert!(p(r#"{"type":"nope"}"#)
            .unwrap_err()
            .reason
            .contains("unknown"));
        assert!(p("[1]").is_err());
        assert!(p("{").unwrap_err().reason.contains("JSON"));
        assert!(p(r#"{"type":"query","id":"q","sql":1}"#).is_err());
    }
}
