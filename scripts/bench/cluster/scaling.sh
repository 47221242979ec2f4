#!/usr/bin/env bash
# Pinned scaling: one replica pinned to cpu 0 behind HAProxy, beside two replicas pinned to cpu 0
# and cpu 1 behind HAProxy: the same lake, the same tenants, the same k6 mix
# (load-tests/cluster.js with its default VUs: 8 ws, 4 small, 2 sse, 1 scan; run through
# cluster_counts.js, which only adds always-passing thresholds so the summary carries each
# query kind's count).
#
# Measures per setup: k6's http_reqs (count, rate), WebSocket messages received, finished
# queries by kind, small-query p50/p99 (HTTP and WebSocket), checks; the replicas' CPU seconds
# (utime+stime from /proc/PID/stat, before and after the k6 run) and CPU seconds per 1000 small
# queries (HTTP + WebSocket) and per 1000 finished queries; each replica's share of the queries
# (duckstream_queries_total). Then the ratios two replicas / one.
#
# Where things run (the machine has 2 cores): replica A on cpu 0; replica B (two-replica setup)
# on cpu 1; k6, HAProxy, PostgreSQL and moto_server all on cpu 1. So in the two-replica setup
# B shares its core with the load generator and the lake's services: throughput cannot double.
# The CPU per 1000 queries is the cleaner signal (does a replica's cost per query stay flat
# when the work is split over two?).
#
# Setup: PostgreSQL 15 (own initdb, loopback, fsync off) and moto_server started here; replicas
# configured as tests/api/cluster.rs does (lake TOML of tests' Cluster::toml, the extension
# repository /var/tmp/duckstream-tools/extensions, --shutdown-timeout-secs 20, every other
# setting its default). HAProxy runs deploy/haproxy.cfg unchanged; its three server lines get
# A (and B) and, for the rest, a free loopback port where nothing listens (HAProxy marks those
# DOWN before k6 starts, so the consistent hash spreads tenants over the live ones).
# Tenants: 16 candidates (each a `parcels` table of $ROWS rows: id, city, population, area,
# updated, tags, uploaded as CSV); with A and B behind HAProxy, the first 4 that hash to A and
# the first 4 that hash to B are kept, alternating A,B,A,B..., so that k6's tenant-per-VU round
# robin splits the load evenly. Before each measured run a 10 s k6 warm-up of the same mix.
# Waits (up to MAX_WAIT_S, default 1200) for the 1-minute load average to fall below
# MAX_LOAD (0.7), and prints it before each run.
#
# Run (as root, or a user that may run PostgreSQL's binaries; ~4 minutes with the defaults):
#   scripts/bench/cluster/scaling.sh
#   BIN=/var/tmp/bench-bin/duckstream DURATION=40s ROWS=50000 ROUNDS=1 KEEP=1 scripts/bench/cluster/scaling.sh
# Needs: PostgreSQL 15 (/usr/lib/postgresql/15/bin), haproxy, k6 (1.1.0), taskset, curl, the
# venv /var/tmp/duckstream-tools/venv (moto_server, duckdb for the CSV).
set -euo pipefail
# HTTP only: the PostgreSQL endpoint's default port would clash between servers.
export DUCKSTREAM_PG_BIND="${DUCKSTREAM_PG_BIND:-off}"

BIN=${BIN:-/var/tmp/bench-bin/duckstream}
DURATION=${DURATION:-40s}
ROWS=${ROWS:-50000}
ROUNDS=${ROUNDS:-1}
MAX_LOAD=${MAX_LOAD:-0.7}
MAX_WAIT_S=${MAX_WAIT_S:-1200}
TOOLS=/var/tmp/duckstream-tools
PY=$TOOLS/venv/bin/python
K6=${K6:-$(command -v k6)}
PGBIN=/usr/lib/postgresql/15/bin
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
WORK=$(mktemp -d /tmp/ds-scaling-XXXXXX)
chmod 755 "$WORK"
LOADCPU=1   # k6, HAProxy, PostgreSQL, moto

PIDS=()
PG_STARTED=
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 250); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  if [ -n "$PG_STARTED" ]; then pg stop -m fast -w >/dev/null 2>&1; fi
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
forget() { local keep=(); for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; PIDS=("${keep[@]}"); }
stop_pid() { kill "$1" 2>/dev/null || true; for _ in $(seq 300); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; forget "$1"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }
pg() {
  if [ "$(id -u)" = 0 ]; then (cd /tmp && runuser -u postgres -- taskset -c $LOADCPU "$PGBIN/pg_ctl" -D "$WORK/pg/data" "$@")
  else (cd /tmp && taskset -c $LOADCPU "$PGBIN/pg_ctl" -D "$WORK/pg/data" "$@"); fi
}
queries_total() { curl -fsS "http://127.0.0.1:$1/metrics" | awk '/^duckstream_queries_total\{/ { s += $NF } END { print s + 0 }'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

wait_idle() {
  local waited=0
  while awk -v m="$MAX_LOAD" '{ exit !($1 >= m) }' /proc/loadavg; do
    if [ "$waited" -ge "$MAX_WAIT_S" ]; then echo "machine still busy after ${waited}s (load $(loadavg)); going on" >&2; return; fi
    echo "load $(loadavg): waiting for < $MAX_LOAD" >&2
    sleep 60; waited=$((waited + 60))
  done
}

# --- the lake: PostgreSQL 15 and moto on cpu 1
mkdir -p "$WORK/pg"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$WORK/pg"
PGPORT=$(free_port); S3PORT=$(free_port)
if [ "$(id -u)" = 0 ]; then
  runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres --no-sync --locale=C -E UTF8 >/dev/null
else
  "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres --no-sync --locale=C -E UTF8 >/dev/null
fi
printf "port = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nlc_messages = 'C'\nfsync = off\nmax_connections = 500\n" \
  "$PGPORT" "$WORK/pg" >> "$WORK/pg/data/postgresql.conf"
pg -l "$WORK/pg/pg.log" -w -t 60 start >/dev/null
PG_STARTED=1
"$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc 'CREATE DATABASE lake_bench' postgres
taskset -c $LOADCPU "$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$S3PORT" > "$WORK/moto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do curl -fs -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.1; done
curl -fsS -X PUT -o /dev/null "http://127.0.0.1:$S3PORT/lake"
cat > "$WORK/lake.toml" <<EOF
[storage]
kind = "lake"
lake_catalog = "dbname=lake_bench host=127.0.0.1 port=$PGPORT user=postgres"
lake_data = "s3://lake/lake_bench/"
s3_endpoint = "127.0.0.1:$S3PORT"
s3_url_style = "path"
s3_use_ssl = false
s3_region = "us-east-1"
s3_key_id = "test"
s3_secret = "test"
lake_role_secret = "tenant-roles"
EOF

# --- replicas
APORT=$(free_port); BPORT=$(free_port); DEAD1=$(free_port); DEAD2=$(free_port)
declare -A RPID
start_replica() { # name port cpu
  mkdir -p "$WORK/data-$1"
  echo "==== start $(date +%T)" >> "$WORK/$1.log"
  RUST_LOG=info NO_COLOR=1 taskset -c "$3" "$BIN" --bind "127.0.0.1:$2" --demo false --data-dir "$WORK/data-$1" \
    --extension-repository "$TOOLS/extensions" --extension-directory "$WORK/ext-$1" \
    --config "$WORK/lake.toml" --shutdown-timeout-secs 20 >> "$WORK/$1.log" 2>&1 &
  RPID[$1]=$!; PIDS+=($!)
  for _ in $(seq 600); do curl -fs -o /dev/null "http://127.0.0.1:$2/readyz" && return; sleep 0.1; done
  echo "replica $1 did not become ready"; tail -20 "$WORK/$1.log"; exit 1
}
LBPID=
start_lb() { # replica1 replica2 replica3 (host:port); waits until HAProxy shows $4 servers UP and the rest DOWN
  LBPORT=$(free_port); STATSPORT=$(free_port)
  DUCKSTREAM_LB_PORT=$LBPORT DUCKSTREAM_LB_STATS_PORT=$STATSPORT DUCKSTREAM_REPLICA1=$1 DUCKSTREAM_REPLICA2=$2 \
    DUCKSTREAM_REPLICA3=$3 taskset -c $LOADCPU haproxy -db -f "$ROOT/deploy/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
  LBPID=$!; PIDS+=($!)
  for _ in $(seq 600); do
    local s; s=$(curl -fs "http://127.0.0.1:$STATSPORT/stats;csv" | awk -F, '$1 == "replicas" && $2 ~ /^replica/ { print $18 }' | sort | tr '\n' ' ' || true)
    local up down; up=$(awk '{ for (i = 1; i <= NF; i++) n += ($i == "UP") } END { print n + 0 }' <<<"$s")
    down=$(awk '{ for (i = 1; i <= NF; i++) n += ($i == "DOWN") } END { print n + 0 }' <<<"$s")
    if [ "$up" -eq "$4" ] && [ "$down" -eq $((3 - $4)) ]; then return; fi
    sleep 0.2
  done
  echo "haproxy servers never settled: $s"; exit 1
}
start_replica A "$APORT" 0
start_replica B "$BPORT" 1

# --- data and tenants (created through A; the lake is shared)
$PY - "$WORK/parcels.csv" "$ROWS" <<'PY'
import sys, duckdb
duckdb.sql(f"""COPY (SELECT range AS id, 'city' || (range % 40) AS city, (range * 7919) % 100000 AS population,
  round((range % 997) / 7.0, 2) AS area, TIMESTAMP '2026-01-01' + to_seconds(range % 86400) AS updated,
  'tag' || (range % 12) AS tags FROM range({int(sys.argv[2])})) TO '{sys.argv[1]}' (HEADER)""")
PY
for i in $(seq 0 15); do
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$APORT/v1/admin/tenants" -d "{\"name\":\"s$i\"}"
  curl -fsS -o /dev/null -T "$WORK/parcels.csv" "http://127.0.0.1:$APORT/v1/s$i/datasets/parcels?format=csv"
done

# --- which candidate hashes where with A and B behind HAProxy
start_lb "127.0.0.1:$APORT" "127.0.0.1:$BPORT" "127.0.0.1:$DEAD1" 2
ON_A=(); ON_B=()
for i in $(seq 0 15); do
  before=$(queries_total "$APORT")
  for j in 1 2 3; do curl -fsS -o /dev/null "http://127.0.0.1:$LBPORT/v1/s$i/query" -d "{\"sql\":\"SELECT $j, count(*) FROM parcels\"}"; done
  after=$(queries_total "$APORT")
  if [ "$(awk -v a="$after" -v b="$before" 'BEGIN { print a - b }')" = 3 ]; then ON_A+=("s$i"); else ON_B+=("s$i"); fi
done
echo "hash with A and B: on A ${ON_A[*]}; on B ${ON_B[*]}"
TENANTS=""
for k in 0 1 2 3; do TENANTS+="${ON_A[$k]:-},${ON_B[$k]:-},"; done
TENANTS=$(sed 's/,,*/,/g; s/^,//; s/,$//' <<<"$TENANTS")
echo "tenants (alternating A,B): $TENANTS"
stop_pid "$LBPID"

RESULTS="$WORK/results.tsv"
run_setup() { # label, then the replica names to measure
  local label=$1; shift
  local ports=() names=("$@")
  for n in "${names[@]}"; do if [ "$n" = A ]; then ports+=("$APORT"); else ports+=("$BPORT"); fi; done
  # Warm-up: the same mix for 10 s.
  taskset -c $LOADCPU "$K6" run -q --no-summary -e BASE="http://127.0.0.1:$LBPORT" -e TENANTS="$TENANTS" -e DURATION=10s \
    "$HERE/cluster_counts.js" > "$WORK/k6-warm-$label.log" 2>&1 || true
  local load; load=$(loadavg)
  local cpu0=() q0=()
  for n in "${names[@]}"; do cpu0+=("$(cpu_s "${RPID[$n]}")"); done
  for p in "${ports[@]}"; do q0+=("$(queries_total "$p")"); done
  local rc=0
  taskset -c $LOADCPU "$K6" run -q -e BASE="http://127.0.0.1:$LBPORT" -e TENANTS="$TENANTS" -e DURATION="$DURATION" \
    --summary-export "$WORK/k6-$label.json" "$HERE/cluster_counts.js" > "$WORK/k6-$label.log" 2>&1 || rc=$?
  local cpu=() share=()
  for i in "${!names[@]}"; do
    cpu+=("$(awk -v a="$(cpu_s "${RPID[${names[$i]}]}")" -v b="${cpu0[$i]}" 'BEGIN { printf "%.2f", a - b }')")
    share+=("$(awk -v a="$(queries_total "${ports[$i]}")" -v b="${q0[$i]}" 'BEGIN { print a - b }')")
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$load" "${cpu[*]}" "${share[*]}" "$rc" "$WORK/k6-$label.json" >> "$RESULTS"
  echo "$label: load before $load; replica CPU s ${cpu[*]}; queries per replica ${share[*]}; k6 exit $rc"
}

echo "binary $BIN; k6 $("$K6" version | head -1); duration $DURATION; rows $ROWS; tenants $TENANTS"
wait_idle
echo "load before the runs: $(loadavg)"
for r in $(seq "$ROUNDS"); do
  # One replica (A on cpu 0); B stopped.
  if [ -n "${RPID[B]:-}" ] && kill -0 "${RPID[B]}" 2>/dev/null; then stop_pid "${RPID[B]}"; unset 'RPID[B]'; fi
  start_lb "127.0.0.1:$APORT" "127.0.0.1:$DEAD1" "127.0.0.1:$DEAD2" 1
  run_setup "one-$r" A
  stop_pid "$LBPID"
  # Two replicas (A on cpu 0, B on cpu 1).
  start_replica B "$BPORT" 1
  start_lb "127.0.0.1:$APORT" "127.0.0.1:$BPORT" "127.0.0.1:$DEAD1" 2
  run_setup "two-$r" A B
  stop_pid "$LBPID"
done

$PY - "$RESULTS" <<'PY'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
def m(s, name, stat):
    return s["metrics"].get(name, {}).get(stat)
def f(x, d=1):
    return "-" if x is None else f"{x:.{d}f}"
out = {}
print()
print("| setup | load before | k6 http_reqs/s | ws msgs recv/s | finished queries/s | small HTTP p50 / p99 ms | small WS p50 / p99 ms | checks | finished: small HTTP / small WS / SSE / scan | replica CPU s | CPU s / 1000 small queries | CPU s / 1000 queries | queries per replica |")
print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
for label, load, cpu, share, rc, path in rows:
    s = json.load(open(path))
    reqs = m(s, "http_reqs", "rate")
    wsr = m(s, "ws_msgs_received", "rate")
    done = m(s, "queries_done", "count")
    done_rate = m(s, "queries_done", "rate")
    sh = m(s, "queries_done{query:small_http}", "count") or 0
    sw = m(s, "queries_done{query:small_ws}", "count") or 0
    cpu_total = sum(float(c) for c in cpu.split())
    hp = (m(s, "small_query_ms{transport:http}", "med"), m(s, "small_query_ms{transport:http}", "p(99)"))
    wp = (m(s, "small_query_ms{transport:ws}", "med"), m(s, "small_query_ms{transport:ws}", "p(99)"))
    checks = m(s, "checks", "value")
    per_small = 1000 * cpu_total / (sh + sw) if sh + sw else float("nan")
    per_q = 1000 * cpu_total / done if done else float("nan")
    out[label] = dict(reqs=reqs, wsr=wsr, done=done_rate, p99=hp[1], per_small=per_small, per_q=per_q, small=(sh + sw) / 1)
    print(f"| {label} | {load} | {f(reqs)} | {f(wsr)} | {f(done_rate)} | {f(hp[0])} / {f(hp[1])} | {f(wp[0])} / {f(wp[1])} | "
          f"{f(checks, 4)} | {int(sh)} / {int(sw)} / {int(m(s, 'queries_done{query:sse}', 'count') or 0)} / "
          f"{int(m(s, 'queries_done{query:scan}', 'count') or 0)} | {cpu.replace(' ', ' + ')} | {per_small:.2f} | {per_q:.2f} | {share.replace(' ', ' / ')} |")
print()
for r in sorted({k.split("-")[1] for k in out}):
    a, b = out.get(f"one-{r}"), out.get(f"two-{r}")
    if a and b:
        print(f"round {r}: two / one: http_reqs/s {b['reqs'] / a['reqs']:.2f}x, ws msgs/s {b['wsr'] / a['wsr']:.2f}x, "
              f"finished queries/s {b['done'] / a['done']:.2f}x, small HTTP p99 {b['p99'] / a['p99']:.2f}x, "
              f"CPU s per 1000 small queries {b['per_small'] / a['per_small']:.2f}x, per 1000 queries {b['per_q'] / a['per_q']:.2f}x")
PY
echo "load after the runs: $(loadavg)"
