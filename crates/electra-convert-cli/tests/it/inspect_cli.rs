//! `electra-convert inspect` end to end.

use crate::checkpoint_support;

use assert_cmd::Command;
use checkpoint_support::*;
use predicates::prelude::*;
use serde_json::Value;

fn inspect(args: &[&std::ffi::OsStr]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("electra-convert")
        .unwrap()
        .arg("inspect")
        .args(args)
        .assert()
}

fn json_of(assert: assert_cmd::assert::Assert) -> Value {
    let out = assert.success().get_output().stdout.clone();
    serde_json::from_slice(&out).unwrap()
}

fn listing_of(doc: &Value) -> Vec<(String, String, Vec<u64>)> {
    doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["dtype"].as_str().unwrap().to_string(),
                t["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn is_hidden(name: &str) -> bool {
    name.ends_with("/adam_m") || name.ends_with("/adam_v") || name == "global_step"
}

#[test]
fn all_json_matches_tf_list_variables_on_every_fixture() {
    let mut dirs = fixture_dirs("format");
    dirs.extend(fixture_dirs("electra"));
    for dir in dirs {
        let doc = json_of(inspect(&[
            "--all".as_ref(),
            "--json".as_ref(),
            dir.as_os_str(),
        ]));
        assert_eq!(listing_of(&doc), tf_listing(&dir), "{dir:?}");
        assert_eq!(
            doc["checkpoint"].as_str().unwrap(),
            prefix_in(&dir).to_str().unwrap()
        );
    }
}

#[test]
fn default_json_hides_slots_and_reports_them() {
    let dir = fixtures().join("electra/tied");
    let tf = tf_listing(&dir);
    let doc = json_of(inspect(&["--json".as_ref(), dir.as_os_str()]));
    let visible: Vec<_> = tf.iter().filter(|t| !is_hidden(&t.0)).cloned().collect();
    assert_eq!(listing_of(&doc), visible);
    let slots = tf
        .iter()
        .filter(|t| t.0.ends_with("/adam_m") || t.0.ends_with("/adam_v"))
        .count();
    assert!(slots > 0);
    assert_eq!(
        doc["optimizer_slots"]["count"].as_u64().unwrap() as usize,
        slots
    );
    assert_eq!(doc["global_step"].as_i64(), Some(1000));
    // `released` has no slots; its step is still reported.
    let doc = json_of(inspect(&[
        "--json".as_ref(),
        fixtures().join("electra/released").as_os_str(),
    ]));
    assert_eq!(doc["optimizer_slots"]["count"].as_u64(), Some(0));
    assert_eq!(doc["global_step"].as_i64(), Some(1_000_000));
    // `bert` has no global_step.
    let doc = json_of(inspect(&[
        "--json".as_ref(),
        fixtures().join("electra/bert").as_os_str(),
    ]));
    assert!(doc["global_step"].is_null());
}

#[test]
fn default_table_summarises_slots_in_one_line() {
    let dir = fixtures().join("electra/tied");
    let tf = tf_listing(&dir);
    let slots = tf
        .iter()
        .filter(|t| t.0.ends_with("/adam_m") || t.0.ends_with("/adam_v"))
        .count();
    let out = inspect(&[dir.as_os_str()])
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("adam_m").count(), 1, "{text}");
    let summary: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("optimizer slots"))
        .collect();
    assert_eq!(summary.len(), 1);
    assert!(
        summary[0].contains(&format!("{slots} optimizer slots")),
        "{}",
        summary[0]
    );
    assert!(summary[0].contains("global_step = 1000"));
    for (name, _, _) in tf.iter().filter(|t| !is_hidden(&t.0)) {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing"
        );
    }
    // --all lists the slots and drops the summary.
    let out = inspect(&["--all".as_ref(), dir.as_os_str()])
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("/adam_m ").count(), slots / 2);
    assert!(!text.contains("optimizer slots"));
}

#[test]
fn safetensors_file_and_model_dir() {
    let dir = fixtures().join("electra/tied/expected/discriminator");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    for target in [dir.clone(), dir.join("model.safetensors")] {
        let doc = json_of(inspect(&["--json".as_ref(), target.as_os_str()]));
        let got: Vec<String> = doc["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, names);
        assert_eq!(doc["metadata"]["format"], "pt");
        let first = &doc["tensors"][0];
        let view = st.tensor(first["name"].as_str().unwrap()).unwrap();
        assert_eq!(first["shape"].as_array().unwrap().len(), view.shape().len());
    }
    inspect(&[dir.as_os_str()])
        .success()
        .stdout(predicate::str::contains("ElectraForPreTraining"))
        .stdout(predicate::str::contains("format=pt"));
}

#[test]
fn errors_exit_1_with_a_clear_message() {
    inspect(&["/definitely/not/here".as_ref()])
        .code(1)
        .stderr(predicate::str::contains("no such file or directory"));

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("model.safetensors");
    std::fs::write(&bad, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    inspect(&[bad.as_os_str()])
        .code(1)
        .stderr(predicate::str::contains("not a valid safetensors file"));

    // Two checkpoints, no state file.
    let two = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        for f in ["ckpt.index", "ckpt.data-00000-of-00001"] {
            let to = f.replacen("ckpt", name, 1);
            std::fs::copy(fixtures().join("format/tiny").join(f), two.path().join(to)).unwrap();
        }
    }
    inspect(&[two.path().as_os_str()])
        .code(1)
        .stderr(predicate::str::contains("several checkpoints"));

    // A flipped byte in the index.
    let copy = copy_fixture(&fixtures().join("format/basic"));
    let index = copy.path().join("ckpt.index");
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[10] ^= 0x01;
    std::fs::write(&index, bytes).unwrap();
    inspect(&[copy.path().join("ckpt").as_os_str()])
        .code(1)
        .stderr(predicate::str::contains("checksum mismatch"));

    // A missing shard.
    let copy = copy_fixture(&fixtures().join("format/multishard"));
    std::fs::remove_file(copy.path().join("ckpt.data-00001-of-00002")).unwrap();
    inspect(&[copy.path().as_os_str()])
        .code(1)
        .stderr(predicate::str::contains(
            "ckpt.data-00001-of-00002 is missing",
        ));
}

/// A `--model both` output directory (`DIR/discriminator`, `DIR/generator`) is listed model by
/// model instead of being refused as "no checkpoint".
#[test]
fn both_output_directory_lists_each_model() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = fixtures().join("electra/tied/expected");
    for kind in ["discriminator", "generator"] {
        std::fs::create_dir(tmp.path().join(kind)).unwrap();
        for f in ["model.safetensors", "config.json"] {
            std::fs::copy(expected.join(kind).join(f), tmp.path().join(kind).join(f)).unwrap();
        }
    }
    let doc = json_of(inspect(&["--json".as_ref(), tmp.path().as_os_str()]));
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(
        models[0]["config"]["architectures"][0],
        "ElectraForPreTraining"
    );
    assert_eq!(
        models[1]["config"]["architectures"][0],
        "ElectraForMaskedLM"
    );
    assert!(models[1]["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "generator_lm_head.bias"));
    inspect(&[tmp.path().as_os_str()])
        .success()
        .stdout(predicate::str::contains("holds 2 converted model(s)"))
        .stdout(predicate::str::contains("ElectraForPreTraining"))
        .stdout(predicate::str::contains("ElectraForMaskedLM"));
}

/// Regression: `electra-convert inspect CKPT | head` used to panic with "failed printing to
/// stdout: Broken pipe". Now a closed stdout ends the process quietly (SIGPIPE, as for `ls`).
#[cfg(target_os = "linux")]
#[test]
fn closed_stdout_ends_quietly_without_a_panic() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::process::ExitStatusExt;

    let mut fds = [0; 2];
    // SAFETY: a fresh pipe; both ends are owned below, the read end is closed at once, so the
    // child's first write to stdout meets a pipe nobody reads.
    let (read_end, write_end) = unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    };
    drop(read_end);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_electra-convert"))
        .args(["inspect", "--all"])
        .arg(fixtures().join("electra/tied/model.ckpt-1000"))
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}

/// Regression: `inspect` read `model.safetensors.index.json` itself and followed shard names
/// that leave the directory, which `verify` and `export` refuse. It now uses the same listing.
#[test]
fn a_shard_index_naming_a_file_outside_the_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    // A real weight file next to the directory, which the index tries to reach with `..`.
    std::fs::copy(
        fixtures().join("electra/released/expected/encoder/model.safetensors"),
        tmp.path().join("outside.safetensors"),
    )
    .unwrap();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        r#"{"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": "../outside.safetensors"}}"#,
    )
    .unwrap();
    inspect(&[dir.as_os_str()])
        .code(1)
        .stderr(predicate::str::contains("leaves the directory"))
        .stdout(predicate::str::is_empty());
}
