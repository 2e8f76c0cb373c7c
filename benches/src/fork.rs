//! `fork`: forking a world of 100,000 small objects and 1,000,000 records.
//!
//! aos: `aos_store::fork::fork` in alternates mode (objects shared through the
//! `alternates` list) and with `link_objects: true` (every object hard-linked). Each run
//! checks that no object was copied: in alternates mode the fork's fan-out directories
//! are empty; in link mode every object has the source's inode. Baseline: `cp -a` of the
//! source `.aos` directory (not durable; `cp -a` followed by a syncfs is shown too).

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aos_store::fork::{fork, ForkOptions};
use aos_store::hash::Hash;
use aos_store::objects::ObjectStore;
use aos_store::world::Layout;
use serde_json::json;

use crate::fixture::{dummy_public_key, Fixtures};
use crate::report::{Row, Section, Target};
use crate::util::{median, ms, run, say, settle, timed};

/// One fork: its time, objects linked, and the time of each phase as seen through the
/// progress callback.
struct Run {
    time: Duration,
    linked: u64,
    phases: Vec<(&'static str, Duration)>,
}

fn fork_once(src: &Path, dst: &Path, link_objects: bool) -> aos_store::Result<Run> {
    let key = dummy_public_key();
    let events: RefCell<Vec<(String, u64, u64, Instant)>> = RefCell::new(Vec::new());
    let record = |phase: &str, done: u64, total: u64| {
        events
            .borrow_mut()
            .push((phase.to_string(), done, total, Instant::now()));
    };
    let opts = ForkOptions {
        at: None,
        link_objects,
        public_key: key,
        secret_key_file: b"test",
        origin: json!({"who": "aos-bench", "via": "aos-bench fork"}),
        progress: &record,
    };
    let start = Instant::now();
    let forked = fork(src, dst, opts)?;
    let end = Instant::now();
    let events = events.into_inner();
    let first = |phase: &str| events.iter().find(|e| e.0 == phase).map(|e| e.3);
    let last = |phase: &str| {
        events
            .iter()
            .rev()
            .find(|e| e.0 == phase && e.1 == e.2)
            .map(|e| e.3)
    };
    let mut phases = Vec::new();
    let mut at = start;
    let mut step = |name: &'static str, t: Option<Instant>| {
        if let Some(t) = t {
            phases.push((name, t.saturating_duration_since(at)));
            at = t;
        }
    };
    if link_objects {
        step(
            "open source, create store, list objects",
            first("link objects"),
        );
        step("hard-link objects", last("link objects"));
        step("ledger, syncfs, key, config", first("copy journal"));
    } else {
        step(
            "open source, create store, key, config",
            first("copy journal"),
        );
    }
    step("copy journal + index, fdatasync", last("copy journal"));
    step(
        "open fork, append forked_from, sync, rename, reopen",
        Some(end),
    );
    Ok(Run {
        time: end - start,
        linked: forked.objects_linked,
        phases,
    })
}

fn show_phases(runs: &[Run]) -> String {
    // The phases of the median run.
    let mut sorted: Vec<&Run> = runs.iter().collect();
    sorted.sort_by_key(|r| r.time);
    let mid = sorted[sorted.len() / 2];
    mid.phases
        .iter()
        .map(|(n, d)| format!("{n} {:.0} ms", ms(*d)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Files inside the 256 fan-out directories of an object directory.
fn fanout_files(objects: &Path) -> usize {
    (0..=255u8)
        .map(|i| fs::read_dir(objects.join(format!("{i:02x}"))).map_or(0, |d| d.count()))
        .sum()
}

/// How many source objects share their inode with the fork's copy.
fn same_inodes(src_files: &[(PathBuf, Hash)], dst_objects: &Path) -> usize {
    src_files
        .iter()
        .filter(|(p, h)| {
            let a = fs::metadata(p).map(|m| (m.dev(), m.ino()));
            let b = fs::metadata(ObjectStore::path_in(dst_objects, h)).map(|m| (m.dev(), m.ino()));
            matches!((a, b), (Ok(a), Ok(b)) if a == b)
        })
        .count()
}

pub fn run_bench(fx: &mut Fixtures) -> Result<Section, Box<dyn std::error::Error>> {
    let mut sec = Section::new("fork");
    let src = fx.big_with_objects()?;
    let dir = fx.scratch.join("fork");
    fs::create_dir_all(&dir)?;
    let src_layout = Layout::new(&src);
    let src_files: Vec<(PathBuf, Hash)> = ObjectStore::list_files(&src_layout.objects())?
        .into_iter()
        .filter_map(|(p, h)| h.map(|h| (p, h)))
        .collect();
    assert_eq!(src_files.len(), fx.fork_objects(), "source object count");
    let records = fx.big_records();
    let (reps_alt, reps_link, reps_cp) = if fx.quick { (1, 1, 1) } else { (3, 2, 2) };

    // Where the forks' time goes, measured next to them (before cp -a fills the disk's
    // write cache): copying the journal, creating the empty store, listing the objects.
    let jpath = src_layout.journal();
    let mut copies = Vec::new();
    for i in 0..reps_alt {
        let copy = dir.join(format!("journal-copy-{i}"));
        settle(&dir);
        let (r, d) = timed(|| -> std::io::Result<()> {
            fs::copy(&jpath, &copy)?;
            fs::File::open(&copy)?.sync_data()
        });
        r?;
        copies.push(d);
    }
    let copy_t = median(copies);
    settle(&dir);
    let (r, mkdirs) = timed(|| ObjectStore::create(&dir.join("empty-store"), &[]));
    r?;
    let (r, list_t) = timed(|| ObjectStore::list_files(&src_layout.objects()));
    r?;

    say(format!("fork, alternates mode ({reps_alt} runs)"));
    let mut alt = Vec::new();
    let mut alt_runs = Vec::new();
    for i in 0..reps_alt {
        let dst = dir.join(format!("alt-{i}"));
        settle(&dir);
        let run = fork_once(&src, &dst, false)?;
        let (d, linked) = (run.time, run.linked);
        alt_runs.push(run);
        assert_eq!(linked, 0);
        let copied = fanout_files(&Layout::new(&dst).objects());
        let j =
            aos_store::journal::Journal::open(&Layout::new(&dst).journal(), &Default::default())?;
        assert_eq!(j.len(), records + 1, "fork journal = source + forked_from");
        if i == 0 {
            sec.note(format!("alternates fork: {copied} object files in the fork's fan-out directories (expected 0)"));
        }
        assert_eq!(copied, 0, "alternates fork copied objects");
        alt.push(d);
    }

    say(format!("fork, link_objects ({reps_link} runs)"));
    let mut link = Vec::new();
    let mut link_runs = Vec::new();
    for i in 0..reps_link {
        let dst = dir.join(format!("link-{i}"));
        settle(&dir);
        let run = fork_once(&src, &dst, true)?;
        let (d, linked) = (run.time, run.linked);
        link_runs.push(run);
        let same = same_inodes(&src_files, &Layout::new(&dst).objects());
        if i == 0 {
            sec.note(format!(
                "link fork: {linked} objects linked; {same} of {} share the source's inode",
                src_files.len()
            ));
        }
        assert_eq!(same, src_files.len(), "link fork copied objects");
        link.push(d);
    }

    say(format!("cp -a of the source .aos ({reps_cp} runs)"));
    let mut cp = Vec::new();
    let mut cp_sync = Vec::new();
    for i in 0..reps_cp {
        let dst = dir.join(format!("cp-{i}"));
        fs::create_dir_all(&dst)?;
        settle(&dir);
        let (r, d) = timed(|| {
            run(Command::new("cp")
                .arg("-a")
                .arg(&src_layout.aos)
                .arg(dst.join(".aos")))
        });
        r?;
        let ((), s) = timed(|| settle(&dst));
        cp.push(d);
        cp_sync.push(d + s);
    }

    let (alt, link, cp, cp_sync) = (median(alt), median(link), median(cp), median(cp_sync));
    let target = |d: Duration| Target::new("<1000 ms", ms(d) < 1000.0);
    sec.row(
        Row::cost("fork", "alternates", "ms", ms(alt), Some(("cp -a", ms(cp)))).target(target(alt)),
    );
    sec.row(
        Row::cost(
            "fork",
            "link_objects",
            "ms",
            ms(link),
            Some(("cp -a", ms(cp))),
        )
        .target(target(link)),
    );
    sec.row(Row::cost(
        "fork",
        "alternates",
        "ms",
        ms(alt),
        Some(("cp -a + syncfs", ms(cp_sync))),
    ));
    sec.row(Row::cost(
        "fork",
        "link_objects",
        "ms",
        ms(link),
        Some(("cp -a + syncfs", ms(cp_sync))),
    ));
    sec.note(format!(
        "copying the {:.0} MB journal with std::fs::copy + fdatasync alone takes {:.0} ms (without reflinks the bytes are really copied and written back)",
        fs::metadata(&jpath)?.len() as f64 / 1e6,
        ms(copy_t)
    ));
    sec.note(format!(
        "creating the fork's empty object store (256 fan-out directories, tmp, ledger) takes {:.0} ms here",
        ms(mkdirs)
    ));
    sec.note(format!(
        "alternates fork, phases: {}",
        show_phases(&alt_runs)
    ));
    sec.note(format!("link fork, phases: {}", show_phases(&link_runs)));
    let n = src_files.len() as f64;
    sec.note(format!(
        "link mode: listing the {n} source objects alone (ObjectStore::list_files, sorted paths) takes {:.0} ms",
        ms(list_t),
    ));
    if let Some((n, d)) = fx.objects_batch {
        sec.note(format!(
            "building the source: {n} small objects in one batch took {:.0} ms ({:.0} objects/s)",
            ms(d),
            n as f64 / d.as_secs_f64()
        ));
    }
    Ok(sec)
}
