//! The parity checks' numbers, pinned to the bit: every fixture in both modes (and a set of
//! tampered copies, whose differences are large and so sensitive to any change in the
//! arithmetic) must give exactly the max abs / max rel differences, worst index and mismatch
//! counts recorded in `crates/electra-convert/tests/data/verify_parity_baseline.json`.
//!
//! The file was written by the whole-model implementation (every weight of both sides resident)
//! before the checks were made to stream layer by layer; the streaming implementation must
//! reproduce it exactly. To re-record after an intended numeric change, run with
//! `VERIFY_BASELINE_RECORD=1` and say why in the commit.

use crate::verify_support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use electra_convert::verify::{
    verify_against_checkpoint, verify_against_reference, ParityReport, Tolerance,
};
use serde_json::{json, Value};
use verify_support::*;

const TOL: Tolerance = Tolerance {
    atol: 1e-4,
    rtol: 1e-4,
};

fn baseline_path() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/verify_parity_baseline.json")
}

/// The bit-level fingerprint of a report: f64s as their bit patterns (hex) so equality is exact.
fn fingerprint(report: &ParityReport) -> Value {
    let outputs: BTreeMap<&str, Value> = report
        .outputs
        .iter()
        .map(|(name, c)| {
            (
                name.as_str(),
                json!({
                    "max_abs_diff": format!("{:016x}", c.max_abs_diff.to_bits()),
                    "max_rel_diff": format!("{:016x}", c.max_rel_diff.to_bits()),
                    // Readable, and exact as a string (JSON numbers need not round-trip).
                    "max_abs_diff_approx": format!("{:.6e}", c.max_abs_diff),
                    "argmax_agreement": c.argmax_agreement.map(|a| format!("{:016x}", a.to_bits())),
                    "passed": c.passed,
                    "shape": c.shape,
                    "mismatched": c.mismatched,
                    "worst_index": c.worst_index,
                }),
            )
        })
        .collect();
    json!({ "passed": report.passed, "outputs": outputs, "notes": report.notes })
}

/// Tampered copies of a fixture: each edit changes the numbers far beyond the tolerance.
fn tampered(layout: &'static str, kind: &'static str) -> Vec<(String, ModelCopy)> {
    let p = prefix(kind);
    let mut out = Vec::new();

    let copy = ModelCopy::new(layout, kind);
    copy.edit_tensors(|t| {
        let q = format!("{p}encoder.layer.0.attention.self.query.weight");
        let k = format!("{p}encoder.layer.0.attention.self.key.weight");
        let query = t.remove(&q).unwrap();
        let key = t.remove(&k).unwrap();
        t.insert(q, key);
        t.insert(k, query);
    });
    out.push(("swapped_query_key".to_string(), copy));

    let copy = ModelCopy::new(layout, kind);
    copy.edit_tensors(|t| {
        let name = format!("{p}encoder.layer.0.attention.output.dense.weight");
        let (shape, values) = t.get_mut(&name).unwrap();
        *values = transpose(shape, values);
    });
    out.push(("untransposed_kernel".to_string(), copy));

    let copy = ModelCopy::new(layout, kind);
    copy.edit_config(|c| {
        c.insert("layer_norm_eps".into(), 1e-2.into());
    });
    out.push(("layer_norm_eps_1e-2".to_string(), copy));

    let copy = ModelCopy::new(layout, kind);
    copy.edit_config(|c| {
        c.insert("hidden_act".into(), "gelu_new".into());
    });
    out.push(("gelu_new".to_string(), copy));

    let copy = ModelCopy::new(layout, kind);
    copy.edit_tensors(|t| {
        for (_, values) in t.values_mut() {
            for v in values.iter_mut() {
                *v = half::f16::from_f32(*v).to_f32();
            }
        }
    });
    out.push(("f16_rounded_weights".to_string(), copy));
    out
}

fn measure_all() -> BTreeMap<String, Value> {
    let mut results = BTreeMap::new();
    let mut record = |case: String, report: ParityReport| {
        results.insert(case, fingerprint(&report));
    };
    for (layout, kind) in all_models() {
        let dir = model_dir(layout, kind);
        for file in [
            "reference.safetensors",
            "reference.npz",
            "reference_int32.npz",
        ] {
            let reference = dir.join(file);
            if reference.is_file() {
                let report = verify_against_reference(&dir, &reference, TOL).unwrap();
                record(format!("{layout}/{kind}/reference/{file}"), report);
            }
        }
        for seed in [0, 1, 12345] {
            let report = verify_against_checkpoint(&dir, &checkpoint(layout), TOL, seed).unwrap();
            record(format!("{layout}/{kind}/checkpoint/seed{seed}"), report);
        }
        for (what, copy) in tampered(layout, kind) {
            let report = verify_against_reference(copy.dir(), &copy.reference(), TOL).unwrap();
            record(format!("{layout}/{kind}/{what}/reference"), report);
            let report =
                verify_against_checkpoint(copy.dir(), &checkpoint(layout), TOL, 0).unwrap();
            record(format!("{layout}/{kind}/{what}/checkpoint/seed0"), report);
        }
    }
    // A model checked against another layout's checkpoint (structure differs: a failed report,
    // not an error) and a generator run on a checkpoint without a generator tower.
    let report = verify_against_checkpoint(
        &model_dir("released", "discriminator"),
        &checkpoint("untied"),
        TOL,
        0,
    )
    .unwrap();
    record("released/discriminator/vs-untied-checkpoint".into(), report);
    results
}

#[test]
fn parity_numbers_equal_the_recorded_whole_model_numbers_to_the_bit() {
    let measured = measure_all();
    let path = baseline_path();
    if std::env::var_os("VERIFY_BASELINE_RECORD").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(&measured).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
        eprintln!("recorded {} cases in {}", measured.len(), path.display());
        return;
    }
    let recorded: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        measured.keys().collect::<Vec<_>>(),
        recorded.keys().collect::<Vec<_>>(),
        "the set of cases changed"
    );
    let mut differing = Vec::new();
    for (case, value) in &measured {
        if value != &recorded[case] {
            differing.push(format!(
                "{case}:\n  now      {value}\n  recorded {}",
                recorded[case]
            ));
        }
    }
    assert!(
        differing.is_empty(),
        "{} of {} cases differ from the recorded numbers:\n{}",
        differing.len(),
        measured.len(),
        differing.join("\n")
    );
    // The baseline is not vacuous: the tampered cases fail with large differences.
    let failed = recorded.values().filter(|v| v["passed"] == false).count();
    assert!(failed >= 40, "only {failed} failing cases recorded");
}
