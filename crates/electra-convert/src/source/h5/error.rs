//! Typed errors: every refusal names what was found and the byte offset where it was found.

use std::fmt;

/// An HDF5 feature outside the subset this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Superblock version other than 0 or 1 (2/3 come with `libver='latest'`).
    SuperblockVersion,
    /// "Size of offsets" / "size of lengths" other than 4 or 8.
    AddressSize,
    /// Base address that is not the superblock's own position.
    BaseAddress,
    /// A driver information block (family / multi / split drivers).
    DriverInfo,
    /// Object header other than version 1 (e.g. version 2, signature `OHDR`).
    ObjectHeaderVersion,
    /// Group stored with link messages / link info (new-style, `track_order=True`, `libver='latest'`).
    NewStyleGroup,
    /// A shared or committed message (e.g. a named datatype used by a dataset or attribute).
    SharedMessage,
    /// Attributes kept in dense storage (fractal heap).
    DenseAttributes,
    /// Chunked dataset layout.
    ChunkedLayout,
    /// Virtual dataset layout.
    VirtualLayout,
    /// Data layout message version 1 or 2 (files from HDF5 < 1.6).
    LayoutVersion,
    /// Filter pipeline present (compression, shuffle, checksum ...).
    FilterPipeline,
    /// Raw data kept in an external file.
    ExternalStorage,
    /// Big-endian dataset.
    BigEndian,
    /// Datatype class or encoding outside the subset (compound, enum/bool, non-IEEE float, ...).
    Datatype,
    /// Dataspace outside the subset (null dataspace on a dataset, permutation, unknown version).
    Dataspace,
    /// Contiguous dataset whose storage was never allocated (never written; h5py would return fill values).
    Unallocated,
    /// A soft link (not followed).
    SoftLink,
    /// A message or structure version this reader does not know.
    Version,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Errors returned by the reader. None of them is ever a panic.
#[derive(Debug, thiserror::Error)]
pub enum H5Error {
    /// Reading the underlying file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// No HDF5 signature at offset 0, 512, 1024, 2048, ...
    #[error("not an HDF5 file: no superblock signature found ({file_len} bytes)")]
    NotHdf5 {
        /// File length in bytes.
        file_len: u64,
    },
    /// The file uses a feature outside the supported subset.
    #[error("unsupported {feature} at byte offset {offset}: {found}")]
    Unsupported {
        /// Which feature.
        feature: Feature,
        /// Absolute byte offset of the structure that uses it.
        offset: u64,
        /// What was found.
        found: String,
    },
    /// A structure does not follow the format.
    #[error("malformed {what} at byte offset {offset}: {detail}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// Absolute byte offset of the structure.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// A structure claims bytes beyond the end of the file.
    #[error("{what} at byte offset {offset} needs {len} bytes but the file has {file_len}")]
    OutOfBounds {
        /// Which structure.
        what: &'static str,
        /// Absolute byte offset of the structure.
        offset: u64,
        /// Bytes claimed.
        len: u64,
        /// File length.
        file_len: u64,
    },
    /// A structure is reached twice where a tree or list is expected (cycle or shared node).
    #[error("cycle: {what} at byte offset {offset} reached twice")]
    Cycle {
        /// Which structure.
        what: &'static str,
        /// Absolute byte offset reached twice.
        offset: u64,
    },
    /// A size or count above this reader's limits (see the `MAX_*` constants).
    #[error("limit exceeded in {what} at byte offset {offset}: {detail}")]
    Limit {
        /// Which structure.
        what: &'static str,
        /// Absolute byte offset of the structure.
        offset: u64,
        /// Claimed size and limit.
        detail: String,
    },
    /// No object or attribute with that name.
    #[error("not found: {path}")]
    NotFound {
        /// Path or attribute name looked up.
        path: String,
    },
    /// The object exists but is of another kind.
    #[error("{path} is a {found}, expected a {expected}")]
    WrongKind {
        /// Path of the object.
        path: String,
        /// Kind asked for.
        expected: &'static str,
        /// Kind found.
        found: &'static str,
    },
    /// The file is valid HDF5 but does not follow the Keras / transformers weight layout.
    #[error("not a Keras weights file: {detail}")]
    NotKeras {
        /// What is missing or unexpected.
        detail: String,
    },
    /// An error while reading the named object or attribute.
    /// (The inner error is part of this message, not a separate `source()`, so a chain of
    /// messages does not repeat it.)
    #[error("{path}: {inner}")]
    Context {
        /// Object path (and attribute name, as `path@attr`).
        path: String,
        /// Underlying error.
        inner: Box<Error>,
    },
}

/// The reader's error under its short name inside the module.
pub type Error = H5Error;

impl H5Error {
    /// The unsupported feature behind this error, looking through [`Error::Context`].
    pub fn feature(&self) -> Option<Feature> {
        match self {
            Error::Unsupported { feature, .. } => Some(*feature),
            Error::Context { inner, .. } => inner.feature(),
            _ => None,
        }
    }

    /// The innermost error, looking through [`Error::Context`].
    pub fn root_cause(&self) -> &Error {
        match self {
            Error::Context { inner, .. } => inner.root_cause(),
            e => e,
        }
    }

    pub(crate) fn context(self, path: impl Into<String>) -> Error {
        Error::Context {
            path: path.into(),
            inner: Box::new(self),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn malformed(what: &'static str, offset: u64, detail: impl Into<String>) -> Error {
    Error::Malformed {
        what,
        offset,
        detail: detail.into(),
    }
}

pub(crate) fn unsupported(feature: Feature, offset: u64, found: impl Into<String>) -> Error {
    Error::Unsupported {
        feature,
        offset,
        found: found.into(),
    }
}

pub(crate) fn limit(what: &'static str, offset: u64, detail: impl Into<String>) -> Error {
    Error::Limit {
        what,
        offset,
        detail: detail.into(),
    }
}
