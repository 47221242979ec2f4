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
//! - A tenant's limits are fixed when it is first seen: the global settings, overridden by
//!   its entry in the tenants file ([`TenantLimits::resolve`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduled_thread_pool::ScheduledThreadPool;
use tokio::sync::Semaphore;

use super::duck::{Connection, Database, DuckError};
use crate::encode::ResultLimits;
use crate::error::GatewayError;
use crate::wire::TenantId;

/// What one tenant may use. Built from the global settings ([`Config`]) and the tenant's
/// entry in the tenants file.
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
}

/// A tenant's limits as the tenants file states them: absent means "the global value", and
/// 0 means "no limit" for the timeout and result limits (as in the global settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    pub query_timeout_secs: Option<u64>,
    pub max_result_rows: Option<u64>,
    pub max_result_bytes: Option<u64>,
    pub max_queries: Option<u32>,
    pub max_connections: Option<usize>,
    pub queue_size: Option<usize>,
    pub memory_limit: Option<String>,
    pub max_temp_size: Option<String>,
    pub threads: Option<u32>,
}

impl LimitOverrides {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_queries.is_some_and(|n| !(1..=1024).contains(&n)) {
            return Err("max_queries must be between 1 and 1024".into());
        }
        if self.max_connections == Some(0) {
            return Err("max_connections must be at least 1".into());
        }
        if let Some(m) = &self.memory_limit {
            check_memory_limit(m).map_err(|e| format!("memory_limit: {e}"))?;
        }
        if let Some(m) = &self.max_temp_size {
            check_memory_limit(m).map_err(|e| format!("max_temp_size: {e}"))?;
        }
        Ok(())
    }
}

impl TenantLimits {
    /// The global limits with `o` laid over them.
    pub fn resolve(&self, o: &LimitOverrides) -> Self {
        let none_if_zero = |v: u64| (v > 0).then_some(v);
        let mut l = self.clone();
        if let Some(n) = o.max_queries {
            l.max_queries = n;
        }
        if let Some(n) = o.max_connections {
            l.max_connections = n;
        }
        if let Some(n) = o.queue_size {
            l.queue_size = n;
        }
        if let Some(s) = o.query_timeout_secs {
            l.query_timeout = none_if_zero(s).map(Duration::from_secs);
        }
        if let Some(n) = o.max_result_rows {
            l.result.max_rows = none_if_zero(n).unwrap_or(u64::MAX);
        }
        if let Some(n) = o.max_result_bytes {
            l.result.max_bytes = none_if_zero(n).unwrap_or(u64::MAX);
        }
        if let Some(t) = o.threads {
            l.threads = (t > 0).then_some(t);
        }
        if let Some(m) = &o.memory_limit {
            l.memory_limit = Some(m.clone());
        }
        if let Some(m) = &o.max_temp_size {
            l.max_temp_size = Some(m.clone());
        }
        l
    }
}

/// A bounded count of waiters: [`Queue::join`] gives a place while there is room.
#[derive(Debug)]
pub struct Queue {
    waiting: std::sync::atomic::AtomicUsize,
    capacity: usize,
}

/// A place in a [`Queue`], left when dropped.
pub struct QueuePlace<'q>(&'q Queue);

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Self {
            waiting: std::sync::atomic::AtomicUsize::new(0),
            capacity,
        }
    }

    /// A place in the queue, or `None` when it is full.
    pub fn join(&self) -> Option<QueuePlace<'_>> {
        use std::sync::atomic::Ordering;
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| QueuePlace(self))
    }
}

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Checks a DuckDB size (`4GB`, `512MiB`, `50%`) before DuckDB sees it, so that a typo fails
/// at start instead of at a tenant's first query.
pub fn check_memory_limit(m: &str) -> Result<(), String> {
    let number = m
        .trim_end()
        .trim_end_matches(|c: char| c.is_ascii_alphabetic() || c == '%');
    if number
        .trim()
        .parse::<f64>()
        .map(|v| v <= 0.0)
        .unwrap_or(true)
    {
        return Err(format!("'{m}' is not a size such as 4GB, 512MiB or 50%"));
    }
    Ok(())
}

/// Database-wide settings every tenant shares.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub preserve_insertion_order: bool,
    pub checkout_timeout: Duration,
}

/// The settings one tenant's database opens with.
#[derive(Debug, Clone)]
struct DbInit {
    threads: Option<u32>,
    memory_limit: Option<String>,
    max_temp_size: Option<String>,
    preserve_insertion_order: bool,
}

impl DbInit {
    /// The database-wide settings, then the sandbox: no files or URLs outside the database, no
    /// extension installs or loads, and the configuration locked so a query cannot undo any
    /// of it.
    fn init_sql(&self) -> String {
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
        sql.push_str(
            " SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;\
             SET GLOBAL explain_output = 'all';\
             SET enable_external_access = false; SET lock_configuration = true;",
        );
        sql
    }
}

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

/// The pool's init hook: applies [`DbSettings`] and the sandbox before a connection is used.
///
/// The settings are database-wide and the last one locks the configuration, so the first
/// connection applies them (under the lock, before any connection is handed out) and later
/// ones find them in force.
#[derive(Debug)]
struct InitHook {
    sql: String,
    applied: Mutex<bool>,
}

impl r2d2::CustomizeConnection<Connection, DuckError> for InitHook {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), DuckError> {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        if !*applied {
            conn.execute_batch(&self.sql)?;
            *applied = true;
        }
        Ok(())
    }
}

pub struct Tenant {
    pub id: TenantId,
    path: PathBuf,
    pub limits: TenantLimits,
    /// One permit per pooled connection.
    pub slots: Arc<Semaphore>,
    /// One permit per open stream or WebSocket ([`TenantLimits::max_connections`]).
    pub connections: Arc<Semaphore>,
    /// Queries waiting for a slot now ([`TenantLimits::queue_size`]).
    pub waiting: Queue,
    pool: Mutex<Option<Pool>>,
    settings: Arc<DbSettings>,
    scheduler: Arc<ScheduledThreadPool>,
}

impl Tenant {
    /// The tenant's pool, opening the database on first use. Blocking: executor threads only.
    pub fn pool(&self) -> Result<Pool, GatewayError> {
        let mut guard = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = guard.as_ref() {
            return Ok(pool.clone());
        }
        if !self.path.is_file() {
            return Err(GatewayError::TenantNotFound(self.id.to_string()));
        }
        let db = Database::open(&self.path, &[]).map_err(GatewayError::TenantUnavailable)?;
        let init = DbInit {
            threads: self.limits.threads,
            memory_limit: self.limits.memory_limit.clone(),
            max_temp_size: self.limits.max_temp_size.clone(),
            preserve_insertion_order: self.settings.preserve_insertion_order,
        };
        let pool = r2d2::Pool::builder()
            .max_size(self.limits.max_queries)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(self.settings.checkout_timeout)
            .thread_pool(Arc::clone(&self.scheduler))
            .connection_customizer(Box::new(InitHook {
                sql: init.init_sql(),
                applied: Mutex::new(false),
            }))
            .build_unchecked(ConnectionManager { db });
        tracing::info!(tenant = %self.id, path = %self.path.display(), "opened tenant database");
        *guard = Some(pool.clone());
        Ok(pool)
    }
}

/// All tenants seen so far.
pub struct TenantRegistry {
    data_dir: PathBuf,
    settings: Arc<DbSettings>,
    defaults: TenantLimits,
    overrides: HashMap<TenantId, LimitOverrides>,
    tenants: Mutex<HashMap<TenantId, Arc<Tenant>>>,
    scheduler: Arc<ScheduledThreadPool>,
}

impl TenantRegistry {
    pub fn new(
        data_dir: &Path,
        settings: DbSettings,
        defaults: TenantLimits,
        overrides: HashMap<TenantId, LimitOverrides>,
    ) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            settings: Arc::new(settings),
            defaults,
            overrides,
            tenants: Mutex::new(HashMap::new()),
            scheduler: Arc::new(
                ScheduledThreadPool::builder()
                    .num_threads(1)
                    .thread_name_pattern("r2d2-{}")
                    .build(),
            ),
        }
    }

    pub fn path_of(&self, id: &TenantId) -> PathBuf {
        self.data_dir.join(format!("{id}.duckdb"))
    }

    /// The tenant, if its file exists. Checks the file system without blocking the runtime.
    pub async fn get(&self, id: &TenantId) -> Result<Arc<Tenant>, GatewayError> {
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
        let tenant = Arc::clone(self.lock().entry(id.clone()).or_insert_with(|| {
            let limits = match self.overrides.get(id) {
                Some(o) => self.defaults.resolve(o),
                None => self.defaults.clone(),
            };
            Arc::new(Tenant {
                id: id.clone(),
                path,
                slots: Arc::new(Semaphore::new(limits.max_queries as usize)),
                connections: Arc::new(Semaphore::new(limits.max_connections)),
                waiting: Queue::new(limits.queue_size),
                limits,
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
