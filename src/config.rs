//! Configuration, layered: built-in defaults, then a TOML file (`--config`), then
//! `DUCKSTREAM_*` environment variables, then command-line flags.
//!
//! Invariant: a [`Config`] that exists has passed [`Config::validate`]; the server never binds
//! with a value it would refuse later.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser};
use serde::Deserialize;

use crate::auth::token::MIN_SECRET_BYTES;
use crate::engine::tenant::check_memory_limit;
use crate::tenants::{TenantsFile, TenantsFileError};
use crate::wire::MAX_CHUNK_ROWS;

/// A secret setting: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Validated settings for one gateway process.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// Connections per tenant database (and so queries running at once per tenant).
    pub pool_size: u32,
    /// Queries running at once in the whole process (executor threads).
    pub max_queries: usize,
    pub chunk_rows: usize,
    pub chunk_bytes: usize,
    pub zstd_level: i32,
    /// DuckDB worker threads per database; `None` lets DuckDB use every core.
    pub duckdb_threads: Option<u32>,
    /// DuckDB memory limit per database, in DuckDB's syntax (`4GB`, `50%`); `None`: DuckDB's default.
    pub duckdb_memory_limit: Option<String>,
    /// DuckDB `max_temp_directory_size` per database (how much a query may spill to disk);
    /// `None`: DuckDB's default, 90 % of the free disk.
    pub duckdb_max_temp_size: Option<String>,
    /// `false` (the default) lets DuckDB stream `LIMIT` and parallel scans in any order.
    pub preserve_insertion_order: bool,
    /// Encoded lines buffered per query between DuckDB and the client.
    pub stream_buffer: usize,
    pub query_timeout: Option<Duration>,
    /// Rows a result may hold; past it the stream ends with `limit_exceeded`.
    pub max_result_rows: Option<u64>,
    /// NDJSON bytes a result's data lines may hold; past it, `limit_exceeded`.
    pub max_result_bytes: Option<u64>,
    /// How long a query may wait for a free connection of its tenant.
    pub queue_timeout: Duration,
    /// Queries that may wait for a slot, per tenant (the tenants file may set its own); more
    /// are refused at once with `too_busy`.
    pub queue_size: usize,
    /// Queries that may wait for a slot in the whole server.
    pub max_queued: usize,
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// WebSocket: queries running at once on one connection.
    pub ws_max_queries: usize,
    /// WebSocket: bytes queued for one connection before its queries pause.
    pub ws_send_budget_bytes: usize,
    /// WebSocket: bytes queued for all connections together before their queries pause.
    pub ws_total_budget_bytes: usize,
    /// WebSocket: a client that takes no data for this long is closed (1008, slow consumer).
    pub ws_slow_consumer_timeout: Duration,
    pub ws_ping_interval: Duration,
    /// WebSocket: a client silent (no pong, no message) for this long is closed.
    pub ws_pong_timeout: Duration,
    /// WebSocket: the largest client message (bigger ones close the socket with 1009).
    pub ws_max_message_bytes: usize,
    /// SSE: a `: keepalive` comment after this long without an event.
    pub sse_keepalive: Duration,
    /// Origins allowed to read responses from a browser (`*` for any); empty: no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// Serve without authentication (no tenants file) on a non-loopback address: every tenant
    /// is open to whoever reaches the port.
    pub insecure: bool,
    /// The tenants file (keys, limits); `None`: no authentication.
    pub tenants_file: Option<PathBuf>,
    /// The tenants file, loaded and checked (from `tenants_file`, or set by an embedder).
    pub tenants: Option<Arc<TenantsFile>>,
    /// HS256 secret for tokens; `None`: a random one per process (tokens die with it).
    pub token_secret: Option<Secret>,
    /// Lifetime of a token when the request names none.
    pub token_ttl: Duration,
    /// The longest lifetime a token may be issued with.
    pub token_max_ttl: Duration,
    /// Open streams and WebSockets per tenant (the tenants file may set its own).
    pub max_connections_per_tenant: usize,
    /// Create the `demo` tenant at start when it is missing.
    pub demo: bool,
    pub demo_rows: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            pool_size: 8,
            max_queries: 64,
            chunk_rows: 1000,
            chunk_bytes: 1 << 20,
            zstd_level: 1,
            duckdb_threads: None,
            duckdb_memory_limit: None,
            duckdb_max_temp_size: None,
            preserve_insertion_order: false,
            stream_buffer: 4,
            query_timeout: None,
            max_result_rows: None,
            max_result_bytes: None,
            queue_timeout: Duration::from_secs(10),
            queue_size: 64,
            max_queued: 1024,
            shutdown_timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            body_timeout: Duration::from_secs(10),
            ws_max_queries: 16,
            ws_send_budget_bytes: 8 << 20,
            ws_total_budget_bytes: 256 << 20,
            ws_slow_consumer_timeout: Duration::from_secs(30),
            ws_ping_interval: Duration::from_secs(10),
            ws_pong_timeout: Duration::from_secs(30),
            ws_max_message_bytes: 1 << 20,
            sse_keepalive: Duration::from_secs(15),
            cors_allow_origins: Vec::new(),
            insecure: false,
            tenants_file: None,
            tenants: None,
            token_secret: None,
            token_ttl: Duration::from_secs(300),
            token_max_ttl: Duration::from_secs(3600),
            max_connections_per_tenant: 1024,
            demo: true,
            demo_rows: 10_000_000,
        }
    }
}

/// Settings that may appear in the file, the environment or on the command line.
/// Every field is optional: absent means "keep the layer below".
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Address to listen on
    #[arg(long, env = "DUCKSTREAM_BIND")]
    pub bind: Option<SocketAddr>,
    /// Directory holding one `<tenant>.duckdb` file per tenant
    #[arg(long, env = "DUCKSTREAM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Pooled DuckDB connections per tenant (= its concurrent queries)
    #[arg(long, env = "DUCKSTREAM_POOL_SIZE")]
    pub pool_size: Option<u32>,
    /// Concurrent queries in the whole server
    #[arg(long, env = "DUCKSTREAM_MAX_QUERIES")]
    pub max_queries: Option<usize>,
    /// Default rows per data line
    #[arg(long, env = "DUCKSTREAM_CHUNK_ROWS")]
    pub chunk_rows: Option<usize>,
    /// A data line is closed once it reaches this many bytes
    #[arg(long, env = "DUCKSTREAM_CHUNK_BYTES")]
    pub chunk_bytes: Option<usize>,
    /// zstd level for compressed streams (-7..=19)
    #[arg(long, env = "DUCKSTREAM_ZSTD_LEVEL", allow_negative_numbers = true)]
    pub zstd_level: Option<i32>,
    /// DuckDB threads per database (0 = all cores)
    #[arg(long, env = "DUCKSTREAM_DUCKDB_THREADS")]
    pub duckdb_threads: Option<u32>,
    /// DuckDB memory limit per database, e.g. 4GB or 50%
    #[arg(long, env = "DUCKSTREAM_DUCKDB_MEMORY_LIMIT")]
    pub duckdb_memory_limit: Option<String>,
    /// DuckDB spill limit per database (max_temp_directory_size), e.g. 20GB
    #[arg(long, env = "DUCKSTREAM_DUCKDB_MAX_TEMP_SIZE")]
    pub duckdb_max_temp_size: Option<String>,
    /// Keep insertion order in results without ORDER BY (makes LIMIT blocking)
    #[arg(long, env = "DUCKSTREAM_PRESERVE_INSERTION_ORDER")]
    pub preserve_insertion_order: Option<bool>,
    /// Encoded lines buffered per query between DuckDB and the client
    #[arg(long, env = "DUCKSTREAM_STREAM_BUFFER")]
    pub stream_buffer: Option<usize>,
    /// Cancel queries running longer than this many seconds (0 = never)
    #[arg(long, env = "DUCKSTREAM_QUERY_TIMEOUT_SECS")]
    pub query_timeout_secs: Option<u64>,
    /// Rows a result may hold before it ends with limit_exceeded (0 = no limit)
    #[arg(long, env = "DUCKSTREAM_MAX_RESULT_ROWS")]
    pub max_result_rows: Option<u64>,
    /// NDJSON bytes a result may hold before it ends with limit_exceeded (0 = no limit)
    #[arg(long, env = "DUCKSTREAM_MAX_RESULT_BYTES")]
    pub max_result_bytes: Option<u64>,
    /// Seconds a query may wait for a free connection of its tenant
    #[arg(long, env = "DUCKSTREAM_QUEUE_TIMEOUT_SECS")]
    pub queue_timeout_secs: Option<u64>,
    /// Queries that may wait for a slot per tenant (0 = none wait: too_busy at once)
    #[arg(long, env = "DUCKSTREAM_QUEUE_SIZE")]
    pub queue_size: Option<usize>,
    /// Queries that may wait for a slot in the whole server
    #[arg(long, env = "DUCKSTREAM_MAX_QUEUED")]
    pub max_queued: Option<usize>,
    /// Seconds to wait for streams to end on shutdown
    #[arg(long, env = "DUCKSTREAM_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Largest accepted request body, in bytes
    #[arg(long, env = "DUCKSTREAM_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a request body may take to arrive (slow senders get 408)
    #[arg(long, env = "DUCKSTREAM_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// WebSocket: queries running at once on one connection
    #[arg(long, env = "DUCKSTREAM_WS_MAX_QUERIES")]
    pub ws_max_queries: Option<usize>,
    /// WebSocket: bytes queued per connection before its queries pause
    #[arg(long, env = "DUCKSTREAM_WS_SEND_BUDGET_BYTES")]
    pub ws_send_budget_bytes: Option<usize>,
    /// WebSocket: bytes queued for all connections together before their queries pause
    #[arg(long, env = "DUCKSTREAM_WS_TOTAL_BUDGET_BYTES")]
    pub ws_total_budget_bytes: Option<usize>,
    /// WebSocket: seconds a client may take no data before it is closed (1008)
    #[arg(long, env = "DUCKSTREAM_WS_SLOW_CONSUMER_SECS")]
    pub ws_slow_consumer_secs: Option<u64>,
    /// WebSocket: seconds between server pings
    #[arg(long, env = "DUCKSTREAM_WS_PING_INTERVAL_SECS")]
    pub ws_ping_interval_secs: Option<u64>,
    /// WebSocket: seconds without a pong before the connection is closed
    #[arg(long, env = "DUCKSTREAM_WS_PONG_TIMEOUT_SECS")]
    pub ws_pong_timeout_secs: Option<u64>,
    /// WebSocket: largest client message in bytes (bigger closes with 1009)
    #[arg(long, env = "DUCKSTREAM_WS_MAX_MESSAGE_BYTES")]
    pub ws_max_message_bytes: Option<usize>,
    /// Origins allowed to read responses in a browser, comma-separated (`*` for any)
    #[arg(long, env = "DUCKSTREAM_CORS_ALLOW_ORIGINS", value_delimiter = ',')]
    pub cors_allow_origins: Option<Vec<String>>,
    /// SSE: seconds without an event before a keep-alive comment
    #[arg(long, env = "DUCKSTREAM_SSE_KEEPALIVE_SECS")]
    pub sse_keepalive_secs: Option<u64>,
    /// Allow serving without authentication on a non-loopback address
    #[arg(long, env = "DUCKSTREAM_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<bool>,
    /// Tenants file (TOML): API key hashes, admin keys, per-tenant limits; turns auth on
    #[arg(long, env = "DUCKSTREAM_TENANTS_FILE")]
    pub tenants_file: Option<PathBuf>,
    /// Secret (at least 32 bytes) that signs tokens; default: random per process
    #[arg(long, env = "DUCKSTREAM_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<String>,
    /// Seconds a token lives when the request names no ttl_secs
    #[arg(long, env = "DUCKSTREAM_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// The longest token lifetime, in seconds
    #[arg(long, env = "DUCKSTREAM_TOKEN_MAX_TTL_SECS")]
    pub token_max_ttl_secs: Option<u64>,
    /// Open streams and WebSockets per tenant
    #[arg(long, env = "DUCKSTREAM_MAX_CONNECTIONS_PER_TENANT")]
    pub max_connections_per_tenant: Option<usize>,
    /// Create the demo tenant at start if it is missing
    #[arg(long, env = "DUCKSTREAM_DEMO")]
    pub demo: Option<bool>,
    /// Rows in the generated demo table
    #[arg(long, env = "DUCKSTREAM_DEMO_ROWS")]
    pub demo_rows: Option<u64>,
}

/// The command line: `duckstream [--config FILE] [settings...]`. With no subcommand, it serves.
#[derive(Debug, Parser)]
#[command(
    name = "duckstream",
    version,
    about = "Streams DuckDB query results as NDJSON + zstd"
)]
pub struct Cli {
    /// TOML file with settings (same names as the flags, with underscores)
    #[arg(long, env = "DUCKSTREAM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary does; with no subcommand, it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Serve (the default).
    Serve,
    /// Create the demo tenant in the data directory (if missing) and exit; for images.
    SeedDemo,
    /// Print a new API key and the hash to put in the tenants file, then exit.
    Keygen,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Tenants(#[from] TenantsFileError),
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

impl Config {
    /// Loads the layers from the real command line and environment.
    pub fn load() -> Result<(Self, Command), ConfigError> {
        let cli = Cli::parse();
        let command = cli.command.unwrap_or(Command::Serve);
        Ok((Self::from_cli(cli)?, command))
    }

    /// Builds the configuration from parsed arguments (env already merged by clap).
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: Overrides = toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source: Box::new(source),
            })?;
            config.apply(file);
        }
        config.apply(cli.overrides);
        if let Some(path) = &config.tenants_file {
            config.tenants = Some(Arc::new(TenantsFile::load(path)?));
        }
        config.validate()?;
        Ok(config)
    }

    fn apply(&mut self, o: Overrides) {
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = o.$field { self.$field = v; } )* };
        }
        set!(
            bind,
            data_dir,
            pool_size,
            max_queries,
            chunk_rows,
            chunk_bytes,
            zstd_level
        );
        set!(
            preserve_insertion_order,
            stream_buffer,
            max_body_bytes,
            demo,
            demo_rows
        );
        set!(
            ws_max_queries,
            ws_send_budget_bytes,
            ws_total_budget_bytes,
            ws_max_message_bytes
        );
        set!(cors_allow_origins, insecure, max_connections_per_tenant);
        set!(queue_size, max_queued);
        if let Some(p) = o.tenants_file {
            self.tenants_file = Some(p);
        }
        if let Some(t) = o.token_secret {
            self.token_secret = Some(Secret(t));
        }
        if let Some(s) = o.token_ttl_secs {
            self.token_ttl = Duration::from_secs(s);
        }
        if let Some(s) = o.token_max_ttl_secs {
            self.token_max_ttl = Duration::from_secs(s);
        }
        if let Some(s) = o.ws_slow_consumer_secs {
            self.ws_slow_consumer_timeout = Duration::from_secs(s);
        }
        if let Some(s) = o.ws_ping_interval_secs {
            self.ws_ping_interval = Duration::from_secs(s);
        }
        if let Some(s) = o.ws_pong_timeout_secs {
            self.ws_pong_timeout = Duration::from_secs(s);
        }
        if let Some(s) = o.body_timeout_secs {
            self.body_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = o.sse_keepalive_secs {
            self.sse_keepalive = Duration::from_secs(s);
        }
        if let Some(t) = o.duckdb_threads {
            self.duckdb_threads = (t > 0).then_some(t);
        }
        if let Some(m) = o.duckdb_memory_limit {
            self.duckdb_memory_limit = (!m.trim().is_empty()).then_some(m);
        }
        if let Some(m) = o.duckdb_max_temp_size {
            self.duckdb_max_temp_size = (!m.trim().is_empty()).then_some(m);
        }
        if let Some(s) = o.query_timeout_secs {
            self.query_timeout = (s > 0).then(|| Duration::from_secs(s));
        }
        if let Some(n) = o.max_result_rows {
            self.max_result_rows = (n > 0).then_some(n);
        }
        if let Some(n) = o.max_result_bytes {
            self.max_result_bytes = (n > 0).then_some(n);
        }
        if let Some(s) = o.queue_timeout_secs {
            self.queue_timeout = Duration::from_secs(s);
        }
        if let Some(s) = o.shutdown_timeout_secs {
            self.shutdown_timeout = Duration::from_secs(s);
        }
    }

    /// Refuses values the server could not run with, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=1024).contains(&self.pool_size) {
            return Err(invalid("pool_size", "must be between 1 and 1024"));
        }
        if !(1..=4096).contains(&self.max_queries) {
            return Err(invalid("max_queries", "must be between 1 and 4096"));
        }
        if !(1..=MAX_CHUNK_ROWS).contains(&self.chunk_rows) {
            return Err(invalid(
                "chunk_rows",
                format!("must be between 1 and {MAX_CHUNK_ROWS}"),
            ));
        }
        if !(1024..=64 << 20).contains(&self.chunk_bytes) {
            return Err(invalid("chunk_bytes", "must be between 1024 and 67108864"));
        }
        if !(-7..=19).contains(&self.zstd_level) {
            return Err(invalid(
                "zstd_level",
                "must be between -7 and 19 (higher levels need windows browsers refuse)",
            ));
        }
        if !(1..=1024).contains(&self.stream_buffer) {
            return Err(invalid("stream_buffer", "must be between 1 and 1024"));
        }
        if self.max_body_bytes < 64 {
            return Err(invalid("max_body_bytes", "must be at least 64"));
        }
        if !(1..=1024).contains(&self.ws_max_queries) {
            return Err(invalid("ws_max_queries", "must be between 1 and 1024"));
        }
        if self.ws_send_budget_bytes < 64 * 1024 {
            return Err(invalid("ws_send_budget_bytes", "must be at least 65536"));
        }
        if self.ws_total_budget_bytes < self.ws_send_budget_bytes
            || self.ws_total_budget_bytes > u32::MAX as usize
        {
            return Err(invalid(
                "ws_total_budget_bytes",
                "must be at least ws_send_budget_bytes and below 4 GiB",
            ));
        }
        if self.ws_max_message_bytes < 1024 {
            return Err(invalid("ws_max_message_bytes", "must be at least 1024"));
        }
        if self.ws_ping_interval.is_zero() || self.ws_pong_timeout <= self.ws_ping_interval {
            return Err(invalid(
                "ws_pong_timeout_secs",
                "must be longer than ws_ping_interval_secs (both above 0)",
            ));
        }
        if self.sse_keepalive.is_zero() {
            return Err(invalid("sse_keepalive_secs", "must be above 0"));
        }
        if self.ws_slow_consumer_timeout.is_zero() {
            return Err(invalid("ws_slow_consumer_secs", "must be above 0"));
        }
        if let Some(m) = &self.duckdb_memory_limit {
            check_memory_limit(m).map_err(|e| invalid("duckdb_memory_limit", e))?;
        }
        if let Some(m) = &self.duckdb_max_temp_size {
            check_memory_limit(m).map_err(|e| invalid("duckdb_max_temp_size", e))?;
        }
        if self
            .token_secret
            .as_ref()
            .is_some_and(|s| s.0.len() < MIN_SECRET_BYTES)
        {
            return Err(invalid(
                "token_secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        if self.token_ttl.is_zero() || self.token_ttl > self.token_max_ttl {
            return Err(invalid(
                "token_ttl_secs",
                "must be above 0 and at most token_max_ttl_secs",
            ));
        }
        if self.max_connections_per_tenant == 0 {
            return Err(invalid("max_connections_per_tenant", "must be at least 1"));
        }
        if !self.bind.ip().is_loopback() && !self.insecure && self.tenants.is_none() {
            return Err(invalid(
                "bind",
                format!(
                    "{} is not a loopback address and there is no authentication: every tenant \
                     would be open to the network. Give a tenants file (--tenants-file), bind \
                     to 127.0.0.1, or pass --insecure (DUCKSTREAM_INSECURE=true) if something \
                     in front of duckstream guards it",
                    self.bind
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        Ok(())
    }

    /// A configuration for tests and embedding: loopback on a free port, no demo.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            demo: false,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("duckstream").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "pool_size = 7\nchunk_rows = 50\n").unwrap();
        let c = Config::from_cli(cli(&[
            "--config",
            file.to_str().unwrap(),
            "--chunk-rows",
            "20",
        ]))
        .unwrap();
        assert_eq!(c.pool_size, 7);
        assert_eq!(c.chunk_rows, 20);
        assert_eq!(c.zstd_level, 1);
        let c = Config::from_cli(cli(&[
            "--ws-slow-consumer-secs",
            "3",
            "--ws-max-queries",
            "2",
            "--ws-pong-timeout-secs",
            "40",
        ]))
        .unwrap();
        assert_eq!(c.ws_slow_consumer_timeout, Duration::from_secs(3));
        assert_eq!(c.ws_max_queries, 2);
        assert_eq!(c.ws_pong_timeout, Duration::from_secs(40));
    }

    #[test]
    fn invalid_values_are_refused_by_name() {
        let e = Config::from_cli(cli(&["--zstd-level", "30"])).unwrap_err();
        assert!(e.to_string().contains("zstd_level"), "{e}");
        let e = Config::from_cli(cli(&["--duckdb-memory-limit", "lots"])).unwrap_err();
        assert!(e.to_string().contains("duckdb_memory_limit"), "{e}");
        assert!(Cli::try_parse_from(["duckstream", "--bind", "nope"]).is_err());
        let e = Config::from_cli(cli(&["--bind", "0.0.0.0:8080"])).unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
        let c = Config::from_cli(cli(&["--bind", "0.0.0.0:8080", "--insecure"])).unwrap();
        assert!(c.insecure);
        let e = Config::from_cli(cli(&["--token-secret", "short"])).unwrap_err();
        assert!(e.to_string().contains("token_secret"), "{e}");
        assert!(!format!("{:?}", Secret("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn a_tenants_file_allows_a_public_bind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.toml");
        std::fs::write(&file, "[tenants.acme]\nmax_queries = 3\n").unwrap();
        let c = Config::from_cli(cli(&[
            "--bind",
            "0.0.0.0:8080",
            "--tenants-file",
            file.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(c.tenants.is_some());
        std::fs::write(&file, "[tenants.acme]\nmax_queries = 0\n").unwrap();
        let e = Config::from_cli(cli(&["--tenants-file", file.to_str().unwrap()])).unwrap_err();
        assert!(e.to_string().contains("tenants.acme"), "{e}");
    }
}
