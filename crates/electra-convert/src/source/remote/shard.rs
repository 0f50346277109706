//! A remote data shard read through a local sparse cache: `prefetch` fetches planned ranges,
//! `read_exact_at` serves only bytes that were fetched.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use futures::TryStreamExt;

use super::cache::{CacheFile, CacheMode};
use super::error::{RemoteError, Result};
use super::object::{fetch_piece, RemoteObject};
use super::plan::{plan, PlanConfig, RangeSet};
use super::runtime::block_on;
use super::store::Remote;

/// Random access to one data shard's bytes, wherever they live.
#[allow(clippy::len_without_is_empty)] // the interface as the checkpoint crate defines it
pub trait ShardBytes: Send + Sync + std::fmt::Debug {
    /// Length in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` from `offset`; an error for a range past the end or never fetched.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    /// The whole shard as one mapped slice, when possible without copying.
    fn mapped(&self) -> Option<&[u8]> {
        None
    }
}

/// How a prefetch turns ranges into requests.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// How needed ranges are merged and split into requests.
    pub plan: PlanConfig,
    /// Pieces in flight at once.
    pub concurrency: usize,
    /// Resumptions of one piece whose body broke off or came short (beyond the store's own retries).
    pub piece_retries: u32,
    /// First wait before a resumption; doubles each time.
    pub piece_backoff: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            plan: PlanConfig::default(),
            concurrency: 8,
            piece_retries: 3,
            piece_backoff: Duration::from_millis(200),
        }
    }
}

/// What one prefetch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Bytes asked for (the union of the ranges given).
    pub bytes_needed: u64,
    /// Of those, bytes the cache already held.
    pub bytes_cached: u64,
    /// Bytes received (needed bytes not held, plus coalescing gaps).
    pub bytes_fetched: u64,
    /// Planned GETs.
    pub pieces: u64,
    /// HTTP requests really sent (retries and resumptions included; 0 when all was cached).
    pub requests: u64,
    /// Requests beyond one per piece: the store's retries plus resumptions of broken bodies.
    pub retries: u64,
}

/// One remote object exposed as [`ShardBytes`] through a sparse local copy.
#[derive(Debug)]
pub struct RemoteShard {
    remote: Remote,
    object: RemoteObject,
    cache: CacheFile,
    fetched: RwLock<RangeSet>,
    config: FetchConfig,
    /// Serialises prefetches of this shard (each is concurrent inside).
    prefetching: Mutex<()>,
    /// Bytes received into the cache so far (for progress while a prefetch runs).
    received: AtomicU64,
}

impl RemoteShard {
    /// A shard over `object` (from [`RemoteObject::head`]), cached as `mode` says.
    pub fn open(
        remote: &Remote,
        object: RemoteObject,
        mode: &CacheMode,
        config: FetchConfig,
    ) -> Result<RemoteShard> {
        remote.check_same_store(&object.url)?;
        let (cache, held) = CacheFile::open(mode, &object)?;
        Ok(RemoteShard {
            remote: remote.clone(),
            object,
            cache,
            fetched: RwLock::new(held),
            config,
            prefetching: Mutex::new(()),
            received: AtomicU64::new(0),
        })
    }

    /// The object this shard reads, pinned to its first-seen version.
    pub fn object(&self) -> &RemoteObject {
        &self.object
    }

    /// The kept cache file, if the cache is a directory.
    pub fn cache_path(&self) -> Option<&Path> {
        self.cache.path()
    }

    /// Whether every byte of `r` is held locally.
    pub fn holds(&self, r: &Range<u64>) -> bool {
        self.fetched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(r)
    }

    /// Bytes received from the store so far (a running count, for progress).
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Of `ranges`, the bytes not held yet.
    pub fn bytes_missing(&self, ranges: &[Range<u64>]) -> u64 {
        let wanted: RangeSet = ranges.iter().cloned().collect();
        let held = self.fetched.read().unwrap_or_else(|p| p.into_inner());
        wanted
            .iter()
            .flat_map(|r| held.missing(r))
            .map(|m| m.end - m.start)
            .sum()
    }

    /// Fetches every byte of `ranges` not yet held: merged across small gaps, split into bounded
    /// pieces, `concurrency` at a time, each GET pinned to the version seen by HEAD. On error,
    /// pieces that completed stay held (and recorded, for a kept cache).
    pub fn prefetch(&self, ranges: &[Range<u64>]) -> Result<FetchStats> {
        let _one = self.prefetching.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: RangeSet = ranges.iter().cloned().collect();
        let held = self
            .fetched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let pieces = plan(ranges, &held, self.object.size, self.config.plan).map_err(|oob| {
            RemoteError::OutOfBounds {
                url: self.object.url.to_string(),
                range: oob.0,
                size: self.object.size,
            }
        })?;
        let bytes_needed = wanted.total();
        let bytes_cached = wanted
            .iter()
            .map(|r| r.end - r.start - held.missing(r).iter().map(|m| m.end - m.start).sum::<u64>())
            .sum();
        let before = self.remote.request_counts();
        let done = Mutex::new(Vec::<Range<u64>>::new());
        let result = block_on(
            futures::stream::iter(pieces.iter().cloned().map(Ok)).try_for_each_concurrent(
                self.config.concurrency.max(1),
                |piece| {
                    let done = &done;
                    async move {
                        fetch_piece(
                            &self.remote,
                            &self.object,
                            piece.clone(),
                            self.config.piece_retries,
                            self.config.piece_backoff,
                            |off, data| {
                                self.cache.write_at(off, data)?;
                                self.received
                                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                                Ok(())
                            },
                        )
                        .await?;
                        done.lock().unwrap_or_else(|p| p.into_inner()).push(piece);
                        Ok::<(), RemoteError>(())
                    }
                },
            ),
        );
        let done = done.into_inner().unwrap_or_else(|p| p.into_inner());
        let recorded = self.cache.record(&done);
        {
            let mut f = self.fetched.write().unwrap_or_else(|p| p.into_inner());
            for r in &done {
                f.insert(r.clone());
            }
        }
        result?;
        recorded.map_err(|e| RemoteError::Local {
            what: "recording fetched ranges of",
            path: self.object.url.to_string(),
            source: e,
        })?;
        let after = self.remote.request_counts();
        let requests = after.requests - before.requests;
        Ok(FetchStats {
            bytes_needed,
            bytes_cached,
            bytes_fetched: done.iter().map(|r| r.end - r.start).sum(),
            pieces: pieces.len() as u64,
            requests,
            retries: requests.saturating_sub(pieces.len() as u64),
        })
    }
}

impl ShardBytes for RemoteShard {
    fn len(&self) -> u64 {
        self.object.size
    }

    /// Serves bytes that were fetched; any byte never fetched is an error, never zeros.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.object.size)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "bytes {offset}..+{} are past the end of {} ({} bytes)",
                        buf.len(),
                        self.object.url,
                        self.object.size
                    ),
                )
            })?;
        let range = offset..end;
        let missing = self
            .fetched
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .first_missing(&range);
        if let Some(m) = missing {
            return Err(std::io::Error::other(format!(
                "bytes {m:?} of {} were never fetched (asked for {range:?}); prefetch them first",
                self.object.url
            )));
        }
        self.cache.read_exact_at(buf, offset)
    }
}
