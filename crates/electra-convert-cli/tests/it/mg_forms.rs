//! Model Garden encoders standing alone (#18), end to end on the fixtures Model Garden 2.20's
//! own code wrote (`fixtures/forms/mg_*`): encoder checkpoints (`tf.train.Checkpoint(encoder=…)`,
//! with and without the embedding projection) and the `export_tfhub --export_type=model`
//! SavedModel of the first, against transformers 4.57.6's `expected/encoder/` and the
//! producers' own `sequence_output`.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use electra_convert::source::{self, Form};
use electra_convert::verify::npy::{parse_npz, ArrayData};
use electra_convert::verify::{verify_against_checkpoint, verify_against_reference, Tolerance};
use electra_convert::{convert, ConvertOptions, ModelKind, NoProgress};
use safetensors::tensor::{Dtype, TensorView};
use serde_json::Value;

/// (fixture, the directory whose expected/encoder it must equal, what `inspect` names it).
const FORMS: [(&str, &str, &str); 3] = [
    (
        "mg_encoder",
        "mg_encoder",
        "Model Garden TF2 BertEncoder (encoder checkpoint)",
    ),
    (
        "mg_encoder_noproj",
        "mg_encoder_noproj",
        "Model Garden TF2 BertEncoder (encoder checkpoint)",
    ),
    (
        "mg_savedmodel",
        "mg_encoder",
        "Model Garden TF2 BertEncoder (export_tfhub SavedModel)",
    ),
];

/// 1e-5 · max(1, |expected|) per element is implied by atol = rtol = 5e-6.
const PRODUCER_TOL: Tolerance = Tolerance {
    atol: 5e-6,
    rtol: 5e-6,
};

fn fixture(name: &str) -> PathBuf {
    crate::repo_root().join("fixtures/forms").join(name)
}

fn expected(name: &str) -> PathBuf {
    fixture(name).join("expected/encoder")
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_form_converts_byte_identical_to_transformers_without_a_config() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, want, _) in FORMS {
        let out = tmp.path().join(name);
        let mut options = ConvertOptions::new(fixture(name), ModelKind::Encoder, &out);
        options.verify = true;
        let outcome = convert(&options, &mut NoProgress).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(outcome.outputs[0].class, "ElectraModel");
        assert!(
            outcome.parity_passed(),
            "{name}: {:?}",
            outcome.outputs[0].verify
        );
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            std::fs::read(expected(want).join("model.safetensors")).unwrap(),
            "{name}: model.safetensors"
        );
        let mut cfg = read_json(&out.join("config.json"));
        let mut exp = read_json(&expected(want).join("config.json"));
        for v in [&mut cfg, &mut exp] {
            v.as_object_mut().unwrap().remove("transformers_version");
        }
        assert_eq!(cfg, exp, "{name}: config.json");
        let card = std::fs::read_to_string(out.join("README.md")).unwrap();
        let title = FORMS.iter().find(|f| f.0 == name).unwrap().2;
        assert!(
            card.contains(&format!("| source layout | {title}")),
            "{card}"
        );
        // Every form ships its vocabulary and an uncased tokenizer.
        let tok = read_json(&out.join("tokenizer_config.json"));
        assert_eq!(tok["do_lower_case"], true, "{name}");
    }
}

#[test]
fn saved_model_takes_vocab_and_casing_from_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("mg_savedmodel");
    let src = source::open(&dir).unwrap();
    assert_eq!(src.form(), Form::SavedModel);
    assert_eq!(src.own_lower_case(), Some(true));
    assert_eq!(
        src.own_vocab(),
        Some(dir.join("assets/vocab.txt").as_path())
    );
    let keras = src.saved_model().unwrap().keras.as_ref().unwrap();
    assert_eq!(keras.inner_activation.as_deref(), Some("Text>gelu"));
    drop(src);

    let out = tmp.path().join("sm");
    let outcome = convert(
        &ConvertOptions::new(&dir, ModelKind::Encoder, &out),
        &mut NoProgress,
    )
    .unwrap();
    let m = &outcome.outputs[0];
    assert_eq!(
        m.vocab.as_deref(),
        Some(dir.join("assets/vocab.txt").as_path())
    );
    assert_eq!(m.do_lower_case, Some(true));
    assert_eq!(
        std::fs::read(out.join("vocab.txt")).unwrap(),
        std::fs::read(dir.join("assets/vocab.txt")).unwrap()
    );
    let json = serde_json::to_value(m.tokenizer.as_ref().unwrap()).unwrap();
    assert!(json.to_string().contains("saved_model"), "{json}");
    // A flag still wins over the recorded value.
    let mut cased = ConvertOptions::new(&dir, ModelKind::Encoder, tmp.path().join("cased"));
    cased.lower_case = Some(false);
    let outcome = convert(&cased, &mut NoProgress).unwrap();
    assert_eq!(outcome.outputs[0].do_lower_case, Some(false));
    // The saved_model.pb file itself names the SavedModel too.
    let src = source::open(&dir.join("saved_model.pb")).unwrap();
    assert_eq!(src.form(), Form::SavedModel);
}

#[test]
fn inspect_names_form_and_layout_and_map_accounts_for_every_variable() {
    for (name, _, title) in FORMS {
        let form = if name == "mg_savedmodel" {
            "form: TensorFlow SavedModel"
        } else {
            "form: TensorFlow checkpoint"
        };
        bin()
            .arg("inspect")
            .arg(fixture(name))
            .assert()
            .success()
            .stdout(predicates::str::contains(form))
            .stdout(predicates::str::contains(format!("layout: {title}")));
        let out = bin()
            .args(["map", "--json", "-m", "encoder"])
            .arg(fixture(name))
            .assert()
            .success();
        let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert_eq!(doc["layout"]["name"], title);
        let plan = &doc["models"][0];
        let tensors: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(fixture(name).join("tf_variables.json")).unwrap(),
        )
        .unwrap();
        let entries = plan["entries"].as_array().unwrap().len();
        let skipped = plan["skipped"].as_array().unwrap();
        assert_eq!(entries + skipped.len(), tensors.len(), "{name}");
        let reasons: Vec<&str> = skipped.iter().map(|s| s["tf"].as_str().unwrap()).collect();
        assert!(
            reasons.contains(&"_CHECKPOINTABLE_OBJECT_GRAPH"),
            "{reasons:?}"
        );
        if name == "mg_savedmodel" {
            assert!(reasons.contains(&"do_lower_case/.ATTRIBUTES/VARIABLE_VALUE"));
        } else {
            assert!(reasons.contains(&"save_counter/.ATTRIBUTES/VARIABLE_VALUE"));
        }
        for s in skipped {
            assert_ne!(s["category"], "unrecognised", "{s}");
        }
        let pooler = skipped
            .iter()
            .filter(|s| s["reason"].as_str().unwrap().contains("pooler"))
            .count();
        assert_eq!(pooler, 2, "{name}");
    }
}

#[test]
fn heads_are_refused_with_the_kind_to_pass() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _, _) in FORMS {
        for kind in ["discriminator", "generator", "both"] {
            let out = tmp.path().join(format!("{name}-{kind}"));
            bin()
                .args(["convert", "-m", kind])
                .arg(fixture(name))
                .arg("-o")
                .arg(&out)
                .assert()
                .code(1)
                .stderr(predicates::str::contains("holds an encoder only"))
                .stderr(predicates::str::contains("--model encoder"));
            assert!(!out.exists(), "{name}/{kind}");
        }
    }
}

/// The producers' `sequence_output` on their batch, as a `--reference` file.
fn producer_reference(name: &str, to: &Path) {
    let file = std::fs::File::open(fixture(name).join("producer_outputs.npz")).unwrap();
    let arrays = parse_npz(file).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (key, array) in arrays {
        let key = key.trim_end_matches(".npy");
        let key = if key == "sequence_output" {
            "last_hidden_state"
        } else {
            key
        };
        let (dtype, bytes): (Dtype, Vec<u8>) = match &array.data {
            ArrayData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            ArrayData::I32(v) => (Dtype::I32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            ArrayData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            ArrayData::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        owned.push((key.to_owned(), dtype, array.shape.clone(), bytes));
    }
    let names: Vec<&str> = owned.iter().map(|o| o.0.as_str()).collect();
    assert!(
        names.contains(&"last_hidden_state") && names.contains(&"input_ids"),
        "{names:?}"
    );
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, to).unwrap();
}

#[test]
fn the_producers_own_outputs_match_within_1e_5() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, want, _) in FORMS {
        let reference = tmp.path().join(format!("{name}.safetensors"));
        producer_reference(name, &reference);
        // The converted directory equals expected/encoder byte for byte (test above).
        let report = verify_against_reference(&expected(want), &reference, PRODUCER_TOL)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.passed, "{name}:\n{}", report.to_text());
        let c = &report.outputs["last_hidden_state"];
        assert!(c.max_abs_diff < 5e-6, "{name}: {}", report.to_text());
        println!(
            "{name}: candle vs producer sequence_output max abs diff {:.2e}, max rel diff {:.2e}",
            c.max_abs_diff, c.max_rel_diff
        );
        // And through the command line, as a user would run it.
        bin()
            .args(["verify", "--reference"])
            .arg(&reference)
            .args(["--atol", "5e-6", "--rtol", "5e-6"])
            .arg(expected(want))
            .assert()
            .success();
    }
}

#[test]
fn verify_checkpoint_reads_each_form_by_its_own_names() {
    for (name, want, _) in FORMS {
        let report =
            verify_against_checkpoint(&expected(want), &fixture(name), Tolerance::default(), 0)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(report.passed, "{name}:\n{}", report.to_text());
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// Damages a copied SavedModel directory.
type Breaker = Box<dyn Fn(&Path)>;

#[test]
fn broken_saved_models_are_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let good = fixture("mg_savedmodel");
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "no-variables",
            Box::new(|d: &Path| std::fs::remove_dir_all(d.join("variables")).unwrap()),
            "the SavedModel is incomplete",
        ),
        (
            "no-data",
            Box::new(|d: &Path| {
                std::fs::remove_file(d.join("variables/variables.data-00000-of-00001")).unwrap()
            }),
            "variables.data-00000-of-00001 is missing",
        ),
        (
            "other-variables",
            // The variables of another checkpoint (a TF1 name-based one: no object graph).
            Box::new(|d: &Path| {
                let tf1 = crate::repo_root().join("fixtures/electra/tied");
                let v = d.join("variables");
                std::fs::remove_dir_all(&v).unwrap();
                std::fs::create_dir(&v).unwrap();
                for entry in std::fs::read_dir(&tf1).unwrap() {
                    let p = entry.unwrap().path();
                    let f = p.file_name().unwrap().to_string_lossy().into_owned();
                    if f.ends_with(".index") {
                        std::fs::copy(&p, v.join("variables.index")).unwrap();
                    } else if let Some((_, data)) = f.split_once(".data-") {
                        std::fs::copy(&p, v.join(format!("variables.data-{data}"))).unwrap();
                    }
                }
            }),
            "object graph",
        ),
        (
            "bad-metadata",
            Box::new(|d: &Path| std::fs::write(d.join("keras_metadata.pb"), [0x0a, 0xff]).unwrap()),
            "keras_metadata.pb is unreadable",
        ),
        (
            "not-an-encoder",
            Box::new(|d: &Path| {
                // Same length, so every protobuf length stays right.
                let mut b = std::fs::read(d.join("keras_metadata.pb")).unwrap();
                let text = b"Text>BertEncoder";
                let mut replaced = 0;
                while let Some(pos) = b.windows(text.len()).position(|w| w == text) {
                    b[pos..pos + text.len()].copy_from_slice(b"Text>T5Encoder__");
                    replaced += 1;
                }
                assert!(replaced > 0);
                std::fs::write(d.join("keras_metadata.pb"), b).unwrap();
            }),
            "not a Model Garden BertEncoder",
        ),
    ];
    for (case, breaker, message) in cases {
        let dir = tmp.path().join(case);
        copy_dir(&good, &dir);
        breaker(&dir);
        let out = tmp.path().join(format!("{case}-out"));
        bin()
            .args(["convert", "-m", "encoder"])
            .arg(&dir)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(1)
            .stderr(predicates::str::contains(message));
        assert!(!out.exists(), "{case}");
    }
}

#[test]
fn batch_converts_a_saved_model_job() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sm");
    let manifest = tmp.path().join("jobs.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[jobs]]\ncheckpoint = {:?}\nmodel = \"encoder\"\noutput = {:?}\nverify = true\n",
            fixture("mg_savedmodel").display().to_string(),
            out.display().to_string()
        ),
    )
    .unwrap();
    bin().arg("batch").arg(&manifest).assert().success();
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        std::fs::read(expected("mg_encoder").join("model.safetensors")).unwrap()
    );
}
