//! The model directory as today's stack reads it: tokenizer.json against transformers 5.23.0's,
//! tokenization against transformers 4.57.6's slow `ElectraTokenizer`, the tokenizer decisions
//! inferred per vocabulary, and the load reports of both transformers versions for every
//! fixture x kind (fixtures/gen_tokenizer.py, fixtures/gen_hf5.py).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn root() -> PathBuf {
    crate::repo_root()
}

fn tok_fixtures() -> PathBuf {
    root().join("fixtures/hfdir/tokenizer")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Vocabulary fixture → (do_lower_case, strip_accents) electra-convert must infer.
const VOCABS: [(&str, bool, bool); 4] = [
    ("lower_plain", true, true),
    ("lower_accented", true, false),
    ("cased", false, false),
    ("missing_specials", true, true),
];

/// The texts of texts.json: the ones all tokenizers agree on, then the known divergences.
fn texts() -> (Vec<String>, Vec<String>) {
    let t = read_json(&tok_fixtures().join("texts.json"));
    let list = |k: &str| -> Vec<String> {
        t[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    (list("agree"), list("diverge"))
}

/// Convert the untied encoder with this vocabulary fixture.
fn convert_with_vocab(vocab: &str, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("electra-convert")
        .unwrap()
        .args(["--model", "encoder"])
        .arg(root().join("fixtures/electra/untied"))
        .arg("-o")
        .arg(out)
        .arg("--vocab")
        .arg(tok_fixtures().join(format!("{vocab}.txt")))
        .arg("--quiet")
        .args(extra)
        .assert()
}

fn ids(tok: &tokenizers::Tokenizer, text: &str) -> Vec<u32> {
    tok.encode(text, true).unwrap().get_ids().to_vec()
}

fn as_ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn tokenizer_json_is_what_transformers_5_writes() {
    let tmp = tempfile::tempdir().unwrap();
    for (vocab, _, _) in VOCABS {
        let out = tmp.path().join(vocab);
        convert_with_vocab(vocab, &out, &[]).success();
        let ours = out.join("tokenizer.json");
        let theirs = tok_fixtures().join(format!("hf5/{vocab}.tokenizer.json"));
        assert_eq!(read_json(&ours), read_json(&theirs), "{vocab}");
        // Stronger than required: the same bytes, too.
        assert!(
            std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
            "{vocab}: tokenizer.json equal as JSON but not byte-identical"
        );
    }
}

#[test]
fn tokenizer_decisions_are_inferred_per_vocabulary_and_agree_across_files() {
    let tmp = tempfile::tempdir().unwrap();
    for (vocab, lower, strip) in VOCABS {
        let out = tmp.path().join(vocab);
        convert_with_vocab(vocab, &out, &[]).success();
        let tc = read_json(&out.join("tokenizer_config.json"));
        assert_eq!(tc["do_lower_case"], lower, "{vocab}");
        assert_eq!(tc["strip_accents"], strip, "{vocab}");
        assert_eq!(tc["tokenize_chinese_chars"], true, "{vocab}");
        let norm = &read_json(&out.join("tokenizer.json"))["normalizer"];
        assert_eq!(norm["type"], "BertNormalizer");
        assert_eq!(norm["lowercase"], tc["do_lower_case"], "{vocab}");
        assert_eq!(norm["strip_accents"], tc["strip_accents"], "{vocab}");
        assert_eq!(norm["handle_chinese_chars"], tc["tokenize_chinese_chars"]);
    }
}

/// The tokenizers-crate tokenizer of our directory against 4.57.6's slow ElectraTokenizer
/// (BERT FullTokenizer semantics) on the text set: mixed case, accents, CJK, punctuation,
/// control characters, words of 100 and 101 characters, unknown words, specials in the text,
/// a sentence pair.
#[test]
fn tokenization_matches_the_slow_electra_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = read_json(&tok_fixtures().join("slow_ids.json"));
    let (agree, _) = texts();
    let mut compared = 0;
    for (vocab, _, _) in VOCABS.iter().filter(|v| v.0 != "missing_specials") {
        let out = tmp.path().join(vocab);
        convert_with_vocab(vocab, &out, &[]).success();
        for tok in [
            electra_convert::write::tokenizer::load_dir(&out).unwrap(),
            // Without tokenizer.json: rebuilt from vocab.txt + tokenizer_config.json.
            {
                std::fs::remove_file(out.join("tokenizer.json")).unwrap();
                electra_convert::write::tokenizer::load_dir(&out).unwrap()
            },
        ] {
            for (i, text) in agree.iter().enumerate() {
                let want = as_ids(&slow[vocab]["texts"][i]);
                assert_eq!(ids(&tok, text), want, "{vocab}: text {i} {text:?}");
                compared += 1;
            }
            let pair = tok.encode(("the cat sat", "on the mat."), true).unwrap();
            assert_eq!(
                pair.get_ids(),
                as_ids(&slow[vocab]["pair"]["input_ids"]),
                "{vocab}"
            );
            assert_eq!(
                pair.get_type_ids(),
                as_ids(&slow[vocab]["pair"]["token_type_ids"]),
                "{vocab}"
            );
        }
    }
    assert_eq!(compared, 2 * 3 * agree.len());
    // The long-word rule is really exercised: 100 characters split into pieces, 101 are [UNK].
    let a100 = agree.iter().position(|t| t == &"a".repeat(100)).unwrap();
    let a101 = agree.iter().position(|t| t == &"a".repeat(101)).unwrap();
    assert_eq!(as_ids(&slow["lower_plain"]["texts"][a100]).len(), 102);
    assert_eq!(as_ids(&slow["lower_plain"]["texts"][a101]), vec![3, 2, 4]);
}

/// Where the tokenizers crate (and so every fast tokenizer: transformers 4.57.6's
/// ElectraTokenizerFast, 5.x's BertTokenizer) differs from the slow tokenizer, pinned: decomposed
/// accents kept by a no-strip tokenizer (the slow one applies NFC first), and CJK Extension
/// characters U+2B820..U+2B91F (the slow one treats them as Chinese characters, the crate does
/// not). Ours equals both fast tokenizers there.
#[test]
fn known_differences_from_the_slow_tokenizer_are_those_of_every_fast_tokenizer() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = read_json(&tok_fixtures().join("slow_ids.json"));
    let v4 = read_json(&tok_fixtures().join("auto_ids-4.57.6.json"));
    let v5 = read_json(&tok_fixtures().join("auto_ids-5.23.0.json"));
    let (agree, diverge) = texts();
    let mut differing = Vec::new();
    for (vocab, _, _) in VOCABS.iter().filter(|v| v.0 != "missing_specials") {
        let out = tmp.path().join(vocab);
        convert_with_vocab(vocab, &out, &[]).success();
        let tok = electra_convert::write::tokenizer::load_dir(&out).unwrap();
        for (j, text) in diverge.iter().enumerate() {
            let i = agree.len() + j;
            let got = ids(&tok, text);
            assert_eq!(
                got,
                as_ids(&v4[vocab]["fast"]["texts"][i]),
                "{vocab} {text:?}"
            );
            assert_eq!(got, as_ids(&v5[vocab]["texts"][i]), "{vocab} {text:?}");
            if got != as_ids(&slow[vocab]["texts"][i]) {
                differing.push((*vocab, j));
            }
        }
    }
    let mut sorted = differing.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            ("cased", 0),
            ("cased", 1),
            ("lower_accented", 0),
            ("lower_accented", 1),
            ("lower_plain", 1)
        ]
    );
}

/// `AutoTokenizer` of transformers 4.57.6 (fast from our tokenizer.json, and slow from our
/// vocab.txt + tokenizer_config.json) and of 5.23.0 give the same ids as ours: identical across
/// versions on every agreeing text, and the slow tokenizer built from our directory is the
/// slow oracle itself (our tokenizer_config.json leaves nothing to version defaults).
#[test]
fn auto_tokenizers_of_both_versions_give_our_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let slow = read_json(&tok_fixtures().join("slow_ids.json"));
    let v4 = read_json(&tok_fixtures().join("auto_ids-4.57.6.json"));
    let v5 = read_json(&tok_fixtures().join("auto_ids-5.23.0.json"));
    let (agree, diverge) = texts();
    for (vocab, _, _) in VOCABS.iter().filter(|v| v.0 != "missing_specials") {
        assert_eq!(v4[vocab]["slow"], slow[vocab], "{vocab}");
        assert_eq!(v4[vocab]["fast"], v5[vocab], "{vocab}");
        let out = tmp.path().join(vocab);
        convert_with_vocab(vocab, &out, &[]).success();
        let tok = electra_convert::write::tokenizer::load_dir(&out).unwrap();
        for (i, text) in agree.iter().chain(&diverge).enumerate() {
            assert_eq!(
                ids(&tok, text),
                as_ids(&v5[vocab]["texts"][i]),
                "{vocab} {text:?}"
            );
        }
    }
    // missing_specials: [PAD], [CLS], [MASK] are added after the vocabulary, as 5.x adds them.
    let out = tmp.path().join("missing");
    convert_with_vocab("missing_specials", &out, &[])
        .success()
        .stderr(predicate::str::is_empty());
    let tok = electra_convert::write::tokenizer::load_dir(&out).unwrap();
    assert_eq!(tok.token_to_id("[CLS]"), Some(72));
    for (i, text) in agree.iter().chain(&diverge).enumerate() {
        assert_eq!(ids(&tok, text), as_ids(&v5["missing_specials"]["texts"][i]));
    }
}

#[test]
fn every_fixture_and_kind_loads_without_key_complaints_in_both_versions() {
    let want: Vec<String> = [
        ("finetuned", "encoder", "ElectraModel"),
        ("mg_noproj", "discriminator", "ElectraForPreTraining"),
        ("mg_noproj", "encoder", "ElectraModel"),
        ("mg_noproj", "generator", "ElectraForMaskedLM"),
        ("mg_proj", "discriminator", "ElectraForPreTraining"),
        ("mg_proj", "encoder", "ElectraModel"),
        ("mg_proj", "generator", "ElectraForMaskedLM"),
        ("nv_amp", "discriminator", "ElectraForPreTraining"),
        ("nv_amp", "encoder", "ElectraModel"),
        ("nv_amp", "generator", "ElectraForMaskedLM"),
        ("nv_base", "discriminator", "ElectraForPreTraining"),
        ("nv_base", "encoder", "ElectraModel"),
        ("nv_base", "generator", "ElectraForMaskedLM"),
        ("released", "discriminator", "ElectraForPreTraining"),
        ("released", "encoder", "ElectraModel"),
        ("released", "generator", "ElectraForMaskedLM"),
        ("tied", "discriminator", "ElectraForPreTraining"),
        ("tied", "encoder", "ElectraModel"),
        ("tied", "generator", "ElectraForMaskedLM"),
        ("untied", "discriminator", "ElectraForPreTraining"),
        ("untied", "encoder", "ElectraModel"),
        ("untied", "generator", "ElectraForMaskedLM"),
    ]
    .iter()
    .map(|(l, k, c)| format!("{l}/{k}={c}"))
    .collect();
    for version in ["4.57.6", "5.23.0"] {
        let report =
            read_json(&root().join(format!("fixtures/hfdir/loads/transformers-{version}.json")));
        let obj = report.as_object().unwrap();
        let got: Vec<String> = obj
            .iter()
            .map(|(k, v)| format!("{k}={}", v["class"].as_str().unwrap()))
            .collect();
        assert_eq!(got, want, "{version}");
        for (job, r) in obj {
            for key in [
                "missing_keys",
                "unexpected_keys",
                "mismatched_keys",
                "error_msgs",
            ] {
                assert_eq!(r[key], Value::Array(vec![]), "{version} {job} {key}");
            }
        }
    }
}

#[test]
fn a_vocab_tokenizer_json_cannot_hold_is_refused_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = std::fs::read_to_string(tok_fixtures().join("lower_plain.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.insert(40, "the".into());
    let bad = tmp.path().join("dup.txt");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let out = tmp.path().join("out");
    Command::cargo_bin("electra-convert")
        .unwrap()
        .args(["--model", "encoder"])
        .arg(root().join("fixtures/electra/untied"))
        .arg("-o")
        .arg(&out)
        .arg("--vocab")
        .arg(&bad)
        .assert()
        .failure()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("line 41"))
        .stderr(predicate::str::contains("repeats line"));
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn stdout_json(assert: assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&assert.get_output().stdout).unwrap()
}

#[test]
fn the_summary_and_json_say_where_each_tokenizer_decision_came_from() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        // vocabulary, flags, (lower, from), (strip, from)
        (
            "lower_accented",
            vec![],
            (true, "vocabulary"),
            (false, "vocabulary"),
        ),
        (
            "lower_plain",
            vec![],
            (true, "vocabulary"),
            (true, "vocabulary"),
        ),
        ("cased", vec![], (false, "vocabulary"), (false, "casing")),
        (
            "lower_accented",
            vec!["--strip-accents"],
            (true, "vocabulary"),
            (true, "flag"),
        ),
        (
            "lower_plain",
            vec!["--no-strip-accents"],
            (true, "vocabulary"),
            (false, "flag"),
        ),
        (
            "cased",
            vec!["--uncased"],
            (true, "flag"),
            (false, "vocabulary"),
        ),
        (
            "cased",
            vec!["--strip-accents"],
            (false, "vocabulary"),
            (true, "flag"),
        ),
    ];
    for (i, (vocab, flags, (lower, lower_from), (strip, strip_from))) in
        cases.into_iter().enumerate()
    {
        let out = tmp.path().join(format!("case{i}"));
        let mut extra = flags.clone();
        extra.push("--json");
        let json = stdout_json(convert_with_vocab(vocab, &out, &extra).success());
        let t = &json["outputs"][0]["tokenizer"];
        let what = format!("{vocab} {flags:?}");
        assert_eq!(t["do_lower_case"]["value"], lower, "{what}");
        assert_eq!(t["do_lower_case"]["from"], lower_from, "{what}");
        assert_eq!(t["strip_accents"]["value"], strip, "{what}");
        assert_eq!(t["strip_accents"]["from"], strip_from, "{what}");
        assert_eq!(t["tokenize_chinese_chars"]["value"], true);
        assert_eq!(t["tokenize_chinese_chars"]["from"], "default");
        let tc = read_json(&out.join("tokenizer_config.json"));
        assert_eq!(tc["do_lower_case"], lower, "{what}");
        assert_eq!(tc["strip_accents"], strip, "{what}");
        let norm = &read_json(&out.join("tokenizer.json"))["normalizer"];
        assert_eq!(norm["lowercase"], lower, "{what}");
        assert_eq!(norm["strip_accents"], strip, "{what}");
    }
    // The text summary says it in words.
    let out = tmp.path().join("text");
    let assert = Command::cargo_bin("electra-convert")
        .unwrap()
        .args(["--model", "encoder"])
        .arg(root().join("fixtures/electra/untied"))
        .arg("-o")
        .arg(&out)
        .arg("--vocab")
        .arg(tok_fixtures().join("lower_accented.txt"))
        .assert()
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(
        stdout.contains("strip_accents false (vocabulary: lowercase with accented letters)"),
        "{stdout}"
    );
    assert!(stdout.contains("do_lower_case true (vocabulary: no uppercase letters)"));
    // No vocabulary: no tokenizer decisions.
    let out = tmp.path().join("novocab");
    let json = stdout_json(
        Command::cargo_bin("electra-convert")
            .unwrap()
            .args(["--model", "encoder", "--json", "--quiet"])
            .arg(root().join("fixtures/electra/released"))
            .arg("-o")
            .arg(&out)
            .assert()
            .success(),
    );
    assert_eq!(json["outputs"][0]["tokenizer"], Value::Null);
}

#[test]
fn strip_and_no_strip_accents_conflict() {
    Command::cargo_bin("electra-convert")
        .unwrap()
        .args(["--model", "encoder", "x", "-o", "y"])
        .args(["--strip-accents", "--no-strip-accents"])
        .assert()
        .code(2);
}
