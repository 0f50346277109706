//! The zip file as the reader holds it, and the free-space probe for inflated shards.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::archive::{FileAt, ReadAt};

/// The zip file, opened once for the container parser and entry copies.
pub(crate) struct SharedZip {
    /// The archive as the user named it (for messages and locations).
    pub path: PathBuf,
    /// The local file holding the archive's bytes: stored entries are read from it in place.
    /// The archive itself, or for one in a bucket, the sparse local copy of it.
    pub data_path: PathBuf,
    pub file: Box<dyn ReadAt>,
}

impl std::fmt::Debug for SharedZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedZip")
            .field("path", &self.path)
            .field("data_path", &self.data_path)
            .field("size", &self.file.size())
            .finish()
    }
}

impl SharedZip {
    pub(crate) fn open(path: PathBuf) -> io::Result<Self> {
        let file = FileAt::open(&path)?;
        Ok(Self {
            data_path: path.clone(),
            path,
            file: Box::new(file),
        })
    }

    /// An archive named `path` whose bytes come from `file`, kept locally in `data_path`.
    #[cfg(feature = "remote")]
    pub(crate) fn from_reader(path: PathBuf, data_path: PathBuf, file: Box<dyn ReadAt>) -> Self {
        Self {
            path,
            data_path,
            file,
        }
    }
}

impl ReadAt for SharedZip {
    fn size(&self) -> u64 {
        self.file.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn prepare(&self, offset: u64, len: u64) -> io::Result<()> {
        self.file.prepare(offset, len)
    }
}

/// Free bytes for an unprivileged writer on the file system holding `file`, where known.
#[cfg(target_os = "linux")]
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub(crate) fn free_bytes(file: &File) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: fstatvfs writes a whole statvfs on success, and only then is it read.
    let rc = unsafe { libc::fstatvfs(file.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: rc == 0, so the struct was filled.
    let st = unsafe { st.assume_init() };
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn free_bytes(_file: &File) -> Option<u64> {
    None
}
