//! [`Tenant`]: one tenant as the engine sees it, a composition of parts that each do one
//! thing: its [`Admission`] slots, its [`DataVersion`], its [`Memo`] of statements and
//! catalog, its [`ScratchSpace`] and its [`TenantPool`] (the database, opened through the
//! engine's [`TenantStore`](super::store::TenantStore)). The registry
//! ([`super::registry`]) hands tenants out; this file only puts the parts together.
//!
//! Invariants:
//! - A tenant's limits are fixed when it is first seen: its own (the tenants file's entry laid
//!   over the global settings, by the configuration) or the global ones.
//! - A [`Tenant`] value is one incarnation: a tenant deleted and created again is a new value
//!   with a new random [`Tenant::incarnation`], so its old results never pass for new ones.
//! - Per query, the methods here are plain delegations: an atomic load for the version, the
//!   parts' own locks, no dynamic dispatch.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use super::admission::Admission;
use super::allowlist::Allowlist;
use super::memo::Memo;
use super::pool::{PoolLimits, PooledConnection, Pools, TenantPool};
use super::scratch::ScratchSpace;
use super::stamp::Stamp;
use super::store::{DataVersion, Recorded, TenantStore};
use crate::duck::{Connection, DuckError};
use crate::encode::ResultLimits;
use crate::error::GatewayError;
use crate::wire::TenantId;

pub use super::memo::Reads;
pub use super::pool::missing_extension;

/// What one tenant may use, resolved: the configuration lays a tenant's own limits over the
/// global ones before the engine sees them.
#[derive(Debug, Clone)]
pub struct TenantLimits {
    /// Queries running at once (= pooled DuckDB connections).
    pub pool_size: u32,
    /// Open streams (HTTP, SSE) and WebSocket connections at once.
    pub max_streams: usize,
    /// Queries that may wait for one of `pool_size` (more: `too_busy` at once).
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

pub struct Tenant {
    pub id: TenantId,
    pub limits: TenantLimits,
    /// Query slots, stream slots and waiting places.
    pub admission: Admission,
    /// Cancelled when the tenant is deleted: its queries stop with `tenant_deleted`.
    pub deleted: tokio_util::sync::CancellationToken,
    /// Held by a write (an upload, a dataset delete): writes to one tenant are serialised.
    pub writes: tokio::sync::Mutex<()>,
    /// Random, per [`Tenant`] value: a tenant deleted and created again starts its versions
    /// over, and its old results must never pass for new ones.
    pub incarnation: u64,
    version: DataVersion,
    memo: Memo,
    /// The derived tables of the scratch space.
    pub scratch: ScratchSpace,
    /// Writes since the storage's last upkeep ([`super::maintenance`]).
    pub upkeep: super::upkeep::Upkeep,
    /// When a request last asked for this tenant (milliseconds after [`EPOCH`]).
    last_used: AtomicU64,
    db: TenantPool,
}

/// What [`Tenant::touch`] counts from.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now_ms() -> u64 {
    u64::try_from(EPOCH.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Tenant {
    /// A tenant first seen now, with what its store recorded of its data.
    pub fn new(
        id: TenantId,
        limits: TenantLimits,
        recorded: Recorded,
        store: Arc<dyn TenantStore>,
        pools: Arc<Pools>,
    ) -> Self {
        let pool_limits = PoolLimits {
            size: limits.pool_size,
            threads: limits.threads,
            memory_limit: limits.memory_limit.clone(),
            max_temp_size: limits.max_temp_size.clone(),
        };
        Self {
            admission: Admission::new(limits.pool_size, limits.max_streams, limits.queue_size),
            deleted: Default::default(),
            writes: tokio::sync::Mutex::new(()),
            incarnation: uuid::Uuid::new_v4().as_u64_pair().0,
            version: DataVersion::new(recorded),
            memo: Memo::default(),
            scratch: ScratchSpace::default(),
            upkeep: Default::default(),
            last_used: AtomicU64::new(now_ms()),
            db: TenantPool::new(id.clone(), pool_limits, store, pools),
            id,
            limits,
        }
    }

    /// A request asked for this tenant now.
    pub fn touch(&self) {
        self.last_used.fetch_max(now_ms(), Ordering::Relaxed);
    }

    /// How long since a request last asked for this tenant.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.last_used.load(Ordering::Relaxed)))
    }

    /// Where this tenant's uploads are spooled (absolute: DuckDB's `allowed_directories`).
    pub fn spool_dir(&self) -> PathBuf {
        self.db.spool_dir()
    }

    /// `version` of this tenant is committed, changing `tables` (`None`: anything), as its
    /// store reports it ([`super::store::ChangeSink::changed`]).
    pub fn changed(&self, version: u64, tables: Option<&[String]>) {
        match tables {
            // Maintenance: the same rows in other files.
            Some([]) => {}
            Some(tables) => {
                self.upkeep.wrote();
                for t in tables {
                    self.mark_written(t.clone(), version);
                }
            }
            None => {
                self.upkeep.wrote();
                self.mark_all_written(version);
            }
        }
        self.publish_version(version);
    }

    /// The data version now.
    pub fn data_version(&self) -> u64 {
        self.version.get()
    }

    /// Makes `version` the data version (after the store recorded it) and wakes whoever waits
    /// for a write.
    pub fn publish_version(&self, version: u64) {
        self.version.publish(version);
    }

    /// A watch on the data version (live subscriptions wait on it).
    pub fn watch_version(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Records that a write to `table` (lower-case `schema.table`) produced `version`. Called
    /// after the write committed.
    pub fn mark_written(&self, table: String, version: u64) {
        self.version.mark_written(table, version);
    }

    /// Records that `version` changed what cannot be told apart (every table counts as
    /// written at it).
    pub fn mark_all_written(&self, version: u64) {
        self.version.mark_all_written(version);
    }

    /// The data version a transaction on `conn` reads, when the database names its own
    /// (a lake's snapshot); `None`: the gateway numbers versions. Blocking.
    pub fn read_version(&self, conn: &Connection) -> Result<Option<u64>, GatewayError> {
        self.version_from(conn, |v| &v.read)
    }

    /// The data version the last commit on `conn` made, when the database names its own.
    /// Blocking.
    pub fn committed_version(&self, conn: &Connection) -> Result<Option<u64>, GatewayError> {
        self.version_from(conn, |v| &v.committed)
    }

    fn version_from(
        &self,
        conn: &Connection,
        which: impl Fn(&super::store::VersionSql) -> &String,
    ) -> Result<Option<u64>, GatewayError> {
        let Some(versions) = self.db.versions()? else {
            return Ok(None);
        };
        let rows = conn
            .query_rows(which(&versions))
            .map_err(|e| self.own_failure(e))?;
        Ok(rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok()))
    }

    /// A failure of the gateway's own SQL: `storage_unavailable` when the store could not be
    /// reached, else `internal`.
    fn own_failure(&self, e: DuckError) -> GatewayError {
        if self.db.unreachable(&e.message) {
            GatewayError::storage(e)
        } else {
            GatewayError::internal(e)
        }
    }

    /// Whether the tenant's database keeps indexes (a lake keeps none). Blocking.
    pub fn keeps_indexes(&self) -> Result<bool, GatewayError> {
        self.db.keeps_indexes()
    }

    /// Whether DuckDB's `message` says the tenant's store could not be reached.
    pub fn storage_unreachable(&self, message: &str) -> bool {
        self.db.unreachable(message)
    }

    /// The newest data version that changed one of `tables` (0 for none: a result that reads
    /// no table never changes).
    pub fn tables_version(&self, tables: &[String]) -> u64 {
        self.version.tables_version(tables)
    }

    /// Whether a result with `stamp` is still what DuckDB would answer: no table it read was
    /// written after it was admitted (unknown tables: it may have changed).
    pub fn is_current(&self, stamp: &Stamp) -> bool {
        stamp
            .tables
            .as_ref()
            .is_some_and(|tables| self.tables_version(tables) <= stamp.version)
    }

    /// What the tenant's [`Memo`] kept for `sql` at data version `version`.
    pub fn known_reads(&self, sql: &str, version: u64) -> Option<Reads> {
        self.memo.known_reads(sql, version)
    }

    pub fn remember_reads(&self, sql: &str, reads: Reads) {
        self.memo.remember_reads(sql, reads);
    }

    /// Whether `sql` passed every client's checks at data version `version` ([`Memo`]).
    pub fn is_vetted(&self, sql: &str, version: u64) -> bool {
        self.memo.is_vetted(sql, version)
    }

    pub fn remember_vetted(&self, sql: &str, version: u64) {
        self.memo.remember_vetted(sql, version);
    }

    /// The functions whose results may change on the same data ([`Memo::volatile_functions`]).
    /// Blocking: executor threads only.
    pub fn volatile_functions(&self, conn: &Connection) -> Option<&HashSet<String>> {
        self.memo.volatile_functions(conn, &self.id)
    }

    /// What this tenant's statements may call ([`Memo::allowlist`]). Blocking: executor
    /// threads only.
    pub fn allowlist(&self, conn: &Connection) -> Result<&Allowlist, DuckError> {
        self.memo.allowlist(conn)
    }

    /// Closes the tenant's database (once no query holds a connection: the caller holds every
    /// slot). Later queries would open it again; the registry no longer hands this tenant out.
    pub fn close(&self) {
        self.db.close();
    }

    /// Whether this server loads the extension `name` into tenant databases.
    pub fn loads_extension(&self, name: &str) -> bool {
        self.db.settings().loads(name)
    }

    /// `message` without the server's paths (a client must not learn where files live).
    pub fn redact(&self, message: &str) -> String {
        super::pool::redact(message, &self.db.settings().private_paths)
    }

    /// Runs the gateway's own `sql` (storage upkeep) on a pooled connection. Blocking.
    pub fn run_batch(&self, sql: &str) -> Result<(), GatewayError> {
        self.connection()?
            .execute_batch(sql)
            .map_err(|e| self.own_failure(e))
    }

    /// One of the tenant's pooled connections ([`TenantPool::connection`]). Blocking:
    /// executor threads only.
    pub fn connection(&self) -> Result<PooledConnection, GatewayError> {
        self.db.connection()
    }

    /// Loads the PostgreSQL catalog into the tenant's database when `sql` names it
    /// ([`TenantPool::load_pg_catalog`]). Blocking: executor threads only.
    pub fn load_pg_catalog(&self, conn: &Connection, sql: &str) -> Result<(), GatewayError> {
        self.db.load_pg_catalog(conn, sql)
    }
}

impl super::scratch::Owner for Tenant {
    fn scratch(&self) -> &ScratchSpace {
        &self.scratch
    }

    fn data_version(&self) -> u64 {
        self.version.get()
    }

    fn tenant_id(&self) -> &TenantId {
        &self.id
    }

    fn scratch_bytes(&self) -> u64 {
        self.limits.scratch_bytes
    }
}
