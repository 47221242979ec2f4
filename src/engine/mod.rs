//! The execution engine: admits queries, runs them on the executor actors, and hands the
//! caller a bounded stream of encoded frames.
//!
//! Flow: [`Engine::start`] takes a [`QuerySpec`] (what to run, for whom, in which format, with
//! which limits), resolves the tenant, takes a slot of that tenant (one per pooled connection)
//! and a global slot (one per executor thread), sends the job to the
//! [`executor::QueryExecutor`] actors (a `SyncArbiter`: threads of their own, never the async
//! runtime's), and waits until the spec's [`Start`] point or a failure. Errors up to that point
//! come back as a [`GatewayError`]; after it, as the format's final error frame.
//!
//! Invariants:
//! - The engine never knows which transport called it: everything that differs between callers
//!   is a field of the [`QuerySpec`] (the transport is only a metrics label).
//! - Jobs never queue inside the actor mailbox: both slots are held before sending, and there
//!   are exactly as many executor threads as global slots.
//! - Waiting for slots is bounded twice: at most `queue_size` queries wait per tenant and
//!   `max_queued` in the server (places are semaphore permits taken without waiting), each for
//!   at most `queue_timeout`; past either bound the answer is `too_busy`.
//! - Between DuckDB and the caller there is one bounded channel (`stream_buffer` frames);
//!   a reader that stops reading pauses the DuckDB fetch.
//! - The stream always ends with an `end` or `error` frame, unless the reader is gone (or took
//!   nothing for the executor's final-line wait: then the frames stop without one).

mod admission;
mod allowlist;
mod breaker;
mod cache;
mod control;
mod datasets;
mod executor;
mod maintenance;
mod memo;
mod parse_tree;
mod pg_catalog;
mod pool;
mod registry;
mod scratch;
mod stamp;
mod store;
mod tables;
mod tenant;
mod upkeep;

// The engine's API: transports and the app name only `Engine`, `QuerySpec` and what is
// re-exported here; every submodule is private (docs/ARCHITECTURE.md, "API boundaries").
pub use allowlist::{class_of, families, Class as FunctionClass};
pub use cache::{CacheKey, CacheSettings, CachedResult, Lookup, Recorder, Variant};
pub use control::{CancelOnDrop, CancelReason};
pub use maintenance::MaintenancePolicy;
pub use scratch::valid_name as is_scratch_name;
pub use stamp::Stamp;
pub use store::lake::EXTENSIONS as LAKE_EXTENSIONS;
pub use store::{LakeSettings, LakeStore, LocalFiles, S3Settings, TenantStore};
pub use tables::TableSet;
pub use tenant::TenantLimits;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Addr, SyncArbiter};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::encode::ResultLimits;
use crate::error::GatewayError;
use crate::metrics::{Metrics, Transport};
use crate::wire::admin::TenantInfo;
use crate::wire::datasets::{DatasetDetail, DatasetName, UploadRequest};
use crate::wire::{Format, QueryRequest, TenantId};
use control::QueryControl;
use executor::{Job, QueryExecutor};
use pool::DbSettings;
use registry::TenantRegistry;
use tenant::Tenant;

/// What a frame is, for the transports (framing, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// The result's header (NDJSON: the `metadata` line).
    Metadata,
    Data,
    /// A line beside the result: `progress` (asked with `progress`), `resume_unavailable`.
    Note,
    End,
    /// The end of a failed result, in the stream or beside it, as its format says.
    Error(crate::encode::ErrorPlace),
}

impl FrameKind {
    /// The query's last frame (`end` or `error`).
    pub fn is_final(self) -> bool {
        matches!(self, Self::End | Self::Error(_))
    }
}

/// One encoded piece of a result on its way to the client.
#[derive(Debug)]
pub struct Frame {
    pub bytes: Bytes,
    pub rows: usize,
    pub kind: FrameKind,
}

/// When [`Engine::start`] returns: the caller's response starts then, and errors before it are
/// a status instead of a final frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Start {
    /// When DuckDB has produced the first chunk (or the end): most errors still get a status.
    #[default]
    FirstChunk,
    /// As soon as the statement is prepared and bound, before it runs: for callers that keep
    /// the line alive while DuckDB works (SSE's keep-alive comments).
    Bound,
}

/// Everything the engine needs to run one query; the only input of [`Engine::start`]. A
/// result cache or a live subscription keys on it (with the tenant's data version).
#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub tenant: TenantId,
    /// Tags every frame (NDJSON: `query_id`).
    pub query_id: Arc<str>,
    pub request: QueryRequest,
    pub format: Format,
    /// The only tables the query may read (a token's); `None`: any.
    pub tables: Option<Arc<TableSet>>,
    /// Limits on top of the tenant's own (the tighter wins).
    pub limits: ResultLimits,
    /// Whether the stream holds one of the tenant's `max_streams` for its life (HTTP and
    /// SSE streams do; a WebSocket holds one for the whole socket, see [`Engine::stream_slot_of`]).
    pub hold_stream_slot: bool,
    pub start: Start,
    /// Bytes at which a batch closes; `None`: the server's `chunk_bytes`.
    pub chunk_bytes: Option<usize>,
    /// The cancellation scope above the query and the reason it gives (default: the process,
    /// `shutting_down`).
    pub parent: Option<(CancellationToken, CancelReason)>,
    /// Instead of its rows, store the `SELECT`'s result as this derived table of the scratch
    /// space ([`scratch`]) and answer its row count.
    pub derive: Option<String>,
    /// Decide what the result depends on before it runs ([`stamp::Stamp`], in
    /// [`RunningQuery::stamp`]): for callers that reuse results (cache, subscriptions).
    pub stamp: bool,
    /// A query timeout tighter than the tenant's (PostgreSQL's `statement_timeout`); the
    /// tenant's still applies when it is shorter.
    pub timeout: Option<Duration>,
    /// The metrics label.
    pub label: Transport,
}

impl QuerySpec {
    /// A spec with the defaults: a fresh query id, NDJSON, the tenant's limits, a connection
    /// slot held, started at the first chunk, under the process's scope.
    pub fn new(tenant: TenantId, request: QueryRequest, label: Transport) -> Self {
        Self {
            tenant,
            query_id: new_query_id(),
            request,
            format: Format::Ndjson,
            tables: None,
            limits: ResultLimits::NONE,
            hold_stream_slot: true,
            start: Start::FirstChunk,
            chunk_bytes: None,
            parent: None,
            stamp: false,
            derive: None,
            timeout: None,
            label,
        }
    }

    /// Asks for the result's [`stamp::Stamp`] (one more plan of the statement by DuckDB).
    pub fn stamped(mut self) -> Self {
        self.stamp = true;
        self
    }

    pub fn query_id(mut self, id: Arc<str>) -> Self {
        self.query_id = id;
        self
    }

    /// The result's format (default: NDJSON).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    pub fn tables(mut self, tables: Option<Arc<TableSet>>) -> Self {
        self.tables = tables;
        self
    }

    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }

    /// Makes the result derived table `name` of the scratch space (a valid name:
    /// [`scratch::valid_name`]).
    pub fn derive(mut self, name: String) -> Self {
        self.derive = Some(name);
        self
    }

    /// Runs without a stream slot of its own (its caller holds one).
    pub fn without_connection_slot(mut self) -> Self {
        self.hold_stream_slot = false;
        self
    }

    /// Stops the query after `timeout` (`None`: the tenant's timeout alone).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs under `token`: when it fires, the query stops with `reason`.
    pub fn parent(mut self, token: CancellationToken, reason: CancelReason) -> Self {
        self.parent = Some((token, reason));
        self
    }
}

/// The paths no client message may name: the data directory (as given and resolved), the home
/// directory (DuckDB's extension and secret directories live there), the extension repository.
/// Longest first, so that the most specific is replaced.
fn private_paths(settings: &EngineSettings) -> Vec<String> {
    let mut dirs = vec![settings.data_dir.clone()];
    dirs.extend(std::path::absolute(&settings.data_dir).ok());
    dirs.extend(std::fs::canonicalize(&settings.data_dir).ok());
    dirs.extend(std::env::var_os("HOME").map(PathBuf::from));
    dirs.extend(settings.extension_repository.clone());
    let mut paths: Vec<String> = dirs
        .iter()
        .map(|d| d.display().to_string().trim_end_matches('/').to_string())
        // A relative `./data` or `/` would redact ordinary words and every slash.
        .filter(|p| p.len() > 1 && p.starts_with('/'))
        .collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    paths.dedup();
    paths
}

/// The shorter of two optional timeouts.
fn tighter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A fresh id for a query that the client did not name.
pub fn new_query_id() -> Arc<str> {
    uuid::Uuid::new_v4().simple().to_string().into()
}

/// A query that has started: its frames arrive on `frames`, the header first.
pub struct RunningQuery {
    pub query_id: Arc<str>,
    pub accepted_at: Instant,
    pub frames: mpsc::Receiver<Frame>,
    pub control: Arc<QueryControl>,
    /// Cancels the query (as a disconnect) when the stream is dropped before its end.
    pub guard: CancelOnDrop,
    /// The tenant's stream slot this stream holds ([`QuerySpec::hold_stream_slot`]).
    pub stream_slot: Option<StreamSlot>,
    /// The tenant's data version when the query was admitted.
    pub data_version: u64,
    /// What the result depends on, when the spec asked ([`QuerySpec::stamp`]).
    pub stamp: Option<stamp::Stamp>,
}

/// A tenant's data as live subscriptions see it: wakes on every write, and tells whether a
/// result is still current.
pub struct DataWatch {
    tenant: Arc<Tenant>,
    changes: tokio::sync::watch::Receiver<u64>,
}

impl DataWatch {
    /// Waits for the next write to the tenant (or its deletion).
    pub async fn changed(&mut self) -> Result<(), GatewayError> {
        tokio::select! {
            r = self.changes.changed() => r.map_err(|_| GatewayError::TenantDeleted),
            _ = self.tenant.deleted.cancelled() => Err(GatewayError::TenantDeleted),
        }
    }

    /// Whether a result computed at `stamp` is still what DuckDB would answer.
    pub fn is_current(&self, stamp: &stamp::Stamp) -> bool {
        self.tenant.is_current(stamp)
    }

    /// The tenant's data version now.
    pub fn version(&self) -> u64 {
        self.tenant.data_version()
    }

    /// Changes when the tenant is deleted and created again.
    pub fn incarnation(&self) -> u64 {
        self.tenant.incarnation
    }

    pub fn limits(&self) -> &TenantLimits {
        &self.tenant.limits
    }
}

/// One of a tenant's `max_streams`, held while a stream or WebSocket is open.
pub struct StreamSlot {
    /// Shared with the query's [`QueryControl`], which frees it early when the stream stalls
    /// (its response is dead, though the client still holds the socket).
    permit: control::SharedPermit,
    /// Keeps the tenant loaded while the socket is open (an idle tenant is unloaded only when
    /// nothing holds it): its `max_streams` stay one count.
    _tenant: Arc<Tenant>,
}

/// What the engine runs with. Built by the application from its configuration.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// One `<tenant>.duckdb` per tenant.
    pub data_dir: PathBuf,
    /// Executor threads: queries running at once in the whole server.
    pub executor_threads: usize,
    /// Queries that may wait for a slot in the whole server.
    pub max_queued: usize,
    /// How long a query may wait for its slots before `too_busy`.
    pub queue_timeout: Duration,
    /// A query whose reader takes not one frame for this long (its sends stay blocked) is
    /// stopped as if the client had gone; `None`: never. Only for streams that hold a
    /// stream slot (HTTP, SSE).
    pub stall_timeout: Option<Duration>,
    /// Default rows per batch (a request may ask its own).
    pub chunk_rows: usize,
    /// A batch closes once it reaches this many bytes.
    pub chunk_bytes: usize,
    /// Frames buffered per query between DuckDB and the caller.
    pub stream_buffer: usize,
    pub preserve_insertion_order: bool,
    /// DuckDB extensions every tenant database loads (`spatial`).
    pub extensions: Vec<String>,
    /// A local repository for them (`DIR/v1.5.5/linux_amd64/NAME.duckdb_extension`); `None`:
    /// DuckDB's official repository.
    pub extension_repository: Option<PathBuf>,
    /// Where DuckDB keeps installed extensions; `None`: its default.
    pub extension_directory: Option<PathBuf>,
    pub cache: cache::CacheSettings,
    /// The limits of a tenant without limits of its own.
    pub limits: TenantLimits,
    /// Tenants with limits of their own (already laid over the global ones).
    pub tenant_limits: HashMap<TenantId, TenantLimits>,
}

pub struct Engine {
    registry: Arc<TenantRegistry>,
    /// Serialises the admin operations (create, delete) with each other.
    admin: tokio::sync::Mutex<()>,
    executor: Addr<QueryExecutor>,
    global_slots: Arc<Semaphore>,
    /// Places for queries waiting for a slot, in the whole server (`max_queued`).
    waiting: Semaphore,
    settings: EngineSettings,
    shutdown: CancellationToken,
    /// Fires when the process starts draining (a child of `shutdown`): it stays up for the
    /// work it has, but long-lived streams should move to another replica.
    drain: CancellationToken,
    metrics: Arc<Metrics>,
    cache: Arc<cache::ResultCache>,
    /// Refuses work for a while after the storage failed some ([`breaker`]).
    breaker: breaker::Breaker,
}

/// How long work is refused after the storage failed some, before one query tries again.
const STORAGE_COOL_OFF: Duration = Duration::from_secs(5);

impl Engine {
    /// Starts the executor threads, with tenants' data where `store` keeps it (the place a
    /// DuckLake store is chosen; uploads are still spooled under `data_dir`). Must run inside
    /// an Actix system.
    pub fn with_store(
        settings: EngineSettings,
        store: Arc<dyn TenantStore>,
        shutdown: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Self {
        let registry = TenantRegistry::new(
            Arc::clone(&store),
            DbSettings {
                preserve_insertion_order: settings.preserve_insertion_order,
                checkout_timeout: settings.queue_timeout.max(Duration::from_secs(1)),
                extensions: settings.extensions.clone(),
                extension_repository: settings.extension_repository.clone(),
                extension_directory: settings.extension_directory.clone(),
                missing_extensions: Default::default(),
                private_paths: private_paths(&settings),
                spool_root: std::path::absolute(&settings.data_dir)
                    .unwrap_or_else(|_| settings.data_dir.clone())
                    .join(".spool"),
            },
            settings.limits.clone(),
            settings.tenant_limits.clone(),
        );
        let executor = SyncArbiter::start(settings.executor_threads, || QueryExecutor);
        let registry = Arc::new(registry);
        // Other processes' writes (a lake's other replicas) reach the loaded tenants.
        let sink: Arc<dyn store::ChangeSink> = Arc::clone(&registry) as _;
        store.follow(Arc::downgrade(&sink), shutdown.clone());
        Self {
            registry,
            admin: tokio::sync::Mutex::new(()),
            executor,
            global_slots: Arc::new(Semaphore::new(settings.executor_threads)),
            waiting: Semaphore::new(settings.max_queued),
            cache: Arc::new(cache::ResultCache::new(
                settings.cache,
                Arc::clone(&metrics),
            )),
            breaker: breaker::Breaker::new(STORAGE_COOL_OFF),
            settings,
            drain: shutdown.child_token(),
            shutdown,
            metrics,
        }
    }

    /// Starts `spec` after a cache lookup: stamped when `ticket` may record its result (a
    /// miss); returns the query and how its result is kept.
    pub async fn start_recorded(
        &self,
        spec: QuerySpec,
        ticket: Option<cache::Ticket>,
    ) -> Result<(RunningQuery, cache::Recording), GatewayError> {
        let Some(ticket) = ticket else {
            return Ok((self.start(spec).await?, cache::Recording::default()));
        };
        let running = self.start(spec.stamped()).await?;
        let recording = ticket.recording(running.stamp.clone(), Arc::clone(&running.query_id));
        Ok((running, recording))
    }

    /// A watch on the tenant's data: what live subscriptions wait on between runs.
    pub async fn watch_data(&self, id: &TenantId) -> Result<DataWatch, GatewayError> {
        let tenant = self.registry.get(id).await?;
        Ok(DataWatch {
            changes: tenant.watch_version(),
            tenant,
        })
    }

    /// Looks `spec` up in the result cache for a transport `variant` (its framing and
    /// compression): a current result, a ticket to record one, or a bypass. May wait for an
    /// identical query in flight (singleflight). Resolves the tenant (`tenant_not_found`).
    pub async fn cached(
        &self,
        spec: &QuerySpec,
        variant: cache::Variant,
    ) -> Result<cache::Lookup, GatewayError> {
        let tenant = self.registry.get(&spec.tenant).await?;
        Ok(self.cache.lookup(spec, &tenant, variant).await)
    }

    /// Checks that the tenant exists.
    pub async fn check_tenant(&self, tenant: &TenantId) -> Result<(), GatewayError> {
        self.registry.get(tenant).await.map(|_| ())
    }

    /// Drops the tenant's derived tables (before its next query runs).
    pub async fn clear_scratch(&self, tenant: &TenantId) -> Result<(), GatewayError> {
        let tenant = self.registry.get(tenant).await?;
        tenant.scratch.clear();
        Ok(())
    }

    /// Takes one of the tenant's stream slots, for a WebSocket (which must refuse before
    /// upgrading): `tenant_not_found`, or `too_many_connections` when all are taken.
    pub async fn stream_slot_of(&self, tenant: &TenantId) -> Result<StreamSlot, GatewayError> {
        let tenant = self.registry.get(tenant).await?;
        self.stream_slot(&tenant)
    }

    /// A slot of the tenant and a global one: at once if both are free, else after waiting in
    /// the tenant's and the server's bounded queues for at most `queue_timeout`. A full queue
    /// or the timeout is `too_busy`.
    async fn admit(
        &self,
        tenant: &Tenant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), GatewayError> {
        let slots = &tenant.admission.slots;
        if let Ok(t) = Arc::clone(slots).try_acquire_owned() {
            if let Ok(g) = Arc::clone(&self.global_slots).try_acquire_owned() {
                return Ok((t, g));
            }
        }
        let (Ok(_in_tenant_queue), Ok(_in_queue)) = (
            tenant.admission.waiting.try_acquire(),
            self.waiting.try_acquire(),
        ) else {
            return Err(GatewayError::TooBusy);
        };
        let wait = async {
            let t = Arc::clone(slots).acquire_owned().await;
            let g = Arc::clone(&self.global_slots).acquire_owned().await;
            (t, g)
        };
        tokio::select! {
            p = tokio::time::timeout(self.settings.queue_timeout, wait) => match p {
                Ok((Ok(t), Ok(g))) => Ok((t, g)),
                // Semaphores are never closed; a timeout means every slot stayed busy.
                _ => Err(GatewayError::TooBusy),
            },
            _ = self.shutdown.cancelled() => Err(GatewayError::ShuttingDown),
            _ = tenant.deleted.cancelled() => Err(GatewayError::TenantDeleted),
        }
    }

    fn stream_slot(&self, tenant: &Arc<Tenant>) -> Result<StreamSlot, GatewayError> {
        match Arc::clone(&tenant.admission.streams).try_acquire_owned() {
            Ok(permit) => Ok(StreamSlot {
                permit: Arc::new(std::sync::Mutex::new(Some(permit))),
                _tenant: Arc::clone(tenant),
            }),
            Err(_) => {
                self.metrics.connections_refused.inc();
                Err(GatewayError::TooManyConnections(tenant.limits.max_streams))
            }
        }
    }

    /// The process-wide shutdown token (the root of the cancellation tree).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Fires when the process starts draining, and at shutdown: subscriptions and sockets
    /// should end (telling clients to reconnect elsewhere) once their running queries are
    /// done; one-shot queries go on until `shutdown` fires.
    pub fn drain_token(&self) -> &CancellationToken {
        &self.drain
    }

    /// Whether the tenants' storage answers now, as far as this process knows (always, on
    /// local files; a lake: its catalog answers its change feed, and no work failed on it
    /// lately). `/readyz` says so.
    pub fn storage_reachable(&self) -> bool {
        self.registry.store_reachable() && !self.breaker.is_open()
    }

    /// Whether other replicas' writes reach this process now (always, on local files; a lake:
    /// its change feed listens). Without it, cached results are still served, marked stale.
    pub fn hears_writes(&self) -> bool {
        self.registry.store_reachable()
    }

    /// Closes the databases of the tenants nothing has used for `idle` (and nothing holds:
    /// no query, upload, subscription or socket), on an executor thread; their next request
    /// loads them again. Returns how many were unloaded.
    pub async fn unload_idle(&self, idle: Duration) -> usize {
        let tenants = self.registry.take_idle(idle);
        if tenants.is_empty() {
            return 0;
        }
        let ids: Vec<TenantId> = tenants.iter().map(|t| t.id.clone()).collect();
        // Closing a local file checkpoints it: DuckDB work, on a thread built for it.
        if let Err(e) = self.run_task(None, move || drop(tenants)).await {
            tracing::warn!(error = %e.log_chain(), "idle tenants closed on the runtime");
        }
        self.registry.finish_unloading(&ids);
        self.metrics.tenants_unloaded.inc_by(ids.len() as u64);
        tracing::info!(
            count = ids.len(),
            idle_secs = idle.as_secs(),
            "idle tenants unloaded"
        );
        ids.len()
    }

    /// Refuses at once (`storage_unavailable`) while the store knows its shared services do
    /// not answer: a query or a write would only wait on them, holding a slot and a DuckDB
    /// thread. The store finds out by itself when they answer again ([`TenantStore::reachable`]).
    ///
    /// Two sources: the store's own probe ([`TenantStore::reachable`]: a lake's catalog), and
    /// the [`breaker::Breaker`], which opens for a while after work failed on the storage
    /// (the object store has no probe). The [`breaker::Pass`] goes back with the work's
    /// outcome.
    fn storage_gate(&self) -> Result<breaker::Pass<'_>, GatewayError> {
        let pass = self
            .registry
            .store_reachable()
            .then(|| self.breaker.admit())
            .flatten();
        pass.ok_or_else(|| {
            self.metrics.store.refused.inc();
            GatewayError::storage("the storage does not answer now")
        })
    }

    /// Runs `work` (not started until the gate lets it) past [`Self::storage_gate`], and gives
    /// the breaker its outcome.
    async fn gated<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let pass = self.storage_gate()?;
        let outcome = work.await;
        self.breaker.record(pass, &outcome);
        outcome
    }

    /// Whether the process is draining or shutting down (`/readyz` answers 503).
    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Admits and starts the query `spec` describes; returns at its [`Start`] point.
    pub async fn start(&self, spec: QuerySpec) -> Result<RunningQuery, GatewayError> {
        let accepted_at = Instant::now();
        if self.shutdown.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }
        self.gated(self.start_admitted(spec, accepted_at)).await
    }

    /// [`Self::start`] once the storage may be asked.
    async fn start_admitted(
        &self,
        spec: QuerySpec,
        accepted_at: Instant,
    ) -> Result<RunningQuery, GatewayError> {
        let tenant = self.registry.get(&spec.tenant).await?;
        let stream_slot = if spec.hold_stream_slot {
            Some(self.stream_slot(&tenant)?)
        } else {
            None
        };
        let waiting = Instant::now();
        let permits = self.admit(&tenant).await?;
        self.metrics
            .pool_wait
            .observe(waiting.elapsed().as_secs_f64());

        let control = QueryControl::new(self.metrics.interrupts.clone());
        // A stream that holds a stream slot is read by its client (HTTP, SSE): it is
        // stopped, and its slot freed, when it stalls. The others are read by the gateway's
        // own tasks (a WebSocket's, Mosaic's, a subscription's), which wait on other things
        // too and bound their clients themselves (`websocket.slow_consumer_secs`).
        let stall = stream_slot.as_ref().and(self.settings.stall_timeout);
        if let Some(slot) = &stream_slot {
            control.free_on_stall(Arc::clone(&slot.permit));
        }
        let guard = CancelOnDrop(Arc::clone(&control));
        self.watch(&control, &spec, &tenant, stall);

        let (tx, frames) = mpsc::channel(self.settings.stream_buffer);
        let (started_tx, started_rx) = oneshot::channel();
        let query_id = Arc::clone(&spec.query_id);
        let data_version = tenant.data_version();
        let job = Job {
            sizes: crate::encode::batch_sizes(
                spec.format,
                spec.request.chunk_rows,
                crate::encode::BatchSizes {
                    rows: self.settings.chunk_rows,
                    bytes: spec.chunk_bytes.unwrap_or(self.settings.chunk_bytes),
                    first_rows: self.settings.chunk_rows,
                },
            ),
            limits: tenant.limits.result.min(spec.limits),
            tenant,
            spec,
            control: Arc::clone(&control),
            frames: tx,
            _permits: permits,
            accepted_at,
            data_version,
            metrics: Arc::clone(&self.metrics),
        };
        self.executor.do_send(executor::Run {
            job,
            started: started_tx,
        });
        // If this future is dropped (client gone), `guard` cancels the query.
        match started_rx.await {
            Ok(Ok(stamp)) => Ok(RunningQuery {
                query_id,
                accepted_at,
                frames,
                control,
                guard,
                stream_slot,
                data_version,
                stamp,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(GatewayError::internal("the executor dropped the query")),
        }
    }

    /// Describes `spec`'s statement without running it: its parameters' and columns' types
    /// in `spec.format` (PostgreSQL's `Describe`), after the checks a query of the spec gets,
    /// on an executor thread; `spec.request.params` are hints for the parameters DuckDB cannot
    /// type ([`executor::describe`]). The spec's parent and timeout interrupt it.
    pub async fn describe(
        &self,
        spec: QuerySpec,
    ) -> Result<crate::encode::pg::Description, GatewayError> {
        if self.shutdown.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }
        self.gated(self.describe_admitted(spec)).await
    }

    /// [`Self::describe`] once the storage may be asked.
    /// Starts the watcher of a query of `tenant`: it stops the query when the spec's parent
    /// scope ends (the process's by default), the tenant is deleted, the tighter of the
    /// tenant's and the spec's timeouts passes, or its reader stalls `stall` long.
    fn watch(
        &self,
        control: &Arc<QueryControl>,
        spec: &QuerySpec,
        tenant: &Tenant,
        stall: Option<Duration>,
    ) {
        let (parent_token, parent_reason) = spec
            .parent
            .clone()
            .unwrap_or_else(|| (self.shutdown.clone(), CancelReason::Shutdown));
        control.spawn_watcher(
            parent_token,
            parent_reason,
            tenant.deleted.clone(),
            tighter(tenant.limits.query_timeout, spec.timeout),
            stall,
        );
    }

    async fn describe_admitted(
        &self,
        spec: QuerySpec,
    ) -> Result<crate::encode::pg::Description, GatewayError> {
        let tenant = self.registry.get(&spec.tenant).await?;
        let control = QueryControl::new(self.metrics.interrupts.clone());
        self.watch(&control, &spec, &tenant, None);
        // Dropped with this future (the client is gone): DuckDB's work is interrupted (after
        // `finish`, dropping it does nothing).
        let _guard = CancelOnDrop(Arc::clone(&control));
        let (t, c) = (Arc::clone(&tenant), Arc::clone(&control));
        let described = self
            .run_task(Some(&tenant), move || {
                let described = executor::describe(&t, &spec, &c);
                c.finish();
                described
            })
            .await;
        described?
    }

    /// Runs `task` on an executor thread, holding a global slot (and a slot of `tenant`, so
    /// the pool has a connection for it): DuckDB work that is not a query.
    async fn run_task<T: Send + 'static>(
        &self,
        tenant: Option<&Tenant>,
        task: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GatewayError> {
        let permits = match tenant {
            Some(t) => {
                let (t, g) = self.admit(t).await?;
                (Some(t), g)
            }
            None => {
                let g = tokio::select! {
                    g = Arc::clone(&self.global_slots).acquire_owned() => {
                        g.map_err(|_| GatewayError::ShuttingDown)?
                    }
                    _ = self.shutdown.cancelled() => return Err(GatewayError::ShuttingDown),
                };
                (None, g)
            }
        };
        let (tx, rx) = oneshot::channel();
        self.executor.do_send(executor::Task(Box::new(move || {
            let _held = permits;
            let _ = tx.send(task());
        })));
        rx.await
            .map_err(|_| GatewayError::internal("the executor dropped a task"))
    }

    /// Provisions a tenant: a new, empty database (`tenant_exists` if it has one), data
    /// version 1.
    pub async fn create_tenant(&self, id: &TenantId) -> Result<TenantInfo, GatewayError> {
        drop(self.storage_gate()?);
        let _admin = self.admin.lock().await;
        if self.registry.is_deleting(id) {
            return Err(GatewayError::TenantExists(id.to_string()));
        }
        let registry = Arc::clone(&self.registry);
        let name = id.clone();
        let version = self
            .run_task(None, move || registry.create_blocking(&name))
            .await??;
        self.registry
            .set_data_version(id, version.unwrap_or(1), &[])
            .await
            .map_err(GatewayError::internal)?;
        tracing::info!(tenant = %id, "tenant created");
        self.tenant_info(id).await
    }

    /// Every tenant with its datasets (row counts from DuckDB's catalog), size and version.
    pub async fn list_tenants(&self) -> Result<Vec<TenantInfo>, GatewayError> {
        let found = self.registry.scan().await.map_err(GatewayError::internal)?;
        let mut out = Vec::with_capacity(found.len());
        for (id, _) in found {
            match self.tenant_info(&id).await {
                Ok(info) => out.push(info),
                // Deleted meanwhile: not listed.
                Err(GatewayError::TenantNotFound(_) | GatewayError::TenantDeleted) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn tenant_info(&self, id: &TenantId) -> Result<TenantInfo, GatewayError> {
        let tenant = self.registry.get(id).await?;
        let t = Arc::clone(&tenant);
        let datasets = self
            .run_task(Some(&tenant), move || datasets::catalog(&t))
            .await??;
        let bytes = self.registry.size(id).await;
        Ok(TenantInfo {
            name: id.to_string(),
            bytes,
            data_version: tenant.data_version(),
            datasets,
        })
    }

    /// Deletes a tenant: its running and waiting queries end with `tenant_deleted`, new ones
    /// get `tenant_not_found`, and once none holds a connection its files are removed.
    pub async fn delete_tenant(&self, id: &TenantId) -> Result<(), GatewayError> {
        let _admin = self.admin.lock().await;
        let tenant = self.registry.get(id).await?;
        if !self.registry.start_deleting(id) {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        tenant.deleted.cancel();
        // Every slot back means no query holds a connection: then the database can close.
        let all = tenant.limits.pool_size;
        let drained = tokio::time::timeout(
            Duration::from_secs(30),
            Arc::clone(&tenant.admission.slots).acquire_many_owned(all),
        )
        .await;
        if !matches!(drained, Ok(Ok(_))) {
            tracing::warn!(tenant = %id, "queries did not stop within 30 s; deleting anyway");
        }
        tenant.close();
        drop(tenant);
        let (registry, name) = (Arc::clone(&self.registry), id.clone());
        self.run_task(None, move || registry.finish_deleting_blocking(&name))
            .await??;
        tracing::info!(tenant = %id, "tenant deleted");
        Ok(())
    }

    /// A new spool file for an upload to `id` (in the tenant's spool directory).
    pub async fn spool_file(&self, id: &TenantId, ext: &str) -> Result<PathBuf, GatewayError> {
        let tenant = self.registry.get(id).await?;
        let dir = tenant.spool_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(GatewayError::internal)?;
        Ok(dir.join(format!("{}.{ext}", uuid::Uuid::new_v4().simple())))
    }

    /// Loads the spool file into the dataset (one transaction; writes to a tenant are
    /// serialised), then bumps the tenant's data version. Returns what was loaded and the new
    /// version. A GeoJSON body is converted first, on a blocking thread: file and CPU work,
    /// without a DuckDB slot or the tenant's write lock.
    pub async fn upload(
        &self,
        id: &TenantId,
        request: UploadRequest,
        spool: PathBuf,
    ) -> Result<(datasets::Loaded, u64), GatewayError> {
        self.gated(self.upload_admitted(id, request, spool)).await
    }

    async fn upload_admitted(
        &self,
        id: &TenantId,
        request: UploadRequest,
        spool: PathBuf,
    ) -> Result<(datasets::Loaded, u64), GatewayError> {
        let tenant = self.registry.get(id).await?;
        let format = request.format;
        let input = tokio::task::spawn_blocking(move || datasets::Input::prepare(format, spool))
            .await
            .map_err(GatewayError::internal)??;
        let _write = tenant.writes.lock().await;
        let _cluster = self.registry.lock_writes(id).await?;
        let t = Arc::clone(&tenant);
        let dataset = request.dataset.as_str().to_string();
        // The input (and a converted file) is dropped with the task, whether it ran or not.
        let loaded = self
            .run_task(Some(&tenant), move || datasets::load(&t, &request, &input))
            .await??;
        let version = self.bump_version(&tenant, &dataset, loaded.version).await?;
        Ok((loaded, version))
    }

    /// The tenant's datasets.
    pub async fn datasets(&self, id: &TenantId) -> Result<Vec<DatasetDetail>, GatewayError> {
        let tenant = self.registry.get(id).await?;
        let t = Arc::clone(&tenant);
        self.run_task(Some(&tenant), move || datasets::list(&t))
            .await?
    }

    /// Drops a dataset and bumps the data version; returns the new version.
    pub async fn delete_dataset(
        &self,
        id: &TenantId,
        name: DatasetName,
    ) -> Result<u64, GatewayError> {
        let tenant = self.registry.get(id).await?;
        let _write = tenant.writes.lock().await;
        let _cluster = self.registry.lock_writes(id).await?;
        let t = Arc::clone(&tenant);
        let shown = name.as_str().to_string();
        let Some(committed) = self
            .run_task(Some(&tenant), move || datasets::drop(&t, &name))
            .await??
        else {
            return Err(GatewayError::DatasetNotFound(shown));
        };
        self.bump_version(&tenant, &shown, committed).await
    }

    /// Bumps the data version after a committed write to `dataset`, and records that the
    /// write changed that table (results that read it are stale from now on). The version is
    /// the one the commit made when the database names its own (a lake's snapshot), else the
    /// current one plus one.
    async fn bump_version(
        &self,
        tenant: &Tenant,
        dataset: &str,
        committed: Option<u64>,
    ) -> Result<u64, GatewayError> {
        tenant.upkeep.wrote();
        let version = committed.unwrap_or(tenant.data_version() + 1);
        let table = stamp::dataset_table(dataset);
        // The table first: a reader that sees the new version must also see the table stale.
        tenant.mark_written(table.clone(), version);

        self.registry
            .set_data_version(&tenant.id, version, &[table])
            .await
            .map_err(GatewayError::internal)?;
        Ok(version)
    }

    /// The limits the tenant runs with.
    pub async fn tenant_limits(&self, id: &TenantId) -> Result<TenantLimits, GatewayError> {
        Ok(self.registry.get(id).await?.limits.clone())
    }

    /// The tenant's data version now.
    pub async fn data_version(&self, id: &TenantId) -> Result<u64, GatewayError> {
        Ok(self.registry.get(id).await?.data_version())
    }

    /// Removes what uploads left behind (a crash mid-upload): run once at start.
    pub async fn clean_spool(&self) -> std::io::Result<()> {
        match tokio::fs::remove_dir_all(self.registry.spool_root()).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
