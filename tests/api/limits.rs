//! Limits per tenant, from the tenants file: each ends with its code, leaves the other tenant
//! alone, and the tenant's next query is served.
//!
//! The result limits, timeout and DuckDB settings also hold on lake tenants
//! (`tests/api/lake.rs`), whose databases attach DuckLake instead of opening a file.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{read_lines, Lines, TestApp};
use crate::helpers::{spawn_secure_app_with, ws_connect, Cred, ACME_KEY, GLOBEX_KEY};

pub const ACME_LIMITS: &str = "query_timeout_secs = 1
max_result_rows = 5
pool_size = 1
max_streams = 2
memory_limit = \"100MB\"
max_temp_size = \"1MB\"
threads = 1";

async fn post(app: &TestApp, tenant: &str, sql: &str) -> reqwest::Response {
    let key = if tenant == "acme" {
        ACME_KEY
    } else {
        GLOBEX_KEY
    };
    app.client
        .post(app.url(&format!("/v1/{tenant}/query")))
        .bearer_auth(key)
        .body(json!({ "sql": sql }).to_string())
        .send()
        .await
        .unwrap()
}

async fn query(app: &TestApp, tenant: &str, sql: &str) -> Lines {
    read_lines(post(app, tenant, sql).await).await
}

/// A tenant's first query opens its database, loads its extensions and reads its function list:
/// on a loaded machine (parallel suites) that alone outlasts these tests' 1 s timeouts. Run one
/// until it answers, so that the timeouts below meet the queries they are about. (A text no
/// test sends: the result cache must not answer a later query from it.)
async fn warm(app: &TestApp, tenant: &str) {
    for _ in 0..30 {
        if query(app, tenant, "SELECT 42 AS warm").await.rows() == vec![json!([42])] {
            return;
        }
    }
    panic!("{tenant} never answered its warm-up query");
}

async fn refused(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let v = crate::helpers::json_of(resp).await;
    (status, v["code"].as_str().unwrap().to_string())
}

#[actix_web::test]
async fn result_limits_timeout_and_duckdb_settings_are_per_tenant() {
    let app = spawn_secure_app_with(ACME_LIMITS, |_| {}).await;
    limits_and_settings_hold_per_tenant(&app).await;
}

/// `app` serves the secured tenants, acme with [`ACME_LIMITS`]: each limit ends a query with
/// its code, globex is not limited, and acme's next query is served.
pub async fn limits_and_settings_hold_per_tenant(app: &TestApp) {
    warm(app, "acme").await;
    // Rows: acme stops after 5 (of a table too), globex (no entry for it) gets all 100.
    let out = query(app, "acme", "SELECT i FROM range(100) t(i) ORDER BY i").await;
    assert_eq!(out.rows().len(), 5);
    assert_eq!(out.last()["code"], "limit_exceeded");
    let out = query(app, "acme", "SELECT id FROM trips ORDER BY id").await;
    assert_eq!(out.rows(), (0..5).map(|i| json!([i])).collect::<Vec<_>>());
    assert_eq!(out.last()["code"], "limit_exceeded");
    let out = query(app, "globex", "SELECT i FROM range(100) t(i)").await;
    assert_eq!(out.rows().len(), 100);
    assert_eq!(out.last()["type"], "end");

    // DuckDB settings of each tenant's database.
    let settings = "SELECT current_setting('threads')::INT, current_setting('memory_limit'), \
                    current_setting('max_temp_directory_size')";
    let acme = query(app, "acme", settings).await.rows();
    assert_eq!(acme, vec![json!([1, "95.3 MiB", "976.5 KiB"])]);
    let globex = query(app, "globex", settings).await.rows();
    assert_ne!(globex[0][1], "95.3 MiB", "{globex:?}");

    // Memory: acme's 100 MB cannot hold this string; DuckDB says so, and the next query runs.
    let big = "SELECT length(string_agg(range::VARCHAR, ',')) FROM range(30000000)";
    let (status, code) = refused(post(app, "acme", big).await).await;
    assert_eq!((status, code.as_str()), (400, "out_of_memory"));
    assert_eq!(
        query(app, "acme", "SELECT 3").await.rows(),
        vec![json!([3])]
    );
    // Disk: a query that must spill more than acme's 1 MB of temp space ends the same way.
    let spill = "SELECT count(*) FROM (SELECT DISTINCT range::VARCHAR || repeat('x', 50) \
                 FROM range(5000000))";
    let (status, code) = refused(post(app, "acme", spill).await).await;
    assert_eq!((status, code.as_str()), (400, "out_of_memory"));
    assert_eq!(
        query(app, "acme", "SELECT 4").await.rows(),
        vec![json!([4])]
    );

    // Timeout: DuckDB is interrupted after 1 s; globex has none and acme serves the next query.
    let slow = "SELECT sum(i) FROM range(100000000000) t(i)";
    assert_eq!(
        refused(post(app, "acme", slow).await).await,
        (504, "timeout".into())
    );
    let out = query(app, "acme", "SELECT count(*) FROM trips").await;
    assert_eq!(out.rows(), vec![json!([7])]);
    assert!(app.metric("duckstream_duckdb_interrupts_total").await >= 1.0);
}

#[actix_web::test]
async fn concurrency_and_connections_are_capped_per_tenant() {
    let limits = "query_timeout_secs = 0\npool_size = 1\nmax_streams = 2";
    let app = spawn_secure_app_with(limits, |c| {
        c.engine.queue_timeout = Duration::from_secs(1);
        c.limits.query_timeout_secs = Some(1);
    })
    .await;
    warm(&app, "acme").await;
    warm(&app, "globex").await;
    // acme runs one query at a time: a stream nobody reads holds its slot. (Its entry turns
    // the global 1 s timeout off: 0 means no limit.)
    let hold = post(&app, "acme", "SELECT i FROM range(1000000000) t(i)").await;
    assert_eq!(hold.status(), 200);
    assert_eq!(
        refused(post(&app, "acme", "SELECT 1").await).await,
        (429, "too_busy".into())
    );
    // globex is not affected.
    assert_eq!(
        query(&app, "globex", "SELECT 2").await.rows(),
        vec![json!([2])]
    );

    // acme may hold two connections: the stream and one WebSocket; a third is refused.
    let ws = ws_connect(&app, "acme", &Cred::Header(ACME_KEY.into()))
        .await
        .unwrap();
    assert_eq!(
        refused(post(&app, "acme", "SELECT 1").await).await,
        (429, "too_many_connections".into())
    );
    let third = ws_connect(&app, "acme", &Cred::Header(ACME_KEY.into())).await;
    assert_eq!(third.err(), Some((429, "too_many_connections".to_string())));
    assert!(app.metric("duckstream_connections_refused_total").await >= 2.0);

    // Closing them frees the slots.
    drop(hold);
    drop(ws);
    for attempt in 0.. {
        let resp = post(&app, "acme", "SELECT count(*) FROM trips").await;
        if resp.status() == 200 {
            assert_eq!(read_lines(resp).await.rows(), vec![json!([7])]);
            break;
        }
        assert!(attempt < 100, "the slots were never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn wait_queues_are_bounded_per_tenant_and_overall() {
    // acme: one query at a time and no one may wait; the queue timeout is long, so a refusal
    // that comes back at all (the test's own bound is far shorter) comes from the queue bound.
    let app = spawn_secure_app_with("pool_size = 1\nqueue_size = 0", |c| {
        c.engine.queue_timeout = Duration::from_secs(600);
    })
    .await;
    let hold = post(&app, "acme", "SELECT i FROM range(1000000000) t(i)").await;
    assert_eq!(hold.status(), 200);
    let second = tokio::time::timeout(Duration::from_secs(60), post(&app, "acme", "SELECT 1"))
        .await
        .expect("refused at once, not after queue_timeout");
    assert_eq!(refused(second).await, (429, "too_busy".into()));
    assert_eq!(
        query(&app, "globex", "SELECT 2").await.rows(),
        vec![json!([2])]
    );
    drop(hold);

    // The whole server: one executor and no waiting; globex is refused while acme runs.
    let app = spawn_secure_app_with("", |c| {
        c.engine.executor_threads = 1;
        c.engine.max_queued = 0;
        c.engine.queue_timeout = Duration::from_secs(600);
    })
    .await;
    let hold = post(&app, "acme", "SELECT i FROM range(1000000000) t(i)").await;
    assert_eq!(hold.status(), 200);
    let other = tokio::time::timeout(Duration::from_secs(60), post(&app, "globex", "SELECT 1"))
        .await
        .expect("refused at once");
    assert_eq!(refused(other).await, (429, "too_busy".into()));
    drop(hold);
    for attempt in 0.. {
        let resp = post(&app, "globex", "SELECT 2").await;
        if resp.status() == 200 {
            assert_eq!(read_lines(resp).await.rows(), vec![json!([2])]);
            break;
        }
        assert!(attempt < 100, "the executor was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the binary under `sh -c "ulimit …; exec duckstream …"` and returns its log up to the
/// `listening` line, and its pid.
fn start_under_ulimit(
    ulimit: &str,
    extra: &[&str],
) -> (String, std::process::Child, tempfile::TempDir) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "ulimit {ulimit} && exec \"$0\" --bind 127.0.0.1:0 --pg-bind off --demo false --data-dir {} {}",
        dir.path().display(),
        extra.join(" ")
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &command, env!("CARGO_BIN_EXE_duckstream")])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (log, child, dir)
}

/// The soft descriptor limit is raised to the hard one at start; when even that cannot hold a
/// tenant's `max_streams` (plus what DuckDB needs), the server warns and still serves.
#[test]
fn the_descriptor_limit_is_raised_and_checked_against_max_connections() {
    let (log, mut child, _dir) =
        start_under_ulimit("-n 300", &["--max-streams-per-tenant", "1000"]);
    let _ = child.kill();
    let _ = child.wait();
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("file-descriptor limit"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(
        warning.contains("soft=300") && warning.contains("needed=1256"),
        "{warning}"
    );

    // A low soft limit under a higher hard one: raised, and enough for the defaults.
    let hard: u64 = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "ulimit -H -n"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let (log, mut child, _dir) = start_under_ulimit("-S -n 300", &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let soft: u64 = open_files
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(soft, hard, "{open_files}");
    if hard >= 1024 + 256 {
        assert!(!log.contains("WARN"), "{log}");
    }
}
