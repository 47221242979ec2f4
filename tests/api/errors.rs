//! Bad input: each gets its documented status and code, and the server stays up.

use crate::helpers::{read_lines, spawn_app};

async fn expect_error(
    app: &crate::helpers::TestApp,
    tenant: &str,
    body: &str,
    status: u16,
    code: &str,
) -> String {
    let resp = app.post(tenant, body).await;
    assert_eq!(resp.status().as_u16(), status, "status for {body}");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v = crate::helpers::json_of(resp).await;
    assert_eq!(v["code"], code, "code for {body}: {v}");
    v["message"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn bad_requests_get_their_codes() {
    let app = spawn_app().await;
    expect_error(&app, "t", "{not json", 400, "invalid_json").await;
    expect_error(&app, "t", "", 400, "invalid_json").await;
    let m = expect_error(&app, "t", "{}", 400, "invalid_request").await;
    assert!(m.contains("sql"), "{m}");
    expect_error(&app, "t", r#"{"sql": 1}"#, 400, "invalid_request").await;
    expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT 1", "chunk_rows": "many"}"#,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT 1", "chunk_rows": 0}"#,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT 1", "params": {"a": 1}}"#,
        400,
        "invalid_request",
    )
    .await;
    expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT 1", "sqll": 2}"#,
        400,
        "invalid_request",
    )
    .await;
    expect_error(&app, "t", r#"["SELECT 1"]"#, 400, "invalid_request").await;

    let m = expect_error(&app, "t", r#"{"sql": "SELEC 1"}"#, 400, "invalid_sql").await;
    assert!(m.contains("syntax error"), "{m}");
    let m = expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT nope FROM people"}"#,
        400,
        "invalid_sql",
    )
    .await;
    assert!(m.contains("Binder Error"), "{m}");
    let m = expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT * FROM missing"}"#,
        400,
        "invalid_sql",
    )
    .await;
    assert!(m.contains("missing"), "{m}");

    let m = expect_error(
        &app,
        "t",
        r#"{"sql": "CREATE TABLE x (i INTEGER)"}"#,
        403,
        "forbidden",
    )
    .await;
    assert!(m.contains("CREATE"), "{m}");
    expect_error(
        &app,
        "t",
        r#"{"sql": "INSERT INTO people VALUES (9, 'x', NULL)"}"#,
        403,
        "forbidden",
    )
    .await;
    expect_error(&app, "t", r#"{"sql": "SET threads = 1"}"#, 403, "forbidden").await;
    // Refused before running: the table was not created, the row not inserted.
    expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT * FROM x"}"#,
        400,
        "invalid_sql",
    )
    .await;
    let n = app.query("SELECT count(*) FROM people").await;
    assert_eq!(n.data_rows_text(), ["[[3]]"]);

    let m = expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT ?, ?", "params": [1]}"#,
        400,
        "invalid_params",
    )
    .await;
    assert!(m.contains('2') && m.contains('1'), "{m}");
    expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT 1", "params": [1]}"#,
        400,
        "invalid_params",
    )
    .await;

    let m = expect_error(
        &app,
        "t",
        r#"{"sql": "SELECT error('boom')"}"#,
        400,
        "query_failed",
    )
    .await;
    assert!(m.contains("boom"), "{m}");

    expect_error(
        &app,
        "nobody",
        r#"{"sql": "SELECT 1"}"#,
        404,
        "tenant_not_found",
    )
    .await;
    assert!(
        !app.dir.path().join("nobody.duckdb").exists(),
        "no file for unknown tenants"
    );
    expect_error(
        &app,
        "Bad.Name",
        r#"{"sql": "SELECT 1"}"#,
        400,
        "invalid_tenant",
    )
    .await;

    let resp = app.client.get(app.url("/v1/t/query")).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = app
        .client
        .get(app.url("/v1/t/query?sql=SELECT%201&params=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v = crate::helpers::json_of(resp).await;
    assert_eq!(v["code"], "invalid_json");

    // Still serving.
    let ok = app.query("SELECT 1 AS one").await;
    assert_eq!(ok.data_rows_text(), ["[[1]]"]);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[actix_web::test]
async fn an_error_after_the_first_byte_is_a_final_error_line() {
    let app = spawn_app().await;
    let body = serde_json::json!({
        "sql": "SELECT CASE WHEN i < 900000 THEN i ELSE error('late failure') END AS v FROM range(1000000) t(i)"
    })
    .to_string();
    let out = read_lines(app.post("t", &body).await).await;
    assert_eq!(out.status, 200);
    let kinds = out.kinds();
    assert_eq!(kinds[0], "metadata");
    assert!(kinds.iter().filter(|k| **k == "data").count() >= 1);
    let last = out.last();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["code"], "query_failed");
    // DuckDB reports the failure itself, or (a race inside DuckDB, now and then) only that it
    // stopped the query's threads: a final error line either way, never a cut stream.
    let message = last["message"].as_str().unwrap();
    assert!(
        message.contains("late failure") || message.contains("one of its threads failed"),
        "{message}"
    );
    assert_eq!(
        app.metric("duckstream_query_errors_total{code=\"query_failed\"}")
            .await,
        1.0
    );
}

#[actix_web::test]
async fn results_past_the_limits_end_with_limit_exceeded() {
    let app = crate::helpers::spawn_app_with(|c| c.limits.max_result_rows = Some(2500)).await;
    let body = r#"{"sql": "SELECT i FROM range(10000) t(i) ORDER BY i", "chunk_rows": 1000}"#;
    let out = read_lines(app.post("t", body).await).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.rows().len(), 2500, "exactly the allowed part");
    assert_eq!(out.rows()[2499], serde_json::json!([2499]));
    assert_eq!(out.last()["type"], "error");
    assert_eq!(out.last()["code"], "limit_exceeded");
    let ok = app.query("SELECT 1 AS one").await;
    assert_eq!(ok.data_rows_text(), ["[[1]]"]);

    let app = crate::helpers::spawn_app_with(|c| c.limits.max_result_bytes = Some(50_000)).await;
    let body = r#"{"sql": "SELECT repeat('x', 100) AS s FROM range(100000)"}"#;
    let out = read_lines(app.post("t", body).await).await;
    assert_eq!(out.last()["code"], "limit_exceeded");
    let sent: usize = out
        .raw
        .lines()
        .filter(|l| l.contains("\"type\":\"data\""))
        .map(str::len)
        .sum();
    assert!(sent < 50_000 + 2_000, "{sent} bytes of data lines");
}

#[actix_web::test]
async fn a_full_tenant_answers_too_busy() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.limits.pool_size = Some(1);
        c.engine.queue_timeout = std::time::Duration::from_secs(1);
    })
    .await;
    // Hold the tenant's only connection with a stream nobody reads.
    let hold = app
        .post("t", r#"{"sql": "SELECT i FROM range(1000000000) t(i)"}"#)
        .await;
    assert_eq!(hold.status(), 200);
    let resp = app.post("t", r#"{"sql": "SELECT 1"}"#).await;
    assert_eq!(resp.status(), 429);
    let v = crate::helpers::json_of(resp).await;
    assert_eq!(v["code"], "too_busy");
    drop(hold);
    app.wait_metric("duckstream_active_queries{transport=\"http\"}", |v| {
        v == 0.0
    })
    .await;
    let ok = app.query("SELECT 2 AS two").await;
    assert_eq!(ok.data_rows_text(), ["[[2]]"]);
}
