//! Temporary directories that live as long as an open source or an output on its way to a
//! bucket (a zip's inflated shards, a bucket checkpoint's fetched ranges, a build before its
//! upload), registered so that an interrupted run removes them too.
//!
//! Like the staging directories of `write`, this is for a program's own signal handler: the
//! library installs none. [`remove_all`] removes every registered directory; the
//! `electra-convert` binary calls it (after `write::remove_staged_outputs`) before it exits on
//! SIGINT/SIGTERM. A dropped [`ScratchDir`] removes its directory and forgets it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// A private temporary directory, removed when dropped or by [`remove_all`].
#[derive(Debug)]
pub struct ScratchDir {
    dir: Option<tempfile::TempDir>,
}

impl ScratchDir {
    /// A new directory named `PREFIX…` in `parent` (the system's temporary directory if `None`).
    pub fn new(prefix: &str, parent: Option<&Path>) -> std::io::Result<ScratchDir> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix);
        let dir = match parent {
            Some(p) => builder.tempdir_in(p)?,
            None => builder.tempdir()?,
        };
        registry().push(dir.path().to_path_buf());
        Ok(ScratchDir { dir: Some(dir) })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(tempfile::TempDir::path)
            .unwrap_or(Path::new(""))
    }

    /// Keep the directory (it is neither removed when dropped nor by [`remove_all`]).
    pub fn keep(mut self) -> PathBuf {
        let dir = self.dir.take().expect("a scratch directory is kept once");
        registry().retain(|p| p != dir.path());
        dir.keep()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            registry().retain(|p| p != dir.path());
            drop(dir);
        }
    }
}

/// Remove every registered scratch directory (what a signal handler should do before the
/// process exits). Returns how many were removed.
pub fn remove_all() -> usize {
    remove_where(|_| true)
}

/// [`remove_all`] limited to the directories inside `root` (tests share one process).
#[cfg(test)]
fn remove_inside(root: &Path) -> usize {
    remove_where(|p| p.starts_with(root))
}

fn remove_where(chosen: impl Fn(&Path) -> bool) -> usize {
    let mut registry = registry();
    let mut removed = 0;
    registry.retain(|p| {
        if !chosen(p) {
            return true;
        }
        // Renamed away first, so a thread still creating files by path fails instead of
        // refilling it; then removed, bounded.
        let doomed = p.with_file_name(format!(
            "{}.removing",
            p.file_name().unwrap_or_default().to_string_lossy()
        ));
        let target = if std::fs::rename(p, &doomed).is_ok() {
            doomed
        } else {
            p.clone()
        };
        for _ in 0..50 {
            if std::fs::remove_dir_all(&target).is_ok() || !target.exists() {
                break;
            }
        }
        removed += 1;
        false
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_kept_and_interrupted_scratch_directories() {
        let root = tempfile::tempdir().unwrap();
        let dropped = ScratchDir::new("a-", Some(root.path())).unwrap();
        let path = dropped.path().to_path_buf();
        std::fs::write(path.join("f"), b"x").unwrap();
        drop(dropped);
        assert!(!path.exists());

        let kept = ScratchDir::new("b-", Some(root.path())).unwrap();
        let kept = kept.keep();
        assert!(kept.is_dir());

        let live = ScratchDir::new("c-", Some(root.path())).unwrap();
        let live_path = live.path().to_path_buf();
        std::fs::write(live_path.join("f"), b"x").unwrap();
        assert_eq!(remove_inside(root.path()), 1);
        assert!(!live_path.exists());
        assert!(kept.is_dir(), "a kept directory is not removed");
        drop(live); // nothing left to remove, and no panic
    }
}
