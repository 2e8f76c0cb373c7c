//! Unit tests of the journal: chain, index, torn tails, damage, rollback.

use super::*;
use serde_json::json;

fn rec(i: u64) -> NewRecord {
    NewRecord {
        at_ns: 1_764_000_000_000_000_000 + i,
        kind: "test".into(),
        cause: vec![],
        body: json!({"i": i, "pad": "x".repeat(150)}),
    }
}

fn w() -> Options {
    Options {
        writable: true,
        ..Options::default()
    }
}

fn new_journal(n: u64) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("journal");
    let mut j = Journal::create(&p).unwrap();
    let batch: Vec<_> = (0..n).map(rec).collect();
    j.append(&batch).unwrap();
    (d, p)
}

#[test]
fn appends_chain_and_reopen() {
    let (_d, p) = new_journal(10);
    let j = Journal::open(&p, &Options::default()).unwrap();
    assert_eq!(j.len(), 10);
    let (r0, h0) = j.read(0).unwrap();
    assert_eq!(r0.prev, None);
    let (r1, _) = j.read(1).unwrap();
    assert_eq!(r1.prev, Some(h0));
    assert_eq!(j.head().unwrap().seq, 9);
    let all: Vec<_> = j.iter_from(7).unwrap().map(|r| r.unwrap().0.seq).collect();
    assert_eq!(all, vec![7, 8, 9]);
    assert!(matches!(
        j.read(10),
        Err(Error::SeqOutOfRange {
            seq: 10,
            head: Some(9)
        })
    ));
}

#[test]
fn index_is_rebuilt_when_missing_or_garbage() {
    let (_d, p) = new_journal(20);
    fs::remove_file(index_path(&p)).unwrap();
    let j = Journal::open(&p, &Options::default()).unwrap();
    assert_eq!(j.read(13).unwrap().0.seq, 13);
    drop(j);
    fs::write(index_path(&p), b"garbage").unwrap();
    let mut j = Journal::open(&p, &w()).unwrap();
    j.append(&[rec(20)]).unwrap();
    let j = Journal::open(&p, &Options::default()).unwrap();
    assert_eq!(j.len(), 21);
    assert_eq!(j.read(20).unwrap().0.body["i"], 20);
}

#[test]
fn torn_tail_is_truncated_by_a_writer_and_ignored_by_a_reader() {
    let (d, p) = new_journal(5);
    let good_len = fs::metadata(&p).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(br#"{"at_ns":"17640"#).unwrap();
    drop(f);
    let mut r = Journal::open(&p, &Options::default()).unwrap();
    assert_eq!(r.len(), 5);
    assert_eq!(r.torn_tail(), Some((good_len, 15)));
    assert!(r.take_warnings().is_empty());
    assert!(
        fs::metadata(&p).unwrap().len() > good_len,
        "a reader must not truncate"
    );
    let opts = Options {
        writable: true,
        salvage_dir: Some(d.path().join("lost")),
        repairs_log: Some(d.path().join("repairs")),
        ..Options::default()
    };
    let mut j = Journal::open(&p, &opts).unwrap();
    assert!(j.take_warnings()[0].to_string().contains("truncated"));
    assert_eq!(fs::metadata(&p).unwrap().len(), good_len);
    assert_eq!(fs::read_dir(d.path().join("lost")).unwrap().count(), 1);
    assert!(fs::read_to_string(d.path().join("repairs"))
        .unwrap()
        .contains("truncated_torn_tail"));
    j.append(&[rec(5)]).unwrap();
    assert_eq!(Journal::open(&p, &Options::default()).unwrap().len(), 6);
}

#[test]
fn flipped_byte_in_the_middle_refuses_open_naming_the_seq() {
    let (_d, p) = new_journal(10);
    let j = Journal::open(&p, &Options::default()).unwrap();
    let off = j.offset_of(4).unwrap() + 30;
    drop(j);
    let mut bytes = fs::read(&p).unwrap();
    bytes[off as usize] ^= 0x01;
    fs::write(&p, &bytes).unwrap();
    for opts in [Options::default(), w()] {
        match Journal::open(&p, &opts) {
            Err(Error::JournalDamaged { seq, .. }) => assert!(seq == 4 || seq == 5, "seq {seq}"),
            other => panic!("expected damage, got {other:?}"),
        }
    }
    assert_eq!(
        fs::read(&p).unwrap(),
        bytes,
        "open must not modify a damaged journal"
    );
}

#[test]
fn removed_records_are_refused() {
    let (_d, p) = new_journal(10);
    let j = Journal::open(&p, &Options::default()).unwrap();
    let cut = j.offset_of(7).unwrap();
    drop(j);
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(cut + 10).unwrap();
    assert!(matches!(
        Journal::open(&p, &w()),
        Err(Error::JournalInconsistent { .. })
    ));
}

#[test]
fn a_complete_damaged_last_line_is_damage_not_a_torn_tail() {
    let (_d, p) = new_journal(3);
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"{\"garbage\":1}\n").unwrap();
    drop(f);
    assert!(matches!(
        Journal::open(&p, &w()),
        Err(Error::JournalDamaged { seq: 3, .. })
    ));
}

#[test]
fn refresh_picks_up_records_from_another_handle() {
    let (_d, p) = new_journal(2);
    let mut reader = Journal::open(&p, &Options::default()).unwrap();
    let mut writer = Journal::open(&p, &w()).unwrap();
    writer.append(&[rec(2), rec(3)]).unwrap();
    assert_eq!(reader.refresh().unwrap(), 2);
    assert_eq!(reader.read(3).unwrap().0.body["i"], 3);
}

#[test]
fn copy_prefix_makes_an_openable_journal() {
    let (d, p) = new_journal(30);
    let j = Journal::open(&p, &Options::default()).unwrap();
    let dst = d.path().join("copy");
    j.copy_prefix(11, &dst).unwrap();
    let c = Journal::open(&dst, &Options::default()).unwrap();
    assert_eq!(c.len(), 12);
    assert_eq!(c.head().unwrap().hash, j.read(11).unwrap().1);
    let mut c = Journal::open(&dst, &w()).unwrap();
    c.append(&[rec(99)]).unwrap();
    assert_eq!(c.read(12).unwrap().0.prev, Some(j.read(11).unwrap().1));
}

#[test]
fn bad_appends_change_nothing() {
    let (_d, p) = new_journal(3);
    let before = fs::read(&p).unwrap();
    let mut j = Journal::open(&p, &w()).unwrap();
    let too_big = NewRecord {
        body: json!({"n": u64::MAX}),
        ..rec(3)
    };
    assert!(j.append(&[rec(3), too_big]).is_err());
    let future_cause = NewRecord {
        cause: vec![99],
        ..rec(3)
    };
    assert!(j.append(&[future_cause]).is_err());
    let huge = NewRecord {
        body: json!("x".repeat(MAX_RECORD)),
        ..rec(3)
    };
    assert!(matches!(
        j.append(&[huge]),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(fs::read(&p).unwrap(), before);
    assert_eq!(j.len(), 3);
}

#[test]
fn on_close_mode_vouches_only_for_synced_bytes() {
    let (_d, p) = new_journal(3);
    let synced_len = fs::metadata(&p).unwrap().len();
    let opts = Options {
        writable: true,
        sync: SyncMode::OnClose,
        ..Options::default()
    };
    let mut j = Journal::open(&p, &opts).unwrap();
    j.append(&[rec(3), rec(4)]).unwrap();
    // Another handle sees the unsynced records (they are in the page cache) …
    assert_eq!(Journal::open(&p, &Options::default()).unwrap().len(), 5);
    // … and a power loss that drops them leaves an index that never vouched for them.
    let header = index::IndexFile::open(&index_path(&p), false)
        .unwrap()
        .unwrap()
        .header()
        .unwrap();
    assert_eq!((header.count, header.verified_len), (3, synced_len));
    std::mem::forget(j); // no close-time sync: simulate the crash
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(synced_len).unwrap();
    let mut j = Journal::open(&p, &w()).unwrap();
    assert_eq!(j.len(), 3);
    j.set_sync_mode(SyncMode::OnClose);
    j.append(&[rec(3)]).unwrap();
    drop(j); // close syncs and updates the index
    let header = index::IndexFile::open(&index_path(&p), false)
        .unwrap()
        .unwrap()
        .header()
        .unwrap();
    assert_eq!(header.count, 4);
}
