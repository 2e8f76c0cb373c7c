//! The fetch reducer (`demo/FetchSM@1`): a `Command {url}` is turned into a
//! `demo/FetchRequest@1` domain event, which the manifest's trigger hands to the plan
//! `demo/fetch_plan@1`; the plan performs the GET and raises `demo/FetchResult@1`, which
//! comes back here as `Result` and is recorded: how many fetches were asked for and
//! finished, and the URL, HTTP status and body blob of the last one (`aos blob get`).
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// `demo/FetchState@1` (fields in canonical order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub fetched: u64,
    #[serde(default)]
    pub last_body_ref: Option<String>,
    #[serde(default)]
    pub last_status: Option<i64>,
    #[serde(default)]
    pub last_url: Option<String>,
    #[serde(default)]
    pub requested: u64,
}

/// `demo/FetchCommand@1` and `demo/FetchRequest@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    pub url: String,
}

/// `demo/FetchResult@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FetchResult {
    #[serde(default)]
    pub body_ref: Option<String>,
    pub status: i64,
    pub url: String,
}

/// `demo/FetchEvent@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Event {
    Command(Url),
    Result(FetchResult),
}

pub fn step(state: Option<State>, event: Event, _ctx: &Ctx) -> Out<State> {
    let mut s = state.unwrap_or_default();
    match event {
        Event::Command(c) => {
            s.requested = s.requested.saturating_add(1);
            let mut out = Out::new(s);
            out.emit("demo/FetchRequest@1", &Url { url: c.url });
            out
        }
        Event::Result(r) => {
            s.fetched = s.fetched.saturating_add(1);
            s.last_body_ref = r.body_ref;
            s.last_status = Some(r.status);
            s.last_url = Some(r.url);
            Out::new(s)
        }
    }
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_asks_the_plan_and_a_result_is_recorded() {
        let ctx = Ctx { now_ns: 0, key: None, cell_mode: false };
        let out = step(None, Event::Command(Url { url: "http://a/".into() }), &ctx);
        assert_eq!(out.state.as_ref().map(|s| s.requested), Some(1));
        assert_eq!(out.domain_events.len(), 1);
        let res = FetchResult { body_ref: Some("blake3:00".into()), status: 200, url: "http://a/".into() };
        let s = step(out.state, Event::Result(res), &ctx).state.unwrap();
        assert_eq!((s.fetched, s.last_status), (1, Some(200)));
        assert_eq!(s.last_body_ref.as_deref(), Some("blake3:00"));
    }
}
