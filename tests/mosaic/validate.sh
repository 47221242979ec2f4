#!/usr/bin/env bash
# Validates the Mosaic harness against Mosaic's own Python server, duckdb-server:
#   0.34.2 (current; Starlette, REST only)            REST
#   0.32.0 (socketify; REST + WebSocket)              REST (its WebSocket is broken, shown too)
#   0.31.0 (socketify; last working WebSocket, json)  REST + WebSocket
# Sets up pinned venvs under $VENVS (once), makes a 100k-row parcels database, starts the
# three servers on free 127.0.0.1 ports, runs every harness script, writes their JSON to
# $OUT and stops the servers it started (also on failure or ^C).
#
#   bash tests/mosaic/validate.sh            # everything, incl. the browser dashboard
#   NO_BROWSER=1 bash tests/mosaic/validate.sh
# Needs: node 20 + npm, python3.11 (and python3.12 for 0.34.2: on 3.11, msgspec rejects
# its typing_extensions.TypeAliasType and every request is a 500), Debian's libuv1
# (socketify's native library links it), /usr/bin/chromium and playwright-core on
# NODE_PATH for the browser part.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENVS=${VENVS:-/var/tmp/mosaic-venvs}
OUT=${OUT:-/tmp/mosaic-validate}
pick_python() { # first interpreter of the given minor versions that runs (pyenv shims may not)
  for v in "$@"; do
    for c in "python$v" /root/.pyenv/versions/"$v".*/bin/python"$v" /usr/bin/python"$v"; do
      if [ -x "$(command -v "$c" 2>/dev/null)" ] && "$c" -c '' 2>/dev/null; then command -v "$c"; return; fi
    done
  done
  echo "no python $* found" >&2; return 1
}
PY311=${PY311:-$(pick_python 3.11)}
PY312=${PY312:-$(pick_python 3.12 3.13)}
export NODE_PATH=${NODE_PATH:-/var/tmp/duckstream-tools/node_modules}
mkdir -p "$VENVS" "$OUT"

venv() { # venv NAME PYTHON REQUIREMENTS
  local dir="$VENVS/$1"
  if [ ! -x "$dir/bin/python" ] || ! cmp -s "$3" "$dir/.requirements"; then
    rm -rf "$dir"
    "$2" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$3"
    cp "$3" "$dir/.requirements"
  fi
}
venv ds-0.34.2 "$PY312" "$HERE/requirements-duckdb-server-0.34.2.txt"
venv ds-0.32.0 "$PY311" "$HERE/requirements-duckdb-server-0.32.0.txt"
venv ds-0.31.0 "$PY311" "$HERE/requirements-duckdb-server-0.31.0.txt"
[ -d "$HERE/node_modules" ] || npm ci --prefix "$HERE" --no-audit --no-fund

DB="$OUT/db"
mkdir -p "$DB"
rm -f "$DB"/*.duckdb "$DB"/*.wal
"$VENVS/ds-0.34.2/bin/python" "$HERE/make_parcels.py" "$DB/parcels-0.34.2.duckdb"
cp "$DB/parcels-0.34.2.duckdb" "$DB/parcels-0.32.0.duckdb"   # one file per server: DuckDB locks it
cp "$DB/parcels-0.34.2.duckdb" "$DB/parcels-0.31.0.duckdb"

free_port() { "$PY311" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "server on $1 did not start" >&2; return 1; }

P34=$(free_port); P32=$(free_port); P31=$(free_port)
"$VENVS/ds-0.34.2/bin/duckdb-server" --database "$DB/parcels-0.34.2.duckdb" --address 127.0.0.1 --port "$P34" --no-http2 >"$OUT/server-0.34.2.log" 2>&1 &
PIDS+=($!)
"$VENVS/ds-0.32.0/bin/python" "$HERE/serve_duckdb_server_socketify.py" "$DB/parcels-0.32.0.duckdb" "$P32" >"$OUT/server-0.32.0.log" 2>&1 &
PIDS+=($!)
"$VENVS/ds-0.31.0/bin/python" "$HERE/serve_duckdb_server_socketify.py" "$DB/parcels-0.31.0.duckdb" "$P31" >"$OUT/server-0.31.0.log" 2>&1 &
PIDS+=($!)
wait_port "$P34"; wait_port "$P32"; wait_port "$P31"

run() { # run NAME CMD...: JSON to $OUT/NAME.json, exit code reported, never aborts the script
  local name=$1; shift
  local rc=0
  timeout 300 "$@" >"$OUT/$name.json" 2>"$OUT/$name.err" || rc=$?
  printf '%-40s exit %s\n' "$name" "$rc"
}
C="node $HERE/client.mjs"
run requests-rest-0.34.2    $C rest   "http://127.0.0.1:$P34/" "$HERE/requests.json"
run requests-rest-0.32.0    $C rest   "http://127.0.0.1:$P32/" "$HERE/requests.json"
run requests-rest-0.31.0    $C rest   "http://127.0.0.1:$P31/" "$HERE/requests.json"
run requests-socket-0.31.0  $C socket "ws://127.0.0.1:$P31/"   "$HERE/requests.json"
MOSAIC_TIMEOUT_MS=5000 run requests-socket-0.32.0-broken $C socket "ws://127.0.0.1:$P32/" "$HERE/requests.json"
run wire-rest-token-0.32.0  $C rest   "http://127.0.0.1:$P32/?token=abc" "$HERE/requests.json" --wire
run wire-socket-token-0.31.0 $C socket "ws://127.0.0.1:$P31/v1/demo/mosaic?token=abc" "$HERE/requests.json" --wire
run crossfilter-rest-0.34.2          $C rest   "http://127.0.0.1:$P34/" --crossfilter
run crossfilter-rest-0.34.2-nopreagg $C rest   "http://127.0.0.1:$P34/" --crossfilter --no-preagg
run crossfilter-socket-0.31.0        $C socket "ws://127.0.0.1:$P31/"   --crossfilter --wire
run crossfilter-socket-0.31.0-nopreagg $C socket "ws://127.0.0.1:$P31/" --crossfilter --no-preagg
run ipc-edges      node "$HERE/ipc_edges.mjs" "http://127.0.0.1:$P34/"
run socket-edges   node "$HERE/socket_edges.mjs"
run pipeline-limit node "$HERE/pipeline_limit.mjs"

if [ -z "${NO_BROWSER:-}" ]; then
  DASH="$ROOT/examples/mosaic-dashboard"
  [ -d "$DASH/node_modules" ] || npm ci --prefix "$DASH" --no-audit --no-fund
  npm run build --prefix "$DASH" >/dev/null
  B="node $ROOT/tests/browser/mosaic_dashboard.cjs --category=zone"
  run dashboard-rest-0.32.0        $B "http://127.0.0.1:$P32/" --screenshot="$OUT/dashboard-rest-0.32.0.png"
  run dashboard-rest-0.32.0-file-nopreagg $B "http://127.0.0.1:$P32/" --file --preagg=off
  run dashboard-socket-0.31.0      $B "ws://127.0.0.1:$P31/" --screenshot="$OUT/dashboard-socket-0.31.0.png"
  run dashboard-rest-0.34.2-cors   $B "http://127.0.0.1:$P34/" --timeout=15000
fi
echo "outputs in $OUT"
