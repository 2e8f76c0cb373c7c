//! End-to-end tests of the stepping commands on the counter example: `aos send`, `run`,
//! `state`, `cells`, `snapshot`, `replay`, through the real binary. The counter module
//! is built by `scripts/build-reducers.sh`; a missing module fails the test.

mod common;

use std::path::{Path, PathBuf};

use common::{aos, counter_wasm, expect_code, repo, stderr, stdout};
use serde_json::{json, Value};

const EVENT: &str = "demo/CounterEvent@1";
const REDUCER: &str = "demo/CounterSM@1";
const START3: &str = r#"{"$tag":"Start","$value":{"target":3}}"#;
const TICK: &str = r#"{"$tag":"Tick"}"#;

/// A counter world in a temp dir.
fn counter_world(extra: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let air = repo().join("examples/counter/air");
    let module = format!("{REDUCER}={}", counter_wasm().display());
    let mut args = vec![
        "init",
        "w",
        "--air",
        air.to_str().unwrap(),
        "--module",
        &module,
    ];
    args.extend_from_slice(extra);
    let o = aos(d.path(), &args);
    expect_code(&o, 0);
    let root = d.path().join("w");
    (d, root)
}

fn json_out(o: &std::process::Output) -> Value {
    serde_json::from_str(stdout(o).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn state(root: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json", "state", REDUCER];
    args.extend_from_slice(extra);
    let o = aos(root, &args);
    expect_code(&o, 0);
    json_out(&o)["state"].clone()
}

fn journal_len(root: &Path) -> usize {
    std::fs::read_to_string(root.join(".aos/journal"))
        .unwrap()
        .lines()
        .count()
}

#[test]
fn send_steps_the_reducer_and_state_shows_it() {
    let (_d, root) = counter_world(&[]);
    let o = aos(&root, &["send", EVENT, START3]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("seq 1 journaled"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("seq 2 reducer_stepped demo/CounterSM@1"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        state(&root, &[]),
        json!({"pc": {"$tag": "Counting"}, "remaining": 3})
    );

    let o = aos(&root, &["--format", "json", "send", EVENT, TICK]);
    expect_code(&o, 0);
    let v = json_out(&o);
    assert_eq!(v["seq"], 3);
    assert_eq!(v["records"][0]["seq"], 4);
    assert_eq!(v["records"][0]["kind"], "reducer_stepped");
    assert_eq!(v["records"][0]["cause"], json!([3]));
    assert_eq!(v["records"][0]["body"]["event"], 3);
    assert_eq!(
        state(&root, &[]),
        json!({"pc": {"$tag": "Counting"}, "remaining": 2})
    );

    // The record's state hash is the hash of the canonical state bytes.
    let o = aos(&root, &["--format", "json", "state", REDUCER]);
    let hash = json_out(&o)["hash"].as_str().unwrap().to_string();
    assert_eq!(v["records"][0]["body"]["state"], hash.as_str());
    let canonical =
        serde_json::to_vec(&json!({"pc": {"$tag": "Counting"}, "remaining": 2})).unwrap();
    assert_eq!(
        hash,
        format!("blake3:{}", blake3::hash(&canonical).to_hex())
    );

    // Stdin and @FILE carry the value too; the state reaches Done at 0.
    let file = root.join("tick.json");
    std::fs::write(&file, TICK).unwrap();
    expect_code(
        &aos(&root, &["send", EVENT, &format!("@{}", file.display())]),
        0,
    );
    let mut child = std::process::Command::new(common::aos_bin())
        .args(["send", EVENT, "-"])
        .current_dir(&root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(TICK.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        state(&root, &[]),
        json!({"pc": {"$tag": "Done"}, "remaining": 0})
    );
}

#[test]
fn refused_events_exit_2_and_journal_nothing() {
    let (_d, root) = counter_world(&[]);
    expect_code(&aos(&root, &["send", EVENT, START3]), 0);
    let before = journal_len(&root);
    let cases: &[(&[&str], &str)] = &[
        (&["send", EVENT, r#"{"$tag":"Tock"}"#], "unknown arm `Tock`"),
        (
            &["send", EVENT, r#"{"$tag":"Start","$value":{"target":-1}}"#],
            "/$value/target",
        ),
        (&["send", EVENT, "{not json"], "not JSON"),
        (
            &["send", "demo/Nope@1", TICK],
            "not in the world's manifest",
        ),
        (&["send", "not a name", TICK], "SCHEMA"),
        (&["send", EVENT, TICK, "--key", "k"], "no keyed reducer"),
        (
            &["send", EVENT, "@/nonexistent/file.json"],
            "cannot read VALUE",
        ),
    ];
    for (args, needle) in cases {
        let o = aos(&root, args);
        expect_code(&o, 2);
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        journal_len(&root),
        before,
        "a refused event changed the journal"
    );
    assert_eq!(
        state(&root, &[]),
        json!({"pc": {"$tag": "Counting"}, "remaining": 3})
    );
}

#[test]
fn state_at_a_past_seq_and_bad_state_queries() {
    let (_d, root) = counter_world(&[]);
    for v in [START3, TICK, TICK] {
        expect_code(&aos(&root, &["send", EVENT, v]), 0);
    }
    // seq 1 Start, 2 stepped, 3 Tick, 4 stepped, 5 Tick, 6 stepped.
    assert_eq!(state(&root, &["--at", "0"]), Value::Null);
    assert_eq!(
        state(&root, &["--at", "1"]),
        Value::Null,
        "the event, before its step"
    );
    assert_eq!(state(&root, &["--at", "2"])["remaining"], 3);
    assert_eq!(state(&root, &["--at", "4"])["remaining"], 2);
    assert_eq!(state(&root, &[])["remaining"], 1);

    let o = aos(&root, &["state", REDUCER, "--at", "99"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("ends at seq 6"), "{}", stderr(&o));
    let o = aos(&root, &["state", "demo/Other@1"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("demo/CounterSM@1"),
        "lists the reducers: {}",
        stderr(&o)
    );
    let o = aos(&root, &["state", REDUCER, "--key", "k"]);
    expect_code(&o, 2);
    let o = aos(&root, &["cells", REDUCER]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("not keyed"), "{}", stderr(&o));
}

#[test]
fn a_world_without_a_manifest_refuses_events() {
    let (_d, root) = common::world();
    let o = aos(&root, &["send", EVENT, TICK]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("no manifest"), "{}", stderr(&o));
    expect_code(&aos(&root, &["replay", "--verify"]), 0);
}

#[test]
fn run_feeds_a_stream_in_batches_and_stops_at_a_bad_line() {
    let (_d, root) = counter_world(&[]);
    let mut lines = vec![
        json!({"schema": EVENT, "value": {"$tag": "Start", "$value": {"target": 100}}}).to_string(),
    ];
    lines.extend((0..9).map(|_| json!({"schema": EVENT, "value": {"$tag": "Tick"}}).to_string()));
    let good = root.join("good.jsonl");
    std::fs::write(&good, lines.join("\n") + "\n").unwrap();
    let o = aos(
        &root,
        &[
            "--format",
            "json",
            "run",
            "--events",
            good.to_str().unwrap(),
            "--batch",
            "4",
        ],
    );
    expect_code(&o, 0);
    let acks: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        acks.iter()
            .map(|a| a["acked"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [4, 8, 10]
    );
    assert_eq!(state(&root, &[])["remaining"], 91);

    // Line 6 is mistyped: the first batch (lines 1-4) is journaled, nothing after.
    let mut bad = lines.clone();
    bad[5] = json!({"schema": EVENT, "value": {"$tag": "Tack"}}).to_string();
    let badf = root.join("bad.jsonl");
    std::fs::write(&badf, bad.join("\n") + "\n").unwrap();
    let o = aos(
        &root,
        &["run", "--events", badf.to_str().unwrap(), "--batch", "4"],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("line 6"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("4 events before it were"),
        "{}",
        stderr(&o)
    );
    // 4 more journaled: a Start (back to 100) and 3 ticks.
    assert_eq!(state(&root, &[])["remaining"], 97);

    let o = aos(&root, &["run", "--until-idle"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("idle at seq"), "{}", stdout(&o));
    expect_code(&aos(&root, &["replay", "--verify"]), 0);
}

#[test]
fn snapshots_bound_replay_and_verify_checks_them() {
    let (_d, root) = counter_world(&[]);
    std::fs::write(root.join("ev.jsonl"), {
        let mut s = json!({"schema": EVENT, "value": {"$tag": "Start", "$value": {"target": 1000}}})
            .to_string() + "\n";
        for _ in 0..40 {
            s += &(json!({"schema": EVENT, "value": {"$tag": "Tick"}}).to_string() + "\n");
        }
        s
    })
    .unwrap();
    expect_code(&aos(&root, &["run", "--events", "ev.jsonl"]), 0);
    let o = aos(&root, &["--format", "json", "snapshot"]);
    expect_code(&o, 0);
    let snap = json_out(&o);
    let snap_seq = snap["seq"].as_u64().unwrap();
    assert_eq!(snap_seq, 83);
    // The snapshot object names the reducer's state object.
    let o = aos(
        &root,
        &[
            "--format",
            "json",
            "cat-object",
            snap["snapshot"].as_str().unwrap(),
        ],
    );
    expect_code(&o, 0);
    let obj = json_out(&o)["value"].clone();
    let st = obj["reducers"][REDUCER]["state"]
        .as_str()
        .unwrap()
        .to_string();
    let o = aos(&root, &["--format", "json", "cat-object", &st]);
    assert_eq!(json_out(&o)["value"]["remaining"], 960);

    for _ in 0..3 {
        expect_code(&aos(&root, &["send", EVENT, TICK]), 0);
    }
    // Default replay starts at the snapshot; --verify from genesis checks it.
    let o = aos(&root, &["--format", "json", "replay"]);
    expect_code(&o, 0);
    let r = json_out(&o);
    assert_eq!(r["from"], format!("the snapshot at seq {snap_seq}"));
    assert_eq!(r["records"], 6);
    let o = aos(&root, &["--format", "json", "world", "replay", "--verify"]);
    expect_code(&o, 0);
    let v = json_out(&o);
    assert_eq!(v["from"], "genesis");
    assert_eq!(v["snapshots_checked"], 1);
    assert_eq!(v["state"], r["state"], "both replays reach the same state");

    // Without the cache and the snapshot index, the state is rebuilt from genesis alike.
    let before = state(&root, &[]);
    std::fs::remove_file(root.join(".aos/cache/state.json")).unwrap();
    std::fs::remove_file(root.join(".aos/snapshots/index")).unwrap();
    assert_eq!(state(&root, &[]), before);
    // A garbage cache is ignored, never trusted.
    std::fs::write(
        root.join(".aos/cache/state.json"),
        b"{\"version\":1,\"seq\":3",
    )
    .unwrap();
    assert_eq!(state(&root, &[]), before);
    assert_eq!(before["remaining"], 957);

    // fsck checks each indexed snapshot and the objects it names.
    expect_code(&aos(&root, &["snapshot"]), 0);
    expect_code(&aos(&root, &["fsck"]), 0);
    let o = aos(&root, &["--format", "json", "state", REDUCER]);
    let current = json_out(&o)["hash"].as_str().unwrap().to_string();
    let hex = current.strip_prefix("blake3:").unwrap();
    std::fs::remove_file(root.join(".aos/objects").join(&hex[..2]).join(&hex[2..])).unwrap();
    let o = aos(&root, &["fsck"]);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("snapshot_invalid"), "{}", stdout(&o));
}

#[test]
fn a_forged_state_cache_is_not_trusted() {
    let (_d, root) = counter_world(&[]);
    expect_code(&aos(&root, &["send", EVENT, START3]), 0);
    let path = root.join(".aos/cache/state.json");
    let text = std::fs::read_to_string(&path).unwrap();
    // Point the cache at another seq: the journal's hash there does not match.
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["seq"] = json!("1");
    std::fs::write(&path, doc.to_string()).unwrap();
    assert_eq!(state(&root, &[])["remaining"], 3);
    // An object inside the cache that does not hash to its name is refused too.
    let forged = text.replace("\\\"remaining\\\":3", "\\\"remaining\\\":7");
    assert_ne!(forged, text);
    std::fs::write(&path, forged).unwrap();
    assert_eq!(state(&root, &[])["remaining"], 3);
}

#[test]
fn limits_are_recorded_at_genesis() {
    let (_d, root) = counter_world(&["--fuel-per-step", "5000000", "--memory-mib", "32"]);
    let first = std::fs::read_to_string(root.join(".aos/journal")).unwrap();
    let rec: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(rec["body"]["limits"]["fuel_per_step"], 5_000_000);
    assert_eq!(rec["body"]["limits"]["memory_bytes"], 32 << 20);
    expect_code(&aos(&root, &["send", EVENT, START3]), 0);
    // The counter needs ~20,000 fuel per step: a budget of 1,000 makes every step fail.
    let (_d2, tight) = counter_world(&["--fuel-per-step", "1000"]);
    let o = aos(&tight, &["send", EVENT, START3]);
    expect_code(&o, 1);
    assert!(
        stderr(&o).contains("module_error at seq 2"),
        "{}",
        stderr(&o)
    );
    let o = aos(
        &tight,
        &["--format", "json", "log", "--kind", "module_error"],
    );
    let rec: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(rec["body"]["code"], "out_of_fuel");
    assert_eq!(rec["body"]["event"], 1);
    assert_eq!(rec["cause"], json!([1]));
    expect_code(&aos(&tight, &["replay", "--verify"]), 0);
    for bad in [
        &["--fuel-per-step", "0"][..],
        &["--memory-mib", "0"],
        &["--memory-mib", "5000"],
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut args = vec!["init", "x"];
        args.extend_from_slice(bad);
        expect_code(&aos(d.path(), &args), 2);
        assert!(!d.path().join("x/.aos").exists());
    }
}

#[test]
fn a_fork_ends_where_the_world_was_idle_and_steps_on_its_own() {
    let (d, root) = counter_world(&[]);
    for v in [START3, TICK] {
        expect_code(&aos(&root, &["send", EVENT, v]), 0);
    }
    // seq 3 is the Tick, seq 4 its step: forking at 3 would cut the step off.
    let o = aos(d.path(), &["fork", "w", "f", "--at", "3"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("fork at 4"), "{}", stderr(&o));
    assert!(!d.path().join("f").exists());
    expect_code(&aos(d.path(), &["fork", "w", "f", "--at", "2"]), 0);
    let fork = d.path().join("f");
    expect_code(&aos(&fork, &["replay", "--verify"]), 0);
    assert_eq!(state(&fork, &[])["remaining"], 3);
    expect_code(&aos(&fork, &["send", EVENT, TICK]), 0);
    expect_code(&aos(&fork, &["send", EVENT, TICK]), 0);
    assert_eq!(state(&fork, &[])["remaining"], 1);
    assert_eq!(state(&root, &[])["remaining"], 2, "the source is untouched");
}
