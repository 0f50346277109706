//! Released-style zips (`fixtures/forms/zip/`) through every command that opens a checkpoint:
//! converted byte-identically to what transformers wrote for the same checkpoint unzipped,
//! `PATH.zip#FOLDER/PREFIX` picking one of several, `vocab.txt` taken from inside the archive,
//! and hostile archives (`fixtures/forms/zip/hostile/`) refused with exit 1, one line on stderr,
//! nothing on stdout and nothing left behind (no output, no temporary files).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const KINDS: [&str; 3] = ["discriminator", "generator", "encoder"];

fn root() -> PathBuf {
    crate::repo_root()
}

fn zip(name: &str) -> PathBuf {
    root().join("fixtures/forms/zip").join(name)
}

fn expected(layout: &str, kind: &str) -> PathBuf {
    root()
        .join("fixtures/electra")
        .join(layout)
        .join("expected")
        .join(kind)
}

/// `PATH#INNER` as one argument.
fn selected(path: &Path, inner: &str) -> PathBuf {
    PathBuf::from(format!("{}#{inner}", path.display()))
}

/// The binary with its temporary files kept in `tmpdir` (to check none are left).
fn bin(tmpdir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("electra-convert").unwrap();
    cmd.env("TMPDIR", tmpdir);
    cmd
}

use crate::entries;

/// One entry of a zip, read with the `zip` crate (an independent reader).
fn zip_entry(path: &Path, name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn convert(tmpdir: &Path, input: &Path, kind: &str, out: &Path, extra: &[&str]) {
    let run = bin(tmpdir)
        .args(["convert", "--quiet", "--model", kind])
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{} {kind}: {}",
        input.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// model.safetensors and config.json byte-identical to transformers' for the same checkpoint.
fn assert_matches_expected(out: &Path, want: &Path) {
    for file in ["model.safetensors", "config.json"] {
        assert!(
            std::fs::read(out.join(file)).unwrap() == std::fs::read(want.join(file)).unwrap(),
            "{}: {file} differs from {}",
            out.display(),
            want.display()
        );
    }
}

#[test]
fn deflated_and_stored_zips_convert_like_the_released_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let temps = tempfile::tempdir().unwrap();
    let outs = tmp.path().join("outs");
    std::fs::create_dir(&outs).unwrap();
    for name in ["electra_tiny.zip", "electra_tiny_stored.zip"] {
        let vocab = zip_entry(&zip(name), "electra_tiny/vocab.txt");
        for kind in KINDS {
            let out = outs.join(format!("{name}-{kind}"));
            convert(temps.path(), &zip(name), kind, &out, &["--verify"]);
            assert_matches_expected(&out, &expected("released", kind));
            assert_eq!(
                std::fs::read(out.join("vocab.txt")).unwrap(),
                vocab,
                "{name} {kind}: the vocab.txt inside the zip"
            );
            let card = std::fs::read_to_string(out.join("README.md")).unwrap();
            assert!(!card.contains(".electra-convert-zip-"), "{card}");
        }
    }
    assert!(entries(temps.path()).is_empty(), "temporary files left");
    assert!(
        entries(&outs).iter().all(|n| !n.starts_with('.')),
        "{:?}",
        entries(&outs)
    );
}

#[test]
fn a_selector_picks_one_of_two_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let two = zip("two_checkpoints.zip");
    for (inner, layout, vocab_entry) in [
        ("a/electra_tiny", "untied", "a/vocab.txt"),
        ("b/electra_tiny", "released", "b/vocab.txt"),
        ("b", "released", "b/vocab.txt"),
        ("a/electra_tiny.index", "untied", "a/vocab.txt"),
    ] {
        for kind in ["discriminator", "generator"] {
            let out = tmp
                .path()
                .join(format!("{}-{kind}", inner.replace('/', "_")));
            convert(tmp.path(), &selected(&two, inner), kind, &out, &[]);
            assert_matches_expected(&out, &expected(layout, kind));
            assert_eq!(
                std::fs::read(out.join("vocab.txt")).unwrap(),
                zip_entry(&two, vocab_entry),
                "{inner}"
            );
        }
    }
}

#[test]
fn verify_checkpoint_reads_the_weights_inside_a_zip() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in KINDS {
        for name in ["electra_tiny.zip", "electra_tiny_stored.zip"] {
            let run = bin(tmp.path())
                .arg("verify")
                .arg(expected("released", kind))
                .arg("--checkpoint")
                .arg(zip(name))
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{name} {kind}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    // The other checkpoint of the pair is not the released one: the check fails (exit 3).
    let run = bin(tmp.path())
        .arg("verify")
        .arg(expected("released", "discriminator"))
        .arg("--checkpoint")
        .arg(selected(&zip("two_checkpoints.zip"), "a/electra_tiny"))
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(entries(tmp.path()).is_empty());
}

#[test]
fn inspect_names_the_form_and_map_accounts_for_every_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let z = zip("electra_tiny.zip");
    let run = bin(tmp.path()).arg("inspect").arg(&z).output().unwrap();
    assert!(run.status.success());
    let text = String::from_utf8(run.stdout).unwrap();
    let form = format!(
        "form: zip archive (electra_tiny/electra_tiny inside {})",
        z.display()
    );
    assert!(text.lines().any(|l| l == form), "{text}");
    assert!(
        text.contains("layout: Google Research TF1 ELECTRA"),
        "{text}"
    );
    let plain = bin(tmp.path())
        .arg("inspect")
        .arg(root().join("fixtures/electra/released"))
        .output()
        .unwrap();
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert!(plain.contains("form: TensorFlow checkpoint\n"), "{plain}");
    // The same table of tensors.
    let table = |t: &str| t.lines().skip(4).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(table(&text), table(&plain));

    let run = bin(tmp.path())
        .args(["inspect", "--json"])
        .arg(selected(&zip("two_checkpoints.zip"), "b"))
        .output()
        .unwrap();
    assert!(run.status.success());
    let doc: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(doc["form"]["id"], "zip");
    assert_eq!(doc["form"]["name"], "zip archive");
    assert!(doc["form"]["location"]
        .as_str()
        .unwrap()
        .ends_with("two_checkpoints.zip#b/electra_tiny"));

    for kind in KINDS {
        let map = |input: &Path| {
            let run = bin(tmp.path())
                .args(["map", "--model", kind])
                .arg(input)
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            String::from_utf8(run.stdout).unwrap()
        };
        let from_zip = map(&z);
        assert!(
            from_zip.contains("embeddings.word_embeddings.weight"),
            "{from_zip}"
        );
        let plain = map(&root().join("fixtures/electra/released"));
        // `map` names the form; everything else must be what the plain checkpoint gives.
        assert!(from_zip.contains("\nform: zip archive\n"), "{from_zip}");
        let from_zip = from_zip.replace("\nform: zip archive\n", "\nform: TensorFlow checkpoint\n");
        assert_eq!(
            from_zip.replace(&format!("{}#electra_tiny/", z.display()), ""),
            plain.replace(
                &format!("{}/", root().join("fixtures/electra/released").display()),
                ""
            ),
            "{kind}"
        );
    }
    assert!(entries(tmp.path()).is_empty());
}

#[test]
fn export_completes_the_checkpoint_inside_a_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("resume/electra_tiny");
    let run = bin(tmp.path())
        .args(["export", "--adam-slots", "zeros", "--checkpoint"])
        .arg(zip("electra_tiny.zip"))
        .arg("-o")
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = tmp.path().join("converted");
    convert(tmp.path(), &prefix, "discriminator", &out, &[]);
    assert_matches_expected(&out, &expected("released", "discriminator"));
}

/// Exit 1, nothing on stdout, one line on stderr holding every needle, no output directory and
/// no temporary files left.
fn convert_fails(input: &Path, needles: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let temps = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = bin(temps.path())
        .args(["convert", "--model", "discriminator"])
        .arg(input)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert_eq!(run.status.code(), Some(1), "{}: {stderr}", input.display());
    assert!(run.stdout.is_empty(), "{}", input.display());
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    assert!(
        entries(temps.path()).is_empty(),
        "temporary files left: {:?}",
        entries(temps.path())
    );
}

#[test]
fn hostile_zips_are_refused_and_leave_nothing_behind() {
    let h = |name: &str| zip("hostile").join(name);
    let cases: [(PathBuf, &[&str]); 13] = [
        (
            h("bomb_declared.zip"),
            &["10737418240 bytes", "1032:1", "zip bomb"],
        ),
        (
            h("bomb_inflates.zip"),
            &["inflates to more than the 1048576 bytes", "zip bomb"],
        ),
        (
            h("lie_local_size.zip"),
            &["the local header says", "compressed size"],
        ),
        (h("lie_past_end.zip"), &["run past the central directory"]),
        (
            h("lie_inflates_less.zip"),
            &["inflates to 4096 bytes", "declare 4196"],
        ),
        (h("crc_mismatch.zip"), &["CRC-32 mismatch"]),
        (h("overlap.zip"), &["overlap", "zip-bomb"]),
        (h("traversal.zip"), &["\"../evil.index\"", "path traversal"]),
        (h("absolute.zip"), &["\"/abs/evil.index\"", "absolute path"]),
        (h("encrypted.zip"), &["is encrypted", "does not decrypt"]),
        (
            h("method_bzip2.zip"),
            &["bzip2", "only stored and deflated"],
        ),
        (
            zip("two_checkpoints.zip"),
            &[
                "holds several checkpoints (a/electra_tiny, b/electra_tiny)",
                "two_checkpoints.zip#a/electra_tiny",
            ],
        ),
        (
            selected(&zip("two_checkpoints.zip"), "c"),
            &[
                "no such folder",
                "the archive holds: a/electra_tiny, b/electra_tiny",
            ],
        ),
    ];
    for (input, needles) in cases {
        convert_fails(&input, needles);
    }
}

#[test]
fn a_hash_in_a_plain_directory_name_is_not_a_selector() {
    // `#` in a plain directory name is not a selector; a missing zip is reported as missing.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run#1");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "checkpoint",
        "electra_tiny.index",
        "electra_tiny.data-00000-of-00001",
    ] {
        std::fs::copy(
            root().join("fixtures/electra/released").join(f),
            dir.join(f),
        )
        .unwrap();
    }
    let out = tmp.path().join("out");
    convert(tmp.path(), &dir, "discriminator", &out, &[]);
    assert_matches_expected(&out, &expected("released", "discriminator"));
    let missing = selected(&tmp.path().join("absent.zip"), "a/b");
    let run = bin(tmp.path())
        .args(["convert", "--model", "discriminator"])
        .arg(&missing)
        .arg("-o")
        .arg(tmp.path().join("out2"))
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("absent.zip"), "{stderr}");
    assert!(!tmp.path().join("out2").exists());
}

#[test]
fn batch_jobs_take_zips_and_selectors() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("jobs.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[[jobs]]
name = "released-disc"
checkpoint = "{deflated}"
model = "discriminator"
output = "out/released-disc"

[[jobs]]
name = "untied-gen"
checkpoint = "{two}#a/electra_tiny"
model = "generator"
output = "out/untied-gen"
"#,
            deflated = zip("electra_tiny.zip").display(),
            two = zip("two_checkpoints.zip").display(),
        ),
    )
    .unwrap();
    let run = bin(tmp.path())
        .args(["batch", "--quiet"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = tmp.path().join("out");
    assert_matches_expected(
        &out.join("released-disc"),
        &expected("released", "discriminator"),
    );
    assert_matches_expected(&out.join("untied-gen"), &expected("untied", "generator"));
    let left: Vec<String> = entries(tmp.path())
        .into_iter()
        .filter(|n| n.starts_with(".electra-convert-zip-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `--force` never replaces a directory holding the zip being converted.
#[test]
fn force_never_replaces_the_directory_holding_the_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let copy = runs.join("electra_tiny.zip");
    std::fs::copy(zip("electra_tiny.zip"), &copy).unwrap();
    let run = bin(tmp.path())
        .args(["convert", "--quiet", "--force", "--model", "discriminator"])
        .arg(&copy)
        .arg("-o")
        .arg(&runs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds the checkpoint"), "{stderr}");
    assert!(copy.is_file());
}
