//! Hostile input against the real binary (its own process, so its RSS is the server's):
//! every case of `tests/data/hostile.tsv` gets its expected status and code; afterwards the
//! server answers a normal query correctly and its RSS is back near where it started.

use crate::helpers::ServerProcess;

fn expand(s: &str) -> Vec<u8> {
    if s == "@EMPTY" {
        return Vec::new();
    }
    if let Some(hex) = s.strip_prefix("@HEX(").and_then(|r| r.strip_suffix(')')) {
        return hex
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
    }
    if let Some(n) = s.strip_prefix("@NEST(").and_then(|r| r.strip_suffix(')')) {
        let n: usize = n.parse().unwrap();
        return format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    }
    if let Some(n) = s.strip_prefix("@PARAMS(").and_then(|r| r.strip_suffix(')')) {
        let n: usize = n.parse().unwrap();
        let params: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        return format!(r#"{{"sql": "SELECT ?", "params": [{}]}}"#, params.join(",")).into_bytes();
    }
    // @REPEAT(n,s) anywhere in the text.
    let mut out = s.to_string();
    while let Some(start) = out.find("@REPEAT(") {
        let end = start + out[start..].find(')').unwrap();
        let (n, unit) = out[start + 8..end].split_once(',').unwrap();
        let rep = unit.repeat(n.parse().unwrap());
        out.replace_range(start..=end, &rep);
    }
    out.into_bytes()
}

#[actix_web::test]
async fn hostile_requests_get_their_answers_and_the_server_recovers() {
    let server = ServerProcess::start(&["--body-timeout-secs", "1"]);
    let app = &server.app;
    // Warm up, then take the baseline.
    app.query("SELECT count(*) FROM people").await;
    let baseline = server.rss_mib();
    let cases = crate::helpers::data_cases("hostile.tsv");
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut problems = Vec::new();
    for line in &cases {
        problems.extend(answer_problem(app, line).await);
    }

    // Slowloris: a body trickled a byte at a time is cut off with 408.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = app.base.trim_start_matches("http://").to_string();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let body = br#"{"sql": "SELECT 1"}"#;
        let head = format!(
            "POST /v1/t/query HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        for b in body.iter() {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut reply))
            .await;
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(text.contains("request_timeout"), "{text}");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }
    // Still right, and memory back near where it started.
    let out = app.query("SELECT id, name FROM people ORDER BY id").await;
    assert_eq!(
        out.data_rows_text(),
        [r#"[[1,"Ada"],[2,"Grace"],[3,null]]"#]
    );
    let after = server.rss_mib();
    assert!(
        after - baseline < 128.0,
        "RSS {baseline:.0} -> {after:.0} MiB after the suite"
    );
    // Every wrong answer, listed at once.
    assert!(
        problems.is_empty(),
        "{} of {} cases got wrong answers:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

/// Sends one case of `hostile.tsv`; what is wrong with the answer, if anything.
pub async fn answer_problem(app: &crate::helpers::TestApp, line: &str) -> Option<String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [method, path, body, status, code] = cols[..] else {
        panic!("bad case line {line}")
    };
    let url = format!("{}{}", app.base, String::from_utf8(expand(path)).unwrap());
    let req = match method {
        "GET" => app.client.get(&url),
        _ => app.client.post(&url).body(expand(body)),
    };
    let resp = req.send().await.unwrap_or_else(|e| panic!("{line}: {e}"));
    let got = resp.status().as_u16().to_string();
    let bytes = resp.bytes().await.unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    if got == status && (code == "-" || v["code"] == code) {
        return None;
    }
    Some(format!(
        "{}\n    got {got}: {}",
        &line[..line.floor_char_boundary(120)],
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    ))
}
