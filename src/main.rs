//! Binary entry point: parse the command line, run it, turn the outcome into an exit code.

fn main() {
    std::process::exit(electra_convert::commands::main_with_exit_code());
}
