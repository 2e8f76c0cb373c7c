//! Property tests: whatever bytes a journal file holds (random bytes, JSON-ish noise, or
//! a valid journal with bytes flipped, inserted, deleted, lines duplicated, swapped or
//! cut), next to a missing, stale, garbage or well-formed-but-lying index, neither
//! `Journal::open` (read-only and writable), reading every record it accepts, nor
//! `fsck` of the world panics; and an accepted journal always chains.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use aos_store::hash::Hash;
use aos_store::journal::index::{Header, IndexFile};
use aos_store::journal::{index_path, Journal, Options};
use common::*;
use proptest::prelude::*;

/// One world reused by every case: each case overwrites its journal and index.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    journal: Vec<u8>,
    index: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        let w = world_with_records(&root, 12);
        drop(w);
        let l = layout(&root);
        let journal = fs::read(l.journal()).unwrap();
        let index = fs::read(index_path(&l.journal())).unwrap();
        Fixture {
            _dir: dir,
            root,
            journal,
            index,
        }
    }

    fn journal_path(&self) -> PathBuf {
        layout(&self.root).journal()
    }
}

#[derive(Debug, Clone)]
enum Index {
    Missing,
    Original,
    Garbage(Vec<u8>),
    /// A header with a valid checksum for this journal file (its inode) but arbitrary
    /// claims, followed by arbitrary offsets.
    Lying {
        count: u64,
        verified_len: u64,
        head: [u8; 32],
        offsets: Vec<u64>,
        stamp_mtime: bool,
    },
}

fn index_strategy() -> impl Strategy<Value = Index> {
    prop_oneof![
        Just(Index::Missing),
        Just(Index::Original),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Index::Garbage),
        (
            prop_oneof![0u64..20, 0u64..1 << 40],
            prop_oneof![0u64..4000, any::<u64>()],
            any::<[u8; 32]>(),
            prop::collection::vec(prop_oneof![0u64..4000, any::<u64>()], 0..20),
            any::<bool>()
        )
            .prop_map(
                |(count, verified_len, head, offsets, stamp_mtime)| Index::Lying {
                    count,
                    verified_len,
                    head,
                    offsets,
                    stamp_mtime
                }
            ),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    DuplicateLine(prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<prop::sample::Index>(), 1u8..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        any::<prop::sample::Index>().prop_map(Edit::DuplicateLine),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        if bytes.is_empty() {
            break;
        }
        match e {
            Edit::Flip(i, bit) => {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            Edit::Insert(i, b) => {
                let i = i.index(bytes.len() + 1);
                bytes.insert(i, *b);
            }
            Edit::Delete(i, n) => {
                let i = i.index(bytes.len());
                let end = (i + *n as usize).min(bytes.len());
                bytes.drain(i..end);
            }
            Edit::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Edit::DuplicateLine(i) | Edit::SwapLines(i, _) => {
                let mut lines: Vec<Vec<u8>> = bytes
                    .split_inclusive(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                let a = i.index(lines.len());
                if let Edit::SwapLines(_, j) = e {
                    let b = j.index(lines.len());
                    lines.swap(a, b);
                } else {
                    let l = lines[a].clone();
                    lines.insert(a, l);
                }
                bytes = lines.concat();
            }
        }
    }
    bytes
}

fn write_case(f: &Fixture, journal: &[u8], index: &Index) {
    let l = layout(&f.root);
    let path = l.journal();
    let idx = index_path(&path);
    let _ = fs::remove_file(l.repairs_log());
    let _ = fs::remove_dir_all(l.lost_found());
    fs::write(&path, journal).unwrap();
    match index {
        Index::Missing => {
            let _ = fs::remove_file(&idx);
        }
        Index::Original => fs::write(&idx, &f.index).unwrap(),
        Index::Garbage(g) => fs::write(&idx, g).unwrap(),
        Index::Lying {
            count,
            verified_len,
            head,
            offsets,
            stamp_mtime,
        } => {
            let _ = fs::remove_file(&idx);
            let meta = fs::metadata(&path).unwrap();
            let file = IndexFile::open(&idx, true).unwrap().unwrap();
            let header = Header {
                count: *count,
                verified_len: *verified_len,
                head_hash: *head,
                journal_ino: meta.ino(),
                journal_mtime_ns: if *stamp_mtime {
                    meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
                } else {
                    0
                },
            };
            file.write(0, offsets, &header).unwrap();
        }
    }
}

/// Open read-only and writable, read everything an accepted journal claims, run fsck.
fn exercise(f: &Fixture) -> Result<(), TestCaseError> {
    let path = f.journal_path();
    let dir = path.parent().unwrap().to_path_buf();
    if let Ok(j) = Journal::open(&path, &Options::default()) {
        read_all(&j);
    }
    if let Ok(mut j) = Journal::open(&path, &journal_options(&dir, true)) {
        read_all(&j);
        let _ = j.take_warnings();
    }
    // fsck never panics, with whatever index the case left (it may rightly report a
    // last record changed after the index vouched for it).
    let _ = fsck_all(&f.root);
    // Without an index, an accepted journal chains from seq 0 when verified from
    // scratch, and fsck, looking at the same bytes, agrees that it is undamaged.
    let _ = fs::remove_file(index_path(&path));
    if let Ok(j) = Journal::open(&path, &Options::default()) {
        let mut prev: Option<Hash> = None;
        for (n, item) in j.iter_from(0).unwrap().enumerate() {
            let (r, h) = item.map_err(|e| {
                TestCaseError::fail(format!("accepted journal, seq {n} unreadable: {e}"))
            })?;
            prop_assert_eq!(r.seq, n as u64);
            prop_assert_eq!(r.prev, prev);
            prev = Some(h);
        }
        drop(j);
        let findings = fsck_all(&f.root);
        let errs = errors(&findings);
        let damaged: Vec<_> = errs
            .iter()
            .filter(|f| f.code == "journal_damaged")
            .collect();
        prop_assert!(
            damaged.is_empty(),
            "open verified the whole journal but fsck says {:?}",
            damaged
        );
    }
    Ok(())
}

fn read_all(j: &Journal) {
    for s in 0..j.len().min(100) {
        let _ = j.read(s);
        let _ = j.offset_of(s);
        let _ = j.end_of(s);
    }
    if let Ok(it) = j.iter_from(0) {
        for item in it.take(100) {
            let _ = item;
        }
    }
    let _ = j.read(j.len());
}

fn noise() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> = br#"{}[]":,\n0123456789abcdefprevsqkindbodycause_tnull-.e "#.to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..1500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), index in index_strategy()) {
        let f = fixture();
        write_case(&f, &bytes, &index);
        exercise(&f)?;
    }

    #[test]
    fn json_like_noise_never_panics(bytes in noise(), index in index_strategy()) {
        let f = fixture();
        write_case(&f, &bytes, &index);
        exercise(&f)?;
    }

    #[test]
    fn edited_journals_never_panic(edits in prop::collection::vec(edit_strategy(), 1..4), index in index_strategy()) {
        let f = fixture();
        let bytes = apply(f.journal.clone(), &edits);
        write_case(&f, &bytes, &index);
        exercise(&f)?;
    }
}

thread_local! {
    static FIXTURE: std::cell::OnceCell<std::rc::Rc<Fixture>> = const { std::cell::OnceCell::new() };
}

/// The fixture of this test thread (created once; cases of one test run sequentially).
fn fixture() -> std::rc::Rc<Fixture> {
    FIXTURE.with(|c| c.get_or_init(|| std::rc::Rc::new(Fixture::new())).clone())
}

/// The index header is checksummed but not trusted blindly ("never authoritative"): a
/// well-formed header claiming an absurd record count must make open rebuild the
/// index, not overflow `HEADER + seq * 8` while locating the claimed last record.
#[test]
fn an_index_claiming_an_absurd_count_is_rebuilt_not_a_panic() {
    let f = Fixture::new();
    let path = f.journal_path();
    let index = Index::Lying {
        count: 1 << 62,
        verified_len: 10,
        head: [0; 32],
        offsets: vec![0],
        stamp_mtime: true,
    };
    write_case(&f, &f.journal.clone(), &index);
    for writable in [false, true] {
        let opts = journal_options(path.parent().unwrap(), writable);
        let opened = std::panic::catch_unwind(|| Journal::open(&path, &opts).map(|j| j.len()));
        match opened {
            Ok(Ok(n)) => assert_eq!(n, 13, "the journal's own 13 records"),
            Ok(Err(e)) => panic!("open (writable: {writable}) refused a valid journal because of its index: {e}"),
            Err(_) => panic!(
                "Journal::open (writable: {writable}) panicked on an index header whose count is 2^62 \
                 (arithmetic overflow computing the entry offset) instead of rebuilding the index"
            ),
        }
    }
    assert_no_errors(&f.root, &fsck_all(&f.root));
}
