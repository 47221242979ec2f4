//! Tenants' connection pools: one r2d2 pool per tenant database, opened on first use through
//! the tenant's store, with an init hook that applies the database settings, loads the
//! extensions and then the sandbox before any connection is used.
//!
//! Invariants:
//! - A database is opened on an executor thread ([`TenantPool::get`] blocks), never on the
//!   async runtime.
//! - No connection is handed out before its database's settings, extensions and sandbox are
//!   in force (the first connection applies them under a mutex; [`InitHook`]).
//! - The only places outside the database DuckDB may read are the tenant's spool directory
//!   and what its store names (a lake's data prefix) (`allowed_directories`); no query can
//!   change a setting, and clients cannot call a file reader (the allowlist).
//! - Connections are created on [`CREATOR_THREADS`] threads shared by every tenant; a
//!   checkout that times out without a creation error is `too_busy`.
//! - No message to a client names a server path ([`redact`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduled_thread_pool::ScheduledThreadPool;

use super::pg_catalog;
use super::store::{Opened, TenantStore, VersionSql};
use crate::duck::{Connection, Database, DuckError};
use crate::error::GatewayError;
use crate::wire::TenantId;

/// The extension DuckDB names for a function or type it does not have ("… is not in the
/// catalog, but it exists in the spatial extension.").
pub fn missing_extension(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("but it exists in the ")?;
    let (name, _) = rest.split_once(" extension")?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(name)
}

/// `message` with every path of `private` (longest first) replaced by `<server path>`.
pub fn redact(message: &str, private: &[String]) -> String {
    let mut out = message.to_string();
    for p in private {
        out = out.replace(p.as_str(), "<server path>");
    }
    out
}

/// Database-wide settings every tenant shares.
#[derive(Debug)]
pub struct DbSettings {
    pub preserve_insertion_order: bool,
    pub checkout_timeout: Duration,
    /// Extensions every database loads (before the sandbox).
    pub extensions: Vec<String>,
    /// A local repository for them; `None`: DuckDB's official one.
    pub extension_repository: Option<PathBuf>,
    /// Where DuckDB keeps installed extensions; `None`: its default (`~/.duckdb/extensions`).
    pub extension_directory: Option<PathBuf>,
    /// Extensions that failed to load: each is warned about once per process, not per tenant.
    pub missing_extensions: Mutex<std::collections::HashSet<String>>,
    /// Server paths (the data directory, the home directory, the extension repository) that
    /// no message to a client may name, longest first.
    pub private_paths: Vec<String>,
    /// `<data_dir>/.spool`, absolute: one directory per tenant for uploads in flight.
    pub spool_root: PathBuf,
}

impl DbSettings {
    /// `INSTALL` of one extension (from the configured repository) into DuckDB's extension
    /// directory (`extension_directory`, if configured, first).
    fn install_sql(&self, name: &str) -> String {
        let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "''"));
        let dir = match &self.extension_directory {
            Some(d) => format!("SET extension_directory = {};", quote(d)),
            None => String::new(),
        };
        match &self.extension_repository {
            Some(repo) => format!("{dir} INSTALL {name} FROM {};", quote(repo)),
            None => format!("{dir} INSTALL {name};"),
        }
    }

    /// Installs (best effort: an extension installed earlier, even from another repository,
    /// still loads) and loads `name`; the errors of both when it cannot be loaded.
    fn load(&self, conn: &Connection, name: &str) -> Result<(), String> {
        let installed = conn.execute_batch(&self.install_sql(name));
        conn.execute_batch(&format!("LOAD {name};"))
            .map_err(|load| match installed {
                Ok(()) => load.message,
                Err(install) => format!("{}; then: {}", install.message, load.message),
            })
    }

    /// Whether `name` is an extension the server loads (or tried to).
    pub fn loads(&self, name: &str) -> bool {
        self.extensions.iter().any(|e| e.eq_ignore_ascii_case(name))
    }
}

/// The settings one tenant's database opens with.
#[derive(Debug, Clone)]
struct DbInit {
    threads: Option<u32>,
    memory_limit: Option<String>,
    max_temp_size: Option<String>,
    preserve_insertion_order: bool,
    /// The tenant's spool directory: the one place outside the database DuckDB may read (the
    /// gateway loads uploads from there; files are named at random and removed after), with
    /// the store's own data places ([`Opened::readable`]).
    spool: PathBuf,
    readable: Vec<String>,
}

impl DbInit {
    /// The database-wide settings.
    fn settings_sql(&self) -> String {
        let mut sql = format!(
            "SET preserve_insertion_order = {};",
            self.preserve_insertion_order
        );
        if let Some(t) = self.threads {
            sql.push_str(&format!(" SET threads = {t};"));
        }
        if let Some(m) = &self.memory_limit {
            sql.push_str(&format!(" SET memory_limit = '{}';", m.replace('\'', "''")));
        }
        if let Some(m) = &self.max_temp_size {
            sql.push_str(&format!(
                " SET max_temp_directory_size = '{}';",
                m.replace('\'', "''")
            ));
        }
        sql.push_str(" SET GLOBAL explain_output = 'all';");
        // DuckDB tracks a query's progress only with its progress bar on (printing stays off):
        // what `progress` lines read (docs/BENCHMARKS.md measures the cost).
        sql.push_str(" SET enable_progress_bar = true; SET enable_progress_bar_print = false;");
        sql
    }

    /// Where DuckDB may still read and write once the sandbox is on: the spool directory and
    /// the store's places. Set after the extensions load: DuckDB resolves each entry with the
    /// file system that handles it, and `s3://` has none before httpfs.
    fn allowed_sql(&self) -> String {
        let quote = |p: &str| format!("'{}'", p.replace('\'', "''"));
        let mut allowed = vec![quote(&format!("{}/", self.spool.display()))];
        allowed.extend(self.readable.iter().map(|p| quote(p)));
        format!("SET allowed_directories = [{}];", allowed.join(", "))
    }
}

/// The sandbox, applied after the extensions are loaded: no files or URLs outside the
/// database (DuckDB refuses to turn external access back on while the database is open), no
/// extension installs or loads. No query can change settings: only statements DuckDB types as
/// `SELECT` or `EXPLAIN` run (`SET`, `RESET` and `PRAGMA` are refused before they run).
///
/// The configuration is not locked (`lock_configuration`): DuckDB's lock also refuses the
/// per-connection [`CONNECTION_SQL`], which every pooled connection needs.
const SANDBOX_SQL: &str = "SET autoinstall_known_extensions = false; \
    SET autoload_known_extensions = false; SET enable_external_access = false;";

/// Applied to every pooled connection: DuckDB's buffer of chunks produced ahead of a streaming
/// result's reader (`streaming_buffer_size`, a per-connection setting) at 64 KiB instead of
/// its 976 KiB. The executor reads chunks as fast as the client takes them, so the buffer only
/// holds what a slow reader has not taken yet: 1.6 MiB of heap per running stream at the
/// default, 0.4 MiB at 64 KiB, with the same rows/s (docs/BENCHMARKS.md).
const CONNECTION_SQL: &str = "SET streaming_buffer_size = '64KiB';";

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Hands out connections to one tenant's database.
pub struct ConnectionManager {
    db: Arc<Database>,
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = Connection;
    type Error = DuckError;

    fn connect(&self) -> Result<Connection, DuckError> {
        self.db.connect()
    }

    fn is_valid(&self, _conn: &mut Connection) -> Result<(), DuckError> {
        // A DuckDB connection is in-process: it cannot go stale the way a socket can.
        Ok(())
    }

    fn has_broken(&self, _conn: &mut Connection) -> bool {
        false
    }
}

/// The pool's init hook: applies the settings, loads the extensions, runs the store's setup,
/// then the sandbox, before a connection is used; then each connection's own settings
/// ([`CONNECTION_SQL`], the store's).
///
/// The settings are database-wide and the sandbox cannot be undone, so the first connection
/// applies them (under the mutex, before any connection is handed out) and later ones find
/// them in force. An extension that cannot be loaded is logged (once per process)
/// and skipped: the database still serves, and its functions answer `extension_unavailable`.
#[derive(Debug)]
struct InitHook {
    tenant: TenantId,
    settings_sql: String,
    /// `allowed_directories` ([`DbInit::allowed_sql`]), after the extensions and the setup.
    allowed_sql: String,
    /// The store's database-wide SQL ([`Opened::setup_sql`]), before the sandbox.
    setup_sql: Option<String>,
    /// The store's per-connection SQL ([`Opened::connection_sql`]).
    connection_sql: Option<String>,
    db: Arc<DbSettings>,
    applied: Mutex<bool>,
}

impl r2d2::CustomizeConnection<Connection, DuckError> for InitHook {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), DuckError> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if !*applied {
            conn.execute_batch(&self.settings_sql)?;
            for name in &self.db.extensions {
                // One failure is enough: later tenants do not wait for it again (an INSTALL
                // from an unreachable repository can take seconds).
                let known_missing = self
                    .db
                    .missing_extensions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(name);
                if known_missing {
                    continue;
                }
                if let Err(e) = self.db.load(conn, name) {
                    let mut missing = self
                        .db
                        .missing_extensions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    if missing.insert(name.clone()) {
                        tracing::warn!(
                            extension = %name,
                            tenant = %self.tenant,
                            error = %e,
                            "cannot load a DuckDB extension: its functions will answer \
                             extension_unavailable (set --extension-repository)"
                        );
                    }
                }
            }
            if let Some(sql) = &self.setup_sql {
                conn.execute_batch(sql)?;
            }
            conn.execute_batch(&self.allowed_sql)?;
            conn.execute_batch(SANDBOX_SQL)?;
            *applied = true;
        }
        // The database-wide part is done: connections of a burst get their own setting in
        // parallel, on the scheduler's threads.
        drop(applied);
        conn.execute_batch(CONNECTION_SQL)?;
        if let Some(sql) = &self.connection_sql {
            conn.execute_batch(sql)?;
        }
        Ok(())
    }
}

/// What r2d2's error says when a checkout waited out its timeout and no connection creation
/// failed meanwhile (with a failure, its message follows after a colon).
const CHECKOUT_TIMED_OUT: &str = "timed out waiting for connection";

/// Threads that create pooled connections, for every tenant. One was too few: a burst of
/// hundreds of new queries on one tenant waited behind each other's creation (and a slow
/// first connection of one tenant, loading its extensions, held up every other tenant).
const CREATOR_THREADS: usize = 4;

/// What every tenant's pool is built with: the shared settings and the threads that create
/// connections.
pub struct Pools {
    settings: Arc<DbSettings>,
    scheduler: Arc<ScheduledThreadPool>,
}

impl Pools {
    pub fn new(settings: DbSettings) -> Self {
        Self {
            settings: Arc::new(settings),
            scheduler: Arc::new(
                ScheduledThreadPool::builder()
                    .num_threads(CREATOR_THREADS)
                    .thread_name_pattern("r2d2-{}")
                    .build(),
            ),
        }
    }

    pub fn settings(&self) -> &DbSettings {
        &self.settings
    }
}

/// What one tenant's pool is sized and its database set with (from the tenant's limits).
#[derive(Debug, Clone)]
pub struct PoolLimits {
    /// Pooled connections (= the tenant's query slots).
    pub size: u32,
    /// DuckDB `threads`; `None`: every core.
    pub threads: Option<u32>,
    /// DuckDB `memory_limit`; `None`: DuckDB's default.
    pub memory_limit: Option<String>,
    /// DuckDB `max_temp_directory_size`; `None`: DuckDB's default.
    pub max_temp_size: Option<String>,
}

/// One tenant's pool: opened on first use, closed when the tenant is deleted.
pub struct TenantPool {
    id: TenantId,
    limits: PoolLimits,
    store: Arc<dyn TenantStore>,
    pools: Arc<Pools>,
    pool: Mutex<Option<Open>>,
}

/// An opened database's pool and what its store said of it.
#[derive(Clone)]
struct Open {
    pool: Pool,
    versions: Option<VersionSql>,
    indexes: bool,
    /// Whether this database has the PostgreSQL catalog ([`super::pg_catalog`]).
    pg_catalog: Arc<pg_catalog::Loaded>,
}

impl TenantPool {
    pub fn new(
        id: TenantId,
        limits: PoolLimits,
        store: Arc<dyn TenantStore>,
        pools: Arc<Pools>,
    ) -> Self {
        Self {
            id,
            limits,
            store,
            pools,
            pool: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &DbSettings {
        &self.pools.settings
    }

    /// Where this tenant's uploads are spooled (absolute: DuckDB's `allowed_directories`).
    pub fn spool_dir(&self) -> PathBuf {
        self.pools.settings.spool_root.join(self.id.as_str())
    }

    /// One pooled connection (the caller holds one of the tenant's slots, so the checkout
    /// does not wait). Blocking: executor threads only.
    ///
    /// r2d2 creates a missing connection on the shared scheduler and waits for it up to the
    /// checkout timeout. A wait that ran out with no creation error is load (a burst of new
    /// connections on a busy machine): `too_busy`, which a client retries. A creation that
    /// failed is the server's fault: `internal`, with DuckDB's message in the log.
    pub fn connection(&self) -> Result<PooledConnection, GatewayError> {
        self.get()?.pool.get().map_err(|e| {
            let message = e.to_string();
            if message == CHECKOUT_TIMED_OUT {
                tracing::warn!(tenant = %self.id, "no pooled connection was created within the checkout timeout");
                GatewayError::TooBusy
            } else if self.store.unavailable(&message) {
                GatewayError::storage(format!("no pooled connection: {message}"))
            } else {
                GatewayError::internal(format!("no pooled connection: {message}"))
            }
        })
    }

    /// How the database names its data version (`None`: the gateway numbers versions).
    /// Blocking: opens the database if it is not open.
    pub fn versions(&self) -> Result<Option<VersionSql>, GatewayError> {
        Ok(self.get()?.versions)
    }

    /// Whether the database keeps indexes. Blocking: opens the database if it is not open.
    pub fn keeps_indexes(&self) -> Result<bool, GatewayError> {
        Ok(self.get()?.indexes)
    }

    /// Loads the PostgreSQL catalog into the database of `conn` (one of this pool's) when
    /// `sql` names it ([`pg_catalog::load_for`]). Blocking: executor threads only.
    pub fn load_pg_catalog(&self, conn: &Connection, sql: &str) -> Result<(), GatewayError> {
        let loaded = self.get()?.pg_catalog;
        pg_catalog::load_for(conn, &loaded, sql).map_err(GatewayError::internal)
    }

    /// Whether DuckDB's `message` says the tenant's store could not be reached.
    pub fn unreachable(&self, message: &str) -> bool {
        self.store.unavailable(message)
    }

    /// The pool, opening the database on first use. Blocking: executor threads only.
    fn get(&self) -> Result<Open, GatewayError> {
        let mut guard = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = guard.as_ref() {
            return Ok(open.clone());
        }
        let opened = self.store.open(&self.id)?;
        let spool = self.spool_dir();
        std::fs::create_dir_all(&spool).map_err(GatewayError::internal)?;
        let open = Open {
            versions: opened.versions.clone(),
            indexes: opened.indexes,
            pg_catalog: Default::default(),
            pool: self.build(opened, spool),
        };
        *guard = Some(open.clone());
        Ok(open)
    }

    /// A pool on the opened database (connections are created when first asked for).
    fn build(&self, opened: Opened, spool: PathBuf) -> Pool {
        let settings = &self.pools.settings;
        let init = DbInit {
            threads: self.limits.threads,
            memory_limit: self.limits.memory_limit.clone(),
            max_temp_size: self.limits.max_temp_size.clone(),
            preserve_insertion_order: settings.preserve_insertion_order,
            spool,
            readable: opened.readable,
        };
        r2d2::Pool::builder()
            .max_size(self.limits.size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(settings.checkout_timeout)
            .thread_pool(Arc::clone(&self.pools.scheduler))
            .connection_customizer(Box::new(InitHook {
                tenant: self.id.clone(),
                settings_sql: init.settings_sql(),
                allowed_sql: init.allowed_sql(),
                setup_sql: opened.setup_sql,
                connection_sql: opened.connection_sql,
                db: Arc::clone(settings),
                applied: Mutex::new(false),
            }))
            .build_unchecked(ConnectionManager { db: opened.db })
    }

    /// Closes the database (once no query holds a connection: the caller holds every slot).
    /// A later [`TenantPool::get`] would open it again.
    pub fn close(&self) {
        *self.pool.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_are_redacted_longest_first() {
        let private = vec!["/srv/data/tenants".to_string(), "/srv/data".to_string()];
        assert_eq!(
            redact(
                r#"IO Error: Cannot open "/srv/data/tenants/acme.duckdb" or /srv/data/x"#,
                &private
            ),
            r#"IO Error: Cannot open "<server path>/acme.duckdb" or <server path>/x"#
        );
        assert_eq!(redact("no paths here", &private), "no paths here");
    }
}
