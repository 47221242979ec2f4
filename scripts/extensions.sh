#!/usr/bin/env bash
# Prepares a local DuckDB extension repository from PyPI's official binaries (this machine
# cannot reach DuckDB's own repository): DIR/v1.5.5/linux_amd64/NAME.duckdb_extension, the
# layout `INSTALL NAME FROM 'DIR'` and `duckstream --extension-repository DIR` expect.
# Idempotent.   Usage: scripts/extensions.sh DIR [NAME...]   (default NAME: spatial)
set -euo pipefail
DIR=${1:?usage: $0 DIR [NAME...]}
shift
NAMES=("${@:-spatial}")
VERSION=1.5.5
case "$(uname -m)" in
  x86_64) PLATFORM=linux_amd64 ;;
  aarch64) PLATFORM=linux_arm64 ;;
  *) echo "no DuckDB extension wheels for $(uname -m)" >&2; exit 1 ;;
esac
OUT="$DIR/v$VERSION/$PLATFORM"
mkdir -p "$OUT"
for name in "${NAMES[@]}"; do
  [ -s "$OUT/$name.duckdb_extension" ] && continue
  tmp=$(mktemp -d)
  python3 -m pip download -q --disable-pip-version-check --no-deps \
    "duckdb-extension-$name==$VERSION" -d "$tmp"
  python3 - "$tmp" "$name" "$VERSION" "$OUT" <<'PY'
import glob, os, sys, zipfile
tmp, name, version, out = sys.argv[1:]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
member = f"duckdb_extension_{name}/extensions/v{version}/{name}.duckdb_extension"
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(os.path.join(out, name + ".duckdb_extension.part"), "wb") as dst:
    while chunk := src.read(1 << 20):
        dst.write(chunk)
os.replace(os.path.join(out, name + ".duckdb_extension.part"), os.path.join(out, name + ".duckdb_extension"))
PY
  rm -rf "$tmp"
done
# `INSTALL postgres` looks for the extension's canonical name, postgres_scanner.
if [ -s "$OUT/postgres.duckdb_extension" ] && ! [ -s "$OUT/postgres_scanner.duckdb_extension" ]; then
  cp "$OUT/postgres.duckdb_extension" "$OUT/postgres_scanner.duckdb_extension.part"
  mv "$OUT/postgres_scanner.duckdb_extension.part" "$OUT/postgres_scanner.duckdb_extension"
fi
