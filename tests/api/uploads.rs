//! Uploads a hostile client sends: the CSV loader's rejects tables never touch a tenant's
//! datasets named `reject_errors` or `reject_scans`.

use serde_json::{json, Value};

use crate::helpers::{json_of, names, read_lines, spawn_app, TestApp};

async fn put(app: &TestApp, path_query: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/v1/t/datasets/{path_query}")))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    let out = read_lines(app.post("t", &json!({ "sql": sql }).to_string()).await).await;
    assert_eq!(out.last()["type"], "end", "{}", out.raw);
    out.rows()
}

async fn listing(app: &TestApp) -> Value {
    let resp = app
        .client
        .get(app.url("/v1/t/datasets"))
        .send()
        .await
        .unwrap();
    json_of(resp).await
}

/// The CSV reader's rejects tables are the loader's own: datasets named `reject_errors` and
/// `reject_scans` keep their rows through uploads with and without `max_bad_rows`, and
/// `reject_errors` itself takes an upload with a skipped row.
#[actix_web::test]
async fn datasets_named_like_the_rejects_tables_survive() {
    let app = spawn_app().await;
    for (name, csv) in [("reject_errors", "v\n1\n2\n"), ("reject_scans", "v\n10\n")] {
        let r = json_of(put(&app, &format!("{name}?format=csv"), csv).await).await;
        assert_eq!(r["dataset"], name, "{r}");
    }
    assert_eq!(
        rows(&app, "SELECT v FROM reject_errors ORDER BY v").await,
        vec![json!([1]), json!([2])]
    );

    // Line 3 has a column too many.
    let bad = "v,w\n3,a\n4,b,c\n5,d\n";
    let r = json_of(put(&app, "other?format=csv&max_bad_rows=1", bad).await).await;
    assert_eq!(
        (r["rows"].clone(), r["rejected"].clone()),
        (json!(2), json!(1)),
        "{r}"
    );
    assert_eq!(r["rejects"][0]["line"], 3, "{r}");
    let r = json_of(put(&app, "other?format=csv&mode=append&max_bad_rows=1", bad).await).await;
    assert_eq!(r["rejected"], 1, "{r}");
    assert_eq!(
        rows(&app, "SELECT v FROM reject_errors ORDER BY v").await,
        vec![json!([1]), json!([2])]
    );
    assert_eq!(
        rows(&app, "SELECT v FROM reject_scans").await,
        vec![json!([10])]
    );

    // The dataset `reject_errors` itself, with a skipped row.
    let r = json_of(put(&app, "reject_errors?format=csv&max_bad_rows=1", bad).await).await;
    assert_eq!(
        (r["rows"].clone(), r["rejected"].clone()),
        (json!(2), json!(1)),
        "{r}"
    );
    assert_eq!(
        rows(&app, "SELECT v, w FROM reject_errors ORDER BY v").await,
        vec![json!([3, "a"]), json!([5, "d"])]
    );
    // More bad rows than allowed: refused, and the dataset is still the last one loaded.
    let worse = "v,w\n6,a,x\n7,b,y\n";
    let resp = put(
        &app,
        "reject_errors?format=csv&mode=append&max_bad_rows=1",
        worse,
    )
    .await;
    assert_eq!(json_of(resp).await["code"], "invalid_upload");
    assert_eq!(
        rows(&app, "SELECT count(*) FROM reject_errors").await,
        vec![json!([2])]
    );
    assert_eq!(
        rows(&app, "SELECT v FROM reject_scans").await,
        vec![json!([10])]
    );
    assert_eq!(
        names(&listing(&app).await["datasets"]),
        ["other", "people", "reject_errors", "reject_scans"]
    );
}
