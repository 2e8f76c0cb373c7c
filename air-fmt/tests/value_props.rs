//! Properties of the typed value canonicalizer (`air_fmt::value`): both JSON lenses of
//! one value canonicalize identically, canonical output is a fixed point, arbitrary
//! JSON against arbitrary types never panics, and the 64-bit, dec128, RFC 3339, set
//! and map rules hold on generated inputs.

use std::collections::BTreeMap;

use air_fmt::value::{canonicalize, typed_value_hash};
use air_fmt::{Name, TypeExpr};
use aos_store::canon::{i64_value, to_vec, u64_value, MAX_SAFE_INT};
use aos_store::Hash;
use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::{json, Map, Value};

type Schemas = BTreeMap<Name, TypeExpr>;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

// ---------------------------------------------------------------------------------
// Types

const SAFE_FIELDS: [&str; 4] = ["a", "b", "c", "d"];
const SAFE_ARMS: [&str; 3] = ["A", "B", "C"];
/// Member names that collide with lens syntax.
const NASTY: [&str; 16] = [
    "record", "variant", "map", "option", "none", "null", "text", "nat", "list", "unit", "$tag",
    "$value", "key", "value", "tag", "a/b~",
];

fn leaf_type(refs: Vec<Name>) -> BoxedStrategy<TypeExpr> {
    let prims = prop_oneof![
        Just(TypeExpr::Bool),
        Just(TypeExpr::Int),
        Just(TypeExpr::Nat),
        Just(TypeExpr::Dec128),
        Just(TypeExpr::Bytes),
        Just(TypeExpr::Text),
        Just(TypeExpr::Time),
        Just(TypeExpr::Duration),
        Just(TypeExpr::Hash),
        Just(TypeExpr::Uuid),
        Just(TypeExpr::Unit),
    ];
    if refs.is_empty() {
        prims.boxed()
    } else {
        prop_oneof![4 => prims, 1 => proptest::sample::select(refs).prop_map(TypeExpr::Ref)].boxed()
    }
}

fn key_type() -> impl Strategy<Value = TypeExpr> {
    prop_oneof![
        Just(TypeExpr::Text),
        Just(TypeExpr::Int),
        Just(TypeExpr::Nat),
        Just(TypeExpr::Uuid),
        Just(TypeExpr::Hash),
    ]
}

fn arb_type(refs: Vec<Name>, safe: bool) -> BoxedStrategy<TypeExpr> {
    let fields: Vec<&'static str> = if safe {
        SAFE_FIELDS.to_vec()
    } else {
        SAFE_FIELDS.iter().chain(NASTY.iter()).copied().collect()
    };
    let arms: Vec<&'static str> = if safe {
        SAFE_ARMS.to_vec()
    } else {
        SAFE_ARMS.iter().chain(NASTY.iter()).copied().collect()
    };
    leaf_type(refs)
        .prop_recursive(3, 24, 4, move |inner| {
            let f = proptest::sample::select(fields.clone()).prop_map(String::from);
            let a = proptest::sample::select(arms.clone()).prop_map(String::from);
            prop_oneof![
                prop::collection::btree_map(f, inner.clone(), 0..4).prop_map(TypeExpr::Record),
                prop::collection::btree_map(a, inner.clone(), 1..4).prop_map(TypeExpr::Variant),
                inner.clone().prop_map(|t| TypeExpr::List(Box::new(t))),
                inner.clone().prop_map(|t| TypeExpr::Set(Box::new(t))),
                (key_type(), inner.clone())
                    .prop_map(|(k, v)| TypeExpr::Map(Box::new(k), Box::new(v))),
                inner.prop_map(|t| TypeExpr::Option(Box::new(t))),
            ]
        })
        .boxed()
}

fn resolve<'a>(mut t: &'a TypeExpr, s: &'a Schemas) -> &'a TypeExpr {
    while let TypeExpr::Ref(n) = t {
        t = &s[n];
    }
    t
}

// ---------------------------------------------------------------------------------
// Values: a model of a typed value, generated for a type, rendered in either lens.

#[derive(Debug, Clone, PartialEq)]
enum M {
    Bool(bool),
    Int(i64),
    Nat(u64),
    /// Significant digits (no leading zeros; empty for zero), scale, sign.
    Dec(String, i32, bool),
    Bytes(Vec<u8>),
    Text(String),
    Time(u64),
    Dur(i64),
    Hash([u8; 32]),
    Uuid([u8; 16]),
    Unit,
    Record(Vec<(String, M)>),
    Variant(String, Box<M>),
    List(Vec<M>),
    Set(Vec<M>),
    Map(Vec<(M, M)>),
    Opt(Option<Box<M>>),
}

fn boundary_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..100,
        (MAX_SAFE_INT - 3)..=(MAX_SAFE_INT + 3),
        (u64::MAX - 3)..=u64::MAX,
    ]
}

fn boundary_i64() -> impl Strategy<Value = i64> {
    let s = MAX_SAFE_INT as i64;
    prop_oneof![
        any::<i64>(),
        -100i64..100,
        (s - 3)..=(s + 3),
        (-s - 3)..=(-s + 3),
        Just(i64::MIN),
        Just(i64::MAX),
    ]
}

fn arb_value(t: &TypeExpr, s: &Schemas) -> BoxedStrategy<M> {
    match t {
        TypeExpr::Bool => any::<bool>().prop_map(M::Bool).boxed(),
        TypeExpr::Int => boundary_i64().prop_map(M::Int).boxed(),
        TypeExpr::Nat => boundary_u64().prop_map(M::Nat).boxed(),
        TypeExpr::Dec128 => ("(|[1-9][0-9]{0,33})", -40i32..40, any::<bool>())
            .prop_map(|(d, sc, n)| M::Dec(d, sc, n))
            .boxed(),
        TypeExpr::Bytes => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(M::Bytes)
            .boxed(),
        TypeExpr::Text => "[a-c \"\\\\é😀]{0,5}".prop_map(M::Text).boxed(),
        TypeExpr::Time => boundary_u64().prop_map(M::Time).boxed(),
        TypeExpr::Duration => boundary_i64().prop_map(M::Dur).boxed(),
        TypeExpr::Hash => any::<[u8; 32]>().prop_map(M::Hash).boxed(),
        TypeExpr::Uuid => any::<[u8; 16]>().prop_map(M::Uuid).boxed(),
        TypeExpr::Unit => Just(M::Unit).boxed(),
        TypeExpr::Record(fields) => fields
            .iter()
            .map(|(k, ft)| {
                let k = k.clone();
                arb_value(ft, s).prop_map(move |m| (k.clone(), m))
            })
            .collect::<Vec<_>>()
            .prop_map(M::Record)
            .boxed(),
        TypeExpr::Variant(arms) => Union::new(arms.iter().map(|(k, at)| {
            let k = k.clone();
            arb_value(at, s)
                .prop_map(move |m| M::Variant(k.clone(), Box::new(m)))
                .boxed()
        }))
        .boxed(),
        TypeExpr::List(e) => prop::collection::vec(arb_value(e, s), 0..4)
            .prop_map(M::List)
            .boxed(),
        TypeExpr::Set(e) => prop::collection::vec(arb_value(e, s), 0..4)
            .prop_map(M::Set)
            .boxed(),
        TypeExpr::Map(k, v) => prop::collection::vec((arb_value(k, s), arb_value(v, s)), 0..4)
            .prop_map(|kv| {
                let mut out: Vec<(M, M)> = Vec::new();
                for (k, v) in kv {
                    if !out.iter().any(|(k2, _)| *k2 == k) {
                        out.push((k, v));
                    }
                }
                M::Map(out)
            })
            .boxed(),
        TypeExpr::Option(i) => prop_oneof![
            Just(M::Opt(None)),
            arb_value(i, s).prop_map(|m| M::Opt(Some(Box::new(m))))
        ]
        .boxed(),
        TypeExpr::Ref(n) => arb_value(&s[n], s),
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Sugar,
    Tagged,
    Mixed,
}

struct Lens {
    mode: Mode,
    seed: u64,
}

impl Lens {
    fn coin(&mut self) -> bool {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed & 1 == 1
    }
    fn pick(&mut self, n: u64) -> u64 {
        self.coin();
        (self.seed >> 8) % n
    }
    fn tagged(&mut self) -> bool {
        match self.mode {
            Mode::Sugar => false,
            Mode::Tagged => true,
            Mode::Mixed => self.coin(),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn uuid_text(u: &[u8; 16]) -> String {
    let h = hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A 64-bit integer as a number or as a decimal string (either is accepted).
fn int_json(n: i128, lens: &mut Lens) -> Value {
    if n.unsigned_abs() <= u128::from(MAX_SAFE_INT) && lens.coin() {
        json!(n as i64)
    } else {
        json!(n.to_string())
    }
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Format ns since the epoch as RFC 3339 at a UTC offset (minutes), with the fraction
/// written to `digits` places when that loses nothing.
fn rfc3339(ns: u64, offset_min: i64, digits: usize) -> String {
    let secs = (ns / 1_000_000_000) as i64 + offset_min * 60;
    let frac = ns % 1_000_000_000;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut f = format!("{frac:09}");
    while f.len() > digits && f.ends_with('0') {
        f.pop();
    }
    let f = if f.is_empty() {
        String::new()
    } else {
        format!(".{f}")
    };
    let off = if offset_min == 0 && digits.is_multiple_of(2) {
        "Z".to_string()
    } else {
        let sign = if offset_min < 0 { '-' } else { '+' };
        let a = offset_min.abs();
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{f}{off}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Decimal text of digits × 10^scale in one of several spellings.
fn dec_text(digits: &str, scale: i32, neg: bool, lens: &mut Lens) -> String {
    let sign = if neg {
        "-"
    } else if lens.coin() {
        "+"
    } else {
        ""
    };
    let digits = if digits.is_empty() { "0" } else { digits };
    match lens.pick(3) {
        0 => format!("{sign}{digits}e{scale}"),
        1 => format!("{sign}00{digits}0E{}", scale - 1),
        _ => {
            // Plain positional form with padding zeros on both sides.
            let mut s = String::from(sign);
            if scale >= 0 {
                s.push_str(digits);
                s.extend(std::iter::repeat_n('0', scale as usize));
                s.push_str(".00");
            } else {
                let k = (-scale) as usize;
                let padded = format!("{}{digits}", "0".repeat(k.saturating_sub(digits.len()) + 1));
                let (a, b) = padded.split_at(padded.len() - k);
                s.push_str(a);
                s.push('.');
                s.push_str(b);
                s.push('0');
            }
            s
        }
    }
}

/// Whether a type's sugar reading accepts an object with an arbitrary single key (a
/// text map, possibly under options), which makes `{"option": …}`-style wrappers
/// ambiguous; the generator then avoids them, as a careful author would.
fn absorbs(t: &TypeExpr, s: &Schemas) -> bool {
    match resolve(t, s) {
        TypeExpr::Option(i) => absorbs(i, s),
        TypeExpr::Map(k, _) => matches!(resolve(k, s), TypeExpr::Text),
        _ => false,
    }
}

fn tag(k: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(k.to_string(), v);
    Value::Object(m)
}

fn render(m: &M, t: &TypeExpr, s: &Schemas, lens: &mut Lens) -> Value {
    let t = resolve(t, s);
    let tagged = lens.tagged();
    match (m, t) {
        (M::Bool(b), _) => {
            if tagged {
                json!({"bool": b})
            } else {
                json!(b)
            }
        }
        (M::Int(n), _) => {
            let v = int_json((*n).into(), lens);
            if tagged {
                json!({ "int": v })
            } else {
                v
            }
        }
        (M::Nat(n), _) => {
            let v = int_json((*n).into(), lens);
            if tagged {
                json!({ "nat": v })
            } else {
                v
            }
        }
        (M::Dur(n), _) => {
            let v = int_json((*n).into(), lens);
            match (tagged, lens.coin()) {
                (false, _) => v,
                (true, true) => json!({ "duration": v }),
                (true, false) => json!({ "duration_ns": v }),
            }
        }
        (M::Time(n), _) => {
            let rfc = lens.coin();
            let v = if rfc {
                let off = lens.pick(2 * 24 * 60 - 1) as i64 - (24 * 60 - 1);
                json!(rfc3339(*n, off, lens.pick(10) as usize))
            } else {
                int_json((*n).into(), lens)
            };
            match (tagged, rfc || lens.coin()) {
                (false, _) => v,
                (true, true) => json!({ "time": v }),
                (true, false) => json!({ "time_ns": v }),
            }
        }
        (M::Dec(d, sc, neg), _) => {
            let v = json!(dec_text(d, *sc, *neg, lens));
            if tagged {
                json!({ "dec128": v })
            } else {
                v
            }
        }
        (M::Bytes(b), _) => {
            let mut text = b64(b);
            if lens.coin() {
                text = text.trim_end_matches('=').to_string();
            }
            match (tagged, lens.coin()) {
                (false, _) => json!(text),
                (true, true) => json!({ "bytes": text }),
                (true, false) => json!({ "bytes_b64": text }),
            }
        }
        (M::Text(x), _) => {
            if tagged {
                json!({ "text": x })
            } else {
                json!(x)
            }
        }
        (M::Hash(h), _) => {
            let v = json!(format!("blake3:{}", hex(h)));
            if tagged {
                json!({ "hash": v })
            } else {
                v
            }
        }
        (M::Uuid(u), _) => {
            let mut text = uuid_text(u);
            if lens.coin() {
                text = text.to_uppercase();
            }
            if tagged {
                json!({ "uuid": text })
            } else {
                json!(text)
            }
        }
        (M::Unit, _) => {
            if tagged {
                json!({"unit": {}})
            } else {
                json!({})
            }
        }
        (M::Record(fields), TypeExpr::Record(ft)) => {
            let mut body = Map::new();
            for (k, x) in fields {
                // A none option field may be left out.
                if matches!(x, M::Opt(None)) && lens.coin() {
                    continue;
                }
                body.insert(k.clone(), render(x, &ft[k], s, lens));
            }
            if tagged {
                json!({ "record": body })
            } else {
                Value::Object(body)
            }
        }
        (M::Variant(arm, x), TypeExpr::Variant(at)) => {
            let at = &at[arm];
            let unit = matches!(resolve(at, s), TypeExpr::Unit);
            if tagged {
                if unit && lens.coin() {
                    json!({"variant": {"tag": arm}})
                } else {
                    json!({"variant": {"tag": arm, "value": render(x, at, s, lens)}})
                }
            } else {
                match lens.pick(3) {
                    0 if unit => json!(arm),
                    1 if unit => json!({ "$tag": arm }),
                    1 => json!({"$tag": arm, "$value": render(x, at, s, lens)}),
                    _ => tag(arm, render(x, at, s, lens)),
                }
            }
        }
        (M::List(xs), TypeExpr::List(e)) => {
            let items: Vec<Value> = xs.iter().map(|x| render(x, e, s, lens)).collect();
            if tagged {
                json!({ "list": items })
            } else {
                Value::Array(items)
            }
        }
        (M::Set(xs), TypeExpr::Set(e)) => {
            let mut items: Vec<Value> = xs.iter().map(|x| render(x, e, s, lens)).collect();
            // Repeat and reorder: sets do not care.
            if let Some(first) = xs.first() {
                items.push(render(first, e, s, lens));
            }
            items.reverse();
            if tagged {
                json!({ "set": items })
            } else {
                Value::Array(items)
            }
        }
        (M::Map(kv), TypeExpr::Map(kt, vt)) => {
            let text_keys = matches!(resolve(kt, s), TypeExpr::Text);
            let mut pairs: Vec<(Value, Value)> = kv
                .iter()
                .map(|(k, v)| (render(k, kt, s, lens), render(v, vt, s, lens)))
                .collect();
            pairs.reverse();
            let entry_objects = lens.coin();
            let entries = |pairs: Vec<(Value, Value)>| -> Value {
                Value::Array(
                    pairs
                        .into_iter()
                        .map(|(k, v)| {
                            if entry_objects {
                                json!({"key": k, "value": v})
                            } else {
                                json!([k, v])
                            }
                        })
                        .collect(),
                )
            };
            // A text map under the tagged lens keeps the `{"map": …}` wrapper only when
            // the value type cannot read the entries as a value of its own.
            let wrap_ok = !text_keys
                || (!pairs.is_empty()
                    && entry_objects
                    && !matches!(
                        resolve(vt, s),
                        TypeExpr::Map(..)
                            | TypeExpr::List(_)
                            | TypeExpr::Set(_)
                            | TypeExpr::Option(_)
                    ));
            if tagged && wrap_ok {
                json!({ "map": entries(pairs) })
            } else {
                // Object form when every key renders as a plain string.
                let as_object = lens.coin();
                let keys: Option<Vec<String>> = pairs
                    .iter()
                    .map(|(k, _)| match k {
                        Value::String(x) => Some(x.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect();
                match keys {
                    Some(keys) if as_object || text_keys && !tagged => Value::Object(
                        keys.into_iter()
                            .zip(pairs.into_iter().map(|(_, v)| v))
                            .collect(),
                    ),
                    _ => entries(pairs),
                }
            }
        }
        (M::Opt(None), TypeExpr::Option(i)) => {
            if tagged && !absorbs(i, s) {
                match lens.pick(3) {
                    0 => json!({"none": {}}),
                    1 => json!({"null": {}}),
                    _ => json!({ "option": null }),
                }
            } else {
                Value::Null
            }
        }
        (M::Opt(Some(x)), TypeExpr::Option(i)) => {
            let inner = render(x, i, s, lens);
            if tagged && !absorbs(i, s) {
                json!({ "option": inner })
            } else {
                inner
            }
        }
        (m, t) => panic!("model {m:?} does not fit {}", t.describe()),
    }
}

fn typed_case(safe: bool) -> impl Strategy<Value = (Schemas, TypeExpr, M)> {
    let a = name("t/A@1");
    arb_type(vec![], safe)
        .prop_flat_map(move |sa| {
            let schemas: Schemas = [(a.clone(), sa)].into_iter().collect();
            (Just(schemas), arb_type(vec![a.clone()], safe))
        })
        .prop_flat_map(|(s, t)| {
            let v = arb_value(&t, &s);
            (Just(s), Just(t), v)
        })
}

// ---------------------------------------------------------------------------------
// Arbitrary JSON

fn arb_json() -> impl Strategy<Value = Value> {
    let words: Vec<&'static str> = SAFE_FIELDS
        .iter()
        .chain(SAFE_ARMS.iter())
        .chain(NASTY.iter())
        .chain(
            [
                "bool",
                "int",
                "dec128",
                "bytes",
                "bytes_b64",
                "time",
                "time_ns",
                "duration",
                "duration_ns",
                "hash",
                "uuid",
                "set",
                "",
            ]
            .iter(),
        )
        .copied()
        .collect();
    let strings = prop_oneof![
        proptest::sample::select(words.clone()).prop_map(String::from),
        Just("1.50".to_string()),
        Just("1e3".to_string()),
        Just("-9007199254740993".to_string()),
        Just("18446744073709551616".to_string()),
        Just("2024-02-29T23:59:59.999999999+05:30".to_string()),
        Just("123E4567-E89B-12D3-A456-426614174000".to_string()),
        Just(format!("blake3:{}", "0a".repeat(32))),
        Just("aGk".to_string()),
        ".{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        strings.prop_map(Value::String),
    ];
    let keys = proptest::sample::select(words);
    leaf.prop_recursive(5, 64, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone().prop_map(String::from), inner.clone(), 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            (keys.clone(), inner).prop_map(|(k, v)| tag(k, v)),
        ]
    })
}

fn arb_schemas_and_type() -> impl Strategy<Value = (Schemas, TypeExpr)> {
    let names = vec![name("t/A@1"), name("t/B@1"), name("t/C@1")];
    let loose = || {
        prop_oneof![
            3 => arb_type(names.clone(), false),
            1 => proptest::sample::select(names.clone()).prop_map(TypeExpr::Ref),
        ]
    };
    (loose(), loose(), loose()).prop_map(|(a, b, t)| {
        // t/C@1 is never defined; A and B may refer to each other and themselves.
        let s: Schemas = [(name("t/A@1"), a), (name("t/B@1"), b)]
            .into_iter()
            .collect();
        (s, t)
    })
}

// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn sugar_tagged_and_mixed_lenses_agree((s, t, m) in typed_case(true), seed in 1u64..) {
        let sugar = render(&m, &t, &s, &mut Lens { mode: Mode::Sugar, seed });
        let tagged = render(&m, &t, &s, &mut Lens { mode: Mode::Tagged, seed });
        let mixed = render(&m, &t, &s, &mut Lens { mode: Mode::Mixed, seed: seed.rotate_left(17) | 1 });
        let a = canonicalize(&sugar, &t, &s);
        prop_assert!(a.is_ok(), "sugar {} at {}: {:?}", sugar, t.describe(), a);
        let a = a.unwrap();
        prop_assert_eq!(canonicalize(&tagged, &t, &s), Ok(a.clone()), "tagged {}", tagged);
        prop_assert_eq!(canonicalize(&mixed, &t, &s), Ok(a.clone()), "mixed {}", mixed);
        prop_assert_eq!(canonicalize(&a, &t, &s), Ok(a.clone()), "not a fixed point");
        prop_assert!(to_vec(&a).is_ok(), "canonical value {} has no canonical JSON", a);
        let sh = Hash::of(b"schema");
        let h = typed_value_hash(&sh, &a);
        prop_assert_eq!(h, typed_value_hash(&sh, &canonicalize(&tagged, &t, &s).unwrap()));
        prop_assert_ne!(h, typed_value_hash(&Hash::of(b"another schema, same shape"), &a));
    }

    #[test]
    fn colliding_names_still_give_fixed_points((s, t, m) in typed_case(false), seed in 1u64..) {
        // Member names such as `record`, `none` or `$tag` make some objects readable two
        // ways; whatever reading wins, its canonical form must read back as itself, and
        // plain sugar (which is tried first) must always be accepted.
        for mode in [Mode::Sugar, Mode::Tagged, Mode::Mixed] {
            let v = render(&m, &t, &s, &mut Lens { mode, seed });
            let r = canonicalize(&v, &t, &s);
            if let Mode::Sugar = mode {
                prop_assert!(r.is_ok(), "sugar {} at {}: {:?}", v, t.describe(), r);
            }
            if let Ok(c) = r {
                prop_assert_eq!(canonicalize(&c, &t, &s), Ok(c.clone()));
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics((s, t) in arb_schemas_and_type(), v in arb_json()) {
        match canonicalize(&v, &t, &s) {
            Ok(c) => {
                prop_assert_eq!(canonicalize(&c, &t, &s), Ok(c.clone()), "input {}", v);
                prop_assert!(to_vec(&c).is_ok());
            }
            Err(d) => {
                prop_assert!(!d.is_empty());
                for d in &d {
                    // Every pointer names a place in the input.
                    prop_assert!(v.pointer(&d.pointer).is_some(), "{} not in {}", d.pointer, v);
                    prop_assert!(d.expected.is_some() && d.found.is_some(), "{:?}", d);
                }
            }
        }
    }

    #[test]
    fn arbitrary_json_against_generated_values_never_panics((s, t, _m) in typed_case(false), v in arb_json()) {
        if let Ok(c) = canonicalize(&v, &t, &s) {
            prop_assert_eq!(canonicalize(&c, &t, &s), Ok(c.clone()));
        }
    }

    #[test]
    fn integers_round_trip_at_the_boundary(delta in -5i64..=5, neg in any::<bool>()) {
        let n = MAX_SAFE_INT as i64 + delta;
        let n = if neg { -n } else { n };
        let int = TypeExpr::Int;
        let dur = TypeExpr::Duration;
        let want = i64_value(n);
        prop_assert_eq!(want.is_number(), n.unsigned_abs() <= MAX_SAFE_INT);
        for t in [&int, &dur] {
            prop_assert_eq!(canonicalize(&json!(n.to_string()), t, &()), Ok(want.clone()));
            prop_assert_eq!(canonicalize(&json!(n), t, &()), Ok(want.clone()));
            prop_assert_eq!(canonicalize(&want, t, &()), Ok(want.clone()));
        }
        let u = n.unsigned_abs();
        let want = u64_value(u);
        for t in [&TypeExpr::Nat, &TypeExpr::Time] {
            prop_assert_eq!(canonicalize(&json!(u.to_string()), t, &()), Ok(want.clone()));
            prop_assert_eq!(canonicalize(&json!(u), t, &()), Ok(want.clone()));
        }
        if neg {
            prop_assert!(canonicalize(&json!(n), &TypeExpr::Nat, &()).is_err());
        }
    }

    #[test]
    fn dec128_spellings_normalize_alike(digits in "(|[1-9][0-9]{0,33})", scale in -60i32..60, neg in any::<bool>(), seed in 1u64..) {
        let t = TypeExpr::Dec128;
        let mut lens = Lens { mode: Mode::Mixed, seed };
        let texts: Vec<String> = (0..4).map(|_| dec_text(&digits, scale, neg, &mut lens)).collect();
        let outs: Vec<_> = texts.iter().map(|x| canonicalize(&json!(x), &t, &())).collect();
        let c = outs[0].clone();
        prop_assert!(c.is_ok(), "{}: {:?}", texts[0], c);
        for o in &outs {
            prop_assert_eq!(o, &c, "{:?}", texts);
        }
        let c = c.unwrap();
        let s = c.as_str().unwrap();
        // No exponent, sign only when negative, no padding zeros.
        prop_assert!(!s.contains(['e', 'E', '+']));
        prop_assert!(!s.ends_with('.'));
        prop_assert!(!(s.contains('.') && s.ends_with('0')));
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        prop_assert!(unsigned == "0" || !unsigned.starts_with('0') || unsigned.starts_with("0."));
        prop_assert_eq!(s.starts_with('-'), neg && !digits.is_empty());
        // The same number: its significant digits are the generated ones.
        let sig: String = unsigned.chars().filter(|c| *c != '.').collect::<String>();
        let sig = sig.trim_start_matches('0').trim_end_matches('0');
        prop_assert_eq!(sig, digits.trim_end_matches('0'));
        prop_assert_eq!(canonicalize(&c, &t, &()), Ok(c.clone()));
    }

    #[test]
    fn rfc3339_round_trips(ns in any::<u64>(), off in -(24 * 60 - 1)..(24i64 * 60), digits in 0usize..10) {
        let text = rfc3339(ns, off, digits);
        prop_assert_eq!(canonicalize(&json!(text), &TypeExpr::Time, &()), Ok(u64_value(ns)), "{}", text);
    }

    #[test]
    fn sets_are_deduplicated_and_sorted(xs in prop::collection::vec(boundary_i64(), 0..20)) {
        let t = TypeExpr::Set(Box::new(TypeExpr::Int));
        let mut want: Vec<(Vec<u8>, Value)> = xs.iter().map(|&x| (to_vec(&i64_value(x)).unwrap(), i64_value(x))).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        want.dedup();
        let want = Value::Array(want.into_iter().map(|(_, v)| v).collect());
        let input: Vec<Value> = xs.iter().rev().map(|x| json!(x.to_string())).collect();
        prop_assert_eq!(canonicalize(&json!(input), &t, &()), Ok(want));
    }

    #[test]
    fn map_keys_are_sorted_by_canonical_bytes(keys in prop::collection::btree_set(boundary_i64(), 0..12), dup in any::<prop::sample::Index>()) {
        let t = TypeExpr::Map(Box::new(TypeExpr::Int), Box::new(TypeExpr::Text));
        let keys: Vec<i64> = keys.into_iter().collect();
        let entries: Vec<Value> = keys.iter().map(|k| json!([k.to_string(), format!("v{k}")])).collect();
        let got = canonicalize(&Value::Array(entries.clone()), &t, &()).unwrap();
        let got_keys: Vec<Vec<u8>> = got.as_array().unwrap().iter().map(|e| to_vec(&e[0]).unwrap()).collect();
        prop_assert_eq!(got_keys.len(), keys.len());
        prop_assert!(got_keys.windows(2).all(|w| w[0] < w[1]));
        for e in got.as_array().unwrap() {
            let k: i64 = match &e[0] { Value::String(s) => s.parse().unwrap(), n => n.as_i64().unwrap() };
            prop_assert_eq!(&e[1], &json!(format!("v{k}")));
        }
        if !keys.is_empty() {
            let mut with_dup = entries.clone();
            let k = keys[dup.index(keys.len())];
            with_dup.push(json!([k, "again"]));
            let d = canonicalize(&Value::Array(with_dup), &t, &()).unwrap_err();
            prop_assert_eq!(d.len(), 1);
            prop_assert_eq!(d[0].code, "duplicate_key");
        }
    }
}

#[test]
fn same_shape_different_schema_different_identity() {
    let t = TypeExpr::Record(
        [
            ("x".to_string(), TypeExpr::Int),
            ("y".to_string(), TypeExpr::Int),
        ]
        .into_iter()
        .collect(),
    );
    let defschema = |n: &str| {
        Hash::of(&to_vec(&json!({"$kind": "defschema", "name": n, "type": t.to_json()})).unwrap())
    };
    let v = canonicalize(&json!({"x": 1, "y": {"int": "2"}}), &t, &()).unwrap();
    let (a, b) = (defschema("demo/Point@1"), defschema("demo/Size@1"));
    assert_ne!(typed_value_hash(&a, &v), typed_value_hash(&b, &v));
    assert_eq!(
        typed_value_hash(&a, &v),
        typed_value_hash(
            &a,
            &canonicalize(&json!({"record": {"y": 2, "x": "1"}}), &t, &()).unwrap()
        )
    );
}
