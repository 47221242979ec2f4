#!/usr/bin/env python3
"""What authentication costs per query: the same small query with an API key and with a token
limited to tables (parse tree + plan checked before it runs), interleaved, sequential requests.

    python3 scripts/bench/bench_auth.py [--bin target/release/duckstream] [-n 300]
"""
import argparse
import hashlib
import json
import os
import tempfile
import time
import urllib.request

import duckdb  # pip install duckdb==1.5.5 (only to create the tenant file)

from benchlib import DEFAULT_BIN, gateway


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=DEFAULT_BIN)
    p.add_argument("-n", type=int, default=300)
    o = p.parse_args()
    d = tempfile.mkdtemp()
    con = duckdb.connect(os.path.join(d, "acme.duckdb"))
    con.execute("CREATE TABLE trips AS SELECT range AS id, range * 2 AS v FROM range(1000)")
    con.close()
    key = "dsk_bench_key"
    with open(os.path.join(d, "tenants.toml"), "w") as f:
        f.write('[tenants.acme]\nkeys = ["sha256:%s"]\n' % hashlib.sha256(key.encode()).hexdigest())
    tenants = ["--tenants-file", os.path.join(d, "tenants.toml")]
    with gateway(o.bin, extra=tenants, data=d) as (port, _):
        def post(path, body, cred):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer " + cred})
            return urllib.request.urlopen(req).read()

        token = json.loads(post("/v1/acme/tokens", {"tables": ["trips"]}, key))["token"]
        sql = {"sql": "SELECT sum(v) FROM trips WHERE id < 500"}
        results = {"API key": [], "token limited to tables": []}
        for _ in range(2):
            for name, cred in [("API key", key), ("token limited to tables", token)]:
                post("/v1/acme/query", sql, cred)
                t = time.perf_counter()
                for _ in range(o.n):
                    post("/v1/acme/query", sql, cred)
                results[name].append((time.perf_counter() - t) / o.n * 1000)
        print("| credential | ms per query (two rounds) |")
        print("|---|---|")
        for name, ms in results.items():
            print(f"| {name} | {' / '.join(f'{m:.2f}' for m in ms)} |")


if __name__ == "__main__":
    main()
