//! Regression tests for what the cargo-fuzz targets in `fuzz/` found. Each test is named after
//! the behaviour it pins down; `fuzz/README.md` lists the run that found it.

use tf_checkpoint::testing::{build_bundle, TensorSpec};
use tf_checkpoint::{Checkpoint, CheckpointError};

fn f32_tensor(name: &[u8], shape: &[i64]) -> TensorSpec {
    let n: i64 = shape.iter().product();
    TensorSpec {
        name: name.to_vec(),
        dtype: 1,
        shape: shape.to_vec(),
        data: (0..n * 4).map(|i| i as u8).collect(),
        crc: None,
    }
}

/// Found by the `index` target (mode 2): three slice keys of a damaged partitioned variable
/// were listed as ordinary tensors; their names are not UTF-8 and all printed the same, so
/// `read_bytes(name)` of the second one returned the first one's 64 bytes for a 48-byte shape.
#[test]
fn index_keys_with_the_same_lossy_name_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("ckpt");
    let (index, data) = build_bundle(
        &[
            f32_tensor(b"w\xfe", &[4, 4]),
            f32_tensor(b"w\xff", &[3, 4]),
            f32_tensor(b"ok", &[2]),
        ],
        false,
    );
    std::fs::write(tmp.path().join("ckpt.index"), index).unwrap();
    std::fs::write(tmp.path().join("ckpt.data-00000-of-00001"), data).unwrap();
    let err = Checkpoint::open(&prefix).expect_err("ambiguous names must not open");
    match &err {
        CheckpointError::BadEntry { tensor, reason, .. } => {
            assert_eq!(tensor, "w\u{fffd}");
            assert!(
                reason.contains("77fe") && reason.contains("77ff"),
                "{reason}"
            );
        }
        other => panic!("expected BadEntry, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("ckpt.index"), "{message}");
    assert!(message.contains("cannot be told apart"), "{message}");
}

/// The fix only refuses collisions: a single non-UTF-8 key is still listed and readable.
#[test]
fn a_single_non_utf8_key_is_still_listed_and_read() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("ckpt");
    let (index, data) = build_bundle(
        &[f32_tensor(b"w\xff", &[3, 4]), f32_tensor(b"ok", &[2])],
        false,
    );
    std::fs::write(tmp.path().join("ckpt.index"), index).unwrap();
    std::fs::write(tmp.path().join("ckpt.data-00000-of-00001"), data).unwrap();
    let ckpt = Checkpoint::open(&prefix).unwrap();
    assert_eq!(ckpt.tensors().len(), 2);
    let bytes = ckpt.read_bytes("w\u{fffd}").unwrap();
    assert_eq!(bytes.len(), 48);
}

/// Found by the `index` target (mode 2, after ~210 s): keys are stored in byte order, but a
/// non-UTF-8 key is listed under its lossy name (with U+FFFD), which can sort after a name
/// whose key came later, so `tensors()` was not sorted by name as documented.
#[test]
fn lossy_names_are_listed_in_name_order() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("ckpt");
    // Byte order: "a\x80" < "a\xc3\xa9" ("aé"); name order: "aé" < "a\u{fffd}".
    let (index, data) = build_bundle(
        &[
            f32_tensor(b"a\x80", &[2]),
            f32_tensor("aé".as_bytes(), &[3]),
        ],
        false,
    );
    std::fs::write(tmp.path().join("ckpt.index"), index).unwrap();
    std::fs::write(tmp.path().join("ckpt.data-00000-of-00001"), data).unwrap();
    let ckpt = Checkpoint::open(&prefix).unwrap();
    let names: Vec<&str> = ckpt.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["aé", "a\u{fffd}"]);
    // Lookups still reach the right tensor after the reordering.
    assert_eq!(ckpt.read_bytes("aé").unwrap().len(), 12);
    assert_eq!(ckpt.read_bytes("a\u{fffd}").unwrap().len(), 8);
}
