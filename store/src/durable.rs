//! Durability primitives: fsync of files and directories, whole-file-system sync for
//! group commits, atomic file replacement and unique temporary names.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{io_err, Result};

/// fsync a directory so a rename or create inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Flush every dirty page of the file system holding `any_file_or_dir` in one call.
/// Used by group commits: one sync instead of one per file.
pub fn sync_filesystem(any_file_or_dir: &Path) -> Result<()> {
    let f = File::open(any_file_or_dir).map_err(io_err("open for sync", any_file_or_dir))?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs takes a valid open descriptor, which `f` owns for the call.
        if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
            return Err(io_err("syncfs", any_file_or_dir)(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        f.sync_all().map_err(io_err("sync", any_file_or_dir))
    }
}

/// A process-unique temporary file name inside `dir`.
pub fn temp_path(dir: &Path, stem: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()))
}

/// Replace `path` atomically with `bytes` (temp file, fsync, rename, directory fsync).
/// Readers see either the old or the new content, never a mix.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path.file_name().and_then(|s| s.to_str()).unwrap_or("file");
    let tmp = temp_path(dir, stem);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
