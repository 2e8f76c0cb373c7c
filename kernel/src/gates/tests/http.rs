//! `http.out`: hosts, verbs, schemes, ports, path prefixes, and URL tricks.

use serde_json::{json, Value};

use super::{allowed, cap, denied, http_params, world};
use crate::gates::http::normalized_url;
use crate::gates::{http_url_allowed, http_url_allowed_by};

/// Canonical `sys/http.out@1` params.
fn grant(hosts: &[&str], verbs: &[&str]) -> Value {
    json!({"hosts": hosts, "verbs": verbs, "schemes": null, "ports": null, "path_prefixes": null})
}

fn with(mut g: Value, field: &str, v: Value) -> Value {
    g[field] = v;
    g
}

#[track_caller]
fn ok(g: &Value, method: &str, url: &str) {
    if let Err(e) = http_url_allowed(g, method, url) {
        panic!("{method} {url} should be allowed: {e}");
    }
}

/// A denial whose reason contains every needle.
#[track_caller]
fn no(g: &Value, method: &str, url: &str, needles: &[&str]) {
    match http_url_allowed_by("http_grant", g, method, url) {
        Ok(()) => panic!("{method} {url} should be denied"),
        Err(e) => {
            for n in needles {
                assert!(e.contains(n), "reason {e:?} lacks {n:?}");
            }
        }
    }
}

#[test]
fn hosts_and_verbs() {
    let g = grant(&["api.example.com"], &["GET", "post"]);
    ok(&g, "GET", "https://api.example.com/v1/items?x=1");
    ok(&g, "get", "https://api.example.com");
    ok(&g, "POST", "http://api.example.com/");
    no(
        &g,
        "GET",
        "https://evil.example/",
        &[
            "host \"evil.example\"",
            "add \"evil.example\" to hosts of grant http_grant",
        ],
    );
    no(&g, "GET", "https://example.com/", &["host \"example.com\""]);
    no(
        &g,
        "GET",
        "https://sub.api.example.com/",
        &["host \"sub.api.example.com\""],
    );
    no(
        &g,
        "GET",
        "https://api.example.com.evil.example/",
        &["host \"api.example.com.evil.example\""],
    );
    no(
        &g,
        "DELETE",
        "https://api.example.com/",
        &[
            "method \"DELETE\"",
            "add \"DELETE\" to verbs of grant http_grant",
        ],
    );
    no(
        &g,
        "delete",
        "https://api.example.com/",
        &["add \"DELETE\" to verbs"],
    );
    // Not a method token: never sent, whatever the verbs.
    no(
        &g,
        "GET\r\nX-Evil: 1",
        "https://api.example.com/",
        &["not an HTTP method token"],
    );
    no(
        &g,
        "",
        "https://api.example.com/",
        &["not an HTTP method token"],
    );
    no(
        &g,
        "GET /",
        "https://api.example.com/",
        &["not an HTTP method token"],
    );
    // An empty host set allows nothing; the unnamed form speaks of "the grant".
    let none = grant(&[], &["GET"]);
    match http_url_allowed(&none, "GET", "https://api.example.com/") {
        Err(e) => assert!(
            e.contains("its hosts are []") && e.contains("hosts of the grant"),
            "{e}"
        ),
        Ok(()) => panic!("an empty host set allows nothing"),
    }
}

#[test]
fn userinfo_is_not_the_host() {
    let g = with(
        grant(&["allowed.example"], &["GET"]),
        "schemes",
        json!(["http", "https"]),
    );
    no(
        &g,
        "GET",
        "http://allowed.example@evil.example/",
        &["host \"evil.example\"", "add \"evil.example\" to hosts"],
    );
    no(
        &g,
        "GET",
        "http://allowed.example:80@evil.example/",
        &["host \"evil.example\""],
    );
    no(
        &g,
        "GET",
        "http://user:pass@evil.example/allowed.example",
        &["host \"evil.example\""],
    );
    // A userinfo naming another host does not hurt when the host really is allowed.
    ok(&g, "GET", "http://evil.example@allowed.example/");
    // Backslashes end the authority for WHATWG parsers but not for others: refused.
    no(
        &g,
        "GET",
        "http://allowed.example\\@evil.example/",
        &["backslash"],
    );
    no(
        &g,
        "GET",
        "https://allowed.example\\.evil.example/",
        &["backslash"],
    );
}

#[test]
fn host_case_trailing_dots_and_idna() {
    let g = grant(&["API.Example.COM", "bücher.example"], &["GET"]);
    ok(&g, "GET", "https://api.example.com/");
    ok(&g, "GET", "https://API.EXAMPLE.COM/");
    ok(&g, "GET", "https://api.example.com./");
    no(&g, "GET", "https://api.example.com../", &[]);
    ok(&g, "GET", "https://xn--bcher-kva.example/");
    ok(&g, "GET", "https://BÜCHER.example/");
    // A trailing dot in the grant is the same host as without.
    let dotted = grant(&["api.example.com."], &["GET"]);
    ok(&dotted, "GET", "https://api.example.com/");
    // Wildcards are not supported, and the denial says so.
    let wild = grant(&["*.example.com"], &["GET"]);
    no(
        &wild,
        "GET",
        "https://a.example.com/",
        &["wildcards", "add \"a.example.com\" to hosts"],
    );
}

#[test]
fn ip_literals_are_compared_in_canonical_form() {
    let g = with(
        grant(&["127.0.0.1", "::1", "[2001:DB8::0:1]"], &["GET"]),
        "schemes",
        json!(["http"]),
    );
    ok(&g, "GET", "http://127.0.0.1:8080/");
    ok(&g, "GET", "http://2130706433/"); // 127.0.0.1 as one number
    ok(&g, "GET", "http://0x7f.0.0.1/"); // hex
    ok(&g, "GET", "http://127.1/"); // short form
    ok(&g, "GET", "http://[::1]:8080/x");
    ok(&g, "GET", "http://[0:0:0:0:0:0:0:1]/");
    ok(&g, "GET", "http://[2001:db8::1]/");
    no(&g, "GET", "http://127.0.0.2/", &["host \"127.0.0.2\""]);
    no(&g, "GET", "http://0x7f000002/", &["host \"127.0.0.2\""]);
    no(&g, "GET", "http://[::2]/", &["host \"[::2]\""]);
    no(
        &g,
        "GET",
        "http://[::ffff:127.0.0.1]/",
        &["host \"[::ffff:"],
    );
    no(&g, "GET", "http://localhost/", &["host \"localhost\""]);
}

#[test]
fn schemes_default_to_http_and_https() {
    let g = grant(&["h.example"], &["GET"]);
    ok(&g, "GET", "http://h.example/");
    ok(&g, "GET", "HTTPS://h.example/");
    no(
        &g,
        "GET",
        "ftp://h.example/",
        &[
            "scheme \"ftp\"",
            "only \"http\" and \"https\"",
            "add \"ftp\" to schemes of grant http_grant",
        ],
    );
    no(&g, "GET", "file:///etc/passwd", &["scheme \"file\""]);
    no(&g, "GET", "javascript:alert(1)", &["scheme \"javascript\""]);
    let https = with(g.clone(), "schemes", json!(["https"]));
    ok(&https, "GET", "https://h.example/");
    no(
        &https,
        "GET",
        "http://h.example/",
        &[
            "scheme \"http\"",
            "its schemes are [\"https\"]",
            "add \"http\" to schemes",
        ],
    );
    // Other schemes pass when listed; a URL without a host still does not.
    let odd = with(g, "schemes", json!(["ftp", "mailto"]));
    ok(&odd, "GET", "ftp://h.example/file");
    no(&odd, "GET", "mailto:someone@h.example", &["names no host"]);
}

#[test]
fn ports_use_the_scheme_default_when_the_url_has_none() {
    let g = with(grant(&["h.example"], &["GET"]), "ports", json!([443, 8443]));
    ok(&g, "GET", "https://h.example/");
    ok(&g, "GET", "https://h.example:443/");
    ok(&g, "GET", "https://h.example:8443/");
    no(
        &g,
        "GET",
        "http://h.example/",
        &[
            "port 80",
            "its ports are [443, 8443]",
            "add 80 to ports of grant http_grant",
        ],
    );
    no(&g, "GET", "https://h.example:444/", &["port 444"]);
    ok(&g, "GET", "https://h.example:0443/x"); // leading zeros: port 443
    let p8080 = with(grant(&["127.0.0.1"], &["GET"]), "ports", json!([8080]));
    ok(&p8080, "GET", "http://127.0.0.1:8080/");
    no(&p8080, "GET", "http://127.0.0.1/", &["port 80"]);
    no(
        &p8080,
        "GET",
        "http://127.0.0.1:99999/",
        &["not an absolute URL"],
    );
    // A scheme without a default port needs an explicit one when ports are constrained.
    let odd = with(
        with(grant(&["h.example"], &["GET"]), "schemes", json!(["foo"])),
        "ports",
        json!([1]),
    );
    no(&odd, "GET", "foo://h.example/", &["no default port"]);
    ok(&odd, "GET", "foo://h.example:1/");
}

#[test]
fn path_prefixes_match_whole_segments_of_the_normalized_path() {
    let g = with(
        grant(&["h.example"], &["GET"]),
        "path_prefixes",
        json!(["/v1", "/static/", "café"]),
    );
    ok(&g, "GET", "https://h.example/v1");
    ok(&g, "GET", "https://h.example/v1/items?q=/admin");
    ok(&g, "GET", "https://h.example/static/app.js");
    ok(&g, "GET", "https://h.example/caf%C3%A9/menu");
    ok(&g, "GET", "https://h.example/café");
    ok(&g, "GET", "https://h.example/v1/./items");
    no(
        &g,
        "GET",
        "https://h.example/v1x",
        &[
            "path \"/v1x\"",
            "add \"/v1x\" (or a prefix of it) to path_prefixes of grant http_grant",
        ],
    );
    no(&g, "GET", "https://h.example/static", &["path \"/static\""]);
    no(&g, "GET", "https://h.example/", &["path \"/\""]);
    no(
        &g,
        "GET",
        "https://h.example/admin?/v1",
        &["path \"/admin\""],
    );
    // Dot segments are resolved before the check, encoded or not.
    no(
        &g,
        "GET",
        "https://h.example/v1/../admin",
        &["path \"/admin\""],
    );
    no(
        &g,
        "GET",
        "https://h.example/v1/%2e%2e/admin",
        &["path \"/admin\""],
    );
    no(
        &g,
        "GET",
        "https://h.example/v1/%2E%2E/%2e%2E/admin",
        &["path \"/admin\""],
    );
    no(
        &g,
        "GET",
        "https://h.example/static/../../etc/passwd",
        &["path \"/etc/passwd\""],
    );
    // An encoded slash is not a segment boundary.
    no(
        &g,
        "GET",
        "https://h.example/v1%2F..%2Fadmin",
        &["path \"/v1%2F..%2Fadmin\""],
    );
    // The adapter sends what was judged.
    assert_eq!(
        normalized_url("https://H.Example/v1/%2e%2e/admin"),
        Ok("https://h.example/admin".to_string())
    );
    assert_eq!(
        normalized_url("https://h.example:443/v1"),
        Ok("https://h.example/v1".to_string())
    );
    assert!(normalized_url("/relative").is_err());
}

#[test]
fn malformed_urls_are_refused() {
    let g = grant(&["h.example"], &["GET"]);
    for (url, needle) in [
        ("", "not an absolute URL"),
        ("/v1/items", "not an absolute URL"),
        ("h.example/v1", "not an absolute URL"),
        ("https://", "not an absolute URL"),
        ("https://:443/", "not an absolute URL"),
        ("https://h.example /", "whitespace"),
        (" https://h.example/", "whitespace"),
        ("https://h.exa\tmple/", "control character"),
        ("https://h.exa\nmple/", "control character"),
        ("https://h.example/\u{0}", "control character"),
        ("https://h.example/\u{a0}", "whitespace"),
        ("https://[::1/", "not an absolute URL"),
    ] {
        no(&g, "GET", url, &[needle]);
    }
    // Special schemes ignore extra slashes: the host is what follows them.
    no(
        &g,
        "GET",
        "https:///evil.example/",
        &["host \"evil.example\""],
    );
    ok(&g, "GET", "https:h.example/");
}

#[test]
fn malformed_grant_params_are_refused() {
    for g in [
        json!(null),
        json!([]),
        json!("hosts"),
        json!({"hosts": "h.example"}),
        json!({"hosts": [1]}),
        json!({"hosts": ["h.example"], "ports": ["x"]}),
        json!({"hosts": ["h.example"], "verbs": {"set": ["GET"]}}),
        json!({"hosts": ["h.example"], "schemes": "https"}),
        json!({"hosts": ["h.example"], "path_prefixes": [null]}),
    ] {
        match http_url_allowed(&g, "GET", "https://h.example/") {
            Ok(()) => panic!("{g} should be refused"),
            Err(e) => assert!(e.contains("not http.out constraints"), "{e}"),
        }
    }
    // Verbs absent: any method token.
    ok(
        &json!({"hosts": ["h.example"]}),
        "PROPFIND",
        "https://h.example/",
    );
}

#[test]
fn check_cap_uses_the_same_rules() {
    let set = world(json!([
        {"name": "http_grant", "cap": "sys/http.out@1",
         "params": {"hosts": ["api.example.com"], "verbs": ["GET"], "ports": [443], "path_prefixes": ["/v1/"]}},
    ]));
    let v = |m: &str, u: &str| cap(&set, "http_grant", "http.request", &http_params(m, u), 0);
    allowed(&v("GET", "https://api.example.com/v1/x"));
    denied(
        &v("GET", "http://api.example.com@evil.example/v1/x"),
        "host_not_allowed",
        &["add \"evil.example\" to hosts of grant http_grant"],
    );
    denied(
        &v("PUT", "https://api.example.com/v1/x"),
        "verb_not_allowed",
        &["add \"PUT\" to verbs of grant http_grant"],
    );
    denied(
        &v("GET", "https://api.example.com:8443/v1/x"),
        "port_not_allowed",
        &["add 8443 to ports"],
    );
    denied(
        &v("GET", "https://api.example.com/v2/x"),
        "path_not_allowed",
        &["\"/v2/x\""],
    );
    denied(
        &v("GET", "ftp://api.example.com/v1/x"),
        "scheme_not_allowed",
        &[],
    );
    denied(&v("GET", "https://api.example.com\\v1"), "bad_url", &[]);
    denied(&v("GET", "mailto:x"), "scheme_not_allowed", &[]);
    denied(
        &v("G E T", "https://api.example.com/v1/x"),
        "bad_method",
        &[],
    );
}
