//! Lists, sets and maps.

use serde_json::{Map, Value};

use super::{canonical_bytes, describe, show, single, Cx};
use crate::name::Name;
use crate::types::TypeExpr;

/// Where a map entry came from, to point at a duplicate.
enum Src<'v> {
    Index(usize),
    Key(&'v str),
}

/// Map entries as they are collected.
struct MapAcc<'v> {
    text_keys: bool,
    object: Map<String, Value>,
    pairs: Vec<(Vec<u8>, Value, Value, Src<'v>)>,
    ok: bool,
}

impl<'a> Cx<'a> {
    pub(super) fn list(
        &mut self,
        v: &Value,
        t: &'a TypeExpr,
        elem: &'a TypeExpr,
        label: Option<&Name>,
        depth: u32,
        set: bool,
    ) -> Option<Value> {
        let what = if set { "set" } else { "list" };
        let mut mark = None;
        let items = match v {
            Value::Array(a) => a,
            _ => match single(v) {
                Some((k, p)) if k == what => {
                    mark = Some(self.enter(k));
                    match p {
                        Value::Array(a) => a,
                        _ => {
                            self.mismatch(t, label, format!("`{what}` holds an array"), p);
                            self.leave(mark.unwrap_or_default());
                            return None;
                        }
                    }
                }
                _ => {
                    self.mismatch(t, label, format!("expected a {what} (a JSON array)"), v);
                    return None;
                }
            },
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, x) in items.iter().enumerate() {
            let m = self.enter_index(i);
            match self.canon(x, elem, depth + 1, 0) {
                Some(c) if ok => out.push(c),
                Some(_) => {}
                None => ok = false,
            }
            self.leave(m);
        }
        if let Some(m) = mark {
            self.leave(m);
        }
        if !ok {
            return None;
        }
        if set {
            let mut keyed: Vec<(Vec<u8>, Value)> =
                out.into_iter().map(|c| (canonical_bytes(&c), c)).collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            keyed.dedup_by(|a, b| a.0 == b.0);
            out = keyed.into_iter().map(|(_, c)| c).collect();
        }
        Some(Value::Array(out))
    }

    pub(super) fn map(
        &mut self,
        v: &Value,
        t: &'a TypeExpr,
        kt: &'a TypeExpr,
        vt: &'a TypeExpr,
        label: Option<&'a Name>,
        depth: u32,
    ) -> Option<Value> {
        match v {
            Value::Array(a) => self.map_entries(Some(a), None, kt, vt, depth),
            Value::Object(m) => match single(v) {
                Some((k, p)) if k == "map" => {
                    let sugar = |cx: &mut Cx<'a>| cx.map_entries(None, Some(m), kt, vt, depth);
                    let tagged = |cx: &mut Cx<'a>| {
                        let mark = cx.enter("map");
                        let out = match p {
                            Value::Array(a) => cx.map_entries(Some(a), None, kt, vt, depth),
                            Value::Object(o) => cx.map_entries(None, Some(o), kt, vt, depth),
                            _ => {
                                cx.mismatch(
                                    t,
                                    label,
                                    "`map` holds an array of [key, value] entries",
                                    p,
                                );
                                None
                            }
                        };
                        cx.leave(mark);
                        out
                    };
                    self.first_valid(v, t, &[&sugar, &tagged])
                }
                _ => self.map_entries(None, Some(m), kt, vt, depth),
            },
            _ => {
                self.mismatch(
                    t,
                    label,
                    "expected a map: an object, or an array of [key, value] entries",
                    v,
                );
                None
            }
        }
    }

    /// Read map entries from an array of entries or from an object's members.
    fn map_entries(
        &mut self,
        array: Option<&Vec<Value>>,
        object: Option<&Map<String, Value>>,
        kt: &'a TypeExpr,
        vt: &'a TypeExpr,
        depth: u32,
    ) -> Option<Value> {
        let mut acc = MapAcc {
            text_keys: matches!(self.resolve(kt), Some(TypeExpr::Text)),
            object: Map::new(),
            pairs: Vec::new(),
            ok: true,
        };
        for (i, e) in array.into_iter().flatten().enumerate() {
            let mark = self.enter_index(i);
            let parts = match e {
                Value::Array(kv) if kv.len() == 2 => Some((&kv[0], &kv[1], "0", "1")),
                Value::Object(o) if o.len() == 2 => match (o.get("key"), o.get("value")) {
                    (Some(k), Some(x)) => Some((k, x, "key", "value")),
                    _ => None,
                },
                _ => None,
            };
            match parts {
                Some((k, x, kseg, vseg)) => {
                    let m = self.enter(kseg);
                    let kc = self.map_key(k, kt, depth);
                    self.leave(m);
                    let m = self.enter(vseg);
                    let vc = self.canon(x, vt, depth + 1, 0);
                    self.leave(m);
                    self.map_add(&mut acc, kc, vc, Src::Index(i), e);
                }
                None => {
                    self.error(
                        "type_mismatch",
                        "a map entry is [key, value] or {\"key\": key, \"value\": value}",
                        format!("map<{}, {}> entry", describe(kt), describe(vt)),
                        e,
                    );
                    acc.ok = false;
                }
            }
            self.leave(mark);
        }
        for (k, x) in object.into_iter().flatten() {
            let mark = self.enter(k);
            let kc = if acc.text_keys {
                Some(Value::String(k.clone()))
            } else {
                let key = Value::String(k.clone());
                self.no_memo += 1;
                let kc = self.map_key(&key, kt, depth);
                self.no_memo -= 1;
                kc
            };
            let vc = self.canon(x, vt, depth + 1, 0);
            self.map_add(&mut acc, kc, vc, Src::Key(k), x);
            self.leave(mark);
        }
        if acc.text_keys {
            return acc.ok.then_some(Value::Object(acc.object));
        }
        acc.pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for w in 1..acc.pairs.len() {
            if acc.pairs[w - 1].0 == acc.pairs[w].0 {
                let mark = match acc.pairs[w].3 {
                    Src::Index(i) => self.enter_index(i),
                    Src::Key(k) => self.enter(k),
                };
                let key = acc.pairs[w].1.clone();
                self.error(
                    "duplicate_key",
                    format!("duplicate map key {}", show(&key)),
                    "distinct keys".into(),
                    &key,
                );
                self.leave(mark);
                acc.ok = false;
            }
        }
        acc.ok.then(|| {
            Value::Array(
                acc.pairs
                    .into_iter()
                    .map(|(_, k, x, _)| Value::Array(vec![k, x]))
                    .collect(),
            )
        })
    }

    /// A map key, with `map key` prefixed to the messages of its problems.
    fn map_key(&mut self, k: &Value, kt: &'a TypeExpr, depth: u32) -> Option<Value> {
        let mark = self.diags.len();
        let out = self.canon(k, kt, depth + 1, 0);
        for d in &mut self.diags[mark..] {
            d.message = format!("map key: {}", d.message);
        }
        out
    }

    fn map_add<'v>(
        &mut self,
        acc: &mut MapAcc<'v>,
        kc: Option<Value>,
        vc: Option<Value>,
        src: Src<'v>,
        entry: &Value,
    ) {
        let (Some(kc), Some(vc)) = (kc, vc) else {
            acc.ok = false;
            return;
        };
        if !acc.ok {
            return;
        }
        if acc.text_keys {
            if let Value::String(s) = kc {
                if acc.object.contains_key(&s) {
                    self.error(
                        "duplicate_key",
                        format!("duplicate map key {s:?}"),
                        "distinct keys".into(),
                        entry,
                    );
                    acc.ok = false;
                } else {
                    acc.object.insert(s, vc);
                }
            }
            // (Canonical text is always a string.)
        } else {
            acc.pairs.push((canonical_bytes(&kc), kc, vc, src));
        }
    }
}
