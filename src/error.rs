//! The gateway's error type: one enum, a stable `code` per variant, an HTTP status, and a
//! message that is safe to show a client.
//!
//! Invariants:
//! - `code()` strings are part of the protocol (`docs/PROTOCOL.md`): never rename one.
//! - `client_message()` never contains internal detail for `Internal`/`TenantUnavailable`;
//!   the cause chain goes to the logs only (`log_chain`).
//! - DuckDB's own messages for SQL errors *are* shown: they describe the client's SQL.

use std::error::Error as _;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::engine::duck::DuckError;
use crate::wire::lines;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
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
    UnsupportedType(#[from] crate::encode::UnsupportedType),
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
    Overloaded,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the tenant's database could not be opened")]
    TenantUnavailable(#[source] DuckError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl GatewayError {
    /// The stable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::BodyTimeout(_) => "request_timeout",
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
            Self::Overloaded => "too_busy",
            Self::ShuttingDown => "shutting_down",
            Self::TenantUnavailable(_) => "tenant_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::TenantNotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) | Self::AccessDenied(_) => StatusCode::FORBIDDEN,
            Self::Unauthenticated(_) | Self::TokenExpired => StatusCode::UNAUTHORIZED,
            Self::TooManyConnections(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            Self::ShuttingDown | Self::TenantUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// What the client sees.
    pub fn client_message(&self) -> String {
        self.to_string()
    }

    /// Whether this is the client's doing (logged at debug) or the server's (logged at error).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, Self::Internal(_) | Self::TenantUnavailable(_))
    }

    /// The full cause chain, for logs.
    pub fn log_chain(&self) -> String {
        let mut s = self.to_string();
        let mut cause = self.source();
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        s
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        if self.status() == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer realm=\"duckstream\""));
        }
        response
            .content_type("application/json")
            .body(lines::error_body(self.code(), &self.client_message()))
    }
}
