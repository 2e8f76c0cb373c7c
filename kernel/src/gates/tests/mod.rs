//! Tests of the gates: AIR sets built from JSON text with `air_fmt::load::load`.

mod caps;
mod http;
mod policy;
mod props;

use air_fmt::load::{load, AirSet, Source};
use air_fmt::Name;
use serde_json::{json, Value};

use super::{check_cap, effect_by_kind, CapVerdict};

pub const H: &str = "blake3:0000000000000000000000000000000000000000000000000000000000000001";

/// The defs every test world has: caps of the corpus' own shape, reducers with cap
/// slots, and a governance-typed cap (a cap type without a checker).
const DEFS: &str = r#"[
 {"$kind":"defcap","name":"demo/http_fetch_cap@1","cap_type":"http.out",
  "schema":{"record":{"hosts":{"set":{"text":{}}},"methods":{"set":{"text":{}}}}}},
 {"$kind":"defcap","name":"demo/no_hosts@1","cap_type":"http.out","schema":{"record":{}}},
 {"$kind":"defcap","name":"demo/llm_cap@1","cap_type":"llm.basic",
  "schema":{"record":{"models":{"set":{"text":{}}},"max_tokens":{"nat":{}}}}},
 {"$kind":"defcap","name":"demo/gov@1","cap_type":"governance","schema":{"record":{}}},
 {"$kind":"defmodule","name":"demo/Worker@1","module_kind":"reducer",
  "abi":{"reducer":{"state":"demo/S@1","event":"demo/E@1","effects_emitted":["blob.put","timer.set"],
   "cap_slots":{"blob":"blob","timer":"timer"}}}},
 {"$kind":"defmodule","name":"demo/Single@1","module_kind":"reducer",
  "abi":{"reducer":{"state":"demo/S@1","event":"demo/E@1","cap_slots":{"t":"timer"}}}},
 {"$kind":"defmodule","name":"demo/WithDefault@1","module_kind":"reducer",
  "abi":{"reducer":{"state":"demo/S@1","event":"demo/E@1","cap_slots":{"default":"blob","other":"timer"}}}},
 {"$kind":"defmodule","name":"demo/NoSlots@1","module_kind":"reducer",
  "abi":{"reducer":{"state":"demo/S@1","event":"demo/E@1"}}}
]"#;

/// A world with these grants, module bindings and (when given) a policy of these rules.
pub fn world_with(grants: Value, bindings: Value, rules: Option<Value>) -> AirSet {
    let mut manifest = json!({
        "$kind": "manifest",
        "air_version": "1",
        "defaults": {"cap_grants": grants},
        "module_bindings": bindings,
    });
    let mut sources = vec![Source {
        name: "defs.air.json".into(),
        bytes: DEFS.as_bytes().to_vec(),
    }];
    if let Some(rules) = rules {
        manifest["defaults"]["policy"] = json!("demo/policy@1");
        let policy = json!({"$kind": "defpolicy", "name": "demo/policy@1", "rules": rules});
        sources.push(Source {
            name: "policy.air.json".into(),
            bytes: policy.to_string().into_bytes(),
        });
    }
    sources.push(Source {
        name: "manifest.air.json".into(),
        bytes: manifest.to_string().into_bytes(),
    });
    let (set, diags) = load(&sources);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    set
}

pub fn world(grants: Value) -> AirSet {
    world_with(grants, json!({}), None)
}

pub fn name(s: &str) -> Name {
    match Name::parse(s) {
        Ok(n) => n,
        Err(e) => panic!("{s}: {e}"),
    }
}

/// `check_cap` for an effect kind of the catalog.
pub fn cap(set: &AirSet, grant: &str, kind: &str, params: &Value, now_ns: u64) -> CapVerdict {
    let Some(effect) = effect_by_kind(set, kind) else {
        panic!("no effect {kind}")
    };
    let v = check_cap(set, grant, effect, params, now_ns);
    // Deterministic: the same inputs give the same verdict.
    assert_eq!(v, check_cap(set, grant, effect, params, now_ns));
    v
}

pub fn http_params(method: &str, url: &str) -> Value {
    json!({"method": method, "url": url, "headers": {}, "body_ref": null})
}

/// Assert a denial with this code whose reason contains every needle.
#[track_caller]
pub fn denied(v: &CapVerdict, code: &str, needles: &[&str]) {
    assert!(!v.allowed, "expected a denial ({code}), got {v:?}");
    assert_eq!(v.code, code, "{}", v.reason);
    for n in needles {
        assert!(v.reason.contains(n), "reason {:?} lacks {n:?}", v.reason);
    }
}

#[track_caller]
pub fn allowed(v: &CapVerdict) {
    assert!(v.allowed, "expected allowed, got {}: {}", v.code, v.reason);
    assert_eq!(v.code, "allowed");
}
