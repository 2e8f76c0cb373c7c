//! The kernel's typed errors: what stops a command (a damaged store, a manifest that
//! does not load, a divergence found on replay, a refused input) as opposed to a module
//! fault, which is journaled as a `module_error` and never stops the world.

use aos_store::Hash;

use crate::replay::Divergence;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Store(#[from] aos_store::Error),
    #[error(transparent)]
    Wasm(#[from] crate::wasm::WasmError),
    /// The manifest named by the journal cannot be loaded or does not hash to its name.
    #[error("manifest {hash}: {reason}")]
    Manifest { hash: Hash, reason: String },
    /// A stored snapshot or state object is not what its record says.
    #[error("snapshot at seq {seq}: {reason}")]
    Snapshot { seq: u64, reason: String },
    /// A record the kernel must interpret is malformed (names the seq).
    #[error("journal record seq {seq} ({kind}): {reason}")]
    Record {
        seq: u64,
        kind: String,
        reason: String,
    },
    /// Re-deriving the journal disagreed with what it recorded.
    #[error("{0}")]
    Diverged(Box<Divergence>),
    /// The caller's input was refused; nothing was journaled.
    #[error("{0}")]
    Refused(String),
    /// A step could not run for a reason that is not the module's fault.
    #[error("{0}")]
    Step(String),
}

pub type Result<T, E = KernelError> = std::result::Result<T, E>;

impl KernelError {
    /// A maker of [`KernelError::Record`] errors about `rec` at `seq`.
    pub fn in_record(
        seq: u64,
        rec: &aos_store::journal::Record,
    ) -> impl Fn(String) -> KernelError + Copy + '_ {
        move |reason| KernelError::Record {
            seq,
            kind: rec.kind.clone(),
            reason,
        }
    }
}
