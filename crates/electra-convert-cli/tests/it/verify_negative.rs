//! A converted directory with one realistic mistake must fail verify (exit 3) in both modes:
//! against transformers' reference outputs and against the original checkpoint.

use crate::verify_support;

use crate::cli;
use electra_convert::verify::{
    verify_against_checkpoint, verify_against_reference, ParityReport, Tolerance,
};
use verify_support::*;

const TOL: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

/// Run both checks on a tampered copy: the library reports failure and the CLI exits 3.
fn assert_fails_both_modes(copy: &ModelCopy, what: &str) -> (ParityReport, ParityReport) {
    let by_reference = verify_against_reference(copy.dir(), &copy.reference(), TOL).unwrap();
    let by_checkpoint =
        verify_against_checkpoint(copy.dir(), &checkpoint(copy.layout), TOL, 0).unwrap();
    for report in [&by_reference, &by_checkpoint] {
        assert!(
            !report.passed,
            "{what} on {}/{} passed in {} mode:\n{}",
            copy.layout,
            copy.kind,
            report.mode,
            report.to_text()
        );
    }
    let reference = copy.reference();
    let ckpt = checkpoint(copy.layout);
    for against in [
        ["--reference", reference.to_str().unwrap()],
        ["--checkpoint", ckpt.to_str().unwrap()],
    ] {
        let out = cli()
            .arg("verify")
            .arg(copy.dir())
            .args(against)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what} on {}/{} with {}: stdout {} stderr {}",
            copy.layout,
            copy.kind,
            against[0],
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("parity: FAILED"), "{stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("parity check failed"), "{stderr}");
    }
    (by_reference, by_checkpoint)
}

fn worst(report: &ParityReport) -> f64 {
    report
        .outputs
        .values()
        .map(|c| c.max_abs_diff)
        .fold(0.0, f64::max)
}

#[test]
fn swapped_query_and_key_fail() {
    for (layout, kind) in all_models() {
        let copy = ModelCopy::new(layout, kind);
        let p = prefix(kind);
        copy.edit_tensors(|t| {
            let q = format!("{p}encoder.layer.0.attention.self.query.weight");
            let k = format!("{p}encoder.layer.0.attention.self.key.weight");
            let query = t.remove(&q).unwrap();
            let key = t.remove(&k).unwrap();
            t.insert(q, key);
            t.insert(k, query);
        });
        assert_fails_both_modes(&copy, "query/key swapped");
    }
}

#[test]
fn untransposed_kernel_fails() {
    // Store one square kernel in TF's [in, out] layout instead of torch's [out, in].
    for (layout, kind) in all_models() {
        let copy = ModelCopy::new(layout, kind);
        let p = prefix(kind);
        copy.edit_tensors(|t| {
            let name = format!("{p}encoder.layer.0.attention.output.dense.weight");
            let (shape, values) = t.get_mut(&name).unwrap();
            assert_eq!(shape[0], shape[1], "{name} is not square");
            *values = transpose(shape, values);
        });
        assert_fails_both_modes(&copy, "untransposed kernel");
    }
}

/// The ε we plant. With ε = 1e-12 the LayerNorm inputs' variances (≈ 0.1 … 10 here) dominate;
/// 1e-2 changes every normalisation by up to a few percent, far beyond 1e-4.
const WRONG_EPS: f64 = 1e-2;

#[test]
fn wrong_layer_norm_eps_fails() {
    for (layout, kind) in all_models() {
        let copy = ModelCopy::new(layout, kind);
        copy.edit_config(|c| {
            c.insert("layer_norm_eps".into(), WRONG_EPS.into());
        });
        let (by_reference, by_checkpoint) = assert_fails_both_modes(&copy, "layer_norm_eps");
        // Not a borderline failure: the change moves outputs by far more than the tolerance.
        for report in [&by_reference, &by_checkpoint] {
            eprintln!(
                "{layout}/{kind} eps {WRONG_EPS}: {} max abs diff {:.3e}",
                report.mode,
                worst(report)
            );
            assert!(worst(report) > 10.0 * TOL.atol, "{}", report.to_text());
        }
    }
}

#[test]
fn tanh_gelu_instead_of_erf_fails() {
    for (layout, kind) in all_models() {
        let copy = ModelCopy::new(layout, kind);
        copy.edit_config(|c| {
            c.insert("hidden_act".into(), "gelu_new".into());
        });
        let (by_reference, by_checkpoint) = assert_fails_both_modes(&copy, "gelu_new");
        for report in [&by_reference, &by_checkpoint] {
            eprintln!(
                "{layout}/{kind} gelu_new: {} max abs diff {:.3e}",
                report.mode,
                worst(report)
            );
        }
    }
}
