//! The stepper through a real world on disk, with WAT reducers: routing, keyed cells,
//! cascades of domain events, effect intents, cause links, the cascade limit, `now_ns`
//! and the key in the step's context, and replay re-deriving all of it.

mod common;

use std::path::Path;

use aos_kernel::records::*;
use aos_kernel::session::{BootOptions, EventIn, Session, Start};
use aos_kernel::KernelError;
use aos_store::world::Access;
use common::{constant, echo};
use serde_json::json;

fn name(s: &str) -> air_fmt::Name {
    air_fmt::Name::parse(s).unwrap()
}

/// A world whose genesis manifest is `air`, with `modules` stored.
fn create(root: &Path, air: &str, modules: &[(&str, Vec<u8>)]) {
    common::create_world(root, air, modules, &format!("ed25519:{}", "00".repeat(32)));
}

const AIR: &str = r#"[
 {"$kind":"defschema","name":"t/State@1","type":{"record":{"n":{"nat":{}}}}},
 {"$kind":"defschema","name":"t/Go@1","type":{"record":{"k":{"text":{}}}}},
 {"$kind":"defschema","name":"t/Ping@1","type":{"record":{"k":{"text":{}}}}},
 {"$kind":"defschema","name":"t/Key@1","type":{"text":{}}},
 {"$kind":"defmodule","name":"t/Emitter@1","module_kind":"reducer","wasm_hash":"{{emitter}}",
  "abi":{"reducer":{"state":"t/State@1","event":"t/Go@1","effects_emitted":["timer.set"],"cap_slots":{"timer":"timer"}}}},
 {"$kind":"defmodule","name":"t/Sink@1","module_kind":"reducer","wasm_hash":"{{sink}}","key_schema":"t/Key@1",
  "abi":{"reducer":{"state":"t/State@1","event":"t/Ping@1"}}},
 {"$kind":"manifest","air_version":"1",
  "schemas":[{"name":"t/State@1"},{"name":"t/Go@1"},{"name":"t/Ping@1"},{"name":"t/Key@1"}],
  "modules":[{"name":"t/Emitter@1"},{"name":"t/Sink@1"}],
  "caps":[{"name":"sys/timer@1"}], "effects":[{"name":"sys/timer.set@1"}], "plans":[], "policies":[],
  "defaults":{"cap_grants":[{"name":"timer_grant","cap":"sys/timer@1","params":{"record":{}}}]},
  "module_bindings":{"t/Emitter@1":{"slots":{"timer":"timer_grant"}}},
  "routing":{"events":[{"event":"t/Go@1","reducer":"t/Emitter@1"},
                       {"event":"t/Ping@1","reducer":"t/Sink@1","key_field":"k"}]}}
]"#;

fn open(root: &Path) -> Session {
    Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {}).unwrap()
}

fn go(k: &str) -> EventIn {
    EventIn {
        schema: name("t/Go@1"),
        value: json!({ "k": k }),
        key: None,
    }
}

#[test]
fn a_cascade_reaches_keyed_cells_and_journals_intents_with_causes() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    let emitter = constant(
        br#"{"state":{"n":1},"domain_events":[{"schema":"t/Ping@1","value":{"k":"a"}},{"schema":"t/Ping@1","value":{"k":"b"}}],"effects":[{"kind":"timer.set","params":{"deliver_at_ns":5,"key":null},"cap_slot":"timer"}]}"#,
    );
    // The sink echoes its input into `ann`, so the test sees ctx.key and ctx.now_ns.
    let sink = echo(r#"{"n":7}"#);
    create(&root, AIR, &[("emitter", emitter), ("sink", sink)]);
    let mut s = open(&root);
    let origin = json!({"who": "test", "via": "test"});
    let report = s.inject(&[go("x")], &origin).unwrap();
    let kinds: Vec<(u64, &str, Vec<u64>)> = report[0]
        .derived
        .iter()
        .map(|(seq, r)| (*seq, r.kind.as_str(), r.cause.clone()))
        .collect();
    // seq 1 Go; 2 Emitter stepped; 3, 4 pings caused by 2; 5 the intent caused by 2;
    // 6 its gate decision (this manifest has no policy: denied); 7, 8 the sink's cells
    // stepped, caused by the pings.
    assert_eq!(
        kinds,
        [
            (2, REDUCER_STEPPED, vec![1]),
            (3, DOMAIN_EVENT, vec![2]),
            (4, DOMAIN_EVENT, vec![2]),
            (5, EFFECT_INTENT, vec![2]),
            (6, POLICY_DECISION, vec![5]),
            (7, REDUCER_STEPPED, vec![3]),
            (8, REDUCER_STEPPED, vec![4]),
        ]
    );
    let decision = &report[0].derived[4].1;
    assert_eq!(decision.body["allowed"], false);
    assert_eq!(decision.body["cap"]["allowed"], true);
    assert_eq!(decision.body["policy"]["code"], "no_policy");
    assert!(s.open_intents().is_empty(), "a denied intent is never open");
    let recs: Vec<_> = report[0].derived.iter().map(|(_, r)| r).collect();
    assert_eq!(
        recs[1].body["emitted_by"],
        json!({"reducer": "t/Emitter@1"})
    );
    assert_eq!(recs[3].body["kind"], "timer.set");
    assert_eq!(
        recs[3].body["origin"],
        json!({"kind": "reducer", "name": "t/Emitter@1"})
    );
    assert!(recs[3].body["intent_hash"]
        .as_str()
        .unwrap()
        .starts_with("blake3:"));
    assert_eq!(recs[5].body["key"], "a");
    assert_eq!(recs[6].body["key"], "b");
    // Every derived record carries the input's time; the sink saw it as ctx.now_ns.
    let at = recs[0].at_ns;
    assert!(recs.iter().all(|r| r.at_ns == at));
    let ann = &recs[5].body["ann"];
    assert_eq!(ann["ctx"]["key"], "a");
    assert_eq!(ann["ctx"]["cell_mode"], true);
    // Beyond 2^53, 64-bit numbers cross the boundary as decimal strings.
    assert_eq!(ann["ctx"]["now_ns"], json!(at.to_string()));
    assert_eq!(
        ann["event"],
        json!({"schema": "t/Ping@1", "value": {"k": "a"}})
    );

    // Two cells, one per key.
    let sink_state = s
        .kernel
        .state_of(&name("t/Sink@1"), Some(&json!("a")))
        .unwrap();
    assert_eq!(&*sink_state.bytes, br#"{"n":7}"#);
    assert!(s
        .kernel
        .state_of(&name("t/Sink@1"), Some(&json!("c")))
        .is_none());

    // A second input: the intents of two inputs never share an idempotency key.
    let again = s.inject(&[go("x")], &origin).unwrap();
    let intent = |r: &[aos_kernel::session::Injected]| {
        r[0].derived
            .iter()
            .find(|(_, r)| r.kind == EFFECT_INTENT)
            .map(|(_, r)| r.body["idempotency_key"].clone())
            .unwrap()
    };
    assert_ne!(intent(&report), intent(&again));
    let state_hash = s.kernel.state.hash();
    s.finish().unwrap();

    // Replay from genesis re-derives every record and reaches the same state.
    let r = Session::open(
        &root,
        Access::Read,
        BootOptions {
            start: Start::Genesis,
            until: None,
            verify_snapshots: true,
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.boot.inputs, 3);
    assert_eq!(r.boot.derived, 14);
    assert_eq!(r.kernel.state.hash(), state_hash);
    assert_eq!(r.pending(), 0);
}

#[test]
fn a_derived_record_missing_after_a_crash_is_completed_on_the_next_run() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    let emitter =
        constant(br#"{"state":{"n":1},"domain_events":[{"schema":"t/Ping@1","value":{"k":"a"}}]}"#);
    create(
        &root,
        AIR,
        &[
            ("emitter", emitter),
            ("sink", constant(br#"{"state":{"n":2}}"#)),
        ],
    );
    let mut s = open(&root);
    s.inject(&[go("x")], &json!({"who": "t"})).unwrap();
    s.finish().unwrap();
    let full = std::fs::read_to_string(root.join(".aos/journal")).unwrap();
    let lines: Vec<&str> = full.lines().collect();
    assert_eq!(lines.len(), 5);
    // Cut the last two records, as a crash between appends could; drop the index and
    // the cache, which vouch for the longer journal.
    std::fs::write(root.join(".aos/journal"), lines[..3].join("\n") + "\n").unwrap();
    std::fs::remove_file(root.join(".aos/journal.idx")).unwrap();
    std::fs::remove_file(root.join(".aos/cache/state.json")).unwrap();
    let mut s = open(&root);
    assert_eq!(s.pending(), 2);
    assert_eq!(s.complete().unwrap(), 2);
    s.finish().unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join(".aos/journal")).unwrap(),
        full
    );
}

#[test]
fn a_cascade_that_never_ends_is_stopped_and_journaled() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    // The sink emits a Ping for every Ping: an endless cascade.
    let emitter =
        constant(br#"{"state":{"n":1},"domain_events":[{"schema":"t/Ping@1","value":{"k":"a"}}]}"#);
    let sink =
        constant(br#"{"state":{"n":1},"domain_events":[{"schema":"t/Ping@1","value":{"k":"a"}}]}"#);
    create(&root, AIR, &[("emitter", emitter), ("sink", sink)]);
    let mut s = open(&root);
    let r = s.inject(&[go("x")], &json!({"who": "t"})).unwrap();
    let last = &r[0].derived.last().unwrap().1;
    assert_eq!(last.kind, CASCADE_STOPPED);
    assert!(last.body["reason"].as_str().unwrap().contains("10000"));
    let steps = r[0]
        .derived
        .iter()
        .filter(|(_, r)| r.kind == REDUCER_STEPPED)
        .count();
    assert_eq!(steps, aos_kernel::stepper::MAX_STEPS_PER_INPUT);
    // The world goes on: the next input is processed.
    assert!(s.inject(&[go("y")], &json!({"who": "t"})).is_ok());
}

#[test]
fn keyed_routes_without_a_key_and_unknown_schemas_are_refused_before_journaling() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    create(
        &root,
        AIR,
        &[
            ("emitter", constant(br#"{"state":null}"#)),
            ("sink", constant(br#"{"state":null}"#)),
        ],
    );
    let mut s = open(&root);
    let len = s.world.journal.len();
    let bad = [
        EventIn {
            schema: name("t/Nope@1"),
            value: json!({}),
            key: None,
        },
        EventIn {
            schema: name("t/Go@1"),
            value: json!({"k": 3}),
            key: None,
        },
        EventIn {
            schema: name("t/Ping@1"),
            value: json!({"k": "a"}),
            key: Some(json!("b")),
        },
    ];
    for ev in bad {
        match s.inject(&[go("ok"), ev.clone()], &json!({})) {
            Err(KernelError::Refused(m)) => assert!(m.starts_with("event 2:"), "{m}"),
            other => panic!("{ev:?} was not refused: {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(s.world.journal.len(), len, "a refused batch wrote nothing");
    // A state of null is no state: nothing is stored for the emitter.
    s.inject(&[go("ok")], &json!({})).unwrap();
    assert!(s.kernel.state_of(&name("t/Emitter@1"), None).is_none());
}
