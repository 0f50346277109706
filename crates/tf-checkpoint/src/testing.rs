//! A minimal tensor-bundle *writer*, for tests and fuzzing only: it builds structurally valid
//! indexes and data files (including big-endian and partitioned ones) so that the reader can be
//! exercised on inputs TensorFlow would not produce on this machine. It is not byte-identical to
//! TF's writer (no shortest separators, fixed block size) and is not part of the stable API.

use super::crc;
use super::proto::{self, BundleEntry, Endianness, Extent, TensorSlice};
use super::sstable::TABLE_MAGIC;
use super::varint::write_varint64;

/// Serialize a `BundleHeaderProto` (version producer 1).
pub(crate) fn header_proto(num_shards: i32, big_endian: bool) -> Vec<u8> {
    let mut header = proto::tf_header();
    header.num_shards = num_shards;
    if big_endian {
        header.endianness = Endianness::Big;
    }
    proto::encode_header(&header)
}

/// Serialize a `TensorShapeProto`.
pub fn shape_proto(dims: &[i64]) -> Vec<u8> {
    proto::encode_shape(dims)
}

/// Serialize a `TensorSliceProto` (full extents as empty messages, like TF).
pub fn slice_proto(slice: &TensorSlice) -> Vec<u8> {
    proto::encode_slice(slice)
}

/// Fields of a `BundleEntryProto` to serialize.
#[derive(Debug, Clone, Default)]
pub struct EntrySpec {
    /// Raw `DataType` value.
    pub dtype: i32,
    /// Dimension sizes.
    pub shape: Vec<i64>,
    /// Shard number.
    pub shard_id: i32,
    /// Byte offset in the shard.
    pub offset: i64,
    /// Byte length in the shard.
    pub size: i64,
    /// Masked CRC.
    pub crc32c: u32,
    /// Slices of a partitioned variable.
    pub slices: Vec<TensorSlice>,
}

/// Serialize a `BundleEntryProto`.
pub fn entry_proto(e: &EntrySpec) -> Vec<u8> {
    proto::encode_entry(&BundleEntry {
        dtype: e.dtype,
        shape: proto::TensorShape {
            dims: e.shape.clone(),
            unknown_rank: false,
        },
        shard_id: e.shard_id,
        offset: e.offset,
        size: e.size,
        crc32c: if e.slices.is_empty() { e.crc32c } else { 0 },
        slices: e.slices.clone(),
    })
}

/// A full-extent slice list helper: `(start, length)` per dim, `None` = whole dim.
pub fn slice(extents: &[Option<(i64, i64)>]) -> TensorSlice {
    TensorSlice {
        extents: extents
            .iter()
            .map(|e| match e {
                Some((start, length)) => Extent {
                    start: *start,
                    length: Some(*length),
                },
                None => Extent {
                    start: 0,
                    length: None,
                },
            })
            .collect(),
    }
}

fn block(entries: &[(Vec<u8>, Vec<u8>)], restart_interval: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut restarts = Vec::new();
    let mut prev: &[u8] = &[];
    for (i, (key, value)) in entries.iter().enumerate() {
        let shared = if i % restart_interval == 0 {
            restarts.push(out.len() as u32);
            0
        } else {
            prev.iter().zip(key).take_while(|(a, b)| a == b).count()
        };
        write_varint64(&mut out, shared as u64);
        write_varint64(&mut out, (key.len() - shared) as u64);
        write_varint64(&mut out, value.len() as u64);
        out.extend_from_slice(&key[shared..]);
        out.extend_from_slice(value);
        prev = key;
    }
    if restarts.is_empty() {
        restarts.push(0);
    }
    for r in &restarts {
        out.extend_from_slice(&r.to_le_bytes());
    }
    out.extend_from_slice(&(restarts.len() as u32).to_le_bytes());
    out
}

fn push_block(file: &mut Vec<u8>, contents: &[u8]) -> (u64, u64) {
    let offset = file.len() as u64;
    file.extend_from_slice(contents);
    file.push(0);
    let c = crc::mask(crc::extend(crc::crc32c(contents), &[0]));
    file.extend_from_slice(&c.to_le_bytes());
    (offset, contents.len() as u64)
}

/// Build an index file from sorted `(key, value)` pairs (the header entry included), with at
/// most `per_block` entries per data block and restart interval 2.
pub fn build_index(entries: &[(Vec<u8>, Vec<u8>)], per_block: usize) -> Vec<u8> {
    let mut file = Vec::new();
    let mut index_entries = Vec::new();
    for chunk in entries.chunks(per_block.max(1)) {
        let (offset, size) = push_block(&mut file, &block(chunk, 2));
        let mut handle = Vec::new();
        write_varint64(&mut handle, offset);
        write_varint64(&mut handle, size);
        // Separator: the block's last key (valid for TF's reader).
        index_entries.push((chunk[chunk.len() - 1].0.clone(), handle));
    }
    let meta = push_block(&mut file, &block(&[], 1));
    let index = push_block(&mut file, &block(&index_entries, 1));
    let mut footer = Vec::new();
    for v in [meta.0, meta.1, index.0, index.1] {
        write_varint64(&mut footer, v);
    }
    footer.resize(40, 0);
    footer.extend_from_slice(&TABLE_MAGIC.to_le_bytes());
    file.extend_from_slice(&footer);
    file
}

/// A tensor to put into a single-shard bundle.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    /// The index key.
    pub name: Vec<u8>,
    /// Raw `DataType` value.
    pub dtype: i32,
    /// Dimension sizes.
    pub shape: Vec<i64>,
    /// Exactly the bytes written to the data file.
    pub data: Vec<u8>,
    /// CRC to store (masked); `None` = compute it from `data`.
    pub crc: Option<u32>,
}

/// Build `(index, data)` of a single-shard bundle holding `tensors` (sorted here).
pub fn build_bundle(tensors: &[TensorSpec], big_endian: bool) -> (Vec<u8>, Vec<u8>) {
    let mut data = Vec::new();
    let mut entries = vec![(Vec::new(), header_proto(1, big_endian))];
    let mut sorted: Vec<&TensorSpec> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for t in sorted {
        let spec = EntrySpec {
            dtype: t.dtype,
            shape: t.shape.clone(),
            shard_id: 0,
            offset: data.len() as i64,
            size: t.data.len() as i64,
            crc32c: t.crc.unwrap_or_else(|| crc::mask(crc::crc32c(&t.data))),
            slices: Vec::new(),
        };
        data.extend_from_slice(&t.data);
        entries.push((t.name.clone(), entry_proto(&spec)));
    }
    (build_index(&entries, 3), data)
}

/// Encode a string tensor's data the way TF does; returns `(bytes, masked entry crc)`.
pub fn string_tensor_data(elements: &[&[u8]], big_endian: bool) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut running = 0u32;
    for e in elements {
        write_varint64(&mut out, e.len() as u64);
        let len = e.len() as u32;
        let bytes = if big_endian {
            len.to_be_bytes()
        } else {
            len.to_le_bytes()
        };
        running = crc::extend(running, &bytes);
    }
    let masked = crc::mask(running);
    let checksum = if big_endian {
        masked.to_be_bytes()
    } else {
        masked.to_le_bytes()
    };
    out.extend_from_slice(&checksum);
    running = crc::extend(running, &checksum);
    for e in elements {
        out.extend_from_slice(e);
        running = crc::extend(running, e);
    }
    (out, crc::mask(running))
}

/// Masked CRC32C of `data` (what an entry stores for numeric tensors).
pub fn masked_crc(data: &[u8]) -> u32 {
    crc::mask(crc::crc32c(data))
}

/// A [`TensorSpec`] with the correct CRC computed by [`build_bundle`].
pub fn tensor(name: &str, dtype: super::DType, shape: &[i64], data: Vec<u8>) -> TensorSpec {
    TensorSpec {
        name: name.as_bytes().to_vec(),
        dtype: dtype.to_proto(),
        shape: shape.to_vec(),
        data,
        crc: None,
    }
}

/// Write a single-shard bundle as `dir/ckpt.index` + `dir/ckpt.data-00000-of-00001`; returns the
/// prefix.
pub fn write_single_shard(
    dir: &std::path::Path,
    index: &[u8],
    data: &[u8],
) -> std::io::Result<std::path::PathBuf> {
    let prefix = dir.join("ckpt");
    std::fs::write(super::with_suffix(&prefix, ".index"), index)?;
    std::fs::write(super::with_suffix(&prefix, ".data-00000-of-00001"), data)?;
    Ok(prefix)
}
