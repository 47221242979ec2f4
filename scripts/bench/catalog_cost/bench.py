"""Latency (p50/p99 wall, p50 CPU of this process) and per-query PostgreSQL statement and S3
request counts of tiny queries on the lake tenant, for settings and query-shape variants.
Variants run interleaved (one query of each per round) so that machine load hits all alike.
Usage: python bench.py [runs=300] [variant-name-substring ...]"""
import json, sys, time
import duckdb
import lakebench as lb

RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 300
ONLY = sys.argv[2:]
SNAP = "SELECT id::VARCHAR FROM ducklake_current_snapshot('t')"
BEGIN, END = "BEGIN TRANSACTION READ ONLY", "ROLLBACK"

SETTINGS = {
    "default": "",
    "http_metadata_cache": "SET enable_http_metadata_cache = true;",
    "parquet_metadata_cache": "SET parquet_metadata_cache = true;",
    "httpfs_connection_caching": "SET httpfs_connection_caching = true;",
    "ext_file_cache_off": "SET enable_external_file_cache = false;",
    "ext_file_cache_no_validation": "SET validate_external_file_cache = 'NO_VALIDATION';",
    "http_keep_alive_off": "SET http_keep_alive = false;",
    "pg_health_check_off": "SET pg_pool_health_check_query = '';",
    "pg_thread_local_cache": "SET pg_pool_enable_thread_local_cache = true;",
    "pg_pool_off": "SET pg_pool_max_connections = 0;",
    "threads_1": "SET threads = 1;",
    "ext_file_cache_off+parquet_md+http_md": "SET enable_external_file_cache = false; "
        "SET parquet_metadata_cache = true; SET enable_http_metadata_cache = true;",
    "recommended": "SET pg_pool_health_check_query = ''; SET enable_http_metadata_cache = true; "
                   "SET parquet_metadata_cache = true; SET validate_external_file_cache = 'NO_VALIDATION';",
}
QUERIES = {  # label -> (table, sql with {t})
    "count small": "SELECT count(*) FROM {t}",
    "sum small": "SELECT sum(id) FROM {t}",
}
TABLES = {"small": "small", "big": "big"}


def variants():
    out = []  # (name, settings, shape, table, query-template)
    for table in TABLES:
        for qname in ("count", "sum"):
            q = QUERIES["count small" if qname == "count" else "sum small"]
            for s in SETTINGS:
                out.append((f"{s} | gateway", s, "gateway", table, q))
            for s in ("default", "recommended"):
                for shape in ("first_seen_sql", "no_snapshot_call", "at_version", "prepared", "snapshot_only"):
                    out.append((f"{s} | {shape}", s, shape, table, q))
            out.append(("local .duckdb file", None, "local", table, q))
            out.append(("read_parquet(s3) no catalog", None, "parquet", table, q))
    return out


class Runner:
    def __init__(self, name, settings, shape, table, qt, version, files):
        self.name, self.shape = name, shape
        if shape == "local":
            db = duckdb.connect(f"{lb.WORK}/local.duckdb", read_only=True)
            self.con = db.cursor(); lb._KEEP.append(db)
            q = qt.format(t=table)
        elif shape == "parquet":
            self.con = lb.open_tenant(SETTINGS["default"])
            q = qt.format(t=f"read_parquet('{files[table]}')")
        else:
            self.con = lb.open_tenant(SETTINGS[settings])
            q = qt.format(t=table)
        if shape == "at_version":
            q = q.replace(f"FROM {table}", f"FROM {table} AT (VERSION => {version})")
        self.steps = {"gateway": [BEGIN, SNAP, q, END], "no_snapshot_call": [BEGIN, q, END],
                      "at_version": [BEGIN, q, END], "snapshot_only": [BEGIN, SNAP, END],
                      "prepared": [BEGIN, SNAP, "EXECUTE p", END],
                      # what run.rs adds for a text not yet vetted/stamped at this version:
                      # checks (json_serialize_sql), stamp (EXPLAIN (FORMAT json)), then the query
                      "first_seen_sql": [BEGIN, SNAP, f"SELECT json_serialize_sql({lb.lit(q)})",
                                         f"EXPLAIN (FORMAT json) {q}", q, END],
                      "local": [BEGIN, q, END], "parquet": [BEGIN, q, END]}[shape]
        if shape == "prepared":
            self.con.execute(f"PREPARE p AS {q}")
        self.wall, self.cpu = [], []

    def once(self):
        for s in self.steps:
            self.con.execute(s).fetchall()

    def timed(self):
        t, c = time.perf_counter(), time.process_time()
        self.once()
        self.wall.append((time.perf_counter() - t) * 1000)
        self.cpu.append((time.process_time() - c) * 1000)


def main():
    probe = lb.open_tenant("")
    version = int(probe.execute(SNAP).fetchone()[0])
    files = {t: probe.execute(f"SELECT data_file FROM ducklake_list_files('t', '{t}')").fetchone()[0] for t in TABLES}
    vs = [v for v in variants() if not ONLY or any(o in f"{v[0]} [{v[3]} {v[4]}]" for o in ONLY)]
    results = {}
    # counts: per variant, a fresh database; the first query (cold) and 10 warm ones, with
    # PostgreSQL statement logging on
    lb.pg_logging(True)
    runners = []
    for v in vs:
        pg, moto = lb.PgLog(), lb.MotoLog()
        r = Runner(*v, version, files)
        pg.read(); moto.read()
        r.once()
        cold_pg, cold_s3 = len(pg.read()), len(moto.read())
        for _ in range(3):
            r.once()
        pg.read(); moto.read()
        for _ in range(10):
            r.once()
        p, m = pg.read(), moto.read()
        key = f"{v[0]} [{v[3]}: {v[4].format(t='T')}]"
        results[key] = {"cold_pg": cold_pg, "cold_s3": cold_s3, "pg": len(p) / 10, "s3": len(m) / 10,
                        "pg_server_ms": round(sum(d for d, _ in p) / 10, 3)}
        runners.append((key, r))
        print(key, results[key], flush=True)
    lb.pg_logging(False)
    for _ in range(20):
        for _, r in runners:
            r.once()
    import random
    order = [r for _, r in runners]
    for i in range(RUNS):
        random.shuffle(order)  # no runner always follows the same neighbour (moto, PG catching up)
        for r in order:
            r.timed()
    for key, r in runners:
        results[key].update(p50=round(lb.pct(r.wall, 50), 2), p99=round(lb.pct(r.wall, 99), 2),
                            cpu_p50=round(lb.pct(r.cpu, 50), 2))
    json.dump(results, open(f"/tmp/duckstream-catalog-cost-{int(time.time())}.json", "w"), indent=1)
    print(f"{'variant':75s} {'p50':>6s} {'p99':>6s} {'cpu50':>6s} {'pg':>5s} {'s3':>4s} {'cold pg/s3':>10s}")
    for k, v in results.items():
        print(f"{k:75s} {v['p50']:6.2f} {v['p99']:6.2f} {v['cpu_p50']:6.2f} {v['pg']:5.1f} {v['s3']:4.1f} {v['cold_pg']:>5d}/{v['cold_s3']}")


main()
