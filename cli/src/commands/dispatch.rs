//! Effect dispatch for `aos run` and `aos send`: hand the world's open intents to the
//! adapters (several at a time, outside the deterministic core), sign what they did with
//! the world's receipt key, and give the receipts back to the kernel, which verifies,
//! journals and delivers them. Timers are dispatched when due.

use std::time::Duration;

use air_fmt::load::AirSet;
use air_fmt::{Def, DefKind};
use aos_adapters::adapter::dispatch;
use aos_adapters::blob::BlobAdapter;
use aos_adapters::http::{HttpAdapter, HttpConfig};
use aos_adapters::llm::{LlmAdapter, LlmConfig};
use aos_adapters::secrets::SecretStore;
use aos_adapters::timer::TimerAdapter;
use aos_adapters::{Adapter, Outcome, Receipt, ReceiptSigner, Request, Status};
use aos_kernel::session::{Injected, Session};
use aos_kernel::state::OpenIntent;
use aos_store::journal::now_ns;
use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::Value;

/// How many adapters run at once.
pub const IN_FLIGHT: usize = 8;

pub struct Dispatcher {
    adapters: Vec<Box<dyn Adapter>>,
    signer: ReceiptSigner,
    secrets: SecretStore,
}

/// What one round of dispatch did.
pub struct Round {
    /// Accepted receipts with what they caused (None: a duplicate, skipped).
    pub accepted: Vec<(Receipt, Option<Injected>)>,
}

impl Dispatcher {
    pub fn new(s: &Session) -> anyhow::Result<Dispatcher> {
        let layout = &s.world.layout;
        let key = std::fs::read(layout.receipt_key()).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the receipt key {}: {e}",
                layout.receipt_key().display()
            )
        })?;
        let signer = ReceiptSigner::from_file_bytes(&key)?;
        let objects = || ObjectStore::open(&layout.objects());
        let llm = llm_providers(&s.world.config.extra)?;
        let adapters: Vec<Box<dyn Adapter>> = vec![
            Box::new(HttpAdapter::new(objects()?, HttpConfig::default())?),
            Box::new(LlmAdapter::new(objects()?, llm)?),
            Box::new(BlobAdapter::new(objects()?)),
            Box::new(TimerAdapter::new()),
        ];
        Ok(Dispatcher {
            adapters,
            signer,
            secrets: SecretStore::new(layout),
        })
    }

    /// Dispatch every due open intent, then every one that becomes due, until none is
    /// left (`wait`: also wait for future timers). Returns what was accepted, in order.
    pub fn run_until_idle(
        &self,
        s: &mut Session,
        wait: bool,
        max_rounds: Option<usize>,
        mut on_round: impl FnMut(&Session, &Round) -> anyhow::Result<()>,
    ) -> anyhow::Result<usize> {
        let mut total = 0;
        let mut rounds = 0;
        loop {
            if max_rounds.is_some_and(|m| rounds >= m) {
                return Ok(total);
            }
            rounds += 1;
            let open = s.open_intents();
            let now = now_ns();
            let (due, later): (Vec<_>, Vec<_>) =
                open.into_iter().partition(|(_, o)| due_at(o) <= now);
            if !due.is_empty() {
                let receipts = self.run(s, &due);
                if receipts.is_empty() {
                    anyhow::bail!(
                        "{} effect intent(s) are due but no receipt could be signed; check the receipt key",
                        due.len()
                    );
                }
                let report = s.accept_receipts(&receipts)?;
                total += receipts.len();
                let round = Round {
                    accepted: receipts.into_iter().zip(report).collect(),
                };
                on_round(s, &round)?;
                continue;
            }
            let next = later.iter().map(|(_, o)| due_at(o)).min();
            match next {
                Some(t) if wait => {
                    let ns = t.saturating_sub(now_ns()).min(60_000_000_000);
                    std::thread::sleep(Duration::from_nanos(ns));
                }
                _ => return Ok(total),
            }
        }
    }

    /// Run `intents` on their adapters, [`IN_FLIGHT`] at a time, and sign the receipts.
    fn run(&self, s: &Session, intents: &[(Hash, OpenIntent)]) -> Vec<Receipt> {
        let mut out = Vec::with_capacity(intents.len());
        for chunk in intents.chunks(IN_FLIGHT) {
            let results: Vec<Option<Receipt>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(hash, open)| {
                        // A plan's intent is dispatched under the manifest its run
                        // started under (its grants), even after an apply.
                        let m = s.kernel.manifest_for_intent(open);
                        scope.spawn(move || {
                            let set = m.as_deref().map(|m| &m.set);
                            let grant =
                                set.map(|set| aos_kernel::gates::grant_params(set, &open.grant));
                            self.one(set, *hash, open, grant)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().ok().flatten())
                    .collect()
            });
            out.extend(results.into_iter().flatten());
        }
        out
    }

    fn one(
        &self,
        set: Option<&AirSet>,
        hash: Hash,
        open: &OpenIntent,
        grant: Option<Result<Value, String>>,
    ) -> Option<Receipt> {
        let allow_url = |method: &str, url: &str| -> Result<(), String> {
            // Only `http.request` names its URL in the params, so only its grant
            // (http.out) constrains hosts; other adapters contact the endpoints the
            // operator configured (an LLM provider's base URL), which their own grants
            // (providers, models) already constrain.
            if open.kind != "http.request" {
                return Ok(());
            }
            match &grant {
                Some(Ok(params)) => {
                    aos_kernel::gates::http_url_allowed_by(&open.grant, params, method, url)
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err("the world has no manifest".into()),
            }
        };
        let secrets = |name: &str| -> Option<String> {
            if !secret_allowed(set, &open.grant, name) {
                return None;
            }
            self.secrets
                .get(name)
                .ok()
                .flatten()
                .map(|v| v.expose().to_string())
        };
        let req = Request {
            intent_hash: hash,
            kind: &open.kind,
            params: &open.params,
            idempotency_key: &open.idempotency_key,
            allow_url: &allow_url,
            secrets: &secrets,
        };
        let started = now_ns();
        let signed = match self
            .adapters
            .iter()
            .find(|a| a.kinds().contains(&open.kind.as_str()))
        {
            Some(adapter) => dispatch(adapter.as_ref(), &req, &self.signer),
            None => Err(aos_adapters::ReceiptError::Malformed(format!(
                "no adapter runs effect kind {:?}",
                open.kind
            ))),
        };
        // Every dispatched intent gets a receipt: a failure is one too.
        signed
            .or_else(|e| {
                let failed = Outcome::failure(Status::Error, &e.to_string(), started);
                aos_adapters::receipt::sign(failed.into_unsigned(&req, "aos"), &self.signer)
            })
            .ok()
    }
}

/// A secret reaches an adapter only when the manifest declares it: a `defsecret` whose
/// `binding_id` names it (`NAME`, `env:NAME` or `secret:NAME`) and whose `allowed_caps`
/// lists the intent's grant.
fn secret_allowed(set: Option<&AirSet>, grant: &str, name: &str) -> bool {
    let Some(set) = set else { return false };
    set.of_kind(DefKind::Secret).any(|l| match &l.item {
        Def::Secret(s) => {
            let bound = s
                .binding_id
                .strip_prefix("env:")
                .or_else(|| s.binding_id.strip_prefix("secret:"))
                .unwrap_or(&s.binding_id);
            bound == name && s.allowed_caps.iter().any(|c| c == grant)
        }
        _ => false,
    })
}

/// When an intent may run: a timer at its `deliver_at_ns`, everything else now.
fn due_at(o: &OpenIntent) -> u64 {
    if o.kind != "timer.set" {
        return 0;
    }
    match o.params.get("deliver_at_ns") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// `llm` in config.json: `{"providers": [{"provider_id", "base_url", "default_model",
/// "api_key_secret", "prompt_cents_per_1k", "completion_cents_per_1k"}]}`.
fn llm_providers(extra: &serde_json::Map<String, Value>) -> anyhow::Result<Vec<LlmConfig>> {
    let Some(llm) = extra.get("llm") else {
        return Ok(Vec::new());
    };
    let list = llm
        .get("providers")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("config.json: `llm.providers` must be a list"))?;
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
        let base = LlmConfig::default();
        out.push(LlmConfig {
            provider_id: text("provider_id").unwrap_or(base.provider_id),
            base_url: text("base_url").ok_or_else(|| {
                anyhow::anyhow!("config.json: llm.providers[{i}] needs a `base_url`")
            })?,
            default_model: text("default_model").unwrap_or_default(),
            api_key_secret: text("api_key_secret"),
            prompt_cents_per_1k: p
                .get("prompt_cents_per_1k")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            completion_cents_per_1k: p
                .get("completion_cents_per_1k")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            ..base
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use air_fmt::load::{load, Source};

    #[test]
    fn only_declared_secrets_reach_an_adapter_and_only_through_their_grants() {
        let text = r#"[{"$kind":"defsecret","name":"t/key@1","binding_id":"env:LLM_KEY","allowed_caps":["llm_grant"],"allowed_plans":[]}]"#;
        let (set, diags) = load(&[Source {
            name: "t.air.json".into(),
            bytes: text.as_bytes().to_vec(),
        }]);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        assert!(secret_allowed(Some(&set), "llm_grant", "LLM_KEY"));
        assert!(!secret_allowed(Some(&set), "other_grant", "LLM_KEY"));
        assert!(!secret_allowed(Some(&set), "llm_grant", "OTHER_KEY"));
        assert!(!secret_allowed(None, "llm_grant", "LLM_KEY"));
    }
}
