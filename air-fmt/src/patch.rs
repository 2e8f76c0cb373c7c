//! Patch documents (AIR v1 `patch.schema.json`): how a proposal changes a world's AIR.
//!
//! A document names the manifest it was written against (`base_manifest_hash`) and
//! lists operations, applied in order:
//!
//! | op | shape | effect |
//! | --- | --- | --- |
//! | `add_def` | `{kind, node}` | add a def that does not exist yet and list it in the manifest |
//! | `replace_def` | `{kind, name, new_node, pre_hash}` | replace an existing def (same name) and keep it listed |
//! | `remove_def` | `{kind, name, pre_hash}` | remove a def and its manifest listing |
//! | `set_manifest_refs` | `{add?: [{kind, name, hash}], remove?: [{kind, name}]}` | list or unlist defs (for instance built-ins) in the manifest |
//! | `set_defaults` | `{policy?: name or null, cap_grants?: [...]}` | set or clear (null) the default policy; replace the grants |
//! | `set_routing_events` | `{pre_hash, events}` | replace `routing.events` |
//! | `set_routing_inboxes` | `{pre_hash, inboxes}` | replace `routing.inboxes` |
//! | `set_triggers` | `{pre_hash, triggers}` | replace `triggers` |
//! | `set_module_bindings` | `{pre_hash, bindings}` | replace `module_bindings` |
//! | `set_secrets` | `{pre_hash, secrets: [{name, hash}]}` | replace the manifest's secret list |
//!
//! Hashes are ours: `blake3:<hex>` over canonical JSON. The optimistic checks are:
//! `base_manifest_hash` is the assembled manifest hash of the base set; the `pre_hash`
//! of `replace_def`/`remove_def` is the current def's hash ([`def_hash`]); the
//! `pre_hash` of a `set_*` block op is the hash of that block's current canonical JSON
//! as it appears in the canonical manifest ([`block_hash`]: the `routing.events` array,
//! the `routing.inboxes` array, the `triggers` array, the `module_bindings` object, the
//! `secrets` list of `{name, hash}`), as in the original implementation. A hash in
//! `set_manifest_refs.add` or `set_secrets` must be the listed def's hash; there an
//! empty, all-zero or `sha256:` placeholder means "whatever it is now".
//!
//! Inline secret declarations (`{alias, version, binding_id, …}` entries of
//! `set_secrets`) are recognized but refused: in aos a secret is a `defsecret` listed by
//! name. Applying a patch never changes the base; it builds a candidate set, checks it
//! as a whole and returns it, or every error found, each with the JSON pointer of the
//! operation it concerns.

use std::collections::{BTreeMap, BTreeSet};

use aos_store::Hash;
use serde_json::{json, Map, Value};

use crate::assemble::{assemble, def_hash, manifest_json, resolve};
use crate::diag::{has_errors, show, Diagnostic};
use crate::json::{strip_comments, Obj};
use crate::load::{AirSet, Located, Origin};
use crate::model::{
    parse_node, CapGrant, Def, DefKind, HashRef, Inbox, Manifest, NamedRef, Node, RouteEvent,
    Trigger,
};
use crate::name::Name;

/// The `file` of the origin of defs a patch adds or replaces.
pub const PATCH_ORIGIN: &str = "<patch>";

/// Module bindings: module name → slot → grant name.
pub type Bindings = BTreeMap<Name, BTreeMap<String, String>>;

/// A parsed patch document.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchDoc {
    /// Always `"1"`.
    pub version: String,
    pub base_manifest_hash: Hash,
    pub patches: Vec<PatchOp>,
}

/// `set_manifest_refs.add[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefAdd {
    pub kind: DefKind,
    pub name: Name,
    pub hash: HashRef,
}

/// `set_manifest_refs.remove[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RefRemove {
    pub kind: DefKind,
    pub name: Name,
}

/// One operation. Nodes are kept as authored JSON (comments and all).
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOp {
    AddDef {
        kind: DefKind,
        node: Value,
    },
    ReplaceDef {
        kind: DefKind,
        name: Name,
        new_node: Value,
        pre_hash: Hash,
    },
    RemoveDef {
        kind: DefKind,
        name: Name,
        pre_hash: Hash,
    },
    SetManifestRefs {
        add: Vec<RefAdd>,
        remove: Vec<RefRemove>,
    },
    /// `policy`: None = unchanged, Some(None) = clear; `cap_grants`: None = unchanged.
    SetDefaults {
        policy: Option<Option<Name>>,
        cap_grants: Option<Vec<CapGrant>>,
    },
    SetRoutingEvents {
        pre_hash: Hash,
        events: Vec<RouteEvent>,
    },
    SetRoutingInboxes {
        pre_hash: Hash,
        inboxes: Vec<Inbox>,
    },
    SetTriggers {
        pre_hash: Hash,
        triggers: Vec<Trigger>,
    },
    SetModuleBindings {
        pre_hash: Hash,
        bindings: Bindings,
    },
    SetSecrets {
        pre_hash: Hash,
        secrets: Vec<NamedRef>,
    },
}

/// The op names, as they appear in documents.
pub const OPS: [&str; 10] = [
    "add_def",
    "replace_def",
    "remove_def",
    "set_manifest_refs",
    "set_defaults",
    "set_routing_events",
    "set_routing_inboxes",
    "set_triggers",
    "set_module_bindings",
    "set_secrets",
];

impl PatchOp {
    /// The op's key in the document (`add_def`, ...).
    pub fn key(&self) -> &'static str {
        match self {
            PatchOp::AddDef { .. } => "add_def",
            PatchOp::ReplaceDef { .. } => "replace_def",
            PatchOp::RemoveDef { .. } => "remove_def",
            PatchOp::SetManifestRefs { .. } => "set_manifest_refs",
            PatchOp::SetDefaults { .. } => "set_defaults",
            PatchOp::SetRoutingEvents { .. } => "set_routing_events",
            PatchOp::SetRoutingInboxes { .. } => "set_routing_inboxes",
            PatchOp::SetTriggers { .. } => "set_triggers",
            PatchOp::SetModuleBindings { .. } => "set_module_bindings",
            PatchOp::SetSecrets { .. } => "set_secrets",
        }
    }

    /// The op as JSON (`{"add_def": {...}}`).
    pub fn to_json(&self) -> Value {
        let body = match self {
            PatchOp::AddDef { kind, node } => json!({"kind": kind.as_str(), "node": node}),
            PatchOp::ReplaceDef {
                kind,
                name,
                new_node,
                pre_hash,
            } => {
                json!({"kind": kind.as_str(), "name": name, "new_node": new_node, "pre_hash": pre_hash})
            }
            PatchOp::RemoveDef {
                kind,
                name,
                pre_hash,
            } => {
                json!({"kind": kind.as_str(), "name": name, "pre_hash": pre_hash})
            }
            PatchOp::SetManifestRefs { add, remove } => {
                let mut o = Map::new();
                if !add.is_empty() {
                    let add: Vec<Value> = add
                        .iter()
                        .map(|r| json!({"kind": r.kind.as_str(), "name": r.name, "hash": hash_ref_json(&r.hash)}))
                        .collect();
                    o.insert("add".into(), Value::Array(add));
                }
                if !remove.is_empty() {
                    let remove: Vec<Value> = remove
                        .iter()
                        .map(|r| json!({"kind": r.kind.as_str(), "name": r.name}))
                        .collect();
                    o.insert("remove".into(), Value::Array(remove));
                }
                Value::Object(o)
            }
            PatchOp::SetDefaults { policy, cap_grants } => {
                let mut o = Map::new();
                if let Some(p) = policy {
                    o.insert("policy".into(), json!(p));
                }
                if let Some(g) = cap_grants {
                    o.insert(
                        "cap_grants".into(),
                        Value::Array(g.iter().map(grant_json).collect()),
                    );
                }
                Value::Object(o)
            }
            PatchOp::SetRoutingEvents { pre_hash, events } => {
                json!({"pre_hash": pre_hash, "events": events.iter().map(route_json).collect::<Vec<_>>()})
            }
            PatchOp::SetRoutingInboxes { pre_hash, inboxes } => {
                json!({"pre_hash": pre_hash, "inboxes": inboxes.iter().map(inbox_json).collect::<Vec<_>>()})
            }
            PatchOp::SetTriggers { pre_hash, triggers } => {
                json!({"pre_hash": pre_hash, "triggers": triggers.iter().map(trigger_json).collect::<Vec<_>>()})
            }
            PatchOp::SetModuleBindings { pre_hash, bindings } => {
                json!({"pre_hash": pre_hash, "bindings": bindings_json(bindings)})
            }
            PatchOp::SetSecrets { pre_hash, secrets } => {
                json!({"pre_hash": pre_hash, "secrets": secrets.iter().map(named_ref_json).collect::<Vec<_>>()})
            }
        };
        let mut o = Map::new();
        o.insert(self.key().into(), body);
        Value::Object(o)
    }
}

impl PatchDoc {
    /// The document as JSON (hashes as `blake3:` strings). Format it with
    /// [`crate::fmt::format_json`] for people.
    pub fn to_json(&self) -> Value {
        json!({
            "version": self.version,
            "base_manifest_hash": self.base_manifest_hash,
            "patches": self.patches.iter().map(PatchOp::to_json).collect::<Vec<_>>(),
        })
    }

    /// True when the document has no operations (not a valid document on its own:
    /// the schema asks for at least one).
    pub fn is_empty(&self) -> bool {
        self.patches.is_empty()
    }

    /// Parse a document from bytes; see [`PatchDoc::from_json`].
    pub fn parse(bytes: &[u8]) -> Result<PatchDoc, Vec<Diagnostic>> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| {
            vec![
                Diagnostic::error("bad_json", "", format!("not valid JSON: {e}"))
                    .hint("fix the syntax at the line and column shown"),
            ]
        })?;
        PatchDoc::from_json(&v)
    }

    /// Parse a document. Every problem is reported, each with the JSON pointer into the
    /// document (`/patches/2/replace_def/pre_hash`) and, where known, the def's name.
    /// Embedded nodes are parsed as AIR nodes, so their problems are found here too.
    pub fn from_json(v: &Value) -> Result<PatchDoc, Vec<Diagnostic>> {
        let mut d = Vec::new();
        let doc = parse_doc(v, &mut d);
        match doc {
            Some(doc) if !has_errors(&d) => Ok(doc),
            _ => Err(d.into_iter().filter(Diagnostic::is_error).collect()),
        }
    }
}

fn hash_ref_json(h: &HashRef) -> Value {
    match h {
        HashRef::Filled(h) => json!(h),
        HashRef::Placeholder(s) => json!(s),
    }
}

fn named_ref_json(r: &NamedRef) -> Value {
    let mut o = json!({"name": r.name});
    if let Some(h) = &r.hash {
        o["hash"] = hash_ref_json(h);
    }
    o
}

fn grant_json(g: &CapGrant) -> Value {
    let mut o = json!({"name": g.name, "cap": g.cap, "params": g.params});
    if let Some(e) = g.expiry_ns {
        o["expiry_ns"] = aos_store::canon::u64_value(e);
    }
    o
}

fn route_json(r: &RouteEvent) -> Value {
    let mut o = json!({"event": r.event, "reducer": r.reducer});
    if let Some(k) = &r.key_field {
        o["key_field"] = json!(k);
    }
    o
}

fn inbox_json(i: &Inbox) -> Value {
    json!({"source": i.source, "reducer": i.reducer})
}

fn trigger_json(t: &Trigger) -> Value {
    let mut o = json!({"event": t.event, "plan": t.plan});
    if let Some(c) = &t.correlate_by {
        o["correlate_by"] = json!(c);
    }
    o
}

fn bindings_json(b: &Bindings) -> Value {
    Value::Object(
        b.iter()
            .map(|(m, slots)| (m.to_string(), json!({"slots": slots})))
            .collect(),
    )
}

/// A manifest in authoring form (stated hashes kept as they are); loading it gives the
/// same [`Manifest`] back.
pub fn manifest_source_json(m: &Manifest) -> Value {
    let mut o = Map::new();
    o.insert("$kind".into(), json!("manifest"));
    o.insert("air_version".into(), json!(m.air_version));
    for kind in DefKind::ALL.into_iter().filter(|k| *k != DefKind::Manifest) {
        let list: Vec<Value> = m
            .refs
            .get(&kind)
            .into_iter()
            .flatten()
            .map(named_ref_json)
            .collect();
        o.insert(kind.manifest_key().into(), Value::Array(list));
    }
    let mut defaults =
        json!({"cap_grants": m.defaults.cap_grants.iter().map(grant_json).collect::<Vec<_>>()});
    if let Some(p) = &m.defaults.policy {
        defaults["policy"] = json!(p);
    }
    o.insert("defaults".into(), defaults);
    o.insert("module_bindings".into(), bindings_json(&m.module_bindings));
    o.insert(
        "routing".into(),
        json!({
            "events": m.routing_events.iter().map(route_json).collect::<Vec<_>>(),
            "inboxes": m.inboxes.iter().map(inbox_json).collect::<Vec<_>>(),
        }),
    );
    o.insert(
        "triggers".into(),
        Value::Array(m.triggers.iter().map(trigger_json).collect()),
    );
    Value::Object(o)
}

// ---- parsing ----

fn parse_doc(v: &Value, d: &mut Vec<Diagnostic>) -> Option<PatchDoc> {
    let mut o = Obj::new(v, "", "a patch document", d)?;
    let version = match o.get("version") {
        None => "1".to_string(),
        Some(Value::String(s)) if s == "1" => s.clone(),
        Some(other) => {
            d.push(
                Diagnostic::error(
                    "bad_value",
                    "/version",
                    "unsupported patch document version",
                )
                .expected("\"1\"")
                .found(show(other)),
            );
            "1".to_string()
        }
    };
    let base = o
        .req_str("base_manifest_hash", d)
        .and_then(|s| strict_hash(s, "/base_manifest_hash", "base_manifest_hash", d));
    let mut patches = Vec::new();
    match o.req("patches", d) {
        Some(Value::Array(items)) => {
            if items.is_empty() {
                d.push(
                    Diagnostic::error(
                        "empty_patch",
                        "/patches",
                        "a patch document needs at least one operation",
                    )
                    .expected(format!("one of: {}", OPS.join(", "))),
                );
            }
            for (i, item) in items.iter().enumerate() {
                if let Some(op) = parse_op(item, &format!("/patches/{i}"), d) {
                    patches.push(op);
                }
            }
        }
        Some(other) => d.push(
            Diagnostic::error(
                "wrong_type",
                "/patches",
                "`patches` must be an array of operations",
            )
            .expected("an array")
            .found(show(other)),
        ),
        None => {}
    }
    o.finish(d);
    Some(PatchDoc {
        version,
        base_manifest_hash: base?,
        patches,
    })
}

/// A hash that must be a real blake3 hash (base and pre hashes).
fn strict_hash(s: &str, ptr: &str, what: &str, d: &mut Vec<Diagnostic>) -> Option<Hash> {
    match s.parse::<Hash>() {
        Ok(h) => Some(h),
        Err(_) => {
            let hint = if s.starts_with("sha256:") {
                "sha256 hashes are the original AgentOS form; aos names content by blake3 over canonical JSON (see `aos air hash`)"
            } else {
                "use the current hash as printed by `aos air hash` or `aos info`"
            };
            d.push(
                Diagnostic::error("bad_hash", ptr, format!("`{what}` must be a blake3 hash"))
                    .expected("blake3:<64 lowercase hex digits>")
                    .found(format!("{s:?}"))
                    .hint(hint),
            );
            None
        }
    }
}

fn def_kind(o: &mut Obj<'_>, d: &mut Vec<Diagnostic>) -> Option<DefKind> {
    let s = o.req_str("kind", d)?;
    match DefKind::parse(s) {
        Some(DefKind::Manifest) => {
            d.push(
                Diagnostic::error("bad_value", o.at("kind"), "the manifest is not a def")
                    .expected("defschema, defmodule, defplan, defcap, defpolicy, defeffect or defsecret")
                    .hint("change the manifest with set_manifest_refs, set_defaults, set_routing_*, set_triggers, set_module_bindings or set_secrets"),
            );
            None
        }
        Some(k) => Some(k),
        None => {
            d.push(
                Diagnostic::error("bad_value", o.at("kind"), format!("unknown def kind {s:?}"))
                    .expected(
                        "defschema, defmodule, defplan, defcap, defpolicy, defeffect or defsecret",
                    ),
            );
            None
        }
    }
}

fn parse_op(v: &Value, ptr: &str, d: &mut Vec<Diagnostic>) -> Option<PatchOp> {
    let Value::Object(m) = v else {
        d.push(
            Diagnostic::error("wrong_type", ptr, "an operation must be a JSON object")
                .expected(format!(
                    "{{\"<op>\": {{…}}}} with <op> one of: {}",
                    OPS.join(", ")
                ))
                .found(show(v)),
        );
        return None;
    };
    let keys: Vec<&String> = m.keys().filter(|k| k.as_str() != "$comment").collect();
    let [key] = keys.as_slice() else {
        d.push(
            Diagnostic::error(
                "bad_op",
                ptr,
                "an operation is an object with exactly one key, the op name",
            )
            .expected(format!("one of: {}", OPS.join(", ")))
            .found(if keys.is_empty() {
                "no key".to_string()
            } else {
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        );
        return None;
    };
    let key = key.as_str();
    let ptr = format!("{ptr}/{}", crate::diag::token(key));
    let body = &m[key];
    if !OPS.contains(&key) {
        d.push(
            Diagnostic::error(
                "unknown_op",
                ptr,
                format!("unknown patch operation `{key}`"),
            )
            .expected(format!("one of: {}", OPS.join(", "))),
        );
        return None;
    }
    let mut o = Obj::new(body, &ptr, &format!("`{key}`"), d)?;
    let op = parse_body(key, &mut o, &ptr, d);
    o.finish(d);
    op
}

fn parse_body(key: &str, o: &mut Obj<'_>, ptr: &str, d: &mut Vec<Diagnostic>) -> Option<PatchOp> {
    match key {
        "add_def" => {
            let kind = def_kind(o, d);
            let node = o.req("node", d);
            if let (Some(kind), Some(node)) = (kind, node) {
                parse_def_node(
                    node,
                    &format!("{ptr}/node"),
                    kind,
                    &format!("{ptr}/kind"),
                    d,
                );
            }
            Some(PatchOp::AddDef {
                kind: kind?,
                node: node?.clone(),
            })
        }
        "replace_def" => {
            let kind = def_kind(o, d);
            let name = o.req_name("name", d);
            let new_node = o.req("new_node", d);
            let pre_hash = o
                .req_str("pre_hash", d)
                .and_then(|s| strict_hash(s, &format!("{ptr}/pre_hash"), "pre_hash", d));
            if let (Some(kind), Some(node)) = (kind, new_node) {
                if let Some((def, _)) = parse_def_node(
                    node,
                    &format!("{ptr}/new_node"),
                    kind,
                    &format!("{ptr}/kind"),
                    d,
                ) {
                    if let Some(name) = &name {
                        check_same_name(&def, name, ptr, d);
                    }
                }
            }
            Some(PatchOp::ReplaceDef {
                kind: kind?,
                name: name?,
                new_node: new_node?.clone(),
                pre_hash: pre_hash?,
            })
        }
        "remove_def" => {
            let kind = def_kind(o, d);
            let name = o.req_name("name", d);
            let pre_hash = o
                .req_str("pre_hash", d)
                .and_then(|s| strict_hash(s, &format!("{ptr}/pre_hash"), "pre_hash", d));
            Some(PatchOp::RemoveDef {
                kind: kind?,
                name: name?,
                pre_hash: pre_hash?,
            })
        }
        "set_manifest_refs" => parse_set_refs(o, ptr, d),
        "set_defaults" => {
            let policy = match o.get("policy") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(_) => o.opt_name("policy", d).map(Some),
            };
            let cap_grants = o.get("cap_grants").and_then(|g| {
                let frag =
                    json!({"$kind": "manifest", "air_version": "1", "defaults": {"cap_grants": g}});
                parse_fragment(
                    frag,
                    "/defaults/cap_grants",
                    &format!("{ptr}/cap_grants"),
                    d,
                )
                .map(|m| m.defaults.cap_grants)
            });
            if !o.has("policy") && !o.has("cap_grants") {
                d.push(Diagnostic::error(
                    "missing_field",
                    ptr,
                    "set_defaults sets `policy`, `cap_grants` or both",
                ));
            }
            Some(PatchOp::SetDefaults { policy, cap_grants })
        }
        "set_routing_events" => {
            let pre = block_pre_hash(o, ptr, d);
            let events = o.req("events", d).and_then(|e| {
                let frag =
                    json!({"$kind": "manifest", "air_version": "1", "routing": {"events": e}});
                parse_fragment(frag, "/routing/events", &format!("{ptr}/events"), d)
                    .map(|m| m.routing_events)
            });
            Some(PatchOp::SetRoutingEvents {
                pre_hash: pre?,
                events: events?,
            })
        }
        "set_routing_inboxes" => {
            let pre = block_pre_hash(o, ptr, d);
            let inboxes = o.req("inboxes", d).and_then(|e| {
                let frag =
                    json!({"$kind": "manifest", "air_version": "1", "routing": {"inboxes": e}});
                parse_fragment(frag, "/routing/inboxes", &format!("{ptr}/inboxes"), d)
                    .map(|m| m.inboxes)
            });
            Some(PatchOp::SetRoutingInboxes {
                pre_hash: pre?,
                inboxes: inboxes?,
            })
        }
        "set_triggers" => {
            let pre = block_pre_hash(o, ptr, d);
            let triggers = o.req("triggers", d).and_then(|e| {
                let frag = json!({"$kind": "manifest", "air_version": "1", "triggers": e});
                parse_fragment(frag, "/triggers", &format!("{ptr}/triggers"), d).map(|m| m.triggers)
            });
            Some(PatchOp::SetTriggers {
                pre_hash: pre?,
                triggers: triggers?,
            })
        }
        "set_module_bindings" => {
            let pre = block_pre_hash(o, ptr, d);
            let bindings = o.req("bindings", d).and_then(|e| {
                let frag = json!({"$kind": "manifest", "air_version": "1", "module_bindings": e});
                parse_fragment(frag, "/module_bindings", &format!("{ptr}/bindings"), d)
                    .map(|m| m.module_bindings)
            });
            Some(PatchOp::SetModuleBindings {
                pre_hash: pre?,
                bindings: bindings?,
            })
        }
        "set_secrets" => {
            let pre = block_pre_hash(o, ptr, d);
            let secrets = o
                .req("secrets", d)
                .and_then(|s| parse_secrets(s, &format!("{ptr}/secrets"), d));
            Some(PatchOp::SetSecrets {
                pre_hash: pre?,
                secrets: secrets?,
            })
        }
        _ => None,
    }
}

fn block_pre_hash(o: &mut Obj<'_>, ptr: &str, d: &mut Vec<Diagnostic>) -> Option<Hash> {
    o.req_str("pre_hash", d)
        .and_then(|s| strict_hash(s, &format!("{ptr}/pre_hash"), "pre_hash", d))
}

fn check_same_name(def: &Def, name: &Name, ptr: &str, d: &mut Vec<Diagnostic>) {
    if def.name() != name {
        d.push(
            Diagnostic::error("name_mismatch", format!("{ptr}/new_node/name"), "replace_def keeps the def's name")
                .in_def(name.as_str())
                .expected(name.to_string())
                .found(def.name().to_string())
                .hint("to introduce a new name or version, add_def the new def (and remove_def the old one)"),
        );
    }
}

/// Parse an embedded node as a def of `kind`; diagnostics point into the document.
fn parse_def_node(
    node: &Value,
    ptr: &str,
    kind: DefKind,
    kind_ptr: &str,
    d: &mut Vec<Diagnostic>,
) -> Option<(Def, Value)> {
    let mut raw = node.clone();
    strip_comments(&mut raw);
    let def_name = raw.get("name").and_then(Value::as_str).map(str::to_string);
    let mut nd = Vec::new();
    let parsed = parse_node(&raw, &mut nd);
    let failed = has_errors(&nd);
    for x in nd {
        let x = x.under(ptr);
        d.push(match &def_name {
            Some(n) => x.in_def(n),
            None => x,
        });
    }
    match parsed {
        Some(Node::Def(def)) if !failed => {
            if def.kind() != kind {
                d.push(
                    Diagnostic::error(
                        "kind_mismatch",
                        kind_ptr,
                        format!(
                            "the operation says {} but the node is a {}",
                            kind.as_str(),
                            def.kind().as_str()
                        ),
                    )
                    .in_def(def.name().as_str())
                    .expected(def.kind().as_str())
                    .found(kind.as_str()),
                );
                return None;
            }
            Some((def, raw))
        }
        Some(Node::Manifest(_)) => {
            d.push(
                Diagnostic::error(
                    "kind_mismatch",
                    format!("{ptr}/$kind"),
                    "a manifest cannot be added or replaced as a def",
                )
                .expected(kind.as_str())
                .found("manifest")
                .hint("change the manifest with the set_* operations"),
            );
            None
        }
        _ => None,
    }
}

/// Parse a piece of a manifest by embedding it in a minimal manifest and moving the
/// diagnostics' pointers from `from` (inside that manifest) to `to` (in the document).
fn parse_fragment(
    mut frag: Value,
    from: &str,
    to: &str,
    d: &mut Vec<Diagnostic>,
) -> Option<Manifest> {
    strip_comments(&mut frag);
    let mut nd = Vec::new();
    let node = parse_node(&frag, &mut nd);
    let failed = has_errors(&nd);
    for mut x in nd {
        x.pointer = match x.pointer.strip_prefix(from) {
            Some(rest) => format!("{to}{rest}"),
            None => to.to_string(),
        };
        d.push(x);
    }
    match node {
        Some(Node::Manifest(m)) if !failed => Some(m),
        _ => None,
    }
}

fn parse_set_refs(o: &mut Obj<'_>, ptr: &str, d: &mut Vec<Diagnostic>) -> Option<PatchOp> {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let mut ok = true;
    let has_add = o.has("add");
    let has_remove = o.has("remove");
    for (i, item) in o.opt_array("add", d).into_iter().flatten().enumerate() {
        let p = format!("{ptr}/add/{i}");
        let Some(mut r) = Obj::new(item, &p, "a manifest reference", d) else {
            ok = false;
            continue;
        };
        let kind = def_kind(&mut r, d);
        let name = r.req_name("name", d);
        let hash = r
            .req_str("hash", d)
            .and_then(|h| HashRef::parse(h, &format!("{p}/hash"), d));
        r.finish(d);
        match (kind, name, hash) {
            (Some(kind), Some(name), Some(hash)) => add.push(RefAdd { kind, name, hash }),
            _ => ok = false,
        }
    }
    for (i, item) in o.opt_array("remove", d).into_iter().flatten().enumerate() {
        let p = format!("{ptr}/remove/{i}");
        let Some(mut r) = Obj::new(item, &p, "a manifest reference", d) else {
            ok = false;
            continue;
        };
        let kind = def_kind(&mut r, d);
        let name = r.req_name("name", d);
        r.finish(d);
        match (kind, name) {
            (Some(kind), Some(name)) => remove.push(RefRemove { kind, name }),
            _ => ok = false,
        }
    }
    if !has_add && !has_remove {
        d.push(Diagnostic::error(
            "missing_field",
            ptr,
            "set_manifest_refs needs `add`, `remove` or both",
        ));
        return None;
    }
    if ok && add.is_empty() && remove.is_empty() {
        d.push(Diagnostic::error(
            "empty_op",
            ptr,
            "set_manifest_refs needs at least one entry in `add` or `remove`",
        ));
        return None;
    }
    ok.then_some(PatchOp::SetManifestRefs { add, remove })
}

fn parse_secrets(v: &Value, ptr: &str, d: &mut Vec<Diagnostic>) -> Option<Vec<NamedRef>> {
    let Value::Array(items) = v else {
        d.push(
            Diagnostic::error("wrong_type", ptr, "`secrets` must be an array")
                .expected("an array")
                .found(show(v)),
        );
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{ptr}/{i}");
        let Some(mut r) = Obj::new(item, &p, "a secret entry", d) else {
            ok = false;
            continue;
        };
        if ["alias", "version", "binding_id"].iter().any(|k| r.has(k)) {
            d.push(
                Diagnostic::error(
                    "unsupported",
                    p,
                    "inline secret declarations are not supported",
                )
                .expected("{\"name\": <defsecret name>, \"hash\": <its hash>}")
                .hint("declare the secret as a defsecret (add_def) and list it here by name"),
            );
            ok = false;
            continue;
        }
        let name = r.req_name("name", d);
        let hash = r
            .req_str("hash", d)
            .and_then(|h| HashRef::parse(h, &format!("{p}/hash"), d));
        r.finish(d);
        match (name, hash) {
            (Some(name), Some(hash)) => out.push(NamedRef {
                name,
                hash: Some(hash),
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

// ---- applying ----

/// The manifest blocks that `set_*` operations replace under a `pre_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    RoutingEvents,
    RoutingInboxes,
    Triggers,
    ModuleBindings,
    Secrets,
}

impl Block {
    pub fn as_str(self) -> &'static str {
        match self {
            Block::RoutingEvents => "routing.events",
            Block::RoutingInboxes => "routing.inboxes",
            Block::Triggers => "triggers",
            Block::ModuleBindings => "module_bindings",
            Block::Secrets => "secrets",
        }
    }
}

/// The hash a `set_*` operation must name as `pre_hash` for this set's manifest (None
/// without a manifest): blake3 over the canonical JSON of the block as it appears in
/// the canonical manifest.
pub fn block_hash(set: &AirSet, block: Block) -> Option<Hash> {
    set.manifest
        .as_ref()
        .map(|m| block_hash_in(set, &m.item, block))
}

fn block_hash_in(defs: &AirSet, m: &Manifest, block: Block) -> Hash {
    let mut hashes = BTreeMap::new();
    if block == Block::Secrets {
        for r in m.refs.get(&DefKind::Secret).into_iter().flatten() {
            if let Some(def) = resolve(defs, DefKind::Secret, &r.name) {
                hashes.insert(
                    (DefKind::Secret, r.name.clone()),
                    (def_hash(defs, def), Value::Null),
                );
            }
        }
    }
    let canonical = manifest_json(m, &hashes);
    let part = match block {
        Block::RoutingEvents => &canonical["routing"]["events"],
        Block::RoutingInboxes => &canonical["routing"]["inboxes"],
        Block::Triggers => &canonical["triggers"],
        Block::ModuleBindings => &canonical["module_bindings"],
        Block::Secrets => &canonical["secrets"],
    };
    crate::assemble::hash_json(part)
}

/// A reference whose stated hash is checked once every operation has been applied.
struct RefCheck {
    kind: DefKind,
    name: Name,
    hash: HashRef,
    ptr: String,
}

/// Apply every operation to a copy of `base`; the errors of every operation (with
/// the operation's pointer) are returned with the copy.
fn apply_ops(base: &AirSet, ops: &[PatchOp]) -> (AirSet, Vec<Diagnostic>) {
    let mut set = base.clone();
    let mut d = Vec::new();
    let Some(located) = set.manifest.take() else {
        d.push(Diagnostic::error(
            "no_manifest",
            "",
            "the base AIR set has no manifest to patch",
        ));
        return (set, d);
    };
    let mut m = located.item.clone();
    let mut checks = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let ptr = format!("/patches/{i}/{}", op.key());
        apply_op(&mut set, &mut m, op, &ptr, &mut checks, &mut d);
    }
    for c in checks {
        match resolve(&set, c.kind, &c.name) {
            None => d.push(
                Diagnostic::error(
                    "unknown_def",
                    format!("{}/name", c.ptr),
                    format!("{} {} is not defined", c.kind.as_str(), c.name),
                )
                .in_def(c.name.as_str())
                .hint("bring its definition with add_def, or list only built-in and existing defs"),
            ),
            Some(def) => {
                let actual = def_hash(&set, def);
                if let HashRef::Filled(stated) = c.hash {
                    if stated != actual {
                        d.push(
                            Diagnostic::error(
                                "hash_mismatch",
                                format!("{}/hash", c.ptr),
                                format!(
                                    "the stated hash of {} {} is not its hash",
                                    c.kind.as_str(),
                                    c.name
                                ),
                            )
                            .in_def(c.name.as_str())
                            .expected(actual.to_string())
                            .found(stated.to_string())
                            .hint("leave the hash empty (\"\") to list whatever the def is now"),
                        );
                    }
                }
            }
        }
    }
    let raw = if m == located.item {
        located.raw
    } else {
        manifest_source_json(&m)
    };
    set.manifest = Some(Located {
        item: m,
        origin: located.origin,
        raw,
    });
    (set, d)
}

/// List `name` in the manifest (its hash is then whatever the def's is).
fn list_ref(m: &mut Manifest, kind: DefKind, name: &Name) {
    let list = m.refs.entry(kind).or_default();
    let mut found = false;
    for r in list.iter_mut().filter(|r| r.name == *name) {
        r.hash = None;
        found = true;
    }
    if !found {
        list.push(NamedRef {
            name: name.clone(),
            hash: None,
        });
    }
}

/// Remove every listing of `name`; false when it was not listed.
fn unlist_ref(m: &mut Manifest, kind: DefKind, name: &Name) -> bool {
    let list = m.refs.entry(kind).or_default();
    let before = list.len();
    list.retain(|r| r.name != *name);
    list.len() != before
}

/// The current def for replace/remove, checked against `pre_hash`.
fn current_checked(
    set: &AirSet,
    kind: DefKind,
    name: &Name,
    pre_hash: &Hash,
    ptr: &str,
    d: &mut Vec<Diagnostic>,
) -> bool {
    let Some(cur) = set.get(kind, name) else {
        let mut e = Diagnostic::error(
            "unknown_def",
            format!("{ptr}/name"),
            format!("there is no {} {name} to change", kind.as_str()),
        )
        .in_def(name.as_str());
        e = if crate::catalog::get(kind, name).is_some() {
            e.hint("it is a built-in; list or unlist it with set_manifest_refs")
        } else {
            e.hint("check the name and version, or add it with add_def")
        };
        d.push(e);
        return false;
    };
    let actual = def_hash(set, cur);
    if actual != *pre_hash {
        d.push(
            Diagnostic::error("pre_hash_mismatch", format!("{ptr}/pre_hash"), format!("{} {name} is not the version this patch was written against: its current hash is {actual}, the patch expects {pre_hash}", kind.as_str()))
                .in_def(name.as_str())
                .expected(actual.to_string())
                .found(pre_hash.to_string())
                .hint("the def changed since the patch was made; regenerate the patch against the current AIR"),
        );
        return false;
    }
    true
}

fn check_block(
    set: &AirSet,
    m: &Manifest,
    block: Block,
    pre: &Hash,
    ptr: &str,
    d: &mut Vec<Diagnostic>,
) -> bool {
    let actual = block_hash_in(set, m, block);
    if actual != *pre {
        d.push(
            Diagnostic::error("pre_hash_mismatch", format!("{ptr}/pre_hash"), format!("the manifest's {} is not the one this patch was written against: its current hash is {actual}, the patch expects {pre}", block.as_str()))
                .expected(actual.to_string())
                .found(pre.to_string())
                .hint("the manifest changed since the patch was made; regenerate the patch against the current AIR"),
        );
        return false;
    }
    true
}

fn apply_op(
    set: &mut AirSet,
    m: &mut Manifest,
    op: &PatchOp,
    ptr: &str,
    checks: &mut Vec<RefCheck>,
    d: &mut Vec<Diagnostic>,
) {
    match op {
        PatchOp::AddDef { kind, node } => {
            let node_ptr = format!("{ptr}/node");
            let Some((def, raw)) =
                parse_def_node(node, &node_ptr, *kind, &format!("{ptr}/kind"), d)
            else {
                return;
            };
            let name = def.name().clone();
            if let Some(cur) = set.get(*kind, &name) {
                d.push(
                    Diagnostic::error("def_exists", format!("{node_ptr}/name"), format!("{} {name} already exists", kind.as_str()))
                        .in_def(name.as_str())
                        .hint(format!("to change it, use replace_def with pre_hash {}; to add a new version, bump the @version", def_hash(set, cur))),
                );
                return;
            }
            list_ref(m, *kind, &name);
            set.insert(Located {
                item: def,
                origin: Origin {
                    file: PATCH_ORIGIN.into(),
                    pointer: node_ptr,
                },
                raw,
            });
        }
        PatchOp::ReplaceDef {
            kind,
            name,
            new_node,
            pre_hash,
        } => {
            let node_ptr = format!("{ptr}/new_node");
            let current = current_checked(set, *kind, name, pre_hash, ptr, d);
            let Some((def, raw)) =
                parse_def_node(new_node, &node_ptr, *kind, &format!("{ptr}/kind"), d)
            else {
                return;
            };
            let before = d.len();
            check_same_name(&def, name, ptr, d);
            if !current || d.len() != before {
                return;
            }
            list_ref(m, *kind, name);
            set.insert(Located {
                item: def,
                origin: Origin {
                    file: PATCH_ORIGIN.into(),
                    pointer: node_ptr,
                },
                raw,
            });
        }
        PatchOp::RemoveDef {
            kind,
            name,
            pre_hash,
        } => {
            if current_checked(set, *kind, name, pre_hash, ptr, d) {
                set.defs.remove(&(*kind, name.clone()));
                unlist_ref(m, *kind, name);
            }
        }
        PatchOp::SetManifestRefs { add, remove } => {
            for (j, r) in add.iter().enumerate() {
                list_ref(m, r.kind, &r.name);
                checks.push(RefCheck {
                    kind: r.kind,
                    name: r.name.clone(),
                    hash: r.hash.clone(),
                    ptr: format!("{ptr}/add/{j}"),
                });
            }
            for (j, r) in remove.iter().enumerate() {
                if !unlist_ref(m, r.kind, &r.name) {
                    d.push(
                        Diagnostic::error(
                            "not_listed",
                            format!("{ptr}/remove/{j}/name"),
                            format!("the manifest does not list {} {}", r.kind.as_str(), r.name),
                        )
                        .in_def(r.name.as_str())
                        .hint("check the kind, name and version"),
                    );
                }
            }
        }
        PatchOp::SetDefaults { policy, cap_grants } => {
            if let Some(p) = policy {
                m.defaults.policy = p.clone();
            }
            if let Some(g) = cap_grants {
                m.defaults.cap_grants = g.clone();
            }
        }
        PatchOp::SetRoutingEvents { pre_hash, events } => {
            if check_block(set, m, Block::RoutingEvents, pre_hash, ptr, d) {
                m.routing_events = events.clone();
            }
        }
        PatchOp::SetRoutingInboxes { pre_hash, inboxes } => {
            if check_block(set, m, Block::RoutingInboxes, pre_hash, ptr, d) {
                m.inboxes = inboxes.clone();
            }
        }
        PatchOp::SetTriggers { pre_hash, triggers } => {
            if check_block(set, m, Block::Triggers, pre_hash, ptr, d) {
                m.triggers = triggers.clone();
            }
        }
        PatchOp::SetModuleBindings { pre_hash, bindings } => {
            if check_block(set, m, Block::ModuleBindings, pre_hash, ptr, d) {
                m.module_bindings = bindings.clone();
            }
        }
        PatchOp::SetSecrets { pre_hash, secrets } => {
            if check_block(set, m, Block::Secrets, pre_hash, ptr, d) {
                let list = m.refs.entry(DefKind::Secret).or_default();
                list.clear();
                for (j, s) in secrets.iter().enumerate() {
                    list.push(NamedRef {
                        name: s.name.clone(),
                        hash: None,
                    });
                    if let Some(h) = &s.hash {
                        checks.push(RefCheck {
                            kind: DefKind::Secret,
                            name: s.name.clone(),
                            hash: h.clone(),
                            ptr: format!("{ptr}/secrets/{j}"),
                        });
                    }
                }
            }
        }
    }
}

/// The assembled manifest hash of a set, or its errors.
fn manifest_hash(set: &AirSet, which: &str) -> Result<Hash, Vec<Diagnostic>> {
    let (a, d) = assemble(set);
    match a {
        Some(a) if !has_errors(&d) => Ok(a.manifest_hash),
        _ => {
            let mut errs = vec![Diagnostic::error(
                "base_invalid",
                "",
                format!("the {which} AIR set does not assemble, so it has no manifest hash"),
            )
            .hint("fix the errors below first")];
            errs.extend(d.into_iter().filter(Diagnostic::is_error));
            Err(errs)
        }
    }
}

/// Check a candidate set as a whole: every error of the validator
/// ([`crate::validate::validate`]) and of assembly (which also checks stated hashes),
/// the copies both report (same code, def and pointer) once.
pub fn check_candidate(set: &AirSet) -> Vec<Diagnostic> {
    let mut errs: Vec<Diagnostic> = crate::validate::validate(set)
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect();
    let (_, d) = assemble(set);
    for x in d.into_iter().filter(Diagnostic::is_error) {
        if !errs
            .iter()
            .any(|e| e.code == x.code && e.def == x.def && e.pointer == x.pointer)
        {
            errs.push(x);
        }
    }
    errs
}

/// Apply `patch` to `base`, whose assembled manifest hash the caller expects to be
/// `base_manifest_hash`, and return the candidate set — or every error: a base that is
/// not the expected one or not the patch's base, failed `pre_hash` checks (naming both
/// hashes), adding a def that exists, replacing or removing one that does not, bad
/// nodes, and then everything the validator finds in the candidate as a whole.
/// `base` is never modified.
pub fn apply(
    base: &AirSet,
    base_manifest_hash: &Hash,
    patch: &PatchDoc,
) -> Result<AirSet, Vec<Diagnostic>> {
    let actual = manifest_hash(base, "base")?;
    let mut errs = Vec::new();
    if patch.version != "1" {
        errs.push(
            Diagnostic::error(
                "bad_value",
                "/version",
                "unsupported patch document version",
            )
            .expected("\"1\"")
            .found(format!("{:?}", patch.version)),
        );
    }
    if *base_manifest_hash != actual {
        errs.push(
            Diagnostic::error("base_mismatch", "", format!("the base AIR set's manifest hash is {actual}, not the expected {base_manifest_hash}"))
                .expected(base_manifest_hash.to_string())
                .found(actual.to_string()),
        );
    }
    if patch.base_manifest_hash != actual {
        errs.push(
            Diagnostic::error("stale_base", "/base_manifest_hash", format!("the patch was written against manifest {}, but the base manifest is {actual}", patch.base_manifest_hash))
                .expected(actual.to_string())
                .found(patch.base_manifest_hash.to_string())
                .hint("the AIR changed since the patch was made; regenerate it against the current manifest"),
        );
    }
    let (candidate, d) = apply_ops(base, &patch.patches);
    errs.extend(d.into_iter().filter(Diagnostic::is_error));
    if !errs.is_empty() {
        return Err(errs);
    }
    let errs = check_candidate(&candidate);
    if errs.is_empty() {
        Ok(candidate)
    } else {
        Err(errs)
    }
}

/// A patch document that turns `old` into `new`: applied to `old` it yields a set
/// whose assembled manifest hash is `new`'s. Both sets must assemble. Defs are added,
/// replaced (by name, with `pre_hash`) and removed; the manifest's listings, defaults,
/// routing, triggers and bindings follow with `set_*` operations where they differ.
/// Nodes are embedded as authored where that form still parses to the def (otherwise
/// in canonical form). Identical sets give a document with no operations.
pub fn diff_to_patch(old: &AirSet, new: &AirSet) -> Result<PatchDoc, Vec<Diagnostic>> {
    let base = manifest_hash(old, "old")?;
    let target = manifest_hash(new, "new")?;
    let mut ops = Vec::new();
    for ((kind, name), n) in &new.defs {
        match old.defs.get(&(*kind, name.clone())) {
            None => ops.push(PatchOp::AddDef {
                kind: *kind,
                node: node_json(n),
            }),
            Some(o) => {
                let pre_hash = def_hash(old, &o.item);
                if def_hash(new, &n.item) != pre_hash {
                    ops.push(PatchOp::ReplaceDef {
                        kind: *kind,
                        name: name.clone(),
                        new_node: node_json(n),
                        pre_hash,
                    });
                }
            }
        }
    }
    for ((kind, name), o) in &old.defs {
        if !new.defs.contains_key(&(*kind, name.clone())) {
            ops.push(PatchOp::RemoveDef {
                kind: *kind,
                name: name.clone(),
                pre_hash: def_hash(old, &o.item),
            });
        }
    }
    let (working, d) = apply_ops(old, &ops);
    if has_errors(&d) {
        return Err(d);
    }
    let (Some(wm), Some(nm)) = (
        working.manifest.as_ref().map(|m| &m.item),
        new.manifest.as_ref().map(|m| &m.item),
    ) else {
        return Err(vec![Diagnostic::error(
            "no_manifest",
            "",
            "both AIR sets need a manifest",
        )]);
    };

    let names = |m: &Manifest, kind: DefKind| -> BTreeSet<Name> {
        m.refs
            .get(&kind)
            .into_iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect()
    };
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for kind in DefKind::ALL.into_iter().filter(|k| *k != DefKind::Manifest) {
        let (have, want) = (names(wm, kind), names(nm, kind));
        for name in want.difference(&have) {
            let hash = resolve(new, kind, name)
                .map_or(HashRef::Placeholder(String::new()), |def| {
                    HashRef::Filled(def_hash(new, def))
                });
            add.push(RefAdd {
                kind,
                name: name.clone(),
                hash,
            });
        }
        for name in have.difference(&want) {
            remove.push(RefRemove {
                kind,
                name: name.clone(),
            });
        }
    }
    if !add.is_empty() || !remove.is_empty() {
        ops.push(PatchOp::SetManifestRefs { add, remove });
    }

    // Grants compared in canonical form: the same params written in either lens are
    // the same grant.
    let (mut wcanon, mut ncanon) = (wm.clone(), nm.clone());
    crate::assemble::canonicalize_grants(&working, &mut wcanon);
    crate::assemble::canonicalize_grants(new, &mut ncanon);
    let (wc, nc) = (
        manifest_json(&wcanon, &BTreeMap::new()),
        manifest_json(&ncanon, &BTreeMap::new()),
    );
    let policy = (wm.defaults.policy != nm.defaults.policy).then(|| nm.defaults.policy.clone());
    let grants = (wc["defaults"]["cap_grants"] != nc["defaults"]["cap_grants"])
        .then(|| nm.defaults.cap_grants.clone());
    if policy.is_some() || grants.is_some() {
        ops.push(PatchOp::SetDefaults {
            policy,
            cap_grants: grants,
        });
    }
    let pre = |block| block_hash_in(&working, wm, block);
    if wc["routing"]["events"] != nc["routing"]["events"] {
        ops.push(PatchOp::SetRoutingEvents {
            pre_hash: pre(Block::RoutingEvents),
            events: nm.routing_events.clone(),
        });
    }
    if wc["routing"]["inboxes"] != nc["routing"]["inboxes"] {
        ops.push(PatchOp::SetRoutingInboxes {
            pre_hash: pre(Block::RoutingInboxes),
            inboxes: nm.inboxes.clone(),
        });
    }
    if wc["triggers"] != nc["triggers"] {
        ops.push(PatchOp::SetTriggers {
            pre_hash: pre(Block::Triggers),
            triggers: nm.triggers.clone(),
        });
    }
    if wc["module_bindings"] != nc["module_bindings"] {
        ops.push(PatchOp::SetModuleBindings {
            pre_hash: pre(Block::ModuleBindings),
            bindings: nm.module_bindings.clone(),
        });
    }

    let doc = PatchDoc {
        version: "1".into(),
        base_manifest_hash: base,
        patches: ops,
    };
    // The document must do what it says; anything else is a bug worth a clear error.
    let (candidate, d) = apply_ops(old, &doc.patches);
    let got = manifest_hash(&candidate, "patched").map_err(|mut e| {
        e.extend(d);
        e
    })?;
    if got != target {
        return Err(vec![Diagnostic::error(
            "patch_roundtrip",
            "",
            format!("internal error: the computed patch yields manifest {got}, not {target}"),
        )
        .hint("please report this with both AIR sets")]);
    }
    Ok(doc)
}

/// The node to embed for a def: as authored when that still parses to the def (a
/// filled `wasm_hash`, for instance, is only in the model), else canonical.
fn node_json(loc: &Located<Def>) -> Value {
    let mut raw = loc.raw.clone();
    strip_comments(&mut raw);
    let mut d = Vec::new();
    match parse_node(&raw, &mut d) {
        Some(Node::Def(def)) if def == loc.item && !has_errors(&d) => raw,
        _ => loc.item.to_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Source};

    fn set(files: &[(&str, &str)]) -> AirSet {
        let sources: Vec<Source> = files
            .iter()
            .map(|(n, t)| Source {
                name: (*n).into(),
                bytes: t.as_bytes().to_vec(),
            })
            .collect();
        let (s, d) = load(&sources);
        assert!(!has_errors(&d), "{d:?}");
        s
    }

    fn codes(e: &[Diagnostic]) -> Vec<(&'static str, String)> {
        e.iter().map(|x| (x.code, x.pointer.clone())).collect()
    }

    #[test]
    fn parse_reports_precise_pointers() {
        let v = json!({
            "base_manifest_hash": "sha256:00",
            "patches": [
                {"add_def": {"kind": "defschema", "node": {"$kind": "defschema", "name": "demo/A@1", "type": {"flaot": {}}}}},
                {"replace_def": {"kind": "defplan", "name": "demo/P@1", "pre_hash": "x", "new_node": {"$kind": "defschema", "name": "demo/A@1", "type": {"nat": {}}}}},
                {"frobnicate": {}},
                {"set_triggers": {"pre_hash": format!("blake3:{}", "ab".repeat(32)), "triggers": [{"event": "demo/E@1"}]}},
                {"set_secrets": {"pre_hash": format!("blake3:{}", "ab".repeat(32)), "secrets": [{"alias": "k", "version": 1, "binding_id": "env:K"}]}},
                {"set_manifest_refs": {}}
            ]
        });
        let e = PatchDoc::from_json(&v).unwrap_err();
        let c = codes(&e);
        for want in [
            ("bad_hash", "/base_manifest_hash"),
            ("bad_type", "/patches/0/add_def/node/type"),
            ("bad_hash", "/patches/1/replace_def/pre_hash"),
            ("kind_mismatch", "/patches/1/replace_def/kind"),
            ("unknown_op", "/patches/2/frobnicate"),
            ("missing_field", "/patches/3/set_triggers/triggers/0"),
            ("unsupported", "/patches/4/set_secrets/secrets/0"),
            ("missing_field", "/patches/5/set_manifest_refs"),
        ] {
            assert!(
                c.contains(&(want.0, want.1.to_string())),
                "missing {want:?} in {c:#?}"
            );
        }
        assert!(e.iter().any(|x| x.def.as_deref() == Some("demo/A@1")));
    }

    #[test]
    fn round_trips_through_json() {
        let h = Hash::of(b"x");
        let doc = PatchDoc {
            version: "1".into(),
            base_manifest_hash: h,
            patches: vec![
                PatchOp::AddDef {
                    kind: DefKind::Schema,
                    node: json!({"$kind": "defschema", "name": "demo/A@1", "type": {"nat": {}}}),
                },
                PatchOp::RemoveDef {
                    kind: DefKind::Schema,
                    name: Name::parse("demo/B@1").unwrap(),
                    pre_hash: h,
                },
                PatchOp::SetManifestRefs {
                    add: vec![RefAdd {
                        kind: DefKind::Effect,
                        name: Name::parse("sys/timer.set@1").unwrap(),
                        hash: HashRef::Placeholder(String::new()),
                    }],
                    remove: vec![],
                },
                PatchOp::SetDefaults {
                    policy: Some(None),
                    cap_grants: None,
                },
                PatchOp::SetTriggers {
                    pre_hash: h,
                    triggers: vec![],
                },
                PatchOp::SetModuleBindings {
                    pre_hash: h,
                    bindings: BTreeMap::new(),
                },
                PatchOp::SetSecrets {
                    pre_hash: h,
                    secrets: vec![],
                },
            ],
        };
        let j = doc.to_json();
        assert_eq!(j["base_manifest_hash"], json!(h.to_string()));
        assert_eq!(j["patches"][3], json!({"set_defaults": {"policy": null}}));
        assert_eq!(PatchDoc::from_json(&j).unwrap(), doc);
    }

    #[test]
    fn block_ops_check_pre_hashes() {
        let base = set(&[(
            "m.air.json",
            r#"{"$kind":"manifest","air_version":"1","schemas":[{"name":"sys/TimerFired@1"}],"triggers":[]}"#,
        )]);
        let h = manifest_hash(&base, "base").unwrap();
        let pre = block_hash(&base, Block::Triggers).unwrap();
        let wrong = Hash::of(b"nope");
        let doc = |pre_hash| PatchDoc {
            version: "1".into(),
            base_manifest_hash: h,
            patches: vec![PatchOp::SetModuleBindings {
                pre_hash,
                bindings: BTreeMap::new(),
            }],
        };
        assert!(apply(
            &base,
            &h,
            &doc(block_hash(&base, Block::ModuleBindings).unwrap())
        )
        .is_ok());
        let e = apply(&base, &h, &doc(wrong)).unwrap_err();
        assert_eq!(
            codes(&e),
            [(
                "pre_hash_mismatch",
                "/patches/0/set_module_bindings/pre_hash".to_string()
            )]
        );
        assert!(
            e[0].message.contains(&wrong.to_string()) && e[0].message.contains("module_bindings")
        );
        assert_ne!(pre, wrong);
    }
}
