//! The change feed: one `LISTEN` connection per replica to the catalog database, hearing
//! every tenant's commits (the trigger [`super::catalog`] installs), and the catch-up that
//! turns a tenant's new snapshots into versions and changed tables for the [`ChangeSink`].
//!
//! Invariants:
//! - A notification only says which tenant to look at: what changed is always read from the
//!   catalog's own change records after the version the sink has, so a lost, late or repeated
//!   notification costs latency, never correctness.
//! - After every (re)connect, every loaded tenant is caught up before notifications are
//!   waited for: what was committed while the connection was down is reported then.
//! - Tenants waiting for a catch-up are a set (one entry per tenant): however fast commits
//!   come, the feed holds at most one entry per tenant.
//! - Reconnects back off from 100 ms to 2 s; the loop ends with the process (`shutdown`) or
//!   when the sink (the engine) is gone.
//! - The feed is the replica's probe of the catalog: while listening it asks the catalog a
//!   trivial statement every [`HEARTBEAT`], and one unanswered within [`HEARTBEAT_TIMEOUT`]
//!   counts as the catalog lost (a stopped or stalled catalog is noticed in seconds even when
//!   no notification would come). [`Feed::down`] is set from a failed connect, an unanswered
//!   heartbeat or a failed catch-up until the next successful `LISTEN`; a connection that
//!   merely closed is reconnected first. It starts unset, so a replica serves before its
//!   first connect.
//! - [`Feed::connected`] is 1 exactly while notifications are being heard; [`Feed::lag`]
//!   measures from the commit (the trigger's clock, in the payload) to the end of the catch-up
//!   that applied it, once per catch-up (the earliest commit it covers).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::catalog::{tenant_of, Catalog, CHANNEL};
use super::changes::{self, Changed};
use crate::engine::store::ChangeSink;
use crate::error::GatewayError;
use crate::wire::TenantId;

/// How often a listening feed asks the catalog whether it still answers.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long the catalog has to answer a heartbeat before the connection counts as lost.
/// (Generous: a replica whose CPU is saturated must not take a slow answer for a dead catalog.)
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// The feed's health: for the metrics, and for the store's [`reachable`](Feed::down).
pub struct Feed {
    /// 1 while the `LISTEN` connection is up.
    pub connected: prometheus::IntGauge,
    /// Commit to catch-up, in seconds.
    pub lag: prometheus::Histogram,
    /// Set while the catalog is known not to answer: from a failed connect, an unanswered
    /// heartbeat or a failed catch-up until the next `LISTEN` succeeds.
    pub down: Arc<AtomicBool>,
}

/// Runs the feed until `shutdown` or until the sink is dropped (on the catalog's runtime).
pub async fn follow(
    catalog: Arc<Catalog>,
    sink: Weak<dyn ChangeSink>,
    shutdown: CancellationToken,
    feed: Feed,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let result = listen_once(&catalog, &sink, &shutdown, &feed).await;
        let was_listening = feed.connected.get() == 1;
        feed.connected.set(0);
        let lost = match result {
            Ok(()) => return,
            Err(lost) => lost,
        };
        // A connection that closed is tried again before anyone is refused; a catalog that
        // refused a connection or left a heartbeat unanswered is down until one listens.
        let newly_down = lost.down && !feed.down.swap(true, Ordering::AcqRel);
        // Logged once per outage, not at every retry.
        if was_listening || newly_down {
            tracing::warn!(error = %lost.error.log_chain(), "lake change feed lost; reconnecting");
        }
        if was_listening {
            backoff = Duration::from_millis(100);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Why a feed's connection ended, and whether that shows the catalog down.
struct Lost {
    error: GatewayError,
    /// A connect failed, a heartbeat went unanswered or a catalog call failed; `false`: the
    /// connection closed (the next connect tells).
    down: bool,
}

/// A failed statement or catalog call: the catalog is not answering.
impl From<GatewayError> for Lost {
    fn from(error: GatewayError) -> Self {
        Self::down(error)
    }
}

impl Lost {
    fn down(error: GatewayError) -> Self {
        Self { error, down: true }
    }
}

/// Tenants a notification named, waiting for their catch-up, each with the time of the
/// earliest commit it is waiting for (Unix seconds; `None`: not from a notification).
#[derive(Default)]
struct Pending {
    tenants: Mutex<BTreeMap<TenantId, Option<f64>>>,
    wake: Notify,
}

impl Pending {
    fn add(&self, id: TenantId, at: Option<f64>) {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = tenants.entry(id).or_insert(at);
        *earliest = match (*earliest, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        drop(tenants);
        self.wake.notify_one();
    }

    fn take(&self) -> BTreeMap<TenantId, Option<f64>> {
        std::mem::take(&mut *self.tenants.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Now, in Unix seconds.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One connection's life: listen, catch everyone up, then follow notifications. `Ok` when the
/// feed should stop, `Err` when the connection broke.
async fn listen_once(
    catalog: &Catalog,
    sink: &Weak<dyn ChangeSink>,
    shutdown: &CancellationToken,
    feed: &Feed,
) -> Result<(), Lost> {
    let (client, mut connection) = catalog
        .config()
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| Lost::down(GatewayError::storage(e)))?;
    let pending = Arc::new(Pending::default());
    let broken = CancellationToken::new();
    let driver = {
        let (pending, broken) = (Arc::clone(&pending), broken.clone());
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(n) = message {
                    if let Some((id, at)) = commit_in(n.payload()) {
                        pending.add(id, at);
                    }
                }
            }
            broken.cancel();
        })
    };
    let result = async {
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(GatewayError::storage)?;
        let Some(s) = sink.upgrade() else {
            return Ok(());
        };
        for id in s.loaded() {
            pending.add(id, None);
        }
        drop(s);
        feed.connected.set(1);
        if feed.down.swap(false, Ordering::AcqRel) {
            tracing::info!("lake change feed listening again: the catalog answers");
        } else {
            tracing::info!("lake change feed listening");
        }
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            for (id, at) in pending.take() {
                let Some(s) = sink.upgrade() else {
                    return Ok(());
                };
                catch_up(catalog, s.as_ref(), &id).await?;
                if let Some(at) = at {
                    feed.lag.observe((unix_now() - at).max(0.0));
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = broken.cancelled() => return Err(Lost {
                    error: GatewayError::storage("the LISTEN connection closed"),
                    down: false,
                }),
                _ = pending.wake.notified() => {}
                _ = heartbeat.tick() => alive(&client).await?,
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Asks the catalog a trivial statement: an error or no answer within [`HEARTBEAT_TIMEOUT`]
/// is a lost connection.
async fn alive(client: &tokio_postgres::Client) -> Result<(), GatewayError> {
    match tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("")).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(GatewayError::storage(e)),
        Err(_) => Err(GatewayError::storage(
            "the catalog did not answer a heartbeat",
        )),
    }
}

/// The tenant a notification's payload (`{"schema": "ds_<tenant>", "snapshot": n, "at":
/// <unix seconds>}`) names, and when it committed (absent from older gateways' triggers).
fn commit_in(payload: &str) -> Option<(TenantId, Option<f64>)> {
    let mut bytes = payload.as_bytes().to_vec();
    let value = simd_json::to_borrowed_value(&mut bytes).ok()?;
    use simd_json::prelude::*;
    let id = tenant_of(value.get("schema")?.as_str()?)?;
    Some((id, value.get("at").and_then(|a| a.cast_f64())))
}

/// Reports the tenant's snapshots after the version the sink has (a tenant the sink has not
/// loaded has nothing to update: it reads its version when loaded).
pub async fn catch_up(
    catalog: &Catalog,
    sink: &dyn ChangeSink,
    id: &TenantId,
) -> Result<(), GatewayError> {
    let Some(known) = sink.version_of(id) else {
        return Ok(());
    };
    let history = catalog.history(id, Some(known)).await?;
    let Some(first) = history.first() else {
        return Ok(());
    };
    // Snapshot ids follow each other: a gap means change records expired before this
    // replica read them, so what changed is unknown.
    if first.snapshot > known + 1 {
        sink.changed(id, first.snapshot - 1, None);
    }
    let names = if history.iter().any(|s| changes::needs_names(&s.changes)) {
        catalog.table_names(id).await?
    } else {
        Default::default()
    };
    for s in history {
        match changes::changed(&s.changes, &names) {
            Changed::Tables(tables) => sink.changed(id, s.snapshot, Some(&tables)),
            Changed::All => sink.changed(id, s.snapshot, None),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_their_tenant_and_commit_time() {
        let acme = TenantId::parse("acme-1").unwrap();
        assert_eq!(
            commit_in(r#"{"schema" : "ds_acme-1", "snapshot" : 7}"#),
            Some((acme.clone(), None))
        );
        assert_eq!(
            commit_in(r#"{"schema" : "ds_acme-1", "snapshot" : 7, "at" : 1765000000.25}"#),
            Some((acme, Some(1765000000.25)))
        );
        assert_eq!(commit_in(r#"{"schema" : "public", "snapshot" : 7}"#), None);
        assert_eq!(commit_in("not json"), None);
    }

    #[test]
    fn a_pending_tenant_keeps_its_earliest_commit() {
        let p = Pending::default();
        let t = TenantId::parse("t").unwrap();
        p.add(t.clone(), None);
        p.add(t.clone(), Some(5.0));
        p.add(t.clone(), Some(3.0));
        p.add(t.clone(), Some(4.0));
        assert_eq!(
            p.take().into_iter().collect::<Vec<_>>(),
            vec![(t, Some(3.0))]
        );
        assert!(p.take().is_empty());
    }
}
