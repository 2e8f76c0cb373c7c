//! Diffs and patch documents on the corpus's safe-upgrade example (`06-safe-upgrade`,
//! `air.v1` → `air.v2`) and on random edits of a small AIR set: the diff names exactly
//! what changed, `diff_to_patch` then `apply` reproduces the target manifest hash, and
//! a patch that is stale, wrong or invalid is refused with precise diagnostics while the
//! base stays as it was.

mod common;
use common::corpus;

use std::collections::BTreeMap;
use std::path::Path;

use air_fmt::assemble::{assemble, def_hash};
use air_fmt::diag::has_errors;
use air_fmt::diff::{diff, render_text};
use air_fmt::load::{load, AirSet, Source};
use air_fmt::model::{DefKind, RouteEvent, Trigger};
use air_fmt::patch::{apply, block_hash, diff_to_patch, Block, PatchDoc, PatchOp};
use air_fmt::{Diagnostic, Name};
use aos_store::Hash;
use proptest::prelude::*;
use serde_json::{json, Value};

fn load_dir(dir: &Path) -> AirSet {
    let mut sources: Vec<Source> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".air.json"))
        .map(|p| Source {
            name: p.display().to_string(),
            bytes: std::fs::read(&p).unwrap(),
        })
        .collect();
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let (set, d) = load(&sources);
    assert!(!has_errors(&d), "{}: {d:#?}", dir.display());
    set
}

fn v1() -> AirSet {
    load_dir(&corpus().join("examples/06-safe-upgrade/air.v1"))
}

fn v2() -> AirSet {
    load_dir(&corpus().join("examples/06-safe-upgrade/air.v2"))
}

fn manifest_hash(set: &AirSet) -> Hash {
    let (a, d) = assemble(set);
    assert!(!has_errors(&d), "{d:#?}");
    a.unwrap().manifest_hash
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

/// Everything observable about a set, to check that it was not modified.
fn snapshot(set: &AirSet) -> String {
    format!("{:?}\n{:?}", set.defs, set.manifest)
}

fn refs(list: &[air_fmt::diff::DefRef]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|r| (r.kind.as_str(), r.name.as_str()))
        .collect()
}

fn codes(e: &[Diagnostic]) -> Vec<(&'static str, String)> {
    e.iter().map(|x| (x.code, x.pointer.clone())).collect()
}

#[test]
fn safe_upgrade_diff_names_exactly_what_changed() {
    let (a, b) = (v1(), v2());
    let d = diff(&a, &b);
    // By reading the two directories: v2 adds the follow-up capability, replaces the
    // fetch plan and the policy by new versions (@2), and changes the manifest to
    // match; schemas and the module are the same. (Listed by kind in the model's order
    // — schemas, modules, plans, caps, policies, effects, secrets — then by name.)
    assert_eq!(
        refs(&d.added),
        [
            ("defplan", "demo/fetch_plan@2"),
            ("defcap", "demo/http_followup_cap@1"),
            ("defpolicy", "demo/http-policy@2")
        ]
    );
    assert_eq!(
        refs(&d.removed),
        [
            ("defplan", "demo/fetch_plan@1"),
            ("defpolicy", "demo/http-policy@1")
        ]
    );
    assert!(d.changed.is_empty(), "{:#?}", d.changed);
    let upgraded: Vec<(&str, &str, &str)> = d
        .upgraded
        .iter()
        .map(|u| (u.kind.as_str(), u.old_name.as_str(), u.new_name.as_str()))
        .collect();
    assert_eq!(
        upgraded,
        [
            ("defplan", "demo/fetch_plan@1", "demo/fetch_plan@2"),
            ("defpolicy", "demo/http-policy@1", "demo/http-policy@2")
        ]
    );
    let plan = &d.upgraded[0].unified;
    assert!(plan.contains("+      \"id\": \"emit_followup\","), "{plan}");
    assert!(plan.contains("-  \"required_caps\": [\"cap_http_fetch\"],\n+  \"required_caps\": [\"cap_http_fetch\", \"cap_http_followup\"],"), "{plan}");
    assert!(d.manifest_changed);
    let md = d.manifest_diff.as_deref().unwrap();
    for line in [
        "-    { \"name\": \"demo/fetch_plan@1\" }",
        "+    { \"name\": \"demo/fetch_plan@2\" }",
        "+    { \"name\": \"demo/http_followup_cap@1\" }",
        "+    \"policy\": \"demo/http-policy@2\",",
    ] {
        assert!(md.contains(line), "{line} not in\n{md}");
    }
    assert_eq!(d.old_manifest_hash, Some(manifest_hash(&a)));
    assert_eq!(d.new_manifest_hash, Some(manifest_hash(&b)));
    let text = render_text(&d, false);
    assert!(
        text.contains("added    defcap demo/http_followup_cap@1"),
        "{text}"
    );
    assert!(
        text.contains("upgraded defplan demo/fetch_plan@1 -> demo/fetch_plan@2"),
        "{text}"
    );
    assert!(render_text(&d, true).contains("\x1b[32m+"));
    let j = serde_json::to_value(&d).unwrap();
    assert_eq!(
        j["removed"][0],
        json!({"kind": "defplan", "name": "demo/fetch_plan@1", "hash": d.removed[0].hash.to_string()})
    );

    assert!(diff(&a, &v1()).is_empty());
    assert!(!diff(&b, &a).is_empty());
}

#[test]
fn safe_upgrade_patch_reproduces_v2() {
    let (a, b) = (v1(), v2());
    let before = snapshot(&a);
    let (ha, hb) = (manifest_hash(&a), manifest_hash(&b));
    assert_ne!(ha, hb);
    let doc = diff_to_patch(&a, &b).unwrap();
    assert_eq!(doc.base_manifest_hash, ha);
    let ops: Vec<&str> = doc.patches.iter().map(PatchOp::key).collect();
    assert_eq!(
        ops,
        [
            "add_def",
            "add_def",
            "add_def",
            "remove_def",
            "remove_def",
            "set_defaults",
            "set_triggers"
        ]
    );

    let candidate = apply(&a, &ha, &doc).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(manifest_hash(&candidate), hb);
    assert!(
        diff(&candidate, &b).is_empty(),
        "{}",
        render_text(&diff(&candidate, &b), false)
    );
    assert_eq!(snapshot(&a), before, "the base is untouched");

    // Through JSON and the formatter, as `aos air patch` writes it.
    let text = air_fmt::fmt::format_json(&doc.to_json());
    assert!(text.contains(&format!("\"base_manifest_hash\": \"{ha}\"")));
    let back = PatchDoc::parse(text.as_bytes()).unwrap();
    assert_eq!(back, doc);
    assert_eq!(manifest_hash(&apply(&a, &ha, &back).unwrap()), hb);

    // And back again.
    let undo = diff_to_patch(&candidate, &a).unwrap();
    assert_eq!(manifest_hash(&apply(&candidate, &hb, &undo).unwrap()), ha);
}

fn doc(base: Hash, patches: Vec<PatchOp>) -> PatchDoc {
    PatchDoc {
        version: "1".into(),
        base_manifest_hash: base,
        patches,
    }
}

#[test]
fn refused_patches_say_exactly_why_and_change_nothing() {
    let a = v1();
    let before = snapshot(&a);
    let ha = manifest_hash(&a);
    let plan = name("demo/fetch_plan@1");
    let current = def_hash(&a, a.get(DefKind::Plan, &plan).unwrap());
    let plan_node = a.defs[&(DefKind::Plan, plan.clone())].raw.clone();
    let wrong = Hash::of(b"not the plan");

    // A wrong pre_hash names both hashes.
    let e = apply(
        &a,
        &ha,
        &doc(
            ha,
            vec![PatchOp::RemoveDef {
                kind: DefKind::Plan,
                name: plan.clone(),
                pre_hash: wrong,
            }],
        ),
    )
    .unwrap_err();
    assert_eq!(
        codes(&e),
        [("pre_hash_mismatch", "/patches/0/remove_def/pre_hash".into())]
    );
    assert_eq!(e[0].def.as_deref(), Some("demo/fetch_plan@1"));
    assert!(
        e[0].message.contains(&current.to_string()) && e[0].message.contains(&wrong.to_string()),
        "{}",
        e[0]
    );
    assert_eq!(
        (e[0].expected.clone(), e[0].found.clone()),
        (Some(current.to_string()), Some(wrong.to_string()))
    );

    // A patch written against another manifest.
    let other = Hash::of(b"another manifest");
    let e = apply(
        &a,
        &ha,
        &doc(
            other,
            vec![PatchOp::RemoveDef {
                kind: DefKind::Plan,
                name: plan.clone(),
                pre_hash: current,
            }],
        ),
    )
    .unwrap_err();
    assert_eq!(codes(&e), [("stale_base", "/base_manifest_hash".into())]);
    assert!(e[0].message.contains(&other.to_string()) && e[0].message.contains(&ha.to_string()));
    // ... or a caller whose idea of the base is wrong.
    let e = apply(
        &a,
        &other,
        &doc(
            ha,
            vec![PatchOp::RemoveDef {
                kind: DefKind::Plan,
                name: plan.clone(),
                pre_hash: current,
            }],
        ),
    )
    .unwrap_err();
    assert_eq!(codes(&e), [("base_mismatch", String::new())]);

    // Adding a def that exists; replacing and removing one that does not.
    let e = apply(
        &a,
        &ha,
        &doc(
            ha,
            vec![PatchOp::AddDef {
                kind: DefKind::Plan,
                node: plan_node.clone(),
            }],
        ),
    )
    .unwrap_err();
    assert_eq!(
        codes(&e),
        [("def_exists", "/patches/0/add_def/node/name".into())]
    );
    assert!(e[0].hint.as_deref().unwrap().contains(&current.to_string()));
    let missing = name("demo/fetch_plan@9");
    let mut renamed = plan_node.clone();
    renamed["name"] = json!(missing.as_str());
    let e = apply(
        &a,
        &ha,
        &doc(
            ha,
            vec![
                PatchOp::ReplaceDef {
                    kind: DefKind::Plan,
                    name: missing.clone(),
                    new_node: renamed,
                    pre_hash: current,
                },
                PatchOp::RemoveDef {
                    kind: DefKind::Schema,
                    name: name("demo/Nope@1"),
                    pre_hash: current,
                },
                PatchOp::AddDef {
                    kind: DefKind::Schema,
                    node: plan_node.clone(),
                },
            ],
        ),
    )
    .unwrap_err();
    assert_eq!(
        codes(&e),
        [
            ("unknown_def", "/patches/0/replace_def/name".into()),
            ("unknown_def", "/patches/1/remove_def/name".into()),
            ("kind_mismatch", "/patches/2/add_def/kind".into()),
        ]
    );

    // A candidate that does not validate: the module's state schema removed, a trigger
    // for a plan that does not exist.
    let state = name("demo/SafeUpgradeState@1");
    let state_hash = def_hash(&a, a.get(DefKind::Schema, &state).unwrap());
    let e = apply(
        &a,
        &ha,
        &doc(
            ha,
            vec![
                PatchOp::RemoveDef {
                    kind: DefKind::Schema,
                    name: state,
                    pre_hash: state_hash,
                },
                PatchOp::SetTriggers {
                    pre_hash: block_hash(&a, Block::Triggers).unwrap(),
                    triggers: vec![Trigger {
                        event: name("demo/UpgradeFetchRequest@1"),
                        plan: name("demo/ghost@1"),
                        correlate_by: None,
                    }],
                },
            ],
        ),
    )
    .unwrap_err();
    assert!(e.iter().all(Diagnostic::is_error));
    assert!(
        e.iter()
            .any(|x| x.def.as_deref() == Some("demo/SafeUpgrade@1")
                && x.pointer.starts_with("/abi/reducer/state")),
        "{e:#?}"
    );
    assert!(
        e.iter().any(|x| x.pointer.starts_with("/triggers/0/plan")),
        "{e:#?}"
    );

    // A document that does not parse reports pointers into itself.
    let bad = json!({"base_manifest_hash": ha, "patches": [{"remove_def": {"kind": "defplan", "name": "demo/fetch_plan@1"}}]});
    let e = PatchDoc::from_json(&bad).unwrap_err();
    assert_eq!(
        codes(&e),
        [("missing_field", "/patches/0/remove_def".into())]
    );
    assert!(e[0].message.contains("pre_hash"));

    assert_eq!(
        snapshot(&a),
        before,
        "the base is untouched by refused patches"
    );
    assert_eq!(manifest_hash(&a), ha);
}

// ---- random edits of a small set ----

/// A small world, valid by construction: schemas `demo/T<i>@<v>` (some listed), a
/// reducer `demo/R@1` and a plan `demo/P@1` on the event `demo/RE@1`, an optional
/// policy, grant, binding, route and trigger, and an optionally listed built-in effect.
#[derive(Debug, Clone)]
struct World {
    schemas: BTreeMap<(u8, u8), (u8, bool)>,
    policy: Option<bool>,
    default_policy: bool,
    grant: bool,
    binding: bool,
    route: bool,
    trigger: bool,
    timer_listed: bool,
    wasm: u8,
    plan_text: u8,
}

#[derive(Debug, Clone)]
enum Edit {
    SchemaType(u8, u8),
    AddSchema(u8, u8, u8),
    RemoveSchema(u8),
    Bump(u8),
    ToggleListed(u8),
    Policy(Option<bool>),
    DefaultPolicy,
    Grant,
    Binding,
    Route,
    Trigger,
    Timer,
    Wasm(u8),
    PlanText(u8),
}

fn type_json(t: u8) -> Value {
    match t % 4 {
        0 => json!({"nat": {}}),
        1 => json!({"text": {}}),
        2 => json!({"record": {"a": {"int": {}}, "b": {"option": {"text": {}}}}}),
        _ => json!({"variant": {"On": {"unit": {}}, "Off": {"unit": {}}}}),
    }
}

impl World {
    fn sources(&self) -> Vec<Source> {
        let mut nodes = vec![
            json!({"$kind": "defschema", "name": "demo/RS@1", "type": {"record": {"n": {"nat": {}}}}}),
            json!({"$kind": "defschema", "name": "demo/RE@1", "type": {"record": {"id": {"text": {}}}}}),
        ];
        let mut module = json!({"$kind": "defmodule", "name": "demo/R@1", "module_kind": "reducer",
            "abi": {"reducer": {"state": "demo/RS@1", "event": "demo/RE@1", "effects_emitted": [], "cap_slots": {"t": "timer"}}}});
        if self.wasm > 0 {
            module["wasm_hash"] = json!(Hash::of(&[self.wasm]).to_string());
        }
        nodes.push(module);
        nodes.push(
            json!({"$kind": "defplan", "name": "demo/P@1", "input": "demo/RE@1",
            "steps": [{"id": "say", "op": "raise_event", "event": "demo/RE@1",
                       "value": {"record": {"id": {"text": format!("v{}", self.plan_text)}}}},
                      {"id": "done", "op": "end"}],
            "edges": [{"from": "say", "to": "done"}]}),
        );
        let mut manifest = json!({"$kind": "manifest", "air_version": "1",
            "schemas": [{"name": "demo/RS@1"}, {"name": "demo/RE@1"}],
            "modules": [{"name": "demo/R@1"}], "plans": [{"name": "demo/P@1"}],
            "effects": [], "caps": [], "policies": [], "defaults": {"cap_grants": []},
            "module_bindings": {}, "routing": {"events": [], "inboxes": []}, "triggers": []});
        for ((i, v), (t, listed)) in &self.schemas {
            let n = format!("demo/T{i}@{v}");
            nodes.push(json!({"$kind": "defschema", "name": n, "type": type_json(*t)}));
            if *listed {
                manifest["schemas"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": n}));
            }
        }
        if let Some(allow) = self.policy {
            nodes.push(json!({"$kind": "defpolicy", "name": "demo/pol@1",
                "rules": [{"when": {"effect_kind": "timer.set"}, "decision": if allow { "allow" } else { "deny" }}]}));
            manifest["policies"] = json!([{"name": "demo/pol@1"}]);
            if self.default_policy {
                manifest["defaults"]["policy"] = json!("demo/pol@1");
            }
        }
        if self.grant {
            manifest["defaults"]["cap_grants"] =
                json!([{"name": "tg", "cap": "sys/timer@1", "params": {}}]);
            manifest["caps"] = json!([{"name": "sys/timer@1"}]);
            if self.binding {
                manifest["module_bindings"] = json!({"demo/R@1": {"slots": {"t": "tg"}}});
            }
        }
        if self.route {
            manifest["routing"]["events"] = json!([{"event": "demo/RE@1", "reducer": "demo/R@1"}]);
        }
        if self.trigger {
            manifest["triggers"] = json!([{"event": "demo/RE@1", "plan": "demo/P@1"}]);
        }
        if self.timer_listed {
            manifest["effects"] = json!([{"name": "sys/timer.set@1"}]);
        }
        vec![
            Source {
                name: "defs.air.json".into(),
                bytes: serde_json::to_vec(&Value::Array(nodes)).unwrap(),
            },
            Source {
                name: "manifest.air.json".into(),
                bytes: serde_json::to_vec(&manifest).unwrap(),
            },
        ]
    }

    fn set(&self) -> AirSet {
        let (set, d) = load(&self.sources());
        assert!(!has_errors(&d), "{d:#?}");
        set
    }

    fn edit(&mut self, e: &Edit) {
        let key = |w: &World, i: u8| {
            w.schemas
                .keys()
                .nth(usize::from(i) % w.schemas.len().max(1))
                .copied()
        };
        match *e {
            Edit::SchemaType(i, t) => {
                if let Some(k) = key(self, i) {
                    self.schemas.get_mut(&k).unwrap().0 = t;
                }
            }
            Edit::AddSchema(i, v, t) => {
                self.schemas.insert((i % 5, v % 3 + 1), (t, v % 2 == 0));
            }
            Edit::RemoveSchema(i) => {
                if let Some(k) = key(self, i) {
                    self.schemas.remove(&k);
                }
            }
            Edit::Bump(i) => {
                if let Some(k) = key(self, i) {
                    let v = self.schemas.remove(&k).unwrap();
                    self.schemas.insert((k.0, k.1 + 1), v);
                }
            }
            Edit::ToggleListed(i) => {
                if let Some(k) = key(self, i) {
                    let s = self.schemas.get_mut(&k).unwrap();
                    s.1 = !s.1;
                }
            }
            Edit::Policy(p) => self.policy = p,
            Edit::DefaultPolicy => self.default_policy = !self.default_policy,
            Edit::Grant => self.grant = !self.grant,
            Edit::Binding => self.binding = !self.binding,
            Edit::Route => self.route = !self.route,
            Edit::Trigger => self.trigger = !self.trigger,
            Edit::Timer => self.timer_listed = !self.timer_listed,
            Edit::Wasm(w) => self.wasm = w,
            Edit::PlanText(t) => self.plan_text = t,
        }
    }
}

fn world() -> impl Strategy<Value = World> {
    (
        prop::collection::btree_map((0u8..5, 1u8..3), (any::<u8>(), any::<bool>()), 0..5),
        prop::option::of(any::<bool>()),
        any::<[bool; 7]>(),
        0u8..3,
        0u8..3,
    )
        .prop_map(|(schemas, policy, f, wasm, plan_text)| World {
            schemas,
            policy,
            default_policy: f[0],
            grant: f[1],
            binding: f[2],
            route: f[3],
            trigger: f[4],
            timer_listed: f[5],
            wasm: if f[6] { wasm } else { 0 },
            plan_text,
        })
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<u8>(), any::<u8>()).prop_map(|(i, t)| Edit::SchemaType(i, t)),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(i, v, t)| Edit::AddSchema(i, v, t)),
        any::<u8>().prop_map(Edit::RemoveSchema),
        any::<u8>().prop_map(Edit::Bump),
        any::<u8>().prop_map(Edit::ToggleListed),
        prop::option::of(any::<bool>()).prop_map(Edit::Policy),
        Just(Edit::DefaultPolicy),
        Just(Edit::Grant),
        Just(Edit::Binding),
        Just(Edit::Route),
        Just(Edit::Trigger),
        Just(Edit::Timer),
        (0u8..4).prop_map(Edit::Wasm),
        (0u8..4).prop_map(Edit::PlanText),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn applying_the_diff_patch_reproduces_the_target(w in world(), edits in prop::collection::vec(edit(), 0..5)) {
        let mut w2 = w.clone();
        for e in &edits {
            w2.edit(e);
        }
        let (a, b) = (w.set(), w2.set());
        let (ha, hb) = (manifest_hash(&a), manifest_hash(&b));
        let before = snapshot(&a);
        let doc = diff_to_patch(&a, &b).unwrap_or_else(|e| panic!("{e:#?}"));
        prop_assert_eq!(doc.is_empty(), diff(&a, &b).is_empty());
        prop_assert_eq!(PatchDoc::from_json(&doc.to_json()).ok(), (!doc.is_empty()).then(|| doc.clone()));
        let candidate = apply(&a, &ha, &doc).unwrap_or_else(|e| panic!("{e:#?}\n{}", air_fmt::fmt::format_json(&doc.to_json())));
        prop_assert_eq!(manifest_hash(&candidate), hb);
        prop_assert!(diff(&candidate, &b).is_empty());
        prop_assert_eq!(snapshot(&a), before);
        if ha != hb {
            let stale = apply(&b, &hb, &doc).unwrap_err();
            prop_assert_eq!(stale[0].code, "stale_base");
        }
    }
}

#[test]
fn routing_and_bindings_ops_carry_block_pre_hashes() {
    let base = World {
        schemas: BTreeMap::new(),
        policy: None,
        default_policy: false,
        grant: true,
        binding: false,
        route: false,
        trigger: false,
        timer_listed: false,
        wasm: 0,
        plan_text: 0,
    };
    let mut next = base.clone();
    next.edit(&Edit::Route);
    next.edit(&Edit::Binding);
    let (a, b) = (base.set(), next.set());
    let doc = diff_to_patch(&a, &b).unwrap();
    assert_eq!(
        doc.patches,
        [
            PatchOp::SetRoutingEvents {
                pre_hash: block_hash(&a, Block::RoutingEvents).unwrap(),
                events: vec![RouteEvent {
                    event: name("demo/RE@1"),
                    reducer: name("demo/R@1"),
                    key_field: None
                }],
            },
            PatchOp::SetModuleBindings {
                pre_hash: block_hash(&a, Block::ModuleBindings).unwrap(),
                bindings: BTreeMap::from([(
                    name("demo/R@1"),
                    BTreeMap::from([("t".to_string(), "tg".to_string())])
                )]),
            },
        ]
    );
    assert_eq!(
        block_hash(&a, Block::RoutingEvents),
        Some(air_fmt::assemble::hash_json(&json!([])))
    );
    assert_eq!(
        manifest_hash(&apply(&a, &manifest_hash(&a), &doc).unwrap()),
        manifest_hash(&b)
    );
}

/// The repository's safe-upgrade example with its grant params rewritten from the
/// tagged lens into plain JSON: the same manifest.
#[test]
fn grant_params_in_either_lens_are_no_change() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/safe-upgrade/air");
    let tagged = load_dir(&dir);
    let mut sources: Vec<Source> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".air.json"))
        .map(|p| {
            let mut bytes = std::fs::read(&p).unwrap();
            if p.ends_with("manifest.air.json") {
                let mut m: Value = serde_json::from_slice(&bytes).unwrap();
                m["defaults"]["cap_grants"][0]["params"] = json!({
                    "hosts": ["127.0.0.1"],
                    "verbs": ["GET"],
                    "path_prefixes": ["/primary"],
                });
                bytes = serde_json::to_vec(&m).unwrap();
            }
            Source {
                name: p.display().to_string(),
                bytes,
            }
        })
        .collect();
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let (plain, d) = load(&sources);
    assert!(!has_errors(&d), "{d:#?}");
    assert_eq!(manifest_hash(&tagged), manifest_hash(&plain));
    let p = diff_to_patch(&tagged, &plain).unwrap();
    assert!(p.is_empty(), "{:?}", p.patches);
    let d = diff(&tagged, &plain);
    assert!(d.is_empty(), "{}", render_text(&d, false));
}
