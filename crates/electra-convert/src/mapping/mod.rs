//! Declarative TF → HuggingFace name tables per model kind, with a reason for every skipped variable.
//!
//! The tables live in [`table`]; [`plan`] applies one to the variable list of a checkpoint
//! (names and shapes only, no values) and returns a [`Plan`]: every tensor of the HuggingFace
//! model with its source variable, transform and shapes, plus every checkpoint variable that is
//! not exported and why. Planning fails with a [`MappingError`] when the checkpoint is not an
//! ELECTRA checkpoint, lacks the asked-for model, misses a tensor, has a gap in its layers, or
//! has a tensor whose shape disagrees with the rest. [`reverse`] reads the same tables backwards
//! for `export`.

pub mod keras;
pub mod reverse;
pub mod table;
pub mod table_tf2;
mod tf2;
pub mod tf2_encoder;
pub mod trainer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::options::ModelKind;
pub use table::{Dim, ModelTable, Row, Section, Tied, Transform, When};
pub use table_tf2::{LayoutTable, SourceLayout};
pub use tf2::detect as detect_tf2;

use tf_checkpoint::ObjectGraph;

/// A checkpoint variable as the mapping sees it: name, TF shape and TF dtype spelling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceVar {
    /// The checkpoint key.
    pub name: String,
    /// The TF shape.
    pub shape: Vec<u64>,
    /// TF spelling: `float32`, `int64`, ...
    pub dtype: String,
}

impl SourceVar {
    /// A variable from its name, shape and TF dtype spelling.
    pub fn new(name: impl Into<String>, shape: &[u64], dtype: impl Into<String>) -> SourceVar {
        SourceVar {
            name: name.into(),
            shape: shape.to_vec(),
            dtype: dtype.into(),
        }
    }
}

/// Everything that can stop a mapping.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// No variable lives under `electra/`.
    #[error(
        "this is not an ELECTRA checkpoint: no variable lives under `electra/`. It contains {contents}. {hint}"
    )]
    NotElectra {
        /// A summary of what the checkpoint does hold.
        contents: String,
        /// What to do instead.
        hint: String,
    },

    /// The requested model kind has no variables in the checkpoint.
    #[error("--model {kind} needs {needed}, which this checkpoint does not have. It contains {contents}. {suggestion}")]
    ModelNotInCheckpoint {
        /// The `--model` value.
        kind: &'static str,
        /// What that model needs.
        needed: String,
        /// A summary of what the checkpoint holds.
        contents: String,
        /// Which `--model` would work, if any.
        suggestion: String,
    },

    /// Encoder layers are not numbered contiguously from 0.
    #[error("the layers of `{tower}/encoder/` are not numbered 0..{count}: found {found:?}, missing {missing:?}. The checkpoint is incomplete or not a plain ELECTRA layout")]
    LayerGap {
        /// The tower's TF scope.
        tower: String,
        /// The number of layers expected.
        count: usize,
        /// The layer numbers found.
        found: Vec<usize>,
        /// The layer numbers missing.
        missing: Vec<usize>,
    },

    /// HuggingFace tensors of the class have no checkpoint variable.
    #[error("{count} tensor(s) of {class} have no source in the checkpoint: {list}. {note}")]
    MissingTensors {
        /// The transformers class.
        class: &'static str,
        /// How many are missing.
        count: usize,
        /// Their names.
        list: String,
        /// What may explain it.
        note: String,
    },

    /// A variable's shape does not match what its HuggingFace tensor needs.
    #[error("shape mismatch: checkpoint variable `{tf}` has shape {tf_shape:?}, but `{hf}` needs TF shape {needs} ({provenance})")]
    ShapeMismatch {
        /// The checkpoint variable.
        tf: String,
        /// Its shape.
        tf_shape: Vec<u64>,
        /// The HuggingFace tensor.
        hf: String,
        /// e.g. `[H, H] = [128, 128]`
        needs: String,
        /// Which variables the dimensions were read from.
        provenance: String,
    },

    /// An embedding projection exists although embedding and hidden sizes are equal.
    #[error("`{tower}/embeddings_project` is present although embedding_size = hidden_size = {width}; transformers' ElectraModel has no projection in that case, so the layer cannot be exported without changing the model. Remove it from the checkpoint only if it was never used")]
    UnexpectedProjection {
        /// The tower's TF scope.
        tower: String,
        /// The common width.
        width: u64,
    },

    /// A weight has a dtype that cannot be converted.
    #[error("checkpoint variable `{tf}` has dtype {dtype}; only float32, float16, bfloat16 and float64 weights can be exported")]
    UnsupportedDtype {
        /// The checkpoint variable.
        tf: String,
        /// Its TF dtype.
        dtype: String,
    },

    /// Variables in exported scopes match no table row.
    #[error("variables under the exported scopes match no row of the {kind} table: {names}. This is not a layout electra-convert knows; run `electra-convert inspect` to see it")]
    Unrecognised {
        /// The model kind.
        kind: &'static str,
        /// The unmatched names.
        names: String,
    },

    /// The checkpoint is of a kind that is refused on purpose (an Electric model, an input-pipeline checkpoint).
    #[error("this checkpoint is {what}; {advice}")]
    Refused {
        /// What the checkpoint is.
        what: String,
        /// What to do instead.
        advice: String,
    },

    /// `--model` asks for a head that an encoder-only checkpoint or SavedModel does not have.
    #[error("--model {kind} needs a discriminator or generator, but {what} holds an encoder only (a Model Garden BertEncoder: no replaced-token-detection or masked-LM head). Pass --model encoder to write it as an ElectraModel")]
    EncoderOnly {
        /// The kind asked for.
        kind: &'static str,
        /// What the input is.
        what: String,
    },

    /// A TF2 checkpoint whose object graph matches no known producer.
    #[error("this TF2 object-based checkpoint is neither a Model Garden ElectraPretrainer, encoder or SavedModel encoder nor an NVIDIA ELECTRA checkpoint: its root objects are {roots}{model}. electra-convert knows Model Garden (`encoder`, `model/masked_lm`, ...) and NVIDIA (`model/discriminator`, `model/generator`); run `electra-convert inspect` to see the keys")]
    UnknownTf2Layout {
        /// The root objects' names.
        roots: String,
        /// The children of `model`, as a clause (empty when there is no `model` object).
        model: String,
    },

    /// A TF2 `--layout` was asked for a checkpoint without an object graph.
    #[error("--layout {layout} needs an object-based TF2 checkpoint, but this one has no object graph (`_CHECKPOINTABLE_OBJECT_GRAPH`): {detail}. Drop --layout to detect the layout, or pass --layout google-tf1")]
    NoObjectGraph {
        /// The `--layout` value.
        layout: &'static str,
        /// What the checkpoint is instead.
        detail: String,
    },
}

/// The dimensions of one exported model, each with the variable it was read from.
#[derive(Clone, Debug, Serialize)]
pub struct Dims {
    /// `vocab_size`: rows of the word embeddings.
    pub vocab_size: u64,
    /// `embedding_size`: width of the embeddings.
    pub embedding_size: u64,
    /// `hidden_size`: width of the transformer.
    pub hidden_size: u64,
    /// `intermediate_size`: width of the feed-forward layer.
    pub intermediate_size: u64,
    /// `num_hidden_layers`.
    pub num_hidden_layers: u64,
    /// `max_position_embeddings`: rows of the position embeddings.
    pub max_position_embeddings: u64,
    /// `type_vocab_size`: rows of the token-type embeddings.
    pub type_vocab_size: u64,
    /// Known from the shapes only where attention kernels are 3-D (Model Garden).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_attention_heads: Option<u64>,
    #[serde(skip)]
    sources: BTreeMap<Dim, String>,
}

impl Dims {
    /// The value of `dim` (0 for head counts that are not known).
    pub fn get(&self, dim: Dim) -> u64 {
        match dim {
            Dim::V => self.vocab_size,
            Dim::E => self.embedding_size,
            Dim::H => self.hidden_size,
            Dim::I => self.intermediate_size,
            Dim::P => self.max_position_embeddings,
            Dim::T => self.type_vocab_size,
            Dim::One => 1,
            Dim::N => self.num_attention_heads.unwrap_or(0),
            Dim::D => match self.num_attention_heads {
                Some(n) if n > 0 => self.hidden_size / n,
                _ => 0,
            },
        }
    }

    /// Which checkpoint variable a dimension was read from.
    pub fn source(&self, dim: Dim) -> Option<&str> {
        self.sources.get(&dim).map(String::as_str)
    }
}

/// One HuggingFace tensor and where it comes from.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The checkpoint variable.
    pub tf: String,
    /// The HuggingFace tensor.
    pub hf: String,
    /// How the values are changed on the way.
    pub transform: Transform,
    /// The variable's TF shape.
    pub tf_shape: Vec<u64>,
    /// The tensor's HuggingFace shape.
    pub hf_shape: Vec<u64>,
    /// TF dtype of the source variable.
    pub dtype: String,
}

impl Entry {
    pub(crate) fn num_elements(&self) -> u64 {
        self.hf_shape.iter().product()
    }
}

/// Why a checkpoint variable is not exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCategory {
    /// Adam `adam_m`/`adam_v` slots of a weight.
    OptimizerSlot,
    /// The training step counter.
    GlobalStep,
    /// The generator's sampling temperature.
    Temperature,
    /// A fine-tuning head under `task_specific/`.
    TaskHead,
    /// A variable of the model kind not exported (say, the generator when converting the discriminator).
    OtherModel,
    /// Not matched by any table.
    Unrecognised,
    /// Optimizer variables that are not per-weight slots (TF2 `optimizer/...`).
    OptimizerState,
    /// Not a variable value: the object graph, object metadata.
    Metadata,
}

/// A checkpoint variable that is not exported, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    /// The checkpoint variable.
    pub tf: String,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Its category.
    pub category: SkipCategory,
    /// The reason in words.
    pub reason: String,
}

/// The resolved layout facts.
#[derive(Clone, Debug, Serialize)]
pub struct Layout {
    /// TF scope of the exported transformer.
    pub tower: String,
    /// TF scope of its embedding tables (TF2 layouts: the word table's object path).
    pub embeddings_scope: String,
    /// Number of encoder layers.
    pub layers: usize,
    /// Whether an embedding projection (`embedding_size` != `hidden_size`) is present.
    pub embeddings_project: bool,
}

/// A table applied to one checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The model kind.
    pub kind: ModelKind,
    /// The transformers class.
    pub class: &'static str,
    /// The producer whose table was applied.
    pub source_layout: SourceLayout,
    /// Scopes, layer count and projection found.
    pub layout: Layout,
    /// The model's dimensions.
    pub dims: Dims,
    /// Sorted by HuggingFace name (byte order), the order of the safetensors file.
    pub entries: Vec<Entry>,
    /// HuggingFace tensors that share another tensor's values.
    pub tied: Vec<Tied>,
    /// In checkpoint order.
    pub skipped: Vec<Skipped>,
    /// `task_specific/<task>` heads found (reported, never exported).
    pub task_heads: Vec<String>,
    /// TF2 layouts: checkpoint key → the object-graph path the table resolved it from.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub object_paths: BTreeMap<String, String>,
}

/// The table for one of the three single-model kinds.
pub(crate) fn table_for(kind: ModelKind) -> Option<&'static ModelTable> {
    match kind {
        ModelKind::Discriminator => Some(&table::DISCRIMINATOR),
        ModelKind::Generator => Some(&table::GENERATOR),
        ModelKind::Encoder => Some(&table::ENCODER),
        ModelKind::Both => None,
    }
}

/// The single models a `--model` choice writes (`both` is discriminator and generator).
pub(crate) fn expand(kind: ModelKind) -> Vec<ModelKind> {
    match kind {
        ModelKind::Both => vec![ModelKind::Discriminator, ModelKind::Generator],
        k => vec![k],
    }
}

/// The layout of a checkpoint: Google TF1 for name-based checkpoints, otherwise detected from
/// the object graph's root edges (or a refusal naming what the checkpoint is).
pub fn detect_layout(
    vars: &[SourceVar],
    graph: Option<&ObjectGraph>,
) -> Result<SourceLayout, MappingError> {
    match graph {
        Some(g) => tf2::detect(g),
        None if keras::detect(vars) => Ok(SourceLayout::HfKeras),
        None => {
            // google-research/electra's Electric objective: a two-tower cloze generator.
            let electric: Vec<&str> = ["generator_ltr/", "generator_rtl/", "cloze_predictions/"]
                .into_iter()
                .filter(|scope| has_prefix(vars, scope))
                .collect();
            if !electric.is_empty() {
                return Err(MappingError::Refused {
                    what: format!(
                        "an Electric checkpoint (google-research/electra trained with electric_objective: {}): its generator is a two-tower cloze model and its discriminator an energy model, neither of which transformers' ELECTRA classes represent",
                        electric.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
                    ),
                    advice: "pass an ELECTRA pretraining checkpoint (electra_objective) instead; `--layout google-tf1` forces the TF1 table if you know the `electra/` tower is what you want".into(),
                });
            }
            Ok(SourceLayout::GoogleTf1)
        }
    }
}

/// Plans for every model a `--model` choice writes, in the checkpoint's own layout (detected,
/// or `layout` when given).
pub fn plan_checkpoint(
    kind: ModelKind,
    vars: &[SourceVar],
    graph: Option<&ObjectGraph>,
    layout: Option<SourceLayout>,
) -> Result<Vec<Plan>, MappingError> {
    let layout = match layout {
        Some(l) => l,
        None => detect_layout(vars, graph)?,
    };
    match (layout, graph) {
        (SourceLayout::GoogleTf1, _) => plan_all(kind, vars),
        (SourceLayout::HfKeras, _) => keras::plan_all(kind, vars),
        (tf2_layout, Some(g)) => tf2::plan_all(tf2_layout, kind, vars, g),
        (tf2_layout, None) => Err(MappingError::NoObjectGraph {
            layout: tf2_layout.as_str(),
            detail: describe(vars),
        }),
    }
}

/// What the converted model cannot reproduce of the original, said once per plan: Model
/// Garden's masked-LM head uses the tanh GELU, transformers' generator head the exact erf GELU.
pub(crate) fn head_caveat(plan: &Plan) -> Option<&'static str> {
    (plan.source_layout == SourceLayout::ModelGarden && plan.kind == ModelKind::Generator).then_some(
        "Model Garden's masked-LM head applies the tanh-approximate GELU, but transformers' ElectraGeneratorPredictions always applies the exact erf GELU, whatever hidden_act says: the weights are converted exactly, yet the generator's logits differ slightly from Model Garden's (`verify --checkpoint` measures by how much)",
    )
}

/// The `--model` values a checkpoint supports in a layout.
pub fn available_kinds_in(
    layout: SourceLayout,
    vars: &[SourceVar],
    graph: Option<&ObjectGraph>,
) -> Vec<ModelKind> {
    match (layout, graph) {
        (SourceLayout::GoogleTf1, _) => available_kinds(vars),
        (SourceLayout::HfKeras, _) => keras::available_kinds(vars),
        (l, Some(g)) => tf2::available_kinds(l, g),
        (_, None) => Vec::new(),
    }
}

/// Plans for every model a `--model` choice writes.
pub(crate) fn plan_all(kind: ModelKind, vars: &[SourceVar]) -> Result<Vec<Plan>, MappingError> {
    check_model_present(kind, vars)?;
    expand(kind).into_iter().map(|k| plan(k, vars)).collect()
}

fn is_optimizer_slot(name: &str) -> bool {
    name.ends_with("/adam_m") || name.ends_with("/adam_v")
}

fn has_prefix(vars: &[SourceVar], prefix: &str) -> bool {
    vars.iter()
        .any(|v| v.name.starts_with(prefix) && !is_optimizer_slot(&v.name))
}

fn task_of(name: &str) -> Option<&str> {
    name.strip_prefix("task_specific/")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
}

fn task_heads(vars: &[SourceVar]) -> Vec<String> {
    let set: BTreeSet<&str> = vars.iter().filter_map(|v| task_of(&v.name)).collect();
    set.into_iter().map(str::to_owned).collect()
}

/// Which `--model` values this checkpoint supports.
pub(crate) fn available_kinds(vars: &[SourceVar]) -> Vec<ModelKind> {
    let encoder = has_prefix(vars, "electra/encoder/");
    let disc = encoder && has_prefix(vars, "discriminator_predictions/");
    let generator =
        has_prefix(vars, "generator/encoder/") && has_prefix(vars, "generator_predictions/");
    kinds_from(disc, generator, encoder)
}

/// The `--model` values of a checkpoint holding these towers, in the order messages list them
/// (`both` when it has the discriminator and the generator).
pub(crate) fn kinds_from(discriminator: bool, generator: bool, encoder: bool) -> Vec<ModelKind> {
    [
        (discriminator, ModelKind::Discriminator),
        (generator, ModelKind::Generator),
        (encoder, ModelKind::Encoder),
        (discriminator && generator, ModelKind::Both),
    ]
    .into_iter()
    .filter_map(|(present, kind)| present.then_some(kind))
    .collect()
}

fn layer_count(vars: &[SourceVar], scope: &str) -> BTreeSet<usize> {
    let prefix = format!("{scope}/encoder/layer_");
    vars.iter()
        .filter_map(|v| v.name.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter_map(|n| n.parse::<usize>().ok())
        .collect()
}

/// A one-line description of what a checkpoint holds, for error messages.
pub fn describe(vars: &[SourceVar]) -> String {
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    let mut slots = 0usize;
    for v in vars {
        if is_optimizer_slot(&v.name) {
            slots += 1;
            continue;
        }
        let mut parts = v.name.split('/');
        let first = parts.next().unwrap_or("");
        let key = match (first, parts.next()) {
            ("task_specific", Some(task)) => format!("task_specific/{task}/"),
            (_, Some(_)) => format!("{first}/"),
            (_, None) => first.to_owned(),
        };
        *groups.entry(key).or_default() += 1;
    }
    if groups.is_empty() && slots == 0 {
        return "no variables at all".to_owned();
    }
    let mut parts: Vec<String> = groups
        .into_iter()
        .map(|(scope, n)| {
            let mut s = format!("`{scope}` ({n} variable{})", if n == 1 { "" } else { "s" });
            if let Some(tower) = scope.strip_suffix('/') {
                let layers = layer_count(vars, tower).len();
                if layers > 0 {
                    let _ = write!(
                        s,
                        " with {layers} encoder layer{}",
                        if layers == 1 { "" } else { "s" }
                    );
                }
            }
            s
        })
        .collect();
    if slots > 0 {
        parts.push(format!("{slots} Adam optimizer slots"));
    }
    parts.join(", ")
}

fn kinds_list(kinds: &[ModelKind]) -> String {
    kinds
        .iter()
        .map(|k| format!("--model {}", k.as_str()))
        .collect::<Vec<_>>()
        .join(" or ")
}

fn check_model_present(kind: ModelKind, vars: &[SourceVar]) -> Result<(), MappingError> {
    if !has_prefix(vars, "electra/") {
        let hint = if has_prefix(vars, "bert/") {
            "It looks like a BERT checkpoint (`bert/...`); electra-convert only converts ELECTRA checkpoints, so no --model applies (use a BERT converter)."
        } else {
            "No --model applies; point electra-convert at a google-research/electra pretraining or fine-tuning checkpoint."
        };
        return Err(MappingError::NotElectra {
            contents: describe(vars),
            hint: hint.to_owned(),
        });
    }
    let available = available_kinds(vars);
    if available.contains(&kind) {
        return Ok(());
    }
    let parts: &[(&str, &str)] = match kind {
        ModelKind::Discriminator => &[
            (
                "electra/encoder/",
                "the discriminator tower `electra/encoder/*`",
            ),
            (
                "discriminator_predictions/",
                "the replaced-token head `discriminator_predictions/*`",
            ),
        ],
        ModelKind::Generator => &[
            (
                "generator/encoder/",
                "a generator tower `generator/encoder/*`",
            ),
            (
                "generator_predictions/",
                "the masked-LM head `generator_predictions/*`",
            ),
        ],
        ModelKind::Encoder => &[(
            "electra/encoder/",
            "the discriminator tower `electra/encoder/*`",
        )],
        ModelKind::Both => &[
            (
                "electra/encoder/",
                "the discriminator tower `electra/encoder/*`",
            ),
            (
                "discriminator_predictions/",
                "the replaced-token head `discriminator_predictions/*`",
            ),
            (
                "generator/encoder/",
                "a generator tower `generator/encoder/*`",
            ),
            (
                "generator_predictions/",
                "the masked-LM head `generator_predictions/*`",
            ),
        ],
    };
    let needed = parts
        .iter()
        .filter(|(prefix, _)| !has_prefix(vars, prefix))
        .map(|(_, what)| *what)
        .collect::<Vec<_>>()
        .join(" and ");
    let tasks = task_heads(vars);
    let mut suggestion = String::new();
    if !tasks.is_empty() {
        let _ = write!(
            suggestion,
            "This is a fine-tuned checkpoint with task head(s) {} (`task_specific/...`), which have no transformers counterpart. ",
            tasks.join(", ")
        );
    }
    if kind == ModelKind::Generator
        && has_prefix(vars, "generator_predictions/")
        && !has_prefix(vars, "generator/")
    {
        suggestion.push_str("Its masked-LM head sits on the `electra/` encoder itself (a checkpoint trained with untied_generator=False or without the ELECTRA objective); exporting that combination is not supported. ");
    }
    if available.is_empty() {
        suggestion.push_str("No --model applies.");
    } else {
        let _ = write!(suggestion, "Use {} instead.", kinds_list(&available));
    }
    Err(MappingError::ModelNotInCheckpoint {
        kind: kind.as_str(),
        needed,
        contents: describe(vars),
        suggestion,
    })
}

pub(crate) fn fill(template: &str, tower: &str, emb: &str, hf: &str, n: Option<usize>) -> String {
    let mut s = template
        .replace("{tower}", tower)
        .replace("{emb}", emb)
        .replace("{hf}", hf);
    if let Some(n) = n {
        s = s.replace("{n}", &n.to_string());
    }
    s
}

fn symbolic(shape: &[Dim]) -> String {
    shape
        .iter()
        .map(|d| d.symbol())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The entry for one planned row: the variable's shape must be the row's symbolic shape under
/// `dims` (the error says where each dimension was inferred from) and its dtype a float type.
/// Both source layouts' planners go through here.
pub(crate) fn planned_entry(
    tf: &str,
    hf: &str,
    row: &table::Row,
    var: &SourceVar,
    dims: &Dims,
) -> Result<Entry, MappingError> {
    let expected: Vec<u64> = row.shape.iter().map(|d| dims.get(*d)).collect();
    if var.shape != expected {
        // The head size D is derived (hidden / heads), not inferred from a tensor.
        let provenance = row
            .shape
            .iter()
            .filter(|d| !matches!(d, Dim::One | Dim::D))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|d| {
                format!(
                    "{} = {} from `{}`",
                    d.symbol(),
                    dims.get(*d),
                    dims.source(*d).unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(MappingError::ShapeMismatch {
            tf: tf.to_string(),
            tf_shape: var.shape.clone(),
            hf: hf.to_string(),
            needs: format!("[{}] = {expected:?}", symbolic(row.shape)),
            provenance,
        });
    }
    if !FLOAT_DTYPES.contains(&var.dtype.as_str()) {
        return Err(MappingError::UnsupportedDtype {
            tf: tf.to_string(),
            dtype: var.dtype.clone(),
        });
    }
    Ok(Entry {
        tf: tf.to_string(),
        hf: hf.to_string(),
        transform: row.transform,
        tf_shape: var.shape.clone(),
        hf_shape: row.transform.hf_shape(&var.shape),
        dtype: var.dtype.clone(),
    })
}

const FLOAT_DTYPES: &[&str] = &["float32", "float16", "bfloat16", "float64"];

struct Planned {
    tf: String,
    hf: String,
    row: Row,
}

/// Apply the table of one single-model kind to a checkpoint's variables.
pub fn plan(kind: ModelKind, vars: &[SourceVar]) -> Result<Plan, MappingError> {
    let Some(table) = table_for(kind) else {
        // `both` is two plans; see plan_all.
        return Err(MappingError::ModelNotInCheckpoint {
            kind: kind.as_str(),
            needed: "one model at a time".to_owned(),
            contents: describe(vars),
            suggestion: "Plan discriminator and generator separately.".to_owned(),
        });
    };
    check_model_present(kind, vars)?;
    let by_name: HashMap<&str, &SourceVar> = vars.iter().map(|v| (v.name.as_str(), v)).collect();

    let tower = table.tower;
    // Untied generator embeddings live under generator/embeddings; otherwise the generator
    // shares the discriminator's electra/embeddings.
    let emb =
        if tower == "generator" && by_name.contains_key("generator/embeddings/word_embeddings") {
            "generator"
        } else {
            "electra"
        };
    let hf_prefix = table.hf_prefix;

    // Layers 0..L, no gaps.
    let layers = layer_count(vars, tower);
    let count = layers.iter().next_back().map_or(0, |m| m + 1);
    if layers.len() != count {
        let missing = missing_layers(&layers, count);
        return Err(MappingError::LayerGap {
            tower: tower.to_owned(),
            count,
            found: layers.into_iter().collect(),
            missing,
        });
    }

    let project_present = by_name
        .contains_key(format!("{tower}/embeddings_project/kernel").as_str())
        || by_name.contains_key(format!("{tower}/embeddings_project/bias").as_str());

    // Expand the table into concrete rows.
    let mut planned: Vec<Planned> = Vec::new();
    let mut projection_rows: Vec<Planned> = Vec::new();
    for section in table.sections {
        let instances: Vec<Option<usize>> = match section.when {
            When::Always | When::EmbeddingWidthDiffers => vec![None],
            When::EachLayer => (0..count).map(Some).collect(),
        };
        for n in instances {
            for row in section.rows {
                let p = Planned {
                    tf: fill(row.tf, tower, emb, hf_prefix, n),
                    hf: fill(row.hf, tower, emb, hf_prefix, n),
                    row: *row,
                };
                if section.when == When::EmbeddingWidthDiffers {
                    projection_rows.push(p);
                } else {
                    planned.push(p);
                }
            }
        }
    }
    if project_present {
        planned.append(&mut projection_rows);
    }

    let missing: Vec<&Planned> = planned
        .iter()
        .filter(|p| !by_name.contains_key(p.tf.as_str()))
        .collect();
    if !missing.is_empty() || count == 0 {
        let mut items: Vec<String> = missing
            .iter()
            .map(|p| format!("`{}` (from `{}`)", p.hf, p.tf))
            .collect();
        let note = if count == 0 {
            items.insert(0, format!("every `{hf_prefix}encoder.layer.*`"));
            format!("No `{tower}/encoder/layer_N/` variables were found.")
        } else {
            "Every tensor of the model must come from the checkpoint; nothing is left at a random initialisation.".to_owned()
        };
        return Err(missing_error(table.class, items, note));
    }

    // Dimensions, each from one anchor variable.
    let mut dims = Dims {
        vocab_size: 0,
        embedding_size: 0,
        hidden_size: 0,
        intermediate_size: 0,
        num_hidden_layers: count as u64,
        max_position_embeddings: 0,
        type_vocab_size: 0,
        num_attention_heads: None,
        sources: BTreeMap::new(),
    };
    let anchors: [(Dim, String, usize); 6] = [
        (Dim::V, format!("{emb}/embeddings/word_embeddings"), 0),
        (Dim::E, format!("{emb}/embeddings/word_embeddings"), 1),
        (Dim::P, format!("{emb}/embeddings/position_embeddings"), 0),
        (Dim::T, format!("{emb}/embeddings/token_type_embeddings"), 0),
        (
            Dim::H,
            format!("{tower}/encoder/layer_0/attention/self/query/kernel"),
            1,
        ),
        (
            Dim::I,
            format!("{tower}/encoder/layer_0/intermediate/dense/kernel"),
            1,
        ),
    ];
    for (dim, name, axis) in &anchors {
        let var = by_name[name.as_str()];
        let value = match var.shape.get(*axis) {
            Some(v) if var.shape.len() == 2 => *v,
            _ => {
                let p = planned.iter().find(|p| &p.tf == name).expect("anchor row");
                return Err(MappingError::ShapeMismatch {
                    tf: name.clone(),
                    tf_shape: var.shape.clone(),
                    hf: p.hf.clone(),
                    needs: format!("[{}]", symbolic(p.row.shape)),
                    provenance: "a 2-D tensor is required".to_owned(),
                });
            }
        };
        match dim {
            Dim::V => dims.vocab_size = value,
            Dim::E => dims.embedding_size = value,
            Dim::P => dims.max_position_embeddings = value,
            Dim::T => dims.type_vocab_size = value,
            Dim::H => dims.hidden_size = value,
            Dim::I => dims.intermediate_size = value,
            Dim::One | Dim::N | Dim::D => {}
        }
        dims.sources.insert(*dim, name.clone());
    }

    let widths_differ = dims.embedding_size != dims.hidden_size;
    if widths_differ && !project_present {
        let items = projection_rows
            .iter()
            .map(|p| format!("`{}` (from `{}`)", p.hf, p.tf))
            .collect();
        return Err(missing_error(
            table.class,
            items,
            format!(
                "embedding_size {} (from `{}`) differs from hidden_size {} (from `{}`), so the embeddings must be projected, but `{tower}/embeddings_project` is absent",
                dims.embedding_size,
                dims.source(Dim::E).unwrap_or("?"),
                dims.hidden_size,
                dims.source(Dim::H).unwrap_or("?"),
            ),
        ));
    }
    if !widths_differ && project_present {
        return Err(MappingError::UnexpectedProjection {
            tower: tower.to_owned(),
            width: dims.hidden_size,
        });
    }

    // Validate every shape and dtype.
    let mut entries = Vec::with_capacity(planned.len());
    for p in &planned {
        let var = by_name[p.tf.as_str()];
        entries.push(planned_entry(&p.tf, &p.hf, &p.row, var, &dims)?);
    }
    entries.sort_by(|a, b| a.hf.as_bytes().cmp(b.hf.as_bytes()));

    // Every other variable: skipped, with a reason.
    let mapped: BTreeSet<&str> = entries.iter().map(|e| e.tf.as_str()).collect();
    let head_scope = match kind {
        ModelKind::Discriminator => Some("discriminator_predictions/"),
        ModelKind::Generator => Some("generator_predictions/"),
        _ => None,
    };
    let own_scopes: Vec<String> = [
        Some(format!("{tower}/")),
        Some(format!("{emb}/embeddings/")),
    ]
    .into_iter()
    .flatten()
    .chain(head_scope.map(str::to_owned))
    .collect();
    let mut skipped = Vec::new();
    let mut unrecognised = Vec::new();
    for v in vars {
        if mapped.contains(v.name.as_str()) {
            continue;
        }
        let (category, reason) = match skip_reason(kind, emb, &v.name) {
            Some(r) => r,
            None => {
                if own_scopes.iter().any(|s| v.name.starts_with(s.as_str())) {
                    unrecognised.push(format!("`{}`", v.name));
                    continue;
                }
                (
                    SkipCategory::Unrecognised,
                    "not part of ELECTRA's pretraining layout; left out".to_owned(),
                )
            }
        };
        skipped.push(Skipped {
            tf: v.name.clone(),
            shape: v.shape.clone(),
            category,
            reason,
        });
    }
    if !unrecognised.is_empty() {
        return Err(MappingError::Unrecognised {
            kind: table.kind,
            names: unrecognised.join(", "),
        });
    }

    Ok(Plan {
        kind,
        class: table.class,
        source_layout: SourceLayout::GoogleTf1,
        layout: Layout {
            tower: tower.to_owned(),
            embeddings_scope: emb.to_owned(),
            layers: count,
            embeddings_project: project_present,
        },
        dims,
        entries,
        tied: table.tied.to_vec(),
        skipped,
        task_heads: task_heads(vars),
        object_paths: BTreeMap::new(),
    })
}

/// The first few layer numbers absent from `0..count` (a hostile index can name layer 4e9;
/// listing every gap would allocate gigabytes).
fn missing_layers(layers: &BTreeSet<usize>, count: usize) -> Vec<usize> {
    (0..count)
        .filter(|n| !layers.contains(n))
        .take(MAX_LISTED_GAPS)
        .collect()
}

/// How many missing layer numbers an error lists.
const MAX_LISTED_GAPS: usize = 16;

fn missing_error(class: &'static str, items: Vec<String>, note: String) -> MappingError {
    const SHOWN: usize = 12;
    let count = items.len();
    let mut list = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if count > SHOWN {
        let _ = write!(list, " and {} more", count - SHOWN);
    }
    MappingError::MissingTensors {
        class,
        count,
        list,
        note,
    }
}

/// The reason a variable outside the model's table is left out, or None when no rule explains it.
fn skip_reason(kind: ModelKind, emb: &str, name: &str) -> Option<(SkipCategory, String)> {
    if is_optimizer_slot(name) {
        return Some((
            SkipCategory::OptimizerSlot,
            "Adam optimizer slot (training state, not a weight)".to_owned(),
        ));
    }
    if name.split('/').any(|c| c == "global_step") {
        return Some((SkipCategory::GlobalStep, "training step counter".to_owned()));
    }
    if name.split('/').any(|c| c == "temperature") {
        return Some((
            SkipCategory::Temperature,
            "sampling temperature (a training hyperparameter, not a weight)".to_owned(),
        ));
    }
    if let Some(task) = task_of(name) {
        return Some((
            SkipCategory::TaskHead,
            format!("fine-tuning head of task `{task}`; transformers' ELECTRA classes have no equivalent of the original head, so it is not exported"),
        ));
    }
    let other = |what: &str| Some((SkipCategory::OtherModel, what.to_owned()));
    match kind {
        ModelKind::Discriminator | ModelKind::Encoder => {
            if name.starts_with("generator/") || name.starts_with("generator_predictions/") {
                return other("generator (export it with --model generator)");
            }
            if kind == ModelKind::Encoder && name.starts_with("discriminator_predictions/") {
                return other("replaced-token detection head; ElectraModel has no head (export it with --model discriminator)");
            }
        }
        ModelKind::Generator => {
            if name.starts_with("electra/encoder/")
                || name.starts_with("electra/embeddings_project/")
                || name.starts_with("discriminator_predictions/")
            {
                return other("discriminator (export it with --model discriminator)");
            }
            if emb == "generator" && name.starts_with("electra/embeddings/") {
                return other("the discriminator's embeddings; this checkpoint's generator has its own (untied) `generator/embeddings`");
            }
        }
        ModelKind::Both => {}
    }
    None
}

/// The Markdown rows of one table: every section's rows (`{emb}` filled with `emb`, the
/// transform named by `transform`), then the tied tensors.
fn table_rows(
    out: &mut String,
    table: &ModelTable,
    emb: &str,
    transform: fn(Transform) -> &'static str,
) {
    for section in table.sections {
        let when = match section.when {
            When::Always => "",
            When::EachLayer => ", each layer",
            When::EmbeddingWidthDiffers => ", only if E ≠ H",
        };
        for row in section.rows {
            let _ = writeln!(
                out,
                "| {}{} | `{}` | `{}` | {} | [{}] |",
                section.name,
                when,
                fill(row.tf, table.tower, emb, table.hf_prefix, None),
                fill(row.hf, table.tower, emb, table.hf_prefix, None),
                transform(row.transform),
                symbolic(row.shape)
            );
        }
    }
    for tied in table.tied {
        let _ = writeln!(
            out,
            "| tied (not stored) | — | `{}` | same as `{}` | — |",
            tied.hf, tied.same_as
        );
    }
}

/// Markdown rendering of the three tables in symbolic form (for docs/mapping.md).
pub fn markdown_tables() -> String {
    let mut out = String::new();
    for table in [&table::DISCRIMINATOR, &table::GENERATOR, &table::ENCODER] {
        let _ = writeln!(
            out,
            "### `--model {}` → `{}`\n\nTF tower `{}`, HuggingFace prefix `{}`.\n",
            table.kind,
            table.class,
            table.tower,
            if table.hf_prefix.is_empty() {
                "(none)"
            } else {
                table.hf_prefix
            }
        );
        out.push_str("| section | TF variable | HuggingFace tensor | transform | TF shape |\n");
        out.push_str("|---|---|---|---|---|\n");
        table_rows(&mut out, table, "{emb}", Transform::as_str);
        out.push('\n');
    }
    for layout in [SourceLayout::ModelGarden, SourceLayout::Nvidia] {
        out.push_str(&markdown_tf2_tables(layout));
    }
    out.push_str(&keras::markdown());
    out
}

/// The TF2 tables of one layout: sources are object-graph paths, resolved to checkpoint keys.
fn markdown_tf2_tables(layout: SourceLayout) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} (`--layout {}`)\n\nSources are object-graph paths (each edge name escaped as in checkpoint keys); the key a path resolves to is what `map` prints. Default `hidden_act`: `{}`.\n",
        layout.title(),
        layout.as_str(),
        layout.default_hidden_act()
    );
    for lt in table_tf2::tables(layout).into_iter().flatten() {
        let table = &lt.table;
        let _ = writeln!(
            out,
            "#### {} `--model {}` → `{}`\n\nTower `{}`, layers the children of `{}`, HuggingFace prefix `{}`.\n",
            layout.title(),
            table.kind,
            table.class,
            table.tower,
            lt.layer_list.replace("{tower}", table.tower),
            if table.hf_prefix.is_empty() {
                "(none)"
            } else {
                table.hf_prefix
            }
        );
        out.push_str("| section | object path | HuggingFace tensor | transform | TF shape |\n");
        out.push_str("|---|---|---|---|---|\n");
        table_rows(&mut out, table, table.tower, Transform::describe);
        for (path, why) in lt.unused {
            let _ = writeln!(
                out,
                "| not exported | `{}` | — | {} | — |",
                path.replace("{tower}", table.tower),
                why
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
