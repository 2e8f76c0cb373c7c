//! `journal`: durable appends of ~200-byte records in batches of 1, 64 and 512,
//! against SQLite.
//!
//! aos: `Journal::append` (one write and one fdatasync per batch) on a fresh journal.
//! Baseline: SQLite in WAL mode with `synchronous=NORMAL`, a table
//! `(seq INTEGER PRIMARY KEY, line BLOB)`, inserting the very lines aos wrote, one
//! transaction per batch. Note that WAL + NORMAL does not sync on commit (only at
//! checkpoints), so it is not durable per batch; SQLite with `synchronous=FULL` (which
//! is) is shown alongside for an equal-durability comparison.

use std::fs::{self, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use aos_store::hash::Hash;
use aos_store::journal::record::RecordRef;
use aos_store::journal::SyncMode;
use aos_store::journal::{Journal, NewRecord};
use rusqlite::Connection;

use crate::fixture::{pad, record, LINE};
use crate::report::{Row, Section, Target};
use crate::util::{median, per_s, remove_tree, say, settle, timed};

/// One batch size and how many records to append with it.
struct Case {
    batch: usize,
    records: usize,
    reps: usize,
}

fn cases(quick: bool) -> Vec<Case> {
    if quick {
        vec![
            Case {
                batch: 1,
                records: 200,
                reps: 1,
            },
            Case {
                batch: 64,
                records: 64 * 50,
                reps: 1,
            },
            Case {
                batch: 512,
                records: 512 * 40,
                reps: 1,
            },
        ]
    } else {
        vec![
            Case {
                batch: 1,
                records: 2_000,
                reps: 1,
            },
            Case {
                batch: 64,
                records: 64 * 500,
                reps: 3,
            },
            Case {
                batch: 512,
                records: 512 * 400,
                reps: 3,
            },
        ]
    }
}

/// Append `records` to a fresh journal at `path` in groups of `batch`; returns the time.
/// With `SyncMode::OnClose` the time includes the closing sync.
fn aos_append(
    path: &Path,
    records: &[NewRecord],
    batch: usize,
    sync: SyncMode,
) -> aos_store::Result<Duration> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(aos_store::journal::index_path(path));
    let mut j = Journal::create(path)?;
    j.set_sync_mode(sync);
    settle(path);
    let (r, d) = timed(|| -> aos_store::Result<()> {
        for chunk in records.chunks(batch) {
            j.append(chunk)?;
        }
        j.sync()
    });
    r?;
    assert_eq!(j.len(), records.len() as u64);
    Ok(d)
}

/// The lines of a journal file, without newlines.
fn lines_of(path: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let bytes = fs::read(path)?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// Insert `lines` into a fresh SQLite database, one transaction per `batch`.
fn sqlite_insert(
    path: &Path,
    lines: &[Vec<u8>],
    batch: usize,
    synchronous: &str,
) -> rusqlite::Result<Duration> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = fs::remove_file(p);
    }
    let mut conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    assert_eq!(mode.to_lowercase(), "wal");
    conn.execute_batch(&format!("PRAGMA synchronous={synchronous}; CREATE TABLE journal (seq INTEGER PRIMARY KEY, line BLOB NOT NULL);"))?;
    settle(path);
    let (r, d) = timed(|| -> rusqlite::Result<()> {
        let mut seq = 0i64;
        for chunk in lines.chunks(batch) {
            let tx = conn.transaction()?;
            {
                let mut stmt =
                    tx.prepare_cached("INSERT INTO journal (seq, line) VALUES (?1, ?2)")?;
                for line in chunk {
                    stmt.execute(rusqlite::params![seq, line])?;
                    seq += 1;
                }
            }
            tx.commit()?;
        }
        Ok(())
    });
    r?;
    let n: i64 = conn.query_row("SELECT count(*) FROM journal", [], |r| r.get(0))?;
    assert_eq!(n as usize, lines.len());
    Ok(d)
}

/// Average cost of writing `size` bytes and fdatasync, `n` times in a row: appended at
/// the end of a growing file (what the journal does), or overwriting blocks that were
/// written and synced before (what a preallocated log or SQLite's reused WAL does).
fn sync_cost(dir: &Path, size: usize, n: usize, extend: bool) -> std::io::Result<Duration> {
    let p = dir.join(format!("sync-probe-{size}-{extend}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&p)?;
    let block = vec![b'x'; size];
    if !extend {
        for _ in 0..n {
            f.write_all(&block)?;
        }
        f.sync_all()?;
    }
    settle(dir);
    let (r, d) = timed(|| -> std::io::Result<()> {
        for i in 0..n {
            if extend {
                f.write_all(&block)?;
            } else {
                f.write_all_at(&block, (i * size) as u64)?;
            }
            f.sync_data()?;
        }
        Ok(())
    });
    r?;
    let _ = fs::remove_file(&p);
    Ok(d / n as u32)
}

/// The CPU part of an append: building each record's canonical line and hashing it.
fn cpu_per_record(records: &[NewRecord]) -> Duration {
    let (_, d) = timed(|| {
        let mut prev = None;
        for (seq, r) in records.iter().enumerate() {
            // The same borrowed view `Journal::append` serializes.
            let rec = RecordRef {
                seq: seq as u64,
                prev,
                at_ns: r.at_ns,
                kind: &r.kind,
                cause: &r.cause,
                body: &r.body,
            };
            let line = aos_store::journal::record::encode_line(&rec).expect("canonical");
            prev = Some(black_box(Hash::of(&line)));
        }
    });
    d / records.len() as u32
}

pub fn run_bench(scratch: &Path, quick: bool) -> Result<Section, Box<dyn std::error::Error>> {
    let mut sec = Section::new("journal");
    let dir = scratch.join("journal");
    fs::create_dir_all(&dir)?;
    let pad = pad();
    let jpath = dir.join("journal");
    for case in cases(quick) {
        let records: Vec<NewRecord> = (0..case.records as u64).map(|i| record(i, &pad)).collect();
        say(format!(
            "batch {}: {} records x {} runs (aos, sqlite NORMAL, sqlite FULL)",
            case.batch, case.records, case.reps
        ));
        let mut aos = Vec::new();
        let mut aos_os = Vec::new();
        let mut normal = Vec::new();
        let mut full = Vec::new();
        let mut line_bytes = 0;
        for _ in 0..case.reps {
            aos_os.push(aos_append(&jpath, &records, case.batch, SyncMode::OnClose)?);
            aos.push(aos_append(
                &jpath,
                &records,
                case.batch,
                SyncMode::EveryAppend,
            )?);
            let lines = lines_of(&jpath)?;
            line_bytes = lines.iter().map(|l| l.len() + 1).sum::<usize>();
            normal.push(sqlite_insert(
                &dir.join("bench.sqlite"),
                &lines,
                case.batch,
                "NORMAL",
            )?);
            full.push(sqlite_insert(
                &dir.join("bench.sqlite"),
                &lines,
                case.batch,
                "FULL",
            )?);
        }
        let n = case.records as u64;
        let (aos, aos_os, normal, full) = (
            per_s(n, median(aos)),
            per_s(n, median(aos_os)),
            per_s(n, median(normal)),
            per_s(n, median(full)),
        );
        let case_name = format!("batch {:>3}", case.batch);
        // Like for like: sqlite NORMAL acknowledges before any fsync, as aos's on_close
        // mode does; sqlite FULL fsyncs each commit, as aos's default does.
        sec.row(
            Row::rate(
                "journal on_close",
                case_name.clone(),
                "rec/s",
                aos_os,
                Some(("sqlite WAL NORMAL", normal)),
            )
            .target(Target::new(">=1x sqlite NORMAL", aos_os >= normal)),
        );
        let (target, pass) = if case.batch == 512 {
            (">=50,000/s durable", aos >= 50_000.0)
        } else {
            ("info", true)
        };
        let row = Row::rate(
            "journal every_append",
            case_name,
            "rec/s",
            aos,
            Some(("sqlite WAL FULL", full)),
        );
        sec.row(if case.batch == 512 {
            row.target(Target::new(target, pass))
        } else {
            row
        });
        if case.batch == 512 {
            sec.note(format!(
                "average line {:.0} bytes including the newline",
                line_bytes as f64 / n as f64
            ));
        }
    }
    let probes = if quick { 50 } else { 300 };
    let lat = sync_cost(&dir, LINE, probes, true)?;
    let lat_in_place = sync_cost(&dir, LINE, probes, false)?;
    let big = 512 * LINE;
    let lat_big = sync_cost(&dir, big, probes / 5, true)?;
    let lat_big_in_place = sync_cost(&dir, big, probes / 5, false)?;
    let sample: Vec<NewRecord> = (0..20_000u64).map(|i| record(i, &pad)).collect();
    let cpu = cpu_per_record(&sample);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    sec.note(format!(
        "write + fdatasync on this disk: {LINE} B appended {:.0} us, overwritten in place {:.0} us; {} KiB appended {:.0} us, in place {:.0} us. Batch 1 cannot exceed ~{:.0} records/s durably with appends",
        us(lat),
        us(lat_in_place),
        big / 1024,
        us(lat_big),
        us(lat_big_in_place),
        1.0 / lat.as_secs_f64()
    ));
    sec.note(format!(
        "CPU per record (canonical JSON line + blake3, no I/O): {:.2} us, i.e. {:.1} ms of each 512-record batch; at most ~{:.0} records/s before any sync",
        us(cpu),
        us(cpu) * 512.0 / 1e3,
        1.0 / cpu.as_secs_f64()
    ));
    sec.note("sqlite WAL + synchronous=NORMAL does not fsync on commit (only at checkpoints), so it acknowledges batches that a power loss can still take away; so does aos with journal_sync=on_close (its time includes the closing sync). aos's default (every_append) and sqlite FULL fsync every batch");
    remove_tree(&dir);
    Ok(sec)
}
