//! [`TenantRegistry`]: the tenants this process has seen, and the tenant operations that need
//! both the store and that per-process state (a deletion in progress, a loaded tenant's
//! version). Where the data lives is the store's business ([`TenantStore`]).
//!
//! Invariants:
//! - A tenant is handed out only if its store says it exists, and an unknown tenant is never
//!   remembered: the registry creates no tenant by reading one.
//! - A tenant being deleted is refused (`tenant_not_found`) and left out of listings until its
//!   data is gone; then a tenant of the same name can be created, as a new [`Tenant`] value.
//! - A loaded tenant's version moves only after the store recorded it.
//! - A tenant is unloaded only while nothing but the registry holds it (no query, upload,
//!   subscription or socket), after it went unused for the idle time; until its database is
//!   closed, `get` waits for it: a tenant's database is never open twice at once.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::pool::{DbSettings, Pools};
use super::store::{ChangeSink, TenantStore, WriteLock};
use super::tenant::{Tenant, TenantLimits};
use crate::error::GatewayError;
use crate::wire::TenantId;

/// All tenants seen so far.
pub struct TenantRegistry {
    store: Arc<dyn TenantStore>,
    pools: Arc<Pools>,
    defaults: TenantLimits,
    own_limits: HashMap<TenantId, TenantLimits>,
    tenants: Mutex<HashMap<TenantId, Arc<Tenant>>>,
    /// Tenants being deleted: refused by `get` until their data is gone.
    deleting: Mutex<HashSet<TenantId>>,
    /// Tenants being unloaded: `get` waits until their database is closed.
    unloading: Mutex<HashSet<TenantId>>,
    /// Woken each time an unloading finishes.
    unloaded: Notify,
}

impl TenantRegistry {
    pub fn new(
        store: Arc<dyn TenantStore>,
        settings: DbSettings,
        defaults: TenantLimits,
        own_limits: HashMap<TenantId, TenantLimits>,
    ) -> Self {
        Self {
            store,
            pools: Arc::new(Pools::new(settings)),
            defaults,
            own_limits,
            tenants: Mutex::new(HashMap::new()),
            deleting: Mutex::new(Default::default()),
            unloading: Mutex::new(Default::default()),
            unloaded: Notify::new(),
        }
    }

    /// The bytes the tenant's data takes (0 if unknown).
    pub async fn size(&self, id: &TenantId) -> u64 {
        self.store.size(id).await
    }

    /// Where uploads are spooled (one directory per tenant).
    pub fn spool_root(&self) -> &Path {
        &self.pools.settings().spool_root
    }

    /// Records a committed write's data version (and the tables it changed) in the store,
    /// then makes it the loaded tenant's version.
    pub async fn set_data_version(
        &self,
        id: &TenantId,
        version: u64,
        tables: &[String],
    ) -> std::io::Result<()> {
        self.store.record_write(id, version, tables).await?;
        if let Some(t) = self.loaded(id) {
            t.publish_version(version);
        }
        Ok(())
    }

    /// Every tenant (not being deleted), sorted, with the bytes its data takes.
    pub async fn scan(&self) -> std::io::Result<Vec<(TenantId, u64)>> {
        let mut found = self.store.list().await?;
        found.retain(|(id, _)| !self.is_deleting(id));
        Ok(found)
    }

    /// Creates an empty tenant (on the calling thread: an executor's). Refuses a name that has
    /// data already. Answers the new tenant's version if its store numbers versions.
    pub fn create_blocking(&self, id: &TenantId) -> Result<Option<u64>, GatewayError> {
        self.store.create(id)
    }

    /// Whether the store's shared services answer now ([`TenantStore::reachable`]).
    pub fn store_reachable(&self) -> bool {
        self.store.reachable()
    }

    /// The loaded tenants' names.
    pub fn loaded_ids(&self) -> Vec<TenantId> {
        self.lock().keys().cloned().collect()
    }

    /// The store's upkeep SQL for the tenant ([`TenantStore::maintenance_sql`]).
    pub fn maintenance_sql(&self, id: &TenantId) -> Option<String> {
        self.store.maintenance_sql(id)
    }

    /// The number and bytes of the tenant's data files, if its store keeps files of its own.
    pub async fn data_files(&self, id: &TenantId) -> Option<(u64, u64)> {
        self.store.data_files(id).await
    }

    /// Waits for the tenant's write lock (across every process sharing the store).
    pub async fn lock_writes(&self, id: &TenantId) -> Result<WriteLock, GatewayError> {
        self.store.lock_writes(id).await
    }

    /// Marks `id` as being deleted (`get` refuses it from now on); `false` if it already was.
    pub fn start_deleting(&self, id: &TenantId) -> bool {
        self.deleting_lock().insert(id.clone())
    }

    pub fn is_deleting(&self, id: &TenantId) -> bool {
        self.deleting_lock().contains(id)
    }

    /// Forgets the tenant and removes its data (on the calling thread: an executor's); then a
    /// tenant of the same name can be created again.
    pub fn finish_deleting_blocking(&self, id: &TenantId) -> Result<(), GatewayError> {
        self.lock().remove(id);
        let result = self.store.delete(id);
        self.deleting_lock().remove(id);
        result
    }

    /// The tenant if it is loaded already (queries have used it), without asking the store.
    pub fn loaded(&self, id: &TenantId) -> Option<Arc<Tenant>> {
        self.lock().get(id).cloned()
    }

    /// The tenant, if it exists. Asks the store without blocking the runtime.
    pub async fn get(&self, id: &TenantId) -> Result<Arc<Tenant>, GatewayError> {
        if self.is_deleting(id) {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        self.wait_unloaded(id).await;
        if let Some(t) = self.lock().get(id) {
            t.touch();
            return Ok(Arc::clone(t));
        }
        if !self.store.exists(id).await? {
            return Err(GatewayError::TenantNotFound(id.to_string()));
        }
        let recorded = self.store.data_version(id).await;
        let tenant = Arc::clone(self.lock().entry(id.clone()).or_insert_with(|| {
            let limits = self.own_limits.get(id).unwrap_or(&self.defaults).clone();
            Arc::new(Tenant::new(
                id.clone(),
                limits,
                recorded,
                Arc::clone(&self.store),
                Arc::clone(&self.pools),
            ))
        }));
        Ok(tenant)
    }

    /// Takes out of the registry every tenant unused for `idle` that nothing else holds, and
    /// marks them as being unloaded; the caller closes their databases (off the async
    /// runtime: closing a file checkpoints it), then calls [`Self::finish_unloading`].
    pub fn take_idle(&self, idle: Duration) -> Vec<Arc<Tenant>> {
        let mut tenants = self.lock();
        let mut unloading = self.unloading.lock().unwrap_or_else(|p| p.into_inner());
        let idle_ids: Vec<TenantId> = tenants
            .iter()
            // Under the lock nobody can clone one: a count of 1 is the registry's own.
            .filter(|(_, t)| Arc::strong_count(t) == 1 && t.idle_for() >= idle)
            .map(|(id, _)| id.clone())
            .collect();
        idle_ids
            .into_iter()
            .filter_map(|id| {
                let tenant = tenants.remove(&id)?;
                unloading.insert(id);
                Some(tenant)
            })
            .collect()
    }

    /// The databases of `ids` are closed: requests for them load them again.
    pub fn finish_unloading(&self, ids: &[TenantId]) {
        let mut unloading = self.unloading.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            unloading.remove(id);
        }
        drop(unloading);
        self.unloaded.notify_waiters();
    }

    /// Waits while `id` is being unloaded.
    async fn wait_unloaded(&self, id: &TenantId) {
        loop {
            // Registered before the check, so a finish in between is not missed.
            let finished = self.unloaded.notified();
            if !self
                .unloading
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(id)
            {
                return;
            }
            finished.await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, Arc<Tenant>>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deleting_lock(&self) -> MutexGuard<'_, HashSet<TenantId>> {
        self.deleting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes other processes made (a lake's commits on other replicas) reach the loaded tenants:
/// the tables first, then the version, as with this process's own writes.
impl ChangeSink for TenantRegistry {
    fn loaded(&self) -> Vec<TenantId> {
        self.loaded_ids()
    }

    fn version_of(&self, id: &TenantId) -> Option<u64> {
        self.loaded(id).map(|t| t.data_version())
    }

    fn changed(&self, id: &TenantId, version: u64, tables: Option<&[String]>) {
        if let Some(tenant) = self.loaded(id) {
            tenant.changed(version, tables);
        }
    }
}
