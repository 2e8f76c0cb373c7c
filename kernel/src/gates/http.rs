//! The `http.out` constraint: is this (method, URL) within a grant's hosts, verbs,
//! schemes, ports and path prefixes? The URL is parsed with the WHATWG rules of the
//! `url` crate and judged by what it really is; see the module docs of
//! [`crate::gates`] for every rule. The HTTP adapter must send the URL in the
//! normalized form [`normalized_url`] returns, so the URL judged here is the one sent.

use std::net::Ipv6Addr;

use serde_json::Value;
use url::{Host, Url};

use super::read::{list, opt_nat_set, opt_text_set, q, show};
use super::Denial;

/// The constraints of an `http.out` grant, read from its canonical params.
#[derive(Debug)]
struct HttpRules<'a> {
    hosts: Option<Vec<&'a str>>,
    /// Every verb list present (`verbs`, and the original project's `methods`), by
    /// field name: a method must be in each.
    verbs: Vec<(&'static str, Vec<&'a str>)>,
    schemes: Option<Vec<&'a str>>,
    ports: Option<Vec<u64>>,
    path_prefixes: Option<Vec<&'a str>>,
}

fn read_rules<'a>(params: &'a Value, label: &str) -> Result<HttpRules<'a>, Denial> {
    let bad = |e: String| {
        Denial::new(
            "bad_grant_params",
            format!(
                "the params of {label} are not http.out constraints: {e}; fix the grant's params"
            ),
        )
    };
    if !params.is_object() {
        return Err(bad(format!("expected a record, found {}", show(params))));
    }
    let mut verbs = Vec::new();
    for name in ["verbs", "methods"] {
        if let Some(v) = opt_text_set(params, name).map_err(&bad)? {
            verbs.push((name, v));
        }
    }
    Ok(HttpRules {
        hosts: opt_text_set(params, "hosts").map_err(&bad)?,
        verbs,
        schemes: opt_text_set(params, "schemes").map_err(&bad)?,
        ports: opt_nat_set(params, "ports").map_err(&bad)?,
        path_prefixes: opt_text_set(params, "path_prefixes").map_err(&bad)?,
    })
}

/// Is this URL allowed by these canonical `http.out` grant params? Used for the request
/// and again for every redirect (resolve a relative `Location` against the current URL
/// first: only absolute URLs are judged). The error says which constraint refused
/// which value and how to allow it. Reasons speak of "the grant"; use
/// [`http_url_allowed_by`] to name it.
pub fn http_url_allowed(grant_params: &Value, method: &str, url: &str) -> Result<(), String> {
    check("the grant", grant_params, method, url).map_err(|d| d.reason)
}

/// [`http_url_allowed`] with reasons that name the grant.
pub fn http_url_allowed_by(
    grant: &str,
    grant_params: &Value,
    method: &str,
    url: &str,
) -> Result<(), String> {
    check(&format!("grant {grant}"), grant_params, method, url).map_err(|d| d.reason)
}

/// The URL as the gate judged it and as the adapter must send it: parsed and
/// re-serialized by the WHATWG rules (host lowercased and punycoded, dot segments
/// resolved, default port dropped). Fails for the URLs the gate refuses to parse.
pub fn normalized_url(url: &str) -> Result<String, String> {
    parse(url).map(|u| u.to_string()).map_err(|d| d.reason)
}

/// The check, with reasons naming `label` ("grant NAME" or "the grant").
pub(crate) fn check(label: &str, params: &Value, method: &str, url: &str) -> Result<(), Denial> {
    let rules = read_rules(params, label)?;
    let parsed = parse(url)?;
    let shown = q(url);

    // Scheme.
    let scheme = parsed.scheme();
    match &rules.schemes {
        Some(schemes) => {
            if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
                return Err(Denial::new(
                    "scheme_not_allowed",
                    format!(
                        "{label} does not allow scheme {} (URL {shown}): its schemes are {}; to allow it, add {} to schemes of {label}",
                        q(scheme),
                        list(schemes),
                        q(scheme)
                    ),
                ));
            }
        }
        None => {
            if scheme != "http" && scheme != "https" {
                return Err(Denial::new(
                    "scheme_not_allowed",
                    format!(
                        "{label} does not allow scheme {} (URL {shown}): a grant without schemes allows only \"http\" and \"https\"; to allow it, add {} to schemes of {label}",
                        q(scheme),
                        q(scheme)
                    ),
                ));
            }
        }
    }

    // Host.
    let host = match parsed.host() {
        Some(Host::Domain(d)) if !d.is_empty() => norm_domain(d),
        Some(Host::Ipv4(a)) => a.to_string(),
        Some(Host::Ipv6(a)) => format!("[{a}]"),
        _ => {
            return Err(Denial::new(
                "no_host",
                format!("URL {shown} names no host; {label} allows only requests to listed hosts, so send an absolute URL with a host"),
            ))
        }
    };
    let Some(hosts) = &rules.hosts else {
        return Err(Denial::new(
            "host_not_allowed",
            format!(
                "{label} lists no hosts, so it allows none (URL {shown} is for host {}); to allow it, add {} to hosts of {label}",
                q(&host),
                q(&host)
            ),
        ));
    };
    if !hosts.iter().any(|h| norm_grant_host(h) == host) {
        let wildcard = if hosts.iter().any(|h| h.contains('*')) {
            " (wildcards such as \"*.example.com\" are not supported: list every host)"
        } else {
            ""
        };
        return Err(Denial::new(
            "host_not_allowed",
            format!(
                "{label} does not allow host {} (URL {shown}): its hosts are {}{wildcard}; to allow it, add {} to hosts of {label}",
                q(&host),
                list(hosts),
                q(&host)
            ),
        ));
    }

    // Method.
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Denial::new(
            "bad_method",
            format!(
                "method {} is not an HTTP method token (letters, digits and !#$%&'*+-.^_`|~); {label} allows no such request",
                q(method)
            ),
        ));
    }
    for (field, verbs) in &rules.verbs {
        if !verbs.iter().any(|v| v.eq_ignore_ascii_case(method)) {
            let upper = method.to_ascii_uppercase();
            return Err(Denial::new(
                "verb_not_allowed",
                format!(
                    "{label} does not allow method {} (URL {shown}): its {field} are {}; to allow it, add {} to {field} of {label}",
                    q(method),
                    list(verbs),
                    q(&upper)
                ),
            ));
        }
    }

    // Port.
    if let Some(ports) = &rules.ports {
        let shown_ports: Vec<String> = ports.iter().map(u64::to_string).collect();
        match parsed.port_or_known_default() {
            None => {
                return Err(Denial::new(
                    "port_not_allowed",
                    format!(
                        "URL {shown} has no port and scheme {} has no default port, but {label} allows only ports [{}]; to allow it, put an allowed port in the URL",
                        q(scheme),
                        shown_ports.join(", ")
                    ),
                ))
            }
            Some(port) => {
                if !ports.contains(&u64::from(port)) {
                    return Err(Denial::new(
                        "port_not_allowed",
                        format!(
                            "{label} does not allow port {port} (URL {shown}): its ports are [{}]; to allow it, add {port} to ports of {label}",
                            shown_ports.join(", ")
                        ),
                    ));
                }
            }
        }
    }

    // Path.
    if let Some(prefixes) = &rules.path_prefixes {
        let path = parsed.path();
        if !prefixes.iter().any(|p| under(path, &norm_prefix(p))) {
            return Err(Denial::new(
                "path_not_allowed",
                format!(
                    "{label} does not allow path {} (URL {shown}): its path_prefixes are {}; to allow it, add {} (or a prefix of it) to path_prefixes of {label}",
                    q(path),
                    list(prefixes),
                    q(path)
                ),
            ));
        }
    }
    Ok(())
}

/// Parse an absolute URL, refusing characters that parsers read differently.
fn parse(url: &str) -> Result<Url, Denial> {
    let shown = q(url);
    if let Some(c) = url
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '\\')
    {
        return Err(Denial::new(
            "bad_url",
            format!(
                "URL {shown} contains {}, which URL parsers read differently; percent-encode it",
                match c {
                    '\\' => "a backslash".to_string(),
                    c if c.is_control() => format!("a control character (U+{:04X})", u32::from(c)),
                    c => format!("whitespace (U+{:04X})", u32::from(c)),
                }
            ),
        ));
    }
    Url::parse(url).map_err(|e| {
        Denial::new(
            "bad_url",
            format!("URL {shown} is not an absolute URL ({e}); send scheme://host/path"),
        )
    })
}

/// A domain as compared: ASCII lowercase, one trailing dot dropped.
fn norm_domain(d: &str) -> String {
    let d = d.to_ascii_lowercase();
    match d.strip_suffix('.') {
        Some(s) => s.to_string(),
        None => d,
    }
}

/// A grant's host entry in the form URL hosts are compared in: domains lowercased and
/// punycoded without a trailing dot, IPv4 dotted, IPv6 bracketed and compressed.
/// An entry that is no host at all stays as written (and matches nothing real).
fn norm_grant_host(h: &str) -> String {
    let h = h.trim();
    let inner = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    if let Ok(a) = inner.parse::<Ipv6Addr>() {
        return format!("[{a}]");
    }
    match Host::parse(h) {
        Ok(Host::Domain(d)) => norm_domain(&d),
        Ok(Host::Ipv4(a)) => a.to_string(),
        Ok(Host::Ipv6(a)) => format!("[{a}]"),
        Err(_) => h.to_ascii_lowercase(),
    }
}

/// A grant's path prefix in the form URL paths are compared in (percent-encoded, dot
/// segments resolved, leading `/`). A prefix with a query, fragment or characters the
/// URL check refuses stays as written.
fn norm_prefix(p: &str) -> String {
    if p.contains(['?', '#', '\\']) || p.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return p.to_string();
    }
    let slash = if p.starts_with('/') { "" } else { "/" };
    match Url::parse(&format!("http://h{slash}{p}")) {
        Ok(u) => u.path().to_string(),
        Err(_) => p.to_string(),
    }
}

/// Is `path` at or below `prefix`, on a segment boundary?
fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || (path.starts_with(prefix)
            && (prefix.ends_with('/') || path.as_bytes().get(prefix.len()) == Some(&b'/')))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
