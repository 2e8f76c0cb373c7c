//! Streaming verification of journal bytes: reads line by line with a bounded buffer
//! (constant memory in journal length) and reports each record, each damaged line and a
//! torn tail to a visitor. Used by open (tail or full verification) and by fsck.

use std::io::{self, BufRead};
use std::ops::ControlFlow;

use super::record::{check_line, Record, MAX_RECORD};
use crate::hash::Hash;

/// Where a scan starts: the seq and prev hash expected of the first line, and the byte
/// offset of that line in the file.
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    pub seq: u64,
    pub prev: Option<Hash>,
    pub offset: u64,
}

/// What a scan found at one position.
pub enum Found<'a> {
    /// A valid record: the chain continues.
    Record {
        offset: u64,
        hash: Hash,
        line: &'a [u8],
        record: Record,
    },
    /// A complete line that fails its checks.
    Damaged { seq: u64, offset: u64, what: String },
    /// Bytes after the last newline: an append that did not finish.
    Torn { offset: u64, len: u64 },
}

enum Line {
    Complete,
    Partial,
    TooLong(u64),
    Eof,
}

/// Read one line into `buf` (without its newline). Lines over [`MAX_RECORD`] are skipped
/// up to their newline and reported with their length, so memory stays bounded.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let mut skipped: u64 = 0;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if skipped > 0 || !buf.is_empty() {
                Line::Partial
            } else {
                Line::Eof
            });
        }
        match memchr::memchr(b'\n', avail) {
            Some(i) => {
                if skipped > 0 {
                    r.consume(i + 1);
                    return Ok(Line::TooLong(skipped + i as u64));
                }
                buf.extend_from_slice(&avail[..i]);
                r.consume(i + 1);
                return Ok(Line::Complete);
            }
            None => {
                let n = avail.len();
                if skipped > 0 || buf.len() + n > MAX_RECORD {
                    skipped += (buf.len() + n) as u64;
                    buf.clear();
                } else {
                    buf.extend_from_slice(avail);
                }
                r.consume(n);
            }
        }
    }
}

/// Scan lines from `reader` (positioned at `start.offset`) until EOF or until the visitor
/// breaks. Returns the cursor after the last complete line. After a damaged line the scan
/// goes on as if the line were in place, so later findings are independent of it.
pub fn scan(
    reader: &mut impl BufRead,
    start: Cursor,
    mut visit: impl FnMut(Found<'_>) -> ControlFlow<()>,
) -> io::Result<Cursor> {
    let mut cur = start;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let line_start = cur.offset;
        match read_line(reader, &mut buf)? {
            Line::Eof => return Ok(cur),
            Line::Partial => {
                let len = buf.len() as u64;
                let _ = visit(Found::Torn {
                    offset: line_start,
                    len,
                });
                return Ok(cur);
            }
            Line::TooLong(len) => {
                let what =
                    format!("line of {len} bytes exceeds the {MAX_RECORD}-byte record limit");
                cur = Cursor {
                    seq: cur.seq + 1,
                    prev: None,
                    offset: line_start + len + 1,
                };
                if visit(Found::Damaged {
                    seq: cur.seq - 1,
                    offset: line_start,
                    what,
                })
                .is_break()
                {
                    return Ok(cur);
                }
            }
            Line::Complete => {
                let hash = Hash::of(&buf);
                let next = Cursor {
                    seq: cur.seq + 1,
                    prev: Some(hash),
                    offset: line_start + buf.len() as u64 + 1,
                };
                let flow = match check_line(&buf, cur.seq, cur.prev) {
                    Ok(record) => visit(Found::Record {
                        offset: line_start,
                        hash,
                        line: &buf,
                        record,
                    }),
                    Err(what) => visit(Found::Damaged {
                        seq: cur.seq,
                        offset: line_start,
                        what,
                    }),
                };
                cur = next;
                if flow.is_break() {
                    return Ok(cur);
                }
            }
        }
    }
}
