//! End-to-end tests of `aos air check|fmt|hash|diff|patch` on plain files, including
//! the original project's corpus (beside the repository in `../shared/air-corpus`, or at
//! `$AOS_AIR_CORPUS`) and git's external-diff calling convention.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/air")
}

fn corpus() -> PathBuf {
    if let Some(p) = std::env::var_os("AOS_AIR_CORPUS") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/air-corpus");
    assert!(
        p.is_dir(),
        "the AIR corpus is expected at {} (or set AOS_AIR_CORPUS)",
        p.display()
    );
    p
}

fn run(args: &[&str]) -> std::process::Output {
    aos(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn json_out(o: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn check_accepts_a_good_set_and_warns_about_unfilled_modules() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/air");
    let o = run(&["air", "check", good.to_str().unwrap(), "--format", "json"]);
    expect_code(&o, 0);
    let v = json_out(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["errors"], 0);
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["diagnostics"][0]["code"], "unfilled_wasm_hash");
    assert!(v["manifest_hash"].as_str().unwrap().starts_with("blake3:"));
}

#[test]
fn check_reports_every_error_with_file_def_and_pointer_and_no_cascades() {
    let broken = fixtures().join("broken");
    let o = run(&["air", "check", broken.to_str().unwrap(), "--format", "json"]);
    expect_code(&o, 1);
    let v = json_out(&o);
    let errors: Vec<(String, String, String)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            (
                d["code"].as_str().unwrap().into(),
                d["def"].as_str().unwrap_or("").into(),
                d["pointer"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        errors.contains(&(
            "bad_type".into(),
            "shop/Order@1".into(),
            "/type/record/qty".into()
        )),
        "{errors:?}"
    );
    assert!(
        errors.contains(&(
            "unknown_schema".into(),
            "shop/Orders@1".into(),
            "/abi/reducer/state".into()
        )),
        "{errors:?}"
    );
    // The unparseable schema is reported once, where it is defined.
    assert_eq!(errors.len(), 2, "{errors:?}");
    let text = stderr(&run(&["air", "check", broken.to_str().unwrap()]));
    assert!(
        text.contains("all.air.json: shop/Order@1: at /type/record/qty"),
        "{text}"
    );
    assert!(text.contains("expected:"), "{text}");
}

#[test]
fn module_flag_fills_the_wasm_hash_and_changes_the_manifest_hash() {
    let d = tempfile::tempdir().unwrap();
    let wasm = d.path().join("orders.wasm");
    std::fs::write(&wasm, b"\0asm\x01\0\0\0").unwrap();
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/air");
    let plain = json_out(&run(&[
        "air",
        "hash",
        good.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let spec = format!("shop/Orders@1={}", wasm.display());
    let o = run(&[
        "air",
        "check",
        good.to_str().unwrap(),
        "--module",
        &spec,
        "--format",
        "json",
    ]);
    expect_code(&o, 0);
    let v = json_out(&o);
    assert_eq!(v["warnings"], 0, "{v}");
    assert_ne!(
        v["manifest_hash"], plain["manifest_hash"],
        "the manifest hash pins the module's code"
    );
    let not_wasm = d.path().join("x.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let o = run(&[
        "air",
        "check",
        good.to_str().unwrap(),
        "--module",
        &format!("shop/Orders@1={}", not_wasm.display()),
    ]);
    expect_code(&o, 2);
    let o = run(&[
        "air",
        "check",
        good.to_str().unwrap(),
        "--module",
        &format!("shop/Nope@1={}", wasm.display()),
    ]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("shop/Nope@1"), "{}", stderr(&o));
}

#[test]
fn every_corpus_example_checks_except_the_known_bad_one() {
    for entry in std::fs::read_dir(corpus().join("examples")).unwrap() {
        let ex = entry.unwrap().path();
        for sub in std::fs::read_dir(&ex).unwrap() {
            let dir = sub.unwrap().path();
            if !dir
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("air")
            {
                continue;
            }
            let o = run(&["air", "check", dir.to_str().unwrap(), "--format", "json"]);
            let v = json_out(&o);
            if ex.ends_with("09-worldfs-lab") {
                // Its plan emits blob.put, which the corpus's own catalog scopes to reducers.
                expect_code(&o, 1);
                assert_eq!(v["errors"], 1);
                assert_eq!(
                    v["diagnostics"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|d| d["severity"] == "error")
                        .unwrap()["code"],
                    "effect_scope"
                );
            } else {
                expect_code(&o, 0);
            }
        }
    }
}

#[test]
fn hash_is_stable_and_independent_of_formatting_and_key_order() {
    let d = tempfile::tempdir().unwrap();
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orders/air");
    for f in std::fs::read_dir(&good).unwrap() {
        let f = f.unwrap().path();
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        // Compact, keys in serde_json's (sorted) order: different bytes, same content.
        std::fs::write(
            d.path().join(f.file_name().unwrap()),
            serde_json::to_vec(&v).unwrap(),
        )
        .unwrap();
    }
    let a = json_out(&run(&[
        "air",
        "hash",
        good.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let b = json_out(&run(&[
        "air",
        "hash",
        d.path().to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(a["manifest_hash"], b["manifest_hash"]);
    assert_eq!(a["defs"], b["defs"]);
    let text = stdout(&run(&["air", "hash", good.to_str().unwrap()]));
    assert!(
        text.lines().next().unwrap().ends_with("  manifest"),
        "{text}"
    );
}

#[test]
fn fmt_check_then_write_then_clean() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("m.air.json");
    std::fs::write(
        &f,
        br#"{"name":"shop/X@1","type":{"nat":{}},"$kind":"defschema"}"#,
    )
    .unwrap();
    let o = run(&["air", "fmt", "--check", d.path().to_str().unwrap()]);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("would reformat"), "{}", stdout(&o));
    expect_code(&run(&["air", "fmt", d.path().to_str().unwrap()]), 0);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.starts_with("{\n  \"$kind\": \"defschema\",\n  \"name\": \"shop/X@1\""),
        "{text}"
    );
    expect_code(
        &run(&["air", "fmt", "--check", d.path().to_str().unwrap()]),
        0,
    );
    std::fs::write(&f, b"{ not json").unwrap();
    let o = run(&["air", "fmt", "--check", f.to_str().unwrap()]);
    expect_code(&o, 1);
    assert_eq!(
        std::fs::read(&f).unwrap(),
        b"{ not json",
        "a file that does not parse is never rewritten"
    );
}

#[test]
fn diff_names_the_changed_defs_and_works_as_a_git_external_diff() {
    let up = corpus().join("examples/06-safe-upgrade");
    let (v1, v2) = (up.join("air.v1"), up.join("air.v2"));
    let o = run(&[
        "air",
        "diff",
        v1.to_str().unwrap(),
        v2.to_str().unwrap(),
        "--format",
        "json",
    ]);
    expect_code(&o, 0);
    let v = json_out(&o);
    let names = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut added = names("added");
    added.sort();
    assert_eq!(
        added,
        vec![
            "demo/fetch_plan@2",
            "demo/http-policy@2",
            "demo/http_followup_cap@1"
        ]
    );
    let mut removed = names("removed");
    removed.sort();
    assert_eq!(removed, vec!["demo/fetch_plan@1", "demo/http-policy@1"]);
    assert_eq!(v["manifest_changed"], true);
    let text = stdout(&run(&[
        "air",
        "diff",
        v1.to_str().unwrap(),
        v2.to_str().unwrap(),
        "--color",
        "never",
    ]));
    assert!(text.contains("+++ new defplan demo/fetch_plan@2"), "{text}");
    assert!(!text.contains("\u{1b}["), "no colour when asked");
    // git diff's external-diff arguments: path old-file old-hex old-mode new-file new-hex new-mode
    let a = v1.join("policies.air.json");
    let b = v2.join("policies.air.json");
    let o = run(&[
        "air",
        "diff",
        "policies.air.json",
        a.to_str().unwrap(),
        "0000000",
        "100644",
        b.to_str().unwrap(),
        "1111111",
        "100644",
    ]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("demo/http-policy@2"), "{}", stdout(&o));
    expect_code(&run(&["air", "diff", "only-one"]), 2);
}

#[test]
fn patch_emits_a_document_based_on_the_old_manifest() {
    let up = corpus().join("examples/06-safe-upgrade");
    let (v1, v2) = (up.join("air.v1"), up.join("air.v2"));
    let o = run(&[
        "air",
        "patch",
        v1.to_str().unwrap(),
        v2.to_str().unwrap(),
        "--format",
        "json",
    ]);
    expect_code(&o, 0);
    let p = json_out(&o);
    let h1 = json_out(&run(&[
        "air",
        "hash",
        v1.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(p["base_manifest_hash"], h1["manifest_hash"]);
    let ops: Vec<String> = p["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op.as_object().unwrap().keys().next().unwrap().clone())
        .collect();
    assert!(
        ops.contains(&"add_def".to_string()) && ops.contains(&"remove_def".to_string()),
        "{ops:?}"
    );
}
