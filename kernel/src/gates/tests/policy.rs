//! The policy gate: first match, every match field, no rule, no policy.

use air_fmt::load::{load, AirSet, Source};
use serde_json::{json, Value};

use super::{name, world, world_with};
use crate::gates::{check_policy, Origin, OriginKind, PolicyVerdict};

fn policy(rules: Value) -> AirSet {
    world_with(json!([]), json!({}), Some(rules))
}

fn check(
    set: &AirSet,
    kind: &str,
    grant: &str,
    origin_kind: OriginKind,
    origin: &str,
) -> PolicyVerdict {
    let n = name(origin);
    let o = Origin {
        kind: origin_kind,
        name: &n,
    };
    let v = check_policy(set, kind, grant, &o);
    assert_eq!(v, check_policy(set, kind, grant, &o), "deterministic");
    v
}

#[test]
fn the_first_matching_rule_decides() {
    let deny_first = policy(json!([
        {"when": {"effect_kind": "http.request", "cap_name": "http_grant"}, "decision": "deny"},
        {"when": {"effect_kind": "http.request"}, "decision": "allow"},
        {"when": {}, "decision": "deny"},
    ]));
    let v = check(
        &deny_first,
        "http.request",
        "http_grant",
        OriginKind::Plan,
        "demo/fetch@1",
    );
    assert!(!v.allowed);
    assert_eq!((v.code, v.rule), ("denied_by_rule", Some(0)));
    assert_eq!(v.policy, Some(name("demo/policy@1")));
    for needle in [
        "rule 0 of policy demo/policy@1",
        "{\"cap_name\":\"http_grant\",\"effect_kind\":\"http.request\"}",
        "add the rule",
        "\"decision\":\"allow\"",
        "\"origin_name\":\"demo/fetch@1\"",
        "before rule 0",
    ] {
        assert!(v.reason.contains(needle), "{:?} lacks {needle:?}", v.reason);
    }
    // Another grant falls through to rule 1.
    let v = check(
        &deny_first,
        "http.request",
        "other",
        OriginKind::Plan,
        "demo/fetch@1",
    );
    assert!(v.allowed, "{v:?}");
    assert_eq!((v.code, v.rule), ("allowed_by_rule", Some(1)));
    assert!(
        v.reason.contains("rule 1 of policy demo/policy@1"),
        "{}",
        v.reason
    );
    // Everything else hits the catch-all deny.
    let v = check(
        &deny_first,
        "blob.put",
        "b",
        OriginKind::Reducer,
        "demo/Worker@1",
    );
    assert_eq!((v.allowed, v.rule), (false, Some(2)));

    // The same rules in the other order decide the other way.
    let allow_first = policy(json!([
        {"when": {"effect_kind": "http.request"}, "decision": "allow"},
        {"when": {"effect_kind": "http.request", "cap_name": "http_grant"}, "decision": "deny"},
    ]));
    let v = check(
        &allow_first,
        "http.request",
        "http_grant",
        OriginKind::Plan,
        "demo/fetch@1",
    );
    assert_eq!((v.allowed, v.rule), (true, Some(0)));
}

#[test]
fn origin_kind_and_name_are_matched() {
    let set = policy(json!([
        {"when": {"effect_kind": "http.request", "origin_kind": "plan", "origin_name": "demo/fetch@1"}, "decision": "allow"},
        {"when": {"effect_kind": "timer.set", "origin_kind": "reducer"}, "decision": "allow"},
        {"when": {"origin_name": "demo/Worker@1"}, "decision": "allow"},
    ]));
    let ok = |v: PolicyVerdict, rule| {
        assert!(v.allowed, "{v:?}");
        assert_eq!(v.rule, Some(rule));
    };
    ok(
        check(&set, "http.request", "g", OriginKind::Plan, "demo/fetch@1"),
        0,
    );
    ok(
        check(&set, "timer.set", "g", OriginKind::Reducer, "demo/Any@1"),
        1,
    );
    ok(
        check(&set, "blob.put", "g", OriginKind::Reducer, "demo/Worker@1"),
        2,
    );
    // A plan of another name, a reducer of the plan's name, a plan setting a timer.
    for (kind, ok_kind, origin) in [
        ("http.request", OriginKind::Plan, "demo/other@1"),
        ("http.request", OriginKind::Reducer, "demo/fetch@1"),
        ("timer.set", OriginKind::Plan, "demo/fetch@1"),
    ] {
        let v = check(&set, kind, "g", ok_kind, origin);
        assert!(!v.allowed, "{kind} from {origin}: {v:?}");
        assert_eq!((v.code, v.rule), ("no_rule_matched", None));
        assert!(
            v.reason.contains("none of its 3 rules matches"),
            "{}",
            v.reason
        );
        assert!(
            v.reason
                .contains(&format!("\"origin_kind\":\"{}\"", ok_kind.as_str())),
            "{}",
            v.reason
        );
        assert!(
            v.reason.contains(&format!("\"effect_kind\":\"{kind}\"")),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("to policy demo/policy@1"), "{}", v.reason);
    }
    // An empty `when` matches everything.
    let open = policy(json!([{"when": {}, "decision": "allow"}]));
    let v = check(&open, "llm.generate", "x", OriginKind::Plan, "demo/p@1");
    assert_eq!((v.allowed, v.rule), (true, Some(0)));
}

#[test]
fn no_rules_no_policy_and_an_undefined_policy_deny() {
    let empty = policy(json!([]));
    let v = check(
        &empty,
        "timer.set",
        "t",
        OriginKind::Reducer,
        "demo/Worker@1",
    );
    assert_eq!(
        (v.allowed, v.code, v.rule),
        (false, "no_rule_matched", None)
    );
    assert!(v.reason.contains("it has no rules"), "{}", v.reason);

    let none = world(json!([]));
    let v = check(
        &none,
        "timer.set",
        "t",
        OriginKind::Reducer,
        "demo/Worker@1",
    );
    assert_eq!(
        (v.allowed, v.code, v.policy, v.rule),
        (false, "no_policy", None, None)
    );
    for needle in [
        "defaults.policy",
        "every effect is denied",
        "\"cap_name\":\"t\"",
        "\"origin_name\":\"demo/Worker@1\"",
    ] {
        assert!(v.reason.contains(needle), "{:?} lacks {needle:?}", v.reason);
    }

    let manifest =
        json!({"$kind": "manifest", "air_version": "1", "defaults": {"policy": "demo/missing@1"}});
    let (set, diags) = load(&[Source {
        name: "m.air.json".into(),
        bytes: manifest.to_string().into_bytes(),
    }]);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let v = check(&set, "timer.set", "t", OriginKind::Reducer, "demo/Worker@1");
    assert_eq!((v.allowed, v.code), (false, "unknown_policy"));
    assert_eq!(v.policy, Some(name("demo/missing@1")));
    assert!(
        v.reason.contains("demo/missing@1") && v.reason.contains("not defined"),
        "{}",
        v.reason
    );

    let v = check(
        &AirSet::default(),
        "timer.set",
        "t",
        OriginKind::Reducer,
        "demo/Worker@1",
    );
    assert_eq!((v.allowed, v.code), (false, "no_manifest"));
}

#[test]
fn verdicts_serialize_for_the_journal() {
    let set = policy(json!([{"when": {"cap_name": "g"}, "decision": "allow"}]));
    let v = check(&set, "blob.put", "g", OriginKind::Reducer, "demo/Worker@1");
    let j = v.to_json();
    assert_eq!(j["allowed"], true);
    assert_eq!(j["policy"], "demo/policy@1");
    assert_eq!(j["rule"], 0);
    assert_eq!(j["code"], "allowed_by_rule");
    assert_eq!(OriginKind::parse("plan"), Some(OriginKind::Plan));
    assert_eq!(OriginKind::parse("reducer"), Some(OriginKind::Reducer));
    assert_eq!(OriginKind::parse("Plan"), None);
}
