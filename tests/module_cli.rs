//! End-to-end tests of `aos module add` through the real binary: a good module is stored
//! byte for byte under the hash it prints and its compiled form is cached; invalid WASM,
//! forbidden imports and a missing ABI are refused with exit 2, the reason, and nothing
//! stored.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// A minimal reducer: a bump allocator and a `step` returning `{"state":null}`.
const GOOD: &str = r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 0) "{\"state\":null}")
  (func (export "alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (local.get $p))
  (func (export "step") (param i32 i32) (result i64)
    (i64.const 14)))"#;

fn write_wasm(dir: &Path, name: &str, wat: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, wat::parse_str(wat).expect("test WAT")).expect("write wasm");
    p
}

fn object_count(root: &Path) -> usize {
    tree_bytes(&root.join(".aos/objects"))
        .iter()
        .filter(|(p, _)| {
            p.parent()
                .and_then(|d| d.file_name())
                .is_some_and(|n| n.len() == 2)
        })
        .count()
}

#[test]
fn add_stores_the_module_and_prints_its_hash() {
    let (d, root) = world();
    let file = write_wasm(d.path(), "good.wasm", GOOD);
    let o = aos(&root, &["module", "add", file.to_str().unwrap()]);
    expect_code(&o, 0);
    let hash = stdout(&o).trim().to_string();
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(hash, format!("blake3:{}", blake3::hash(&bytes).to_hex()));
    let cat = aos(&root, &["cat-object", "--raw", &hash]);
    expect_code(&cat, 0);
    assert_eq!(
        cat.stdout, bytes,
        "cat-object --raw returns the module byte for byte"
    );
    // The compiled form was cached under .aos/cache/wasm/.
    let cached = tree_bytes(&root.join(".aos/cache/wasm"));
    assert!(
        cached.iter().any(|(p, _)| p
            .to_string_lossy()
            .ends_with(&format!("{}.cwasm", &hash[7..]))),
        "{cached:?}"
    );

    // Again, as JSON: same hash, compiled form reused.
    let o = aos(
        &root,
        &["module", "add", file.to_str().unwrap(), "--format", "json"],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["hash"], hash.as_str());
    assert_eq!(v["bytes"], bytes.len());
    assert_eq!(v["cache"], "already_cached");
}

#[test]
fn bad_modules_exit_2_with_the_reason_and_store_nothing() {
    let (d, root) = world();
    let before = object_count(&root);
    let importing = GOOD.replacen(
        "(module",
        r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        1,
    );
    let no_step = GOOD.replace(r#"(export "step")"#, "");
    let cases = [
        (
            write_wasm(d.path(), "imports.wasm", &importing),
            "imports wasi_snapshot_preview1::fd_write (function), which the kernel does not provide",
        ),
        (
            write_wasm(d.path(), "nostep.wasm", &no_step),
            "export `step` is missing (it must be step(ptr: i32, len: i32) -> i64)",
        ),
        (
            {
                let p = d.path().join("text.wasm");
                std::fs::write(&p, GOOD).unwrap();
                p
            },
            "this is WAT text",
        ),
        (
            {
                let p = d.path().join("junk.wasm");
                std::fs::write(&p, b"\0asm\x01\0\0\0\x05junk").unwrap();
                p
            },
            "invalid WebAssembly",
        ),
    ];
    for (file, reason) in cases {
        let o = aos(&root, &["module", "add", file.to_str().unwrap()]);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert!(err.contains(reason), "{}: {err}", file.display());
        assert!(
            err.contains(&file.display().to_string()),
            "names the file: {err}"
        );
        assert!(stdout(&o).is_empty());
    }
    assert_eq!(object_count(&root), before, "nothing was stored");
    let o = aos(&root, &["module", "add", "missing.wasm"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("missing.wasm: no such file"));
}
