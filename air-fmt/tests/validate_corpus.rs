//! Every example world of the original project's AIR corpus (beside the repository in
//! `../shared/air-corpus`, or at `$AOS_AIR_CORPUS`) loads and validates without
//! errors — except where the example itself is inconsistent with AIR v1, which is
//! listed in `KNOWN` with the reason and asserted exactly.

mod common;
use common::corpus;

use std::path::{Path, PathBuf};

use air_fmt::load::{load, Source};
use air_fmt::validate::validate;
use air_fmt::Diagnostic;

/// Every `examples/*/air*/` directory, sorted.
fn example_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let examples = corpus().join("examples");
    for e in std::fs::read_dir(&examples)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", examples.display()))
    {
        let example = e.unwrap().path();
        if !example.is_dir() {
            continue;
        }
        for a in std::fs::read_dir(&example).unwrap() {
            let p = a.unwrap().path();
            if p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("air"))
            {
                dirs.push(p);
            }
        }
    }
    dirs.sort();
    dirs
}

fn sources(dir: &Path) -> Vec<Source> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".air.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| Source {
            name: f.file_name().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&f).unwrap(),
        })
        .collect()
}

/// Known inconsistencies of corpus examples: (example dir relative to `examples/`,
/// code, file, def, pointer).
///
/// `09-worldfs-lab`: its plan `notes/SnapshotPlan@1` emits `blob.put`, but the built-in
/// `sys/blob.put@1` (in the corpus's own `spec/defs/builtin-effects.air.json`) has
/// `origin_scope: "reducer"` — "which emitters may use this effect in v1" per the
/// defeffect schema — so AIR v1 forbids a plan to emit it. The example is wrong, not
/// the check: blob.* are reducer micro-effects (DESIGN §4).
const KNOWN: &[(&str, &str, &str, &str, &str)] = &[(
    "09-worldfs-lab/air",
    "effect_scope",
    "plans.air.json",
    "notes/SnapshotPlan@1",
    "/steps/0/kind",
)];

fn show(d: &[&Diagnostic]) -> String {
    d.iter()
        .map(|x| format!("  {x}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_example_validates() {
    let dirs = example_dirs();
    assert!(
        dirs.len() >= 11,
        "found only {} example directories",
        dirs.len()
    );
    let examples = corpus().join("examples");
    let mut problems = Vec::new();
    let mut passed = Vec::new();
    for dir in &dirs {
        let rel = dir
            .strip_prefix(&examples)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (set, load_diags) = load(&sources(dir));
        assert!(
            load_diags.is_empty(),
            "{rel}: load diagnostics:\n{}",
            show(&load_diags.iter().collect::<Vec<_>>())
        );
        let diags = validate(&set);
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        for d in &diags {
            assert!(d.file.is_some(), "{rel}: a diagnostic without a file: {d}");
        }
        let known: Vec<_> = KNOWN.iter().filter(|k| k.0 == rel).collect();
        let got: Vec<(&str, &str, &str, &str)> = errors
            .iter()
            .map(|d| {
                (
                    d.code,
                    d.file.as_deref().unwrap_or(""),
                    d.def.as_deref().unwrap_or(""),
                    d.pointer.as_str(),
                )
            })
            .collect();
        let want: Vec<(&str, &str, &str, &str)> =
            known.iter().map(|k| (k.1, k.2, k.3, k.4)).collect();
        if got != want {
            problems.push(format!(
                "{rel}: expected errors {want:?}, got:\n{}",
                show(&errors)
            ));
        } else if known.is_empty() {
            passed.push(rel);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(passed.len() >= 10, "{passed:?}");
}

/// Warnings besides `unfilled_wasm_hash` (the corpus leaves wasm hashes for the tools
/// to fill): (example dir, code, file, def, pointer).
///
/// `06-safe-upgrade/air.v2`: its policy still allows `demo/fetch_plan@1`, which the
/// upgraded set replaces by `@2`, so that runs of `@1` in flight during the upgrade can
/// finish. That is deliberate, so a rule naming another version of a defined plan is a
/// warning, not an error.
const KNOWN_WARNINGS: &[(&str, &str, &str, &str, &str)] = &[(
    "06-safe-upgrade/air.v2",
    "unknown_origin",
    "policies.air.json",
    "demo/http-policy@2",
    "/rules/1/when/origin_name",
)];

#[test]
fn corpus_warnings_are_only_the_expected_ones() {
    let examples = corpus().join("examples");
    for dir in example_dirs() {
        let rel = dir
            .strip_prefix(&examples)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (set, _) = load(&sources(&dir));
        let diags = validate(&set);
        let mut others = Vec::new();
        for d in diags.iter().filter(|d| !d.is_error()) {
            if d.code == "unfilled_wasm_hash" {
                assert_eq!(d.pointer, "/wasm_hash", "{rel}: {d}");
                let def = d.def.as_deref().unwrap_or("");
                assert!(
                    set.defs.keys().any(|(_, n)| n.as_str() == def),
                    "{rel}: {d}"
                );
                continue;
            }
            others.push((
                d.code,
                d.file.as_deref().unwrap_or(""),
                d.def.as_deref().unwrap_or(""),
                d.pointer.as_str(),
            ));
        }
        let want: Vec<_> = KNOWN_WARNINGS
            .iter()
            .filter(|k| k.0 == rel)
            .map(|k| (k.1, k.2, k.3, k.4))
            .collect();
        assert_eq!(others, want, "{rel}");
    }
}
