//! `fsck` of the store layer: re-hash every object (own and alternates), check the
//! ledger against the files, verify the whole journal chain line by line (streaming,
//! constant memory), compare the index with what the chain says, and report past
//! repairs. It works on damaged worlds (it never needs the journal to open) and reports
//! every finding with its exact location instead of stopping at the first.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::hash::Hash;
use crate::journal::index::{file_stamp, IndexFile, HEADER};
use crate::journal::index_path;
use crate::journal::scan::{scan, Cursor, Found};
use crate::objects::{hash_file, read_ledger_at, ObjectStore};
use crate::world::{Access, Config, Layout, World};

/// How bad a finding is: errors make fsck fail; notes are information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Note,
}

/// One thing fsck found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// A short stable code, e.g. `object_corrupt`, `journal_damaged`.
    pub code: &'static str,
    /// Where: a file, a seq, an object.
    pub location: String,
    pub what: String,
}

/// What fsck checked.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub records: u64,
    pub journal_bytes: u64,
    pub objects: u64,
    pub object_bytes: u64,
}

/// Progress callback: (phase, done, total).
pub type Progress<'a> = &'a dyn Fn(&str, u64, u64);

/// Check the world at `root`, sending findings to `report` as they are found.
pub fn fsck(root: &Path, progress: Progress<'_>, report: &mut dyn FnMut(Finding)) -> Summary {
    let layout = Layout::new(root);
    let mut summary = Summary::default();
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut add = |severity, code, location: String, what: String| {
        report(Finding {
            severity,
            code,
            location,
            what,
        })
    };

    if let Err(e) = Config::read(&layout.config()) {
        add(
            Severity::Error,
            "config",
            rel(&layout.config()),
            e.to_string(),
        );
    }
    // Let an idle world repair a torn tail first, exactly as any opening command would.
    // What it did is reported from the repairs log and the scan below.
    drop(World::open(root, Access::Read));
    check_repairs_log(&layout, &mut add, &rel);
    check_journal(&layout, &mut summary, progress, &mut add, &rel);
    check_objects(&layout, &mut summary, progress, &mut add, &rel);
    summary
}

type Add<'a> = dyn FnMut(Severity, &'static str, String, String) + 'a;

fn check_repairs_log(layout: &Layout, add: &mut Add<'_>, rel: &dyn Fn(&Path) -> String) {
    let Ok(f) = File::open(layout.repairs_log()) else {
        return;
    };
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        add(
            Severity::Note,
            "journal_torn_tail_truncated",
            format!("{} byte {}", rel(&layout.journal()), v["offset"]),
            format!(
                "an interrupted append ({} bytes after seq {}) was truncated on open{}",
                v["bytes"],
                v["after_seq"],
                v["saved_to"]
                    .as_str()
                    .map(|p| format!("; the bytes are kept in {p}"))
                    .unwrap_or_default()
            ),
        );
    }
}

fn check_journal(
    layout: &Layout,
    summary: &mut Summary,
    progress: Progress<'_>,
    add: &mut Add<'_>,
    rel: &dyn Fn(&Path) -> String,
) {
    let path = layout.journal();
    let loc = rel(&path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            return add(
                Severity::Error,
                "journal_missing",
                loc,
                format!("cannot open the journal: {e}"),
            )
        }
    };
    let index = IndexFile::open(&index_path(&path), false).ok().flatten();
    let meta = file.metadata().ok();
    let total = meta.as_ref().map_or(0, |m| m.len());
    // The header is a commitment made when records were acknowledged; it only counts
    // when it was written for this very file.
    let header = index.as_ref().and_then(|i| i.header()).filter(|h| {
        h.count > 0
            && meta
                .as_ref()
                .is_some_and(|m| file_stamp(m).0 == h.journal_ino)
    });
    // The entries are read in chunks alongside the scan, which visits seqs in order.
    let mut entries = header.and_then(|_| IndexEntries::open(&index_path(&path)));
    let mut committed: Option<(u64, u64, Hash)> = None;
    let mut index_mismatch: Option<u64> = None;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut last_tick = 0;
    let mut records = 0u64;
    let start = Cursor {
        seq: 0,
        prev: None,
        offset: 0,
    };
    let result = scan(&mut reader, start, |found| {
        match found {
            Found::Record { offset, hash, record, line } => {
                records += 1;
                // Only a header whose verified length ends exactly at this record
                // vouches for it (the same rule as opening the journal).
                let end = offset + line.len() as u64 + 1;
                if header.is_some_and(|h| h.count == record.seq + 1 && h.verified_len == end) {
                    committed = Some((record.seq, offset, hash));
                }
                if let (Some(entries), Some(h)) = (&mut entries, &header) {
                    if record.seq < h.count && index_mismatch.is_none() && entries.offset(record.seq, h.count) != Some(offset) {
                        index_mismatch = Some(record.seq);
                    }
                }
                if offset - last_tick > (4 << 20) {
                    last_tick = offset;
                    progress("journal", offset, total);
                }
            }
            Found::Damaged { seq, offset, what } => {
                records += 1;
                add(Severity::Error, "journal_damaged", format!("{loc} seq {seq} (line {}, byte {offset})", seq + 1), what);
            }
            Found::Torn { offset, len } => add(
                Severity::Note,
                "journal_torn_tail",
                format!("{loc} byte {offset}"),
                format!("{len} bytes after the last complete record are an unfinished append; the next writer truncates them unless the journal has other damage"),
            ),
        }
        ControlFlow::Continue(())
    });
    progress("journal", total, total);
    if let Err(e) = result {
        add(
            Severity::Error,
            "journal_unreadable",
            loc.clone(),
            format!("read failed: {e}"),
        );
    }
    summary.records = records;
    summary.journal_bytes = total;
    if records == 0 {
        add(
            Severity::Error,
            "journal_empty",
            loc.clone(),
            "the journal has no records (every world starts with world_created)".into(),
        );
    }
    let idx_loc = rel(&index_path(&path));
    if let Some(h) = header {
        match committed {
            _ if h.verified_len > total || records < h.count => add(
                Severity::Error,
                "journal_truncated",
                loc.clone(),
                format!(
                    "{} records ({} bytes) were acknowledged, but the file holds {} bytes and {records} records: acknowledged records were removed",
                    h.count, h.verified_len, total
                ),
            ),
            Some((seq, offset, hash)) if hash.0 != h.head_hash => add(
                Severity::Error,
                "journal_damaged",
                format!("{loc} seq {seq} (line {}, byte {offset})", seq + 1),
                format!(
                    "the record was changed after it was acknowledged: it hashes to {hash}, but journal.idx recorded {} when it was written (if only journal.idx was damaged, delete it)",
                    Hash(h.head_hash)
                ),
            ),
            _ => {}
        }
    }
    if let Some(seq) = index_mismatch {
        add(
            Severity::Note,
            "index_stale",
            idx_loc,
            format!("entry for seq {seq} does not match the journal; the index is rebuilt on the next open (it is never authoritative)"),
        );
    }
}

/// Sequential reader of the index's offset entries: one read per 64 KiB of entries
/// instead of one `pread` per record.
struct IndexEntries {
    file: File,
    /// Seq of the first entry in `buf`.
    first: u64,
    /// Raw little-endian entries `first..first + buf.len() / 8`.
    buf: Vec<u8>,
}

impl IndexEntries {
    const CHUNK: usize = 64 * 1024;

    fn open(path: &Path) -> Option<IndexEntries> {
        Some(IndexEntries {
            file: File::open(path).ok()?,
            first: 0,
            buf: Vec::with_capacity(Self::CHUNK),
        })
    }

    /// The offset recorded for `seq` (below `count`, the header's entry count), or None
    /// when the file does not hold that entry or cannot be read.
    fn offset(&mut self, seq: u64, count: u64) -> Option<u64> {
        let held = (self.buf.len() / 8) as u64;
        if seq < self.first || seq - self.first >= held {
            self.fill(seq, count);
        }
        let at = usize::try_from(seq.checked_sub(self.first)?)
            .ok()?
            .checked_mul(8)?;
        let b = self.buf.get(at..at + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    /// Read the entries from `seq` on (at most a chunk, none past `count`); a short file
    /// or a read error leaves only the entries read in full.
    fn fill(&mut self, seq: u64, count: u64) {
        use std::os::unix::fs::FileExt;
        self.first = seq;
        self.buf.clear();
        let want = count.saturating_sub(seq).min((Self::CHUNK / 8) as u64) as usize * 8;
        let Some(pos) = seq.checked_mul(8).and_then(|x| x.checked_add(HEADER)) else {
            return;
        };
        self.buf.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.file.read_at(&mut self.buf[got..], pos + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.buf.truncate(got / 8 * 8);
    }
}

fn check_objects(
    layout: &Layout,
    summary: &mut Summary,
    progress: Progress<'_>,
    add: &mut Add<'_>,
    rel: &dyn Fn(&Path) -> String,
) {
    let own = layout.objects();
    let store = match ObjectStore::open(&own) {
        Ok(s) => s,
        Err(e) => {
            return add(
                Severity::Error,
                "objects_unreadable",
                rel(&own),
                e.to_string(),
            )
        }
    };
    let ledger_path = store.ledger_path();
    let ledger = match read_ledger_at(&ledger_path) {
        Ok(l) => l,
        Err(e) => {
            add(
                Severity::Error,
                "ledger_damaged",
                rel(&ledger_path),
                e.to_string(),
            );
            Vec::new()
        }
    };
    let mut dirs: Vec<(PathBuf, bool)> = vec![(own.clone(), true)];
    for alt in store.alternates() {
        if alt.is_dir() {
            dirs.push((alt.clone(), false));
        } else {
            add(
                Severity::Error,
                "alternate_missing",
                rel(&own.join(crate::objects::ALTERNATES)),
                format!("objects are shared from {}, which no longer exists: objects inherited from the source world are unavailable", alt.display()),
            );
        }
    }
    let mut listed = Vec::new();
    for (dir, is_own) in &dirs {
        match ObjectStore::list_files(dir) {
            Ok(files) => listed.extend(files.into_iter().map(|(p, h)| (p, h, *is_own))),
            Err(e) => add(
                Severity::Error,
                "objects_unreadable",
                dir.display().to_string(),
                e.to_string(),
            ),
        }
    }
    let total = listed.len() as u64;
    let mut present: HashSet<Hash> = HashSet::with_capacity(listed.len());
    let mut content_of_misnamed: Vec<(PathBuf, Hash)> = Vec::new();
    for (i, (path, name, is_own)) in listed.iter().enumerate() {
        if i % 256 == 0 {
            progress("objects", i as u64, total);
        }
        let shown = if *is_own {
            rel(path)
        } else {
            path.display().to_string()
        };
        let Some(name) = name else {
            add(
                Severity::Error,
                "object_misnamed",
                shown,
                "file name is not a blake3 hex digest".into(),
            );
            continue;
        };
        summary.objects += 1;
        summary.object_bytes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match hash_file(path) {
            Ok(actual) if actual == *name => {
                present.insert(*name);
            }
            Ok(actual) => {
                content_of_misnamed.push((path.clone(), actual));
                add(
                    Severity::Error,
                    "object_corrupt",
                    format!("object {name} ({shown})"),
                    format!(
                        "content hashes to {actual}: the file was modified, damaged or renamed"
                    ),
                );
            }
            Err(e) => add(
                Severity::Error,
                "object_unreadable",
                format!("object {name} ({shown})"),
                e.to_string(),
            ),
        }
    }
    progress("objects", total, total);
    let recorded: HashSet<Hash> = ledger.iter().map(|(_, h)| *h).collect();
    for (line, h) in &ledger {
        if !present.contains(h) {
            let renamed = content_of_misnamed.iter().find(|(_, c)| c == h);
            let what = match renamed {
                Some((p, _)) => format!(
                    "missing; its content is found in {} under a wrong name",
                    rel(p)
                ),
                None => "missing: recorded as written but no longer in the store".to_string(),
            };
            add(
                Severity::Error,
                "object_missing",
                format!("object {h} ({} line {line})", rel(&ledger_path)),
                what,
            );
        }
    }
    for (path, name, is_own) in &listed {
        if let (Some(h), true) = (name, is_own) {
            if present.contains(h) && !recorded.contains(h) {
                add(Severity::Note, "object_unrecorded", format!("object {h} ({})", rel(path)), "present but not in the ledger (a write interrupted before it was recorded); harmless".into());
            }
        }
    }
    if let Ok(entries) = fs::read_dir(own.join("tmp")) {
        let n = entries.count();
        if n > 0 {
            add(
                Severity::Note,
                "object_temp_files",
                rel(&own.join("tmp")),
                format!("{n} temporary files from interrupted writes; safe to delete"),
            );
        }
    }
}
