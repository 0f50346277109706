//! One object's identity (size, ETag, generation/version) and reads pinned to it.

use std::ops::Range;
use std::time::Duration;

use futures::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStoreExt};

use super::error::{RemoteError, Result};
use super::location::{RemoteUrl, Scheme};
use super::runtime::block_on;
use super::store::Remote;

/// An object as first seen by HEAD. Every later read is pinned to this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    /// Where the object is.
    pub url: RemoteUrl,
    /// Its size in bytes, as first seen.
    pub size: u64,
    /// The ETag as the store sent it (quotes included), if any.
    pub e_tag: Option<String>,
    /// GCS generation, S3 version id or Azure version id, where the store has one.
    pub version: Option<String>,
}

impl RemoteObject {
    /// HEADs `url`. A missing object is [`RemoteError::NotFound`], a missing bucket
    /// [`RemoteError::BucketNotFound`] (told apart with one listing request).
    pub fn head(remote: &Remote, url: &RemoteUrl) -> Result<RemoteObject> {
        remote.check_same_store(url)?;
        block_on(async {
            match remote.store.head(&url.path()).await {
                Ok(meta) => Ok(RemoteObject {
                    url: url.clone(),
                    size: meta.size,
                    e_tag: meta.e_tag,
                    version: meta.version,
                }),
                Err(object_store::Error::NotFound { .. }) => Err(not_found(remote, url).await),
                Err(e) => Err(RemoteError::from_store("HEAD", &url.to_string(), e)),
            }
        })
    }

    /// HEADs `url`; `None` if there is no such object (without telling a missing bucket apart:
    /// for probes whose absence is an answer, one request instead of two).
    pub(crate) fn head_opt(remote: &Remote, url: &RemoteUrl) -> Result<Option<RemoteObject>> {
        remote.check_same_store(url)?;
        block_on(async {
            match remote.store.head(&url.path()).await {
                Ok(meta) => Ok(Some(RemoteObject {
                    url: url.clone(),
                    size: meta.size,
                    e_tag: meta.e_tag,
                    version: meta.version,
                })),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(RemoteError::from_store("HEAD", &url.to_string(), e)),
            }
        })
    }

    /// How this version is named in messages and cache keys.
    pub fn identity(&self) -> String {
        match (&self.e_tag, &self.version) {
            (Some(e), Some(v)) => format!("etag {e}, version {v}"),
            (Some(e), None) => format!("etag {e}"),
            (None, Some(v)) => format!("version {v}"),
            (None, None) => format!("{} bytes, no etag", self.size),
        }
    }

    /// Reads `range` into memory, pinned to this version (for small things: index, state file).
    pub fn read_range(&self, remote: &Remote, range: Range<u64>) -> Result<Vec<u8>> {
        self.check_bounds(&range)?;
        let mut buf = vec![0u8; (range.end - range.start) as usize];
        let start = range.start;
        block_on(fetch_piece(
            remote,
            self,
            range,
            3,
            Duration::from_millis(200),
            |off, data| {
                let at = (off - start) as usize;
                buf[at..at + data.len()].copy_from_slice(data);
                Ok(())
            },
        ))?;
        Ok(buf)
    }

    /// HEAD, then the whole object pinned to that version; refuses objects over `limit` bytes.
    pub fn read_all(
        remote: &Remote,
        url: &RemoteUrl,
        limit: u64,
    ) -> Result<(RemoteObject, Vec<u8>)> {
        let obj = RemoteObject::head(remote, url)?;
        if obj.size > limit {
            return Err(RemoteError::TooLarge {
                url: url.to_string(),
                size: obj.size,
                limit,
            });
        }
        let bytes = if obj.size == 0 {
            Vec::new()
        } else {
            obj.read_range(remote, 0..obj.size)?
        };
        Ok((obj, bytes))
    }

    pub(crate) fn check_bounds(&self, r: &Range<u64>) -> Result<()> {
        if r.start > r.end || r.end > self.size {
            return Err(RemoteError::OutOfBounds {
                url: self.url.to_string(),
                range: r.clone(),
                size: self.size,
            });
        }
        Ok(())
    }

    /// GET options for `range` of exactly this version. GCS pins by generation (immutable
    /// content); the others by If-Match on the ETag, plus the version id where there is one.
    fn pinned(&self, range: Range<u64>) -> GetOptions {
        let if_match = match (self.url.scheme(), &self.version) {
            (Scheme::Gcs, Some(_)) => None,
            _ => self.e_tag.clone(),
        };
        GetOptions {
            if_match,
            version: self.version.clone(),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        }
    }

    /// Maps an error of a pinned read: a failed precondition, or a pinned version that is gone,
    /// means the object changed.
    fn pinned_error(&self, e: object_store::Error) -> RemoteError {
        let pinned = self.e_tag.is_some() || self.version.is_some();
        match e {
            object_store::Error::Precondition { .. } => self.changed(),
            object_store::Error::NotFound { .. } if pinned => self.changed(),
            other => RemoteError::from_store("GET", &self.url.to_string(), other),
        }
    }

    /// Whether a response naming `e_tag` / `version` is of this version (what a response
    /// does not name is not held against it).
    fn same_version(&self, e_tag: &Option<String>, version: &Option<String>) -> bool {
        let agrees = |pinned: &Option<String>, got: &Option<String>| match (pinned, got) {
            (Some(p), Some(g)) => p == g,
            _ => true,
        };
        agrees(&self.e_tag, e_tag) && agrees(&self.version, version)
    }

    fn changed(&self) -> RemoteError {
        RemoteError::Changed {
            url: self.url.to_string(),
            seen: self.identity(),
        }
    }
}

async fn not_found(remote: &Remote, url: &RemoteUrl) -> RemoteError {
    // Listing the parent "directory" of a missing bucket fails with NotFound too.
    let parent = url.parent().path();
    let prefix = (!parent.as_ref().is_empty()).then_some(&parent);
    match remote.store.list_with_delimiter(prefix).await {
        Err(e) if is_404(&e) => RemoteError::BucketNotFound {
            url: url.to_string(),
            bucket: url.bucket().to_string(),
        },
        _ => RemoteError::NotFound {
            url: url.to_string(),
        },
    }
}

/// Whether a store error is an HTTP 404. LIST failures come back as `Generic` (only GET/HEAD
/// map 404 to `NotFound`), and the status is only in the message of a crate-private type.
pub(crate) fn is_404(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. }) || {
        let text = e.to_string();
        text.contains("status 404") || text.contains("404 Not Found")
    }
}

/// Whether the failure was in transport (connection, timeout, a body cut off), not a status.
fn is_transport(e: &object_store::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if x.downcast_ref::<object_store::client::HttpError>()
            .is_some()
        {
            return true;
        }
        cur = x.source();
    }
    false
}

/// What one GET attempt left behind.
enum Attempt {
    /// Give up: the object changed, access was denied, a local write failed, …
    Fatal(RemoteError),
    /// The body broke off or came short after `reached`; try the rest again.
    Retry { reached: u64, err: RemoteError },
}

/// Fetches `piece` of `obj` and hands every received chunk to `sink(offset, bytes)`, in order.
/// Bodies that break off or come short are resumed from where they stopped, at most `retries`
/// times (the store itself already retries 5xx, throttling, connect errors and, where there is
/// an ETag, bodies cut mid-stream). Returns the number of resumptions.
pub(crate) async fn fetch_piece(
    remote: &Remote,
    obj: &RemoteObject,
    piece: Range<u64>,
    retries: u32,
    backoff: Duration,
    mut sink: impl FnMut(u64, &[u8]) -> std::io::Result<()> + Send,
) -> Result<u32> {
    let mut at = piece.start;
    let mut resumed = 0u32;
    loop {
        match attempt(remote, obj, at..piece.end, &mut sink).await {
            Ok(()) => return Ok(resumed),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Retry { reached, err }) => {
                if resumed >= retries {
                    return Err(match err {
                        RemoteError::Truncated { url, .. } => RemoteError::Truncated {
                            url,
                            range: piece.clone(),
                            got: reached - piece.start,
                        },
                        other => other,
                    });
                }
                resumed += 1;
                at = reached;
                tokio::time::sleep(backoff * 2u32.pow(resumed - 1)).await;
            }
        }
    }
}

async fn attempt(
    remote: &Remote,
    obj: &RemoteObject,
    range: Range<u64>,
    sink: &mut (impl FnMut(u64, &[u8]) -> std::io::Result<()> + Send),
) -> Result<(), Attempt> {
    let url = obj.url.to_string();
    let res = remote
        .store
        .get_opts(&obj.url.path(), obj.pinned(range.clone()))
        .await
        .map_err(|e| {
            // A transport failure the store gave up on (e.g. the body of an error response cut
            // off) is worth another bounded try; anything with a status is final.
            let transport = is_transport(&e);
            match obj.pinned_error(e) {
                err @ RemoteError::Changed { .. } => Attempt::Fatal(err),
                err if transport => Attempt::Retry {
                    reached: range.start,
                    err,
                },
                err => Attempt::Fatal(err),
            }
        })?;
    if res.range != range {
        return Err(Attempt::Fatal(RemoteError::RangeNotSupported { url }));
    }
    // The body must be of the pinned version, whatever the server made of the precondition: a
    // store that ignores If-Match but names the version it served is caught here, as a changed
    // object rather than a CRC mismatch later.
    if !obj.same_version(&res.meta.e_tag, &res.meta.version) {
        return Err(Attempt::Fatal(obj.changed()));
    }
    let mut stream = res.into_stream();
    let mut at = range.start;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let err = obj.pinned_error(e);
                return Err(match err {
                    RemoteError::Changed { .. } => Attempt::Fatal(err),
                    _ => Attempt::Retry { reached: at, err },
                });
            }
        };
        let end = at + chunk.len() as u64;
        if end > range.end {
            return Err(Attempt::Fatal(RemoteError::Store {
                op: "GET",
                url,
                source: object_store::Error::Generic {
                    store: "remote",
                    source: format!(
                        "the server sent more than the {} bytes asked for",
                        range.end - range.start
                    )
                    .into(),
                },
            }));
        }
        sink(at, &chunk).map_err(|source| {
            Attempt::Fatal(RemoteError::Local {
                what: "writing fetched bytes of",
                path: url.clone(),
                source,
            })
        })?;
        at = end;
    }
    if at < range.end {
        return Err(Attempt::Retry {
            reached: at,
            err: RemoteError::Truncated {
                url,
                range: range.clone(),
                got: at - range.start,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::location::RemoteUrl;
    use super::RemoteObject;

    /// A response naming another ETag or version than the pinned one is refused, whatever the
    /// server made of If-Match; what a response does not name is not held against it.
    #[test]
    fn a_response_of_another_version_is_refused() {
        let obj = RemoteObject {
            url: RemoteUrl::parse("s3://b/m.data-00000-of-00001").unwrap(),
            size: 10,
            e_tag: Some("\"a\"".into()),
            version: Some("7".into()),
        };
        let s = |v: &str| Some(v.to_string());
        assert!(obj.same_version(&s("\"a\""), &s("7")));
        assert!(
            obj.same_version(&None, &None),
            "what a response omits is not held against it"
        );
        assert!(!obj.same_version(&s("\"b\""), &s("7")));
        assert!(!obj.same_version(&s("\"a\""), &s("8")));
    }
}
