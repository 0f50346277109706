//! transformers' TF uploads by URL (`https://host/repo/tf_model.h5`, a sharded upload's
//! `tf_model.h5.index.json`, the same in a bucket): every byte of those files is a weight of the
//! one model they hold, so each is fetched whole (in bounded pieces, concurrently, pinned to its
//! first-seen version) into a temporary directory with the small files beside it
//! (`config.json`, the tokenizer files), and read there as a local upload is.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::super::{keras, Source, SourceError};
use super::{
    remote_err, scratch_dir, store_options, CacheMode, FetchConfig, Remote, RemoteError,
    RemoteObject, RemoteShard, RemoteState, RemoteUrl, SIDE_LIMIT,
};

/// Files read beside the weights when present.
const SIDE_FILES: [&str; 5] = [
    "config.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.json",
];

/// Largest shard index read.
const INDEX_LIMIT: u64 = 64 << 20;

/// Whether `url` names transformers' TF weights (`….h5`, `….h5.index.json`).
pub(super) fn is_keras_url(url: &str) -> bool {
    let key = url.split(['?', '#']).next().unwrap_or(url);
    key.ends_with(".h5") || key.ends_with(".h5.index.json")
}

/// Fetch the upload at `url` and the files beside it, and open it.
pub(super) fn open(url: &str) -> Result<Source, SourceError> {
    let url = RemoteUrl::parse(url).map_err(remote_err)?;
    let remote = Remote::connect(&url, &store_options()).map_err(remote_err)?;
    let dir = scratch_dir(&url)?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)
        .map_err(|e| local_err("creating", &files.display().to_string(), e))?;
    let parent = url.parent();
    let name = url.file_name().to_string();
    let mut fetched = 0u64;
    let mut total = 0u64;
    let local = files.join(&name);
    if name.ends_with(".index.json") {
        let (object, bytes) =
            RemoteObject::read_all(&remote, &url, INDEX_LIMIT).map_err(remote_err)?;
        std::fs::write(&local, &bytes)
            .map_err(|e| local_err("writing", &local.display().to_string(), e))?;
        fetched += bytes.len() as u64;
        total += object.size;
        for shard in keras::shard_files(&local)? {
            let shard_name = shard
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let size = fetch_whole(&remote, &parent.join(&shard_name), &shard, dir.path())?;
            fetched += size;
            total += size;
        }
    } else {
        let size = fetch_whole(&remote, &url, &local, dir.path())?;
        fetched += size;
        total += size;
    }
    for side in SIDE_FILES {
        match RemoteObject::read_all(&remote, &parent.join(side), SIDE_LIMIT) {
            Ok((_, bytes)) => {
                let path = files.join(side);
                std::fs::write(&path, &bytes)
                    .map_err(|e| local_err("writing", &path.display().to_string(), e))?;
                fetched += bytes.len() as u64;
            }
            Err(RemoteError::NotFound { .. }) => {}
            Err(e) => return Err(remote_err(e)),
        }
    }
    let source = keras::open(&local)?.with_location(url.to_string());
    // Every shard of the bundle the upload becomes is a local file now: no slots.
    let state = RemoteState {
        remote,
        prefix: url,
        slots: Vec::new(),
        opened_bytes: fetched,
        needed: Mutex::new(Vec::new()),
        needed_whole: total,
        total_size: total,
        _dir: dir,
    };
    Ok(source.with_remote(state))
}

/// Fetch the object at `url` whole into `to`; its size.
fn fetch_whole(
    remote: &Remote,
    url: &RemoteUrl,
    to: &Path,
    scratch: &Path,
) -> Result<u64, SourceError> {
    let object = RemoteObject::head(remote, url).map_err(remote_err)?;
    let size = object.size;
    let cache = scratch.join("cache");
    std::fs::create_dir_all(&cache)
        .map_err(|e| local_err("creating", &cache.display().to_string(), e))?;
    let shard = Arc::new(
        RemoteShard::open(
            remote,
            object,
            &CacheMode::Scratch(cache),
            FetchConfig::default(),
        )
        .map_err(remote_err)?,
    );
    if size > 0 {
        let everything = 0..size;
        shard
            .prefetch(std::slice::from_ref(&everything))
            .map_err(remote_err)?;
    }
    let from = shard
        .cache_path()
        .expect("a cache directory gives a named file")
        .to_path_buf();
    std::fs::rename(&from, to)
        .map_err(|e| local_err("moving the fetched copy of", &url.to_string(), e))?;
    Ok(size)
}

fn local_err(what: &'static str, path: &str, e: std::io::Error) -> SourceError {
    remote_err(RemoteError::Local {
        what,
        path: path.to_string(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::is_keras_url;

    #[test]
    fn keras_upload_urls() {
        assert!(is_keras_url(
            "https://h/google/electra/resolve/main/tf_model.h5"
        ));
        assert!(is_keras_url("gs://b/m/tf_model.h5.index.json"));
        assert!(is_keras_url("https://h/m/tf_model.h5?download=true"));
        assert!(!is_keras_url("s3://b/run/model.ckpt-10"));
        assert!(!is_keras_url("s3://b/run/tf_model.h5.bak"));
    }
}
