//! Transports: how a query's frames reach clients. Each one turns a [`crate::engine::RunningQuery`]
//! into its own framing (a chunked HTTP body, server-sent events, WebSocket messages); none of
//! them touches DuckDB, and the engine never learns which one called it (it gets a
//! [`crate::engine::QuerySpec`]).
//!
//! - [`edge`]: what every route shares at the HTTP edge: the [`edge::Authorized`] extractor,
//!   bounded body reading, and the HTTP status of every error code.
//! - [`body`]: the streaming response body shared by HTTP and SSE.
//! - [`compress`]: the zstd stages (and the [`compress::Framing`] of byte streams).
//! - [`http`], [`sse`], [`ws`]: the query routes; [`live`]: live subscriptions (shared
//!   channels, one execution per change); [`admin`]: provisioning tenants;
//!   [`datasets`]: uploads and the dataset listing.
//!
//! Invariants: a transport owns the query's [`crate::engine::CancelOnDrop`] guard for
//! as long as it delivers the stream, so a client that goes away cancels its query; it counts
//! rows and bytes as they are handed to the socket.

pub mod admin;
pub mod body;
pub mod compress;
pub mod datasets;
pub mod decode;
pub mod edge;
pub mod http;
pub mod live;
pub mod mosaic;
pub mod pg;
pub mod spool;
pub mod sse;
pub mod ws;

use std::time::Duration;

use actix_web::http::header::{HeaderMap, ACCEPT_ENCODING};

use crate::encode::{self, Layout};
use crate::error::GatewayError;
use crate::wire::QueryRequest;

pub use ws::WsSettings;

/// What the transports run with (built by the application from its configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub zstd_level: i32,
    /// Frames buffered per query between each stage (the zstd stage, the SSE keep-alive).
    pub stream_buffer: usize,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// The longest record of an upload (NDJSON line, CSV record, GeoJSON feature).
    pub max_upload_record_bytes: u64,
    /// SSE: a `: keepalive` comment after this long without an event.
    pub sse_keepalive: Duration,
    pub ws: WsSettings,
    /// The compression workers every stream shares.
    pub compression: compress::Pool,
    /// The largest result a live subscription may hold (the cache's entry limit).
    pub subscription_max_bytes: usize,
}

/// Refuses a result format other than the protocol's lines (NDJSON) where the framing is those
/// lines (SSE events, live subscriptions): `where_` names the place.
pub fn ndjson_only(request: &QueryRequest, where_: &str) -> Result<(), GatewayError> {
    match request.format {
        Some(other) if encode::layout(other) != Layout::ProtocolLines => {
            Err(GatewayError::InvalidRequest(format!(
                "{where_} carry the NDJSON protocol; format {} is for POST/GET /v1/{{tenant}}/query",
                other.as_str()
            )))
        }
        _ => Ok(()),
    }
}

/// Whether the client accepts a zstd body (`Accept-Encoding: zstd`, with q > 0).
pub fn accepts_zstd(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or_default();
            if !coding.eq_ignore_ascii_case("zstd") {
                return false;
            }
            // `q=0` means "not acceptable".
            !parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            })
        })
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn h(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn zstd_is_negotiated() {
        assert!(accepts_zstd(&h("zstd")));
        assert!(accepts_zstd(&h("gzip, deflate, br, ZSTD;q=0.5")));
        assert!(!accepts_zstd(&h("gzip, br")));
        assert!(!accepts_zstd(&h("zstd;q=0")));
        assert!(!accepts_zstd(&HeaderMap::new()));
    }
}
