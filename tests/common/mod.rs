//! Helpers shared by the end-to-end tests: run the real `aos` binary, append records
//! through the library, and mount scratch file systems (the tests run as root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aos_store::journal::NewRecord;
use aos_store::world::{Access, World};
use serde_json::json;

pub mod loopback;

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

/// `blake3:<hex>` of a journal line: the `prev` of the line after it.
pub fn line_hash(line: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(line).to_hex())
}

/// The line with its `prev` replaced (the field is second to last in canonical order).
pub fn with_prev(line: &[u8], prev: &str) -> Vec<u8> {
    let text = std::str::from_utf8(line).expect("a UTF-8 journal line");
    let key = r#","prev":""#;
    let at = text.rfind(key).expect("a prev field") + key.len();
    let old_len = "blake3:".len() + 64;
    assert!(text[at..].starts_with("blake3:"), "{text}");
    format!("{}{prev}{}", &text[..at], &text[at + old_len..]).into_bytes()
}

/// Write `lines` as the journal; with `rechain`, every `prev` after `from` is recomputed
/// so the hash chain vouches for an edit (as a careful forger would). The index and the
/// state cache are removed so nothing stale vouches for the old bytes.
pub fn write_journal(root: &Path, mut lines: Vec<Vec<u8>>, from: usize, rechain: bool) {
    if rechain {
        for i in from + 1..lines.len() {
            let prev = line_hash(&lines[i - 1]);
            lines[i] = with_prev(&lines[i], &prev);
        }
    }
    let mut bytes = Vec::new();
    for l in &lines {
        serde_json::from_slice::<serde_json::Value>(l).unwrap_or_else(|e| {
            panic!("edited journal line {:?}: {e}", String::from_utf8_lossy(l))
        });
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    }
    std::fs::write(root.join(".aos/journal"), bytes).expect("write the journal");
    let _ = std::fs::remove_file(root.join(".aos/journal.idx"));
    let _ = std::fs::remove_file(root.join(".aos/cache/state.json"));
}

/// A world in a temp dir made by `aos init w --air AIR --module REDUCER=<built wasm>`
/// (the module found as [`reducer_wasm`] finds it); returns (tempdir guard, root).
pub fn init_world(
    air: &Path,
    reducer: &str,
    wasm: &str,
    env_var: &str,
) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let module = format!("{reducer}={}", reducer_wasm(wasm, env_var).display());
    let air = air.to_str().expect("a UTF-8 path");
    let o = aos(d.path(), &["init", "w", "--air", air, "--module", &module]);
    expect_code(&o, 0);
    let root = d.path().join("w");
    (d, root)
}

/// The journal's records, in order.
pub fn journal(root: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(root.join(".aos/journal"))
        .expect("read the journal")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a journal record"))
        .collect()
}

/// The kinds of `records`, in order.
pub fn kinds(records: &[serde_json::Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["kind"].as_str().expect("a kind"))
        .collect()
}

/// `aos state REDUCER` as JSON (exit 0 required).
pub fn reducer_state(root: &Path, reducer: &str) -> serde_json::Value {
    let o = aos(root, &["--format", "json", "state", reducer]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("JSON state");
    v["state"].clone()
}

/// A nat in either JSON form (number, or decimal string beyond 2^53).
pub fn nat(v: &serde_json::Value) -> u64 {
    match v {
        serde_json::Value::Number(n) => n.as_u64().expect("a nat"),
        serde_json::Value::String(s) => s.parse().expect("a nat"),
        other => panic!("not a nat: {other}"),
    }
}

/// Replay from genesis with snapshot checks, and fsck, both clean.
pub fn replay_and_fsck(root: &Path) {
    expect_code(&aos(root, &["replay", "--verify"]), 0);
    expect_code(&aos(root, &["fsck"]), 0);
}

/// `aos why --check`: every record of the world's journal traces back to a root.
#[track_caller]
pub fn assert_rooted(root: &Path) {
    let o = aos(root, &["why", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "records without a path to a root in {}:\n{}{}",
        root.display(),
        stdout(&o),
        stderr(&o)
    );
}
