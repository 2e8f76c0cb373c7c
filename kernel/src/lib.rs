//! The deterministic kernel of a world: the stepper, the WASM reducer runtime, the plan
//! engine, capability and policy gates, the effect manager, governance, shadow runs,
//! replay and the why graph. It reads and writes only through `aos-store` and
//! understands definitions only through `air-fmt`.
//!
//! Later issues fill this crate; it is present so the architecture is visible.

pub mod wasm;
