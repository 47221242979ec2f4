//! The result cache against the real server: hits, misses, exact invalidation by uploads,
//! volatile functions, ETags, table-scoped tokens, and identical cold requests sharing one
//! DuckDB execution.
//!
//! The cases about the store (invalidation by writes, ETags, zstd entries, shared executions)
//! are functions of the app, also run on a lake tenant (`tests/api/lake.rs`), where a table's
//! version is a DuckLake snapshot id.

use serde_json::{json, Value};

use crate::helpers::{
    create_tenant, issue, read_lines, spawn_app, spawn_secure_app, upload_csv, TestApp, ACME_KEY,
};

const EXECUTIONS: &str = "duckstream_duckdb_executions_total";

async fn get(app: &TestApp, sql: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/t/query"))
        .query(&[("sql", sql)])
        .send()
        .await
        .unwrap()
}

/// The answer's `X-Cache`, ETag and rows.
async fn answer(resp: reqwest::Response) -> (Option<String>, Option<String>, Vec<Value>) {
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (cache, etag) = (header("x-cache"), header("etag"));
    let lines = read_lines(resp).await;
    assert_eq!(lines.last()["type"], "end", "{:?}", lines.kinds());
    (cache, etag, lines.rows())
}

#[actix_web::test]
async fn a_result_is_cached_until_a_table_it_reads_is_written() {
    results_are_cached_until_their_tables_are_written(&spawn_app().await).await;
}

/// Tenant `t` of `app` holds the fixture's `people` and nothing is cached yet: a result is a
/// hit until a table it reads is written, and a write to another table leaves it alone. Writes
/// `scores` and `people`.
pub async fn results_are_cached_until_their_tables_are_written(app: &TestApp) {
    upload_csv(app, "scores", "id,score\n1,9.5\n2,8\n").await;
    let people = "SELECT id, name FROM people ORDER BY id";
    let scores = "SELECT sum(score) FROM scores";
    let before = app.metric(EXECUTIONS).await;

    let (cache, etag, rows) = answer(get(app, people).await).await;
    assert_eq!(cache, None, "the first is a miss");
    assert_eq!(rows[0], json!([1, "Ada"]));
    let etag = etag.expect("a cacheable result has an ETag");
    let (cache, again, rows_again) = answer(get(app, people).await).await;
    assert_eq!(cache.as_deref(), Some("hit"));
    assert_eq!(
        (again.as_deref(), &rows_again),
        (Some(etag.as_str()), &rows)
    );
    let _ = answer(get(app, scores).await).await;
    assert_eq!(
        app.metric(EXECUTIONS).await - before,
        2.0,
        "two executions, one hit"
    );

    // A write to another table leaves the people result (and its ETag) alone...
    upload_csv(app, "scores", "id,score\n1,1\n").await;
    let (cache, same, _) = answer(get(app, people).await).await;
    assert_eq!((cache.as_deref(), same), (Some("hit"), Some(etag.clone())));
    // ...and makes the scores result stale: it runs again and sees the new rows.
    let (cache, _, rows) = answer(get(app, scores).await).await;
    assert_eq!((cache, rows), (None, vec![json!([1])]));

    // Replacing people invalidates its result: new rows, a new ETag.
    upload_csv(app, "people", "id,name\n7,Edsger\n").await;
    let (cache, fresh, rows) = answer(get(app, people).await).await;
    assert_eq!((cache, rows), (None, vec![json!([7, "Edsger"])]));
    assert_ne!(fresh.unwrap(), etag);
    let hits = app.metric("duckstream_cache_hits_total").await;
    assert!(hits >= 2.0, "{hits}");
    assert!(app.metric("duckstream_cache_bytes").await > 0.0);
}

#[actix_web::test]
async fn results_of_volatile_functions_are_never_cached() {
    let app = spawn_app().await;
    for sql in [
        "SELECT random() AS r",
        "SELECT now() AS t",
        "SELECT current_timestamp AS t",
        "SELECT uuid() AS u",
        "SELECT count(*) FROM people WHERE random() < 2",
        // A catalog function: its answer changes with writes no table version tracks.
        "SELECT count(*) FROM duckdb_tables()",
    ] {
        let before = app.metric(EXECUTIONS).await;
        let (first, etag, a) = answer(get(&app, sql).await).await;
        let (second, _, b) = answer(get(&app, sql).await).await;
        assert_eq!((first, second, etag), (None, None, None), "{sql}");
        assert_eq!(app.metric(EXECUTIONS).await - before, 2.0, "{sql}");
        if sql.contains("random() AS") {
            assert_ne!(a, b, "two draws");
        }
    }
    // The same SQL without them is cached.
    let (_, _, _) = answer(get(&app, "SELECT count(*) FROM people").await).await;
    let (hit, _, rows) = answer(get(&app, "SELECT count(*) FROM people").await).await;
    assert_eq!((hit.as_deref(), rows), (Some("hit"), vec![json!([3])]));
}

#[actix_web::test]
async fn macros_that_call_volatile_functions_are_never_cached_even_through_other_macros() {
    let app = spawn_app().await;
    // A tenant whose database holds macros (DuckDB keeps them in the file).
    create_tenant(
        app.dir.path(),
        "m",
        "CREATE TABLE n AS SELECT 1 AS v;
         CREATE MACRO draw() AS random();
         CREATE MACRO draw2() AS draw() + 1;
         CREATE MACRO plus_one(x) AS x + 1;",
    );
    let get = |sql: &'static str| {
        app.client
            .get(app.url("/v1/m/query"))
            .query(&[("sql", sql)])
            .send()
    };
    for sql in ["SELECT draw() AS r FROM n", "SELECT draw2() AS r FROM n"] {
        let before = app.metric(EXECUTIONS).await;
        let (first, etag, a) = answer(get(sql).await.unwrap()).await;
        let (second, _, b) = answer(get(sql).await.unwrap()).await;
        assert_eq!((first, second, etag), (None, None, None), "{sql}");
        assert_eq!(app.metric(EXECUTIONS).await - before, 2.0, "{sql}");
        assert_ne!(a, b, "{sql}: two draws");
    }
    let sql = "SELECT plus_one(v) AS w FROM n";
    let (_, _, _) = answer(get(sql).await.unwrap()).await;
    let (hit, _, rows) = answer(get(sql).await.unwrap()).await;
    assert_eq!((hit.as_deref(), rows), (Some("hit"), vec![json!([2])]));
}

#[actix_web::test]
async fn etags_answer_304_on_get_and_412_on_post() {
    etags_answer_304_and_412(&spawn_app().await).await;
}

/// Tenant `t` of `app` has a `people` table: an ETag answers 304 on GET and 412 on POST until
/// `people` is written. Writes `people`.
pub async fn etags_answer_304_and_412(app: &TestApp) {
    let sql = "SELECT name FROM people WHERE id = ?";
    let url = format!(
        "{}?sql={}&params=%5B1%5D",
        app.url("/v1/t/query"),
        "SELECT%20name%20FROM%20people%20WHERE%20id%20%3D%20%3F"
    );
    let first = app.client.get(&url).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(first.headers()["cache-control"], "private, no-cache");
    let _ = first.bytes().await;
    let not_modified = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], etag.as_str());
    assert!(not_modified.bytes().await.unwrap().is_empty());
    // A weak form and a list match too; another tag does not.
    for header in [format!("W/{etag}"), format!("\"x\", {etag}")] {
        let r = app.client.get(&url).header("if-none-match", header).send();
        assert_eq!(r.await.unwrap().status(), 304);
    }
    let other = app.client.get(&url).header("if-none-match", "\"other\"");
    assert_eq!(other.send().await.unwrap().status(), 200);
    // Other params are another result.
    let two = app
        .client
        .get(url.replace("%5B1%5D", "%5B2%5D"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 200);
    assert_ne!(two.headers()["etag"], etag.as_str());

    // POST: the same result, and a failed precondition is 412 with a code.
    let post = |inm: Option<String>| {
        let mut r = app
            .client
            .post(app.url("/v1/t/query"))
            .body(json!({"sql": sql, "params": [1]}).to_string());
        if let Some(v) = inm {
            r = r.header("if-none-match", v);
        }
        r.send()
    };
    let resp = post(None).await.unwrap();
    let post_etag = resp.headers()["etag"].to_str().unwrap().to_string();
    let _ = resp.bytes().await;
    let refused = post(Some(post_etag)).await.unwrap();
    assert_eq!(refused.status(), 412);
    let body = crate::helpers::json_of(refused).await;
    assert_eq!(body["code"], "precondition_failed");

    // After a write to people, the old ETag no longer matches: the new result comes.
    upload_csv(app, "people", "id,name\n1,Barbara\n").await;
    let changed = app
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(read_lines(changed).await.rows(), vec![json!(["Barbara"])]);
}

#[actix_web::test]
async fn table_scoped_tokens_never_get_bytes_cached_for_another_scope() {
    let app = spawn_secure_app("").await;
    let narrow = issue(&app, "acme", json!({"tables": ["trips"]})).await;
    let sql = "SELECT count(*) FROM trips";
    let ask = |cred: String| {
        app.client
            .get(app.url("/v1/acme/query"))
            .query(&[("sql", sql)])
            .bearer_auth(cred)
            .send()
    };
    let before = app.metric(EXECUTIONS).await;
    let (c1, _, r1) = answer(ask(ACME_KEY.into()).await.unwrap()).await;
    let (c2, _, _) = answer(ask(ACME_KEY.into()).await.unwrap()).await;
    // The token's first request runs its own execution (and its table check) ...
    let (c3, _, r3) = answer(ask(narrow.clone()).await.unwrap()).await;
    // ... and its second hits the entry of its own scope.
    let (c4, _, _) = answer(ask(narrow.clone()).await.unwrap()).await;
    assert_eq!(
        (c1, c2.as_deref(), c3, c4.as_deref()),
        (None, Some("hit"), None, Some("hit"))
    );
    assert_eq!((r1, r3), (vec![json!([7])], vec![json!([7])]));
    assert_eq!(app.metric(EXECUTIONS).await - before, 2.0);
    // A refused query of the token is refused every time, never answered from a cache.
    for _ in 0..2 {
        let resp = app
            .client
            .get(app.url("/v1/acme/query"))
            .query(&[("sql", "SELECT * FROM secret")])
            .bearer_auth(&narrow)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
    }
}

#[actix_web::test]
async fn identical_cold_requests_share_one_execution() {
    identical_cold_requests_share_an_execution(&spawn_app().await, "range(4000) t(i)").await;
}

/// Forty identical requests for a result of `pairs` (4000 rows of `i`, 0 to 3999) that nothing
/// has cached: one execution, forty identical bodies.
pub async fn identical_cold_requests_share_an_execution(app: &TestApp, pairs: &str) {
    // Long enough (a few hundred ms) that every request arrives while the first runs.
    let sql = &format!(
        "SELECT count(*) AS n, sum(a.i * b.range) AS s FROM (SELECT i FROM {pairs}) a, range(4000) b"
    );
    let before = app.metric(EXECUTIONS).await;
    let requests = (0..40).map(|_| async { get(app, sql).await.bytes().await.unwrap() });
    let bodies = futures_util::future::join_all(requests).await;
    assert_eq!(app.metric(EXECUTIONS).await - before, 1.0);
    assert!(bodies.iter().all(|b| b == &bodies[0]), "identical bodies");
    let text = String::from_utf8(bodies[0].to_vec()).unwrap();
    assert!(text.contains("[[16000000,"), "{text}");
    assert!(app.metric("duckstream_executions_saved_total").await >= 39.0);
}

#[actix_web::test]
async fn a_zstd_answer_is_cached_as_zstd_and_decodes_to_the_same_lines() {
    zstd_answers_are_cached_as_zstd(&spawn_app().await).await;
}

/// Tenant `t` of `app` holds the fixture's `people`, not cached yet: a zstd answer is stored
/// as zstd and decodes to the lines of the plain one.
pub async fn zstd_answers_are_cached_as_zstd(app: &TestApp) {
    let sql = "SELECT id, name FROM people ORDER BY id";
    let zstd = || {
        app.client
            .get(app.url("/v1/t/query"))
            .query(&[("sql", sql)])
            .header("accept-encoding", "zstd")
            .send()
    };
    let miss = zstd().await.unwrap();
    assert_eq!(miss.headers()["content-encoding"], "zstd");
    let miss = miss.bytes().await.unwrap();
    let hit = zstd().await.unwrap();
    assert_eq!(hit.headers()["x-cache"], "hit");
    assert_eq!(hit.headers()["content-encoding"], "zstd");
    let hit = hit.bytes().await.unwrap();
    assert_eq!(hit, miss, "the stored bytes");
    let plain = get(app, sql).await;
    assert!(plain.headers().get("x-cache").is_none(), "another variant");
    // The same lines (another execution: another query_id).
    let data = |body: &[u8]| -> Vec<Value> {
        body.split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice::<Value>(l).unwrap())
            .filter(|v| v["type"] == "data")
            .map(|v| v["rows"].clone())
            .collect()
    };
    let plain = plain.bytes().await.unwrap();
    let decoded = zstd::decode_all(&hit[..]).unwrap();
    assert_eq!(data(&decoded), data(&plain));
    assert_eq!(
        data(&plain),
        vec![json!([[1, "Ada"], [2, "Grace"], [3, null]])]
    );
}

#[actix_web::test]
async fn a_tenant_ttl_of_zero_turns_its_cache_off() {
    let app = crate::helpers::spawn_app_with(|c| c.limits.cache_ttl_secs = Some(0)).await;
    let before = app.metric(EXECUTIONS).await;
    for _ in 0..3 {
        let (cache, etag, _) = answer(get(&app, "SELECT 1").await).await;
        assert_eq!((cache, etag), (None, None));
    }
    assert_eq!(app.metric(EXECUTIONS).await - before, 3.0);
}
