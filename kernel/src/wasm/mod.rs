//! The WASM reducer runtime (DESIGN §4): wasmtime under a deterministic profile, the
//! module checks `aos module add` runs, a compiled-module cache on disk keyed by wasm
//! hash and engine fingerprint, and the JSON reducer ABI (`memory`, `alloc`, `step`).
//!
//! - [`Runtime`] owns the engine and both caches (compiled modules on disk, linked
//!   `InstancePre`s in memory). [`Runtime::check_module`] refuses invalid WASM, imports
//!   and a wrong ABI; [`Runtime::load`] compiles or loads from disk;
//!   [`Runtime::call_step`] runs one raw ABI call in a fresh instance.
//! - [`run_reducer_step`] is the typed layer: canonical input JSON in, output parsed,
//!   checked against the reducer's [`Contract`] and canonicalized, every failure a
//!   [`StepError`] naming the module, the event seq and what went wrong.
//! - [`Limits`] are the per-step budgets. They change what a module may do, so the
//!   caller records them (world config) and replays under the same values.

mod abi;
mod cache;
mod check;
mod engine;
mod error;
mod reducer;
mod runtime;

/// The deterministic engine profile reducers run under (for embedders and benchmarks
/// that must measure exactly what the kernel runs).
pub use engine::config as engine_config;
pub use error::{show_diags, Fault, Phase, StepError, WasmError};
pub use reducer::{
    encode_input, parse_output, run_reducer_step, Contract, DomainEvent, EffectIntent, InputState,
    ReducerInput, ReducerOutput,
};
pub use runtime::{Runtime, Stats, StepOutput};

/// Per-step resource budgets. Every value changes which steps succeed, so a world records
/// the limits it runs under and replay uses the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel for one step (instantiation, `alloc` and `step` together). Wasmtime charges
    /// about one unit per WASM instruction.
    pub fuel_per_step: u64,
    /// The largest linear memory an instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// The most table elements an instance may hold.
    pub table_elements: usize,
    /// The largest output `step` may return, in bytes.
    pub max_output_bytes: usize,
}

impl Limits {
    /// 10^9 units: 0.6–1 s of a tight WASM loop on the 2-core dev machine (release build),
    /// so a runaway step is stopped within about a second. An honest step over a small
    /// state (parse JSON, update, print JSON) should cost 10^4–10^6 units, well under 1%
    /// (the WAT echo reducer of the tests costs under 10^3).
    pub const DEFAULT_FUEL_PER_STEP: u64 = 1_000_000_000;
    /// 256 MiB (4096 WASM pages).
    pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;
    /// 100,000 elements: far more than any compiler emits for a function table.
    pub const DEFAULT_TABLE_ELEMENTS: usize = 100_000;
    /// 64 MiB: the new state, domain events and effects of one step.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 << 20;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel_per_step: Limits::DEFAULT_FUEL_PER_STEP,
            memory_bytes: Limits::DEFAULT_MEMORY_BYTES,
            table_elements: Limits::DEFAULT_TABLE_ELEMENTS,
            max_output_bytes: Limits::DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}
