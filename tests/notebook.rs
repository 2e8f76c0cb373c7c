//! The notebook example (`examples/notebook`) end to end through the real `aos` binary:
//! a keyed reducer (`notes/Notebook@1`, one cell per note id) whose deletes cascade, as a
//! domain event, into a second reducer (`notes/Archive@1`); cells, state now and at a
//! past seq, the why graph in the log, refused events, snapshots and replay.
//!
//! The two modules are built by `scripts/build-reducers.sh`, not here. Each is looked up
//! at `$AOS_NOTEBOOK_WASM` / `$AOS_NOTEBOOK_ARCHIVE_WASM`, else
//! `$CARGO_TARGET_DIR/reducers/`, else the reducers directory of this test's target dir,
//! else the scripts' default target dir (`scripts/env.sh`). A missing module fails the
//! test with a message saying how to build it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{aos, expect_code, reducer_wasm, repo, stderr, stdout};
use serde_json::{json, Value};

const EVENT: &str = "notes/NoteEvent@1";
const ARCHIVED: &str = "notes/NoteArchived@1";
const NOTEBOOK: &str = "notes/Notebook@1";
const ARCHIVE: &str = "notes/Archive@1";

/// A notebook world in a temp dir; returns (tempdir guard, world root).
fn notebook_world() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let air = repo().join("examples/notebook/air");
    let notebook = format!(
        "{NOTEBOOK}={}",
        reducer_wasm("notebook.wasm", "AOS_NOTEBOOK_WASM").display()
    );
    let archive = format!(
        "{ARCHIVE}={}",
        reducer_wasm("notebook-archive.wasm", "AOS_NOTEBOOK_ARCHIVE_WASM").display()
    );
    let o = aos(
        d.path(),
        &[
            "init",
            "w",
            "--air",
            air.to_str().unwrap(),
            "--module",
            &notebook,
            "--module",
            &archive,
            "--format",
            "json",
        ],
    );
    expect_code(&o, 0);
    let v = json_out(&o);
    assert!(
        v["manifest"]
            .as_str()
            .is_some_and(|m| m.starts_with("blake3:")),
        "{v}"
    );
    let root = d.path().join("w");
    (d, root)
}

#[track_caller]
fn json_out(o: &Output) -> Value {
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON value ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// Every line of a `--format json` listing.
#[track_caller]
fn json_lines(o: &Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `aos send EVENT VALUE --format json`, expecting success; returns its report.
#[track_caller]
fn send(root: &Path, value: Value) -> Value {
    let v = value.to_string();
    let o = aos(root, &["send", EVENT, &v, "--format", "json"]);
    expect_code(&o, 0);
    json_out(&o)
}

fn create(id: &str, title: &str) -> Value {
    json!({"$tag": "Create", "$value": {"id": id, "title": title}})
}

fn append(id: &str, text: &str) -> Value {
    json!({"$tag": "Append", "$value": {"id": id, "text": text}})
}

fn delete(id: &str) -> Value {
    json!({"$tag": "Delete", "$value": {"id": id}})
}

/// `aos state REDUCER ARGS… --format json`.
#[track_caller]
fn state(root: &Path, reducer: &str, extra: &[&str]) -> Value {
    let mut args = vec!["state", reducer, "--format", "json"];
    args.extend_from_slice(extra);
    let o = aos(root, &args);
    expect_code(&o, 0);
    json_out(&o)
}

/// The keys `aos cells notes/Notebook@1 ARGS…` lists.
#[track_caller]
fn cell_keys(root: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["cells", NOTEBOOK, "--format", "json"];
    args.extend_from_slice(extra);
    let o = aos(root, &args);
    expect_code(&o, 0);
    json_lines(&o)
        .into_iter()
        .map(|c| c["key"].clone())
        .collect()
}

/// How many records the journal holds.
#[track_caller]
fn journal_len(root: &Path) -> u64 {
    let o = aos(root, &["info", "--format", "json"]);
    expect_code(&o, 0);
    json_out(&o)["records"].as_u64().unwrap()
}

/// The derived records of a send report, as (seq, kind, cause, body).
fn derived(report: &Value) -> Vec<(u64, String, Vec<u64>, Value)> {
    report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["kind"].as_str().unwrap().to_string(),
                r["cause"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .collect(),
                r["body"].clone(),
            )
        })
        .collect()
}

#[test]
fn notes_live_in_cells_and_deletes_cascade_to_the_archive() {
    let (_d, root) = notebook_world();

    // Two notes, each in its own cell.
    let c1 = send(&root, create("n1", "Groceries"));
    let steps = derived(&c1);
    assert_eq!(steps.len(), 1, "{c1}");
    let (created_at, kind, cause, body) = &steps[0];
    assert_eq!(kind, "reducer_stepped");
    assert_eq!(cause, &vec![c1["seq"].as_u64().unwrap()]);
    assert_eq!(body["reducer"], NOTEBOOK);
    assert_eq!(body["key"], "n1");
    let created_at = *created_at;
    send(&root, create("n2", "Plans"));
    send(&root, append("n1", "milk"));
    send(&root, append("n2", "ship the notebook"));
    send(&root, append("n1", "eggs"));
    assert_eq!(cell_keys(&root, &[]), vec![json!("n1"), json!("n2")]);

    let n1 = state(&root, NOTEBOOK, &["--key", r#""n1""#]);
    assert_eq!(n1["key"], "n1");
    assert_eq!(
        n1["state"],
        json!({"title": "Groceries", "body": "milk\neggs", "edits": 2})
    );
    assert!(n1["hash"].as_str().unwrap().starts_with("blake3:"));
    // A keyed reducer needs --key; the archive has no state before any delete.
    expect_code(&aos(&root, &["state", NOTEBOOK]), 2);
    assert_eq!(state(&root, ARCHIVE, &[])["state"], Value::Null);

    // Delete n2: its cell goes, and the archive hears of it in the same cascade.
    let before_delete = journal_len(&root);
    let del = send(&root, delete("n2"));
    let input = del["seq"].as_u64().unwrap();
    assert_eq!(input, before_delete);
    let steps = derived(&del);
    let kinds: Vec<&str> = steps.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(
        kinds,
        ["reducer_stepped", "domain_event", "reducer_stepped"],
        "{del}"
    );
    let (stepped, _, stepped_cause, stepped_body) = &steps[0];
    assert_eq!(stepped_cause, &vec![input]);
    assert_eq!(stepped_body["reducer"], NOTEBOOK);
    assert_eq!(stepped_body["key"], "n2");
    assert_eq!(stepped_body["state"], Value::Null, "a null state deletes");
    let (emitted, _, emitted_cause, emitted_body) = &steps[1];
    assert_eq!(emitted_cause, &vec![*stepped]);
    assert_eq!(emitted_body["schema"], ARCHIVED);
    let (archived, _, archived_cause, archived_body) = &steps[2];
    assert_eq!(archived_cause, &vec![*emitted]);
    assert_eq!(archived_body["reducer"], ARCHIVE);
    assert_eq!(archived_body["event"], *emitted);
    assert!(
        archived_body.get("key").is_none(),
        "the archive is not keyed"
    );

    assert_eq!(cell_keys(&root, &[]), vec![json!("n1")]);
    let gone = state(&root, NOTEBOOK, &["--key", r#""n2""#]);
    assert_eq!(gone["state"], Value::Null);
    assert_eq!(gone["hash"], Value::Null);
    assert_eq!(
        state(&root, ARCHIVE, &[])["state"],
        json!({"count": 1, "recent": ["Plans"]})
    );

    // The log shows the derived domain event and the cause links around it.
    let o = aos(&root, &["log", "--format", "json"]);
    expect_code(&o, 0);
    let log = json_lines(&o);
    let at = |seq: u64| -> &Value {
        log.iter()
            .find(|r| r["seq"].as_u64() == Some(seq))
            .unwrap_or_else(|| panic!("no record {seq} in the log"))
    };
    let root_rec = at(input);
    assert_eq!(root_rec["kind"], "domain_event");
    assert_eq!(root_rec["cause"], json!([]), "an injected event is a root");
    assert_eq!(root_rec["body"]["schema"], EVENT);
    assert_eq!(root_rec["body"]["origin"]["who"], "tester");
    assert_eq!(root_rec["body"]["value"], delete("n2"));
    let ev = at(*emitted);
    assert_eq!(ev["kind"], "domain_event");
    assert_eq!(ev["cause"], json!([stepped]));
    assert_eq!(ev["body"]["schema"], ARCHIVED);
    assert_eq!(ev["body"]["value"], json!({"id": "n2", "title": "Plans"}));
    assert_eq!(
        ev["body"]["emitted_by"],
        json!({"reducer": NOTEBOOK, "key": "n2"})
    );
    assert!(ev["body"].get("origin").is_none(), "derived, not injected");
    assert_eq!(at(*stepped)["cause"], json!([input]));
    assert_eq!(at(*archived)["cause"], json!([emitted]));
    // Derived records carry the input's time.
    for seq in [*stepped, *emitted, *archived] {
        assert_eq!(at(seq)["at_ns"], root_rec["at_ns"]);
    }
    let o = aos(
        &root,
        &["log", "--kind", "domain_event", "--format", "json"],
    );
    let emitted_events: Vec<u64> = json_lines(&o)
        .iter()
        .filter(|r| r["body"]["schema"] == ARCHIVED)
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(emitted_events, vec![*emitted]);

    // A mistyped event is refused with exit 2 and journals nothing.
    let len = journal_len(&root);
    for (schema, bad) in [
        (EVENT, json!({"$tag": "Remove", "$value": {"id": "n1"}})),
        (EVENT, json!({"$tag": "Append", "$value": {"id": "n1"}})),
        (
            EVENT,
            json!({"$tag": "Create", "$value": {"id": 7, "title": "x"}}),
        ),
        (EVENT, json!("n1")),
        (ARCHIVED, json!({"id": "n1"})),
        ("notes/Nope@1", json!({})),
    ] {
        let o = aos(&root, &["send", schema, &bad.to_string()]);
        expect_code(&o, 2);
        assert!(stderr(&o).contains("aos: error"), "{}", stderr(&o));
        assert_eq!(
            journal_len(&root),
            len,
            "{schema} {bad} journaled something"
        );
    }
    let o = aos(&root, &["send", EVENT, "{not json"]);
    expect_code(&o, 2);
    assert_eq!(journal_len(&root), len);
    assert_eq!(
        state(&root, NOTEBOOK, &["--key", "n1"])["state"]["edits"],
        2,
        "the state is unchanged"
    );

    // State as of an older seq: n1 right after it was created, before any append.
    let old = state(
        &root,
        NOTEBOOK,
        &["--key", r#""n1""#, "--at", &created_at.to_string()],
    );
    assert_eq!(old["at"], created_at);
    assert_eq!(
        old["state"],
        json!({"title": "Groceries", "body": "", "edits": 0})
    );
    // Inside the delete's cascade: n2's cell still exists at the input, is gone after the
    // notebook's step, and the archive is still empty until its own step.
    let at_input = input.to_string();
    assert_eq!(
        cell_keys(&root, &["--at", &at_input]),
        vec![json!("n1"), json!("n2")]
    );
    assert_eq!(
        cell_keys(&root, &["--at", &stepped.to_string()]),
        vec![json!("n1")]
    );
    assert_eq!(
        state(&root, ARCHIVE, &["--at", &emitted.to_string()])["state"],
        Value::Null
    );
    assert_eq!(
        state(&root, ARCHIVE, &["--at", &archived.to_string()])["state"]["count"],
        1
    );
    let o = aos(&root, &["state", ARCHIVE, "--at", &(len + 10).to_string()]);
    expect_code(&o, 2);

    // Snapshot, keep going, then replay from genesis checking every derived record.
    let o = aos(&root, &["snapshot", "--format", "json"]);
    expect_code(&o, 0);
    let snap = json_out(&o);
    assert_eq!(snap["seq"], len);
    send(&root, create("n3", "Ideas"));
    send(&root, append("n3", "a cell per note"));
    send(&root, delete("n1"));
    send(&root, delete("n3"));
    assert_eq!(cell_keys(&root, &[]), Vec::<Value>::new());
    assert_eq!(
        state(&root, ARCHIVE, &[])["state"],
        json!({"count": 3, "recent": ["Plans", "Groceries", "Ideas"]})
    );

    let o = aos(&root, &["replay", "--verify"]);
    expect_code(&o, 0);
    let o = aos(&root, &["replay", "--verify", "--format", "json"]);
    expect_code(&o, 0);
    let verified = json_out(&o);
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["snapshots_checked"], 1);
    let o = aos(&root, &["replay", "--from-genesis", "--format", "json"]);
    expect_code(&o, 0);
    let replayed = json_out(&o);
    assert_eq!(replayed["ok"], true, "{replayed}");
    assert_eq!(replayed["from"], "genesis");
    assert_eq!(replayed["records"], journal_len(&root));
    assert_eq!(replayed["pending"], 0);
    assert_eq!(replayed["state"], verified["state"]);
    assert!(
        replayed["derived_checked"].as_u64().unwrap() > 10,
        "{replayed}"
    );
    // From the snapshot, the same state.
    let o = aos(&root, &["replay", "--format", "json"]);
    expect_code(&o, 0);
    let from_snap = json_out(&o);
    assert_eq!(from_snap["from"], format!("the snapshot at seq {len}"));
    assert_eq!(from_snap["state"], replayed["state"]);
    expect_code(&aos(&root, &["fsck"]), 0);
}

#[test]
fn appends_and_deletes_of_missing_notes_change_nothing() {
    let (_d, root) = notebook_world();
    let r = send(&root, append("ghost", "boo"));
    let steps = derived(&r);
    assert_eq!(steps.len(), 1, "{r}");
    assert_eq!(steps[0].1, "reducer_stepped");
    assert_eq!(steps[0].3["state"], Value::Null, "the cell stays absent");
    assert_eq!(cell_keys(&root, &[]), Vec::<Value>::new());

    let r = send(&root, delete("ghost"));
    let kinds: Vec<String> = derived(&r).into_iter().map(|s| s.1).collect();
    assert_eq!(
        kinds,
        ["reducer_stepped"],
        "no archive event for a missing note"
    );
    assert_eq!(state(&root, ARCHIVE, &[])["state"], Value::Null);

    // A second Create keeps the note as it is.
    send(&root, create("n1", "First"));
    send(&root, append("n1", "kept"));
    send(&root, create("n1", "Second"));
    assert_eq!(
        state(&root, NOTEBOOK, &["--key", "n1"])["state"],
        json!({"title": "First", "body": "kept", "edits": 1})
    );
    expect_code(&aos(&root, &["replay", "--from-genesis"]), 0);
}
