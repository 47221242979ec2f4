//! Background upkeep of tenants' storage: what a store says keeps its data fast to read (a
//! lake: merging the small files many small commits leave, expiring snapshots past the
//! retention, deleting the files only they used), run off every query's path.
//!
//! Invariants:
//! - Upkeep runs only for loaded tenants that were written since their last upkeep, once
//!   `after_writes` writes have landed or `interval` has passed, never on a query's path: on
//!   an executor thread with one of the tenant's slots, like an upload.
//! - It holds the tenant's write locks (this process's, then the store's, in the order
//!   uploads take them): it never races a write, and of several replicas one runs it; the
//!   others find the lock taken and count the writes as seen.
//! - A failure is logged and counted; the next round tries again.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::tenant::Tenant;
use super::Engine;
use crate::error::GatewayError;

/// When a tenant's upkeep is due.
#[derive(Debug, Clone)]
pub struct MaintenancePolicy {
    /// Upkeep of a tenant written since its last one, at the latest this long after it.
    pub interval: Duration,
    /// Upkeep as soon as this many writes landed (small commits are what slow reads down).
    pub after_writes: u64,
}

impl Engine {
    /// One round of upkeep over the loaded tenants, and the storage gauges.
    pub async fn maintain(&self, policy: &MaintenancePolicy) {
        let (mut files, mut bytes, mut known) = (0, 0, false);
        for id in self.registry.loaded_ids() {
            // Not `get`: upkeep is not a use, and must not keep an idle tenant loaded.
            let Some(tenant) = self.registry.loaded(&id) else {
                continue;
            };
            if let Some((f, b)) = self.registry.data_files(&id).await {
                (files, bytes, known) = (files + f, bytes + b, true);
            }
            if !tenant.upkeep.due(policy.after_writes, policy.interval) {
                continue;
            }
            let Some(sql) = self.registry.maintenance_sql(&id) else {
                tenant.upkeep.done();
                continue;
            };
            let outcome = self.maintain_tenant(&tenant, sql).await;
            let store = &self.metrics.store;
            store.maintenance_runs.with_label_values(&[outcome]).inc();
            if outcome == "ok" {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                store.maintenance_last_run.set(now.as_secs() as i64);
            }
        }
        if known {
            self.metrics.store.data_files.set(files as i64);
            self.metrics.store.data_bytes.set(bytes as i64);
        }
    }

    /// Runs `sql` on the tenant under its write locks: `ok`, `skipped` (another writer holds
    /// the tenant) or `failed`.
    async fn maintain_tenant(&self, tenant: &Arc<Tenant>, sql: String) -> &'static str {
        let _write = tenant.writes.lock().await;
        let _cluster = match self.registry.lock_writes(&tenant.id).await {
            Ok(lock) => lock,
            Err(GatewayError::WriteBusy) => {
                tenant.upkeep.done();
                return "skipped";
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e.log_chain(), "storage upkeep could not start");
                return "failed";
            }
        };
        let started = Instant::now();
        let t = Arc::clone(tenant);
        match self.run_task(Some(tenant), move || t.run_batch(&sql)).await {
            Ok(Ok(())) => {
                tenant.upkeep.done();
                tracing::info!(tenant = %tenant.id, elapsed_ms = started.elapsed().as_millis() as u64, "storage upkeep done");
                "ok"
            }
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(tenant = %tenant.id, error = %e.log_chain(), "storage upkeep failed");
                "failed"
            }
        }
    }
}
