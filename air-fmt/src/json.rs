//! A small reader for hand-parsing AIR JSON with precise diagnostics: it walks an
//! object, tracks the JSON pointer, reports missing and mistyped fields, and flags
//! unknown keys (likely typos) when it is finished. `$comment` keys are allowed
//! everywhere and ignored.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::diag::{show, token, Diagnostic};
use crate::name::{check_ident, check_kind, Name};

/// The JSON type of a value, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Remove `$comment` keys from every object, recursively.
pub fn strip_comments(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("$comment");
            m.values_mut().for_each(strip_comments);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_comments),
        _ => {}
    }
}

/// Reads one JSON object at `ptr`, collecting diagnostics in `diags`.
pub struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub ptr: String,
    used: BTreeSet<&'static str>,
}

impl<'a> Obj<'a> {
    /// Start reading `v` as an object; None (with a diagnostic) if it is not one.
    pub fn new(
        v: &'a Value,
        ptr: &str,
        what: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Obj<'a>> {
        match v {
            Value::Object(map) => Some(Obj {
                map,
                ptr: ptr.to_string(),
                used: BTreeSet::new(),
            }),
            other => {
                diags.push(
                    Diagnostic::error("wrong_type", ptr, format!("{what} must be a JSON object"))
                        .expected("an object")
                        .found(show(other)),
                );
                None
            }
        }
    }

    pub fn at(&self, key: &str) -> String {
        format!("{}/{}", self.ptr, token(key))
    }

    pub fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.used.insert(key);
        self.map.get(key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A required field.
    pub fn req(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<&'a Value> {
        let v = self.get(key);
        if v.is_none() {
            diags.push(Diagnostic::error(
                "missing_field",
                self.ptr.clone(),
                format!("required field `{key}` is missing"),
            ));
        }
        v
    }

    pub fn req_str(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<&'a str> {
        let v = self.req(key, diags)?;
        self.as_str(key, v, diags)
    }

    pub fn opt_str(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<&'a str> {
        match self.get(key)? {
            Value::Null => None,
            v => self.as_str(key, v, diags),
        }
    }

    fn as_str(&self, key: &str, v: &'a Value, diags: &mut Vec<Diagnostic>) -> Option<&'a str> {
        match v {
            Value::String(s) => Some(s),
            other => {
                diags.push(
                    Diagnostic::error(
                        "wrong_type",
                        self.at(key),
                        format!("`{key}` must be a string"),
                    )
                    .expected("a string")
                    .found(show(other)),
                );
                None
            }
        }
    }

    pub fn req_name(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<Name> {
        let s = self.req_str(key, diags)?;
        self.name_at(key, s, diags)
    }

    pub fn opt_name(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<Name> {
        let s = self.opt_str(key, diags)?;
        self.name_at(key, s, diags)
    }

    fn name_at(&self, key: &str, s: &str, diags: &mut Vec<Diagnostic>) -> Option<Name> {
        match Name::parse(s) {
            Ok(n) => Some(n),
            Err(why) => {
                diags.push(
                    Diagnostic::error(
                        "bad_name",
                        self.at(key),
                        format!("`{key}` is not a valid name: {why}"),
                    )
                    .expected("namespace/name@version, e.g. demo/Counter@1")
                    .found(format!("{s:?}")),
                );
                None
            }
        }
    }

    /// A required identifier (step id, variable, grant or slot name).
    pub fn req_ident(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<String> {
        let s = self.req_str(key, diags)?;
        ident_at(&self.at(key), key, s, diags)
    }

    /// A required effect kind or capability type.
    pub fn req_kind(&mut self, key: &'static str, diags: &mut Vec<Diagnostic>) -> Option<String> {
        let s = self.req_str(key, diags)?;
        kind_at(&self.at(key), key, s, diags)
    }

    pub fn opt_array(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<&'a Vec<Value>> {
        match self.get(key)? {
            Value::Null => None,
            Value::Array(a) => Some(a),
            other => {
                diags.push(
                    Diagnostic::error(
                        "wrong_type",
                        self.at(key),
                        format!("`{key}` must be an array"),
                    )
                    .expected("an array")
                    .found(show(other)),
                );
                None
            }
        }
    }

    pub fn opt_object(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<&'a Map<String, Value>> {
        match self.get(key)? {
            Value::Null => None,
            Value::Object(m) => Some(m),
            other => {
                diags.push(
                    Diagnostic::error(
                        "wrong_type",
                        self.at(key),
                        format!("`{key}` must be an object"),
                    )
                    .expected("an object")
                    .found(show(other)),
                );
                None
            }
        }
    }

    /// Report keys that were never read (after `$kind` and `$comment`).
    pub fn finish(self, diags: &mut Vec<Diagnostic>) {
        for k in self.map.keys() {
            if k == "$kind" || k == "$comment" || self.used.contains(k.as_str()) {
                continue;
            }
            let known: Vec<_> = self.used.iter().copied().collect();
            diags.push(
                Diagnostic::error("unknown_field", self.at(k), format!("unknown field `{k}`"))
                    .expected(format!("one of: {}", known.join(", ")))
                    .hint("check the spelling; AIR rejects fields it does not know"),
            );
        }
    }
}

pub fn ident_at(ptr: &str, what: &str, s: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match check_ident(s) {
        Ok(()) => Some(s.to_string()),
        Err(why) => {
            diags.push(
                Diagnostic::error("bad_identifier", ptr, format!("`{what}` {why}"))
                    .found(format!("{s:?}")),
            );
            None
        }
    }
}

pub fn kind_at(ptr: &str, what: &str, s: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match check_kind(s) {
        Ok(()) => Some(s.to_string()),
        Err(why) => {
            diags.push(
                Diagnostic::error("bad_identifier", ptr, format!("`{what}` {why}"))
                    .found(format!("{s:?}")),
            );
            None
        }
    }
}

/// Read an array of strings.
pub fn strings(v: &Value, ptr: &str, diags: &mut Vec<Diagnostic>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{ptr}/{i}");
                match item {
                    Value::String(s) => out.push((p, s.clone())),
                    other => diags.push(
                        Diagnostic::error("wrong_type", p, "expected a string").found(show(other)),
                    ),
                }
            }
        }
        other => diags.push(
            Diagnostic::error("wrong_type", ptr, "expected an array of strings").found(show(other)),
        ),
    }
    out
}
