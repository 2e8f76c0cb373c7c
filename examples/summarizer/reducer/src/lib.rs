//! The summarizer reducer (`demo/SummarySM@1`): each `demo/Summary@1` the summarize plan
//! raises (after its `llm.generate` receipt arrived) is recorded: how many summaries
//! finished, the URL, model and summary blob of the last one (`aos blob get` shows it),
//! and the total prompt and completion tokens spent.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// `demo/SummaryState@1` (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default, with = "aos_sdk::u64_lens")]
    pub completion_tokens: u64,
    #[serde(default)]
    pub last_model: Option<String>,
    #[serde(default)]
    pub last_output_ref: Option<String>,
    #[serde(default)]
    pub last_url: Option<String>,
    #[serde(default, with = "aos_sdk::u64_lens")]
    pub prompt_tokens: u64,
    #[serde(default, with = "aos_sdk::u64_lens")]
    pub summaries: u64,
}

/// `demo/Summary@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Summary {
    #[serde(with = "aos_sdk::u64_lens")]
    pub completion_tokens: u64,
    pub model: String,
    pub output_ref: String,
    #[serde(with = "aos_sdk::u64_lens")]
    pub prompt_tokens: u64,
    pub url: String,
}

pub fn step(state: Option<State>, event: Summary, _ctx: &Ctx) -> Out<State> {
    let s = state.unwrap_or(State {
        completion_tokens: 0,
        last_model: None,
        last_output_ref: None,
        last_url: None,
        prompt_tokens: 0,
        summaries: 0,
    });
    Out::new(State {
        completion_tokens: s.completion_tokens.saturating_add(event.completion_tokens),
        last_model: Some(event.model),
        last_output_ref: Some(event.output_ref),
        last_url: Some(event.url),
        prompt_tokens: s.prompt_tokens.saturating_add(event.prompt_tokens),
        summaries: s.summaries.saturating_add(1),
    })
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(url: &str, prompt: u64, completion: u64) -> Summary {
        Summary {
            completion_tokens: completion,
            model: "m".into(),
            output_ref: "blake3:00".into(),
            prompt_tokens: prompt,
            url: url.into(),
        }
    }

    #[test]
    fn summaries_are_counted_tokens_summed_and_the_last_one_kept() {
        let ctx = Ctx {
            now_ns: 0,
            key: None,
            cell_mode: false,
        };
        let s = step(None, summary("http://a/", 10, 3), &ctx).state.unwrap();
        assert_eq!(
            (s.summaries, s.prompt_tokens, s.completion_tokens),
            (1, 10, 3)
        );
        let s = step(Some(s), summary("http://b/", 5, 2), &ctx)
            .state
            .unwrap();
        assert_eq!(
            (s.summaries, s.prompt_tokens, s.completion_tokens),
            (2, 15, 5)
        );
        assert_eq!(s.last_url.as_deref(), Some("http://b/"));
        assert_eq!(s.last_output_ref.as_deref(), Some("blake3:00"));
    }
}
