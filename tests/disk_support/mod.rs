//! A full disk for tests: a tiny tmpfs mounted for the length of a test (needs root).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
