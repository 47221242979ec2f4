//! Configuration, layered: built-in defaults, then a TOML file (`--config`), then
//! `DUCKSTREAM_*` environment variables, then command-line flags.
//!
//! The settings come in sections (`[server]`, `[engine]`, `[limits]`, `[websocket]`, `[sse]`,
//! `[auth]`). Each section is two structs: the section as the server uses it
//! ([`ServerSection`], …) and a layer of `Option`s ([`ServerLayer`], …) that is at once the
//! section of the TOML file (serde) and its flags and environment variables (clap). A layer's
//! `apply` lays it over its section, so a new setting is one field in the layer, one in the
//! section, its default and one line in `apply`. The per-tenant limits are a single struct,
//! [`Limits`], which is its own layer and also each tenant's entry in the tenants file. Renamed
//! settings keep their old names as deprecated aliases ([`deprecated`]); the configuration
//! lists those it was given in [`Config::deprecated`].
//!
//! Invariants:
//! - [`Config::from_cli`] returns only a configuration that passed [`Config::validate`];
//!   `Application::build` validates again, since an embedder or a test builds its `Config`
//!   by hand. The server never binds with a value it would refuse.
//! - Unknown keys (a misspelt setting, a setting in the wrong section, an unknown section) are
//!   refused, in the config file as in the tenants file.
//! - One name per setting: the section structs and the messages use only the new names; an
//!   old name is turned into its new one while the layers are read.

pub mod deprecated;
pub mod limits;
pub mod tenants;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser};
use serde::Deserialize;

pub use self::deprecated::Deprecation;
pub use self::limits::{check_size, Limits};
pub use self::tenants::{TenantEntry, TenantsFile, TenantsFileError};
use crate::auth::token::MIN_SECRET_BYTES;
use crate::wire::{TenantId, MAX_CHUNK_ROWS};

/// A secret setting: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// So that clap parses `--token-secret` straight into a [`Secret`].
impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// Copies each field a layer sets onto the section's field of the same name.
macro_rules! set {
    ($section:ident, $layer:ident; $($field:ident),* $(,)?) => {
        $( if let Some(v) = $layer.$field { $section.$field = v; } )*
    };
}

/// Copies each `*_secs` field a layer sets onto the section's `Duration`.
macro_rules! set_secs {
    ($section:ident, $layer:ident; $($from:ident => $to:ident),* $(,)?) => {
        $( if let Some(s) = $layer.$from { $section.$to = Duration::from_secs(s); } )*
    };
}

pub mod pg;
pub mod storage;

pub use pg::{PgBind, PgSection};
pub use storage::{StorageKind, StorageSection};

/// Validated settings for one gateway process.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerSection,
    pub engine: EngineSection,
    /// The global limits of every tenant (the tenants file may set its own, see
    /// [`Config::tenant_limits`]). Starts from [`Limits::defaults`], so every limit that has
    /// a default is `Some`.
    pub limits: Limits,
    pub websocket: WebSocketSection,
    pub sse: SseSection,
    pub auth: AuthSection,
    pub storage: StorageSection,
    pub pg: PgSection,
    /// The deprecated names this configuration was given, each once; `main` logs them.
    pub deprecated: Vec<Deprecation>,
}

impl Default for Config {
    /// The built-in defaults (the bottom layer).
    fn default() -> Self {
        Self {
            server: ServerSection::default(),
            engine: EngineSection::default(),
            limits: Limits::defaults(),
            websocket: WebSocketSection::default(),
            sse: SseSection::default(),
            auth: AuthSection::default(),
            storage: StorageSection::default(),
            pg: PgSection::default(),
            deprecated: Vec::new(),
        }
    }
}

/// `[server]`: the listening socket, the HTTP layer and the data directory; what the process
/// as a whole is, independent of queries.
#[derive(Debug, Clone)]
pub struct ServerSection {
    pub bind: SocketAddr,
    /// One `<tenant>.duckdb` file per tenant.
    pub data_dir: PathBuf,
    /// How long to wait for streams to end on shutdown.
    pub shutdown_timeout: Duration,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (at least 1 s).
    pub body_timeout: Duration,
    /// The longest record an upload may hold: an NDJSON line, a CSV record, a GeoJSON
    /// feature (checked as the body streams, before DuckDB reads it).
    pub max_upload_record_bytes: u64,
    /// Origins allowed to read responses from a browser (`*` for any); empty: no CORS headers.
    pub cors_allow_origins: Vec<String>,
    /// Serve without authentication (no tenants file) on a non-loopback address: every tenant
    /// is open to whoever reaches the port.
    pub insecure: bool,
    /// Create the `demo` tenant at start when it is missing.
    pub demo: bool,
    pub demo_rows: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            shutdown_timeout: Duration::from_secs(5),
            max_body_bytes: 1 << 20,
            body_timeout: Duration::from_secs(10),
            // DuckDB's read_json reads objects of at most 16 MiB (`maximum_object_size`).
            max_upload_record_bytes: 16 << 20,
            cors_allow_origins: Vec::new(),
            insecure: false,
            demo: true,
            demo_rows: 10_000_000,
        }
    }
}

/// `[server]` as a layer: the file's section, and its flags and environment variables.
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct ServerLayer {
    /// Address to listen on
    #[arg(long, env = "DUCKSTREAM_BIND")]
    pub bind: Option<SocketAddr>,
    /// Directory holding one `<tenant>.duckdb` file per tenant
    #[arg(long, env = "DUCKSTREAM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Seconds to wait for streams to end on shutdown
    #[arg(long, env = "DUCKSTREAM_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,
    /// Largest accepted request body, in bytes
    #[arg(long, env = "DUCKSTREAM_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds a request body may take to arrive (slow senders get 408)
    #[arg(long, env = "DUCKSTREAM_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Longest record of an upload (NDJSON line, CSV record, GeoJSON feature), in bytes
    #[arg(long, env = "DUCKSTREAM_MAX_UPLOAD_RECORD_BYTES")]
    pub max_upload_record_bytes: Option<u64>,
    /// Origins allowed to read responses in a browser, comma-separated (`*` for any)
    #[arg(long, env = "DUCKSTREAM_CORS_ALLOW_ORIGINS", value_delimiter = ',')]
    pub cors_allow_origins: Option<Vec<String>>,
    /// Allow serving without authentication on a non-loopback address
    #[arg(long, env = "DUCKSTREAM_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    pub insecure: Option<bool>,
    /// Create the demo tenant at start if it is missing
    #[arg(long, env = "DUCKSTREAM_DEMO")]
    pub demo: Option<bool>,
    /// Rows in the generated demo table
    #[arg(long, env = "DUCKSTREAM_DEMO_ROWS")]
    pub demo_rows: Option<u64>,
}

impl ServerSection {
    fn apply(&mut self, layer: ServerLayer) {
        set!(self, layer; bind, data_dir, max_body_bytes, cors_allow_origins);
        set!(self, layer; max_upload_record_bytes);
        set!(self, layer; insecure, demo, demo_rows);
        set_secs!(self, layer; shutdown_timeout_secs => shutdown_timeout);
        if let Some(s) = layer.body_timeout_secs {
            self.body_timeout = Duration::from_secs(s.max(1));
        }
    }
}

/// `[engine]`: how queries run and are encoded, server-wide (the executor, the global wait
/// queue, chunking, compression); what one tenant may use is in [`Limits`].
#[derive(Debug, Clone)]
pub struct EngineSection {
    /// Executor threads: queries running at once in the whole process.
    pub executor_threads: usize,
    /// Queries that may wait for a slot in the whole server.
    pub max_queued: usize,
    /// How long a query may wait for a free pooled connection of its tenant.
    pub queue_timeout: Duration,
    /// An HTTP/SSE query whose reader takes not one line for this long is stopped as gone
    /// (zero: never).
    pub stall_timeout: Duration,
    /// Default rows per data line.
    pub chunk_rows: usize,
    /// A data line is closed once it reaches this many bytes.
    pub chunk_bytes: usize,
    /// Encoded lines buffered per query between DuckDB and the client.
    pub stream_buffer: usize,
    pub zstd_level: i32,
    /// The window of a continuous zstd stream (HTTP and SSE bodies), as log2 of bytes.
    pub zstd_window_log: u32,
    /// Threads that compress every stream's bytes, shared by all of them.
    pub compress_workers: usize,
    /// `false` (the default) lets DuckDB stream `LIMIT` and parallel scans in any order.
    pub preserve_insertion_order: bool,
    /// DuckDB extensions every tenant database loads before its sandbox is applied.
    pub extensions: Vec<String>,
    /// Where they come from: a local repository laid out as DuckDB's `INSTALL … FROM`
    /// expects (`DIR/v1.5.5/linux_amd64/spatial.duckdb_extension`); `None`: DuckDB's official
    /// repository (needs internet once, then DuckDB's extension directory caches it).
    pub extension_repository: Option<PathBuf>,
    /// Where DuckDB keeps installed extensions (`extension_directory`); `None`: its default,
    /// `~/.duckdb/extensions`.
    pub extension_directory: Option<PathBuf>,
    /// The result cache's byte budget (0: no cache).
    pub cache_bytes: u64,
    /// The largest result the cache keeps, in bytes.
    pub cache_max_entry_bytes: usize,
    /// A tenant nothing has used for this long is unloaded: its DuckDB database closed, its
    /// memory, threads and catalog connections given back (zero: never).
    pub tenant_idle: Duration,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            executor_threads: 64,
            max_queued: 1024,
            queue_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(300),
            chunk_rows: 1000,
            chunk_bytes: 1 << 20,
            stream_buffer: 2,
            zstd_level: 1,
            zstd_window_log: 17,
            compress_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            preserve_insertion_order: false,
            extensions: vec!["spatial".to_string()],
            extension_repository: None,
            extension_directory: None,
            cache_bytes: 256 << 20,
            cache_max_entry_bytes: 16 << 20,
            tenant_idle: Duration::from_secs(900),
        }
    }
}

/// `[engine]` as a layer.
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct EngineLayer {
    /// Executor threads: queries running at once in the whole server
    #[arg(long, env = "DUCKSTREAM_EXECUTOR_THREADS")]
    pub executor_threads: Option<usize>,
    /// Queries that may wait for a slot in the whole server
    #[arg(long, env = "DUCKSTREAM_MAX_QUEUED")]
    pub max_queued: Option<usize>,
    /// Seconds a query may wait for a free pooled connection of its tenant
    #[arg(long, env = "DUCKSTREAM_QUEUE_TIMEOUT_SECS")]
    pub queue_timeout_secs: Option<u64>,
    /// Seconds a query's reader may take nothing before the query is stopped (0: never)
    #[arg(long, env = "DUCKSTREAM_STALL_TIMEOUT_SECS")]
    pub stall_timeout_secs: Option<u64>,
    /// Default rows per data line
    #[arg(long, env = "DUCKSTREAM_CHUNK_ROWS")]
    pub chunk_rows: Option<usize>,
    /// A data line is closed once it reaches this many bytes
    #[arg(long, env = "DUCKSTREAM_CHUNK_BYTES")]
    pub chunk_bytes: Option<usize>,
    /// Encoded lines buffered per query between DuckDB and the client
    #[arg(long, env = "DUCKSTREAM_STREAM_BUFFER")]
    pub stream_buffer: Option<usize>,
    /// zstd level for compressed streams (-7..=19)
    #[arg(long, env = "DUCKSTREAM_ZSTD_LEVEL", allow_negative_numbers = true)]
    pub zstd_level: Option<i32>,
    /// Window of a compressed HTTP/SSE stream as log2 bytes (10..=23; 17 = 128 KiB)
    #[arg(long, env = "DUCKSTREAM_ZSTD_WINDOW_LOG")]
    pub zstd_window_log: Option<u32>,
    /// Threads that compress the streams, shared by all of them (default: the number of cores)
    #[arg(long, env = "DUCKSTREAM_COMPRESS_WORKERS")]
    pub compress_workers: Option<usize>,
    /// Keep insertion order in results without ORDER BY (makes LIMIT blocking)
    #[arg(long, env = "DUCKSTREAM_PRESERVE_INSERTION_ORDER")]
    pub preserve_insertion_order: Option<bool>,
    /// DuckDB extensions every tenant database loads, comma-separated (empty: none)
    #[arg(long, env = "DUCKSTREAM_EXTENSIONS", value_delimiter = ',')]
    pub extensions: Option<Vec<String>>,
    /// Local extension repository (DIR/v1.5.5/linux_amd64/NAME.duckdb_extension); default:
    /// DuckDB's official repository
    #[arg(long, env = "DUCKSTREAM_EXTENSION_REPOSITORY")]
    pub extension_repository: Option<PathBuf>,
    /// Where DuckDB keeps installed extensions (default: ~/.duckdb/extensions)
    #[arg(long, env = "DUCKSTREAM_EXTENSION_DIRECTORY")]
    pub extension_directory: Option<PathBuf>,
    /// Bytes of finished results the cache keeps (0 = no cache)
    #[arg(long, env = "DUCKSTREAM_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// The largest result the cache keeps, in bytes
    #[arg(long, env = "DUCKSTREAM_CACHE_MAX_ENTRY_BYTES")]
    pub cache_max_entry_bytes: Option<usize>,
    /// Seconds without use after which a tenant's database is closed until its next request
    /// (0 = never)
    #[arg(long, env = "DUCKSTREAM_TENANT_IDLE_SECS")]
    pub tenant_idle_secs: Option<u64>,
}

impl EngineSection {
    fn apply(&mut self, layer: EngineLayer) {
        set!(self, layer; executor_threads, max_queued, chunk_rows, chunk_bytes, stream_buffer);
        set!(self, layer; zstd_level, zstd_window_log, compress_workers);
        set!(self, layer; preserve_insertion_order);
        set!(self, layer; cache_bytes, cache_max_entry_bytes);
        if let Some(list) = layer.extensions {
            self.extensions = list.into_iter().filter(|e| !e.trim().is_empty()).collect();
        }
        if let Some(dir) = layer.extension_repository {
            self.extension_repository = Some(dir);
        }
        if let Some(dir) = layer.extension_directory {
            self.extension_directory = Some(dir);
        }
        set_secs!(self, layer; queue_timeout_secs => queue_timeout);
        set_secs!(self, layer; stall_timeout_secs => stall_timeout);
        set_secs!(self, layer; tenant_idle_secs => tenant_idle);
    }
}

/// `[websocket]`: one socket carries many queries and outlives them, so it has its own
/// concurrency, memory budget and liveness checks.
#[derive(Debug, Clone)]
pub struct WebSocketSection {
    /// Queries running at once on one socket.
    pub queries_per_socket: usize,
    /// Bytes queued for one socket before its queries pause.
    pub send_budget_bytes: usize,
    /// Bytes queued for all sockets together before their queries pause.
    pub total_budget_bytes: usize,
    /// A client that takes no data for this long is closed (1008, slow consumer).
    pub slow_consumer_timeout: Duration,
    pub ping_interval: Duration,
    /// A client silent (no pong, no message) for this long is closed.
    pub pong_timeout: Duration,
    /// The largest client message (bigger ones close the socket with 1009).
    pub max_message_bytes: usize,
    /// Live subscriptions on one socket.
    pub max_subscriptions: usize,
    /// A quiet subscription sends a `heartbeat` line this often.
    pub heartbeat: Duration,
}

impl Default for WebSocketSection {
    fn default() -> Self {
        Self {
            queries_per_socket: 16,
            send_budget_bytes: 8 << 20,
            total_budget_bytes: 256 << 20,
            slow_consumer_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(30),
            max_message_bytes: 1 << 20,
            max_subscriptions: 256,
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// `[websocket]` as a layer. The flags keep their `ws-` prefix (`--ws-queries-per-socket`).
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct WebSocketLayer {
    /// WebSocket: queries running at once on one socket
    #[arg(
        id = "ws_queries_per_socket",
        long = "ws-queries-per-socket",
        value_name = "WS_QUERIES_PER_SOCKET",
        env = "DUCKSTREAM_WS_QUERIES_PER_SOCKET"
    )]
    pub queries_per_socket: Option<usize>,
    /// WebSocket: bytes queued per socket before its queries pause
    #[arg(
        id = "ws_send_budget_bytes",
        long = "ws-send-budget-bytes",
        value_name = "WS_SEND_BUDGET_BYTES",
        env = "DUCKSTREAM_WS_SEND_BUDGET_BYTES"
    )]
    pub send_budget_bytes: Option<usize>,
    /// WebSocket: bytes queued for all sockets together before their queries pause
    #[arg(
        id = "ws_total_budget_bytes",
        long = "ws-total-budget-bytes",
        value_name = "WS_TOTAL_BUDGET_BYTES",
        env = "DUCKSTREAM_WS_TOTAL_BUDGET_BYTES"
    )]
    pub total_budget_bytes: Option<usize>,
    /// WebSocket: seconds a client may take no data before it is closed (1008)
    #[arg(
        id = "ws_slow_consumer_secs",
        long = "ws-slow-consumer-secs",
        value_name = "WS_SLOW_CONSUMER_SECS",
        env = "DUCKSTREAM_WS_SLOW_CONSUMER_SECS"
    )]
    pub slow_consumer_secs: Option<u64>,
    /// WebSocket: seconds between server pings
    #[arg(
        id = "ws_ping_interval_secs",
        long = "ws-ping-interval-secs",
        value_name = "WS_PING_INTERVAL_SECS",
        env = "DUCKSTREAM_WS_PING_INTERVAL_SECS"
    )]
    pub ping_interval_secs: Option<u64>,
    /// WebSocket: seconds without a pong before the socket is closed
    #[arg(
        id = "ws_pong_timeout_secs",
        long = "ws-pong-timeout-secs",
        value_name = "WS_PONG_TIMEOUT_SECS",
        env = "DUCKSTREAM_WS_PONG_TIMEOUT_SECS"
    )]
    pub pong_timeout_secs: Option<u64>,
    /// WebSocket: largest client message in bytes (bigger closes with 1009)
    #[arg(
        id = "ws_max_message_bytes",
        long = "ws-max-message-bytes",
        value_name = "WS_MAX_MESSAGE_BYTES",
        env = "DUCKSTREAM_WS_MAX_MESSAGE_BYTES"
    )]
    pub max_message_bytes: Option<usize>,
    /// WebSocket: live subscriptions on one socket
    #[arg(
        id = "ws_max_subscriptions",
        long = "ws-max-subscriptions",
        value_name = "WS_MAX_SUBSCRIPTIONS",
        env = "DUCKSTREAM_WS_MAX_SUBSCRIPTIONS"
    )]
    pub max_subscriptions: Option<usize>,
    /// WebSocket: seconds between heartbeat lines of a quiet subscription
    #[arg(
        id = "ws_heartbeat_secs",
        long = "ws-heartbeat-secs",
        value_name = "WS_HEARTBEAT_SECS",
        env = "DUCKSTREAM_WS_HEARTBEAT_SECS"
    )]
    pub heartbeat_secs: Option<u64>,
}

impl WebSocketSection {
    fn apply(&mut self, layer: WebSocketLayer) {
        set!(self, layer; queries_per_socket, send_budget_bytes, total_budget_bytes);
        set!(self, layer; max_message_bytes);
        set!(self, layer; max_subscriptions);
        set_secs!(self, layer;
            slow_consumer_secs => slow_consumer_timeout,
            ping_interval_secs => ping_interval,
            pong_timeout_secs => pong_timeout,
            heartbeat_secs => heartbeat,
        );
    }
}

/// `[sse]`: server-sent events need a keep-alive so that proxies do not close a stream that
/// waits on a slow query.
#[derive(Debug, Clone)]
pub struct SseSection {
    /// A `: keepalive` comment after this long without an event.
    pub keepalive: Duration,
}

impl Default for SseSection {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(15),
        }
    }
}

/// `[sse]` as a layer. The flag keeps its `sse-` prefix (`--sse-keepalive-secs`).
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct SseLayer {
    /// SSE: seconds without an event before a keep-alive comment
    #[arg(
        id = "sse_keepalive_secs",
        long = "sse-keepalive-secs",
        value_name = "SSE_KEEPALIVE_SECS",
        env = "DUCKSTREAM_SSE_KEEPALIVE_SECS"
    )]
    pub keepalive_secs: Option<u64>,
}

impl SseSection {
    fn apply(&mut self, layer: SseLayer) {
        set_secs!(self, layer; keepalive_secs => keepalive);
    }
}

/// `[auth]`: who may use which tenant (the tenants file) and how tokens are signed; without a
/// tenants file there is no authentication at all.
#[derive(Debug, Clone)]
pub struct AuthSection {
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
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            tenants_file: None,
            tenants: None,
            token_secret: None,
            token_ttl: Duration::from_secs(300),
            token_max_ttl: Duration::from_secs(3600),
        }
    }
}

/// `[auth]` as a layer.
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct AuthLayer {
    /// Tenants file (TOML): API key hashes, admin keys, per-tenant limits; turns auth on
    #[arg(long, env = "DUCKSTREAM_TENANTS_FILE")]
    pub tenants_file: Option<PathBuf>,
    /// Secret (at least 32 bytes) that signs tokens; default: random per process
    #[arg(long, env = "DUCKSTREAM_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<Secret>,
    /// Seconds a token lives when the request names no ttl_secs
    #[arg(long, env = "DUCKSTREAM_TOKEN_TTL_SECS")]
    pub token_ttl_secs: Option<u64>,
    /// The longest token lifetime, in seconds
    #[arg(long, env = "DUCKSTREAM_TOKEN_MAX_TTL_SECS")]
    pub token_max_ttl_secs: Option<u64>,
}

impl AuthSection {
    fn apply(&mut self, layer: AuthLayer) {
        if let Some(p) = layer.tenants_file {
            self.tenants_file = Some(p);
        }
        if let Some(s) = layer.token_secret {
            self.token_secret = Some(s);
        }
        set_secs!(self, layer;
            token_ttl_secs => token_ttl,
            token_max_ttl_secs => token_max_ttl,
        );
    }
}

/// One layer of every section: the whole config file, or everything the environment and the
/// flags set. Every field is optional: absent means "keep the layer below".
#[derive(Debug, Default, Clone, Deserialize, Args)]
#[serde(default, deny_unknown_fields)]
pub struct Layers {
    #[command(flatten)]
    pub server: ServerLayer,
    #[command(flatten)]
    pub engine: EngineLayer,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub websocket: WebSocketLayer,
    #[command(flatten)]
    pub sse: SseLayer,
    #[command(flatten)]
    pub auth: AuthLayer,
    #[command(flatten)]
    pub storage: storage::StorageLayer,
    #[command(flatten)]
    pub pg: pg::PgLayer,
}

/// The command line: `duckstream [--config FILE] [settings...]`. With no subcommand, it serves.
#[derive(Debug, Parser)]
#[command(
    name = "duckstream",
    version,
    about = "Streams DuckDB query results as NDJSON + zstd"
)]
pub struct Cli {
    /// TOML file with settings in sections: [server], [engine], [limits], [websocket], [sse],
    /// [auth], [storage], [pg] (keys as in the README)
    #[arg(long, env = "DUCKSTREAM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub layers: Layers,
    /// The old names of renamed flags and variables, still read.
    #[command(flatten)]
    pub old_flags: deprecated::OldFlags,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary does; with no subcommand, it serves.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Serve (the default).
    Serve,
    /// Create the demo tenant in the data directory (if missing) and exit; for images.
    SeedDemo,
    /// Print a new API key and the hash to put in the tenants file, then exit.
    Keygen,
    /// Load a file into a tenant's dataset, offline (the server must not be running on this
    /// data directory), as `PUT /v1/{tenant}/datasets/{name}` would; prints the result.
    Load(LoadArgs),
    /// Move tenants between local files and the lake (`--storage lake` settings).
    #[command(subcommand)]
    Lake(LakeCommand),
}

/// `duckstream lake …`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum LakeCommand {
    /// Copy a local tenant database (default: <data-dir>/TENANT.duckdb) into the tenant's lake,
    /// in one lake transaction, creating the lake if needed
    Import {
        tenant: String,
        #[arg(long)]
        from: Option<PathBuf>,
    },
    /// Copy a tenant's lake into a new local database file (default: <data-dir>/TENANT.duckdb)
    Export {
        tenant: String,
        #[arg(long)]
        to: Option<PathBuf>,
    },
}

/// `duckstream load TENANT DATASET FILE`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LoadArgs {
    pub tenant: String,
    pub dataset: String,
    pub file: PathBuf,
    /// csv, ndjson, parquet or geojson (default: from the file's extension)
    #[arg(long)]
    pub format: Option<String>,
    /// replace (default) or append
    #[arg(long)]
    pub mode: Option<String>,
    /// Bad rows that may be skipped (CSV)
    #[arg(long)]
    pub max_bad_rows: Option<String>,
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

/// The config file's layers, its deprecated keys renamed (and noted in `deprecated`).
fn parse_file(text: &str, deprecated: &mut Vec<Deprecation>) -> Result<Layers, toml::de::Error> {
    let mut table: toml::Table = toml::from_str(text)?;
    if !deprecated::rename_file_keys(&mut table, deprecated) {
        // Parsed from the text, a mistake's message shows its line.
        return toml::from_str(text);
    }
    table.try_into()
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
        let command = cli.command.clone().unwrap_or(Command::Serve);
        Ok((Self::from_cli(cli)?, command))
    }

    /// Builds the configuration from parsed arguments (env already merged by clap): the
    /// defaults, the file's sections over them, then the environment and flags.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file =
                parse_file(&text, &mut config.deprecated).map_err(|source| ConfigError::Parse {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
            config.apply(file);
        }
        config.storage.apply_aws_env();
        let mut layers = cli.layers;
        cli.old_flags.apply_to(&mut layers, &mut config.deprecated);
        config.apply(layers);
        if let Some(path) = &config.auth.tenants_file {
            let file = TenantsFile::load(path)?;
            for d in &file.deprecated {
                deprecated::note(&mut config.deprecated, d.clone());
            }
            config.auth.tenants = Some(Arc::new(file));
        }
        config.validate()?;
        Ok(config)
    }

    /// Lays one layer of every section over this configuration.
    fn apply(&mut self, layers: Layers) {
        // Destructured whole: a new section cannot be forgotten here.
        let Layers {
            server,
            engine,
            limits,
            websocket,
            sse,
            auth,
            storage,
            pg,
        } = layers;
        self.server.apply(server);
        self.engine.apply(engine);
        self.limits = limits.over(&self.limits);
        self.websocket.apply(websocket);
        self.sse.apply(sse);
        self.auth.apply(auth);
        self.storage.apply(storage);
        self.pg.apply(pg);
    }

    /// Each tenant of the tenants file with its entry laid over the global [`Config::limits`];
    /// tenants without an entry (or without a tenants file) have the global limits.
    pub fn tenant_limits(&self) -> HashMap<TenantId, Limits> {
        self.auth
            .tenants
            .iter()
            .flat_map(|file| file.tenants.iter())
            .map(|(id, entry)| (id.clone(), entry.limits.over(&self.limits)))
            .collect()
    }

    /// Refuses values the server could not run with, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.storage.validate()?;
        self.pg
            .validate(self.auth.tenants.is_none(), self.server.insecure)?;
        let (server, engine, ws, auth) = (&self.server, &self.engine, &self.websocket, &self.auth);
        if let Some(p) = self.limits.problem() {
            return Err(invalid(p.setting, p.reason));
        }
        if !(1..=4096).contains(&engine.executor_threads) {
            return Err(invalid("executor_threads", "must be between 1 and 4096"));
        }
        if !(1..=MAX_CHUNK_ROWS).contains(&engine.chunk_rows) {
            return Err(invalid(
                "chunk_rows",
                format!("must be between 1 and {MAX_CHUNK_ROWS}"),
            ));
        }
        if !(1024..=64 << 20).contains(&engine.chunk_bytes) {
            return Err(invalid("chunk_bytes", "must be between 1024 and 67108864"));
        }
        if !(-7..=19).contains(&engine.zstd_level) {
            return Err(invalid(
                "zstd_level",
                "must be between -7 and 19 (higher levels need windows browsers refuse)",
            ));
        }
        if !(10..=23).contains(&engine.zstd_window_log) {
            return Err(invalid(
                "zstd_window_log",
                "must be between 10 and 23 (browsers refuse windows above 8 MiB)",
            ));
        }
        // Extension names go into SQL (`LOAD name`): plain identifiers only.
        if let Some(bad) = engine.extensions.iter().find(|e| {
            !e.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        }) {
            return Err(invalid(
                "extensions",
                format!("'{bad}' is not an extension name (a-z, 0-9, _)"),
            ));
        }
        if !(1..=256).contains(&engine.compress_workers) {
            return Err(invalid("compress_workers", "must be between 1 and 256"));
        }
        if !(1..=1024).contains(&engine.stream_buffer) {
            return Err(invalid("stream_buffer", "must be between 1 and 1024"));
        }
        if server.max_body_bytes < 64 {
            return Err(invalid("max_body_bytes", "must be at least 64"));
        }
        if server.max_upload_record_bytes < 64 {
            return Err(invalid("max_upload_record_bytes", "must be at least 64"));
        }
        if !(1..=1024).contains(&ws.queries_per_socket) {
            return Err(invalid(
                "ws_queries_per_socket",
                "must be between 1 and 1024",
            ));
        }
        if ws.send_budget_bytes < 64 * 1024 {
            return Err(invalid("ws_send_budget_bytes", "must be at least 65536"));
        }
        if ws.total_budget_bytes < ws.send_budget_bytes || ws.total_budget_bytes > u32::MAX as usize
        {
            return Err(invalid(
                "ws_total_budget_bytes",
                "must be at least ws_send_budget_bytes and below 4 GiB",
            ));
        }
        if ws.heartbeat.is_zero() || ws.heartbeat > Duration::from_secs(30) {
            return Err(invalid("ws_heartbeat_secs", "must be between 1 and 30"));
        }
        if ws.max_message_bytes < 1024 {
            return Err(invalid("ws_max_message_bytes", "must be at least 1024"));
        }
        if ws.ping_interval.is_zero() || ws.pong_timeout <= ws.ping_interval {
            return Err(invalid(
                "ws_pong_timeout_secs",
                "must be longer than ws_ping_interval_secs (both above 0)",
            ));
        }
        if self.sse.keepalive.is_zero() {
            return Err(invalid("sse_keepalive_secs", "must be above 0"));
        }
        if ws.slow_consumer_timeout.is_zero() {
            return Err(invalid("ws_slow_consumer_secs", "must be above 0"));
        }
        if auth
            .token_secret
            .as_ref()
            .is_some_and(|s| s.0.len() < MIN_SECRET_BYTES)
        {
            return Err(invalid(
                "token_secret",
                format!("must be at least {MIN_SECRET_BYTES} bytes"),
            ));
        }
        if auth.token_ttl.is_zero() || auth.token_ttl > auth.token_max_ttl {
            return Err(invalid(
                "token_ttl_secs",
                "must be above 0 and at most token_max_ttl_secs",
            ));
        }
        // A tenants file from `TenantsFile::load` is checked already; one an embedder built by
        // hand is checked here.
        if let Some(file) = &auth.tenants {
            let mut names: Vec<&TenantId> = file.tenants.keys().collect();
            names.sort();
            for id in names {
                if let Some(p) = file.tenants[id].limits.problem() {
                    return Err(TenantsFileError::Invalid {
                        place: format!("tenants.{id}.{}", p.key),
                        reason: p.reason,
                    }
                    .into());
                }
            }
        }
        if !server.bind.ip().is_loopback() && !server.insecure && auth.tenants.is_none() {
            return Err(invalid(
                "bind",
                format!(
                    "{} is not a loopback address and there is no authentication: every tenant \
                     would be open to the network. Give a tenants file (--tenants-file), bind \
                     to 127.0.0.1, or pass --insecure (DUCKSTREAM_INSECURE=true) if something \
                     in front of duckstream guards it",
                    server.bind
                ),
            ));
        }
        if server.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        Ok(())
    }

    /// A configuration for tests and embedding: loopback on a free port, no demo.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::default();
        config.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        config.pg.bind = PgBind::At(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.server.data_dir = data_dir.into();
        config.server.demo = false;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("duckstream").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_file_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[limits]\npool_size = 7\n[engine]\nchunk_rows = 50\n",
        )
        .unwrap();
        let c = Config::from_cli(cli(&[
            "--config",
            file.to_str().unwrap(),
            "--chunk-rows",
            "20",
        ]))
        .unwrap();
        assert_eq!(c.limits.pool_size, Some(7));
        assert_eq!(c.engine.chunk_rows, 20);
        assert_eq!(c.engine.zstd_level, 1);
        assert_eq!(
            c.limits.queue_size,
            Some(64),
            "defaults stay under the file"
        );
        let c = Config::from_cli(cli(&[
            "--ws-slow-consumer-secs",
            "3",
            "--ws-queries-per-socket",
            "2",
            "--ws-pong-timeout-secs",
            "40",
            "--pool-size",
            "5",
            "--executor-threads",
            "9",
            "--sse-keepalive-secs",
            "4",
            "--duckdb-threads",
            "0",
        ]))
        .unwrap();
        assert_eq!(c.websocket.slow_consumer_timeout, Duration::from_secs(3));
        assert_eq!(c.websocket.queries_per_socket, 2);
        assert_eq!(c.websocket.pong_timeout, Duration::from_secs(40));
        assert_eq!(c.limits.pool_size, Some(5));
        assert_eq!(c.engine.executor_threads, 9);
        assert_eq!(c.sse.keepalive, Duration::from_secs(4));
        assert_eq!(c.limits.threads(), None, "0 = all cores");
    }

    #[test]
    fn invalid_values_are_refused_by_name() {
        let e = Config::from_cli(cli(&["--zstd-level", "30"])).unwrap_err();
        assert!(e.to_string().contains("zstd_level"), "{e}");
        let e = Config::from_cli(cli(&["--zstd-window-log", "24"])).unwrap_err();
        assert!(e.to_string().contains("zstd_window_log"), "{e}");
        let c = Config::from_cli(cli(&["--zstd-window-log", "19"])).unwrap();
        assert_eq!(c.engine.zstd_window_log, 19);
        let e = Config::from_cli(cli(&["--duckdb-memory-limit", "lots"])).unwrap_err();
        assert!(e.to_string().contains("duckdb_memory_limit"), "{e}");
        let e = Config::from_cli(cli(&["--pool-size", "0"])).unwrap_err();
        assert!(e.to_string().contains("pool_size"), "{e}");
        let e = Config::from_cli(cli(&["--max-upload-record-bytes", "10"])).unwrap_err();
        assert!(e.to_string().contains("max_upload_record_bytes"), "{e}");
        let c = Config::from_cli(cli(&["--max-upload-record-bytes", "4096"])).unwrap();
        assert_eq!(c.server.max_upload_record_bytes, 4096);
        assert!(Cli::try_parse_from(["duckstream", "--bind", "nope"]).is_err());
        let e = Config::from_cli(cli(&["--bind", "0.0.0.0:8080"])).unwrap_err();
        assert!(e.to_string().contains("--insecure"), "{e}");
        let c = Config::from_cli(cli(&["--bind", "0.0.0.0:8080", "--insecure"])).unwrap();
        assert!(c.server.insecure);
        let e = Config::from_cli(cli(&["--token-secret", "short"])).unwrap_err();
        assert!(e.to_string().contains("token_secret"), "{e}");
        assert!(!format!("{:?}", Secret("hunter2".into())).contains("hunter2"));
        let c = cli(&["--token-secret", "hunter2"]);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn a_tenants_file_allows_a_public_bind() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.toml");
        std::fs::write(&file, "[tenants.acme]\npool_size = 3\n").unwrap();
        let c = Config::from_cli(cli(&[
            "--bind",
            "0.0.0.0:8080",
            "--tenants-file",
            file.to_str().unwrap(),
        ]))
        .unwrap();
        assert!(c.auth.tenants.is_some());
        std::fs::write(&file, "[tenants.acme]\npool_size = 0\n").unwrap();
        let e = Config::from_cli(cli(&["--tenants-file", file.to_str().unwrap()])).unwrap_err();
        assert!(e.to_string().contains("tenants.acme"), "{e}");
    }

    #[test]
    fn misspelt_keys_are_refused_and_tenant_limits_lie_over_the_global_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        for (text, needle) in [
            ("[engine]\nchunk_row = 50\n", "chunk_row"),
            ("[server]\nchunk_rows = 50\n", "chunk_rows"),
            ("[limits]\nexecutor_threads = 3\n", "executor_threads"),
            ("[engines]\nchunk_rows = 50\n", "engines"),
            ("chunk_rows = 50\n", "chunk_rows"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = Config::from_cli(cli(&["--config", file.to_str().unwrap()])).unwrap_err();
            assert!(matches!(e, ConfigError::Parse { .. }), "{text}: {e}");
            let e = e.to_string();
            assert!(
                e.contains("unknown field") && e.contains(needle),
                "{text}: {e}"
            );
        }

        let tenants = dir.path().join("tenants.toml");
        std::fs::write(
            &tenants,
            "[tenants.acme]\npool_size = 3\nquery_timeout_secs = 0\n[tenants.globex]\n",
        )
        .unwrap();
        std::fs::write(
            &file,
            "[limits]\nquery_timeout_secs = 9\nmemory_limit = \"1GB\"\n",
        )
        .unwrap();
        let c = Config::from_cli(cli(&[
            "--config",
            file.to_str().unwrap(),
            "--tenants-file",
            tenants.to_str().unwrap(),
            "--pool-size",
            "5",
        ]))
        .unwrap();
        let limits = c.tenant_limits();
        let acme = &limits[&TenantId::parse("acme").unwrap()];
        assert_eq!(acme.pool_size(), 3);
        assert_eq!(
            acme.query_timeout(),
            None,
            "the tenant's 0 turns the global timeout off"
        );
        assert_eq!(acme.memory_limit(), Some("1GB"));
        assert_eq!(acme.queue_size(), 64);
        let globex = &limits[&TenantId::parse("globex").unwrap()];
        assert_eq!(globex, &c.limits);
        assert_eq!(globex.pool_size(), 5);
        assert_eq!(globex.query_timeout(), Some(Duration::from_secs(9)));
    }

    #[test]
    fn hand_built_tenants_are_validated_too() {
        let mut c = Config::for_tests("./data");
        assert!(c.validate().is_ok());
        let mut file = TenantsFile::default();
        file.tenants.insert(
            TenantId::parse("acme").unwrap(),
            TenantEntry {
                keys: Vec::new(),
                limits: Limits {
                    max_streams: Some(0),
                    ..Limits::default()
                },
            },
        );
        c.auth.tenants = Some(Arc::new(file));
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("tenants.acme.max_streams"), "{e}");
    }
}
