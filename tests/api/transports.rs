//! One statement over every way a client can send it: HTTP POST and GET `/query`, SSE (GET and
//! POST), a WebSocket query and a live subscription, Mosaic's `arrow` and `exec` over REST and
//! over its socket. Each answer comes back in one shape ([`Answer`]), so that a table of cases
//! (`tests/data/sandbox.tsv`, `tests/data/allowed.tsv`, the path-leak checks) is checked the
//! same way on all of them.
//!
//! [`Clients`] keeps one WebSocket and one Mosaic socket open for all its requests: a suite of
//! hundreds of cases costs one server and two connections.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{read_until, send, ws_connect, Cred, TestApp, Ws};

/// A way to send a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    HttpPost,
    HttpGet,
    SseGet,
    SsePost,
    Ws,
    WsSubscribe,
    MosaicRest,
    MosaicSocket,
    /// Mosaic's `exec` over REST: the statement is the whole `exec` text.
    ExecRest,
    /// Mosaic's `exec` over its socket.
    ExecSocket,
}

impl Via {
    /// Every way to run a query (an `exec` takes other statements: [`Via::EXECS`]).
    pub const QUERIES: [Via; 8] = [
        Via::HttpPost,
        Via::HttpGet,
        Via::SseGet,
        Via::SsePost,
        Via::Ws,
        Via::WsSubscribe,
        Via::MosaicRest,
        Via::MosaicSocket,
    ];
    pub const EXECS: [Via; 2] = [Via::ExecRest, Via::ExecSocket];

    /// Whether the answer has an HTTP status of its own (a socket's answers do not).
    pub fn has_status(self) -> bool {
        !matches!(
            self,
            Via::Ws | Via::WsSubscribe | Via::MosaicSocket | Via::ExecSocket
        )
    }

    /// Whether a result comes as Arrow (its rows are counted, not read).
    pub fn is_arrow(self) -> bool {
        matches!(self, Via::MosaicRest | Via::MosaicSocket)
    }
}

/// What a client got back.
#[derive(Debug, Default)]
pub struct Answer {
    /// The HTTP status; `None` on a socket.
    pub status: Option<u16>,
    /// The error's code (from the error body, the final `error` line, or Mosaic's
    /// `{"error": "<code>: <message>"}`); `None` for a result.
    pub code: Option<String>,
    /// The error's message.
    pub message: String,
    /// The rows of a JSON result (every `data` line's, in order).
    pub rows: Vec<Value>,
    /// The rows of an Arrow result.
    pub arrow_rows: usize,
    /// Everything received for this request, as text (Arrow bytes lossily).
    pub raw: String,
}

impl Answer {
    /// An error body (`{code, message}`), or whatever else came with a failing status.
    fn error_body(status: Option<u16>, raw: String) -> Self {
        let v: Value = serde_json::from_str(&raw).unwrap_or_default();
        Self {
            status,
            code: Some(v["code"].as_str().unwrap_or("<no code>").to_string()),
            message: v["message"].as_str().unwrap_or_default().to_string(),
            raw,
            ..Self::default()
        }
    }

    /// A stream of protocol lines: its rows, or the code of its `error` line.
    fn of_lines(status: Option<u16>, lines: &[Value], raw: String) -> Self {
        let error = lines.iter().find(|l| l["type"] == "error");
        let rows = lines
            .iter()
            .filter(|l| l["type"] == "data")
            .flat_map(|l| l["rows"].as_array().cloned().unwrap_or_default())
            .collect();
        Self {
            status,
            code: error.map(|e| e["code"].as_str().unwrap_or("<no code>").to_string()),
            message: error.map_or(String::new(), |e| {
                e["message"].as_str().unwrap_or_default().to_string()
            }),
            rows,
            raw,
            ..Self::default()
        }
    }

    /// An Arrow IPC stream: its row count (an unreadable stream is an error).
    fn arrow(status: Option<u16>, bytes: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None);
        let count: Result<usize, String> = match reader {
            Ok(batches) => batches
                .map(|b| b.map(|b| b.num_rows()).map_err(|e| e.to_string()))
                .sum(),
            Err(e) => Err(e.to_string()),
        };
        match count {
            Ok(arrow_rows) => Self {
                status,
                arrow_rows,
                raw,
                ..Self::default()
            },
            Err(e) => Self {
                status,
                code: Some("<unreadable arrow>".into()),
                message: e,
                raw,
                ..Self::default()
            },
        }
    }

    /// A text answer on Mosaic's socket: `{}` or `{"error": "<code>: <message>"}`.
    fn mosaic_text(raw: String) -> Self {
        let v: Value = serde_json::from_str(&raw).unwrap_or_default();
        let Some(error) = v.get("error") else {
            return Self {
                raw,
                ..Self::default()
            };
        };
        let text = error.as_str().unwrap_or_default();
        let (code, message) = text.split_once(": ").unwrap_or((text, ""));
        Self {
            code: Some(code.to_string()),
            message: message.to_string(),
            raw,
            ..Self::default()
        }
    }

    /// The answer, short enough for a list of failures.
    pub fn summary(&self) -> String {
        let message: String = self.message.chars().take(160).collect();
        match &self.code {
            Some(code) => format!("{:?} {code}: {message:?}", self.status),
            None => format!(
                "{:?} rows {}",
                self.status,
                self.rows.len().max(self.arrow_rows)
            ),
        }
    }
}

/// The open connections of one tenant's client.
pub struct Clients<'a> {
    app: &'a TestApp,
    tenant: String,
    ws: Ws,
    mosaic: Ws,
    requests: u64,
}

impl<'a> Clients<'a> {
    /// Opens the WebSocket and Mosaic's socket of `tenant` (an open server: no credentials).
    pub async fn open(app: &'a TestApp, tenant: &str) -> Self {
        let ws = ws_connect(app, tenant, &Cred::None)
            .await
            .expect("the WebSocket opens");
        let url = format!(
            "{}/v1/{tenant}/mosaic",
            app.base.replace("http://", "ws://")
        );
        let (mosaic, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("Mosaic's socket opens");
        Self {
            app,
            tenant: tenant.to_string(),
            ws,
            mosaic,
            requests: 0,
        }
    }

    /// Sends `sql` one way; what came back.
    pub async fn ask(&mut self, via: Via, sql: &str) -> Answer {
        match via {
            Via::HttpPost | Via::HttpGet | Via::SseGet | Via::SsePost => self.http(via, sql).await,
            Via::Ws => self.ws_query(sql).await,
            Via::WsSubscribe => self.ws_subscribe(sql).await,
            Via::MosaicRest => self.mosaic_rest("arrow", sql).await,
            Via::ExecRest => self.mosaic_rest("exec", sql).await,
            Via::MosaicSocket => self.mosaic_socket("arrow", sql).await,
            Via::ExecSocket => self.mosaic_socket("exec", sql).await,
        }
    }

    fn next_id(&mut self) -> String {
        self.requests += 1;
        format!("r{}", self.requests)
    }

    async fn http(&self, via: Via, sql: &str) -> Answer {
        let (path, get) = match via {
            Via::HttpPost => ("query", false),
            Via::HttpGet => ("query", true),
            Via::SseGet => ("sse", true),
            _ => ("sse", false),
        };
        let url = self.app.url(&format!("/v1/{}/{path}", self.tenant));
        let req = if get {
            self.app.client.get(url).query(&[("sql", sql)])
        } else {
            let body = json!({ "sql": sql }).to_string();
            self.app.client.post(url).body(body)
        };
        // A refused or reset connection is reported with the other problems, not panicked on:
        // the suite carries on and lists every wrong answer.
        let resp = match req.send().await {
            Ok(resp) => resp,
            Err(e) => return broken(None, e),
        };
        let status = Some(resp.status().as_u16());
        let raw = match resp.text().await {
            Ok(raw) => raw,
            Err(e) => return broken(status, e),
        };
        if status != Some(200) {
            return Answer::error_body(status, raw);
        }
        let lines: Result<Vec<Value>, _> = raw
            .lines()
            .filter_map(|l| {
                if path == "sse" {
                    l.strip_prefix("data: ")
                } else {
                    Some(l)
                }
            })
            .map(serde_json::from_str)
            .collect();
        match lines {
            Ok(lines) => Answer::of_lines(status, &lines, raw),
            Err(e) => Answer {
                status,
                code: Some("<a line that is not JSON>".into()),
                message: e.to_string(),
                raw,
                ..Answer::default()
            },
        }
    }

    async fn ws_query(&mut self, sql: &str) -> Answer {
        let id = self.next_id();
        send(&mut self.ws, json!({"type": "query", "id": id, "sql": sql})).await;
        let done = |l: &Value| {
            l["query_id"] == id.as_str() && (l["type"] == "end" || l["type"] == "error")
        };
        let Some(lines) = within(read_until(&mut self.ws, done)).await else {
            return silent();
        };
        let mine: Vec<Value> = lines
            .into_iter()
            .filter(|l| l["query_id"] == id.as_str())
            .collect();
        Answer::of_lines(None, &mine, joined(&mine))
    }

    /// Subscribes, reads the first result (or the refusal), and unsubscribes again.
    async fn ws_subscribe(&mut self, sql: &str) -> Answer {
        let id = self.next_id();
        send(
            &mut self.ws,
            json!({"type": "subscribe", "id": id, "sql": sql}),
        )
        .await;
        let mut channel: Option<String> = None;
        let done = |l: &Value| {
            if l["type"] == "subscribed" && l["query_id"] == id.as_str() {
                channel = l["channel"].as_str().map(str::to_string);
            }
            let mine = l["query_id"] == id.as_str()
                || channel.as_deref().is_some_and(|c| l["query_id"] == c);
            mine && (l["type"] == "end" || l["type"] == "error")
        };
        let Some(lines) = within(read_until(&mut self.ws, done)).await else {
            return silent();
        };
        let mine: Vec<Value> = lines
            .into_iter()
            .filter(|l| {
                l["type"] != "heartbeat"
                    && (l["query_id"] == id.as_str()
                        || channel.as_deref().is_some_and(|c| l["query_id"] == c))
            })
            .collect();
        if channel.is_some() {
            send(&mut self.ws, json!({"type": "unsubscribe", "id": id})).await;
            let done = |l: &Value| {
                l["query_id"] == id.as_str()
                    && (l["type"] == "unsubscribed" || l["type"] == "error")
            };
            within(read_until(&mut self.ws, done)).await;
        }
        Answer::of_lines(None, &mine, joined(&mine))
    }

    async fn mosaic_rest(&self, kind: &str, sql: &str) -> Answer {
        let resp = self
            .app
            .client
            .post(self.app.url(&format!("/v1/{}/mosaic", self.tenant)))
            .header("content-type", "application/json")
            .body(json!({ "type": kind, "sql": sql }).to_string())
            .send()
            .await;
        let resp = match resp {
            Ok(resp) => resp,
            Err(e) => return broken(None, e),
        };
        let status = Some(resp.status().as_u16());
        let bytes = match resp.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return broken(status, e),
        };
        if status != Some(200) {
            return Answer::error_body(status, String::from_utf8_lossy(&bytes).into_owned());
        }
        if kind == "exec" {
            let raw = String::from_utf8_lossy(&bytes).into_owned();
            return Answer {
                status,
                raw,
                ..Answer::default()
            };
        }
        Answer::arrow(status, &bytes)
    }

    async fn mosaic_socket(&mut self, kind: &str, sql: &str) -> Answer {
        let request = json!({ "type": kind, "sql": sql }).to_string();
        self.mosaic.send(Message::text(request)).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(60), self.mosaic.next())
                .await
                .expect("Mosaic's socket answers within 60 s")
                .expect("Mosaic's socket is open")
                .unwrap();
            match msg {
                Message::Binary(bytes) => return Answer::arrow(None, &bytes),
                Message::Text(text) => return Answer::mosaic_text(text.as_str().to_string()),
                _ => {}
            }
        }
    }
}

/// A socket's answer within 30 s, or `None` (the suite carries on and reports it: every
/// later request has an id of its own).
async fn within<T>(answer: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .ok()
}

fn silent() -> Answer {
    Answer {
        code: Some("<no answer within 30 s>".into()),
        ..Answer::default()
    }
}

/// A request that failed (`status` `None`) or a body that broke off (an error after the
/// status was sent).
fn broken(status: Option<u16>, e: reqwest::Error) -> Answer {
    Answer {
        status,
        code: Some("<broken request or body>".into()),
        message: chain(&e),
        ..Answer::default()
    }
}

/// An error and its causes, `: `-separated (reqwest's own text omits the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

fn joined(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// `sql` as Mosaic's pre-aggregation writes it, deriving the table `name`: only for one
/// `SELECT` (an `exec` derives tables from queries, nothing else).
pub fn as_exec(sql: &str, name: &str) -> Option<String> {
    let lower = sql.trim_start().to_ascii_lowercase();
    let query = ["select", "with", "from"]
        .iter()
        .any(|k| lower.starts_with(k));
    (query && !sql.contains(';'))
        .then(|| format!("CREATE TABLE IF NOT EXISTS \"mosaic\".\"{name}\" AS {sql}"))
}
