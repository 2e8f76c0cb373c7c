//! The journal index `journal.idx`: a checksummed header recording how much of the
//! journal was verified (length, last seq, last line hash, and the journal file's inode
//! and mtime when it was written), followed by one little-endian u64 byte offset per
//! record. It is never authoritative: when it disagrees with the journal it is rebuilt.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::hash::Hash;

const MAGIC: &[u8; 8] = b"AOSJIDX1";
/// Bytes before the first offset entry.
pub const HEADER: u64 = 96;

/// What the index says it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Number of offset entries (records 0..count).
    pub count: u64,
    /// Journal bytes covered by those records, newline included.
    pub verified_len: u64,
    /// Hash of record `count - 1` (zeros when count is 0).
    pub head_hash: [u8; 32],
    pub journal_ino: u64,
    pub journal_mtime_ns: i64,
}

/// The identity of the journal file that a header vouches for.
pub fn file_stamp(meta: &std::fs::Metadata) -> (u64, i64) {
    (meta.ino(), meta.mtime() * 1_000_000_000 + meta.mtime_nsec())
}

impl Header {
    fn encode(&self) -> [u8; HEADER as usize] {
        let mut b = [0u8; HEADER as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.count.to_le_bytes());
        b[16..24].copy_from_slice(&self.verified_len.to_le_bytes());
        b[24..56].copy_from_slice(&self.head_hash);
        b[56..64].copy_from_slice(&self.journal_ino.to_le_bytes());
        b[64..72].copy_from_slice(&self.journal_mtime_ns.to_le_bytes());
        let sum = blake3::hash(&b[..80]);
        b[80..96].copy_from_slice(&sum.as_bytes()[..16]);
        b
    }

    fn decode(b: &[u8; HEADER as usize]) -> Option<Header> {
        if &b[0..8] != MAGIC || blake3::hash(&b[..80]).as_bytes()[..16] != b[80..96] {
            return None;
        }
        let u = |r: std::ops::Range<usize>| u64::from_le_bytes(b[r].try_into().unwrap_or([0; 8]));
        let mut head_hash = [0u8; 32];
        head_hash.copy_from_slice(&b[24..56]);
        Some(Header {
            count: u(8..16),
            verified_len: u(16..24),
            head_hash,
            journal_ino: u(56..64),
            journal_mtime_ns: u(64..72) as i64,
        })
    }

    pub fn head(&self) -> Option<Hash> {
        (self.count > 0).then_some(Hash(self.head_hash))
    }
}

/// File position of the entry for `seq`; absurd counts are an error, not an overflow.
fn entry_pos(seq: u64) -> io::Result<u64> {
    seq.checked_mul(8)
        .and_then(|x| x.checked_add(HEADER))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "index entry out of range"))
}

/// An open index file.
#[derive(Debug)]
pub struct IndexFile {
    pub path: PathBuf,
    file: File,
    pub writable: bool,
}

impl IndexFile {
    /// Open for reading, and for writing when `writable` (creating it if missing).
    pub fn open(path: &Path, writable: bool) -> io::Result<Option<IndexFile>> {
        let opened = if writable {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
        } else {
            File::open(path)
        };
        match opened {
            Ok(file) => Ok(Some(IndexFile {
                path: path.to_path_buf(),
                file,
                writable,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !writable => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The header, if present and intact. A torn or foreign header reads as None.
    pub fn header(&self) -> Option<Header> {
        let mut b = [0u8; HEADER as usize];
        for _ in 0..3 {
            if self.file.read_exact_at(&mut b, 0).is_err() {
                return None;
            }
            if let Some(h) = Header::decode(&b) {
                return Some(h);
            }
            // A writer may be replacing the header this instant; look again.
            std::thread::yield_now();
        }
        None
    }

    /// Byte offset of record `seq` (which must be below the header's count).
    pub fn offset(&self, seq: u64) -> io::Result<u64> {
        let at = entry_pos(seq)?;
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, at)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write entries for records `first..first+offsets.len()`, then the header. The
    /// header goes last so a reader never trusts entries that are not yet written.
    pub fn write(&self, first: u64, offsets: &[u64], header: &Header) -> io::Result<()> {
        if !offsets.is_empty() {
            let mut bytes = Vec::with_capacity(offsets.len() * 8);
            for o in offsets {
                bytes.extend_from_slice(&o.to_le_bytes());
            }
            self.file.write_all_at(&bytes, entry_pos(first)?)?;
        }
        self.file.write_all_at(&header.encode(), 0)
    }

    /// Drop entries beyond `count` (after a rebuild that found fewer records).
    pub fn truncate_entries(&self, count: u64) -> io::Result<()> {
        self.file.set_len(entry_pos(count)?)
    }

    /// Copy the raw entry bytes for records `0..count` to another index file.
    pub fn copy_entries_to(&self, count: u64, dst: &IndexFile) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let total = count * 8;
        let mut done = 0u64;
        while done < total {
            let n = (total - done).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], HEADER + done)?;
            dst.file.write_all_at(&buf[..n], HEADER + done)?;
            done += n as u64;
        }
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header {
            count: 7,
            verified_len: 1234,
            head_hash: [9; 32],
            journal_ino: 42,
            journal_mtime_ns: -5,
        };
        let mut b = h.encode();
        assert_eq!(Header::decode(&b), Some(h));
        b[20] ^= 1;
        assert_eq!(Header::decode(&b), None);
    }
}
