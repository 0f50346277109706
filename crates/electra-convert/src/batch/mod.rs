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
    #[error("cannot read manifest {path}: {error}")]
    ReadManifest {
        path: PathBuf,
        error: std::io::Error,
    },

    #[error("manifest {path} is not valid {format}: {message}")]
    Syntax {
        path: PathBuf,
        format: &'static str,
        message: String,
    },

    #[error(
        "manifest {path} has no .toml or .json extension and parses as neither \
         (as TOML: {toml}; as JSON: {json}); rename it to .toml or .json to get a single, precise error"
    )]
    UnknownFormat {
        path: PathBuf,
        toml: String,
        json: String,
    },

    #[error("manifest {path}: {message}")]
    Structure { path: PathBuf, message: String },

    #[error("manifest {path}: unknown key `{key}` in {location}{hint}; valid keys are: {valid}")]
    UnknownKey {
        path: PathBuf,
        location: String,
        key: String,
        hint: String,
        valid: String,
    },

    #[error("manifest {path}: {job} has no `{key}` (required: checkpoint, model, output; give it in the job or in [defaults])")]
    MissingKey {
        path: PathBuf,
        job: String,
        key: &'static str,
    },

    #[error("manifest {path}: {job}: bad value for `{key}`: {message}")]
    BadValue {
        path: PathBuf,
        job: String,
        key: String,
        message: String,
    },

    #[error("manifest {path}: {first} and {second} both write to {output}; give every job its own output directory")]
    DuplicateOutput {
        path: PathBuf,
        first: String,
        second: String,
        output: PathBuf,
    },

    #[error("manifest {path}: {inner} writes to {inner_output}, inside the output of {outer} ({outer_output}); outputs must not nest, or one job would clobber the other")]
    NestedOutput {
        path: PathBuf,
        outer: String,
        outer_output: PathBuf,
        inner: String,
        inner_output: PathBuf,
    },

    #[error("manifest {path}: {writer} writes to {output}, which holds {input}, an input of {reader}; replacing that directory would destroy it. Give {writer} an output directory that holds no job's inputs")]
    OutputHoldsInput {
        path: PathBuf,
        writer: String,
        output: PathBuf,
        reader: String,
        input: PathBuf,
    },

    #[error("manifest {path}: {first} and {second} are both named {name:?}; job names must be unique so reports can tell them apart")]
    DuplicateName {
        path: PathBuf,
        first: String,
        second: String,
        name: String,
    },

    #[error("manifest {path} lists no jobs; add at least one [[jobs]] table (TOML) or an entry in \"jobs\" (JSON)")]
    NoJobs { path: PathBuf },

    #[error(
        "invalid --shard {spec:?}: {reason} (expected I/N with 1 <= I <= N, e.g. --shard 2/3)"
    )]
    BadShard { spec: String, reason: String },

    #[error("cannot write report {path}: {error}")]
    WriteReport {
        path: PathBuf,
        error: std::io::Error,
    },
}
