//! `aos init --air SRC [--module NAME=FILE.wasm]`: the validated AIR becomes the
//! genesis manifest, stored with its defs and modules before `world_created` names it;
//! invalid AIR or a refused module creates nothing.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn orders_air() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/air")
}

/// A module with the reducer ABI's exports and no imports.
const REDUCER_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $p))
  (func (export "step") (param $ptr i32) (param $len i32) (result i64) (i64.const 0)))"#;

fn write_wasm(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, wat::parse_str(wat).expect("valid WAT")).unwrap();
    p
}

#[test]
fn genesis_manifest_is_stored_named_and_pinned() {
    let d = tempfile::tempdir().unwrap();
    let wasm = write_wasm(d.path(), "orders.wasm", REDUCER_WAT);
    let spec = format!("shop/Orders@1={}", wasm.display());
    let air = orders_air();
    let o = aos(
        d.path(),
        &[
            "init",
            "w",
            "--air",
            air.to_str().unwrap(),
            "--module",
            &spec,
            "--format",
            "json",
        ],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let manifest = v["manifest"].as_str().unwrap().to_string();
    // The same hash `aos air hash` computes for the same sources and module.
    let h: Value = serde_json::from_str(&stdout(&aos(
        d.path(),
        &[
            "air",
            "hash",
            air.to_str().unwrap(),
            "--module",
            &spec,
            "--format",
            "json",
        ],
    )))
    .unwrap();
    assert_eq!(h["manifest_hash"], manifest.as_str());
    let root = d.path().join("w");
    let info: Value =
        serde_json::from_str(&stdout(&aos(&root, &["info", "--format", "json"]))).unwrap();
    assert_eq!(info["manifest"], manifest.as_str());
    let m: Value =
        serde_json::from_slice(&aos(&root, &["cat-object", "--raw", &manifest]).stdout).unwrap();
    assert_eq!(m["$kind"], "manifest");
    // Every listed def is stored, and the module's code is in the store under its hash.
    for r in m["modules"]
        .as_array()
        .unwrap()
        .iter()
        .chain(m["schemas"].as_array().unwrap())
    {
        expect_code(&aos(&root, &["cat-object", r["hash"].as_str().unwrap()]), 0);
    }
    let module_hash = format!(
        "blake3:{}",
        blake3::hash(&std::fs::read(&wasm).unwrap()).to_hex()
    );
    assert_eq!(
        aos(&root, &["cat-object", "--raw", &module_hash]).stdout,
        std::fs::read(&wasm).unwrap()
    );
    let genesis: Value =
        serde_json::from_str(stdout(&aos(&root, &["log", "--format", "json"])).trim()).unwrap();
    assert_eq!(genesis["kind"], "world_created");
    assert_eq!(genesis["body"]["manifest"], manifest.as_str());
    expect_code(&aos(&root, &["fsck"]), 0);

    // Removing the manifest object is found by fsck, naming the journal record.
    let path = aos_store::objects::ObjectStore::path_in(
        &root.join(".aos/objects"),
        &manifest.parse().unwrap(),
    );
    std::fs::remove_file(path).unwrap();
    let o = aos(&root, &["fsck"]);
    expect_code(&o, 1);
    assert!(
        stdout(&o).contains("world_created.manifest"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn invalid_air_or_a_refused_module_creates_nothing() {
    let d = tempfile::tempdir().unwrap();
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/air/broken");
    let o = aos(d.path(), &["init", "w", "--air", broken.to_str().unwrap()]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("nothing was created"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/type/record/qty"),
        "every diagnostic is shown: {}",
        stderr(&o)
    );
    assert!(!d.path().join("w/.aos").exists());

    let bad = write_wasm(
        d.path(),
        "bad.wasm",
        r#"(module (import "env" "now" (func)) (memory (export "memory") 1))"#,
    );
    let air = orders_air();
    let o = aos(
        d.path(),
        &[
            "init",
            "w",
            "--air",
            air.to_str().unwrap(),
            "--module",
            &format!("shop/Orders@1={}", bad.display()),
        ],
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("env"),
        "names the import: {}",
        stderr(&o)
    );
    assert!(!d.path().join("w/.aos").exists());

    let good = write_wasm(d.path(), "good.wasm", REDUCER_WAT);
    let o = aos(
        d.path(),
        &[
            "init",
            "w",
            "--module",
            &format!("shop/Orders@1={}", good.display()),
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("--air"), "{}", stderr(&o));
    let o = aos(d.path(), &["init", "w", "--air", air.to_str().unwrap()]);
    expect_code(&o, 0);
    assert!(
        stderr(&o).contains("unfilled_wasm_hash"),
        "warnings are shown: {}",
        stderr(&o)
    );
}
