//! Properties: the gates never panic on arbitrary input, are deterministic, and what
//! they allow really is within the grant; policy is first match.

use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use url::{Host, Url};

use super::{name, world, world_with, H};
use crate::gates::read::Decimal;
use crate::gates::{check_cap, check_policy, effect_by_kind, http_url_allowed, Origin, OriginKind};

const KEYS: [&str; 28] = [
    "hosts",
    "verbs",
    "methods",
    "schemes",
    "ports",
    "path_prefixes",
    "method",
    "url",
    "headers",
    "body_ref",
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "input_ref",
    "tools",
    "api_key",
    "namespace",
    "blob_ref",
    "reducer",
    "alias",
    "scope",
    "aliases",
    "namespaces",
    "$tag",
    "$value",
    "record",
    "set",
];

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[\\x00-\\x20\\\\@:/.\\[\\]%]{0,8}",
        "[0-9.eE+-]{0,12}",
        "https?://[a-z.@:/\\[\\]%0-9]{0,30}",
        "blake3:[0-9a-f]{64}",
        Just("GET".to_string()),
        Just("api.example.com".to_string()),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        arb_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            proptest::sample::select(KEYS.to_vec()).prop_map(str::to_string),
            ".{0,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

fn arb_url() -> impl Strategy<Value = String> {
    (
        prop_oneof![6 => "https?", 1 => "HTTPS?", 1 => "ftp|file|javascript|mailto|foo", 1 => ".{0,4}"],
        prop_oneof![8 => Just("://".to_string()), 1 => ":|:/|:///|//", 1 => ".{0,3}"],
        prop_oneof![
            6 => Just(String::new()),
            1 => "[a-z.]{0,10}@",
            1 => "[a-z]{0,5}:[a-z]{0,5}@",
            1 => Just("api.example.com@".to_string()),
        ],
        prop_oneof![
            4 => "api\\.example\\.com\\.?",
            1 => "API\\.EXAMPLE\\.COM",
            2 => "evil\\.example",
            2 => "127\\.0\\.0\\.1|0x7f\\.1|2130706433|127\\.1",
            2 => "\\[::1\\]|\\[0:0::1\\]|\\[::ffff:127\\.0\\.0\\.1\\]",
            1 => "[a-z0-9.-]{0,15}",
            1 => ".{0,10}",
        ],
        prop_oneof![6 => Just(String::new()), 2 => ":80|:443|:8080|:0443", 1 => ":[0-9]{0,6}"],
        prop_oneof![
            2 => Just(String::new()),
            2 => "/",
            4 => "/v1(/x)?|/static/a\\.js",
            3 => "/(v1|static)/(\\.\\.|%2e%2e|%2E%2e|\\.)/(admin|v1/y)",
            2 => "/[a-z./%]{0,20}",
            1 => "[a-z./%\\\\]{0,20}",
            1 => ".{0,15}",
        ],
        prop_oneof![4 => Just(String::new()), 1 => "\\?[a-z=&/.]{0,10}", 1 => "#.{0,5}"],
    )
        .prop_map(|(a, b, c, d, e, f, g)| format!("{a}{b}{c}{d}{e}{f}{g}"))
}

fn arb_method() -> impl Strategy<Value = String> {
    prop_oneof![6 => "GET|get|POST|Put|DELETE", 1 => ".{0,8}", 1 => "GET[\\r\\n ].{0,4}"]
}

/// Well-typed canonical `sys/http.out@1` params with random content.
fn arb_http_grant() -> impl Strategy<Value = Value> {
    let hosts = prop::collection::vec(
        prop_oneof![
            4 => "api\\.example\\.com\\.?|API\\.example\\.COM|evil\\.example",
            2 => "127\\.0\\.0\\.1|::1|\\[::1\\]|\\*\\.example\\.com",
            1 => "[a-z.]{0,8}",
        ],
        0..4,
    );
    let verbs = prop::collection::vec(prop_oneof![4 => "GET|post|PUT", 1 => "[A-Z]{0,4}"], 0..3);
    let schemes = prop::option::of(prop::collection::vec("https?|ftp|foo|HTTP", 0..3));
    let ports = prop::option::of(prop::collection::vec(
        prop_oneof![Just(80u64), Just(443), Just(8080), any::<u64>()],
        0..3,
    ));
    let prefixes = prop::option::of(prop::collection::vec(
        prop_oneof![4 => "/v1/?|/|/static/|", 1 => "[a-z/.%?]{0,8}"],
        0..3,
    ));
    (hosts, verbs, schemes, ports, prefixes).prop_map(|(h, v, s, p, x)| {
        json!({"hosts": h, "verbs": v, "schemes": s, "ports": p, "path_prefixes": x})
    })
}

/// A grant and a request built from the same small pools, so that many requests are
/// allowed and the rest miss by one constraint or one trick.
fn arb_targeted() -> impl Strategy<Value = (Value, String, String)> {
    fn subset<T: Clone + std::fmt::Debug + 'static>(pool: &[T]) -> impl Strategy<Value = Vec<T>> {
        prop::sample::subsequence(pool.to_vec(), 0..=pool.len())
    }
    fn one(pool: &[&'static str]) -> impl Strategy<Value = &'static str> {
        prop::sample::select(pool.to_vec())
    }
    let grant = (
        subset(&["api.example.com", "API.example.COM", "127.0.0.1", "[::1]", "evil.example", "api.example.com."]),
        subset(&["GET", "POST", "put"]),
        prop_oneof![3 => Just(None), 1 => subset(&["http", "https", "ftp"]).prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => subset(&[80u64, 443, 8080]).prop_map(Some)],
        prop_oneof![2 => Just(None), 1 => subset(&["/v1", "/static/", "/"]).prop_map(Some)],
    )
        .prop_map(|(h, v, s, p, x)| json!({"hosts": h, "verbs": v, "schemes": s, "ports": p, "path_prefixes": x}));
    let url = (
        one(&["http", "https", "HTTPS", "ftp"]),
        one(&[
            "",
            "",
            "",
            "user@",
            "api.example.com@",
            "evil.example@",
            "u:p@",
        ]),
        one(&[
            "api.example.com",
            "API.EXAMPLE.COM",
            "api.example.com.",
            "127.0.0.1",
            "0x7f.1",
            "2130706433",
            "[::1]",
            "[0:0::1]",
            "evil.example",
            "api.example.com.evil.example",
        ]),
        one(&["", "", "", ":80", ":443", ":8080", ":8443"]),
        one(&[
            "",
            "/",
            "/v1",
            "/v1/x",
            "/v1x",
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/static/a.js",
            "/static",
            "/admin",
            "/v1/./x",
        ]),
        one(&["", "", "?a=/v1", "#frag"]),
    )
        .prop_map(|(a, b, c, d, e, f)| format!("{a}://{b}{c}{d}{e}{f}"));
    (
        grant,
        one(&["GET", "get", "POST", "PUT", "DELETE"]).prop_map(str::to_string),
        url,
    )
}

fn host_of(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Domain(d) => Some(d.to_ascii_lowercase().trim_end_matches('.').to_string()),
        Host::Ipv4(a) => Some(a.to_string()),
        Host::Ipv6(a) => Some(format!("[{a}]")),
    }
}

fn grant_host(h: &str) -> Option<String> {
    let inner = h.trim().trim_start_matches('[').trim_end_matches(']');
    if let Ok(a) = inner.parse::<std::net::Ipv6Addr>() {
        return Some(format!("[{a}]"));
    }
    match Host::parse(h.trim()).ok()? {
        Host::Domain(d) => Some(d.to_ascii_lowercase().trim_end_matches('.').to_string()),
        Host::Ipv4(a) => Some(a.to_string()),
        Host::Ipv6(a) => Some(format!("[{a}]")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn http_url_allowed_never_panics_and_is_deterministic(
        grant in prop_oneof![arb_json(), arb_http_grant()],
        method in arb_method(),
        url in prop_oneof![arb_url(), ".{0,40}"],
    ) {
        let a = http_url_allowed(&grant, &method, &url);
        let b = http_url_allowed(&grant, &method, &url);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn what_http_url_allowed_allows_is_within_the_grant(
        (grant, method, url) in prop_oneof![
            3 => arb_targeted(),
            1 => (arb_http_grant(), arb_method(), arb_url()),
        ],
    ) {
        if http_url_allowed(&grant, &method, &url).is_ok() {
            prop_assert!(!url.contains('\\') && !url.chars().any(|c| c.is_whitespace() || c.is_control()));
            let parsed = Url::parse(&url);
            prop_assert!(parsed.is_ok());
            let Ok(parsed) = parsed else { unreachable!() };
            // The host really is one of the grant's hosts.
            let host = host_of(&parsed);
            prop_assert!(host.as_deref().is_some_and(|h| !h.is_empty()));
            let hosts: Vec<Option<String>> = grant["hosts"].as_array().into_iter().flatten()
                .filter_map(Value::as_str).map(grant_host).collect();
            prop_assert!(hosts.contains(&host), "{:?} not in {:?}", host, hosts);
            // The method is one of the verbs.
            let verbs: Vec<&str> = grant["verbs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            prop_assert!(verbs.iter().any(|v| v.eq_ignore_ascii_case(&method)));
            // The scheme is listed, or http(s) when none are.
            let scheme = parsed.scheme();
            match grant["schemes"].as_array() {
                Some(s) => prop_assert!(s.iter().filter_map(Value::as_str).any(|x| x.eq_ignore_ascii_case(scheme))),
                None => prop_assert!(scheme == "http" || scheme == "https"),
            }
            // The port is listed, when ports are constrained.
            if let Some(ports) = grant["ports"].as_array() {
                let port = parsed.port_or_known_default().map(u64::from);
                prop_assert!(port.is_some_and(|p| ports.iter().any(|x| x.as_u64() == Some(p))));
            }
            // The path is at or below a prefix (checked for plain prefixes).
            if let Some(prefixes) = grant["path_prefixes"].as_array() {
                let plain: Vec<&str> = prefixes.iter().filter_map(Value::as_str).collect();
                if plain.iter().all(|p| p.starts_with('/') && p.bytes().all(|b| b == b'/' || b.is_ascii_lowercase() || b.is_ascii_digit())) {
                    let path = parsed.path();
                    prop_assert!(plain.iter().any(|p| path == *p
                        || (path.starts_with(p) && (p.ends_with('/') || path.as_bytes().get(p.len()) == Some(&b'/')))),
                        "{} not under {:?}", path, plain);
                }
            }
            // No allowed path climbs out of its prefix: dot segments are gone.
            prop_assert!(!parsed.path().split('/').any(|s| s == ".." || s.eq_ignore_ascii_case("%2e%2e")));
        }
    }

    #[test]
    fn check_cap_never_panics_and_is_deterministic(
        params in prop_oneof![arb_json(), arb_url().prop_map(|u| json!({"method": "GET", "url": u, "headers": {}, "body_ref": null}))],
        kind in proptest::sample::select(vec![
            "http.request", "llm.generate", "blob.put", "blob.get", "timer.set", "introspect.manifest",
            "introspect.reducer_state", "vault.put", "governance.apply",
        ]),
        grant in proptest::sample::select(vec!["http", "llm", "blob", "timer", "query", "secret", "gov", "missing"]),
        now_ns in any::<u64>(),
    ) {
        let set = fixed_world();
        let Some(effect) = effect_by_kind(set, kind) else { unreachable!() };
        let a = check_cap(set, grant, effect, &params, now_ns);
        let b = check_cap(set, grant, effect, &params, now_ns);
        prop_assert!(!a.reason.is_empty());
        prop_assert_eq!(a.allowed, a.code == "allowed");
        prop_assert_eq!(a, b);
    }

    #[test]
    fn check_cap_survives_arbitrary_grant_params(
        grant_params in arb_json(),
        params in arb_json(),
        which in 0usize..7,
        expiry in prop::option::of(any::<u64>()),
        now_ns in any::<u64>(),
    ) {
        let (cap, kind) = [
            ("sys/http.out@1", "http.request"),
            ("sys/llm.basic@1", "llm.generate"),
            ("sys/blob@1", "blob.put"),
            ("sys/timer@1", "timer.set"),
            ("sys/query@1", "introspect.reducer_state"),
            ("sys/secret@1", "vault.put"),
            ("demo/http_fetch_cap@1", "http.request"),
        ][which];
        let grant_params = if grant_params.is_null() { json!({}) } else { grant_params };
        let mut g = json!({"name": "g", "cap": cap, "params": grant_params});
        if let Some(e) = expiry {
            g["expiry_ns"] = json!(e.to_string());
        }
        let set = world(json!([g]));
        let Some(effect) = effect_by_kind(&set, kind) else { unreachable!() };
        let a = check_cap(&set, "g", effect, &params, now_ns);
        prop_assert_eq!(&a, &check_cap(&set, "g", effect, &params, now_ns));
        if expiry.is_some_and(|e| now_ns >= e) {
            prop_assert_eq!(a.code, "grant_expired");
        }
    }

    #[test]
    fn decimals_order_like_exact_arithmetic(
        m1 in any::<i32>(), e1 in -12i32..12, m2 in any::<i32>(), e2 in -12i32..12,
        junk in ".{0,12}",
    ) {
        let _ = Decimal::parse(&junk);
        let (Some(a), Some(b)) = (Decimal::parse(&format!("{m1}e{e1}")), Decimal::parse(&format!("{m2}e{e2}"))) else {
            unreachable!()
        };
        let low = e1.min(e2);
        let x = i128::from(m1) * 10i128.pow((e1 - low) as u32);
        let y = i128::from(m2) * 10i128.pow((e2 - low) as u32);
        prop_assert_eq!(a.cmp(&b), x.cmp(&y));
        prop_assert_eq!(b.cmp(&a), a.cmp(&b).reverse());
        // The plain decimal spelling is the same number.
        let plain = if e1 >= 0 {
            format!("{m1}{}", "0".repeat(e1 as usize))
        } else {
            let digits = m1.unsigned_abs().to_string();
            let k = (-e1) as usize;
            let sign = if m1 < 0 { "-" } else { "" };
            if digits.len() > k {
                format!("{sign}{}.{}", &digits[..digits.len() - k], &digits[digits.len() - k..])
            } else {
                format!("{sign}0.{}{digits}", "0".repeat(k - digits.len()))
            }
        };
        let Some(p) = Decimal::parse(&plain) else { unreachable!() };
        prop_assert_eq!(p.cmp(&a), Ordering::Equal, "{} vs {}e{}", plain, m1, e1);
    }

    #[test]
    fn policy_is_first_match(
        rules in prop::collection::vec(
            (
                prop::option::of(proptest::sample::select(vec!["http.request", "timer.set", "blob.put"])),
                prop::option::of(proptest::sample::select(vec!["g1", "g2"])),
                prop::option::of(proptest::sample::select(vec!["plan", "reducer"])),
                prop::option::of(proptest::sample::select(vec!["demo/a@1", "demo/b@1"])),
                any::<bool>(),
            ),
            0..6,
        ),
        kind in proptest::sample::select(vec!["http.request", "timer.set", "blob.put"]),
        grant in proptest::sample::select(vec!["g1", "g2"]),
        plan in any::<bool>(),
        origin in proptest::sample::select(vec!["demo/a@1", "demo/b@1"]),
    ) {
        let json_rules: Vec<Value> = rules.iter().map(|(k, c, ok, on, allow)| {
            let mut w = Map::new();
            if let Some(k) = k { w.insert("effect_kind".into(), json!(k)); }
            if let Some(c) = c { w.insert("cap_name".into(), json!(c)); }
            if let Some(ok) = ok { w.insert("origin_kind".into(), json!(ok)); }
            if let Some(on) = on { w.insert("origin_name".into(), json!(on)); }
            json!({"when": w, "decision": if *allow { "allow" } else { "deny" }})
        }).collect();
        let set = world_with(json!([]), json!({}), Some(Value::Array(json_rules)));
        let origin_kind = if plan { OriginKind::Plan } else { OriginKind::Reducer };
        let n = name(origin);
        let v = check_policy(&set, kind, grant, &Origin { kind: origin_kind, name: &n });
        let expect = rules.iter().position(|(k, c, ok, on, _)| {
            k.is_none_or(|k| k == kind)
                && c.is_none_or(|c| c == grant)
                && ok.is_none_or(|ok| ok == origin_kind.as_str())
                && on.is_none_or(|on| on == origin)
        });
        prop_assert_eq!(v.rule, expect);
        prop_assert_eq!(v.allowed, expect.is_some_and(|i| rules[i].4));
    }
}

/// One world with a grant of every cap type (built once).
fn fixed_world() -> &'static air_fmt::load::AirSet {
    static SET: std::sync::OnceLock<air_fmt::load::AirSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        world(json!([
            {"name": "http", "cap": "sys/http.out@1", "params": {"hosts": ["api.example.com", "127.0.0.1"], "verbs": ["GET"],
              "ports": [443, 80], "path_prefixes": ["/v1"]}},
            {"name": "llm", "cap": "sys/llm.basic@1", "params": {"providers": ["openai"], "max_tokens_max": 10,
              "temperature_max": "0.5", "tools_allow": ["a"]}},
            {"name": "blob", "cap": "sys/blob@1", "params": {"namespaces": ["n"]}},
            {"name": "timer", "cap": "sys/timer@1", "params": {}, "expiry_ns": 1_000_000},
            {"name": "query", "cap": "sys/query@1", "params": {"scope": "demo/"}},
            {"name": "secret", "cap": "sys/secret@1", "params": {"aliases": ["a"]}},
            {"name": "gov", "cap": "demo/gov@1", "params": {}},
        ]))
    })
}

#[test]
fn the_fixed_world_allows_something_of_each_kind() {
    let set = fixed_world();
    let cases = [
        (
            "http",
            "http.request",
            json!({"method": "GET", "url": "https://api.example.com/v1/x", "headers": {}, "body_ref": null}),
        ),
        (
            "llm",
            "llm.generate",
            json!({"provider": "openai", "model": "m", "temperature": "0.5", "max_tokens": 10,
            "input_ref": H, "tools": ["a"], "api_key": null}),
        ),
        ("blob", "blob.put", json!({"namespace": "n", "blob_ref": H})),
        (
            "timer",
            "timer.set",
            json!({"deliver_at_ns": 1, "key": null}),
        ),
        (
            "query",
            "introspect.reducer_state",
            json!({"reducer": "demo/X@1", "key": null, "consistency": "head"}),
        ),
        (
            "secret",
            "vault.put",
            json!({"alias": "a", "binding_id": "b", "value_ref": H, "expected_digest": H}),
        ),
    ];
    for (grant, kind, params) in cases {
        let Some(effect) = effect_by_kind(set, kind) else {
            unreachable!()
        };
        let v = check_cap(set, grant, effect, &params, 0);
        assert!(v.allowed, "{grant}: {v:?}");
    }
}
