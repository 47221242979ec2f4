#!/usr/bin/env bash
# The benchmark, one command: duckstream beside the Python design (seed_ref) and DuckDB's own
# JSON writer, same data (10M-row `parcels`), same queries, same client (curl), one run.
#
#   ./scripts/bench/bench.sh           # everything (~15 min on 2 idle cores)
#   QUERIES="Q2" REPEAT=1 ./scripts/bench/bench.sh
#
# Uses the shared peer harness in ../shared/bench beside the repository (BENCH_DIR): its
# setup.sh installs the Python venvs and the zstd/curl packages, data.py builds
# /tmp/bench/bench.duckdb. Then scripts/bench/bench_rss.py measures duckstream's streaming
# memory at 10M and 100M rows.
# Results: $OUT/tables.md and $OUT/rss.md; copy the figures into docs/benchmarks/notebook.md
# (and today's headline figures into docs/BENCHMARKS.md).
set -euo pipefail
# HTTP only: the PostgreSQL endpoint's default port would clash between servers.
export DUCKSTREAM_PG_BIND="${DUCKSTREAM_PG_BIND:-off}"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)  # the repository (this is scripts/bench/bench.sh)
B=${BENCH_DIR:-$ROOT/../shared/bench}
V=${BENCH_VENVS:-$HOME/.cache/duckstream-bench}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}  # cargo's own, as for `cargo run --release`
export OUT=${OUT:-/tmp/bench/duckstream}
export QUERIES=${QUERIES:-"Q1 Q2 Q3 Q4"}
export REPEAT=${REPEAT:-3}

[ -d "$B" ] || { echo "no peer harness at $B (set BENCH_DIR)" >&2; exit 1; }
(cd "$ROOT" && cargo build --release --bin duckstream)
BIN=$TARGET/release/duckstream
bash "$B/setup.sh"
"$V/.venv/bin/python" "$B/data.py"
mkdir -p "$OUT"
DUCKSTREAM_BIN=$BIN PEERS="duckstream seed_ref" LIMITS=${LIMITS:-1} bash "$B/run_peers.sh"
"$V/.venv/bin/python" "$ROOT/scripts/bench/bench_rss.py" --bin "$BIN" --db "${BENCH_DB:-/tmp/bench/bench.duckdb}" \
  | tee "$OUT/rss.md"
