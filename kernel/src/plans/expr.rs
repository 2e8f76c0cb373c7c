//! The plan expression evaluator: pure, deterministic and total.
//!
//! [`eval`] reads an [`Expr`] against an [`Env`] (the run's `@plan.input`, its bound
//! `@var:`s, the values of finished `@step:`s, and `@event` while an `await_event.where`
//! is matched) and returns a canonical JSON value (DESIGN §2). Every failure is an
//! [`EvalError`] naming the operator or reference and the offending value (truncated to
//! 80 characters); nothing reachable from an expression or an environment panics.
//!
//! # Values at run time
//!
//! Values are canonical JSON without their types, so every operator decides by the
//! JSON shape of its operands:
//!
//! - An *integer* (int, nat, time, duration) is a JSON integer, or a string in the
//!   canonical form of a 64-bit integer beyond ±(2^53−1) (decimal digits, an optional
//!   `-`, no leading zero, within `i64::MIN..=u64::MAX`). Integers are compared and
//!   computed exactly in `i128`. A JSON number with a fraction is not an integer.
//! - Integer results must lie in `i64::MIN..=u64::MAX` (the union of int and nat), else
//!   the operator fails with [`EvalError::Overflow`]; whether the result fits the
//!   declared type (a negative `sub` of two nats) is checked where the value is bound or
//!   raised, by canonicalizing it against its schema. Results inside ±(2^53−1) are JSON
//!   numbers, beyond it decimal strings.
//! - `div` truncates toward zero and `mod` takes the sign of the dividend (as Rust's and
//!   WebAssembly's `i64.div_s`/`rem_s`); a zero divisor fails.
//! - dec128 values are decimal text at run time: no operator does decimal arithmetic,
//!   and ordering them compares text.
//!
//! # Operators
//!
//! - `eq`, `ne`: structural equality of JSON values, where integers compare by value
//!   (`9007199254740993` and `"9007199254740993"` are equal). Any two values may be
//!   compared.
//! - `lt le gt ge`: two integers by value, or two texts by Unicode code point (the order
//!   of Rust's `str` and of UTF-8 bytes). We chose code points over the UTF-16 order
//!   RFC 8785 uses for object keys (`aos_store::canon::cmp_utf16`): that order is an
//!   artefact of one encoding, it differs only for U+E000..=U+FFFF against characters
//!   beyond the BMP, and code point order is what reducers written in any language get
//!   from comparing the decoded characters. A canonical big-integer string against any
//!   other text compares as text. Anything else fails.
//! - `and`, `or` (one or more booleans) evaluate left to right and stop at the first
//!   operand that decides the result, so `and(has(x, "k"), eq(get(x, "k"), 1))` is safe;
//!   `not` takes one boolean.
//! - `len`: characters of a text (Unicode scalar values), elements of a list or set,
//!   entries of a map (an object, or the `[[k, v], …]` form, which is an array).
//! - `get(c, k)`: an object (record, text-keyed map, variant envelope) with a text key;
//!   a list with an integer index; an array with any other key is read as a map in the
//!   `[[k, v], …]` form. A missing key or index fails.
//! - `has(c, k)`: an object with a text key; an array holds `k` when an element equals
//!   it (a set) or an element is a pair `[k, v]` (a map with non-text keys).
//! - `contains(a, b)`: a substring of a text, or an element of a list or set.
//! - `starts_with`, `ends_with`: two texts.
//! - `concat`: one or more texts, or one or more lists (sets concatenate as lists).
//! - `add sub mul div mod`: two integers.
//!
//! # Constructors and constants
//!
//! `record` gives an object; `list` an array; `set` an array deduplicated and sorted by
//! canonical bytes; `map` an object when every key is text, else `[[k, v], …]` sorted by
//! the key's canonical bytes (a repeated key fails); `variant` the envelope
//! `{"$tag": …, "$value": …}`. Constants (`{"nat": 3}`, `{"nat": "3"}`,
//! `{"time_ns": …}`, `{"dec128": "1.50"}`, …) are canonicalized against their type with
//! `air_fmt::value::canonicalize`; `{"null": {}}` is JSON `null` (an option's none).
//!
//! # References
//!
//! A path walks object fields, so `@var:x`-bound variants are entered with `$tag` and
//! `$value`; a missing field (or a field of a non-object) fails naming the whole
//! reference and the segment. Reference results are returned as the environment holds
//! them (the engine keeps canonical values there).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use air_fmt::expr::{Expr, ExprOrValue, ExprRef, OPS};
use air_fmt::types::TypeExpr;
use air_fmt::value::show;
use serde_json::{Map, Value};

/// How deep an expression may nest before evaluation stops with [`EvalError::TooDeep`]
/// (parsed expressions stay far below it; this bounds the stack for built ones).
pub const MAX_DEPTH: usize = 256;

/// The largest integer a JSON number holds canonically: 2^53 − 1.
const MAX_SAFE: i128 = (1 << 53) - 1;
const INT_MIN: i128 = i64::MIN as i128;
const INT_MAX: i128 = u64::MAX as i128;

/// What an expression can read.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    /// `@plan.input`.
    pub input: &'a Value,
    /// `@var:NAME`.
    pub vars: &'a BTreeMap<String, Value>,
    /// `@step:ID`: the value each finished step produced.
    pub steps: &'a BTreeMap<String, Value>,
    /// `@event`, only while an `await_event.where` is matched.
    pub event: Option<&'a Value>,
}

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A reference path names a field that is not there.
    #[error("`{reference}`: no field `{field}` in {found}")]
    MissingField {
        reference: String,
        field: String,
        found: String,
    },
    #[error("`@var:{0}` is not bound")]
    UnknownVar(String),
    #[error("`@step:{0}` has no value (the step has not finished)")]
    UnknownStep(String),
    #[error("`@event` is only bound inside an `await_event` filter")]
    NoEvent,
    /// An operand of the wrong shape.
    #[error("`{op}` expects {expected}, found {found}")]
    Type {
        op: String,
        expected: &'static str,
        found: String,
    },
    /// An integer result outside `i64::MIN..=u64::MAX`.
    #[error("`{op}` overflows on {lhs} and {rhs}")]
    Overflow {
        op: String,
        lhs: String,
        rhs: String,
    },
    #[error("`{op}` of {lhs} by zero")]
    DivisionByZero { op: String, lhs: String },
    #[error("`get`: no key {key} in {found}")]
    MissingKey { key: String, found: String },
    #[error("`get`: index {index} is out of range for a list of {len}")]
    IndexOutOfRange { index: String, len: usize },
    #[error("`{op}` takes {expected} argument(s), found {found}")]
    BadArity {
        op: String,
        expected: String,
        found: usize,
    },
    #[error("unknown operator `{0}`")]
    UnknownOp(String),
    #[error("constant {{\"{tag}\": {found}}}: {why}")]
    BadConst {
        tag: String,
        found: String,
        why: String,
    },
    #[error("`map`: the key {key} appears twice")]
    DuplicateKey { key: String },
    /// A guard (an edge's `when`, an invariant, a `where`) that is not a boolean.
    #[error("a guard must be a bool, found {found}")]
    NotBool { found: String },
    #[error("the expression nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Evaluate an expression.
pub fn eval(expr: &Expr, env: &Env) -> Result<Value, EvalError> {
    eval_at(expr, env, 0)
}

/// Evaluate an expression, or return a literal value as it is (the caller canonicalizes
/// it against the schema of its position).
pub fn eval_or_value(e: &ExprOrValue, env: &Env) -> Result<Value, EvalError> {
    match e {
        ExprOrValue::Expr(x) => eval(x, env),
        ExprOrValue::Value(v) => Ok(v.clone()),
    }
}

/// A guard's verdict: guards must be booleans.
pub fn truthy(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(EvalError::NotBool { found: show(other) }),
    }
}

fn eval_at(expr: &Expr, env: &Env, depth: usize) -> Result<Value, EvalError> {
    if depth >= MAX_DEPTH {
        return Err(EvalError::TooDeep);
    }
    let d = depth + 1;
    match expr {
        Expr::Ref(r) => reference(r, env),
        Expr::Const(tag, v) => constant(tag, v),
        Expr::Op(op, args) => operator(op, args, env, d),
        Expr::Record(fields) => {
            let mut out = Map::new();
            for (k, e) in fields {
                out.insert(k.clone(), eval_at(e, env, d)?);
            }
            Ok(Value::Object(out))
        }
        Expr::List(items) => items
            .iter()
            .map(|e| eval_at(e, env, d))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Expr::Set(items) => {
            let mut keyed = Vec::with_capacity(items.len());
            for e in items {
                let v = eval_at(e, env, d)?;
                keyed.push((canonical_bytes(&v), v));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            keyed.dedup_by(|a, b| a.0 == b.0);
            // Each member in its canonical form, so that of members equal in canonical
            // form (0 and -0.0) the output does not depend on which came first.
            Ok(Value::Array(
                keyed
                    .into_iter()
                    .map(|(k, v)| serde_json::from_slice(&k).unwrap_or(v))
                    .collect(),
            ))
        }
        Expr::Map(entries) => {
            let mut pairs = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                pairs.push((eval_at(k, env, d)?, eval_at(v, env, d)?));
            }
            build_map(pairs)
        }
        Expr::Variant(tag, value) => {
            let mut out = Map::new();
            out.insert("$tag".to_string(), Value::String(tag.clone()));
            if let Some(v) = value {
                out.insert("$value".to_string(), eval_at(v, env, d)?);
            }
            Ok(Value::Object(out))
        }
    }
}

fn build_map(pairs: Vec<(Value, Value)>) -> Result<Value, EvalError> {
    if pairs.iter().all(|(k, _)| k.is_string()) {
        let mut out = Map::new();
        for (k, v) in pairs {
            if let Value::String(k) = k {
                if out.contains_key(&k) {
                    return Err(EvalError::DuplicateKey {
                        key: show(&Value::String(k)),
                    });
                }
                out.insert(k, v);
            }
        }
        return Ok(Value::Object(out));
    }
    let mut keyed: Vec<(Vec<u8>, Value, Value)> = pairs
        .into_iter()
        .map(|(k, v)| (canonical_bytes(&k), k, v))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(EvalError::DuplicateKey { key: show(&w[0].1) });
    }
    Ok(Value::Array(
        keyed
            .into_iter()
            .map(|(_, k, v)| Value::Array(vec![k, v]))
            .collect(),
    ))
}

fn reference(r: &ExprRef, env: &Env) -> Result<Value, EvalError> {
    let (root, path): (&Value, &[String]) = match r {
        ExprRef::PlanInput(p) => (env.input, p),
        ExprRef::Var(name) => (
            env.vars
                .get(name)
                .ok_or_else(|| EvalError::UnknownVar(name.clone()))?,
            &[],
        ),
        ExprRef::Step(id, p) => (
            env.steps
                .get(id)
                .ok_or_else(|| EvalError::UnknownStep(id.clone()))?,
            p,
        ),
        ExprRef::Event(p) => (env.event.ok_or(EvalError::NoEvent)?, p),
    };
    let mut cur = root;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg),
            _ => None,
        }
        .ok_or_else(|| EvalError::MissingField {
            reference: r.to_text(),
            field: seg.clone(),
            found: show(cur),
        })?;
    }
    Ok(cur.clone())
}

fn constant(tag: &str, v: &Value) -> Result<Value, EvalError> {
    let bad = |why: String| EvalError::BadConst {
        tag: tag.to_string(),
        found: show(v),
        why,
    };
    let ty = match tag {
        "null" => {
            return match v {
                Value::Null => Ok(Value::Null),
                Value::Object(m) if m.is_empty() => Ok(Value::Null),
                _ => Err(bad("`null` holds {}".to_string())),
            }
        }
        "bool" => TypeExpr::Bool,
        "text" => TypeExpr::Text,
        "int" => TypeExpr::Int,
        "nat" => TypeExpr::Nat,
        "dec128" => TypeExpr::Dec128,
        "bytes_b64" | "bytes" => TypeExpr::Bytes,
        "time_ns" | "time" => TypeExpr::Time,
        "duration_ns" | "duration" => TypeExpr::Duration,
        "hash" => TypeExpr::Hash,
        "uuid" => TypeExpr::Uuid,
        _ => return Err(bad(format!("unknown constant type `{tag}`"))),
    };
    // Fast paths for the forms that are already canonical.
    match (&ty, v) {
        (TypeExpr::Bool, Value::Bool(_)) | (TypeExpr::Text, Value::String(_)) => {
            return Ok(v.clone())
        }
        (TypeExpr::Int | TypeExpr::Duration, Value::Number(n)) => {
            if let Some(i) = n.as_i64().filter(|i| i128::from(*i).abs() <= MAX_SAFE) {
                return Ok(Value::from(i));
            }
        }
        (TypeExpr::Nat | TypeExpr::Time, Value::Number(n)) => {
            if let Some(u) = n.as_u64().filter(|u| i128::from(*u) <= MAX_SAFE) {
                return Ok(Value::from(u));
            }
        }
        _ => {}
    }
    air_fmt::value::canonicalize(v, &ty, &()).map_err(|diags| {
        bad(diags
            .first()
            .map(|d| d.message.clone())
            .unwrap_or_else(|| "not a value of its type".to_string()))
    })
}

fn operator(op: &str, args: &[Expr], env: &Env, depth: usize) -> Result<Value, EvalError> {
    let Some(&(_, min, max)) = OPS.iter().find(|(n, _, _)| *n == op) else {
        return Err(EvalError::UnknownOp(op.to_string()));
    };
    if args.len() < min || max.is_some_and(|x| args.len() > x) {
        return Err(EvalError::BadArity {
            op: op.to_string(),
            expected: match max {
                Some(x) if x == min => format!("{min}"),
                Some(x) => format!("{min} to {x}"),
                None => format!("at least {min}"),
            },
            found: args.len(),
        });
    }
    if op == "and" || op == "or" {
        // Left to right; the first operand equal to `decides` is the result.
        let decides = op == "or";
        for a in args {
            match eval_at(a, env, depth)? {
                Value::Bool(b) if b == decides => return Ok(Value::Bool(decides)),
                Value::Bool(_) => {}
                other => return Err(type_err(op, "bools", &other)),
            }
        }
        return Ok(Value::Bool(!decides));
    }
    let vals = args
        .iter()
        .map(|a| eval_at(a, env, depth))
        .collect::<Result<Vec<_>, _>>()?;
    apply(op, &vals)
}

/// Apply a strict operator to evaluated operands of the right count.
fn apply(op: &str, vals: &[Value]) -> Result<Value, EvalError> {
    static NULL: Value = Value::Null;
    let arg = |i: usize| vals.get(i).unwrap_or(&NULL);
    let (a, b) = (arg(0), arg(1));
    match op {
        "len" => {
            let n = match a {
                Value::String(s) => s.chars().count(),
                Value::Array(v) => v.len(),
                Value::Object(m) => m.len(),
                other => return Err(type_err(op, "a text, list, set or map", other)),
            };
            Ok(int_value(n as i128).unwrap_or(Value::Null))
        }
        "get" => get(a, b),
        "has" => match (a, b) {
            (Value::Object(m), Value::String(k)) => Ok(Value::Bool(m.contains_key(k))),
            (Value::Object(_), other) => Err(type_err(op, "a text key for an object", other)),
            (Value::Array(items), k) => Ok(Value::Bool(items.iter().any(|e| {
                equal(e, k) || matches!(e, Value::Array(p) if p.len() == 2 && equal(&p[0], k))
            }))),
            (other, _) => Err(type_err(op, "a record, map or set", other)),
        },
        "eq" => Ok(Value::Bool(equal(a, b))),
        "ne" => Ok(Value::Bool(!equal(a, b))),
        "lt" | "le" | "gt" | "ge" => {
            let ord = compare(op, a, b)?;
            Ok(Value::Bool(match op {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "not" => match a {
            Value::Bool(x) => Ok(Value::Bool(!x)),
            other => Err(type_err(op, "a bool", other)),
        },
        "concat" => concat(vals),
        "add" | "sub" | "mul" | "div" | "mod" => arith(op, a, b),
        "starts_with" | "ends_with" => match (a, b) {
            (Value::String(s), Value::String(p)) => Ok(Value::Bool(if op == "starts_with" {
                s.starts_with(p.as_str())
            } else {
                s.ends_with(p.as_str())
            })),
            (Value::String(_), other) | (other, _) => Err(type_err(op, "two texts", other)),
        },
        "contains" => match (a, b) {
            (Value::String(s), Value::String(p)) => Ok(Value::Bool(s.contains(p.as_str()))),
            (Value::String(_), other) => Err(type_err(op, "a text to find in a text", other)),
            (Value::Array(items), x) => Ok(Value::Bool(items.iter().any(|e| equal(e, x)))),
            (other, _) => Err(type_err(op, "a text, list or set", other)),
        },
        other => Err(EvalError::UnknownOp(other.to_string())),
    }
}

fn get(c: &Value, k: &Value) -> Result<Value, EvalError> {
    let missing = || EvalError::MissingKey {
        key: show(k),
        found: show(c),
    };
    match c {
        Value::Object(m) => match k {
            Value::String(key) => m.get(key).cloned().ok_or_else(missing),
            other => Err(type_err("get", "a text key for an object", other)),
        },
        Value::Array(items) => {
            if let Some(i) = as_int(k) {
                return usize::try_from(i)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| EvalError::IndexOutOfRange {
                        index: i.to_string(),
                        len: items.len(),
                    });
            }
            items
                .iter()
                .find_map(|e| match e {
                    Value::Array(p) if p.len() == 2 && equal(&p[0], k) => Some(p[1].clone()),
                    _ => None,
                })
                .ok_or_else(missing)
        }
        other => Err(type_err("get", "a record, map or list", other)),
    }
}

fn compare(op: &str, a: &Value, b: &Value) -> Result<Ordering, EvalError> {
    if let (Some(x), Some(y)) = (as_int(a), as_int(b)) {
        return Ok(x.cmp(&y));
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.as_str().cmp(y.as_str())),
        _ => Err(EvalError::Type {
            op: op.to_string(),
            expected: "two integers or two texts",
            found: format!("{} and {}", show(a), show(b)),
        }),
    }
}

fn concat(vals: &[Value]) -> Result<Value, EvalError> {
    match vals.first() {
        Some(Value::String(_)) => {
            let mut out = String::new();
            for v in vals {
                match v {
                    Value::String(s) => out.push_str(s),
                    other => return Err(type_err("concat", "all texts", other)),
                }
            }
            Ok(Value::String(out))
        }
        Some(Value::Array(_)) => {
            let mut out = Vec::new();
            for v in vals {
                match v {
                    Value::Array(items) => out.extend(items.iter().cloned()),
                    other => return Err(type_err("concat", "all lists", other)),
                }
            }
            Ok(Value::Array(out))
        }
        Some(other) => Err(type_err("concat", "texts or lists", other)),
        None => Err(EvalError::BadArity {
            op: "concat".to_string(),
            expected: "at least 1".to_string(),
            found: 0,
        }),
    }
}

fn arith(op: &str, a: &Value, b: &Value) -> Result<Value, EvalError> {
    let x = as_int(a).ok_or_else(|| type_err(op, "two integers", a))?;
    let y = as_int(b).ok_or_else(|| type_err(op, "two integers", b))?;
    if (op == "div" || op == "mod") && y == 0 {
        return Err(EvalError::DivisionByZero {
            op: op.to_string(),
            lhs: show(a),
        });
    }
    let r = match op {
        "add" => x.checked_add(y),
        "sub" => x.checked_sub(y),
        "mul" => x.checked_mul(y),
        "div" => x.checked_div(y),
        _ => x.checked_rem(y),
    };
    r.and_then(int_value).ok_or_else(|| EvalError::Overflow {
        op: op.to_string(),
        lhs: show(a),
        rhs: show(b),
    })
}

/// An integer operand: a JSON integer, or a canonical decimal string beyond ±(2^53−1).
fn as_int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::String(s) => big_int(s),
        _ => None,
    }
}

/// The canonical string form of a 64-bit integer outside the safe range.
fn big_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty()
        || digits.len() > 20
        || digits.starts_with('0')
        || !digits.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let n: i128 = s.parse().ok()?;
    (n.abs() > MAX_SAFE && (INT_MIN..=INT_MAX).contains(&n)).then_some(n)
}

/// The canonical JSON of an integer result, or `None` outside `i64::MIN..=u64::MAX`.
fn int_value(n: i128) -> Option<Value> {
    if !(INT_MIN..=INT_MAX).contains(&n) {
        return None;
    }
    if n.abs() <= MAX_SAFE {
        i64::try_from(n).ok().map(Value::from)
    } else {
        Some(Value::String(n.to_string()))
    }
}

/// Structural equality where integers compare by value.
fn equal(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (as_int(a), as_int(b)) {
        return x == y;
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

fn type_err(op: &str, expected: &'static str, found: &Value) -> EvalError {
    EvalError::Type {
        op: op.to_string(),
        expected,
        found: show(found),
    }
}

/// Canonical JSON bytes (plain `serde_json` bytes for a value `json-canon` refuses), the
/// sort key of sets and of maps with non-text keys.
fn canonical_bytes(v: &Value) -> Vec<u8> {
    aos_store::canon::value_to_vec(v).unwrap_or_else(|_| serde_json::to_vec(v).unwrap_or_default())
}

#[cfg(test)]
mod tests;
