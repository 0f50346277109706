//! The command line, defined once: every subcommand, flag, default and help example lives here.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

use electra_convert::export::{AdamSlots, ExportOptions, ExportSource};
use electra_convert::mapping::SourceLayout;
use electra_convert::options::{ConvertOptions, ModelKind, OutputDtype};
use electra_convert::verify::Tolerance;

const TOP_EXAMPLES: &str = "\
Examples:
  electra-convert --model discriminator fixtures/electra/tied/model.ckpt-1000 -o out/tied-disc
  electra-convert inspect fixtures/electra/tied/model.ckpt-1000
  electra-convert map --model generator fixtures/electra/tied/model.ckpt-1000
  electra-convert verify out/tied-disc --checkpoint fixtures/electra/tied/model.ckpt-1000
  electra-convert export --checkpoint fixtures/electra/released/electra_tiny -o out/resume/electra_tiny
  electra-convert batch sweep.toml --jobs 2 --report report.json

Running without a subcommand means `convert`.

Exit codes: 0 success, 1 error (bad or unreadable input, I/O), 2 usage error,
3 parity check failed.";

const CONVERT_EXAMPLES: &str = "\
Examples:
  electra-convert convert --model discriminator fixtures/electra/tied/model.ckpt-1000 -o out/disc
  electra-convert --model both runs/base/ -o out/base --vocab vocab.txt --verify
  electra-convert --model generator ckpt/electra_small -o out/gen --dtype f16 --force
  electra-convert --model encoder finetuned/model.ckpt-2000 -o out/enc --json";

const INSPECT_EXAMPLES: &str = "\
Examples:
  electra-convert inspect fixtures/electra/tied/model.ckpt-1000
  electra-convert inspect --all --json fixtures/electra/tied/
  electra-convert inspect out/disc/model.safetensors
  electra-convert inspect out/disc";

const MAP_EXAMPLES: &str = "\
Examples:
  electra-convert map --model discriminator fixtures/electra/tied/model.ckpt-1000
  electra-convert map --model generator fixtures/electra/tied/model.ckpt-1000 --json";

const EXPORT_EXAMPLES: &str = "\
Examples:
  electra-convert export --discriminator fixtures/electra/tied/expected/discriminator --generator fixtures/electra/tied/expected/generator -o out/pretrain/model.ckpt-1000 --global-step 1000 --adam-slots zeros
  electra-convert export --checkpoint fixtures/electra/released/electra_tiny -o out/resume/electra_tiny
  electra-convert export --discriminator fixtures/electra/released/expected/discriminator -o out/disc/model.ckpt-0 --json";

const VERIFY_EXAMPLES: &str = "\
Examples:
  electra-convert verify out/disc --reference refs/disc.safetensors
  electra-convert verify out/gen --reference refs/gen.npz --atol 1e-5 --json
  electra-convert verify out/disc --checkpoint fixtures/electra/tied/model.ckpt-1000
  electra-convert verify out/disc --text \"the chef cooked the meal\"
  electra-convert verify out/gen --text \"the chef [MASK] the meal\" --text \"paris is a city\"
  electra-convert verify out/gen --text-file sentences.txt --json";

const BATCH_EXAMPLES: &str = "\
Examples:
  electra-convert batch sweep.toml
  electra-convert batch sweep.toml --jobs 4 --report report.json --junit junit.xml
  electra-convert batch sweep.json --shard 2/3 --force --quiet
  electra-convert batch sweep.toml --dry-run";

/// Convert Google Research ELECTRA TensorFlow checkpoints into HuggingFace model
/// directories, and prove with a candle forward pass that they compute the same thing.
#[derive(Debug, Parser)]
#[command(name = "electra-convert", version, after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub bucket: BucketArgs,
}

/// How checkpoints in buckets (`gs://`, `s3://`, `az://`, `https://`) are read, for every command.
#[derive(Debug, Clone, Default, Args)]
pub struct BucketArgs {
    /// Read public buckets without credentials (no request signing; reads and listings only).
    #[arg(long, global = true)]
    pub anonymous: bool,
    /// Keep the byte ranges fetched from buckets in DIR (keyed by URL and ETag/generation), so
    /// later runs on the same checkpoint fetch nothing twice; by default they go to a temporary
    /// directory removed at exit.
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert a checkpoint into a HuggingFace model directory (the default command).
    #[command(after_help = CONVERT_EXAMPLES)]
    Convert(ConvertArgs),
    /// List the tensors of a TF checkpoint, a .safetensors file or a model directory.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Show how each checkpoint variable maps to a HuggingFace tensor, and why others are skipped.
    #[command(after_help = MAP_EXAMPLES)]
    Map(MapArgs),
    /// Write a TF checkpoint in the google-research/electra pretraining layout from HuggingFace
    /// directories, or complete a released checkpoint with Adam slots and global_step.
    #[command(after_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Check a converted model against reference outputs or the original checkpoint, or show
    /// what it predicts for a text.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Convert every job of a TOML or JSON manifest, in parallel, with reports for CI.
    #[command(after_help = BATCH_EXAMPLES)]
    Batch(BatchArgs),
}

/// A library enum as the command line spells and explains it. The enums are the library's
/// ([`electra_convert::options`] and others); the command line only spells them and says what
/// each means.
pub trait Choice: Copy + Send + Sync + 'static {
    /// Every value, in the order `--help` lists them.
    fn variants() -> &'static [Self];
    /// The spelling on the command line.
    fn spelling(self) -> &'static str;
    /// One line of `--help` for this value.
    fn help(self) -> &'static str;
}

/// The clap value parser of a [`Choice`]: only its spellings are accepted, each listed with its
/// help line.
pub fn choice<T: Choice>() -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(
        T::variants()
            .iter()
            .map(|v| PossibleValue::new(v.spelling()).help(v.help())),
    )
    .map(|spelled| {
        T::variants()
            .iter()
            .copied()
            .find(|v| v.spelling() == spelled)
            .unwrap_or(T::variants()[0])
    })
}

impl Choice for ModelKind {
    fn variants() -> &'static [Self] {
        &ModelKind::ALL
    }

    fn spelling(self) -> &'static str {
        self.as_str()
    }

    fn help(self) -> &'static str {
        match self {
            ModelKind::Discriminator => {
                "ElectraForPreTraining: the discriminator tower and its replaced-token head"
            }
            ModelKind::Generator => {
                "ElectraForMaskedLM: the generator tower, shared embeddings and the MLM head"
            }
            ModelKind::Encoder => "ElectraModel: the discriminator's transformer without a head",
            ModelKind::Both => "Both heads: DIR/discriminator and DIR/generator",
        }
    }
}

impl Choice for SourceLayout {
    fn variants() -> &'static [Self] {
        &SourceLayout::ALL
    }

    fn spelling(self) -> &'static str {
        self.as_str()
    }

    fn help(self) -> &'static str {
        match self {
            SourceLayout::GoogleTf1 => "google-research/electra TF1 name-based checkpoints",
            SourceLayout::ModelGarden => {
                "TensorFlow Model Garden ElectraPretrainer (tf.train.Checkpoint, params.yaml)"
            }
            SourceLayout::Nvidia => {
                "NVIDIA DeepLearningExamples TF2 ELECTRA (tf.train.Checkpoint, pretrain_config.json)"
            }
            SourceLayout::HfKeras => {
                "transformers' TF classes as saved in tf_model.h5 (Keras names, config.json beside)"
            }
        }
    }
}

impl Choice for OutputDtype {
    fn variants() -> &'static [Self] {
        &OutputDtype::ALL
    }

    fn spelling(self) -> &'static str {
        self.as_str()
    }

    fn help(self) -> &'static str {
        match self {
            OutputDtype::F32 => "32-bit float, exactly the checkpoint's values (default)",
            OutputDtype::F16 => "IEEE half precision, rounded to nearest even",
            OutputDtype::Bf16 => "bfloat16, rounded to nearest even",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ConvertArgs {
    /// Checkpoint: a prefix (model.ckpt-1000), its .index or .data-* file, or a directory; a zip
    /// of one (electra_small.zip; PATH.zip#FOLDER/PREFIX picks one of several); or a HuggingFace
    /// TF upload: tf_model.h5, tf_model.h5.index.json, a TF-format model.safetensors, or their
    /// directory.
    pub checkpoint: PathBuf,

    /// Which model to export.
    #[arg(short, long, value_parser = choice::<ModelKind>())]
    pub model: ModelKind,

    /// The checkpoint's source layout (default: detected from the checkpoint).
    #[arg(long, value_parser = choice::<SourceLayout>(), value_name = "LAYOUT")]
    pub layout: Option<SourceLayout>,

    /// Output directory (created; with --model both it gets discriminator/ and generator/).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,

    /// Floating-point type of the written weights.
    #[arg(long, value_parser = choice::<OutputDtype>(), default_value = "f32")]
    pub dtype: OutputDtype,

    /// Use this config.json instead of inferring one; it is validated against the tensor shapes.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Number of attention heads (default: max(1, hidden_size / 64), as ELECTRA derives it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub num_heads: Option<u32>,

    /// vocab.txt to ship with the model (default: one found beside the checkpoint or in its parent).
    #[arg(long, value_name = "FILE")]
    pub vocab: Option<PathBuf>,

    /// The vocabulary is cased: write do_lower_case = false (default: inferred from vocab.txt).
    #[arg(long, conflicts_with = "uncased")]
    pub cased: bool,

    /// The vocabulary is uncased: write do_lower_case = true.
    #[arg(long)]
    pub uncased: bool,

    /// Strip accents when tokenizing: write strip_accents = true (default: inferred; a cased
    /// vocabulary keeps accents, a lowercase one with accented letters too).
    #[arg(long, conflicts_with = "no_strip_accents")]
    pub strip_accents: bool,

    /// Keep accents when tokenizing: write strip_accents = false (ELECTRA's --no-strip-accents).
    #[arg(long)]
    pub no_strip_accents: bool,

    /// Do not write README.md (the model card).
    #[arg(long)]
    pub no_model_card: bool,

    /// License for the model card's front matter, a Hub identifier such as apache-2.0 (default: none stated).
    #[arg(long, value_name = "ID", value_parser = parse_license)]
    pub license: Option<String>,

    /// Replace a non-empty output directory.
    #[arg(long)]
    pub force: bool,

    /// After writing, check the converted model against the checkpoint's own weights.
    #[arg(long)]
    pub verify: bool,

    /// After writing, check the converted model against this reference file (.safetensors or .npz).
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,

    /// Absolute tolerance for --verify / --reference.
    #[arg(long, default_value_t = 1e-4, value_name = "X", value_parser = parse_tolerance)]
    pub atol: f64,

    /// Relative tolerance for --verify / --reference.
    #[arg(long, default_value_t = 1e-4, value_name = "X", value_parser = parse_tolerance)]
    pub rtol: f64,

    /// No progress bar and no notes on stderr (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

impl ConvertArgs {
    /// The library options these arguments ask for (`quiet` and `json` stay with the command).
    pub fn to_options(&self) -> ConvertOptions {
        ConvertOptions {
            checkpoint: self.checkpoint.clone(),
            model: self.model,
            layout: self.layout,
            output: self.output.clone(),
            dtype: self.dtype,
            config: self.config.clone(),
            num_heads: self.num_heads,
            vocab: self.vocab.clone(),
            lower_case: match (self.cased, self.uncased) {
                (true, _) => Some(false),
                (_, true) => Some(true),
                _ => None,
            },
            strip_accents: match (self.strip_accents, self.no_strip_accents) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            model_card: !self.no_model_card,
            license: self.license.clone(),
            invocation: None,
            force: self.force,
            verify: self.verify,
            reference: self.reference.clone(),
            tolerance: Tolerance {
                atol: self.atol,
                rtol: self.rtol,
            },
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// A checkpoint (prefix, .index, .data-*, directory, PATH.zip[#FOLDER/PREFIX]), a .safetensors
    /// file or a model directory.
    pub path: PathBuf,

    /// List optimizer slots (adam_m, adam_v) and global_step too, instead of a one-line summary.
    #[arg(long)]
    pub all: bool,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Choice for AdamSlots {
    fn variants() -> &'static [Self] {
        &[AdamSlots::None, AdamSlots::Zeros]
    }

    fn spelling(self) -> &'static str {
        match self {
            AdamSlots::None => "none",
            AdamSlots::Zeros => "zeros",
        }
    }

    fn help(self) -> &'static str {
        match self {
            AdamSlots::None => "no optimizer slots",
            AdamSlots::Zeros => "adam_m and adam_v of zeros for every trainable variable",
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["discriminator", "checkpoint"])))]
pub struct ExportArgs {
    /// HuggingFace ElectraForPreTraining directory (config.json + model.safetensors).
    #[arg(long, value_name = "DIR", conflicts_with = "checkpoint")]
    pub discriminator: Option<PathBuf>,

    /// HuggingFace ElectraForMaskedLM directory of the same model (pretraining needs it).
    #[arg(long, value_name = "DIR", requires = "discriminator")]
    pub generator: Option<PathBuf>,

    /// A TF1 ELECTRA checkpoint (e.g. a released one) to rewrite with the Adam slots and
    /// global_step it lacks; every existing variable is kept byte for byte.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: Option<PathBuf>,

    /// Output prefix OUT/PREFIX: the directory OUT is created and gets PREFIX.index,
    /// PREFIX.data-00000-of-00001 and a `checkpoint` state file.
    #[arg(short, long, value_name = "OUT/PREFIX")]
    pub output: PathBuf,

    /// global_step to write (default 0; with --checkpoint only when it has none).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..))]
    pub global_step: Option<i64>,

    /// Adam slots to add (default: none from HuggingFace directories, zeros with --checkpoint).
    #[arg(long, value_parser = choice::<AdamSlots>(), value_name = "KIND")]
    pub adam_slots: Option<AdamSlots>,

    /// Replace a non-empty output directory OUT.
    #[arg(long)]
    pub force: bool,

    /// No progress bar and no notes on stderr (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print a machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

impl ExportArgs {
    /// The library options these arguments describe.
    pub fn to_options(&self) -> ExportOptions {
        let source = match (&self.discriminator, &self.checkpoint) {
            (Some(d), _) => ExportSource::Hf {
                discriminator: d.clone(),
                generator: self.generator.clone(),
            },
            // clap's group makes one of the two present.
            (None, c) => ExportSource::Checkpoint(c.clone().unwrap_or_default()),
        };
        ExportOptions {
            source,
            output: self.output.clone(),
            global_step: self.global_step,
            adam_slots: self.adam_slots,
            force: self.force,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct MapArgs {
    /// Checkpoint: a prefix, its .index or .data-* file, a directory or PATH.zip[#FOLDER/PREFIX].
    /// A HuggingFace model directory shows the reverse direction (what `export` writes for each
    /// of its tensors).
    pub checkpoint: PathBuf,

    /// Which model's table to apply.
    #[arg(short, long, value_parser = choice::<ModelKind>())]
    pub model: ModelKind,

    /// The checkpoint's source layout (default: detected from the checkpoint).
    #[arg(long, value_parser = choice::<SourceLayout>(), value_name = "LAYOUT")]
    pub layout: Option<SourceLayout>,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
#[command(group(
    clap::ArgGroup::new("against")
        .required(true)
        .args(["reference", "checkpoint", "text", "text_file"])
))]
#[command(group(clap::ArgGroup::new("texts").multiple(true).args(["text", "text_file"])))]
pub struct VerifyArgs {
    /// A converted model directory (config.json + model.safetensors).
    pub model_dir: PathBuf,

    /// Reference inputs and outputs (.safetensors or .npz): input_ids, optional attention_mask
    /// and token_type_ids, and logits and/or last_hidden_state.
    #[arg(long, value_name = "FILE")]
    pub reference: Option<PathBuf>,

    /// Compare against the original TF checkpoint's weights, read by their own TF names.
    #[arg(long, value_name = "CKPT")]
    pub checkpoint: Option<PathBuf>,

    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-4, value_name = "X", value_parser = parse_tolerance)]
    pub atol: f64,

    /// Relative tolerance.
    #[arg(long, default_value_t = 1e-4, value_name = "X", value_parser = parse_tolerance)]
    pub rtol: f64,

    /// Seed for the generated inputs of --checkpoint.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Run the model on TEXT (repeatable), tokenized by the directory's own tokenizer, and show
    /// what it predicts: per token the replaced probability (discriminator), the top 5 at each
    /// mask token or the top-1 reconstruction (generator), the hidden state's shape and norm
    /// (encoder). No tolerance, no verdict: a look at the model.
    #[arg(long, value_name = "TEXT")]
    pub text: Vec<String>,

    /// Like --text, for every line of FILE (UTF-8; blank lines are skipped).
    #[arg(long, value_name = "FILE")]
    pub text_file: Option<PathBuf>,

    /// With --text / --text-file: refuse a text longer than max_position_embeddings tokens
    /// instead of using its first max_position_embeddings tokens.
    #[arg(long, requires = "texts")]
    pub no_truncate: bool,

    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct BatchArgs {
    /// Manifest (.toml or .json) listing the jobs.
    pub manifest: PathBuf,

    /// Jobs run at once (default: the number of cores).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,

    /// Stop starting new jobs after the first failure.
    #[arg(long)]
    pub fail_fast: bool,

    /// Replace existing non-empty output directories.
    #[arg(long)]
    pub force: bool,

    /// Run only shard I of N (1-based), a deterministic split by job order.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Print the plan and exit without converting.
    #[arg(long)]
    pub dry_run: bool,

    /// Write a JSON report of every job.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write a JUnit XML report, one testcase per job.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// No progress bars, no per-job `ok` lines or notes (failures are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--license`: a Hub license identifier (anything else is a usage error, exit 2).
fn parse_license(text: &str) -> Result<String, String> {
    electra_convert::write::card::check_license(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}

/// `--atol` / `--rtol`: a finite number >= 0 (anything else is a usage error, exit 2).
fn parse_tolerance(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("must be a finite number >= 0, got {v}")),
        Err(e) => Err(format!("not a number ({e})")),
    }
}

/// Names that select a subcommand (or a top-level flag) as the first argument.
const FIRST_WORDS: &[&str] = &[
    "convert",
    "inspect",
    "map",
    "verify",
    "export",
    "batch",
    "help",
    "-h",
    "--help",
    "-V",
    "--version",
];

/// `electra-convert --model X CKPT -o DIR` means `electra-convert convert --model X CKPT -o DIR`:
/// insert `convert` when the first argument names no subcommand.
pub fn with_default_subcommand(args: Vec<OsString>) -> Vec<OsString> {
    let mut args = args;
    if let Some(first) = args.get(1) {
        let names_subcommand = first
            .to_str()
            .is_some_and(|first| FIRST_WORDS.contains(&first));
        if !names_subcommand {
            args.insert(1, OsString::from("convert"));
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The help examples are meant to be pasted from the repository root: every fixture they
    /// name must exist.
    #[test]
    fn help_examples_name_existing_fixtures() {
        let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let all = [
            TOP_EXAMPLES,
            CONVERT_EXAMPLES,
            INSPECT_EXAMPLES,
            MAP_EXAMPLES,
            VERIFY_EXAMPLES,
            EXPORT_EXAMPLES,
            BATCH_EXAMPLES,
        ];
        let mut seen = 0;
        for word in all.iter().flat_map(|text| text.split_whitespace()) {
            if let Some(rest) = word.strip_prefix("fixtures/") {
                seen += 1;
                let path = root.join("fixtures").join(rest);
                let index = PathBuf::from(format!("{}.index", path.display()));
                assert!(path.exists() || index.exists(), "{word} does not exist");
            }
        }
        assert!(seen >= 5, "only {seen} fixture paths in the examples");
    }

    #[test]
    fn negative_or_infinite_tolerance_is_a_usage_error() {
        for bad in ["--atol=-1", "--rtol=inf", "--atol=NaN", "--rtol=x"] {
            let err =
                Cli::try_parse_from(["electra-convert", "verify", "d", "--checkpoint", "c", bad])
                    .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        let ok = Cli::try_parse_from([
            "electra-convert",
            "verify",
            "d",
            "--checkpoint",
            "c",
            "--atol=0",
        ]);
        assert!(ok.is_ok());
    }

    #[test]
    fn bare_flags_mean_convert() {
        let args = with_default_subcommand(
            [
                "electra-convert",
                "--model",
                "discriminator",
                "ck",
                "-o",
                "d",
            ]
            .map(OsString::from)
            .to_vec(),
        );
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.command {
            Command::Convert(c) => {
                assert_eq!(c.model, ModelKind::Discriminator);
                assert_eq!(c.checkpoint, PathBuf::from("ck"));
                assert_eq!(c.output, PathBuf::from("d"));
            }
            other => panic!("expected convert, got {other:?}"),
        }
    }

    #[test]
    fn subcommand_names_are_left_alone() {
        let args = with_default_subcommand(
            ["electra-convert", "inspect", "x"]
                .map(OsString::from)
                .to_vec(),
        );
        assert!(matches!(
            Cli::try_parse_from(args).unwrap().command,
            Command::Inspect(_)
        ));
    }
}
