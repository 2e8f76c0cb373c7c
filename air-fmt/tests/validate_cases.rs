//! The semantic validator, one check at a time: a small valid world validates with no
//! diagnostics at all, and each test breaks exactly one thing in it and asserts the
//! code, file, def and pointer of the one resulting error (or warning).

use std::collections::BTreeMap;

use air_fmt::load::{load, Source};
use air_fmt::validate::validate;
use air_fmt::Diagnostic;
use serde_json::{json, Value};

const HASH: &str = "blake3:abababababababababababababababababababababababababababababababab";

/// The files of the world, by name.
struct World(BTreeMap<&'static str, Value>);

fn world() -> World {
    let mut w = BTreeMap::new();
    w.insert(
        "schemas.air.json",
        json!([
            {"$kind": "defschema", "name": "shop/OrderId@1", "type": {"text": {}}},
            {"$kind": "defschema", "name": "shop/OrderPlaced@1", "type": {"record": {
                "order_id": {"ref": "shop/OrderId@1"}, "amount": {"nat": {}}}}},
            {"$kind": "defschema", "name": "shop/PaymentDone@1", "type": {"record": {
                "order_id": {"text": {}}, "status": {"int": {}}}}},
            {"$kind": "defschema", "name": "shop/ShopEvent@1", "type": {"variant": {
                "Placed": {"ref": "shop/OrderPlaced@1"},
                "Paid": {"ref": "shop/PaymentDone@1"},
                "Timer": {"ref": "sys/TimerFired@1"}}}},
            {"$kind": "defschema", "name": "shop/ShopState@1", "type": {"record": {
                "orders": {"nat": {}}, "last_status": {"option": {"int": {}}}}}},
            {"$kind": "defschema", "name": "shop/ChargeRequested@1", "type": {"record": {
                "order_id": {"text": {}}, "url": {"text": {}}, "amount": {"nat": {}}}}},
            {"$kind": "defschema", "name": "shop/ChargeResult@1", "type": {"record": {"status": {"int": {}}}}},
            {"$kind": "defschema", "name": "shop/Confirmed@1", "type": {"record": {"order_id": {"text": {}}}}},
            {"$kind": "defschema", "name": "shop/AuditParams@1", "type": {"record": {"line": {"text": {}}}}},
            {"$kind": "defschema", "name": "shop/AuditReceipt@1", "type": {"record": {}}}
        ]),
    );
    w.insert(
        "module.air.json",
        json!([{
            "$kind": "defmodule", "name": "shop/Shop@1", "module_kind": "reducer",
            "wasm_hash": HASH, "key_schema": "shop/OrderId@1",
            "abi": {"reducer": {
                "state": "shop/ShopState@1", "event": "shop/ShopEvent@1",
                "effects_emitted": ["timer.set", "audit.log"],
                "cap_slots": {"timer": "timer", "audit": "audit"}}}
        }]),
    );
    w.insert(
        "plan.air.json",
        json!([{
            "$kind": "defplan", "name": "shop/charge_plan@1",
            "input": "shop/ChargeRequested@1", "output": "shop/ChargeResult@1",
            "locals": {"note": "shop/OrderId@1"},
            "steps": [
                {"id": "charge", "op": "emit_effect", "kind": "http.request",
                 "params": {"method": "POST", "url": "https://pay.example.com/charge",
                            "headers": {"content-type": "application/json"}, "body_ref": null},
                 "cap": "http_pay", "bind": {"effect_id_as": "charge_req"}},
                {"id": "wait", "op": "await_receipt", "for": {"ref": "@var:charge_req"}, "bind": {"as": "receipt"}},
                {"id": "status", "op": "assign",
                 "expr": {"op": "get", "args": [{"ref": "@var:receipt"}, {"text": "status"}]},
                 "bind": {"as": "status"}},
                {"id": "confirm", "op": "await_event", "event": "shop/Confirmed@1",
                 "where": {"op": "eq", "args": [{"ref": "@event.order_id"}, {"ref": "@plan.input.order_id"}]},
                 "bind": {"as": "confirmation"}},
                {"id": "notify", "op": "raise_event", "event": "shop/PaymentDone@1",
                 "value": {"record": {"order_id": {"ref": "@plan.input.order_id"}, "status": {"ref": "@var:status"}}}},
                {"id": "done", "op": "end", "result": {"record": {"status": {"ref": "@var:status"}}}}
            ],
            "edges": [
                {"from": "charge", "to": "wait"},
                {"from": "wait", "to": "status"},
                {"from": "status", "to": "confirm"},
                {"from": "confirm", "to": "notify", "when": {"op": "ge", "args": [{"ref": "@var:status"}, {"int": 0}]}},
                {"from": "notify", "to": "done"}
            ],
            "required_caps": ["http_pay"],
            "allowed_effects": ["http.request"],
            "invariants": [
                {"op": "ge", "args": [{"op": "len", "args": [{"ref": "@plan.input.url"}]}, {"nat": 1}]},
                {"op": "ne", "args": [{"ref": "@var:note"}, {"text": ""}]}
            ]
        }]),
    );
    w.insert(
        "caps.air.json",
        json!([
            {"$kind": "defcap", "name": "shop/pay_http@1", "cap_type": "http.out",
             "schema": {"record": {"hosts": {"set": {"text": {}}}}},
             "enforcer": {"module": "sys/CapAllowAll@1"}},
            {"$kind": "defcap", "name": "shop/audit@1", "cap_type": "audit",
             "schema": {"record": {"sinks": {"set": {"text": {}}}}},
             "enforcer": {"module": "sys/CapAllowAll@1"}}
        ]),
    );
    w.insert(
        "effects.air.json",
        json!([
            {"$kind": "defeffect", "name": "shop/audit.log@1", "kind": "audit.log",
             "params_schema": "shop/AuditParams@1", "receipt_schema": "shop/AuditReceipt@1",
             "cap_type": "audit", "origin_scope": "both"}
        ]),
    );
    w.insert(
        "policy.air.json",
        json!([{
            "$kind": "defpolicy", "name": "shop/policy@1",
            "rules": [
                {"when": {"effect_kind": "http.request", "origin_kind": "plan",
                          "origin_name": "shop/charge_plan@1", "cap_name": "http_pay"}, "decision": "allow"},
                {"when": {"effect_kind": "timer.set", "origin_kind": "reducer", "origin_name": "shop/Shop@1"},
                 "decision": "allow"},
                {"when": {"effect_kind": "audit.log", "origin_kind": "reducer", "origin_name": "shop/Shop@1",
                          "cap_name": "audit_grant"}, "decision": "allow"},
                {"when": {}, "decision": "deny"}
            ]
        }]),
    );
    w.insert(
        "secret.air.json",
        json!({"$kind": "defsecret", "name": "shop/pay_key@1", "binding_id": "env:PAY_KEY",
               "allowed_caps": ["http_pay"], "allowed_plans": ["shop/charge_plan@1"]}),
    );
    w.insert(
        "manifest.air.json",
        json!({
            "$kind": "manifest", "air_version": "1",
            "schemas": [
                {"name": "shop/OrderId@1"}, {"name": "shop/OrderPlaced@1"}, {"name": "shop/PaymentDone@1"},
                {"name": "shop/ShopEvent@1"}, {"name": "shop/ShopState@1"}, {"name": "shop/ChargeRequested@1"},
                {"name": "shop/ChargeResult@1"}, {"name": "shop/Confirmed@1"}, {"name": "shop/AuditParams@1"},
                {"name": "shop/AuditReceipt@1"}
            ],
            "modules": [{"name": "shop/Shop@1"}],
            "plans": [{"name": "shop/charge_plan@1"}],
            "caps": [{"name": "shop/pay_http@1"}, {"name": "shop/audit@1"}, {"name": "sys/timer@1"}],
            "policies": [{"name": "shop/policy@1"}],
            "effects": [{"name": "sys/http.request@1"}, {"name": "sys/timer.set@1"}, {"name": "shop/audit.log@1"}],
            "secrets": [{"name": "shop/pay_key@1"}],
            "defaults": {
                "policy": "shop/policy@1",
                "cap_grants": [
                    {"name": "http_pay", "cap": "shop/pay_http@1", "params": {"hosts": ["pay.example.com"]}},
                    {"name": "timer_grant", "cap": "sys/timer@1", "params": {}},
                    {"name": "audit_grant", "cap": "shop/audit@1", "params": {"record": {"sinks": {"set": [{"text": "log"}]}}}}
                ]
            },
            "module_bindings": {"shop/Shop@1": {"slots": {"timer": "timer_grant", "audit": "audit_grant"}}},
            "routing": {
                "events": [
                    {"event": "shop/OrderPlaced@1", "reducer": "shop/Shop@1", "key_field": "order_id"},
                    {"event": "shop/PaymentDone@1", "reducer": "shop/Shop@1", "key_field": "order_id"}
                ],
                "inboxes": []
            },
            "triggers": [
                {"event": "shop/ChargeRequested@1", "plan": "shop/charge_plan@1", "correlate_by": "order_id"}
            ]
        }),
    );
    World(w)
}

impl World {
    /// The JSON pointer of the node named `name` in a file holding an array of nodes.
    fn at(&self, file: &str, name: &str) -> String {
        let nodes = self.0[file]
            .as_array()
            .unwrap_or_else(|| panic!("{file} is not an array"));
        let i = nodes
            .iter()
            .position(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in {file}"));
        format!("/{i}")
    }

    fn node(&mut self, file: &str, ptr: &str) -> &mut Value {
        self.0
            .get_mut(file)
            .unwrap()
            .pointer_mut(ptr)
            .unwrap_or_else(|| panic!("{file}: no {ptr}"))
    }

    /// Set (or add, for an object member) the value at `ptr` of a node: `name` is a
    /// def name (in an array file) or "" for the whole file.
    fn set(mut self, file: &str, name: &str, ptr: &str, v: Value) -> Self {
        let base = if name.is_empty() {
            String::new()
        } else {
            self.at(file, name)
        };
        let full = format!("{base}{ptr}");
        let (parent, key) = full.rsplit_once('/').unwrap();
        match self.node(file, parent) {
            Value::Object(m) => {
                m.insert(key.replace("~1", "/").replace("~0", "~"), v);
            }
            Value::Array(a) => a[key.parse::<usize>().unwrap()] = v,
            other => panic!("{file}{parent} is {other}"),
        }
        self
    }

    fn remove(mut self, file: &str, name: &str, ptr: &str) -> Self {
        let base = if name.is_empty() {
            String::new()
        } else {
            self.at(file, name)
        };
        let full = format!("{base}{ptr}");
        let (parent, key) = full.rsplit_once('/').unwrap();
        match self.node(file, parent) {
            Value::Object(m) => {
                m.remove(key)
                    .unwrap_or_else(|| panic!("{file}{full} is absent"));
            }
            Value::Array(a) => {
                a.remove(key.parse::<usize>().unwrap());
            }
            other => panic!("{file}{parent} is {other}"),
        }
        self
    }

    /// Append to the array at `ptr` (of a named node, or of the file with "").
    fn push(mut self, file: &str, name: &str, ptr: &str, v: Value) -> Self {
        let base = if name.is_empty() {
            String::new()
        } else {
            self.at(file, name)
        };
        let full = format!("{base}{ptr}");
        let node = if full.is_empty() {
            self.0.get_mut(file).unwrap()
        } else {
            self.node(file, &full)
        };
        node.as_array_mut()
            .unwrap_or_else(|| panic!("{file}{full} is not an array"))
            .push(v);
        self
    }

    fn without_file(mut self, file: &str) -> Self {
        self.0.remove(file);
        self
    }

    fn diags(&self) -> Vec<Diagnostic> {
        let sources: Vec<Source> = self
            .0
            .iter()
            .map(|(name, v)| Source {
                name: name.to_string(),
                bytes: serde_json::to_vec_pretty(v).unwrap(),
            })
            .collect();
        let (set, load_diags) = load(&sources);
        assert!(
            load_diags.is_empty(),
            "the test world must load cleanly: {load_diags:#?}"
        );
        let diags = validate(&set);
        for d in &diags {
            assert!(d.file.is_some() || d.code == "no_manifest", "no file: {d}");
            assert!(
                d.expected.is_some() && d.found.is_some(),
                "no expected/found: {d}"
            );
        }
        diags
    }
}

fn render(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|x| format!("  {x}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Exactly one error and no warnings; it has this code, file, def and pointer.
#[track_caller]
fn one_error(w: World, code: &str, file: &str, def: Option<&str>, pointer: &str) -> Diagnostic {
    let d = w.diags();
    assert_eq!(
        d.len(),
        1,
        "expected exactly one diagnostic, got:\n{}",
        render(&d)
    );
    let d = d.into_iter().next().unwrap();
    assert!(d.is_error(), "not an error: {d}");
    assert_eq!(
        (
            d.code,
            d.file.as_deref(),
            d.def.as_deref(),
            d.pointer.as_str()
        ),
        (code, Some(file), def, pointer),
        "{d}"
    );
    d
}

/// Exactly one error (warnings ignored) with this code, file, def and pointer.
#[track_caller]
fn the_error(w: World, code: &str, file: &str, def: Option<&str>, pointer: &str) -> Diagnostic {
    let errors: Vec<Diagnostic> = w.diags().into_iter().filter(Diagnostic::is_error).collect();
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one error, got:\n{}",
        render(&errors)
    );
    let d = errors.into_iter().next().unwrap();
    assert_eq!(
        (
            d.code,
            d.file.as_deref(),
            d.def.as_deref(),
            d.pointer.as_str()
        ),
        (code, Some(file), def, pointer),
        "{d}"
    );
    d
}

/// No errors, and exactly one warning with this code, file, def and pointer.
#[track_caller]
fn one_warning(w: World, code: &str, file: &str, def: Option<&str>, pointer: &str) -> Diagnostic {
    let d = w.diags();
    assert_eq!(
        d.len(),
        1,
        "expected exactly one diagnostic, got:\n{}",
        render(&d)
    );
    let d = d.into_iter().next().unwrap();
    assert!(!d.is_error(), "not a warning: {d}");
    assert_eq!(
        (
            d.code,
            d.file.as_deref(),
            d.def.as_deref(),
            d.pointer.as_str()
        ),
        (code, Some(file), def, pointer),
        "{d}"
    );
    d
}

#[track_caller]
fn clean(w: World) {
    let d = w.diags();
    assert!(
        d.is_empty(),
        "expected no diagnostics, got:\n{}",
        render(&d)
    );
}

const SCHEMAS: &str = "schemas.air.json";
const MODULE: &str = "module.air.json";
const PLAN: &str = "plan.air.json";
const CAPS: &str = "caps.air.json";
const EFFECTS: &str = "effects.air.json";
const POLICY: &str = "policy.air.json";
const SECRET: &str = "secret.air.json";
const MANIFEST: &str = "manifest.air.json";
const SHOP: &str = "shop/Shop@1";
const CHARGE: &str = "shop/charge_plan@1";

// ---- the valid world ----

#[test]
fn the_world_is_valid() {
    clean(world());
}

#[test]
fn fitting_literals_and_variant_routes_are_accepted() {
    // Literal (non-expression) values that fit their schemas, in every position.
    clean(
        world()
            .set(
                PLAN,
                CHARGE,
                "/steps/4/value",
                json!({"order_id": "o-1", "status": 200}),
            )
            .set(
                PLAN,
                CHARGE,
                "/steps/5/result",
                json!({"status": {"int": 201}}),
            ),
    );
    // The reducer's whole ABI event may be routed too, keyed through its arms.
    clean(
        world()
            .remove(SCHEMAS, "shop/ShopEvent@1", "/type/variant/Timer")
            .push(
                MANIFEST,
                "",
                "/routing/events",
                json!({"event": "shop/ShopEvent@1", "reducer": SHOP, "key_field": "$value.order_id"}),
            ),
    );
    // A kernel-provided sys/ pure module needs no wasm hash.
    clean(
        world()
            .push(
                MODULE,
                "",
                "",
                json!({"$kind": "defmodule", "name": "sys/CapCustom@1", "module_kind": "pure",
                       "abi": {"pure": {"input": "sys/CapCheckInput@1", "output": "sys/CapCheckOutput@1"}}}),
            )
            .push(MANIFEST, "", "/modules", json!({"name": "sys/CapCustom@1"}))
            .set(CAPS, "shop/audit@1", "/enforcer/module", json!("sys/CapCustom@1")),
    );
}

// ---- 1. names and references ----

#[test]
fn an_unknown_schema_is_reported_once_where_it_is_referenced() {
    // shop/ChargeRequested@1 is the plan's input and the trigger's event; neither the
    // plan's @plan.input paths nor the trigger's correlation key report it again.
    let d = one_error(
        world().set(
            SCHEMAS,
            "shop/ChargeRequested@1",
            "/type/record/url",
            json!({"ref": "shop/Url@1"}),
        ),
        "unknown_schema",
        SCHEMAS,
        Some("shop/ChargeRequested@1"),
        "/type/record/url/ref",
    );
    assert_eq!(d.found.as_deref(), Some("shop/Url@1"));
}

#[test]
fn a_recursive_type_is_one_error_naming_the_cycle() {
    let d = one_error(
        world()
            .set(
                SCHEMAS,
                "shop/OrderPlaced@1",
                "/type/record/payment",
                json!({"ref": "shop/PaymentDone@1"}),
            )
            .set(
                SCHEMAS,
                "shop/PaymentDone@1",
                "/type/record/placed",
                json!({"option": {"ref": "shop/OrderPlaced@1"}}),
            ),
        "recursive_type",
        SCHEMAS,
        Some("shop/OrderPlaced@1"),
        "/type/record/payment/ref",
    );
    assert!(
        d.message
            .contains("shop/OrderPlaced@1 -> shop/PaymentDone@1 -> shop/OrderPlaced@1"),
        "{d}"
    );
    let d = one_error(
        world().set(
            SCHEMAS,
            "shop/ShopState@1",
            "/type/record/prev",
            json!({"option": {"ref": "shop/ShopState@1"}}),
        ),
        "recursive_type",
        SCHEMAS,
        Some("shop/ShopState@1"),
        "/type/record/prev/option/ref",
    );
    assert!(
        d.message.contains("shop/ShopState@1 -> shop/ShopState@1"),
        "{d}"
    );
}

#[test]
fn module_abi_schemas_resolve() {
    let d = one_error(
        world().set(MODULE, SHOP, "/abi/reducer/event", json!("shop/ShopEvnt@1")),
        "unknown_schema",
        MODULE,
        Some(SHOP),
        "/abi/reducer/event",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean shop/ShopEvent@1?"));
    one_error(
        world().set(MODULE, SHOP, "/abi/reducer/state", json!("shop/State@1")),
        "unknown_schema",
        MODULE,
        Some(SHOP),
        "/abi/reducer/state",
    );
    one_error(
        world().set(
            MODULE,
            SHOP,
            "/abi/reducer/annotations",
            json!("shop/Ann@1"),
        ),
        "unknown_schema",
        MODULE,
        Some(SHOP),
        "/abi/reducer/annotations",
    );
    one_error(
        world().set(MODULE, SHOP, "/key_schema", json!("shop/OrderKey@1")),
        "unknown_schema",
        MODULE,
        Some(SHOP),
        "/key_schema",
    );
    one_error(
        world().push(
            MODULE,
            "",
            "",
            json!({"$kind": "defmodule", "name": "sys/CapCustom@1", "module_kind": "pure",
                   "abi": {"pure": {"input": "sys/CapCheckInput@1", "output": "sys/CapCheckOut@1"}}}),
        )
        .push(MANIFEST, "", "/modules", json!({"name": "sys/CapCustom@1"})),
        "unknown_schema",
        MODULE,
        Some("sys/CapCustom@1"),
        "/abi/pure/output",
    );
}

#[test]
fn plan_schemas_resolve() {
    one_error(
        world().set(PLAN, CHARGE, "/input", json!("shop/ChargeReq@1")),
        "unknown_schema",
        PLAN,
        Some(CHARGE),
        "/input",
    );
    one_error(
        world().set(PLAN, CHARGE, "/output", json!("shop/Result@1")),
        "unknown_schema",
        PLAN,
        Some(CHARGE),
        "/output",
    );
    one_error(
        world().set(PLAN, CHARGE, "/locals/note", json!("shop/Note@1")),
        "unknown_schema",
        PLAN,
        Some(CHARGE),
        "/locals/note",
    );
}

#[test]
fn step_event_schemas_resolve() {
    one_error(
        world().set(PLAN, CHARGE, "/steps/3/event", json!("shop/Confirmd@1")),
        "unknown_schema",
        PLAN,
        Some(CHARGE),
        "/steps/3/event",
    );
    one_error(
        world().set(PLAN, CHARGE, "/steps/4/event", json!("shop/Paid@1")),
        "unknown_schema",
        PLAN,
        Some(CHARGE),
        "/steps/4/event",
    );
}

#[test]
fn effect_schemas_resolve() {
    let e = "shop/audit.log@1";
    one_error(
        world().set(EFFECTS, e, "/params_schema", json!("shop/AuditParms@1")),
        "unknown_schema",
        EFFECTS,
        Some(e),
        "/params_schema",
    );
    one_error(
        world().set(EFFECTS, e, "/receipt_schema", json!("shop/AuditRcpt@1")),
        "unknown_schema",
        EFFECTS,
        Some(e),
        "/receipt_schema",
    );
}

#[test]
fn cap_enforcers_are_pure_modules() {
    let c = "shop/pay_http@1";
    one_error(
        world().set(CAPS, c, "/enforcer/module", json!("sys/CapNope@1")),
        "unknown_module",
        CAPS,
        Some(c),
        "/enforcer/module",
    );
    one_error(
        world().set(CAPS, c, "/enforcer/module", json!(SHOP)),
        "enforcer_not_pure",
        CAPS,
        Some(c),
        "/enforcer/module",
    );
}

#[test]
fn secrets_name_known_plans_and_grants() {
    let s = "shop/pay_key@1";
    one_error(
        world().set(SECRET, "", "/allowed_plans/0", json!("shop/charge_plan@2")),
        "unknown_plan",
        SECRET,
        Some(s),
        "/allowed_plans/0",
    );
    one_error(
        world().set(SECRET, "", "/allowed_caps/0", json!("http_pya")),
        "unknown_grant",
        SECRET,
        Some(s),
        "/allowed_caps/0",
    );
}

#[test]
fn every_listed_def_exists() {
    let d = one_error(
        world().push(MANIFEST, "", "/schemas", json!({"name": "shop/Ghost@1"})),
        "unknown_def",
        MANIFEST,
        None,
        "/schemas/10",
    );
    assert!(d.message.contains("shop/Ghost@1"), "{d}");
    one_warning(
        world().push(MANIFEST, "", "/plans", json!({"name": CHARGE})),
        "duplicate_listing",
        MANIFEST,
        None,
        "/plans/1",
    );
}

#[test]
fn the_manifest_is_required() {
    one_error_without_file(world().without_file(MANIFEST));
}

#[track_caller]
fn one_error_without_file(w: World) {
    let d = w.diags();
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_eq!(
        (d[0].code, d[0].file.as_deref(), d[0].pointer.as_str()),
        ("no_manifest", None, "")
    );
}

#[test]
fn the_default_policy_is_a_listed_policy() {
    one_error(
        world().set(MANIFEST, "", "/defaults/policy", json!("shop/polcy@1")),
        "unknown_policy",
        MANIFEST,
        None,
        "/defaults/policy",
    );
    the_error(
        world().set(MANIFEST, "", "/policies", json!([])),
        "policy_not_listed",
        MANIFEST,
        None,
        "/defaults/policy",
    );
}

#[test]
fn grants_name_known_defcaps_with_fitting_params_and_unique_names() {
    one_error(
        world().set(
            MANIFEST,
            "",
            "/defaults/cap_grants/0/cap",
            json!("shop/pay_htp@1"),
        ),
        "unknown_cap",
        MANIFEST,
        None,
        "/defaults/cap_grants/0/cap",
    );
    // The value diagnostics are reported under the grant's params.
    one_error(
        world().set(
            MANIFEST,
            "",
            "/defaults/cap_grants/0/params",
            json!({"hosts": 5}),
        ),
        "type_mismatch",
        MANIFEST,
        None,
        "/defaults/cap_grants/0/params/hosts",
    );
    one_error(
        world().push(
            MANIFEST,
            "",
            "/defaults/cap_grants",
            json!({"name": "http_pay", "cap": "shop/pay_http@1", "params": {"hosts": []}}),
        ),
        "duplicate_grant",
        MANIFEST,
        None,
        "/defaults/cap_grants/3/name",
    );
}

#[test]
fn module_bindings_bind_declared_slots_to_grants_of_the_slot_type() {
    let slots = "/module_bindings/shop~1Shop@1/slots";
    one_error(
        world().set(MANIFEST, "", &format!("{slots}/tmr"), json!("timer_grant")),
        "unknown_slot",
        MANIFEST,
        None,
        &format!("{slots}/tmr"),
    );
    one_error(
        world().set(MANIFEST, "", &format!("{slots}/timer"), json!("timer_grnt")),
        "unknown_grant",
        MANIFEST,
        None,
        &format!("{slots}/timer"),
    );
    one_error(
        world().set(MANIFEST, "", &format!("{slots}/timer"), json!("http_pay")),
        "cap_type_mismatch",
        MANIFEST,
        None,
        &format!("{slots}/timer"),
    );
    one_error(
        world().set(
            MANIFEST,
            "",
            "/module_bindings/shop~1Shopp@1",
            json!({"slots": {}}),
        ),
        "unknown_module",
        MANIFEST,
        None,
        "/module_bindings/shop~1Shopp@1",
    );
    one_error(
        world().set(
            MANIFEST,
            "",
            "/module_bindings/sys~1CapAllowAll@1",
            json!({"slots": {}}),
        ),
        "not_a_reducer",
        MANIFEST,
        None,
        "/module_bindings/sys~1CapAllowAll@1",
    );
}

#[test]
fn routes_name_reducers_that_accept_the_event() {
    one_error(
        world().set(
            MANIFEST,
            "",
            "/routing/events/0/reducer",
            json!("shop/Shopp@1"),
        ),
        "unknown_module",
        MANIFEST,
        None,
        "/routing/events/0/reducer",
    );
    one_error(
        world().set(
            MANIFEST,
            "",
            "/routing/events/0/reducer",
            json!("sys/CapAllowAll@1"),
        ),
        "not_a_reducer",
        MANIFEST,
        None,
        "/routing/events/0/reducer",
    );
    // shop/Confirmed@1 is neither shop/ShopEvent@1 nor one of its arms.
    one_error(
        world().set(
            MANIFEST,
            "",
            "/routing/events/0/event",
            json!("shop/Confirmed@1"),
        ),
        "route_event_mismatch",
        MANIFEST,
        None,
        "/routing/events/0/event",
    );
}

#[test]
fn key_fields_exist_and_have_the_key_type() {
    one_error(
        world().set(
            MANIFEST,
            "",
            "/routing/events/0/key_field",
            json!("orderid"),
        ),
        "unknown_key_field",
        MANIFEST,
        None,
        "/routing/events/0/key_field",
    );
    // Routing the whole variant: the Timer arm (sys/TimerFired@1) has no order_id.
    one_error(
        world().push(
            MANIFEST,
            "",
            "/routing/events",
            json!({"event": "shop/ShopEvent@1", "reducer": SHOP, "key_field": "$value.order_id"}),
        ),
        "unknown_key_field",
        MANIFEST,
        None,
        "/routing/events/2/key_field",
    );
    let d = one_error(
        world().set(MANIFEST, "", "/routing/events/0/key_field", json!("amount")),
        "key_type_mismatch",
        MANIFEST,
        None,
        "/routing/events/0/key_field",
    );
    assert_eq!(d.found.as_deref(), Some("nat"));
}

#[test]
fn keyed_routes_and_key_schemas_go_together() {
    one_error(
        world().remove(MANIFEST, "", "/routing/events/0/key_field"),
        "missing_key_field",
        MANIFEST,
        None,
        "/routing/events/0",
    );
    one_error(
        world().remove(MODULE, SHOP, "/key_schema").remove(
            MANIFEST,
            "",
            "/routing/events/1/key_field",
        ),
        "unexpected_key_field",
        MANIFEST,
        None,
        "/routing/events/0/key_field",
    );
    one_warning(
        world().set(MANIFEST, "", "/routing/events", json!([])),
        "unrouted_keyed_module",
        MODULE,
        Some(SHOP),
        "/key_schema",
    );
}

#[test]
fn inboxes_name_reducers() {
    one_error(
        world().push(
            MANIFEST,
            "",
            "/routing/inboxes",
            json!({"source": "webhook", "reducer": "shop/Nope@1"}),
        ),
        "unknown_module",
        MANIFEST,
        None,
        "/routing/inboxes/0/reducer",
    );
}

#[test]
fn triggers_start_listed_plans_with_their_input() {
    one_error(
        world().set(
            MANIFEST,
            "",
            "/triggers/0/plan",
            json!("shop/charge_plan@9"),
        ),
        "unknown_plan",
        MANIFEST,
        None,
        "/triggers/0/plan",
    );
    the_error(
        world().set(MANIFEST, "", "/plans", json!([])),
        "plan_not_listed",
        MANIFEST,
        None,
        "/triggers/0/plan",
    );
    one_error(
        world().set(
            MANIFEST,
            "",
            "/triggers/0/event",
            json!("shop/OrderPlaced@1"),
        ),
        "trigger_input_mismatch",
        MANIFEST,
        None,
        "/triggers/0/event",
    );
    one_error(
        world().set(MANIFEST, "", "/triggers/0/event", json!("shop/Chrge@1")),
        "unknown_schema",
        MANIFEST,
        None,
        "/triggers/0/event",
    );
}

#[test]
fn correlate_by_names_a_field_of_the_event() {
    // Reported on the trigger only: the plan's await_event is not also blamed.
    one_error(
        world().set(MANIFEST, "", "/triggers/0/correlate_by", json!("orderid")),
        "unknown_correlation_field",
        MANIFEST,
        None,
        "/triggers/0/correlate_by",
    );
}

#[test]
fn a_correlated_plan_filters_its_awaited_events_on_the_key() {
    let d = one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/3/where",
            json!({"op": "ge", "args": [{"ref": "@var:status"}, {"int": 0}]}),
        ),
        "uncorrelated_await",
        PLAN,
        Some(CHARGE),
        "/steps/3/where",
    );
    assert!(
        d.hint.as_deref().unwrap_or("").contains("@event.order_id"),
        "{d}"
    );
    one_error(
        world().remove(PLAN, CHARGE, "/steps/3/where"),
        "uncorrelated_await",
        PLAN,
        Some(CHARGE),
        "/steps/3",
    );
    // Without correlation no filter is needed.
    clean(
        world()
            .remove(MANIFEST, "", "/triggers/0/correlate_by")
            .remove(PLAN, CHARGE, "/steps/3/where"),
    );
}

// ---- 2. plans ----

#[test]
fn step_ids_are_unique() {
    one_error(
        world().push(
            PLAN,
            CHARGE,
            "/steps",
            json!({"id": "done", "op": "end", "result": {"status": 0}}),
        ),
        "duplicate_step",
        PLAN,
        Some(CHARGE),
        "/steps/6/id",
    );
}

#[test]
fn edges_name_steps() {
    one_error(
        world().set(PLAN, CHARGE, "/edges/4/to", json!("finish")),
        "unknown_step",
        PLAN,
        Some(CHARGE),
        "/edges/4/to",
    );
    one_error(
        world().set(PLAN, CHARGE, "/edges/0/from", json!("chrage")),
        "unknown_step",
        PLAN,
        Some(CHARGE),
        "/edges/0/from",
    );
}

#[test]
fn the_step_graph_is_acyclic() {
    let d = one_error(
        world().push(
            PLAN,
            CHARGE,
            "/edges",
            json!({"from": "done", "to": "charge"}),
        ),
        "plan_cycle",
        PLAN,
        Some(CHARGE),
        "/edges/5",
    );
    assert!(
        d.message
            .contains("charge -> wait -> status -> confirm -> notify -> done -> charge"),
        "{d}"
    );
}

#[test]
fn variables_are_bound_or_declared() {
    let d = one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/4/value/record/status/ref",
            json!("@var:stat"),
        ),
        "unknown_var",
        PLAN,
        Some(CHARGE),
        "/steps/4/value/record/status/ref",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean @var:status?"));
    // `note` is only declared in locals: removing the declaration breaks the invariant.
    one_error(
        world().set(PLAN, CHARGE, "/locals", json!({})),
        "unknown_var",
        PLAN,
        Some(CHARGE),
        "/invariants/1/args/0/ref",
    );
}

#[test]
fn step_references_name_steps() {
    one_error(
        world().set(
            PLAN,
            CHARGE,
            "/edges/3/when/args/0/ref",
            json!("@step:statuss"),
        ),
        "unknown_step",
        PLAN,
        Some(CHARGE),
        "/edges/3/when/args/0/ref",
    );
}

#[test]
fn input_and_event_paths_exist() {
    one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/4/value/record/order_id/ref",
            json!("@plan.input.orderid"),
        ),
        "unknown_field_ref",
        PLAN,
        Some(CHARGE),
        "/steps/4/value/record/order_id/ref",
    );
    // A bad @event path in the correlated `where` is not also an uncorrelated await.
    one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/3/where/args/0/ref",
            json!("@event.orderid"),
        ),
        "unknown_field_ref",
        PLAN,
        Some(CHARGE),
        "/steps/3/where/args/0/ref",
    );
}

#[test]
fn event_references_only_in_await_event_where() {
    one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/4/value/record/order_id/ref",
            json!("@event.order_id"),
        ),
        "misplaced_event_ref",
        PLAN,
        Some(CHARGE),
        "/steps/4/value/record/order_id/ref",
    );
    one_error(
        world().set(PLAN, CHARGE, "/edges/3/when/args/0/ref", json!("@event")),
        "misplaced_event_ref",
        PLAN,
        Some(CHARGE),
        "/edges/3/when/args/0/ref",
    );
}

#[test]
fn invariants_never_read_the_event() {
    one_error(
        world().set(
            PLAN,
            CHARGE,
            "/invariants/0/args/0/args/0/ref",
            json!("@event.url"),
        ),
        "event_in_invariant",
        PLAN,
        Some(CHARGE),
        "/invariants/0/args/0/args/0/ref",
    );
}

#[test]
fn await_receipt_waits_for_an_effect_handle() {
    // `status` is bound, but by an assign step.
    one_error(
        world().set(PLAN, CHARGE, "/steps/1/for", json!({"ref": "@var:status"})),
        "bad_await_for",
        PLAN,
        Some(CHARGE),
        "/steps/1/for",
    );
    let d = one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/1/for",
            json!({"ref": "@var:charge_rq"}),
        ),
        "bad_await_for",
        PLAN,
        Some(CHARGE),
        "/steps/1/for",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean @var:charge_req?"));
    one_error(
        world().set(PLAN, CHARGE, "/steps/1/for", json!({"text": "charge_req"})),
        "bad_await_for",
        PLAN,
        Some(CHARGE),
        "/steps/1/for",
    );
}

#[test]
fn end_result_iff_output() {
    one_error(
        world().remove(PLAN, CHARGE, "/steps/5/result"),
        "missing_result",
        PLAN,
        Some(CHARGE),
        "/steps/5",
    );
    one_error(
        world().remove(PLAN, CHARGE, "/output"),
        "unexpected_result",
        PLAN,
        Some(CHARGE),
        "/steps/5/result",
    );
    one_error(
        world().set(PLAN, CHARGE, "/steps/5/result", json!({"status": true})),
        "type_mismatch",
        PLAN,
        Some(CHARGE),
        "/steps/5/result/status",
    );
}

#[test]
fn emitted_effects_are_known_plan_effects() {
    let d = one_error(
        world().set(PLAN, CHARGE, "/steps/0/kind", json!("http.requst")),
        "unknown_effect",
        PLAN,
        Some(CHARGE),
        "/steps/0/kind",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `http.request`?"));
    // timer.set is a reducer micro-effect (everything else made consistent).
    one_error(
        world()
            .set(PLAN, CHARGE, "/steps/0/kind", json!("timer.set"))
            .set(PLAN, CHARGE, "/steps/0/params", json!({"deliver_at_ns": 5}))
            .set(PLAN, CHARGE, "/steps/0/cap", json!("timer_grant"))
            .set(PLAN, CHARGE, "/required_caps", json!(["timer_grant"]))
            .set(PLAN, CHARGE, "/allowed_effects", json!(["timer.set"])),
        "effect_scope",
        PLAN,
        Some(CHARGE),
        "/steps/0/kind",
    );
}

#[test]
fn literal_params_fit_the_effect() {
    one_error(
        world().set(PLAN, CHARGE, "/steps/0/params/method", json!(1)),
        "type_mismatch",
        PLAN,
        Some(CHARGE),
        "/steps/0/params/method",
    );
}

#[test]
fn effects_use_a_granted_cap_of_their_type() {
    let d = one_error(
        world().set(PLAN, CHARGE, "/steps/0/cap", json!("http_pya")),
        "unknown_grant",
        PLAN,
        Some(CHARGE),
        "/steps/0/cap",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `http_pay`?"));
    one_error(
        world()
            .set(PLAN, CHARGE, "/steps/0/cap", json!("timer_grant"))
            .set(PLAN, CHARGE, "/required_caps", json!(["timer_grant"])),
        "cap_type_mismatch",
        PLAN,
        Some(CHARGE),
        "/steps/0/cap",
    );
}

#[test]
fn raised_literal_events_fit_their_schema() {
    one_error(
        world().set(
            PLAN,
            CHARGE,
            "/steps/4/value",
            json!({"order_id": "o-1", "status": true}),
        ),
        "type_mismatch",
        PLAN,
        Some(CHARGE),
        "/steps/4/value/status",
    );
}

#[test]
fn derived_sets_match_when_given() {
    let d = one_error(
        world().set(
            PLAN,
            CHARGE,
            "/required_caps",
            json!(["http_pay", "timer_grant"]),
        ),
        "derived_mismatch",
        PLAN,
        Some(CHARGE),
        "/required_caps",
    );
    assert!(d.message.contains("extra timer_grant"), "{d}");
    let d = one_error(
        world().set(PLAN, CHARGE, "/allowed_effects", json!([])),
        "derived_mismatch",
        PLAN,
        Some(CHARGE),
        "/allowed_effects",
    );
    assert!(d.message.contains("missing http.request"), "{d}");
    // Leaving them out is fine: they are derived.
    clean(
        world()
            .remove(PLAN, CHARGE, "/required_caps")
            .remove(PLAN, CHARGE, "/allowed_effects"),
    );
}

// ---- 3. reducers ----

#[test]
fn reducers_emit_known_micro_effects() {
    one_error(
        world().set(
            MODULE,
            SHOP,
            "/abi/reducer/effects_emitted/0",
            json!("timer.sett"),
        ),
        "unknown_effect",
        MODULE,
        Some(SHOP),
        "/abi/reducer/effects_emitted/0",
    );
    one_error(
        world().set(
            MODULE,
            SHOP,
            "/abi/reducer/effects_emitted/0",
            json!("http.request"),
        ),
        "effect_scope",
        MODULE,
        Some(SHOP),
        "/abi/reducer/effects_emitted/0",
    );
}

#[test]
fn cap_slots_have_known_cap_types() {
    // The binding of the slot is not blamed as well.
    one_error(
        world().set(MODULE, SHOP, "/abi/reducer/cap_slots/timer", json!("timr")),
        "unknown_cap_type",
        MODULE,
        Some(SHOP),
        "/abi/reducer/cap_slots/timer",
    );
}

// ---- 4. policies ----

#[test]
fn policy_rules_name_known_things() {
    let p = "shop/policy@1";
    one_error(
        world().set(POLICY, p, "/rules/0/when/effect_kind", json!("http.get")),
        "unknown_effect",
        POLICY,
        Some(p),
        "/rules/0/when/effect_kind",
    );
    one_error(
        world().set(
            POLICY,
            p,
            "/rules/0/when/origin_name",
            json!("shop/charge@1"),
        ),
        "unknown_origin",
        POLICY,
        Some(p),
        "/rules/0/when/origin_name",
    );
    // origin_kind reducer, but the name is a plan.
    one_error(
        world().set(POLICY, p, "/rules/1/when/origin_name", json!(CHARGE)),
        "unknown_origin",
        POLICY,
        Some(p),
        "/rules/1/when/origin_name",
    );
    // Another version of a defined plan: runs in flight across an upgrade.
    one_warning(
        world().set(
            POLICY,
            p,
            "/rules/0/when/origin_name",
            json!("shop/charge_plan@2"),
        ),
        "unknown_origin",
        POLICY,
        Some(p),
        "/rules/0/when/origin_name",
    );
    one_warning(
        world().set(POLICY, p, "/rules/0/when/cap_name", json!("http_pya")),
        "unknown_grant",
        POLICY,
        Some(p),
        "/rules/0/when/cap_name",
    );
}

// ---- 5. caps ----

#[test]
fn cap_types_are_known() {
    let fax = json!({"$kind": "defcap", "name": "shop/fax@1", "cap_type": "fax", "schema": {"record": {}}});
    one_error(
        world()
            .push(CAPS, "", "", fax)
            .push(MANIFEST, "", "/caps", json!({"name": "shop/fax@1"})),
        "unknown_cap_type",
        CAPS,
        Some("shop/fax@1"),
        "/cap_type",
    );
    // A typo in a built-in type: the plan's use of the grant is not blamed as well.
    one_error(
        world().set(CAPS, "shop/pay_http@1", "/cap_type", json!("http.outt")),
        "unknown_cap_type",
        CAPS,
        Some("shop/pay_http@1"),
        "/cap_type",
    );
}

#[test]
fn cap_schemas_are_well_typed() {
    // The grant's params are not checked against the broken schema.
    one_error(
        world().set(
            CAPS,
            "shop/pay_http@1",
            "/schema/record/hosts",
            json!({"ref": "shop/Hosts@1"}),
        ),
        "unknown_schema",
        CAPS,
        Some("shop/pay_http@1"),
        "/schema/record/hosts/ref",
    );
}

// ---- 6. effects ----

#[test]
fn effect_cap_types_are_known() {
    // The defcap of type `audit` is then unused, but the typo is reported once.
    let e = "shop/audit.log@1";
    let d = one_error(
        world().set(EFFECTS, e, "/cap_type", json!("audti")),
        "unknown_cap_type",
        EFFECTS,
        Some(e),
        "/cap_type",
    );
    assert_eq!(d.hint.as_deref(), Some("did you mean `audit`?"));
}

#[test]
fn effect_kinds_are_unique() {
    let twin = json!({"$kind": "defeffect", "name": "shop/audit.log@2", "kind": "audit.log",
                      "params_schema": "shop/AuditParams@1", "receipt_schema": "shop/AuditReceipt@1",
                      "cap_type": "audit", "origin_scope": "reducer"});
    one_error(
        world().push(EFFECTS, "", "", twin).push(
            MANIFEST,
            "",
            "/effects",
            json!({"name": "shop/audit.log@2"}),
        ),
        "duplicate_effect_kind",
        EFFECTS,
        Some("shop/audit.log@2"),
        "/kind",
    );
    let http = json!({"$kind": "defeffect", "name": "shop/http@1", "kind": "http.request",
                      "params_schema": "sys/HttpRequestParams@1", "receipt_schema": "sys/HttpRequestReceipt@1",
                      "cap_type": "http.out", "origin_scope": "plan"});
    let d = one_error(
        world().push(EFFECTS, "", "", http).push(
            MANIFEST,
            "",
            "/effects",
            json!({"name": "shop/http@1"}),
        ),
        "duplicate_effect_kind",
        EFFECTS,
        Some("shop/http@1"),
        "/kind",
    );
    assert!(d.message.contains("sys/http.request@1"), "{d}");
}

// ---- 7. warnings ----

#[test]
fn modules_without_a_wasm_hash_draw_a_warning() {
    one_warning(
        world().set(MODULE, SHOP, "/wasm_hash", json!("")),
        "unfilled_wasm_hash",
        MODULE,
        Some(SHOP),
        "/wasm_hash",
    );
    one_warning(
        world().set(
            MODULE,
            SHOP,
            "/wasm_hash",
            json!(format!("sha256:{}", "0".repeat(64))),
        ),
        "unfilled_wasm_hash",
        MODULE,
        Some(SHOP),
        "/wasm_hash",
    );
    one_warning(
        world().remove(MODULE, SHOP, "/wasm_hash"),
        "unfilled_wasm_hash",
        MODULE,
        Some(SHOP),
        "/wasm_hash",
    );
}

#[test]
fn defs_the_manifest_does_not_list_draw_a_warning() {
    one_warning(
        world().remove(MANIFEST, "", "/schemas/7"),
        "unlisted_def",
        SCHEMAS,
        Some("shop/Confirmed@1"),
        "",
    );
}

// ---- all at once ----

#[test]
fn every_problem_is_reported_in_one_run() {
    let d = world()
        .set(
            SCHEMAS,
            "shop/ChargeRequested@1",
            "/type/record/url",
            json!({"ref": "shop/Url@1"}),
        )
        .set(
            MODULE,
            SHOP,
            "/abi/reducer/effects_emitted/0",
            json!("timer.sett"),
        )
        .set(PLAN, CHARGE, "/edges/4/to", json!("finish"))
        .set(
            POLICY,
            "shop/policy@1",
            "/rules/0/when/effect_kind",
            json!("http.get"),
        )
        .set(
            MANIFEST,
            "",
            "/routing/events/0/key_field",
            json!("orderid"),
        )
        .diags();
    let got: Vec<(&str, &str)> = d.iter().map(|x| (x.code, x.pointer.as_str())).collect();
    assert_eq!(
        got,
        vec![
            ("unknown_schema", "/type/record/url/ref"),
            ("unknown_effect", "/abi/reducer/effects_emitted/0"),
            ("unknown_effect", "/rules/0/when/effect_kind"),
            ("unknown_step", "/edges/4/to"),
            ("unknown_key_field", "/routing/events/0/key_field"),
        ],
        "{}",
        render(&d)
    );
}

#[test]
fn the_listing_diagnostics_match_assemble_for_deduplication() {
    // `aos air check` runs validate and assemble and drops assemble's diagnostics that
    // validate already reported (same code, def and pointer).
    let w = world()
        .push(MANIFEST, "", "/schemas", json!({"name": "shop/Ghost@1"}))
        .set(MODULE, SHOP, "/wasm_hash", json!(""))
        .remove(MANIFEST, "", "/schemas/7");
    let sources: Vec<Source> =
        w.0.iter()
            .map(|(name, v)| Source {
                name: name.to_string(),
                bytes: serde_json::to_vec(v).unwrap(),
            })
            .collect();
    let (set, _) = load(&sources);
    let ours = validate(&set);
    let (_, theirs) = air_fmt::assemble::assemble(&set);
    assert_eq!(theirs.len(), 3, "{theirs:#?}");
    for t in &theirs {
        assert!(
            ours.iter().any(|o| o.code == t.code
                && o.def == t.def
                && o.pointer == t.pointer
                && o.severity == t.severity),
            "assemble reported {t} but validate did not"
        );
    }
}
