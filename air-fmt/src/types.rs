//! The AIR type AST: primitives, records, variants, lists, sets, maps, options and
//! references to `defschema`s, parsed from the `{"nat":{}}` JSON form with
//! diagnostics, and written back in one canonical form.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::diag::{show, token, Diagnostic};
use crate::name::Name;

/// A type expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeExpr {
    Bool,
    Int,
    Nat,
    Dec128,
    Bytes,
    Text,
    Time,
    Duration,
    Hash,
    Uuid,
    Unit,
    Record(BTreeMap<String, TypeExpr>),
    Variant(BTreeMap<String, TypeExpr>),
    List(Box<TypeExpr>),
    Set(Box<TypeExpr>),
    Map(Box<TypeExpr>, Box<TypeExpr>),
    Option(Box<TypeExpr>),
    Ref(Name),
}

const PRIMITIVES: [(&str, TypeExpr); 11] = [
    ("bool", TypeExpr::Bool),
    ("int", TypeExpr::Int),
    ("nat", TypeExpr::Nat),
    ("dec128", TypeExpr::Dec128),
    ("bytes", TypeExpr::Bytes),
    ("text", TypeExpr::Text),
    ("time", TypeExpr::Time),
    ("duration", TypeExpr::Duration),
    ("hash", TypeExpr::Hash),
    ("uuid", TypeExpr::Uuid),
    ("unit", TypeExpr::Unit),
];

const FORMS: &str = "one of bool, int, nat, dec128, bytes, text, time, duration, hash, uuid, unit, record, variant, list, set, map, option, ref";

impl TypeExpr {
    /// Parse a type expression at `ptr`. Problems are pushed to `diags`; the result is
    /// None when the expression is unusable.
    pub fn parse(v: &Value, ptr: &str, diags: &mut Vec<Diagnostic>) -> Option<TypeExpr> {
        let Value::Object(m) = v else {
            diags.push(
                Diagnostic::error("bad_type", ptr, "a type is a JSON object with one key")
                    .expected(FORMS)
                    .found(show(v)),
            );
            return None;
        };
        let keys: Vec<&String> = m.keys().filter(|k| *k != "$comment").collect();
        if keys.len() != 1 {
            diags.push(
                Diagnostic::error("bad_type", ptr, "a type has exactly one form key")
                    .expected(FORMS)
                    .found(format!("keys {keys:?}")),
            );
            return None;
        }
        let key = keys[0].as_str();
        let inner = &m[key];
        let at = format!("{ptr}/{}", token(key));
        if let Some((_, t)) = PRIMITIVES.iter().find(|(k, _)| *k == key) {
            if !matches!(inner, Value::Object(o) if o.keys().all(|k| k == "$comment")) {
                diags.push(
                    Diagnostic::error("bad_type", at, format!("`{key}` takes no parameters"))
                        .expected("{}")
                        .found(show(inner)),
                );
            }
            return Some(t.clone());
        }
        match key {
            "record" | "variant" => {
                let Value::Object(fields) = inner else {
                    diags.push(
                        Diagnostic::error("bad_type", at, format!("`{key}` maps names to types"))
                            .expected("an object")
                            .found(show(inner)),
                    );
                    return None;
                };
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (name, t) in fields {
                    if name == "$comment" {
                        continue;
                    }
                    if name.is_empty() {
                        diags.push(Diagnostic::error(
                            "bad_type",
                            at.clone(),
                            format!("a {key} member needs a name"),
                        ));
                        ok = false;
                        continue;
                    }
                    match TypeExpr::parse(t, &format!("{at}/{}", token(name)), diags) {
                        Some(t) => {
                            out.insert(name.clone(), t);
                        }
                        None => ok = false,
                    }
                }
                if key == "variant" && out.is_empty() && ok {
                    diags.push(Diagnostic::error(
                        "bad_type",
                        at,
                        "a variant needs at least one arm",
                    ));
                    return None;
                }
                ok.then(|| {
                    if key == "record" {
                        TypeExpr::Record(out)
                    } else {
                        TypeExpr::Variant(out)
                    }
                })
            }
            "list" | "set" | "option" => {
                let t = Box::new(TypeExpr::parse(inner, &at, diags)?);
                Some(match key {
                    "list" => TypeExpr::List(t),
                    "set" => TypeExpr::Set(t),
                    _ => TypeExpr::Option(t),
                })
            }
            "map" => {
                let Value::Object(kv) = inner else {
                    diags.push(
                        Diagnostic::error("bad_type", at, "`map` has `key` and `value` types")
                            .found(show(inner)),
                    );
                    return None;
                };
                let k = kv.get("key");
                let val = kv.get("value");
                for extra in kv
                    .keys()
                    .filter(|k| !["key", "value", "$comment"].contains(&k.as_str()))
                {
                    diags.push(Diagnostic::error(
                        "unknown_field",
                        format!("{at}/{}", token(extra)),
                        format!("unknown field `{extra}` in map type"),
                    ));
                }
                let (Some(k), Some(val)) = (k, val) else {
                    diags.push(Diagnostic::error(
                        "bad_type",
                        at,
                        "`map` needs both `key` and `value`",
                    ));
                    return None;
                };
                let kt = TypeExpr::parse(k, &format!("{at}/key"), diags)?;
                if !matches!(
                    kt,
                    TypeExpr::Int
                        | TypeExpr::Nat
                        | TypeExpr::Text
                        | TypeExpr::Uuid
                        | TypeExpr::Hash
                ) {
                    diags.push(
                        Diagnostic::error(
                            "bad_map_key",
                            format!("{at}/key"),
                            "map keys must be int, nat, text, uuid or hash",
                        )
                        .found(show(k)),
                    );
                    return None;
                }
                let vt = TypeExpr::parse(val, &format!("{at}/value"), diags)?;
                Some(TypeExpr::Map(Box::new(kt), Box::new(vt)))
            }
            "ref" => match inner.as_str().map(Name::parse) {
                Some(Ok(n)) => Some(TypeExpr::Ref(n)),
                Some(Err(why)) => {
                    diags.push(
                        Diagnostic::error(
                            "bad_name",
                            at,
                            format!("`ref` is not a valid schema name: {why}"),
                        )
                        .found(show(inner)),
                    );
                    None
                }
                None => {
                    diags.push(
                        Diagnostic::error("bad_type", at, "`ref` names a defschema")
                            .expected("a string such as \"demo/Point@1\"")
                            .found(show(inner)),
                    );
                    None
                }
            },
            other => {
                diags.push(
                    Diagnostic::error("bad_type", ptr, format!("unknown type form `{other}`"))
                        .expected(FORMS),
                );
                None
            }
        }
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> Value {
        let members = |m: &BTreeMap<String, TypeExpr>| {
            Value::Object(
                m.iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect::<Map<_, _>>(),
            )
        };
        match self {
            TypeExpr::Record(m) => json!({ "record": members(m) }),
            TypeExpr::Variant(m) => json!({ "variant": members(m) }),
            TypeExpr::List(t) => json!({ "list": t.to_json() }),
            TypeExpr::Set(t) => json!({ "set": t.to_json() }),
            TypeExpr::Option(t) => json!({ "option": t.to_json() }),
            TypeExpr::Map(k, v) => json!({ "map": { "key": k.to_json(), "value": v.to_json() } }),
            TypeExpr::Ref(n) => json!({ "ref": n.as_str() }),
            prim => {
                let key = PRIMITIVES
                    .iter()
                    .find(|(_, t)| t == prim)
                    .map_or("unit", |(k, _)| k);
                json!({ key: {} })
            }
        }
    }

    /// Every schema this type references directly or through nested types.
    pub fn refs<'a>(&'a self, out: &mut Vec<&'a Name>) {
        match self {
            TypeExpr::Ref(n) => out.push(n),
            TypeExpr::Record(m) | TypeExpr::Variant(m) => m.values().for_each(|t| t.refs(out)),
            TypeExpr::List(t) | TypeExpr::Set(t) | TypeExpr::Option(t) => t.refs(out),
            TypeExpr::Map(k, v) => {
                k.refs(out);
                v.refs(out);
            }
            _ => {}
        }
    }

    /// A short human description, e.g. `list<text>`.
    pub fn describe(&self) -> String {
        match self {
            TypeExpr::Record(m) => format!(
                "record {{{}}}",
                m.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            TypeExpr::Variant(m) => format!(
                "variant {}",
                m.keys().cloned().collect::<Vec<_>>().join(" | ")
            ),
            TypeExpr::List(t) => format!("list<{}>", t.describe()),
            TypeExpr::Set(t) => format!("set<{}>", t.describe()),
            TypeExpr::Option(t) => format!("option<{}>", t.describe()),
            TypeExpr::Map(k, v) => format!("map<{}, {}>", k.describe(), v.describe()),
            TypeExpr::Ref(n) => n.to_string(),
            prim => PRIMITIVES
                .iter()
                .find(|(_, t)| t == prim)
                .map_or("unit", |(k, _)| k)
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> (Option<TypeExpr>, Vec<Diagnostic>) {
        let mut d = Vec::new();
        (TypeExpr::parse(&v, "", &mut d), d)
    }

    #[test]
    fn round_trips_every_form() {
        let v = json!({"record": {
            "a": {"nat": {}}, "b": {"option": {"text": {}}}, "c": {"map": {"key": {"text": {}}, "value": {"list": {"int": {}}}}},
            "d": {"variant": {"X": {"unit": {}}, "Y": {"ref": "demo/Y@1"}}}, "e": {"set": {"hash": {}}}
        }});
        let (t, d) = parse(v.clone());
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(t.unwrap().to_json(), v);
    }

    #[test]
    fn comments_are_ignored_and_errors_are_located() {
        let (t, d) = parse(json!({"option": {"text": {}}, "$comment": "hi"}));
        assert!(d.is_empty() && t.is_some());
        let (_, d) = parse(json!({"record": {"a": {"nat": {}}, "b": {"float": {}}}}));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].pointer, "/record/b");
        let (_, d) = parse(json!({"map": {"key": {"bool": {}}, "value": {"nat": {}}}}));
        assert_eq!(d[0].code, "bad_map_key");
        let (_, d) = parse(json!({"ref": "nope"}));
        assert_eq!(d[0].code, "bad_name");
    }
}
