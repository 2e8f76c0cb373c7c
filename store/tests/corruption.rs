//! Damage on disk is found with its exact location and never silently repaired: a torn
//! final line (ignored by readers, truncated by the next writer with its bytes saved and
//! the repair logged, then reported by fsck), a flipped byte in a middle journal line
//! (fsck names the seq, opening refuses with `JournalDamaged`, the file stays byte for
//! byte the same), a modified last record, a corrupt, a deleted and a renamed object, a
//! deleted or garbage journal index (rebuilt transparently) and a journal cut short of
//! what its index vouches for (`JournalInconsistent`, and fsck must say so).

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aos_store::fsck::{Finding, Severity};
use aos_store::hash::Hash;
use aos_store::journal::index_path;
use aos_store::lock::WriterLock;
use aos_store::objects::ObjectStore;
use aos_store::world::{Access, World};
use aos_store::Error;
use common::*;

/// A world with `n` test records after genesis, closed again.
fn world(n: u64) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    drop(world_with_records(&root, n));
    (d, root)
}

/// Overwrite bytes in place (same inode, like a disk error or an editor that writes in
/// place). Waits a little first so the change gets a new mtime even where timestamps
/// are coarse: the index vouches only for a file with the mtime it recorded.
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    std::thread::sleep(Duration::from_millis(20));
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

/// Start offsets of every journal line.
fn line_starts(journal: &Path) -> Vec<u64> {
    let bytes = fs::read(journal).unwrap();
    let mut starts = vec![0];
    starts.extend(
        bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i as u64 + 1),
    );
    starts.pop();
    starts
}

fn by_code<'a>(findings: &'a [Finding], code: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.code == code).collect()
}

fn journal_damaged_seq(e: &Error) -> Option<(u64, u64)> {
    match e {
        Error::JournalDamaged { seq, offset, .. } => Some((*seq, *offset)),
        _ => None,
    }
}

#[test]
fn a_torn_final_line_is_ignored_by_readers_truncated_by_the_next_writer_and_noted() {
    let (_d, root) = world(10);
    let l = layout(&root);
    let good = fs::read(l.journal()).unwrap();
    let torn = br#"{"at_ns":"1700000000000000011","body":{"pad":"kl"#;
    OpenOptions::new()
        .append(true)
        .open(l.journal())
        .unwrap()
        .write_all(torn)
        .unwrap();
    let damaged = fs::read(l.journal()).unwrap();
    let at = good.len() as u64;

    // While a writer holds the lock, readers and fsck leave the tail alone.
    let held = WriterLock::acquire(&l.lock(), &root).unwrap();
    let mut r = World::open(&root, Access::Read).expect("reader with a torn tail");
    assert_eq!(r.journal.len(), 11);
    assert_eq!(r.journal.byte_len(), at);
    assert_eq!(r.journal.torn_tail().map(|(o, _)| o), Some(at));
    let w: Vec<String> = r.warnings().iter().map(ToString::to_string).collect();
    assert!(
        w.is_empty(),
        "a busy writer will repair it; no warning: {w:?}"
    );
    drop(r);
    let findings = fsck_all(&root);
    assert_no_errors(&root, &findings);
    let notes = by_code(&findings, "journal_torn_tail");
    assert_eq!(notes.len(), 1, "{findings:#?}");
    assert_eq!(notes[0].location, format!(".aos/journal byte {at}"));
    assert!(
        notes[0].what.contains(&format!("{} bytes", torn.len())),
        "{:?}",
        notes[0]
    );
    assert!(
        fs::read(l.journal()).unwrap() == damaged,
        "the tail was changed while a writer held the lock"
    );
    drop(held);

    // The next writer truncates it, keeps the bytes and logs the repair.
    let mut w = World::open(&root, Access::Write).unwrap();
    let warnings = w.warnings();
    assert!(
        warnings
            .iter()
            .map(ToString::to_string)
            .any(|w| w.contains("truncated an unfinished final line")
                && w.contains(&format!("byte {at} "))),
        "{warnings:?}"
    );
    assert!(
        fs::read(l.journal()).unwrap() == good,
        "the writer's open must cut exactly the torn bytes"
    );
    let saved: Vec<_> = fs::read_dir(l.lost_found())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1);
    assert_eq!(fs::read(&saved[0]).unwrap(), torn);
    let log = fs::read_to_string(l.repairs_log()).unwrap();
    let note: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(
        (
            note["repair"].as_str(),
            note["offset"].as_u64(),
            note["bytes"].as_u64()
        ),
        (
            Some("truncated_torn_tail"),
            Some(at),
            Some(torn.len() as u64)
        )
    );
    assert_eq!(note["after_seq"], 10);
    w.journal.append(&records(11, 1)).unwrap();
    drop(w);

    let findings = fsck_all(&root);
    assert_no_errors(&root, &findings);
    let notes = by_code(&findings, "journal_torn_tail_truncated");
    assert_eq!(notes.len(), 1, "{findings:#?}");
    assert_eq!(notes[0].severity, Severity::Note);
    assert_eq!(notes[0].location, format!(".aos/journal byte {at}"));
    assert!(
        notes[0].what.contains("after seq 10")
            && notes[0].what.contains(&saved[0].display().to_string()),
        "{:?}",
        notes[0]
    );
}

#[test]
fn a_flipped_byte_in_a_middle_line_is_reported_at_its_seq_and_never_repaired() {
    let (_d, root) = world(10);
    let l = layout(&root);
    let starts = line_starts(&l.journal());
    let line4 = starts[4];
    let original = fs::read(l.journal()).unwrap();

    // A hex digit of seq 4's `prev` changed: the line still parses, so exactly seq 4 is
    // where the chain breaks (and seq 5's prev no longer matches seq 4's hash).
    let text = &original[line4 as usize..starts[5] as usize];
    let at = line4
        + (text
            .windows(15)
            .position(|w| w == b"\"prev\":\"blake3:")
            .unwrap()
            + 15) as u64;
    let new = if original[at as usize] == b'0' {
        b'1'
    } else {
        b'0'
    };
    patch(&l.journal(), at, &[new]);
    let damaged = fs::read(l.journal()).unwrap();
    let idx = fs::read(index_path(&l.journal())).unwrap();

    for access in [Access::Read, Access::Write] {
        match World::open(&root, access) {
            Err(e) => {
                assert_eq!(
                    journal_damaged_seq(&e),
                    Some((4, line4)),
                    "{access:?}: {e:?}"
                );
                let msg = e.to_string();
                assert!(
                    msg.contains("seq 4 (line 5, byte") && msg.contains("not modified"),
                    "{msg}"
                );
            }
            Ok(_) => panic!("{access:?} open accepted a journal with a changed line"),
        }
    }
    let findings = fsck_all(&root);
    let damage = by_code(&findings, "journal_damaged");
    assert!(
        !damage.is_empty(),
        "fsck missed the flipped byte: {findings:#?}"
    );
    assert_eq!(damage[0].severity, Severity::Error);
    assert_eq!(
        damage[0].location,
        format!(".aos/journal seq 4 (line 5, byte {line4})")
    );
    assert!(damage[0].what.contains("prev"), "{:?}", damage[0]);
    for f in &damage[1..] {
        assert_eq!(
            f.location,
            format!(".aos/journal seq 5 (line 6, byte {})", starts[5]),
            "only seq 5's link to seq 4 may also break: {f:?}"
        );
    }
    assert!(
        fs::read(l.journal()).unwrap() == damaged,
        "the damaged journal was modified"
    );
    assert!(
        fs::read(index_path(&l.journal())).unwrap() == idx,
        "the index was modified"
    );

    // Any single bit flipped anywhere in a middle line (including its newline) is found
    // at that seq or the next one, by open and by fsck, and nothing is rewritten.
    let line = starts[5] - line4;
    let mut rng = Rng::new(seed(0xf11b));
    let mut positions: Vec<u64> = vec![0, 1, line / 2, line - 2, line - 1];
    positions.extend((0..12).map(|_| rng.range(0, line - 1)));
    for p in positions {
        let bit = 1u8 << rng.range(0, 7);
        let mut bytes = original.clone();
        bytes[(line4 + p) as usize] ^= bit;
        patch(&l.journal(), 0, &bytes);
        let e = World::open(&root, Access::Write)
            .map(|_| ())
            .expect_err(&format!(
                "flip of bit {bit:#x} at line byte {p} went unnoticed by open"
            ));
        let (seq, _) = journal_damaged_seq(&e).unwrap_or_else(|| panic!("flip at {p}: {e:?}"));
        assert!(seq == 4 || seq == 5, "flip in seq 4 reported at seq {seq}");
        let findings = fsck_all(&root);
        let first = by_code(&findings, "journal_damaged")
            .first()
            .map(|f| f.location.clone());
        assert!(
            first
                == Some(format!(
                    ".aos/journal seq {seq} (line {}, byte {})",
                    seq + 1,
                    starts[seq as usize]
                )),
            "flip at line byte {p}: open said seq {seq}, fsck said {first:?}"
        );
        assert!(
            fs::read(l.journal()).unwrap() == bytes,
            "flip at {p}: the journal was modified"
        );
    }
}

/// The last record has no successor whose `prev` pins it; only the index's head hash
/// remembers it. Changing it must not go unnoticed.
#[test]
fn a_changed_last_record_is_not_silently_accepted() {
    let (_d, root) = world(10);
    let l = layout(&root);
    let starts = line_starts(&l.journal());
    let last = starts[10];
    let bytes = fs::read(l.journal()).unwrap();
    // Change one letter of the body's padding: still canonical JSON, still seq 10.
    let pad = last as usize
        + bytes[last as usize..]
            .windows(7)
            .position(|w| w == b"\"pad\":\"")
            .unwrap()
        + 7;
    let new = if bytes[pad] == b'z' {
        b'y'
    } else {
        bytes[pad] + 1
    };
    patch(&l.journal(), pad as u64, &[new]);
    let changed = fs::read(l.journal()).unwrap();

    let findings = fsck_all(&root);
    let about_journal: Vec<_> = findings
        .iter()
        .filter(|f| f.location.starts_with(".aos/journal"))
        .collect();
    let r = World::open(&root, Access::Read);
    let outcome = match &r {
        Ok(w) => format!(
            "World::open(Read) succeeded and returns the changed body for seq 10: {}",
            w.journal.read(10).unwrap().0.body != body(10)
        ),
        Err(e) => format!("World::open(Read) refused: {e}"),
    };
    assert!(fs::read(l.journal()).unwrap() == changed);
    assert!(
        !about_journal.is_empty(),
        "seq 10 (the head) was changed in place, and fsck reports nothing about the journal ({findings:?}); {outcome}"
    );
}

#[test]
fn a_corrupt_object_is_reported_with_its_hash_and_path() {
    let (_d, root) = world(1);
    let w = World::open(&root, Access::Write).unwrap();
    let keep = w.objects.put_bytes(b"an intact object").unwrap();
    let h = w.objects.put_bytes(&vec![7u8; 5000]).unwrap();
    let path = ObjectStore::path_in(w.objects.dir(), &h);
    drop(w);
    patch(&path, 2500, &[8]);
    let damaged = fs::read(&path).unwrap();

    let r = World::open(&root, Access::Read).unwrap();
    match r.objects.get(&h) {
        Err(Error::ObjectCorrupt {
            hash,
            path: p,
            actual,
        }) => {
            assert_eq!((hash, &p, actual), (h, &path, Hash::of(&damaged)));
        }
        other => panic!("expected ObjectCorrupt, got {other:?}"),
    }
    assert!(matches!(
        r.objects.copy_to(&h, &mut Vec::new()),
        Err(Error::ObjectCorrupt { .. })
    ));
    assert_eq!(r.objects.get(&keep).unwrap(), b"an intact object");

    let findings = fsck_all(&root);
    let rel = path.strip_prefix(&root).unwrap().display().to_string();
    let corrupt = by_code(&findings, "object_corrupt");
    assert_eq!(corrupt.len(), 1, "{findings:#?}");
    assert_eq!(corrupt[0].severity, Severity::Error);
    assert_eq!(corrupt[0].location, format!("object {h} ({rel})"));
    assert!(corrupt[0].what.contains(&Hash::of(&damaged).to_string()));
    // The intact content is gone too, so fsck may also list it as missing from the
    // ledger (at its ledger line); nothing else is wrong.
    for f in errors(&findings) {
        let ok = f.code == "object_corrupt"
            || (f.code == "object_missing"
                && f.location == format!("object {h} (.aos/objects/ledger line 2)"));
        assert!(ok, "unexpected finding: {f:?}");
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        damaged,
        "fsck changed the corrupt object"
    );
}

#[test]
fn a_deleted_object_is_reported_with_its_hash_and_ledger_line() {
    let (_d, root) = world(1);
    let w = World::open(&root, Access::Write).unwrap();
    let hashes: Vec<Hash> = (0..5u8)
        .map(|i| w.objects.put_bytes(&[i; 10]).unwrap())
        .collect();
    let ledger = w.objects.read_ledger().unwrap();
    drop(w);
    let gone = hashes[3];
    let line = ledger.iter().find(|(_, h)| *h == gone).unwrap().0;
    assert_eq!(line, 4);
    fs::remove_file(ObjectStore::path_in(&layout(&root).objects(), &gone)).unwrap();

    let r = World::open(&root, Access::Read).unwrap();
    assert!(matches!(
        r.objects.get(&gone),
        Err(Error::ObjectNotFound { .. })
    ));
    let findings = fsck_all(&root);
    let missing = by_code(&findings, "object_missing");
    assert_eq!(missing.len(), 1, "{findings:#?}");
    assert_eq!(missing[0].severity, Severity::Error);
    assert_eq!(
        missing[0].location,
        format!("object {gone} (.aos/objects/ledger line {line})")
    );
    assert_eq!(errors(&findings).len(), 1, "{findings:#?}");
}

#[test]
fn an_object_renamed_to_another_hash_is_reported_as_corrupt_and_missing() {
    let (_d, root) = world(1);
    let w = World::open(&root, Access::Write).unwrap();
    let a = w.objects.put_bytes(b"the real content").unwrap();
    drop(w);
    let objects = layout(&root).objects();
    let b = Hash::of(b"some other content that was never stored");
    let (pa, pb) = (
        ObjectStore::path_in(&objects, &a),
        ObjectStore::path_in(&objects, &b),
    );
    fs::rename(&pa, &pb).unwrap();
    let rel_b = pb.strip_prefix(&root).unwrap().display().to_string();

    let findings = fsck_all(&root);
    let corrupt = by_code(&findings, "object_corrupt");
    let missing = by_code(&findings, "object_missing");
    assert_eq!(
        (corrupt.len(), missing.len(), errors(&findings).len()),
        (1, 1, 2),
        "{findings:#?}"
    );
    assert_eq!(corrupt[0].location, format!("object {b} ({rel_b})"));
    assert!(
        corrupt[0].what.contains(&a.to_string()),
        "the corrupt finding names the content's real hash: {:?}",
        corrupt[0]
    );
    assert_eq!(
        missing[0].location,
        format!("object {a} (.aos/objects/ledger line 1)")
    );
    assert!(
        missing[0].what.contains(&rel_b),
        "the missing finding says where the content went: {:?}",
        missing[0]
    );
    // Nothing was moved back.
    assert!(pb.exists() && !pa.exists());
}

#[test]
fn a_deleted_or_garbage_index_is_rebuilt_transparently() {
    let (_d, root) = world(30);
    let l = layout(&root);
    let idx = index_path(&l.journal());
    let journal = fs::read(l.journal()).unwrap();
    let hashes: Vec<Hash> = {
        let r = World::open(&root, Access::Read).unwrap();
        (0..31).map(|s| r.journal.read(s).unwrap().1).collect()
    };
    for damage in ["delete", "garbage", "truncate"] {
        match damage {
            "delete" => fs::remove_file(&idx).unwrap(),
            "garbage" => fs::write(&idx, vec![0xa5; 500]).unwrap(),
            _ => OpenOptions::new()
                .write(true)
                .open(&idx)
                .unwrap()
                .set_len(50)
                .unwrap(),
        }
        // A reader while a writer holds the lock: verifies everything itself.
        {
            let held = WriterLock::acquire(&l.lock(), &root).unwrap();
            let r = World::open(&root, Access::Read).unwrap_or_else(|e| panic!("{damage}: {e}"));
            assert_eq!(r.journal.len(), 31);
            for (s, h) in hashes.iter().enumerate() {
                assert_eq!(r.journal.read(s as u64).unwrap().1, *h, "{damage}: seq {s}");
            }
            drop(held);
        }
        // An idle world's reader rebuilds it.
        let mut r = World::open(&root, Access::Read).unwrap();
        assert!(r.warnings().is_empty(), "{damage}: {:?}", r.warnings());
        verify_chain(&r.journal);
        assert_eq!(r.journal.read(17).unwrap().1, hashes[17]);
        drop(r);
        assert_eq!(
            fs::metadata(&idx).unwrap().len(),
            96 + 31 * 8,
            "{damage}: index not rebuilt"
        );
        let findings = fsck_all(&root);
        assert!(findings.is_empty(), "{damage}: {findings:#?}");
        assert!(
            fs::read(l.journal()).unwrap() == journal,
            "{damage}: the journal changed"
        );
    }
    let mut w = World::open(&root, Access::Write).unwrap();
    w.journal.append(&records(31, 2)).unwrap();
    assert_record(&w.journal, 32);
}

#[test]
fn a_journal_cut_short_of_its_index_is_refused_and_reported() {
    for cut_inside in [true, false] {
        let (_d, root) = world(10);
        let l = layout(&root);
        let starts = line_starts(&l.journal());
        // Inside seq 7 (a torn-looking tail that was in fact acknowledged), or exactly
        // at its start (whole records gone).
        let cut = starts[7] + if cut_inside { 40 } else { 0 };
        OpenOptions::new()
            .write(true)
            .open(l.journal())
            .unwrap()
            .set_len(cut)
            .unwrap();
        let cut_bytes = fs::read(l.journal()).unwrap();
        let idx = fs::read(index_path(&l.journal())).unwrap();

        for access in [Access::Write, Access::Read] {
            match World::open(&root, access) {
                Err(Error::JournalInconsistent { path, what }) => {
                    assert_eq!(path, l.journal());
                    assert!(
                        what.contains(&format!("the file is {cut} bytes"))
                            && what.contains("11 records"),
                        "{what}"
                    );
                }
                other => panic!(
                    "cut at {cut}: {access:?} open: expected JournalInconsistent, got {other:?}"
                ),
            }
        }
        assert!(
            fs::read(l.journal()).unwrap() == cut_bytes,
            "the cut journal was modified (a partial record treated as a torn tail?)"
        );
        assert!(
            fs::read(index_path(&l.journal())).unwrap() == idx,
            "the index that proves the loss was modified"
        );
        assert!(
            !l.repairs_log().exists() && !l.lost_found().exists(),
            "a repair was attempted"
        );

        // fsck must not pass a world that no command can open.
        let findings = fsck_all(&root);
        assert!(fs::read(l.journal()).unwrap() == cut_bytes);
        assert!(
            !errors(&findings).is_empty(),
            "journal cut at byte {cut} ({}): records 7..=10 that the index vouches for are gone and every open \
             refuses with JournalInconsistent, yet fsck reports no error, only: {findings:#?}",
            if cut_inside { "inside seq 7" } else { "at the start of seq 7" }
        );
    }
}
