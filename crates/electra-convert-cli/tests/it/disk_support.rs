//! Output-side conditions for the command-line tests: a full disk (a tiny tmpfs mounted for the
//! length of a test; needs root), a run caught while its staging directory exists, and a
//! checkpoint large enough to catch.

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

/// An ELECTRA checkpoint like the `tied` fixture but with a vocabulary of `vocab` words
/// (zeros, no Adam slots), large enough that converting or exporting it takes a while.
pub fn write_large_checkpoint(dir: &Path, vocab: u64) {
    use tf_checkpoint::testing::{build_bundle, TensorSpec};
    let tied =
        tf_checkpoint::Checkpoint::open(&crate::repo_root().join("fixtures/electra/tied")).unwrap();
    let v = tied
        .get("electra/embeddings/word_embeddings")
        .unwrap()
        .shape[0];
    let mut specs = Vec::new();
    for info in tied.tensors() {
        if info.name.ends_with("/adam_m") || info.name.ends_with("/adam_v") {
            continue;
        }
        let shape: Vec<i64> = info
            .shape
            .iter()
            .map(|&d| if d == v { vocab as i64 } else { d as i64 })
            .collect();
        let n: i64 = shape.iter().product();
        let elem = info.dtype.element_size().unwrap() as i64;
        let data = if info.name == "global_step" {
            tied.read_bytes("global_step").unwrap().into_owned()
        } else {
            vec![0u8; (n * elem) as usize]
        };
        specs.push(TensorSpec {
            name: info.name.clone().into_bytes(),
            dtype: info.dtype.to_proto(),
            shape,
            data,
            crc: None,
        });
    }
    let (index, data) = build_bundle(&specs, false);
    std::fs::write(dir.join("model.ckpt-1.index"), index).unwrap();
    std::fs::write(dir.join("model.ckpt-1.data-00000-of-00001"), data).unwrap();
}
