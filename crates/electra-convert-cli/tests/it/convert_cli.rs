//! End-to-end tests of `electra-convert convert` against the transformers 4.57.6 fixtures.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use safetensors::SafeTensors;
use serde_json::Value;

fn root() -> PathBuf {
    crate::repo_root()
}

fn fixture(layout: &str) -> PathBuf {
    root().join("fixtures/electra").join(layout)
}

fn expected(layout: &str, kind: &str) -> PathBuf {
    fixture(layout).join("expected").join(kind)
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

/// Compare two safetensors files tensor by tensor: names, dtypes, shapes, bytes.
fn assert_same_tensors(got: &Path, want: &Path) {
    let got_bytes = std::fs::read(got).unwrap();
    let want_bytes = std::fs::read(want).unwrap();
    let g = SafeTensors::deserialize(&got_bytes).unwrap();
    let w = SafeTensors::deserialize(&want_bytes).unwrap();
    let mut gn = g.names();
    let mut wn = w.names();
    gn.sort();
    wn.sort();
    assert_eq!(gn, wn, "{} vs {}", got.display(), want.display());
    for name in wn {
        let (a, b) = (g.tensor(name).unwrap(), w.tensor(name).unwrap());
        assert_eq!(a.dtype(), b.dtype(), "{name}");
        assert_eq!(a.shape(), b.shape(), "{name}");
        assert!(a.data() == b.data(), "{name}: bytes differ");
    }
    let (_, gm) = SafeTensors::read_metadata(&got_bytes).unwrap();
    let meta = gm.metadata().clone().unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every config.json field equals transformers' (no field is exempt: transformers_version is
/// written as 4.57.6 on purpose).
fn assert_same_config(got: &Path, want: &Path) {
    assert_eq!(read_json(got), read_json(want), "{}", got.display());
}

fn convert(layout: &str, kind: &str, out: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    bin()
        .arg("--model")
        .arg(kind)
        .arg(fixture(layout))
        .arg("-o")
        .arg(out)
        .args(extra)
        .assert()
}

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn every_fixture_and_kind_matches_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("tied", &["discriminator", "generator", "encoder"][..]),
        ("released", &["discriminator", "generator", "encoder"][..]),
        ("untied", &["discriminator", "generator", "encoder"][..]),
        ("finetuned", &["encoder"][..]),
    ];
    for (layout, kinds) in cases {
        for kind in kinds {
            let out = tmp.path().join(format!("{layout}-{kind}"));
            convert(layout, kind, &out, &["--quiet"]).success();
            let st = out.join("model.safetensors");
            let want = expected(layout, kind);
            assert_same_tensors(&st, &want.join("model.safetensors"));
            assert_same_config(&out.join("config.json"), &want.join("config.json"));
            // Stronger than required: the files are byte-identical to transformers' own.
            assert!(
                std::fs::read(&st).unwrap()
                    == std::fs::read(want.join("model.safetensors")).unwrap(),
                "{layout}/{kind}: model.safetensors not byte-identical"
            );
            assert!(
                std::fs::read(out.join("config.json")).unwrap()
                    == std::fs::read(want.join("config.json")).unwrap(),
                "{layout}/{kind}: config.json not byte-identical"
            );
        }
    }
    assert!(leftovers(tmp.path()).is_empty());
}

/// A checkpoint whose word embeddings TensorFlow saved as a partitioned variable (the
/// `partitioned` fixture: the released checkpoint re-saved with `fixed_size_partitioner(3)`)
/// converts, and passes its own parity check, exactly like the unpartitioned original: every
/// kind is byte-identical to what transformers wrote for `released`.
#[test]
fn a_partitioned_checkpoint_converts_like_its_unpartitioned_original() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["discriminator", "generator", "encoder"] {
        let out = tmp.path().join(kind);
        convert("partitioned", kind, &out, &["--quiet", "--verify"]).success();
        let want = expected("released", kind);
        for file in ["model.safetensors", "config.json"] {
            assert!(
                std::fs::read(out.join(file)).unwrap() == std::fs::read(want.join(file)).unwrap(),
                "partitioned/{kind}: {file} differs from released/expected"
            );
        }
    }
}

#[test]
fn convert_subcommand_spelling_and_text_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("disc");
    bin()
        .args(["convert", "--model", "discriminator"])
        .arg(fixture("released").join("electra_tiny"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("ElectraForPreTraining"))
        .stdout(predicate::str::contains("41 tensors"));
    assert_same_tensors(
        &out.join("model.safetensors"),
        &expected("released", "discriminator").join("model.safetensors"),
    );
}

#[test]
fn model_is_required() {
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .arg(fixture("tied"))
        .arg("-o")
        .arg(tmp.path().join("x"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--model"));
}

#[test]
fn both_writes_two_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("both");
    convert("tied", "both", &out, &["--json"]).success();
    for kind in ["discriminator", "generator"] {
        assert_same_tensors(
            &out.join(kind).join("model.safetensors"),
            &expected("tied", kind).join("model.safetensors"),
        );
        assert_same_config(
            &out.join(kind).join("config.json"),
            &expected("tied", kind).join("config.json"),
        );
        assert!(out.join(kind).join("vocab.txt").is_file());
    }
    assert!(leftovers(tmp.path()).is_empty());
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// --dtype f16/bf16: each tensor equals the f32 oracle rounded to nearest even (the `half`
/// crate implements IEEE RNE; NaN does not occur in the fixtures).
#[test]
fn half_dtypes_round_to_nearest_even() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, st_dtype) in [
        ("f16", safetensors::Dtype::F16),
        ("bf16", safetensors::Dtype::BF16),
    ] {
        let out = tmp.path().join(flag);
        convert("tied", "discriminator", &out, &["--dtype", flag, "-q"]).success();
        let got_bytes = std::fs::read(out.join("model.safetensors")).unwrap();
        let want_bytes =
            std::fs::read(expected("tied", "discriminator").join("model.safetensors")).unwrap();
        let g = SafeTensors::deserialize(&got_bytes).unwrap();
        let w = SafeTensors::deserialize(&want_bytes).unwrap();
        assert_eq!(g.len(), w.len());
        for (name, want) in w.tensors() {
            let got = g.tensor(&name).unwrap();
            assert_eq!(got.dtype(), st_dtype, "{name}");
            assert_eq!(got.shape(), want.shape(), "{name}");
            let oracle: Vec<u8> = f32_values(want.data())
                .into_iter()
                .flat_map(|v| match flag {
                    "f16" => half::f16::from_f32(v).to_le_bytes(),
                    _ => half::bf16::from_f32(v).to_le_bytes(),
                })
                .collect();
            assert!(got.data() == oracle.as_slice(), "{flag} {name}");
        }
        let config = read_json(&out.join("config.json"));
        let torch_name = if flag == "f16" { "float16" } else { "bfloat16" };
        assert_eq!(config["dtype"], torch_name);
    }
}

#[test]
fn user_config_is_validated_against_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    // transformers' own config: accepted, written back unchanged.
    let good = expected("tied", "discriminator").join("config.json");
    let out = tmp.path().join("good");
    convert(
        "tied",
        "discriminator",
        &out,
        &["--config", good.to_str().unwrap()],
    )
    .success();
    assert_same_config(&out.join("config.json"), &good);

    // Wrong hidden_size: refused, naming the field, nothing written.
    let mut bad = read_json(&good);
    bad["hidden_size"] = 256.into();
    let bad_path = tmp.path().join("bad.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let out = tmp.path().join("bad");
    convert(
        "tied",
        "discriminator",
        &out,
        &["--config", bad_path.to_str().unwrap()],
    )
    .failure()
    .code(1)
    .stderr(predicate::str::contains("hidden_size is 256"))
    .stderr(predicate::str::contains("128"));
    assert!(!out.exists());

    // A field left out counts as ElectraConfig's default (embedding_size 128 ≠ 32).
    let mut partial = read_json(&good);
    partial.as_object_mut().unwrap().remove("embedding_size");
    std::fs::write(&bad_path, partial.to_string()).unwrap();
    convert(
        "tied",
        "discriminator",
        &out,
        &["--config", bad_path.to_str().unwrap()],
    )
    .failure()
    .stderr(predicate::str::contains("embedding_size is 128"))
    .stderr(predicate::str::contains("default"));
    assert!(!out.exists());
    assert!(leftovers(tmp.path()).is_empty());
}

/// Regression (#10): `--config` used to write only the user's fields, so a file without
/// `model_type` gave a config.json that `AutoModelForPreTraining` refuses. Now the output is
/// what transformers 4.57.6's `save_pretrained` writes for a model built from that file
/// (fixtures/gen_config.py), byte for byte: every default field, `model_type: "electra"`,
/// the user's values (gelu_new, dropout 0, extra BERT keys) in place, PretrainedConfig
/// defaults and `_name_or_path` left out, `architectures`/`dtype`/`transformers_version` ours.
#[test]
fn user_config_is_completed_as_transformers_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = root().join("fixtures/hfdir/config");
    for name in ["no_model_type", "sizes_only", "legacy"] {
        let user = dir.join(format!("{name}.json"));
        let out = tmp.path().join(name);
        let run = convert(
            "tied",
            "discriminator",
            &out,
            &["--config", user.to_str().unwrap()],
        )
        .success();
        let got = std::fs::read_to_string(out.join("config.json")).unwrap();
        let want = std::fs::read_to_string(dir.join(format!("{name}.expected.json"))).unwrap();
        assert_eq!(got, want, "{name}");
        assert_eq!(read_json(&out.join("config.json"))["model_type"], "electra");
        if name == "legacy" {
            let stderr = String::from_utf8(run.get_output().stderr.clone()).unwrap();
            assert!(stderr.contains("ElectraForMaskedLM"), "{stderr}");
        }
    }
}

#[test]
fn user_config_of_another_model_type_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let user = root().join("fixtures/hfdir/config/bert.json");
    let out = tmp.path().join("bert");
    convert(
        "tied",
        "discriminator",
        &out,
        &["--config", user.to_str().unwrap()],
    )
    .failure()
    .code(1)
    .stderr(predicate::str::contains("model_type is \"bert\""))
    .stderr(predicate::str::contains("\"electra\""));
    assert!(!out.exists());
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn num_heads_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("h4");
    convert("tied", "encoder", &out, &["--num-heads", "4"]).success();
    assert_eq!(
        read_json(&out.join("config.json"))["num_attention_heads"],
        4
    );
    let out = tmp.path().join("h3");
    convert("tied", "encoder", &out, &["--num-heads", "3"])
        .failure()
        .stderr(predicate::str::contains("do not divide hidden_size 128"));
    assert!(!out.exists());
}

#[test]
fn vocab_and_casing() {
    let tmp = tempfile::tempdir().unwrap();
    // Found beside the checkpoint; all-lowercase → uncased.
    let out = tmp.path().join("found");
    convert("tied", "discriminator", &out, &[]).success();
    let tc = read_json(&out.join("tokenizer_config.json"));
    assert_eq!(tc["do_lower_case"], true);
    // Stated, never left to defaults: lowercase vocabulary without accents → strip them.
    assert_eq!(tc["strip_accents"], true);
    assert_eq!(tc["tokenize_chinese_chars"], true);
    assert_eq!(tc["model_max_length"], 32);
    assert_eq!(tc["tokenizer_class"], "ElectraTokenizer");
    assert_eq!(
        std::fs::read(out.join("vocab.txt")).unwrap(),
        std::fs::read(fixture("tied").join("vocab.txt")).unwrap()
    );
    assert_eq!(
        read_json(&out.join("special_tokens_map.json"))["mask_token"],
        "[MASK]"
    );

    // --cased overrides.
    let out = tmp.path().join("cased");
    convert("tied", "discriminator", &out, &["--cased"]).success();
    let tc = read_json(&out.join("tokenizer_config.json"));
    assert_eq!(tc["do_lower_case"], false);
    assert_eq!(tc["strip_accents"], false);

    // --vocab with uppercase tokens → inferred cased; --uncased overrides.
    let mut words: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    words.push("Hello".into());
    while words.len() < 96 {
        words.push(format!("w{}", words.len()));
    }
    let vocab = tmp.path().join("cased_vocab.txt");
    std::fs::write(&vocab, words.join("\n") + "\n").unwrap();
    let out = tmp.path().join("inferred");
    convert(
        "untied",
        "encoder",
        &out,
        &["--vocab", vocab.to_str().unwrap()],
    )
    .success();
    assert_eq!(
        read_json(&out.join("tokenizer_config.json"))["do_lower_case"],
        false
    );
    let out = tmp.path().join("forced");
    convert(
        "untied",
        "encoder",
        &out,
        &["--vocab", vocab.to_str().unwrap(), "--uncased"],
    )
    .success();
    assert_eq!(
        read_json(&out.join("tokenizer_config.json"))["do_lower_case"],
        true
    );

    // No vocabulary: a warning, not an error.
    let out = tmp.path().join("novocab");
    convert("released", "encoder", &out, &[])
        .success()
        .stderr(predicate::str::contains("no vocab.txt"));
    assert!(!out.join("vocab.txt").exists());
    assert!(out.join("model.safetensors").is_file());

    // A vocabulary larger than the embedding table is refused.
    let out = tmp.path().join("toobig");
    let big = fixture("tied").join("vocab.txt");
    convert(
        "released",
        "encoder",
        &out,
        &["--vocab", big.to_str().unwrap()],
    )
    .failure()
    .stderr(predicate::str::contains("80 tokens"));
    assert!(!out.exists());
}

#[test]
fn existing_directory_needs_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "old").unwrap();
    convert("released", "encoder", &out, &[])
        .failure()
        .code(1)
        .stderr(predicate::str::contains("--force"));
    assert!(out.join("keep.txt").is_file());

    convert("released", "encoder", &out, &["--force", "-q"]).success();
    assert!(!out.join("keep.txt").exists());
    assert_same_tensors(
        &out.join("model.safetensors"),
        &expected("released", "encoder").join("model.safetensors"),
    );
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );

    // An existing empty directory is simply used.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    convert("released", "encoder", &empty, &["-q"]).success();
    assert!(empty.join("model.safetensors").is_file());
}

#[test]
fn json_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ft");
    let assert = convert("finetuned", "encoder", &out, &["--json", "-q"]).success();
    let v: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let m = &v["outputs"][0];
    assert_eq!(m["kind"], "encoder");
    assert_eq!(m["class"], "ElectraModel");
    assert_eq!(m["tensors"], 21);
    assert_eq!(
        m["bytes"],
        std::fs::metadata(out.join("model.safetensors"))
            .unwrap()
            .len()
    );
    assert_eq!(m["skipped"], 49);
    assert_eq!(m["task_heads"], serde_json::json!(["mnli"]));
    let warnings = v["warnings"].as_array().unwrap();
    assert!(warnings
        .iter()
        .any(|w| w.as_str().unwrap().contains("mnli")));
}

#[test]
fn quiet_silences_notes() {
    let tmp = tempfile::tempdir().unwrap();
    convert("finetuned", "encoder", &tmp.path().join("q"), &["--quiet"])
        .success()
        .stderr(predicate::str::is_empty());
    convert("finetuned", "encoder", &tmp.path().join("loud"), &[])
        .success()
        .stderr(predicate::str::contains("mnli"));
}

#[test]
fn bert_checkpoint_is_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bert");
    convert("bert", "discriminator", &out, &[])
        .failure()
        .code(1)
        .stderr(predicate::str::contains("not an ELECTRA checkpoint"))
        .stderr(predicate::str::contains("BERT"));
    assert!(!out.exists());
}

#[test]
fn finetuned_discriminator_suggests_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ft");
    convert("finetuned", "discriminator", &out, &[])
        .failure()
        .code(1)
        .stderr(predicate::str::contains("discriminator_predictions"))
        .stderr(predicate::str::contains("mnli"))
        .stderr(predicate::str::contains("--model encoder"));
    assert!(!out.exists());
}

/// A conversion that fails while writing (a corrupted tensor: CRC mismatch) leaves neither the
/// output directory, nor a temporary directory, nor parent directories it created.
#[test]
fn failed_conversion_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt_dir = tmp.path().join("ckpt");
    std::fs::create_dir(&ckpt_dir).unwrap();
    for f in std::fs::read_dir(fixture("released")).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), ckpt_dir.join(f.file_name())).unwrap();
        }
    }
    let data = ckpt_dir.join("electra_tiny.data-00000-of-00001");
    let mut bytes = std::fs::read(&data).unwrap();
    // The first stored tensor is discriminator_predictions/dense/bias (names are sorted).
    bytes[5] ^= 0xFF;
    std::fs::write(&data, bytes).unwrap();

    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("new/nested/out");
    bin()
        .args(["--model", "discriminator"])
        .arg(&ckpt_dir)
        .arg("-o")
        .arg(&out)
        .assert()
        .failure()
        .code(1);
    assert!(!out.exists());
    assert!(
        !work.join("new").exists(),
        "created parents must be removed"
    );
    assert!(std::fs::read_dir(&work).unwrap().next().is_none());

    // Same with --force over an existing directory: the old contents survive.
    let existing = work.join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("keep.txt"), "old").unwrap();
    bin()
        .args(["--model", "discriminator", "--force"])
        .arg(&ckpt_dir)
        .arg("-o")
        .arg(&existing)
        .assert()
        .failure();
    assert!(existing.join("keep.txt").is_file());
    assert!(leftovers(&work).is_empty(), "{:?}", leftovers(&work));
}

/// --dtype f16/bf16 against torch itself: fixtures/generate.py casts transformers' f32 file with
/// `.to(torch.float16/bfloat16)` and saves it; the converter's file is byte-identical.
#[test]
fn half_dtypes_match_torch_files() {
    let tmp = tempfile::tempdir().unwrap();
    for flag in ["f16", "bf16"] {
        let out = tmp.path().join(flag);
        convert("untied", "generator", &out, &["--dtype", flag, "-q"]).success();
        let want = expected("untied", "generator").join(format!("model.{flag}.safetensors"));
        assert_same_tensors(&out.join("model.safetensors"), &want);
        assert!(
            std::fs::read(out.join("model.safetensors")).unwrap() == std::fs::read(&want).unwrap(),
            "{flag}: not byte-identical to torch's file"
        );
    }
}

#[test]
fn output_must_name_a_directory() {
    let tmp = tempfile::tempdir().unwrap();
    bin()
        .current_dir(tmp.path())
        .args(["--model", "encoder"])
        .arg(fixture("released"))
        .args(["-o", ".", "--force"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("does not name a directory"));
    assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
}

/// Giving a converted model directory (or a `--model both` output) where a TF checkpoint is
/// expected says so, instead of only "pass the checkpoint prefix".
#[test]
fn model_directory_given_as_checkpoint_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let model = expected("tied", "discriminator");
    bin()
        .args(["--model", "discriminator"])
        .arg(&model)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "is a converted HuggingFace model directory, not a TensorFlow checkpoint",
        ));
    let both = tmp.path().join("both");
    std::fs::create_dir_all(both.join("generator")).unwrap();
    std::fs::copy(
        expected("tied", "generator").join("model.safetensors"),
        both.join("generator/model.safetensors"),
    )
    .unwrap();
    bin()
        .args(["map", "--model", "generator"])
        .arg(&both)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "holds converted HuggingFace models",
        ))
        .stderr(predicate::str::contains("generator"));
    assert!(!tmp.path().join("out").exists());
}

/// `-o` naming the checkpoint's own directory (or a parent of it) with `--force` would delete
/// the checkpoint when the old directory is replaced: refused, and the checkpoint is intact.
#[test]
fn force_never_replaces_the_directory_holding_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("runs/tied");
    std::fs::create_dir_all(&ckpt).unwrap();
    for f in [
        "checkpoint",
        "model.ckpt-1000.index",
        "model.ckpt-1000.data-00000-of-00001",
    ] {
        std::fs::copy(fixture("tied").join(f), ckpt.join(f)).unwrap();
    }
    for out in [ckpt.clone(), tmp.path().join("runs")] {
        bin()
            .args(["--model", "discriminator", "--force", "-q"])
            .arg(&ckpt)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains("holds the checkpoint"));
        assert!(ckpt.join("model.ckpt-1000.index").is_file());
        assert!(ckpt.join("model.ckpt-1000.data-00000-of-00001").is_file());
    }
    // A new directory inside the checkpoint's directory is fine.
    bin()
        .args(["--model", "discriminator", "-q"])
        .arg(&ckpt)
        .arg("-o")
        .arg(ckpt.join("hf"))
        .assert()
        .success();
}
