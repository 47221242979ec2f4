//! The execution engine: admits queries, runs them on the executor actors, and hands the
//! transport a bounded stream of protocol lines.
//!
//! Flow: [`Engine::start`] resolves the tenant, takes a slot of that tenant (one per pooled
//! connection) and a global slot (one per executor thread), sends the job to the
//! [`executor::QueryExecutor`] actors (a `SyncArbiter`: threads of their own, never the async
//! runtime's), and waits until DuckDB has produced its first chunk or failed. Errors up to
//! that point come back as a [`GatewayError`] (an HTTP status); after it, as an `error` line.
//!
//! Invariants:
//! - Jobs never queue inside the actor mailbox: both slots are held before sending, and there
//!   are exactly as many executor threads as global slots.
//! - Between DuckDB and the transport there is one bounded channel (`stream_buffer` lines);
//!   a reader that stops reading pauses the DuckDB fetch.
//! - The stream always ends with an `end` or `error` line, unless the client is gone.

pub mod control;
pub mod duck;
pub mod executor;
pub mod parse_tree;
pub mod tables;
pub mod tenant;

pub use tables::TableSet;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Addr, SyncArbiter};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::wire::{QueryRequest, TenantId};
use control::{CancelOnDrop, CancelReason, QueryControl};
use executor::{Job, QueryExecutor};
use tenant::{DbSettings, Queue, Tenant, TenantLimits, TenantRegistry};

/// Which transport serves a query (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Ws,
    Sse,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Ws => "ws",
            Self::Sse => "sse",
        }
    }
}

/// What a line is, for the transports (framing, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Metadata,
    Data,
    End,
    Error,
    /// Nothing from DuckDB: a transport's keep-alive (SSE comment), carries no bytes.
    Keepalive,
}

impl FrameKind {
    /// The query's last line (`end` or `error`).
    pub fn is_final(self) -> bool {
        matches!(self, Self::End | Self::Error)
    }
}

/// One protocol line on its way to the client.
#[derive(Debug)]
pub struct Frame {
    pub bytes: Bytes,
    pub rows: usize,
    pub kind: FrameKind,
}

/// A query that has started: its lines arrive on `frames`, the metadata line first.
pub struct RunningQuery {
    pub query_id: Arc<str>,
    pub accepted_at: Instant,
    pub frames: mpsc::Receiver<Frame>,
    pub control: Arc<QueryControl>,
    /// Cancels the query (as a disconnect) when the stream is dropped before its end.
    pub guard: CancelOnDrop,
    /// The tenant's connection slot this stream holds (HTTP, SSE; a WebSocket holds one for
    /// the whole connection instead, see [`Engine::connect`]).
    pub connection: Option<ConnectionSlot>,
}

/// One of a tenant's `max_connections`, held while a stream or WebSocket is open.
pub struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
}

/// Engine-wide settings, taken from [`Config`].
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub chunk_rows: usize,
    pub chunk_bytes: usize,
    pub stream_buffer: usize,
    pub queue_timeout: Duration,
}

pub struct Engine {
    registry: TenantRegistry,
    executor: Addr<QueryExecutor>,
    global_slots: Arc<Semaphore>,
    /// Queries waiting for a slot, in the whole server (`max_queued`).
    waiting: Queue,
    settings: EngineSettings,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
}

impl Engine {
    /// Starts the executor threads. Must run inside an Actix system.
    pub fn new(config: &Config, shutdown: CancellationToken, metrics: Arc<Metrics>) -> Self {
        let registry = TenantRegistry::new(
            &config.data_dir,
            DbSettings {
                preserve_insertion_order: config.preserve_insertion_order,
                checkout_timeout: config.queue_timeout.max(Duration::from_secs(1)),
            },
            TenantLimits {
                max_queries: config.pool_size,
                max_connections: config.max_connections_per_tenant,
                queue_size: config.queue_size,
                query_timeout: config.query_timeout,
                result: crate::encode::ResultLimits {
                    max_rows: config.max_result_rows.unwrap_or(u64::MAX),
                    max_bytes: config.max_result_bytes.unwrap_or(u64::MAX),
                },
                threads: config.duckdb_threads,
                memory_limit: config.duckdb_memory_limit.clone(),
                max_temp_size: config.duckdb_max_temp_size.clone(),
            },
            config
                .tenants
                .as_ref()
                .map(|t| t.limit_overrides())
                .unwrap_or_default(),
        );
        let executor = SyncArbiter::start(config.max_queries, || QueryExecutor);
        Self {
            registry,
            executor,
            global_slots: Arc::new(Semaphore::new(config.max_queries)),
            waiting: Queue::new(config.max_queued),
            settings: EngineSettings {
                chunk_rows: config.chunk_rows,
                chunk_bytes: config.chunk_bytes,
                stream_buffer: config.stream_buffer,
                queue_timeout: config.queue_timeout,
            },
            shutdown,
            metrics,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Checks that the tenant exists.
    pub async fn check_tenant(&self, tenant: &TenantId) -> Result<(), GatewayError> {
        self.registry.get(tenant).await.map(|_| ())
    }

    /// Takes one of the tenant's connection slots, for a WebSocket (which must refuse before
    /// upgrading): `tenant_not_found`, or `too_many_connections` when all are taken.
    pub async fn connect(&self, tenant: &TenantId) -> Result<ConnectionSlot, GatewayError> {
        let tenant = self.registry.get(tenant).await?;
        self.connection_slot(&tenant)
    }

    /// A slot of the tenant and a global one: at once if both are free, else after waiting in
    /// the tenant's and the server's bounded queues for at most `queue_timeout`. A full queue
    /// or the timeout is `too_busy`.
    async fn admit(
        &self,
        tenant: &Tenant,
    ) -> Result<(OwnedSemaphorePermit, OwnedSemaphorePermit), GatewayError> {
        if let Ok(t) = Arc::clone(&tenant.slots).try_acquire_owned() {
            if let Ok(g) = Arc::clone(&self.global_slots).try_acquire_owned() {
                return Ok((t, g));
            }
        }
        let (Some(_in_tenant_queue), Some(_in_queue)) =
            (tenant.waiting.join(), self.waiting.join())
        else {
            return Err(GatewayError::Overloaded);
        };
        let wait = async {
            let t = Arc::clone(&tenant.slots).acquire_owned().await;
            let g = Arc::clone(&self.global_slots).acquire_owned().await;
            (t, g)
        };
        tokio::select! {
            p = tokio::time::timeout(self.settings.queue_timeout, wait) => match p {
                Ok((Ok(t), Ok(g))) => Ok((t, g)),
                // Semaphores are never closed; a timeout means every slot stayed busy.
                _ => Err(GatewayError::Overloaded),
            },
            _ = self.shutdown.cancelled() => Err(GatewayError::ShuttingDown),
        }
    }

    fn connection_slot(&self, tenant: &Tenant) -> Result<ConnectionSlot, GatewayError> {
        match Arc::clone(&tenant.connections).try_acquire_owned() {
            Ok(permit) => Ok(ConnectionSlot { _permit: permit }),
            Err(_) => {
                self.metrics.connections_refused.inc();
                Err(GatewayError::TooManyConnections(
                    tenant.limits.max_connections,
                ))
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

    /// Admits and starts a query. `parent` is the cancellation scope above the query (the
    /// process, or a WebSocket connection); when it fires, the query stops with
    /// `parent_reason`. `tables`, when given, is all the query may read.
    pub async fn start(
        &self,
        tenant: &TenantId,
        request: QueryRequest,
        transport: Transport,
        query_id: Arc<str>,
        parent: Option<(CancellationToken, CancelReason)>,
        tables: Option<Arc<TableSet>>,
    ) -> Result<RunningQuery, GatewayError> {
        let accepted_at = Instant::now();
        if self.shutdown.is_cancelled() {
            return Err(GatewayError::ShuttingDown);
        }
        let tenant = self.registry.get(tenant).await?;
        // A WebSocket holds its slot for the whole connection; a stream holds one of its own.
        let connection = match transport {
            Transport::Ws => None,
            Transport::Http | Transport::Sse => Some(self.connection_slot(&tenant)?),
        };
        let waiting = Instant::now();
        let permits = self.admit(&tenant).await?;
        self.metrics
            .pool_wait
            .observe(waiting.elapsed().as_secs_f64());

        let control = QueryControl::new(self.metrics.interrupts.clone());
        let guard = CancelOnDrop(Arc::clone(&control));
        let (parent_token, parent_reason) =
            parent.unwrap_or_else(|| (self.shutdown.clone(), CancelReason::Shutdown));
        control.spawn_watcher(parent_token, parent_reason, tenant.limits.query_timeout);
        let limits = tenant.limits.result;

        let (tx, frames) = mpsc::channel(self.settings.stream_buffer);
        let (started_tx, started_rx) = oneshot::channel();
        let job = Job {
            tenant,
            chunk_rows: request.chunk_rows.unwrap_or(self.settings.chunk_rows),
            chunk_bytes: self.settings.chunk_bytes,
            request,
            query_id: Arc::clone(&query_id),
            control: Arc::clone(&control),
            frames: tx,
            permits,
            accepted_at,
            start_early: transport == Transport::Sse,
            limits,
            tables,
            transport,
            metrics: Arc::clone(&self.metrics),
        };
        self.executor.do_send(executor::Run {
            job,
            started: started_tx,
        });
        // If this future is dropped (client gone), `guard` cancels the query.
        match started_rx.await {
            Ok(Ok(())) => Ok(RunningQuery {
                query_id,
                accepted_at,
                frames,
                control,
                guard,
                connection,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(GatewayError::Internal(
                "the executor dropped the query".into(),
            )),
        }
    }
}
