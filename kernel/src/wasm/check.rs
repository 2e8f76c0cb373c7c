//! Module checks: the bytes are a core WASM binary, the module imports nothing the
//! kernel does not provide (today: nothing at all), and it exports the reducer ABI:
//! `memory` (a 32-bit memory), `alloc(i32) -> i32` and `step(i32, i32) -> i64`.
//! Every error names what is missing or wrong.

use wasmtime::{ExternType, FuncType, Module, ValType};

use super::error::WasmError;
use super::Limits;

const MAGIC: &[u8; 4] = b"\0asm";
/// Version field of a core module (a component's is `0d 00 01 00`).
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Refuse bytes that are not a core WASM binary, saying what they look like instead.
pub(crate) fn sniff(wasm: &[u8]) -> Result<(), WasmError> {
    if wasm.len() < 8 || &wasm[..4] != MAGIC {
        let text = std::str::from_utf8(&wasm[..wasm.len().min(256)]).unwrap_or("");
        let t = text.trim_start();
        let reason = if wasm.is_empty() {
            "the file is empty".to_string()
        } else if t.starts_with("(module") || t.starts_with(";;") || t.starts_with("(;") {
            "this is WAT text; compile it to a binary first (e.g. `wasm-tools parse` or `wat2wasm`)"
                .to_string()
        } else {
            let n = wasm.len().min(4);
            format!(
                "it does not start with the WASM magic bytes 00 61 73 6d (found {})",
                hex(&wasm[..n])
            )
        };
        return Err(WasmError::NotWasm { reason });
    }
    let version = [wasm[4], wasm[5], wasm[6], wasm[7]];
    if version != CORE_VERSION {
        let reason = if version[2..] == [1, 0] {
            "this is a WebAssembly component; reducers are core modules".to_string()
        } else {
            format!(
                "unsupported binary version {} (core modules are version 01 00 00 00)",
                hex(&version)
            )
        };
        return Err(WasmError::NotWasm { reason });
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuse imports and check the ABI exports of a compiled module.
pub(crate) fn check_abi(module: &Module, limits: &Limits) -> Result<(), WasmError> {
    let imports: Vec<String> = module
        .imports()
        .map(|i| format!("{}::{} ({})", i.module(), i.name(), kind(&i.ty())))
        .collect();
    if !imports.is_empty() {
        return Err(WasmError::ForbiddenImports { imports });
    }
    let mut problems = Vec::new();
    match module.get_export("memory") {
        None => {
            problems.push("export `memory` is missing (it must be the module's memory)".to_string())
        }
        Some(ExternType::Memory(m)) => {
            if m.is_64() {
                problems.push(
                    "export `memory` is a 64-bit memory; the ABI uses 32-bit pointers".into(),
                );
            }
            let initial = m.minimum().saturating_mul(m.page_size());
            if initial > limits.memory_bytes as u64 {
                problems.push(format!(
                    "export `memory` starts at {initial} bytes, over the memory cap of {} bytes",
                    limits.memory_bytes
                ));
            }
        }
        Some(other) => problems.push(format!(
            "export `memory` is a {}, not a memory",
            kind(&other)
        )),
    }
    check_func(
        module,
        "alloc",
        &[ValType::I32],
        &[ValType::I32],
        "alloc(len: i32) -> i32",
        &mut problems,
    );
    check_func(
        module,
        "step",
        &[ValType::I32, ValType::I32],
        &[ValType::I64],
        "step(ptr: i32, len: i32) -> i64",
        &mut problems,
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(WasmError::Abi { problems })
    }
}

fn check_func(
    module: &Module,
    name: &str,
    params: &[ValType],
    results: &[ValType],
    wanted: &str,
    problems: &mut Vec<String>,
) {
    match module.get_export(name) {
        None => problems.push(format!("export `{name}` is missing (it must be {wanted})")),
        Some(ExternType::Func(f)) => {
            let same = |got: &mut dyn ExactSizeIterator<Item = ValType>, want: &[ValType]| {
                got.len() == want.len() && got.zip(want).all(|(g, w)| same_num(&g, w))
            };
            if !same(&mut f.params(), params) || !same(&mut f.results(), results) {
                problems.push(format!(
                    "export `{name}` has type {}; it must be {wanted}",
                    signature(&f)
                ));
            }
        }
        Some(other) => problems.push(format!(
            "export `{name}` is a {}, not a function (it must be {wanted})",
            kind(&other)
        )),
    }
}

/// Equality of number types without `ValType::eq`, which may panic on reference types
/// from another engine.
fn same_num(a: &ValType, b: &ValType) -> bool {
    matches!(
        (a, b),
        (ValType::I32, ValType::I32)
            | (ValType::I64, ValType::I64)
            | (ValType::F32, ValType::F32)
            | (ValType::F64, ValType::F64)
            | (ValType::V128, ValType::V128)
    )
}

fn signature(f: &FuncType) -> String {
    let list = |v: &mut dyn Iterator<Item = ValType>| {
        v.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "({}) -> ({})",
        list(&mut f.params()),
        list(&mut f.results())
    )
}

fn kind(t: &ExternType) -> &'static str {
    match t {
        ExternType::Func(_) => "function",
        ExternType::Global(_) => "global",
        ExternType::Table(_) => "table",
        ExternType::Memory(_) => "memory",
        ExternType::Tag(_) => "tag",
    }
}
