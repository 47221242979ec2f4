//! [`Catalog`]: the gateway's own PostgreSQL connection to the lakes' catalog database, for what
//! DuckDB does not do: which tenants exist, their snapshots and change records, the trigger
//! that announces commits, the cluster-wide write lock, dropping a tenant's schema.
//!
//! Invariants:
//! - Its connections live on a runtime of its own (one thread, `lake-catalog`): callers on the
//!   async runtime await a join handle, executor threads block on one; neither drives IO.
//! - Every call is bounded ([`CALL_TIMEOUT`], the connect timeout): a catalog that does not
//!   answer is `storage_unavailable`, never a hang.
//! - A tenant's catalog is the schema [`schema_of`] (`ds_<tenant>`); every name put into SQL
//!   text is a tenant id (`a-z0-9_-`) quoted as an identifier, or passed as a parameter.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::{Client, Config, NoTls};

use super::changes::TableNames;
use crate::error::GatewayError;
use crate::wire::TenantId;

/// The longest one catalog call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The NOTIFY channel the trigger announces commits on.
pub const CHANNEL: &str = "duckstream_lake";

/// The PostgreSQL schema holding a tenant's DuckLake catalog (`METADATA_SCHEMA`).
pub fn schema_of(id: &TenantId) -> String {
    format!("ds_{id}")
}

/// The tenant a schema belongs to, if it is one of ours.
pub fn tenant_of(schema: &str) -> Option<TenantId> {
    TenantId::parse(schema.strip_prefix("ds_")?).ok()
}

/// `"name"` (tenant ids hold no quote; doubled anyway).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The trigger function: one notification per committed snapshot, naming the schema (the
/// tenant) and the snapshot. A commit that loses a conflict rolls back and sends nothing.
const NOTIFY_FUNCTION: &str = "CREATE SCHEMA IF NOT EXISTS duckstream; \
    CREATE OR REPLACE FUNCTION duckstream.notify_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
    BEGIN PERFORM pg_notify('duckstream_lake', json_build_object('schema', TG_TABLE_SCHEMA, \
    'snapshot', NEW.snapshot_id, 'at', extract(epoch FROM clock_timestamp()))::text); \
    RETURN NEW; END $$;";

/// How long a connection to the catalog may take, when its connection string does not say:
/// the store's own connections and the tenants' databases' alike (libpq waits forever for a
/// host that drops packets).
pub const CONNECT_TIMEOUT_SECS: u64 = 5;

/// One snapshot's change record.
pub struct SnapshotChanges {
    pub snapshot: u64,
    pub changes: String,
}

/// The catalog database, shared by every replica.
pub struct Catalog {
    config: Config,
    /// Counts calls that failed or timed out (`duckstream_store_catalog_errors_total`).
    errors: prometheus::IntCounter,
    runtime: Option<Runtime>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Catalog {
    /// `dsn`: a libpq connection string (`key=value …` or a `postgres://` URL). Without a
    /// password in it, `PGPASSWORD` is used, as libpq (DuckDB's own catalog connections) does.
    pub fn new(dsn: &str, errors: prometheus::IntCounter) -> Result<Arc<Self>, String> {
        let mut config: Config = dsn.parse().map_err(|e| format!("{e}"))?;
        if config.get_password().is_none() {
            if let Ok(password) = std::env::var("PGPASSWORD") {
                config.password(password);
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(CONNECT_TIMEOUT_SECS));
        }
        config.application_name("duckstream");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lake-catalog")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            config,
            errors,
            runtime: Some(runtime),
            client: tokio::sync::Mutex::new(None),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs `f` on the catalog's runtime, bounded by [`CALL_TIMEOUT`]; its errors (and a
    /// timeout) are `storage_unavailable`.
    pub fn call<T, F, Fut>(self: &Arc<Self>, f: F) -> impl Future<Output = Result<T, GatewayError>>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, GatewayError>> + Send + 'static,
    {
        let me = Arc::clone(self);
        let handle = self.runtime.as_ref().map(|r| r.handle().clone());
        let errors = self.errors.clone();
        async move {
            let handle = handle.ok_or_else(|| GatewayError::storage("the catalog is closed"))?;
            let task = handle.spawn(async move {
                match tokio::time::timeout(CALL_TIMEOUT, f(me)).await {
                    Ok(r) => r,
                    Err(_) => Err(GatewayError::storage(
                        "the lake catalog did not answer in time",
                    )),
                }
            });
            let out = task.await.map_err(GatewayError::internal)?;
            if let Err(GatewayError::StorageUnavailable(_)) = &out {
                errors.inc();
            }
            out
        }
    }

    /// Runs `task` on the catalog's runtime (the change feed).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        if let Some(rt) = &self.runtime {
            rt.spawn(task);
        }
    }

    /// [`Self::call`] from a thread that may block (an executor thread).
    pub fn block<T, F, Fut>(self: &Arc<Self>, f: F) -> Result<T, GatewayError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Self>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, GatewayError>> + Send + 'static,
    {
        futures_executor::block_on(self.call(f))
    }

    /// A new connection of its own (the listener's, a write lock's), its IO driven on the
    /// catalog's runtime until the client is dropped. Call on the catalog's runtime.
    pub async fn connect(&self) -> Result<Client, GatewayError> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(GatewayError::storage)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a lake catalog connection broke");
            }
        });
        Ok(client)
    }

    /// The shared client, connecting (again) when there is none or it broke.
    async fn client(&self) -> Result<Arc<Client>, GatewayError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let client = Arc::new(self.connect().await?);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Whether the tenant's catalog exists (its schema holds DuckLake's snapshot table).
    pub async fn exists(&self, id: &TenantId) -> Result<bool, GatewayError> {
        let table = format!("{}.ducklake_snapshot", ident(&schema_of(id)));
        let row = self
            .client()
            .await?
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .map_err(GatewayError::storage)?;
        Ok(row.get(0))
    }

    /// Every tenant with a catalog, sorted.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, GatewayError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid \
                 WHERE n.nspname LIKE 'ds\\_%' AND c.relname = 'ducklake_snapshot' ORDER BY 1",
                &[],
            )
            .await
            .map_err(GatewayError::storage)?;
        Ok(rows
            .iter()
            .filter_map(|r| tenant_of(r.get::<_, &str>(0)))
            .collect())
    }

    /// The bytes of the tenant's current data files.
    pub async fn size(&self, id: &TenantId) -> Result<u64, GatewayError> {
        Ok(self.data_files(id).await?.1)
    }

    /// The number and bytes of the tenant's current data files.
    pub async fn data_files(&self, id: &TenantId) -> Result<(u64, u64), GatewayError> {
        let sql = format!(
            "SELECT count(*)::int8, coalesce(sum(file_size_bytes), 0)::int8 FROM \
             {}.ducklake_data_file WHERE end_snapshot IS NULL",
            ident(&schema_of(id))
        );
        let row = self
            .client()
            .await?
            .query_one(&sql, &[])
            .await
            .map_err(GatewayError::storage)?;
        Ok((
            row.get::<_, i64>(0).max(0) as u64,
            row.get::<_, i64>(1).max(0) as u64,
        ))
    }

    /// The tenant's snapshots after `after` (all with `None`), oldest first, with their
    /// change records.
    pub async fn history(
        &self,
        id: &TenantId,
        after: Option<u64>,
    ) -> Result<Vec<SnapshotChanges>, GatewayError> {
        let sql = format!(
            "SELECT snapshot_id, coalesce(changes_made, '') FROM {}.ducklake_snapshot_changes \
             WHERE snapshot_id > $1 ORDER BY snapshot_id",
            ident(&schema_of(id))
        );
        let after = after.map(|a| a as i64).unwrap_or(-1);
        let rows = self
            .client()
            .await?
            .query(&sql, &[&after])
            .await
            .map_err(GatewayError::storage)?;
        Ok(rows
            .iter()
            .map(|r| SnapshotChanges {
                snapshot: r.get::<_, i64>(0).max(0) as u64,
                changes: r.get(1),
            })
            .collect())
    }

    /// Every table id of the tenant's lake with every name it has had (lower-case
    /// `schema.table`).
    pub async fn table_names(&self, id: &TenantId) -> Result<TableNames, GatewayError> {
        let schema = ident(&schema_of(id));
        let sql = format!(
            "SELECT DISTINCT t.table_id, lower(s.schema_name) || '.' || lower(t.table_name) \
             FROM {schema}.ducklake_table t JOIN {schema}.ducklake_schema s USING (schema_id)"
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[])
            .await
            .map_err(GatewayError::storage)?;
        let mut names = TableNames::new();
        for r in rows {
            names.entry(r.get(0)).or_default().push(r.get(1));
        }
        Ok(names)
    }

    /// Installs the trigger that announces the tenant's commits (idempotent).
    pub async fn install_trigger(&self, id: &TenantId) -> Result<(), GatewayError> {
        let sql = format!(
            "{NOTIFY_FUNCTION} CREATE OR REPLACE TRIGGER duckstream_notify AFTER INSERT ON \
             {}.ducklake_snapshot_changes FOR EACH ROW EXECUTE FUNCTION duckstream.notify_commit();",
            ident(&schema_of(id))
        );
        self.client()
            .await?
            .batch_execute(&sql)
            .await
            .map_err(GatewayError::storage)
    }

    /// Makes (or updates) the tenant's own role: it logs in with `password`, is no superuser
    /// and may use only the tenant's schema (DuckLake reads and writes its catalog tables
    /// there; nothing else in the database is granted to it).
    pub async fn install_role(&self, id: &TenantId, password: &str) -> Result<(), GatewayError> {
        let role = ident(&super::roles::role_of(id));
        let schema = ident(&schema_of(id));
        let password = password.replace('\'', "''");
        // Roles are the cluster's: another replica (or another catalog database on the same
        // server) may create it at the same moment, so a creation that loses is no error.
        let sql = format!(
            "DO $$ BEGIN CREATE ROLE {role}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$; \
             ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '{password}'; \
             GRANT USAGE ON SCHEMA {schema} TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};"
        );
        self.client()
            .await?
            .batch_execute(&sql)
            .await
            .map_err(GatewayError::storage)
    }

    /// Drops the tenant's catalog schema and everything in it.
    pub async fn drop_schema(&self, id: &TenantId) -> Result<(), GatewayError> {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&schema_of(id)));
        self.client()
            .await?
            .batch_execute(&sql)
            .await
            .map_err(GatewayError::storage)
    }

    /// Takes the tenant's cluster-wide write lock (a PostgreSQL advisory lock on a connection
    /// of its own), waiting up to `wait`: `write_busy` after that. The lock is released when
    /// the returned client is dropped, or when the process dies and its socket closes.
    pub async fn lock_writes(&self, id: &TenantId, wait: Duration) -> Result<Client, GatewayError> {
        let client = self.connect().await?;
        let key = format!("duckstream:{id}");
        client
            .batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1)))
            .await
            .map_err(GatewayError::storage)?;
        match client
            .execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", &[&key])
            .await
        {
            Ok(_) => Ok(client),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                Err(GatewayError::WriteBusy)
            }
            Err(e) => Err(GatewayError::storage(e)),
        }
    }
}

impl Drop for Catalog {
    fn drop(&mut self) {
        // Dropped anywhere, an async context included: never wait for the runtime's thread.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
