//! Bounds-checked positioned reads and a little-endian cursor over metadata blocks.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::error::{limit, malformed, Error, Result};
use super::{MAX_METADATA_BLOCK, METADATA_WORK_FACTOR, METADATA_WORK_MIN};

/// Where the bytes come from: an open file (positioned reads) or memory.
enum Source {
    Mem(Vec<u8>),
    File(Mutex<File>),
}

/// A file of known length from which ranges are read only after a bounds check.
pub(crate) struct Reader {
    src: Source,
    len: u64,
    /// Metadata bytes read so far, against `budget`: bounds total parse time on crafted files
    /// (e.g. thousands of links to one huge header, overlapping B-trees).
    work: AtomicU64,
    budget: u64,
}

impl Reader {
    pub(crate) fn from_file(file: File) -> Result<Self> {
        let len = file.metadata()?.len();
        Ok(Reader::new(Source::File(Mutex::new(file)), len))
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Self {
        let len = bytes.len() as u64;
        Reader::new(Source::Mem(bytes), len)
    }

    fn new(src: Source, len: u64) -> Self {
        Reader {
            src,
            len,
            work: AtomicU64::new(0),
            budget: len
                .saturating_mul(METADATA_WORK_FACTOR)
                .max(METADATA_WORK_MIN),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Checks that `len` bytes at `offset` lie inside the file.
    pub(crate) fn check(&self, what: &'static str, offset: u64, len: u64) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::OutOfBounds {
                what,
                offset,
                len,
                file_len: self.len,
            }),
        }
    }

    /// Reads `len` bytes of metadata at `offset`, counted against the work budget.
    pub(crate) fn read(&self, what: &'static str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.check(what, offset, len)?;
        let done = self
            .work
            .fetch_add(len, Ordering::Relaxed)
            .saturating_add(len);
        if done > self.budget {
            return Err(limit(
                what,
                offset,
                format!(
                    "more than {} bytes of metadata read in total (a crafted file that revisits structures?)",
                    self.budget
                ),
            ));
        }
        self.read_data(what, offset, len)
    }

    /// Reads `len` bytes at `offset` without counting them (dataset data).
    pub(crate) fn read_data(&self, what: &'static str, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.check(what, offset, len)?;
        let n = usize::try_from(len).map_err(|_| limit(what, offset, "length exceeds usize"))?;
        let start =
            usize::try_from(offset).map_err(|_| limit(what, offset, "offset exceeds usize"))?;
        match &self.src {
            Source::Mem(v) => start
                .checked_add(n)
                .and_then(|end| v.get(start..end))
                .map(<[u8]>::to_vec)
                .ok_or(Error::OutOfBounds {
                    what,
                    offset,
                    len,
                    file_len: self.len,
                }),
            Source::File(m) => {
                let mut f = m
                    .lock()
                    .map_err(|_| Error::Io(std::io::Error::other("file lock poisoned")))?;
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = vec![0u8; n];
                f.read_exact(&mut buf)?;
                Ok(buf)
            }
        }
    }

    /// Reads a metadata block, refusing blocks larger than [`MAX_METADATA_BLOCK`].
    pub(crate) fn read_meta(&self, what: &'static str, offset: u64, len: u64) -> Result<Vec<u8>> {
        if len > MAX_METADATA_BLOCK {
            return Err(limit(
                what,
                offset,
                format!(
                    "block of {len} bytes exceeds the {MAX_METADATA_BLOCK}-byte metadata limit"
                ),
            ));
        }
        self.read(what, offset, len)
    }

    /// Reads up to `len` bytes at `offset`, fewer if the file ends first.
    pub(crate) fn read_upto(&self, what: &'static str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let avail = self.len.saturating_sub(offset).min(len);
        self.read(what, offset, avail)
    }
}

/// File-wide parameters every parser needs.
pub(crate) struct Ctx {
    pub(crate) reader: Reader,
    /// Size of file addresses in bytes (4 or 8).
    pub(crate) sizeof_addr: u8,
    /// Size of lengths in bytes (4 or 8).
    pub(crate) sizeof_len: u8,
    /// Absolute offset that relative addresses are measured from.
    pub(crate) base: u64,
    /// Group leaf node K (symbol table nodes hold up to 2K entries).
    pub(crate) leaf_k: u16,
    /// Group internal node K (group B-tree nodes hold up to 2K children).
    pub(crate) internal_k: u16,
}

impl Ctx {
    /// Turns a relative address into an absolute file offset inside the file.
    pub(crate) fn abs(&self, what: &'static str, rel: u64) -> Result<u64> {
        let abs = self.base.checked_add(rel).ok_or(Error::OutOfBounds {
            what,
            offset: rel,
            len: 0,
            file_len: self.reader.len(),
        })?;
        if abs >= self.reader.len() {
            return Err(Error::OutOfBounds {
                what,
                offset: abs,
                len: 1,
                file_len: self.reader.len(),
            });
        }
        Ok(abs)
    }

    pub(crate) fn cursor<'a>(&self, buf: &'a [u8], offset: u64, what: &'static str) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            offset,
            what,
            sizeof_addr: self.sizeof_addr,
            sizeof_len: self.sizeof_len,
        }
    }
}

/// Little-endian reader over one metadata block; every read is bounds-checked.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute file offset of `buf[0]`, for error messages.
    offset: u64,
    what: &'static str,
    sizeof_addr: u8,
    sizeof_len: u8,
}

impl<'a> Cursor<'a> {
    /// A cursor for blocks read before the address sizes are known.
    pub(crate) fn raw(buf: &'a [u8], offset: u64, what: &'static str) -> Self {
        Cursor {
            buf,
            pos: 0,
            offset,
            what,
            sizeof_addr: 8,
            sizeof_len: 8,
        }
    }

    /// Absolute file offset of the current position.
    pub(crate) fn file_pos(&self) -> u64 {
        self.offset.saturating_add(self.pos as u64)
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn malformed(&self, detail: impl Into<String>) -> Error {
        malformed(self.what, self.file_pos(), detail)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n);
        match end.and_then(|e| self.buf.get(self.pos..e)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.malformed(format!(
                "needs {n} more bytes, only {} left in the block",
                self.remaining()
            ))),
        }
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    /// Skips forward to the next multiple of `align` counted from the block start.
    pub(crate) fn align(&mut self, align: usize) -> Result<()> {
        let rem = self.pos % align;
        if rem != 0 {
            self.skip(align - rem)?;
        }
        Ok(())
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.uint(1)? as u8)
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(self.uint(2)? as u16)
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(self.uint(4)? as u32)
    }

    /// Little-endian unsigned integer of `n` (≤ 8) bytes.
    pub(crate) fn uint(&mut self, n: usize) -> Result<u64> {
        let b = self.bytes(n.min(8))?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// An address; `None` when it is the undefined address (all bits set).
    pub(crate) fn addr(&mut self) -> Result<Option<u64>> {
        let n = usize::from(self.sizeof_addr);
        let v = self.uint(n)?;
        let undef = if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        };
        Ok(if v == undef { None } else { Some(v) })
    }

    /// A length field.
    pub(crate) fn length(&mut self) -> Result<u64> {
        self.uint(usize::from(self.sizeof_len))
    }
}
