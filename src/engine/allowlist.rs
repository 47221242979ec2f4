//! The functions a client's statement may call: an allowlist, not a list of what is forbidden.
//!
//! Why an allowlist: a denylist allows every function DuckDB or an extension adds until someone
//! notices (`json_execute_serialized_sql` ran `ST_Read_Meta` from a string and crashed the
//! process; `checkpoint()`, `enable_logging()` and `pg_settings` changed or showed server
//! state). Every function DuckDB 1.5.5 and the spatial extension list is reviewed in
//! `functions.txt` (beside this file) as `allow`, `refuse` or `plan` (DuckDB adds it to bound
//! plans itself), by family, saying why.
//!
//! Invariants:
//! - A tenant's list is built from its database's `duckdb_functions()` when its first query is
//!   checked: the reviewed `allow` names, plus the tenant's own macros (not `internal`: made by
//!   the operator, never by a client) unless a reviewed `refuse` name. A function that is
//!   neither (a DuckDB or extension upgrade's new one) is refused until reviewed;
//!   `tests/api/allowlist.rs` fails while one exists.
//! - The parse tree ([`Allowlist::refused_in_tree`]) is checked before DuckDB binds anything;
//!   the bound plan ([`Allowlist::refused_in_plan`]) after, so views and macros (their bodies
//!   appear only there) cannot smuggle a function past the first check.
//! - In the parse tree a name DuckDB does not list at all passes (binding it fails with
//!   DuckDB's own "does not exist" message); in a plan every function is real and must be
//!   allowed.
//! - A call into the PostgreSQL catalog (`ds_pg.f`, [`super::pg_catalog`]) passes the tree
//!   and always has its plan checked: its macros are the gateway's, loaded after this list
//!   may have been built, and their bodies (every function they call) show in the plan.
//! - `current_setting(name)` is allowed only with a constant name from
//!   [`READABLE_SETTINGS`] (settings without a server path).
//! - A value of a [`REFUSED_TYPES`] type (a cast to it in the tree, an expression of it in the
//!   plan) is refused like a function: DuckDB converts nested JSON into `VARIANT` recursively
//!   without a depth limit, and a 50,000-deep array overflowed an 8 MiB stack.

use std::collections::HashSet;
use std::sync::OnceLock;

use simd_json::prelude::*;
use simd_json::BorrowedValue;

use super::pg_catalog::is_catalog_call;

/// The reviewed functions (lower case), with one line per family saying why.
const REVIEWED_TEXT: &str = include_str!("functions.txt");

/// Settings `current_setting()` may read: those that hold no server path (an allowlist, so
/// that a new path-valued setting of DuckDB stays private).
pub const READABLE_SETTINGS: &[&str] = &[
    "threads",
    "worker_threads",
    "memory_limit",
    "max_memory",
    "max_temp_directory_size",
    "preserve_insertion_order",
    "timezone",
    "calendar",
    "default_order",
    "default_null_order",
    "explain_output",
    "enable_progress_bar",
    "access_mode",
];

/// Types no client value may take (see the module's invariants), as DuckDB's JSON names them.
pub const REFUSED_TYPES: &[&str] = &["VARIANT"];

/// What a statement may not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A function (lower case) that is not on the list.
    Function(String),
    /// A value of one of the [`REFUSED_TYPES`].
    Type(&'static str),
    /// A table of an internal catalog ([`INTERNAL_CATALOG_PREFIX`]).
    Catalog,
}

/// Catalogs DuckDB and its extensions attach for themselves: a DuckLake's metadata catalog
/// (`__ducklake_metadata_<lake>`) is the PostgreSQL catalog database itself, with every
/// tenant's file paths and change records. A client's statement never names one.
pub const INTERNAL_CATALOG_PREFIX: &str = "__";

/// A refused catalog, if `node` is a table reference into an internal one.
fn refused_catalog(node: &BorrowedValue<'_>) -> Option<Refused> {
    let catalog = node.get("catalog_name").and_then(|c| c.as_str())?;
    let is_table = node.get("type").and_then(|t| t.as_str()) == Some("BASE_TABLE");
    (is_table && catalog.starts_with(INTERNAL_CATALOG_PREFIX)).then_some(Refused::Catalog)
}

/// A refused type, if `node` is a type object (`{"id": "VARIANT", …}`) of one.
fn refused_type(node: &BorrowedValue<'_>) -> Option<Refused> {
    let id = node.get("id").and_then(|i| i.as_str())?;
    REFUSED_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(id))
        .map(|t| Refused::Type(t))
}

/// How `functions.txt` classes a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A client may call it.
    Allow,
    /// It never runs for a client.
    Refuse,
    /// Only in a bound plan (DuckDB's binder or optimizer adds it).
    Plan,
}

/// One section of `functions.txt`.
#[derive(Debug)]
pub struct Family {
    pub class: Class,
    /// `files: read server files…`: the family's name, then why.
    pub title: &'static str,
    pub names: Vec<&'static str>,
}

/// Every reviewed function, by family (parsed once from `functions.txt`).
pub fn families() -> &'static [Family] {
    static FAMILIES: OnceLock<Vec<Family>> = OnceLock::new();
    FAMILIES.get_or_init(|| parse_families(REVIEWED_TEXT))
}

/// How the review classes `name` (lower case), if it was reviewed.
pub fn class_of(name: &str) -> Option<Class> {
    families()
        .iter()
        .find(|f| f.names.contains(&name))
        .map(|f| f.class)
}

fn parse_families(text: &'static str) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (class, title) = rest.split_once(']').unwrap_or(("refuse", rest));
            let class = match class {
                "allow" => Class::Allow,
                "plan" => Class::Plan,
                _ => Class::Refuse,
            };
            families.push(Family {
                class,
                title: title.trim(),
                names: Vec::new(),
            });
        } else if let Some(family) = families.last_mut() {
            family.names.extend(line.split_whitespace());
        }
    }
    families
}

/// What one tenant's statements may call.
#[derive(Debug, Default)]
pub struct Allowlist {
    /// Callable by name in a client's text (and in plans).
    allowed: HashSet<String>,
    /// Every name `duckdb_functions()` lists, whatever its class.
    present: HashSet<String>,
    /// The macros among them: their bodies show only in a plan.
    macros: HashSet<String>,
    /// Every view's name (`duckdb_views()`: the tenant's, `pg_catalog`'s,
    /// `information_schema`'s): their bodies show only in a plan.
    views: HashSet<String>,
}

/// What [`Allowlist::from_rows`] reads: every function's lower-case name, whether it is
/// DuckDB's own (`internal`) rather than the tenant database's, and its type.
pub const FUNCTIONS_SQL: &str = "SELECT DISTINCT lower(function_name), internal::VARCHAR, \
     function_type FROM duckdb_functions()";

/// What [`Allowlist::with_views`] reads: every view's lower-case name.
pub const VIEWS_SQL: &str = "SELECT DISTINCT lower(view_name) FROM duckdb_views()";

impl Allowlist {
    /// The list for a database whose `duckdb_functions()` gave `rows` ([`FUNCTIONS_SQL`]).
    pub fn from_rows(rows: Vec<Vec<Option<String>>>) -> Self {
        let mut list = Self::default();
        for row in rows {
            let mut cells = row.into_iter();
            let (Some(Some(name)), internal, kind) =
                (cells.next(), cells.next().flatten(), cells.next().flatten())
            else {
                continue;
            };
            let own = internal.as_deref() == Some("false");
            if kind.is_some_and(|k| k.ends_with("macro")) {
                list.macros.insert(name.clone());
            }
            let allowed = match class_of(&name) {
                Some(class) => class == Class::Allow,
                None => own,
            };
            if allowed {
                list.allowed.insert(name.clone());
            }
            list.present.insert(name);
        }
        list
    }

    /// The list, knowing the database's views (the rows of [`VIEWS_SQL`]).
    pub fn with_views(mut self, rows: Vec<Vec<Option<String>>>) -> Self {
        self.views = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        self
    }

    /// Whether the tree could reach a function that only its plan shows: it calls a macro or
    /// reads a view, or a table name DuckDB may resolve to a reader (a path, a URL). A tree
    /// that does neither calls exactly the functions it names, so its plan adds nothing to
    /// check (and planning to JSON is most of a new statement's checks).
    pub fn needs_plan(&self, tree: &BorrowedValue<'_>) -> bool {
        find(tree, &mut |node| {
            let function = node.get("function_name").and_then(|n| n.as_str());
            let table = node.get("table_name").and_then(|n| n.as_str());
            let needs = function.is_some_and(|f| self.macros.contains(&f.to_ascii_lowercase()))
                || is_catalog_call(node)
                || table.is_some_and(|t| {
                    self.views.contains(&t.to_ascii_lowercase())
                        || !t.bytes().all(|b| b == b'_' || b.is_ascii_alphanumeric())
                });
            needs.then_some(())
        })
        .is_some()
    }

    /// The first function the parse tree calls that a client may not, lower case. Table
    /// names are not checked here: a table named like a function (`query`) is still a table,
    /// and a view's body shows in the plan.
    pub fn refused_in_tree(&self, tree: &BorrowedValue<'_>) -> Option<Refused> {
        find(tree, &mut |node| {
            if let Some(r) = refused_type(node).or_else(|| refused_catalog(node)) {
                return Some(r);
            }
            let name = node.get("function_name")?.as_str()?.to_ascii_lowercase();
            if is_catalog_call(node) {
                return None;
            }
            // Not in this database: binding says so (an extension that did not load is
            // `extension_unavailable`), unless the review refuses it anyway.
            let absent = !self.present.contains(&name)
                && class_of(&name).is_none_or(|class| class == Class::Allow);
            let ok =
                absent || self.allowed.contains(&name) || reads_a_readable_setting(node, &name);
            (!ok).then_some(Refused::Function(name))
        })
    }

    /// The first function of the bound plan (`json_serialize_plan`) that is not allowed,
    /// lower case. Bound functions are the objects with a `name` and a `catalog_name`.
    pub fn refused_in_plan(&self, plan: &BorrowedValue<'_>) -> Option<Refused> {
        find(plan, &mut |node| {
            if let Some(r) = refused_type(node) {
                return Some(r);
            }
            node.get("catalog_name")?;
            let name = node.get("name")?.as_str()?.to_ascii_lowercase();
            let ok = self.allowed.contains(&name)
                || class_of(&name) == Some(Class::Plan)
                || reads_a_readable_setting(node, &name);
            (!ok).then_some(Refused::Function(name))
        })
    }
}

/// The first answer `visit` gives for an object of `v`, depth first.
fn find<'v, T>(
    v: &'v BorrowedValue<'v>,
    visit: &mut dyn FnMut(&'v BorrowedValue<'v>) -> Option<T>,
) -> Option<T> {
    if let Some(items) = v.as_array() {
        return items.iter().find_map(|item| find(item, visit));
    }
    let obj = v.as_object()?;
    visit(v).or_else(|| obj.values().find_map(|child| find(child, visit)))
}

/// `current_setting('<a READABLE_SETTINGS entry>')`: one argument, a text constant (a parse
/// tree's `CONSTANT` or a plan's `BOUND_CONSTANT`).
fn reads_a_readable_setting(node: &BorrowedValue<'_>, name: &str) -> bool {
    if name != "current_setting" {
        return false;
    }
    let Some([arg]) = node
        .get("children")
        .and_then(|c| c.as_array())
        .map(|c| c.as_slice())
    else {
        return false;
    };
    let class = arg
        .get("class")
        .or_else(|| arg.get("expression_class"))
        .and_then(|c| c.as_str());
    let value = arg.get("value");
    let is_text = value
        .and_then(|v| v.get("type"))
        .and_then(|t| t.get("id"))
        .and_then(|i| i.as_str())
        == Some("VARCHAR");
    let setting = value.and_then(|v| v.get("value")).and_then(|s| s.as_str());
    matches!(class, Some("CONSTANT" | "BOUND_CONSTANT"))
        && is_text
        && setting.is_some_and(|s| READABLE_SETTINGS.iter().any(|r| r.eq_ignore_ascii_case(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(names: &[(&str, bool)]) -> Vec<Vec<Option<String>>> {
        names
            .iter()
            .map(|(n, internal)| {
                let kind = if n.starts_with("draw") {
                    "macro"
                } else {
                    "scalar"
                };
                vec![
                    Some(n.to_string()),
                    Some(internal.to_string()),
                    Some(kind.to_string()),
                ]
            })
            .collect()
    }

    fn tree(json: &str) -> Vec<u8> {
        json.as_bytes().to_vec()
    }

    #[test]
    fn the_review_has_every_class_and_no_name_twice() {
        let mut seen = HashSet::new();
        for family in families() {
            assert!(!family.names.is_empty(), "{}", family.title);
            for name in &family.names {
                assert!(seen.insert(*name), "{name} is reviewed twice");
                assert_eq!(name.to_ascii_lowercase(), *name);
            }
        }
        assert_eq!(class_of("st_area"), Some(Class::Allow));
        assert_eq!(class_of("st_read_meta"), Some(Class::Refuse));
        assert_eq!(class_of("json_execute_serialized_sql"), Some(Class::Refuse));
        assert_eq!(class_of("seq_scan"), Some(Class::Plan));
    }

    #[test]
    fn tree_names_are_checked_whatever_their_case_or_place() {
        let list = Allowlist::from_rows(rows(&[
            ("st_area", true),
            ("st_read_meta", true),
            ("current_setting", true),
            ("draw", false),
            ("new_in_an_upgrade", true),
        ]));
        let call = |name: &str| {
            format!(
                r#"{{"statements":[{{"from_table":{{"type":"TABLE_FUNCTION","function":{{"class":"FUNCTION","function_name":"{name}","children":[]}}}}}}]}}"#
            )
        };
        let check = |json: String| {
            let mut bytes = json.into_bytes();
            let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
            list.refused_in_tree(&v)
        };
        assert_eq!(
            check(call("ST_Read_Meta")),
            Some(Refused::Function("st_read_meta".into()))
        );
        assert_eq!(check(call("ST_Area")), None);
        // The tenant's own macro; an unknown name is left to DuckDB's binder.
        assert_eq!(check(call("draw")), None);
        assert_eq!(check(call("no_such_function")), None);
        // Allowed by the review but not loaded here (spatial failed): binding says so.
        assert_eq!(check(call("st_point")), None);
        // Listed by DuckDB but never reviewed: refused.
        assert_eq!(
            check(call("new_in_an_upgrade")),
            Some(Refused::Function("new_in_an_upgrade".into()))
        );
        // Reviewed as refused even where this build does not list it.
        assert_eq!(
            check(call("query_table")),
            Some(Refused::Function("query_table".into()))
        );
        // A table named like a function is a table.
        let mut t = tree(r#"{"from_table":{"type":"BASE_TABLE","table_name":"query"}}"#);
        let v = simd_json::to_borrowed_value(&mut t).unwrap();
        assert_eq!(list.refused_in_tree(&v), None);
    }

    #[test]
    fn internal_catalogs_are_refused_by_their_tables() {
        let list = Allowlist::from_rows(rows(&[("sum", true)]));
        let check = |catalog: &str| {
            let mut t = tree(&format!(
                r#"{{"from_table":{{"type":"BASE_TABLE","catalog_name":"{catalog}","schema_name":"ds_t","table_name":"ducklake_data_file"}}}}"#
            ));
            let v = simd_json::to_borrowed_value(&mut t).unwrap();
            list.refused_in_tree(&v)
        };
        assert_eq!(check("__ducklake_metadata_t"), Some(Refused::Catalog));
        assert_eq!(check("t"), None);
        assert_eq!(check(""), None);
    }

    #[test]
    fn only_macros_views_and_paths_need_a_plan() {
        let list = Allowlist::from_rows(rows(&[("sum", true), ("draw", false)]))
            .with_views(vec![vec![Some("pg_settings".into())]]);
        let needs = |json: &str| {
            let mut bytes = json.as_bytes().to_vec();
            let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
            list.needs_plan(&v)
        };
        assert!(!needs(
            r#"{"function_name":"sum","from_table":{"table_name":"people"}}"#
        ));
        assert!(needs(r#"{"function_name":"Draw"}"#));
        assert!(needs(r#"{"from_table":{"table_name":"PG_SETTINGS"}}"#));
        assert!(needs(r#"{"from_table":{"table_name":"data/x.parquet"}}"#));
    }

    #[test]
    fn current_setting_reads_only_readable_constant_names() {
        let list = Allowlist::from_rows(rows(&[("current_setting", true), ("lower", true)]));
        let call = |arg: &str, class: &str| {
            format!(
                r#"{{"{class}":"FUNCTION","function_name":"current_setting","name":"current_setting","catalog_name":"system","children":[{arg}]}}"#
            )
        };
        let constant = |class: &str, s: &str| {
            format!(
                r#"{{"{class}":"CONSTANT","value":{{"type":{{"id":"VARCHAR"}},"value":"{s}"}}}}"#
            )
        };
        let in_tree = |json: String| {
            let mut bytes = json.into_bytes();
            let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
            list.refused_in_tree(&v)
        };
        assert_eq!(in_tree(call(&constant("class", "Threads"), "class")), None);
        assert!(in_tree(call(&constant("class", "temp_directory"), "class")).is_some());
        assert!(in_tree(call(
            r#"{"class":"FUNCTION","function_name":"lower"}"#,
            "class"
        ))
        .is_some());
        let bound = format!(
            r#"{{"expression_class":"BOUND_FUNCTION","name":"current_setting","catalog_name":"system","children":[{{"expression_class":"BOUND_CONSTANT","value":{{"type":{{"id":"VARCHAR"}},"value":"{}"}}}}]}}"#,
            "threads"
        );
        let mut bytes = bound.into_bytes();
        let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
        assert_eq!(list.refused_in_plan(&v), None);
    }

    #[test]
    fn plans_may_hold_what_duckdb_adds_but_nothing_unreviewed() {
        let list = Allowlist::from_rows(rows(&[
            ("sum", true),
            ("seq_scan", true),
            ("duckdb_settings", true),
            ("draw", false),
        ]));
        let plan = |names: &[&str]| {
            let nodes: Vec<String> = names
                .iter()
                .map(|n| format!(r#"{{"name":"{n}","catalog_name":"system","children":[]}}"#))
                .collect();
            format!(r#"{{"plans":[{{"expressions":[{}]}}]}}"#, nodes.join(","))
        };
        let check = |json: String| {
            let mut bytes = json.into_bytes();
            let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
            list.refused_in_plan(&v)
        };
        assert_eq!(check(plan(&["sum", "seq_scan", "draw"])), None);
        // A view's body (pg_settings → duckdb_settings()) shows only in the plan.
        assert_eq!(
            check(plan(&["sum", "duckdb_settings"])),
            Some(Refused::Function("duckdb_settings".into()))
        );
        assert_eq!(
            check(plan(&["unheard_of"])),
            Some(Refused::Function("unheard_of".into()))
        );
        // Objects without a catalog are not functions (columns, tables).
        assert_eq!(check(r#"{"name":"whatever"}"#.into()), None);
        // A VARIANT anywhere (a cast's type, an expression's return type).
        assert_eq!(
            check(r#"{"return_type":{"id":"VARIANT","type_info":null}}"#.into()),
            Some(Refused::Type("VARIANT"))
        );
    }
}
