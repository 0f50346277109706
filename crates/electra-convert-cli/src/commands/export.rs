//! `export`: command-line arguments → [`electra_convert::export()`] → summary on stdout, exit code.

use crate::cli::ExportArgs;

use super::progress::BarProgress;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let options = args.to_options();
    let mut progress = BarProgress::for_terminal(args.quiet);
    let outcome = electra_convert::export(&options, &mut progress);
    progress.finish();
    let outcome = outcome?;
    if !args.quiet {
        for note in &outcome.notes {
            eprintln!("electra-convert: note: {note}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        println!(
            "wrote {} ({}): {} variables, {} bytes; global_step {}, {} Adam slot(s) added{}",
            outcome.prefix.display(),
            outcome.layout,
            outcome.tensors,
            outcome.bytes,
            outcome.global_step,
            outcome.adam_slots_added,
            if outcome.copied > 0 {
                format!(", {} variable(s) copied unchanged", outcome.copied)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
