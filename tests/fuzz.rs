//! Bounded fuzzing of the parsers that see raw client input: the HTTP query body
//! (`QueryRequest::from_json`), the WebSocket message (`ClientMessage::parse`), the token
//! request body (`TokenRequest::from_json`), tokens (`TokenSigner::verify`), and an upload's
//! checks (`UploadScan`, `check_parquet_footer`). None may panic
//! on any input, every accepted request satisfies the wire invariants, and no altered token
//! verifies.
//!
//! The corpus lives in `tests/data/fuzz-corpus/` (seeds, including odd ones); proptest mutates
//! it and also generates bytes from scratch. Shrunk failures are kept by proptest in
//! `tests/fuzz.proptest-regressions` (commit them). Bounded: a fixed number of cases.

use duckstream::auth::token::{Claims, TokenSigner};
use duckstream::wire::datasets::UploadFormat;
use duckstream::wire::upload_scan::{check_parquet_footer, UploadScan};
use duckstream::wire::{ClientMessage, QueryRequest, TokenRequest, MAX_CHUNK_ROWS};
use proptest::prelude::*;

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fuzz-corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Runs both parsers; checks what an accepted request promises.
fn check(input: &[u8]) {
    if let Ok(q) = QueryRequest::from_json(&mut input.to_vec()) {
        assert!(!q.sql.trim().is_empty());
        assert!(q
            .chunk_rows
            .is_none_or(|n| (1..=MAX_CHUNK_ROWS).contains(&n)));
    }
    match ClientMessage::parse(&mut input.to_vec()) {
        Ok(ClientMessage::Query { id, request }) => {
            assert!(!id.is_empty() && id.len() <= 128);
            assert!(!request.sql.trim().is_empty());
        }
        Ok(ClientMessage::Subscribe { id, request, .. }) => {
            assert!(!id.is_empty() && id.len() <= 128);
            assert!(!request.sql.trim().is_empty());
        }
        Ok(ClientMessage::Cancel { id } | ClientMessage::Unsubscribe { id }) => {
            assert!(!id.is_empty())
        }
        Ok(ClientMessage::Ping) | Err(_) => {}
    }
    let _ = TokenRequest::from_json(&mut input.to_vec());
    check_upload(input);
    let text = String::from_utf8_lossy(input);
    assert!(signer().verify(&text, 0).is_err(), "random input verified");
}

/// An upload's checks (the scan of every format, fed in two pieces, and the Parquet
/// footer's) answer, never panic.
fn check_upload(input: &[u8]) {
    for format in [
        UploadFormat::Csv,
        UploadFormat::Ndjson,
        UploadFormat::GeoJson,
        UploadFormat::Parquet,
    ] {
        let mut scan = UploadScan::new(format, 64);
        let (a, b) = input.split_at(input.len() / 2);
        let _ = scan.feed(a).and_then(|()| scan.feed(b));
    }
    let _ = check_parquet_footer(input);
}

fn signer() -> TokenSigner {
    TokenSigner::new(b"fuzzing secret, thirty-two bytes long".to_vec())
}

#[test]
fn corpus_seeds_parse_without_panicking() {
    let seeds = corpus();
    assert!(seeds.len() >= 10);
    for seed in &seeds {
        check(seed);
    }
}

/// A mutation of a corpus entry: a byte changed, inserted or removed, or a cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus();
    (
        0..seeds.len(),
        proptest::collection::vec((any::<u8>(), any::<u16>(), 0u8..4), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut v = seeds[i].clone();
            for (byte, at, kind) in edits {
                let at = if v.is_empty() {
                    0
                } else {
                    at as usize % v.len()
                };
                match kind {
                    0 if !v.is_empty() => v[at] = byte,
                    1 => v.insert(at, byte),
                    2 if !v.is_empty() => {
                        v.remove(at);
                    }
                    _ => v.truncate(at),
                }
            }
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_seeds_never_panic(input in mutated()) {
        check(&input);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&input);
    }

    /// A real token with any byte changed, inserted or removed never verifies (or panics).
    #[test]
    fn altered_tokens_never_verify(
        tenant in "[a-z0-9_-]{1,64}",
        at in any::<u16>(),
        byte in any::<u8>(),
        kind in 0u8..3,
    ) {
        let s = signer();
        let token = s.sign(&Claims::new(&tenant, 1000, 60, Some(vec!["t".into()])));
        prop_assert!(s.verify(&token, 1000).is_ok());
        let mut bytes = token.clone().into_bytes();
        let at = at as usize % bytes.len();
        match kind {
            0 => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ => { bytes.remove(at); }
        }
        let altered = String::from_utf8_lossy(&bytes).into_owned();
        if altered != token {
            // (Base64's spare bits in a last character are refused, not ignored.)
            prop_assert!(s.verify(&altered, 1000).is_err(), "{} verified", altered);
        }
    }

    #[test]
    fn generated_messages_round_trip(
        id in "[a-zA-Z0-9_-]{1,20}",
        sql in "SELECT [a-z0-9 ,()*+]{1,40}",
        chunk in 1usize..=MAX_CHUNK_ROWS,
    ) {
        let text = serde_json::json!({"type": "query", "id": id, "sql": sql, "chunk_rows": chunk}).to_string();
        match ClientMessage::parse(&mut text.into_bytes()) {
            Ok(ClientMessage::Query { id: got, request }) => {
                prop_assert_eq!(got, id);
                prop_assert_eq!(request.sql, sql);
                prop_assert_eq!(request.chunk_rows, Some(chunk));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
