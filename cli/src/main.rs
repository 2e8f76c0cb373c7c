//! The `aos` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    aos_cli::main_entry()
}
