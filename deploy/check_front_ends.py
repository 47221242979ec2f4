#!/usr/bin/env python3
"""Runs deploy/haproxy.cfg and deploy/nginx.conf, as they are, in front of three stub replicas on
loopback and checks what docs/OPERATIONS.md ("Running a cluster") says of them:

- each tenant's requests (HTTP, WebSocket upgrade, SSE, a 5 MiB upload) reach one replica;
- an SSE stream's first event arrives at once, not with the next one (no buffering, no delay);
- /metrics is not passed on, /healthz is the balancer's own;
- a replica whose /readyz answers 503 loses its tenants to the others, and only its own
  (HAProxy; nginx open source has no active checks: its tenants stay);
- a replica killed (listener and connections gone) has its tenants' requests answered at once
  by the others, uploads included, before any health check, and no other tenant moves.

The stubs are stdlib HTTP servers that answer with their name (and a minimal RFC 6455
handshake for WebSocket upgrades). Needs Debian's haproxy and nginx (scripts/test.sh installs
them); no root. Every process it starts, it stops. Ports: BASE_PORT (default 28080) + 1..3 for
the replicas, + 10 for the balancer, + 14 for HAProxy's stats.

    python3 deploy/check_front_ends.py [haproxy|nginx ...]   # default: both; exit 1 on a failed check
"""
import base64
import hashlib
import http.server
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BASE = int(os.environ.get("BASE_PORT", "28080"))
LB = BASE + 10
READY = {}


class Stub(http.server.BaseHTTPRequestHandler):
    name = "?"
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        n = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                n += len(self.rfile.read(size))
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length", 0))
            while left:
                got = len(self.rfile.read(min(left, 65536)))
                n += got
                left -= got
        self.reply(200, f"{self.name} {n}")

    do_PUT = do_POST

    def do_GET(self):
        if self.path == "/readyz":
            ok = READY[self.name]
            return self.reply(200 if ok else 503, "ready" if ok else "draining")
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers["Sec-WebSocket-Key"] + GUID
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
            self.end_headers()
            p = self.name.encode()
            self.wfile.write(bytes([0x81, len(p)]) + p)   # one text frame: the replica's name
            self.wfile.flush()
            time.sleep(0.05)
            self.close_connection = True
            return
        if "/sse" in self.path:   # two events 1.5 s apart, chunked
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i, delay in ((1, 0), (2, 1.5)):
                time.sleep(delay)
                ev = f"data: {self.name} {i}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        self.reply(200, self.name)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, *a):
        pass   # health checks and kills reset connections

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # as the gateway does
        self.conns = getattr(self, "conns", [])
        self.conns.append(conn)
        return conn, addr

    def kill(self):
        """What a killed process leaves: no listener, every connection reset."""
        self.shutdown()
        self.server_close()
        for c in getattr(self, "conns", []):
            try:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass


def start_stub(i):
    name = f"r{i}"
    READY[name] = True
    s = Server(("127.0.0.1", BASE + i), type(f"Stub{i}", (Stub,), {"name": name}))
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def get(path, data=None, port=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port or LB}{path}", data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:
        return 0, f"ERR {type(e).__name__}"


def ws(tenant):
    key = base64.b64encode(os.urandom(16)).decode()
    try:
        s = socket.create_connection(("127.0.0.1", LB), timeout=5)
        s.sendall((f"GET /v1/{tenant}/ws?compression=none HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, rest = data.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            return "ERR " + head.split(b"\r\n")[0].decode()
        while len(rest) < 2 or len(rest) < 2 + rest[1]:
            rest += s.recv(4096)
        s.close()
        return rest[2:2 + rest[1]].decode()
    except Exception as e:
        return f"ERR {type(e).__name__}"


def sse_first_event_s(tenant):
    s = socket.create_connection(("127.0.0.1", LB), timeout=5)
    t = time.monotonic()
    s.sendall(f"GET /v1/{tenant}/sse?sql=x HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode())
    data = b""
    while b"data: " not in data:
        data += s.recv(4096)
    first = time.monotonic() - t
    while b" 2\n" not in data:
        data += s.recv(4096)
    s.close()
    return first


def start_balancer(kind, tmp):
    log = open(os.path.join(tmp, f"{kind}.log"), "w")
    if kind == "haproxy":
        env = dict(os.environ, DUCKSTREAM_LB_ADDR="127.0.0.1", DUCKSTREAM_LB_PORT=str(LB),
                   DUCKSTREAM_LB_STATS_PORT=str(BASE + 14),
                   **{f"DUCKSTREAM_REPLICA{i}": f"127.0.0.1:{BASE + i}" for i in (1, 2, 3)})
        env.pop("DUCKSTREAM_LB_RESOLVER", None)
        return subprocess.Popen(["haproxy", "-f", os.path.join(ROOT, "deploy/haproxy.cfg")], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    # nginx: the addresses are text (the file's defaults replaced).
    cfg = open(os.path.join(ROOT, "deploy/nginx.conf")).read().replace("127.0.0.1:8080", f"127.0.0.1:{LB}")
    for i in (1, 2, 3):
        cfg = cfg.replace(f"127.0.0.1:808{i}", f"127.0.0.1:{BASE + i}")
    conf = os.path.join(tmp, "nginx.conf")
    open(conf, "w").write(cfg)
    return subprocess.Popen(["nginx", "-p", tmp, "-e", "stderr", "-g", f"pid {tmp}/nginx.pid; daemon off;", "-c", conf],
                            stdout=log, stderr=subprocess.STDOUT)


def check(kind):
    tmp = tempfile.mkdtemp(prefix=f"check-{kind}-")
    stubs = {i: start_stub(i) for i in (1, 2, 3)}
    lb = start_balancer(kind, tmp)
    failed = []

    def expect(what, ok, got):
        print(f"{kind:8} {'ok  ' if ok else 'FAIL'} {what}: {got}")
        if not ok:
            failed.append(what)

    try:
        for _ in range(50):
            if get("/healthz")[0] == 200:
                break
            time.sleep(0.1)
        time.sleep(1.5)   # HAProxy's first checks
        tenants = [f"tenant{k:03d}" for k in range(90)]
        home = {t: get(f"/v1/{t}/query?sql=x")[1] for t in tenants}
        spread = Counter(home.values())
        expect("tenants spread over the 3 replicas", set(spread) == {"r1", "r2", "r3"}, dict(spread))
        again = sum(get(f"/v1/{t}/datasets")[1] == home[t] for t in tenants)
        expect("every tenant's next request, same replica", again == len(tenants), f"{again}/{len(tenants)}")
        same_ws = sum(ws(t) == home[t] for t in tenants)
        expect("WebSocket upgrade, same replica as HTTP", same_ws == len(tenants), f"{same_ws}/{len(tenants)}")
        up = get(f"/v1/{tenants[0]}/datasets/big", data=b"x" * (5 << 20))
        expect("5 MiB upload passed on", up == (200, f"{home[tenants[0]]} {5 << 20}"), up)
        first = sse_first_event_s(tenants[0])
        expect("SSE: first event at once (the next comes 1.5 s later)", first < 0.1, f"{first:.3f} s")
        expect("/metrics not passed on", get("/metrics")[0] == 404, get("/metrics")[0])
        expect("/healthz answered by the balancer", get("/healthz") == (200, '{"status":"ok"}'), get("/healthz"))

        READY["r2"] = False   # a replica draining: 503 on /readyz
        time.sleep(3)
        now = {t: get(f"/v1/{t}/query?sql=x")[1] for t in tenants}
        mine = [t for t in tenants if home[t] == "r2"]
        moved = sum(now[t] in ("r1", "r3") for t in mine)
        others = sum(now[t] != home[t] for t in tenants if home[t] != "r2")
        if kind == "haproxy":
            expect("/readyz 503: its tenants served by the others", moved == len(mine), f"{moved}/{len(mine)}")
        else:
            expect("/readyz 503: unseen by nginx open source, its tenants stay", moved == 0, f"{moved}/{len(mine)}")
        expect("/readyz 503: no other tenant moved", others == 0, others)
        READY["r2"] = True
        time.sleep(3)
        back = sum(get(f"/v1/{t}/query?sql=x")[1] == home[t] for t in tenants)
        expect("ready again: every tenant home", back == len(tenants), f"{back}/{len(tenants)}")

        stubs[3].kill()   # no wait: before any health check notices
        mine = [t for t in tenants if home[t] == "r3"]
        answered = sum(s == 200 and b in ("r1", "r2") for s, b in (get(f"/v1/{t}/query?sql=x") for t in mine))
        expect("replica killed: its tenants answered at once by others", answered == len(mine), f"{answered}/{len(mine)}")
        upgraded = sum(ws(t) in ("r1", "r2") for t in mine)
        expect("replica killed: WebSocket upgrades answered", upgraded == len(mine), f"{upgraded}/{len(mine)}")
        posts = sum(get(f"/v1/{t}/datasets/x", data=b"abc")[0] == 200 for t in mine)
        expect("replica killed: uploads answered (the connection was refused: never sent)", posts == len(mine),
               f"{posts}/{len(mine)}")
        time.sleep(2.5)
        later = {t: get(f"/v1/{t}/query?sql=x")[1] for t in tenants}
        others = sum(later[t] != home[t] for t in tenants if home[t] != "r3")
        expect("replica killed: no other tenant moved", others == 0, others)
    finally:
        lb.send_signal(signal.SIGUSR1 if kind == "haproxy" else signal.SIGQUIT)   # graceful stops
        try:
            lb.wait(timeout=5)
        except subprocess.TimeoutExpired:
            lb.kill()
            lb.wait()
        for s in stubs.values():
            try:
                s.kill()
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    return failed


def main():
    kinds = sys.argv[1:] or ["haproxy", "nginx"]
    failed = []
    for kind in kinds:
        failed += [f"{kind}: {f}" for f in check(kind)]
        time.sleep(0.5)
    if failed:
        print("failed:", *failed, sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
