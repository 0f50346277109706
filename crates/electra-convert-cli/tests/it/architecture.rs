//! docs/architecture.md is a rule, not a description: every crate depends only on the crates it
//! names, never on the ones it forbids, the libraries never print, exit or handle signals, and
//! every module uses only the modules in its "may use" column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CRATES: [&str; 3] = ["tf-checkpoint", "electra-convert", "electra-convert-cli"];

fn doc() -> String {
    std::fs::read_to_string(crate::repo_root().join("docs/architecture.md")).unwrap()
}

/// The backticked names of one table cell (`—` gives none).
fn names(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The rows of the first table after `heading` whose header starts with `first_column`:
/// first cell (its backticked name) → the cells.
fn table(doc: &str, heading: &str, first_column: &str) -> BTreeMap<String, Vec<String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} in architecture.md"));
    let mut rows = BTreeMap::new();
    let mut inside = false;
    for line in doc[start..].lines().skip(1) {
        if line.starts_with("## ") {
            break;
        }
        if line.starts_with(&format!("| {first_column} |")) {
            inside = true;
            continue;
        }
        if !inside || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect();
        let key = names(&cells[0])
            .into_iter()
            .next()
            .expect("a backticked name");
        rows.insert(key, cells);
    }
    assert!(!rows.is_empty(), "no table under {heading}");
    rows
}

fn crate_dir(name: &str) -> PathBuf {
    crate::repo_root().join("crates").join(name)
}

use crate::rust_files;

/// Source without comments (line comments and doc comments), so links in docs do not count.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The normal (not dev, not build) dependency names of a crate's manifest.
fn dependencies(name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(crate_dir(name).join("Cargo.toml")).unwrap();
    let manifest: toml::Table = toml::from_str(&text).unwrap();
    let mut deps = BTreeSet::new();
    let mut take = |table: Option<&toml::Value>| {
        if let Some(t) = table.and_then(|t| t.as_table()) {
            deps.extend(t.keys().cloned());
        }
    };
    take(manifest.get("dependencies"));
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        for target in targets.values() {
            take(target.get("dependencies"));
        }
    }
    deps
}

#[test]
fn crates_depend_only_on_what_the_crate_table_allows() {
    let doc = doc();
    let rows = table(&doc, "## Crates", "crate");
    assert_eq!(
        rows.keys().cloned().collect::<BTreeSet<_>>(),
        CRATES.iter().map(|c| c.to_string()).collect(),
        "the crate table names exactly the workspace's crates"
    );
    for (name, cells) in &rows {
        let deps = dependencies(name);
        let ours: BTreeSet<String> = deps
            .iter()
            .filter(|d| CRATES.contains(&d.as_str()))
            .cloned()
            .collect();
        assert_eq!(
            ours,
            names(&cells[1]),
            "{name}: crates of ours it depends on"
        );
        for forbidden in names(&cells[2]) {
            assert!(
                !deps.contains(&forbidden),
                "{name} depends on {forbidden}, which architecture.md forbids"
            );
        }
    }
}

#[test]
fn the_libraries_never_print_exit_or_handle_signals() {
    for name in ["tf-checkpoint", "electra-convert"] {
        let manifest = std::fs::read_to_string(crate_dir(name).join("Cargo.toml")).unwrap();
        for lint in ["print_stdout", "print_stderr", "exit"] {
            assert!(
                manifest.contains(&format!("{lint} = \"deny\"")),
                "{name} denies clippy::{lint}"
            );
        }
        let mut files = Vec::new();
        rust_files(&crate_dir(name).join("src"), &mut files);
        for file in files {
            let src = code(&file);
            for needle in ["println!", "eprintln!", "process::exit", "signal_hook"] {
                assert!(!src.contains(needle), "{needle} in {}", file.display());
            }
        }
    }
}

/// The module a `src/` file belongs to: its first path component (`mapping/tf2.rs` → `mapping`,
/// `kernels.rs` → `kernels`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Modules of the same crate a file uses: `crate::NAME` paths, and `super::NAME` in a top-level
/// file (whose parent is the crate root).
fn used_modules(file: &Path, src: &Path, known: &BTreeSet<String>) -> BTreeSet<String> {
    let text = code(file);
    let top_level = file.parent() == Some(src);
    let mut used = BTreeSet::new();
    for prefix in ["crate::", "super::"] {
        if prefix == "super::" && !top_level {
            continue;
        }
        let mut rest = text.as_str();
        while let Some(i) = rest.find(prefix) {
            let after = &rest[i + prefix.len()..];
            for name in first_segments(after) {
                if known.contains(&name) {
                    used.insert(name);
                }
            }
            rest = after;
        }
    }
    used
}

/// The module names a path after `crate::` starts with: `name` for `name::…`, and for a group
/// `{a::x, b, c::{y, z}}` each item's first segment.
fn first_segments(after: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = after.strip_prefix('{') else {
        return vec![ident(after)];
    };
    let (mut depth, mut items, mut start) = (0usize, Vec::new(), 0usize);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
        .into_iter()
        .map(ident)
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn every_module_uses_only_what_its_row_allows() {
    let doc = doc();
    for name in CRATES {
        let rows = table(&doc, &format!("## `{name}`"), "module");
        let src = crate_dir(name).join("src");
        let modules: BTreeMap<String, BTreeSet<String>> = rows
            .iter()
            .map(|(key, cells)| {
                let module = key
                    .trim_end_matches('/')
                    .trim_end_matches(".rs")
                    .to_string();
                let allowed = names(&cells[2])
                    .into_iter()
                    .map(|m| m.trim_end_matches('/').trim_end_matches(".rs").to_string())
                    .collect();
                (module, allowed)
            })
            .collect();
        let known: BTreeSet<String> = modules.keys().cloned().collect();
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let module = module_of(&src, &file);
            let allowed = modules.get(&module).unwrap_or_else(|| {
                panic!(
                    "{} belongs to module `{module}`, which architecture.md's {name} table does not list",
                    file.display()
                )
            });
            if module == "lib" {
                continue;
            }
            for used in used_modules(&file, &src, &known) {
                assert!(
                    used == module || allowed.contains(&used),
                    "{} ({name}::{module}) uses `{used}`, not in its row of architecture.md",
                    file.display()
                );
            }
        }
    }
}

/// The rule test itself can fail: a use the table does not allow is found.
#[test]
fn a_forbidden_use_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path();
    std::fs::create_dir(src.join("mapping")).unwrap();
    std::fs::write(
        src.join("mapping/x.rs"),
        "// crate::verify in a comment is fine\nuse crate::verify::Thing;\nuse crate::{\n    batch::Job,\n    write::{a, b},\n};\n",
    )
    .unwrap();
    let known: BTreeSet<String> = ["verify", "mapping", "options", "batch", "write"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let used = used_modules(&src.join("mapping/x.rs"), src, &known);
    // A grouped `use crate::{…}` is seen item by item.
    assert_eq!(
        used,
        ["batch", "verify", "write"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
    assert_eq!(module_of(src, &src.join("mapping/x.rs")), "mapping");
}
