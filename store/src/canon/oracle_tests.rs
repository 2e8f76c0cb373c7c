//! The direct writer against `json-canon` (through [`to_vec`], which still serializes
//! with `json-canon` and re-scans its output): byte-identical output, identical errors.

use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};

use super::*;

/// Characters where canonical JSON is easy to get wrong: escapes, control characters,
/// the line separators `JSON.stringify` leaves alone, characters around the surrogate
/// range, BMP characters above it (which sort after astral ones in UTF-16) and astral
/// characters.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'e'),
        2 => prop::char::range('\u{0}', '\u{1f}'),
        1 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{80}', '\u{2028}', '\u{2029}']),
        1 => prop::sample::select(vec!['é', '\u{7ff}', '\u{800}', '\u{d7ff}', '\u{e000}', '\u{fb00}', '\u{fffd}', '\u{ffff}']),
        2 => prop::sample::select(vec!['\u{10000}', '😀', '\u{1f601}', '\u{10ffff}', '𝄞']),
        1 => any::<char>(),
    ]
}

pub(crate) fn tricky_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..max).prop_map(String::from_iter)
}

/// Doubles with every kind of ECMAScript rendering: exponents both ways, the 1e21 and
/// 1e-7 switch points, integral floats around 2^53, subnormals, negative zero.
fn tricky_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (-1e22f64..1e22).prop_map(f64::trunc),
        (-1e22f64..1e22),
        (0u64..2000, any::<bool>()).prop_map(|(d, neg)| {
            let f = (MAX_SAFE_INT as f64) - 1000.0 + d as f64;
            if neg {
                -f
            } else {
                f
            }
        }),
        (1e20f64..1e22),
        (1e-8f64..1e-6),
        (-330i32..310, 1u32..10).prop_map(|(e, m)| m as f64 * 10f64.powi(e)),
        any::<u64>().prop_map(|bits| f64::from_bits(bits & 0x000f_ffff_ffff_ffff)),
        Just(-0.0),
        Just(0.1 + 0.2),
    ]
    .prop_filter("finite", |f| f.is_finite())
}

fn tricky_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-(MAX_SAFE_INT as i64)..=(MAX_SAFE_INT as i64)).prop_map(Value::from),
        (0u64..4000).prop_map(|d| Value::from(MAX_SAFE_INT - 2000 + d)),
        (0i64..4000).prop_map(|d| Value::from(-(MAX_SAFE_INT as i64) - 2000 + d)),
        // i64::MIN makes json-canon panic in debug builds (`abs` overflows): see
        // `i64_min_is_refused_like_a_release_build`.
        any::<i64>()
            .prop_filter("not i64::MIN", |&i| i != i64::MIN)
            .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        tricky_f64().prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
    ]
}

pub(crate) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => tricky_number(),
        3 => tricky_string(8).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((tricky_string(5), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Values the canonical form accepts: no integer beyond the safe range, no integral
/// float between 2^53 and 1e21.
fn safe_value() -> impl Strategy<Value = Value> {
    arb_value().prop_filter("has a canonical form", |v| to_vec(v).is_ok())
}

fn same_result(v: &Value) -> Result<(), TestCaseError> {
    let old = to_vec(v);
    let new = value_to_vec(v);
    match (&old, &new) {
        (Ok(a), Ok(b)) => prop_assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "value {}",
            v
        ),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string(), "value {}", v),
        _ => prop_assert!(false, "old {:?}, new {:?} for {}", old, new, v),
    }
    // The appending form writes the same bytes after existing content, and leaves the
    // buffer untouched on error.
    let mut buf = b"xy".to_vec();
    let r = write_value(&mut buf, v);
    match new {
        Ok(bytes) => {
            prop_assert!(r.is_ok());
            prop_assert_eq!(&buf[..2], b"xy");
            prop_assert_eq!(&buf[2..], &bytes[..]);
            prop_assert!(matches_canonical(v, &bytes).unwrap());
        }
        Err(_) => {
            prop_assert!(r.is_err());
            prop_assert_eq!(&buf[..], b"xy");
            prop_assert!(matches_canonical(v, b"").is_err());
        }
    }
    Ok(())
}

/// The old `canonicalize` and `is_canonical`, through `json-canon`.
fn old_canonicalize(bytes: &[u8]) -> Result<Vec<u8>, CanonError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| CanonError::Syntax(e.to_string()))?;
    to_vec(&v)
}

fn old_is_canonical(bytes: &[u8]) -> bool {
    old_canonicalize(bytes).is_ok_and(|c| c == bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn writer_matches_json_canon(v in arb_value()) {
        same_result(&v)?;
    }

    #[test]
    fn writer_matches_json_canon_on_scalars(v in prop_oneof![tricky_number(), tricky_string(40).prop_map(Value::String)]) {
        same_result(&v)?;
    }

    #[test]
    fn keys_sort_by_utf16_code_units(keys in prop::collection::vec(tricky_string(4), 0..10)) {
        let obj: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
        same_result(&Value::Object(obj))?;
        for a in &keys {
            for b in &keys {
                prop_assert_eq!(cmp_utf16(a, b), a.encode_utf16().cmp(b.encode_utf16()), "{:?} {:?}", a, b);
            }
        }
    }

    #[test]
    fn cmp_utf16_is_utf16_order(a in any::<String>(), b in any::<String>(), pre in tricky_string(3)) {
        prop_assert_eq!(cmp_utf16(&a, &b), a.encode_utf16().cmp(b.encode_utf16()));
        let (pa, pb) = (format!("{pre}{a}"), format!("{pre}{b}"));
        prop_assert_eq!(cmp_utf16(&pa, &pb), pa.encode_utf16().cmp(pb.encode_utf16()));
    }

    #[test]
    fn canonicalize_and_is_canonical_agree_with_json_canon(v in safe_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let text = to_vec(&v).unwrap();
        prop_assert_eq!(canonicalize(&text).unwrap(), old_canonicalize(&text).unwrap());
        prop_assert!(is_canonical(&text));
        // Damaged and reformatted texts: same verdicts and same bytes or errors.
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        let mut replaced = text.clone();
        let i = cut.index(replaced.len());
        replaced[i] = byte;
        let mut inserted = text.clone();
        inserted.insert(i, byte);
        let mut removed = text.clone();
        removed.remove(i);
        for t in [pretty, replaced, inserted, removed] {
            prop_assert_eq!(is_canonical(&t), old_is_canonical(&t), "{}", String::from_utf8_lossy(&t));
            match (canonicalize(&t), old_canonicalize(&t)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "new {:?}, old {:?}", a, b),
            }
        }
    }

    #[test]
    fn write_u64_is_the_canonical_u64_value(v in prop_oneof![any::<u64>(), 0..=MAX_SAFE_INT + 10, MAX_SAFE_INT - 10..=MAX_SAFE_INT + 10]) {
        let mut out = Vec::new();
        write_u64(&mut out, v);
        prop_assert_eq!(out, to_vec(&u64_value(v)).unwrap());
    }

    #[test]
    fn write_str_is_the_canonical_string(s in prop_oneof![tricky_string(30), any::<String>()]) {
        let mut out = Vec::new();
        write_str(&mut out, &s);
        prop_assert_eq!(out, to_vec(&s).unwrap());
    }
}

#[test]
fn fixed_cases_match_json_canon() {
    let cases = [
        json!(null),
        json!({}),
        json!([]),
        json!({"b": 1, "a": [true, null, false], "": "", "A": {"z": {}, "y": []}}),
        json!({"\u{e000}": 1, "😀": 2, "\u{ffff}": 3, "\u{10000}": 4, "z": 5, "é": 6}),
        json!({"\u{fb01}": 0, "\u{1d11e}": 1, "\u{d7ff}": 2}),
        json!("\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f}\"\\/\u{7f}\u{2028}\u{2029}é😀"),
        json!([
            0.1,
            -0.0,
            1e21,
            1e-7,
            1e-6,
            123456789012345680000.0,
            5e-324,
            1.7976931348623157e308
        ]),
        json!([
            MAX_SAFE_INT,
            -(MAX_SAFE_INT as i64),
            9007199254740991.0,
            -9007199254740991.0
        ]),
        json!({"n": 1e16}),
        json!([1e20, {"a": -2e17}]),
        json!([MAX_SAFE_INT + 1]),
        json!([-(MAX_SAFE_INT as i64) - 1]),
        json!({"b": 1e16, "a": u64::MAX}),
        json!({"a": 1e16, "b": -(MAX_SAFE_INT as i64) - 1, "c": u64::MAX}),
        json!({"\u{ffff}": 1e17, "😀": 2e17}),
    ];
    for v in cases {
        same_result(&v).unwrap();
    }
}

#[test]
fn astral_keys_sort_before_high_bmp_keys() {
    let v = json!({"\u{ffff}": 1, "😀": 2, "a": 3});
    assert_eq!(
        String::from_utf8(value_to_vec(&v).unwrap()).unwrap(),
        "{\"a\":3,\"😀\":2,\"\u{ffff}\":1}"
    );
}

#[test]
fn i64_min_is_refused_like_a_release_build() {
    // json-canon's `i64::abs` wraps for i64::MIN in release builds, so the old path
    // reported it from the re-scan (and panicked in debug builds).
    let e = value_to_vec(&json!([i64::MIN])).unwrap_err().to_string();
    assert!(
        e.contains("number 9223372036854775808 is beyond ±(2^53−1)"),
        "{e}"
    );
    let e = value_to_vec(&json!([i64::MIN, u64::MAX]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("u64 must be less than"), "{e}");
    let e = value_to_vec(&json!([i64::MIN + 1]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("i64.abs() must be less than"), "{e}");
}
