//! The one error type of the zip source.
//!
//! Like the checkpoint module's `CheckpointError`, every message says what went wrong, where
//! (the archive, the entry as `ARCHIVE#ENTRY`, a byte offset) and what to do about it, and lower
//! causes are embedded in the text rather than chained as `source()`.

use std::path::PathBuf;

/// Everything that can go wrong reading a checkpoint from inside a zip archive.
#[derive(Debug, thiserror::Error)]
pub enum ZipSourceError {
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("{path} is not a zip archive: {reason}; pass a .zip file as downloaded, or the directory it unzips to")]
    NotAZip { path: PathBuf, reason: String },

    #[error("{path} is a damaged zip archive (at byte {offset}): {reason}; download it again, or check it with `unzip -t`")]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("{path} is one part of a multi-disk (split or spanned) zip archive; join the parts first (`zip -s 0 PART.zip --out whole.zip`) and pass the joined file, or unzip them and pass the directory")]
    MultiDisk { path: PathBuf },

    #[error("{path} lists {count} entries, more than the {limit} this reader accepts; a checkpoint archive has a handful: unzip it and pass the checkpoint directory")]
    TooManyEntries {
        path: PathBuf,
        count: u64,
        limit: u64,
    },

    #[error("{path}: entry name {name:?} is not a plain relative path ({reason}); the whole archive is refused, since such names are how crafted zips write outside their folder: check where it came from, and unzip it by hand only if you trust it")]
    UnsafeName {
        path: PathBuf,
        name: String,
        reason: &'static str,
    },

    #[error("{path}: two entries are named {name:?}; an archive with duplicate names is ambiguous (tools disagree on which one counts) and is refused: download it again or rebuild it")]
    DuplicateName { path: PathBuf, name: String },

    #[error("{path}#{entry} is encrypted; this tool does not decrypt zip entries: unzip the archive with its password and pass the checkpoint directory")]
    Encrypted { path: PathBuf, entry: String },

    #[error("{path}#{entry} is compressed with {method_name} (zip method {method}); only stored and deflated entries are read in place: unzip the archive and pass the checkpoint directory")]
    UnsupportedMethod {
        path: PathBuf,
        entry: String,
        method: u16,
        method_name: &'static str,
    },

    #[error("{path}#{entry} is a symbolic link, not a file; links inside archives are not followed: unzip the archive and pass the checkpoint directory")]
    Symlink { path: PathBuf, entry: String },

    #[error("{path}#{entry}: the local header says {field} = {local}, the central directory says {central}; an entry whose headers disagree is refused (damaged, or crafted to show different contents to different tools): download the archive again")]
    HeaderMismatch {
        path: PathBuf,
        entry: String,
        field: &'static str,
        local: String,
        central: String,
    },

    #[error("{path}#{entry}: {reason}; the archive is truncated or damaged: download it again")]
    EntryOutOfBounds {
        path: PathBuf,
        entry: String,
        reason: String,
    },

    #[error("{path}: the data of entries {first:?} and {second:?} overlap; overlapping entries are a zip-bomb construction and are refused: download the archive again")]
    Overlap {
        path: PathBuf,
        first: String,
        second: String,
    },

    #[error("{path}#{entry} declares {declared} bytes uncompressed, more than the {limit}-byte limit for {what}; {hint}")]
    TooLarge {
        path: PathBuf,
        entry: String,
        declared: u64,
        limit: u64,
        what: &'static str,
        hint: String,
    },

    #[error("{path}#{entry} declares {declared} bytes inflated from {compressed} compressed bytes, a ratio DEFLATE cannot reach (at most 1032:1); the archive is a zip bomb or damaged, and is refused")]
    ImpossibleRatio {
        path: PathBuf,
        entry: String,
        declared: u64,
        compressed: u64,
    },

    #[error("{path}#{entry} inflates to more than the {declared} bytes its headers declare (stopped at {stopped} bytes); the archive is a zip bomb or damaged, and is refused")]
    InflatesToMore {
        path: PathBuf,
        entry: String,
        declared: u64,
        stopped: u64,
    },

    #[error("{path}#{entry} inflates to {actual} bytes, but its headers declare {declared}; the archive is damaged: download it again")]
    InflatesToLess {
        path: PathBuf,
        entry: String,
        declared: u64,
        actual: u64,
    },

    #[error("{path}#{entry}: the compressed data ends (after {compressed} bytes) before the DEFLATE stream does; the archive is truncated or damaged: download it again")]
    TruncatedDeflate {
        path: PathBuf,
        entry: String,
        compressed: u64,
    },

    #[error("{path}#{entry}: corrupt DEFLATE data after {inflated} inflated bytes ({reason}); the archive is damaged: download it again")]
    CorruptDeflate {
        path: PathBuf,
        entry: String,
        inflated: u64,
        reason: String,
    },

    #[error("{path}#{entry}: CRC-32 mismatch (the archive says {stored:#010x}, the {len} bytes read give {computed:#010x}); the archive is damaged: download it again")]
    Crc {
        path: PathBuf,
        entry: String,
        len: u64,
        stored: u32,
        computed: u32,
    },

    #[error("{path}#{entry} needs {needed} more bytes inflated, but {used} of the {limit}-byte budget for inflating this archive are used; unzip the archive and pass the checkpoint directory, or raise the limit")]
    InflateBudget {
        path: PathBuf,
        entry: String,
        needed: u64,
        used: u64,
        limit: u64,
    },

    #[error("cannot inflate {path}#{entry} ({needed} bytes) into a temporary file in {dir}: {error}; point TMPDIR at a directory with room for it, or unzip the archive and pass the checkpoint directory")]
    TempFile {
        path: PathBuf,
        entry: String,
        dir: PathBuf,
        needed: u64,
        error: String,
    },

    #[error("{path} holds no checkpoint: no `checkpoint` state file and no *.index entry{hint}")]
    NoCheckpoint { path: PathBuf, hint: String },

    #[error("{path} holds several checkpoints ({}) and no single `checkpoint` state file says which one is meant; pick one with {}#FOLDER/PREFIX, e.g. {}#{}", .candidates.join(", "), .path.display(), .path.display(), .candidates.first().map(String::as_str).unwrap_or("PREFIX"))]
    SeveralCheckpoints {
        path: PathBuf,
        candidates: Vec<String>,
    },

    #[error("{path}#{selector}: {reason}{}", if .candidates.is_empty() { String::new() } else { format!("; the archive holds: {}", .candidates.join(", ")) })]
    BadSelector {
        path: PathBuf,
        selector: String,
        reason: String,
        candidates: Vec<String>,
    },

    #[error("no checkpoint at {path}#{prefix}: {prefix}.index is not in the archive{hint}")]
    NoIndex {
        path: PathBuf,
        prefix: String,
        hint: String,
    },

    #[error("state file {path}#{state_file} line {line}: {reason}; pass the checkpoint with {}#FOLDER/PREFIX instead", .path.display())]
    StateFileSyntax {
        path: PathBuf,
        state_file: String,
        line: usize,
        reason: String,
    },

    #[error("state file {path}#{state_file} has no model_checkpoint_path; pass the checkpoint with {}#FOLDER/PREFIX instead", .path.display())]
    StateFileEmpty { path: PathBuf, state_file: String },

    #[error("state file {path}#{state_file} names checkpoint {named:?}, {problem}{hint}")]
    StateFileMissingPrefix {
        path: PathBuf,
        state_file: String,
        named: String,
        /// `but PREFIX.index is not in the archive`, or why the name leads nowhere.
        problem: String,
        hint: String,
    },

    #[error("data shard {path}#{entry} is missing from the archive (the index says the checkpoint has {num_shards} shard(s)); the archive is incomplete: download it again")]
    ShardMissing {
        path: PathBuf,
        entry: String,
        num_shards: u32,
    },

    #[error("shard {shard} of {num_shards} requested from {path}#{prefix}: {reason}")]
    BadShardRequest {
        path: PathBuf,
        prefix: String,
        shard: u32,
        num_shards: u32,
        reason: &'static str,
    },
}
