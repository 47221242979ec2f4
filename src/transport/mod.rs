//! Transports: how protocol lines reach clients. Each one turns a [`crate::engine::RunningQuery`]
//! into its own framing; none of them touches DuckDB.
//!
//! Invariants: a transport owns the query's [`crate::engine::control::CancelOnDrop`] guard for
//! as long as it delivers the stream, so a client that goes away cancels its query; it counts
//! rows and bytes as they are handed to the socket.

pub mod http;
pub mod sse;
pub mod ws;

use actix_web::http::header::{HeaderMap, ACCEPT_ENCODING};

/// A fresh id for a query that the client did not name (HTTP, SSE).
pub fn new_query_id() -> std::sync::Arc<str> {
    uuid::Uuid::new_v4().simple().to_string().into()
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
