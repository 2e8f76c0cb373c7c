//! The single-writer lock of a world: an exclusive `flock` on `.aos/lock`, with the
//! holder's pid and command written inside so a refused writer can say who holds it.
//! The kernel releases the lock when the holder exits, however it exits.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{io_err, Error, Result};

/// Written by readers that take the lock for an instant to repair a torn tail.
const READER_MARK: &str = "(aos reader, repairing briefly)";
/// How long a writer waits for a briefly-holding reader before giving up.
const READER_WAIT: Duration = Duration::from_secs(2);

/// A held writer lock; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

/// The result of [`WriterLock::try_acquire`].
#[derive(Debug)]
pub enum TryLock {
    Acquired(WriterLock),
    /// Another process holds the lock.
    Busy,
    /// The lock cannot be taken here at all (e.g. a read-only world).
    Unavailable,
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl WriterLock {
    /// Take the lock; a held lock is an error naming its holder. A reader holds the
    /// lock only for the instant it takes to repair a torn tail, so a reader holder is
    /// waited for (briefly) instead of reported.
    pub fn acquire(path: &Path, world: &Path) -> Result<WriterLock> {
        let started = std::time::Instant::now();
        loop {
            match Self::acquire_once(path, world) {
                Err(Error::Locked { holder, .. })
                    if holder.contains(READER_MARK) && started.elapsed() < READER_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => return other,
            }
        }
    }

    fn acquire_once(path: &Path, world: &Path) -> Result<WriterLock> {
        let mut file = open_lock_file(path).map_err(io_err("lock the world for writing", path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "a process that has not written its pid yet".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::Locked {
                    path: world.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", path)(e)),
        }
        let me = format!(
            "pid {} ({})",
            std::process::id(),
            std::env::args().take(3).collect::<Vec<_>>().join(" ")
        );
        write_holder(&mut file, &me);
        Ok(WriterLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Try to take the lock for a brief repair by a reader, without waiting.
    pub fn try_acquire(path: &Path) -> TryLock {
        let Ok(mut file) = open_lock_file(path) else {
            return TryLock::Unavailable;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return TryLock::Busy,
            Err(TryLockError::Error(_)) => return TryLock::Unavailable,
        }
        write_holder(
            &mut file,
            &format!("pid {} {READER_MARK}", std::process::id()),
        );
        TryLock::Acquired(WriterLock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_holder(file: &mut File, who: &str) {
    // Best effort: the pid only improves the message a refused writer sees.
    let _ = file.set_len(0);
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(who.as_bytes()));
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}
