//! The stepper: takes one input record and derives, in a deterministic order, every
//! record it causes. A domain event is routed (`routing.events`) to each listening
//! reducer in manifest order; each step's domain events are routed in turn, breadth
//! first, until the world is idle. Derived records carry the input's `at_ns` and the
//! seqs of the records that caused them, so re-deriving reproduces them byte for byte.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use air_fmt::value::canonicalize;
use air_fmt::{Name, TypeExpr};
use aos_store::canon;
use aos_store::journal::{NewRecord, Record};
use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::error::{KernelError, Result};
use crate::gates::{self, OriginKind};
use crate::manifest::{ActiveManifest, Route};
use crate::records::*;
use crate::state::{limits_from_json, Blob, Cell, OpenIntent, ReducerState, WorldState};
use crate::wasm::{
    run_reducer_step, Contract, InputState, Limits, ReducerInput, Runtime, StepError,
};
use aos_store::receipt::{Receipt, Status};

/// The most reducer steps one input may cause; a cascade beyond it (reducers feeding
/// each other forever) is stopped and journaled as `cascade_stopped`.
pub const MAX_STEPS_PER_INPUT: usize = 10_000;

/// A change to one reducer state, kept for the last input so a state can be shown as
/// of a seq inside its cascade.
#[derive(Debug)]
struct Change {
    seq: u64,
    reducer: Name,
    key: Option<Vec<u8>>,
    old: Option<Slot>,
}

#[derive(Debug)]
enum Slot {
    Single(Blob),
    Cell(Cell),
}

/// The deterministic core: the runtime, the manifest in force and the world state.
pub struct Kernel {
    pub rt: Runtime,
    pub(crate) cache_dir: Option<PathBuf>,
    pub manifest: Option<Arc<ActiveManifest>>,
    pub state: WorldState,
    changes: Vec<Change>,
    /// Public keys receipts must verify with (the world's and its forebears').
    pub(crate) receipt_keys: Vec<String>,
    /// Manifests by hash: the one in force and those runs in flight started under.
    pub(crate) manifests: std::collections::HashMap<Hash, Arc<ActiveManifest>>,
    /// The seq of the `applied` record that put the manifest in force (none for the
    /// genesis manifest): records that depend on the manifest cite it as a cause.
    pub(crate) applied_at: Option<u64>,
}

/// One event to route: its record seq, schema and canonical value.
pub(crate) struct Pending {
    pub(crate) seq: u64,
    pub(crate) schema: Name,
    pub(crate) value: Value,
    pub(crate) key: Option<Value>,
    /// Delivered to this reducer only (a receipt going back to the reducer that asked
    /// for the effect), not through `routing.events`.
    pub(crate) target: Option<Route>,
}

impl Kernel {
    pub fn new(cache_dir: Option<PathBuf>, limits: Limits) -> Result<Kernel> {
        Ok(Kernel {
            rt: Runtime::new(cache_dir.clone(), limits)?,
            cache_dir,
            manifest: None,
            state: WorldState::new(limits),
            changes: Vec::new(),
            receipt_keys: Vec::new(),
            manifests: Default::default(),
            applied_at: None,
        })
    }

    /// The public keys (`ed25519:…`) a receipt must verify with, one of them.
    pub fn set_receipt_keys(&mut self, keys: Vec<String>) {
        self.receipt_keys = keys;
    }

    /// Replace the state (from a snapshot), loading its manifest and limits.
    pub fn restore(&mut self, objects: &ObjectStore, state: WorldState) -> Result<()> {
        self.set_limits(state.limits)?;
        self.state = state;
        self.manifest = match self.state.manifest {
            Some(h) => Some(self.load_manifest(objects, &h)?),
            None => None,
        };
        let pinned: std::collections::BTreeSet<Hash> = self
            .state
            .runs
            .values()
            .map(|r| r.manifest)
            .chain(self.state.open.values().filter_map(|o| o.manifest))
            .collect();
        for h in pinned {
            self.load_manifest(objects, &h)?;
        }
        self.prune_manifests();
        self.applied_at = self
            .state
            .governance
            .applied_seq_of(self.state.manifest.as_ref());
        self.changes.clear();
        Ok(())
    }

    fn set_limits(&mut self, limits: Limits) -> Result<()> {
        if *self.rt.limits() != limits {
            self.rt = Runtime::new(self.cache_dir.clone(), limits)?;
        }
        self.state.limits = limits;
        Ok(())
    }

    /// Handle the input record at `seq`; returns the records it derives, to be
    /// journaled right after it (their seqs are `seq + 1` onwards).
    pub fn process(
        &mut self,
        objects: &ObjectStore,
        seq: u64,
        rec: &Record,
    ) -> Result<Vec<NewRecord>> {
        self.changes.clear();
        match rec.kind.as_str() {
            WORLD_CREATED if seq == 0 => {
                self.genesis(objects, rec)?;
                Ok(Vec::new())
            }
            DOMAIN_EVENT => self.domain_event(objects, seq, rec),
            EFFECT_RECEIPT => self.receipt(objects, seq, rec),
            PLAN_START => self.plan_start_input(objects, seq, rec),
            crate::governance::PROPOSED
            | crate::governance::SHADOW_REPORT
            | crate::governance::APPROVED
            | crate::governance::REJECTED
            | crate::governance::APPLIED => self.governance_input(objects, seq, rec),
            _ => Ok(Vec::new()),
        }
    }

    fn genesis(&mut self, objects: &ObjectStore, rec: &Record) -> Result<()> {
        let bad = KernelError::in_record(0, rec);
        let limits =
            limits_from_json(rec.body.get("limits").unwrap_or(&Value::Null)).map_err(bad)?;
        let mut state = WorldState::new(limits);
        state.governance.settings = crate::governance::Settings::from_json(
            rec.body.get("governance").unwrap_or(&Value::Null),
        )
        .map_err(bad)?;
        if let Some(m) = rec.body.get("manifest") {
            state.manifest = Some(
                m.as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(format!("`manifest` is {m}, not a hash")))?,
            );
        }
        self.restore(objects, state)
    }

    /// Check an event before it is journaled: the schema is known, the value has its
    /// type, and every keyed route finds its key. Returns the canonical value.
    pub fn prepare_event(
        &self,
        schema: &Name,
        value: &Value,
        key: Option<&Value>,
    ) -> Result<(Value, Option<Value>)> {
        let Some(m) = &self.manifest else {
            return Err(KernelError::Refused(
                "this world has no manifest, so no reducer can take events; create it with `aos init --air DIR`".into(),
            ));
        };
        let Some(ty) = m.schema_ty(schema) else {
            let known: Vec<String> = m.routes.keys().map(|n| n.to_string()).collect();
            return Err(KernelError::Refused(format!(
                "schema {schema} is not in the world's manifest (events routed: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        };
        let _ = ty;
        let canonical =
            canonicalize(value, &TypeExpr::Ref(schema.clone()), &m.schemas()).map_err(|d| {
                KernelError::Refused(format!(
                    "the value is not a {schema}: {}",
                    crate::wasm::show_diags(&d)
                ))
            })?;
        let mut key_out = None;
        for route in m.routes_of(schema) {
            let Some(red) = m.reducer(&route.reducer) else {
                continue;
            };
            let Some(ks) = &red.key_schema else { continue };
            let from_field = route
                .key_path
                .as_ref()
                .and_then(|p| extract(&canonical, p))
                .cloned();
            let given = match key {
                Some(k) => Some(
                    canonicalize(k, &TypeExpr::Ref(ks.clone()), &m.schemas()).map_err(|d| {
                        KernelError::Refused(format!(
                            "--key is not a {ks} (the key schema of {}): {}",
                            red.name,
                            crate::wasm::show_diags(&d)
                        ))
                    })?,
                ),
                None => None,
            };
            match (&from_field, &given) {
                (Some(f), Some(g)) if f != g => {
                    return Err(KernelError::Refused(format!(
                        "--key {g} disagrees with the event's key field `{}` ({f}) for {}",
                        route.key_path.as_deref().unwrap_or_default().join("."),
                        red.name
                    )))
                }
                (None, None) => {
                    return Err(KernelError::Refused(format!(
                        "{} is keyed by {ks}, but the event has no key at `{}`; give the field a value or pass --key K",
                        red.name,
                        route.key_path.as_deref().unwrap_or_default().join(".")
                    )))
                }
                _ => {}
            }
            if from_field.is_none() {
                key_out = given;
            }
        }
        if key.is_some()
            && key_out.is_none()
            && !m.routes_of(schema).iter().any(|r| {
                m.reducer(&r.reducer)
                    .is_some_and(|red| red.key_schema.is_some())
            })
        {
            return Err(KernelError::Refused(format!(
                "--key was given, but no keyed reducer takes {schema}"
            )));
        }
        Ok((canonical, key_out))
    }

    fn domain_event(
        &mut self,
        objects: &ObjectStore,
        seq: u64,
        rec: &Record,
    ) -> Result<Vec<NewRecord>> {
        let bad = KernelError::in_record(seq, rec);
        let Some(m) = self.manifest.clone() else {
            return Err(bad("the world has no manifest to route it".into()));
        };
        let schema = rec
            .body
            .get("schema")
            .and_then(Value::as_str)
            .and_then(|s| Name::parse(s).ok())
            .ok_or_else(|| bad("the body has no valid `schema`".into()))?;
        let value = rec.body.get("value").unwrap_or(&Value::Null);
        let value =
            canonicalize(value, &TypeExpr::Ref(schema.clone()), &m.schemas()).map_err(|d| {
                bad(format!(
                    "the value is not a {schema}: {}",
                    crate::wasm::show_diags(&d)
                ))
            })?;
        let key = rec.body.get("key").cloned();
        let queue = VecDeque::from([Pending {
            seq,
            schema,
            value,
            key,
            target: None,
        }]);
        self.cascade(objects, &m, seq, rec, queue, Vec::new())
    }

    /// Run the cascade of events a plan start queued (for the plans module).
    pub(crate) fn cascade_from(
        &mut self,
        objects: &ObjectStore,
        m: &ActiveManifest,
        seq: u64,
        rec: &Record,
        queue: VecDeque<Pending>,
        out: Vec<NewRecord>,
    ) -> Result<Vec<NewRecord>> {
        self.cascade(objects, m, seq, rec, queue, out)
    }

    /// Step every queued event through its routes, breadth first, until idle.
    fn cascade(
        &mut self,
        objects: &ObjectStore,
        m: &ActiveManifest,
        seq: u64,
        rec: &Record,
        mut queue: VecDeque<Pending>,
        mut out: Vec<NewRecord>,
    ) -> Result<Vec<NewRecord>> {
        let mut steps = 0usize;
        while let Some(ev) = queue.pop_front() {
            let single;
            let routes: &[Route] = match &ev.target {
                Some(r) => {
                    single = [r.clone()];
                    &single
                }
                None => m.routes_of(&ev.schema),
            };
            for route in routes {
                if steps == MAX_STEPS_PER_INPUT {
                    out.push(derived(rec, CASCADE_STOPPED, vec![ev.seq], json!({
                        "event": canon::u64_value(seq),
                        "steps": steps,
                        "reason": format!("more than {MAX_STEPS_PER_INPUT} reducer steps followed from one input; the rest were not run (do reducers emit events to each other in a loop?)"),
                    })));
                    return Ok(out);
                }
                steps += 1;
                self.step(objects, m, route, &ev, seq, rec, &mut out, &mut queue)?;
            }
            if ev.target.is_none() {
                self.wake_waiters(m, &ev, seq, rec, &mut out, &mut queue)?;
                self.start_plans(m, &ev, seq, rec, &mut out, &mut queue)?;
            }
        }
        Ok(out)
    }

    /// A receipt: close its intent and, for a reducer's micro-effect that succeeded,
    /// deliver the result event (`sys/TimerFired@1`, `sys/BlobPutResult@1`,
    /// `sys/BlobGetResult@1`) to that reducer (and cell), then run the cascade. A
    /// plan's receipt wakes its run.
    fn receipt(&mut self, objects: &ObjectStore, seq: u64, rec: &Record) -> Result<Vec<NewRecord>> {
        let bad = KernelError::in_record(seq, rec);
        let receipt = Receipt::from_json(rec.body.get("receipt").unwrap_or(&Value::Null))
            .map_err(|e| bad(e.to_string()))?;
        receipt
            .verify_any(self.receipt_keys.iter().map(String::as_str))
            .map_err(|e| bad(format!("the receipt does not verify: {e}")))?;
        let Some(open) = self.state.open.remove(&receipt.intent_hash) else {
            // Not open (already answered): a duplicate changes nothing.
            return Ok(Vec::new());
        };
        let Some(m) = self.manifest.clone() else {
            return Ok(Vec::new());
        };
        if open.origin.get("kind").and_then(Value::as_str) == Some("plan") {
            let run = match open.origin.get("run") {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            };
            let Some(run) = run else {
                return Ok(Vec::new());
            };
            let mut out = Vec::new();
            let mut queue = VecDeque::new();
            self.plan_receipt(
                &m,
                run,
                receipt.intent_hash,
                receipt.payload.clone(),
                seq,
                rec,
                &mut out,
                &mut queue,
            )?;
            return self.cascade(objects, &m, seq, rec, queue, out);
        }
        let schema = match open.kind.as_str() {
            "timer.set" => "sys/TimerFired@1",
            "blob.put" => "sys/BlobPutResult@1",
            "blob.get" => "sys/BlobGetResult@1",
            _ => return Ok(Vec::new()),
        };
        if open.origin.get("kind").and_then(Value::as_str) != Some("reducer")
            || receipt.status != Status::Ok
        {
            return Ok(Vec::new());
        }
        let Ok(schema) = Name::parse(schema) else {
            return Ok(Vec::new());
        };
        let reducer_name = open
            .origin
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let undeliverable = |reason: String| {
            vec![derived(
                rec,
                ROUTE_ERROR,
                vec![seq],
                json!({
                    "event": canon::u64_value(seq),
                    "reducer": reducer_name,
                    "reason": reason,
                }),
            )]
        };
        let Some(red) = Name::parse(reducer_name).ok().and_then(|n| m.reducer(&n)) else {
            return Ok(undeliverable(format!(
                "{reducer_name} is not a reducer of the manifest in force"
            )));
        };
        let Some(arm) = m.arm_for(red, &schema) else {
            return Ok(undeliverable(format!(
                "{}'s event {} has no arm carrying {schema}; add one to receive the results of its {} effects",
                red.name, red.event_schema, open.kind
            )));
        };
        let value = json!({
            "intent_hash": receipt.intent_hash,
            "reducer": red.name_json,
            "effect_kind": open.kind,
            "adapter_id": receipt.adapter_id,
            "status": receipt.status.as_str(),
            "requested": open.params,
            "receipt": receipt.payload,
            "cost_cents": receipt.cost_cents.map(canon::u64_value),
            "signature": receipt.signature_base64(),
        });
        let value = match canonicalize(&value, &TypeExpr::Ref(schema.clone()), &m.schemas()) {
            Ok(v) => v,
            Err(d) => {
                return Ok(undeliverable(format!(
                    "the receipt is not a {schema}: {}",
                    crate::wasm::show_diags(&d)
                )))
            }
        };
        let key = open.origin.get("key").cloned();
        let mut body = Map::new();
        body.insert("schema".into(), Value::String(schema.to_string()));
        body.insert("value".into(), value.clone());
        let mut to = Map::new();
        to.insert("reducer".into(), red.name_json.clone());
        if let Some(k) = &key {
            to.insert("key".into(), k.clone());
        }
        body.insert("delivered_to".into(), Value::Object(to));
        let out = vec![derived(rec, DOMAIN_EVENT, vec![seq], Value::Object(body))];
        let queue = VecDeque::from([Pending {
            seq: seq + 1,
            schema,
            value,
            key,
            target: Some(Route {
                reducer: red.name.clone(),
                key_path: None,
                arm: Some(arm),
            }),
        }]);
        self.cascade(objects, &m, seq, rec, queue, out)
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        objects: &ObjectStore,
        m: &ActiveManifest,
        route: &Route,
        ev: &Pending,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<()> {
        let Some(red) = m.reducer(&route.reducer) else {
            return Ok(());
        };
        // The seq the first record of this step will get.
        let next = base + 1 + out.len() as u64;
        let key = if red.key_schema.is_some() {
            let k = match &route.key_path {
                Some(p) => extract(&ev.value, p).cloned(),
                None => None,
            }
            .or_else(|| ev.key.clone());
            match k {
                Some(k) => Some(k),
                None => {
                    out.push(derived(input, ROUTE_ERROR, vec![ev.seq], json!({
                        "event": canon::u64_value(ev.seq),
                        "reducer": red.name_json,
                        "reason": format!("{} is keyed, but the event has no key at `{}`", red.name, route.key_path.as_deref().unwrap_or_default().join(".")),
                    })));
                    return Ok(());
                }
            }
        } else {
            None
        };
        let key_bytes = match &key {
            Some(k) => Some(canon::value_to_vec(k).map_err(|e| KernelError::Step(e.to_string()))?),
            None => None,
        };
        self.ensure_loaded(objects, &red.module)?;
        let current: Option<&Blob> = match (self.state.reducers.get(&red.name), &key_bytes) {
            (Some(ReducerState::Single(b)), None) => Some(b),
            (Some(ReducerState::Cells(cells)), Some(kb)) => cells.get(kb).map(|c| &c.state),
            _ => None,
        };
        let wrapped;
        let event = match &route.arm {
            Some(tag) => {
                wrapped = json!({ "$tag": tag, "$value": ev.value });
                &wrapped
            }
            None => &ev.value,
        };
        let schemas = m.schemas();
        let contract = Contract {
            schemas: &schemas,
            state: Cow::Borrowed(&red.state_ty),
            event: None,
            domain_events: Cow::Borrowed(&m.emittable),
            effects: Cow::Borrowed(&red.effects),
        };
        let step_input = ReducerInput {
            state: current.map_or(InputState::Null, |b| InputState::Canonical(&b.bytes)),
            event_schema: &red.event_schema,
            event,
            now_ns: input.at_ns,
            key: key.as_ref(),
            cell_mode: red.key_schema.is_some(),
        };
        let result = run_reducer_step(&self.rt, &red.module, &contract, &step_input, ev.seq);
        let mut body = Map::new();
        body.insert("event".into(), canon::u64_value(ev.seq));
        body.insert("reducer".into(), red.name_json.clone());
        body.insert("module".into(), red.module_json.clone());
        if let Some(k) = &key {
            body.insert("key".into(), k.clone());
        }
        let output = match result {
            Ok(o) => o,
            Err(StepError::Fault { fault, .. }) => {
                body.insert("code".into(), json!(fault.code()));
                body.insert(
                    "message".into(),
                    json!(format!("module {} {fault}", red.module)),
                );
                out.push(derived(
                    input,
                    MODULE_ERROR,
                    vec![ev.seq],
                    Value::Object(body),
                ));
                return Ok(());
            }
            Err(e @ StepError::Kernel { .. }) => return Err(KernelError::Step(e.to_string())),
        };
        let new_state = match &output.state {
            Some(v) => Some(Blob::new(
                canon::value_to_vec(v).map_err(|e| KernelError::Step(e.to_string()))?,
            )),
            None => None,
        };
        body.insert(
            "state".into(),
            new_state
                .as_ref()
                .map_or(Value::Null, |b| Value::String(b.hash.to_string())),
        );
        if let Some(a) = &output.ann {
            body.insert("ann".into(), a.clone());
        }
        out.push(derived(
            input,
            REDUCER_STEPPED,
            self.causes(ev.seq),
            Value::Object(body),
        ));
        self.apply(next, &red.name, key.as_ref(), key_bytes, new_state);
        let origin = {
            let mut o = Map::new();
            o.insert("reducer".into(), red.name_json.clone());
            if let Some(k) = &key {
                o.insert("key".into(), k.clone());
            }
            Value::Object(o)
        };
        for d in output.domain_events {
            let this = base + 1 + out.len() as u64;
            out.push(derived(
                input,
                DOMAIN_EVENT,
                vec![next],
                json!({
                    "schema": d.schema,
                    "value": d.value,
                    "emitted_by": origin,
                }),
            ));
            queue.push_back(Pending {
                seq: this,
                schema: d.schema,
                value: d.value,
                key: None,
                target: None,
            });
        }
        for (i, e) in output.effects.into_iter().enumerate() {
            let mut origin = Map::new();
            origin.insert("kind".into(), json!(OriginKind::Reducer.as_str()));
            origin.insert("name".into(), red.name_json.clone());
            if let Some(k) = &key {
                origin.insert("key".into(), k.clone());
            }
            let origin = Value::Object(origin);
            let idem = Hash::of(
                &canon::value_to_vec(
                    &json!({"origin": origin, "cause": canon::u64_value(next), "index": i}),
                )
                .unwrap_or_default(),
            )
            .to_string();
            let grant = gates::grant_for_slot(&m.set, &red.name, e.cap_slot.as_deref());
            let grant_name = grant.as_ref().ok().cloned();
            let intent_hash = Hash::of(
                &canon::value_to_vec(&json!({
                    "kind": e.kind,
                    "params": e.params,
                    "grant": grant_name,
                    "idempotency_key": idem,
                }))
                .unwrap_or_default(),
            );
            let intent_seq = base + 1 + out.len() as u64;
            out.push(derived(
                input,
                EFFECT_INTENT,
                vec![next],
                json!({
                    "kind": e.kind,
                    "params": e.params,
                    "cap_slot": e.cap_slot,
                    "grant": grant_name,
                    "idempotency_key": idem,
                    "intent_hash": intent_hash,
                    "origin": origin,
                }),
            ));
            let who = gates::Origin {
                kind: OriginKind::Reducer,
                name: &red.name,
            };
            let (cap, policy) = gate(m, &grant, &e.kind, &e.params, &who, input.at_ns);
            let allowed = cap.allowed && policy.allowed;
            out.push(derived(
                input,
                POLICY_DECISION,
                vec![intent_seq],
                json!({
                    "intent_hash": intent_hash,
                    "allowed": allowed,
                    "cap": cap.to_json(),
                    "policy": policy.to_json(),
                }),
            ));
            if let (true, Some(g)) = (allowed, grant_name) {
                self.state.open.insert(
                    intent_hash,
                    OpenIntent {
                        seq: intent_seq,
                        kind: e.kind,
                        params: e.params,
                        grant: g,
                        idempotency_key: idem,
                        origin,
                        manifest: None,
                    },
                );
            }
        }
        Ok(())
    }
}

impl Kernel {
    /// The causes of a record that `seq` caused under the manifest in force: `seq`, and
    /// the `applied` record that put the manifest in force, if any.
    pub(crate) fn causes(&self, seq: u64) -> Vec<u64> {
        match self.applied_at {
            Some(a) if a != seq => vec![seq, a],
            _ => vec![seq],
        }
    }

    fn ensure_loaded(&self, objects: &ObjectStore, module: &Hash) -> Result<()> {
        if self.rt.load_cached(module)? {
            return Ok(());
        }
        let bytes = objects.get(module)?;
        self.rt.load(module, &bytes)?;
        Ok(())
    }

    /// Set a reducer's (or cell's) state, remembering the old one for `undo_after`.
    fn apply(
        &mut self,
        seq: u64,
        reducer: &Name,
        key: Option<&Value>,
        key_bytes: Option<Vec<u8>>,
        new: Option<Blob>,
    ) {
        let old = match (&key_bytes, key) {
            (Some(kb), Some(k)) => {
                let entry = self
                    .state
                    .reducers
                    .entry(reducer.clone())
                    .or_insert_with(|| ReducerState::Cells(Default::default()));
                if let ReducerState::Single(_) = entry {
                    *entry = ReducerState::Cells(Default::default());
                }
                let ReducerState::Cells(cells) = entry else {
                    return;
                };
                let old = match new {
                    Some(state) => cells.insert(
                        kb.clone(),
                        Cell {
                            key: k.clone(),
                            state,
                        },
                    ),
                    None => cells.remove(kb),
                };
                if cells.is_empty() {
                    self.state.reducers.remove(reducer);
                }
                old.map(Slot::Cell)
            }
            _ => {
                let old = match new {
                    Some(b) => self
                        .state
                        .reducers
                        .insert(reducer.clone(), ReducerState::Single(b)),
                    None => self.state.reducers.remove(reducer),
                };
                match old {
                    Some(ReducerState::Single(b)) => Some(Slot::Single(b)),
                    _ => None,
                }
            }
        };
        self.changes.push(Change {
            seq,
            reducer: reducer.clone(),
            key: key_bytes,
            old,
        });
    }

    /// Undo the last input's state changes made by records after `seq`, so the state is
    /// as of `seq` even when it falls inside a cascade.
    pub fn undo_after(&mut self, seq: u64) {
        while self.changes.last().is_some_and(|c| c.seq > seq) {
            let Some(c) = self.changes.pop() else { break };
            match (c.key, c.old) {
                (Some(kb), old) => {
                    let entry = self
                        .state
                        .reducers
                        .entry(c.reducer.clone())
                        .or_insert_with(|| ReducerState::Cells(Default::default()));
                    if let ReducerState::Cells(cells) = entry {
                        match old {
                            Some(Slot::Cell(cell)) => {
                                cells.insert(kb, cell);
                            }
                            _ => {
                                cells.remove(&kb);
                            }
                        }
                        if cells.is_empty() {
                            self.state.reducers.remove(&c.reducer);
                        }
                    }
                }
                (None, Some(Slot::Single(b))) => {
                    self.state
                        .reducers
                        .insert(c.reducer, ReducerState::Single(b));
                }
                (None, _) => {
                    self.state.reducers.remove(&c.reducer);
                }
            }
        }
    }

    /// A reducer's state (for a keyed reducer: the cell of `key`).
    pub fn state_of(&self, reducer: &Name, key: Option<&Value>) -> Option<&Blob> {
        match (self.state.reducers.get(reducer)?, key) {
            (ReducerState::Single(b), None) => Some(b),
            (ReducerState::Cells(cells), Some(k)) => {
                let kb = canon::value_to_vec(k).ok()?;
                cells.get(&kb).map(|c| &c.state)
            }
            _ => None,
        }
    }
}

/// The capability and policy verdicts of one intent. A reducer may only emit effects
/// whose `origin_scope` allows reducers; the policy is consulted whenever the grant is
/// known, so both verdicts are journaled for every intent.
fn gate(
    m: &ActiveManifest,
    grant: &std::result::Result<String, String>,
    kind: &str,
    params: &Value,
    who: &gates::Origin<'_>,
    now_ns: u64,
) -> (gates::CapVerdict, gates::PolicyVerdict) {
    let deny_cap = |code: &'static str, reason: String| gates::CapVerdict {
        allowed: false,
        code,
        grant: grant.as_ref().ok().cloned(),
        cap: None,
        reason,
    };
    let cap = match (grant, gates::effect_by_kind(&m.set, kind)) {
        (Err(reason), _) => deny_cap("no_grant", reason.clone()),
        (_, None) => deny_cap(
            "unknown_effect",
            format!("no defeffect defines the effect kind {kind:?}"),
        ),
        (Ok(_), Some(eff)) if !matches!(eff.origin_scope.as_str(), "reducer" | "both") => deny_cap(
            "origin_scope",
            format!(
                "{kind} may only be emitted by {}s (origin_scope {:?}), not by reducer {}",
                eff.origin_scope, eff.origin_scope, who.name
            ),
        ),
        (Ok(g), Some(eff)) => gates::check_cap(&m.set, g, eff, params, now_ns),
    };
    let policy = match grant {
        Ok(g) => gates::check_policy(&m.set, kind, g, who),
        Err(_) => gates::PolicyVerdict {
            allowed: false,
            code: "not_consulted",
            policy: None,
            rule: None,
            reason: "not consulted: the intent names no grant".into(),
        },
    };
    (cap, policy)
}

/// A derived record: the input's time, the given cause and body.
pub(crate) fn derived(input: &Record, kind: &str, cause: Vec<u64>, body: Value) -> NewRecord {
    NewRecord {
        at_ns: input.at_ns,
        kind: kind.to_string(),
        cause,
        body,
    }
}

/// The value at a `key_field` path (`$value` steps into a variant arm).
pub fn extract<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut v = value;
    for seg in path {
        v = v.get(seg.as_str())?;
    }
    Some(v)
}
