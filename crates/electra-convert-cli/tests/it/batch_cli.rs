//! `electra-convert batch` end to end: real manifests over the real ELECTRA fixtures, run by the
//! real binary. Converted tensors are compared bit for bit with the transformers outputs in
//! `fixtures/electra/<layout>/expected/<kind>/model.safetensors`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    crate::repo_root().join("fixtures/electra")
}

/// A checkpoint prefix of a fixture layout, as a string for manifests.
fn ckpt(layout: &str) -> String {
    let prefix = match layout {
        "tied" => "model.ckpt-1000",
        "released" => "electra_tiny",
        "untied" => "model.ckpt-500",
        "finetuned" => "model.ckpt-2000",
        "bert" => "bert_model.ckpt",
        other => panic!("no layout {other}"),
    };
    fixtures().join(layout).join(prefix).display().to_string()
}

fn expected(layout: &str, kind: &str) -> PathBuf {
    fixtures().join(layout).join("expected").join(kind)
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

/// Every tensor of `got` equals the one of the same name in `want`: same key set, dtype, shape
/// and bytes.
fn assert_same_tensors(got: &Path, want: &Path) {
    let got_bytes = std::fs::read(got).unwrap_or_else(|e| panic!("{}: {e}", got.display()));
    let want_bytes = std::fs::read(want).unwrap();
    let got_st = safetensors::SafeTensors::deserialize(&got_bytes).unwrap();
    let want_st = safetensors::SafeTensors::deserialize(&want_bytes).unwrap();
    let got_names: BTreeSet<String> = got_st.names().into_iter().map(String::from).collect();
    let want_names: BTreeSet<String> = want_st.names().into_iter().map(String::from).collect();
    assert_eq!(
        got_names,
        want_names,
        "{} vs {}",
        got.display(),
        want.display()
    );
    for name in &want_names {
        let g = got_st.tensor(name).unwrap();
        let w = want_st.tensor(name).unwrap();
        assert_eq!(g.dtype(), w.dtype(), "{name}");
        assert_eq!(g.shape(), w.shape(), "{name}");
        assert!(g.data() == w.data(), "{name} differs in {}", got.display());
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `{name: status}` from a report.
fn statuses(report: &Value) -> Vec<(String, String)> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_string(),
                j["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn good_jobs_are_bit_exact_and_a_broken_job_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("sweep.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[defaults]
dtype = "f32"

[[jobs]]
name = "tied-disc"
checkpoint = "{tied}"
model = "discriminator"
output = "out/tied-disc"

[[jobs]]
name = "bert-as-disc"
checkpoint = "{bert}"
model = "discriminator"
output = "out/bert-as-disc"

[[jobs]]
name = "released-gen"
checkpoint = "{released}"
model = "generator"
output = "out/released-gen"

[[jobs]]
name = "finetuned-enc"
checkpoint = "{finetuned}"
model = "encoder"
output = "out/finetuned-enc"

[[jobs]]
name = "tied-both"
checkpoint = "{tied}"
model = "both"
output = "out/tied-both"
"#,
            tied = ckpt("tied"),
            bert = ckpt("bert"),
            released = ckpt("released"),
            finetuned = ckpt("finetuned"),
        ),
    )
    .unwrap();
    let report = dir.path().join("reports/report.json");
    let junit = dir.path().join("reports/junit.xml");
    bin()
        .arg("batch")
        .arg(&manifest)
        .args(["--jobs", "2", "--quiet", "--report"])
        .arg(&report)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("1 of 5 jobs failed: bert-as-disc"));

    let out = dir.path().join("out");
    for (name, layout, kind) in [
        ("tied-disc", "tied", "discriminator"),
        ("released-gen", "released", "generator"),
        ("finetuned-enc", "finetuned", "encoder"),
        ("tied-both/discriminator", "tied", "discriminator"),
        ("tied-both/generator", "tied", "generator"),
    ] {
        assert_same_tensors(
            &out.join(name).join("model.safetensors"),
            &expected(layout, kind).join("model.safetensors"),
        );
    }
    // No output and no leftover temporary directory for the broken job.
    assert_eq!(
        entries(&out),
        ["finetuned-enc", "released-gen", "tied-both", "tied-disc"]
            .map(String::from)
            .into()
    );

    let report = read_json(&report);
    assert_eq!(
        statuses(&report),
        [
            ("tied-disc", "ok"),
            ("bert-as-disc", "failed"),
            ("released-gen", "ok"),
            ("finetuned-enc", "ok"),
            ("tied-both", "ok"),
        ]
        .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    assert_eq!(report["ok"], 4);
    assert_eq!(report["failed"], 1);
    assert_eq!(report["skipped"], 0);
    assert_eq!(report["parity_failed"], 0);
    let broken = &report["jobs"][1];
    assert!(!broken["error"].as_str().unwrap().is_empty());
    assert!(report["jobs"][0]["error"].is_null());
    assert!(report["jobs"][0]["seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        report["jobs"][4]["directories"].as_array().unwrap().len(),
        2
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(
        xml.contains("<testsuite name=\"electra-convert batch\" tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"0\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 5);
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert!(xml.contains("<testcase classname=\"electra-convert.batch\" name=\"bert-as-disc\""));
    let failure_at = xml.find("<failure ").unwrap();
    let bert_at = xml.find("name=\"bert-as-disc\"").unwrap();
    let next_case = xml[bert_at..].find("</testcase>").unwrap() + bert_at;
    assert!(bert_at < failure_at && failure_at < next_case, "{xml}");
    // No temporary files beside the reports.
    assert_eq!(
        entries(&dir.path().join("reports")),
        ["junit.xml", "report.json"].map(String::from).into()
    );
}

#[test]
fn two_shards_cover_every_job_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("sweep.json");
    let jobs = [
        ("a", "tied", "encoder"),
        ("b", "released", "discriminator"),
        ("c", "untied", "discriminator"),
        ("d", "finetuned", "encoder"),
        ("e", "released", "encoder"),
    ];
    let json = serde_json::json!({
        "defaults": {"dtype": "f32"},
        "jobs": jobs.iter().map(|(name, layout, kind)| serde_json::json!({
            "name": name, "checkpoint": ckpt(layout), "model": kind, "output": format!("out/{name}")
        })).collect::<Vec<_>>(),
    });
    std::fs::write(&manifest, serde_json::to_string_pretty(&json).unwrap()).unwrap();

    let mut seen = Vec::new();
    for shard in ["1/2", "2/2"] {
        let report = dir.path().join(format!("report-{}.json", &shard[..1]));
        bin()
            .arg("batch")
            .arg(&manifest)
            .args(["--shard", shard, "--quiet", "--report"])
            .arg(&report)
            .assert()
            .success();
        let report = read_json(&report);
        assert_eq!(report["shard"], shard);
        assert_eq!(report["manifest_jobs"], 5);
        for (name, status) in statuses(&report) {
            assert_eq!(status, "ok", "{name}");
            seen.push((shard, name));
        }
    }
    // Round-robin: job k goes to shard (k mod 2) + 1.
    assert_eq!(
        seen,
        [
            ("1/2", "a"),
            ("1/2", "c"),
            ("1/2", "e"),
            ("2/2", "b"),
            ("2/2", "d")
        ]
        .map(|(s, n)| (s, n.to_string()))
    );
    for (name, layout, kind) in jobs {
        assert_same_tensors(
            &dir.path().join("out").join(name).join("model.safetensors"),
            &expected(layout, kind).join("model.safetensors"),
        );
    }
}

#[test]
fn relative_paths_resolve_against_the_manifest_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("sweep");
    let runs = sweep.join("runs/released");
    std::fs::create_dir_all(&runs).unwrap();
    for file in [
        "electra_tiny.index",
        "electra_tiny.data-00000-of-00001",
        "checkpoint",
    ] {
        std::fs::copy(fixtures().join("released").join(file), runs.join(file)).unwrap();
    }
    std::fs::write(
        sweep.join("m.toml"),
        "[[jobs]]\ncheckpoint = \"runs/released/electra_tiny\"\nmodel = \"discriminator\"\noutput = \"out/../out/disc\"\n",
    )
    .unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    // The plan shows the resolved paths and converts nothing.
    bin()
        .current_dir(elsewhere.path())
        .arg("batch")
        .arg(sweep.join("m.toml"))
        .arg("--dry-run")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "checkpoint: {}",
            runs.join("electra_tiny").display()
        )))
        .stdout(predicate::str::contains(format!(
            "output:     {}",
            sweep.join("out/disc").display()
        )));
    assert!(!sweep.join("out").exists());

    bin()
        .current_dir(elsewhere.path())
        .arg("batch")
        .arg(sweep.join("m.toml"))
        .arg("--quiet")
        .assert()
        .success();
    assert_same_tensors(
        &sweep.join("out/disc/model.safetensors"),
        &expected("released", "discriminator").join("model.safetensors"),
    );
    assert!(entries(elsewhere.path()).is_empty());
}

#[test]
fn fail_fast_with_one_worker_skips_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[jobs]]\nname = \"first\"\ncheckpoint = \"{r}\"\nmodel = \"encoder\"\noutput = \"o/first\"\n\
             [[jobs]]\nname = \"missing\"\ncheckpoint = \"nowhere/model.ckpt-9\"\nmodel = \"encoder\"\noutput = \"o/missing\"\n\
             [[jobs]]\nname = \"third\"\ncheckpoint = \"{r}\"\nmodel = \"encoder\"\noutput = \"o/third\"\n\
             [[jobs]]\nname = \"fourth\"\ncheckpoint = \"{r}\"\nmodel = \"discriminator\"\noutput = \"o/fourth\"\n",
            r = ckpt("released")
        ),
    )
    .unwrap();
    let report = dir.path().join("r.json");
    let junit = dir.path().join("j.xml");
    bin()
        .arg("batch")
        .arg(&manifest)
        .args(["--jobs", "1", "--fail-fast", "--quiet", "--report"])
        .arg(&report)
        .arg("--junit")
        .arg(&junit)
        .assert()
        .code(1);
    let report = read_json(&report);
    assert_eq!(
        statuses(&report),
        [
            ("first", "ok"),
            ("missing", "failed"),
            ("third", "skipped"),
            ("fourth", "skipped")
        ]
        .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    assert_eq!(report["skipped"], 2);
    assert!(report["jobs"][1]["error"]
        .as_str()
        .unwrap()
        .contains("nowhere"));
    assert_eq!(entries(&dir.path().join("o")), ["first".to_string()].into());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<skipped ").count(), 2);
    assert!(xml.contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\""));
}

#[test]
fn an_existing_output_fails_only_its_job_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.toml");
    std::fs::write(
        &manifest,
        format!(
            "[defaults]\ncheckpoint = \"{r}\"\n\
             [[jobs]]\nname = \"taken\"\nmodel = \"encoder\"\noutput = \"o/taken\"\n\
             [[jobs]]\nname = \"free\"\nmodel = \"discriminator\"\noutput = \"o/free\"\n",
            r = ckpt("released")
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("o/taken")).unwrap();
    std::fs::write(dir.path().join("o/taken/keep.txt"), "mine").unwrap();
    let report = dir.path().join("r.json");
    bin()
        .arg("batch")
        .arg(&manifest)
        .args(["--quiet", "--report"])
        .arg(&report)
        .assert()
        .code(1);
    assert_eq!(
        statuses(&read_json(&report)),
        [("taken", "failed"), ("free", "ok")].map(|(n, s)| (n.to_string(), s.to_string()))
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o/taken/keep.txt")).unwrap(),
        "mine"
    );

    bin()
        .arg("batch")
        .arg(&manifest)
        .args(["--quiet", "--force", "--report"])
        .arg(&report)
        .assert()
        .success();
    assert_eq!(read_json(&report)["ok"], 2);
    assert_same_tensors(
        &dir.path().join("o/taken/model.safetensors"),
        &expected("released", "encoder").join("model.safetensors"),
    );
}

#[test]
fn dry_run_prints_the_plan_and_converts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("m.json");
    std::fs::write(
        &manifest,
        serde_json::json!({
            "defaults": {"verify": true, "atol": 0.001},
            "jobs": [
                {"name": "one", "checkpoint": ckpt("tied"), "model": "both", "output": "o/one", "dtype": "bf16"},
                {"name": "two", "checkpoint": ckpt("released"), "model": "generator", "output": "o/two", "num_heads": 1},
                {"name": "three", "checkpoint": ckpt("untied"), "model": "encoder", "output": "o/three", "uncased": true},
            ]
        })
        .to_string(),
    )
    .unwrap();
    let report = dir.path().join("r.json");
    bin()
        .arg("batch")
        .arg(&manifest)
        .args(["--dry-run", "--shard", "1/2", "--report"])
        .arg(&report)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "3 job(s); shard 1/2 runs 2 of them",
        ))
        .stdout(predicate::str::contains("jobs[0] \"one\" (shard 1/2)"))
        .stdout(predicate::str::contains("model:      both"))
        .stdout(predicate::str::contains("dtype=bf16"))
        .stdout(predicate::str::contains("atol=0.001"))
        .stdout(predicate::str::contains("jobs[2] \"three\" (shard 1/2)"))
        .stdout(predicate::str::contains("uncased=true"))
        .stdout(predicate::str::contains("\"two\"").not())
        .stdout(predicate::str::contains("nothing was converted"));
    assert!(!dir.path().join("o").exists());
    assert!(!report.exists());
}

#[test]
fn manifest_errors_name_the_job_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown.toml",
            "[[jobs]]\nname = \"a\"\ncheckpoint = \"c\"\nmodel = \"encoder\"\noutput = \"o\"\n\
             [[jobs]]\nname = \"b\"\ncheckpoint = \"c\"\nmodel = \"encoder\"\noutput = \"p\"\nrefrence = \"r\"\n",
            "unknown key `refrence` in jobs[1] \"b\" (did you mean `reference`?)",
        ),
        (
            "unknown.json",
            r#"{"jobs": [{"checkpoint": "c", "model": "encoder", "output": "o", "threads": 2}]}"#,
            "unknown key `threads` in jobs[0]",
        ),
        (
            "missing.toml",
            "[[jobs]]\nname = \"nomodel\"\ncheckpoint = \"c\"\noutput = \"o\"\n",
            "jobs[0] \"nomodel\" has no `model`",
        ),
        (
            "dup.toml",
            "[defaults]\noutput = \"same\"\ncheckpoint = \"c\"\nmodel = \"encoder\"\n\
             [[jobs]]\nname = \"x\"\n[[jobs]]\nname = \"y\"\n",
            "jobs[0] \"x\" and jobs[1] \"y\" both write to",
        ),
        ("empty.json", r#"{"jobs": []}"#, "lists no jobs"),
        ("broken.json", r#"{"jobs": [}"#, "is not valid JSON"),
    ];
    for (file, body, needle) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, body).unwrap();
        bin()
            .arg("batch")
            .arg(&path)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(needle));
    }
    let ok = dir.path().join("ok.toml");
    std::fs::write(
        &ok,
        "[[jobs]]\ncheckpoint = \"c\"\nmodel = \"encoder\"\noutput = \"o\"\n",
    )
    .unwrap();
    for shard in ["0/2", "3/2", "1/0", "two"] {
        bin()
            .arg("batch")
            .arg(&ok)
            .args(["--shard", shard, "--dry-run"])
            .assert()
            .code(1)
            .stderr(predicate::str::contains("invalid --shard"));
    }
    // A shard with no jobs is not an error: N may exceed the job count.
    bin()
        .arg("batch")
        .arg(&ok)
        .args(["--shard", "2/3", "--quiet"])
        .assert()
        .success();
    assert!(!dir.path().join("o").exists());
}

/// A missing manifest names the OS error once (it is not repeated by the error chain).
#[test]
fn missing_manifest_reports_the_os_error_once() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("sweep.toml");
    let out = Command::cargo_bin("electra-convert")
        .unwrap()
        .arg("batch")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read manifest"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

/// `--report DIR` (a directory) is refused before any job runs, not after the whole sweep.
#[test]
fn report_path_that_is_a_directory_is_refused_before_converting() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("sweep.toml");
    std::fs::write(
        &manifest,
        format!(
            "[[jobs]]\ncheckpoint = {:?}\nmodel = \"discriminator\"\noutput = \"out/a\"\n",
            ckpt("tied")
        ),
    )
    .unwrap();
    for flag in ["--report", "--junit"] {
        bin()
            .arg("batch")
            .arg(&manifest)
            .arg(flag)
            .arg(tmp.path())
            .assert()
            .code(1)
            .stdout("")
            .stderr(predicate::str::contains("is a directory; pass a file path"));
        assert!(!tmp.path().join("out").exists(), "{flag}: a job ran");
    }
}
