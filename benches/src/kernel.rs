//! `kernel`: replaying a world of counter events, the memory of that replay, and
//! `aos send` of one event as a process.
//!
//! The world runs the counter example (`examples/counter`: its AIR and its reducer,
//! built by `scripts/build-reducers.sh`). It is created and filled through the public
//! kernel API, like `aos init --air` and `aos run` do: `World::create` with the genesis
//! manifest, then `Session::inject` of one `Start` with a huge target and then `Tick`s,
//! in batches of [`BATCH`] events, with `snapshot_if_due` between batches (a snapshot
//! every 10,000 records). The journal is set to `SyncMode::OnClose` while building, in
//! memory only (the world's config keeps the default `every_append`).
//!
//! Timed:
//!
//! * **replay**: `Session::open(Access::Read)` from genesis with `verify_snapshots`,
//!   which feeds every input to the kernel and compares every re-derived record with the
//!   journal's. Baseline: a bare wasmtime loop on the same module with the same input
//!   bytes (what the kernel sends for a `Tick` with a `Counting` state), doing only what
//!   the ABI forces: a fresh instance from a cached `InstancePre` per event, `alloc`,
//!   copy the input in, `step`, copy the output out, on an engine with the kernel's own
//!   profile (`aos_kernel::wasm::engine_config`). The floor sets the same fuel per store
//!   but installs no resource limiter.
//! * **where a replayed event's time goes**: the same input through
//!   `Runtime::call_step` (the kernel's raw ABI call), `run_reducer_step` (encode the
//!   input, call, parse and canonicalize the output) and `Kernel::process` of a `Tick`
//!   record (routing, event canonicalization, the step, the derived record, the state
//!   hash), each against the floor, taking turns round after round; plus one pass
//!   over the journal with `iter_from(0)`.
//! * **memory**: the peak heap (counting allocator) and peak RSS growth of a replay of
//!   a quarter of the events (`until`) and of all of them.
//! * **`aos send`**: the release `aos` binary (next to this one, or
//!   `$CARGO_TARGET_DIR/release/aos`) sending one `Tick` to a warm world (its compiled
//!   module and state cache in place), and to the big world: process start, open, step,
//!   fdatasync, exit. Baseline: `git commit -a` of one small changed file in a fresh
//!   repository; git does not fsync by default, so a second baseline runs it with
//!   `core.fsync=all`. The four processes take turns going first. In-process sends
//!   (open, inject, finish) split the process's cost from the session's.

use std::borrow::Cow;
use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use air_fmt::assemble::{assemble, fill_wasm_hashes};
use air_fmt::diag::has_errors;
use air_fmt::load::{load, Source};
use air_fmt::validate::validate;
use air_fmt::Name;
use aos_adapters::signing::ReceiptSigner;
use aos_kernel::records::{DOMAIN_EVENT, REDUCER_STEPPED};
use aos_kernel::session::{read_snapshot_index, Boot, BootOptions, EventIn, Session, Start};
use aos_kernel::wasm::{
    encode_input, run_reducer_step, Contract, InputState, Limits, ReducerInput,
};
use aos_store::journal::{Record, SyncMode};
use aos_store::world::{Access, Genesis, Layout, World};
use aos_store::{canon, Hash};
use serde_json::{json, Map, Value};
use wasmtime::{Engine, Extern, InstancePre, Linker, Module, ModuleExport, Store};

use crate::mem::{measure, Mem};
use crate::report::{Row, Section, Target};
use crate::util::{median, mib, ms, per_s, say, settle, timed};

pub(crate) type Res<T> = Result<T, Box<dyn Error>>;

const BENCH: &str = "kernel";
const EVENT: &str = "demo/CounterEvent@1";
const REDUCER: &str = "demo/CounterSM@1";
/// The `Start` target: far more than the Ticks, and exact as a JSON number (< 2^53).
const TARGET: u64 = 1_000_000_000_000_000;
/// Events per `inject` while building (one group commit of 2 records per event).
const BATCH: u64 = 1000;

/// Sizes of one run.
struct Plan {
    /// Counter events in the replayed world (one `Start`, then `Tick`s).
    events: u64,
    /// Events of the shorter replay (memory must not depend on the length).
    small_events: u64,
    /// Calls per measurement of the floor and of each breakdown layer.
    calls: u64,
    /// Events already in the world that `aos send` is timed on.
    send_world_events: u64,
    /// Timed `aos send` (and `git commit`) runs.
    sends: usize,
    /// Full replays timed (the median is reported).
    replays: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                events: 20_000,
                small_events: 5_000,
                calls: 20_000,
                send_world_events: 1_000,
                sends: 15,
                replays: 1,
            }
        } else {
            Plan {
                events: 1_000_000,
                small_events: 250_000,
                calls: 200_000,
                send_world_events: 10_000,
                sends: 50,
                replays: 2,
            }
        }
    }
}

pub(crate) fn name(s: &str) -> Name {
    Name::parse(s).expect("a valid name")
}

pub(crate) fn origin() -> Value {
    json!({"who": "aos-bench", "via": "aos-bench"})
}

fn tick() -> Value {
    json!({"$tag": "Tick"})
}

/// The repository root (this crate is `benches/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The counter reducer (see [`reducer_wasm`]).
fn counter_wasm() -> Res<(PathBuf, Vec<u8>)> {
    reducer_wasm("counter", "AOS_COUNTER_WASM")
}

/// A built example reducer `<file>.wasm`, found like `kernel/tests/counter_reducer.rs`
/// finds the counter: `$<env>`, `$CARGO_TARGET_DIR/reducers/<file>.wasm`, the target
/// directory this binary was built in, and scripts/env.sh's default
/// (`~/.cache/aos/target`).
pub(crate) fn reducer_wasm(file: &str, env: &str) -> Res<(PathBuf, Vec<u8>)> {
    let file = format!("{file}.wasm");
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os(env) {
        tried.push(PathBuf::from(p));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(PathBuf::from(t).join("reducers").join(&file));
    }
    // This binary lives at <target>/<profile>/aos-bench.
    if let Some(t) = std::env::current_exe()
        .ok()
        .and_then(|e| e.ancestors().nth(2).map(Path::to_path_buf))
    {
        tried.push(t.join("reducers").join(&file));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(c) = cache {
        tried.push(c.join("aos/target/reducers").join(&file));
    }
    for p in &tried {
        if let Ok(bytes) = std::fs::read(p) {
            return Ok((p.clone(), bytes));
        }
    }
    Err(format!(
        "the reducer {file} is not built (looked at {tried:?}); run scripts/build-reducers.sh \
         (with the same CARGO_TARGET_DIR), or set {env} to a built {file}"
    )
    .into())
}

/// A world at `root` whose genesis manifest is the counter example, as
/// `aos init --air examples/counter/air --module demo/CounterSM@1=counter.wasm` makes it.
fn create_world(root: &Path, wasm: &[u8]) -> Res<()> {
    create_example_world(root, "counter", REDUCER, wasm)
}

/// A world at `root` whose genesis manifest is `examples/<example>/air` with `module`'s
/// wasm hash filled in, as `aos init --air examples/<example>/air --module
/// <module>=<file>.wasm` makes it.
pub(crate) fn create_example_world(
    root: &Path,
    example: &str,
    module: &str,
    wasm: &[u8],
) -> Res<()> {
    let dir = repo().join("examples").join(example).join("air");
    let mut sources = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        if p.to_string_lossy().ends_with(".air.json") {
            sources.push(Source {
                name: p.display().to_string(),
                bytes: std::fs::read(&p)?,
            });
        }
    }
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    create_world_from(
        root,
        &format!("the {example} AIR in {}", dir.display()),
        &sources,
        &[(module, wasm)],
    )
}

/// A world at `root` whose genesis manifest is `sources` (AIR files), with each
/// `(module, wasm)` stored and its wasm hash filled in.
pub(crate) fn create_world_from(
    root: &Path,
    label: &str,
    sources: &[Source],
    modules: &[(&str, &[u8])],
) -> Res<()> {
    let (mut set, mut diags) = load(sources);
    let hashes = modules
        .iter()
        .map(|(m, w)| (name(m), Hash::of(w)))
        .collect();
    diags.extend(fill_wasm_hashes(&mut set, &hashes));
    diags.extend(validate(&set));
    let (assembled, more) = assemble(&set);
    diags.extend(more);
    let assembled = match assembled {
        Some(a) if !has_errors(&diags) => a,
        _ => return Err(format!("{label} has errors: {diags:?}").into()),
    };
    let mut objects: Vec<Vec<u8>> = modules.iter().map(|(_, w)| w.to_vec()).collect();
    for (_, value) in assembled.defs.values() {
        objects.push(canon::value_to_vec(value)?);
    }
    objects.push(canon::value_to_vec(&assembled.manifest)?);
    let mut body = Map::new();
    body.insert(
        "manifest".into(),
        Value::String(assembled.manifest_hash.to_string()),
    );
    body.insert(
        "limits".into(),
        aos_kernel::state::limits_json(&Limits::default()),
    );
    let signer = ReceiptSigner::generate()?;
    World::create(
        root,
        Genesis {
            public_key: signer.public_key(),
            secret_key_file: &signer.to_file_bytes(),
            origin: origin(),
            objects,
            body,
        },
    )?;
    Ok(())
}

/// What building a world took.
struct Built {
    /// Seq of the last record caused by event `small_events`.
    until: u64,
    records: u64,
    snapshots: u64,
    time: Duration,
    inject_time: Duration,
}

/// Create a counter world and inject `events` events (a `Start`, then `Tick`s).
fn build_world(root: &Path, wasm: &[u8], events: u64, small_events: u64) -> Res<Built> {
    let t = Instant::now();
    create_world(root, wasm)?;
    let mut s = Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {})?;
    s.world.journal.set_sync_mode(SyncMode::OnClose);
    let ev = |value: Value| EventIn {
        schema: name(EVENT),
        value,
        key: None,
    };
    let (start, tick) = (ev(json!({"Start": {"target": TARGET}})), ev(tick()));
    let origin = origin();
    let mut done = 0u64;
    let mut until = None;
    let mut snapshots = 0u64;
    let mut inject_time = Duration::ZERO;
    while done < events {
        let n = BATCH.min(events - done);
        let batch: Vec<EventIn> = (done..done + n)
            .map(|i| if i == 0 { start.clone() } else { tick.clone() })
            .collect();
        let (report, d) = timed(|| s.inject(&batch, &origin));
        let report = report?;
        inject_time += d;
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
        if until.is_none() && done + n >= small_events {
            let inj = &report[(small_events - done - 1) as usize];
            until = Some(inj.derived.last().map_or(inj.seq, |(seq, _)| *seq));
        }
        done += n;
        if s.snapshot_if_due()?.is_some() {
            snapshots += 1;
        }
    }
    let records = s.world.journal.len();
    s.finish()?;
    Ok(Built {
        until: until.unwrap_or(records - 1),
        records,
        snapshots,
        time: t.elapsed(),
        inject_time,
    })
}

/// One replay from genesis (checking every record and snapshot).
fn replay(root: &Path, until: Option<u64>) -> Res<(Session, Duration, Mem)> {
    settle(root);
    let ((s, d), mem) = measure(|| {
        timed(|| {
            Session::open(
                root,
                Access::Read,
                BootOptions {
                    start: Start::Genesis,
                    until,
                    verify_snapshots: true,
                },
                &mut |_, _| {},
            )
        })
    });
    Ok((s?, d, mem))
}

/// The kernel's own engine profile (`aos_kernel::wasm::engine_config`): fuel, NaN
/// canonicalization, no relaxed SIMD, a fixed stack, the same pool and resident memory.
fn floor_engine(limits: &Limits) -> Res<Engine> {
    Engine::new(&aos_kernel::wasm::engine_config(limits))
        .map_err(|e| format!("floor engine: {e}").into())
}

/// The module linked once, with its ABI exports' handles.
struct Floor {
    store_fuel: u64,
    pre: InstancePre<()>,
    memory: ModuleExport,
    alloc: ModuleExport,
    step: ModuleExport,
}

impl Floor {
    fn new(engine: &Engine, wasm: &[u8], fuel: u64) -> Res<Floor> {
        let module = Module::from_binary(engine, wasm).map_err(|e| format!("compile: {e}"))?;
        let export = |n: &str| {
            module
                .get_export_index(n)
                .ok_or_else(|| format!("no export `{n}`"))
        };
        Ok(Floor {
            store_fuel: fuel,
            memory: export("memory")?,
            alloc: export("alloc")?,
            step: export("step")?,
            pre: Linker::new(engine)
                .instantiate_pre(&module)
                .map_err(|e| format!("link: {e}"))?,
        })
    }

    /// What the ABI forces per event: a fresh instance, `alloc`, copy in, `step`, copy out.
    fn call(&self, engine: &Engine, input: &[u8]) -> Result<Vec<u8>, String> {
        let e = |e: wasmtime::Error| e.to_string();
        let mut store = Store::new(engine, ());
        store.set_fuel(self.store_fuel).map_err(e)?;
        let inst = self.pre.instantiate(&mut store).map_err(e)?;
        let memory = inst
            .get_module_export(&mut store, &self.memory)
            .and_then(Extern::into_memory)
            .ok_or("memory")?;
        let alloc = inst
            .get_module_export(&mut store, &self.alloc)
            .and_then(Extern::into_func)
            .ok_or("alloc")?
            .typed::<i32, i32>(&store)
            .map_err(e)?;
        let step = inst
            .get_module_export(&mut store, &self.step)
            .and_then(Extern::into_func)
            .ok_or("step")?
            .typed::<(i32, i32), i64>(&store)
            .map_err(e)?;
        let ptr = alloc.call(&mut store, input.len() as i32).map_err(e)? as u32 as usize;
        memory
            .data_mut(&mut store)
            .get_mut(ptr..ptr + input.len())
            .ok_or("alloc out of bounds")?
            .copy_from_slice(input);
        let packed = step
            .call(&mut store, (ptr as i32, input.len() as i32))
            .map_err(e)? as u64;
        let (at, len) = ((packed >> 32) as usize, packed as u32 as usize);
        Ok(memory
            .data(&store)
            .get(at..at + len)
            .ok_or("output out of bounds")?
            .to_vec())
    }
}

/// The time of `n` calls of `f`.
fn time_n(n: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed()
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

/// Run a command to completion, timing it from spawn to exit; a failure is an error.
fn time_cmd(cmd: &mut Command) -> Res<Duration> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
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
    Ok(d)
}

fn git(repo: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C")
        .arg(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "-c",
            "user.name=aos-bench",
            "-c",
            "user.email=aos-bench@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ]);
    c
}

/// A repository with one committed small file.
fn git_repo(dir: &Path) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    time_cmd(git(dir).args(["init", "-q"]))?;
    std::fs::write(dir.join("f.txt"), "0\n")?;
    time_cmd(git(dir).args(["add", "f.txt"]))?;
    time_cmd(git(dir).args(["commit", "-q", "-m", "0"]))?;
    Ok(())
}

/// Change the file (not timed) and time `git commit -a` of it.
fn git_commit(dir: &Path, i: usize, extra: &[&str]) -> Res<Duration> {
    std::fs::write(dir.join("f.txt"), format!("{i}\n"))?;
    time_cmd(
        git(dir)
            .args(extra)
            .args(["commit", "-q", "-a", "-m", &format!("tick {i}")]),
    )
}

fn aos_send(aos: &Path, root: &Path) -> Res<Duration> {
    time_cmd(Command::new(aos).arg("--world").arg(root).args([
        "-q",
        "send",
        EVENT,
        r#"{"$tag":"Tick"}"#,
    ]))
}

/// One in-process send: open for writing (from the state cache), inject, finish. Also
/// returns how many modules the session compiled (0 when the disk cache served it).
fn send_in_process(root: &Path) -> Res<([Duration; 3], u64)> {
    let t = Instant::now();
    let mut s = Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {})?;
    let open = t.elapsed();
    let t = Instant::now();
    s.inject(
        &[EventIn {
            schema: name(EVENT),
            value: tick(),
            key: None,
        }],
        &origin(),
    )?;
    let inject = t.elapsed();
    let compiled = s.kernel.rt.stats().compiled;
    let t = Instant::now();
    s.finish()?;
    Ok(([open, inject, t.elapsed()], compiled))
}

/// Minor page faults of this process so far.
fn minor_faults() -> i64 {
    // SAFETY: getrusage fills a zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
    }
    ru.ru_minflt
}

fn median_ms(v: &[Duration]) -> f64 {
    ms(median(v.to_vec()))
}

fn k(n: u64) -> String {
    if n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

pub fn run_bench(scratch: &Path, quick: bool) -> Res<Section> {
    let mut sec = Section::new(BENCH);
    let plan = Plan::new(quick);
    let (wasm_path, wasm) = counter_wasm()?;
    let module = Hash::of(&wasm);
    let limits = Limits::default();

    // --- Build the world.
    let root = scratch.join("kernel-counter");
    say(format!(
        "building a counter world of {} events ({} per inject, snapshots every 10,000 records)",
        plan.events, BATCH
    ));
    let built = build_world(&root, &wasm, plan.events, plan.small_events)?;
    let jpath = Layout::new(&root).journal();
    let jbytes = std::fs::metadata(&jpath)?.len();
    sec.note(format!(
        "world: {} events, {} records ({} snapshots), journal {:.1} MB; built in {:.1} s, of which inject {:.1} s ({:.0} events/s in batches of {BATCH}, journal on_close); module {} ({} bytes)",
        plan.events,
        built.records,
        built.snapshots,
        jbytes as f64 / 1e6,
        built.time.as_secs_f64(),
        built.inject_time.as_secs_f64(),
        per_s(plan.events, built.inject_time),
        wasm_path.display(),
        wasm.len()
    ));

    // --- Replay: a quarter, then everything.
    say(format!(
        "replay of {} events (until seq {})",
        plan.small_events, built.until
    ));
    let (s_small, small_t, small_mem) = replay(&root, Some(built.until))?;
    if s_small.boot.replayed != built.until + 1 {
        return Err(format!(
            "the short replay read {} records, expected {}",
            s_small.boot.replayed,
            built.until + 1
        )
        .into());
    }
    let small_boot: Boot = s_small.boot.clone();
    drop(s_small);
    let mut full_times = Vec::new();
    let mut full_mem = Mem::default();
    let mut session = None;
    for i in 0..plan.replays {
        say(format!(
            "replay of {} events ({} of {})",
            plan.events,
            i + 1,
            plan.replays
        ));
        // The previous replay's session is freed before the next is measured.
        drop(session.take());
        let (s, d, m) = replay(&root, None)?;
        if s.boot.replayed != built.records || s.pending() != 0 {
            return Err(format!(
                "the replay read {} of {} records ({} pending)",
                s.boot.replayed,
                built.records,
                s.pending()
            )
            .into());
        }
        full_times.push(d);
        full_mem = m;
        session = Some(s);
    }
    let mut s = session.ok_or("no replay ran")?;
    let full_t = median(full_times.clone());
    let boot = s.boot.clone();

    // --- The same step, layer by layer.
    let red_name = name(REDUCER);
    let state = s
        .kernel
        .state_of(&red_name, None)
        .ok_or("the counter has no state after replay")?
        .clone();
    let state_text = String::from_utf8_lossy(&state.bytes).into_owned();
    if !state_text.contains("Counting") {
        return Err(format!("the counter is not counting after replay: {state_text}").into());
    }
    let event_schema = name(EVENT);
    let tick_value = tick();
    let now_ns = aos_store::journal::now_ns();
    let step_input = ReducerInput {
        state: InputState::Canonical(&state.bytes),
        event_schema: &event_schema,
        event: &tick_value,
        now_ns,
        key: None,
        cell_mode: false,
    };
    let input = encode_input(&step_input)?;

    let engine = floor_engine(&limits)?;
    let floor = Floor::new(&engine, &wasm, limits.fuel_per_step)?;
    let floor_out = floor.call(&engine, &input)?;
    let kernel_out = s.kernel.rt.call_step(&module, &input)?;
    if floor_out != kernel_out.bytes {
        return Err(format!(
            "the floor and the kernel disagree: {:?} vs {:?}",
            String::from_utf8_lossy(&floor_out),
            String::from_utf8_lossy(&kernel_out.bytes)
        )
        .into());
    }
    say("breakdown: journal read");
    settle(&root);
    let (n, journal_t) = timed(|| -> Res<u64> {
        let mut n = 0u64;
        for item in s.world.journal.iter_from(0)? {
            black_box(item?);
            n += 1;
        }
        Ok(n)
    });
    if n? != built.records {
        return Err("the journal iteration did not read every record".into());
    }
    let m = s
        .kernel
        .manifest
        .clone()
        .ok_or("no manifest after replay")?;
    let red = m.reducer(&red_name).ok_or("no counter reducer")?;
    let schemas = m.schemas();
    let contract = Contract {
        schemas: &schemas,
        state: Cow::Borrowed(&red.state_ty),
        event: None,
        domain_events: Cow::Borrowed(&m.emittable),
        effects: Cow::Borrowed(&red.effects),
    };
    let mut seq = s.world.journal.len();
    let mut body = Map::new();
    body.insert("schema".into(), json!(EVENT));
    body.insert("value".into(), tick());
    body.insert("origin".into(), origin());
    let mut rec = Record {
        seq,
        prev: None,
        at_ns: now_ns,
        kind: DOMAIN_EVENT.into(),
        cause: Vec::new(),
        body: Value::Object(body),
    };
    // The layers take turns, round after round, so a noisy moment hits them all alike.
    let rounds = 5;
    let per_round = (plan.calls / rounds as u64).max(1);
    say(format!(
        "floor and step layers: {rounds} rounds of {per_round} calls each"
    ));
    let mut times: [Vec<Duration>; 4] = Default::default();
    let mut faults = 0;
    for _ in 0..rounds {
        let f0 = minor_faults();
        times[0].push(time_n(per_round, || {
            black_box(floor.call(&engine, black_box(&input)).expect("floor step"));
        }));
        faults += minor_faults() - f0;
        times[1].push(time_n(per_round, || {
            black_box(
                s.kernel
                    .rt
                    .call_step(&module, black_box(&input))
                    .expect("call_step"),
            );
        }));
        times[2].push(time_n(per_round, || {
            black_box(
                run_reducer_step(&s.kernel.rt, &module, &contract, &step_input, seq)
                    .expect("run_reducer_step"),
            );
        }));
        times[3].push(time_n(per_round, || {
            rec.seq = seq;
            let out = s
                .kernel
                .process(&s.world.objects, seq, &rec)
                .expect("process");
            seq += 1 + out.len() as u64;
            black_box(out);
        }));
    }
    let [floor_t, call_t, typed_t, process_t] = times;
    let layer_rate = |t: Vec<Duration>| per_s(per_round, median(t));
    let floor_rate = layer_rate(floor_t);
    let call_rate = layer_rate(call_t);
    let typed_rate = layer_rate(typed_t);
    let process_rate = layer_rate(process_t);
    let faults_per_step = faults as f64 / (rounds as u64 * per_round) as f64;
    drop(s);

    let replay_rate = per_s(plan.events, full_t);
    let floor_x = floor_rate / replay_rate;
    let replay_case = format!("replay {} counter events (from genesis)", k(plan.events));
    sec.row(
        Row::rate(
            BENCH,
            replay_case.clone(),
            "ev/s",
            replay_rate,
            Some(("bare wasmtime step", floor_rate)),
        )
        .target(Target::new(">=100,000 ev/s", replay_rate >= 100_000.0)),
    );
    sec.row(
        Row::rate(
            BENCH,
            replay_case,
            "ev/s",
            replay_rate,
            Some(("bare wasmtime step", floor_rate)),
        )
        .target(Target::new("within 3x of the floor", floor_x <= 3.0)),
    );
    sec.row(Row::rate(
        BENCH,
        format!("replay {} counter events", k(plan.small_events)),
        "ev/s",
        per_s(plan.small_events, small_t),
        Some(("bare wasmtime step", floor_rate)),
    ));
    for (case, r) in [
        ("step layer: Runtime::call_step (raw ABI)", call_rate),
        (
            "step layer: run_reducer_step (+ encode, parse, canonicalize)",
            typed_rate,
        ),
        (
            "step layer: Kernel::process of a Tick record (+ routing, record, state hash)",
            process_rate,
        ),
    ] {
        sec.row(Row::rate(
            BENCH,
            case,
            "ev/s",
            r,
            Some(("bare wasmtime step", floor_rate)),
        ));
    }
    let us = |r: f64| 1e6 / r;
    let journal_us = journal_t.as_secs_f64() * 1e6 / plan.events as f64;
    sec.note(format!(
        "per event: floor {:.2} us; call_step {:.2} us ({:+.2}); run_reducer_step {:.2} us ({:+.2}); Kernel::process {:.2} us ({:+.2}); reading the journal ({} records: read, parse, hash) {:.2} us; full replay {:.2} us ({:+.2} beyond process + journal read: the replayer's compare and bookkeeping, snapshots, open)",
        us(floor_rate),
        us(call_rate),
        us(call_rate) - us(floor_rate),
        us(typed_rate),
        us(typed_rate) - us(call_rate),
        us(process_rate),
        us(process_rate) - us(typed_rate),
        built.records,
        journal_us,
        us(replay_rate),
        us(replay_rate) - us(process_rate) - journal_us
    ));
    sec.note(format!(
        "the floor takes {faults_per_step:.1} page faults per step (see benches/README.md: where a step's time goes)"
    ));
    sec.note(format!(
        "replay from genesis: {} records read, {} inputs, {} derived records compared, {} snapshot hashes checked; {} full replays: {}",
        boot.replayed,
        boot.inputs,
        boot.derived,
        boot.snapshots_checked,
        full_times.len(),
        full_times
            .iter()
            .map(|d| format!("{:.2} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    sec.note(format!(
        "input {} bytes ({}), output {} bytes; {} fuel per step",
        input.len(),
        String::from_utf8_lossy(&input),
        kernel_out.bytes.len(),
        kernel_out.fuel_used
    ));
    sec.note("the floor runs on the kernel's own engine profile (aos_kernel::wasm::engine_config) with the same fuel, without a resource limiter");

    // --- Memory.
    let limit = 1 << 20;
    sec.row(
        Row::cost(
            BENCH,
            format!("replay peak heap, {} events", k(plan.events)),
            "MiB",
            mib(full_mem.heap_peak),
            Some((
                &format!("same at {}", k(plan.small_events)),
                mib(small_mem.heap_peak),
            )),
        )
        .target(Target::new(
            "constant (+<=1 MiB)",
            full_mem.heap_peak <= small_mem.heap_peak + limit,
        )),
    );
    sec.row(Row::cost(
        BENCH,
        format!("replay peak RSS growth, {} events", k(plan.events)),
        "MiB",
        mib(full_mem.rss_peak),
        Some((
            &format!("same at {}", k(plan.small_events)),
            mib(small_mem.rss_peak),
        )),
    ));
    sec.note(format!(
        "memory: {} events peak heap {:.3} MiB, peak RSS growth {:.2} MiB (RSS {:.1} MiB before); {} events peak heap {:.3} MiB, peak RSS growth {:.2} MiB (RSS {:.1} MiB before); the short replay read {} records",
        plan.small_events,
        mib(small_mem.heap_peak),
        mib(small_mem.rss_peak),
        mib(small_mem.rss_before),
        plan.events,
        mib(full_mem.heap_peak),
        mib(full_mem.rss_peak),
        mib(full_mem.rss_before),
        small_boot.replayed
    ));

    // --- aos send as a process.
    let Some(aos) = aos_binary() else {
        sec.note(format!(
            "skipped `aos send`: no `aos` next to {} or in $CARGO_TARGET_DIR/release (build it with `cargo build --release -p aos-cli`)",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ));
        return Ok(sec);
    };
    let send_root = scratch.join("kernel-send");
    say(format!(
        "a warm world of {} events for `aos send`",
        plan.send_world_events
    ));
    build_world(
        &send_root,
        &wasm,
        plan.send_world_events,
        plan.send_world_events,
    )?;
    let repo_default = scratch.join("kernel-git");
    let repo_fsync = scratch.join("kernel-git-fsync");
    git_repo(&repo_default)?;
    git_repo(&repo_fsync)?;
    let fsync_all = ["-c", "core.fsync=all", "-c", "core.fsyncMethod=fsync"];
    // Warm up: the compiled module in the world's cache, the state cache, page cache.
    for i in 0..3 {
        aos_send(&aos, &send_root)?;
        aos_send(&aos, &root)?;
        git_commit(&repo_default, 1000 + i, &[])?;
        git_commit(&repo_fsync, 1000 + i, &fsync_all)?;
    }
    settle(scratch);
    say(format!(
        "{} runs each: aos send (warm {}-event world), git commit, git commit with fsync, aos send ({}-event world), in-process send",
        plan.sends, plan.send_world_events, plan.events
    ));
    let (mut send_t, mut git_t, mut gitf_t, mut big_t) = (vec![], vec![], vec![], vec![]);
    // In-process sends: [small world, big world] x [open, inject, finish], and totals.
    let mut phases: [[Vec<Duration>; 3]; 2] = Default::default();
    let mut in_proc: [Vec<Duration>; 2] = Default::default();
    let mut compiled = 0;
    for i in 0..plan.sends {
        // The four processes take turns going first, so none always follows the others.
        for j in 0..4 {
            match (i + j) % 4 {
                0 => send_t.push(aos_send(&aos, &send_root)?),
                1 => git_t.push(git_commit(&repo_default, i, &[])?),
                2 => gitf_t.push(git_commit(&repo_fsync, i, &fsync_all)?),
                _ => big_t.push(aos_send(&aos, &root)?),
            }
        }
        for (w, world) in [&send_root, &root].into_iter().enumerate() {
            let (p, d) = timed(|| send_in_process(world));
            let (p, c) = p?;
            compiled += c;
            for (v, x) in phases[w].iter_mut().zip(p) {
                v.push(x);
            }
            in_proc[w].push(d);
        }
    }
    // Every open reads the whole snapshot index (one JSON line per snapshot).
    let index_read = |world: &Path| {
        let path = Layout::new(world).snapshots().join("index");
        let times: Vec<Duration> = (0..21)
            .map(|_| timed(|| black_box(read_snapshot_index(&path))).1)
            .collect();
        (read_snapshot_index(&path).len(), median(times))
    };
    let (small_snaps, small_index) = index_read(&send_root);
    let (big_snaps, big_index) = index_read(&root);
    let startup = (0..plan.sends)
        .map(|_| time_cmd(Command::new(&aos).arg("--version")))
        .collect::<Res<Vec<_>>>()?;
    let git_startup = (0..plan.sends)
        .map(|_| time_cmd(Command::new("git").arg("--version")))
        .collect::<Res<Vec<_>>>()?;
    let send_ms = median_ms(&send_t);
    let big_ms = median_ms(&big_t);
    let target = |x: f64| Target::new("<=5 ms", x <= 5.0);
    let case = format!(
        "`aos send` of one event, warm {}-event world (process)",
        k(plan.send_world_events)
    );
    sec.row(
        Row::cost(
            BENCH,
            case.clone(),
            "ms",
            send_ms,
            Some(("git commit -a", median_ms(&git_t))),
        )
        .target(target(send_ms)),
    );
    sec.row(Row::cost(
        BENCH,
        case,
        "ms",
        send_ms,
        Some(("git commit -a, core.fsync=all", median_ms(&gitf_t))),
    ));
    sec.row(
        Row::cost(
            BENCH,
            format!(
                "`aos send` of one event, warm {}-event world (process)",
                k(plan.events)
            ),
            "ms",
            big_ms,
            Some(("git commit -a", median_ms(&git_t))),
        )
        .target(target(big_ms)),
    );
    for (w, n) in [plan.send_world_events, plan.events]
        .into_iter()
        .enumerate()
    {
        sec.row(Row::cost(
            BENCH,
            format!(
                "in-process send (Session::open + inject + finish), {}-event world",
                k(n)
            ),
            "ms",
            median_ms(&in_proc[w]),
            Some(("git commit -a", median_ms(&git_t))),
        ));
    }
    let spread = |v: &[Duration]| {
        let mut v = v.to_vec();
        v.sort();
        format!(
            "min {:.2} / median {:.2} / max {:.2} ms",
            ms(v[0]),
            ms(median(v.clone())),
            ms(v[v.len() - 1])
        )
    };
    sec.note(format!(
        "aos send {}; git commit {}; git commit (fsync=all) {}; aos send to the {}-event world {}",
        spread(&send_t),
        spread(&git_t),
        spread(&gitf_t),
        k(plan.events),
        spread(&big_t)
    ));
    let phase = |w: usize| {
        format!(
            "open {:.2} ms, inject (step + one durable append) {:.2} ms, finish (state cache + sync) {:.2} ms",
            median_ms(&phases[w][0]),
            median_ms(&phases[w][1]),
            median_ms(&phases[w][2])
        )
    };
    sec.note(format!(
        "process start alone: `aos --version` {:.2} ms, `git --version` {:.2} ms; in-process send phases (median), {}-event world: {}; {}-event world: {}",
        median_ms(&startup),
        median_ms(&git_startup),
        k(plan.send_world_events),
        phase(0),
        k(plan.events),
        phase(1)
    ));
    sec.note(format!(
        "every open reads the snapshot index: {small_snaps} entries take {:.3} ms ({}-event world), {big_snaps} entries {:.3} ms ({}-event world)",
        ms(small_index),
        k(plan.send_world_events),
        ms(big_index),
        k(plan.events)
    ));
    sec.note(format!(
        "aos binary: {}; the in-process sends compiled the module {compiled} times (0: the world's compiled-module cache served every one)",
        aos.display()
    ));
    Ok(sec)
}
