//! Full disk: worlds on a small tmpfs (mounted per test, unmounted by a Drop guard;
//! needs root). Objects are put until `put_bytes` fails with `Error::DiskFull`, and
//! journal records appended until `append` does: earlier objects stay intact, no partial
//! object is visible under its name, no temp file is left behind, every acknowledged
//! record survives a reopen, a failed batch leaves no trace and fsck finds no error. Two
//! targeted cases fill the disk to the page so the failure lands exactly on the object
//! ledger's append and on the journal index's write.

mod common;

use std::fs;

use aos_store::hash::Hash;
use aos_store::journal::{Journal, NewRecord, Record};
use aos_store::objects::ObjectStore;
use aos_store::world::{Access, World};
use aos_store::{canon, Error};
use common::*;
use serde_json::json;

fn page() -> u64 {
    // SAFETY: sysconf has no memory effects.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

fn object_bytes(i: u64, len: usize) -> Vec<u8> {
    let mut b = format!("object {i}:").into_bytes();
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.push(x as u8);
    }
    b
}

fn assert_disk_full<T: std::fmt::Debug>(r: aos_store::Result<T>, what: &str) -> Error {
    match r {
        Err(e @ Error::DiskFull { .. }) => {
            assert!(e.to_string().contains("no space left"), "{e}");
            assert!(!e.is_user_error());
            e
        }
        other => panic!("{what}: expected Error::DiskFull, got {other:?}"),
    }
}

fn tmp_entries(objects: &ObjectStore) -> Vec<String> {
    fs::read_dir(objects.dir().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn objects_until_disk_full() {
    let m = Mount::tmpfs(1 << 20);
    let root = m.path.join("w");
    let w = World::create(&root, genesis()).unwrap();
    let store = w.objects.clone();
    drop(w);

    let mut stored: Vec<(Hash, Vec<u8>)> = Vec::new();
    let mut i = 0u64;
    let err = loop {
        assert!(i < 10_000, "a 1 MiB tmpfs never filled up");
        let bytes = object_bytes(i, 1000 + (i as usize * 37) % 3000);
        match store.put_bytes(&bytes) {
            Ok(h) => {
                assert_eq!(h, Hash::of(&bytes));
                stored.push((h, bytes));
            }
            Err(e) => break (e, bytes),
        }
        i += 1;
    };
    let (err, failed) = err;
    let err = assert_disk_full(
        Err::<(), _>(err),
        &format!("put_bytes of object #{i} on a full disk"),
    );
    eprintln!("{} objects stored, then: {err}", stored.len());
    assert!(
        stored.len() > 50,
        "only {} objects fit in 1 MiB",
        stored.len()
    );

    // The failed object is not visible under its name, or (if only its ledger line
    // failed) visible with its full content: never a partial file.
    let fh = Hash::of(&failed);
    if let Some(p) = store.locate(&fh) {
        assert_eq!(
            fs::read(&p).unwrap(),
            failed,
            "a partial object is visible at {}",
            p.display()
        );
    }

    // A large object and a streamed one fail the same way, in the middle of writing.
    let big = object_bytes(1 << 40, 300 * 1024);
    assert_disk_full(store.put_bytes(&big), "put_bytes of 300 KiB");
    assert!(
        !store.contains(&Hash::of(&big)),
        "a failed large object is visible"
    );
    assert_disk_full(store.put_reader(&big[..]), "put_reader of 300 KiB");
    assert!(!store.contains(&Hash::of(&big)));
    assert!(
        tmp_entries(&store).is_empty(),
        "temp files left in objects/tmp: {:?}",
        tmp_entries(&store)
    );

    // Everything stored before is intact and readable.
    for (h, bytes) in &stored {
        assert_eq!(
            &store
                .get(h)
                .unwrap_or_else(|e| panic!("object {h} after disk full: {e}")),
            bytes
        );
    }
    let ledger: Vec<Hash> = store
        .read_ledger()
        .expect("ledger readable after disk full")
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    for (h, _) in &stored {
        assert!(
            ledger.contains(h),
            "stored object {h} missing from the ledger"
        );
    }
    let findings = fsck_all(&root);
    assert_no_errors(&root, &findings);
    // Reading still works through a fresh open on the full disk.
    let r = World::open(&root, Access::Read).unwrap();
    assert_eq!(r.objects.get(&stored[0].0).unwrap(), stored[0].1);
}

#[test]
fn journal_until_disk_full() {
    let m = Mount::tmpfs(1 << 20);
    let root = m.path.join("w");
    let ballast = m.path.join("ballast");
    fs::write(&ballast, vec![1u8; 128 * 1024]).unwrap();
    let mut w = World::create(&root, genesis()).unwrap();
    let journal = w.layout.journal();
    let mut rng = Rng::new(seed(0xd15c_f011));
    let mut acked = 0u64;
    let (mut failures, mut appends) = (0, 0);
    loop {
        assert!(appends < 100_000, "never filled");
        let (len_before, bytes_before, head_before) =
            (w.journal.len(), w.journal.byte_len(), w.journal.head());
        let n = rng.range(1, 16);
        match w.journal.append(&records(len_before, n)) {
            Ok(h) => {
                appends += 1;
                acked = h.last().unwrap().seq;
                assert_eq!(fs::metadata(&journal).unwrap().len(), w.journal.byte_len());
            }
            Err(e) => {
                assert_disk_full(
                    Err::<(), _>(e),
                    &format!("append of {n} records on a full disk"),
                );
                // The failed batch left no trace.
                assert_eq!(
                    fs::metadata(&journal).unwrap().len(),
                    bytes_before,
                    "journal length after a failed append"
                );
                assert_eq!(
                    (w.journal.len(), w.journal.byte_len(), w.journal.head()),
                    (len_before, bytes_before, head_before)
                );
                failures += 1;
                // Try a few more (smaller) batches: each fails cleanly or fits.
                if failures == 5 {
                    break;
                }
            }
        }
    }
    eprintln!("{appends} appends acked up to seq {acked}, then {failures} refused");
    assert!(acked > 50);
    let acked_len = w.journal.byte_len();
    drop(w);
    assert_eq!(fs::metadata(&journal).unwrap().len(), acked_len);

    // Still full: fsck and a reader are fine and see every acked record.
    assert_no_errors(&root, &fsck_all(&root));
    let r = World::open(&root, Access::Read).expect("read open on a full disk");
    assert_eq!(r.journal.len(), acked + 1);
    verify_chain(&r.journal);
    for item in r.journal.iter_from(1).unwrap() {
        let (rec, _) = item.unwrap();
        assert!(rec.body == body(rec.seq), "seq {}", rec.seq);
    }
    drop(r);
    // A writer can open on the full disk, and append again once space is freed.
    let mut w = World::open(&root, Access::Write).expect("write open on a full disk");
    fs::remove_file(&ballast).unwrap();
    let h = w
        .journal
        .append(&records(acked + 1, 3))
        .expect("append after freeing space");
    assert_eq!(h[0].seq, acked + 1);
    drop(w);
    let r = World::open(&root, Access::Read).unwrap();
    assert_eq!(r.journal.len(), acked + 4);
    verify_chain(&r.journal);
    assert_record(&r.journal, acked + 3);
    drop(r);
    assert_no_errors(&root, &fsck_all(&root));
}

/// The disk fills exactly when an object's ledger line has to start a new page: the
/// object's file is in place but the ledger append fails part-way. A refused put must
/// not leave a torn ledger line behind (the ledger has no rollback, unlike the journal).
#[test]
fn ledger_append_on_a_full_disk_leaves_no_torn_line() {
    let page = page();
    let per_page = page / 65;
    assert!(
        per_page * 65 < page,
        "precondition: a ledger line straddles the first page boundary"
    );
    let m = Mount::tmpfs(1 << 20);
    let root = m.path.join("w");
    let w = World::create(&root, genesis()).unwrap();
    let store = w.objects.clone();
    drop(w);
    let mut stored = Vec::new();
    for i in 0..per_page {
        stored.push(store.put_bytes(&object_bytes(i, 100)).unwrap());
    }
    let ledger = store.ledger_path();
    assert_eq!(fs::metadata(&ledger).unwrap().len(), per_page * 65);

    // Leave exactly one free page: the next object's temp file takes it, then the
    // ledger needs a second page for the rest of its line.
    let (filler, len) = fill_disk(&m.path, "filler");
    assert_eq!(free_bytes(&m.path), 0);
    fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - page)
        .unwrap();
    assert_eq!(free_bytes(&m.path), page, "precondition: one free page");
    let next = object_bytes(per_page, 100);
    let e = assert_disk_full(
        store.put_bytes(&next),
        "the put whose ledger line needs a new page",
    );
    eprintln!("put refused: {e}");
    assert!(
        tmp_entries(&store).is_empty(),
        "temp files left: {:?}",
        tmp_entries(&store)
    );

    let ledger_len = fs::metadata(&ledger).unwrap().len();
    let findings = fsck_all(&root);
    let errs = errors(&findings);
    let tail = fs::read(&ledger).unwrap()[(per_page * 65) as usize..].to_vec();
    assert!(
        ledger_len.is_multiple_of(65) && errs.is_empty(),
        "a put refused with DiskFull left the ledger {} at {ledger_len} bytes (not a whole number of 65-byte \
         lines; the partial line is {:?}) and fsck now reports {errs:#?}",
        ledger.display(),
        String::from_utf8_lossy(&tail)
    );

    // Once space is freed the store works again and its ledger lists every object.
    fs::remove_file(&filler).unwrap();
    let again = store.put_bytes(&next).unwrap();
    let more = store.put_bytes(&object_bytes(per_page + 1, 100)).unwrap();
    let listed: Vec<Hash> = store
        .read_ledger()
        .expect("ledger readable")
        .into_iter()
        .map(|(_, h)| h)
        .collect();
    for h in stored.iter().chain([&more]) {
        assert!(listed.contains(h), "{h} not in the ledger");
    }
    assert!(store.get(&again).is_ok());
    assert_no_errors(&root, &fsck_all(&root));
}

fn small(seq: u64, pad: usize) -> NewRecord {
    NewRecord {
        at_ns: 1_700_000_000_000_000_000 + seq,
        kind: "t".into(),
        cause: vec![],
        body: json!({"i": seq, "p": "x".repeat(pad)}),
    }
}

fn line_len(j: &Journal, r: &NewRecord) -> u64 {
    let rec = Record {
        seq: j.len(),
        prev: j.head().map(|h| h.hash),
        at_ns: r.at_ns,
        kind: r.kind.clone(),
        cause: r.cause.clone(),
        body: r.body.clone(),
    };
    canon::to_vec(&rec).unwrap().len() as u64 + 1
}

/// The disk fills exactly when the journal index needs a new page: the append itself
/// fits in the journal's last page and is acknowledged, and the index update fails
/// ("best effort"). The open journal must still read the records it already had.
#[test]
fn index_write_failure_on_a_full_disk_keeps_earlier_records_readable() {
    let page = page();
    let per_page = (page - 96) / 8; // index entries in the first page after the header
    let m = Mount::tmpfs(1 << 20);
    let dir = m.path.join("j");
    fs::create_dir(&dir).unwrap();
    let path = dir.join("journal");
    let mut j = Journal::create(&path).unwrap();
    for start in (0..per_page - 1).step_by(50) {
        let n = (per_page - 1 - start).min(50);
        let batch: Vec<_> = (start..start + n).map(|s| small(s, 0)).collect();
        j.append(&batch).unwrap();
    }
    // The last record before the boundary is padded so that the journal's last page
    // keeps room for one more small record.
    let pad = (0..page as usize)
        .find(|&p| {
            let end = j.byte_len() + line_len(&j, &small(per_page - 1, p));
            (page / 4..page / 2).contains(&(end % page))
        })
        .unwrap();
    j.append(&[small(per_page - 1, pad)]).unwrap();
    assert_eq!(j.len(), per_page);
    assert_eq!(
        fs::metadata(aos_store::journal::index_path(&path))
            .unwrap()
            .len(),
        page,
        "precondition: the index fills one page"
    );
    let hashes: Vec<Hash> = (0..per_page).map(|s| j.read(s).unwrap().1).collect();
    assert!(j.take_warnings().is_empty());

    let (filler, _) = fill_disk(&m.path, "filler");
    assert_eq!(free_bytes(&m.path), 0);
    let h = j
        .append(&[small(per_page, 0)])
        .expect("precondition: the record fits in the journal's last page");
    let warnings = j.take_warnings();
    assert!(
        warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("not updated")),
        "precondition: the index write failed for lack of space; warnings {warnings:?}"
    );
    assert_eq!(h[0].seq, per_page);

    // The handle must still serve the records it had before the index write failed.
    let read0 = j.read(0).map(|(_, h)| h);
    let mid = j.read(per_page / 2).map(|(_, h)| h);
    assert!(
        matches!(&read0, Ok(h) if *h == hashes[0]) && matches!(&mid, Ok(h) if *h == hashes[(per_page / 2) as usize]),
        "after a failed index update (\"it will be rebuilt on the next open\"), the open journal cannot read \
         its earlier records: read(0) = {read0:?}, read({}) = {mid:?}",
        per_page / 2
    );
    verify_chain(&j);
    drop(j);
    fs::remove_file(&filler).unwrap();
    let j = Journal::open(&path, &journal_options(&dir, false)).unwrap();
    assert_eq!(j.len(), per_page + 1);
    verify_chain(&j);
}

/// A world created on an already full disk fails with DiskFull and leaves nothing behind.
#[test]
fn create_on_a_full_disk_leaves_nothing() {
    let m = Mount::tmpfs(256 * 1024);
    let (_filler, _) = fill_disk(&m.path, "filler");
    let root = m.path.join("w");
    fs::create_dir(&root).unwrap();
    assert_disk_full(
        World::create(&root, genesis()).map(|_| ()),
        "World::create on a full disk",
    );
    let left: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a failed create left {left:?}");
    assert!(World::open(&root, Access::Read).is_err());
}
