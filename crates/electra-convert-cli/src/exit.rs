//! Process exit codes and the error that carries "parity failed" up to the command layer.

/// Success.
pub const SUCCESS: i32 = 0;
/// Bad or unreadable input, I/O failure, anything that stopped the job.
pub const FAILURE: i32 = 1;
/// The command line itself was wrong (clap's own code).
pub const USAGE: i32 = 2;
/// Everything ran, but a parity check found the outputs differ beyond tolerance.
pub const PARITY_FAILED: i32 = 3;

/// Returned (inside `anyhow::Error`) by a command whose work finished but whose parity
/// check failed; `main` maps it to exit code [`PARITY_FAILED`]. The report has already been
/// printed when this is returned.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParityFailed(pub String);
