//! duckstream: a real-time query gateway. Clients send SQL; duckstream runs it on DuckDB in the
//! tenant's own database and streams the result as NDJSON (optionally zstd) while DuckDB
//! produces it. See `docs/ARCHITECTURE.md` for the map and `docs/PROTOCOL.md` for the contract.
//!
//! Layers, each importing only those below it (checked by `tests/layers.rs`):
//! `app` (and `config`) → `transport` → `auth`, `engine` → `error` → `encode` → `duck` →
//! `wire`, `metrics`.

pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub(crate) mod duck;
pub(crate) mod encode;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod metrics;
pub mod telemetry;
pub(crate) mod transport;
pub mod wire;

pub use app::Application;
pub use config::Config;
/// The reviewed function list, for the test that checks it against DuckDB's catalog.
pub mod allowlist {
    pub use crate::engine::{class_of, families, FunctionClass as Class};
}
