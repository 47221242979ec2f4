//! The extended query protocol: `Parse` (a statement, possibly with `$n` parameters), `Bind`
//! (its parameter values, text or binary, and each result column's format), `Describe`,
//! `Execute` (all rows, or a number at a time: the portal is then suspended), `Close`,
//! `Sync`. Drivers use it for every parameterised query (psycopg, node-postgres, JDBC) or for
//! everything (asyncpg).
//!
//! Invariants:
//! - `Describe` of a statement runs nothing: the engine prepares the query after a query's
//!   checks and answers its parameters' and columns' types (`Engine::describe`), the ones its
//!   portals' `RowDescription` will carry (one encoder makes both).
//! - A portal's query starts at its first `Describe` or `Execute` and streams: a suspended
//!   portal holds its query (one executor thread, bounded frames), never a buffered result.
//! - Portals die at `Sync` outside a transaction block, at `COMMIT`/`ROLLBACK`, at `Close`
//!   and with the connection; their queries are cancelled then.
//! - After an error, messages are skipped until `Sync` (pgwire's state), as in PostgreSQL.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::sink::{Sink, SinkExt};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, Response,
};
use pgwire::api::stmt::{NoopQueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireConnectionState, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::{FieldDescription, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Close, CloseComplete, Describe, Execute, Parse, ParseComplete,
    Sync as PgSync, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::{DecodeContext, PgWireBackendMessage};

use super::connection::Connection;
use super::params;
use super::portals::{Portal, Prepared};
use super::rows::{Ended, Turn};
use super::statement::{classify, Statement};
use crate::engine::CancelReason;
use crate::wire::PgColumns;

fn name(n: &Option<String>) -> String {
    n.clone().unwrap_or_else(|| DEFAULT_NAME.to_string())
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = String;
    type QueryParser = NoopQueryParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(NoopQueryParser)
    }

    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = Prepared {
            sql: message.query,
            param_oids: message.type_oids,
        };
        self.extended()
            .statements
            .insert(name(&message.name), Arc::new(prepared));
        client
            .send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = name(&message.statement_name);
        let statement = self
            .extended()
            .statements
            .get(&statement_name)
            .cloned()
            .ok_or_else(|| {
                user_error(
                    "26000",
                    format!("prepared statement \"{statement_name}\" does not exist"),
                )
            })?;
        let params = params::decode(&message, &statement.param_oids)?;
        let formats = PgColumns::from_codes(&message.result_column_format_codes)
            .ok_or_else(|| user_error("0A000", "unsupported result format codes".into()))?;
        let portal = Portal {
            statement,
            params,
            formats,
            rows: None,
            done: false,
        };
        // A portal replaced by another of the same name ends (its query is cancelled).
        self.extended()
            .portals
            .insert(name(&message.portal_name), portal);
        client
            .send(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let target = name(&message.name);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => self.describe_statement(client, &target).await,
            TARGET_TYPE_BYTE_PORTAL => self.describe_portal(client, &target).await,
            other => Err(PgWireError::InvalidTargetType(other)),
        }
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let target = name(&message.name);
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let mut status = client.transaction_status();
        let ended = self.execute(client, &target, max_rows, &mut status).await?;
        if ended == Ended::Failed {
            status = status.to_error_state();
            client.set_state(PgWireConnectionState::AwaitingSync);
        }
        if status == TransactionStatus::Idle
            && client.transaction_status() != TransactionStatus::Idle
        {
            // COMMIT or ROLLBACK ended the block: its portals end with it.
            self.extended().portals.clear();
        }
        client.set_transaction_status(status);
        Ok(())
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = client.transaction_status();
        {
            let mut extended = self.extended();
            if status == TransactionStatus::Idle {
                extended.portals.clear();
            } else {
                extended.portals.remove(DEFAULT_NAME);
            }
        }
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }

    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let target = name(&message.name);
        {
            let mut extended = self.extended();
            match message.target_type {
                TARGET_TYPE_BYTE_STATEMENT => extended.statements.remove(&target).map(|_| ()),
                _ => extended.portals.remove(&target).map(|_| ()),
            };
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
        Ok(())
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        _target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_describe` answers every Describe itself.
        Ok(DescribeStatementResponse::no_data())
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        _target: &pgwire::api::portal::Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(DescribePortalResponse::no_data())
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        _portal: &pgwire::api::portal::Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // `on_execute` runs every portal itself.
        Ok(Response::EmptyQuery)
    }
}

impl Connection {
    /// `Describe` of a statement: its parameters' types and its columns, as the engine
    /// prepared it without running it (a query), or as the endpoint answers it (a local
    /// statement: the client's parameter types, else text). A parameter's type is the
    /// client's when it gave one, else DuckDB's, else text; the statement keeps those types,
    /// so that `Bind` reads binary values by them.
    async fn describe_statement<C>(&self, client: &mut C, target: &str) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = self
            .extended()
            .statements
            .get(target)
            .cloned()
            .ok_or_else(|| {
                user_error(
                    "26000",
                    format!("prepared statement \"{target}\" does not exist"),
                )
            })?;
        let count = params::count(&statement.sql).max(statement.param_oids.len());
        let (types, columns) = match classify(&statement.sql) {
            Statement::Query(sql) => {
                let mut oids = statement.param_oids.clone();
                oids.resize(oids.len().max(count), 0);
                params::declared_oids(sql, &mut oids);
                let (types, columns) = self.describe_query(sql, &oids).await?;
                self.keep_types(target, &statement, &types);
                (types, columns)
            }
            Statement::Fetch { name, .. } => (
                parameter_types(&statement.param_oids, &[], count),
                self.cursor_columns(&name, None).await?,
            ),
            local => (
                parameter_types(&statement.param_oids, &[], count),
                local_columns(&local),
            ),
        };
        client
            .feed(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(types),
            ))
            .await?;
        send_description(client, columns).await
    }

    /// A query's parameter types and columns, from the engine (the client's parameter types
    /// are its hints); a `CancelRequest` meanwhile cancels it.
    async fn describe_query(
        &self,
        sql: &str,
        client_oids: &[u32],
    ) -> PgWireResult<(Vec<u32>, Option<RowDescription>)> {
        let mut spec = self.spec(sql, PgColumns::Text).map_err(gateway_error)?;
        spec.request.params = client_oids.iter().map(|&oid| params::hint(oid)).collect();
        let cancel = self.running.begin();
        let described = self
            .shared
            .engine
            .describe(spec.parent(cancel, CancelReason::Client))
            .await;
        self.running.end();
        let described = described.map_err(|e| {
            if e.is_server_fault() {
                tracing::error!(error = ?e, code = e.code(), "pg describe failed");
            }
            gateway_error(e)
        })?;
        let count = params::count(sql)
            .max(client_oids.len())
            .max(described.params.len());
        let types = parameter_types(client_oids, &described.params, count);
        let mut header = BytesMut::from(&described.header[..]);
        let columns = match PgWireBackendMessage::decode(&mut header, &DecodeContext::default())? {
            Some(PgWireBackendMessage::RowDescription(d)) if !d.fields.is_empty() => Some(d),
            _ => None,
        };
        Ok((types, columns))
    }

    /// The statement `target` (still `statement`) reads its parameters as `types` from now on.
    fn keep_types(&self, target: &str, statement: &Arc<Prepared>, types: &[u32]) {
        let mut extended = self.extended();
        if let Some(kept) = extended.statements.get_mut(target) {
            if Arc::ptr_eq(kept, statement) {
                *kept = Arc::new(Prepared {
                    sql: statement.sql.clone(),
                    param_oids: types.to_vec(),
                });
            }
        }
    }

    /// `Describe` of a portal: starts its query to learn its columns.
    async fn describe_portal<C>(&self, client: &mut C, target: &str) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !self.extended().portals.contains_key(target) && self.cursors().contains_key(target) {
            // A cursor is a portal too (psycopg describes its server-side cursor by name).
            let described = self.cursor_columns(target, None).await?;
            return send_description(client, described).await;
        }
        let mut portal = self.take_portal(target)?;
        let statement = Arc::clone(&portal.statement);
        let described = match classify(&statement.sql) {
            Statement::Query(sql) => {
                self.start(&mut portal, sql).await?;
                match portal.rows.as_mut() {
                    Some(rows) => rows.description().await?,
                    None => None,
                }
            }
            Statement::Fetch { name, .. } => {
                self.cursor_columns(&name, Some(portal.formats)).await?
            }
            local => local_columns(&local),
        };
        self.extended().portals.insert(target.to_string(), portal);
        send_description(client, described).await
    }

    /// `Execute`: runs (or resumes) the portal, sending up to `max_rows` rows.
    async fn execute<C>(
        &self,
        client: &mut C,
        target: &str,
        max_rows: usize,
        status: &mut TransactionStatus,
    ) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut portal = self.take_portal(target)?;
        if portal.done {
            let formats = portal.formats;
            self.extended().portals.insert(target.to_string(), portal);
            return self
                .answer_silently(client, Statement::Empty, status, formats)
                .await;
        }
        let statement = Arc::clone(&portal.statement);
        let ended = match classify(&statement.sql) {
            Statement::Query(sql) => {
                self.start(&mut portal, sql).await?;
                match portal.rows.as_mut() {
                    Some(rows) => {
                        self.running.set(rows.cancel_token());
                        rows.send(client, false, Turn::Portal(max_rows)).await?
                    }
                    None => Ended::Failed,
                }
            }
            local => {
                self.answer_silently(client, local, status, portal.formats)
                    .await?
            }
        };
        portal.done = ended != Ended::Suspended;
        if portal.done {
            portal.rows = None;
            self.running.end();
        }
        self.extended().portals.insert(target.to_string(), portal);
        Ok(ended)
    }

    /// A statement answered by the endpoint, without a `RowDescription` (the extended
    /// protocol sends it for `Describe` only).
    async fn answer_silently<C>(
        &self,
        client: &mut C,
        statement: Statement<'_>,
        status: &mut TransactionStatus,
        formats: PgColumns,
    ) -> PgWireResult<Ended>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if statement == Statement::Empty {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(
                    pgwire::messages::response::EmptyQueryResponse::new(),
                ))
                .await?;
            return Ok(Ended::Complete);
        }
        self.answer(client, statement, status, false, formats).await
    }

    /// Starts the portal's query, unless it runs already; an error before its first row is
    /// sent by the caller's error path.
    async fn start(&self, portal: &mut Portal, sql: &str) -> PgWireResult<()> {
        if portal.rows.is_some() {
            return Ok(());
        }
        let mut spec = self.spec(sql, portal.formats).map_err(gateway_error)?;
        spec.request.params = portal.params.clone();
        match self.start_spec(spec).await {
            Ok(rows) => {
                portal.rows = Some(rows);
                Ok(())
            }
            Err(e) => {
                if e.is_server_fault() {
                    tracing::error!(error = ?e, code = e.code(), "pg query failed");
                }
                Err(gateway_error(e))
            }
        }
    }

    /// The columns a cursor's `FETCH` sends, in `formats` (opening it if it is not yet).
    async fn cursor_columns(
        &self,
        name: &str,
        formats: Option<PgColumns>,
    ) -> PgWireResult<Option<RowDescription>> {
        let Some(mut cursor) = self
            .open_cursor(name, formats)
            .await
            .map_err(gateway_error)?
        else {
            return Ok(None);
        };
        let described = match cursor.open.as_mut() {
            Some((rows, _)) => rows.description().await,
            None => Ok(None),
        };
        self.cursors().insert(name.to_string(), cursor);
        described
    }

    fn take_portal(&self, target: &str) -> PgWireResult<Portal> {
        self.extended()
            .portals
            .remove(target)
            .ok_or_else(|| user_error("34000", format!("portal \"{target}\" does not exist")))
    }
}

/// A gateway error as the client's `ErrorResponse`.
fn gateway_error(e: crate::error::GatewayError) -> PgWireError {
    let message = e.client_message();
    let code = crate::encode::pg::sqlstate(e.code(), &message);
    user_error(code, crate::encode::pg::client_message(e.code(), &message))
}

/// `RowDescription`, or `NoData` for a statement without rows.
async fn send_description<C>(client: &mut C, columns: Option<RowDescription>) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let message = match columns {
        Some(d) => PgWireBackendMessage::RowDescription(d),
        None => PgWireBackendMessage::NoData(NoData::new()),
    };
    client.send(message).await?;
    Ok(())
}

/// The columns of a statement the endpoint answers itself (`SHOW`, `SELECT version()`).
fn local_columns(statement: &Statement<'_>) -> Option<RowDescription> {
    let names: Vec<&str> = match statement {
        Statement::Show(n) if n == "all" => vec!["name", "setting", "description"],
        Statement::Show(n) => vec![n.as_str()],
        Statement::Version => vec!["version"],
        _ => return None,
    };
    let fields = names
        .into_iter()
        .map(|n| FieldDescription::new(n.to_string(), 0, 0, 25, -1, -1, 0))
        .collect();
    Some(RowDescription::new(fields))
}

/// `count` parameter types: the client's where it gave one, else `described` (DuckDB's), else
/// text (25).
fn parameter_types(client: &[u32], described: &[u32], count: usize) -> Vec<u32> {
    (0..count)
        .map(|i| {
            [client.get(i), described.get(i)]
                .into_iter()
                .flatten()
                .copied()
                .find(|&oid| oid != 0)
                .unwrap_or(25)
        })
        .collect()
}
