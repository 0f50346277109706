//! `verify DIR --text`: the tied fixture's three model classes, tokenized by the directory's own
//! tokenizer, against what transformers 4.57.6 computes for the same texts
//! (fixtures/text/tied.json, written by fixtures/gen_text.py), the terminal table as a snapshot
//! (UPDATE_SNAPSHOTS=1 rewrites it), and the bad inputs.

use crate::verify_support;

use std::path::{Path, PathBuf};

use crate::cli;
use serde_json::Value;
use verify_support::*;

const KINDS: [&str; 3] = ["discriminator", "generator", "encoder"];

fn root() -> PathBuf {
    crate::repo_root()
}

fn oracle() -> Value {
    let text = std::fs::read_to_string(root().join("fixtures/text/tied.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn texts(oracle: &Value) -> Vec<String> {
    oracle["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// `convert --model KIND` of the tied checkpoint (which has a vocab.txt beside it): a directory
/// with tokenizer.json, vocab.txt and tokenizer_config.json, as a user gets it.
fn converted(tmp: &Path, kind: &str) -> PathBuf {
    let out = tmp.join(format!("converted-{kind}"));
    let status = cli()
        .args(["convert", "--model", kind])
        .arg(checkpoint("tied"))
        .arg("-o")
        .arg(&out)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert!(out.join("tokenizer.json").is_file());
    out
}

/// transformers' own directory for KIND plus the layout's vocab.txt only: the tokenizer is
/// built from vocab.txt (no tokenizer.json, no tokenizer_config.json: lowercasing by default).
fn vocab_only(tmp: &Path, kind: &str) -> PathBuf {
    let dir = tmp.join(format!("vocab-only-{kind}"));
    std::fs::create_dir(&dir).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(model_dir("tied", kind).join(file), dir.join(file)).unwrap();
    }
    std::fs::copy(checkpoint("tied").join("vocab.txt"), dir.join("vocab.txt")).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    cli().arg("verify").arg(dir).args(args).output().unwrap()
}

fn run_json(dir: &Path, texts: &[String]) -> Value {
    let mut args = Vec::new();
    for t in texts {
        args.push("--text");
        args.push(t.as_str());
    }
    args.push("--json");
    let out = run(dir, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(ours: &Value, theirs: &Value, what: &str) {
    let (a, b) = (ours.as_f64().unwrap(), theirs.as_f64().unwrap());
    assert!((a - b).abs() <= 1e-5, "{what}: ours {a}, transformers {b}");
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn ids_and_printed_values_equal_transformers_for_the_fixture_texts() {
    let oracle = oracle();
    let texts = texts(&oracle);
    let tmp = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for kind in KINDS {
        for dir in [converted(tmp.path(), kind), vocab_only(tmp.path(), kind)] {
            let json = run_json(&dir, &texts);
            let class = match kind {
                "discriminator" => "ElectraForPreTraining",
                "generator" => "ElectraForMaskedLM",
                _ => "ElectraModel",
            };
            assert_eq!(json["model"], class);
            let results = json["texts"].as_array().unwrap();
            assert_eq!(results.len(), texts.len());
            for (t, result) in results.iter().enumerate() {
                let at = format!("{} text {}", dir.display(), t + 1);
                assert_eq!(result["text"], texts[t].as_str());
                let tokens = result["tokens"].as_array().unwrap();
                let got_ids: Vec<u64> = tokens.iter().map(|k| k["id"].as_u64().unwrap()).collect();
                assert_eq!(got_ids, ids(&oracle["ids"][t]), "{at}: ids");
                let names: Vec<&str> = tokens
                    .iter()
                    .map(|k| k["token"].as_str().unwrap())
                    .collect();
                let want: Vec<&str> = oracle["tokens"][t]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k.as_str().unwrap())
                    .collect();
                assert_eq!(names, want, "{at}: tokens");
                let expected = &oracle["outputs"][kind][t];
                match kind {
                    "discriminator" => {
                        for (p, k) in tokens.iter().enumerate() {
                            close(
                                &k["replaced_probability"],
                                &expected["replaced_probability"][p],
                                &format!("{at} position {p}"),
                            );
                            compared += 1;
                        }
                    }
                    "generator" if expected.get("masks").is_some() => {
                        assert!(result.get("reconstruction").is_none());
                        let masks = result["masks"].as_array().unwrap();
                        let want = expected["masks"].as_array().unwrap();
                        assert_eq!(masks.len(), want.len(), "{at}: masks");
                        for (m, w) in masks.iter().zip(want) {
                            assert_eq!(m["position"], w["position"], "{at}");
                            let top = m["top"].as_array().unwrap();
                            assert_eq!(top.len(), 5);
                            for (r, (ours, theirs)) in
                                top.iter().zip(w["top"].as_array().unwrap()).enumerate()
                            {
                                assert_eq!(ours["id"], theirs[0], "{at} mask rank {r}");
                                close(&ours["probability"], &theirs[1], &format!("{at} rank {r}"));
                                compared += 1;
                            }
                        }
                    }
                    "generator" => {
                        assert!(result.get("masks").is_none());
                        for (p, k) in tokens.iter().enumerate() {
                            let pred = &k["predicted"];
                            assert_eq!(pred["id"], expected["top1"][p][0], "{at} position {p}");
                            close(&pred["probability"], &expected["top1"][p][1], &at);
                            compared += 1;
                        }
                        let r = &result["reconstruction"];
                        assert_eq!(r["equal"], expected["equal"], "{at}");
                        assert_eq!(r["positions"].as_u64().unwrap(), tokens.len() as u64);
                    }
                    _ => {
                        for (p, k) in tokens.iter().enumerate() {
                            assert_eq!(k["shape"], serde_json::json!([expected["hidden_size"]]));
                            close(&k["norm"], &expected["norm"][p], &format!("{at} norm {p}"));
                            compared += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(compared > 150, "{compared}");
}

#[test]
fn a_text_longer_than_the_position_table_is_truncated_with_a_warning_or_refused() {
    let oracle = oracle();
    let long = &oracle["long"];
    let text = long["text"].as_str().unwrap();
    let untruncated = long["tokens_untruncated"].as_u64().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = converted(tmp.path(), "discriminator");

    let out = run(&dir, &["--text", text, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("text 1 has {untruncated} tokens"))
            && stderr.contains("max_position_embeddings 32"),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = &json["texts"][0];
    assert_eq!(result["truncated_from"].as_u64(), Some(untruncated));
    let tokens = result["tokens"].as_array().unwrap();
    let got: Vec<u64> = tokens.iter().map(|k| k["id"].as_u64().unwrap()).collect();
    assert_eq!(got, ids(&long["ids"]), "transformers' truncation=True ids");
    for (p, k) in tokens.iter().enumerate() {
        close(
            &k["replaced_probability"],
            &long["replaced_probability"][p],
            &format!("position {p}"),
        );
    }

    let out = run(
        &dir,
        &["--text", "he said", "--text", text, "--no-truncate"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("text 2 has {untruncated} tokens"))
            && stderr.contains("max_position_embeddings 32")
            && stderr.contains("--no-truncate"),
        "{stderr}"
    );
}

/// The terminal table, for the three classes, with the directory path replaced by `DIR`.
fn table(dir: &Path, texts: &[&str]) -> String {
    let mut args = Vec::new();
    for t in texts {
        args.push("--text");
        args.push(*t);
    }
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(&dir.display().to_string(), "DIR")
}

#[test]
fn the_terminal_table_matches_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let mut got = String::new();
    for (kind, texts) in [
        ("discriminator", &["he said it was the first time"][..]),
        (
            "generator",
            &["the [MASK] of the time was [MASK] .", "he said it was"][..],
        ),
        ("encoder", &["which one would you have"][..]),
    ] {
        got.push_str(&format!("$ electra-convert verify DIR/{kind} --text ...\n"));
        got.push_str(&table(&converted(tmp.path(), kind), texts));
        got.push('\n');
    }
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/verify_text_tied.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &got).unwrap();
    }
    let want = std::fs::read_to_string(&snapshot).unwrap();
    assert_eq!(got, want, "the table differs from {}", snapshot.display());
    // Not a terminal: the marker is plain text, no escape sequences.
    assert!(!got.contains('\x1b'));
    assert!(got.contains("<- replaced"));
}

fn expect_error(out: &std::process::Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = vocab_only(tmp.path(), "generator");

    // No tokenizer in the directory: what is missing and how to add it.
    let bare = model_dir("tied", "discriminator");
    expect_error(
        &run(&bare, &["--text", "he said"]),
        1,
        &["no tokenizer", "tokenizer.json", "vocab.txt", "--vocab"],
    );
    // An empty text, alone or among others.
    expect_error(&run(&dir, &["--text", ""]), 1, &["text 1 is empty"]);
    expect_error(
        &run(&dir, &["--text", "he said", "--text", "  "]),
        1,
        &["text 2 is empty"],
    );
    // Invalid UTF-8 in --text-file: the byte and where it is.
    let file = tmp.path().join("texts.txt");
    std::fs::write(&file, b"he said it\nwas \xe9t\xe9\n").unwrap();
    expect_error(
        &run(&dir, &["--text-file", file.to_str().unwrap()]),
        1,
        &["texts.txt", "not UTF-8", "0xe9", "byte offset 15", "line 2"],
    );
    // A blank file.
    std::fs::write(&file, "\n\n").unwrap();
    expect_error(
        &run(&dir, &["--text-file", file.to_str().unwrap()]),
        1,
        &["holds no text"],
    );
    // A good file: one text per line, same as --text.
    std::fs::write(&file, "he said it\n\nthe [MASK] was\n").unwrap();
    let out = run(&dir, &["--text-file", file.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["texts"].as_array().unwrap().len(), 2);
    assert_eq!(json["texts"][1]["masks"][0]["position"], 2);

    // A vocabulary larger than the model's embedding table.
    let big = vocab_only(tmp.path(), "discriminator");
    let mut vocab = std::fs::read_to_string(big.join("vocab.txt")).unwrap();
    vocab.push_str("zebra\n");
    std::fs::write(big.join("vocab.txt"), vocab).unwrap();
    expect_error(
        &run(&big, &["--text", "he said"]),
        1,
        &["81 tokens", "vocab_size is 80"],
    );

    // Usage errors (exit 2): --no-truncate without a text, a text with another mode.
    let out = run(&dir, &["--checkpoint", "x", "--no-truncate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&dir, &["--text", "he", "--checkpoint", "x"]);
    assert_eq!(out.status.code(), Some(2));
}
