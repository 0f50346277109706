//! Binary entry point: parse the command line, run it, turn the outcome into an exit code.

fn main() {
    std::process::exit(electra_convert_cli::main_with_exit_code());
}
