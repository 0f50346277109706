//! Checkpoints in buckets, end to end through the binary, against real servers on loopback:
//! moto (`s3://`, and `https://` through its path-style URLs), fake-gcs-server (`gs://`) and
//! Azurite (`az://`), started by the tests on free ports from the
//! binaries `scripts/test-servers.sh env` names (skipped with a message when unset, failing under
//! `CI`), faults injected by a small proxy of our own.

mod proxy;
mod schemes;
mod servers;
mod uploads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proxy::{Action, Proxy, Rule};
use servers::{gcs_bucket, gcs_put, moto_bucket, moto_put, Kind, Server};

const FILES: [&str; 4] = [
    "checkpoint",
    "model.ckpt-1000.index",
    "model.ckpt-1000.data-00000-of-00001",
    "vocab.txt",
];
const DATA: &str = "model.ckpt-1000.data-00000-of-00001";

fn tied() -> PathBuf {
    crate::repo_root().join("fixtures/electra/tied")
}

/// The binary with a hermetic environment: no credentials of the machine, metadata endpoints on a
/// closed loopback port, nothing from `$HOME`.
fn hermetic() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("electra-convert"));
    for (k, _) in std::env::vars() {
        if ["AWS_", "GOOGLE_", "AZURE_", "STORAGE_EMULATOR", "GCE_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            c.env_remove(&k);
        }
    }
    c.env("HOME", "/nonexistent-home")
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .env("GCE_METADATA_IP", "127.0.0.1:9")
        .env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:9")
        .env("AZURE_MSI_ENDPOINT", "http://127.0.0.1:9/metadata");
    c
}

/// [`hermetic`] as an `assert_cmd` command, bounded in time.
fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::from_std(hermetic());
    c.timeout(Duration::from_secs(240));
    c
}

fn s3_env(c: &mut assert_cmd::Command, endpoint: &str) {
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
}

/// moto with the tied fixture under `s3://ckpts/runs/tied/`.
fn moto_with_tied() -> Option<Server> {
    let s = Server::start(Kind::Moto)?;
    moto_bucket(s.port, "ckpts");
    for f in FILES {
        moto_put(
            s.port,
            "ckpts",
            &format!("runs/tied/{f}"),
            &std::fs::read(tied().join(f)).unwrap(),
        );
    }
    Some(s)
}

/// fake-gcs-server with the tied fixture under `gs://bucket/prefix/`.
fn gcs_with_tied(bucket: &str, prefix: &str) -> Option<Server> {
    let s = Server::start(Kind::Gcs)?;
    gcs_bucket(s.port, bucket);
    for f in FILES {
        gcs_put(
            s.port,
            bucket,
            &format!("{prefix}/{f}"),
            &std::fs::read(tied().join(f)).unwrap(),
        );
    }
    Some(s)
}

/// The local conversion every bucket conversion must equal.
fn local(out: &Path, kind: &str) {
    crate::cli()
        .args(["--model", kind, "--quiet"])
        .arg(tied())
        .arg("-o")
        .arg(out)
        .assert()
        .success();
}

/// Every file but the model card (which names the input) is byte-identical.
fn assert_same_dir(got: &Path, want: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(want)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut got_names: Vec<String> = std::fs::read_dir(got)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got_names.sort();
    assert_eq!(got_names, names);
    for n in names.iter().filter(|n| *n != "README.md") {
        assert!(
            std::fs::read(got.join(n)).unwrap() == std::fs::read(want.join(n)).unwrap(),
            "{n} differs"
        );
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn s3_convert_inspect_map_and_verify() {
    let Some(s3) = moto_with_tied() else { return };
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");

    // A directory: resolved through its `checkpoint` state file.
    let got = tmp.path().join("got");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["--model", "discriminator", "--quiet", "--json", "--verify"])
        .arg("s3://ckpts/runs/tied")
        .arg("-o")
        .arg(&got)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_dir(&got, &tmp.path().join("want"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fetched = &json["fetched"];
    let total = fetched["checkpoint_bytes"].as_u64().unwrap();
    let bytes = fetched["bytes_fetched"].as_u64().unwrap();
    assert!(fetched["requests"].as_u64().unwrap() > 0, "{json}");
    assert!(bytes > 0 && bytes < total, "{json}");
    assert!(json["outputs"][0]["verify"][0]["passed"].as_bool().unwrap());

    // --verify reads the local copy: the same bytes and requests as without it.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let plain = c
        .args(["--model", "discriminator", "--quiet", "--json"])
        .arg("s3://ckpts/runs/tied")
        .arg("-o")
        .arg(tmp.path().join("no-verify"))
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", stderr_of(&plain));
    let plain: serde_json::Value = serde_json::from_slice(&plain.stdout).unwrap();
    assert_eq!(plain["fetched"], json["fetched"]);

    // The prefix, and --model both (the union of the towers, fetched once).
    let both = tmp.path().join("both");
    local(&tmp.path().join("want-both"), "both");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    c.args(["--model", "both", "--quiet"])
        .arg("s3://ckpts/runs/tied/model.ckpt-1000")
        .arg("-o")
        .arg(&both)
        .assert()
        .success();
    for sub in ["discriminator", "generator"] {
        assert_same_dir(&both.join(sub), &tmp.path().join("want-both").join(sub));
    }

    // inspect and map read the index only, and name the URL.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["inspect", "s3://ckpts/runs/tied/model.ckpt-1000.index"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("s3://ckpts/runs/tied/model.ckpt-1000"),
        "{text}"
    );
    assert!(text.contains("\nfetched: "), "{text}");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args([
            "map",
            "--model",
            "discriminator",
            "s3://ckpts/runs/tied",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let map: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // map reads the index (and the step counter), never the tensors.
    let index = std::fs::metadata(tied().join("model.ckpt-1000.index"))
        .unwrap()
        .len();
    let map_bytes = map["fetched"]["bytes_fetched"].as_u64().unwrap();
    assert!(
        map_bytes >= index && map_bytes < index + 4096,
        "{map_bytes}: {map}"
    );

    // verify --checkpoint from the bucket: every model variable, never an optimizer slot.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .arg("verify")
        .arg(&got)
        .args(["--checkpoint", "s3://ckpts/runs/tied", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["against"], "s3://ckpts/runs/tied/model.ckpt-1000");
    // The check fetches the tower it checks, as the conversion of that tower did: the same
    // tensor bytes (neither the generator nor the optimizer slots).
    assert_eq!(
        report["fetched"]["bytes_needed"], json["fetched"]["bytes_needed"],
        "{report}\n{json}"
    );
}

#[test]
fn s3_missing_bucket_key_and_state_file_name_what_is_missing() {
    let Some(s3) = moto_with_tied() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (url, want) in [
        ("s3://nobucket/runs/tied", "nobucket"),
        (
            "s3://ckpts/runs/tied/model.ckpt-2000.index",
            "model.ckpt-2000.index",
        ),
        ("s3://ckpts/runs/empty", "s3://ckpts/runs/empty"),
    ] {
        let out_dir = tmp.path().join("out");
        let mut c = bin();
        s3_env(&mut c, &s3.endpoint());
        let out = c
            .args(["--model", "discriminator", "--quiet", url, "-o"])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains(want), "{url}: {}", stderr_of(&out));
        assert!(!out_dir.exists());
    }
}

#[test]
fn gs_convert_is_byte_identical() {
    let Some(gcs) = gcs_with_tied("tpu-runs", "electra") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "generator");
    let got = tmp.path().join("got");
    bin()
        .env("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port))
        .args(["--model", "generator", "--quiet"])
        .arg("gs://tpu-runs/electra/")
        .arg("-o")
        .arg(&got)
        .assert()
        .success();
    assert_same_dir(&got, &tmp.path().join("want"));
}

#[test]
fn faults_5xx_retried_truncation_and_replacement_fail_named() {
    let Some(s3) = moto_with_tied() else { return };
    let proxy = Proxy::start(s3.port);
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");
    let run_via = |proxy: &Proxy, out: &Path| {
        let mut c = bin();
        s3_env(&mut c, &proxy.endpoint());
        c.args(["--model", "discriminator", "--quiet"])
            .arg("s3://ckpts/runs/tied")
            .arg("-o")
            .arg(out)
            .output()
            .unwrap()
    };
    let run = |out: &Path| run_via(&proxy, out);

    // 5xx and throttling on data reads: retried, the result exact.
    proxy.add_rule(Rule::new(Some("GET"), DATA, Some(1), Action::Status(503)));
    proxy.add_rule(Rule::new(Some("GET"), DATA, Some(2), Action::Status(500)));
    proxy.add_rule(Rule::new(Some("GET"), DATA, Some(3), Action::Status(429)));
    let got = tmp.path().join("retried");
    let out = run(&got);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_dir(&got, &tmp.path().join("want"));
    let injected = proxy
        .log()
        .iter()
        .filter(|l| l.contains("injected"))
        .count();
    assert_eq!(injected, 3, "{:#?}", proxy.log());
    // With credentials every request is signed (the marker `--anonymous` is checked against).
    assert!(
        proxy.log().iter().all(|l| l.ends_with("(signed)")),
        "{:#?}",
        proxy.log()
    );

    // Connections dropped mid-body: resumed (by object_store when the body has an ETag, by our
    // own piece retry when not), the result exact.
    proxy.clear_rules();
    proxy.add_rule(Rule::new(Some("GET"), DATA, Some(1), Action::DropMidBody));
    proxy.add_rule(Rule::new(
        Some("GET"),
        DATA,
        Some(2),
        Action::DropMidBodyNoEtag,
    ));
    proxy.clear_log();
    let got = tmp.path().join("dropped");
    let out = run(&got);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_dir(&got, &tmp.path().join("want"));
    let drops = proxy
        .log()
        .iter()
        .filter(|l| l.contains("dropped mid-body"))
        .count();
    assert_eq!(drops, 2, "{:#?}", proxy.log());

    // Every data body cut short: exit 1 naming the truncation, nothing left behind.
    proxy.clear_rules();
    proxy.add_rule(Rule::new(Some("GET"), DATA, None, Action::Truncate));
    let got = tmp.path().join("truncated");
    let out = run(&got);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("truncated"), "{}", stderr_of(&out));
    assert!(!got.exists());
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "staging left behind"
    );

    // The data shard replaced after the index was read (a live training job): named as such.
    // Through a fresh proxy: a request of the truncated run still in flight at the old one must
    // not fire the replacement before this run has even resolved the checkpoint (then the run
    // reads the new data against the old index, a CRC mismatch; seen under load).
    let proxy = Proxy::start(s3.port);
    let port = s3.port;
    proxy.add_rule(
        Rule::new(Some("GET"), DATA, Some(1), Action::Status(503)).with_hook(move || {
            let mut other = std::fs::read(tied().join(DATA)).unwrap();
            other[0] ^= 0xff;
            moto_put(port, "ckpts", &format!("runs/tied/{DATA}"), &other)
        }),
    );
    let got = tmp.path().join("replaced");
    let out = run_via(&proxy, &got);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("changed while being read") && stderr_of(&out).contains(DATA),
        "{}\n{:#?}",
        stderr_of(&out),
        proxy.log()
    );
    assert!(!got.exists());
}

#[test]
fn no_credentials_fails_within_seconds_naming_what_was_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    for (url, env) in [
        ("s3://some-bucket/run", None),
        ("gs://some-bucket/run", None),
        (
            "az://some-container/run",
            Some(("AZURE_STORAGE_ACCOUNT_NAME", "someaccount")),
        ),
    ] {
        let t = Instant::now();
        let mut c = bin();
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        let out = c
            .args(["--model", "discriminator", "--quiet", url, "-o"])
            .arg(tmp.path().join("out"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{url}: {}", stderr_of(&out));
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        let err = stderr_of(&out);
        assert!(err.contains("no credentials"), "{url}: {err}");
        assert!(err.contains("--anonymous"), "{url}: {err}");
    }
}

#[test]
fn inspect_lists_once_and_reads_the_state_file_once() {
    let Some(s3) = moto_with_tied() else { return };
    let proxy = Proxy::start(s3.port);
    let mut c = bin();
    s3_env(&mut c, &proxy.endpoint());
    let out = c
        .args(["inspect", "s3://ckpts/runs/tied"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let log = proxy.log();
    let count = |what: &dyn Fn(&str) -> bool| log.iter().filter(|l| what(l)).count();
    // One listing (the directory, which finds the data shards and the side files present).
    assert_eq!(count(&|l| l.contains("list-type=2")), 1, "{log:#?}");
    // The state file and the index fetched once each; no probe of a side file that is absent.
    assert_eq!(
        count(&|l| l.starts_with("GET /ckpts/runs/tied/checkpoint ")),
        1,
        "{log:#?}"
    );
    assert_eq!(
        count(&|l| l.starts_with("GET /ckpts/runs/tied/model.ckpt-1000.index ")),
        1,
        "{log:#?}"
    );
    assert_eq!(count(&|l| l.contains("params.yaml")), 0, "{log:#?}");
    // No tensor data: the data shard is only HEADed (tied has no object graph, and its
    // global_step is fetched by a ranged GET of a few bytes).
    let data_gets: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(&format!("GET /ckpts/runs/tied/{DATA}")))
        .collect();
    assert!(data_gets.len() <= 1, "{log:#?}");
}

#[test]
fn an_interrupted_bucket_conversion_leaves_no_fetched_ranges_behind() {
    let Some(s3) = moto_with_tied() else { return };
    let proxy = Proxy::start(s3.port);
    // Slow enough that the fetch is still running when the signal comes.
    proxy.set_rate(20_000);
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).unwrap();
    let mut child = hermetic()
        .env("TMPDIR", &scratch)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .args([
            "--model",
            "discriminator",
            "--quiet",
            "s3://ckpts/runs/tied",
            "-o",
        ])
        .arg(tmp.path().join("out"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the fetch has begun: the scratch directory holds a shard file.
    let t0 = Instant::now();
    let started = loop {
        let shards = std::fs::read_dir(&scratch)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                e.path()
                    .join("shards")
                    .read_dir()
                    .is_ok_and(|mut d| d.next().is_some())
            });
        if shards {
            break true;
        }
        if t0.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(started, "the fetch never started");
    std::thread::sleep(Duration::from_millis(200));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(128 + 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!tmp.path().join("out").exists());
}
