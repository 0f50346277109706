//! Uploading a finished local output directory to a bucket prefix.
//!
//! Each object appears whole or not at all (a PUT, or a multipart upload that completes), but
//! the directory as a whole is not atomic: `config.json` and `README.md` go last, so a
//! directory that loads is complete; on failure the multipart upload in progress is aborted and
//! every object this run created is deleted (best effort).

use std::io::Read;
use std::path::{Path, PathBuf};

use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use super::error::{RemoteError, Result};
use super::list::list_all;
use super::location::RemoteUrl;
use super::runtime::block_on;
use super::store::Remote;
use crate::source::scratch::ScratchDir;
use crate::source::Uploaded;

/// How to upload.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// Write into a destination that already holds objects (they are overwritten or left).
    pub force: bool,
    /// Files larger than this go up as multipart uploads.
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (S3 needs at least 5 MiB for all but the last).
    pub part_size: usize,
    /// Parts in flight per file.
    pub parts_in_flight: usize,
    /// Files uploaded last, in this order (relative paths): their presence marks a complete
    /// upload. Default: `config.json` then `README.md` (a model directory); a TF checkpoint
    /// directory passes its `checkpoint` state file.
    pub last: Vec<String>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            force: false,
            multipart_threshold: 16 << 20,
            part_size: 16 << 20,
            parts_in_flight: 4,
            last: LAST.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadStats {
    /// Objects written, in upload order.
    pub objects: Vec<RemoteUrl>,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Of the objects, how many went up as multipart uploads.
    pub multipart: usize,
}

/// A model directory's files uploaded last, in this order: their presence marks it complete.
const LAST: [&str; 2] = ["config.json", "README.md"];

/// Uploads every file under `local` to `dest/` (relative paths kept).
pub fn upload_dir(
    remote: &Remote,
    local: &Path,
    dest: &RemoteUrl,
    opts: &UploadOptions,
) -> Result<UploadStats> {
    let mut files = Vec::new();
    walk(local, local, &mut files)?;
    files.sort_by_key(|(rel, _)| {
        (
            opts.last.iter().position(|l| l == rel).map_or(0, |p| p + 1),
            rel.clone(),
        )
    });
    check_destination(remote, dest, opts.force)?;
    block_on(async {
        let mut stats = UploadStats::default();
        for (rel, path) in &files {
            let url = dest.join(rel);
            match put_file(remote, path, &url, opts).await {
                Ok((bytes, multipart)) => {
                    stats.bytes += bytes;
                    stats.multipart += usize::from(multipart);
                    stats.objects.push(url);
                }
                Err(e) => {
                    for done in &stats.objects {
                        let _ = remote.store.delete(&done.path()).await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(stats)
    })
}

/// An output on its way to a bucket: the destination, already checked, and the local
/// directory it is built in first (removed when dropped, or by an interrupted run's cleanup).
#[derive(Debug)]
pub struct BucketOutput {
    store: Remote,
    dest: RemoteUrl,
    staging: ScratchDir,
}

impl BucketOutput {
    /// Connect to `dest` and check that it can take an upload ([`check_destination`]), then
    /// make the local build directory: a refused destination costs nothing.
    pub fn prepare(dest: &RemoteUrl, force: bool) -> Result<BucketOutput> {
        let store = Remote::connect(dest, &super::store_options())?;
        check_destination(&store, dest, force)?;
        let staging =
            ScratchDir::new("electra-convert-upload-", None).map_err(|e| RemoteError::Local {
                what: "creating a local build directory for",
                path: dest.to_string(),
                source: e,
            })?;
        Ok(BucketOutput {
            store,
            dest: dest.clone(),
            staging,
        })
    }

    /// Where the output is built before the upload.
    pub fn local(&self) -> PathBuf {
        self.staging.path().join("out")
    }

    /// Upload the built output (`last`: the files that mark it complete, uploaded last). The
    /// destination is checked again first: the build took a while, and another job may have
    /// written there meanwhile.
    pub fn upload(&self, force: bool, last: &[&str]) -> Result<Uploaded> {
        let opts = UploadOptions {
            force,
            last: last.iter().map(|s| s.to_string()).collect(),
            ..UploadOptions::default()
        };
        let stats = upload_dir(&self.store, &self.local(), &self.dest, &opts)?;
        Ok(Uploaded {
            url: self.dest.to_string(),
            objects: stats.objects.iter().map(|o| o.to_string()).collect(),
            bytes: stats.bytes,
            multipart: stats.multipart,
        })
    }

    /// Keep the local build instead (nothing is uploaded); where it is.
    pub fn keep(self) -> PathBuf {
        self.staging.keep().join("out")
    }
}

/// Whether `dest` can take an upload: same store, credentials, and (without `force`) no object
/// under it yet. Called before a conversion starts, so a refused destination costs nothing.
pub fn check_destination(remote: &Remote, dest: &RemoteUrl, force: bool) -> Result<()> {
    remote.check_same_store(dest)?;
    if remote.anonymous {
        return Err(RemoteError::BadCredentials {
            url: dest.to_string(),
            detail: "uploads need credentials; anonymous access is for reading public buckets"
                .into(),
        });
    }
    if force {
        return Ok(());
    }
    let existing = block_on(list_all(remote.store.as_ref(), dest, 1000))?;
    match existing.first() {
        Some(first) => Err(RemoteError::DestinationNotEmpty {
            url: dest.to_string(),
            count: existing.len(),
            example: first.to_string(),
        }),
        None => Ok(()),
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let err = |e| RemoteError::Local {
        what: "reading the output directory",
        path: dir.display().to_string(),
        source: e,
    };
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let path = entry.path();
        let kind = entry.file_type().map_err(err)?;
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

async fn put_file(
    remote: &Remote,
    path: &Path,
    url: &RemoteUrl,
    opts: &UploadOptions,
) -> Result<(u64, bool)> {
    let local = |e| RemoteError::Local {
        what: "reading",
        path: path.display().to_string(),
        source: e,
    };
    let put_err = |e| RemoteError::from_store("PUT", &url.to_string(), e);
    let len = std::fs::metadata(path).map_err(local)?.len();
    if len <= opts.multipart_threshold {
        let bytes = std::fs::read(path).map_err(local)?;
        remote
            .store
            .put(&url.path(), PutPayload::from(bytes))
            .await
            .map_err(put_err)?;
        return Ok((len, false));
    }
    let upload = remote
        .store
        .put_multipart(&url.path())
        .await
        .map_err(put_err)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, opts.part_size);
    let mut file = std::fs::File::open(path).map_err(local)?;
    let mut buf = vec![0u8; opts.part_size.max(1)];
    let res: Result<()> = async {
        loop {
            writer
                .wait_for_capacity(opts.parts_in_flight.max(1))
                .await
                .map_err(put_err)?;
            let n = file.read(&mut buf).map_err(local)?;
            if n == 0 {
                return Ok(());
            }
            writer.write(&buf[..n]);
        }
    }
    .await;
    match res {
        Ok(()) => {
            writer.finish().await.map_err(put_err)?;
            Ok((len, true))
        }
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}
