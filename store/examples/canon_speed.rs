//! CPU cost per journal record of the canonical JSON paths, old and new:
//! building a line (`canon::to_vec` through json-canon vs `record::encode_line`) and
//! checking one (`check_line` vs the parse / re-serialize / decode it replaced).
//!
//! `cargo run --release -p aos-store --example canon_speed [records] [check]`
//! (`check`: run only the new `check_line`, for a profiler)

use std::hint::black_box;
use std::time::{Duration, Instant};

use aos_store::canon;
use aos_store::hash::Hash;
use aos_store::journal::record::{check_line, encode_line, Record, RecordRef};
use serde_json::{json, Value};

/// What `check_line` did before: parse, re-serialize with json-canon, compare, decode.
fn old_check_line(line: &[u8], seq: u64, prev: Option<Hash>) -> Result<Record, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not valid JSON ({e})"))?;
    match canon::to_vec(&value) {
        Ok(c) if c == line => {}
        Ok(_) => return Err("not canonical".into()),
        Err(e) => return Err(e.to_string()),
    }
    let rec: Record =
        serde_json::from_value(value).map_err(|e| format!("not a journal record ({e})"))?;
    if rec.seq != seq || rec.prev != prev || rec.kind.is_empty() {
        return Err("position".into());
    }
    Ok(rec)
}

fn per(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e9 / n as f64
}

fn best(reps: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..reps).map(|_| f()).min().unwrap()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    // The benchmark's records: {"i":n,"pad":"xx…"}, 199 bytes with the newline.
    let pad = "x".repeat(20);
    let at = 1_764_000_000_000_000_000u64;
    let bodies: Vec<Value> = (0..n as u64).map(|i| json!({"i": i, "pad": pad})).collect();
    let view = |seq: usize, prev| RecordRef {
        seq: seq as u64,
        prev,
        at_ns: at + seq as u64,
        kind: "bench",
        cause: &[],
        body: &bodies[seq],
    };

    let mut lines = Vec::with_capacity(n);
    let mut prevs = Vec::with_capacity(n);
    let mut prev = None;
    for seq in 0..n {
        let line = encode_line(&view(seq, prev)).unwrap();
        assert_eq!(line, canon::to_vec(&view(seq, prev)).unwrap());
        prevs.push(prev);
        prev = Some(Hash::of(&line));
        lines.push(line);
    }
    println!(
        "{n} records, {} bytes per line with the newline",
        lines.iter().map(|l| l.len() + 1).sum::<usize>() / n
    );

    if std::env::args().nth(2).as_deref() == Some("check") {
        // Only the new check_line, for a profiler.
        for _ in 0..20 {
            for (seq, l) in lines.iter().enumerate() {
                black_box(check_line(l, seq as u64, prevs[seq]).unwrap());
            }
        }
        return;
    }
    let reps = 5;
    let old_enc = best(reps, || {
        let t = Instant::now();
        for (seq, &prev) in prevs.iter().enumerate() {
            black_box(canon::to_vec(&view(seq, prev)).unwrap());
        }
        t.elapsed()
    });
    let new_enc = best(reps, || {
        let t = Instant::now();
        for (seq, &prev) in prevs.iter().enumerate() {
            black_box(encode_line(&view(seq, prev)).unwrap());
        }
        t.elapsed()
    });
    let hash = best(reps, || {
        let t = Instant::now();
        for l in &lines {
            black_box(Hash::of(l));
        }
        t.elapsed()
    });
    let old_val = best(reps, || {
        let t = Instant::now();
        for b in &bodies {
            black_box(canon::to_vec(b).unwrap());
        }
        t.elapsed()
    });
    let new_val = best(reps, || {
        let t = Instant::now();
        for b in &bodies {
            black_box(canon::value_to_vec(b).unwrap());
        }
        t.elapsed()
    });
    let old_check = best(reps, || {
        let t = Instant::now();
        for (seq, l) in lines.iter().enumerate() {
            black_box(old_check_line(l, seq as u64, prevs[seq]).unwrap());
        }
        t.elapsed()
    });
    let new_check = best(reps, || {
        let t = Instant::now();
        for (seq, l) in lines.iter().enumerate() {
            black_box(check_line(l, seq as u64, prevs[seq]).unwrap());
        }
        t.elapsed()
    });
    let parse_only = best(reps, || {
        let t = Instant::now();
        for l in &lines {
            black_box(serde_json::from_slice::<Value>(l).unwrap());
        }
        t.elapsed()
    });
    println!("ns per record (best of {reps}):");
    println!(
        "  line:  canon::to_vec (json-canon) {:>6.0}   record::encode_line {:>6.0}   ({:.1}x)",
        per(old_enc, n),
        per(new_enc, n),
        old_enc.as_secs_f64() / new_enc.as_secs_f64()
    );
    println!(
        "  body:  canon::to_vec (json-canon) {:>6.0}   canon::value_to_vec {:>6.0}   ({:.1}x)",
        per(old_val, n),
        per(new_val, n),
        old_val.as_secs_f64() / new_val.as_secs_f64()
    );
    println!(
        "  check: old check_line            {:>6.0}   check_line          {:>6.0}   ({:.1}x)",
        per(old_check, n),
        per(new_check, n),
        old_check.as_secs_f64() / new_check.as_secs_f64()
    );
    println!(
        "  for scale: blake3 of the line {:.0}; serde_json::from_slice::<Value> of the line {:.0}",
        per(hash, n),
        per(parse_only, n)
    );
}
