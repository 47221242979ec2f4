//! The crate's layering (docs/ARCHITECTURE.md), checked on the source: every `crate::x` path in
//! module `m` names a module of a lower layer than `m`'s. Cycles are then impossible, and a
//! new upward import fails here, naming the file and the line.
//!
//! Below the top level there are no layers, but there are no cycles either: the submodules of
//! every module (`engine`'s `tenant`, `scratch`, `stamp`…, and those of nested folders) import
//! each other along an acyclic graph, built from the `super::`, `self::` and `crate::` paths of
//! each file; a cycle fails here, naming its modules and the lines that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer: a module may import only modules of a lower layer.
const LAYERS: &[(&str, u32)] = &[
    ("wire", 0),
    ("metrics", 0),
    ("telemetry", 0),
    ("duck", 1),
    ("encode", 2),
    ("error", 3),
    ("auth", 4),
    ("engine", 4),
    ("transport", 5),
    ("config", 6),
    ("demo", 6),
    ("app", 7),
];

fn layer(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut checked = 0;
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs");
        if module == "lib" || module == "main" {
            continue;
        }
        let own = layer(module).unwrap_or_else(|| panic!("{module} has no layer in LAYERS"));
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                // `duckstream::crate::` cannot occur; skip `$crate::` in macros.
                if code[..i].ends_with('$') {
                    continue;
                }
                let target: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if target == module || target.is_empty() {
                    continue;
                }
                checked += 1;
                match layer(&target) {
                    Some(l) if l < own => {}
                    _ => violations.push(format!(
                        "{}:{}: {module} imports crate::{target}",
                        rel.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
    assert!(
        checked > 50,
        "only {checked} imports found: is the scan broken?"
    );
}

/// A file's module path: `engine/store/local.rs` → `engine::store::local`, a `mod.rs` its
/// folder's (`engine/mod.rs` → `engine`); the crate root (`lib.rs`, `main.rs`) is empty.
fn module_path(rel: &Path) -> Vec<String> {
    let mut path: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

/// The code of a file as the import scan reads it: `//` comments blanked (doc comments name
/// modules in links, which are no imports), and the unit tests cut off (in `mod tests`,
/// `super::` is the file's own module, not its parent).
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let next = lines.peek().map(|l| l.trim_start()).unwrap_or_default();
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") {
            break;
        }
        code.push_str(line.split("//").next().unwrap_or_default());
        code.push('\n');
    }
    code
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn skip_space(s: &[u8], i: &mut usize) {
    while *i < s.len() && s[*i].is_ascii_whitespace() {
        *i += 1;
    }
}

/// Reads one path of a `use` tree or an expression at `s[*i..]`, after `prefix`, into `out`:
/// `a::b::C`, and brace groups expanded (`a::{b, c::{self, D}}` gives `a::b`, `a::c::self`,
/// `a::c::D`).
fn read_path(s: &[u8], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    loop {
        skip_space(s, i);
        if s.get(*i) == Some(&b'{') {
            *i += 1;
            loop {
                skip_space(s, i);
                match s.get(*i) {
                    None => return,
                    Some(b'}') => {
                        *i += 1;
                        return;
                    }
                    Some(b',') => *i += 1,
                    Some(_) => {
                        let before = *i;
                        read_path(s, i, prefix.clone(), out);
                        if *i == before {
                            *i += 1; // `*`, or what a path cannot hold: step over it.
                        }
                    }
                }
            }
        }
        let start = *i;
        while *i < s.len() && is_ident(s[*i]) {
            *i += 1;
        }
        if *i == start {
            out.push(prefix);
            return;
        }
        prefix.push(String::from_utf8_lossy(&s[start..*i]).into_owned());
        if s[*i..].starts_with(b"::") {
            *i += 2;
        } else {
            out.push(prefix);
            return;
        }
    }
}

/// Every path in `code` that starts with `crate::`, `super::` or `self::` (each once, from
/// its first segment), with the byte offset where it starts.
fn anchored_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let s = code.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let anchored = ["crate::", "super::", "self::"]
            .iter()
            .any(|a| s[i..].starts_with(a.as_bytes()));
        // Not inside a longer path or name (`a::super::`, `my_self::`), nor `$crate::`.
        let free = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == b':' || s[i - 1] == b'$');
        if anchored && free {
            let start = i;
            let mut paths = Vec::new();
            read_path(s, &mut i, Vec::new(), &mut paths);
            found.extend(paths.into_iter().map(|p| (start, p)));
        } else {
            i += 1;
        }
    }
    found
}

/// The paths of every `use` tree in `code` as written (`use tenant::{Tenant, X}` gives
/// `tenant::Tenant` and `tenant::X`).
fn use_paths(code: &str) -> Vec<Vec<String>> {
    let s = code.as_bytes();
    let mut out = Vec::new();
    for (i, _) in code.match_indices("use ") {
        if i > 0 && !(s[i - 1].is_ascii_whitespace() || s[i - 1] == b')') {
            continue;
        }
        let mut at = i + 4;
        read_path(s, &mut at, Vec::new(), &mut out);
    }
    out
}

/// `path` as written in module `module`, made absolute (`super::x` in `engine::tenant` is
/// `engine::x`); `None` for a path that is not anchored (another crate, a local name).
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut abs = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("self") => module.to_vec(),
        Some("super") => module.to_vec(),
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        abs.pop()?;
        while rest.first().is_some_and(|s| s == "super") {
            abs.pop()?;
            rest = &rest[1..];
        }
    }
    abs.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(abs)
}

/// Sibling imports, per parent module: `graph[parent][from][to]` is where (file and line)
/// submodule `from` of `parent` first names its sibling `to`.
type Graphs = BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, String>>>;

/// The submodule graph of every module in `src`: an edge for each path that leaves a
/// submodule into one of its siblings, directly (`super::scratch::X`, `crate::engine::scratch`)
/// or through a name the parent imports from that sibling (`super::TenantLimits`, which
/// `engine/mod.rs` takes from `tenant`). References from a module to its own submodules or to
/// its parent's items are not edges.
fn sibling_graphs(src: &Path) -> Graphs {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let files: Vec<(Vec<String>, String, String)> = files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(src).unwrap();
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            (module_path(rel), rel.display().to_string(), code)
        })
        .collect();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _, _)| m.clone()).collect();
    // A name a module imports from one of its submodules: children reach it as `super::name`.
    let mut imported: BTreeMap<Vec<String>, String> = BTreeMap::new();
    for (module, _, code) in &files {
        for path in use_paths(code) {
            let path: Vec<String> = match path.first().map(String::as_str) {
                Some("self") => path[1..].to_vec(),
                _ => path,
            };
            let (Some(child), Some(name)) = (path.first(), path.last()) else {
                continue;
            };
            let mut sub = module.clone();
            sub.push(child.clone());
            if path.len() > 1 && modules.contains(&sub) {
                let mut item = module.clone();
                item.push(name.clone());
                imported.insert(item, child.clone());
            }
        }
    }
    let mut graphs = Graphs::new();
    for (module, rel, code) in &files {
        for (at, path) in anchored_paths(code) {
            let Some(abs) = resolve(module, &path) else {
                continue;
            };
            let shared = module.iter().zip(&abs).take_while(|(a, b)| a == b).count();
            if shared >= module.len() || shared >= abs.len() {
                continue; // Its own submodule, or its parent itself.
            }
            let parent = module[..shared].to_vec();
            let mut target = abs[..=shared].to_vec();
            if !modules.contains(&target) {
                match imported.get(&target) {
                    Some(child) => *target.last_mut().unwrap() = child.clone(),
                    None => continue, // An item of the parent's own.
                }
            }
            let (from, to) = (module[shared].clone(), target[shared].clone());
            if from == to {
                continue;
            }
            let line = code[..at].matches('\n').count() + 1;
            graphs
                .entry(parent)
                .or_default()
                .entry(from)
                .or_default()
                .entry(to)
                .or_insert_with(|| format!("{rel}:{line} {}", path.join("::")));
        }
    }
    graphs
}

/// The cycles of `graph` (`from` → `to`s), each as its modules with the first repeated at
/// the end; one for each edge that closes a cycle in a depth-first walk, so none if acyclic.
fn cycles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    fn walk(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
        found: &mut Vec<Vec<String>>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            found.push(cycle);
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            walk(next, graph, done, stack, found);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    let mut found = Vec::new();
    for node in graph.keys() {
        walk(node, graph, &mut done, &mut Vec::new(), &mut found);
    }
    found
}

#[test]
fn submodules_import_each_other_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graphs = sibling_graphs(&src);
    let mut found = Vec::new();
    for (parent, graph) in &graphs {
        for cycle in cycles(graph) {
            let name = if parent.is_empty() {
                "crate".to_string()
            } else {
                parent.join("::")
            };
            let why: Vec<&str> = cycle
                .windows(2)
                .map(|w| graph[&w[0]][&w[1]].as_str())
                .collect();
            found.push(format!(
                "in {name}: {} (at {})",
                cycle.join(" → "),
                why.join("; ")
            ));
        }
    }
    assert!(
        found.is_empty(),
        "import cycles among submodules:\n{}",
        found.join("\n")
    );
    let edges: usize = graphs
        .values()
        .flat_map(|g| g.values())
        .map(|e| e.len())
        .sum();
    assert!(
        edges > 30,
        "only {edges} sibling imports found: is the scan broken?"
    );
}

#[test]
fn the_scan_reads_use_trees_and_finds_cycles() {
    let code = "use super::{scratch::{self, Derived}, stamp::Stamp};\n\
                let x = crate::engine::tenant::Tenant::new(); $crate::no::x; a::super::no;";
    let paths: Vec<String> = anchored_paths(code)
        .into_iter()
        .map(|(_, p)| p.join("::"))
        .collect();
    assert_eq!(
        paths,
        [
            "super::scratch::self",
            "super::scratch::Derived",
            "super::stamp::Stamp",
            "crate::engine::tenant::Tenant::new"
        ]
    );
    let module = [
        "engine".to_string(),
        "store".to_string(),
        "local".to_string(),
    ];
    let up = |p: &str| {
        resolve(
            &module,
            &p.split("::").map(String::from).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        up("super::super::pool::X").unwrap(),
        ["engine", "pool", "X"]
    );
    assert_eq!(up("self::x").unwrap(), ["engine", "store", "local", "x"]);
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string())
                .or_default()
                .insert(b.to_string(), String::new());
        }
        g
    };
    assert_eq!(
        cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])),
        [["a", "b", "c", "a"]]
    );
    assert!(cycles(&graph(&[("a", "b"), ("a", "c"), ("b", "c")])).is_empty());
}
