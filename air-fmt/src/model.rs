//! The data model of every AIR v1 form — `defschema`, `defmodule`, `defplan`, `defcap`,
//! `defpolicy`, `defeffect`, `defsecret` and the `manifest` — parsed from JSON with
//! precise diagnostics and written back in one canonical JSON form (the form that is
//! hashed).

use std::collections::BTreeMap;

use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::diag::{show, token, Diagnostic};
use crate::expr::{Expr, ExprOrValue};
use crate::json::{ident_at, kind_at, strings, Obj};
use crate::name::Name;
use crate::types::TypeExpr;

/// The kinds of AIR nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DefKind {
    Schema,
    Module,
    Plan,
    Cap,
    Policy,
    Effect,
    Secret,
    Manifest,
}

impl DefKind {
    pub const ALL: [DefKind; 8] = [
        DefKind::Schema,
        DefKind::Module,
        DefKind::Plan,
        DefKind::Cap,
        DefKind::Policy,
        DefKind::Effect,
        DefKind::Secret,
        DefKind::Manifest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DefKind::Schema => "defschema",
            DefKind::Module => "defmodule",
            DefKind::Plan => "defplan",
            DefKind::Cap => "defcap",
            DefKind::Policy => "defpolicy",
            DefKind::Effect => "defeffect",
            DefKind::Secret => "defsecret",
            DefKind::Manifest => "manifest",
        }
    }

    pub fn parse(s: &str) -> Option<DefKind> {
        DefKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The manifest list that names defs of this kind.
    pub fn manifest_key(self) -> &'static str {
        match self {
            DefKind::Schema => "schemas",
            DefKind::Module => "modules",
            DefKind::Plan => "plans",
            DefKind::Cap => "caps",
            DefKind::Policy => "policies",
            DefKind::Effect => "effects",
            DefKind::Secret => "secrets",
            DefKind::Manifest => "manifest",
        }
    }
}

/// A hash as authored: filled, or a placeholder the tools fill (empty, all zeros, or
/// the original project's `sha256:` form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashRef {
    Filled(Hash),
    Placeholder(String),
}

impl HashRef {
    pub fn parse(s: &str, ptr: &str, diags: &mut Vec<Diagnostic>) -> Option<HashRef> {
        let hex = s.split_once(':').map_or(s, |(_, h)| h);
        if s.is_empty()
            || s.starts_with("sha256:")
            || (!hex.is_empty() && hex.bytes().all(|b| b == b'0'))
        {
            return Some(HashRef::Placeholder(s.to_string()));
        }
        match s.parse::<Hash>() {
            Ok(h) => Some(HashRef::Filled(h)),
            Err(e) => {
                diags.push(
                    Diagnostic::error("bad_hash", ptr, e.to_string())
                        .hint("leave it empty (\"\") to have the tools fill it in"),
                );
                None
            }
        }
    }

    pub fn filled(&self) -> Option<Hash> {
        match self {
            HashRef::Filled(h) => Some(*h),
            HashRef::Placeholder(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefSchema {
    pub name: Name,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    Reducer,
    Pure,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReducerAbi {
    pub state: Name,
    pub event: Name,
    pub annotations: Option<Name>,
    pub effects_emitted: Vec<String>,
    pub cap_slots: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PureAbi {
    pub input: Name,
    pub output: Name,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefModule {
    pub name: Name,
    pub module_kind: ModuleKind,
    pub wasm_hash: Option<HashRef>,
    pub key_schema: Option<Name>,
    pub reducer: Option<ReducerAbi>,
    pub pure: Option<PureAbi>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    RaiseEvent {
        event: Name,
        value: ExprOrValue,
    },
    EmitEffect {
        kind: String,
        params: ExprOrValue,
        cap: String,
        idempotency_key: Option<ExprOrValue>,
        bind: String,
    },
    AwaitReceipt {
        for_: Expr,
        bind: String,
    },
    AwaitEvent {
        event: Name,
        where_: Option<Expr>,
        bind: String,
    },
    Assign {
        expr: ExprOrValue,
        bind: String,
    },
    End {
        result: Option<ExprOrValue>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub when: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefPlan {
    pub name: Name,
    pub input: Name,
    pub output: Option<Name>,
    pub locals: BTreeMap<String, Name>,
    pub steps: Vec<Step>,
    pub edges: Vec<Edge>,
    pub required_caps: Option<Vec<String>>,
    pub allowed_effects: Option<Vec<String>>,
    pub invariants: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefCap {
    pub name: Name,
    pub cap_type: String,
    pub schema: TypeExpr,
    pub enforcer: Option<Name>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Match {
    pub effect_kind: Option<String>,
    pub cap_name: Option<String>,
    pub origin_kind: Option<String>,
    pub origin_name: Option<Name>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub when: Match,
    pub allow: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefPolicy {
    pub name: Name,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefEffect {
    pub name: Name,
    pub kind: String,
    pub params_schema: Name,
    pub receipt_schema: Name,
    pub cap_type: String,
    pub origin_scope: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefSecret {
    pub name: Name,
    pub binding_id: String,
    pub expected_digest: Option<String>,
    pub allowed_caps: Vec<String>,
    pub allowed_plans: Vec<Name>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NamedRef {
    pub name: Name,
    pub hash: Option<HashRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CapGrant {
    pub name: String,
    pub cap: Name,
    pub params: Value,
    pub expiry_ns: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Defaults {
    pub policy: Option<Name>,
    pub cap_grants: Vec<CapGrant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteEvent {
    pub event: Name,
    pub reducer: Name,
    pub key_field: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inbox {
    pub source: String,
    pub reducer: Name,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub event: Name,
    pub plan: Name,
    pub correlate_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    pub air_version: String,
    /// Named refs per def kind (every kind but Manifest).
    pub refs: BTreeMap<DefKind, Vec<NamedRef>>,
    pub defaults: Defaults,
    pub module_bindings: BTreeMap<Name, BTreeMap<String, String>>,
    pub routing_events: Vec<RouteEvent>,
    pub inboxes: Vec<Inbox>,
    pub triggers: Vec<Trigger>,
}

/// One parsed definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Def {
    Schema(DefSchema),
    Module(DefModule),
    Plan(DefPlan),
    Cap(DefCap),
    Policy(DefPolicy),
    Effect(DefEffect),
    Secret(DefSecret),
}

impl Def {
    pub fn name(&self) -> &Name {
        match self {
            Def::Schema(d) => &d.name,
            Def::Module(d) => &d.name,
            Def::Plan(d) => &d.name,
            Def::Cap(d) => &d.name,
            Def::Policy(d) => &d.name,
            Def::Effect(d) => &d.name,
            Def::Secret(d) => &d.name,
        }
    }

    pub fn kind(&self) -> DefKind {
        match self {
            Def::Schema(_) => DefKind::Schema,
            Def::Module(_) => DefKind::Module,
            Def::Plan(_) => DefKind::Plan,
            Def::Cap(_) => DefKind::Cap,
            Def::Policy(_) => DefKind::Policy,
            Def::Effect(_) => DefKind::Effect,
            Def::Secret(_) => DefKind::Secret,
        }
    }
}

/// A parsed node: a def or the manifest.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Def(Def),
    Manifest(Manifest),
}

/// Parse one node. Diagnostics carry pointers relative to the node.
pub fn parse_node(v: &Value, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let mut o = Obj::new(v, "", "an AIR node", diags)?;
    let kind = o.req_str("$kind", diags)?;
    let Some(kind) = DefKind::parse(kind) else {
        diags.push(
            Diagnostic::error("unknown_kind", "/$kind", format!("unknown `$kind` {kind:?}"))
                .expected("defschema, defmodule, defplan, defcap, defpolicy, defeffect, defsecret or manifest"),
        );
        return None;
    };
    let before = diags.len();
    let node = match kind {
        DefKind::Schema => parse_schema(&mut o, diags).map(Def::Schema).map(Node::Def),
        DefKind::Module => parse_module(&mut o, diags).map(Def::Module).map(Node::Def),
        DefKind::Plan => parse_plan(&mut o, diags).map(Def::Plan).map(Node::Def),
        DefKind::Cap => parse_cap(&mut o, diags).map(Def::Cap).map(Node::Def),
        DefKind::Policy => parse_policy(&mut o, diags).map(Def::Policy).map(Node::Def),
        DefKind::Effect => parse_effect(&mut o, diags).map(Def::Effect).map(Node::Def),
        DefKind::Secret => parse_secret(&mut o, diags).map(Def::Secret).map(Node::Def),
        DefKind::Manifest => parse_manifest(&mut o, diags).map(Node::Manifest),
    };
    o.finish(diags);
    if diags[before..].iter().any(Diagnostic::is_error) {
        return None;
    }
    node
}

fn parse_schema(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefSchema> {
    let name = o.req_name("name", d);
    let ty = o
        .req("type", d)
        .and_then(|t| TypeExpr::parse(t, "/type", d));
    Some(DefSchema {
        name: name?,
        ty: ty?,
    })
}

fn parse_module(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefModule> {
    let name = o.req_name("name", d);
    let module_kind = match o.req_str("module_kind", d) {
        Some("reducer") => Some(ModuleKind::Reducer),
        Some("pure") => Some(ModuleKind::Pure),
        Some(other) => {
            d.push(
                Diagnostic::error("bad_value", "/module_kind", "unknown module kind")
                    .expected("reducer or pure")
                    .found(format!("{other:?}")),
            );
            None
        }
        None => None,
    };
    let wasm_hash = match o.get("wasm_hash") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => HashRef::parse(s, "/wasm_hash", d),
        Some(other) => {
            d.push(
                Diagnostic::error("wrong_type", "/wasm_hash", "`wasm_hash` must be a string")
                    .found(show(other)),
            );
            None
        }
    };
    let key_schema = o.opt_name("key_schema", d);
    let (mut reducer, mut pure) = (None, None);
    if let Some(abi) = o.req("abi", d) {
        if let Some(mut a) = Obj::new(abi, "/abi", "`abi`", d) {
            if let Some(r) = a.get("reducer") {
                if let Some(mut r) = Obj::new(r, "/abi/reducer", "`abi.reducer`", d) {
                    let state = r.req_name("state", d);
                    let event = r.req_name("event", d);
                    let annotations = r.opt_name("annotations", d);
                    let effects_emitted = r
                        .get("effects_emitted")
                        .map(|v| {
                            strings(v, "/abi/reducer/effects_emitted", d)
                                .into_iter()
                                .filter_map(|(p, s)| kind_at(&p, "effects_emitted", &s, d))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut cap_slots = BTreeMap::new();
                    if let Some(slots) = r.opt_object("cap_slots", d) {
                        for (slot, ty) in slots {
                            let p = format!("/abi/reducer/cap_slots/{}", token(slot));
                            match ty.as_str() {
                                Some(t) => {
                                    if ident_at(&p, "cap slot", slot, d).is_some()
                                        && kind_at(&p, "cap type", t, d).is_some()
                                    {
                                        cap_slots.insert(slot.clone(), t.to_string());
                                    }
                                }
                                None => d.push(
                                    Diagnostic::error(
                                        "wrong_type",
                                        p,
                                        "a cap slot maps to a capability type string",
                                    )
                                    .found(show(ty)),
                                ),
                            }
                        }
                    }
                    r.finish(d);
                    if let (Some(state), Some(event)) = (state, event) {
                        reducer = Some(ReducerAbi {
                            state,
                            event,
                            annotations,
                            effects_emitted,
                            cap_slots,
                        });
                    }
                }
            }
            if let Some(p) = a.get("pure") {
                if let Some(mut p) = Obj::new(p, "/abi/pure", "`abi.pure`", d) {
                    let input = p.req_name("input", d);
                    let output = p.req_name("output", d);
                    p.finish(d);
                    if let (Some(input), Some(output)) = (input, output) {
                        pure = Some(PureAbi { input, output });
                    }
                }
            }
            a.finish(d);
        }
    }
    let module_kind = module_kind?;
    match module_kind {
        ModuleKind::Reducer
            if reducer.is_none() && !d.iter().any(|x| x.pointer.starts_with("/abi")) =>
        {
            d.push(Diagnostic::error(
                "missing_field",
                "/abi",
                "a reducer module needs `abi.reducer` with `state` and `event` schemas",
            ));
        }
        ModuleKind::Pure if pure.is_none() && !d.iter().any(|x| x.pointer.starts_with("/abi")) => {
            d.push(Diagnostic::error(
                "missing_field",
                "/abi",
                "a pure module needs `abi.pure` with `input` and `output` schemas",
            ));
        }
        _ => {}
    }
    Some(DefModule {
        name: name?,
        module_kind,
        wasm_hash,
        key_schema,
        reducer,
        pure,
    })
}

fn parse_bind_as(
    v: Option<&Value>,
    ptr: &str,
    key: &'static str,
    d: &mut Vec<Diagnostic>,
) -> Option<String> {
    let Some(v) = v else {
        d.push(Diagnostic::error(
            "missing_field",
            ptr,
            format!("required field `bind` with `{key}` is missing"),
        ));
        return None;
    };
    let mut b = Obj::new(v, &format!("{ptr}/bind"), "`bind`", d)?;
    let name = b.req_ident(key, d);
    b.finish(d);
    name
}

fn parse_step(v: &Value, ptr: &str, d: &mut Vec<Diagnostic>) -> Option<Step> {
    let mut o = Obj::new(v, ptr, "a step", d)?;
    let id = o.req_ident("id", d);
    let op = o.req_str("op", d);
    let kind = match op {
        Some("raise_event") => {
            let event = o.req_name("event", d);
            let value = o
                .req("value", d)
                .map(|v| ExprOrValue::parse(v, &format!("{ptr}/value"), d));
            Some(StepKind::RaiseEvent {
                event: event?,
                value: value?,
            })
        }
        Some("emit_effect") => {
            let kind = o.req_kind("kind", d);
            let params = o
                .req("params", d)
                .map(|v| ExprOrValue::parse(v, &format!("{ptr}/params"), d));
            let cap = o.req_ident("cap", d);
            let idempotency_key = o
                .get("idempotency_key")
                .map(|v| ExprOrValue::parse(v, &format!("{ptr}/idempotency_key"), d));
            let bind = parse_bind_as(o.get("bind"), ptr, "effect_id_as", d);
            Some(StepKind::EmitEffect {
                kind: kind?,
                params: params?,
                cap: cap?,
                idempotency_key,
                bind: bind?,
            })
        }
        Some("await_receipt") => {
            let for_ = o
                .req("for", d)
                .and_then(|v| Expr::parse(v, &format!("{ptr}/for"), d));
            let bind = parse_bind_as(o.get("bind"), ptr, "as", d);
            Some(StepKind::AwaitReceipt {
                for_: for_?,
                bind: bind?,
            })
        }
        Some("await_event") => {
            let event = o.req_name("event", d);
            let where_ = o
                .get("where")
                .and_then(|v| Expr::parse(v, &format!("{ptr}/where"), d));
            let bind = parse_bind_as(o.get("bind"), ptr, "as", d);
            Some(StepKind::AwaitEvent {
                event: event?,
                where_,
                bind: bind?,
            })
        }
        Some("assign") => {
            let expr = o
                .req("expr", d)
                .map(|v| ExprOrValue::parse(v, &format!("{ptr}/expr"), d));
            let bind = parse_bind_as(o.get("bind"), ptr, "as", d);
            Some(StepKind::Assign {
                expr: expr?,
                bind: bind?,
            })
        }
        Some("end") => Some(StepKind::End {
            result: o
                .get("result")
                .map(|v| ExprOrValue::parse(v, &format!("{ptr}/result"), d)),
        }),
        Some(other) => {
            d.push(
                Diagnostic::error(
                    "unknown_step",
                    format!("{ptr}/op"),
                    format!("unknown step op {other:?}"),
                )
                .expected("raise_event, emit_effect, await_receipt, await_event, assign or end"),
            );
            None
        }
        None => None,
    };
    o.finish(d);
    Some(Step {
        id: id?,
        kind: kind?,
    })
}

fn parse_plan(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefPlan> {
    let name = o.req_name("name", d);
    let input = o.req_name("input", d);
    let output = o.opt_name("output", d);
    let mut locals = BTreeMap::new();
    if let Some(m) = o.opt_object("locals", d) {
        for (k, v) in m {
            let p = format!("/locals/{}", token(k));
            match v.as_str().map(Name::parse) {
                Some(Ok(n)) if ident_at(&p, "local", k, d).is_some() => {
                    locals.insert(k.clone(), n);
                }
                Some(Ok(_)) => {}
                _ => d.push(
                    Diagnostic::error("bad_name", p, "a local maps to a schema name")
                        .found(show(v)),
                ),
            }
        }
    }
    let mut steps = Vec::new();
    match o.req("steps", d) {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                d.push(
                    Diagnostic::error("empty_plan", "/steps", "a plan needs at least one step")
                        .hint("end a plan with {\"id\": \"end\", \"op\": \"end\"}"),
                );
            }
            for (i, s) in items.iter().enumerate() {
                if let Some(s) = parse_step(s, &format!("/steps/{i}"), d) {
                    steps.push(s);
                }
            }
        }
        Some(other) => d.push(
            Diagnostic::error("wrong_type", "/steps", "`steps` must be an array")
                .found(show(other)),
        ),
        None => {}
    }
    let mut edges = Vec::new();
    for (i, e) in o.opt_array("edges", d).into_iter().flatten().enumerate() {
        let p = format!("/edges/{i}");
        if let Some(mut eo) = Obj::new(e, &p, "an edge", d) {
            let from = eo.req_ident("from", d);
            let to = eo.req_ident("to", d);
            let when = eo
                .get("when")
                .and_then(|w| Expr::parse(w, &format!("{p}/when"), d));
            eo.finish(d);
            if let (Some(from), Some(to)) = (from, to) {
                edges.push(Edge { from, to, when });
            }
        }
    }
    let list = |o: &mut Obj<'_>, key: &'static str, d: &mut Vec<Diagnostic>| {
        o.get(key).filter(|v| !v.is_null()).map(|v| {
            strings(v, &format!("/{key}"), d)
                .into_iter()
                .map(|(_, s)| s)
                .collect::<Vec<_>>()
        })
    };
    let required_caps = list(o, "required_caps", d);
    let allowed_effects = list(o, "allowed_effects", d);
    let invariants = o
        .opt_array("invariants", d)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, e)| Expr::parse(e, &format!("/invariants/{i}"), d))
        .collect();
    Some(DefPlan {
        name: name?,
        input: input?,
        output,
        locals,
        steps,
        edges,
        required_caps,
        allowed_effects,
        invariants,
    })
}

fn parse_cap(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefCap> {
    let name = o.req_name("name", d);
    let cap_type = o.req_kind("cap_type", d);
    let schema = o
        .req("schema", d)
        .and_then(|t| TypeExpr::parse(t, "/schema", d));
    let enforcer = match o.get("enforcer") {
        None | Some(Value::Null) => None,
        Some(v) => Obj::new(v, "/enforcer", "`enforcer`", d).and_then(|mut e| {
            let m = e.req_name("module", d);
            e.finish(d);
            m
        }),
    };
    Some(DefCap {
        name: name?,
        cap_type: cap_type?,
        schema: schema?,
        enforcer,
    })
}

fn parse_policy(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefPolicy> {
    let name = o.req_name("name", d);
    let mut rules = Vec::new();
    match o.req("rules", d) {
        Some(Value::Array(items)) => {
            for (i, r) in items.iter().enumerate() {
                let p = format!("/rules/{i}");
                let Some(mut ro) = Obj::new(r, &p, "a rule", d) else {
                    continue;
                };
                let mut when = Match::default();
                if let Some(w) = ro.req("when", d) {
                    if let Some(mut wo) = Obj::new(w, &format!("{p}/when"), "`when`", d) {
                        when.effect_kind = wo.opt_str("effect_kind", d).and_then(|s| {
                            kind_at(&format!("{p}/when/effect_kind"), "effect_kind", s, d)
                        });
                        when.cap_name = wo.opt_str("cap_name", d).and_then(|s| {
                            ident_at(&format!("{p}/when/cap_name"), "cap_name", s, d)
                        });
                        when.origin_kind = match wo.opt_str("origin_kind", d) {
                            Some(k @ ("plan" | "reducer")) => Some(k.to_string()),
                            Some(other) => {
                                d.push(
                                    Diagnostic::error(
                                        "bad_value",
                                        format!("{p}/when/origin_kind"),
                                        "unknown origin kind",
                                    )
                                    .expected("plan or reducer")
                                    .found(format!("{other:?}")),
                                );
                                None
                            }
                            None => None,
                        };
                        when.origin_name = wo.opt_name("origin_name", d);
                        wo.finish(d);
                    }
                }
                let allow = match ro.req_str("decision", d) {
                    Some("allow") => Some(true),
                    Some("deny") => Some(false),
                    Some(other) => {
                        d.push(
                            Diagnostic::error(
                                "bad_value",
                                format!("{p}/decision"),
                                "unknown decision",
                            )
                            .expected("allow or deny")
                            .found(format!("{other:?}")),
                        );
                        None
                    }
                    None => None,
                };
                ro.finish(d);
                if let Some(allow) = allow {
                    rules.push(Rule { when, allow });
                }
            }
        }
        Some(other) => d.push(
            Diagnostic::error("wrong_type", "/rules", "`rules` must be an array")
                .found(show(other)),
        ),
        None => {}
    }
    Some(DefPolicy { name: name?, rules })
}

fn parse_effect(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefEffect> {
    let name = o.req_name("name", d);
    let kind = o.req_kind("kind", d);
    let params_schema = o.req_name("params_schema", d);
    let receipt_schema = o.req_name("receipt_schema", d);
    let cap_type = o.req_kind("cap_type", d);
    let origin_scope = match o.req_str("origin_scope", d) {
        Some(s @ ("reducer" | "plan" | "both")) => Some(s.to_string()),
        Some(other) => {
            d.push(
                Diagnostic::error("bad_value", "/origin_scope", "unknown origin scope")
                    .expected("reducer, plan or both")
                    .found(format!("{other:?}")),
            );
            None
        }
        None => None,
    };
    let description = o.opt_str("description", d).map(str::to_string);
    Some(DefEffect {
        name: name?,
        kind: kind?,
        params_schema: params_schema?,
        receipt_schema: receipt_schema?,
        cap_type: cap_type?,
        origin_scope: origin_scope?,
        description,
    })
}

fn parse_secret(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefSecret> {
    let name = o.req_name("name", d);
    let binding_id = o.req_str("binding_id", d).map(str::to_string);
    let expected_digest = o.opt_str("expected_digest", d).map(str::to_string);
    let allowed_caps = o
        .get("allowed_caps")
        .map(|v| {
            strings(v, "/allowed_caps", d)
                .into_iter()
                .map(|(_, s)| s)
                .collect()
        })
        .unwrap_or_default();
    let allowed_plans = o
        .get("allowed_plans")
        .map(|v| {
            strings(v, "/allowed_plans", d)
                .into_iter()
                .filter_map(|(p, s)| match Name::parse(&s) {
                    Ok(n) => Some(n),
                    Err(why) => {
                        d.push(Diagnostic::error("bad_name", p, why));
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Some(DefSecret {
        name: name?,
        binding_id: binding_id?,
        expected_digest,
        allowed_caps,
        allowed_plans,
    })
}

fn parse_manifest(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<Manifest> {
    let mut m = Manifest {
        air_version: o.req_str("air_version", d).unwrap_or("1").to_string(),
        ..Manifest::default()
    };
    if m.air_version != "1" {
        d.push(
            Diagnostic::error("bad_value", "/air_version", "unsupported AIR version")
                .expected("\"1\"")
                .found(format!("{:?}", m.air_version)),
        );
    }
    for kind in DefKind::ALL.into_iter().filter(|k| *k != DefKind::Manifest) {
        let key = kind.manifest_key();
        let mut list = Vec::new();
        for (i, item) in o.opt_array(key, d).into_iter().flatten().enumerate() {
            let p = format!("/{key}/{i}");
            let Some(mut r) = Obj::new(item, &p, "a named reference", d) else {
                continue;
            };
            let name = r.req_name("name", d);
            let hash = r
                .opt_str("hash", d)
                .and_then(|h| HashRef::parse(h, &format!("{p}/hash"), d));
            r.finish(d);
            if let Some(name) = name {
                list.push(NamedRef { name, hash });
            }
        }
        m.refs.insert(kind, list);
    }
    if let Some(defaults) = o.get("defaults").filter(|v| !v.is_null()) {
        if let Some(mut dobj) = Obj::new(defaults, "/defaults", "`defaults`", d) {
            m.defaults.policy = dobj.opt_name("policy", d);
            for (i, g) in dobj
                .opt_array("cap_grants", d)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let p = format!("/defaults/cap_grants/{i}");
                let Some(mut go) = Obj::new(g, &p, "a cap grant", d) else {
                    continue;
                };
                let name = go.req_ident("name", d);
                let cap = go.req_name("cap", d);
                let params = go.req("params", d).cloned();
                let expiry_ns = match go.get("expiry_ns") {
                    None | Some(Value::Null) => None,
                    Some(v) => match serde_json::from_value::<U64>(v.clone()) {
                        Ok(U64(n)) => Some(n),
                        Err(_) => {
                            d.push(
                                Diagnostic::error(
                                    "wrong_type",
                                    format!("{p}/expiry_ns"),
                                    "`expiry_ns` is nanoseconds since the epoch",
                                )
                                .found(show(v)),
                            );
                            None
                        }
                    },
                };
                go.finish(d);
                if let (Some(name), Some(cap), Some(params)) = (name, cap, params) {
                    m.defaults.cap_grants.push(CapGrant {
                        name,
                        cap,
                        params,
                        expiry_ns,
                    });
                }
            }
            dobj.finish(d);
        }
    }
    if let Some(b) = o.opt_object("module_bindings", d) {
        for (module, binding) in b {
            let p = format!("/module_bindings/{}", token(module));
            let Ok(module) = Name::parse(module) else {
                d.push(Diagnostic::error(
                    "bad_name",
                    p,
                    "module_bindings keys are module names",
                ));
                continue;
            };
            let Some(mut bo) = Obj::new(binding, &p, "a module binding", d) else {
                continue;
            };
            let mut slots = BTreeMap::new();
            if let Some(s) = bo.opt_object("slots", d) {
                for (slot, grant) in s {
                    match grant.as_str() {
                        Some(g) => {
                            slots.insert(slot.clone(), g.to_string());
                        }
                        None => d.push(
                            Diagnostic::error(
                                "wrong_type",
                                format!("{p}/slots/{}", token(slot)),
                                "a slot binds to a grant name",
                            )
                            .found(show(grant)),
                        ),
                    }
                }
            }
            bo.finish(d);
            m.module_bindings.insert(module, slots);
        }
    }
    if let Some(r) = o.get("routing").filter(|v| !v.is_null()) {
        if let Some(mut ro) = Obj::new(r, "/routing", "`routing`", d) {
            for (i, e) in ro.opt_array("events", d).into_iter().flatten().enumerate() {
                let p = format!("/routing/events/{i}");
                let Some(mut eo) = Obj::new(e, &p, "a route", d) else {
                    continue;
                };
                let event = eo.req_name("event", d);
                let reducer = eo.req_name("reducer", d);
                let key_field = eo.opt_str("key_field", d).map(str::to_string);
                eo.finish(d);
                if let (Some(event), Some(reducer)) = (event, reducer) {
                    m.routing_events.push(RouteEvent {
                        event,
                        reducer,
                        key_field,
                    });
                }
            }
            for (i, e) in ro.opt_array("inboxes", d).into_iter().flatten().enumerate() {
                let p = format!("/routing/inboxes/{i}");
                let Some(mut eo) = Obj::new(e, &p, "an inbox", d) else {
                    continue;
                };
                let source = eo.req_str("source", d).map(str::to_string);
                let reducer = eo.req_name("reducer", d);
                eo.finish(d);
                if let (Some(source), Some(reducer)) = (source, reducer) {
                    m.inboxes.push(Inbox { source, reducer });
                }
            }
            ro.finish(d);
        }
    }
    for (i, t) in o.opt_array("triggers", d).into_iter().flatten().enumerate() {
        let p = format!("/triggers/{i}");
        let Some(mut to) = Obj::new(t, &p, "a trigger", d) else {
            continue;
        };
        let event = to.req_name("event", d);
        let plan = to.req_name("plan", d);
        let correlate_by = to.opt_str("correlate_by", d).map(str::to_string);
        to.finish(d);
        if let (Some(event), Some(plan)) = (event, plan) {
            m.triggers.push(Trigger {
                event,
                plan,
                correlate_by,
            });
        }
    }
    Some(m)
}

#[derive(serde::Deserialize)]
struct U64(#[serde(with = "aos_store::canon::int64")] u64);

// ---- canonical JSON ----

fn sorted_unique(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

impl Def {
    /// The canonical JSON of the def as authored (hash references inside are filled
    /// by the caller's `fill` before hashing where needed).
    pub fn to_json(&self) -> Value {
        match self {
            Def::Schema(s) => json!({"$kind": "defschema", "name": s.name, "type": s.ty.to_json()}),
            Def::Module(m) => {
                let mut o = Map::new();
                o.insert("$kind".into(), json!("defmodule"));
                o.insert("name".into(), json!(m.name));
                o.insert(
                    "module_kind".into(),
                    json!(match m.module_kind {
                        ModuleKind::Reducer => "reducer",
                        ModuleKind::Pure => "pure",
                    }),
                );
                if let Some(h) = m.wasm_hash.as_ref().and_then(HashRef::filled) {
                    o.insert("wasm_hash".into(), json!(h));
                }
                if let Some(k) = &m.key_schema {
                    o.insert("key_schema".into(), json!(k));
                }
                let mut abi = Map::new();
                if let Some(r) = &m.reducer {
                    let mut ro = Map::new();
                    ro.insert("state".into(), json!(r.state));
                    ro.insert("event".into(), json!(r.event));
                    if let Some(a) = &r.annotations {
                        ro.insert("annotations".into(), json!(a));
                    }
                    ro.insert(
                        "effects_emitted".into(),
                        json!(sorted_unique(&r.effects_emitted)),
                    );
                    ro.insert("cap_slots".into(), json!(r.cap_slots));
                    abi.insert("reducer".into(), Value::Object(ro));
                }
                if let Some(p) = &m.pure {
                    abi.insert("pure".into(), json!({"input": p.input, "output": p.output}));
                }
                o.insert("abi".into(), Value::Object(abi));
                Value::Object(o)
            }
            Def::Plan(p) => plan_json(p),
            Def::Cap(c) => {
                let mut o = json!({"$kind": "defcap", "name": c.name, "cap_type": c.cap_type, "schema": c.schema.to_json()});
                if let Some(e) = &c.enforcer {
                    o["enforcer"] = json!({"module": e});
                }
                o
            }
            Def::Policy(p) => json!({
                "$kind": "defpolicy",
                "name": p.name,
                "rules": p.rules.iter().map(|r| {
                    let mut w = Map::new();
                    if let Some(v) = &r.when.effect_kind { w.insert("effect_kind".into(), json!(v)); }
                    if let Some(v) = &r.when.cap_name { w.insert("cap_name".into(), json!(v)); }
                    if let Some(v) = &r.when.origin_kind { w.insert("origin_kind".into(), json!(v)); }
                    if let Some(v) = &r.when.origin_name { w.insert("origin_name".into(), json!(v)); }
                    json!({"when": w, "decision": if r.allow { "allow" } else { "deny" }})
                }).collect::<Vec<_>>(),
            }),
            Def::Effect(e) => {
                let mut o = json!({
                    "$kind": "defeffect", "name": e.name, "kind": e.kind, "params_schema": e.params_schema,
                    "receipt_schema": e.receipt_schema, "cap_type": e.cap_type, "origin_scope": e.origin_scope,
                });
                if let Some(desc) = &e.description {
                    o["description"] = json!(desc);
                }
                o
            }
            Def::Secret(s) => {
                let mut o = json!({"$kind": "defsecret", "name": s.name, "binding_id": s.binding_id,
                    "allowed_caps": sorted_unique(&s.allowed_caps),
                    "allowed_plans": sorted_unique(&s.allowed_plans.iter().map(ToString::to_string).collect::<Vec<_>>())});
                if let Some(dg) = &s.expected_digest {
                    o["expected_digest"] = json!(dg);
                }
                o
            }
        }
    }
}

fn plan_json(p: &DefPlan) -> Value {
    let mut o = Map::new();
    o.insert("$kind".into(), json!("defplan"));
    o.insert("name".into(), json!(p.name));
    o.insert("input".into(), json!(p.input));
    if let Some(out) = &p.output {
        o.insert("output".into(), json!(out));
    }
    o.insert("locals".into(), json!(p.locals));
    let steps: Vec<Value> = p
        .steps
        .iter()
        .map(|s| {
            let mut so = Map::new();
            so.insert("id".into(), json!(s.id));
            match &s.kind {
                StepKind::RaiseEvent { event, value } => {
                    so.insert("op".into(), json!("raise_event"));
                    so.insert("event".into(), json!(event));
                    so.insert("value".into(), value.to_json());
                }
                StepKind::EmitEffect {
                    kind,
                    params,
                    cap,
                    idempotency_key,
                    bind,
                } => {
                    so.insert("op".into(), json!("emit_effect"));
                    so.insert("kind".into(), json!(kind));
                    so.insert("params".into(), params.to_json());
                    so.insert("cap".into(), json!(cap));
                    if let Some(k) = idempotency_key {
                        so.insert("idempotency_key".into(), k.to_json());
                    }
                    so.insert("bind".into(), json!({"effect_id_as": bind}));
                }
                StepKind::AwaitReceipt { for_, bind } => {
                    so.insert("op".into(), json!("await_receipt"));
                    so.insert("for".into(), for_.to_json());
                    so.insert("bind".into(), json!({"as": bind}));
                }
                StepKind::AwaitEvent {
                    event,
                    where_,
                    bind,
                } => {
                    so.insert("op".into(), json!("await_event"));
                    so.insert("event".into(), json!(event));
                    if let Some(w) = where_ {
                        so.insert("where".into(), w.to_json());
                    }
                    so.insert("bind".into(), json!({"as": bind}));
                }
                StepKind::Assign { expr, bind } => {
                    so.insert("op".into(), json!("assign"));
                    so.insert("expr".into(), expr.to_json());
                    so.insert("bind".into(), json!({"as": bind}));
                }
                StepKind::End { result } => {
                    so.insert("op".into(), json!("end"));
                    if let Some(r) = result {
                        so.insert("result".into(), r.to_json());
                    }
                }
            }
            Value::Object(so)
        })
        .collect();
    o.insert("steps".into(), json!(steps));
    let mut edges: Vec<Value> = p
        .edges
        .iter()
        .map(|e| {
            let mut eo = json!({"from": e.from, "to": e.to});
            if let Some(w) = &e.when {
                eo["when"] = w.to_json();
            }
            eo
        })
        .collect();
    edges.sort_by_key(|e| e.to_string());
    o.insert("edges".into(), json!(edges));
    let (caps, effects) = derived_sets(p);
    o.insert("required_caps".into(), json!(caps));
    o.insert("allowed_effects".into(), json!(effects));
    o.insert(
        "invariants".into(),
        json!(p.invariants.iter().map(Expr::to_json).collect::<Vec<_>>()),
    );
    Value::Object(o)
}

/// The capability grants and effect kinds a plan's `emit_effect` steps use (sorted).
pub fn derived_sets(p: &DefPlan) -> (Vec<String>, Vec<String>) {
    let mut caps = Vec::new();
    let mut kinds = Vec::new();
    for s in &p.steps {
        if let StepKind::EmitEffect { kind, cap, .. } = &s.kind {
            caps.push(cap.clone());
            kinds.push(kind.clone());
        }
    }
    (sorted_unique(&caps), sorted_unique(&kinds))
}
