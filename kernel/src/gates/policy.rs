//! The policy gate: the manifest's `defaults.policy` (a `defpolicy`) decides each
//! intent by its rules, in order; a rule matches when every field its `when` names
//! (`effect_kind`, `cap_name` = the grant, `origin_kind`, `origin_name`) equals the
//! intent's, and an empty `when` matches everything. The first match decides. No
//! matching rule, no policy named, or a policy that is not defined: deny, with the
//! rule that would allow the intent.

use air_fmt::assemble::resolve;
use air_fmt::load::AirSet;
use air_fmt::model::{DefPolicy, Match};
use air_fmt::{Def, DefKind};
use serde_json::{json, Map, Value};

use super::read::q;
use super::{Origin, PolicyVerdict};

/// The policy check of one intent (see the module docs).
pub fn check_policy(
    set: &AirSet,
    effect_kind: &str,
    grant: &str,
    origin: &Origin,
) -> PolicyVerdict {
    let intent = format!(
        "{effect_kind} under grant {} from {} {}",
        q(grant),
        origin.kind.as_str(),
        origin.name
    );
    let allow_rule = suggested_rule(effect_kind, grant, origin);
    let Some(manifest) = &set.manifest else {
        return PolicyVerdict {
            allowed: false,
            policy: None,
            rule: None,
            code: "no_manifest",
            reason: format!("there is no manifest, so no policy allows {intent}"),
        };
    };
    let Some(name) = &manifest.item.defaults.policy else {
        return PolicyVerdict {
            allowed: false,
            policy: None,
            rule: None,
            code: "no_policy",
            reason: format!(
                "the manifest names no policy (defaults.policy), and without one every effect is denied, so {intent} is; to allow it, add a defpolicy with the rule {allow_rule}, list it in the manifest's policies and name it in defaults.policy"
            ),
        };
    };
    let Some(Def::Policy(policy)) = resolve(set, DefKind::Policy, name) else {
        return PolicyVerdict {
            allowed: false,
            policy: Some(name.clone()),
            rule: None,
            code: "unknown_policy",
            reason: format!(
                "the manifest's defaults.policy names {name}, which is not defined, so {intent} is denied; define it (for example with the rule {allow_rule})"
            ),
        };
    };
    decide(policy, effect_kind, grant, origin, &intent, &allow_rule)
}

fn decide(
    policy: &DefPolicy,
    effect_kind: &str,
    grant: &str,
    origin: &Origin,
    intent: &str,
    allow_rule: &str,
) -> PolicyVerdict {
    let name = &policy.name;
    for (i, rule) in policy.rules.iter().enumerate() {
        if !matches(&rule.when, effect_kind, grant, origin) {
            continue;
        }
        let when = when_json(&rule.when);
        return if rule.allow {
            PolicyVerdict {
                allowed: true,
                policy: Some(name.clone()),
                rule: Some(i),
                code: "allowed_by_rule",
                reason: format!("rule {i} of policy {name} (when {when}) allows {intent}"),
            }
        } else {
            PolicyVerdict {
                allowed: false,
                policy: Some(name.clone()),
                rule: Some(i),
                code: "denied_by_rule",
                reason: format!(
                    "rule {i} of policy {name} (when {when}) denies {intent}; to allow it, add the rule {allow_rule} before rule {i} of policy {name} (or narrow rule {i})"
                ),
            }
        };
    }
    let count = match policy.rules.len() {
        0 => "it has no rules".to_string(),
        1 => "its one rule does not match".to_string(),
        n => format!("none of its {n} rules matches"),
    };
    PolicyVerdict {
        allowed: false,
        policy: Some(name.clone()),
        rule: None,
        code: "no_rule_matched",
        reason: format!(
            "no rule of policy {name} matches {intent} ({count}), and no match means deny; to allow it, add the rule {allow_rule} to policy {name}"
        ),
    }
}

fn matches(when: &Match, effect_kind: &str, grant: &str, origin: &Origin) -> bool {
    when.effect_kind.as_deref().is_none_or(|k| k == effect_kind)
        && when.cap_name.as_deref().is_none_or(|c| c == grant)
        && when
            .origin_kind
            .as_deref()
            .is_none_or(|k| k == origin.kind.as_str())
        && when.origin_name.as_ref().is_none_or(|n| n == origin.name)
}

fn when_json(when: &Match) -> Value {
    let mut w = Map::new();
    if let Some(v) = &when.effect_kind {
        w.insert("effect_kind".into(), json!(v));
    }
    if let Some(v) = &when.cap_name {
        w.insert("cap_name".into(), json!(v));
    }
    if let Some(v) = &when.origin_kind {
        w.insert("origin_kind".into(), json!(v));
    }
    if let Some(v) = &when.origin_name {
        w.insert("origin_name".into(), json!(v.as_str()));
    }
    Value::Object(w)
}

/// The narrowest rule that allows exactly this intent's kind, grant and origin.
fn suggested_rule(effect_kind: &str, grant: &str, origin: &Origin) -> String {
    json!({
        "when": {
            "effect_kind": effect_kind,
            "cap_name": grant,
            "origin_kind": origin.kind.as_str(),
            "origin_name": origin.name.as_str(),
        },
        "decision": "allow",
    })
    .to_string()
}
