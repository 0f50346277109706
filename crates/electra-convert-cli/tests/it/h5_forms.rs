//! transformers' TF weights (`tf_model.h5`, single, fixed-length-string and sharded) through
//! the command line: bit-exact conversion with the directory's own config.json, self-parity by
//! the Keras names, the producer's own outputs, `inspect`/`map`, and hostile files.

use std::path::{Path, PathBuf};

use electra_convert::source::h5::H5File;
use predicates::prelude::*;
use serde_json::Value;

fn forms(name: &str) -> PathBuf {
    crate::repo_root().join("fixtures/forms").join(name)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every input spelling × kind gives the expected directory's bytes and config.
#[test]
fn every_h5_form_converts_bit_exact_with_its_own_config() {
    let cases: &[(&str, &str, &str)] = &[
        ("h5_disc", "discriminator", "h5_disc"),
        ("h5_disc/tf_model.h5", "encoder", "h5_disc"),
        ("h5_gen", "generator", "h5_gen"),
        ("h5_gen/tf_model.h5", "generator", "h5_gen"),
        ("h5_fixedstr", "discriminator", "h5_disc"),
        ("h5_fixedstr", "encoder", "h5_disc"),
        ("h5_sharded", "discriminator", "h5_disc"),
        ("h5_sharded/tf_model.h5.index.json", "encoder", "h5_disc"),
        ("safetensors_tf", "discriminator", "h5_disc"),
        ("safetensors_tf/model.safetensors", "encoder", "h5_disc"),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (input, kind, expected)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("{i}"));
        crate::cli()
            .args(["convert", "--model", kind, "-o"])
            .arg(&out)
            .arg(forms(input))
            .assert()
            .success();
        let want = forms(expected).join("expected").join(kind);
        assert!(
            std::fs::read(out.join("model.safetensors")).unwrap()
                == std::fs::read(want.join("model.safetensors")).unwrap(),
            "{input} --model {kind}: model.safetensors differs from {}",
            want.display()
        );
        assert_eq!(
            json(&out.join("config.json")),
            json(&want.join("config.json")),
            "{input} --model {kind}: config.json"
        );
    }
}

/// `--verify` reads the h5 by its own Keras names; the producer's outputs match within
/// 1e-5 absolute (≤ 1e-5 × max(1, |ref|)).
#[test]
fn verify_and_producer_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    for (input, kind) in [
        ("h5_disc", "discriminator"),
        ("h5_gen", "generator"),
        ("h5_sharded", "discriminator"),
        ("h5_fixedstr", "encoder"),
        ("safetensors_tf", "discriminator"),
    ] {
        let out = tmp.path().join(format!("{input}-{kind}"));
        crate::cli()
            .args(["convert", "--verify", "--model", kind, "-o"])
            .arg(&out)
            .arg(forms(input))
            .assert()
            .success()
            .stdout(predicate::str::contains("parity: passed"));
        if kind == "encoder" {
            continue;
        }
        crate::cli()
            .args(["verify", "--atol", "1e-5", "--rtol", "0", "--reference"])
            .arg(forms(input).join("producer_outputs.npz"))
            .arg(&out)
            .assert()
            .success()
            .stdout(predicate::str::contains("parity: passed"));
    }
}

#[test]
fn inspect_names_the_form_and_map_accounts_for_every_dataset() {
    crate::cli()
        .arg("inspect")
        .arg(forms("h5_sharded"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "form: HuggingFace TF weights (tf_model.h5)",
        ))
        .stdout(predicate::str::contains(
            "layout: transformers TF ELECTRA (Keras names)",
        ))
        .stdout(predicate::str::contains("2 shards"));
    let out = crate::cli()
        .args(["inspect", "--json"])
        .arg(forms("h5_gen"))
        .assert()
        .success();
    let doc: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(doc["form"]["id"], "keras-h5");
    assert_eq!(doc["layout"]["id"], "hf-keras");
    let names: Vec<String> = doc["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    // 44 distinct weights plus the five second copies of the embedding layer: 49 datasets.
    assert_eq!(names.len(), 49);
    let map = crate::cli()
        .args(["map", "--model", "generator"])
        .arg(forms("h5_gen"))
        .assert()
        .success();
    let text = String::from_utf8(map.get_output().stdout.clone()).unwrap();
    for name in &names {
        assert!(text.contains(name.as_str()), "map does not list {name}");
    }
    assert!(text.contains("second copy of the shared embedding weight"));
    assert!(text.contains("generator_lm_head.weight"));
}

#[test]
fn tf_format_safetensors_is_named_and_lying_headers_are_refused() {
    crate::cli()
        .arg("inspect")
        .arg(forms("safetensors_tf"))
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "form: HuggingFace TF weights (model.safetensors, format tf)",
        ));
    let orig = std::fs::read(forms("safetensors_tf/model.safetensors")).unwrap();
    let n = u64::from_le_bytes(orig[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&orig[8..8 + n]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        // a tensor's byte range past the end of the data
        (
            header.replacen(
                "\"data_offsets\":[0,128]",
                "\"data_offsets\":[0,99999999]",
                1,
            ),
            "do not hold shape",
        ),
        // a kernel claiming 2^40 rows
        (
            header.replacen("\"shape\":[32]", "\"shape\":[1099511627776]", 1),
            "do not hold shape",
        ),
    ];
    for (i, (text, expect)) in cases.into_iter().enumerate() {
        assert_ne!(text, header, "case {i} did not change the header");
        let dir = tmp.path().join(format!("in{i}"));
        std::fs::create_dir(&dir).unwrap();
        // keep the header length: pad with spaces as safetensors does
        let mut h = text.into_bytes();
        assert!(h.len() <= n + 64);
        let len = h.len().max(n);
        h.resize(len, b' ');
        let mut bytes = (len as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&h);
        bytes.extend_from_slice(&orig[8 + n..]);
        std::fs::write(dir.join("model.safetensors"), bytes).unwrap();
        std::fs::copy(forms("safetensors_tf/config.json"), dir.join("config.json")).unwrap();
        let out = tmp.path().join(format!("out{i}"));
        crate::cli()
            .args(["convert", "--model", "discriminator", "-o"])
            .arg(&out)
            .arg(&dir)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(expect));
        assert!(!out.exists());
    }
}

// --- hostile files -------------------------------------------------------------------------

fn get64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Superblock v0 with 8-byte addresses: the root symbol-table entry's header address.
const ROOT_HEADER: usize = 64;

/// (type, data offset) of every message of the v1 object header at `hdr`, continuations
/// followed.
fn messages(b: &[u8], hdr: usize) -> Vec<(u16, usize)> {
    let mut out = Vec::new();
    let first = u32::from_le_bytes(b[hdr + 8..hdr + 12].try_into().unwrap()) as usize;
    let mut chunks = vec![(hdr + 16, first)];
    let mut i = 0;
    while i < chunks.len() {
        let (start, len) = chunks[i];
        i += 1;
        let mut p = start;
        while p + 8 <= start + len {
            let t = u16::from_le_bytes([b[p], b[p + 1]]);
            let s = u16::from_le_bytes([b[p + 2], b[p + 3]]) as usize;
            if t == 0x10 {
                chunks.push((get64(b, p + 8) as usize, get64(b, p + 16) as usize));
            }
            out.push((t, p + 8));
            p += 8 + s;
        }
    }
    out
}

fn find_msg(b: &[u8], hdr: usize, t: u16) -> usize {
    messages(b, hdr)
        .into_iter()
        .find(|m| m.0 == t)
        .unwrap_or_else(|| panic!("no message {t:#x} at {hdr}"))
        .1
}

/// Header offset of the dataset of the discriminator's first query kernel.
fn a_dataset(b: &[u8]) -> usize {
    let f = H5File::from_bytes(b.to_vec()).unwrap();
    let g = f
        .group(
            "/electra/tf_electra_for_pre_training/electra/encoder/layer_._0/attention/self/query",
        )
        .unwrap();
    let m = g.members().unwrap();
    m.iter()
        .find(|m| m.name == "kernel:0")
        .unwrap()
        .object_offset
        .unwrap() as usize
}

/// Each damaged copy of h5_disc's file: convert exits 1 with `expect` in the message and
/// leaves no output behind.
#[test]
fn hostile_h5_files_are_refused_and_leave_nothing() {
    let orig = std::fs::read(forms("h5_disc/tf_model.h5")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push((
        "truncated",
        orig[..orig.len() / 2].to_vec(),
        "but the file has",
    ));
    cases.push((
        "superblock only",
        orig[..96].to_vec(),
        "object header at byte offset 96",
    ));
    cases.push((
        "not hdf5",
        b"{\"not\": \"hdf5\"}".to_vec(),
        "no superblock signature",
    ));

    let mut b = orig.clone();
    put64(&mut b, ROOT_HEADER, 1 << 40);
    cases.push(("root header past the end", b, "but the file has"));

    let root = get64(&orig, ROOT_HEADER) as usize;
    let cont = find_msg(&orig, root, 0x10);
    let mut b = orig.clone();
    put64(&mut b, cont, (root + 16) as u64);
    cases.push(("continuation pointing back", b, "cycle"));

    let st = find_msg(&orig, root, 0x11);
    let tree = get64(&orig, st) as usize;
    assert_eq!(&orig[tree..tree + 4], b"TREE");
    let mut b = orig.clone();
    put64(&mut b, tree + 32, tree as u64);
    cases.push((
        "B-tree child is the node itself",
        b,
        "malformed symbol table node",
    ));

    let ds = a_dataset(&orig);
    let space = find_msg(&orig, ds, 0x01);
    let mut b = orig.clone();
    put64(&mut b, space + 8, 1 << 40);
    cases.push((
        "2^40 rows claimed",
        b.clone(),
        "storage holds 4096 bytes but shape",
    ));
    let layout = find_msg(&orig, ds, 0x08);
    let mut b = orig.clone();
    put64(&mut b, layout + 2, 1 << 50);
    cases.push(("data address past the end", b, "but the file has"));

    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, bytes, expect)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("in{i}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("tf_model.h5"), &bytes).unwrap();
        std::fs::copy(forms("h5_disc/config.json"), dir.join("config.json")).unwrap();
        let out = tmp.path().join(format!("out{i}"));
        let assert = crate::cli()
            .args(["convert", "--model", "discriminator", "-o"])
            .arg(&out)
            .arg(&dir)
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_lowercase();
        assert!(
            stderr.contains(&expect.to_lowercase()),
            "{what}: expected `{expect}` in: {stderr}"
        );
        assert!(!out.exists(), "{what}: output left behind");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!("out{i}")) || n.starts_with(".out"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
}

/// Shards that do not hold what the index lists, and index names that leave the directory.
#[test]
fn sharded_index_mismatches_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sharded");
    std::fs::create_dir(&dir).unwrap();
    for f in [
        "tf_model-00001-of-00002.h5",
        "tf_model-00002-of-00002.h5",
        "config.json",
    ] {
        std::fs::copy(forms("h5_sharded").join(f), dir.join(f)).unwrap();
    }
    let index = std::fs::read_to_string(forms("h5_sharded/tf_model.h5.index.json")).unwrap();
    let cases = [
        (
            index.replacen("tf_model-00002-of-00002.h5", "../x.h5", 1),
            "not a file name beside the index",
        ),
        (
            index.replace("tf_model-00002-of-00002.h5", "tf_model-00001-of-00002.h5"),
            "do not hold the weights the index lists",
        ),
        ("[1, 2]".to_owned(), "weight_map"),
    ];
    for (i, (text, expect)) in cases.into_iter().enumerate() {
        std::fs::write(dir.join("tf_model.h5.index.json"), text).unwrap();
        let out = tmp.path().join(format!("out{i}"));
        crate::cli()
            .args(["convert", "--model", "discriminator", "-o"])
            .arg(&out)
            .arg(&dir)
            .assert()
            .code(1)
            .stderr(predicate::str::contains(expect));
        assert!(!out.exists());
    }
}

/// `export --checkpoint` rewrites google-research/electra's layout; a transformers upload is
/// refused with the way round.
#[test]
fn export_checkpoint_refuses_transformers_uploads() {
    let tmp = tempfile::tempdir().unwrap();
    for input in ["h5_disc", "safetensors_tf"] {
        let out = tmp.path().join(input).join("x");
        crate::cli()
            .args(["export", "--checkpoint"])
            .arg(forms(input))
            .arg("-o")
            .arg(&out)
            .assert()
            .code(1)
            .stderr(predicate::str::contains("convert it first"));
        assert!(!tmp.path().join(input).exists());
    }
}

/// `batch` jobs take the same inputs (one `convert()` each).
#[test]
fn batch_jobs_take_h5_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("m.json");
    let jobs = serde_json::json!({"jobs": [
        {"name": "sharded", "checkpoint": forms("h5_sharded"), "model": "discriminator",
         "output": tmp.path().join("disc"), "verify": true},
        {"name": "gen", "checkpoint": forms("h5_gen/tf_model.h5"), "model": "generator",
         "output": tmp.path().join("gen")},
    ]});
    std::fs::write(&manifest, jobs.to_string()).unwrap();
    crate::cli().arg("batch").arg(&manifest).assert().success();
    for (out, want) in [
        ("disc", "h5_disc/expected/discriminator"),
        ("gen", "h5_gen/expected/generator"),
    ] {
        assert!(
            std::fs::read(tmp.path().join(out).join("model.safetensors")).unwrap()
                == std::fs::read(forms(want).join("model.safetensors")).unwrap(),
            "{out}"
        );
    }
}

/// A hub directory with both PyTorch `model.safetensors` and `tf_model.h5` stays a HuggingFace
/// model directory for `inspect` and `map`; `convert` reads its `tf_model.h5`.
#[test]
fn a_directory_with_pytorch_weights_too_is_a_model_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("both");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(forms("h5_disc/tf_model.h5"), dir.join("tf_model.h5")).unwrap();
    for f in ["model.safetensors", "config.json"] {
        std::fs::copy(forms("h5_disc/expected/discriminator").join(f), dir.join(f)).unwrap();
    }
    crate::cli()
        .arg("inspect")
        .arg(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("form:").not());
    let out = tmp.path().join("out");
    crate::cli()
        .args(["convert", "--model", "discriminator", "-o"])
        .arg(&out)
        .arg(&dir)
        .assert()
        .success();
    assert!(
        std::fs::read(out.join("model.safetensors")).unwrap()
            == std::fs::read(dir.join("model.safetensors")).unwrap()
    );
}
