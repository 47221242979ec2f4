//! What one tenant may use, defined once: the same [`Limits`] is the `[limits]` section of the
//! config file, the global flags (`--pool-size`, `--query-timeout-secs`, …) and each tenant's
//! entry in the tenants file.
//!
//! Every field is optional: absent means "the layer below" ([`Limits::over`]), so one struct
//! serves as a layer (file, environment, flags, a tenant's entry) and, laid over
//! [`Limits::defaults`], as the resolved limits of a tenant. The keys `max_queries` and
//! `max_connections` of older files are read as `pool_size` and `max_streams`
//! ([`super::deprecated`]).
//!
//! Invariants:
//! - 0 means "none" for `query_timeout_secs`, `max_result_rows`, `max_result_bytes` and
//!   `threads` (all cores); an empty `memory_limit` or `max_temp_size` means DuckDB's default.
//!   The accessors ([`Limits::query_timeout`], [`Limits::memory_limit`], …) return that
//!   meaning, so consumers never interpret 0 or "" themselves.
//! - A limit that passed [`Limits::validate`] can be handed to DuckDB: sizes were checked
//!   with [`check_size`] before DuckDB sees them.

use std::time::Duration;

use serde::Deserialize;

/// Per-tenant limits; absent fields come from the layer below (see the module doc).
///
/// `Limits::default()` is the empty layer (changes nothing); [`Limits::defaults`] is the
/// built-in global layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Cancel queries running longer than this many seconds (0 = never)
    #[arg(long, env = "DUCKSTREAM_QUERY_TIMEOUT_SECS")]
    pub query_timeout_secs: Option<u64>,
    /// Rows a result may hold before it ends with limit_exceeded (0 = no limit)
    #[arg(long, env = "DUCKSTREAM_MAX_RESULT_ROWS")]
    pub max_result_rows: Option<u64>,
    /// NDJSON bytes a result may hold before it ends with limit_exceeded (0 = no limit)
    #[arg(long, env = "DUCKSTREAM_MAX_RESULT_BYTES")]
    pub max_result_bytes: Option<u64>,
    /// Pooled DuckDB connections per tenant (= its concurrent queries)
    #[arg(long, env = "DUCKSTREAM_POOL_SIZE")]
    pub pool_size: Option<u32>,
    /// Open streams (HTTP, SSE) and WebSockets per tenant
    #[arg(
        id = "max_streams_per_tenant",
        long = "max-streams-per-tenant",
        value_name = "MAX_STREAMS_PER_TENANT",
        env = "DUCKSTREAM_MAX_STREAMS_PER_TENANT"
    )]
    pub max_streams: Option<usize>,
    /// Queries that may wait for a slot per tenant (0 = none wait: too_busy at once)
    #[arg(long, env = "DUCKSTREAM_QUEUE_SIZE")]
    pub queue_size: Option<usize>,
    /// DuckDB memory limit per database, e.g. 4GB or 50%
    #[arg(
        id = "duckdb_memory_limit",
        long = "duckdb-memory-limit",
        value_name = "DUCKDB_MEMORY_LIMIT",
        env = "DUCKSTREAM_DUCKDB_MEMORY_LIMIT"
    )]
    pub memory_limit: Option<String>,
    /// DuckDB spill limit per database (max_temp_directory_size), e.g. 20GB
    #[arg(
        id = "duckdb_max_temp_size",
        long = "duckdb-max-temp-size",
        value_name = "DUCKDB_MAX_TEMP_SIZE",
        env = "DUCKSTREAM_DUCKDB_MAX_TEMP_SIZE"
    )]
    pub max_temp_size: Option<String>,
    /// DuckDB threads per database (0 = all cores)
    #[arg(
        id = "duckdb_threads",
        long = "duckdb-threads",
        value_name = "DUCKDB_THREADS",
        env = "DUCKSTREAM_DUCKDB_THREADS"
    )]
    pub threads: Option<u32>,
    /// Largest upload (request body, decompressed) per dataset write, in bytes
    #[arg(long, env = "DUCKSTREAM_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Seconds a cached result may be answered (absent = until a table it read is written;
    /// 0 = this tenant's results are never cached)
    #[arg(long, env = "DUCKSTREAM_CACHE_TTL_SECS")]
    pub cache_ttl_secs: Option<u64>,
    /// Live subscriptions the tenant may hold at once, over all its sockets and streams
    #[arg(long, env = "DUCKSTREAM_MAX_SUBSCRIPTIONS")]
    pub max_subscriptions: Option<usize>,
    /// The shortest re-run interval a subscription may ask for, in milliseconds
    #[arg(long, env = "DUCKSTREAM_MIN_INTERVAL_MS")]
    pub min_interval_ms: Option<u64>,
    /// Bytes the tenant's derived tables (Mosaic's pre-aggregations) may hold in memory
    #[arg(long, env = "DUCKSTREAM_SCRATCH_BYTES")]
    pub scratch_bytes: Option<u64>,
}

/// Built-in global values of the limits that always have one (see [`Limits::defaults`]).
const DEFAULT_POOL_SIZE: u32 = 8;
const DEFAULT_MAX_STREAMS: usize = 1024;
const DEFAULT_QUEUE_SIZE: usize = 64;
const DEFAULT_MAX_UPLOAD_BYTES: u64 = 200 << 30;

/// The first limit [`Limits::validate`] refuses, with both of its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Problem {
    /// Its key in `[limits]` and in the tenants file (`max_streams`).
    pub key: &'static str,
    /// The global setting as messages have always named it: its flag with underscores
    /// (`max_streams_per_tenant`).
    pub setting: &'static str,
    pub reason: String,
}

impl Limits {
    /// The built-in global layer: 8 pooled connections (queries at once), 1024 open streams
    /// and 64 waiting queries per tenant; no timeout or result limit; DuckDB's own threads,
    /// memory and spill limits.
    pub fn defaults() -> Limits {
        Limits {
            pool_size: Some(DEFAULT_POOL_SIZE),
            max_streams: Some(DEFAULT_MAX_STREAMS),
            queue_size: Some(DEFAULT_QUEUE_SIZE),
            ..Limits::default()
        }
    }

    /// `self` laid over `base`: each field `self` sets wins, the others come from `base`.
    pub fn over(&self, base: &Limits) -> Limits {
        // A struct literal (no `..`): a new field cannot be forgotten here.
        Limits {
            query_timeout_secs: self.query_timeout_secs.or(base.query_timeout_secs),
            max_result_rows: self.max_result_rows.or(base.max_result_rows),
            max_result_bytes: self.max_result_bytes.or(base.max_result_bytes),
            pool_size: self.pool_size.or(base.pool_size),
            max_streams: self.max_streams.or(base.max_streams),
            queue_size: self.queue_size.or(base.queue_size),
            memory_limit: self
                .memory_limit
                .clone()
                .or_else(|| base.memory_limit.clone()),
            max_temp_size: self
                .max_temp_size
                .clone()
                .or_else(|| base.max_temp_size.clone()),
            threads: self.threads.or(base.threads),
            max_upload_bytes: self.max_upload_bytes.or(base.max_upload_bytes),
            cache_ttl_secs: self.cache_ttl_secs.or(base.cache_ttl_secs),
            max_subscriptions: self.max_subscriptions.or(base.max_subscriptions),
            min_interval_ms: self.min_interval_ms.or(base.min_interval_ms),
            scratch_bytes: self.scratch_bytes.or(base.scratch_bytes),
        }
    }

    /// Refuses a limit the server could not run with. `place` says where these limits were
    /// written (`limits`, `tenants.acme`); the message names the key there
    /// (`tenants.acme.pool_size: must be between 1 and 1024`).
    pub fn validate(&self, place: &str) -> Result<(), String> {
        match self.problem() {
            None => Ok(()),
            Some(p) => Err(format!("{place}.{}: {}", p.key, p.reason)),
        }
    }

    /// The first invalid limit, if any (what [`Limits::validate`] reports).
    pub(super) fn problem(&self) -> Option<Problem> {
        let problem = |key: &'static str, setting: &'static str, reason: String| {
            Some(Problem {
                key,
                setting,
                reason,
            })
        };
        if self.pool_size.is_some_and(|n| !(1..=1024).contains(&n)) {
            return problem(
                "pool_size",
                "pool_size",
                "must be between 1 and 1024".into(),
            );
        }
        if self.max_streams == Some(0) {
            return problem(
                "max_streams",
                "max_streams_per_tenant",
                "must be at least 1".into(),
            );
        }
        if let Some(Err(e)) = self.memory_limit().map(check_size) {
            return problem("memory_limit", "duckdb_memory_limit", e);
        }
        if let Some(Err(e)) = self.max_temp_size().map(check_size) {
            return problem("max_temp_size", "duckdb_max_temp_size", e);
        }
        None
    }

    /// How long a cached result may be answered; `None`: until its tables change; zero: never
    /// cached.
    pub fn cache_ttl(&self) -> Option<Duration> {
        self.cache_ttl_secs.map(Duration::from_secs)
    }

    /// How long a query may run; `None`: no timeout (absent or 0).
    pub fn query_timeout(&self) -> Option<Duration> {
        self.query_timeout_secs
            .filter(|&s| s > 0)
            .map(Duration::from_secs)
    }

    /// Rows a result may hold; `None`: unlimited (absent or 0).
    pub fn max_result_rows(&self) -> Option<u64> {
        self.max_result_rows.filter(|&n| n > 0)
    }

    /// NDJSON bytes a result's data lines may hold; `None`: unlimited (absent or 0).
    pub fn max_result_bytes(&self) -> Option<u64> {
        self.max_result_bytes.filter(|&n| n > 0)
    }

    /// Pooled DuckDB connections (= queries running at once); absent: the built-in default.
    pub fn pool_size(&self) -> u32 {
        self.pool_size.unwrap_or(DEFAULT_POOL_SIZE)
    }

    /// Open streams (HTTP, SSE) and WebSockets at once; absent: the built-in default.
    pub fn max_streams(&self) -> usize {
        self.max_streams.unwrap_or(DEFAULT_MAX_STREAMS)
    }

    /// Queries that may wait for one of [`Limits::pool_size`]; absent: the built-in default.
    pub fn queue_size(&self) -> usize {
        self.queue_size.unwrap_or(DEFAULT_QUEUE_SIZE)
    }

    /// DuckDB `memory_limit` of the database; `None`: DuckDB's default (absent or empty).
    pub fn memory_limit(&self) -> Option<&str> {
        non_empty(&self.memory_limit)
    }

    /// DuckDB `max_temp_directory_size` (spilling); `None`: DuckDB's default, 90 % of the free
    /// disk (absent or empty).
    pub fn max_temp_size(&self) -> Option<&str> {
        non_empty(&self.max_temp_size)
    }

    /// The largest upload; absent: the built-in default (200 GiB).
    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_bytes.unwrap_or(DEFAULT_MAX_UPLOAD_BYTES)
    }

    /// Live subscriptions at once; absent: 10,000.
    pub fn max_subscriptions(&self) -> usize {
        self.max_subscriptions.unwrap_or(10_000)
    }

    /// The scratch space for derived tables; absent: 256 MiB.
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch_bytes.unwrap_or(256 << 20)
    }

    /// The shortest subscription interval; absent: 1 s.
    pub fn min_interval(&self) -> Duration {
        Duration::from_millis(self.min_interval_ms.unwrap_or(1000))
    }

    /// DuckDB `threads` of the database; `None`: every core (absent or 0).
    pub fn threads(&self) -> Option<u32> {
        self.threads.filter(|&t| t > 0)
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|m| !m.trim().is_empty())
}

/// Checks a DuckDB size (`4GB`, `512MiB`, `50%`) before DuckDB sees it, so that a typo fails
/// at start instead of at a tenant's first query.
pub fn check_size(m: &str) -> Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_layer_wins_field_by_field() {
        let base = Limits {
            query_timeout_secs: Some(9),
            memory_limit: Some("4GB".into()),
            ..Limits::defaults()
        };
        let top = Limits {
            pool_size: Some(2),
            query_timeout_secs: Some(0),
            ..Limits::default()
        };
        let l = top.over(&base);
        assert_eq!(l.pool_size(), 2);
        assert_eq!(l.queue_size(), 64);
        assert_eq!(l.query_timeout(), None, "0 in the upper layer turns it off");
        assert_eq!(l.memory_limit(), Some("4GB"));
        assert_eq!(Limits::default().over(&base), base);
    }

    #[test]
    fn zero_and_empty_mean_none() {
        let l = Limits {
            query_timeout_secs: Some(0),
            max_result_rows: Some(0),
            max_result_bytes: Some(0),
            threads: Some(0),
            memory_limit: Some(" ".into()),
            max_temp_size: Some(String::new()),
            ..Limits::defaults()
        };
        assert_eq!(l.query_timeout(), None);
        assert_eq!(l.max_result_rows(), None);
        assert_eq!(l.max_result_bytes(), None);
        assert_eq!(l.threads(), None);
        assert_eq!(l.memory_limit(), None);
        assert_eq!(l.max_temp_size(), None);
        assert_eq!(l.validate("limits"), Ok(()));
        let l = Limits {
            query_timeout_secs: Some(3),
            max_result_rows: Some(5),
            threads: Some(2),
            ..Limits::default()
        };
        assert_eq!(l.query_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(l.max_result_rows(), Some(5));
        assert_eq!(l.threads(), Some(2));
    }

    #[test]
    fn bad_limits_are_refused_by_key() {
        let e = Limits {
            pool_size: Some(0),
            ..Limits::default()
        }
        .validate("tenants.acme")
        .unwrap_err();
        assert_eq!(e, "tenants.acme.pool_size: must be between 1 and 1024");
        let e = Limits {
            max_temp_size: Some("lots".into()),
            ..Limits::default()
        }
        .validate("limits")
        .unwrap_err();
        assert!(e.starts_with("limits.max_temp_size: 'lots'"), "{e}");
        assert!(check_size("50%").is_ok() && check_size("512MiB").is_ok());
        assert!(check_size("0GB").is_err() && check_size("GB").is_err());
    }
}
