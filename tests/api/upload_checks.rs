//! Upload bodies that must change nothing: a gzip or zstd body cut short, with bytes after
//! its end, or corrupt; JSON nested too deep; a record longer than
//! `max_upload_record_bytes`; a Parquet schema nested too deep. Each is a 400, in replace
//! and in append mode, the dataset keeps exactly its rows, no spool file is left, and the
//! server goes on answering. Bodies at each limit still load.

use serde_json::{json, Value};

use crate::datasets::{gzip, put, rows, spool_is_empty, CSV};
use crate::helpers::{json_of, spawn_app, spawn_app_with, TestApp};

/// zstd with a checksum, as the zstd command line writes it.
fn zstd(data: &[u8]) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .unwrap();
    c.compress(data).unwrap()
}

/// Uploads `body` to `dataset` in replace mode, then in append mode: each answer is a 400
/// with `code` and a message without a server path, and afterwards `check` (a query) still
/// gives `expected` and no spool file is left. Returns the last message.
async fn refused_in_both_modes(
    app: &TestApp,
    target: (&str, &str),
    body: &[u8],
    encoding: Option<&str>,
    code: &str,
    (check, expected): (&str, &[Value]),
) -> String {
    let (dataset, format) = target;
    let mut message = String::new();
    for mode in ["replace", "append"] {
        let path = format!("{dataset}?format={format}&mode={mode}");
        let resp = put(app, &path, body.to_vec(), encoding).await;
        let status = resp.status().as_u16();
        let e = json_of(resp).await;
        assert_eq!(
            (status, e["code"].as_str()),
            (400, Some(code)),
            "{mode}: {e}"
        );
        message = e["message"].as_str().unwrap().to_string();
        let dir = app.dir.path().display().to_string();
        assert!(!message.contains(&dir), "{mode}: {e}");
        assert_eq!(rows(app, check).await, expected, "{mode}: {e}");
        assert!(spool_is_empty(app), "{mode}: a spool file was left");
    }
    message
}

/// `put` that must load `n` rows.
async fn loads(app: &TestApp, path: &str, body: Vec<u8>, encoding: Option<&str>, n: u64) {
    let resp = put(app, path, body, encoding).await;
    let status = resp.status().as_u16();
    let r = json_of(resp).await;
    assert_eq!((status, r["rows"].as_u64()), (200, Some(n)), "{path}: {r}");
}

fn scores() -> Vec<Value> {
    vec![
        json!([1, "ada", 9.5]),
        json!([2, "grace", 8.0]),
        json!([3, "edsger", 7.25]),
    ]
}

const SCORES: &str = "SELECT id, name, score FROM s ORDER BY id";

#[actix_web::test]
async fn a_compressed_body_that_does_not_end_cleanly_changes_nothing() {
    let app = spawn_app().await;
    loads(&app, "s?format=csv", CSV.into(), None, 3).await;
    let mut more = String::from("id,name,score\n");
    for i in 10..2010 {
        more.push_str(&format!("{i},n{i},{i}.5\n"));
    }
    for (encoding, whole) in [
        ("gzip", gzip(more.as_bytes())),
        ("zstd", zstd(more.as_bytes())),
    ] {
        let mut flipped = whole.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x5a;
        let bad: [(&str, Vec<u8>); 6] = [
            ("cut in half", whole[..whole.len() / 2].to_vec()),
            ("last byte cut", whole[..whole.len() - 1].to_vec()),
            ("trailing garbage", [&whole[..], b"garbage"].concat()),
            ("a second stream cut", [&whole[..], &whole[..20]].concat()),
            ("corrupt", flipped),
            ("empty", Vec::new()),
        ];
        for (what, body) in bad {
            let message = refused_in_both_modes(
                &app,
                ("s", "csv"),
                &body,
                Some(encoding),
                "invalid_upload",
                (SCORES, &scores()),
            )
            .await;
            assert!(message.contains(encoding), "{encoding}, {what}: {message}");
        }
    }
    // deflate and br are not decoded: refused before anything is read.
    for encoding in ["deflate", "br", "gzip, zstd"] {
        let message = refused_in_both_modes(
            &app,
            ("s", "csv"),
            &gzip(more.as_bytes()),
            Some(encoding),
            "invalid_request",
            (SCORES, &scores()),
        )
        .await;
        assert!(message.contains("gzip, zstd or none"), "{message}");
    }
    // Whole bodies load, concatenated streams too (two gzip members, two zstd frames).
    let tail = "id,name,score\n4,barbara,6\n";
    let two = [gzip(b"id,name,score\n"), gzip(b"4,barbara,6\n")].concat();
    loads(&app, "s?format=csv&mode=append", two, Some("gzip"), 1).await;
    let two = [zstd(b"id,name,score\n5,"), zstd(b"frances,5\n")].concat();
    loads(&app, "s?format=csv&mode=append", two, Some("zstd"), 1).await;
    let mut expected = scores();
    expected.extend([json!([4, "barbara", 6.0]), json!([5, "frances", 5.0])]);
    assert_eq!(rows(&app, SCORES).await, expected);
    loads(&app, "s?format=csv", zstd(tail.as_bytes()), Some("zstd"), 1).await;
    assert_eq!(
        rows(&app, "SELECT * FROM s").await,
        [json!([4, "barbara", 6])]
    );
    assert!(spool_is_empty(&app));
}

/// `{"id":1,"a":[[…1…]]}`: `depth` levels of arrays and objects.
fn nested_line(depth: usize) -> String {
    let (open, close) = ("[".repeat(depth - 1), "]".repeat(depth - 1));
    format!("{{\"id\":9,\"a\":{open}1{close}}}\n")
}

#[actix_web::test]
async fn deep_json_is_refused_before_duckdb_reads_it() {
    let app = spawn_app().await;
    let seed = "{\"id\":1,\"a\":[1]}\n{\"id\":2,\"a\":[2]}\n";
    loads(&app, "j?format=ndjson", seed.into(), None, 2).await;
    let j = [json!([1, [1]]), json!([2, [2]])];
    let check = ("SELECT id, a FROM j ORDER BY id", &j[..]);
    // Nested 100,000 deep (200 KB): once a DuckDB thread's stack overflow; 3,000 deep: minutes
    // of DuckDB's CPU. Plain, then compressed (the check is on the decoded bytes).
    for depth in [100_000, 3_000, 65] {
        let body = format!("{seed}{}", nested_line(depth));
        let m = refused_in_both_modes(
            &app,
            ("j", "ndjson"),
            body.as_bytes(),
            None,
            "invalid_upload",
            check,
        )
        .await;
        assert!(m.contains("line 3") && m.contains("deeper than 64"), "{m}");
    }
    let body = zstd(nested_line(100_000).as_bytes());
    let m = refused_in_both_modes(
        &app,
        ("j", "ndjson"),
        &body,
        Some("zstd"),
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("deeper than 64"), "{m}");
    // A FeatureCollection whose first feature nests 100,000 deep.
    let collection = |features: &str| {
        format!("{{\"type\":\"FeatureCollection\",\"features\":[{features}]}}").into_bytes()
    };
    let point = |name: &str, x: i32| {
        format!(
            "{{\"type\":\"Feature\",\"properties\":{{\"name\":\"{name}\"}},\
             \"geometry\":{{\"type\":\"Point\",\"coordinates\":[{x},2]}}}}"
        )
    };
    let two = format!("{},{}", point("a", 1), point("b", 3));
    loads(&app, "g?format=geojson", collection(&two), None, 2).await;
    let g = [json!(["a", 1.0]), json!(["b", 3.0])];
    let check_g = ("SELECT name, ST_X(geom) FROM g ORDER BY name", &g[..]);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = collection(&deep);
    let m = refused_in_both_modes(
        &app,
        ("g", "geojson"),
        &body,
        None,
        "invalid_upload",
        check_g,
    )
    .await;
    assert!(m.contains("deeper than 64"), "{m}");
    // At the limit, both load: 64 levels of NDJSON, a GeoJSON document 64 deep.
    loads(&app, "j64?format=ndjson", nested_line(64).into(), None, 1).await;
    let value = rows(&app, "SELECT a FROM j64").await;
    let expected: Value =
        serde_json::from_str(&format!("[{}1{}]", "[".repeat(63), "]".repeat(63))).unwrap();
    assert_eq!(value, [expected]);
    // (`properties` holds a value 60 levels deep: the document is 64.)
    let deep_property = format!(
        "{{\"type\":\"Feature\",\"properties\":{{\"name\":\"c\",\"p\":{}0{}}},\
         \"geometry\":{{\"type\":\"Point\",\"coordinates\":[5,2]}}}}",
        "[".repeat(60),
        "]".repeat(60)
    );
    let body = collection(&format!("{two},{deep_property}"));
    loads(&app, "g2?format=geojson", body, None, 3).await;
    assert_eq!(rows(&app, "SELECT 1").await, [json!([1])]);
}

#[actix_web::test]
async fn records_longer_than_the_setting_are_refused() {
    let app = spawn_app_with(|c| c.server.max_upload_record_bytes = 4096).await;
    // NDJSON: a line of 4096 bytes loads, one of 4097 does not.
    let line = |n: usize| format!("{{\"id\":1,\"v\":\"{}\"}}\n", "x".repeat(n));
    assert_eq!(line(4081).len(), 4097);
    loads(&app, "j?format=ndjson", line(4081).into(), None, 1).await;
    let j = [json!([1, 4081])];
    let check = ("SELECT id, length(v) FROM j", &j[..]);
    let body = format!("{}{}", line(10), line(4082));
    let m = refused_in_both_modes(
        &app,
        ("j", "ndjson"),
        body.as_bytes(),
        None,
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("line 2 is longer than 4096 bytes"), "{m}");
    // gzip: the same check on the decoded bytes.
    let m = refused_in_both_modes(
        &app,
        ("j", "ndjson"),
        &gzip(body.as_bytes()),
        Some("gzip"),
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("line 2"), "{m}");
    // CSV: a quoted field's line breaks belong to its record; 4096 bytes load.
    let record = |n: usize| format!("id,text\n7,\"{}\"\n", "abc\n".repeat(n / 4));
    assert_eq!(record(4092).len(), "id,text\n".len() + 4096 + 1);
    loads(&app, "c?format=csv", record(4092).into(), None, 1).await;
    let c = [json!([7, 4092])];
    let check = ("SELECT id, length(text) FROM c", &c[..]);
    let m = refused_in_both_modes(
        &app,
        ("c", "csv"),
        record(4096).as_bytes(),
        None,
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("record 2 is longer than 4096 bytes"), "{m}");
    // GeoJSON: each feature of a FeatureCollection (the whole may be far larger).
    let feature = |name: &str, pad: usize| {
        format!(
            "{{\"type\":\"Feature\",\"properties\":{{\"name\":\"{name}\",\"pad\":\"{}\"}},\
             \"geometry\":{{\"type\":\"Point\",\"coordinates\":[1,2]}}}}",
            "x".repeat(pad)
        )
    };
    let features: Vec<String> = (0..20)
        .map(|i| feature(&format!("f{i:02}"), 3900))
        .collect();
    let body = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
        features.join(",")
    );
    assert!(body.len() > 20 * 4000);
    loads(&app, "g?format=geojson", body.into(), None, 20).await;
    let g = [json!([20, "f00", "f19"])];
    let check = ("SELECT count(*), min(name), max(name) FROM g", &g[..]);
    let body = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{},{}]}}",
        feature("a", 10),
        feature("b", 4100)
    );
    let m = refused_in_both_modes(
        &app,
        ("g", "geojson"),
        body.as_bytes(),
        None,
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("longer than 4096 bytes"), "{m}");
    assert_eq!(rows(&app, "SELECT 1").await, [json!([1])]);
}

/// A Parquet file written by DuckDB: one row, column `c` = `value` (SQL).
fn parquet(app: &TestApp, value: &str) -> Vec<u8> {
    let file = app.dir.path().join("deep.parquet");
    let c = duckdb::Connection::open_in_memory().unwrap();
    c.execute_batch(&format!(
        "COPY (SELECT 1 AS id, {value} AS c) TO '{}' (FORMAT parquet)",
        file.display()
    ))
    .unwrap();
    std::fs::read(&file).unwrap()
}

/// DuckDB 1.5.5 reads Parquet lists nested deep in time that doubles with each level, and at
/// 128 levels fails with an INTERNAL error that invalidates the database: the footer is
/// checked first.
#[actix_web::test]
async fn parquet_schemas_too_deep_are_refused() {
    let app = spawn_app().await;
    let lists = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let structs = |n: usize| format!("{}1{}", "{'a': ".repeat(n), "}".repeat(n));
    loads(&app, "p?format=parquet", parquet(&app, "[1]"), None, 1).await;
    let p = [json!([1, [1]])];
    let check = ("SELECT id, c FROM p", &p[..]);
    let m = refused_in_both_modes(
        &app,
        ("p", "parquet"),
        &parquet(&app, &lists(9)),
        None,
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("more than 8 lists"), "{m}");
    let m = refused_in_both_modes(
        &app,
        ("p", "parquet"),
        &parquet(&app, &structs(32)),
        None,
        "invalid_upload",
        check,
    )
    .await;
    assert!(m.contains("deeper than 32"), "{m}");
    // Compressed, the file is checked all the same.
    let body = zstd(&parquet(&app, &lists(12)));
    refused_in_both_modes(
        &app,
        ("p", "parquet"),
        &body,
        Some("zstd"),
        "invalid_upload",
        check,
    )
    .await;
    // At the limits, they load: 8 lists, 31 structs (32 levels with the leaf).
    loads(&app, "l8?format=parquet", parquet(&app, &lists(8)), None, 1).await;
    let expected: Value = serde_json::from_str(&lists(8)).unwrap();
    assert_eq!(rows(&app, "SELECT c FROM l8").await, [json!([expected])]);
    loads(
        &app,
        "s31?format=parquet",
        parquet(&app, &structs(31)),
        None,
        1,
    )
    .await;
    assert_eq!(rows(&app, "SELECT id FROM s31").await, [json!([1])]);
    assert!(spool_is_empty(&app));
}
