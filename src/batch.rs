//! Batch conversion driven by a TOML/JSON manifest.
//!
//! This module is the library half of `electra-convert batch`: it reads and validates a
//! manifest into a list of fully resolved [`Job`]s (each one a [`ConvertArgs`]), picks the
//! jobs of one CI shard, runs them on a small pool of worker threads, and renders the JSON and
//! JUnit reports. It never converts anything itself: the command layer hands [`run_jobs`] a
//! runner closure (which calls `commands::convert_one`), so the scheduler can be tested with a
//! fake runner and this module does not depend on the command layer.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::cli::{ConvertArgs, ModelKind, OutputDtype};

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

/// Manifest file syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Toml,
    Json,
}

/// One resolved job of a manifest: exactly the arguments `convert` would get.
#[derive(Debug, Clone)]
pub struct Job {
    /// Position in the manifest's job list (0-based).
    pub index: usize,
    /// The job's `name`, or its output path when it has none.
    pub name: String,
    /// The conversion, with every path resolved against the manifest's directory.
    /// `quiet` is set and `json` cleared: the batch command owns all printing.
    pub args: ConvertArgs,
}

impl Job {
    /// `jobs[3] "small-disc"`: how messages refer to this job.
    pub fn label(&self) -> String {
        format!("jobs[{}] {:?}", self.index, self.name)
    }
}

/// A parsed and validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    pub jobs: Vec<Job>,
}

/// Keys a job (or `[defaults]`) may carry, with the value each expects.
const JOB_KEYS: &[(&str, &str)] = &[
    ("name", "string"),
    ("checkpoint", "path"),
    ("model", "discriminator | generator | encoder | both"),
    ("output", "path"),
    ("dtype", "f32 | f16 | bf16"),
    ("config", "path"),
    ("num_heads", "integer >= 1"),
    ("vocab", "path"),
    ("cased", "boolean"),
    ("uncased", "boolean"),
    ("force", "boolean"),
    ("verify", "boolean"),
    ("reference", "path"),
    ("atol", "number >= 0"),
    ("rtol", "number >= 0"),
];

fn valid_keys() -> String {
    JOB_KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

fn job_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("jobs[{index}] {name:?}"),
        None => format!("jobs[{index}]"),
    }
}

/// Read, parse and validate a manifest. The format follows the extension (`.toml`, `.json`);
/// anything else is tried as TOML, then as JSON.
pub fn load_manifest(path: &Path) -> Result<Manifest, BatchError> {
    let text = std::fs::read_to_string(path).map_err(|error| BatchError::ReadManifest {
        path: path.to_path_buf(),
        error,
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("toml") => Some(ManifestFormat::Toml),
        Some("json") => Some(ManifestFormat::Json),
        _ => None,
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let tree = match format {
        Some(format) => parse_tree(&text, format).map_err(|message| BatchError::Syntax {
            path: path.to_path_buf(),
            format: format_name(format),
            message,
        })?,
        None => match parse_tree(&text, ManifestFormat::Toml) {
            Ok(tree) => tree,
            Err(toml) => match parse_tree(&text, ManifestFormat::Json) {
                Ok(tree) => tree,
                Err(json) => {
                    return Err(BatchError::UnknownFormat {
                        path: path.to_path_buf(),
                        toml,
                        json,
                    })
                }
            },
        },
    };
    resolve_manifest(path, base, tree)
}

/// Parse manifest text in a known format; `path` is only used in messages and `base` is the
/// directory relative paths are resolved against.
pub fn parse_manifest(
    text: &str,
    format: ManifestFormat,
    path: &Path,
    base: &Path,
) -> Result<Manifest, BatchError> {
    let tree = parse_tree(text, format).map_err(|message| BatchError::Syntax {
        path: path.to_path_buf(),
        format: format_name(format),
        message,
    })?;
    resolve_manifest(path, base, tree)
}

fn format_name(format: ManifestFormat) -> &'static str {
    match format {
        ManifestFormat::Toml => "TOML",
        ManifestFormat::Json => "JSON",
    }
}

/// Both syntaxes become one JSON tree, so validation is written once.
fn parse_tree(text: &str, format: ManifestFormat) -> Result<Value, String> {
    match format {
        ManifestFormat::Toml => {
            let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
            serde_json::to_value(table).map_err(|e| e.to_string())
        }
        ManifestFormat::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
    }
}

fn resolve_manifest(path: &Path, base: &Path, tree: Value) -> Result<Manifest, BatchError> {
    let structure = |message: String| BatchError::Structure {
        path: path.to_path_buf(),
        message,
    };
    let Value::Object(top) = tree else {
        return Err(structure(format!(
            "the top level must be a table/object with `defaults` and `jobs`, found {}",
            kind_of(&tree)
        )));
    };
    for key in top.keys() {
        if key != "defaults" && key != "jobs" {
            return Err(BatchError::UnknownKey {
                path: path.to_path_buf(),
                location: "the top level".into(),
                key: key.clone(),
                hint: suggestion(key, &["defaults", "jobs"]),
                valid: "defaults, jobs".into(),
            });
        }
    }
    let defaults = match top.get("defaults") {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            return Err(structure(format!(
                "`defaults` must be a table/object, found {}",
                kind_of(other)
            )))
        }
    };
    check_keys(path, "[defaults]", &defaults)?;
    if defaults.contains_key("name") {
        return Err(structure(
            "`name` cannot be a default (every job needs its own name); move it into the jobs"
                .into(),
        ));
    }
    let raw_jobs = match top.get("jobs") {
        None => return Err(BatchError::NoJobs { path: path.into() }),
        Some(Value::Array(jobs)) => jobs,
        Some(other) => {
            return Err(structure(format!(
                "`jobs` must be an array of tables ([[jobs]] in TOML), found {}",
                kind_of(other)
            )))
        }
    };
    if raw_jobs.is_empty() {
        return Err(BatchError::NoJobs { path: path.into() });
    }

    let mut jobs = Vec::with_capacity(raw_jobs.len());
    for (index, raw) in raw_jobs.iter().enumerate() {
        let Value::Object(own) = raw else {
            return Err(structure(format!(
                "jobs[{index}] must be a table/object, found {}",
                kind_of(raw)
            )));
        };
        let name = own.get("name").and_then(Value::as_str);
        check_keys(path, &job_label(index, name), own)?;
        let mut merged = defaults.clone();
        for (k, v) in own {
            merged.insert(k.clone(), v.clone());
        }
        jobs.push(resolve_job(path, base, index, &merged)?);
    }
    check_unique(path, &jobs)?;
    Ok(Manifest {
        path: path.to_path_buf(),
        jobs,
    })
}

fn check_keys(path: &Path, location: &str, map: &Map<String, Value>) -> Result<(), BatchError> {
    let known: Vec<&str> = JOB_KEYS.iter().map(|(k, _)| *k).collect();
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            return Err(BatchError::UnknownKey {
                path: path.to_path_buf(),
                location: location.to_string(),
                key: key.clone(),
                hint: suggestion(key, &known),
                valid: valid_keys(),
            });
        }
    }
    Ok(())
}

/// ` (did you mean `dtype`?)` when a known key is within two edits of the typo.
fn suggestion(key: &str, known: &[&str]) -> String {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = replace.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table/object",
    }
}

/// Typed access to one merged job table, with errors that name the job and the key.
struct JobTable<'a> {
    path: &'a Path,
    base: &'a Path,
    label: String,
    map: &'a Map<String, Value>,
}

impl JobTable<'_> {
    fn bad(&self, key: &str, message: String) -> BatchError {
        BatchError::BadValue {
            path: self.path.to_path_buf(),
            job: self.label.clone(),
            key: key.to_string(),
            message,
        }
    }

    fn required<T>(
        &self,
        key: &'static str,
        get: impl Fn(&Self, &'static str) -> Result<Option<T>, BatchError>,
    ) -> Result<T, BatchError> {
        get(self, key)?.ok_or_else(|| BatchError::MissingKey {
            path: self.path.to_path_buf(),
            job: self.label.clone(),
            key,
        })
    }

    fn string(&self, key: &'static str) -> Result<Option<String>, BatchError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => {
                Err(self.bad(key, "expected a non-empty string".into()))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.bad(key, format!("expected a string, found {}", kind_of(other))))
            }
        }
    }

    fn path(&self, key: &'static str) -> Result<Option<PathBuf>, BatchError> {
        Ok(self
            .string(key)?
            .map(|s| resolve_path(self.base, Path::new(&s))))
    }

    fn boolean(&self, key: &'static str) -> Result<Option<bool>, BatchError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(
                key,
                format!("expected true or false, found {}", kind_of(other)),
            )),
        }
    }

    fn tolerance(&self, key: &'static str) -> Result<Option<f64>, BatchError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(self.bad(key, format!("expected a finite number >= 0, found {n}"))),
            },
            Some(other) => {
                Err(self.bad(key, format!("expected a number, found {}", kind_of(other))))
            }
        }
    }

    fn heads(&self, key: &'static str) -> Result<Option<u32>, BatchError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => Ok(Some(n)),
                _ => Err(self.bad(key, format!("expected an integer >= 1, found {n}"))),
            },
            Some(other) => Err(self.bad(
                key,
                format!("expected an integer, found {}", kind_of(other)),
            )),
        }
    }

    fn choice<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, BatchError> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        let expected = JOB_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, e)| *e);
        match value {
            Value::String(s) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|_| self.bad(key, format!("{s:?} is not one of {expected}"))),
            other => Err(self.bad(
                key,
                format!("expected one of {expected}, found {}", kind_of(other)),
            )),
        }
    }
}

fn resolve_job(
    path: &Path,
    base: &Path,
    index: usize,
    map: &Map<String, Value>,
) -> Result<Job, BatchError> {
    let mut table = JobTable {
        path,
        base,
        label: job_label(index, None),
        map,
    };
    let name = table.string("name")?;
    table.label = job_label(index, name.as_deref());

    let checkpoint = table.required("checkpoint", JobTable::path)?;
    let model: ModelKind = table.required("model", JobTable::choice)?;
    let output_as_written = table.required("output", JobTable::string)?;
    let output = resolve_path(base, Path::new(&output_as_written));
    let cased = table.boolean("cased")?.unwrap_or(false);
    let uncased = table.boolean("uncased")?.unwrap_or(false);
    if cased && uncased {
        return Err(table.bad(
            "uncased",
            "`cased` and `uncased` are both true; set at most one".into(),
        ));
    }
    let args = ConvertArgs {
        checkpoint,
        model,
        dtype: table.choice::<OutputDtype>("dtype")?.unwrap_or_default(),
        config: table.path("config")?,
        num_heads: table.heads("num_heads")?,
        vocab: table.path("vocab")?,
        cased,
        uncased,
        force: table.boolean("force")?.unwrap_or(false),
        verify: table.boolean("verify")?.unwrap_or(false),
        reference: table.path("reference")?,
        atol: table.tolerance("atol")?.unwrap_or(1e-4),
        rtol: table.tolerance("rtol")?.unwrap_or(1e-4),
        quiet: true,
        json: false,
        output: output.clone(),
    };
    let name = name.unwrap_or(output_as_written);
    Ok(Job { index, name, args })
}

/// `p` if absolute, else `base/p`, lexically cleaned (`a/./b/../c` → `a/c`).
fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        normalize(p)
    } else {
        normalize(&base.join(p))
    }
}

/// Remove `.` components and fold `name/..` pairs without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// Absolute, lexically normalized form of an output path, for clobber checks.
fn comparable(p: &Path) -> PathBuf {
    normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

fn check_unique(path: &Path, jobs: &[Job]) -> Result<(), BatchError> {
    let mut names: HashMap<&str, &Job> = HashMap::new();
    for job in jobs {
        if let Some(first) = names.insert(job.name.as_str(), job) {
            return Err(BatchError::DuplicateName {
                path: path.into(),
                first: first.label(),
                second: job.label(),
                name: job.name.clone(),
            });
        }
    }
    let outputs: Vec<PathBuf> = jobs.iter().map(|j| comparable(&j.args.output)).collect();
    for (i, a) in outputs.iter().enumerate() {
        for (j, b) in outputs.iter().enumerate().skip(i + 1) {
            if a == b {
                return Err(BatchError::DuplicateOutput {
                    path: path.into(),
                    first: jobs[i].label(),
                    second: jobs[j].label(),
                    output: jobs[j].args.output.clone(),
                });
            }
            let (outer, inner) = if b.starts_with(a) {
                (i, j)
            } else if a.starts_with(b) {
                (j, i)
            } else {
                continue;
            };
            return Err(BatchError::NestedOutput {
                path: path.into(),
                outer: jobs[outer].label(),
                outer_output: jobs[outer].args.output.clone(),
                inner: jobs[inner].label(),
                inner_output: jobs[inner].args.output.clone(),
            });
        }
    }
    // Jobs run in any order and `force` replaces whole directories, so no job may write where
    // any job (itself included) reads from.
    for (writer, output) in jobs.iter().zip(&outputs) {
        for reader in jobs {
            let a = &reader.args;
            let inputs = std::iter::once(&a.checkpoint)
                .chain(a.reference.as_ref())
                .chain(a.config.as_ref())
                .chain(a.vocab.as_ref());
            if let Some(input) = inputs
                .into_iter()
                .find(|p| comparable(p).starts_with(output))
            {
                return Err(BatchError::OutputHoldsInput {
                    path: path.into(),
                    writer: writer.label(),
                    output: writer.args.output.clone(),
                    reader: reader.label(),
                    input: input.clone(),
                });
            }
        }
    }
    Ok(())
}

/// `--shard I/N`: job k (0-based, manifest order) belongs to shard (k mod N) + 1.
///
/// Round-robin rather than contiguous blocks, because sweeps list checkpoints in training
/// order and neighbouring jobs tend to have similar cost; dealing them out spreads the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub total: usize,
}

impl Shard {
    pub fn parse(spec: &str) -> Result<Shard, BatchError> {
        let bad = |reason: &str| BatchError::BadShard {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let (i, n) = spec.trim().split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("I is not a whole number"))?;
        let total: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if total == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index == 0 || index > total {
            return Err(bad("I must be between 1 and N"));
        }
        Ok(Shard { index, total })
    }

    /// The 1-based shard that job `k` (0-based manifest position) belongs to with `total` shards.
    pub fn of(k: usize, total: usize) -> usize {
        k % total + 1
    }

    pub fn contains(&self, job: &Job) -> bool {
        Shard::of(job.index, self.total) == self.index
    }

    /// This shard's jobs, in manifest order.
    pub fn select(&self, jobs: &[Job]) -> Vec<Job> {
        jobs.iter().filter(|j| self.contains(j)).cloned().collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// What a successful conversion produced, as the batch layer needs it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Converted {
    /// The written model directories (two for `model = "both"`).
    pub directories: Vec<PathBuf>,
    /// Non-fatal notes from the converter.
    pub warnings: Vec<String>,
    /// Parity results, present when the job asked for `verify` and/or `reference`.
    pub verify: Option<VerifySummary>,
}

/// Parity results of one job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifySummary {
    /// Every check passed.
    pub passed: bool,
    /// One line per failed check, e.g. "discriminator (reference): logits max_abs_diff 0.3 > ...".
    pub failures: Vec<String>,
    /// The full parity reports, as the `verify --json` command prints them.
    pub reports: Vec<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Ok,
    Failed,
    ParityFailed,
    Skipped,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Ok => "ok",
            JobStatus::Failed => "failed",
            JobStatus::ParityFailed => "parity_failed",
            JobStatus::Skipped => "skipped",
        }
    }
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub index: usize,
    pub name: String,
    pub output: PathBuf,
    pub status: JobStatus,
    pub seconds: f64,
    /// The error chain (failed), the failed checks (parity_failed) or why it did not run (skipped).
    pub error: Option<String>,
    pub converted: Option<Converted>,
}

impl JobRecord {
    fn from_result(job: &Job, seconds: f64, result: Result<Converted, String>) -> JobRecord {
        let (status, error, converted) = match result {
            Err(error) => (JobStatus::Failed, Some(error), None),
            Ok(converted) => match &converted.verify {
                Some(v) if !v.passed => (
                    JobStatus::ParityFailed,
                    Some(if v.failures.is_empty() {
                        "parity check failed".to_string()
                    } else {
                        format!("parity check failed: {}", v.failures.join("; "))
                    }),
                    Some(converted),
                ),
                _ => (JobStatus::Ok, None, Some(converted)),
            },
        };
        JobRecord {
            index: job.index,
            name: job.name.clone(),
            output: job.args.output.clone(),
            status,
            seconds,
            error,
            converted,
        }
    }

    fn skipped(job: &Job) -> JobRecord {
        JobRecord {
            index: job.index,
            name: job.name.clone(),
            output: job.args.output.clone(),
            status: JobStatus::Skipped,
            seconds: 0.0,
            error: Some("not started: an earlier job failed and --fail-fast is set".into()),
            converted: None,
        }
    }
}

/// How many workers to use by default: the number of cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run `jobs` on `workers` threads that take jobs from one shared queue in manifest order.
///
/// Each job is `runner(job)`; an `Err` or a panic fails that job only (a panic is caught and
/// reported with its message). With `fail_fast`, no job is started after the first failure
/// (jobs already running finish) and the rest are recorded as skipped. A parity failure is not
/// a failure for `fail_fast`: the model was written. `on_done` sees every record as it
/// completes (from the worker thread). Records come back in `jobs` order.
pub fn run_jobs<R, D>(
    jobs: &[Job],
    workers: usize,
    fail_fast: bool,
    runner: R,
    on_done: D,
) -> Vec<JobRecord>
where
    R: Fn(&Job) -> anyhow::Result<Converted> + Sync,
    D: Fn(&JobRecord) + Sync,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<JobRecord>>> = Mutex::new(vec![None; jobs.len()]);
    let workers = workers.clamp(1, jobs.len().max(1));

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(k) else {
                    break;
                };
                let started = Instant::now();
                let result = match catch_unwind(AssertUnwindSafe(|| runner(job))) {
                    Ok(Ok(converted)) => Ok(converted),
                    Ok(Err(err)) => Err(format!("{err:#}")),
                    Err(panic) => Err(format!(
                        "the converter panicked (a bug in electra-convert; please report it): {}",
                        panic_message(panic.as_ref())
                    )),
                };
                let record = JobRecord::from_result(job, started.elapsed().as_secs_f64(), result);
                if fail_fast && record.status == JobStatus::Failed {
                    stop.store(true, Ordering::SeqCst);
                }
                on_done(&record);
                lock(&slots)[k] = Some(record);
            });
        }
    });

    let slots = slots.into_inner().unwrap_or_else(|e| e.into_inner());
    slots
        .into_iter()
        .zip(jobs)
        .map(|(slot, job)| {
            slot.unwrap_or_else(|| {
                let record = JobRecord::skipped(job);
                on_done(&record);
                record
            })
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: usize,
    pub failed: usize,
    pub parity_failed: usize,
    pub skipped: usize,
}

impl Tally {
    pub fn of(records: &[JobRecord]) -> Tally {
        let mut t = Tally::default();
        for r in records {
            match r.status {
                JobStatus::Ok => t.ok += 1,
                JobStatus::Failed => t.failed += 1,
                JobStatus::ParityFailed => t.parity_failed += 1,
                JobStatus::Skipped => t.skipped += 1,
            }
        }
        t
    }

    pub fn total(&self) -> usize {
        self.ok + self.failed + self.parity_failed + self.skipped
    }
}

/// What a report describes besides the records.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub manifest: PathBuf,
    pub shard: Option<Shard>,
    /// Jobs in the whole manifest (this shard may hold fewer).
    pub manifest_jobs: usize,
    pub workers: usize,
    pub seconds: f64,
}

/// The `--report` document.
pub fn report_json(info: &RunInfo, records: &[JobRecord]) -> Value {
    let tally = Tally::of(records);
    let jobs: Vec<Value> = records
        .iter()
        .map(|r| {
            let converted = r.converted.as_ref();
            serde_json::json!({
                "name": r.name,
                "index": r.index,
                "status": r.status,
                "output": r.output,
                "seconds": round_ms(r.seconds),
                "error": r.error,
                "directories": converted.map(|c| &c.directories),
                "warnings": converted.map(|c| &c.warnings),
                "verify": converted.and_then(|c| c.verify.as_ref()),
            })
        })
        .collect();
    serde_json::json!({
        "manifest": info.manifest,
        "shard": info.shard.map(|s| s.to_string()),
        "manifest_jobs": info.manifest_jobs,
        "workers": info.workers,
        "seconds": round_ms(info.seconds),
        "total": tally.total(),
        "ok": tally.ok,
        "failed": tally.failed,
        "parity_failed": tally.parity_failed,
        "skipped": tally.skipped,
        "jobs": jobs,
    })
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The `--junit` document: one `<testsuite>`, one `<testcase>` per job. Failed and
/// parity-failed jobs carry `<failure>`, skipped ones `<skipped/>`.
pub fn junit_xml(info: &RunInfo, records: &[JobRecord]) -> String {
    let tally = Tally::of(records);
    let suite = match info.shard {
        Some(shard) => format!("electra-convert batch (shard {shard})"),
        None => "electra-convert batch".to_string(),
    };
    // <testsuites> and its single <testsuite> carry the same totals.
    let totals = format!(
        "name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\"",
        xml_escape(&suite),
        tally.total(),
        tally.failed + tally.parity_failed,
        tally.skipped,
        info.seconds
    );
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(xml, "<testsuites {totals}>");
    let _ = writeln!(xml, "  <testsuite {totals}>");
    let _ = writeln!(
        xml,
        "    <properties>\n      <property name=\"manifest\" value=\"{}\"/>\n    </properties>",
        xml_escape(&info.manifest.display().to_string())
    );
    for r in records {
        let _ = write!(
            xml,
            "    <testcase classname=\"electra-convert.batch\" name=\"{}\" time=\"{:.3}\"",
            xml_escape(&r.name),
            r.seconds
        );
        let error = r.error.as_deref().unwrap_or("");
        match r.status {
            JobStatus::Ok => xml.push_str("/>\n"),
            JobStatus::Skipped => {
                let _ = write!(
                    xml,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    xml_escape(error)
                );
            }
            JobStatus::Failed | JobStatus::ParityFailed => {
                let kind = if r.status == JobStatus::Failed {
                    "error"
                } else {
                    "parity"
                };
                let _ = write!(
                    xml,
                    ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>\n",
                    xml_escape(error),
                    xml_escape_text(&format!(
                        "{error}\noutput: {}",
                        r.output.display()
                    ))
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Escape text for an XML attribute or element. Characters XML 1.0 cannot carry at all
/// (most C0 controls) become U+FFFD; newlines and tabs become character references so they
/// survive attribute-value normalization.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escape element text: like [`xml_escape`], but newlines and tabs stay literal.
fn xml_escape_text(text: &str) -> String {
    xml_escape(text)
        .replace("&#10;", "\n")
        .replace("&#13;", "\r")
        .replace("&#9;", "\t")
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written report. Creates missing parent directories.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), BatchError> {
    let err = |error| BatchError::WriteReport {
        path: path.to_path_buf(),
        error,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The options of a job that differ from `convert`'s defaults, for the dry-run plan.
pub fn describe_options(args: &ConvertArgs) -> String {
    let mut opts: BTreeMap<&str, String> = BTreeMap::new();
    opts.insert("dtype", args.dtype.as_str().to_string());
    if let Some(c) = &args.config {
        opts.insert("config", c.display().to_string());
    }
    if let Some(n) = args.num_heads {
        opts.insert("num_heads", n.to_string());
    }
    if let Some(v) = &args.vocab {
        opts.insert("vocab", v.display().to_string());
    }
    if args.cased {
        opts.insert("cased", "true".into());
    }
    if args.uncased {
        opts.insert("uncased", "true".into());
    }
    if args.force {
        opts.insert("force", "true".into());
    }
    if args.verify {
        opts.insert("verify", "true".into());
    }
    if let Some(r) = &args.reference {
        opts.insert("reference", r.display().to_string());
    }
    if args.verify || args.reference.is_some() {
        opts.insert("atol", args.atol.to_string());
        opts.insert("rtol", args.rtol.to_string());
    }
    opts.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Result<Manifest, BatchError> {
        parse_manifest(
            text,
            ManifestFormat::Toml,
            Path::new("sweep/m.toml"),
            Path::new("sweep"),
        )
    }

    fn json(text: &str) -> Result<Manifest, BatchError> {
        parse_manifest(
            text,
            ManifestFormat::Json,
            Path::new("sweep/m.json"),
            Path::new("sweep"),
        )
    }

    const FULL: &str = r#"
[defaults]
dtype = "f16"
verify = true
atol = 0.001

[[jobs]]
name = "small-disc"
checkpoint = "runs/small/model.ckpt-1000000"
model = "discriminator"
output = "out/small-disc"
config = "configs/small.json"
vocab = "/abs/vocab.txt"
reference = "refs/../refs/small.safetensors"
num_heads = 4
cased = true
rtol = 0
dtype = "bf16"

[[jobs]]
checkpoint = "runs/small/model.ckpt-1000000"
model = "generator"
output = "./out/small-gen"
verify = false
"#;

    #[test]
    fn full_toml_manifest_resolves_every_key() {
        let m = toml(FULL).unwrap();
        assert_eq!(m.jobs.len(), 2);
        let a = &m.jobs[0].args;
        assert_eq!(m.jobs[0].name, "small-disc");
        assert_eq!(
            a.checkpoint,
            PathBuf::from("sweep/runs/small/model.ckpt-1000000")
        );
        assert_eq!(a.model, ModelKind::Discriminator);
        assert_eq!(a.output, PathBuf::from("sweep/out/small-disc"));
        assert_eq!(a.dtype, OutputDtype::Bf16, "a job key overrides [defaults]");
        assert_eq!(a.config, Some(PathBuf::from("sweep/configs/small.json")));
        assert_eq!(a.vocab, Some(PathBuf::from("/abs/vocab.txt")));
        assert_eq!(
            a.reference,
            Some(PathBuf::from("sweep/refs/small.safetensors"))
        );
        assert_eq!(a.num_heads, Some(4));
        assert!(a.cased && !a.uncased && a.verify && !a.force && a.quiet && !a.json);
        assert_eq!(a.atol, 0.001);
        assert_eq!(a.rtol, 0.0, "an integer is accepted as a tolerance");

        let b = &m.jobs[1];
        assert_eq!(
            b.name, "./out/small-gen",
            "name defaults to the output as written"
        );
        assert_eq!(b.args.dtype, OutputDtype::F16, "inherited from [defaults]");
        assert!(!b.args.verify);
        assert_eq!(b.args.atol, 0.001);
        assert_eq!(b.args.rtol, 1e-4);
    }

    #[test]
    fn json_manifest_matches_toml() {
        let m = json(
            r#"{"defaults": {"dtype": "f16"},
                "jobs": [{"name": "a", "checkpoint": "c", "model": "encoder", "output": "o"}]}"#,
        )
        .unwrap();
        assert_eq!(m.jobs[0].args.model, ModelKind::Encoder);
        assert_eq!(m.jobs[0].args.dtype, OutputDtype::F16);
        assert_eq!(m.jobs[0].args.output, PathBuf::from("sweep/o"));
        assert_eq!(m.jobs[0].args.checkpoint, PathBuf::from("sweep/c"));
    }

    #[test]
    fn unknown_key_names_job_and_key() {
        let err = toml(
            "[[jobs]]\nname=\"ok\"\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o1\"\n\
             [[jobs]]\nname=\"second\"\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o2\"\ndtyp=\"f16\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`dtyp`"), "{err}");
        assert!(err.contains("jobs[1] \"second\""), "{err}");
        assert!(err.contains("did you mean `dtype`"), "{err}");

        let err = json(
            r#"{"jobs": [{"checkpoint": "c", "model": "encoder", "output": "o", "bogus_key": 1}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`bogus_key` in jobs[0]"), "{err}");

        let err = toml("[defaults]\nverfy = true\n[[jobs]]\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`verfy` in [defaults]"), "{err}");

        let err = toml("[[job]]\ncheckpoint=\"c\"\n").unwrap_err().to_string();
        assert!(err.contains("`job` in the top level"), "{err}");
        assert!(err.contains("did you mean `jobs`"), "{err}");
    }

    #[test]
    fn missing_required_keys_name_the_job() {
        let err = toml("[[jobs]]\nname=\"x\"\nmodel=\"encoder\"\noutput=\"o\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobs[0] \"x\" has no `checkpoint`"), "{err}");
        let err = toml("[[jobs]]\ncheckpoint=\"c\"\noutput=\"o\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobs[0] has no `model`"), "{err}");
        let err = toml("[[jobs]]\ncheckpoint=\"c\"\nmodel=\"both\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no `output`"), "{err}");
        // A default supplies a required key.
        let m =
            toml("[defaults]\ncheckpoint=\"c\"\n[[jobs]]\nmodel=\"both\"\noutput=\"o\"\n").unwrap();
        assert_eq!(m.jobs[0].args.checkpoint, PathBuf::from("sweep/c"));
    }

    #[test]
    fn bad_values_are_explained() {
        let base = "[[jobs]]\nname=\"j\"\ncheckpoint=\"c\"\noutput=\"o\"\n";
        for (extra, needle) in [
            ("model=\"disc\"", "\"disc\" is not one of discriminator"),
            (
                "model=\"encoder\"\ndtype=\"f64\"",
                "\"f64\" is not one of f32",
            ),
            (
                "model=\"encoder\"\nverify=\"yes\"",
                "expected true or false",
            ),
            ("model=\"encoder\"\natol=-1", "finite number >= 0"),
            ("model=\"encoder\"\nnum_heads=0", "integer >= 1"),
            ("model=\"encoder\"\nnum_heads=1.5", "integer >= 1"),
            ("model=\"encoder\"\nvocab=3", "expected a string"),
            ("model=\"encoder\"\ncased=true\nuncased=true", "both true"),
        ] {
            let err = toml(&format!("{base}{extra}\n")).unwrap_err().to_string();
            assert!(err.contains("jobs[0] \"j\""), "{err}");
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn structural_errors() {
        let err = toml("").unwrap_err();
        assert!(matches!(err, BatchError::NoJobs { .. }), "{err}");
        let err = json(r#"{"jobs": []}"#).unwrap_err();
        assert!(matches!(err, BatchError::NoJobs { .. }), "{err}");
        let err = json(r#"[1]"#).unwrap_err().to_string();
        assert!(err.contains("top level must be"), "{err}");
        let err = json(r#"{"jobs": [3]}"#).unwrap_err().to_string();
        assert!(err.contains("jobs[0] must be a table"), "{err}");
        let err = json(r#"{"jobs": [{"model": "encoder"}"#).unwrap_err();
        assert!(
            matches!(err, BatchError::Syntax { format: "JSON", .. }),
            "{err}"
        );
        let err = toml("[defaults]\nname=\"x\"\n[[jobs]]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`name` cannot be a default"), "{err}");
    }

    #[test]
    fn clobbering_outputs_are_rejected() {
        let job = |name: &str, out: &str| {
            format!(
                "[[jobs]]\nname=\"{name}\"\ncheckpoint=\"c\"\nmodel=\"both\"\noutput=\"{out}\"\n"
            )
        };
        let err = toml(&(job("a", "out/x") + &job("b", "out/y") + &job("c", "out/./z/../x")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("jobs[0] \"a\" and jobs[2] \"c\" both write to"),
            "{err}"
        );
        let err = toml(&(job("a", "out/x") + &job("b", "out/x/discriminator")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("inside the output of jobs[0] \"a\""), "{err}");
        let err = toml(&(job("a", "out/x") + &job("a", "out/y")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("both named \"a\""), "{err}");
        // Sibling names sharing a prefix are fine.
        toml(&(job("a", "out/x") + &job("b", "out/x2"))).unwrap();
    }

    #[test]
    fn an_output_holding_another_jobs_checkpoint_is_rejected() {
        let manifest = "[[jobs]]\nname=\"first\"\ncheckpoint=\"runs/a/model.ckpt-1\"\nmodel=\"encoder\"\noutput=\"out/a\"\n\
                        [[jobs]]\nname=\"second\"\ncheckpoint=\"runs/b/model.ckpt-1\"\nmodel=\"encoder\"\noutput=\"runs\"\nforce=true\n";
        let err = toml(manifest).unwrap_err();
        assert!(matches!(err, BatchError::OutputHoldsInput { .. }), "{err}");
        let err = err.to_string();
        assert!(
            err.contains("jobs[1] \"second\" writes to sweep/runs, which holds sweep/runs/a/model.ckpt-1, an input of jobs[0] \"first\""),
            "{err}"
        );
        // A job whose output merely shares a name prefix with an input directory is fine.
        toml(&manifest.replace("output=\"runs\"", "output=\"runs2\"")).unwrap();
    }

    #[test]
    fn load_picks_format_by_extension_or_tries_both() {
        let dir = tempfile::tempdir().unwrap();
        let body_json = r#"{"jobs": [{"checkpoint": "c", "model": "encoder", "output": "o"}]}"#;
        let body_toml = "[[jobs]]\ncheckpoint = \"c\"\nmodel = \"encoder\"\noutput = \"o\"\n";
        for (file, body) in [
            ("a.json", body_json),
            ("a.toml", body_toml),
            ("a.JSON", body_json),
            ("noext", body_toml),
            ("noext2", body_json),
            ("m.manifest", body_toml),
        ] {
            let p = dir.path().join(file);
            std::fs::write(&p, body).unwrap();
            let m = load_manifest(&p).unwrap();
            assert_eq!(m.jobs[0].args.output, dir.path().join("o"), "{file}");
        }
        let p = dir.path().join("x.toml");
        std::fs::write(&p, body_json).unwrap();
        let err = load_manifest(&p).unwrap_err();
        assert!(
            matches!(err, BatchError::Syntax { format: "TOML", .. }),
            "{err}"
        );
        let p = dir.path().join("garbage.txt");
        std::fs::write(&p, "{{ not = either").unwrap();
        let err = load_manifest(&p).unwrap_err().to_string();
        assert!(
            err.contains("as TOML:") && err.contains("as JSON:"),
            "{err}"
        );
        let err = load_manifest(&dir.path().join("absent.toml")).unwrap_err();
        assert!(matches!(err, BatchError::ReadManifest { .. }), "{err}");
    }

    #[test]
    fn manifest_in_current_directory_keeps_relative_paths() {
        let m = parse_manifest(
            "[[jobs]]\ncheckpoint=\"ck/p\"\nmodel=\"encoder\"\noutput=\"o\"\n",
            ManifestFormat::Toml,
            Path::new("m.toml"),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(m.jobs[0].args.checkpoint, PathBuf::from("ck/p"));
        assert_eq!(normalize(Path::new("../a/./b/..")), PathBuf::from("../a"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
    }

    fn jobs(n: usize) -> Vec<Job> {
        let text: String = (0..n)
            .map(|i| {
                format!("[[jobs]]\nname=\"j{i}\"\ncheckpoint=\"c\"\nmodel=\"encoder\"\noutput=\"o{i}\"\n")
            })
            .collect();
        toml(&text).unwrap().jobs
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, total: 3 });
        assert_eq!(Shard::parse(" 1 / 1 ").unwrap().to_string(), "1/1");
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/", "-1/2", ""] {
            let err = Shard::parse(bad).unwrap_err().to_string();
            assert!(err.contains("--shard"), "{bad}: {err}");
        }
    }

    #[test]
    fn shards_partition_the_jobs_round_robin() {
        let all = jobs(7);
        for total in 1..=9 {
            let mut seen = vec![0; all.len()];
            for index in 1..=total {
                let shard = Shard { index, total };
                let picked = shard.select(&all);
                for job in &picked {
                    seen[job.index] += 1;
                    assert_eq!(job.index % total, index - 1);
                }
                assert!(picked.windows(2).all(|w| w[0].index < w[1].index));
            }
            assert!(seen.iter().all(|&n| n == 1), "N={total}: {seen:?}");
        }
        let names: Vec<_> = Shard { index: 2, total: 3 }
            .select(&all)
            .into_iter()
            .map(|j| j.name)
            .collect();
        assert_eq!(names, ["j1", "j4"]);
    }

    fn fake_runner(job: &Job) -> anyhow::Result<Converted> {
        match job.name.as_str() {
            "j1" => anyhow::bail!("broken checkpoint"),
            "j2" => panic!("boom in j2"),
            "j3" => Ok(Converted {
                verify: Some(VerifySummary {
                    passed: false,
                    failures: vec!["logits max_abs_diff 1 > 1e-4".into()],
                    reports: vec![],
                }),
                ..Converted::default()
            }),
            _ => Ok(Converted {
                directories: vec![job.args.output.clone()],
                ..Converted::default()
            }),
        }
    }

    #[test]
    fn scheduler_isolates_failures_and_panics() {
        let all = jobs(6);
        for workers in [1, 2, 4, 16] {
            let done = AtomicUsize::new(0);
            let records = run_jobs(&all, workers, false, fake_runner, |_| {
                done.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(done.load(Ordering::SeqCst), 6);
            let statuses: Vec<_> = records.iter().map(|r| r.status).collect();
            assert_eq!(
                statuses,
                [
                    JobStatus::Ok,
                    JobStatus::Failed,
                    JobStatus::Failed,
                    JobStatus::ParityFailed,
                    JobStatus::Ok,
                    JobStatus::Ok
                ]
            );
            assert_eq!(records[1].error.as_deref(), Some("broken checkpoint"));
            assert!(records[2].error.as_ref().unwrap().contains("boom in j2"));
            assert!(records[3].error.as_ref().unwrap().contains("logits"));
            assert_eq!(
                Tally::of(&records),
                Tally {
                    ok: 3,
                    failed: 2,
                    parity_failed: 1,
                    skipped: 0
                }
            );
        }
    }

    #[test]
    fn scheduler_runs_jobs_concurrently() {
        let all = jobs(4);
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        run_jobs(
            &all,
            4,
            false,
            |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(Converted::default())
            },
            |_| {},
        );
        assert!(peak.load(Ordering::SeqCst) > 1);
        let peak = AtomicUsize::new(0);
        run_jobs(
            &all,
            1,
            false,
            |_| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(Converted::default())
            },
            |_| {},
        );
        assert_eq!(peak.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn fail_fast_skips_jobs_not_started() {
        let all = jobs(6);
        let started = Mutex::new(Vec::new());
        let records = run_jobs(
            &all,
            1,
            true,
            |job| {
                lock(&started).push(job.index);
                fake_runner(job)
            },
            |_| {},
        );
        assert_eq!(*lock(&started), [0, 1]);
        let statuses: Vec<_> = records.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                JobStatus::Ok,
                JobStatus::Failed,
                JobStatus::Skipped,
                JobStatus::Skipped,
                JobStatus::Skipped,
                JobStatus::Skipped
            ]
        );
    }

    fn sample_records() -> (RunInfo, Vec<JobRecord>) {
        let all = jobs(4);
        let mut records = run_jobs(&all, 1, false, fake_runner, |_| {});
        records[1].error = Some("bad <tensor> \"x\" & 'y'\nline two\u{1}".into());
        records[2] = JobRecord::skipped(&all[2]);
        let info = RunInfo {
            manifest: PathBuf::from("m.toml"),
            shard: Some(Shard { index: 1, total: 1 }),
            manifest_jobs: 4,
            workers: 1,
            seconds: 1.5,
        };
        (info, records)
    }

    #[test]
    fn json_report_shape() {
        let (info, records) = sample_records();
        let report = report_json(&info, &records);
        assert_eq!(report["ok"], 1);
        assert_eq!(report["failed"], 1);
        assert_eq!(report["parity_failed"], 1);
        assert_eq!(report["skipped"], 1);
        assert_eq!(report["total"], 4);
        assert_eq!(report["shard"], "1/1");
        let jobs = report["jobs"].as_array().unwrap();
        assert_eq!(jobs[0]["status"], "ok");
        assert_eq!(jobs[0]["error"], Value::Null);
        assert_eq!(jobs[1]["status"], "failed");
        assert_eq!(jobs[2]["status"], "skipped");
        assert_eq!(jobs[3]["status"], "parity_failed");
        assert_eq!(jobs[3]["verify"]["passed"], false);
        assert_eq!(jobs[0]["output"], "sweep/o0");
    }

    #[test]
    fn junit_escapes_and_counts() {
        let (info, records) = sample_records();
        let xml = junit_xml(&info, &records);
        assert!(
            xml.contains("tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\""),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 4);
        assert_eq!(xml.matches("<failure ").count(), 2);
        assert_eq!(xml.matches("<skipped ").count(), 1);
        assert!(xml.contains(
            "message=\"bad &lt;tensor&gt; &quot;x&quot; &amp; &apos;y&apos;&#10;line two\u{FFFD}\""
        ), "{xml}");
        assert!(xml.contains("classname=\"electra-convert.batch\" name=\"j0\""));
        assert!(!xml.contains('\u{1}'));
    }

    #[test]
    fn atomic_write_replaces_and_creates_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/er/report.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["report.json"]);
    }
}
