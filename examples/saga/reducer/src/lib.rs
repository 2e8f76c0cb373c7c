//! The saga reducer (`demo/OrderSM@1`): tracks an order through the states the saga
//! plan raises as `demo/OrderEvent@1` — `Charged`, then `Confirmed` when the reservation
//! held, or `ReserveFailed` and `Refunded` when it did not — keeping the current state
//! and every state in the order it was reached.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;
use alloc::vec::Vec;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// `demo/OrderState@1` (fields in canonical order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub history: Vec<String>,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// `demo/OrderEvent@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OrderEvent {
    pub order_id: String,
    pub state: String,
}

pub fn step(state: Option<State>, event: OrderEvent, _ctx: &Ctx) -> Out<State> {
    let mut s = state.unwrap_or_default();
    // A new order starts a fresh history.
    if s.order_id.as_deref() != Some(event.order_id.as_str()) {
        s.history.clear();
    }
    s.history.push(event.state.clone());
    s.order_id = Some(event.order_id);
    s.status = Some(event.state);
    Out::new(s)
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(order: &str, state: &str) -> OrderEvent {
        OrderEvent {
            order_id: order.into(),
            state: state.into(),
        }
    }

    #[test]
    fn the_state_follows_the_events_and_a_new_order_starts_over() {
        let ctx = Ctx {
            now_ns: 0,
            key: None,
            cell_mode: false,
        };
        let mut s = None;
        for st in ["Charged", "ReserveFailed", "Refunded"] {
            s = step(s, ev("o-1", st), &ctx).state;
        }
        let s = s.unwrap();
        assert_eq!(s.status.as_deref(), Some("Refunded"));
        assert_eq!(s.history, ["Charged", "ReserveFailed", "Refunded"]);
        let s = step(Some(s), ev("o-2", "Charged"), &ctx).state.unwrap();
        assert_eq!(s.history, ["Charged"]);
        assert_eq!(s.order_id.as_deref(), Some("o-2"));
    }
}
