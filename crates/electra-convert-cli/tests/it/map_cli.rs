//! `electra-convert map`, and docs/mapping.md checked against the code's tables.

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn root() -> PathBuf {
    crate::repo_root()
}

fn fixture(layout: &str) -> PathBuf {
    root().join("fixtures/electra").join(layout)
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

#[test]
fn map_text_lists_rows_and_reasons() {
    bin()
        .args(["map", "--model", "discriminator"])
        .arg(fixture("tied"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "discriminator_predictions/dense_1/kernel",
        ))
        .stdout(predicate::str::contains(
            "discriminator_predictions.dense_prediction.weight",
        ))
        .stdout(predicate::str::contains("transpose  [128, 1] → [1, 128]"))
        .stdout(predicate::str::contains("global_step"))
        .stdout(predicate::str::contains("training step counter"))
        .stdout(predicate::str::contains("Adam optimizer slots"));
}

#[test]
fn map_json() {
    let out = bin()
        .args(["map", "--model", "generator", "--json"])
        .arg(fixture("tied"))
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // The form as `inspect --json` gives it; nothing fetched from a local checkpoint.
    assert_eq!(v["form"]["id"], "checkpoint");
    assert_eq!(v["form"]["name"], "TensorFlow checkpoint");
    assert!(v["fetched"].is_null(), "{v}");
    let m = &v["models"][0];
    assert_eq!(m["class"], "ElectraForMaskedLM");
    assert_eq!(m["entries"].as_array().unwrap().len(), 44);
    assert_eq!(m["dims"]["hidden_size"], 64);
    assert_eq!(m["dims"]["embedding_size"], 32);
    assert_eq!(m["tied"][0]["hf"], "generator_lm_head.weight");
    let entry = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tf"] == "generator_predictions/output_bias")
        .unwrap();
    assert_eq!(entry["hf"], "generator_lm_head.bias");
    assert_eq!(entry["transform"], "copy");
    let skipped = m["skipped"].as_array().unwrap();
    // tied: 247 variables, 44 mapped.
    assert_eq!(skipped.len(), 247 - 44);
    assert!(skipped
        .iter()
        .any(|s| s["tf"] == "global_step" && s["category"] == "global_step"));
    assert!(skipped.iter().any(|s| s["category"] == "optimizer_slot"));
}

#[test]
fn map_both_and_errors() {
    let out = bin()
        .args(["map", "--model", "both", "--json"])
        .arg(fixture("released"))
        .assert()
        .success();
    let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["models"].as_array().unwrap().len(), 2);

    bin()
        .args(["map", "--model", "generator"])
        .arg(fixture("bert"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not an ELECTRA checkpoint"));
    bin()
        .args(["map", "--model", "discriminator"])
        .arg(fixture("finetuned"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--model encoder"));
}

/// docs/mapping.md embeds the tables rendered from the code; regenerate the block between the
/// markers with `cargo test --test map_cli -- --ignored print_mapping_tables --nocapture`.
#[test]
fn docs_mapping_md_matches_the_code() {
    let doc = std::fs::read_to_string(root().join("docs/mapping.md")).unwrap();
    let begin = "<!-- BEGIN GENERATED TABLES -->\n";
    let end = "<!-- END GENERATED TABLES -->";
    let start = doc.find(begin).expect("begin marker") + begin.len();
    let stop = doc.find(end).expect("end marker");
    assert_eq!(
        &doc[start..stop],
        electra_convert::mapping::markdown_tables(),
        "docs/mapping.md is out of date with src/mapping/table.rs"
    );
}

#[test]
#[ignore]
fn print_mapping_tables() {
    print!("{}", electra_convert::mapping::markdown_tables());
}
