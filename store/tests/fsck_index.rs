//! fsck compares every record's offset with the index entry for it, reading the index
//! in chunks: a wrong entry anywhere (first chunk, a later one, the last entry) or a
//! short index is reported once, as `index_stale` naming the first bad seq.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use aos_store::fsck::{Finding, Severity};
use aos_store::journal::index::HEADER;
use aos_store::journal::index_path;
use aos_store::world::World;
use common::*;

/// More records than one 64 KiB chunk of entries (8192) holds, twice over.
const N: u64 = 20_000;

fn world(root: &std::path::Path) -> World {
    let mut w = World::create(root, genesis()).expect("create world");
    let mut next = 1;
    while next <= N {
        let k = (N + 1 - next).min(4096);
        w.journal.append(&records(next, k)).expect("append");
        next += k;
    }
    w
}

fn stale(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.code == "index_stale")
        .collect()
}

#[test]
fn index_entries_are_compared_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("w");
    // The world stays open (and locked) so fsck's own open does not rebuild the index.
    let _w = world(&root);
    let idx = index_path(&layout(&root).journal());
    let findings = fsck_all(&root);
    assert_no_errors(&root, &findings);
    assert!(stale(&findings).is_empty(), "{findings:#?}");

    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&idx)
        .unwrap();
    let entry = |seq: u64| {
        let mut b = [0u8; 8];
        f.read_exact_at(&mut b, HEADER + seq * 8).unwrap();
        b
    };
    for seq in [0, 8191, 8192, 16384, N] {
        let good = entry(seq);
        let mut bad = good;
        bad[0] ^= 1;
        f.write_all_at(&bad, HEADER + seq * 8).unwrap();
        let findings = fsck_all(&root);
        let s = stale(&findings);
        assert_eq!(s.len(), 1, "seq {seq}: {findings:#?}");
        assert_eq!(s[0].severity, Severity::Note);
        assert!(
            s[0].what.starts_with(&format!("entry for seq {seq} ")),
            "seq {seq}: {}",
            s[0].what
        );
        // Two bad entries: the first is named.
        if seq > 0 {
            let first = seq / 2;
            let keep = entry(first);
            f.write_all_at(&[0xff; 8], HEADER + first * 8).unwrap();
            let findings = fsck_all(&root);
            let s = stale(&findings);
            assert_eq!(s.len(), 1);
            assert!(s[0].what.starts_with(&format!("entry for seq {first} ")));
            f.write_all_at(&keep, HEADER + first * 8).unwrap();
        }
        f.write_all_at(&good, HEADER + seq * 8).unwrap();
    }
    assert!(stale(&fsck_all(&root)).is_empty());

    // A short index: the first entry it no longer holds is named (a torn last entry
    // counts as missing).
    for keep in [10_000 * 8 + 3, 5] {
        let full = std::fs::read(&idx).unwrap();
        f.set_len(HEADER + keep).unwrap();
        let findings = fsck_all(&root);
        let s = stale(&findings);
        assert_eq!(s.len(), 1, "{findings:#?}");
        assert!(
            s[0].what
                .starts_with(&format!("entry for seq {} ", keep / 8)),
            "{}",
            s[0].what
        );
        f.write_all_at(&full, 0).unwrap();
    }
    assert!(stale(&fsck_all(&root)).is_empty());
}
