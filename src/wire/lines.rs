//! The protocol's lines (`metadata`, `data`, `end`, `error`; for subscriptions `subscribed`,
//! `update`, `heartbeat`, `unsubscribed`) and the pre-stream error body.
//!
//! Invariant: every function here produces exactly one JSON object; the `*_line` functions end
//! it with `\n`. The format is the contract in `docs/PROTOCOL.md`.

use bytes::Bytes;

use super::json::{write_int, write_key, write_str};

/// One result column, as announced by the metadata line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_name: String,
    /// A GEOMETRY column's coordinate reference system (`EPSG:4326`), when DuckDB has one.
    pub crs: Option<String>,
}

fn open(out: &mut Vec<u8>, kind: &str, query_id: &str) {
    open_opt(out, kind, Some(query_id));
}

fn open_opt(out: &mut Vec<u8>, kind: &str, query_id: Option<&str>) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"query_id\":");
    match query_id {
        Some(id) => write_str(out, id.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// `{"type":"metadata","query_id":…,"columns":[{"name":…,"type":…[,"crs":…]},…]}`
pub fn metadata_line(query_id: &str, columns: &[Column]) -> Bytes {
    let mut out = Vec::with_capacity(128 + columns.len() * 40);
    open(&mut out, "metadata", query_id);
    out.extend_from_slice(b",\"columns\":[");
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        write_key(&mut out, "name");
        write_str(&mut out, c.name.as_bytes());
        out.push(b',');
        write_key(&mut out, "type");
        write_str(&mut out, c.type_name.as_bytes());
        if let Some(crs) = &c.crs {
            out.push(b',');
            write_key(&mut out, "crs");
            write_str(&mut out, crs.as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
    Bytes::from(out)
}

/// The start of a data line, up to and including `"rows":[`.
pub fn data_prefix(out: &mut Vec<u8>, query_id: &str, seq: u64) {
    open(out, "data", query_id);
    out.extend_from_slice(b",\"seq\":");
    write_int(out, seq);
    out.extend_from_slice(b",\"rows\":[");
}

/// `{"type":"end","query_id":…,"rows":R,"chunks":C,"elapsed_ms":T}`
/// `{"type":"arrow","query_id":…}`: the binary messages that follow on a WebSocket, up to
/// this query's `end` or `error` line, are its Arrow IPC stream.
pub fn arrow_line(query_id: &str) -> Bytes {
    let mut out = Vec::with_capacity(64);
    open(&mut out, "arrow", query_id);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

pub fn end_line(query_id: &str, rows: u64, chunks: u64, elapsed_ms: u64) -> Bytes {
    let mut out = Vec::with_capacity(96);
    open(&mut out, "end", query_id);
    out.extend_from_slice(b",\"rows\":");
    write_int(&mut out, rows);
    out.extend_from_slice(b",\"chunks\":");
    write_int(&mut out, chunks);
    out.extend_from_slice(b",\"elapsed_ms\":");
    write_int(&mut out, elapsed_ms);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// `{"type":"error","query_id":…,"code":…,"message":…}`
pub fn error_line(query_id: &str, code: &str, message: &str) -> Bytes {
    error_line_for(Some(query_id), code, message)
}

/// An error line that may not belong to a query (`"query_id":null`), such as a bad message.
pub fn error_line_for(query_id: Option<&str>, code: &str, message: &str) -> Bytes {
    let mut out = Vec::with_capacity(96 + message.len());
    open_opt(&mut out, "error", query_id);
    out.extend_from_slice(b",\"code\":");
    write_str(&mut out, code.as_bytes());
    out.extend_from_slice(b",\"message\":");
    write_str(&mut out, message.as_bytes());
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// The body of an error answered before streaming: `{"code":…,"message":…}`.
pub fn error_body(code: &str, message: &str) -> Bytes {
    let mut out = Vec::with_capacity(48 + message.len());
    out.push(b'{');
    write_key(&mut out, "code");
    write_str(&mut out, code.as_bytes());
    out.push(b',');
    write_key(&mut out, "message");
    write_str(&mut out, message.as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

/// The answer to a WebSocket `ping` message.
pub fn pong_line() -> Bytes {
    Bytes::from_static(b"{\"type\":\"pong\"}\n")
}

/// `{"type":"subscribed","query_id":<the client's id>,"channel":…,"resumed":…}`: a
/// subscription was accepted; its results arrive with `query_id` = `channel`. `resumed` says
/// what a client that named the version it holds gets: `unchanged` (nothing until a change) or
/// `replaced` (the current result follows); absent when it named none.
pub fn subscribed_line(id: &str, channel: &str, resumed: Option<&str>) -> Bytes {
    let mut out = Vec::with_capacity(96);
    open(&mut out, "subscribed", id);
    out.extend_from_slice(b",\"channel\":");
    write_str(&mut out, channel.as_bytes());
    if let Some(r) = resumed {
        out.extend_from_slice(b",\"resumed\":");
        write_str(&mut out, r.as_bytes());
    }
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// `{"type":"update","query_id":<channel>,"version":V}`: the first line of each result a
/// subscription delivers; the result's lines follow.
pub fn update_line(channel: &str, version: u64) -> Bytes {
    versioned("update", channel, version)
}

/// `{"type":"heartbeat","query_id":<channel>,"version":V}`: the subscription is alive and its
/// result is still the one of version V.
pub fn heartbeat_line(channel: &str, version: u64) -> Bytes {
    versioned("heartbeat", channel, version)
}

/// `{"type":"unsubscribed","query_id":<the client's id>}`
pub fn unsubscribed_line(id: &str) -> Bytes {
    let mut out = Vec::with_capacity(64);
    open(&mut out, "unsubscribed", id);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// `{"type":"reconnect","query_id":<id>}`: the server is draining; the stream ends here and
/// the client resumes elsewhere by version.
pub fn reconnect_line(id: &str) -> Bytes {
    let mut out = Vec::with_capacity(64);
    open(&mut out, "reconnect", id);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn versioned(kind: &str, channel: &str, version: u64) -> Bytes {
    let mut out = Vec::with_capacity(80);
    open(&mut out, kind, channel);
    out.extend_from_slice(b",\"version\":");
    write_int(&mut out, version);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// `{"type":"resume_unavailable","query_id":<the stream named>,"message":…}`: a reconnecting
/// stream cannot continue where it broke; a fresh result follows.
pub fn resume_unavailable_line(query_id: &str) -> Bytes {
    let mut out = Vec::with_capacity(160);
    open(&mut out, "resume_unavailable", query_id);
    out.extend_from_slice(b",\"message\":");
    write_str(
        &mut out,
        b"that stream's result is no longer cached: a fresh result follows, from its metadata",
    );
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// `{"type":"progress","query_id":…,"rows_processed":N,"total_rows":T|null,"percentage":P|null}`
/// (`percentage` with one decimal).
pub fn progress_line(
    query_id: &str,
    rows_processed: u64,
    total_rows: Option<u64>,
    percentage: Option<f64>,
) -> Bytes {
    let mut out = Vec::with_capacity(128);
    open(&mut out, "progress", query_id);
    out.extend_from_slice(b",\"rows_processed\":");
    write_int(&mut out, rows_processed);
    out.extend_from_slice(b",\"total_rows\":");
    match total_rows {
        Some(t) => write_int(&mut out, t),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"percentage\":");
    match percentage {
        Some(p) => out.extend_from_slice(format!("{p:.1}").as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}
