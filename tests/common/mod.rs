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

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A reducer module built by `scripts/build-reducers.sh` (`FILE` like `counter.wasm`):
/// `$ENV_VAR`, else `reducers/FILE` under `$CARGO_TARGET_DIR`, this test's target dir,
/// and the scripts' default target dir. A missing module fails the test, saying how to
/// build it.
pub fn reducer_wasm(file: &str, env_var: &str) -> PathBuf {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os(env_var) {
        tried.push(PathBuf::from(p));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(PathBuf::from(t).join("reducers").join(file));
    }
    // The test binary lives at <target>/<profile>/deps/<name>.
    if let Some(t) = std::env::current_exe()
        .ok()
        .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
    {
        tried.push(t.join("reducers").join(file));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(c) = cache {
        tried.push(c.join("aos/target/reducers").join(file));
    }
    tried.dedup();
    match tried.iter().find(|p| p.is_file()) {
        Some(p) => p.clone(),
        None => panic!(
            "{file} is not built (looked at {tried:?}); run scripts/build-reducers.sh with the \
             same CARGO_TARGET_DIR (scripts/env.sh sets it), or set {env_var} to a built {file}"
        ),
    }
}

/// The counter example's module.
pub fn counter_wasm() -> PathBuf {
    reducer_wasm("counter.wasm", "AOS_COUNTER_WASM")
}
