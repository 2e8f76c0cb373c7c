//! Plan expressions: references (`@plan.input…`, `@var:…`, `@step:…`, `@event…`),
//! typed constants, operators, and record/list/set/map/variant constructors; and
//! `ExprOrValue`, where a plain JSON literal stands for a value of the surrounding
//! schema.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::diag::{show, token, Diagnostic};

/// What an expression reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExprRef {
    /// `@plan.input` and a field path.
    PlanInput(Vec<String>),
    /// `@var:name`.
    Var(String),
    /// `@step:id` and a field path.
    Step(String, Vec<String>),
    /// `@event` and a field path (only inside `await_event.where`).
    Event(Vec<String>),
}

impl ExprRef {
    pub fn parse(s: &str) -> Result<ExprRef, String> {
        let path = |rest: &str| -> Result<Vec<String>, String> {
            if rest.is_empty() {
                return Ok(Vec::new());
            }
            let rest = rest
                .strip_prefix('.')
                .ok_or("a path continues with `.field`")?;
            rest.split('.')
                .map(|p| {
                    if p.is_empty() {
                        Err("empty path segment".to_string())
                    } else {
                        Ok(p.to_string())
                    }
                })
                .collect()
        };
        if let Some(rest) = s.strip_prefix("@plan.input") {
            return Ok(ExprRef::PlanInput(path(rest)?));
        }
        if let Some(rest) = s.strip_prefix("@event") {
            return Ok(ExprRef::Event(path(rest)?));
        }
        if let Some(name) = s.strip_prefix("@var:") {
            crate::name::check_ident(name)?;
            return Ok(ExprRef::Var(name.to_string()));
        }
        if let Some(rest) = s.strip_prefix("@step:") {
            let (id, p) = rest
                .split_once('.')
                .map_or((rest, ""), |(a, _)| (a, &rest[a.len()..]));
            crate::name::check_ident(id)?;
            return Ok(ExprRef::Step(id.to_string(), path(p)?));
        }
        Err("a reference is @plan.input[.path], @var:NAME, @step:ID[.path] or @event[.path]".into())
    }

    pub fn to_text(&self) -> String {
        let p = |v: &[String]| v.iter().map(|s| format!(".{s}")).collect::<String>();
        match self {
            ExprRef::PlanInput(v) => format!("@plan.input{}", p(v)),
            ExprRef::Var(n) => format!("@var:{n}"),
            ExprRef::Step(id, v) => format!("@step:{id}{}", p(v)),
            ExprRef::Event(v) => format!("@event{}", p(v)),
        }
    }
}

/// Operators, with their arity.
pub const OPS: [(&str, usize, Option<usize>); 21] = [
    ("len", 1, Some(1)),
    ("get", 2, Some(2)),
    ("has", 2, Some(2)),
    ("eq", 2, Some(2)),
    ("ne", 2, Some(2)),
    ("lt", 2, Some(2)),
    ("le", 2, Some(2)),
    ("gt", 2, Some(2)),
    ("ge", 2, Some(2)),
    ("and", 1, None),
    ("or", 1, None),
    ("not", 1, Some(1)),
    ("concat", 1, None),
    ("add", 2, Some(2)),
    ("sub", 2, Some(2)),
    ("mul", 2, Some(2)),
    ("div", 2, Some(2)),
    ("mod", 2, Some(2)),
    ("starts_with", 2, Some(2)),
    ("ends_with", 2, Some(2)),
    ("contains", 2, Some(2)),
];

const CONSTS: [&str; 11] = [
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
];

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Ref(ExprRef),
    /// A typed constant, kept as its one-key JSON form (`{"nat": 3}`).
    Const(String, Value),
    Op(String, Vec<Expr>),
    Record(BTreeMap<String, Expr>),
    List(Vec<Expr>),
    Set(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Variant(String, Option<Box<Expr>>),
}

impl Expr {
    /// Parse an expression at `ptr`.
    pub fn parse(v: &Value, ptr: &str, diags: &mut Vec<Diagnostic>) -> Option<Expr> {
        let Value::Object(m) = v else {
            diags.push(
                Diagnostic::error("bad_expr", ptr, "an expression is a JSON object").found(show(v)),
            );
            return None;
        };
        let keys: Vec<&str> = m
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "$comment")
            .collect();
        if keys.contains(&"op") {
            return Self::parse_op(m, ptr, diags);
        }
        if keys.len() != 1 {
            diags.push(
                Diagnostic::error(
                    "bad_expr",
                    ptr,
                    "an expression has exactly one form key (or `op` and `args`)",
                )
                .expected(
                    "ref, op, record, list, set, map, variant, or a constant such as {\"nat\": 1}",
                )
                .found(format!("keys {keys:?}")),
            );
            return None;
        }
        let key = keys[0];
        let inner = &m[key];
        let at = format!("{ptr}/{}", token(key));
        match key {
            "ref" => match inner.as_str().map(ExprRef::parse) {
                Some(Ok(r)) => Some(Expr::Ref(r)),
                Some(Err(why)) => {
                    diags.push(Diagnostic::error("bad_ref", at, why).found(show(inner)));
                    None
                }
                None => {
                    diags.push(
                        Diagnostic::error("bad_ref", at, "`ref` must be a string")
                            .found(show(inner)),
                    );
                    None
                }
            },
            "record" => {
                let Value::Object(fields) = inner else {
                    diags.push(
                        Diagnostic::error(
                            "bad_expr",
                            at,
                            "`record` maps field names to expressions",
                        )
                        .found(show(inner)),
                    );
                    return None;
                };
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (k, e) in fields.iter().filter(|(k, _)| *k != "$comment") {
                    match Expr::parse(e, &format!("{at}/{}", token(k)), diags) {
                        Some(e) => {
                            out.insert(k.clone(), e);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(Expr::Record(out))
            }
            "list" | "set" => {
                let Value::Array(items) = inner else {
                    diags.push(
                        Diagnostic::error(
                            "bad_expr",
                            at,
                            format!("`{key}` holds an array of expressions"),
                        )
                        .found(show(inner)),
                    );
                    return None;
                };
                let parsed: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| Expr::parse(e, &format!("{at}/{i}"), diags))
                    .collect();
                let all: Option<Vec<Expr>> = parsed.into_iter().collect();
                all.map(|v| {
                    if key == "list" {
                        Expr::List(v)
                    } else {
                        Expr::Set(v)
                    }
                })
            }
            "map" => {
                let Value::Array(items) = inner else {
                    diags.push(
                        Diagnostic::error(
                            "bad_expr",
                            at,
                            "`map` holds an array of {key, value} entries",
                        )
                        .found(show(inner)),
                    );
                    return None;
                };
                let mut out = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    let (Some(k), Some(v)) = (item.get("key"), item.get("value")) else {
                        diags.push(
                            Diagnostic::error("bad_expr", p, "a map entry has `key` and `value`")
                                .found(show(item)),
                        );
                        ok = false;
                        continue;
                    };
                    match (
                        Expr::parse(k, &format!("{p}/key"), diags),
                        Expr::parse(v, &format!("{p}/value"), diags),
                    ) {
                        (Some(k), Some(v)) => out.push((k, v)),
                        _ => ok = false,
                    }
                }
                ok.then_some(Expr::Map(out))
            }
            "variant" => {
                let Some(tag) = inner.get("tag").and_then(Value::as_str) else {
                    diags.push(
                        Diagnostic::error("bad_expr", at, "`variant` needs a string `tag`")
                            .found(show(inner)),
                    );
                    return None;
                };
                let value = match inner.get("value") {
                    None => None,
                    Some(v) => Some(Box::new(Expr::parse(v, &format!("{at}/value"), diags)?)),
                };
                Some(Expr::Variant(tag.to_string(), value))
            }
            k if CONSTS.contains(&k) => Self::parse_const(k, inner, &at, diags),
            other => {
                diags.push(
                    Diagnostic::error("bad_expr", ptr, format!("unknown expression form `{other}`"))
                        .expected("ref, op, record, list, set, map, variant, or a constant such as {\"text\": \"x\"}"),
                );
                None
            }
        }
    }

    fn parse_op(m: &Map<String, Value>, ptr: &str, diags: &mut Vec<Diagnostic>) -> Option<Expr> {
        for k in m
            .keys()
            .filter(|k| !["op", "args", "$comment"].contains(&k.as_str()))
        {
            diags.push(Diagnostic::error(
                "unknown_field",
                format!("{ptr}/{}", token(k)),
                format!("unknown field `{k}` in an operator expression"),
            ));
        }
        let Some(op) = m.get("op").and_then(Value::as_str) else {
            diags.push(
                Diagnostic::error(
                    "bad_expr",
                    format!("{ptr}/op"),
                    "`op` must be an operator name",
                )
                .found(show(&m["op"])),
            );
            return None;
        };
        let Some(&(_, min, max)) = OPS.iter().find(|(n, _, _)| *n == op) else {
            let names: Vec<_> = OPS.iter().map(|(n, _, _)| *n).collect();
            diags.push(
                Diagnostic::error(
                    "unknown_op",
                    format!("{ptr}/op"),
                    format!("unknown operator `{op}`"),
                )
                .expected(names.join(", ")),
            );
            return None;
        };
        let Some(Value::Array(args)) = m.get("args") else {
            diags.push(Diagnostic::error(
                "bad_expr",
                format!("{ptr}/args"),
                format!("`{op}` needs an `args` array"),
            ));
            return None;
        };
        if args.len() < min || max.is_some_and(|x| args.len() > x) {
            let want = match max {
                Some(x) if x == min => format!("{min}"),
                Some(x) => format!("{min} to {x}"),
                None => format!("at least {min}"),
            };
            diags.push(
                Diagnostic::error(
                    "bad_arity",
                    format!("{ptr}/args"),
                    format!("`{op}` takes {want} argument(s)"),
                )
                .found(format!("{} argument(s)", args.len())),
            );
            return None;
        }
        let parsed: Vec<_> = args
            .iter()
            .enumerate()
            .map(|(i, a)| Expr::parse(a, &format!("{ptr}/args/{i}"), diags))
            .collect();
        let all: Option<Vec<Expr>> = parsed.into_iter().collect();
        Some(Expr::Op(op.to_string(), all?))
    }

    fn parse_const(k: &str, v: &Value, at: &str, diags: &mut Vec<Diagnostic>) -> Option<Expr> {
        let ok = match k {
            "null" => v.as_object().is_some_and(Map::is_empty),
            "bool" => v.is_boolean(),
            "int" | "duration_ns" => {
                v.is_i64() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok())
            }
            "nat" | "time_ns" => v.is_u64() || v.as_str().is_some_and(|s| s.parse::<u64>().is_ok()),
            _ => v.is_string(),
        };
        if !ok {
            diags.push(
                Diagnostic::error(
                    "bad_const",
                    at,
                    format!("`{k}` constant has the wrong form"),
                )
                .found(show(v)),
            );
            return None;
        }
        Some(Expr::Const(k.to_string(), v.clone()))
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Expr::Ref(r) => json!({ "ref": r.to_text() }),
            Expr::Const(k, v) => {
                let v = match (k.as_str(), v) {
                    ("int" | "duration_ns", Value::String(s)) => s
                        .parse::<i64>()
                        .map(aos_store::canon::i64_value)
                        .unwrap_or_else(|_| v.clone()),
                    ("nat" | "time_ns", Value::String(s)) => s
                        .parse::<u64>()
                        .map(aos_store::canon::u64_value)
                        .unwrap_or_else(|_| v.clone()),
                    ("int" | "duration_ns", Value::Number(n)) => n
                        .as_i64()
                        .map(aos_store::canon::i64_value)
                        .unwrap_or_else(|| v.clone()),
                    _ => v.clone(),
                };
                json!({ k.as_str(): v })
            }
            Expr::Op(op, args) => {
                json!({ "op": op, "args": args.iter().map(Expr::to_json).collect::<Vec<_>>() })
            }
            Expr::Record(m) => {
                json!({ "record": m.iter().map(|(k, e)| (k.clone(), e.to_json())).collect::<Map<_, _>>() })
            }
            Expr::List(v) => json!({ "list": v.iter().map(Expr::to_json).collect::<Vec<_>>() }),
            Expr::Set(v) => json!({ "set": v.iter().map(Expr::to_json).collect::<Vec<_>>() }),
            Expr::Map(v) => {
                json!({ "map": v.iter().map(|(k, e)| json!({"key": k.to_json(), "value": e.to_json()})).collect::<Vec<_>>() })
            }
            Expr::Variant(tag, None) => json!({ "variant": { "tag": tag } }),
            Expr::Variant(tag, Some(v)) => {
                json!({ "variant": { "tag": tag, "value": v.to_json() } })
            }
        }
    }

    /// Every reference in this expression.
    pub fn refs<'a>(&'a self, out: &mut Vec<&'a ExprRef>) {
        match self {
            Expr::Ref(r) => out.push(r),
            Expr::Const(..) => {}
            Expr::Op(_, a) | Expr::List(a) | Expr::Set(a) => a.iter().for_each(|e| e.refs(out)),
            Expr::Record(m) => m.values().for_each(|e| e.refs(out)),
            Expr::Map(v) => v.iter().for_each(|(k, e)| {
                k.refs(out);
                e.refs(out);
            }),
            Expr::Variant(_, v) => {
                if let Some(v) = v {
                    v.refs(out)
                }
            }
        }
    }
}

/// Either an expression or a literal value read through the surrounding schema.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprOrValue {
    Expr(Expr),
    Value(Value),
}

impl ExprOrValue {
    /// An object that parses as an expression is one; `op` and `ref` objects must parse
    /// (their errors are reported); anything else is a literal value.
    pub fn parse(v: &Value, ptr: &str, diags: &mut Vec<Diagnostic>) -> ExprOrValue {
        let committed = v
            .as_object()
            .is_some_and(|m| m.contains_key("op") || (m.len() == 1 && m.contains_key("ref")));
        let mut tmp = Vec::new();
        match Expr::parse(v, ptr, &mut tmp) {
            Some(e) if tmp.is_empty() => ExprOrValue::Expr(e),
            _ if committed => {
                diags.extend(tmp);
                ExprOrValue::Value(v.clone())
            }
            _ => ExprOrValue::Value(v.clone()),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            ExprOrValue::Expr(e) => e.to_json(),
            ExprOrValue::Value(v) => v.clone(),
        }
    }

    pub fn refs<'a>(&'a self, out: &mut Vec<&'a ExprRef>) {
        if let ExprOrValue::Expr(e) = self {
            e.refs(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_corpus_shapes() {
        let v = json!({"variant": {"tag": "Done", "value": {"record": {
            "status": {"ref": "@var:receipt_status"},
            "n": {"op": "add", "args": [{"ref": "@plan.input.target"}, {"nat": 1}]}
        }}}});
        let mut d = Vec::new();
        let e = Expr::parse(&v, "", &mut d).unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(e.to_json(), v);
        let mut refs = Vec::new();
        e.refs(&mut refs);
        assert_eq!(refs.len(), 2);
    }

    #[test]
    fn literals_and_committed_errors() {
        let mut d = Vec::new();
        let lit = ExprOrValue::parse(&json!({"method": "GET", "headers": {}}), "/params", &mut d);
        assert!(matches!(lit, ExprOrValue::Value(_)) && d.is_empty());
        ExprOrValue::parse(&json!({"op": "gett", "args": [{"nat": 1}]}), "/x", &mut d);
        assert_eq!(d[0].code, "unknown_op");
        assert_eq!(d[0].pointer, "/x/op");
        assert!(ExprRef::parse("@step:a.b.c").is_ok());
        assert!(ExprRef::parse("@plan.inputx").is_err());
        assert!(ExprRef::parse("@var:").is_err());
    }
}
