//! Canonical JSON (RFC 8785, byte for byte what `json-canon` writes): the one byte form
//! of every structured object and journal record, plus the 64-bit integer rule of
//! DESIGN §2 (a number inside ±(2^53−1), a decimal string outside it; readers accept
//! both).
//!
//! [`to_vec`] serializes any `Serialize` type through `json-canon`. Values that are
//! already a [`serde_json::Value`] take the direct writer ([`value_to_vec`],
//! [`write_value`]): object keys sorted by UTF-16 code units, strings escaped as
//! `JSON.stringify` does, integers refused outside ±(2^53−1), floats printed as
//! ECMAScript's `Number::toString` (through `ryu-js`, the formatter `json-canon` uses).
//! It produces the same bytes and the same errors as [`to_vec`], without the
//! intermediate buffers, and without re-scanning the output.

use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Number, Value};

#[cfg(test)]
pub(crate) mod oracle_tests;

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

/// What `json-canon` says about a `u64` beyond the safe range.
const U64_UNSAFE: &str = "u64 must be less than JSON max safe integer";
/// What `json-canon` says about an `i64` beyond the safe range.
const I64_UNSAFE: &str = "i64.abs() must be less than JSON max safe integer";

/// Serialize any value to canonical JSON bytes.
///
/// For a [`Value`], [`value_to_vec`] gives the same result faster.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonError> {
    let bytes =
        json_canon::to_vec(value).map_err(|e| CanonError::Unrepresentable(e.to_string()))?;
    if let Some(lit) = unsafe_integer_literal(&bytes) {
        // A float such as 1e16 prints as an integer beyond the safe range, which could
        // not be read back under the same rule: refuse it rather than emit a form that is
        // not a fixed point.
        return Err(unsafe_literal_error(&lit));
    }
    Ok(bytes)
}

fn unsafe_literal_error(lit: &str) -> CanonError {
    CanonError::Unrepresentable(format!("number {lit} is beyond ±(2^53−1)"))
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
            if is_unsafe_literal(&bytes[start..i]) {
                return Some(String::from_utf8_lossy(&bytes[start..i]).into_owned());
            }
            continue;
        }
        i += 1;
    }
    None
}

/// True for a run of at least 16 decimal digits naming an integer beyond 2^53 − 1.
fn is_unsafe_literal(lit: &[u8]) -> bool {
    lit.len() >= 16
        && lit.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(lit)
            .ok()
            .and_then(|t| t.parse::<u64>().ok())
            .is_none_or(|n| n > MAX_SAFE_INT)
}

/// Serialize a JSON value to canonical bytes (the same bytes and errors as [`to_vec`]).
pub fn value_to_vec(value: &Value) -> Result<Vec<u8>, CanonError> {
    let mut out = Vec::with_capacity(128);
    write_value(&mut out, value)?;
    Ok(out)
}

/// Append the canonical form of `value` to `out`. On error `out` is left as it was.
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonError> {
    let start = out.len();
    match emit(out, value) {
        Ok(()) => Ok(()),
        Err(Unsafe) => {
            out.truncate(start);
            Err(value_error(value))
        }
    }
}

/// Append a string in canonical form (quoted and escaped as `JSON.stringify` does).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    emit_str(out, s);
}

/// Append a `u64` under the 64-bit rule: a number when safe, a decimal string otherwise
/// (the canonical form of [`u64_value`], and of a field serialized with [`int64`]).
pub fn write_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(v).as_bytes();
    if v <= MAX_SAFE_INT {
        out.extend_from_slice(digits);
    } else {
        out.push(b'"');
        out.extend_from_slice(digits);
        out.push(b'"');
    }
}

/// Whether `bytes` are exactly the canonical form of `value` (without writing it out).
/// A value with no canonical form is an error, whatever the bytes.
pub fn matches_canonical(value: &Value, bytes: &[u8]) -> Result<bool, CanonError> {
    compare(value, bytes).map(|c| c.same)
}

/// The outcome of comparing a value's canonical form with given bytes.
pub(crate) struct Compared {
    /// The bytes are exactly the canonical form.
    pub same: bool,
    /// How deeply arrays and objects nest in the value (0 for a scalar).
    pub depth: u32,
}

/// Compare `value`'s canonical form with `bytes` as it is produced, without a buffer.
pub(crate) fn compare(value: &Value, bytes: &[u8]) -> Result<Compared, CanonError> {
    let mut sink = Compare {
        rest: bytes,
        same: true,
        depth: 0,
        max_depth: 0,
    };
    match emit(&mut sink, value) {
        Ok(()) => Ok(Compared {
            same: sink.same && sink.rest.is_empty(),
            depth: sink.max_depth,
        }),
        Err(Unsafe) => Err(value_error(value)),
    }
}

/// Parse JSON text of any formatting and return its canonical bytes.
pub fn canonicalize(bytes: &[u8]) -> Result<Vec<u8>, CanonError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| CanonError::Syntax(e.to_string()))?;
    value_to_vec(&v)
}

/// True when `bytes` are valid JSON already in canonical form.
pub fn is_canonical(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .is_ok_and(|v| matches_canonical(&v, bytes).unwrap_or(false))
}

/// Order two strings by their UTF-16 code units, as RFC 8785 sorts object keys.
///
/// UTF-8 byte order is code point order, and so is UTF-16 order except that the BMP
/// characters U+E000..=U+FFFF (UTF-8 lead bytes 0xEE, 0xEF) sort after the characters
/// beyond the BMP (surrogate pairs, 0xD800.., lead bytes 0xF0..=0xF4). Two valid UTF-8
/// strings first differ either inside one character (same lead byte: byte order holds)
/// or at the lead bytes of two characters, where moving 0xEE and 0xEF above 0xF4 gives
/// UTF-16 order. Continuation bytes (0x80..=0xBF) are never remapped.
pub fn cmp_utf16(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    match a.iter().zip(b).position(|(x, y)| x != y) {
        None => a.len().cmp(&b.len()),
        Some(i) => utf16_rank(a[i]).cmp(&utf16_rank(b[i])),
    }
}

#[inline]
fn utf16_rank(byte: u8) -> u8 {
    match byte {
        0xEE | 0xEF => byte + 7, // above 0xF4, the largest lead byte of valid UTF-8
        _ => byte,
    }
}

/// Where the canonical writer sends its bytes: a buffer, or a comparison.
pub(crate) trait Sink {
    /// Write numbers beyond ±(2^53−1) instead of refusing them (only used to find which
    /// literal to name in an error, exactly as `json-canon` + the re-scan would).
    const LENIENT: bool = false;
    fn put(&mut self, bytes: &[u8]);
    fn byte(&mut self, b: u8);
    /// An array or object starts / ends.
    #[inline]
    fn enter(&mut self) {}
    #[inline]
    fn leave(&mut self) {}
}

impl Sink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn byte(&mut self, b: u8) {
        self.push(b);
    }
}

/// Writes everything, refusing nothing: the canonical text `json-canon` would produce
/// before the unsafe-literal scan.
struct Lenient(Vec<u8>);

impl Sink for Lenient {
    const LENIENT: bool = true;
    fn put(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }
}

/// Compares what is written with expected bytes.
struct Compare<'a> {
    rest: &'a [u8],
    same: bool,
    depth: u32,
    max_depth: u32,
}

impl Sink for Compare<'_> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        match self.rest.strip_prefix(bytes) {
            Some(rest) if self.same => self.rest = rest,
            _ => self.same = false,
        }
    }
    #[inline]
    fn byte(&mut self, b: u8) {
        match self.rest.split_first() {
            Some((&c, rest)) if self.same && c == b => self.rest = rest,
            _ => self.same = false,
        }
    }
    #[inline]
    fn enter(&mut self) {
        self.depth += 1;
        self.max_depth = self.max_depth.max(self.depth);
    }
    #[inline]
    fn leave(&mut self) {
        self.depth -= 1;
    }
}

/// A number with no canonical form was met (the error is worked out afterwards).
struct Unsafe;

fn emit<S: Sink>(out: &mut S, v: &Value) -> Result<(), Unsafe> {
    match v {
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Number(n) => emit_number(out, n)?,
        Value::String(s) => emit_str(out, s),
        Value::Array(a) => {
            out.enter();
            out.byte(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.byte(b',');
                }
                emit(out, x)?;
            }
            out.byte(b']');
            out.leave();
        }
        Value::Object(m) => {
            out.enter();
            emit_object(out, m)?;
            out.leave();
        }
    }
    Ok(())
}

fn emit_object<S: Sink>(out: &mut S, m: &Map<String, Value>) -> Result<(), Unsafe> {
    out.byte(b'{');
    // serde_json's map iterates in UTF-8 byte order (or insertion order with
    // `preserve_order`), which is UTF-16 order unless keys hold characters at or above
    // U+E000; only then sort.
    let mut keys = m.keys();
    let in_order = match keys.next() {
        None => true,
        Some(first) => {
            let mut prev = first;
            keys.all(|k| {
                let ok = cmp_utf16(prev, k) == Ordering::Less;
                prev = k;
                ok
            })
        }
    };
    if in_order {
        for (i, (k, v)) in m.iter().enumerate() {
            if i > 0 {
                out.byte(b',');
            }
            emit_str(out, k);
            out.byte(b':');
            emit(out, v)?;
        }
    } else {
        let mut entries: Vec<(&String, &Value)> = m.iter().collect();
        entries.sort_by(|a, b| cmp_utf16(a.0, b.0));
        for (i, (k, v)) in entries.into_iter().enumerate() {
            if i > 0 {
                out.byte(b',');
            }
            emit_str(out, k);
            out.byte(b':');
            emit(out, v)?;
        }
    }
    out.byte(b'}');
    Ok(())
}

fn emit_number<S: Sink>(out: &mut S, n: &Number) -> Result<(), Unsafe> {
    if let Some(u) = n.as_u64() {
        if u > MAX_SAFE_INT && !S::LENIENT {
            return Err(Unsafe);
        }
        out.put(itoa::Buffer::new().format(u).as_bytes());
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() > MAX_SAFE_INT && !S::LENIENT {
            return Err(Unsafe);
        }
        out.put(itoa::Buffer::new().format(i).as_bytes());
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if !f.is_finite() {
            // Unreachable for a serde_json number; serde_json writes null for these.
            out.put(b"null");
        } else if f == 0.0 {
            out.byte(b'0');
        } else {
            let mut buf = ryu_js::Buffer::new();
            let text = buf.format_finite(f).as_bytes();
            // Integral floats from 2^53 up to 1e21 print as plain digits, an integer
            // that could not be read back under the 64-bit rule.
            if text.len() >= 16
                && !S::LENIENT
                && is_unsafe_literal(text.strip_prefix(b"-").unwrap_or(text))
            {
                return Err(Unsafe);
            }
            out.put(text);
        }
    }
    Ok(())
}

/// What to write after a backslash for each byte (0: the byte is written as is).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0A] = b'n';
    t[0x0C] = b'f';
    t[0x0D] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn emit_str<S: Sink>(out: &mut S, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.byte(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        if start < i {
            out.put(&bytes[start..i]);
        }
        if esc == b'u' {
            out.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xF) as usize],
            ]);
        } else {
            out.put(&[b'\\', esc]);
        }
        start = i + 1;
    }
    if start < bytes.len() {
        out.put(&bytes[start..]);
    }
    out.byte(b'"');
}

/// The error [`to_vec`] reports for a value the writer refused. `json-canon` stops at
/// the first integer beyond the safe range in serialization order (map iteration order);
/// failing that, the re-scan names the first unsafe literal in canonical order.
fn value_error(value: &Value) -> CanonError {
    if let Some(msg) = first_unsafe_integer(value) {
        return CanonError::Unrepresentable(msg.to_string());
    }
    let mut text = Lenient(Vec::new());
    let _ = emit(&mut text, value);
    match unsafe_integer_literal(&text.0) {
        Some(lit) => unsafe_literal_error(&lit),
        None => CanonError::Unrepresentable("number is beyond ±(2^53−1)".into()),
    }
}

/// `json-canon`'s message for the first integer it refuses, visiting in serde order.
pub(crate) fn first_unsafe_integer(value: &Value) -> Option<&'static str> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                (u > MAX_SAFE_INT).then_some(U64_UNSAFE)
            } else if let Some(i) = n.as_i64() {
                // `json-canon` tests `i.abs()`, which wraps for i64::MIN in release
                // builds and lets it through to the re-scan.
                (i != i64::MIN && i.unsigned_abs() > MAX_SAFE_INT).then_some(I64_UNSAFE)
            } else {
                None
            }
        }
        Value::Array(a) => a.iter().find_map(first_unsafe_integer),
        Value::Object(m) => m.values().find_map(first_unsafe_integer),
        _ => None,
    }
}

/// `json-canon`'s message for a `u64` beyond the safe range (e.g. in a `Vec<u64>`).
pub(crate) fn u64_unsafe_error() -> CanonError {
    CanonError::Unrepresentable(U64_UNSAFE.into())
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
