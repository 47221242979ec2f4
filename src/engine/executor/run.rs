//! A run's steps, from the tenant's pooled connection to the first chunk: the guards, the
//! checks, prepare and bind, the stamp, a derive, the start, DuckDB's execution, the encoder;
//! then the stream ([`super::stream`]).
//!
//! Invariants:
//! - The interrupt handle is attached before anything can block in DuckDB and detached before
//!   the connection returns to the pool; the read-only transaction spans every statement of the
//!   client's ([`super::guard`]).
//! - `started` is answered exactly once: `Err` before any frame was produced, `Ok` at the spec's
//!   [`Start`] point. After `Ok`, the format's header is the first frame.
//! - A failure before the response started is a refusal (a status); after, a final line.
//! - A cancel is looked for after the statements before DuckDB starts: DuckDB forgets an
//!   interrupt when its next statement starts.

use super::checks::{self, Asked};
use super::derive::derive;
use super::errors::{cancelled, rejected, stopped, Ended};
use super::guard::{Detach, ReadOnly};
use super::progress::Sampler;
use super::stamp::stamp;
use super::stream::Running;
use super::Job;
use crate::duck::{Connection, DataChunk, DuckError, Prepared, Streaming};
use crate::encode::{self, ResultEncoder};
use crate::engine::scratch;
use crate::engine::tables::Refusal;
use crate::engine::tenant::Tenant;
use crate::engine::{Frame, FrameKind, Start};
use crate::error::GatewayError;

impl Running {
    /// Runs the job on one of its tenant's connections, inside the guards.
    pub fn execute(&mut self, job: &Job) -> Ended {
        let conn = match job.tenant.connection() {
            Ok(c) => c,
            Err(e) => return Ended::Rejected(e),
        };
        // Derived tables of older data go before any query can read them.
        if let Err(e) = scratch::refresh(&conn, job.tenant.as_ref()) {
            return Ended::Rejected(GatewayError::internal(e));
        }
        scratch::rederive(&conn, job.tenant.as_ref(), &job.request().sql);
        // Before the read-only transaction: loading is DDL on an in-memory catalog.
        if let Err(e) = job.tenant.load_pg_catalog(&conn, &job.request().sql) {
            return Ended::Rejected(e);
        }
        // Declared before every statement and result, so dropped after them: the rollback
        // ends the transaction once DuckDB is done with the connection, and after `_detach`,
        // so that no late interrupt can stop the rollback itself.
        let _read_only = match begin_reading(&conn, &job.tenant) {
            Ok((t, version)) => {
                self.read_version = version;
                t
            }
            Err(e) => return Ended::Rejected(e),
        };
        // Statements kept prepared on the connection are planned again after a write: a kept
        // plan can answer the data as it was (`Connection::plan_at`). (A write committed but
        // not yet published reaches the next query: this one's stamp is older than the
        // table's, so nothing keeps its result.)
        conn.plan_at(
            self.read_version
                .unwrap_or_else(|| job.tenant.data_version()),
        );
        if !job.control.attach(conn.interrupt_handle()) {
            return rejected(cancelled(&job.control));
        }
        // Detach before `conn` drops back into the pool (drop order is reverse declaration).
        let _detach = Detach(&job.control);
        self.run(job, &conn)
    }

    /// From the checks to the last chunk, on a connection inside its read-only transaction.
    fn run(&mut self, job: &Job, conn: &Connection) -> Ended {
        let mut stmt = match self.prepare(job, conn) {
            Ok(s) => s,
            Err(end) => return end,
        };
        if let Err(end) = self.start_early(job) {
            return end;
        }
        // DuckDB forgets an interrupt when its next statement starts, and the query is
        // interrupted once: a cancel that came while the statements above ran is seen here.
        if let Some(end) = stopped(&job.control) {
            return self.unstarted(end);
        }
        job.metrics.executions.inc();
        let mut result = match stmt.execute_streaming() {
            Ok(r) => r,
            Err(e) => return self.reject_execution(e, job),
        };
        // A cancel between the check above and DuckDB starting was forgotten by DuckDB.
        if let Some(end) = stopped(&job.control) {
            return self.unstarted(end);
        }
        let encoder = match encoder_for(job, &mut result) {
            Ok(e) => e,
            Err(e) => return Ended::Rejected(e),
        };
        let chunk = match result.next_chunk() {
            Ok(c) => c,
            Err(e) => return self.reject_execution(e, job),
        };
        self.start_stream(job, encoder, chunk, &mut result)
    }

    /// The statement to run: checked, prepared (kept prepared on the connection), of a kind
    /// that may run, and bound; the stamp taken when the spec wants it; for a derive, the
    /// count of the table it made instead.
    fn prepare<'c>(&mut self, job: &Job, conn: &'c Connection) -> Result<Prepared<'c>, Ended> {
        let asked = vet(job, conn)?;
        let sql = &job.request().sql;
        // Kept prepared on the connection: a dashboard's repeated query skips DuckDB's parser,
        // binder and planner (DuckDB re-binds it after a change to what it reads).
        let mut stmt = match conn.prepare_cached(sql) {
            Ok(s) => s,
            // DuckDB's messages name tables and columns: a table-limited token gets none.
            Err(_) if job.tables().is_some() => {
                let message = Refusal::Invalid.message().into();
                return Err(Ended::Rejected(GatewayError::InvalidSql(message)));
            }
            Err(e) => return Err(Ended::Rejected(job.failures().sql_error(e))),
        };
        checks::check_kind(stmt.kind(), sql).map_err(Ended::Rejected)?;
        checks::bind_params(&mut stmt, job.request()).map_err(Ended::Rejected)?;
        if job.spec.stamp {
            let request = job.request();
            let version = self.read_version.unwrap_or(job.data_version);
            self.stamp = Some(stamp(conn, &job.tenant, request, version, asked));
        }
        // The checked SELECT becomes a derived table; the stream is its row count.
        if let Some(name) = &job.spec.derive {
            drop(stmt);
            stmt = derive(conn, &job.tenant, job.request(), &job.failures(), name)
                .map_err(rejected)?;
        }
        Ok(stmt)
    }

    /// A caller that keeps the line alive while DuckDB works starts its response once the
    /// statement is prepared and bound; the others wait for the first chunk, so that more
    /// errors still get a status. Progress lines can only reach a client whose response has
    /// started.
    fn start_early(&mut self, job: &Job) -> Result<(), Ended> {
        if job.spec.start == Start::Bound || job.request().progress {
            if let Some(started) = self.started.take() {
                if started.send(Ok(self.stamp.clone())).is_err() {
                    return Err(Ended::Gone);
                }
            }
        }
        // DuckDB runs a blocking operator (an aggregate, a sort) to its end inside the next
        // call: the progress thread starts before it.
        if job.request().progress {
            self.progress = Sampler::spawn(&job.frames, &job.control, &job.spec.query_id);
        }
        Ok(())
    }

    /// DuckDB produced its first chunk: the stream starts (`started`, then the format's
    /// header), and every chunk is sent. The encoder is kept for the final line.
    fn start_stream(
        &mut self,
        job: &Job,
        mut encoder: Box<dyn ResultEncoder>,
        chunk: Option<DataChunk>,
        result: &mut Streaming<'_>,
    ) -> Ended {
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
        let ended = self.stream(job, &mut *encoder, chunk, result);
        self.encoder = Some(encoder);
        ended
    }

    /// An execution error before the first line: answerable with a status unless the
    /// response already started (SSE).
    fn reject_execution(&mut self, e: DuckError, job: &Job) -> Ended {
        self.unstarted(job.failures().execution_error(e))
    }

    /// A failure before the first line is a refusal (a status) while the response has not
    /// started.
    fn unstarted(&self, end: Ended) -> Ended {
        match end {
            Ended::Failed(e) if self.started.is_some() => Ended::Rejected(e),
            other => other,
        }
    }
}

/// The checks before DuckDB binds the statement ([`checks::check`]): a text this tenant
/// already vetted at this data version skips those every client gets, never a table-limited
/// token's own.
fn vet(job: &Job, conn: &Connection) -> Result<Asked, Ended> {
    let sql = &job.request().sql;
    let vetted = job.tenant.is_vetted(sql, job.data_version);
    if vetted && job.tables().is_none() {
        return Ok(Asked::default());
    }
    let allowlist = (!vetted).then_some(|| job.tenant.allowlist(conn));
    let asked = checks::check(conn, &job.statement(), allowlist).map_err(rejected)?;
    job.tenant.remember_vetted(sql, job.data_version);
    Ok(asked)
}

/// The format's encoder for the executed result (column types come from it: parameter types
/// are resolved there).
fn encoder_for(
    job: &Job,
    result: &mut Streaming<'_>,
) -> Result<Box<dyn ResultEncoder>, GatewayError> {
    let columns: Vec<_> = (0..result.column_count())
        .map(|i| (result.column_name(i), result.column_type(i)))
        .collect();
    let spec = &job.spec;
    let options = encode::Options {
        geometry: spec.request.geometry,
    };
    encode::encoder(
        spec.format,
        &columns,
        &spec.query_id,
        job.sizes,
        job.limits,
        options,
        &mut || result.arrow_options(),
    )
    .map_err(Into::into)
}

/// Begins the query's read-only transaction and reads, first, the snapshot it reads (a
/// lake's). A catalog connection can die between the pool's check and its first statement:
/// one more try, before anything ran, gets another.
fn begin_reading<'c>(
    conn: &'c Connection,
    tenant: &Tenant,
) -> Result<(ReadOnly<'c>, Option<u64>), GatewayError> {
    let mut retried = false;
    loop {
        let guard = ReadOnly::begin(conn).map_err(GatewayError::internal)?;
        match tenant.read_version(conn) {
            Ok(version) => return Ok((guard, version)),
            Err(GatewayError::StorageUnavailable(_)) if !retried => retried = true,
            Err(e) => return Err(e),
        }
    }
}
