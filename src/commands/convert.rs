//! `convert`: checkpoint → HuggingFace model directory.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::cli::{ConvertArgs, ModelKind, OutputDtype};
use crate::exit;
use crate::mapping::{self, Plan, SkipCategory, SourceVar};
use crate::verify::{self, ParityReport};
use crate::write::{self, config, ModelFiles, Staging, Tokenizer, WriteError};

/// The result of one `convert` run.
#[derive(Debug, Serialize)]
pub struct ConvertOutcome {
    /// One per written directory (two for `--model both`).
    pub outputs: Vec<ConvertedModel>,
    /// Things the user should know that did not stop the conversion.
    pub warnings: Vec<String>,
}

/// One written model directory.
#[derive(Debug, Serialize)]
pub struct ConvertedModel {
    pub kind: ModelKind,
    /// transformers class (config.json `architectures`).
    pub class: &'static str,
    pub directory: PathBuf,
    /// Tensors in model.safetensors.
    pub tensors: usize,
    /// Size of model.safetensors in bytes.
    pub bytes: u64,
    pub dtype: OutputDtype,
    /// Checkpoint variables not exported (`electra-convert map` lists them with reasons).
    pub skipped: usize,
    /// Fine-tuning task heads found in the checkpoint (never exported).
    pub task_heads: Vec<String>,
    /// The vocabulary shipped with the model, if any.
    pub vocab: Option<PathBuf>,
    pub do_lower_case: Option<bool>,
    /// Parity reports of `--verify` (checkpoint mode) and `--reference`, in that order; empty
    /// when neither was asked for. A failed check is reported here, not as an error.
    pub verify: Vec<ParityReport>,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let progress = if !args.quiet && std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} writing {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
            )
            .expect("progress template")
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    } else {
        ProgressBar::hidden()
    };
    let outcome = convert_one(args, &progress);
    progress.finish_and_clear();
    let outcome = outcome?;
    if !args.quiet {
        for w in &outcome.warnings {
            eprintln!("electra-convert: warning: {w}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        for m in &outcome.outputs {
            println!(
                "wrote {} ({}): {} tensors, {} bytes {}; {} checkpoint variables skipped (see `electra-convert map`)",
                m.directory.display(),
                m.class,
                m.tensors,
                m.bytes,
                m.dtype.as_str(),
                m.skipped
            );
            for report in &m.verify {
                println!("{}", report.to_text());
            }
        }
    }
    let failed: Vec<String> = outcome
        .outputs
        .iter()
        .flat_map(|m| &m.verify)
        .filter(|r| !r.passed)
        .map(|r| format!("{} ({} check)", r.model_dir.display(), r.mode))
        .collect();
    if !failed.is_empty() {
        return Err(exit::ParityFailed(format!(
            "converted, but outside tolerance: {}; the written files are kept for inspection",
            failed.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// The parity checks asked for on the command line, run on a freshly written directory.
fn run_checks(
    args: &ConvertArgs,
    dir: &std::path::Path,
    class: &str,
    both: bool,
) -> anyhow::Result<Vec<ParityReport>> {
    let tol = super::verify::tolerance(args.atol, args.rtol)?;
    let mut reports = Vec::new();
    if args.verify {
        let report = verify::verify_against_checkpoint(dir, &args.checkpoint, tol, 0)
            .with_context(|| {
                format!(
                    "{} was written, but --verify could not run against {}",
                    dir.display(),
                    args.checkpoint.display()
                )
            })?;
        reports.push(report);
    }
    if let Some(reference) = &args.reference {
        match verify::verify_against_reference(dir, reference, tol) {
            Ok(report) => reports.push(report),
            // With --model both, one reference file fits only one of the two models.
            Err(verify::VerifyError::ReferenceMismatch { .. }) if both => {}
            Err(err) => {
                return Err(anyhow::Error::new(err).context(format!(
                    "{} ({class}) was written, but --reference could not be checked",
                    dir.display()
                )))
            }
        }
    }
    Ok(reports)
}

/// The checkpoint's variables as the mapping sees them (`map` and `convert` plan from these).
pub(super) fn source_vars(ckpt: &Checkpoint) -> Vec<SourceVar> {
    ckpt.tensors()
        .iter()
        .map(|t| SourceVar {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.tf_name(),
        })
        .collect()
}

/// The directory the checkpoint's files are in (where a vocab.txt would sit).
fn checkpoint_dir(ckpt: &Checkpoint) -> PathBuf {
    match ckpt.prefix().parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn load_tokenizer(
    args: &ConvertArgs,
    ckpt: &Checkpoint,
    plans: &[Plan],
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<Tokenizer>> {
    let lower = match (args.cased, args.uncased) {
        (true, _) => Some(false),
        (_, true) => Some(true),
        _ => None,
    };
    let dir = checkpoint_dir(ckpt);
    let Some(vocab) = write::tokenizer::find_vocab(&dir, args.vocab.as_deref()) else {
        warnings.push(format!(
            "no vocab.txt in {} or its parent directory, so no tokenizer files were written; pass --vocab FILE to include one{}",
            dir.display(),
            if lower.is_some() { " (--cased/--uncased had no effect)" } else { "" }
        ));
        return Ok(None);
    };
    let tok = Tokenizer::load(
        &vocab,
        write::tokenizer::TokenizerChoices {
            lower,
            strip_accents: None,
        },
    )?;
    let vocab_size = plans[0].dims.vocab_size;
    let n = tok.len() as u64;
    if n > vocab_size {
        anyhow::bail!(
            "vocabulary {} has {n} tokens but the model's vocab_size is {vocab_size} (rows of the word embeddings): token ids beyond {} would have no embedding; pass the vocab.txt the model was trained with (--vocab)",
            vocab.display(),
            vocab_size - 1
        );
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
            "vocabulary {} lacks the special token(s) {}; the tokenizer will not find them",
            vocab.display(),
            missing.join(", ")
        ));
    }
    Ok(Some(tok))
}

/// `--force` replaces the output directory: refuse when that directory is, or contains, the
/// checkpoint being converted or the reference file (both are still read after the old directory
/// is deleted, and the checkpoint is the user's training state).
fn spare_inputs(args: &ConvertArgs, ckpt: &Checkpoint) -> anyhow::Result<()> {
    // An output that does not exist yet replaces nothing.
    let Ok(output) = args.output.canonicalize() else {
        return Ok(());
    };
    let mut inputs = vec![("checkpoint", checkpoint_dir(ckpt))];
    if let Some(reference) = &args.reference {
        inputs.push(("reference", reference.clone()));
    }
    for (what, path) in inputs {
        let Ok(path) = path.canonicalize() else {
            continue;
        };
        if path.starts_with(&output) {
            anyhow::bail!(
                "output directory {} holds the {what} this run reads ({}); replacing it with --force would delete it. Choose an -o outside it (e.g. {})",
                args.output.display(),
                path.display(),
                output.with_file_name(format!(
                    "{}-hf",
                    output.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy())
                ))
                .display()
            );
        }
    }
    Ok(())
}

/// One conversion exactly as the `convert` command performs it; `batch` calls this per job.
/// Never prints to stdout; drives `progress` with bytes written.
pub fn convert_one(args: &ConvertArgs, progress: &ProgressBar) -> anyhow::Result<ConvertOutcome> {
    super::verify::tolerance(args.atol, args.rtol)?;
    if let Some(reference) = &args.reference {
        // An unusable reference file stops the run before anything is written.
        verify::check_reference(reference)?;
    }
    write::check_destination(&args.output, args.force)?;
    let ckpt = Checkpoint::open(&args.checkpoint)
        .with_context(|| format!("cannot open checkpoint {}", args.checkpoint.display()))?;
    spare_inputs(args, &ckpt)?;
    let vars = source_vars(&ckpt);
    let plans = mapping::plan_all(args.model, &vars)
        .with_context(|| format!("checkpoint {}", ckpt.prefix().display()))?;

    let mut warnings = Vec::new();
    let mut configs = Vec::with_capacity(plans.len());
    for plan in &plans {
        let value = match &args.config {
            Some(path) => {
                let (value, notes) = config::from_user_file(path, plan, args.num_heads, args.dtype)?;
                warnings.extend(notes);
                value
            }
            None => config::infer(plan, args.num_heads, args.dtype)?,
        };
        configs.push(value);
    }
    let tokenizer = load_tokenizer(args, &ckpt, &plans, &mut warnings)?;
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

    let total: u64 = plans
        .iter()
        .map(|p| write::safetensors_size(p, args.dtype))
        .sum();
    progress.set_length(total);
    progress.set_position(0);

    let staging = Staging::begin(&args.output, args.force)?;
    let both = args.model == ModelKind::Both;
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
        progress.set_message(format!("{} ({})", args.output.display(), sub));
        let files = ModelFiles {
            plan,
            config: cfg,
            tokenizer: tokenizer.as_ref(),
            dtype: args.dtype,
        };
        let written = write::write_model_files(&dir, &files, &ckpt, &mut |n| progress.inc(n))
            .map_err(|e| staging.attribute(e))?;
        outputs.push(ConvertedModel {
            kind: plan.kind,
            class: plan.class,
            directory: if both {
                args.output.join(sub)
            } else {
                args.output.clone()
            },
            tensors: written.tensors,
            bytes: written.bytes,
            dtype: args.dtype,
            skipped: plan.skipped.len(),
            task_heads: plan.task_heads.clone(),
            vocab: tokenizer.as_ref().map(|t| t.vocab.clone()),
            do_lower_case: tokenizer.as_ref().map(|t| t.do_lower_case),
            verify: Vec::new(),
        });
    }
    staging.commit()?;
    // Checks run on the committed directories: a failed check deletes nothing, it is reported
    // (verify[..].passed == false) and the command exits 3.
    for m in &mut outputs {
        if args.verify || args.reference.is_some() {
            progress.set_message(format!("verifying {}", m.directory.display()));
            m.verify = run_checks(args, &m.directory, m.class, both)?;
        }
    }
    if let Some(reference) = &args.reference {
        if both
            && outputs
                .iter()
                .all(|m| m.verify.iter().all(|r| r.mode != "reference"))
        {
            anyhow::bail!(
                "reference {} fits neither the discriminator nor the generator that were written",
                reference.display()
            );
        }
    }
    Ok(ConvertOutcome { outputs, warnings })
}
