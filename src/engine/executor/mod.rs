//! The query executor: Actix sync actors, each on a thread of its own, that run one query at a
//! time from prepare to the last line.
//!
//! Why sync actors: DuckDB calls block (planning, fetching a chunk can take seconds), so they
//! must never run on the async runtime. A `SyncArbiter` gives a fixed set of threads with
//! mailbox delivery, and the engine's slots keep that mailbox empty.
//!
//! This file is the actor, its [`Job`] and its metrics. A run's steps are in [`run`] (from the
//! connection to the first chunk), its way out in [`stream`]; they use the [`checks`] before
//! binding, the result's [`stamp`], the [`guard`]s of the connection, the [`derive`] of a
//! scratch table, the [`errors`]' classification and the [`progress`] thread. A statement is
//! described without running ([`describe`], a [`Task`]) through the same checks and guards.
//! Those import downward only: `run` → `stream` → `errors`, `progress`; `run` → `checks`,
//! `stamp`, `derive`, `guard`; `stamp` → `checks`; `derive` → `checks`, `guard`, `errors`;
//! `describe` → `checks`, `guard`, `errors`; `checks` → `errors`.
//!
//! Invariants:
//! - The interrupt handle is attached before anything can block in DuckDB and detached before
//!   the connection returns to the pool (see [`super::control`]).
//! - `started` is answered exactly once: `Err` before any frame was produced, `Ok` at the spec's
//!   [`Start`](super::Start) point. After `Ok`, the format's header is the first frame.
//! - Nothing here depends on the format: the [`ResultEncoder`](crate::encode::ResultEncoder)
//!   makes every frame's bytes.
//! - Every frame send waits on the bounded channel *or* cancellation, never forever: the
//!   query's watcher cancels an HTTP/SSE send that waited `stall_timeout`
//!   ([`QueryControl::wait_begins`]); a WebSocket's tasks bound their own clients.
//! - Every run is counted once (by transport and outcome), after its final frame.

mod checks;
mod derive;
mod describe;
mod errors;
mod guard;
mod progress;
mod run;
mod stamp;
mod stream;

use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, Handler, Message, SyncContext};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::control::QueryControl;
use super::stamp::Stamp;
use super::tables::TableSet;
use super::tenant::Tenant;
use super::{Frame, QuerySpec};
use crate::encode::{BatchSizes, ResultLimits};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::wire::QueryRequest;
use checks::Statement;
use errors::Failures;
use stream::Running;

pub(super) use describe::describe;

/// A query admitted by the engine: its spec, and what the engine resolved for it.
pub struct Job {
    pub spec: QuerySpec,
    pub tenant: Arc<Tenant>,
    pub sizes: BatchSizes,
    /// The tenant's result limits and the spec's, the tighter of each.
    pub limits: ResultLimits,
    pub control: Arc<QueryControl>,
    pub frames: mpsc::Sender<Frame>,
    /// The tenant's slot and the global one, held (never read) until the job is dropped.
    pub _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
    pub accepted_at: Instant,
    /// The tenant's data version when the job was admitted (read before DuckDB began).
    pub data_version: u64,
    pub metrics: Arc<Metrics>,
}

impl Job {
    fn request(&self) -> &QueryRequest {
        &self.spec.request
    }

    fn tables(&self) -> Option<&TableSet> {
        self.spec.tables.as_deref()
    }

    /// How this job's DuckDB errors become the client's.
    fn failures(&self) -> Failures<'_> {
        Failures {
            control: &self.control,
            sandbox: &*self.tenant,
        }
    }

    /// This job's statement, as the checks see it.
    fn statement(&self) -> Statement<'_> {
        Statement {
            request: self.request(),
            tables: self.tables(),
            catalog: self.tenant.id.as_str(),
            stamp: self.spec.stamp,
            failures: self.failures(),
        }
    }
}

/// Runs `job`; `started` is answered once the stream starts or the query is refused.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Run {
    pub job: Job,
    pub started: oneshot::Sender<Started>,
}

/// The answer to [`Run::started`]: the stream started (with the result's stamp, when the spec
/// asked for it), or the query was refused.
pub type Started = Result<Option<Stamp>, GatewayError>;

/// A piece of DuckDB work that is not a query (creating a tenant's database, reading its
/// catalog for the admin routes): it runs on an executor thread like a query, holding the same
/// slots, so DuckDB still never runs on the async runtime.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Task(pub Box<dyn FnOnce() + Send>);

pub struct QueryExecutor;

impl Handler<Task> for QueryExecutor {
    type Result = ();

    fn handle(&mut self, Task(task): Task, _ctx: &mut SyncContext<Self>) {
        task();
    }
}

impl Actor for QueryExecutor {
    type Context = SyncContext<Self>;
}

impl Handler<Run> for QueryExecutor {
    type Result = ();

    fn handle(&mut self, Run { job, started }: Run, _ctx: &mut SyncContext<Self>) {
        let transport = job.spec.label.as_str();
        let active = job.metrics.active_queries.with_label_values(&[transport]);
        active.inc();
        let span = tracing::info_span!(
            "query",
            query_id = %job.spec.query_id,
            tenant = %job.tenant.id,
            transport
        );
        let _enter = span.enter();
        let mut run = Running::new(started);
        let ended = run.execute(&job);
        // No progress line may follow the final one.
        if let Some(sampler) = run.progress.take() {
            sampler.stop();
        }
        let outcome = run.finish(&job, ended);
        job.control.finish();
        let elapsed = job.accepted_at.elapsed();
        job.metrics
            .queries
            .with_label_values(&[transport, outcome.as_str()])
            .inc();
        job.metrics
            .query_duration
            .with_label_values(&[transport, outcome.as_str()])
            .observe(elapsed.as_secs_f64());
        job.metrics
            .backpressure_wait
            .with_label_values(&[transport])
            .inc_by(run.blocked.as_secs_f64());
        active.dec();
        tracing::debug!(
            outcome = outcome.as_str(),
            rows = run.rows,
            elapsed_ms = elapsed.as_millis() as u64,
            "query finished"
        );
    }
}
