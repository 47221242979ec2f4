//! The PostgreSQL endpoint with real clients: psql (Debian's postgresql-client), psycopg 3,
//! node-postgres. Values are asserted as each client reads them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{
    create_tenant, issue, spawn_app, spawn_app_with, spawn_secure_app, spawn_secure_app_with,
    upload_csv, TestApp, ACME_KEY, GLOBEX_KEY,
};
use crate::services::{run, tools};

/// Runs a client to completion off the test's thread: the server's actix arbiter (which
/// hands queries to the executors) runs on that thread, so it must not block.
async fn client(mut cmd: Command, timeout: Duration) -> std::process::Output {
    tokio::task::spawn_blocking(move || run(&mut cmd, timeout).expect("the client runs"))
        .await
        .unwrap()
}

/// `psql` on the app's endpoint, database `db`, with `password` (empty: none) and extra
/// environment; its stdout and stderr.
async fn psql_env(
    app: &TestApp,
    db: &str,
    password: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> (String, String) {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-A", "-t", "-q", "-v", "VERBOSITY=verbose"])
        .arg(format!(
            "host=127.0.0.1 port={} dbname={db} user=tester sslmode=disable",
            app.pg_port
        ))
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = client(cmd, Duration::from_secs(60)).await;
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn psql(app: &TestApp, db: &str, password: &str, sql: &str) -> (String, String) {
    psql_env(app, db, password, &[], &["-c", sql]).await
}

#[actix_web::test]
async fn psql_reads_postgresql_values_and_sqlstates() {
    let app = spawn_app().await;
    let (out, err) = psql(
        &app,
        "t",
        "",
        "SELECT id, name, feeling FROM people ORDER BY id",
    )
    .await;
    assert_eq!(out, "1|Ada|happy\n2|Grace|ok\n3||\n", "{err}");
    let sql = "SELECT 1.5::DOUBLE, 1e20::DOUBLE, 0.1::FLOAT, true, DATE '2024-01-02', \
               TIMESTAMP '2024-01-02 03:04:05.5', TIMESTAMPTZ '2024-01-02 03:04:05+00', \
               INTERVAL '1 day 2 hours', [1, 2, NULL], ['a b', 'c'], {'a': 1}, \
               12345.678::DECIMAL(10,3), 'ab'::BLOB, 170141183460469231731687303715884105727::HUGEINT, \
               UUID '00000000-0000-0000-0000-000000000001'";
    let (out, err) = psql(&app, "t", "", sql).await;
    assert_eq!(
        out.trim_end(),
        "1.5|1e+20|0.1|t|2024-01-02|2024-01-02 03:04:05.5|2024-01-02 03:04:05+00|1 day 02:00:00|\
         {1,2,NULL}|{\"a b\",c}|{\"a\":1}|12345.678|\\x6162|170141183460469231731687303715884105727|\
         00000000-0000-0000-0000-000000000001",
        "{err}"
    );
    // Errors carry PostgreSQL's SQLSTATEs (psql's verbose errors show them).
    for (sql, state) in [
        ("SELECT * FROM nowhere", "42P01"),
        ("SELEC 1", "42601"),
        ("CREATE TABLE x (i INTEGER)", "42501"),
        ("SELECT 1/0::INTEGER + 'x'::INTEGER", "22P02"),
    ] {
        let (out, err) = psql(&app, "t", "", sql).await;
        assert!(
            err.contains(&format!("ERROR:  {state}")),
            "{sql}: {out} {err}"
        );
    }
    // An unknown database is PostgreSQL's 3D000, before any query.
    let (_, err) = psql(&app, "nope", "", "SELECT 1").await;
    assert!(err.contains("database \"nope\" does not exist"), "{err}");
}

#[actix_web::test]
async fn session_commands_are_answered_and_never_reach_duckdb() {
    let app = spawn_app().await;
    // Grafana's multi-statement strings: SET answered here, the SELECT run.
    let (out, err) = psql(&app, "t", "", "SET TIMEZONE TO 'UTC'; SELECT 42").await;
    assert_eq!(out, "42\n", "{err}");
    let (out, err) = psql(
        &app,
        "t",
        "",
        "BEGIN; SET statement_timeout = 5000; SHOW statement_timeout; SHOW DateStyle; COMMIT",
    )
    .await;
    assert_eq!(out, "5s\nISO, MDY\n", "{err}");
    let (out, _) = psql(&app, "t", "", "SELECT version()").await;
    assert!(out.starts_with("PostgreSQL 15.0 (duckstream"), "{out}");
    // Settings are the session's own: DuckDB's do not exist here.
    for sql in [
        "SET enable_external_access = true",
        "SET allowed_directories = '/'",
        "RESET memory_limit",
    ] {
        let (_, err) = psql(&app, "t", "", sql).await;
        assert!(err.contains("ERROR:  42704"), "{sql}: {err}");
    }
    let (out, err) = psql(&app, "t", "", "SELECT * FROM read_csv('/etc/passwd')").await;
    assert!(
        out.is_empty() && err.contains("ERROR:  42501"),
        "DuckDB's sandbox holds: {err}"
    );
    // COPY … TO STDOUT (psql's \\copy … to stdout too) writes the rows; no other COPY runs.
    let (out, err) = psql(
        &app,
        "t",
        "",
        "COPY (SELECT id, name FROM people ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)",
    )
    .await;
    assert_eq!(out, "id,name\n1,Ada\n2,Grace\n3,\n", "{err}");
    let (out, err) = psql_env(
        &app,
        "t",
        "",
        &[],
        &[
            "-c",
            "\\copy (SELECT name, feeling FROM people WHERE id < 3 ORDER BY id) to stdout",
        ],
    )
    .await;
    assert_eq!(out, "Ada\thappy\nGrace\tok\n", "{err}");
    // Statements refused before DuckDB.
    for (sql, state) in [
        ("COPY people TO '/tmp/x.csv'", "42501"),
        ("COPY (SELECT 1) TO PROGRAM 'id'", "42501"),
        ("COPY people FROM STDIN", "0A000"),
        ("LISTEN x", "0A000"),
        ("PREPARE p AS SELECT 1", "0A000"),
    ] {
        let (_, err) = psql(&app, "t", "", sql).await;
        assert!(err.contains(&format!("ERROR:  {state}")), "{sql}: {err}");
    }
    // The first failing statement ends the string.
    let (out, err) = psql(&app, "t", "", "SELECT 1; SELECT * FROM nowhere; SELECT 3").await;
    assert_eq!(out, "1\n", "{err}");
    // Startup options may set the session's settings, nothing else.
    let (out, err) = psql_env(
        &app,
        "t",
        "",
        &[("PGOPTIONS", "-c statement_timeout=2s")],
        &["-c", "SHOW statement_timeout"],
    )
    .await;
    assert_eq!(out, "2s\n", "{err}");
    let (_, err) = psql_env(
        &app,
        "t",
        "",
        &[("PGOPTIONS", "-c enable_external_access=true")],
        &["-c", "SELECT 1"],
    )
    .await;
    // (A login's error shows no SQLSTATE in psql: verbosity applies once connected.)
    assert!(
        err.contains("FATAL:  unrecognized configuration parameter \"enable_external_access\""),
        "{err}"
    );
}

#[actix_web::test]
async fn a_statement_timeout_cancels_as_postgresql_does() {
    let app = spawn_app().await;
    let started = Instant::now();
    let (_, err) = psql(
        &app,
        "t",
        "",
        "SET statement_timeout = 300; SELECT count(*) FROM range(1000000000000)",
    )
    .await;
    assert!(
        err.contains("57014") && err.contains("canceling statement due to statement timeout"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[actix_web::test]
async fn ctrl_c_in_psql_cancels_the_query_in_duckdb() {
    let app = spawn_app().await;
    let mut child = Command::new("psql")
        .args(["-X", "-v", "VERBOSITY=verbose"])
        .arg(format!(
            "host=127.0.0.1 port={} dbname=t user=tester sslmode=disable",
            app.pg_port
        ))
        .args(["-c", "SELECT count(*) FROM range(1000000000000)"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql starts");
    // Once the query runs, psql's Ctrl-C sends a CancelRequest.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .metric(r#"duckstream_active_queries{transport="pg"}"#)
        .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "the query never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("psql did not end after Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("57014") && err.contains("canceling statement due to user request"),
        "{err}"
    );
    // The executor counts the outcome as it ends, just after the client has its error.
    let cancelled = r#"duckstream_queries_total{outcome="cancelled",transport="pg"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric(cancelled).await < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the query was not counted as cancelled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn logins_check_keys_and_tokens_as_http_does() {
    let app = spawn_secure_app("").await;
    let (out, err) = psql(&app, "acme", ACME_KEY, "SELECT count(*) FROM trips").await;
    assert_eq!(out, "7\n", "{err}");
    for (db, password) in [
        ("acme", "wrong-key"),
        ("acme", GLOBEX_KEY),
        ("acme", ""),
        ("nope", ACME_KEY),
    ] {
        let (out, err) = psql(&app, db, password, "SELECT 1").await;
        assert!(out.is_empty(), "{db}/{password}: {out}");
        assert!(
            err.contains("28P01")
                || err.contains("password authentication failed")
                || err.contains("no password supplied"),
            "{db}/{password}: {err}"
        );
    }
    // A token's table scope holds here too.
    let token = issue(&app, "acme", json!({"tables": ["trips"]})).await;
    let (out, err) = psql(&app, "acme", &token, "SELECT count(*) FROM trips").await;
    assert_eq!(out, "7\n", "{err}");
    let (out, err) = psql(&app, "acme", &token, "SELECT * FROM secret").await;
    assert!(
        out.is_empty() && err.contains("ERROR:  42501"),
        "{out} {err}"
    );
}

#[actix_web::test]
async fn psycopg_reads_text_binary_parameters_cursors_and_cancels() {
    let app = spawn_app().await;
    let python = Command::new(tools().join("venv/bin/python"));
    client_script(&app, python, "psycopg_client.py", Duration::from_secs(120)).await;
}

#[actix_web::test]
async fn asyncpg_describes_binds_binary_reads_cursors_and_cancels() {
    let app = spawn_app().await;
    let python = Command::new(tools().join("venv/bin/python"));
    client_script(&app, python, "asyncpg_client.py", Duration::from_secs(120)).await;
}

#[actix_web::test]
async fn node_postgres_reads_with_and_without_parameters() {
    let app = spawn_app().await;
    client_script(
        &app,
        Command::new("node"),
        "node_client.js",
        Duration::from_secs(60),
    )
    .await;
}

/// Runs `tests/pg/<script>` with `program` on the app's endpoint (tenant `t`); it prints `ok`
/// once every one of its checks held.
async fn client_script(app: &TestApp, program: Command, script: &str, timeout: Duration) {
    client_script_with(app, program, script, &["t"], timeout).await
}

/// [`client_script`] with the script's arguments after the port.
async fn client_script_with(
    app: &TestApp,
    mut program: Command,
    script: &str,
    args: &[&str],
    timeout: Duration,
) {
    program
        .arg(format!("{}/tests/pg/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(app.pg_port.to_string())
        .args(args);
    let out = client(program, timeout).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate and its key for `localhost`, made by openssl in `dir`.
fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

/// This machine's first non-loopback IPv4 address (`hostname -I`).
fn outside_address() -> String {
    let out = Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .expect("a non-loopback IPv4 address to connect from")
        .to_string()
}

#[actix_web::test]
async fn passwords_travel_over_tls_or_from_loopback_only() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let app = crate::helpers::spawn_secure_app_with("", |c| {
        c.pg.bind = duckstream::config::PgBind::At("0.0.0.0:0".parse().unwrap());
        c.pg.tls_cert = Some(cert);
        c.pg.tls_key = Some(key);
    })
    .await;
    let outside = outside_address();
    let login = |host: &str, ssl: &str| {
        let mut cmd = Command::new("psql");
        cmd.args(["-X", "-A", "-t", "-q"])
            .arg(format!(
                "host={host} port={} dbname=acme user=tester sslmode={ssl}",
                app.pg_port
            ))
            .args(["-c", "SELECT count(*) FROM trips", "-c", "\\conninfo"])
            .env("PGPASSWORD", ACME_KEY)
            .env("PGCONNECT_TIMEOUT", "10");
        cmd
    };
    // TLS from anywhere.
    for host in ["127.0.0.1", outside.as_str()] {
        let out = client(login(host, "require"), Duration::from_secs(30)).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("7\n"),
            "{host}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("SSL connection (protocol: TLSv1."),
            "{host}: {stdout}"
        );
    }
    // Plain text from loopback: the password may come.
    let out = client(login("127.0.0.1", "disable"), Duration::from_secs(30)).await;
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("7\n"));
    // Plain text from elsewhere: refused before the password is asked.
    let out = client(login(&outside, "disable"), Duration::from_secs(30)).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("a password is accepted only over TLS"),
        "{err}"
    );
}

/// The client catalog queries' fixtures (`scripts/pg_catalog_check.py`, whose answers
/// `tests/data/pg_catalog.tsv` keeps): the tenant's tables, and a richer one with keys, an
/// index, a view, comments, a second schema and a column of every DuckDB type.
const CATALOG_FIXTURE: &str = "
    CREATE TABLE parcels(id INTEGER, name VARCHAR, ts TIMESTAMP, geom_wkt VARCHAR, area DOUBLE);
    CREATE TABLE roads(id BIGINT, kind VARCHAR);";
const RICH_FIXTURE: &str = "
    CREATE TABLE a(id INTEGER PRIMARY KEY, u VARCHAR UNIQUE, k INTEGER CHECK (k > 0),
        n INTEGER NOT NULL DEFAULT 5);
    CREATE TABLE b(id INTEGER, aid INTEGER REFERENCES a(id));
    CREATE INDEX b_idx ON b(aid);
    CREATE VIEW v AS SELECT id, u FROM a;
    COMMENT ON TABLE a IS 'hello';
    COMMENT ON COLUMN a.id IS 'the id';
    CREATE TYPE mood AS ENUM ('happy', 'sad');
    CREATE TABLE t_types(c_bool BOOLEAN, c_tiny TINYINT, c_small SMALLINT, c_int INTEGER,
        c_big BIGINT, c_huge HUGEINT, c_ubig UBIGINT, c_uhuge UHUGEINT, c_dec DECIMAL(10,2),
        c_float FLOAT, c_double DOUBLE, c_text VARCHAR, c_blob BLOB, c_bit BIT, c_uuid UUID,
        c_json JSON, c_date DATE, c_time TIME, c_timetz TIMETZ, c_ts TIMESTAMP,
        c_ts_ns TIMESTAMP_NS, c_tstz TIMESTAMPTZ, c_interval INTERVAL, c_enum mood,
        c_ints INTEGER[], c_texts VARCHAR[], c_fixed DOUBLE[3], c_nested INTEGER[][],
        c_struct STRUCT(x INTEGER, y VARCHAR), c_structs STRUCT(x INTEGER)[],
        c_map MAP(VARCHAR, INTEGER), c_union UNION(i INTEGER, s VARCHAR), c_geom GEOMETRY);
    CREATE SCHEMA s2;
    CREATE TABLE s2.t2(x INTEGER);";

#[actix_web::test]
async fn client_catalog_queries_answer_as_the_table_says() {
    let app = spawn_app_with(|c| {
        create_tenant(&c.server.data_dir, "cat", CATALOG_FIXTURE);
        create_tenant(&c.server.data_dir, "rich", RICH_FIXTURE);
    })
    .await;
    let python = Command::new(tools().join("venv/bin/python"));
    client_script_with(
        &app,
        python,
        "catalog_client.py",
        &[],
        Duration::from_secs(180),
    )
    .await;
}

#[actix_web::test]
async fn catalog_queries_show_a_scoped_token_only_its_tables() {
    let app = spawn_secure_app_with("", |c| {
        create_tenant(&c.server.data_dir, "acme", CATALOG_FIXTURE);
    })
    .await;
    let token = issue(&app, "acme", json!({"tables": ["parcels"]})).await;
    let python = Command::new(tools().join("venv/bin/python"));
    let hidden = "roads,trips,secret,leak,zones,geo";
    let args = ["acme", token.as_str(), ACME_KEY, hidden];
    client_script_with(
        &app,
        python,
        "catalog_client.py",
        &args,
        Duration::from_secs(180),
    )
    .await;
    // The catalog is the gateway's: a client never names it, scoped or not.
    let (out, err) = psql(&app, "acme", ACME_KEY, "SELECT * FROM ds_pg.pg_class(NULL)").await;
    assert!(out.is_empty() && err.contains("42501"), "{out} {err}");
}

#[actix_web::test]
async fn psql_describes_the_tenant_with_its_backslash_commands() {
    let app = spawn_app_with(|c| create_tenant(&c.server.data_dir, "cat", CATALOG_FIXTURE)).await;
    let (out, err) = psql(&app, "cat", "", "\\dt").await;
    assert_eq!(
        out, "main|parcels|table|duckstream\nmain|roads|table|duckstream\n",
        "{err}"
    );
    let (out, err) = psql(&app, "cat", "", "\\d parcels").await;
    assert_eq!(
        out,
        "id|integer|||\nname|text|||\nts|timestamp without time zone|||\n\
         geom_wkt|text|||\narea|double precision|||\n",
        "{err}"
    );
    let (out, err) = psql(&app, "cat", "", "\\l").await;
    assert!(out.starts_with("cat|duckstream|UTF8|"), "{out} {err}");
    // `\x`: one line per column.
    let (out, err) = psql_env(
        &app,
        "cat",
        "",
        &[],
        &["-c", "\\x on", "-c", "SELECT 1 AS a, 'b' AS b"],
    )
    .await;
    assert_eq!(out, "a|1\nb|b\n", "{err}");
}

#[actix_web::test]
async fn grafanas_data_source_sql_is_answered_on_the_demo_tenant() {
    let app = spawn_app_with(|c| {
        duckstream::demo::ensure_demo(&c.server.data_dir, 20_000).unwrap();
    })
    .await;
    let python = Command::new(tools().join("venv/bin/python"));
    client_script_with(
        &app,
        python,
        "grafana_client.py",
        &["demo"],
        Duration::from_secs(180),
    )
    .await;
}

#[actix_web::test]
async fn sqlalchemy_inspects_the_tenant_as_superset_does() {
    let app = spawn_app_with(|c| create_tenant(&c.server.data_dir, "cat", CATALOG_FIXTURE)).await;
    let python = Command::new(tools().join("venv/bin/python"));
    client_script_with(
        &app,
        python,
        "sqlalchemy_client.py",
        &["cat"],
        Duration::from_secs(120),
    )
    .await;
}

#[actix_web::test]
async fn the_sandbox_holds_over_the_postgresql_endpoint() {
    let app = spawn_app().await;
    let python = Command::new(tools().join("venv/bin/python"));
    client_script(&app, python, "sandbox_client.py", Duration::from_secs(180)).await;
}

#[actix_web::test]
async fn a_repeated_query_comes_from_the_result_cache_until_its_data_changes() {
    let app = spawn_app().await;
    upload_csv(&app, "nums", "n\n1\n2\n").await;
    let sql = "SELECT sum(n) AS s FROM nums";
    let hits = app.metric("duckstream_cache_hits_total").await;
    let sent = "duckstream_rows_sent_total{transport=\"pg\"}";
    let rows = app.metric(sent).await;
    for _ in 0..2 {
        let (out, err) = psql(&app, "t", "", sql).await;
        assert_eq!(out, "3\n", "{err}");
    }
    assert_eq!(app.metric("duckstream_cache_hits_total").await, hits + 1.0);
    // Its row counts as sent both times, from DuckDB and from the cache.
    assert_eq!(app.metric(sent).await, rows + 2.0);
    // psycopg's binary cursor is another format: a result of its own, then its hit.
    let python = Command::new(tools().join("venv/bin/python"));
    client_script_with(
        &app,
        python,
        "cache_client.py",
        &["t"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(app.metric("duckstream_cache_hits_total").await, hits + 2.0);
    // A write makes the stored answers old: the next one runs.
    upload_csv(&app, "nums", "n\n10\n").await;
    let (out, err) = psql(&app, "t", "", sql).await;
    assert_eq!(out, "10\n", "{err}");
    assert_eq!(app.metric("duckstream_cache_hits_total").await, hits + 2.0);
}

#[actix_web::test]
async fn geometry_comes_as_wkt_or_as_postgis_ewkb() {
    let app = spawn_app().await;
    let sql = "SELECT 'POINT (1 2)'::GEOMETRY AS p, 'POINT Z (1 2 3)'::GEOMETRY AS z";
    let (out, err) = psql(&app, "t", "", sql).await;
    assert_eq!(out, "POINT (1 2)|POINT Z (1 2 3)\n", "{err}");
    let (out, err) = psql_env(
        &app,
        "t",
        "",
        &[("PGOPTIONS", "-c duckstream.geometry_output=ewkb")],
        &[
            "-c",
            sql,
            "-c",
            "SELECT oid, typname FROM pg_type WHERE typname = 'geometry'",
        ],
    )
    .await;
    assert_eq!(
        out,
        "0101000000000000000000F03F0000000000000040|\
         0101000080000000000000F03F00000000000000400000000000000840\n16400|geometry\n",
        "{err}"
    );
}
