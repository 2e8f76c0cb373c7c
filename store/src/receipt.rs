//! Receipts: what an adapter did for one intent, signed with the world's ed25519 key.
//!
//! # What is signed
//!
//! The signature covers [`Receipt::signing_bytes`]: the canonical JSON (RFC 8785, as
//! `aos_store::canon` writes it) of every field except the payload itself and the
//! signature, plus a domain tag, so a receipt signature can never be mistaken for a
//! signature over anything else the world key signs:
//!
//! ```text
//! {"adapter_id":…,"cost_cents":<n|null>,"domain":"aos-receipt/1","effect_kind":…,
//!  "finished_ns":<n>,"intent_hash":"blake3:…","payload_hash":"blake3:…",
//!  "started_ns":<n>,"status":"ok"|"error"|"timeout"}
//! ```
//!
//! The payload is bound through `payload_hash`, blake3 over its canonical JSON bytes;
//! [`Receipt::verify`] recomputes that hash before it checks the signature. Integers
//! follow the 64-bit rule of DESIGN §2: a JSON number up to 2^53 − 1, a decimal string
//! above it.
//!
//! # JSON form
//!
//! [`Receipt::to_json`] writes an object with exactly the fields of [`Receipt`]:
//! hashes as `blake3:<hex>`, `status` as its text, `cost_cents` as a number or `null`,
//! and `signature` as **128 lowercase hex digits** (the same alphabet as the
//! `ed25519:<hex>` public key). [`Receipt::from_json`] reads that form back and refuses
//! anything else (a missing or unknown field, a wrong type); it checks shape only —
//! integrity is [`Receipt::verify`]'s job, so a tampered receipt still parses and then
//! fails verification with a precise reason.
//!
//! # Payload
//!
//! For `ok` the payload is the effect's receipt value, canonical against its
//! `receipt_schema`; for `error` and `timeout` it is `{"message": <text>}`.

use std::fmt;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use crate::canon::{self, CanonError};
use crate::hash::Hash;
use serde_json::{Map, Value};

/// The domain tag inside the signing bytes.
pub const DOMAIN: &str = "aos-receipt/1";

/// How an effect ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    Timeout,
}

impl Status {
    /// The canonical text: `ok`, `error` or `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }

    /// Parse the canonical text.
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "ok" => Some(Status::Ok),
            "error" => Some(Status::Error),
            "timeout" => Some(Status::Timeout),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a receipt cannot be signed, read or trusted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt payload has no canonical form: {0}")]
    Payload(#[from] CanonError),
    #[error(
        "the receipt payload does not match its payload_hash (stated {stated}, actual {actual})"
    )]
    PayloadHash { stated: Hash, actual: Hash },
    #[error("the receipt signature does not verify with {public_key}")]
    BadSignature { public_key: String },
    #[error("public key {0:?} is not `ed25519:` and 64 hex digits of a valid key")]
    BadPublicKey(String),
    #[error("malformed receipt: {0}")]
    Malformed(String),
}

/// Every field of a receipt that the adapter side decides; signing adds the payload hash
/// and the signature.
#[derive(Debug, Clone, PartialEq)]
pub struct Unsigned {
    pub intent_hash: Hash,
    pub effect_kind: String,
    pub adapter_id: String,
    pub status: Status,
    pub payload: Value,
    pub started_ns: u64,
    pub finished_ns: u64,
    pub cost_cents: Option<u64>,
}

/// A signed receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub intent_hash: Hash,
    pub effect_kind: String,
    pub adapter_id: String,
    pub status: Status,
    /// `ok`: canonical against the effect's receipt schema; otherwise `{"message": text}`.
    pub payload: Value,
    /// blake3 over the canonical JSON bytes of `payload`.
    pub payload_hash: Hash,
    pub started_ns: u64,
    pub finished_ns: u64,
    pub cost_cents: Option<u64>,
    pub signature: [u8; 64],
}

const FIELDS: [&str; 10] = [
    "intent_hash",
    "effect_kind",
    "adapter_id",
    "status",
    "payload",
    "payload_hash",
    "started_ns",
    "finished_ns",
    "cost_cents",
    "signature",
];

impl Receipt {
    /// Sign `unsigned` with `sign` (the world key's signing function, which lives with
    /// the adapters): hash the canonical payload, then sign the signing bytes. A payload
    /// with no canonical form, or a non-`ok` payload that is not `{"message": text}`,
    /// is refused.
    pub fn sign_with(
        unsigned: Unsigned,
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> Result<Receipt, ReceiptError> {
        check_failure_payload(unsigned.status, &unsigned.payload)?;
        let payload_hash = payload_hash(&unsigned.payload)?;
        let mut receipt = Receipt {
            intent_hash: unsigned.intent_hash,
            effect_kind: unsigned.effect_kind,
            adapter_id: unsigned.adapter_id,
            status: unsigned.status,
            payload: unsigned.payload,
            payload_hash,
            started_ns: unsigned.started_ns,
            finished_ns: unsigned.finished_ns,
            cost_cents: unsigned.cost_cents,
            signature: [0; 64],
        };
        receipt.signature = sign(&receipt.signing_bytes());
        Ok(receipt)
    }

    /// The bytes the signature covers (see the module documentation). Uses the stated
    /// `payload_hash`; [`Receipt::verify`] checks it against the payload separately.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.effect_kind.len() + self.adapter_id.len());
        let field = |out: &mut Vec<u8>, name: &str, first: bool| {
            if !first {
                out.push(b',');
            }
            canon::write_str(out, name);
            out.push(b':');
        };
        // Keys in canonical (sorted) order.
        out.push(b'{');
        field(&mut out, "adapter_id", true);
        canon::write_str(&mut out, &self.adapter_id);
        field(&mut out, "cost_cents", false);
        match self.cost_cents {
            Some(c) => canon::write_u64(&mut out, c),
            None => out.extend_from_slice(b"null"),
        }
        field(&mut out, "domain", false);
        canon::write_str(&mut out, DOMAIN);
        field(&mut out, "effect_kind", false);
        canon::write_str(&mut out, &self.effect_kind);
        field(&mut out, "finished_ns", false);
        canon::write_u64(&mut out, self.finished_ns);
        field(&mut out, "intent_hash", false);
        canon::write_str(&mut out, &self.intent_hash.to_string());
        field(&mut out, "payload_hash", false);
        canon::write_str(&mut out, &self.payload_hash.to_string());
        field(&mut out, "started_ns", false);
        canon::write_u64(&mut out, self.started_ns);
        field(&mut out, "status", false);
        canon::write_str(&mut out, self.status.as_str());
        out.push(b'}');
        out
    }

    /// Check the payload against `payload_hash`, then the signature against
    /// `public_key` (`ed25519:<hex>`).
    pub fn verify(&self, public_key: &str) -> Result<(), ReceiptError> {
        let actual = payload_hash(&self.payload)?;
        if actual != self.payload_hash {
            return Err(ReceiptError::PayloadHash {
                stated: self.payload_hash,
                actual,
            });
        }
        verify_signature(public_key, &self.signing_bytes(), &self.signature)
    }

    /// Verify with any of `keys` (a world's own key and those it inherited by forking);
    /// the error is the last key's.
    pub fn verify_any<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), ReceiptError> {
        let mut last = ReceiptError::Malformed("the world has no receipt key".into());
        for k in keys {
            match self.verify(k) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The signature as 128 lowercase hex digits (its form in [`Receipt::to_json`]).
    pub fn signature_hex(&self) -> String {
        let mut s = String::with_capacity(128);
        for b in self.signature {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// The signature as standard padded base64: the canonical form of an AIR `bytes`
    /// value, for the `signature` field of receipt events such as `sys/TimerFired@1`.
    pub fn signature_base64(&self) -> String {
        base64(&self.signature)
    }

    /// The JSON form (see the module documentation).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("intent_hash".into(), self.intent_hash.to_string().into());
        m.insert("effect_kind".into(), self.effect_kind.clone().into());
        m.insert("adapter_id".into(), self.adapter_id.clone().into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert("payload".into(), self.payload.clone());
        m.insert("payload_hash".into(), self.payload_hash.to_string().into());
        m.insert("started_ns".into(), canon::u64_value(self.started_ns));
        m.insert("finished_ns".into(), canon::u64_value(self.finished_ns));
        m.insert(
            "cost_cents".into(),
            self.cost_cents.map_or(Value::Null, canon::u64_value),
        );
        m.insert("signature".into(), self.signature_hex().into());
        Value::Object(m)
    }

    /// Read the JSON form. Checks shape, not integrity: use [`Receipt::verify`].
    pub fn from_json(v: &Value) -> Result<Receipt, ReceiptError> {
        let obj = v
            .as_object()
            .ok_or_else(|| malformed("a receipt is a JSON object"))?;
        if let Some(extra) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(malformed(format!("unknown field {extra:?}")));
        }
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| malformed(format!("missing field {name:?}")))
        };
        let text = |name: &str| -> Result<String, ReceiptError> {
            field(name)?
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| malformed(format!("{name} must be text")))
        };
        let hash = |name: &str| -> Result<Hash, ReceiptError> {
            text(name)?
                .parse::<Hash>()
                .map_err(|e| malformed(format!("{name}: {e}")))
        };
        let nat = |name: &str| -> Result<u64, ReceiptError> {
            read_u64(field(name)?).ok_or_else(|| {
                malformed(format!(
                    "{name} must be a non-negative integer (a number, or a decimal string)"
                ))
            })
        };
        let status_text = text("status")?;
        let status = Status::parse(&status_text).ok_or_else(|| {
            malformed(format!(
                "status must be \"ok\", \"error\" or \"timeout\", found {:?}",
                clip(&status_text)
            ))
        })?;
        let payload = field("payload")?.clone();
        check_failure_payload(status, &payload)?;
        let cost_cents =
            match field("cost_cents")? {
                Value::Null => None,
                other => Some(read_u64(other).ok_or_else(|| {
                    malformed("cost_cents must be null or a non-negative integer")
                })?),
            };
        let signature = parse_signature(&text("signature")?)
            .ok_or_else(|| malformed("signature must be 128 lowercase hex digits"))?;
        Ok(Receipt {
            intent_hash: hash("intent_hash")?,
            effect_kind: text("effect_kind")?,
            adapter_id: text("adapter_id")?,
            status,
            payload,
            payload_hash: hash("payload_hash")?,
            started_ns: nat("started_ns")?,
            finished_ns: nat("finished_ns")?,
            cost_cents,
            signature,
        })
    }
}

/// blake3 over the canonical JSON bytes of a payload.
pub fn payload_hash(payload: &Value) -> Result<Hash, ReceiptError> {
    Ok(Hash::of(&canon::value_to_vec(payload)?))
}

/// The payload of an `error` or `timeout` receipt.
pub fn failure_payload(message: &str) -> Value {
    let mut m = Map::new();
    m.insert("message".into(), Value::String(message.to_string()));
    Value::Object(m)
}

fn check_failure_payload(status: Status, payload: &Value) -> Result<(), ReceiptError> {
    if status == Status::Ok {
        return Ok(());
    }
    match payload.as_object() {
        Some(m) if m.len() == 1 && m.get("message").is_some_and(Value::is_string) => Ok(()),
        _ => Err(malformed(format!(
            "the payload of a {status} receipt must be {{\"message\": text}}"
        ))),
    }
}

fn malformed(msg: impl Into<String>) -> ReceiptError {
    ReceiptError::Malformed(msg.into())
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A `u64` under the 64-bit rule: a JSON number, or a decimal string without sign or
/// leading zeros.
fn read_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let ok = !s.is_empty()
                && s.bytes().all(|c| c.is_ascii_digit())
                && (s.len() == 1 || !s.starts_with('0'));
            if ok {
                s.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn parse_signature(text: &str) -> Option<[u8; 64]> {
    let b = text.as_bytes();
    if b.len() != 128 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 64];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Verify an ed25519 `signature` over `message` with a public key in text form.
pub fn verify_signature(
    public_key: &str,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), ReceiptError> {
    let key = parse_public_key(public_key)?;
    key.verify(message, &Signature::from_bytes(signature))
        .map_err(|_| ReceiptError::BadSignature {
            public_key: public_key.to_string(),
        })
}

/// Parse `ed25519:<hex>`.
pub fn parse_public_key(public_key: &str) -> Result<VerifyingKey, ReceiptError> {
    let bad = || ReceiptError::BadPublicKey(public_key.to_string());
    let hex = public_key.strip_prefix(PUBLIC_PREFIX).ok_or_else(bad)?;
    let bytes = decode_hex32(hex).ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// The public key prefix: `ed25519:<64 hex digits>`.
pub const PUBLIC_PREFIX: &str = "ed25519:";

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    Hash::from_hex(hex).map(|h| h.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }
}
