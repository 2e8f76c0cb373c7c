//! `governance`: `aos shadow ID --replay-all` (the release binary, as a process) on a
//! world with a 1,000-def manifest and 100,000 journal records.
//!
//! The world's genesis AIR is the counter example (`examples/counter/air` and its
//! reducer) plus 996 extra `defschema`s listed in the manifest, so the manifest names
//! 1,000 defs. Counter events (a `Start` with a huge target, then `Tick`s) are injected
//! through `aos_kernel::session::Session` in batches of 1,000 (each event is one input
//! and one `reducer_stepped` record), with snapshots as a live world takes them, until
//! the journal holds 100,000 records. `aos propose DIR` then proposes the same AIR plus
//! one extra schema, which changes nothing any input does, so the shadow must find no
//! divergence and exit 0 (checked, with the report's mode and input count).
//!
//! Timed, each as the median of several runs of the process: `aos shadow 1 --replay-all
//! --format json`; baselines in the same run: `aos replay --from-genesis` of the same
//! world (re-deriving the same records without a candidate) and `b3sum` of the journal
//! file (or an in-process streaming blake3 when `b3sum` is absent). Also the shadow
//! without replay (manifest diff only), the fixed cost of the command.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use air_fmt::load::Source;
use aos_kernel::records::REDUCER_STEPPED;
use aos_kernel::session::{BootOptions, EventIn, Session};
use aos_store::journal::SyncMode;
use aos_store::world::Access;
use serde_json::{json, Value};

use crate::kernel::{create_world_from, name, origin, reducer_wasm, Res};
use crate::report::{Row, Section, Target};
use crate::util::{have, median, mib, ms, say, settle};

const BENCH: &str = "governance";
const EVENT: &str = "demo/CounterEvent@1";
const REDUCER: &str = "demo/CounterSM@1";
/// The `Start` target: far more than the Ticks, and exact as a JSON number (< 2^53).
const TARGET: u64 = 1_000_000_000_000_000;
/// Events per `inject` while building.
const BATCH: u64 = 1000;
/// The schema the proposal adds.
const ADDED: &str = "bench/Added@1";

/// Sizes of one run.
struct Plan {
    /// Defs in the genesis manifest (the counter's 4 plus extra schemas).
    defs: usize,
    /// Journal records to reach (genesis included).
    records: u64,
    /// Timed runs of each command (the median is reported).
    runs: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                defs: 1_000,
                records: 10_000,
                runs: 3,
            }
        } else {
            Plan {
                defs: 1_000,
                records: 100_000,
                runs: 5,
            }
        }
    }
}

/// `examples/counter/air` in this repository.
fn counter_air() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .join("examples/counter/air")
}

/// Write the counter AIR plus `extra` schemas (and `added`, if any) to `dir`, every
/// schema listed in the manifest. Returns how many defs the manifest names.
fn write_air(dir: &Path, extra: usize, added: Option<&str>) -> Res<usize> {
    std::fs::create_dir_all(dir)?;
    let src = counter_air();
    for f in ["module.air.json", "schemas.air.json"] {
        std::fs::copy(src.join(f), dir.join(f))?;
    }
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.air.json"))?)?;
    let mut names: Vec<String> = (0..extra).map(|i| format!("bench/Extra{i}@1")).collect();
    names.extend(added.map(str::to_string));
    let defs: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"$kind": "defschema", "name": n, "type": {"record": {
                "id": {"nat": {}},
                "label": {"text": {}},
                "flag": {"variant": {"On": {"unit": {}}, "Off": {"unit": {}}, "N": {"nat": {}}}},
                "seq": if i % 2 == 0 { json!({"nat": {}}) } else { json!({"text": {}}) },
            }}})
        })
        .collect();
    std::fs::write(
        dir.join("extra.air.json"),
        serde_json::to_vec_pretty(&defs)?,
    )?;
    let list = manifest
        .get_mut("schemas")
        .and_then(Value::as_array_mut)
        .ok_or("the counter manifest has no schemas list")?;
    list.extend(names.iter().map(|n| json!({"name": n})));
    let schemas = list.len();
    let modules = manifest
        .get("modules")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    std::fs::write(
        dir.join("manifest.air.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(schemas + modules)
}

fn sources(dir: &Path) -> Res<Vec<Source>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.to_string_lossy().ends_with(".air.json") {
            out.push(Source {
                name: p.display().to_string(),
                bytes: std::fs::read(&p)?,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Inject counter events until the journal holds `records` records. Returns the number
/// of events injected and the snapshots taken.
fn fill(root: &Path, records: u64) -> Res<(u64, u64)> {
    let mut s = Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {})?;
    s.world.journal.set_sync_mode(SyncMode::OnClose);
    let ev = |value: Value| EventIn {
        schema: name(EVENT),
        value,
        key: None,
    };
    let start = ev(json!({"Start": {"target": TARGET}}));
    let tick = ev(json!({"$tag": "Tick"}));
    let origin = origin();
    let mut events = 0u64;
    let mut snapshots = 0u64;
    while s.world.journal.len() + 1 < records {
        // Two records per event; snapshots add one each, so stop short and top up.
        let n = ((records - s.world.journal.len()) / 2).clamp(1, BATCH);
        let batch: Vec<EventIn> = (events..events + n)
            .map(|i| if i == 0 { start.clone() } else { tick.clone() })
            .collect();
        let report = s.inject(&batch, &origin)?;
        if let Some((seq, r)) = report
            .iter()
            .flat_map(|i| &i.derived)
            .find(|(_, r)| r.kind != REDUCER_STEPPED)
        {
            return Err(format!(
                "the counter did not step at seq {seq}: {} {}",
                r.kind, r.body
            )
            .into());
        }
        events += n;
        if s.snapshot_if_due()?.is_some() {
            snapshots += 1;
        }
    }
    s.finish()?;
    Ok((events, snapshots))
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

/// Run a command to completion, timed from spawn to exit; a non-zero exit is an error.
/// Returns the time, stdout, and the child's peak RSS in bytes (from `wait4`).
fn time_cmd(cmd: &mut Command) -> Res<(Duration, Vec<u8>, u64)> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn()?;
    let mut stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .ok_or("no stdout pipe")?
        .read_to_end(&mut stdout)?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 on our own child (not yet reaped: `child` is never waited on), writing
    // into a zeroed rusage we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::wait4(pid, &mut status, 0, &mut ru) } != pid {
        return Err(format!("wait4 {cmd:?}: {}", std::io::Error::last_os_error()).into());
    }
    let d = t.elapsed();
    let stderr = err.join().unwrap_or_default();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!(
            "{cmd:?} failed (wait status {status}): {}\n{}",
            String::from_utf8_lossy(&stderr).trim(),
            String::from_utf8_lossy(&stdout).trim()
        )
        .into());
    }
    // ru_maxrss is in KiB on Linux.
    Ok((d, stdout, ru.ru_maxrss.max(0) as u64 * 1024))
}

/// In-process streaming blake3 of a file (1 MiB reads), the baseline without `b3sum`.
fn blake3_file(path: &Path) -> Res<Duration> {
    let t = Instant::now();
    let mut f = std::fs::File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    std::hint::black_box(h.finalize());
    Ok(t.elapsed())
}

/// Check a shadow report: exit 0 was checked by [`time_cmd`]; the report must be ok, in
/// replay mode (if `replay`), without divergences. Returns the inputs it re-ran.
fn check_report(stdout: &[u8], replay: bool) -> Res<u64> {
    let doc: Value = serde_json::from_slice(stdout)
        .map_err(|e| format!("shadow printed no JSON report ({e})"))?;
    if doc["ok"] != json!(true) {
        return Err(format!("the shadow report is not ok: {doc}").into());
    }
    // Without --events or --replay-*, a shadow only diffs the manifests.
    let want = if replay { "replay_all" } else { "diff" };
    if doc["mode"] != json!(want) {
        return Err(format!("shadow mode {} (expected {want})", doc["mode"]).into());
    }
    let divergences = doc["divergences"].as_array().map_or(0, Vec::len);
    if divergences != 0 {
        return Err(format!("adding a schema diverged at {divergences} inputs").into());
    }
    Ok(doc["replayed_inputs"].as_u64().unwrap_or(0))
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
    let plan = Plan::new(quick);
    let (_, wasm) = reducer_wasm("counter", "AOS_COUNTER_WASM")?;

    // The genesis AIR (counter + extra schemas) and the candidate (one more schema).
    let counter_defs = write_air(&scratch.join("gov-probe"), 0, None)?;
    let extra = plan.defs.saturating_sub(counter_defs);
    let base_dir = scratch.join("gov-air");
    let defs = write_air(&base_dir, extra, None)?;
    let cand_dir = scratch.join("gov-air-candidate");
    write_air(&cand_dir, extra, Some(ADDED))?;

    let root = scratch.join("gov-world");
    say(format!(
        "building a counter world with a {defs}-def manifest and {} records",
        plan.records
    ));
    let t = Instant::now();
    create_world_from(
        &root,
        "the governance bench AIR",
        &sources(&base_dir)?,
        &[(REDUCER, &wasm)],
    )?;
    let (events, snapshots) = fill(&root, plan.records)?;
    let journal = root.join(".aos/journal");
    let journal_bytes = std::fs::metadata(&journal)?.len();
    say(format!(
        "built in {:.1} s: {events} events, {snapshots} snapshots, {:.1} MB journal",
        t.elapsed().as_secs_f64(),
        journal_bytes as f64 / 1e6
    ));

    let aos_cmd = |args: &[&str]| {
        let mut c = Command::new(&aos);
        c.arg("--world").arg(&root).args(args);
        c
    };
    let (_, out, _) =
        time_cmd(aos_cmd(&["--format", "json", "propose", "-m", "add a schema"]).arg(&cand_dir))?;
    let proposed: Value = serde_json::from_slice(&out).map_err(|e| {
        format!(
            "propose printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })?;
    let id = proposed["id"]
        .as_u64()
        .ok_or_else(|| format!("propose printed no id: {proposed}"))?
        .to_string();
    let records = {
        let s = Session::open(&root, Access::Read, BootOptions::default(), &mut |_, _| {})?;
        s.world.journal.len()
    };
    settle(&root);

    // Warm-up (module cache, page cache), not timed; the runs then alternate.
    let shadow_args = ["--format", "json", "shadow", &id, "--replay-all"];
    let (_, out, _) = time_cmd(&mut aos_cmd(&shadow_args))?;
    let inputs = check_report(&out, true)?;
    time_cmd(&mut aos_cmd(&["replay", "--from-genesis"]))?;

    let b3 = have("b3sum");
    let (mut shadow, mut replay, mut hash, mut diff_only) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut shadow_rss, mut replay_rss, mut diff_rss) = (0u64, 0u64, 0u64);
    for _ in 0..plan.runs {
        let (d, out, rss) = time_cmd(&mut aos_cmd(&shadow_args))?;
        shadow_rss = shadow_rss.max(rss);
        let n = check_report(&out, true)?;
        if n < inputs {
            return Err(format!("shadow re-ran {n} inputs, earlier {inputs}").into());
        }
        shadow.push(d);
        let (d, _, rss) = time_cmd(&mut aos_cmd(&["replay", "--from-genesis"]))?;
        replay_rss = replay_rss.max(rss);
        replay.push(d);
        hash.push(if b3 {
            time_cmd(Command::new("b3sum").arg(&journal))?.0
        } else {
            blake3_file(&journal)?
        });
        let (d, out, rss) = time_cmd(&mut aos_cmd(&["--format", "json", "shadow", &id]))?;
        diff_rss = diff_rss.max(rss);
        check_report(&out, false)?;
        diff_only.push(d);
    }
    let (shadow, replay, hash, diff_only) = (
        median(shadow),
        median(replay),
        median(hash),
        median(diff_only),
    );
    let hash_name = if b3 {
        "b3sum journal"
    } else {
        "blake3 journal (in-process)"
    };
    let case = format!("shadow --replay-all, {defs}-def manifest, {records} records");
    let secs = |d: Duration| d.as_secs_f64();
    sec.row(
        Row::cost(
            BENCH,
            case.clone(),
            "s",
            secs(shadow),
            Some(("replay --from-genesis", secs(replay))),
        )
        .target(Target::new("< 5 s", shadow < Duration::from_secs(5))),
    );
    sec.row(Row::cost(
        BENCH,
        case,
        "s",
        secs(shadow),
        Some((hash_name, secs(hash))),
    ));
    let per = |d: Duration| d.as_secs_f64() * 1e6 / inputs.max(1) as f64;
    sec.row(Row::cost(
        BENCH,
        format!("shadow --replay-all per recorded input ({inputs} inputs)"),
        "us",
        per(shadow),
        Some(("replay --from-genesis", per(replay))),
    ));
    sec.row(Row::cost(
        BENCH,
        format!("shadow without replay (manifest diff only), {defs}-def manifest"),
        "ms",
        ms(diff_only),
        Some((hash_name, ms(hash))),
    ));
    sec.row(Row::cost(
        BENCH,
        "shadow --replay-all peak RSS of the process",
        "MiB",
        mib(shadow_rss),
        Some(("replay --from-genesis", mib(replay_rss))),
    ));
    sec.note(format!(
        "peak RSS (wait4 ru_maxrss, largest of the runs): shadow --replay-all {:.1} MiB, \
         shadow without replay {:.1} MiB, replay --from-genesis {:.1} MiB",
        mib(shadow_rss),
        mib(diff_rss),
        mib(replay_rss)
    ));
    sec.note(format!(
        "world: counter AIR + {extra} extra defschemas ({defs} defs in the manifest), {events} \
         counter events injected in batches of {BATCH} (1 input + 1 reducer_stepped each), \
         {snapshots} snapshots, {:.1} MB journal; the proposal adds one schema ({ADDED}); every \
         shadow run exits 0 with mode replay_all, ok and no divergence",
        journal_bytes as f64 / 1e6
    ));
    sec.note(format!(
        "medians of {} runs of each process, alternating; one untimed warm-up run of shadow and \
         replay first; each shadow run appends one shadow_report record",
        plan.runs
    ));
    sec.note(format!(
        "shadow --replay-all {:.0} ms = fixed cost (shadow without replay) {:.0} ms + replay \
         under the candidate {:.0} ms; replay --from-genesis {:.0} ms; {hash_name} {:.1} ms",
        ms(shadow),
        ms(diff_only),
        ms(shadow.saturating_sub(diff_only)),
        ms(replay),
        ms(hash)
    ));
    Ok(sec)
}
