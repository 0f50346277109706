//! Fuzz target `index`: a whole checkpoint from one input.
//!
//! Input layout: `[mode][u32 LE n][n bytes of .index][rest = shard contents]`. If `n` exceeds
//! the input, everything after the length is the index and the shards are empty. `mode % 3`:
//!
//! - 0: the index bytes are used as they are;
//! - 1: every block trailer CRC the footer and index block point at is recomputed first, so
//!   that mutations reach the block and protobuf parsers instead of failing the checksum;
//! - 2: as 1, then the entries are decoded, every tensor's entry CRC is recomputed from the
//!   shard bytes it points at, and the index is rebuilt with the test-only writer, so that
//!   mutated entries (shapes, offsets, slices, dtypes) reach the data readers.
//! The shard bytes
//! are written (the same bytes) to every `.data-*` file the parsed index refers to, inside one
//! temporary directory reused across runs; then every listed tensor is read through every
//! typed reader. Besides "no panic", the target asserts what a successful read promises.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use tf_checkpoint::testing::{build_index, entry_proto, masked_crc, EntrySpec};
use tf_checkpoint::{proto, sstable, Checkpoint, DType};
use libfuzzer_sys::fuzz_target;

fn workdir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("electra-fuzz-index-")
            .tempdir()
            .expect("temp dir");
        // Kept for the life of the process (libFuzzer exits without running destructors).
        dir.keep()
    })
}

/// Recompute the trailer CRC of the block at `handle` (if it lies inside the file).
fn fix_trailer(file: &mut [u8], handle: sstable::BlockHandle) {
    let limit = file.len().saturating_sub(sstable::FOOTER_LEN);
    let (Ok(start), Ok(size)) = (usize::try_from(handle.offset), usize::try_from(handle.size))
    else {
        return;
    };
    let Some(end) = start.checked_add(size) else {
        return;
    };
    if end.saturating_add(sstable::TRAILER_LEN) > limit {
        return;
    }
    // The trailer CRC covers the stored bytes plus the type byte.
    let crc = masked_crc(&file[start..=end]);
    file[end + 1..end + 5].copy_from_slice(&crc.to_le_bytes());
}

fn repair_block_crcs(file: &mut [u8]) {
    let Ok(footer) = sstable::parse_footer(file) else {
        return;
    };
    fix_trailer(file, footer.metaindex);
    fix_trailer(file, footer.index);
    let Ok(index_block) = sstable::read_block(file, footer.index, "index") else {
        return;
    };
    let Ok(entries) = sstable::parse_block(&index_block, 0) else {
        return;
    };
    for (_, handle_bytes) in entries {
        let mut pos = 0;
        if let Ok(handle) = sstable::BlockHandle::decode(&handle_bytes, &mut pos) {
            fix_trailer(file, handle);
        }
    }
}

/// Decode the sstable, recompute each plain entry's CRC over the shard bytes it names, rebuild.
fn rebuild_with_entry_crcs(file: &[u8], shard: &[u8], per_block: usize) -> Option<Vec<u8>> {
    let entries = sstable::parse_table(file).ok()?;
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        if i == 0 {
            out.push((entry.key, entry.value));
            continue;
        }
        let Ok(e) = proto::decode_entry(&entry.value) else {
            out.push((entry.key, entry.value));
            continue;
        };
        let range = usize::try_from(e.offset)
            .ok()
            .zip(usize::try_from(e.size).ok())
            .and_then(|(o, s)| Some(o..o.checked_add(s)?))
            .filter(|r| r.end <= shard.len());
        let crc = range.map_or(e.crc32c, |r| masked_crc(&shard[r]));
        let spec = EntrySpec {
            dtype: e.dtype,
            shape: e.shape.dims.clone(),
            shard_id: e.shard_id,
            offset: e.offset,
            size: e.size,
            crc32c: crc,
            slices: e.slices.clone(),
        };
        if e.shape.unknown_rank {
            out.push((entry.key, entry.value));
        } else {
            out.push((entry.key, entry_proto(&spec)));
        }
    }
    Some(build_index(&out, per_block))
}

fn split(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 4 {
        return (data, &[]);
    }
    let n = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let rest = &data[4..];
    if n >= rest.len() {
        (rest, &[])
    } else {
        rest.split_at(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (index, shard) = split(data);
    let mut index = index.to_vec();
    if mode % 3 >= 1 {
        repair_block_crcs(&mut index);
    }
    if mode % 3 == 2 {
        if let Some(rebuilt) = rebuild_with_entry_crcs(&index, shard, 1 + (mode as usize >> 2)) {
            index = rebuilt;
        }
    }
    let index = index.as_slice();
    let prefix = workdir().join("ckpt");
    let Ok(ckpt) = Checkpoint::from_index_bytes(&prefix, index) else {
        return;
    };
    // Fresh shard files for this input (the previous Checkpoint and its maps are gone).
    for path in ckpt.shard_paths() {
        std::fs::write(&path, shard).expect("write shard");
    }
    // May fail (e.g. the other shard of a two-shard seed is too short); reads of tensors in
    // long-enough shards must still work, so this is not a precondition.
    let _ = ckpt.check_shards();

    let names: Vec<_> = ckpt.tensors().to_vec();
    for w in names.windows(2) {
        assert!(w[0].name <= w[1].name, "tensors are not sorted by name");
    }
    for info in &names {
        let got = ckpt
            .get(&info.name)
            .expect("a listed tensor can be looked up");
        // Keys that are equal after lossy UTF-8 conversion resolve to the first of them.
        assert_eq!(got.name, info.name);
        let _ = ckpt.stored_len(&info.name);

        match ckpt.read_bytes(&info.name) {
            Ok(bytes) => {
                let expected = info.num_bytes().expect("numeric tensor has a byte size");
                assert_eq!(
                    bytes.len() as u64,
                    expected,
                    "read_bytes length of {info:?} in {:?}",
                    ckpt.tensors()
                );
            }
            Err(err) => {
                let _ = err.to_string();
            }
        }
        if let Ok(strings) = ckpt.read_strings(&info.name) {
            assert_eq!(info.dtype, DType::String);
            assert_eq!(strings.len() as u64, info.num_elements());
        }
        if let Ok(values) = ckpt.read_f32(&info.name) {
            assert_eq!(values.len() as u64, info.num_elements());
        }
        if ckpt.read_i64_scalar(&info.name).is_ok() {
            assert_eq!(info.num_elements(), 1);
        }
    }
    let _ = ckpt.read_bytes("no such tensor:0");
});
