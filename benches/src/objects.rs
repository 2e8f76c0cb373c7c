//! `objects`: writing distinct files into the object store, against git.
//!
//! N random 1 KiB files and M random 1 MiB files are written to a scratch directory.
//! Baseline: one `git hash-object -w --stdin-paths` process in a fresh `git init` repo
//! (git's default: loose objects are not fsynced). aos: one `ObjectStore::batch()`,
//! `put_reader` per file (the file opened and streamed), one durable `commit()`. Both
//! start from a synced file system so neither pays for the other's dirty pages.
//!
//! Also: in-memory hashing (`blake3::hash` against `Hash::of` and `Hasher`) and file
//! hashing (`objects::hash_file` against `b3sum`, when installed).

use std::fs::{self, File};
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aos_store::hash::{Hash, Hasher};
use aos_store::objects::{hash_file, ObjectStore, CHUNK};

use crate::report::{Row, Section, Target};
use crate::util::{create_probe, have, mb_per_s, median, per_s, run, say, settle, timed, Rng};

/// One set of input files of equal size.
struct Set {
    label: &'static str,
    size: usize,
    data: Vec<Vec<u8>>,
    paths: Vec<PathBuf>,
}

impl Set {
    fn bytes(&self) -> u64 {
        (self.size * self.data.len()) as u64
    }

    fn count(&self) -> u64 {
        self.data.len() as u64
    }
}

fn make_set(
    dir: &Path,
    label: &'static str,
    size: usize,
    count: usize,
    seed: u64,
) -> std::io::Result<Set> {
    fs::create_dir_all(dir)?;
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(count);
    let mut paths = Vec::with_capacity(count);
    for i in 0..count {
        let bytes = rng.bytes(size);
        let p = dir.join(format!("{i:06}"));
        fs::write(&p, &bytes)?;
        data.push(bytes);
        paths.push(p);
    }
    Ok(Set {
        label,
        size,
        data,
        paths,
    })
}

/// `git hash-object -w --stdin-paths` over every path; returns the number of hashes.
fn git_hash_objects(repo: &Path, paths: &[PathBuf], durable: bool) -> std::io::Result<usize> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(repo);
    if durable {
        cmd.args([
            "-c",
            "core.fsync=loose-object",
            "-c",
            "core.fsyncMethod=batch",
        ]);
    }
    let mut child = cmd
        .args(["hash-object", "-w", "--stdin-paths"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    // Feed paths from a thread so a full stdout pipe never blocks us.
    let list: Vec<u8> = paths
        .iter()
        .flat_map(|p| format!("{}\n", p.display()).into_bytes())
        .collect();
    let feeder = std::thread::spawn(move || stdin.write_all(&list));
    let lines = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.len() == 40)
        .count();
    feeder
        .join()
        .map_err(|_| std::io::Error::other("feeder panicked"))??;
    let status = child.wait()?;
    if !status.success() {
        return Err(std::io::Error::other(format!(
            "git hash-object exited with {status}"
        )));
    }
    Ok(lines)
}

/// Timing of one aos run: staging (read + hash + temp file) and commit (syncs, renames,
/// ledger).
struct AosRun {
    stage: Duration,
    commit: Duration,
}

fn aos_put_files(store: &ObjectStore, set: &Set) -> aos_store::Result<AosRun> {
    let (staged, stage) = timed(|| -> aos_store::Result<_> {
        let mut batch = store.batch();
        for p in &set.paths {
            let f = File::open(p).map_err(|e| aos_store::Error::Io {
                op: "open",
                path: p.clone(),
                source: e,
            })?;
            batch.put_reader(f)?;
        }
        Ok(batch)
    });
    let (hashes, commit) = timed(|| staged?.commit());
    let hashes = hashes?;
    assert_eq!(hashes.len(), set.data.len(), "one hash per file");
    for (h, d) in hashes.iter().zip(&set.data).step_by(97) {
        assert_eq!(*h, Hash::of(d), "aos returned a wrong hash");
    }
    Ok(AosRun { stage, commit })
}

fn git_init(repo: &Path) -> std::io::Result<()> {
    run(Command::new("git").args(["init", "-q"]).arg(repo))
}

/// git and aos runs alternate, each in a fresh directory, and nothing is deleted until
/// the end of the whole run: on ext4 without a journal, creating files right after
/// mass deletions is many times slower (see README), which would penalize whichever
/// side ran after a cleanup.
fn bench_set(
    sec: &mut Section,
    scratch: &Path,
    set: &Set,
    reps: usize,
    git: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let n = set.count();
    let mut git_times = Vec::new();
    let mut runs = Vec::new();
    say(format!(
        "{reps} runs each of git hash-object and aos batch put_reader + commit: {n} x {}",
        set.label
    ));
    for rep in 0..reps {
        if git {
            let repo = scratch.join(format!("git-{}-{rep}", set.label));
            git_init(&repo)?;
            settle(scratch);
            let (r, d) = timed(|| git_hash_objects(&repo, &set.paths, false));
            assert_eq!(r? as u64, n, "git printed one hash per path");
            git_times.push(d);
        }
        let store = ObjectStore::create(&scratch.join(format!("aos-{}-{rep}", set.label)), &[])?;
        settle(scratch);
        runs.push(aos_put_files(&store, set)?);
    }
    let git_time = (!git_times.is_empty()).then(|| median(git_times));
    let mut git_durable_time = None;
    if git {
        say(format!(
            "git hash-object with fsync (batch): {n} x {}",
            set.label
        ));
        let repo = scratch.join(format!("git-fsync-{}", set.label));
        git_init(&repo)?;
        settle(scratch);
        let (r, d) = timed(|| git_hash_objects(&repo, &set.paths, true));
        assert_eq!(r? as u64, n);
        git_durable_time = Some(d);
    }
    let total = median(runs.iter().map(|r| r.stage + r.commit).collect());
    let stage = median(runs.iter().map(|r| r.stage).collect());
    let commit = median(runs.iter().map(|r| r.commit).collect());

    let target = |aos: Duration| git_time.map(|g| g.as_secs_f64() / aos.as_secs_f64() >= 10.0);
    sec.row(
        Row::rate(
            "objects",
            format!("{} put", set.label),
            "obj/s",
            per_s(n, total),
            git_time.map(|g| ("git", per_s(n, g))),
        )
        .target(target(total).and_then(|p| Target::new(">=10x git", p))),
    );
    sec.row(Row::rate(
        "objects",
        format!("{} put", set.label),
        "MB/s",
        mb_per_s(set.bytes(), total),
        git_time.map(|g| ("git", mb_per_s(set.bytes(), g))),
    ));
    if let Some(g) = git_durable_time {
        sec.row(Row::rate(
            "objects",
            format!("{} put", set.label),
            "obj/s",
            per_s(n, total),
            Some(("git+fsync(batch)", per_s(n, g))),
        ));
    }
    sec.note(format!(
        "{} x {}: aos staging (open, read, hash, temp file) {:.0} ms = {:.1} us/object; commit (syncfs, renames, ledger, syncfs) {:.0} ms",
        n,
        set.label,
        stage.as_secs_f64() * 1e3,
        stage.as_secs_f64() * 1e6 / n as f64,
        commit.as_secs_f64() * 1e3
    ));
    Ok(())
}

/// In-memory hashing: raw blake3 against the store's wrappers.
fn bench_hash_memory(sec: &mut Section, set: &Set, reps: usize) {
    let bytes = set.bytes();
    let run = |f: &dyn Fn(&[u8]) -> u8| {
        median(
            (0..reps.max(3))
                .map(|_| {
                    timed(|| {
                        let mut acc = 0u8;
                        for d in &set.data {
                            acc ^= f(black_box(d));
                        }
                        black_box(acc)
                    })
                    .1
                })
                .collect(),
        )
    };
    let raw = run(&|d| blake3::hash(d).as_bytes()[0]);
    let of = run(&|d| Hash::of(d).0[0]);
    let hasher = run(&|d| {
        let mut h = Hasher::new();
        for c in d.chunks(CHUNK) {
            h.update(c);
        }
        h.finish().0[0]
    });
    for (name, t) in [("Hash::of", of), ("Hasher (256 KiB updates)", hasher)] {
        let ratio = raw.as_secs_f64() / t.as_secs_f64();
        sec.row(
            Row::rate(
                "hash",
                format!("{} {name}", set.label),
                "MB/s",
                mb_per_s(bytes, t),
                Some(("blake3::hash", mb_per_s(bytes, raw))),
            )
            .target(Target::new("within 1.5x", ratio >= 1.0 / 1.5)),
        );
    }
}

/// File hashing: the store's `hash_file` against `b3sum` (informational).
fn bench_hash_files(
    sec: &mut Section,
    set: &Set,
    b3sum: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = set.bytes();
    let (r, aos) = timed(|| -> aos_store::Result<()> {
        for (p, d) in set.paths.iter().zip(&set.data).take(1) {
            assert_eq!(hash_file(p)?, Hash::of(d));
        }
        for p in &set.paths {
            black_box(hash_file(p)?);
        }
        Ok(())
    });
    r?;
    let mut base = None;
    if b3sum {
        let mut times = Vec::new();
        for threads in [None, Some(1)] {
            let (r, d) = timed(|| -> std::io::Result<()> {
                for chunk in set.paths.chunks(2000) {
                    let mut cmd = Command::new("b3sum");
                    if let Some(t) = threads {
                        cmd.arg("--num-threads").arg(t.to_string());
                    }
                    run(cmd.args(chunk))?;
                }
                Ok(())
            });
            r?;
            times.push(d);
        }
        base = Some(times);
    }
    match base {
        Some(t) => {
            sec.row(Row::rate(
                "hash",
                format!("{} hash_file", set.label),
                "MB/s",
                mb_per_s(bytes, aos),
                Some(("b3sum", mb_per_s(bytes, t[0]))),
            ));
            sec.row(Row::rate(
                "hash",
                format!("{} hash_file", set.label),
                "MB/s",
                mb_per_s(bytes, aos),
                Some(("b3sum -j1", mb_per_s(bytes, t[1]))),
            ));
        }
        None => sec.row(Row::rate(
            "hash",
            format!("{} hash_file", set.label),
            "MB/s",
            mb_per_s(bytes, aos),
            None,
        )),
    }
    Ok(())
}

/// Costs that explain the per-object time: creating a file on this file system, a
/// syncfs with nothing dirty, and the 256 KiB zeroed buffer `put_reader` allocates for
/// every object.
fn where_time_goes(
    sec: &mut Section,
    dir: &Path,
    quick: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let create = create_probe(dir, 500)?;
    settle(dir);
    let syncfs = median((0..5).map(|_| timed(|| settle(dir)).1).collect());
    let n = 20_000u32;
    let (_, alloc) = timed(|| {
        for _ in 0..n {
            let mut buf = vec![0u8; CHUNK];
            black_box(&mut buf);
        }
    });
    sec.note(format!(
        "on this file system creating an empty file costs {:.0} us; a syncfs with nothing dirty {:.2} ms; put_reader's per-object {} KiB zeroed buffer {:.1} us",
        create.as_secs_f64() * 1e6,
        syncfs.as_secs_f64() * 1e3,
        CHUNK / 1024,
        alloc.as_secs_f64() * 1e6 / f64::from(n)
    ));
    // A commit of more than two objects syncs the whole file system, so it also pays for
    // every other process's dirty pages there (a build, a download, another world).
    let mut rng = Rng::new(77);
    let small_batch =
        |store: &ObjectStore, k: usize, rng: &mut Rng| -> aos_store::Result<Duration> {
            let blobs: Vec<Vec<u8>> = (0..k).map(|_| rng.bytes(1024)).collect();
            let mut b = store.batch();
            for blob in &blobs {
                b.put_bytes(blob)?;
            }
            let (r, d) = timed(|| b.commit());
            r?;
            Ok(d)
        };
    let store = ObjectStore::create(&dir.join("aos-neighbour"), &[])?;
    let other_mib = if quick { 32 } else { 256 };
    let mut times = Vec::new();
    for (k, dirty) in [(3, false), (3, true), (2, true)] {
        settle(dir);
        if dirty {
            let mut other = vec![0u8; 1 << 20];
            let mut f = File::create(dir.join(format!("neighbour-{k}")))?;
            for _ in 0..other_mib {
                rng.fill(&mut other);
                f.write_all(&other)?;
            }
        }
        times.push(small_batch(&store, k, &mut rng)?);
    }
    settle(dir);
    sec.note(format!(
        "a 3-object commit (syncfs path) takes {:.1} ms on a clean file system but {:.0} ms when another process left {other_mib} MiB dirty anywhere on it; a 2-object commit (per-file fsync path) in the same situation {:.1} ms",
        times[0].as_secs_f64() * 1e3,
        times[1].as_secs_f64() * 1e3,
        times[2].as_secs_f64() * 1e3
    ));
    Ok(())
}

pub fn run_bench(scratch: &Path, quick: bool) -> Result<Section, Box<dyn std::error::Error>> {
    let mut sec = Section::new("objects");
    let dir = scratch.join("objects");
    let (n_small, n_large, reps) = if quick {
        (2_000, 16, 1)
    } else {
        (20_000, 128, 3)
    };
    say(format!(
        "writing {n_small} x 1 KiB and {n_large} x 1 MiB random files"
    ));
    let small = make_set(&dir.join("in-1k"), "1KiB", 1024, n_small, 1)?;
    let large = make_set(&dir.join("in-1m"), "1MiB", 1 << 20, n_large, 2)?;
    settle(&dir);
    let git = have("git");
    if !git {
        sec.note("git not found: no baseline for object writes");
    }
    bench_set(&mut sec, &dir, &small, reps, git)?;
    bench_set(&mut sec, &dir, &large, reps, git)?;
    say("hashing in memory and from files");
    bench_hash_memory(&mut sec, &small, reps);
    bench_hash_memory(&mut sec, &large, reps);
    let b3sum = have("b3sum");
    if !b3sum {
        sec.note("b3sum not installed: file hashing has no baseline (informational only)");
    }
    bench_hash_files(&mut sec, &small, b3sum)?;
    bench_hash_files(&mut sec, &large, b3sum)?;
    sec.note("git's default does not fsync loose objects; aos commits durably (syncfs before and after the renames). The git+fsync(batch) row is git with core.fsync=loose-object, core.fsyncMethod=batch");
    where_time_goes(&mut sec, &dir, quick)?;
    Ok(sec)
}
