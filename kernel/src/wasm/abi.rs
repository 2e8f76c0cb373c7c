//! One raw reducer ABI call (DESIGN §4) in a fresh instance: a new store with the
//! per-step limits and fuel, instantiate from the cached `InstancePre`, `alloc(len)`,
//! copy the input in, `step(ptr, len)`, unpack `ptr << 32 | len`, bounds-check and copy
//! the output out. Every failure is a [`Fault`] (or, for the kernel's own problems, an
//! instantiation error); nothing here panics on anything a module does.

use aos_store::Hash;
use wasmtime::{Engine, Extern, Store, Trap};

use super::engine::{LimitExceeded, Limiter, StoreData};
use super::error::{Fault, Phase, WasmError};
use super::runtime::{error_text, Loaded, StepOutput};
use super::Limits;

pub(crate) fn call(
    engine: &Engine,
    loaded: &Loaded,
    limits: &Limits,
    module: &Hash,
    input: &[u8],
) -> Result<StepOutput, WasmError> {
    let fault = |fault: Fault| WasmError::Fault {
        module: *module,
        fault,
    };
    let max_in = limits.memory_bytes.min(i32::MAX as usize);
    if input.len() > max_in {
        return Err(fault(Fault::InputTooLarge {
            len: input.len() as u64,
            cap: limits.memory_bytes as u64,
        }));
    }
    let len = input.len() as u32;

    let mut store = Store::new(
        engine,
        StoreData {
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
                table_elements: limits.table_elements,
            },
        },
    );
    store.limiter(|d| &mut d.limiter);
    let internal = |what: String| WasmError::Instantiate {
        module: *module,
        reason: what,
    };
    store
        .set_fuel(limits.fuel_per_step)
        .map_err(|e| internal(error_text(&e)))?;

    let instance = loaded
        .pre
        .instantiate(&mut store)
        .map_err(|e| classify(e, Phase::Instantiate, limits, module))?;
    let memory = instance
        .get_module_export(&mut store, &loaded.memory)
        .and_then(Extern::into_memory)
        .ok_or_else(|| internal("export `memory` is not a memory".into()))?;
    let alloc = instance
        .get_module_export(&mut store, &loaded.alloc)
        .and_then(Extern::into_func)
        .ok_or_else(|| internal("export `alloc` is not a function".into()))?
        .typed::<i32, i32>(&store)
        .map_err(|e| internal(error_text(&e)))?;
    let step = instance
        .get_module_export(&mut store, &loaded.step)
        .and_then(Extern::into_func)
        .ok_or_else(|| internal("export `step` is not a function".into()))?
        .typed::<(i32, i32), i64>(&store)
        .map_err(|e| internal(error_text(&e)))?;

    let ptr = alloc
        .call(&mut store, len as i32)
        .map_err(|e| classify(e, Phase::Alloc, limits, module))? as u32;
    let size = memory.data_size(&store) as u64;
    let start = ptr as usize;
    match start
        .checked_add(input.len())
        .and_then(|end| memory.data_mut(&mut store).get_mut(start..end))
    {
        Some(dst) => dst.copy_from_slice(input),
        None => {
            return Err(fault(Fault::AllocOutOfBounds {
                ptr,
                len,
                memory: size,
            }))
        }
    }

    let packed = step
        .call(&mut store, (ptr as i32, len as i32))
        .map_err(|e| classify(e, Phase::Step, limits, module))? as u64;
    let (out_ptr, out_len) = ((packed >> 32) as u32, packed as u32);
    if out_len as usize > limits.max_output_bytes {
        return Err(fault(Fault::OutputTooLarge {
            len: out_len as u64,
            max: limits.max_output_bytes as u64,
        }));
    }
    let size = memory.data_size(&store) as u64;
    let start = out_ptr as usize;
    let bytes = match start
        .checked_add(out_len as usize)
        .and_then(|end| memory.data(&store).get(start..end))
    {
        Some(src) => src.to_vec(),
        None => {
            return Err(fault(Fault::OutputOutOfBounds {
                ptr: out_ptr,
                len: out_len,
                memory: size,
            }))
        }
    };
    let left = store.get_fuel().map_err(|e| internal(error_text(&e)))?;
    Ok(StepOutput {
        bytes,
        fuel_used: limits.fuel_per_step.saturating_sub(left),
    })
}

/// Turn a wasmtime error from instantiation or a call into what the module did.
fn classify(e: wasmtime::Error, phase: Phase, limits: &Limits, module: &Hash) -> WasmError {
    let fault = if let Some(limit) = e.downcast_ref::<LimitExceeded>() {
        match *limit {
            LimitExceeded::Memory { requested, cap } => Fault::MemoryCap {
                requested,
                cap,
                phase,
            },
            LimitExceeded::Table { requested, cap } => Fault::TableCap {
                requested,
                cap,
                phase,
            },
        }
    } else if let Some(trap) = e.downcast_ref::<Trap>() {
        if matches!(trap, Trap::OutOfFuel) {
            Fault::OutOfFuel {
                limit: limits.fuel_per_step,
                phase,
            }
        } else {
            Fault::Trap {
                phase,
                message: trap.to_string(),
            }
        }
    } else if phase == Phase::Instantiate {
        return WasmError::Instantiate {
            module: *module,
            reason: error_text(&e),
        };
    } else {
        Fault::Trap {
            phase,
            message: error_text(&e),
        }
    };
    WasmError::Fault {
        module: *module,
        fault,
    }
}
