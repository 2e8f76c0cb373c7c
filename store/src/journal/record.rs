//! One journal record: its fields, its canonical line, and the checks a line must pass
//! to be part of the chain (valid canonical JSON, the expected seq, `prev` naming the
//! previous line's hash, causes that point backwards).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canon::{self, int64};
use crate::hash::Hash;

/// Largest accepted line, in bytes. Large payloads belong in blobs.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;

/// A record as stored: one canonical JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    #[serde(with = "int64")]
    pub seq: u64,
    pub prev: Option<Hash>,
    #[serde(with = "int64")]
    pub at_ns: u64,
    pub kind: String,
    pub cause: Vec<u64>,
    pub body: Value,
}

/// A borrowed view of a record, serialized to the same canonical line as [`Record`]
/// without cloning the body.
#[derive(Serialize)]
pub struct RecordRef<'a> {
    #[serde(with = "int64")]
    pub seq: u64,
    pub prev: Option<Hash>,
    #[serde(with = "int64")]
    pub at_ns: u64,
    pub kind: &'a str,
    pub cause: &'a [u64],
    pub body: &'a Value,
}

/// A record to append; the journal assigns `seq` and `prev`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub at_ns: u64,
    pub kind: String,
    pub cause: Vec<u64>,
    pub body: Value,
}

impl NewRecord {
    /// A record stamped with the current wall-clock time.
    pub fn now(kind: &str, cause: Vec<u64>, body: Value) -> NewRecord {
        NewRecord {
            at_ns: now_ns(),
            kind: kind.to_string(),
            cause,
            body,
        }
    }
}

/// Nanoseconds since the Unix epoch by the host's wall clock.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// Check one line (without its newline) against the position it occupies in the chain.
/// Returns the parsed record, or a sentence saying what is wrong.
pub fn check_line(line: &[u8], seq: u64, prev: Option<Hash>) -> Result<Record, String> {
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not valid JSON ({e})"))?;
    match canon::to_vec(&value) {
        Ok(c) if c == line => {}
        Ok(_) => return Err("not in canonical JSON form: the line was edited or damaged".into()),
        Err(e) => return Err(e.to_string()),
    }
    let rec: Record =
        serde_json::from_value(value).map_err(|e| format!("not a journal record ({e})"))?;
    if rec.seq != seq {
        return Err(format!("seq field is {}, expected {seq}", rec.seq));
    }
    if rec.prev != prev {
        let show = |h: Option<Hash>| h.map_or("null".to_string(), |h| h.to_string());
        return Err(match seq.checked_sub(1) {
            Some(before) => format!(
                "prev is {}, but record seq {before} hashes to {}: record seq {before} was modified, or this record's prev was, or records were removed or reordered",
                show(rec.prev),
                show(prev)
            ),
            None => format!("prev is {}, but the first record must have prev null", show(rec.prev)),
        });
    }
    if let Some(c) = rec.cause.iter().find(|&&c| c >= seq) {
        return Err(format!(
            "cause names seq {c}, which is not earlier than this record"
        ));
    }
    if rec.kind.is_empty() {
        return Err("kind is empty".into());
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(seq: u64, prev: Option<Hash>) -> Vec<u8> {
        canon::to_vec(&Record {
            seq,
            prev,
            at_ns: u64::MAX,
            kind: "k".into(),
            cause: vec![],
            body: serde_json::json!({"x": 1}),
        })
        .unwrap()
    }

    #[test]
    fn accepts_a_good_line_and_names_each_fault() {
        let l = line(0, None);
        assert!(String::from_utf8_lossy(&l).contains(r#""at_ns":"18446744073709551615""#));
        check_line(&l, 0, None).unwrap();
        assert!(check_line(&l, 1, None)
            .unwrap_err()
            .contains("seq field is 0, expected 1"));
        let l1 = line(1, Some(Hash::of(b"a")));
        check_line(&l1, 1, Some(Hash::of(b"a"))).unwrap();
        assert!(check_line(&l1, 1, Some(Hash::of(b"b")))
            .unwrap_err()
            .contains("record seq 0 was modified"));
        let mut spaced = l.clone();
        spaced.insert(1, b' ');
        assert!(check_line(&spaced, 0, None)
            .unwrap_err()
            .contains("canonical"));
        assert!(check_line(b"{", 0, None)
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(check_line(br#"{"a":1}"#, 0, None)
            .unwrap_err()
            .contains("not a journal record"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), seq in 0u64..4) {
            let _ = check_line(&bytes, seq, None);
        }

        #[test]
        fn any_single_byte_flip_is_detected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let good = line(3, Some(Hash::of(b"p")));
            let mut bad = good.clone();
            let i = pos.index(bad.len());
            bad[i] ^= 1 << bit;
            // Either the line no longer checks, or its hash changed, so the next record's
            // `prev` no longer matches: the chain catches every flip.
            let still_ok = check_line(&bad, 3, Some(Hash::of(b"p"))).is_ok();
            prop_assert!(!still_ok || Hash::of(&bad) != Hash::of(&good));
        }
    }
}
