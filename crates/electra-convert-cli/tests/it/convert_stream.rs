//! The streamed copy path of `convert` on a tensor larger than one copy chunk: the output is
//! exact, and a corrupted byte found only by the checksum at the end of the tensor (after most
//! of it was already written) still fails the conversion and leaves nothing behind.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use safetensors::SafeTensors;
use tf_checkpoint::testing::{build_bundle, TensorSpec};
use tf_checkpoint::{with_suffix, Checkpoint};

const WORDS: &str = "electra/embeddings/word_embeddings";
/// Rows of the enlarged vocabulary: 12288 × 64 f32 = 3 MiB, three copy chunks.
const VOCAB: u64 = 12288;

fn fixture() -> PathBuf {
    crate::repo_root().join("fixtures/electra/released")
}

/// The `released` fixture re-bundled with its vocabulary enlarged to `VOCAB` rows (extra rows
/// of deterministic values), so the word embeddings span several copy chunks. Returns the prefix
/// and the offset of the word embeddings in the data file.
fn big_vocab_checkpoint(dir: &Path) -> (PathBuf, u64) {
    let ckpt = Checkpoint::open(&fixture()).unwrap();
    let vocab = ckpt.get(WORDS).unwrap().shape[0];
    let mut specs = Vec::new();
    for info in ckpt.tensors() {
        let mut shape: Vec<u64> = info.shape.clone();
        let mut data = ckpt.read_bytes(&info.name).unwrap().into_owned();
        let vocab_sized =
            info.name.ends_with("word_embeddings") || info.name.ends_with("output_bias");
        if vocab_sized && shape.first() == Some(&vocab) {
            let row: u64 = shape[1..].iter().product::<u64>() * 4;
            for i in 0..(VOCAB - vocab) * row / 4 {
                data.extend_from_slice(&((i % 1000) as f32 * 1e-3 - 0.5).to_le_bytes());
            }
            shape[0] = VOCAB;
        }
        specs.push(TensorSpec {
            name: info.name.as_bytes().to_vec(),
            dtype: info.dtype.to_proto(),
            shape: shape.iter().map(|&d| d as i64).collect(),
            data,
            crc: None,
        });
    }
    // build_bundle stores tensors in name order, back to back.
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    let offset: u64 = specs
        .iter()
        .take_while(|s| s.name != WORDS.as_bytes())
        .map(|s| s.data.len() as u64)
        .sum();
    let (index, data) = build_bundle(&specs, false);
    let prefix = dir.join("model.ckpt-1");
    std::fs::write(with_suffix(&prefix, ".index"), index).unwrap();
    std::fs::write(with_suffix(&prefix, ".data-00000-of-00001"), data).unwrap();
    (prefix, offset)
}

fn convert(prefix: &Path, out: &Path) -> assert_cmd::assert::Assert {
    Command::cargo_bin("electra-convert")
        .unwrap()
        .args(["--model", "discriminator", "-q"])
        .arg(prefix)
        .arg("-o")
        .arg(out)
        .assert()
}

#[test]
fn big_copied_tensor_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (prefix, _) = big_vocab_checkpoint(tmp.path());
    let out = tmp.path().join("out");
    convert(&prefix, &out).success();
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let words = st
        .tensor("electra.embeddings.word_embeddings.weight")
        .unwrap();
    assert_eq!(words.shape(), [VOCAB as usize, 64]);
    let ckpt = Checkpoint::open(&prefix).unwrap();
    assert!(words.data() == &ckpt.read_bytes(WORDS).unwrap()[..]);
}

#[test]
fn corrupt_byte_late_in_a_big_copied_tensor_fails_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (prefix, offset) = big_vocab_checkpoint(tmp.path());
    let shard = with_suffix(&prefix, ".data-00000-of-00001");
    let mut data = std::fs::read(&shard).unwrap();
    // In the last of the three chunks: two chunks are written before the checksum is known.
    let at = (offset + 3 * (1 << 20) - 100) as usize;
    data[at] ^= 0x01;
    std::fs::write(&shard, data).unwrap();

    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("out");
    convert(&prefix, &out)
        .failure()
        .code(1)
        .stderr(predicate::str::contains(WORDS).and(predicate::str::contains("checksum mismatch")));
    assert!(!out.exists());
    assert!(
        std::fs::read_dir(&work).unwrap().next().is_none(),
        "leftovers in {}",
        work.display()
    );

    // Over an existing directory with --force: the old contents survive untouched.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "old").unwrap();
    Command::cargo_bin("electra-convert")
        .unwrap()
        .args(["--model", "discriminator", "-q", "--force"])
        .arg(&prefix)
        .arg("-o")
        .arg(&out)
        .assert()
        .failure()
        .code(1);
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "old"
    );
    let names: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["out"]);
}
