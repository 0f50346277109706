//! `electra-convert export` end to end: round trips through `convert` against the transformers
//! fixtures, and hostile inputs (exit 1, a message naming what and where, nothing left behind).

use crate::disk_support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;

fn root() -> PathBuf {
    crate::repo_root()
}

fn fixture(layout: &str) -> PathBuf {
    root().join("fixtures/electra").join(layout)
}

fn expected(layout: &str, kind: &str) -> PathBuf {
    fixture(layout).join("expected").join(kind)
}

fn bin() -> Command {
    Command::cargo_bin("electra-convert").unwrap()
}

fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}

fn run_ok(args: &[&OsStr]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run and require: exit 1, empty stdout, stderr containing every one of `needles`.
fn fails(args: &[&OsStr], needles: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: stderr {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout not empty");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: stderr lacks {n:?}: {stderr}");
    }
    stderr
}

use crate::entries;

fn same_dir_files(got: &Path, want: &Path, files: &[&str]) {
    for f in files {
        assert!(
            std::fs::read(got.join(f)).unwrap() == std::fs::read(want.join(f)).unwrap(),
            "{} vs {}: {f} differs",
            got.display(),
            want.display()
        );
    }
}

/// export (HF directories, with zero Adam slots) then convert --model both gives back the very
/// directories exported from: model.safetensors and config.json byte for byte, for the shared
/// (tied, released) and untied layouts.
#[test]
fn convert_of_an_export_is_the_directories_exported_from() {
    let tmp = tempfile::tempdir().unwrap();
    for (layout, step) in [("tied", "1000"), ("released", "1000000"), ("untied", "500")] {
        let prefix = tmp.path().join(layout).join(format!("model.ckpt-{step}"));
        let stdout = run_ok(&[
            "export".as_ref(),
            "--discriminator".as_ref(),
            os(&expected(layout, "discriminator")),
            "--generator".as_ref(),
            os(&expected(layout, "generator")),
            "-o".as_ref(),
            os(&prefix),
            "--global-step".as_ref(),
            step.as_ref(),
            "--adam-slots".as_ref(),
            "zeros".as_ref(),
            "--json".as_ref(),
        ]);
        let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(summary["global_step"], step.parse::<i64>().unwrap());
        assert_eq!(
            summary["layout"],
            if layout == "untied" {
                "untied embeddings"
            } else {
                "shared embeddings"
            }
        );
        let hf = tmp.path().join(format!("{layout}-hf"));
        run_ok(&[
            "convert".as_ref(),
            os(&prefix),
            "--model".as_ref(),
            "both".as_ref(),
            "-o".as_ref(),
            os(&hf),
            "--quiet".as_ref(),
        ]);
        for kind in ["discriminator", "generator"] {
            same_dir_files(
                &hf.join(kind),
                &expected(layout, kind),
                &["model.safetensors", "config.json"],
            );
        }
    }
}

/// export --checkpoint of the released fixture (slots and nothing else added), then convert,
/// gives the same directories as converting the released fixture directly.
#[test]
fn completing_a_released_checkpoint_converts_like_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("resume/electra_tiny");
    let stdout = run_ok(&[
        "export".as_ref(),
        "--checkpoint".as_ref(),
        os(&fixture("released")),
        "-o".as_ref(),
        os(&prefix),
        "--adam-slots".as_ref(),
        "zeros".as_ref(),
    ]);
    assert!(stdout.contains("Adam slot(s) added"), "{stdout}");
    for (src, out) in [
        (prefix.clone(), tmp.path().join("a")),
        (
            fixture("released").join("electra_tiny"),
            tmp.path().join("b"),
        ),
    ] {
        run_ok(&[
            "convert".as_ref(),
            os(&src),
            "-m".as_ref(),
            "both".as_ref(),
            "-o".as_ref(),
            os(&out),
            "-q".as_ref(),
        ]);
    }
    for kind in ["discriminator", "generator"] {
        same_dir_files(
            &tmp.path().join("a").join(kind),
            &tmp.path().join("b").join(kind),
            &["model.safetensors", "config.json"],
        );
    }
    // The state file names the new prefix relatively, as TF's Saver writes it.
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("resume/checkpoint")).unwrap(),
        "model_checkpoint_path: \"electra_tiny\"\nall_model_checkpoint_paths: \"electra_tiny\"\n"
    );
}

#[test]
fn a_discriminator_alone_says_pretraining_needs_a_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("d/model.ckpt-0");
    let out = bin()
        .args([
            "export".as_ref(),
            "--discriminator".as_ref(),
            os(&expected("released", "discriminator")),
            "-o".as_ref(),
            os(&prefix),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs the generator"), "{stderr}");
    let ckpt = tf_checkpoint::Checkpoint::open(&prefix).unwrap();
    assert!(ckpt
        .tensors()
        .iter()
        .all(|t| !t.name.starts_with("generator")));
    assert_eq!(ckpt.read_i64_scalar("global_step").unwrap(), 0);
}

/// Copy a fixture directory (so a test can damage it).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn export_pair(disc: &Path, gen: &Path, out: &Path) -> Vec<std::ffi::OsString> {
    [
        "export".as_ref(),
        "--discriminator".as_ref(),
        os(disc),
        "--generator".as_ref(),
        os(gen),
        "-o".as_ref(),
        os(out),
    ]
    .iter()
    .map(|s: &&OsStr| s.to_os_string())
    .collect()
}

fn fails_owned(args: &[std::ffi::OsString], needles: &[&str]) -> String {
    let refs: Vec<&OsStr> = args.iter().map(|s| s.as_os_str()).collect();
    fails(&refs, needles)
}

#[test]
fn bad_inputs_exit_1_name_the_problem_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out/model.ckpt-0");

    // Not an ELECTRA directory: a BERT-typed config.
    let bert = tmp.path().join("bert");
    copy_dir(&expected("released", "discriminator"), &bert);
    let cfg = std::fs::read_to_string(bert.join("config.json"))
        .unwrap()
        .replace("\"model_type\": \"electra\"", "\"model_type\": \"bert\"");
    std::fs::write(bert.join("config.json"), cfg).unwrap();
    fails_owned(
        &export_pair(&bert, &expected("released", "generator"), &out),
        &["is not an ELECTRA model", "model_type \"bert\"", "bert"],
    );
    // A TF checkpoint directory passed as a HuggingFace one.
    fails_owned(
        &export_pair(
            &fixture("released"),
            &expected("released", "generator"),
            &out,
        ),
        &["no config.json", "released"],
    );
    // Generator and discriminator swapped.
    fails_owned(
        &export_pair(
            &expected("released", "generator"),
            &expected("released", "discriminator"),
            &out,
        ),
        &["ElectraForMaskedLM, not ElectraForPreTraining"],
    );
    // Inconsistent pair: released discriminator (vocab 72) with the untied generator (96).
    fails_owned(
        &export_pair(
            &expected("released", "discriminator"),
            &expected("untied", "generator"),
            &out,
        ),
        &["disagree on vocab_size", "72 vs 96"],
    );
    // A wrong-shape tensor: config says the same, the tensor does not.
    let shaped = tmp.path().join("shaped");
    copy_dir(&expected("released", "discriminator"), &shaped);
    reshape_tensor(
        &shaped.join("model.safetensors"),
        "electra.encoder.layer.1.intermediate.dense.weight",
    );
    fails_owned(
        &export_pair(&shaped, &expected("released", "generator"), &out),
        &[
            "shape mismatch",
            "electra.encoder.layer.1.intermediate.dense.weight",
            "shaped",
        ],
    );
    // Output prefix inside an input directory.
    let inside = expected("released", "discriminator").join("ckpt/model.ckpt-0");
    fails_owned(
        &export_pair(
            &expected("released", "discriminator"),
            &expected("released", "generator"),
            &inside,
        ),
        &["would destroy the input"],
    );
    assert!(!expected("released", "discriminator").join("ckpt").exists());
    // Nothing was left behind by any of them.
    assert_eq!(
        entries(tmp.path()),
        ["bert", "shaped"],
        "{:?}",
        entries(tmp.path())
    );

    // An existing non-empty output without --force; with --force it is replaced.
    std::fs::create_dir_all(tmp.path().join("out")).unwrap();
    std::fs::write(tmp.path().join("out/keep"), "x").unwrap();
    let args = export_pair(
        &expected("released", "discriminator"),
        &expected("released", "generator"),
        &out,
    );
    fails_owned(&args, &["exists and is not empty", "--force"]);
    assert_eq!(entries(&tmp.path().join("out")), ["keep"]);
    let mut forced = args.clone();
    forced.push("--force".into());
    let refs: Vec<&OsStr> = forced.iter().map(|s| s.as_os_str()).collect();
    run_ok(&refs);
    assert_eq!(
        entries(&tmp.path().join("out")),
        [
            "checkpoint",
            "model.ckpt-0.data-00000-of-00001",
            "model.ckpt-0.index"
        ]
    );
}

/// Rewrite one tensor's header shape [a, b] as [b, a] (same bytes, wrong shape).
fn reshape_tensor(file: &Path, name: &str) {
    let bytes = std::fs::read(file).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let shape = header[name]["shape"].as_array_mut().unwrap();
    shape.swap(0, 1);
    let mut text = serde_json::to_vec(&header).unwrap();
    text.resize(n.max(text.len()).next_multiple_of(8), b' ');
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(file, out).unwrap();
}

/// A full disk: a 200 KiB tmpfs (needs root; skipped with a message otherwise). The tied
/// export with zero slots is about 3.5 MB.
#[test]
fn export_onto_a_full_disk_says_so_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = disk_support::small_tmpfs(tmp.path(), "200k", "export_onto_a_full_disk…")
    else {
        return;
    };
    let mnt = disk.path().to_path_buf();
    let out = mnt.join("deeper/pretrain/model.ckpt-1000");
    let mut args = export_pair(
        &expected("tied", "discriminator"),
        &expected("tied", "generator"),
        &out,
    );
    args.extend(["--adam-slots".into(), "zeros".into()]);
    let stderr = fails_owned(
        &args,
        &[
            "No space left on device",
            "model.ckpt-1000.data-00000-of-00001",
            "Free space",
        ],
    );
    assert!(!stderr.contains(".tmp-"), "{stderr}");
    assert!(entries(&mnt).is_empty(), "{:?}", entries(&mnt));
}

/// `map` of a HuggingFace directory lists the same (TF, HF, transform) triples as `map` of the
/// checkpoint it was converted from: one table, read both ways.
#[test]
fn map_shows_the_reverse_direction_with_the_same_rows() {
    for kind in ["discriminator", "generator"] {
        let forward: serde_json::Value = serde_json::from_str(&run_ok(&[
            "map".as_ref(),
            "-m".as_ref(),
            kind.as_ref(),
            os(&fixture("tied")),
            "--json".as_ref(),
        ]))
        .unwrap();
        let reverse: serde_json::Value = serde_json::from_str(&run_ok(&[
            "map".as_ref(),
            "-m".as_ref(),
            kind.as_ref(),
            os(&expected("tied", kind)),
            "--json".as_ref(),
        ]))
        .unwrap();
        let triples = |v: &serde_json::Value| {
            let mut t: Vec<(String, String, String)> = v["models"][0]["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["tf"].as_str().unwrap().to_owned(),
                        e["hf"].as_str().unwrap().to_owned(),
                        e["transform"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            t.sort();
            t
        };
        assert_eq!(triples(&forward), triples(&reverse), "{kind}");
        assert!(triples(&forward).len() > 30);
    }
}

/// f16 and bf16 generators (torch's own casts of the untied fixture) are widened to float32:
/// the export holds exactly the widened values, and converting it back with --dtype f16/bf16
/// gives torch's file byte for byte.
#[test]
fn half_precision_inputs_become_float32_variables() {
    let tmp = tempfile::tempdir().unwrap();
    for flag in ["f16", "bf16"] {
        let gen = tmp.path().join(format!("gen-{flag}"));
        std::fs::create_dir(&gen).unwrap();
        let src = expected("untied", "generator");
        std::fs::copy(src.join("config.json"), gen.join("config.json")).unwrap();
        let half_file = src.join(format!("model.{flag}.safetensors"));
        std::fs::copy(&half_file, gen.join("model.safetensors")).unwrap();
        let prefix = tmp.path().join(format!("ckpt-{flag}/model.ckpt-500"));
        let out = bin()
            .args(export_pair(
                &expected("untied", "discriminator"),
                &gen,
                &prefix,
            ))
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("widened to float32"), "{stderr}");

        let ckpt = tf_checkpoint::Checkpoint::open(&prefix).unwrap();
        let info = ckpt.get("generator_predictions/output_bias").unwrap();
        assert_eq!(info.dtype, tf_checkpoint::DType::Float32);
        let bytes = std::fs::read(&half_file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let want: Vec<f32> = st
            .tensor("generator_lm_head.bias")
            .unwrap()
            .data()
            .chunks_exact(2)
            .map(|c| match flag {
                "f16" => half::f16::from_le_bytes([c[0], c[1]]).to_f32(),
                _ => half::bf16::from_le_bytes([c[0], c[1]]).to_f32(),
            })
            .collect();
        assert_eq!(
            ckpt.read_f32("generator_predictions/output_bias").unwrap(),
            want
        );

        let hf = tmp.path().join(format!("hf-{flag}"));
        run_ok(&[
            "convert".as_ref(),
            os(&prefix),
            "-m".as_ref(),
            "generator".as_ref(),
            "--dtype".as_ref(),
            flag.as_ref(),
            "-o".as_ref(),
            os(&hf),
            "-q".as_ref(),
        ]);
        assert!(
            std::fs::read(hf.join("model.safetensors")).unwrap()
                == std::fs::read(&half_file).unwrap(),
            "{flag}: round trip differs from torch's file"
        );
    }
}

/// SIGTERM in the middle of an export removes the staging directory (and writes nothing).
#[test]
fn sigterm_during_export_leaves_nothing_behind() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    std::fs::create_dir(&ckpt).unwrap();
    disk_support::write_large_checkpoint(&ckpt, 600_000);
    let parent = tmp.path().join("runs");
    std::fs::create_dir(&parent).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("electra-convert"))
        .args(["export", "-q", "--checkpoint"])
        .arg(ckpt.join("model.ckpt-1"))
        .arg("-o")
        .arg(parent.join("resume/model.ckpt-1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the staging directory exists, then interrupt.
    let saw_staging = disk_support::wait_for_staging(&parent, &mut child);
    assert!(
        saw_staging,
        "the export finished before it could be interrupted"
    );
    std::thread::sleep(Duration::from_millis(50));
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let committed = parent.join("resume/model.ckpt-1.index").is_file();
    if out.status.code() == Some(0) || committed {
        eprintln!("export finished before SIGTERM arrived; checking the finished state");
        assert_eq!(entries(&parent), ["resume"]);
        return;
    }
    assert_eq!(out.status.code(), Some(128 + 15));
    assert!(entries(&parent).is_empty(), "{:?}", entries(&parent));
}

/// config.json contradicting the weights, a tensor no table row names, a missing tensor: each
/// refused with the file and the tensor named.
#[test]
fn inconsistent_directories_are_refused() {
    use safetensors::tensor::TensorView;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out/model.ckpt-0");
    let gen = expected("released", "generator");

    let cfg = tmp.path().join("cfg");
    copy_dir(&expected("released", "discriminator"), &cfg);
    let text = std::fs::read_to_string(cfg.join("config.json"))
        .unwrap()
        .replace("\"vocab_size\": 72", "\"vocab_size\": 30522");
    std::fs::write(cfg.join("config.json"), text).unwrap();
    fails_owned(
        &export_pair(&cfg, &gen, &out),
        &["vocab_size is 30522 but the tensors say 72", "config.json"],
    );

    let src =
        std::fs::read(expected("released", "discriminator").join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&src).unwrap();
    let extra_bytes = vec![0u8; 64 * 4];
    let mut extra: Vec<(String, TensorView)> = st.tensors();
    extra.push((
        "classifier.dense.bias".into(),
        TensorView::new(safetensors::Dtype::F32, vec![64], &extra_bytes).unwrap(),
    ));
    let dir = tmp.path().join("extra");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        expected("released", "discriminator").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(extra, None).unwrap(),
    )
    .unwrap();
    fails_owned(
        &export_pair(&dir, &gen, &out),
        &[
            "`classifier.dense.bias`",
            "not part of ElectraForPreTraining",
        ],
    );

    let missing: Vec<(String, TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "electra.encoder.layer.0.attention.self.key.bias")
        .collect();
    std::fs::write(
        dir.join("model.safetensors"),
        safetensors::serialize(missing, None).unwrap(),
    )
    .unwrap();
    fails_owned(
        &export_pair(&dir, &gen, &out),
        &[
            "1 tensor(s) of ElectraForPreTraining are missing",
            "electra.encoder.layer.0.attention.self.key.bias",
        ],
    );
    assert_eq!(entries(tmp.path()), ["cfg", "extra"]);
}

/// `export --checkpoint --adam-slots zeros` of `original` and of `other` (into `work`) write the
/// same index and data bytes.
fn assert_completes_alike(work: &Path, original: &Path, other: &Path) {
    let mut outputs = Vec::new();
    for (name, src) in [("from-original", original), ("from-other", other)] {
        let prefix = work.join(name).join("model.ckpt-5");
        run_ok(&[
            "export".as_ref(),
            "--checkpoint".as_ref(),
            os(src),
            "-o".as_ref(),
            os(&prefix),
            "--adam-slots".as_ref(),
            "zeros".as_ref(),
            "-q".as_ref(),
        ]);
        outputs.push(prefix);
    }
    for suffix in [".index", ".data-00000-of-00001"] {
        let read = |p: &PathBuf| std::fs::read(format!("{}{suffix}", p.display())).unwrap();
        assert!(
            read(&outputs[0]) == read(&outputs[1]),
            "{suffix} differs between {} and {}",
            original.display(),
            other.display()
        );
    }
}

/// The released fixture rewritten as a big-endian bundle (every value byte-swapped, the header
/// saying so), as TensorFlow writes on a big-endian host.
fn big_endian_copy(prefix: &Path, dir: &Path) -> PathBuf {
    use tf_checkpoint::testing::{build_bundle, write_single_shard, TensorSpec};
    use tf_checkpoint::Checkpoint;
    let ckpt = Checkpoint::open(prefix).unwrap();
    let tensors: Vec<TensorSpec> = ckpt
        .tensors()
        .iter()
        .map(|t| {
            let width = t
                .dtype
                .element_size()
                .unwrap_or_else(|| panic!("{} is not numeric", t.name));
            let mut data = ckpt.read_bytes(&t.name).unwrap().into_owned();
            for unit in data.chunks_exact_mut(width) {
                unit.reverse();
            }
            TensorSpec {
                name: t.name.as_bytes().to_vec(),
                dtype: t.dtype.to_proto(),
                shape: t.shape.iter().map(|&d| d as i64).collect(),
                data,
                crc: None,
            }
        })
        .collect();
    let (index, data) = build_bundle(&tensors, true);
    write_single_shard(dir, &index, &data).unwrap()
}

/// export --checkpoint reads a big-endian bundle like a little-endian one: the completed
/// pretraining checkpoint (written little-endian, as TensorFlow on x86 writes it) is byte for
/// byte the one exported from the original.
#[test]
fn a_big_endian_released_checkpoint_exports_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let big_dir = tmp.path().join("big-endian");
    std::fs::create_dir(&big_dir).unwrap();
    let big = big_endian_copy(&fixture("released").join("electra_tiny"), &big_dir);
    let opened = tf_checkpoint::Checkpoint::open(&big).unwrap();
    assert_eq!(opened.header().endianness, tf_checkpoint::Endianness::Big);
    assert_completes_alike(tmp.path(), &fixture("released"), &big);
}

/// export --checkpoint assembles a partitioned variable: the `partitioned` fixture (the released
/// checkpoint saved again by TensorFlow with its word embeddings in three slices) completes to
/// byte for byte the checkpoint the unpartitioned original completes to.
#[test]
fn a_partitioned_released_checkpoint_exports_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let parted = fixture("partitioned");
    let opened = tf_checkpoint::Checkpoint::open(&parted).unwrap();
    assert_eq!(
        opened
            .get("electra/embeddings/word_embeddings")
            .unwrap()
            .partitions,
        3
    );
    assert_completes_alike(tmp.path(), &fixture("released"), &parted);
}
