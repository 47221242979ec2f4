//! The gateway's error type: one enum, one stable `code` per variant (the variant's name in
//! snake case), and a message that is safe to show a client.
//!
//! Invariants:
//! - Every code a client can see is a variant here: transports never write a code by hand.
//! - `code()` strings are part of the protocol (`docs/PROTOCOL.md`): never rename one.
//! - `client_message()` never contains internal detail for `Internal`/`TenantUnavailable`;
//!   the cause chain goes to the logs only (`log_chain`).
//! - DuckDB's own messages for SQL errors *are* shown: they describe the client's SQL.
//! - No client-visible message names a server path: `client_message()` is the one door to
//!   clients, and it scrubs every absolute path (`scrub_paths`), whatever the variant; the
//!   logs keep the full text.
//! - Nothing here knows HTTP: statuses are mapped at the HTTP edge (`crate::transport::edge`).

use std::error::Error as _;

use crate::duck::DuckError;
use crate::encode::UnsupportedType;
use crate::wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("invalid tenant name: use 1 to 64 of a-z, 0-9, '_' and '-'")]
    InvalidTenant,
    #[error("{0}")]
    Unauthenticated(String),
    #[error("the token has expired: ask for a new one")]
    TokenExpired,
    #[error("{0}")]
    AccessDenied(String),
    #[error("the tenant already has {0} connections open; close one or retry later")]
    TooManyConnections(usize),
    #[error("tenant '{0}' not found")]
    TenantNotFound(String),
    #[error("{0}")]
    InvalidSql(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidParams(String),
    #[error(transparent)]
    UnsupportedType(#[from] UnsupportedType),
    #[error("{0}")]
    QueryFailed(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    OutOfMemory(String),
    #[error("the query was cancelled")]
    Cancelled,
    #[error("the query ran longer than the server's query timeout")]
    Timeout,
    #[error("too many queries are waiting for this tenant; retry later")]
    TooBusy,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the tenant's database could not be opened")]
    TenantUnavailable(#[source] DuckError),
    /// The tenant was deleted while the query waited or ran.
    #[error("the tenant was deleted")]
    TenantDeleted,
    /// A `POST` query with `If-None-Match` naming the result's current ETag (RFC 9110: a
    /// failed precondition on a method other than GET or HEAD is 412).
    #[error("the result has not changed since the ETag given in If-None-Match")]
    PreconditionFailed,
    /// The tenant holds its `max_subscriptions` live subscriptions already.
    #[error("the tenant holds its {0} subscriptions already")]
    TooManySubscriptions(usize),
    /// `DELETE /v1/{tenant}/datasets/{name}` for a table that does not exist.
    #[error("dataset '{0}' not found")]
    DatasetNotFound(String),
    /// An upload DuckDB could not load (a bad row, an unreadable file): DuckDB's message.
    #[error("{0}")]
    InvalidUpload(String),
    /// `POST /v1/admin/tenants` for a name that has a database already.
    #[error("tenant '{0}' exists already")]
    TenantExists(String),
    /// A function of an extension the server loads, but could not (spatial, …).
    #[error("{0}")]
    ExtensionUnavailable(String),
    /// A WebSocket message that could not be understood.
    #[error("{0}")]
    BadMessage(String),
    /// A WebSocket `cancel` for an id with no running query.
    #[error("no running query has this id")]
    UnknownQuery,
    /// A WebSocket `query` whose id is still running on the connection.
    #[error("a query with this id is still running on this connection")]
    DuplicateId,
    /// A WebSocket connection already runs its `queries_per_socket`.
    #[error("this connection already runs {0} queries; wait for one to end")]
    TooManyQueries(usize),
    /// The store behind a tenant (a lake's catalog or object store) cannot be reached now;
    /// the client retries. The cause goes to the logs only.
    #[error("the tenant's storage cannot be reached now; retry later")]
    StorageUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Another write to the tenant (on this or another replica) held its write lock longer
    /// than the server waits.
    #[error("another write to this tenant is in progress; retry later")]
    WriteBusy,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl GatewayError {
    /// Every code, for metrics that must show each from the start.
    pub const CODES: &'static [&'static str] = &[
        "invalid_json",
        "invalid_request",
        "payload_too_large",
        "request_timeout",
        "invalid_tenant",
        "unauthenticated",
        "token_expired",
        "access_denied",
        "too_many_connections",
        "tenant_not_found",
        "invalid_sql",
        "forbidden",
        "invalid_params",
        "unsupported_type",
        "query_failed",
        "limit_exceeded",
        "out_of_memory",
        "cancelled",
        "timeout",
        "too_busy",
        "shutting_down",
        "tenant_unavailable",
        "extension_unavailable",
        "tenant_deleted",
        "tenant_exists",
        "invalid_upload",
        "dataset_not_found",
        "precondition_failed",
        "too_many_subscriptions",
        "bad_message",
        "unknown_query",
        "duplicate_id",
        "too_many_queries",
        "storage_unavailable",
        "write_busy",
        "internal",
    ];

    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::RequestTimeout(_) => "request_timeout",
            Self::InvalidTenant => "invalid_tenant",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::TokenExpired => "token_expired",
            Self::AccessDenied(_) => "access_denied",
            Self::TooManyConnections(_) => "too_many_connections",
            Self::TenantNotFound(_) => "tenant_not_found",
            Self::InvalidSql(_) => "invalid_sql",
            Self::Forbidden(_) => "forbidden",
            Self::InvalidParams(_) => "invalid_params",
            Self::UnsupportedType(_) => "unsupported_type",
            Self::QueryFailed(_) => "query_failed",
            Self::LimitExceeded(_) => "limit_exceeded",
            Self::OutOfMemory(_) => "out_of_memory",
            Self::Cancelled => "cancelled",
            Self::Timeout => "timeout",
            Self::TooBusy => "too_busy",
            Self::ShuttingDown => "shutting_down",
            Self::TenantUnavailable(_) => "tenant_unavailable",
            Self::ExtensionUnavailable(_) => "extension_unavailable",
            Self::TenantDeleted => "tenant_deleted",
            Self::InvalidUpload(_) => "invalid_upload",
            Self::DatasetNotFound(_) => "dataset_not_found",
            Self::PreconditionFailed => "precondition_failed",
            Self::TooManySubscriptions(_) => "too_many_subscriptions",
            Self::TenantExists(_) => "tenant_exists",
            Self::BadMessage(_) => "bad_message",
            Self::UnknownQuery => "unknown_query",
            Self::DuplicateId => "duplicate_id",
            Self::TooManyQueries(_) => "too_many_queries",
            Self::StorageUnavailable(_) => "storage_unavailable",
            Self::WriteBusy => "write_busy",
            Self::Internal(_) => "internal",
        }
    }

    /// What the client sees: the message with every server path scrubbed.
    pub fn client_message(&self) -> String {
        scrub_paths(&self.to_string())
    }

    /// Whether this is the client's doing (logged at debug) or the server's (logged at error).
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            Self::Internal(_) | Self::TenantUnavailable(_) | Self::StorageUnavailable(_)
        )
    }

    /// The full cause chain, for logs.
    ///
    /// Passwords are blanked: DuckDB's own messages quote connection strings (a lake's
    /// catalog, `password='…'`).
    pub fn log_chain(&self) -> String {
        let mut s = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        redact_passwords(&s)
    }

    /// An internal error from any cause (logged, never shown).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn storage(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::StorageUnavailable(cause.into())
    }
}

impl From<WireError> for GatewayError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::InvalidJson(m) => Self::InvalidJson(m),
            WireError::InvalidRequest(m) => Self::InvalidRequest(m),
            WireError::InvalidTenant => Self::InvalidTenant,
            WireError::InvalidParams(m) => Self::InvalidParams(m),
            WireError::InvalidUpload(m) => Self::InvalidUpload(m),
        }
    }
}

/// What stands for a path a client must not see.
pub const SCRUBBED_PATH: &str = "<path>";

/// `text` with every absolute path replaced by [`SCRUBBED_PATH`]: a `/` or `~/` that starts a
/// word (after the start, white space, a quote, a bracket, `=`, `,` or `:`) followed by at
/// least two segments (`/etc/passwd`, `~/.duckdb/stored_secrets`, `'/srv/data/t.duckdb'`).
/// Division in echoed SQL (`a/b`, `1 / 2`) and URLs (`https://duckdb.org/docs`) are not
/// words that start with a slash, so they stay. Known server paths that are relative are
/// replaced before this, where they are known (the engine's tenants).
pub fn scrub_paths(text: &str) -> String {
    let bytes = text.as_bytes();
    let boundary = |i: usize| {
        i == 0
            || matches!(
                bytes[i - 1],
                b' ' | b'\t'
                    | b'\n'
                    | b'\r'
                    | b'\''
                    | b'"'
                    | b'`'
                    | b'('
                    | b'['
                    | b'{'
                    | b'='
                    | b','
                    | b':'
            )
    };
    let segment_byte = |b: u8| {
        !b.is_ascii_whitespace()
            && !matches!(
                b,
                b'/' | b'\'' | b'"' | b'`' | b')' | b']' | b'}' | b',' | b';' | b':'
            )
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let slash = match bytes[i] {
            b'/' => Some(i),
            b'~' if bytes.get(i + 1) == Some(&b'/') => Some(i + 1),
            _ => None,
        };
        let Some(mut j) = slash.filter(|_| boundary(start)) else {
            i += 1;
            continue;
        };
        let mut segments = 0;
        while j < bytes.len() && bytes[j] == b'/' {
            let seg_start = j + 1;
            let mut k = seg_start;
            while k < bytes.len() && segment_byte(bytes[k]) {
                k += 1;
            }
            if k == seg_start {
                break;
            }
            segments += 1;
            j = k;
        }
        if segments >= 2 {
            out.push_str(&text[copied..start]);
            out.push_str(SCRUBBED_PATH);
            copied = j;
            i = j;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// `text` with the value of every `password=` (libpq's `key=value` form, quoted or not) and
/// of every `user:password@` in a URL replaced by `***`.
pub fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        let (head, tail) = rest.split_at(at + "password=".len());
        out.push_str(head);
        out.push_str("***");
        rest = skip_value(tail);
    }
    out.push_str(rest);
    redact_url_passwords(&out)
}

/// What follows a libpq value: a quoted one ends at its unescaped closing quote, a bare one
/// at whitespace or a quote.
fn skip_value(tail: &str) -> &str {
    if let Some(quoted) = tail.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return &quoted[i + 1..],
                _ => escaped = false,
            }
        }
        return "";
    }
    let end = tail
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .unwrap_or(tail.len());
    &tail[end..]
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', ' ', '"', '\'']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(amp), Some(colon)) if colon < amp => {
                out.push_str(&authority[..colon + 1]);
                out.push_str("***");
                out.push_str(&authority[amp..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_logs() {
        let e = GatewayError::storage(
            "Unable to connect to Postgres at \"dbname=l host=h user='ds_t' password='a\\'b c'\": \
             refused; also password=bare postgres://admin:s3cret@db:5432/lakes and \
             s3://bucket/p",
        );
        assert_eq!(
            e.log_chain(),
            "the tenant's storage cannot be reached now; retry later: Unable to connect to \
             Postgres at \"dbname=l host=h user='ds_t' password=***\": refused; also \
             password=*** postgres://admin:***@db:5432/lakes and s3://bucket/p"
        );
        assert_eq!(redact_passwords("password='unterminated"), "password=***");
    }

    /// One of each variant.
    fn every_variant() -> Vec<GatewayError> {
        let s = String::new;
        let duck = DuckError {
            message: s(),
            kind: crate::duck::DuckErrorKind::Other,
        };
        vec![
            GatewayError::InvalidJson(s()),
            GatewayError::InvalidRequest(s()),
            GatewayError::PayloadTooLarge(1),
            GatewayError::RequestTimeout(1),
            GatewayError::InvalidTenant,
            GatewayError::Unauthenticated(s()),
            GatewayError::TokenExpired,
            GatewayError::AccessDenied(s()),
            GatewayError::TooManyConnections(1),
            GatewayError::TenantNotFound(s()),
            GatewayError::InvalidSql(s()),
            GatewayError::Forbidden(s()),
            GatewayError::InvalidParams(s()),
            GatewayError::UnsupportedType(UnsupportedType(s())),
            GatewayError::QueryFailed(s()),
            GatewayError::LimitExceeded(s()),
            GatewayError::OutOfMemory(s()),
            GatewayError::Cancelled,
            GatewayError::Timeout,
            GatewayError::TooBusy,
            GatewayError::ShuttingDown,
            GatewayError::TenantUnavailable(duck),
            GatewayError::ExtensionUnavailable(s()),
            GatewayError::TenantDeleted,
            GatewayError::TenantExists(s()),
            GatewayError::InvalidUpload(s()),
            GatewayError::DatasetNotFound(s()),
            GatewayError::PreconditionFailed,
            GatewayError::TooManySubscriptions(1),
            GatewayError::BadMessage(s()),
            GatewayError::UnknownQuery,
            GatewayError::DuplicateId,
            GatewayError::TooManyQueries(1),
            GatewayError::storage("x"),
            GatewayError::WriteBusy,
            GatewayError::internal("x"),
        ]
    }

    #[test]
    fn codes_are_the_variant_names_in_snake_case() {
        let all = every_variant();
        assert_eq!(all.len(), GatewayError::CODES.len());
        let mut seen = std::collections::HashSet::new();
        for e in all {
            let name = format!("{e:?}");
            let name = name.split(['(', ' ']).next().unwrap_or_default();
            let snake: String = name
                .chars()
                .enumerate()
                .flat_map(|(i, c)| {
                    let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
                    sep.into_iter()
                        .chain(std::iter::once(c.to_ascii_lowercase()))
                })
                .collect();
            assert_eq!(e.code(), snake, "{name}");
            assert!(GatewayError::CODES.contains(&e.code()), "{name}");
            assert!(seen.insert(e.code()), "{name} twice");
        }
    }

    #[test]
    fn internal_detail_is_never_shown() {
        let e = GatewayError::internal("secret path /var/lib/x");
        assert_eq!(e.client_message(), "internal error");
        assert!(e.log_chain().contains("/var/lib/x"));
    }

    #[test]
    fn client_messages_never_name_a_path() {
        let cases = [
            (
                "IO Error: No files found that match the pattern \"/etc/passwd\"",
                "IO Error: No files found that match the pattern \"<path>\"",
            ),
            (
                "cannot open ~/.duckdb/stored_secrets/x.json: denied",
                "cannot open <path>: denied",
            ),
            ("file '/srv/data/t.duckdb', line 2", "file '<path>', line 2"),
            ("at /proc/self/environ", "at <path>"),
            (
                "LINE 1: SELECT a/b, 1 / 2 FROM t",
                "LINE 1: SELECT a/b, 1 / 2 FROM t",
            ),
            (
                "see https://duckdb.org/docs/sql/x for more",
                "see https://duckdb.org/docs/sql/x for more",
            ),
            ("only /tmp alone", "only /tmp alone"),
            ("ünïcode (/a/b/ç) end", "ünïcode (<path>) end"),
        ];
        for (given, expected) in cases {
            assert_eq!(scrub_paths(given), expected, "{given}");
        }
        let e = GatewayError::InvalidSql("Binder Error: /var/lib/duckstream/t.duckdb".into());
        assert_eq!(e.client_message(), "Binder Error: <path>");
    }
}
