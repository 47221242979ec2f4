//! The SQL sandbox: every case of `tests/data/sandbox.tsv` is refused by DuckDB itself (the
//! statement type, its permission checks, the sandbox settings), and afterwards the
//! data is untouched and nothing was written outside the database.

use crate::helpers::spawn_app;

#[actix_web::test]
async fn every_escape_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let mut n = 0;
    for line in crate::helpers::data_cases("sandbox.tsv") {
        let (code, sql) = line.split_once('\t').unwrap();
        let body = serde_json::json!({ "sql": sql }).to_string();
        let resp = app.post("t", &body).await;
        let status = resp.status().as_u16();
        let v: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap_or_default();
        assert_eq!(v["code"], code, "{sql}: {status} {v}");
        let expected = if code == "forbidden" { 403 } else { 400 };
        assert_eq!(status, expected, "{sql}");
        n += 1;
    }
    assert!(n >= 35);
    let people = app
        .query("SELECT count(*) AS n, max(name) AS m FROM people")
        .await;
    assert_eq!(people.data_rows_text(), [r#"[[3,"Grace"]]"#]);
    for path in [
        "/tmp/duckstream-evil.duckdb",
        "/tmp/duckstream-evil.csv",
        "/tmp/duckstream-evil.parquet",
        "/tmp/duckstream-evil-export",
    ] {
        assert!(!std::path::Path::new(path).exists(), "{path} was written");
    }
    // Ordinary read-only queries still work, table functions included, to a clean end.
    let ok = app
        .query("SELECT count(*) FROM range(10) UNION ALL SELECT count(*) FROM duckdb_tables()")
        .await;
    assert_eq!(ok.status, 200, "{}", ok.raw);
    assert_eq!(ok.last()["type"], "end", "{}", ok.raw);
    let mut counts: Vec<i64> = ok.rows().iter().map(|r| r[0].as_i64().unwrap()).collect();
    counts.sort();
    assert_eq!(
        counts,
        [1, 10],
        "one table (people), ten numbers: {}",
        ok.raw
    );
}
