//! The SQL sandbox over every transport ([`crate::transports`]): every case of
//! `tests/data/sandbox.tsv` is refused with its code (and, for a function, a message naming
//! it), and afterwards the data is untouched and nothing was written outside the database;
//! every case of `tests/data/allowed.tsv` still answers its values; a Mosaic `exec` with one
//! refused statement runs none of them; and no answer, error or result, names a server path.
//!
//! The case suites collect every wrong answer before failing, so that one run lists them all.

use serde_json::Value;

use crate::helpers::{data_cases, spawn_app, Store, TestApp};
use crate::transports::{as_exec, Answer, Clients, Via};

/// A statement the sandbox must refuse.
struct Refusal {
    code: String,
    sql: String,
    /// The message names one of these (lower case); empty: not checked.
    names: Vec<String>,
}

fn refusals() -> Vec<Refusal> {
    data_cases("sandbox.tsv")
        .iter()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(
                cols.get(2) != cols.get(1),
                "{line}: a lake column only where it differs"
            );
            let (code, sql, names) = match cols[..] {
                [code, sql] => (code, sql, ""),
                [code, sql, names] => (code, sql, names),
                _ => panic!("bad case line {line}"),
            };
            Refusal {
                code: code.to_string(),
                sql: sql.to_string(),
                names: names
                    .split('|')
                    .filter(|n| !n.is_empty())
                    .map(String::from)
                    .collect(),
            }
        })
        .collect()
}

/// What is wrong with `a` as the refusal of `case`, if anything.
fn refusal_problem(via: Via, a: &Answer, case: &Refusal) -> Option<String> {
    let status = if case.code == "forbidden" { 403 } else { 400 };
    let status = via.has_status().then_some(status);
    let named = case.names.is_empty() || case.names.iter().any(|n| a.message.contains(n.as_str()));
    if a.status == status && a.code.as_deref() == Some(case.code.as_str()) && named {
        return None;
    }
    Some(format!(
        "{via:?} {}\n    got {}\n    want {status:?} {} naming {:?}",
        case.sql,
        a.summary(),
        case.code,
        case.names
    ))
}

#[actix_web::test]
async fn every_escape_is_refused_over_every_transport_and_nothing_changes() {
    every_escape_is_refused(&spawn_app().await).await;
}

/// Sends every case of `sandbox.tsv` over every transport to tenant `t` of `app` (which holds
/// the `people` rows of the fixture), then checks that nothing changed. Also run on a lake
/// tenant (`tests/api/lake.rs`).
pub async fn every_escape_is_refused(app: &TestApp) {
    let mut clients = Clients::open(app, "t").await;
    let cases = refusals();
    assert!(cases.len() >= 190, "only {} cases", cases.len());
    let mut problems = Vec::new();
    let mut answers = 0;
    for case in &cases {
        for via in Via::QUERIES {
            let a = clients.ask(via, &case.sql).await;
            problems.extend(refusal_problem(via, &a, case));
            answers += 1;
        }
    }
    // Then as Mosaic's pre-aggregation, after the rest (a derived table would be listed by the
    // catalog cases), each under a name of its own.
    for (i, case) in cases.iter().enumerate() {
        for (via, suffix) in [(Via::ExecRest, "r"), (Via::ExecSocket, "s")] {
            let Some(exec) = as_exec(&case.sql, &format!("x{i}{suffix}")) else {
                continue;
            };
            let a = clients.ask(via, &exec).await;
            problems.extend(refusal_problem(via, &a, case));
            answers += 1;
        }
    }
    problems.extend(untouched(&mut clients).await);
    assert!(
        problems.is_empty(),
        "{} of {answers} answers were wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// What is wrong with the server's state after the refusals: its data, files outside the
/// database, derived tables, an ordinary query.
async fn untouched(clients: &mut Clients<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |what: &str, a: Answer, rows: &str| {
        let got = Value::Array(a.rows.clone()).to_string();
        if a.code.is_some() || got != rows {
            problems.push(format!("{what}: {} {got}, want {rows}", a.summary()));
        }
    };
    let people = "SELECT count(*) AS n, max(name) AS m FROM people";
    expect(
        "people",
        clients.ask(Via::HttpPost, people).await,
        r#"[[3,"Grace"]]"#,
    );
    let derived = "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'mosaic'";
    expect(
        "derived tables",
        clients.ask(Via::HttpPost, derived).await,
        "[[0]]",
    );
    // Ordinary read-only queries still work, table functions included.
    let ok = "SELECT count(*) FROM range(10) UNION ALL SELECT count(*) FROM duckdb_tables() \
              WHERE database_name <> 'mosaic' ORDER BY 1";
    expect("ordinary", clients.ask(Via::Ws, ok).await, "[[1],[10]]");
    for path in [
        "/tmp/duckstream-evil.duckdb",
        "/tmp/duckstream-evil.csv",
        "/tmp/duckstream-evil.parquet",
        "/tmp/duckstream-evil-export",
    ] {
        if std::path::Path::new(path).exists() {
            problems.push(format!("{path} was written"));
        }
    }
    problems
}

/// Numbers as `f64` (a JSON `1` and `1.0` are the same value here), everything else as is.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Number(n) => serde_json::json!(n.as_f64()),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `got` holds the rows `want` does, in any order, each checked on its first columns.
fn same_rows(got: &[Value], want: &[Value]) -> bool {
    let width = want.first().and_then(Value::as_array).map_or(0, Vec::len);
    let key = |rows: Vec<Value>| {
        let mut keys: Vec<String> = rows.iter().map(|r| normalized(r).to_string()).collect();
        keys.sort();
        keys
    };
    let got = got
        .iter()
        .map(|r| {
            Value::Array(
                r.as_array()
                    .into_iter()
                    .flatten()
                    .take(width)
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    key(got) == key(want.to_vec())
}

/// The cases of `tests/data/allowed.tsv`: a statement and the rows it answers on `store` (the
/// third column's, where a lake tenant's differ).
fn allowed(store: Store) -> Vec<(String, Vec<Value>)> {
    data_cases("allowed.tsv")
        .iter()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(
                cols.get(2) != cols.get(1),
                "{line}: a lake column only where it differs"
            );
            let rows = match (&cols[..], store) {
                ([_, rows], _) | ([_, rows, _], Store::Local) | ([_, _, rows], Store::Lake) => rows,
                _ => panic!("bad case line {line}"),
            };
            let rows: Value = serde_json::from_str(rows).unwrap_or_else(|e| panic!("{line}: {e}"));
            (cols[0].to_string(), rows.as_array().unwrap().clone())
        })
        .collect()
}

/// What is wrong with `a` as the answer to an allowed `sql`, if anything.
fn allowed_problem(via: Via, a: &Answer, sql: &str, want: &[Value]) -> Option<String> {
    let status_ok = a.status.is_none_or(|s| s == 200);
    let rows_ok = if via.is_arrow() {
        a.arrow_rows == want.len()
    } else {
        same_rows(&a.rows, want)
    };
    if status_ok && a.code.is_none() && rows_ok {
        return None;
    }
    let got = Value::Array(a.rows.clone());
    let want = Value::Array(want.to_vec());
    Some(format!(
        "{via:?} {sql}\n    got {} {got}\n    want {want}",
        a.summary()
    ))
}

#[actix_web::test]
async fn allowed_queries_answer_their_values_over_every_transport() {
    allowed_queries_answer_their_values(&spawn_app().await, Store::Local).await;
}

/// Sends every case of `allowed.tsv` over every transport to tenant `t` of `app` (the
/// fixture's `people`, on `store`), and derives each lone SELECT with Mosaic's exec. Also run
/// on a lake tenant (`tests/api/lake.rs`).
pub async fn allowed_queries_answer_their_values(app: &TestApp, store: Store) {
    let mut clients = Clients::open(app, "t").await;
    let cases = allowed(store);
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut problems = Vec::new();
    for (sql, want) in &cases {
        for via in Via::QUERIES {
            let a = clients.ask(via, sql).await;
            problems.extend(allowed_problem(via, &a, sql, want));
        }
    }
    // Derived by Mosaic's exec, read back, and cleared again (the catalog cases list tables).
    for (i, (sql, want)) in cases.iter().enumerate() {
        for via in Via::EXECS {
            let Some(exec) = as_exec(sql, &format!("a{i}")) else {
                continue;
            };
            problems.extend(derived_problem(&mut clients, via, &exec, i, want).await);
        }
    }
    assert!(
        problems.is_empty(),
        "{} wrong answers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Derives table `a{i}` with `exec`, reads it back and clears the scratch space.
async fn derived_problem(
    clients: &mut Clients<'_>,
    via: Via,
    exec: &str,
    i: usize,
    want: &[Value],
) -> Option<String> {
    let made = clients.ask(via, exec).await;
    if made.code.is_some() {
        return Some(format!("{via:?} {exec}\n    got {}", made.summary()));
    }
    let read = format!("SELECT * FROM mosaic.\"a{i}\"");
    let a = clients.ask(Via::HttpPost, &read).await;
    let problem = allowed_problem(via, &a, exec, want);
    let clear = "DROP SCHEMA IF EXISTS \"mosaic\" CASCADE";
    let cleared = clients.ask(Via::ExecRest, clear).await;
    assert!(cleared.code.is_none(), "{}", cleared.summary());
    problem
}

/// `CREATE TABLE IF NOT EXISTS "mosaic"."<name>" AS <select>`, statements joined by `;`.
fn exec_of(tables: &[(&str, &str)]) -> String {
    tables
        .iter()
        .map(|(name, select)| as_exec(select, name).unwrap())
        .collect::<Vec<_>>()
        .join(";\n")
}

#[actix_web::test]
async fn a_mosaic_exec_with_one_refused_statement_runs_none_of_them() {
    let app = spawn_app().await;
    let mut clients = Clients::open(&app, "t").await;
    let bad = "SELECT current_setting('temp_directory') AS x";
    // Control: an exec whose statements are all fine makes every table.
    let fine = exec_of(&[("ok1", "SELECT 1 AS x"), ("ok2", "SELECT 2 AS x")]);
    let made = clients.ask(Via::ExecRest, &fine).await;
    assert!(made.code.is_none(), "{}", made.summary());
    let read = clients.ask(Via::HttpPost, "SELECT x FROM mosaic.ok2").await;
    assert_eq!(
        read.rows,
        vec![serde_json::json!([2])],
        "{}",
        read.summary()
    );
    for (via, first, then) in [(Via::ExecRest, "r1", "r2"), (Via::ExecSocket, "s1", "s2")] {
        // The refused statement second, and in the middle of three.
        for exec in [
            exec_of(&[(first, "SELECT 1 AS x"), ("bad", bad)]),
            format!(
                "CREATE SCHEMA IF NOT EXISTS \"mosaic\";\n{}",
                exec_of(&[
                    (first, "SELECT 1 AS x"),
                    ("bad", bad),
                    (then, "SELECT 3 AS x")
                ])
            ),
        ] {
            let a = clients.ask(via, &exec).await;
            let case = Refusal {
                code: "forbidden".into(),
                sql: exec.clone(),
                names: vec!["current_setting".into()],
            };
            assert_eq!(refusal_problem(via, &a, &case), None);
            for table in [first, then, "bad"] {
                let read = clients
                    .ask(Via::HttpPost, &format!("SELECT * FROM mosaic.{table}"))
                    .await;
                assert_eq!(
                    (read.status, read.code.as_deref()),
                    (Some(400), Some("invalid_sql")),
                    "{via:?}: mosaic.{table} was made: {}",
                    read.summary()
                );
            }
        }
    }
    // The tables made before are still there.
    let read = clients.ask(Via::Ws, "SELECT x FROM mosaic.ok1").await;
    assert_eq!(
        read.rows,
        vec![serde_json::json!([1])],
        "{}",
        read.summary()
    );
}

/// Failing statements whose messages (DuckDB's, or the gateway's) could carry a server path or
/// echo a client's, and statements whose results would be server paths were they not refused.
const LEAKY: &[&str] = &[
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'data/x.duckdb'",
    "SELECT * FROM 't.duckdb'",
    "SELECT * FROM read_parquet('/nonexistent/dir/file.parquet')",
    "SELECT * FROM read_text('/tmp/')",
    "SELECT * FROM st_read('/tmp/nothing.geojson')",
    "SELECT * FROM ST_Read_Meta('/etc/passwd')",
    "ATTACH '/tmp/duckstream-evil.duckdb' AS evil",
    "ATTACH 'x.duckdb' AS x",
    "COPY people TO '/tmp/duckstream-evil.csv'",
    "LOAD '/root/.duckdb/extensions/v1.5.5/linux_amd64/spatial.duckdb_extension'",
    "INSTALL spatial FROM '/tmp/repository'",
    "SELECT error('/var/lib/secret/path')",
    "SELECT error('see /etc/shadow and /tmp/x/y')",
    "SELECT CAST('/var/lib/secret/path' AS INTEGER)",
    "SELECT current_setting('temp_directory')",
    "SELECT current_setting('home_directory')",
    "SELECT current_setting('extension_directory')",
    "SELECT current_setting('secret_directory')",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pg_settings",
    "SELECT * FROM duckdb_databases()",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM duckdb_extensions()",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_temporary_files()",
    "SELECT * FROM missing_table",
    "SELECT nope FROM people",
    "SELEC 1",
    "SELECT * FROM mosaic.nothing",
];

/// Uploads that fail: `(path, content-encoding, body)`.
const BAD_UPLOADS: &[(&str, Option<&str>, &[u8])] = &[
    (
        "/v1/t/datasets/u1?format=parquet",
        None,
        b"PAR1 not really parquet PAR1",
    ),
    ("/v1/t/datasets/u2?format=parquet", None, b""),
    ("/v1/t/datasets/u3?format=ndjson", None, b"{not json}\n"),
    (
        "/v1/t/datasets/u4?format=geojson",
        None,
        br#"{"type": "FeatureCollection", "features": 7}"#,
    ),
    ("/v1/t/datasets/u5?format=csv", Some("gzip"), b"a,b\n1,2\n"),
    ("/v1/t/datasets/u6?format=csv", Some("zstd"), b"not zstd"),
    ("/v1/t/datasets/..%2Fescape?format=csv", None, b"a\n1\n"),
    ("/v1/t/datasets/u7?format=xlsx", None, b"a\n1\n"),
];

/// The texts no answer may contain: the data directory, the home directory, DuckDB's own
/// directory (`~/.duckdb/`, its extensions and stored secrets), and absolute paths (the
/// client's own included: every path-looking token of a message is scrubbed).
fn private_texts(app: &TestApp) -> Vec<String> {
    let mut texts: Vec<String> = [".duckdb/", "stored_secrets", "/tmp/", "/etc/", "/var/lib/"]
        .map(String::from)
        .to_vec();
    texts.push(app.dir.path().display().to_string());
    if let Some(home) = std::env::var("HOME").ok().filter(|h| h.len() > 1) {
        texts.push(home);
    }
    texts
}

/// Which of `texts` the answer `raw` contains, and where the first one is.
fn leaks(texts: &[String], what: &str, raw: &str) -> Option<String> {
    let found: Vec<&String> = texts.iter().filter(|t| raw.contains(t.as_str())).collect();
    let at = raw.find(found.first()?.as_str())?;
    let from = raw.floor_char_boundary(at.saturating_sub(80));
    let to = raw.floor_char_boundary(at + 80);
    Some(format!(
        "{what}: names {found:?}\n    …{:?}…",
        &raw[from..to]
    ))
}

#[actix_web::test]
async fn no_answer_names_a_server_path() {
    let app = spawn_app().await;
    let texts = private_texts(&app);
    let mut clients = Clients::open(&app, "t").await;
    let mut problems = Vec::new();
    for (i, sql) in LEAKY.iter().enumerate() {
        for via in Via::QUERIES {
            let a = clients.ask(via, sql).await;
            problems.extend(leaks(&texts, &format!("{via:?} {sql}"), &a.raw));
        }
        // As Mosaic's pre-aggregation, or as an exec of its own (which is refused, and must
        // not quote the statement's paths either).
        let exec = as_exec(sql, &format!("l{i}")).unwrap_or(sql.to_string());
        for via in Via::EXECS {
            let a = clients.ask(via, &exec).await;
            problems.extend(leaks(&texts, &format!("{via:?} {exec}"), &a.raw));
        }
    }
    for (path, encoding, body) in BAD_UPLOADS {
        let mut req = app.client.put(app.url(path)).body(body.to_vec());
        if let Some(encoding) = encoding {
            req = req.header("content-encoding", *encoding);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let raw = resp.text().await.unwrap_or_default();
        problems.extend(leaks(&texts, &format!("PUT {path} ({status})"), &raw));
    }
    for path in [
        "/v1/t/datasets/nope",
        "/v1/t/datasets/u1",
        "/v1/ghost/query?sql=SELECT%201",
    ] {
        let raw = app
            .client
            .get(app.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        problems.extend(leaks(&texts, &format!("GET {path}"), &raw));
    }
    assert!(
        problems.is_empty(),
        "{} answers name a server path:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
