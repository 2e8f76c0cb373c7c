//! `timer.set`: the kernel records the due time (`deliver_at_ns`) with the intent and
//! runs this adapter only once that time has come; the receipt says when it fired
//! (`{delivered_at_ns: now, key}`).

use serde_json::{json, Value};

use crate::adapter::{now_ns, run_frame, Adapter, Done, Outcome, Request};
use crate::params;

/// The `timer.set` adapter.
#[derive(Debug, Clone)]
pub struct TimerAdapter {
    id: String,
}

impl Default for TimerAdapter {
    fn default() -> Self {
        TimerAdapter::new()
    }
}

impl TimerAdapter {
    /// The adapter id is `timer`.
    pub fn new() -> TimerAdapter {
        TimerAdapter { id: "timer".into() }
    }
}

const KINDS: &[&str] = &["timer.set"];

impl Adapter for TimerAdapter {
    fn id(&self) -> &str {
        &self.id
    }

    fn kinds(&self) -> &[&str] {
        KINDS
    }

    fn run(&self, req: &Request) -> Outcome {
        run_frame(self, req, |p, _| {
            // The due time is the kernel's to honour; read it only to insist it is there.
            params::nat(p, "deliver_at_ns").map_err(|message| {
                crate::adapter::AdapterError::Params {
                    kind: req.kind.into(),
                    message,
                }
            })?;
            let key = p.get("key").cloned().unwrap_or(Value::Null);
            Ok(Done::payload(json!({
                "delivered_at_ns": aos_store::canon::u64_value(now_ns()),
                "key": key,
            })))
        })
    }
}
