//! Helpers shared by the fault-injection tests of `aos-store`: a seeded PRNG, worlds
//! with deterministic records, fsck collection, tmpfs and read-only bind mounts that are
//! unmounted by a Drop guard, and child processes re-executed from the test binary.

#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aos_store::fsck::{fsck, Finding, Severity};
use aos_store::hash::Hash;
use aos_store::journal::{Journal, NewRecord, Options};
use aos_store::world::{Genesis, Layout, World};
use serde_json::{json, Value};

/// Environment variable that turns a child test function into a real child: it holds
/// the directory (a journal's parent or a world root) the child works in.
pub const CHILD_DIR: &str = "AOS_TEST_CHILD_DIR";
/// Seed for the child's own PRNG (batch sizes).
pub const CHILD_SEED: &str = "AOS_TEST_CHILD_SEED";

/// splitmix64: small, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// The seed of a randomized test: `AOS_TEST_SEED` if set, else a fixed default, so a
/// CI failure can be replayed. Printed so it shows up in a failing test's output.
pub fn seed(default: u64) -> u64 {
    let s = std::env::var("AOS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed {s} (set AOS_TEST_SEED to replay)");
    s
}

pub const KIND: &str = "test.append";

/// The body every test record with this seq carries; sizes vary from tiny to ~2 KiB so
/// batches make writes of very different lengths (up to ~130 KiB).
pub fn body(seq: u64) -> Value {
    let len = (seq.wrapping_mul(7919) % 2000) as usize;
    let pad: String = (0..len)
        .map(|i| (b'a' + ((seq as usize + i) % 26) as u8) as char)
        .collect();
    json!({"seq": seq, "pad": pad})
}

/// The record a test appends at `seq`.
pub fn record(seq: u64) -> NewRecord {
    NewRecord {
        at_ns: 1_700_000_000_000_000_000 + seq,
        kind: KIND.into(),
        cause: vec![],
        body: body(seq),
    }
}

/// Records `from..from+n`.
pub fn records(from: u64, n: u64) -> Vec<NewRecord> {
    (from..from + n).map(record).collect()
}

/// A fixed genesis for test worlds.
pub fn genesis() -> Genesis<'static> {
    Genesis {
        public_key: format!("ed25519:{}", "0".repeat(64)),
        secret_key_file: b"not a real key; tests only\n",
        origin: json!({"who": "aos-store tests", "via": "cargo test"}),
        ..Default::default()
    }
}

/// Create a world at `root` and append records `1..=n` (seq 0 is `world_created`).
pub fn world_with_records(root: &Path, n: u64) -> World {
    let mut w = World::create(root, genesis()).expect("create world");
    let mut next = 1;
    while next <= n {
        let k = (n + 1 - next).min(17);
        w.journal.append(&records(next, k)).expect("append");
        next += k;
    }
    w
}

/// Journal open options as a world uses them, for a bare journal in `dir`.
pub fn journal_options(dir: &Path, writable: bool) -> Options {
    Options {
        writable,
        salvage_dir: Some(dir.join("lost+found")),
        repairs_log: Some(dir.join("repairs.log")),
        ..Options::default()
    }
}

/// Walk the whole chain through the public API: seq i at position i, `prev` naming the
/// hash of the line before. Returns the number of records.
pub fn verify_chain(j: &Journal) -> u64 {
    verify_chain_from(j, 0)
}

/// [`verify_chain`] for records `from..`, starting from the hash of record `from - 1`.
pub fn verify_chain_from(j: &Journal, from: u64) -> u64 {
    let mut prev: Option<Hash> = match from {
        0 => None,
        _ => Some(
            j.read(from - 1)
                .unwrap_or_else(|e| panic!("reading seq {}: {e}", from - 1))
                .1,
        ),
    };
    let mut n = from;
    for item in j.iter_from(from).expect("iter_from") {
        let (r, h) = item.unwrap_or_else(|e| panic!("reading seq {n}: {e}"));
        assert_eq!(r.seq, n, "record at position {n} has seq {}", r.seq);
        assert_eq!(
            r.prev, prev,
            "seq {n}: prev does not name the previous line's hash"
        );
        prev = Some(h);
        n += 1;
    }
    assert_eq!(n, j.len(), "iteration ended early");
    assert_eq!(j.head().map(|h| h.hash), prev, "head hash");
    n
}

/// Check that test record `seq` is present with its expected content.
pub fn assert_record(j: &Journal, seq: u64) {
    let (r, _) = j
        .read(seq)
        .unwrap_or_else(|e| panic!("acked seq {seq} cannot be read: {e}"));
    assert_eq!(r.seq, seq);
    assert_eq!(r.kind, KIND, "seq {seq} kind");
    assert_eq!(r.at_ns, 1_700_000_000_000_000_000 + seq, "seq {seq} at_ns");
    assert!(
        r.body == body(seq),
        "seq {seq}: body differs from what was appended"
    );
}

/// Run fsck and collect every finding.
pub fn fsck_all(root: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    fsck(root, &|_, _, _| {}, &mut |f| out.push(f));
    out
}

pub fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

pub fn assert_no_errors(root: &Path, findings: &[Finding]) {
    let errs = errors(findings);
    assert!(
        errs.is_empty(),
        "fsck of {} found errors: {errs:#?}",
        root.display()
    );
}

/// Byte snapshot of every file and directory under `dir` (path, kind, mode, length,
/// mtime and content), for "nothing changed" assertions.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("list {}: {e}", d.display())) {
            let e = e.unwrap();
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            if m.is_dir() {
                out.push((
                    rel,
                    format!(
                        "dir mode={:o} mtime={}.{}",
                        m.mode(),
                        m.mtime(),
                        m.mtime_nsec()
                    ),
                ));
                stack.push(p);
            } else {
                let content = fs::read(&p).unwrap();
                out.push((
                    rel,
                    format!(
                        "file mode={:o} len={} mtime={}.{} blake3={}",
                        m.mode(),
                        m.len(),
                        m.mtime(),
                        m.mtime_nsec(),
                        Hash::of(&content)
                    ),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The world's lock, journal and so on.
pub fn layout(root: &Path) -> Layout {
    Layout::new(root)
}

// ---------------------------------------------------------------------------------------
// Mounts
// ---------------------------------------------------------------------------------------

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path without NUL")
}

fn needs_root(what: &str, target: &Path, err: std::io::Error) -> ! {
    if err.raw_os_error() == Some(libc::EPERM) {
        panic!(
            "this test needs root (CAP_SYS_ADMIN) to {what} at {}: mount(2) failed with EPERM. \
             Run the store tests as root, as CI does; the test is not skipped because it \
             checks behaviour no other test covers.",
            target.display()
        );
    }
    panic!("cannot {what} at {}: {err}", target.display());
}

/// A mount that is unmounted (and its mount point removed) when dropped.
pub struct Mount {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mount {
    /// A fresh tmpfs of `size` bytes.
    pub fn tmpfs(size: u64) -> Mount {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mnt");
        fs::create_dir(&path).unwrap();
        let src = CString::new("tmpfs").unwrap();
        let data = CString::new(format!("size={size},mode=0755")).unwrap();
        let target = cstr(&path);
        // SAFETY: every pointer is a valid NUL-terminated string living across the call.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            needs_root(
                &format!("mount a {size}-byte tmpfs"),
                &path,
                std::io::Error::last_os_error(),
            );
        }
        Mount { path, _dir: dir }
    }

    /// `mount --bind src B` then `mount -o remount,bind,ro B`; B is returned.
    pub fn bind_read_only(src: &Path) -> Mount {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ro");
        fs::create_dir(&path).unwrap();
        let (s, t) = (cstr(src), cstr(&path));
        // SAFETY: valid NUL-terminated strings; null fstype/data are allowed for binds.
        let rc = unsafe {
            libc::mount(
                s.as_ptr(),
                t.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            needs_root("bind-mount", &path, std::io::Error::last_os_error());
        }
        let m = Mount { path, _dir: dir };
        let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY;
        // SAFETY: as above; the source is ignored for a remount.
        let rc = unsafe {
            libc::mount(
                std::ptr::null(),
                t.as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            needs_root(
                "remount read-only",
                &m.path,
                std::io::Error::last_os_error(),
            );
        }
        // The precondition of every read-only test: writes through B really fail.
        let probe = m.path.join(".probe");
        let e = fs::write(&probe, b"x").expect_err("the bind mount is still writable");
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EROFS),
            "writing through the read-only bind mount: {e}"
        );
        m
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let t = cstr(&self.path);
        // SAFETY: valid NUL-terminated path.
        if unsafe { libc::umount2(t.as_ptr(), 0) } != 0 {
            // Something still has a file open there: detach lazily rather than leak.
            // SAFETY: as above.
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// Fill the file system holding `dir` completely with a file named `name`, writing in
/// page-sized chunks until ENOSPC. Returns the file's path and length.
pub fn fill_disk(dir: &Path, name: &str) -> (PathBuf, u64) {
    use std::io::Write;
    let p = dir.join(name);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .unwrap();
    let chunk = vec![0x5au8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", p.display()),
        }
    }
    let len = f.metadata().unwrap().len();
    (p, len)
}

/// Free space on the file system holding `p`, in bytes.
pub fn free_bytes(p: &Path) -> u64 {
    let c = cstr(p);
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    assert_eq!(rc, 0, "statvfs {}", p.display());
    s.f_bavail as u64 * s.f_frsize as u64
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// A child process running one test function of this same test binary, with its
/// stdout read line by line on a thread (only complete lines are delivered).
pub struct ChildRun {
    pub child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    name: String,
}

impl ChildRun {
    /// Run `test_name` of the current test binary with `env` set (typically
    /// [`CHILD_DIR`]), stdout and stderr piped.
    pub fn spawn(test_name: &str, env: &[(&str, String)]) -> ChildRun {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove(CHILD_DIR)
            .env_remove(CHILD_SEED);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn child test process");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if buf.last() != Some(&b'\n') => return, // cut off by the kill
                    Ok(_) => {
                        buf.pop();
                        if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        ChildRun {
            child,
            lines: rx,
            stderr: Some(stderr),
            name: test_name.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next complete stdout line, or None at EOF. Panics (after killing the child)
    /// if nothing arrives within `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.take_stderr();
                panic!(
                    "child {} printed nothing for {timeout:?}; stderr:\n{stderr}",
                    self.name
                );
            }
        }
    }

    /// The next line containing `marker`, with the text after it; None at EOF.
    pub fn next_marked(&mut self, marker: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let line = self.next_line(left)?;
            if let Some(i) = line.find(marker) {
                return Some(line[i + marker.len()..].trim().to_string());
            }
        }
    }

    /// SIGKILL the child and reap it; panics if it had already exited some other way.
    pub fn kill9(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own unreaped child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill -9 {}", self.child.id());
        let status = self.child.wait().expect("wait for child");
        if status.signal() != Some(libc::SIGKILL) {
            let stderr = self.take_stderr();
            panic!(
                "child {} exited with {status} before it was killed; stderr:\n{stderr}",
                self.name
            );
        }
        status
    }

    /// Every remaining complete stdout line, after the child has exited.
    pub fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(l) = self.next_line(Duration::from_secs(10)) {
            out.push(l);
        }
        out
    }

    /// Close the child's stdin (the signal for cooperative children to stop).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    pub fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for ChildRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `acked <seq>` lines printed by appending children: the seqs they contain.
pub fn acked_seqs(lines: &[String]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| {
            l.find("acked ")
                .and_then(|i| l[i + 6..].trim().parse().ok())
        })
        .collect()
}

/// Print and flush one line on stdout (children report progress this way).
pub fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .expect("write to stdout");
}
