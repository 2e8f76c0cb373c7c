//! The counter reducer (`demo/CounterSM@1`): `Start{target}` begins counting down from
//! `target` (straight to `Done` when it is 0), each `Tick` takes one off and reaches
//! `Done` at 0; a `Tick` while `Idle` or `Done` changes nothing.
#![no_std]

extern crate alloc;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// `demo/CounterPc@1`: a variant of unit arms, canonically `{"$tag":"Idle"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Pc {
    Idle,
    Counting,
    Done,
}

/// `demo/CounterState@1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub pc: Pc,
    #[serde(with = "aos_sdk::u64_lens")]
    pub remaining: u64,
}

/// The record of the `Start` arm.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Start {
    #[serde(with = "aos_sdk::u64_lens")]
    pub target: u64,
}

/// `demo/CounterEvent@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Event {
    Start(Start),
    Tick,
}

pub fn step(state: Option<State>, event: Event, _ctx: &Ctx) -> Out<State> {
    let state = match (state, &event) {
        // A Tick before any Start: there is still no state.
        (None, Event::Tick) => return Out::delete(),
        (Some(s), _) => s,
        (None, _) => State {
            pc: Pc::Idle,
            remaining: 0,
        },
    };
    let next = match event {
        Event::Start(Start { target: 0 }) => State {
            pc: Pc::Done,
            remaining: 0,
        },
        Event::Start(Start { target }) => State {
            pc: Pc::Counting,
            remaining: target,
        },
        Event::Tick if state.pc == Pc::Counting => {
            let remaining = state.remaining.saturating_sub(1);
            State {
                pc: if remaining == 0 {
                    Pc::Done
                } else {
                    Pc::Counting
                },
                remaining,
            }
        }
        Event::Tick => state,
    };
    Out::new(next)
}

aos_sdk::reducer!(step);
