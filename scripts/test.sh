#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests (real server, real DuckDB, real clients).
# One build profile (release) for everything, so DuckDB is compiled once; the target directory
# lives outside the clone so that CI and local runs share it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/duckstream-target}
cargo test --release --all-targets "$@"
