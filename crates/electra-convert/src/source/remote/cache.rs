//! The local sparse copy of one remote object: an unnamed temp file (removed by the OS when
//! closed), or a file in a cache directory keyed by URL and version, with a sidecar that lists
//! the byte ranges already fetched so a later run (or another job) fetches each range once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::{RemoteError, Result};
use super::object::RemoteObject;
use super::plan::RangeSet;

const SIDECAR_MAGIC: &str = "electra-convert range cache v1";

/// Where fetched bytes go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheMode {
    /// An unnamed temporary file (in `$TMPDIR`), gone when the shard is dropped or the process exits.
    #[default]
    Temp,
    /// Files kept in this directory across runs, named by a hash of URL + version.
    Dir(PathBuf),
    /// Named files in this directory, which the caller deletes at exit: nothing is synced or
    /// recorded for a later run (the reader needs a path, not durability).
    Scratch(PathBuf),
}

#[derive(Debug)]
pub(crate) struct CacheFile {
    file: File,
    /// The data file's path, for a kept cache.
    path: Option<PathBuf>,
    sidecar: Option<Mutex<File>>,
}

impl CacheFile {
    /// Opens (or creates) the sparse copy of `obj`, and the ranges it already holds.
    pub(crate) fn open(mode: &CacheMode, obj: &RemoteObject) -> Result<(CacheFile, RangeSet)> {
        match mode {
            CacheMode::Temp => {
                let file = tempfile::tempfile()
                    .map_err(|e| local("creating a temp file for", &obj.url.to_string(), e))?;
                file.set_len(obj.size)
                    .map_err(|e| local("sizing the temp file for", &obj.url.to_string(), e))?;
                Ok((
                    CacheFile {
                        file,
                        path: None,
                        sidecar: None,
                    },
                    RangeSet::new(),
                ))
            }
            CacheMode::Dir(dir) => open_kept(dir, obj),
            CacheMode::Scratch(dir) => {
                let path = dir.join(format!("{}.data", cache_name(obj)));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| local("creating", &path.display().to_string(), e))?;
                file.set_len(obj.size)
                    .map_err(|e| local("sizing", &path.display().to_string(), e))?;
                Ok((
                    CacheFile {
                        file,
                        path: Some(path),
                        sidecar: None,
                    },
                    RangeSet::new(),
                ))
            }
        }
    }

    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(crate) fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Makes `ranges` durable and lists them in the sidecar (kept caches only). The data is
    /// synced first, so a sidecar never lists bytes that a crash could lose.
    pub(crate) fn record(&self, ranges: &[Range<u64>]) -> std::io::Result<()> {
        let Some(sidecar) = &self.sidecar else {
            return Ok(());
        };
        if ranges.is_empty() {
            return Ok(());
        }
        self.file.sync_data()?;
        let text: String = ranges
            .iter()
            .map(|r| format!("{} {}\n", r.start, r.end))
            .collect();
        let mut f = sidecar.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }
}

fn local(what: &'static str, path: &str, source: std::io::Error) -> RemoteError {
    RemoteError::Local {
        what,
        path: path.to_string(),
        source,
    }
}

fn header(obj: &RemoteObject) -> String {
    format!(
        "{SIDECAR_MAGIC}\nurl {}\nidentity {}\nsize {}\n",
        obj.url,
        obj.identity(),
        obj.size
    )
}

/// 64-bit FNV-1a: a stable file name for a URL + version (the sidecar header is checked too).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

pub(crate) fn cache_name(obj: &RemoteObject) -> String {
    let readable: String = obj
        .url
        .file_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("{:016x}-{readable}", fnv1a(header(obj).as_bytes()))
}

/// Parses a sidecar; `None` unless its header is exactly `expected_header`.
fn parse_sidecar(text: &str, expected_header: &str, size: u64) -> Option<RangeSet> {
    let body = text.strip_prefix(expected_header)?;
    let mut set = RangeSet::new();
    for line in body.lines() {
        // A torn last line (crash mid-append) is ignored: its bytes are fetched again.
        let Some((a, b)) = line.split_once(' ') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            continue;
        };
        if a < b && b <= size {
            set.insert(a..b);
        }
    }
    Some(set)
}

fn open_kept(dir: &Path, obj: &RemoteObject) -> Result<(CacheFile, RangeSet)> {
    std::fs::create_dir_all(dir).map_err(|e| {
        local(
            "creating the cache directory",
            &dir.display().to_string(),
            e,
        )
    })?;
    let name = cache_name(obj);
    let data_path = dir.join(format!("{name}.data"));
    let side_path = dir.join(format!("{name}.ranges"));
    let head = header(obj);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&data_path)
        .map_err(|e| {
            local(
                "opening the cache file",
                &data_path.display().to_string(),
                e,
            )
        })?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let held = std::fs::read_to_string(&side_path)
        .ok()
        .and_then(|t| parse_sidecar(&t, &head, obj.size))
        .filter(|_| len == obj.size);
    let held = match held {
        Some(set) => set,
        None => {
            // New, or not this version: start over.
            file.set_len(0)
                .and_then(|_| file.set_len(obj.size))
                .map_err(|e| local("sizing the cache file", &data_path.display().to_string(), e))?;
            std::fs::write(&side_path, &head)
                .map_err(|e| local("writing", &side_path.display().to_string(), e))?;
            RangeSet::new()
        }
    };
    let sidecar = OpenOptions::new()
        .append(true)
        .open(&side_path)
        .map_err(|e| local("opening", &side_path.display().to_string(), e))?;
    Ok((
        CacheFile {
            file,
            path: Some(data_path),
            sidecar: Some(Mutex::new(sidecar)),
        },
        held,
    ))
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::super::location::RemoteUrl;
    use super::*;

    fn obj(etag: &str) -> RemoteObject {
        RemoteObject {
            url: RemoteUrl::parse("gs://b/run/model.ckpt-1.data-00000-of-00001").unwrap(),
            size: 1000,
            e_tag: Some(etag.into()),
            version: Some("17".into()),
        }
    }

    #[test]
    fn kept_cache_survives_reopen_and_resets_on_a_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let mode = CacheMode::Dir(dir.path().to_path_buf());
        let (c, held) = CacheFile::open(&mode, &obj("\"a\"")).unwrap();
        assert!(held.is_empty());
        c.write_at(10, b"hello").unwrap();
        c.record(&[10..15]).unwrap();
        drop(c);
        let (c, held) = CacheFile::open(&mode, &obj("\"a\"")).unwrap();
        assert_eq!(held.iter().cloned().collect::<Vec<_>>(), vec![10..15]);
        let mut buf = [0u8; 5];
        c.read_exact_at(&mut buf, 10).unwrap();
        assert_eq!(&buf, b"hello");
        // Another version of the same URL has another file.
        assert_ne!(cache_name(&obj("\"a\"")), cache_name(&obj("\"b\"")));
        let (_, held) = CacheFile::open(&mode, &obj("\"b\"")).unwrap();
        assert!(held.is_empty());
        assert!(cache_name(&obj("\"a\"")).ends_with("-model.ckpt-1.data-00000-of-00001"));
    }

    #[test]
    fn sidecar_parsing_checks_header_and_bounds() {
        let o = obj("\"a\"");
        let h = header(&o);
        let s = parse_sidecar(&format!("{h}0 10\n20 30\n5 2000\n40 4"), &h, 1000).unwrap();
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..10, 20..30]);
        assert!(parse_sidecar("something else\n", &h, 1000).is_none());
        assert!(parse_sidecar(&header(&obj("\"b\"")), &h, 1000).is_none());
    }

    #[test]
    fn temp_cache_is_sparse_and_sized() {
        let (c, held) = CacheFile::open(&CacheMode::Temp, &obj("\"a\"")).unwrap();
        assert!(held.is_empty() && c.path().is_none());
        assert_eq!(c.file.metadata().unwrap().len(), 1000);
        c.record(&[0..5]).unwrap(); // a no-op without a sidecar
    }

    #[test]
    fn scratch_files_are_named_and_never_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mode = CacheMode::Scratch(dir.path().to_path_buf());
        let (c, held) = CacheFile::open(&mode, &obj("\"a\"")).unwrap();
        assert!(held.is_empty());
        let path = c.path().unwrap().to_path_buf();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1000);
        c.write_at(10, b"xyz").unwrap();
        c.record(&[10..13]).unwrap();
        let mut buf = [0u8; 3];
        c.read_exact_at(&mut buf, 10).unwrap();
        assert_eq!(&buf, b"xyz");
        // Nothing beside the data file: no sidecar for a later run.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A second source of the same object in the same directory would be a bug: refused.
        assert!(CacheFile::open(&mode, &obj("\"a\"")).is_err());
    }
}
