//! Per-query cancellation: one [`QueryControl`] per query, shared by the transport that serves
//! it and the executor thread that runs it.
//!
//! The cancellation tree is process → connection → query: a query watches its parent token
//! (the process's shutdown token, or its WebSocket connection's), its tenant's (cancelled when
//! the tenant is deleted), its own timeout, and direct
//! cancels (a client's `cancel`, a dropped response). Whichever comes first records its
//! [`CancelReason`] and interrupts DuckDB.
//!
//! Invariants:
//! - The first reason wins; later cancels change nothing.
//! - DuckDB is interrupted only through the handle attached for the current query, under the
//!   lock that `detach` takes before the connection returns to the pool: an interrupt can never
//!   reach the next query on that connection.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;

use crate::duck::InterruptHandle;

/// Why a query stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CancelReason {
    /// The client asked (a `cancel` message).
    Client = 1,
    /// The client went away (closed connection, dropped response).
    Disconnected = 2,
    /// It ran past the query timeout.
    Timeout = 3,
    /// The server is shutting down.
    Shutdown = 4,
    /// The query's tenant is being deleted.
    TenantDeleted = 5,
    /// Its reader took nothing for the stall timeout: treated as gone.
    Stalled = 6,
}

impl CancelReason {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Client,
            2 => Self::Disconnected,
            3 => Self::Timeout,
            4 => Self::Shutdown,
            5 => Self::TenantDeleted,
            6 => Self::Stalled,
            _ => return None,
        })
    }
}

pub struct QueryControl {
    cancelled: CancellationToken,
    finished: CancellationToken,
    reason: AtomicU8,
    interrupt: Mutex<Option<InterruptHandle>>,
    /// Counts interrupts delivered to a running DuckDB query.
    interrupts: IntCounter,
    /// When the executor began to wait for room for its next frame (microseconds since
    /// [`epoch`], plus one); 0 while it is not waiting.
    waiting_since: AtomicU64,
    /// The stream's stream slot, freed when it stalls.
    stall_slot: Mutex<Option<SharedPermit>>,
}

/// A slot's permit that more than one owner may give back.
pub type SharedPermit = Arc<Mutex<Option<tokio::sync::OwnedSemaphorePermit>>>;

/// The zero of [`QueryControl`]'s wait clock.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl QueryControl {
    pub fn new(interrupts: IntCounter) -> Arc<Self> {
        Arc::new(Self {
            cancelled: CancellationToken::new(),
            finished: CancellationToken::new(),
            reason: AtomicU8::new(0),
            interrupt: Mutex::new(None),
            interrupts,
            waiting_since: AtomicU64::new(0),
            stall_slot: Mutex::new(None),
        })
    }

    /// Frees `slot` if the stream stalls (see [`Self::spawn_watcher`]).
    pub fn free_on_stall(&self, slot: SharedPermit) {
        *self.stall_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(slot);
    }

    /// Stops a stalled stream: cancels it and gives its stream slot back.
    fn stall(&self) {
        self.cancel(CancelReason::Stalled);
        let slot = self
            .stall_slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(slot) = slot {
            slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }

    /// The executor waits for its reader from now on (see [`Self::spawn_watcher`]'s stall).
    pub fn wait_begins(&self) {
        let now = epoch().elapsed().as_micros() as u64 + 1;
        self.waiting_since.store(now, Ordering::Release);
    }

    /// The reader took the frame: the wait is over.
    pub fn wait_ends(&self) {
        self.waiting_since.store(0, Ordering::Release);
    }

    /// How long the executor has been waiting for its reader, if it is.
    fn waited(&self) -> Option<Duration> {
        match self.waiting_since.load(Ordering::Acquire) {
            0 => None,
            since => Some(
                epoch()
                    .elapsed()
                    .saturating_sub(Duration::from_micros(since - 1)),
            ),
        }
    }

    /// Cancels the query (first reason wins) and interrupts DuckDB if it is running.
    ///
    /// DuckDB is interrupted *before* the token wakes the executor, so a running query is
    /// always interrupted (and counted), even when the executor was only waiting to send.
    pub fn cancel(&self, reason: CancelReason) {
        if self.finished.is_cancelled() {
            return;
        }
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        {
            let mut guard = self.interrupt.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(handle) = guard.take() {
                // SAFETY: attached handles are detached under this lock before their
                // connection is released, so the connection is alive here. Taken: one
                // interrupt per query.
                unsafe { handle.interrupt() };
                self.interrupts.inc();
            }
        }
        self.cancelled.cancel();
    }

    pub fn reason(&self) -> Option<CancelReason> {
        CancelReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_cancelled()
    }

    /// Resolves once the query is cancelled.
    pub fn cancelled(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.cancelled.cancelled()
    }

    /// DuckDB's progress of the query, while it holds its connection.
    pub fn progress(&self) -> Option<crate::duck::QueryProgress> {
        let guard = self.interrupt.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: a handle is attached only while its connection runs this query; `detach`
        // takes this lock before the connection returns to the pool.
        guard.as_ref().map(|h| unsafe { h.progress() })
    }

    /// Attaches the running connection's interrupt handle. Returns `false` (and attaches
    /// nothing) when the query was cancelled before it got a connection.
    pub fn attach(&self, handle: InterruptHandle) -> bool {
        let mut guard = self.interrupt.lock().unwrap_or_else(|p| p.into_inner());
        // The reason is recorded before `cancel` takes this lock: checking it here (not the
        // token, which is cancelled after the lock) means a concurrent cancel either finds the
        // handle attached or makes this attach fail.
        if self.reason.load(Ordering::Acquire) != 0 {
            return false;
        }
        *guard = Some(handle);
        true
    }

    /// Detaches the handle; called before the connection goes back to the pool.
    pub fn detach(&self) {
        *self.interrupt.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Marks the query finished: later cancels are no-ops and the watcher exits.
    pub fn finish(&self) {
        self.finished.cancel();
    }

    /// Resolves once the query has finished (its last line was handed over, or it failed).
    pub fn finished(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.finished.cancelled()
    }

    /// Watches the parent token, the timeout and the reader until the query finishes. Runs on
    /// the async runtime (one small task per query). With `stall`, a query whose executor has
    /// waited that long for room for one frame (its reader took nothing) is cancelled with
    /// [`CancelReason::Stalled`]: looked at every quarter of `stall`.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        parent: CancellationToken,
        parent_reason: CancelReason,
        tenant_deleted: CancellationToken,
        timeout: Option<Duration>,
        stall: Option<Duration>,
    ) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let timeout = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            let watched = Arc::clone(&this);
            let stalled = async move {
                let Some(stall) = stall else {
                    return std::future::pending().await;
                };
                let every = (stall / 4).max(Duration::from_millis(10));
                loop {
                    tokio::time::sleep(every).await;
                    if watched.waited().is_some_and(|w| w >= stall) {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = this.finished.cancelled() => {}
                _ = this.cancelled.cancelled() => {}
                _ = parent.cancelled() => this.cancel(parent_reason),
                _ = tenant_deleted.cancelled() => this.cancel(CancelReason::TenantDeleted),
                _ = timeout => this.cancel(CancelReason::Timeout),
                _ = stalled => this.stall(),
            }
        });
    }
}

/// Cancels its query with [`CancelReason::Disconnected`] when dropped before the query ends:
/// owned by whatever delivers the stream, so that a client going away stops DuckDB.
pub struct CancelOnDrop(pub Arc<QueryControl>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel(CancelReason::Disconnected);
    }
}
