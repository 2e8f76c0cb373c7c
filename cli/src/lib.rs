//! The `aos` command line: clap definitions ([`args`]), one module per command
//! ([`commands`]), output formatting and progress ([`output`]), and the mapping from
//! errors to exit codes ([`exit`]): 0 ok, 1 the operation found a problem, 2 usage or
//! input error.

/// `println!` and `print!` for this crate: a closed stdout (`aos … | head`) ends the
/// process quietly with status 0 instead of panicking; any other write error ends it
/// with status 1 and a message. Commands are crash-safe, so stopping at any write is.
macro_rules! println {
    () => { $crate::output::print_out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::output::print_out(format_args!("{}\n", format_args!($($t)*))) };
}
macro_rules! print {
    ($($t:tt)*) => { $crate::output::print_out(format_args!($($t)*)) };
}

pub mod args;
pub mod commands;
pub mod exit;
pub mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// The full clap command tree (also used to generate the man pages).
pub fn command() -> clap::Command {
    args::Cli::command()
}

/// Run `aos` with the process's arguments and return its exit code.
pub fn main_entry() -> ExitCode {
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let cli = match args::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    exit::report(commands::run(cli))
}
