"""Shared helpers for the catalog-latency research: a tenant DuckDB opened the way duckstream's
lake store opens it (pool.rs settings, extensions, setup_sql, allowed_directories, sandbox,
connection_sql), plus counting of PostgreSQL statements (csvlog) and S3 requests (moto log)."""
import csv, glob, os, time
import duckdb

WORK = os.environ.get("WORK", "/tmp/duckstream-catalog-cost")
PGPORT = int(os.environ.get("PGPORT", 56432))
S3PORT = int(os.environ.get("S3PORT", 56433))
REPO = "/var/tmp/duckstream-tools/extensions"
EXTDIR = os.path.join(WORK, "extdir")
SPOOL = os.path.join(WORK, "spool")
DSN = f"dbname=lake host=127.0.0.1 port={PGPORT} user=postgres application_name=tenant"
ADMIN_DSN = f"dbname=postgres host=127.0.0.1 port={PGPORT} user=postgres application_name=bench-admin"
TENANT = "t"
PREFIX = f"s3://lake/{TENANT}/"


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def secret_sql():
    return (f"CREATE OR REPLACE SECRET duckstream_lake (TYPE s3, KEY_ID 'test', SECRET 'test', "
            f"REGION 'us-east-1', ENDPOINT '127.0.0.1:{S3PORT}', URL_STYLE 'path', USE_SSL false, "
            f"SCOPE {lit(PREFIX)});")


def attach_sql(extra_opts=""):
    return (f"SET ducklake_max_retry_count = 100; SET ducklake_default_data_inlining_row_limit = 0; "
            + secret_sql() +
            f" ATTACH {lit('ducklake:postgres:' + DSN)} AS \"{TENANT}\" (METADATA_SCHEMA 'ds_{TENANT}', "
            f"DATA_PATH {lit(PREFIX)}, DATA_INLINING_ROW_LIMIT 0{extra_opts});")


def load_extensions(con, names=("httpfs", "postgres", "ducklake")):
    con.execute(f"SET extension_directory = {lit(EXTDIR)}")
    for n in names:
        con.execute(f"INSTALL {n} FROM {lit(REPO)}")
        con.execute(f"LOAD {n}")


_KEEP = []


def open_tenant(settings: str = "", attach_opts: str = "", sandbox: bool = True):
    """A tenant database as LakeStore::open + pool.rs InitHook make it; `settings` is SQL run
    before the store's setup (i.e. where new setup SQL would go). Returns a pooled-style cursor."""
    os.makedirs(SPOOL, exist_ok=True)
    db = duckdb.connect(":memory:")
    db.execute("SET preserve_insertion_order = true; SET GLOBAL explain_output = 'all'; "
               "SET enable_progress_bar = true; SET enable_progress_bar_print = false;")
    load_extensions(db)
    if settings:
        db.execute(settings)
    db.execute(attach_sql(attach_opts))
    if sandbox:
        db.execute(f"SET allowed_directories = [{lit(SPOOL + '/')}, {lit(PREFIX)}]")
        db.execute("SET autoinstall_known_extensions = false; SET autoload_known_extensions = false; "
                   "SET enable_external_access = false;")
    con = db.cursor()
    con.execute(f"SET streaming_buffer_size = '64KiB'; USE \"{TENANT}\";")
    _KEEP.append(db)  # keep the database alive
    return con


# ---- counting ----------------------------------------------------------------------------
def pg_admin():
    import psycopg
    return psycopg.connect(ADMIN_DSN, autocommit=True)


def pg_logging(on: bool):
    with pg_admin() as c:
        c.execute(f"ALTER SYSTEM SET log_min_duration_statement = {0 if on else -1}")
        c.execute("SELECT pg_reload_conf()")
    time.sleep(0.3)


def pg_log_path():
    return os.path.join(WORK, "pg", "log", "pg.csv")


class PgLog:
    """Statements the tenant's connections ran (application_name 'tenant'), from the csvlog."""
    def __init__(self):
        self.path = pg_log_path()
        self.pos = os.path.getsize(self.path) if os.path.exists(self.path) else 0

    def read(self):
        time.sleep(0.15)  # logging collector flush
        with open(self.path, newline="") as f:
            f.seek(self.pos)
            data = f.read()
            self.pos = f.tell()
        rows = list(csv.reader(data.splitlines(True)))
        out = []
        for r in rows:
            if len(r) < 23 or r[22] != "tenant":
                continue
            msg = r[13]
            if msg.startswith("duration:"):
                dur = float(msg.split()[1])
                stmt = msg.split("  ", 1)[1] if "  " in msg else msg
                out.append((dur, stmt))
        return out


class MotoLog:
    def __init__(self):
        self.path = os.path.join(WORK, "moto.log")
        self.pos = os.path.getsize(self.path)

    def read(self):
        time.sleep(0.1)
        with open(self.path) as f:
            f.seek(self.pos)
            data = f.read()
            self.pos = f.tell()
        return [l for l in data.splitlines() if '"' in l and "HTTP/1.1" in l]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
