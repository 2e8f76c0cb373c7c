//! Output helpers shared by commands: the `--format` switch, time and size rendering,
//! warnings on stderr, and indicatif progress bars that draw only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--format`: human text, machine JSON, or (for `aos why`) a Graphviz graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// Graphviz dot (`aos why` only).
    Dot,
}

/// RFC 3339 UTC time with nanoseconds trimmed to what is non-zero.
pub fn time(ns: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// Bytes in binary units, e.g. `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Print warnings from opening a world to stderr.
pub fn warn_all<W: std::fmt::Display>(warnings: impl IntoIterator<Item = W>) {
    let mut err = std::io::stderr();
    for w in warnings {
        let _ = writeln!(err, "aos: warning: {w}");
    }
}

/// A progress bar on stderr, hidden unless stderr is a terminal and `enabled`.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        let style = ProgressStyle::with_template("{msg:>14} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar }
    }

    /// Update from a (phase, done, total) callback.
    pub fn update(&self, phase: &str, done: u64, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
        }
        self.bar.set_message(phase.to_string());
        self.bar.set_position(done);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Write to stdout for [`println!`]/[`print!`] (see `lib.rs`).
pub fn print_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("aos: error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
