"""Shared by the bench_*.py scripts beside it: start the gateway on a scratch data dir that links the
benchmark database as tenant `bench`, time a query through curl, and read its memory from
/proc."""
import contextlib
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

# The servers these benchmarks start serve HTTP only: several at once would all ask for the
# PostgreSQL endpoint's default port (5433). Set DUCKSTREAM_PG_BIND to measure it.
os.environ.setdefault("DUCKSTREAM_PG_BIND", "off")

# The repository (this file is scripts/bench/benchlib.py) and the release binary that
# `cargo build --release` leaves in it, or under $CARGO_TARGET_DIR as for bench.sh: the default
# `--bin` of the scripts that take one, whatever directory they are run from.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"),
                           "release", "duckstream")


def status(pid, key):
    """A /proc/PID/status field (VmRSS, VmHWM, ...) in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed_query(port, sql, zstd=False, out="/dev/null"):
    """Seconds curl takes to POST `sql` to tenant `bench` and read the whole answer into `out`
    (the body as sent: compressed with `zstd`); any status but 200 stops the benchmark."""
    args = ["curl", "-sS", "-o", out, "-w", "%{http_code}", f"http://127.0.0.1:{port}/v1/bench/query",
            "-H", "content-type: application/json", "--data-binary", json.dumps({"sql": sql})]
    if zstd:
        args[1:1] = ["-H", "Accept-Encoding: zstd"]
    t = time.perf_counter()
    done = subprocess.run(args, check=True, capture_output=True, text=True)
    if done.stdout != "200":
        raise SystemExit(f"HTTP {done.stdout} for {sql}")
    return time.perf_counter() - t


def reset_peak(pid):
    """Resets VmHWM to the current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def gateway_pid(port):
    """The process whose command line binds `port` and is not a shell script's interpreter."""
    needle = f"127.0.0.1:{port}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if needle in args and not os.path.basename(args[0]).startswith((b"sh", b"bash", b"heaptrack")):
            return int(entry)
    raise RuntimeError(f"no gateway process on port {port}")


@contextlib.contextmanager
def gateway(binary, db=None, extra=(), data=None, wrapper=()):
    """Runs the gateway on a free loopback port until the block ends; yields (port, pid).
    `db` is linked as tenant `bench` into a scratch data dir (or `data` is the data dir);
    `extra` are more gateway flags; `wrapper` a command that runs it (heaptrack), in which
    case `pid` is the gateway's own process, found by its command line."""
    if data is None:
        data = tempfile.mkdtemp()
    if db is not None:
        os.symlink(os.path.abspath(db), os.path.join(data, "bench.duckdb"))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    # BENCH_LOG=FILE keeps the gateway's log.
    log = open(os.environ["BENCH_LOG"], "w") if os.environ.get("BENCH_LOG") else subprocess.DEVNULL
    proc = subprocess.Popen([*wrapper, binary, "--bind", f"127.0.0.1:{port}", "--data-dir", data, "--demo", "false",
                             *extra], stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        pid = gateway_pid(port) if wrapper else proc.pid
        yield port, pid
    finally:
        if wrapper:
            # The wrapper waits for the gateway, then writes its report.
            os.kill(pid, 15)
        else:
            proc.terminate()
        proc.wait(timeout=120)
