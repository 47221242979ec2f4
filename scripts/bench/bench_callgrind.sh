#!/usr/bin/env bash
# Instructions per row (valgrind's callgrind: counts, not seconds, so the machine's noise does
# not move them): the gateway under callgrind answers ROWS rows of the benchmark table once
# plain and once with zstd; prints the instructions of the NDJSON encoder, of zstd and of the
# whole process, per row.
#
#   scripts/bench/bench_callgrind.sh BINARY [ROWS]   # needs valgrind (apt-get install valgrind)
set -euo pipefail
# HTTP only: the PostgreSQL endpoint's default port would clash between servers.
export DUCKSTREAM_PG_BIND="${DUCKSTREAM_PG_BIND:-off}"
BIN=$(readlink -f "$1"); ROWS=${2:-200000}
DB=${BENCH_DB:-/tmp/bench/bench.duckdb}
command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
WORK=$(mktemp -d); trap 'kill $VG 2>/dev/null || true' EXIT
mkdir "$WORK/data"; ln -s "$DB" "$WORK/data/bench.duckdb"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" --dump-instr=no \
  "$BIN" --bind "127.0.0.1:$PORT" --data-dir "$WORK/data" --demo false --extensions "" --queue-timeout-secs 300 \
  > "$WORK/log" 2>&1 &
VG=$!
for _ in $(seq 600); do curl -fs "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done
SQL="{\"sql\":\"SELECT * FROM parcels LIMIT $ROWS\",\"chunk_rows\":1000}"
curl -fsS "127.0.0.1:$PORT/v1/bench/query" --data-binary "$SQL" -o /dev/null
# A different text, so that the result cache does not answer the second one.
SQL2="{\"sql\":\"SELECT * FROM parcels LIMIT $ROWS -- zstd\",\"chunk_rows\":1000}"
curl -fsS -H 'Accept-Encoding: zstd' "127.0.0.1:$PORT/v1/bench/query" --data-binary "$SQL2" -o /dev/null
kill -TERM $VG; wait $VG 2>/dev/null || true
callgrind_annotate --inclusive=yes "$WORK/cg.out" 2>/dev/null > "$WORK/annotated"
total=$(grep -m1 "PROGRAM TOTALS" "$WORK/annotated" | awk '{gsub(",","",$1); print $1}')
# Inclusive cost of the first line naming each part.
part() { grep -m1 -E "$1" "$WORK/annotated" | awk '{gsub(",","",$1); print $1}' || true; }
enc=$(part 'src/encode/ndjson.rs:<duckstream::encode::ndjson::NdjsonEncoder as duckstream::encode::ResultEncoder>::push')
zstd=$(part ':ZSTD_compressContinue_internal ')  # file:fn, or ???:fn without zstd's debug info
rows=$((2 * ROWS))
echo "| what | instructions | per row (of $rows) |"
echo "|---|---|---|"
echo "| NDJSON encoder (both runs) | ${enc:-?} | $(( ${enc:-0} / rows )) |"
echo "| zstd (the zstd run) | ${zstd:-?} | $(( ${zstd:-0} / ROWS )) |"
echo "| whole process (start, both runs, stop) | $total | $(( total / rows )) |"
echo "(callgrind's output: $WORK)"
