//! `fmt` on every file of the AIR corpus (beside the repository, in
//! `../shared/air-corpus`, or at `$AOS_AIR_CORPUS`) and on random JSON: the output
//! parses to exactly the input (comments, lenses and all), formatting it again changes
//! nothing, and only lines holding a single scalar go past 80 columns.

mod common;
use common::corpus;

use std::path::{Path, PathBuf};

use air_fmt::fmt::{format_json, format_source, WIDTH};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// A line longer than the width must be one scalar, possibly after a key.
fn long_line_is_a_scalar(line: &str) -> bool {
    let t = line.trim().trim_end_matches(',');
    if serde_json::from_str::<Value>(t).is_ok_and(|v| !v.is_array() && !v.is_object()) {
        return true;
    }
    match serde_json::from_str::<Value>(&format!("{{{t}}}")) {
        Ok(Value::Object(m)) => m.len() == 1 && m.values().all(|v| !v.is_array() && !v.is_object()),
        _ => false,
    }
}

fn check(v: &Value, what: &str) {
    let once = format_json(v);
    let back: Value = serde_json::from_str(&once)
        .unwrap_or_else(|e| panic!("{what}: output is not JSON: {e}\n{once}"));
    assert_eq!(&back, v, "{what}: content changed");
    assert_eq!(format_json(&back), once, "{what}: not idempotent");
    assert!(
        once.ends_with('\n') && !once.ends_with("\n\n"),
        "{what}: one newline at the end"
    );
    for line in once.lines() {
        assert!(!line.ends_with(' '), "{what}: trailing space in {line:?}");
        assert!(
            line.len() - line.trim_start().len() <= 2 * 64,
            "{what}: runaway indent"
        );
        if line.chars().count() > WIDTH {
            assert!(
                long_line_is_a_scalar(line),
                "{what}: line over {WIDTH} columns: {line:?}"
            );
        }
    }
}

#[test]
fn every_corpus_file_formats_idempotently_and_keeps_its_content() {
    let mut files = Vec::new();
    json_files(&corpus(), &mut files);
    files.sort();
    assert!(files.len() > 60, "found only {} files", files.len());
    let mut with_comments = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        check(&v, &f.display().to_string());
        let text = format_source(&bytes).unwrap();
        assert_eq!(text, format_json(&v));
        assert_eq!(
            format_source(text.as_bytes()).unwrap(),
            text,
            "{}",
            f.display()
        );
        if text.contains("\"$comment\"") {
            with_comments += 1;
        }
    }
    assert!(
        with_comments > 0,
        "the corpus has `$comment`s, and they are kept"
    );
}

#[test]
fn corpus_nodes_start_with_kind_and_name_and_steps_with_id_and_op() {
    let f = corpus().join("examples/06-safe-upgrade/air.v2/fetch_plan_v2.air.json");
    let text = format_source(&std::fs::read(f).unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..5],
        [
            "[",
            "  {",
            "    \"$kind\": \"defplan\",",
            "    \"name\": \"demo/fetch_plan@2\",",
            "    \"input\": \"demo/UpgradeFetchRequest@1\","
        ]
    );
    let keys: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("    \""))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "$kind",
            "name",
            "input",
            "output",
            "steps",
            "edges",
            "required_caps",
            "allowed_effects"
        ]
    );
    assert!(text.contains(
        "      {\n        \"id\": \"emit_followup\",\n        \"op\": \"emit_effect\",\n        \"kind\": \"http.request\",\n        \"params\": {"
    ));
    assert!(text.contains("        \"cap\": \"cap_http_followup\",\n        \"bind\": { \"effect_id_as\": \"follow_req\" }\n      },"));
    assert!(text.contains("    \"required_caps\": [\"cap_http_fetch\", \"cap_http_followup\"],"));
    assert!(text.contains("      { \"from\": \"emit_primary\", \"to\": \"await_primary\" },"));

    let m = format_source(
        &std::fs::read(corpus().join("examples/06-safe-upgrade/air.v2/manifest.air.json")).unwrap(),
    )
    .unwrap();
    let top: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("  \""))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    let order = [
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
    ];
    let pos: Vec<usize> = top
        .iter()
        .map(|k| order.iter().position(|o| o == k).unwrap_or(usize::MAX))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{top:?}");
}

/// Keys that steer the layout, mixed with arbitrary ones.
const KEYS: [&str; 24] = [
    "$kind",
    "name",
    "$comment",
    "steps",
    "edges",
    "op",
    "id",
    "bind",
    "args",
    "record",
    "variant",
    "map",
    "type",
    "rules",
    "when",
    "patches",
    "base_manifest_hash",
    "add_def",
    "node",
    "routing",
    "events",
    "value",
    "tag",
    "slots",
];
const KINDS: [&str; 9] = [
    "defschema",
    "defmodule",
    "defplan",
    "defcap",
    "defpolicy",
    "defeffect",
    "defsecret",
    "manifest",
    "other",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "[a-z \\-\"\\\\é☃\\n\\t]{0,90}".prop_map(Value::String),
        prop::sample::select(KINDS.to_vec()).prop_map(|k| Value::String(k.into())),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS.to_vec()).prop_map(String::from),
        "[a-zA-Z_$~/]{1,12}"
    ]
}

fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(6, 120, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    (
        prop::collection::btree_map(key(), json(), 0..10),
        prop::option::of(prop::sample::select(KINDS.to_vec())),
    )
        .prop_map(|(m, kind)| {
            let mut m: Map<String, Value> = m.into_iter().collect();
            if let Some(k) = kind {
                m.insert("$kind".into(), Value::String(k.into()));
            }
            Value::Object(m)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_objects_round_trip_and_are_idempotent(v in object()) {
        check(&v, "random object");
        let arr = Value::Array(vec![v.clone(), v]);
        check(&arr, "random array of objects");
    }
}
