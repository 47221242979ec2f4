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
//!   the tenant's scratch space ([`crate::engine::scratch`]); anything else is refused with
//!   Mosaic's error shape (a status over REST, `{"error": …}` on the socket), and the client
//!   carries on. Answered `{}`.
//!
//! Invariants:
//! - The socket answers every request exactly once, in the order they came (Mosaic matches
//!   answers by position): at most [`IN_FLIGHT`] run at once, answered in order; an `exec` is a
//!   barrier (nothing after it starts before it is answered: a request may read its table).
//! - The socket holds one of the tenant's connections; closing it (either side) or shutting
//!   down cancels its queries.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, Session};
use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio_util::sync::CancellationToken;

use super::edge::{read_body, Authorized};
use super::Settings;
use crate::auth::Access;
use crate::engine::cache::Lookup;
use crate::engine::control::CancelReason;
use crate::engine::{scratch, ConnectionSlot, Engine, FrameKind, QuerySpec, RunningQuery};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::mosaic::{exec_statements, ExecStatement, MosaicRequest};
use crate::wire::{Format, QueryRequest};

/// Requests of one socket that run at once (Mosaic pipelines up to 33); the socket reads no
/// more until the oldest is answered.
const IN_FLIGHT: usize = 4;
/// The largest Arrow result the socket sends (one message); larger ones are refused, and the
/// REST connector streams them instead.
const MAX_SOCKET_RESULT: usize = 256 << 20;

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
    for statement in statements {
        match statement {
            ExecStatement::CreateSchema => {}
            ExecStatement::DropSchema => engine.clear_scratch(&access.tenant).await?,
            ExecStatement::CreateTable { name, select } => {
                if !scratch::valid_name(&name) {
                    return Err(GatewayError::Forbidden(format!(
                        "`{name}` is not a plain table name"
                    )));
                }
                if access.tables.is_some() {
                    return Err(GatewayError::Forbidden(
                        "a token limited to some tables cannot derive tables; its queries read \
                         them directly"
                            .into(),
                    ));
                }
                let mut spec = QuerySpec::new(
                    access.tenant.clone(),
                    QueryRequest::of_sql(select)?,
                    Transport::Http,
                )
                .derive(name);
                if let Some(token) = parent {
                    spec = spec
                        .without_connection_slot()
                        .parent(token.clone(), CancelReason::Disconnected);
                }
                let running = engine.start(spec).await?;
                drain(running).await?;
            }
        }
    }
    Ok(())
}

/// Reads a query's frames to its end; `Ok` with its pieces (the header, the batches with
/// their rows, the end) if it completed.
async fn drain(running: RunningQuery) -> Result<Vec<(Bytes, usize)>, GatewayError> {
    let RunningQuery {
        mut frames, guard, ..
    } = running;
    let _guard = guard;
    let mut out = Vec::new();
    let mut size = 0;
    while let Some(frame) = frames.recv().await {
        match frame.kind {
            FrameKind::End => {
                out.push((frame.bytes, 0));
                return Ok(out);
            }
            FrameKind::Error => return Err(GatewayError::QueryFailed(error_message(&frame.bytes))),
            FrameKind::Note => {}
            FrameKind::Metadata | FrameKind::Data => {
                size += frame.bytes.len();
                if size > MAX_SOCKET_RESULT {
                    return Err(GatewayError::LimitExceeded(format!(
                        "the result passed {MAX_SOCKET_RESULT} bytes, the most one WebSocket \
                         message carries: use the REST connector, which streams"
                    )));
                }
                out.push((frame.bytes, frame.rows));
            }
        }
    }
    Err(GatewayError::internal(
        "the query ended without its final frame",
    ))
}

/// The message of a protocol `error` line.
fn error_message(line: &Bytes) -> String {
    let mut copy = line.to_vec();
    simd_json::to_borrowed_value(&mut copy)
        .ok()
        .and_then(|v| {
            use simd_json::prelude::*;
            let code = v.get("code")?.as_str()?.to_string();
            let message = v.get("message")?.as_str()?.to_string();
            Some(format!("{code}: {message}"))
        })
        .unwrap_or_else(|| "the query failed".into())
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
    if engine.is_shutting_down() {
        return Err(GatewayError::ShuttingDown.into());
    }
    let slot = engine.connect(&access.tenant).await?;
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let limit = settings.ws.max_message_bytes;
    let stream = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit);
    let socket = Socket {
        token: engine.shutdown_token().child_token(),
        engine: engine.into_inner(),
        metrics: metrics.into_inner(),
        access,
        _slot: slot,
    };
    actix_web::rt::spawn(socket.run(session, stream));
    Ok(response)
}

struct Socket {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    access: Access,
    /// Cancels the socket's queries (a child of the process's shutdown token).
    token: CancellationToken,
    _slot: ConnectionSlot,
}

/// An answer on its way.
type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Answer>>>;

/// A request's answer: an Arrow result, or a text (`{}`, `{"error": …}`).
enum Answer {
    Arrow { bytes: Bytes, rows: u64 },
    Text(String),
}

fn error_answer(e: &GatewayError) -> Answer {
    // Mosaic shows the string as is: the code first, then the safe message.
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"error\":");
    crate::wire::json::write_str(
        &mut out,
        format!("{}: {}", e.code(), e.client_message()).as_bytes(),
    );
    out.push(b'}');
    Answer::Text(String::from_utf8_lossy(&out).into_owned())
}

impl Socket {
    /// The session loop: requests in, answers out in order, one exit.
    async fn run(self, mut session: Session, mut stream: AggregatedMessageStream) {
        let this = Arc::new(self);
        let label = [Transport::Ws.as_str()];
        let connections = this.metrics.active_connections.with_label_values(&label);
        connections.inc();
        let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
        // An `exec` is a barrier: nothing after it starts before it is answered (a request
        // may read the table it makes).
        let mut barrier = 0usize;
        let shutdown = this.engine.shutdown_token().clone();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(answer) = pending.next(), if !pending.is_empty() => {
                    barrier = barrier.saturating_sub(1);
                    let sent = match answer {
                        Answer::Arrow { bytes, rows } => {
                            let n = bytes.len() as u64;
                            let ok = session.binary(bytes).await.is_ok();
                            if ok {
                                this.metrics.rows_sent.with_label_values(&label).inc_by(rows);
                                this.metrics.bytes_sent.with_label_values(&label).inc_by(n);
                            }
                            ok
                        }
                        Answer::Text(text) => session.text(text).await.is_ok(),
                    };
                    if !sent {
                        break;
                    }
                }
                msg = stream.recv(), if pending.len() < IN_FLIGHT && barrier == 0 => match msg {
                    None | Some(Ok(AggregatedMessage::Close(_))) => break,
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        let this = Arc::clone(&this);
                        let request = MosaicRequest::from_json(&mut text.into_bytes().to_vec());
                        if matches!(request, Ok(MosaicRequest::Exec(_))) {
                            // Answered once everything before it and itself are.
                            barrier = pending.len() + 1;
                        }
                        pending.push_back(Box::pin(async move { this.answer(request).await }));
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        let e = GatewayError::BadMessage("send requests as JSON text".into());
                        pending.push_back(Box::pin(std::future::ready(error_answer(&e))));
                    }
                    Some(Ok(AggregatedMessage::Ping(p))) => {
                        if session.pong(&p).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Err(_)) => break,
                },
            }
        }
        // The single exit: cancel the socket's queries, then close it.
        this.token.cancel();
        connections.dec();
        let _ = session.close(Some(CloseCode::Normal.into())).await;
    }

    async fn answer(&self, request: Result<MosaicRequest, crate::wire::WireError>) -> Answer {
        let request = match request {
            Ok(r) => r,
            Err(e) => return error_answer(&e.into()),
        };
        // A token may expire while its socket is open: each request checks it again.
        if let Err(e) = self.access.check_fresh() {
            return error_answer(&e.into());
        }
        let answered = match request {
            MosaicRequest::Exec(sql) => exec(&self.engine, &self.access, &sql, Some(&self.token))
                .await
                .map(|()| Answer::Text("{}".into())),
            MosaicRequest::Arrow(sql) => self.arrow(sql).await,
        };
        answered.unwrap_or_else(|e| error_answer(&e))
    }

    /// An Arrow result whole: from the cache, or run (and then cached).
    async fn arrow(&self, sql: String) -> Result<Answer, GatewayError> {
        let spec = QuerySpec::new(self.access.tenant.clone(), arrow_query(sql)?, Transport::Ws)
            .format(Format::Arrow)
            .tables(self.access.tables.clone())
            .without_connection_slot()
            .parent(self.token.clone(), CancelReason::Disconnected);
        let ticket = match self.engine.cached(&spec, "mosaic-ws").await? {
            Lookup::Hit { result, .. } => {
                return Ok(Answer::Arrow {
                    bytes: Bytes::from(result.chunks.concat()),
                    rows: result.rows,
                })
            }
            Lookup::Miss(ticket) => Some(ticket),
            Lookup::Bypass => None,
        };
        let (running, recording) = self.engine.start_recorded(spec, ticket).await?;
        let pieces = drain(running).await?;
        let rows = pieces.iter().map(|(_, n)| *n as u64).sum();
        let mut recorder = recording.recorder;
        for (bytes, n) in &pieces {
            recorder = recorder.and_then(|r| r.push(bytes, *n));
        }
        if let Some(r) = recorder {
            r.complete();
        }
        let bytes: Vec<u8> = pieces.iter().flat_map(|(b, _)| b.iter().copied()).collect();
        Ok(Answer::Arrow {
            bytes: Bytes::from(bytes),
            rows,
        })
    }
}
