//! `verify`: parity of a converted model against reference outputs or the checkpoint.

use std::io::IsTerminal;

use crate::cli::VerifyArgs;
use crate::exit;
use electra_convert::verify::{self, ParityReport, Tolerance};

pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    if !args.text.is_empty() || args.text_file.is_some() {
        return run_texts(args);
    }
    let tol = tolerance(args.atol, args.rtol)?;
    let report = if let Some(reference) = &args.reference {
        verify::verify_against_reference(&args.model_dir, reference, tol)?
    } else if let Some(checkpoint) = &args.checkpoint {
        verify::verify_against_checkpoint(&args.model_dir, checkpoint, tol, args.seed)?
    } else {
        // clap's argument group requires one of the two.
        anyhow::bail!("give --reference FILE or --checkpoint CKPT");
    };
    print_report(&report, args.json)?;
    parity_result(&report)
}

/// `verify --text` / `--text-file`: what the model predicts for the texts (no verdict, exit 0).
fn run_texts(args: &VerifyArgs) -> anyhow::Result<()> {
    let texts = match &args.text_file {
        Some(file) => verify::read_text_file(file)?,
        None => args.text.clone(),
    };
    let report = verify::run_texts(&args.model_dir, &texts, !args.no_truncate)?;
    for warning in &report.warnings {
        eprintln!("electra-convert: warning: {warning}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let stdout = std::io::stdout();
        let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        println!("{}", report.to_text(colour));
    }
    Ok(())
}

/// Validate tolerances from the command line.
fn tolerance(atol: f64, rtol: f64) -> anyhow::Result<Tolerance> {
    let tol = Tolerance { atol, rtol };
    if let Some((name, v)) = tol.invalid() {
        anyhow::bail!("{name} must be a finite number >= 0, got {v}");
    }
    Ok(tol)
}

fn print_report(report: &ParityReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{}", report.to_text());
    }
    Ok(())
}

/// `Ok` when parity holds, else [`exit::ParityFailed`] naming the failing outputs.
pub(crate) fn parity_result(report: &ParityReport) -> anyhow::Result<()> {
    if report.passed {
        return Ok(());
    }
    let failing: Vec<String> = report
        .outputs
        .iter()
        .filter(|(_, c)| !c.passed)
        .map(|(name, c)| format!("{name} (max abs diff {:.3e})", c.max_abs_diff))
        .collect();
    let what = if failing.is_empty() {
        "the model structure differs".to_string()
    } else {
        failing.join(", ")
    };
    Err(exit::ParityFailed(format!(
        "{} vs {}: {what} beyond atol {:e} / rtol {:e}",
        report.model_dir.display(),
        report.against.display(),
        report.tolerance.atol,
        report.tolerance.rtol
    ))
    .into())
}
