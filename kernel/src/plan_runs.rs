//! Plan runs in the stepper: a trigger's domain event starts a run (`plan_started`); the
//! run executes one ready step at a time in step-id order — `assign`, `emit_effect`
//! (through the same gates as every effect, origin kind `plan`), `await_receipt` (parks
//! until the receipt is journaled), `raise_event` (routed like any domain event) and
//! `end` (`plan_ended` with the result). A step is ready when every edge into it comes
//! from a finished step and its `when` guard holds. An expression that fails, a denied
//! effect or a step this engine does not run yet ends that run with a journaled error
//! and leaves every other run alone. Everything here is deterministic: replay re-derives
//! the same records.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use air_fmt::model::{DefPlan, StepKind};
use air_fmt::value::canonicalize;
use air_fmt::{Def, DefKind, Name, TypeExpr};
use aos_store::canon;
use aos_store::journal::{NewRecord, Record};
use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::gates::{self, OriginKind};
use crate::manifest::ActiveManifest;
use crate::plans::expr::{eval, eval_or_value, truthy, Env};
use crate::records::{
    DOMAIN_EVENT, EFFECT_INTENT, INTROSPECT_ANSWER, PLAN_ENDED, PLAN_STARTED, POLICY_DECISION,
};
use crate::state::{OpenIntent, PlanRun};
use crate::stepper::{derived, Kernel, Pending};

/// How a step went.
enum Tick {
    /// Finished; look for the next ready step.
    Done,
    /// Parked on a receipt.
    Parked,
    /// The run is over (journaled).
    Ended,
    /// The step failed: the run ends with this error.
    Failed(String),
}

impl Kernel {
    /// Start every plan a trigger names for this event, and run each until it parks.
    pub(crate) fn start_plans(
        &mut self,
        m: &ActiveManifest,
        ev: &Pending,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<()> {
        let Some(manifest) = &m.set.manifest else {
            return Ok(());
        };
        let triggers: Vec<(Name, Option<Value>)> = manifest
            .item
            .triggers
            .iter()
            .filter(|t| t.event == ev.schema)
            .map(|t| {
                let key = t.correlate_by.as_ref().and_then(|path| {
                    let segs: Vec<String> = path.split('.').map(str::to_string).collect();
                    crate::stepper::extract(&ev.value, &segs).cloned()
                });
                (t.plan.clone(), key)
            })
            .collect();
        for (plan, correlation) in triggers {
            self.start_run(
                m,
                plan,
                ev.value.clone(),
                correlation,
                ev.seq,
                base,
                input,
                out,
                queue,
            )?;
        }
        Ok(())
    }

    /// Start one run of `plan` with `value` as `@plan.input` (`cause`: the record that
    /// asked for it) and run it until it parks or ends.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_run(
        &mut self,
        m: &ActiveManifest,
        plan: Name,
        value: Value,
        correlation: Option<Value>,
        cause: u64,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<()> {
        let run = base + 1 + out.len() as u64;
        let mut body = json!({
            "plan": plan,
            "run": canon::u64_value(run),
            "input": value,
            "manifest": m.hash,
        });
        if let (Some(c), Value::Object(o)) = (&correlation, &mut body) {
            o.insert("correlation".into(), c.clone());
        }
        out.push(derived(input, PLAN_STARTED, self.causes(cause), body));
        self.state.runs.insert(
            run,
            PlanRun {
                plan,
                manifest: m.hash,
                input: value,
                vars: BTreeMap::new(),
                steps: BTreeMap::new(),
                done: BTreeSet::new(),
                waiting: None,
                receipts: BTreeMap::new(),
                awaiting: None,
                correlation,
                await_key: None,
            },
        );
        self.advance(m, run, run, base, input, out, queue)
    }

    /// A manual start (`aos plan start`): the input is canonicalized against the plan's
    /// input schema (the caller checked it before journaling).
    pub(crate) fn plan_start_input(
        &mut self,
        objects: &aos_store::objects::ObjectStore,
        seq: u64,
        rec: &Record,
    ) -> Result<Vec<NewRecord>> {
        let bad = crate::error::KernelError::in_record(seq, rec);
        let Some(m) = self.manifest.clone() else {
            return Err(bad("the world has no manifest".into()));
        };
        let plan = rec
            .body
            .get("plan")
            .and_then(Value::as_str)
            .and_then(|s| Name::parse(s).ok())
            .ok_or_else(|| bad("the body names no plan".into()))?;
        let value = self
            .plan_input(&m, &plan, rec.body.get("input").unwrap_or(&Value::Null))
            .map_err(bad)?;
        let mut out = Vec::new();
        let mut queue = VecDeque::new();
        self.start_run(&m, plan, value, None, seq, seq, rec, &mut out, &mut queue)?;
        self.cascade_from(objects, &m, seq, rec, queue, out)
    }

    /// Check a manual start's input against the plan's input schema.
    pub fn plan_input(
        &self,
        m: &ActiveManifest,
        plan: &Name,
        input: &Value,
    ) -> std::result::Result<Value, String> {
        let Some(Def::Plan(p)) = air_fmt::assemble::resolve(&m.set, DefKind::Plan, plan) else {
            let known: Vec<String> = m
                .set
                .of_kind(DefKind::Plan)
                .map(|l| match &l.item {
                    Def::Plan(p) => p.name.to_string(),
                    _ => String::new(),
                })
                .collect();
            return Err(format!(
                "{plan} is not a plan of the manifest in force (plans: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ));
        };
        canonicalize(input, &TypeExpr::Ref(p.input.clone()), &m.schemas()).map_err(|d| {
            format!(
                "the input is not a {}: {}",
                p.input,
                crate::wasm::show_diags(&d)
            )
        })
    }

    /// A receipt for a plan's intent: remember it and resume the run if it waits for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn plan_receipt(
        &mut self,
        m: &ActiveManifest,
        run: u64,
        intent: Hash,
        value: Value,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<()> {
        let Some(r) = self.state.runs.get_mut(&run) else {
            return Ok(());
        };
        r.receipts.insert(intent, value);
        if r.waiting.as_ref().is_some_and(|(_, h)| *h == intent) {
            r.waiting = None;
            self.advance(m, run, base, base, input, out, queue)?;
        }
        Ok(())
    }

    /// A domain event: every run parked on `await_event` for its schema whose `where`
    /// holds (with `@event` bound) takes it — broadcast, first match per waiter — and
    /// goes on. Runs are woken in run order. Called before triggers start new runs, so
    /// a run never takes the event that started it (waits are future-only).
    pub(crate) fn wake_waiters(
        &mut self,
        m: &ActiveManifest,
        ev: &Pending,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<()> {
        let waiting = self.state.waiters_for(&ev.schema, &ev.value);
        for run in waiting {
            // A run waits, and goes on, under the manifest it started under.
            let pinned = self.manifest_of_run(run);
            let m = pinned.as_deref().unwrap_or(m);
            let Some(r) = self.state.runs.get(&run) else {
                continue;
            };
            let Some((step, _)) = r.awaiting.clone() else {
                continue;
            };
            // Borrowed from the manifest (not `self`), so the run can be updated below.
            let Some(Def::Plan(plan)) = air_fmt::assemble::resolve(&m.set, DefKind::Plan, &r.plan)
            else {
                continue;
            };
            let Some(StepKind::AwaitEvent { where_, bind, .. }) =
                plan.steps.iter().find(|s| s.id == step).map(|s| &s.kind)
            else {
                continue;
            };
            let env = Env {
                input: &r.input,
                vars: &r.vars,
                steps: &r.steps,
                event: Some(&ev.value),
            };
            let matched = match where_ {
                None => Ok(true),
                Some(w) => eval(w, &env)
                    .map_err(|e| e.to_string())
                    .and_then(|v| truthy(&v).map_err(|e| e.to_string())),
            };
            match matched {
                Ok(false) => continue,
                Err(e) => {
                    self.end_run(
                        run,
                        ev.seq,
                        "error",
                        Value::Null,
                        Some(format!("step {step}: the `where` of await_event: {e}")),
                        input,
                        out,
                    );
                    continue;
                }
                Ok(true) => {}
            }
            if let Some(r) = self.state.runs.get_mut(&run) {
                r.vars.insert(bind.clone(), ev.value.clone());
                r.steps.insert(step.clone(), ev.value.clone());
                r.done.insert(step.clone());
            }
            self.state.unindex_waiter(run);
            if let Some(r) = self.state.runs.get_mut(&run) {
                r.awaiting = None;
                r.await_key = None;
            }
            self.advance(m, run, ev.seq, base, input, out, queue)?;
        }
        Ok(())
    }

    /// Run ready steps until the run parks or ends. `cause` is the record that made the
    /// run runnable (its start, or the receipt that woke it).
    #[allow(clippy::too_many_arguments)]
    fn advance(
        &mut self,
        m: &ActiveManifest,
        run: u64,
        cause: u64,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<()> {
        let Some(name) = self.state.runs.get(&run).map(|r| r.plan.clone()) else {
            return Ok(());
        };
        // The run finishes under the manifest it started under, even after an apply.
        let pinned = self.manifest_of_run(run);
        let m = pinned.as_deref().unwrap_or(m);
        let Some(Def::Plan(plan)) =
            air_fmt::assemble::resolve(&m.set, DefKind::Plan, &name).cloned()
        else {
            self.end_run(
                run,
                cause,
                "error",
                Value::Null,
                Some(format!("plan {name} is not in the manifest in force")),
                input,
                out,
            );
            return Ok(());
        };
        // Each step runs at most once, so a run takes at most as many ticks as steps.
        for _ in 0..=plan.steps.len() {
            let next = match self.ready_step(&plan, run) {
                Ok(n) => n,
                Err(e) => {
                    self.end_run(run, cause, "error", Value::Null, Some(e), input, out);
                    return Ok(());
                }
            };
            let Some(step) = next else {
                // Nothing ready and nothing awaited: the run is over.
                self.end_run(run, cause, "ok", Value::Null, None, input, out);
                return Ok(());
            };
            let tick = self.tick(m, &plan, run, &step, cause, base, input, out, queue)?;
            if let Tick::Failed(why) = tick {
                let why = Some(format!("step {step}: {why}"));
                self.end_run(run, cause, "error", Value::Null, why, input, out);
                return Ok(());
            }
            if !matches!(tick, Tick::Ended) {
                if let Some(why) = self.broken_invariant(&plan, run) {
                    self.end_run(
                        run,
                        cause,
                        "invariant_violation",
                        Value::Null,
                        Some(format!("after step {step}: {why}")),
                        input,
                        out,
                    );
                    return Ok(());
                }
            }
            match tick {
                Tick::Done => continue,
                Tick::Parked | Tick::Ended | Tick::Failed(_) => return Ok(()),
            }
        }
        Ok(())
    }

    /// The first invariant of `plan` that does not hold for `run` (an invariant that
    /// cannot be evaluated does not hold).
    fn broken_invariant(&self, plan: &DefPlan, run: u64) -> Option<String> {
        let r = self.state.runs.get(&run)?;
        let env = Env {
            input: &r.input,
            vars: &r.vars,
            steps: &r.steps,
            event: None,
        };
        plan.invariants.iter().enumerate().find_map(|(i, inv)| {
            match eval(inv, &env)
                .map_err(|e| e.to_string())
                .and_then(|v| truthy(&v).map_err(|e| e.to_string()))
            {
                Ok(true) => None,
                Ok(false) => Some(format!("invariant {i} does not hold")),
                Err(e) => Some(format!("invariant {i} cannot be evaluated: {e}")),
            }
        })
    }

    /// The first ready step by id: not done, and every edge into it comes from a done
    /// step whose guard holds (a step without incoming edges is ready at once).
    fn ready_step(&self, plan: &DefPlan, run: u64) -> std::result::Result<Option<String>, String> {
        let Some(r) = self.state.runs.get(&run) else {
            return Ok(None);
        };
        let env = Env {
            input: &r.input,
            vars: &r.vars,
            steps: &r.steps,
            event: None,
        };
        let mut ids: Vec<&String> = plan.steps.iter().map(|s| &s.id).collect();
        ids.sort();
        'steps: for id in ids {
            if r.done.contains(id) {
                continue;
            }
            for e in plan.edges.iter().filter(|e| &e.to == id) {
                if !r.done.contains(&e.from) {
                    continue 'steps;
                }
                if let Some(w) = &e.when {
                    let v = eval(w, &env)
                        .map_err(|err| format!("the guard of edge {} → {}: {err}", e.from, e.to))?;
                    if !truthy(&v)
                        .map_err(|err| format!("the guard of edge {} → {}: {err}", e.from, e.to))?
                    {
                        continue 'steps;
                    }
                }
            }
            return Ok(Some(id.clone()));
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn tick(
        &mut self,
        m: &ActiveManifest,
        plan: &DefPlan,
        run: u64,
        id: &str,
        cause: u64,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
        queue: &mut VecDeque<Pending>,
    ) -> Result<Tick> {
        let Some(step) = plan.steps.iter().find(|s| s.id == id) else {
            return Ok(Tick::Ended);
        };
        let Some(r) = self.state.runs.get(&run) else {
            return Ok(Tick::Ended);
        };
        let env = Env {
            input: &r.input,
            vars: &r.vars,
            steps: &r.steps,
            event: None,
        };
        let (bind, produced): (Option<String>, Value) =
            match &step.kind {
                StepKind::Assign { expr, bind } => match eval_or_value(expr, &env) {
                    Ok(v) => (Some(bind.clone()), v),
                    Err(e) => {
                        return Ok(Tick::Failed(e.to_string()));
                    }
                },
                StepKind::EmitEffect {
                    kind,
                    params,
                    cap,
                    idempotency_key,
                    bind,
                } => {
                    let params = match eval_or_value(params, &env) {
                        Ok(v) => v,
                        Err(e) => {
                            return Ok(Tick::Failed(e.to_string()));
                        }
                    };
                    let key = match idempotency_key.as_ref().map(|k| eval_or_value(k, &env)) {
                        Some(Ok(Value::String(s))) => Some(s),
                        Some(Ok(other)) => Some(other.to_string()),
                        Some(Err(e)) => {
                            return Ok(Tick::Failed(e.to_string()));
                        }
                        None => None,
                    };
                    let plan_name = plan.name.clone();
                    match self.plan_intent(
                        m, &plan_name, run, id, kind, params, cap, key, cause, base, input, out,
                    ) {
                        Ok(handle) => (Some(bind.clone()), Value::String(handle.to_string())),
                        Err(why) => {
                            return Ok(Tick::Failed(why));
                        }
                    }
                }
                StepKind::AwaitReceipt { for_, bind } => {
                    let handle = match eval(for_, &env) {
                        Ok(Value::String(s)) => s.parse::<Hash>().ok(),
                        _ => None,
                    };
                    let Some(handle) = handle else {
                        return Ok(Tick::Failed(
                            "`for` is not the handle of an emitted effect".into(),
                        ));
                    };
                    match r.receipts.get(&handle) {
                        Some(v) => (Some(bind.clone()), v.clone()),
                        None => {
                            if let Some(r) = self.state.runs.get_mut(&run) {
                                r.waiting = Some((id.to_string(), handle));
                            }
                            return Ok(Tick::Parked);
                        }
                    }
                }
                StepKind::RaiseEvent { event, value } => {
                    let v = eval_or_value(value, &env)
                        .map_err(|e| e.to_string())
                        .and_then(|v| {
                            canonicalize(&v, &TypeExpr::Ref(event.clone()), &m.schemas()).map_err(
                                |d| {
                                    format!(
                                        "the value is not a {event}: {}",
                                        crate::wasm::show_diags(&d)
                                    )
                                },
                            )
                        });
                    let v = match v {
                        Ok(v) => v,
                        Err(e) => {
                            return Ok(Tick::Failed(e));
                        }
                    };
                    let seq = base + 1 + out.len() as u64;
                    out.push(derived(input, DOMAIN_EVENT, vec![cause], json!({
                    "schema": event,
                    "value": v,
                    "raised_by": {"plan": plan.name, "run": canon::u64_value(run), "step": id},
                })));
                    queue.push_back(Pending {
                        seq,
                        schema: event.clone(),
                        value: v.clone(),
                        key: None,
                        target: None,
                    });
                    (None, v)
                }
                StepKind::End { result } => {
                    let v = match result.as_ref().map(|r| eval_or_value(r, &env)) {
                        None => Value::Null,
                        Some(Ok(v)) => match &plan.output {
                            Some(out_ty) => {
                                match canonicalize(&v, &TypeExpr::Ref(out_ty.clone()), &m.schemas())
                                {
                                    Ok(v) => v,
                                    Err(d) => {
                                        let why = format!(
                                            "the result is not a {out_ty}: {}",
                                            crate::wasm::show_diags(&d)
                                        );
                                        return Ok(Tick::Failed(why));
                                    }
                                }
                            }
                            None => v,
                        },
                        Some(Err(e)) => {
                            return Ok(Tick::Failed(e.to_string()));
                        }
                    };
                    self.end_run(run, cause, "ok", v, None, input, out);
                    return Ok(Tick::Ended);
                }
                StepKind::AwaitEvent { event, where_, .. } => {
                    let key = where_.as_ref().and_then(|w| await_key(w, &env));
                    if let Some(r) = self.state.runs.get_mut(&run) {
                        r.awaiting = Some((id.to_string(), event.clone()));
                        r.await_key = key;
                    }
                    self.state.index_waiter(run);
                    return Ok(Tick::Parked);
                }
            };
        if let Some(r) = self.state.runs.get_mut(&run) {
            if let Some(b) = bind {
                r.vars.insert(b, produced.clone());
            }
            r.steps.insert(id.to_string(), produced);
            r.done.insert(id.to_string());
        }
        Ok(Tick::Done)
    }

    /// Journal a plan's effect intent and its gate decision; open it when allowed.
    /// Returns the handle (intent hash), or why the run must end.
    #[allow(clippy::too_many_arguments)]
    fn plan_intent(
        &mut self,
        m: &ActiveManifest,
        plan: &Name,
        run: u64,
        step: &str,
        kind: &str,
        params: Value,
        grant: &str,
        key: Option<String>,
        cause: u64,
        base: u64,
        input: &Record,
        out: &mut Vec<NewRecord>,
    ) -> std::result::Result<Hash, String> {
        let Some(effect) = gates::effect_by_kind(&m.set, kind) else {
            return Err(format!("no defeffect defines the effect kind {kind:?}"));
        };
        let params = canonicalize(
            &params,
            &TypeExpr::Ref(effect.params_schema.clone()),
            &m.schemas(),
        )
        .map_err(|d| {
            format!(
                "the params are not a {}: {}",
                effect.params_schema,
                crate::wasm::show_diags(&d)
            )
        })?;
        let origin = json!({"kind": OriginKind::Plan.as_str(), "name": plan, "run": canon::u64_value(run), "step": step});
        let idem = key.unwrap_or_else(|| {
            Hash::of(
                &canon::value_to_vec(&json!({"origin": origin, "cause": canon::u64_value(cause)}))
                    .unwrap_or_default(),
            )
            .to_string()
        });
        let intent_hash = Hash::of(
            &canon::value_to_vec(
                &json!({"kind": kind, "params": params, "grant": grant, "idempotency_key": idem}),
            )
            .unwrap_or_default(),
        );
        let intent_seq = base + 1 + out.len() as u64;
        out.push(derived(
            input,
            EFFECT_INTENT,
            vec![cause],
            json!({
                "kind": kind,
                "params": params,
                "cap_slot": Value::Null,
                "grant": grant,
                "idempotency_key": idem,
                "intent_hash": intent_hash,
                "origin": origin,
            }),
        ));
        let who = gates::Origin {
            kind: OriginKind::Plan,
            name: plan,
        };
        let cap = if matches!(effect.origin_scope.as_str(), "plan" | "both") {
            gates::check_cap(&m.set, grant, effect, &params, input.at_ns)
        } else {
            gates::CapVerdict {
                allowed: false,
                grant: Some(grant.to_string()),
                cap: None,
                code: "origin_scope",
                reason: format!("{kind} may only be emitted by reducers (origin_scope {:?}), not by plan {plan}", effect.origin_scope),
            }
        };
        let policy = gates::check_policy(&m.set, kind, grant, &who);
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
        if !allowed {
            let why = if cap.allowed {
                policy.reason
            } else {
                cap.reason
            };
            return Err(format!("{kind} was denied: {why}"));
        }
        if kind.starts_with("introspect.") {
            // Answered by the kernel from the state as of this step: deterministic, so
            // journaled as a derived record (replay re-derives it) and bound at once.
            let answer = self.introspect(m, kind, &params, base)?;
            let answer = canonicalize(
                &answer,
                &TypeExpr::Ref(effect.receipt_schema.clone()),
                &m.schemas(),
            )
            .map_err(|d| {
                format!(
                    "the {kind} answer is not a {}: {}",
                    effect.receipt_schema,
                    crate::wasm::show_diags(&d)
                )
            })?;
            out.push(derived(
                input,
                INTROSPECT_ANSWER,
                vec![intent_seq],
                json!({ "intent_hash": intent_hash, "value": answer }),
            ));
            if let Some(r) = self.state.runs.get_mut(&run) {
                r.receipts.insert(intent_hash, answer);
            }
            return Ok(intent_hash);
        }
        self.state.open.insert(
            intent_hash,
            OpenIntent {
                seq: intent_seq,
                kind: kind.to_string(),
                params,
                grant: grant.to_string(),
                idempotency_key: idem,
                origin,
                // A run finishing under an older manifest: its intents keep its grants.
                manifest: (Some(m.hash) != self.state.manifest).then_some(m.hash),
            },
        );
        Ok(intent_hash)
    }

    /// The answer to an `introspect.*` effect, as of the input at `height`.
    fn introspect(
        &self,
        m: &ActiveManifest,
        kind: &str,
        params: &Value,
        height: u64,
    ) -> std::result::Result<Value, String> {
        let meta = json!({
            "journal_height": canon::u64_value(height),
            "snapshot_hash": Value::Null,
            "manifest_hash": m.hash,
        });
        let b64 = air_fmt::value::base64_encode;
        let reducer = || -> std::result::Result<Name, String> {
            params
                .get("reducer")
                .and_then(Value::as_str)
                .and_then(|s| Name::parse(s).ok())
                .ok_or_else(|| "`reducer` must name a reducer".to_string())
        };
        Ok(match kind {
            "introspect.manifest" => json!({"manifest": b64(&m.bytes), "meta": meta}),
            "introspect.journal_head" => json!({"meta": meta}),
            "introspect.reducer_state" => {
                let name = reducer()?;
                let key = match params.get("key") {
                    Some(Value::String(k)) => Some(
                        serde_json::from_slice::<Value>(
                            &air_fmt::value::base64_decode(k).ok_or("`key` is not base64")?,
                        )
                        .map_err(|e| format!("`key` is not canonical JSON of a key: {e}"))?,
                    ),
                    _ => None,
                };
                let state = self.state_of(&name, key.as_ref()).map(|b| b64(&b.bytes));
                json!({"state": state, "meta": meta})
            }
            "introspect.list_cells" => {
                let name = reducer()?;
                let cells: Vec<Value> = match self.state.reducers.get(&name) {
                    Some(crate::state::ReducerState::Cells(cells)) => cells
                        .iter()
                        .map(|(kb, c)| {
                            json!({
                                "key": b64(kb),
                                "state_hash": c.state.hash,
                                "size": c.state.bytes.len(),
                                "last_active_ns": 0,
                            })
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                json!({"cells": cells, "meta": meta})
            }
            other => return Err(format!("the kernel does not answer {other}")),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn end_run(
        &mut self,
        run: u64,
        cause: u64,
        status: &str,
        result: Value,
        error: Option<String>,
        input: &Record,
        out: &mut Vec<NewRecord>,
    ) {
        self.state.unindex_waiter(run);
        let removed = self.state.runs.remove(&run);
        if removed
            .as_ref()
            .is_some_and(|r| Some(r.manifest) != self.state.manifest)
        {
            // A run of an older manifest ended: that manifest may be unused now.
            self.prune_manifests();
        }
        let plan = removed.map(|r| r.plan);
        let mut body = Map::new();
        body.insert("run".into(), canon::u64_value(run));
        body.insert("plan".into(), json!(plan));
        body.insert("status".into(), json!(status));
        body.insert("result".into(), result);
        if let Some(e) = error {
            body.insert("error".into(), json!(e));
        }
        out.push(derived(input, PLAN_ENDED, vec![cause], Value::Object(body)));
    }
}

/// The index key of an `await_event` whose `where` is `eq(@event.PATH, X)` (either
/// order) with X computable without the event: PATH and X's value now.
fn await_key(w: &air_fmt::expr::Expr, env: &Env) -> Option<(Vec<String>, Value)> {
    use air_fmt::expr::{Expr, ExprRef};
    let Expr::Op(op, args) = w else { return None };
    if op != "eq" || args.len() != 2 {
        return None;
    }
    let pick = |a: &Expr, b: &Expr| -> Option<(Vec<String>, Value)> {
        let Expr::Ref(ExprRef::Event(path)) = a else {
            return None;
        };
        let no_event = Env {
            event: None,
            ..*env
        };
        eval(b, &no_event).ok().map(|v| (path.clone(), v))
    };
    pick(&args[0], &args[1]).or_else(|| pick(&args[1], &args[0]))
}
