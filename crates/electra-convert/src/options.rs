//! The library's vocabulary: which model, which float type, which source layout, the parity
//! tolerance, how progress is reported, and every option of one run ([`ConvertOptions`]). The
//! command line and batch manifests both translate into these. This module imports nothing else
//! of the crate, so every stage can use it without a cycle.

use std::path::PathBuf;

/// Which HuggingFace model to export from a pretraining checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// ElectraForPreTraining: the discriminator tower and its replaced-token head.
    Discriminator,
    /// ElectraForMaskedLM: the generator tower, shared embeddings and the MLM head.
    Generator,
    /// ElectraModel: the discriminator's transformer without a head.
    Encoder,
    /// Both heads: DIR/discriminator and DIR/generator.
    Both,
}

impl ModelKind {
    /// Every kind, in the order the command line lists them.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Discriminator,
        ModelKind::Generator,
        ModelKind::Encoder,
        ModelKind::Both,
    ];

    /// The spelling used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Discriminator => "discriminator",
            ModelKind::Generator => "generator",
            ModelKind::Encoder => "encoder",
            ModelKind::Both => "both",
        }
    }
}

/// Floating-point type of the written tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputDtype {
    /// 32-bit float, exactly the checkpoint's values (default).
    #[default]
    F32,
    /// IEEE half precision, rounded to nearest even.
    F16,
    /// bfloat16, rounded to nearest even.
    Bf16,
}

impl OutputDtype {
    /// Every dtype, in the order the command line lists them.
    pub const ALL: [OutputDtype; 3] = [OutputDtype::F32, OutputDtype::F16, OutputDtype::Bf16];

    /// The spelling used on the command line and in manifests.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputDtype::F32 => "f32",
            OutputDtype::F16 => "f16",
            OutputDtype::Bf16 => "bf16",
        }
    }
}

/// Everything one conversion needs to know: what [`crate::convert()`] does with a checkpoint.
///
/// Paths are used as given (relative ones against the current directory). [`ConvertOptions::new`]
/// fills in the defaults the command line has.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertOptions {
    /// A checkpoint prefix (`model.ckpt-1000`), its `.index` or `.data-*` file, or its directory.
    pub checkpoint: PathBuf,
    /// Which model to export.
    pub model: ModelKind,
    /// The checkpoint's source layout; `None` detects it (object graph root edges, or Google TF1
    /// for name-based checkpoints).
    pub layout: Option<SourceLayout>,
    /// Output directory; with [`ModelKind::Both`] it gets `discriminator/` and `generator/`.
    pub output: PathBuf,
    /// Floating-point type of the written weights.
    pub dtype: OutputDtype,
    /// A config.json to use instead of inferring one (validated against the tensor shapes).
    pub config: Option<PathBuf>,
    /// Attention heads (default: max(1, hidden_size / 64), as ELECTRA derives it).
    pub num_heads: Option<u32>,
    /// vocab.txt to ship (default: one found beside the checkpoint or in its parent).
    pub vocab: Option<PathBuf>,
    /// `Some(true)`: the vocabulary is uncased (`do_lower_case = true`); `Some(false)`: cased;
    /// `None`: inferred from the vocabulary.
    pub lower_case: Option<bool>,
    /// `Some(true)`: strip accents (`strip_accents = true`); `Some(false)`: keep them; `None`:
    /// inferred (a cased tokenizer keeps them; a lowercase vocabulary with accented letters was
    /// built without stripping).
    pub strip_accents: Option<bool>,
    /// Write README.md, the model card, into each output directory.
    pub model_card: bool,
    /// A Hub license identifier for the model card's front matter (e.g. `apache-2.0`).
    pub license: Option<String>,
    /// How this conversion was asked for (a command line, a batch job), quoted in the model card.
    pub invocation: Option<String>,
    /// Replace a non-empty output directory.
    pub force: bool,
    /// After writing, check the converted model against the checkpoint's own weights.
    pub verify: bool,
    /// After writing, check the converted model against this reference file.
    pub reference: Option<PathBuf>,
    /// Tolerance of the `verify` / `reference` checks.
    pub tolerance: Tolerance,
}

impl ConvertOptions {
    /// Convert `checkpoint`'s `model` into `output` with every other option at its default
    /// (f32, inferred config and heads, vocab.txt found beside the checkpoint, no checks).
    pub fn new(
        checkpoint: impl Into<PathBuf>,
        model: ModelKind,
        output: impl Into<PathBuf>,
    ) -> ConvertOptions {
        ConvertOptions {
            checkpoint: checkpoint.into(),
            model,
            layout: None,
            output: output.into(),
            dtype: OutputDtype::F32,
            config: None,
            num_heads: None,
            vocab: None,
            lower_case: None,
            strip_accents: None,
            model_card: true,
            license: None,
            invocation: None,
            force: false,
            verify: false,
            reference: None,
            tolerance: Tolerance::default(),
        }
    }
}

/// Where a checkpoint comes from; each has its own tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceLayout {
    /// google-research/electra's TF1 name-based checkpoints (`electra/...`, `generator/...`).
    #[serde(rename = "google-tf1")]
    GoogleTf1,
    /// TensorFlow Model Garden (`tf-models-official`) `ElectraPretrainer`, object-based.
    ModelGarden,
    /// NVIDIA DeepLearningExamples `TensorFlow2/LanguageModeling/ELECTRA`, object-based.
    Nvidia,
    /// transformers' TF classes as saved in `tf_model.h5` (Keras names: `electra/encoder/layer_._0/...`).
    HfKeras,
}

impl SourceLayout {
    /// Every layout, in the order `--layout` lists them.
    pub const ALL: [SourceLayout; 4] = [
        SourceLayout::GoogleTf1,
        SourceLayout::ModelGarden,
        SourceLayout::Nvidia,
        SourceLayout::HfKeras,
    ];

    /// The `--layout` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceLayout::GoogleTf1 => "google-tf1",
            SourceLayout::ModelGarden => "model-garden",
            SourceLayout::Nvidia => "nvidia",
            SourceLayout::HfKeras => "hf-keras",
        }
    }

    /// What `inspect` and `map` call it.
    pub fn title(self) -> &'static str {
        match self {
            SourceLayout::GoogleTf1 => "Google Research TF1 ELECTRA",
            SourceLayout::ModelGarden => "Model Garden TF2 ElectraPretrainer",
            SourceLayout::Nvidia => "NVIDIA TF2 ELECTRA",
            SourceLayout::HfKeras => "transformers TF ELECTRA (Keras names)",
        }
    }

    /// The config.json `hidden_act` that reproduces the producer's encoder activation.
    pub(crate) fn default_hidden_act(self) -> &'static str {
        match self {
            // tf_utils.get_activation("gelu") is the tanh approximation in Model Garden.
            SourceLayout::ModelGarden => "gelu_new",
            SourceLayout::GoogleTf1 | SourceLayout::Nvidia | SourceLayout::HfKeras => "gelu",
        }
    }
}

/// Element-wise tolerance: `|a - b| <= atol + rtol * |b|` (numpy `allclose`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Tolerance {
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Tolerance {
    /// The first of `atol` / `rtol` that is not a finite number >= 0, as (flag, value).
    pub fn invalid(&self) -> Option<(&'static str, f64)> {
        [("--atol", self.atol), ("--rtol", self.rtol)]
            .into_iter()
            .find(|(_, v)| !v.is_finite() || *v < 0.0)
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            atol: 1e-4,
            rtol: 1e-4,
        }
    }
}

/// Receives progress of a conversion. Every method has an empty default, so an implementation
/// picks what it shows; [`NoProgress`] shows nothing. The library never prints.
pub trait Progress {
    /// The model files about to be written hold `total_bytes` bytes of tensors in all.
    fn begin(&mut self, total_bytes: u64) {
        let _ = total_bytes;
    }
    /// What is being done now, e.g. `"out/base (discriminator)"` or `"verifying out/base"`.
    fn stage(&mut self, what: &str) {
        let _ = what;
    }
    /// `bytes` more bytes were written.
    fn advance(&mut self, bytes: u64) {
        let _ = bytes;
    }
    /// Reading from a bucket: `fetched` bytes of the `needed` ones have arrived (called about
    /// ten times a second while tensors are fetched, before [`begin`](Progress::begin)).
    fn fetching(&mut self, fetched: u64, needed: u64) {
        let _ = (fetched, needed);
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
