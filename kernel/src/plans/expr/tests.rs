//! Unit tests of every operator, reference and constructor, and property tests: the
//! evaluator never panics and is deterministic on arbitrary expressions and
//! environments.

use super::*;
use proptest::prelude::*;
use serde_json::json;

/// An environment owning its parts.
#[derive(Debug, Clone)]
struct Owned {
    input: Value,
    vars: BTreeMap<String, Value>,
    steps: BTreeMap<String, Value>,
    event: Option<Value>,
}

impl Owned {
    fn env(&self) -> Env<'_> {
        Env {
            input: &self.input,
            vars: &self.vars,
            steps: &self.steps,
            event: self.event.as_ref(),
        }
    }
}

fn sample() -> Owned {
    Owned {
        input: json!({"target": 7, "order": {"id": "o-1", "items": [1, 2, 3]}}),
        vars: BTreeMap::from([
            ("status".to_string(), json!(200)),
            (
                "receipt".to_string(),
                json!({"$tag": "Ok", "$value": {"body": "hi"}}),
            ),
        ]),
        steps: BTreeMap::from([("fetch".to_string(), json!({"handle": "h1"}))]),
        event: Some(json!({"key": "k", "n": 1})),
    }
}

fn parse(v: Value) -> Expr {
    let mut d = Vec::new();
    let e = Expr::parse(&v, "", &mut d);
    assert!(d.is_empty(), "{d:?}");
    e.expect("parses")
}

fn run(v: Value) -> Result<Value, EvalError> {
    eval(&parse(v), &sample().env())
}

/// Apply `op` to literal values, passed through variables.
fn call(op: &str, args: &[Value]) -> Result<Value, EvalError> {
    let mut vars = BTreeMap::new();
    let mut refs = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let name = format!("a{i}");
        vars.insert(name.clone(), a.clone());
        refs.push(Expr::Ref(ExprRef::Var(name)));
    }
    let o = Owned {
        input: Value::Null,
        vars,
        steps: BTreeMap::new(),
        event: None,
    };
    eval(&Expr::Op(op.to_string(), refs), &o.env())
}

fn ok(op: &str, args: &[Value]) -> Value {
    match call(op, args) {
        Ok(v) => v,
        Err(e) => panic!("{op}{args:?}: {e}"),
    }
}

fn type_error(op: &str, args: &[Value]) {
    match call(op, args) {
        Err(EvalError::Type { op: o, .. }) => assert_eq!(o, op),
        other => panic!("{op}{args:?}: expected a type error, got {other:?}"),
    }
}

const BIG: &str = "9007199254740993"; // 2^53 + 1

#[test]
fn refs_into_all_four_environments() {
    assert_eq!(run(json!({"ref": "@plan.input.target"})), Ok(json!(7)));
    assert_eq!(
        run(json!({"ref": "@plan.input.order.id"})),
        Ok(json!("o-1"))
    );
    assert_eq!(
        run(json!({"ref": "@plan.input"})),
        Ok(sample().input.clone())
    );
    assert_eq!(run(json!({"ref": "@var:status"})), Ok(json!(200)));
    assert_eq!(run(json!({"ref": "@step:fetch.handle"})), Ok(json!("h1")));
    assert_eq!(
        run(json!({"ref": "@step:fetch"})),
        Ok(json!({"handle": "h1"}))
    );
    assert_eq!(run(json!({"ref": "@event.key"})), Ok(json!("k")));
    // Variants are entered with $tag and $value.
    let e = json!({"op": "get", "args": [
        {"op": "get", "args": [{"ref": "@var:receipt"}, {"text": "$value"}]},
        {"text": "body"}]});
    assert_eq!(run(e), Ok(json!("hi")));
    assert_eq!(
        run(json!({"op": "get", "args": [{"ref": "@var:receipt"}, {"text": "$tag"}]})),
        Ok(json!("Ok"))
    );
}

#[test]
fn ref_errors_name_the_reference() {
    match run(json!({"ref": "@plan.input.order.missing"})) {
        Err(EvalError::MissingField {
            reference, field, ..
        }) => {
            assert_eq!(reference, "@plan.input.order.missing");
            assert_eq!(field, "missing");
        }
        other => panic!("{other:?}"),
    }
    // A field of a non-object.
    assert!(matches!(
        run(json!({"ref": "@plan.input.target.x"})),
        Err(EvalError::MissingField { found, .. }) if found == "7"
    ));
    assert_eq!(
        run(json!({"ref": "@var:nope"})),
        Err(EvalError::UnknownVar("nope".into()))
    );
    assert_eq!(
        run(json!({"ref": "@step:later"})),
        Err(EvalError::UnknownStep("later".into()))
    );
    let mut o = sample();
    o.event = None;
    assert_eq!(
        eval(&parse(json!({"ref": "@event.key"})), &o.env()),
        Err(EvalError::NoEvent)
    );
    let msg = run(json!({"ref": "@step:fetch.nope"}))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("@step:fetch.nope") && msg.contains("h1"),
        "{msg}"
    );
}

#[test]
fn constants_are_canonical() {
    assert_eq!(run(json!({"nat": 3})), Ok(json!(3)));
    assert_eq!(run(json!({"nat": "3"})), Ok(json!(3)));
    assert_eq!(run(json!({"nat": BIG})), Ok(json!(BIG)));
    assert_eq!(run(json!({"int": -5})), Ok(json!(-5)));
    assert_eq!(
        run(json!({"int": "-9007199254740993"})),
        Ok(json!("-9007199254740993"))
    );
    assert_eq!(
        run(json!({"int": i64::MIN})),
        Ok(json!(i64::MIN.to_string()))
    );
    assert_eq!(
        run(json!({"time_ns": u64::MAX})),
        Ok(json!(u64::MAX.to_string()))
    );
    assert_eq!(run(json!({"duration_ns": 10})), Ok(json!(10)));
    assert_eq!(run(json!({"dec128": "1.50"})), Ok(json!("1.5")));
    assert_eq!(run(json!({"text": "x"})), Ok(json!("x")));
    assert_eq!(run(json!({"bool": true})), Ok(json!(true)));
    assert_eq!(run(json!({"null": {}})), Ok(Value::Null));
    assert_eq!(
        run(json!({"uuid": "6F9619FF-8B86-D011-B42D-00C04FC964FF"})),
        Ok(json!("6f9619ff-8b86-d011-b42d-00c04fc964ff"))
    );
    assert_eq!(run(json!({"bytes_b64": "aGk="})), Ok(json!("aGk=")));
    // Built directly (the parser would refuse these).
    let env = sample();
    for (tag, v) in [
        ("nat", json!(-1)),
        ("dec128", json!("abc")),
        ("hash", json!("nope")),
        ("bytes_b64", json!("***")),
        ("null", json!(1)),
        ("frob", json!(1)),
    ] {
        assert!(
            matches!(eval(&Expr::Const(tag.into(), v), &env.env()), Err(EvalError::BadConst { tag: t, .. }) if t == tag),
            "{tag}"
        );
    }
}

#[test]
fn constructors() {
    assert_eq!(
        run(json!({"record": {"a": {"nat": 1}, "b": {"ref": "@event.key"}}})),
        Ok(json!({"a": 1, "b": "k"}))
    );
    assert_eq!(
        run(json!({"list": [{"nat": 2}, {"nat": 1}, {"nat": 2}]})),
        Ok(json!([2, 1, 2]))
    );
    assert_eq!(
        run(json!({"set": [{"nat": 2}, {"nat": 1}, {"nat": 2}]})),
        Ok(json!([1, 2]))
    );
    assert_eq!(
        run(json!({"set": [{"text": "b"}, {"text": "a"}]})),
        Ok(json!(["a", "b"]))
    );
    assert_eq!(
        run(json!({"map": [{"key": {"text": "b"}, "value": {"nat": 2}},
                           {"key": {"text": "a"}, "value": {"nat": 1}}]})),
        Ok(json!({"a": 1, "b": 2}))
    );
    assert_eq!(
        run(
            json!({"map": [{"key": {"nat": 2}, "value": {"text": "two"}},
                           {"key": {"nat": 1}, "value": {"text": "one"}}]})
        ),
        Ok(json!([[1, "one"], [2, "two"]]))
    );
    assert!(matches!(
        run(json!({"map": [{"key": {"text": "a"}, "value": {"nat": 2}},
                           {"key": {"text": "a"}, "value": {"nat": 1}}]})),
        Err(EvalError::DuplicateKey { .. })
    ));
    assert!(matches!(
        run(json!({"map": [{"key": {"nat": 1}, "value": {"nat": 2}},
                           {"key": {"nat": 1}, "value": {"nat": 1}}]})),
        Err(EvalError::DuplicateKey { .. })
    ));
    assert_eq!(
        run(json!({"variant": {"tag": "Done", "value": {"nat": 1}}})),
        Ok(json!({"$tag": "Done", "$value": 1}))
    );
    assert_eq!(
        run(json!({"variant": {"tag": "Idle"}})),
        Ok(json!({"$tag": "Idle"}))
    );
    // Errors inside constructors propagate.
    assert!(run(json!({"list": [{"ref": "@var:nope"}]})).is_err());
}

#[test]
fn len() {
    assert_eq!(ok("len", &[json!("héllo")]), json!(5));
    assert_eq!(ok("len", &[json!([1, 2])]), json!(2));
    assert_eq!(ok("len", &[json!({"a": 1})]), json!(1));
    assert_eq!(ok("len", &[json!([[1, 2], [3, 4]])]), json!(2));
    type_error("len", &[json!(1)]);
    type_error("len", &[json!(null)]);
}

#[test]
fn get() {
    assert_eq!(ok("get", &[json!({"a": 1}), json!("a")]), json!(1));
    assert_eq!(ok("get", &[json!([10, 20]), json!(1)]), json!(20));
    assert_eq!(
        ok("get", &[json!([[{"x": 1}, "v"]]), json!({"x": 1})]),
        json!("v")
    );
    assert!(matches!(
        call("get", &[json!({"a": 1}), json!("b")]),
        Err(EvalError::MissingKey { key, .. }) if key == "\"b\""
    ));
    assert!(matches!(
        call("get", &[json!([10]), json!(1)]),
        Err(EvalError::IndexOutOfRange { len: 1, .. })
    ));
    assert!(matches!(
        call("get", &[json!([10]), json!(-1)]),
        Err(EvalError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        call("get", &[json!([[1, 2]]), json!("z")]),
        Err(EvalError::MissingKey { .. })
    ));
    type_error("get", &[json!({"a": 1}), json!(1)]);
    type_error("get", &[json!("abc"), json!(0)]);
}

#[test]
fn has() {
    assert_eq!(ok("has", &[json!({"a": 1}), json!("a")]), json!(true));
    assert_eq!(ok("has", &[json!({"a": 1}), json!("b")]), json!(false));
    assert_eq!(ok("has", &[json!(["a", "b"]), json!("b")]), json!(true));
    assert_eq!(ok("has", &[json!([[1, "x"]]), json!(1)]), json!(true));
    assert_eq!(ok("has", &[json!([[1, "x"]]), json!(2)]), json!(false));
    type_error("has", &[json!({"a": 1}), json!(1)]);
    type_error("has", &[json!("abc"), json!("a")]);
}

#[test]
fn equality() {
    assert_eq!(ok("eq", &[json!(1), json!(1)]), json!(true));
    assert_eq!(ok("eq", &[json!(1), json!("1")]), json!(false));
    assert_eq!(
        ok("eq", &[json!(9_007_199_254_740_993u64), json!(BIG)]),
        json!(true)
    );
    assert_eq!(
        ok(
            "eq",
            &[
                json!({"a": [1, {"b": BIG}]}),
                json!({"a": [1, {"b": 9_007_199_254_740_993u64}]})
            ]
        ),
        json!(true)
    );
    assert_eq!(ok("eq", &[json!([1]), json!([1, 2])]), json!(false));
    assert_eq!(ok("ne", &[json!("a"), json!("b")]), json!(true));
    assert_eq!(ok("ne", &[json!(null), json!(null)]), json!(false));
}

#[test]
fn ordering() {
    assert_eq!(ok("lt", &[json!(1), json!(2)]), json!(true));
    assert_eq!(ok("le", &[json!(2), json!(2)]), json!(true));
    assert_eq!(ok("gt", &[json!(-1), json!(2)]), json!(false));
    assert_eq!(ok("ge", &[json!(3), json!(2)]), json!(true));
    // Beyond 2^53, exactly, in either form.
    assert_eq!(
        ok("lt", &[json!("9007199254740992"), json!(BIG)]),
        json!(true)
    );
    // By value, not as text: "10000000000000000" > "9007199254740993".
    assert_eq!(
        ok("gt", &[json!("10000000000000000"), json!(BIG)]),
        json!(true)
    );
    assert_eq!(
        ok("lt", &[json!(9_007_199_254_740_992u64), json!(BIG)]),
        json!(true)
    );
    assert_eq!(
        ok(
            "gt",
            &[json!(u64::MAX.to_string()), json!(i64::MIN.to_string())]
        ),
        json!(true)
    );
    assert_eq!(
        ok("lt", &[json!("-9007199254740993"), json!(-3)]),
        json!(true)
    );
    // Texts by code point: U+FFFD sorts before U+1F600 (UTF-16 would say after).
    assert_eq!(
        ok("lt", &[json!("\u{FFFD}"), json!("\u{1F600}")]),
        json!(true)
    );
    assert_eq!(ok("lt", &[json!("a"), json!("b")]), json!(true));
    assert_eq!(ok("ge", &[json!("b"), json!("ab")]), json!(true));
    type_error("lt", &[json!(1), json!("a")]);
    type_error("gt", &[json!(true), json!(false)]);
    type_error("le", &[json!(1.5), json!(2)]);
    type_error("ge", &[json!([1]), json!([2])]);
}

#[test]
fn booleans() {
    assert_eq!(ok("and", &[json!(true), json!(true)]), json!(true));
    assert_eq!(ok("and", &[json!(true), json!(false)]), json!(false));
    assert_eq!(ok("or", &[json!(false), json!(true)]), json!(true));
    assert_eq!(ok("or", &[json!(false)]), json!(false));
    assert_eq!(ok("not", &[json!(false)]), json!(true));
    // Short circuit: the deciding operand ends evaluation.
    assert_eq!(ok("and", &[json!(false), json!(5)]), json!(false));
    assert_eq!(ok("or", &[json!(true), json!("x")]), json!(true));
    assert_eq!(
        run(json!({"op": "and", "args": [{"bool": false}, {"ref": "@var:nope"}]})),
        Ok(json!(false))
    );
    type_error("and", &[json!(true), json!(5)]);
    type_error("or", &[json!(false), json!("x")]);
    type_error("not", &[json!(1)]);
}

#[test]
fn concat() {
    assert_eq!(
        ok("concat", &[json!("a"), json!("b"), json!("c")]),
        json!("abc")
    );
    assert_eq!(ok("concat", &[json!("a")]), json!("a"));
    assert_eq!(ok("concat", &[json!([1]), json!([2, 3])]), json!([1, 2, 3]));
    type_error("concat", &[json!("a"), json!([1])]);
    type_error("concat", &[json!([1]), json!("a")]);
    type_error("concat", &[json!(1)]);
}

#[test]
fn arithmetic() {
    assert_eq!(ok("add", &[json!(2), json!(3)]), json!(5));
    assert_eq!(ok("sub", &[json!(2), json!(3)]), json!(-1));
    assert_eq!(ok("mul", &[json!(-4), json!(3)]), json!(-12));
    assert_eq!(ok("div", &[json!(7), json!(2)]), json!(3));
    assert_eq!(ok("div", &[json!(-7), json!(2)]), json!(-3));
    assert_eq!(ok("mod", &[json!(7), json!(3)]), json!(1));
    assert_eq!(ok("mod", &[json!(-7), json!(3)]), json!(-1));
    // Crossing 2^53 gives the canonical string form, and back.
    assert_eq!(
        ok("add", &[json!(9_007_199_254_740_991u64), json!(2)]),
        json!(BIG)
    );
    assert_eq!(
        ok("sub", &[json!(BIG), json!(2)]),
        json!(9_007_199_254_740_991u64)
    );
    assert_eq!(
        ok("add", &[json!(i64::MAX), json!(i64::MAX)]),
        json!((2 * i128::from(i64::MAX)).to_string())
    );
    assert_eq!(
        ok("div", &[json!(i64::MIN.to_string()), json!(-1)]),
        json!((-i128::from(i64::MIN)).to_string())
    );
    // Overflow beyond u64::MAX or below i64::MIN.
    for (op, a, b) in [
        ("add", json!(u64::MAX.to_string()), json!(1)),
        ("sub", json!(i64::MIN.to_string()), json!(1)),
        (
            "mul",
            json!(u64::MAX.to_string()),
            json!(u64::MAX.to_string()),
        ),
        ("mul", json!(i64::MIN.to_string()), json!(2)),
    ] {
        assert!(
            matches!(call(op, &[a.clone(), b.clone()]), Err(EvalError::Overflow { op: o, .. }) if o == op),
            "{op} {a} {b}"
        );
    }
    for op in ["div", "mod"] {
        assert!(matches!(
            call(op, &[json!(1), json!(0)]),
            Err(EvalError::DivisionByZero { op: o, .. }) if o == op
        ));
    }
    for op in ["add", "sub", "mul", "div", "mod"] {
        type_error(op, &[json!("1"), json!(1)]);
        type_error(op, &[json!(1), json!(0.5)]);
        type_error(op, &[json!(true), json!(1)]);
    }
    // Non-canonical big-integer strings are text.
    type_error("add", &[json!("09007199254740993"), json!(1)]);
    type_error("add", &[json!("+9007199254740993"), json!(1)]);
    type_error("add", &[json!("99999999999999999999999"), json!(1)]);
}

#[test]
fn text_predicates() {
    assert_eq!(
        ok("starts_with", &[json!("https://x"), json!("https")]),
        json!(true)
    );
    assert_eq!(
        ok("starts_with", &[json!("x"), json!("https")]),
        json!(false)
    );
    assert_eq!(
        ok("ends_with", &[json!("a.json"), json!(".json")]),
        json!(true)
    );
    assert_eq!(
        ok("ends_with", &[json!("a.json"), json!(".txt")]),
        json!(false)
    );
    type_error("starts_with", &[json!("a"), json!(1)]);
    type_error("ends_with", &[json!([1]), json!("a")]);
}

#[test]
fn contains() {
    assert_eq!(ok("contains", &[json!("hello"), json!("ell")]), json!(true));
    assert_eq!(ok("contains", &[json!("hello"), json!("z")]), json!(false));
    assert_eq!(ok("contains", &[json!([1, 2]), json!(2)]), json!(true));
    assert_eq!(ok("contains", &[json!([1, 2]), json!(3)]), json!(false));
    assert_eq!(
        ok("contains", &[json!([BIG]), json!(9_007_199_254_740_993u64)]),
        json!(true)
    );
    type_error("contains", &[json!("hello"), json!(1)]);
    type_error("contains", &[json!({"a": 1}), json!("a")]);
}

#[test]
fn arity_unknown_ops_and_depth() {
    assert!(matches!(
        call("add", &[json!(1)]),
        Err(EvalError::BadArity { found: 1, .. })
    ));
    assert!(matches!(
        call("not", &[json!(true), json!(true)]),
        Err(EvalError::BadArity { found: 2, .. })
    ));
    assert!(matches!(
        call("and", &[]),
        Err(EvalError::BadArity { found: 0, .. })
    ));
    assert!(matches!(
        call("concat", &[]),
        Err(EvalError::BadArity { .. })
    ));
    assert_eq!(
        call("frob", &[json!(1)]),
        Err(EvalError::UnknownOp("frob".into()))
    );
    let mut e = Expr::Const("bool".into(), json!(true));
    for _ in 0..(MAX_DEPTH + 10) {
        e = Expr::Op("not".into(), vec![e]);
    }
    assert_eq!(eval(&e, &sample().env()), Err(EvalError::TooDeep));
}

#[test]
fn truthy_and_literals() {
    assert_eq!(truthy(&json!(true)), Ok(true));
    assert_eq!(truthy(&json!(false)), Ok(false));
    assert!(matches!(truthy(&json!(1)), Err(EvalError::NotBool { found }) if found == "1"));
    let env = sample();
    let lit = ExprOrValue::Value(json!({"method": "GET"}));
    assert_eq!(
        eval_or_value(&lit, &env.env()),
        Ok(json!({"method": "GET"}))
    );
    let ex = ExprOrValue::Expr(parse(json!({"ref": "@var:status"})));
    assert_eq!(eval_or_value(&ex, &env.env()), Ok(json!(200)));
}

#[test]
fn messages_truncate_large_values() {
    let big = json!({"s": "x".repeat(10_000)});
    let msg = call("not", &[big]).unwrap_err().to_string();
    assert!(msg.len() < 200 && msg.contains("..."), "{msg}");
}

#[test]
fn corpus_shapes() {
    // The guard of the saga example: status >= 400.
    let o = sample();
    let g = parse(json!({"op": "ge", "args": [{"ref": "@var:status"}, {"nat": 400}]}));
    assert_eq!(truthy(&eval(&g, &o.env()).unwrap()), Ok(false));
    let filt = parse(json!({"op": "eq", "args": [{"ref": "@event.key"}, {"text": "k"}]}));
    assert_eq!(eval(&filt, &o.env()), Ok(json!(true)));
}

// ---- property tests ----

const NAMES: [&str; 4] = ["a", "b", "$tag", "$value"];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..4).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("".to_string()),
            Just("a".to_string()),
            Just(BIG.to_string()),
            Just(u64::MAX.to_string()),
            Just(i64::MIN.to_string()),
            Just("-0".to_string()),
            "\\PC{0,6}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), inner, 0..4)
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(NAMES.to_vec()).prop_map(String::from),
        0..3,
    )
}

fn arb_ref() -> impl Strategy<Value = ExprRef> {
    prop_oneof![
        arb_path().prop_map(ExprRef::PlanInput),
        prop::sample::select(vec!["a", "b", "c"]).prop_map(|s| ExprRef::Var(s.into())),
        (prop::sample::select(vec!["s1", "s2"]), arb_path())
            .prop_map(|(s, p)| ExprRef::Step(s.into(), p)),
        arb_path().prop_map(ExprRef::Event),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let mut tags: Vec<&'static str> = vec![
        "null",
        "bool",
        "int",
        "nat",
        "dec128",
        "text",
        "bytes_b64",
        "time_ns",
        "duration_ns",
        "hash",
        "uuid",
        "frob",
    ];
    tags.sort_unstable();
    let leaf = prop_oneof![
        arb_ref().prop_map(Expr::Ref),
        (prop::sample::select(tags), arb_json()).prop_map(|(t, v)| Expr::Const(t.into(), v)),
        arb_json().prop_map(|v| Expr::Const("nat".into(), v)),
    ];
    let mut ops: Vec<&'static str> = OPS.iter().map(|(n, _, _)| *n).collect();
    ops.push("frob");
    leaf.prop_recursive(5, 64, 4, move |inner| {
        prop_oneof![
            4 => (prop::sample::select(ops.clone()), prop::collection::vec(inner.clone(), 0..4))
                .prop_map(|(op, args)| Expr::Op(op.into(), args)),
            1 => prop::collection::btree_map(prop::sample::select(NAMES.to_vec()), inner.clone(), 0..3)
                .prop_map(|m| Expr::Record(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            1 => prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::List),
            1 => prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::Set),
            1 => prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(Expr::Map),
            1 => (prop::sample::select(NAMES.to_vec()), prop::option::of(inner))
                .prop_map(|(t, v)| Expr::Variant(t.into(), v.map(Box::new))),
        ]
    })
}

fn arb_env() -> impl Strategy<Value = Owned> {
    let names = || prop::sample::select(vec!["a", "b", "c", "s1", "s2"]).prop_map(String::from);
    (
        arb_json(),
        prop::collection::btree_map(names(), arb_json(), 0..4),
        prop::collection::btree_map(names(), arb_json(), 0..3),
        prop::option::of(arb_json()),
    )
        .prop_map(|(input, vars, steps, event)| Owned {
            input,
            vars,
            steps,
            event,
        })
}

/// True when no JSON number in `v` lies beyond ±(2^53−1).
fn safe_numbers(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64().map_or_else(
            || n.as_u64().is_none_or(|u| i128::from(u) <= MAX_SAFE),
            |i| i128::from(i).abs() <= MAX_SAFE,
        ),
        Value::Array(a) => a.iter().all(safe_numbers),
        Value::Object(m) => m.values().all(safe_numbers),
        _ => true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Never panics (a panic fails the property), and the same inputs give the same
    /// output, error messages included.
    #[test]
    fn eval_is_total_and_deterministic(e in arb_expr(), env in arb_env()) {
        let first = eval(&e, &env.env());
        let second = eval(&e, &env.env());
        prop_assert_eq!(&first, &second);
        if let Err(err) = &first {
            prop_assert!(err.to_string().chars().count() < 400);
        }
        if let Ok(v) = &first {
            let _ = truthy(v);
        }
    }

    /// Arithmetic on canonical integers is exact and its output canonical.
    #[test]
    fn arithmetic_matches_i128(x in any::<i64>(), y in any::<i64>(), op in prop::sample::select(vec!["add", "sub", "mul", "div", "mod"])) {
        let canon = |n: i64| aos_store::canon::i64_value(n);
        let got = call(op, &[canon(x), canon(y)]);
        let (a, b) = (i128::from(x), i128::from(y));
        let want = match op {
            "add" => a.checked_add(b),
            "sub" => a.checked_sub(b),
            "mul" => a.checked_mul(b),
            "div" => a.checked_div(b),
            _ => a.checked_rem(b),
        }
        .filter(|n| (INT_MIN..=INT_MAX).contains(n));
        match (got, want) {
            (Ok(v), Some(n)) => {
                prop_assert!(safe_numbers(&v));
                prop_assert_eq!(as_int(&v), Some(n));
            }
            (Err(EvalError::DivisionByZero { .. }), _) => prop_assert_eq!(y, 0),
            (Err(EvalError::Overflow { .. }), None) => {}
            (got, want) => prop_assert!(false, "{op} {x} {y}: {got:?} vs {want:?}"),
        }
    }

    /// Ordering of canonical integers agrees with i128 ordering, whatever their form.
    #[test]
    fn comparison_is_exact(x in any::<i64>(), y in any::<u64>()) {
        let a = aos_store::canon::i64_value(x);
        let b = aos_store::canon::u64_value(y);
        prop_assert_eq!(call("lt", &[a.clone(), b.clone()]), Ok(Value::Bool(i128::from(x) < i128::from(y))));
        prop_assert_eq!(call("eq", &[a, b]), Ok(Value::Bool(i128::from(x) == i128::from(y))));
    }

    /// Sets come out sorted and deduplicated whatever the input order.
    #[test]
    fn sets_are_canonical(items in prop::collection::vec(arb_json(), 0..6)) {
        let vars: BTreeMap<String, Value> =
            items.iter().enumerate().map(|(i, v)| (format!("v{i}"), v.clone())).collect();
        let exprs: Vec<Expr> = vars.keys().map(|k| Expr::Ref(ExprRef::Var(k.clone()))).collect();
        let mut rev = exprs.clone();
        rev.reverse();
        let env = Owned { input: Value::Null, vars, steps: BTreeMap::new(), event: None };
        let a = eval(&Expr::Set(exprs), &env.env());
        prop_assert_eq!(&a, &eval(&Expr::Set(rev), &env.env()));
        let Ok(Value::Array(out)) = a else { return Err(TestCaseError::fail("a set is an array")) };
        let keys: Vec<Vec<u8>> = out.iter().map(canonical_bytes).collect();
        prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
