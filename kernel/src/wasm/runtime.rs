//! [`Runtime`]: one engine, the compiled-module cache on disk, linked `InstancePre`s in
//! memory, and the raw ABI call. `Send + Sync`; at most [`engine::POOL_SLOTS`] steps run
//! at once (further callers wait for a slot).

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use aos_store::Hash;
use wasmtime::{Engine, InstancePre, Linker, Module, ModuleExport};

use super::cache::{DiskCache, Lookup};
use super::check::{check_abi, sniff};
use super::engine::{self, StoreData};
use super::error::WasmError;
use super::{abi, Limits};

/// The raw result of one ABI call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// The bytes `step` returned, copied out of the instance.
    pub bytes: Vec<u8>,
    /// Fuel spent by instantiation, `alloc` and `step` together (deterministic).
    pub fuel_used: u64,
}

/// What the caches did, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Modules compiled from WASM by this runtime.
    pub compiled: u64,
    /// Modules loaded from the disk cache without compiling.
    pub loaded_from_disk: u64,
    /// Cache files rejected (damaged, from another engine, unloadable), removed and recompiled.
    pub disk_rejected: u64,
    /// Compiled modules that could not be written to the disk cache (the step still runs).
    pub disk_write_failed: u64,
}

/// A module ready to instantiate, and the handles of its ABI exports.
pub(crate) struct Loaded {
    pub pre: InstancePre<StoreData>,
    pub memory: ModuleExport,
    pub alloc: ModuleExport,
    pub step: ModuleExport,
}

/// The WASM reducer runtime.
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    fingerprint: [u8; 32],
    disk: Option<DiskCache>,
    loaded: RwLock<HashMap<Hash, Arc<Loaded>>>,
    slots: Slots,
    compiled: AtomicU64,
    from_disk: AtomicU64,
    rejected: AtomicU64,
    write_failed: AtomicU64,
    notes: Mutex<Vec<String>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("fingerprint", &self.fingerprint())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime with the deterministic engine profile and `limits`. Compiled modules are
    /// cached under `cache_dir` (a world's `.aos/cache/wasm/`) when one is given.
    pub fn new(cache_dir: Option<PathBuf>, limits: Limits) -> Result<Runtime, WasmError> {
        check_limits(&limits)?;
        let engine = Engine::new(&engine::config(&limits)).map_err(|e| WasmError::Engine {
            reason: e.to_string(),
        })?;
        let fingerprint = engine::fingerprint(&engine);
        Ok(Runtime {
            disk: cache_dir.map(|d| DiskCache::new(&d, fingerprint)),
            engine,
            limits,
            fingerprint,
            loaded: RwLock::new(HashMap::new()),
            slots: Slots::new(engine::POOL_SLOTS),
            compiled: AtomicU64::new(0),
            from_disk: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            write_failed: AtomicU64::new(0),
            notes: Mutex::new(Vec::new()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The engine fingerprint as `blake3:<hex>`: wasmtime's version and configuration
    /// plus this profile. Compiled code is only ever reused under the same fingerprint.
    pub fn fingerprint(&self) -> String {
        Hash(self.fingerprint).to_string()
    }

    /// Where the compiled form of `module` is cached, when there is a disk cache.
    pub fn cache_path(&self, module: &Hash) -> Option<PathBuf> {
        self.disk.as_ref().map(|d| d.path(module))
    }

    pub fn stats(&self) -> Stats {
        Stats {
            compiled: self.compiled.load(Ordering::Relaxed),
            loaded_from_disk: self.from_disk.load(Ordering::Relaxed),
            disk_rejected: self.rejected.load(Ordering::Relaxed),
            disk_write_failed: self.write_failed.load(Ordering::Relaxed),
        }
    }

    /// What the disk cache ran into since the last call (rejected or unwritable files),
    /// one line each. Never fatal: the module was compiled instead.
    pub fn take_cache_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn note(&self, line: String) {
        self.notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Check that `wasm` is a valid core module that imports nothing and exports the
    /// reducer ABI. Compiles it (without caching) to see its exports' types.
    pub fn check_module(&self, wasm: &[u8]) -> Result<(), WasmError> {
        let module = self.compile(wasm)?;
        check_abi(&module, &self.limits)
    }

    /// Whether `module` is ready for [`Runtime::call_step`].
    pub fn is_loaded(&self, module: &Hash) -> bool {
        self.read_loaded().contains_key(module)
    }

    /// Make `module` ready from the disk cache alone; false when it is not cached there
    /// (then call [`Runtime::load`] with its bytes).
    pub fn load_cached(&self, module: &Hash) -> Result<bool, WasmError> {
        if self.is_loaded(module) {
            return Ok(true);
        }
        match self.read_disk(module) {
            Some(m) => {
                self.install(module, &m)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Make `module` (whose bytes are `wasm`) ready: from memory, else from the disk
    /// cache, else compiled (and then cached on disk). The module is checked either way.
    pub fn load(&self, module: &Hash, wasm: &[u8]) -> Result<(), WasmError> {
        if self.is_loaded(module) {
            return Ok(());
        }
        let actual = Hash::of(wasm);
        if actual != *module {
            return Err(WasmError::HashMismatch {
                expected: *module,
                actual,
            });
        }
        if let Some(m) = self.read_disk(module) {
            return self.install(module, &m);
        }
        let m = self.compile(wasm)?;
        check_abi(&m, &self.limits)?;
        if let Some(disk) = &self.disk {
            let written = m
                .serialize()
                .map_err(|e| error_text(&e))
                .and_then(|body| disk.write(module, &body).map_err(|e| e.to_string()));
            if let Err(e) = written {
                self.write_failed.fetch_add(1, Ordering::Relaxed);
                self.note(format!(
                    "cannot cache the compiled module at {}: {e}",
                    disk.path(module).display()
                ));
            }
        }
        self.install(module, &m)
    }

    /// Run one ABI call of a loaded module in a fresh instance: `alloc(len)`, copy
    /// `input` in, `step(ptr, len)`, copy the output out.
    pub fn call_step(&self, module: &Hash, input: &[u8]) -> Result<StepOutput, WasmError> {
        let loaded = self
            .read_loaded()
            .get(module)
            .cloned()
            .ok_or(WasmError::NotLoaded { module: *module })?;
        let _slot = self.slots.acquire();
        abi::call(&self.engine, &loaded, &self.limits, module, input)
    }

    fn read_loaded(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Hash, Arc<Loaded>>> {
        // A poisoned lock only means another thread panicked while inserting; the map
        // itself is always consistent (inserts are single calls).
        self.loaded.read().unwrap_or_else(|p| p.into_inner())
    }

    fn compile(&self, wasm: &[u8]) -> Result<Module, WasmError> {
        sniff(wasm)?;
        Module::validate(&self.engine, wasm).map_err(|e| WasmError::Invalid {
            reason: error_text(&e),
        })?;
        let m = Module::from_binary(&self.engine, wasm).map_err(|e| WasmError::Compile {
            reason: error_text(&e),
        })?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        Ok(m)
    }

    /// The module from the disk cache, if a good entry is there. A bad one is removed.
    fn read_disk(&self, module: &Hash) -> Option<Module> {
        let disk = self.disk.as_ref()?;
        match disk.read(module) {
            Lookup::Missing => None,
            Lookup::Rejected(why) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                self.note(format!("ignored cached compilation {why}; recompiling"));
                None
            }
            Lookup::Found(body) => {
                // SAFETY: `Module::deserialize` must only see bytes produced by
                // `Module::serialize`. `body` comes from a cache file whose header names
                // this engine's fingerprint and this module's hash and whose blake3 digest
                // of the body matched: only `DiskCache::write` produces such files, and
                // only from `Module::serialize` output (see `load`). The bytes are copied
                // into memory first, so later changes to the file cannot reach the loaded
                // code (which is why we do not use `deserialize_file`). Wasmtime also
                // refuses artifacts of another version or configuration.
                match unsafe { Module::deserialize(&self.engine, &body) } {
                    Ok(m) => {
                        self.from_disk.fetch_add(1, Ordering::Relaxed);
                        Some(m)
                    }
                    Err(e) => {
                        disk.remove(module);
                        self.rejected.fetch_add(1, Ordering::Relaxed);
                        self.note(format!(
                            "ignored cached compilation {}: {}; recompiling",
                            disk.path(module).display(),
                            error_text(&e)
                        ));
                        None
                    }
                }
            }
        }
    }

    fn install(&self, module: &Hash, m: &Module) -> Result<(), WasmError> {
        check_abi(m, &self.limits)?;
        let pre = Linker::<StoreData>::new(&self.engine)
            .instantiate_pre(m)
            .map_err(|e| WasmError::Compile {
                reason: error_text(&e),
            })?;
        let export = |name: &str| {
            m.get_export_index(name).ok_or_else(|| WasmError::Abi {
                problems: vec![format!("export `{name}` is missing")],
            })
        };
        let loaded = Loaded {
            memory: export("memory")?,
            alloc: export("alloc")?,
            step: export("step")?,
            pre,
        };
        self.loaded
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(*module, Arc::new(loaded));
        Ok(())
    }
}

fn check_limits(l: &Limits) -> Result<(), WasmError> {
    let bad = |what: String| Err(WasmError::Engine { reason: what });
    if l.fuel_per_step == 0 {
        return bad("fuel_per_step must be positive".into());
    }
    if l.memory_bytes < (64 << 10) || l.memory_bytes > (4 << 30) {
        return bad(format!(
            "memory_bytes is {}; it must be between 65536 (one WASM page) and 4294967296 (4 GiB)",
            l.memory_bytes
        ));
    }
    if l.max_output_bytes == 0 || l.max_output_bytes > l.memory_bytes {
        return bad(format!(
            "max_output_bytes is {}; it must be positive and at most memory_bytes ({})",
            l.max_output_bytes, l.memory_bytes
        ));
    }
    Ok(())
}

/// An error and its causes on one line.
pub(crate) fn error_text(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// A counting semaphore over the engine's instance pool.
struct Slots {
    free: Mutex<u32>,
    cv: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: u32) -> Slots {
        Slots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.0.cv.notify_one();
    }
}
