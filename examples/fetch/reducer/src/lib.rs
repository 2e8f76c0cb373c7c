//! The fetch reducer (`demo/FetchSM@1`): each `demo/FetchResult@1` a fetch plan raises
//! (after its `http.request` receipt arrived) is recorded: how many fetches finished,
//! and the URL, HTTP status and body blob of the last one (`aos blob get` shows it).
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// `demo/FetchState@1` (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub fetched: u64,
    #[serde(default)]
    pub last_body_ref: Option<String>,
    #[serde(default)]
    pub last_status: Option<i64>,
    #[serde(default)]
    pub last_url: Option<String>,
}

/// `demo/FetchResult@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FetchResult {
    #[serde(default)]
    pub body_ref: Option<String>,
    pub status: i64,
    pub url: String,
}

pub fn step(state: Option<State>, event: FetchResult, _ctx: &Ctx) -> Out<State> {
    let fetched = state.map_or(0, |s| s.fetched).saturating_add(1);
    Out::new(State {
        fetched,
        last_body_ref: event.body_ref,
        last_status: Some(event.status),
        last_url: Some(event.url),
    })
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_result_is_counted_and_the_last_one_kept() {
        let ctx = Ctx {
            now_ns: 0,
            key: None,
            cell_mode: false,
        };
        let first = FetchResult {
            body_ref: None,
            status: 404,
            url: "http://a/".into(),
        };
        let s = step(None, first, &ctx).state.unwrap();
        assert_eq!((s.fetched, s.last_status), (1, Some(404)));
        let second = FetchResult {
            body_ref: Some("blake3:00".into()),
            status: 200,
            url: "http://b/".into(),
        };
        let s = step(Some(s), second, &ctx).state.unwrap();
        assert_eq!(s.fetched, 2);
        assert_eq!(s.last_url.as_deref(), Some("http://b/"));
        assert_eq!(s.last_body_ref.as_deref(), Some("blake3:00"));
    }
}
