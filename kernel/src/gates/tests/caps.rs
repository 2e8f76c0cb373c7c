//! The capability gate: grant lookup, expiry, cap types, and the constraints of every
//! built-in cap type but `http.out` (see `http.rs`).

use air_fmt::load::AirSet;
use serde_json::{json, Value};

use super::{allowed, cap, denied, http_params, name, world, world_with, H};
use crate::gates::{check_cap, effect_by_kind, grant_for_slot, secret_aliases};

fn http_grant() -> Value {
    json!({"name": "http_grant", "cap": "sys/http.out@1",
           "params": {"hosts": ["api.example.com"], "verbs": ["GET"]}})
}

// ---- grant_for_slot ----

#[test]
fn slots_resolve_through_module_bindings() {
    let set = world_with(
        json!([{"name": "blob_grant", "cap": "sys/blob@1", "params": {}},
               {"name": "timer_grant", "cap": "sys/timer@1", "params": {}}]),
        json!({
            "demo/Worker@1": {"slots": {"blob": "blob_grant", "timer": "timer_grant"}},
            "demo/Single@1": {"slots": {"t": "timer_grant"}},
            "demo/WithDefault@1": {"slots": {"default": "blob_grant", "other": "timer_grant"}},
        }),
        None,
    );
    let worker = name("demo/Worker@1");
    assert_eq!(
        grant_for_slot(&set, &worker, Some("blob")),
        Ok("blob_grant".into())
    );
    assert_eq!(
        grant_for_slot(&set, &worker, Some("timer")),
        Ok("timer_grant".into())
    );
    // An unknown slot: the error lists the slots and shows the binding to add.
    let e = grant_for_slot(&set, &worker, Some("http")).unwrap_err();
    assert!(
        e.contains("\"http\"")
            && e.contains("[\"blob\", \"timer\"]")
            && e.contains("module_bindings"),
        "{e}"
    );
    // No slot named: several slots and no "default" is an error...
    let e = grant_for_slot(&set, &worker, None).unwrap_err();
    assert!(e.contains("cap_slot") && e.contains("\"default\""), "{e}");
    // ...one slot is used when it is the only one, "default" when there is one.
    assert_eq!(
        grant_for_slot(&set, &name("demo/Single@1"), None),
        Ok("timer_grant".into())
    );
    assert_eq!(
        grant_for_slot(&set, &name("demo/WithDefault@1"), None),
        Ok("blob_grant".into())
    );
    assert_eq!(
        grant_for_slot(&set, &name("demo/WithDefault@1"), Some("other")),
        Ok("timer_grant".into())
    );
    // A reducer without slots, and one that is not there at all.
    let e = grant_for_slot(&set, &name("demo/NoSlots@1"), None).unwrap_err();
    assert!(e.contains("no cap slots"), "{e}");
    let e = grant_for_slot(&set, &name("demo/Nobody@1"), Some("blob")).unwrap_err();
    assert!(
        e.contains("not bound") && e.contains("demo/Nobody@1"),
        "{e}"
    );
    // A declared slot that the manifest does not bind.
    let unbound = world(json!([]));
    let e = grant_for_slot(&unbound, &worker, Some("blob")).unwrap_err();
    assert!(e.contains("not bound"), "{e}");
    // No manifest at all.
    let e = grant_for_slot(&AirSet::default(), &worker, Some("blob")).unwrap_err();
    assert!(e.contains("no manifest"), "{e}");
}

// ---- grant lookup, expiry, cap type ----

#[test]
fn a_missing_grant_is_denied_with_the_grant_to_add() {
    let set = world(json!([http_grant()]));
    let v = cap(
        &set,
        "nope",
        "http.request",
        &http_params("GET", "https://api.example.com/"),
        0,
    );
    denied(
        &v,
        "grant_missing",
        &[
            "\"nope\"",
            "[\"http_grant\"]",
            "sys/http.out@1",
            "defaults.cap_grants",
        ],
    );
    assert_eq!(v.grant, None);
    assert_eq!(v.cap, None);
    let none = world(json!([]));
    let v = cap(
        &none,
        "g",
        "timer.set",
        &json!({"deliver_at_ns": 1, "key": null}),
        0,
    );
    denied(&v, "grant_missing", &["no grants", "sys/timer@1"]);
    let v = cap(
        &AirSet::default(),
        "g",
        "timer.set",
        &json!({"deliver_at_ns": 1, "key": null}),
        0,
    );
    denied(&v, "no_manifest", &["\"g\""]);
}

#[test]
fn expiry_is_checked_against_the_journal_time() {
    let set = world(json!([
        {"name": "t", "cap": "sys/timer@1", "params": {}, "expiry_ns": 1000},
        {"name": "big", "cap": "sys/timer@1", "params": {}, "expiry_ns": "18446744073709551615"},
    ]));
    let p = json!({"deliver_at_ns": 5, "key": null});
    allowed(&cap(&set, "t", "timer.set", &p, 0));
    allowed(&cap(&set, "t", "timer.set", &p, 999));
    let v = cap(&set, "t", "timer.set", &p, 1000);
    denied(&v, "grant_expired", &["grant t", "1000", "expiry_ns"]);
    assert_eq!(v.grant.as_deref(), Some("t"));
    assert_eq!(v.cap, Some(name("sys/timer@1")));
    denied(
        &cap(&set, "t", "timer.set", &p, u64::MAX),
        "grant_expired",
        &["18446744073709551615"],
    );
    allowed(&cap(&set, "big", "timer.set", &p, u64::MAX - 1));
}

#[test]
fn a_grant_of_another_cap_type_is_denied() {
    let set = world(json!([{"name": "blob_grant", "cap": "sys/blob@1", "params": {}}]));
    let v = cap(
        &set,
        "blob_grant",
        "http.request",
        &http_params("GET", "https://api.example.com/"),
        0,
    );
    denied(
        &v,
        "cap_type_mismatch",
        &[
            "grant blob_grant",
            "\"blob\"",
            "\"http.out\"",
            "sys/blob@1",
            "http.request",
        ],
    );
}

#[test]
fn cap_types_without_a_checker_are_denied() {
    let set = world(json!([{"name": "gov", "cap": "demo/gov@1", "params": {}}]));
    let v = cap(
        &set,
        "gov",
        "governance.apply",
        &json!({"proposal_id": 1}),
        0,
    );
    denied(
        &v,
        "unknown_cap_type",
        &["grant gov", "\"governance\"", "demo/gov@1", "http.out"],
    );
}

#[test]
fn malformed_grant_params_and_intent_params_are_denied() {
    let set = world(json!([
        {"name": "bad", "cap": "sys/blob@1", "params": {"namespaces": 7}},
        {"name": "b", "cap": "sys/blob@1", "params": {"namespaces": ["a"]}},
    ]));
    let p = json!({"namespace": "a", "blob_ref": H});
    denied(
        &cap(&set, "bad", "blob.put", &p, 0),
        "bad_grant_params",
        &["grant bad", "sys/blob@1"],
    );
    denied(
        &cap(&set, "b", "blob.put", &json!({"namespace": 1}), 0),
        "bad_params",
        &["sys/BlobPutParams@1"],
    );
    denied(
        &cap(&set, "b", "blob.put", &json!("x"), 0),
        "bad_params",
        &[],
    );
}

#[test]
fn sugar_and_tagged_grant_params_mean_the_same() {
    // The corpus authors grants in the tagged lens, with its own cap schema (`methods`).
    let set = world(json!([
        {"name": "cap_http_fetch", "cap": "demo/http_fetch_cap@1",
         "params": {"record": {"hosts": {"set": [{"text": "example.com"}]},
                               "methods": {"set": [{"text": "GET"}]}}}},
    ]));
    allowed(&cap(
        &set,
        "cap_http_fetch",
        "http.request",
        &http_params("GET", "https://example.com/x"),
        0,
    ));
    denied(
        &cap(
            &set,
            "cap_http_fetch",
            "http.request",
            &http_params("POST", "https://example.com/x"),
            0,
        ),
        "verb_not_allowed",
        &["add \"POST\" to methods of grant cap_http_fetch"],
    );
    // Intent params may come tagged too: they are canonicalized against the schema.
    let tagged = json!({"record": {"method": {"text": "GET"}, "url": {"text": "https://example.com/"},
                                   "headers": {"map": []}, "body_ref": {"none": {}}}});
    allowed(&cap(&set, "cap_http_fetch", "http.request", &tagged, 0));
}

#[test]
fn an_http_cap_without_hosts_allows_no_host() {
    let set = world(json!([{"name": "open", "cap": "demo/no_hosts@1", "params": {}}]));
    denied(
        &cap(
            &set,
            "open",
            "http.request",
            &http_params("GET", "https://api.example.com/"),
            0,
        ),
        "host_not_allowed",
        &[
            "lists no hosts",
            "add \"api.example.com\" to hosts of grant open",
        ],
    );
}

// ---- llm.basic ----

fn llm_params(
    provider: &str,
    model: &str,
    temperature: &str,
    max_tokens: u64,
    tools: Value,
) -> Value {
    json!({"provider": provider, "model": model, "temperature": temperature, "max_tokens": max_tokens,
           "input_ref": H, "tools": tools, "api_key": null})
}

fn llm_world() -> AirSet {
    world(json!([
        {"name": "llm", "cap": "sys/llm.basic@1", "params": {
            "providers": ["openai"], "models": ["gpt-4o-mini", "gpt-4o"], "max_tokens_max": 1024,
            "temperature_max": "0.70", "tools_allow": ["search", "calc"]}},
        {"name": "open_llm", "cap": "sys/llm.basic@1", "params": {}},
        {"name": "no_tools", "cap": "sys/llm.basic@1", "params": {"tools_allow": []}},
        {"name": "corpus_llm", "cap": "demo/llm_cap@1",
         "params": {"record": {"models": {"set": [{"text": "mock-summarizer"}]}, "max_tokens": {"nat": 2048}}}},
    ]))
}

#[test]
fn llm_grants_allow_what_is_within_them() {
    let set = llm_world();
    let ok = llm_params(
        "openai",
        "gpt-4o-mini",
        "0.7",
        1024,
        json!(["calc", "search"]),
    );
    allowed(&cap(&set, "llm", "llm.generate", &ok, 0));
    allowed(&cap(
        &set,
        "llm",
        "llm.generate",
        &llm_params("openai", "gpt-4o", "0", 1, Value::Null),
        0,
    ));
    allowed(&cap(
        &set,
        "llm",
        "llm.generate",
        &llm_params("openai", "gpt-4o", "0.69999", 1, json!([])),
        0,
    ));
    // Absent constraints do not constrain.
    let wild = llm_params("anyone", "any-model", "2.5", 1_000_000, json!(["rm-rf"]));
    allowed(&cap(&set, "open_llm", "llm.generate", &wild, 0));
}

#[test]
fn llm_denials_name_the_constraint_and_the_value() {
    let set = llm_world();
    let p = |provider, model, t, n, tools| llm_params(provider, model, t, n, tools);
    denied(
        &cap(
            &set,
            "llm",
            "llm.generate",
            &p("anthropic", "gpt-4o", "0.1", 10, Value::Null),
            0,
        ),
        "provider_not_allowed",
        &[
            "provider \"anthropic\"",
            "add \"anthropic\" to providers of grant llm",
        ],
    );
    denied(
        &cap(
            &set,
            "llm",
            "llm.generate",
            &p("openai", "o1", "0.1", 10, Value::Null),
            0,
        ),
        "model_not_allowed",
        &[
            "model \"o1\"",
            "[\"gpt-4o\", \"gpt-4o-mini\"]",
            "add \"o1\" to models of grant llm",
        ],
    );
    denied(
        &cap(
            &set,
            "llm",
            "llm.generate",
            &p("openai", "gpt-4o", "0.1", 1025, Value::Null),
            0,
        ),
        "max_tokens_exceeded",
        &[
            "max_tokens 1025",
            "max_tokens_max is 1024",
            "raise max_tokens_max of grant llm to 1025",
        ],
    );
    // Decimals compare exactly: no float rounding lets 0.70000000000000000000000000000001 pass.
    denied(
        &cap(
            &set,
            "llm",
            "llm.generate",
            &p(
                "openai",
                "gpt-4o",
                "0.70000000000000000000000000000001",
                1,
                Value::Null,
            ),
            0,
        ),
        "temperature_exceeded",
        &[
            "temperature \"0.70000000000000000000000000000001\"",
            "temperature_max is \"0.7\"",
            "raise temperature_max of grant llm",
        ],
    );
    denied(
        &cap(
            &set,
            "llm",
            "llm.generate",
            &p("openai", "gpt-4o", "1e0", 1, Value::Null),
            0,
        ),
        "temperature_exceeded",
        &["\"1\""],
    );
    denied(
        &cap(
            &set,
            "llm",
            "llm.generate",
            &p("openai", "gpt-4o", "0.7", 1, json!(["calc", "shell"])),
            0,
        ),
        "tool_not_allowed",
        &[
            "tool \"shell\"",
            "add \"shell\" to tools_allow of grant llm",
        ],
    );
    // An empty tools_allow allows no tool, but a request without tools.
    denied(
        &cap(
            &set,
            "no_tools",
            "llm.generate",
            &p("x", "y", "0", 1, json!(["calc"])),
            0,
        ),
        "tool_not_allowed",
        &["its tools_allow are []"],
    );
    allowed(&cap(
        &set,
        "no_tools",
        "llm.generate",
        &p("x", "y", "0", 1, Value::Null),
        0,
    ));
}

#[test]
fn llm_grants_of_the_corpus_shape_read_max_tokens_as_the_ceiling() {
    let set = llm_world();
    let p = |model, n| llm_params("mock", model, "0", n, Value::Null);
    allowed(&cap(
        &set,
        "corpus_llm",
        "llm.generate",
        &p("mock-summarizer", 2048),
        0,
    ));
    denied(
        &cap(
            &set,
            "corpus_llm",
            "llm.generate",
            &p("mock-summarizer", 2049),
            0,
        ),
        "max_tokens_exceeded",
        &["max_tokens is 2048"],
    );
    denied(
        &cap(&set, "corpus_llm", "llm.generate", &p("gpt", 1), 0),
        "model_not_allowed",
        &[],
    );
}

// ---- blob, timer ----

#[test]
fn blob_grants_constrain_namespaces() {
    let set = world(json!([
        {"name": "b", "cap": "sys/blob@1", "params": {"namespaces": ["notes", "cache"]}},
        {"name": "any", "cap": "sys/blob@1", "params": {}},
    ]));
    let put = |ns: &str| json!({"namespace": ns, "blob_ref": H});
    let get = |ns: &str| json!({"namespace": ns, "key": "k"});
    allowed(&cap(&set, "b", "blob.put", &put("notes"), 0));
    allowed(&cap(&set, "b", "blob.get", &get("cache"), 0));
    denied(
        &cap(&set, "b", "blob.put", &put("secrets"), 0),
        "namespace_not_allowed",
        &[
            "namespace \"secrets\"",
            "[\"cache\", \"notes\"]",
            "add \"secrets\" to namespaces of grant b",
        ],
    );
    denied(
        &cap(&set, "b", "blob.get", &get("Notes"), 0),
        "namespace_not_allowed",
        &[],
    );
    allowed(&cap(&set, "any", "blob.put", &put("whatever"), 0));
}

#[test]
fn timer_grants_have_no_constraints() {
    let set = world(json!([{"name": "t", "cap": "sys/timer@1", "params": {"record": {}}}]));
    allowed(&cap(
        &set,
        "t",
        "timer.set",
        &json!({"deliver_at_ns": "18446744073709551615", "key": "k"}),
        7,
    ));
}

// ---- query ----

#[test]
fn query_scopes_are_reducer_name_prefixes() {
    let set = world(json!([
        {"name": "all", "cap": "sys/query@1", "params": {"scope": "*"}},
        {"name": "none_given", "cap": "sys/query@1", "params": {}},
        {"name": "empty", "cap": "sys/query@1", "params": {"scope": ""}},
        {"name": "demo", "cap": "sys/query@1", "params": {"scope": "demo/"}},
        {"name": "demo_star", "cap": "sys/query@1", "params": {"scope": "demo/*"}},
    ]));
    let state = |r: &str| json!({"reducer": r, "key": null, "consistency": "head"});
    let manifest = json!({"consistency": "head"});
    for g in ["all", "none_given", "empty"] {
        allowed(&cap(&set, g, "introspect.manifest", &manifest, 0));
        allowed(&cap(&set, g, "introspect.journal_head", &json!({}), 0));
        allowed(&cap(
            &set,
            g,
            "introspect.reducer_state",
            &state("other/X@1"),
            0,
        ));
    }
    for g in ["demo", "demo_star"] {
        allowed(&cap(
            &set,
            g,
            "introspect.reducer_state",
            &state("demo/Counter@1"),
            0,
        ));
        allowed(&cap(
            &set,
            g,
            "introspect.list_cells",
            &json!({"reducer": "demo/Cells@1"}),
            0,
        ));
        denied(
            &cap(&set, g, "introspect.reducer_state", &state("other/X@1"), 0),
            "scope_not_allowed",
            &["reducer \"other/X@1\"", "\"demo/\"", "widen scope of grant"],
        );
        denied(
            &cap(&set, g, "introspect.manifest", &manifest, 0),
            "scope_not_allowed",
            &["introspect.manifest", "set scope of grant", "to \"*\""],
        );
    }
}

// ---- secret ----

#[test]
fn secret_grants_constrain_aliases() {
    let set = world(json!([
        {"name": "vault", "cap": "sys/secret@1", "params": {"aliases": ["llm/api"]}},
        {"name": "any", "cap": "sys/secret@1", "params": {}},
    ]));
    let put = |alias: &str| json!({"alias": alias, "binding_id": "env:KEY", "value_ref": H, "expected_digest": H});
    allowed(&cap(&set, "vault", "vault.put", &put("llm/api"), 0));
    denied(
        &cap(&set, "vault", "vault.put", &put("prod/db"), 0),
        "alias_not_allowed",
        &[
            "secret alias \"prod/db\"",
            "add \"prod/db\" to aliases of grant vault",
        ],
    );
    let rotate =
        json!({"alias": "prod/db", "version": 2, "binding_id": "env:KEY", "expected_digest": H});
    denied(
        &cap(&set, "vault", "vault.rotate", &rotate, 0),
        "alias_not_allowed",
        &[],
    );
    allowed(&cap(&set, "any", "vault.rotate", &rotate, 0));
}

#[test]
fn secret_aliases_are_found_anywhere_in_params() {
    let p = json!({"alias": "top", "api_key": {"$tag": "secret", "$value": {"alias": "llm/api", "version": 1}},
                   "list": [{"$tag": "secret", "$value": {"alias": "deep", "version": 1}},
                            {"$tag": "literal", "$value": "not a secret"}]});
    assert_eq!(secret_aliases(&p), vec!["deep", "llm/api", "top"]);
    assert!(secret_aliases(&json!({"api_key": {"$tag": "literal", "$value": "x"}})).is_empty());
}

#[test]
fn effect_lookup_prefers_the_worlds_own_defs() {
    let set = world(json!([]));
    let Some(e) = effect_by_kind(&set, "http.request") else {
        panic!("catalog effect")
    };
    assert_eq!(e.cap_type, "http.out");
    assert!(effect_by_kind(&set, "no.such").is_none());
    // check_cap works on any DefEffect, also one a test makes up.
    let mut fake = e.clone();
    fake.cap_type = "timer".into();
    let t = world(json!([{"name": "t", "cap": "sys/timer@1", "params": {}}]));
    let v = check_cap(&t, "t", &fake, &http_params("GET", "ftp://x"), 0);
    assert!(v.allowed, "{v:?}");
    let j = v.to_json();
    assert_eq!(j["grant"], "t");
    assert_eq!(j["cap"], "sys/timer@1");
    assert_eq!(j["allowed"], true);
}
