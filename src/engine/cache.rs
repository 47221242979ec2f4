//! The result cache: finished results kept as the bytes that went on the wire (per framing and
//! compression), answered again while every table they read is unchanged; and singleflight,
//! so identical requests that arrive while one runs wait for its result instead of running.
//!
//! Invariants:
//! - The key is everything that makes the bytes: tenant (and its incarnation), SQL, params,
//!   output options, the token's table scope, and the transport's framing and compression
//!   ([`Variant`]). A token limited to some tables never gets bytes made for another scope.
//! - An entry is served only while [`Tenant::is_current`] holds for the tables its plan read
//!   at the version it was computed at ([`Stamp`]), and within the tenant's `cache_ttl_secs`.
//!   Only complete results (ending with `end`) of deterministic statements with known tables
//!   are stored, each at most `max_entry_bytes`; all of them within `max_bytes` (least
//!   recently used first out).
//! - A follower never waits for a leader whose result cannot be stored: the leader lets its
//!   followers go as soon as it knows (the stamp, or the recording passing the entry limit),
//!   and whenever it ends, however it ends.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::stamp::Stamp;
use super::tenant::Tenant;
use super::QuerySpec;
use crate::metrics::Metrics;
use crate::wire::{Format, GeometryFormat, TenantId};

/// What the cache holds at most.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    /// All entries together, in bytes (0: no cache).
    pub max_bytes: u64,
    /// One entry, in bytes: larger results are streamed and not kept.
    pub max_entry_bytes: usize,
}

/// Everything that makes a cached answer's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    tenant: TenantId,
    incarnation: u64,
    sql: String,
    /// The parameters' exact debug form (floats round-trip).
    params: String,
    chunk_rows: Option<usize>,
    geometry: GeometryFormat,
    format: Format,
    progress: bool,
    /// The token's tables, sorted; `None`: every table.
    scope: Option<Vec<String>>,
    /// The transport's framing and compression.
    variant: Variant,
}

/// How the transport that asks frames and compresses a result's bytes: a hit is served as the
/// stored bytes, so each variant keeps results of its own (the format is the spec's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// An HTTP body (`/query`, Mosaic's REST connector), as sent: zstd-compressed or not.
    Http { zstd: bool },
    /// SSE: the result's lines, framed as events (and compressed) per response.
    Sse,
    /// One message of Mosaic's socket: the whole Arrow stream.
    MosaicSocket,
    /// A live subscription's channel: its key, never a stored result.
    Live,
    /// The PostgreSQL endpoint: the result's backend messages (`RowDescription`, `DataRow`s,
    /// `CommandComplete`), which any turn of a portal or cursor cuts as it reads them.
    Pg,
}

impl CacheKey {
    /// The key of `spec`'s result for a tenant incarnation and a transport `variant` (also
    /// what makes a live subscription's channel).
    pub fn new(spec: &QuerySpec, incarnation: u64, variant: Variant) -> Self {
        let request = &spec.request;
        Self {
            tenant: spec.tenant.clone(),
            incarnation,
            sql: request.sql.clone(),
            params: format!("{:?}", request.params),
            chunk_rows: request.chunk_rows,
            geometry: request.geometry,
            format: spec.format,
            progress: request.progress,
            scope: spec.tables.as_ref().map(|t| {
                let mut names = t.names();
                names.sort();
                names
            }),
            variant,
        }
    }

    /// A digest of the key, for ETags.
    fn digest(&self) -> u64 {
        let mut h = std::hash::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

/// A finished result, as it went on the wire.
#[derive(Debug)]
pub struct CachedResult {
    /// The body, in the chunks it was sent in.
    pub chunks: Vec<Bytes>,
    pub bytes: usize,
    /// Result rows in it.
    pub rows: u64,
    /// Result rows in each chunk.
    pub chunk_rows: Vec<usize>,
    /// The `query_id` its lines carry (the execution that made it).
    pub query_id: Arc<str>,
    pub stamp: Stamp,
    stored_at: Instant,
}

/// The cache and the executions in flight. Cheap to share (`Arc`).
pub struct ResultCache {
    entries: moka::sync::Cache<CacheKey, Arc<CachedResult>>,
    /// Keys whose results could not be stored lately (volatile, too big, unknown tables):
    /// their requests neither wait for one another nor record.
    unstorable: moka::sync::Cache<CacheKey, ()>,
    flights: Mutex<HashMap<CacheKey, watch::Receiver<()>>>,
    settings: CacheSettings,
    metrics: Arc<Metrics>,
}

/// How long a key stays known as unstorable (its data may change, and with it the size).
const UNSTORABLE_FOR: Duration = Duration::from_secs(60);

/// How long a request waits for an identical one's result before it runs its own.
const FOLLOW_WAIT: Duration = Duration::from_secs(10);

/// How often a request waits for another's execution before it runs its own.
const MAX_FOLLOWS: usize = 3;

/// What a lookup found.
pub enum Lookup {
    /// A current result.
    Hit {
        result: Arc<CachedResult>,
        etag: String,
    },
    /// Run the query; the ticket records its result if it can be stored.
    Miss(Ticket),
    /// Not cacheable (no cache, TTL 0, known unstorable): run it, record nothing.
    Bypass,
}

impl ResultCache {
    pub fn new(settings: CacheSettings, metrics: Arc<Metrics>) -> Self {
        let gauge = metrics.cache_bytes.clone();
        let evictions = metrics.cache_evictions.clone();
        let entries = moka::sync::Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|_, v: &Arc<CachedResult>| u32::try_from(v.bytes).unwrap_or(u32::MAX))
            .eviction_listener(move |_, v: Arc<CachedResult>, cause| {
                gauge.sub(v.bytes as i64);
                if cause == moka::notification::RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Self {
            entries,
            unstorable: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(UNSTORABLE_FOR)
                .build(),
            flights: Mutex::new(HashMap::new()),
            settings,
            metrics,
        }
    }

    /// Looks `spec` up for a transport `variant`: a current result, or a ticket to record one
    /// (after waiting for an identical execution in flight, if there is one).
    pub async fn lookup(
        self: &Arc<Self>,
        spec: &QuerySpec,
        tenant: &Arc<Tenant>,
        variant: Variant,
    ) -> Lookup {
        let ttl = tenant.limits.cache_ttl;
        // Progress lines tell how one execution went: such answers are never stored.
        if self.settings.max_bytes == 0 || ttl == Some(Duration::ZERO) || spec.request.progress {
            return Lookup::Bypass;
        }
        let key = CacheKey::new(spec, tenant.incarnation, variant);
        if self.unstorable.contains_key(&key) {
            return Lookup::Bypass;
        }
        for _ in 0..MAX_FOLLOWS {
            if let Some(result) = self.current(&key, tenant, ttl) {
                self.metrics.cache_hits.inc();
                self.metrics.executions_saved.inc();
                let etag = etag(&key, &result.stamp);
                return Lookup::Hit { result, etag };
            }
            let mut waiting = {
                let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
                match flights.get(&key) {
                    Some(rx) => rx.clone(),
                    None => {
                        let (tx, rx) = watch::channel(());
                        flights.insert(key.clone(), rx);
                        self.metrics.cache_misses.inc();
                        return Lookup::Miss(Ticket {
                            cache: Arc::clone(self),
                            key,
                            leader: Some(tx),
                        });
                    }
                }
            };
            // Another request runs the same query: its result (or its end) first, for a
            // while: a leader whose client stopped reading must not hold the others.
            if tokio::time::timeout(FOLLOW_WAIT, waiting.changed())
                .await
                .is_err()
            {
                return Lookup::Bypass;
            }
            if self.unstorable.contains_key(&key) {
                return Lookup::Bypass;
            }
        }
        Lookup::Bypass
    }

    fn current(
        &self,
        key: &CacheKey,
        tenant: &Tenant,
        ttl: Option<Duration>,
    ) -> Option<Arc<CachedResult>> {
        let result = self.entries.get(key)?;
        let fresh = ttl.is_none_or(|ttl| result.stored_at.elapsed() < ttl);
        if fresh && tenant.is_current(&result.stamp) {
            return Some(result);
        }
        self.entries.invalidate(key);
        None
    }
}

/// The ETag of a result: the key's digest and the newest version of the tables it read, so it
/// changes exactly when the cached bytes would.
fn etag(key: &CacheKey, stamp: &Stamp) -> String {
    format!("\"{:016x}-{}\"", key.digest(), stamp.result_version)
}

/// A miss being run: records its result, and lets waiting identical requests go when done.
pub struct Ticket {
    cache: Arc<ResultCache>,
    key: CacheKey,
    /// Dropping it wakes the followers.
    leader: Option<watch::Sender<()>>,
}

impl Ticket {
    /// The ETag the result will have, if it can be cached.
    fn etag(&self, stamp: &Stamp) -> Option<String> {
        stamp.reusable().then(|| etag(&self.key, stamp))
    }

    /// What a started query's result will be stored by: its ETag and recorder (or neither,
    /// and the followers let go, when it cannot be stored).
    pub fn recording(self, stamp: Option<Stamp>, query_id: Arc<str>) -> Recording {
        let etag = stamp.as_ref().and_then(|s| self.etag(s));
        Recording {
            etag,
            recorder: self.record(stamp, query_id).map(Box::new),
        }
    }

    /// A recorder for the result the stamp describes, or `None` (and the followers let go)
    /// when it cannot be stored.
    fn record(self, stamp: Option<Stamp>, query_id: Arc<str>) -> Option<Recorder> {
        match stamp {
            Some(stamp) if stamp.reusable() => Some(Recorder {
                ticket: self,
                stamp,
                query_id,
                chunks: Vec::new(),
                bytes: 0,
                rows: 0,
                chunk_rows: Vec::new(),
            }),
            _ => {
                self.unstorable();
                None
            }
        }
    }

    fn unstorable(self) {
        self.cache.unstorable.insert(self.key.clone(), ());
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut flights = self.cache.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.remove(&self.key);
        // `leader` drops after this: followers wake to a map without this flight.
        drop(flights);
        self.leader.take();
    }
}

/// How a started query's result is kept: its ETag (when it can be cached) and the recorder
/// that stores it.
#[derive(Default)]
pub struct Recording {
    pub etag: Option<String>,
    pub recorder: Option<Box<Recorder>>,
}

/// Copies a result's wire chunks as they are sent, and stores them once it completes.
pub struct Recorder {
    ticket: Ticket,
    stamp: Stamp,
    query_id: Arc<str>,
    chunks: Vec<Bytes>,
    bytes: usize,
    rows: u64,
    chunk_rows: Vec<usize>,
}

impl Recorder {
    /// Adds a chunk; `None` (the recording dropped) once past the entry limit.
    pub fn push(mut self: Box<Self>, chunk: &Bytes, rows: usize) -> Option<Box<Self>> {
        self.bytes += chunk.len();
        self.rows += rows as u64;
        if self.bytes > self.ticket.cache.settings.max_entry_bytes {
            let Recorder { ticket, .. } = *self;
            ticket.unstorable();
            return None;
        }
        self.chunks.push(chunk.clone());
        self.chunk_rows.push(rows);
        Some(self)
    }

    /// The result ended with its `end` line: store it.
    pub fn complete(self: Box<Self>) {
        let Recorder {
            ticket,
            stamp,
            query_id,
            chunks,
            bytes,
            rows,
            chunk_rows,
        } = *self;
        let cache = &ticket.cache;
        cache.metrics.cache_bytes.add(bytes as i64);
        cache.entries.insert(
            ticket.key.clone(),
            Arc::new(CachedResult {
                chunks,
                bytes,
                rows,
                chunk_rows,
                query_id,
                stamp,
                stored_at: Instant::now(),
            }),
        );
        // Followers wake (ticket dropped here) to find the entry.
    }
}
