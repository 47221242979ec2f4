#!/usr/bin/env bash
# start|stop PostgreSQL 15 (own initdb cluster, loopback, log_min_duration_statement=0) and moto_server.
# PIDs in $WORK/*.pid; stop kills exactly those.
set -euo pipefail
VENV=/var/tmp/duckstream-tools/venv
WORK=${WORK:-/tmp/duckstream-catalog-cost}
PGPORT=${PGPORT:-56432}
S3PORT=${S3PORT:-56433}
PGBIN=/usr/lib/postgresql/15/bin
case "${1:-}" in
start)
  mkdir -p "$WORK/pg"; chown postgres:postgres "$WORK/pg"; chmod 755 "$WORK" "$(dirname "$WORK")"
  if ! [ -f "$WORK/pg/data/PG_VERSION" ]; then
    su postgres -c "$PGBIN/initdb -D $WORK/pg/data -A trust -U postgres --no-sync" >/dev/null
  fi
  if ! [ -f "$WORK/pg/data/postmaster.pid" ]; then
    (cd /tmp && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg/data -l $WORK/pg/pg.log -w -o '-p $PGPORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c shared_buffers=128MB -c max_connections=400 -c fsync=off -c log_destination=csvlog -c logging_collector=on -c log_directory=$WORK/pg/log -c log_filename=pg.log' start" >/dev/null)
  fi
  head -1 "$WORK/pg/data/postmaster.pid" > "$WORK/postgres.pid"
  if ! { [ -f "$WORK/moto.pid" ] && kill -0 "$(cat "$WORK/moto.pid")" 2>/dev/null; }; then
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3PORT" > "$WORK/moto.log" 2>&1 &
    echo $! > "$WORK/moto.pid"
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3PORT/" && break; sleep 0.2; done
  fi
  "$VENV/bin/python" - "$S3PORT" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", aws_access_key_id="test",
                  aws_secret_access_key="test", region_name="us-east-1")
if "lake" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket="lake")
PY
  echo "postgres pid $(cat "$WORK/postgres.pid") port $PGPORT; moto pid $(cat "$WORK/moto.pid") port $S3PORT"
  ;;
stop)
  if [ -f "$WORK/moto.pid" ]; then kill "$(cat "$WORK/moto.pid")" 2>/dev/null || true; rm -f "$WORK/moto.pid"; fi
  if [ -f "$WORK/pg/data/postmaster.pid" ]; then
    (cd /tmp && su postgres -c "$PGBIN/pg_ctl -D $WORK/pg/data -m fast -w stop" >/dev/null) || true
  fi
  rm -f "$WORK/postgres.pid"; echo stopped
  ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
