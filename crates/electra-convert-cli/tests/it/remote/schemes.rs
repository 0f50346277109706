//! The other ways in: `az://` against Azurite, `https://` (a public object on a web server
//! that honours Range; moto's path-style URLs serve as one), `gs://` with `--anonymous`, and
//! `export --checkpoint` from a bucket.

use electra_convert::source::remote::{upload_dir, Env, Remote, RemoteUrl, StoreOptions};

use super::servers::{azurite_container, gcs_bucket, gcs_put, Kind, Server};
use super::{assert_same_dir, bin, local, moto_with_tied, s3_env, stderr_of, tied, FILES};

fn azurite_env(port: u16) -> [(&'static str, String); 2] {
    [
        ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
        (
            "AZURITE_BLOB_STORAGE_URL",
            format!("http://127.0.0.1:{port}"),
        ),
    ]
}

#[test]
fn az_convert_is_byte_identical_and_uploads_back() {
    let Some(az) = Server::start(Kind::Azurite) else {
        return;
    };
    azurite_container(az.port, "ckpts");
    // The checkpoint goes up through the library's own upload (block blobs).
    let run_dir = tempfile::tempdir().unwrap();
    for f in FILES {
        std::fs::copy(tied().join(f), run_dir.path().join(f)).unwrap();
    }
    let options = StoreOptions {
        env: Env::from_pairs(azurite_env(az.port)),
        ..StoreOptions::default()
    };
    let dest = RemoteUrl::parse("az://ckpts/runs/tied").unwrap();
    let remote = Remote::connect(&dest, &options).unwrap();
    upload_dir(&remote, run_dir.path(), &dest, &Default::default()).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");
    let got = tmp.path().join("got");
    let mut c = bin();
    c.envs(azurite_env(az.port))
        .args(["--model", "discriminator", "--quiet", "--verify"])
        .arg("az://ckpts/runs/tied")
        .arg("-o")
        .arg(&got);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_dir(&got, &tmp.path().join("want"));

    // And the converted directory into the same container.
    let mut c = bin();
    c.envs(azurite_env(az.port))
        .args(["--model", "discriminator", "--quiet"])
        .arg("az://ckpts/runs/tied")
        .args(["-o", "az://ckpts/hf/disc"]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    for f in ["config.json", "model.safetensors", "vocab.txt"] {
        let url = RemoteUrl::parse(&format!("az://ckpts/hf/disc/{f}")).unwrap();
        let (_, bytes) =
            electra_convert::source::remote::RemoteObject::read_all(&remote, &url, 1 << 30)
                .unwrap();
        assert!(
            bytes == std::fs::read(tmp.path().join("want").join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn https_public_object_converts_without_credentials_or_listing() {
    let Some(gcs) = super::gcs_with_tied("electra-data", "runs/tied") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "generator");
    // fake-gcs-server serves public objects at http://HOST/BUCKET/KEY, as storage.googleapis.com
    // does. A web server has no listing: the prefix (or its .index) is named, the shard count
    // comes from the index, and the `checkpoint` state file resolves a "directory".
    let base = format!("http://127.0.0.1:{}/electra-data/runs/tied", gcs.port);
    for (i, url) in [
        format!("{base}/model.ckpt-1000"),
        format!("{base}/model.ckpt-1000.index"),
        format!("{base}/"),
    ]
    .iter()
    .enumerate()
    {
        let got = tmp.path().join(format!("got{i}"));
        let out = bin()
            .args(["--model", "generator", "--quiet", "--json"])
            .arg(url)
            .arg("-o")
            .arg(&got)
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", stderr_of(&out));
        assert_same_dir(&got, &tmp.path().join("want"));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let f = &json["fetched"];
        assert!(
            f["bytes_fetched"].as_u64().unwrap() < f["checkpoint_bytes"].as_u64().unwrap(),
            "{json}"
        );
    }
}

#[test]
fn gs_anonymous_reads_a_public_bucket() {
    let Some(gcs) = super::gcs_with_tied("public-electra", "small") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");
    let got = tmp.path().join("got");
    // No credentials of any kind: --anonymous sends unsigned requests.
    let out = bin()
        .env("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port))
        .args(["--model", "discriminator", "--quiet", "--anonymous"])
        .arg("gs://public-electra/small")
        .arg("-o")
        .arg(&got)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_dir(&got, &tmp.path().join("want"));
    let out = bin()
        .env("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port))
        .args(["inspect", "--anonymous", "gs://public-electra/small"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
}

#[test]
fn s3_anonymous_sends_no_credentials_and_reads_public_objects() {
    let Some(s3) = Server::start(Kind::Moto) else {
        return;
    };
    super::servers::moto_bucket(s3.port, "open-data");
    for f in FILES {
        super::servers::moto_put_public(
            s3.port,
            "open-data",
            &format!("electra/{f}"),
            &std::fs::read(tied().join(f)).unwrap(),
        );
    }
    let proxy = super::proxy::Proxy::start(s3.port);
    let tmp = tempfile::tempdir().unwrap();
    local(&tmp.path().join("want"), "discriminator");
    let got = tmp.path().join("got");
    // No credentials at all: only the endpoint.
    let out = bin()
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .args(["--model", "discriminator", "--quiet", "--anonymous"])
        .arg("s3://open-data/electra/model.ckpt-1000")
        .arg("-o")
        .arg(&got)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_same_dir(&got, &tmp.path().join("want"));
    let log = proxy.log();
    assert!(!log.is_empty());
    assert!(log.iter().all(|l| !l.ends_with("(signed)")), "{log:#?}");
}

#[test]
fn export_checkpoint_from_a_bucket_equals_the_local_export() {
    let Some(s3) = moto_with_tied() else { return };
    let tmp = tempfile::tempdir().unwrap();
    crate::cli()
        .args(["export", "--quiet", "--checkpoint"])
        .arg(tied())
        .arg("-o")
        .arg(tmp.path().join("want/model.ckpt-1000"))
        .assert()
        .success();
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args([
            "export",
            "--quiet",
            "--json",
            "--checkpoint",
            "s3://ckpts/runs/tied/model.ckpt-1000.index",
        ])
        .arg("-o")
        .arg(tmp.path().join("got/model.ckpt-1000"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    // export --checkpoint copies every variable: it fetches the whole checkpoint.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &json["fetched"];
    assert!(
        f["bytes_fetched"].as_u64().unwrap() >= f["checkpoint_bytes"].as_u64().unwrap(),
        "{json}"
    );
    for f in [
        "checkpoint",
        "model.ckpt-1000.index",
        "model.ckpt-1000.data-00000-of-00001",
    ] {
        assert!(
            std::fs::read(tmp.path().join("got").join(f)).unwrap()
                == std::fs::read(tmp.path().join("want").join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn zip_archives_on_a_web_server_convert_like_the_local_zips() {
    let Some(gcs) = Server::start(Kind::Gcs) else {
        return;
    };
    gcs_bucket(gcs.port, "electra-data");
    let zips = crate::repo_root().join("fixtures/forms/zip");
    for z in [
        "electra_tiny.zip",
        "electra_tiny_stored.zip",
        "two_checkpoints.zip",
    ] {
        gcs_put(
            gcs.port,
            "electra-data",
            z,
            &std::fs::read(zips.join(z)).unwrap(),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    for (i, (name, selector)) in [
        ("electra_tiny_stored.zip", ""),
        ("electra_tiny.zip", ""),
        ("two_checkpoints.zip", "#b"),
    ]
    .into_iter()
    .enumerate()
    {
        let want = tmp.path().join(format!("want{i}"));
        crate::cli()
            .args(["--model", "discriminator", "--quiet"])
            .arg(format!("{}{selector}", zips.join(name).display()))
            .arg("-o")
            .arg(&want)
            .assert()
            .success();
        let url = format!(
            "http://127.0.0.1:{}/electra-data/{name}{selector}",
            gcs.port
        );
        let got = tmp.path().join(format!("got{i}"));
        let out = bin()
            .args(["--model", "discriminator", "--quiet", "--json"])
            .arg(&url)
            .arg("-o")
            .arg(&got)
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", stderr_of(&out));
        assert_same_dir(&got, &want);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let f = &json["fetched"];
        let size = std::fs::metadata(zips.join(name)).unwrap().len();
        assert_eq!(f["checkpoint_bytes"].as_u64().unwrap(), size, "{json}");
        let fetched = f["bytes_fetched"].as_u64().unwrap();
        if name == "electra_tiny_stored.zip" {
            // Stored: only the discriminator's ranges of the data entry (merged across gaps
            // under 64 KiB), so some of the generator's tensors are never fetched.
            assert!(fetched < size, "{fetched} of {size}: {json}");
        }
        if name == "two_checkpoints.zip" {
            // The other checkpoint's data entry (`a/`, deflated) is never fetched.
            assert!(fetched < size * 3 / 4, "{fetched} of {size}: {json}");
        }
    }

    // inspect reads the central directory, the index and the side files, not the data entry.
    let out = bin()
        .args(["inspect", "--json"])
        .arg(format!(
            "http://127.0.0.1:{}/electra-data/electra_tiny_stored.zip",
            gcs.port
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fetched = json["fetched"]["bytes_fetched"].as_u64().unwrap();
    assert!(fetched < 200_000, "{fetched}: {json}");
}

#[test]
fn transformers_tf_uploads_by_url_convert_like_the_local_ones() {
    let Some(gcs) = Server::start(Kind::Gcs) else {
        return;
    };
    gcs_bucket(gcs.port, "hub");
    let forms = crate::repo_root().join("fixtures/forms");
    for dir in ["h5_disc", "h5_sharded"] {
        for e in std::fs::read_dir(forms.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                gcs_put(
                    gcs.port,
                    "hub",
                    &format!("{dir}/{name}"),
                    &std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    for (i, (dir, file)) in [
        ("h5_disc", "tf_model.h5"),
        ("h5_sharded", "tf_model.h5.index.json"),
    ]
    .into_iter()
    .enumerate()
    {
        let want = tmp.path().join(format!("want{i}"));
        crate::cli()
            .args(["--model", "discriminator", "--quiet"])
            .arg(forms.join(dir).join(file))
            .arg("-o")
            .arg(&want)
            .assert()
            .success();
        let url = format!("http://127.0.0.1:{}/hub/{dir}/{file}", gcs.port);
        let got = tmp.path().join(format!("got{i}"));
        let out = bin()
            .args(["--model", "discriminator", "--quiet", "--json"])
            .arg(&url)
            .arg("-o")
            .arg(&got)
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", stderr_of(&out));
        assert_same_dir(&got, &want);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(json["fetched"]["requests"].as_u64().unwrap() > 0, "{json}");
    }
}

#[test]
fn export_into_a_bucket_puts_the_state_file_last_and_converts_back() {
    let Some(s3) = moto_with_tied() else { return };
    let tmp = tempfile::tempdir().unwrap();
    crate::cli()
        .args(["export", "--quiet", "--checkpoint"])
        .arg(tied())
        .arg("-o")
        .arg(tmp.path().join("want/model.ckpt-1000"))
        .assert()
        .success();
    // From the bucket, back into it (a TPU job resumes from gs://…/resume).
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args([
            "export",
            "--quiet",
            "--json",
            "--checkpoint",
            "s3://ckpts/runs/tied",
            "-o",
            "s3://ckpts/resume/model.ckpt-1000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["prefix"], "s3://ckpts/resume/model.ckpt-1000");
    let objects: Vec<&str> = json["uploaded"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(
        objects.last(),
        Some(&"s3://ckpts/resume/checkpoint"),
        "{objects:?}"
    );
    for f in [
        "checkpoint",
        "model.ckpt-1000.index",
        "model.ckpt-1000.data-00000-of-00001",
    ] {
        assert!(
            super::servers::moto_get(s3.port, "ckpts", &format!("resume/{f}"))
                == std::fs::read(tmp.path().join("want").join(f)).unwrap(),
            "{f} differs"
        );
    }

    // A second export there is refused without --force, before anything is read.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["export", "--quiet", "--checkpoint"])
        .arg(tmp.path().join("no-such-checkpoint"))
        .args(["-o", "s3://ckpts/resume/model.ckpt-1000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("not empty"), "{}", stderr_of(&out));
    // A directory URL without a prefix name is refused with what to write instead.
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    let out = c
        .args(["export", "--quiet", "--checkpoint"])
        .arg(tied())
        .args(["-o", "s3://ckpts/other/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("model.ckpt-0"),
        "{}",
        stderr_of(&out)
    );

    // The exported checkpoint in the bucket converts like the original (an export carries no
    // vocabulary: it is passed).
    local(&tmp.path().join("want-disc"), "discriminator");
    let got = tmp.path().join("got-disc");
    let mut c = bin();
    s3_env(&mut c, &s3.endpoint());
    c.args(["--model", "discriminator", "--quiet", "--vocab"])
        .arg(tied().join("vocab.txt"))
        .arg("s3://ckpts/resume")
        .arg("-o")
        .arg(&got)
        .assert()
        .success();
    assert_same_dir(&got, &tmp.path().join("want-disc"));
}
