//! The crate's layering (docs/ARCHITECTURE.md), checked on the source: every `crate::x` path in
//! module `m` names a module of a lower layer than `m`'s. Cycles are then impossible, and a
//! new upward import fails here, naming the file and the line.

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
