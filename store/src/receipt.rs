//! Effect receipts: what an adapter did for one intent, in a canonical form signed with
//! the world's ed25519 receipt key. The format and its verification live here, next to
//! the journal that stores receipts, so the kernel (on append and replay), `aos fsck`
//! and `aos receipts verify` check them with nothing but a public key; signing (the
//! private key) belongs to the adapters.

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{json, Map, Value};

use crate::canon;
use crate::hash::Hash;

/// The domain separation tag every signed receipt starts with.
pub const SIGNING_TAG: &str = "aos-receipt/1";
/// Public keys are written `ed25519:<64 hex digits>`.
pub const PUBLIC_PREFIX: &str = "ed25519:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a receipt: {0}")]
    Malformed(String),
    #[error("public key {0:?} is not `ed25519:` and 64 hex digits of a valid key")]
    BadPublicKey(String),
    #[error("the signature does not verify with {0}")]
    BadSignature(String),
    #[error("the payload hashes to {actual}, but the receipt says {stated}")]
    PayloadHash { stated: Hash, actual: Hash },
}

/// How the adapter's work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Error,
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Timeout => "timeout",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Ok, Status::Error, Status::Timeout]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A signed receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub intent_hash: Hash,
    pub effect_kind: String,
    pub adapter_id: String,
    pub status: Status,
    /// `ok`: the effect's receipt value (canonical against its receipt schema);
    /// otherwise `{"message": …}`.
    pub payload: Value,
    /// blake3 of the payload's canonical JSON.
    pub payload_hash: Hash,
    pub started_ns: u64,
    pub finished_ns: u64,
    pub cost_cents: Option<u64>,
    pub signature: [u8; 64],
}

impl Receipt {
    /// A receipt for `payload`, not yet signed (the signature is zero until
    /// [`Receipt::set_signature`]).
    #[allow(clippy::too_many_arguments)]
    pub fn unsigned(
        intent_hash: Hash,
        effect_kind: &str,
        adapter_id: &str,
        status: Status,
        payload: Value,
        started_ns: u64,
        finished_ns: u64,
        cost_cents: Option<u64>,
    ) -> Result<Receipt, ReceiptError> {
        let bytes = canon::value_to_vec(&payload).map_err(|e| {
            ReceiptError::Malformed(format!("the payload has no canonical form: {e}"))
        })?;
        Ok(Receipt {
            intent_hash,
            effect_kind: effect_kind.to_string(),
            adapter_id: adapter_id.to_string(),
            status,
            payload,
            payload_hash: Hash::of(&bytes),
            started_ns,
            finished_ns,
            cost_cents,
            signature: [0; 64],
        })
    }

    /// The fields every signature covers, canonical.
    fn unsigned_json(&self) -> Value {
        json!({
            "tag": SIGNING_TAG,
            "intent_hash": self.intent_hash,
            "effect_kind": self.effect_kind,
            "adapter_id": self.adapter_id,
            "status": self.status.as_str(),
            "payload_hash": self.payload_hash,
            "started_ns": canon::u64_value(self.started_ns),
            "finished_ns": canon::u64_value(self.finished_ns),
            "cost_cents": self.cost_cents.map(canon::u64_value),
        })
    }

    /// The bytes the signature is over: the canonical JSON of every field but the
    /// payload itself (its hash stands for it) and the signature.
    pub fn signing_bytes(&self) -> Vec<u8> {
        canon::value_to_vec(&self.unsigned_json()).unwrap_or_default()
    }

    pub fn set_signature(&mut self, signature: [u8; 64]) {
        self.signature = signature;
    }

    /// Check the payload hash and the signature against `public_key`.
    pub fn verify(&self, public_key: &str) -> Result<(), ReceiptError> {
        let actual = Hash::of(
            &canon::value_to_vec(&self.payload)
                .map_err(|e| ReceiptError::Malformed(e.to_string()))?,
        );
        if actual != self.payload_hash {
            return Err(ReceiptError::PayloadHash {
                stated: self.payload_hash,
                actual,
            });
        }
        verify_signature(public_key, &self.signing_bytes(), &self.signature)
    }

    /// Verify against any of `keys`; the error names the last key tried.
    pub fn verify_any<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<(), ReceiptError> {
        let mut last = ReceiptError::BadSignature("no receipt key".into());
        for k in keys {
            match self.verify(k) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The receipt as stored in an `effect_receipt` record.
    pub fn to_json(&self) -> Value {
        let mut v = self.unsigned_json();
        if let Value::Object(o) = &mut v {
            o.remove("tag");
            o.insert("payload".into(), self.payload.clone());
            o.insert("signature".into(), Value::String(hex(&self.signature)));
        }
        v
    }

    pub fn from_json(v: &Value) -> Result<Receipt, ReceiptError> {
        let bad = |what: &str| ReceiptError::Malformed(what.to_string());
        let o: &Map<String, Value> = v.as_object().ok_or_else(|| bad("not an object"))?;
        let text = |k: &str| -> Result<&str, ReceiptError> {
            o.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("`{k}` must be text")))
        };
        let hash = |k: &str| -> Result<Hash, ReceiptError> {
            text(k)?
                .parse()
                .map_err(|_| bad(&format!("`{k}` is not a hash")))
        };
        let num = |k: &str| -> Result<u64, ReceiptError> {
            match o.get(k) {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| bad(&format!("`{k}` must be a whole number")))
        };
        let status = Status::parse(text("status")?)
            .ok_or_else(|| bad("`status` must be ok, error or timeout"))?;
        let cost_cents = match o.get("cost_cents") {
            None | Some(Value::Null) => None,
            Some(_) => Some(num("cost_cents")?),
        };
        let sig =
            unhex64(text("signature")?).ok_or_else(|| bad("`signature` must be 128 hex digits"))?;
        let payload = o
            .get("payload")
            .cloned()
            .ok_or_else(|| bad("no `payload`"))?;
        let allowed = [
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
        if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(bad(&format!("unknown field `{k}`")));
        }
        Ok(Receipt {
            intent_hash: hash("intent_hash")?,
            effect_kind: text("effect_kind")?.to_string(),
            adapter_id: text("adapter_id")?.to_string(),
            status,
            payload,
            payload_hash: hash("payload_hash")?,
            started_ns: num("started_ns")?,
            finished_ns: num("finished_ns")?,
            cost_cents,
            signature: sig,
        })
    }
}

/// Verify an ed25519 `signature` over `message` with a public key in text form.
pub fn verify_signature(
    public_key: &str,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), ReceiptError> {
    let key = parse_public_key(public_key)?;
    key.verify(message, &Signature::from_bytes(signature))
        .map_err(|_| ReceiptError::BadSignature(public_key.to_string()))
}

/// Parse `ed25519:<hex>`.
pub fn parse_public_key(public_key: &str) -> Result<VerifyingKey, ReceiptError> {
    let bad = || ReceiptError::BadPublicKey(public_key.to_string());
    let hex = public_key.strip_prefix(PUBLIC_PREFIX).ok_or_else(bad)?;
    let bytes: [u8; 32] = unhex(hex).and_then(|v| v.try_into().ok()).ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn unhex64(s: &str) -> Option<[u8; 64]> {
    unhex(s).and_then(|v| v.try_into().ok())
}
