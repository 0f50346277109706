//! Hostile inputs at the command line: every failure exits 1, says on stderr which file is at
//! fault and what to do, prints nothing on stdout, and leaves nothing behind in the output's
//! parent directory (no staging directory, no half-written model).

use crate::disk_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use assert_cmd::Command;

fn root() -> PathBuf {
    crate::repo_root()
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

/// Run and require: exit 1, empty stdout, stderr containing every one of `needles`.
fn fails(args: &[&std::ffi::OsStr], needles: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: stderr {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: stdout not empty: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
    assert_eq!(
        stderr.lines().count(),
        1,
        "one error line expected: {stderr}"
    );
    stderr
}

fn os(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

fn inspect_fails(path: &Path, needles: &[&str]) -> String {
    fails(&["inspect".as_ref(), os(path)], needles)
}

use crate::entries;

#[test]
fn inspect_of_an_empty_index_names_it_and_says_recopy() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("model.ckpt-1.index");
    std::fs::write(&index, b"").unwrap();
    for given in [
        index.clone(),
        tmp.path().join("model.ckpt-1"),
        tmp.path().into(),
    ] {
        inspect_fails(&given, &["model.ckpt-1.index", "0 bytes", "re-copy"]);
    }
}

#[test]
fn inspect_of_an_empty_or_garbage_file_without_checkpoint_suffix() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("weights");
    std::fs::write(&empty, b"").unwrap();
    inspect_fails(&empty, &["weights", "pass the prefix"]);
    let garbage = tmp.path().join("garbage.index");
    std::fs::write(
        &garbage,
        (0..300u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    inspect_fails(&garbage, &["garbage.index", "bad magic", "re-copy"]);
    let st = tmp.path().join("model.safetensors");
    std::fs::write(&st, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").unwrap();
    inspect_fails(&st, &["model.safetensors", "not safetensors"]);
}

#[test]
fn inspect_of_a_truncated_index() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/format/basic");
    let bytes = std::fs::read(src.join("ckpt.index")).unwrap();
    std::fs::copy(
        src.join("ckpt.data-00000-of-00001"),
        tmp.path().join("ckpt.data-00000-of-00001"),
    )
    .unwrap();
    for keep in [10, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(tmp.path().join("ckpt.index"), &bytes[..keep]).unwrap();
        inspect_fails(&tmp.path().join("ckpt"), &["ckpt.index", "re-copy"]);
    }
}

#[test]
fn inspect_with_a_missing_shard_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("fixtures/format/basic/ckpt.index"),
        tmp.path().join("ckpt.index"),
    )
    .unwrap();
    inspect_fails(
        &tmp.path().join("ckpt"),
        &["ckpt.data-00000-of-00001", "is missing", "copy every"],
    );
}

#[test]
fn inspect_of_a_directory_with_several_checkpoints_lists_them() {
    let tmp = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/format/basic");
    for prefix in ["a.ckpt", "b.ckpt"] {
        std::fs::copy(
            src.join("ckpt.index"),
            tmp.path().join(format!("{prefix}.index")),
        )
        .unwrap();
    }
    inspect_fails(
        tmp.path(),
        &["several checkpoints", "a.ckpt", "b.ckpt", "pass one prefix"],
    );
}

#[test]
fn inspect_with_a_state_file_naming_a_missing_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("checkpoint"),
        "model_checkpoint_path: \"/elsewhere/run/model.ckpt-7\"\n",
    )
    .unwrap();
    inspect_fails(
        tmp.path(),
        &[
            "checkpoint",
            "model.ckpt-7",
            "does not exist",
            "pass an existing checkpoint prefix",
        ],
    );
    // With a local copy of the same base name, the message points at it.
    let src = root().join("fixtures/format/basic");
    std::fs::copy(
        src.join("ckpt.index"),
        tmp.path().join("model.ckpt-7.index"),
    )
    .unwrap();
    inspect_fails(tmp.path(), &["exists in the directory, pass that prefix"]);
}

#[test]
fn convert_of_a_damaged_checkpoint_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    std::fs::create_dir(&ckpt).unwrap();
    std::fs::write(ckpt.join("model.ckpt-1.index"), b"not an index").unwrap();
    let parent = tmp.path().join("out-parent");
    std::fs::create_dir(&parent).unwrap();
    let out = parent.join("model");
    fails(
        &[
            "convert".as_ref(),
            os(&ckpt),
            "-m".as_ref(),
            "discriminator".as_ref(),
            "-o".as_ref(),
            os(&out),
        ],
        &["model.ckpt-1.index", "re-copy"],
    );
    assert!(entries(&parent).is_empty(), "{:?}", entries(&parent));
}

/// Root ignores permission bits, so "unwritable" is made with a regular file where a
/// directory is needed: `-o FILE/out`.
#[test]
fn convert_into_an_unwritable_output_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let out = file.join("out");
    fails(
        &[
            "convert".as_ref(),
            os(&root().join("fixtures/electra/tied")),
            "-m".as_ref(),
            "discriminator".as_ref(),
            "-o".as_ref(),
            os(&out),
        ],
        &["a-file", "Not a directory"],
    );
    assert_eq!(entries(tmp.path()), ["a-file"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"");
}

/// A full disk: a 200 KiB tmpfs (needs root; skipped with a message otherwise). The tied
/// discriminator's model.safetensors is larger than that.
#[test]
fn convert_onto_a_full_disk_says_so_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = disk_support::small_tmpfs(tmp.path(), "200k", "convert_onto_a_full_disk…")
    else {
        return;
    };
    let mnt = disk.path().to_path_buf();
    let out = mnt.join("deeper/model");
    let stderr = fails(
        &[
            "convert".as_ref(),
            os(&root().join("fixtures/electra/tied")),
            "-m".as_ref(),
            "discriminator".as_ref(),
            "-o".as_ref(),
            os(&out),
        ],
        &[
            "No space left on device",
            "model.safetensors",
            &out.display().to_string(),
            "Free space",
        ],
    );
    // The message names the output the user asked for, not the vanished staging directory.
    assert!(!stderr.contains(".tmp-"), "{stderr}");
    // Not even the parent directory the run created is left.
    assert!(entries(&mnt).is_empty(), "{:?}", entries(&mnt));
}

fn sigterm_removes_staging(signal: &str, code: i32) {
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    std::fs::create_dir(&ckpt).unwrap();
    disk_support::write_large_checkpoint(&ckpt, 400_000);
    let parent = tmp.path().join("out");
    std::fs::create_dir(&parent).unwrap();
    let bin = assert_cmd::cargo::cargo_bin("electra-convert");
    let mut child = std::process::Command::new(bin)
        .arg("convert")
        .arg(&ckpt)
        .args(["-m", "discriminator", "-q", "-o"])
        .arg(parent.join("model"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the staging directory exists, then interrupt.
    let saw_staging = disk_support::wait_for_staging(&parent, &mut child);
    assert!(
        saw_staging,
        "the conversion finished before it could be interrupted"
    );
    std::thread::sleep(Duration::from_millis(100));
    let killed = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The signal may land after the finished directory was renamed into place (the rename is
    // the commit point), before the process exits: then the exit code is the signal's, but the
    // result must be the complete model and no staging directory.
    let committed = parent.join("model").join("model.safetensors").is_file();
    if out.status.code() == Some(0) || committed {
        eprintln!("conversion finished before {signal} arrived; checking the finished state");
        assert_eq!(entries(&parent), ["model"]);
        assert!(committed);
        return;
    }
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        entries(&parent).is_empty(),
        "left behind after {signal}: {:?}",
        entries(&parent)
    );
}

#[test]
fn sigterm_during_convert_removes_the_staging_directory() {
    sigterm_removes_staging("TERM", 128 + 15);
}

#[test]
fn sigint_during_convert_removes_the_staging_directory() {
    sigterm_removes_staging("INT", 128 + 2);
}
