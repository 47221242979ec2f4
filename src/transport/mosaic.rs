//! Mosaic's own protocol, so that its npm client (`@uwdata/mosaic-core`'s `restConnector`
//! and `socketConnector`) and vgplot dashboards run against duckstream unmodified:
//! `POST /v1/{tenant}/mosaic` and a WebSocket on `GET /v1/{tenant}/mosaic`, credentials as
//! `?token=` (Mosaic's connectors send no headers or cookies of their own).
//!
//! - `arrow`: the query as an Arrow IPC stream, through the same sandbox, table scope, limits,
//!   cache and metrics as `/query`. Over REST it streams like `/query?format=arrow` (an error
//!   mid-stream breaks the body: Mosaic's decoder would take a clean short stream as complete).
//!   Over the socket Mosaic resolves a request with *one* binary message, so the result is
//!   gathered (at most [`MAX_SOCKET_RESULT`]) and sent whole, or an `{"error": …}` text.
//! - `exec`: only pre-aggregation ([`crate::wire::mosaic::ExecStatement`]): derived tables in
//!   the tenant's scratch space ([`crate::engine::is_scratch_name`]); anything else is refused with
//!   Mosaic's error shape (a status over REST, `{"error": …}` on the socket), and the client
//!   carries on. Answered `{}`.
//!
//! Invariants:
//! - The socket answers every request exactly once, in the order they came (Mosaic matches
//!   answers by position): at most [`IN_FLIGHT`] run at once, answered in order; an `exec` is a
//!   barrier (nothing after it starts before it is answered: a request may read its table).
//! - The socket holds one of the tenant's connections; closing it (either side) or shutting
//!   down cancels its queries.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, Session};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::edge::{read_body, Authorized};
use super::Settings;
use crate::auth::Access;
use crate::engine::{is_scratch_name, CancelReason, Engine, FrameKind, Lookup, StreamSlot};
use crate::engine::{QuerySpec, RunningQuery, Variant};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::mosaic::{exec_statements, ExecStatement, MosaicRequest};
use crate::wire::{Format, QueryRequest};

/// Requests of one socket that run at once (Mosaic pipelines up to 33); the socket reads no
/// more until the oldest is answered.
const IN_FLIGHT: usize = 4;
/// The largest Arrow result the socket sends (one message); larger ones are refused, and the
/// REST connector streams them instead.
const MAX_SOCKET_RESULT: usize = 64 << 20;
/// How long a close frame may wait to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// `POST /v1/{tenant}/mosaic`: one Mosaic request.
pub async fn post(
    Authorized(access): Authorized,
    req: HttpRequest,
    payload: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, GatewayError> {
    let mut body = read_body(payload, settings.max_body_bytes, settings.body_timeout).await?;
    match MosaicRequest::from_json(&mut body)? {
        MosaicRequest::Arrow(sql) => {
            let query = arrow_query(sql)?;
            super::http::answer(&req, access, query, &engine, &settings, &metrics).await
        }
        MosaicRequest::Exec(sql) => {
            exec(&engine, &access, &sql, None).await?;
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
                .body("{}"))
        }
    }
}

fn arrow_query(sql: String) -> Result<QueryRequest, GatewayError> {
    Ok(QueryRequest::of_sql(sql)?.with_format(Some("arrow"))?)
}

/// Runs an `exec`: every statement is checked before the first runs.
async fn exec(
    engine: &Engine,
    access: &Access,
    sql: &str,
    parent: Option<&CancellationToken>,
) -> Result<(), GatewayError> {
    let statements = exec_statements(sql).map_err(GatewayError::Forbidden)?;
    if access.tables.is_some() {
        return Err(GatewayError::Forbidden(
            "a token limited to some tables cannot change the scratch space; its queries read \
             the tables themselves"
                .into(),
        ));
    }
    if let Some(bad) = statements.iter().find_map(|s| match s {
        ExecStatement::CreateTable { name, .. } if !is_scratch_name(name) => Some(name),
        _ => None,
    }) {
        return Err(GatewayError::Forbidden(format!(
            "`{bad}` is not a plain table name"
        )));
    }
    // Every SELECT passes the engine's checks (as an EXPLAIN: planned, never run) before the
    // first statement runs, so a refused statement leaves nothing behind.
    for statement in &statements {
        if let ExecStatement::CreateTable { select, .. } = statement {
            let spec = exec_spec(access, format!("EXPLAIN {select}"), parent)?;
            drain(engine.start(spec).await?, None)
                .await
                .map_err(Failure::into_error)?;
        }
    }
    for statement in statements {
        match statement {
            ExecStatement::CreateSchema => {}
            ExecStatement::DropSchema => engine.clear_scratch(&access.tenant).await?,
            ExecStatement::CreateTable { name, select } => {
                let spec = exec_spec(access, select, parent)?.derive(name);
                let running = engine.start(spec).await?;
                drain(running, None).await.map_err(Failure::into_error)?;
            }
        }
    }
    Ok(())
}

/// The spec of one of an `exec`'s statements; on the socket, under its token and without a
/// stream slot of its own (the socket holds one).
fn exec_spec(
    access: &Access,
    sql: String,
    parent: Option<&CancellationToken>,
) -> Result<QuerySpec, GatewayError> {
    let mut spec = QuerySpec::new(
        access.tenant.clone(),
        QueryRequest::of_sql(sql)?,
        Transport::Http,
    );
    if let Some(token) = parent {
        spec = spec
            .without_connection_slot()
            .parent(token.clone(), CancelReason::Disconnected);
    }
    Ok(spec)
}

/// Why a drained query did not complete.
enum Failure {
    /// Before its stream, or on the gateway's side: the error itself.
    Gateway(GatewayError),
    /// Its final `error` line: the code and the safe message it carries.
    Line { code: String, message: String },
}

impl Failure {
    fn into_error(self) -> GatewayError {
        match self {
            Self::Gateway(e) => e,
            Self::Line { code, message } => GatewayError::QueryFailed(format!("{code}: {message}")),
        }
    }

    /// Mosaic's error text: the code first, then the safe message.
    fn text(&self) -> String {
        match self {
            Self::Gateway(e) => format!("{}: {}", e.code(), e.client_message()),
            Self::Line { code, message } => format!("{code}: {message}"),
        }
    }
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Self {
        Self::Gateway(e)
    }
}

/// A gathered result, and the shared WebSocket budget it holds until it is sent.
struct Gathered {
    bytes: Bytes,
    rows: u64,
    _budget: Vec<OwnedSemaphorePermit>,
}

/// Reads a query's frames to its end into one buffer; with a `budget`, each piece first takes
/// its bytes from it (the process's WebSocket budget: a gathered result waits, and so does
/// DuckDB, while the sockets hold too much).
async fn drain(
    running: RunningQuery,
    budget: Option<(&Arc<Semaphore>, usize, Duration)>,
) -> Result<Gathered, Failure> {
    let RunningQuery {
        mut frames, guard, ..
    } = running;
    let _guard = guard;
    let mut out = BytesMut::new();
    let mut permits = Vec::new();
    // Bytes of the budget the permits hold.
    let mut held = 0usize;
    let mut rows = 0u64;
    while let Some(frame) = frames.recv().await {
        match frame.kind {
            // Arrow's error goes beside the stream: the protocol's `error` line.
            FrameKind::Error(_) => return Err(error_line(&frame.bytes)),
            FrameKind::Note => {}
            FrameKind::Metadata | FrameKind::Data | FrameKind::End => {
                if out.len() + frame.bytes.len() > MAX_SOCKET_RESULT {
                    return Err(GatewayError::LimitExceeded(format!(
                        "the result passed {MAX_SOCKET_RESULT} bytes, the most one WebSocket \
                         message carries here: use the REST connector, which streams"
                    ))
                    .into());
                }
                if let Some((budget, most, wait)) = budget {
                    // Bounded: results that each hold part of the budget must not wait on
                    // one another for ever. A result holds at most the whole budget: one
                    // bigger than it still goes through, alone (more could never be granted).
                    let n = frame.bytes.len().max(1).min(most - held);
                    if n > 0 {
                        let permit = tokio::time::timeout(
                            wait,
                            Arc::clone(budget).acquire_many_owned(n as u32),
                        )
                        .await
                        .map_err(|_| GatewayError::TooBusy)?
                        .map_err(GatewayError::internal)?;
                        held += n;
                        permits.push(permit);
                    }
                }
                rows += frame.rows as u64;
                out.extend_from_slice(&frame.bytes);
                if frame.kind == FrameKind::End {
                    return Ok(Gathered {
                        bytes: out.freeze(),
                        rows,
                        _budget: permits,
                    });
                }
            }
        }
    }
    Err(GatewayError::internal("the query ended without its final frame").into())
}

/// The code and message of a protocol `error` line.
fn error_line(line: &Bytes) -> Failure {
    let mut copy = line.to_vec();
    let parsed = simd_json::to_borrowed_value(&mut copy).ok().and_then(|v| {
        use simd_json::prelude::*;
        let code = v.get("code")?.as_str()?.to_string();
        let message = v.get("message")?.as_str()?.to_string();
        Some(Failure::Line { code, message })
    });
    parsed.unwrap_or(Failure::Line {
        code: "query_failed".into(),
        message: "the query failed".into(),
    })
}

/// `GET /v1/{tenant}/mosaic` (WebSocket): Mosaic's `socketConnector`.
// Each argument is an actix extractor: what the handler uses, named.
#[allow(clippy::too_many_arguments)]
pub async fn socket(
    Authorized(access): Authorized,
    req: HttpRequest,
    body: web::Payload,
    engine: web::Data<Engine>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream, slot) =
        super::ws::upgrade(&req, body, &access, &engine, &settings).await?;
    let socket = Socket {
        token: engine.shutdown_token().child_token(),
        engine: engine.into_inner(),
        metrics: metrics.into_inner(),
        ws: settings.ws.clone(),
        access,
        _slot: slot,
    };
    actix_web::rt::spawn(socket.run(session, stream));
    Ok(response)
}

struct Socket {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    ws: super::WsSettings,
    access: Access,
    /// Cancels the socket's queries (a child of the process's shutdown token).
    token: CancellationToken,
    _slot: StreamSlot,
}

/// Requests read but not started yet, at most: past it the socket stops reading (a client
/// that pipelines more waits; Mosaic sends 33 at most).
const BACKLOG: usize = 64;

/// An answer on its way.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Answer>>>;

/// A request's answer: an Arrow result, or a text (`{}`, `{"error": …}`).
enum Answer {
    Arrow(Gathered),
    Text(String),
}

fn error_answer(failure: &Failure) -> Answer {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"error\":");
    crate::wire::json::write_str(&mut out, failure.text().as_bytes());
    out.push(b'}');
    Answer::Text(String::from_utf8_lossy(&out).into_owned())
}

impl Socket {
    /// The session loop: requests in (read while fewer than [`BACKLOG`] wait, so a close is
    /// seen at once; a fuller backlog stops reading, and the pong timeout with it), answers
    /// out in order, the heartbeat, one exit.
    async fn run(self, mut session: Session, mut stream: AggregatedMessageStream) {
        let this = Arc::new(self);
        let label = [Transport::Ws.as_str()];
        let connections = this.metrics.active_connections.with_label_values(&label);
        connections.inc();
        let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
        let mut backlog: VecDeque<Result<MosaicRequest, crate::wire::WireError>> = VecDeque::new();
        // An `exec` is a barrier: nothing after it starts before it is answered (a request
        // may read the table it makes). Answers to come before it is lifted.
        let mut barrier = 0usize;
        let shutdown = this.engine.shutdown_token().clone();
        let mut heartbeat = tokio::time::interval(this.ws.ping_interval);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let exit = loop {
            // Start what may start: in order, at most IN_FLIGHT, never past an exec.
            while pending.len() < IN_FLIGHT && barrier == 0 {
                let Some(request) = backlog.pop_front() else {
                    break;
                };
                if matches!(request, Ok(MosaicRequest::Exec(_))) {
                    barrier = pending.len() + 1;
                }
                let this = Arc::clone(&this);
                pending.push_back(Box::pin(async move { this.answer(request).await }));
            }
            tokio::select! {
                _ = shutdown.cancelled() => break Some(CloseCode::Away),
                Some(answer) = pending.next(), if !pending.is_empty() => {
                    barrier = barrier.saturating_sub(1);
                    if !this.send(&mut session, answer).await {
                        break Some(CloseCode::Policy);
                    }
                }
                msg = stream.recv(), if backlog.len() < BACKLOG => {
                    last_heard = Instant::now();
                    match msg {
                        None | Some(Ok(AggregatedMessage::Close(_))) => break None,
                        Some(Ok(AggregatedMessage::Text(text))) => backlog.push_back(
                            MosaicRequest::from_json(&mut text.into_bytes().to_vec()),
                        ),
                        Some(Ok(AggregatedMessage::Binary(_))) => backlog.push_back(Err(
                            crate::wire::WireError::InvalidRequest("send requests as JSON text".into()),
                        )),
                        Some(Ok(AggregatedMessage::Ping(p))) => {
                            if session.pong(&p).await.is_err() {
                                break None;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Err(_)) => break Some(CloseCode::Protocol),
                    }
                }
                _ = heartbeat.tick() => {
                    // While the backlog is full the socket is not read, so the client cannot
                    // be heard: its silence is ours, not a dead peer's.
                    if backlog.len() >= BACKLOG {
                        last_heard = Instant::now();
                    } else if last_heard.elapsed() > this.ws.pong_timeout {
                        break Some(CloseCode::Away);
                    }
                    if session.ping(b"").await.is_err() {
                        break None;
                    }
                }
            }
        };
        // The single exit: cancel the socket's queries, then close it.
        this.token.cancel();
        connections.dec();
        if let Some(code) = exit {
            let _ = tokio::time::timeout(CLOSE_GRACE, session.close(Some(code.into()))).await;
        }
    }

    /// Hands one answer to the socket; `false` for a client that takes none for
    /// `ws_slow_consumer_timeout` (or is gone).
    async fn send(&self, session: &mut Session, answer: Answer) -> bool {
        let label = [Transport::Ws.as_str()];
        let wait = self.ws.slow_consumer_timeout;
        match answer {
            Answer::Arrow(gathered) => {
                let (n, rows) = (gathered.bytes.len() as u64, gathered.rows);
                let sent =
                    tokio::time::timeout(wait, super::ws::send_binary(session, gathered.bytes))
                        .await;
                if !matches!(sent, Ok(Ok(()))) {
                    return false;
                }
                self.metrics
                    .rows_sent
                    .with_label_values(&label)
                    .inc_by(rows);
                self.metrics.bytes_sent.with_label_values(&label).inc_by(n);
                true
            }
            Answer::Text(text) => matches!(
                tokio::time::timeout(wait, session.text(text)).await,
                Ok(Ok(()))
            ),
        }
    }

    async fn answer(&self, request: Result<MosaicRequest, crate::wire::WireError>) -> Answer {
        let request = match request {
            Ok(r) => r,
            Err(e) => return error_answer(&Failure::Gateway(e.into())),
        };
        // A token may expire while its socket is open: each request checks it again.
        if let Err(e) = self.access.check_fresh() {
            return error_answer(&Failure::Gateway(e.into()));
        }
        let answered = match request {
            MosaicRequest::Exec(sql) => exec(&self.engine, &self.access, &sql, Some(&self.token))
                .await
                .map(|()| Answer::Text("{}".into()))
                .map_err(Failure::Gateway),
            MosaicRequest::Arrow(sql) => self.arrow(sql).await,
        };
        answered.unwrap_or_else(|e| error_answer(&e))
    }

    /// An Arrow result whole: from the cache, or run (and then cached).
    async fn arrow(&self, sql: String) -> Result<Answer, Failure> {
        let spec = QuerySpec::new(self.access.tenant.clone(), arrow_query(sql)?, Transport::Ws)
            .format(Format::Arrow)
            .tables(self.access.tables.clone())
            .without_connection_slot()
            .parent(self.token.clone(), CancelReason::Disconnected);
        let ticket = match self.engine.cached(&spec, Variant::MosaicSocket).await? {
            Lookup::Hit { result, .. } => {
                let mut bytes = BytesMut::with_capacity(result.bytes);
                for chunk in &result.chunks {
                    bytes.extend_from_slice(chunk);
                }
                return Ok(Answer::Arrow(Gathered {
                    bytes: bytes.freeze(),
                    rows: result.rows,
                    _budget: Vec::new(),
                }));
            }
            Lookup::Miss(ticket) => Some(ticket),
            Lookup::Bypass => None,
        };
        let (running, recording) = self.engine.start_recorded(spec, ticket).await?;
        let budget = (
            &self.ws.total_budget,
            self.ws.total_budget_bytes,
            self.ws.slow_consumer_timeout,
        );
        let gathered = drain(running, Some(budget)).await?;
        if let Some(recorder) = recording.recorder {
            // One chunk: the whole stream, as this socket sends it.
            if let Some(r) = recorder.push(&gathered.bytes, gathered.rows as usize) {
                r.complete();
            }
        }
        Ok(Answer::Arrow(gathered))
    }
}
