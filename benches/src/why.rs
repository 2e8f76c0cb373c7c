//! `why`: `aos why` (the release binary, as a process) on a 1,000,000-record journal.
//!
//! The journal has causal chains of a realistic shape, eight records per injected
//! event: the event (a root with an origin), a keyed reducer step, an effect intent, its
//! policy decision, a domain event the step emitted and its step, and a receipt for an
//! intent emitted 500 events (4,000 records) earlier with the step it caused — so some
//! causes reach far back. Timed: the first query, which builds the index in
//! `.aos/cache/why/` (cold), then warm queries of records early, in the middle and at
//! the head, by seq, intent hash and reducer cell, backward and forward. Baseline, in
//! the same run: reading the journal's last line with `tail -n 1` (a process that does
//! the least a reader of the journal can do), and `git log -1` in a one-commit repo.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aos_store::hash::Hash;
use aos_store::journal::NewRecord;
use aos_store::world::{Genesis, World};
use serde_json::json;

use crate::fixture::dummy_public_key;
use crate::report::{Row, Section, Target};
use crate::util::{have, median, ms, say};

const BENCH: &str = "why";
const GROUP: u64 = 8;
/// How many events back a receipt's intent was emitted.
const RECEIPT_LAG: u64 = 500;
const AT_NS: u64 = 1_764_000_000_000_000_000;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn intent_hash(event: u64) -> Hash {
    Hash::of(format!("intent {event}").as_bytes())
}

/// Seq of the first record of event `e` (seq 0 is `world_created`).
fn first(e: u64) -> u64 {
    1 + e * GROUP
}

/// The eight records of event `e`.
fn group(e: u64) -> Vec<NewRecord> {
    let s = first(e);
    let at_ns = AT_NS + e * 1_000;
    let key = format!("k{}", e % 1_000);
    let rec = |kind: &str, cause: Vec<u64>, body| NewRecord {
        at_ns,
        kind: kind.into(),
        cause,
        body,
    };
    let state = Hash::of(&e.to_le_bytes());
    // The receipt answers the intent of an event RECEIPT_LAG earlier (or this one's).
    let answered = e.saturating_sub(RECEIPT_LAG);
    vec![
        rec(
            "domain_event",
            vec![],
            json!({"schema": "bench/Event@1", "value": {"n": e}, "key": key,
                   "origin": {"who": "aos-bench", "via": "cli"}}),
        ),
        rec(
            "reducer_stepped",
            vec![s],
            json!({"event": s, "reducer": "bench/Cell@1", "key": key, "state": state,
                   "module": state}),
        ),
        rec(
            "effect_intent",
            vec![s + 1],
            json!({"kind": "http.request", "intent_hash": intent_hash(e), "grant": "g",
                   "params": {"method": "GET", "url": format!("https://example.com/{e}")},
                   "origin": {"kind": "reducer", "name": "bench/Cell@1"}}),
        ),
        rec(
            "policy_decision",
            vec![s + 2],
            json!({"allowed": true, "intent_hash": intent_hash(e),
                   "policy": {"allowed": true, "reason": "rule 0 allows http.request", "rule": 0}}),
        ),
        rec(
            "domain_event",
            vec![s + 1],
            json!({"schema": "bench/Done@1", "value": {"n": e}, "emitted_by": {"reducer": "bench/Cell@1"}}),
        ),
        rec(
            "reducer_stepped",
            vec![s + 4],
            json!({"event": s + 4, "reducer": "bench/Log@1", "state": state, "module": state}),
        ),
        rec(
            "effect_receipt",
            vec![first(answered) + 2],
            json!({"receipt": {"intent_hash": intent_hash(answered), "status": "ok",
                   "adapter_id": "http", "effect_kind": "http.request"}}),
        ),
        rec(
            "reducer_stepped",
            vec![s + 6],
            json!({"event": s + 6, "reducer": "bench/Cell@1", "key": format!("k{}", answered % 1_000),
                   "state": state, "module": state}),
        ),
    ]
}

/// A world whose journal holds `records` records of the shape above.
fn build(root: &Path, records: u64) -> Res<()> {
    let genesis = Genesis {
        public_key: dummy_public_key(),
        secret_key_file: b"test",
        origin: json!({"who": "aos-bench", "via": "aos-bench"}),
        ..Default::default()
    };
    let mut w = World::create(root, genesis)?;
    let events = (records - 1) / GROUP;
    let t = Instant::now();
    let mut batch = Vec::new();
    for e in 0..events {
        batch.extend(group(e));
        if batch.len() >= 8_192 {
            w.journal.append(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        w.journal.append(&batch)?;
    }
    say(format!(
        "built a why world with {} records ({:.0} MB journal) in {:.1} s",
        w.journal.len(),
        w.journal.byte_len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The release `aos` binary: next to this one, else `$CARGO_TARGET_DIR/release/aos`.
fn aos_binary() -> Option<PathBuf> {
    let mut tried = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        tried.push(dir.join("aos"));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(PathBuf::from(t).join("release/aos"));
    }
    tried.into_iter().find(|p| p.is_file())
}

/// Run a command to completion, timed from spawn to exit; a failure is an error.
fn time_cmd(cmd: &mut Command) -> Res<(Duration, usize)> {
    cmd.stdin(Stdio::null()).stderr(Stdio::piped());
    let t = Instant::now();
    let out = cmd.output()?;
    let d = t.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok((d, out.stdout.len()))
}

fn median_of(runs: usize, mut cmd: impl FnMut() -> Command) -> Res<Duration> {
    let mut times = Vec::new();
    for _ in 0..runs {
        times.push(time_cmd(&mut cmd())?.0);
    }
    Ok(median(times))
}

pub fn run_bench(scratch: &Path, quick: bool) -> Res<Section> {
    let mut sec = Section::new(BENCH);
    let Some(aos) = aos_binary() else {
        sec.note(
            "skipped: no release `aos` next to the bench binary or in $CARGO_TARGET_DIR/release \
             (build it with `cargo build --release -p aos-cli`)",
        );
        return Ok(sec);
    };
    let records: u64 = if quick { 100_001 } else { 1_000_001 };
    let runs = if quick { 3 } else { 7 };
    let root = scratch.join("why-world");
    build(&root, records)?;
    let journal = root.join(".aos/journal");
    let events = (records - 1) / GROUP;
    let why = |args: &[String]| {
        let mut c = Command::new(&aos);
        c.arg("--world").arg(&root).arg("why").args(args);
        c
    };

    // Baselines.
    let tail = median_of(runs, || {
        let mut c = Command::new("tail");
        c.arg("-n").arg("1").arg(&journal);
        c
    })?;
    let mut baselines = vec![("tail -n 1 journal".to_string(), tail)];
    if have("git") {
        let repo = scratch.join("why-git");
        std::fs::create_dir_all(&repo)?;
        let git = |args: &[&str]| {
            let mut c = Command::new("git");
            c.arg("-C").arg(&repo).args(args);
            c.env("GIT_AUTHOR_NAME", "b").env("GIT_AUTHOR_EMAIL", "b@x");
            c.env("GIT_COMMITTER_NAME", "b")
                .env("GIT_COMMITTER_EMAIL", "b@x");
            c
        };
        time_cmd(&mut git(&["init", "-q"]))?;
        time_cmd(&mut git(&["commit", "-q", "--allow-empty", "-m", "one"]))?;
        let d = median_of(runs, || git(&["log", "-1"]))?;
        baselines.push(("git log -1".to_string(), d));
    }
    let (base_name, base) = baselines[0].clone();

    // Cold: the first query builds the index.
    let mid = first(events / 2) + 7;
    let (cold, _) = time_cmd(&mut why(&[mid.to_string()]))?;
    let cache = root.join(".aos/cache/why");
    let cache_bytes: u64 = std::fs::read_dir(&cache)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    sec.row(Row::cost(
        BENCH,
        format!("cold: first query, builds the index of {records} records"),
        "ms",
        ms(cold),
        Some((&base_name, ms(base))),
    ));

    let last = records - 1;
    let cases: Vec<(String, Vec<String>)> = vec![
        ("seq 8 (early), back".into(), vec!["8".into()]),
        (format!("seq {mid} (middle), back"), vec![mid.to_string()]),
        (format!("seq {last} (head), back"), vec![last.to_string()]),
        (
            format!("seq {last} (head), back, --format json"),
            vec![last.to_string(), "--format".into(), "json".into()],
        ),
        (
            "intent hash (middle), back".into(),
            vec![intent_hash(events / 2).to_string()],
        ),
        (
            "reducer cell bench/Cell@1/k7, back".into(),
            vec!["bench/Cell@1/k7".into()],
        ),
        (
            format!("seq {} (middle root), --forward", first(events / 2)),
            vec![first(events / 2).to_string(), "--forward".into()],
        ),
        (
            "seq 1 (first root), --forward: scans every edge".into(),
            vec!["1".into(), "--forward".into()],
        ),
    ];
    let mut worst = Duration::ZERO;
    for (name, args) in &cases {
        let d = median_of(runs, || why(args))?;
        worst = worst.max(d);
        sec.row(
            Row::cost(
                BENCH,
                format!("warm: {name}"),
                "ms",
                ms(d),
                Some((&base_name, ms(base))),
            )
            .target(Target::new("< 100 ms", d < Duration::from_millis(100))),
        );
    }
    for (name, d) in &baselines {
        sec.note(format!(
            "baseline {name}: {:.1} ms (median of {runs})",
            ms(*d)
        ));
    }
    sec.note(format!(
        "index in .aos/cache/why: {:.1} MB; cold build {:.2} s; slowest warm query {:.1} ms; \
         each warm time is the median of {runs} runs of the process",
        cache_bytes as f64 / 1e6,
        cold.as_secs_f64(),
        ms(worst)
    ));
    Ok(sec)
}
