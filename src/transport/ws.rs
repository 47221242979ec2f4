//! The WebSocket transport: `GET /v1/{tenant}/ws[?compression=zstd|none]`, many queries per
//! connection, each answered with protocol lines tagged with the client's `id`.
//!
//! Shape (actix/examples style): one session task per connection runs a single loop over
//! client messages, outgoing messages, the heartbeat and shutdown, and has a single exit point
//! that cancels the connection's queries and closes the socket. Each query runs in a task of its
//! own that starts it on the engine and forwards its messages (grouped and compressed on the
//! shared workers, see [`super::compress::Pool::frames`]) to the session through one bounded
//! channel, so queries interleave fairly (first come, first served, one message at a time).
//!
//! Invariants:
//! - Every server message holds complete NDJSON lines of one query; with `zstd` it is one
//!   binary message holding one independent zstd frame with its content size; with `none`, a
//!   text message. An Arrow query's results are binary messages of whole IPC messages
//!   (compressed the same way) between its `arrow` line and its last line, which are text;
//!   the connection's `arrow_lane` lets one Arrow result out at a time.
//! - Memory is bounded per connection and for the process: messages waiting for the socket hold
//!   permits of the connection's byte budget (`ws_send_budget_bytes`) and of one shared by all
//!   connections (`ws_total_budget_bytes`); when either is spent, queries pause, and so does DuckDB.
//!   One message per connection may go out without the shared budget (its floor), so slow
//!   readers elsewhere cannot hold up a socket that has nothing queued.
//! - A client that takes no data for `ws_slow_consumer_timeout` is closed with 1008; one silent
//!   for `ws_pong_timeout` with 1001; a message over `ws_max_message_bytes` closes with 1009.
//! - Closing the socket (either side) or shutting down cancels every query of the connection.
//! - When the server drains, a socket closes with 1012 (service restart) as soon as it has no
//!   running query (its subscriptions end with it; clients resume them elsewhere by version);
//!   at shutdown, at once.
//! - Bad client input is answered with an `error` line `bad_message`; it never closes the socket
//!   (except an oversized message) and is never logged above debug.
//! - A subscription runs in a task of its own that forwards its channel's results
//!   ([`super::live`]); their messages are made once for every socket, and count against the
//!   same budgets. Closing the socket ends all of its subscriptions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::compress::{self, WireChunk};
use super::edge::Authorized;
use super::live::{self, Hub};
use super::Settings;
use crate::auth::Access;
use crate::encode::{self, Layout};
use crate::engine::{CancelReason, Engine, QuerySpec, StreamSlot};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::lines;
use crate::wire::{BadMessage, ClientMessage, Format, QueryRequest};

/// WebSocket settings.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Queries running at once on one socket.
    pub queries_per_socket: usize,
    /// Live subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// A quiet subscription sends a `heartbeat` this often.
    pub heartbeat: Duration,
    pub send_budget_bytes: usize,
    /// Shared by every connection: bounds the memory all sockets can hold together.
    pub total_budget: Arc<Semaphore>,
    /// The shared budget's size: what one gathered Mosaic result may hold of it at most.
    pub total_budget_bytes: usize,
    pub slow_consumer_timeout: Duration,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
    pub max_message_bytes: usize,
}

#[derive(Debug, Deserialize)]
pub struct WsParams {
    compression: Option<String>,
}

/// Messages queued between the query tasks and the session: few, since each holds budget.
/// They travel boxed: a tokio channel allocates its slots in blocks of 32 when it is made,
/// and 32 [`Outgoing`]s (about 130 bytes each) were 4 KiB of every idle connection.
const OUT_QUEUE: usize = 8;
/// How long a close frame may wait to get into a full send queue.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

// Each argument is an actix extractor: what the handler uses, named.
#[allow(clippy::too_many_arguments)]
pub async fn ws_query(
    Authorized(access): Authorized,
    req: HttpRequest,
    body: web::Payload,
    params: web::Query<WsParams>,
    engine: web::Data<Engine>,
    hub: web::Data<Hub>,
    settings: web::Data<Settings>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, actix_web::Error> {
    let level = match params.compression.as_deref() {
        None | Some("zstd") => Some(settings.zstd_level),
        Some("none") => None,
        Some(other) => {
            return Err(GatewayError::InvalidRequest(format!(
                "compression must be zstd or none, not `{other}`"
            ))
            .into())
        }
    };
    let (response, session, stream, slot) =
        upgrade(&req, body, &access, &engine, &settings).await?;
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let connection = Connection {
        token: engine.shutdown_token().child_token(),
        budget: Arc::new(Semaphore::new(settings.ws.send_budget_bytes)),
        floor: Arc::new(Semaphore::new(1)),
        queries: HashMap::new(),
        subscriptions: HashMap::new(),
        out_tx,
        arrow_lane: Arc::new(tokio::sync::Mutex::new(())),
        access,
        level,
        hub: hub.into_inner(),
        engine: engine.into_inner(),
        settings: settings.into_inner(),
        metrics: metrics.into_inner(),
        _slot: slot,
    };
    actix_web::rt::spawn(connection.run(session, stream, out_rx));
    Ok(response)
}

/// Upgrades a request to a WebSocket for `access`'s tenant, as every socket route does:
/// refused while draining or shutting down, and before upgrading when the tenant has no stream slot
/// left (the slot is the socket's for its life); client messages up to `ws_max_message_bytes`,
/// continuations aggregated.
pub(super) async fn upgrade(
    req: &HttpRequest,
    body: web::Payload,
    access: &Access,
    engine: &Engine,
    settings: &Settings,
) -> Result<(HttpResponse, Session, AggregatedMessageStream, StreamSlot), actix_web::Error> {
    if engine.is_draining() {
        return Err(GatewayError::ShuttingDown.into());
    }
    let slot = engine.stream_slot_of(&access.tenant).await?;
    let (response, session, stream) = actix_ws::handle(req, body)?;
    let limit = settings.ws.max_message_bytes;
    let stream = stream
        .max_frame_size(limit)
        .aggregate_continuations()
        .max_continuation_size(limit);
    Ok((response, session, stream, slot))
}

/// One message on its way to the socket.
struct Outgoing {
    id: Arc<str>,
    /// Of a subscription (its last message ends it), not of a query.
    subscription: bool,
    message: WireChunk,
    shape: Shape,
    /// Set on the query's first message with rows: when the query was accepted (for TTFB).
    first_data_of: Option<Instant>,
    /// Budget (the connection's and the process's) held until the message is handed to the
    /// socket.
    _permit: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
}

struct Connection {
    engine: Arc<Engine>,
    hub: Arc<Hub>,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    /// What the connection's credential allows (checked again per query: tokens expire).
    access: Access,
    /// One of the tenant's `max_streams`, held until the connection ends.
    _slot: StreamSlot,
    level: Option<i32>,
    /// Cancels every query of this connection (a child of the process's shutdown token).
    token: CancellationToken,
    budget: Arc<Semaphore>,
    /// One message of the connection may be on its way without the process's budget (see
    /// [`Outbox::permit`]).
    floor: Arc<Semaphore>,
    /// Running queries by client id, with the token that cancels each.
    queries: HashMap<String, CancellationToken>,
    /// Live subscriptions by client id, with the token that ends each.
    subscriptions: HashMap<String, CancellationToken>,
    out_tx: mpsc::Sender<Box<Outgoing>>,
    /// Held by the Arrow query whose binary messages are being sent: binary results go out
    /// one after another, so each one's messages follow its `arrow` line unmixed.
    arrow_lane: Arc<tokio::sync::Mutex<()>>,
}

/// What kind of WebSocket message carries an outgoing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The connection's framing of protocol lines: binary zstd frames, or text.
    Lines,
    /// Binary whatever the compression (Arrow IPC messages).
    Binary,
    /// A JSON text message, never compressed (control lines beside Arrow).
    Text,
}

/// Why the loop ended: a close frame to send, or none (the client is gone).
type Exit = Option<CloseReason>;

/// 1012 (service restart): this replica is going away; reconnect (through the balancer, to
/// another one) and resume each subscription by its version.
fn moving_away() -> Exit {
    close(CloseCode::Restart, "server restarting: reconnect")
}

fn close(code: CloseCode, why: &str) -> Exit {
    Some(CloseReason {
        code,
        description: Some(why.to_string()),
    })
}

impl Connection {
    async fn run(
        mut self,
        mut session: Session,
        mut stream: AggregatedMessageStream,
        mut out_rx: mpsc::Receiver<Box<Outgoing>>,
    ) {
        let settings = self.settings.ws.clone();
        let metrics = Arc::clone(&self.metrics);
        let label = [Transport::Ws.as_str()];
        let (rows, bytes, raw) = (
            metrics.rows_sent.with_label_values(&label),
            metrics.bytes_sent.with_label_values(&label),
            metrics.uncompressed_bytes.with_label_values(&label),
        );
        let ttfb = metrics.ttfb.with_label_values(&label);
        let connections = metrics.active_connections.with_label_values(&label);
        connections.inc();
        let mut heartbeat = tokio::time::interval(settings.ping_interval);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        let shutdown = self.engine.shutdown_token().clone();
        let drain = self.engine.drain_token().clone();
        let mut draining = false;

        let exit: Exit = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break moving_away(),
                // Draining: the socket closes once its running queries are done (below).
                _ = drain.cancelled(), if !draining => {
                    draining = true;
                    if self.queries.is_empty() {
                        break moving_away();
                    }
                }
                msg = stream.recv() => {
                    last_heard = Instant::now();
                    match msg {
                        None => break None,
                        // Answer the client's close frame with ours (RFC 6455 §5.5.1).
                        Some(Ok(AggregatedMessage::Close(reason))) => {
                            break Some(reason.unwrap_or_else(|| CloseCode::Normal.into()));
                        }
                        Some(Ok(AggregatedMessage::Text(text))) => {
                            let reply = self.on_text(text.into_bytes().to_vec());
                            if let Some(line) = reply {
                                if let Err(exit) = self.send_now(&mut session, line, &settings).await {
                                    break exit;
                                }
                            }
                        }
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            let line = error_line(
                                None,
                                GatewayError::BadMessage(
                                    "binary messages are not accepted: send JSON text".into(),
                                ),
                            );
                            if let Err(exit) = self.send_now(&mut session, line, &settings).await {
                                break exit;
                            }
                        }
                        Some(Ok(AggregatedMessage::Ping(payload))) => {
                            if session.pong(&payload).await.is_err() {
                                break None;
                            }
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => {}
                        Some(Err(actix_ws::ProtocolError::Overflow)) => {
                            break close(CloseCode::Size, "message too big");
                        }
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "websocket protocol error");
                            break close(CloseCode::Protocol, "protocol error");
                        }
                    }
                }
                Some(out) = out_rx.recv() => {
                    let out = *out;
                    if out.message.last {
                        if out.subscription {
                            self.subscriptions.remove(out.id.as_ref());
                        } else {
                            self.queries.remove(out.id.as_ref());
                        }
                    }
                    let n = out.message.bytes.len() as u64;
                    let (r, raw_len) = (out.message.rows as u64, out.message.raw_len as u64);
                    match self.send(&mut session, out.message.bytes, out.shape, &settings).await {
                        Ok(()) => {
                            if let Some(accepted) = out.first_data_of {
                                ttfb.observe(accepted.elapsed().as_secs_f64());
                            }
                            rows.inc_by(r);
                            bytes.inc_by(n);
                            raw.inc_by(raw_len);
                        }
                        Err(exit) => break exit,
                    }
                    if draining && self.queries.is_empty() {
                        break moving_away();
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > settings.pong_timeout {
                        break close(CloseCode::Away, "no pong");
                    }
                    if session.ping(b"").await.is_err() {
                        break None;
                    }
                }
            }
        };

        // The single exit: cancel the connection's queries, then close the socket.
        self.token.cancel();
        connections.dec();
        if matches!(&exit, Some(r) if r.code == CloseCode::Policy) {
            metrics
                .slow_consumer_disconnects
                .with_label_values(&label)
                .inc();
        }
        if let Some(reason) = exit {
            tracing::debug!(code = ?reason.code, why = ?reason.description, "closing websocket");
            // A slow consumer's queue is full: the close frame waits its turn behind what is
            // queued, for a bounded time, then the connection is dropped anyway.
            let _ = tokio::time::timeout(CLOSE_GRACE, session.close(Some(reason))).await;
        }
    }

    /// Handles one text message; returns a line to answer with right away, if any.
    fn on_text(&mut self, mut text: Vec<u8>) -> Option<Bytes> {
        match ClientMessage::parse(&mut text) {
            Ok(ClientMessage::Ping) => Some(lines::pong_line()),
            Ok(ClientMessage::Cancel { id }) => match self.queries.get(&id) {
                Some(token) => {
                    token.cancel();
                    None
                }
                None => Some(error_line(Some(&id), GatewayError::UnknownQuery)),
            },
            Ok(ClientMessage::Query { id, request }) => self.start_query(id, request),
            Ok(ClientMessage::Subscribe {
                id,
                request,
                interval_ms,
                version,
            }) => self.subscribe(id, request, interval_ms, version),
            Ok(ClientMessage::Unsubscribe { id }) => match self.subscriptions.get(&id) {
                Some(token) => {
                    token.cancel();
                    None
                }
                None => Some(error_line(Some(&id), GatewayError::UnknownQuery)),
            },
            Err(BadMessage { id, reason }) => {
                tracing::debug!(reason, "bad websocket message");
                Some(error_line(id.as_deref(), GatewayError::BadMessage(reason)))
            }
        }
    }

    fn subscribe(
        &mut self,
        id: String,
        request: QueryRequest,
        interval_ms: Option<u64>,
        version: Option<u64>,
    ) -> Option<Bytes> {
        if self.queries.contains_key(&id) || self.subscriptions.contains_key(&id) {
            return Some(error_line(Some(&id), GatewayError::DuplicateId));
        }
        if let Err(e) = super::ndjson_only(&request, "live subscriptions") {
            return Some(error_line(Some(&id), e));
        }
        if self.subscriptions.len() >= self.settings.ws.max_subscriptions {
            let e = GatewayError::TooManySubscriptions(self.settings.ws.max_subscriptions);
            return Some(error_line(Some(&id), e));
        }
        if let Err(e) = self.access.check_fresh() {
            return Some(error_line(Some(&id), e.into()));
        }
        let cancel = CancellationToken::new();
        self.subscriptions.insert(id.clone(), cancel.clone());
        let task = SubscriptionTask {
            hub: Arc::clone(&self.hub),
            access: self.access.clone(),
            request,
            interval_ms,
            version,
            cancel,
            outbox: self.outbox(id.into(), true),
        };
        actix_web::rt::spawn(task.run());
        None
    }

    /// Where a query's or a subscription's messages go.
    fn outbox(&self, id: Arc<str>, subscription: bool) -> Outbox {
        Outbox {
            id,
            subscription,
            settings: Arc::clone(&self.settings),
            connection: self.token.clone(),
            out: self.out_tx.clone(),
            budget: Arc::clone(&self.budget),
            floor: Arc::clone(&self.floor),
            level: self.level,
        }
    }

    fn start_query(&mut self, id: String, request: QueryRequest) -> Option<Bytes> {
        if self.queries.contains_key(&id) || self.subscriptions.contains_key(&id) {
            return Some(error_line(Some(&id), GatewayError::DuplicateId));
        }
        if let Some(f) = request
            .format
            .filter(|f| encode::layout(*f) == Layout::Body)
        {
            let e = GatewayError::InvalidRequest(format!(
                "WebSocket results are NDJSON lines or Arrow; format {} is for POST/GET /v1/{{tenant}}/query",
                f.as_str()
            ));
            return Some(error_line(Some(&id), e));
        }
        if self.queries.len() >= self.settings.ws.queries_per_socket {
            let e = GatewayError::TooManyQueries(self.queries.len());
            return Some(error_line(Some(&id), e));
        }
        if let Err(e) = self.access.check_fresh() {
            return Some(error_line(Some(&id), e.into()));
        }
        let cancel = CancellationToken::new();
        self.queries.insert(id.clone(), cancel.clone());
        let task = QueryTask {
            engine: Arc::clone(&self.engine),
            access: self.access.clone(),
            request,
            lane: Arc::clone(&self.arrow_lane),
            cancel,
            outbox: self.outbox(id.into(), false),
        };
        actix_web::rt::spawn(task.run());
        None
    }

    /// Sends a control line (pong, bad message) in this connection's framing.
    async fn send_now(
        &self,
        session: &mut Session,
        line: Bytes,
        settings: &WsSettings,
    ) -> Result<(), Exit> {
        let bytes = match self.level {
            Some(level) => match compress::compress_small(&line, level) {
                Ok(v) => Bytes::from(v),
                Err(_) => return Err(close(CloseCode::Error, "compression failed")),
            },
            None => line,
        };
        self.send(session, bytes, Shape::Lines, settings).await
    }

    /// Hands one message to the socket, closing slow consumers.
    async fn send(
        &self,
        session: &mut Session,
        bytes: Bytes,
        shape: Shape,
        settings: &WsSettings,
    ) -> Result<(), Exit> {
        let binary = match shape {
            Shape::Lines => self.level.is_some(),
            Shape::Binary => true,
            Shape::Text => false,
        };
        let sent = match binary {
            true => {
                tokio::time::timeout(settings.slow_consumer_timeout, send_binary(session, bytes))
                    .await
            }
            false => {
                let text = match bytestring::ByteString::try_from(bytes) {
                    Ok(t) => t,
                    Err(_) => return Err(close(CloseCode::Error, "invalid UTF-8")),
                };
                tokio::time::timeout(settings.slow_consumer_timeout, session.text(text)).await
            }
        };
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(None),
            Err(_elapsed) => Err(close(CloseCode::Policy, "slow consumer")),
        }
    }
}

/// Sends `bytes` as one binary message; a big one (an Arrow batch, a Mosaic result) in
/// continuation frames of at most [`compress::MAX_MESSAGE`], so that what actix-ws queues
/// outside the byte budgets stays bounded by its queue length times that size.
pub(super) async fn send_binary(
    session: &mut Session,
    mut bytes: Bytes,
) -> Result<(), actix_ws::Closed> {
    if bytes.len() <= compress::MAX_MESSAGE {
        return session.binary(bytes).await;
    }
    let mut first = true;
    while !bytes.is_empty() {
        let piece = bytes.split_to(bytes.len().min(compress::MAX_MESSAGE));
        let item = match (first, bytes.is_empty()) {
            (true, _) => actix_ws::Item::FirstBinary(piece),
            (false, false) => actix_ws::Item::Continue(piece),
            (false, true) => actix_ws::Item::Last(piece),
        };
        first = false;
        session.continuation(item).await?;
    }
    Ok(())
}

/// A line answering a message, in the error's code (`query_id` null when the message had none).
fn error_line(id: Option<&str>, e: GatewayError) -> Bytes {
    lines::error_line_for(id, e.code(), &e.client_message())
}

/// Where one query's (or subscription's) messages go: the session's queue, under the
/// connection's and the process's byte budgets.
struct Outbox {
    id: Arc<str>,
    subscription: bool,
    settings: Arc<Settings>,
    connection: CancellationToken,
    out: mpsc::Sender<Box<Outgoing>>,
    budget: Arc<Semaphore>,
    floor: Arc<Semaphore>,
    level: Option<i32>,
}

impl Outbox {
    /// Queues a message of protocol lines once budget is free; `false` if the connection is
    /// gone.
    async fn push(&self, message: WireChunk, first_data_of: Option<Instant>) -> bool {
        self.push_as(message, first_data_of, Shape::Lines).await
    }

    /// Queues a message of the given shape once budget is free.
    async fn push_as(
        &self,
        message: WireChunk,
        first_data_of: Option<Instant>,
        shape: Shape,
    ) -> bool {
        let Some(permit) = self.permit(message.bytes.len()).await else {
            return false;
        };
        let out = Box::new(Outgoing {
            id: Arc::clone(&self.id),
            subscription: self.subscription,
            message,
            shape,
            first_data_of,
            _permit: Some(permit),
        });
        self.out.send(out).await.is_ok()
    }

    /// Queues one control line in the connection's framing; `last` ends the query or
    /// subscription.
    async fn line(&self, line: Bytes, last: bool) -> bool {
        let raw_len = line.len();
        let bytes = match self.level {
            Some(level) => match compress::compress_small(&line, level) {
                Ok(v) => Bytes::from(v),
                Err(_) => return false,
            },
            None => line,
        };
        let message = WireChunk {
            bytes,
            raw_len,
            rows: 0,
            has_data: false,
            last,
            complete: false,
            text: false,
        };
        self.push(message, None).await
    }

    /// Budget for `len` bytes from the connection, then from the process (a message larger
    /// than a whole budget takes all of it) or the connection's floor.
    ///
    /// The floor: a connection with no message on the floor may send one without the
    /// process's budget. Slow readers elsewhere can spend the process's budget whole; without
    /// the floor, a small query on an idle socket would then wait for them until they read
    /// (`ws::a_stalled_socket_holding_the_shared_budget_does_not_hold_up_another`). What all
    /// sockets hold stays bounded: the process's budget plus one message per connection.
    async fn permit(&self, len: usize) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let n = len.clamp(1, self.settings.ws.send_budget_bytes) as u32;
        let total = Arc::clone(&self.settings.ws.total_budget);
        let floor = Arc::clone(&self.floor);
        tokio::select! {
            p = async {
                let own = Arc::clone(&self.budget).acquire_many_owned(n).await.ok()?;
                // Either is fine; a lost race gives its place back (tokio's acquire is
                // cancel-safe).
                let shared = tokio::select! {
                    p = floor.acquire_owned() => p,
                    p = total.acquire_many_owned(n) => p,
                };
                Some((own, shared.ok()?))
            } => p,
            _ = self.connection.cancelled() => None,
        }
    }
}

/// A control line as a text message of its own.
fn text_message(line: Bytes) -> WireChunk {
    WireChunk {
        raw_len: line.len(),
        bytes: line,
        rows: 0,
        has_data: false,
        last: false,
        complete: false,
        text: true,
    }
}

/// Runs one query of a connection and forwards its messages to the session.
struct QueryTask {
    engine: Arc<Engine>,
    access: Access,
    request: QueryRequest,
    /// The connection's lane for binary results (Arrow).
    lane: Arc<tokio::sync::Mutex<()>>,
    cancel: CancellationToken,
    outbox: Outbox,
}

impl QueryTask {
    async fn run(self) {
        let outbox = &self.outbox;
        // The socket holds the tenant's stream slot; the connection's token is the parent.
        let spec = QuerySpec::new(
            self.access.tenant.clone(),
            self.request.clone(),
            Transport::Ws,
        )
        .query_id(Arc::clone(&outbox.id))
        .tables(self.access.tables.clone())
        .format(self.format())
        .without_connection_slot()
        .parent(outbox.connection.clone(), CancelReason::Disconnected);
        let arrow = self.binary();
        let start = self.engine.start(spec);
        let started = tokio::select! {
            r = start => r,
            _ = self.cancel.cancelled() => Err(GatewayError::Cancelled),
            _ = outbox.connection.cancelled() => return,
        };
        let running = match started {
            Ok(r) => r,
            Err(e) => return self.fail(e).await,
        };
        let accepted_at = running.accepted_at;
        let control = Arc::clone(&running.control);
        let _guard = running.guard;
        let buffer = outbox.settings.stream_buffer;
        let pool = &outbox.settings.compression;
        let mut messages = if arrow {
            pool.messages(
                running.frames,
                outbox.level,
                buffer,
                Arc::clone(&outbox.id),
                accepted_at,
            )
        } else {
            pool.frames(running.frames, outbox.level, buffer)
        };
        // A client `cancel` interrupts the running query; the executor then sends `cancelled`.
        let cancel = self.cancel.clone();
        let watched = Arc::clone(&control);
        actix_web::rt::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => watched.cancel(CancelReason::Client),
                _ = watched.finished() => {}
            }
        });
        // A binary result holds the connection's lane from its first binary message (after
        // its `arrow` line) to its last line; its text lines before that need none. A query
        // cancelled while it waits for the lane sends none of its binary messages, only its
        // final line.
        let mut lane = None;
        let mut discard = false;
        let mut first_data = Some(accepted_at);
        while let Some(message) = messages.recv().await {
            let last = message.last;
            let binary = arrow && !message.text;
            if binary && discard {
                continue;
            }
            if binary && lane.is_none() {
                tokio::select! {
                    l = self.lane.lock() => lane = Some(l),
                    _ = self.cancel.cancelled() => {
                        discard = true;
                        continue;
                    }
                    _ = outbox.connection.cancelled() => return,
                }
                let line = lines::arrow_line(&outbox.id);
                if !outbox.push_as(text_message(line), None, Shape::Text).await {
                    return;
                }
            }
            let first_data_of = if message.has_data {
                first_data.take()
            } else {
                None
            };
            let shape = match (arrow, message.text) {
                (false, _) => Shape::Lines,
                (true, false) => Shape::Binary,
                (true, true) => Shape::Text,
            };
            if !outbox.push_as(message, first_data_of, shape).await || last {
                return;
            }
        }
        // The pipeline ended without a final line (the executor gave up handing it over):
        // the client still learns that the query is over, and its id is free again.
        let e = GatewayError::internal("the query's stream ended without its final line");
        let line = error_line(Some(&outbox.id), e);
        if arrow {
            let mut message = text_message(line);
            message.last = true;
            outbox.push_as(message, None, Shape::Text).await;
        } else {
            outbox.line(line, true).await;
        }
    }

    fn format(&self) -> Format {
        self.request.format.unwrap_or_default()
    }

    /// Whether the result is binary messages (Arrow) between text lines, or lines alone.
    fn binary(&self) -> bool {
        encode::layout(self.format()) == Layout::BinaryMessages
    }

    /// The query failed before it started: its only line is the error (a text message for an
    /// Arrow query, like all its lines).
    async fn fail(&self, e: GatewayError) {
        let line = lines::error_line(&self.outbox.id, e.code(), &e.client_message());
        if self.binary() {
            let mut message = text_message(line);
            message.last = true;
            self.outbox.push_as(message, None, Shape::Text).await;
        } else {
            self.outbox.line(line, true).await;
        }
    }
}

/// Forwards one subscription's results (its channel's state) to the session: the current one
/// at once, then each newer one; a heartbeat when quiet.
struct SubscriptionTask {
    hub: Arc<Hub>,
    access: Access,
    request: QueryRequest,
    interval_ms: Option<u64>,
    /// The version the client holds (resume).
    version: Option<u64>,
    cancel: CancellationToken,
    outbox: Outbox,
}

impl SubscriptionTask {
    async fn run(self) {
        let outbox = &self.outbox;
        let subscribed = tokio::select! {
            s = self.hub.subscribe(&self.access, self.request.clone(), self.interval_ms, Transport::Ws) => s,
            _ = outbox.connection.cancelled() => return,
        };
        let sub = match subscribed {
            Ok(s) => s,
            Err(e) => {
                let line = lines::error_line(&outbox.id, e.code(), &e.client_message());
                outbox.line(line, true).await;
                return;
            }
        };
        let how = live::Follow {
            id: &outbox.id,
            version: self.version,
            access: &self.access,
            heartbeat: outbox.settings.ws.heartbeat,
            unsubscribe: self.cancel.clone(),
            gone: outbox.connection.clone(),
            drain: None,
        };
        live::follow(sub, how, &mut &self.outbox).await;
    }
}

impl live::Sink for &Outbox {
    async fn line(&mut self, line: Bytes, last: bool) -> bool {
        Outbox::line(self, line, last).await
    }

    async fn delivery(&mut self, delivery: &Arc<live::Delivery>) -> bool {
        for m in delivery.messages(self.level).await.iter() {
            let message = WireChunk {
                bytes: m.bytes.clone(),
                raw_len: m.raw_len,
                rows: m.rows,
                has_data: m.rows > 0,
                last: false,
                complete: false,
                text: false,
            };
            if !self.push(message, None).await {
                return false;
            }
        }
        true
    }
}
