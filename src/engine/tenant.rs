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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scheduled_thread_pool::ScheduledThreadPool;
use tokio::sync::Semaphore;

use super::duck::{Connection, Database, DuckError};
use crate::error::GatewayError;
use crate::wire::TenantId;

/// Per-connection set-up run by the pool's init hook.
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub threads: Option<u32>,
    pub memory_limit: Option<String>,
    pub preserve_insertion_order: bool,
    pub pool_size: u32,
    pub checkout_timeout: Duration,
}

impl DbSettings {
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
        sql.push_str(
            " SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;\
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
    /// One permit per pooled connection.
    pub slots: Arc<Semaphore>,
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
        let pool = r2d2::Pool::builder()
            .max_size(self.settings.pool_size)
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(self.settings.checkout_timeout)
            .thread_pool(Arc::clone(&self.scheduler))
            .connection_customizer(Box::new(InitHook {
                sql: self.settings.init_sql(),
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
    tenants: Mutex<HashMap<TenantId, Arc<Tenant>>>,
    scheduler: Arc<ScheduledThreadPool>,
}

impl TenantRegistry {
    pub fn new(data_dir: &Path, settings: DbSettings) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            settings: Arc::new(settings),
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
            Arc::new(Tenant {
                id: id.clone(),
                path,
                slots: Arc::new(Semaphore::new(self.settings.pool_size as usize)),
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
