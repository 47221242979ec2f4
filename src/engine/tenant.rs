//! Tenants: one DuckDB file per tenant in the data directory, one database instance and one
//! r2d2 pool of connections per tenant, opened on first use.
//!
//! Invariants:
//! - A tenant exists only if `<data_dir>/<tenant>.duckdb` exists: the registry never creates a
//!   database file, and an unknown tenant is never remembered.
//! - The database is opened on an executor thread ([`Tenant::pool`] blocks), never on the
//!   async runtime.
//! - `slots` has one permit per pooled connection: a query holds one while it runs, so pool
//!   checkouts never wait and one busy tenant cannot occupy every executor thread.
//! - A tenant's limits are fixed when it is first seen: its own (the tenants file's entry laid
//!   over the global settings, by the configuration) or the global ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduled_thread_pool::ScheduledThreadPool;
use tokio::sync::Semaphore;

use crate::duck::{Connection, Database, DuckError};
use crate::encode::ResultLimits;
use crate::error::GatewayError;
use crate::wire::TenantId;

/// What one tenant may use, resolved: the configuration lays a tenant's own limits over the
/// global ones before the engine sees them.
#[derive(Debug, Clone)]
pub struct TenantLimits {
    /// Queries running at once (= pooled DuckDB connections).
    pub max_queries: u32,
    /// Open streams (HTTP, SSE) and WebSocket connections at once.
    pub max_connections: usize,
    /// Queries that may wait for one of `max_queries` (more: `too_busy` at once).
    pub queue_size: usize,
    pub query_timeout: Option<Duration>,
    pub result: ResultLimits,
    /// DuckDB `threads` of the tenant's database; `None`: every core.
    pub threads: Option<u32>,
    /// DuckDB `memory_limit` of the tenant's database; `None`: DuckDB's default.
    pub memory_limit: Option<String>,
    /// DuckDB `max_temp_directory_size` (spilling); `None`: DuckDB's default (90 % of the disk).
    pub max_temp_size: Option<String>,
    /// The largest upload body (decompressed), in bytes.
    pub max_upload_bytes: u64,
    /// How long a cached result may be answered; `None`: until its tables change; zero: the
    /// tenant's results are not cached.
    pub cache_ttl: Option<Duration>,
    /// Live subscriptions at once.
    pub max_subscriptions: usize,
    /// The shortest re-run interval a subscription may ask for.
    pub min_interval: Duration,
    /// Bytes the derived tables ([`super::scratch`]) may hold.
    pub scratch_bytes: u64,
}

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
    /// gateway loads uploads from there; files are named at random and removed after).
    spool: PathBuf,
}

impl DbInit {
    /// The database-wide settings.
    fn settings_sql(&self) -> String {
        let spool = format!("{}/", self.spool.display()).replace('\'', "''");
        let mut sql = format!(
            "SET preserve_insertion_order = {}; SET allowed_directories = ['{spool}'];",
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

/// The pool's init hook: applies the settings, loads the extensions, then the sandbox, before
/// a connection is used; then each connection's own setting ([`CONNECTION_SQL`]).
///
/// The settings are database-wide and the sandbox cannot be undone, so the first connection
/// applies them (under the mutex, before any connection is handed out) and later ones find
/// them in force. An extension that cannot be loaded is logged (once per process)
/// and skipped: the database still serves, and its functions answer `extension_unavailable`.
#[derive(Debug)]
struct InitHook {
    tenant: TenantId,
    settings_sql: String,
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
            conn.execute_batch(SANDBOX_SQL)?;
            *applied = true;
        }
        // The database-wide part is done: connections of a burst get their own setting in
        // parallel, on the scheduler's threads.
        drop(applied);
        conn.execute_batch(CONNECTION_SQL)?;
        Ok(())
    }
}

/// Statements whose [`Reads`] a tenant keeps.
const READS_KEPT: u64 = 1024;

/// What a statement reads, found out at one data version.
#[derive(Debug, Clone)]
pub struct Reads {
    pub version: u64,
    /// The tables it reads (`None`: unknown).
    pub tables: Option<Vec<String>>,
    pub deterministic: bool,
}

pub struct Tenant {
    pub id: TenantId,
    path: PathBuf,
    pub limits: TenantLimits,
    /// One permit per pooled connection.
    pub slots: Arc<Semaphore>,
    /// One permit per open stream or WebSocket ([`TenantLimits::max_connections`]).
    pub connections: Arc<Semaphore>,
    /// Places for queries waiting for a slot ([`TenantLimits::queue_size`]): a waiter holds
    /// one permit, taken without waiting (none left: `too_busy`).
    pub waiting: Semaphore,
    /// Cancelled when the tenant is deleted: its queries stop with `tenant_deleted`.
    pub deleted: tokio_util::sync::CancellationToken,
    /// Held by a write (an upload, a dataset delete): writes to one tenant are serialised.
    pub writes: tokio::sync::Mutex<()>,
    /// The data version (kept in `<tenant>.version`; see [`TenantRegistry::data_version`]).
    version: std::sync::atomic::AtomicU64,
    /// The data version when this process first saw the tenant: a table the gateway has not
    /// written since counts as written then.
    opened_at: u64,
    /// For each table the gateway wrote (lower-case `schema.table`), the data version that
    /// write produced. A result computed at version `v` is current while every table it reads
    /// is at most `v` here.
    written: Mutex<HashMap<String, u64>>,
    /// Random, per [`Tenant`] value: a tenant deleted and created again starts its versions
    /// over, and its old results must never pass for new ones.
    pub incarnation: u64,
    /// Functions whose results may change on the same data ([`super::stamp`]), read from the
    /// database once.
    volatile: std::sync::OnceLock<Option<std::collections::HashSet<String>>>,
    /// What this tenant's statements may call ([`super::allowlist`]), read from the database
    /// once.
    allowlist: std::sync::OnceLock<super::allowlist::Allowlist>,
    /// Held while the allowlist is read (see [`Tenant::allowlist`]).
    allowlist_read: Mutex<()>,
    /// What a statement's stamp found out about it (see [`Tenant::known_reads`]), by its text.
    reads: moka::sync::Cache<Arc<str>, Reads>,
    /// Texts whose every-client checks passed, with the data version they passed at (see
    /// [`Tenant::is_vetted`]).
    vetted: moka::sync::Cache<Arc<str>, u64>,
    /// The data version, for those who wait for a write (live subscriptions).
    pub changes: tokio::sync::watch::Sender<u64>,
    /// The derived tables of the scratch space.
    pub scratch: Mutex<super::scratch::Scratch>,
    /// Held while a dropped derived table is made again ([`super::scratch::rederive`]).
    pub scratch_derives: Mutex<()>,
    pool: Mutex<Option<Pool>>,
    settings: Arc<DbSettings>,
    scheduler: Arc<ScheduledThreadPool>,
}

impl Tenant {
    /// Where this tenant's uploads are spooled (absolute: DuckDB's `allowed_directories`).
    pub fn spool_dir(&self) -> PathBuf {
        self.settings.spool_root.join(self.id.as_str())
    }

    /// The data version now.
    pub fn data_version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records that a write to `table` (lower-case `schema.table`) produced `version`. Called
    /// after the write committed.
    pub fn mark_written(&self, table: String, version: u64) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table, version);
    }

    /// What [`Tenant::remember_reads`] kept for `sql` at data version `version`: the tables
    /// the statement reads and whether it is deterministic do not change while the catalog
    /// does not, and every write that could change it (an upload, a delete) moves the data
    /// version. Finding them costs DuckDB two more statements (a parse to JSON and an
    /// `EXPLAIN`), 1.3 ms of the scan's 3.9 ms first data; a dashboard repeats its queries.
    pub fn known_reads(&self, sql: &str, version: u64) -> Option<Reads> {
        self.reads.get(sql).filter(|r| r.version == version)
    }

    pub fn remember_reads(&self, sql: &str, reads: Reads) {
        self.reads.insert(Arc::from(sql), reads);
    }

    /// Whether `sql` passed the checks every client's statement gets (the function allowlist on
    /// its tree and plan, lambda nesting) at data version `version`. The tree depends on the
    /// text alone and the plan on the catalog, which only a write (moving the version) changes;
    /// the checks cost DuckDB a parse and a plan to JSON, and a dashboard repeats its queries.
    pub fn is_vetted(&self, sql: &str, version: u64) -> bool {
        self.vetted.get(sql) == Some(version)
    }

    pub fn remember_vetted(&self, sql: &str, version: u64) {
        self.vetted.insert(Arc::from(sql), version);
    }

    /// The newest data version that changed one of `tables` (0 for none: a result that reads
    /// no table never changes).
    pub fn tables_version(&self, tables: &[String]) -> u64 {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        tables
            .iter()
            .map(|t| written.get(t).copied().unwrap_or(self.opened_at))
            .max()
            .unwrap_or(0)
    }

    /// Whether a result with `stamp` is still what DuckDB would answer: no table it read was
    /// written after it was admitted (unknown tables: it may have changed).
    pub fn is_current(&self, stamp: &super::stamp::Stamp) -> bool {
        stamp
            .tables
            .as_ref()
            .is_some_and(|tables| self.tables_version(tables) <= stamp.version)
    }

    /// The functions whose results may change on the same data (lower case); read from
    /// DuckDB's catalog on `conn` the first time; `None` if it could not be read (then no
    /// result counts as deterministic). Blocking: executor threads only.
    pub fn volatile_functions(
        &self,
        conn: &Connection,
    ) -> Option<&std::collections::HashSet<String>> {
        self.volatile
            .get_or_init(|| match conn.query_rows(super::stamp::FUNCTIONS_SQL) {
                Ok(rows) => Some(super::stamp::volatile_functions(rows)),
                Err(e) => {
                    tracing::warn!(tenant = %self.id, error = %e.message, "cannot read DuckDB's function stability: no result of this tenant will be reused");
                    None
                }
            })
            .as_ref()
    }

    /// What this tenant's statements may call ([`super::allowlist`]), read from DuckDB's
    /// catalog on `conn` the first time it can be (a failed read, an interrupted one say, is
    /// tried again by the next query). Blocking: executor threads only.
    pub fn allowlist(
        &self,
        conn: &Connection,
    ) -> Result<&super::allowlist::Allowlist, crate::duck::DuckError> {
        if let Some(list) = self.allowlist.get() {
            return Ok(list);
        }
        // One reader at a time: a burst of a new tenant's first queries would otherwise each
        // scan the catalog (~100 ms apiece) at once.
        let _reading = self
            .allowlist_read
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(list) = self.allowlist.get() {
            return Ok(list);
        }
        let functions = conn.query_rows(super::allowlist::FUNCTIONS_SQL)?;
        let views = conn.query_rows(super::allowlist::VIEWS_SQL)?;
        Ok(self
            .allowlist
            .get_or_init(|| super::allowlist::Allowlist::from_rows(functions).with_views(views)))
    }

    /// Closes the tenant's database (once no query holds a connection: the caller holds every
    /// slot). Later queries would open it again; the registry no longer hands this tenant out.
    pub fn close(&self) {
        *self.pool.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Whether this server loads the extension `name` into tenant databases.
    pub fn loads_extension(&self, name: &str) -> bool {
        self.settings.loads(name)
    }

    /// `message` without the server's paths (a client must not learn where files live).
    pub fn redact(&self, message: &str) -> String {
        redact(message, &self.settings.private_paths)
    }

    /// One of the tenant's pooled connections (the caller holds one of its slots, so the
    /// checkout does not wait). Blocking: executor threads only.
    ///
    /// r2d2 creates a missing connection on the registry's scheduler and waits for it up to
    /// the checkout timeout. A wait that ran out with no creation error is load (a burst of
    /// new connections on a busy machine): `too_busy`, which a client retries. A creation
    /// that failed is the server's fault: `internal`, with DuckDB's message in the log.
    pub fn connection(&self) -> Result<PooledConnection, GatewayError> {
        self.pool()?.get().map_err(|e| {
            let message = e.to_string();
            if message == CHECKOUT_TIMED_OUT {
                tracing::warn!(tenant = %self.id, "no pooled connection was created within the checkout timeout");
                GatewayError::TooBusy
            } else {
                GatewayError::internal(format!("no pooled connection: {message}"))
            }
        })
    }

    /// The tenant's pool, opening the database on first use. Blocking: executor threads only.
    pub fn pool(&self) -> Result<Pool, GatewayError> {
        let mut guard = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = guard.as_ref() {
            return Ok(pool.clone());
        }
        if !self.path.is_file() {
            return Err(GatewayError::TenantNotFound(self.id.to_string()));
        }
        let db = Database::open(&self.path).map_err(GatewayError::TenantUnavailable)?;
        let spool = self.spool_dir();
        std::fs::create_dir_all(&spool).map_err(GatewayError::internal)?;
        let init = DbInit {
            threads: self.limits.threads,
            memory_limit: self.limits.memory_limit.clone(),
            max_temp_size: self.limits.max_temp_size.clone(),
            preserve_insertion_order: self.settings.preserve_insertion_order,
            spool,
        };
        let pool = r2d2::Pool::builder()
            .max_size(self.limits.max_queries)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(self.settings.checkout_timeout)
            .thread_pool(Arc::clone(&self.scheduler))
            .connection_customizer(Box::new(InitHook {
                tenant: self.id.clone(),
                settings_sql: init.settings_sql(),
                db: Arc::clone(&self.settings),
                applied: Mutex::new(false),
            }))
            .build_unchecked(ConnectionManager { db });
        tracing::info!(tenant = %self.id, path = %self.path.display(), "opened tenant database");
        *guard = Some(pool.clone());
        Ok(pool)
    }
}

/// What r2d2's error says when a checkout waited out its timeout and no connection creation
/// failed meanwhile (with a failure, its message follows after a colon).
const CHECKOUT_TIMED_OUT: &str = "timed out waiting for connection";

/// Threads that create pooled connections, for every tenant. One was too few: a burst of
/// hundreds of new queries on one tenant waited behind each other's creation (and a slow
/// first connection of one tenant, loading its extensions, held up every other tenant).
const CREATOR_THREADS: usize = 4;

/// All tenants seen so far.
pub struct TenantRegistry {
    data_dir: PathBuf,
    settings: Arc<DbSettings>,
    defaults: TenantLimits,
    own_limits: HashMap<TenantId, TenantLimits>,
    tenants: Mutex<HashMap<TenantId, Arc<Tenant>>>,
    /// Tenants being deleted: refused by `get` until their files are gone.
    deleting: Mutex<std::collections::HashSet<TenantId>>,
    scheduler: Arc<ScheduledThreadPool>,
}

impl TenantRegistry {
    pub fn new(
        data_dir: &Path,
        settings: DbSettings,
        defaults: TenantLimits,
        own_limits: HashMap<TenantId, TenantLimits>,
    ) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            settings: Arc::new(settings),
            defaults,
            own_limits,
            tenants: Mutex::new(HashMap::new()),
            deleting: Mutex::new(Default::default()),
            scheduler: Arc::new(
                ScheduledThreadPool::builder()
                    .num_threads(CREATOR_THREADS)
                    .thread_name_pattern("r2d2-{}")
                    .build(),
            ),
        }
    }

    pub fn path_of(&self, id: &TenantId) -> PathBuf {
        self.data_dir.join(format!("{id}.duckdb"))
    }

    /// Where uploads are spooled (one directory per tenant).
    pub fn spool_root(&self) -> &Path {
        &self.settings.spool_root
    }

    /// The file that holds the tenant's data version (a decimal number).
    fn version_path(&self, id: &TenantId) -> PathBuf {
        self.data_dir.join(format!("{id}.version"))
    }

    /// The tenant's data version: 0 for a database put in place by hand, 1 once provisioned,
    /// bumped by every write the gateway makes.
    pub async fn data_version(&self, id: &TenantId) -> u64 {
        tokio::fs::read_to_string(self.version_path(id))
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Writes the data version atomically (a temporary file renamed over the old one), so a
    /// crash leaves the old version or the new one.
    pub async fn set_data_version(&self, id: &TenantId, version: u64) -> std::io::Result<()> {
        let path = self.version_path(id);
        let tmp = path.with_extension("version.tmp");
        tokio::fs::write(&tmp, format!("{version}\n")).await?;
        tokio::fs::rename(&tmp, &path).await?;
        if let Some(t) = self.loaded(id) {
            t.version
                .store(version, std::sync::atomic::Ordering::Release);
            t.changes.send_replace(version);
        }
        Ok(())
    }

    /// Every tenant in the data directory (a `<name>.duckdb` with a valid name), sorted, with
    /// its file size.
    pub async fn scan(&self) -> std::io::Result<Vec<(TenantId, u64)>> {
        let mut dir = tokio::fs::read_dir(&self.data_dir).await?;
        let mut found = Vec::new();
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".duckdb")) else {
                continue;
            };
            let (Ok(id), Ok(meta)) = (TenantId::parse(stem), entry.metadata().await) else {
                continue;
            };
            if meta.is_file() && !self.is_deleting(&id) {
                found.push((id, meta.len()));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Creates an empty database for `id` (on the calling thread: an executor's). Refuses a
    /// name that has a database already.
    pub fn create_blocking(&self, id: &TenantId) -> Result<(), GatewayError> {
        let path = self.path_of(id);
        if path.exists() {
            return Err(GatewayError::TenantExists(id.to_string()));
        }
        Database::open(&path).map_err(GatewayError::TenantUnavailable)?;
        Ok(())
    }

    /// Marks `id` as being deleted (`get` refuses it from now on); `false` if it already was.
    pub fn start_deleting(&self, id: &TenantId) -> bool {
        self.deleting_lock().insert(id.clone())
    }

    pub fn is_deleting(&self, id: &TenantId) -> bool {
        self.deleting_lock().contains(id)
    }

    /// Forgets the tenant and removes its files (database, WAL, data version); then a
    /// tenant of the same name can be created again.
    pub async fn finish_deleting(&self, id: &TenantId) -> std::io::Result<()> {
        self.lock().remove(id);
        let db = self.path_of(id);
        let wal = db.with_extension("duckdb.wal");
        let mut result = Ok(());
        for path in [db, wal, self.version_path(id)] {
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => result = Err(e),
                _ => {}
            }
        }
        self.deleting_lock().remove(id);
        result
    }

    /// The tenant if it is open already (queries have used it), without touching the disk.
    pub fn loaded(&self, id: &TenantId) -> Option<Arc<Tenant>> {
        self.lock().get(id).cloned()
    }

    fn deleting_lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<TenantId>> {
        self.deleting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tenant, if its file exists. Checks the file system without blocking the runtime.
    pub async fn get(&self, id: &TenantId) -> Result<Arc<Tenant>, GatewayError> {
        if self.is_deleting(id) {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        if let Some(t) = self.lock().get(id) {
            return Ok(Arc::clone(t));
        }
        let path = self.path_of(id);
        let exists = tokio::fs::metadata(&path)
            .await
            .map(|m| m.is_file())
            .unwrap_or(false);
        if !exists {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        let version = self.data_version(id).await;
        let tenant = Arc::clone(self.lock().entry(id.clone()).or_insert_with(|| {
            let limits = self.own_limits.get(id).unwrap_or(&self.defaults).clone();
            Arc::new(Tenant {
                id: id.clone(),
                path,
                slots: Arc::new(Semaphore::new(limits.max_queries as usize)),
                connections: Arc::new(Semaphore::new(limits.max_connections)),
                waiting: Semaphore::new(limits.queue_size),
                limits,
                deleted: Default::default(),
                writes: tokio::sync::Mutex::new(()),
                version: version.into(),
                opened_at: version,
                written: Mutex::new(HashMap::new()),
                incarnation: uuid::Uuid::new_v4().as_u64_pair().0,
                volatile: std::sync::OnceLock::new(),
                allowlist: std::sync::OnceLock::new(),
                allowlist_read: Mutex::new(()),
                reads: moka::sync::Cache::new(READS_KEPT),
                vetted: moka::sync::Cache::new(READS_KEPT),
                changes: tokio::sync::watch::Sender::new(version),
                scratch: Mutex::new(Default::default()),
                scratch_derives: Mutex::new(()),
                pool: Mutex::new(None),
                settings: Arc::clone(&self.settings),
                scheduler: Arc::clone(&self.scheduler),
            })
        }));
        Ok(tenant)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Arc<Tenant>>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
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
