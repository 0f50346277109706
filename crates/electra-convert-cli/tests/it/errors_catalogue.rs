//! Keeps `docs/errors.md` honest: every error enum of the library (found by scanning `src/` for
//! `pub enum …Error`) must have a section there, every variant must be listed as
//! `` `Enum::Variant` ``, and the page must not list variants that no longer exist.
//! No reflection needed: the enum bodies are read from the source files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::rust_files;

/// Skip a string literal starting at `i` (which is the opening quote); returns the index after it.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Variant names of the enum whose body starts right after the `{` at `open`.
fn variants(src: &str, open: usize) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut depth = 1usize;
    let mut at_item_start = true;
    let mut i = open + 1;
    while i < b.len() && depth > 0 {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' {
            i = skip_string(b, i);
            continue;
        }
        if c == b'#' && depth == 1 {
            // An attribute: skip its balanced brackets (strings inside included).
            let mut j = i + 1;
            let mut brackets = 0usize;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'[' => brackets += 1,
                    b']' => {
                        brackets -= 1;
                        if brackets == 0 {
                            j += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j;
            continue;
        }
        match c {
            b'{' | b'(' | b'[' => depth += 1,
            b'}' | b')' | b']' => depth -= 1,
            b',' if depth == 1 => at_item_start = true,
            c if depth == 1 && at_item_start && (c.is_ascii_alphabetic() || c == b'_') => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(src[start..i].to_string());
                at_item_start = false;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every `pub enum XxxError { … }` under `crates/*/src/`, with its variants.
fn error_enums() -> BTreeMap<String, (PathBuf, Vec<String>)> {
    let root = crate::repo_root();
    let mut files = Vec::new();
    for krate in ["tf-checkpoint", "electra-convert", "electra-convert-cli"] {
        rust_files(&root.join("crates").join(krate).join("src"), &mut files);
    }
    let mut enums = BTreeMap::new();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        let mut rest = 0;
        while let Some(found) = src[rest..].find("pub enum ") {
            let name_start = rest + found + "pub enum ".len();
            let name_end = name_start
                + src[name_start..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap();
            let name = &src[name_start..name_end];
            rest = name_end;
            if !name.ends_with("Error") {
                continue;
            }
            let open = name_end + src[name_end..].find('{').unwrap();
            let list = variants(&src, open);
            assert!(
                !list.is_empty(),
                "no variants parsed for {name} in {file:?}"
            );
            let rel = file.strip_prefix(&root).unwrap().to_path_buf();
            assert!(
                enums.insert(name.to_string(), (rel, list)).is_none(),
                "two enums named {name}"
            );
        }
    }
    enums
}

fn catalogue() -> String {
    std::fs::read_to_string(crate::repo_root().join("docs/errors.md"))
        .expect("docs/errors.md exists")
}

#[test]
fn the_scanner_finds_the_known_enums() {
    let enums = error_enums();
    let checkpoint = &enums["CheckpointError"].1;
    assert!(
        checkpoint.contains(&"NotFound".to_string()),
        "{checkpoint:?}"
    );
    assert!(
        checkpoint.contains(&"BadSlices".to_string()),
        "{checkpoint:?}"
    );
    assert!(enums.contains_key("TableError"));
    // Field names and attribute text must not be mistaken for variants.
    assert!(!checkpoint.contains(&"path".to_string()));
    assert!(!checkpoint.contains(&"error".to_string()));
}

#[test]
fn every_error_enum_and_variant_is_documented() {
    let doc = catalogue();
    let mut missing = Vec::new();
    for (name, (file, list)) in error_enums() {
        if !doc.contains(&format!("## `{name}`")) {
            missing.push(format!("section `## `{name}`` ({})", file.display()));
        }
        for v in list {
            if !doc.contains(&format!("`{name}::{v}`")) {
                missing.push(format!("`{name}::{v}` ({})", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/errors.md does not document:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_catalogue_lists_no_stale_variants() {
    let doc = catalogue();
    let enums = error_enums();
    let known: BTreeSet<String> = enums
        .iter()
        .flat_map(|(name, (_, list))| list.iter().map(move |v| format!("{name}::{v}")))
        .collect();
    let mut stale = Vec::new();
    for piece in doc.split('`') {
        if let Some((name, variant)) = piece.split_once("::") {
            let is_variant = name.ends_with("Error")
                && enums.contains_key(name)
                && variant.chars().all(|c| c.is_alphanumeric() || c == '_');
            if is_variant && !known.contains(piece) {
                stale.push(piece.to_string());
            }
            if name.ends_with("Error") && !enums.contains_key(name) && !name.contains(' ') {
                stale.push(format!("{piece} (no enum {name} in src/)"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "docs/errors.md lists variants that do not exist: {stale:?}"
    );
}

#[test]
fn the_catalogue_states_the_exit_codes() {
    let doc = catalogue();
    for code in [
        electra_convert_cli::exit::SUCCESS,
        electra_convert_cli::exit::FAILURE,
        electra_convert_cli::exit::USAGE,
        electra_convert_cli::exit::PARITY_FAILED,
    ] {
        assert!(
            doc.contains(&format!("| {code} |")),
            "exit code {code} missing from the table"
        );
    }
    assert!(
        doc.contains("nothing on stdout"),
        "the stdout rule is missing"
    );
}
