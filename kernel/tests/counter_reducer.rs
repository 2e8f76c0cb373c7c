//! The counter example (`examples/counter`): its AIR, and its reducer built from Rust
//! with the SDK, run through the typed reducer step.
//!
//! The module is built by `scripts/build-reducers.sh`, not here. It is looked up at
//! `$AOS_COUNTER_WASM`, else `$CARGO_TARGET_DIR/reducers/counter.wasm`, else
//! `<this test's target dir>/reducers/counter.wasm`. When it is missing the test fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use air_fmt::load::{load, Source};
use air_fmt::model::Def;
use air_fmt::{Name, TypeExpr};
use aos_kernel::wasm::{
    run_reducer_step, Contract, InputState, Limits, ReducerInput, Runtime, StepError,
};
use aos_store::{canon, Hash};
use serde_json::{json, Value};

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn counter_wasm() -> (PathBuf, Vec<u8>) {
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("AOS_COUNTER_WASM") {
        tried.push(PathBuf::from(p));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(PathBuf::from(t).join("reducers/counter.wasm"));
    }
    // The test binary lives at <target>/<profile>/deps/<name>.
    if let Some(t) = std::env::current_exe()
        .ok()
        .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
    {
        tried.push(t.join("reducers/counter.wasm"));
    }
    for p in &tried {
        if let Ok(bytes) = std::fs::read(p) {
            return (p.clone(), bytes);
        }
    }
    panic!(
        "the counter reducer is not built (looked at {tried:?}); run scripts/build-reducers.sh \
         with the same CARGO_TARGET_DIR (scripts/env.sh sets it), or set AOS_COUNTER_WASM to a built counter.wasm"
    );
}

/// The counter's schemas, loaded from its AIR sources.
fn schemas() -> BTreeMap<Name, TypeExpr> {
    let dir = repo().join("examples/counter/air");
    let mut sources = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".air.json") {
            sources.push(Source {
                name: p.display().to_string(),
                bytes: std::fs::read(&p).unwrap(),
            });
        }
    }
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    let (set, diags) = load(&sources);
    assert!(diags.is_empty(), "{diags:?}");
    let manifest = set.manifest.as_ref().expect("a manifest").item.clone();
    assert!(
        manifest
            .routing_events
            .iter()
            .any(|r| r.event == name("demo/CounterEvent@1")
                && r.reducer == name("demo/CounterSM@1")
                && r.key_field.is_none()),
        "the manifest routes demo/CounterEvent@1 to demo/CounterSM@1"
    );
    set.defs
        .values()
        .filter_map(|d| match &d.item {
            Def::Schema(s) => Some((s.name.clone(), s.ty.clone())),
            _ => None,
        })
        .collect()
}

struct Counter {
    rt: Runtime,
    module: Hash,
    schemas: BTreeMap<Name, TypeExpr>,
}

impl Counter {
    fn new() -> Counter {
        let (path, wasm) = counter_wasm();
        let rt = Runtime::new(None, Limits::default()).unwrap();
        rt.check_module(&wasm)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let module = Hash::of(&wasm);
        rt.load(&module, &wasm).unwrap();
        Counter {
            rt,
            module,
            schemas: schemas(),
        }
    }

    fn contract(&self) -> Contract<'_> {
        let mut c = Contract::new(&self.schemas, TypeExpr::Ref(name("demo/CounterState@1")));
        c.event = Some(std::borrow::Cow::Owned(TypeExpr::Ref(name(
            "demo/CounterEvent@1",
        ))));
        c
    }

    fn step(
        &self,
        state: Option<&Value>,
        event: &Value,
        seq: u64,
    ) -> Result<(Option<Value>, u64), StepError> {
        let schema = name("demo/CounterEvent@1");
        let input = ReducerInput {
            state: state.map_or(InputState::Null, InputState::Value),
            event_schema: &schema,
            event,
            now_ns: 1_764_000_000_000_000_000 + seq,
            key: None,
            cell_mode: false,
        };
        let c = self.contract();
        let out = run_reducer_step(&self.rt, &self.module, &c, &input, seq)?;
        assert!(out.domain_events.is_empty() && out.effects.is_empty() && out.ann.is_none());
        // Same input: same bytes, same fuel.
        let again = run_reducer_step(&self.rt, &self.module, &c, &input, seq)?;
        assert_eq!(again, out);
        let raw_a = self.raw(&input);
        let raw_b = self.raw(&input);
        assert_eq!(raw_a, raw_b);
        // The module's own output is already canonical JSON.
        let parsed: Value = serde_json::from_slice(&raw_a.0).unwrap();
        assert_eq!(
            String::from_utf8(canon::value_to_vec(&parsed).unwrap()).unwrap(),
            String::from_utf8(raw_a.0.clone()).unwrap(),
            "the SDK's output is not canonical"
        );
        if let Some(s) = &out.state {
            assert_eq!(
                canon::value_to_vec(s).unwrap(),
                serde_json::to_vec(s).unwrap(),
                "state not canonical"
            );
        }
        assert_eq!(out.fuel_used, raw_a.1);
        Ok((out.state, out.fuel_used))
    }

    fn raw(&self, input: &ReducerInput<'_>) -> (Vec<u8>, u64) {
        let mut i = *input;
        let ev = air_fmt::value::canonicalize(
            input.event,
            &TypeExpr::Ref(name("demo/CounterEvent@1")),
            &self.schemas,
        )
        .unwrap();
        i.event = &ev;
        let bytes = aos_kernel::wasm::encode_input(&i).unwrap();
        let out = self.rt.call_step(&self.module, &bytes).unwrap();
        (out.bytes, out.fuel_used)
    }
}

fn st(pc: &str, remaining: u64) -> Value {
    json!({"pc": {"$tag": pc}, "remaining": remaining})
}

#[test]
fn counts_down_from_start_to_done() {
    let c = Counter::new();
    // Sugar and canonical event forms are both accepted (the kernel canonicalizes).
    let start = json!({"Start": {"target": 3}});
    let tick = json!({"$tag": "Tick"});
    let (mut state, fuel) = c.step(None, &start, 1).unwrap();
    assert_eq!(state, Some(st("Counting", 3)));
    println!("fuel of Start{{3}}: {fuel}");
    assert!(
        fuel > 0 && fuel < Limits::DEFAULT_FUEL_PER_STEP / 1000,
        "fuel {fuel}"
    );
    for (seq, expect) in [
        (2, st("Counting", 2)),
        (3, st("Counting", 1)),
        (4, st("Done", 0)),
        (5, st("Done", 0)),
    ] {
        let ev = if seq % 2 == 0 {
            tick.clone()
        } else {
            json!("Tick")
        };
        state = c.step(state.as_ref(), &ev, seq).unwrap().0;
        assert_eq!(state, Some(expect), "after tick at seq {seq}");
    }
    // Start 0 goes straight to Done; a Tick before any Start keeps the state null.
    let (s, _) = c.step(None, &json!({"Start": {"target": 0}}), 6).unwrap();
    assert_eq!(s, Some(st("Done", 0)));
    assert_eq!(c.step(None, &tick, 7).unwrap().0, None);
    let idle = st("Idle", 0);
    assert_eq!(c.step(Some(&idle), &tick, 8).unwrap().0, Some(idle.clone()));
    // A 64-bit target beyond 2^53 travels as a decimal string both ways.
    let big = json!({"Start": {"target": "18446744073709551615"}});
    let (s, _) = c.step(Some(&idle), &big, 9).unwrap();
    assert_eq!(
        s,
        Some(json!({"pc": {"$tag": "Counting"}, "remaining": "18446744073709551615"}))
    );
}

#[test]
fn an_ill_typed_event_is_refused_before_the_module_runs() {
    let c = Counter::new();
    for bad in [
        json!({"Start": {"target": -1}}),
        json!({"Start": {}}),
        json!({"$tag": "Stop"}),
        json!(42),
    ] {
        let err = c.step(None, &bad, 11).unwrap_err();
        assert!(
            matches!(err, StepError::Kernel { seq: 11, .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("demo/CounterEvent@1"), "{err}");
    }
}

#[test]
fn input_the_reducer_cannot_decode_is_refused_not_trapped() {
    // Bypass the kernel's event check: the SDK answers with non-JSON text, which the
    // typed step refuses as output_not_json, showing the SDK's message.
    let c = Counter::new();
    let schema = name("demo/CounterEvent@1");
    let ev = json!({"$tag": "Stop"});
    let input = ReducerInput {
        state: InputState::Null,
        event_schema: &schema,
        event: &ev,
        now_ns: 1,
        key: None,
        cell_mode: false,
    };
    let err = run_reducer_step(
        &c.rt,
        &c.module,
        &Contract::new(&c.schemas, TypeExpr::Ref(name("demo/CounterState@1"))),
        &input,
        3,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("aos-sdk: cannot decode the input"), "{msg}");
    match err {
        StepError::Fault { fault, .. } => assert_eq!(fault.code(), "output_not_json"),
        other => panic!("{other:?}"),
    }
}
