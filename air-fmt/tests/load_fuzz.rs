//! Arbitrary input never panics the loader, the validator, assembly, diff or the patch
//! compiler: random JSON, random bytes, and valid nodes with random edits.

use air_fmt::load::{load, Source};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "$kind",
        "name",
        "type",
        "record",
        "variant",
        "ref",
        "nat",
        "text",
        "steps",
        "op",
        "id",
        "edges",
        "from",
        "to",
        "abi",
        "reducer",
        "state",
        "event",
        "module_kind",
        "schemas",
        "modules",
        "plans",
        "routing",
        "events",
        "args",
        "air_version",
        "defaults",
        "cap_grants",
        "params",
        "cap",
        "kind",
        "bind",
        "as",
        "when",
        "rules",
        "decision",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "defschema",
            "defmodule",
            "defplan",
            "defcap",
            "defpolicy",
            "defeffect",
            "defsecret",
            "manifest",
            "demo/A@1",
            "demo/B@1",
            "reducer",
            "pure",
            "emit_effect",
            "end",
            "assign",
            "@var:x",
            "@plan.input.a",
            "1",
            "",
            "sha256:00",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn exercise(sources: &[Source]) {
    let (set, _) = load(sources);
    let _ = air_fmt::validate::validate(&set);
    let (assembled, _) = air_fmt::assemble::assemble(&set);
    let d = air_fmt::diff::diff(&set, &air_fmt::load::AirSet::default());
    let _ = air_fmt::diff::render_text(&d, true);
    if assembled.is_some() {
        let _ = air_fmt::patch::diff_to_patch(&air_fmt::load::AirSet::default(), &set);
    }
    for s in sources {
        let _ = air_fmt::fmt::format_source(&s.bytes);
    }
}

fn valid_nodes() -> Vec<Value> {
    vec![
        json!({"$kind": "defschema", "name": "demo/S@1", "type": {"record": {"n": {"nat": {}}, "t": {"option": {"text": {}}}}}}),
        json!({"$kind": "defschema", "name": "demo/E@1", "type": {"variant": {"Go": {"ref": "demo/S@1"}, "Stop": {"unit": {}}}}}),
        json!({"$kind": "defmodule", "name": "demo/M@1", "module_kind": "reducer", "abi": {"reducer": {"state": "demo/S@1", "event": "demo/E@1"}}}),
        json!({"$kind": "defplan", "name": "demo/P@1", "input": "demo/S@1", "steps": [
            {"id": "a", "op": "assign", "expr": {"ref": "@plan.input.n"}, "bind": {"as": "x"}},
            {"id": "e", "op": "end"}], "edges": [{"from": "a", "to": "e"}]}),
        json!({"$kind": "manifest", "air_version": "1", "schemas": [{"name": "demo/S@1"}, {"name": "demo/E@1"}],
            "modules": [{"name": "demo/M@1"}], "plans": [{"name": "demo/P@1"}], "effects": [], "caps": [], "policies": [],
            "routing": {"events": [{"event": "demo/E@1", "reducer": "demo/M@1"}]},
            "triggers": [{"event": "demo/S@1", "plan": "demo/P@1", "correlate_by": "n"}]}),
    ]
}

/// Replace the value at a random position of `v` (walking `path` choices) with `with`.
fn edit(v: &mut Value, path: &[usize], with: Value) {
    let mut pointer = String::new();
    let root = &*v;
    let mut cur = root;
    for &choice in path {
        let step = match cur {
            Value::Object(m) if !m.is_empty() => m.keys().nth(choice % m.len()).cloned(),
            Value::Array(a) if !a.is_empty() => Some((choice % a.len()).to_string()),
            _ => None,
        };
        let Some(step) = step else { break };
        pointer.push('/');
        pointer.push_str(&step.replace('~', "~0").replace('/', "~1"));
        match root.pointer(&pointer) {
            Some(next) => cur = next,
            None => break,
        }
    }
    if let Some(target) = v.pointer_mut(&pointer) {
        *target = with;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(values in prop::collection::vec(arb_json(), 1..4)) {
        let sources: Vec<Source> = values.iter().enumerate()
            .map(|(i, v)| Source { name: format!("f{i}.air.json"), bytes: serde_json::to_vec(v).unwrap() })
            .collect();
        exercise(&sources);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&[Source { name: "x.air.json".into(), bytes }]);
    }

    #[test]
    fn edited_valid_sets_never_panic(edits in prop::collection::vec((0usize..5, prop::collection::vec(any::<usize>(), 1..6), arb_json()), 1..4)) {
        let mut nodes = valid_nodes();
        for (which, path, with) in edits {
            edit(&mut nodes[which], &path, with);
        }
        let sources = vec![Source { name: "all.air.json".into(), bytes: serde_json::to_vec(&Value::Array(nodes)).unwrap() }];
        exercise(&sources);
    }
}

#[test]
fn the_unedited_set_is_valid() {
    let sources = vec![Source {
        name: "all.air.json".into(),
        bytes: serde_json::to_vec(&Value::Array(valid_nodes())).unwrap(),
    }];
    let (set, d) = load(&sources);
    assert!(d.is_empty(), "{d:?}");
    let d = air_fmt::validate::validate(&set);
    assert!(!air_fmt::diag::has_errors(&d), "{d:#?}");
}
