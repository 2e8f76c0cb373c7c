//! A world opened for stepping: the store's [`World`] plus a [`Kernel`] brought up to
//! the journal's head. Opening starts from the freshest trustworthy point — the state
//! cache, else the latest snapshot, else genesis — and replays only the tail, checking
//! every re-derived record on the way. Writers inject events (validated, journaled with
//! everything they cause in one group commit), take snapshots and keep the cache.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;

use air_fmt::Name;
use aos_store::journal::{now_ns, NewRecord, Record};
use aos_store::objects::ObjectStore;
use aos_store::world::{Access, World};
use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::error::{KernelError, Result};
use crate::records::{DOMAIN_EVENT, EFFECT_RECEIPT, PLAN_START, SNAPSHOT};

use crate::replay::Replayer;
use crate::state::{OpenIntent, WorldState};
use crate::stepper::Kernel;
use crate::wasm::Limits;
use aos_store::receipt::Receipt;

/// Records between automatic snapshots unless config `snapshot_every` says otherwise.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;

/// Where replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The state cache or the latest snapshot, whichever is newer and valid.
    Latest,
    /// The latest snapshot (never the cache).
    Snapshot,
    /// Seq 0.
    Genesis,
}

#[derive(Debug, Clone, Copy)]
pub struct BootOptions {
    pub start: Start,
    /// Stop after this seq (the state as of it); `None`: the whole journal.
    pub until: Option<u64>,
    /// Check each snapshot record's state hash on the way.
    pub verify_snapshots: bool,
}

impl Default for BootOptions {
    fn default() -> BootOptions {
        BootOptions {
            start: Start::Latest,
            until: None,
            verify_snapshots: false,
        }
    }
}

/// Where a boot started and what it replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    Genesis,
    Snapshot { seq: u64, hash: Hash },
    Cache { seq: u64 },
}

#[derive(Debug, Clone)]
pub struct Boot {
    pub from: From,
    /// Records read and checked.
    pub replayed: u64,
    pub inputs: u64,
    pub derived: u64,
    pub snapshots_checked: u64,
}

/// One event to inject.
#[derive(Debug, Clone)]
pub struct EventIn {
    pub schema: Name,
    pub value: Value,
    pub key: Option<Value>,
}

/// An injected event and the records it caused, as journaled.
#[derive(Debug, Clone)]
pub struct Injected {
    pub seq: u64,
    pub derived: Vec<(u64, NewRecord)>,
}

pub struct Session {
    pub world: World,
    pub kernel: Kernel,
    pub boot: Boot,
    /// Derived records the journal is missing (a crash between an input and its
    /// consequences); [`Session::complete`] appends them.
    pending: Vec<NewRecord>,
    last_snapshot: u64,
    /// Set when memory and journal may disagree (a failed append); nothing more is
    /// written through this session.
    poisoned: bool,
}

impl Session {
    /// Open the world at `root` and bring the kernel to its head (or to `until`).
    /// `progress(done, total)` is called as records are replayed.
    pub fn open(
        root: &std::path::Path,
        access: Access,
        opts: BootOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Session> {
        let world = World::open(root, access)?;
        let mut kernel = Kernel::new(Some(world.layout.cache().join("wasm")), Limits::default())?;
        kernel.set_receipt_keys(
            world
                .config
                .receipt_keys
                .iter()
                .map(|k| k.public_key.clone())
                .collect(),
        );
        let mut s = Session {
            world,
            kernel,
            boot: Boot {
                from: From::Genesis,
                replayed: 0,
                inputs: 0,
                derived: 0,
                snapshots_checked: 0,
            },
            pending: Vec::new(),
            last_snapshot: 0,
            poisoned: false,
        };
        s.bring_up(opts, progress)?;
        Ok(s)
    }

    fn bring_up(&mut self, opts: BootOptions, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let len = self.world.journal.len();
        let end = opts.until.map_or(len, |u| (u + 1).min(len));
        let snapshots = read_snapshot_index(&self.world.layout.snapshots().join("index"));
        self.last_snapshot = snapshots.last().map_or(0, |(s, _)| *s);
        let mut start = 0;
        if opts.start != Start::Genesis {
            if opts.start == Start::Latest {
                if let Some((seq, state)) = self.cached_state(end) {
                    self.kernel.restore(&self.world.objects, state)?;
                    self.boot.from = From::Cache { seq };
                    start = seq + 1;
                }
            }
            if start == 0 {
                for (seq, hash) in snapshots.iter().rev().filter(|(s, _)| *s < end) {
                    if let Ok(state) = self.load_snapshot(*seq, hash) {
                        self.kernel.restore(&self.world.objects, state)?;
                        self.boot.from = From::Snapshot {
                            seq: *seq,
                            hash: *hash,
                        };
                        start = seq + 1;
                        break;
                    }
                }
            }
        }
        let mut replayer = Replayer::new(opts.verify_snapshots);
        let total = end.saturating_sub(start);
        let mut done = 0u64;
        let mut prev = match start {
            0 => None,
            s => Some(self.world.journal.read(s - 1)?.1),
        };
        let path = self.world.journal.path().to_path_buf();
        let mut lines = self.world.journal.iter_from(start)?;
        while let Some(item) = lines.next_line() {
            let (seq, offset, line) = item?;
            if seq >= end {
                break;
            }
            replayer.feed_line(
                &mut self.kernel,
                &self.world.objects,
                &path,
                seq,
                offset,
                line,
                prev,
            )?;
            prev = Some(Hash::of(line));
            done += 1;
            if done.is_multiple_of(4096) {
                progress(done, total);
            }
        }
        if let Some(s) = replayer.last_snapshot {
            self.last_snapshot = self.last_snapshot.max(s);
        }
        progress(done, total);
        if let Some(u) = opts.until {
            self.kernel.undo_after(u);
        } else {
            self.pending = replayer.take_pending();
        }
        self.boot.replayed = done;
        self.boot.inputs = replayer.inputs;
        self.boot.derived = replayer.derived;
        self.boot.snapshots_checked = replayer.snapshots_checked;
        Ok(())
    }

    /// Derived records missing from the journal (see [`Session::complete`]).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn writable(&self) -> Result<()> {
        if self.poisoned {
            return Err(KernelError::Refused(
                "an earlier write through this session failed; reopen the world".into(),
            ));
        }
        if !self.world.is_writer() {
            return Err(KernelError::Refused("the world is open read-only".into()));
        }
        Ok(())
    }

    /// Journal the derived records a crash left out; returns how many.
    pub fn complete(&mut self) -> Result<usize> {
        self.writable()?;
        if self.pending.is_empty() {
            return Ok(0);
        }
        let n = self.pending.len();
        let recs = std::mem::take(&mut self.pending);
        if let Err(e) = self.world.journal.append(&recs) {
            self.poisoned = true;
            return Err(e.into());
        }
        Ok(n)
    }

    /// Check an event against the manifest without journaling it.
    pub fn prepare(&self, ev: &EventIn) -> Result<(Value, Option<Value>)> {
        self.kernel
            .prepare_event(&ev.schema, &ev.value, ev.key.as_ref())
    }

    /// Validate, step and journal `events` with everything they cause, in one group
    /// commit. A refused event refuses the whole batch (naming it); nothing is written.
    pub fn inject(&mut self, events: &[EventIn], origin: &Value) -> Result<Vec<Injected>> {
        self.writable()?;
        self.complete()?;
        let mut prepared = Vec::with_capacity(events.len());
        for (i, ev) in events.iter().enumerate() {
            let p = self.prepare(ev).map_err(|e| match e {
                KernelError::Refused(m) if events.len() > 1 => {
                    KernelError::Refused(format!("event {}: {m}", i + 1))
                }
                other => other,
            })?;
            prepared.push(p);
        }
        let mut staged: Vec<NewRecord> = Vec::new();
        let mut report = Vec::with_capacity(events.len());
        let base = self.world.journal.len();
        for (ev, (value, key)) in events.iter().zip(prepared) {
            let seq = base + staged.len() as u64;
            let rec = injected_event(seq, now_ns(), &ev.schema, value, key, origin);
            report.push(self.stage(rec, &mut staged)?);
        }
        self.append_staged(&staged)?;
        Ok(report)
    }

    /// Start a run of `plan` by hand with `input` (validated against the plan's input
    /// schema; a refusal writes nothing), journaled as a `plan_start` root with what it
    /// causes.
    pub fn start_plan(&mut self, plan: &Name, input: &Value, origin: &Value) -> Result<Injected> {
        self.writable()?;
        self.complete()?;
        let Some(m) = self.kernel.manifest.clone() else {
            return Err(KernelError::Refused(
                "this world has no manifest, so it has no plans".into(),
            ));
        };
        let value = self
            .kernel
            .plan_input(&m, plan, input)
            .map_err(KernelError::Refused)?;
        self.append_root(
            PLAN_START,
            json!({ "plan": plan, "input": value, "origin": origin }),
        )
    }

    /// Journal a governance record (`proposed`, `approved`, …: a root input) after the
    /// kernel accepted it; nothing is journaled when it refuses.
    pub fn govern(&mut self, kind: &str, body: Value) -> Result<Injected> {
        self.writable()?;
        self.complete()?;
        self.append_root(kind, body)
    }

    /// Process a root input record and journal it with what it derives, in one append.
    fn append_root(&mut self, kind: &str, body: Value) -> Result<Injected> {
        let seq = self.world.journal.len();
        let rec = Record {
            seq,
            prev: None,
            at_ns: now_ns(),
            kind: kind.into(),
            cause: Vec::new(),
            body,
        };
        let mut staged = Vec::new();
        let injected = self.stage(rec, &mut staged)?;
        self.append_staged(&staged)?;
        Ok(injected)
    }

    /// Process the input `rec` (whose seq is the next to be journaled after `staged`)
    /// and stage it with the records it derives; a kernel error poisons the session.
    fn stage(&mut self, rec: Record, staged: &mut Vec<NewRecord>) -> Result<Injected> {
        let seq = rec.seq;
        let derived = match self.kernel.process(&self.world.objects, seq, &rec) {
            Ok(d) => d,
            Err(e) => {
                self.poisoned = true;
                return Err(e);
            }
        };
        let injected = Injected {
            seq,
            derived: derived
                .iter()
                .enumerate()
                .map(|(i, d)| (seq + 1 + i as u64, d.clone()))
                .collect(),
        };
        staged.push(NewRecord {
            at_ns: rec.at_ns,
            kind: rec.kind,
            cause: rec.cause,
            body: rec.body,
        });
        staged.extend(derived);
        Ok(injected)
    }

    /// Journal staged records in one durable append; a failure poisons the session.
    fn append_staged(&mut self, staged: &[NewRecord]) -> Result<()> {
        if let Err(e) = self.world.journal.append(staged) {
            self.poisoned = true;
            return Err(e.into());
        }
        Ok(())
    }

    /// Allowed intents still waiting for a receipt, oldest first.
    pub fn open_intents(&self) -> Vec<(Hash, OpenIntent)> {
        let mut v: Vec<(Hash, OpenIntent)> = self
            .kernel
            .state
            .open
            .iter()
            .map(|(h, o)| (*h, o.clone()))
            .collect();
        v.sort_by_key(|(_, o)| o.seq);
        v
    }

    /// Journal receipts for open intents, each with everything it causes, in one group
    /// commit. A receipt that does not verify is refused (nothing is written); one for
    /// an intent that is not open (a duplicate) is skipped and reported as `None`.
    pub fn accept_receipts(&mut self, receipts: &[Receipt]) -> Result<Vec<Option<Injected>>> {
        self.writable()?;
        self.complete()?;
        let keys: Vec<String> = self
            .world
            .config
            .receipt_keys
            .iter()
            .map(|k| k.public_key.clone())
            .collect();
        for r in receipts {
            r.verify_any(keys.iter().map(String::as_str)).map_err(|e| {
                KernelError::Refused(format!("receipt for intent {}: {e}", r.intent_hash))
            })?;
        }
        let base = self.world.journal.len();
        let mut staged: Vec<NewRecord> = Vec::new();
        let mut report = Vec::with_capacity(receipts.len());
        let mut seen = std::collections::BTreeSet::new();
        for r in receipts {
            let Some(open) = self.kernel.state.open.get(&r.intent_hash) else {
                report.push(None);
                continue;
            };
            if !seen.insert(r.intent_hash) {
                report.push(None);
                continue;
            }
            let seq = base + staged.len() as u64;
            let rec = Record {
                seq,
                prev: None,
                at_ns: now_ns(),
                kind: EFFECT_RECEIPT.into(),
                cause: vec![open.seq],
                body: json!({ "receipt": r.to_json() }),
            };
            report.push(Some(self.stage(rec, &mut staged)?));
        }
        if !staged.is_empty() {
            self.append_staged(&staged)?;
        }
        Ok(report)
    }

    /// Store the current state as objects and journal a `snapshot` record naming it.
    pub fn snapshot(&mut self, reason: &str) -> Result<(u64, Hash)> {
        self.writable()?;
        self.complete()?;
        let snap = self.kernel.state.snapshot();
        let objects = &self.world.objects;
        let mut batch = objects.batch();
        for (h, bytes) in &snap.objects {
            if !objects.contains(h) {
                batch.put_bytes(bytes)?;
            }
        }
        if !objects.contains(&snap.hash) {
            batch.put_bytes(&snap.bytes)?;
        }
        batch.commit()?;
        let rec = NewRecord::now(
            SNAPSHOT,
            Vec::new(),
            json!({ "snapshot": snap.hash, "reason": reason }),
        );
        let head = match self.world.journal.append(&[rec]) {
            Ok(h) => h,
            Err(e) => {
                self.poisoned = true;
                return Err(e.into());
            }
        };
        let seq = head.last().map_or(0, |h| h.seq);
        self.last_snapshot = seq;
        append_snapshot_index(
            &self.world.layout.snapshots().join("index"),
            seq,
            &snap.hash,
        )?;
        Ok((seq, snap.hash))
    }

    /// The configured snapshot interval in records.
    pub fn snapshot_every(&self) -> u64 {
        self.world
            .config
            .extra
            .get("snapshot_every")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_SNAPSHOT_EVERY)
    }

    /// Take a snapshot when `snapshot_every` records have passed since the last one.
    pub fn snapshot_if_due(&mut self) -> Result<Option<(u64, Hash)>> {
        let since = self
            .world
            .journal
            .len()
            .saturating_sub(self.last_snapshot + 1);
        if since >= self.snapshot_every() {
            let every = self.snapshot_every();
            return self.snapshot(&format!("every {every} records")).map(Some);
        }
        Ok(None)
    }

    /// Finish a writing session: a snapshot if one is due, then the state cache that
    /// lets the next open skip replay. The cache is never authoritative.
    pub fn finish(mut self) -> Result<()> {
        if self.poisoned || !self.world.is_writer() || !self.pending.is_empty() {
            return Ok(());
        }
        self.snapshot_if_due()?;
        self.write_cache();
        self.world.journal.sync()?;
        Ok(())
    }

    fn cache_path(&self) -> PathBuf {
        self.world.layout.cache().join("state.json")
    }

    /// Write the state cache (best effort, not synced: it is checked before use).
    fn write_cache(&self) {
        let Some(head) = self.world.journal.head() else {
            return;
        };
        let snap = self.kernel.state.snapshot();
        let mut objs = Map::new();
        for (h, b) in &snap.objects {
            objs.insert(
                h.to_string(),
                Value::String(String::from_utf8_lossy(b).into_owned()),
            );
        }
        let doc = json!({
            "version": 1,
            "seq": aos_store::canon::u64_value(head.seq),
            "hash": head.hash,
            "snapshot": snap.snapshot,
            "objects": objs,
        });
        let Ok(bytes) = serde_json::to_vec(&doc) else {
            return;
        };
        let path = self.cache_path();
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        let _ = fs::create_dir_all(&dir);
        let tmp = aos_store::durable::temp_path(&dir, "state.json");
        if fs::write(&tmp, &bytes).is_ok() && fs::rename(&tmp, &path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// The cached state, if it matches the journal at a seq before `end`.
    fn cached_state(&self, end: u64) -> Option<(u64, WorldState)> {
        let bytes = fs::read(self.cache_path()).ok()?;
        let doc: Value = serde_json::from_slice(&bytes).ok()?;
        let seq = match doc.get("seq")? {
            Value::String(s) => s.parse().ok()?,
            v => v.as_u64()?,
        };
        if seq >= end {
            return None;
        }
        let hash: Hash = doc.get("hash")?.as_str()?.parse().ok()?;
        let (_, actual) = self.world.journal.read(seq).ok()?;
        if actual != hash {
            return None;
        }
        let objs = doc.get("objects")?.as_object()?;
        let store = &self.world.objects;
        let mut fetch = |h: &Hash| -> std::result::Result<Vec<u8>, String> {
            match objs.get(&h.to_string()).and_then(Value::as_str) {
                Some(s) => Ok(s.as_bytes().to_vec()),
                None => store.get(h).map_err(|e| e.to_string()),
            }
        };
        let state = WorldState::from_snapshot(doc.get("snapshot")?, &mut fetch).ok()?;
        Some((seq, state))
    }

    fn load_snapshot(&self, seq: u64, hash: &Hash) -> Result<WorldState> {
        let bad = |reason: String| KernelError::Snapshot { seq, reason };
        let (rec, _) = self.world.journal.read(seq)?;
        let named = rec.body.get("snapshot").and_then(Value::as_str);
        if rec.kind != SNAPSHOT || named != Some(hash.to_string().as_str()) {
            return Err(bad(format!(
                "the journal's record {seq} is not a snapshot of {hash}"
            )));
        }
        load_snapshot_object(&self.world.objects, hash).map_err(bad)
    }
}

/// Read a snapshot object and every object it names.
pub fn load_snapshot_object(
    objects: &ObjectStore,
    hash: &Hash,
) -> std::result::Result<WorldState, String> {
    let bytes = objects.get(hash).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mut fetch = |h: &Hash| objects.get(h).map_err(|e| e.to_string());
    WorldState::from_snapshot(&v, &mut fetch)
}

/// `.aos/snapshots/index`: one `{"seq":S,"snapshot":H}` line per snapshot record, oldest
/// first. An index only: each entry is checked against the journal before use, and a
/// damaged line is skipped.
pub fn read_snapshot_index(path: &std::path::Path) -> Vec<(u64, Hash)> {
    let Ok(text) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, Hash)> = text
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let seq = v.get("seq")?.as_u64()?;
            let h = v.get("snapshot")?.as_str()?.parse().ok()?;
            Some((seq, h))
        })
        .collect();
    out.sort_by_key(|(s, _)| *s);
    out
}

fn append_snapshot_index(path: &std::path::Path, seq: u64, hash: &Hash) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| KernelError::Snapshot {
            seq,
            reason: format!("cannot open {}: {e}", path.display()),
        })?;
    writeln!(f, "{}", json!({ "seq": seq, "snapshot": hash })).map_err(|e| KernelError::Snapshot {
        seq,
        reason: format!("cannot write {}: {e}", path.display()),
    })
}

/// The record of an injected domain event (a root): canonical value, key if any, and
/// who injected it.
pub fn injected_event(
    seq: u64,
    at_ns: u64,
    schema: &Name,
    value: Value,
    key: Option<Value>,
    origin: &Value,
) -> Record {
    let mut body = Map::new();
    body.insert("schema".into(), Value::String(schema.to_string()));
    body.insert("value".into(), value);
    if let Some(k) = key {
        body.insert("key".into(), k);
    }
    body.insert("origin".into(), origin.clone());
    Record {
        seq,
        prev: None,
        at_ns,
        kind: DOMAIN_EVENT.into(),
        cause: Vec::new(),
        body: Value::Object(body),
    }
}
