//! The one error type of the checkpoint module.

use std::path::PathBuf;

use super::proto::ProtoError;
use super::sstable::TableError;

/// Everything that can go wrong opening or reading a checkpoint. Each message says what went
/// wrong, where (file, byte offset, tensor) and what to do about it. Messages are complete on
/// their own: lower-level causes are embedded in the text (fields named `error`), not chained as
/// `source()`, so `{:#}` printing does not repeat them.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The path given does not exist.
    #[error("{path}: no such file or directory; pass a checkpoint prefix (e.g. model.ckpt-1000), its .index file, or the directory holding it")]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },

    /// A prefix was given but `PREFIX.index` does not exist.
    #[error("no checkpoint at prefix {prefix}: {prefix}.index does not exist{hint}")]
    NoIndex {
        /// The prefix as resolved.
        prefix: PathBuf,
        /// Appended to the message: why a file given is not a prefix; may be empty.
        hint: String,
    },

    /// A directory was given that holds neither a state file nor an `.index` file.
    #[error(
        "directory {dir} holds no checkpoint: no `checkpoint` state file and no *.index file{hint}"
    )]
    NoCheckpointInDir {
        /// The directory given.
        dir: PathBuf,
        /// Appended to the message: what to pass instead (say, when the directory is a converted model).
        hint: String,
    },

    /// A directory holds several `.index` files and no state file picks one.
    #[error("directory {dir} holds several checkpoints ({}) and no `checkpoint` state file says which is current; pass one prefix explicitly", .candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "))]
    SeveralCheckpoints {
        /// The directory given.
        dir: PathBuf,
        /// The prefixes found there.
        candidates: Vec<PathBuf>,
    },

    /// The `checkpoint` state file cannot be parsed.
    #[error("state file {state_file} line {line}: {reason}; fix the file or pass the checkpoint prefix directly")]
    StateFileSyntax {
        /// The state file.
        state_file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },

    /// The state file names no current checkpoint.
    #[error(
        "state file {state_file} has no model_checkpoint_path; pass the checkpoint prefix directly"
    )]
    StateFileEmpty {
        /// The state file.
        state_file: PathBuf,
    },

    /// The state file names a checkpoint whose index is gone.
    #[error("state file {state_file} names checkpoint {prefix}, but {prefix}.index does not exist (deleted or moved?){hint}")]
    StateFileMissingPrefix {
        /// The state file.
        state_file: PathBuf,
        /// The prefix it names.
        prefix: PathBuf,
        /// Appended to the message: a same-named checkpoint in the directory, or what to pass instead.
        hint: String,
    },

    /// A file could not be opened or read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },

    /// The `.index` file is not a valid table.
    #[error("{path} is not a valid checkpoint index: {error}; the file is damaged or not a TF V2 checkpoint, re-copy or re-save it")]
    Index {
        /// The `.index` file.
        path: PathBuf,
        /// What is wrong with the table.
        error: TableError,
    },

    /// The index does not start with the bundle header entry.
    #[error("{path}: the index has no header entry (its first key is not empty); not a TF V2 checkpoint index")]
    MissingHeader {
        /// The `.index` file.
        path: PathBuf,
    },

    /// An index entry is not a valid `BundleEntryProto`.
    #[error("{path}: cannot parse the entry for {key:?}: {error}; the index is damaged")]
    BadProto {
        /// The `.index` file.
        path: PathBuf,
        /// The entry's key (shown lossily).
        key: String,
        /// The decoding failure.
        error: ProtoError,
    },

    /// The bundle header is unusable (version, endianness, shard count).
    #[error("{path}: unusable header: {reason}")]
    BadHeader {
        /// The `.index` file.
        path: PathBuf,
        /// What is wrong with the header.
        reason: String,
    },

    /// An entry is inconsistent (dtype, shape, size, shard or offset).
    #[error("{path}: entry for tensor {tensor:?} is invalid: {reason}; the index is damaged")]
    BadEntry {
        /// The `.index` file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What is wrong with the entry.
        reason: String,
    },

    /// A data shard named by the index does not exist.
    #[error("data shard {path} is missing (tensor {tensor:?} and possibly others live in it); copy every {prefix}.data-* file next to the index")]
    ShardMissing {
        /// The missing `.data-*` file.
        path: PathBuf,
        /// The checkpoint prefix.
        prefix: PathBuf,
        /// One tensor stored in that shard.
        tensor: String,
    },

    /// A data shard ends before a tensor stored in it.
    #[error("data shard {path} is {len} bytes but tensor {tensor:?} ends at byte {needed}; the file is truncated (incomplete copy or download?), re-copy it")]
    ShardTooShort {
        /// The shard file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The end offset of the tensor that does not fit.
        needed: u64,
        /// That tensor's name.
        tensor: String,
    },

    /// A tensor's bytes do not match its stored CRC32C.
    #[error("tensor {tensor:?}: checksum mismatch in {path} at bytes {offset}..{end} (stored crc32c {stored:#010x}, computed {computed:#010x}); the data file is corrupt, re-copy it", end = .offset + .size)]
    TensorChecksum {
        /// The tensor's name.
        tensor: String,
        /// The shard file.
        path: PathBuf,
        /// Byte offset of the tensor in the shard.
        offset: u64,
        /// Byte length of the tensor.
        size: u64,
        /// The CRC32C recorded in the index (unmasked).
        stored: u32,
        /// The CRC32C of the bytes read.
        computed: u32,
    },

    /// A string tensor's lengths or length checksum are malformed.
    #[error("tensor {tensor:?}: string data in {path} at byte {offset} is malformed: {reason}; the data file is corrupt")]
    BadStringData {
        /// The tensor's name.
        tensor: String,
        /// The shard file.
        path: PathBuf,
        /// Byte offset of the tensor in the shard.
        offset: u64,
        /// What is malformed.
        reason: String,
    },

    /// No tensor has the requested name.
    #[error("no tensor named {name:?} in checkpoint {prefix}{hint}; run `electra-convert inspect --all` to list its tensors")]
    TensorNotFound {
        /// The name requested.
        name: String,
        /// The checkpoint prefix.
        prefix: PathBuf,
        /// Appended to the message: a name differing only in case, if any; may be empty.
        hint: String,
    },

    /// The tensor is listed but its dtype cannot be decoded.
    #[error("tensor {tensor:?} has dtype {dtype}, which this reader lists but cannot decode")]
    UnsupportedDtype {
        /// The tensor's name.
        tensor: String,
        /// The dtype's TF name.
        dtype: String,
    },

    /// A typed read asked for a dtype other than the stored one.
    #[error("tensor {tensor:?} has dtype {dtype}, but {wanted} was requested; use the reader for its dtype")]
    WrongDtype {
        /// The tensor's name.
        tensor: String,
        /// The stored dtype's TF name.
        dtype: String,
        /// The dtype the read expects.
        wanted: &'static str,
    },

    /// A single value was requested from a tensor with more than one element.
    #[error("tensor {tensor:?} has shape {shape:?} ({elements} elements), but a single value was requested")]
    NotScalar {
        /// The tensor's name.
        tensor: String,
        /// Its shape.
        shape: Vec<u64>,
        /// Its number of elements.
        elements: u64,
    },

    /// A partitioned variable's slices are inconsistent.
    #[error("partitioned tensor {tensor:?}: {reason}; the checkpoint is damaged or was written by an unusual saver")]
    BadSlices {
        /// The variable's name.
        tensor: String,
        /// What is inconsistent.
        reason: String,
    },

    /// The TF2 object graph entry cannot be decoded.
    #[error("checkpoint {path}: its object graph (`_CHECKPOINTABLE_OBJECT_GRAPH`) is unusable: {reason}; the checkpoint is damaged or was not written by tf.train.Checkpoint, re-copy or re-save it")]
    BadObjectGraph {
        /// The `.index` file.
        path: PathBuf,
        /// Why the graph cannot be decoded.
        reason: String,
    },
}
