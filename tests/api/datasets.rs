//! Uploads: each format (CSV, NDJSON, Parquet, GeoJSON), plain and compressed (gzip, zstd),
//! replace and append, bad rows with and without `max_bad_rows`, an over-quota and a
//! truncated body (nothing kept, no spool file left), a replace under concurrent readers that
//! see the old or the new table, the listing with geometry columns and data versions, delete,
//! and who may write.

use std::io::Write;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    issue, json_of, named, names, read_lines, spawn_app, spawn_app_with, spawn_secure_app, TestApp,
    ACME_KEY,
};

/// [`put`], and the JSON of its answer.
async fn put_json(app: &TestApp, path_query: &str, body: Vec<u8>, encoding: Option<&str>) -> Value {
    json_of(put(app, path_query, body, encoding).await).await
}

pub(crate) async fn put(
    app: &TestApp,
    path_query: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .client
        .put(app.url(&format!("/v1/t/datasets/{path_query}")))
        .body(body);
    if let Some(e) = encoding {
        req = req.header("content-encoding", e);
    }
    req.send().await.unwrap()
}

pub(crate) async fn rows(app: &TestApp, sql: &str) -> Vec<Value> {
    read_lines(app.post("t", &json!({ "sql": sql }).to_string()).await)
        .await
        .rows()
}

/// `GET /v1/t/datasets`, as JSON.
async fn listing(app: &TestApp) -> Value {
    json_of(
        app.client
            .get(app.url("/v1/t/datasets"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub(crate) fn spool_is_empty(app: &TestApp) -> bool {
    let dir = app.dir.path().join(".spool/t");
    std::fs::read_dir(&dir)
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) const CSV: &str = "id,name,score\n1,ada,9.5\n2,grace,8\n3,edsger,7.25\n";

#[actix_web::test]
async fn every_format_loads_plain_and_compressed_and_is_listed() {
    let app = spawn_app().await;
    let resp = put(&app, "scores?format=csv", CSV.into(), None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-data-version"], "1");
    let r = json_of(resp).await;
    assert_eq!(
        (
            r["dataset"].clone(),
            r["rows"].clone(),
            r["rejected"].clone()
        ),
        (json!("scores"), json!(3), json!(0))
    );
    assert_eq!(r["version"], 1);
    assert_eq!(r["bytes"], CSV.len());
    assert_eq!(
        rows(&app, "SELECT id, name, score FROM scores ORDER BY id").await,
        vec![
            json!([1, "ada", 9.5]),
            json!([2, "grace", 8.0]),
            json!([3, "edsger", 7.25])
        ]
    );

    // gzip and zstd bodies, the format from Content-Type or the query string.
    let resp = app
        .client
        .put(app.url("/v1/t/datasets/gz"))
        .header("content-type", "text/csv")
        .header("content-encoding", "gzip")
        .body(gzip(CSV.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["rows"], 3);
    let ndjson = "{\"k\":\"a\",\"v\":1}\n{\"k\":\"b\",\"v\":2}\n";
    let z = zstd::bulk::compress(ndjson.as_bytes(), 3).unwrap();
    let r = put_json(&app, "events?format=ndjson", z, Some("zstd")).await;
    assert_eq!(r["rows"], 2, "{r}");
    assert_eq!(
        rows(&app, "SELECT sum(v) FROM events").await,
        vec![json!([3])]
    );

    // Parquet, written by DuckDB itself.
    let pq = app.dir.path().join("in.parquet");
    let c = duckdb::Connection::open_in_memory().unwrap();
    c.execute_batch(&format!(
        "COPY (SELECT range AS n, range * 2 AS twice FROM range(1000)) TO '{}' (FORMAT parquet)",
        pq.display()
    ))
    .unwrap();
    let r = put_json(
        &app,
        "numbers?format=parquet",
        std::fs::read(&pq).unwrap(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 1000, "{r}");
    assert_eq!(
        rows(&app, "SELECT sum(twice) FROM numbers").await,
        vec![json!([999000])]
    );

    // GeoJSON: features' properties become columns, their geometry a GEOMETRY column.
    let geojson = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
        {"type": "Feature", "properties": {"name": "b"}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}
    ]});
    let r = put_json(
        &app,
        "shapes?format=geojson",
        geojson.to_string().into(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 2, "{r}");
    let out = rows(&app, "SELECT name, geom FROM shapes ORDER BY name").await;
    assert_eq!(out[0][1]["type"], "Point");
    // Its geometry column has an R-tree index, which a bounding-box filter uses.
    assert_eq!(
        rows(
            &app,
            "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'shapes'"
        )
        .await,
        vec![json!(["shapes_geom_rtree"])]
    );
    let plan = rows(
        &app,
        "EXPLAIN SELECT name FROM shapes WHERE ST_Intersects(geom, ST_MakeEnvelope(0.5, 1.5, 1.5, 2.5))",
    )
    .await;
    assert!(
        plan.iter().any(|r| r.to_string().contains("RTREE")),
        "{plan:?}"
    );
    assert_eq!(
        rows(&app, "SELECT name FROM shapes WHERE ST_Intersects(geom, ST_MakeEnvelope(0.5, 1.5, 1.5, 2.5))").await,
        vec![json!(["a"])]
    );
    assert_eq!(out[1][1]["coordinates"], json!([[0.0, 0.0], [1.0, 1.0]]));

    // Every format plain and in both encodings gives the same rows.
    let bodies: [(&str, Vec<u8>, usize); 4] = [
        ("csv", CSV.into(), 3),
        ("ndjson", ndjson.into(), 2),
        ("parquet", std::fs::read(&pq).unwrap(), 1000),
        ("geojson", geojson.to_string().into(), 2),
    ];
    for (format, body, n) in bodies {
        for (encoding, encoded) in [
            (None, body.clone()),
            (Some("gzip"), gzip(&body)),
            (Some("zstd"), zstd::bulk::compress(&body, 3).unwrap()),
        ] {
            let name = format!("{format}_{}", encoding.unwrap_or("plain"));
            let r = put_json(&app, &format!("{name}?format={format}"), encoded, encoding).await;
            assert_eq!(
                (r["rows"].clone(), r["bytes"].clone()),
                (json!(n), json!(body.len())),
                "{name}: {r}"
            );
            assert_eq!(
                rows(&app, &format!("SELECT count(*) FROM {name}")).await,
                vec![json!([n])]
            );
        }
        for encoding in ["plain", "gzip", "zstd"] {
            let resp = app
                .client
                .delete(app.url(&format!("/v1/t/datasets/{format}_{encoding}")))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
        }
    }

    // The listing: columns, geometry columns, rows, the data version (5 writes, then 12
    // uploads and 12 deletes).
    let resp = app
        .client
        .get(app.url("/v1/t/datasets"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-data-version"], "29");
    let listed = json_of(resp).await;
    let shapes = named(&listed["datasets"], "shapes");
    assert_eq!(shapes["rows"], 2);
    assert_eq!(shapes["geometry_columns"][0]["name"], "geom");
    // GeoJSON's coordinates are WGS 84 (RFC 7946): the column says so.
    assert_eq!(shapes["geometry_columns"][0]["crs"], "EPSG:4326");
    assert_eq!(
        names(&listed["datasets"]),
        ["events", "gz", "numbers", "people", "scores", "shapes"]
    );
    assert!(spool_is_empty(&app));
}

#[actix_web::test]
async fn append_bad_rows_quota_and_truncated_bodies() {
    let app = spawn_app_with(|c| c.limits.max_upload_bytes = Some(4096)).await;
    put(&app, "s?format=csv", CSV.into(), None).await;
    let r = put_json(
        &app,
        "s?format=csv&mode=append",
        "id,name,score\n4,barbara,6\n".into(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 1);
    assert_eq!(rows(&app, "SELECT count(*) FROM s").await, vec![json!([4])]);

    // A bad row fails the load by default (the line is named), and the table is untouched.
    let bad = "id,name,score\n5,x,1\n6,y,not-a-number\n";
    let resp = put(&app, "s?format=csv&mode=append", bad.into(), None).await;
    assert_eq!(resp.status(), 400);
    let e = json_of(resp).await;
    assert_eq!(e["code"], "invalid_upload");
    assert!(e["message"].as_str().unwrap().contains("line"), "{e}");
    assert!(
        !e["message"]
            .as_str()
            .unwrap()
            .contains(&app.dir.path().display().to_string()),
        "{e}"
    );
    assert_eq!(rows(&app, "SELECT count(*) FROM s").await, vec![json!([4])]);
    // With max_bad_rows, it is skipped and reported with its line.
    let r = put_json(
        &app,
        "s?format=csv&mode=append&max_bad_rows=1",
        bad.into(),
        None,
    )
    .await;
    assert_eq!(
        (r["rows"].clone(), r["rejected"].clone()),
        (json!(1), json!(1)),
        "{r}"
    );
    assert_eq!(r["rejects"][0]["line"], 3, "{r}");
    // More bad rows than allowed: nothing loaded.
    let worse = "id,name,score\n7,x,a\n8,y,b\n";
    let resp = put(
        &app,
        "s?format=csv&mode=append&max_bad_rows=1",
        worse.into(),
        None,
    )
    .await;
    assert_eq!(json_of(resp).await["code"], "invalid_upload");
    assert_eq!(rows(&app, "SELECT count(*) FROM s").await, vec![json!([5])]);

    // Over the quota: 413, nothing kept.
    let big = format!("id\n{}", "1\n".repeat(3000));
    let resp = put(&app, "big?format=csv", big.into(), None).await;
    assert_eq!(resp.status(), 413);
    assert!(spool_is_empty(&app));
    let listed = listing(&app).await;
    assert!(listed["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != "big"));

    // A body cut short (the client promised more and hung up): nothing kept either.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"PUT /v1/t/datasets/cut?format=csv HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nid\n1\n2\n")
        .await
        .unwrap();
    tcp.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tcp.read_to_end(&mut answer),
    )
    .await;
    for _ in 0..50 {
        if spool_is_empty(&app) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(spool_is_empty(&app));
    let listed = listing(&app).await;
    assert!(listed["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"] != "cut"));

    // Delete: 204, the version moves, then 404.
    let before = listed["data_version"].as_u64().unwrap();
    let resp = app
        .client
        .delete(app.url("/v1/t/datasets/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["x-data-version"],
        (before + 1).to_string().as_str()
    );
    let resp = app
        .client
        .delete(app.url("/v1/t/datasets/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(resp).await["code"], "dataset_not_found");
}

#[actix_web::test]
async fn a_replace_is_atomic_for_concurrent_readers() {
    let app = spawn_app().await;
    let csv = |n: usize| {
        let mut s = String::from("id\n");
        for i in 0..n {
            s.push_str(&format!("{i}\n"));
        }
        s
    };
    put(&app, "r?format=csv", csv(1000).into(), None).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (client, url, stop) = (app.client.clone(), app.url("/v1/t/query"), stop.clone());
            actix_web::rt::spawn(async move {
                let mut seen = std::collections::BTreeSet::new();
                while !stop.is_cancelled() {
                    let resp = client
                        .post(&url)
                        .body(r#"{"sql": "SELECT count(*) FROM r"}"#)
                        .send()
                        .await
                        .unwrap();
                    let out = read_lines(resp).await;
                    assert_eq!(out.status, 200, "{}", out.raw);
                    seen.insert(out.rows()[0][0].as_u64().unwrap());
                }
                seen
            })
        })
        .collect();
    for round in 0..6 {
        let n = if round % 2 == 0 { 2000 } else { 1000 };
        let r = put_json(&app, "r?format=csv", csv(n).into(), None).await;
        assert_eq!(r["rows"], n);
    }
    stop.cancel();
    for r in readers {
        let seen = r.await.unwrap();
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|n| *n == 1000 || *n == 2000), "{seen:?}");
    }
    // The readers' text is kept prepared on the pooled connections: after a replace with
    // other columns, the same text reads the new table (DuckDB binds it again).
    let first_two = "SELECT * FROM r ORDER BY id LIMIT 2";
    assert_eq!(rows(&app, first_two).await, [json!([0]), json!([1])]);
    let r = put_json(
        &app,
        "r?format=csv",
        "id,name\n7,seven\n8,eight\n".into(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 2);
    assert_eq!(rows(&app, "SELECT count(*) FROM r").await, [json!([2])]);
    assert_eq!(
        rows(&app, first_two).await,
        [json!([7, "seven"]), json!([8, "eight"])]
    );
}

/// An append is seen by the next query, also by one whose text the connection kept
/// prepared (one pooled connection: the same one answers every query). DuckDB binds a kept
/// statement again after catalog changes only, and the kept count went on answering 3, then
/// was cached as the new version's answer: kept statements are planned again after a write.
#[actix_web::test]
async fn an_append_is_seen_by_a_query_the_connection_kept_prepared() {
    let app = spawn_app_with(|c| c.limits.pool_size = Some(1)).await;
    let count = "SELECT count(*) FROM people";
    assert_eq!(rows(&app, count).await, [json!([3])]);
    let r = put_json(
        &app,
        "people?format=csv&mode=append",
        b"id,name\n4,Linus\n".to_vec(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 1, "{r}");
    assert_eq!(rows(&app, count).await, [json!([4])]);
}

#[actix_web::test]
async fn only_keys_write_and_tokens_never() {
    let app = spawn_secure_app("").await;
    let upload = |auth: Option<String>| {
        let mut req = app
            .client
            .put(app.url("/v1/acme/datasets/up?format=csv"))
            .body(CSV);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        req.send()
    };
    assert_eq!(upload(None).await.unwrap().status(), 401);
    let token = issue(&app, "acme", json!({})).await;
    let resp = upload(Some(token)).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(json_of(resp).await["code"], "access_denied");
    let resp = upload(Some(ACME_KEY.into())).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(json_of(resp).await["rows"], 3);
    // A token limited to `trips` lists only `trips`: other tables' names stay hidden.
    let limited = issue(&app, "acme", json!({"tables": ["trips"]})).await;
    let listed = json_of(
        app.client
            .get(app.url("/v1/acme/datasets"))
            .bearer_auth(limited)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(names(&listed["datasets"]), ["trips"]);
}

/// `kill -9` while an upload's body arrives, and while DuckDB loads it: after a restart the
/// dataset is the old one or the new one, never partial, and no spool file is left.
#[actix_web::test]
async fn a_kill_during_an_upload_keeps_the_old_or_the_new_dataset() {
    use crate::helpers::ServerProcess;
    const OLD: u64 = 1000;
    const NEW: u64 = 3_000_000;
    let csv = |n: u64| {
        let mut s = String::with_capacity(n as usize * 8 + 3);
        s.push_str("id\n");
        for i in 0..n {
            s.push_str(&i.to_string());
            s.push('\n');
        }
        s.into_bytes()
    };
    let (old, new) = (csv(OLD), csv(NEW));
    let mut server = ServerProcess::start(&[]);
    let r = put_json(&server.app, "r?format=csv", old, None).await;
    assert_eq!(r["rows"], OLD);
    let count = |app: &TestApp| {
        let (client, url) = (app.client.clone(), app.url("/v1/t/query"));
        async move {
            let resp = client
                .post(url)
                .body(r#"{"sql": "SELECT count(*) FROM r"}"#)
                .send()
                .await
                .unwrap();
            read_lines(resp).await.rows()[0][0].as_u64().unwrap()
        }
    };
    for point in ["mid-body", "loading"] {
        let addr = server.app.base.trim_start_matches("http://").to_string();
        let spool = server.app.dir.path().join(".spool/t");
        let body = new.clone();
        let sender = actix_web::rt::spawn(async move {
            let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "PUT /v1/t/datasets/r?format=csv HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            tcp.write_all(head.as_bytes()).await.unwrap();
            let half = body.len() / 2;
            let _ = tcp.write_all(&body[..half]).await;
            if point == "loading" {
                let _ = tcp.write_all(&body[half..]).await;
            }
            // Hold the socket open until the server dies.
            let mut sink = Vec::new();
            let _ = tcp.read_to_end(&mut sink).await;
        });
        // Wait until the spool file holds half the body, or all of it (then DuckDB loads it).
        let want = if point == "loading" {
            new.len() as u64
        } else {
            new.len() as u64 / 4
        };
        let mut reached = false;
        for _ in 0..300 {
            let size = std::fs::read_dir(&spool)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .and_then(|e| e.metadata().ok())
                .map(|m| m.len())
                .unwrap_or(0);
            if size >= want {
                reached = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(reached, "{point}: the upload never reached the spool");
        let dir = server.kill();
        let _ = sender.await;
        server = ServerProcess::start_in(dir, &[]);
        let n = count(&server.app).await;
        assert!(n == OLD || n == NEW, "{point}: {n} rows after a kill");
        // (The tenant's spool directory exists again once it is opened, but empty.)
        assert!(spool_is_empty(&server.app), "{point}: spool left behind");
    }
    // And the server still takes a whole upload afterwards.
    let r = put_json(&server.app, "r?format=csv", new, None).await;
    assert_eq!(r["rows"], NEW);
}

/// `duckstream load TENANT DATASET FILE`: the same load offline, a missing tenant provisioned;
/// then the server serves it.
#[actix_web::test]
async fn the_load_command_loads_offline() {
    use crate::helpers::{duckstream_command, ServerProcess};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scores.csv");
    std::fs::write(&file, CSV).unwrap();
    let run = |extra: &[&str]| {
        duckstream_command(dir.path())
            .args(["--demo", "false", "load", "ops", "scores"])
            .arg(&file)
            .args(extra)
            .output()
            .unwrap()
    };
    // The result is the last line (logs go to stdout too).
    let result = |out: &std::process::Output| -> Value {
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    };
    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = result(&out);
    assert_eq!(
        (r["rows"].clone(), r["version"].clone()),
        (json!(3), json!(2))
    );
    let out = run(&["--mode", "append"]);
    let r = result(&out);
    assert_eq!(r["version"], 3);
    let bad = run(&["--format", "xls"]);
    assert!(!bad.status.success());
    let server = ServerProcess::start_in(dir, &[]);
    let resp = server
        .app
        .post("ops", r#"{"sql": "SELECT count(*), sum(id) FROM scores"}"#)
        .await;
    assert_eq!(resp.headers()["x-data-version"], "3");
    assert_eq!(read_lines(resp).await.rows(), vec![json!([6, 12])]);
}

/// WKT text columns the client names become GEOMETRY (with an R-tree), and stream as GeoJSON;
/// a value that is no geometry fails the load; a name that is no column is refused.
#[actix_web::test]
async fn named_wkt_columns_become_geometry() {
    let app = spawn_app().await;
    let csv = "id,shape\n1,POINT (1 2)\n2,\"LINESTRING (0 0, 1 1)\"\n";
    let r = put_json(
        &app,
        "wkt?format=csv&geometry_columns=shape",
        csv.into(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 2, "{r}");
    let out = rows(&app, "SELECT shape FROM wkt ORDER BY id").await;
    assert_eq!(
        out[0][0],
        json!({"type": "Point", "coordinates": [1.0, 2.0]})
    );
    let listed = listing(&app).await;
    let wkt = named(&listed["datasets"], "wkt");
    assert_eq!(wkt["geometry_columns"][0]["name"], "shape");
    assert_eq!(
        rows(
            &app,
            "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'wkt'"
        )
        .await,
        vec![json!(["wkt_shape_rtree"])]
    );
    let bad = "id,shape\n1,not a geometry\n";
    let resp = put(
        &app,
        "wkt?format=csv&geometry_columns=shape",
        bad.into(),
        None,
    )
    .await;
    assert_eq!(json_of(resp).await["code"], "invalid_upload");
    assert_eq!(
        rows(&app, "SELECT count(*) FROM wkt").await,
        vec![json!([2])]
    );
    let resp = put(
        &app,
        "w2?format=csv&geometry_columns=nope",
        csv.into(),
        None,
    )
    .await;
    let e = json_of(resp).await;
    assert_eq!(e["code"], "invalid_upload");
    assert!(e["message"].as_str().unwrap().contains("nope"), "{e}");
}

/// Two uploads to one dataset at once are serialised: both succeed, one after the other
/// (distinct versions), and the table is whole: one or the other, never a mix.
#[actix_web::test]
async fn concurrent_uploads_to_one_dataset_are_serialised() {
    let app = spawn_app().await;
    let csv = |n: usize, v: usize| {
        let mut s = String::from("id,v\n");
        for i in 0..n {
            s.push_str(&format!("{i},{v}\n"));
        }
        s.into_bytes()
    };
    let (a, b) = tokio::join!(
        put(&app, "c?format=csv", csv(50_000, 1), None),
        put(&app, "c?format=csv", csv(70_000, 2), None)
    );
    let (a, b) = (json_of(a).await, json_of(b).await);
    let mut versions = [
        a["version"].as_u64().unwrap(),
        b["version"].as_u64().unwrap(),
    ];
    versions.sort();
    assert_eq!(versions, [1, 2], "{a} {b}");
    let out = rows(&app, "SELECT count(*), min(v), max(v) FROM c").await;
    assert!(
        out == vec![json!([50000, 1, 1])] || out == vec![json!([70000, 2, 2])],
        "{out:?}"
    );
}

/// GeoParquet (written by DuckDB with spatial): its geometry column is GEOMETRY after upload.
#[actix_web::test]
async fn geoparquet_geometries_arrive_as_geometry() {
    let app = spawn_app().await;
    let file = app.dir.path().join("in.parquet");
    let c = duckdb::Connection::open_in_memory().unwrap();
    c.execute_batch(&format!(
        "LOAD '{}'; COPY (SELECT 1 AS id, ST_Point(4.89, 52.37) AS geom) TO '{}' (FORMAT parquet)",
        crate::helpers::extension_repository()
            .join("v1.5.5/linux_amd64/spatial.duckdb_extension")
            .display(),
        file.display()
    ))
    .unwrap();
    let r = put_json(
        &app,
        "places?format=geoparquet",
        std::fs::read(&file).unwrap(),
        None,
    )
    .await;
    assert_eq!(r["rows"], 1, "{r}");
    let listed = listing(&app).await;
    let places = named(&listed["datasets"], "places");
    assert_eq!(places["geometry_columns"][0]["name"], "geom", "{places}");
    assert_eq!(
        rows(&app, "SELECT geom FROM places").await,
        vec![json!([{"type": "Point", "coordinates": [4.89, 52.37]}])]
    );
}

/// With `Accept: application/x-ndjson` the answer streams `progress` lines while DuckDB loads,
/// then the `result` line; a failed load ends with an `error` line instead.
#[actix_web::test]
async fn progress_lines_then_the_result() {
    let app = spawn_app().await;
    let mut body = String::from("id\n");
    for i in 0..300_000 {
        body.push_str(&format!("{i}\n"));
    }
    let send = |body: String| {
        app.client
            .put(app.url("/v1/t/datasets/p?format=csv"))
            .header("accept", "application/x-ndjson")
            .body(body)
            .send()
    };
    let resp = send(body).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let out = read_lines(resp).await;
    let kinds = out.kinds();
    assert!(
        kinds.len() >= 2 && kinds[..kinds.len() - 1].iter().all(|k| *k == "progress"),
        "{kinds:?}"
    );
    assert_eq!(out.lines[0]["phase"], "loading");
    assert_eq!(out.last()["type"], "result");
    assert_eq!(out.last()["rows"], 300_000);
    // Not Parquet at all: DuckDB's reader refuses it while loading.
    let bad = app
        .client
        .put(app.url("/v1/t/datasets/p?format=parquet"))
        .header("accept", "application/x-ndjson")
        .body("not parquet")
        .send()
        .await
        .unwrap();
    let out = read_lines(bad).await;
    assert_eq!(out.last()["type"], "error");
    assert_eq!(out.last()["code"], "invalid_upload");
}
