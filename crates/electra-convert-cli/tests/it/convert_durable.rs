//! `convert` leaves a durable output: every file it writes is synced to disk, then each
//! directory whose entries it created, and after the rename into place the parent directory.
//! Observed through the opt-in write trace (`ELECTRA_CONVERT_WRITE_TRACE`), which records each
//! sync as it returns.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn tied() -> PathBuf {
    crate::repo_root().join("fixtures/electra/tied")
}

/// Steps of the trace, in the order their spans were recorded, with start and end (µs).
fn spans(trace: &Path) -> Vec<(String, String, u64, u64)> {
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("epoch "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let start: u64 = f[2].parse().unwrap();
            let dur: u64 = f[3].parse().unwrap();
            (f[0].to_owned(), f[1].to_owned(), start, start + dur)
        })
        .collect()
}

fn count(spans: &[(String, String, u64, u64)], step: &str) -> usize {
    spans.iter().filter(|s| s.1 == step).count()
}

fn traced_convert(model: &str, dir: &Path) -> Vec<(String, String, u64, u64)> {
    let trace = dir.join("trace.txt");
    let out = dir.join("out");
    Command::cargo_bin("electra-convert")
        .unwrap()
        .env("ELECTRA_CONVERT_WRITE_TRACE", &trace)
        .args(["--model", model])
        .arg(tied())
        .arg("-o")
        .arg(&out)
        .arg("--quiet")
        .assert()
        .success();
    // The tied fixture comes with a vocab.txt: all seven files are written per model.
    let kinds: &[&str] = if model == "both" {
        &["discriminator", "generator"]
    } else {
        &["."]
    };
    for kind in kinds {
        for file in [
            "model.safetensors",
            "config.json",
            "vocab.txt",
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "README.md",
        ] {
            assert!(out.join(kind).join(file).is_file(), "{kind}/{file}");
        }
    }
    spans(&trace)
}

#[test]
fn one_model_syncs_every_file_and_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let spans = traced_convert("discriminator", tmp.path());
    assert_eq!(count(&spans, "fsync_model"), 1);
    // config.json, vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json,
    // README.md (the model card)
    assert_eq!(count(&spans, "fsync"), 6);
    // the model directory once its files exist, again once the model card is renamed into it;
    // the staging directory before the rename (the same directory here); the parent after it
    assert_eq!(count(&spans, "fsync_dir"), 4);
    // The model file is synced after its last byte was written, and the parent directory
    // last of all.
    let last_write = spans
        .iter()
        .filter(|s| s.1 == "pwrite")
        .map(|s| s.3)
        .max()
        .unwrap();
    let model_sync = spans.iter().find(|s| s.1 == "fsync_model").unwrap();
    assert!(model_sync.2 >= last_write);
    let last = spans.iter().max_by_key(|s| s.3).unwrap();
    assert_eq!(last.1, "fsync_dir");
}

#[test]
fn both_models_sync_every_file_and_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let spans = traced_convert("both", tmp.path());
    assert_eq!(count(&spans, "fsync_model"), 2);
    assert_eq!(count(&spans, "fsync"), 12);
    // discriminator/ and generator/ (each after its files and after its model card), the
    // staging directory holding them, the parent
    assert_eq!(count(&spans, "fsync_dir"), 6);
}
