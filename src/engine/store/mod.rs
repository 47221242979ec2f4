//! Where tenants' data lives: [`TenantStore`], the one seam between the engine and storage.
//! Everything above it (admission, the executor, the cache, subscriptions, transports) sees
//! a tenant as a DuckDB database and a data version, never as files.
//!
//! Implementations: [`LocalFiles`] (one DuckDB file per tenant in the data directory, the
//! default) and [`LakeStore`] (each tenant a DuckLake: its catalog a schema in PostgreSQL, its
//! data Parquet files under its own prefix of object storage or a shared directory).
//!
//! Invariants (every implementation keeps them):
//! - A data version never goes back, and a write's version is recorded before the write is
//!   answered: a client that saw version `v` never reads data older than `v` again.
//! - A tenant that does not exist is not created by reading it: only [`TenantStore::create`]
//!   makes one.
//! - Blocking methods run on executor threads only; the others never block the runtime.

pub mod lake;
pub mod local;
pub mod version;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::duck::Database;
use crate::error::GatewayError;
use crate::wire::TenantId;

pub use lake::{LakeSettings, LakeStore, S3Settings};
pub use local::LocalFiles;
pub use version::DataVersion;

/// A tenant's database as its store opened it, with what the pool runs on it before use.
pub struct Opened {
    pub db: Arc<Database>,
    /// Database-wide SQL the first connection runs after the extensions load and before the
    /// sandbox shuts external access (DuckLake: `ATTACH 'ducklake:postgres:…' AS <tenant>
    /// (DATA_PATH 's3://…')`); `None` for a local file.
    pub setup_sql: Option<String>,
    /// SQL every pooled connection runs once (DuckLake: `USE <tenant>`, a per-connection
    /// setting); `None` for a local file.
    pub connection_sql: Option<String>,
    /// Places outside the database that DuckDB itself must read once the sandbox is on (a
    /// lake's data prefix), added to `allowed_directories`. Clients never name them: every
    /// file reader is refused by the allowlist, in the parse tree and in the bound plan.
    pub readable: Vec<String>,
    /// How the database names its own data version; `None`: the gateway numbers versions.
    pub versions: Option<VersionSql>,
    /// Whether the database keeps indexes (DuckLake has none: no R-tree on upload).
    pub indexes: bool,
}

/// SQL that reads a database's own data version (DuckLake: its snapshot id), each answering
/// one row with one column: the version as text.
#[derive(Debug, Clone)]
pub struct VersionSql {
    /// The version a transaction reads: run first inside a query's transaction, so that its
    /// stamp names exactly the data the query saw.
    pub read: String,
    /// The version this connection's last commit made: run after a write commits.
    pub committed: String,
}

/// Held while a tenant is written; dropping it lets the next writer in (on any replica).
pub type WriteLock = Box<dyn Send + Sync>;

/// Where a store reports writes it learns of from elsewhere (another replica's commits): the
/// registry, which updates the tenants it has loaded.
pub trait ChangeSink: Send + Sync {
    /// The tenants loaded now (those whose changes matter).
    fn loaded(&self) -> Vec<TenantId>;

    /// The data version a loaded tenant has seen (what a catch-up starts from); `None` if it
    /// is not loaded.
    fn version_of(&self, id: &TenantId) -> Option<u64>;

    /// `version` of `id` is committed, changing `tables` (lower-case `schema.table`), or
    /// changing what cannot be told apart (`None`: every table counts as written).
    fn changed(&self, id: &TenantId, version: u64, tables: Option<&[String]>);
}

/// What a store has recorded of a tenant's data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The data version: 0 for data the gateway never wrote (a database put in place by
    /// hand), then larger with every write.
    pub version: u64,
    /// Tables (lower-case `schema.table`) with the version that last wrote them, as far as
    /// the store knows; a table not listed counts as written at `version`.
    pub written: HashMap<String, u64>,
}

/// Where a tenant's data lives: its database, its existence, its data version.
///
/// The engine holds one store, chosen when it is built ([`super::Engine::with_store`]); the
/// [`super::registry::TenantRegistry`] keeps what one process knows of its tenants (loaded
/// ones, deletions in progress, the versions it has seen) and asks the store for the rest.
///
/// An implementation guarantees:
/// - [`open`](Self::open) answers `tenant_not_found` for a tenant that does not exist and
///   `tenant_unavailable` for one that cannot be opened, and never creates one. DuckDB names
///   the database after the tenant (the catalog the table checks compare with).
/// - [`record_write`](Self::record_write) is durable when it returns, and a later
///   [`data_version`](Self::data_version) (in any process) answers that version or a later
///   one: versions never go back.
/// - [`delete`](Self::delete) removes everything, so that a tenant of the same name can be
///   created again (its versions start over; the registry gives it a new incarnation).
///
/// DuckLake plugs in here: `open` makes an in-memory DuckDB with `setup_sql` attaching the
/// tenant's lake and `connection_sql` selecting it; `exists`, `list`, `create` and `delete`
/// ask and change the catalog; a version is the catalog's snapshot id, and `written` its
/// snapshots' changed tables (so writes of other replicas count too). The gateway numbers a
/// write's version today (the current one plus one); with DuckLake it is the snapshot the
/// write's commit made, read by the write on its own connection. Transports, the result
/// cache and live subscriptions see only data versions and do not change.
pub trait TenantStore: Send + Sync {
    /// Opens the tenant's database. Blocking: executor threads only.
    fn open(&self, id: &TenantId) -> Result<Opened, GatewayError>;

    /// Whether the tenant exists; `storage_unavailable` when the store cannot tell now.
    fn exists<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Result<bool, GatewayError>>;

    /// Every tenant, sorted, with the bytes its data takes.
    fn list(&self) -> BoxFuture<'_, io::Result<Vec<(TenantId, u64)>>>;

    /// The bytes the tenant's data takes (0 if unknown).
    fn size<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, u64>;

    /// Creates an empty tenant; `tenant_exists` if it has data already. Answers the new
    /// tenant's data version, if the store numbers versions itself. Blocking: executor
    /// threads only.
    fn create(&self, id: &TenantId) -> Result<Option<u64>, GatewayError>;

    /// Removes the tenant's data (its database is closed: no query holds a connection).
    /// Blocking: executor threads only.
    fn delete(&self, id: &TenantId) -> Result<(), GatewayError>;

    /// The tenant's data version and the tables its versions wrote, as recorded.
    fn data_version<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Recorded>;

    /// Records that a committed write produced `version` (larger than every earlier one),
    /// changing `tables`. Durable when it returns: the write's answer names the version.
    fn record_write<'a>(
        &'a self,
        id: &'a TenantId,
        version: u64,
        tables: &'a [String],
    ) -> BoxFuture<'a, io::Result<()>>;

    /// Waits for the tenant's write lock, held by one writer across every process sharing the
    /// store; `write_busy` after waiting too long. A local store has no other process: the
    /// engine's own per-tenant lock is enough, and this answers at once.
    fn lock_writes<'a>(
        &'a self,
        id: &'a TenantId,
    ) -> BoxFuture<'a, Result<WriteLock, GatewayError>>;

    /// Starts reporting other processes' writes to `sink` until `shutdown`. A store that only
    /// this process writes has nothing to report.
    fn follow(&self, sink: std::sync::Weak<dyn ChangeSink>, shutdown: CancellationToken) {
        let _ = (sink, shutdown);
    }

    /// SQL that keeps the tenant's data fast to read (a lake: merge small files, expire
    /// versions past the retention, delete the files they alone used), run in the background
    /// on a pooled connection under the write lock; `None`: nothing to do.
    fn maintenance_sql(&self, id: &TenantId) -> Option<String> {
        let _ = id;
        None
    }

    /// The number and bytes of the tenant's current data files, when the store keeps files
    /// of its own (a lake); `None` otherwise.
    fn data_files<'a>(&'a self, id: &'a TenantId) -> BoxFuture<'a, Option<(u64, u64)>> {
        let _ = id;
        Box::pin(async { None })
    }

    /// Whether DuckDB's `message` says the store itself could not be reached (the catalog or
    /// object store down), rather than something about the statement.
    fn unavailable(&self, message: &str) -> bool {
        let _ = message;
        false
    }

    /// Whether the store's shared services answer now, as far as it knows without asking
    /// (a lake: its change feed has not lost the catalog). `false` also means other replicas'
    /// writes may go unheard: cached results are served marked stale, and the engine refuses
    /// work that needs the store at once (`storage_unavailable`) instead of holding a thread
    /// on it.
    fn reachable(&self) -> bool {
        true
    }
}
