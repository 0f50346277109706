//! Outputs in a bucket (`-o s3://…`, batch outputs), multipart uploads and their abort, the
//! `--cache-dir` reuse and batch manifests naming URLs, against moto on loopback.

use std::path::Path;

use electra_convert::source::remote::{
    upload_dir, Env, Remote, RemoteError, RemoteUrl, StoreOptions, UploadOptions,
};

use super::proxy::{Action, Proxy, Rule};
use super::servers::{moto_bucket, moto_get, moto_list, moto_multipart_uploads, Kind, Server};
use super::{assert_same_dir, bin, local, moto_with_tied, s3_env, stderr_of};

const MIB: usize = 1 << 20;

/// Every file of `want` (a local directory) is an object under `s3://bucket/prefix/` with the
/// same bytes, and there is nothing else.
fn assert_uploaded(port: u16, bucket: &str, prefix: &str, want: &Path) {
    let mut want_files = Vec::new();
    collect(want, want, &mut want_files);
    want_files.sort();
    let mut keys = moto_list(port, bucket, &format!("{prefix}/"));
    keys.sort();
    let expected: Vec<String> = want_files.iter().map(|f| format!("{prefix}/{f}")).collect();
    assert_eq!(keys, expected);
    for f in want_files.iter().filter(|f| !f.ends_with("README.md")) {
        let got = moto_get(port, bucket, &format!("{prefix}/{f}"));
        assert!(got == std::fs::read(want.join(f)).unwrap(), "{f} differs");
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn s3_output_uploads_the_directory_with_config_and_card_last_and_refuses_a_non_empty_one() {
    let Some(s3) = moto_with_tied() else { return };
    moto_bucket(s3.port, "models");
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");
    local(&tmp.path().join("want-both"), "both");

    // From the bucket, into the bucket.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["--model", "discriminator", "--quiet", "--json", "--verify"])
        .arg("s3://ckpts/runs/tied")
        .args(["-o", "s3://models/electra/disc"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["outputs"][0]["directory"], "s3://models/electra/disc");
    assert!(json["outputs"][0]["verify"][0]["passed"].as_bool().unwrap());
    let objects: Vec<&str> = json["uploaded"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    let n = objects.len();
    assert_eq!(
        &objects[n - 2..],
        [
            "s3://models/electra/disc/config.json",
            "s3://models/electra/disc/README.md"
        ],
        "{objects:?}"
    );
    assert_uploaded(s3.port, "models", "electra/disc", &tmp.path().join("want"));
    // The card of the uploaded directory carries the parity result, as a local one does.
    let card = moto_get(s3.port, "models", "electra/disc/README.md");
    assert!(
        String::from_utf8_lossy(&card).contains("passed"),
        "{}",
        String::from_utf8_lossy(&card)
    );

    // The destination is checked before anything else: a non-empty one is refused even
    // when the checkpoint does not exist, and nothing is uploaded.
    let before = moto_list(s3.port, "models", "electra/");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["--model", "discriminator", "--quiet"])
        .arg(tmp.path().join("no-such-checkpoint"))
        .args(["-o", "s3://models/electra/disc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(
        err.contains("s3://models/electra/disc") && err.contains("not empty"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(!err.contains("no-such-checkpoint"), "{err}");
    assert_eq!(moto_list(s3.port, "models", "electra/"), before);

    // --force writes into it (the card now names the local input); --model both puts each
    // tower under its own prefix.
    let card_before = moto_get(s3.port, "models", "electra/disc/README.md");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    c.args(["--model", "discriminator", "--quiet", "--force"])
        .arg(super::tied())
        .args(["-o", "s3://models/electra/disc"])
        .assert()
        .success();
    assert_uploaded(s3.port, "models", "electra/disc", &tmp.path().join("want"));
    assert!(moto_get(s3.port, "models", "electra/disc/README.md") != card_before);
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    c.args(["--model", "both", "--quiet"])
        .arg(super::tied())
        .args(["-o", "s3://models/electra/both/"])
        .assert()
        .success();
    assert_uploaded(
        s3.port,
        "models",
        "electra/both",
        &tmp.path().join("want-both"),
    );

    // Uploads need credentials: --anonymous is refused before converting.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["--model", "discriminator", "--quiet", "--anonymous"])
        .arg(super::tied())
        .args(["-o", "s3://models/electra/anon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("uploads need credentials"),
        "{}",
        stderr_of(&out)
    );
    assert!(moto_list(s3.port, "models", "electra/anon/").is_empty());
}

fn s3_options(endpoint: &str) -> StoreOptions {
    StoreOptions {
        env: Env::from_pairs([
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
        ]),
        ..StoreOptions::default()
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

#[test]
fn multipart_uploads_complete_and_a_failed_part_leaves_nothing_behind() {
    let Some(s3) = Server::start(Kind::Moto) else {
        return;
    };
    moto_bucket(s3.port, "uploads");
    let dir = tempfile::tempdir().unwrap();
    let big = pattern(11 * MIB + 17, 3);
    std::fs::write(dir.path().join("a-small.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &big).unwrap();
    std::fs::write(dir.path().join("config.json"), b"{\"x\":1}").unwrap();
    let opts = UploadOptions {
        multipart_threshold: MIB as u64,
        part_size: 5 * MIB,
        ..UploadOptions::default()
    };

    let dest = RemoteUrl::parse("s3://uploads/ok").unwrap();
    let remote = Remote::connect(&dest, &s3_options(&s3.endpoint())).unwrap();
    let stats = upload_dir(&remote, dir.path(), &dest, &opts).unwrap();
    assert_eq!(stats.multipart, 1);
    assert_eq!(stats.bytes, big.len() as u64 + 2 + 7);
    let names: Vec<String> = stats.objects.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        names,
        [
            "s3://uploads/ok/a-small.json",
            "s3://uploads/ok/model.safetensors",
            "s3://uploads/ok/config.json"
        ]
    );
    assert!(moto_get(s3.port, "uploads", "ok/model.safetensors") == big);
    assert!(moto_multipart_uploads(s3.port, "uploads").is_empty());

    // The second part of the weights is refused (not retryable): the multipart upload is
    // aborted, the small file already uploaded is deleted, config.json never goes up.
    let proxy = Proxy::start(s3.port);
    proxy.add_rule(Rule::new(
        Some("PUT"),
        "partNumber=2",
        None,
        Action::Status(403),
    ));
    let dest = RemoteUrl::parse("s3://uploads/failed").unwrap();
    let remote = Remote::connect(&dest, &s3_options(&proxy.endpoint())).unwrap();
    let err = upload_dir(&remote, dir.path(), &dest, &opts).unwrap_err();
    assert!(
        matches!(err, RemoteError::Store { .. } | RemoteError::Denied { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert!(moto_list(s3.port, "uploads", "failed/").is_empty());
    assert!(moto_multipart_uploads(s3.port, "uploads").is_empty());
}

#[test]
fn cache_dir_keeps_fetched_ranges_so_a_second_run_fetches_only_the_index() {
    let Some(s3) = moto_with_tied() else { return };
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");
    let cache = tmp.path().join("cache");
    let run = |out: &Path| -> serde_json::Value {
        let mut c = bin();
        s3_env(&mut c, &s3.endpoint());
        let o = c
            .args([
                "--model",
                "discriminator",
                "--quiet",
                "--json",
                "--cache-dir",
            ])
            .arg(&cache)
            .arg("s3://ckpts/runs/tied")
            .arg("-o")
            .arg(out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr_of(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["fetched"].clone()
    };
    let first = run(&tmp.path().join("first"));
    let second = run(&tmp.path().join("second"));
    assert_same_dir(&tmp.path().join("first"), &tmp.path().join("want"));
    assert_same_dir(&tmp.path().join("second"), &tmp.path().join("want"));
    let index = std::fs::metadata(super::tied().join("model.ckpt-1000.index"))
        .unwrap()
        .len();
    let data_first = first["bytes_fetched"].as_u64().unwrap();
    let data_second = second["bytes_fetched"].as_u64().unwrap();
    assert!(data_first > data_second, "{first} {second}");
    // The second run fetches the index and the side files again (they are small and are how
    // a replaced checkpoint is noticed), never a tensor byte.
    let side: u64 = ["checkpoint", "vocab.txt"]
        .iter()
        .map(|f| std::fs::metadata(super::tied().join(f)).unwrap().len())
        .sum();
    assert_eq!(data_second, index + side, "{second}");
    assert_eq!(first["bytes_needed"], second["bytes_needed"]);
    assert!(
        second["requests"].as_u64().unwrap() < first["requests"].as_u64().unwrap(),
        "{first} {second}"
    );
}

#[test]
fn batch_manifest_reads_and_writes_bucket_urls_and_reports_what_it_fetched() {
    let Some(s3) = moto_with_tied() else { return };
    moto_bucket(s3.port, "models");
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want-disc"), "discriminator");
    local(&tmp.path().join("want-gen"), "generator");
    let manifest = tmp.path().join("sweep.toml");
    std::fs::write(
        &manifest,
        r#"
[[jobs]]
name = "disc"
checkpoint = "s3://ckpts/runs/tied"
model = "discriminator"
output = "s3://models/sweep/disc"
verify = true

[[jobs]]
name = "gen"
checkpoint = "s3://ckpts/runs/tied/model.ckpt-1000"
model = "generator"
output = "out/gen"
"#,
    )
    .unwrap();
    let report = tmp.path().join("report.json");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["batch", "--quiet", "--jobs", "2"])
        .arg(&manifest)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("fetched from buckets:"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_uploaded(
        s3.port,
        "models",
        "sweep/disc",
        &tmp.path().join("want-disc"),
    );
    // A relative local output is joined onto the manifest's directory; the URLs never are.
    assert_same_dir(&tmp.path().join("out/gen"), &tmp.path().join("want-gen"));

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], 2, "{r}");
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs[0]["directories"][0], "s3://models/sweep/disc");
    assert_eq!(jobs[0]["uploaded"]["url"], "s3://models/sweep/disc");
    assert!(jobs[1]["uploaded"].is_null());
    let per_job: Vec<u64> = jobs
        .iter()
        .map(|j| j["fetched"]["bytes_fetched"].as_u64().unwrap())
        .collect();
    assert!(per_job.iter().all(|&b| b > 0), "{r}");
    assert_eq!(r["fetched"]["jobs"], 2);
    assert_eq!(
        r["fetched"]["bytes_fetched"].as_u64().unwrap(),
        per_job.iter().sum::<u64>()
    );
    let total = jobs[0]["fetched"]["checkpoint_bytes"].as_u64().unwrap();
    assert!(per_job.iter().all(|&b| b < total), "{r}");
}

#[test]
fn a_failed_parity_check_uploads_nothing_and_keeps_the_local_build() {
    let Some(s3) = Server::start(Kind::Moto) else {
        return;
    };
    moto_bucket(s3.port, "models");
    let tmp = tempfile::tempdir().unwrap();
    // A user config with the wrong LayerNorm ε: the conversion succeeds, the check does not.
    local(&tmp.path().join("good"), "discriminator");
    let config = tmp.path().join("config.json");
    let text = std::fs::read_to_string(tmp.path().join("good/config.json"))
        .unwrap()
        .replace("\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": 0.01");
    assert!(text.contains("0.01"));
    std::fs::write(&config, text).unwrap();
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .env("TMPDIR", tmp.path())
        .args(["--model", "discriminator", "--verify", "--config"])
        .arg(&config)
        .arg(super::tied())
        .args(["-o", "s3://models/bad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(moto_list(s3.port, "models", "").is_empty());
    let err = stderr_of(&out);
    let kept = err
        .split("the converted files are kept at ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no kept path in: {err}"));
    let kept = std::path::PathBuf::from(kept.trim());
    assert!(kept.starts_with(tmp.path()), "{err}");
    assert!(kept.join("model.safetensors").is_file(), "{err}");
}
