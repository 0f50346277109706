use std::path::{Path, PathBuf};

use super::*;
use crate::{sstable, Checkpoint};

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("fixtures")
}

/// Rewrite a single-shard TF checkpoint with our writer, adding the tensors in the order their
/// data appears in TF's file (TF appends in `Add` order, which the index's offsets reveal), and
/// return (index, data).
fn rewrite(prefix: &Path, options: TableOptions) -> (Vec<u8>, Vec<u8>) {
    let index_bytes = std::fs::read(crate::with_suffix(prefix, ".index")).unwrap();
    // A zero-size tensor's offset is the position at its `Add`, shared with the next tensor.
    let mut order: Vec<(i64, bool, String)> = sstable::parse_table(&index_bytes)
        .unwrap()
        .into_iter()
        .filter(|e| !e.key.is_empty())
        .map(|e| {
            let entry = proto::decode_entry(&e.value).unwrap();
            assert!(entry.slices.is_empty() && entry.shard_id == 0);
            (
                entry.offset,
                entry.size != 0,
                String::from_utf8(e.key).unwrap(),
            )
        })
        .collect();
    order.sort_by_key(|(offset, nonempty, _)| (*offset, *nonempty));
    let ckpt = Checkpoint::open(prefix).unwrap();
    let mut w = BundleWriter::with_options(Vec::new(), options);
    for (_, _, name) in &order {
        let info = ckpt.get(name).unwrap().clone();
        if info.dtype == DType::String {
            let strings = ckpt.read_strings(name).unwrap();
            let refs: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
            w.add_strings(name, &info.shape, &refs).unwrap();
        } else {
            let bytes = ckpt.read_bytes(name).unwrap();
            // Stream in odd-sized pieces: the result must not depend on them.
            let mut t = w.begin(name, info.dtype, &info.shape).unwrap();
            for piece in bytes.chunks(7) {
                t.write(piece).unwrap();
            }
            t.finish().unwrap();
        }
    }
    let (data, index) = w.finish(Vec::new()).unwrap();
    (index, data)
}

fn shard(prefix: &Path) -> Vec<u8> {
    std::fs::read(crate::with_suffix(prefix, ".data-00000-of-00001")).unwrap()
}

#[test]
fn tiny_is_tensorflows_121_bytes() {
    let mut w = BundleWriter::new(Vec::new());
    w.add("x", DType::Float32, &[1], &1.0f32.to_le_bytes())
        .unwrap();
    let (data, index) = w.finish(Vec::new()).unwrap();
    let prefix = fixtures().join("format/tiny/ckpt");
    assert_eq!(index.len(), 121);
    assert_eq!(
        index,
        std::fs::read(crate::with_suffix(&prefix, ".index")).unwrap()
    );
    assert_eq!(data, [0x00, 0x00, 0x80, 0x3f]);
    assert_eq!(data, shard(&prefix));
}

/// Every format fixture TF wrote with one shard and no partitioned variables (all numeric
/// dtypes, scalars, a zero-size tensor, halves, strings) and every ELECTRA fixture TF's Saver
/// wrote: our bytes are TF's bytes, index and data.
#[test]
fn tensorflow_fixtures_are_reproduced_byte_for_byte() {
    let prefixes = [
        "format/basic/ckpt",
        "format/half/ckpt",
        "format/strings/ckpt",
        "format/tiny/ckpt",
        "electra/tied/model.ckpt-1000",
        "electra/released/electra_tiny",
        "electra/untied/model.ckpt-500",
        "electra/finetuned/model.ckpt-2000",
        "electra/bert/bert_model.ckpt",
    ];
    for p in prefixes {
        let prefix = fixtures().join(p);
        let (index, data) = rewrite(&prefix, TableOptions::default());
        if p.starts_with("electra/") {
            // tf.compat.v1.train.Saver saves its variables sorted by name, so a writer that
            // adds in key order gets the Saver's bytes.
            let entries = sstable::parse_table(&index).unwrap();
            let offsets: Vec<i64> = entries[1..]
                .iter()
                .map(|e| proto::decode_entry(&e.value).unwrap().offset)
                .collect();
            assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{p}");
        }
        let tf_index = std::fs::read(crate::with_suffix(&prefix, ".index")).unwrap();
        assert_eq!(data, shard(&prefix), "{p}: data file differs");
        assert_eq!(index, tf_index, "{p}: index differs");
    }
}

#[test]
fn misuse_is_an_error_not_a_bad_file() {
    let mut w = BundleWriter::new(Vec::new());
    w.add("a", DType::Int64, &[], &7i64.to_le_bytes()).unwrap();
    assert!(matches!(
        w.add("a", DType::Int64, &[], &7i64.to_le_bytes()),
        Err(BundleWriteError::Duplicate { .. })
    ));
    assert!(matches!(
        w.add("", DType::Int64, &[], &7i64.to_le_bytes()),
        Err(BundleWriteError::EmptyName { .. })
    ));
    assert!(matches!(
        w.add("b", DType::Float32, &[2], &[0; 4]),
        Err(BundleWriteError::SizeMismatch {
            expected: 8,
            got: 4,
            ..
        })
    ));
    // The failed tensor left bytes behind: the writer refuses to go on.
    assert!(matches!(
        w.add("c", DType::Float32, &[1], &[0; 4]),
        Err(BundleWriteError::Abandoned { .. })
    ));
    let mut w = BundleWriter::new(Vec::new());
    assert!(matches!(
        w.begin("s", DType::String, &[1]),
        Err(BundleWriteError::NotNumeric { .. })
    ));
    assert!(matches!(
        w.begin("big", DType::Float32, &[u64::MAX, 2]),
        Err(BundleWriteError::BadShape { .. })
    ));
    let mut t = w.begin("over", DType::UInt8, &[2]).unwrap();
    assert!(t.write(&[1, 2, 3]).is_err());
}

/// xorshift64: deterministic pseudo-random numbers without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const DTYPES: [DType; 15] = [
    DType::Float32,
    DType::Float64,
    DType::Float16,
    DType::BFloat16,
    DType::Int8,
    DType::Int16,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::UInt16,
    DType::UInt32,
    DType::UInt64,
    DType::Bool,
    DType::Complex64,
    DType::Complex128,
];

enum Value {
    Numeric(Vec<u8>),
    Strings(Vec<Vec<u8>>),
}

/// Random tensor sets — every dtype incl. strings, scalars, zero-size dims, names sharing
/// long prefixes, up to thousands of entries — written with several block sizes (so the index
/// has one to hundreds of data blocks) and read back through `Checkpoint::open`.
#[test]
fn random_bundles_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let cases: [(usize, usize); 6] = [
        (1, 262_144),
        (40, 64),
        (300, 256),
        (700, 4096),
        (9000, 262_144), // long names: more than one default-size block
        (200, 1),
    ];
    for (case, &(count, block_size)) in cases.iter().enumerate() {
        let options = TableOptions {
            block_size,
            restart_interval: 16,
        };
        let stem = "electra/encoder/layer_".to_string() + &"deep/".repeat(30);
        let mut names = std::collections::BTreeSet::new();
        while names.len() < count {
            let name = match rng.below(4) {
                0 => format!("{stem}{}", rng.below(100_000)),
                1 => format!("{stem}{}/adam_m", rng.below(1000)),
                2 => format!("v{}", rng.below(1_000_000)),
                _ => format!(
                    "{stem}{}/{}",
                    rng.below(50),
                    "x".repeat(rng.below(40) as usize)
                ),
            };
            names.insert(name);
        }
        // Add in a shuffled order: the data file follows add order, the index key order.
        let mut order: Vec<String> = names.into_iter().collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut expected = Vec::new();
        let mut w = BundleWriter::with_options(Vec::new(), options);
        for name in &order {
            let rank = rng.below(4) as usize;
            let shape: Vec<u64> = (0..rank)
                .map(|_| {
                    if rng.below(8) == 0 {
                        0
                    } else {
                        rng.below(5) + 1
                    }
                })
                .collect();
            let n: u64 = shape.iter().product();
            if rng.below(10) == 0 {
                let strings: Vec<Vec<u8>> = (0..n)
                    .map(|_| (0..rng.below(200)).map(|_| rng.next() as u8).collect())
                    .collect();
                let refs: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
                w.add_strings(name, &shape, &refs).unwrap();
                expected.push((name.clone(), DType::String, shape, Value::Strings(strings)));
            } else {
                let dtype = DTYPES[rng.below(DTYPES.len() as u64) as usize];
                let len = n as usize * dtype.element_size().unwrap();
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        let b = rng.next() as u8;
                        if dtype == DType::Bool {
                            b & 1
                        } else {
                            b
                        }
                    })
                    .collect();
                w.add(name, dtype, &shape, &bytes).unwrap();
                expected.push((name.clone(), dtype, shape, Value::Numeric(bytes)));
            }
        }
        let (data, index) = w.finish(Vec::new()).unwrap();
        let dir = tmp.path().join(format!("case{case}"));
        std::fs::create_dir(&dir).unwrap();
        let prefix = crate::testing::write_single_shard(&dir, &index, &data).unwrap();
        let blocks = {
            let footer = sstable::parse_footer(&index).unwrap();
            let block = sstable::read_block(&index, footer.index, "index").unwrap();
            sstable::parse_block(&block, footer.index.offset)
                .unwrap()
                .len()
        };
        if case == 4 {
            assert!(blocks > 1, "case {case}: only {blocks} block(s)");
        }
        let ckpt = Checkpoint::open(&prefix).unwrap();
        assert_eq!(ckpt.tensors().len(), expected.len(), "case {case}");
        for (name, dtype, shape, value) in &expected {
            let info = ckpt.get(name).unwrap();
            assert_eq!((&info.dtype, &info.shape), (dtype, shape), "{name}");
            match value {
                Value::Numeric(bytes) => assert_eq!(&ckpt.read_bytes(name).unwrap()[..], bytes),
                Value::Strings(s) => assert_eq!(&ckpt.read_strings(name).unwrap(), s),
            }
        }
    }
}
