//! Reading fields of canonical effect params (and receipt payloads): text, nat under the
//! 64-bit rule, `blake3:` hashes, options. Each reader names the field it failed on.

use aos_store::Hash;
use serde_json::Value;

/// A field that must be present (a none option is `null` and counts as absent).
pub(crate) fn field<'v>(v: &'v Value, name: &str) -> Result<&'v Value, String> {
    match v.get(name) {
        Some(Value::Null) | None => Err(format!("missing field {name:?}")),
        Some(x) => Ok(x),
    }
}

/// An option field: `None` when absent or `null`.
pub(crate) fn opt<'v>(v: &'v Value, name: &str) -> Option<&'v Value> {
    match v.get(name) {
        Some(Value::Null) | None => None,
        Some(x) => Some(x),
    }
}

pub(crate) fn text<'v>(v: &'v Value, name: &str) -> Result<&'v str, String> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| format!("field {name:?} must be text"))
}

pub(crate) fn nat(v: &Value, name: &str) -> Result<u64, String> {
    as_nat(field(v, name)?).ok_or_else(|| format!("field {name:?} must be a natural number"))
}

pub(crate) fn hash(v: &Value, name: &str) -> Result<Hash, String> {
    as_hash(field(v, name)?).ok_or_else(|| format!("field {name:?} must be a blake3 hash"))
}

/// A nat as a JSON number or a decimal string.
pub(crate) fn as_nat(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

pub(crate) fn as_hash(v: &Value) -> Option<Hash> {
    v.as_str().and_then(|s| s.parse().ok())
}
