//! Export: HuggingFace ELECTRA directories, or a TF1 ELECTRA checkpoint, to a TensorFlow
//! checkpoint in the google-research/electra pretraining layout.
//!
//! [`export`] plans every output variable before writing anything:
//! - from HF directories, each HF tensor finds its TF variable through the same declarative
//!   tables `convert` uses, read backwards ([`crate::mapping::reverse`]); the TF variable list
//!   that results is then planned *forwards* with `mapping::plan_all`, so everything
//!   `convert` checks (layer numbering, shapes, projection rules) is checked here and the
//!   export is guaranteed to convert back. The generator shares `electra/embeddings/*` when its
//!   five embedding tensors equal the discriminator's, and gets its own
//!   `generator/embeddings/*` otherwise.
//! - from a checkpoint (`--checkpoint`), every variable is kept as stored and the trainable
//!   variables (the rows of the discriminator and generator tables) get the Adam slots they lack.
//!
//! Then the variables are streamed, in name order (the order TF's Saver writes them), into a
//! staged checkpoint directory ([`crate::write::bundle`]) that is renamed into place at the end.

mod hf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mapping::{self, reverse, table, MappingError, Plan, SourceVar, Transform};
use crate::options::ModelKind;
use crate::options::Progress;
use crate::write::bundle::BundleOutput;
use crate::write::WriteError;
use hf::HfDir;
use tf_checkpoint::DType;

/// Which Adam slots to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdamSlots {
    /// None (the default for HuggingFace inputs).
    None,
    /// `<var>/adam_m` and `<var>/adam_v` filled with zeros for every trainable variable
    /// (the default for `--checkpoint`).
    Zeros,
}

/// What to export.
#[derive(Debug, Clone)]
pub enum ExportSource {
    /// HuggingFace directories: an `ElectraForPreTraining` and optionally an `ElectraForMaskedLM`.
    Hf {
        /// The `ElectraForPreTraining` directory.
        discriminator: PathBuf,
        /// The `ElectraForMaskedLM` directory, if any.
        generator: Option<PathBuf>,
    },
    /// A TF1 ELECTRA checkpoint to complete with slots and `global_step`.
    Checkpoint(PathBuf),
}

/// Everything `export` needs.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// What to read.
    pub source: ExportSource,
    /// `OUT/PREFIX`: the directory `OUT` is created with `PREFIX.index`,
    /// `PREFIX.data-00000-of-00001` and a `checkpoint` state file.
    pub output: PathBuf,
    /// `global_step` to write (default 0). With a checkpoint that has one, it must be `None`.
    pub global_step: Option<i64>,
    /// `None`: the source's default (no slots from HF, zeros from a checkpoint).
    pub adam_slots: Option<AdamSlots>,
    /// Replace a non-empty `OUT`.
    pub force: bool,
}

/// Everything that can stop an export. Nothing is left on disk after any of them.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A directory flag names something that is not a directory.
    #[error("--{role} {path}: not a directory; pass a HuggingFace model directory (config.json + model.safetensors)")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// Which flag gave it (`discriminator` or `generator`).
        role: &'static str,
    },

    /// A model directory has no config.json.
    #[error("--{role} {dir}: no config.json; pass a HuggingFace ELECTRA model directory as save_pretrained writes it")]
    NoConfig {
        /// The directory.
        dir: PathBuf,
        /// Which flag gave it (`discriminator` or `generator`).
        role: &'static str,
    },

    /// config.json cannot be read or parsed.
    #[error("{path}: {error}; fix the file or re-save the model with transformers")]
    Config {
        /// The config.json.
        path: PathBuf,
        /// What is wrong.
        error: String,
    },

    /// config.json names a `model_type` other than `electra`.
    #[error("--{role} {dir} is not an ELECTRA model ({found} in config.json, expected \"electra\"); export only writes ELECTRA checkpoints")]
    NotElectra {
        /// The directory.
        dir: PathBuf,
        /// Which flag gave it (`discriminator` or `generator`).
        role: &'static str,
        /// The `model_type` found.
        found: String,
    },

    /// A directory has no safetensors weights.
    #[error("{dir}: no model.safetensors or model.safetensors.index.json{}", if *.bin { " (only pytorch_model.bin, which is not read: load it with transformers and save_pretrained(..., safe_serialization=True))" } else { "" })]
    NoWeights {
        /// The directory.
        dir: PathBuf,
        /// Whether it holds only `pytorch_model.bin`.
        bin: bool,
    },

    /// A safetensors file or its index is unusable.
    #[error("{path}: {error}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: String,
    },

    /// A tensor could not be read.
    #[error("reading tensor {tensor:?} from {path}: {error}")]
    Read {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// What failed.
        error: String,
    },

    /// A directory holds a different class than its flag asks for.
    #[error("--{role} {dir} holds {found}, not {expected}; pass the {role} directory (the one whose config.json lists {expected})")]
    WrongModel {
        /// The directory.
        dir: PathBuf,
        /// Which flag gave it (`discriminator` or `generator`).
        role: &'static str,
        /// The class expected.
        expected: &'static str,
        /// The class found.
        found: String,
    },

    /// A directory holds tensors that the pretraining layout has no row for.
    #[error("{file}: tensor(s) {names} are not part of {class}'s pretraining layout (no row of the {kind} table); export writes only what google-research/electra's graph has")]
    UnknownTensors {
        /// The weights file.
        file: PathBuf,
        /// The model's class.
        class: &'static str,
        /// Which table (`discriminator`, `generator`).
        kind: &'static str,
        /// The unknown tensor names.
        names: String,
    },

    /// Tensors the class needs are missing.
    #[error(
        "{file}: {count} tensor(s) of {class} are missing: {list}; the directory is incomplete"
    )]
    MissingTensors {
        /// The weights file.
        file: PathBuf,
        /// The model's class.
        class: &'static str,
        /// How many are missing.
        count: usize,
        /// Their names.
        list: String,
    },

    /// A tensor has a dtype other than F32, F16 and BF16.
    #[error(
        "{file}: tensor {tensor:?} has dtype {dtype}; only F32, F16 and BF16 weights are exported"
    )]
    UnsupportedDtype {
        /// The weights file.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Its dtype.
        dtype: String,
    },

    /// The directory, read back as TF names, does not plan as a checkpoint.
    #[error("{dir} read as a TF checkpoint (HF tensors renamed through the mapping table, kernels transposed back to [in, out]) does not plan: {error}")]
    Mapping {
        /// The directory.
        dir: PathBuf,
        /// What planning found wrong.
        error: Box<MappingError>,
    },

    /// config.json disagrees with the tensors' shapes.
    #[error("{path}: {field} is {config} but the tensors say {tensors}; fix config.json (transformers would refuse to load this model)")]
    ConfigMismatch {
        /// The config.json.
        path: PathBuf,
        /// The config field.
        field: &'static str,
        /// Its value.
        config: u64,
        /// The value the tensors imply.
        tensors: u64,
    },

    /// The discriminator and generator differ in a size they must share.
    #[error("discriminator {disc_dir} and generator {gen_dir} disagree on {what}: {disc} vs {gen}; ELECTRA trains both on the same inputs, so pass a matching pair")]
    InconsistentSizes {
        /// Which size (`vocab_size`, ...).
        what: &'static str,
        /// The discriminator's value.
        disc: u64,
        /// The generator's value.
        gen: u64,
        /// The discriminator directory.
        disc_dir: PathBuf,
        /// The generator directory.
        gen_dir: PathBuf,
    },

    /// The generator's MLM decoder is not tied to its word embeddings.
    #[error("{file}: generator_lm_head.weight differs from electra.embeddings.word_embeddings.weight; google-research/electra ties the MLM decoder to the word embeddings, so an untied decoder cannot be exported")]
    UntiedDecoder {
        /// The generator's weights file.
        file: PathBuf,
    },

    /// The generator has both untied embeddings and an embedding projection, which the TF graph cannot express.
    #[error("the generator {gen_dir} has its own embeddings (they differ from the discriminator's: {differ}) and an embedding projection (embedding_size {e} != hidden_size {h}); google-research/electra's untied generator embeddings have width hidden_size and no projection, so this pair has no pretraining layout")]
    UntiedWithProjection {
        /// The generator directory.
        gen_dir: PathBuf,
        /// Which embeddings differ.
        differ: String,
        /// `embedding_size`.
        e: u64,
        /// `hidden_size`.
        h: u64,
    },

    /// The output overlaps an input directory.
    #[error("output {output} is or contains, or lies inside, the input {input}; writing (or --force replacing) it would destroy the input. Choose an -o outside every input directory")]
    OutputOverlapsInput {
        /// The output directory.
        output: PathBuf,
        /// The input it overlaps.
        input: PathBuf,
    },

    /// The `--checkpoint` source does not plan as an ELECTRA checkpoint.
    #[error("checkpoint {prefix}: {error}")]
    CheckpointMapping {
        /// The checkpoint prefix.
        prefix: PathBuf,
        /// What planning found wrong.
        error: Box<MappingError>,
    },

    /// `-o` is a bucket URL that cannot take the export (no prefix named, no bucket support in
    /// this build, no credentials, not empty without `--force`, or the upload failed; what was
    /// uploaded is deleted).
    #[error("cannot write the export to {url}")]
    BucketOutput {
        /// The output URL.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<crate::source::SourceError>,
    },

    /// The `--checkpoint` source cannot be opened or read.
    #[error("checkpoint {path}: {error}")]
    Checkpoint {
        /// The path given.
        path: PathBuf,
        /// The checkpoint error.
        error: Box<crate::source::SourceError>,
    },

    /// `--global-step` was given for a checkpoint that already stores one.
    #[error("checkpoint {prefix} already has global_step = {value}; it is kept as stored, so drop --global-step")]
    GlobalStepExists {
        /// The checkpoint prefix.
        prefix: PathBuf,
        /// The stored `global_step`.
        value: i64,
    },

    /// A variable of the `--checkpoint` source has a dtype that cannot be copied.
    #[error("checkpoint {prefix}: variable {name:?} has dtype {dtype}, which cannot be copied; export --checkpoint only rewrites checkpoints of numeric and string tensors")]
    Uncopyable {
        /// The checkpoint prefix.
        prefix: PathBuf,
        /// The variable.
        name: String,
        /// Its dtype.
        dtype: String,
    },

    /// Writing the checkpoint failed.
    #[error(transparent)]
    Write(Box<WriteError>),
}

impl From<WriteError> for ExportError {
    fn from(e: WriteError) -> Self {
        ExportError::Write(Box::new(e))
    }
}

/// One written variable, in the order of the file.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedVariable {
    /// The variable's name.
    pub name: String,
    /// Its TF dtype name.
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// `hf:<dir>:<tensor>`, `zeros`, `global_step`, or `checkpoint`.
    pub source: String,
}

/// What [`export`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    /// The prefix written (`OUT/PREFIX`).
    pub prefix: PathBuf,
    /// `shared embeddings`, `untied embeddings`, `discriminator only`, or `checkpoint`.
    pub layout: String,
    /// Number of variables written.
    pub tensors: usize,
    /// Size of the data shard.
    pub bytes: u64,
    /// The `global_step` value written.
    pub global_step: i64,
    /// Adam slots written (each of adam_m and adam_v counts).
    pub adam_slots_added: usize,
    /// Variables copied unchanged from `--checkpoint`.
    pub copied: usize,
    /// Things the user should know; the export succeeded.
    pub notes: Vec<String>,
    /// Every variable written, in file order.
    pub variables: Vec<ExportedVariable>,
    /// `--checkpoint` in a bucket: what was fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<crate::source::FetchTotals>,
    /// `-o` in a bucket: what was uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<crate::source::Uploaded>,
}

/// Where an output variable's bytes come from.
#[derive(Debug, Clone)]
enum Source {
    /// An HF tensor of model 0 (discriminator) or 1 (generator), transposed for kernels.
    Hf {
        model: usize,
        hf: String,
        transpose: bool,
    },
    Zeros,
    Step(i64),
    Ckpt,
}

#[derive(Debug, Clone)]
struct OutVar {
    dtype: DType,
    shape: Vec<u64>,
    source: Source,
}

impl OutVar {
    fn bytes(&self) -> u64 {
        let n: u64 = self.shape.iter().product();
        n * self.dtype.element_size().unwrap_or(1) as u64
    }
}

/// The slot names AdamWeightDecayOptimizer creates for `var`.
pub(crate) fn slot_names(var: &str) -> [String; 2] {
    [format!("{var}/adam_m"), format!("{var}/adam_v")]
}

/// Run an export: plan every variable (nothing is written if planning fails), then stream them
/// into a staged checkpoint directory and rename it into place. `progress` hears the total
/// byte count, then every write.
///
/// ```
/// # let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
/// # let tmp = tempfile::tempdir().unwrap();
/// use electra_convert::{export, AdamSlots, ExportOptions, ExportSource, NoProgress};
/// let expected = root.join("fixtures/electra/released/expected");
/// let options = ExportOptions {
///     source: ExportSource::Hf {
///         discriminator: expected.join("discriminator"),
///         generator: Some(expected.join("generator")),
///     },
///     output: tmp.path().join("out/model.ckpt-0"),
///     global_step: None,
///     adam_slots: Some(AdamSlots::Zeros),
///     force: false,
/// };
/// let outcome = export(&options, &mut NoProgress).unwrap();
/// assert_eq!(outcome.layout, "shared embeddings");
/// assert!(tmp.path().join("out/model.ckpt-0.index").is_file());
/// ```
pub fn export(
    options: &ExportOptions,
    progress: &mut dyn Progress,
) -> Result<ExportOutcome, ExportError> {
    match crate::source::bucket_url(&options.output) {
        Some(url) => to_bucket::export(options, url, progress),
        None => export_local(options, progress),
    }
}

/// `-o gs://bucket/run/PREFIX`: the bundle is written locally as usual, then uploaded into
/// `gs://bucket/run/`, the index and data first and the `checkpoint` state file last (TensorFlow
/// finds a checkpoint through it, so it appears only when the rest is complete). The destination
/// is checked (credentials, empty unless `--force`) before anything is read.
mod to_bucket {
    use super::*;

    #[cfg(feature = "remote")]
    pub(super) fn export(
        options: &ExportOptions,
        url: &str,
        progress: &mut dyn Progress,
    ) -> Result<ExportOutcome, ExportError> {
        use crate::source::{remote, SourceError};
        let url = url.to_string();
        let fail = |e: remote::RemoteError| ExportError::BucketOutput {
            url: url.clone(),
            source: Box::new(SourceError::Remote(Box::new(e))),
        };
        let target = remote::RemoteUrl::parse(&url).map_err(fail)?;
        let prefix = target.file_name().to_string();
        if prefix.is_empty() || url.ends_with('/') {
            return Err(fail(remote::RemoteError::InvalidUrl {
                url: url.clone(),
                reason: "name the checkpoint prefix after the directory, e.g. gs://bucket/run/model.ckpt-0".into(),
            }));
        }
        let dest = target.parent();
        let out = remote::BucketOutput::prepare(&dest, options.force).map_err(fail)?;
        let mut inner = options.clone();
        inner.output = out.local().join(&prefix);
        inner.force = false;
        let mut outcome = export_local(&inner, progress)?;
        progress.stage(&format!("uploading to {dest}"));
        // TensorFlow finds a checkpoint through its state file: it goes up last.
        outcome.uploaded = Some(out.upload(options.force, &["checkpoint"]).map_err(fail)?);
        outcome.prefix = PathBuf::from(&url);
        Ok(outcome)
    }

    #[cfg(not(feature = "remote"))]
    pub(super) fn export(
        _: &ExportOptions,
        url: &str,
        _: &mut dyn Progress,
    ) -> Result<ExportOutcome, ExportError> {
        Err(ExportError::BucketOutput {
            url: url.to_string(),
            source: Box::new(crate::source::SourceError::NoBucketSupport {
                url: url.to_string(),
            }),
        })
    }
}

/// An export into a local directory.
fn export_local(
    options: &ExportOptions,
    progress: &mut dyn Progress,
) -> Result<ExportOutcome, ExportError> {
    let plan = plan_export(options)?;
    let total = plan.vars.values().map(OutVar::bytes).sum();
    progress.begin(total);
    progress.stage(&options.output.display().to_string());
    write_export(options, plan, &mut |n| progress.advance(n))
}

struct ExportPlan {
    vars: BTreeMap<String, OutVar>,
    models: Vec<HfDir>,
    ckpt: Option<crate::source::Source>,
    layout: String,
    global_step: i64,
    slots: usize,
    notes: Vec<String>,
}

fn plan_export(options: &ExportOptions) -> Result<ExportPlan, ExportError> {
    let inputs: Vec<PathBuf> = match &options.source {
        ExportSource::Hf {
            discriminator,
            generator,
        } => std::iter::once(discriminator.clone())
            .chain(generator.clone())
            .collect(),
        ExportSource::Checkpoint(path) => {
            let dir = if path.is_dir() {
                path.clone()
            } else {
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
            };
            vec![dir]
        }
    };
    let (out_dir, _) = crate::write::bundle::split_prefix(&options.output)?;
    check_overlap(&out_dir, &inputs)?;
    crate::write::check_destination(&out_dir, options.force)?;
    match &options.source {
        ExportSource::Hf {
            discriminator,
            generator,
        } => plan_hf(options, discriminator, generator.as_deref()),
        ExportSource::Checkpoint(path) => plan_checkpoint(options, path),
    }
}

/// `path` made absolute without requiring it to exist (its existing ancestor is canonicalized).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(p) = cur.canonicalize() {
            let mut p = p;
            for part in rest.iter().rev() {
                p.push(part);
            }
            return p;
        }
        match (cur.file_name(), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                cur = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn check_overlap(out_dir: &Path, inputs: &[PathBuf]) -> Result<(), ExportError> {
    let out = absolute(out_dir);
    for input in inputs {
        let inp = absolute(input);
        if out.starts_with(&inp) || inp.starts_with(&out) {
            return Err(ExportError::OutputOverlapsInput {
                output: out_dir.to_path_buf(),
                input: input.clone(),
            });
        }
    }
    Ok(())
}

fn hf_class(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Discriminator => table::DISCRIMINATOR.class,
        _ => table::GENERATOR.class,
    }
}

/// Check that `model` is the right class for its role.
fn check_class(model: &HfDir, role: &'static str, kind: ModelKind) -> Result<(), ExportError> {
    let expected = hf_class(kind);
    let head = match kind {
        ModelKind::Discriminator => "discriminator_predictions.",
        _ => "generator_predictions.",
    };
    let ok = match &model.class {
        Some(class) => class == expected,
        None => model.tensors.keys().any(|k| k.starts_with(head)),
    };
    if ok {
        return Ok(());
    }
    let found = model.class.clone().unwrap_or_else(|| {
        let tops: BTreeSet<&str> = model
            .tensors
            .keys()
            .map(|k| k.split('.').next().unwrap_or(k))
            .collect();
        format!(
            "a model without architectures whose tensors are under {}",
            tops.into_iter().collect::<Vec<_>>().join(", ")
        )
    });
    Err(ExportError::WrongModel {
        dir: model.dir.clone(),
        role,
        expected,
        found,
    })
}

/// One model's tensors named through the table: `(TF name, HF name, transform)` per row, after
/// checking that nothing is unknown or missing.
fn model_rows(
    model: &HfDir,
    table: &table::ModelTable,
    emb: &str,
) -> Result<Vec<reverse::ConcreteRow>, ExportError> {
    let names = model.tensors.keys().map(String::as_str);
    let layers = reverse::hf_layers(table, names)
        .into_iter()
        .next_back()
        .map_or(0, |m| m + 1);
    let unused = unused_projection(model, table);
    let projection = !unused
        && model
            .tensors
            .contains_key(&reverse::hf_projection_weight(table));
    let rows = reverse::rows(table, emb, layers, projection);
    let inverse = reverse::inverse(&rows);
    let tied: BTreeSet<&str> = table.tied.iter().map(|t| t.hf).collect();
    let project_prefix = format!("{}embeddings_project.", table.hf_prefix);
    let unknown: Vec<String> = model
        .tensors
        .keys()
        .filter(|k| {
            let known = inverse.contains_key(k.as_str())
                || tied.contains(k.as_str())
                || (unused && k.starts_with(&project_prefix))
                || hf::IGNORED_SUFFIXES.iter().any(|s| k.ends_with(s));
            !known
        })
        .map(|k| format!("`{k}`"))
        .collect();
    if !unknown.is_empty() {
        return Err(ExportError::UnknownTensors {
            file: model.weights_path(),
            class: table.class,
            kind: table.kind,
            names: shorten(&unknown),
        });
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !model.tensors.contains_key(&r.hf))
        .map(|r| format!("`{}`", r.hf))
        .collect();
    if !missing.is_empty() || layers == 0 {
        let mut list = missing.clone();
        if layers == 0 {
            list.insert(0, format!("every `{}encoder.layer.*`", table.hf_prefix));
        }
        return Err(ExportError::MissingTensors {
            file: model.weights_path(),
            class: table.class,
            count: list.len(),
            list: shorten(&list),
        });
    }
    for r in &rows {
        let t = &model.tensors[&r.hf];
        if !matches!(
            t.dtype,
            safetensors::Dtype::F32 | safetensors::Dtype::F16 | safetensors::Dtype::BF16
        ) {
            return Err(ExportError::UnsupportedDtype {
                file: model.weights_path(),
                tensor: r.hf.clone(),
                dtype: format!("{:?}", t.dtype),
            });
        }
    }
    Ok(rows)
}

/// Does the directory carry an `embeddings_project` although embedding_size = hidden_size?
/// Early transformers versions always allocated one, and some hub models (google/electra-base-
/// and -large-discriminator) still ship it; transformers ignores it (unexpected keys), and so
/// does export.
fn unused_projection(model: &HfDir, table: &table::ModelTable) -> bool {
    let p = table.hf_prefix;
    let width = model
        .tensors
        .get(&format!("{p}embeddings.word_embeddings.weight"))
        .and_then(|t| t.shape.get(1).copied());
    let hidden = model
        .tensors
        .get(&format!("{p}encoder.layer.0.attention.self.query.weight"))
        .and_then(|t| t.shape.first().copied());
    model
        .tensors
        .contains_key(&reverse::hf_projection_weight(table))
        && width.is_some()
        && width == hidden
}

fn shorten(items: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

fn source_vars_of(model: &HfDir, rows: &[reverse::ConcreteRow]) -> Vec<SourceVar> {
    rows.iter()
        .map(|r| {
            let t = &model.tensors[&r.hf];
            SourceVar::new(&r.tf, &reverse::tf_shape(r, &t.shape), t.tf_dtype())
        })
        .collect()
}

/// config.json must describe the tensors (transformers would refuse the model otherwise).
fn check_config(model: &HfDir, plan: &Plan) -> Result<(), ExportError> {
    let c = &model.config;
    let d = &plan.dims;
    let fields: [(&'static str, u64, u64); 7] = [
        ("vocab_size", c.vocab_size as u64, d.vocab_size),
        ("embedding_size", c.embedding_size as u64, d.embedding_size),
        ("hidden_size", c.hidden_size as u64, d.hidden_size),
        (
            "intermediate_size",
            c.intermediate_size as u64,
            d.intermediate_size,
        ),
        (
            "num_hidden_layers",
            c.num_hidden_layers as u64,
            d.num_hidden_layers,
        ),
        (
            "max_position_embeddings",
            c.max_position_embeddings as u64,
            d.max_position_embeddings,
        ),
        (
            "type_vocab_size",
            c.type_vocab_size as u64,
            d.type_vocab_size,
        ),
    ];
    for (field, config, tensors) in fields {
        if config != tensors {
            return Err(ExportError::ConfigMismatch {
                path: c.path.clone(),
                field,
                config,
                tensors,
            });
        }
    }
    Ok(())
}

fn plan_hf(
    options: &ExportOptions,
    disc_dir: &Path,
    gen_dir: Option<&Path>,
) -> Result<ExportPlan, ExportError> {
    let disc = HfDir::open(disc_dir, "discriminator")?;
    check_class(&disc, "discriminator", ModelKind::Discriminator)?;
    let gen = match gen_dir {
        Some(dir) => {
            let g = HfDir::open(dir, "generator")?;
            check_class(&g, "generator", ModelKind::Generator)?;
            Some(g)
        }
        None => None,
    };
    let d_rows = model_rows(&disc, &table::DISCRIMINATOR, "electra")?;
    let mut notes = Vec::new();
    for (m, t) in [
        (Some(&disc), &table::DISCRIMINATOR),
        (gen.as_ref(), &table::GENERATOR),
    ] {
        if let Some(m) = m.filter(|m| unused_projection(m, t)) {
            notes.push(format!(
                "{}: electra.embeddings_project.* is left out: embedding_size equals hidden_size, so transformers never uses it (a leftover of early transformers versions)",
                m.weights_path().display()
            ));
        }
    }
    let mut vars = source_vars_of(&disc, &d_rows);
    let mut layout = "discriminator only".to_owned();
    let mut g_rows = Vec::new();
    if let Some(gen) = &gen {
        // Sizes both towers must agree on, checked on the raw embedding tables first.
        let emb = |m: &HfDir, leaf: &str| -> Option<u64> {
            m.tensors
                .get(&format!("electra.embeddings.{leaf}.weight"))
                .and_then(|t| t.shape.first().copied())
        };
        for (what, leaf) in [
            (
                "vocab_size (rows of the word embeddings)",
                "word_embeddings",
            ),
            (
                "max_position_embeddings (rows of the position embeddings)",
                "position_embeddings",
            ),
            (
                "type_vocab_size (rows of the token type embeddings)",
                "token_type_embeddings",
            ),
        ] {
            if let (Some(a), Some(b)) = (emb(&disc, leaf), emb(gen, leaf)) {
                if a != b {
                    return Err(ExportError::InconsistentSizes {
                        what,
                        disc: a,
                        gen: b,
                        disc_dir: disc.dir.clone(),
                        gen_dir: gen.dir.clone(),
                    });
                }
            }
        }
        // Shared or untied: compare the embedding section's tensors value by value.
        let shared_rows = model_rows(gen, &table::GENERATOR, "electra")?;
        let mut differ = Vec::new();
        for row in table::EMBEDDINGS.rows {
            let hf_name = mapping::fill(row.hf, "", "", "electra.", None);
            if !disc.tensors.contains_key(&hf_name) || !gen.tensors.contains_key(&hf_name) {
                continue; // reported as missing by model_rows
            }
            if !hf::same_values(&disc, &hf_name, gen, &hf_name)? {
                differ.push(hf_name);
            }
        }
        if differ.is_empty() {
            layout = "shared embeddings".to_owned();
            g_rows = shared_rows;
            let have: BTreeSet<String> = vars.iter().map(|v| v.name.clone()).collect();
            vars.extend(
                source_vars_of(gen, &g_rows)
                    .into_iter()
                    .filter(|v| !have.contains(&v.name)),
            );
        } else {
            g_rows = model_rows(gen, &table::GENERATOR, "generator")?;
            let projection = gen
                .tensors
                .contains_key(&reverse::hf_projection_weight(&table::GENERATOR));
            if projection {
                let e = gen.tensors["electra.embeddings.word_embeddings.weight"].shape[1];
                let h = gen
                    .tensors
                    .get("electra.encoder.layer.0.attention.self.query.weight")
                    .map_or(0, |t| t.shape[0]);
                return Err(ExportError::UntiedWithProjection {
                    gen_dir: gen.dir.clone(),
                    differ: differ.join(", "),
                    e,
                    h,
                });
            }
            layout = "untied embeddings".to_owned();
            notes.push(format!(
                "the generator's embeddings differ from the discriminator's ({}), so they are written untied as generator/embeddings/*: train with untied_generator_embeddings=True",
                differ.join(", ")
            ));
            vars.extend(source_vars_of(gen, &g_rows));
        }
        if gen.tensors.contains_key("generator_lm_head.weight")
            && !hf::same_values(
                gen,
                "generator_lm_head.weight",
                gen,
                "electra.embeddings.word_embeddings.weight",
            )?
        {
            return Err(ExportError::UntiedDecoder {
                file: gen.weights_path(),
            });
        }
    } else {
        notes.push("no --generator: only the discriminator's variables were written; run_pretraining.py also needs the generator (generator/*, generator_predictions/*), so pass --generator DIR to continue pretraining".to_owned());
    }

    // Plan the TF variable list forwards: what convert will read back.
    let kind = if gen.is_some() {
        ModelKind::Both
    } else {
        ModelKind::Discriminator
    };
    let plans = mapping::plan_all(kind, &vars).map_err(|error| ExportError::Mapping {
        dir: if gen.is_some() {
            PathBuf::from(format!(
                "{} + {}",
                disc.dir.display(),
                gen.as_ref()
                    .map(|g| g.dir.display().to_string())
                    .unwrap_or_default()
            ))
        } else {
            disc.dir.clone()
        },
        error: Box::new(error),
    })?;
    check_config(&disc, &plans[0])?;
    if let (Some(gen), Some(plan)) = (&gen, plans.get(1)) {
        check_config(gen, plan)?;
    }
    if let (Some(gen), Some(plan)) = (&gen, plans.get(1)) {
        let (hg, ig) = (plan.dims.hidden_size, plan.dims.intermediate_size);
        if ig != 4 * hg {
            notes.push(format!(
                "the generator {} has intermediate_size {ig}, but run_pretraining.py's get_generator_config derives 4 x hidden_size = {}; adjust it there before resuming",
                gen.dir.display(),
                4 * hg
            ));
        }
    }
    for (model, plan) in [Some(&disc), gen.as_ref()]
        .into_iter()
        .flatten()
        .zip(&plans)
    {
        if model.config.hidden_act != crate::verify::config::Activation::GeluErf {
            notes.push(format!(
                "{} uses {}; google-research/electra's graph uses exact (erf) GELU unless hidden_act is overridden, so set it in model_hparam_overrides when pretraining",
                model.dir.display(),
                model.config.hidden_act.name()
            ));
        }
        let h = plan.dims.hidden_size;
        let heads = model.config.num_attention_heads as u64;
        if heads != (h / 64).max(1) {
            notes.push(format!(
                "{} has {heads} attention heads; google-research/electra derives max(1, hidden_size/64) = {} for hidden_size {h}, so set num_attention_heads in model_hparam_overrides (or adjust get_generator_config) when pretraining",
                model.dir.display(),
                (h / 64).max(1)
            ));
        }
    }

    let mut out: BTreeMap<String, OutVar> = BTreeMap::new();
    let mut trainable = Vec::new();
    for (model, rows) in [(0usize, &d_rows), (1, &g_rows)] {
        for r in rows.iter() {
            if out.contains_key(&r.tf) {
                continue; // shared embeddings: written once, from the discriminator
            }
            let t = &[&disc, gen.as_ref().unwrap_or(&disc)][model].tensors[&r.hf];
            out.insert(
                r.tf.clone(),
                OutVar {
                    dtype: DType::Float32,
                    shape: reverse::tf_shape(r, &t.shape),
                    source: Source::Hf {
                        model,
                        hf: r.hf.clone(),
                        transpose: r.transform == Transform::Transpose,
                    },
                },
            );
            trainable.push(r.tf.clone());
        }
    }
    let half: Vec<String> = [Some(&disc), gen.as_ref()]
        .into_iter()
        .flatten()
        .flat_map(|m| {
            m.tensors
                .values()
                .filter(|t| t.dtype != safetensors::Dtype::F32)
                .take(1)
                .map(|t| format!("{} ({:?})", m.dir.display(), t.dtype))
        })
        .collect();
    if !half.is_empty() {
        notes.push(format!(
            "half-precision weights widened to float32 (the original graph is float32): {}",
            half.join(", ")
        ));
    }
    let step = options.global_step.unwrap_or(0);
    out.insert(
        "global_step".into(),
        OutVar {
            dtype: DType::Int64,
            shape: vec![],
            source: Source::Step(step),
        },
    );
    let mut slots = 0;
    if options.adam_slots == Some(AdamSlots::Zeros) {
        for name in &trainable {
            let shape = out[name].shape.clone();
            for slot in slot_names(name) {
                out.insert(
                    slot,
                    OutVar {
                        dtype: DType::Float32,
                        shape: shape.clone(),
                        source: Source::Zeros,
                    },
                );
                slots += 1;
            }
        }
    }
    let mut models = vec![disc];
    models.extend(gen);
    Ok(ExportPlan {
        vars: out,
        models,
        ckpt: None,
        layout,
        global_step: step,
        slots,
        notes,
    })
}

fn plan_checkpoint(options: &ExportOptions, path: &Path) -> Result<ExportPlan, ExportError> {
    let ckpt = crate::source::open(path).map_err(|error| ExportError::Checkpoint {
        path: path.to_path_buf(),
        error: Box::new(error),
    })?;
    if matches!(
        ckpt.form(),
        crate::source::Form::KerasH5 | crate::source::Form::TfSafetensors
    ) {
        // `--checkpoint` rewrites google-research/electra's own layout; these are transformers'.
        return Err(ExportError::CheckpointMapping {
            prefix: ckpt.prefix().to_path_buf(),
            error: Box::new(MappingError::Refused {
                what: format!("{} (transformers' Keras names, not google-research/electra's TF1 layout that `export --checkpoint` rewrites)", ckpt.form().title()),
                advice: "convert it first (`electra-convert convert --model discriminator …` and `--model generator …`), then export the HuggingFace directories with `export --discriminator DIR --generator DIR`".into(),
            }),
        });
    }
    let vars: Vec<SourceVar> = ckpt
        .tensors()
        .iter()
        .map(|t| SourceVar::new(&t.name, &t.shape, t.dtype.tf_name()))
        .collect();
    let available = mapping::available_kinds(&vars);
    let kind = [
        ModelKind::Both,
        ModelKind::Discriminator,
        ModelKind::Generator,
        ModelKind::Encoder,
    ]
    .into_iter()
    .find(|k| available.contains(k))
    .unwrap_or(ModelKind::Both);
    let plans = mapping::plan_all(kind, &vars).map_err(|error| ExportError::CheckpointMapping {
        prefix: ckpt.prefix().to_path_buf(),
        error: Box::new(error),
    })?;
    let trainable: BTreeSet<String> = plans
        .iter()
        .flat_map(|p| p.entries.iter().map(|e| e.tf.clone()))
        .collect();
    let mut out = BTreeMap::new();
    for t in ckpt.tensors() {
        if matches!(t.dtype, DType::Other(_)) {
            return Err(ExportError::Uncopyable {
                prefix: ckpt.prefix().to_path_buf(),
                name: t.name.clone(),
                dtype: t.dtype.tf_name(),
            });
        }
        out.insert(
            t.name.clone(),
            OutVar {
                dtype: t.dtype,
                shape: t.shape.clone(),
                source: Source::Ckpt,
            },
        );
    }
    let mut notes = Vec::new();
    let global_step = match ckpt.get("global_step") {
        Some(_) => {
            let value =
                ckpt.read_i64_scalar("global_step")
                    .map_err(|error| ExportError::Checkpoint {
                        path: path.to_path_buf(),
                        error: Box::new(error.into()),
                    })?;
            if options.global_step.is_some() {
                return Err(ExportError::GlobalStepExists {
                    prefix: ckpt.prefix().to_path_buf(),
                    value,
                });
            }
            value
        }
        None => {
            let step = options.global_step.unwrap_or(0);
            out.insert(
                "global_step".into(),
                OutVar {
                    dtype: DType::Int64,
                    shape: vec![],
                    source: Source::Step(step),
                },
            );
            notes.push(format!("global_step was absent; written as {step}"));
            step
        }
    };
    let mut slots = 0;
    if options.adam_slots.unwrap_or(AdamSlots::Zeros) == AdamSlots::Zeros {
        for name in &trainable {
            let shape = out[name].shape.clone();
            for slot in slot_names(name) {
                if let std::collections::btree_map::Entry::Vacant(e) = out.entry(slot) {
                    e.insert(OutVar {
                        dtype: DType::Float32,
                        shape: shape.clone(),
                        source: Source::Zeros,
                    });
                    slots += 1;
                }
            }
        }
    }
    let others: Vec<&str> = ckpt
        .tensors()
        .iter()
        .map(|t| t.name.as_str())
        .filter(|n| {
            !trainable.contains(*n)
                && *n != "global_step"
                && !n.ends_with("/adam_m")
                && !n.ends_with("/adam_v")
        })
        .collect();
    if !others.is_empty() {
        notes.push(format!(
            "kept without Adam slots (not in the pretraining tables): {}",
            others.join(", ")
        ));
    }
    if kind != ModelKind::Both {
        notes.push(format!(
            "the checkpoint holds no complete discriminator + generator pair (planned as --model {}); run_pretraining.py needs both",
            kind.as_str()
        ));
    }
    // From a bucket: every tensor is copied, so every tensor is fetched (once, before writing).
    ckpt.prefetch(ckpt.tensors().iter().map(|t| t.name.as_str()))
        .map_err(|error| ExportError::Checkpoint {
            path: path.to_path_buf(),
            error: Box::new(error),
        })?;
    Ok(ExportPlan {
        vars: out,
        models: Vec::new(),
        ckpt: Some(ckpt),
        layout: "checkpoint".into(),
        global_step,
        slots,
        notes,
    })
}

/// One row of [`reverse_map`]: an HF tensor and the TF variable `export` writes for it.
#[derive(Debug, Clone, Serialize)]
pub struct ReverseEntry {
    /// The HF tensor name.
    pub hf: String,
    /// The TF variable name.
    pub tf: String,
    /// The forward transform (`transpose` is undone by transposing again).
    pub transform: Transform,
    /// The HF tensor's shape.
    pub hf_shape: Vec<u64>,
    /// The TF variable's shape.
    pub tf_shape: Vec<u64>,
    /// safetensors dtype of the HF tensor (written as float32).
    pub dtype: String,
}

/// The reverse mapping of one HF directory, as `map` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ReverseMap {
    /// The HF directory.
    pub directory: PathBuf,
    /// Its transformers class.
    pub class: &'static str,
    /// In TF name order (the order of the checkpoint).
    pub entries: Vec<ReverseEntry>,
    /// HF tensors not written: tied to another tensor, or buffers.
    pub not_written: Vec<String>,
}

/// How `export` maps the tensors of one HF directory (`kind` discriminator or generator), with
/// the same checks. A generator is shown with the shared `electra/embeddings`; whether a pair
/// is shared or untied is decided by [`export`] from both directories.
pub fn reverse_map(dir: &Path, kind: ModelKind) -> Result<ReverseMap, ExportError> {
    let (role, table) = match kind {
        ModelKind::Generator => ("generator", &table::GENERATOR),
        _ => ("discriminator", &table::DISCRIMINATOR),
    };
    let model = HfDir::open(dir, role)?;
    check_class(&model, role, kind)?;
    let rows = model_rows(&model, table, "electra")?;
    let vars = source_vars_of(&model, &rows);
    let plan = mapping::plan(kind, &vars).map_err(|error| ExportError::Mapping {
        dir: dir.to_path_buf(),
        error: Box::new(error),
    })?;
    check_config(&model, &plan)?;
    let mut entries: Vec<ReverseEntry> = rows
        .iter()
        .map(|r| {
            let t = &model.tensors[&r.hf];
            ReverseEntry {
                hf: r.hf.clone(),
                tf: r.tf.clone(),
                transform: r.transform,
                hf_shape: t.shape.clone(),
                tf_shape: reverse::tf_shape(r, &t.shape),
                dtype: format!("{:?}", t.dtype),
            }
        })
        .collect();
    entries.sort_by(|a, b| a.tf.as_bytes().cmp(b.tf.as_bytes()));
    let mapped: BTreeSet<&str> = rows.iter().map(|r| r.hf.as_str()).collect();
    let not_written = model
        .tensors
        .keys()
        .filter(|k| !mapped.contains(k.as_str()))
        .cloned()
        .collect();
    Ok(ReverseMap {
        directory: dir.to_path_buf(),
        class: table.class,
        entries,
        not_written,
    })
}

/// Bytes per write of zeros.
const ZERO_PIECE: usize = 1 << 20;

fn write_export(
    options: &ExportOptions,
    plan: ExportPlan,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportOutcome, ExportError> {
    let mut output = BundleOutput::begin(&options.output, options.force)?;
    let zeros = vec![0u8; ZERO_PIECE];
    let (mut raw, mut piece, mut buf) = (Vec::new(), Vec::new(), Vec::new());
    let mut variables = Vec::with_capacity(plan.vars.len());
    let mut copied = 0;
    for (name, var) in &plan.vars {
        let describe = write_one(
            &mut output,
            &plan,
            name,
            var,
            &zeros,
            (&mut raw, &mut piece, &mut buf),
            progress,
        )?;
        if matches!(var.source, Source::Ckpt) {
            copied += 1;
        }
        variables.push(ExportedVariable {
            name: name.clone(),
            dtype: var.dtype.tf_name(),
            shape: var.shape.clone(),
            source: describe,
        });
    }
    let bytes = output.writer().data_len();
    let prefix = output.commit()?;
    let fetched = plan.ckpt.as_ref().and_then(|c| c.fetched());
    Ok(ExportOutcome {
        fetched,
        uploaded: None,
        prefix,
        layout: plan.layout,
        tensors: variables.len(),
        bytes,
        global_step: plan.global_step,
        adam_slots_added: plan.slots,
        copied,
        notes: plan.notes,
        variables,
    })
}

type Buffers<'a> = (&'a mut Vec<u8>, &'a mut Vec<u8>, &'a mut Vec<u8>);

fn write_one(
    output: &mut BundleOutput,
    plan: &ExportPlan,
    name: &str,
    var: &OutVar,
    zeros: &[u8],
    (raw, piece, buf): Buffers<'_>,
    progress: &mut dyn FnMut(u64),
) -> Result<String, ExportError> {
    let werr = |output: &BundleOutput, e| ExportError::Write(Box::new(output.error(e)));
    match &var.source {
        Source::Step(step) => {
            output
                .writer()
                .add(name, DType::Int64, &[], &step.to_le_bytes())
                .map_err(|e| werr(output, e))?;
            progress(8);
            Ok("global_step".into())
        }
        Source::Zeros => {
            let mut left = var.bytes();
            let mut t = match output.writer().begin(name, DType::Float32, &var.shape) {
                Ok(t) => t,
                Err(e) => return Err(werr(output, e)),
            };
            let mut failed = None;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                if let Err(e) = t.write(&zeros[..n]) {
                    failed = Some(e);
                    break;
                }
                progress(n as u64);
                left -= n as u64;
            }
            let result = match failed {
                Some(e) => Err(e),
                None => t.finish(),
            };
            result.map_err(|e| werr(output, e))?;
            Ok("zeros".into())
        }
        Source::Hf {
            model,
            hf,
            transpose,
        } => {
            let m = &plan.models[*model];
            let source = format!("hf:{}:{hf}", m.dir.display());
            if *transpose {
                // HF [out, in] -> TF [in, out].
                let hf_shape = &m.tensors[hf].shape;
                let (rows, cols) = (hf_shape[0] as usize, hf_shape[1] as usize);
                let words = m.read_f32_words(hf, raw)?;
                let mut dst = vec![0u32; words.len()];
                crate::kernels::transpose_words(&words, rows, cols, &mut dst);
                drop(words);
                let mut t = match output.writer().begin(name, DType::Float32, &var.shape) {
                    Ok(t) => t,
                    Err(e) => return Err(werr(output, e)),
                };
                let mut failed = None;
                for chunk in dst.chunks(ZERO_PIECE / 4) {
                    buf.clear();
                    for w in chunk {
                        buf.extend_from_slice(&w.to_le_bytes());
                    }
                    if let Err(e) = t.write(buf) {
                        failed = Some(e);
                        break;
                    }
                    progress(buf.len() as u64);
                }
                let result = match failed {
                    Some(e) => Err(e),
                    None => t.finish(),
                };
                result.map_err(|e| werr(output, e))?;
            } else {
                let mut t = match output.writer().begin(name, DType::Float32, &var.shape) {
                    Ok(t) => t,
                    Err(e) => return Err(werr(output, e)),
                };
                let mut failed = None;
                let read = m.read_f32_pieces(hf, raw, piece, |bytes| match t.write(bytes) {
                    Ok(()) => {
                        progress(bytes.len() as u64);
                        Ok(())
                    }
                    Err(e) => {
                        let stop = ExportError::from(WriteError::Bundle {
                            prefix: PathBuf::from(name),
                            error: e.to_string(),
                        });
                        failed = Some(e);
                        Err(stop)
                    }
                });
                if let Some(e) = failed {
                    return Err(werr(output, e));
                }
                read?;
                t.finish().map_err(|e| werr(output, e))?;
            }
            Ok(source)
        }
        Source::Ckpt => {
            let ckpt = plan.ckpt.as_ref().expect("checkpoint source");
            if var.dtype == DType::String {
                let strings = ckpt
                    .read_strings(name)
                    .map_err(|error| ExportError::Checkpoint {
                        path: ckpt.prefix().to_path_buf(),
                        error: Box::new(error.into()),
                    })?;
                let refs: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
                output
                    .writer()
                    .add_strings(name, &var.shape, &refs)
                    .map_err(|e| werr(output, e))?;
                return Ok("checkpoint".into());
            }
            let mut t = match output.writer().begin(name, var.dtype, &var.shape) {
                Ok(t) => t,
                Err(e) => return Err(werr(output, e)),
            };
            let mut failed = None;
            let read = ckpt.read_chunks(name, ZERO_PIECE, buf, |bytes| {
                t.write(bytes).map_err(|e| {
                    failed = Some(e);
                })?;
                progress(bytes.len() as u64);
                Ok::<(), ()>(())
            });
            if let Some(e) = failed {
                return Err(werr(output, e));
            }
            if let Err(tf_checkpoint::ChunkError::Read(error)) = read {
                return Err(ExportError::Checkpoint {
                    path: ckpt.prefix().to_path_buf(),
                    error: Box::new(error.into()),
                });
            }
            t.finish().map_err(|e| werr(output, e))?;
            Ok("checkpoint".into())
        }
    }
}
