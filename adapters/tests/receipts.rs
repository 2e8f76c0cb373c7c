//! Receipts: sign, verify, tamper, JSON round trip, and arbitrary JSON input.

use aos_adapters::receipt::{payload_hash, sign, Receipt, ReceiptError, Unsigned};
use aos_adapters::{ReceiptSigner, Status};
use aos_store::Hash;
use proptest::prelude::*;
use serde_json::{json, Value};

fn unsigned() -> Unsigned {
    Unsigned {
        intent_hash: Hash::of(b"intent"),
        effect_kind: "http.request".into(),
        adapter_id: "http".into(),
        status: Status::Ok,
        payload: json!({"status": 200, "headers": {}, "body_ref": null, "timings": {"start_ns": 10, "end_ns": 20}, "adapter_id": "http"}),
        started_ns: 10,
        finished_ns: 20,
        cost_cents: None,
    }
}

fn signed() -> (ReceiptSigner, Receipt) {
    let signer = ReceiptSigner::generate().unwrap();
    let r = sign(unsigned(), &signer).unwrap();
    (signer, r)
}

#[test]
fn sign_then_verify() {
    let (signer, r) = signed();
    r.verify(&signer.public_key()).unwrap();
    assert_eq!(r.payload_hash, payload_hash(&r.payload).unwrap());
}

#[test]
fn any_altered_field_fails_verification() {
    let (signer, r) = signed();
    let key = signer.public_key();
    type Alter = Box<dyn Fn(&mut Receipt)>;
    let alterations: Vec<(&str, Alter)> = vec![
        (
            "intent_hash",
            Box::new(|r| r.intent_hash = Hash::of(b"other")),
        ),
        (
            "effect_kind",
            Box::new(|r| r.effect_kind = "http.requesT".into()),
        ),
        ("adapter_id", Box::new(|r| r.adapter_id = "evil".into())),
        (
            "status",
            Box::new(|r| {
                r.status = Status::Timeout;
                r.payload = json!({"message": "x"});
                r.payload_hash = payload_hash(&r.payload).unwrap();
            }),
        ),
        ("started_ns", Box::new(|r| r.started_ns += 1)),
        ("finished_ns", Box::new(|r| r.finished_ns -= 1)),
        ("cost_cents", Box::new(|r| r.cost_cents = Some(0))),
        (
            "payload_hash",
            Box::new(|r| r.payload_hash = Hash::of(b"p")),
        ),
        ("signature", Box::new(|r| r.signature[17] ^= 1)),
    ];
    for (name, alter) in alterations {
        let mut t = r.clone();
        alter(&mut t);
        assert!(t.verify(&key).is_err(), "altering {name} went unnoticed");
    }
}

#[test]
fn an_altered_payload_fails_even_with_a_matching_signature_elsewhere() {
    let (signer, r) = signed();
    let mut t = r.clone();
    t.payload["status"] = json!(201);
    match t.verify(&signer.public_key()) {
        Err(ReceiptError::PayloadHash { .. }) => {}
        other => panic!("expected a payload hash mismatch, got {other:?}"),
    }
    // Re-hashing the altered payload does not help: the hash is signed.
    t.payload_hash = payload_hash(&t.payload).unwrap();
    assert!(matches!(
        t.verify(&signer.public_key()),
        Err(ReceiptError::BadSignature { .. })
    ));
    // Key order and whitespace are not alterations: the payload is hashed canonically.
    let reparsed: Value =
        serde_json::from_str(&serde_json::to_string_pretty(&r.payload).unwrap()).unwrap();
    let mut same = r.clone();
    same.payload = reparsed;
    same.verify(&signer.public_key()).unwrap();
}

#[test]
fn a_wrong_or_malformed_key_fails() {
    let (_, r) = signed();
    let other = ReceiptSigner::generate().unwrap();
    assert!(matches!(
        r.verify(&other.public_key()),
        Err(ReceiptError::BadSignature { .. })
    ));
    assert!(matches!(
        r.verify("ed25519:zz"),
        Err(ReceiptError::BadPublicKey(_))
    ));
}

#[test]
fn json_round_trip() {
    let signer = ReceiptSigner::generate().unwrap();
    let mut u = unsigned();
    u.finished_ns = u64::MAX; // beyond 2^53: written as a decimal string
    u.cost_cents = Some(7);
    let r = sign(u, &signer).unwrap();
    let j = r.to_json();
    assert_eq!(j["finished_ns"], json!(u64::MAX.to_string()));
    assert_eq!(j["status"], "ok");
    assert_eq!(j["signature"].as_str().unwrap().len(), 128);
    let back = Receipt::from_json(&j).unwrap();
    assert_eq!(back, r);
    back.verify(&signer.public_key()).unwrap();
    // Through text too.
    let text = serde_json::to_string(&j).unwrap();
    let back = Receipt::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back, r);
    // Failed receipts round-trip as well.
    let mut u = unsigned();
    u.status = Status::Error;
    u.payload = json!({"message": "connection refused"});
    let e = sign(u, &signer).unwrap();
    assert_eq!(Receipt::from_json(&e.to_json()).unwrap(), e);
}

#[test]
fn from_json_refuses_malformed_receipts() {
    let (signer, r) = signed();
    let good = r.to_json();
    let cases: Vec<(&str, Value)> = vec![
        ("status", json!("fine")),
        ("signature", json!("AB".repeat(64))),
        ("signature", json!("ab")),
        ("intent_hash", json!("sha256:00")),
        ("started_ns", json!(-1)),
        ("started_ns", json!(1.5)),
        ("started_ns", json!("007")),
        ("cost_cents", json!("x")),
        ("effect_kind", json!(3)),
    ];
    for (field, value) in cases {
        let mut j = good.clone();
        j[field] = value.clone();
        assert!(
            Receipt::from_json(&j).is_err(),
            "{field} = {value} was accepted"
        );
    }
    let mut extra = good.clone();
    extra["note"] = json!("unsigned");
    assert!(Receipt::from_json(&extra).is_err());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("cost_cents");
    assert!(Receipt::from_json(&missing).is_err());
    let mut not_message = good.clone();
    not_message["status"] = json!("error");
    assert!(Receipt::from_json(&not_message).is_err());
    // A tampered but well-formed receipt parses, then fails verification.
    let mut tampered = good.clone();
    tampered["adapter_id"] = json!("evil");
    let t = Receipt::from_json(&tampered).unwrap();
    assert!(t.verify(&signer.public_key()).is_err());
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "[0-9a-f]{128}".prop_map(Value::from),
        "blake3:[0-9a-f]{64}".prop_map(Value::from),
        prop_oneof![Just("ok"), Just("error"), Just("timeout")].prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("intent_hash".to_string()),
                    Just("status".to_string()),
                    Just("payload".to_string()),
                    Just("message".to_string()),
                    Just("signature".to_string()),
                    ".{0,6}".prop_map(String::from),
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn from_json_never_panics(v in arb_json()) {
        if let Ok(r) = Receipt::from_json(&v) {
            let _ = r.verify("ed25519:00");
        }
    }

    #[test]
    fn from_json_never_panics_on_a_receipt_with_one_field_replaced(
        field in prop_oneof![
            Just("intent_hash"), Just("effect_kind"), Just("adapter_id"), Just("status"),
            Just("payload"), Just("payload_hash"), Just("started_ns"), Just("finished_ns"),
            Just("cost_cents"), Just("signature"),
        ],
        value in arb_json(),
    ) {
        let signer = ReceiptSigner::generate().unwrap();
        let r = sign(unsigned(), &signer).unwrap();
        let mut j = r.to_json();
        j[field] = value;
        if let Ok(back) = Receipt::from_json(&j) {
            // Whatever parses and verifies says exactly what was signed.
            if back.verify(&signer.public_key()).is_ok() {
                prop_assert_eq!(back.signing_bytes(), r.signing_bytes());
                prop_assert_eq!(payload_hash(&back.payload).unwrap(), r.payload_hash);
                prop_assert_eq!(back.signature, r.signature);
            }
        }
    }
}
