//! Exit codes and error reports. Commands return [`Outcome`] or an error; user mistakes
//! (bad arguments, unknown objects, not a world) exit 2, problems found in the world or
//! the machine exit 1, and a closed stdout (`aos log | head`) is not an error.

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// How a command that ran to completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The command worked and found a problem (e.g. fsck findings): exit 1.
    Problem,
}

/// An input mistake detected by the CLI itself: exit 2.
#[derive(Debug)]
pub struct UserError(pub String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// Shorthand for returning a [`UserError`].
pub fn user<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UserError(msg.into()).into())
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<aos_store::Error>().is_some_and(|e| matches!(e, aos_store::Error::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe))
    })
}

/// The exit code for an error: 2 for the caller's mistakes, 1 for everything else.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for e in err.chain() {
        if e.downcast_ref::<UserError>().is_some() {
            return 2;
        }
        if let Some(s) = e.downcast_ref::<aos_store::Error>() {
            return if s.is_user_error() { 2 } else { 1 };
        }
        if let Some(k) = e.downcast_ref::<aos_kernel::KernelError>() {
            return match k {
                aos_kernel::KernelError::Refused(_) => 2,
                aos_kernel::KernelError::Store(s) if s.is_user_error() => 2,
                _ => 1,
            };
        }
    }
    1
}

/// Print an error (if any) and turn the result into the process exit code.
pub fn report(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problem) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let mut msg = format!("{e}");
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(&format!("\n  caused by: {c}"));
                }
            }
            let _ = writeln!(io::stderr(), "aos: error: {msg}");
            ExitCode::from(code_for(&e))
        }
    }
}
