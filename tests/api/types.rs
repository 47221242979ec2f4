//! Every DuckDB type's JSON form, value by value, through the real HTTP stream.

use crate::helpers::spawn_app;

/// (SQL expression, expected DuckDB type name or "" to skip, expected JSON text).
const CASES: &[(&str, &str, &str)] = &[
    ("true", "BOOLEAN", "true"),
    ("NULL::BOOLEAN", "BOOLEAN", "null"),
    ("(-128)::TINYINT", "TINYINT", "-128"),
    ("32767::SMALLINT", "SMALLINT", "32767"),
    ("(-2147483648)::INTEGER", "INTEGER", "-2147483648"),
    (
        "(-9223372036854775808)::BIGINT",
        "BIGINT",
        "-9223372036854775808",
    ),
    (
        "9223372036854775807::BIGINT",
        "BIGINT",
        "9223372036854775807",
    ),
    ("255::UTINYINT", "UTINYINT", "255"),
    ("65535::USMALLINT", "USMALLINT", "65535"),
    ("4294967295::UINTEGER", "UINTEGER", "4294967295"),
    (
        "18446744073709551615::UBIGINT",
        "UBIGINT",
        "18446744073709551615",
    ),
    ("9007199254740993::BIGINT", "BIGINT", "9007199254740993"),
    (
        "'170141183460469231731687303715884105727'::HUGEINT",
        "HUGEINT",
        "170141183460469231731687303715884105727",
    ),
    (
        "'-170141183460469231731687303715884105727'::HUGEINT",
        "HUGEINT",
        "-170141183460469231731687303715884105727",
    ),
    (
        "'340282366920938463463374607431768211455'::UHUGEINT",
        "UHUGEINT",
        "340282366920938463463374607431768211455",
    ),
    ("NULL::UHUGEINT", "UHUGEINT", "null"),
    ("0.1::FLOAT", "FLOAT", "0.1"),
    ("0.1::DOUBLE", "DOUBLE", "0.1"),
    ("1e300::DOUBLE", "DOUBLE", "1e300"),
    ("'NaN'::DOUBLE", "DOUBLE", "\"NaN\""),
    ("'inf'::FLOAT", "FLOAT", "\"Infinity\""),
    ("'-inf'::DOUBLE", "DOUBLE", "\"-Infinity\""),
    ("123.45::DECIMAL(5,2)", "DECIMAL(5,2)", "123.45"),
    ("(-0.001)::DECIMAL(4,3)", "DECIMAL(4,3)", "-0.001"),
    ("1.5::DECIMAL(9,4)", "DECIMAL(9,4)", "1.5000"),
    (
        "'12345678901234.5678'::DECIMAL(18,4)",
        "DECIMAL(18,4)",
        "12345678901234.5678",
    ),
    (
        "'-1234567890123456789012345678.9012345678'::DECIMAL(38,10)",
        "DECIMAL(38,10)",
        "-1234567890123456789012345678.9012345678",
    ),
    (
        "'a\"b\\c' || chr(10) || chr(9) || chr(1) || 'é😀'",
        "VARCHAR",
        r#""a\"b\\c\n\t\u0001é😀""#,
    ),
    (
        "'a string longer than twelve bytes'",
        "VARCHAR",
        "\"a string longer than twelve bytes\"",
    ),
    ("''", "VARCHAR", "\"\""),
    ("'\\xAA\\xBB'::BLOB", "BLOB", "\"qrs=\""),
    ("'abc'::BLOB", "BLOB", "\"YWJj\""),
    ("'101010101'::BIT", "BIT", "\"101010101\""),
    ("'0'::BIT", "BIT", "\"0\""),
    ("DATE '2024-02-29'", "DATE", "\"2024-02-29\""),
    ("'infinity'::DATE", "DATE", "\"infinity\""),
    ("'-infinity'::DATE", "DATE", "\"-infinity\""),
    ("DATE '0001-01-01' - 1", "DATE", "\"0000-12-31\""),
    ("DATE '0044-03-15 (BC)'", "DATE", "\"-000043-03-15\""),
    ("DATE '12345-06-07'", "DATE", "\"+012345-06-07\""),
    ("TIME '12:34:56.789'", "TIME", "\"12:34:56.789\""),
    ("TIME '00:00:00'", "TIME", "\"00:00:00\""),
    (
        "TIMETZ '12:34:56.5+05:30'",
        "TIME WITH TIME ZONE",
        "\"12:34:56.5+05:30\"",
    ),
    (
        "TIMETZ '01:02:03-08'",
        "TIME WITH TIME ZONE",
        "\"01:02:03-08:00\"",
    ),
    (
        "TIMESTAMP '2024-01-02 03:04:05.123456'",
        "TIMESTAMP",
        "\"2024-01-02T03:04:05.123456\"",
    ),
    (
        "TIMESTAMP_S '2024-01-02 03:04:05'",
        "TIMESTAMP_S",
        "\"2024-01-02T03:04:05\"",
    ),
    (
        "TIMESTAMP_MS '2024-01-02 03:04:05.120'",
        "TIMESTAMP_MS",
        "\"2024-01-02T03:04:05.12\"",
    ),
    (
        "TIMESTAMP_NS '2024-01-02 03:04:05.123456789'",
        "TIMESTAMP_NS",
        "\"2024-01-02T03:04:05.123456789\"",
    ),
    (
        "TIMESTAMPTZ '2024-01-02 03:04:05+02'",
        "TIMESTAMP WITH TIME ZONE",
        "\"2024-01-02T01:04:05Z\"",
    ),
    ("'infinity'::TIMESTAMP", "TIMESTAMP", "\"infinity\""),
    (
        "'-infinity'::TIMESTAMPTZ",
        "TIMESTAMP WITH TIME ZONE",
        "\"-infinity\"",
    ),
    (
        "TIMESTAMP '0001-01-01 00:00:00' - INTERVAL 1 DAY",
        "TIMESTAMP",
        "\"0000-12-31T00:00:00\"",
    ),
    (
        "TIMESTAMP '12345-06-07 08:09:10'",
        "TIMESTAMP",
        "\"+012345-06-07T08:09:10\"",
    ),
    (
        "INTERVAL '1 year 2 months 3 days 04:05:06.789'",
        "INTERVAL",
        r#"{"months":14,"days":3,"micros":14706789000}"#,
    ),
    (
        "INTERVAL '-1 day'",
        "INTERVAL",
        r#"{"months":0,"days":-1,"micros":0}"#,
    ),
    (
        "'550e8400-e29b-41d4-a716-446655440000'::UUID",
        "UUID",
        "\"550e8400-e29b-41d4-a716-446655440000\"",
    ),
    (
        "'00000000-0000-0000-0000-000000000000'::UUID",
        "UUID",
        "\"00000000-0000-0000-0000-000000000000\"",
    ),
    (
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'::UUID",
        "UUID",
        "\"ffffffff-ffff-ffff-ffff-ffffffffffff\"",
    ),
    ("'b'::ENUM('a', 'b')", "ENUM('a', 'b')", "\"b\""),
    ("[1, NULL, 3]", "INTEGER[]", "[1,null,3]"),
    (
        "[[1], [], NULL, [2, 3]]",
        "INTEGER[][]",
        "[[1],[],null,[2,3]]",
    ),
    ("['x', NULL]", "VARCHAR[]", "[\"x\",null]"),
    ("NULL::INTEGER[]", "INTEGER[]", "null"),
    ("[1, NULL, 3]::INTEGER[3]", "INTEGER[3]", "[1,null,3]"),
    (
        "[[1, 2], [3, 4]]::INTEGER[2][2]",
        "INTEGER[2][2]",
        "[[1,2],[3,4]]",
    ),
    (
        "{'a': 1, 'b': 'x'}",
        "STRUCT(a INTEGER, b VARCHAR)",
        r#"{"a":1,"b":"x"}"#,
    ),
    (
        "{'a': NULL, 'B c': {'d': [1]}}",
        "STRUCT(a INTEGER, \"B c\" STRUCT(d INTEGER[]))",
        r#"{"a":null,"B c":{"d":[1]}}"#,
    ),
    ("NULL::STRUCT(a INTEGER)", "STRUCT(a INTEGER)", "null"),
    (
        "MAP {'k1': 1, 'k2': NULL}",
        "MAP(VARCHAR, INTEGER)",
        r#"{"k1":1,"k2":null}"#,
    ),
    (
        "MAP {1: 'a', 2: 'b'}",
        "MAP(INTEGER, VARCHAR)",
        r#"{"1":"a","2":"b"}"#,
    ),
    (
        "NULL::MAP(VARCHAR, INTEGER)",
        "MAP(VARCHAR, INTEGER)",
        "null",
    ),
    (
        "union_value(num := 2)::UNION(num INTEGER, str VARCHAR)",
        "UNION(num INTEGER, str VARCHAR)",
        r#"{"num":2}"#,
    ),
    (
        "union_value(str := 'x')::UNION(num INTEGER, str VARCHAR)",
        "UNION(num INTEGER, str VARCHAR)",
        r#"{"str":"x"}"#,
    ),
    (
        "NULL::UNION(num INTEGER, str VARCHAR)",
        "UNION(num INTEGER, str VARCHAR)",
        "null",
    ),
    (
        "[{'a': [MAP {'k': [NULL, 1]}]}]",
        "",
        r#"[{"a":[{"k":[null,1]}]}]"#,
    ),
    ("NULL", "INTEGER", "null"),
];

#[actix_web::test]
async fn every_type_has_its_exact_json_form() {
    let app = spawn_app().await;
    // One query, one column per case: also proves that columns line up.
    let select: Vec<String> = CASES
        .iter()
        .enumerate()
        .map(|(i, (expr, _, _))| format!("{expr} AS c{i}"))
        .collect();
    let out = app.query(&format!("SELECT {}", select.join(", "))).await;
    assert_eq!(out.status, 200, "{}", out.raw);
    assert_eq!(out.kinds(), ["metadata", "data", "end"], "{}", out.raw);
    let columns = out.lines[0]["columns"].as_array().unwrap();
    let row = out.data_rows_text().remove(0);
    let expected_row = format!(
        "[[{}]]",
        CASES.iter().map(|c| c.2).collect::<Vec<_>>().join(",")
    );
    for (i, (expr, type_name, _)) in CASES.iter().enumerate() {
        assert_eq!(columns[i]["name"], format!("c{i}"));
        if !type_name.is_empty() {
            assert_eq!(columns[i]["type"], *type_name, "type of {expr}");
        }
    }
    if row != expected_row {
        // Point at the first differing case.
        for (expr, _, json) in CASES {
            let single = app.query(&format!("SELECT {expr} AS v")).await;
            assert_eq!(
                single.data_rows_text()[0],
                format!("[[{json}]]"),
                "value of {expr}"
            );
        }
        panic!("row mismatch:\n got {row}\nwant {expected_row}");
    }
}

#[actix_web::test]
async fn enums_from_the_catalog_and_nulls_in_every_column() {
    let app = spawn_app().await;
    let out = app
        .query("SELECT id, name, feeling FROM people ORDER BY id")
        .await;
    assert_eq!(
        out.data_rows_text(),
        [r#"[[1,"Ada","happy"],[2,"Grace","ok"],[3,null,null]]"#]
    );
    assert_eq!(
        out.lines[0]["columns"][2]["type"],
        "ENUM('sad', 'ok', 'happy')"
    );

    let all_null: Vec<String> = [
        "BOOLEAN",
        "TINYINT",
        "UBIGINT",
        "HUGEINT",
        "DOUBLE",
        "DECIMAL(10,2)",
        "VARCHAR",
        "BLOB",
        "BIT",
        "DATE",
        "TIME",
        "TIMETZ",
        "TIMESTAMP",
        "TIMESTAMP_NS",
        "TIMESTAMPTZ",
        "INTERVAL",
        "UUID",
        "INTEGER[]",
        "INTEGER[2]",
        "STRUCT(a INT)",
        "MAP(INT, INT)",
        "UNION(a INT)",
        "mood",
    ]
    .iter()
    .map(|t| format!("NULL::{t}"))
    .collect();
    let n = all_null.len();
    let out = app.query(&format!("SELECT {}", all_null.join(", "))).await;
    assert_eq!(
        out.rows(),
        vec![serde_json::Value::Array(vec![serde_json::Value::Null; n])]
    );
}

#[actix_web::test]
async fn params_are_bound_not_pasted() {
    let app = spawn_app().await;
    let body = r#"{"sql": "SELECT ?::INTEGER + 1 AS a, ? AS b, ?::BOOLEAN AS c, ?::INTEGER[] AS d, ? IS NULL AS e",
                   "params": [41, "x'); DROP TABLE people; --", true, [1, 2], null]}"#;
    let out = crate::helpers::read_lines(app.post("t", body).await).await;
    assert_eq!(out.status, 200, "{}", out.raw);
    assert_eq!(
        out.data_rows_text(),
        [r#"[[42,"x'); DROP TABLE people; --",true,[1,2],true]]"#]
    );
    let people = app.query("SELECT count(*) AS n FROM people").await;
    assert_eq!(people.data_rows_text(), ["[[3]]"]);
}
