//! Temporary output directories that must not outlive an interrupted run.
//!
//! Every staging directory is registered here while it exists. The first registration installs
//! a SIGINT/SIGTERM handler (a signal-hook iterator thread) that deletes every registered
//! directory and then exits with 128 + the signal number, as a shell would report it. The
//! rename that commits a staging directory runs under the same lock ([`commit`]), so an interrupt
//! either removes the staging directory before it is committed or leaves the committed output
//! alone; it never deletes files out of a directory that is being renamed into place.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

static REGISTRY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static HANDLER: Once = Once::new();

fn registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Remember `path` for removal on SIGINT/SIGTERM.
pub fn register(path: &Path) {
    install_handler();
    registry().push(path.to_path_buf());
}

/// Forget `path` (it was committed or already removed).
pub fn unregister(path: &Path) {
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

/// Remove every registered directory (what the signal handler does), holding the lock so no
/// [`commit`] runs meanwhile. Returns the lock still held: the handler exits the process with
/// it, so nothing can be committed after the cleanup.
pub fn remove_all() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    let mut registry = registry();
    for p in registry.drain(..) {
        let _ = std::fs::remove_dir_all(&p);
    }
    registry
}

fn install_handler() {
    HANDLER.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
            Ok(mut signals) => {
                let spawned = std::thread::Builder::new()
                    .name("electra-convert-cleanup".into())
                    .spawn(move || {
                        if let Some(sig) = signals.forever().next() {
                            let _held = remove_all();
                            std::process::exit(128 + sig);
                        }
                    });
                if let Err(e) = spawned {
                    eprintln!("electra-convert: warning: could not start the cleanup thread ({e}); an interrupted run may leave a temporary directory behind");
                }
            }
            Err(e) => {
                eprintln!("electra-convert: warning: could not install a signal handler ({e}); an interrupted run may leave a temporary directory behind");
            }
        }
    });
}
