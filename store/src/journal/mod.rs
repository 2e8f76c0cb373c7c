//! The journal: one append-only file of canonical JSON records, one per line, each
//! naming the hash of the line before it.
//!
//! Opening verifies what the index has not already vouched for (the whole file when
//! the index is missing, stale or the file changed under it), truncates a torn final
//! line when opened for writing (saving the bytes and noting the repair), and refuses
//! any other damage with the exact seq. Appends are group-committed: one write and one
//! fdatasync per batch, rolled back on failure so a refused append leaves no trace.

pub mod index;
pub mod record;
pub mod scan;

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use record::{now_ns, NewRecord, Record, MAX_RECORD};

use crate::canon;
use crate::durable::sync_dir;
use crate::error::{classify, io_err, Error, Result};
use crate::hash::Hash;
use index::{file_stamp, Header, IndexFile};
use scan::{scan, Cursor, Found};

/// How to open a journal.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Open for appending (the caller holds the world lock).
    pub writable: bool,
    /// Where a torn tail's bytes are saved before truncation (writable opens only).
    pub salvage_dir: Option<PathBuf>,
    /// A JSON-lines log that records every repair, read back by fsck.
    pub repairs_log: Option<PathBuf>,
    /// When appends reach the disk.
    pub sync: SyncMode,
}

/// When an acknowledged append is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `fdatasync` before `append` returns: an acknowledged record survives a power
    /// loss. The default.
    #[default]
    EveryAppend,
    /// `append` returns once the bytes are in the operating system (they survive the
    /// process being killed, not a power loss); `sync()` or closing the journal makes
    /// them durable. Like SQLite's WAL with `synchronous=NORMAL`. The index only ever
    /// vouches for synced bytes, so a power loss costs the unsynced tail and nothing else.
    OnClose,
}

/// The head of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    index: Option<IndexFile>,
    /// Records `0..persisted` have entries in the index file.
    persisted: u64,
    /// Offsets of records `persisted..` not yet in the index file.
    tail: Vec<u64>,
    /// Verified length: the end of the last complete record.
    len: u64,
    head: Option<Head>,
    writable: bool,
    sync_mode: SyncMode,
    /// The durable prefix: the index header never vouches for more.
    synced_head: Option<Head>,
    synced_len: u64,
    poisoned: bool,
    index_failed: bool,
    torn_tail: Option<(u64, u64)>,
    warnings: Vec<Warning>,
}

/// Something an open did or noticed that the user should hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// A writable open removed an unfinished final line.
    TornTailTruncated {
        journal: PathBuf,
        offset: u64,
        len: u64,
        saved_to: Option<PathBuf>,
    },
    /// A read-only open left an unfinished final line in place (no writer could repair
    /// it, e.g. on a read-only file system).
    TornTailIgnored {
        journal: PathBuf,
        offset: u64,
        len: u64,
    },
    /// The index could not be written; it is rebuilt on the next open.
    IndexNotUpdated { path: PathBuf, error: String },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::TornTailTruncated { journal, offset, len, saved_to } => {
                write!(
                    f,
                    "journal {}: truncated an unfinished final line at byte {offset} ({len} bytes; an append was interrupted)",
                    journal.display()
                )?;
                if let Some(p) = saved_to {
                    write!(f, "; its bytes are saved in {}", p.display())?;
                }
                Ok(())
            }
            Warning::TornTailIgnored { journal, offset, len } => write!(
                f,
                "journal {}: ignoring an unfinished final line at byte {offset} ({len} bytes); the next writer will truncate it",
                journal.display()
            ),
            Warning::IndexNotUpdated { path, error } => write!(
                f,
                "index {}: not updated ({error}); it will be rebuilt on the next open",
                path.display()
            ),
        }
    }
}

/// The index file that belongs to a journal file.
pub fn index_path(journal: &Path) -> PathBuf {
    let mut p = journal.as_os_str().to_owned();
    p.push(".idx");
    PathBuf::from(p)
}

impl Journal {
    /// Create an empty journal (and index). Fails if the file exists.
    pub fn create(path: &Path) -> Result<Journal> {
        File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err("create", path))?;
        let _ = fs::remove_file(index_path(path));
        Journal::open(
            path,
            &Options {
                writable: true,
                ..Options::default()
            },
        )
    }

    /// Open and verify a journal.
    pub fn open(path: &Path, opts: &Options) -> Result<Journal> {
        let file = if opts.writable {
            OpenOptions::new().read(true).append(true).open(path)
        } else {
            File::open(path)
        }
        .map_err(io_err("open journal", path))?;
        let index = IndexFile::open(&index_path(path), opts.writable)
            .map_err(io_err("open index", &index_path(path)))?;
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            index,
            persisted: 0,
            tail: Vec::new(),
            len: 0,
            head: None,
            writable: opts.writable,
            sync_mode: opts.sync,
            synced_head: None,
            synced_len: 0,
            poisoned: false,
            index_failed: false,
            torn_tail: None,
            warnings: Vec::new(),
        };
        j.load(opts)?;
        Ok(j)
    }

    fn load(&mut self, opts: &Options) -> Result<()> {
        // The header first, the file size second: a writer syncs the journal before it
        // rewrites the header, so any header we read describes bytes already in the file.
        let header = self.index.as_ref().and_then(IndexFile::header);
        let meta = self.file.metadata().map_err(io_err("stat", &self.path))?;
        let commitment = self.commitment(header, &meta)?;
        let start = match commitment.filter(|h| self.fast_path_holds(h, &meta)) {
            Some(h) => {
                self.persisted = h.count;
                self.len = h.verified_len;
                self.head = h.head().map(|hash| Head {
                    seq: h.count - 1,
                    hash,
                });
                Cursor {
                    seq: h.count,
                    prev: h.head(),
                    offset: h.verified_len,
                }
            }
            None => Cursor {
                seq: 0,
                prev: None,
                offset: 0,
            },
        };
        let mut torn = None;
        let mut checked_commitment = start.seq > 0;
        if meta.len() > start.offset {
            let (t, reached) = self.verify_tail(start, u64::MAX, commitment)?;
            torn = t;
            checked_commitment |= reached;
        }
        if let (Some(c), false) = (commitment, checked_commitment) {
            return Err(Error::JournalInconsistent {
                path: self.path.clone(),
                what: format!(
                    "{} records were acknowledged, but only {} remain: records were removed",
                    c.count,
                    self.len()
                ),
            });
        }
        self.torn_tail = torn;
        if let Some((offset, len)) = torn {
            if self.writable {
                self.truncate_torn_tail(offset, len, opts)?;
            }
        }
        self.synced_head = self.head;
        self.synced_len = self.len;
        // An index header is written only after a sync, so when it already vouches for
        // exactly this file (same length, inode and mtime) every byte is durable.
        let vouched = self.tail.is_empty() && header.is_some() && header == self.current_header();
        if self.writable && !vouched {
            // Whatever a previous writer left in the page cache becomes durable now,
            // so the index may vouch for all of it.
            self.file.sync_data().map_err(io_err("sync", &self.path))?;
            self.persist_index();
        }
        Ok(())
    }

    /// Verify the records from `start` (the end of the verified prefix) to the end of
    /// the file, reading at most `limit` bytes: each one extends the offsets and moves the
    /// head. A header `commitment` is checked when its last record goes by. Returns a
    /// torn tail, if any, and whether the commitment's record was reached. Damage is an
    /// error naming the seq; nothing is modified.
    fn verify_tail(
        &mut self,
        start: Cursor,
        limit: u64,
        commitment: Option<Header>,
    ) -> Result<(Option<(u64, u64)>, bool)> {
        let mut f = self.file.try_clone().map_err(io_err("open", &self.path))?;
        f.seek(SeekFrom::Start(start.offset))
            .map_err(io_err("seek", &self.path))?;
        let mut reader = BufReader::with_capacity(1 << 20, f.take(limit));
        let (mut torn, mut reached, mut damage, mut mismatch) = (None, false, None, None);
        let (tail, head) = (&mut self.tail, &mut self.head);
        let end = scan(&mut reader, start, |found| match found {
            Found::Record {
                offset,
                hash,
                record,
                line,
            } => {
                if let Some(c) = commitment.filter(|c| c.count == record.seq + 1) {
                    reached = true;
                    // The header vouches for a record ending exactly at its verified
                    // length; one that does not line up with the file's records
                    // describes something else and is only rebuilt.
                    let end = offset + line.len() as u64 + 1;
                    if end == c.verified_len && hash.0 != c.head_hash {
                        mismatch = Some((record.seq, offset, hash, Hash(c.head_hash)));
                        return ControlFlow::Break(());
                    }
                }
                tail.push(offset);
                *head = Some(Head {
                    seq: record.seq,
                    hash,
                });
                ControlFlow::Continue(())
            }
            Found::Damaged { seq, offset, what } => {
                damage = Some((seq, offset, what));
                ControlFlow::Break(())
            }
            Found::Torn { offset, len } => {
                torn = Some((offset, len));
                ControlFlow::Continue(())
            }
        })
        .map_err(io_err("read journal", &self.path))?;
        if let Some((seq, offset, what)) = damage {
            return Err(Error::JournalDamaged {
                path: self.path.clone(),
                seq,
                offset,
                what,
            });
        }
        if let Some((seq, offset, now, was)) = mismatch {
            return Err(Error::JournalDamaged {
                path: self.path.clone(),
                seq,
                offset,
                what: format!(
                    "the record was changed after it was acknowledged: it hashes to {now}, but journal.idx recorded {was} when it was written (if only journal.idx was damaged, delete it)"
                ),
            });
        }
        self.len = end.offset;
        Ok((torn, reached))
    }

    /// The header describing the durable prefix as it stands.
    fn current_header(&self) -> Option<Header> {
        let meta = self.file.metadata().ok()?;
        let (ino, mtime) = file_stamp(&meta);
        Some(Header {
            count: self.synced_head.map_or(0, |h| h.seq + 1),
            verified_len: self.synced_len,
            head_hash: self.synced_head.map(|h| h.hash.0).unwrap_or([0; 32]),
            journal_ino: ino,
            journal_mtime_ns: mtime,
        })
    }

    /// The index header, when it belongs to this journal file: a commitment that the
    /// first `verified_len` bytes hold `count` records ending in `head_hash`. An index
    /// claiming more bytes than the file holds means acknowledged records are gone.
    fn commitment(&self, header: Option<Header>, meta: &fs::Metadata) -> Result<Option<Header>> {
        let Some(h) = header else { return Ok(None) };
        let (ino, _) = file_stamp(meta);
        if h.count == 0 || h.journal_ino != ino || h.count > h.verified_len {
            return Ok(None);
        }
        if h.verified_len > meta.len() {
            return Err(Error::JournalInconsistent {
                path: self.path.clone(),
                what: format!(
                    "the file is {} bytes but {} bytes ({} records) were verified and acknowledged before; records were removed",
                    meta.len(),
                    h.verified_len,
                    h.count
                ),
            });
        }
        Ok(Some(h))
    }

    /// True when the verified prefix can be trusted without reading it: the file was not
    /// modified in place since the header was written, and the last acknowledged record
    /// is where the index says, with the hash the header recorded.
    fn fast_path_holds(&self, h: &Header, meta: &fs::Metadata) -> bool {
        let (_, mtime) = file_stamp(meta);
        if h.verified_len == meta.len() && h.journal_mtime_ns != mtime {
            return false; // same size, modified since: verify everything
        }
        let Some(idx) = &self.index else { return false };
        let Ok(last) = idx.offset(h.count - 1) else {
            return false;
        };
        if last >= h.verified_len || h.verified_len - last > MAX_RECORD as u64 + 1 {
            return false;
        }
        let mut line = vec![0u8; (h.verified_len - last) as usize];
        if self.file.read_exact_at(&mut line, last).is_err() || line.pop() != Some(b'\n') {
            return false;
        }
        Hash::of(&line).0 == h.head_hash
            && serde_json::from_slice::<Record>(&line).is_ok_and(|r| r.seq == h.count - 1)
    }

    fn truncate_torn_tail(&mut self, offset: u64, len: u64, opts: &Options) -> Result<()> {
        let mut bytes = vec![0u8; len as usize];
        self.file
            .read_exact_at(&mut bytes, offset)
            .map_err(io_err("read journal", &self.path))?;
        let mut saved = None;
        if let Some(dir) = &opts.salvage_dir {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            let p = dir.join(format!("journal-torn-{offset}-{}.bin", now_ns()));
            fs::write(&p, &bytes).map_err(io_err("save torn tail", &p))?;
            saved = Some(p);
        }
        self.file
            .set_len(offset)
            .map_err(io_err("truncate torn tail", &self.path))?;
        self.file.sync_all().map_err(io_err("sync", &self.path))?;
        let saved_text = saved.as_ref().map(|p| p.display().to_string());
        if let Some(log) = &opts.repairs_log {
            let note = serde_json::json!({
                "at_ns": canon::u64_value(now_ns()),
                "repair": "truncated_torn_tail",
                "journal": self.path.display().to_string(),
                "offset": offset,
                "bytes": len,
                "after_seq": self.head.map(|h| h.seq),
                "saved_to": saved_text,
            });
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(io_err("open", log))?;
            writeln!(f, "{note}")
                .and_then(|_| f.sync_data())
                .map_err(io_err("write", log))?;
        }
        self.warnings.push(Warning::TornTailTruncated {
            journal: self.path.clone(),
            offset,
            len,
            saved_to: saved,
        });
        self.torn_tail = None;
        Ok(())
    }

    /// Write offsets of synced records not yet in the index file, and a fresh header.
    /// Best effort: the index is rebuildable, so a failure only costs the next open
    /// some time.
    fn persist_index(&mut self) {
        let Some(idx) = &self.index else { return };
        if !idx.writable || self.index_failed {
            return;
        }
        let Some(header) = self.current_header() else {
            return;
        };
        let count = header.count.max(self.persisted);
        let fresh = (count - self.persisted) as usize;
        let written = idx
            .truncate_entries(count)
            .and_then(|_| idx.write(self.persisted, &self.tail[..fresh], &header));
        match written {
            Ok(()) => {
                self.persisted = count;
                self.tail.drain(..fresh);
            }
            Err(e) => {
                // Entries already in the file stay valid (the header is written last);
                // newer offsets stay in memory and the next open verifies them again.
                self.warnings.push(Warning::IndexNotUpdated {
                    path: idx.path.clone(),
                    error: e.to_string(),
                });
                self.index_failed = true;
            }
        }
    }

    /// Change when appends are synced (for a journal opened writable).
    pub fn set_sync_mode(&mut self, mode: SyncMode) {
        self.sync_mode = mode;
    }

    /// Make every appended record durable and let the index vouch for it.
    pub fn sync(&mut self) -> Result<()> {
        if !self.writable || self.synced_len == self.len {
            return Ok(());
        }
        self.file
            .sync_data()
            .map_err(|e| classify("sync journal", &self.path, e))?;
        self.synced_head = self.head;
        self.synced_len = self.len;
        self.persist_index();
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn head(&self) -> Option<Head> {
        self.head
    }

    /// Number of records.
    pub fn len(&self) -> u64 {
        self.persisted + self.tail.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of verified records.
    pub fn byte_len(&self) -> u64 {
        self.len
    }

    /// An unfinished final line (byte offset, length) that this read-only handle is
    /// ignoring; a writable open truncates it instead.
    pub fn torn_tail(&self) -> Option<(u64, u64)> {
        self.torn_tail
    }

    /// Warnings from opening (torn tails, index problems), for the caller to print.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// Byte offset where record `seq` starts.
    pub fn offset_of(&self, seq: u64) -> Result<u64> {
        if seq >= self.len() {
            return Err(Error::SeqOutOfRange {
                seq,
                head: self.head.map(|h| h.seq),
            });
        }
        if seq >= self.persisted {
            return Ok(self.tail[(seq - self.persisted) as usize]);
        }
        let idx = self
            .index
            .as_ref()
            .ok_or_else(|| self.inconsistent("index unavailable"))?;
        idx.offset(seq).map_err(io_err("read index", &idx.path))
    }

    /// Byte offset just past record `seq`'s newline.
    pub fn end_of(&self, seq: u64) -> Result<u64> {
        if seq + 1 >= self.len() {
            self.offset_of(seq)?;
            return Ok(self.len);
        }
        self.offset_of(seq + 1)
    }

    fn inconsistent(&self, what: &str) -> Error {
        Error::JournalInconsistent {
            path: self.path.clone(),
            what: what.to_string(),
        }
    }

    /// The raw line of record `seq`, without its newline.
    pub fn read_line(&self, seq: u64) -> Result<Vec<u8>> {
        let (start, end) = (self.offset_of(seq)?, self.end_of(seq)?);
        if end <= start || end - start > MAX_RECORD as u64 + 1 {
            return Err(self.inconsistent(&format!(
                "index entry for seq {seq} is damaged; delete journal.idx to rebuild it"
            )));
        }
        let mut line = vec![0u8; (end - start) as usize];
        self.file
            .read_exact_at(&mut line, start)
            .map_err(io_err("read journal", &self.path))?;
        if line.pop() != Some(b'\n') {
            return Err(self.inconsistent(&format!(
                "index entry for seq {seq} is damaged; delete journal.idx to rebuild it"
            )));
        }
        Ok(line)
    }

    /// Record `seq` and its hash.
    pub fn read(&self, seq: u64) -> Result<(Record, Hash)> {
        let line = self.read_line(seq)?;
        let rec: Record = serde_json::from_slice(&line).map_err(|e| Error::JournalDamaged {
            path: self.path.clone(),
            seq,
            offset: self.offset_of(seq).unwrap_or(0),
            what: format!("not a journal record ({e})"),
        })?;
        if rec.seq != seq {
            return Err(self.inconsistent(&format!(
                "index entry for seq {seq} points at seq {}; delete journal.idx to rebuild it",
                rec.seq
            )));
        }
        Ok((rec, Hash::of(&line)))
    }

    /// Stream records `from..` in order, reading sequentially.
    pub fn iter_from(&self, from: u64) -> Result<Iter<'_>> {
        let offset = if from >= self.len() {
            self.len
        } else {
            self.offset_of(from)?
        };
        let mut f = self.file.try_clone().map_err(io_err("open", &self.path))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek", &self.path))?;
        Ok(Iter {
            journal: self,
            reader: BufReader::with_capacity(1 << 20, f),
            seq: from,
            offset,
            buf: Vec::new(),
        })
    }

    /// Append records as one group: one write, one fdatasync. On any failure the file
    /// is rolled back to its previous length and nothing is acknowledged.
    pub fn append(&mut self, records: &[NewRecord]) -> Result<Vec<Head>> {
        if !self.writable {
            return Err(Error::Invalid(format!(
                "journal {} is open read-only",
                self.path.display()
            )));
        }
        if self.poisoned {
            return Err(Error::JournalPoisoned {
                path: self.path.clone(),
            });
        }
        let mut buf = Vec::with_capacity(records.len() * 256);
        let mut heads = Vec::with_capacity(records.len());
        let mut offsets = Vec::with_capacity(records.len());
        let mut prev = self.head.map(|h| h.hash);
        for (seq, r) in (self.len()..).zip(records) {
            if let Some(c) = r.cause.iter().find(|&&c| c >= seq) {
                return Err(Error::Invalid(format!(
                    "record seq {seq} ({}) names cause {c}, which is not earlier",
                    r.kind
                )));
            }
            if r.kind.is_empty() {
                return Err(Error::Invalid(format!(
                    "record seq {seq} has an empty kind"
                )));
            }
            let rec = record::RecordRef {
                seq,
                prev,
                at_ns: r.at_ns,
                kind: &r.kind,
                cause: &r.cause,
                body: &r.body,
            };
            let line = record::encode_line(&rec)?;
            if line.len() > MAX_RECORD {
                return Err(Error::RecordTooLarge {
                    size: line.len(),
                    limit: MAX_RECORD,
                });
            }
            let hash = Hash::of(&line);
            offsets.push(self.len + buf.len() as u64);
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            heads.push(Head { seq, hash });
            prev = Some(hash);
        }
        if records.is_empty() {
            return Ok(heads);
        }
        let every = self.sync_mode == SyncMode::EveryAppend;
        let written =
            self.file
                .write_all(&buf)
                .and_then(|_| if every { self.file.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            let rolled_back = self
                .file
                .set_len(self.len)
                .and_then(|_| self.file.sync_all());
            if rolled_back.is_err() {
                self.poisoned = true;
            }
            return Err(classify("append to journal", &self.path, e));
        }
        self.len += buf.len() as u64;
        self.tail.extend(offsets);
        self.head = heads.last().copied();
        if every {
            self.synced_head = self.head;
            self.synced_len = self.len;
            self.persist_index();
        }
        Ok(heads)
    }

    /// Make the index durable too (used before handing the world to another process,
    /// e.g. at the end of init or fork).
    pub fn sync_index(&self) -> Result<()> {
        if let Some(idx) = &self.index {
            idx.sync().map_err(io_err("sync", &idx.path))?;
        }
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Pick up records appended by another process since open (for `log --follow`).
    /// Returns the number of new records.
    pub fn refresh(&mut self) -> Result<u64> {
        let size = self
            .file
            .metadata()
            .map_err(io_err("stat", &self.path))?
            .len();
        if size <= self.len {
            return Ok(0);
        }
        let start = Cursor {
            seq: self.len(),
            prev: self.head.map(|h| h.hash),
            offset: self.len,
        };
        let before = self.len();
        // A torn tail here is an append in progress: it is read on a later refresh.
        self.verify_tail(start, size - self.len, None)?;
        Ok(self.len() - before)
    }

    /// Copy records `0..=upto` (bytes and index entries) into a new journal at `dst`,
    /// using the kernel's file copy (reflinks where the file system has them).
    pub fn copy_prefix(&self, upto: u64, dst: &Path) -> Result<()> {
        let end = self.end_of(upto)?;
        let mut src = self.file.try_clone().map_err(io_err("open", &self.path))?;
        src.seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &self.path))?;
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(dst)
            .map_err(io_err("create", dst))?;
        let copied = std::io::copy(&mut std::io::Read::take(&mut src, end), &mut out)
            .map_err(io_err("copy journal", dst))?;
        if copied != end {
            return Err(self.inconsistent(&format!("copied {copied} of {end} bytes")));
        }
        out.sync_data().map_err(io_err("sync", dst))?;
        let meta = out.metadata().map_err(io_err("stat", dst))?;
        let (ino, mtime) = file_stamp(&meta);
        let count = upto + 1;
        let (_, head_hash) = self.read(upto)?;
        let dst_idx_path = index_path(dst);
        let dst_idx = IndexFile::open(&dst_idx_path, true)
            .map_err(io_err("create index", &dst_idx_path))?
            .ok_or_else(|| self.inconsistent("could not create index"))?;
        let header = Header {
            count,
            verified_len: end,
            head_hash: head_hash.0,
            journal_ino: ino,
            journal_mtime_ns: mtime,
        };
        let in_file = count.min(self.persisted);
        let copy = || -> std::io::Result<()> {
            if let Some(src_idx) = &self.index {
                src_idx.copy_entries_to(in_file, &dst_idx)?;
            }
            let rest: Vec<u64> = self
                .tail
                .iter()
                .copied()
                .take((count - in_file) as usize)
                .collect();
            dst_idx.write(in_file, &rest, &header)
        };
        copy().map_err(io_err("write index", &dst_idx_path))?;
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Best effort for SyncMode::OnClose; a failure here is caught by the next open,
        // which verifies everything the index does not vouch for.
        let _ = self.sync();
    }
}

/// Sequential reader over records; each item is the record, its hash and its raw line.
pub struct Iter<'a> {
    journal: &'a Journal,
    reader: BufReader<File>,
    seq: u64,
    offset: u64,
    buf: Vec<u8>,
}

impl Iter<'_> {
    /// Read the next line into the buffer (without its newline); returns its seq.
    fn read_next(&mut self) -> Option<Result<(u64, u64)>> {
        use std::io::BufRead;
        if self.seq >= self.journal.len() {
            return None;
        }
        self.buf.clear();
        let read = self.reader.read_until(b'\n', &mut self.buf);
        let seq = self.seq;
        let offset = self.offset;
        self.seq += 1;
        self.offset += self.buf.len() as u64;
        Some(match read {
            Err(e) => Err(io_err("read journal", &self.journal.path)(e)),
            Ok(_) if self.buf.last() != Some(&b'\n') => {
                Err(self.journal.inconsistent("journal ended early"))
            }
            Ok(_) => {
                self.buf.pop();
                Ok((seq, offset))
            }
        })
    }

    /// The next record's seq, byte offset and raw line (without its newline), for readers that parse
    /// only some records. The line is valid until the next call.
    pub fn next_line(&mut self) -> Option<Result<(u64, u64, &[u8])>> {
        match self.read_next()? {
            Ok((seq, offset)) => Some(Ok((seq, offset, &self.buf))),
            Err(e) => Some(Err(e)),
        }
    }
}

/// Parse a line the journal has verified; `seq` and `offset` name it in errors.
pub fn parse_line(path: &Path, seq: u64, offset: u64, line: &[u8]) -> Result<Record> {
    serde_json::from_slice::<Record>(line).map_err(|e| Error::JournalDamaged {
        path: path.to_path_buf(),
        seq,
        offset,
        what: format!("not a journal record ({e})"),
    })
}

impl Iterator for Iter<'_> {
    type Item = Result<(Record, Hash)>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.read_next()? {
            Err(e) => Err(e),
            Ok((seq, offset)) => parse_line(&self.journal.path, seq, offset, &self.buf)
                .map(|r| (r, Hash::of(&self.buf))),
        };
        Some(item)
    }
}

use std::io::Read as _;

#[cfg(test)]
mod tests;
