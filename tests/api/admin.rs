//! Provisioning: the admin routes create, list and delete tenants; deleting one ends its
//! queries with `tenant_deleted` and removes its files; admin keys only (with a tenants file),
//! loopback only (without); `admin` is no tenant; an unknown tenant never becomes a file.

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{
    json_of, named, names, read_lines, spawn_app, spawn_secure_app, TestApp, ACME_KEY, ADMIN_KEY,
};

async fn create(app: &TestApp, name: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/v1/admin/tenants"))
        .body(json!({ "name": name }).to_string());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

async fn list(app: &TestApp, key: Option<&str>) -> Value {
    let mut req = app.client.get(app.url("/v1/admin/tenants"));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    json_of(resp).await
}

async fn delete(app: &TestApp, name: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .delete(app.url(&format!("/v1/admin/tenants/{name}")));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

#[actix_web::test]
async fn tenants_are_created_listed_and_deleted() {
    let app = spawn_app().await;
    let resp = create(&app, "acme", None).await;
    assert_eq!(resp.status(), 201);
    let created = json_of(resp).await;
    assert_eq!(
        created,
        json!({"name": "acme", "bytes": created["bytes"], "data_version": 1, "datasets": []})
    );
    assert!(app.dir.path().join("acme.duckdb").is_file());
    let again = create(&app, "acme", None).await;
    assert_eq!(again.status(), 409);
    assert_eq!(json_of(again).await["code"], "tenant_exists");
    for bad in ["admin", "mosaic", "Acme", "../x"] {
        let resp = create(&app, bad, None).await;
        assert_eq!(resp.status(), 400, "{bad}");
        assert_eq!(json_of(resp).await["code"], "invalid_tenant", "{bad}");
    }

    // The new tenant answers queries, with its data version in a header.
    let resp = app.post("acme", r#"{"sql": "SELECT 42 AS x"}"#).await;
    assert_eq!(resp.headers()["x-data-version"], "1");
    assert_eq!(read_lines(resp).await.rows(), vec![json!([42])]);
    // The fixture tenant was put in place by hand: version 0, its table and row count.
    let listed = list(&app, None).await;
    assert_eq!(names(&listed["tenants"]), ["acme", "t"]);
    let t = &listed["tenants"][1];
    assert_eq!(t["data_version"], 0);
    assert_eq!(t["datasets"], json!([{"name": "people", "rows": 3}]));
    assert!(t["bytes"].as_u64().unwrap() > 0);

    // An unknown tenant stays unknown, and never becomes a file; `admin` is no tenant.
    let resp = app.post("nobody", r#"{"sql": "SELECT 1"}"#).await;
    assert_eq!(resp.status(), 404);
    assert!(!app.dir.path().join("nobody.duckdb").exists());
    let resp = app.post("admin", r#"{"sql": "SELECT 1"}"#).await;
    assert_eq!(json_of(resp).await["code"], "invalid_tenant");

    // Deleting ends a running query with `tenant_deleted` and removes the files.
    let resp = app
        .post("acme", r#"{"sql": "SELECT * FROM range(1000000000)"}"#)
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let mut raw = body.next().await.unwrap().unwrap().to_vec();
    let (deleted, rest) = tokio::join!(delete(&app, "acme", None), async {
        while let Some(Ok(chunk)) = body.next().await {
            raw.extend_from_slice(&chunk);
        }
        String::from_utf8(raw).unwrap()
    });
    assert_eq!(deleted.status(), 204);
    let last: Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(last["code"], "tenant_deleted", "{last}");
    assert!(!app.dir.path().join("acme.duckdb").exists());
    assert!(!app.dir.path().join("acme.version").exists());
    let resp = app.post("acme", r#"{"sql": "SELECT 1"}"#).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(delete(&app, "acme", None).await.status(), 404);
    assert_eq!(
        list(&app, None).await["tenants"].as_array().unwrap().len(),
        1
    );
    // And the name can be provisioned again, empty.
    assert_eq!(create(&app, "acme", None).await.status(), 201);
}

#[actix_web::test]
async fn with_a_tenants_file_only_admin_keys_provision_and_its_limits_apply() {
    let app = spawn_secure_app("max_result_rows = 5").await;
    let resp = create(&app, "newco", None).await;
    assert_eq!(resp.status(), 401);
    let resp = create(&app, "newco", Some(ACME_KEY)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(resp).await["code"], "access_denied");
    let resp = delete(&app, "acme", Some(ACME_KEY)).await;
    assert_eq!(resp.status(), 403);
    assert!(app.dir.path().join("acme.duckdb").is_file());

    // Recreated by the admin, acme is empty and keeps its entry's limits (5 rows).
    assert_eq!(delete(&app, "acme", Some(ADMIN_KEY)).await.status(), 204);
    assert_eq!(create(&app, "acme", Some(ADMIN_KEY)).await.status(), 201);
    let listed = list(&app, Some(ADMIN_KEY)).await;
    let acme = named(&listed["tenants"], "acme");
    assert_eq!(acme["datasets"], json!([]));
    let resp = app
        .client
        .post(app.url("/v1/acme/query"))
        .bearer_auth(ACME_KEY)
        .body(r#"{"sql": "SELECT * FROM range(100)"}"#)
        .send()
        .await
        .unwrap();
    let out = read_lines(resp).await;
    assert_eq!(out.rows().len(), 5);
    assert_eq!(out.last()["code"], "limit_exceeded");
}
