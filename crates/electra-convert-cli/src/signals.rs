//! SIGINT/SIGTERM wiring: an interrupted run removes its staged output and its sources'
//! temporary directories, then exits as a shell would report the signal (128 + its number).
//!
//! The library registers every staging directory while it exists and exposes
//! [`electra_convert::write::remove_staged_outputs`]; only this binary installs a handler, so a
//! program embedding the library keeps its own signal policy.

/// Start a thread that waits for SIGINT or SIGTERM, removes every staged output directory and
/// exits with 128 + the signal. A failure to install it is reported and the run goes on (an
/// interrupted run may then leave a temporary directory behind).
pub(crate) fn remove_staged_output_on_interrupt() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let spawned = std::thread::Builder::new()
                .name("electra-convert-cleanup".into())
                .spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        // Held until the process ends: nothing can be committed after the cleanup.
                        let _held = electra_convert::write::remove_staged_outputs();
                        // A zip's inflated shards, a bucket's fetched ranges, a build awaiting
                        // its upload.
                        electra_convert::source::scratch::remove_all();
                        std::process::exit(128 + sig);
                    }
                });
            if let Err(e) = spawned {
                eprintln!("electra-convert: warning: could not start the cleanup thread ({e}); an interrupted run may leave a temporary directory behind");
            }
        }
        Err(e) => {
            eprintln!("electra-convert: warning: could not install a signal handler ({e}); an interrupted run may leave a temporary directory behind");
        }
    }
}
