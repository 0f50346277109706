//! `convert`: command-line arguments → [`electra_convert::convert()`] → summary on stdout, exit code.

use crate::cli::ConvertArgs;
use crate::exit;

use super::progress::BarProgress;

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let mut options = args.to_options();
    options.invocation = Some(invocation());
    // `-o gs://…`: build in a local temporary directory, then upload.
    let upload = bucket_output(&options.output)?;
    if let Some(u) = &upload {
        options.output = u.local();
    }
    let mut progress = BarProgress::for_terminal(args.quiet);
    let outcome = electra_convert::convert(&options, &mut progress);
    progress.finish();
    let mut outcome = outcome?;
    if let Some(u) = &upload {
        u.send(&mut outcome, args.force)?;
    }
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

/// A bucket named as the output: where it is built locally first.
struct BucketOutput {
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    url: String,
    dir: tempfile::TempDir,
}

fn bucket_output(output: &std::path::Path) -> anyhow::Result<Option<BucketOutput>> {
    let Some(url) = electra_convert::source::bucket_url(output) else {
        return Ok(None);
    };
    if cfg!(not(feature = "remote")) {
        anyhow::bail!("{url}: this build has no bucket support (rebuild electra-convert with the default `remote` feature)");
    }
    let dir = tempfile::Builder::new()
        .prefix("electra-convert-upload-")
        .tempdir()?;
    Ok(Some(BucketOutput {
        url: url.trim_end_matches('/').to_string(),
        dir,
    }))
}

impl BucketOutput {
    fn local(&self) -> std::path::PathBuf {
        self.dir.path().join("out")
    }

    /// Upload the built directory (weights first, `config.json` and the card last); on failure
    /// nothing this run uploaded is left.
    #[cfg(feature = "remote")]
    fn send(
        &self,
        outcome: &mut electra_convert::ConvertOutcome,
        force: bool,
    ) -> anyhow::Result<()> {
        use electra_convert::source::remote;
        let dest = remote::RemoteUrl::parse(&self.url)?;
        let store = remote::Remote::connect(&dest, &remote::store_options())?;
        let options = remote::UploadOptions {
            force,
            ..remote::UploadOptions::default()
        };
        remote::upload_dir(&store, &self.local(), &dest, &options)?;
        let local = self.local();
        for m in &mut outcome.outputs {
            let rel = m
                .directory
                .strip_prefix(&local)
                .unwrap_or(std::path::Path::new(""));
            let mut url = self.url.clone();
            if !rel.as_os_str().is_empty() {
                url = format!("{url}/{}", rel.display());
            }
            m.directory = url.into();
        }
        Ok(())
    }

    #[cfg(not(feature = "remote"))]
    fn send(&self, _: &mut electra_convert::ConvertOutcome, _: bool) -> anyhow::Result<()> {
        Ok(())
    }
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
