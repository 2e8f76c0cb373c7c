//! The manifest: listed defs exist, the default policy, cap grants, module bindings,
//! routing, inboxes and triggers.

use std::collections::{BTreeMap, BTreeSet};

use super::{segments, suggest, Ctx, Site};
use crate::diag::{token, Diagnostic};
use crate::model::{Def, DefKind, DefModule, ModuleKind};
use crate::name::Name;

pub(super) fn check(cx: &mut Ctx<'_>) {
    let Some(m) = cx.manifest else {
        cx.diags.push(
            Diagnostic::error("no_manifest", "", "no manifest in this AIR set")
                .expected("one {\"$kind\": \"manifest\", …} node")
                .found("none")
                .hint("add a {\"$kind\": \"manifest\", …} file listing the defs"),
        );
        return;
    };
    let site = Site::Manifest(m);
    let mf = &m.item;
    let set = cx.set;

    // Every listed name exists (once).
    for (kind, refs) in &mf.refs {
        let mut seen = BTreeSet::new();
        for (i, r) in refs.iter().enumerate() {
            let ptr = format!("/{}/{i}", kind.manifest_key());
            if !seen.insert(&r.name) {
                cx.push(
                    site,
                    Diagnostic::warning(
                        "duplicate_listing",
                        ptr,
                        format!("{} {} is listed twice", kind.as_str(), r.name),
                    )
                    .expected("each def listed once")
                    .found(format!("{} again", r.name))
                    .hint("remove the second entry"),
                );
                continue;
            }
            if cx.resolve(*kind, &r.name).is_none()
                && !cx.set.broken.contains(&(*kind, r.name.clone()))
            {
                let mut d = Diagnostic::error(
                    "unknown_def",
                    ptr,
                    format!(
                        "the manifest lists {} {}, which is not defined",
                        kind.as_str(),
                        r.name
                    ),
                )
                .expected(format!(
                    "the name of a {} in the AIR sources or a built-in",
                    kind.as_str()
                ))
                .found(r.name.to_string());
                d = match cx.suggest_def(*kind, &r.name) {
                    Some(s) => d.hint(format!("did you mean {s}?")),
                    None => d.hint(
                        "add its definition to the AIR sources, or remove it from the manifest",
                    ),
                };
                cx.push(site, d);
            }
        }
    }
    // Every def of the set is listed (a warning: it is carried but unused).
    for ((kind, name), loc) in &set.defs {
        if !cx.is_listed(*kind, name) {
            cx.push(
                Site::Def(loc),
                Diagnostic::warning(
                    "unlisted_def",
                    "",
                    format!(
                        "{} {name} is defined but the manifest does not list it",
                        kind.as_str()
                    ),
                )
                .expected(format!(
                    "listed in the manifest's `{}`",
                    kind.manifest_key()
                ))
                .found("not listed")
                .hint(format!(
                    "add {{\"name\": \"{name}\"}} to the manifest's `{}`",
                    kind.manifest_key()
                )),
            );
        }
    }

    // The default policy is a listed policy.
    if let Some(p) = &mf.defaults.policy {
        if !cx.is_listed(DefKind::Policy, p) {
            if cx.resolve(DefKind::Policy, p).is_some() {
                cx.push(
                    site,
                    Diagnostic::error(
                        "policy_not_listed",
                        "/defaults/policy",
                        format!(
                            "the default policy {p} is not listed in the manifest's `policies`"
                        ),
                    )
                    .expected("a policy listed in `policies`")
                    .found(p.to_string())
                    .hint(format!(
                        "add {{\"name\": \"{p}\"}} to the manifest's `policies`"
                    )),
                );
            } else {
                cx.unknown_def(
                    site,
                    DefKind::Policy,
                    p,
                    "/defaults/policy".into(),
                    "policy",
                    "unknown_policy",
                );
            }
        }
    }

    // Cap grants: unique names, known defcaps, params of the defcap's schema.
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in mf.defaults.cap_grants.iter().enumerate() {
        let ptr = format!("/defaults/cap_grants/{i}");
        if let Some(first) = names.get(g.name.as_str()) {
            cx.push(
                site,
                Diagnostic::error("duplicate_grant", format!("{ptr}/name"), format!("grant name `{}` is used twice", g.name))
                    .expected("a grant name not used by another grant")
                    .found(g.name.clone())
                    .hint(format!("the first grant with this name is /defaults/cap_grants/{first}; rename one of them")),
            );
        } else {
            names.insert(&g.name, i);
        }
        match cx.cap(&g.cap) {
            None => cx.unknown_def(
                site,
                DefKind::Cap,
                &g.cap,
                format!("{ptr}/cap"),
                "defcap",
                "unknown_cap",
            ),
            Some(c) => cx.literal(site, &g.params, &c.schema, &format!("{ptr}/params")),
        }
    }

    // Module bindings: reducer modules, declared slots, grants of the slot's type.
    for (module, slots) in &mf.module_bindings {
        let ptr = format!("/module_bindings/{}", token(module.as_str()));
        let Some(md) = reducer(cx, site, module, ptr.clone()) else {
            continue;
        };
        let Some(abi) = &md.reducer else { continue };
        for (slot, grant) in slots {
            let sp = format!("{ptr}/slots/{}", token(slot));
            let slot_ty = abi.cap_slots.get(slot);
            if slot_ty.is_none() {
                let declared: Vec<&str> = abi.cap_slots.keys().map(String::as_str).collect();
                let mut d = Diagnostic::error(
                    "unknown_slot",
                    sp.clone(),
                    format!("{module} declares no cap slot `{slot}`"),
                )
                .expected(format!(
                    "a slot of its abi.reducer.cap_slots: {}",
                    declared.join(", ")
                ))
                .found(slot.clone());
                d = match suggest(slot, declared.iter().copied()) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint("declare the slot in the module's abi.reducer.cap_slots, or remove the binding"),
                };
                cx.push(site, d);
            }
            match cx.grants.get(grant.as_str()).copied() {
                None => {
                    let mut d = Diagnostic::error(
                        "unknown_grant",
                        sp,
                        format!("no cap grant named `{grant}` in the manifest defaults"),
                    )
                    .expected(format!(
                        "a grant name: {}",
                        cx.grants.keys().copied().collect::<Vec<_>>().join(", ")
                    ))
                    .found(grant.clone());
                    if let Some(s) = suggest(grant, cx.grants.keys().copied()) {
                        d = d.hint(format!("did you mean `{s}`?"));
                    }
                    cx.push(site, d);
                }
                Some(g) => {
                    let (Some(st), Some(c)) = (slot_ty, cx.cap(&g.cap)) else {
                        continue;
                    };
                    if cx.cap_type_of_some_cap(st)
                        && cx.cap_type_for_cap(&c.cap_type)
                        && c.cap_type != *st
                    {
                        cx.push(
                            site,
                            Diagnostic::error(
                                "cap_type_mismatch",
                                sp,
                                format!("slot `{slot}` needs a `{st}` capability, but grant `{grant}` is a `{}` capability ({})", c.cap_type, g.cap),
                            )
                            .expected(format!("a grant of cap type `{st}`"))
                            .found(format!("`{grant}` of cap type `{}`", c.cap_type))
                            .hint("bind the slot to a grant of a defcap with the slot's cap type"),
                        );
                    }
                }
            }
        }
    }

    // Routing: events reach reducers whose ABI accepts them; keys match key schemas.
    let mut routed: BTreeSet<&Name> = BTreeSet::new();
    for (i, r) in mf.routing_events.iter().enumerate() {
        let ptr = format!("/routing/events/{i}");
        let ev_ty = cx.schema_ref(site, &r.event, format!("{ptr}/event"));
        let Some(md) = reducer(cx, site, &r.reducer, format!("{ptr}/reducer")) else {
            continue;
        };
        routed.insert(&r.reducer);
        let Some(abi) = &md.reducer else { continue };
        if cx.schema_ty(&r.event).is_some() {
            if let Some(abi_ty) = cx.sound_schema(&abi.event) {
                let arms: Vec<&Name> = match cx.deref(abi_ty) {
                    crate::types::TypeExpr::Variant(arms) => arms
                        .values()
                        .filter_map(|t| match t {
                            crate::types::TypeExpr::Ref(n) => Some(n),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                if r.event != abi.event && !arms.contains(&&r.event) {
                    let mut accepted = vec![abi.event.to_string()];
                    accepted.extend(arms.iter().map(|n| n.to_string()));
                    cx.push(
                        site,
                        Diagnostic::error(
                            "route_event_mismatch",
                            format!("{ptr}/event"),
                            format!(
                                "{} does not accept {}: its ABI event is {}",
                                r.reducer, r.event, abi.event
                            ),
                        )
                        .expected(format!(
                            "the reducer's event schema or one of its arms' schemas: {}",
                            accepted.join(", ")
                        ))
                        .found(r.event.to_string())
                        .hint(format!(
                            "route one of those schemas, or add an arm {{\"ref\": \"{}\"}} to {}",
                            r.event, abi.event
                        )),
                    );
                }
            }
        }
        match (&r.key_field, &md.key_schema) {
            (Some(k), None) => cx.push(
                site,
                Diagnostic::error(
                    "unexpected_key_field",
                    format!("{ptr}/key_field"),
                    format!("{} has no key_schema, so it is not keyed and a route to it takes no key_field", r.reducer),
                )
                .expected("no key_field")
                .found(format!("{k:?}"))
                .hint(format!("declare \"key_schema\" on {} to make it a keyed reducer (cells), or remove the key_field", r.reducer)),
            ),
            (None, Some(ks)) => cx.push(
                site,
                Diagnostic::error(
                    "missing_key_field",
                    ptr.clone(),
                    format!("{} is keyed (key_schema {ks}), so a route to it needs a key_field", r.reducer),
                )
                .expected(format!("\"key_field\": the path of a field of {} holding a {ks}", r.event))
                .found("no key_field")
                .hint("name the event field that carries the cell key, e.g. \"key_field\": \"id\""),
            ),
            (Some(k), Some(ks)) => {
                let Some(ty) = ev_ty else { continue };
                match cx.path_types(ty, &segments(k), true) {
                    Err(why) => cx.push(
                        site,
                        Diagnostic::error("unknown_key_field", format!("{ptr}/key_field"), format!("key_field `{k}` is not a field of {}: {why}", r.event))
                            .expected(format!("a field path of {} (`$value.x` reaches into variant arms)", r.event))
                            .found(format!("{k:?}"))
                            .hint("check the field names of the event schema"),
                    ),
                    Ok(types) => {
                        let Some(kt) = cx.sound_schema(ks) else { continue };
                        if let Some(bad) = types.into_iter().find(|t| !cx.types_equal(t, kt)) {
                            cx.push(
                                site,
                                Diagnostic::error(
                                    "key_type_mismatch",
                                    format!("{ptr}/key_field"),
                                    format!("key_field `{k}` of {} is not of the reducer's key schema {ks}", r.event),
                                )
                                .expected(format!("{ks} ({})", kt.describe()))
                                .found(bad.describe())
                                .hint("key the route by a field of the key schema's type, or change the module's key_schema"),
                            );
                        }
                    }
                }
            }
            (None, None) => {}
        }
    }
    for (i, inbox) in mf.inboxes.iter().enumerate() {
        if reducer(
            cx,
            site,
            &inbox.reducer,
            format!("/routing/inboxes/{i}/reducer"),
        )
        .is_some()
        {
            routed.insert(&inbox.reducer);
        }
    }
    for loc in set.of_kind(DefKind::Module) {
        let Def::Module(md) = &loc.item else { continue };
        if md.key_schema.is_some()
            && md.module_kind == ModuleKind::Reducer
            && !routed.contains(&md.name)
        {
            cx.push(
                Site::Def(loc),
                Diagnostic::warning(
                    "unrouted_keyed_module",
                    "/key_schema",
                    format!("{} is keyed but no route delivers events to it", md.name),
                )
                .expected("a routing.events entry with a key_field for this reducer")
                .found("no route")
                .hint("add a routing.events entry with a key_field for it"),
            );
        }
    }

    // Triggers: listed plans, events that are the plan's input, correlation keys.
    for (i, t) in mf.triggers.iter().enumerate() {
        let ptr = format!("/triggers/{i}");
        let ev_ty = cx.schema_ref(site, &t.event, format!("{ptr}/event"));
        let plan = cx.plan(&t.plan);
        if !cx.is_listed(DefKind::Plan, &t.plan) {
            match plan {
                Some(_) => cx.push(
                    site,
                    Diagnostic::error(
                        "plan_not_listed",
                        format!("{ptr}/plan"),
                        format!(
                            "the trigger starts {}, which the manifest does not list",
                            t.plan
                        ),
                    )
                    .expected("a plan listed in `plans`")
                    .found(t.plan.to_string())
                    .hint(format!(
                        "add {{\"name\": \"{}\"}} to the manifest's `plans`",
                        t.plan
                    )),
                ),
                None => cx.unknown_def(
                    site,
                    DefKind::Plan,
                    &t.plan,
                    format!("{ptr}/plan"),
                    "plan",
                    "unknown_plan",
                ),
            }
        }
        if let Some(p) = plan {
            if t.event != p.input
                && cx.schema_ty(&t.event).is_some()
                && cx.schema_ty(&p.input).is_some()
            {
                cx.push(
                    site,
                    Diagnostic::error(
                        "trigger_input_mismatch",
                        format!("{ptr}/event"),
                        format!(
                            "the trigger starts {} with a {}, but the plan's input is {}",
                            t.plan, t.event, p.input
                        ),
                    )
                    .expected(p.input.to_string())
                    .found(t.event.to_string())
                    .hint("trigger the plan with its input schema, or change the plan's `input`"),
                );
            }
        }
        if let (Some(k), Some(ty)) = (&t.correlate_by, ev_ty) {
            if let Err(why) = cx.path_types(ty, &segments(k), true) {
                cx.push(
                    site,
                    Diagnostic::error(
                        "unknown_correlation_field",
                        format!("{ptr}/correlate_by"),
                        format!("correlate_by `{k}` is not a field of {}: {why}", t.event),
                    )
                    .expected(format!("a field of {}", t.event))
                    .found(format!("{k:?}"))
                    .hint("name the event field that identifies the run (e.g. a request id)"),
                );
            }
        }
    }
}

/// A reference to a reducer module.
fn reducer<'a>(
    cx: &mut Ctx<'a>,
    site: Site<'_>,
    name: &Name,
    ptr: String,
) -> Option<&'a DefModule> {
    match cx.module(name) {
        None => {
            cx.unknown_def(site, DefKind::Module, name, ptr, "module", "unknown_module");
            None
        }
        Some(m) if m.module_kind != ModuleKind::Reducer => {
            cx.push(
                site,
                Diagnostic::error(
                    "not_a_reducer",
                    ptr,
                    format!("{name} is a pure module, not a reducer"),
                )
                .expected("a reducer module")
                .found("module_kind \"pure\"")
                .hint("events, inboxes and cap slots belong to reducer modules"),
            );
            None
        }
        Some(m) => Some(m),
    }
}
