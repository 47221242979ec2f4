//! Integration tests: the real server on 127.0.0.1:0 with a temporary data directory, real
//! HTTP clients, real DuckDB.

mod admin;
mod allowlist;
mod auth;
mod browser;
mod cache;
mod cluster;
mod config;
mod datasets;
mod errors;
mod formats;
mod geometry;
mod helpers;
mod hostile;
mod idle;
mod lake;
mod lifecycle;
mod limits;
mod live;
mod mosaic;
mod observability;
mod pg;
mod pool;
mod progress;
mod sandbox;
mod services;
mod spatial;
mod sse;
mod stack;
mod streaming;
mod transports;
mod types;
mod upload_checks;
mod upload_fuzz;
mod uploads;
mod ws;
