//! Plan runs: a trigger starts a run, its effect goes through the gates (origin plan),
//! the run parks on the receipt, wakes when it is journaled, raises an event a reducer
//! takes, and ends with a typed result; a failing expression ends only that run; open
//! runs survive snapshots; replay re-derives everything.

mod common;

use aos_kernel::records::*;
use aos_kernel::session::{BootOptions, EventIn, Session, Start};
use aos_store::receipt::{Receipt, Status, Unsigned};
use aos_store::world::Access;
use aos_store::Hash;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

const AIR: &str = r#"[
 {"$kind":"defschema","name":"t/Fetch@1","type":{"record":{"url":{"text":{}}}}},
 {"$kind":"defschema","name":"t/Result@1","type":{"record":{"status":{"int":{}}}}},
 {"$kind":"defschema","name":"t/State@1","type":{"record":{"n":{"nat":{}}}}},
 {"$kind":"defmodule","name":"t/Sink@1","module_kind":"reducer","wasm_hash":"{{sink}}",
  "abi":{"reducer":{"state":"t/State@1","event":"t/Result@1"}}},
 {"$kind":"defplan","name":"t/fetch@1","input":"t/Fetch@1","output":"t/Result@1",
  "steps":[
   {"id":"a_get","op":"emit_effect","kind":"http.request",
    "params":{"record":{"method":{"text":"GET"},"url":{"ref":"@plan.input.url"},"headers":{"map":[]},"body_ref":{"null":{}}}},
    "cap":"http_grant","bind":{"effect_id_as":"req"}},
   {"id":"b_wait","op":"await_receipt","for":{"ref":"@var:req"},"bind":{"as":"resp"}},
   {"id":"c_status","op":"assign","expr":{"op":"get","args":[{"ref":"@var:resp"},{"text":"status"}]},"bind":{"as":"status"}},
   {"id":"d_raise","op":"raise_event","event":"t/Result@1","value":{"record":{"status":{"ref":"@var:status"}}}},
   {"id":"e_end","op":"end","result":{"record":{"status":{"ref":"@var:status"}}}}
  ],
  "edges":[{"from":"a_get","to":"b_wait"},{"from":"b_wait","to":"c_status"},{"from":"c_status","to":"d_raise"},{"from":"d_raise","to":"e_end"}],
  "required_caps":["http_grant"],"allowed_effects":["http.request"]},
 {"$kind":"defschema","name":"t/Inspect@1","type":{"record":{"reducer":{"text":{}}}}},
 {"$kind":"defplan","name":"t/inspect@1","input":"t/Inspect@1",
  "steps":[
   {"id":"a_ask","op":"emit_effect","kind":"introspect.reducer_state",
    "params":{"record":{"reducer":{"ref":"@plan.input.reducer"},"key":{"null":{}},"consistency":{"text":"head"}}},
    "cap":"query_grant","bind":{"effect_id_as":"q"}},
   {"id":"b_wait","op":"await_receipt","for":{"ref":"@var:q"},"bind":{"as":"answer"}},
   {"id":"c_end","op":"end"}
  ],
  "edges":[{"from":"a_ask","to":"b_wait"},{"from":"b_wait","to":"c_end"}],
  "required_caps":["query_grant"],"allowed_effects":["introspect.reducer_state"]},
 {"$kind":"defpolicy","name":"t/policy@1","rules":[{"when":{"effect_kind":"http.request","origin_kind":"plan"},"decision":"allow"},
   {"when":{"effect_kind":"introspect.reducer_state","origin_kind":"plan"},"decision":"allow"}]},
 {"$kind":"manifest","air_version":"1",
  "schemas":[{"name":"t/Fetch@1"},{"name":"t/Result@1"},{"name":"t/State@1"},{"name":"t/Inspect@1"}],
  "modules":[{"name":"t/Sink@1"}],"plans":[{"name":"t/fetch@1"},{"name":"t/inspect@1"}],
  "caps":[{"name":"sys/http.out@1"},{"name":"sys/query@1"}],"effects":[{"name":"sys/http.request@1"},{"name":"sys/introspect.reducer_state@1"}],"policies":[{"name":"t/policy@1"}],
  "defaults":{"policy":"t/policy@1","cap_grants":[{"name":"http_grant","cap":"sys/http.out@1",
     "params":{"record":{"hosts":{"set":[{"text":"127.0.0.1"}]},"verbs":{"set":[{"text":"GET"}]}}}},
     {"name":"query_grant","cap":"sys/query@1","params":{"record":{"scope":{"text":"*"}}}}]},
  "routing":{"events":[{"event":"t/Result@1","reducer":"t/Sink@1"}]},
  "triggers":[{"event":"t/Fetch@1","plan":"t/fetch@1"},{"event":"t/Inspect@1","plan":"t/inspect@1"}]}
]"#;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn public(k: &SigningKey) -> String {
    let hex: String = k
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("ed25519:{hex}")
}

/// A world of `air` (with a sink reducer) open for writing: (tempdir guard, root, session).
fn plan_world(air: &str) -> (tempfile::TempDir, std::path::PathBuf, Session) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    let sink = common::constant(br#"{"state":{"n":1}}"#);
    common::create_world(&root, air, &[("sink", sink)], &public(&key()));
    let s = Session::open(&root, Access::Write, BootOptions::default(), &mut |_, _| {}).unwrap();
    (d, root, s)
}

fn receipt(intent: Hash, status: i64) -> Receipt {
    let k = key();
    let payload = json!({"status": status, "headers": {}, "body_ref": null, "timings": {"start_ns": 1, "end_ns": 2}, "adapter_id": "http"});
    let u = Unsigned {
        intent_hash: intent,
        effect_kind: "http.request".into(),
        adapter_id: "http".into(),
        status: Status::Ok,
        payload,
        started_ns: 1,
        finished_ns: 2,
        cost_cents: None,
    };
    Receipt::sign_with(u, |m| k.sign(m).to_bytes()).unwrap()
}

fn name(s: &str) -> air_fmt::Name {
    air_fmt::Name::parse(s).unwrap()
}

fn kinds(inj: &aos_kernel::session::Injected) -> Vec<&str> {
    inj.derived.iter().map(|(_, r)| r.kind.as_str()).collect()
}

#[test]
fn a_triggered_plan_fetches_parks_wakes_raises_and_ends() {
    let (_d, root, mut s) = plan_world(AIR);
    let ev = EventIn {
        schema: name("t/Fetch@1"),
        value: json!({"url": "http://127.0.0.1:9/x"}),
        key: None,
    };
    let r = s.inject(&[ev], &json!({"who": "t"})).unwrap();
    assert_eq!(
        kinds(&r[0]),
        [PLAN_STARTED, EFFECT_INTENT, POLICY_DECISION],
        "{:#?}",
        r[0].derived
    );
    let (run_seq, started) = &r[0].derived[0];
    assert_eq!(started.cause, vec![r[0].seq]);
    let intent = &r[0].derived[1].1;
    assert_eq!(intent.body["origin"]["kind"], "plan");
    assert_eq!(intent.body["params"]["url"], "http://127.0.0.1:9/x");
    assert_eq!(r[0].derived[2].1.body["allowed"], true);
    let handle: Hash = intent.body["intent_hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        s.kernel.state.runs.len(),
        1,
        "the run is parked on its receipt"
    );

    // The run survives a snapshot and a reopen while parked.
    s.snapshot("test").unwrap();
    s.finish().unwrap();
    let mut s = Session::open(
        &root,
        Access::Write,
        BootOptions {
            start: Start::Snapshot,
            ..BootOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(s.kernel.state.runs.len(), 1);

    let rep = s.accept_receipts(&[receipt(handle, 200)]).unwrap();
    let inj = rep[0].as_ref().unwrap();
    assert_eq!(
        kinds(inj),
        [DOMAIN_EVENT, PLAN_ENDED, REDUCER_STEPPED],
        "{:#?}",
        inj.derived
    );
    let raised = &inj.derived[0].1;
    assert_eq!(raised.body["schema"], "t/Result@1");
    assert_eq!(raised.body["value"], json!({"status": 200}));
    assert_eq!(raised.body["raised_by"]["run"], json!(*run_seq));
    let ended = &inj.derived[1].1;
    assert_eq!(ended.body["status"], "ok");
    assert_eq!(ended.body["result"], json!({"status": 200}));
    assert!(s.kernel.state.runs.is_empty());
    assert!(s.open_intents().is_empty());
    let state = s.kernel.state.hash();
    s.finish().unwrap();

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
    assert_eq!(r.kernel.state.hash(), state);
    assert_eq!(r.boot.snapshots_checked, 1);
}

#[test]
fn a_failing_expression_or_a_denied_effect_ends_only_that_run() {
    let (_d, _root, mut s) = plan_world(AIR);
    // A host outside the grant: the intent is denied and the run ends with the reason.
    let bad = EventIn {
        schema: name("t/Fetch@1"),
        value: json!({"url": "http://evil.example/"}),
        key: None,
    };
    let ok = EventIn {
        schema: name("t/Fetch@1"),
        value: json!({"url": "http://127.0.0.1:9/y"}),
        key: None,
    };
    let r = s.inject(&[bad, ok], &json!({"who": "t"})).unwrap();
    assert_eq!(
        kinds(&r[0]),
        [PLAN_STARTED, EFFECT_INTENT, POLICY_DECISION, PLAN_ENDED]
    );
    let ended = &r[0].derived[3].1;
    assert_eq!(ended.body["status"], "error");
    assert!(
        ended.body["error"]
            .as_str()
            .unwrap()
            .contains("evil.example"),
        "{}",
        ended.body
    );
    assert_eq!(kinds(&r[1]), [PLAN_STARTED, EFFECT_INTENT, POLICY_DECISION]);
    assert_eq!(s.kernel.state.runs.len(), 1, "the other run goes on");
    // A receipt without a status makes `get` fail: that run ends with the error.
    let handle: Hash = r[1].derived[1].1.body["intent_hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let k = key();
    let u = Unsigned {
        intent_hash: handle,
        effect_kind: "http.request".into(),
        adapter_id: "http".into(),
        status: Status::Error,
        payload: json!({"message": "connection refused"}),
        started_ns: 1,
        finished_ns: 2,
        cost_cents: None,
    };
    let failed = Receipt::sign_with(u, |m| k.sign(m).to_bytes()).unwrap();
    let rep = s.accept_receipts(&[failed]).unwrap();
    let inj = rep[0].as_ref().unwrap();
    assert_eq!(kinds(inj), [PLAN_ENDED]);
    let body: &Value = &inj.derived[0].1.body;
    assert_eq!(body["status"], "error");
    assert!(
        body["error"].as_str().unwrap().contains("c_status"),
        "{body}"
    );
    assert!(s.kernel.state.runs.is_empty());
}

#[test]
fn introspection_is_answered_by_the_kernel_deterministically() {
    let (_d, root, mut s) = plan_world(AIR);
    // Give the sink a state first (a Result event routes to it).
    let res = EventIn {
        schema: name("t/Result@1"),
        value: json!({"status": 1}),
        key: None,
    };
    s.inject(&[res], &json!({"who": "t"})).unwrap();
    let ask = EventIn {
        schema: name("t/Inspect@1"),
        value: json!({"reducer": "t/Sink@1"}),
        key: None,
    };
    let r = s.inject(&[ask], &json!({"who": "t"})).unwrap();
    assert_eq!(
        kinds(&r[0]),
        [
            PLAN_STARTED,
            EFFECT_INTENT,
            POLICY_DECISION,
            INTROSPECT_ANSWER,
            PLAN_ENDED
        ],
        "{:#?}",
        r[0].derived
    );
    let answer = &r[0].derived[3].1.body["value"];
    // The state bytes, base64 of canonical JSON `{"n":1}`.
    assert_eq!(answer["state"], "eyJuIjoxfQ==");
    assert_eq!(answer["meta"]["journal_height"], json!(r[0].seq));
    assert!(
        s.open_intents().is_empty(),
        "nothing is dispatched for introspection"
    );
    assert_eq!(r[0].derived[4].1.body["status"], "ok");
    s.finish().unwrap();
    let again = Session::open(
        &root,
        Access::Read,
        BootOptions {
            start: Start::Genesis,
            ..BootOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(again.boot.snapshots_checked, 0);
}

const ORDERS: &str = r#"[
 {"$kind":"defschema","name":"t/Order@1","type":{"record":{"id":{"text":{}}}}},
 {"$kind":"defschema","name":"t/Paid@1","type":{"record":{"id":{"text":{}},"amount":{"nat":{}}}}},
 {"$kind":"defschema","name":"t/Done@1","type":{"record":{"id":{"text":{}},"amount":{"nat":{}}}}},
 {"$kind":"defschema","name":"t/State@1","type":{"record":{"n":{"nat":{}}}}},
 {"$kind":"defmodule","name":"t/Sink@1","module_kind":"reducer","wasm_hash":"{{sink}}",
  "abi":{"reducer":{"state":"t/State@1","event":"t/Done@1"}}},
 {"$kind":"defplan","name":"t/order@1","input":"t/Order@1",
  "steps":[
   {"id":"a_wait","op":"await_event","event":"t/Paid@1",
    "where":{"op":"eq","args":[{"ref":"@event.id"},{"ref":"@plan.input.id"}]},"bind":{"as":"paid"}},
   {"id":"b_raise","op":"raise_event","event":"t/Done@1",
    "value":{"record":{"id":{"ref":"@plan.input.id"},"amount":{"op":"get","args":[{"ref":"@var:paid"},{"text":"amount"}]}}}},
   {"id":"c_end","op":"end"}
  ],
  "edges":[{"from":"a_wait","to":"b_raise"},{"from":"b_raise","to":"c_end"}],
  "invariants":[{"op":"ne","args":[{"ref":"@plan.input.id"},{"text":"bad"}]}]},
 {"$kind":"manifest","air_version":"1",
  "schemas":[{"name":"t/Order@1"},{"name":"t/Paid@1"},{"name":"t/Done@1"},{"name":"t/State@1"}],
  "modules":[{"name":"t/Sink@1"}],"plans":[{"name":"t/order@1"}],
  "caps":[],"effects":[],"policies":[],
  "routing":{"events":[{"event":"t/Done@1","reducer":"t/Sink@1"}]},
  "triggers":[{"event":"t/Order@1","plan":"t/order@1","correlate_by":"id"}]}
]"#;

#[test]
fn correlated_runs_wait_for_their_own_event_and_invariants_end_runs() {
    let (_d, root, mut s) = plan_world(ORDERS);
    let ev = |schema: &str, v: Value| EventIn {
        schema: name(schema),
        value: v,
        key: None,
    };
    let r = s
        .inject(
            &[
                ev("t/Order@1", json!({"id": "a"})),
                ev("t/Order@1", json!({"id": "b"})),
            ],
            &json!({}),
        )
        .unwrap();
    assert_eq!(kinds(&r[0]), [PLAN_STARTED], "{:#?}", r[0].derived);
    assert_eq!(r[0].derived[0].1.body["correlation"], "a");
    assert_eq!(s.kernel.state.runs.len(), 2, "both runs wait");
    // An event for b wakes only b's run, which raises Done for the sink and ends.
    let r = s
        .inject(
            &[ev("t/Paid@1", json!({"id": "b", "amount": 5}))],
            &json!({}),
        )
        .unwrap();
    assert_eq!(
        kinds(&r[0]),
        [DOMAIN_EVENT, PLAN_ENDED, REDUCER_STEPPED],
        "{:#?}",
        r[0].derived
    );
    assert_eq!(
        r[0].derived[0].1.body["value"],
        json!({"id": "b", "amount": 5})
    );
    assert_eq!(s.kernel.state.runs.len(), 1);
    // The waiting run survives a snapshot and replay; a later matching event wakes it.
    s.snapshot("t").unwrap();
    let r = s
        .inject(
            &[ev("t/Paid@1", json!({"id": "a", "amount": 7}))],
            &json!({}),
        )
        .unwrap();
    assert_eq!(r[0].derived[0].1.body["value"]["amount"], 7);
    assert!(s.kernel.state.runs.is_empty());
    // An order that breaks the invariant ends with invariant_violation.
    let r = s
        .inject(&[ev("t/Order@1", json!({"id": "bad"}))], &json!({}))
        .unwrap();
    assert_eq!(kinds(&r[0]), [PLAN_STARTED, PLAN_ENDED]);
    assert_eq!(r[0].derived[1].1.body["status"], "invariant_violation");
    let state = s.kernel.state.hash();
    s.finish().unwrap();
    let again = Session::open(
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
    assert_eq!(again.kernel.state.hash(), state);
    assert_eq!(again.boot.snapshots_checked, 1);
}
