//! `verify --checkpoint`: the converted directory against the original TF weights read by their
//! own names (fixtures' transformers-written directories stand in for converted ones).

use crate::verify_support;

use crate::cli;
use electra_convert::verify::{verify_against_checkpoint, Tolerance};
use verify_support::*;

const TOL: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

#[test]
fn every_fixture_matches_its_checkpoint() {
    for (layout, kind) in all_models() {
        for seed in [0, 1, 12345] {
            let report =
                verify_against_checkpoint(&model_dir(layout, kind), &checkpoint(layout), TOL, seed)
                    .unwrap();
            assert!(report.passed, "{}", report.to_text());
            assert_eq!(report.mode, "checkpoint");
            assert_eq!(report.seed, Some(seed));
            assert_eq!(report.batch, [2, 16]);
            let expect: &[&str] = if kind == "encoder" {
                &["last_hidden_state"]
            } else {
                &["last_hidden_state", "logits"]
            };
            assert_eq!(
                report
                    .outputs
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                expect
            );
            for (name, c) in &report.outputs {
                // Same arithmetic on the same values: anything but ~0 means a weight differs.
                assert!(c.max_abs_diff < 1e-6, "{layout}/{kind} {name}: {c:?}");
            }
        }
    }
}

#[test]
fn untied_generator_uses_its_own_embeddings() {
    let report = verify_against_checkpoint(
        &model_dir("untied", "generator"),
        &checkpoint("untied"),
        TOL,
        0,
    )
    .unwrap();
    assert!(report.passed);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("generator/embeddings")),
        "{:?}",
        report.notes
    );
}

#[test]
fn cli_exit_codes() {
    let dir = model_dir("tied", "discriminator");
    let out = cli()
        .arg("verify")
        .arg(&dir)
        .arg("--checkpoint")
        .arg(checkpoint("tied").join("model.ckpt-1000.index"))
        .args(["--seed", "7", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["seed"], 7);
    assert_eq!(json["mode"], "checkpoint");

    // The discriminator of another checkpoint: sizes differ → parity fails (exit 3).
    let out = cli()
        .arg("verify")
        .arg(model_dir("released", "discriminator"))
        .arg("--checkpoint")
        .arg(checkpoint("untied"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A non-ELECTRA checkpoint: unusable input (exit 1) naming the missing variable.
    let out = cli()
        .arg("verify")
        .arg(&dir)
        .arg("--checkpoint")
        .arg(checkpoint("bert"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("electra/embeddings/word_embeddings"),
        "{stderr}"
    );

    // A missing model directory.
    let out = cli()
        .arg("verify")
        .arg("/nonexistent/model")
        .arg("--checkpoint")
        .arg(checkpoint("tied"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.json"));
}

#[test]
fn broken_model_directories_are_errors_naming_the_tensor() {
    // Missing tensor.
    let copy = ModelCopy::new("tied", "discriminator");
    copy.edit_tensors(|t| {
        t.remove("electra.encoder.layer.1.output.dense.bias")
            .unwrap();
    });
    let err = verify_against_checkpoint(copy.dir(), &checkpoint("tied"), TOL, 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("electra.encoder.layer.1.output.dense.bias"),
        "{err}"
    );
    assert!(err.contains("missing"), "{err}");

    // Unexpected tensor.
    let copy = ModelCopy::new("tied", "encoder");
    copy.edit_tensors(|t| {
        t.insert("pooler.dense.bias".into(), (vec![2], vec![0.0, 0.0]));
    });
    let err = verify_against_checkpoint(copy.dir(), &checkpoint("tied"), TOL, 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unexpected tensor(s) pooler.dense.bias"),
        "{err}"
    );

    // Wrong shape.
    let copy = ModelCopy::new("released", "generator");
    copy.edit_tensors(|t| {
        let (shape, values) = t.get_mut("generator_lm_head.bias").unwrap();
        shape[0] -= 1;
        values.pop();
    });
    let err = verify_against_checkpoint(copy.dir(), &checkpoint("released"), TOL, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("generator_lm_head.bias"), "{err}");
    assert!(err.contains("[71]") && err.contains("[72]"), "{err}");

    // Unsupported activation.
    let copy = ModelCopy::new("tied", "encoder");
    copy.edit_config(|c| {
        c.insert("hidden_act".into(), "silu".into());
    });
    let out = cli()
        .arg("verify")
        .arg(copy.dir())
        .arg("--checkpoint")
        .arg(checkpoint("tied"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hidden_act \"silu\""));
}

#[test]
fn half_precision_weights_are_computed_in_f32() {
    // Store every weight as f16: the forward pass upcasts and still runs; the rounding error is
    // far above 1e-6 but the structure is right.
    let copy = ModelCopy::new("released", "encoder");
    let file = copy.dir().join("model.safetensors");
    let tensors = read_tensors(&file);
    let halves: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, (s, v))| {
            let data = v
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect();
            (n.clone(), s.clone(), data)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = halves
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F16, s.clone(), d)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(&file, safetensors::tensor::serialize(views, None).unwrap()).unwrap();
    let loose = Tolerance {
        atol: 5e-2,
        rtol: 5e-2,
    };
    let report = verify_against_checkpoint(copy.dir(), &checkpoint("released"), loose, 0).unwrap();
    assert!(report.passed, "{}", report.to_text());
    let diff = report.outputs["last_hidden_state"].max_abs_diff;
    assert!(diff > 0.0 && diff < 5e-2, "{diff}");
}
