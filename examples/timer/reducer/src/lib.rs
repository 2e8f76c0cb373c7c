//! The timer reducer (`demo/TimerSM@1`): `Start{deliver_at_ns, key}` arms a `timer.set`
//! micro-effect through the cap slot `timer` and records the timer as pending; the
//! receipt comes back as the `Fired` arm (`sys/TimerFired@1`), and the reducer records
//! when the timer was delivered and under which key. A `Fired` that is not `ok`, or one
//! before any `Start`, changes nothing.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// The cap slot the manifest binds to a `sys/timer@1` grant.
pub const SLOT: &str = "timer";

/// `demo/TimerPc@1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Pc {
    Idle,
    Pending,
    Fired,
}

/// `demo/TimerState@1` (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(with = "aos_sdk::u64_lens")]
    pub deliver_at_ns: u64,
    #[serde(default, with = "opt_u64")]
    pub fired_at_ns: Option<u64>,
    #[serde(default)]
    pub key: Option<String>,
    pub pc: Pc,
}

/// `demo/TimerStart@1`: when to fire (absolute, journal clock) and a key to tag it with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Start {
    #[serde(with = "aos_sdk::u64_lens")]
    pub deliver_at_ns: u64,
    pub key: String,
}

/// The part of `sys/TimerSetReceipt@1` the reducer reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TimerReceipt {
    #[serde(with = "aos_sdk::u64_lens")]
    pub delivered_at_ns: u64,
    #[serde(default)]
    pub key: Option<String>,
}

/// The part of `sys/TimerFired@1` the reducer reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Fired {
    pub receipt: TimerReceipt,
    pub status: String,
}

/// `demo/TimerEvent@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Event {
    Start(Start),
    Fired(Fired),
}

pub fn step(state: Option<State>, event: Event, _ctx: &Ctx) -> Out<State> {
    match (state, event) {
        (_, Event::Start(s)) => {
            let mut out = Out::new(State {
                deliver_at_ns: s.deliver_at_ns,
                fired_at_ns: None,
                key: Some(s.key.clone()),
                pc: Pc::Pending,
            });
            out.timer_set(s.deliver_at_ns, Some(&s.key), Some(SLOT));
            out
        }
        (Some(st), Event::Fired(f)) if st.pc == Pc::Pending && f.status == "ok" => {
            Out::new(State {
                fired_at_ns: Some(f.receipt.delivered_at_ns),
                key: f.receipt.key.or(st.key),
                pc: Pc::Fired,
                ..st
            })
        }
        (Some(st), Event::Fired(_)) => Out::new(st),
        (None, Event::Fired(_)) => Out::delete(),
    }
}

/// Serde adapter for `Option<u64>` fields (AIR `option<nat>`): `null`, a number or a
/// decimal string in, the canonical form out.
mod opt_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => aos_sdk::u64_lens::serialize(n, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "aos_sdk::u64_lens")] u64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use aos_sdk::serde_json::{self, json, Value};

    fn run(input: Value) -> Value {
        let out = aos_sdk::run_json(input.to_string().as_bytes(), step);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn start_arms_a_timer_and_fired_records_it() {
        let ctx = json!({"now_ns": 1, "key": null, "cell_mode": false});
        let out = run(json!({"version": 1, "state": null, "ctx": ctx,
            "event": {"schema": "demo/TimerEvent@1",
                      "value": {"$tag": "Start", "$value": {"deliver_at_ns": "9007199254740993", "key": "k"}}}}));
        assert_eq!(out["state"]["pc"]["$tag"], "Pending");
        assert_eq!(out["effects"][0]["kind"], "timer.set");
        assert_eq!(out["effects"][0]["cap_slot"], "timer");
        assert_eq!(
            out["effects"][0]["params"]["deliver_at_ns"],
            "9007199254740993"
        );
        let out = run(json!({"version": 1, "state": out["state"], "ctx": ctx,
            "event": {"schema": "demo/TimerEvent@1",
                      "value": {"$tag": "Fired", "$value": {"status": "ok", "intent_hash": "x",
                        "receipt": {"delivered_at_ns": "9007199254740999", "key": "k"}}}}}));
        assert_eq!(out["state"]["pc"]["$tag"], "Fired");
        assert_eq!(out["state"]["fired_at_ns"], "9007199254740999");
        assert_eq!(out["state"]["key"], "k");
        assert!(out["effects"].as_array().unwrap().is_empty());
    }
}
