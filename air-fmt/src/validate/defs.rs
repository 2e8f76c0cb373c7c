//! Modules, capabilities, effects, policies and secrets.

use std::collections::BTreeMap;

use super::{suggest, Ctx, Site};
use crate::catalog;
use crate::diag::{token, Diagnostic};
use crate::load::Located;
use crate::model::{
    Def, DefCap, DefEffect, DefKind, DefModule, DefPolicy, DefSecret, HashRef, ModuleKind,
};
use crate::name::Name;

pub(super) fn check(cx: &mut Ctx<'_>) {
    let set = cx.set;
    // Effects whose cap type no defcap declares; when there are any, a defcap whose
    // cap type no effect uses is most likely the other half of the same typo, and is
    // not reported again.
    let orphan_effects = set
        .defs
        .values()
        .filter(|l| matches!(&l.item, Def::Effect(e) if !cx.cap_type_for_effect(&e.cap_type)))
        .count();
    let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
    for loc in set.defs.values() {
        match &loc.item {
            Def::Module(m) => module(cx, loc, m),
            Def::Cap(c) => cap(cx, loc, c, orphan_effects > 0),
            Def::Effect(e) => effect(cx, loc, e, &mut kinds),
            Def::Policy(p) => policy(cx, loc, p),
            Def::Secret(s) => secret(cx, loc, s),
            Def::Schema(_) | Def::Plan(_) => {}
        }
    }
}

fn module(cx: &mut Ctx<'_>, loc: &Located<Def>, m: &DefModule) {
    let site = Site::Def(loc);
    if let Some(k) = &m.key_schema {
        cx.schema_ref(site, k, "/key_schema");
    }
    if let Some(r) = &m.reducer {
        cx.schema_ref(site, &r.state, "/abi/reducer/state");
        cx.schema_ref(site, &r.event, "/abi/reducer/event");
        if let Some(a) = &r.annotations {
            cx.schema_ref(site, a, "/abi/reducer/annotations");
        }
        for (i, kind) in r.effects_emitted.iter().enumerate() {
            let ptr = format!("/abi/reducer/effects_emitted/{i}");
            match cx.effects.get(kind.as_str()).copied() {
                None => cx.unknown_effect(site, kind, ptr, "reducer"),
                Some(e) if e.origin_scope == "plan" => cx.push(
                    site,
                    Diagnostic::error(
                        "effect_scope",
                        ptr,
                        format!("`{kind}` ({}) may only be emitted by plans; a reducer may only emit micro-effects", e.name),
                    )
                    .expected("an effect whose origin_scope is \"reducer\" or \"both\" (blob.put, blob.get, timer.set, …)")
                    .found(format!("origin_scope \"{}\"", e.origin_scope))
                    .hint("emit it from a plan: raise a domain event that triggers a plan, which emits the effect"),
                ),
                Some(_) => {}
            }
        }
        for (slot, ty) in &r.cap_slots {
            if !cx.cap_type_of_some_cap(ty) {
                let types = cap_types_of_caps(cx);
                let mut d = Diagnostic::error(
                    "unknown_cap_type",
                    format!("/abi/reducer/cap_slots/{}", token(slot)),
                    format!("cap slot `{slot}` has type `{ty}`, which no defcap declares"),
                )
                .expected(format!("a capability type: {}", types.join(", ")))
                .found(ty.clone());
                if let Some(s) = suggest(ty, types.iter().map(String::as_str)) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                cx.push(site, d);
            }
        }
    }
    if let Some(p) = &m.pure {
        cx.schema_ref(site, &p.input, "/abi/pure/input");
        cx.schema_ref(site, &p.output, "/abi/pure/output");
    }
    let kernel_provided = m.name.is_sys() && m.module_kind == ModuleKind::Pure;
    if m.wasm_hash.as_ref().and_then(HashRef::filled).is_none() && !kernel_provided {
        cx.push(
            site,
            Diagnostic::warning(
                "unfilled_wasm_hash",
                "/wasm_hash",
                "the module has no wasm hash yet, so this manifest hash does not pin its code",
            )
            .expected("\"blake3:<64 hex>\" of the module's WASM")
            .found(match &m.wasm_hash {
                Some(HashRef::Placeholder(s)) => format!("{s:?}"),
                _ => "no wasm_hash".to_string(),
            })
            .hint("pass --module NAME=FILE.wasm to fill it"),
        );
    }
}

fn cap_types_of_caps(cx: &Ctx<'_>) -> Vec<String> {
    let mut types: Vec<String> = cx.set_cap_types.iter().map(|s| s.to_string()).collect();
    for d in catalog::builtins() {
        if let Def::Cap(c) = d {
            types.push(c.cap_type.clone());
        }
    }
    types.sort();
    types.dedup();
    types
}

fn cap(cx: &mut Ctx<'_>, loc: &Located<Def>, c: &DefCap, orphan_effects: bool) {
    let site = Site::Def(loc);
    if !cx.cap_type_for_cap(&c.cap_type) && !orphan_effects {
        let mut known: Vec<&str> = cx
            .builtin_types
            .iter()
            .chain(cx.set_effect_types.iter())
            .copied()
            .collect();
        known.sort();
        known.dedup();
        let mut d = Diagnostic::error(
            "unknown_cap_type",
            "/cap_type",
            format!(
                "cap type `{}` is not built in and guards no defeffect",
                c.cap_type
            ),
        )
        .expected(format!("a capability type: {}", known.join(", ")))
        .found(c.cap_type.clone());
        d = match suggest(&c.cap_type, known.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint("declare a defeffect with this cap_type, or use a built-in type"),
        };
        cx.push(site, d);
    }
    if let Some(e) = &c.enforcer {
        match cx.module(e) {
            None => cx.unknown_def(
                site,
                DefKind::Module,
                e,
                "/enforcer/module".into(),
                "module",
                "unknown_module",
            ),
            Some(m) if m.module_kind != ModuleKind::Pure => cx.push(
                site,
                Diagnostic::error(
                    "enforcer_not_pure",
                    "/enforcer/module",
                    format!("the enforcer {e} is a reducer module"),
                )
                .expected("a pure module (input sys/CapCheckInput@1, output sys/CapCheckOutput@1)")
                .found("module_kind \"reducer\"")
                .hint("use sys/CapAllowAll@1 or a pure enforcer module"),
            ),
            Some(_) => {}
        }
    }
}

fn effect<'a>(
    cx: &mut Ctx<'a>,
    loc: &'a Located<Def>,
    e: &'a DefEffect,
    kinds: &mut BTreeMap<&'a str, &'a str>,
) {
    let site = Site::Def(loc);
    cx.schema_ref(site, &e.params_schema, "/params_schema");
    cx.schema_ref(site, &e.receipt_schema, "/receipt_schema");
    if !cx.cap_type_for_effect(&e.cap_type) {
        let mut known: Vec<&str> = cx
            .builtin_types
            .iter()
            .chain(cx.set_cap_types.iter())
            .copied()
            .collect();
        known.sort();
        known.dedup();
        let mut d = Diagnostic::error(
            "unknown_cap_type",
            "/cap_type",
            format!(
                "cap type `{}` is not built in and no defcap declares it",
                e.cap_type
            ),
        )
        .expected(format!("a capability type: {}", known.join(", ")))
        .found(e.cap_type.clone());
        d = match suggest(&e.cap_type, known.iter().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint("declare a defcap with this cap_type so the effect can be granted"),
        };
        cx.push(site, d);
    }
    // Kinds are unique: across the set, and against built-ins of another name.
    let clash = kinds
        .get(e.kind.as_str())
        .map(|n| n.to_string())
        .or_else(|| {
            catalog::builtins().iter().find_map(|d| match d {
                Def::Effect(b)
                    if b.kind == e.kind
                        && b.name != e.name
                        && cx.set.get(DefKind::Effect, &b.name).is_none() =>
                {
                    Some(format!("the built-in {}", b.name))
                }
                _ => None,
            })
        });
    match clash {
        Some(other) => cx.push(
            site,
            Diagnostic::error(
                "duplicate_effect_kind",
                "/kind",
                format!("effect kind `{}` is already defined by {other}", e.kind),
            )
            .expected("an effect kind no other defeffect uses")
            .found(e.kind.clone())
            .hint("give the effect its own kind (e.g. with your namespace as a prefix)"),
        ),
        None => {
            kinds.insert(&e.kind, e.name.as_str());
        }
    }
}

fn policy(cx: &mut Ctx<'_>, loc: &Located<Def>, p: &DefPolicy) {
    let site = Site::Def(loc);
    for (i, rule) in p.rules.iter().enumerate() {
        let base = format!("/rules/{i}/when");
        if let Some(k) = &rule.when.effect_kind {
            if !cx.effects.contains_key(k.as_str()) {
                let mut d = Diagnostic::error(
                    "unknown_effect",
                    format!("{base}/effect_kind"),
                    format!("no defeffect has the kind `{k}`"),
                )
                .expected(format!(
                    "a known effect kind: {}",
                    cx.effects.keys().copied().collect::<Vec<_>>().join(", ")
                ))
                .found(k.clone());
                if let Some(s) = suggest(k, cx.effects.keys().copied()) {
                    d = d.hint(format!(
                        "did you mean `{s}`? (a rule naming an unknown kind never matches)"
                    ));
                }
                cx.push(site, d);
            }
        }
        if let Some(n) = &rule.when.origin_name {
            let (ok, what) = match rule.when.origin_kind.as_deref() {
                Some("plan") => (cx.plan(n).is_some(), "a defplan"),
                Some("reducer") => (
                    cx.module(n)
                        .is_some_and(|m| m.module_kind == ModuleKind::Reducer),
                    "a reducer defmodule",
                ),
                _ => (
                    cx.plan(n).is_some() || cx.module(n).is_some(),
                    "a defplan or reducer defmodule",
                ),
            };
            if !ok {
                let kinds: &[DefKind] = match rule.when.origin_kind.as_deref() {
                    Some("plan") => &[DefKind::Plan],
                    Some("reducer") => &[DefKind::Module],
                    _ => &[DefKind::Plan, DefKind::Module],
                };
                // Another version of the same plan or module is defined: the rule is
                // for runs started under an earlier manifest that are still in flight
                // after an upgrade (a run keeps the manifest it started under).
                let sibling = kinds.iter().find_map(|k| other_version(cx, *k, n));
                let d = match &sibling {
                    Some(s) => Diagnostic::warning(
                        "unknown_origin",
                        format!("{base}/origin_name"),
                        format!("origin {n} is not defined here (only {s} is); this rule matches only runs started under an earlier manifest"),
                    )
                    .hint(format!("keep it while runs of {n} may be in flight after the upgrade; remove it afterwards")),
                    None => {
                        let d = Diagnostic::error(
                            "unknown_origin",
                            format!("{base}/origin_name"),
                            format!("origin {n} is not {what}; this rule can never match"),
                        );
                        match kinds.iter().find_map(|k| cx.suggest_def(*k, n)) {
                            Some(s) => d.hint(format!("did you mean {s}?")),
                            None => d.hint(format!("name {what} of this set")),
                        }
                    }
                };
                cx.push(
                    site,
                    d.expected(format!("the name of {what}"))
                        .found(n.to_string()),
                );
            }
        }
        if let Some(g) = &rule.when.cap_name {
            if cx.manifest.is_some() && !cx.grants.contains_key(g.as_str()) {
                let mut d = Diagnostic::warning(
                    "unknown_grant",
                    format!("{base}/cap_name"),
                    format!("no cap grant named `{g}` in the manifest defaults; this rule never matches"),
                )
                .expected(format!("a grant name: {}", cx.grants.keys().copied().collect::<Vec<_>>().join(", ")))
                .found(g.clone());
                if let Some(s) = suggest(g, cx.grants.keys().copied()) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                cx.push(site, d);
            }
        }
    }
}

/// Another version of the same name that is defined (in the set or built in).
fn other_version(cx: &Ctx<'_>, kind: DefKind, name: &Name) -> Option<String> {
    let base = name.as_str().rsplit_once('@').map(|(b, _)| b)?;
    let set_names = cx.set.of_kind(kind).map(|l| l.item.name());
    let builtin = catalog::builtins()
        .iter()
        .filter(|d| d.kind() == kind)
        .map(Def::name);
    set_names
        .chain(builtin)
        .find(|n| n.as_str().rsplit_once('@').is_some_and(|(b, _)| b == base) && *n != name)
        .map(ToString::to_string)
}

fn secret(cx: &mut Ctx<'_>, loc: &Located<Def>, s: &DefSecret) {
    let site = Site::Def(loc);
    for (i, p) in s.allowed_plans.iter().enumerate() {
        if cx.plan(p).is_none() {
            cx.unknown_def(
                site,
                DefKind::Plan,
                p,
                format!("/allowed_plans/{i}"),
                "plan",
                "unknown_plan",
            );
        }
    }
    if cx.manifest.is_some() {
        for (i, g) in s.allowed_caps.iter().enumerate() {
            if !cx.grants.contains_key(g.as_str()) {
                let mut d = Diagnostic::error(
                    "unknown_grant",
                    format!("/allowed_caps/{i}"),
                    format!("no cap grant named `{g}` in the manifest defaults"),
                )
                .expected(format!(
                    "a grant name: {}",
                    cx.grants.keys().copied().collect::<Vec<_>>().join(", ")
                ))
                .found(g.clone());
                if let Some(x) = suggest(g, cx.grants.keys().copied()) {
                    d = d.hint(format!("did you mean `{x}`?"));
                }
                cx.push(site, d);
            }
        }
    }
}
