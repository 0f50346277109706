//! Temporary output directories that must not outlive an interrupted run.
//!
//! Every staging directory is registered here while it exists. The first registration installs
//! a SIGINT/SIGTERM handler (a signal-hook iterator thread) that deletes every registered
//! directory and then exits with 128 + the signal number, as a shell would report it.

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

/// Remove every registered directory (what the signal handler does).
pub fn remove_all() {
    let paths = std::mem::take(&mut *registry());
    for p in paths {
        let _ = std::fs::remove_dir_all(&p);
    }
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
                            remove_all();
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
