//! `aos air fmt`: the one stable, readable pretty form of AIR files.
//!
//! The form is a function of the JSON *value* only, so formatting is idempotent and
//! never changes content: nothing is canonicalized, `$comment` keys and the authored
//! lens of every value (sugar or tagged) are kept exactly; only key order and
//! whitespace change.
//!
//! - Two-space indent, one key per line, a newline at the end of the file.
//! - Keys in a fixed order: in a node `$kind` and `name` first, then the kind's fields
//!   in the order of the AIR v1 JSON Schemas (`defplan`: `input`, `output`, `locals`,
//!   `steps`, `edges`, `required_caps`, `allowed_effects`, `invariants`; a step: `id`,
//!   `op`, the op's fields, `bind` last; the manifest: `air_version`, the def lists,
//!   `defaults`, `module_bindings`, `routing`, `triggers`; …). Nested structures
//!   (module ABIs, policy rules, routes, grants, expressions, patch operations) follow
//!   their schemas too. Keys the schemas do not name (record fields, map keys, unknown
//!   fields) follow alphabetically, and `$comment` comes last, where the AIR corpus
//!   writes it.
//! - A value stays on one line when the whole line fits in 80 columns and it is a
//!   scalar, an empty container, an array of scalars (`["a", "b"]`), or an object whose
//!   values are all such (`{ "ref": "@var:x" }`, `{ "from": "a", "to": "b" }`). Nodes,
//!   plan steps, policy rules and patch operations are always written as blocks.
//!
//! Besides AIR nodes (a node or an array of nodes), a patch document (`version`,
//! `base_manifest_hash`, `patches`) is recognized and laid out the same way, with the
//! nodes it embeds formatted as nodes.

use serde_json::{Map, Value};

use crate::diag::Diagnostic;

/// Lines are kept within this many columns where the layout allows it.
pub const WIDTH: usize = 80;

/// Format a JSON value (an AIR node, an array of nodes, a patch document, or any
/// JSON) in the one pretty form. Ends with a newline.
pub fn format_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, Ctx::Root, 0, 0, false);
    out.push('\n');
    out
}

/// Parse `bytes` as JSON and format it. Invalid JSON is a diagnostic with the line and
/// column.
// One diagnostic, by value, like the rest of the crate's API.
#[allow(clippy::result_large_err)]
pub fn format_source(bytes: &[u8]) -> Result<String, Diagnostic> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Diagnostic::error("bad_json", "", format!("not valid UTF-8: {e}"))
            .hint("AIR files are UTF-8 JSON")
    })?;
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Diagnostic::error("bad_json", "", format!("not valid JSON: {e}"))
            .hint("fix the syntax at the line and column shown")
    })?;
    Ok(format_json(&v))
}

/// Where an object sits, which decides its key order and its children's contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// The top of a file: a node, an array of nodes, or a patch document.
    Root,
    /// Unknown structure: alphabetical, but an object with a known `$kind` is a node.
    Any,
    /// Plain data (grant params, map keys, ...): alphabetical.
    Data,
    Node(Kind),
    // defmodule
    Abi,
    ReducerAbi,
    PureAbi,
    // defplan
    Step,
    Bind,
    Edge,
    Expr,
    ExprVariant,
    ExprMapEntry,
    // defschema / defcap
    Type,
    TypeMap,
    Enforcer,
    // defpolicy
    Rule,
    Match,
    // manifest
    NamedRef,
    Defaults,
    CapGrant,
    ModuleBindings,
    ModuleBinding,
    Routing,
    RouteEvent,
    Inbox,
    Trigger,
    // patch documents
    Patch,
    PatchOp,
    AddDef,
    ReplaceDef,
    RemoveDef,
    SetManifestRefs,
    ManifestRefEdit,
    SetDefaults,
    SetRoutingEvents,
    SetRoutingInboxes,
    SetTriggers,
    SetModuleBindings,
    SetSecrets,
    SecretEntry,
    SecretPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Schema,
    Module,
    Plan,
    Cap,
    Policy,
    Effect,
    Secret,
    Manifest,
}

fn node_kind(m: &Map<String, Value>) -> Option<Kind> {
    Some(match m.get("$kind")?.as_str()? {
        "defschema" => Kind::Schema,
        "defmodule" => Kind::Module,
        "defplan" => Kind::Plan,
        "defcap" => Kind::Cap,
        "defpolicy" => Kind::Policy,
        "defeffect" => Kind::Effect,
        "defsecret" => Kind::Secret,
        "manifest" => Kind::Manifest,
        _ => return None,
    })
}

/// The context an object actually gets: nodes are recognized by `$kind` wherever the
/// structure is unknown, patch documents at the top.
fn resolve(ctx: Ctx, m: &Map<String, Value>) -> Ctx {
    match ctx {
        Ctx::Root | Ctx::Any => match node_kind(m) {
            Some(k) => Ctx::Node(k),
            None if ctx == Ctx::Root
                && m.contains_key("patches")
                && m.contains_key("base_manifest_hash") =>
            {
                Ctx::Patch
            }
            None => Ctx::Any,
        },
        other => other,
    }
}

/// The known keys of an object, in order.
fn order(ctx: Ctx, m: &Map<String, Value>) -> &'static [&'static str] {
    match ctx {
        Ctx::Node(k) => match k {
            Kind::Schema => &["$kind", "name", "type"],
            Kind::Module => &[
                "$kind",
                "name",
                "module_kind",
                "wasm_hash",
                "key_schema",
                "abi",
            ],
            Kind::Plan => &[
                "$kind",
                "name",
                "input",
                "output",
                "locals",
                "steps",
                "edges",
                "required_caps",
                "allowed_effects",
                "invariants",
            ],
            Kind::Cap => &["$kind", "name", "cap_type", "schema", "enforcer"],
            Kind::Policy => &["$kind", "name", "rules"],
            Kind::Effect => &[
                "$kind",
                "name",
                "kind",
                "params_schema",
                "receipt_schema",
                "cap_type",
                "origin_scope",
                "description",
            ],
            Kind::Secret => &[
                "$kind",
                "name",
                "binding_id",
                "expected_digest",
                "allowed_caps",
                "allowed_plans",
            ],
            Kind::Manifest => &[
                "$kind",
                "air_version",
                "schemas",
                "modules",
                "plans",
                "effects",
                "caps",
                "policies",
                "secrets",
                "defaults",
                "module_bindings",
                "routing",
                "triggers",
            ],
        },
        Ctx::Abi => &["reducer", "pure"],
        Ctx::ReducerAbi => &[
            "state",
            "event",
            "annotations",
            "effects_emitted",
            "cap_slots",
        ],
        Ctx::PureAbi => &["input", "output"],
        Ctx::Step => match m.get("op").and_then(Value::as_str) {
            Some("raise_event") => &["id", "op", "event", "value"],
            Some("emit_effect") => &[
                "id",
                "op",
                "kind",
                "params",
                "cap",
                "idempotency_key",
                "bind",
            ],
            Some("await_receipt") => &["id", "op", "for", "bind"],
            Some("await_event") => &["id", "op", "event", "where", "bind"],
            Some("assign") => &["id", "op", "expr", "bind"],
            Some("end") => &["id", "op", "result"],
            _ => &[
                "id",
                "op",
                "kind",
                "event",
                "params",
                "cap",
                "idempotency_key",
                "for",
                "where",
                "value",
                "expr",
                "result",
                "bind",
            ],
        },
        Ctx::Bind => &["as", "effect_id_as"],
        Ctx::Edge => &["from", "to", "when"],
        Ctx::Expr => &["op", "args"],
        Ctx::ExprVariant => &["tag", "value"],
        Ctx::ExprMapEntry => &["key", "value"],
        Ctx::Type => &["key", "value"],
        Ctx::Enforcer => &["module"],
        Ctx::Rule => &["when", "decision"],
        Ctx::Match => &["effect_kind", "cap_name", "origin_kind", "origin_name"],
        Ctx::NamedRef => &["name", "hash"],
        Ctx::Defaults => &["policy", "cap_grants"],
        Ctx::CapGrant => &["name", "cap", "params", "expiry_ns"],
        Ctx::ModuleBinding => &["slots"],
        Ctx::Routing => &["events", "inboxes"],
        Ctx::RouteEvent => &["event", "reducer", "key_field"],
        Ctx::Inbox => &["source", "reducer"],
        Ctx::Trigger => &["event", "plan", "correlate_by"],
        Ctx::Patch => &["version", "base_manifest_hash", "patches"],
        Ctx::PatchOp => &[
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
        ],
        Ctx::AddDef => &["kind", "node"],
        Ctx::ReplaceDef => &["kind", "name", "new_node", "pre_hash"],
        Ctx::RemoveDef => &["kind", "name", "pre_hash"],
        Ctx::SetManifestRefs => &["add", "remove"],
        Ctx::ManifestRefEdit => &["kind", "name", "hash"],
        Ctx::SetDefaults => &["policy", "cap_grants"],
        Ctx::SetRoutingEvents => &["pre_hash", "events"],
        Ctx::SetRoutingInboxes => &["pre_hash", "inboxes"],
        Ctx::SetTriggers => &["pre_hash", "triggers"],
        Ctx::SetModuleBindings => &["pre_hash", "bindings"],
        Ctx::SetSecrets => &["pre_hash", "secrets"],
        Ctx::SecretEntry => &[
            "name",
            "hash",
            "alias",
            "version",
            "binding_id",
            "expected_digest",
            "policy",
        ],
        Ctx::SecretPolicy => &["allowed_caps", "allowed_plans"],
        Ctx::Root | Ctx::Any | Ctx::Data | Ctx::TypeMap | Ctx::ModuleBindings => &[],
    }
}

/// The context of the value under `key` (for an array, the context of its items).
fn child(ctx: Ctx, key: &str) -> Ctx {
    match (ctx, key) {
        (Ctx::Node(Kind::Schema), "type") => Ctx::Type,
        (Ctx::Node(Kind::Module), "abi") => Ctx::Abi,
        (Ctx::Abi, "reducer") => Ctx::ReducerAbi,
        (Ctx::Abi, "pure") => Ctx::PureAbi,
        (Ctx::Node(Kind::Plan), "steps") => Ctx::Step,
        (Ctx::Node(Kind::Plan), "edges") => Ctx::Edge,
        (Ctx::Node(Kind::Plan), "invariants") => Ctx::Expr,
        (Ctx::Step, "bind") => Ctx::Bind,
        (
            Ctx::Step,
            "value" | "params" | "idempotency_key" | "for" | "where" | "expr" | "result",
        ) => Ctx::Expr,
        (Ctx::Edge, "when") => Ctx::Expr,
        (Ctx::Expr | Ctx::ExprVariant | Ctx::ExprMapEntry, "variant") => Ctx::ExprVariant,
        (Ctx::Expr | Ctx::ExprVariant | Ctx::ExprMapEntry, "map") => Ctx::ExprMapEntry,
        (Ctx::Expr | Ctx::ExprVariant | Ctx::ExprMapEntry, _) => Ctx::Expr,
        (Ctx::Type, "record" | "variant") => Ctx::TypeMap,
        (Ctx::Type | Ctx::TypeMap, _) => Ctx::Type,
        (Ctx::Node(Kind::Cap), "schema") => Ctx::Type,
        (Ctx::Node(Kind::Cap), "enforcer") => Ctx::Enforcer,
        (Ctx::Node(Kind::Policy), "rules") => Ctx::Rule,
        (Ctx::Rule, "when") => Ctx::Match,
        (
            Ctx::Node(Kind::Manifest),
            "schemas" | "modules" | "plans" | "effects" | "caps" | "policies" | "secrets",
        ) => Ctx::NamedRef,
        (Ctx::Node(Kind::Manifest), "defaults") => Ctx::Defaults,
        (Ctx::Node(Kind::Manifest), "module_bindings") => Ctx::ModuleBindings,
        (Ctx::Node(Kind::Manifest), "routing") => Ctx::Routing,
        (Ctx::Node(Kind::Manifest), "triggers") => Ctx::Trigger,
        (Ctx::Defaults | Ctx::SetDefaults, "cap_grants") => Ctx::CapGrant,
        (Ctx::ModuleBindings, _) => Ctx::ModuleBinding,
        (Ctx::Routing, "events") => Ctx::RouteEvent,
        (Ctx::Routing, "inboxes") => Ctx::Inbox,
        (Ctx::Patch, "patches") => Ctx::PatchOp,
        (Ctx::PatchOp, "add_def") => Ctx::AddDef,
        (Ctx::PatchOp, "replace_def") => Ctx::ReplaceDef,
        (Ctx::PatchOp, "remove_def") => Ctx::RemoveDef,
        (Ctx::PatchOp, "set_manifest_refs") => Ctx::SetManifestRefs,
        (Ctx::PatchOp, "set_defaults") => Ctx::SetDefaults,
        (Ctx::PatchOp, "set_routing_events") => Ctx::SetRoutingEvents,
        (Ctx::PatchOp, "set_routing_inboxes") => Ctx::SetRoutingInboxes,
        (Ctx::PatchOp, "set_triggers") => Ctx::SetTriggers,
        (Ctx::PatchOp, "set_module_bindings") => Ctx::SetModuleBindings,
        (Ctx::PatchOp, "set_secrets") => Ctx::SetSecrets,
        (Ctx::AddDef, "node") | (Ctx::ReplaceDef, "new_node") => Ctx::Any,
        (Ctx::SetManifestRefs, _) => Ctx::ManifestRefEdit,
        (Ctx::SetRoutingEvents, "events") => Ctx::RouteEvent,
        (Ctx::SetRoutingInboxes, "inboxes") => Ctx::Inbox,
        (Ctx::SetTriggers, "triggers") => Ctx::Trigger,
        (Ctx::SetModuleBindings, "bindings") => Ctx::ModuleBindings,
        (Ctx::SetSecrets, "secrets") => Ctx::SecretEntry,
        (Ctx::SecretEntry, "policy") => Ctx::SecretPolicy,
        (Ctx::Root | Ctx::Any, _) => Ctx::Any,
        _ => Ctx::Data,
    }
}

/// Objects in these contexts are always blocks, however short.
fn is_block(ctx: Ctx) -> bool {
    matches!(
        ctx,
        Ctx::Node(_) | Ctx::Step | Ctx::Rule | Ctx::Patch | Ctx::PatchOp
    )
}

/// The object's keys in layout order: known keys in their order, then the rest
/// alphabetically, `$comment` last.
fn ordered_keys(ctx: Ctx, m: &Map<String, Value>) -> Vec<&String> {
    let known = order(ctx, m);
    let mut keys: Vec<&String> = m.keys().collect();
    let rank = |k: &str| -> (usize, usize) {
        if k == "$comment" {
            (2, 0)
        } else if let Some(i) = known.iter().position(|x| *x == k) {
            (0, i)
        } else {
            (1, 0)
        }
    };
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    keys
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(m) if m.is_empty() => Some("{}".into()),
        Value::Array(_) | Value::Object(_) => None,
        // Serializing a `Value` cannot fail (its map keys are strings).
        other => Some(serde_json::to_string(other).unwrap_or_default()),
    }
}

/// The one-line form of `v`, if it is small enough in kind (not in width) to have one.
fn inline(v: &Value, ctx: Ctx) -> Option<String> {
    if let Some(s) = scalar(v) {
        return Some(s);
    }
    match v {
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            Some(format!("[{}]", parts?.join(", ")))
        }
        Value::Object(m) => {
            let ctx = resolve(ctx, m);
            if is_block(ctx) {
                return None;
            }
            let mut parts = Vec::with_capacity(m.len());
            for k in ordered_keys(ctx, m) {
                let key = serde_json::to_string(k).unwrap_or_default();
                parts.push(format!("{key}: {}", inline(&m[k.as_str()], child(ctx, k))?));
            }
            Some(format!("{{ {} }}", parts.join(", ")))
        }
        _ => None,
    }
}

/// Write `v` at the current position; `indent` is the nesting depth, `used` the
/// columns already taken on this line (indent and key), `comma` whether a comma
/// follows.
fn write_value(out: &mut String, v: &Value, ctx: Ctx, indent: usize, used: usize, comma: bool) {
    if let Some(s) = inline(v, ctx) {
        if used + s.chars().count() + usize::from(comma) <= WIDTH || scalar(v).is_some() {
            out.push_str(&s);
            return;
        }
    }
    let pad = "  ".repeat(indent + 1);
    match v {
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                let more = i + 1 < items.len();
                out.push_str(&pad);
                write_value(out, item, ctx, indent + 1, pad.len(), more);
                out.push_str(if more { ",\n" } else { "\n" });
            }
        }
        Value::Object(m) => {
            let ctx = resolve(ctx, m);
            out.push_str("{\n");
            let keys = ordered_keys(ctx, m);
            for (i, k) in keys.iter().enumerate() {
                let more = i + 1 < keys.len();
                let key = serde_json::to_string(k).unwrap_or_default();
                out.push_str(&pad);
                out.push_str(&key);
                out.push_str(": ");
                let used = pad.len() + key.chars().count() + 2;
                write_value(out, &m[k.as_str()], child(ctx, k), indent + 1, used, more);
                out.push_str(if more { ",\n" } else { "\n" });
            }
        }
        // Scalars always have an inline form (handled above).
        _ => {}
    }
    out.push_str(&"  ".repeat(indent));
    out.push(if v.is_array() { ']' } else { '}' });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn orders_node_keys_and_keeps_content() {
        let v = json!({
            "steps": [{"bind": {"as": "x"}, "expr": {"int": 1}, "op": "assign", "id": "a"}, {"op": "end", "id": "z"}],
            "name": "demo/p@1",
            "input": "demo/In@1",
            "$comment": "a plan",
            "$kind": "defplan",
            "edges": [{"to": "z", "from": "a"}],
            "zzz_unknown": 1,
            "allowed_effects": ["http.request"]
        });
        let s = format_json(&v);
        let expected = r#"{
  "$kind": "defplan",
  "name": "demo/p@1",
  "input": "demo/In@1",
  "steps": [
    {
      "id": "a",
      "op": "assign",
      "expr": { "int": 1 },
      "bind": { "as": "x" }
    },
    {
      "id": "z",
      "op": "end"
    }
  ],
  "edges": [
    { "from": "a", "to": "z" }
  ],
  "allowed_effects": ["http.request"],
  "zzz_unknown": 1,
  "$comment": "a plan"
}
"#;
        assert_eq!(s, expected);
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
        assert_eq!(format_json(&back), s);
    }

    #[test]
    fn manifest_order_and_long_arrays_break() {
        let names: Vec<String> = (0..12).map(|i| format!("grant_number_{i}")).collect();
        let v = json!({"triggers": [], "$kind": "manifest", "schemas": [{"name": "demo/A@1"}], "air_version": "1",
                       "defaults": {"cap_grants": [], "policy": "demo/p@1"}, "x": names});
        let s = format_json(&v);
        let first: Vec<&str> = s.lines().take(3).collect();
        assert_eq!(
            first,
            [
                "{",
                "  \"$kind\": \"manifest\",",
                "  \"air_version\": \"1\","
            ]
        );
        assert!(s.contains("  \"schemas\": [\n    { \"name\": \"demo/A@1\" }\n  ],\n  \"defaults\": { \"policy\": \"demo/p@1\", \"cap_grants\": [] },\n  \"triggers\": [],\n"), "{s}");
        assert!(s.contains("  \"x\": [\n    \"grant_number_0\",\n"), "{s}");
        assert!(s.lines().all(|l| l.chars().count() <= WIDTH), "{s}");
        assert!(s.ends_with("}\n"));
    }

    #[test]
    fn source_errors_and_scalars() {
        assert_eq!(format_source(b"42").unwrap(), "42\n");
        assert_eq!(format_source(b"[]").unwrap(), "[]\n");
        let e = format_source(b"{ nope").unwrap_err();
        assert_eq!(e.code, "bad_json");
        assert!(e.message.contains("line 1"), "{}", e.message);
    }

    #[test]
    fn patch_documents_embed_nodes() {
        let v = json!({"patches": [{"add_def": {"node": {"type": {"nat": {}}, "name": "demo/A@1", "$kind": "defschema"}, "kind": "defschema"}}],
                       "base_manifest_hash": "blake3:00", "version": "1"});
        let s = format_json(&v);
        let expected = r#"{
  "version": "1",
  "base_manifest_hash": "blake3:00",
  "patches": [
    {
      "add_def": {
        "kind": "defschema",
        "node": {
          "$kind": "defschema",
          "name": "demo/A@1",
          "type": { "nat": {} }
        }
      }
    }
  ]
}
"#;
        assert_eq!(s, expected);
    }
}
