//! Where a checkpoint's bytes come from: the one place every command opens its input.
//!
//! [`open`] takes what the user typed (a prefix, an `.index` or `.data-*` file, a directory) and
//! gives a [`Source`]: the validated [`Checkpoint`], the form it was found in, and the directory
//! whose side files (`vocab.txt`, `params.yaml`, `pretrain_config.json`) belong to it. Other
//! forms (archives, HDF5 files, SavedModels, buckets) plug in here: they present their weights as
//! a `Checkpoint` (data shards may be windows of other files, see
//! [`Checkpoint::with_shard_files`]), their side files in a directory, and keep whatever must
//! outlive the read (temporary files) in the `Source`.

use std::any::Any;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use tf_checkpoint::{Checkpoint, CheckpointError};

pub mod h5;
pub mod keras;
pub mod keras_metadata;
pub mod savedmodel;
pub mod scratch;
pub mod tf_safetensors;
pub mod zip;

pub use savedmodel::SavedModelFacts;
#[cfg(feature = "remote")]
pub mod remote;

/// The shape the weights were found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Form {
    /// A TensorFlow checkpoint as files (`PREFIX.index` + `PREFIX.data-*`).
    Checkpoint,
    /// A TensorFlow checkpoint in a bucket (`gs://`, `s3://`, `az://`, `https://`), read by range.
    Bucket,
    /// transformers' TF weights: `tf_model.h5`, or `tf_model-0000K-of-0000N.h5` shards with
    /// `tf_model.h5.index.json`.
    KerasH5,
    /// transformers' TF weights as `model.safetensors` with metadata `format: tf` (Keras names).
    TfSafetensors,
    /// A checkpoint inside a zip archive (`PATH.zip`, `PATH.zip#FOLDER/PREFIX`).
    Zip,
    /// A TensorFlow SavedModel directory (`saved_model.pb`, `variables/`, `assets/`).
    SavedModel,
}

impl Form {
    /// What `inspect` calls it.
    pub fn title(self) -> &'static str {
        match self {
            Form::Checkpoint => "TensorFlow checkpoint",
            Form::Bucket => "TensorFlow checkpoint in a bucket",
            Form::KerasH5 => "HuggingFace TF weights (tf_model.h5)",
            Form::TfSafetensors => "HuggingFace TF weights (model.safetensors, format tf)",
            Form::Zip => "zip archive",
            Form::SavedModel => "TensorFlow SavedModel",
        }
    }
}

/// Why an input could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The TensorFlow checkpoint (or the bundle a form presents) is missing or unusable.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),

    /// A bucket URL was given to a build without the `remote` feature.
    #[error("{url}: this build has no bucket support (rebuild electra-convert with the default `remote` feature)")]
    NoBucketSupport {
        /// The URL given.
        url: String,
    },

    /// The bucket, its objects or the connection to the store failed.
    #[cfg(feature = "remote")]
    #[error(transparent)]
    Remote(Box<remote::RemoteError>),
    /// An HDF5 file is unreadable or outside the subset Keras and transformers write.
    #[error("cannot read `{}` as a Keras HDF5 weights file", path.display())]
    H5 {
        /// The HDF5 file.
        path: PathBuf,
        /// What the HDF5 reader reported.
        #[source]
        source: h5::Error,
    },
    /// A `tf_model.h5` (or its shard index) is readable but not a usable set of weights.
    #[error("`{}`: {detail}", path.display())]
    Keras {
        /// The weights file (or shard index).
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The zip archive is unusable or refused (see [`zip::ZipSourceError`]).
    #[error(transparent)]
    Zip(#[from] zip::ZipSourceError),
    /// A SavedModel directory whose weights or metadata are missing or unusable.
    #[error("SavedModel {dir}: {problem}")]
    SavedModel {
        /// The SavedModel directory.
        dir: PathBuf,
        /// What is missing or unusable.
        problem: String,
    },
}

/// An opened input: its checkpoint, its form, and where its side files are.
#[derive(Debug)]
pub struct Source {
    checkpoint: Checkpoint,
    form: Form,
    side_dir: PathBuf,
    /// What the user named, for messages (`run/model.ckpt-10`, `x.zip#a/b`).
    location: String,
    /// Held for the life of the source (temporary files the checkpoint reads from).
    _keep: KeepAlive,
    /// What a SavedModel adds (its vocabulary, lower-casing flag, Keras config).
    saved_model: Option<SavedModelFacts>,
    /// A checkpoint in a bucket: how to fetch its ranges.
    #[cfg(feature = "remote")]
    remote: Option<remote::RemoteState>,
}

/// Whatever must live as long as the checkpoint reads from it.
struct KeepAlive(Vec<Box<dyn Any + Send + Sync>>);

impl std::fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} kept resource(s)", self.0.len())
    }
}

impl Source {
    /// A source from its parts (for the forms other than plain files).
    pub fn new(
        checkpoint: Checkpoint,
        form: Form,
        side_dir: PathBuf,
        location: String,
        keep: Vec<Box<dyn Any + Send + Sync>>,
    ) -> Source {
        Source {
            checkpoint,
            form,
            side_dir,
            location,
            _keep: KeepAlive(keep),
            saved_model: None,
            #[cfg(feature = "remote")]
            remote: None,
        }
    }

    /// The same source, named `location` in messages and reports (a URL it was fetched from).
    pub fn with_location(mut self, location: String) -> Source {
        self.location = location;
        self
    }

    /// The same source with a SavedModel's own facts.
    pub fn with_saved_model(mut self, facts: SavedModelFacts) -> Source {
        self.saved_model = Some(facts);
        self
    }

    /// A SavedModel's own facts (`None` for other forms).
    pub fn saved_model(&self) -> Option<&SavedModelFacts> {
        self.saved_model.as_ref()
    }

    /// The vocabulary the form itself carries (a SavedModel's `assets/vocab.txt`).
    pub fn own_vocab(&self) -> Option<&Path> {
        self.saved_model.as_ref()?.vocab.as_deref()
    }

    /// The lower-casing flag the form itself records (a SavedModel's `do_lower_case`).
    pub fn own_lower_case(&self) -> Option<bool> {
        self.saved_model.as_ref()?.do_lower_case
    }

    /// A source over a checkpoint in a bucket whose shards are sparse local files.
    #[cfg(feature = "remote")]
    fn new_remote(
        checkpoint: Checkpoint,
        form: Form,
        side_dir: PathBuf,
        location: String,
        state: remote::RemoteState,
    ) -> Source {
        Source::new(checkpoint, form, side_dir, location, Vec::new()).with_remote(state)
    }

    /// The same source, its shards (some or all) read from a bucket through `state`.
    #[cfg(feature = "remote")]
    fn with_remote(mut self, state: remote::RemoteState) -> Source {
        self.remote = Some(state);
        self
    }

    /// How a bucket source fetches (`None` for local files).
    #[cfg(feature = "remote")]
    fn remote_state(&self) -> Option<&remote::RemoteState> {
        self.remote.as_ref()
    }

    /// Make the stored bytes of `names` readable: a no-op for local files; for a checkpoint in
    /// a bucket, fetch their ranges not yet held and refuse to go on unless every one is held.
    /// Every command reading tensors calls this first with the names it will read.
    pub fn prefetch<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Result<Option<FetchTotals>, SourceError> {
        self.prefetch_reporting(names, &mut crate::options::NoProgress)
    }

    /// [`prefetch`](Source::prefetch), telling `progress` the bytes fetched of the bytes needed
    /// while it runs ([`Progress::fetching`](crate::options::Progress::fetching)).
    pub fn prefetch_reporting<'n>(
        &self,
        names: impl IntoIterator<Item = &'n str>,
        progress: &mut dyn crate::options::Progress,
    ) -> Result<Option<FetchTotals>, SourceError> {
        #[cfg(feature = "remote")]
        if let Some(state) = &self.remote {
            let ranges = self.checkpoint.stored_ranges(names);
            return state
                .prefetch_reporting(&ranges, &mut |fetched, needed| {
                    progress.fetching(fetched, needed)
                })
                .map(Some)
                .map_err(|e| SourceError::Remote(Box::new(e)));
        }
        let _ = (names.into_iter(), progress);
        Ok(None)
    }

    /// What was fetched from a bucket so far (`None` for local files).
    pub fn fetched(&self) -> Option<FetchTotals> {
        #[cfg(feature = "remote")]
        if let Some(state) = &self.remote {
            return Some(state.totals());
        }
        None
    }

    /// The checkpoint.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The form the weights were found in.
    pub fn form(&self) -> Form {
        self.form
    }

    /// The directory whose `vocab.txt`, `params.yaml` or `pretrain_config.json` belong to this
    /// checkpoint (the checkpoint's own directory for plain files).
    pub fn side_dir(&self) -> &Path {
        &self.side_dir
    }

    /// The input as the user named it, resolved (for messages and reports).
    pub fn location(&self) -> &str {
        &self.location
    }
}

impl Deref for Source {
    type Target = Checkpoint;

    fn deref(&self) -> &Checkpoint {
        &self.checkpoint
    }
}

/// Open what the user named. Plain TensorFlow checkpoints: a prefix, its `.index` or `.data-*`
/// file, or a directory (its `checkpoint` state file, else its only `*.index`). Bucket URLs
/// (`gs://`, `s3://`, `az://`, `https://`; feature `remote`). Zip archives:
/// `PATH.zip` or `PATH.zip#FOLDER/PREFIX` (see [`zip`]). A SavedModel
/// directory (or its `saved_model.pb`) opens its `variables/variables` bundle.
pub fn open(path: &Path) -> Result<Source, SourceError> {
    if let Some(url) = bucket_url(path) {
        #[cfg(feature = "remote")]
        return remote::open(url);
        #[cfg(not(feature = "remote"))]
        return Err(SourceError::NoBucketSupport {
            url: url.to_string(),
        });
    }
    if let Some(dir) = savedmodel::saved_model_dir(path) {
        return savedmodel::open(&dir);
    }
    if let Some(arg) = path.to_str() {
        let (zip_path, selector) = zip::split_zip_selector(arg);
        if selector.is_some() || zip::looks_like_zip(&zip_path) {
            return zip::open(&zip_path, selector.as_deref());
        }
    }
    if let Some(h5) = keras::detect(path) {
        return keras::open(&h5);
    }
    if let Some(file) = tf_safetensors::detect(path) {
        return tf_safetensors::open(&file);
    }
    let checkpoint = Checkpoint::open(path)?;
    let side_dir = directory_of(checkpoint.prefix());
    let location = checkpoint.prefix().display().to_string();
    Ok(Source::new(
        checkpoint,
        Form::Checkpoint,
        side_dir,
        location,
        Vec::new(),
    ))
}

/// Whether `path` names transformers' TF weights (`tf_model.h5`, its shard index, or a
/// TF-format `model.safetensors`, or a directory holding one): commands that take HuggingFace
/// directories too ask this before treating a directory with `config.json` as one.
/// A directory that also holds PyTorch weights (`model.safetensors` without `format: tf`, or
/// its shard index), as many hub repositories do, is a HuggingFace model directory here.
pub fn is_tf_weights(path: &Path) -> bool {
    let tf_st = tf_safetensors::detect(path).is_some();
    let pytorch = path.is_dir()
        && (path.join("model.safetensors.index.json").is_file()
            || (path.join(tf_safetensors::FILE).is_file() && !tf_st));
    !pytorch && (keras::detect(path).is_some() || tf_st)
}

/// Whether `path` is a bucket URL (`gs://`, `s3://`, `az://`, `http(s)://`): its text if so.
pub fn bucket_url(path: &Path) -> Option<&str> {
    let s = path.to_str()?;
    let (scheme, rest) = s.split_once("://")?;
    (BUCKET_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) && !rest.is_empty())
        .then_some(s)
}

/// The URL schemes of object stores (any case), with or without bucket support in the build
/// (without it they are refused, never taken for local paths).
pub(crate) const BUCKET_SCHEMES: [&str; 9] = [
    "gs", "s3", "s3a", "az", "azure", "abfs", "abfss", "http", "https",
];

/// What a command with a bucket URL as its output uploaded.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Uploaded {
    /// The destination URL.
    pub url: String,
    /// Objects written, in upload order (the files marking a complete upload last).
    pub objects: Vec<String>,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Of the objects, how many went up as multipart uploads.
    pub multipart: usize,
}

/// What a source fetched from a bucket: bytes, requests, the checkpoint's whole size.
#[cfg(feature = "remote")]
pub use remote::FetchTotals;

/// What a source fetched from a bucket (never anything in a build without bucket support).
#[cfg(not(feature = "remote"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchTotals {
    /// Bytes fetched from the store.
    pub bytes_fetched: u64,
    /// Bytes the planned tensors (and the index) occupy.
    pub bytes_needed: u64,
    /// Requests made.
    pub requests: u64,
    /// The checkpoint's whole size.
    pub checkpoint_bytes: u64,
}

/// The directory a prefix's files are in (`.` for a bare prefix).
pub fn directory_of(prefix: &Path) -> PathBuf {
    match prefix.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
