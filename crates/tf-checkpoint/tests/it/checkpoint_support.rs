//! Helpers shared by the checkpoint test files (fixture paths, expected.json, hex).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub(crate) fn fixtures() -> PathBuf {
    crate::repo_root().join("fixtures")
}

/// Every `fixtures/<group>/<name>` directory, sorted.
pub(crate) fn fixture_dirs(group: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures().join(group))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no fixtures under {group}");
    dirs
}

pub(crate) fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// TF's listing for a fixture dir as `(name, dtype, shape)`, from expected.json or
/// tf_variables.json.
pub(crate) fn tf_listing(dir: &Path) -> Vec<(String, String, Vec<u64>)> {
    let shape = |v: &serde_json::Value| -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect()
    };
    let expected = dir.join("expected.json");
    if expected.exists() {
        read_json(&expected)["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["dtype"].as_str().unwrap().to_string(),
                    shape(&v["shape"]),
                )
            })
            .collect()
    } else {
        read_json(&dir.join("tf_variables.json"))
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v[0].as_str().unwrap().to_string(),
                    v[2].as_str().unwrap().to_string(),
                    shape(&v[1]),
                )
            })
            .collect()
    }
}

/// The checkpoint prefix inside a fixture directory (the only `*.index`).
pub(crate) fn prefix_in(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            name.strip_suffix(".index").map(|stem| dir.join(stem))
        })
        .collect();
    assert_eq!(found.len(), 1, "{dir:?}");
    found.remove(0)
}

/// Copy a fixture directory's files into a fresh temp dir.
pub(crate) fn copy_fixture(dir: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    tmp
}
