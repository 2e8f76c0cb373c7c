//! Plans: step ids, edges, acyclicity, expression references, effect handles,
//! correlation, results, effects and their grants, and the derived sets.

use std::collections::{BTreeMap, BTreeSet};

use super::{graph, segments, suggest, Ctx, Site};
use crate::diag::{token, Diagnostic};
use crate::expr::{Expr, ExprOrValue, ExprRef};
use crate::load::Located;
use crate::model::{derived_sets, Def, DefKind, DefPlan, StepKind};
use crate::name::Name;
use crate::types::TypeExpr;

pub(super) fn check(cx: &mut Ctx<'_>) {
    let set = cx.set;
    let correlations = correlation_keys(cx);
    for loc in set.of_kind(DefKind::Plan) {
        if let Def::Plan(p) = &loc.item {
            let keys = correlations.get(&p.name).cloned().unwrap_or_default();
            plan(cx, loc, p, &keys);
        }
    }
}

/// For each plan, the correlation keys of the manifest triggers that start it (only
/// keys that are valid fields of the trigger event; invalid ones are reported on the
/// trigger, not again on the plan).
fn correlation_keys<'a>(cx: &Ctx<'a>) -> BTreeMap<Name, Vec<&'a str>> {
    let mut out: BTreeMap<Name, Vec<&'a str>> = BTreeMap::new();
    let Some(m) = cx.manifest else { return out };
    for t in &m.item.triggers {
        let Some(key) = &t.correlate_by else { continue };
        let Some(ty) = cx.sound_schema(&t.event) else {
            continue;
        };
        if cx.path_types(ty, &segments(key), true).is_ok() {
            let keys = out.entry(t.plan.clone()).or_default();
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
    }
    out
}

/// Where an expression sits, for the `@event` rules.
#[derive(Clone, Copy, PartialEq)]
enum Place {
    Plain,
    /// `await_event.where` of the step at this index.
    Where(usize),
    Invariant,
}

/// How a variable is bound.
#[derive(Clone, Copy)]
enum Binder {
    Local,
    /// `emit_effect … bind.effect_id_as`.
    Handle,
    /// `as` of an assign / await step.
    Step,
}

fn plan<'a>(cx: &mut Ctx<'a>, loc: &'a Located<Def>, p: &'a DefPlan, correlation: &[&str]) {
    let site = Site::Def(loc);
    let input_ty = cx.schema_ref(site, &p.input, "/input");
    let output_ty = match &p.output {
        Some(o) => cx.schema_ref(site, o, "/output"),
        None => None,
    };
    for (var, schema) in &p.locals {
        cx.schema_ref(site, schema, format!("/locals/{}", token(var)));
    }

    // Step ids are unique.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in p.steps.iter().enumerate() {
        match index.get(s.id.as_str()) {
            Some(first) => cx.push(
                site,
                Diagnostic::error(
                    "duplicate_step",
                    format!("/steps/{i}/id"),
                    format!("step id `{}` is used twice", s.id),
                )
                .expected("a step id not used by another step")
                .found(s.id.clone())
                .hint(format!(
                    "the first step with this id is /steps/{first}; rename one of them"
                )),
            ),
            None => {
                index.insert(s.id.as_str(), i);
            }
        }
    }

    // Edges name steps; the graph is acyclic.
    let mut succ: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut edge_at: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for (i, e) in p.edges.iter().enumerate() {
        let from = step_ref(cx, site, &index, &e.from, format!("/edges/{i}/from"));
        let to = step_ref(cx, site, &index, &e.to, format!("/edges/{i}/to"));
        if let (Some(f), Some(t)) = (from, to) {
            succ.entry(f).or_default().push(t);
            edge_at.entry((f, t)).or_insert(i);
        }
    }
    for c in graph::cycles(&succ) {
        let path = &c.path;
        let closing = (path[path.len() - 2], path[path.len() - 1]);
        let at = edge_at.get(&closing).copied().unwrap_or(0);
        let names = path
            .iter()
            .map(|&i| p.steps[i].id.as_str())
            .collect::<Vec<_>>()
            .join(" -> ");
        cx.push(
            site,
            Diagnostic::error(
                "plan_cycle",
                format!("/edges/{at}"),
                format!("the step graph has a cycle: {names}"),
            )
            .expected("a directed acyclic graph of steps")
            .found(names)
            .hint(
                "remove or redirect this edge; to retry, raise an event that starts a new plan run",
            ),
        );
    }

    // Variables: locals and every step's binding.
    let mut vars: BTreeMap<&str, Binder> = p
        .locals
        .keys()
        .map(|k| (k.as_str(), Binder::Local))
        .collect();
    for s in &p.steps {
        match &s.kind {
            StepKind::EmitEffect { bind, .. } => {
                vars.insert(bind.as_str(), Binder::Handle);
            }
            StepKind::AwaitReceipt { bind, .. }
            | StepKind::AwaitEvent { bind, .. }
            | StepKind::Assign { bind, .. } => {
                vars.entry(bind.as_str()).or_insert(Binder::Step);
            }
            _ => {}
        }
    }

    // Step by step: schemas, effects, grants, results, literals.
    let mut await_types: BTreeMap<usize, &TypeExpr> = BTreeMap::new();
    let mut unknown_kind = false;
    let mut unknown_grant = false;
    for (i, s) in p.steps.iter().enumerate() {
        let b = format!("/steps/{i}");
        match &s.kind {
            StepKind::RaiseEvent { event, value } => {
                let ty = cx.schema_ref(site, event, format!("{b}/event"));
                if let (Some(ty), ExprOrValue::Value(v)) = (ty, value) {
                    cx.literal(site, v, ty, &format!("{b}/value"));
                }
            }
            StepKind::AwaitEvent { event, .. } => {
                if let Some(ty) = cx.schema_ref(site, event, format!("{b}/event")) {
                    await_types.insert(i, ty);
                }
            }
            StepKind::EmitEffect {
                kind, params, cap, ..
            } => {
                let effect = cx.effects.get(kind.as_str()).copied();
                match effect {
                    None => {
                        unknown_kind = true;
                        cx.unknown_effect(site, kind, format!("{b}/kind"), "plan");
                    }
                    Some(e) => {
                        if e.origin_scope == "reducer" {
                            cx.push(
                                site,
                                Diagnostic::error(
                                    "effect_scope",
                                    format!("{b}/kind"),
                                    format!("`{kind}` ({}) may only be emitted by reducers", e.name),
                                )
                                .expected("an effect whose origin_scope is \"plan\" or \"both\"")
                                .found(format!("origin_scope \"{}\"", e.origin_scope))
                                .hint("emit it from a reducer (raise an event the reducer handles), or use an effect plans may emit"),
                            );
                        }
                        if let (ExprOrValue::Value(v), Some(ty)) =
                            (params, cx.sound_schema(&e.params_schema))
                        {
                            cx.literal(site, v, ty, &format!("{b}/params"));
                        }
                    }
                }
                if cx.manifest.is_some() {
                    match cx.grants.get(cap.as_str()).copied() {
                        None => {
                            unknown_grant = true;
                            let mut d = Diagnostic::error(
                                "unknown_grant",
                                format!("{b}/cap"),
                                format!("no cap grant named `{cap}` in the manifest defaults"),
                            )
                            .expected(format!(
                                "a grant name: {}",
                                cx.grants.keys().copied().collect::<Vec<_>>().join(", ")
                            ))
                            .found(cap.clone());
                            d = match suggest(cap, cx.grants.keys().copied()) {
                                Some(x) => d.hint(format!("did you mean `{x}`?")),
                                None => d.hint("add a grant to the manifest's defaults.cap_grants"),
                            };
                            cx.push(site, d);
                        }
                        Some(g) => {
                            let c = cx.cap(&g.cap);
                            if let (Some(e), Some(c)) = (effect, c) {
                                if cx.cap_type_for_cap(&c.cap_type) && c.cap_type != e.cap_type {
                                    cx.push(
                                        site,
                                        Diagnostic::error(
                                            "cap_type_mismatch",
                                            format!("{b}/cap"),
                                            format!(
                                                "grant `{cap}` is a {} capability ({}), but `{kind}` needs a {} capability",
                                                c.cap_type, g.cap, e.cap_type
                                            ),
                                        )
                                        .expected(format!("a grant of cap type `{}`", e.cap_type))
                                        .found(format!("`{cap}` of cap type `{}`", c.cap_type))
                                        .hint(grants_of_type(cx, &e.cap_type)),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            StepKind::End { result } => match (&p.output, result) {
                (Some(o), None) => cx.push(
                    site,
                    Diagnostic::error(
                        "missing_result",
                        b.clone(),
                        "the plan declares an `output`, so every end step needs a `result`",
                    )
                    .expected(format!("a result of schema {o}"))
                    .found("no result")
                    .hint("add \"result\": an expression or value of the output schema"),
                ),
                (None, Some(_)) => cx.push(
                    site,
                    Diagnostic::error(
                        "unexpected_result",
                        format!("{b}/result"),
                        "the plan declares no `output`, so its end steps take no `result`",
                    )
                    .expected("no result")
                    .found("a result")
                    .hint("declare \"output\": SCHEMA on the plan, or remove the result"),
                ),
                (Some(_), Some(ExprOrValue::Value(v))) => {
                    if let Some(ty) = output_ty {
                        cx.literal(site, v, ty, &format!("{b}/result"));
                    }
                }
                _ => {}
            },
            StepKind::AwaitReceipt { .. } | StepKind::Assign { .. } => {}
        }
    }

    // Every expression: references resolve, `@event` only where it may appear.
    let mut exprs: Vec<(String, &Expr, Place)> = Vec::new();
    for (i, e) in p.edges.iter().enumerate() {
        if let Some(w) = &e.when {
            exprs.push((format!("/edges/{i}/when"), w, Place::Plain));
        }
    }
    for (i, s) in p.steps.iter().enumerate() {
        let b = format!("/steps/{i}");
        let mut items: Vec<(&str, Option<&ExprOrValue>)> = Vec::new();
        match &s.kind {
            StepKind::RaiseEvent { value, .. } => items.push(("value", Some(value))),
            StepKind::EmitEffect {
                params,
                idempotency_key,
                ..
            } => {
                items.push(("params", Some(params)));
                items.push(("idempotency_key", idempotency_key.as_ref()));
            }
            StepKind::Assign { expr, .. } => items.push(("expr", Some(expr))),
            StepKind::End { result } => items.push(("result", result.as_ref())),
            StepKind::AwaitEvent {
                where_: Some(w), ..
            } => exprs.push((format!("{b}/where"), w, Place::Where(i))),
            StepKind::AwaitEvent { where_: None, .. } => {}
            StepKind::AwaitReceipt { for_, .. } => await_receipt(cx, site, for_, &vars, &b),
        }
        for (key, v) in items {
            if let Some(ExprOrValue::Expr(e)) = v {
                exprs.push((format!("{b}/{key}"), e, Place::Plain));
            }
        }
    }
    for (i, inv) in p.invariants.iter().enumerate() {
        exprs.push((format!("/invariants/{i}"), inv, Place::Invariant));
    }
    let mut bad_where = BTreeSet::new();
    for (ptr, e, place) in exprs {
        let mut refs = Vec::new();
        expr_refs(e, ptr, &mut refs);
        for (rp, r) in refs {
            let reported = expr_ref(
                cx,
                site,
                r,
                rp,
                place,
                &vars,
                &index,
                input_ty,
                &await_types,
            );
            if let (true, Place::Where(i)) = (reported, place) {
                bad_where.insert(i);
            }
        }
    }

    // A correlated run must filter its await_event steps on the correlation key.
    if !correlation.is_empty() {
        for (i, s) in p.steps.iter().enumerate() {
            let StepKind::AwaitEvent { where_, .. } = &s.kind else {
                continue;
            };
            if bad_where.contains(&i) {
                // Its references are already reported; a fixed `where` may filter.
                continue;
            }
            let mut refs = Vec::new();
            if let Some(w) = where_ {
                expr_refs(w, String::new(), &mut refs);
            }
            let missing: Vec<&str> = correlation
                .iter()
                .copied()
                .filter(|key| {
                    let segs = segments(key);
                    !refs.iter().any(|(_, r)| matches!(r, ExprRef::Event(path) if path.len() >= segs.len() && path.iter().zip(&segs).all(|(a, b)| a == b)))
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            let key = missing[0];
            let ptr = if where_.is_some() {
                format!("/steps/{i}/where")
            } else {
                format!("/steps/{i}")
            };
            cx.push(
                site,
                Diagnostic::error(
                    "uncorrelated_await",
                    ptr,
                    format!(
                        "this plan is started by a trigger correlated by `{}`, but await_event `{}` does not filter on it, so it could take another run's event",
                        missing.join("`, `"),
                        s.id
                    ),
                )
                .expected(format!("a `where` that reads @event.{key}"))
                .found(if where_.is_some() { "a `where` that never reads it" } else { "no `where`" })
                .hint(format!(
                    "filter on the key, e.g. \"where\": {{\"op\": \"eq\", \"args\": [{{\"ref\": \"@event.{key}\"}}, {{\"ref\": \"@plan.input.{key}\"}}]}}"
                )),
            );
        }
    }

    // required_caps / allowed_effects, when given, equal what the steps use.
    let (caps, kinds) = derived_sets(p);
    if let (Some(given), false) = (&p.required_caps, unknown_grant) {
        derived(
            cx,
            site,
            "/required_caps",
            "required_caps",
            "cap grants",
            given,
            &caps,
        );
    }
    if let (Some(given), false) = (&p.allowed_effects, unknown_kind) {
        derived(
            cx,
            site,
            "/allowed_effects",
            "allowed_effects",
            "effect kinds",
            given,
            &kinds,
        );
    }
}

fn grants_of_type(cx: &Ctx<'_>, cap_type: &str) -> String {
    let names: Vec<&str> = cx
        .grants
        .iter()
        .filter(|(_, g)| cx.cap(&g.cap).is_some_and(|c| c.cap_type == cap_type))
        .map(|(n, _)| *n)
        .collect();
    if names.is_empty() {
        format!("add a grant of a defcap with cap_type `{cap_type}` to the manifest's defaults.cap_grants")
    } else {
        format!("grants of that type: {}", names.join(", "))
    }
}

/// A step id in an edge.
fn step_ref(
    cx: &mut Ctx<'_>,
    site: Site<'_>,
    index: &BTreeMap<&str, usize>,
    id: &str,
    ptr: String,
) -> Option<usize> {
    if let Some(&i) = index.get(id) {
        return Some(i);
    }
    cx.push(site, unknown_step(index, id, ptr));
    None
}

fn unknown_step(index: &BTreeMap<&str, usize>, id: &str, ptr: String) -> Diagnostic {
    let d = Diagnostic::error("unknown_step", ptr, format!("no step has the id `{id}`"))
        .expected(format!(
            "a step id: {}",
            index.keys().copied().collect::<Vec<_>>().join(", ")
        ))
        .found(id.to_string());
    match suggest(id, index.keys().copied()) {
        Some(s) => d.hint(format!("did you mean `{s}`?")),
        None => d,
    }
}

/// `await_receipt.for` is `@var:H` where an emit_effect binds H with `effect_id_as`.
fn await_receipt(
    cx: &mut Ctx<'_>,
    site: Site<'_>,
    for_: &Expr,
    vars: &BTreeMap<&str, Binder>,
    b: &str,
) {
    let handles: Vec<&str> = vars
        .iter()
        .filter(|(_, w)| matches!(w, Binder::Handle))
        .map(|(k, _)| *k)
        .collect();
    let (message, found) = match for_ {
        Expr::Ref(ExprRef::Var(h)) => match vars.get(h.as_str()) {
            Some(Binder::Handle) => return,
            Some(_) => (format!("@var:{h} is not an effect handle: no emit_effect step binds it with `effect_id_as`"), format!("@var:{h}")),
            None => (format!("@var:{h} is not bound by any step"), format!("@var:{h}")),
        },
        other => ("`for` must name the handle of an emitted effect".to_string(), crate::diag::show(&other.to_json())),
    };
    let mut d = Diagnostic::error("bad_await_for", format!("{b}/for"), message)
        .expected(format!(
            "{{\"ref\": \"@var:H\"}} where an emit_effect binds H; handles here: {}",
            handles.join(", ")
        ))
        .found(found);
    if let Expr::Ref(ExprRef::Var(h)) = for_ {
        if let Some(s) = suggest(h, handles.iter().copied()) {
            d = d.hint(format!("did you mean @var:{s}?"));
        }
    }
    if d.hint.is_none() {
        d = d.hint("bind the effect with \"bind\": {\"effect_id_as\": \"H\"} on its emit_effect step and await @var:H");
    }
    cx.push(site, d);
}

/// Every reference in an expression, with the JSON pointer of its `ref` string.
fn expr_refs<'e>(e: &'e Expr, ptr: String, out: &mut Vec<(String, &'e ExprRef)>) {
    match e {
        Expr::Ref(r) => out.push((format!("{ptr}/ref"), r)),
        Expr::Const(..) => {}
        Expr::Op(_, args) => args
            .iter()
            .enumerate()
            .for_each(|(i, a)| expr_refs(a, format!("{ptr}/args/{i}"), out)),
        Expr::Record(m) => m
            .iter()
            .for_each(|(k, v)| expr_refs(v, format!("{ptr}/record/{}", token(k)), out)),
        Expr::List(v) => v
            .iter()
            .enumerate()
            .for_each(|(i, a)| expr_refs(a, format!("{ptr}/list/{i}"), out)),
        Expr::Set(v) => v
            .iter()
            .enumerate()
            .for_each(|(i, a)| expr_refs(a, format!("{ptr}/set/{i}"), out)),
        Expr::Map(v) => v.iter().enumerate().for_each(|(i, (k, val))| {
            expr_refs(k, format!("{ptr}/map/{i}/key"), out);
            expr_refs(val, format!("{ptr}/map/{i}/value"), out);
        }),
        Expr::Variant(_, Some(v)) => expr_refs(v, format!("{ptr}/variant/value"), out),
        Expr::Variant(_, None) => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn expr_ref(
    cx: &mut Ctx<'_>,
    site: Site<'_>,
    r: &ExprRef,
    ptr: String,
    place: Place,
    vars: &BTreeMap<&str, Binder>,
    index: &BTreeMap<&str, usize>,
    input_ty: Option<&TypeExpr>,
    await_types: &BTreeMap<usize, &TypeExpr>,
) -> bool {
    let before = cx.diags.len();
    match r {
        ExprRef::PlanInput(path) => {
            if let Some(ty) = input_ty {
                field_path(cx, site, ty, path, "@plan.input", ptr);
            }
        }
        ExprRef::Var(v) => {
            if !vars.contains_key(v.as_str()) {
                let bound: Vec<&str> = vars.keys().copied().collect();
                let mut d = Diagnostic::error("unknown_var", ptr, format!("@var:{v} is not bound by any step and not declared in `locals`"))
                    .expected(format!("a bound variable: {}", bound.join(", ")))
                    .found(format!("@var:{v}"));
                d = match suggest(v, bound.iter().copied()) {
                    Some(s) => d.hint(format!("did you mean @var:{s}?")),
                    None => d.hint("bind it with a step's \"bind\" (assign, await_receipt, await_event: `as`; emit_effect: `effect_id_as`) or declare it in `locals`"),
                };
                cx.push(site, d);
            }
        }
        ExprRef::Step(id, _) => {
            if !index.contains_key(id.as_str()) {
                cx.push(site, unknown_step(index, id, ptr));
            }
        }
        ExprRef::Event(path) => match place {
            Place::Where(i) => {
                if let Some(ty) = await_types.get(&i) {
                    field_path(cx, site, ty, path, "@event", ptr);
                }
            }
            Place::Invariant => cx.push(
                site,
                Diagnostic::error("event_in_invariant", ptr, "an invariant may not read @event")
                    .expected("@plan.input, @var:… or @step:… references")
                    .found(r.to_text())
                    .hint("invariants hold after every step, when there is no current event; bind the event with await_event and read @var:…"),
            ),
            Place::Plain => cx.push(
                site,
                Diagnostic::error("misplaced_event_ref", ptr, "@event may only appear in an await_event `where`")
                    .expected("@plan.input, @var:… or @step:… references")
                    .found(r.to_text())
                    .hint("bind the awaited event with await_event \"bind\": {\"as\": \"evt\"} and read @var:evt"),
            ),
        },
    }
    cx.diags.len() > before
}

/// A field path read by an expression exists (leniently: only a record without the
/// field is an error).
fn field_path(
    cx: &mut Ctx<'_>,
    site: Site<'_>,
    ty: &TypeExpr,
    path: &[String],
    root: &str,
    ptr: String,
) {
    if path.is_empty() {
        return;
    }
    let segs: Vec<&str> = path.iter().map(String::as_str).collect();
    if let Err(why) = cx.path_types(ty, &segs, false) {
        cx.push(
            site,
            Diagnostic::error(
                "unknown_field_ref",
                ptr,
                format!("{root}.{} does not exist: {why}", segs.join(".")),
            )
            .expected("a path through the fields of the schema")
            .found(format!("{root}.{}", segs.join(".")))
            .hint("check the field names in the schema"),
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn derived(
    cx: &mut Ctx<'_>,
    site: Site<'_>,
    ptr: &str,
    field: &str,
    what: &str,
    given: &[String],
    derived: &[String],
) {
    let given: BTreeSet<&str> = given.iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = derived.iter().map(String::as_str).collect();
    let missing: Vec<&str> = want.difference(&given).copied().collect();
    let extra: Vec<&str> = given.difference(&want).copied().collect();
    if missing.is_empty() && extra.is_empty() {
        return;
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        parts.push(format!("extra {}", extra.join(", ")));
    }
    cx.push(
        site,
        Diagnostic::error(
            "derived_mismatch",
            ptr,
            format!("`{field}` does not match the {what} the emit_effect steps use: {}", parts.join("; ")),
        )
        .expected(format!("{:?}", want.iter().collect::<Vec<_>>()))
        .found(format!("{:?}", given.iter().collect::<Vec<_>>()))
        .hint(format!("list exactly the {what} of the emit_effect steps, or leave `{field}` out: it is derived")),
    );
}
