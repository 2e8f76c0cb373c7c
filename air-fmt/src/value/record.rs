//! Records and variants.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{describe, expect, show, single, Cx, Reading};
use crate::diag::Diagnostic;
use crate::name::Name;
use crate::types::TypeExpr;

impl<'a> Cx<'a> {
    pub(super) fn record(
        &mut self,
        v: &Value,
        t: &'a TypeExpr,
        fields: &'a BTreeMap<String, TypeExpr>,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        let Value::Object(m) = v else {
            self.mismatch(t, label, "expected a record (a JSON object)", v);
            return None;
        };
        match single(v) {
            Some((k, p)) if k == "record" => {
                let tagged = |cx: &mut Cx<'a>| -> Option<Value> {
                    let mark = cx.enter("record");
                    let out = match p {
                        Value::Object(body) => cx.record_body(p, body, t, fields, label, depth),
                        _ => {
                            cx.mismatch(t, label, "`record` holds an object of fields", p);
                            None
                        }
                    };
                    cx.leave(mark);
                    out
                };
                if fields.contains_key("record") {
                    let sugar = |cx: &mut Cx<'a>| cx.record_body(v, m, t, fields, label, depth);
                    self.first_valid(v, t, &[&sugar, &tagged])
                } else {
                    tagged(self)
                }
            }
            _ => self.record_body(v, m, t, fields, label, depth),
        }
    }

    fn record_body(
        &mut self,
        v: &Value,
        m: &Map<String, Value>,
        t: &'a TypeExpr,
        fields: &'a BTreeMap<String, TypeExpr>,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        let mut out = Map::new();
        let mut ok = true;
        for (k, x) in m {
            let mark = self.enter(k);
            match fields.get(k) {
                Some(ft) => match self.canon(x, ft, depth + 1, 0) {
                    Some(c) => {
                        out.insert(k.clone(), c);
                    }
                    None => ok = false,
                },
                None => {
                    let known: Vec<&str> = fields.keys().map(String::as_str).collect();
                    self.diags.push(
                        Diagnostic::error(
                            "unknown_field",
                            self.ptr.clone(),
                            format!("unknown field `{k}` in {}", expect(t, label)),
                        )
                        .expected(format!("one of: {}", known.join(", ")))
                        .found(show(x)),
                    );
                    ok = false;
                }
            }
            self.leave(mark);
        }
        if m.len() < fields.len() || !ok {
            for (name, ft) in fields {
                if m.contains_key(name) {
                    continue;
                }
                if self.is_option(ft) {
                    out.insert(name.clone(), Value::Null);
                } else {
                    self.error(
                        "missing_field",
                        format!("required field `{name}` of {} is missing", expect(t, label)),
                        describe(ft),
                        v,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(Value::Object(out))
    }

    pub(super) fn variant(
        &mut self,
        v: &Value,
        t: &'a TypeExpr,
        arms: &'a BTreeMap<String, TypeExpr>,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        let arm_list = || {
            format!(
                "one of: {}",
                arms.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let m = match v {
            Value::String(s) => {
                let Some((name, at)) = arms.get_key_value(s) else {
                    self.error(
                        "unknown_arm",
                        format!("unknown arm `{s}` of {}", expect(t, label)),
                        arm_list(),
                        v,
                    );
                    return None;
                };
                if !self.is_unit(at) {
                    self.mismatch(
                        t,
                        label,
                        format!(
                            "arm `{s}` carries a value of type {}; write {{\"{s}\": value}}",
                            describe(at)
                        ),
                        v,
                    );
                    return None;
                }
                return Some(envelope(name, None));
            }
            Value::Object(m) => m,
            _ => {
                self.mismatch(t, label, "expected a variant: {\"Arm\": value}, \"Arm\" or {\"$tag\": \"Arm\", \"$value\": value}", v);
                return None;
            }
        };
        let env = m.contains_key("$tag") && m.keys().all(|k| k == "$tag" || k == "$value");
        let one = single(v);
        let sugar_arm =
            one.and_then(|(k, p)| arms.get_key_value(k).map(|(name, at)| (name, at, p)));
        let tagged = one.filter(|(k, _)| k.as_str() == "variant").map(|(_, p)| p);

        let read_env = |cx: &mut Cx<'a>| cx.variant_envelope(v, m, t, arms, label, depth);
        let read_arm = |cx: &mut Cx<'a>| {
            let (name, at, p) = sugar_arm?;
            let mark = cx.enter(name);
            let out = cx.arm_value(name, at, Some(p), v, depth);
            cx.leave(mark);
            out
        };
        let read_tagged = |cx: &mut Cx<'a>| cx.variant_tagged(tagged?, t, arms, label, depth);
        let mut readings: Vec<Reading<'_, 'a>> = Vec::with_capacity(3);
        if env {
            readings.push(&read_env);
        }
        if sugar_arm.is_some() {
            readings.push(&read_arm);
        }
        if tagged.is_some() {
            readings.push(&read_tagged);
        }
        match readings.len() {
            0 => {
                if let Some((k, _)) = one {
                    let mark = self.enter(k);
                    self.error(
                        "unknown_arm",
                        format!("unknown arm `{k}` of {}", expect(t, label)),
                        arm_list(),
                        v,
                    );
                    self.leave(mark);
                } else {
                    self.mismatch(
                        t,
                        label,
                        "expected a variant: {\"Arm\": value}, \"Arm\" or {\"$tag\": \"Arm\", \"$value\": value}",
                        v,
                    );
                }
                None
            }
            1 => readings[0](self),
            _ => self.first_valid(v, t, &readings),
        }
    }

    /// `{"$tag": "Arm", "$value": v}`.
    fn variant_envelope(
        &mut self,
        v: &Value,
        m: &Map<String, Value>,
        t: &'a TypeExpr,
        arms: &'a BTreeMap<String, TypeExpr>,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        let tag = m.get("$tag").unwrap_or(&Value::Null);
        let arm = tag.as_str().and_then(|s| arms.get_key_value(s));
        let Some((name, at)) = arm else {
            let mark = self.enter("$tag");
            let known = format!(
                "one of: {}",
                arms.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            match tag {
                Value::String(s) => self.error(
                    "unknown_arm",
                    format!("unknown arm `{s}` of {}", expect(t, label)),
                    known,
                    tag,
                ),
                _ => self.error("type_mismatch", "`$tag` names an arm", known, tag),
            }
            self.leave(mark);
            return None;
        };
        match m.get("$value") {
            Some(p) => {
                let mark = self.enter("$value");
                let out = self.arm_value(name, at, Some(p), v, depth);
                self.leave(mark);
                out
            }
            None => self.arm_value(name, at, None, v, depth),
        }
    }

    /// `{"variant": {"tag": "Arm", "value": v}}`, at the payload.
    fn variant_tagged(
        &mut self,
        p: &Value,
        t: &'a TypeExpr,
        arms: &'a BTreeMap<String, TypeExpr>,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        let mark = self.enter("variant");
        let out = self.variant_tagged_body(p, t, arms, label, depth);
        self.leave(mark);
        out
    }

    fn variant_tagged_body(
        &mut self,
        p: &Value,
        t: &'a TypeExpr,
        arms: &'a BTreeMap<String, TypeExpr>,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        let shape = "`variant` holds {\"tag\": \"Arm\", \"value\": value}";
        let Value::Object(body) = p else {
            self.mismatch(t, label, shape, p);
            return None;
        };
        let mut ok = true;
        for k in body.keys().filter(|k| *k != "tag" && *k != "value") {
            let mark = self.enter(k);
            self.diags.push(
                Diagnostic::error(
                    "unknown_field",
                    self.ptr.clone(),
                    format!("unknown field `{k}` in a tagged variant"),
                )
                .expected("one of: tag, value")
                .found(show(&body[k])),
            );
            self.leave(mark);
            ok = false;
        }
        let Some(tag) = body.get("tag") else {
            self.error(
                "missing_field",
                "a tagged variant needs `tag`",
                expect(t, label),
                p,
            );
            return None;
        };
        let Some((name, at)) = tag.as_str().and_then(|s| arms.get_key_value(s)) else {
            let mark = self.enter("tag");
            let known = format!(
                "one of: {}",
                arms.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            match tag {
                Value::String(s) => self.error(
                    "unknown_arm",
                    format!("unknown arm `{s}` of {}", expect(t, label)),
                    known,
                    tag,
                ),
                _ => self.error("type_mismatch", "`tag` names an arm", known, tag),
            }
            self.leave(mark);
            return None;
        };
        let out = match body.get("value") {
            Some(x) => {
                let mark = self.enter("value");
                let out = self.arm_value(name, at, Some(x), p, depth);
                self.leave(mark);
                out
            }
            None => self.arm_value(name, at, None, p, depth),
        };
        out.filter(|_| ok)
    }

    /// The canonical envelope of arm `name` with its payload (at the current pointer),
    /// or without one (an error unless the arm is unit; `holder` is then shown).
    fn arm_value(
        &mut self,
        name: &str,
        at: &'a TypeExpr,
        payload: Option<&Value>,
        holder: &Value,
        depth: u32,
    ) -> Option<Value> {
        let unit = self.is_unit(at);
        match payload {
            None if unit => Some(envelope(name, None)),
            None => {
                self.error(
                    "missing_field",
                    format!(
                        "arm `{name}` carries a value of type {}, which is missing",
                        describe(at)
                    ),
                    describe(at),
                    holder,
                );
                None
            }
            Some(Value::Null) if unit => Some(envelope(name, None)),
            Some(p) => {
                let c = self.canon(p, at, depth + 1, 0)?;
                Some(envelope(name, (!unit).then_some(c)))
            }
        }
    }
}

/// `{"$tag": name, "$value": value}`.
fn envelope(name: &str, value: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("$tag".into(), Value::String(name.to_string()));
    if let Some(x) = value {
        m.insert("$value".into(), x);
    }
    Value::Object(m)
}
