#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests (real server, real DuckDB, real
# clients, and a real browser). One build profile (release) for everything, so DuckDB is
# compiled once; the target directory lives outside the clone so CI and local runs share it.
#
# Installs what the tests need when it is missing (idempotent):
#   - Debian's chromium (/usr/bin/chromium), for the EventSource browser test;
#   - npm's playwright-core (pinned) into $DUCKSTREAM_TOOLS, to drive it.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/duckstream-target}
export DUCKSTREAM_TOOLS=${DUCKSTREAM_TOOLS:-/var/tmp/duckstream-tools}
PLAYWRIGHT_CORE_VERSION=1.65.1

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ "$(node -p 'try { require(process.argv[1] + "/node_modules/playwright-core/package.json").version } catch (e) { "" }' "$DUCKSTREAM_TOOLS" 2>/dev/null)" != "$PLAYWRIGHT_CORE_VERSION" ]; then
  mkdir -p "$DUCKSTREAM_TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$DUCKSTREAM_TOOLS" "playwright-core@$PLAYWRIGHT_CORE_VERSION" >/dev/null
fi

cargo test --release --all-targets "$@"
