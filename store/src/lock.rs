//! The single-writer lock of a world: an exclusive `flock` on `.aos/lock`, with the
//! holder's pid and command written inside so a refused writer can say who holds it.
//! The kernel releases the lock when the holder exits, however it exits.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{io_err, Error, Result};

/// A held writer lock; dropping it releases the lock.
#[derive(Debug)]
pub struct WriterLock {
    file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Take the lock without waiting; a held lock is an error naming its holder.
    pub fn acquire(path: &Path, world: &Path) -> Result<WriterLock> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err("open lock", path))?;
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
        let _ = file.set_len(0);
        let _ = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(me.as_bytes()));
        Ok(WriterLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Try to take the lock; None if another process holds it or it cannot be opened
    /// for writing (a read-only world).
    pub fn try_acquire(path: &Path) -> Option<WriterLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .ok()?;
        file.try_lock().ok()?;
        Some(WriterLock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}
