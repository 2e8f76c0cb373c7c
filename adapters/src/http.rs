//! `http.request`: a real HTTP/1.1 client (`ureq`) under the grant.
//!
//! - The request body is the blob `body_ref` (an object in the world's store); the
//!   response body is stored as a blob and named by `body_ref` in the receipt (`null`
//!   when the response has no body bytes).
//! - Response header names are lower-cased; repeated headers are joined with `", "`.
//! - One total timeout covers everything (every hop, connecting, sending, reading the
//!   body): hitting it is a `timeout` receipt. A body over the size cap is an `error`
//!   receipt naming the cap. Defaults: 30 s and 16 MiB ([`HttpConfig`]).
//! - Redirects (301, 302, 303, 307, 308) are followed here, not by the client, at most
//!   [`HttpConfig::max_redirects`] (5) of them, and **every URL is checked with the
//!   request's `allow_url` before it is contacted** — the first one and each redirect
//!   target. A refused URL is never contacted: the receipt is an `error` naming it.
//!   303, and 301/302 after a POST, continue as GET without a body (as browsers do);
//!   307/308 keep the method and body. `authorization`, `cookie` and
//!   `proxy-authorization` are dropped when a redirect leaves the origin.
//! - `Idempotency-Key` carries the intent's idempotency key on every hop (a header of
//!   that name in the params is replaced); `host`, `content-length`,
//!   `transfer-encoding` and `connection` from the params are ignored, so the request
//!   goes to the host that was checked and is framed by the client.
//! - No proxy unless [`HttpConfig::proxy`] names one (the environment's `HTTP_PROXY`
//!   and friends are ignored, so loopback stays loopback and a grant check sees the
//!   real destination).

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use aos_store::objects::ObjectStore;
use serde_json::{json, Map, Value};
use ureq::http::{self as h, HeaderName, HeaderValue, Method};
use ureq::Agent;

use crate::adapter::{now_ns, run_frame, Adapter, AdapterError, Done, Outcome, Request};
use crate::params;

/// Options of the HTTP adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Total time for one effect, all hops and the body included.
    pub timeout: Duration,
    /// The largest response body stored, in bytes.
    pub max_response_bytes: u64,
    /// How many redirects are followed before the effect fails.
    pub max_redirects: u32,
    /// An explicit proxy (`http://host:port`, `socks5://…`); `None` = connect directly.
    pub proxy: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            max_redirects: 5,
            proxy: None,
        }
    }
}

/// The `http.request` adapter.
#[derive(Debug, Clone)]
pub struct HttpAdapter {
    id: String,
    config: HttpConfig,
    agent: Agent,
    store: ObjectStore,
}

impl HttpAdapter {
    /// The adapter id is `http`. Fails only on a malformed proxy.
    pub fn new(store: ObjectStore, config: HttpConfig) -> Result<HttpAdapter, AdapterError> {
        let agent = build_agent(config.proxy.as_deref(), config.timeout)?;
        Ok(HttpAdapter {
            id: "http".into(),
            config,
            agent,
            store,
        })
    }

    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    fn request(&self, req: &Request, p: &Value, started_ns: u64) -> Result<Done, AdapterError> {
        let bad = |message: String| AdapterError::Params {
            kind: req.kind.into(),
            message,
        };
        let method_text = params::text(p, "method").map_err(bad)?.to_ascii_uppercase();
        let mut method = Method::from_bytes(method_text.as_bytes())
            .map_err(|_| bad(format!("{method_text:?} is not an HTTP method")))?;
        let mut url = params::text(p, "url").map_err(bad)?.to_string();
        let mut headers = user_headers(p).map_err(bad)?;
        let key = HeaderValue::from_str(req.idempotency_key)
            .map_err(|_| bad("the idempotency key is not a valid header value".into()))?;
        let mut body = match params::opt(p, "body_ref") {
            Some(v) => {
                let hash =
                    params::as_hash(v).ok_or_else(|| bad("body_ref is not a hash".into()))?;
                if !self.store.contains(&hash) {
                    return Err(AdapterError::BlobMissing(hash));
                }
                Some(self.store.get(&hash)?)
            }
            None => None,
        };

        let deadline = Instant::now() + self.config.timeout;
        let mut redirects = 0u32;
        loop {
            (req.allow_url)(method.as_str(), &url).map_err(|reason| AdapterError::Refused {
                url: url.clone(),
                reason,
            })?;
            let mut hop_headers = headers.clone();
            hop_headers.push((HeaderName::from_static("idempotency-key"), key.clone()));
            let ex = exchange(
                &self.agent,
                &Call {
                    method: &method,
                    url: &url,
                    headers: &hop_headers,
                    body: body.as_deref(),
                },
                &Limits {
                    deadline,
                    total: self.config.timeout,
                    max_body: self.config.max_response_bytes,
                    follow: true,
                },
            )?;
            let Some(location) = ex.location else {
                let body_ref = if ex.body.is_empty() {
                    Value::Null
                } else {
                    Value::String(self.store.put_bytes(&ex.body)?.to_string())
                };
                let end_ns = now_ns().max(started_ns);
                let payload = json!({
                    "status": ex.status,
                    "headers": Value::Object(ex.headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<_, _>>()),
                    "body_ref": body_ref,
                    "timings": {
                        "start_ns": aos_store::canon::u64_value(started_ns),
                        "end_ns": aos_store::canon::u64_value(end_ns),
                    },
                    "adapter_id": self.id,
                });
                return Ok(Done {
                    payload,
                    cost_cents: None,
                    finished_ns: Some(end_ns),
                });
            };
            if redirects >= self.config.max_redirects {
                return Err(AdapterError::TooManyRedirects {
                    max: self.config.max_redirects,
                });
            }
            redirects += 1;
            let next = resolve(&url, &location).map_err(|message| AdapterError::BadUrl {
                url: location.chars().take(200).collect(),
                message,
            })?;
            let to_get = ex.status == 303 && method != Method::HEAD
                || matches!(ex.status, 301 | 302) && method == Method::POST;
            if to_get {
                method = Method::GET;
                body = None;
                headers.retain(|(n, _)| n != h::header::CONTENT_TYPE);
            }
            if !same_origin(&url, &next) {
                headers.retain(|(n, _)| !is_credential(n));
            }
            url = next;
        }
    }
}

const KINDS: &[&str] = &["http.request"];

impl Adapter for HttpAdapter {
    fn id(&self) -> &str {
        &self.id
    }

    fn kinds(&self) -> &[&str] {
        KINDS
    }

    fn run(&self, req: &Request) -> Outcome {
        run_frame(self, req, |p, started_ns| self.request(req, p, started_ns))
    }
}

/// An agent that follows no redirects, treats every status as a response, and uses a
/// proxy only when one is named.
pub(crate) fn build_agent(proxy: Option<&str>, timeout: Duration) -> Result<Agent, AdapterError> {
    let proxy = match proxy {
        Some(p) => {
            Some(ureq::Proxy::new(p).map_err(|e| AdapterError::Config(format!("proxy: {e}")))?)
        }
        None => None,
    };
    Ok(Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(proxy)
        .timeout_global(Some(timeout))
        .build()
        .new_agent())
}

/// One HTTP exchange to make.
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    pub url: &'a str,
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub body: Option<&'a [u8]>,
}

/// The bounds of an exchange.
pub(crate) struct Limits {
    /// When the whole effect must be done.
    pub deadline: Instant,
    /// The total budget, for messages.
    pub total: Duration,
    /// The largest body read.
    pub max_body: u64,
    /// Return a redirect's `Location` instead of reading its body.
    pub follow: bool,
}

/// What came back.
pub(crate) struct Exchange {
    pub status: u16,
    /// Lower-cased names; repeated headers joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// Set for a redirect when following, and then `body` is empty.
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// Make one request (no redirects) and read its response within the limits.
pub(crate) fn exchange(
    agent: &Agent,
    call: &Call,
    limits: &Limits,
) -> Result<Exchange, AdapterError> {
    let context = || format!("{} {}", call.method, call.url);
    let timeout = || AdapterError::Timeout {
        after: limits.total,
        context: context(),
    };
    let remaining = limits
        .deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(timeout)?;
    let mut builder = h::Request::builder()
        .method(call.method.clone())
        .uri(call.url);
    for (name, value) in call.headers {
        builder = builder.header(name, value);
    }
    let result = match call.body {
        Some(bytes) => builder.body(bytes).map(|r| {
            let r = agent
                .configure_request(r)
                .timeout_global(Some(remaining))
                .build();
            agent.run(r)
        }),
        None => builder.body(()).map(|r| {
            let r = agent
                .configure_request(r)
                .timeout_global(Some(remaining))
                .build();
            agent.run(r)
        }),
    };
    let response = result
        .map_err(|e| AdapterError::BadUrl {
            url: call.url.to_string(),
            message: e.to_string(),
        })?
        .map_err(|e| ureq_error(e, call, limits))?;

    let status = response.status().as_u16();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    if limits.follow && matches!(status, 301 | 302 | 303 | 307 | 308) {
        if let Some(location) = response.headers().get(h::header::LOCATION) {
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            return Ok(Exchange {
                status,
                headers,
                location: Some(location),
                body: Vec::new(),
            });
        }
    }
    let declared = response
        .headers()
        .get(h::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body) {
        return Err(AdapterError::TooLarge {
            cap: limits.max_body,
        });
    }
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader();
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n.min(1 << 20)) as usize);
    (&mut reader)
        .take(limits.max_body.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| ureq_error(ureq::Error::from(e), call, limits))?;
    if body.len() as u64 > limits.max_body {
        return Err(AdapterError::TooLarge {
            cap: limits.max_body,
        });
    }
    Ok(Exchange {
        status,
        headers,
        location: None,
        body,
    })
}

fn ureq_error(e: ureq::Error, call: &Call, limits: &Limits) -> AdapterError {
    let timed_out = match &e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        _ => false,
    };
    if timed_out || Instant::now() >= limits.deadline {
        return AdapterError::Timeout {
            after: limits.total,
            context: format!("{} {}", call.method, call.url),
        };
    }
    match e {
        ureq::Error::BodyExceedsLimit(_) => AdapterError::TooLarge {
            cap: limits.max_body,
        },
        other => AdapterError::Transport {
            url: call.url.to_string(),
            message: other.to_string(),
        },
    }
}

/// Header names the params may not set: the client frames the request and the host is
/// the one checked against the grant.
const MANAGED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "idempotency-key",
];

fn is_credential(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization" | "cookie" | "proxy-authorization"
    )
}

/// The request headers from the params (canonical: a JSON object of text).
fn user_headers(p: &Value) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let Some(map) = params::opt(p, "headers") else {
        return Ok(Vec::new());
    };
    let map = map
        .as_object()
        .ok_or_else(|| "headers must be a map of text".to_string())?;
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{:?} is not a header name", clip(name)))?;
        if MANAGED.contains(&name.as_str()) {
            continue;
        }
        let text = value
            .as_str()
            .ok_or_else(|| format!("header {name} must be text"))?;
        let mut value = HeaderValue::from_str(text)
            .map_err(|_| format!("the value of header {name} is not a valid header value"))?;
        if is_credential(&name) {
            value.set_sensitive(true);
        }
        out.push((name, value));
    }
    Ok(out)
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Whether two absolute URLs share scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    fn origin(u: &str) -> Option<(String, String, u16)> {
        let uri: h::Uri = u.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        Some((scheme, host, port))
    }
    match (origin(a), origin(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn has_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return false;
    }
    for c in chars {
        match c {
            ':' => return true,
            c if c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.') => {}
            _ => return false,
        }
    }
    false
}

/// Resolve a `Location` value against the URL that returned it (RFC 3986 §5.2, for
/// absolute `http(s)` base URLs). Fragments are dropped: they are never sent.
pub fn resolve(base: &str, reference: &str) -> Result<String, String> {
    let reference = reference.trim();
    let reference = reference.split('#').next().unwrap_or_default();
    if has_scheme(reference) {
        return Ok(reference.to_string());
    }
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("the base URL {:?} is not absolute", clip(base)))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_query) = rest.split_at(auth_end);
    let base_path = match path_query.split_once('?') {
        Some((p, _)) => p,
        None => path_query,
    };
    let base_path = if base_path.is_empty() { "/" } else { base_path };
    if let Some(after) = reference.strip_prefix("//") {
        return Ok(format!("{scheme}://{after}"));
    }
    if reference.is_empty() {
        return Ok(format!("{scheme}://{authority}{path_query}"));
    }
    if reference.starts_with('?') {
        return Ok(format!("{scheme}://{authority}{base_path}{reference}"));
    }
    let (ref_path, ref_query) = match reference.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (reference, None),
    };
    let merged = if ref_path.starts_with('/') {
        ref_path.to_string()
    } else {
        let dir_end = base_path.rfind('/').map_or(0, |i| i + 1);
        format!("{}{ref_path}", &base_path[..dir_end])
    };
    let path = remove_dot_segments(&merged);
    Ok(match ref_query {
        Some(q) => format!("{scheme}://{authority}{path}?{q}"),
        None => format!("{scheme}://{authority}{path}"),
    })
}

fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut out: Vec<&str> = Vec::new();
    for (i, seg) in segments.iter().enumerate().skip(1) {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_references() {
        let base = "http://a.example:8080/b/c/d?q=1#f";
        let cases = [
            ("http://other.example/x", "http://other.example/x"),
            ("//other.example/x", "http://other.example/x"),
            ("/x/y", "http://a.example:8080/x/y"),
            ("x", "http://a.example:8080/b/c/x"),
            ("../x?z=2", "http://a.example:8080/b/x?z=2"),
            ("./", "http://a.example:8080/b/c/"),
            ("..", "http://a.example:8080/b/"),
            ("../../../../x", "http://a.example:8080/x"),
            ("?z", "http://a.example:8080/b/c/d?z"),
            ("", "http://a.example:8080/b/c/d?q=1"),
            ("/x#frag", "http://a.example:8080/x"),
        ];
        for (r, want) in cases {
            assert_eq!(resolve(base, r).unwrap(), want, "{r}");
        }
        assert_eq!(resolve("http://h", "x").unwrap(), "http://h/x");
        assert_eq!(resolve("http://h?q", "/").unwrap(), "http://h/");
        assert!(resolve("nope", "x").is_err());
    }

    #[test]
    fn origins() {
        assert!(same_origin("http://a/x", "http://A:80/y"));
        assert!(!same_origin("http://a/x", "https://a/x"));
        assert!(!same_origin("http://a/x", "http://b/x"));
        assert!(!same_origin("http://a:1/x", "http://a:2/x"));
    }
}
