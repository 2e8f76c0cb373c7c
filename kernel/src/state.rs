//! The world state the stepper keeps: the manifest in force, the step limits, and every
//! reducer's state (one value, or one cell per key). Its snapshot form is content
//! addressed: each state is an object, a keyed reducer's cells sit behind a cell-index
//! object, and the snapshot object naming all of them is the world's state hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use air_fmt::Name;
use aos_store::canon;
use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::wasm::Limits;

/// A state value as canonical JSON bytes, with their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Arc<[u8]>,
    pub hash: Hash,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        let hash = Hash::of(&bytes);
        Blob {
            bytes: bytes.into(),
            hash,
        }
    }

    pub fn value(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| format!("state {} is not JSON: {e}", self.hash))
    }
}

/// One cell of a keyed reducer.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The key value (canonical against the key schema).
    pub key: Value,
    pub state: Blob,
}

/// What one reducer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum ReducerState {
    Single(Blob),
    /// Cells by the canonical JSON bytes of their key.
    Cells(BTreeMap<Vec<u8>, Cell>),
}

/// An allowed effect intent still waiting for its receipt (open work).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenIntent {
    /// The seq of its `effect_intent` record.
    pub seq: u64,
    pub kind: String,
    /// Canonical against the effect's params schema.
    pub params: Value,
    pub grant: String,
    pub idempotency_key: String,
    /// `{"kind": "reducer", "name": …, "key"?: …}`.
    pub origin: Value,
    /// The manifest it was allowed under, recorded when an apply swaps the manifest
    /// while the intent is open (so it is dispatched under the grants that allowed it).
    pub manifest: Option<Hash>,
}

impl OpenIntent {
    fn to_json(&self, hash: &Hash) -> Value {
        let mut v = json!({
            "intent_hash": hash,
            "seq": canon::u64_value(self.seq),
            "kind": self.kind,
            "params": self.params,
            "grant": self.grant,
            "idempotency_key": self.idempotency_key,
            "origin": self.origin,
        });
        if let (Some(m), Value::Object(o)) = (&self.manifest, &mut v) {
            o.insert("manifest".into(), json!(m));
        }
        v
    }

    fn from_json(v: &Value) -> Result<(Hash, OpenIntent), String> {
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("open work entry has no `{k}`"))
        };
        let seq = match v.get("seq") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or("open work entry has no `seq`")?;
        Ok((
            hash_field(v.get("intent_hash").unwrap_or(&Value::Null), "intent_hash")?,
            OpenIntent {
                seq,
                kind: text("kind")?,
                params: v.get("params").cloned().unwrap_or(Value::Null),
                grant: text("grant")?,
                idempotency_key: text("idempotency_key")?,
                origin: v.get("origin").cloned().unwrap_or(Value::Null),
                manifest: match v.get("manifest") {
                    None | Some(Value::Null) => None,
                    Some(m) => Some(hash_field(m, "manifest")?),
                },
            },
        ))
    }
}

/// Keyed waiters of one schema: event path → canonical value bytes → runs.
pub type KeyedWaiters = BTreeMap<Vec<String>, BTreeMap<Vec<u8>, std::collections::BTreeSet<u64>>>;

/// A plan run in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRun {
    pub plan: Name,
    /// The manifest it started under (it finishes under it).
    pub manifest: Hash,
    pub input: Value,
    pub vars: BTreeMap<String, Value>,
    /// What each finished step produced (`@step:ID`).
    pub steps: BTreeMap<String, Value>,
    pub done: std::collections::BTreeSet<String>,
    /// The `await_receipt` step it is parked on, with the handle it waits for.
    pub waiting: Option<(String, Hash)>,
    /// Receipts of its intents that have arrived, by handle.
    pub receipts: BTreeMap<Hash, Value>,
    /// The `await_event` step it is parked on, with the event schema it waits for.
    pub awaiting: Option<(String, Name)>,
    /// The trigger's `correlate_by` value, for correlated runs.
    pub correlation: Option<Value>,
    /// When the awaited event's `where` is `eq(@event.PATH, X)` with X independent of
    /// the event: PATH and X's value, so the run is found by that value.
    pub await_key: Option<(Vec<String>, Value)>,
}

impl PlanRun {
    fn to_json(&self, run: u64) -> Value {
        json!({
            "run": canon::u64_value(run),
            "plan": self.plan,
            "manifest": self.manifest,
            "input": self.input,
            "vars": self.vars,
            "steps": self.steps,
            "done": self.done,
            "waiting": self.waiting.as_ref().map(|(s, h)| json!({"step": s, "handle": h})),
            "receipts": self.receipts.iter().map(|(h, v)| json!({"handle": h, "value": v})).collect::<Vec<_>>(),
            "awaiting": self.awaiting.as_ref().map(|(s, e)| json!({"step": s, "event": e})),
            "correlation": self.correlation,
            "await_key": self.await_key.as_ref().map(|(p, v)| json!({"path": p, "value": v})),
        })
    }

    fn from_json(v: &Value) -> Result<(u64, PlanRun), String> {
        let num = |x: Option<&Value>| match x {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let run = num(v.get("run")).ok_or("a plan run has no `run`")?;
        let plan = v
            .get("plan")
            .and_then(Value::as_str)
            .and_then(|s| Name::parse(s).ok())
            .ok_or("a plan run has no `plan`")?;
        let map = |k: &str| -> BTreeMap<String, Value> {
            v.get(k)
                .and_then(Value::as_object)
                .map(|o| o.iter().map(|(a, b)| (a.clone(), b.clone())).collect())
                .unwrap_or_default()
        };
        let done = v
            .get("done")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let waiting = match v.get("waiting") {
            Some(Value::Object(w)) => Some((
                w.get("step")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                hash_field(w.get("handle").unwrap_or(&Value::Null), "handle")?,
            )),
            _ => None,
        };
        let mut receipts = BTreeMap::new();
        for r in v
            .get("receipts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            receipts.insert(
                hash_field(r.get("handle").unwrap_or(&Value::Null), "handle")?,
                r.get("value").cloned().unwrap_or(Value::Null),
            );
        }
        Ok((
            run,
            PlanRun {
                plan,
                manifest: hash_field(v.get("manifest").unwrap_or(&Value::Null), "manifest")?,
                input: v.get("input").cloned().unwrap_or(Value::Null),
                vars: map("vars"),
                steps: map("steps"),
                done,
                waiting,
                receipts,
                awaiting: match v.get("awaiting") {
                    Some(Value::Object(w)) => Some((
                        w.get("step")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        w.get("event")
                            .and_then(Value::as_str)
                            .and_then(|s| Name::parse(s).ok())
                            .ok_or("a plan run awaits an event without a valid schema")?,
                    )),
                    _ => None,
                },
                correlation: v.get("correlation").cloned().filter(|c| !c.is_null()),
                await_key: match v.get("await_key") {
                    Some(Value::Object(k)) => Some((
                        k.get("path")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                                    .collect()
                            })
                            .unwrap_or_default(),
                        k.get("value").cloned().unwrap_or(Value::Null),
                    )),
                    _ => None,
                },
            },
        ))
    }
}

/// Everything derived state the kernel keeps between inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldState {
    pub manifest: Option<Hash>,
    pub limits: Limits,
    pub reducers: BTreeMap<Name, ReducerState>,
    /// Allowed intents without a receipt, by intent hash.
    pub open: BTreeMap<Hash, OpenIntent>,
    /// Plan runs in flight, by run id (the seq of their `plan_started` record).
    pub runs: BTreeMap<u64, PlanRun>,
    /// Runs parked on `await_event`, by the event schema they wait for: derived from
    /// `runs` (not part of the snapshot), so an event touches only its own waiters.
    pub waiters: BTreeMap<Name, std::collections::BTreeSet<u64>>,
    /// Runs whose wait is keyed (`await_key`), by schema, event path and the canonical
    /// bytes of the value: an event reaches only the runs its own value names.
    pub keyed_waiters: BTreeMap<Name, KeyedWaiters>,
    /// Governance settings and proposals.
    pub governance: crate::governance::Book,
}

impl WorldState {
    /// Index a parked run under its wait (keyed when it has an `await_key`).
    pub fn index_waiter(&mut self, run: u64) {
        let Some(r) = self.runs.get(&run) else { return };
        let Some((_, schema)) = &r.awaiting else {
            return;
        };
        match &r.await_key {
            Some((path, value)) => {
                let kb = canon::value_to_vec(value).unwrap_or_default();
                self.keyed_waiters
                    .entry(schema.clone())
                    .or_default()
                    .entry(path.clone())
                    .or_default()
                    .entry(kb)
                    .or_default()
                    .insert(run);
            }
            None => {
                self.waiters.entry(schema.clone()).or_default().insert(run);
            }
        }
    }

    /// Remove a run from the wait indexes (before its wait changes or it ends).
    pub fn unindex_waiter(&mut self, run: u64) {
        let Some(r) = self.runs.get(&run) else { return };
        let Some((_, schema)) = r.awaiting.clone() else {
            return;
        };
        if let Some((path, value)) = r.await_key.clone() {
            let kb = canon::value_to_vec(&value).unwrap_or_default();
            if let Some(paths) = self.keyed_waiters.get_mut(&schema) {
                if let Some(vals) = paths.get_mut(&path) {
                    if let Some(set) = vals.get_mut(&kb) {
                        set.remove(&run);
                        if set.is_empty() {
                            vals.remove(&kb);
                        }
                    }
                    if vals.is_empty() {
                        paths.remove(&path);
                    }
                }
                if paths.is_empty() {
                    self.keyed_waiters.remove(&schema);
                }
            }
        } else if let Some(set) = self.waiters.get_mut(&schema) {
            set.remove(&run);
            if set.is_empty() {
                self.waiters.remove(&schema);
            }
        }
    }

    /// The runs an event of `schema` with `value` may wake, in run order: the unkeyed
    /// waiters of the schema and the keyed ones its value names.
    pub fn waiters_for(&self, schema: &Name, value: &Value) -> Vec<u64> {
        let mut out: std::collections::BTreeSet<u64> =
            self.waiters.get(schema).cloned().unwrap_or_default();
        if let Some(paths) = self.keyed_waiters.get(schema) {
            for (path, vals) in paths {
                let mut v = value;
                let mut found = true;
                for seg in path {
                    match v.get(seg.as_str()) {
                        Some(x) => v = x,
                        None => {
                            found = false;
                            break;
                        }
                    }
                }
                if !found {
                    continue;
                }
                let kb = canon::value_to_vec(v).unwrap_or_default();
                if let Some(set) = vals.get(&kb) {
                    out.extend(set.iter().copied());
                }
            }
        }
        out.into_iter().collect()
    }
}

/// A snapshot as objects: the snapshot value and every object it names.
pub struct SnapshotObjects {
    pub snapshot: Value,
    pub bytes: Vec<u8>,
    pub hash: Hash,
    /// States and cell indexes, by hash.
    pub objects: Vec<(Hash, Arc<[u8]>)>,
}

impl WorldState {
    pub fn new(limits: Limits) -> WorldState {
        WorldState {
            manifest: None,
            limits,
            reducers: BTreeMap::new(),
            open: BTreeMap::new(),
            runs: BTreeMap::new(),
            waiters: BTreeMap::new(),
            keyed_waiters: BTreeMap::new(),
            governance: Default::default(),
        }
    }

    /// The snapshot value and its objects. The snapshot's hash is the state hash.
    pub fn snapshot(&self) -> SnapshotObjects {
        let mut objects = Vec::new();
        let mut reducers = Map::new();
        for (name, st) in &self.reducers {
            let entry = match st {
                ReducerState::Single(b) => {
                    objects.push((b.hash, b.bytes.clone()));
                    json!({ "state": b.hash })
                }
                ReducerState::Cells(cells) => {
                    let mut list = Vec::with_capacity(cells.len());
                    for c in cells.values() {
                        objects.push((c.state.hash, c.state.bytes.clone()));
                        list.push(json!({ "key": c.key, "state": c.state.hash }));
                    }
                    let index = cell_index_bytes(&list);
                    let hash = Hash::of(&index);
                    objects.push((hash, index.into()));
                    json!({ "cells": hash, "count": cells.len() })
                }
            };
            reducers.insert(name.to_string(), entry);
        }
        let mut snapshot = json!({
            "version": 1,
            "manifest": self.manifest,
            "limits": limits_json(&self.limits),
            "reducers": reducers,
            "open_work": self.open_work(),
            "plan_runs": self.runs.iter().map(|(id, r)| r.to_json(*id)).collect::<Vec<_>>(),
        });
        // Left out when it holds only defaults, so worlds that never used governance
        // keep the state hashes they had.
        if let (false, Value::Object(o)) = (self.governance.is_default(), &mut snapshot) {
            o.insert("governance".into(), self.governance.to_json());
        }
        let bytes = canon::value_to_vec(&snapshot).unwrap_or_default();
        let hash = Hash::of(&bytes);
        SnapshotObjects {
            snapshot,
            bytes,
            hash,
            objects,
        }
    }

    /// Open intents in the order they were emitted.
    pub fn open_work(&self) -> Vec<Value> {
        let mut list: Vec<(&Hash, &OpenIntent)> = self.open.iter().collect();
        list.sort_by_key(|(_, o)| o.seq);
        list.into_iter().map(|(h, o)| o.to_json(h)).collect()
    }

    /// The state hash: the hash of the snapshot object this state would write.
    pub fn hash(&self) -> Hash {
        self.snapshot().hash
    }

    /// Rebuild a state from a snapshot value, fetching the objects it names.
    pub fn from_snapshot(
        snapshot: &Value,
        fetch: &mut dyn FnMut(&Hash) -> Result<Vec<u8>, String>,
    ) -> Result<WorldState, String> {
        if snapshot.get("version").and_then(Value::as_u64) != Some(1) {
            return Err("unknown snapshot version (this aos reads version 1)".into());
        }
        let manifest = match snapshot.get("manifest") {
            None | Some(Value::Null) => None,
            Some(v) => Some(hash_field(v, "manifest")?),
        };
        let limits = limits_from_json(snapshot.get("limits").unwrap_or(&Value::Null))?;
        let mut reducers = BTreeMap::new();
        let list = snapshot
            .get("reducers")
            .and_then(Value::as_object)
            .ok_or("the snapshot has no `reducers` object")?;
        for (name, entry) in list {
            let name = Name::parse(name).map_err(|e| format!("reducer {name:?}: {e}"))?;
            let st = if let Some(h) = entry.get("state") {
                ReducerState::Single(fetch_blob(fetch, &hash_field(h, "state")?)?)
            } else if let Some(h) = entry.get("cells") {
                let index = fetch_blob(fetch, &hash_field(h, "cells")?)?;
                let index: Value = serde_json::from_slice(&index.bytes)
                    .map_err(|e| format!("cell index of {name} is not JSON: {e}"))?;
                let mut cells = BTreeMap::new();
                for c in index
                    .get("cells")
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("cell index of {name} has no `cells` list"))?
                {
                    let key = c.get("key").cloned().unwrap_or(Value::Null);
                    let state = fetch_blob(
                        fetch,
                        &hash_field(c.get("state").unwrap_or(&Value::Null), "state")?,
                    )?;
                    let kb = canon::value_to_vec(&key).map_err(|e| e.to_string())?;
                    cells.insert(kb, Cell { key, state });
                }
                ReducerState::Cells(cells)
            } else {
                return Err(format!("reducer {name} has neither `state` nor `cells`"));
            };
            reducers.insert(name, st);
        }
        let mut open = BTreeMap::new();
        for entry in snapshot
            .get("open_work")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (h, o) = OpenIntent::from_json(entry)?;
            open.insert(h, o);
        }
        let mut runs = BTreeMap::new();
        for entry in snapshot
            .get("plan_runs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (id, r) = PlanRun::from_json(entry)?;
            runs.insert(id, r);
        }
        let ids: Vec<u64> = runs.keys().copied().collect();
        let mut state = WorldState {
            manifest,
            limits,
            reducers,
            open,
            runs,
            waiters: BTreeMap::new(),
            keyed_waiters: BTreeMap::new(),
            governance: match snapshot.get("governance") {
                None | Some(Value::Null) => Default::default(),
                Some(g) => crate::governance::Book::from_json(g)?,
            },
        };
        for id in ids {
            state.index_waiter(id);
        }
        Ok(state)
    }
}

fn cell_index_bytes(list: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + list.len() * 96);
    out.extend_from_slice(br#"{"cells":["#);
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Keys and hashes are canonical values already; this cannot fail.
        let _ = canon::write_value(&mut out, c);
    }
    out.extend_from_slice(b"]}");
    out
}

fn fetch_blob(
    fetch: &mut dyn FnMut(&Hash) -> Result<Vec<u8>, String>,
    hash: &Hash,
) -> Result<Blob, String> {
    let bytes = fetch(hash)?;
    let blob = Blob::new(bytes);
    if blob.hash != *hash {
        return Err(format!("object {hash} hashes to {}", blob.hash));
    }
    Ok(blob)
}

fn hash_field(v: &Value, what: &str) -> Result<Hash, String> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("`{what}` is {v}, not a hash"))
}

/// The limits as recorded in the genesis record and in snapshots.
pub fn limits_json(l: &Limits) -> Value {
    json!({
        "fuel_per_step": canon::u64_value(l.fuel_per_step),
        "memory_bytes": canon::u64_value(l.memory_bytes as u64),
        "table_elements": canon::u64_value(l.table_elements as u64),
        "max_output_bytes": canon::u64_value(l.max_output_bytes as u64),
    })
}

/// Read recorded limits; absent fields take the defaults (`null` means all defaults).
pub fn limits_from_json(v: &Value) -> Result<Limits, String> {
    let mut l = Limits::default();
    if v.is_null() {
        return Ok(l);
    }
    let o = v.as_object().ok_or("`limits` must be an object")?;
    let get = |k: &str| -> Result<Option<u64>, String> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("limits.{k} must be a whole number")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("limits.{k} must be a whole number")),
            Some(other) => Err(format!("limits.{k} is {other}; it must be a whole number")),
        }
    };
    if let Some(x) = get("fuel_per_step")? {
        l.fuel_per_step = x;
    }
    if let Some(x) = get("memory_bytes")? {
        l.memory_bytes = x as usize;
    }
    if let Some(x) = get("table_elements")? {
        l.table_elements = x as usize;
    }
    if let Some(x) = get("max_output_bytes")? {
        l.max_output_bytes = x as usize;
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(v: Value) -> Blob {
        Blob::new(canon::value_to_vec(&v).unwrap())
    }

    fn sample() -> WorldState {
        let mut s = WorldState::new(Limits {
            fuel_per_step: 12_345,
            ..Limits::default()
        });
        s.manifest = Some(Hash::of(b"manifest"));
        s.reducers.insert(
            Name::parse("a/Single@1").unwrap(),
            ReducerState::Single(blob(json!({"n": 1}))),
        );
        let mut cells = BTreeMap::new();
        for k in ["b", "a", "c"] {
            let key = json!(k);
            cells.insert(
                canon::value_to_vec(&key).unwrap(),
                Cell {
                    key,
                    state: blob(json!({"title": k})),
                },
            );
        }
        s.reducers.insert(
            Name::parse("a/Cells@1").unwrap(),
            ReducerState::Cells(cells),
        );
        s
    }

    #[test]
    fn a_snapshot_round_trips_through_its_objects() {
        let s = sample();
        let snap = s.snapshot();
        let objects: BTreeMap<Hash, Vec<u8>> =
            snap.objects.iter().map(|(h, b)| (*h, b.to_vec())).collect();
        // Two states of the cells, one single state... every object hashes to its name.
        for (h, b) in &objects {
            assert_eq!(Hash::of(b), *h);
        }
        let mut fetch = |h: &Hash| {
            objects
                .get(h)
                .cloned()
                .ok_or_else(|| format!("missing {h}"))
        };
        let back = WorldState::from_snapshot(&snap.snapshot, &mut fetch).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.hash(), s.hash());
        assert_eq!(
            snap.hash,
            Hash::of(&canon::value_to_vec(&snap.snapshot).unwrap())
        );
    }

    #[test]
    fn the_state_hash_changes_with_any_state_and_with_the_limits() {
        let s = sample();
        let mut t = sample();
        if let Some(ReducerState::Cells(c)) = t.reducers.get_mut(&Name::parse("a/Cells@1").unwrap())
        {
            let first = c.values_mut().next().unwrap();
            first.state = blob(json!({"title": "changed"}));
        }
        assert_ne!(s.hash(), t.hash());
        let mut u = sample();
        u.limits.fuel_per_step += 1;
        assert_ne!(s.hash(), u.hash());
    }

    #[test]
    fn a_snapshot_with_a_forged_object_is_refused() {
        let s = sample();
        let snap = s.snapshot();
        let mut fetch = |_: &Hash| Ok(b"{\"n\":2}".to_vec());
        let err = WorldState::from_snapshot(&snap.snapshot, &mut fetch).unwrap_err();
        assert!(err.contains("hashes to"), "{err}");
    }

    #[test]
    fn limits_read_back_and_bad_limits_are_named() {
        let l = Limits {
            fuel_per_step: u64::MAX,
            ..Limits::default()
        };
        assert_eq!(limits_from_json(&limits_json(&l)).unwrap(), l);
        assert_eq!(limits_from_json(&Value::Null).unwrap(), Limits::default());
        let err = limits_from_json(&json!({"fuel_per_step": -1})).unwrap_err();
        assert!(err.contains("fuel_per_step"), "{err}");
    }
}
