//! One-line summaries of journal records for the why graph: what a reader needs to tell
//! records apart at a glance (schema and value, reducer and state, intent and verdict,
//! receipt status, plan run, who did it), never the whole body.

use aos_store::journal::Record;
use serde_json::Value;

use super::index::number;
use crate::records::*;

const VALUE_PREVIEW: usize = 60;

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("?")
}

/// A JSON value cut to `max` characters.
fn preview(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// A hash shortened to its first 12 hex digits.
fn short_hash(v: Option<&Value>) -> String {
    let s = v.and_then(Value::as_str).unwrap_or("?");
    let hex = s.strip_prefix("blake3:").unwrap_or(s);
    hex.chars().take(12).collect()
}

fn with_key(name: &str, body: &Value) -> String {
    match body.get("key").filter(|k| !k.is_null()) {
        Some(Value::String(k)) => format!("{name}/{k}"),
        Some(k) => format!("{name}/{k}"),
        None => name.to_string(),
    }
}

/// `who via how` of a root's origin, if it has one.
pub fn origin(body: &Value) -> Option<String> {
    let o = body.get("origin")?.as_object()?;
    let who = o.get("who").and_then(Value::as_str)?;
    let via = o.get("via").and_then(Value::as_str).unwrap_or("?");
    Some(format!("{who} via {via}"))
}

/// The one-line summary of a record.
pub fn summary(rec: &Record) -> String {
    let b = &rec.body;
    let mut s = match rec.kind.as_str() {
        DOMAIN_EVENT => {
            let mut s = format!(
                "{} {}",
                text(b, "schema"),
                preview(b.get("value").unwrap_or(&Value::Null), VALUE_PREVIEW)
            );
            if let Some(k) = b.get("key").filter(|k| !k.is_null()) {
                s.push_str(&format!(" key {k}"));
            }
            if let Some(by) = b.get("emitted_by") {
                s.push_str(&format!(" emitted by {}", preview(by, 40)));
            }
            if let Some(to) = b.get("delivered_to") {
                s.push_str(&format!(" delivered to {}", preview(to, 40)));
            }
            s
        }
        REDUCER_STEPPED => format!(
            "{} state {}",
            with_key(text(b, "reducer"), b),
            short_hash(b.get("state"))
        ),
        MODULE_ERROR | ROUTE_ERROR => format!(
            "{} {}",
            with_key(b.get("reducer").and_then(Value::as_str).unwrap_or(""), b),
            preview(b.get("message").or(b.get("reason")).unwrap_or(b), 80)
        ),
        EFFECT_INTENT => format!(
            "{} intent {} {}",
            text(b, "kind"),
            short_hash(b.get("intent_hash")),
            preview(b.get("params").unwrap_or(&Value::Null), VALUE_PREVIEW)
        ),
        POLICY_DECISION => {
            let allowed = b.get("allowed").and_then(Value::as_bool) == Some(true);
            let reason = b
                .get("policy")
                .filter(|p| !allowed || p.is_object())
                .and_then(|p| p.get("reason"))
                .or_else(|| b.get("cap").and_then(|c| c.get("reason")))
                .and_then(Value::as_str)
                .unwrap_or("");
            format!(
                "{} intent {}: {}",
                if allowed { "allowed" } else { "denied" },
                short_hash(b.get("intent_hash")),
                reason
            )
        }
        EFFECT_RECEIPT => {
            let r = b.get("receipt").unwrap_or(b);
            format!(
                "{} {} by {} for intent {}",
                text(r, "effect_kind"),
                text(r, "status"),
                text(r, "adapter_id"),
                short_hash(r.get("intent_hash"))
            )
        }
        PLAN_START | PLAN_STARTED | PLAN_ENDED => {
            let mut s = text(b, "plan").to_string();
            if let Some(run) = b.get("run").and_then(number) {
                s.push_str(&format!(" run {run}"));
            }
            if let Some(st) = b.get("status").and_then(Value::as_str) {
                s.push_str(&format!(" {st}"));
            }
            s
        }
        SNAPSHOT => format!("snapshot {}", short_hash(b.get("snapshot"))),
        WORLD_CREATED => format!("manifest {}", short_hash(b.get("manifest"))),
        "proposed" | "shadow_report" | "approved" | "rejected" | "applied" => {
            let mut s = match b.get("id").and_then(number) {
                Some(id) => format!("proposal {id}"),
                None => "proposal ?".to_string(),
            };
            for f in ["patch_hash", "manifest", "manifest_hash"] {
                if b.get(f).is_some() {
                    s.push_str(&format!(" {f} {}", short_hash(b.get(f))));
                }
            }
            s
        }
        _ => preview(b, VALUE_PREVIEW),
    };
    if rec.cause.is_empty() {
        if let Some(o) = origin(b) {
            s.push_str(&format!(" [by {o}]"));
        }
    }
    s
}
