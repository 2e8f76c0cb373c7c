//! The typed reducer step: canonical input JSON, output parsed and canonicalized against
//! the reducer's contract, and every failure a `StepError` naming module and event seq.

mod common;

use std::collections::BTreeMap;

use air_fmt::{Name, TypeExpr};
use aos_kernel::wasm::{
    encode_input, parse_output, run_reducer_step, Contract, Fault, InputState, ReducerInput,
    StepError,
};
use aos_store::canon;
use common::*;
use serde_json::{json, Value};

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn ty(v: Value) -> TypeExpr {
    let mut d = Vec::new();
    TypeExpr::parse(&v, "", &mut d).unwrap_or_else(|| panic!("{d:?}"))
}

/// demo/State@1 = record {n: nat}; demo/Ping@1 = variant {Go: unit, Say: text}.
fn schemas() -> BTreeMap<Name, TypeExpr> {
    BTreeMap::from([
        (
            name("demo/State@1"),
            ty(json!({"record": {"n": {"nat": {}}}})),
        ),
        (
            name("demo/Ping@1"),
            ty(json!({"variant": {"Go": {"unit": {}}, "Say": {"text": {}}}})),
        ),
        (
            name("demo/Event@1"),
            ty(json!({"record": {"by": {"int": {}}}})),
        ),
    ])
}

fn contract(s: &BTreeMap<Name, TypeExpr>) -> Contract<'_> {
    let mut c = Contract::new(s, TypeExpr::Ref(name("demo/State@1")));
    c.domain_events.to_mut().insert(name("demo/Ping@1"));
    c.effects.to_mut().insert(
        "timer.set".into(),
        ty(json!({"record": {"deliver_at_ns": {"time": {}}, "key": {"option": {"text": {}}}}})),
    );
    c
}

fn input<'a>(schema: &'a Name, event: &'a Value, state: InputState<'a>) -> ReducerInput<'a> {
    ReducerInput {
        state,
        event_schema: schema,
        event,
        now_ns: 1_764_000_000_000_000_000,
        key: None,
        cell_mode: false,
    }
}

#[test]
fn input_is_the_canonical_json_of_design_4() {
    let schema = name("demo/Event@1");
    let event = json!({"by": 2, "note": "é\u{1}"});
    let state = json!({"n": 5, "a": [1.5, "x"]});
    let key = json!("k/1");
    for (st, st_json) in [
        (InputState::Null, Value::Null),
        (InputState::Value(&state), state.clone()),
    ] {
        let mut i = input(&schema, &event, st);
        i.key = Some(&key);
        i.cell_mode = true;
        let expected = canon::value_to_vec(&json!({
            "version": 1,
            "state": st_json,
            "event": {"schema": "demo/Event@1", "value": event},
            "ctx": {"now_ns": "1764000000000000000", "key": "k/1", "cell_mode": true},
        }))
        .unwrap();
        assert_eq!(
            String::from_utf8(encode_input(&i).unwrap()).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
    let bytes = canon::value_to_vec(&state).unwrap();
    let mut i = input(&schema, &event, InputState::Canonical(&bytes));
    i.now_ns = 42;
    let expected = canon::value_to_vec(&json!({
        "version": 1, "state": state,
        "event": {"schema": "demo/Event@1", "value": event},
        "ctx": {"now_ns": 42, "key": null, "cell_mode": false},
    }))
    .unwrap();
    assert_eq!(encode_input(&i).unwrap(), expected);
}

#[test]
fn echo_step_sees_the_input_and_returns_canonical_state() {
    let rt = small_runtime();
    let h = load(&rt, &echo(r#"{"n":"7"}"#));
    let s = schemas();
    let c = contract(&s);
    let schema = name("demo/Event@1");
    let event = json!({"by": 1});
    let state = json!({"n": 6});
    let i = input(&schema, &event, InputState::Value(&state));
    let out = run_reducer_step(&rt, &h, &c, &i, 12).unwrap();
    // "7" (a string lens for nat) is canonicalized to the number 7.
    assert_eq!(out.state, Some(json!({"n": 7})));
    let sent: Value = serde_json::from_slice(&encode_input(&i).unwrap()).unwrap();
    assert_eq!(out.ann, Some(sent));
    assert!(out.fuel_used > 0);
    let again = run_reducer_step(&rt, &h, &c, &i, 12).unwrap();
    assert_eq!(again, out);
}

#[test]
fn contract_event_type_checks_the_input_event() {
    let rt = small_runtime();
    let h = load(&rt, &echo("null"));
    let s = schemas();
    let mut c = contract(&s);
    c.event = Some(std::borrow::Cow::Owned(TypeExpr::Ref(name("demo/Event@1"))));
    let schema = name("demo/Event@1");
    let event = json!({"by": "-3"});
    let out = run_reducer_step(&rt, &h, &c, &input(&schema, &event, InputState::Null), 3).unwrap();
    assert_eq!(out.state, None);
    assert_eq!(out.ann.unwrap()["event"]["value"], json!({"by": -3}));
    let wrong = json!({"by": "lots"});
    let err =
        run_reducer_step(&rt, &h, &c, &input(&schema, &wrong, InputState::Null), 3).unwrap_err();
    assert!(matches!(err, StepError::Kernel { seq: 3, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("the event does not match demo/Event@1"),
        "{err}"
    );
}

#[test]
fn faults_name_the_module_the_seq_and_the_problem() {
    let rt = small_runtime();
    let s = schemas();
    let c = contract(&s);
    let schema = name("demo/Event@1");
    let event = json!({"by": 1});
    let i = input(&schema, &event, InputState::Null);
    let run = |w: Vec<u8>| {
        let h = load(&rt, &w);
        let e = run_reducer_step(&rt, &h, &c, &i, 41).unwrap_err();
        assert_eq!((e.module(), e.seq()), (&h, 41));
        (h, e)
    };

    let (h, e) = run(infinite_loop());
    assert_eq!(
        e.to_string(),
        format!("module {h} ran out of fuel after 1000000 units (the per-step budget) in `step` while handling event seq 41")
    );
    assert_eq!(e.fault().unwrap().code(), "out_of_fuel");

    let (_, e) = run(memory_bomb());
    assert_eq!(e.fault().unwrap().code(), "memory_cap");

    let (_, e) = run(constant(b"hello, world"));
    assert_eq!(e.fault().unwrap().code(), "output_not_json");
    assert!(e.to_string().contains("returned output that is not JSON (expected value at line 1 column 1); it begins \"hello, world\""), "{e}");

    let (_, e) = run(constant(br#"{"state":"seven"}"#));
    let Some(Fault::IllTyped {
        what,
        expected,
        diagnostics,
    }) = e.fault()
    else {
        panic!("{e}")
    };
    assert_eq!(
        (what.as_str(), expected.as_str()),
        ("state", "demo/State@1")
    );
    assert_eq!(diagnostics[0].code, "type_mismatch");
    assert!(
        e.to_string()
            .contains("returned state that does not match demo/State@1"),
        "{e}"
    );

    let (_, e) = run(constant(br#"{"state":{"n":-1}}"#));
    assert_eq!(e.fault().unwrap().code(), "ill_typed_output");
    assert!(e.to_string().contains("at /n"), "{e}");

    let (_, e) = run(returns(0x7fff_ffff));
    assert_eq!(e.fault().unwrap().code(), "output_too_large");
    assert!(
        e.to_string()
            .contains("returned an output of 2147483647 bytes, over the cap of 1048576 bytes"),
        "{e}"
    );

    let (_, e) = run(returns(u64::MAX << 32 | 4));
    assert_eq!(e.fault().unwrap().code(), "output_out_of_bounds");

    let (_, e) = run(traps());
    assert!(e.to_string().contains("trapped in `step`"), "{e}");

    // And the runtime still runs honest steps.
    let h = load(&rt, &echo(r#"{"n":1}"#));
    assert!(run_reducer_step(&rt, &h, &c, &i, 42).is_ok());

    // A module that is not loaded is the kernel's problem, not a fault.
    let e = run_reducer_step(&rt, &aos_store::Hash::of(b"x"), &c, &i, 43).unwrap_err();
    assert!(matches!(e, StepError::Kernel { .. }) && e.fault().is_none());
}

fn parse(out: Value) -> Result<aos_kernel::wasm::ReducerOutput, Fault> {
    let s = schemas();
    let c = contract(&s);
    parse_output(out.to_string().as_bytes(), &c)
}

#[test]
fn output_domain_events_and_effects_are_canonicalized() {
    let out = parse(json!({
        "state": null,
        "domain_events": [
            {"schema": "demo/Ping@1", "value": "Go"},
            {"schema": "demo/Ping@1", "value": {"Say": "hi"}},
        ],
        "effects": [{"kind": "timer.set", "params": {"deliver_at_ns": "1970-01-01T00:00:01Z"}, "cap_slot": "timer"}],
        "ann": {"why": "because"},
    }))
    .unwrap();
    assert_eq!(out.state, None);
    assert_eq!(out.domain_events[0].value, json!({"$tag": "Go"}));
    assert_eq!(
        out.domain_events[1].value,
        json!({"$tag": "Say", "$value": "hi"})
    );
    assert_eq!(
        out.effects[0].params,
        json!({"deliver_at_ns": 1_000_000_000, "key": null})
    );
    assert_eq!(out.effects[0].cap_slot.as_deref(), Some("timer"));
    assert_eq!(out.ann, Some(json!({"why": "because"})));
    let bare = parse(json!({"state": {"n": 1}, "domain_events": null, "effects": []})).unwrap();
    assert!(bare.domain_events.is_empty() && bare.effects.is_empty() && bare.ann.is_none());
}

#[test]
fn malformed_outputs_are_refused_precisely() {
    let code = |v: Value| parse(v).unwrap_err();
    let msg = |v: Value| code(v).to_string();
    assert!(msg(json!([1])).contains("the output is an array; it must be an object"));
    assert!(msg(json!({})).contains("no `state` field"));
    assert!(
        msg(json!({"state": null, "domain_event": []})).contains("unknown field `domain_event`")
    );
    assert!(msg(json!({"state": null, "domain_events": {}}))
        .contains("`domain_events` is an object; it must be an array"));
    assert!(msg(json!({"state": null, "domain_events": [{"value": 1}]}))
        .contains("/domain_events/0 needs a `schema`"));
    assert!(matches!(
        code(json!({"state": null, "domain_events": [{"schema": "demo/Other@1", "value": 1}]})),
        Fault::UndeclaredEvent { index: 0, .. }
    ));
    let f =
        code(json!({"state": null, "domain_events": [{"schema": "demo/Ping@1", "value": "Stop"}]}));
    assert!(
        matches!(&f, Fault::IllTyped { what, .. } if what == "domain_events[0].value"),
        "{f}"
    );
    assert!(matches!(
        code(json!({"state": null, "effects": [{"kind": "http.request", "params": {}}]})),
        Fault::UndeclaredEffect { index: 0, .. }
    ));
    assert!(msg(json!({"state": null, "effects": [{"kind": "timer.set", "params": {"deliver_at_ns": 1}, "cap_slot": 3}]})).contains("cap_slot is a number"));
    assert!(
        msg(json!({"state": null, "effects": [{"kind": "timer.set"}]})).contains("has no `params`")
    );
    assert!(
        msg(json!({"state": null, "ann": {"big": 9_007_199_254_740_993u64}})).contains("`ann`")
    );
}
