//! Tests of manifests, the scheduler and the reports.

use super::manifest::normalize;
use super::runner::lock;
use super::*;
use crate::{ModelKind, OutputDtype};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn toml(text: &str) -> Result<Manifest, BatchError> {
    parse_manifest(
        text,
        ManifestFormat::Toml,
        Path::new("sweep/m.toml"),
        Path::new("sweep"),
    )
}

fn json(text: &str) -> Result<Manifest, BatchError> {
    parse_manifest(
        text,
        ManifestFormat::Json,
        Path::new("sweep/m.json"),
        Path::new("sweep"),
    )
}

const FULL: &str = r#"
[defaults]
dtype = "f16"
verify = true
atol = 0.001

[[jobs]]
name = "small-disc"
checkpoint = "runs/small/model.ckpt-1000000"
model = "discriminator"
output = "out/small-disc"
config = "configs/small.json"
vocab = "/abs/vocab.txt"
reference = "refs/../refs/small.safetensors"
num_heads = 4
cased = true
strip_accents = false
rtol = 0
dtype = "bf16"

[[jobs]]
checkpoint = "runs/small/model.ckpt-1000000"
model = "generator"
output = "./out/small-gen"
verify = false
"#;

#[test]
fn full_toml_manifest_resolves_every_key() {
    let m = toml(FULL).unwrap();
    assert_eq!(m.jobs.len(), 2);
    let a = &m.jobs[0].options;
    assert_eq!(m.jobs[0].name, "small-disc");
    assert_eq!(
        a.checkpoint,
        PathBuf::from("sweep/runs/small/model.ckpt-1000000")
    );
    assert_eq!(a.model, ModelKind::Discriminator);
    assert_eq!(a.output, PathBuf::from("sweep/out/small-disc"));
    assert_eq!(a.dtype, OutputDtype::Bf16, "a job key overrides [defaults]");
    assert_eq!(a.config, Some(PathBuf::from("sweep/configs/small.json")));
    assert_eq!(a.vocab, Some(PathBuf::from("/abs/vocab.txt")));
    assert_eq!(
        a.reference,
        Some(PathBuf::from("sweep/refs/small.safetensors"))
    );
    assert_eq!(a.num_heads, Some(4));
    // `cased = true`; printing (quiet/json) is the batch command's, not a job option.
    assert!(a.lower_case == Some(false) && a.verify && !a.force);
    assert_eq!(a.strip_accents, Some(false));
    assert_eq!(m.jobs[1].options.strip_accents, None);
    assert_eq!(a.tolerance.atol, 0.001);
    assert_eq!(
        a.tolerance.rtol, 0.0,
        "an integer is accepted as a tolerance"
    );

    let b = &m.jobs[1];
    assert_eq!(
        b.name, "./out/small-gen",
        "name defaults to the output as written"
    );
    assert_eq!(
        b.options.dtype,
        OutputDtype::F16,
        "inherited from [defaults]"
    );
    assert!(!b.options.verify);
    assert_eq!(b.options.tolerance.atol, 0.001);
    assert_eq!(b.options.tolerance.rtol, 1e-4);
}

#[test]
fn json_manifest_matches_toml() {
    let m = json(
        r#"{"defaults": {"dtype": "f16"},
            "jobs": [{"name": "a", "checkpoint": "c", "model": "encoder", "output": "o"}]}"#,
    )
    .unwrap();
    assert_eq!(m.jobs[0].options.model, ModelKind::Encoder);
    assert_eq!(m.jobs[0].options.dtype, OutputDtype::F16);
    assert_eq!(m.jobs[0].options.output, PathBuf::from("sweep/o"));
    assert_eq!(m.jobs[0].options.checkpoint, PathBuf::from("sweep/c"));
}

#[test]
fn unknown_key_names_job_and_key() {
    let err = toml(
        "[[jobs]]\nname=\"ok\"\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o1\"\n\
         [[jobs]]\nname=\"second\"\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o2\"\ndtyp=\"f16\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`dtyp`"), "{err}");
    assert!(err.contains("jobs[1] \"second\""), "{err}");
    assert!(err.contains("did you mean `dtype`"), "{err}");

    let err = json(
        r#"{"jobs": [{"checkpoint": "c", "model": "encoder", "output": "o", "bogus_key": 1}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`bogus_key` in jobs[0]"), "{err}");

    let err = toml(
        "[defaults]\nverfy = true\n[[jobs]]\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`verfy` in [defaults]"), "{err}");

    let err = toml("[[job]]\ncheckpoint=\"c\"\n").unwrap_err().to_string();
    assert!(err.contains("`job` in the top level"), "{err}");
    assert!(err.contains("did you mean `jobs`"), "{err}");
}

#[test]
fn missing_required_keys_name_the_job() {
    let err = toml("[[jobs]]\nname=\"x\"\nmodel=\"encoder\"\noutput=\"o\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("jobs[0] \"x\" has no `checkpoint`"), "{err}");
    let err = toml("[[jobs]]\ncheckpoint=\"c\"\noutput=\"o\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("jobs[0] has no `model`"), "{err}");
    let err = toml("[[jobs]]\ncheckpoint=\"c\"\nmodel=\"both\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no `output`"), "{err}");
    // A default supplies a required key.
    let m = toml("[defaults]\ncheckpoint=\"c\"\n[[jobs]]\nmodel=\"both\"\noutput=\"o\"\n").unwrap();
    assert_eq!(m.jobs[0].options.checkpoint, PathBuf::from("sweep/c"));
}

#[test]
fn bad_values_are_explained() {
    let base = "[[jobs]]\nname=\"j\"\ncheckpoint=\"c\"\noutput=\"o\"\n";
    for (extra, needle) in [
        ("model=\"disc\"", "\"disc\" is not one of discriminator"),
        (
            "model=\"encoder\"\ndtype=\"f64\"",
            "\"f64\" is not one of f32",
        ),
        (
            "model=\"encoder\"\nverify=\"yes\"",
            "expected true or false",
        ),
        ("model=\"encoder\"\natol=-1", "finite number >= 0"),
        ("model=\"encoder\"\nnum_heads=0", "integer >= 1"),
        ("model=\"encoder\"\nnum_heads=1.5", "integer >= 1"),
        ("model=\"encoder\"\nvocab=3", "expected a string"),
        ("model=\"encoder\"\ncased=true\nuncased=true", "both true"),
    ] {
        let err = toml(&format!("{base}{extra}\n")).unwrap_err().to_string();
        assert!(err.contains("jobs[0] \"j\""), "{err}");
        assert!(err.contains(needle), "{extra}: {err}");
    }
}

#[test]
fn structural_errors() {
    let err = toml("").unwrap_err();
    assert!(matches!(err, BatchError::NoJobs { .. }), "{err}");
    let err = json(r#"{"jobs": []}"#).unwrap_err();
    assert!(matches!(err, BatchError::NoJobs { .. }), "{err}");
    let err = json(r#"[1]"#).unwrap_err().to_string();
    assert!(err.contains("top level must be"), "{err}");
    let err = json(r#"{"jobs": [3]}"#).unwrap_err().to_string();
    assert!(err.contains("jobs[0] must be a table"), "{err}");
    let err = json(r#"{"jobs": [{"model": "encoder"}"#).unwrap_err();
    assert!(
        matches!(err, BatchError::Syntax { format: "JSON", .. }),
        "{err}"
    );
    let err = toml("[defaults]\nname=\"x\"\n[[jobs]]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`name` cannot be a default"), "{err}");
}

#[test]
fn clobbering_outputs_are_rejected() {
    let job = |name: &str, out: &str| {
        format!("[[jobs]]\nname=\"{name}\"\ncheckpoint=\"c\"\nmodel=\"both\"\noutput=\"{out}\"\n")
    };
    let err = toml(&(job("a", "out/x") + &job("b", "out/y") + &job("c", "out/./z/../x")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("jobs[0] \"a\" and jobs[2] \"c\" both write to"),
        "{err}"
    );
    let err = toml(&(job("a", "out/x") + &job("b", "out/x/discriminator")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("inside the output of jobs[0] \"a\""), "{err}");
    let err = toml(&(job("a", "out/x") + &job("a", "out/y")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("both named \"a\""), "{err}");
    // Sibling names sharing a prefix are fine.
    toml(&(job("a", "out/x") + &job("b", "out/x2"))).unwrap();
}

#[test]
fn an_output_holding_another_jobs_checkpoint_is_rejected() {
    let manifest = "[[jobs]]\nname=\"first\"\ncheckpoint=\"runs/a/model.ckpt-1\"\nmodel=\"encoder\"\noutput=\"out/a\"\n\
                    [[jobs]]\nname=\"second\"\ncheckpoint=\"runs/b/model.ckpt-1\"\nmodel=\"encoder\"\noutput=\"runs\"\nforce=true\n";
    let err = toml(manifest).unwrap_err();
    assert!(matches!(err, BatchError::OutputHoldsInput { .. }), "{err}");
    let err = err.to_string();
    assert!(
        err.contains("jobs[1] \"second\" writes to sweep/runs, which holds sweep/runs/a/model.ckpt-1, an input of jobs[0] \"first\""),
        "{err}"
    );
    // A job whose output merely shares a name prefix with an input directory is fine.
    toml(&manifest.replace("output=\"runs\"", "output=\"runs2\"")).unwrap();
}

#[test]
fn load_picks_format_by_extension_or_tries_both() {
    let dir = tempfile::tempdir().unwrap();
    let body_json = r#"{"jobs": [{"checkpoint": "c", "model": "encoder", "output": "o"}]}"#;
    let body_toml = "[[jobs]]\ncheckpoint = \"c\"\nmodel = \"encoder\"\noutput = \"o\"\n";
    for (file, body) in [
        ("a.json", body_json),
        ("a.toml", body_toml),
        ("a.JSON", body_json),
        ("noext", body_toml),
        ("noext2", body_json),
        ("m.manifest", body_toml),
    ] {
        let p = dir.path().join(file);
        std::fs::write(&p, body).unwrap();
        let m = load_manifest(&p).unwrap();
        assert_eq!(m.jobs[0].options.output, dir.path().join("o"), "{file}");
    }
    let p = dir.path().join("x.toml");
    std::fs::write(&p, body_json).unwrap();
    let err = load_manifest(&p).unwrap_err();
    assert!(
        matches!(err, BatchError::Syntax { format: "TOML", .. }),
        "{err}"
    );
    let p = dir.path().join("garbage.txt");
    std::fs::write(&p, "{{ not = either").unwrap();
    let err = load_manifest(&p).unwrap_err().to_string();
    assert!(
        err.contains("as TOML:") && err.contains("as JSON:"),
        "{err}"
    );
    let err = load_manifest(&dir.path().join("absent.toml")).unwrap_err();
    assert!(matches!(err, BatchError::ReadManifest { .. }), "{err}");
}

#[test]
fn manifest_in_current_directory_keeps_relative_paths() {
    let m = parse_manifest(
        "[[jobs]]\ncheckpoint=\"ck/p\"\nmodel=\"encoder\"\noutput=\"o\"\n",
        ManifestFormat::Toml,
        Path::new("m.toml"),
        Path::new(""),
    )
    .unwrap();
    assert_eq!(m.jobs[0].options.checkpoint, PathBuf::from("ck/p"));
    assert_eq!(normalize(Path::new("../a/./b/..")), PathBuf::from("../a"));
    assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
}

fn jobs(n: usize) -> Vec<Job> {
    let text: String = (0..n)
        .map(|i| {
            format!(
                "[[jobs]]\nname=\"j{i}\"\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o{i}\"\n"
            )
        })
        .collect();
    toml(&text).unwrap().jobs
}

#[test]
fn shard_parsing() {
    assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, total: 3 });
    assert_eq!(Shard::parse(" 1 / 1 ").unwrap().to_string(), "1/1");
    for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/", "-1/2", ""] {
        let err = Shard::parse(bad).unwrap_err().to_string();
        assert!(err.contains("--shard"), "{bad}: {err}");
    }
}

#[test]
fn shards_partition_the_jobs_round_robin() {
    let all = jobs(7);
    for total in 1..=9 {
        let mut seen = vec![0; all.len()];
        for index in 1..=total {
            let shard = Shard { index, total };
            let picked = shard.select(&all);
            for job in &picked {
                seen[job.index] += 1;
                assert_eq!(job.index % total, index - 1);
            }
            assert!(picked.windows(2).all(|w| w[0].index < w[1].index));
        }
        assert!(seen.iter().all(|&n| n == 1), "N={total}: {seen:?}");
    }
    let names: Vec<_> = Shard { index: 2, total: 3 }
        .select(&all)
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, ["j1", "j4"]);
}

fn fake_runner(job: &Job) -> Result<Converted, String> {
    match job.name.as_str() {
        "j1" => Err("broken checkpoint".to_string()),
        "j2" => panic!("boom in j2"),
        "j3" => Ok(Converted {
            verify: Some(VerifySummary {
                passed: false,
                failures: vec!["logits max_abs_diff 1 > 1e-4".into()],
                reports: vec![],
            }),
            ..Converted::default()
        }),
        _ => Ok(Converted {
            directories: vec![job.options.output.clone()],
            ..Converted::default()
        }),
    }
}

#[test]
fn scheduler_isolates_failures_and_panics() {
    let all = jobs(6);
    for workers in [1, 2, 4, 16] {
        let done = AtomicUsize::new(0);
        let records = run_jobs(&all, workers, false, fake_runner, |_| {
            done.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(done.load(Ordering::SeqCst), 6);
        let statuses: Vec<_> = records.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                JobStatus::Ok,
                JobStatus::Failed,
                JobStatus::Failed,
                JobStatus::ParityFailed,
                JobStatus::Ok,
                JobStatus::Ok
            ]
        );
        assert_eq!(records[1].error.as_deref(), Some("broken checkpoint"));
        assert!(records[2].error.as_ref().unwrap().contains("boom in j2"));
        assert!(records[3].error.as_ref().unwrap().contains("logits"));
        assert_eq!(
            Tally::of(&records),
            Tally {
                ok: 3,
                failed: 2,
                parity_failed: 1,
                skipped: 0
            }
        );
    }
}

#[test]
fn scheduler_runs_jobs_concurrently() {
    let all = jobs(4);
    let running = AtomicUsize::new(0);
    let peak = AtomicUsize::new(0);
    run_jobs(
        &all,
        4,
        false,
        |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(Converted::default())
        },
        |_| {},
    );
    assert!(peak.load(Ordering::SeqCst) > 1);
    let peak = AtomicUsize::new(0);
    run_jobs(
        &all,
        1,
        false,
        |_| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(Converted::default())
        },
        |_| {},
    );
    assert_eq!(peak.load(Ordering::SeqCst), 1);
}

#[test]
fn fail_fast_skips_jobs_not_started() {
    let all = jobs(6);
    let started = Mutex::new(Vec::new());
    let records = run_jobs(
        &all,
        1,
        true,
        |job| {
            lock(&started).push(job.index);
            fake_runner(job)
        },
        |_| {},
    );
    assert_eq!(*lock(&started), [0, 1]);
    let statuses: Vec<_> = records.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            JobStatus::Ok,
            JobStatus::Failed,
            JobStatus::Skipped,
            JobStatus::Skipped,
            JobStatus::Skipped,
            JobStatus::Skipped
        ]
    );
}

fn sample_records() -> (RunInfo, Vec<JobRecord>) {
    let all = jobs(4);
    let mut records = run_jobs(&all, 1, false, fake_runner, |_| {});
    records[1].error = Some("bad <tensor> \"x\" & 'y'\nline two\u{1}".into());
    records[2] = JobRecord::skipped(&all[2]);
    let info = RunInfo {
        manifest: PathBuf::from("m.toml"),
        shard: Some(Shard { index: 1, total: 1 }),
        manifest_jobs: 4,
        workers: 1,
        seconds: 1.5,
    };
    (info, records)
}

#[test]
fn json_report_shape() {
    let (info, records) = sample_records();
    let report = report_json(&info, &records);
    assert_eq!(report["ok"], 1);
    assert_eq!(report["failed"], 1);
    assert_eq!(report["parity_failed"], 1);
    assert_eq!(report["skipped"], 1);
    assert_eq!(report["total"], 4);
    assert_eq!(report["shard"], "1/1");
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["status"], "ok");
    assert_eq!(jobs[0]["error"], Value::Null);
    assert_eq!(jobs[1]["status"], "failed");
    assert_eq!(jobs[2]["status"], "skipped");
    assert_eq!(jobs[3]["status"], "parity_failed");
    assert_eq!(jobs[3]["verify"]["passed"], false);
    assert_eq!(jobs[0]["output"], "sweep/o0");
}

#[test]
fn junit_escapes_and_counts() {
    let (info, records) = sample_records();
    let xml = junit_xml(&info, &records);
    assert!(
        xml.contains("tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\""),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 4);
    assert_eq!(xml.matches("<failure ").count(), 2);
    assert_eq!(xml.matches("<skipped ").count(), 1);
    assert!(
        xml.contains(
            "message=\"bad &lt;tensor&gt; &quot;x&quot; &amp; &apos;y&apos;&#10;line two\u{FFFD}\""
        ),
        "{xml}"
    );
    assert!(xml.contains("classname=\"electra-convert.batch\" name=\"j0\""));
    assert!(!xml.contains('\u{1}'));
}

#[test]
fn atomic_write_replaces_and_creates_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/report.json");
    write_atomically(&path, b"one").unwrap();
    write_atomically(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["report.json"]);
}
