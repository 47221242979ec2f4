//! Prometheus metrics: one registry per application, served at `/metrics`.
//!
//! Naming follows Prometheus conventions: a `duckstream_` prefix, base units (seconds, bytes),
//! `_total` on counters. Label sets are small and fixed: `transport` (http|ws|sse|pg), `outcome`
//! (ok|error|cancelled|disconnected|timeout), `code` (the gateway's error codes). SQL text and
//! messages never become labels. Histograms are observed once per query, never per row.
//!
//! Invariant: every series of every family exists from the start (a fresh server's `/metrics`
//! shows zeros, not gaps), because every label value is known up front.

use prometheus::{
    exponential_buckets, CounterVec, Encoder as _, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Which transport serves a query: a metric label, and nothing else (the engine never
/// branches on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Ws,
    Sse,
    /// The PostgreSQL endpoint.
    Pg,
}

impl Transport {
    pub const ALL: [Self; 4] = [Self::Http, Self::Ws, Self::Sse, Self::Pg];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Ws => "ws",
            Self::Sse => "sse",
            Self::Pg => "pg",
        }
    }
}

/// How a query ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
    Cancelled,
    Disconnected,
    Timeout,
}

impl Outcome {
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Error,
        Self::Cancelled,
        Self::Disconnected,
        Self::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Disconnected => "disconnected",
            Self::Timeout => "timeout",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub queries: IntCounterVec,
    pub query_duration: HistogramVec,
    pub ttfb: HistogramVec,
    pub active_queries: IntGaugeVec,
    pub rows_sent: IntCounterVec,
    pub bytes_sent: IntCounterVec,
    pub uncompressed_bytes: IntCounterVec,
    pub errors: IntCounterVec,
    pub interrupts: IntCounter,
    pub active_connections: IntGaugeVec,
    pub pool_wait: Histogram,
    pub slow_consumer_disconnects: IntCounterVec,
    pub backpressure_wait: CounterVec,
    pub auth_failures: IntCounterVec,
    pub connections_refused: IntCounter,
    /// Tenants whose databases were closed after going unused (`engine.tenant_idle`).
    pub tenants_unloaded: IntCounter,
    /// Statements DuckDB ran for clients (one-shot queries and re-runs alike; not the
    /// gateway's own EXPLAINs and catalog reads).
    pub executions: IntCounter,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub cache_evictions: IntCounter,
    pub cache_bytes: prometheus::IntGauge,
    pub executions_saved: IntCounter,
    pub store: StoreMetrics,
}

/// The storage's own state (a lake's files), its upkeep (`engine::maintenance`) and the
/// health of a lake's catalog and change feed. Cloned into the lake store (the series are
/// shared).
#[derive(Clone)]
pub struct StoreMetrics {
    /// Upkeep rounds per tenant, by outcome: `ok`, `skipped` (another writer held the
    /// tenant), `failed`.
    pub maintenance_runs: IntCounterVec,
    /// Unix time of the last upkeep that finished.
    pub maintenance_last_run: prometheus::IntGauge,
    /// Data files of the loaded tenants (a lake's Parquet files).
    pub data_files: prometheus::IntGauge,
    /// Bytes of those files.
    pub data_bytes: prometheus::IntGauge,
    /// Calls to the lake's catalog database that failed or ran out of time.
    pub catalog_errors: IntCounter,
    /// 1 while the change feed's `LISTEN` connection is up (always 0 on local storage).
    pub feed_connected: prometheus::IntGauge,
    /// From a commit in the catalog (any replica's) to this replica having applied it.
    pub feed_lag: Histogram,
    /// Queries and writes refused at once because the storage was known not to answer.
    pub refused: IntCounter,
}

impl StoreMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let maintenance_runs = IntCounterVec::new(
            Opts::new(
                "duckstream_store_maintenance_runs_total",
                "Storage upkeep of one tenant (merging small files, expiring snapshots), by outcome",
            ),
            &["outcome"],
        )?;
        for o in ["ok", "skipped", "failed"] {
            maintenance_runs.with_label_values(&[o]);
        }
        let m = Self {
            maintenance_runs,
            maintenance_last_run: prometheus::IntGauge::new(
                "duckstream_store_maintenance_last_run_timestamp_seconds",
                "Unix time of the last storage upkeep that finished",
            )?,
            data_files: prometheus::IntGauge::new(
                "duckstream_store_data_files",
                "Data files of the loaded tenants' lakes (0 on local storage)",
            )?,
            data_bytes: prometheus::IntGauge::new(
                "duckstream_store_data_bytes",
                "Bytes of the loaded tenants' lake data files (0 on local storage)",
            )?,
            catalog_errors: IntCounter::new(
                "duckstream_store_catalog_errors_total",
                "Calls to the lake's catalog database that failed or timed out",
            )?,
            feed_connected: prometheus::IntGauge::new(
                "duckstream_store_feed_connected",
                "1 while the lake change feed's LISTEN connection is up",
            )?,
            feed_lag: Histogram::with_opts(
                HistogramOpts::new(
                    "duckstream_store_feed_lag_seconds",
                    "From a lake commit (any replica's) to this replica having applied it",
                )
                .buckets(exponential_buckets(0.001, 2.0, 14)?),
            )?,
            refused: IntCounter::new(
                "duckstream_store_refused_total",
                "Queries and writes refused at once (storage_unavailable) while the storage was known not to answer",
            )?,
        };
        registry.register(Box::new(m.maintenance_runs.clone()))?;
        registry.register(Box::new(m.catalog_errors.clone()))?;
        registry.register(Box::new(m.refused.clone()))?;
        registry.register(Box::new(m.feed_lag.clone()))?;
        for g in [
            &m.maintenance_last_run,
            &m.data_files,
            &m.data_bytes,
            &m.feed_connected,
        ] {
            registry.register(Box::new(g.clone()))?;
        }
        Ok(m)
    }
}

impl Metrics {
    /// A registry with every family; `error_codes` are the values of the `code` label.
    pub fn new(error_codes: &[&str]) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let queries = IntCounterVec::new(
            Opts::new(
                "duckstream_queries_total",
                "Queries finished, by transport and outcome",
            ),
            &["transport", "outcome"],
        )?;
        let query_duration = HistogramVec::new(
            HistogramOpts::new(
                "duckstream_query_duration_seconds",
                "From the request being accepted to the end of its stream",
            )
            .buckets(exponential_buckets(0.001, 2.5, 14)?),
            &["transport", "outcome"],
        )?;
        let ttfb = HistogramVec::new(
            HistogramOpts::new(
                "duckstream_query_ttfb_seconds",
                "From the request being accepted to the first data byte handed to the socket",
            )
            // 100 µs … 13 s.
            .buckets(exponential_buckets(0.0001, 2.0, 18)?),
            &["transport"],
        )?;
        let active_queries = IntGaugeVec::new(
            Opts::new("duckstream_active_queries", "Queries running now"),
            &["transport"],
        )?;
        let rows_sent = IntCounterVec::new(
            Opts::new(
                "duckstream_rows_sent_total",
                "Result rows handed to clients",
            ),
            &["transport"],
        )?;
        let bytes_sent = IntCounterVec::new(
            Opts::new(
                "duckstream_bytes_sent_total",
                "Response bytes handed to clients, as sent (compressed if so)",
            ),
            &["transport"],
        )?;
        let uncompressed_bytes = IntCounterVec::new(
            Opts::new(
                "duckstream_uncompressed_bytes_total",
                "NDJSON bytes produced, before compression",
            ),
            &["transport"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "duckstream_query_errors_total",
                "Queries that failed, by error code",
            ),
            &["code"],
        )?;
        let interrupts = IntCounter::new(
            "duckstream_duckdb_interrupts_total",
            "Running DuckDB queries interrupted (cancel, disconnect, timeout, shutdown)",
        )?;
        let active_connections = IntGaugeVec::new(
            Opts::new(
                "duckstream_active_connections",
                "Open client connections streaming results: WebSockets, and HTTP/SSE responses in flight",
            ),
            &["transport"],
        )?;
        let pool_wait = Histogram::with_opts(
            HistogramOpts::new(
                "duckstream_pool_wait_seconds",
                "Time a query waited for a free connection of its tenant and an executor thread",
            )
            .buckets(exponential_buckets(0.00001, 4.0, 12)?),
        )?;
        let slow_consumer_disconnects = IntCounterVec::new(
            Opts::new(
                "duckstream_slow_consumer_disconnects_total",
                "Connections closed because the client took no data for the slow-consumer timeout",
            ),
            &["transport"],
        )?;
        let backpressure_wait = CounterVec::new(
            Opts::new(
                "duckstream_backpressure_wait_seconds_total",
                "Time executors spent waiting for a slow reader (DuckDB paused)",
            ),
            &["transport"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "duckstream_auth_failures_total",
                "Requests refused by authentication or authorisation, by reason",
            ),
            &["reason"],
        )?;
        let connections_refused = IntCounter::new(
            "duckstream_connections_refused_total",
            "Streams and WebSockets refused because their tenant had max_streams open",
        )?;
        let tenants_unloaded = IntCounter::new(
            "duckstream_tenants_unloaded_total",
            "Tenants whose databases were closed after going unused for tenant_idle_secs",
        )?;
        let executions = IntCounter::new(
            "duckstream_duckdb_executions_total",
            "Statements DuckDB ran for clients (one-shot queries and subscription re-runs)",
        )?;
        let cache_hits = IntCounter::new(
            "duckstream_cache_hits_total",
            "Answers served from the result cache",
        )?;
        let cache_misses = IntCounter::new(
            "duckstream_cache_misses_total",
            "Cacheable requests that found no current result in the cache",
        )?;
        let cache_evictions = IntCounter::new(
            "duckstream_cache_evictions_total",
            "Cached results dropped to stay within the byte budget",
        )?;
        let cache_bytes =
            prometheus::IntGauge::new("duckstream_cache_bytes", "Bytes the result cache holds")?;
        let executions_saved = IntCounter::new(
            "duckstream_executions_saved_total",
            "DuckDB executions not run because a cached or shared result answered",
        )?;
        for c in [
            &executions,
            &cache_hits,
            &cache_misses,
            &cache_evictions,
            &executions_saved,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(cache_bytes.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(connections_refused.clone()))?;
        registry.register(Box::new(tenants_unloaded.clone()))?;
        for r in [
            "missing",
            "invalid_key",
            "invalid_token",
            "expired",
            "denied",
            "bad_request",
        ] {
            auth_failures.with_label_values(&[r]);
        }
        registry.register(Box::new(active_connections.clone()))?;
        registry.register(Box::new(pool_wait.clone()))?;
        registry.register(Box::new(slow_consumer_disconnects.clone()))?;
        registry.register(Box::new(backpressure_wait.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        registry.register(Box::new(queries.clone()))?;
        registry.register(Box::new(query_duration.clone()))?;
        registry.register(Box::new(ttfb.clone()))?;
        registry.register(Box::new(active_queries.clone()))?;
        registry.register(Box::new(rows_sent.clone()))?;
        registry.register(Box::new(bytes_sent.clone()))?;
        registry.register(Box::new(uncompressed_bytes.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(interrupts.clone()))?;
        // Create every series up front, so dashboards see zeros instead of gaps.
        for code in error_codes {
            errors.with_label_values(&[code]);
        }
        for t in Transport::ALL.map(Transport::as_str) {
            for o in Outcome::ALL.map(Outcome::as_str) {
                queries.with_label_values(&[t, o]);
                query_duration.with_label_values(&[t, o]);
            }
            for v in [
                &rows_sent,
                &bytes_sent,
                &uncompressed_bytes,
                &slow_consumer_disconnects,
            ] {
                v.with_label_values(&[t]);
            }
            active_queries.with_label_values(&[t]);
            active_connections.with_label_values(&[t]);
            backpressure_wait.with_label_values(&[t]);
            ttfb.with_label_values(&[t]);
        }
        let store = StoreMetrics::register(&registry)?;
        Ok(Self {
            store,
            registry,
            queries,
            query_duration,
            ttfb,
            active_queries,
            rows_sent,
            bytes_sent,
            uncompressed_bytes,
            errors,
            interrupts,
            active_connections,
            pool_wait,
            slow_consumer_disconnects,
            backpressure_wait,
            auth_failures,
            connections_refused,
            tenants_unloaded,
            executions,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_bytes,
            executions_saved,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
