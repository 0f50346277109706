//! A checkpoint read from inside a zip archive (Google's released `electra_*.zip`, HFL's and
//! others of the same shape), without unzipping it.
//!
//! [`ZipCheckpoint::open`] parses the archive's central directory (strictly: see `archive`),
//! finds the checkpoint the way a local path is resolved (see `resolve`), and reads the
//! `.index` entry into memory. [`open`] turns that into a [`Source`]:
//!
//! - a **stored** data shard is a window of the zip file itself ([`ShardFile`] with the entry's
//!   data offset and length): mapped in place by the checkpoint reader, never copied;
//! - a **deflated** data shard is inflated once into a file of a private temporary directory,
//!   bounded by its declared size (which must be reachable by DEFLATE from its compressed size),
//!   a per-archive budget and the free space there, its length and CRC-32 checked before the
//!   reader sees it;
//! - small side files (`vocab.txt`, `params.yaml`, `pretrain_config.json`, `config.json`) are
//!   read with a size cap and written into the same private directory, which becomes the
//!   source's side-file directory. The directory is deleted when the `Source` is dropped.

mod archive;
mod error;
mod inflate;
mod names;
mod resolve;
mod shard;
#[cfg(test)]
mod tests;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tf_checkpoint::{Checkpoint, ShardFile};

pub use archive::ArchiveLimits;
pub use error::ZipSourceError;
pub use resolve::{looks_like_zip, split_zip_selector, Resolution};

use super::{Form, Source, SourceError};
pub(crate) use archive::ReadAt;
use archive::{Archive, InMemory, METHOD_DEFLATED};
use inflate::{copy_entry, method_name, method_supported, ratio_possible};
use resolve::{join, parent, Finder};
use shard::{free_bytes, SharedZip};

const MIB: u64 = 1024 * 1024;

/// The side files copied out of the archive, when present beside the checkpoint (or in the
/// folder above it), for the lookups that find them beside a checkpoint on disk.
pub const SIDE_FILES: [&str; 4] = [
    "vocab.txt",
    "params.yaml",
    "pretrain_config.json",
    "config.json",
];

/// Limits and places; the defaults suit Google's released zips (the largest, ELECTRA-Large,
/// holds a 1.3 GB data shard).
#[derive(Debug, Clone)]
pub struct ZipOptions {
    /// Largest `.index` entry read into memory (uncompressed).
    pub max_index_bytes: u64,
    /// Largest side file (`checkpoint`, `vocab.txt`, `params.yaml`, `config.json`, ...).
    pub max_side_file_bytes: u64,
    /// Total bytes this archive may inflate into temporary files.
    pub max_inflated_total: u64,
    /// Most entries in the central directory.
    pub max_entries: u64,
    /// Largest central directory.
    pub max_central_directory_bytes: u64,
    /// Where the private temporary directory goes; `None`: the system's (`TMPDIR`).
    pub temp_dir: Option<PathBuf>,
}

impl Default for ZipOptions {
    fn default() -> Self {
        Self {
            max_index_bytes: 256 * MIB,
            max_side_file_bytes: 16 * MIB,
            max_inflated_total: 64 * 1024 * MIB,
            max_entries: 100_000,
            max_central_directory_bytes: 64 * MIB,
            temp_dir: None,
        }
    }
}

/// A small file read from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideFile {
    /// Its entry name inside the archive.
    pub entry: String,
    /// Its contents.
    pub bytes: Vec<u8>,
}

/// A checkpoint found inside a zip archive: its prefix there and its index bytes.
#[derive(Debug)]
pub struct ZipCheckpoint {
    zip: SharedZip,
    archive: Archive,
    options: ZipOptions,
    prefix: String,
    resolution: Resolution,
    index: Vec<u8>,
}

/// Open `zip_path` (`PATH.zip`, with `selector` the part after `#` in `PATH.zip#INNER`) as a
/// [`Source`] of form [`Form::Zip`].
pub fn open(zip_path: &Path, selector: Option<&str>) -> Result<Source, SourceError> {
    open_with(zip_path, selector, ZipOptions::default())
}

/// [`open`] with explicit limits.
pub fn open_with(
    zip_path: &Path,
    selector: Option<&str>,
    options: ZipOptions,
) -> Result<Source, SourceError> {
    let zc = ZipCheckpoint::open_with(zip_path, selector, options)?;
    Ok(source_of(zc)?.0)
}

/// An archive read through `reader` (named `path` in messages; stored entries are read in place
/// from the local file `data_path`), as a [`Source`], and the data shards read in place from
/// `data_path`: (shard id, offset of its bytes there).
#[cfg(feature = "remote")]
pub(crate) fn open_reader(
    path: PathBuf,
    data_path: PathBuf,
    reader: Box<dyn ReadAt>,
    selector: Option<&str>,
) -> Result<(Source, Vec<(i32, u64)>), SourceError> {
    let zip = SharedZip::from_reader(path, data_path, reader);
    let zc = ZipCheckpoint::open_shared(zip, selector, ZipOptions::default())?;
    source_of(zc)
}

fn source_of(zc: ZipCheckpoint) -> Result<(Source, Vec<(i32, u64)>), SourceError> {
    let location = zc.location();
    let checkpoint = Checkpoint::from_index_bytes(Path::new(&location), zc.index_bytes())?;
    let temp = zc.temp_dir()?;
    let side_dir = temp.path().join("side");
    let shard_dir = temp.path().join("shards");
    for dir in [&side_dir, &shard_dir] {
        std::fs::create_dir(dir).map_err(|error| ZipSourceError::Io {
            path: dir.clone(),
            error,
        })?;
    }
    let mut ids: Vec<i32> = checkpoint
        .stored_ranges(checkpoint.tensors().iter().map(|t| t.name.as_str()))
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    ids.dedup();
    let num_shards = u32::try_from(checkpoint.num_shards()).unwrap_or(u32::MAX);
    let mut inflated = 0u64;
    let mut files = Vec::with_capacity(ids.len());
    for id in ids {
        let id_u32 = u32::try_from(id).unwrap_or(u32::MAX);
        files.push(zc.shard_file(id_u32, num_shards, &shard_dir, &mut inflated)?);
    }
    for name in SIDE_FILES {
        if let Some(side) = zc.side_file(name)? {
            let path = side_dir.join(name);
            std::fs::write(&path, &side.bytes)
                .map_err(|error| ZipSourceError::Io { path, error })?;
        }
    }
    let in_place: Vec<(i32, u64)> = files
        .iter()
        .filter(|f| f.path == zc.zip.data_path)
        .map(|f| (f.id, f.base))
        .collect();
    let checkpoint = checkpoint.with_shard_files(files)?;
    let source = Source::new(
        checkpoint,
        Form::Zip,
        side_dir,
        location,
        vec![Box::new(temp)],
    );
    Ok((source, in_place))
}

impl ZipCheckpoint {
    /// Open `zip_path` and find the checkpoint in it; `selector` is the part after `#` in
    /// `PATH.zip#INNER` (a folder, a prefix, or one of its files). Default limits.
    pub fn open(zip_path: &Path, selector: Option<&str>) -> Result<Self, ZipSourceError> {
        Self::open_with(zip_path, selector, ZipOptions::default())
    }

    /// [`open`](Self::open) with explicit limits.
    pub fn open_with(
        zip_path: &Path,
        selector: Option<&str>,
        options: ZipOptions,
    ) -> Result<Self, ZipSourceError> {
        let zip = SharedZip::open(zip_path.to_path_buf()).map_err(|error| ZipSourceError::Io {
            path: zip_path.to_path_buf(),
            error,
        })?;
        Self::open_shared(zip, selector, options)
    }

    fn open_shared(
        zip: SharedZip,
        selector: Option<&str>,
        options: ZipOptions,
    ) -> Result<Self, ZipSourceError> {
        let zip_path = zip.path.clone();
        let zip_path = zip_path.as_path();
        let limits = ArchiveLimits {
            max_entries: options.max_entries,
            max_central_directory_bytes: options.max_central_directory_bytes,
        };
        let archive = Archive::parse(&zip, zip_path, limits)?;
        let (prefix, resolution) = {
            let read_small = |index: usize| {
                read_to_vec(
                    &zip,
                    &archive,
                    index,
                    options.max_side_file_bytes,
                    "a side file",
                )
            };
            Finder {
                archive: &archive,
                read_small: &read_small,
            }
            .resolve(selector)?
        };
        let index_name = format!("{prefix}.index");
        let Some((i, _)) = archive.entry(&index_name) else {
            return Err(ZipSourceError::NoIndex {
                path: zip_path.to_path_buf(),
                prefix,
                hint: String::new(),
            });
        };
        let index = read_to_vec(
            &zip,
            &archive,
            i,
            options.max_index_bytes,
            "a checkpoint index",
        )?;
        Ok(Self {
            zip,
            archive,
            options,
            prefix,
            resolution,
            index,
        })
    }

    /// The zip file.
    pub fn zip_path(&self) -> &Path {
        &self.zip.path
    }

    /// The checkpoint prefix inside the archive, e.g. `electra_small/electra_small`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The folder holding the checkpoint inside the archive (`""` for the root).
    pub fn folder(&self) -> &str {
        parent(&self.prefix)
    }

    /// `PATH.zip#PREFIX`, for messages (and accepted back as an argument).
    pub fn location(&self) -> String {
        format!("{}#{}", self.zip.path.display(), self.prefix)
    }

    /// How the checkpoint was found.
    pub fn resolution(&self) -> &Resolution {
        &self.resolution
    }

    /// The `.index` entry's bytes (checked against its length and CRC-32).
    pub fn index_bytes(&self) -> &[u8] {
        &self.index
    }

    /// Entry name of data shard `shard` of `num_shards`.
    pub fn shard_entry(&self, shard: u32, num_shards: u32) -> String {
        format!("{}.data-{shard:05}-of-{num_shards:05}", self.prefix)
    }

    /// A new private temporary directory for this archive's inflated shards and side files
    /// (deleted when the returned handle is dropped).
    fn temp_dir(&self) -> Result<super::scratch::ScratchDir, ZipSourceError> {
        let dir = self
            .options
            .temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir);
        super::scratch::ScratchDir::new(".electra-convert-zip-", Some(&dir)).map_err(|e| {
            ZipSourceError::TempFile {
                path: self.zip.path.clone(),
                entry: self.prefix.clone(),
                dir,
                needed: 0,
                error: e.to_string(),
            }
        })
    }

    /// Where the checkpoint reader finds data shard `shard` of `num_shards`: the zip itself
    /// (a stored entry's window) or, for a deflated entry, a file in `inflate_dir` it is
    /// inflated into. `inflated` counts this archive's inflated bytes against the budget.
    pub fn shard_file(
        &self,
        shard: u32,
        num_shards: u32,
        inflate_dir: &Path,
        inflated: &mut u64,
    ) -> Result<ShardFile, ZipSourceError> {
        let bad_request = |reason| ZipSourceError::BadShardRequest {
            path: self.zip.path.clone(),
            prefix: self.prefix.clone(),
            shard,
            num_shards,
            reason,
        };
        if num_shards == 0 {
            return Err(bad_request("a checkpoint has at least one shard"));
        }
        if shard >= num_shards {
            return Err(bad_request("shards are numbered from 0 to num_shards - 1"));
        }
        let id = i32::try_from(shard).map_err(|_| bad_request("shard id out of range"))?;
        let name = self.shard_entry(shard, num_shards);
        let Some((i, entry)) = self.archive.entry(&name).filter(|(_, e)| !e.is_dir) else {
            return Err(ZipSourceError::ShardMissing {
                path: self.zip.path.clone(),
                entry: name,
                num_shards,
            });
        };
        check_usable(&self.archive, i)?;
        let (declared, compressed) = (entry.uncompressed_size, entry.compressed_size);
        if entry.method == METHOD_DEFLATED && !ratio_possible(compressed, declared) {
            return Err(ZipSourceError::ImpossibleRatio {
                path: self.zip.path.clone(),
                entry: name,
                declared,
                compressed,
            });
        }
        let window = self.archive.data_window(&self.zip, i)?;
        if entry.method != METHOD_DEFLATED {
            return Ok(ShardFile {
                id,
                path: self.zip.data_path.clone(),
                base: window.offset,
                len: Some(window.len),
            });
        }
        let limit = self.options.max_inflated_total;
        if declared > limit.saturating_sub(*inflated) {
            return Err(ZipSourceError::InflateBudget {
                path: self.zip.path.clone(),
                entry: name,
                needed: declared,
                used: *inflated,
                limit,
            });
        }
        let base = name.rsplit_once('/').map_or(name.as_str(), |(_, b)| b);
        let target = inflate_dir.join(base);
        let temp_error = |error: String| ZipSourceError::TempFile {
            path: self.zip.path.clone(),
            entry: name.clone(),
            dir: inflate_dir.to_path_buf(),
            needed: declared,
            error,
        };
        let file = std::fs::File::create_new(&target).map_err(|e| temp_error(e.to_string()))?;
        if let Some(free) = free_bytes(&file) {
            if free < declared {
                return Err(temp_error(format!("only {free} bytes are free there")));
            }
        }
        self.zip
            .prepare(window.offset, window.len)
            .map_err(|error| ZipSourceError::Io {
                path: self.zip.path.clone(),
                error,
            })?;
        {
            let mut out = BufWriter::with_capacity(declared.clamp(1, MIB) as usize, &file);
            let sink_error = |e: std::io::Error| temp_error(e.to_string());
            copy_entry(&self.zip, &self.archive, i, window, &mut out, &sink_error)?;
            out.flush().map_err(|e| temp_error(e.to_string()))?;
        }
        *inflated += declared;
        Ok(ShardFile {
            id,
            path: target,
            base: 0,
            len: Some(declared),
        })
    }

    /// A small file next to the checkpoint: `name` in the checkpoint's folder, else in its
    /// parent folder (where the tool looks on disk too). `None` if neither has it.
    pub fn side_file(&self, name: &str) -> Result<Option<SideFile>, ZipSourceError> {
        let folder = self.folder();
        let mut candidates = vec![join(folder, name)];
        if !folder.is_empty() {
            candidates.push(join(parent(folder), name));
        }
        for entry in candidates {
            if let Some(bytes) = self.read_entry(&entry)? {
                return Ok(Some(SideFile { entry, bytes }));
            }
        }
        Ok(None)
    }

    /// Any small file of the archive by its exact entry name, capped like side files; `None`
    /// if there is no such file.
    pub fn read_entry(&self, entry: &str) -> Result<Option<Vec<u8>>, ZipSourceError> {
        match self.archive.entry(entry) {
            Some((i, e)) if !e.is_dir => read_to_vec(
                &self.zip,
                &self.archive,
                i,
                self.options.max_side_file_bytes,
                "a side file",
            )
            .map(Some),
            _ => Ok(None),
        }
    }
}

/// `std::io::sink` and `Vec` never fail.
fn unreachable_sink(_: std::io::Error) -> ZipSourceError {
    ZipSourceError::Io {
        path: PathBuf::new(),
        error: std::io::Error::other("writing to memory failed"),
    }
}

/// Entries this reader can copy: not encrypted, not a link, stored or deflated.
fn check_usable(archive: &Archive, i: usize) -> Result<(), ZipSourceError> {
    let e = &archive.entries[i];
    if e.is_encrypted() {
        return Err(ZipSourceError::Encrypted {
            path: archive.path.clone(),
            entry: e.name.clone(),
        });
    }
    if e.is_symlink {
        return Err(ZipSourceError::Symlink {
            path: archive.path.clone(),
            entry: e.name.clone(),
        });
    }
    if !method_supported(e.method) {
        return Err(ZipSourceError::UnsupportedMethod {
            path: archive.path.clone(),
            entry: e.name.clone(),
            method: e.method,
            method_name: method_name(e.method),
        });
    }
    Ok(())
}

/// Entry `i`'s contents in memory, at most `limit` bytes.
fn read_to_vec(
    src: &SharedZip,
    archive: &Archive,
    i: usize,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, ZipSourceError> {
    check_usable(archive, i)?;
    let e = &archive.entries[i];
    if e.uncompressed_size > limit {
        return Err(ZipSourceError::TooLarge {
            path: archive.path.clone(),
            entry: e.name.clone(),
            declared: e.uncompressed_size,
            limit,
            what,
            hint: "no real one is that large: the archive is damaged or not a checkpoint archive"
                .into(),
        });
    }
    if e.method == METHOD_DEFLATED && !ratio_possible(e.compressed_size, e.uncompressed_size) {
        return Err(ZipSourceError::ImpossibleRatio {
            path: archive.path.clone(),
            entry: e.name.clone(),
            declared: e.uncompressed_size,
            compressed: e.compressed_size,
        });
    }
    let window = archive.data_window(src, i)?;
    // Within `limit`, and possible from the bytes the file has.
    let mut out = Vec::with_capacity(e.uncompressed_size.min(MIB) as usize);
    copy_entry(src, archive, i, window, &mut out, &unreachable_sink)?;
    Ok(out)
}

/// One entry as the parser sees it (for tests, fuzzing and diagnostics).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub name: String,
    pub raw_name: Vec<u8>,
    pub is_dir: bool,
    pub method: u16,
    pub encrypted: bool,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
    /// Where the data starts, or why the local header was refused.
    pub data_offset: Result<u64, String>,
}

/// List the entries of an archive held in memory (`label` names it in errors).
#[doc(hidden)]
pub fn inspect_bytes(
    bytes: &[u8],
    label: &Path,
    limits: ArchiveLimits,
) -> Result<Vec<EntryInfo>, ZipSourceError> {
    let src = InMemory(bytes);
    let archive = Archive::parse(&src, label, limits)?;
    Ok((0..archive.entries.len())
        .map(|i| {
            let e = &archive.entries[i];
            EntryInfo {
                name: e.name.clone(),
                raw_name: e.raw_name.clone(),
                is_dir: e.is_dir,
                method: e.method,
                encrypted: e.is_encrypted(),
                crc32: e.crc32,
                compressed_size: e.compressed_size,
                uncompressed_size: e.uncompressed_size,
                local_header_offset: e.local_header_offset,
                data_offset: archive
                    .data_window(&src, i)
                    .map(|w| w.offset)
                    .map_err(|err| err.to_string()),
            }
        })
        .collect())
}
