//! Bounded fuzzing of uploads against one real server: random formats, nesting (within and
//! past the limits), long records, stray quotes and escapes, truncation, garbage, and every
//! encoding (plain, gzip, zstd, refused ones), whole or cut. Every answer is a 200 with its
//! rows or a 4xx with a JSON code; afterwards no spool file is left and the server still
//! answers `SELECT 1` (no crash, no invalidated database). Seeded, a fixed number of cases:
//! a failure names its case, and the same seed replays it.

use serde_json::{json, Value};

use crate::datasets::{gzip, put, rows, spool_is_empty};
use crate::helpers::{spawn_app_with, TestApp};

const CASES: usize = 300;
const SEED: u64 = 0x5eed_f0d5;

/// xorshift64*: enough randomness, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A string token: escapes, brackets and quotes inside, now and then what JSON forbids.
fn string(rng: &mut Rng) -> String {
    let tokens = [
        "\"a\"",
        "\"[{\"",
        "\"q\\\"[\"",
        "\"\\\\\"",
        "\"\\u005b\"",
        "\"é ✓\"",
        "\"\"",
        "\"x\\\\\\\"]}\"",
    ];
    let token = match rng.chance(3) {
        true => rng.pick(&["\"raw\nbreak\"", "'single'", "/* c */ 1", "\"open"]),
        false => rng.pick(&tokens),
    };
    token.to_string()
}

/// A value nested `depth` levels (arrays and objects at random), built without recursion.
fn nested(rng: &mut Rng, depth: usize) -> String {
    let (mut open, mut close) = (String::new(), Vec::new());
    for _ in 0..depth {
        if rng.chance(50) {
            open.push('[');
            close.push(']');
        } else {
            open.push_str("{\"k\":");
            close.push('}');
        }
    }
    let inner = match rng.below(3) {
        0 => string(rng),
        1 => rng.below(1000).to_string(),
        _ => "null".into(),
    };
    close.reverse();
    format!("{open}{inner}{}", close.into_iter().collect::<String>())
}

/// A nesting depth: mostly allowed, now and then just past 64, or far past it.
fn depth(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0 => 60 + rng.below(10),
        1 => 100 + rng.below(5000),
        _ => rng.below(8),
    }
}

fn ndjson(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::new();
    for id in 0..1 + rng.below(8) {
        let levels = depth(rng);
        let v = nested(rng, levels);
        out.push_str(&format!("{{\"id\":{id},\"v\":{v}}}\n"));
        if rng.chance(5) {
            out.push_str(&"x".repeat(rng.below(5000)));
        }
    }
    out.into_bytes()
}

fn csv(rng: &mut Rng) -> Vec<u8> {
    let mut out = String::from("id,t\n");
    for id in 0..1 + rng.below(20) {
        let text = match rng.below(6) {
            0 => format!("\"a\n\"\"b\"\"\n{}\"", "c".repeat(rng.below(3000))),
            1 => "\"unclosed".into(),
            2 => "x\"y".into(),
            _ => format!("v{}", rng.below(100)),
        };
        out.push_str(&format!("{id},{text}\n"));
    }
    out.into_bytes()
}

fn geojson(rng: &mut Rng) -> Vec<u8> {
    let features: Vec<String> = (0..1 + rng.below(5))
        .map(|i| {
            let levels = depth(rng);
            let p = nested(rng, levels);
            let pad = "p".repeat(if rng.chance(10) { 3000 } else { 3 });
            format!(
                "{{\"type\":\"Feature\",\"properties\":{{\"n\":{i},\"p\":{p},\"pad\":\"{pad}\"}},\
                 \"geometry\":{{\"type\":\"Point\",\"coordinates\":[{i},{}]}}}}",
                rng.below(90)
            )
        })
        .collect();
    let mut doc = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
        features.join(",")
    );
    if rng.chance(10) {
        let levels = 100 + rng.below(100_000);
        doc = nested(rng, levels);
    }
    doc.into_bytes()
}

/// Parquet files written by DuckDB: flat, with lists nested 1 to 10 deep, structs.
fn parquet_files(app: &TestApp) -> Vec<Vec<u8>> {
    let c = duckdb::Connection::open_in_memory().unwrap();
    let mut values = vec!["range".to_string(), "{'a': range, 'b': [range]}".into()];
    for n in 1..=10 {
        values.push(format!("{}range{}", "[".repeat(n), "]".repeat(n)));
    }
    values
        .iter()
        .map(|v| {
            let file = app.dir.path().join("fuzz.parquet");
            c.execute_batch(&format!(
                "COPY (SELECT range AS id, {v} AS c FROM range(50)) TO '{}' (FORMAT parquet)",
                file.display()
            ))
            .unwrap();
            std::fs::read(&file).unwrap()
        })
        .collect()
}

/// Flips, cuts or pads bytes (of a body, or of its encoding).
fn mutate(rng: &mut Rng, mut bytes: Vec<u8>) -> Vec<u8> {
    match rng.below(10) {
        0 if !bytes.is_empty() => bytes.truncate(rng.below(bytes.len())),
        1 => bytes.extend_from_slice(&[0x1f, 0x8b, 0, 1, 2, 3][..1 + rng.below(6)]),
        2 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
        }
        _ => {}
    }
    bytes
}

fn encode(rng: &mut Rng, body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
    let (bytes, encoding) = match rng.below(8) {
        0 | 1 => (gzip(&body), Some("gzip")),
        2 | 3 => (zstd::bulk::compress(&body, 1).unwrap(), Some("zstd")),
        4 => (
            body,
            Some(*rng.pick(&["deflate", "br", "identity", "x-what"])),
        ),
        _ => (body, None),
    };
    (mutate(rng, bytes), encoding)
}

/// One random upload: its path and query, body and encoding.
fn case(rng: &mut Rng, parquet: &[Vec<u8>]) -> (String, Vec<u8>, Option<&'static str>) {
    let format = *rng.pick(&["csv", "ndjson", "geojson", "parquet"]);
    let body = match format {
        "csv" if rng.chance(3) => "id\n1\n".repeat(30_000).into_bytes(),
        "csv" => csv(rng),
        "ndjson" => ndjson(rng),
        "geojson" => geojson(rng),
        _ => rng.pick(parquet).clone(),
    };
    let body = mutate(rng, body);
    let (body, encoding) = encode(rng, body);
    let mode = rng.pick(&["replace", "append"]);
    let name = rng.pick(&["f0", "f1", "f2"]);
    (
        format!("{name}?format={format}&mode={mode}"),
        body,
        encoding,
    )
}

#[actix_web::test]
async fn random_uploads_get_an_answer_and_never_break_the_server() {
    let app = spawn_app_with(|c| {
        c.limits.max_upload_bytes = Some(128 * 1024);
        c.server.max_upload_record_bytes = 2048;
    })
    .await;
    let parquet = parquet_files(&app);
    let mut rng = Rng(SEED);
    let mut statuses = std::collections::BTreeMap::new();
    for n in 0..CASES {
        let (path, body, encoding) = case(&mut rng, &parquet);
        let resp = put(&app, &path, body, encoding).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let answer: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("case {n} {path} {encoding:?}: {status} {text}: {e}"));
        let ok = match status {
            200 => answer["rows"].is_u64(),
            400..=499 => answer["code"].is_string(),
            _ => false,
        };
        assert!(ok, "case {n} {path} {encoding:?}: {status} {answer}");
        *statuses.entry(status).or_insert(0) += 1;
    }
    // The cases reach every kind of answer: loaded, refused, too large.
    for status in [200, 400, 413] {
        assert!(statuses.contains_key(&status), "{statuses:?}");
    }
    assert!(spool_is_empty(&app));
    assert_eq!(rows(&app, "SELECT 1").await, [json!([1])]);
}
