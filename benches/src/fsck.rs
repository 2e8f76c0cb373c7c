//! `fsck`: `aos_store::fsck::fsck` on worlds of 250k and 1M records.
//!
//! Reports the time and the peak heap and RSS growth of each run: the journal is verified in a
//! streaming pass, so memory must not grow with its length. Baseline: hashing the
//! journal file with blake3 in-process (streaming, 1 MiB reads) and with `b3sum` when
//! installed. A breakdown (the bare `journal::scan` pass, and splitting + hashing lines
//! without JSON checks) shows where the time goes.

use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aos_store::fsck::{fsck, Finding, Severity};
use aos_store::hash::Hash;
use aos_store::journal::scan::{scan, Cursor};
use aos_store::world::Layout;

use crate::fixture::Fixtures;
use crate::mem::{measure, Mem};
use crate::report::{Row, Section, Target};
use crate::util::{have, mib, ms, run, say, settle, timed};

/// One fsck run: time, memory and error findings.
struct FsckRun {
    time: Duration,
    mem: Mem,
    records: u64,
    errors: Vec<Finding>,
}

fn run_fsck(root: &Path) -> FsckRun {
    settle(root);
    let mut errors = Vec::new();
    let ((summary, time), mem) = measure(|| {
        timed(|| {
            fsck(root, &|_, _, _| {}, &mut |f| {
                if f.severity == Severity::Error {
                    errors.push(f)
                }
            })
        })
    });
    FsckRun {
        time,
        mem,
        records: summary.records,
        errors,
    }
}

/// Stream the file through blake3 in 1 MiB reads.
fn blake3_file(path: &Path) -> std::io::Result<blake3::Hash> {
    let mut f = File::open(path)?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize());
        }
        h.update(&buf[..n]);
    }
}

/// The journal's `scan` alone (what fsck and a full open do per line), no visitor work.
fn scan_only(path: &Path) -> std::io::Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut n = 0u64;
    scan(
        &mut reader,
        Cursor {
            seq: 0,
            prev: None,
            offset: 0,
        },
        |_| {
            n += 1;
            ControlFlow::Continue(())
        },
    )?;
    Ok(n)
}

/// Split into lines and hash each one: the chain's hashing without JSON checks.
fn split_and_hash(path: &Path) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    let mut n = 0u64;
    loop {
        let r = f.read(&mut buf)?;
        if r == 0 {
            return Ok(n);
        }
        carry.extend_from_slice(&buf[..r]);
        let mut start = 0;
        while let Some(i) = carry[start..].iter().position(|&b| b == b'\n') {
            black_box(Hash::of(&carry[start..start + i]));
            n += 1;
            start += i + 1;
        }
        carry.drain(..start);
    }
}

/// One 8-byte pread per index entry, as fsck's index comparison does.
fn index_preads(index: &Path, count: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = File::open(index)?;
    let mut b = [0u8; 8];
    for seq in 0..count {
        f.read_exact_at(&mut b, aos_store::journal::index::HEADER + seq * 8)?;
        black_box(&b);
    }
    Ok(())
}

pub fn run_bench(fx: &mut Fixtures) -> Result<Section, Box<dyn std::error::Error>> {
    let mut sec = Section::new("fsck");
    let small = fx.small()?;
    let big = fx.big()?;
    let mut results = Vec::new();
    for (root, records) in [(&small, fx.small_records()), (&big, fx.big_records())] {
        say(format!("fsck of a {records}-record world"));
        let r = run_fsck(root);
        assert_eq!(r.records, records, "fsck counted every record");
        if !r.errors.is_empty() {
            sec.note(format!(
                "fsck reported errors on a healthy world: {:?}",
                r.errors
            ));
        }
        results.push((records, r));
    }
    let jpath = Layout::new(&big).journal();
    let jbytes = std::fs::metadata(&jpath)?.len();
    settle(&big);
    let (h, b3) = timed(|| blake3_file(&jpath));
    black_box(h?);
    let b3sum = if have("b3sum") {
        let (r, d) = timed(|| run(Command::new("b3sum").arg(&jpath)));
        r?;
        Some(d)
    } else {
        None
    };
    let (n, scan_t) = timed(|| scan_only(&jpath));
    assert_eq!(n?, fx.big_records());
    let (n, split_t) = timed(|| split_and_hash(&jpath));
    assert_eq!(n?, fx.big_records());
    let (r, pread_t) =
        timed(|| index_preads(&aos_store::journal::index_path(&jpath), fx.big_records()));
    r?;

    for (records, r) in &results {
        let case = format!("{}k records", records / 1000);
        sec.row(Row::cost(
            "fsck",
            case.clone(),
            "ms",
            ms(r.time),
            Some(("blake3 stream of journal", ms(b3))).filter(|_| *records == fx.big_records()),
        ));
        sec.note(format!(
            "{case}: {:.0} ms, {:.2} us/record; peak heap growth {:.3} MiB; RSS {:.1} MiB before, {:.1} MiB after, peak RSS growth {:.2} MiB",
            ms(r.time),
            r.time.as_secs_f64() * 1e6 / *records as f64,
            mib(r.mem.heap_peak),
            mib(r.mem.rss_before),
            mib(r.mem.rss_after),
            mib(r.mem.rss_peak)
        ));
    }
    if let Some(d) = b3sum {
        sec.row(Row::cost(
            "fsck",
            format!("{}k records", fx.big_records() / 1000),
            "ms",
            ms(results[1].1.time),
            Some(("b3sum of journal", ms(d))),
        ));
    }
    let (g_small, g_big) = (results[0].1.mem.heap_peak, results[1].1.mem.heap_peak);
    // Constant memory: four times the records may not cost more than 1 MiB extra.
    let pass = g_big <= g_small + (1 << 20);
    sec.row(
        Row::cost(
            "fsck",
            format!(
                "peak heap growth {}k vs {}k",
                fx.big_records() / 1000,
                fx.small_records() / 1000
            ),
            "MiB",
            mib(g_big),
            Some(("growth at 1/4 size", mib(g_small))),
        )
        .target(Target::new("constant (+<=1 MiB)", pass)),
    );
    sec.note(format!(
        "where fsck's time goes ({:.0} MB journal): bare journal::scan {:.0} ms (JSON parse, canonical re-serialization, record decode, hash per line); split + blake3 per line only {:.0} ms; streaming blake3 of the file {:.0} ms",
        jbytes as f64 / 1e6,
        ms(scan_t),
        ms(split_t),
        ms(b3)
    ));
    sec.note(format!(
        "fsck also compares each record with its index entry through one 8-byte pread per record: {} preads alone take {:.0} ms",
        fx.big_records(),
        ms(pread_t)
    ));
    Ok(sec)
}
