//! The zip container: end-of-central-directory record (and its Zip64 form), the central
//! directory, and each entry's local header.
//!
//! Written for hostile input: every count and offset is checked against the file before it is
//! used, nothing is allocated from a declared size beyond the configured limits, and the
//! parse is strict where tolerance would let two tools see different contents (duplicate names,
//! local headers that disagree with the central directory, overlapping entries, data before the
//! central directory that does not account for it exactly). Entry data is not read here.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::error::ZipSourceError;
use super::names::{check_name, decode_name};

/// Signatures (little-endian u32 at the start of each record).
const SIG_LOCAL: u32 = 0x0403_4b50;
const SIG_CENTRAL: u32 = 0x0201_4b50;
const SIG_EOCD: u32 = 0x0605_4b50;
const SIG_EOCD64: u32 = 0x0606_4b50;
const SIG_EOCD64_LOCATOR: u32 = 0x0706_4b50;

const EOCD_LEN: u64 = 22;
const EOCD64_LOCATOR_LEN: u64 = 20;
const EOCD64_MIN_LEN: u64 = 56;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: u64 = 30;
/// Extra-field id of the Zip64 extended information.
const EXTRA_ZIP64: u16 = 0x0001;

/// General-purpose flag bits.
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
const FLAG_UTF8: u16 = 1 << 11;
const FLAG_MASKED_HEADERS: u16 = 1 << 13;

/// Compression methods.
pub(crate) const METHOD_STORED: u16 = 0;
pub(crate) const METHOD_DEFLATED: u16 = 8;
const METHOD_AES: u16 = 99;

/// Random access to the archive's bytes.
pub(crate) trait ReadAt: Send + Sync {
    /// Length in bytes (fixed when the archive was opened).
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`; an error if the range is past the end.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// `len` bytes from `offset` are about to be read in full: a reader that fetches its bytes
    /// from elsewhere (an archive in a bucket) gets them now, in one go. A no-op for files.
    fn prepare(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// An open archive file and the length it had when opened.
#[derive(Debug)]
pub(crate) struct FileAt {
    file: std::fs::File,
    len: u64,
}

impl FileAt {
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(Self {
            file,
            len: meta.len(),
        })
    }
}

impl ReadAt for FileAt {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_range(offset, buf.len(), self.len)?;
        read_file_at(&self.file, buf, offset)
    }
}

/// An archive held in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InMemory<'a>(pub &'a [u8]);

impl ReadAt for InMemory<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        check_range(offset, buf.len(), self.0.len() as u64)?;
        // In range after the check: offset + len <= self.0.len() <= usize::MAX.
        let start = offset as usize;
        buf.copy_from_slice(&self.0[start..start + buf.len()]);
        Ok(())
    }
}

/// `offset..offset+len` must lie within `0..size`.
pub(crate) fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("bytes {offset}..{offset}+{len} are past the end ({size} bytes)"),
        )),
    }
}

/// Positioned read of a whole range (no shared file cursor, so `&File` from several threads is fine).
pub(crate) fn read_file_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

/// Limits on the container itself (entry data has its own, in `ZipOptions`).
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Most entries the central directory may list.
    pub max_entries: u64,
    /// Largest central directory accepted, in bytes.
    pub max_central_directory_bytes: u64,
}

/// One central-directory entry, validated against the file's layout (not yet against its
/// local header: see [`Archive::data_window`]).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Decoded name, without the trailing `/` of a directory.
    pub name: String,
    pub raw_name: Vec<u8>,
    pub is_dir: bool,
    pub is_symlink: bool,
    pub flags: u16,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
}

impl Entry {
    pub(crate) fn is_encrypted(&self) -> bool {
        self.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_MASKED_HEADERS) != 0
            || self.method == METHOD_AES
    }
}

/// Where an entry's data lies in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataWindow {
    pub offset: u64,
    pub len: u64,
}

/// The parsed central directory.
#[derive(Debug)]
pub(crate) struct Archive {
    pub path: PathBuf,
    pub size: u64,
    /// Where the central directory starts: every entry's data ends at or before it.
    pub central_directory_start: u64,
    pub entries: Vec<Entry>,
    /// File and directory names (directories without their `/`) to entry indices.
    pub by_name: BTreeMap<String, usize>,
}

/// A little-endian reader over a byte slice that never panics.
struct Le<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Le<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.bytes(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes(8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

/// Little-endian fields of a fixed-size record (0 if out of range, which the callers' fixed
/// buffers rule out).
fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// The fields of the Zip64 extra field (id 1) that are present, in the order the spec gives them.
fn zip64_extra(extra: &[u8]) -> Result<Option<&[u8]>, &'static str> {
    let mut r = Le::new(extra);
    let mut found = None;
    while r.remaining() >= 4 {
        let (Some(id), Some(len)) = (r.u16(), r.u16()) else {
            break;
        };
        let data = r
            .bytes(usize::from(len))
            .ok_or("an extra field runs past the end of the extra data")?;
        if id == EXTRA_ZIP64 {
            if found.is_some() {
                return Err("two Zip64 extra fields");
            }
            found = Some(data);
        }
    }
    // 1-3 trailing bytes: padding some writers leave; ignored.
    Ok(found)
}

/// The end-of-central-directory facts the rest of the parse needs.
struct DirectoryLocation {
    entries: u64,
    start: u64,
    size: u64,
    /// Where the central directory must end: the EOCD record or the Zip64 EOCD record.
    end: u64,
}

impl Archive {
    /// Parse the central directory of `src` (`path` labels errors).
    pub(crate) fn parse(
        src: &dyn ReadAt,
        path: &Path,
        limits: ArchiveLimits,
    ) -> Result<Self, ZipSourceError> {
        let size = src.size();
        let io_err = |error: io::Error| ZipSourceError::Io {
            path: path.to_path_buf(),
            error,
        };
        let damaged = |offset: u64, reason: String| ZipSourceError::Damaged {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        let loc = locate_directory(src, path, size)?;

        if loc.entries > limits.max_entries {
            return Err(ZipSourceError::TooManyEntries {
                path: path.to_path_buf(),
                count: loc.entries,
                limit: limits.max_entries,
            });
        }
        if loc.size > limits.max_central_directory_bytes {
            return Err(damaged(
                loc.start,
                format!(
                    "the central directory is {} bytes, more than the {} this reader accepts",
                    loc.size, limits.max_central_directory_bytes
                ),
            ));
        }
        if loc.entries.saturating_mul(CENTRAL_LEN as u64) > loc.size {
            return Err(damaged(
                loc.start,
                format!(
                    "{} entries cannot fit in a {}-byte central directory",
                    loc.entries, loc.size
                ),
            ));
        }
        // Bounded by max_central_directory_bytes, and the end record placed it inside the file.
        let mut cd = vec![0u8; loc.size as usize];
        src.read_exact_at(&mut cd, loc.start).map_err(io_err)?;

        let mut entries = Vec::with_capacity(loc.entries as usize);
        let mut by_name = BTreeMap::new();
        let mut r = Le::new(&cd);
        for i in 0..loc.entries {
            let at = loc.start + r.pos as u64;
            let entry = parse_central_entry(&mut r, loc.start)
                .map_err(|reason| damaged(at, format!("central directory entry {i}: {reason}")))?;
            if let Err(reason) = check_name(&entry.name, entry.is_dir) {
                return Err(ZipSourceError::UnsafeName {
                    path: path.to_path_buf(),
                    name: entry.name.clone(),
                    reason,
                });
            }
            let key = entry.name.trim_end_matches('/').to_string();
            if by_name.insert(key.clone(), entries.len()).is_some() {
                return Err(ZipSourceError::DuplicateName {
                    path: path.to_path_buf(),
                    name: key,
                });
            }
            entries.push(Entry { name: key, ..entry });
        }
        if r.remaining() != 0 {
            return Err(damaged(
                loc.start + r.pos as u64,
                format!(
                    "{} bytes of the central directory follow its last ({}th) entry",
                    r.remaining(),
                    loc.entries
                ),
            ));
        }
        debug_assert!(loc.end <= size);
        let archive = Archive {
            path: path.to_path_buf(),
            size,
            central_directory_start: loc.start,
            entries,
            by_name,
        };
        archive.check_layout()?;
        Ok(archive)
    }

    /// Every entry's smallest possible extent (local header with the central name, no local
    /// extra field, then the compressed data) must end before the central directory, and no two
    /// may overlap. The true extents contain these, so an overlap here is a real one.
    fn check_layout(&self) -> Result<(), ZipSourceError> {
        let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(self.entries.len());
        for (i, e) in self.entries.iter().enumerate() {
            let end = e
                .local_header_offset
                .checked_add(LOCAL_LEN + e.raw_name.len() as u64)
                .and_then(|v| v.checked_add(e.compressed_size));
            match end {
                Some(end) if end <= self.central_directory_start => {
                    spans.push((e.local_header_offset, end, i))
                }
                _ => {
                    return Err(ZipSourceError::EntryOutOfBounds {
                        path: self.path.clone(),
                        entry: e.name.clone(),
                        reason: format!(
                            "its local header at byte {} and {} compressed bytes run past the central directory at byte {}",
                            e.local_header_offset, e.compressed_size, self.central_directory_start
                        ),
                    })
                }
            }
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.0 < a.1 {
                return Err(ZipSourceError::Overlap {
                    path: self.path.clone(),
                    first: self.entries[a.2].name.clone(),
                    second: self.entries[b.2].name.clone(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn entry(&self, name: &str) -> Option<(usize, &Entry)> {
        let &i = self.by_name.get(name)?;
        Some((i, &self.entries[i]))
    }

    /// Read entry `index`'s local header, check it against the central directory, and return
    /// where its data lies.
    pub(crate) fn data_window(
        &self,
        src: &dyn ReadAt,
        index: usize,
    ) -> Result<DataWindow, ZipSourceError> {
        let e = &self.entries[index];
        let mismatch =
            |field: &'static str, local: String, central: String| ZipSourceError::HeaderMismatch {
                path: self.path.clone(),
                entry: e.name.clone(),
                field,
                local,
                central,
            };
        let out_of_bounds = |reason: String| ZipSourceError::EntryOutOfBounds {
            path: self.path.clone(),
            entry: e.name.clone(),
            reason,
        };
        let at = e.local_header_offset;
        let mut fixed = [0u8; LOCAL_LEN as usize];
        // check_layout put at + 30 before the central directory.
        src.read_exact_at(&mut fixed, at)
            .map_err(|error| ZipSourceError::Io {
                path: self.path.clone(),
                error,
            })?;
        let sig = le32(&fixed, 0);
        let flags = le16(&fixed, 6);
        let method = le16(&fixed, 8);
        let crc = le32(&fixed, 14);
        let csize32 = le32(&fixed, 18);
        let usize32 = le32(&fixed, 22);
        let name_len = le16(&fixed, 26);
        let extra_len = le16(&fixed, 28);
        if sig != SIG_LOCAL {
            return Err(ZipSourceError::Damaged {
                path: self.path.clone(),
                offset: at,
                reason: format!(
                    "no local file header where the central directory puts entry {:?}",
                    e.name
                ),
            });
        }
        let var_len = u64::from(name_len) + u64::from(extra_len);
        let data_start = at + LOCAL_LEN + var_len;
        if data_start > self.central_directory_start {
            return Err(out_of_bounds(format!(
                "its local header at byte {at} runs into the central directory at byte {}",
                self.central_directory_start
            )));
        }
        // At most 128 KiB, inside the file.
        let mut var = vec![0u8; var_len as usize];
        src.read_exact_at(&mut var, at + LOCAL_LEN)
            .map_err(|error| ZipSourceError::Io {
                path: self.path.clone(),
                error,
            })?;
        let (name, extra) = var.split_at(usize::from(name_len));
        if name != e.raw_name.as_slice() {
            return Err(mismatch(
                "the name",
                format!("{:?}", String::from_utf8_lossy(name)),
                format!("{:?}", String::from_utf8_lossy(&e.raw_name)),
            ));
        }
        let enc_bits = FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION;
        if flags & enc_bits != e.flags & enc_bits {
            return Err(mismatch(
                "the encryption flags",
                format!("{:#06x}", flags & enc_bits),
                format!("{:#06x}", e.flags & enc_bits),
            ));
        }
        if method != e.method {
            return Err(mismatch(
                "the compression method",
                method.to_string(),
                e.method.to_string(),
            ));
        }
        // With a data descriptor (flag bit 3) the local CRC and sizes may be zeros; they are
        // then known from the central directory only.
        let deferred =
            flags & FLAG_DATA_DESCRIPTOR != 0 && crc == 0 && csize32 == 0 && usize32 == 0;
        if !deferred {
            let (usize64, csize64) = local_sizes(usize32, csize32, extra).map_err(|reason| {
                mismatch("the sizes", reason.to_string(), "valid sizes".into())
            })?;
            if crc != e.crc32 {
                return Err(mismatch(
                    "the CRC-32",
                    format!("{crc:#010x}"),
                    format!("{:#010x}", e.crc32),
                ));
            }
            if csize64 != e.compressed_size {
                return Err(mismatch(
                    "the compressed size",
                    csize64.to_string(),
                    e.compressed_size.to_string(),
                ));
            }
            if usize64 != e.uncompressed_size {
                return Err(mismatch(
                    "the uncompressed size",
                    usize64.to_string(),
                    e.uncompressed_size.to_string(),
                ));
            }
        }
        match data_start.checked_add(e.compressed_size) {
            Some(end) if end <= self.central_directory_start => Ok(DataWindow {
                offset: data_start,
                len: e.compressed_size,
            }),
            _ => Err(out_of_bounds(format!(
                "its {} compressed bytes from byte {data_start} run past the central directory at byte {} (file size {})",
                e.compressed_size, self.central_directory_start, self.size
            ))),
        }
    }
}

/// The local header's uncompressed and compressed sizes, from its Zip64 extra field where the
/// 32-bit fields are saturated.
fn local_sizes(usize32: u32, csize32: u32, extra: &[u8]) -> Result<(u64, u64), &'static str> {
    if usize32 != u32::MAX && csize32 != u32::MAX {
        return Ok((u64::from(usize32), u64::from(csize32)));
    }
    let z = zip64_extra(extra)?.ok_or("saturated 32-bit sizes without a Zip64 extra field")?;
    let mut r = Le::new(z);
    if z.len() >= 16 {
        // The local Zip64 field holds both sizes whenever it is present.
        let u = r.u64().ok_or("short Zip64 field")?;
        let c = r.u64().ok_or("short Zip64 field")?;
        return Ok((u, c));
    }
    let u = if usize32 == u32::MAX {
        r.u64().ok_or("short Zip64 field")?
    } else {
        u64::from(usize32)
    };
    let c = if csize32 == u32::MAX {
        r.u64().ok_or("short Zip64 field")?
    } else {
        u64::from(csize32)
    };
    Ok((u, c))
}

/// Find and check the end-of-central-directory record (and the Zip64 one it points to).
fn locate_directory(
    src: &dyn ReadAt,
    path: &Path,
    size: u64,
) -> Result<DirectoryLocation, ZipSourceError> {
    let io_err = |error: io::Error| ZipSourceError::Io {
        path: path.to_path_buf(),
        error,
    };
    let damaged = |offset: u64, reason: String| ZipSourceError::Damaged {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if size < EOCD_LEN {
        return Err(ZipSourceError::NotAZip {
            path: path.to_path_buf(),
            reason: format!("{size} bytes is shorter than the smallest zip (22 bytes)"),
        });
    }
    // The record is the last thing in the file, followed only by its comment (< 64 KiB).
    let tail_len = size.min(EOCD_LEN + u64::from(u16::MAX));
    let tail_start = size - tail_len;
    let mut tail = vec![0u8; tail_len as usize];
    src.read_exact_at(&mut tail, tail_start).map_err(io_err)?;
    let mut found = None;
    for pos in (0..=tail.len() - EOCD_LEN as usize).rev() {
        if le32(&tail[pos..], 0) != SIG_EOCD {
            continue;
        }
        let comment_len = le16(&tail[pos..], 20);
        if pos + EOCD_LEN as usize + usize::from(comment_len) == tail.len() {
            found = Some(pos);
            break;
        }
    }
    let Some(pos) = found else {
        let mut head = [0u8; 4];
        let starts_like_zip = src.read_exact_at(&mut head, 0).is_ok() && head == *b"PK\x03\x04";
        return Err(if starts_like_zip {
            damaged(
                size,
                "it starts like a zip but has no end-of-central-directory record at its end (an incomplete download?)".into(),
            )
        } else {
            ZipSourceError::NotAZip {
                path: path.to_path_buf(),
                reason: "no end-of-central-directory record at its end".into(),
            }
        });
    };
    let eocd_at = tail_start + pos as u64;
    let eocd = &tail[pos..];
    let disk = le16(eocd, 4);
    let cd_disk = le16(eocd, 6);
    let eocd_disk_entries = le16(eocd, 8);
    let eocd_entries = le16(eocd, 10);
    let eocd_cd_size = le32(eocd, 12);
    let eocd_cd_off = le32(eocd, 16);
    if disk != 0 || cd_disk != 0 || eocd_disk_entries != eocd_entries {
        return Err(ZipSourceError::MultiDisk {
            path: path.to_path_buf(),
        });
    }

    // Zip64: a locator right before the record points at the Zip64 EOCD record.
    let mut locator = None;
    if eocd_at >= EOCD64_LOCATOR_LEN {
        let mut buf = [0u8; EOCD64_LOCATOR_LEN as usize];
        src.read_exact_at(&mut buf, eocd_at - EOCD64_LOCATOR_LEN)
            .map_err(io_err)?;
        if le32(&buf, 0) == SIG_EOCD64_LOCATOR {
            let (z_disk, z_off, disks) = (le32(&buf, 4), le64(&buf, 8), le32(&buf, 16));
            if z_disk != 0 || disks > 1 {
                return Err(ZipSourceError::MultiDisk {
                    path: path.to_path_buf(),
                });
            }
            locator = Some((eocd_at - EOCD64_LOCATOR_LEN, z_off));
        }
    }
    let saturated = eocd_entries == u16::MAX
        || eocd_disk_entries == u16::MAX
        || eocd_cd_size == u32::MAX
        || eocd_cd_off == u32::MAX;
    let loc = match locator {
        None if saturated => return Err(damaged(
            eocd_at,
            "the end record's fields are saturated (Zip64) but there is no Zip64 locator before it"
                .into(),
        )),
        None => DirectoryLocation {
            entries: u64::from(eocd_entries),
            start: u64::from(eocd_cd_off),
            size: u64::from(eocd_cd_size),
            end: eocd_at,
        },
        Some((locator_at, z_off)) => {
            let record_ok = z_off
                .checked_add(EOCD64_MIN_LEN)
                .is_some_and(|end| end <= locator_at);
            if !record_ok {
                return Err(damaged(
                    locator_at,
                    format!(
                        "the Zip64 locator points at byte {z_off}, where no Zip64 end record fits"
                    ),
                ));
            }
            let mut buf = [0u8; EOCD64_MIN_LEN as usize];
            src.read_exact_at(&mut buf, z_off).map_err(io_err)?;
            let sig = le32(&buf, 0);
            let rec_len = le64(&buf, 4);
            let disk = le32(&buf, 16);
            let cd_disk = le32(&buf, 20);
            let n_disk = le64(&buf, 24);
            let n_total = le64(&buf, 32);
            let cd_size = le64(&buf, 40);
            let cd_off = le64(&buf, 48);
            if sig != SIG_EOCD64 {
                return Err(damaged(
                    z_off,
                    "no Zip64 end record where the Zip64 locator points".into(),
                ));
            }
            if z_off.checked_add(12).and_then(|v| v.checked_add(rec_len)) != Some(locator_at) {
                return Err(damaged(
                    z_off,
                    format!("the Zip64 end record's length ({rec_len}) does not reach the locator at byte {locator_at}"),
                ));
            }
            if disk != 0 || cd_disk != 0 || n_disk != n_total {
                return Err(ZipSourceError::MultiDisk {
                    path: path.to_path_buf(),
                });
            }
            // The 32-bit fields must agree wherever they are not saturated.
            let agrees16 = |v: u16, wide: u64| v == u16::MAX || u64::from(v) == wide;
            let agrees32 = |v: u32, wide: u64| v == u32::MAX || u64::from(v) == wide;
            if !agrees16(eocd_entries, n_total)
                || !agrees32(eocd_cd_size, cd_size)
                || !agrees32(eocd_cd_off, cd_off)
            {
                return Err(damaged(
                    eocd_at,
                    "the end record and the Zip64 end record disagree".into(),
                ));
            }
            DirectoryLocation {
                entries: n_total,
                start: cd_off,
                size: cd_size,
                end: z_off,
            }
        }
    };
    if loc.start.checked_add(loc.size) != Some(loc.end) {
        return Err(damaged(
            loc.start,
            format!(
                "the central directory ({} bytes from byte {}) does not end where the end record starts (byte {}); data prepended to the archive or a damaged end record",
                loc.size, loc.start, loc.end
            ),
        ));
    }
    Ok(loc)
}

/// One central-directory record; the reader is left after it.
fn parse_central_entry(r: &mut Le<'_>, cd_start: u64) -> Result<Entry, String> {
    let short = || "the record runs past the end of the central directory".to_string();
    let fixed = r.bytes(CENTRAL_LEN).ok_or_else(short)?;
    let sig = le32(fixed, 0);
    let made_by = le16(fixed, 4);
    let flags = le16(fixed, 8);
    let method = le16(fixed, 10);
    let crc32 = le32(fixed, 16);
    let csize32 = le32(fixed, 20);
    let usize32 = le32(fixed, 24);
    let name_len = le16(fixed, 28);
    let extra_len = le16(fixed, 30);
    let comment_len = le16(fixed, 32);
    let disk16 = le16(fixed, 34);
    let external = le32(fixed, 38);
    let offset32 = le32(fixed, 42);
    if sig != SIG_CENTRAL {
        return Err("no central directory signature".into());
    }
    let raw_name = r.bytes(usize::from(name_len)).ok_or_else(short)?.to_vec();
    let extra = r.bytes(usize::from(extra_len)).ok_or_else(short)?;
    r.bytes(usize::from(comment_len)).ok_or_else(short)?;

    let mut uncompressed_size = u64::from(usize32);
    let mut compressed_size = u64::from(csize32);
    let mut local_header_offset = u64::from(offset32);
    let mut disk = u32::from(disk16);
    let saturated =
        usize32 == u32::MAX || csize32 == u32::MAX || offset32 == u32::MAX || disk16 == u16::MAX;
    if saturated {
        let z = zip64_extra(extra)?.ok_or("saturated 32-bit fields without a Zip64 extra field")?;
        let mut zr = Le::new(z);
        let missing = "the Zip64 extra field lacks a field the record defers to it";
        if usize32 == u32::MAX {
            uncompressed_size = zr.u64().ok_or(missing)?;
        }
        if csize32 == u32::MAX {
            compressed_size = zr.u64().ok_or(missing)?;
        }
        if offset32 == u32::MAX {
            local_header_offset = zr.u64().ok_or(missing)?;
        }
        if disk16 == u16::MAX {
            disk = zr.u32().ok_or(missing)?;
        }
    } else {
        // Check it is well formed even when unused.
        zip64_extra(extra)?;
    }
    if disk != 0 {
        return Err(format!(
            "the entry starts on disk {disk} (a multi-disk archive)"
        ));
    }
    if local_header_offset >= cd_start {
        return Err(format!(
            "the local header offset {local_header_offset} is not before the central directory (byte {cd_start})"
        ));
    }
    let name =
        decode_name(&raw_name, flags & FLAG_UTF8 != 0).map_err(|reason| reason.to_string())?;
    let is_dir = name.ends_with('/');
    // Unix (3) and OS X (19) hosts keep the mode in the high half of the external attributes.
    let host = made_by >> 8;
    let is_symlink = (host == 3 || host == 19) && (external >> 16) & 0o170_000 == 0o120_000;
    if method == METHOD_STORED
        && compressed_size != uncompressed_size
        && flags & FLAG_ENCRYPTED == 0
    {
        return Err(format!(
            "stored (uncompressed) entry {name:?} has compressed size {compressed_size} but size {uncompressed_size}"
        ));
    }
    Ok(Entry {
        name,
        raw_name,
        is_dir,
        is_symlink,
        flags,
        method,
        crc32,
        compressed_size,
        uncompressed_size,
        local_header_offset,
    })
}
