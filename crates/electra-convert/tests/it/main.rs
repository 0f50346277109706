//! Integration tests of the `electra-convert` crate, one test binary (each file a module).

// Tests may print what they check; the no-print rule is for the library itself.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cleanup_commit;
mod export_lib;
mod regression_reference_fuzz;
mod verify_parity_baseline;
mod verify_stream;
mod verify_support;

/// The repository root (fixtures/, docs/), two levels above this crate.
pub fn repo_root() -> std::path::PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(std::path::Path::parent)
        .expect("crates/<name> lies two levels below the repository root")
        .to_path_buf()
}
