//! Authentication and isolation between tenants: every case of `tests/data/auth.tsv` over
//! HTTP, SSE and WebSocket, with API keys and tokens (expired, tampered, forged, unsigned,
//! limited to tables), plus the token endpoint and a token expiring on an open WebSocket.

use std::time::Duration;

use base64::Engine as _;
use duckstream::auth::token::{now_secs, Claims, TokenSigner};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    data_cases, issue, json_of, read_lines, spawn_app_with, spawn_secure_app,
    spawn_secure_app_with, ws_connect, Cred, TestApp, Ws, ACME_KEY, ADMIN_KEY, GLOBEX_KEY, SECRET,
};

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

async fn credential(app: &TestApp, spec: &str) -> Cred {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts[..] {
        ["-"] => Cred::None,
        ["key", who] => Cred::Header(
            match who {
                "acme" => ACME_KEY,
                "globex" => GLOBEX_KEY,
                "admin" => ADMIN_KEY,
                _ => "no-such-key",
            }
            .to_string(),
        ),
        ["basic"] => Cred::None,
        ["token", t] => Cred::Query(issue(app, t, json!({})).await),
        ["token", t, tables] => {
            let tables: Vec<&str> = tables.split('+').collect();
            Cred::Query(issue(app, t, json!({ "tables": tables })).await)
        }
        ["bearer-token", t] => Cred::Header(issue(app, t, json!({})).await),
        ["expired", t] => Cred::Query(TokenSigner::new(SECRET.as_bytes()).sign(&Claims::new(
            t,
            now_secs() - 120,
            60,
            None,
        ))),
        ["tampered", t, u] => {
            let token = issue(app, t, json!({})).await;
            let parts: Vec<&str> = token.split('.').collect();
            let payload = serde_json::to_vec(&Claims::new(u, now_secs(), 300, None)).unwrap();
            Cred::Query(format!("{}.{}.{}", parts[0], b64(&payload), parts[2]))
        }
        ["forged", t] => Cred::Query(
            TokenSigner::new(b"another secret, also thirty-two bytes long".to_vec())
                .sign(&Claims::new(t, now_secs(), 300, None)),
        ),
        ["alg-none", t] => {
            let payload = serde_json::to_vec(&Claims::new(t, now_secs(), 300, None)).unwrap();
            Cred::Query(format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(&payload)
            ))
        }
        ["key-as-token", _] => Cred::Query(ACME_KEY.to_string()),
        ["junk-token", n] => {
            let part = "A".repeat(n.parse::<usize>().unwrap() / 3);
            Cred::Query(format!("{part}.{part}.{part}"))
        }
        ["junk-key", n] => Cred::Header("k".repeat(n.parse().unwrap())),
        ["two-credentials", t] => {
            // A token in the query, and a different one (another tenant's key) in the header.
            let token = issue(app, t, json!({})).await;
            Cred::Both(GLOBEX_KEY.to_string(), token)
        }
        _ => panic!("unknown credential {spec}"),
    }
}

/// `(status, first value or error code)` of one HTTP or SSE request.
async fn over_http(
    app: &TestApp,
    transport: &str,
    tenant: &str,
    cred: &Cred,
    sql: &str,
    basic: bool,
) -> (u16, String) {
    let (path, get) = match transport {
        "http-post" => ("query", false),
        "http-get" => ("query", true),
        "sse-get" => ("sse", true),
        "sse-post" => ("sse", false),
        other => panic!("unknown transport {other}"),
    };
    let mut query: Vec<(&str, &str)> = Vec::new();
    if get {
        query.push(("sql", sql));
    }
    if let Cred::Query(t) | Cred::Both(_, t) = cred {
        query.push(("token", t));
    }
    let url = app.url(&format!("/v1/{tenant}/{path}"));
    let mut req = if get {
        app.client.get(url).query(&query)
    } else {
        app.client
            .post(url)
            .query(&query)
            .body(json!({ "sql": sql }).to_string())
    };
    if let Cred::Header(h) | Cred::Both(h, _) = cred {
        req = req.bearer_auth(h);
    }
    if basic {
        req = req.basic_auth("acme", Some(ACME_KEY));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        let v: Value = json_of(resp).await;
        return (status, v["code"].as_str().unwrap().to_string());
    }
    let lines: Vec<Value> = if path == "sse" {
        resp.text()
            .await
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    } else {
        read_lines(resp).await.lines
    };
    (status, outcome(&lines))
}

/// `=first value` of a finished result, or the code of its error line.
fn outcome(lines: &[Value]) -> String {
    let last = lines.last().expect("some lines");
    if last["type"] == "error" {
        return last["code"].as_str().unwrap().to_string();
    }
    assert_eq!(last["type"], "end", "{lines:?}");
    let first = lines
        .iter()
        .find(|l| l["type"] == "data")
        .map(|l| l["rows"][0][0].clone())
        .unwrap_or(Value::Null);
    match first {
        Value::String(s) => format!("={s}"),
        v => format!("={v}"),
    }
}

/// Runs one query on an open socket; returns its lines.
async fn ws_query(ws: &mut Ws, id: &str, sql: &str) -> Vec<Value> {
    let msg = json!({ "type": "query", "id": id, "sql": sql }).to_string();
    ws.send(Message::text(msg)).await.unwrap();
    let mut lines = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message within 30 s")
            .expect("socket open")
            .unwrap();
        let Message::Text(text) = msg else { continue };
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            let done = v["type"] == "end" || v["type"] == "error";
            lines.push(v);
            if done {
                return lines;
            }
        }
    }
}

#[actix_web::test]
async fn every_case_of_the_auth_matrix_gets_its_answer() {
    let app = spawn_secure_app("").await;
    let mut n = 0;
    for line in data_cases("auth.tsv") {
        let cols: Vec<&str> = line.split('\t').collect();
        let [transport, tenant, spec, sql, status, expected] = cols[..] else {
            panic!("bad case line {line}")
        };
        let cred = credential(&app, spec).await;
        let got = if transport == "ws" {
            match ws_connect(&app, tenant, &cred).await {
                Err(refused) => refused,
                Ok(mut ws) => {
                    let lines = ws_query(&mut ws, "q", sql).await;
                    ws.close(None).await.ok();
                    (200, outcome(&lines))
                }
            }
        } else {
            over_http(&app, transport, tenant, &cred, sql, spec == "basic").await
        };
        assert_eq!(
            (got.0.to_string(), got.1.as_str()),
            (status.to_string(), expected),
            "case: {line}"
        );
        n += 1;
    }
    assert!(n >= 60, "only {n} cases");
    // Refusals are counted by reason.
    assert!(
        app.metric("duckstream_auth_failures_total{reason=\"denied\"}")
            .await
            >= 10.0
    );
    assert!(
        app.metric("duckstream_auth_failures_total{reason=\"expired\"}")
            .await
            >= 3.0
    );
}

/// A table chosen while binding could differ between the check and the run: DuckDB's parse
/// tree refuses every table function that takes a table name, parameters or not. Ordinary
/// parameterised queries run. Errors and refusals name no table.
#[actix_web::test]
async fn table_limited_tokens_bind_params_but_cannot_pick_tables_at_bind_time() {
    let app = spawn_secure_app("").await;
    let token = issue(&app, "acme", json!({ "tables": ["trips"] })).await;
    let run = |sql: &'static str, params: Value| {
        let (app, token) = (&app, &token);
        async move {
            let resp = app
                .client
                .post(app.url("/v1/acme/query"))
                .bearer_auth(token)
                .body(json!({ "sql": sql, "params": params }).to_string())
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp)
        }
    };
    let trick = "SELECT * FROM query_table(CASE WHEN current_query() LIKE 'EXPLAIN%' \
                 THEN 'trips' ELSE $1 END)";
    for (sql, params) in [
        (trick, json!(["secret"])),
        ("SELECT * FROM query_table($1)", json!(["trips"])),
        ("SELECT * FROM query($1)", json!(["SELECT v FROM secret"])),
        ("SELECT count(*), max(v), $1::INT FROM secret", json!([1])),
    ] {
        let (status, resp) = run(sql, params).await;
        let body = json_of(resp).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{sql}"
        );
    }
    let (status, resp) = run("SELECT count(*) FROM trips WHERE id > $1", json!([2])).await;
    assert_eq!(status, 200);
    assert_eq!(read_lines(resp).await.rows(), vec![json!([4])]);
    // Neither DuckDB's hints nor refusals say what exists or what a view reads.
    for sql in [
        "SELECT * FROM secre",
        "SELECT nope FROM trips",
        "SELECT * FROM leak",
    ] {
        let (status, resp) = run(sql, json!([])).await;
        let body = json_of(resp).await;
        assert!(status == 400 || status == 403, "{sql}: {body}");
        let message = body["message"].as_str().unwrap().to_lowercase();
        for leak in ["secret", "\"id\"", "candidate", "did you mean"] {
            assert!(!message.contains(leak), "{sql}: {body}");
        }
    }
}

#[actix_web::test]
async fn the_token_endpoint_issues_only_to_keys_within_bounds() {
    let app = spawn_secure_app("").await;
    let post = |cred: String, tenant: &'static str, body: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .client
                .post(app.url(&format!("/v1/{tenant}/tokens")))
                .bearer_auth(cred)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, json_of(resp).await)
        }
    };
    let (status, v) = post(
        ACME_KEY.into(),
        "acme",
        r#"{"ttl_secs": 60, "tables": ["Trips"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["tables"], json!(["trips"]));
    let exp = v["expires_at"].as_u64().unwrap();
    assert!((now_secs() + 55..=now_secs() + 61).contains(&exp), "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    // The claims are what the response says, signed with the server's secret.
    let claims = TokenSigner::new(SECRET.as_bytes())
        .verify(&token, now_secs())
        .unwrap();
    assert_eq!((claims.sub.as_str(), claims.exp), ("acme", exp));

    for (cred, tenant, body, status, code) in [
        (token.clone(), "acme", "", 403, "access_denied"),
        (ACME_KEY.to_string(), "globex", "", 403, "access_denied"),
        (
            ACME_KEY.to_string(),
            "acme",
            r#"{"ttl_secs": 100000}"#,
            400,
            "invalid_request",
        ),
        (
            ACME_KEY.to_string(),
            "acme",
            r#"{"ttl_secs": 0}"#,
            400,
            "invalid_request",
        ),
        (
            ACME_KEY.to_string(),
            "acme",
            r#"{"tables": ["a;b"]}"#,
            400,
            "invalid_request",
        ),
        (
            ACME_KEY.to_string(),
            "acme",
            r#"{"tenant": "globex"}"#,
            400,
            "invalid_request",
        ),
        (ADMIN_KEY.to_string(), "ghost", "", 404, "tenant_not_found"),
        ("nope".to_string(), "acme", "", 401, "unauthenticated"),
    ] {
        let (got, v) = post(cred, tenant, body).await;
        assert_eq!(
            (got, v["code"].as_str().unwrap()),
            (status, code),
            "{body}: {v}"
        );
    }
    // The admin key issues for any tenant; the default lifetime applies.
    let (status, v) = post(ADMIN_KEY.into(), "globex", "").await;
    assert_eq!(status, 200);
    assert_eq!(v["tenant"], "globex");
    assert!(v["expires_at"].as_u64().unwrap() <= now_secs() + 300);

    // Without a tenants file there is nothing to issue.
    let open = spawn_app_with(|_| {}).await;
    let resp = open
        .client
        .post(open.url("/v1/t/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(json_of(resp).await["code"], "invalid_request");
}

#[actix_web::test]
async fn a_token_that_expires_on_an_open_websocket_stops_new_queries() {
    let app = spawn_secure_app("").await;
    let token = TokenSigner::new(SECRET.as_bytes()).sign(&Claims::new("acme", now_secs(), 2, None));
    let mut ws = ws_connect(&app, "acme", &Cred::Query(token)).await.unwrap();
    let first = ws_query(&mut ws, "a", "SELECT v FROM secret").await;
    assert_eq!(outcome(&first), "=acme-secret");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = ws_query(&mut ws, "b", "SELECT v FROM secret").await;
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0]["query_id"], "b");
    assert_eq!(second[0]["code"], "token_expired");
}

#[actix_web::test]
async fn browsers_may_send_authorization_from_allowed_origins() {
    let app = spawn_secure_app_with("", |c| {
        c.server.cors_allow_origins = vec!["https://dash.example".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/acme/query"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight("https://dash.example").await.unwrap();
    assert_eq!(ok.status(), 204);
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://dash.example");
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    // Another origin gets no allow-origin header: its browser blocks the request.
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

/// DuckDB binds lambdas nested in lambdas in time that doubles per level and cannot be
/// interrupted: deep nesting is refused for everyone before DuckDB binds it; shallow runs.
/// Statements nested past the parse-tree limit are refused too, and the server stays up.
#[actix_web::test]
async fn nested_lambdas_and_deep_trees_are_refused_before_binding() {
    let app = spawn_secure_app("").await;
    let token = issue(&app, "acme", json!({ "tables": ["trips"] })).await;
    let nest = |n: usize| {
        let mut e = "1".to_string();
        for i in 0..n {
            e = format!("list_transform([1], x{i} -> {e})");
        }
        format!("SELECT {e}")
    };
    let post = |cred: String, sql: String| {
        let app = &app;
        async move {
            let resp = tokio::time::timeout(
                Duration::from_secs(60),
                app.client
                    .post(app.url("/v1/acme/query"))
                    .bearer_auth(cred)
                    .body(json!({ "sql": sql }).to_string())
                    .send(),
            )
            .await
            .expect("answered, not stuck binding")
            .unwrap();
            (resp.status().as_u16(), resp)
        }
    };
    for cred in [ACME_KEY.to_string(), token.clone()] {
        let (status, resp) = post(cred.clone(), nest(40)).await;
        let body = json_of(resp).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().contains("lambdas"),
            "{body}"
        );
        let (status, resp) = post(cred.clone(), nest(3)).await;
        assert_eq!(status, 200);
        assert_eq!(read_lines(resp).await.rows(), vec![json!([[[[1]]]])]);
        // Far past DuckDB's own expression limit: refused one way or another, never a crash.
        let deep = format!("SELECT {}1{}", "abs(".repeat(1500), ")".repeat(1500));
        let (status, _) = post(cred.clone(), deep).await;
        assert!((400..500).contains(&status), "{status}");
        let within = format!("SELECT {}1{}", "abs(".repeat(100), ")".repeat(100));
        let (status, resp) = post(cred.clone(), within).await;
        assert_eq!(status, 200);
        assert_eq!(read_lines(resp).await.rows(), vec![json!([1])]);
    }
    let (status, resp) = post(ACME_KEY.into(), "SELECT count(*) FROM trips".into()).await;
    assert_eq!(status, 200);
    assert_eq!(read_lines(resp).await.rows(), vec![json!([7])]);
}
