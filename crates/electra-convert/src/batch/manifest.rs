//! Batch manifests: the TOML/JSON format, the keys a job may carry, path resolution against the
//! manifest's directory, and the checks that job names and output directories are unique and
//! never clobber each other's inputs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::BatchError;
use crate::options::{ConvertOptions, ModelKind, OutputDtype};
use crate::verify::Tolerance;

/// Manifest file syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    /// A `.toml` manifest.
    Toml,
    /// A `.json` manifest.
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
    pub options: ConvertOptions,
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
    /// The manifest file (relative paths in it are resolved against its directory).
    pub path: PathBuf,
    /// The jobs, in manifest order.
    pub jobs: Vec<Job>,
}

/// Keys a job (or `[defaults]`) may carry, with the value each expects.
const JOB_KEYS: &[(&str, &str)] = &[
    ("name", "string"),
    ("checkpoint", "path"),
    ("model", "discriminator | generator | encoder | both"),
    ("layout", "google-tf1 | model-garden | nvidia"),
    ("output", "path"),
    ("dtype", "f32 | f16 | bf16"),
    ("config", "path"),
    ("num_heads", "integer >= 1"),
    ("vocab", "path"),
    ("cased", "boolean"),
    ("uncased", "boolean"),
    ("strip_accents", "boolean"),
    ("model_card", "boolean"),
    ("license", "Hub license identifier, e.g. apache-2.0"),
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
    let license = table.string("license")?;
    if let Some(l) = &license {
        crate::write::card::check_license(l).map_err(|e| table.bad("license", e.to_string()))?;
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let invocation = format!(
        "electra-convert batch {} (job {})",
        crate::write::card::command_line(&[path.display().to_string()], &cwd),
        table.label
    );
    let defaults = Tolerance::default();
    let options = ConvertOptions {
        checkpoint,
        model,
        layout: table.choice("layout")?,
        dtype: table.choice::<OutputDtype>("dtype")?.unwrap_or_default(),
        config: table.path("config")?,
        num_heads: table.heads("num_heads")?,
        vocab: table.path("vocab")?,
        lower_case: match (cased, uncased) {
            (true, _) => Some(false),
            (_, true) => Some(true),
            _ => None,
        },
        strip_accents: table.boolean("strip_accents")?,
        model_card: table.boolean("model_card")?.unwrap_or(true),
        license,
        invocation: Some(invocation),
        force: table.boolean("force")?.unwrap_or(false),
        verify: table.boolean("verify")?.unwrap_or(false),
        reference: table.path("reference")?,
        tolerance: Tolerance {
            atol: table.tolerance("atol")?.unwrap_or(defaults.atol),
            rtol: table.tolerance("rtol")?.unwrap_or(defaults.rtol),
        },
        output: output.clone(),
    };
    let name = name.unwrap_or(output_as_written);
    Ok(Job {
        index,
        name,
        options,
    })
}

/// `p` if absolute, else `base/p`, lexically cleaned (`a/./b/../c` → `a/c`).
fn resolve_path(base: &Path, p: &Path) -> PathBuf {
    // A bucket URL (`s3://…`) is never joined onto the manifest's directory.
    if p.to_str().is_some_and(|s| s.contains("://")) {
        p.to_path_buf()
    } else if p.is_absolute() {
        normalize(p)
    } else {
        normalize(&base.join(p))
    }
}

/// Remove `.` components and fold `name/..` pairs without touching the file system.
pub(super) fn normalize(p: &Path) -> PathBuf {
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
    let outputs: Vec<PathBuf> = jobs.iter().map(|j| comparable(&j.options.output)).collect();
    for (i, a) in outputs.iter().enumerate() {
        for (j, b) in outputs.iter().enumerate().skip(i + 1) {
            if a == b {
                return Err(BatchError::DuplicateOutput {
                    path: path.into(),
                    first: jobs[i].label(),
                    second: jobs[j].label(),
                    output: jobs[j].options.output.clone(),
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
                outer_output: jobs[outer].options.output.clone(),
                inner: jobs[inner].label(),
                inner_output: jobs[inner].options.output.clone(),
            });
        }
    }
    // Jobs run in any order and `force` replaces whole directories, so no job may write where
    // any job (itself included) reads from.
    for (writer, output) in jobs.iter().zip(&outputs) {
        for reader in jobs {
            let a = &reader.options;
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
                    output: writer.options.output.clone(),
                    reader: reader.label(),
                    input: input.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The options of a job that differ from `convert`'s defaults, for the dry-run plan.
pub fn describe_options(options: &ConvertOptions) -> String {
    let mut opts: BTreeMap<&str, String> = BTreeMap::new();
    opts.insert("dtype", options.dtype.as_str().to_string());
    if let Some(l) = options.layout {
        opts.insert("layout", l.as_str().to_string());
    }
    if let Some(c) = &options.config {
        opts.insert("config", c.display().to_string());
    }
    if let Some(n) = options.num_heads {
        opts.insert("num_heads", n.to_string());
    }
    if let Some(v) = &options.vocab {
        opts.insert("vocab", v.display().to_string());
    }
    match options.lower_case {
        Some(false) => {
            opts.insert("cased", "true".into());
        }
        Some(true) => {
            opts.insert("uncased", "true".into());
        }
        None => {}
    }
    if let Some(s) = options.strip_accents {
        opts.insert("strip_accents", s.to_string());
    }
    if !options.model_card {
        opts.insert("model_card", "false".into());
    }
    if let Some(l) = &options.license {
        opts.insert("license", l.clone());
    }
    if options.force {
        opts.insert("force", "true".into());
    }
    if options.verify {
        opts.insert("verify", "true".into());
    }
    if let Some(r) = &options.reference {
        opts.insert("reference", r.display().to_string());
    }
    if options.verify || options.reference.is_some() {
        opts.insert("atol", options.tolerance.atol.to_string());
        opts.insert("rtol", options.tolerance.rtol.to_string());
    }
    opts.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
