//! Helpers shared by the end-to-end tests: run the real `aos` binary, append records
//! through the library, and mount scratch file systems (the tests run as root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aos_store::journal::NewRecord;
use aos_store::world::{Access, World};
use serde_json::json;

pub fn aos_bin() -> &'static str {
    env!("CARGO_BIN_EXE_aos")
}

/// `aos ARGS…` run in `dir`, with a fixed user name and no terminal.
pub fn aos(dir: &Path, args: &[&str]) -> Output {
    Command::new(aos_bin())
        .args(args)
        .current_dir(dir)
        .env("USER", "tester")
        .output()
        .expect("run aos")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the exit code, showing the output when it differs.
#[track_caller]
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\nstdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A fresh world in a temp dir; returns (tempdir guard, world root).
pub fn world() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("w");
    let o = aos(d.path(), &["init", "w"]);
    expect_code(&o, 0);
    (d, root)
}

/// Append `n` test records through the library (the writer lock must be free).
pub fn append(root: &Path, n: u64, kind: &str) {
    let mut w = World::open(root, Access::Write).expect("open for write");
    let base = w.journal.len();
    let recs: Vec<_> = (0..n)
        .map(|i| NewRecord::now(kind, vec![], json!({"i": base + i})))
        .collect();
    w.journal.append(&recs).expect("append");
}

/// A mounted file system removed on drop.
pub struct Mount(pub PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run_mount(args: &[&str]) {
    let o = Command::new("mount")
        .args(args)
        .output()
        .expect("run mount");
    assert!(
        o.status.success(),
        "mount {args:?} failed: {}\nthese tests simulate full and read-only disks with real mounts and need root (CI runs as root)",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Mount a tmpfs of `size` (e.g. "1m") at `at`.
pub fn tmpfs(at: &Path, size: &str) -> Mount {
    std::fs::create_dir_all(at).expect("mkdir");
    run_mount(&[
        "-t",
        "tmpfs",
        "-o",
        &format!("size={size}"),
        "tmpfs",
        &at.to_string_lossy(),
    ]);
    Mount(at.to_path_buf())
}

/// Bind-mount `src` read-only at `at`.
pub fn read_only_view(src: &Path, at: &Path) -> Mount {
    std::fs::create_dir_all(at).expect("mkdir");
    run_mount(&["--bind", &src.to_string_lossy(), &at.to_string_lossy()]);
    let m = Mount(at.to_path_buf());
    run_mount(&["-o", "remount,bind,ro", &at.to_string_lossy()]);
    m
}

/// Recursive snapshot of every file's bytes under `dir`, for "nothing changed" checks.
pub fn tree_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "lock") {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}
