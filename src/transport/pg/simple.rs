//! The simple query protocol (`Query`): one string, possibly several statements (Grafana sends
//! `SET TIMEZONE TO 'UTC'; SELECT …`), each answered in turn, then `ReadyForQuery`.
//!
//! Invariants:
//! - Statements run one after the other; the first that fails ends the string (the rest is
//!   not run), as in PostgreSQL.
//! - Inside a failed transaction block only `ROLLBACK`/`COMMIT` are taken (25P02 otherwise).
//! - A query's rows leave as DuckDB produces them ([`super::rows`]); the session's
//!   `statement_timeout` tightens the tenant's query timeout, never loosens it.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::sink::{Sink, SinkExt};
use pgwire::api::query::{send_ready_for_query, SimpleQueryHandler};
use pgwire::api::results::Response;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;

use super::connection::Connection;
use super::portals::Cursor;
use super::rows::{send_messages, Ended, Result as Rows, Turn};
use super::session::version_string;
use super::statement::{classify, CopyFormat, CopyOut, Statement};
use crate::encode::pg::error_frame;
use crate::engine::{CancelReason, Lookup, QuerySpec, Variant};
use crate::error::GatewayError;
use crate::metrics::Transport;
use crate::wire::mosaic::split_statements;
use crate::wire::pg_catalog::{self, RewriteError};
use crate::wire::{Format, PgColumns, QueryRequest, TableSet};

/// How long a cancelled start may take to end by itself.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut status = client.transaction_status();
        let statements: Vec<Statement<'_>> = split_statements(&query.query)
            .into_iter()
            .map(classify)
            .filter(|s| *s != Statement::Empty)
            .collect();
        if statements.is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    EmptyQueryResponse::new(),
                ))
                .await?;
        }
        for statement in statements {
            let answered = self.answer(client, statement, &mut status, true, PgColumns::Text);
            if answered.await? == Ended::Failed {
                status = status.to_error_state();
                break;
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        send_ready_for_query(client, status).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_query` answers every statement itself.
        Ok(Vec::new())
    }
}

impl Connection {
    /// Answers one statement; `status` is the transaction status, moved by `BEGIN` and its
    /// ends. `describe`: rows come with their `RowDescription` (the simple protocol);
    /// `formats`: the columns' formats a `Bind` asked (a cursor's `FETCH` honours them).
    pub(super) async fn answer<C>(
        &self,
        client: &mut C,
        statement: Statement<'_>,
        status: &mut TransactionStatus,
        describe: bool,
        formats: PgColumns,
    ) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let aborted = *status == TransactionStatus::Error;
        let tag = |t: &str| Some(t.to_string());
        let done = match statement {
            Statement::Commit | Statement::Rollback if aborted => {
                *status = TransactionStatus::Idle;
                tag("ROLLBACK")
            }
            _ if aborted => return fail(
                client,
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            )
            .await,
            Statement::Empty => None,
            Statement::Begin => {
                *status = TransactionStatus::Transaction;
                tag("BEGIN")
            }
            Statement::Commit => {
                *status = TransactionStatus::Idle;
                self.cursors().clear();
                tag("COMMIT")
            }
            Statement::Rollback => {
                *status = TransactionStatus::Idle;
                self.cursors().clear();
                tag("ROLLBACK")
            }
            Statement::Declare {
                name,
                binary,
                query,
            } => return self.declare(client, name, binary, query).await,
            Statement::Fetch { name, count } => {
                return self.fetch(client, &name, count, describe, formats).await
            }
            Statement::CloseCursor(None) => {
                self.cursors().clear();
                tag("CLOSE CURSOR")
            }
            Statement::CloseCursor(Some(name)) => {
                let closed = self.cursors().remove(&name).is_some();
                if !closed {
                    return fail(client, "34000", &no_cursor(&name)).await;
                }
                tag("CLOSE CURSOR")
            }
            Statement::Tag(t) => tag(t),
            Statement::Set { name, value } => {
                let set = self.session()?.set(&name, value.as_deref());
                match set {
                    Ok(()) => tag("SET"),
                    Err(r) => return fail(client, r.sqlstate, &r.message).await,
                }
            }
            Statement::Reset(name) => {
                let reset = self.session()?.reset(name.as_deref());
                match reset {
                    Ok(()) => tag("RESET"),
                    Err(r) => return fail(client, r.sqlstate, &r.message).await,
                }
            }
            Statement::Show(name) => return self.show(client, &name, describe).await,
            Statement::Version => {
                let rows = vec![vec![version_string()]];
                return send_table(client, &["version"], rows, "SELECT 1", describe).await;
            }
            Statement::Refused(code, message) => return fail(client, code, &message).await,
            Statement::Query(sql) => return self.query(client, sql).await,
            Statement::CopyOut(copy) => return self.copy_out(client, &copy).await,
        };
        if let Some(tag) = done {
            client
                .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                    tag,
                )))
                .await?;
        }
        Ok(Ended::Complete)
    }

    /// `SHOW name` or `SHOW ALL`.
    async fn show<C>(&self, client: &mut C, name: &str, describe: bool) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let shown = {
            let session = self.session()?;
            if name == "all" {
                Ok(session
                    .all()
                    .into_iter()
                    .map(|(k, v)| vec![k.to_string(), v, String::new()])
                    .collect())
            } else if name == "session_authorization" {
                Ok(vec![vec![session.access.user.clone().unwrap_or_default()]])
            } else {
                session.show(name).map(|v| vec![vec![v]])
            }
        };
        match shown {
            Ok(rows) if name == "all" => {
                let columns = ["name", "setting", "description"];
                send_table(client, &columns, rows, "SHOW", describe).await
            }
            Ok(rows) => send_table(client, &[name], rows, "SHOW", describe).await,
            Err(r) => fail(client, r.sqlstate, &r.message).await,
        }
    }

    /// `DECLARE name CURSOR FOR query`: the query starts at the first `FETCH` (or `Describe`)
    /// of the cursor, in the formats that asks.
    async fn declare<C>(
        &self,
        client: &mut C,
        name: String,
        binary: bool,
        query: &str,
    ) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let cursor = Cursor {
            query: query.to_string(),
            binary,
            open: None,
            fetched: false,
        };
        self.cursors().insert(name, cursor);
        client
            .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                "DECLARE CURSOR".into(),
            )))
            .await?;
        Ok(Ended::Complete)
    }

    /// `FETCH count FROM name`, its rows in `formats` (a `BINARY` cursor's always binary).
    async fn fetch<C>(
        &self,
        client: &mut C,
        name: &str,
        count: Option<u64>,
        describe: bool,
        formats: PgColumns,
    ) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut cursor = match self.open_cursor(name, Some(formats)).await {
            Ok(Some(cursor)) => cursor,
            Ok(None) => return fail(client, "34000", &no_cursor(name)).await,
            Err(e) => return self.refuse(client, e).await,
        };
        let Some((rows, _)) = cursor.open.as_mut() else {
            return fail(client, "34000", &no_cursor(name)).await;
        };
        self.running.set(rows.cancel_token());
        let ended = rows.send(client, describe, Turn::Fetch(count)).await;
        self.running.end();
        cursor.fetched = true;
        if matches!(ended, Ok(Ended::Complete)) {
            self.cursors().insert(name.to_string(), cursor);
        }
        ended
    }

    /// The cursor `name`, taken out, with its result running in `formats` (`None`: those it
    /// runs in, else its default); a result not fetched yet starts again in other formats.
    pub(super) async fn open_cursor(
        &self,
        name: &str,
        formats: Option<PgColumns>,
    ) -> Result<Option<Cursor>, GatewayError> {
        let Some(mut cursor) = self.cursors().remove(name) else {
            return Ok(None);
        };
        let current = cursor.open.as_ref().map(|(_, f)| *f);
        let wanted = match (cursor.binary, formats.or(current)) {
            (true, _) => PgColumns::Binary,
            (false, f) => f.unwrap_or_default(),
        };
        if current.is_some_and(|f| f != wanted) && !cursor.fetched {
            cursor.open = None;
        }
        if cursor.open.is_none() {
            let rows = self.start_rows(&cursor.query, wanted).await?;
            cursor.open = Some((rows, wanted));
        }
        Ok(Some(cursor))
    }

    /// Starts `sql` on the engine; a `CancelRequest` reaches it while it starts.
    pub(super) async fn start_rows(
        &self,
        sql: &str,
        formats: PgColumns,
    ) -> Result<Rows, GatewayError> {
        let spec = self.spec(sql, formats)?;
        self.start_spec(spec).await
    }

    /// Starts `spec` under a token a `CancelRequest` fires: the engine then stops the query
    /// as cancelled by its client (`57014`), whether it waits for a slot or runs.
    /// A current result of the same query is sent from the result cache instead.
    pub(super) async fn start_spec(&self, spec: QuerySpec) -> Result<Rows, GatewayError> {
        let engine = &self.shared.engine;
        let ticket = match engine.cached(&spec, Variant::Pg).await? {
            Lookup::Hit { result, .. } => return Ok(Rows::cached(&result, &self.shared.metrics)),
            Lookup::Miss(ticket) => Some(ticket),
            Lookup::Bypass => None,
        };
        let cancel = self.running.begin();
        let start =
            engine.start_recorded(spec.parent(cancel.clone(), CancelReason::Client), ticket);
        tokio::pin!(start);
        let started = tokio::select! {
            biased;
            r = &mut start => r,
            _ = cancel.cancelled() => {
                // A running query ends with its own `cancelled` soon; one still waiting for a
                // slot is dropped from the queue.
                tokio::time::timeout(CANCEL_GRACE, start)
                    .await
                    .unwrap_or(Err(GatewayError::Cancelled))
            }
        };
        self.running.end();
        let (running, recording) = started?;
        Ok(Rows::new(
            running,
            cancel,
            recording.recorder,
            &self.shared.metrics,
        ))
    }

    /// `COPY (query) TO STDOUT`: the query's rows as COPY data (binary COPY reads the
    /// columns' binary forms).
    async fn copy_out<C>(&self, client: &mut C, copy: &CopyOut) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let formats = match copy.format {
            CopyFormat::Binary => PgColumns::Binary,
            _ => PgColumns::Text,
        };
        let mut rows = match self.start_rows(&copy.query, formats).await {
            Ok(rows) => rows,
            Err(e) => return self.refuse(client, e).await,
        };
        self.running.set(rows.cancel_token());
        let ended = rows.copy_out(client, copy).await;
        self.running.end();
        ended
    }

    /// Runs `sql` on the engine and relays its result.
    async fn query<C>(&self, client: &mut C, sql: &str) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut rows = match self.start_rows(sql, PgColumns::Text).await {
            Ok(rows) => rows,
            Err(e) => return self.refuse(client, e).await,
        };
        self.running.set(rows.cancel_token());
        let ended = rows.send(client, true, Turn::Portal(0)).await;
        self.running.end();
        ended
    }

    /// The engine's spec of `sql` for this session, its rows in `formats`.
    pub(super) fn spec(&self, sql: &str, formats: PgColumns) -> Result<QuerySpec, GatewayError> {
        let session = self.session().map_err(|_| {
            GatewayError::Unauthenticated("the connection has not logged in".into())
        })?;
        let access = &session.access;
        access.check_fresh()?;
        let request = QueryRequest {
            sql: catalog_sql(sql, access.tables.as_deref())?,
            params: Vec::new(),
            chunk_rows: None,
            geometry: session.geometry(),
            progress: false,
            format: None,
        };
        Ok(
            QuerySpec::new(access.tenant.clone(), request, Transport::Pg)
                .tables(access.tables.clone())
                .format(Format::Pg(formats))
                .timeout(session.statement_timeout()),
        )
    }

    /// Sends `e` as an `ErrorResponse` (logged when it is the server's fault).
    pub(super) async fn refuse<C>(&self, client: &mut C, e: GatewayError) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if e.is_server_fault() {
            tracing::error!(error = ?e, code = e.code(), "pg query failed");
        }
        let frame = error_frame(e.code(), &e.client_message());
        send_messages(client, frame.bytes).await?;
        Ok(Ended::Failed)
    }
}

/// `sql` as DuckDB answers it: a client's reads of PostgreSQL's catalogs go to the gateway's
/// (`ds_pg`, scoped to the token's tables: [`pg_catalog::rewrite`]). A text that names `ds_pg`
/// itself is refused; one the rewrite cannot read goes to DuckDB as it is, to be refused there
/// with DuckDB's own syntax error.
fn catalog_sql(sql: &str, tables: Option<&TableSet>) -> Result<String, GatewayError> {
    if !pg_catalog::needs_rewrite(sql) {
        return Ok(sql.to_string());
    }
    let scope = tables.map_or_else(|| "NULL".to_string(), TableSet::scope_literal);
    match pg_catalog::rewrite(sql, &scope) {
        Ok(rewritten) => Ok(rewritten),
        Err(RewriteError::Unreadable) => Ok(sql.to_string()),
        Err(RewriteError::NamesOurCatalog) => Err(GatewayError::Forbidden(format!(
            "\"{}\" is the gateway's own catalog and cannot be named",
            pg_catalog::CATALOG
        ))),
    }
}

fn no_cursor(name: &str) -> String {
    format!("cursor \"{name}\" does not exist")
}

/// Sends an `ErrorResponse`; the statement failed.
async fn fail<C>(client: &mut C, sqlstate: &str, message: &str) -> PgWireResult<Ended>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let info = ErrorInfo::new("ERROR".into(), sqlstate.into(), message.into());
    client
        .feed(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    Ok(Ended::Failed)
}

/// A small result of text columns, answered by the endpoint itself.
async fn send_table<C>(
    client: &mut C,
    columns: &[&str],
    rows: Vec<Vec<String>>,
    tag: &str,
    describe: bool,
) -> PgWireResult<Ended>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if describe {
        let fields = columns
            .iter()
            .map(|name| FieldDescription::new(name.to_string(), 0, 0, 25, -1, -1, 0))
            .collect();
        client
            .feed(PgWireBackendMessage::RowDescription(RowDescription::new(
                fields,
            )))
            .await?;
    }
    for row in rows {
        let mut data = BytesMut::new();
        for value in &row {
            data.extend_from_slice(&(value.len() as i32).to_be_bytes());
            data.extend_from_slice(value.as_bytes());
        }
        client
            .feed(PgWireBackendMessage::DataRow(DataRow::new(
                data,
                row.len() as i16,
            )))
            .await?;
    }
    client
        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
            tag.to_string(),
        )))
        .await?;
    Ok(Ended::Complete)
}
