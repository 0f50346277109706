//! `convert --verify` / `convert --reference` and the same checks inside `batch`.

use crate::verify_support;

use std::path::Path;

use crate::cli;
use verify_support::*;

fn convert(layout: &str, model: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    cli()
        .arg("--model")
        .arg(model)
        .arg(checkpoint(layout))
        .arg("-o")
        .arg(out)
        .arg("--quiet")
        .args(extra)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn convert_verify_and_reference_pass() {
    let tmp = tempfile::tempdir().unwrap();
    for (layout, kind) in all_models() {
        let out = tmp.path().join(format!("{layout}-{kind}"));
        let reference = model_dir(layout, kind).join("reference.npz");
        let run = convert(
            layout,
            kind,
            &out,
            &[
                "--verify",
                "--reference",
                reference.to_str().unwrap(),
                "--json",
            ],
        );
        assert_eq!(
            run.status.code(),
            Some(0),
            "{layout}/{kind}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let j = json(&run);
        let reports = j["outputs"][0]["verify"].as_array().unwrap();
        assert_eq!(reports.len(), 2, "{layout}/{kind}");
        assert_eq!(reports[0]["mode"], "checkpoint");
        assert_eq!(reports[1]["mode"], "reference");
        for r in reports {
            assert_eq!(r["passed"], true);
            for (_, c) in r["outputs"].as_object().unwrap() {
                assert!(
                    c["max_abs_diff"].as_f64().unwrap() < 1e-5,
                    "{layout}/{kind}: {c}"
                );
            }
        }
    }
}

#[test]
fn both_checks_the_reference_against_the_model_it_fits() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("both");
    let reference = model_dir("released", "generator").join("reference.safetensors");
    let run = convert(
        "released",
        "both",
        &out,
        &["--reference", reference.to_str().unwrap(), "--json"],
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let j = json(&run);
    let outputs = j["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["kind"], "discriminator");
    assert_eq!(outputs[0]["verify"].as_array().unwrap().len(), 0);
    assert_eq!(outputs[1]["kind"], "generator");
    assert_eq!(outputs[1]["verify"][0]["passed"], true);
}

#[test]
fn failed_check_keeps_the_files_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    // A user config with the wrong LayerNorm ε: the conversion succeeds, the check does not.
    let config = tmp.path().join("config.json");
    let text = std::fs::read_to_string(model_dir("tied", "discriminator").join("config.json"))
        .unwrap()
        .replace("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": 0.01");
    std::fs::write(&config, text).unwrap();
    let out = tmp.path().join("disc");
    let reference = model_dir("tied", "discriminator").join("reference.npz");
    let run = convert(
        "tied",
        "discriminator",
        &out,
        &[
            "--config",
            config.to_str().unwrap(),
            "--verify",
            "--reference",
            reference.to_str().unwrap(),
        ],
    );
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(stdout.matches("parity: FAILED").count(), 2, "{stdout}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("kept for inspection"), "{stderr}");
    assert!(out.join("model.safetensors").is_file());
    assert!(out.join("config.json").is_file());
}

#[test]
fn unusable_reference_stops_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("ref.npz");
    std::fs::write(&garbage, b"PK\x03\x04 not really").unwrap();
    let out = tmp.path().join("never");
    let run = convert(
        "tied",
        "discriminator",
        &out,
        &["--reference", garbage.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stderr).contains("ref.npz"));
    assert!(!out.exists());

    // A well-formed reference for another model class: written, then exit 1 naming the problem.
    let out = tmp.path().join("enc");
    let reference = model_dir("tied", "discriminator").join("reference.npz");
    let run = convert(
        "tied",
        "encoder",
        &out,
        &["--reference", reference.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("ElectraModel"), "{stderr}");
}

#[test]
fn batch_reports_parity() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_config = tmp.path().join("bad.json");
    let text = std::fs::read_to_string(model_dir("released", "encoder").join("config.json"))
        .unwrap()
        .replace("\"hidden_act\": \"gelu\"", "\"hidden_act\": \"gelu_new\"");
    std::fs::write(&bad_config, text).unwrap();
    let manifest = tmp.path().join("m.json");
    std::fs::write(
        &manifest,
        serde_json::json!({
            "defaults": {"verify": true},
            "jobs": [
                {"name": "good", "checkpoint": checkpoint("released"), "model": "encoder",
                 "output": tmp.path().join("good"),
                 "reference": model_dir("released", "encoder").join("reference.npz")},
                {"name": "bad", "checkpoint": checkpoint("released"), "model": "encoder",
                 "output": tmp.path().join("bad"), "config": bad_config},
            ]
        })
        .to_string(),
    )
    .unwrap();
    let report = tmp.path().join("r.json");
    let run = cli()
        .arg("batch")
        .arg(&manifest)
        .args(["--quiet", "--jobs", "1", "--report"])
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["status"], "ok");
    assert_eq!(jobs[0]["verify"]["passed"], true);
    assert_eq!(jobs[0]["verify"]["reports"].as_array().unwrap().len(), 2);
    assert_eq!(jobs[1]["status"], "parity_failed");
    assert_eq!(jobs[1]["verify"]["passed"], false);
    let failures = jobs[1]["verify"]["failures"].as_array().unwrap();
    assert!(
        failures[0]
            .as_str()
            .unwrap()
            .starts_with("encoder (checkpoint): last_hidden_state max_abs_diff"),
        "{failures:?}"
    );
}

/// `verify` on the top directory of a `--model both` output says to verify each model, and a
/// missing config.json is reported once (the OS error is not repeated by the error chain).
#[test]
fn verify_on_a_both_output_points_at_its_model_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("both");
    let done = convert("tied", "both", &out, &[]);
    assert!(done.status.success(), "{done:?}");
    let run = cli()
        .arg("verify")
        .arg(&out)
        .arg("--checkpoint")
        .arg(checkpoint("tied"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stdout.is_empty());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("is a --model both output"), "{err}");
    assert!(
        err.contains(&out.join("generator").display().to_string()),
        "{err}"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let run = cli()
        .arg("verify")
        .arg(&empty)
        .arg("--checkpoint")
        .arg(checkpoint("tied"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
