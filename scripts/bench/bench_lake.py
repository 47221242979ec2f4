#!/usr/bin/env python3
"""The lake store (`--storage lake`: each tenant a DuckLake, catalog in PostgreSQL, Parquet on
S3) beside the local store (one DuckDB file per tenant), in one run of one binary. The script
starts its own PostgreSQL 15 (Debian's binaries; as the `postgres` user when run as root) and
moto_server (the S3 API, bucket `lake`) in a temporary directory, and stops both at the end.
Gateways: L (local data dir), A and B (two lake replicas on the same catalog and data root,
upkeep off: `--maintenance-interval-secs 0`); M (a third lake replica with upkeep on) only in
section 5. Local and lake are measured in interleaved rounds:

1. Tiny query: `SELECT count(*) FROM small WHERE k = <i>` (1,000 rows, a new literal each time,
   so the result cache never answers, and a new text to parse and plan), and one text the cache
   never keeps (`k = 500 AND random() < 2`), on one keep-alive connection, L beside A: p50 / p99.
2. Warm scans of a 10M-row table (`parcels` of /tmp/bench/bench.duckdb written to Parquet by
   DuckDB, or `range(10M)` rows without it, uploaded with `?format=parquet` to L and A):
   `SELECT * FROM parcels` streamed as NDJSON (curl, plain) and a GROUP BY (a new `LIMIT` each
   time); median seconds, and the speed ratio local s / lake s (aim >= 0.8).
3. A CSV upload (--csv-rows of `parcels`, 2M by default; `--full`: 10M rows, ~1 GB) PUT to L and
   to A, beside DuckDB's own `CREATE TABLE … AS FROM read_csv(…)` (Python duckdb in a process of
   its own) into a .duckdb file and into a DuckLake of the same kind (same catalog database,
   another schema, data under s3://lake/<root>/alone_<n>/, data inlining off as the gateway's);
   median seconds, ratio DuckDB s / gateway s (aim >= 0.9 for the lake).
4. Commit to subscriber: --sockets x --subs WebSocket subscribers (`?compression=none`) of
   `SELECT count(*) FROM events` on B, a one-row append through A; the time from A's upload
   response to each subscriber's `data` line with the new count (p50 / p99 / max over
   --commits commits; aim p99 <= 100 ms). The same on L alone (subscribers and append on one
   gateway) for reference; commits alternate between the two.
5. Many small commits: --appends one-row appends to L and A (interleaved; their latency too),
   then on B (which has not read the table) a first ("cold-ish") and a warm scan of it (median
   of --repeat, new literals), then upkeep by the gateway itself: M (`--maintenance-interval-secs
   1 --maintenance-after-writes 1`) loads the tenant, appends one more row, and runs
   `ducklake_merge_adjacent_files` and the rest; once `duckstream_store_maintenance_runs_total
   {outcome="ok"}` rises (`duckstream_store_data_files` before and after), B's scans again.

The gateways run a copy of --bin made at the start (a rebuild meanwhile changes nothing). Prints a
markdown table per section and a summary (figure / local / lake / ratio / aim); the
gateways' WARN and ERROR log lines are printed at the end (`--logs DIR` keeps all the logs).

    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_lake.py            # quick, ~8 min
    /var/tmp/duckstream-tools/venv/bin/python scripts/bench/bench_lake.py --full     # 10M-row CSV, ~10 min

Needs: PostgreSQL 15 (/usr/lib/postgresql/15/bin, `scripts/test.sh` installs it), moto_server,
duckdb 1.5.5, psycopg and websockets in the tests' venv (/var/tmp/duckstream-tools/venv;
`pip install websockets`), the extensions httpfs, postgres and ducklake in
/var/tmp/duckstream-tools/extensions, curl.
"""
import argparse
import asyncio
import hashlib
import http.client
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import duckdb
import psycopg
import websockets

TOOLS = os.environ.get("DUCKSTREAM_TOOLS", "/var/tmp/duckstream-tools")
DEFAULT_BIN = "/var/tmp/duckstream-target/release/duckstream"
PG_BIN = "/usr/lib/postgresql/15/bin"
LAKE_EXTENSIONS = ("httpfs", "postgres", "ducklake")
SUB_SQL = "SELECT count(*) FROM events"


# ---------------------------------------------------------------- helpers

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs, q):
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return f"(no log: {e})"


def run(args, timeout=120, **kw):
    """Runs a command to completion; its stdout, or SystemExit with its output."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


# ---------------------------------------------------------------- services

class Postgres:
    """PostgreSQL 15 of its own in `work`/pg: trust auth for `postgres` on 127.0.0.1:port, a
    socket in its own directory, English messages, fsync off."""

    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        os.mkdir(self.dir)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.running = False

    def cmd(self, program, *args):
        prog = [os.path.join(PG_BIN, program), *args]
        return ["runuser", "-u", "postgres", "--", *prog] if self.as_root else prog

    def start(self):
        env = dict(os.environ, LC_ALL="C")
        run(self.cmd("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                     "--locale=C", "-E", "UTF8"), cwd=self.dir, env=env)
        conf = (f"\n# bench_lake.py\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nlc_messages = 'C'\nfsync = off\n"
                "max_connections = 300\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(conf)
        run(self.cmd("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"),
            cwd=self.dir, env=env, timeout=90)
        self.running = True

    def dsn(self, db):
        return f"dbname={db} host=127.0.0.1 port={self.port} user=postgres"

    def create_database(self, name):
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')

    def stop(self):
        if self.running:
            subprocess.run(self.cmd("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"),
                           cwd=self.dir, capture_output=True, timeout=90)
            self.running = False


class Moto:
    """moto_server on 127.0.0.1:port, with the bucket `lake`."""

    def __init__(self, work):
        self.port = free_port()
        self.log = os.path.join(work, "moto.log")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([os.path.join(TOOLS, "venv/bin/moto_server"), "-H", "127.0.0.1",
                                      "-p", str(self.port)], stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2).read()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"moto_server exited:\n{tail(self.log)}")
                time.sleep(0.1)
        else:
            raise SystemExit(f"moto_server did not answer:\n{tail(self.log)}")
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/lake", method="PUT")
        urllib.request.urlopen(req, timeout=10).read()

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Gateway:
    """The binary on 127.0.0.1:0 (the port read from its `listening` log line), its output kept in
    `work`/<name>.log."""

    def __init__(self, name, binary, work, extra=()):
        self.name = name
        self.log = os.path.join(work, f"gw-{name}.log")
        data = os.path.join(work, f"data-{name}")
        os.makedirs(data, exist_ok=True)
        args = [binary, "--bind", "127.0.0.1:0", "--demo", "false", "--data-dir", data,
                "--extension-repository", os.path.join(TOOLS, "extensions"),
                "--extension-directory", os.path.join(work, f"ext-{name}"), *extra]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"), NO_COLOR="1")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.port = None
        found = threading.Event()

        def drain():
            with open(self.log, "wb") as out:
                for line in self.proc.stdout:
                    out.write(line)
                    out.flush()
                    if self.port is None and b"listening" in line and b"port=" in line:
                        self.port = int(re.search(rb"port=(\d+)", line).group(1))
                        found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(180) or self.port is None:
            self.stop()
            raise SystemExit(f"gateway {name} did not start:\n{tail(self.log)}")
        self.base = f"http://127.0.0.1:{self.port}"
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body) over the keep-alive connection (reopened once if dropped)."""
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body, headers or {})
                r = self.conn.getresponse()
                return r.status, dict(r.getheaders()), r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                if attempt:
                    raise

    def query(self, tenant, sql):
        """The rows of `sql` (every `data` line's); SystemExit on any status but 200 or a body that
        does not end with `end`."""
        status, headers, body = self.request("POST", f"/v1/{tenant}/query", json.dumps({"sql": sql}),
                                             {"content-type": "application/json"})
        lines = body.rstrip(b"\n").split(b"\n")
        last = json.loads(lines[-1]) if lines[-1] else {}
        if status != 200 or last.get("type") != "end":
            raise SystemExit(f"gateway {self.name}: HTTP {status} for {sql!r}: {body[-500:]!r}")
        rows = [r for l in lines if l.startswith(b'{"type":"data"') for r in json.loads(l)["rows"]]
        return rows, headers

    def create_tenant(self, name):
        status, _, body = self.request("POST", "/v1/admin/tenants", json.dumps({"name": name}),
                                       {"content-type": "application/json"})
        if status != 201:
            raise SystemExit(f"gateway {self.name}: create tenant {name}: HTTP {status} {body[:500]!r}")

    def put(self, tenant, table, body, fmt="csv", mode="replace"):
        """A small upload over the keep-alive connection: (its JSON, perf_counter() at its response)."""
        status, _, out = self.request("PUT", f"/v1/{tenant}/datasets/{table}?format={fmt}&mode={mode}", body)
        t = time.perf_counter()
        if status != 200:
            raise SystemExit(f"gateway {self.name}: PUT {tenant}/{table}: HTTP {status} {out[:500]!r}")
        return json.loads(out), t

    def put_file(self, tenant, table, path, fmt):
        """A file upload with curl (the body streamed from disk): seconds."""
        t = time.perf_counter()
        out = subprocess.run(["curl", "-sS", "-T", path, "-o", "/dev/stderr", "-w", "%{http_code}",
                              f"{self.base}/v1/{tenant}/datasets/{table}?format={fmt}"],
                             capture_output=True, text=True)
        dt = time.perf_counter() - t
        if out.stdout != "200":
            raise SystemExit(f"gateway {self.name}: PUT {path} to {tenant}/{table}: HTTP {out.stdout} "
                             f"{out.stderr[:500]}")
        return dt

    def delete_dataset(self, tenant, table):
        status, _, body = self.request("DELETE", f"/v1/{tenant}/datasets/{table}")
        if status not in (204, 404):
            raise SystemExit(f"gateway {self.name}: DELETE {tenant}/{table}: HTTP {status} {body[:500]!r}")

    def timed_scan(self, tenant, sql):
        """Seconds curl takes to POST `sql` and read the whole (plain) answer into /dev/null."""
        t = time.perf_counter()
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                              f"{self.base}/v1/{tenant}/query", "-H", "content-type: application/json",
                              "--data-binary", json.dumps({"sql": sql})], capture_output=True, text=True)
        dt = time.perf_counter() - t
        if out.stdout != "200":
            raise SystemExit(f"gateway {self.name}: HTTP {out.stdout} for {sql!r}: {out.stderr}")
        return dt

    def metrics(self):
        """{`name{labels}`: value} of /metrics."""
        text = urllib.request.urlopen(f"{self.base}/metrics", timeout=30).read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def stop(self):
        try:
            self.conn.close()
        except AttributeError:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def complaints(self):
        """The log's WARN and ERROR lines (and panics)."""
        with open(self.log, errors="replace") as f:
            return [l.rstrip() for l in f if re.search(r"\b(WARN|ERROR)\b|panicked", l)]


def start_lake(pg, moto, work, data):
    """Starts `pg` (with the database `lakes`) and `moto`; the path of a gateway config file
    whose `[storage]` is a lake on them, its data under `data`."""
    pg.start()
    pg.create_database("lakes")
    moto.start()
    config = os.path.join(work, "lake.toml")
    with open(config, "w") as f:
        f.write(f"""[storage]
kind = "lake"
lake_catalog = "{pg.dsn('lakes')}"
lake_data = "{data}"
s3_endpoint = "{moto.endpoint}"
s3_url_style = "path"
s3_use_ssl = false
s3_region = "us-east-1"
s3_key_id = "test"
s3_secret = "test"
""")
    return config


# ---------------------------------------------------------------- data

def parquet_10m(work, db):
    """The 10M-row table as a Parquet file (DuckDB's writer): `parcels` of `db`, or range rows."""
    path = os.path.join(work, "parcels.parquet")
    c = duckdb.connect()
    c.execute("SET enable_progress_bar = false")
    if os.path.exists(db):
        c.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
        c.execute(f"COPY src.parcels TO '{path}' (FORMAT parquet)")
        what = f"`parcels` of {db}"
    else:
        c.execute(f"""COPY (SELECT range AS id, 'city ' || (range % 1000) AS city, (range * 7919 % 100000)::INT
                      AS population, range * 0.37 AS area, (range % 360) - 180.0 AS lon, (range % 180) - 90.0 AS lat
                      FROM range(10_000_000)) TO '{path}' (FORMAT parquet)""")
        what = "range(10,000,000) rows (no bench database)"
    c.close()
    return path, what


def csv_of(rows, db, work):
    """A CSV of `rows` rows of `parcels` (kept in /tmp/bench for the next run; 10M rows is
    bench_upload.py's /tmp/bench/parcels.csv), or of range rows without the bench database."""
    if os.path.exists(db):
        path = "/tmp/bench/parcels.csv" if rows == 10_000_000 else f"/tmp/bench/parcels_{rows}.csv"
        src = f"(FROM src.parcels LIMIT {rows})"
    else:
        path = os.path.join(work, f"rows_{rows}.csv")
        src = f"(SELECT range AS id, 'name ' || range AS name, range * 0.5 AS v FROM range({rows}))"
    if not os.path.exists(path):
        c = duckdb.connect()
        c.execute("SET enable_progress_bar = false")
        if os.path.exists(db):
            c.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
        c.execute(f"COPY {src} TO '{path}.part' (FORMAT csv, HEADER)")
        c.close()
        os.replace(path + ".part", path)
    return path


ALONE = r"""
import sys, time, duckdb

# The servers these benchmarks start serve HTTP only: several at once would all ask for the
# PostgreSQL endpoint's default port (5433). Set DUCKSTREAM_PG_BIND to measure it.
os.environ.setdefault("DUCKSTREAM_PG_BIND", "off")
repo, extdir, target, csv, endpoint, dsn, schema, data = sys.argv[1:9]
c = duckdb.connect(target if target != "lake" else ":memory:", config={"extension_directory": extdir,
    "autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
c.execute("SET enable_progress_bar = false")
name = "main"
if target == "lake":
    for e in ("httpfs", "postgres", "ducklake"):
        c.execute(f"INSTALL {e} FROM '{repo}'")
        c.execute(f"LOAD {e}")
    c.execute(f"CREATE SECRET lake (TYPE s3, KEY_ID 'test', SECRET 'test', REGION 'us-east-1', "
              f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)")
    c.execute("SET ducklake_max_retry_count = 100")
    c.execute(f"ATTACH 'ducklake:postgres:{dsn}' AS lake (METADATA_SCHEMA '{schema}', DATA_PATH '{data}', "
              "DATA_INLINING_ROW_LIMIT 0)")
    name = "lake"
t = time.perf_counter()
c.execute(f"CREATE TABLE {name}.parcels AS FROM read_csv('{csv}')")
print(time.perf_counter() - t)
"""


# ---------------------------------------------------------------- 1. tiny query

def bench_tiny(L, A, o, res):
    body = "k,v\n" + "".join(f"{i},{i * 0.5}\n" for i in range(1000))
    for g in (L, A):
        g.put("tiny", "small", body.encode())
    # A new text each time (parsed and planned anew), and one text whose random() keeps it out
    # of the cache (its plan kept by the gateway).
    kinds = {"new literal": lambda k: (f"SELECT count(*) FROM small WHERE k = {k}", [[1 if k < 1000 else 0]]),
             "same text, random()": lambda k: ("SELECT count(*) FROM small WHERE k = 500 AND random() < 2", [[1]])}
    lat = {(kind, side): [] for kind in kinds for side in ("local", "lake")}
    hits = 0
    counter = {"local": 0, "lake": 0}
    load = os.getloadavg()[0]
    for rnd in range(o.rounds):
        for kind, make in kinds.items():
            for side, g in ((("local", L), ("lake", A)) if rnd % 2 == 0 else (("lake", A), ("local", L))):
                for i in range(o.tiny_n + 30):
                    k = counter[side]
                    counter[side] += 1
                    sql, want = make(k)
                    t0 = time.perf_counter()
                    rows, headers = g.query("tiny", sql)
                    dt = (time.perf_counter() - t0) * 1000
                    hits += headers.get("x-cache") == "hit" or headers.get("X-Cache") == "hit"
                    if rows != want:
                        raise SystemExit(f"tiny query on {side}: {sql} answered {rows}")
                    if i >= 30:
                        lat[(kind, side)].append(dt)
    print(f"\n### 1. Tiny query\n\n`SELECT count(*) FROM small WHERE k = <i>` (1,000 rows, a new literal "
          f"each time, so a new text to parse and plan) and `… WHERE k = 500 AND random() < 2` (one "
          f"text, never cached: random()) on one keep-alive connection: {o.rounds} interleaved rounds of "
          f"{o.tiny_n} queries of each (after 30 to warm up) per store; cache hits seen: {hits}; "
          f"load average at the start {load:.1f}.\n")
    print("| query | store | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    for kind in kinds:
        for side in ("local", "lake"):
            xs = lat[(kind, side)]
            print(f"| {kind} | {side} | {pct(xs, .5):.2f} | {pct(xs, .9):.2f} | {pct(xs, .99):.2f} | {max(xs):.2f} |")
    res["tiny"] = {(kind, s): (pct(xs, .5), pct(xs, .99)) for (kind, s), xs in lat.items()}


# ---------------------------------------------------------------- 2. scans

def bench_scans(L, A, o, res, work):
    load = os.getloadavg()[0]
    path, what = parquet_10m(work, o.db)
    size = os.path.getsize(path)
    up = {}
    for side, g in (("local", L), ("lake", A)):
        up[side] = g.put_file("scan", "parcels", path, "parquet")
    queries = [("10M rows, `SELECT * FROM parcels`, NDJSON plain", lambda i: "SELECT * FROM parcels"),
               ("`SELECT city, count(*), avg(area) FROM parcels GROUP BY city LIMIT 1000+i`",
                lambda i: f"SELECT city, count(*), avg(area) FROM parcels GROUP BY city LIMIT {1000 + i}")]
    # Warm, and check: every row arrives (the streaming scan through Python once).
    for side, g in (("local", L), ("lake", A)):
        rows, _ = g.query("scan", "SELECT count(*) FROM parcels")
        if rows != [[10_000_000]]:
            raise SystemExit(f"scan table on {side}: {rows}")
        with urllib.request.urlopen(urllib.request.Request(
                f"{g.base}/v1/scan/query", json.dumps({"sql": queries[0][1](0)}).encode(),
                {"content-type": "application/json"}), timeout=600) as r:
            last = b""
            while chunk := r.read(1 << 20):
                last = (last + chunk)[-4096:]
        end = json.loads(last.rstrip(b"\n").rsplit(b"\n", 1)[-1])
        if end.get("type") != "end" or end.get("rows") != 10_000_000:
            raise SystemExit(f"scan on {side} ended with {end}")
        g.timed_scan("scan", queries[1][1](0))
    times = {(q, s): [] for q, _ in queries for s in ("local", "lake")}
    n = 1
    for rnd in range(o.repeat):
        for q, make in queries:
            for side, g in ((("local", L), ("lake", A)) if rnd % 2 == 0 else (("lake", A), ("local", L))):
                times[(q, side)].append(g.timed_scan("scan", make(n)))
                n += 1
    print(f"\n### 2. Warm scans of 10M rows\n\nThe table: {what}, a {size / 2**20:.0f} MiB Parquet file "
          f"uploaded with `?format=parquet` (local {up['local']:.2f} s, lake {up['lake']:.2f} s). "
          f"Medians of {o.repeat}, interleaved, after one warm run each (curl, `-o /dev/null`); load "
          f"average at the start {load:.1f}.\n")
    print("| query | local s | lake s | local s / lake s | all runs local / lake |")
    print("|---|---:|---:|---:|---|")
    res["scan"] = {}
    for q, _ in queries:
        lo, la = statistics.median(times[(q, "local")]), statistics.median(times[(q, "lake")])
        runs = " ".join(f"{x:.2f}" for x in times[(q, "local")]) + " / " + " ".join(f"{x:.2f}" for x in times[(q, "lake")])
        print(f"| {q} | {lo:.2f} | {la:.2f} | {lo / la:.2f} | {runs} |")
        res["scan"][q] = (lo, la)
    res["parquet_upload"] = (up["local"], up["lake"], size)


# ---------------------------------------------------------------- 3. uploads

def bench_upload(L, A, o, res, work, pg, moto):
    load = os.getloadavg()[0]
    path = csv_of(o.csv_rows, o.db, work)
    size = os.path.getsize(path)
    extdir = os.path.join(work, "ext-alone")
    n = iter(range(1_000_000))

    def alone(target):
        i = next(n)
        if target == "lake":
            args = ["lake", path, moto.endpoint, pg.dsn("lakes"), f"alone_{i}", f"{o.lake_data}alone_{i}/"]
        else:
            args = [os.path.join(work, f"alone_{i}.duckdb"), path, "", "", "", ""]
        out = run([sys.executable, "-c", ALONE, os.path.join(TOOLS, "extensions"), extdir, *args], timeout=3600)
        if target != "lake":
            os.remove(args[0])
        return float(out.strip().splitlines()[-1])

    def gateway(g):
        g.delete_dataset("up", "parcels")
        return g.put_file("up", "parcels", path, "csv")

    cases = {"gateway → local": lambda: gateway(L), "gateway → lake": lambda: gateway(A),
             "DuckDB → .duckdb": lambda: alone("local"), "DuckDB → lake": lambda: alone("lake")}
    order = list(cases)
    times = {k: [] for k in cases}
    for rnd in range(o.upload_repeat):
        for k in order[rnd % 4:] + order[:rnd % 4]:
            times[k].append(cases[k]())
    for g in (L, A):
        rows, _ = g.query("up", "SELECT count(*) FROM parcels")
        if rows != [[o.csv_rows]]:
            raise SystemExit(f"uploaded CSV on {g.name}: {rows}")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n### 3. CSV upload\n\n{o.csv_rows:,} rows, a {size / 2**20:.0f} MiB CSV ({path}): PUT with curl "
          f"beside DuckDB's `CREATE TABLE … AS FROM read_csv(…)` in a Python process of its own; medians "
          f"of {o.upload_repeat}, interleaved (each gateway load into an empty table: the dataset is "
          f"deleted first, untimed); load average at the start {load:.1f}.\n")
    print("| target | DuckDB alone s | gateway s | DuckDB s / gateway s | gateway MiB/s | all runs (DuckDB / gateway) |")
    print("|---|---:|---:|---:|---:|---|")
    for target, db_k, gw_k in (("local file", "DuckDB → .duckdb", "gateway → local"),
                               ("lake", "DuckDB → lake", "gateway → lake")):
        runs = " ".join(f"{x:.2f}" for x in times[db_k]) + " / " + " ".join(f"{x:.2f}" for x in times[gw_k])
        print(f"| {target} | {med[db_k]:.2f} | {med[gw_k]:.2f} | {med[db_k] / med[gw_k]:.2f} | "
              f"{size / med[gw_k] / 2**20:.0f} | {runs} |")
    res["upload"] = (med, size)


# ---------------------------------------------------------------- 4. subscriptions

class Sock:
    def __init__(self):
        self.data = []  # (arrival, rows)
        self.subscribed = 0
        self.errors = []
        self.closed = None


async def read_sock(ws, s):
    try:
        async for msg in ws:
            t = time.perf_counter()
            if isinstance(msg, bytes):
                msg = msg.decode()
            for line in msg.splitlines():
                if line.startswith('{"type":"data"'):
                    s.data.append((t, json.loads(line)["rows"]))
                elif line.startswith('{"type":"subscribed"'):
                    s.subscribed += 1
                elif line.startswith('{"type":"error"'):
                    s.errors.append(line)
    except websockets.ConnectionClosed as e:
        s.closed = e
    else:
        s.closed = "closed"


async def open_sock(url, subs):
    ws = await websockets.connect(url, compression=None, open_timeout=30, close_timeout=5, max_size=None,
                                  ping_interval=None)
    s = Sock()
    task = asyncio.create_task(read_sock(ws, s))
    for j in range(subs):
        await ws.send(json.dumps({"type": "subscribe", "id": f"s{j}", "sql": SUB_SQL}))
    return ws, s, task


async def wait_for(pred, timeout):
    end = time.perf_counter() + timeout
    while not pred():
        if time.perf_counter() > end:
            return False
        await asyncio.sleep(0.002)
    return True


def got(socks, subs, count):
    """Per socket, the arrival times of its first `subs` data lines with `count` (fewer if missing)."""
    out = []
    for _, s, _ in socks:
        ts = [t for t, rows in s.data if rows == [[count]]][:subs]
        out.append(ts)
    return out


async def bench_subscriptions(L, A, B, o, res):
    for g in (L, A):
        g.put("live", "events", b"id\n0\n")
    # B reads the table A wrote (its catalog from PostgreSQL) before anyone subscribes.
    deadline = time.time() + 30
    while B.query("live", SUB_SQL)[0] != [[1]]:
        if time.time() > deadline:
            raise SystemExit("B never saw A's `events`")
        await asyncio.sleep(0.1)
    n = o.sockets * o.subs
    load = os.getloadavg()[0]
    sides = {"local": (L, L), "lake": (A, B)}
    socks = {}
    for side, (_, reader) in sides.items():
        url = f"ws://127.0.0.1:{reader.port}/v1/live/ws?compression=none"
        t0 = time.perf_counter()
        opened = await asyncio.gather(*(open_sock(url, o.subs) for _ in range(o.sockets)), return_exceptions=True)
        bad = [e for e in opened if isinstance(e, BaseException)]
        if bad:
            raise SystemExit(f"{side}: {len(bad)} WebSockets refused, first: {bad[0]!r}")
        socks[side] = opened
        ok = await wait_for(lambda: all(len(ts) >= o.subs for ts in got(opened, o.subs, 1)), 120)
        print(f"{side}: {n} subscribers' first results in {time.perf_counter() - t0:.2f} s"
              f"{'' if ok else ' (TIMED OUT)'}", file=sys.stderr, flush=True)
    count = {"local": 1, "lake": 1}
    lat = {"local": [], "lake": []}
    rows_out = []
    for c in range(o.commits):
        for side in (("local", "lake") if c % 2 == 0 else ("lake", "local")):
            writer, _ = sides[side]
            count[side] += 1
            want = count[side]
            body = f"id\n{want - 1}\n".encode()
            m0 = await asyncio.to_thread(sides[side][1].metrics)
            _, t_put = await asyncio.to_thread(writer.put, "live", "events", body, "csv", "append")
            done = await wait_for(lambda: all(len(ts) >= o.subs for ts in got(socks[side], o.subs, want)), 30)
            m1 = await asyncio.to_thread(sides[side][1].metrics)
            xs = [(t - t_put) * 1000 for ts in got(socks[side], o.subs, want) for t in ts]
            lat[side] += xs
            execs = m1.get("duckstream_duckdb_executions_total", 0) - m0.get("duckstream_duckdb_executions_total", 0)
            cells = f"{pct(xs, .5):.1f} / {pct(xs, .99):.1f} / {max(xs):.1f} | {min(xs):.1f}" if xs else "— | —"
            rows_out.append(f"| {side} #{c + 1} | {len(xs)} / {n}{'' if done else ' (timed out)'} | "
                            f"{int(execs)} | {cells} |")
            await asyncio.sleep(1.2)
    print(f"\n### 4. Commit to subscriber\n\n{o.sockets} WebSockets × {o.subs} subscriptions = {n} subscribers "
          f"of `{SUB_SQL}` per store (`?compression=none`, one Python event loop reads all "
          f"{2 * o.sockets} sockets). Local: subscribers on L, a one-row append (`mode=append`) through L. "
          f"Lake: subscribers on B, the append through A (B hears it through PostgreSQL's NOTIFY). "
          f"Time from the append's response to each subscriber's `data` line with the new count; "
          f"commits alternate between the stores, 1.2 s apart; load average at the start {load:.1f}.\n")
    print("| commit | subscribers with the new count | DuckDB executions (reader) | ms p50 / p99 / max | earliest ms |")
    print("|---|---:|---:|---:|---:|")
    for r in rows_out:
        print(r)
    errors = [e for side in socks for _, s, _ in socks[side] for e in s.errors]
    closed = [s.closed for side in socks for _, s, _ in socks[side] if s.closed is not None]
    if errors or closed:
        print(f"\nError lines: {len(errors)} (first: {errors[:1]}); sockets closed by the server: "
              f"{len(closed)} (first: {closed[:1]!r})")
    res["subs"] = {s: (pct(x, .5), pct(x, .99), max(x), len(x)) if x else None for s, x in lat.items()}
    res["subs_n"] = (n, o.commits)
    for side in socks:
        for ws, _, task in socks[side]:
            await ws.close()
        await asyncio.wait_for(asyncio.gather(*(t for _, _, t in socks[side]), return_exceptions=True), 30)


# ---------------------------------------------------------------- 5. many small commits, upkeep

def bench_upkeep(L, A, B, o, res, binary, work, config):
    # B has the tenant open (attached) but has never read the table.
    B.query("drip", "SELECT 1")
    load = os.getloadavg()[0]
    append = {"local": [], "lake": []}
    for i in range(o.appends):
        for side, g in ((("local", L), ("lake", A)) if i % 2 == 0 else (("lake", A), ("local", L))):
            t0 = time.perf_counter()
            _, t1 = g.put("drip", "drip", f"id,v\n{i},{i * 0.5}\n".encode(), "csv", "replace" if i == 0 else "append")
            append[side].append((t1 - t0) * 1000)
    literal = iter(range(1, 10_000_000))

    def scans(g, want):
        out = []
        for _ in range(1 + o.repeat):
            sql = f"SELECT count(*), sum(v) FROM drip WHERE id <> -{next(literal)}"
            t0 = time.perf_counter()
            rows, _ = g.query("drip", sql)
            out.append((time.perf_counter() - t0) * 1000)
            if rows[0][0] != want:
                raise SystemExit(f"drip on {g.name}: {rows}, want {want} rows")
        return out[0], statistics.median(out[1:])

    local = scans(L, o.appends)
    before = scans(B, o.appends)
    # Upkeep by a replica with it on: it must hear (or make) a write to count the tenant due.
    M = Gateway("M", binary, work, ["--config", config, "--maintenance-interval-secs", "1",
                                    "--maintenance-after-writes", "1"])
    try:
        M.query("drip", "SELECT count(*) FROM drip")
        time.sleep(2.5)  # a tick reads the loaded tenants' files
        m0 = M.metrics()
        files0 = m0.get("duckstream_store_data_files")
        ok0 = m0.get('duckstream_store_maintenance_runs_total{outcome="ok"}', 0)
        t0 = time.perf_counter()
        M.put("drip", "drip", f"id,v\n{o.appends},{o.appends * 0.5}\n".encode(), "csv", "append")
        m1 = m0
        while m1.get('duckstream_store_maintenance_runs_total{outcome="ok"}', 0) <= ok0:
            if time.perf_counter() - t0 > o.upkeep_timeout:
                break
            time.sleep(0.25)
            m1 = M.metrics()
        waited = time.perf_counter() - t0
        outcomes = {k: v for k, v in m1.items() if k.startswith("duckstream_store_maintenance_runs_total")}
        time.sleep(2.5)  # the next tick reads the files again
        files1 = M.metrics().get("duckstream_store_data_files")
        upkeep_ms = [l for l in open(M.log, errors="replace") if "storage upkeep" in l]
    finally:
        M.stop()
    after = scans(B, o.appends + 1)
    lp = {s: (statistics.median(x), pct(x, .99)) for s, x in append.items()}
    print(f"\n### 5. {o.appends} one-row commits, then upkeep\n\n{o.appends} one-row uploads (the first a "
          f"replace, then appends) to L and A, interleaved: append round trip p50 / p99 local "
          f"{lp['local'][0]:.1f} / {lp['local'][1]:.1f} ms, lake {lp['lake'][0]:.1f} / {lp['lake'][1]:.1f} ms. "
          f"Then `SELECT count(*), sum(v) FROM drip WHERE id <> -i` on B (lake; tenant attached, table "
          f"never read) and L: the first run, then the median of {o.repeat}. Upkeep: M (upkeep on) "
          f"appended one row and ran it; `duckstream_store_maintenance_runs_total` on M after "
          f"{waited:.1f} s: {outcomes or 'absent'}; data files (M's `duckstream_store_data_files`) "
          f"{files0} before, {files1} after. M's log: {' '.join(l.strip() for l in upkeep_ms) or '(no upkeep line)'}. "
          f"Load average at the start {load:.1f}.\n")
    print("| | first scan ms | warm scan ms (median) |")
    print("|---|---:|---:|")
    print(f"| local, {o.appends} commits | {local[0]:.1f} | {local[1]:.1f} |")
    print(f"| lake, {o.appends} commits, before upkeep | {before[0]:.1f} | {before[1]:.1f} |")
    print(f"| lake, after upkeep | {after[0]:.1f} | {after[1]:.1f} |")
    res["upkeep"] = {"local": local, "before": before, "after": after, "append": lp,
                     "files": (files0, files1), "ok": m1.get('duckstream_store_maintenance_runs_total{outcome="ok"}', 0) > ok0}


# ---------------------------------------------------------------- summary

def summary(res, o):
    print("\n### Summary\n\nSpeed ratio = local s ÷ lake s (1 = the lake as fast); for uploads DuckDB "
          "alone s ÷ gateway s into the same kind of store.\n")
    print("| figure | local | lake | ratio | aim |")
    print("|---|---:|---:|---:|---|")
    if "tiny" in res:
        for kind in ("new literal", "same text, random()"):
            lo, la = res["tiny"][(kind, "local")], res["tiny"][(kind, "lake")]
            print(f"| tiny uncached query ({kind}), p50 / p99 | {lo[0]:.2f} / {lo[1]:.2f} ms | "
                  f"{la[0]:.2f} / {la[1]:.2f} ms | {lo[0] / la[0]:.2f} | — |")
    if "scan" in res:
        for q, (lo, la) in res["scan"].items():
            aim = "≥ 0.8" if q.startswith("10M") else "—"
            name = "warm 10M-row scan, NDJSON plain" if q.startswith("10M") else "warm GROUP BY city on 10M rows"
            print(f"| {name} | {lo:.2f} s | {la:.2f} s | {lo / la:.2f} | {aim} |")
        lo, la, size = res["parquet_upload"]
        print(f"| 10M-row Parquet upload ({size / 2**20:.0f} MiB) | {lo:.2f} s | {la:.2f} s | {lo / la:.2f} | — |")
    if "upload" in res:
        med, size = res["upload"]
        rows = f"{o.csv_rows / 1e6:g}M-row CSV ({size / 2**20:.0f} MiB)"
        print(f"| {rows} into the lake: DuckDB alone (local col.) vs gateway (lake col.) | "
              f"{med['DuckDB → lake']:.2f} s | {med['gateway → lake']:.2f} s | "
              f"{med['DuckDB → lake'] / med['gateway → lake']:.2f} | ≥ 0.9 |")
        print(f"| {rows} upload through the gateway | {med['gateway → local']:.2f} s | {med['gateway → lake']:.2f} s | "
              f"{med['gateway → local'] / med['gateway → lake']:.2f} | — |")
        print(f"| {rows}, DuckDB alone into a file (local col.): gateway → local file ratio | "
              f"{med['DuckDB → .duckdb']:.2f} s | — | {med['DuckDB → .duckdb'] / med['gateway → local']:.2f} | — |")
    if "subs" in res:
        n, commits = res["subs_n"]
        lo, la = res["subs"]["local"], res["subs"]["lake"]
        cell = lambda x: f"{x[0]:.1f} / {x[1]:.1f} / {x[2]:.1f} ms" if x else "—"
        print(f"| commit → {n} subscribers, p50 / p99 / max ({commits} commits; lake: A → B) | {cell(lo)} | "
              f"{cell(la)} | — | lake p99 ≤ 100 ms |")
    if "upkeep" in res:
        u = res["upkeep"]
        print(f"| one-row append round trip, p50 | {u['append']['local'][0]:.1f} ms | {u['append']['lake'][0]:.1f} ms | "
              f"{u['append']['local'][0] / u['append']['lake'][0]:.2f} | — |")
        print(f"| first scan after {o.appends} one-row commits | {u['local'][0]:.1f} ms | {u['before'][0]:.1f} ms | "
              f"{u['local'][0] / u['before'][0]:.3f} | — |")
        print(f"| … the same, warm | {u['local'][1]:.1f} ms | {u['before'][1]:.1f} ms | "
              f"{u['local'][1] / u['before'][1]:.3f} | — |")
        print(f"| lake after upkeep ({u['files'][0]} → {u['files'][1]} files): first / warm scan | — | "
              f"{u['after'][0]:.1f} / {u['after'][1]:.1f} ms | — | faster than before |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("--db", default="/tmp/bench/bench.duckdb", help="its `parcels` make the 10M-row table and the CSV")
    p.add_argument("--full", action="store_true", help="the 10M-row CSV (~1 GB), 3 uploads of each")
    p.add_argument("--csv-rows", type=int, default=None, help="rows of the uploaded CSV (default 2M; 10M with --full)")
    p.add_argument("--upload-repeat", type=int, default=None, help="uploads of each kind (default 1; 3 with --full)")
    p.add_argument("--rounds", type=int, default=3, help="tiny-query rounds")
    p.add_argument("--tiny-n", type=int, default=300, help="tiny queries per round and store")
    p.add_argument("--repeat", type=int, default=5, help="timed scans of each")
    p.add_argument("--sockets", type=int, default=100)
    p.add_argument("--subs", type=int, default=10, help="subscriptions per socket")
    p.add_argument("--commits", type=int, default=5, help="appends per store while subscribed")
    p.add_argument("--appends", type=int, default=300, help="one-row commits before upkeep")
    p.add_argument("--upkeep-timeout", type=float, default=300)
    p.add_argument("--sections", default="1,2,3,4,5")
    p.add_argument("--logs", help="copy the gateways', moto's and PostgreSQL's logs here")
    o = p.parse_args()
    o.csv_rows = o.csv_rows or (10_000_000 if o.full else 2_000_000)
    o.upload_repeat = o.upload_repeat or (3 if o.full else 1)
    sections = set(o.sections.split(","))
    if not os.path.exists(o.bin):
        raise SystemExit(f"no binary at {o.bin}")
    os.makedirs("/tmp/bench", exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench_lake_")
    os.chmod(work, 0o755)  # PostgreSQL's user enters it
    # Every gateway (M too, minutes later) runs these bits, whatever rebuilds the original.
    binary = os.path.join(work, "duckstream")
    shutil.copy2(o.bin, binary)
    with open(binary, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(o.bin)))
    o.lake_data = "s3://lake/bench/"
    pg, moto, gateways = Postgres(work), Moto(work), []
    res = {}
    try:
        config = start_lake(pg, moto, work, o.lake_data)
        off = ["--maintenance-interval-secs", "0"]
        L = Gateway("L", binary, work)
        gateways.append(L)
        A = Gateway("A", binary, work, ["--config", config, *off])
        gateways.append(A)
        B = Gateway("B", binary, work, ["--config", config, *off])
        gateways.append(B)
        for t in ("tiny", "scan", "up", "live", "drip"):
            L.create_tenant(t)
            A.create_tenant(t)
        out = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
        print(f"## bench_lake.py, {out}\n\n`{' '.join(sys.argv)}`; binary {o.bin} (built {built}, sha256 {digest}…, run from a copy); PostgreSQL 15 "
              f"(fsync off) and moto_server on loopback; lake data {o.lake_data}; "
              f"load average before: {os.getloadavg()[0]:.2f}.", flush=True)
        if "1" in sections:
            bench_tiny(L, A, o, res)
        if "2" in sections:
            bench_scans(L, A, o, res, work)
        if "3" in sections:
            bench_upload(L, A, o, res, work, pg, moto)
        if "4" in sections:
            asyncio.run(bench_subscriptions(L, A, B, o, res))
        if "5" in sections:
            bench_upkeep(L, A, B, o, res, binary, work, config)
        summary(res, o)
        print(f"\nLoad average at the end: {os.getloadavg()[0]:.2f}.")
    finally:
        for g in gateways:
            g.stop()
        logs = [g.log for g in gateways] + [os.path.join(work, "gw-M.log")]
        print("\n### Gateway log lines at WARN or above\n")
        for path in logs:
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    bad = [l.rstrip() for l in f if re.search(r"\b(WARN|ERROR)\b|panicked", l)]
                name = os.path.basename(path)
                print(f"- {name}: {len(bad)}" + "".join(f"\n  - `{l[:400]}`" for l in bad[:15]))
        moto.stop()
        pg.stop()
        if o.logs:
            os.makedirs(o.logs, exist_ok=True)
            for path in logs + [moto.log, pg.log]:
                if os.path.exists(path):
                    shutil.copy(path, o.logs)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
