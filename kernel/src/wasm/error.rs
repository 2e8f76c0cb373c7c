//! Errors of the reducer runtime. [`WasmError`] is what the runtime itself reports
//! (refused modules, compile failures, faults of a raw ABI call); [`Fault`] is everything
//! a module can do wrong during a step, with a stable [`Fault::code`] for `module_error`
//! records; [`StepError`] is a failed typed step, naming the module and the event seq.

use std::fmt;

use air_fmt::Diagnostic;
use aos_store::Hash;

/// Which part of a step was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Instantiation (memory and table set-up, data segments, the start function).
    Instantiate,
    /// The module's `alloc(len)`.
    Alloc,
    /// The module's `step(ptr, len)`.
    Step,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Instantiate => "instantiation",
            Phase::Alloc => "`alloc`",
            Phase::Step => "`step`",
        })
    }
}

/// Something a module did wrong during one step. Each is contained: the step fails,
/// nothing it produced is kept, and the runtime stays usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    #[error("ran out of fuel after {limit} units (the per-step budget) in {phase}")]
    OutOfFuel { limit: u64, phase: Phase },
    #[error(
        "tried to grow its memory to {requested} bytes in {phase}, over the cap of {cap} bytes"
    )]
    MemoryCap {
        requested: u64,
        cap: u64,
        phase: Phase,
    },
    #[error("tried to grow a table to {requested} elements in {phase}, over the cap of {cap}")]
    TableCap {
        requested: u64,
        cap: u64,
        phase: Phase,
    },
    #[error("trapped in {phase}: {message}")]
    Trap { phase: Phase, message: String },
    #[error("returned from `alloc({len})` the pointer {ptr}, but {len} bytes there end past its memory of {memory} bytes")]
    AllocOutOfBounds { ptr: u32, len: u32, memory: u64 },
    #[error("cannot take an input of {len} bytes (the ABI passes lengths as i32 and the memory cap is {cap} bytes)")]
    InputTooLarge { len: u64, cap: u64 },
    #[error("returned an output of {len} bytes, over the cap of {max} bytes")]
    OutputTooLarge { len: u64, max: u64 },
    #[error(
        "returned an output at {ptr} of {len} bytes, which ends past its memory of {memory} bytes"
    )]
    OutputOutOfBounds { ptr: u32, len: u32, memory: u64 },
    #[error("returned output that is not JSON ({error}); it begins {excerpt:?}")]
    NotJson { error: String, excerpt: String },
    #[error("returned malformed output: {message}")]
    BadOutput {
        /// JSON pointer into the output (`""` for the whole of it).
        pointer: String,
        /// What is wrong, naming the position.
        message: String,
    },
    #[error("returned {what} that does not match {expected}: {}", show_diags(.diagnostics))]
    IllTyped {
        /// `state`, `domain_events[0].value`, …
        what: String,
        /// The declared type or schema.
        expected: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("emitted domain event {index} of schema {schema}, which it does not declare")]
    UndeclaredEvent { index: usize, schema: String },
    #[error("emitted effect {index} of kind {kind:?}, which it may not emit")]
    UndeclaredEffect { index: usize, kind: String },
}

impl Fault {
    /// A stable short code for journal records and `--format json`.
    pub fn code(&self) -> &'static str {
        match self {
            Fault::OutOfFuel { .. } => "out_of_fuel",
            Fault::MemoryCap { .. } => "memory_cap",
            Fault::TableCap { .. } => "table_cap",
            Fault::Trap { .. } => "trap",
            Fault::AllocOutOfBounds { .. } => "alloc_out_of_bounds",
            Fault::InputTooLarge { .. } => "input_too_large",
            Fault::OutputTooLarge { .. } => "output_too_large",
            Fault::OutputOutOfBounds { .. } => "output_out_of_bounds",
            Fault::NotJson { .. } => "output_not_json",
            Fault::BadOutput { .. } => "bad_output",
            Fault::IllTyped { .. } => "ill_typed_output",
            Fault::UndeclaredEvent { .. } => "undeclared_event",
            Fault::UndeclaredEffect { .. } => "undeclared_effect",
        }
    }
}

pub fn show_diags(diags: &[Diagnostic]) -> String {
    let shown: Vec<String> = diags
        .iter()
        .take(5)
        .map(|d| {
            let mut s = if d.pointer.is_empty() {
                d.message.clone()
            } else {
                format!("at {}: {}", d.pointer, d.message)
            };
            if let Some(e) = &d.expected {
                s.push_str(&format!(" (expected {e}"));
                if let Some(f) = &d.found {
                    s.push_str(&format!(", found {f}"));
                }
                s.push(')');
            }
            s
        })
        .collect();
    let more = diags.len().saturating_sub(shown.len());
    let mut out = shown.join("; ");
    if more > 0 {
        out.push_str(&format!("; and {more} more"));
    }
    out
}

/// Errors of the runtime: refused modules, engine and cache problems, and step faults.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("not a WebAssembly module: {reason}")]
    NotWasm { reason: String },
    #[error("invalid WebAssembly: {reason}")]
    Invalid { reason: String },
    #[error("{}", imports_message(.imports))]
    ForbiddenImports {
        /// `module::name (kind)` for each import.
        imports: Vec<String>,
    },
    #[error("the module does not follow the reducer ABI (exports memory, alloc(len: i32) -> i32, step(ptr: i32, len: i32) -> i64): {}", .problems.join("; "))]
    Abi { problems: Vec<String> },
    #[error("cannot compile the module: {reason}")]
    Compile { reason: String },
    #[error("cannot set up the WASM engine: {reason}")]
    Engine { reason: String },
    #[error("the bytes given for module {expected} hash to {actual}")]
    HashMismatch { expected: Hash, actual: Hash },
    #[error("module {module} is not loaded in this runtime (call load first)")]
    NotLoaded { module: Hash },
    #[error("cannot instantiate module {module}: {reason}")]
    Instantiate { module: Hash, reason: String },
    #[error("module {module} {fault}")]
    Fault { module: Hash, fault: Fault },
}

impl WasmError {
    /// True when the module itself is at fault (invalid, refused, cannot run under this
    /// engine's profile, or misbehaved), as opposed to the machine or the caller.
    pub fn is_module_fault(&self) -> bool {
        matches!(
            self,
            WasmError::NotWasm { .. }
                | WasmError::Invalid { .. }
                | WasmError::Compile { .. }
                | WasmError::ForbiddenImports { .. }
                | WasmError::Abi { .. }
                | WasmError::Fault { .. }
        )
    }
}

fn imports_message(imports: &[String]) -> String {
    match imports {
        [one] => format!("the module imports {one}, which the kernel does not provide (reducers may import nothing)"),
        many => format!(
            "the module imports {} items the kernel does not provide (reducers may import nothing): {}",
            many.len(),
            many.join(", ")
        ),
    }
}

/// A typed reducer step that failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The module misbehaved; the state is unchanged. Journal it as a `module_error`.
    #[error("module {module} {fault} while handling event seq {seq}")]
    Fault {
        module: Hash,
        seq: u64,
        fault: Fault,
    },
    /// The kernel could not run the step (the module is not loaded, the input has no
    /// canonical form, the machine failed). Not the module's fault.
    #[error("cannot run module {module} for event seq {seq}: {reason}")]
    Kernel {
        module: Hash,
        seq: u64,
        reason: String,
    },
}

impl StepError {
    pub fn module(&self) -> &Hash {
        match self {
            StepError::Fault { module, .. } | StepError::Kernel { module, .. } => module,
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            StepError::Fault { seq, .. } | StepError::Kernel { seq, .. } => *seq,
        }
    }

    pub fn fault(&self) -> Option<&Fault> {
        match self {
            StepError::Fault { fault, .. } => Some(fault),
            StepError::Kernel { .. } => None,
        }
    }

    /// Attach the event seq to a runtime error.
    pub(crate) fn from_wasm(module: &Hash, seq: u64, e: WasmError) -> StepError {
        match e {
            WasmError::Fault { module, fault } => StepError::Fault { module, seq, fault },
            other => StepError::Kernel {
                module: *module,
                seq,
                reason: other.to_string(),
            },
        }
    }
}
