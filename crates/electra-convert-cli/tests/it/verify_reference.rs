//! `verify --reference`: the candle forward pass against transformers 4.57.6's outputs.

use crate::verify_support;

use std::path::Path;

use crate::cli;
use electra_convert::verify::{read_reference, verify_against_reference, Tolerance};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use verify_support::*;

const TOL: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

#[test]
fn every_fixture_matches_transformers_within_1e_5() {
    for (layout, kind) in all_models() {
        let dir = model_dir(layout, kind);
        for file in ["reference.safetensors", "reference.npz"] {
            let report = verify_against_reference(&dir, &dir.join(file), TOL).unwrap();
            assert!(report.passed, "{}", report.to_text());
            let want = if kind == "encoder" {
                "last_hidden_state"
            } else {
                "logits"
            };
            let c = &report.outputs[want];
            eprintln!(
                "{layout}/{kind} {file}: {want} {:?} max abs diff {:.3e}, max rel diff {:.3e}, agreement {:?}",
                c.shape, c.max_abs_diff, c.max_rel_diff, c.argmax_agreement
            );
            assert!(c.max_abs_diff < 1e-5, "{}", report.to_text());
            assert_eq!(c.mismatched, 0);
            assert_eq!(c.shape[..2], [2, 12]);
            if kind != "encoder" {
                assert_eq!(c.argmax_agreement, Some(1.0), "{}", report.to_text());
            } else {
                assert_eq!(c.argmax_agreement, None);
            }
        }
    }
}

#[test]
fn int32_inputs_work() {
    let dir = model_dir("tied", "discriminator");
    let reference = dir.join("reference_int32.npz");
    let file = read_reference(&reference).unwrap();
    assert_eq!(file.arrays["input_ids"].dtype_name(), "int32");
    let report = verify_against_reference(&dir, &reference, TOL).unwrap();
    assert!(report.passed);
    assert!(report.outputs["logits"].max_abs_diff < 1e-5);
}

#[test]
fn npz_and_safetensors_hold_the_same_arrays() {
    for (layout, kind) in all_models() {
        let dir = model_dir(layout, kind);
        let a = read_reference(&dir.join("reference.npz")).unwrap();
        let b = read_reference(&dir.join("reference.safetensors")).unwrap();
        assert_eq!(a.arrays, b.arrays, "{layout}/{kind}");
    }
}

#[test]
fn cli_passes_with_exit_0_and_json() {
    let dir = model_dir("released", "generator");
    let out = cli()
        .arg("verify")
        .arg(&dir)
        .arg("--reference")
        .arg(dir.join("reference.npz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("parity: passed"), "{text}");
    assert!(text.contains("logits [2, 12, 72]"), "{text}");
    assert!(text.contains("tied to the word embeddings"), "{text}");

    let out = cli()
        .arg("verify")
        .arg(&dir)
        .arg("--reference")
        .arg(dir.join("reference.safetensors"))
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["mode"], "reference");
    assert_eq!(json["architecture"], "ElectraForMaskedLM");
    let logits = &json["outputs"]["logits"];
    assert!(logits["max_abs_diff"].as_f64().unwrap() < 1e-5);
    assert!(logits["max_rel_diff"].as_f64().is_some());
    assert_eq!(logits["argmax_agreement"], 1.0);
    assert_eq!(logits["passed"], true);
    assert_eq!(logits["shape"], serde_json::json!([2, 12, 72]));
}

#[test]
fn tight_tolerance_fails_with_exit_3() {
    // atol = rtol = 0 demands bit-identical outputs, which candle and torch do not produce.
    let dir = model_dir("tied", "generator");
    let out = cli()
        .arg("verify")
        .arg(&dir)
        .args(["--atol", "0", "--rtol", "0", "--json"])
        .arg("--reference")
        .arg(dir.join("reference.npz"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], false);
    assert!(json["outputs"]["logits"]["mismatched"].as_u64().unwrap() > 0);
}

// ---- unusable reference files: exit 1 with a message naming the problem ----

/// Write a safetensors file from (name, dtype, shape, little-endian bytes).
fn write_reference(path: &Path, arrays: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView<'_>)> = arrays
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.to_string(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn expect_exit_1(model: &Path, reference: &Path, needles: &[&str]) {
    let out = cli()
        .arg("verify")
        .arg(model)
        .arg("--reference")
        .arg(reference)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{stderr:?} should mention {needle:?}"
        );
    }
}

#[test]
fn bad_reference_files_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let disc = model_dir("tied", "discriminator");
    let ids = i64s(&[1; 24]);
    let logits = f32s(&[0.0; 24]);

    let f = tmp.path().join("no_ids.safetensors");
    write_reference(&f, &[("logits", Dtype::F32, vec![2, 12], logits.clone())]);
    expect_exit_1(&disc, &f, &["no input_ids", "logits"]);

    let f = tmp.path().join("bad_mask.safetensors");
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::I64, vec![2, 12], ids.clone()),
            ("attention_mask", Dtype::I64, vec![2, 11], i64s(&[1; 22])),
            ("logits", Dtype::F32, vec![2, 12], logits.clone()),
        ],
    );
    expect_exit_1(&disc, &f, &["attention_mask", "[2, 11]"]);

    let f = tmp.path().join("bad_logits.safetensors");
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::I64, vec![2, 12], ids.clone()),
            ("logits", Dtype::F32, vec![2, 12, 3], f32s(&[0.0; 72])),
        ],
    );
    expect_exit_1(&disc, &f, &["logits", "[2, 12, 3]", "[2, 12]"]);

    let f = tmp.path().join("ids_1d.safetensors");
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::I64, vec![24], ids.clone()),
            ("logits", Dtype::F32, vec![2, 12], logits.clone()),
        ],
    );
    expect_exit_1(&disc, &f, &["input_ids", "[24]"]);

    let f = tmp.path().join("float_ids.safetensors");
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::F32, vec![2, 12], f32s(&[1.0; 24])),
            ("logits", Dtype::F32, vec![2, 12], logits.clone()),
        ],
    );
    expect_exit_1(&disc, &f, &["input_ids", "float32", "int64"]);

    let f = tmp.path().join("big_id.safetensors");
    let mut big = vec![1i64; 24];
    big[5] = 80;
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::I64, vec![2, 12], i64s(&big)),
            ("logits", Dtype::F32, vec![2, 12], logits.clone()),
        ],
    );
    expect_exit_1(&disc, &f, &["input_ids[0][5] = 80", "vocabulary"]);

    let f = tmp.path().join("no_outputs.safetensors");
    write_reference(&f, &[("input_ids", Dtype::I64, vec![2, 12], ids.clone())]);
    expect_exit_1(&disc, &f, &["no expected outputs"]);

    let f = tmp.path().join("too_long.safetensors");
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::I64, vec![1, 40], i64s(&[1; 40])),
            ("logits", Dtype::F32, vec![1, 40], f32s(&[0.0; 40])),
        ],
    );
    expect_exit_1(&disc, &f, &["max_position_embeddings 32"]);

    // An encoder has no logits.
    let encoder = model_dir("tied", "encoder");
    expect_exit_1(
        &encoder,
        &disc.join("reference.npz"),
        &["logits", "ElectraModel"],
    );

    let f = tmp.path().join("garbage.npz");
    std::fs::write(&f, b"this is not a reference file at all").unwrap();
    expect_exit_1(&disc, &f, &["garbage.npz", "neither an .npz archive nor"]);

    let f = tmp.path().join("truncated.npz");
    let bytes = std::fs::read(disc.join("reference.npz")).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    expect_exit_1(&disc, &f, &["truncated.npz", "zip"]);

    expect_exit_1(&disc, &tmp.path().join("missing.npz"), &["missing.npz"]);
}

#[test]
fn optional_inputs_default_to_ones_and_zeros() {
    // Without attention_mask and token_type_ids the batch is all ones / all zeros, which is not
    // what transformers ran: the check runs (no exit 1) and finds the difference (exit 3).
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir("tied", "encoder");
    let full = read_reference(&dir.join("reference.safetensors")).unwrap();
    let ids: Vec<i64> = match &full.arrays["input_ids"].data {
        electra_convert::verify::npy::ArrayData::I64(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    let hidden: Vec<f32> = match &full.arrays["last_hidden_state"].data {
        electra_convert::verify::npy::ArrayData::F32(v) => v.clone(),
        other => panic!("{other:?}"),
    };
    let f = tmp.path().join("ids_only.safetensors");
    write_reference(
        &f,
        &[
            ("input_ids", Dtype::I64, vec![2, 12], i64s(&ids)),
            (
                "last_hidden_state",
                Dtype::F32,
                vec![2, 12, 128],
                f32s(&hidden),
            ),
        ],
    );
    let report = verify_against_reference(&dir, &f, TOL).unwrap();
    assert!(!report.passed);
}

#[test]
fn mutated_reference_files_never_panic() {
    // Every single-byte corruption and every truncation of a real .npz and .safetensors reference
    // is either read or rejected with an error — never a panic.
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir("tied", "discriminator");
    for name in ["reference.npz", "reference.safetensors"] {
        let good = std::fs::read(dir.join(name)).unwrap();
        let path = tmp.path().join(name);
        let step = (good.len() / 400).max(1);
        for i in (0..good.len()).step_by(step) {
            let mut bytes = good.clone();
            bytes[i] ^= 0x5a;
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(file) = read_reference(&path) {
                let _ = file.into_reference();
            }
            std::fs::write(&path, &good[..i]).unwrap();
            assert!(
                read_reference(&path)
                    .and_then(|f| f.into_reference())
                    .is_err()
                    || i == good.len()
            );
        }
    }
}
