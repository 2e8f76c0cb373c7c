//! Canonical JSON (RFC 8785 via `json-canon`): the one byte form of every structured
//! object and journal record, plus the 64-bit integer rule of DESIGN §2 (a number inside
//! ±(2^53−1), a decimal string outside it; readers accept both).

use serde::Serialize;
use serde_json::Value;

/// The largest integer JSON carries exactly: 2^53 − 1.
pub const MAX_SAFE_INT: u64 = 9_007_199_254_740_991;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error)]
pub enum CanonError {
    #[error("cannot serialize to canonical JSON: {0} (integers beyond ±(2^53−1) must be written as decimal strings)")]
    Unrepresentable(String),
    #[error("not valid JSON: {0}")]
    Syntax(String),
}

/// Serialize any value to canonical JSON bytes.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonError> {
    let bytes =
        json_canon::to_vec(value).map_err(|e| CanonError::Unrepresentable(e.to_string()))?;
    if let Some(lit) = unsafe_integer_literal(&bytes) {
        // A float such as 1e16 prints as an integer beyond the safe range, which could
        // not be read back under the same rule: refuse it rather than emit a form that is
        // not a fixed point.
        return Err(CanonError::Unrepresentable(format!(
            "number {lit} is beyond ±(2^53−1)"
        )));
    }
    Ok(bytes)
}

/// The first integer literal outside ±(2^53−1) in canonical JSON bytes (outside strings).
fn unsafe_integer_literal(bytes: &[u8]) -> Option<String> {
    let (mut in_string, mut escaped, mut i) = (false, false, 0);
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_digit()
                    || matches!(bytes[i], b'.' | b'e' | b'E' | b'+' | b'-'))
            {
                i += 1;
            }
            let lit = &bytes[start..i];
            if lit.len() >= 16 && lit.iter().all(u8::is_ascii_digit) {
                let text = String::from_utf8_lossy(lit).into_owned();
                if text.parse::<u64>().map_or(true, |n| n > MAX_SAFE_INT) {
                    return Some(text);
                }
            }
            continue;
        }
        i += 1;
    }
    None
}

/// Parse JSON text of any formatting and return its canonical bytes.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, CanonError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| CanonError::Syntax(e.to_string()))?;
    to_vec(&v)
}

/// True when `bytes` are valid JSON already in canonical form.
pub fn is_canonical(bytes: &[u8]) -> bool {
    canonicalize(bytes).is_ok_and(|c| c == bytes)
}

/// Serde adapter for `u64` fields under the 64-bit rule: written as a number when safe,
/// as a decimal string otherwise; read from either.
pub mod int64 {
    use super::MAX_SAFE_INT;
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        if *v <= MAX_SAFE_INT {
            s.serialize_u64(*v)
        } else {
            s.collect_str(v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a non-negative integer or a decimal string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom("negative integer"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                if v.is_empty()
                    || !v.bytes().all(|c| c.is_ascii_digit())
                    || (v.len() > 1 && v.starts_with('0'))
                {
                    return Err(E::custom(format!("{v:?} is not a decimal integer")));
                }
                v.parse()
                    .map_err(|_| E::custom(format!("{v:?} does not fit in 64 bits")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The canonical JSON value of a `u64` under the 64-bit rule.
pub fn u64_value(v: u64) -> Value {
    if v <= MAX_SAFE_INT {
        Value::from(v)
    } else {
        Value::String(v.to_string())
    }
}

/// The canonical JSON value of an `i64` under the 64-bit rule.
pub fn i64_value(v: i64) -> Value {
    if v.unsigned_abs() <= MAX_SAFE_INT {
        Value::from(v)
    } else {
        Value::String(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_strips_whitespace() {
        let c = canonicalize(br#" { "b" : 1, "a" : [ true , null ] } "#).unwrap();
        assert_eq!(c, br#"{"a":[true,null],"b":1}"#);
        assert!(is_canonical(&c));
    }

    #[test]
    fn refuses_unsafe_integers() {
        assert!(to_vec(&json!({"n": MAX_SAFE_INT})).is_ok());
        assert!(to_vec(&json!({"n": MAX_SAFE_INT + 1})).is_err());
        assert!(to_vec(&json!({"n": -(MAX_SAFE_INT as i64) - 1})).is_err());
    }

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct T {
        #[serde(with = "int64")]
        n: u64,
    }

    #[test]
    fn int64_boundary() {
        for n in [
            0,
            1,
            MAX_SAFE_INT - 1,
            MAX_SAFE_INT,
            MAX_SAFE_INT + 1,
            u64::MAX,
        ] {
            let bytes = to_vec(&T { n }).unwrap();
            let back: T = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back.n, n);
            let expect_string = n > MAX_SAFE_INT;
            assert_eq!(
                bytes.contains(&b'"') && bytes.iter().filter(|&&b| b == b'"').count() == 4,
                expect_string,
                "{}",
                String::from_utf8_lossy(&bytes)
            );
        }
        let from_string: T = serde_json::from_str(r#"{"n":"42"}"#).unwrap();
        assert_eq!(from_string.n, 42);
        for bad in [
            r#"{"n":"-1"}"#,
            r#"{"n":"01"}"#,
            r#"{"n":""}"#,
            r#"{"n":"18446744073709551616"}"#,
            r#"{"n":-1}"#,
        ] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(MAX_SAFE_INT as i64)..=(MAX_SAFE_INT as i64)).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            (-1e22f64..1e22).prop_map(|f| Value::from(f.trunc())),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Re-render a value with shuffled key order and arbitrary whitespace.
    fn scramble(v: &Value, seed: &mut u64, out: &mut String) {
        let ws = |seed: &mut u64, out: &mut String| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for _ in 0..(*seed >> 61) {
                out.push([' ', '\n', '\t', '\r'][(*seed >> 33) as usize % 4]);
            }
        };
        match v {
            Value::Object(m) => {
                let mut entries: Vec<_> = m.iter().collect();
                *seed = seed.rotate_left(7) ^ 0x9e37;
                if seed.is_multiple_of(2) {
                    entries.reverse();
                }
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(seed, out);
                    out.push_str(&serde_json::to_string(k).unwrap());
                    ws(seed, out);
                    out.push(':');
                    scramble(v, seed, out);
                }
                ws(seed, out);
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    scramble(v, seed, out);
                }
                ws(seed, out);
                out.push(']');
            }
            other => {
                ws(seed, out);
                out.push_str(&serde_json::to_string(other).unwrap());
                ws(seed, out);
            }
        }
    }

    proptest! {
        #[test]
        fn canonical_form_is_idempotent(v in arb_json()) {
            // Integral floats between 2^53 and 10^21 have no canonical form; all else must.
            let Ok(once) = to_vec(&v) else {
                let text = serde_json::to_string(&v).unwrap();
                prop_assert!(text.contains(".0") || text.contains('e'), "refused {}", text);
                return Ok(());
            };
            let twice = canonicalize(&once).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert!(is_canonical(&once));
        }

        #[test]
        fn key_order_and_whitespace_never_change_the_hash(v in arb_json(), seed in any::<u64>()) {
            let mut seed = seed;
            let mut text = String::new();
            scramble(&v, &mut seed, &mut text);
            let Ok(bytes) = to_vec(&v) else { return Ok(()) };
            let a = crate::Hash::of(&bytes);
            let b = crate::Hash::of(&canonicalize(text.as_bytes()).unwrap());
            prop_assert_eq!(a, b);
        }

        #[test]
        fn integers_round_trip_at_the_boundary(delta in -1000i64..1000, neg in any::<bool>()) {
            let n = (MAX_SAFE_INT as i64 - 500 + delta).clamp(0, i64::MAX);
            let n = if neg { -n } else { n };
            let v = json!({"n": n});
            match to_vec(&v) {
                Ok(bytes) => {
                    prop_assert!(n.unsigned_abs() <= MAX_SAFE_INT);
                    let back: Value = serde_json::from_slice(&bytes).unwrap();
                    prop_assert_eq!(back["n"].as_i64(), Some(n));
                }
                Err(_) => prop_assert!(n.unsigned_abs() > MAX_SAFE_INT),
            }
            let u = n.unsigned_abs() + MAX_SAFE_INT - 500;
            let bytes = to_vec(&u64_value(u)).unwrap();
            let back: T = serde_json::from_slice(format!("{{\"n\":{}}}", String::from_utf8(bytes).unwrap()).as_bytes()).unwrap();
            prop_assert_eq!(back.n, u);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = canonicalize(&bytes);
        }
    }
}
