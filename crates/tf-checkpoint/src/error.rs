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
    #[error("{path}: no such file or directory; pass a checkpoint prefix (e.g. model.ckpt-1000), its .index file, or the directory holding it")]
    NotFound { path: PathBuf },

    #[error("no checkpoint at prefix {prefix}: {prefix}.index does not exist{hint}")]
    NoIndex { prefix: PathBuf, hint: String },

    #[error(
        "directory {dir} holds no checkpoint: no `checkpoint` state file and no *.index file{hint}"
    )]
    NoCheckpointInDir { dir: PathBuf, hint: String },

    #[error("directory {dir} holds several checkpoints ({}) and no `checkpoint` state file says which is current; pass one prefix explicitly", .candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "))]
    SeveralCheckpoints {
        dir: PathBuf,
        candidates: Vec<PathBuf>,
    },

    #[error("state file {state_file} line {line}: {reason}; fix the file or pass the checkpoint prefix directly")]
    StateFileSyntax {
        state_file: PathBuf,
        line: usize,
        reason: String,
    },

    #[error(
        "state file {state_file} has no model_checkpoint_path; pass the checkpoint prefix directly"
    )]
    StateFileEmpty { state_file: PathBuf },

    #[error("state file {state_file} names checkpoint {prefix}, but {prefix}.index does not exist (deleted or moved?){hint}")]
    StateFileMissingPrefix {
        state_file: PathBuf,
        prefix: PathBuf,
        hint: String,
    },

    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{path} is not a valid checkpoint index: {error}; the file is damaged or not a TF V2 checkpoint, re-copy or re-save it")]
    Index { path: PathBuf, error: TableError },

    #[error("{path}: the index has no header entry (its first key is not empty); not a TF V2 checkpoint index")]
    MissingHeader { path: PathBuf },

    #[error("{path}: cannot parse the entry for {key:?}: {error}; the index is damaged")]
    BadProto {
        path: PathBuf,
        key: String,
        error: ProtoError,
    },

    #[error("{path}: unusable header: {reason}")]
    BadHeader { path: PathBuf, reason: String },

    #[error("{path}: entry for tensor {tensor:?} is invalid: {reason}; the index is damaged")]
    BadEntry {
        path: PathBuf,
        tensor: String,
        reason: String,
    },

    #[error("data shard {path} is missing (tensor {tensor:?} and possibly others live in it); copy every {prefix}.data-* file next to the index")]
    ShardMissing {
        path: PathBuf,
        prefix: PathBuf,
        tensor: String,
    },

    #[error("data shard {path} is {len} bytes but tensor {tensor:?} ends at byte {needed}; the file is truncated (incomplete copy or download?), re-copy it")]
    ShardTooShort {
        path: PathBuf,
        len: u64,
        needed: u64,
        tensor: String,
    },

    #[error("tensor {tensor:?}: checksum mismatch in {path} at bytes {offset}..{end} (stored crc32c {stored:#010x}, computed {computed:#010x}); the data file is corrupt, re-copy it", end = .offset + .size)]
    TensorChecksum {
        tensor: String,
        path: PathBuf,
        offset: u64,
        size: u64,
        stored: u32,
        computed: u32,
    },

    #[error("tensor {tensor:?}: string data in {path} at byte {offset} is malformed: {reason}; the data file is corrupt")]
    BadStringData {
        tensor: String,
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("no tensor named {name:?} in checkpoint {prefix}{hint}; run `electra-convert inspect --all` to list its tensors")]
    TensorNotFound {
        name: String,
        prefix: PathBuf,
        hint: String,
    },

    #[error("tensor {tensor:?} has dtype {dtype}, which this reader lists but cannot decode")]
    UnsupportedDtype { tensor: String, dtype: String },

    #[error("tensor {tensor:?} has dtype {dtype}, but {wanted} was requested; use the reader for its dtype")]
    WrongDtype {
        tensor: String,
        dtype: String,
        wanted: &'static str,
    },

    #[error("tensor {tensor:?} has shape {shape:?} ({elements} elements), but a single value was requested")]
    NotScalar {
        tensor: String,
        shape: Vec<u64>,
        elements: u64,
    },

    #[error("partitioned tensor {tensor:?}: {reason}; the checkpoint is damaged or was written by an unusual saver")]
    BadSlices { tensor: String, reason: String },

    #[error("checkpoint {path}: its object graph (`_CHECKPOINTABLE_OBJECT_GRAPH`) is unusable: {reason}; the checkpoint is damaged or was not written by tf.train.Checkpoint, re-copy or re-save it")]
    BadObjectGraph { path: PathBuf, reason: String },
}
