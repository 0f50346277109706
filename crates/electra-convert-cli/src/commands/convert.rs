//! `convert`: command-line arguments → [`electra_convert::convert()`] → summary on stdout, exit code.

use crate::cli::ConvertArgs;
use crate::exit;

use super::progress::BarProgress;

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let mut options = args.to_options();
    options.invocation = Some(invocation());
    let mut progress = BarProgress::for_terminal(args.quiet);
    let outcome = electra_convert::convert(&options, &mut progress);
    progress.finish();
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
            if let Some(t) = &m.tokenizer {
                println!("  tokenizer ({} tokens): {}", t.tokens, t.summary);
            }
            for report in &m.verify {
                println!("{}", report.to_text());
            }
        }
        if let Some(f) = &outcome.fetched {
            println!(
                "fetched {} bytes in {} requests ({} bytes of tensors needed; the checkpoint holds {})",
                f.bytes_fetched, f.requests, f.bytes_needed, f.checkpoint_bytes
            );
        }
        if let Some(u) = &outcome.uploaded {
            println!(
                "uploaded {} objects ({} bytes, {} multipart) to {}",
                u.objects.len(),
                u.bytes,
                u.multipart,
                u.url
            );
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

/// The command line as typed, for the model card: the program as `electra-convert`, absolute
/// paths made relative to the current directory.
fn invocation() -> String {
    let mut args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(first) = args.first_mut() {
        *first = "electra-convert".into();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    electra_convert::write::card::command_line(&args, &cwd)
}
