//! The adapter interface: a [`Request`] (one canonical intent plus the two callbacks an
//! adapter may need at dispatch — the grant's URL check and secret lookup), an
//! [`Outcome`] (status, payload, cost, timings), the [`Adapter`] trait, the errors
//! adapters report ([`AdapterError`]), and the built-in catalog lookups that keep
//! params and receipt payloads canonical against their `defeffect` schemas.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use air_fmt::catalog;
use air_fmt::model::{Def, DefEffect, DefKind};
use air_fmt::value::{self, Schemas};
use air_fmt::{Name, TypeExpr};
use aos_store::Hash;
use serde_json::Value;

use crate::receipt::{failure_payload, Receipt, ReceiptError, Status, Unsigned};
use crate::signing::ReceiptSigner;

/// One intent handed to an adapter.
pub struct Request<'a> {
    pub intent_hash: Hash,
    /// The effect kind, e.g. `http.request`.
    pub kind: &'a str,
    /// The params, canonical against the effect's params schema.
    pub params: &'a Value,
    pub idempotency_key: &'a str,
    /// Re-checks every URL the adapter is about to contact (the first and each
    /// redirect) against the grant; `Err(reason)` = do not contact. Called as
    /// `(method, url)`.
    pub allow_url: &'a (dyn Fn(&str, &str) -> Result<(), String> + Sync),
    /// Secret value by name, injected at dispatch only.
    pub secrets: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

/// What an adapter did: the unsigned part of a receipt that the adapter decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    /// `Ok`: canonical against the effect's receipt schema; otherwise `{"message": text}`.
    pub payload: Value,
    pub cost_cents: Option<u64>,
    pub started_ns: u64,
    pub finished_ns: u64,
}

impl Outcome {
    /// A failed outcome: `Timeout` for [`AdapterError::Timeout`], `Error` otherwise,
    /// with the error's text as the message.
    pub fn failed(err: &AdapterError, started_ns: u64) -> Outcome {
        Outcome::failure(err.status(), &err.to_string(), started_ns)
    }

    /// A failed outcome with a given status and message, finishing now.
    pub fn failure(status: Status, message: &str, started_ns: u64) -> Outcome {
        Outcome {
            status,
            payload: failure_payload(message),
            cost_cents: None,
            started_ns,
            finished_ns: now_ns().max(started_ns),
        }
    }

    /// The receipt fields for `req`, as produced by the adapter `adapter_id`.
    pub fn into_unsigned(self, req: &Request, adapter_id: &str) -> Unsigned {
        Unsigned {
            intent_hash: req.intent_hash,
            effect_kind: req.kind.to_string(),
            adapter_id: adapter_id.to_string(),
            status: self.status,
            payload: self.payload,
            started_ns: self.started_ns,
            finished_ns: self.finished_ns,
            cost_cents: self.cost_cents,
        }
    }
}

/// An adapter: runs intents of some effect kinds outside the deterministic core.
/// Implementations never panic on their inputs; every failure is an [`Outcome`].
pub trait Adapter: Send + Sync {
    /// The adapter id recorded in receipts.
    fn id(&self) -> &str;
    /// The effect kinds this adapter runs.
    fn kinds(&self) -> &[&str];
    /// Run one intent. May block (network, disk); may run concurrently with others.
    fn run(&self, req: &Request) -> Outcome;
}

/// Run `req` on `adapter` and sign the outcome with the world key.
pub fn dispatch(
    adapter: &dyn Adapter,
    req: &Request,
    signer: &ReceiptSigner,
) -> Result<Receipt, ReceiptError> {
    let outcome = adapter.run(req);
    crate::receipt::sign(outcome.into_unsigned(req, adapter.id()), signer)
}

/// Why an adapter could not do what an intent asked. The text becomes the receipt
/// message, so no variant ever carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter {adapter} does not run {kind} effects")]
    WrongKind { adapter: String, kind: String },
    #[error("bad {kind} params: {message}")]
    Params { kind: String, message: String },
    #[error("blob {0} is not in the object store")]
    BlobMissing(Hash),
    #[error("object store: {0}")]
    Store(#[from] aos_store::Error),
    #[error("{url} is not allowed: {reason}")]
    Refused { url: String, reason: String },
    #[error("bad URL {url}: {message}")]
    BadUrl { url: String, message: String },
    #[error("timed out after {after:?} ({context})")]
    Timeout { after: Duration, context: String },
    #[error("the response body exceeds the cap of {cap} bytes")]
    TooLarge { cap: u64 },
    #[error("more than {max} redirects")]
    TooManyRedirects { max: u32 },
    #[error("request to {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("no llm provider {0:?} is configured")]
    UnknownProvider(String),
    #[error("secret {0:?} is not available")]
    SecretMissing(String),
    #[error("bad llm input: {0}")]
    BadInput(String),
    #[error("the provider answered HTTP {status}: {message}")]
    Provider { status: u16, message: String },
    #[error("the provider's answer is not a chat completion: {0}")]
    BadResponse(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("bad adapter configuration: {0}")]
    Config(String),
    /// Any other error whose text had a secret removed.
    #[error("{0}")]
    Redacted(String),
    #[error("the {kind} receipt does not match its schema: {message}")]
    ReceiptShape { kind: String, message: String },
}

impl AdapterError {
    /// The receipt status this error ends in.
    pub fn status(&self) -> Status {
        match self {
            AdapterError::Timeout { .. } => Status::Timeout,
            _ => Status::Error,
        }
    }
}

/// Wall-clock nanoseconds since the Unix epoch (0 before it, saturating far after).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// An `allow_url` that allows everything (for effects that contact no URL, and tests).
pub fn allow_any_url(_method: &str, _url: &str) -> Result<(), String> {
    Ok(())
}

/// A `secrets` lookup that knows no secret.
pub fn no_secrets(_name: &str) -> Option<String> {
    None
}

/// The built-in `defeffect` of an effect kind.
pub fn effect_def(kind: &str) -> Option<&'static DefEffect> {
    catalog::builtins().iter().find_map(|d| match d {
        Def::Effect(e) if e.kind == kind => Some(e),
        _ => None,
    })
}

/// Schema lookups in the built-in catalog.
struct Builtins;

impl Schemas for Builtins {
    fn schema(&self, name: &Name) -> Option<&TypeExpr> {
        match catalog::get(DefKind::Schema, name) {
            Some(Def::Schema(s)) => Some(&s.ty),
            _ => None,
        }
    }
}

fn canonical_as(v: &Value, schema: &Name) -> Result<Value, String> {
    let ty = Builtins
        .schema(schema)
        .ok_or_else(|| format!("unknown schema {schema}"))?;
    value::canonicalize(v, ty, &Builtins).map_err(|diags| {
        diags
            .iter()
            .take(3)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Params of a built-in effect kind in canonical form (either JSON lens accepted).
pub fn canonical_params(kind: &str, params: &Value) -> Result<Value, AdapterError> {
    let def = effect_def(kind).ok_or_else(|| AdapterError::Params {
        kind: kind.into(),
        message: "not a built-in effect kind".into(),
    })?;
    canonical_as(params, &def.params_schema).map_err(|message| AdapterError::Params {
        kind: kind.into(),
        message,
    })
}

/// An `ok` receipt payload of a built-in effect kind in canonical form.
pub fn canonical_payload(kind: &str, payload: &Value) -> Result<Value, AdapterError> {
    let def = effect_def(kind).ok_or_else(|| AdapterError::ReceiptShape {
        kind: kind.into(),
        message: "not a built-in effect kind".into(),
    })?;
    canonical_as(payload, &def.receipt_schema).map_err(|message| AdapterError::ReceiptShape {
        kind: kind.into(),
        message,
    })
}

/// What an adapter body produced: the receipt payload (canonicalized by the frame),
/// the cost, and the finish time when the body fixed it itself (so a payload that
/// records its own timings agrees with the receipt).
pub(crate) struct Done {
    pub payload: Value,
    pub cost_cents: Option<u64>,
    pub finished_ns: Option<u64>,
}

impl Done {
    pub fn payload(payload: Value) -> Done {
        Done {
            payload,
            cost_cents: None,
            finished_ns: None,
        }
    }
}

/// The common frame of an adapter run: check the kind, canonicalize the params, run
/// `body`, and turn its result into an [`Outcome`] with a canonical payload.
pub(crate) fn run_frame(
    adapter: &dyn Adapter,
    req: &Request,
    body: impl FnOnce(&Value, u64) -> Result<Done, AdapterError>,
) -> Outcome {
    let started_ns = now_ns();
    if !adapter.kinds().contains(&req.kind) {
        let err = AdapterError::WrongKind {
            adapter: adapter.id().to_string(),
            kind: req.kind.to_string(),
        };
        return Outcome::failed(&err, started_ns);
    }
    let result = canonical_params(req.kind, req.params)
        .and_then(|params| body(&params, started_ns))
        .and_then(|done| Ok((canonical_payload(req.kind, &done.payload)?, done)));
    match result {
        Ok((payload, done)) => Outcome {
            status: Status::Ok,
            payload,
            cost_cents: done.cost_cents,
            started_ns,
            finished_ns: done.finished_ns.unwrap_or_else(now_ns).max(started_ns),
        },
        Err(err) => Outcome::failed(&err, started_ns),
    }
}
