//! Pure-Rust reader and writer of TensorFlow V2 checkpoints (tensor bundles).
#![doc = include_str!("../README.md")]

mod buffer;
mod crc;
mod dtype;
mod error;
pub mod object_graph;
pub mod proto;
mod resolve;
pub mod slices;
pub mod sstable;
mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod varint;
pub mod writer;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use buffer::zeroed_f32;
pub use crc::mask as crc_mask;
pub use dtype::DType;
pub use error::CheckpointError;
pub use object_graph::{ObjectGraph, ObjectGraphError};
pub use proto::{BundleEntry, BundleHeader, Endianness};
pub use resolve::{parse_state_file, resolve, state_file_text, with_suffix, STATE_FILE};
pub use sstable::TableError;
pub use stream::read_exact_at;
pub use stream::ChunkError;
pub use writer::{BundleWriteError, BundleWriter, TensorWriter};

/// Maximum rank TF accepts (`TensorShape::MaxDimensions`).
pub const MAX_DIMS: usize = 254;
/// The bundle format version this reader implements (`kTensorBundleVersion`).
const CONSUMER_VERSION: i32 = 1;

/// One listed tensor, as `tf.train.list_variables` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The variable name (index key; non-UTF-8 bytes shown lossily).
    pub name: String,
    /// The element type.
    pub dtype: DType,
    /// Full shape (for partitioned variables, the assembled shape). Empty for scalars.
    pub shape: Vec<u64>,
    /// Number of stored slices for a partitioned variable, 0 for an ordinary tensor.
    pub partitions: usize,
}

impl TensorInfo {
    /// Product of the dims (1 for a scalar). Validated at open not to overflow i64.
    pub fn num_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Size of the decoded values in bytes; `None` for strings and undecodable dtypes.
    pub fn num_bytes(&self) -> Option<u64> {
        let size = self.dtype.element_size()? as u64;
        self.num_elements().checked_mul(size)
    }
}

/// Where an index entry's bytes live, once validated.
#[derive(Debug, Clone)]
struct Stored {
    /// Position in `Checkpoint::shards`.
    shard: usize,
    offset: u64,
    size: u64,
    /// Masked CRC as stored in the entry.
    crc: u32,
}

/// How a listed tensor is read.
#[derive(Debug, Clone)]
enum Layout {
    Plain(Stored),
    /// Slice regions and where each slice is stored.
    Partitioned(Vec<(slices::Region, Stored)>),
    /// A partitioned variable of a dtype without a fixed element size: listed, not readable.
    Unassemblable,
}

/// A data shard referenced by at least one entry.
#[derive(Debug)]
struct Shard {
    id: i32,
    path: PathBuf,
    /// Where the shard starts in `path` (0 for a `.data-*` file; a zip entry's data offset, say).
    base: u64,
    /// The shard's length when it is a window of a larger file; `None`: to the end of `path`.
    window: Option<u64>,
    /// Largest `offset + size` of any entry pointing into this shard.
    needed: u64,
    /// One tensor stored there (for messages).
    example: String,
    data: OnceLock<ShardData>,
}

#[derive(Debug)]
enum ShardData {
    Empty,
    // Memory-mapped rather than read with positioned reads: most reads here are whole large
    // tensors that are consumed once, and the map lets little-endian bundles hand out
    // `Cow::Borrowed` slices with no copy at all. The caveat of any file mapping: if another
    // process truncates the file while it is mapped, touching the lost pages raises SIGBUS.
    // TF never rewrites a shard in place (it writes a temp file and renames it over), so a
    // concurrent save replaces the inode and leaves our mapping intact; the length is checked
    // against the index when the map is made.
    /// The whole file mapped; the shard is `len` bytes from `start`.
    Mapped {
        map: memmap2::Mmap,
        start: usize,
        len: usize,
    },
}

impl ShardData {
    fn bytes(&self) -> &[u8] {
        match self {
            ShardData::Empty => &[],
            ShardData::Mapped { map, start, len } => map.get(*start..*start + *len).unwrap_or(&[]),
        }
    }
}

/// A data shard read from a chosen file: see [`Checkpoint::with_shard_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFile {
    /// The shard id as the index header counts them (0 for `.data-00000-of-…`).
    pub id: i32,
    /// The file holding the shard's bytes.
    pub path: PathBuf,
    /// Where the shard starts in `path`.
    pub base: u64,
    /// The shard's length; `None` for everything from `base` to the end of the file.
    pub len: Option<u64>,
}

/// The length of a shard given its file's length: the window, cut to what the file holds.
fn shard_window_len(shard: &Shard, file_len: u64) -> u64 {
    let available = file_len.saturating_sub(shard.base);
    shard.window.map_or(available, |w| w.min(available))
}

/// An opened, validated checkpoint. `Send + Sync`; shards are mapped on first use.
#[derive(Debug)]
pub struct Checkpoint {
    prefix: PathBuf,
    index_path: PathBuf,
    header: BundleHeader,
    tensors: Vec<TensorInfo>,
    layouts: Vec<Layout>,
    by_name: HashMap<String, usize>,
    shards: Vec<Shard>,
}

/// Append little-endian values of a floating-point `dtype` to `out` as f32 (float64 rounded to
/// the nearest f32): the conversion of [`Checkpoint::read_f32`], shared with its streamed form.
fn decode_f32(dtype: DType, bytes: &[u8], out: &mut Vec<f32>) {
    match dtype {
        DType::Float32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        DType::Float64 => out.extend(
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32),
        ),
        DType::Float16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        _ => out.extend(
            bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
    }
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

impl Checkpoint {
    /// Resolve prefix / `.index` / `.data-*` / directory (state file, else the only `*.index`),
    /// read and validate the index, and check that every referenced shard exists and is long
    /// enough.
    pub fn open(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let prefix = resolve::resolve(path)?;
        let checkpoint = Checkpoint::open_prefix(&prefix)?;
        checkpoint.check_shards()?;
        Ok(checkpoint)
    }

    /// Read and validate `PREFIX.index` without resolving or checking shard files.
    pub fn open_prefix(prefix: &Path) -> Result<Checkpoint, CheckpointError> {
        let index_path = resolve::with_suffix(prefix, ".index");
        let bytes = std::fs::read(&index_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CheckpointError::NoIndex {
                    prefix: prefix.to_path_buf(),
                    hint: String::new(),
                }
            } else {
                CheckpointError::Io {
                    path: index_path.clone(),
                    error: source,
                }
            }
        })?;
        Checkpoint::from_index_bytes(prefix, &bytes)
    }

    /// Build from the bytes of an index file (the data shards are looked up next to `prefix`).
    /// This is the entry point a fuzzer should drive.
    pub fn from_index_bytes(prefix: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let index_path = resolve::with_suffix(prefix, ".index");
        let entries = sstable::parse_table(bytes).map_err(|source| CheckpointError::Index {
            path: index_path.clone(),
            error: source,
        })?;
        let (first, rest) = match entries.split_first() {
            Some((first, rest)) if first.key.is_empty() => (first, rest),
            _ => {
                return Err(CheckpointError::MissingHeader { path: index_path });
            }
        };
        let header =
            proto::decode_header(&first.value).map_err(|source| CheckpointError::BadProto {
                path: index_path.clone(),
                key: String::new(),
                error: source,
            })?;
        check_header(&header, &index_path)?;

        // Decode every entry first: slice entries are referenced by full-tensor entries.
        let mut decoded: Vec<(&[u8], BundleEntry, Vec<u64>)> = Vec::with_capacity(rest.len());
        let mut by_key: HashMap<&[u8], usize> = HashMap::with_capacity(rest.len());
        for entry in rest {
            let name = lossy(&entry.key);
            let proto =
                proto::decode_entry(&entry.value).map_err(|source| CheckpointError::BadProto {
                    path: index_path.clone(),
                    key: name.clone(),
                    error: source,
                })?;
            let shape = check_shape(&proto.shape).map_err(|reason| CheckpointError::BadEntry {
                path: index_path.clone(),
                tensor: name.clone(),
                reason,
            })?;
            by_key.insert(&entry.key, decoded.len());
            decoded.push((&entry.key, proto, shape));
        }

        let mut builder = ShardBuilder::new(prefix, header.num_shards);
        let mut slice_keys: HashSet<Vec<u8>> = HashSet::new();
        let mut listed: Vec<(TensorInfo, Layout)> = Vec::new();
        for (key, proto, shape) in &decoded {
            let name = lossy(key);
            let bad = |reason: String| CheckpointError::BadEntry {
                path: index_path.clone(),
                tensor: name.clone(),
                reason,
            };
            let dtype = DType::from_proto(proto.dtype);
            let info = TensorInfo {
                name: name.clone(),
                dtype,
                shape: shape.clone(),
                partitions: proto.slices.len(),
            };
            if proto.slices.is_empty() {
                let stored = builder.add(proto, &info).map_err(bad)?;
                listed.push((info, Layout::Plain(stored)));
                continue;
            }
            // A full-tensor entry: locate and check every slice.
            let Some(elem) = dtype.element_size() else {
                // TF cannot assemble these either; list the variable, refuse to read it.
                for slice in &proto.slices {
                    slice_keys.insert(slices::encode_slice_key(key, slice));
                }
                listed.push((info, Layout::Unassemblable));
                continue;
            };
            let mut parts = Vec::with_capacity(proto.slices.len());
            for slice in &proto.slices {
                let region = slices::slice_region(slice, shape).map_err(&bad)?;
                let slice_key = slices::encode_slice_key(key, slice);
                let &at = by_key.get(slice_key.as_slice()).ok_or_else(|| {
                    bad(format!(
                        "the index has no entry for its slice {region:?} (key {})",
                        hex(&slice_key)
                    ))
                })?;
                let (_, slice_proto, slice_shape) = &decoded[at];
                let expected: Vec<u64> = region.iter().map(|&(_, l)| l).collect();
                if DType::from_proto(slice_proto.dtype) != dtype || *slice_shape != expected {
                    return Err(bad(format!(
                        "slice {region:?} is stored as {} {:?}, expected {dtype} {expected:?}",
                        DType::from_proto(slice_proto.dtype),
                        slice_shape
                    )));
                }
                if !slice_proto.slices.is_empty() {
                    return Err(bad("a slice entry is itself partitioned".into()));
                }
                let slice_info = TensorInfo {
                    name: name.clone(),
                    dtype,
                    shape: expected,
                    partitions: 0,
                };
                let stored = builder.add(slice_proto, &slice_info).map_err(&bad)?;
                debug_assert_eq!(stored.size % elem as u64, 0);
                slice_keys.insert(slice_key);
                parts.push((region, stored));
            }
            let regions: Vec<slices::Region> = parts.iter().map(|(r, _)| r.clone()).collect();
            slices::check_coverage(&regions, shape).map_err(&bad)?;
            listed.push((info, Layout::Partitioned(parts)));
        }
        // Slice entries are hidden exactly as TF's list_variables hides them. (A slice key
        // is also a valid ordinary entry, so the layouts above were computed for it too;
        // dropping it here is all that is needed.)
        let keep: Vec<bool> = decoded
            .iter()
            .map(|(key, _, _)| !slice_keys.contains(*key))
            .collect();
        let mut tensors = Vec::new();
        let mut layouts = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut key_of: Vec<&[u8]> = Vec::new();
        for (((info, layout), keep), (key, _, _)) in listed.into_iter().zip(keep).zip(&decoded) {
            if keep {
                // Keys are unique bytes, but names are shown lossily: two non-UTF-8 keys can
                // become the same name, and a read by that name would silently return the
                // other tensor (found by fuzzing). Refuse instead of guessing.
                if let Some(&first) = by_name.get(&info.name) {
                    return Err(CheckpointError::BadEntry {
                        path: index_path.clone(),
                        tensor: info.name.clone(),
                        reason: format!(
                            "index keys {} and {} are not valid UTF-8 and both read as this name, so they cannot be told apart",
                            hex(key_of[first]),
                            hex(key)
                        ),
                    });
                }
                by_name.insert(info.name.clone(), tensors.len());
                key_of.push(key);
                tensors.push(info);
                layouts.push(layout);
            }
        }
        // Keys are in byte order; a lossy name (U+FFFD for invalid bytes) can sort elsewhere,
        // and `tensors()` promises name order (found by fuzzing). Valid UTF-8 names already are
        // in order, so this only moves non-UTF-8 names.
        if !tensors.windows(2).all(|w| w[0].name <= w[1].name) {
            let mut pairs: Vec<(TensorInfo, Layout)> = tensors.into_iter().zip(layouts).collect();
            pairs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            (tensors, layouts) = pairs.into_iter().unzip();
            by_name = tensors
                .iter()
                .enumerate()
                .map(|(i, t)| (t.name.clone(), i))
                .collect();
        }
        Ok(Checkpoint {
            prefix: prefix.to_path_buf(),
            index_path,
            header,
            tensors,
            layouts,
            by_name,
            shards: builder.shards,
        })
    }

    /// The resolved prefix (`…/model.ckpt-1000`).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Path of the `.index` file.
    pub fn index_path(&self) -> &Path {
        &self.index_path
    }

    /// The decoded header entry.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// `num_shards` from the header.
    pub fn num_shards(&self) -> usize {
        self.header.num_shards.max(0) as usize
    }

    /// Paths of the data shards referenced by at least one tensor, by shard id.
    pub fn shard_paths(&self) -> Vec<PathBuf> {
        let mut shards: Vec<&Shard> = self.shards.iter().collect();
        shards.sort_by_key(|s| s.id);
        shards.into_iter().map(|s| s.path.clone()).collect()
    }

    /// Read the data shards from other places than the files next to the prefix: shard `id` of
    /// the header is bytes `base .. base + len` of `file.path` (a zip entry stored in place, a
    /// local cache of a remote object, a file that is not named like a shard). Shards not given
    /// keep their paths. The lengths are checked again, as [`open`](Checkpoint::open) does.
    pub fn with_shard_files(
        mut self,
        files: Vec<ShardFile>,
    ) -> Result<Checkpoint, CheckpointError> {
        for file in files {
            if let Some(shard) = self.shards.iter_mut().find(|s| s.id == file.id) {
                shard.path = file.path;
                shard.base = file.base;
                shard.window = file.len;
                shard.data = OnceLock::new();
            }
        }
        self.check_shards()?;
        Ok(self)
    }

    /// Where the stored bytes of `names` lie: `(shard id, byte range within the shard)` per stored
    /// entry (one per slice of a partitioned variable), sorted and without duplicates. Unknown
    /// names and tensors without data are left out. A caller that fetches shards from far away
    /// fetches these ranges and nothing else.
    pub fn stored_ranges<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Vec<(i32, std::ops::Range<u64>)> {
        let mut out = Vec::new();
        for name in names {
            let Some(&i) = self.by_name.get(name) else {
                continue;
            };
            let mut push = |stored: &Stored| {
                if stored.size > 0 {
                    let id = self.shards[stored.shard].id;
                    out.push((id, stored.offset..stored.offset + stored.size));
                }
            };
            match &self.layouts[i] {
                Layout::Plain(stored) => push(stored),
                Layout::Partitioned(parts) => parts.iter().for_each(|(_, stored)| push(stored)),
                Layout::Unassemblable => {}
            }
        }
        out.sort_by_key(|(id, r)| (*id, r.start, r.end));
        out.dedup();
        out
    }

    /// Every listed tensor (exactly TF's `list_variables`), sorted by name.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Bytes the tensor occupies in the data files (all slices of a partitioned variable;
    /// for strings this includes lengths and checksum). `None` if there is no such tensor.
    pub fn stored_len(&self, name: &str) -> Option<u64> {
        let i = self.position(name)?;
        Some(match &self.layouts[i] {
            Layout::Plain(stored) => stored.size,
            Layout::Partitioned(parts) => parts.iter().map(|(_, s)| s.size).sum(),
            Layout::Unassemblable => 0,
        })
    }

    /// Iterate over the listed tensors.
    pub fn iter(&self) -> std::slice::Iter<'_, TensorInfo> {
        self.tensors.iter()
    }

    /// Look a tensor up by name. A trailing `:0` is ignored, as `tf.train.load_variable` does.
    pub fn get(&self, name: &str) -> Option<&TensorInfo> {
        self.position(name).map(|i| &self.tensors[i])
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name)
            .or_else(|| name.strip_suffix(":0").and_then(|n| self.by_name.get(n)))
            .copied()
    }

    fn lookup(&self, name: &str) -> Result<(usize, &TensorInfo), CheckpointError> {
        match self.position(name) {
            Some(i) => Ok((i, &self.tensors[i])),
            None => {
                let hint = self
                    .tensors
                    .iter()
                    .find(|t| t.name.eq_ignore_ascii_case(name))
                    .map(|t| format!(" (did you mean {:?}?)", t.name))
                    .unwrap_or_default();
                Err(CheckpointError::TensorNotFound {
                    name: name.to_string(),
                    prefix: self.prefix.clone(),
                    hint,
                })
            }
        }
    }

    /// Confirm every referenced shard exists and is long enough for the entries pointing into
    /// it. [`open`](Checkpoint::open) calls this; call it again to re-check.
    pub fn check_shards(&self) -> Result<(), CheckpointError> {
        for shard in &self.shards {
            shard_len_ok(shard, &self.prefix)?;
        }
        Ok(())
    }

    fn shard_bytes(&self, index: usize) -> Result<&[u8], CheckpointError> {
        let shard = &self.shards[index];
        if let Some(data) = shard.data.get() {
            return Ok(data.bytes());
        }
        let file = File::open(&shard.path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CheckpointError::ShardMissing {
                    path: shard.path.clone(),
                    prefix: self.prefix.clone(),
                    tensor: shard.example.clone(),
                }
            } else {
                CheckpointError::Io {
                    path: shard.path.clone(),
                    error: source,
                }
            }
        })?;
        let len = file
            .metadata()
            .map_err(|source| CheckpointError::Io {
                path: shard.path.clone(),
                error: source,
            })?
            .len();
        let len = shard_window_len(shard, len);
        if len < shard.needed {
            return Err(CheckpointError::ShardTooShort {
                path: shard.path.clone(),
                len,
                needed: shard.needed,
                tensor: shard.example.clone(),
            });
        }
        let data = if len == 0 {
            ShardData::Empty
        } else {
            // SAFETY: the file is opened read-only and never written by this process; see
            // `ShardData` for the truncation caveat.
            let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|source| {
                CheckpointError::Io {
                    path: shard.path.clone(),
                    error: source,
                }
            })?;
            ShardData::Mapped {
                map,
                start: shard.base as usize,
                len: len as usize,
            }
        };
        // Another thread may have won the race; either mapping is equally good.
        let _ = shard.data.set(data);
        Ok(shard.data.get().map(ShardData::bytes).unwrap_or(&[]))
    }

    /// The raw stored bytes of one entry, CRC-verified (no byte swap).
    fn stored_bytes(&self, tensor: &str, stored: &Stored) -> Result<&[u8], CheckpointError> {
        let data = self.shard_bytes(stored.shard)?;
        let shard = &self.shards[stored.shard];
        let range = usize::try_from(stored.offset)
            .ok()
            .zip(usize::try_from(stored.size).ok())
            .and_then(|(o, s)| Some(o..o.checked_add(s)?))
            .filter(|r| r.end <= data.len())
            .ok_or_else(|| CheckpointError::ShardTooShort {
                path: shard.path.clone(),
                len: data.len() as u64,
                needed: stored.offset.saturating_add(stored.size),
                tensor: tensor.to_string(),
            })?;
        Ok(&data[range])
    }

    fn verify_crc(
        &self,
        tensor: &str,
        stored: &Stored,
        computed: u32,
    ) -> Result<(), CheckpointError> {
        let expected = crc::unmask(stored.crc);
        if expected != computed {
            return Err(CheckpointError::TensorChecksum {
                tensor: tensor.to_string(),
                path: self.shards[stored.shard].path.clone(),
                offset: stored.offset,
                size: stored.size,
                stored: expected,
                computed,
            });
        }
        Ok(())
    }

    /// Numeric bytes of one stored entry: CRC-checked, then little-endian.
    fn numeric_entry(
        &self,
        info: &TensorInfo,
        stored: &Stored,
    ) -> Result<Cow<'_, [u8]>, CheckpointError> {
        let raw = self.stored_bytes(&info.name, stored)?;
        self.verify_crc(&info.name, stored, crc::crc32c(raw))?;
        let width = info.dtype.swap_width();
        if self.header.endianness == Endianness::Big && width > 1 {
            let mut owned = raw.to_vec();
            for unit in owned.chunks_exact_mut(width) {
                unit.reverse();
            }
            Ok(Cow::Owned(owned))
        } else {
            Ok(Cow::Borrowed(raw))
        }
    }

    /// Numeric tensor bytes, little-endian, CRC-verified (byte-swapped if the bundle is
    /// big-endian); partitioned variables are assembled. Borrowed from the mmap when possible.
    pub fn read_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, CheckpointError> {
        let (i, info) = self.lookup(name)?;
        let elem = match info.dtype {
            DType::String => {
                return Err(CheckpointError::WrongDtype {
                    tensor: info.name.clone(),
                    dtype: info.dtype.tf_name(),
                    wanted: "a numeric tensor (use read_strings)",
                })
            }
            DType::Other(_) => {
                return Err(CheckpointError::UnsupportedDtype {
                    tensor: info.name.clone(),
                    dtype: info.dtype.tf_name(),
                })
            }
            other => other.element_size().unwrap_or(1),
        };
        match &self.layouts[i] {
            Layout::Plain(stored) => self.numeric_entry(info, stored),
            Layout::Partitioned(parts) => {
                // The size was validated against the shape and the shards at open.
                let total = info.num_bytes().unwrap_or(0) as usize;
                let mut out = vec![0u8; total];
                for (region, stored) in parts {
                    let bytes = self.numeric_entry(info, stored)?;
                    slices::copy_region(&mut out, &info.shape, region, &bytes, elem);
                }
                Ok(Cow::Owned(out))
            }
            Layout::Unassemblable => Err(unassemblable(info)),
        }
    }

    /// A float32/float16/bfloat16/float64 tensor as f32 values (row-major). float64 values are
    /// rounded to the nearest f32.
    pub fn read_f32(&self, name: &str) -> Result<Vec<f32>, CheckpointError> {
        let (_, info) = self.lookup(name)?;
        if !info.dtype.is_float() {
            return Err(self.wrong(info, "a floating-point tensor"));
        }
        let bytes = self.read_bytes(name)?;
        let mut values = Vec::new();
        decode_f32(info.dtype, &bytes, &mut values);
        Ok(values)
    }

    /// A single integer value (int64, or any other integer dtype), e.g. `global_step`.
    pub fn read_i64_scalar(&self, name: &str) -> Result<i64, CheckpointError> {
        let (_, info) = self.lookup(name)?;
        let elements = info.num_elements();
        if elements != 1 {
            return Err(CheckpointError::NotScalar {
                tensor: info.name.clone(),
                shape: info.shape.clone(),
                elements,
            });
        }
        let bytes = self.read_bytes(name)?;
        let b = bytes.as_ref();
        let value = match info.dtype {
            DType::Int64 => i64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8])),
            DType::Int32 => i64::from(i32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4]))),
            DType::Int16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::Int8 => i64::from(b[0] as i8),
            DType::UInt8 => i64::from(b[0]),
            DType::UInt16 => i64::from(u16::from_le_bytes([b[0], b[1]])),
            DType::UInt32 => i64::from(u32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4]))),
            DType::UInt64 => {
                let v = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
                i64::try_from(v).map_err(|_| self.wrong(info, "an integer that fits in i64"))?
            }
            _ => return Err(self.wrong(info, "an integer tensor")),
        };
        Ok(value)
    }

    fn wrong(&self, info: &TensorInfo, wanted: &'static str) -> CheckpointError {
        match info.dtype {
            DType::Other(_) => CheckpointError::UnsupportedDtype {
                tensor: info.name.clone(),
                dtype: info.dtype.tf_name(),
            },
            _ => CheckpointError::WrongDtype {
                tensor: info.name.clone(),
                dtype: info.dtype.tf_name(),
                wanted,
            },
        }
    }

    /// The object graph of a TF2 object-based checkpoint (`_CHECKPOINTABLE_OBJECT_GRAPH`), or
    /// `None` for a name-based (TF1) checkpoint, which has no such entry.
    pub fn object_graph(&self) -> Result<Option<ObjectGraph>, CheckpointError> {
        if self.get(object_graph::OBJECT_GRAPH_KEY).is_none() {
            return Ok(None);
        }
        let bad = |reason: String| CheckpointError::BadObjectGraph {
            path: self.prefix.clone(),
            reason,
        };
        let elements = self.read_strings(object_graph::OBJECT_GRAPH_KEY)?;
        let [bytes] = elements.as_slice() else {
            return Err(bad(format!(
                "it holds {} strings, not one serialized TrackableObjectGraph",
                elements.len()
            )));
        };
        ObjectGraph::decode(bytes)
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    }

    /// A string tensor's elements (row-major), with the length checksum and the entry CRC
    /// verified.
    pub fn read_strings(&self, name: &str) -> Result<Vec<Vec<u8>>, CheckpointError> {
        let (i, info) = self.lookup(name)?;
        if info.dtype != DType::String {
            return Err(self.wrong(info, "a string tensor"));
        }
        let stored = match &self.layouts[i] {
            Layout::Plain(stored) => stored,
            Layout::Partitioned(_) | Layout::Unassemblable => return Err(unassemblable(info)),
        };
        let n = info.num_elements() as usize; // validated: n + 4 <= size, or n == 0
        if stored.size == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        let raw = self.stored_bytes(&info.name, stored)?;
        let big = self.header.endianness == Endianness::Big;
        let bad = |offset: usize, reason: String| CheckpointError::BadStringData {
            tensor: info.name.clone(),
            path: self.shards[stored.shard].path.clone(),
            offset: stored.offset + offset as u64,
            reason,
        };
        let mut pos = 0usize;
        let mut lengths = Vec::with_capacity(n);
        let mut running = 0u32;
        for k in 0..n {
            let at = pos;
            let len = varint::read_varint64(raw, &mut pos)
                .map_err(|e| bad(at, format!("length of element {k}: {e}")))?;
            running = match u32::try_from(len) {
                Ok(small) if big => crc::extend(running, &small.to_be_bytes()),
                Ok(small) => crc::extend(running, &small.to_le_bytes()),
                Err(_) if big => crc::extend(running, &len.to_be_bytes()),
                Err(_) => crc::extend(running, &len.to_le_bytes()),
            };
            lengths.push(len);
        }
        let checksum_bytes: [u8; 4] = raw
            .get(pos..pos + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad(pos, "the length checksum runs past the entry".into()))?;
        let stored_len_crc = if big {
            u32::from_be_bytes(checksum_bytes)
        } else {
            u32::from_le_bytes(checksum_bytes)
        };
        if crc::unmask(stored_len_crc) != running {
            return Err(bad(
                pos,
                format!(
                    "length checksum mismatch (stored {:#010x}, computed {running:#010x})",
                    crc::unmask(stored_len_crc)
                ),
            ));
        }
        running = crc::extend(running, &checksum_bytes);
        pos += 4;
        let remaining = (raw.len() - pos) as u64;
        let total = lengths
            .iter()
            .try_fold(0u64, |acc, &l| acc.checked_add(l))
            .filter(|&t| t == remaining)
            .ok_or_else(|| {
                bad(
                    pos,
                    format!(
                        "element lengths do not add up to the {remaining} bytes that follow them"
                    ),
                )
            })?;
        debug_assert_eq!(total, remaining);
        running = crc::extend(running, &raw[pos..]);
        self.verify_crc(&info.name, stored, running)?;
        let mut out = Vec::with_capacity(n);
        for len in lengths {
            let end = pos + len as usize;
            out.push(raw[pos..end].to_vec());
            pos = end;
        }
        Ok(out)
    }
}

fn unassemblable(info: &TensorInfo) -> CheckpointError {
    CheckpointError::BadSlices {
        tensor: info.name.clone(),
        reason: format!(
            "it is saved in {} slices and {} slices cannot be assembled (TensorFlow cannot either)",
            info.partitions, info.dtype
        ),
    }
}

fn shard_len_ok(shard: &Shard, prefix: &Path) -> Result<(), CheckpointError> {
    match std::fs::metadata(&shard.path) {
        Ok(meta) if meta.is_file() && shard_window_len(shard, meta.len()) >= shard.needed => Ok(()),
        Ok(meta) if meta.is_file() => Err(CheckpointError::ShardTooShort {
            path: shard.path.clone(),
            len: shard_window_len(shard, meta.len()),
            needed: shard.needed,
            tensor: shard.example.clone(),
        }),
        Ok(_) => Err(CheckpointError::ShardMissing {
            path: shard.path.clone(),
            prefix: prefix.to_path_buf(),
            tensor: shard.example.clone(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CheckpointError::ShardMissing {
            path: shard.path.clone(),
            prefix: prefix.to_path_buf(),
            tensor: shard.example.clone(),
        }),
        Err(source) => Err(CheckpointError::Io {
            path: shard.path.clone(),
            error: source,
        }),
    }
}

/// Header checks of §8: shard count, endianness value, `CheckVersions` for consumer 1.
fn check_header(header: &BundleHeader, path: &Path) -> Result<(), CheckpointError> {
    let bad = |reason: String| CheckpointError::BadHeader {
        path: path.to_path_buf(),
        reason,
    };
    if header.num_shards < 1 {
        return Err(bad(format!(
            "num_shards is {}, it must be at least 1; the index is damaged",
            header.num_shards
        )));
    }
    if !matches!(header.endianness_raw, 0 | 1) {
        return Err(bad(format!(
            "unknown endianness value {}; the index is damaged",
            header.endianness_raw
        )));
    }
    let v = &header.version;
    if v.producer < 0 {
        return Err(bad(format!(
            "producer version {} is negative; the index is damaged",
            v.producer
        )));
    }
    if v.min_consumer > CONSUMER_VERSION {
        return Err(bad(format!(
            "written by a newer TensorFlow (needs bundle reader version {} or later, this reader is {CONSUMER_VERSION}); re-save it with tf.compat.v1.train.Saver from an older TF",
            v.min_consumer
        )));
    }
    if v.bad_consumers.contains(&CONSUMER_VERSION) {
        return Err(bad(format!(
            "the bundle declares reader version {CONSUMER_VERSION} incompatible (bad_consumers); re-save it"
        )));
    }
    Ok(())
}

/// `TensorShape::IsValid`: known rank, at most 254 dims, none negative, product fits i64.
fn check_shape(shape: &proto::TensorShape) -> Result<Vec<u64>, String> {
    if shape.unknown_rank {
        return Err("shape has unknown rank".into());
    }
    if shape.dims.len() > MAX_DIMS {
        return Err(format!(
            "shape has {} dimensions, more than TF's maximum of {MAX_DIMS}",
            shape.dims.len()
        ));
    }
    let mut product: i64 = 1;
    let mut dims = Vec::with_capacity(shape.dims.len());
    for &d in &shape.dims {
        if d < 0 {
            return Err(format!("shape {:?} has a negative dimension", shape.dims));
        }
        product = product
            .checked_mul(d)
            .ok_or_else(|| format!("shape {:?} has more than 2^63 elements", shape.dims))?;
        dims.push(d as u64);
    }
    Ok(dims)
}

/// Collects the shards entries point into and checks each entry's location.
struct ShardBuilder {
    prefix: PathBuf,
    num_shards: i32,
    shards: Vec<Shard>,
    by_id: HashMap<i32, usize>,
}

impl ShardBuilder {
    fn new(prefix: &Path, num_shards: i32) -> Self {
        ShardBuilder {
            prefix: prefix.to_path_buf(),
            num_shards,
            shards: Vec::new(),
            by_id: HashMap::new(),
        }
    }

    /// Check a data-holding entry and register its shard.
    fn add(&mut self, proto: &BundleEntry, info: &TensorInfo) -> Result<Stored, String> {
        if proto.shard_id < 0 || proto.shard_id >= self.num_shards {
            return Err(format!(
                "shard_id {} is outside 0..{} (num_shards in the header)",
                proto.shard_id, self.num_shards
            ));
        }
        if proto.offset < 0 || proto.size < 0 {
            return Err(format!(
                "negative offset {} or size {}",
                proto.offset, proto.size
            ));
        }
        let (offset, size) = (proto.offset as u64, proto.size as u64);
        let end = offset
            .checked_add(size)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or_else(|| format!("offset {offset} + size {size} overflows"))?;
        let n = info.num_elements();
        match info.dtype {
            DType::String => {
                // Each element needs at least a 1-byte length, plus the 4-byte checksum.
                let min = n.checked_add(4);
                if !(size == 0 && n == 0) && min.is_none_or(|min| size < min) {
                    return Err(format!(
                        "string tensor of {n} elements stored in only {size} bytes"
                    ));
                }
            }
            DType::Other(_) => {}
            numeric => {
                let elem = numeric.element_size().unwrap_or(1) as u64;
                let want = n.checked_mul(elem);
                if want != Some(size) {
                    return Err(format!(
                        "size is {size} bytes but {numeric} {:?} needs {}",
                        info.shape,
                        want.map_or("more than 2^64".to_string(), |w| w.to_string())
                    ));
                }
            }
        }
        let shard = match self.by_id.get(&proto.shard_id) {
            Some(&i) => i,
            None => {
                let name = format!(".data-{:05}-of-{:05}", proto.shard_id, self.num_shards);
                self.shards.push(Shard {
                    base: 0,
                    window: None,
                    id: proto.shard_id,
                    path: resolve::with_suffix(&self.prefix, &name),
                    needed: 0,
                    example: info.name.clone(),
                    data: OnceLock::new(),
                });
                self.by_id.insert(proto.shard_id, self.shards.len() - 1);
                self.shards.len() - 1
            }
        };
        let slot = &mut self.shards[shard];
        if end > slot.needed {
            slot.needed = end;
            slot.example = info.name.clone();
        }
        Ok(Stored {
            shard,
            offset,
            size,
            crc: proto.crc32c,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// Compile-time check of the contract: a Checkpoint can be shared across threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Checkpoint>();
};
