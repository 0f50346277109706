//! ELECTRA forward pass in candle and the parity checks built on it.
//!
//! Two checks share one implementation of the network ([`model`]):
//!
//! * [`verify_against_reference`] runs the converted directory (`config.json` +
//!   `model.safetensors`) on the inputs of a reference file and compares with the outputs stored
//!   there (typically written by transformers).
//! * [`verify_against_checkpoint`] runs the converted directory *and* the original TF checkpoint —
//!   its weights read by their own TF names, in TF layout, without the mapping module — on the same
//!   seeded inputs and compares the two. A wrong or swapped mapping entry shows up here.
//!
//! Comparison rule: numpy's `allclose`, `|ours - expected| <= atol + rtol * |expected|` for every
//! element, at every position including padded ones (transformers computes those too).
//!
//! Memory: both checks stream. Every tensor's presence and shape is checked from the file
//! headers first; then the forward pass runs stage by stage (embeddings, each encoder layer, the
//! head), and each stage reads its weights — by HF names from `model.safetensors`, by TF names
//! from the checkpoint — uses them and drops them. Peak memory is one stage's weights plus the
//! activations, whatever the depth of the model (figures in docs/performance.md).

#[doc(hidden)]
pub mod bench;
pub mod compare;
pub mod config;
mod fetching;
pub(crate) mod hf;
pub mod model;
pub mod npy;
pub mod reference;
pub mod text;
mod tf;
mod tf2;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use self::compare::{compare, shape_mismatch, Agreement};
use self::config::{Architecture, ModelConfig};
use self::hf::HfWeights;
use self::model::{forward_pair, Batch, Numerics, Outputs, Tower};

pub use self::hf::{listed_weight_files, ShardIndexError};
pub use self::npy::parse_npy;
pub use self::reference::{read_reference, read_reference_bytes};
pub use self::text::{read_text_file, run_texts, TextReport};
pub use self::tf::TfVariables;
pub use crate::options::Tolerance;

/// The outcome of one parity check.
#[derive(serde::Serialize, Clone, Debug)]
pub struct ParityReport {
    /// Every output within tolerance.
    pub passed: bool,
    /// `"reference"` or `"checkpoint"`.
    pub mode: String,
    /// The model directory checked.
    pub model_dir: PathBuf,
    /// The reference file or the checkpoint compared against.
    pub against: PathBuf,
    /// transformers class of the model directory.
    pub architecture: String,
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// The comparison rule, spelled out.
    pub rule: String,
    /// `[batch, seq]` of the inputs.
    pub batch: [usize; 2],
    /// Seed of the generated inputs (checkpoint mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Each output compared, by name (`logits`, `last_hidden_state`).
    pub outputs: BTreeMap<String, OutputComparison>,
    /// Observations worth knowing (re-tied weights, structure differences, ...).
    pub notes: Vec<String>,
    /// Checkpoint mode, Model Garden generator: how far the original's own masked-LM head
    /// (tanh GELU) is from the converted model, which transformers runs with the erf GELU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_head: Option<HeadDeviation>,
    /// Checkpoint mode on a checkpoint in a bucket: what the check fetched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<crate::source::FetchTotals>,
}

/// The measured effect of a head transformers cannot represent (reported, not judged).
#[derive(serde::Serialize, Clone, Debug)]
pub struct HeadDeviation {
    /// The original head's activation.
    pub activation: String,
    /// Largest |converted − original-with-its-own-head| over the logits.
    pub max_abs_diff: f64,
    /// Largest |logit| of the original.
    pub max_abs_output: f64,
}

/// How one output compares.
#[derive(serde::Serialize, Clone, Debug)]
pub struct OutputComparison {
    /// Largest `|ours - expected|` (NaN if either side has a NaN).
    pub max_abs_diff: f64,
    /// Largest `|ours - expected| / |expected|` over elements with `expected != 0`.
    pub max_rel_diff: f64,
    /// Agreement fraction in [0, 1] (see `agreement`), where it applies.
    pub argmax_agreement: Option<f64>,
    /// What `argmax_agreement` measures.
    pub agreement: Option<String>,
    /// Whether this output is within tolerance.
    pub passed: bool,
    /// The output's shape.
    pub shape: Vec<usize>,
    /// Elements outside tolerance.
    pub mismatched: usize,
    /// Index of the element furthest outside (or closest to) its tolerance.
    pub worst_index: Option<Vec<usize>>,
}

impl ParityReport {
    /// A human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}) vs {} {}",
            self.model_dir.display(),
            self.architecture,
            self.mode,
            self.against.display()
        );
        let seed = self.seed.map(|s| format!(", seed {s}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "inputs [{}, {}]{seed}; pass when |ours - expected| <= {:e} + {:e}·|expected| everywhere",
            self.batch[0], self.batch[1], self.tolerance.atol, self.tolerance.rtol
        );
        for (name, c) in &self.outputs {
            let agreement = match (&c.argmax_agreement, &c.agreement) {
                (Some(a), Some(what)) => format!(", agreement {:.2}% ({what})", a * 100.0),
                (None, Some(what)) => format!(" ({what})"),
                _ => String::new(),
            };
            let mismatch = if c.mismatched > 0 {
                let at = c
                    .worst_index
                    .as_ref()
                    .map(|i| format!(", worst at {i:?}"))
                    .unwrap_or_default();
                format!(", {} elements out of tolerance{at}", c.mismatched)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {name} {:?}: max abs diff {:.3e}, max rel diff {:.3e}{agreement}{mismatch}  {}",
                c.shape,
                c.max_abs_diff,
                c.max_rel_diff,
                if c.passed { "ok" } else { "FAIL" }
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        let _ = write!(
            out,
            "{}",
            if self.passed {
                "parity: passed"
            } else {
                "parity: FAILED"
            }
        );
        out
    }
}

/// Everything that can stop a parity check before it produces a verdict.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    // The OS error is embedded in the message, not chained as `source()`, so `{:#}` does not
    // print it twice.
    /// A file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// config.json is unusable.
    #[error("{}: {message}", path.display())]
    Config {
        /// The config.json.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A safetensors file or its index is unusable.
    #[error("{}: {message}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor the architecture needs is missing.
    #[error("{}: tensor {key} is missing; the model directory is incomplete or for another architecture (re-run convert)", file.display())]
    MissingTensor {
        /// The weights file.
        file: PathBuf,
        /// The tensor's name.
        key: String,
    },
    /// Tensors that belong to no parameter of the architecture.
    #[error("{}: unexpected tensor(s) {}; they belong to no parameter of this architecture (check config.json's architectures and embedding_size/hidden_size)", file.display(), keys.join(", "))]
    UnexpectedTensors {
        /// The weights file.
        file: PathBuf,
        /// Their names.
        keys: Vec<String>,
    },
    /// A tensor's shape disagrees with config.json.
    #[error("{}: tensor {key} has shape {found:?}, expected {expected:?} from config.json", file.display())]
    TensorShape {
        /// The weights file.
        file: PathBuf,
        /// The tensor's name.
        key: String,
        /// The shape config.json implies.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A tensor has a dtype that cannot be read.
    #[error("{}: tensor {key} has dtype {dtype}; weights must be F32, F16, BF16 or F64", file.display())]
    TensorDtype {
        /// The weights file.
        file: PathBuf,
        /// The tensor's name.
        key: String,
        /// Its dtype.
        dtype: String,
    },
    /// The model class cannot be told from config.json or the tensor names.
    #[error("{}: cannot tell the architecture: config.json has no architectures entry and the tensor names match none of ElectraForPreTraining, ElectraForMaskedLM, ElectraModel", dir.display())]
    UnknownArchitecture {
        /// The model directory.
        dir: PathBuf,
    },
    /// The reference file is unusable.
    #[error("reference {}: {message}", path.display())]
    Reference {
        /// The reference file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The reference is well-formed but holds outputs this model class does not produce.
    #[error("reference {}: {message}", path.display())]
    ReferenceMismatch {
        /// The reference file.
        path: PathBuf,
        /// What does not fit.
        message: String,
    },
    /// The checkpoint compared against is unusable.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A variable the forward pass needs is missing from the checkpoint.
    #[error("checkpoint {}: variable {name} is missing ({hint})", path.display())]
    MissingVariable {
        /// The checkpoint.
        path: PathBuf,
        /// The variable.
        name: String,
        /// What may explain it.
        hint: String,
    },
    /// A checkpoint variable's shape disagrees with the model's.
    #[error("checkpoint {}: variable {name} has shape {found:?}, expected {expected:?}", path.display())]
    VariableShape {
        /// The checkpoint.
        path: PathBuf,
        /// The variable.
        name: String,
        /// The shape expected.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
    },
    /// The forward pass itself failed.
    #[error("forward pass failed: {message}")]
    Compute {
        /// The error from candle.
        message: String,
    },
    /// `--text` on a directory without tokenizer files.
    #[error("{}: no tokenizer (neither tokenizer.json nor vocab.txt), and --text tokenizes with the model directory's own; convert again with --vocab VOCAB.txt (the vocabulary the model was trained with), or copy that vocab.txt (and tokenizer_config.json) into the directory", dir.display())]
    NoTokenizer {
        /// The model directory.
        dir: PathBuf,
    },
    /// The tokenizer files are unusable.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The tokenizer has more tokens than the model has embeddings.
    #[error("tokenizer {}: {tokens} tokens, but the model's vocab_size is {vocab_size}: ids from {vocab_size} on would have no embedding; this tokenizer belongs to another model (convert again with the right --vocab)", path.display())]
    TokenizerVocab {
        /// The tokenizer file.
        path: PathBuf,
        /// Its number of tokens.
        tokens: usize,
        /// The model's `vocab_size`.
        vocab_size: usize,
    },
    /// A `--text` is empty.
    #[error("text {index} is empty; give the model at least one word")]
    EmptyText {
        /// Which text (1-based).
        index: usize,
    },
    /// A `--text` is longer than the model's positions allow (with `--no-truncate`).
    #[error("text {index} has {tokens} tokens, more than max_position_embeddings {max_positions}; shorten it, or drop --no-truncate to use its first {max_positions} tokens")]
    TextTooLong {
        /// Which text (1-based).
        index: usize,
        /// Its number of tokens.
        tokens: usize,
        /// `max_position_embeddings`.
        max_positions: usize,
    },
    /// The `--text-file` cannot be read or parsed.
    #[error("text file {}: {message}", path.display())]
    TextFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The converted directory, opened and checked for the forward pass (weights not yet read).
struct Converted {
    arch: Architecture,
    config: ModelConfig,
    tower: Tower,
    weights: HfWeights,
    notes: Vec<String>,
}

fn load_converted(model_dir: &Path) -> Result<Converted, VerifyError> {
    let config_path = model_dir.join("config.json");
    let models: Vec<String> = ["discriminator", "generator"]
        .iter()
        .map(|sub| model_dir.join(sub))
        .filter(|sub| sub.join("config.json").is_file())
        .map(|sub| sub.display().to_string())
        .collect();
    if !config_path.exists() && !models.is_empty() {
        return Err(VerifyError::Config {
            path: config_path,
            message: format!(
                "missing; {} is a --model both output: verify each model directory ({}) on its own",
                model_dir.display(),
                models.join(", ")
            ),
        });
    }
    let config = ModelConfig::load(&config_path)?;
    let mut weights = HfWeights::open(model_dir)?;
    let arch = match config.architecture {
        Some(arch) => arch,
        None => {
            Architecture::from_keys(weights.keys()).ok_or(VerifyError::UnknownArchitecture {
                dir: model_dir.to_path_buf(),
            })?
        }
    };
    weights.set_architecture(arch);
    let tower = Tower::new(
        HfWeights::dims(&config),
        model::HeadKind::of(arch),
        Numerics::transformers(config.layer_norm_eps, config.hidden_act),
    );
    tower.check_weights(&mut weights)?;
    let unused = weights.unused_keys();
    if !unused.is_empty() {
        return Err(VerifyError::UnexpectedTensors {
            file: weights.file().to_path_buf(),
            keys: unused,
        });
    }
    let mut notes = Vec::new();
    if config.architecture.is_none() {
        notes.push(format!(
            "config.json has no architectures; {} inferred from the tensor names",
            arch.class_name()
        ));
    }
    if weights.retied {
        notes.push(
            "generator_lm_head.weight is not stored; tied to the word embeddings as transformers does"
                .into(),
        );
    }
    Ok(Converted {
        arch,
        config,
        tower,
        weights,
        notes,
    })
}

struct Flat {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn flatten(t: &candle_core::Tensor) -> Result<Flat, VerifyError> {
    let shape = t.dims().to_vec();
    let values = t
        .flatten_all()
        .and_then(|f| f.to_vec1::<f32>())
        .map_err(model::candle_error)?;
    Ok(Flat { shape, values })
}

fn outputs_by_name(outputs: &Outputs) -> Result<BTreeMap<&'static str, Flat>, VerifyError> {
    let mut map = BTreeMap::new();
    map.insert("last_hidden_state", flatten(&outputs.last_hidden_state)?);
    if let Some(logits) = &outputs.logits {
        map.insert("logits", flatten(logits)?);
    }
    Ok(map)
}

fn agreement_for(name: &str, shape: &[usize]) -> Agreement {
    match (name, shape.len()) {
        ("logits", 3) => Agreement::ArgmaxLastAxis,
        ("logits", 2) => Agreement::Sign,
        _ => Agreement::None,
    }
}

const RULE: &str =
    "numpy allclose: |ours - expected| <= atol + rtol * |expected| for every element, \
                    at all positions including padded ones; NaN never matches";

/// Run the converted model on the inputs stored in `reference` and compare with its outputs.
pub fn verify_against_reference(
    model_dir: &Path,
    reference: &Path,
    tol: Tolerance,
) -> Result<ParityReport, VerifyError> {
    let mut converted = load_converted(model_dir)?;
    let reference = read_reference(reference)?;
    let ref_path = reference.path.clone();
    let reference = reference.into_reference()?;
    let bad = |message: String| VerifyError::Reference {
        path: ref_path.clone(),
        message,
    };
    converted
        .tower
        .check_batch(&reference.batch)
        .map_err(&bad)?;
    let mismatch = |message: String| VerifyError::ReferenceMismatch {
        path: ref_path.clone(),
        message,
    };
    for (name, _, _) in &reference.expected {
        if name == "logits" && converted.arch == Architecture::Model {
            return Err(mismatch(
                "it holds logits, but an ElectraModel directory has no head (only last_hidden_state can be compared)"
                    .into(),
            ));
        }
    }
    let outputs = converted
        .tower
        .forward(&mut converted.weights, &reference.batch)?;
    let ours = outputs_by_name(&outputs)?;
    let mut comparisons = BTreeMap::new();
    for (name, shape, values) in &reference.expected {
        let Some(flat) = ours.get(name.as_str()) else {
            continue;
        };
        if &flat.shape != shape {
            return Err(mismatch(format!(
                "{name} has shape {shape:?}, but this {} computes {:?}",
                converted.arch.class_name(),
                flat.shape
            )));
        }
        let agreement = agreement_for(name, shape);
        comparisons.insert(
            name.clone(),
            compare(&flat.values, values, shape, tol, agreement),
        );
    }
    let passed = comparisons.values().all(|c| c.passed);
    Ok(ParityReport {
        passed,
        mode: "reference".into(),
        model_dir: model_dir.to_path_buf(),
        against: ref_path,
        architecture: converted.arch.class_name().into(),
        tolerance: tol,
        rule: RULE.into(),
        batch: [reference.batch.batch, reference.batch.seq],
        seed: None,
        outputs: comparisons,
        notes: converted.notes,
        original_head: None,
        fetched: None,
    })
}

/// Read and validate a reference file without running anything (to fail fast before a conversion).
pub fn check_reference(reference: &Path) -> Result<(), VerifyError> {
    read_reference(reference)?.into_reference().map(|_| ())
}

/// Run the converted model and the original checkpoint (by TF names, TF layout) on the same
/// seeded inputs and compare.
pub fn verify_against_checkpoint(
    model_dir: &Path,
    checkpoint: &Path,
    tol: Tolerance,
    seed: u64,
) -> Result<ParityReport, VerifyError> {
    let converted = load_converted(model_dir)?;
    let opening = |e: crate::source::SourceError| VerifyError::Checkpoint {
        path: checkpoint.to_path_buf(),
        message: e.to_string(),
    };
    let ckpt = crate::source::open(checkpoint).map_err(opening)?;
    let mut report = verify_opened(model_dir, converted, &ckpt, tol, seed)?;
    report.fetched = ckpt.fetched();
    Ok(report)
}

/// [`verify_against_checkpoint`] on a source already open (and, from a bucket, holding the
/// tensors the check reads: `convert --verify` reuses what the conversion fetched).
pub fn verify_against_source(
    model_dir: &Path,
    ckpt: &crate::source::Source,
    tol: Tolerance,
    seed: u64,
) -> Result<ParityReport, VerifyError> {
    let converted = load_converted(model_dir)?;
    verify_opened(model_dir, converted, ckpt, tol, seed)
}

fn verify_opened(
    model_dir: &Path,
    converted: Converted,
    ckpt: &crate::source::Source,
    tol: Tolerance,
    seed: u64,
) -> Result<ParityReport, VerifyError> {
    let unusable = |e: tf_checkpoint::CheckpointError| VerifyError::Checkpoint {
        path: PathBuf::from(ckpt.location()),
        message: e.to_string(),
    };
    // Reports name the checkpoint as the user did (a URL, `x.zip#inner`), not a local copy.
    let named = |mut report: ParityReport| {
        report.against = PathBuf::from(ckpt.location());
        report
    };
    // From a bucket, the check fetches what it reads (the tower it checks) as it goes.
    let variables = fetching::FetchingVariables::new(ckpt);
    let Some(graph) = ckpt.object_graph().map_err(unusable)? else {
        return verify_converted_against_tf(model_dir, converted, &variables, tol, seed).map(named);
    };
    // A TF2 object-based checkpoint: the producer's own object names.
    let producer = tf2::producer(&graph).ok_or_else(|| VerifyError::Checkpoint {
        path: PathBuf::from(ckpt.location()),
        message: format!(
            "an object-based checkpoint with root objects {:?} is neither a Model Garden ElectraPretrainer nor an NVIDIA TF2 ELECTRA checkpoint; `electra-convert inspect` shows what it is",
            graph.root_edges()
        ),
    })?;
    let mut original = tf2::load_original(
        &variables,
        &graph,
        producer,
        converted.arch,
        converted.config.num_attention_heads,
    )?;
    let head_act = original.original_head_act;
    compare_with_original(
        model_dir,
        converted,
        OriginalSide {
            tower: &original.tower,
            weights: &mut original.weights,
            scope: &original.scope,
            notes: std::mem::take(&mut original.notes),
            own_head: head_act,
        },
        ckpt.prefix(),
        tol,
        seed,
    )
    .map(named)
}

fn verify_converted_against_tf(
    model_dir: &Path,
    converted: Converted,
    variables: &dyn TfVariables,
    tol: Tolerance,
    seed: u64,
) -> Result<ParityReport, VerifyError> {
    let mut original = tf::load_original(
        variables,
        converted.arch,
        converted.config.num_attention_heads,
    )?;
    compare_with_original(
        model_dir,
        converted,
        OriginalSide {
            tower: &original.tower,
            weights: &mut original.weights,
            scope: &original.scope,
            notes: std::mem::take(&mut original.notes),
            own_head: None,
        },
        variables.path(),
        tol,
        seed,
    )
}

/// The original network of a checkpoint check, whichever layout it was read in.
struct OriginalSide<'a> {
    tower: &'a model::Tower,
    weights: model::SendProvider<'a>,
    /// The tower that was run, for messages.
    scope: &'a str,
    notes: Vec<String>,
    /// The original generator head's own activation when transformers cannot represent it
    /// (Model Garden's tanh GELU): measured and reported, not judged.
    own_head: Option<config::Activation>,
}

/// Run the converted model and the original stage by stage on the seeded batch and compare.
fn compare_with_original(
    model_dir: &Path,
    mut converted: Converted,
    original: OriginalSide<'_>,
    against: &Path,
    tol: Tolerance,
    seed: u64,
) -> Result<ParityReport, VerifyError> {
    let mut notes = converted.notes;
    notes.extend(original.notes);
    let hf_dims = converted.tower.dims().clone();
    let tf_dims = original.tower.dims().clone();
    let mut structure_ok = true;
    for (what, hf, tf) in [
        ("vocab_size", hf_dims.vocab, tf_dims.vocab),
        ("embedding_size", hf_dims.embedding, tf_dims.embedding),
        ("hidden_size", hf_dims.hidden, tf_dims.hidden),
        (
            "intermediate_size",
            hf_dims.intermediate,
            tf_dims.intermediate,
        ),
        ("num_hidden_layers", hf_dims.layers, tf_dims.layers),
        ("type_vocab_size", hf_dims.type_vocab, tf_dims.type_vocab),
    ] {
        if hf != tf {
            structure_ok = false;
            notes.push(format!(
                "{what}: the converted model has {hf}, the checkpoint's {} tower has {tf}",
                original.scope
            ));
        }
    }
    let batch = seeded_batch(
        seed,
        hf_dims.vocab.min(tf_dims.vocab),
        hf_dims.max_positions.min(tf_dims.max_positions),
        hf_dims.type_vocab.min(tf_dims.type_vocab),
        converted.config.pad_token_id.unwrap_or(0) as u32,
    );
    let (ours, theirs, own) = match original.own_head {
        None => {
            let [ours, theirs] = forward_pair(
                (&converted.tower, &mut converted.weights),
                (original.tower, original.weights),
                &batch,
            )?;
            (ours, theirs, None)
        }
        Some(act) => {
            let alternative = original.tower.with_generator_activation(act);
            let [ours, theirs, own] = model::forward_pair_with_alternative_head(
                (&converted.tower, &mut converted.weights),
                (original.tower, original.weights),
                &alternative,
                &batch,
            )?;
            (ours, theirs, Some(own))
        }
    };
    let ours = outputs_by_name(&ours)?;
    let theirs = outputs_by_name(&theirs)?;
    let mut comparisons = BTreeMap::new();
    for (name, flat) in &ours {
        let Some(expected) = theirs.get(name) else {
            continue;
        };
        let comparison = if flat.shape != expected.shape {
            shape_mismatch(&flat.shape, &expected.shape)
        } else {
            let values: Vec<f64> = expected.values.iter().map(|&v| v as f64).collect();
            compare(
                &flat.values,
                &values,
                &flat.shape,
                tol,
                agreement_for(name, &flat.shape),
            )
        };
        comparisons.insert(name.to_string(), comparison);
    }
    let passed = structure_ok && comparisons.values().all(|c| c.passed);
    let mut original_head = None;
    if let Some(own) = own {
        let own = outputs_by_name(&own)?;
        if let (Some(ours), Some(own)) = (ours.get("logits"), own.get("logits")) {
            if ours.shape == own.shape {
                let (mut max_abs, mut max_out) = (0f64, 0f64);
                for (a, b) in ours.values.iter().zip(&own.values) {
                    max_abs = max_abs.max((f64::from(*a) - f64::from(*b)).abs());
                    max_out = max_out.max(f64::from(*b).abs());
                }
                notes.push(format!(
                    "the original Model Garden masked-LM head applies the tanh GELU, which transformers' ElectraGeneratorPredictions cannot (it always applies the exact erf GELU): this check runs the original with transformers' head; with its own head the original's logits differ from the converted model's by up to {max_abs:.3e} (logits up to {max_out:.3e} in magnitude). The weights are exact"
                ));
                original_head = Some(HeadDeviation {
                    activation: "gelu_tanh".into(),
                    max_abs_diff: max_abs,
                    max_abs_output: max_out,
                });
            }
        }
    }
    Ok(ParityReport {
        passed,
        mode: "checkpoint".into(),
        model_dir: model_dir.to_path_buf(),
        against: against.to_path_buf(),
        architecture: converted.arch.class_name().into(),
        tolerance: tol,
        rule: RULE.into(),
        batch: [batch.batch, batch.seq],
        seed: Some(seed),
        outputs: comparisons,
        notes,
        original_head,
        fetched: None,
    })
}

/// xorshift64* — small, deterministic, good enough for token ids.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        // splitmix64 of the seed, so seed 0 works and nearby seeds diverge.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 1 } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 32) as usize * n) >> 32
    }
}

/// The checkpoint-mode inputs: 2 rows of up to 16 tokens; row 1 has its last quarter padded;
/// two segments (the second half is segment 1 when the model has two token types).
pub(crate) fn seeded_batch(
    seed: u64,
    vocab: usize,
    max_positions: usize,
    type_vocab: usize,
    pad_id: u32,
) -> Batch {
    let (b, s) = (2, max_positions.clamp(1, 16));
    let mut rng = XorShift::new(seed);
    let pad_from = s - s / 4;
    let mut batch = Batch {
        batch: b,
        seq: s,
        input_ids: Vec::with_capacity(b * s),
        attention_mask: Vec::with_capacity(b * s),
        token_type_ids: Vec::with_capacity(b * s),
    };
    for row in 0..b {
        for pos in 0..s {
            let padded = row == 1 && pos >= pad_from;
            let id = if padded && (pad_id as usize) < vocab {
                pad_id
            } else {
                rng.below(vocab.max(1)) as u32
            };
            batch.input_ids.push(id);
            batch.attention_mask.push(u8::from(!padded));
            batch
                .token_type_ids
                .push(u32::from(type_vocab >= 2 && pos >= s / 2));
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_batch_shape() {
        let b = seeded_batch(7, 80, 32, 2, 0);
        assert_eq!((b.batch, b.seq), (2, 16));
        assert_eq!(b.attention_mask[..16], [1; 16]);
        assert_eq!(b.attention_mask[16 + 12..], [0; 4]);
        assert_eq!(b.input_ids[16 + 12..], [0; 4]);
        assert_eq!(b.token_type_ids[7], 0);
        assert_eq!(b.token_type_ids[8], 1);
        assert!(b.input_ids.iter().all(|&i| i < 80));
        assert_eq!(b, seeded_batch(7, 80, 32, 2, 0));
        assert_ne!(b.input_ids, seeded_batch(8, 80, 32, 2, 0).input_ids);
        let short = seeded_batch(0, 5, 3, 1, 0);
        assert_eq!(short.seq, 3);
        assert!(short.token_type_ids.iter().all(|&t| t == 0));
    }
}
