//! TF2 object-based checkpoints end to end, on the fixtures written by the producers' own code
//! (`fixtures/tf2/`: Model Garden's ElectraPretrainer with and without an embedding projection,
//! an NVIDIA-layout checkpoint with a padded vocabulary, and the refused kinds), against the
//! transformers 4.57.6 directories and the producers' own outputs stored beside them.

use crate::verify_support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use electra_convert::verify::{verify_against_checkpoint, verify_against_reference, Tolerance};
use electra_convert::{convert, ConvertOptions, ModelKind, NoProgress};
use serde_json::Value;
use verify_support::{read_tensors, write_tensors};

/// The convertible fixtures and the layout `inspect` must name.
const FIXTURES: [(&str, &str); 4] = [
    ("mg_proj", "Model Garden TF2 ElectraPretrainer"),
    ("mg_noproj", "Model Garden TF2 ElectraPretrainer"),
    ("nv_base", "NVIDIA TF2 ELECTRA"),
    ("nv_amp", "NVIDIA TF2 ELECTRA"),
];
const KINDS: [(&str, ModelKind); 3] = [
    ("discriminator", ModelKind::Discriminator),
    ("generator", ModelKind::Generator),
    ("encoder", ModelKind::Encoder),
];

fn fixture(name: &str) -> PathBuf {
    crate::repo_root().join("fixtures/tf2").join(name)
}

fn expected(name: &str, kind: &str) -> PathBuf {
    fixture(name).join("expected").join(kind)
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn convert_to(name: &str, kind: ModelKind, out: &Path) -> electra_convert::ConvertOutcome {
    let options = ConvertOptions::new(fixture(name), kind, out);
    convert(&options, &mut NoProgress).unwrap_or_else(|e| panic!("{name}/{kind:?}: {e:#}"))
}

/// The done-when criterion, 1e-5 · max(1, |expected|) per element, is implied by numpy's
/// allclose with atol = rtol = 5e-6 (5e-6 · (1 + |x|) ≤ 1e-5 · max(1, |x|)).
const PRODUCER_TOL: Tolerance = Tolerance {
    atol: 5e-6,
    rtol: 5e-6,
};

#[test]
fn every_tf2_fixture_and_kind_is_byte_identical_to_transformers_without_a_config() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in FIXTURES {
        for (kind, model) in KINDS {
            let out = tmp.path().join(format!("{name}-{kind}"));
            let outcome = convert_to(name, model, &out);
            let want = expected(name, kind);
            assert!(
                std::fs::read(out.join("model.safetensors")).unwrap()
                    == std::fs::read(want.join("model.safetensors")).unwrap(),
                "{name}/{kind}: model.safetensors not byte-identical to transformers'"
            );
            let got = read_json(&out.join("config.json"));
            let want_cfg = read_json(&want.join("config.json"));
            for (field, value) in want_cfg.as_object().unwrap() {
                assert_eq!(
                    got.get(field),
                    Some(value),
                    "{name}/{kind}: config field {field}"
                );
            }
            assert_eq!(
                outcome.outputs[0].tensors,
                read_tensors(&want.join("model.safetensors")).len()
            );
        }
    }
}

#[test]
fn config_json_comes_from_the_kernels_and_trainer_configs() {
    let tmp = tempfile::tempdir().unwrap();
    // Model Garden: heads from the [H, N, D] kernels, tanh GELU; NVIDIA: heads from
    // pretrain_config.json, erf GELU, the padded vocabulary kept.
    let out = tmp.path().join("mg");
    convert_to("mg_proj", ModelKind::Discriminator, &out);
    let cfg = read_json(&out.join("config.json"));
    assert_eq!(cfg["hidden_act"], "gelu_new");
    assert_eq!(cfg["num_attention_heads"], 2);
    assert_eq!(cfg["embedding_size"], 16);
    assert_eq!(cfg["hidden_size"], 32);
    let out = tmp.path().join("nv");
    let outcome = convert_to("nv_base", ModelKind::Discriminator, &out);
    // vocab.txt beside the checkpoint ships as for TF1; its word count is below the padded rows.
    assert_eq!(
        outcome.outputs[0].vocab.as_deref(),
        Some(fixture("nv_base").join("vocab.txt").as_path())
    );
    assert!(out.join("tokenizer_config.json").is_file());
    assert!(
        outcome.warnings.iter().any(|w| w.contains("padded")),
        "{:?}",
        outcome.warnings
    );
    // The model card names the layout and the trainer's step counter (NVIDIA's `step`).
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        card.contains("| source layout | NVIDIA TF2 ELECTRA"),
        "{card}"
    );
    assert!(card.contains("| global_step | 1 |"), "{card}");
    let cfg = read_json(&out.join("config.json"));
    let trainer = read_json(&fixture("nv_base").join("pretrain_config.json"));
    assert_eq!(cfg["hidden_act"], "gelu");
    assert_eq!(cfg["num_attention_heads"], trainer["num_attention_heads"]);
    assert_eq!(cfg["vocab_size"], trainer["vocab_size"]);
    assert_eq!(cfg["vocab_size"].as_u64().unwrap() % 8, 0);
    // --config still overrides and is validated: a head count the kernels contradict is refused.
    let bad = tmp.path().join("bad-config.json");
    let mut wrong = read_json(&expected("mg_proj", "discriminator").join("config.json"));
    wrong["num_attention_heads"] = Value::from(4);
    std::fs::write(&bad, wrong.to_string()).unwrap();
    bin()
        .args(["convert", "-m", "discriminator", "--config"])
        .arg(&bad)
        .arg(fixture("mg_proj"))
        .arg("-o")
        .arg(tmp.path().join("refused"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("num_attention_heads is 4"));
}

#[test]
fn candle_matches_the_producers_own_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in FIXTURES {
        for (kind, _) in KINDS {
            let dir = expected(name, kind);
            let report = verify_against_reference(&dir, &dir.join("reference.npz"), PRODUCER_TOL)
                .unwrap_or_else(|e| panic!("{name}/{kind}: {e}"));
            assert!(report.passed, "{name}/{kind}:\n{}", report.to_text());
        }
    }
    drop(tmp);
}

/// Model Garden's generator: transformers' head uses the erf GELU, Model Garden's the tanh GELU.
/// Against transformers' outputs (reference.npz) candle is exact to 1e-5; against Model Garden's
/// own logits the difference is the activation's, about 1e-3, never 1e-5.
#[test]
fn model_garden_generator_differs_from_its_producer_only_by_the_head_activation() {
    for name in ["mg_proj", "mg_noproj"] {
        let dir = expected(name, "generator");
        let own =
            verify_against_reference(&dir, &dir.join("producer_logits.npz"), PRODUCER_TOL).unwrap();
        assert!(!own.passed, "{name}: the tanh head should be visible");
        let logits = &own.outputs["logits"];
        assert!(
            logits.max_abs_diff > 1e-4 && logits.max_abs_diff < 5e-3,
            "{name}: {}",
            logits.max_abs_diff
        );
        assert_eq!(logits.argmax_agreement, Some(1.0), "{name}");
    }
}

#[test]
fn self_parity_passes_exactly_and_reports_the_original_head() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in FIXTURES {
        for (kind, model) in KINDS {
            let out = tmp.path().join(format!("{name}-{kind}"));
            let mut options = ConvertOptions::new(fixture(name), model, &out);
            options.verify = true;
            let outcome = convert(&options, &mut NoProgress).unwrap();
            let report = &outcome.outputs[0].verify[0];
            assert!(report.passed, "{name}/{kind}:\n{}", report.to_text());
            for (output, c) in &report.outputs {
                assert_eq!(c.max_abs_diff, 0.0, "{name}/{kind} {output}");
            }
            let mg_generator = name.starts_with("mg") && kind == "generator";
            assert_eq!(
                report.original_head.is_some(),
                mg_generator,
                "{name}/{kind}"
            );
            if let Some(head) = &report.original_head {
                assert!(head.max_abs_diff > 0.0, "{name}: {head:?}");
                assert!(report.notes.iter().any(|n| n.contains("tanh GELU")));
                // The warning says it once, at conversion.
                let warned = outcome
                    .warnings
                    .iter()
                    .filter(|w| w.contains("ElectraGeneratorPredictions"))
                    .count();
                assert_eq!(warned, 1, "{name}");
            }
        }
    }
}

/// A query/key swap in a converted directory fails both verify modes with exit 3.
#[test]
fn swapped_query_and_key_fail_both_modes() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in FIXTURES {
        let kind = "discriminator";
        let src = expected(name, kind);
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(src.join(f), dir.join(f)).unwrap();
        }
        let file = dir.join("model.safetensors");
        let mut tensors = read_tensors(&file);
        let q = "electra.encoder.layer.0.attention.self.query.weight".to_string();
        let k = "electra.encoder.layer.0.attention.self.key.weight".to_string();
        let (qv, kv) = (tensors[&q].clone(), tensors[&k].clone());
        tensors.insert(q, kv);
        tensors.insert(k, qv);
        write_tensors(&file, &tensors);
        let tol = Tolerance::default();
        let by_ref = verify_against_reference(&dir, &src.join("reference.npz"), tol).unwrap();
        let by_ckpt = verify_against_checkpoint(&dir, &fixture(name), tol, 0).unwrap();
        assert!(!by_ref.passed, "{name}: reference mode passed a swap");
        assert!(!by_ckpt.passed, "{name}: checkpoint mode passed a swap");
        for (flag, against) in [
            ("--reference", src.join("reference.npz")),
            ("--checkpoint", fixture(name)),
        ] {
            bin()
                .arg("verify")
                .arg(&dir)
                .arg(flag)
                .arg(&against)
                .assert()
                .code(3)
                .stdout(predicates::str::contains("parity: FAILED"));
        }
    }
}

#[test]
fn half_precision_works_on_the_einsum_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f16");
    let mut options = ConvertOptions::new(fixture("mg_proj"), ModelKind::Discriminator, &out);
    options.dtype = electra_convert::OutputDtype::F16;
    convert(&options, &mut NoProgress).unwrap();
    let got = std::fs::read(out.join("model.safetensors")).unwrap();
    let got = safetensors::SafeTensors::deserialize(&got).unwrap();
    let want = read_tensors(&expected("mg_proj", "discriminator").join("model.safetensors"));
    for (name, (shape, values)) in &want {
        let t = got.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F16, "{name}");
        assert_eq!(t.shape(), shape.as_slice(), "{name}");
        let halves: Vec<u8> = values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        assert!(t.data() == halves.as_slice(), "{name}");
    }
}

#[test]
fn inspect_names_the_layout() {
    for (name, title) in FIXTURES {
        bin()
            .arg("inspect")
            .arg(fixture(name))
            .assert()
            .success()
            .stdout(predicates::str::contains(format!("layout: {title}")));
        let out = bin()
            .args(["inspect", "--json"])
            .arg(fixture(name))
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["layout"]["name"], title, "{name}");
    }
}

#[test]
fn map_json_shows_layout_object_paths_and_a_reason_for_every_variable() {
    let listing = read_json(&fixture("mg_proj").join("tf_variables.json"));
    let out = bin()
        .args(["map", "--json", "-m", "generator"])
        .arg(fixture("mg_proj"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["layout"]["id"], "model-garden");
    let plan = &doc["models"][0];
    assert_eq!(plan["source_layout"], "model-garden");
    // The generator's word table is the discriminator's, stored once under encoder/.
    let word = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["hf"] == "electra.embeddings.word_embeddings.weight")
        .unwrap();
    assert_eq!(
        word["tf"],
        "encoder/layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE"
    );
    assert_eq!(
        plan["object_paths"][word["tf"].as_str().unwrap()],
        "model/generator_network/_embedding_layer/embeddings"
    );
    let q = plan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["hf"] == "electra.encoder.layer.0.attention.self.query.weight")
        .unwrap();
    assert_eq!(q["transform"], "merge_last_transpose");
    // Every listed variable is either exported or skipped with a reason.
    let names: Vec<String> = match &listing {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Array(pair) => pair[0].as_str().unwrap().to_owned(),
                Value::Object(o) => o["name"].as_str().unwrap().to_owned(),
                other => other.as_str().unwrap().to_owned(),
            })
            .collect(),
        Value::Object(o) => o.keys().cloned().collect(),
        other => panic!("unexpected tf_variables.json: {other}"),
    };
    let entries = plan["entries"].as_array().unwrap().len();
    let skipped = plan["skipped"].as_array().unwrap();
    assert_eq!(entries + skipped.len(), names.len());
    assert!(skipped
        .iter()
        .all(|s| !s["reason"].as_str().unwrap().is_empty()));
    assert!(skipped.iter().any(|s| s["category"] == "optimizer_slot"
        && s["tf"]
            .as_str()
            .unwrap()
            .contains("/.OPTIMIZER_SLOT/optimizer/m/")));
}

#[test]
fn refused_checkpoints_say_what_they_are_and_what_to_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            fixture("nv_base").join("iter_ckpt_rank_00"),
            "input-pipeline checkpoint",
            "ckpt-N",
        ),
        (fixture("mg_teams"), "TEAMS", "pass one of those"),
        (
            fixture("mg_finetune"),
            "fine-tuning checkpoint",
            "pretraining run's checkpoint",
        ),
    ];
    for (path, what, advice) in cases {
        for cmd in [
            &["convert", "-m", "discriminator"][..],
            &["map", "-m", "discriminator"][..],
        ] {
            let mut c = bin();
            c.args(cmd).arg(&path);
            if cmd[0] == "convert" {
                c.arg("-o").arg(tmp.path().join("never"));
            }
            c.assert()
                .code(1)
                .stdout("")
                .stderr(predicates::str::contains(what))
                .stderr(predicates::str::contains(advice));
        }
    }
    assert!(!tmp.path().join("never").exists());
}

#[test]
fn layout_override_is_checked() {
    // Forcing another producer's table reports what is missing by object path.
    bin()
        .args(["map", "-m", "discriminator", "--layout", "nvidia"])
        .arg(fixture("mg_proj"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("model/discriminator"));
    // A TF2 layout on a name-based checkpoint.
    bin()
        .args(["map", "-m", "discriminator", "--layout", "model-garden"])
        .arg(crate::repo_root().join("fixtures/electra/tied"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no object graph"));
    // The detected layout, forced, gives the same plan.
    let auto = bin()
        .args(["map", "--json", "-m", "generator"])
        .arg(fixture("nv_base"))
        .output()
        .unwrap();
    let forced = bin()
        .args(["map", "--json", "-m", "generator", "--layout", "nvidia"])
        .arg(fixture("nv_base"))
        .output()
        .unwrap();
    assert!(auto.status.success());
    assert_eq!(auto.stdout, forced.stdout);
}

#[test]
fn batch_converts_tf2_jobs_with_a_layout_key() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("jobs.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[jobs]]\ncheckpoint = {:?}\nmodel = \"discriminator\"\noutput = \"mg\"\nverify = true\n\n[[jobs]]\ncheckpoint = {:?}\nmodel = \"both\"\nlayout = \"nvidia\"\noutput = \"nv\"\n",
            fixture("mg_proj").display().to_string(),
            fixture("nv_base").display().to_string()
        ),
    )
    .unwrap();
    bin().arg("batch").arg(&manifest).assert().success();
    assert!(
        std::fs::read(tmp.path().join("mg/model.safetensors")).unwrap()
            == std::fs::read(expected("mg_proj", "discriminator").join("model.safetensors"))
                .unwrap()
    );
    assert!(
        std::fs::read(tmp.path().join("nv/generator/model.safetensors")).unwrap()
            == std::fs::read(expected("nv_base", "generator").join("model.safetensors")).unwrap()
    );
}

#[test]
fn the_trainers_params_yaml_is_read() {
    use electra_convert::mapping::{trainer, SourceLayout};
    let cfg = trainer::load(
        &fixture("mg_proj").join("params.yaml"),
        SourceLayout::ModelGarden,
    )
    .unwrap();
    assert_eq!(cfg.discriminator.num_attention_heads, Some(2));
    assert_eq!(cfg.discriminator.hidden_act.as_deref(), Some("gelu_new"));
    assert_eq!(cfg.generator.hidden_act.as_deref(), Some("gelu_new"));
}

/// A damaged object graph (valid bundle, CRCs right, the proto inside malformed or pointing past
/// its nodes) is an error naming the object graph, exit 1, never a panic.
#[test]
fn a_damaged_object_graph_is_a_clear_error() {
    use tf_checkpoint::{testing, DType};
    let tmp = tempfile::tempdir().unwrap();
    // A truncated node; a child reference to node 7 of a one-node graph.
    for (i, graph) in [
        &[0x0a, 0x05, 0x0a][..],
        &[0x0a, 0x04, 0x0a, 0x02, 0x08, 0x07][..],
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir(&dir).unwrap();
        let (bytes, crc) = testing::string_tensor_data(&[graph], false);
        let mut spec = testing::tensor("_CHECKPOINTABLE_OBJECT_GRAPH", DType::String, &[], bytes);
        spec.crc = Some(crc);
        let (index, data) = testing::build_bundle(&[spec], false);
        let prefix = testing::write_single_shard(&dir, &index, &data).unwrap();
        for cmd in [&["inspect"][..], &["map", "-m", "discriminator"][..]] {
            bin()
                .args(cmd)
                .arg(&prefix)
                .assert()
                .code(1)
                .stdout("")
                .stderr(predicates::str::contains("object graph"));
        }
    }
}

/// The trainer's params.yaml is checked: unreadable lines and a pre-LayerNorm model are errors
/// naming the file and line or field (exit 1, nothing written); `--config` bypasses the file.
#[test]
fn a_bad_params_yaml_is_reported_and_config_bypasses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("run");
    std::fs::create_dir(&ckpt).unwrap();
    for f in ["checkpoint", "ckpt-1.index", "ckpt-1.data-00000-of-00001"] {
        std::fs::copy(fixture("mg_proj").join(f), ckpt.join(f)).unwrap();
    }
    let yaml = std::fs::read_to_string(fixture("mg_proj").join("params.yaml")).unwrap();
    let cases = [
        (format!("{yaml}\nbroken line without a colon\n"), "line"),
        (
            yaml.replacen("norm_first: false", "norm_first: true", 1),
            "pre-LayerNorm",
        ),
    ];
    for (text, what) in cases {
        std::fs::write(ckpt.join("params.yaml"), text).unwrap();
        bin()
            .args(["convert", "-m", "discriminator"])
            .arg(&ckpt)
            .arg("-o")
            .arg(tmp.path().join("out"))
            .assert()
            .code(1)
            .stderr(predicates::str::contains("params.yaml"))
            .stderr(predicates::str::contains(what));
        assert!(!tmp.path().join("out").exists());
    }
    bin()
        .args(["convert", "-m", "discriminator", "--config"])
        .arg(expected("mg_proj", "discriminator").join("config.json"))
        .arg(&ckpt)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .assert()
        .success();
    assert!(
        std::fs::read(tmp.path().join("out/model.safetensors")).unwrap()
            == std::fs::read(expected("mg_proj", "discriminator").join("model.safetensors"))
                .unwrap()
    );
}

/// A copy of fixture `name` in `dir` without its vocab.txt; returns the checkpoint directory.
fn copy_without_vocab(name: &str, dir: &Path) -> PathBuf {
    let ckpt = dir.join(name);
    std::fs::create_dir(&ckpt).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() && entry.file_name() != "vocab.txt" {
            std::fs::copy(entry.path(), ckpt.join(entry.file_name())).unwrap();
        }
    }
    ckpt
}

/// NVIDIA's pretrain_config.json names the vocabulary the run used (`vocab_file`, relative to the
/// config's directory or absolute): with no vocab.txt beside the checkpoint, that file is the
/// one shipped; with one beside it, the one beside it wins; when neither exists, the
/// conversion says so and writes no tokenizer.
#[test]
fn the_trainers_vocab_file_is_used_when_no_vocab_txt_is_beside_the_checkpoint() {
    let original = std::fs::read(fixture("nv_base").join("vocab.txt")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = copy_without_vocab("nv_base", tmp.path());
    // The fixture's config says "vocab/vocab.txt".
    std::fs::create_dir(ckpt.join("vocab")).unwrap();
    std::fs::write(ckpt.join("vocab/vocab.txt"), &original).unwrap();
    let out = tmp.path().join("relative");
    let options = ConvertOptions::new(&ckpt, ModelKind::Discriminator, &out);
    let outcome = convert(&options, &mut NoProgress).unwrap();
    assert_eq!(std::fs::read(out.join("vocab.txt")).unwrap(), original);
    assert!(out.join("tokenizer.json").is_file());
    assert!(
        outcome.warnings.iter().all(|w| !w.contains("no vocab.txt")),
        "{:?}",
        outcome.warnings
    );

    // An absolute vocab_file, somewhere else entirely.
    let elsewhere = tmp.path().join("vocabularies/run-7.txt");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::write(&elsewhere, &original).unwrap();
    std::fs::remove_dir_all(ckpt.join("vocab")).unwrap();
    let config_path = ckpt.join("pretrain_config.json");
    let mut config = read_json(&config_path);
    config["vocab_file"] = Value::String(elsewhere.to_str().unwrap().to_owned());
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let out = tmp.path().join("absolute");
    convert(
        &ConvertOptions::new(&ckpt, ModelKind::Discriminator, &out),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(out.join("vocab.txt")).unwrap(), original);

    // A vocab.txt beside the checkpoint wins over the trainer's (here one token differs).
    let text = String::from_utf8(original.clone()).unwrap();
    let last = text.lines().last().unwrap().to_owned();
    let beside = text.replacen(&format!("\n{last}"), "\nbeside-the-checkpoint", 1);
    assert_ne!(beside, text);
    std::fs::write(ckpt.join("vocab.txt"), &beside).unwrap();
    let out = tmp.path().join("beside");
    convert(
        &ConvertOptions::new(&ckpt, ModelKind::Discriminator, &out),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("vocab.txt")).unwrap(),
        beside
    );

    // Neither: no tokenizer, and a warning that says how to add one.
    std::fs::remove_file(ckpt.join("vocab.txt")).unwrap();
    std::fs::remove_file(&elsewhere).unwrap();
    let out = tmp.path().join("none");
    let outcome = convert(
        &ConvertOptions::new(&ckpt, ModelKind::Discriminator, &out),
        &mut NoProgress,
    )
    .unwrap();
    assert!(!out.join("vocab.txt").exists());
    assert!(!out.join("tokenizer.json").exists());
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("no vocab.txt") && w.contains("--vocab")),
        "{:?}",
        outcome.warnings
    );
}
