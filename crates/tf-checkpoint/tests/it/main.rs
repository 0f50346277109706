//! Integration tests of the `tf-checkpoint` crate, one test binary (each file a module).

// Tests may print what they check; the no-print rule is for the library itself.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod checkpoint_fixtures;
mod checkpoint_hostile;
mod checkpoint_support;
mod regression_fuzz;

/// The repository root (fixtures/, docs/), two levels above this crate.
pub fn repo_root() -> std::path::PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(std::path::Path::parent)
        .expect("crates/<name> lies two levels below the repository root")
        .to_path_buf()
}
