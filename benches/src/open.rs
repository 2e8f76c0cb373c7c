//! `open`: opening a 1,000,000-record journal with its index.
//!
//! aos: `Journal::open`, read-only and writable, median of several runs, plus the peak
//! heap and RSS growth of one open (also on a journal a quarter the length). Baselines: the minimal possible open (open the file, stat it,
//! read its last 4 KiB) and a full streaming verification (the same open with the index
//! moved away), which is what the index saves. A cold-cache open (journal and index
//! evicted with `posix_fadvise(DONTNEED)`) is shown for information.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use aos_store::journal::{index_path, Journal, Options};
use aos_store::world::Layout;

use crate::fixture::Fixtures;
use crate::mem::{measure, Mem};
use crate::report::{Row, Section, Target};
use crate::util::{evict, median, mib, ms, say, settle, timed};

/// Open, stat, read the last 4 KiB: the least any open that checks the tail can do.
fn minimal_open(path: &Path) -> std::io::Result<u64> {
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut buf = vec![0u8; 4096.min(len as usize)];
    let at = len - buf.len() as u64;
    f.read_exact_at(&mut buf, at)?;
    Ok(len)
}

fn open(path: &Path, writable: bool) -> aos_store::Result<Journal> {
    Journal::open(
        path,
        &Options {
            writable,
            ..Options::default()
        },
    )
}

/// Median time of `runs` calls, each preceded by `before` (untimed).
fn median_of<T>(runs: usize, mut before: impl FnMut(), mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                before();
                let (r, d) = timed(&mut f);
                drop(r);
                d
            })
            .collect(),
    )
}

pub fn run_bench(fx: &mut Fixtures) -> Result<Section, Box<dyn std::error::Error>> {
    let mut sec = Section::new("open");
    let root = fx.big()?;
    let jpath = Layout::new(&root).journal();
    let ipath = index_path(&jpath);
    let expect = fx.big_records();
    settle(&root);
    let runs = if fx.quick { 5 } else { 11 };
    say(format!(
        "Journal::open on {expect} records, {runs} runs each"
    ));
    // Warm up and check the fixture.
    assert_eq!(open(&jpath, false)?.len(), expect);
    assert_eq!(open(&jpath, true)?.len(), expect);

    let ro = median_of(runs, || {}, || open(&jpath, false).expect("open read-only"));
    let rw = median_of(runs, || {}, || open(&jpath, true).expect("open writable"));
    let minimal = median_of(runs, || {}, || minimal_open(&jpath).expect("minimal open"));
    let ((), ro_mem) = measure(|| drop(open(&jpath, false).expect("open")));
    let ((), rw_mem) = measure(|| drop(open(&jpath, true).expect("open")));
    // The same open on a journal a quarter the length: memory must not depend on it.
    let small_journal = Layout::new(&fx.small()?).journal();
    let ((), small_mem) = measure(|| drop(open(&small_journal, false).expect("open")));

    let cold_runs = if fx.quick { 3 } else { 5 };
    let evict_both = || {
        evict(&jpath);
        evict(&ipath);
    };
    let ro_cold = median_of(cold_runs, evict_both, || {
        open(&jpath, false).expect("open read-only")
    });
    let minimal_cold = median_of(cold_runs, evict_both, || {
        minimal_open(&jpath).expect("minimal open")
    });

    say("full verification: read-only open with the index moved away");
    let saved = ipath.with_extension("idx.saved");
    std::fs::rename(&ipath, &saved)?;
    let verify_runs = if fx.quick { 1 } else { 2 };
    let mut verify_times = Vec::new();
    let mut verify_mem = Mem::default();
    let result = (|| -> aos_store::Result<()> {
        for _ in 0..verify_runs {
            let ((j, d), m) = measure(|| timed(|| open(&jpath, false)));
            assert_eq!(j?.len(), expect);
            verify_times.push(d);
            verify_mem = m;
        }
        Ok(())
    })();
    std::fs::rename(&saved, &ipath)?;
    result?;
    let verify = median(verify_times);
    let after = median_of(3, || {}, || open(&jpath, false).expect("open"));
    if after > ro * 10 {
        sec.note(format!(
            "the restored index was not trusted: open took {:.1} ms afterwards",
            ms(after)
        ));
    }

    let target = |d: Duration| Target::new("<100 ms", ms(d) < 100.0);
    let base = "stat+read last 4KiB";
    sec.row(
        Row::cost(
            "open",
            "read-only, indexed",
            "ms",
            ms(ro),
            Some((base, ms(minimal))),
        )
        .target(target(ro)),
    );
    sec.row(
        Row::cost(
            "open",
            "writable, indexed",
            "ms",
            ms(rw),
            Some((base, ms(minimal))),
        )
        .target(target(rw)),
    );
    sec.row(
        Row::cost(
            "open",
            "read-only, cold cache",
            "ms",
            ms(ro_cold),
            Some((base, ms(minimal_cold))),
        )
        .target(target(ro_cold)),
    );
    sec.row(Row::cost(
        "open",
        "read-only, indexed",
        "ms",
        ms(ro),
        Some(("full verify (no index)", ms(verify))),
    ));
    let limit = 1.0;
    let small_n = fx.small_records() / 1000;
    let big_n = expect / 1000;
    sec.row(
        Row::cost(
            "open",
            format!("read-only peak heap, {big_n}k"),
            "MiB",
            mib(ro_mem.heap_peak),
            Some(("full verify (no index)", mib(verify_mem.heap_peak))),
        )
        .target(Target::new(
            format!("<{limit} MiB"),
            mib(ro_mem.heap_peak) < limit,
        )),
    );
    sec.row(
        Row::cost(
            "open",
            format!("read-only peak heap, {big_n}k"),
            "MiB",
            mib(ro_mem.heap_peak),
            Some((&format!("same at {small_n}k"), mib(small_mem.heap_peak))),
        )
        .target(Target::new(
            "constant (+<=64 KiB)",
            ro_mem.heap_peak <= small_mem.heap_peak + (64 << 10),
        )),
    );
    sec.row(
        Row::cost(
            "open",
            format!("writable peak heap, {big_n}k"),
            "MiB",
            mib(rw_mem.heap_peak),
            None,
        )
        .target(Target::new(
            format!("<{limit} MiB"),
            mib(rw_mem.heap_peak) < limit,
        )),
    );
    sec.note(format!(
        "peak RSS growth: read-only open {:.2} MiB, writable open {:.2} MiB, full verification {:.2} MiB (RSS {:.1} MiB before it)",
        mib(ro_mem.rss_peak),
        mib(rw_mem.rss_peak),
        mib(verify_mem.rss_peak),
        mib(verify_mem.rss_before)
    ));
    let jbytes = std::fs::metadata(&jpath)?.len();
    sec.note(format!(
        "journal {:.1} MB, index {:.1} MB; a full verification reads and checks every line ({:.0} MB/s, {:.2} us/record) and keeps one u64 offset per record in memory",
        jbytes as f64 / 1e6,
        std::fs::metadata(&ipath)?.len() as f64 / 1e6,
        jbytes as f64 / 1e6 / verify.as_secs_f64(),
        verify.as_secs_f64() * 1e6 / expect as f64
    ));
    Ok(sec)
}
