//! Checkpoints in buckets (`gs://`, `s3://`, `az://`, `https://`): the index and the small side
//! files are fetched whole when the source is opened; the data shards become sparse local cache
//! files that hold nothing until [`RemoteState::prefetch`] fetches the stored ranges of the
//! tensors a command plans to read (merged across small gaps, in bounded pieces, concurrently,
//! every GET pinned to the version first seen).
//!
//! A byte never fetched never becomes a weight: [`RemoteState::prefetch`] records every range it
//! fetched and refuses to return until every planned tensor's stored bytes are covered; the
//! commands read only planned tensors; and a tensor read from a hole would be zeros whose CRC32C
//! does not match the index, which the checkpoint reader checks on every read.
//!
//! The API is synchronous; a private tokio runtime runs the `object_store` futures inside.

mod cache;
mod counting;
mod error;
mod list;
mod location;
mod object;
mod plan;
mod runtime;
mod shard;
mod store;
mod upload;
mod whole;
mod zip;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use tf_checkpoint::{Checkpoint, ShardFile};

pub use cache::CacheMode;
pub use error::RemoteError;
pub use list::{resolve_checkpoint, ResolvedCheckpoint};
pub use location::{RemoteUrl, Scheme};
pub use object::RemoteObject;
pub use plan::{PlanConfig, RangeSet};
pub use shard::{FetchConfig, FetchStats, RemoteShard, ShardBytes};
pub use store::{Env, Remote, StoreOptions};
pub use upload::{check_destination, upload_dir, BucketOutput, UploadOptions, UploadStats};

use super::scratch::ScratchDir;
use super::{Form, Source, SourceError};

/// How every bucket input of this process is read: set once by the program (the command-line
/// flags `--anonymous` and `--cache-dir`), read by [`open`].
#[derive(Debug, Clone, Default)]
pub struct RemoteSettings {
    /// Read public buckets without credentials or request signing.
    pub anonymous: bool,
    /// Keep fetched ranges here across runs (keyed by URL and ETag/generation); `None` keeps
    /// them in a temporary directory removed when the source is dropped.
    pub cache_dir: Option<PathBuf>,
}

static SETTINGS: RwLock<Option<RemoteSettings>> = RwLock::new(None);

/// Set how bucket inputs are read (for the rest of the process).
pub fn configure(settings: RemoteSettings) {
    *SETTINGS.write().unwrap_or_else(|p| p.into_inner()) = Some(settings);
}

/// The current settings.
pub fn settings() -> RemoteSettings {
    SETTINGS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default()
}

/// The store options of the current settings, from the process environment.
pub fn store_options() -> StoreOptions {
    StoreOptions {
        anonymous: settings().anonymous,
        ..StoreOptions::default()
    }
}

/// Side files fetched next to the checkpoint when present.
const SIDE_FILES: [&str; 4] = [
    "checkpoint",
    "vocab.txt",
    "params.yaml",
    "pretrain_config.json",
];

/// Most data shards probed by HEAD when the store cannot list (`https://`).
const MAX_SHARDS_WITHOUT_LISTING: usize = 4096;

/// Largest index read into memory.
const INDEX_LIMIT: u64 = 1 << 30;
/// Largest side file read.
const SIDE_LIMIT: u64 = 64 << 20;

/// What a bucket source keeps alive and how it fetches more.
#[derive(Debug)]
pub struct RemoteState {
    remote: Remote,
    prefix: RemoteUrl,
    /// The data shards read from the bucket: a shard's stored range `r` is bytes
    /// `base + r` of its object (`base` is 0 for a checkpoint's own `.data` objects, the entry's
    /// offset for a shard stored in a zip archive). Several shards may share one object.
    slots: Vec<Slot>,
    /// Bytes fetched when the source was opened, outside the shards (index, side files).
    opened_bytes: u64,
    /// The ranges the prefetches were asked for, per object (keyed by the object's address):
    /// a range asked for twice (`convert --verify` reads what the conversion fetched) counts
    /// once.
    needed: Mutex<Vec<(usize, RangeSet)>>,
    /// Bytes needed outside the slots (a file fetched whole).
    needed_whole: u64,
    /// Bytes of the index plus every data shard (or of the archive).
    total_size: u64,
    /// The side files and, without a cache directory, the sparse shard files.
    _dir: ScratchDir,
}

#[derive(Debug)]
struct Slot {
    id: i32,
    base: u64,
    shard: Arc<RemoteShard>,
}

/// Running totals of what a source fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchTotals {
    /// Bytes of objects received from the store: the index, side files and data ranges (the
    /// bodies of listings are not counted; they are a few hundred bytes per listing).
    pub bytes_fetched: u64,
    /// Bytes of tensor data the plan needed.
    pub bytes_needed: u64,
    /// HTTP requests sent (retries included).
    pub requests: u64,
    /// Size of the whole checkpoint in the bucket (index and every data shard).
    pub checkpoint_bytes: u64,
}

impl RemoteState {
    /// The prefix URL (`s3://b/run/model.ckpt-10`).
    pub fn prefix(&self) -> &RemoteUrl {
        &self.prefix
    }

    /// Each distinct object behind the slots, once.
    fn objects(&self) -> Vec<&Arc<RemoteShard>> {
        let mut out: Vec<&Arc<RemoteShard>> = Vec::new();
        for s in &self.slots {
            if !out.iter().any(|o| Arc::ptr_eq(o, &s.shard)) {
                out.push(&s.shard);
            }
        }
        out
    }

    /// Bytes received into the shards' local copies so far.
    fn received(&self) -> u64 {
        self.objects().iter().map(|s| s.bytes_received()).sum()
    }

    /// What was fetched so far.
    pub fn totals(&self) -> FetchTotals {
        FetchTotals {
            bytes_fetched: self.opened_bytes + self.received(),
            bytes_needed: self.needed_whole
                + self
                    .needed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .map(|(_, set)| set.total())
                    .sum::<u64>(),
            requests: self.remote.request_counts().requests,
            checkpoint_bytes: self.total_size,
        }
    }

    /// `ranges` (shard id, stored range) as ranges of each slot's object.
    fn object_ranges(&self, ranges: &[(i32, Range<u64>)]) -> Vec<(&Slot, Vec<Range<u64>>)> {
        self.slots
            .iter()
            .map(|slot| {
                let want = ranges
                    .iter()
                    .filter(|(i, _)| *i == slot.id)
                    .map(|(_, r)| r.start + slot.base..r.end + slot.base)
                    .collect();
                (slot, want)
            })
            .filter(|(_, want): &(&Slot, Vec<Range<u64>>)| !want.is_empty())
            .collect()
    }

    /// Fetch `ranges` (shard id, range) not yet held, then check that every one is held.
    pub fn prefetch(&self, ranges: &[(i32, Range<u64>)]) -> Result<FetchTotals, RemoteError> {
        for (slot, want) in self.object_ranges(ranges) {
            slot.shard.prefetch(&want)?;
            let key = Arc::as_ptr(&slot.shard) as usize;
            let mut needed = self.needed.lock().unwrap_or_else(|p| p.into_inner());
            let set = match needed.iter().position(|(k, _)| *k == key) {
                Some(i) => &mut needed[i].1,
                None => {
                    needed.push((key, RangeSet::new()));
                    &mut needed.last_mut().expect("just pushed").1
                }
            };
            for r in want {
                set.insert(r);
            }
        }
        self.check_held(ranges)?;
        Ok(self.totals())
    }

    /// [`prefetch`](RemoteState::prefetch), calling `report(received, missing)` about every
    /// 100 ms while it runs (bytes received so far by this call, of the bytes not held when it
    /// began) and once at the end.
    pub fn prefetch_reporting(
        &self,
        ranges: &[(i32, Range<u64>)],
        report: &mut dyn FnMut(u64, u64),
    ) -> Result<FetchTotals, RemoteError> {
        let missing: u64 = self
            .object_ranges(ranges)
            .iter()
            .map(|(slot, want)| slot.shard.bytes_missing(want))
            .sum();
        if missing == 0 {
            // Everything is held already (`--verify` after a conversion): nothing to watch.
            return self.prefetch(ranges);
        }
        let start = self.received();
        let result = std::thread::scope(|scope| {
            let (done, finished) = std::sync::mpsc::channel();
            scope.spawn(move || {
                let _ = done.send(self.prefetch(ranges));
            });
            // Bounded by the prefetch itself, which is bounded by its retries and timeouts.
            loop {
                match finished.recv_timeout(std::time::Duration::from_millis(100)) {
                    Ok(result) => break result,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        report(self.received() - start, missing)
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        // The fetching thread panicked; the scope re-raises its panic.
                        break Ok(self.totals());
                    }
                }
            }
        });
        report(self.received() - start, missing);
        result
    }

    /// Refuses any range a prefetch did not fetch (the bytes of the cache file there are zeros).
    pub fn check_held(&self, ranges: &[(i32, Range<u64>)]) -> Result<(), RemoteError> {
        for (id, r) in ranges {
            // A shard without a slot is a local file already (a zip's inflated entry, a
            // fetched-whole upload): every shard the index names got one or the other on open.
            let Some(slot) = self.slots.iter().find(|s| s.id == *id) else {
                continue;
            };
            let at = r.start + slot.base..r.end + slot.base;
            if !slot.shard.holds(&at) {
                return Err(RemoteError::NotFetched {
                    url: slot.shard.object().url.to_string(),
                    range: at,
                });
            }
        }
        Ok(())
    }
}

/// A private temporary directory for what a bucket source fetches (removed when dropped).
fn scratch_dir(url: &RemoteUrl) -> Result<ScratchDir, SourceError> {
    ScratchDir::new("electra-convert-remote-", None).map_err(|e| {
        remote_err(RemoteError::Local {
            what: "creating a temporary directory for",
            path: url.to_string(),
            source: e,
        })
    })
}

fn remote_err(e: RemoteError) -> SourceError {
    SourceError::Remote(Box::new(e))
}

/// Open a checkpoint in a bucket: resolve it, fetch its index and side files, and give it sparse
/// shard files. The object graph of a TF2 checkpoint is fetched too (planning needs it).
pub fn open(url: &str) -> Result<Source, SourceError> {
    if let Some((archive, selector)) = zip::split_zip_url(url) {
        return zip::open(archive, selector);
    }
    if whole::is_keras_url(url) {
        return whole::open(url);
    }
    let url = RemoteUrl::parse(url).map_err(remote_err)?;
    let settings = settings();
    let remote = Remote::connect(&url, &store_options()).map_err(remote_err)?;
    let mut resolved = resolve_checkpoint(&remote, &url).map_err(remote_err)?;
    let dir = scratch_dir(&url)?;
    if resolved.index.size > INDEX_LIMIT {
        return Err(remote_err(RemoteError::TooLarge {
            url: resolved.index.url.to_string(),
            size: resolved.index.size,
            limit: INDEX_LIMIT,
        }));
    }
    let index_bytes = resolved
        .index
        .read_range(&remote, 0..resolved.index.size)
        .map_err(remote_err)?;
    let mut fetched = index_bytes.len() as u64;
    // Side files live next to the prefix.
    let side_dir = dir.path().join("side");
    let shard_dir = dir.path().join("shards");
    for d in [&side_dir, &shard_dir] {
        std::fs::create_dir_all(d).map_err(|e| {
            remote_err(RemoteError::Local {
                what: "creating",
                path: d.display().to_string(),
                source: e,
            })
        })?;
    }
    let parent = resolved.prefix.parent();
    for name in SIDE_FILES {
        // Not beside the prefix, by the listing that found the shards: not asked for.
        if let Some(neighbours) = &resolved.neighbours {
            if !neighbours.iter().any(|n| n == name) {
                continue;
            }
        }
        let url = parent.join(name);
        // The state file read while resolving is not read again.
        let read = match &resolved.state_file {
            Some((at, bytes)) if *at == url => Ok((resolved.index.clone(), bytes.clone())),
            _ => RemoteObject::read_all(&remote, &url, SIDE_LIMIT),
        };
        match read {
            Ok((_, bytes)) => {
                fetched += bytes.len() as u64;
                let path = side_dir.join(name);
                std::fs::write(&path, &bytes).map_err(|e| {
                    remote_err(RemoteError::Local {
                        what: "writing",
                        path: path.display().to_string(),
                        source: e,
                    })
                })?;
            }
            Err(RemoteError::NotFound { .. }) => {}
            Err(e) => return Err(remote_err(e)),
        }
    }
    let local_prefix = side_dir.join(resolved.prefix.file_name());
    let checkpoint = Checkpoint::from_index_bytes(&local_prefix, &index_bytes)?;
    if resolved.data.is_empty() {
        // No listing (a web server): the index says how many shards there are.
        let n = checkpoint.num_shards();
        if n > MAX_SHARDS_WITHOUT_LISTING {
            return Err(remote_err(RemoteError::NoCheckpoint {
                url: resolved.prefix.to_string(),
                detail: format!(
                    "the index claims {n} data shards; more than {MAX_SHARDS_WITHOUT_LISTING} are not probed one by one over https://"
                ),
            }));
        }
        let n = n as u32;
        resolved.data = list::shards_named(&remote, &resolved.prefix, n).map_err(remote_err)?;
    }
    if checkpoint.num_shards() != resolved.data.len() {
        return Err(remote_err(RemoteError::NoCheckpoint {
            url: resolved.prefix.to_string(),
            detail: format!(
                "the index names {} data shard(s), the bucket holds {}",
                checkpoint.num_shards(),
                resolved.data.len()
            ),
        }));
    }
    let mode = match &settings.cache_dir {
        Some(d) => CacheMode::Dir(d.clone()),
        None => CacheMode::Scratch(shard_dir),
    };
    let mut slots = Vec::with_capacity(resolved.data.len());
    let mut files = Vec::with_capacity(resolved.data.len());
    let total_size = resolved.index.size + resolved.data.iter().map(|o| o.size).sum::<u64>();
    for (id, object) in resolved.data.iter().enumerate() {
        let shard = RemoteShard::open(&remote, object.clone(), &mode, FetchConfig::default())
            .map_err(remote_err)?;
        let path = shard
            .cache_path()
            .map(Path::to_path_buf)
            .expect("a cache directory gives a named file");
        files.push(ShardFile {
            id: id as i32,
            path,
            base: 0,
            len: Some(object.size),
        });
        slots.push(Slot {
            id: id as i32,
            base: 0,
            shard: Arc::new(shard),
        });
    }
    let checkpoint = checkpoint.with_shard_files(files)?;
    let state = RemoteState {
        remote,
        prefix: resolved.prefix.clone(),
        slots,
        opened_bytes: fetched,
        needed: Mutex::new(Vec::new()),
        needed_whole: 0,
        total_size,
        _dir: dir,
    };
    let source = Source::new_remote(
        checkpoint,
        Form::Bucket,
        side_dir,
        resolved.prefix.to_string(),
        state,
    );
    prefetch_opening(&source).map_err(remote_err)?;
    Ok(source)
}

/// What every command reads before planning: the TF2 object graph, and the step counter
/// (inspect and the model card show it). Fetched when a source is opened.
fn prefetch_opening(source: &Source) -> Result<(), RemoteError> {
    let opening = source.checkpoint().stored_ranges([
        tf_checkpoint::object_graph::OBJECT_GRAPH_KEY,
        "global_step",
        "global_step/.ATTRIBUTES/VARIABLE_VALUE",
        "step/.ATTRIBUTES/VARIABLE_VALUE",
    ]);
    match source.remote_state() {
        Some(state) if !opening.is_empty() => state.prefetch(&opening).map(|_| ()),
        _ => Ok(()),
    }
}
