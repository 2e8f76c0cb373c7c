//! The deterministic kernel of a world: the stepper, the WASM reducer runtime, the plan
//! engine, capability and policy gates, the effect manager, governance, shadow runs,
//! replay and the why graph. It reads and writes only through `aos-store` and
//! understands definitions only through `air-fmt`.

pub mod error;
pub mod gates;
pub mod governance;
mod governing;
pub mod manifest;
mod plan_runs;
pub mod plans;
pub mod records;
pub mod replay;
pub mod session;
pub mod shadow;
pub mod state;
pub mod stepper;
pub mod wasm;
pub mod why;

pub use error::{KernelError, Result};
