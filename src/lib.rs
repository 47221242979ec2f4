//! duckstream: a real-time query gateway. Clients send SQL; duckstream runs it on DuckDB in the
//! tenant's own database and streams the result as NDJSON (optionally zstd) while DuckDB
//! produces it. See `docs/ARCHITECTURE.md` for the map and `docs/PROTOCOL.md` for the contract.

pub mod auth;
pub mod compress;
pub mod config;
pub mod demo;
pub mod encode;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod startup;
pub mod telemetry;
pub mod tenants;
pub mod transport;
pub mod wire;

pub use config::Config;
pub use startup::Application;
