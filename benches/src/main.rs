//! `aos-bench`: measures aos and a baseline in the same run and prints the ratio.
//!
//! ```text
//! aos-bench objects|journal|open|fsck|fork|air|kernel|effects|plans|why|governance|all [--quick] [--dir DIR] [--json] [--strict]
//! ```
//!
//! Each benchmark lives in its own module; fixtures (worlds with many records) are built
//! once per run in a scratch directory created inside `--dir` (default: the current
//! directory, so the numbers are for a real disk and not a tmpfs) and removed at exit.

mod air;
mod effects;
mod fixture;
mod fork;
mod fsck;
mod governance;
mod journal;
mod kernel;
mod mem;
mod objects;
mod open;
mod plans;
mod report;
mod util;
mod why;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use report::Section;
use serde_json::json;

#[global_allocator]
static ALLOC: mem::Counting = mem::Counting;

const USAGE: &str = "usage: aos-bench <objects|journal|open|fsck|fork|air|kernel|effects|plans|why|governance|all>... [--quick] [--dir DIR] [--json] [--strict]

  objects   write 1 KiB and 1 MiB files to the object store vs `git hash-object -w --stdin-paths`;
            hashing vs raw blake3 and b3sum
  journal   durable appends in batches of 1, 64, 512 vs SQLite (WAL)
  open      Journal::open of a 1M-record journal vs the minimal open and a full verification
  fsck      fsck of 250k- and 1M-record worlds: time and memory vs streaming blake3
  fork      fork of a world with 100k objects and 1M records vs cp -a
  air       load + validate + assemble of 1k- and 10k-def AIR sets vs serde_json and blake3;
            diff of two 10k-def sets; `aos air check` / `aos air diff` as processes
  kernel    replay of 1M counter events vs a bare wasmtime loop; replay memory at 250k
            and 1M; `aos send` of one event as a process vs `git commit`
  effects   timer effects/s through inject, gate, dispatch 8 at a time, sign, verify,
            journal and deliver vs bare loopback GETs; gate + sign + verify per
            http.request effect vs one bare loopback GET
  plans     steps/s of a 10-step plan without effects vs bare expression evaluation;
            the cost of an event with 10 and with 1,000 runs waiting on its schema
  why       `aos why` (process) on a 1M-record journal: cold index build, warm queries
            back and forward vs `tail -n 1` of the journal and `git log -1`
  governance `aos shadow ID --replay-all` (process) on a world with a 1,000-def manifest
            and 100k records vs `aos replay --from-genesis` and b3sum of the journal
  all       every benchmark above, in that order

  --quick   smaller sizes, fewer runs
  --dir DIR where to create the scratch directory (default: the current directory)
  --json    print one JSON document instead of tables (progress still goes to stderr)
  --strict  exit with status 1 when a target is missed";

const ALL: [&str; 11] = [
    "objects",
    "journal",
    "open",
    "fsck",
    "fork",
    "air",
    "kernel",
    "effects",
    "plans",
    "why",
    "governance",
];

struct Args {
    benches: Vec<String>,
    quick: bool,
    dir: Option<PathBuf>,
    json: bool,
    strict: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        benches: Vec::new(),
        quick: false,
        dir: None,
        json: false,
        strict: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--json" => args.json = true,
            "--strict" => args.strict = true,
            "--dir" => args.dir = Some(PathBuf::from(it.next().ok_or("--dir needs a directory")?)),
            "-h" | "--help" => return Err(String::new()),
            "all" => args.benches.extend(ALL.iter().map(|s| s.to_string())),
            b if ALL.contains(&b) => args.benches.push(b.to_string()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.benches.is_empty() {
        return Err("name a benchmark or `all`".into());
    }
    args.benches.dedup();
    Ok(args)
}

/// The file system type of `path`, from statfs's magic number.
fn fs_type(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: statfs writes into a zeroed struct we own; `c` is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return "unknown".into();
    }
    match st.f_type as u64 {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        other => format!("0x{other:x}"),
    }
}

/// The system temp directory when it is on the same file system as the current
/// directory (and not a tmpfs), else the current directory: the numbers are for the disk
/// the user is working on, and the repository is not littered.
fn default_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let cwd = PathBuf::from(".");
    let tmp = std::env::temp_dir();
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    if dev(&tmp).is_some() && dev(&tmp) == dev(&cwd) && fs_type(&tmp) != "tmpfs" {
        tmp
    } else {
        cwd
    }
}

fn machine(scratch: &Path) -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let create_us = util::create_probe(scratch, 300).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
    json!({
        "create_file_us": create_us,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "kernel": kernel,
        "scratch": scratch.display().to_string(),
        "fs": fs_type(scratch),
    })
}

fn run_one(
    name: &str,
    args: &Args,
    scratch: &Path,
    fx: &mut fixture::Fixtures,
) -> Result<Section, Box<dyn std::error::Error>> {
    match name {
        "objects" => objects::run_bench(scratch, args.quick),
        "journal" => journal::run_bench(scratch, args.quick),
        "open" => open::run_bench(fx),
        "fsck" => fsck::run_bench(fx),
        "fork" => fork::run_bench(fx),
        "air" => air::run_bench(scratch, args.quick),
        "kernel" => kernel::run_bench(scratch, args.quick),
        "effects" => effects::run_bench(scratch, args.quick),
        "plans" => plans::run_bench(scratch, args.quick),
        "why" => why::run_bench(scratch, args.quick),
        "governance" => governance::run_bench(scratch, args.quick),
        _ => unreachable!("checked by parse_args"),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("aos-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let dir = args.dir.clone().unwrap_or_else(default_dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("aos-bench: cannot create {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let tmp = match tempfile::Builder::new()
        .prefix("aos-bench-")
        .tempdir_in(&dir)
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "aos-bench: cannot create a scratch directory in {}: {e}",
                dir.display()
            );
            return ExitCode::from(2);
        }
    };
    let scratch = tmp
        .path()
        .canonicalize()
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    let info = machine(&scratch);
    eprintln!(
        "aos-bench: scratch {} on {} ({} cpus, {})",
        scratch.display(),
        info["fs"],
        info["cpus"],
        info["cpu"]
    );
    if info["create_file_us"].as_f64().is_some_and(|us| us > 100.0) {
        eprintln!(
            "aos-bench: warning: creating a file in {} costs {:.0} us right now (typically ~20 us); on ext4 without a journal this happens for a few minutes after many files were deleted nearby, and it slows every benchmark that creates files (objects, fork). Wait, or pass --dir elsewhere; see benches/README.md",
            scratch.display(),
            info["create_file_us"].as_f64().unwrap_or(0.0)
        );
    }
    if info["fs"] == "tmpfs" {
        eprintln!("aos-bench: warning: the scratch directory is on tmpfs; fsync costs nothing there, pass --dir on a real disk");
    }
    if !args.json {
        println!(
            "aos-bench{} on {} cpus ({}), kernel {}\nscratch {} on {}; creating an empty file there costs {:.0} us\nratio = aos advantage over the baseline (>1: aos better)\n",
            if args.quick { " --quick" } else { "" },
            info["cpus"],
            info["cpu"].as_str().unwrap_or("?"),
            info["kernel"].as_str().unwrap_or("?"),
            scratch.display(),
            info["fs"].as_str().unwrap_or("?"),
            info["create_file_us"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let mut fx = fixture::Fixtures::new(&scratch, args.quick);
    let mut sections = Vec::new();
    let mut failed = false;
    let started = Instant::now();
    for name in &args.benches {
        eprintln!("aos-bench: {name}");
        let t = Instant::now();
        let cpu = util::cpu_ticks();
        match run_one(name, &args, &scratch, &mut fx) {
            Ok(mut sec) => {
                let load = util::others_load(cpu, util::cpu_ticks(), t.elapsed());
                sec.seconds = t.elapsed().as_secs_f64();
                sec.others_load = load;
                sec.note(format!(
                    "took {:.1} s; other processes used {:.0}% of the machine's CPU meanwhile",
                    sec.seconds,
                    load * 100.0
                ));
                eprintln!(
                    "aos-bench: {name} done in {:.1} s",
                    t.elapsed().as_secs_f64()
                );
                if !args.json {
                    println!("{}", sec.render());
                }
                sections.push(sec);
            }
            Err(e) => {
                eprintln!("aos-bench: {name} failed: {e}");
                failed = true;
            }
        }
    }
    let misses: Vec<String> = sections
        .iter()
        .flat_map(|s| s.rows.iter())
        .filter(|r| r.target.as_ref().is_some_and(|t| !t.pass))
        .map(|r| format!("{} {} ({})", r.bench, r.case, r.unit))
        .collect();
    let total = started.elapsed().as_secs_f64();
    if args.json {
        let doc = json!({
            "quick": args.quick,
            "machine": info,
            "seconds": total,
            "benchmarks": sections.iter().map(Section::to_json).collect::<Vec<_>>(),
            "targets_missed": misses,
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        let targets = sections
            .iter()
            .flat_map(|s| s.rows.iter())
            .filter(|r| r.target.is_some())
            .count();
        println!(
            "{} of {targets} targets met in {total:.0} s",
            targets - misses.len()
        );
        for m in &misses {
            println!("  missed: {m}");
        }
    }
    // Remove the scratch tree now and sync: on ext4 without a journal, inodes freed in the
    // last minute (six while their inode table block is dirty) are skipped by the
    // allocator, which makes file creation in that area slow for a while (see README).
    eprintln!("aos-bench: removing {}", scratch.display());
    if let Err(e) = tmp.close() {
        eprintln!("aos-bench: could not remove the scratch directory: {e}");
    }
    util::settle(&dir);
    if failed || (args.strict && !misses.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
