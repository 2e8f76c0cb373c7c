//! Effect intents through the gates, receipts back: a reducer's `timer.set` is checked
//! against its grant and the policy (both verdicts journaled), stays open until a signed
//! receipt is accepted, and the receipt reaches the reducer as `sys/TimerFired@1`.
//! Denied intents stay closed; forged receipts are refused; duplicates change nothing;
//! replay re-derives all of it.

mod common;

use std::path::Path;

use aos_kernel::records::*;
use aos_kernel::session::{BootOptions, EventIn, Session, Start};
use aos_kernel::KernelError;
use aos_store::receipt::{Receipt, Status, Unsigned};
use aos_store::world::Access;
use aos_store::Hash;
use common::echo;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

fn name(s: &str) -> air_fmt::Name {
    air_fmt::Name::parse(s).unwrap()
}

const AIR: &str = r#"[
 {"$kind":"defschema","name":"t/State@1","type":{"record":{}}},
 {"$kind":"defschema","name":"t/Go@1","type":{"record":{"k":{"text":{}}}}},
 {"$kind":"defschema","name":"t/Event@1","type":{"variant":{"Go":{"ref":"t/Go@1"},"Fired":{"ref":"sys/TimerFired@1"}}}},
 {"$kind":"defmodule","name":"t/Timers@1","module_kind":"reducer","wasm_hash":"{{timers}}",
  "abi":{"reducer":{"state":"t/State@1","event":"t/Event@1","effects_emitted":["timer.set"],"cap_slots":{"timer":"timer"}}}},
 {"$kind":"defpolicy","name":"t/policy@1","rules":[{"when":{"effect_kind":"timer.set","origin_kind":"reducer"},"decision":"{{decision}}"}]},
 {"$kind":"manifest","air_version":"1",
  "schemas":[{"name":"t/State@1"},{"name":"t/Go@1"},{"name":"t/Event@1"}],
  "modules":[{"name":"t/Timers@1"}],
  "caps":[{"name":"sys/timer@1"}], "effects":[{"name":"sys/timer.set@1"}], "plans":[], "policies":[{"name":"t/policy@1"}],
  "defaults":{"policy":"t/policy@1","cap_grants":[{"name":"timer_grant","cap":"sys/timer@1","params":{"record":{}}}]},
  "module_bindings":{"t/Timers@1":{"slots":{"timer":"timer_grant"}}},
  "routing":{"events":[{"event":"t/Go@1","reducer":"t/Timers@1"}]}}
]"#;

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    key: SigningKey,
}

/// A world with the timer reducer; `decision` is the policy's verdict for timer.set.
fn world(decision: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("w");
    // Every step asks for a timer and keeps an empty state; `ann` echoes the input.
    let wasm = echo_with_effect();
    let air = AIR.replace("{{decision}}", decision);
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = format!(
        "ed25519:{}",
        key.verifying_key()
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    common::create_world(&root, &air, &[("timers", wasm)], &public);
    Fixture {
        _dir: dir,
        root,
        key,
    }
}

/// A reducer that always returns `{"state":{},"effects":[timer.set at 5]}`.
fn echo_with_effect() -> Vec<u8> {
    let _ = echo;
    common::constant(
        br#"{"state":{},"effects":[{"kind":"timer.set","params":{"deliver_at_ns":5,"key":"k1"},"cap_slot":"timer"}]}"#,
    )
}

fn open(root: &Path) -> Session {
    Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {}).unwrap()
}

fn go() -> EventIn {
    EventIn {
        schema: name("t/Go@1"),
        value: json!({"k": "x"}),
        key: None,
    }
}

fn signed(key: &SigningKey, intent: Hash, status: Status, payload: serde_json::Value) -> Receipt {
    let unsigned = Unsigned {
        intent_hash: intent,
        effect_kind: "timer.set".into(),
        adapter_id: "timer".into(),
        status,
        payload,
        started_ns: 10,
        finished_ns: 20,
        cost_cents: None,
    };
    Receipt::sign_with(unsigned, |m| key.sign(m).to_bytes()).unwrap()
}

#[test]
fn an_allowed_timer_stays_open_until_its_receipt_reaches_the_reducer() {
    let f = world("allow");
    let mut s = open(&f.root);
    let r = s.inject(&[go()], &json!({"who": "t"})).unwrap();
    let kinds: Vec<&str> = r[0].derived.iter().map(|(_, r)| r.kind.as_str()).collect();
    assert_eq!(kinds, [REDUCER_STEPPED, EFFECT_INTENT, POLICY_DECISION]);
    let (intent_seq, intent) = &r[0].derived[1];
    let (_, decision) = &r[0].derived[2];
    assert_eq!(decision.cause, vec![*intent_seq]);
    assert_eq!(decision.body["allowed"], true);
    assert_eq!(decision.body["cap"]["grant"], "timer_grant");
    assert_eq!(decision.body["policy"]["rule"], 0);
    assert_eq!(intent.body["grant"], "timer_grant");
    let intent_hash: Hash = intent.body["intent_hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let open_now = s.open_intents();
    assert_eq!(open_now.len(), 1);
    assert_eq!(open_now[0].0, intent_hash);

    // A forged receipt (another key) is refused and writes nothing.
    let len = s.world.journal.len();
    let forged = signed(
        &SigningKey::from_bytes(&[8; 32]),
        intent_hash,
        Status::Ok,
        json!({"delivered_at_ns": 30, "key": "k1"}),
    );
    assert!(matches!(
        s.accept_receipts(&[forged]),
        Err(KernelError::Refused(_))
    ));
    // An altered payload breaks the payload hash.
    let mut altered = signed(
        &f.key,
        intent_hash,
        Status::Ok,
        json!({"delivered_at_ns": 30, "key": "k1"}),
    );
    altered.payload = json!({"delivered_at_ns": 31, "key": "k1"});
    assert!(s.accept_receipts(&[altered]).is_err());
    assert_eq!(s.world.journal.len(), len);

    // The real receipt: journaled, delivered as TimerFired to the reducer, which steps
    // (and, being this reducer, asks for another timer).
    let good = signed(
        &f.key,
        intent_hash,
        Status::Ok,
        json!({"delivered_at_ns": 30, "key": "k1"}),
    );
    let rep = s.accept_receipts(&[good.clone(), good.clone()]).unwrap();
    assert!(
        rep[1].is_none(),
        "the duplicate in the same batch is skipped"
    );
    let inj = rep[0].as_ref().unwrap();
    let kinds: Vec<&str> = inj.derived.iter().map(|(_, r)| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            DOMAIN_EVENT,
            REDUCER_STEPPED,
            EFFECT_INTENT,
            POLICY_DECISION
        ]
    );
    let fired = &inj.derived[0].1;
    assert_eq!(fired.cause, vec![inj.seq]);
    assert_eq!(fired.body["schema"], "sys/TimerFired@1");
    assert_eq!(fired.body["value"]["intent_hash"], json!(intent_hash));
    assert_eq!(fired.body["value"]["receipt"]["delivered_at_ns"], 30);
    assert_eq!(fired.body["delivered_to"]["reducer"], "t/Timers@1");
    let stepped = &inj.derived[1].1;
    assert_eq!(stepped.cause, vec![inj.derived[0].0]);
    // The first intent is closed; the new one is open. A late duplicate changes nothing.
    let open_now = s.open_intents();
    assert_eq!(open_now.len(), 1);
    assert_ne!(open_now[0].0, intent_hash);
    let len = s.world.journal.len();
    assert!(s
        .accept_receipts(&[good])
        .unwrap()
        .iter()
        .all(Option::is_none));
    assert_eq!(s.world.journal.len(), len);
    let state = s.kernel.state.hash();
    s.snapshot("test").unwrap();
    s.finish().unwrap();

    // Replay from genesis re-derives the decisions and the delivery, checks the
    // receipt's signature again, and reaches the same state with the same open work.
    let r = Session::open(
        &f.root,
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
    assert_eq!(r.open_intents().len(), 1);
    assert_eq!(r.boot.snapshots_checked, 1);
    // Opening from the snapshot restores the open work too.
    let r = Session::open(
        &f.root,
        Access::Read,
        BootOptions {
            start: Start::Snapshot,
            ..BootOptions::default()
        },
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(r.open_intents().len(), 1);
}

#[test]
fn a_denied_intent_is_journaled_with_its_rule_and_never_opened() {
    let f = world("deny");
    let mut s = open(&f.root);
    let r = s.inject(&[go()], &json!({"who": "t"})).unwrap();
    let decision = &r[0].derived[2].1;
    assert_eq!(decision.kind, POLICY_DECISION);
    assert_eq!(decision.body["allowed"], false);
    assert_eq!(decision.body["cap"]["allowed"], true);
    assert_eq!(decision.body["policy"]["allowed"], false);
    assert_eq!(decision.body["policy"]["rule"], 0);
    assert!(decision.body["policy"]["reason"]
        .as_str()
        .unwrap()
        .contains("t/policy@1"));
    assert!(s.open_intents().is_empty());
    // A receipt for it is not accepted as an answer to anything.
    let intent_hash: Hash = r[0].derived[1].1.body["intent_hash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rec = signed(
        &f.key,
        intent_hash,
        Status::Ok,
        json!({"delivered_at_ns": 1, "key": null}),
    );
    assert!(s.accept_receipts(&[rec]).unwrap()[0].is_none());
}
