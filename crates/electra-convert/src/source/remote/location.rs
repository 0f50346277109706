//! Parsing `gs://`, `s3://`, `az://` and `http(s)://` URLs into (store, object path).

use std::fmt;

use object_store::path::Path;

use super::error::{RemoteError, Result};

/// Which kind of store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `gs://bucket/key`: Google Cloud Storage.
    Gcs,
    /// `s3://bucket/key` (also `s3a://`): S3 and S3-compatible stores.
    S3,
    /// `az://container/key` (also `azure://`, `abfs://`, `abfss://`): Azure Blob Storage.
    Azure,
    /// `https://host/path` (or `http://`): a public object on any web server that honours Range.
    Http,
}

/// A parsed object-store URL: the store (scheme + bucket, or scheme + host for HTTP) and the
/// object key inside it. The key has no leading or trailing `/`; it may be empty (the bucket root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteUrl {
    scheme: Scheme,
    /// `gs`, `s3`, `s3a`, `az`, `https`, … as written.
    scheme_text: String,
    /// Bucket or container; for HTTP, `host[:port]`.
    bucket: String,
    key: String,
}

impl RemoteUrl {
    /// Whether `s` looks like a URL of a supported scheme (cheap; no validation).
    pub fn is_remote(s: &str) -> bool {
        let Some((scheme, rest)) = s.split_once("://") else {
            return false;
        };
        !rest.is_empty() && scheme_of(&scheme.to_ascii_lowercase()).is_some()
    }

    /// Parses `gs://bucket/key`, `s3://bucket/key`, `az://container/key`, `https://host/path`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason: &str| RemoteError::InvalidUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        let (scheme_text, rest) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme_text = scheme_text.to_ascii_lowercase();
        let scheme = scheme_of(&scheme_text)
            .ok_or_else(|| bad("unknown scheme (use gs://, s3://, az://, https://)"))?;
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket or host"));
        }
        if scheme != Scheme::Http && bucket.contains(['@', ':']) {
            return Err(bad(
                "account or port in the bucket name; give the account in the environment",
            ));
        }
        let key = key.trim_matches('/');
        // The key becomes an object_store Path: no empty, `.` or `..` segments.
        if !key.is_empty() {
            for seg in key.split('/') {
                if seg.is_empty() || seg == "." || seg == ".." {
                    return Err(bad("empty, '.' or '..' path segment"));
                }
            }
        }
        let key = if scheme == Scheme::Http {
            // The HTTP store takes the percent-decoded path.
            Path::from_url_path(key)
                .map_err(|e| bad(&e.to_string()))?
                .to_string()
        } else {
            key.to_string()
        };
        Ok(RemoteUrl {
            scheme,
            scheme_text,
            bucket: bucket.to_string(),
            key,
        })
    }

    /// Which store the URL names.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The bucket or container (for HTTP: `host[:port]`).
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key inside the bucket, without leading or trailing `/`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The object_store path of the key.
    pub(crate) fn path(&self) -> Path {
        Path::from_iter(self.key.split('/').filter(|s| !s.is_empty()))
    }

    /// The URL of the store root (`gs://bucket`, `https://host`).
    pub fn store_root(&self) -> String {
        format!("{}://{}", self.scheme_text, self.bucket)
    }

    /// Whether two URLs live in the same store (same scheme and bucket/host).
    pub fn same_store(&self, other: &RemoteUrl) -> bool {
        self.scheme == other.scheme
            && self.bucket == other.bucket
            && self.scheme_text == other.scheme_text
    }

    /// The last path segment (empty at the bucket root).
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or_default()
    }

    /// The URL of the "directory" holding this object (the bucket root for a top-level key).
    pub fn parent(&self) -> RemoteUrl {
        let key = self.key.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        self.with_key(key)
    }

    /// `self` as a directory, joined with a relative name (`a/b` + `c` = `a/b/c`).
    pub fn join(&self, name: &str) -> RemoteUrl {
        let name = name.trim_matches('/');
        if self.key.is_empty() {
            self.with_key(name)
        } else if name.is_empty() {
            self.clone()
        } else {
            self.with_key(&format!("{}/{}", self.key, name))
        }
    }

    /// The same store with another key.
    pub fn with_key(&self, key: &str) -> RemoteUrl {
        RemoteUrl {
            key: key.trim_matches('/').to_string(),
            ..self.clone()
        }
    }

    /// The key with a suffix appended to its last segment (`model.ckpt-1` + `.index`).
    pub fn with_suffix(&self, suffix: &str) -> RemoteUrl {
        self.with_key(&format!("{}{}", self.key, suffix))
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}://{}", self.scheme_text, self.bucket)
        } else {
            write!(f, "{}://{}/{}", self.scheme_text, self.bucket, self.key)
        }
    }
}

fn scheme_of(s: &str) -> Option<Scheme> {
    Some(match s {
        "gs" => Scheme::Gcs,
        "s3" | "s3a" => Scheme::S3,
        "az" | "azure" | "abfs" | "abfss" => Scheme::Azure,
        "https" | "http" => Scheme::Http,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bucket_scheme_the_commands_recognise_is_one_the_stores_take() {
        for scheme in super::super::super::BUCKET_SCHEMES {
            assert!(scheme_of(scheme).is_some(), "{scheme}");
            let url = format!("{}://b/run", scheme.to_ascii_uppercase());
            assert!(RemoteUrl::is_remote(&url), "{url}");
            assert!(
                super::super::super::bucket_url(std::path::Path::new(&url)).is_some(),
                "{url}"
            );
        }
    }

    #[test]
    fn parses_each_scheme() {
        let u = RemoteUrl::parse("gs://bkt/models/m/model.ckpt-1000").unwrap();
        assert_eq!(
            (u.scheme(), u.bucket(), u.key()),
            (Scheme::Gcs, "bkt", "models/m/model.ckpt-1000")
        );
        assert_eq!(u.file_name(), "model.ckpt-1000");
        assert_eq!(u.parent().to_string(), "gs://bkt/models/m");
        assert_eq!(
            u.with_suffix(".index").to_string(),
            "gs://bkt/models/m/model.ckpt-1000.index"
        );

        let u = RemoteUrl::parse("S3://b/k/").unwrap();
        assert_eq!((u.scheme(), u.key()), (Scheme::S3, "k"));
        assert_eq!(u.to_string(), "s3://b/k");
        assert_eq!(RemoteUrl::parse("s3a://b/x").unwrap().scheme(), Scheme::S3);

        let u = RemoteUrl::parse("az://container/dir/x.index").unwrap();
        assert_eq!(
            (u.scheme(), u.bucket(), u.key()),
            (Scheme::Azure, "container", "dir/x.index")
        );

        let u = RemoteUrl::parse("https://storage.googleapis.com/electra-data/electra_small.zip")
            .unwrap();
        assert_eq!(
            (u.scheme(), u.bucket()),
            (Scheme::Http, "storage.googleapis.com")
        );
        assert_eq!(u.key(), "electra-data/electra_small.zip");
        assert_eq!(u.store_root(), "https://storage.googleapis.com");

        let u = RemoteUrl::parse("http://127.0.0.1:4443/b/a%20b.bin?x=1").unwrap();
        assert_eq!((u.bucket(), u.key()), ("127.0.0.1:4443", "b/a b.bin"));
    }

    #[test]
    fn bucket_root_and_join() {
        let u = RemoteUrl::parse("gs://bkt").unwrap();
        assert_eq!(u.key(), "");
        assert_eq!(u.join("checkpoint").to_string(), "gs://bkt/checkpoint");
        assert_eq!(u.parent(), u);
        let d = RemoteUrl::parse("gs://bkt/a/b/").unwrap();
        assert_eq!(d.join("c").key(), "a/b/c");
        assert!(d.same_store(&u));
        assert!(!d.same_store(&RemoteUrl::parse("s3://bkt/a").unwrap()));
    }

    #[test]
    fn rejects_bad_urls() {
        for s in [
            "gs:/bkt/x",
            "ftp://h/x",
            "gs:///x",
            "gs://b/a//c",
            "gs://b/a/../c",
            "az://c@acct/x",
            "/local/path",
        ] {
            assert!(RemoteUrl::parse(s).is_err(), "{s}");
        }
        assert!(!RemoteUrl::is_remote("/local/path"));
        assert!(!RemoteUrl::is_remote("C:\\x"));
        assert!(RemoteUrl::is_remote("gs://b/x"));
    }
}
