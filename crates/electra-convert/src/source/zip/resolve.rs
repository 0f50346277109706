//! Finding the checkpoint inside an archive, the way `tf_checkpoint::resolve` finds one on disk,
//! and splitting `PATH.zip#INNER` arguments.
//!
//! - No selector: exactly one `checkpoint` state file anywhere → the prefix it names, in its
//!   folder; otherwise the single `*.index` entry anywhere; several → an error listing them.
//! - A selector naming a folder: that folder's `checkpoint` state file, else the single
//!   `*.index` directly in it (as for a directory on disk).
//! - A selector naming a prefix, or its `.index`, `.meta` or `.data-SSSSS-of-NNNNN` entry: that
//!   prefix, whose `.index` must be in the archive.

use std::path::{Path, PathBuf};

use super::archive::Archive;
use super::error::ZipSourceError;
use super::names::check_name;
use tf_checkpoint::parse_state_file;

/// Name of the state file TF's savers write.
pub const STATE_FILE: &str = "checkpoint";

/// At most this many candidates are listed in an error.
const MAX_LISTED: usize = 20;

/// How the checkpoint inside the archive was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// From this `checkpoint` state file (its entry name).
    StateFile(String),
    /// The only `*.index` entry of the archive (or of the selected folder).
    SingleIndex,
    /// Named by the selector (the prefix or one of its files).
    Selector,
}

/// Split one user argument `PATH.zip#INNER` into the zip path and the inner selector.
///
/// `#` is legal in local file names, so the string is split only at a `#` whose left part ends
/// in `.zip` (any case) and is an existing file, and never when the whole string is itself an
/// existing path. Of several such `#`, the rightmost wins (the longest existing file). An empty
/// inner part (`PATH.zip#`) gives `None`, the same as no selector.
pub fn split_zip_selector(arg: &str) -> (PathBuf, Option<String>) {
    let whole = || (PathBuf::from(arg), None);
    if Path::new(arg).exists() {
        return whole();
    }
    for (at, _) in arg.rmatch_indices('#') {
        let (left, right) = (&arg[..at], &arg[at + 1..]);
        let is_zip_name = left.len() >= 4
            && left
                .get(left.len() - 4..)
                .is_some_and(|ext| ext.eq_ignore_ascii_case(".zip"));
        if is_zip_name && Path::new(left).is_file() {
            let inner = (!right.is_empty()).then(|| right.to_string());
            return (PathBuf::from(left), inner);
        }
    }
    whole()
}

/// Does `path` look like a zip file: a `.zip` name or a zip signature at its start?
pub fn looks_like_zip(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    let by_name = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
    by_name || {
        use std::io::Read;
        let mut head = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && (head == *b"PK\x03\x04" || head == *b"PK\x05\x06")
    }
}

/// `folder/name`, or `name` in the root.
pub fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

/// The folder part of an entry name (`""` for the root).
pub fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(folder, _)| folder)
}

fn base_name(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(_, base)| base)
}

/// Strip `.index`, `.meta` or `.data-<digits>-of-<digits>` from an entry name.
pub fn strip_known_suffix(name: &str) -> Option<&str> {
    let stem = if let Some(stem) = name.strip_suffix(".index") {
        stem
    } else if let Some(stem) = name.strip_suffix(".meta") {
        stem
    } else {
        let at = name.rfind(".data-")?;
        let (shard, total) = name[at + ".data-".len()..].split_once("-of-")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(shard) || !digits(total) {
            return None;
        }
        &name[..at]
    };
    (!base_name(stem).is_empty()).then_some(stem)
}

/// Reads a small entry (the state file) for the resolver.
pub type ReadSmall<'a> = dyn Fn(usize) -> Result<Vec<u8>, ZipSourceError> + 'a;

/// The resolver's view of an archive.
pub struct Finder<'a> {
    pub archive: &'a Archive,
    pub read_small: &'a ReadSmall<'a>,
}

impl Finder<'_> {
    fn path(&self) -> PathBuf {
        self.archive.path.clone()
    }

    fn file_index(&self, name: &str) -> Option<usize> {
        self.archive
            .entry(name)
            .filter(|(_, e)| !e.is_dir)
            .map(|(i, _)| i)
    }

    fn is_file(&self, name: &str) -> bool {
        self.file_index(name).is_some()
    }

    fn is_folder(&self, name: &str) -> bool {
        if self.archive.entry(name).is_some_and(|(_, e)| e.is_dir) {
            return true;
        }
        let below = format!("{name}/");
        self.archive
            .by_name
            .range(below.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&below))
    }

    fn has_index(&self, prefix: &str) -> bool {
        self.is_file(&format!("{prefix}.index"))
    }

    /// Every prefix with an `.index` entry, in `folder` only (`Some`) or anywhere (`None`).
    fn index_prefixes(&self, folder: Option<&str>) -> Vec<String> {
        self.archive
            .entries
            .iter()
            .filter(|e| !e.is_dir)
            .filter(|e| folder.is_none_or(|f| parent(&e.name) == f))
            .filter_map(|e| e.name.strip_suffix(".index"))
            .filter(|stem| !base_name(stem).is_empty())
            .map(str::to_string)
            .collect()
    }

    fn listed(mut names: Vec<String>) -> Vec<String> {
        names.sort();
        if names.len() > MAX_LISTED {
            let more = names.len() - MAX_LISTED;
            names.truncate(MAX_LISTED);
            names.push(format!("and {more} more"));
        }
        names
    }

    /// Resolve with an optional selector.
    pub fn resolve(&self, selector: Option<&str>) -> Result<(String, Resolution), ZipSourceError> {
        match selector.map(|s| s.trim_end_matches('/')) {
            None | Some("") => self.resolve_whole(),
            Some(sel) => self.resolve_selector(sel),
        }
    }

    fn resolve_whole(&self) -> Result<(String, Resolution), ZipSourceError> {
        let state_files: Vec<&str> = self
            .archive
            .entries
            .iter()
            .filter(|e| !e.is_dir && base_name(&e.name) == STATE_FILE)
            .map(|e| e.name.as_str())
            .collect();
        if let [state_file] = state_files[..] {
            return self.via_state_file(state_file);
        }
        let mut candidates = self.index_prefixes(None);
        match candidates.len() {
            1 => Ok((candidates.remove(0), Resolution::SingleIndex)),
            0 => Err(ZipSourceError::NoCheckpoint {
                path: self.path(),
                hint: self.no_checkpoint_hint(None),
            }),
            _ => Err(ZipSourceError::SeveralCheckpoints {
                path: self.path(),
                candidates: Self::listed(candidates),
            }),
        }
    }

    /// What to add when there is no index: data shards without their index are worth naming.
    fn no_checkpoint_hint(&self, folder: Option<&str>) -> String {
        let orphans: Vec<String> = self
            .archive
            .entries
            .iter()
            .filter(|e| !e.is_dir && folder.is_none_or(|f| parent(&e.name) == f))
            .filter(|e| e.name.contains(".data-") && strip_known_suffix(&e.name).is_some())
            .map(|e| e.name.clone())
            .collect();
        if orphans.is_empty() {
            return match folder {
                Some(_) => String::new(),
                None => "; pass the zip of a TensorFlow checkpoint (PREFIX.index and PREFIX.data-* files)".into(),
            };
        }
        format!(
            "; it holds data shards ({}) but not the .index file that goes with them: the archive is incomplete",
            Self::listed(orphans).join(", ")
        )
    }

    fn resolve_selector(&self, sel: &str) -> Result<(String, Resolution), ZipSourceError> {
        let bad = |reason: String, candidates: Vec<String>| ZipSourceError::BadSelector {
            path: self.path(),
            selector: sel.to_string(),
            reason,
            candidates,
        };
        if let Err(why) = check_name(sel, false) {
            return Err(bad(
                format!("not a plain path inside the archive ({why})"),
                Vec::new(),
            ));
        }
        if self.is_folder(sel) {
            return self.resolve_folder(sel);
        }
        if self.has_index(sel) {
            return Ok((sel.to_string(), Resolution::Selector));
        }
        if let Some(prefix) = strip_known_suffix(sel) {
            if self.has_index(prefix) {
                return Ok((prefix.to_string(), Resolution::Selector));
            }
            let hint = if self.is_file(sel) {
                format!("; the archive has {sel} but not the .index beside it: it is incomplete")
            } else {
                format!("; nor is {sel} in it")
            };
            return Err(ZipSourceError::NoIndex {
                path: self.path(),
                prefix: prefix.to_string(),
                hint,
            });
        }
        let candidates = Self::listed(self.index_prefixes(None));
        if self.is_file(sel) {
            return Err(bad(
                "a file in the archive, but not part of a V2 checkpoint: name the checkpoint prefix (without .index/.data-*) or its folder".into(),
                candidates,
            ));
        }
        Err(bad(
            "no such folder, file or checkpoint prefix in the archive".into(),
            candidates,
        ))
    }

    fn resolve_folder(&self, folder: &str) -> Result<(String, Resolution), ZipSourceError> {
        let state_file = join(folder, STATE_FILE);
        if self.is_file(&state_file) {
            return self.via_state_file(&state_file);
        }
        let mut candidates = self.index_prefixes(Some(folder));
        match candidates.len() {
            1 => Ok((candidates.remove(0), Resolution::SingleIndex)),
            0 => Err(ZipSourceError::BadSelector {
                path: self.path(),
                selector: folder.to_string(),
                reason: format!(
                    "folder {folder} holds no checkpoint: no `checkpoint` state file and no *.index entry directly in it{}",
                    self.no_checkpoint_hint(Some(folder))
                ),
                candidates: Self::listed(self.index_prefixes(None)),
            }),
            _ => Err(ZipSourceError::SeveralCheckpoints {
                path: self.path(),
                candidates: Self::listed(candidates),
            }),
        }
    }

    fn via_state_file(&self, state_file: &str) -> Result<(String, Resolution), ZipSourceError> {
        let Some(index) = self.file_index(state_file) else {
            return Err(ZipSourceError::NoCheckpoint {
                path: self.path(),
                hint: String::new(),
            });
        };
        let text = (self.read_small)(index)?;
        let named =
            parse_state_file(&text).map_err(|(line, reason)| ZipSourceError::StateFileSyntax {
                path: self.path(),
                state_file: state_file.to_string(),
                line,
                reason,
            })?;
        let named = match named {
            Some(n) if !n.is_empty() => n,
            _ => {
                return Err(ZipSourceError::StateFileEmpty {
                    path: self.path(),
                    state_file: state_file.to_string(),
                })
            }
        };
        let folder = parent(state_file);
        let wanted = lexical_join(folder, &named);
        if let Some(prefix) = &wanted {
            if self.has_index(prefix) {
                return Ok((
                    prefix.clone(),
                    Resolution::StateFile(state_file.to_string()),
                ));
            }
        }
        // An absolute path from the saving machine is the common case; point at the local copy.
        let base = base_name(named.trim_end_matches(['/', '\\']));
        let base = base.rsplit_once('\\').map_or(base, |(_, b)| b);
        let local = join(folder, base);
        let hint = if !base.is_empty() && Some(&local) != wanted.as_ref() && self.has_index(&local)
        {
            format!(
                "; the checkpoint {local} is in the same folder: pass {}#{local}",
                self.archive.path.display()
            )
        } else {
            format!(
                "; pass the checkpoint with {}#FOLDER/PREFIX",
                self.archive.path.display()
            )
        };
        let problem = match wanted {
            Some(prefix) => format!("but {prefix}.index is not in the archive"),
            None => "a path outside the archive (an absolute path from the machine that saved it, or one leaving the archive with `..`)".into(),
        };
        Err(ZipSourceError::StateFileMissingPrefix {
            path: self.path(),
            state_file: state_file.to_string(),
            named,
            problem,
            hint,
        })
    }
}

/// `folder` joined with a relative `path`, `.` and `..` resolved; `None` for an absolute path
/// or one that leaves the archive.
fn lexical_join(folder: &str, path: &str) -> Option<String> {
    let b = path.as_bytes();
    if path.starts_with('/') || path.contains('\\') || (b.len() >= 2 && b[1] == b':') {
        return None;
    }
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_stripped() {
        assert_eq!(strip_known_suffix("a/m.ckpt-1.index"), Some("a/m.ckpt-1"));
        assert_eq!(strip_known_suffix("a/m.data-00000-of-00001"), Some("a/m"));
        assert_eq!(strip_known_suffix("m.meta"), Some("m"));
        assert_eq!(strip_known_suffix("m"), None);
        assert_eq!(strip_known_suffix("x.data-a-of-1"), None);
        assert_eq!(strip_known_suffix("a/.index"), None);
    }

    #[test]
    fn joins_stay_inside() {
        assert_eq!(lexical_join("a", "b").as_deref(), Some("a/b"));
        assert_eq!(lexical_join("", "b").as_deref(), Some("b"));
        assert_eq!(lexical_join("a/b", "../c").as_deref(), Some("a/c"));
        assert_eq!(lexical_join("a", "./b").as_deref(), Some("a/b"));
        assert_eq!(lexical_join("a", "../../c"), None);
        assert_eq!(lexical_join("a", "/abs/c"), None);
        assert_eq!(lexical_join("a", "C:\\x\\c"), None);
        assert_eq!(lexical_join("a", ".."), None);
    }

    #[test]
    fn zip_selectors_split_only_at_existing_zips() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let zip = d.join("m.ZIP");
        std::fs::write(&zip, b"PK\x05\x06").unwrap();
        let hashdir = d.join("run#2");
        std::fs::create_dir(&hashdir).unwrap();
        let inner_zip = hashdir.join("e.zip");
        std::fs::write(&inner_zip, b"x").unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();

        assert_eq!(split_zip_selector(&s(&zip)), (zip.clone(), None));
        assert_eq!(
            split_zip_selector(&format!("{}#a/b", s(&zip))),
            (zip.clone(), Some("a/b".into()))
        );
        assert_eq!(
            split_zip_selector(&format!("{}#", s(&zip))),
            (zip.clone(), None)
        );
        // A '#' in a directory name is not a split point.
        assert_eq!(split_zip_selector(&s(&hashdir)), (hashdir.clone(), None));
        assert_eq!(
            split_zip_selector(&format!("{}#x#y", s(&inner_zip))),
            (inner_zip.clone(), Some("x#y".into()))
        );
        // Not a zip name, or not an existing file: no split.
        let plain = format!("{}#b", s(&hashdir));
        assert_eq!(split_zip_selector(&plain), (PathBuf::from(&plain), None));
        let missing = format!("{}#b", s(&d.join("nope.zip")));
        assert_eq!(
            split_zip_selector(&missing),
            (PathBuf::from(&missing), None)
        );
        // A local file whose name has '#…zip' in it wins over the shorter zip.
        let tricky = d.join("m.ZIP#b.zip");
        std::fs::write(&tricky, b"x").unwrap();
        assert_eq!(
            split_zip_selector(&format!("{}#c", s(&tricky))),
            (tricky.clone(), Some("c".into()))
        );
        assert_eq!(split_zip_selector(&s(&tricky)), (tricky.clone(), None));
        assert!(looks_like_zip(&zip));
        assert!(!looks_like_zip(&hashdir));
    }
}
