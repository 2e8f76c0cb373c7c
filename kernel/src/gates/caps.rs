//! The capability gate: which grant an intent uses ([`grant_for_slot`]) and whether
//! that grant allows it ([`check_cap`]): the grant exists in the manifest's
//! `defaults.cap_grants`, has not expired at the journal time of the causing input,
//! its `defcap` is of the effect's cap type, and the canonical params are within its
//! constraints (per cap type; see [`crate::gates`]).
//!
//! Verdict codes: `allowed`, `no_manifest`, `grant_missing`, `grant_expired`,
//! `cap_missing`, `cap_type_mismatch`, `bad_grant_params`, `bad_params`,
//! `unknown_cap_type`, and the constraint codes `scheme_not_allowed`,
//! `host_not_allowed`, `no_host`, `bad_url`, `bad_method`, `verb_not_allowed`,
//! `port_not_allowed`, `path_not_allowed`, `provider_not_allowed`,
//! `model_not_allowed`, `max_tokens_exceeded`, `temperature_exceeded`,
//! `tool_not_allowed`, `namespace_not_allowed`, `scope_not_allowed`,
//! `alias_not_allowed`.

use air_fmt::assemble::{resolve, SetSchemas};
use air_fmt::load::AirSet;
use air_fmt::model::{CapGrant, DefCap, DefEffect};
use air_fmt::value::canonicalize;
use air_fmt::{Def, DefKind, Name, TypeExpr};
use serde_json::{json, Value};

use super::read::{
    decimal_text, field, list, nat, opt_nat, opt_text, opt_text_set, q, show, Decimal,
};
use super::{http, CapVerdict, Denial};

/// The cap types this kernel checks constraints for.
pub const CHECKED_CAP_TYPES: [&str; 6] =
    ["http.out", "llm.basic", "blob", "timer", "query", "secret"];

/// Which grant a reducer's intent uses: its `cap_slot`, bound through the manifest's
/// `module_bindings[reducer].slots[slot]`. An intent that names no slot uses the slot
/// `default` when the reducer has one, else the reducer's only slot when it has exactly
/// one; otherwise it must name one. (A plan's intent names its grant directly.)
pub fn grant_for_slot(
    set: &AirSet,
    reducer: &Name,
    cap_slot: Option<&str>,
) -> Result<String, String> {
    let Some(manifest) = &set.manifest else {
        return Err("there is no manifest, so no reducer has cap slots bound".into());
    };
    let bindings = manifest.item.module_bindings.get(reducer);
    let declared: Vec<&str> = match resolve(set, DefKind::Module, reducer) {
        Some(Def::Module(m)) => m
            .reducer
            .iter()
            .flat_map(|r| r.cap_slots.keys())
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    };
    let mut slots: Vec<&str> = declared
        .iter()
        .copied()
        .chain(
            bindings
                .into_iter()
                .flat_map(|b| b.keys().map(String::as_str)),
        )
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let slot = match (cap_slot, slots.as_slice()) {
        (Some(s), _) => s,
        (None, _) if slots.contains(&"default") => "default",
        (None, [only]) => only,
        (None, []) => {
            return Err(format!(
                "{reducer} emitted an effect without a cap_slot and has no cap slots; declare one in its abi.reducer.cap_slots, bind it in the manifest's module_bindings[{}].slots to a grant, and name it in the effect's cap_slot",
                q(reducer.as_str())
            ))
        }
        (None, _) => {
            return Err(format!(
                "{reducer} emitted an effect without a cap_slot, but it has several slots {} and none is named \"default\"; name one in the effect's cap_slot",
                list(&slots)
            ))
        }
    };
    match bindings.and_then(|b| b.get(slot)) {
        Some(grant) => Ok(grant.clone()),
        None => {
            let known = if slots.is_empty() {
                "it has no cap slots".to_string()
            } else {
                format!("its slots are {}", list(&slots))
            };
            Err(format!(
                "cap slot {} of {reducer} is not bound to a grant ({known}); to allow it, add {{\"module_bindings\": {{{}: {{\"slots\": {{{}: \"GRANT\"}}}}}}}} to the manifest, naming a grant of defaults.cap_grants",
                q(slot),
                q(reducer.as_str()),
                q(slot)
            ))
        }
    }
}

/// The effect definition of an effect kind: the set's own first, then the built-in
/// catalog.
pub fn effect_by_kind<'a>(set: &'a AirSet, kind: &str) -> Option<&'a DefEffect> {
    let own = set.of_kind(DefKind::Effect).map(|l| &l.item);
    own.chain(air_fmt::catalog::builtins().iter())
        .find_map(|d| match d {
            Def::Effect(e) if e.kind == kind => Some(e),
            _ => None,
        })
}

/// The capability check of one intent (see the module docs). `params` are the
/// intent's params, canonicalized here against the effect's params schema (a no-op for
/// canonical params); `now_ns` is the journal time of the causing input.
pub fn check_cap(
    set: &AirSet,
    grant: &str,
    effect: &DefEffect,
    params: &Value,
    now_ns: u64,
) -> CapVerdict {
    let deny = |g: Option<&CapGrant>, d: Denial| CapVerdict {
        allowed: false,
        grant: g.map(|g| g.name.clone()),
        cap: g.map(|g| g.cap.clone()),
        code: d.code,
        reason: d.reason,
    };
    let Some(manifest) = &set.manifest else {
        return deny(
            None,
            Denial::new(
                "no_manifest",
                format!(
                    "there is no manifest, so grant {} does not exist; {} is denied",
                    q(grant),
                    effect.kind
                ),
            ),
        );
    };
    let grants = &manifest.item.defaults.cap_grants;
    let Some(g) = grants.iter().find(|g| g.name == grant) else {
        return deny(None, missing_grant(set, grants, grant, effect));
    };
    let label = format!("grant {grant}");
    if let Some(expiry) = g.expiry_ns {
        if now_ns >= expiry {
            return deny(
                Some(g),
                Denial::new(
                    "grant_expired",
                    format!(
                        "{label} expired at {expiry} ns (expiry_ns); the causing input's journal time is {now_ns} ns; to allow it, set a later expiry_ns on {label} (or remove it)"
                    ),
                ),
            );
        }
    }
    let Some(Def::Cap(cap)) = resolve(set, DefKind::Cap, &g.cap) else {
        return deny(
            Some(g),
            Denial::new(
                "cap_missing",
                format!("{label} is of defcap {}, which is not defined; define it or point the grant at an existing defcap", g.cap),
            ),
        );
    };
    if cap.cap_type != effect.cap_type {
        return deny(
            Some(g),
            Denial::new(
                "cap_type_mismatch",
                format!(
                    "{label} is a {} capability (defcap {}), but effect {} ({}) needs a {} capability; use a grant of a defcap with cap_type {}",
                    q(&cap.cap_type),
                    cap.name,
                    effect.kind,
                    effect.name,
                    q(&effect.cap_type),
                    q(&effect.cap_type)
                ),
            ),
        );
    }
    let schemas = SetSchemas(set);
    let grant_params = match canonicalize(&g.params, &cap.schema, &schemas) {
        Ok(v) => v,
        Err(diags) => {
            return deny(
                Some(g),
                Denial::new(
                    "bad_grant_params",
                    format!(
                        "the params of {label} do not match the schema of defcap {}: {}; fix the grant's params",
                        cap.name,
                        first_problem(&diags)
                    ),
                ),
            )
        }
    };
    let params = match canonicalize(
        params,
        &TypeExpr::Ref(effect.params_schema.clone()),
        &schemas,
    ) {
        Ok(v) => v,
        Err(diags) => {
            return deny(
                Some(g),
                Denial::new(
                    "bad_params",
                    format!(
                        "the params of {} do not match {}: {}; {label} cannot judge them",
                        effect.kind,
                        effect.params_schema,
                        first_problem(&diags)
                    ),
                ),
            )
        }
    };
    match constraints(&label, cap, effect, &grant_params, &params) {
        Ok(()) => CapVerdict {
            allowed: true,
            grant: Some(g.name.clone()),
            cap: Some(g.cap.clone()),
            code: "allowed",
            reason: format!(
                "{label} ({}, cap type {}) allows this {}",
                cap.name,
                q(&cap.cap_type),
                effect.kind
            ),
        },
        Err(d) => deny(Some(g), d),
    }
}

/// The canonical params of grant `grant` (for adapters that re-check at dispatch, such
/// as the HTTP adapter's redirect checks).
pub fn grant_params(set: &AirSet, grant: &str) -> Result<Value, String> {
    let manifest = set.manifest.as_ref().ok_or("there is no manifest")?;
    let g = manifest
        .item
        .defaults
        .cap_grants
        .iter()
        .find(|g| g.name == grant)
        .ok_or_else(|| format!("grant {} does not exist", q(grant)))?;
    let Some(Def::Cap(cap)) = resolve(set, DefKind::Cap, &g.cap) else {
        return Err(format!(
            "grant {} names undefined defcap {}",
            q(grant),
            g.cap
        ));
    };
    canonicalize(&g.params, &cap.schema, &SetSchemas(set))
        .map_err(|d| format!("the params of grant {}: {}", q(grant), first_problem(&d)))
}

fn first_problem(diags: &[air_fmt::Diagnostic]) -> String {
    match diags.first() {
        Some(d) if diags.len() > 1 => format!("{d} (and {} more)", diags.len() - 1),
        Some(d) => d.to_string(),
        None => "the value does not match its type".into(),
    }
}

fn missing_grant(set: &AirSet, grants: &[CapGrant], grant: &str, effect: &DefEffect) -> Denial {
    let names: Vec<&str> = grants.iter().map(|g| g.name.as_str()).collect();
    let have = if names.is_empty() {
        "the manifest has no grants".to_string()
    } else {
        format!("its grants are {}", list(&names))
    };
    // A built-in defcap of the cap type first: the example params are of its schema.
    let of_type = |d: &Def| match d {
        Def::Cap(c) if c.cap_type == effect.cap_type => Some(c.name.to_string()),
        _ => None,
    };
    let (cap, params) = match air_fmt::catalog::builtins().iter().find_map(of_type) {
        Some(c) => (c, example_params(&effect.cap_type)),
        None => {
            let own = set.of_kind(DefKind::Cap).find_map(|l| of_type(&l.item));
            let c = own.unwrap_or_else(|| format!("<a defcap of cap_type {}>", effect.cap_type));
            (c, json!({}))
        }
    };
    let example = json!({"name": grant, "cap": cap, "params": params});
    Denial::new(
        "grant_missing",
        format!(
            "there is no grant named {} in the manifest's defaults.cap_grants ({have}); to allow this {}, add {} to defaults.cap_grants",
            q(grant),
            effect.kind,
            example
        ),
    )
}

fn example_params(cap_type: &str) -> Value {
    match cap_type {
        "http.out" => json!({"hosts": ["api.example.com"], "verbs": ["GET"]}),
        "query" => json!({"scope": "*"}),
        _ => json!({}),
    }
}

/// The constraints of the cap type on canonical grant params and intent params.
fn constraints(
    label: &str,
    cap: &DefCap,
    effect: &DefEffect,
    grant: &Value,
    params: &Value,
) -> Result<(), Denial> {
    match cap.cap_type.as_str() {
        "http.out" => {
            let method = need_text(label, effect, params, "method")?;
            let url = need_text(label, effect, params, "url")?;
            http::check(label, grant, method, url)
        }
        "llm.basic" => llm(label, grant, params),
        "blob" => {
            let namespaces = grant_set(label, grant, "namespaces")?;
            let Some(namespaces) = namespaces else {
                return Ok(());
            };
            let ns = need_text(label, effect, params, "namespace")?;
            in_set(label, "namespace_not_allowed", "namespace", "namespaces", ns, &namespaces)
        }
        "timer" => Ok(()),
        "query" => query(label, effect, grant, params),
        "secret" => {
            let Some(aliases) = grant_set(label, grant, "aliases")? else {
                return Ok(());
            };
            for alias in secret_aliases(params) {
                in_set(label, "alias_not_allowed", "secret alias", "aliases", &alias, &aliases)?;
            }
            Ok(())
        }
        other => Err(Denial::new(
            "unknown_cap_type",
            format!(
                "{label} is of cap type {} (defcap {}), which this kernel has no constraint checker for, so {} is denied; grants of the cap types {} can be checked",
                q(other),
                cap.name,
                effect.kind,
                list(&CHECKED_CAP_TYPES)
            ),
        )),
    }
}

fn bad_grant(label: &str, e: String) -> Denial {
    Denial::new(
        "bad_grant_params",
        format!("the params of {label} cannot be read: {e}; fix the grant's params"),
    )
}

fn bad_params(label: &str, e: String) -> Denial {
    Denial::new(
        "bad_params",
        format!("the intent's params cannot be read: {e}; {label} cannot judge them"),
    )
}

fn grant_set<'a>(
    label: &str,
    grant: &'a Value,
    name: &str,
) -> Result<Option<Vec<&'a str>>, Denial> {
    opt_text_set(grant, name).map_err(|e| bad_grant(label, e))
}

/// A text field the constraint needs; its absence is a denial.
fn need_text<'a>(
    label: &str,
    effect: &DefEffect,
    params: &'a Value,
    name: &str,
) -> Result<&'a str, Denial> {
    match opt_text(params, name) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(Denial::new(
            "bad_params",
            format!(
                "the params of {} ({}) have no text field `{name}`, which {label} constrains; it cannot allow them",
                effect.kind, effect.params_schema
            ),
        )),
        Err(e) => Err(bad_params(label, e)),
    }
}

fn in_set(
    label: &str,
    code: &'static str,
    what: &str,
    field_name: &str,
    value: &str,
    set: &[&str],
) -> Result<(), Denial> {
    if set.contains(&value) {
        return Ok(());
    }
    Err(Denial::new(
        code,
        format!(
            "{label} does not allow {what} {}: its {field_name} are {}; to allow it, add {} to {field_name} of {label}",
            q(value),
            list(set),
            q(value)
        ),
    ))
}

fn llm(label: &str, grant: &Value, params: &Value) -> Result<(), Denial> {
    let absent = |what: &str, field_name: &str| {
        Denial::new(
            "bad_params",
            format!("the params have no `{what}`, but {label} constrains it through {field_name}; it cannot allow them"),
        )
    };
    for (field_name, what, code) in [
        ("providers", "provider", "provider_not_allowed"),
        ("models", "model", "model_not_allowed"),
    ] {
        if let Some(allowed) = grant_set(label, grant, field_name)? {
            let v = opt_text(params, what)
                .map_err(|e| bad_params(label, e))?
                .ok_or_else(|| absent(what, field_name))?;
            in_set(label, code, what, field_name, v, &allowed)?;
        }
    }
    for field_name in ["max_tokens_max", "max_tokens"] {
        let Some(ceiling) = opt_nat(grant, field_name).map_err(|e| bad_grant(label, e))? else {
            continue;
        };
        let asked = match field(params, "max_tokens") {
            None => return Err(absent("max_tokens", field_name)),
            Some(v) => nat(v).ok_or_else(|| {
                bad_params(
                    label,
                    format!("`max_tokens` is not a nat (found {})", show(v)),
                )
            })?,
        };
        if asked > ceiling {
            return Err(Denial::new(
                "max_tokens_exceeded",
                format!(
                    "{label} does not allow max_tokens {asked}: its {field_name} is {ceiling}; to allow it, raise {field_name} of {label} to {asked} (or ask for at most {ceiling})"
                ),
            ));
        }
    }
    if let Some(v) = field(grant, "temperature_max") {
        let ceiling_text = decimal_text(v).ok_or_else(|| {
            bad_grant(
                label,
                format!("`temperature_max` is not a decimal (found {})", show(v)),
            )
        })?;
        let asked_v =
            field(params, "temperature").ok_or_else(|| absent("temperature", "temperature_max"))?;
        let asked_text = decimal_text(asked_v).ok_or_else(|| {
            bad_params(
                label,
                format!("`temperature` is not a decimal (found {})", show(asked_v)),
            )
        })?;
        let (Some(ceiling), Some(asked)) =
            (Decimal::parse(&ceiling_text), Decimal::parse(&asked_text))
        else {
            return Err(bad_params(
                label,
                format!(
                    "temperature {} or temperature_max {} is not a decimal",
                    q(&asked_text),
                    q(&ceiling_text)
                ),
            ));
        };
        if asked > ceiling {
            return Err(Denial::new(
                "temperature_exceeded",
                format!(
                    "{label} does not allow temperature {}: its temperature_max is {}; to allow it, raise temperature_max of {label} to {} (or ask for at most {})",
                    q(&asked_text),
                    q(&ceiling_text),
                    q(&asked_text),
                    q(&ceiling_text)
                ),
            ));
        }
    }
    if let Some(allowed) = grant_set(label, grant, "tools_allow")? {
        let tools = opt_text_set(params, "tools")
            .map_err(|e| bad_params(label, e))?
            .unwrap_or_default();
        for tool in tools {
            in_set(
                label,
                "tool_not_allowed",
                "tool",
                "tools_allow",
                tool,
                &allowed,
            )?;
        }
    }
    Ok(())
}

fn query(label: &str, effect: &DefEffect, grant: &Value, params: &Value) -> Result<(), Denial> {
    let scope = opt_text(grant, "scope").map_err(|e| bad_grant(label, e))?;
    let pattern = match scope {
        None | Some("") | Some("*") => return Ok(()),
        Some(s) => s.strip_suffix('*').unwrap_or(s),
    };
    let scope = scope.unwrap_or_default();
    match opt_text(params, "reducer").map_err(|e| bad_params(label, e))? {
        None => Err(Denial::new(
            "scope_not_allowed",
            format!(
                "{label} has scope {}, which covers queries of reducers whose name starts with {} only, and {} reads the whole world; to allow it, set scope of {label} to \"*\"",
                q(scope),
                q(pattern),
                effect.kind
            ),
        )),
        Some(reducer) if reducer.starts_with(pattern) => Ok(()),
        Some(reducer) => Err(Denial::new(
            "scope_not_allowed",
            format!(
                "{label} does not allow {} of reducer {}: its scope {} covers reducers whose name starts with {}; to allow it, widen scope of {label} to a prefix of {} (or \"*\")",
                effect.kind,
                q(reducer),
                q(scope),
                q(pattern),
                q(reducer)
            ),
        )),
    }
}

/// Every secret alias canonical params use: a text `alias` field at the top, and the
/// `alias` of every `sys/SecretRef@1` in a `secret` variant arm anywhere (the
/// `sys/TextOrSecretRef@1` / `sys/BytesOrSecretRef@1` form). Sorted, deduplicated.
pub fn secret_aliases(params: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::String(a)) = params.get("alias") {
        out.push(a.clone());
    }
    let mut stack = vec![params];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(o) => {
                if o.get("$tag").and_then(Value::as_str) == Some("secret") {
                    if let Some(Value::String(a)) = o.get("$value").and_then(|x| x.get("alias")) {
                        out.push(a.clone());
                    }
                }
                stack.extend(o.values());
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}
