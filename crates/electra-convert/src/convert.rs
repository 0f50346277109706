//! The conversion itself, as one library call: [`convert()`] takes a checkpoint through mapping,
//! writing and the optional parity checks, and reports what it wrote. The `convert` command,
//! `batch` and the tests all run conversions through it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mapping::trainer::{self, TrainerConfigError};
use crate::mapping::{self, MappingError, Plan, SkipCategory, SourceVar};
use crate::options::{ConvertOptions, ModelKind, OutputDtype};
pub use crate::options::{NoProgress, Progress};
use crate::verify::{self, ParityReport, VerifyError};
use crate::write::tokenizer::{DecisionSource, TokenizerChoices};
use crate::write::{self, card, config, ModelFiles, Staging, Tokenizer, WriteError};
use tf_checkpoint::Checkpoint;

pub use crate::source::{FetchTotals, Uploaded};

/// Why a conversion stopped. A parity check that runs and fails is *not* an error: it is reported
/// in [`ConvertedModel::verify`] and the files are kept.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A `--atol`/`--rtol` value is negative or not finite.
    #[error("{name} must be a finite number >= 0, got {value}")]
    BadTolerance {
        /// Which tolerance (`atol` or `rtol`).
        name: &'static str,
        /// The value given.
        value: f64,
    },

    /// The checkpoint could not be opened or its index is unusable.
    #[error("cannot open checkpoint {}", path.display())]
    OpenCheckpoint {
        /// The path given.
        path: PathBuf,
        /// Why it could not be opened.
        #[source]
        source: Box<crate::source::SourceError>,
    },

    /// The checkpoint holds no usable model of the requested kind.
    #[error("checkpoint {}", prefix.display())]
    Mapping {
        /// The checkpoint prefix.
        prefix: PathBuf,
        /// What the mapping found wrong.
        #[source]
        source: Box<MappingError>,
    },

    /// `--force` would delete an input of this very run.
    #[error("output directory {} holds the {what} this run reads ({}); replacing it with --force would delete it. Choose an -o outside it (e.g. {})", output.display(), input.display(), suggestion.display())]
    OutputHoldsInput {
        /// The output directory.
        output: PathBuf,
        /// Which input (`checkpoint`, `vocabulary`, ...).
        what: &'static str,
        /// That input's path.
        input: PathBuf,
        /// An output path outside it.
        suggestion: PathBuf,
    },

    /// The vocabulary has more tokens than the word embeddings have rows.
    #[error("vocabulary {} has {tokens} tokens but the model's vocab_size is {vocab_size} (rows of the word embeddings): token ids beyond {} would have no embedding; pass the vocab.txt the model was trained with (--vocab)", vocab.display(), vocab_size - 1)]
    VocabTooLarge {
        /// The vocabulary file.
        vocab: PathBuf,
        /// Its number of tokens.
        tokens: u64,
        /// Rows of the word embeddings.
        vocab_size: u64,
    },

    /// The reference file given for `--reference` is unusable (checked before anything is written).
    #[error(transparent)]
    Reference(Box<VerifyError>),

    /// The written model could not be checked against the checkpoint (the files are kept).
    #[error("{} was written, but --verify could not run against {}", dir.display(), checkpoint.display())]
    VerifyDidNotRun {
        /// The written model directory.
        dir: PathBuf,
        /// The checkpoint it was compared with.
        checkpoint: PathBuf,
        /// Why the check could not run.
        #[source]
        source: Box<VerifyError>,
    },

    /// The written model could not be checked against the reference (the files are kept).
    #[error("{} ({class}) was written, but --reference could not be checked", dir.display())]
    ReferenceNotChecked {
        /// The written model directory.
        dir: PathBuf,
        /// Its transformers class.
        class: &'static str,
        /// Why the check could not run.
        #[source]
        source: Box<VerifyError>,
    },

    /// The `--reference` file matches neither written model (`--model both`).
    #[error("reference {} fits neither the discriminator nor the generator that were written", reference.display())]
    ReferenceFitsNeither {
        /// The reference file.
        reference: PathBuf,
    },

    /// Writing the output (destination checks, config, tokenizer files, tensors, commit).
    #[error(transparent)]
    Write(#[from] WriteError),

    /// The output is a bucket URL that cannot take it (no bucket support in this build, no
    /// credentials, not empty without `--force`, or the upload failed; what was uploaded is
    /// deleted).
    #[error("cannot write the output to {url}")]
    BucketOutput {
        /// The output URL.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<crate::source::SourceError>,
    },

    /// The trainer's params.yaml / pretrain_config.json beside the checkpoint is unusable.
    #[error(transparent)]
    TrainerConfig(#[from] TrainerConfigError),
}

/// The result of one conversion.
#[derive(Debug, Serialize)]
pub struct ConvertOutcome {
    /// One per written directory (two for [`ModelKind::Both`]).
    pub outputs: Vec<ConvertedModel>,
    /// Things the user should know that did not stop the conversion.
    pub warnings: Vec<String>,
    /// From a bucket: bytes fetched and needed, requests, the checkpoint's whole size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<crate::source::FetchTotals>,
    /// To a bucket: what was uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<Uploaded>,
}

impl ConvertOutcome {
    /// Every parity check that ran passed (true when none ran).
    pub fn parity_passed(&self) -> bool {
        self.outputs
            .iter()
            .flat_map(|m| &m.verify)
            .all(|r| r.passed)
    }
}

/// One written model directory.
#[derive(Debug, Serialize)]
pub struct ConvertedModel {
    /// Which model this is.
    pub kind: ModelKind,
    /// transformers class (config.json `architectures`).
    pub class: &'static str,
    /// Where it was written.
    pub directory: PathBuf,
    /// Tensors in model.safetensors.
    pub tensors: usize,
    /// Size of model.safetensors in bytes.
    pub bytes: u64,
    /// The dtype of the weights written.
    pub dtype: OutputDtype,
    /// Checkpoint variables not exported (`electra-convert map` lists them with reasons).
    pub skipped: usize,
    /// Fine-tuning task heads found in the checkpoint (never exported).
    pub task_heads: Vec<String>,
    /// The vocabulary shipped with the model, if any.
    pub vocab: Option<PathBuf>,
    /// The `do_lower_case` written to tokenizer_config.json, if a vocabulary was shipped.
    pub do_lower_case: Option<bool>,
    /// The tokenizer decisions and where each came from (with a vocabulary).
    pub tokenizer: Option<TokenizerDecisions>,
    /// Parity reports of the checkpoint check and the reference check, in that order; empty
    /// when neither was asked for. A failed check is reported here, not as an error.
    pub verify: Vec<ParityReport>,
}

/// One tokenizer decision: its value and what settled it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Decision {
    /// The setting.
    pub value: bool,
    /// What decided it.
    pub from: DecisionSource,
}

/// The tokenizer settings written to tokenizer_config.json and tokenizer.json's normalizer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TokenizerDecisions {
    /// Tokens in the vocabulary.
    pub tokens: usize,
    /// Lower-case the text before WordPiece.
    pub do_lower_case: Decision,
    /// Strip accents after lower-casing.
    pub strip_accents: Decision,
    /// Put spaces around CJK characters.
    pub tokenize_chinese_chars: Decision,
    /// The decisions in words, as the text summary prints them.
    pub summary: String,
}

impl TokenizerDecisions {
    fn of(t: &Tokenizer) -> TokenizerDecisions {
        TokenizerDecisions {
            tokens: t.len(),
            do_lower_case: Decision {
                value: t.do_lower_case,
                from: t.casing_from,
            },
            strip_accents: Decision {
                value: t.strip_accents,
                from: t.accents_from,
            },
            tokenize_chinese_chars: Decision {
                value: t.tokenize_chinese_chars,
                from: t.chinese_chars_from,
            },
            summary: t.describe(),
        }
    }
}

/// The checkpoint's variables as the mapping sees them (`map`, `convert` and `verify` plan from
/// these).
pub fn source_vars(ckpt: &Checkpoint) -> Vec<SourceVar> {
    ckpt.tensors()
        .iter()
        .map(|t| SourceVar {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.tf_name(),
        })
        .collect()
}

/// Convert one checkpoint into a HuggingFace model directory (two with [`ModelKind::Both`]).
///
/// The output appears atomically: it is written into a staging directory beside
/// `options.output` and renamed into place, so a failed run leaves nothing behind. When
/// `options.verify` or `options.reference` is set, the committed directories are then checked;
/// a check that fails is reported in the outcome (the files are kept), a check that cannot run
/// is an error. `progress` is driven with the bytes written.
///
/// ```
/// use electra_convert::{convert, ConvertOptions, ModelKind, NoProgress};
///
/// # let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
/// let out = tempfile::tempdir()?;
/// let mut options = ConvertOptions::new(
///     repo.join("fixtures/electra/tied/model.ckpt-1000"),
///     ModelKind::Discriminator,
///     out.path().join("tied-disc"),
/// );
/// options.verify = true;
/// let outcome = convert(&options, &mut NoProgress)?;
///
/// let model = &outcome.outputs[0];
/// assert_eq!(model.class, "ElectraForPreTraining");
/// assert!(model.directory.join("model.safetensors").is_file());
/// assert!(outcome.parity_passed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn convert(
    options: &ConvertOptions,
    progress: &mut dyn Progress,
) -> Result<ConvertOutcome, ConvertError> {
    check_options(options)?;
    match crate::source::bucket_url(&options.output) {
        Some(url) => to_bucket::convert(options, url, progress),
        None => convert_local(options, progress),
    }
}

/// The checks of the options alone, before any file or network is touched.
fn check_options(options: &ConvertOptions) -> Result<(), ConvertError> {
    if let Some((name, value)) = options.tolerance.invalid() {
        return Err(ConvertError::BadTolerance { name, value });
    }
    if let Some(license) = &options.license {
        card::check_license(license)?;
    }
    if let Some(reference) = &options.reference {
        // An unusable reference file stops the run before anything is written.
        verify::check_reference(reference).map_err(|e| ConvertError::Reference(Box::new(e)))?;
    }
    Ok(())
}

/// Outputs in a bucket: the destination is checked first (credentials, and empty unless
/// `force`), the directory is built and checked locally as usual, then uploaded with
/// `config.json` and the card last. A directory whose parity check failed is not uploaded: it
/// is kept locally, and a warning says where.
mod to_bucket {
    use super::*;

    #[cfg(feature = "remote")]
    pub(super) fn convert(
        options: &ConvertOptions,
        url: &str,
        progress: &mut dyn Progress,
    ) -> Result<ConvertOutcome, ConvertError> {
        use crate::source::{remote, SourceError};
        let url = url.trim_end_matches('/').to_string();
        let fail = |e: remote::RemoteError| ConvertError::BucketOutput {
            url: url.clone(),
            source: Box::new(SourceError::Remote(Box::new(e))),
        };
        let dest = remote::RemoteUrl::parse(&url).map_err(fail)?;
        let out = remote::BucketOutput::prepare(&dest, options.force).map_err(fail)?;
        let local = out.local();
        let mut inner = options.clone();
        inner.output = local.clone();
        inner.force = false;
        let mut outcome = convert_local(&inner, progress)?;
        if !outcome.parity_passed() {
            outcome.warnings.push(format!(
                "a parity check failed, so nothing was uploaded to {url}; the converted files are kept at {}",
                out.keep().display()
            ));
            return Ok(outcome);
        }
        progress.stage(&format!("uploading to {url}"));
        let uploaded = out
            .upload(options.force, &["config.json", "README.md"])
            .map_err(fail)?;
        for m in &mut outcome.outputs {
            let rel = m.directory.strip_prefix(&local).unwrap_or(Path::new(""));
            m.directory = match rel.to_str().filter(|r| !r.is_empty()) {
                Some(r) => PathBuf::from(format!("{url}/{r}")),
                None => PathBuf::from(&url),
            };
        }
        outcome.uploaded = Some(uploaded);
        Ok(outcome)
    }

    #[cfg(not(feature = "remote"))]
    pub(super) fn convert(
        _: &ConvertOptions,
        url: &str,
        _: &mut dyn Progress,
    ) -> Result<ConvertOutcome, ConvertError> {
        Err(ConvertError::BucketOutput {
            url: url.to_string(),
            source: Box::new(crate::source::SourceError::NoBucketSupport {
                url: url.to_string(),
            }),
        })
    }
}

/// A conversion into a local directory.
fn convert_local(
    options: &ConvertOptions,
    progress: &mut dyn Progress,
) -> Result<ConvertOutcome, ConvertError> {
    write::check_destination(&options.output, options.force)?;
    let ckpt = crate::source::open(&options.checkpoint).map_err(|source| {
        ConvertError::OpenCheckpoint {
            path: options.checkpoint.clone(),
            source: Box::new(source),
        }
    })?;
    spare_inputs(options, &ckpt)?;
    let vars = source_vars(&ckpt);
    let graph = ckpt
        .object_graph()
        .map_err(|source| ConvertError::OpenCheckpoint {
            path: options.checkpoint.clone(),
            source: Box::new(source.into()),
        })?;
    let plans = mapping::plan_checkpoint(options.model, &vars, graph.as_ref(), options.layout)
        .map_err(|source| ConvertError::Mapping {
            prefix: ckpt.prefix().to_path_buf(),
            source: Box::new(source),
        })?;
    let layout = plans[0].source_layout;
    // transformers' TF uploads carry the config.json they were saved with: it is completed and
    // checked against the shapes the same way as a `--config` file.
    let config_file = match (&options.config, layout) {
        (None, mapping::SourceLayout::HfKeras) => {
            Some(ckpt.side_dir().join("config.json")).filter(|p| p.is_file())
        }
        (given, _) => given.clone(),
    };
    let trainer = match config_file {
        // A SavedModel's config is its keras_metadata.pb, never a params.yaml near it.
        None => match ckpt.saved_model() {
            Some(facts) => facts
                .keras
                .as_ref()
                .map(|k| keras_settings(ckpt.side_dir(), k)),
            None => trainer::find(ckpt.side_dir(), layout)?,
        },
        Some(_) => None,
    };

    let mut warnings = Vec::new();
    let mut configs = Vec::with_capacity(plans.len());
    for plan in &plans {
        let value = match &config_file {
            Some(path) => {
                let (value, notes) =
                    config::from_user_file(path, plan, options.num_heads, options.dtype)?;
                warnings.extend(notes);
                value
            }
            None => config::infer_with(
                plan,
                options.num_heads,
                options.dtype,
                trainer.as_ref().map(|t| t.tower(plan.kind)),
            )?,
        };
        configs.push(value);
        if let Some(note) = mapping::head_caveat(plan) {
            warnings.push(note.to_owned());
        }
    }
    let trainer_vocab = trainer.as_ref().and_then(|t| t.vocab_file.clone());
    let tokenizer = load_tokenizer(options, &ckpt, &plans, trainer_vocab, &mut warnings)?;
    let tasks = &plans[0].task_heads;
    if !tasks.is_empty() {
        warnings.push(format!(
            "fine-tuning task head(s) found and not exported: {} (`task_specific/...`); transformers' ELECTRA classes have no equivalent of the original heads",
            tasks.join(", ")
        ));
    }
    let unrecognised: Vec<&str> = plans[0]
        .skipped
        .iter()
        .filter(|s| s.category == SkipCategory::Unrecognised)
        .map(|s| s.tf.as_str())
        .collect();
    if !unrecognised.is_empty() {
        warnings.push(format!(
            "variables outside ELECTRA's layout were left out: {}",
            unrecognised.join(", ")
        ));
    }

    // From a bucket: fetch exactly the planned tensors (both towers' union, once) and the step
    // counter; every later read (writing, --verify) is of these.
    let needed = plans
        .iter()
        .flat_map(|p| p.entries.iter().map(|e| e.tf.as_str()))
        .chain(GLOBAL_STEP);
    if ckpt.fetched().is_some() {
        progress.stage(ckpt.location());
    }
    ckpt.prefetch_reporting(needed, progress)
        .map_err(|source| ConvertError::OpenCheckpoint {
            path: options.checkpoint.clone(),
            source: Box::new(source),
        })?;

    let total: u64 = plans
        .iter()
        .map(|p| write::safetensors_size(p, options.dtype))
        .sum();
    progress.begin(total);

    // A checkpoint without a readable global_step simply has none on the card.
    // TF1 `global_step`; TF2 Model Garden `global_step/...`, NVIDIA `step/...`.
    let global_step = GLOBAL_STEP
        .into_iter()
        .find(|name| ckpt.get(name).is_some())
        .and_then(|name| ckpt.read_i64_scalar(name).ok());
    let card_context = CardContext {
        options,
        global_step,
        tokenizer: tokenizer.as_ref(),
        both: options.model == ModelKind::Both,
        cwd: std::env::current_dir().unwrap_or_default(),
    };

    let staging = Staging::begin(&options.output, options.force)?;
    let both = options.model == ModelKind::Both;
    let mut outputs = Vec::with_capacity(plans.len());
    for (plan, cfg) in plans.iter().zip(&configs) {
        let sub = plan.kind.as_str();
        let dir = if both {
            let d = staging.path().join(sub);
            std::fs::create_dir(&d)
                .map_err(|e| WriteError::Io {
                    path: d.clone(),
                    error: e.to_string(),
                })
                .map_err(|e| staging.attribute(e))?;
            d
        } else {
            staging.path().to_path_buf()
        };
        progress.stage(&format!("{} ({})", options.output.display(), sub));
        let files = ModelFiles {
            plan,
            config: cfg,
            tokenizer: tokenizer.as_ref(),
            dtype: options.dtype,
        };
        let written = write::write_model_files(&dir, &files, ckpt.checkpoint(), &mut |n| {
            progress.advance(n)
        })
        .map_err(|e| staging.attribute(e))?;
        if options.model_card {
            card_context
                .write(&dir, plan, cfg, &written, &[])
                .map_err(|e| staging.attribute(e))?;
        }
        outputs.push(ConvertedModel {
            kind: plan.kind,
            class: plan.class,
            directory: if both {
                options.output.join(sub)
            } else {
                options.output.clone()
            },
            tensors: written.tensors,
            bytes: written.bytes,
            dtype: options.dtype,
            skipped: plan.skipped.len(),
            task_heads: plan.task_heads.clone(),
            vocab: tokenizer.as_ref().map(|t| t.vocab.clone()),
            do_lower_case: tokenizer.as_ref().map(|t| t.do_lower_case),
            tokenizer: tokenizer.as_ref().map(TokenizerDecisions::of),
            verify: Vec::new(),
        });
    }
    staging.commit()?;
    // Checks run on the committed directories: a failed check deletes nothing, it is reported
    // (verify[..].passed == false) and the caller decides what that means.
    for (i, m) in outputs.iter_mut().enumerate() {
        if options.verify || options.reference.is_some() {
            progress.stage(&format!("verifying {}", m.directory.display()));
            m.verify = run_checks(options, &ckpt, &m.directory, m.class, both)?;
            if options.model_card && !m.verify.is_empty() {
                // The card gains the results; README.md is replaced by rename, never half-written.
                let lines: Vec<card::ParityLine> = m
                    .verify
                    .iter()
                    .map(|r| card_context.parity_line(r))
                    .collect();
                let written = write::Written {
                    tensors: m.tensors,
                    bytes: m.bytes,
                };
                card_context.write(&m.directory, &plans[i], &configs[i], &written, &lines)?;
            }
        }
    }
    if let Some(reference) = &options.reference {
        if both
            && outputs
                .iter()
                .all(|m| m.verify.iter().all(|r| r.mode != "reference"))
        {
            return Err(ConvertError::ReferenceFitsNeither {
                reference: reference.clone(),
            });
        }
    }
    Ok(ConvertOutcome {
        outputs,
        warnings,
        fetched: ckpt.fetched(),
        uploaded: None,
    })
}

/// Where the step counter is: TF1 `global_step`; TF2 Model Garden `global_step/...`, NVIDIA
/// `step/...`.
const GLOBAL_STEP: [&str; 3] = [
    "global_step",
    "global_step/.ATTRIBUTES/VARIABLE_VALUE",
    "step/.ATTRIBUTES/VARIABLE_VALUE",
];

/// What every model card of one run shares.
struct CardContext<'a> {
    options: &'a ConvertOptions,
    global_step: Option<i64>,
    tokenizer: Option<&'a Tokenizer>,
    both: bool,
    cwd: PathBuf,
}

impl CardContext<'_> {
    fn parity_line(&self, r: &ParityReport) -> card::ParityLine {
        card::ParityLine {
            mode: r.mode.clone(),
            against: card::display_path(&r.against, &self.cwd),
            outputs: r
                .outputs
                .iter()
                .map(|(name, c)| (name.clone(), c.max_abs_diff))
                .collect(),
            atol: r.tolerance.atol,
            rtol: r.tolerance.rtol,
            passed: r.passed,
        }
    }

    /// Write `dir/README.md` durably (through a synced temporary file renamed over it).
    fn write(
        &self,
        dir: &Path,
        plan: &Plan,
        cfg: &serde_json::Value,
        written: &write::Written,
        parity: &[card::ParityLine],
    ) -> Result<(), WriteError> {
        let facts = card::CardFacts {
            plan,
            num_attention_heads: cfg["num_attention_heads"].as_u64().unwrap_or(0),
            checkpoint: card::display_path(&self.options.checkpoint, &self.cwd),
            global_step: self.global_step,
            dtype: self.options.dtype,
            tensors: written.tensors,
            bytes: written.bytes,
            tokenizer: self.tokenizer.map(|t| (t.len(), t.describe())),
            invocation: self.options.invocation.clone(),
            both: self.both,
            license: self.options.license.as_deref(),
            parity,
        };
        let text = card::model_card(&facts, env!("CARGO_PKG_VERSION"));
        write::replace_text(&dir.join("README.md"), &text)
    }
}

/// The parity checks the options ask for, run on a freshly written directory.
fn run_checks(
    options: &ConvertOptions,
    ckpt: &crate::source::Source,
    dir: &Path,
    class: &'static str,
    both: bool,
) -> Result<Vec<ParityReport>, ConvertError> {
    let tol = options.tolerance;
    let mut reports = Vec::new();
    if options.verify {
        // The source already open: a checkpoint in a bucket is not fetched again.
        let report = verify::verify_against_source(dir, ckpt, tol, 0).map_err(|source| {
            ConvertError::VerifyDidNotRun {
                dir: dir.to_path_buf(),
                checkpoint: options.checkpoint.clone(),
                source: Box::new(source),
            }
        })?;
        reports.push(report);
    }
    if let Some(reference) = &options.reference {
        match verify::verify_against_reference(dir, reference, tol) {
            Ok(report) => reports.push(report),
            // With both models, one reference file fits only one of the two.
            Err(VerifyError::ReferenceMismatch { .. }) if both => {}
            Err(source) => {
                return Err(ConvertError::ReferenceNotChecked {
                    dir: dir.to_path_buf(),
                    class,
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(reports)
}

/// A SavedModel encoder's Keras config (keras_metadata.pb) as the trainer settings config
/// inference takes: heads and `hidden_act` (from `inner_activation`; checked when opened).
fn keras_settings(
    dir: &Path,
    k: &crate::source::keras_metadata::EncoderMetadata,
) -> trainer::TrainerConfig {
    let tower = trainer::TowerSettings {
        num_attention_heads: k.num_attention_heads,
        hidden_act: k
            .inner_activation
            .as_deref()
            .and_then(crate::source::keras_metadata::hidden_act)
            .map(str::to_owned),
        layer_norm_eps: None,
    };
    trainer::TrainerConfig {
        path: dir.join("keras_metadata.pb"),
        discriminator: tower.clone(),
        generator: tower,
        vocab_file: None,
    }
}

fn load_tokenizer(
    options: &ConvertOptions,
    ckpt: &crate::source::Source,
    plans: &[Plan],
    trainer_vocab: Option<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<Option<Tokenizer>, ConvertError> {
    // A flag beats what the form records (a SavedModel's `do_lower_case`), which beats the
    // vocabulary.
    let recorded_lower = options
        .lower_case
        .is_none()
        .then(|| ckpt.own_lower_case())
        .flatten();
    let lower = options.lower_case.or(recorded_lower);
    let dir = ckpt.side_dir().to_path_buf();
    let own_vocab = options
        .vocab
        .is_none()
        .then(|| ckpt.own_vocab().map(Path::to_path_buf))
        .flatten();
    let Some(vocab) = own_vocab
        .or_else(|| write::tokenizer::find_vocab(&dir, options.vocab.as_deref()))
        .or(trainer_vocab)
    else {
        warnings.push(format!(
            "no vocab.txt in {} or its parent directory, so no tokenizer files were written; pass --vocab FILE to include one{}",
            dir.display(),
            if lower.is_some() || options.strip_accents.is_some() {
                " (--cased/--uncased/--strip-accents/--no-strip-accents had no effect)"
            } else {
                ""
            }
        ));
        return Ok(None);
    };
    let mut tok = Tokenizer::load(
        &vocab,
        TokenizerChoices {
            lower,
            strip_accents: options.strip_accents,
        },
    )?;
    if recorded_lower.is_some() {
        tok.casing_from = DecisionSource::SavedModel;
    }
    let vocab_size = plans[0].dims.vocab_size;
    let n = tok.len() as u64;
    if n > vocab_size {
        return Err(ConvertError::VocabTooLarge {
            vocab,
            tokens: n,
            vocab_size,
        });
    }
    if n < vocab_size {
        warnings.push(format!(
            "vocabulary {} has {n} tokens, fewer than the model's vocab_size {vocab_size} (padded embedding table?)",
            vocab.display()
        ));
    }
    let missing = tok.missing_specials();
    if !missing.is_empty() {
        warnings.push(format!(
            "vocabulary {} lacks the special token(s) {}; tokenizer.json adds them after the last vocabulary id (ids {} on), as transformers 5 does, and the model has no embedding for ids >= {vocab_size}",
            vocab.display(),
            missing.join(", "),
            n
        ));
    }
    Ok(Some(tok))
}

/// Replacing the output directory must not delete what this run reads: refuse when that
/// directory is, or contains, the checkpoint being converted or the reference file (both are
/// still read after the old directory is deleted, and the checkpoint is the user's training
/// state).
fn spare_inputs(
    options: &ConvertOptions,
    ckpt: &crate::source::Source,
) -> Result<(), ConvertError> {
    // An output that does not exist yet replaces nothing.
    let Ok(output) = options.output.canonicalize() else {
        return Ok(());
    };
    let mut inputs = vec![("checkpoint", ckpt.side_dir().to_path_buf())];
    // A zip's side directory is a private temporary one: the archive itself is the input.
    if let (crate::source::Form::Zip, (archive, Some(_))) = (
        ckpt.form(),
        crate::source::zip::split_zip_selector(ckpt.location()),
    ) {
        inputs.push(("checkpoint", archive));
    }
    if let Some(reference) = &options.reference {
        inputs.push(("reference", reference.clone()));
    }
    for (what, path) in inputs {
        let Ok(path) = path.canonicalize() else {
            continue;
        };
        if path.starts_with(&output) {
            let suggestion = output.with_file_name(format!(
                "{}-hf",
                output
                    .file_name()
                    .map_or_else(|| "model".into(), |n| n.to_string_lossy())
            ));
            return Err(ConvertError::OutputHoldsInput {
                output: options.output.clone(),
                what,
                input: path,
                suggestion,
            });
        }
    }
    Ok(())
}
