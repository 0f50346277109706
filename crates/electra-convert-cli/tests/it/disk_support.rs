//! Output-side conditions for the command-line tests: a full disk (a tiny tmpfs mounted for the
//! length of a test; needs root) and a run caught while its staging directory exists.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mounted tmpfs; unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A tmpfs of `size` (mount's spelling, e.g. `200k`) at a new directory `small` inside `parent`,
/// or `None` with a SKIPPED message naming `test` when this machine will not mount one (not
/// root).
pub fn small_tmpfs(parent: &Path, size: &str, test: &str) -> Option<Tmpfs> {
    let mnt = parent.join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        Some(Tmpfs(mnt))
    } else {
        eprintln!("SKIPPED {test}: cannot mount a tmpfs here (not root?)");
        None
    }
}

/// Wait (up to a minute) until a staging directory (`.tmp-` in its name) appears in `parent`,
/// which is when a run can be interrupted mid-write. False when `child` ended first or the
/// minute passed.
pub fn wait_for_staging(parent: &Path, child: &mut Child) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let staging = std::fs::read_dir(parent).is_ok_and(|dir| {
            dir.flatten()
                .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        });
        if staging {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}
