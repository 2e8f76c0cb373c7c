//! Shadow runs: rehearse a proposal on an in-memory fork of a world's kernel with the
//! candidate manifest in force and every effect stubbed (intents are gated and stay
//! open; nothing is dispatched; `introspect` answers come from the fork). Sample events
//! are fed in order; or the journal's recorded inputs are re-run under the candidate and
//! each input whose outcome differs from what was recorded is reported. The report
//! lists the manifest diff, effects with their verdicts, state changes, plan results,
//! errors, newly needed capabilities and divergences, and says whether it found a
//! problem. Nothing here writes to the world.

use std::collections::{BTreeMap, BTreeSet};

use air_fmt::Name;
use aos_store::journal::{NewRecord, Record};
use aos_store::objects::ObjectStore;
use serde_json::{json, Value};

use crate::error::Result;
use crate::governance::Proposal;
use crate::manifest::ActiveManifest;
use crate::records::*;
use crate::replay::difference;
use crate::state::{ReducerState, WorldState};
use crate::stepper::Kernel;

/// A sample event to feed.
#[derive(Debug, Clone)]
pub struct Sample {
    pub schema: Name,
    pub value: Value,
    pub key: Option<Value>,
}

/// Which divergences the user expects.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    pub all: bool,
    pub seqs: BTreeSet<u64>,
}

/// One recorded input whose outcome under the candidate differs.
#[derive(Debug, Clone)]
pub struct Divergent {
    pub seq: u64,
    pub kind: String,
    pub recorded: usize,
    pub candidate: usize,
    /// Index (among the input's derived records) of the first difference.
    pub index: usize,
    pub reason: String,
    pub recorded_record: Option<Value>,
    pub candidate_record: Option<Value>,
    pub accepted: bool,
}

/// What a rehearsal found. Records are observed as they are derived and only what the
/// report shows is kept, so a rehearsal of a long journal runs in bounded memory.
#[derive(Debug, Default)]
pub struct Report {
    /// The last fork-local seq the rehearsal used.
    pub last_seq: Option<u64>,
    /// Effect intents (JSON, completed with their verdicts), in order.
    pub effects: Vec<Value>,
    /// Intents still waiting for their `policy_decision`: intent hash → index in `effects`.
    undecided: BTreeMap<String, usize>,
    /// Module errors, route errors and stopped cascades.
    pub errors: Vec<Value>,
    /// Plan runs that ended.
    pub plans: Vec<Value>,
    /// Sample events the candidate refused (index, reason).
    pub refused: Vec<(usize, String)>,
    pub divergences: Vec<Divergent>,
    /// Recorded inputs re-run (replay mode).
    pub replayed_inputs: u64,
    pub final_state: Option<WorldState>,
}

impl Report {
    /// Take note of one record of the rehearsal (fork-local `seq`).
    pub fn observe(&mut self, seq: u64, r: &NewRecord) {
        self.last_seq = Some(seq);
        let text = |k: &str| r.body.get(k).and_then(Value::as_str).unwrap_or("");
        match r.kind.as_str() {
            EFFECT_INTENT => {
                self.undecided
                    .insert(text("intent_hash").to_string(), self.effects.len());
                self.effects.push(json!({
                    "seq": seq,
                    "kind": r.body.get("kind"),
                    "params": r.body.get("params"),
                    "grant": r.body.get("grant"),
                    "origin": r.body.get("origin"),
                    "intent_hash": text("intent_hash"),
                    "allowed": false,
                    "cap": null,
                    "policy": null,
                    "dispatched": false,
                }));
            }
            POLICY_DECISION => {
                let Some(i) = self.undecided.remove(text("intent_hash")) else {
                    return;
                };
                if let Some(Value::Object(e)) = self.effects.get_mut(i) {
                    for k in ["allowed", "cap", "policy"] {
                        if let Some(v) = r.body.get(k) {
                            e.insert(k.into(), v.clone());
                        }
                    }
                }
            }
            MODULE_ERROR | ROUTE_ERROR | CASCADE_STOPPED => {
                self.errors
                    .push(json!({"seq": seq, "kind": r.kind, "body": r.body}));
            }
            PLAN_ENDED => self.plans.push(json!({
                "seq": seq,
                "run": r.body.get("run"),
                "plan": r.body.get("plan"),
                "status": text("status"),
                "result": r.body.get("result"),
                "error": r.body.get("error"),
            })),
            _ => {}
        }
    }
}

fn is_governance(kind: &str) -> bool {
    matches!(
        kind,
        crate::governance::PROPOSED
            | crate::governance::SHADOW_REPORT
            | crate::governance::APPROVED
            | crate::governance::REJECTED
            | crate::governance::APPLIED
    )
}

impl Kernel {
    /// An in-memory copy of this kernel (same limits, receipt keys, module cache and
    /// state) with `manifest` in force.
    pub fn fork_with(&self, objects: &ObjectStore, manifest: &aos_store::Hash) -> Result<Kernel> {
        let mut k = Kernel::new(self.cache_dir.clone(), self.state.limits)?;
        k.set_receipt_keys(self.receipt_keys.clone());
        k.restore(objects, self.state.clone())?;
        let m = k.load_manifest(objects, manifest)?;
        k.manifest = Some(m);
        k.state.manifest = Some(*manifest);
        // Records keep citing the `applied` record that put the base in force, as the
        // journal's do, so that only real differences show.
        k.applied_at = self.applied_at;
        Ok(k)
    }
}

/// Feed sample events to `fork` (a kernel with the candidate in force) after `head`.
pub fn feed_samples(
    fork: &mut Kernel,
    objects: &ObjectStore,
    head: u64,
    samples: &[Sample],
    origin: &Value,
    now_ns: u64,
    report: &mut Report,
) -> Result<()> {
    let mut seq = head;
    for (i, s) in samples.iter().enumerate() {
        let (value, key) = match fork.prepare_event(&s.schema, &s.value, s.key.as_ref()) {
            Ok(x) => x,
            Err(e) => {
                report.refused.push((i, e.to_string()));
                continue;
            }
        };
        let rec = crate::session::injected_event(seq, now_ns, &s.schema, value, key, origin);
        let derived = fork.process(objects, seq, &rec)?;
        report.last_seq = Some(seq);
        for (j, d) in derived.iter().enumerate() {
            report.observe(seq + 1 + j as u64, d);
        }
        seq += 1 + derived.len() as u64;
    }
    Ok(())
}

/// Re-run the recorded inputs of `journal` from `from` on under the candidate in `fork`
/// (whose state is the world's as of `from - 1`), comparing each input's derived
/// records with the recorded ones.
pub fn replay_inputs(
    fork: &mut Kernel,
    objects: &ObjectStore,
    records: impl Iterator<Item = Result<Record>>,
    accept: &Accept,
    report: &mut Report,
) -> Result<()> {
    // The input being compared, with the candidate's and the recorded derived records.
    let mut current: Option<Compared> = None;
    // Fork-local seqs run ahead of the journal's once the candidate derives more.
    let mut vseq_next = 0u64;
    let close = |cur: Option<Compared>, report: &mut Report| {
        if let Some(c) = cur {
            if let Some(d) = compare(&c, accept) {
                report.divergences.push(d);
            }
        }
    };
    for rec in records {
        let rec = rec?;
        if !record_is_input(&rec) {
            if let Some(c) = current.as_mut() {
                c.want.push(rec);
            }
            continue;
        }
        close(current.take(), report);
        if matches!(rec.kind.as_str(), WORLD_CREATED | FORKED_FROM | SNAPSHOT)
            || is_governance(&rec.kind)
        {
            // The candidate stays in force; an apply recorded here is still what the
            // journal's records after it cite.
            if rec.kind == crate::governance::APPLIED
                && rec.body.get("manifest") != rec.body.get("base_manifest")
            {
                fork.applied_at = Some(rec.seq);
            }
            vseq_next = vseq_next.max(rec.seq + 1);
            continue;
        }
        // Each input runs at its journal seq, so run ids and idempotency keys match the
        // journal's wherever the candidate behaves the same. Only when records the
        // candidate derived beyond the journal's would collide with a run still in
        // flight does the input move past them.
        let collides = vseq_next > rec.seq && fork.state.runs.range(rec.seq..).next().is_some();
        let vseq = if collides { vseq_next } else { rec.seq };
        let mut local = rec.clone();
        local.seq = vseq;
        let derived = fork.process(objects, vseq, &local)?;
        report.replayed_inputs += 1;
        report.last_seq = Some(vseq);
        for (j, d) in derived.iter().enumerate() {
            report.observe(vseq + 1 + j as u64, d);
        }
        vseq_next = vseq_next.max(vseq + 1 + derived.len() as u64);
        current = Some(Compared {
            seq: rec.seq,
            vseq,
            kind: rec.kind.clone(),
            got: derived,
            want: Vec::new(),
        });
    }
    close(current.take(), report);
    Ok(())
}

/// Seq-valued fields of derived bodies, shifted back to journal seqs for comparison.
const SEQ_FIELDS: &[&str] = &["event", "run"];

fn shift(v: &mut Value, from: u64, by: u64) {
    let moved = |n: u64| if n >= from { n - by } else { n };
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_u64() {
                *v = json!(moved(x));
            }
        }
        Value::String(s) => {
            if let Ok(x) = s.parse::<u64>() {
                *s = moved(x).to_string();
            }
        }
        _ => {}
    }
}

/// The candidate's record as the journal would have it at the recorded input's seqs:
/// fork-local seqs shifted back, and the manifest a run started under taken as given.
fn normalized(d: &NewRecord, vseq: u64, seq: u64, want: Option<&Record>) -> NewRecord {
    let mut d = d.clone();
    let by = vseq - seq;
    if by > 0 {
        for c in d.cause.iter_mut() {
            if *c >= vseq {
                *c -= by;
            }
        }
        if let Value::Object(o) = &mut d.body {
            for k in SEQ_FIELDS {
                if let Some(v) = o.get_mut(*k) {
                    shift(v, vseq, by);
                }
            }
            if let Some(v) = o.get_mut("origin").and_then(|x| x.get_mut("run")) {
                shift(v, vseq, by);
            }
        }
    }
    if d.kind == PLAN_STARTED {
        if let (Value::Object(o), Some(w)) =
            (&mut d.body, want.and_then(|w| w.body.get("manifest")))
        {
            o.insert("manifest".into(), w.clone());
        }
    }
    d
}

/// One recorded input re-run: its journal and fork-local seqs, the records the
/// candidate derived and those the journal holds.
struct Compared {
    seq: u64,
    vseq: u64,
    kind: String,
    got: Vec<NewRecord>,
    want: Vec<Record>,
}

fn compare(c: &Compared, accept: &Accept) -> Option<Divergent> {
    let Compared {
        seq,
        vseq,
        kind,
        got,
        want,
    } = c;
    let (seq, vseq) = (*seq, *vseq);
    let n = got.len().max(want.len());
    for i in 0..n {
        let w = want.get(i);
        let g = got.get(i).map(|g| normalized(g, vseq, seq, w));
        let reason = match (&g, w) {
            (Some(g), Some(w)) => match difference(g, w) {
                None => continue,
                Some(r) => r,
            },
            (Some(_), None) => "the candidate derives a record the journal does not hold".into(),
            (None, Some(_)) => "the journal holds a record the candidate does not derive".into(),
            (None, None) => continue,
        };
        return Some(Divergent {
            seq,
            kind: kind.to_string(),
            recorded: want.len(),
            candidate: got.len(),
            index: i,
            reason,
            recorded_record: w.map(|w| json!({"seq": w.seq, "kind": w.kind, "cause": w.cause, "body": w.body})),
            candidate_record: g.map(|g| json!({"seq": seq + 1 + i as u64, "kind": g.kind, "cause": g.cause, "body": g.body})),
            accepted: accept.all || accept.seqs.contains(&seq),
        });
    }
    None
}

/// The findings of a report as JSON sections, and whether any is a problem.
pub fn summarize(
    report: &Report,
    base: &ActiveManifest,
    candidate: &ActiveManifest,
    diff: &air_fmt::diff::AirDiff,
    before: &WorldState,
) -> (Value, bool) {
    let mut problem = !report.refused.is_empty() || !report.errors.is_empty();
    problem |= report
        .effects
        .iter()
        .any(|e| e.get("allowed") != Some(&Value::Bool(true)));
    problem |= report
        .plans
        .iter()
        .any(|p| p.get("status").and_then(Value::as_str) != Some("ok"));
    // Grants the candidate adds or widens, and whether the rehearsal used each.
    let mut new_caps: BTreeMap<String, Value> = BTreeMap::new();
    for g in candidate
        .set
        .manifest
        .iter()
        .flat_map(|m| m.item.defaults.cap_grants.iter())
    {
        let after = crate::gates::grant_params(&candidate.set, &g.name).ok();
        let before = crate::gates::grant_params(&base.set, &g.name).ok();
        // The same params under a changed defcap are a changed capability too.
        let cap_def = |set: &air_fmt::load::AirSet| {
            air_fmt::assemble::resolve(set, air_fmt::DefKind::Cap, &g.cap)
                .map(|d| air_fmt::assemble::def_hash(set, d))
        };
        if after != before || cap_def(&candidate.set) != cap_def(&base.set) {
            let used = report
                .effects
                .iter()
                .any(|e| e.get("grant").and_then(Value::as_str) == Some(g.name.as_str()));
            new_caps.insert(
                g.name.clone(),
                json!({"grant": g.name, "cap": g.cap, "params": after, "was": before, "used_by_rehearsal": used}),
            );
        }
    }
    let waiting: Vec<Value> = report
        .final_state
        .as_ref()
        .map(|s| {
            s.runs
                .iter()
                .filter(|(_, r)| r.manifest == candidate.hash)
                .map(|(id, r)| {
                    json!({
                        "run": id,
                        "plan": r.plan,
                        "waiting_on": r.waiting.as_ref().map(|(step, h)| json!({"step": step, "receipt": h}))
                            .or_else(|| r.awaiting.as_ref().map(|(step, e)| json!({"step": step, "event": e}))),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let mut divergences = Vec::new();
    for d in &report.divergences {
        problem |= !d.accepted;
        divergences.push(json!({
            "seq": d.seq,
            "input_kind": d.kind,
            "recorded_records": d.recorded,
            "candidate_records": d.candidate,
            "first_difference": d.index,
            "reason": d.reason,
            "recorded": d.recorded_record,
            "candidate": d.candidate_record,
            "accepted": d.accepted,
        }));
    }
    let refused: Vec<Value> = report
        .refused
        .iter()
        .map(|(i, why)| json!({"event": i, "reason": why}))
        .collect();
    let states = report
        .final_state
        .as_ref()
        .map(|after| state_changes(before, after))
        .unwrap_or_default();
    let v = json!({
        "manifest_diff": serde_json::to_value(diff).unwrap_or(Value::Null),
        "effects": report.effects,
        "state_changes": states,
        "plan_results": report.plans,
        "plans_waiting": waiting,
        "errors": report.errors,
        "refused_events": refused,
        "new_capabilities": new_caps.into_values().collect::<Vec<_>>(),
        "divergences": divergences,
        "replayed_inputs": report.replayed_inputs,
    });
    (v, problem)
}

/// A reducer and, for a cell, the canonical bytes of its key.
type SlotId = (String, Option<Vec<u8>>);

/// Reducer states (and cells) that differ between `before` and `after`.
pub fn state_changes(before: &WorldState, after: &WorldState) -> Vec<Value> {
    let flat = |s: &WorldState| -> BTreeMap<SlotId, (Option<Value>, Value)> {
        let mut m = BTreeMap::new();
        for (name, st) in &s.reducers {
            match st {
                ReducerState::Single(b) => {
                    m.insert(
                        (name.to_string(), None),
                        (None, b.value().unwrap_or(Value::Null)),
                    );
                }
                ReducerState::Cells(cells) => {
                    for (kb, c) in cells {
                        m.insert(
                            (name.to_string(), Some(kb.clone())),
                            (Some(c.key.clone()), c.state.value().unwrap_or(Value::Null)),
                        );
                    }
                }
            }
        }
        m
    };
    let (a, b) = (flat(before), flat(after));
    let keys: BTreeSet<_> = a.keys().chain(b.keys()).cloned().collect();
    let mut out = Vec::new();
    for k in keys {
        let (x, y) = (a.get(&k), b.get(&k));
        if x.map(|v| &v.1) == y.map(|v| &v.1) {
            continue;
        }
        let key = x.or(y).and_then(|v| v.0.clone());
        out.push(json!({
            "reducer": k.0,
            "key": key,
            "before": x.map(|v| v.1.clone()),
            "after": y.map(|v| v.1.clone()),
        }));
    }
    out
}

/// The proposal a report is about, as the report names it.
pub fn proposal_ref(p: &Proposal) -> Value {
    json!({
        "id": p.id,
        "patch": p.patch,
        "base_manifest": p.base,
        "manifest": p.candidate,
    })
}
