//! Read-only worlds: a world A is bind-mounted read-only at B (`mount --bind A B`, then
//! `mount -o remount,bind,ro B`; needs root). Through B, `World::open(.., Read)` reads
//! every record, a writer open and an object put are refused with clear errors, fsck
//! works and finds nothing wrong, and nothing in A changes. Also with a torn tail in A,
//! which the read-only reader must ignore rather than try to repair (and which fsck must
//! report as a torn tail, not as a repair).

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;

use aos_store::hash::Hash;
use aos_store::journal::Journal;
use aos_store::world::{Access, World};
use aos_store::Error;
use common::*;

/// A world with records and objects; returns the records' hashes and the objects.
fn populated(root: &std::path::Path) -> (Vec<Hash>, Vec<(Hash, Vec<u8>)>) {
    let w = world_with_records(root, 40);
    let objects: Vec<(Hash, Vec<u8>)> = (0..10u8)
        .map(|i| {
            let b = vec![i; 100 + i as usize * 1000];
            (w.objects.put_bytes(&b).unwrap(), b)
        })
        .collect();
    let hashes = (0..w.journal.len())
        .map(|s| w.journal.read(s).unwrap().1)
        .collect();
    (hashes, objects)
}

#[test]
fn read_only_bind_mount() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let (hashes, objects) = populated(&a);
    let before = snapshot(&a);
    let m = Mount::bind_read_only(&a);
    let b = &m.path;

    // Reading works and sees every record and object.
    let mut r = World::open(b, Access::Read).expect("World::open(read-only mount, Read)");
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    assert_eq!(r.journal.len(), hashes.len() as u64);
    verify_chain(&r.journal);
    for (s, h) in hashes.iter().enumerate() {
        assert_eq!(r.journal.read(s as u64).unwrap().1, *h);
    }
    for s in 1..r.journal.len() {
        assert_record(&r.journal, s);
    }
    for (h, bytes) in &objects {
        assert_eq!(&r.objects.get(h).unwrap(), bytes);
    }

    // Writing is refused, saying why.
    let err = World::open(b, Access::Write).expect_err("a writer opened a read-only world");
    eprintln!("World::open(ro, Write) -> {err:?}\n  message: {err}");
    match &err {
        Error::ReadOnly { path, .. } => assert!(path.starts_with(b), "{path:?}"),
        other => {
            panic!("expected Error::ReadOnly for a writer on a read-only mount, got {other:?}")
        }
    }
    let msg = err.to_string();
    assert!(
        msg.contains("read-only") && msg.contains(&b.display().to_string()),
        "unclear message: {msg}"
    );
    let jerr = Journal::open(&layout(b).journal(), &journal_options(&layout(b).aos, true))
        .expect_err("writable journal open");
    assert!(
        matches!(jerr, Error::ReadOnly { .. }),
        "writable Journal::open on a read-only mount: {jerr:?}"
    );
    let perr = r
        .objects
        .put_bytes(b"new object")
        .expect_err("put on a read-only mount");
    assert!(
        matches!(perr, Error::ReadOnly { .. }),
        "put_bytes on a read-only mount: {perr:?}"
    );
    assert!(!perr.is_user_error());
    let perr = r
        .objects
        .put_reader(&b"streamed"[..])
        .expect_err("put_reader on a read-only mount");
    assert!(
        matches!(perr, Error::ReadOnly { .. }),
        "put_reader on a read-only mount: {perr:?}"
    );
    let aerr = r
        .journal
        .append(&records(r.journal.len(), 1))
        .expect_err("append through a read-only handle");
    assert!(matches!(aerr, Error::Invalid(_)), "{aerr:?}");
    drop(r);

    // fsck works and finds nothing.
    let findings = fsck_all(b);
    assert!(
        findings.is_empty(),
        "fsck of an intact read-only world: {findings:#?}"
    );

    drop(m);
    assert_eq!(
        snapshot(&a),
        before,
        "something in the source world changed"
    );
    // And the source is still a healthy, writable world.
    let mut w = World::open(&a, Access::Write).unwrap();
    w.journal.append(&records(w.journal.len(), 1)).unwrap();
}

#[test]
fn read_only_world_with_a_torn_tail_and_no_index() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let (hashes, _) = populated(&a);
    let l = layout(&a);
    let good_len = fs::metadata(l.journal()).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(l.journal())
        .unwrap()
        .write_all(br#"{"at_ns":"1700000000000000"#)
        .unwrap();
    fs::remove_file(aos_store::journal::index_path(&l.journal())).unwrap();
    let before = snapshot(&a);
    let m = Mount::bind_read_only(&a);
    let b = &m.path;

    let mut r =
        World::open(b, Access::Read).expect("read open of a read-only world with a torn tail");
    let warnings = r.warnings();
    assert!(
        warnings.iter().map(ToString::to_string).any(|w| w.contains("unfinished final line") && w.contains(&format!("byte {good_len}"))),
        "the reader should say it ignores the torn tail: {warnings:?}"
    );
    assert_eq!(r.journal.len(), hashes.len() as u64);
    assert_eq!(r.journal.byte_len(), good_len);
    verify_chain(&r.journal);
    drop(r);

    let findings = fsck_all(b);
    assert_no_errors(b, &findings);
    let torn: Vec<_> = findings
        .iter()
        .filter(|f| f.code == "journal_torn_tail")
        .collect();
    assert_eq!(
        torn.len(),
        1,
        "fsck should note the torn tail it cannot repair: {findings:#?}"
    );
    assert_eq!(torn[0].location, format!(".aos/journal byte {good_len}"));

    drop(m);
    assert_eq!(
        snapshot(&a),
        before,
        "something in the source world changed"
    );
    // Nothing was, or could be, repaired on a read-only mount; fsck must not say so.
    let claimed: Vec<_> = findings
        .iter()
        .filter(|f| f.code == "journal_repaired")
        .collect();
    assert!(
        claimed.is_empty(),
        "fsck reports a repair that did not happen: {claimed:#?}"
    );
}
