//! The deterministic engine profile, its fingerprint, and the per-store resource limiter.
//!
//! Determinism: fuel metering (deterministic instruction counts, no wall clock), NaN
//! canonicalization (float results have one bit pattern on every host), no threads or
//! shared memory, no relaxed SIMD, no 64-bit memories, no GC, no WASI and no imports, and
//! a fixed WASM stack size (stack exhaustion depends only on the code and this value).
//! Memory and table growth beyond [`Limits`] traps with a [`LimitExceeded`] error instead
//! of returning -1, so a runaway allocation is reported as what it is.
//!
//! Instances come from a small pooling allocator: a step instantiates a fresh instance
//! from a reused slot, which costs microseconds instead of an mmap/munmap pair.

use std::fmt;
use std::hash::{Hash as _, Hasher};

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    ResourceLimiter,
};

use super::Limits;

/// How many instances may be alive at once (concurrent steps on one [`Engine`]).
pub(crate) const POOL_SLOTS: u32 = 16;

/// The WASM stack every step gets. Part of the fingerprint: a different value changes
/// which deep recursions trap.
const MAX_WASM_STACK: usize = 1 << 20;

/// Bytes at the start of each table slot reset with memset when an instance ends.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Bytes at the start of each memory slot kept resident between instances instead of
/// being returned to the OS (madvise, then page faults on the next step). Without the
/// kernel's PAGEMAP_SCAN (Linux < 6.7) the whole region is reset with memset, so it stays
/// small: 64 KiB halved the cost of a small step. With PAGEMAP_SCAN only the pages a step
/// dirtied are reset, so 1 MiB (stack, data and a small step's heap) costs nothing extra
/// and saves the page faults and TLB flushes that dominated a step's cost.
fn memory_keep_resident() -> usize {
    if pagemap_scan_supported() {
        1 << 20
    } else {
        64 << 10
    }
}

/// Linux 6.7 or later (where wasmtime can use PAGEMAP_SCAN).
fn pagemap_scan_supported() -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release.trim().split(['.', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (6, 7)
}

/// Bumped whenever a choice below changes in a way wasmtime's own hash would not see.
const PROFILE_VERSION: &str = "aos-wasm-profile/1";

/// The engine configuration for reducers.
pub fn config(limits: &Limits) -> Config {
    let mut c = Config::new();
    c.consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .cranelift_opt_level(OptLevel::Speed)
        // Threads, shared memory, GC, exceptions and the component model are compiled
        // out of wasmtime (its `threads`, `gc` and `component-model` features are off).
        .wasm_relaxed_simd(false)
        .relaxed_simd_deterministic(true)
        .wasm_memory64(false)
        .wasm_stack_switching(false)
        .max_wasm_stack(MAX_WASM_STACK)
        .parallel_compilation(true);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(POOL_SLOTS)
        .total_memories(POOL_SLOTS)
        .total_tables(POOL_SLOTS)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        // Memory is capped by the limiter (and at add time by the checks), not by the
        // pool, so an oversized module gets a precise error instead of a pool refusal.
        .max_memory_size(4 << 30)
        .table_elements(limits.table_elements)
        .linear_memory_keep_resident(memory_keep_resident())
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        // Performance only: which pages are reset, never what a step computes.
        .pagemap_scan(Enabled::Auto);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

/// A blake3 digest naming the engine: wasmtime's own compatibility hash (version,
/// target, compiler flags, tunables, features) plus this profile's choices. Compiled
/// modules are cached under it, so code compiled by another engine is never loaded.
pub(crate) fn fingerprint(engine: &Engine) -> [u8; 32] {
    let mut h = Blake3Hasher(blake3::Hasher::new());
    h.0.update(PROFILE_VERSION.as_bytes());
    h.0.update(&(MAX_WASM_STACK as u64).to_le_bytes());
    h.0.update(&POOL_SLOTS.to_le_bytes());
    h.0.update(std::env::consts::ARCH.as_bytes());
    engine.precompile_compatibility_hash().hash(&mut h);
    *h.0.finalize().as_bytes()
}

/// Feeds `std::hash::Hash` output into blake3 (stable across processes, unlike SipHash
/// with random keys).
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn finish(&self) -> u64 {
        let b = self.0.finalize();
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&b.as_bytes()[..8]);
        u64::from_le_bytes(eight)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Which resource a step tried to take beyond its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitExceeded {
    Memory { requested: u64, cap: u64 },
    Table { requested: u64, cap: u64 },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Memory { requested, cap } => {
                write!(f, "memory of {requested} bytes requested, cap {cap}")
            }
            LimitExceeded::Table { requested, cap } => {
                write!(f, "table of {requested} elements requested, cap {cap}")
            }
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// What a reducer store carries: its limiter.
pub(crate) struct StoreData {
    pub limiter: Limiter,
}

/// Enforces [`Limits`] on one store, trapping on any growth beyond them.
pub(crate) struct Limiter {
    pub memory_bytes: usize,
    pub table_elements: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                requested: desired as u64,
                cap: self.memory_bytes as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_elements {
            return Err(wasmtime::Error::new(LimitExceeded::Table {
                requested: desired as u64,
                cap: self.table_elements as u64,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }
    fn tables(&self) -> usize {
        1
    }
    fn memories(&self) -> usize {
        1
    }
}
