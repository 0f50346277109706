//! The one error type of the zip source.
//!
//! Like the checkpoint module's `CheckpointError`, every message says what went wrong, where
//! (the archive, the entry as `ARCHIVE#ENTRY`, a byte offset) and what to do about it, and lower
//! causes are embedded in the text rather than chained as `source()`.

use std::path::PathBuf;

/// Everything that can go wrong reading a checkpoint from inside a zip archive.
#[derive(Debug, thiserror::Error)]
pub enum ZipSourceError {
    /// The archive could not be read from disk.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The zip archive.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },

    /// The file is not a zip archive at all.
    #[error("{path} is not a zip archive: {reason}; pass a .zip file as downloaded, or the directory it unzips to")]
    NotAZip {
        /// The file that was passed.
        path: PathBuf,
        /// Why it is not a zip archive.
        reason: String,
    },

    /// The archive's structure is broken at a known byte offset.
    #[error("{path} is a damaged zip archive (at byte {offset}): {reason}; download it again, or check it with `unzip -t`")]
    Damaged {
        /// The zip archive.
        path: PathBuf,
        /// Byte offset in the archive where the damage was found.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },

    /// The file is one part of a split or spanned archive.
    #[error("{path} is one part of a multi-disk (split or spanned) zip archive; join the parts first (`zip -s 0 PART.zip --out whole.zip`) and pass the joined file, or unzip them and pass the directory")]
    MultiDisk {
        /// The file that was passed.
        path: PathBuf,
    },

    /// The central directory lists more entries than the limit allows.
    #[error("{path} lists {count} entries, more than the {limit} this reader accepts; a checkpoint archive has a handful: unzip it and pass the checkpoint directory")]
    TooManyEntries {
        /// The zip archive.
        path: PathBuf,
        /// Entries the central directory declares.
        count: u64,
        /// Most entries this reader accepts.
        limit: u64,
    },

    /// An entry name is absolute, leaves its folder or is otherwise not a plain relative path.
    #[error("{path}: entry name {name:?} is not a plain relative path ({reason}); the whole archive is refused, since such names are how crafted zips write outside their folder: check where it came from, and unzip it by hand only if you trust it")]
    UnsafeName {
        /// The zip archive.
        path: PathBuf,
        /// The offending entry name.
        name: String,
        /// What makes the name unsafe.
        reason: &'static str,
    },

    /// Two entries share one name.
    #[error("{path}: two entries are named {name:?}; an archive with duplicate names is ambiguous (tools disagree on which one counts) and is refused: download it again or rebuild it")]
    DuplicateName {
        /// The zip archive.
        path: PathBuf,
        /// The name that occurs more than once.
        name: String,
    },

    /// An entry is encrypted.
    #[error("{path}#{entry} is encrypted; this tool does not decrypt zip entries: unzip the archive with its password and pass the checkpoint directory")]
    Encrypted {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
    },

    /// An entry uses a compression method other than stored or deflated.
    #[error("{path}#{entry} is compressed with {method_name} (zip method {method}); only stored and deflated entries are read in place: unzip the archive and pass the checkpoint directory")]
    UnsupportedMethod {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// The zip compression method number.
        method: u16,
        /// The method's usual name.
        method_name: &'static str,
    },

    /// An entry is a symbolic link.
    #[error("{path}#{entry} is a symbolic link, not a file; links inside archives are not followed: unzip the archive and pass the checkpoint directory")]
    Symlink {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
    },

    /// An entry's local header disagrees with its central-directory record.
    #[error("{path}#{entry}: the local header says {field} = {local}, the central directory says {central}; an entry whose headers disagree is refused (damaged, or crafted to show different contents to different tools): download the archive again")]
    HeaderMismatch {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// The header field the two records disagree on.
        field: &'static str,
        /// The field's value in the local header.
        local: String,
        /// The field's value in the central directory.
        central: String,
    },

    /// An entry's header or data lies outside where it can be.
    #[error("{path}#{entry}: {reason}; the archive is truncated or damaged: download it again")]
    EntryOutOfBounds {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Where the entry lies and what it runs past.
        reason: String,
    },

    /// The data of two entries overlap.
    #[error("{path}: the data of entries {first:?} and {second:?} overlap; overlapping entries are a zip-bomb construction and are refused: download the archive again")]
    Overlap {
        /// The zip archive.
        path: PathBuf,
        /// Name of one of the overlapping entries.
        first: String,
        /// Name of the other overlapping entry.
        second: String,
    },

    /// An entry declares more uncompressed bytes than the limit for its kind.
    #[error("{path}#{entry} declares {declared} bytes uncompressed, more than the {limit}-byte limit for {what}; {hint}")]
    TooLarge {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Uncompressed bytes the headers declare.
        declared: u64,
        /// The byte limit for this kind of entry.
        limit: u64,
        /// What kind of entry the limit is for.
        what: &'static str,
        /// What to do about it.
        hint: String,
    },

    /// An entry's declared sizes imply a ratio DEFLATE cannot reach.
    #[error("{path}#{entry} declares {declared} bytes inflated from {compressed} compressed bytes, a ratio DEFLATE cannot reach (at most 1032:1); the archive is a zip bomb or damaged, and is refused")]
    ImpossibleRatio {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Uncompressed bytes the headers declare.
        declared: u64,
        /// Compressed bytes the headers declare.
        compressed: u64,
    },

    /// An entry inflates to more bytes than its headers declare.
    #[error("{path}#{entry} inflates to more than the {declared} bytes its headers declare (stopped at {stopped} bytes); the archive is a zip bomb or damaged, and is refused")]
    InflatesToMore {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Bytes the headers declare.
        declared: u64,
        /// Inflated bytes at which reading stopped.
        stopped: u64,
    },

    /// An entry inflates to fewer bytes than its headers declare.
    #[error("{path}#{entry} inflates to {actual} bytes, but its headers declare {declared}; the archive is damaged: download it again")]
    InflatesToLess {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Bytes the headers declare.
        declared: u64,
        /// Bytes the entry actually inflated to.
        actual: u64,
    },

    /// An entry's compressed data ends before its DEFLATE stream does.
    #[error("{path}#{entry}: the compressed data ends (after {compressed} bytes) before the DEFLATE stream does; the archive is truncated or damaged: download it again")]
    TruncatedDeflate {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Compressed bytes read before the data ran out.
        compressed: u64,
    },

    /// An entry's DEFLATE data is corrupt.
    #[error("{path}#{entry}: corrupt DEFLATE data after {inflated} inflated bytes ({reason}); the archive is damaged: download it again")]
    CorruptDeflate {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Bytes inflated before the corrupt data was reached.
        inflated: u64,
        /// The decoder's description of the problem.
        reason: String,
    },

    /// An entry's stored CRC-32 does not match the bytes read.
    #[error("{path}#{entry}: CRC-32 mismatch (the archive says {stored:#010x}, the {len} bytes read give {computed:#010x}); the archive is damaged: download it again")]
    Crc {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Bytes read and checksummed.
        len: u64,
        /// The CRC-32 the archive records.
        stored: u32,
        /// The CRC-32 of the bytes read.
        computed: u32,
    },

    /// Inflating an entry would go over the inflate budget for the whole archive.
    #[error("{path}#{entry} needs {needed} more bytes inflated, but {used} of the {limit}-byte budget for inflating this archive are used; unzip the archive and pass the checkpoint directory, or raise the limit")]
    InflateBudget {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// Bytes this entry would inflate to.
        needed: u64,
        /// Bytes of the budget already used.
        used: u64,
        /// The archive's whole inflate budget, in bytes.
        limit: u64,
    },

    /// An entry could not be inflated into a temporary file.
    #[error("cannot inflate {path}#{entry} ({needed} bytes) into a temporary file in {dir}: {error}; point TMPDIR at a directory with room for it, or unzip the archive and pass the checkpoint directory")]
    TempFile {
        /// The zip archive.
        path: PathBuf,
        /// The entry's name inside the archive.
        entry: String,
        /// The directory the temporary file was to go in.
        dir: PathBuf,
        /// Bytes the inflated entry needs (0 when not yet known).
        needed: u64,
        /// The underlying error, as text.
        error: String,
    },

    /// The archive holds no checkpoint.
    #[error("{path} holds no checkpoint: no `checkpoint` state file and no *.index entry{hint}")]
    NoCheckpoint {
        /// The zip archive.
        path: PathBuf,
        /// Advice appended to the message (empty, or starting with `; `).
        hint: String,
    },

    /// The archive holds several checkpoints and nothing says which one is meant.
    #[error("{path} holds several checkpoints ({}) and no single `checkpoint` state file says which one is meant; pick one with {}#FOLDER/PREFIX, e.g. {}#{}", .candidates.join(", "), .path.display(), .path.display(), .candidates.first().map(String::as_str).unwrap_or("PREFIX"))]
    SeveralCheckpoints {
        /// The zip archive.
        path: PathBuf,
        /// The checkpoints found in the archive.
        candidates: Vec<String>,
    },

    /// The `#FOLDER/PREFIX` selector after the archive path does not name a checkpoint.
    #[error("{path}#{selector}: {reason}{}", if .candidates.is_empty() { String::new() } else { format!("; the archive holds: {}", .candidates.join(", ")) })]
    BadSelector {
        /// The zip archive.
        path: PathBuf,
        /// The selector as given.
        selector: String,
        /// Why it does not name a checkpoint.
        reason: String,
        /// The checkpoints the archive does hold (may be empty).
        candidates: Vec<String>,
    },

    /// The selected checkpoint's `PREFIX.index` is not in the archive.
    #[error("no checkpoint at {path}#{prefix}: {prefix}.index is not in the archive{hint}")]
    NoIndex {
        /// The zip archive.
        path: PathBuf,
        /// The checkpoint prefix that was looked for.
        prefix: String,
        /// Advice appended to the message (may be empty).
        hint: String,
    },

    /// A `checkpoint` state file has a line that cannot be parsed.
    #[error("state file {path}#{state_file} line {line}: {reason}; pass the checkpoint with {}#FOLDER/PREFIX instead", .path.display())]
    StateFileSyntax {
        /// The zip archive.
        path: PathBuf,
        /// The state file's entry name inside the archive.
        state_file: String,
        /// The number of the offending line.
        line: usize,
        /// What is wrong with that line.
        reason: String,
    },

    /// A `checkpoint` state file has no `model_checkpoint_path`.
    #[error("state file {path}#{state_file} has no model_checkpoint_path; pass the checkpoint with {}#FOLDER/PREFIX instead", .path.display())]
    StateFileEmpty {
        /// The zip archive.
        path: PathBuf,
        /// The state file's entry name inside the archive.
        state_file: String,
    },

    /// A `checkpoint` state file names a checkpoint that cannot be found.
    #[error("state file {path}#{state_file} names checkpoint {named:?}, {problem}{hint}")]
    StateFileMissingPrefix {
        /// The zip archive.
        path: PathBuf,
        /// The state file's entry name inside the archive.
        state_file: String,
        /// The checkpoint path the state file names.
        named: String,
        /// `but PREFIX.index is not in the archive`, or why the name leads nowhere.
        problem: String,
        /// Advice appended to the message (may be empty).
        hint: String,
    },

    /// A data shard the index calls for is not in the archive.
    #[error("data shard {path}#{entry} is missing from the archive (the index says the checkpoint has {num_shards} shard(s)); the archive is incomplete: download it again")]
    ShardMissing {
        /// The zip archive.
        path: PathBuf,
        /// The missing shard's entry name.
        entry: String,
        /// How many shards the index says the checkpoint has.
        num_shards: u32,
    },

    /// A shard was requested that the checkpoint cannot provide.
    #[error("shard {shard} of {num_shards} requested from {path}#{prefix}: {reason}")]
    BadShardRequest {
        /// The zip archive.
        path: PathBuf,
        /// The checkpoint's prefix inside the archive.
        prefix: String,
        /// The shard number requested.
        shard: u32,
        /// How many shards the checkpoint has.
        num_shards: u32,
        /// Why the request is refused.
        reason: &'static str,
    },
}
