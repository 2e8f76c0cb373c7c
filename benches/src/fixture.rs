//! Test data: ~200-byte journal records, and worlds built through the public
//! `aos-store` API (`World::create`, `Journal::append` in batches of 4096, one object
//! `Batch`). Worlds are built once per run and shared by the open, fsck and fork
//! benchmarks, which only read them (fork adds objects to the big one first).

use std::path::{Path, PathBuf};
use std::time::Duration;

use aos_store::canon;
use aos_store::hash::Hash;
use aos_store::journal::{Journal, NewRecord, Record};
use aos_store::world::{Genesis, World};
use serde_json::json;

use crate::util::{say, timed, Rng};

/// The length every benchmark record aims at, newline included.
pub const LINE: usize = 200;
/// Records per append while building fixtures.
pub const BUILD_BATCH: usize = 4096;
/// A fixed timestamp (2026-11-26T00:00:00Z) so every line has the same shape.
const AT_NS: u64 = 1_795_651_200_000_000_000;

/// A dummy receipt key: the store only records it.
pub fn dummy_public_key() -> String {
    format!("ed25519:{}", "0".repeat(64))
}

/// Padding that makes a record with a 6-digit seq `LINE` bytes long with its newline.
pub fn pad() -> String {
    let probe = |pad: &str| {
        let rec = Record {
            seq: 123_456,
            prev: Some(Hash::of(b"prev")),
            at_ns: AT_NS,
            kind: "bench".into(),
            cause: vec![],
            body: json!({"i": 123_456, "pad": pad}),
        };
        canon::to_vec(&rec).expect("canonical record").len()
    };
    let base = probe("");
    "x".repeat((LINE - 1).saturating_sub(base))
}

/// The `i`-th benchmark record: `{"i":i,"pad":"xx…"}`.
pub fn record(i: u64, pad: &str) -> NewRecord {
    NewRecord {
        at_ns: AT_NS + i,
        kind: "bench".into(),
        cause: vec![],
        body: json!({"i": i, "pad": pad}),
    }
}

/// Append `count` records to `journal` in batches of `batch`. Returns the time spent.
pub fn append_records(
    journal: &mut Journal,
    count: u64,
    batch: usize,
) -> aos_store::Result<Duration> {
    let pad = pad();
    let first = journal.len();
    let mut total = Duration::ZERO;
    let mut i = 0u64;
    while i < count {
        let n = (count - i).min(batch as u64);
        let recs: Vec<NewRecord> = (0..n).map(|k| record(first + i + k, &pad)).collect();
        let (r, d) = timed(|| journal.append(&recs));
        r?;
        total += d;
        i += n;
    }
    Ok(total)
}

/// Create a world at `root` whose journal holds `records` records (genesis included).
pub fn build_world(root: &Path, records: u64) -> aos_store::Result<()> {
    let genesis = Genesis {
        public_key: dummy_public_key(),
        secret_key_file: b"test",
        origin: json!({"who": "aos-bench", "via": "aos-bench"}),
        ..Default::default()
    };
    let mut w = World::create(root, genesis)?;
    let more = records.saturating_sub(w.journal.len());
    let d = append_records(&mut w.journal, more, BUILD_BATCH)?;
    say(format!(
        "built world {} with {} records ({:.1} MB journal) in {:.2} s",
        root.display(),
        w.journal.len(),
        w.journal.byte_len() as f64 / 1e6,
        d.as_secs_f64()
    ));
    Ok(())
}

/// Put `count` distinct small objects (100 random bytes each) into the world's store in
/// one batch. Returns the time the batch took.
pub fn add_objects(root: &Path, count: usize, seed: u64) -> aos_store::Result<Duration> {
    let w = World::open(root, aos_store::world::Access::Write)?;
    let mut rng = Rng::new(seed);
    let data: Vec<Vec<u8>> = (0..count).map(|_| rng.bytes(100)).collect();
    let (r, d) = timed(|| {
        let mut batch = w.objects.batch();
        for b in &data {
            batch.put_bytes(b)?;
        }
        batch.commit()
    });
    let hashes = r?;
    assert_eq!(hashes.len(), count);
    Ok(d)
}

/// Worlds shared between benchmarks of one run.
pub struct Fixtures {
    pub scratch: PathBuf,
    pub quick: bool,
    big: Option<PathBuf>,
    big_objects: bool,
    small: Option<PathBuf>,
    /// Time it took to put the fork benchmark's objects (one batch), if done.
    pub objects_batch: Option<(usize, Duration)>,
}

impl Fixtures {
    pub fn new(scratch: &Path, quick: bool) -> Fixtures {
        Fixtures {
            scratch: scratch.to_path_buf(),
            quick,
            big: None,
            big_objects: false,
            small: None,
            objects_batch: None,
        }
    }

    /// Records in the big world (1M; 100k with --quick).
    pub fn big_records(&self) -> u64 {
        if self.quick {
            100_000
        } else {
            1_000_000
        }
    }

    /// Records in the small world used to show fsck memory does not grow (a quarter).
    pub fn small_records(&self) -> u64 {
        self.big_records() / 4
    }

    /// Objects in the fork source (100k; 10k with --quick).
    pub fn fork_objects(&self) -> usize {
        if self.quick {
            10_000
        } else {
            100_000
        }
    }

    /// The world with `big_records` records.
    pub fn big(&mut self) -> aos_store::Result<PathBuf> {
        if let Some(p) = &self.big {
            return Ok(p.clone());
        }
        let root = self.scratch.join("world-big");
        say(format!(
            "building a {}-record world (batches of {BUILD_BATCH})",
            self.big_records()
        ));
        build_world(&root, self.big_records())?;
        self.big = Some(root.clone());
        Ok(root)
    }

    /// The world with `small_records` records.
    pub fn small(&mut self) -> aos_store::Result<PathBuf> {
        if let Some(p) = &self.small {
            return Ok(p.clone());
        }
        let root = self.scratch.join("world-small");
        say(format!("building a {}-record world", self.small_records()));
        build_world(&root, self.small_records())?;
        self.small = Some(root.clone());
        Ok(root)
    }

    /// The big world with `fork_objects` small objects added.
    pub fn big_with_objects(&mut self) -> aos_store::Result<PathBuf> {
        let root = self.big()?;
        if !self.big_objects {
            let n = self.fork_objects();
            say(format!("adding {n} small objects in one batch"));
            crate::util::settle(&root);
            let d = add_objects(&root, n, 0xF0F0)?;
            say(format!("added {n} objects in {:.2} s", d.as_secs_f64()));
            self.objects_batch = Some((n, d));
            self.big_objects = true;
        }
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_about_200_bytes() {
        let pad = pad();
        let rec = record(123_456, &pad);
        let line = canon::to_vec(&Record {
            seq: 123_456,
            prev: Some(Hash::of(b"x")),
            at_ns: rec.at_ns,
            kind: rec.kind,
            cause: rec.cause,
            body: rec.body,
        })
        .unwrap();
        assert!(
            (LINE - 4..=LINE + 4).contains(&(line.len() + 1)),
            "{}",
            line.len()
        );
    }
}
