//! Live subscriptions: a query whose result is pushed again whenever it would differ. Every
//! subscriber of the same query shares one *channel*: one DuckDB execution per change, its lines
//! encoded once (tagged with the channel's id) and compressed once per framing, then handed to
//! each subscriber as state, so a slow one skips to the newest result instead of queueing them.
//!
//! Invariants:
//! - A channel's key is everything that makes its bytes: tenant (and its incarnation), SQL,
//!   params, output options, the token's table scope, and the interval. Its id (`s-<hex>`) is a
//!   digest of that key.
//! - A channel re-runs only when it may have changed: after a write to a table its plan read
//!   (a write elsewhere does not wake it; see [`crate::engine::DataWatch::is_current`]), after
//!   any write when its tables are unknown, or on its interval. A re-run whose lines (all but
//!   `end`, whose `elapsed_ms` varies) hash the same as the last result delivers nothing.
//! - A result is held whole in memory (at most `max_bytes`, else the channel's state is a
//!   `limit_exceeded` error) and exactly one per channel: the newest. A subscriber that is
//!   still sending an older one picks the newest when done.
//! - A channel lives while a subscriber holds it: the last one gone cancels its driver, which
//!   interrupts a running execution.
//! - A first run that fails before streaming (invalid SQL, a forbidden table, bad params) is
//!   fatal: every subscriber gets the error with its own id and the subscription ends.
//! - A later run refused because the storage does not answer (`storage_unavailable`) delivers
//!   nothing: subscribers keep the last result, and the channel runs again every
//!   [`RETRY`] until the storage answers.
//! - With `progress`, a run's `progress` lines go to the subscribers as they come (a lossy
//!   broadcast: a lagging subscriber misses some), never into a result or its hash.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::compress;
use crate::auth::Access;
use crate::engine::Variant;
use crate::engine::{CacheKey, CancelReason, DataWatch, Engine, FrameKind, QuerySpec, Stamp};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::{lines, QueryRequest, TenantId};

/// Lines of one result are grouped into WebSocket messages of about this size.
const MESSAGE_BYTES: usize = 64 * 1024;

/// How long a channel waits before running again when the server was too busy or the
/// storage did not answer.
const RETRY: Duration = Duration::from_secs(1);

/// Whether a run that failed with `e` is tried again after [`RETRY`] rather than delivered:
/// the server was too busy, or (once the channel has a result to keep) the storage did not
/// answer.
fn retried_later(e: &GatewayError, first: bool) -> bool {
    matches!(e, GatewayError::TooBusy)
        || (!first && matches!(e, GatewayError::StorageUnavailable(_)))
}

/// What subscribers share a channel by: the result's cache key (tenant, SQL, params, output
/// options, table scope) and the interval.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChannelKey {
    result: CacheKey,
    interval_ms: Option<u64>,
}

/// One result of a channel, as every subscriber gets it.
#[derive(Debug)]
pub struct Delivery {
    /// The result's data version (the newest write to a table it read).
    pub version: u64,
    /// Only a deterministic result is known unchanged by its version (resume).
    pub deterministic: bool,
    /// The first run failed before streaming: `(code, message)`; the channel has ended.
    pub fatal: Option<(&'static str, String)>,
    /// `update`, then the result's lines (`metadata`, `data`…, `end` | `error`), with the rows
    /// each carries.
    lines: Vec<(Bytes, usize)>,
    /// WebSocket messages, made once per framing: `[text, zstd]`.
    messages: [tokio::sync::OnceCell<Arc<Vec<Message>>>; 2],
}

/// One WebSocket message of a delivery.
#[derive(Debug, Clone)]
pub struct Message {
    pub bytes: Bytes,
    pub rows: usize,
    /// Its NDJSON bytes before compression.
    pub raw_len: usize,
}

impl Delivery {
    /// The delivery as WebSocket messages (`level`: zstd, one independent frame each; `None`:
    /// text), compressed once for every subscriber that asks, on a blocking thread.
    pub async fn messages(self: &Arc<Self>, level: Option<i32>) -> Arc<Vec<Message>> {
        let cell = &self.messages[usize::from(level.is_some())];
        let this = Arc::clone(self);
        cell.get_or_init(|| async move {
            let build = move || Arc::new(this.build_messages(level));
            tokio::task::spawn_blocking(build)
                .await
                .unwrap_or_else(|_| Arc::new(Vec::new()))
        })
        .await
        .clone()
    }

    fn build_messages(&self, level: Option<i32>) -> Vec<Message> {
        let mut out = Vec::new();
        let mut buf = Vec::with_capacity(MESSAGE_BYTES);
        let mut rows = 0;
        let mut flush = |buf: &mut Vec<u8>, rows: &mut usize| {
            if buf.is_empty() {
                return;
            }
            let raw_len = buf.len();
            let bytes = match level {
                Some(l) => match compress::compress_small(buf, l) {
                    Ok(v) => Bytes::from(v),
                    Err(_) => return,
                },
                None => Bytes::copy_from_slice(buf),
            };
            out.push(Message {
                bytes,
                rows: *rows,
                raw_len,
            });
            buf.clear();
            *rows = 0;
        };
        for (line, n) in &self.lines {
            if !buf.is_empty() && buf.len() + line.len() > MESSAGE_BYTES {
                flush(&mut buf, &mut rows);
            }
            buf.extend_from_slice(line);
            rows += n;
        }
        flush(&mut buf, &mut rows);
        out
    }
}

/// A channel, held by its subscribers; the last one dropped stops it.
pub struct Channel {
    pub id: Arc<str>,
    state: watch::Receiver<Option<Arc<Delivery>>>,
    /// The running execution's `progress` lines (channels that asked for them).
    progress: tokio::sync::broadcast::Sender<Bytes>,
    stop: CancellationToken,
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One subscriber's hold on a channel (and on one of its tenant's `max_subscriptions`).
pub struct Subscription {
    pub channel: Arc<Channel>,
    _permit: OwnedSemaphorePermit,
}

impl Subscription {
    /// The channel's state: the newest delivery (`None` until the first run ends).
    pub fn state(&self) -> watch::Receiver<Option<Arc<Delivery>>> {
        self.channel.state.clone()
    }

    /// The `progress` lines of the channel's runs from now on.
    pub fn progress(&self) -> tokio::sync::broadcast::Receiver<Bytes> {
        self.channel.progress.subscribe()
    }
}

/// `progress` lines a lagging subscriber may be behind before it misses some.
const PROGRESS_BACKLOG: usize = 8;

/// The live subscriptions of the server.
pub struct Hub {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    channels: Mutex<HashMap<ChannelKey, Weak<Channel>>>,
    /// Each tenant's `max_subscriptions`.
    permits: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
    max_bytes: usize,
}

impl Hub {
    pub fn new(engine: Arc<Engine>, metrics: Arc<Metrics>, max_bytes: usize) -> Self {
        Self {
            engine,
            metrics,
            channels: Mutex::new(HashMap::new()),
            permits: Mutex::new(HashMap::new()),
            max_bytes,
        }
    }

    /// Subscribes `access` to `request`: joins the channel of the same query, or starts one.
    pub async fn subscribe(
        &self,
        access: &Access,
        request: QueryRequest,
        interval_ms: Option<u64>,
        label: Transport,
    ) -> Result<Subscription, GatewayError> {
        let data = self.engine.watch_data(&access.tenant).await?;
        let limits = data.limits();
        let interval = interval_ms.map(Duration::from_millis);
        if let Some(i) = interval {
            if i < limits.min_interval {
                return Err(GatewayError::InvalidRequest(format!(
                    "interval_ms must be at least {} for this tenant",
                    limits.min_interval.as_millis()
                )));
            }
        }
        let permits = {
            let mut all = self.permits.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(
                all.entry(access.tenant.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(limits.max_subscriptions))),
            )
        };
        let permit = permits
            .try_acquire_owned()
            .map_err(|_| GatewayError::TooManySubscriptions(limits.max_subscriptions))?;
        let stop = self.engine.shutdown_token().child_token();
        let spec = QuerySpec::new(access.tenant.clone(), request, label)
            .tables(access.tables.clone())
            .without_connection_slot()
            .stamped()
            .parent(stop.clone(), CancelReason::Disconnected);
        let key = ChannelKey {
            result: CacheKey::new(&spec, data.incarnation(), Variant::Live),
            interval_ms,
        };
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(&key).and_then(Weak::upgrade) {
            if channel.state.borrow().is_some() {
                // Joined a channel with a result: one execution saved.
                self.metrics.executions_saved.inc();
            }
            return Ok(Subscription {
                channel,
                _permit: permit,
            });
        }
        channels.retain(|_, c| c.strong_count() > 0);
        let id: Arc<str> = {
            let mut h = std::hash::DefaultHasher::new();
            key.hash(&mut h);
            format!("s-{:016x}", h.finish()).into()
        };
        let (tx, state) = watch::channel(None);
        let (progress, _) = tokio::sync::broadcast::channel(PROGRESS_BACKLOG);
        let spec = spec.query_id(Arc::clone(&id));
        let driver = Driver {
            engine: Arc::clone(&self.engine),
            metrics: Arc::clone(&self.metrics),
            spec,
            id: Arc::clone(&id),
            tx,
            stop: stop.clone(),
            data,
            interval,
            max_bytes: self.max_bytes,
            progress: progress.clone(),
        };
        actix_web::rt::spawn(driver.run());
        let channel = Arc::new(Channel {
            id,
            state,
            progress,
            stop,
        });
        channels.insert(key, Arc::downgrade(&channel));
        Ok(Subscription {
            channel,
            _permit: permit,
        })
    }
}

/// Runs a channel's query whenever its result may have changed, and publishes new results.
struct Driver {
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
    spec: QuerySpec,
    id: Arc<str>,
    tx: watch::Sender<Option<Arc<Delivery>>>,
    stop: CancellationToken,
    data: DataWatch,
    interval: Option<Duration>,
    max_bytes: usize,
    progress: tokio::sync::broadcast::Sender<Bytes>,
}

/// One run's result.
struct Run {
    lines: Vec<(Bytes, usize)>,
    hash: u64,
    stamp: Stamp,
}

impl Driver {
    async fn run(mut self) {
        let mut last: Option<u64> = None;
        let mut first = true;
        let mut tick = self.interval.map(|d| {
            let mut t = tokio::time::interval(d);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        loop {
            let outcome = tokio::select! {
                r = self.run_once() => r,
                _ = self.stop.cancelled() => return,
            };
            let stamp = match outcome {
                Ok(run) => {
                    if last != Some(run.hash) {
                        last = Some(run.hash);
                        self.publish(run.lines, &run.stamp, None);
                    }
                    Some(run.stamp)
                }
                // Not a result: try again shortly. While the storage does not answer, a
                // subscription that has a result keeps it (nothing newer can be known) and
                // asks again until it answers.
                Err(ref e) if retried_later(e, first) => {
                    tokio::select! {
                        _ = tokio::time::sleep(RETRY) => continue,
                        _ = self.stop.cancelled() => return,
                    }
                }
                Err(e @ (GatewayError::TenantDeleted | GatewayError::TenantNotFound(_))) => {
                    self.fail(e);
                    return;
                }
                Err(e) => {
                    let fatal = first;
                    let line = lines::error_line(&self.id, e.code(), &e.client_message());
                    let hash = hash_of(std::slice::from_ref(&line));
                    if fatal || last != Some(hash) {
                        last = Some(hash);
                        let unknown = Stamp::unknown(self.data.version());
                        let why = fatal.then(|| (e.code(), e.client_message()));
                        self.publish(vec![(line, 0)], &unknown, why);
                    }
                    if fatal {
                        return;
                    }
                    None
                }
            };
            first = false;
            // Wait for a reason to run again.
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return,
                    changed = self.data.changed() => {
                        if changed.is_err() {
                            // The tenant is gone: its subscriptions end.
                            self.fail(GatewayError::TenantDeleted);
                            return;
                        }
                        if stamp.as_ref().is_some_and(|s| self.data.is_current(s)) {
                            continue;
                        }
                        break;
                    }
                    _ = next_tick(&mut tick) => break,
                }
            }
        }
    }

    async fn run_once(&self) -> Result<Run, GatewayError> {
        let mut running = self.engine.start(self.spec.clone()).await?;
        let mut lines = Vec::new();
        let mut bytes = 0;
        let mut complete = false;
        while let Some(frame) = running.frames.recv().await {
            if frame.kind == FrameKind::Note {
                // Progress: to whoever listens now, not part of the result.
                let _ = self.progress.send(frame.bytes);
                continue;
            }
            bytes += frame.bytes.len();
            if bytes > self.max_bytes {
                return Err(GatewayError::LimitExceeded(format!(
                    "a subscription's result may hold at most {} bytes; narrow the query",
                    self.max_bytes
                )));
            }
            let last = frame.kind.is_final();
            lines.push((frame.bytes, frame.rows));
            if last {
                complete = true;
                break;
            }
        }
        if !complete {
            return Err(GatewayError::internal(
                "a subscription's run ended without its last line",
            ));
        }
        // `end` carries the elapsed time: not part of what makes a result the same.
        let same_part: Vec<Bytes> = lines
            .iter()
            .filter(|(l, _)| !l.starts_with(b"{\"type\":\"end\""))
            .map(|(l, _)| l.clone())
            .collect();
        let stamp = running
            .stamp
            .take()
            .unwrap_or(Stamp::unknown(running.data_version));
        Ok(Run {
            hash: hash_of(&same_part),
            lines,
            stamp,
        })
    }

    /// Ends the channel: every subscriber gets `e` with its own id.
    fn fail(&self, e: GatewayError) {
        let line = lines::error_line(&self.id, e.code(), &e.client_message());
        let why = Some((e.code(), e.client_message()));
        self.publish(vec![(line, 0)], &Stamp::unknown(self.data.version()), why);
    }

    fn publish(
        &self,
        lines: Vec<(Bytes, usize)>,
        stamp: &Stamp,
        fatal: Option<(&'static str, String)>,
    ) {
        let version = stamp.result_version;
        let mut all = Vec::with_capacity(lines.len() + 1);
        all.push((lines::update_line(&self.id, version), 0));
        all.extend(lines);
        let delivery = Delivery {
            version,
            deterministic: stamp.reusable(),
            fatal,
            lines: all,
            messages: Default::default(),
        };
        // The channel holds one receiver; each subscriber another.
        let subscribers = self.tx.receiver_count().saturating_sub(1) as u64;
        // Every subscriber but one got this result without an execution of its own.
        self.metrics
            .executions_saved
            .inc_by(subscribers.saturating_sub(1));
        self.tx.send_replace(Some(Arc::new(delivery)));
    }
}

async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn hash_of(lines: &[Bytes]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for l in lines {
        h.write(l);
    }
    h.finish()
}

/// Where a subscriber's lines go (a WebSocket's queue, an SSE body).
pub(crate) trait Sink {
    /// Sends a line of this subscriber's own (`subscribed`, `heartbeat`, `unsubscribed`, an
    /// `error`); `last` ends the subscription. `false`: the client is gone.
    async fn line(&mut self, line: Bytes, last: bool) -> bool;
    /// Sends a whole result. `false`: the client is gone.
    async fn delivery(&mut self, delivery: &Arc<Delivery>) -> bool;
}

/// What a subscriber asked for, besides the query.
pub struct Follow<'a> {
    /// The client's id for the subscription (WebSocket), or the channel's (SSE).
    pub id: &'a str,
    /// The version of the result the client holds (resume).
    pub version: Option<u64>,
    pub access: &'a Access,
    pub heartbeat: Duration,
    /// Fires on `unsubscribe`: the subscription ends with `unsubscribed`.
    pub unsubscribe: CancellationToken,
    /// Fires when the connection ends: the subscription ends silently.
    pub gone: CancellationToken,
    /// Fires when the server drains: the subscription ends with a `reconnect` line (SSE).
    /// `None`: the connection handles draining itself (a WebSocket closes with 1012).
    pub drain: Option<CancellationToken>,
}

/// Hands a subscription's results to `sink`: an acknowledgement with the first, that result
/// (unless the client holds it already), each newer one, and a heartbeat when quiet, until
/// the client leaves, unsubscribes, its token expires or the channel fails for good.
pub(crate) async fn follow(sub: Subscription, how: Follow<'_>, sink: &mut impl Sink) {
    let id = how.id;
    let channel = Arc::clone(&sub.channel.id);
    let error = |e: GatewayError| lines::error_line(id, e.code(), &e.client_message());
    let mut state = sub.state();
    let mut progress = sub.progress();
    let mut announced = false;
    let mut shown: Option<u64> = None;
    let mut fresh = true;
    loop {
        let delivery = if fresh {
            state.borrow_and_update().clone()
        } else {
            None
        };
        fresh = false;
        if let Some(d) = delivery {
            if let Some((code, message)) = &d.fatal {
                sink.line(lines::error_line(id, code, message), true).await;
                return;
            }
            if let Err(e) = how.access.check_fresh() {
                sink.line(error(e.into()), true).await;
                return;
            }
            // A client that holds this very result gets nothing but the acknowledgement.
            let unchanged = !announced && d.deterministic && how.version == Some(d.version);
            if !announced {
                let resumed = how
                    .version
                    .map(|_| if unchanged { "unchanged" } else { "replaced" });
                if !sink
                    .line(lines::subscribed_line(id, &channel, resumed), false)
                    .await
                {
                    return;
                }
                announced = true;
            }
            if !unchanged && !sink.delivery(&d).await {
                return;
            }
            // Progress of the run this result ends is stale now: none may follow it.
            progress = sub.progress();
            shown = Some(d.version);
        }
        tokio::select! {
            changed = state.changed() => match changed {
                Ok(()) => fresh = true,
                Err(_) => {
                    // The channel ended without a result to show: its tenant was deleted.
                    sink.line(error(GatewayError::TenantDeleted), true).await;
                    return;
                }
            },
            _ = tokio::time::sleep(how.heartbeat) => {
                if let Some(v) = shown {
                    if !sink.line(lines::heartbeat_line(&channel, v), false).await {
                        return;
                    }
                }
            }
            line = progress.recv() => {
                // Lagged: some progress lines were skipped, which is fine.
                let Ok(line) = line else { continue };
                if !announced {
                    // The channel's id comes first. A resume waits for the result to know
                    // what to say, and shows no progress before it.
                    if how.version.is_some() {
                        continue;
                    }
                    if !sink.line(lines::subscribed_line(id, &channel, None), false).await {
                        return;
                    }
                    announced = true;
                }
                if !sink.line(line, false).await {
                    return;
                }
            }
            _ = how.unsubscribe.cancelled() => {
                sink.line(lines::unsubscribed_line(id), true).await;
                return;
            }
            _ = how.gone.cancelled() => return,
            _ = drained(&how.drain) => {
                sink.line(lines::reconnect_line(id), true).await;
                return;
            }
        }
    }
}

/// Resolves when `drain` fires; never without one.
async fn drained(drain: &Option<CancellationToken>) {
    match drain {
        Some(token) => token.cancelled().await,
        None => std::future::pending().await,
    }
}

impl Delivery {
    /// The result's lines, with the rows each carries (`update` first).
    pub fn lines(&self) -> &[(Bytes, usize)] {
        &self.lines
    }
}
