//! DuckLake's change records, read: `ducklake_snapshot_changes.changes_made` of one snapshot
//! (`created_table:"main"."parcels",inserted_into_table:1`) as the tables it changed.
//!
//! Invariants:
//! - Fail closed: an entry this parser does not know (a new DuckLake kind, a view, a schema
//!   dropped) makes the whole snapshot "changed what cannot be told apart" ([`Changed::All`]),
//!   so a result is never kept across a change it cannot see.
//! - Names are compared as the engine's stamps name tables: lower-case `schema.table`.

use std::collections::HashMap;

/// What one snapshot changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// These tables (lower-case `schema.table`), and nothing else a query can read.
    Tables(Vec<String>),
    /// Something that cannot be told apart: every table counts as changed.
    All,
}

/// Table ids of one lake, with every name each has had (a rename keeps the id).
pub type TableNames = HashMap<i64, Vec<String>>;

/// Kinds whose value is a quoted `"schema"."table"` name.
const BY_NAME: &[&str] = &["created_table"];
/// Kinds whose value is a table id.
const BY_ID: &[&str] = &[
    "inserted_into_table",
    "deleted_from_table",
    "dropped_table",
    "altered_table",
    "compacted_table",
    "flushed_inlined_data_for_table",
];
/// Kinds that change nothing a query reads: an empty schema, and maintenance that rewrites
/// files with the same rows (`ducklake_merge_adjacent_files`).
const NOTHING: &[&str] = &["created_schema", "merge_adjacent"];

/// Splits `changes_made` into `(kind, value)` entries: commas inside double quotes belong to
/// a name, and `""` is a quote inside one.
pub fn entries(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out.into_iter()
        .filter_map(|e| {
            let (k, v) = e.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `"main"."Par""cels"` as `main.par"cels`; `None` for anything else.
fn quoted_name(value: &str) -> Option<String> {
    let mut parts = Vec::new();
    let mut chars = value.chars().peekable();
    while chars.peek().is_some() {
        if chars.next()? != '"' {
            return None;
        }
        let mut part = String::new();
        loop {
            match chars.next()? {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    part.push('"');
                }
                '"' => break,
                c => part.push(c),
            }
        }
        parts.push(part.to_lowercase());
        match chars.next() {
            None => break,
            Some('.') => continue,
            Some(_) => return None,
        }
    }
    (parts.len() == 2).then(|| parts.join("."))
}

/// What `changes_made` changed, table ids resolved through `names`.
pub fn changed(text: &str, names: &TableNames) -> Changed {
    let mut tables = Vec::new();
    for (kind, value) in entries(text) {
        let kind = kind.as_str();
        if NOTHING.contains(&kind) {
            continue;
        }
        let resolved = if BY_NAME.contains(&kind) {
            quoted_name(&value).map(|n| vec![n])
        } else if BY_ID.contains(&kind) {
            value
                .parse::<i64>()
                .ok()
                .and_then(|id| names.get(&id).cloned())
        } else {
            None
        };
        match resolved {
            Some(found) => tables.extend(found),
            None => return Changed::All,
        }
    }
    Changed::Tables(as_planned(tables))
}

/// `tables` with the names a query's plan gives them too: DuckLake's scan names only the
/// table (`"Table": "parcels"`), which the stamp reads as `main.parcels`, so a change to
/// `s.parcels` also counts as one to `main.parcels` (a result is then re-run too often,
/// never kept too long).
fn as_planned(mut tables: Vec<String>) -> Vec<String> {
    let aliases: Vec<String> = tables
        .iter()
        .filter_map(|t| t.split_once('.'))
        .filter(|(schema, _)| *schema != "main")
        .map(|(_, table)| format!("main.{table}"))
        .collect();
    tables.extend(aliases);
    tables.sort();
    tables.dedup();
    tables
}

/// Whether `changes_made` names a table id (then the names must be read first).
pub fn needs_names(text: &str) -> bool {
    entries(text)
        .iter()
        .any(|(k, _)| BY_ID.contains(&k.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> TableNames {
        HashMap::from([
            (1, vec!["main.parcels".to_string()]),
            (2, vec!["main.old".to_string(), "main.new".to_string()]),
        ])
    }

    #[test]
    fn tables_are_named_by_name_and_by_id() {
        assert_eq!(
            changed(
                r#"created_table:"main"."Parcels",inserted_into_table:1"#,
                &names()
            ),
            Changed::Tables(vec!["main.parcels".into()])
        );
        assert_eq!(
            changed("altered_table:2,deleted_from_table:1", &names()),
            Changed::Tables(vec![
                "main.new".into(),
                "main.old".into(),
                "main.parcels".into()
            ])
        );
        assert_eq!(
            changed(r#"created_schema:"main""#, &names()),
            Changed::Tables(vec![])
        );
    }

    #[test]
    fn quotes_and_commas_inside_names_are_kept() {
        assert_eq!(
            changed(r#"created_table:"main"."a,""b""#, &names()),
            Changed::Tables(vec![r#"main.a,"b"#.into()])
        );
    }

    #[test]
    fn what_cannot_be_resolved_changes_everything() {
        assert_eq!(changed("inserted_into_table:99", &names()), Changed::All);
        assert_eq!(
            changed(r#"created_view:"main"."v""#, &names()),
            Changed::All
        );
        assert_eq!(changed("dropped_schema:3", &names()), Changed::All);
        assert_eq!(changed(r#"created_table:main.t"#, &names()), Changed::All);
    }

    #[test]
    fn a_table_outside_main_also_counts_under_its_planned_name() {
        assert_eq!(
            changed(r#"created_table:"geo"."roads""#, &names()),
            Changed::Tables(vec!["geo.roads".into(), "main.roads".into()])
        );
    }

    #[test]
    fn ids_need_names() {
        assert!(needs_names("inserted_into_table:1"));
        assert!(!needs_names(r#"created_table:"main"."x""#));
    }
}
