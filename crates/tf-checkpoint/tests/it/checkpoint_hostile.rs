//! Hostile inputs: damaged copies of real fixtures must give specific typed errors, never a
//! panic, and a randomised mutation run must never panic or return wrong bytes.

use crate::checkpoint_support;

use std::path::Path;

use checkpoint_support::*;
use tf_checkpoint::sstable::{parse_footer, BlockHandle, TableError};
use tf_checkpoint::testing::{build_bundle, TensorSpec};
use tf_checkpoint::{crc_mask, Checkpoint, CheckpointError};

fn open_err(path: &Path) -> CheckpointError {
    match Checkpoint::open(path) {
        Ok(_) => panic!("{path:?} opened"),
        Err(e) => e,
    }
}

fn with_index(
    fixture: &str,
    edit: impl FnOnce(&mut Vec<u8>),
) -> (tempfile::TempDir, CheckpointError) {
    let copy = copy_fixture(&fixtures().join(fixture));
    let index = copy.path().join("ckpt.index");
    let mut bytes = std::fs::read(&index).unwrap();
    edit(&mut bytes);
    std::fs::write(&index, bytes).unwrap();
    let err = open_err(&copy.path().join("ckpt"));
    (copy, err)
}

fn table_error(err: &CheckpointError) -> &TableError {
    match err {
        CheckpointError::Index { error, .. } => error,
        other => panic!("expected an index error, got {other:?}"),
    }
}

#[test]
fn empty_index() {
    let (_t, err) = with_index("format/basic", |b| b.clear());
    assert_eq!(table_error(&err), &TableError::TooShort { len: 0 });
    assert!(err.to_string().contains("ckpt.index"), "{err}");
}

#[test]
fn truncated_index() {
    // Cut inside the footer: the magic is gone.
    let (_t, err) = with_index("format/basic", |b| b.truncate(b.len() - 5));
    assert!(
        matches!(table_error(&err), TableError::BadMagic { .. }),
        "{err}"
    );
    // Cut inside the first data block.
    let (_t, err) = with_index("format/basic", |b| b.truncate(40));
    assert!(
        matches!(table_error(&err), TableError::TooShort { len: 40 }),
        "{err}"
    );
    // Cut in the middle of the data blocks: what is left ends in block bytes, not a footer.
    let (_t, err) = with_index("format/basic", |b| b.truncate(200));
    assert!(
        matches!(table_error(&err), TableError::BadMagic { .. }),
        "{err}"
    );
}

#[test]
fn bad_magic() {
    let (_t, err) = with_index("format/strings", |b| {
        let n = b.len();
        b[n - 1] = 0;
    });
    assert!(matches!(table_error(&err), TableError::BadMagic { .. }));
    assert!(err.to_string().contains("not a TF V2 .index"), "{err}");
}

#[test]
fn flipped_byte_in_a_block_is_a_checksum_error() {
    let (_t, err) = with_index("format/basic", |b| b[25] ^= 0x10);
    assert!(
        matches!(
            table_error(&err),
            TableError::BlockChecksum { offset: 0, .. }
        ),
        "{err}"
    );
    // Also in the index block (found through the footer).
    let (_t, err) = with_index("format/basic", |b| {
        let footer = parse_footer(b).unwrap();
        b[footer.index.offset as usize + 1] ^= 0x01;
    });
    assert!(
        matches!(table_error(&err), TableError::BlockChecksum { .. }),
        "{err}"
    );
}

#[test]
fn footer_handle_out_of_range() {
    let (_t, err) = with_index("format/tiny", |b| {
        let at = b.len() - 48 + 2; // index handle offset byte (54)
        b[at] = 0x7f;
    });
    assert!(
        matches!(table_error(&err), TableError::BlockOutOfRange { .. }),
        "{err}"
    );
}

#[test]
fn flipped_byte_in_tensor_data_names_the_tensor() {
    let copy = copy_fixture(&fixtures().join("format/tiny"));
    let data = copy.path().join("ckpt.data-00000-of-00001");
    std::fs::write(&data, [0x00, 0x00, 0x80, 0x3e]).unwrap();
    let ckpt = Checkpoint::open(&copy.path().join("ckpt")).unwrap();
    let err = ckpt.read_bytes("x").unwrap_err();
    match &err {
        CheckpointError::TensorChecksum { tensor, offset, .. } => {
            assert_eq!((tensor.as_str(), *offset), ("x", 0))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("ckpt.data-00000-of-00001"),
        "{err}"
    );
}

#[test]
fn truncated_and_missing_shards() {
    let copy = copy_fixture(&fixtures().join("format/basic"));
    let data = copy.path().join("ckpt.data-00000-of-00001");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::write(&data, vec![0u8; len as usize - 1]).unwrap();
    match open_err(&copy.path().join("ckpt")) {
        CheckpointError::ShardTooShort {
            needed, len: got, ..
        } => {
            assert_eq!((needed, got), (len, len - 1))
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_file(&data).unwrap();
    assert!(matches!(
        open_err(&copy.path().join("ckpt")),
        CheckpointError::ShardMissing { .. }
    ));
    // Lazy checks too: open the index alone, then read.
    let ckpt = Checkpoint::open_prefix(&copy.path().join("ckpt")).unwrap();
    assert!(matches!(
        ckpt.check_shards(),
        Err(CheckpointError::ShardMissing { .. })
    ));
    assert!(matches!(
        ckpt.read_bytes("i32"),
        Err(CheckpointError::ShardMissing { .. })
    ));
}

#[test]
fn state_file_naming_a_missing_prefix() {
    let copy = copy_fixture(&fixtures().join("electra/finetuned"));
    std::fs::write(
        copy.path().join("checkpoint"),
        "model_checkpoint_path: \"model.ckpt-9999\"\n",
    )
    .unwrap();
    match open_err(copy.path()) {
        CheckpointError::StateFileMissingPrefix { prefix, .. } => {
            assert!(prefix.ends_with("model.ckpt-9999"))
        }
        other => panic!("{other:?}"),
    }
    // An absolute path from another machine: the message points at the local copy.
    std::fs::write(
        copy.path().join("checkpoint"),
        "model_checkpoint_path: \"/elsewhere/run/model.ckpt-2000\"\n",
    )
    .unwrap();
    let err = open_err(copy.path());
    assert!(
        err.to_string()
            .contains("model.ckpt-2000 exists in the directory"),
        "{err}"
    );
    std::fs::write(copy.path().join("checkpoint"), "garbage line\n").unwrap();
    assert!(matches!(
        open_err(copy.path()),
        CheckpointError::StateFileSyntax { line: 1, .. }
    ));
}

#[test]
fn directory_with_several_checkpoints() {
    let copy = copy_fixture(&fixtures().join("format/tiny"));
    for f in ["ckpt.index", "ckpt.data-00000-of-00001"] {
        std::fs::copy(
            copy.path().join(f),
            copy.path().join(f.replace("ckpt", "other")),
        )
        .unwrap();
    }
    match open_err(copy.path()) {
        CheckpointError::SeveralCheckpoints { candidates, .. } => assert_eq!(candidates.len(), 2),
        other => panic!("{other:?}"),
    }
}

fn f32_spec(name: &str, shape: &[i64], data: Vec<u8>) -> TensorSpec {
    TensorSpec {
        name: name.into(),
        dtype: 1,
        shape: shape.to_vec(),
        data,
        crc: None,
    }
}

#[test]
fn entry_pointing_past_its_shard_and_absurd_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("ckpt");
    let (index, data) = build_bundle(&[f32_spec("w", &[4], vec![0; 16])], false);
    std::fs::write(tmp.path().join("ckpt.index"), &index).unwrap();
    std::fs::write(tmp.path().join("ckpt.data-00000-of-00001"), &data[..8]).unwrap();
    match open_err(&prefix) {
        CheckpointError::ShardTooShort {
            tensor,
            needed: 16,
            len: 8,
            ..
        } => assert_eq!(tensor, "w"),
        other => panic!("{other:?}"),
    }
    // A shape whose element count overflows, or that disagrees with the stored size.
    for shape in [
        vec![i64::MAX, 4],
        vec![1 << 31, 1 << 31, 1 << 31],
        vec![1_000_000_000_000],
    ] {
        let (index, _) = build_bundle(&[f32_spec("w", &shape, vec![0; 16])], false);
        std::fs::write(tmp.path().join("ckpt.index"), &index).unwrap();
        std::fs::write(tmp.path().join("ckpt.data-00000-of-00001"), &data).unwrap();
        assert!(
            matches!(open_err(&prefix), CheckpointError::BadEntry { .. }),
            "{shape:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Property-style run: random mutations of real fixtures.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every block handle of an index (data blocks, metaindex, index), from the pristine file.
fn block_handles(index: &[u8]) -> Vec<BlockHandle> {
    use tf_checkpoint::sstable::{parse_block, read_block};
    let footer = parse_footer(index).unwrap();
    let mut handles = vec![footer.metaindex, footer.index];
    let block = read_block(index, footer.index, "index").unwrap();
    for (_, value) in parse_block(&block, footer.index.offset).unwrap() {
        let mut pos = 0;
        handles.push(BlockHandle::decode(&value, &mut pos).unwrap());
    }
    handles
}

/// Recompute every trailer CRC so mutations reach the block and proto parsers.
fn fix_crcs(index: &mut [u8], handles: &[BlockHandle]) {
    for h in handles {
        let (start, end) = (h.offset as usize, (h.offset + h.size) as usize);
        let mut crc = crc32c::crc32c(&index[start..end]);
        crc = crc32c::crc32c_append(crc, &index[end..end + 1]);
        index[end + 1..end + 5].copy_from_slice(&crc_mask(crc).to_le_bytes());
    }
}

fn check_values(ckpt: &Checkpoint, expected: &serde_json::Value) {
    for t in ckpt.tensors() {
        let Some(want) = expected["values"].get(&t.name) else {
            continue;
        };
        let same_kind = want["dtype"] == t.dtype.tf_name()
            && want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .eq(t.shape.iter().copied());
        if let Some(strings) = want.get("strings_hex") {
            if let Ok(got) = ckpt.read_strings(&t.name) {
                if same_kind {
                    let w: Vec<Vec<u8>> = strings
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| unhex(s.as_str().unwrap()))
                        .collect();
                    assert_eq!(got, w, "{}", t.name);
                }
            }
        } else if let Ok(got) = ckpt.read_bytes(&t.name) {
            if same_kind {
                assert_eq!(
                    got.as_ref(),
                    unhex(want["hex"].as_str().unwrap()).as_slice(),
                    "{}",
                    t.name
                );
            }
        }
    }
}

#[test]
fn random_mutations_never_panic_or_lie() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let names = [
        "tiny",
        "basic",
        "strings",
        "partitioned",
        "multishard",
        "half",
    ];
    // One working copy per fixture; each round damages one file and restores it afterwards.
    let copies: Vec<_> = names
        .iter()
        .map(|n| {
            let src = fixtures().join("format").join(n);
            (copy_fixture(&src), read_json(&src.join("expected.json")))
        })
        .collect();
    let mut opened = 0;
    for round in 0..300 {
        let name = names[round % names.len()];
        let (tmp, expected) = &copies[round % names.len()];
        let index_path = tmp.path().join("ckpt.index");
        let pristine = std::fs::read(&index_path).unwrap();
        let handles = block_handles(&pristine);
        // Pick a file: mostly the index, sometimes a data shard.
        let shards: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_str().unwrap().contains(".data-"))
            .collect();
        let target = if rng.below(3) == 0 {
            shards[rng.below(shards.len())].clone()
        } else {
            index_path.clone()
        };
        let mut bytes = std::fs::read(&target).unwrap();
        match rng.below(4) {
            0 if !bytes.is_empty() => {
                let cut = rng.below(bytes.len());
                bytes.truncate(cut);
            }
            _ => {
                for _ in 0..1 + rng.below(3) {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
            }
        }
        if target == index_path && bytes.len() == pristine.len() && rng.below(2) == 0 {
            fix_crcs(&mut bytes, &handles);
        }
        let original = std::fs::read(&target).unwrap();
        std::fs::write(&target, &bytes).unwrap();
        let result = std::panic::catch_unwind(|| {
            if let Ok(ckpt) = Checkpoint::open(&tmp.path().join("ckpt")) {
                check_values(&ckpt, expected);
                true
            } else {
                false
            }
        });
        match result {
            Ok(ok) => opened += usize::from(ok),
            Err(_) => panic!("round {round}: panic on mutated {name} ({target:?})"),
        }
        std::fs::write(&target, original).unwrap();
    }
    assert!(opened > 0, "no mutated checkpoint opened at all");
}
