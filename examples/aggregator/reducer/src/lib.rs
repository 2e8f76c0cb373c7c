//! The aggregator reducer (`demo/AggregatorSM@1`): each `demo/AggregateResult@1` the
//! aggregate plan raises (three HTTP statuses, joined in the order the request listed
//! the URLs) is recorded: how many joins finished, and the statuses of the last one.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::vec::Vec;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// `demo/AggregateState@1` (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub joined: u64,
    #[serde(default)]
    pub last_statuses: Option<Vec<i64>>,
}

/// `demo/AggregateResult@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AggregateResult {
    pub statuses: Vec<i64>,
}

pub fn step(state: Option<State>, event: AggregateResult, _ctx: &Ctx) -> Out<State> {
    let joined = state.map_or(0, |s| s.joined).saturating_add(1);
    Out::new(State {
        joined,
        last_statuses: Some(event.statuses),
    })
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn each_join_is_counted_and_the_last_one_kept_in_order() {
        let ctx = Ctx {
            now_ns: 0,
            key: None,
            cell_mode: false,
        };
        let s = step(
            None,
            AggregateResult {
                statuses: vec![200, 404, 500],
            },
            &ctx,
        )
        .state
        .unwrap();
        assert_eq!(s.joined, 1);
        let s = step(
            Some(s),
            AggregateResult {
                statuses: vec![201, 202, 203],
            },
            &ctx,
        )
        .state
        .unwrap();
        assert_eq!(s.joined, 2);
        assert_eq!(s.last_statuses, Some(vec![201, 202, 203]));
    }
}
