//! README.md, the model card: a snapshot of the tied discriminator's card (with --verify and
//! --license), and what changes with the kind, a missing vocabulary, --model both,
//! --no-model-card and batch. Set UPDATE_SNAPSHOTS=1 to rewrite the snapshot after a deliberate
//! change (and review the diff).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn root() -> PathBuf {
    crate::repo_root()
}

/// A scratch directory holding a `fixtures` symlink to the repository's fixtures, so that the
/// binary can be run there with short relative paths and the card is the same on any machine.
fn workdir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("fixtures"), tmp.path().join("fixtures")).unwrap();
    tmp
}

fn run_in(dir: &Path, args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("electra-convert")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .assert()
}

fn card(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("README.md")).unwrap()
}

#[test]
fn tied_discriminator_card_matches_the_snapshot() {
    let tmp = workdir();
    run_in(
        tmp.path(),
        &[
            "--model",
            "discriminator",
            "fixtures/electra/tied",
            "-o",
            "out/tied-disc",
            "--verify",
            "--license",
            "apache-2.0",
            "--quiet",
        ],
    )
    .success();
    let got = card(&tmp.path().join("out/tied-disc"));
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/model_card_tied_discriminator.md");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&snapshot, &got).unwrap();
    }
    let want = std::fs::read_to_string(&snapshot).unwrap();
    assert_eq!(got, want, "README.md differs from {}", snapshot.display());
    // What the snapshot pins, spelled out: the facts come from the fixture itself.
    for needle in [
        "library_name: transformers",
        "- electra",
        "license: apache-2.0",
        "| global_step | 1000 |",
        "| vocab_size, embedding_size, hidden_size | 80, 32, 128 |",
        "electra-convert --model discriminator fixtures/electra/tied -o out/tied-disc --verify --license apache-2.0 --quiet",
        "- optimizer slot: 164",
        "| checkpoint | `fixtures/electra/tied/model.ckpt-1000` | logits |",
        "ElectraForPreTraining.from_pretrained",
    ] {
        assert!(got.contains(needle), "card lacks {needle:?}");
    }
}

#[test]
fn card_follows_kind_vocabulary_and_checks() {
    let tmp = workdir();
    // A generator without vocabulary, checked against its reference file; no license given.
    run_in(
        tmp.path(),
        &[
            "--model",
            "generator",
            "fixtures/electra/released",
            "-o",
            "out/gen",
            "--reference",
            "fixtures/electra/released/expected/generator/reference.safetensors",
            "--quiet",
        ],
    )
    .success();
    let c = card(&tmp.path().join("out/gen"));
    assert!(!c.contains("license:"), "{c}");
    assert!(c.contains("# ELECTRA generator (ElectraForMaskedLM)"));
    assert!(c.contains("| tower | `generator/` |"));
    assert!(c.contains("| global_step | 1000000 |"));
    assert!(c.contains("none shipped"));
    assert!(c.contains("| reference | `fixtures/electra/released/expected/generator/reference.safetensors` | logits |"));
    assert!(c.contains("ElectraForMaskedLM.from_pretrained"));
    assert!(!c.contains("AutoTokenizer"));

    // --model both: one card per model directory, each saying so.
    run_in(
        tmp.path(),
        &[
            "--model",
            "both",
            "fixtures/electra/untied",
            "-o",
            "out/both",
            "--quiet",
        ],
    )
    .success();
    for (kind, class) in [
        ("discriminator", "ElectraForPreTraining"),
        ("generator", "ElectraForMaskedLM"),
    ] {
        let c = card(&tmp.path().join("out/both").join(kind));
        assert!(c.contains(&format!("({class})")), "{kind}");
        assert!(c.contains("`--model both`"), "{kind}");
        assert!(c.contains("| global_step | 500 |"));
        assert!(c.contains("No parity check was run"));
    }
    assert!(!tmp.path().join("out/both/README.md").exists());

    // --no-model-card: no README.md, nothing else changes.
    run_in(
        tmp.path(),
        &[
            "--model",
            "encoder",
            "fixtures/electra/finetuned",
            "-o",
            "out/nocard",
            "--no-model-card",
            "--quiet",
        ],
    )
    .success();
    assert!(!tmp.path().join("out/nocard/README.md").exists());
    assert!(tmp.path().join("out/nocard/model.safetensors").is_file());

    // A license that is not a Hub identifier is a usage error; nothing is written.
    run_in(
        tmp.path(),
        &[
            "--model",
            "encoder",
            "fixtures/electra/finetuned",
            "-o",
            "out/badlicense",
            "--license",
            "mit\ntags: [x]",
        ],
    )
    .code(2);
    assert!(!tmp.path().join("out/badlicense").exists());
}

#[test]
fn batch_writes_one_card_per_job() {
    let tmp = workdir();
    let manifest = tmp.path().join("sweep.toml");
    std::fs::write(
        &manifest,
        r#"
[defaults]
license = "mit"

[[jobs]]
name = "disc"
checkpoint = "fixtures/electra/tied/model.ckpt-1000"
model = "discriminator"
output = "out/disc"

[[jobs]]
name = "enc"
checkpoint = "fixtures/electra/finetuned"
model = "encoder"
output = "out/enc"
model_card = false

[[jobs]]
name = "gen"
checkpoint = "fixtures/electra/untied"
model = "generator"
output = "out/gen"
verify = true
"#,
    )
    .unwrap();
    run_in(
        tmp.path(),
        &["batch", "sweep.toml", "--jobs", "1", "--quiet"],
    )
    .success();
    let disc = card(&tmp.path().join("out/disc"));
    assert!(disc.contains("license: mit"));
    assert!(
        disc.contains("electra-convert batch sweep.toml (job jobs[0] \"disc\")"),
        "{disc}"
    );
    assert!(!tmp.path().join("out/enc/README.md").exists());
    let gen = card(&tmp.path().join("out/gen"));
    assert!(gen.contains("(job jobs[2] \"gen\")"), "{gen}");
    assert!(
        gen.contains("| checkpoint | `fixtures/electra/untied/model.ckpt-500` | logits |"),
        "{gen}"
    );

    // A bad license in a manifest is a bad value of that key.
    std::fs::write(&manifest, "[[jobs]]\ncheckpoint = \"c\"\nmodel = \"encoder\"\noutput = \"o\"\nlicense = \"not a license\"\n").unwrap();
    let out = run_in(tmp.path(), &["batch", "sweep.toml"]).code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("license"), "{stderr}");
}

#[test]
fn json_summary_is_unchanged_by_the_card() {
    let tmp = workdir();
    let out = run_in(
        tmp.path(),
        &[
            "--model",
            "encoder",
            "fixtures/electra/finetuned",
            "-o",
            "out/enc",
            "--json",
            "--quiet",
        ],
    )
    .success();
    let json: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["outputs"][0]["class"], "ElectraModel");
    let c = card(&tmp.path().join("out/enc"));
    assert!(c.contains("| global_step | 2000 |"));
    assert!(c.contains("- task head: 2"), "{c}");
    assert!(c.contains("last_hidden_state"));
}
