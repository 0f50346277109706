//! Zip archives in buckets (`https://host/electra_small.zip`, `gs://b/runs.zip#run7`): the
//! archive becomes a sparse local copy that the zip reader reads through, fetching on demand
//! what it touches (the end-of-archive records, the central directory, the index and the side
//! files, each read with a little read-ahead), a deflated data shard whole (it must be inflated)
//! and, for a stored one, later only the planned tensors' ranges, like a checkpoint's `.data`
//! object.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::super::zip::{open_reader, ReadAt};
use super::super::{Source, SourceError};
use super::{
    remote_err, scratch_dir, settings, store_options, CacheMode, FetchConfig, Remote, RemoteObject,
    RemoteShard, RemoteState, RemoteUrl, ShardBytes, Slot,
};

/// Bytes fetched past a read that misses (the zip reader reads headers and small entries in
/// small pieces; this makes those one request each).
const READ_AHEAD: u64 = 64 << 10;

/// `URL.zip` or `URL.zip#INNER`: the archive's URL and the selector inside it.
pub(super) fn split_zip_url(url: &str) -> Option<(&str, Option<&str>)> {
    let is_zip = |s: &str| {
        s.len() > 4
            && s.get(s.len() - 4..)
                .is_some_and(|e| e.eq_ignore_ascii_case(".zip"))
    };
    if let Some((left, right)) = url.rsplit_once('#') {
        if is_zip(left) {
            return Some((left, (!right.is_empty()).then_some(right)));
        }
    }
    is_zip(url).then_some((url, None))
}

/// The archive's bytes as the zip reader sees them: served from the sparse local copy, fetched
/// first where not held yet.
struct LazyArchive {
    shard: Arc<RemoteShard>,
}

impl ReadAt for LazyArchive {
    fn size(&self) -> u64 {
        self.shard.object().size
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let size = self.size();
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= size)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "bytes {offset}..+{} are past the end ({size} bytes)",
                        buf.len()
                    ),
                )
            })?;
        if !self.shard.holds(&(offset..end)) {
            let ahead = end.max(offset.saturating_add(READ_AHEAD)).min(size);
            self.fetch(offset..ahead)?;
        }
        self.shard.read_exact_at(buf, offset)
    }

    fn prepare(&self, offset: u64, len: u64) -> io::Result<()> {
        self.fetch(offset..offset.saturating_add(len).min(self.size()))
    }
}

impl LazyArchive {
    fn fetch(&self, range: Range<u64>) -> io::Result<()> {
        self.shard
            .prefetch(&[range])
            .map(|_| ())
            .map_err(io::Error::other)
    }
}

/// Open the checkpoint inside the zip archive at `url` (`selector`: the part after `#`).
pub(super) fn open(url: &str, selector: Option<&str>) -> Result<Source, SourceError> {
    let url = RemoteUrl::parse(url).map_err(remote_err)?;
    let settings = settings();
    let remote = Remote::connect(&url, &store_options()).map_err(remote_err)?;
    let object = RemoteObject::head(&remote, &url).map_err(remote_err)?;
    let dir = scratch_dir(&url)?;
    let mode = match &settings.cache_dir {
        Some(d) => CacheMode::Dir(d.clone()),
        None => CacheMode::Scratch(dir.path().into()),
    };
    let shard = Arc::new(
        RemoteShard::open(&remote, object.clone(), &mode, FetchConfig::default())
            .map_err(remote_err)?,
    );
    let data_path = shard
        .cache_path()
        .map(PathBuf::from)
        .expect("a cache directory gives a named file");
    let reader = LazyArchive {
        shard: Arc::clone(&shard),
    };
    let (source, in_place) = open_reader(
        PathBuf::from(url.to_string()),
        data_path,
        Box::new(reader),
        selector,
    )?;
    // Shards not read in place (deflated, inflated on open) are local files: no slot.
    let slots = in_place
        .into_iter()
        .map(|(id, base)| Slot {
            id,
            base,
            shard: Arc::clone(&shard),
        })
        .collect();
    let state = RemoteState {
        remote,
        prefix: url,
        slots,
        opened_bytes: 0,
        needed: Mutex::new(Vec::new()),
        needed_whole: 0,
        total_size: object.size,
        _dir: dir,
    };
    let source = source.with_remote(state);
    super::prefetch_opening(&source).map_err(remote_err)?;
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::split_zip_url;

    #[test]
    fn zip_urls_and_their_selectors() {
        assert_eq!(
            split_zip_url("https://h/electra-data/electra_small.zip"),
            Some(("https://h/electra-data/electra_small.zip", None))
        );
        assert_eq!(
            split_zip_url("gs://b/runs.ZIP#run7/model.ckpt-10"),
            Some(("gs://b/runs.ZIP", Some("run7/model.ckpt-10")))
        );
        assert_eq!(split_zip_url("s3://b/a.zip#"), Some(("s3://b/a.zip", None)));
        assert_eq!(split_zip_url("s3://b/run/model.ckpt-10"), None);
        assert_eq!(split_zip_url("s3://b/zip#x"), None);
    }
}
