//! [`LakeStore`]: each tenant a DuckLake. Its catalog is the schema `ds_<tenant>` of one
//! PostgreSQL database shared by every replica; its data is Parquet under `<data>/<tenant>/`
//! on S3-compatible storage (or a directory the replicas share).
//!
//! A tenant's database is an in-memory DuckDB that attaches the tenant's lake as the catalog
//! named after the tenant, and selects it on every connection (`USE`): queries, uploads and
//! the checks see the tenant's tables exactly as with a local file.
//!
//! Invariants:
//! - A data version is the lake's snapshot id: a query reads it inside its own transaction
//!   ([`VersionSql::read`]), a write reads the snapshot its commit made
//!   ([`VersionSql::committed`]); other replicas' commits arrive through the change feed
//!   ([`listen`]), which reads what changed from the catalog's change records.
//! - Opening never creates a lake: only [`TenantStore::create`] attaches a new one.
//! - One writer per tenant across every replica: an advisory lock in the catalog database
//!   ([`TenantStore::lock_writes`]), released when the writer ends or its process dies.
//! - Gateway lakes never inline data into the catalog (DuckLake's inlined-data readers have
//!   open bugs) and retry commits up to [`MAX_RETRIES`] times, so appends do not fail on a
//!   collision with maintenance.
//! - The object store's credentials are a DuckDB secret scoped to the tenant's own prefix,
//!   and the only place outside the database DuckDB may read after the sandbox is that prefix
//!   ([`Opened::readable`]); clients cannot call a file reader at all (the allowlist).

mod catalog;
mod changes;
mod listen;
mod moving;
mod roles;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{ChangeSink, Opened, Recorded, TenantStore, VersionSql, WriteLock};
use crate::duck::{Connection, Database};
use crate::error::GatewayError;
use crate::metrics::StoreMetrics;
use crate::wire::TenantId;

pub use catalog::schema_of;

/// Commit retries DuckLake makes before a conflict fails a write.
pub const MAX_RETRIES: u32 = 100;

/// The longest a write waits for another replica's write to the same tenant (below the
/// catalog's call timeout).
const MAX_LOCK_WAIT: Duration = Duration::from_secs(8);

/// How long DuckDB waits on one object-store request that sends nothing (DuckDB's default,
/// 30 s, times its 3 retries, held a query on a stalled store for two minutes).
const S3_TIMEOUT_SECS: u64 = 5;

/// How often DuckDB tries a failed object-store request again: a stalled store answers a query
/// `storage_unavailable` after about `S3_TIMEOUT_SECS × (1 + S3_RETRIES)`.
const S3_RETRIES: u64 = 1;

/// How to reach S3-compatible object storage.
#[derive(Clone, Default)]
pub struct S3Settings {
    /// `host:port` of a non-AWS endpoint (MinIO, moto); `None`: AWS.
    pub endpoint: Option<String>,
    /// `path` or `vhost`; `None`: DuckDB's default (`vhost`).
    pub url_style: Option<String>,
    pub use_ssl: bool,
    pub region: Option<String>,
    pub key_id: Option<String>,
    pub secret: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("url_style", &self.url_style)
            .field("use_ssl", &self.use_ssl)
            .field("region", &self.region)
            .field("key_id", &self.key_id.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// What a lake store is built from (validated by the configuration).
#[derive(Clone, Debug)]
pub struct LakeSettings {
    /// The catalog database: a libpq connection string.
    pub catalog: String,
    /// `s3://bucket/prefix/` or an absolute directory, ending with `/`.
    pub data: String,
    pub s3: S3Settings,
    /// How long a write waits for another replica's write to the same tenant.
    pub lock_wait: Duration,
    /// How long old snapshots (and the files only they use) are kept: time travel and
    /// queries still reading them need them.
    pub retention: Duration,
    /// Derives each tenant's own catalog role's password (`ds_<tenant>`, no superuser, only
    /// its schema): the role its queries and writes log in as. `None`: every tenant's database
    /// logs in with `catalog`'s role (one machine, tests without PostgreSQL roles).
    pub role_secret: Option<String>,
    /// Where the store's own DuckDB (creating and deleting lakes) installs extensions from.
    pub extension_repository: Option<PathBuf>,
    pub extension_directory: Option<PathBuf>,
}

/// Tenants as DuckLakes sharing one catalog database and one data root.
pub struct LakeStore {
    settings: LakeSettings,
    catalog: Arc<catalog::Catalog>,
    metrics: StoreMetrics,
    /// Set by the change feed while the catalog is known not to answer ([`listen::Feed`]).
    down: Arc<AtomicBool>,
}

/// `'text'`.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The extensions a lake needs, in load order.
pub const EXTENSIONS: &[&str] = &["httpfs", "postgres", "ducklake"];

impl LakeStore {
    /// A store on `settings`' catalog and data; `metrics` gets the catalog's errors and the
    /// change feed's health.
    pub fn new(settings: LakeSettings, metrics: StoreMetrics) -> Result<Self, String> {
        let catalog = catalog::Catalog::new(&settings.catalog, metrics.catalog_errors.clone())?;
        Ok(Self {
            settings,
            catalog,
            metrics,
            down: Arc::default(),
        })
    }

    /// `<data>/<tenant>/`.
    fn prefix(&self, id: &TenantId) -> String {
        format!("{}{id}/", self.settings.data)
    }

    fn on_s3(&self) -> bool {
        self.settings.data.starts_with("s3://")
    }

    /// The tenant's catalog name in DuckDB (the tenant id, quoted).
    fn duck_name(id: &TenantId) -> String {
        catalog::ident(id.as_str())
    }

    /// The secret the tenant's database reads its prefix with (S3 only).
    fn secret_sql(&self, id: &TenantId) -> String {
        let s3 = &self.settings.s3;
        let mut parts = vec!["TYPE s3".to_string()];
        let mut add = |key: &str, value: &Option<String>| {
            if let Some(v) = value {
                parts.push(format!("{key} {}", literal(v)));
            }
        };
        add("KEY_ID", &s3.key_id);
        add("SECRET", &s3.secret);
        add("SESSION_TOKEN", &s3.session_token);
        add("REGION", &s3.region);
        add("ENDPOINT", &s3.endpoint);
        add("URL_STYLE", &s3.url_style);
        parts.push(format!("USE_SSL {}", s3.use_ssl));
        parts.push(format!("SCOPE {}", literal(&self.prefix(id))));
        format!(
            "CREATE OR REPLACE SECRET duckstream_lake ({});",
            parts.join(", ")
        )
    }

    /// The connection string the tenant's own database attaches its lake with: the catalog's,
    /// logged in as the tenant's role when roles are on.
    fn tenant_dsn(&self, id: &TenantId) -> String {
        let dsn = match &self.settings.role_secret {
            Some(secret) => roles::tenant_dsn(&self.settings.catalog, id, secret),
            None => self.settings.catalog.clone(),
        };
        with_connect_timeout(dsn)
    }

    /// What attaches the tenant's lake as the store's own role (creating its catalog if it has
    /// none).
    fn attach_sql(&self, id: &TenantId) -> String {
        self.attach_sql_as(id, &self.settings.catalog)
    }

    fn attach_sql_as(&self, id: &TenantId, dsn: &str) -> String {
        // The catalog pool's health check (`SELECT 1` around each use of a connection) costs 2
        // of a tiny query's 10 round trips, but without it every connection that died while
        // pooled (a catalog restart, an interrupted query) fails a query (docs/BENCHMARKS.md).
        let mut sql = format!(
            "SET ducklake_max_retry_count = {MAX_RETRIES}; \
             SET ducklake_default_data_inlining_row_limit = 0;"
        );
        if self.on_s3() {
            sql.push_str(&format!(
                " SET http_timeout = {S3_TIMEOUT_SECS}; SET http_retries = {S3_RETRIES}; "
            ));
            sql.push_str(&self.secret_sql(id));
        }
        sql.push_str(&format!(
            " ATTACH {} AS {} (METADATA_SCHEMA {}, DATA_PATH {}, DATA_INLINING_ROW_LIMIT 0);",
            literal(&format!("ducklake:postgres:{dsn}")),
            Self::duck_name(id),
            literal(&schema_of(id)),
            literal(&self.prefix(id)),
        ));
        sql
    }

    fn versions(id: &TenantId) -> VersionSql {
        let name = literal(id.as_str());
        VersionSql {
            read: format!("SELECT id::VARCHAR FROM ducklake_current_snapshot({name})"),
            committed: format!("SELECT id::VARCHAR FROM ducklake_last_committed_snapshot({name})"),
        }
    }

    /// Installs the tenant's trigger and, when roles are on, its role (both idempotent).
    fn install(&self, id: &TenantId) -> Result<(), GatewayError> {
        let name = id.clone();
        let password = self
            .settings
            .role_secret
            .as_ref()
            .map(|secret| roles::password(id, secret));
        self.catalog.block(move |c| async move {
            c.install_trigger(&name).await?;
            match password {
                Some(p) => c.install_role(&name, &p).await,
                None => Ok(()),
            }
        })
    }

    /// A DuckDB of the store's own (not a tenant's: no sandbox) with the lake extensions, for
    /// creating and deleting lakes. Blocking.
    fn admin_database(&self) -> Result<(Arc<Database>, Connection), GatewayError> {
        let db = Database::open(Path::new(":memory:")).map_err(GatewayError::TenantUnavailable)?;
        let conn = db.connect().map_err(GatewayError::TenantUnavailable)?;
        let mut sql = String::new();
        if let Some(dir) = &self.settings.extension_directory {
            sql.push_str(&format!(
                "SET extension_directory = {};",
                literal(&dir.display().to_string())
            ));
        }
        for name in EXTENSIONS {
            match &self.settings.extension_repository {
                Some(repo) => sql.push_str(&format!(
                    " INSTALL {name} FROM {}; LOAD {name};",
                    literal(&repo.display().to_string())
                )),
                None => sql.push_str(&format!(" INSTALL {name}; LOAD {name};")),
            }
        }
        conn.execute_batch(&sql)
            .map_err(GatewayError::TenantUnavailable)?;
        Ok((db, conn))
    }

    /// Runs `sql` on the store's own DuckDB with the tenant's lake attached.
    fn with_lake<T>(
        &self,
        id: &TenantId,
        work: impl FnOnce(&Connection) -> Result<T, crate::duck::DuckError>,
    ) -> Result<T, GatewayError> {
        let (_db, conn) = self.admin_database()?;
        let failed = |e: crate::duck::DuckError| {
            if is_unavailable(&e.message) {
                GatewayError::storage(e)
            } else {
                GatewayError::TenantUnavailable(e)
            }
        };
        conn.execute_batch(&self.attach_sql(id)).map_err(failed)?;
        let out = work(&conn).map_err(failed);
        let _ = conn.execute_batch(&format!("DETACH {}", Self::duck_name(id)));
        out
    }

    /// Removes what is left under a directory lake's prefix (S3 prefixes are emptied by
    /// DuckLake's own cleanup before the catalog goes).
    fn remove_directory(&self, id: &TenantId) -> Result<(), GatewayError> {
        if self.on_s3() {
            return Ok(());
        }
        match std::fs::remove_dir_all(self.prefix(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(GatewayError::internal(e)),
            _ => Ok(()),
        }
    }
}

/// `dsn` with libpq's `connect_timeout` ([`catalog::CONNECT_TIMEOUT_SECS`]) unless it sets
/// one: libpq waits forever for a host that drops packets, and a query would hold its
/// executor thread that long.
fn with_connect_timeout(dsn: String) -> String {
    let timeout = catalog::CONNECT_TIMEOUT_SECS;
    if dsn.contains("connect_timeout") {
        dsn
    } else if dsn.contains("://") && !dsn.contains(' ') {
        let sep = if dsn.contains('?') { '&' } else { '?' };
        format!("{dsn}{sep}connect_timeout={timeout}")
    } else {
        format!("{dsn} connect_timeout={timeout}")
    }
}

/// Whether DuckDB's message says the catalog or the object store could not be reached.
pub fn is_unavailable(message: &str) -> bool {
    const SIGNS: &[&str] = &[
        "could not connect to server",
        "connection to server",
        "Connection refused",
        "server closed the connection",
        "terminating connection",
        "no connection to the server",
        "the database system is",
        "Unable to connect to Postgres",
        "Failed to connect",
        "Could not establish connection",
        "could not translate host name",
        "PQconsumeInput",
        "SSL SYSCALL",
        "timeout expired",
        // httpfs: the object store did not answer in time, or not at all.
        "Timeout was reached",
        "Couldn't connect to server",
        "error for HTTP",
        "(HTTP 500)",
        "(HTTP 502)",
        "(HTTP 503)",
    ];
    SIGNS.iter().any(|s| message.contains(s))
}

impl TenantStore for LakeStore {
    fn open(&self, id: &TenantId) -> Result<Opened, GatewayError> {
        let name = id.clone();
        if !self
            .catalog
            .block(move |c| async move { c.exists(&name).await })?
        {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        // A lake made by hand (or by an older gateway) gets its trigger and role too.
        self.install(id)?;
        let db = Database::open(Path::new(":memory:")).map_err(GatewayError::TenantUnavailable)?;
        tracing::info!(tenant = %id, data = %self.prefix(id), "opened tenant lake");
        Ok(Opened {
            db,
            setup_sql: Some(self.attach_sql_as(id, &self.tenant_dsn(id))),
            connection_sql: Some(format!("USE {};", Self::duck_name(id))),
            readable: vec![self.prefix(id)],
            versions: Some(Self::versions(id)),
            indexes: false,
        })
    }

    fn exists<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Result<bool, GatewayError>> {
        let name = id.clone();
        Box::pin(
            self.catalog
                .call(move |c| async move { c.exists(&name).await }),
        )
    }

    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(TenantId, u64)>>> {
        let call = self.catalog.call(|c| async move {
            let mut out = Vec::new();
            for id in c.tenants().await? {
                let size = c.size(&id).await.unwrap_or(0);
                out.push((id, size));
            }
            Ok(out)
        });
        Box::pin(async move { call.await.map_err(|e| io::Error::other(e.log_chain())) })
    }

    fn size<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, u64> {
        let name = id.clone();
        let call = self
            .catalog
            .call(move |c| async move { c.size(&name).await });
        Box::pin(async move { call.await.unwrap_or(0) })
    }

    fn create(&self, id: &TenantId) -> Result<Option<u64>, GatewayError> {
        if schema_of(id).len() > 63 {
            return Err(GatewayError::InvalidRequest(
                "a lake tenant's name is at most 60 characters".into(),
            ));
        }
        let name = id.clone();
        if self
            .catalog
            .block(move |c| async move { c.exists(&name).await })?
        {
            return Err(GatewayError::TenantExists(id.to_string()));
        }
        let versions = Self::versions(id);
        let version = self.with_lake(id, |conn| snapshot(conn, &versions.read))?;
        self.install(id)?;
        tracing::info!(tenant = %id, data = %self.prefix(id), "created tenant lake");
        Ok(Some(version))
    }

    fn delete(&self, id: &TenantId) -> Result<(), GatewayError> {
        let lake = Self::duck_name(id);
        let cleaned = self.with_lake(id, |conn| {
            let tables = conn.query_rows(&format!(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = {}",
                literal(id.as_str())
            ))?;
            for t in tables {
                let (Some(Some(schema)), Some(Some(table))) = (t.first(), t.get(1)) else {
                    continue;
                };
                conn.execute_batch(&format!(
                    "DROP TABLE {lake}.{}.{}",
                    catalog::ident(schema),
                    catalog::ident(table)
                ))?;
            }
            let name = literal(id.as_str());
            let everything = at(now_secs() + 86_400);
            conn.execute_batch(&format!(
                "SELECT count(*) FROM ducklake_expire_snapshots({name}, older_than => {everything}); \
                 SELECT count(*) FROM ducklake_cleanup_old_files({name}, cleanup_all => true); \
                 SELECT count(*) FROM ducklake_delete_orphaned_files({name}, cleanup_all => true);"
            ))
        });
        if let Err(e) = cleaned {
            // The catalog goes anyway: files left behind are never read again.
            tracing::warn!(tenant = %id, error = %e.log_chain(), "could not remove a lake's files");
        }
        let name = id.clone();
        self.catalog
            .block(move |c| async move { c.drop_schema(&name).await })?;
        self.remove_directory(id)?;
        tracing::info!(tenant = %id, "deleted tenant lake");
        Ok(())
    }

    fn data_version<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Recorded> {
        let name = id.clone();
        let call = self.catalog.call(move |c| async move {
            let history = c.history(&name, None).await?;
            let names = c.table_names(&name).await?;
            Ok(recorded(&history, &names))
        });
        Box::pin(async move {
            call.await.unwrap_or_else(|e| {
                tracing::warn!(tenant = %id, error = %e.log_chain(), "cannot read a lake's version");
                Recorded::default()
            })
        })
    }

    fn record_write<'a>(
        &'a self,
        _id: &'a TenantId,
        _version: u64,
        _tables: &'a [String],
    ) -> BoxFuture<'a, io::Result<()>> {
        // The commit recorded it: the snapshot and its change record are the catalog's.
        Box::pin(async { Ok(()) })
    }

    fn lock_writes<'a>(
        &'a self,
        id: &'a TenantId,
    ) -> BoxFuture<'a, Result<WriteLock, GatewayError>> {
        let (name, wait) = (id.clone(), self.settings.lock_wait.min(MAX_LOCK_WAIT));
        let call = self
            .catalog
            .call(move |c| async move { c.lock_writes(&name, wait).await });
        Box::pin(async move { Ok(Box::new(call.await?) as WriteLock) })
    }

    fn follow(&self, sink: Weak<dyn ChangeSink>, shutdown: CancellationToken) {
        let catalog = Arc::clone(&self.catalog);
        let feed = listen::Feed {
            connected: self.metrics.feed_connected.clone(),
            lag: self.metrics.feed_lag.clone(),
            down: Arc::clone(&self.down),
        };
        self.catalog
            .spawn(listen::follow(catalog, sink, shutdown, feed));
    }

    fn unavailable(&self, message: &str) -> bool {
        is_unavailable(message)
    }

    fn reachable(&self) -> bool {
        !self.down.load(Ordering::Acquire)
    }

    fn maintenance_sql(&self, id: &TenantId) -> Option<String> {
        let name = literal(id.as_str());
        let before = at(now_secs().saturating_sub(self.settings.retention.as_secs()));
        Some(format!(
            "SELECT count(*) FROM ducklake_merge_adjacent_files({name}); \
             SELECT count(*) FROM ducklake_expire_snapshots({name}, older_than => {before}); \
             SELECT count(*) FROM ducklake_cleanup_old_files({name}, older_than => {before}); \
             SELECT count(*) FROM ducklake_delete_orphaned_files({name}, older_than => {before});"
        ))
    }

    fn data_files<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Option<(u64, u64)>> {
        let name = id.clone();
        let call = self
            .catalog
            .call(move |c| async move { c.data_files(&name).await });
        Box::pin(async move { call.await.ok() })
    }
}

/// Seconds since the Unix epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `TIMESTAMP WITH TIME ZONE` at `secs` since the epoch, made without ICU (arithmetic on
/// `now()` needs it, and the bundled DuckDB has none).
fn at(secs: u64) -> String {
    format!("to_timestamp({secs})")
}

/// The one integer `sql` answers.
fn snapshot(conn: &Connection, sql: &str) -> Result<u64, crate::duck::DuckError> {
    let rows = conn.query_rows(sql)?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// A lake's version (its newest snapshot) and the snapshot that last changed each table.
fn recorded(history: &[catalog::SnapshotChanges], names: &changes::TableNames) -> Recorded {
    let mut out = Recorded::default();
    for s in history {
        out.version = out.version.max(s.snapshot);
        if let changes::Changed::Tables(tables) = changes::changed(&s.changes, names) {
            for t in tables {
                out.written.insert(t, s.snapshot);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_store_that_does_not_answer_is_unavailable_not_a_query_error() {
        let stalled = "IO Error: Timeout was reached error for HTTP GET to \
                       'http://127.0.0.1:34491/lake/t/main/scores/ducklake-01.parquet'";
        assert!(is_unavailable(stalled));
        assert!(is_unavailable(
            "HTTP Error: HTTP GET error on 'x' (HTTP 503)"
        ));
        assert!(!is_unavailable(
            "HTTP Error: HTTP GET error on 'x' (HTTP 404)"
        ));
        assert!(!is_unavailable(
            "Binder Error: Referenced column \"x\" not found"
        ));
    }

    #[test]
    fn catalog_connections_give_up_on_a_silent_host() {
        let kv = "host=db dbname=l".to_string();
        assert_eq!(
            with_connect_timeout(kv),
            "host=db dbname=l connect_timeout=5"
        );
        let url = "postgres://u@db/l".to_string();
        assert_eq!(
            with_connect_timeout(url),
            "postgres://u@db/l?connect_timeout=5"
        );
        let url = "postgres://u@db/l?sslmode=off".to_string();
        assert_eq!(
            with_connect_timeout(url),
            "postgres://u@db/l?sslmode=off&connect_timeout=5"
        );
        let set = "host=db connect_timeout=2".to_string();
        assert_eq!(with_connect_timeout(set.clone()), set);
    }
}
