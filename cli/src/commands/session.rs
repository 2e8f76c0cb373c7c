//! Opening a world for stepping from the CLI: the kernel session with a progress bar
//! for long replays, store warnings shown, and record summaries shared by the commands
//! that print what happened.

use aos_kernel::records::*;
use aos_kernel::session::{BootOptions, Session};
use aos_store::world::Access;
use serde_json::Value;

use super::Ctx;
use crate::output::warn_all;

/// Open the world and bring its kernel up to date.
pub fn open(ctx: &Ctx, access: Access, opts: BootOptions) -> anyhow::Result<Session> {
    let root = ctx.world_root()?;
    let progress = ctx.progress();
    let mut s = Session::open(&root, access, opts, &mut |done, total| {
        progress.update("replaying", done, total)
    })?;
    progress.finish();
    warn_all(s.world.warnings());
    Ok(s)
}

/// Parse a `--key`/VALUE argument: JSON if it parses, else the text itself.
pub fn json_or_text(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// A one-line summary of a record for humans.
pub fn summary(kind: &str, body: &Value) -> String {
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string()
    };
    let short = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(|h| h.get(..19).unwrap_or(h).to_string())
            .unwrap_or_else(|| "null".into())
    };
    let key = body
        .get("key")
        .map(|k| format!(" [{k}]"))
        .unwrap_or_default();
    match kind {
        DOMAIN_EVENT => format!("{} {}{key}", s("schema"), compact(body.get("value"))),
        REDUCER_STEPPED => match body.get("state") {
            Some(Value::Null) | None => format!("{}{key} → no state (null)", s("reducer")),
            _ => format!("{}{key} → state {}", s("reducer"), short("state")),
        },
        MODULE_ERROR => format!(
            "{}{key} failed ({}): {}",
            s("reducer"),
            s("code"),
            s("message")
        ),
        ROUTE_ERROR => format!("{}: {}", s("reducer"), s("reason")),
        EFFECT_INTENT => format!(
            "{} {} (intent {})",
            s("kind"),
            compact(body.get("params")),
            short("intent_hash")
        ),
        CASCADE_STOPPED => s("reason"),
        POLICY_DECISION => {
            let allowed = body.get("allowed").and_then(Value::as_bool) == Some(true);
            let part = |k: &str| {
                body.get(k)
                    .and_then(|v| v.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            if allowed {
                format!("allowed (intent {})", short("intent_hash"))
            } else if body
                .get("cap")
                .and_then(|c| c.get("allowed"))
                .and_then(Value::as_bool)
                == Some(false)
            {
                format!("denied by capability: {}", part("cap"))
            } else {
                format!("denied by policy: {}", part("policy"))
            }
        }
        EFFECT_RECEIPT => {
            let r = body.get("receipt");
            let f = |k: &str| {
                r.and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string()
            };
            format!(
                "{} {} by {}",
                f("effect_kind"),
                f("status"),
                f("adapter_id")
            )
        }
        SNAPSHOT => format!("state {}", s("snapshot")),
        _ => compact(Some(body)),
    }
}

/// JSON on one line, cut at 120 characters.
pub fn compact(v: Option<&Value>) -> String {
    let text = v.map_or("null".into(), |v| v.to_string());
    if text.chars().count() > 120 {
        let cut: String = text.chars().take(119).collect();
        format!("{cut}…")
    } else {
        text
    }
}
