//! `air`: loading, validating and hashing AIR sets of 1,000 and 10,000 defs, and diffing
//! two 10,000-def sets, in-process (`air-fmt`) and through the `aos` binary.
//!
//! The AIR set is generated in memory (seeded, so every run sees the same bytes) as
//! pretty-printed JSON files of at most [`FILE_NODES`] nodes each, shaped like an
//! authored world: about 50% `defschema`s (records of 3–6 fields with references to
//! earlier schemas, options, sets, lists, maps and inline variants; every fourth one a
//! variant of records used as a reducer's event), 20% reducer `defmodule`s (state and
//! event schemas, filled wasm hashes, cap slots bound in the manifest, half of them
//! keyed and routed by a key field), 15% `defplan`s (5–8 steps: `emit_effect
//! http.request` with literal params, `await_receipt`, `assign`, sometimes a custom
//! effect and a correlated `await_event`, `raise_event`, `end`; conditional edges),
//! 5% `defcap`s (each with a grant and literal params in the manifest defaults), 5%
//! `defpolicy`s, and 2.5% each of `defeffect`s and `defsecret`s, plus a manifest that
//! lists everything, routes every reducer and triggers every plan. The set must
//! validate and assemble with no error (and no warning); the benchmark checks that.
//!
//! Timed (median of several runs, `Instant`): `load` (parse), `validate`, `assemble`
//! (hash every def and the manifest) and their sum; `diff::diff` + `render_text` of two
//! 10,000-def sets (about 5% of defs changed, 1% removed and 1% added, a quarter of
//! both being plan upgrades `@1` → `@2`) and `patch::diff_to_patch` on the same pair.
//! Baselines: `serde_json::from_slice::<Value>` of the same bytes (the parse floor) and
//! blake3 of the same bytes. The `aos air check` and `aos air diff` processes are timed
//! on the same sets written to files, when `target/release/aos` sits next to this
//! binary.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use air_fmt::assemble::assemble;
use air_fmt::diag::has_errors;
use air_fmt::load::{load, Source};
use air_fmt::validate::validate;
use air_fmt::Diagnostic;
use serde_json::{json, Map, Value};

use crate::mem::measure;
use crate::report::{Row, Section, Target};
use crate::util::{median, mib, ms, say, settle, timed, Rng};

const BENCH: &str = "air";

/// Nodes per generated file.
const FILE_NODES: usize = 250;

/// The key schema every keyed reducer uses.
const KEY: &str = "svc0/Key@1";

fn ns(i: usize) -> String {
    format!("svc{}", i % 16)
}

fn hex_hash(seed: &str) -> String {
    format!("blake3:{}", blake3::hash(seed.as_bytes()).to_hex())
}

/// A reducer module and what the manifest needs to route and bind it.
#[derive(Clone)]
struct Module {
    node: Value,
    name: String,
    route_event: String,
    keyed: bool,
    slots: Vec<(String, String)>,
}

/// A plan and its trigger.
#[derive(Clone)]
struct Plan {
    node: Value,
    name: String,
    input: String,
    correlated: bool,
}

/// A generated AIR set: the nodes of each kind plus what the manifest is derived from.
#[derive(Clone)]
struct Air {
    schemas: Vec<Value>,
    /// Names of record schemas (the key schema excluded).
    records: Vec<String>,
    /// Variant schemas: name and the record schemas of their arms.
    variants: Vec<(String, Vec<String>)>,
    modules: Vec<Module>,
    plans: Vec<Plan>,
    caps: Vec<Value>,
    /// Grants of the manifest defaults.
    grants: Vec<Value>,
    /// Grants of `http.out` defcaps.
    http_grants: Vec<String>,
    /// Custom effects: kind and the grant of the defcap of its cap type.
    custom: Vec<(String, String)>,
    policies: Vec<Value>,
    effects: Vec<Value>,
    secrets: Vec<Value>,
}

impl Air {
    /// Plans that policies and secrets may name (the others may be upgraded in a diff).
    fn stable_plan(&self, rng: &mut Rng) -> String {
        loop {
            let i = pick(rng, self.plans.len());
            if i % 4 != 3 || self.plans.len() < 4 {
                return self.plans[i].name.clone();
            }
        }
    }

    fn generate(n: usize, seed: u64) -> Air {
        let mut rng = Rng::new(seed);
        let n_schema = (n / 2).max(8);
        let n_module = (n / 5).max(1);
        let n_plan = (n * 3 / 20).max(1);
        let n_effect = (n / 40).max(1);
        let n_cap = (n / 20).max(n_effect + 1);
        let n_policy = (n / 20).max(1);
        let n_secret = n
            .saturating_sub(n_schema + n_module + n_plan + n_cap + n_policy + n_effect)
            .max(1);
        let mut air = Air {
            schemas: Vec::new(),
            records: Vec::new(),
            variants: Vec::new(),
            modules: Vec::new(),
            plans: Vec::new(),
            caps: Vec::new(),
            grants: Vec::new(),
            http_grants: Vec::new(),
            custom: Vec::new(),
            policies: Vec::new(),
            effects: Vec::new(),
            secrets: Vec::new(),
        };

        // Schemas: the key, then records and (every fourth) variants of earlier records.
        air.schemas.push(json!({
            "$kind": "defschema", "name": KEY, "type": {"text": {}},
        }));
        for i in 1..n_schema {
            if i.is_multiple_of(4) && air.records.len() >= 2 {
                let name = format!("{}/Evt{i}@1", ns(i));
                let (ty, arms) = air.variant_type(&mut rng);
                air.schemas
                    .push(json!({"$kind": "defschema", "name": name, "type": ty}));
                air.variants.push((name, arms));
            } else {
                let name = format!("{}/Rec{i}@1", ns(i));
                let ty = air.record_type(&mut rng, i);
                air.schemas
                    .push(json!({"$kind": "defschema", "name": name, "type": ty}));
                air.records.push(name);
            }
        }

        // Caps: one per custom effect (its cap type), the rest http.out with host lists.
        air.grants
            .push(json!({"name": "timer_grant", "cap": "sys/timer@1", "params": {}}));
        air.grants.push(json!({"name": "blob_grant", "cap": "sys/blob@1", "params": {"namespaces": ["app", "cache"]}}));
        for c in 0..n_cap {
            let name = format!("{}/cap{c}@1", ns(c));
            if c < n_effect {
                let cap_type = format!("audit{c}");
                air.caps.push(json!({
                    "$kind": "defcap", "name": name, "cap_type": cap_type,
                    "schema": {"record": {
                        "sinks": {"set": {"text": {}}},
                        "max_per_min": {"option": {"nat": {}}}}},
                    "enforcer": {"module": "sys/CapAllowAll@1"},
                }));
                let grant = format!("audit_grant{c}");
                air.grants.push(json!({
                    "name": grant, "cap": name,
                    "params": {"sinks": ["log", format!("s3-{c}")], "max_per_min": 60 + c},
                }));
                air.custom.push((format!("audit{c}.write"), grant));
            } else {
                air.caps.push(json!({
                    "$kind": "defcap", "name": name, "cap_type": "http.out",
                    "schema": {"record": {
                        "hosts": {"set": {"text": {}}},
                        "verbs": {"set": {"text": {}}},
                        "ports": {"option": {"set": {"nat": {}}}}}},
                    "enforcer": {"module": "sys/CapAllowAll@1"},
                }));
                let grant = format!("http_grant{c}");
                air.grants.push(json!({
                    "name": grant, "cap": name,
                    "params": {"hosts": [format!("api{c}.example.com"), format!("backup{c}.example.com")],
                               "verbs": ["GET", "POST"], "ports": [443, 8443]},
                }));
                air.http_grants.push(grant);
            }
        }

        // Effects: custom kinds guarded by the custom cap types.
        for e in 0..n_effect {
            let params = air.records[pick(&mut rng, air.records.len())].clone();
            let receipt = air.records[pick(&mut rng, air.records.len())].clone();
            air.effects.push(json!({
                "$kind": "defeffect", "name": format!("{}/effect{e}@1", ns(e)),
                "kind": air.custom[e].0, "cap_type": format!("audit{e}"),
                "params_schema": params, "receipt_schema": receipt, "origin_scope": "both",
                "description": format!("append an audit line to sink set {e}"),
            }));
        }

        // Reducers.
        for m in 0..n_module {
            let module = air.module(&mut rng, m);
            air.modules.push(module);
        }

        // Plans.
        for p in 0..n_plan {
            let name = format!("{}/flow{p}@1", ns(p));
            let plan = air.plan(&mut rng, p, name, "");
            air.plans.push(plan);
        }

        // Policies: allow what the plans and reducers do, deny the rest.
        for q in 0..n_policy {
            let plan = air.stable_plan(&mut rng);
            let module = air.modules[pick(&mut rng, air.modules.len())].name.clone();
            let grant = air.http_grants[pick(&mut rng, air.http_grants.len())].clone();
            let (kind, _) = air.custom[pick(&mut rng, air.custom.len())].clone();
            air.policies.push(json!({
                "$kind": "defpolicy", "name": format!("{}/policy{q}@1", ns(q)),
                "rules": [
                    {"when": {"effect_kind": "http.request", "origin_kind": "plan",
                              "origin_name": plan, "cap_name": grant}, "decision": "allow"},
                    {"when": {"effect_kind": "timer.set", "origin_kind": "reducer",
                              "origin_name": module}, "decision": "allow"},
                    {"when": {"effect_kind": kind}, "decision": "allow"},
                    {"when": {}, "decision": "deny"},
                ],
            }));
        }

        // Secrets.
        for s in 0..n_secret {
            let plan = air.stable_plan(&mut rng);
            let grant = air.http_grants[pick(&mut rng, air.http_grants.len())].clone();
            air.secrets.push(json!({
                "$kind": "defsecret", "name": format!("{}/secret{s}@1", ns(s)),
                "binding_id": format!("env:SECRET_{s}"),
                "allowed_caps": [grant], "allowed_plans": [plan],
            }));
        }
        air
    }

    /// A record of 3–6 fields: an `id`, and a mix of primitives, options, sets, lists,
    /// maps, inline variants and references to earlier schemas.
    fn record_type(&self, rng: &mut Rng, i: usize) -> Value {
        let mut fields = Map::new();
        fields.insert(
            "id".into(),
            if i.is_multiple_of(2) {
                json!({"ref": KEY})
            } else {
                json!({"text": {}})
            },
        );
        let earlier = |rng: &mut Rng| -> Option<String> {
            (!self.records.is_empty()).then(|| self.records[pick(rng, self.records.len())].clone())
        };
        let any_earlier = |rng: &mut Rng| -> Option<String> {
            if !self.variants.is_empty() && rng.next_u64().is_multiple_of(3) {
                Some(self.variants[pick(rng, self.variants.len())].0.clone())
            } else {
                earlier(rng)
            }
        };
        let extra = 2 + pick(rng, 4);
        let mut menu: Vec<usize> = (0..11).collect();
        for _ in 0..extra {
            let k = menu.remove(pick(rng, menu.len()));
            let (field, ty) = match k {
                0 => ("amount", json!({"nat": {}})),
                1 => ("note", json!({"option": {"text": {}}})),
                2 => ("tags", json!({"set": {"text": {}}})),
                3 => match earlier(rng) {
                    Some(r) => ("parent", json!({"ref": r})),
                    None => ("parent_id", json!({"option": {"text": {}}})),
                },
                4 => match any_earlier(rng) {
                    Some(r) => ("items", json!({"list": {"ref": r}})),
                    None => ("items", json!({"list": {"nat": {}}})),
                },
                5 => (
                    "counts",
                    json!({"map": {"key": {"text": {}}, "value": {"nat": {}}}}),
                ),
                6 => (
                    "state",
                    json!({"variant": {
                        "open": {"unit": {}},
                        "closed": {"record": {"at": {"time": {}}, "by": {"text": {}}}},
                        "failed": {"text": {}}}}),
                ),
                7 => ("created_at", json!({"time": {}})),
                8 => ("digest", json!({"option": {"hash": {}}})),
                9 => match earlier(rng) {
                    Some(r) => ("owner", json!({"option": {"ref": r}})),
                    None => ("owner", json!({"option": {"text": {}}})),
                },
                _ => ("url", json!({"text": {}})),
            };
            fields.insert(field.into(), ty);
        }
        json!({ "record": fields })
    }

    /// A variant of 2–3 earlier records, a timer arm and a unit arm.
    fn variant_type(&self, rng: &mut Rng) -> (Value, Vec<String>) {
        let mut arms = Map::new();
        let mut recs = Vec::new();
        let names = ["Created", "Updated", "Deleted"];
        for name in names.iter().take(2 + pick(rng, 2)) {
            let r = self.records[pick(rng, self.records.len())].clone();
            arms.insert((*name).into(), json!({"ref": r}));
            recs.push(r);
        }
        arms.insert("Tick".into(), json!({"ref": "sys/TimerFired@1"}));
        arms.insert("Reset".into(), json!({"unit": {}}));
        (json!({ "variant": arms }), recs)
    }

    fn module(&self, rng: &mut Rng, m: usize) -> Module {
        let name = format!("{}/Reducer{m}@1", ns(m));
        let (event, arms) = self.variants[m % self.variants.len()].clone();
        let state = self.records[pick(rng, self.records.len())].clone();
        let keyed = m.is_multiple_of(2);
        let mut emitted = vec![json!("timer.set")];
        let mut cap_slots = Map::new();
        cap_slots.insert("timer".into(), json!("timer"));
        let mut slots = vec![("timer".to_string(), "timer_grant".to_string())];
        if m.is_multiple_of(3) {
            emitted.push(json!("blob.put"));
            cap_slots.insert("store".into(), json!("blob"));
            slots.push(("store".into(), "blob_grant".into()));
        }
        if m.is_multiple_of(5) {
            let e = pick(rng, self.custom.len());
            let (kind, grant) = &self.custom[e];
            emitted.push(json!(kind));
            cap_slots.insert("audit".into(), json!(format!("audit{e}")));
            slots.push(("audit".into(), grant.clone()));
        }
        let mut node = json!({
            "$kind": "defmodule", "name": name, "module_kind": "reducer",
            "wasm_hash": hex_hash(&name),
            "abi": {"reducer": {
                "state": state, "event": event,
                "effects_emitted": emitted, "cap_slots": cap_slots}},
        });
        if keyed {
            node["key_schema"] = json!(KEY);
        }
        Module {
            node,
            name,
            route_event: arms[0].clone(),
            keyed,
            slots,
        }
    }

    /// A plan of 5–8 steps. `variant` changes the literal URL (for upgrades).
    fn plan(&self, rng: &mut Rng, p: usize, name: String, variant: &str) -> Plan {
        let input = self.records[pick(rng, self.records.len())].clone();
        let output = p
            .is_multiple_of(2)
            .then(|| self.records[pick(rng, self.records.len())].clone());
        let grant = self.http_grants[pick(rng, self.http_grants.len())].clone();
        let correlated = p % 2 == 1;
        let custom = p
            .is_multiple_of(3)
            .then(|| self.custom[pick(rng, self.custom.len())].clone());
        let mut steps = vec![
            json!({"id": "call", "op": "emit_effect", "kind": "http.request",
                "params": {"method": "POST", "url": format!("https://api{p}.example.com/v1/flow{p}{variant}"),
                           "headers": {"content-type": "application/json", "x-flow": format!("flow{p}")},
                           "body_ref": null},
                "cap": grant, "bind": {"effect_id_as": "call_req"}}),
            json!({"id": "wait", "op": "await_receipt", "for": {"ref": "@var:call_req"}, "bind": {"as": "receipt"}}),
            json!({"id": "status", "op": "assign",
                "expr": {"op": "get", "args": [{"ref": "@var:receipt"}, {"text": "status"}]},
                "bind": {"as": "status"}}),
        ];
        let mut kinds = vec!["http.request".to_string()];
        let mut caps = vec![grant.clone()];
        if let Some((kind, g)) = &custom {
            steps.push(json!({"id": "audit", "op": "emit_effect", "kind": kind,
                "params": {"record": {"id": {"ref": "@plan.input.id"}, "status": {"ref": "@var:status"}}},
                "cap": g, "bind": {"effect_id_as": "audit_req"}}));
            steps.push(json!({"id": "audit_wait", "op": "await_receipt",
                "for": {"ref": "@var:audit_req"}, "bind": {"as": "audit_receipt"}}));
            kinds.push(kind.clone());
            caps.push(g.clone());
        }
        if correlated {
            steps.push(json!({"id": "confirm", "op": "await_event", "event": input,
                "where": {"op": "eq", "args": [{"ref": "@event.id"}, {"ref": "@plan.input.id"}]},
                "bind": {"as": "confirmation"}}));
        }
        let raised = self.records[pick(rng, self.records.len())].clone();
        steps.push(json!({"id": "notify", "op": "raise_event", "event": raised,
            "value": {"record": {"id": {"ref": "@plan.input.id"}, "status": {"ref": "@var:status"}}}}));
        steps.push(match &output {
            Some(_) => json!({"id": "done", "op": "end",
                "result": {"record": {"id": {"ref": "@plan.input.id"}, "status": {"ref": "@var:status"}}}}),
            None => json!({"id": "done", "op": "end"}),
        });
        let ids: Vec<String> = steps
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_string())
            .collect();
        let mut edges = Vec::new();
        for w in ids.windows(2) {
            if w[0] == "status" {
                edges.push(json!({"from": "status", "to": w[1],
                    "when": {"op": "lt", "args": [{"ref": "@var:status"}, {"int": 400}]}}));
                edges.push(json!({"from": "status", "to": "done",
                    "when": {"op": "ge", "args": [{"ref": "@var:status"}, {"int": 400}]}}));
            } else {
                edges.push(json!({"from": w[0], "to": w[1]}));
            }
        }
        let mut node = json!({
            "$kind": "defplan", "name": name, "input": input,
            "steps": steps, "edges": edges,
        });
        if let Some(o) = output {
            node["output"] = json!(o);
        }
        if p.is_multiple_of(4) {
            node["locals"] = json!({"note": KEY});
            node["invariants"] =
                json!([{"op": "ne", "args": [{"ref": "@plan.input.id"}, {"text": ""}]}]);
        }
        if p.is_multiple_of(2) {
            kinds.sort();
            caps.sort();
            caps.dedup();
            node["required_caps"] = json!(caps);
            node["allowed_effects"] = json!(kinds);
        }
        Plan {
            node,
            name,
            input,
            correlated,
        }
    }

    fn defs(&self) -> usize {
        self.schemas.len()
            + self.modules.len()
            + self.plans.len()
            + self.caps.len()
            + self.policies.len()
            + self.effects.len()
            + self.secrets.len()
    }

    fn manifest(&self) -> Value {
        let names = |nodes: &mut dyn Iterator<Item = &Value>| -> Vec<Value> {
            nodes.map(|n| json!({"name": n["name"]})).collect()
        };
        let mut caps = names(&mut self.caps.iter());
        caps.push(json!({"name": "sys/timer@1"}));
        caps.push(json!({"name": "sys/blob@1"}));
        let mut effects = names(&mut self.effects.iter());
        for e in ["sys/http.request@1", "sys/timer.set@1", "sys/blob.put@1"] {
            effects.push(json!({"name": e}));
        }
        let mut bindings = Map::new();
        let mut routes = Vec::new();
        for m in &self.modules {
            let slots: Map<String, Value> =
                m.slots.iter().map(|(s, g)| (s.clone(), json!(g))).collect();
            bindings.insert(m.name.clone(), json!({ "slots": slots }));
            let mut r = json!({"event": m.route_event, "reducer": m.name});
            if m.keyed {
                r["key_field"] = json!("id");
            }
            routes.push(r);
        }
        let triggers: Vec<Value> = self
            .plans
            .iter()
            .map(|p| {
                let mut t = json!({"event": p.input, "plan": p.name});
                if p.correlated {
                    t["correlate_by"] = json!("id");
                }
                t
            })
            .collect();
        json!({
            "$kind": "manifest", "air_version": "1",
            "schemas": names(&mut self.schemas.iter()),
            "modules": self.modules.iter().map(|m| json!({"name": m.name, "hash": ""})).collect::<Vec<_>>(),
            "plans": self.plans.iter().map(|p| json!({"name": p.name})).collect::<Vec<_>>(),
            "caps": caps,
            "policies": names(&mut self.policies.iter()),
            "effects": effects,
            "secrets": names(&mut self.secrets.iter()),
            "defaults": {"policy": self.policies[0]["name"], "cap_grants": self.grants},
            "module_bindings": bindings,
            "routing": {"events": routes, "inboxes": []},
            "triggers": triggers,
        })
    }

    /// The set as files: pretty-printed arrays of at most [`FILE_NODES`] nodes per kind,
    /// and the manifest.
    fn sources(&self) -> Vec<Source> {
        let mut out = Vec::new();
        let mut files = |kind: &str, nodes: Vec<&Value>| {
            for (i, chunk) in nodes.chunks(FILE_NODES).enumerate() {
                out.push(Source {
                    name: format!("{kind}-{i:03}.air.json"),
                    bytes: serde_json::to_vec_pretty(chunk).expect("json"),
                });
            }
        };
        files("schemas", self.schemas.iter().collect());
        files("modules", self.modules.iter().map(|m| &m.node).collect());
        files("plans", self.plans.iter().map(|p| &p.node).collect());
        files("caps", self.caps.iter().collect());
        files("policies", self.policies.iter().collect());
        files("effects", self.effects.iter().collect());
        files("secrets", self.secrets.iter().collect());
        out.push(Source {
            name: "manifest.air.json".into(),
            bytes: serde_json::to_vec_pretty(&self.manifest()).expect("json"),
        });
        out
    }

    /// The next version of this set: about 5% of defs changed (every kind), 1% removed
    /// and 1% added; a quarter of the removed and added defs are plan upgrades.
    fn evolve(&self, seed: u64) -> (Air, Evolution) {
        let mut rng = Rng::new(seed);
        let mut b = self.clone();
        let n = self.defs();
        let mut ev = Evolution::default();
        let share = |len: usize, pct: f64| ((len as f64 * pct).round() as usize).min(len);
        let chosen = |rng: &mut Rng, len: usize, k: usize, skip: &dyn Fn(usize) -> bool| {
            let mut picked = std::collections::BTreeSet::new();
            let mut tries = 0;
            while picked.len() < k && tries < 100 * len.max(1) {
                let i = pick(rng, len);
                if !skip(i) {
                    picked.insert(i);
                }
                tries += 1;
            }
            picked
        };

        // Changes: 5% of each kind.
        for i in chosen(
            &mut rng,
            b.schemas.len(),
            share(b.schemas.len(), 0.05),
            &|i| i == 0,
        ) {
            let ty = &mut b.schemas[i]["type"];
            if let Some(fields) = ty.get_mut("record").and_then(Value::as_object_mut) {
                fields.insert("revision".into(), json!({"option": {"nat": {}}}));
            } else if let Some(arms) = ty.get_mut("variant").and_then(Value::as_object_mut) {
                arms.insert("Archived".into(), json!({"unit": {}}));
            }
            ev.changed += 1;
        }
        for i in chosen(
            &mut rng,
            b.modules.len(),
            share(b.modules.len(), 0.05),
            &|_| false,
        ) {
            let m = &mut b.modules[i];
            m.node["wasm_hash"] = json!(hex_hash(&format!("{} rebuilt", m.name)));
            ev.changed += 1;
        }
        for i in chosen(&mut rng, b.plans.len(), share(b.plans.len(), 0.05), &|i| {
            i % 4 == 3
        }) {
            let params = &mut b.plans[i].node["steps"][0]["params"];
            params["url"] = json!(format!("https://api{i}.example.com/v2/flow{i}"));
            params["headers"]["x-version"] = json!("2");
            ev.changed += 1;
        }
        for i in chosen(&mut rng, b.caps.len(), share(b.caps.len(), 0.05), &|_| {
            false
        }) {
            if let Some(f) = b.caps[i]["schema"]["record"].as_object_mut() {
                f.insert("note".into(), json!({"option": {"text": {}}}));
            }
            ev.changed += 1;
        }
        for i in chosen(
            &mut rng,
            b.policies.len(),
            share(b.policies.len(), 0.05),
            &|_| false,
        ) {
            if let Some(rules) = b.policies[i]["rules"].as_array_mut() {
                let at = rules.len() - 1;
                rules.insert(at, json!({"when": {"effect_kind": "blob.put", "origin_kind": "reducer"}, "decision": "allow"}));
            }
            ev.changed += 1;
        }
        for i in chosen(
            &mut rng,
            b.effects.len(),
            share(b.effects.len(), 0.05),
            &|_| false,
        ) {
            b.effects[i]["description"] =
                json!(format!("append an audit line (v2) to sink set {i}"));
            ev.changed += 1;
        }
        for i in chosen(
            &mut rng,
            b.secrets.len(),
            share(b.secrets.len(), 0.05),
            &|_| false,
        ) {
            b.secrets[i]["binding_id"] = json!(format!("vault:app/secret{i}"));
            ev.changed += 1;
        }

        // Removals and additions: 1% of the defs each.
        let total = (n / 100).max(4);
        let upgrades = total / 4;
        let plans_before = b.plans.len();
        let changed_plans: Vec<usize> = (0..plans_before)
            .filter(|&i| b.plans[i].node != self.plans[i].node)
            .collect();
        let up = chosen(&mut rng, plans_before, upgrades, &|i| {
            i % 4 != 3 || changed_plans.contains(&i)
        });
        for &i in up.iter().rev() {
            let old = b.plans.remove(i);
            let name = old.name.replace("@1", "@2");
            let mut r2 = Rng::new(seed ^ i as u64);
            let plan = b.plan(&mut r2, i, name, "/v2");
            b.plans.push(plan);
            ev.upgraded += 1;
        }
        // Removed: non-default policies and secrets (nothing refers to them).
        let rm_policies = (total - upgrades) / 2;
        let rm_secrets = total - upgrades - rm_policies;
        let pol_len = b.policies.len();
        let rp = chosen(&mut rng, pol_len, rm_policies.min(pol_len - 1), &|i| {
            i == 0 || self.policies.get(i) != b.policies.get(i)
        });
        for &i in rp.iter().rev() {
            b.policies.remove(i);
        }
        let sec_len = b.secrets.len();
        let rs = chosen(&mut rng, sec_len, rm_secrets.min(sec_len), &|i| {
            self.secrets.get(i) != b.secrets.get(i)
        });
        for &i in rs.iter().rev() {
            b.secrets.remove(i);
        }
        ev.removed = upgrades + rp.len() + rs.len();
        // Added: new record schemas and new plans.
        let add_plans = (total - upgrades) / 3;
        let add_schemas = total - upgrades - add_plans;
        let base = self.schemas.len() + 1_000_000;
        for k in 0..add_schemas {
            let i = base + k;
            let ty = b.record_type(&mut rng, i);
            let name = format!("{}/Added{i}@1", ns(i));
            b.schemas
                .push(json!({"$kind": "defschema", "name": name, "type": ty}));
            b.records.push(name);
        }
        for k in 0..add_plans {
            let p = plans_before + 1_000_000 + k;
            let name = format!("{}/newflow{p}@1", ns(p));
            let plan = b.plan(&mut rng, p, name, "");
            b.plans.push(plan);
        }
        ev.added = upgrades + add_schemas + add_plans;
        (b, ev)
    }
}

/// What [`Air::evolve`] did.
#[derive(Debug, Default, Clone, Copy)]
struct Evolution {
    changed: usize,
    removed: usize,
    added: usize,
    upgraded: usize,
}

fn pick(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn total_bytes(sources: &[Source]) -> u64 {
    sources.iter().map(|s| s.bytes.len() as u64).sum()
}

/// Fail loudly (with the first diagnostics) when the generated set is not clean.
fn assert_clean(what: &str, diags: &[Diagnostic]) -> Result<usize, String> {
    let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        let first: Vec<String> = errors.iter().take(5).map(|d| d.to_string()).collect();
        return Err(format!(
            "the generated AIR set ({what}) has {} errors, e.g.:\n{}",
            errors.len(),
            first.join("\n")
        ));
    }
    Ok(diags.len())
}

/// Load, validate and assemble, checking that nothing is wrong. Returns the number of
/// warnings.
fn check_set(what: &str, sources: &[Source]) -> Result<usize, String> {
    let (set, d) = load(sources);
    let mut warnings = assert_clean(&format!("{what}, load"), &d)?;
    warnings += assert_clean(&format!("{what}, validate"), &validate(&set))?;
    let (asm, d) = assemble(&set);
    warnings += assert_clean(&format!("{what}, assemble"), &d)?;
    if asm.is_none() {
        return Err(format!("the generated AIR set ({what}) does not assemble"));
    }
    Ok(warnings)
}

/// Phase times of one load + validate + assemble.
#[derive(Clone, Copy)]
struct Phases {
    load: Duration,
    validate: Duration,
    assemble: Duration,
}

impl Phases {
    fn total(&self) -> Duration {
        self.load + self.validate + self.assemble
    }
}

fn run_phases(sources: &[Source]) -> Phases {
    let ((set, d), load_t) = timed(|| load(sources));
    let (v, validate_t) = timed(|| validate(&set));
    let (a, assemble_t) = timed(|| assemble(&set));
    assert!(!has_errors(&d) && !has_errors(&v) && a.0.is_some());
    // Dropping the set is not timed (the CLI pays it too, but it is not the check).
    drop((set, d, v, a));
    Phases {
        load: load_t,
        validate: validate_t,
        assemble: assemble_t,
    }
}

/// Medians of each phase and of the totals over `runs` runs.
fn median_phases(sources: &[Source], runs: usize) -> (Phases, Duration) {
    let all: Vec<Phases> = (0..runs).map(|_| run_phases(sources)).collect();
    let m = |f: &dyn Fn(&Phases) -> Duration| median(all.iter().map(f).collect());
    (
        Phases {
            load: m(&|p| p.load),
            validate: m(&|p| p.validate),
            assemble: m(&|p| p.assemble),
        },
        m(&|p| p.total()),
    )
}

fn median_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let (r, d) = timed(&mut f);
                drop(black_box(r));
                d
            })
            .collect(),
    )
}

/// The parse floor: every file into a `serde_json::Value`.
fn parse_all(sources: &[Source]) -> usize {
    sources
        .iter()
        .map(|s| {
            let v: Value = serde_json::from_slice(&s.bytes).expect("generated JSON parses");
            black_box(&v);
            1
        })
        .sum()
}

fn blake3_all(sources: &[Source]) -> blake3::Hash {
    let mut last = blake3::hash(b"");
    for s in sources {
        last = blake3::hash(&s.bytes);
        black_box(&last);
    }
    last
}

/// `target/release/aos` next to this executable (both are built into one target dir).
fn aos_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.join("aos");
    p.is_file().then_some(p)
}

fn write_set(dir: &Path, sources: &[Source]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for s in sources {
        std::fs::write(dir.join(&s.name), &s.bytes)?;
    }
    Ok(())
}

/// Run the binary and return its stdout; a non-zero exit is an error.
fn run_aos(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    Ok(out.stdout)
}

fn fmt_n(n: usize) -> String {
    crate::util::group(n as f64)
}

pub fn run_bench(scratch: &Path, quick: bool) -> Result<Section, Box<dyn std::error::Error>> {
    let mut sec = Section::new("air");
    let sizes: [(usize, f64); 2] = [(1_000, 50.0), (10_000, 500.0)];
    let runs_for = |n: usize| match (quick, n <= 1_000) {
        (true, _) => 5,
        (false, true) => 21,
        (false, false) => 9,
    };
    let mut big: Option<(Air, Vec<Source>, Duration)> = None;

    for (n, target_ms) in sizes {
        let (air, gen_t) = timed(|| Air::generate(n, 0xA1B2_0000 + n as u64));
        let sources = air.sources();
        let bytes = total_bytes(&sources);
        say(format!(
            "AIR set of {} defs: {} files, {:.2} MiB (generated in {:.0} ms)",
            fmt_n(air.defs()),
            sources.len(),
            mib(bytes),
            ms(gen_t)
        ));
        let warnings = check_set(&format!("{n} defs"), &sources)?;
        let runs = runs_for(n);
        say(format!(
            "load + validate + assemble, {runs} runs; parse and blake3 baselines"
        ));
        let _ = run_phases(&sources); // warm up
        let (ph, total) = median_phases(&sources, runs);
        let parse = median_of(runs, || parse_all(&sources));
        let hash = median_of(runs, || blake3_all(&sources));
        let floor = parse + hash;
        let label = fmt_n(air.defs());
        sec.row(Row::cost(
            BENCH,
            format!("{label} defs: load (parse) vs serde_json::Value"),
            "ms",
            ms(ph.load),
            Some(("serde_json", ms(parse))),
        ));
        sec.row(Row::cost(
            BENCH,
            format!("{label} defs: validate"),
            "ms",
            ms(ph.validate),
            None,
        ));
        sec.row(Row::cost(
            BENCH,
            format!("{label} defs: assemble (hash) vs blake3 of the bytes"),
            "ms",
            ms(ph.assemble),
            Some(("blake3", ms(hash))),
        ));
        let pass = ms(total) < target_ms;
        sec.row(
            Row::cost(
                BENCH,
                format!("{label} defs: load + validate + assemble vs parse + blake3"),
                "ms",
                ms(total),
                Some(("parse+blake3", ms(floor))),
            )
            .target(Target::new(format!("<{target_ms:.0} ms"), pass)),
        );
        sec.note(format!(
            "{label} defs: {} files, {:.2} MiB of JSON; {} warnings; per def: load {:.1} µs, validate {:.1} µs, assemble {:.1} µs; the serde_json parse floor is {:.1} µs",
            sources.len(),
            mib(bytes),
            warnings,
            ph.load.as_secs_f64() * 1e6 / n as f64,
            ph.validate.as_secs_f64() * 1e6 / n as f64,
            ph.assemble.as_secs_f64() * 1e6 / n as f64,
            parse.as_secs_f64() * 1e6 / n as f64,
        ));
        if n >= 10_000 {
            let (_, mem) = measure(|| run_phases(&sources));
            sec.note(format!(
                "{label} defs: peak heap of one load + validate + assemble {:.1} MiB ({:.1}x the JSON bytes)",
                mib(mem.heap_peak),
                mem.heap_peak as f64 / bytes as f64
            ));
            big = Some((air, sources, total));
        }
    }

    // Diff of two 10,000-def sets.
    let (a, a_sources, check_total) = big.ok_or("no 10,000-def set")?;
    let (b, ev) = a.evolve(0xD1FF);
    let b_sources = b.sources();
    check_set("the evolved set", &b_sources)?;
    let (set_a, _) = load(&a_sources);
    let (set_b, _) = load(&b_sources);
    let d = air_fmt::diff::diff(&set_a, &set_b);
    let text = air_fmt::diff::render_text(&d, false);
    if d.changed.len() != ev.changed
        || d.added.len() != ev.added
        || d.removed.len() != ev.removed
        || d.upgraded.len() != ev.upgraded
    {
        return Err(format!(
            "diff found {} changed, {} added, {} removed, {} upgraded; the generator made {ev:?}",
            d.changed.len(),
            d.added.len(),
            d.removed.len(),
            d.upgraded.len()
        )
        .into());
    }
    let patch = air_fmt::patch::diff_to_patch(&set_a, &set_b)
        .map_err(|e| format!("diff_to_patch failed: {:?}", e.first()))?;
    let runs = if quick { 3 } else { 7 };
    say(format!(
        "diff of two {}-def sets ({} changed, {} added, {} removed), {runs} runs",
        fmt_n(a.defs()),
        ev.changed,
        ev.added,
        ev.removed
    ));
    let mut diff_t = Vec::new();
    let mut render_t = Vec::new();
    let mut both_t = Vec::new();
    for _ in 0..runs {
        let (d, dt) = timed(|| air_fmt::diff::diff(&set_a, &set_b));
        let (t, rt) = timed(|| air_fmt::diff::render_text(&d, false));
        black_box(t);
        diff_t.push(dt);
        render_t.push(rt);
        both_t.push(dt + rt);
    }
    let (diff_m, render_m, both_m) = (median(diff_t), median(render_t), median(both_t));
    let patch_m = median_of(runs, || {
        air_fmt::patch::diff_to_patch(&set_a, &set_b).expect("patch")
    });
    let parse_both = median_of(runs, || parse_all(&a_sources) + parse_all(&b_sources));
    // What `aos air diff A B` does in-process: load_checked on both sides (load,
    // validate, assemble), then diff and render. The sum of the medians of the parts.
    let (_, check_b) = median_phases(&b_sources, runs);
    let pipeline = check_total + check_b + both_m;
    let label = fmt_n(a.defs());
    sec.row(Row::cost(
        BENCH,
        format!("diff::diff of two {label}-def sets"),
        "ms",
        ms(diff_m),
        Some(("parse both", ms(parse_both))),
    ));
    sec.row(Row::cost(
        BENCH,
        "diff::render_text (no color)",
        "ms",
        ms(render_m),
        None,
    ));
    sec.row(
        Row::cost(
            BENCH,
            "diff + render_text",
            "ms",
            ms(both_m),
            Some(("parse both", ms(parse_both))),
        )
        .target(Target::new("<1000 ms", ms(both_m) < 1000.0)),
    );
    sec.row(
        Row::cost(
            BENCH,
            "in-process `air diff`: load+validate+assemble both, diff, render (sum)",
            "ms",
            ms(pipeline),
            Some(("parse both", ms(parse_both))),
        )
        .target(Target::new("<1000 ms", ms(pipeline) < 1000.0)),
    );
    sec.row(Row::cost(
        BENCH,
        "patch::diff_to_patch on the same pair",
        "ms",
        ms(patch_m),
        Some(("parse both", ms(parse_both))),
    ));
    sec.note(format!(
        "diff: {} changed, {} added, {} removed ({} upgrades @1 -> @2); text {:.2} MiB; patch {} ops; the in-process `air diff` row is the sum of the medians of its parts",
        d.changed.len(),
        d.added.len(),
        d.removed.len(),
        d.upgraded.len(),
        mib(text.len() as u64),
        patch.patches.len()
    ));
    drop((set_a, set_b));

    // The real binary, on files.
    match aos_binary() {
        None => sec.note(format!(
            "skipped `aos air check` / `aos air diff` as processes: no `aos` next to {} (build it with `cargo build --release -p aos-cli`)",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )),
        Some(aos) => {
            let dir_a = scratch.join("air-a");
            let dir_b = scratch.join("air-b");
            write_set(&dir_a, &a_sources)?;
            write_set(&dir_b, &b_sources)?;
            settle(scratch);
            let check_cmd = || {
                let mut c = Command::new(&aos);
                c.args(["air", "check"]).arg(&dir_a);
                c
            };
            let diff_cmd = || {
                let mut c = Command::new(&aos);
                c.args(["air", "diff", "--color", "never"])
                    .arg(&dir_a)
                    .arg(&dir_b);
                c
            };
            // Check once (and warm the page cache).
            let out = String::from_utf8_lossy(&run_aos(&mut check_cmd())?).to_string();
            if !out.starts_with("ok: ") {
                return Err(format!("aos air check printed {out:?}").into());
            }
            let out = run_aos(&mut diff_cmd())?;
            if out.len() != text.len() {
                sec.note(format!(
                    "`aos air diff` printed {} bytes, the in-process render {} bytes",
                    out.len(),
                    text.len()
                ));
            }
            let pruns = if quick { 3 } else { 5 };
            say(format!(
                "{} air check / air diff as processes, {pruns} runs each",
                aos.display()
            ));
            let mut check_t = Vec::new();
            let mut diff_pt = Vec::new();
            for _ in 0..pruns {
                let (r, t) = timed(|| run_aos(&mut check_cmd()));
                r?;
                check_t.push(t);
                let (r, t) = timed(|| run_aos(&mut diff_cmd()));
                r?;
                diff_pt.push(t);
            }
            let (check_m, diff_pm) = (median(check_t), median(diff_pt));
            let parse_a = median_of(runs, || parse_all(&a_sources));
            sec.row(
                Row::cost(
                    BENCH,
                    format!("`aos air check` of {label} defs (process)"),
                    "ms",
                    ms(check_m),
                    Some(("parse", ms(parse_a))),
                )
                .target(Target::new("<500 ms", ms(check_m) < 500.0)),
            );
            sec.row(
                Row::cost(
                    BENCH,
                    format!("`aos air diff A B` of two {label}-def sets (process)"),
                    "ms",
                    ms(diff_pm),
                    Some(("parse both", ms(parse_both))),
                )
                .target(Target::new("<1000 ms", ms(diff_pm) < 1000.0)),
            );
            sec.note(format!(
                "processes: `aos air check` {:.0} ms vs {:.0} ms in-process; `aos air diff` {:.0} ms vs {:.0} ms in-process (reading {} + {} files, stdout captured)",
                ms(check_m),
                ms(check_total),
                ms(diff_pm),
                ms(pipeline),
                a_sources.len(),
                b_sources.len()
            ));
        }
    }
    Ok(sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sets_validate_cleanly_and_the_diff_matches() {
        let a = Air::generate(400, 1);
        assert_eq!(a.defs(), 400);
        let sa = a.sources();
        assert_eq!(check_set("a", &sa), Ok(0));
        let (b, ev) = a.evolve(2);
        let sb = b.sources();
        assert_eq!(check_set("b", &sb), Ok(0));
        let d = air_fmt::diff::diff(&load(&sa).0, &load(&sb).0);
        assert_eq!(d.changed.len(), ev.changed);
        assert_eq!(d.added.len(), ev.added);
        assert_eq!(d.removed.len(), ev.removed);
        assert_eq!(d.upgraded.len(), ev.upgraded);
    }
}
