//! The HTTP edge every route shares: who is asking ([`Authorized`], from the request's
//! [`Credential`]), request bodies read within bounds, and how each error code becomes an HTTP
//! status.
//!
//! Invariants:
//! - A tenant route takes [`Authorized`] as an argument, so it cannot run without a checked
//!   credential: actix extracts it (tenant from the path, then the credential) before the
//!   handler body runs, and so before a body is read or the engine is touched.
//! - A request presents one credential: `Authorization: Bearer`, else `?token=`; both, and
//!   different, are refused (`invalid_token`), never guessed between. An open server reads
//!   none, so a header it could not read does not refuse a request there.
//! - Refusals are counted by a fixed reason (`duckstream_auth_failures_total`); credentials are
//!   never logged.
//! - The status of every code is decided here, in one match (`docs/PROTOCOL.md` lists them).

use std::future::{ready, Ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::auth::token::TokenError;
use crate::auth::{Access, AuthError, Authenticator, Credential};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::wire::{lines, TenantId};

/// A request whose credential was checked for the tenant in its path (`/v1/{tenant}/…`).
pub struct Authorized(pub Access);

impl FromRequest for Authorized {
    type Error = GatewayError;
    type Future = Ready<Result<Self, GatewayError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authorize(req).map(Authorized))
    }
}

fn authorize(req: &HttpRequest) -> Result<Access, GatewayError> {
    let tenant = TenantId::parse(req.match_info().get("tenant").unwrap_or_default())?;
    let (auth, metrics) = auth_parts(req)?;
    presented(req, auth)
        .and_then(|credential| auth.authorize(&credential, &tenant))
        .map_err(|e| refused(metrics, &tenant, e))
}

/// The request's credential for `auth`. An open server checks none, so it reads none: a
/// header it could not read (`Authorization: Basic …`) refuses nothing there.
pub fn presented(req: &HttpRequest, auth: &Authenticator) -> Result<Credential, AuthError> {
    if auth.is_open() {
        return Ok(Credential::Absent);
    }
    credential(req.headers(), req.query_string())
}

/// The credential of an HTTP request: the `Authorization: Bearer` header, else `?token=`.
/// Two different credentials are refused, not guessed between; a header that is not a bearer
/// one is no credential (`Missing`), one that is not text is no key (`InvalidKey`).
fn credential(headers: &HeaderMap, query_string: &str) -> Result<Credential, AuthError> {
    let from_query = form_urlencoded::parse(query_string.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let from_header = match headers.get(AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| AuthError::InvalidKey)?;
            let (scheme, value) = v.trim().split_once(' ').ok_or(AuthError::Missing)?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(AuthError::Missing);
            }
            Some(value.trim().to_string())
        }
    };
    match (from_header, from_query) {
        (Some(h), Some(q)) if h != q => Err(AuthError::InvalidToken(TokenError::Malformed)),
        (Some(h), _) => Ok(Credential::Bearer(h)),
        (None, Some(q)) => Ok(Credential::QueryToken(q)),
        (None, None) => Ok(Credential::Absent),
    }
}

/// The authenticator and the metrics its refusals are counted in, as the app registered them.
pub fn auth_parts(req: &HttpRequest) -> Result<(&Authenticator, &Metrics), GatewayError> {
    match (
        req.app_data::<web::Data<Authenticator>>(),
        req.app_data::<web::Data<Metrics>>(),
    ) {
        (Some(auth), Some(metrics)) => Ok((auth, metrics)),
        _ => Err(GatewayError::internal(
            "the authenticator is not registered",
        )),
    }
}

/// Whether the request comes from this machine (what open mode allows to write and admin).
pub fn is_loopback(req: &HttpRequest) -> bool {
    req.peer_addr().is_some_and(|a| a.ip().is_loopback())
}

/// Counts an authentication or authorisation refusal by reason; the client's error. `tenant`
/// is what was asked for (a tenant, or `admin`), for the log.
pub fn refused(metrics: &Metrics, tenant: impl std::fmt::Display, e: AuthError) -> GatewayError {
    metrics.auth_failures.with_label_values(&[e.reason()]).inc();
    tracing::debug!(%tenant, reason = e.reason(), "request refused");
    e.into()
}

/// Reads the request body, refusing it as soon as it passes `limit` bytes, or when it takes
/// longer than `timeout` to arrive (a body trickled byte by byte).
pub async fn read_body(
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, GatewayError> {
    tokio::time::timeout(timeout, read_body_unbounded(payload, limit))
        .await
        .map_err(|_| GatewayError::RequestTimeout(timeout.as_secs()))?
}

async fn read_body_unbounded(
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, GatewayError> {
    use futures_util::StreamExt;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| GatewayError::InvalidRequest(format!("request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The HTTP status of an error answered before streaming.
pub fn status(e: &GatewayError) -> StatusCode {
    use GatewayError as E;
    match e {
        E::TenantNotFound(_) | E::DatasetNotFound(_) => StatusCode::NOT_FOUND,
        E::Forbidden(_) | E::AccessDenied(_) => StatusCode::FORBIDDEN,
        E::Unauthenticated(_) | E::TokenExpired => StatusCode::UNAUTHORIZED,
        E::TooManyConnections(_)
        | E::TooBusy
        | E::TooManyQueries(_)
        | E::TooManySubscriptions(_) => StatusCode::TOO_MANY_REQUESTS,
        E::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        E::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        E::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        // 499: nginx's "client closed request"; the client cancelled.
        E::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        E::Timeout => StatusCode::GATEWAY_TIMEOUT,
        E::ShuttingDown | E::TenantUnavailable(_) | E::StorageUnavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The server lacks what the query needs; the client cannot fix the query.
        E::ExtensionUnavailable(_) => StatusCode::NOT_IMPLEMENTED,
        E::TenantExists(_) | E::WriteBusy => StatusCode::CONFLICT,
        E::TenantDeleted => StatusCode::GONE,
        E::InvalidJson(_)
        | E::InvalidRequest(_)
        | E::InvalidTenant
        | E::InvalidSql(_)
        | E::InvalidParams(_)
        | E::UnsupportedType(_)
        | E::QueryFailed(_)
        | E::LimitExceeded(_)
        | E::OutOfMemory(_)
        | E::BadMessage(_)
        | E::UnknownQuery
        | E::DuplicateId
        | E::InvalidUpload(_) => StatusCode::BAD_REQUEST,
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        status(self)
    }

    fn error_response(&self) -> HttpResponse {
        let status = status(self);
        // The client gets the code; the log gets why (an upload's or an admin call's failure
        // is logged nowhere else).
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self.log_chain(), "answered with an error");
        }
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer realm=\"duckstream\""));
        }
        response
            .content_type("application/json")
            .body(lines::error_body(self.code(), &self.client_message()))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn header(v: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        h
    }

    #[test]
    fn a_request_presents_one_credential() {
        let none = HeaderMap::new();
        let bearer = |v: &str| Ok(Credential::Bearer(v.to_string()));
        let query = |v: &str| Ok(Credential::QueryToken(v.to_string()));
        assert_eq!(credential(&none, ""), Ok(Credential::Absent));
        assert_eq!(credential(&none, "sql=x"), Ok(Credential::Absent));
        assert_eq!(credential(&header(b"Bearer  k1 "), ""), bearer("k1"));
        assert_eq!(credential(&header(b"bearer a.b.c"), ""), bearer("a.b.c"));
        assert_eq!(credential(&none, "sql=x&token=a.b.c"), query("a.b.c"));
        assert_eq!(credential(&none, "token=k%201"), query("k 1"));
        // The same value in both places is one credential, the header's.
        assert_eq!(credential(&header(b"Bearer k1"), "token=k1"), bearer("k1"));
        // Two different ones are refused, whichever would have been valid.
        assert_eq!(
            credential(&header(b"Bearer k1"), "token=a.b.c"),
            Err(AuthError::InvalidToken(TokenError::Malformed))
        );
        // Not a bearer header: no credential, even beside a token.
        assert_eq!(
            credential(&header(b"Basic dXNlcjpwdw=="), "token=a.b.c"),
            Err(AuthError::Missing)
        );
        assert_eq!(credential(&header(b"Bearer"), ""), Err(AuthError::Missing));
        assert_eq!(
            credential(&header(b"k\xff"), ""),
            Err(AuthError::InvalidKey)
        );
    }
}
