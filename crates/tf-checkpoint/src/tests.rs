//! Unit tests of `Checkpoint` on bundles built by the test-only writer: big-endian data,
//! strings, undecodable dtypes, partitioned variables and index-level validation.

use std::path::Path;

use super::testing::{
    build_bundle, build_index, entry_proto, header_proto, masked_crc, slice, string_tensor_data,
    EntrySpec, TensorSpec,
};
use super::*;

fn write(dir: &Path, index: &[u8], data: &[u8]) -> PathBuf {
    crate::testing::write_single_shard(dir, index, data).unwrap()
}

fn spec(name: &str, dtype: DType, shape: &[i64], data: Vec<u8>) -> TensorSpec {
    crate::testing::tensor(name, dtype, shape, data)
}

#[test]
fn big_endian_bundle_is_swapped_after_the_crc_check() {
    let tmp = tempfile::tempdir().unwrap();
    let f32s = [1.5f32, -2.0, 3.25];
    let be_f32: Vec<u8> = f32s.iter().flat_map(|v| v.to_be_bytes()).collect();
    let be_i64: Vec<u8> = 1234567i64.to_be_bytes().to_vec();
    let be_c64: Vec<u8> = [1.0f32, -1.0]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let be_f16: Vec<u8> = half::f16::from_f32(0.5).to_be_bytes().to_vec();
    let (strings, string_crc) = string_tensor_data(&[b"ab", b"", b"xyz"], true);
    let tensors = vec![
        spec("f", DType::Float32, &[3], be_f32),
        spec("step", DType::Int64, &[], be_i64),
        spec("c", DType::Complex64, &[1], be_c64),
        spec("h", DType::Float16, &[1], be_f16),
        spec("u8", DType::UInt8, &[2], vec![7, 9]),
        TensorSpec {
            crc: Some(string_crc),
            ..spec("s", DType::String, &[3], strings)
        },
    ];
    let (index, data) = build_bundle(&tensors, true);
    let prefix = write(tmp.path(), &index, &data);
    let ckpt = Checkpoint::open(&prefix).unwrap();
    assert_eq!(ckpt.header().endianness, Endianness::Big);
    assert_eq!(ckpt.read_f32("f").unwrap(), f32s);
    let le: Vec<u8> = f32s.iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(ckpt.read_bytes("f").unwrap().as_ref(), le.as_slice());
    assert_eq!(ckpt.read_i64_scalar("step").unwrap(), 1234567);
    let c: Vec<u8> = [1.0f32, -1.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(ckpt.read_bytes("c").unwrap().as_ref(), c.as_slice());
    assert_eq!(ckpt.read_f32("h").unwrap(), [0.5]);
    assert_eq!(ckpt.read_bytes("u8").unwrap().as_ref(), &[7, 9]);
    assert!(matches!(ckpt.read_bytes("u8").unwrap(), Cow::Borrowed(_)));
    assert_eq!(
        ckpt.read_strings("s").unwrap(),
        [b"ab".to_vec(), Vec::new(), b"xyz".to_vec()]
    );
}

#[test]
fn little_endian_reads_borrow_from_the_map() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let (index, bytes) = build_bundle(&[spec("w", DType::Float32, &[2], data.clone())], false);
    let ckpt = Checkpoint::open(&write(tmp.path(), &index, &bytes)).unwrap();
    let got = ckpt.read_bytes("w").unwrap();
    assert!(matches!(got, Cow::Borrowed(_)));
    assert_eq!(got.as_ref(), data.as_slice());
}

#[test]
fn string_checksums_are_verified() {
    let tmp = tempfile::tempdir().unwrap();
    // The spec's example: ["hello", "", "x01"] -> 05 00 03 | c1 66 ac 13 | hello x01.
    let (data, crc) = string_tensor_data(&[b"hello", b"", b"x01"], false);
    assert_eq!(&data[..7], &[0x05, 0x00, 0x03, 0xc1, 0x66, 0xac, 0x13]);
    let mut bad_len = data.clone();
    bad_len[4] ^= 1; // length checksum
    let mut bad_body = data.clone();
    *bad_body.last_mut().unwrap() ^= 1;
    let tensors = [
        TensorSpec {
            crc: Some(crc),
            ..spec("good", DType::String, &[3], data)
        },
        TensorSpec {
            crc: Some(crc),
            ..spec("len", DType::String, &[3], bad_len)
        },
        TensorSpec {
            crc: Some(crc),
            ..spec("body", DType::String, &[3], bad_body)
        },
    ];
    let (index, bytes) = build_bundle(&tensors, false);
    let ckpt = Checkpoint::open(&write(tmp.path(), &index, &bytes)).unwrap();
    assert_eq!(ckpt.read_strings("good").unwrap()[0], b"hello");
    assert!(matches!(
        ckpt.read_strings("len"),
        Err(CheckpointError::BadStringData { .. })
    ));
    match ckpt.read_strings("body") {
        Err(CheckpointError::TensorChecksum { tensor, .. }) => assert_eq!(tensor, "body"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ckpt.read_bytes("good"),
        Err(CheckpointError::WrongDtype { .. })
    ));
}

#[test]
fn other_dtypes_are_listed_but_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let tensors = [
        spec("f8", DType::Other(24), &[4], vec![1, 2, 3, 4]),
        spec("q", DType::Other(11), &[2], vec![1, 2]),
    ];
    let (index, bytes) = build_bundle(&tensors, false);
    let ckpt = Checkpoint::open(&write(tmp.path(), &index, &bytes)).unwrap();
    assert_eq!(ckpt.get("f8").unwrap().dtype.tf_name(), "float8_e5m2");
    assert_eq!(ckpt.get("q").unwrap().dtype.tf_name(), "qint8");
    assert_eq!(ckpt.get("f8").unwrap().num_bytes(), None);
    let err = ckpt.read_bytes("f8").unwrap_err();
    assert!(matches!(err, CheckpointError::UnsupportedDtype { .. }));
    assert!(err.to_string().contains("float8_e5m2"), "{err}");
}

/// Build an index by hand from `(key, EntrySpec)` pairs.
fn raw_index(num_shards: i32, entries: &[(&[u8], EntrySpec)]) -> Vec<u8> {
    let mut all = vec![(Vec::new(), header_proto(num_shards, false))];
    for (key, e) in entries {
        all.push((key.to_vec(), entry_proto(e)));
    }
    build_index(&all, 2)
}

#[test]
fn partitioned_columns_are_assembled_and_slice_keys_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    // Full [2,3] int32 split into columns [0,1) and [1,3).
    let left: Vec<u8> = [1i32, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    let right: Vec<u8> = [2i32, 3, 5, 6]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let s_left = slice(&[None, Some((0, 1))]);
    let s_right = slice(&[None, Some((1, 2))]);
    let k_left = slices::encode_slice_key(b"m", &s_left);
    let k_right = slices::encode_slice_key(b"m", &s_right);
    let mut data = left.clone();
    data.extend_from_slice(&right);
    let full = EntrySpec {
        dtype: 3,
        shape: vec![2, 3],
        slices: vec![s_left, s_right],
        ..Default::default()
    };
    let part = |shape: Vec<i64>, offset: i64, bytes: &[u8]| EntrySpec {
        dtype: 3,
        shape,
        offset,
        size: bytes.len() as i64,
        crc32c: masked_crc(bytes),
        ..Default::default()
    };
    let mut entries: Vec<(&[u8], EntrySpec)> = vec![
        (&k_left, part(vec![2, 1], 0, &left)),
        (&k_right, part(vec![2, 2], 8, &right)),
        (b"m", full),
    ];
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let prefix = write(tmp.path(), &raw_index(1, &entries), &data);
    let ckpt = Checkpoint::open(&prefix).unwrap();
    assert_eq!(ckpt.tensors().len(), 1);
    let want: Vec<u8> = [1i32, 2, 3, 4, 5, 6]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(ckpt.read_bytes("m").unwrap().as_ref(), want.as_slice());

    // Drop one slice entry: the full-tensor entry now names a slice that is not there.
    let missing: Vec<(&[u8], EntrySpec)> = entries
        .iter()
        .filter(|(k, _)| *k != k_right.as_slice())
        .cloned()
        .collect();
    std::fs::write(with_suffix(&prefix, ".index"), raw_index(1, &missing)).unwrap();
    let err = Checkpoint::open(&prefix).unwrap_err();
    assert!(matches!(err, CheckpointError::BadEntry { .. }), "{err}");
}

#[test]
fn index_validation_rejects_bad_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("ckpt");
    std::fs::write(with_suffix(&prefix, ".data-00000-of-00001"), [0u8; 16]).unwrap();
    let ok = EntrySpec {
        dtype: 1,
        shape: vec![4],
        size: 16,
        crc32c: masked_crc(&[0u8; 16]),
        ..Default::default()
    };
    let cases: Vec<(&str, i32, EntrySpec)> = vec![
        (
            "size mismatch",
            1,
            EntrySpec {
                size: 12,
                ..ok.clone()
            },
        ),
        (
            "negative dim",
            1,
            EntrySpec {
                shape: vec![-1],
                ..ok.clone()
            },
        ),
        (
            "huge shape",
            1,
            EntrySpec {
                shape: vec![1 << 40, 1 << 40],
                ..ok.clone()
            },
        ),
        (
            "too many dims",
            1,
            EntrySpec {
                shape: vec![1; 255],
                size: 4,
                ..ok.clone()
            },
        ),
        (
            "shard id",
            1,
            EntrySpec {
                shard_id: 3,
                ..ok.clone()
            },
        ),
        (
            "negative offset",
            1,
            EntrySpec {
                offset: -5,
                ..ok.clone()
            },
        ),
        (
            "offset overflow",
            1,
            EntrySpec {
                offset: i64::MAX,
                ..ok.clone()
            },
        ),
        (
            "string too small",
            1,
            EntrySpec {
                dtype: 7,
                shape: vec![100],
                size: 16,
                ..ok.clone()
            },
        ),
    ];
    for (what, shards, e) in cases {
        std::fs::write(
            with_suffix(&prefix, ".index"),
            raw_index(shards, &[(b"t", e)]),
        )
        .unwrap();
        match Checkpoint::open(&prefix) {
            Err(CheckpointError::BadEntry { tensor, .. }) => assert_eq!(tensor, "t", "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // Header problems.
    for (what, header) in [
        ("zero shards", header_proto(0, false)),
        ("newer format", vec![0x08, 0x01, 0x1a, 0x02, 0x10, 0x05]),
        ("bad consumer", vec![0x08, 0x01, 0x1a, 0x02, 0x18, 0x01]),
        ("bad endianness", vec![0x08, 0x01, 0x10, 0x07]),
    ] {
        let index = build_index(&[(Vec::new(), header)], 2);
        std::fs::write(with_suffix(&prefix, ".index"), index).unwrap();
        assert!(
            matches!(
                Checkpoint::open(&prefix),
                Err(CheckpointError::BadHeader { .. })
            ),
            "{what}"
        );
    }
    // No header entry at all.
    let index = build_index(&[(b"a".to_vec(), entry_proto(&ok))], 2);
    std::fs::write(with_suffix(&prefix, ".index"), index).unwrap();
    assert!(matches!(
        Checkpoint::open(&prefix),
        Err(CheckpointError::MissingHeader { .. })
    ));
    // A valid one, for contrast; then a short shard.
    std::fs::write(
        with_suffix(&prefix, ".index"),
        raw_index(1, &[(b"t", ok.clone())]),
    )
    .unwrap();
    assert!(Checkpoint::open(&prefix).is_ok());
    std::fs::write(with_suffix(&prefix, ".data-00000-of-00001"), [0u8; 15]).unwrap();
    assert!(matches!(
        Checkpoint::open(&prefix),
        Err(CheckpointError::ShardTooShort {
            needed: 16,
            len: 15,
            ..
        })
    ));
}

#[test]
fn empty_checkpoint_and_zero_size_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let (index, data) = build_bundle(&[spec("z", DType::Float32, &[0, 5], Vec::new())], false);
    let ckpt = Checkpoint::open(&write(tmp.path(), &index, &data)).unwrap();
    assert!(ckpt.read_bytes("z").unwrap().is_empty());
    let (index, data) = build_bundle(&[], false);
    let ckpt = Checkpoint::open(&write(tmp.path(), &index, &data)).unwrap();
    assert!(ckpt.tensors().is_empty());
    assert!(matches!(
        ckpt.read_bytes("nope"),
        Err(CheckpointError::TensorNotFound { .. })
    ));
}

#[test]
fn partitioned_strings_are_listed_but_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let full = EntrySpec {
        dtype: DType::String.to_proto(),
        shape: vec![4],
        slices: vec![slice(&[Some((0, 2))]), slice(&[Some((2, 2))])],
        ..Default::default()
    };
    let prefix = write(tmp.path(), &raw_index(1, &[(b"s", full)]), &[]);
    let ckpt = Checkpoint::open(&prefix).unwrap();
    assert_eq!(ckpt.get("s").unwrap().partitions, 2);
    assert!(matches!(
        ckpt.read_strings("s"),
        Err(CheckpointError::BadSlices { .. })
    ));
}

/// A data shard stored as a window of another file (a zip entry stored in place, a cache file)
/// reads exactly as the `.data-*` file does: mapped, streamed, and with its CRCs checked.
#[test]
fn a_shard_read_from_a_window_of_another_file_gives_the_same_tensors() {
    let tmp = tempfile::tempdir().unwrap();
    let values: Vec<u8> = (0..24u32)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    let (index, data) = build_bundle(
        &[
            spec("a", DType::Float32, &[4, 6], values.clone()),
            spec("b", DType::Float32, &[2], 7f32.to_le_bytes().repeat(2)),
        ],
        false,
    );
    let prefix = write(tmp.path(), &index, &data);
    let plain = Checkpoint::open(&prefix).unwrap();
    let expected: Vec<Vec<u8>> = ["a", "b"]
        .iter()
        .map(|n| plain.read_bytes(n).unwrap().to_vec())
        .collect();

    // The shard's bytes 1000 bytes into a larger file, with junk on both sides.
    let container = tmp.path().join("container.bin");
    let mut bytes = vec![0xAB; 1000];
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&[0xCD; 77]);
    std::fs::write(&container, &bytes).unwrap();
    std::fs::remove_file(with_suffix(&prefix, ".data-00000-of-00001")).unwrap();
    let windowed = Checkpoint::from_index_bytes(&prefix, &index)
        .unwrap()
        .with_shard_files(vec![ShardFile {
            id: 0,
            path: container.clone(),
            base: 1000,
            len: Some(data.len() as u64),
        }])
        .unwrap();
    for (name, expected) in ["a", "b"].into_iter().zip(&expected) {
        assert_eq!(&windowed.read_bytes(name).unwrap().to_vec(), expected);
        let mut streamed = Vec::new();
        let mut buf = Vec::new();
        windowed
            .read_chunks(name, 7, &mut buf, |chunk: &[u8]| {
                streamed.extend_from_slice(chunk);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(&streamed, expected, "{name} streamed");
    }
    assert_eq!(
        windowed.stored_ranges(["b", "a", "a", "nope"]),
        plain.stored_ranges(["a", "b"])
    );
    assert_eq!(windowed.stored_ranges(["a"]).len(), 1);

    // A window shorter than the index needs is refused when it is given.
    let short = Checkpoint::from_index_bytes(&prefix, &index)
        .unwrap()
        .with_shard_files(vec![ShardFile {
            id: 0,
            path: container.clone(),
            base: 1000,
            len: Some(data.len() as u64 - 1),
        }]);
    assert!(matches!(short, Err(CheckpointError::ShardTooShort { .. })));

    // A flipped byte inside the window fails that tensor's CRC.
    bytes[1000 + 3] ^= 1;
    std::fs::write(&container, &bytes).unwrap();
    let corrupt = Checkpoint::from_index_bytes(&prefix, &index)
        .unwrap()
        .with_shard_files(vec![ShardFile {
            id: 0,
            path: container,
            base: 1000,
            len: None,
        }])
        .unwrap();
    assert!(matches!(
        corrupt.read_bytes("a"),
        Err(CheckpointError::TensorChecksum { .. })
    ));
}
