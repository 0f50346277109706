//! The zip file as the reader holds it, and the free-space probe for inflated shards.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::archive::{FileAt, ReadAt};

/// The zip file, opened once for the container parser and entry copies.
#[derive(Debug)]
pub struct SharedZip {
    pub path: PathBuf,
    pub file: FileAt,
}

impl SharedZip {
    pub fn open(path: PathBuf) -> io::Result<Self> {
        let file = FileAt::open(&path)?;
        Ok(Self { path, file })
    }
}

impl ReadAt for SharedZip {
    fn size(&self) -> u64 {
        self.file.size()
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
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
