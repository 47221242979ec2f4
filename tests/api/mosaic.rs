//! Mosaic's own npm client (`@uwdata/mosaic-core`'s `restConnector` and `socketConnector`,
//! unmodified, driven by `tests/mosaic/client.mjs`) against the Mosaic endpoint; and the
//! endpoint's confinement of `exec`, checked directly.

use serde_json::{json, Value};

use crate::helpers::{create_tenant, issue, spawn_app, spawn_app_with, TestApp};

/// A deterministic `parcels(id, lon, lat, area, zone)` table (as `tests/mosaic/make_parcels.py`).
fn parcels(rows: u64) -> String {
    format!(
        "CREATE TABLE parcels AS
         WITH r AS (
           SELECT i AS id,
                  (hash(i, 1) % 1000003) / 1000003.0 AS u1,
                  (hash(i, 2) % 1000003) / 1000003.0 AS u2,
                  (hash(i, 3) % 1000003) / 1000003.0 AS u3,
                  (hash(i, 4) % 1000003) / 1000003.0 AS u4
           FROM range({rows}) t(i))
         SELECT id::BIGINT AS id,
                (-122.52 + 0.17 * u1)::DOUBLE AS lon,
                (37.70 + 0.13 * (u2 + u1 * u1) / 2)::DOUBLE AS lat,
                round(exp(4 + 3 * (u3 + u4) / 2), 1)::DOUBLE AS area,
                ['residential', 'commercial', 'industrial', 'mixed', 'open'][1 + (hash(id, 5) % 5)::INTEGER]::VARCHAR AS zone
         FROM r ORDER BY id;"
    )
}

async fn app_with_parcels() -> TestApp {
    let app = spawn_app().await;
    create_tenant(app.dir.path(), "m", &parcels(100_000));
    app
}

/// Runs `tests/mosaic/client.mjs` with `args`; its JSON report.
async fn client(args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mosaic/client.mjs");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .args(args)
        .env("MOSAIC_TIMEOUT_MS", "60000")
        .output()
        .await
        .expect("node runs (scripts/test.sh installs tests/mosaic)");
    assert!(
        out.status.success(),
        "client.mjs {args:?} failed ({:?}): {}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn uri(app: &TestApp, socket: bool) -> String {
    let base = if socket {
        app.base.replace("http://", "ws://")
    } else {
        app.base.clone()
    };
    format!("{base}/v1/m/mosaic")
}

async fn batch(app: &TestApp, socket: bool, requests: &[Value]) -> Vec<Value> {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), Value::from(requests.to_vec()).to_string()).unwrap();
    let mode = if socket { "socket" } else { "rest" };
    let report = client(&[mode, &uri(app, socket), file.path().to_str().unwrap()]).await;
    report["results"].as_array().unwrap().clone()
}

fn arrow(sql: &str) -> Value {
    json!({"type": "arrow", "sql": sql})
}

fn exec(sql: &str) -> Value {
    json!({"type": "exec", "sql": sql})
}

#[actix_web::test]
async fn mosaics_own_client_over_rest_and_the_socket() {
    let app = app_with_parcels().await;
    for socket in [false, true] {
        let table = if socket { "t_socket" } else { "t_rest" };
        let mut requests = vec![
            exec(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"mosaic\";\nCREATE TABLE IF NOT EXISTS \"mosaic\".\"{table}\" AS SELECT zone, count(*) AS n FROM parcels GROUP BY zone"
            )),
            arrow("SELECT * FROM no_such_table"),
            exec("CREATE TABLE IF NOT EXISTS parcels2 AS SELECT * FROM read_parquet('/etc/passwd')"),
            exec("CREATE TABLE IF NOT EXISTS \"mosaic\".\"x\" AS SELECT * FROM read_csv('/etc/passwd')"),
            exec("INSTALL httpfs"),
            arrow("SELECT i FROM range(2000000) t(i)"),
            arrow("DESC SELECT \"area\" AS \"column\" FROM \"parcels\" AS \"source\""),
        ];
        // 40 pipelined queries, each answer told apart by its own values.
        for i in 0..40 {
            requests.push(arrow(&format!(
                "SELECT {i}::INTEGER AS k, count(*)::INTEGER AS n FROM range({}) t(x)",
                i * 7 + 1
            )));
        }
        let results = batch(&app, socket, &requests).await;
        assert_eq!(results.len(), requests.len());
        assert_eq!(results[0], json!({"ok": true}), "multi-statement exec");
        for (i, what) in [
            (1, "invalid_sql"),
            (2, "forbidden"),
            (3, "forbidden"),
            (4, "forbidden"),
        ] {
            assert_eq!(results[i]["ok"], false, "{}", results[i]);
            assert!(
                results[i]["error"].as_str().unwrap().contains(what),
                "{i}: {}",
                results[i]
            );
        }
        assert_eq!(results[5]["rows"], 2_000_000, "{}", results[5]);
        assert_eq!(results[5]["first"][2]["i"], 2);
        assert_eq!(results[6]["first"][0]["column_type"], "DOUBLE");
        for i in 0..40 {
            let r = &results[7 + i];
            assert_eq!(r["first"][0]["k"], i as u64, "answer {i} matched: {r}");
            assert_eq!(r["first"][0]["n"], (i * 7 + 1) as u64, "{r}");
        }
        // The derived table is there to read (a second batch: REST requests run at once).
        let read = batch(
            &app,
            socket,
            &[arrow(&format!(
                "SELECT sum(n)::INTEGER AS total FROM \"mosaic\".\"{table}\""
            ))],
        )
        .await;
        assert_eq!(read[0]["first"][0]["total"], 100_000, "{}", read[0]);
    }
}

#[actix_web::test]
async fn crossfilters_preaggregate_in_the_scratch_space_and_not_in_the_data() {
    let app = app_with_parcels().await;
    let mut final_rows = Vec::new();
    for socket in [false, true] {
        for preagg in [true, false] {
            let mode = if socket { "socket" } else { "rest" };
            let mut args = vec![mode.to_string(), uri(&app, socket), "--crossfilter".into()];
            if !preagg {
                args.push("--no-preagg".into());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let report = client(&args).await;
            assert_eq!(report["errors"], json!([]), "{report}");
            let sql: Vec<String> = report["sql"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["sql"].as_str().unwrap().to_string())
                .collect();
            let created = sql
                .iter()
                .any(|s| s.contains("CREATE TABLE IF NOT EXISTS \"mosaic\".\"preagg_"));
            let read = sql.iter().any(|s| s.contains("FROM \"mosaic\".\"preagg_"));
            assert_eq!(
                (created, read),
                (preagg, preagg),
                "{mode} preagg={preagg}: {sql:?}"
            );
            for step in report["steps"].as_array().unwrap() {
                for r in step["results"].as_array().into_iter().flatten() {
                    assert_eq!(r["result"]["ok"], true, "{mode} {}: {r}", step["step"]);
                }
            }
            let last = report["steps"].as_array().unwrap().last().unwrap();
            final_rows.push(last["results"][0]["result"]["rows"].clone());
        }
    }
    // The same histogram once every brush is cleared, whichever way it was computed.
    assert!(
        final_rows.iter().all(|r| r == &final_rows[0]),
        "{final_rows:?}"
    );

    // The tenant's own data is untouched: its tables are the ones it had.
    let listed: Value = serde_json::from_slice(
        &app.client
            .get(app.url("/v1/m/datasets"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = listed["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["parcels"]);
    // A derived table is readable now...
    let put = |csv: &'static str| {
        app.client
            .put(app.url("/v1/m/datasets/other?format=csv"))
            .body(csv)
            .send()
    };
    assert_eq!(put("a\n1\n").await.unwrap().status(), 200);
    let made = mosaic_post(
        &app,
        "m",
        exec("CREATE TABLE IF NOT EXISTS \"mosaic\".\"probe\" AS SELECT count(*) AS n FROM other"),
    )
    .await;
    assert_eq!(made.0, 200, "{:?}", made.1);
    let out = app.query_on("m", "SELECT n FROM mosaic.probe").await;
    assert_eq!(out.data_rows_text(), ["[[1]]"], "{}", out.raw);
    // ...and, once the data version moves (a write to the tenant), dropped and made again
    // from its SELECT on the new data when a query names it.
    assert_eq!(put("a\n1\n2\n3\n").await.unwrap().status(), 200);
    let out = app.query_on("m", "SELECT n FROM mosaic.probe").await;
    assert_eq!(out.status, 200, "{}", out.raw);
    assert_eq!(out.data_rows_text(), ["[[3]]"], "{}", out.raw);
    // A clear (`DROP SCHEMA "mosaic"`) drops it for good.
    let cleared = mosaic_post(&app, "m", exec("DROP SCHEMA IF EXISTS \"mosaic\" CASCADE")).await;
    assert_eq!(cleared.0, 200, "{:?}", cleared.1);
    let out = app.query_on("m", "SELECT n FROM mosaic.probe").await;
    assert_eq!(out.status, 400, "{}", out.raw);
    assert!(out.raw.contains("probe"), "{}", out.raw);
}

/// POSTs a Mosaic request; the status and the body.
async fn mosaic_post(app: &TestApp, tenant: &str, request: Value) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(&format!("/v1/{tenant}/mosaic")))
        .header("content-type", "application/json")
        .body(request.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

#[actix_web::test]
async fn exec_runs_only_preaggregation_inside_its_budget() {
    let app = spawn_app_with(|c| c.limits.scratch_bytes = Some(64 << 10)).await;
    create_tenant(app.dir.path(), "m", &parcels(10_000));
    for sql in [
        "CREATE TABLE parcels2 AS SELECT 1",
        "CREATE OR REPLACE TABLE \"mosaic\".\"t\" AS SELECT 1",
        "CREATE TABLE IF NOT EXISTS main.t AS SELECT 1",
        "DROP TABLE parcels",
        "DELETE FROM parcels",
        "ATTACH '/tmp/x.duckdb' AS x",
        "COPY parcels TO '/tmp/x.csv'",
        "SET threads = 1",
        "CREATE SCHEMA IF NOT EXISTS \"mosaic\"; DROP TABLE parcels",
        "CREATE TABLE IF NOT EXISTS \"mosaic\".\"t\" AS SELECT 1; DROP TABLE parcels",
        "CREATE TABLE IF NOT EXISTS \"mosaic\".\"t\" AS DELETE FROM parcels",
        "CREATE TABLE IF NOT EXISTS \"mosaic\".\"t\" AS SELECT * FROM glob('/*')",
    ] {
        let (status, body) = mosaic_post(&app, "m", exec(sql)).await;
        assert!(status == 403 || status == 400, "{sql}: {status} {body}");
        assert!(
            matches!(body["code"].as_str(), Some("forbidden" | "invalid_sql")),
            "{sql}: {body}"
        );
    }
    // The data is as it was.
    let out = app.query_on("m", "SELECT count(*) FROM parcels").await;
    assert_eq!(out.data_rows_text(), ["[[10000]]"]);
    // Within the budget: a small aggregate fits, a copy of the table does not.
    let (status, _) = mosaic_post(
        &app,
        "m",
        exec("CREATE TABLE IF NOT EXISTS \"mosaic\".\"small\" AS SELECT zone, count(*) AS n FROM parcels GROUP BY zone"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = mosaic_post(
        &app,
        "m",
        exec("CREATE TABLE IF NOT EXISTS \"mosaic\".\"big\" AS SELECT * FROM parcels"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("limit_exceeded")),
        "{body}"
    );
    let out = app.query_on("m", "SELECT count(*) FROM mosaic.big").await;
    assert_eq!(
        out.status, 400,
        "the refused table was dropped: {}",
        out.raw
    );
    // DROP SCHEMA clears the space.
    let (status, _) =
        mosaic_post(&app, "m", exec("DROP SCHEMA IF EXISTS \"mosaic\" CASCADE")).await;
    assert_eq!(status, 200);
    let out = app.query_on("m", "SELECT count(*) FROM mosaic.small").await;
    assert_eq!(out.status, 400, "{}", out.raw);
    // Unknown request types are Mosaic's errors too.
    let (status, body) = mosaic_post(&app, "m", json!({"type": "json", "sql": "SELECT 1"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[actix_web::test]
async fn credentials_travel_as_token_and_browsers_get_cors() {
    let app = crate::helpers::spawn_secure_app_with("", |c| {
        c.server.cors_allow_origins = vec!["https://dash.example".into()]
    })
    .await;
    // Without a credential: refused, in Mosaic's error shape (a status with the body).
    let (status, _) = mosaic_post(&app, "acme", arrow("SELECT 1 AS x")).await;
    assert_eq!(status, 401);
    let token = issue(&app, "acme", json!({})).await;
    let resp = app
        .client
        .post(app.url(&format!("/v1/acme/mosaic?token={token}")))
        .header("content-type", "application/json")
        .header("origin", "https://dash.example")
        .body(arrow("SELECT 42 AS x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.apache.arrow.stream"
    );
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    // The preflight a browser sends first (no credential).
    let resp = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/v1/acme/mosaic?token={token}")),
        )
        .header("origin", "https://dash.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    // A token limited to tables reads them, but derives nothing.
    let scoped = issue(&app, "acme", json!({"tables": ["trips"]})).await;
    let resp = app
        .client
        .post(app.url(&format!("/v1/acme/mosaic?token={scoped}")))
        .header("content-type", "application/json")
        .body(exec("CREATE TABLE IF NOT EXISTS \"mosaic\".\"t\" AS SELECT 1").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[actix_web::test]
async fn a_socket_result_bigger_than_the_shared_budget_is_still_answered() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    // The smallest budgets the config allows: every frame of a 100,000-row result (up to
    // `chunk_bytes`, 1 MiB) is bigger than all of them.
    let app = spawn_app_with(|c| {
        c.websocket.send_budget_bytes = 64 * 1024;
        c.websocket.total_budget_bytes = 64 * 1024;
        c.websocket.slow_consumer_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    create_tenant(app.dir.path(), "m", &parcels(100_000));
    let (mut ws, _) = tokio_tungstenite::connect_async(uri(&app, true))
        .await
        .unwrap();
    // One after the other (two at once could each hold part of so small a budget and wait on
    // each other until one is `too_busy`), and different, so neither comes from the cache.
    for sql in [
        "SELECT id, zone FROM parcels ORDER BY id",
        "SELECT id, zone FROM parcels ORDER BY id DESC",
    ] {
        ws.send(Message::text(arrow(sql).to_string()))
            .await
            .unwrap();
        let answer = loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Binary(b) => break b,
                Message::Text(t) => panic!("an error instead of the result: {t}"),
                _ => {}
            }
        };
        let reader =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(answer.to_vec()), None)
                .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 100_000);
    }
}
