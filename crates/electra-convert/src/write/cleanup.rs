//! Temporary output directories that must not outlive an interrupted run.
//!
//! Every staging directory is registered here while it exists. The library installs no signal
//! handler: a program that wants interrupted runs cleaned up (the `electra-convert` binary does)
//! calls [`remove_all`] (re-exported as `write::remove_staged_outputs`) from its own handler and
//! exits while holding the returned lock. The rename that commits a staging directory runs under
//! the same lock ([`commit`]), so an interrupt either removes the staging directory before it is
//! committed or leaves the committed output alone; it never deletes files out of a directory that
//! is being renamed into place.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Remember `path` for removal by [`remove_all`].
pub fn register(path: &Path) {
    registry().push(path.to_path_buf());
}

/// Forget `path` (it was committed or already removed).
pub(crate) fn unregister(path: &Path) {
    registry().retain(|p| p != path);
}

/// Run `rename` (what makes a staged directory final) while no registered directory can be
/// removed, and forget `paths` if it succeeds: the signal handler waits for it, and afterwards
/// finds nothing of this output left to delete.
pub fn commit<T, E>(paths: &[&Path], rename: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let mut registry = registry();
    let result = rename();
    if result.is_ok() {
        registry.retain(|p| !paths.contains(&p.as_path()));
    }
    result
}

/// Remove every registered directory (what a signal handler should do), holding the lock so no
/// [`commit`] runs meanwhile. Returns the lock still held: a handler that exits the process while
/// holding it guarantees nothing is committed after the cleanup.
pub fn remove_all() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    remove_where(|_| true)
}

/// [`remove_all`] limited to the registered directories inside `root`, under the same lock: for
/// tests that run beside other conversions in one process and must not remove their staging.
pub fn remove_inside(root: &Path) -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    remove_where(|p| p.starts_with(root))
}

fn remove_where(
    mut chosen: impl FnMut(&Path) -> bool,
) -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    let mut registry = registry();
    registry.retain(|p| {
        if chosen(p) {
            remove_while_written(p);
            false
        } else {
            true
        }
    });
    registry
}

/// `remove_dir_all`, tried again while it fails and the directory is still there: the
/// conversion's writer threads keep running while a signal handler cleans up, and a file they
/// create between the listing and the final `rmdir` makes one attempt fail with "directory not
/// empty" (seen as a flaky interrupt test on a loaded machine). Bounded: at most 50 attempts.
fn remove_while_written(path: &Path) {
    // Renamed away first: a writer creating files by path then fails instead of refilling the
    // directory faster than it is emptied (the regression test's writer outran 50 attempts on
    // a loaded machine).
    let doomed = path.with_file_name(format!(
        "{}.removing",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let target = if std::fs::rename(path, &doomed).is_ok() {
        doomed.as_path()
    } else {
        path
    };
    for _ in 0..50 {
        if std::fs::remove_dir_all(target).is_ok() || !target.exists() {
            return;
        }
        std::thread::yield_now();
    }
}
