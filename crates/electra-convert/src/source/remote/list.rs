//! "Directories" on object stores: delimiter listings, the TF `checkpoint` state file, and
//! resolving a URL to a checkpoint prefix with its `.index` and data shards.

use object_store::ObjectStore;

use super::error::{RemoteError, Result};
use super::location::RemoteUrl;
use super::object::RemoteObject;
use super::runtime::block_on;
use super::store::Remote;

/// One level of a prefix listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Listing {
    /// "Subdirectories" (common prefixes), as URLs without a trailing `/`.
    pub dirs: Vec<RemoteUrl>,
    /// Objects directly under the prefix, with their sizes.
    pub objects: Vec<(RemoteUrl, u64)>,
}

/// Lists `dir` as a directory (objects whose key starts with `dir/`), one level deep.
/// Not available for `https://` URLs (a web server has no listing).
pub(crate) fn list_dir(remote: &Remote, dir: &RemoteUrl) -> Result<Listing> {
    remote.check_same_store(dir)?;
    let path = dir.path();
    let prefix = (!dir.key().is_empty()).then_some(&path);
    let res = block_on(remote.store.list_with_delimiter(prefix))
        .map_err(|e| RemoteError::from_store("LIST", &format!("{dir}/"), e))?;
    let mut out = Listing {
        dirs: res
            .common_prefixes
            .iter()
            .map(|p| dir.with_key(p.as_ref()))
            .collect(),
        objects: res
            .objects
            .iter()
            .map(|m| (dir.with_key(m.location.as_ref()), m.size))
            .collect(),
    };
    out.dirs.sort_by(|a, b| a.key().cmp(b.key()));
    out.objects.sort_by(|a, b| a.0.key().cmp(b.0.key()));
    Ok(out)
}

/// Every object under `dir/` at any depth (for the upload's emptiness check), at most `limit`.
pub(crate) async fn list_all(
    store: &dyn ObjectStore,
    dir: &RemoteUrl,
    limit: usize,
) -> Result<Vec<RemoteUrl>> {
    use futures::TryStreamExt;
    let path = dir.path();
    let prefix = (!dir.key().is_empty()).then_some(&path);
    let mut out = Vec::new();
    let mut stream = store.list(prefix);
    while let Some(meta) = stream
        .try_next()
        .await
        .map_err(|e| RemoteError::from_store("LIST", &format!("{dir}/"), e))?
    {
        out.push(dir.with_key(meta.location.as_ref()));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// The checkpoint a `checkpoint` state file names, read with the same parser as local state
/// files; what is wrong otherwise (an empty path counts as none).
fn named_checkpoint(bytes: &[u8]) -> std::result::Result<String, String> {
    match tf_checkpoint::parse_state_file(bytes) {
        Ok(Some(named)) if !named.is_empty() => Ok(named),
        Ok(_) => Err("has no model_checkpoint_path".into()),
        Err((line, problem)) => Err(format!("line {line}: {problem}")),
    }
}

/// A checkpoint found at a URL: its prefix, and the `.index` and data shards as first seen.
#[derive(Debug, Clone)]
pub struct ResolvedCheckpoint {
    /// `…/model.ckpt-1000`
    pub prefix: RemoteUrl,
    /// The `.index` object.
    pub index: RemoteObject,
    /// `prefix.data-0000K-of-0000N`, in shard order.
    pub data: Vec<RemoteObject>,
    /// How it was found: "prefix", "index", "data", "state file", "listing".
    pub found_by: &'static str,
    /// The names of the objects beside the prefix, from the listing that found the data shards
    /// (`None` where the store cannot list): side files not among them are not asked for.
    pub neighbours: Option<Vec<String>>,
    /// The `checkpoint` state file read while resolving, and where it was.
    pub state_file: Option<(RemoteUrl, Vec<u8>)>,
}

/// Largest state file read.
const STATE_FILE_LIMIT: u64 = 1 << 20;

/// Resolves `url` as the local tool does: a prefix, its `.index` / `.data-*` / `.meta`, or a
/// directory (the `checkpoint` state file, else exactly one `*.index` by listing). Never a
/// `.data` without its `.index`. HEADs the index and every shard, then the index again, so a
/// checkpoint replaced meanwhile is reported as changed.
pub fn resolve_checkpoint(remote: &Remote, url: &RemoteUrl) -> Result<ResolvedCheckpoint> {
    remote.check_same_store(url)?;
    let key = url.key();
    let mut state_file = None;
    // The index as seen by the "is it a prefix?" probe, so it is not asked for again.
    let mut probed = None;
    let (prefix, found_by) = if let Some(p) = key.strip_suffix(".index") {
        (url.with_key(p), "index")
    } else if let Some(p) = strip_data_suffix(key) {
        (url.with_key(p), "data")
    } else if let Some(p) = key.strip_suffix(".meta") {
        (url.with_key(p), "meta")
    } else if let Some(index) = (!key.is_empty())
        .then(|| RemoteObject::head_opt(remote, &url.with_suffix(".index")))
        .transpose()?
        .flatten()
    {
        probed = Some(index);
        (url.clone(), "prefix")
    } else {
        resolve_directory(remote, url, &mut state_file)?
    };
    let index_url = prefix.with_suffix(".index");
    let index = match probed {
        Some(index) => Ok(index),
        None => RemoteObject::head(remote, &index_url),
    }
    .map_err(|e| match e {
        RemoteError::NotFound { .. } => RemoteError::NoCheckpoint {
            url: url.to_string(),
            detail: format!(
                "{index_url} does not exist (a .data file without its .index is never used)"
            ),
        },
        other => other,
    })?;
    let (data, neighbours) = data_shards(remote, &prefix)?;
    let again = RemoteObject::head(remote, &index_url)?;
    if again != index {
        return Err(RemoteError::Changed {
            url: index_url.to_string(),
            seen: index.identity(),
        });
    }
    Ok(ResolvedCheckpoint {
        prefix,
        index,
        data,
        found_by,
        neighbours,
        state_file,
    })
}

/// `x.data-00000-of-00001` → `x`
fn strip_data_suffix(key: &str) -> Option<&str> {
    let (p, tail) = key.rsplit_once(".data-")?;
    parse_shard_tail(tail).map(|_| p)
}

/// `00000-of-00002` → (0, 2)
fn parse_shard_tail(tail: &str) -> Option<(u32, u32)> {
    let (k, n) = tail.split_once("-of-")?;
    let ok = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !ok(k) || !ok(n) {
        return None;
    }
    let (k, n) = (k.parse().ok()?, n.parse().ok()?);
    (k < n).then_some((k, n))
}

fn resolve_directory(
    remote: &Remote,
    dir: &RemoteUrl,
    state_file: &mut Option<(RemoteUrl, Vec<u8>)>,
) -> Result<(RemoteUrl, &'static str)> {
    let state_url = dir.join("checkpoint");
    match RemoteObject::read_all(remote, &state_url, STATE_FILE_LIMIT) {
        Ok((_, bytes)) => {
            *state_file = Some((state_url.clone(), bytes.clone()));
            let named = named_checkpoint(&bytes).map_err(|problem| RemoteError::NoCheckpoint {
                url: dir.to_string(),
                detail: format!("{state_url} {problem}"),
            })?;
            // An absolute URL in the same store is used as is; anything else (a relative name, or
            // a path on the machine that trained) by its last segment, in this directory.
            let prefix = match RemoteUrl::parse(&named) {
                Ok(u) if u.same_store(dir) => u,
                _ => dir.join(named.rsplit(['/', '\\']).next().unwrap_or(&named)),
            };
            return Ok((prefix, "state file"));
        }
        Err(RemoteError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let listing = list_dir(remote, dir)?;
    let indexes: Vec<&RemoteUrl> = listing
        .objects
        .iter()
        .map(|(u, _)| u)
        .filter(|u| u.key().ends_with(".index"))
        .collect();
    match indexes.as_slice() {
        [one] => Ok((
            one.with_key(one.key().strip_suffix(".index").unwrap_or_default()),
            "listing",
        )),
        [] => Err(RemoteError::NoCheckpoint {
            url: dir.to_string(),
            detail: "no `checkpoint` state file and no *.index object in this directory".into(),
        }),
        many => Err(RemoteError::NoCheckpoint {
            url: dir.to_string(),
            detail: format!(
                "no `checkpoint` state file and {} *.index objects; name one: {}",
                many.len(),
                many.iter()
                    .map(|u| u.file_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// HEADs `prefix.data-0000K-of-0000N` for every K, with N taken from a listing. A web server
/// (`https://`) has no listing: there N comes from the index itself, so this returns nothing
/// and the caller asks [`shards_named`] once the index is read.
fn data_shards(
    remote: &Remote,
    prefix: &RemoteUrl,
) -> Result<(Vec<RemoteObject>, Option<Vec<String>>)> {
    if prefix.scheme() == super::Scheme::Http {
        return Ok((Vec::new(), None));
    }
    let listing = list_dir(remote, &prefix.parent())?;
    let names = listing
        .objects
        .iter()
        .map(|(u, _)| u.file_name().to_string())
        .collect();
    let base = format!("{}.data-", prefix.file_name());
    let mut count = None;
    for (u, _) in &listing.objects {
        if let Some((_, n)) = u.file_name().strip_prefix(&base).and_then(parse_shard_tail) {
            count = Some(count.map_or(n, |c: u32| c.max(n)));
        }
    }
    let n = count.ok_or_else(|| RemoteError::NoCheckpoint {
        url: prefix.to_string(),
        detail: format!("no {base}*-of-* data shard next to the index"),
    })?;
    Ok((shards_named(remote, prefix, n)?, Some(names)))
}

/// HEADs `prefix.data-0000K-of-0000N` for every K < `n`.
pub(crate) fn shards_named(
    remote: &Remote,
    prefix: &RemoteUrl,
    n: u32,
) -> Result<Vec<RemoteObject>> {
    (0..n)
        .map(|k| {
            let u = prefix.with_suffix(&format!(".data-{k:05}-of-{n:05}"));
            RemoteObject::head(remote, &u).map_err(|e| match e {
                RemoteError::NotFound { .. } => RemoteError::NoCheckpoint {
                    url: prefix.to_string(),
                    detail: format!("data shard {u} is missing"),
                },
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_paths() {
        let text = "model_checkpoint_path: \"model.ckpt-2000\"\nall_model_checkpoint_paths: \"model.ckpt-1000\"\n";
        assert_eq!(
            named_checkpoint(text.as_bytes()).as_deref(),
            Ok("model.ckpt-2000")
        );
        let text = "all_model_checkpoint_paths: \"a\"\n  model_checkpoint_path : \"gs://b/m/model.ckpt-5\"  \n";
        assert_eq!(
            named_checkpoint(text.as_bytes()).as_deref(),
            Ok("gs://b/m/model.ckpt-5")
        );
        assert!(named_checkpoint(b"model_checkpoint_path: \"\"\n").is_err());
        assert!(named_checkpoint(b"garbage").is_err());
    }

    #[test]
    fn shard_names() {
        assert_eq!(
            strip_data_suffix("d/model.ckpt-1.data-00000-of-00001"),
            Some("d/model.ckpt-1")
        );
        assert_eq!(
            strip_data_suffix("d/model.ckpt-1.data-00001-of-00001"),
            None
        );
        assert_eq!(strip_data_suffix("d/x.data-1-of-2"), None);
        assert_eq!(parse_shard_tail("00001-of-00003"), Some((1, 3)));
    }
}
