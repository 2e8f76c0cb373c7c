//! The raw runtime: module checks at add time, the ABI call, hostile modules contained
//! (fuel, memory and table caps, traps, bad pointers, huge outputs), determinism, and
//! the compiled-module cache on disk.

mod common;

use aos_kernel::wasm::{Fault, Limits, Phase, Runtime, WasmError};
use aos_store::Hash;
use common::*;

fn fault(r: Result<impl std::fmt::Debug, WasmError>) -> Fault {
    match r {
        Err(WasmError::Fault { fault, .. }) => fault,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn echo_round_trips_the_input_bytes() {
    let rt = small_runtime();
    let h = load(&rt, &echo(r#"{"n":1}"#));
    let out = rt.call_step(&h, br#"{"x":[1,2,3]}"#).unwrap();
    assert_eq!(
        String::from_utf8(out.bytes).unwrap(),
        r#"{"state":{"n":1},"ann":{"x":[1,2,3]}}"#
    );
    assert!(
        out.fuel_used > 0 && out.fuel_used < 1000,
        "{}",
        out.fuel_used
    );
}

#[test]
fn large_inputs_make_alloc_grow_memory() {
    let rt = small_runtime();
    let h = load(&rt, &echo("null"));
    let input = format!("\"{}\"", "a".repeat(300_000));
    let out = rt.call_step(&h, input.as_bytes()).unwrap();
    assert!(out.bytes.ends_with(format!("{input}}}").as_bytes()));
}

#[test]
fn same_input_gives_same_bytes_and_fuel() {
    let rt = small_runtime();
    let h = load(&rt, &echo(r#"{"n":1}"#));
    let a = rt.call_step(&h, b"[1,2]").unwrap();
    let b = rt.call_step(&h, b"[1,2]").unwrap();
    assert_eq!(a, b);
    // A fresh instance every step: nothing survives (the bump allocator restarts).
    let other = small_runtime();
    let h2 = load(&other, &echo(r#"{"n":1}"#));
    assert_eq!(other.call_step(&h2, b"[1,2]").unwrap(), a);
}

#[test]
fn nothing_survives_between_steps() {
    // `step` reports whether it finds a mark in memory, in a global or in the table,
    // then leaves marks everywhere (and grows memory) for the next instance to find.
    let rt = small_runtime();
    let h = load(
        &rt,
        &wasm(&module(
            r#"(local $seen i32)
    (local.set $seen (i32.or (i32.load8_u (i32.const 60000)) (global.get $mark)))
    (local.set $seen (i32.or (local.get $seen) (i32.ne (table.size $t) (i32.const 1))))
    (i32.store8 (i32.const 60000) (i32.const 1))
    (global.set $mark (i32.const 1))
    (drop (table.grow $t (ref.null func) (i32.const 5)))
    (drop (memory.grow (i32.const 3)))
    (call $pack (i32.mul (local.get $seen) (i32.const 100)) (i32.const 11))"#,
            r#"(global $mark (mut i32) (i32.const 0)) (table $t 1 funcref)
  (data (i32.const 0) "{\"state\":0}") (data (i32.const 100) "{\"state\":1}")"#,
        )),
    );
    for _ in 0..3 {
        assert_eq!(rt.call_step(&h, b"{}").unwrap().bytes, br#"{"state":0}"#);
    }
}

#[test]
fn infinite_loop_runs_out_of_fuel_and_the_runtime_goes_on() {
    let rt = small_runtime();
    let bad = load(&rt, &infinite_loop());
    let good = load(&rt, &echo("null"));
    let f = fault(rt.call_step(&bad, b"{}"));
    assert_eq!(
        f,
        Fault::OutOfFuel {
            limit: 1_000_000,
            phase: Phase::Step
        }
    );
    let err = rt.call_step(&bad, b"{}").unwrap_err().to_string();
    assert!(
        err.contains(&format!("module {bad} ran out of fuel after 1000000 units")),
        "{err}"
    );
    assert!(rt.call_step(&good, b"1").is_ok());
    assert!(rt.call_step(&good, b"2").is_ok());
}

#[test]
fn start_function_loop_runs_out_of_fuel_at_instantiation() {
    let rt = small_runtime();
    let h = load(
        &rt,
        &wasm(&module(
            "(i64.const 0)",
            "(func $spin (loop $l (br $l))) (start $spin)",
        )),
    );
    assert_eq!(
        fault(rt.call_step(&h, b"{}")),
        Fault::OutOfFuel {
            limit: 1_000_000,
            phase: Phase::Instantiate
        }
    );
}

#[test]
fn memory_bomb_hits_the_cap() {
    let rt = small_runtime();
    let h = load(&rt, &memory_bomb());
    let f = fault(rt.call_step(&h, b"{}"));
    let Fault::MemoryCap {
        requested,
        cap,
        phase,
    } = f
    else {
        panic!("{f:?}")
    };
    assert_eq!((cap, phase), (16 << 20, Phase::Step));
    assert_eq!(requested, cap + 65536);
    assert!(
        f.to_string().contains("over the cap of 16777216 bytes"),
        "{f}"
    );
    // And again: the pool slot was returned and reset.
    assert!(matches!(
        fault(rt.call_step(&h, b"{}")),
        Fault::MemoryCap { .. }
    ));
}

#[test]
fn table_bomb_hits_the_cap() {
    let rt = small_runtime();
    let h = load(&rt, &table_bomb());
    assert!(matches!(
        fault(rt.call_step(&h, b"{}")),
        Fault::TableCap { cap: 10_000, .. }
    ));
}

#[test]
fn traps_are_reported_with_the_phase() {
    let rt = small_runtime();
    let h = load(&rt, &traps());
    let f = fault(rt.call_step(&h, b"{}"));
    let Fault::Trap { phase, message } = &f else {
        panic!("{f:?}")
    };
    assert_eq!(*phase, Phase::Step);
    assert!(message.contains("unreachable"), "{message}");
    let deep = load(
        &rt,
        &wasm(&module(
            "(call $down) (i64.const 0)",
            "(func $down (call $down))",
        )),
    );
    let f = fault(rt.call_step(&deep, b"{}"));
    assert!(
        matches!(&f, Fault::Trap { message, .. } if message.contains("stack")),
        "{f:?}"
    );
}

#[test]
fn huge_output_is_refused() {
    let rt = small_runtime();
    // A real 2 MiB output inside the instance's memory, over the 1 MiB cap.
    let h = load(
        &rt,
        &wasm(&module(
            "(drop (memory.grow (i32.const 40))) (call $pack (i32.const 0) (i32.const 2097152))",
            "",
        )),
    );
    assert_eq!(
        fault(rt.call_step(&h, b"{}")),
        Fault::OutputTooLarge {
            len: 2 << 20,
            max: 1 << 20
        }
    );
    let h = load(&rt, &returns(0x7fff_ffff));
    assert!(matches!(
        fault(rt.call_step(&h, b"{}")),
        Fault::OutputTooLarge { .. }
    ));
}

#[test]
fn out_of_bounds_output_is_an_error_not_a_panic() {
    let rt = small_runtime();
    let h = load(&rt, &returns((0xffff_0000u64 << 32) | 100));
    assert_eq!(
        fault(rt.call_step(&h, b"{}")),
        Fault::OutputOutOfBounds {
            ptr: 0xffff_0000,
            len: 100,
            memory: 65536
        }
    );
    let h = load(&rt, &returns((65500u64 << 32) | 100));
    assert!(matches!(
        fault(rt.call_step(&h, b"{}")),
        Fault::OutputOutOfBounds { .. }
    ));
}

#[test]
fn alloc_returning_a_bad_pointer_is_an_error() {
    let rt = small_runtime();
    let src = module("(i64.const 0)", "").replace(
        "(func $alloc (export \"alloc\") (param $len i32) (result i32)",
        "(func (export \"alloc\") (param i32) (result i32) (i32.const -8))\n  (func $alloc (param $len i32) (result i32)",
    );
    let h = load(&rt, &wasm(&src));
    let f = fault(rt.call_step(&h, b"{\"a\":1}"));
    assert_eq!(
        f,
        Fault::AllocOutOfBounds {
            ptr: 0xffff_fff8,
            len: 7,
            memory: 65536
        }
    );
}

#[test]
fn imports_are_refused_and_named() {
    let rt = small_runtime();
    let src = module("(i64.const 0)", "").replacen(
        "(module",
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        1,
    );
    let err = rt.check_module(&wasm(&src)).unwrap_err();
    assert!(matches!(err, WasmError::ForbiddenImports { .. }));
    assert_eq!(
        err.to_string(),
        "the module imports wasi_snapshot_preview1::fd_write (function), which the kernel does not provide (reducers may import nothing)"
    );
    let src = module("(i64.const 0)", "").replacen(
        "(module",
        r#"(module (import "env" "now" (func (result i64))) (import "env" "g" (global i32))"#,
        1,
    );
    let err = rt.check_module(&wasm(&src)).unwrap_err().to_string();
    assert!(
        err.contains("imports 2 items") && err.contains("env::now (function), env::g (global)"),
        "{err}"
    );
    // load refuses it too, so it can never run.
    let w = wasm(&src);
    assert!(matches!(
        rt.load(&Hash::of(&w), &w),
        Err(WasmError::ForbiddenImports { .. })
    ));
}

#[test]
fn missing_and_mistyped_exports_are_refused() {
    let rt = small_runtime();
    let check = |src: &str| match rt.check_module(&wasm(src)) {
        Err(WasmError::Abi { problems }) => problems,
        other => panic!("expected an ABI error, got {other:?}"),
    };
    let p = check("(module)");
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].contains("export `memory` is missing"));
    assert!(p[1].contains("export `alloc` is missing (it must be alloc(len: i32) -> i32)"));
    assert!(p[2].contains("export `step` is missing"));
    let p = check(
        r#"(module (memory (export "memory") 1)
             (func (export "alloc") (param i64) (result i32) (i32.const 0))
             (global (export "step") i32 (i32.const 0)))"#,
    );
    assert_eq!(
        p,
        vec![
            "export `alloc` has type (i64) -> (i32); it must be alloc(len: i32) -> i32".to_string(),
            "export `step` is a global, not a function (it must be step(ptr: i32, len: i32) -> i64)"
                .to_string(),
        ]
    );
    let p = check(
        r#"(module (func (export "memory")) (memory 1)
             (func (export "alloc") (param i32) (result i32) (i32.const 0))
             (func (export "step") (param i32 i32) (result i32) (i32.const 0)))"#,
    );
    assert!(
        p[0].contains("`memory` is a function, not a memory"),
        "{p:?}"
    );
    assert!(
        p[1].contains("`step` has type (i32, i32) -> (i32)"),
        "{p:?}"
    );
    let big = module("(i64.const 0)", "").replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 1000)",
    );
    let p = check(&big);
    assert!(
        p[0].contains("starts at 65536000 bytes, over the memory cap of 16777216"),
        "{p:?}"
    );
    // Two memories cannot run under this profile: refused with wasmtime's reason.
    let two = module("(i64.const 0)", "(memory $extra 1)");
    let e = rt.check_module(&wasm(&two)).unwrap_err();
    assert!(
        e.is_module_fault() && e.to_string().contains("memor"),
        "{e}"
    );
}

#[test]
fn invalid_wasm_is_refused_with_a_reason() {
    let rt = small_runtime();
    let err = |b: &[u8]| rt.check_module(b).unwrap_err().to_string();
    assert!(err(b"").contains("the file is empty"));
    assert!(err(b"(module)").contains("WAT text"));
    assert!(err(b"\x7fELF\x02\x01\x01\0").contains("found 7f 45 4c 46"));
    assert!(err(b"\0asm\x0d\0\x01\0").contains("component"));
    let mut truncated = echo("null");
    truncated.truncate(truncated.len() - 5);
    let e = rt.check_module(&truncated).unwrap_err();
    assert!(matches!(e, WasmError::Invalid { .. }), "{e}");
    // A type error inside a function body.
    let e = rt
        .check_module(&wasm_unchecked(&module("(i32.const 0)", "")))
        .unwrap_err();
    assert!(matches!(e, WasmError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("type mismatch"), "{e}");
}

fn wasm_unchecked(src: &str) -> Vec<u8> {
    wat::parse_str(src).expect("wat parses without validating")
}

#[test]
fn load_refuses_bytes_that_do_not_match_the_hash() {
    let rt = small_runtime();
    let w = echo("null");
    let e = rt.load(&Hash::of(b"other"), &w).unwrap_err();
    assert!(e.to_string().contains("hash to"), "{e}");
    assert!(matches!(
        rt.call_step(&Hash::of(b"nothing"), b"{}"),
        Err(WasmError::NotLoaded { .. })
    ));
}

#[test]
fn disk_cache_skips_compilation_and_survives_damage() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("wasm");
    let w = echo(r#"{"n":1}"#);
    let h = Hash::of(&w);
    let first = Runtime::new(Some(cache.clone()), small_limits()).unwrap();
    first.load(&h, &w).unwrap();
    assert_eq!(first.stats().compiled, 1);
    let path = first.cache_path(&h).unwrap();
    assert!(
        path.starts_with(&cache) && path.is_file(),
        "{}",
        path.display()
    );
    let expected = first.call_step(&h, b"7").unwrap();

    // A second runtime (a new process, in effect) loads it without compiling.
    let second = Runtime::new(Some(cache.clone()), small_limits()).unwrap();
    assert_eq!(second.fingerprint(), first.fingerprint());
    assert!(second.load_cached(&h).unwrap());
    let s = second.stats();
    assert_eq!((s.compiled, s.loaded_from_disk), (0, 1));
    assert_eq!(second.call_step(&h, b"7").unwrap(), expected);

    // A damaged file is rejected, removed, recompiled and rewritten.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let third = Runtime::new(Some(cache.clone()), small_limits()).unwrap();
    assert!(!third.load_cached(&h).unwrap());
    third.load(&h, &w).unwrap();
    let s = third.stats();
    assert_eq!((s.disk_rejected, s.compiled, s.loaded_from_disk), (1, 1, 0));
    let notes = third.take_cache_notes();
    assert!(notes[0].contains("damaged (digest mismatch)"), "{notes:?}");
    assert_eq!(third.call_step(&h, b"7").unwrap(), expected);
    let fourth = Runtime::new(Some(cache.clone()), small_limits()).unwrap();
    fourth.load(&h, &w).unwrap();
    assert_eq!(fourth.stats().loaded_from_disk, 1);

    // Garbage, a truncated file and another module's entry are all rejected.
    for damage in [b"garbage".to_vec(), bytes[..100].to_vec()] {
        std::fs::write(&path, damage).unwrap();
        let rt = Runtime::new(Some(cache.clone()), small_limits()).unwrap();
        rt.load(&h, &w).unwrap();
        assert_eq!((rt.stats().disk_rejected, rt.stats().compiled), (1, 1));
    }
    let other = constant(br#"{"state":null}"#);
    let oh = Hash::of(&other);
    std::fs::copy(&path, first.cache_path(&oh).unwrap()).unwrap();
    let rt = Runtime::new(Some(cache), small_limits()).unwrap();
    rt.load(&oh, &other).unwrap();
    assert_eq!((rt.stats().disk_rejected, rt.stats().compiled), (1, 1));
    assert_eq!(
        rt.call_step(&oh, b"{}").unwrap().bytes,
        br#"{"state":null}"#
    );
}

#[test]
fn an_unwritable_cache_does_not_stop_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let rt = Runtime::new(Some(blocker), small_limits()).unwrap();
    let h = load(&rt, &echo("null"));
    assert_eq!(rt.stats().disk_write_failed, 1);
    let notes = rt.take_cache_notes();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("cannot cache the compiled module at")),
        "{notes:?}"
    );
    assert!(rt.call_step(&h, b"1").is_ok());
}

#[test]
fn limits_are_checked() {
    let bad = Limits {
        memory_bytes: 100,
        ..Limits::default()
    };
    assert!(Runtime::new(None, bad)
        .unwrap_err()
        .to_string()
        .contains("memory_bytes"));
    let bad = Limits {
        fuel_per_step: 0,
        ..Limits::default()
    };
    assert!(Runtime::new(None, bad).is_err());
    assert!(Runtime::new(None, Limits::default()).is_ok());
}

#[test]
fn the_runtime_is_shared_between_threads() {
    fn is<T: Send + Sync>() {}
    is::<Runtime>();
}

#[test]
fn steps_run_concurrently_beyond_the_pool_size() {
    let rt = small_runtime();
    let h = load(&rt, &echo("null"));
    std::thread::scope(|s| {
        for t in 0..40 {
            let rt = &rt;
            s.spawn(move || {
                for i in 0..20 {
                    let input = format!("[{t},{i}]");
                    let out = rt.call_step(&h, input.as_bytes()).unwrap();
                    assert!(out.bytes.ends_with(format!("{input}}}").as_bytes()));
                }
            });
        }
    });
}
