//! Hashing and assembly. Every def's hash is blake3 over its canonical JSON; the
//! manifest's canonical form lists every referenced def by name *and hash* (module defs
//! include their `wasm_hash`), so the manifest hash names exactly the code that runs.
//! Placeholder hashes (empty, all zeros, `sha256:…`) are filled here; a stated hash that
//! does not match is an error naming both.

use std::borrow::Cow;
use std::collections::BTreeMap;

use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::diag::{token, Diagnostic};
use crate::expr::ExprOrValue;
use crate::load::AirSet;
use crate::model::{Def, DefKind, HashRef, Manifest, ModuleKind, StepKind};
use crate::name::Name;
use crate::types::TypeExpr;

/// blake3 over canonical JSON.
pub fn hash_json(v: &Value) -> Hash {
    // Canonical JSON of a parsed model value cannot fail: numbers are safe integers
    // by construction (see the 64-bit rule in `aos_store::canon`).
    Hash::of(&aos_store::canon::value_to_vec(v).unwrap_or_else(|_| v.to_string().into_bytes()))
}

/// The hash of one def of `set`: blake3 over the canonical JSON of its normalized form
/// (value literals canonicalized against their schemas, see [`normalized`]).
pub fn def_hash(set: &AirSet, def: &Def) -> Hash {
    hash_json(&normalized(set, def).to_json())
}

/// A manifest with every reference resolved and hashed.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The canonical manifest JSON (hashes filled).
    pub manifest: Value,
    pub manifest_hash: Hash,
    /// Canonical JSON and hash of every def the manifest references (built-ins included).
    pub defs: BTreeMap<(DefKind, Name), (Hash, Value)>,
}

/// Put every grant's params of `m` in canonical form against its defcap's schema
/// (grants whose cap or params do not resolve are left as written).
pub fn canonicalize_grants(set: &AirSet, m: &mut Manifest) {
    for g in &mut m.defaults.cap_grants {
        if let Some(Def::Cap(c)) = resolve(set, DefKind::Cap, &g.cap) {
            if let Ok(v) = crate::value::canonicalize(&g.params, &c.schema, &SetSchemas(set)) {
                g.params = v;
            }
        }
    }
}

/// Resolve a def by kind and name: the set first, then the built-in catalog.
pub fn resolve<'a>(set: &'a AirSet, kind: DefKind, name: &Name) -> Option<&'a Def> {
    set.get(kind, name)
        .or_else(|| crate::catalog::get(kind, name))
}

/// Schema lookups for value canonicalization: the set first, then the catalog.
pub struct SetSchemas<'a>(pub &'a AirSet);

impl crate::value::Schemas for SetSchemas<'_> {
    fn schema(&self, name: &Name) -> Option<&TypeExpr> {
        match resolve(self.0, DefKind::Schema, name)? {
            Def::Schema(s) => Some(&s.ty),
            _ => None,
        }
    }
}

/// A value literal in the canonical form of its schema; as authored when it does not
/// fit (the validator reports why).
fn canonical_literal(set: &AirSet, v: &Value, schema: Option<&Name>) -> Value {
    let ty = schema.and_then(|n| match resolve(set, DefKind::Schema, n) {
        Some(Def::Schema(s)) => Some(&s.ty),
        _ => None,
    });
    match ty {
        Some(ty) => {
            crate::value::canonicalize(v, ty, &SetSchemas(set)).unwrap_or_else(|_| v.clone())
        }
        None => v.clone(),
    }
}

fn canonical_eov(set: &AirSet, e: &ExprOrValue, schema: Option<&Name>) -> ExprOrValue {
    match e {
        ExprOrValue::Value(v) => ExprOrValue::Value(canonical_literal(set, v, schema)),
        other => other.clone(),
    }
}

/// A def with every value literal in the canonical form of its schema, so that sugar
/// and tagged authoring of the same value hash identically.
pub fn normalized<'a>(set: &AirSet, def: &'a Def) -> Cow<'a, Def> {
    let Def::Plan(p) = def else {
        return Cow::Borrowed(def);
    };
    let effect_params = |kind: &str| -> Option<Name> {
        set.of_kind(DefKind::Effect)
            .map(|l| &l.item)
            .chain(crate::catalog::builtins().iter())
            .find_map(|d| match d {
                Def::Effect(e) if e.kind == kind => Some(e.params_schema.clone()),
                _ => None,
            })
    };
    let mut p = p.clone();
    for step in &mut p.steps {
        match &mut step.kind {
            StepKind::EmitEffect { kind, params, .. } => {
                *params = canonical_eov(set, params, effect_params(kind).as_ref())
            }
            StepKind::RaiseEvent { event, value } => {
                *value = canonical_eov(set, value, Some(event))
            }
            StepKind::End { result: Some(r) } => *r = canonical_eov(set, r, p.output.as_ref()),
            StepKind::Assign { expr, bind } => {
                *expr = canonical_eov(set, expr, p.locals.get(bind.as_str()))
            }
            _ => {}
        }
    }
    Cow::Owned(Def::Plan(p))
}

/// Assemble the set's manifest. Errors (unknown names, hash mismatches) and warnings
/// (unfilled module hashes, defs not listed) go to the returned diagnostics.
pub fn assemble(set: &AirSet) -> (Option<Assembled>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let Some(m) = &set.manifest else {
        diags.push(
            Diagnostic::error("no_manifest", "", "no manifest in this AIR set")
                .hint("add a {\"$kind\": \"manifest\", …} file listing the defs"),
        );
        return (None, diags);
    };
    let file = m.origin.file.clone();
    let mut defs = BTreeMap::new();
    for (kind, refs) in &m.item.refs {
        for (i, r) in refs.iter().enumerate() {
            let ptr = format!("{}/{}/{i}", m.origin.pointer, kind.manifest_key());
            let Some(def) = resolve(set, *kind, &r.name) else {
                if set.broken.contains(&(*kind, r.name.clone())) {
                    continue; // its own errors are reported where it is defined
                }
                diags.push(
                    Diagnostic::error(
                        "unknown_def",
                        ptr,
                        format!(
                            "the manifest lists {} {}, which is not defined",
                            kind.as_str(),
                            r.name
                        ),
                    )
                    .in_file(&file)
                    .hint("add its definition to the AIR sources, or remove it from the manifest"),
                );
                continue;
            };
            let canonical = normalized(set, def).to_json();
            let h = hash_json(&canonical); // = def_hash(set, def)
            if let Some(HashRef::Filled(stated)) = &r.hash {
                if *stated != h {
                    diags.push(
                        Diagnostic::error(
                            "hash_mismatch",
                            format!("{ptr}/hash"),
                            format!("stated hash of {} does not match its definition", r.name),
                        )
                        .in_file(&file)
                        .expected(h.to_string())
                        .found(stated.to_string())
                        .hint("leave the hash empty (\"\") to have the tools fill it in"),
                    );
                }
            }
            if let Def::Module(md) = def {
                let kernel_provided = r.name.is_sys() && md.module_kind == ModuleKind::Pure;
                if md.wasm_hash.as_ref().and_then(HashRef::filled).is_none() && !kernel_provided {
                    diags.push(
                        Diagnostic::warning("unfilled_wasm_hash", "/wasm_hash", "the module has no wasm hash yet, so this manifest hash does not pin its code")
                            .in_def(r.name.as_str())
                            .hint("pass --module NAME=FILE.wasm to fill it"),
                    );
                }
            }
            defs.insert((*kind, r.name.clone()), (h, canonical));
        }
    }
    for ((kind, name), loc) in &set.defs {
        if !defs.contains_key(&(*kind, name.clone())) {
            diags.push(
                Diagnostic::warning(
                    "unlisted_def",
                    "",
                    format!(
                        "{} {name} is defined but the manifest does not list it",
                        kind.as_str()
                    ),
                )
                .in_file(&loc.origin.file)
                .in_def(name.as_str())
                .hint(format!(
                    "add {{\"name\": \"{name}\"}} to the manifest's `{}`",
                    kind.manifest_key()
                )),
            );
        }
    }
    let mut manifest_item = m.item.clone();
    canonicalize_grants(set, &mut manifest_item);
    let manifest = manifest_json(&manifest_item, &defs);
    let manifest_hash = hash_json(&manifest);
    (
        Some(Assembled {
            manifest,
            manifest_hash,
            defs,
        }),
        diags,
    )
}

/// The canonical JSON of a manifest, with each listed def's hash taken from `defs`.
pub fn manifest_json(m: &Manifest, defs: &BTreeMap<(DefKind, Name), (Hash, Value)>) -> Value {
    let mut o = Map::new();
    o.insert("$kind".into(), json!("manifest"));
    o.insert("air_version".into(), json!(m.air_version));
    for kind in DefKind::ALL.into_iter().filter(|k| *k != DefKind::Manifest) {
        let mut list: Vec<Value> = m
            .refs
            .get(&kind)
            .into_iter()
            .flatten()
            .map(|r| {
                let h = defs
                    .get(&(kind, r.name.clone()))
                    .map(|(h, _)| h.to_string());
                json!({"name": r.name, "hash": h})
            })
            .collect();
        list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        list.dedup();
        o.insert(kind.manifest_key().into(), Value::Array(list));
    }
    let mut grants: Vec<Value> = m
        .defaults
        .cap_grants
        .iter()
        .map(|g| {
            let mut go = json!({"name": g.name, "cap": g.cap, "params": g.params});
            if let Some(e) = g.expiry_ns {
                go["expiry_ns"] = aos_store::canon::u64_value(e);
            }
            go
        })
        .collect();
    grants.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut defaults = json!({"cap_grants": grants});
    if let Some(p) = &m.defaults.policy {
        defaults["policy"] = json!(p);
    }
    o.insert("defaults".into(), defaults);
    let bindings: Map<String, Value> = m
        .module_bindings
        .iter()
        .map(|(module, slots)| (module.to_string(), json!({"slots": slots})))
        .collect();
    o.insert("module_bindings".into(), Value::Object(bindings));
    let events: Vec<Value> = m
        .routing_events
        .iter()
        .map(|r| {
            let mut ro = json!({"event": r.event, "reducer": r.reducer});
            if let Some(k) = &r.key_field {
                ro["key_field"] = json!(k);
            }
            ro
        })
        .collect();
    let inboxes: Vec<Value> = m
        .inboxes
        .iter()
        .map(|i| json!({"source": i.source, "reducer": i.reducer}))
        .collect();
    o.insert(
        "routing".into(),
        json!({"events": events, "inboxes": inboxes}),
    );
    let triggers: Vec<Value> = m
        .triggers
        .iter()
        .map(|t| {
            let mut to = json!({"event": t.event, "plan": t.plan});
            if let Some(c) = &t.correlate_by {
                to["correlate_by"] = json!(c);
            }
            to
        })
        .collect();
    o.insert("triggers".into(), Value::Array(triggers));
    Value::Object(o)
}

/// Fill the `wasm_hash` of named modules (from `--module NAME=FILE.wasm`). Unknown
/// module names are errors.
pub fn fill_wasm_hashes(set: &mut AirSet, modules: &BTreeMap<Name, Hash>) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for (name, h) in modules {
        match set.defs.get_mut(&(DefKind::Module, name.clone())) {
            Some(loc) => {
                if let Def::Module(m) = &mut loc.item {
                    m.wasm_hash = Some(HashRef::Filled(*h));
                }
            }
            None => diags.push(
                Diagnostic::error(
                    "unknown_module",
                    format!("/{}", token(name.as_str())),
                    format!("--module names {name}, which is not a defmodule in the AIR sources"),
                )
                .hint("check the module name (namespace/Name@version)"),
            ),
        }
    }
    diags
}
