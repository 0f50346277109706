//! Batch conversion driven by a TOML/JSON manifest: the library half of `electra-convert batch`.
//!
//! [`manifest`] reads and validates a manifest into fully resolved [`Job`]s (each one a
//! [`crate::ConvertOptions`]); [`runner`] picks the jobs of one CI shard and runs them on a small
//! pool of worker threads, each through [`crate::convert()`] ([`run_job`]); [`report`] renders
//! the JSON and JUnit reports. The command layer only adds progress bars, printing and the exit
//! code.

pub mod manifest;
pub mod report;
pub mod runner;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use manifest::{
    describe_options, load_manifest, parse_manifest, Job, Manifest, ManifestFormat,
};
pub use report::{junit_xml, report_json, write_atomically, xml_escape, RunInfo};
pub use runner::{
    default_workers, run_job, run_jobs, Converted, JobRecord, JobStatus, Shard, Tally,
    VerifySummary,
};

/// Everything that can go wrong while reading a manifest, choosing a shard or writing a report.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The manifest file could not be read.
    #[error("cannot read manifest {path}: {error}")]
    ReadManifest {
        /// The manifest.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },

    /// The manifest does not parse as its format.
    #[error("manifest {path} is not valid {format}: {message}")]
    Syntax {
        /// The manifest.
        path: PathBuf,
        /// `TOML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },

    /// A manifest without a known extension parses as neither format.
    #[error(
        "manifest {path} has no .toml or .json extension and parses as neither \
         (as TOML: {toml}; as JSON: {json}); rename it to .toml or .json to get a single, precise error"
    )]
    UnknownFormat {
        /// The manifest.
        path: PathBuf,
        /// The TOML parser's message.
        toml: String,
        /// The JSON parser's message.
        json: String,
    },

    /// The manifest parses but is not shaped like one (say, `jobs` is not a list).
    #[error("manifest {path}: {message}")]
    Structure {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A job or `[defaults]` has a key that does not exist.
    #[error("manifest {path}: unknown key `{key}` in {location}{hint}; valid keys are: {valid}")]
    UnknownKey {
        /// The manifest.
        path: PathBuf,
        /// Where the key is (`jobs[2]`, `[defaults]`).
        location: String,
        /// The unknown key.
        key: String,
        /// A suggestion (`; did you mean ...`), or empty.
        hint: String,
        /// The keys allowed there.
        valid: String,
    },

    /// A job lacks a required key, even after defaults.
    #[error("manifest {path}: {job} has no `{key}` (required: checkpoint, model, output; give it in the job or in [defaults])")]
    MissingKey {
        /// The manifest.
        path: PathBuf,
        /// The job's label.
        job: String,
        /// The missing key.
        key: &'static str,
    },

    /// A key has a value of the wrong type or an unknown choice.
    #[error("manifest {path}: {job}: bad value for `{key}`: {message}")]
    BadValue {
        /// The manifest.
        path: PathBuf,
        /// The job's label.
        job: String,
        /// The key.
        key: String,
        /// What is wrong with the value.
        message: String,
    },

    /// Two jobs write to the same directory.
    #[error("manifest {path}: {first} and {second} both write to {output}; give every job its own output directory")]
    DuplicateOutput {
        /// The manifest.
        path: PathBuf,
        /// The first job's label.
        first: String,
        /// The second job's label.
        second: String,
        /// The shared output directory.
        output: PathBuf,
    },

    /// One job's output lies inside another's.
    #[error("manifest {path}: {inner} writes to {inner_output}, inside the output of {outer} ({outer_output}); outputs must not nest, or one job would clobber the other")]
    NestedOutput {
        /// The manifest.
        path: PathBuf,
        /// The job with the enclosing output.
        outer: String,
        /// Its output directory.
        outer_output: PathBuf,
        /// The job with the nested output.
        inner: String,
        /// Its output directory.
        inner_output: PathBuf,
    },

    /// A job's output directory holds an input of some job.
    #[error("manifest {path}: {writer} writes to {output}, which holds {input}, an input of {reader}; replacing that directory would destroy it. Give {writer} an output directory that holds no job's inputs")]
    OutputHoldsInput {
        /// The manifest.
        path: PathBuf,
        /// The job whose output would be replaced.
        writer: String,
        /// Its output directory.
        output: PathBuf,
        /// The job that reads the input.
        reader: String,
        /// The input inside that directory.
        input: PathBuf,
    },

    /// Two jobs have the same name.
    #[error("manifest {path}: {first} and {second} are both named {name:?}; job names must be unique so reports can tell them apart")]
    DuplicateName {
        /// The manifest.
        path: PathBuf,
        /// The first job's label.
        first: String,
        /// The second job's label.
        second: String,
        /// The shared name.
        name: String,
    },

    /// The manifest has no jobs.
    #[error("manifest {path} lists no jobs; add at least one [[jobs]] table (TOML) or an entry in \"jobs\" (JSON)")]
    NoJobs {
        /// The manifest.
        path: PathBuf,
    },

    /// `--shard` is not `I/N` with 1 <= I <= N.
    #[error(
        "invalid --shard {spec:?}: {reason} (expected I/N with 1 <= I <= N, e.g. --shard 2/3)"
    )]
    BadShard {
        /// The value given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A report file could not be written.
    #[error("cannot write report {path}: {error}")]
    WriteReport {
        /// The report path.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}
