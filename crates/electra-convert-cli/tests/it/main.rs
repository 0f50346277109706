//! Integration tests of the `electra-convert-cli` crate, one test binary (each file a module).

mod architecture;
mod batch_cli;
#[path = "../../../tf-checkpoint/tests/it/checkpoint_support.rs"]
mod checkpoint_support;
mod cli_docs;
mod convert_cli;
mod convert_durable;
mod convert_stream;
mod disk_support;
mod errors_catalogue;
mod export_cli;
mod export_tf;
mod h5_forms;
mod hf_directory;
mod hostile_cli;
mod inspect_cli;
mod map_cli;
mod mg_forms;
mod model_card;
mod remote;
mod tf2_fixtures;
mod verify_checkpoint;
mod verify_convert;
mod verify_negative;
mod verify_reference;
#[path = "../../../electra-convert/tests/it/verify_support.rs"]
mod verify_support;
mod verify_text;
mod zip_forms;

/// The repository root (fixtures/, docs/), two levels above this crate.
pub fn repo_root() -> std::path::PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .and_then(std::path::Path::parent)
        .expect("crates/<name> lies two levels below the repository root")
        .to_path_buf()
}

/// The `electra-convert` binary of this package, ready to take arguments.
pub fn cli() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("electra-convert").expect("the test build has the binary")
}

/// The names in `dir`, sorted.
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every `.rs` file under `dir`, at any depth.
pub fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
