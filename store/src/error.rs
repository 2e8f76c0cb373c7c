//! The typed errors of the store. Every variant names the path, hash or seq involved;
//! [`Error::is_user_error`] tells the CLI whether the caller (exit 2) or the world
//! (exit 1) is at fault.

use std::io;
use std::path::{Path, PathBuf};

use crate::canon::CanonError;
use crate::hash::{Hash, HashParseError};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{op} {}: no space left on the device; free some space and retry (nothing was lost)", path.display())]
    DiskFull { op: &'static str, path: PathBuf },
    #[error("{op} {}: the file system is read-only or not writable by you; reading commands still work", path.display())]
    ReadOnly { op: &'static str, path: PathBuf },
    #[error("not an aos world (or any parent up to /): {}\nhint: run `aos init` to create one, or pass -C DIR / --world DIR", start.display())]
    NotAWorld { start: PathBuf },
    #[error("{} is already an aos world; choose another directory", path.display())]
    AlreadyAWorld { path: PathBuf },
    #[error("{}: no such file or directory", path.display())]
    NoSuchPath { path: PathBuf },
    #[error("{} exists and is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("the world {} is locked by another writer ({holder})\nhint: wait for it to finish; if that process no longer exists the lock is released automatically", path.display())]
    Locked { path: PathBuf, holder: String },
    #[error("no object {hash} in this world")]
    ObjectNotFound { hash: String },
    #[error("object {hash} is corrupt: {} holds bytes hashing to {actual}\nhint: restore the file from a fork or backup; `aos fsck` lists every damaged object", path.display())]
    ObjectCorrupt {
        hash: Hash,
        path: PathBuf,
        actual: Hash,
    },
    #[error("object prefix {prefix:?} is ambiguous: {count} objects match; give more digits")]
    AmbiguousPrefix { prefix: String, count: usize },
    #[error("{0}")]
    BadHash(#[from] HashParseError),
    #[error("journal {}: record seq {seq} (line {}, byte {offset}): {what}\nhint: run `aos fsck` for every finding; the journal was not modified", path.display(), seq + 1)]
    JournalDamaged {
        path: PathBuf,
        seq: u64,
        offset: u64,
        what: String,
    },
    #[error("journal {}: {what}\nhint: run `aos fsck`; the journal was not modified", path.display())]
    JournalInconsistent { path: PathBuf, what: String },
    #[error("journal {}: an earlier write failed and could not be rolled back; reopen the world (the unacknowledged tail is discarded on open)", path.display())]
    JournalPoisoned { path: PathBuf },
    #[error("journal record of {size} bytes exceeds the limit of {limit} bytes; store large payloads as blobs and reference them by hash")]
    RecordTooLarge { size: usize, limit: usize },
    #[error("seq {seq} is beyond the journal head ({})", head.map_or("the journal is empty".to_string(), |h| format!("head is seq {h}")))]
    SeqOutOfRange { seq: u64, head: Option<u64> },
    #[error("{}: {what}", path.display())]
    Config { path: PathBuf, what: String },
    #[error(transparent)]
    Canon(#[from] CanonError),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// True when the caller asked for something impossible (exit 2), false when the
    /// world or the machine has a problem (exit 1).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::NotAWorld { .. }
                | Error::AlreadyAWorld { .. }
                | Error::NotADirectory { .. }
                | Error::NoSuchPath { .. }
                | Error::ObjectNotFound { .. }
                | Error::AmbiguousPrefix { .. }
                | Error::BadHash(_)
                | Error::RecordTooLarge { .. }
                | Error::SeqOutOfRange { .. }
                | Error::Canon(_)
                | Error::Invalid(_)
        )
    }
}

/// Wrap an `io::Error` with the operation and path, classifying full and read-only
/// file systems so their messages say what to do.
pub fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| classify(op, path, source)
}

pub fn classify(op: &'static str, path: &Path, source: io::Error) -> Error {
    let path = path.to_path_buf();
    match source.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => Error::DiskFull { op, path },
        Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => Error::ReadOnly { op, path },
        _ => Error::Io { op, path, source },
    }
}
