//! A connection and its login. The startup packet's `database` names the tenant (libpq sends
//! the user's name when none is given, so the user names it then); the password is an API key
//! or a token, checked exactly as `Authorization: Bearer` is, with the same table scope.
//!
//! Invariants:
//! - A password is asked only over TLS, or from loopback: elsewhere the login is refused
//!   before the client sends it (28000). Open mode (no tenants file) asks none.
//! - A wrong key, another tenant's key and an unknown tenant get the same answer (28P01),
//!   after the same short delay; a tenant that does not exist is told apart (3D000) only once
//!   the credential was good.
//! - Startup `options` may set only the session's own settings ([`super::session`]).
//! - Past `max_connections` the login is refused with 53300.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::sink::{Sink, SinkExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
    METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::connection::Connection;
use super::session::{Session, SERVER_VERSION};
use crate::auth::Credential;
use crate::wire::TenantId;

/// How long a failed login waits before its answer (guessing keys costs time).
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(200);

static KEYS: std::sync::LazyLock<RandomPidSecretKeyGenerator> =
    std::sync::LazyLock::new(RandomPidSecretKeyGenerator::default);

impl Connection {
    /// The tenant the startup packet names.
    fn tenant_of<C: ClientInfo>(client: &C) -> PgWireResult<TenantId> {
        let meta = client.metadata();
        let name = meta
            .get(METADATA_DATABASE)
            .or_else(|| meta.get(METADATA_USER))
            .map(String::as_str)
            .unwrap_or_default();
        TenantId::parse(name).map_err(|_| no_database(name))
    }

    /// The first message: checks the place, the options and where the client is, then asks
    /// for the password (or logs in at once in open mode).
    async fn on_startup_packet<C>(&self, client: &mut C) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self
            .permit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
        {
            return Err(fatal("53300", "sorry, too many clients already"));
        }
        // Refused before the password is asked (the access does not matter yet).
        let tenant = Self::tenant_of(client)?;
        open_session(client, crate::auth::Access::open(&tenant))?;
        if self.shared.auth.is_open() {
            return self.log_in(client, Credential::Absent).await;
        }
        if !client.is_secure() && !self.peer.ip().is_loopback() {
            return Err(fatal(
                "28000",
                "a password is accepted only over TLS: connect with sslmode=require",
            ));
        }
        client
            .send(PgWireBackendMessage::Authentication(
                Authentication::CleartextPassword,
            ))
            .await?;
        client.set_state(PgWireConnectionState::AuthenticationInProgress);
        Ok(())
    }

    /// Checks the credential for the tenant, then opens the session.
    async fn log_in<C>(&self, client: &mut C, credential: Credential) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let tenant = Self::tenant_of(client)?;
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        let access = match self.shared.auth.authorize(&credential, &tenant) {
            Ok(access) => access,
            Err(e) => {
                self.shared
                    .metrics
                    .auth_failures
                    .with_label_values(&[e.reason()])
                    .inc();
                tracing::debug!(%tenant, reason = e.reason(), peer = %self.peer, "pg login refused");
                tokio::time::sleep(FAILED_LOGIN_DELAY).await;
                return Err(fatal(
                    "28P01",
                    &format!("password authentication failed for user \"{user}\""),
                ));
            }
        };
        if self.shared.engine.check_tenant(&tenant).await.is_err() {
            return Err(no_database(tenant.as_str()));
        }
        tracing::debug!(%tenant, %user, peer = %self.peer, "pg login");
        let session = open_session(client, access)?;
        let _ = self.session.set(Mutex::new(session));
        let (pid, secret) = KEYS.generate(client);
        client.set_pid_and_secret_key(pid, secret.clone());
        self.shared.cancels.insert(pid, secret, &self.running);
        let _ = self.pid.set(pid);
        finish_authentication(client, &Parameters).await
    }
}

#[async_trait]
impl StartupHandler for Connection {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                protocol_negotiation(client, &startup).await?;
                save_startup_parameters_to_metadata(client, &startup);
                self.on_startup_packet(client).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let password = message.into_password()?.password;
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                self.log_in(client, Credential::Password { user, password })
                    .await
            }
            _ => Err(fatal("08P01", "unexpected message during startup")),
        }
    }
}

#[async_trait]
impl CancelHandler for Connection {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let done = self.shared.cancels.cancel(request.pid, &request.secret_key);
        tracing::debug!(pid = request.pid, cancelled = done, "pg cancel request");
    }
}

/// The `ParameterStatus` messages after a login: what PostgreSQL 15 reports.
struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(
        &self,
        client: &C,
    ) -> Option<std::collections::HashMap<String, String>> {
        let meta = client.metadata();
        let user = meta.get(METADATA_USER).cloned().unwrap_or_default();
        let app = meta.get("application_name").cloned().unwrap_or_default();
        let fixed = [
            ("server_version", SERVER_VERSION),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("is_superuser", "off"),
            ("default_transaction_read_only", "on"),
            ("in_hot_standby", "off"),
        ];
        let mut params: std::collections::HashMap<String, String> = fixed
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        params.insert("session_authorization".into(), user);
        params.insert("application_name".into(), app);
        Some(params)
    }
}

/// The settings the startup packet gives: its parameters besides `user`, `database`,
/// `options` and `replication`, and each `-c name=value` of `options`.
fn startup_settings<C: ClientInfo>(client: &C) -> Vec<(String, String)> {
    let meta = client.metadata();
    let mut settings: Vec<(String, String)> = meta
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "user" | "database" | "options" | "replication"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    settings.extend(
        meta.get("options")
            .map(|o| parse_options(o))
            .unwrap_or_default(),
    );
    settings
}

/// The session `access` opens, with the startup packet's settings; a setting that is not
/// the session's own (`-c enable_external_access=true`) refuses the login, as PostgreSQL
/// refuses an unknown parameter.
fn open_session<C: ClientInfo>(client: &C, access: crate::auth::Access) -> PgWireResult<Session> {
    let mut session = Session::new(access);
    for (name, value) in startup_settings(client) {
        session
            .set(&name, Some(&value))
            .map_err(|r| fatal(r.sqlstate, &r.message))?;
    }
    Ok(session)
}

/// `-c name=value --name=value …` as (name, value) pairs.
pub(super) fn parse_options(options: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut words = options.split_whitespace();
    while let Some(word) = words.next() {
        let setting = match word {
            "-c" => words.next().unwrap_or_default(),
            w => w
                .strip_prefix("-c")
                .or_else(|| w.strip_prefix("--"))
                .unwrap_or(w),
        };
        if let Some((name, value)) = setting.split_once('=') {
            out.push((name.replace('-', "_"), value.to_string()));
        }
    }
    out
}

fn fatal(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.to_owned(),
    )))
}

fn no_database(name: &str) -> PgWireError {
    fatal("3D000", &format!("database \"{name}\" does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_settings() {
        assert_eq!(
            parse_options("-c statement_timeout=5s --application-name=x -cdatestyle=ISO"),
            [
                ("statement_timeout".to_string(), "5s".to_string()),
                ("application_name".to_string(), "x".to_string()),
                ("datestyle".to_string(), "ISO".to_string()),
            ]
        );
    }
}
