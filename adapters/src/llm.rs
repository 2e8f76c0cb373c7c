//! `llm.generate`: an OpenAI-compatible chat-completions client.
//!
//! - Each provider ([`LlmConfig`]) has an id (matched against the params' `provider`;
//!   an empty `provider` picks the first), a base URL (requests go to
//!   `{base_url}/chat/completions`), a default model (used when the params' `model` is
//!   empty), and prices in cents per 1,000 prompt and completion tokens (default 0).
//!   The receipt's `cost_cents` is the price of the reported usage rounded up to a
//!   whole cent.
//! - Input: the blob `input_ref` holds the prompt — UTF-8 text (sent as one `user`
//!   message) or a JSON object `{"messages": [{"role": …, "content": …}, …]}` (sent as
//!   is). Output: the text of the first choice, stored as a blob (`output_ref`). Token
//!   usage is the response's `usage.prompt_tokens` / `usage.completion_tokens`.
//! - The API key: the params' `api_key` — a `secret` reference is resolved by its
//!   alias through the request's `secrets` (the version is the kernel's to check), a
//!   `literal` is used as given — or else the provider's `api_key_secret` name, resolved
//!   the same way; with neither, no `Authorization` header is sent (local servers). The
//!   key is sent only as `Authorization: Bearer …` (marked sensitive, so the client
//!   never logs it), and is removed from every error text and from the stored output:
//!   it never reaches a receipt.
//! - The base URL is checked with the request's `allow_url` before it is contacted;
//!   redirects are not followed (a 3xx is an error). `tools` are not supported yet: a
//!   request naming tools is an `error` receipt rather than a silent omission.

use std::time::{Duration, Instant};

use aos_store::objects::ObjectStore;
use serde_json::{json, Map, Number, Value};
use ureq::http::{header, HeaderValue, Method};
use ureq::Agent;

use crate::adapter::{run_frame, Adapter, AdapterError, Done, Outcome, Request};
use crate::http::{build_agent, exchange, Call, Limits};
use crate::params;

/// What replaces a secret in any text the adapter produces.
pub const REDACTED: &str = "[redacted]";

/// One OpenAI-compatible provider.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// The provider id, matched against the params' `provider` and recorded in receipts.
    pub provider_id: String,
    /// E.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The model used when the params' `model` is empty.
    pub default_model: String,
    /// The secret holding the API key, when the params do not name one.
    pub api_key_secret: Option<String>,
    /// Cents per 1,000 prompt tokens.
    pub prompt_cents_per_1k: f64,
    /// Cents per 1,000 completion tokens.
    pub completion_cents_per_1k: f64,
    /// Total time for one generation.
    pub timeout: Duration,
    /// The largest response read, in bytes.
    pub max_response_bytes: u64,
    /// An explicit proxy; `None` = connect directly.
    pub proxy: Option<String>,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            provider_id: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            default_model: String::new(),
            api_key_secret: None,
            prompt_cents_per_1k: 0.0,
            completion_cents_per_1k: 0.0,
            timeout: Duration::from_secs(120),
            max_response_bytes: 16 * 1024 * 1024,
            proxy: None,
        }
    }
}

/// The `llm.generate` adapter.
#[derive(Debug, Clone)]
pub struct LlmAdapter {
    id: String,
    store: ObjectStore,
    providers: Vec<(LlmConfig, Agent)>,
}

impl LlmAdapter {
    /// The adapter id is `llm`. Fails only on a malformed proxy.
    pub fn new(store: ObjectStore, providers: Vec<LlmConfig>) -> Result<LlmAdapter, AdapterError> {
        let providers = providers
            .into_iter()
            .map(|c| {
                let agent = build_agent(c.proxy.as_deref(), c.timeout)?;
                Ok((c, agent))
            })
            .collect::<Result<Vec<_>, AdapterError>>()?;
        Ok(LlmAdapter {
            id: "llm".into(),
            store,
            providers,
        })
    }

    fn provider(&self, id: &str) -> Result<&(LlmConfig, Agent), AdapterError> {
        let found = if id.is_empty() {
            self.providers.first()
        } else {
            self.providers.iter().find(|(c, _)| c.provider_id == id)
        };
        found.ok_or_else(|| AdapterError::UnknownProvider(id.to_string()))
    }

    /// The API key, if any, from the params or the provider's configuration.
    fn api_key(
        &self,
        req: &Request,
        p: &Value,
        cfg: &LlmConfig,
    ) -> Result<Option<String>, AdapterError> {
        let bad = |message: &str| AdapterError::Params {
            kind: req.kind.into(),
            message: message.into(),
        };
        let lookup = |name: &str| {
            (req.secrets)(name)
                .map(Some)
                .ok_or_else(|| AdapterError::SecretMissing(name.to_string()))
        };
        match params::opt(p, "api_key") {
            Some(v) => match v.get("$tag").and_then(Value::as_str) {
                Some("literal") => v
                    .get("$value")
                    .and_then(Value::as_str)
                    .map(|s| Some(s.to_string()))
                    .ok_or_else(|| bad("api_key literal must be text")),
                Some("secret") => {
                    let alias = v
                        .get("$value")
                        .and_then(|s| s.get("alias"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("api_key secret reference needs an alias"))?;
                    lookup(alias)
                }
                _ => Err(bad("api_key must be a literal or a secret reference")),
            },
            None => match &cfg.api_key_secret {
                Some(name) => lookup(name),
                None => Ok(None),
            },
        }
    }

    fn generate(
        &self,
        req: &Request,
        p: &Value,
        key: &mut Option<String>,
    ) -> Result<Done, AdapterError> {
        let bad = |message: String| AdapterError::Params {
            kind: req.kind.into(),
            message,
        };
        let (cfg, agent) = self.provider(params::text(p, "provider").map_err(bad)?)?;
        *key = self.api_key(req, p, cfg)?;
        let model = match params::text(p, "model").map_err(bad)? {
            "" if cfg.default_model.is_empty() => {
                return Err(bad(
                    "no model given and the provider has no default model".into()
                ))
            }
            "" => cfg.default_model.as_str(),
            m => m,
        };
        let temperature = temperature(params::field(p, "temperature").map_err(bad)?)
            .ok_or_else(|| bad("temperature must be a finite decimal".into()))?;
        let max_tokens = params::nat(p, "max_tokens").map_err(bad)?;
        if params::opt(p, "tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(AdapterError::Unsupported(
                "tool calls in llm.generate".into(),
            ));
        }
        let input_ref = params::hash(p, "input_ref").map_err(bad)?;
        if !self.store.contains(&input_ref) {
            return Err(AdapterError::BlobMissing(input_ref));
        }
        let messages = messages(&self.store.get(&input_ref)?)?;

        let mut body = Map::new();
        body.insert("model".into(), Value::String(model.to_string()));
        body.insert("messages".into(), messages);
        body.insert("temperature".into(), Value::Number(temperature));
        if max_tokens > 0 {
            body.insert("max_tokens".into(), Value::from(max_tokens));
        }
        let body = serde_json::to_vec(&Value::Object(body))
            .map_err(|e| AdapterError::BadInput(e.to_string()))?;

        let mut headers = vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ACCEPT, HeaderValue::from_static("application/json")),
        ];
        if let Some(k) = key.as_deref() {
            let mut v = HeaderValue::from_str(&format!("Bearer {k}")).map_err(|_| {
                AdapterError::Config("the API key is not a valid header value".into())
            })?;
            v.set_sensitive(true);
            headers.push((header::AUTHORIZATION, v));
        }
        let url = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
        (req.allow_url)("POST", &url).map_err(|reason| AdapterError::Refused {
            url: url.clone(),
            reason,
        })?;
        let ex = exchange(
            agent,
            &Call {
                method: &Method::POST,
                url: &url,
                headers: &headers,
                body: Some(&body),
            },
            &Limits {
                deadline: Instant::now() + cfg.timeout,
                total: cfg.timeout,
                max_body: cfg.max_response_bytes,
                follow: false,
            },
        )?;
        if !(200..300).contains(&ex.status) {
            return Err(AdapterError::Provider {
                status: ex.status,
                message: provider_message(&ex.body),
            });
        }
        let answer: Value = serde_json::from_slice(&ex.body)
            .map_err(|e| AdapterError::BadResponse(format!("not JSON: {e}")))?;
        let mut text = completion_text(&answer)?;
        if let Some(k) = key.as_deref().filter(|k| !k.is_empty()) {
            if text.contains(k) {
                text = text.replace(k, REDACTED);
            }
        }
        let usage = answer.get("usage");
        let count = |name: &str| {
            usage
                .and_then(|u| u.get(name))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        let (prompt, completion) = (count("prompt_tokens"), count("completion_tokens"));
        let cost = cost_cents(cfg, prompt, completion);
        let output_ref = self.store.put_bytes(text.as_bytes())?;
        Ok(Done {
            payload: json!({
                "output_ref": output_ref.to_string(),
                "token_usage": {
                    "prompt": aos_store::canon::u64_value(prompt),
                    "completion": aos_store::canon::u64_value(completion),
                },
                "cost_cents": aos_store::canon::u64_value(cost),
                "provider_id": cfg.provider_id,
            }),
            cost_cents: Some(cost),
            finished_ns: None,
        })
    }
}

const KINDS: &[&str] = &["llm.generate"];

impl Adapter for LlmAdapter {
    fn id(&self) -> &str {
        &self.id
    }

    fn kinds(&self) -> &[&str] {
        KINDS
    }

    fn run(&self, req: &Request) -> Outcome {
        run_frame(self, req, |p, _| {
            let mut key = None;
            self.generate(req, p, &mut key)
                .map_err(|e| redact(e, key.as_deref().unwrap_or_default()))
        })
    }
}

/// Remove a secret from an error's text (keeping a timeout a timeout).
pub fn redact(err: AdapterError, secret: &str) -> AdapterError {
    if secret.is_empty() || !err.to_string().contains(secret) {
        return err;
    }
    match err {
        AdapterError::Timeout { after, context } => AdapterError::Timeout {
            after,
            context: context.replace(secret, REDACTED),
        },
        other => AdapterError::Redacted(other.to_string().replace(secret, REDACTED)),
    }
}

/// The canonical dec128 text (or a plain number) as a JSON number.
fn temperature(v: &Value) -> Option<Number> {
    let f = match v {
        Value::String(s) => s.parse::<f64>().ok()?,
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    Number::from_f64(f)
}

/// The chat messages of an input blob.
fn messages(input: &[u8]) -> Result<Value, AdapterError> {
    if let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(input) {
        if let Some(msgs) = obj.get("messages") {
            let list = msgs.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
                AdapterError::BadInput("\"messages\" must be a non-empty list".into())
            })?;
            for (i, m) in list.iter().enumerate() {
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err(AdapterError::BadInput(format!(
                        "message {i} must be an object with a text \"role\""
                    )));
                }
            }
            return Ok(msgs.clone());
        }
    }
    let text = std::str::from_utf8(input).map_err(|_| {
        AdapterError::BadInput("the input is neither UTF-8 text nor {\"messages\": [...]}".into())
    })?;
    Ok(json!([{"role": "user", "content": text}]))
}

/// The text of the first choice (a string, or a list of text parts).
fn completion_text(answer: &Value) -> Result<String, AdapterError> {
    let message = answer
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("message"))
        .ok_or_else(|| AdapterError::BadResponse("no choices[0].message".into()))?;
    match message.get("content") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect()),
        _ => Err(AdapterError::BadResponse(
            "choices[0].message has no text content (tool calls are not supported)".into(),
        )),
    }
}

/// The provider's error message: `error.message` of a JSON body, else the start of the
/// body text.
fn provider_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("error")
            .and_then(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
            })
            .map(str::to_string)
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let clipped: String = text.chars().take(300).collect();
    if clipped.len() < text.len() {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// The price of the usage in cents, rounded up to a whole cent (0 for no price).
pub fn cost_cents(cfg: &LlmConfig, prompt: u64, completion: u64) -> u64 {
    let cents = (prompt as f64 * cfg.prompt_cents_per_1k
        + completion as f64 * cfg.completion_cents_per_1k)
        / 1000.0;
    if !(cents.is_finite() && cents > 0.0) {
        return 0;
    }
    // A tolerance for float error, so an exact 2.0 does not round up to 3.
    let rounded = (cents - 1e-9).ceil().max(0.0);
    if rounded >= aos_store::canon::MAX_SAFE_INT as f64 {
        aos_store::canon::MAX_SAFE_INT
    } else {
        rounded as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_round_up_to_whole_cents() {
        let cfg = LlmConfig {
            prompt_cents_per_1k: 0.5,
            completion_cents_per_1k: 1.5,
            ..LlmConfig::default()
        };
        assert_eq!(cost_cents(&cfg, 0, 0), 0);
        assert_eq!(cost_cents(&cfg, 1000, 1000), 2);
        assert_eq!(cost_cents(&cfg, 1, 0), 1);
        assert_eq!(cost_cents(&cfg, 3000, 1000), 3);
        assert_eq!(cost_cents(&LlmConfig::default(), 5000, 5000), 0);
        let nan = LlmConfig {
            prompt_cents_per_1k: f64::NAN,
            ..LlmConfig::default()
        };
        assert_eq!(cost_cents(&nan, 10, 10), 0);
    }

    #[test]
    fn input_forms() {
        let m = messages(b"hello").unwrap();
        assert_eq!(m, json!([{"role": "user", "content": "hello"}]));
        let m = messages(br#"{"messages":[{"role":"system","content":"x"}]}"#).unwrap();
        assert_eq!(m[0]["role"], "system");
        assert!(messages(br#"{"messages":[]}"#).is_err());
        assert!(messages(br#"{"messages":[{"content":"x"}]}"#).is_err());
        assert!(messages(&[0xff, 0xfe]).is_err());
        // JSON without messages is a text prompt.
        assert_eq!(messages(b"{\"a\":1}").unwrap()[0]["content"], "{\"a\":1}");
    }

    #[test]
    fn redaction_keeps_timeouts() {
        let e = AdapterError::Provider {
            status: 401,
            message: "bad key sk-123".into(),
        };
        let r = redact(e, "sk-123");
        assert!(!r.to_string().contains("sk-123"));
        let t = redact(
            AdapterError::Timeout {
                after: Duration::from_secs(1),
                context: "POST http://x/sk-123".into(),
            },
            "sk-123",
        );
        assert!(matches!(t, AdapterError::Timeout { .. }));
        assert!(!t.to_string().contains("sk-123"));
    }
}
