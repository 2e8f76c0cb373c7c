//! The CI recipe of the README (`scripts/ci-shadow.sh`: air diff, fork a checked-in
//! world, propose, shadow --replay-all --format json, fail on exit 1) run for real, and
//! golden tests that keep the shape of the governance commands' JSON output stable.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::loopback::Server;
use common::{aos, expect_code, repo, stdout};
use serde_json::{json, Map, Value};

/// A loopback server for the example's requests; its URL base and the server.
fn serve() -> (String, Server) {
    let s = Server::start();
    (s.url(""), s)
}

fn example(dir: &str) -> PathBuf {
    repo().join("examples/safe-upgrade").join(dir)
}

/// A safe-upgrade world with one recorded request, as a repository would check it in.
fn checked_in_world(base: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("world");
    let air = example("air");
    expect_code(
        &aos(d.path(), &["init", "world", "--air", air.to_str().unwrap()]),
        0,
    );
    let ev = json!({"primary": format!("{base}/primary/a"), "mirror": format!("{base}/mirror/a")});
    expect_code(
        &aos(&root, &["send", "demo/SyncRequest@1", &ev.to_string()]),
        0,
    );
    (d, root)
}

fn recipe(world: &Path, extra: &str, report: &Path) -> std::process::Output {
    Command::new("bash")
        .arg(repo().join("scripts/ci-shadow.sh"))
        .arg(world)
        .arg(example("upgrade"))
        .arg(example("air"))
        .env("AOS", common::aos_bin())
        .env("SHADOW_REPORT", report)
        .env("SHADOW_ARGS", extra)
        .env("USER", "ci")
        .output()
        .unwrap()
}

#[test]
fn the_ci_recipe_fails_on_unaccepted_divergence_and_never_touches_the_checked_in_world() {
    let (base, seen) = serve();
    let (d, world) = checked_in_world(&base);
    assert_eq!(seen.paths().len(), 1, "one request before CI");
    let journal_before = std::fs::read(world.join(".aos/journal")).unwrap();
    let report = d.path().join("report.json");

    // The upgrade changes what the recorded input does: a divergence, exit 1.
    let o = recipe(&world, "", &report);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("aos air diff"), "{}", stdout(&o));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["mode"], "replay_all");
    let divs = r["divergences"].as_array().unwrap();
    assert!(!divs.is_empty());
    assert!(divs.iter().all(|d| d["accepted"] == false));
    assert_eq!(divs[0]["seq"], 1, "the recorded SyncRequest diverges");
    // Both requests are predicted under their grants, none sent.
    let grants: Vec<&str> = r["effects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["grant"].as_str().unwrap())
        .collect();
    assert_eq!(grants, ["http_primary", "http_mirror"]);
    assert!(r["effects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["allowed"] == true && e["dispatched"] == false));
    assert_eq!(seen.paths().len(), 1, "the rehearsal sent nothing");

    // Accepted as intended: exit 0.
    let o = recipe(&world, "--accept-divergences", &report);
    expect_code(&o, 0);
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], true);

    // The checked-in world was only read.
    assert_eq!(
        std::fs::read(world.join(".aos/journal")).unwrap(),
        journal_before
    );
    assert_eq!(seen.paths().len(), 1);
}

#[test]
fn the_ci_recipe_exits_2_on_air_that_does_not_validate() {
    let (base, _seen) = serve();
    let (d, world) = checked_in_world(&base);
    let bad = d.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    for f in ["schemas.air.json", "policy.air.json", "plan.air.json"] {
        std::fs::copy(example("upgrade").join(f), bad.join(f)).unwrap();
    }
    // The manifest names a plan that does not exist.
    let mut m: Value = serde_json::from_slice(
        &std::fs::read(example("upgrade").join("manifest.air.json")).unwrap(),
    )
    .unwrap();
    m["plans"] = json!([{"name": "demo/sync_plan@9"}]);
    std::fs::write(bad.join("manifest.air.json"), m.to_string()).unwrap();
    let o = Command::new("bash")
        .arg(repo().join("scripts/ci-shadow.sh"))
        .arg(&world)
        .arg(&bad)
        .env("AOS", common::aos_bin())
        .env("SHADOW_REPORT", d.path().join("r.json"))
        .output()
        .unwrap();
    expect_code(&o, 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("demo/sync_plan@9"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The shape of a JSON value: objects keep their keys, scalars become their type, a list
/// the union shape of its items.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => {
            let mut merged: Option<Value> = None;
            for i in items {
                let s = shape(i);
                merged = Some(match merged {
                    Some(Value::Object(mut a)) => {
                        if let Value::Object(b) = s {
                            for (k, v) in b {
                                a.entry(k).or_insert(v);
                            }
                        }
                        Value::Object(a)
                    }
                    _ => s,
                });
            }
            Value::Array(merged.into_iter().collect())
        }
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.clone(), shape(v));
            }
            Value::Object(m)
        }
    }
}

/// Compare with `tests/golden/NAME.json`; `AOS_UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, v: &Value) {
    let path = repo().join("tests/golden").join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(&shape(v)).unwrap() + "\n";
    if std::env::var_os("AOS_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        want,
        text,
        "the --format json shape of {name} changed; if intended, run AOS_UPDATE_GOLDEN=1 cargo test -p aos-cli --test ci_recipe and review tests/golden/{name}.json"
    );
}

fn json_of(root: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let o = aos(root, &all);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(stdout(&o).trim()).unwrap()
}

#[test]
fn governance_json_output_keeps_its_shape() {
    let (base, _seen) = serve();
    let (d, root) = checked_in_world(&base);
    let up = example("upgrade");
    golden(
        "propose",
        &json_of(&root, &["propose", up.to_str().unwrap(), "-m", "mirror"]),
    );
    let events = d.path().join("ev.jsonl");
    let ev = json!({"schema": "demo/SyncRequest@1", "value": {"primary": format!("{base}/primary/b"), "mirror": format!("{base}/mirror/b")}});
    std::fs::write(&events, format!("{ev}\n")).unwrap();
    golden(
        "shadow-events",
        &json_of(
            &root,
            &["shadow", "1", "--events", events.to_str().unwrap()],
        ),
    );
    golden(
        "shadow-replay",
        &json_of(
            &root,
            &["shadow", "1", "--replay-all", "--accept-divergences"],
        ),
    );
    golden(
        "approve",
        &json_of(&root, &["approve", "1", "--as", "alice"]),
    );
    golden(
        "proposals-show",
        &json_of(&root, &["proposals", "show", "1"]),
    );
    golden("apply", &json_of(&root, &["apply", "1"]));
    golden("proposals-ls", &json_of(&root, &["proposals", "ls"]));
}
