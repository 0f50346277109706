//! The command layer: one handler per subcommand, anyhow errors, exit-code policy.

mod batch;
mod convert;
mod export;
mod inspect;
mod map;
mod progress;
mod verify;

use clap::Parser;

use crate::cli::{with_default_subcommand, Cli, Command};
use crate::exit;

/// Parse `std::env::args_os()`, run the command, print any error, return the exit code.
pub fn main_with_exit_code() -> i32 {
    quit_quietly_on_closed_stdout();
    let args = with_default_subcommand(std::env::args_os().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with code 0; usage errors to stderr with code 2.
            let _ = err.print();
            return err.exit_code();
        }
    };
    configure_buckets(&cli.bucket);
    match run(cli.command) {
        Ok(()) => exit::SUCCESS,
        Err(err) => {
            if let Some(parity) = err.downcast_ref::<exit::ParityFailed>() {
                eprintln!("electra-convert: parity check failed: {parity}");
                exit::PARITY_FAILED
            } else {
                eprintln!("electra-convert: error: {err:#}");
                exit::FAILURE
            }
        }
    }
}

/// `--anonymous` and `--cache-dir`, for every bucket the command reads.
fn configure_buckets(args: &crate::cli::BucketArgs) {
    #[cfg(feature = "remote")]
    electra_convert::source::remote::configure(electra_convert::source::remote::RemoteSettings {
        anonymous: args.anonymous,
        cache_dir: args.cache_dir.clone(),
    });
    #[cfg(not(feature = "remote"))]
    let _ = args;
}

fn run(command: Command) -> anyhow::Result<()> {
    if runs_a_parity_check(&command) {
        // A short-lived process: let the check's streamed stages reuse the pages of the buffers
        // the previous stage dropped. Not for plain conversions, which reuse their own buffers
        // (the policy would only add a few MiB of heap to their ~30 MiB).
        crate::memory::reuse_freed_memory();
    }
    if writes_output(&command) {
        crate::signals::remove_staged_output_on_interrupt();
    }
    match command {
        Command::Convert(args) => convert::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Map(args) => map::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Batch(args) => batch::run(&args),
    }
}

/// Whether the command runs the forward pass (`verify`, `convert --verify` or `--reference`, and
/// `batch`, whose jobs may ask for either).
fn runs_a_parity_check(command: &Command) -> bool {
    match command {
        Command::Verify(_) | Command::Batch(_) => true,
        Command::Convert(args) => args.verify || args.reference.is_some(),
        Command::Inspect(_) | Command::Map(_) | Command::Export(_) => false,
    }
}

/// Whether the command stages an output directory that an interrupt must remove.
fn writes_output(command: &Command) -> bool {
    matches!(
        command,
        Command::Convert(_) | Command::Export(_) | Command::Batch(_)
    )
}

/// `electra-convert inspect CKPT | head` closes stdout early. Rust ignores SIGPIPE, so the next
/// `println!` would panic ("failed printing to stdout"); take the default action instead, as
/// other command-line tools do: the process ends silently, killed by SIGPIPE. Output files are
/// unaffected: stdout is only written after a conversion has committed its directory.
fn quit_quietly_on_closed_stdout() {
    #[cfg(target_os = "linux")]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
