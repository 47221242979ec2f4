//! The query executor: Actix sync actors, each on a thread of its own, that run one query at a
//! time from prepare to the last line.
//!
//! Why sync actors: DuckDB calls block (planning, fetching a chunk can take seconds), so they
//! must never run on the async runtime. A `SyncArbiter` gives a fixed set of threads with
//! mailbox delivery, and the engine's slots keep that mailbox empty.
//!
//! Invariants:
//! - The interrupt handle is attached before anything can block in DuckDB and detached before
//!   the connection returns to the pool (see [`super::control`]).
//! - `started` is answered exactly once: `Err` before any frame was produced, `Ok` at the spec's
//!   [`Start`] point. After `Ok`, the format's header is the first frame.
//! - Nothing here depends on the format: the [`ResultEncoder`] makes every frame's bytes.
//! - Every frame send waits on the bounded channel *or* cancellation, never forever: the
//!   query's watcher cancels an HTTP/SSE send that waited `stall_timeout`
//!   ([`QueryControl::wait_begins`]); a WebSocket's tasks bound their own clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Handler, Message, SyncContext};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::allowlist::Refused;
use super::control::{CancelReason, QueryControl};
use super::parse_tree::{self, TreeError};
use super::scratch;
use super::stamp::Stamp;
use super::tables::{Refusal, TableSet};
use super::tenant::Tenant;
use super::{Frame, FrameKind, QuerySpec, Start};
use crate::duck::{Connection, DuckError, DuckErrorKind, Prepared, StatementKind};
use crate::encode::{self, ChunkSizes, Flow, Line, ResultEncoder, ResultLimits, Stopped};
use crate::error::GatewayError;
use crate::metrics::{Metrics, Outcome};
use crate::wire::QueryRequest;
use simd_json::prelude::*;

/// A partial line is sent once it is this old, so slow queries still trickle rows out. Its age
/// counts from the end of the last send: time spent waiting for a slow reader is not DuckDB
/// being slow, and cutting lines then would only make more of them.
const LINE_MAX_AGE: Duration = Duration::from_millis(50);
/// How long a final `error` line may wait for a stalled reader.
const FINAL_LINE_WAIT: Duration = Duration::from_secs(15);

/// A query admitted by the engine: its spec, and what the engine resolved for it.
pub struct Job {
    pub spec: QuerySpec,
    pub tenant: Arc<Tenant>,
    pub sizes: ChunkSizes,
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
        let mut run = Running {
            started: Some(started),
            stamp: None,
            progress: None,
            encoder: None,
            rows: 0,
            blocked: Duration::ZERO,
        };
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

/// Why the streaming loop stopped.
enum Ended {
    /// All rows were sent; the `end` line is next.
    Complete,
    /// Failed before the first line: answered through `started`.
    Rejected(GatewayError),
    /// Failed after the first line: an `error` line is next.
    Failed(GatewayError),
    /// The client is gone: nothing more can be sent.
    Gone,
}

struct Running {
    started: Option<oneshot::Sender<Started>>,
    /// What the result depends on ([`QuerySpec::stamp`]), sent with `started`.
    stamp: Option<Stamp>,
    /// Sends `progress` lines while DuckDB works, when the request asked.
    progress: Option<Sampler>,
    /// The format's encoder, once the result's columns are known.
    encoder: Option<Box<dyn ResultEncoder>>,
    rows: u64,
    /// Time spent waiting for the reader (the channel was full).
    blocked: Duration,
}

/// Binds the request's parameters, after checking that their number matches.
fn bind_params(stmt: &mut Prepared<'_>, request: &QueryRequest) -> Result<(), GatewayError> {
    let expected = stmt.param_count();
    if expected != request.params.len() {
        return Err(GatewayError::InvalidParams(format!(
            "the statement takes {expected} parameter(s) but {} were given",
            request.params.len()
        )));
    }
    for (i, p) in request.params.iter().enumerate() {
        stmt.bind(i + 1, p)
            .map_err(|e| GatewayError::InvalidParams(e.message))?;
    }
    Ok(())
}

/// A refusal by a table check, as the client sees it.
fn table_refusal(refusal: Refusal) -> Ended {
    let message = refusal.message().to_string();
    Ended::Failed(match refusal {
        Refusal::Invalid => GatewayError::InvalidSql(message),
        Refusal::NotAllowed => GatewayError::Forbidden(message),
    })
}

/// What a client is told when a statement cannot be checked (DuckDB serializes only `SELECT`).
const UNCHECKABLE: &str = "only SELECT statements (and EXPLAIN of one) run here: queries are \
     read-only, and this statement cannot be checked";

/// [`UNCHECKABLE`], naming the statement by its first word (`CREATE statements…`).
fn uncheckable(sql: &str) -> String {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(16)
        .collect();
    match word.to_ascii_uppercase().as_str() {
        "" | "SELECT" | "WITH" | "FROM" | "EXPLAIN" => UNCHECKABLE.into(),
        word => format!("{word} statements are not allowed: {UNCHECKABLE}"),
    }
}

/// The refusal of what is not on the allowlist ([`super::allowlist`]).
fn refused_function(refused: &Refused) -> Ended {
    Ended::Failed(GatewayError::Forbidden(match refused {
        Refused::Function(name) => format!(
            "function `{name}` is not available to queries: only functions that compute on \
             values or read the tenant's own tables are"
        ),
        Refused::Type(name) => format!(
            "values of type `{name}` are not available to queries: DuckDB builds them without \
             a depth limit"
        ),
    }))
}

/// The checks before DuckDB runs the statement (see [`super::parse_tree`]): unless the tenant
/// vetted this text at this data version, the allowlist and lambda nesting on the parse tree,
/// then the allowlist on the bound plan; for a table-limited token, its tables (parse tree,
/// then plan). An `EXPLAIN` is checked as the statement it explains.
///
/// Returns what it asked DuckDB, for the stamp (when the spec wants one) to reuse.
fn check(conn: &Connection, job: &Job, vetted: bool) -> Result<Asked, Ended> {
    let sql = &job.request().sql;
    let checked = parse_tree::explained(sql).unwrap_or(sql);
    let tree = parse_tree::fetch(conn, checked)
        .map_err(|e| execution_error(e, job))?
        .unwrap_or_default();
    let mut asked = Asked {
        tree: job.spec.stamp.then(|| tree.clone()),
        plan_tables: None,
    };
    let tree_text = tree;
    let mut bytes = tree_text.as_bytes().to_vec();
    let tree = parse_json(&mut bytes)?;
    if tree.get("error").and_then(|e| e.as_bool()) == Some(true) {
        return Err(not_checkable(&tree, job));
    }
    let allowlist = match vetted {
        true => None,
        false => Some(
            job.tenant
                .allowlist(conn)
                .map_err(|e| execution_error(e, job))?,
        ),
    };
    if let Some(allowlist) = allowlist {
        if let Some(refused) = allowlist.refused_in_tree(&tree) {
            return Err(refused_function(&refused));
        }
        if parse_tree::lambda_nesting(&tree) > parse_tree::MAX_LAMBDA_NESTING {
            return Err(Ended::Failed(GatewayError::Forbidden(format!(
                "lambdas nested more than {} deep are refused: DuckDB binds them in time that \
                 doubles with each level",
                parse_tree::MAX_LAMBDA_NESTING
            ))));
        }
    }
    if let Some(tables) = job.tables() {
        tables
            .check_parse_tree(&tree, job.tenant.id.as_str())
            .map_err(table_refusal)?;
    }
    check_parameter_count(&tree, job)?;
    if let Some(list) = allowlist.filter(|list| list.needs_plan(&tree)) {
        let planned = match job.request().params.as_slice() {
            [] => checked.to_string(),
            params => parse_tree::sql_with_values(conn, &tree_text, params)
                .map_err(|e| execution_error(e, job))?
                .ok_or_else(|| Ended::Failed(GatewayError::Forbidden(UNCHECKABLE.into())))?,
        };
        check_plan_functions(conn, job, list, &planned)?;
    }
    if let Some(tables) = job.tables() {
        let plans = check_plan_tables(conn, job, tables)?;
        if job.spec.stamp {
            asked.plan_tables = Some(scanned_tables(plans));
        }
    }
    Ok(asked)
}

/// The request must give exactly the parameters the statement takes (the plan is made with
/// their values, [`parse_tree::sql_with_values`]); a named parameter cannot be given.
fn check_parameter_count(tree: &simd_json::BorrowedValue<'_>, job: &Job) -> Result<(), Ended> {
    let given = job.request().params.len();
    match parse_tree::parameter_count(tree) {
        Some(n) if n == given => Ok(()),
        Some(n) => Err(Ended::Failed(GatewayError::InvalidParams(format!(
            "the statement takes {n} parameter(s) but {given} were given"
        )))),
        None => Err(Ended::Failed(GatewayError::InvalidParams(
            "named parameters ($name) cannot be given: use $1, $2… or ?".into(),
        ))),
    }
}

/// DuckDB's parse tree or plan as JSON, refusing one nested too deep.
fn parse_json(bytes: &mut [u8]) -> Result<simd_json::BorrowedValue<'_>, Ended> {
    parse_tree::parse(bytes).map_err(|e| match e {
        TreeError::TooDeep => Ended::Failed(GatewayError::Forbidden(format!(
            "the statement nests deeper than {} levels",
            parse_tree::MAX_TREE_DEPTH
        ))),
        TreeError::Unreadable => table_refusal(Refusal::NotAllowed),
    })
}

/// Refuses the statement unless every function of its bound plan is allowed (a view's or a
/// macro's body shows only here).
fn check_plan_functions(
    conn: &Connection,
    job: &Job,
    allowlist: &super::allowlist::Allowlist,
    sql: &str,
) -> Result<(), Ended> {
    let plan = parse_tree::fetch_plan(conn, sql)
        .map_err(|e| execution_error(e, job))?
        .unwrap_or_default();
    let mut bytes = plan.into_bytes();
    let plan = parse_json(&mut bytes)?;
    if plan.get("error").and_then(|e| e.as_bool()) == Some(true) {
        return Err(not_checkable(&plan, job));
    }
    match allowlist.refused_in_plan(&plan) {
        Some(refused) => Err(refused_function(&refused)),
        None => Ok(()),
    }
}

/// The end of a statement DuckDB would not serialize (its tree or its plan): a mistake in
/// the SQL (syntax, an unknown table or column) is `invalid_sql` with DuckDB's message, as
/// running it would have been; anything else cannot be checked and is refused.
fn not_checkable(answer: &simd_json::BorrowedValue<'_>, job: &Job) -> Ended {
    let field = |k: &str| answer.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let (kind, message) = (field("error_type"), field("error_message"));
    let mistake = matches!(
        kind,
        "parser" | "binder" | "catalog" | "conversion" | "invalid input" | "out of range"
    ) && !message.contains("does not support serialization");
    if !mistake {
        return Ended::Failed(GatewayError::Forbidden(uncheckable(&job.request().sql)));
    }
    // DuckDB's messages name tables and columns: a table-limited token gets none.
    if job.tables().is_some() {
        return table_refusal(Refusal::Invalid);
    }
    let e = DuckError {
        message: format!("{} Error: {message}", error_title(kind)),
        kind: DuckErrorKind::Other,
    };
    Ended::Failed(sql_error(e, job))
}

/// DuckDB's name for an error type as its messages begin (`binder` → `Binder`).
fn error_title(kind: &str) -> String {
    kind.split(' ')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the checks before binding already asked DuckDB: the parse tree's text, the tables of
/// the plan (`Some(None)`: the plan could not tell).
#[derive(Default)]
struct Asked {
    tree: Option<String>,
    plan_tables: Option<Option<Vec<String>>>,
}

/// Why `EXPLAIN` of a statement gave no plan.
enum ExplainError {
    /// DuckDB could not plan it.
    Prepare,
    /// Its parameters do not fit.
    Bind(GatewayError),
    /// Planning failed while running.
    Run(DuckError),
}

/// The rows of `EXPLAIN (FORMAT json)` of the request's statement with its parameters: one
/// plan per row (with `explain_output = 'all'`, set for every database, the unoptimized one
/// too, which keeps scans that the optimizer answers from statistics).
fn explain(conn: &Connection, request: &QueryRequest) -> Result<Vec<String>, ExplainError> {
    let explain = format!("EXPLAIN (FORMAT json) {}", request.sql);
    let mut stmt = conn.prepare(&explain).map_err(|_| ExplainError::Prepare)?;
    bind_params(&mut stmt, request).map_err(ExplainError::Bind)?;
    let mut result = stmt.execute_streaming().map_err(ExplainError::Run)?;
    let mut plans = Vec::new();
    while let Some(chunk) = result.next_chunk().map_err(ExplainError::Run)? {
        plans.extend((0..chunk.len()).map(|row| chunk.varchar(1, row).unwrap_or_default()));
    }
    Ok(plans)
}

/// Refuses the query unless every table its plan reads is in `tables` (DuckDB plans it once
/// more, [`explain`]); returns the plans when the spec wants a stamp (else none).
fn check_plan_tables(
    conn: &Connection,
    job: &Job,
    tables: &TableSet,
) -> Result<Vec<String>, Ended> {
    let catalog = job.tenant.id.as_str();
    // The parse tree names only allowed tables by now, so a statement DuckDB cannot plan is
    // the client's mistake (an unknown column...).
    let plans = explain(conn, job.request()).map_err(|e| match e {
        ExplainError::Prepare => table_refusal(Refusal::Invalid),
        ExplainError::Bind(e) => Ended::Failed(e),
        ExplainError::Run(e) => execution_error(e, job),
    })?;
    if plans.is_empty() {
        return Err(table_refusal(Refusal::NotAllowed));
    }
    let mut kept = Vec::new();
    for plan in plans {
        if job.spec.stamp {
            kept.push(plan.clone());
        }
        tables
            .check_plan(&mut plan.into_bytes(), catalog)
            .map_err(table_refusal)?;
    }
    Ok(kept)
}

/// What the result of the job's statement depends on ([`super::stamp`]): DuckDB parses and
/// plans it once more, unless the checks before binding already did (`asked`). Whatever fails
/// makes the result not reusable; it never fails the query.
fn stamp(conn: &Connection, job: &Job, asked: Asked) -> Stamp {
    let version = job.data_version;
    let request = job.request();
    let known = match asked.plan_tables {
        // A table-limited token's own plan: nothing to save.
        Some(_) => None,
        None => job.tenant.known_reads(&request.sql, version),
    };
    let (tables, deterministic) = match known {
        Some(r) => (r.tables, r.deterministic),
        None => {
            let (tables, deterministic) = reads(conn, job, asked);
            job.tenant.remember_reads(
                &request.sql,
                super::tenant::Reads {
                    version,
                    tables: tables.clone(),
                    deterministic,
                },
            );
            (tables, deterministic)
        }
    };
    let result_version = match &tables {
        Some(t) => job.tenant.tables_version(t),
        None => version,
    };
    Stamp {
        tables,
        deterministic,
        version,
        result_version,
    }
}

/// The tables `job`'s statement reads and whether it is deterministic, from DuckDB.
fn reads(conn: &Connection, job: &Job, asked: Asked) -> (Option<Vec<String>>, bool) {
    let request = job.request();
    let tree = match asked.tree {
        Some(tree) => Some(tree),
        None => parse_tree::fetch(conn, &request.sql).ok().flatten(),
    };
    let deterministic = match (job.tenant.volatile_functions(conn), tree) {
        (Some(volatile), Some(tree)) => {
            let mut bytes = tree.into_bytes();
            parse_tree::parse(&mut bytes)
                .is_ok_and(|tree| super::stamp::is_deterministic(&tree, volatile))
        }
        _ => false,
    };
    let tables = match asked.plan_tables {
        Some(tables) => tables,
        None => explain(conn, request).ok().and_then(scanned_tables),
    };
    (tables, deterministic)
}

/// The tables the plans scan, sorted; `None` if a plan cannot tell.
fn scanned_tables(plans: Vec<String>) -> Option<Vec<String>> {
    let mut tables = Vec::new();
    for plan in plans {
        if !super::stamp::plan_tables(&mut plan.into_bytes(), &mut tables) {
            return None;
        }
    }
    tables.sort();
    tables.dedup();
    Some(tables)
}

/// The client's statements run in a read-only transaction, rolled back when this is dropped:
/// whatever DuckDB's statement type says, nothing a query runs can write (`EXPLAIN ANALYZE
/// DELETE …` would run the DELETE). Only [`derive`] writes, outside it, into the scratch space.
struct ReadOnly<'c>(&'c Connection);

impl<'c> ReadOnly<'c> {
    const BEGIN: &'static str = "BEGIN TRANSACTION READ ONLY";
    const ROLLBACK: &'static str = "ROLLBACK";

    /// Both statements are kept prepared on the connection: parsing and planning them again
    /// cost a quarter of a millisecond of every query's first byte.
    fn begin(conn: &'c Connection) -> Result<Self, DuckError> {
        if conn.execute_cached(Self::BEGIN).is_err() {
            // A transaction left open (a rollback that failed): end it, then begin again.
            let _ = conn.execute_cached(Self::ROLLBACK);
            conn.execute_cached(Self::BEGIN)?;
        }
        Ok(Self(conn))
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        // Fails when no transaction is open (a derive between its two halves); tried twice,
        // and `begin` ends a transaction a pooled connection still holds.
        if self.0.execute_cached(Self::ROLLBACK).is_err() {
            let _ = self.0.execute_cached(Self::ROLLBACK);
        }
    }
}

/// Creates derived table `name` from the job's checked SELECT (and its parameters), within the
/// tenant's scratch budget, and returns the statement that counts its rows. Runs between the
/// query's read-only transactions: the checks ran in the first, the count runs in the second.
fn derive<'c>(conn: &'c Connection, job: &Job, name: &str) -> Result<Prepared<'c>, Ended> {
    let internal = |e| Ended::Failed(GatewayError::internal(e));
    conn.execute_cached(ReadOnly::ROLLBACK).map_err(internal)?;
    let made = derive_table(conn, job, name);
    conn.execute_cached(ReadOnly::BEGIN).map_err(internal)?;
    made?;
    conn.prepare(&scratch::count_sql(name))
        .map_err(|e| Ended::Failed(GatewayError::internal(e)))
}

/// The write of [`derive`]: the table, unless it exists already (the same name is the same
/// SELECT for Mosaic), kept only if the space has room and the data did not move meanwhile.
fn derive_table(conn: &Connection, job: &Job, name: &str) -> Result<(), Ended> {
    if !scratch::valid_name(name) {
        return Err(Ended::Failed(GatewayError::Forbidden(format!(
            "`{name}` is not a plain table name"
        ))));
    }
    scratch::attach(conn).map_err(|e| Ended::Failed(GatewayError::internal(e)))?;
    if scratch::exists(conn, name).map_err(|e| Ended::Failed(GatewayError::internal(e)))? {
        return Ok(());
    }
    let version = job.tenant.data_version();
    let mut create = conn
        .prepare(&scratch::create_sql(name, &job.request().sql))
        .map_err(|e| Ended::Failed(sql_error(e, job)))?;
    bind_params(&mut create, job.request()).map_err(Ended::Failed)?;
    {
        let mut result = create
            .execute_streaming()
            .map_err(|e| execution_error(e, job))?;
        while result
            .next_chunk()
            .map_err(|e| execution_error(e, job))?
            .is_some()
        {}
    }
    drop(create);
    // Made again from the same SELECT after a data change, unless it took parameters.
    let request = job.request();
    let table = scratch::Derived {
        name: name.to_string(),
        select: request.params.is_empty().then(|| request.sql.clone()),
    };
    scratch::admit(
        conn,
        &job.tenant,
        &table,
        version,
        job.tenant.limits.scratch_bytes,
    )
    .map_err(Ended::Failed)
}

/// Maps a DuckDB error during execution to the gateway's, honouring why it was interrupted.
fn execution_error(e: DuckError, job: &Job) -> Ended {
    let control = &job.control;
    if control.is_cancelled() {
        return cancelled(control);
    }
    if e.kind == DuckErrorKind::Interrupted {
        // Not ours: DuckDB stops a query's other threads when one fails, and now and then its
        // fetch reports that interrupt instead of the failure itself (seen with `error()` in a
        // parallel scan). The client still gets a final error line, never a cut stream.
        tracing::warn!(message = %e.message, "DuckDB interrupted a query the gateway did not cancel");
        return Ended::Failed(GatewayError::QueryFailed(
            "DuckDB stopped the query because one of its threads failed, without saying why; \
             run it again to see the error"
                .into(),
        ));
    }
    Ended::Failed(classify(e, &job.tenant, |message| {
        if message.starts_with("Out of Memory Error") {
            // The tenant's (or DuckDB's default) memory_limit, not the server's health.
            GatewayError::OutOfMemory(message)
        } else {
            GatewayError::QueryFailed(message)
        }
    }))
}

/// DuckDB refused the SQL: a sandbox refusal (its permission errors, external access,
/// several statements at once) is `forbidden`, anything else `invalid_sql`.
fn sql_error(e: DuckError, job: &Job) -> GatewayError {
    classify(e, &job.tenant, GatewayError::InvalidSql)
}

/// What every DuckDB error is first: a DuckDB bug (an `INTERNAL Error`, whose message carries a
/// stack trace: logged, never shown), a function of an extension the server loads but could
/// not (`extension_unavailable`), or a sandbox refusal; else what `otherwise` makes of the
/// message. Server paths in the message are replaced before a client sees it.
fn classify(
    e: DuckError,
    tenant: &Tenant,
    otherwise: impl FnOnce(String) -> GatewayError,
) -> GatewayError {
    if e.message.starts_with("INTERNAL Error") {
        return GatewayError::Internal(Box::new(e));
    }
    let message = tenant.redact(&e.message);
    match super::tenant::missing_extension(&message) {
        Some(ext) if tenant.loads_extension(ext) => GatewayError::ExtensionUnavailable(format!(
            "the query needs DuckDB's {ext} extension, which this server could not load \
             (its operator can point --extension-repository at a copy)"
        )),
        // A feature of an extension that queries may not install or load.
        Some(_) => GatewayError::Forbidden(message),
        None if is_sandbox_refusal(&message) => GatewayError::Forbidden(message),
        None => otherwise(message),
    }
}

fn is_sandbox_refusal(message: &str) -> bool {
    message.starts_with("Permission Error")
        // A write inside the query's read-only transaction (`EXPLAIN ANALYZE DELETE …`).
        || message.contains("transaction is launched in read-only mode")
        || message.contains("multiple statements")
}

/// The query's end if it was cancelled: checked between DuckDB's calls, because DuckDB is
/// interrupted once and forgets an interrupt that came before its current statement began.
fn stopped(job: &Job) -> Option<Ended> {
    job.control.reason().map(|_| cancelled(&job.control))
}

/// The result limits that are set, for a client's message (`1000 rows and 1048576 bytes`).
fn limit_text(limits: &encode::ResultLimits) -> String {
    let mut parts = Vec::new();
    if limits.max_rows != u64::MAX {
        parts.push(format!("{} rows", limits.max_rows));
    }
    if limits.max_bytes != u64::MAX {
        parts.push(format!("{} bytes", limits.max_bytes));
    }
    parts.join(" and ")
}

fn cancelled(control: &QueryControl) -> Ended {
    match control.reason() {
        // A reader that took nothing for the stall timeout cannot take a last line either.
        Some(CancelReason::Disconnected | CancelReason::Stalled) | None => Ended::Gone,
        Some(_) => Ended::Failed(cancelled_error(control)),
    }
}

impl Running {
    /// Sends a frame, waiting for room or cancellation.
    fn send(&mut self, job: &Job, frame: Frame) -> Result<(), Ended> {
        let frame = match job.frames.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Ended::Gone),
            Err(mpsc::error::TrySendError::Full(f)) => f,
        };
        // The reader is behind: DuckDB pauses here until it catches up.
        let waiting = Instant::now();
        job.control.wait_begins();
        let sent = futures_executor::block_on(async {
            tokio::select! {
                biased;
                _ = job.control.cancelled() => Err(cancelled(&job.control)),
                r = job.frames.send(frame) => r.map_err(|_| Ended::Gone),
            }
        });
        job.control.wait_ends();
        self.blocked += waiting.elapsed();
        sent
    }

    fn send_line(&mut self, job: &Job, line: Line) -> Result<(), Ended> {
        self.rows += line.rows as u64;
        self.send(
            job,
            Frame {
                bytes: line.bytes,
                rows: line.rows,
                kind: FrameKind::Data,
            },
        )
    }

    fn execute(&mut self, job: &Job) -> Ended {
        let reject = |e| Ended::Rejected(e);
        let conn = match job.tenant.connection() {
            Ok(c) => c,
            Err(e) => return reject(e),
        };
        // Derived tables of older data go before any query can read them.
        if let Err(e) = scratch::refresh(&conn, &job.tenant) {
            return reject(GatewayError::internal(e));
        }
        scratch::rederive(&conn, &job.tenant, &job.request().sql);
        // Declared before every statement and result, so dropped after them: the rollback
        // ends the transaction once DuckDB is done with the connection, and after `_detach`,
        // so that no late interrupt can stop the rollback itself.
        let _read_only = match ReadOnly::begin(&conn) {
            Ok(t) => t,
            Err(e) => return reject(GatewayError::internal(e)),
        };
        if !job.control.attach(conn.interrupt_handle()) {
            return match cancelled(&job.control) {
                Ended::Failed(e) => Ended::Rejected(e),
                other => other,
            };
        }
        // Detach before `conn` drops back into the pool (drop order is reverse declaration).
        let _detach = Detach(&job.control);

        // The checks run before DuckDB binds the statement (`check`); a text this tenant
        // already vetted at this data version skips those every client gets.
        let sql = &job.request().sql;
        let vetted = job.tenant.is_vetted(sql, job.data_version);
        let mut asked = Asked::default();
        if !vetted || job.tables().is_some() {
            match check(&conn, job, vetted) {
                Ok(a) => asked = a,
                Err(Ended::Failed(e)) => return Ended::Rejected(e),
                Err(other) => return other,
            }
            job.tenant.remember_vetted(sql, job.data_version);
        }
        // Kept prepared on the connection: a dashboard's repeated query skips DuckDB's parser,
        // binder and planner (DuckDB re-binds it after a change to what it reads).
        let mut stmt = match conn.prepare_cached(&job.request().sql) {
            Ok(s) => s,
            // DuckDB's messages name tables and columns: a table-limited token gets none.
            Err(_) if job.tables().is_some() => {
                return reject(GatewayError::InvalidSql(Refusal::Invalid.message().into()))
            }
            Err(e) => return reject(sql_error(e, job)),
        };
        match stmt.kind() {
            StatementKind::Other(kind) => {
                return reject(GatewayError::Forbidden(format!(
                    "{kind} statements are not allowed: queries are read-only"
                )))
            }
            // DuckDB runs what EXPLAIN ANALYZE explains, whatever its type.
            StatementKind::Explain if parse_tree::names_analyze(sql) => {
                return reject(GatewayError::Forbidden(
                    "EXPLAIN ANALYZE runs the statement it explains: use EXPLAIN".into(),
                ))
            }
            StatementKind::Explain | StatementKind::Query => {}
        }
        if let Err(e) = bind_params(&mut stmt, job.request()) {
            return reject(e);
        }
        if job.spec.stamp {
            self.stamp = Some(stamp(&conn, job, asked));
        }
        // The checked SELECT becomes a derived table; the stream is its row count.
        if let Some(name) = &job.spec.derive {
            drop(stmt);
            stmt = match derive(&conn, job, name) {
                Ok(s) => s,
                Err(Ended::Failed(e)) => return Ended::Rejected(e),
                Err(other) => return other,
            };
        }
        // A caller that keeps the line alive while DuckDB works starts its response once the
        // statement is prepared and bound; the others wait for the first chunk, so that more
        // errors still get a status. Progress lines can only reach a client whose response
        // has started.
        if job.spec.start == Start::Bound || job.request().progress {
            if let Some(started) = self.started.take() {
                if started.send(Ok(self.stamp.clone())).is_err() {
                    return Ended::Gone;
                }
            }
        }
        // DuckDB runs a blocking operator (an aggregate, a sort) to its end inside this call:
        // the progress thread starts before it.
        if job.request().progress {
            self.progress = Sampler::spawn(job);
        }
        // DuckDB forgets an interrupt when its next statement starts, and the query is
        // interrupted once: a cancel that came while the statements above ran is seen here.
        if let Some(end) = stopped(job) {
            return self.unstarted(end);
        }
        job.metrics.executions.inc();
        let mut result = match stmt.execute_streaming() {
            Ok(r) => r,
            Err(e) => return self.reject_execution(e, job),
        };
        // A cancel between the check above and DuckDB starting was forgotten by DuckDB.
        if let Some(end) = stopped(job) {
            return self.unstarted(end);
        }
        // Column types come from the executed result: parameter types are resolved there.
        let columns: Vec<_> = (0..result.column_count())
            .map(|i| (result.column_name(i), result.column_type(i)))
            .collect();
        let spec = &job.spec;
        let options = encode::Options {
            geometry: spec.request.geometry,
        };
        let mut encoder = match encode::encoder(
            spec.format,
            &columns,
            &spec.query_id,
            job.sizes,
            job.limits,
            options,
            &mut || result.arrow_options(),
        ) {
            Ok(e) => e,
            Err(e) => return reject(e.into()),
        };
        let chunk = match result.next_chunk() {
            Ok(c) => c,
            Err(e) => return self.reject_execution(e, job),
        };

        // DuckDB produced its first chunk: the stream starts.
        if let Some(started) = self.started.take() {
            if started.send(Ok(self.stamp.take())).is_err() {
                return Ended::Gone;
            }
        }
        let header = Frame {
            bytes: encoder.header(),
            rows: 0,
            kind: FrameKind::Metadata,
        };
        // A format without a header (jsonl) sends none: an empty piece means nothing.
        if !header.bytes.is_empty() {
            if let Err(end) = self.send(job, header) {
                self.encoder = Some(encoder);
                return end;
            }
        }
        let ended = self.stream(job, &mut *encoder, chunk, &mut result);
        self.encoder = Some(encoder);
        ended
    }

    /// Encodes and sends every chunk, from `chunk` (the first) on.
    fn stream(
        &mut self,
        job: &Job,
        encoder: &mut dyn ResultEncoder,
        mut chunk: Option<crate::duck::DataChunk>,
        result: &mut crate::duck::Streaming<'_>,
    ) -> Ended {
        let mut last_sent = Instant::now();
        while let Some(c) = chunk.take() {
            let mut failed = None;
            let pushed = encoder.push(&c, &mut |line| {
                let sent = self.send_line(job, line).map_err(|e| {
                    failed = Some(e);
                    Stopped
                });
                last_sent = Instant::now();
                sent
            });
            drop(c);
            match pushed {
                Err(Stopped) => {
                    return failed.unwrap_or_else(|| {
                        Ended::Failed(GatewayError::internal("a data chunk lacks a result column"))
                    })
                }
                Ok(Flow::LimitReached) => {
                    // Send the allowed part, then say why the stream ends there.
                    if let Some(line) = encoder.flush() {
                        if let Err(end) = self.send_line(job, line) {
                            return end;
                        }
                    }
                    return Ended::Failed(GatewayError::LimitExceeded(format!(
                        "the result passed the server's limit ({}); add LIMIT or narrow the query",
                        limit_text(&job.limits)
                    )));
                }
                Ok(Flow::Invalid { column, reason }) => {
                    // Send the rows before the bad one, then say why the stream ends there.
                    if let Some(line) = encoder.flush() {
                        if let Err(end) = self.send_line(job, line) {
                            return end;
                        }
                    }
                    return Ended::Failed(GatewayError::QueryFailed(format!(
                        "column {} holds a value that cannot be encoded: malformed WKB ({reason})",
                        column + 1
                    )));
                }
                Ok(Flow::Failed(message)) => {
                    if let Some(line) = encoder.flush() {
                        if let Err(end) = self.send_line(job, line) {
                            return end;
                        }
                    }
                    return Ended::Failed(GatewayError::QueryFailed(message));
                }
                Ok(Flow::Continue) => {}
            }
            if encoder.pending_rows() > 0 && last_sent.elapsed() >= LINE_MAX_AGE {
                if let Some(line) = encoder.flush() {
                    if let Err(end) = self.send_line(job, line) {
                        return end;
                    }
                    last_sent = Instant::now();
                }
            }
            if let Some(end) = stopped(job) {
                return end;
            }
            chunk = match result.next_chunk() {
                Ok(c) => c,
                Err(e) => return execution_error(e, job),
            };
        }
        if let Some(line) = encoder.flush() {
            if let Err(end) = self.send_line(job, line) {
                return end;
            }
        }
        Ended::Complete
    }

    /// An execution error before the first line: answerable with a status unless the
    /// response already started (SSE).
    fn reject_execution(&mut self, e: DuckError, job: &Job) -> Ended {
        self.unstarted(execution_error(e, job))
    }

    /// A failure before the first line is a refusal (a status) while the response has not
    /// started.
    fn unstarted(&self, end: Ended) -> Ended {
        match end {
            Ended::Failed(e) if self.started.is_some() => Ended::Rejected(e),
            other => other,
        }
    }

    /// A query whose client is gone (or stalled: counted as a slow consumer).
    fn gone(&self, job: &Job) -> Outcome {
        if job.control.reason() == Some(CancelReason::Stalled) {
            tracing::info!(
                query_id = %job.spec.query_id,
                "the reader took nothing for the stall timeout: query stopped as gone"
            );
            job.metrics
                .slow_consumer_disconnects
                .with_label_values(&[job.spec.label.as_str()])
                .inc();
        }
        Outcome::Disconnected
    }

    /// Sends the last line (or the rejection) and returns the outcome for metrics.
    fn finish(&mut self, job: &Job, ended: Ended) -> Outcome {
        match ended {
            Ended::Complete => {
                let elapsed_ms = job.accepted_at.elapsed().as_millis() as u64;
                let Some(encoder) = self.encoder.as_mut() else {
                    return self
                        .finish_failed(job, GatewayError::internal("no encoder at the end"));
                };
                if let Some(failure) = encoder.failure() {
                    // Rows were lost on the way: the result must not end as complete.
                    return self.finish_failed(job, GatewayError::QueryFailed(failure));
                }
                let frame = Frame {
                    bytes: encoder.end(elapsed_ms),
                    rows: 0,
                    kind: FrameKind::End,
                };
                match self.send(job, frame) {
                    Ok(()) => Outcome::Ok,
                    Err(Ended::Gone) => self.gone(job),
                    // Cancelled while handing over the very last line.
                    Err(_) => self.finish_failed(job, cancelled_error(&job.control)),
                }
            }
            // The response already started (SSE): the refusal becomes the final line.
            Ended::Rejected(e) if self.started.is_none() => self.finish_failed(job, e),
            Ended::Rejected(e) => {
                log_error(&e);
                let outcome = outcome_of(&e);
                job.metrics.errors.with_label_values(&[e.code()]).inc();
                if let Some(started) = self.started.take() {
                    let _ = started.send(Err(e));
                }
                outcome
            }
            Ended::Failed(e) => self.finish_failed(job, e),
            Ended::Gone => self.gone(job),
        }
    }

    fn finish_failed(&mut self, job: &Job, e: GatewayError) -> Outcome {
        log_error(&e);
        job.metrics.errors.with_label_values(&[e.code()]).inc();
        let outcome = outcome_of(&e);
        let (query_id, message) = (&job.spec.query_id, e.client_message());
        // The format's own failure path; before the header there is no encoder yet.
        let error = match self.encoder.as_mut() {
            Some(encoder) => encoder.fail(query_id, e.code(), &message),
            None => encode::error_frame(job.spec.format, query_id, e.code(), &message),
        };
        let mut frame = Frame {
            bytes: error.bytes,
            rows: 0,
            kind: FrameKind::Error(error.place),
        };
        // The reader may be stalled (that may be why it timed out): wait a bounded time.
        let deadline = Instant::now() + FINAL_LINE_WAIT;
        loop {
            match job.frames.try_send(frame) {
                Ok(()) => return outcome,
                Err(mpsc::error::TrySendError::Closed(_)) => return Outcome::Disconnected,
                Err(mpsc::error::TrySendError::Full(f)) if Instant::now() < deadline => {
                    frame = f;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return outcome,
            }
        }
    }
}

fn cancelled_error(control: &QueryControl) -> GatewayError {
    match control.reason() {
        Some(CancelReason::Timeout) => GatewayError::Timeout,
        Some(CancelReason::Shutdown) => GatewayError::ShuttingDown,
        Some(CancelReason::TenantDeleted) => GatewayError::TenantDeleted,
        _ => GatewayError::Cancelled,
    }
}

fn outcome_of(e: &GatewayError) -> Outcome {
    match e {
        GatewayError::Cancelled | GatewayError::ShuttingDown | GatewayError::TenantDeleted => {
            Outcome::Cancelled
        }
        GatewayError::Timeout => Outcome::Timeout,
        _ => Outcome::Error,
    }
}

fn log_error(e: &GatewayError) {
    if e.is_server_fault() {
        tracing::error!(code = e.code(), error = %e.log_chain(), "query failed");
    } else {
        tracing::debug!(code = e.code(), error = %e.log_chain(), "query refused or stopped");
    }
}

/// The first `progress` line comes this long after the query starts...
const PROGRESS_FIRST: Duration = Duration::from_millis(500);
/// ...and the next ones at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Reads DuckDB's progress of a running query from a thread of its own (the executor thread
/// is inside DuckDB while an operator works) and sends `progress` lines into the query's
/// channel: never blocking (a full channel skips one), never going backwards, and never after
/// [`Sampler::stop`], which the executor calls before the final line.
struct Sampler {
    open: Arc<std::sync::Mutex<Option<mpsc::Sender<Frame>>>>,
}

impl Sampler {
    fn spawn(job: &Job) -> Option<Self> {
        let open = Arc::new(std::sync::Mutex::new(Some(job.frames.clone())));
        let (control, query_id) = (Arc::clone(&job.control), Arc::clone(&job.spec.query_id));
        let lines = Arc::clone(&open);
        let spawned = std::thread::Builder::new()
            .name("query-progress".into())
            .spawn(move || {
                std::thread::sleep(PROGRESS_FIRST);
                let (mut rows, mut percentage) = (0u64, None::<f64>);
                loop {
                    {
                        let guard = lines.lock().unwrap_or_else(|p| p.into_inner());
                        let Some(tx) = guard.as_ref() else { return };
                        if let Some(p) = control.progress() {
                            rows = rows.max(p.rows_processed);
                            percentage = match (percentage, p.percentage) {
                                (Some(a), Some(b)) => Some(a.max(b)),
                                (a, b) => a.or(b),
                            };
                            let line = crate::wire::lines::progress_line(
                                &query_id,
                                rows,
                                p.total_rows,
                                percentage,
                            );
                            let _ = tx.try_send(Frame {
                                bytes: line,
                                rows: 0,
                                kind: FrameKind::Note,
                            });
                        }
                    }
                    std::thread::sleep(PROGRESS_EVERY);
                }
            });
        spawned.ok().map(|_| Self { open })
    }

    fn stop(self) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Detaches the interrupt handle when dropped.
struct Detach<'a>(&'a QueryControl);

impl Drop for Detach<'_> {
    fn drop(&mut self) {
        self.0.detach();
    }
}
