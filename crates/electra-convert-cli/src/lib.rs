//! The `electra-convert` command line: clap definitions ([`cli`]), one handler per subcommand
//! (`commands`), progress bars, signal wiring, allocator policy and exit codes ([`exit`]). All
//! the work happens in the `electra_convert` library; this crate only talks to the process.

pub mod cli;
mod commands;
pub mod exit;
mod memory;
mod signals;

pub use commands::main_with_exit_code;
