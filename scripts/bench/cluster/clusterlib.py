"""Shared by failover.py, rolling.py and scaling.sh: a lake cluster as tests/api/cluster.rs
starts it, run from Python.

- PostgreSQL 15 of its own (initdb in a temporary directory, loopback, free port; as the
  `postgres` user when run as root) and moto_server (the S3 API, bucket `lake`) on a free port.
- Replicas: the binary with `--bind 127.0.0.1:<port> --demo false --data-dir <own dir>
  --extension-repository /var/tmp/duckstream-tools/extensions --extension-directory <own dir>
  --config <lake.toml> --shutdown-timeout-secs 20`, RUST_LOG=info, NO_COLOR=1; lake.toml is
  `Cluster::toml` of tests/api/lake.rs (catalog in PG, data under s3://lake/<root>/, path-style
  S3, key test/test, lake_role_secret); every other setting its default, as in the tests.
  A replica keeps its port across restarts (a balancer finds it at the same address).
- HAProxy 2.6 with deploy/haproxy.cfg unchanged, its addresses from the environment.

Every process started here is registered and stopped at exit (SIGTERM, then SIGKILL), and on
SIGINT/SIGTERM of the script: exactly those PIDs, nothing else.

Python: /var/tmp/duckstream-tools/venv (psycopg, aiohttp, websockets: all there already).
"""
import atexit
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

# The servers these benchmarks start serve HTTP only: several at once would all ask for the
# PostgreSQL endpoint's default port (5433). Set DUCKSTREAM_PG_BIND to measure it.
os.environ.setdefault("DUCKSTREAM_PG_BIND", "off")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOLS = os.environ.get("DUCKSTREAM_TOOLS", "/var/tmp/duckstream-tools")
DEFAULT_BIN = os.environ.get("DUCKSTREAM_BIN", "/var/tmp/bench-bin/duckstream")
PG_BIN = "/usr/lib/postgresql/15/bin"
HAPROXY_CFG = os.path.join(ROOT, "deploy", "haproxy.cfg")

_procs = []  # every Popen started here, stopped at exit
_cleanups = []


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


def _stop_all():
    """The processes started here first (SIGTERM, SIGKILL after 25 s), then the cleanups
    (PostgreSQL's stop, the work directory) newest first."""
    for p in _procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 25
    for p in _procs:
        if p.poll() is None:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    for fn in reversed(_cleanups):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            print(f"cleanup: {e}", file=sys.stderr)
    _cleanups.clear()


def _on_signal(signum, _frame):
    _stop_all()
    os._exit(128 + signum)


atexit.register(_stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    _procs.append(p)
    return p


def run(args, timeout=120, **kw):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


class Postgres:
    """PostgreSQL 15 of its own in `work`/pg: trust auth for `postgres` on 127.0.0.1, fsync off
    (as the tests' services.rs: lc_messages C, --locale=C)."""

    def __init__(self, work, cpus=None):
        self.dir = os.path.join(work, "pg")
        os.mkdir(self.dir)
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(work, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        self.cpus = cpus
        self.running = False

    def cmd(self, program, *args):
        prog = [os.path.join(PG_BIN, program), *args]
        if self.cpus is not None:
            prog = ["taskset", "-c", self.cpus, *prog]
        return ["runuser", "-u", "postgres", "--", *prog] if self.as_root else prog

    def start(self):
        env = dict(os.environ, LC_ALL="C")
        run(self.cmd("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                     "--locale=C", "-E", "UTF8"), cwd=self.dir, env=env)
        conf = (f"\n# scripts/bench/cluster\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nlc_messages = 'C'\nfsync = off\n"
                "max_connections = 500\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(conf)
        run(self.cmd("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start"),
            cwd=self.dir, env=env, timeout=90)
        self.running = True
        _cleanups.append(self.stop)

    def pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def dsn(self, db):
        return f"dbname={db} host=127.0.0.1 port={self.port} user=postgres"

    def create_database(self, name):
        import psycopg
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')

    def stop(self):
        if self.running:
            subprocess.run(self.cmd("pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"),
                           cwd=self.dir, capture_output=True, timeout=90)
            self.running = False


class Moto:
    """moto_server on 127.0.0.1:port, with the bucket `lake`."""

    def __init__(self, work, cpus=None):
        self.port = free_port()
        self.log = os.path.join(work, "moto.log")
        self.cpus = cpus
        self.proc = None

    def start(self):
        args = [os.path.join(TOOLS, "venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(self.port)]
        if self.cpus is not None:
            args = ["taskset", "-c", self.cpus, *args]
        self.proc = spawn(args, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
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


class Lake:
    """PG + moto + one catalog database and data root: `toml()` is tests' `Cluster::toml`."""

    def __init__(self, work, cpus=None):
        self.work = work
        self.pg = Postgres(work, cpus)
        self.s3 = Moto(work, cpus)
        self.pg.start()
        self.s3.start()
        self.db = "lake_bench"
        self.pg.create_database(self.db)
        self.config = os.path.join(work, "lake.toml")
        with open(self.config, "w") as f:
            f.write(self.toml())

    def toml(self):
        return (
            "[storage]\nkind = \"lake\"\n"
            f"lake_catalog = \"{self.pg.dsn(self.db)}\"\nlake_data = \"s3://lake/{self.db}/\"\n"
            f"s3_endpoint = \"{self.s3.endpoint}\"\ns3_url_style = \"path\"\ns3_use_ssl = false\n"
            "s3_region = \"us-east-1\"\ns3_key_id = \"test\"\ns3_secret = \"test\"\n"
            "lake_role_secret = \"tenant-roles\"\n")


class Replica:
    """One replica process on a fixed loopback port (kept across restarts)."""

    def __init__(self, name, lake, work, binary=DEFAULT_BIN, port=None, cpus=None, extra=()):
        self.name = name
        self.lake = lake
        self.binary = binary
        self.port = port or free_port()
        self.cpus = cpus
        self.extra = list(extra)
        self.data = os.path.join(work, f"data-{name}")
        self.ext = os.path.join(work, f"ext-{name}")
        os.makedirs(self.data, exist_ok=True)
        self.log = os.path.join(work, f"{name}.log")
        self.base = f"http://127.0.0.1:{self.port}"
        self.addr = f"127.0.0.1:{self.port}"
        self.proc = None
        self.starts = 0

    def start(self, timeout=180):
        args = [self.binary, "--bind", self.addr, "--demo", "false", "--data-dir", self.data,
                "--extension-repository", os.path.join(TOOLS, "extensions"),
                "--extension-directory", self.ext, "--config", self.lake.config,
                "--shutdown-timeout-secs", "20", *self.extra]
        if self.cpus is not None:
            args = ["taskset", "-c", self.cpus, *args]
        env = dict(os.environ, RUST_LOG="info", NO_COLOR="1")
        out = open(self.log, "ab")
        out.write(f"==== start {self.starts} at {time.time():.3f}\n".encode())
        out.flush()
        self.proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.starts += 1
        found = threading.Event()
        proc = self.proc

        def drain():
            for line in proc.stdout:
                out.write(line)
                out.flush()
                if b"listening" in line and b"port=" in line:
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(timeout) or proc.poll() is not None:
            raise SystemExit(f"replica {self.name} did not start:\n{tail(self.log)}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def terminate(self):
        self.proc.terminate()

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def cpu_seconds(self):
        """utime + stime of the process (all its threads), from /proc/PID/stat."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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

    def metric_sum(self, prefix, contains=""):
        return sum(v for k, v in self.metrics().items()
                   if (k == prefix or k.startswith(prefix + "{")) and contains in k)

    def ready(self):
        try:
            return urllib.request.urlopen(f"{self.base}/readyz", timeout=2).status == 200
        except OSError:
            return False

    def complaints(self):
        with open(self.log, errors="replace") as f:
            return [l.rstrip() for l in f if re.search(r"\b(WARN|ERROR)\b|panicked", l)]


class Balancer:
    """HAProxy with deploy/haproxy.cfg unchanged; `addrs` the three replicas' host:port."""

    def __init__(self, work, addrs, cpus=None):
        assert len(addrs) == 3
        self.port = free_port()
        self.stats_port = free_port()
        self.log = os.path.join(work, "haproxy.log")
        env = dict(os.environ, DUCKSTREAM_LB_PORT=str(self.port),
                   DUCKSTREAM_LB_STATS_PORT=str(self.stats_port))
        for i, a in enumerate(addrs):
            env[f"DUCKSTREAM_REPLICA{i + 1}"] = a
        args = ["haproxy", "-db", "-f", HAPROXY_CFG]
        if cpus is not None:
            args = ["taskset", "-c", cpus, *args]
        self.proc = spawn(args, env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.ws_base = f"ws://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{self.base}/healthz", timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"haproxy never answered:\n{tail(self.log)}")

    def servers(self):
        """{server name: status} from HAProxy's CSV stats (UP, DOWN, "UP 1/2"...)."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/stats;csv",
                                      timeout=5).read().decode()
        out = {}
        for line in text.splitlines():
            f = line.split(",")
            if len(f) > 17 and f[0] == "replicas" and f[1] not in ("BACKEND", "FRONTEND"):
                out[f[1]] = f[17]
        return out

    def wait_status(self, server, want, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.servers().get(server) == want:
                return time.time()
            time.sleep(0.1)
        raise SystemExit(f"haproxy: {server} never {want}: {self.servers()}")


def http(method, url, body=None, timeout=30):
    """(status, body bytes) with urllib; status 0 and the error text when there is no answer."""
    req = urllib.request.Request(url, data=body.encode() if isinstance(body, str) else body,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return 0, str(e).encode()


def create_tenant(base, name):
    st, body = http("POST", f"{base}/v1/admin/tenants", json.dumps({"name": name}))
    if st != 201:
        raise SystemExit(f"create tenant {name}: {st} {body[:300]!r}")


def query_rows(base, tenant, sql):
    st, body = http("POST", f"{base}/v1/{tenant}/query", json.dumps({"sql": sql}))
    if st != 200:
        raise SystemExit(f"{tenant}: {sql}: {st} {body[:300]!r}")
    return [r for l in body.splitlines() if l.startswith(b'{"type":"data"')
            for r in json.loads(l)["rows"]]


def homes(lb, replicas, tenants, sql="SELECT count(*) FROM d"):
    """{tenant: replica index}: where the balancer sends each tenant, from the growth of each
    replica's duckstream_queries_total over 3 queries of that tenant (as tests/api/cluster.rs)."""
    out = {}
    for t in tenants:
        before = [r.metric_sum("duckstream_queries_total") for r in replicas]
        for i in range(3):
            query_rows(lb.base, t, f"{sql} -- home {i} {time.time()}")
        grew = [r.metric_sum("duckstream_queries_total") - b for r, b in zip(replicas, before)]
        best = max(range(len(replicas)), key=lambda i: grew[i])
        if grew[best] != 3 or sum(grew) != 3:
            raise SystemExit(f"{t}: queries spread over replicas: {grew}")
        out[t] = best
    return out


def workdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    return d


def start_cluster(prefix, binary, n_tenants, tenant_prefix):
    """A lake, three replicas of `binary` and HAProxy in front, with `n_tenants` tenants
    (`<tenant_prefix>0`…) of one row in `d` each; (work, lake, replicas, balancer, tenants,
    home: tenant -> replica index)."""
    work = workdir(prefix)
    print(f"work dir {work}; binary {binary}", flush=True)
    lake = Lake(work)
    reps = [Replica(f"r{i + 1}", lake, work, binary=binary).start() for i in range(3)]
    lb = Balancer(work, [r.addr for r in reps])
    lb.wait_status("replica1", "UP")
    tenants = [f"{tenant_prefix}{i}" for i in range(n_tenants)]
    for t in tenants:
        create_tenant(lb.base, t)
        st, body = http("PUT", f"{lb.base}/v1/{t}/datasets/d?format=csv&mode=append", "k\n1\n")
        assert st == 200, body
    home = homes(lb, reps, tenants)
    print("tenant homes:", {t: reps[h].name for t, h in home.items()}, flush=True)
    return work, lake, reps, lb, tenants, home

