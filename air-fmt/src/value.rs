//! Typed values: validate JSON against an AIR type, accepting both JSON lenses at every
//! position, and produce the one canonical JSON form that is hashed, journaled and handed
//! to reducers (DESIGN §2).
//!
//! # API
//!
//! - [`Schemas`]: looks up `defschema` types by name (implemented for `BTreeMap` and
//!   `HashMap` of [`Name`] → [`TypeExpr`], and for `()` when there are none).
//! - [`canonicalize`]`(v, ty, schemas) -> Result<Value, Vec<Diagnostic>>`: every problem
//!   found in one run, each with a JSON pointer relative to the value's root, the
//!   expected type and what was found.
//! - [`typed_value_hash`]`(schema_hash, canonical) -> Hash`: blake3 over the canonical
//!   JSON of `{"schema": "<schema hash>", "value": <canonical value>}`, so two schemas
//!   of the same shape never give the same identity to a value.
//!
//! # Lenses
//!
//! *Sugar* is plain JSON read through the type: `42`, `"text"`, `null` for none, objects
//! for records, arrays for lists and sets, `{"Arm": v}` or `"Arm"` (unit arm) for
//! variants, objects for maps (any key type: the key string is read as the key type)
//! or `[[k, v], …]`. *Tagged* wraps a position in a one-key object naming its type:
//! `{"nat": 42}`, `{"int": -1}`, `{"text": "x"}`, `{"bool": true}`, `{"dec128": "1.5"}`,
//! `{"bytes": b64}` / `{"bytes_b64": b64}`, `{"time": t}` / `{"time_ns": ns}`,
//! `{"duration": ns}` / `{"duration_ns": ns}`, `{"hash": h}`, `{"uuid": u}`,
//! `{"unit": {}}`, `{"record": {…}}`, `{"variant": {"tag": "A", "value": v}}`,
//! `{"list": […]}`, `{"set": […]}`, `{"map": [[k, v] or {"key": k, "value": v}, …]}`,
//! `{"option": v}` (`{"option": null}` is none) and `{"none": {}}` / `{"null": {}}`.
//! The canonical variant envelope `{"$tag": "A", "$value": v}` is accepted too, so
//! canonical output reads back as itself. Lenses mix freely at different depths. A
//! tagged payload of a primitive is its sugar form; of a composite, any lens.
//!
//! When one object can be read both ways (a record whose only field is named `record`,
//! a variant arm named `variant`, a text map with the one key `map`, an `option` whose
//! payload reads an object keyed `option`/`none`/`null`), the sugar reading wins if it
//! validates, else the tagged one; when neither validates, the errors of the reading
//! that got furthest into the value (its deepest error is deepest) are reported, then
//! of the one with fewer errors, then of the sugar one. For variants the canonical envelope is tried before
//! `{"Arm": v}` (it matters only for arms named `$tag`). Ambiguous readings are
//! memoized per (JSON node, type), so nesting them costs linear time, not exponential
//! (a memoized reading keeps the depth verdict of its first evaluation).
//!
//! # Canonical form
//!
//! bool and text as is; int, nat, time and duration a JSON number inside ±(2^53−1) and
//! a decimal string outside it (time: u64 ns since the epoch, also read from RFC 3339;
//! duration: i64 ns); dec128 a normalized decimal string; bytes standard padded base64;
//! hash `blake3:<hex>`; uuid lowercase hyphenated; unit `{}`; record an object with
//! every field (none options as `null`; a missing option field is none); variant
//! `{"$tag": "A", "$value": v}` without `$value` for a unit arm; option `null` or the
//! value (so `option<option<T>>` cannot tell some(none) from none: both are `null`);
//! list an array; set an array deduplicated and sorted by canonical bytes; map an object
//! for text keys, else `[[k, v], …]` sorted by the key's canonical bytes.
//!
//! # Limits
//!
//! Values nest at most [`MAX_DEPTH`] typed levels; at most [`MAX_HOPS`] schema
//! references or options may be crossed without descending into the value (this is
//! what stops a cycle such as `A = ref A`); and at most [`MAX_NESTING`] readings may be
//! in progress at once (descents and crossings together), which bounds the stack to
//! well under 1 MiB even in debug builds. Beyond any of these the code is `too_deep`.
//!
//! Diagnostic codes: `type_mismatch`, `missing_field`, `unknown_field`, `unknown_arm`,
//! `duplicate_key`, `out_of_range`, `bad_format`, `unknown_schema`, `too_deep`.

mod collection;
mod record;
mod scalar;

pub use scalar::{base64_decode, base64_encode, lex_decimal, DecimalLex};
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::BuildHasher;

use aos_store::Hash;
use serde_json::{Map, Value};

use crate::diag::{token, Diagnostic};
use crate::name::Name;
use crate::types::TypeExpr;

/// The deepest a value may nest, in typed levels (record fields, list and set elements,
/// map entries, variant payloads).
pub const MAX_DEPTH: u32 = 64;

/// How many schema references and options may be crossed without descending into the
/// value.
pub const MAX_HOPS: u32 = 16;

/// How many typed readings may be in progress at once, counting both descents and
/// crossings: this bounds the stack the canonicalizer uses, whatever the types.
pub const MAX_NESTING: u32 = 4 * MAX_DEPTH;

/// Looks up `defschema` types by name.
pub trait Schemas {
    fn schema(&self, name: &Name) -> Option<&TypeExpr>;
}

impl Schemas for BTreeMap<Name, TypeExpr> {
    fn schema(&self, name: &Name) -> Option<&TypeExpr> {
        self.get(name)
    }
}

impl<S: BuildHasher> Schemas for HashMap<Name, TypeExpr, S> {
    fn schema(&self, name: &Name) -> Option<&TypeExpr> {
        self.get(name)
    }
}

/// No schemas: every `ref` is unknown.
impl Schemas for () {
    fn schema(&self, _: &Name) -> Option<&TypeExpr> {
        None
    }
}

/// Validate `v` against `ty`, accepting both JSON lenses at every position, and return
/// the one canonical JSON form. On failure every problem found is returned.
pub fn canonicalize(
    v: &Value,
    ty: &TypeExpr,
    schemas: &dyn Schemas,
) -> Result<Value, Vec<Diagnostic>> {
    let mut cx = Cx {
        schemas,
        diags: Vec::new(),
        ptr: String::new(),
        memo: HashMap::new(),
        trials: 0,
        nesting: 0,
        no_memo: 0,
    };
    match cx.canon(v, ty, 0, 0) {
        Some(c) if cx.diags.is_empty() => Ok(c),
        _ => {
            if cx.diags.is_empty() {
                cx.diags.push(Diagnostic::error(
                    "type_mismatch",
                    "",
                    "the value does not match its type",
                ));
            }
            Err(cx.diags)
        }
    }
}

/// The identity of a typed value: blake3 over the canonical JSON of
/// `{"schema": "<schema hash>", "value": <canonical>}`.
///
/// `canonical` should come from [`canonicalize`]. (Any other JSON still hashes
/// deterministically: a value `json-canon` refuses, such as an integer beyond
/// ±(2^53−1), is hashed over its plain `serde_json` bytes instead.)
pub fn typed_value_hash(schema_hash: &Hash, canonical: &Value) -> Hash {
    let mut h = aos_store::hash::Hasher::new();
    h.update(b"{\"schema\":\"");
    h.update(schema_hash.to_string().as_bytes());
    h.update(b"\",\"value\":");
    h.update(&canonical_bytes(canonical));
    h.update(b"}");
    h.finish()
}

/// Canonical JSON bytes of a canonical value.
fn canonical_bytes(v: &Value) -> Vec<u8> {
    aos_store::canon::to_vec(v).unwrap_or_else(|_| serde_json::to_vec(v).unwrap_or_default())
}

/// The same rendering as [`crate::diag::show`] (compact JSON cut to 80 characters),
/// without serializing more than a few hundred bytes of a large value.
pub fn show(v: &Value) -> String {
    struct Capped(Vec<u8>);
    impl std::io::Write for Capped {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            // 81 characters of at most 4 bytes each decide whether to cut at 77.
            let room = 324 - self.0.len();
            if room == 0 {
                return Err(std::io::Error::other("enough"));
            }
            let n = room.min(b.len());
            self.0.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = Capped(Vec::new());
    let _ = serde_json::to_writer(&mut w, v);
    let s = String::from_utf8_lossy(&w.0);
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s.into_owned()
    }
}

/// Type tags of the tagged lens, per type.
fn tags(t: &TypeExpr) -> &'static [&'static str] {
    match t {
        TypeExpr::Bool => &["bool"],
        TypeExpr::Int => &["int"],
        TypeExpr::Nat => &["nat"],
        TypeExpr::Dec128 => &["dec128"],
        TypeExpr::Bytes => &["bytes", "bytes_b64"],
        TypeExpr::Text => &["text"],
        TypeExpr::Time => &["time", "time_ns"],
        TypeExpr::Duration => &["duration", "duration_ns"],
        TypeExpr::Hash => &["hash"],
        TypeExpr::Uuid => &["uuid"],
        TypeExpr::Unit => &["unit"],
        TypeExpr::Record(_) => &["record"],
        TypeExpr::Variant(_) => &["variant"],
        TypeExpr::List(_) => &["list"],
        TypeExpr::Set(_) => &["set"],
        TypeExpr::Map(..) => &["map"],
        TypeExpr::Option(_) => &["option", "none", "null"],
        TypeExpr::Ref(_) => &[],
    }
}

const ALL_TAGS: [&str; 22] = [
    "bool",
    "int",
    "nat",
    "dec128",
    "bytes",
    "bytes_b64",
    "text",
    "time",
    "time_ns",
    "duration",
    "duration_ns",
    "hash",
    "uuid",
    "unit",
    "record",
    "variant",
    "list",
    "set",
    "map",
    "option",
    "none",
    "null",
];

/// The only entry of a one-key object.
fn single(v: &Value) -> Option<(&String, &Value)> {
    match v {
        Value::Object(m) if m.len() == 1 => m.iter().next(),
        _ => None,
    }
}

fn is_empty_object(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty())
}

/// [`TypeExpr::describe`], cut short below a few levels of nesting (types built in
/// code can nest arbitrarily deep).
fn describe(t: &TypeExpr) -> String {
    fn go(t: &TypeExpr, budget: u32) -> String {
        if budget == 0 {
            return "…".to_string();
        }
        match t {
            TypeExpr::List(e) => format!("list<{}>", go(e, budget - 1)),
            TypeExpr::Set(e) => format!("set<{}>", go(e, budget - 1)),
            TypeExpr::Option(e) => format!("option<{}>", go(e, budget - 1)),
            TypeExpr::Map(k, v) => format!("map<{}, {}>", go(k, budget - 1), go(v, budget - 1)),
            // Primitives, refs, and records and variants (which list only their names).
            other => other.describe(),
        }
    }
    go(t, 8)
}

/// The type as shown in `expected:` lines, with the schema name it was reached by.
fn expect(t: &TypeExpr, label: Option<&Name>) -> String {
    match label {
        Some(n) => format!("{n} ({})", describe(t)),
        None => describe(t),
    }
}

type Memo = HashMap<(usize, usize), (Option<Value>, Vec<Diagnostic>)>;

/// One way to read an ambiguous object.
type Reading<'r, 'a> = &'r dyn Fn(&mut Cx<'a>) -> Option<Value>;

/// The canonicalizer's state. Invariant: a reader returns `None` exactly when it pushed
/// at least one error.
struct Cx<'a> {
    schemas: &'a dyn Schemas,
    diags: Vec<Diagnostic>,
    /// JSON pointer of the current position.
    ptr: String,
    /// Results of ambiguous objects evaluated during a trial reading, by (node, type).
    memo: Memo,
    /// How many trial readings are in progress.
    trials: u32,
    /// Non-zero while reading a synthesized value (a map key taken from an object key),
    /// whose address must not be memoized.
    no_memo: u32,
    /// Nested `canon` calls in progress (bounds the stack).
    nesting: u32,
}

impl<'a> Cx<'a> {
    fn enter(&mut self, seg: &str) -> usize {
        let n = self.ptr.len();
        self.ptr.push('/');
        if seg.contains(['~', '/']) {
            self.ptr.push_str(&token(seg));
        } else {
            self.ptr.push_str(seg);
        }
        n
    }

    fn enter_index(&mut self, i: usize) -> usize {
        let n = self.ptr.len();
        let _ = write!(self.ptr, "/{i}");
        n
    }

    fn leave(&mut self, n: usize) {
        self.ptr.truncate(n);
    }

    fn error(
        &mut self,
        code: &'static str,
        msg: impl Into<String>,
        expected: String,
        found: &Value,
    ) {
        self.diags.push(
            Diagnostic::error(code, self.ptr.clone(), msg)
                .expected(expected)
                .found(show(found)),
        );
    }

    fn mismatch(&mut self, t: &TypeExpr, label: Option<&Name>, msg: impl Into<String>, v: &Value) {
        self.error("type_mismatch", msg, expect(t, label), v);
    }

    /// Follow references to a non-reference type, for structural questions.
    fn resolve(&self, mut t: &'a TypeExpr) -> Option<&'a TypeExpr> {
        for _ in 0..=MAX_HOPS {
            match t {
                TypeExpr::Ref(n) => t = self.schemas.schema(n)?,
                other => return Some(other),
            }
        }
        None
    }

    fn is_option(&self, t: &'a TypeExpr) -> bool {
        matches!(self.resolve(t), Some(TypeExpr::Option(_)))
    }

    fn is_unit(&self, t: &'a TypeExpr) -> bool {
        matches!(self.resolve(t), Some(TypeExpr::Unit))
    }

    /// Canonicalize `v` at type `ty`.
    fn canon(&mut self, v: &Value, ty: &'a TypeExpr, depth: u32, hops: u32) -> Option<Value> {
        if self.nesting >= MAX_NESTING {
            self.error(
                "too_deep",
                format!("the value and its types nest more than {MAX_NESTING} readings deep"),
                describe(ty),
                v,
            );
            return None;
        }
        self.nesting += 1;
        let out = self.canon_at(v, ty, depth, hops);
        self.nesting -= 1;
        out
    }

    fn canon_at(
        &mut self,
        v: &Value,
        ty: &'a TypeExpr,
        depth: u32,
        mut hops: u32,
    ) -> Option<Value> {
        if hops > MAX_HOPS {
            self.error(
                "too_deep",
                format!(
                    "more than {MAX_HOPS} schema references or options without a value in between"
                ),
                describe(ty),
                v,
            );
            return None;
        }
        if depth > MAX_DEPTH {
            self.error(
                "too_deep",
                format!("the value nests more than {MAX_DEPTH} levels deep"),
                describe(ty),
                v,
            );
            return None;
        }
        let mut t = ty;
        let mut label = None;
        while let TypeExpr::Ref(n) = t {
            hops += 1;
            if hops > MAX_HOPS {
                self.error(
                    "too_deep",
                    format!(
                        "more than {MAX_HOPS} schema references or options without a value in between (a reference cycle?)"
                    ),
                    n.to_string(),
                    v,
                );
                return None;
            }
            match self.schemas.schema(n) {
                Some(s) => {
                    t = s;
                    label = Some(n);
                }
                None => {
                    self.error(
                        "unknown_schema",
                        format!("unknown schema `{n}`"),
                        n.to_string(),
                        v,
                    );
                    return None;
                }
            }
        }
        match t {
            TypeExpr::Record(fields) => self.record(v, t, fields, label, depth),
            TypeExpr::Variant(arms) => self.variant(v, t, arms, label, depth),
            TypeExpr::List(e) => self.list(v, t, e, label, depth, false),
            TypeExpr::Set(e) => self.list(v, t, e, label, depth, true),
            TypeExpr::Map(k, e) => self.map(v, t, k, e, label, depth),
            TypeExpr::Option(inner) => self.option(v, t, inner, depth, hops),
            TypeExpr::Unit => self.unit(v, t, label),
            _ => self.scalar(v, t, label),
        }
    }

    /// Try each reading in turn; the first that validates wins, else the one with the
    /// fewest errors (the earliest on a tie) is reported.
    fn first_valid(
        &mut self,
        v: &Value,
        t: &'a TypeExpr,
        readings: &[Reading<'_, 'a>],
    ) -> Option<Value> {
        let key = (v as *const Value as usize, t as *const TypeExpr as usize);
        let memoize = self.no_memo == 0 && self.trials > 0;
        if memoize {
            if let Some((out, d)) = self.memo.get(&key) {
                self.diags.extend_from_slice(d);
                return out.clone();
            }
        }
        // A failed reading's score: how deep into the value its deepest error lies (the
        // reading that got furthest is most likely the one meant), then fewer errors.
        let score = |d: &[Diagnostic]| {
            let deepest = d.iter().map(|d| d.pointer.matches('/').count()).max();
            (deepest.unwrap_or(0), std::cmp::Reverse(d.len()))
        };
        let mut best: Option<(Option<Value>, Vec<Diagnostic>)> = None;
        self.trials += 1;
        for read in readings {
            let mark = self.diags.len();
            let out = read(self);
            let d = self.diags.split_off(mark);
            let valid = out.is_some() && d.is_empty();
            if valid || best.as_ref().is_none_or(|(_, bd)| score(&d) > score(bd)) {
                best = Some((out, d));
            }
            if valid {
                break;
            }
        }
        self.trials -= 1;
        let (out, d) = best.unwrap_or_default();
        if memoize {
            self.memo.insert(key, (out.clone(), d.clone()));
        }
        self.diags.extend(d);
        out
    }

    fn scalar(&mut self, v: &Value, t: &'a TypeExpr, label: Option<&Name>) -> Option<Value> {
        let mut tag = None;
        let mut payload = v;
        if let Some((k, p)) = single(v) {
            if tags(t).contains(&k.as_str()) {
                tag = Some(k.as_str());
                payload = p;
            } else if ALL_TAGS.contains(&k.as_str()) {
                self.mismatch(
                    t,
                    label,
                    format!("a tagged `{k}` value where {} is expected", describe(t)),
                    v,
                );
                return None;
            }
        }
        let r = match t {
            TypeExpr::Bool => scalar::boolean(payload),
            TypeExpr::Int => scalar::int(payload),
            TypeExpr::Nat => scalar::nat(payload),
            TypeExpr::Dec128 => scalar::dec128(payload),
            TypeExpr::Bytes => scalar::bytes(payload),
            TypeExpr::Text => scalar::text(payload),
            TypeExpr::Time if tag == Some("time_ns") => scalar::time_ns(payload),
            TypeExpr::Time => scalar::time(payload),
            TypeExpr::Duration => scalar::duration(payload),
            TypeExpr::Hash => scalar::hash(payload),
            TypeExpr::Uuid => scalar::uuid(payload),
            _ => Err(scalar::Problem {
                code: "type_mismatch",
                msg: format!("expected {}", describe(t)),
            }),
        };
        let mark = tag.map(|k| self.enter(k));
        let out = match r {
            Ok(c) => Some(c),
            Err(p) => {
                self.error(p.code, p.msg, expect(t, label), payload);
                None
            }
        };
        if let Some(m) = mark {
            self.leave(m);
        }
        out
    }

    fn unit(&mut self, v: &Value, t: &'a TypeExpr, label: Option<&Name>) -> Option<Value> {
        let ok =
            is_empty_object(v) || single(v).is_some_and(|(k, p)| k == "unit" && is_empty_object(p));
        if ok {
            Some(Value::Object(Map::new()))
        } else {
            self.mismatch(t, label, "expected unit, written {}", v);
            None
        }
    }

    fn option(
        &mut self,
        v: &Value,
        t: &'a TypeExpr,
        inner: &'a TypeExpr,
        depth: u32,
        hops: u32,
    ) -> Option<Value> {
        if v.is_null() {
            return Some(Value::Null);
        }
        match single(v) {
            Some((k, p)) if matches!(k.as_str(), "option" | "none" | "null") => {
                let sugar = |cx: &mut Cx<'a>| cx.canon(v, inner, depth, hops + 1);
                let tagged = |cx: &mut Cx<'a>| {
                    let mark = cx.enter(k);
                    let out = if k == "option" {
                        if p.is_null() {
                            Some(Value::Null)
                        } else {
                            cx.canon(p, inner, depth, hops + 1)
                        }
                    } else if p.is_null() || is_empty_object(p) {
                        Some(Value::Null)
                    } else {
                        cx.mismatch(t, None, format!("`{k}` takes {{}}"), p);
                        None
                    };
                    cx.leave(mark);
                    out
                };
                self.first_valid(v, t, &[&sugar, &tagged])
            }
            _ => self.canon(v, inner, depth, hops + 1),
        }
    }
}
