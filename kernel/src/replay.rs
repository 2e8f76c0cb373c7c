//! Replay: feed the journal's inputs through the kernel and compare every record it
//! re-derives with the one the journal holds. Derived records are never applied from
//! the journal (so nothing is processed twice); the first disagreement is a
//! [`Divergence`] naming its seq, both records and the module involved.

use std::collections::VecDeque;
use std::fmt;

use aos_store::journal::record::{write_line, RecordRef};
use aos_store::journal::{parse_line, NewRecord, Record};
use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::Value;

use crate::error::{KernelError, Result};
use crate::records::{self, record_is_input, SNAPSHOT};
use crate::stepper::Kernel;

/// The first place where the journal and the kernel disagree.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub seq: u64,
    /// What the journal holds at `seq` (none when the journal ended early).
    pub recorded: Option<Record>,
    /// What the kernel derives at `seq` (none when it derives nothing there).
    pub derived: Option<NewRecord>,
    /// The module whose step produced the disagreeing record, when one did.
    pub module: Option<String>,
    pub reason: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "replay diverged at seq {}: {}", self.seq, self.reason)?;
        if let Some(m) = &self.module {
            write!(f, " (module {m})")?;
        }
        Ok(())
    }
}

/// What the kernel expects the journal to hold next, and checks as records arrive.
pub struct Replayer {
    /// Derived records not yet matched, with the seq each must have.
    expected: VecDeque<(u64, NewRecord)>,
    /// Check each `snapshot` record's state hash against the re-derived state.
    pub verify_snapshots: bool,
    pub inputs: u64,
    pub derived: u64,
    pub snapshots_checked: u64,
    /// The seq of the last `snapshot` record fed.
    pub last_snapshot: Option<u64>,
    /// The line a derived record is expected to be, built for byte comparison.
    scratch: Vec<u8>,
}

impl Replayer {
    pub fn new(verify_snapshots: bool) -> Replayer {
        Replayer {
            expected: VecDeque::new(),
            verify_snapshots,
            inputs: 0,
            derived: 0,
            snapshots_checked: 0,
            last_snapshot: None,
            scratch: Vec::with_capacity(512),
        }
    }

    /// Whether every derived record of the inputs seen so far is in the journal.
    pub fn is_idle(&self) -> bool {
        self.expected.is_empty()
    }

    /// The derived records still missing from the journal (after a crash between an
    /// input and its consequences); a writer appends them.
    pub fn take_pending(&mut self) -> Vec<NewRecord> {
        self.expected.drain(..).map(|(_, r)| r).collect()
    }

    /// Feed the journal line at `seq` (`offset` and `journal` name it in errors; `prev`
    /// is the hash of the line before it). A derived record is checked by writing the
    /// expected line and comparing bytes, so matching records are never parsed.
    #[allow(clippy::too_many_arguments)]
    pub fn feed_line(
        &mut self,
        kernel: &mut Kernel,
        objects: &ObjectStore,
        journal: &std::path::Path,
        seq: u64,
        offset: u64,
        line: &[u8],
        prev: Option<Hash>,
    ) -> Result<()> {
        if let Some((_, want)) = self.expected.front() {
            self.scratch.clear();
            let view = RecordRef {
                seq,
                prev,
                at_ns: want.at_ns,
                kind: &want.kind,
                cause: &want.cause,
                body: &want.body,
            };
            if write_line(&mut self.scratch, &view).is_ok() && self.scratch == line {
                self.expected.pop_front();
                self.derived += 1;
                return Ok(());
            }
        }
        let rec = parse_line(journal, seq, offset, line)?;
        self.feed(kernel, objects, seq, &rec)
    }

    /// Feed the journal record at `seq`.
    pub fn feed(
        &mut self,
        kernel: &mut Kernel,
        objects: &ObjectStore,
        seq: u64,
        rec: &Record,
    ) -> Result<()> {
        if record_is_input(rec) {
            if let Some((_, next)) = self.expected.front() {
                return Err(diverged(
                    seq,
                    Some(rec),
                    Some(next),
                    "the journal holds an input here, but the previous input derives more records"
                        .into(),
                ));
            }
            self.inputs += 1;
            if rec.kind == SNAPSHOT {
                self.last_snapshot = Some(seq);
                return self.check_snapshot(kernel, seq, rec);
            }
            let out = kernel.process(objects, seq, rec)?;
            self.expected.extend(
                out.into_iter()
                    .enumerate()
                    .map(|(i, r)| (seq + 1 + i as u64, r)),
            );
            return Ok(());
        }
        let Some((want_seq, want)) = self.expected.pop_front() else {
            return Err(diverged(
                seq,
                Some(rec),
                None,
                format!(
                    "the journal holds a derived `{}` record the kernel does not produce",
                    rec.kind
                ),
            ));
        };
        debug_assert_eq!(want_seq, seq);
        if let Some(why) = difference(&want, rec) {
            return Err(diverged(seq, Some(rec), Some(&want), why));
        }
        self.derived += 1;
        Ok(())
    }

    fn check_snapshot(&mut self, kernel: &Kernel, seq: u64, rec: &Record) -> Result<()> {
        if !self.verify_snapshots {
            return Ok(());
        }
        let named = rec
            .body
            .get("snapshot")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Hash>().ok())
            .ok_or_else(|| KernelError::Record {
                seq,
                kind: rec.kind.clone(),
                reason: "the body names no snapshot hash".into(),
            })?;
        let actual = kernel.state.hash();
        if actual != named {
            return Err(KernelError::Diverged(Box::new(Divergence {
                seq,
                recorded: Some(rec.clone()),
                derived: None,
                module: None,
                reason: format!(
                    "the snapshot records state {named}, but replay reaches state {actual} here"
                ),
            })));
        }
        self.snapshots_checked += 1;
        Ok(())
    }
}

fn diverged(
    seq: u64,
    rec: Option<&Record>,
    want: Option<&NewRecord>,
    reason: String,
) -> KernelError {
    let module = want
        .and_then(|w| w.body.get("module"))
        .or_else(|| rec.and_then(|r| r.body.get("module")))
        .and_then(Value::as_str)
        .map(str::to_string);
    KernelError::Diverged(Box::new(Divergence {
        seq,
        recorded: rec.cloned(),
        derived: want.cloned(),
        module,
        reason,
    }))
}

/// Why a re-derived record differs from the recorded one (None when they agree).
pub fn difference(want: &NewRecord, got: &Record) -> Option<String> {
    if want.kind != got.kind {
        return Some(format!(
            "the journal holds a `{}` record where replay derives a `{}`",
            got.kind, want.kind
        ));
    }
    if want.cause != got.cause {
        return Some(format!(
            "cause {:?} was recorded, replay derives {:?}",
            got.cause, want.cause
        ));
    }
    if want.at_ns != got.at_ns {
        return Some(format!(
            "at_ns {} was recorded, replay derives {}",
            got.at_ns, want.at_ns
        ));
    }
    let skip = records::uncompared_fields(&want.kind);
    let same = match (&want.body, &got.body) {
        (Value::Object(a), Value::Object(b)) if !skip.is_empty() => {
            let keys = |m: &serde_json::Map<String, Value>| {
                m.keys()
                    .filter(|k| !skip.contains(&k.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            keys(a) == keys(b) && keys(a).iter().all(|k| a.get(k) == b.get(k))
        }
        (a, b) => a == b,
    };
    if same {
        return None;
    }
    let fields: Vec<String> = match (&want.body, &got.body) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ks: Vec<&String> = a.keys().chain(b.keys()).collect();
            ks.sort();
            ks.dedup();
            ks.into_iter()
                .filter(|k| !skip.contains(&k.as_str()) && a.get(*k) != b.get(*k))
                .map(|k| format!("`{k}`"))
                .collect()
        }
        _ => vec!["the body".into()],
    };
    Some(format!(
        "the recorded `{}` differs from the re-derived one in {}",
        want.kind,
        fields.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(kind: &str, body: Value) -> Record {
        Record {
            seq: 5,
            prev: None,
            at_ns: 7,
            kind: kind.into(),
            cause: vec![4],
            body,
        }
    }

    fn new(kind: &str, body: Value) -> NewRecord {
        NewRecord {
            at_ns: 7,
            kind: kind.into(),
            cause: vec![4],
            body,
        }
    }

    #[test]
    fn identical_records_agree_and_any_field_differs() {
        let body = json!({"event": 4, "reducer": "a/R@1", "state": "blake3:00"});
        assert_eq!(
            difference(
                &new("reducer_stepped", body.clone()),
                &rec("reducer_stepped", body.clone())
            ),
            None
        );
        let other = json!({"event": 4, "reducer": "a/R@1", "state": "blake3:01"});
        let why = difference(
            &new("reducer_stepped", body.clone()),
            &rec("reducer_stepped", other),
        )
        .unwrap();
        assert!(why.contains("`state`"), "{why}");
        let why = difference(
            &new("module_error", body.clone()),
            &rec("reducer_stepped", body.clone()),
        )
        .unwrap();
        assert!(why.contains("module_error"), "{why}");
        let mut late = new("reducer_stepped", body.clone());
        late.at_ns = 8;
        assert!(difference(&late, &rec("reducer_stepped", body.clone()))
            .unwrap()
            .contains("at_ns"));
        let mut cause = new("reducer_stepped", body.clone());
        cause.cause = vec![3];
        assert!(difference(&cause, &rec("reducer_stepped", body))
            .unwrap()
            .contains("cause"));
    }

    #[test]
    fn module_error_messages_are_not_compared_but_codes_are() {
        let a = json!({"event": 4, "code": "trap", "message": "trapped: unreachable at 0x12"});
        let b =
            json!({"event": 4, "code": "trap", "message": "trapped: unreachable (another engine)"});
        assert_eq!(
            difference(&new("module_error", a.clone()), &rec("module_error", b)),
            None
        );
        let c =
            json!({"event": 4, "code": "out_of_fuel", "message": "trapped: unreachable at 0x12"});
        assert!(difference(&new("module_error", a), &rec("module_error", c)).is_some());
    }
}
