//! The typed reducer step: canonical input JSON in (DESIGN §4), the module's output
//! parsed, checked against the reducer's [`Contract`] and canonicalized.
//!
//! Input: `{"ctx":{"cell_mode":…,"key":…,"now_ns":…},"event":{"schema":…,"value":…},
//! "state":…,"version":1}` (canonical key order). Output: `{"state":…,"domain_events":
//! [{"schema":…,"value":…}],"effects":[{"kind":…,"params":…,"cap_slot":…}],"ann":…}`,
//! everything but `state` optional (absent or `null`); unknown fields are refused so a
//! misspelt `domain_event` is an error, not a silent drop.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use air_fmt::value::{canonicalize, Schemas};
use air_fmt::{Name, TypeExpr};
use aos_store::canon::{self, CanonError};
use aos_store::Hash;
use serde_json::{Map, Value};

use super::error::{show_diags, Fault, StepError};
use super::Runtime;

/// The state handed to a step.
#[derive(Debug, Clone, Copy)]
pub enum InputState<'a> {
    /// No state yet (or a deleted cell): `null`.
    Null,
    /// A state value, already canonical against the state schema.
    Value(&'a Value),
    /// The canonical JSON bytes of the state (as stored), spliced in without re-parsing.
    Canonical(&'a [u8]),
}

/// One step's input.
#[derive(Debug, Clone, Copy)]
pub struct ReducerInput<'a> {
    pub state: InputState<'a>,
    /// The reducer's ABI event schema.
    pub event_schema: &'a Name,
    /// The event value (for a variant schema routed by arm: `{"$tag":ARM,"$value":…}`).
    pub event: &'a Value,
    /// The `at_ns` of the journal record being handled.
    pub now_ns: u64,
    /// The cell key, for keyed reducers.
    pub key: Option<&'a Value>,
    pub cell_mode: bool,
}

/// What a reducer may return: its types and what it may emit.
pub struct Contract<'a> {
    pub schemas: &'a dyn Schemas,
    /// The state type (usually `TypeExpr::Ref` of the reducer's state schema).
    pub state: Cow<'a, TypeExpr>,
    /// When given, the input event is validated and canonicalized against it first.
    pub event: Option<Cow<'a, TypeExpr>>,
    /// Schemas of the domain events the reducer may emit.
    pub domain_events: Cow<'a, BTreeSet<Name>>,
    /// Effect kinds the reducer may emit, with the type of each one's params.
    pub effects: Cow<'a, BTreeMap<String, TypeExpr>>,
}

impl<'a> Contract<'a> {
    /// A contract with a state type that emits nothing.
    pub fn new(schemas: &'a dyn Schemas, state: TypeExpr) -> Contract<'a> {
        Contract {
            schemas,
            state: Cow::Owned(state),
            event: None,
            domain_events: Cow::Owned(BTreeSet::new()),
            effects: Cow::Owned(BTreeMap::new()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    pub schema: Name,
    /// Canonical against `schema`.
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EffectIntent {
    pub kind: String,
    /// Canonical against the kind's params type.
    pub params: Value,
    pub cap_slot: Option<String>,
}

/// A successful step's result, every value canonical.
#[derive(Debug, Clone, PartialEq)]
pub struct ReducerOutput {
    /// The new state; `None` when the reducer returned `null` (for a cell: delete it).
    pub state: Option<Value>,
    pub domain_events: Vec<DomainEvent>,
    pub effects: Vec<EffectIntent>,
    pub ann: Option<Value>,
    pub fuel_used: u64,
}

/// The canonical JSON bytes of a step's input.
pub fn encode_input(input: &ReducerInput<'_>) -> Result<Vec<u8>, CanonError> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(br#"{"ctx":{"cell_mode":"#);
    out.extend_from_slice(if input.cell_mode { b"true" } else { b"false" });
    out.extend_from_slice(br#","key":"#);
    match input.key {
        Some(k) => canon::write_value(&mut out, k)?,
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","now_ns":"#);
    canon::write_u64(&mut out, input.now_ns);
    out.extend_from_slice(br#"},"event":{"schema":"#);
    canon::write_str(&mut out, input.event_schema.as_str());
    out.extend_from_slice(br#","value":"#);
    canon::write_value(&mut out, input.event)?;
    out.extend_from_slice(br#"},"state":"#);
    match input.state {
        InputState::Null => out.extend_from_slice(b"null"),
        InputState::Value(v) => canon::write_value(&mut out, v)?,
        InputState::Canonical(b) => out.extend_from_slice(b),
    }
    out.extend_from_slice(br#","version":1}"#);
    Ok(out)
}

/// Run one typed step of `module` (already loaded in `rt`); `seq` is the journal seq of
/// the event, named in errors.
pub fn run_reducer_step(
    rt: &Runtime,
    module: &Hash,
    contract: &Contract<'_>,
    input: &ReducerInput<'_>,
    seq: u64,
) -> Result<ReducerOutput, StepError> {
    let kernel = |reason: String| StepError::Kernel {
        module: *module,
        seq,
        reason,
    };
    let checked;
    let mut input = *input;
    if let Some(ty) = &contract.event {
        checked = canonicalize(input.event, ty, contract.schemas).map_err(|d| {
            kernel(format!(
                "the event does not match {}: {}",
                ty.describe(),
                show_diags(&d)
            ))
        })?;
        input.event = &checked;
    }
    let bytes = encode_input(&input)
        .map_err(|e| kernel(format!("the input has no canonical JSON form: {e}")))?;
    let out = rt
        .call_step(module, &bytes)
        .map_err(|e| StepError::from_wasm(module, seq, e))?;
    let mut parsed = parse_output(&out.bytes, contract).map_err(|fault| StepError::Fault {
        module: *module,
        seq,
        fault,
    })?;
    parsed.fuel_used = out.fuel_used;
    Ok(parsed)
}

/// Parse, check and canonicalize a module's output bytes (`fuel_used` is left 0).
pub fn parse_output(bytes: &[u8], contract: &Contract<'_>) -> Result<ReducerOutput, Fault> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| Fault::NotJson {
        error: e.to_string(),
        excerpt: excerpt(bytes),
    })?;
    let Value::Object(mut top) = v else {
        return Err(bad(
            "",
            format!(
                "the output is {}; it must be an object with a `state` field",
                json_kind(&v)
            ),
        ));
    };
    if let Some(k) = top
        .keys()
        .find(|k| !["state", "domain_events", "effects", "ann"].contains(&k.as_str()))
    {
        return Err(bad(
            &format!("/{k}"),
            format!("unknown field `{k}` (the output has state, domain_events, effects and ann)"),
        ));
    }
    let state = match top.remove("state") {
        None => {
            return Err(bad(
                "/state",
                "the output has no `state` field (use null to delete)".into(),
            ))
        }
        Some(Value::Null) => None,
        Some(s) => Some(typed(&s, &contract.state, "state", contract)?),
    };
    let domain_events = list(&mut top, "domain_events")?
        .into_iter()
        .enumerate()
        .map(|(i, e)| domain_event(i, e, contract))
        .collect::<Result<_, _>>()?;
    let effects = list(&mut top, "effects")?
        .into_iter()
        .enumerate()
        .map(|(i, e)| effect(i, e, contract))
        .collect::<Result<_, _>>()?;
    let ann = match top.remove("ann") {
        None | Some(Value::Null) => None,
        Some(a) => {
            canon::value_to_vec(&a).map_err(|e| bad("/ann", format!("`ann` {e}")))?;
            Some(a)
        }
    };
    Ok(ReducerOutput {
        state,
        domain_events,
        effects,
        ann,
        fuel_used: 0,
    })
}

fn domain_event(i: usize, e: Value, c: &Contract<'_>) -> Result<DomainEvent, Fault> {
    let at = format!("/domain_events/{i}");
    let mut m = fields(e, &at, &["schema", "value"])?;
    let schema = match m.remove("schema") {
        Some(Value::String(s)) => s,
        _ => return Err(bad(&at, format!("{at} needs a `schema` name (text)"))),
    };
    let name = match Name::parse(&schema) {
        Ok(n) if c.domain_events.contains(&n) => n,
        _ => return Err(Fault::UndeclaredEvent { index: i, schema }),
    };
    let value = m
        .remove("value")
        .ok_or_else(|| bad(&at, format!("{at} has no `value`")))?;
    let value = typed(
        &value,
        &TypeExpr::Ref(name.clone()),
        &format!("domain_events[{i}].value"),
        c,
    )?;
    Ok(DomainEvent {
        schema: name,
        value,
    })
}

fn effect(i: usize, e: Value, c: &Contract<'_>) -> Result<EffectIntent, Fault> {
    let at = format!("/effects/{i}");
    let mut m = fields(e, &at, &["kind", "params", "cap_slot"])?;
    let kind = match m.remove("kind") {
        Some(Value::String(s)) => s,
        _ => return Err(bad(&at, format!("{at} needs a `kind` (text)"))),
    };
    let Some(ty) = c.effects.get(&kind) else {
        return Err(Fault::UndeclaredEffect { index: i, kind });
    };
    let params = m
        .remove("params")
        .ok_or_else(|| bad(&at, format!("{at} has no `params`")))?;
    let params = typed(&params, ty, &format!("effects[{i}].params"), c)?;
    let cap_slot = match m.remove("cap_slot") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(bad(
                &format!("{at}/cap_slot"),
                format!(
                    "{at}/cap_slot is {}; it must be text or null",
                    json_kind(&other)
                ),
            ))
        }
    };
    Ok(EffectIntent {
        kind,
        params,
        cap_slot,
    })
}

fn typed(v: &Value, ty: &TypeExpr, what: &str, c: &Contract<'_>) -> Result<Value, Fault> {
    canonicalize(v, ty, c.schemas).map_err(|diagnostics| Fault::IllTyped {
        what: what.to_string(),
        expected: ty.describe(),
        diagnostics,
    })
}

/// An optional array field (absent or null: empty).
fn list(top: &mut Map<String, Value>, field: &str) -> Result<Vec<Value>, Fault> {
    match top.remove(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(bad(
            &format!("/{field}"),
            format!("`{field}` is {}; it must be an array", json_kind(&other)),
        )),
    }
}

/// An object with only the `allowed` keys.
fn fields(v: Value, at: &str, allowed: &[&str]) -> Result<Map<String, Value>, Fault> {
    let Value::Object(m) = v else {
        return Err(bad(
            at,
            format!("{at} is {}; it must be an object", json_kind(&v)),
        ));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(
            at,
            format!(
                "{at} has unknown field `{k}` (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(m)
}

fn bad(pointer: &str, message: String) -> Fault {
    Fault::BadOutput {
        pointer: pointer.to_string(),
        message,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first bytes of an output, for messages.
fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(48)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > cut.len() {
        s.push('…');
    }
    s
}
