//! The typed errors of the remote layer. Every variant names the URL it is about.

use std::ops::Range;

/// What went wrong talking to an object store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The string is not a URL this layer reads (`gs://`, `s3://`, `az://`, `http(s)://`).
    #[error("not a supported object-store URL: {url}: {reason}")]
    InvalidUrl {
        /// The URL concerned.
        url: String,
        /// Why it is not usable.
        reason: String,
    },

    /// No credentials were found for a store that needs them.
    #[error(
        "no credentials for {url}: looked for {looked_for}{hint}",
        hint = hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default()
    )]
    NoCredentials {
        /// The URL concerned.
        url: String,
        /// The credential sources looked for.
        looked_for: String,
        /// What to try, when there is a suggestion.
        hint: Option<String>,
    },

    /// Credentials were found but are unusable (unreadable file, unsupported type, …).
    #[error("unusable credentials for {url}: {detail}")]
    BadCredentials {
        /// The URL concerned.
        url: String,
        /// What went wrong, in the store's or parser's words.
        detail: String,
    },

    /// The bucket (or Azure container) does not exist.
    #[error("bucket not found: {bucket} (for {url})")]
    BucketNotFound {
        /// The URL concerned.
        url: String,
        /// The bucket or container.
        bucket: String,
    },

    /// The object does not exist (the bucket does).
    #[error("object not found: {url}")]
    NotFound {
        /// The URL concerned.
        url: String,
    },

    /// The store refused the request (missing permission, bad or expired credentials).
    #[error("access denied to {url}: {detail}")]
    Denied {
        /// The URL concerned.
        url: String,
        /// What went wrong, in the store's or parser's words.
        detail: String,
    },

    /// The object was replaced or deleted after its version was first seen.
    #[error(
        "the object changed while being read: {url} (first seen as {seen}); \
         it was replaced or deleted (a training job still writing checkpoints?)"
    )]
    Changed {
        /// The URL concerned.
        url: String,
        /// The version (ETag or generation) seen first.
        seen: String,
    },

    /// The server sent fewer bytes than asked for, after every retry.
    #[error("truncated response for {url}: asked for bytes {range:?}, got {got} bytes")]
    Truncated {
        /// The URL concerned.
        url: String,
        /// The byte range concerned.
        range: Range<u64>,
        /// How many bytes came back.
        got: u64,
    },

    /// The server ignores Range requests (answers 200 with the whole object).
    #[error("the server does not support range requests for {url}; download the file instead")]
    RangeNotSupported {
        /// The URL concerned.
        url: String,
    },

    /// A tensor's bytes were about to be read without having been fetched.
    #[error("bytes {range:?} of {url} were never fetched; refusing to read them as weights")]
    NotFetched {
        /// The URL concerned.
        url: String,
        /// The byte range concerned.
        range: Range<u64>,
    },

    /// A requested byte range lies outside the object.
    #[error("bytes {range:?} are outside {url} ({size} bytes)")]
    OutOfBounds {
        /// The URL concerned.
        url: String,
        /// The byte range concerned.
        range: Range<u64>,
        /// The object's size in bytes.
        size: u64,
    },

    /// An object is larger than the caller allows for a whole-object read.
    #[error("{url} is {size} bytes, more than the {limit} allowed for this read")]
    TooLarge {
        /// The URL concerned.
        url: String,
        /// The object's size in bytes.
        size: u64,
        /// The most this read allows, in bytes.
        limit: u64,
    },

    /// Upload destination holds objects and `force` was not given.
    #[error("destination {url} is not empty ({count} objects, e.g. {example}); use --force to write into it")]
    DestinationNotEmpty {
        /// The URL concerned.
        url: String,
        /// How many objects are already there.
        count: usize,
        /// One of them, as an example.
        example: String,
    },

    /// The directory resolution found nothing usable.
    #[error("no checkpoint at {url}: {detail}")]
    NoCheckpoint {
        /// The URL concerned.
        url: String,
        /// What went wrong, in the store's or parser's words.
        detail: String,
    },

    /// A local file (cache, upload source) failed.
    #[error("{what} {path}: {source}")]
    Local {
        /// What the local file is for.
        what: &'static str,
        /// The local file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Any other store or transport failure (after the store's own retries).
    #[error("{op} {url}: {source}")]
    Store {
        /// The operation that failed.
        op: &'static str,
        /// The URL concerned.
        url: String,
        /// The underlying error.
        source: object_store::Error,
    },
}

pub(crate) type Result<T, E = RemoteError> = std::result::Result<T, E>;

impl RemoteError {
    /// Maps a store error of operation `op` on `url` to the typed variants.
    pub(crate) fn from_store(op: &'static str, url: &str, e: object_store::Error) -> Self {
        use object_store::Error as E;
        match e {
            E::NotFound { .. } => RemoteError::NotFound {
                url: url.to_string(),
            },
            E::PermissionDenied { source, .. } | E::Unauthenticated { source, .. } => {
                RemoteError::Denied {
                    url: url.to_string(),
                    detail: source.to_string(),
                }
            }
            other => {
                let text = other.to_string();
                if text.contains("non-partial response")
                    || text.contains("Range request not supported")
                {
                    RemoteError::RangeNotSupported {
                        url: url.to_string(),
                    }
                } else {
                    RemoteError::Store {
                        op,
                        url: url.to_string(),
                        source: other,
                    }
                }
            }
        }
    }
}
