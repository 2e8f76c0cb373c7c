//! `aos why` end to end through the real binary: provenance of reducer steps, effect
//! intents and receipts back to the injected event that started them (with who sent
//! it), consequences with --forward, keyed cells, the JSON and Graphviz forms, refusals
//! that write nothing, a forged or truncated cache that is rebuilt, and `--check` on
//! every example world: no record without a path to a root. The reducer modules are
//! built by `scripts/build-reducers.sh`; a missing module fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use common::{
    aos, assert_rooted, counter_wasm, expect_code, init_world, journal, repo, stderr, stdout,
};
use serde_json::{json, Value};

const COUNTER: &str = "demo/CounterSM@1";
const COUNTER_EVENT: &str = "demo/CounterEvent@1";
const START3: &str = r#"{"$tag":"Start","$value":{"target":3}}"#;
const TICK: &str = r#"{"$tag":"Tick"}"#;

fn example(name: &str, reducer: &str, wasm: &str, env_var: &str) -> (tempfile::TempDir, PathBuf) {
    init_world(
        &repo().join("examples").join(name).join("air"),
        reducer,
        wasm,
        env_var,
    )
}

/// A counter world after Start and one Tick: seqs 1 (event), 2 (step), 3 (event), 4 (step).
fn counter() -> (tempfile::TempDir, PathBuf) {
    let (d, root) = init_world(
        &repo().join("examples/counter/air"),
        COUNTER,
        counter_wasm().file_name().and_then(|f| f.to_str()).unwrap(),
        "AOS_COUNTER_WASM",
    );
    expect_code(&aos(&root, &["send", COUNTER_EVENT, START3]), 0);
    expect_code(&aos(&root, &["send", COUNTER_EVENT, TICK]), 0);
    (d, root)
}

fn why_json(root: &Path, args: &[&str]) -> Value {
    let mut all = vec!["why", "--format", "json"];
    all.extend_from_slice(args);
    let o = aos(root, &all);
    expect_code(&o, 0);
    serde_json::from_str(stdout(&o).trim()).expect("a JSON document")
}

fn seqs(doc: &Value, field: &str) -> Vec<u64> {
    doc[field]
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_u64().expect("a seq"))
        .collect()
}

fn node_seqs(doc: &Value) -> Vec<u64> {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["seq"].as_u64().expect("a seq"))
        .collect()
}

fn node(doc: &Value, seq: u64) -> &Value {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["seq"] == seq)
        .unwrap_or_else(|| panic!("no node {seq} in {doc}"))
}

/// A loopback HTTP server answering every request with `status` until dropped.
struct Server {
    url: String,
    _thread: JoinHandle<()>,
}

fn serve(status: u16) -> Server {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("status {status}");
            let reply = format!(
                "HTTP/1.1 {status} S\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    Server {
        url: format!("http://127.0.0.1:{port}/"),
        _thread: thread,
    }
}

#[test]
fn why_of_a_reducer_step_reaches_the_injected_event_and_its_sender() {
    let (_d, root) = counter();
    let o = aos(&root, &["why", COUNTER]);
    expect_code(&o, 0);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("reducer_stepped seq 4  "), "{text}");
    assert!(lines[0].contains(COUNTER), "{text}");
    assert!(lines[1].starts_with("└─ domain_event seq 3  "), "{text}");
    assert!(
        lines[1].contains("demo/CounterEvent@1 {\"$tag\":\"Tick\"}"),
        "{text}"
    );
    assert!(
        lines[1].contains("[by tester via cli]") && lines[1].ends_with("(root)"),
        "{text}"
    );
    assert_eq!(lines.len(), 2, "{text}");
    // RFC 3339 UTC time of the record.
    assert!(lines[0].contains("Z  "), "{text}");

    let doc = why_json(&root, &["2"]);
    assert_eq!(doc["target"], 2);
    assert_eq!(doc["direction"], "back");
    assert_eq!(node_seqs(&doc), [1, 2]);
    assert_eq!(doc["edges"], json!([[1, 2]]));
    assert_eq!(seqs(&doc, "roots"), [1]);
    let root_node = node(&doc, 1);
    assert_eq!(root_node["kind"], "domain_event");
    assert_eq!(root_node["root"], true);
    assert_eq!(root_node["cause"], json!([]));
    assert!(root_node["at_ns"].as_u64().is_some(), "{doc}");
    assert_eq!(node(&doc, 2)["cause"], json!([1]));
}

#[test]
fn why_of_an_effect_intent_and_its_receipt_reaches_the_root() {
    let (_d, root) = example("timer", "demo/TimerSM@1", "timer.wasm", "AOS_TIMER_WASM");
    let start = json!({"$tag": "Start", "$value": {"deliver_at_ns": 1, "key": "k1"}});
    expect_code(
        &aos(&root, &["send", "demo/TimerEvent@1", &start.to_string()]),
        0,
    );
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);
    let recs = journal(&root);
    let intent = recs
        .iter()
        .find(|r| r["kind"] == "effect_intent")
        .expect("an intent");
    let hash = intent["body"]["intent_hash"].as_str().unwrap();
    let intent_seq = intent["seq"].as_u64().unwrap();

    for target in [hash, hash.trim_start_matches("blake3:")] {
        let doc = why_json(&root, &[target]);
        assert_eq!(doc["target"], intent_seq, "{doc}");
        assert_eq!(seqs(&doc, "roots"), [1], "{doc}");
        let summary = node(&doc, intent_seq)["summary"].as_str().unwrap();
        assert!(summary.starts_with("timer.set intent "), "{summary}");
        assert!(node(&doc, 1)["summary"]
            .as_str()
            .unwrap()
            .contains("tester via cli"));
    }
    // The reducer step that took the fired timer goes back through the receipt and the
    // intent to the same injected event.
    let last = recs.len() as u64 - 1;
    assert_eq!(recs[last as usize]["kind"], "reducer_stepped");
    let doc = why_json(&root, &[&last.to_string()]);
    assert_eq!(seqs(&doc, "roots"), [1], "{doc}");
    let kinds: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    for k in [
        "effect_receipt",
        "effect_intent",
        "reducer_stepped",
        "domain_event",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {doc}");
    }
    let receipt = recs.iter().find(|r| r["kind"] == "effect_receipt").unwrap();
    let summary = node(&doc, receipt["seq"].as_u64().unwrap())["summary"]
        .as_str()
        .unwrap();
    assert!(summary.contains("ok by timer"), "{summary}");
    assert_rooted(&root);
}

#[test]
fn forward_from_an_injected_event_lists_what_it_caused() {
    let (_d, root) = counter();
    let doc = why_json(&root, &["1", "--forward"]);
    assert_eq!(doc["direction"], "forward");
    assert_eq!(node_seqs(&doc), [1, 2]);
    assert_eq!(node(&doc, 2)["kind"], "reducer_stepped");
    assert_eq!(node(&doc, 2)["depth"], 1);
    let o = aos(&root, &["why", "1", "--forward"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("└─ reducer_stepped seq 2"),
        "{text}"
    );
    // --depth 0: the target alone, marked as having more.
    let doc = why_json(&root, &["1", "--forward", "--depth", "0"]);
    assert_eq!(node_seqs(&doc), [1]);
    assert_eq!(node(&doc, 1)["cut"], true);
    let o = aos(&root, &["why", "4", "--depth", "0"]);
    assert!(stdout(&o).trim_end().ends_with('…'), "{}", stdout(&o));
}

#[test]
fn a_cell_of_a_keyed_reducer_is_a_target() {
    let (_d, root) = notebook();
    let recs = journal(&root);
    let step_of = |key: &str| {
        recs.iter()
            .filter(|r| r["kind"] == "reducer_stepped" && r["body"]["key"] == key)
            .map(|r| r["seq"].as_u64().unwrap())
            .max()
            .unwrap()
    };
    for (target, key) in [
        ("notes/Notebook@1/\"n1\"", "n1"),
        ("notes/Notebook@1/n1", "n1"),
        ("notes/Notebook@1/n2", "n2"),
    ] {
        let doc = why_json(&root, &[target]);
        assert_eq!(doc["target"], step_of(key), "{target}: {doc}");
        let summary = node(&doc, step_of(key))["summary"].as_str().unwrap();
        assert!(
            summary.starts_with(&format!("notes/Notebook@1/{key} state ")),
            "{summary}"
        );
        let root_seq = seqs(&doc, "roots")[0];
        assert!(node(&doc, root_seq)["summary"]
            .as_str()
            .unwrap()
            .contains(key));
    }
    let o = aos(&root, &["why", "notes/Notebook@1/n9"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("notes/Notebook@1 with key \"n9\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn dot_is_a_graphviz_digraph_of_the_same_graph() {
    let (_d, root) = counter();
    let o = aos(&root, &["why", "4", "--dot"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    assert!(text.starts_with("digraph why {\n"), "{text}");
    assert!(text.trim_end().ends_with('}'), "{text}");
    assert!(text.contains("  n3 -> n4;\n"), "{text}");
    assert!(text.contains("n3 [label=\"domain_event seq 3\\n"), "{text}");
    assert!(text.contains("\\\"$tag\\\""), "quotes are escaped: {text}");
    assert_eq!(text.matches("->").count(), 1, "{text}");
    // --format dot is the same graph; other commands refuse it.
    let o = aos(&root, &["why", "4", "--format", "dot"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), text);
    let o = aos(&root, &["log", "--format", "dot"]);
    expect_code(&o, 2);
    assert!(
        common::stderr(&o).contains("only for `aos why`"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn unknown_targets_exit_2_say_what_to_try_and_write_nothing() {
    let (_d, root) = counter();
    let journal_file = root.join(".aos/journal");
    let before = std::fs::read(&journal_file).unwrap();
    let zero = format!("blake3:{}", "0".repeat(64));
    for (target, says) in [
        ("99", "no record with seq 99"),
        (zero.as_str(), "no effect_intent with intent hash"),
        (
            "demo/Nope@1",
            "no reducer_stepped record of reducer demo/Nope@1",
        ),
    ] {
        let o = aos(&root, &["why", target]);
        expect_code(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains(says) && err.contains("aos log"),
            "{target}: {err}"
        );
        assert!(stdout(&o).is_empty());
    }
    let o = aos(&root, &["why"]);
    expect_code(&o, 2);
    assert_eq!(std::fs::read(&journal_file).unwrap(), before);
    expect_code(&aos(&root, &["fsck"]), 0);
}

#[test]
fn a_truncated_or_forged_cache_is_rebuilt_and_gives_the_same_answer() {
    let (_d, root) = counter();
    let cache = root.join(".aos/cache/why");
    let back = why_json(&root, &[COUNTER]);
    let fwd = why_json(&root, &["1", "--forward"]);
    assert!(cache.join("edges").is_file() && cache.join("meta.json").is_file());

    // Truncated edges: the recorded length no longer matches.
    let edges = std::fs::read(cache.join("edges")).unwrap();
    std::fs::write(cache.join("edges"), &edges[..edges.len() - 16]).unwrap();
    assert_eq!(why_json(&root, &["1", "--forward"]), fwd);
    // Forged edges of the right length: 1 → 4 instead of 3 → 4.
    let mut forged = std::fs::read(cache.join("edges")).unwrap();
    let n = forged.len();
    forged[n - 16..n - 8].copy_from_slice(&1u64.to_le_bytes());
    std::fs::write(cache.join("edges"), &forged).unwrap();
    assert_eq!(why_json(&root, &["1", "--forward"]), fwd);
    // Forged metadata: a reducer lookup pointing elsewhere, and a head that is not ours.
    let meta: Value =
        serde_json::from_slice(&std::fs::read(cache.join("meta.json")).unwrap()).unwrap();
    let mut lie = meta.clone();
    lie["head"] = json!(format!("blake3:{}", "1".repeat(64)));
    lie["reducers"][COUNTER] = json!(1);
    std::fs::write(cache.join("meta.json"), lie.to_string()).unwrap();
    assert_eq!(why_json(&root, &[COUNTER]), back);
    std::fs::write(cache.join("meta.json"), b"{\"version\":1,").unwrap();
    assert_eq!(why_json(&root, &[COUNTER]), back);

    // The journal grows: the index is extended and the latest step is the new one.
    expect_code(&aos(&root, &["send", COUNTER_EVENT, TICK]), 0);
    let doc = why_json(&root, &[COUNTER]);
    assert_eq!(doc["target"], 6);
    assert_eq!(seqs(&doc, "roots"), [5]);
    let fwd2 = why_json(&root, &["1", "--forward"]);
    assert_eq!(fwd2, fwd);
}

#[test]
fn check_finds_a_record_without_a_path_to_a_root() {
    let (_d, root) = counter();
    assert_rooted(&root);
    let o = aos(&root, &["why", "--check", "--format", "json"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).trim(), r#"{"unrooted":[]}"#);
    // A derived kind with no cause, as a forger or a bug would write it.
    common::append(&root, 1, "reducer_stepped");
    let o = aos(&root, &["why", "--check"]);
    expect_code(&o, 1);
    assert!(
        stdout(&o).contains("1 record(s) without a path to a root: 5"),
        "{}",
        stdout(&o)
    );
}

/// Every example world, driven as its end-to-end test drives it: no record without a
/// path to a root.
#[test]
fn every_record_of_every_example_traces_back_to_a_root() {
    let (_d, root) = counter();
    assert_rooted(&root);

    let (_t, root) = example("timer", "demo/TimerSM@1", "timer.wasm", "AOS_TIMER_WASM");
    for key in ["k1", "k2"] {
        let start = json!({"$tag": "Start", "$value": {"deliver_at_ns": 1, "key": key}});
        expect_code(
            &aos(&root, &["send", "demo/TimerEvent@1", &start.to_string()]),
            0,
        );
    }
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);
    assert_rooted(&root);

    let (_b, root) = example(
        "blob-echo",
        "demo/BlobEchoSM@1",
        "blob-echo.wasm",
        "AOS_BLOB_ECHO_WASM",
    );
    std::fs::write(root.join("in.txt"), b"hello\n").unwrap();
    let o = aos(&root, &["blob", "put", "in.txt"]);
    expect_code(&o, 0);
    let put =
        json!({"$tag": "Put", "$value": {"blob_ref": stdout(&o).trim(), "namespace": "echo"}});
    expect_code(
        &aos(&root, &["send", "demo/BlobEchoEvent@1", &put.to_string()]),
        0,
    );
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);
    assert_rooted(&root);

    let (_n, root) = notebook();
    assert_rooted(&root);

    let server = serve(200);
    let (_f, root) = example("fetch", "demo/FetchSM@1", "fetch.wasm", "AOS_FETCH_WASM");
    let o = aos(
        &root,
        &[
            "send",
            "demo/FetchCommand@1",
            &json!({ "url": server.url }).to_string(),
        ],
    );
    expect_code(&o, 0);
    let o = aos(
        &root,
        &[
            "plan",
            "start",
            "demo/fetch_plan@1",
            &json!({ "url": server.url }).to_string(),
        ],
    );
    expect_code(&o, 0);
    assert!(journal(&root).iter().any(|r| r["kind"] == "plan_ended"));
    assert_rooted(&root);
    // A plan's effect traces back to the event that triggered the plan.
    let recs = journal(&root);
    let first_intent = recs.iter().find(|r| r["kind"] == "effect_intent").unwrap();
    let doc = why_json(
        &root,
        &[first_intent["body"]["intent_hash"].as_str().unwrap()],
    );
    assert_eq!(seqs(&doc, "roots"), [1], "{doc}");

    let (_a, root) = example(
        "aggregator",
        "demo/AggregatorSM@1",
        "aggregator.wasm",
        "AOS_AGGREGATOR_WASM",
    );
    let urls = json!({ "first": server.url, "second": server.url, "third": server.url });
    expect_code(
        &aos(
            &root,
            &["send", "demo/AggregateRequest@1", &urls.to_string()],
        ),
        0,
    );
    assert_rooted(&root);

    for reserve in [200, 409] {
        let reserve = serve(reserve);
        let (_s, root) = example("saga", "demo/OrderSM@1", "saga.wasm", "AOS_SAGA_WASM");
        let order = json!({
            "order_id": "o-1",
            "charge_url": server.url,
            "reserve_url": reserve.url,
            "notify_url": server.url,
            "refund_url": server.url,
        });
        expect_code(
            &aos(&root, &["send", "demo/OrderPlaced@1", &order.to_string()]),
            0,
        );
        assert!(journal(&root).iter().any(|r| r["kind"] == "plan_ended"));
        assert_rooted(&root);
    }
}

/// The notebook world of `tests/notebook.rs` (both reducers), with creates, appends and
/// a delete that cascades to the archive.
fn notebook() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let notebook = format!(
        "notes/Notebook@1={}",
        common::reducer_wasm("notebook.wasm", "AOS_NOTEBOOK_WASM").display()
    );
    let archive = format!(
        "notes/Archive@1={}",
        common::reducer_wasm("notebook-archive.wasm", "AOS_NOTEBOOK_ARCHIVE_WASM").display()
    );
    let air = repo().join("examples/notebook/air");
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
        ],
    );
    expect_code(&o, 0);
    let root = d.path().join("w");
    for v in [
        json!({"$tag": "Create", "$value": {"id": "n1", "title": "a"}}),
        json!({"$tag": "Create", "$value": {"id": "n2", "title": "b"}}),
        json!({"$tag": "Append", "$value": {"id": "n1", "text": "x"}}),
        json!({"$tag": "Delete", "$value": {"id": "n1"}}),
    ] {
        expect_code(
            &aos(&root, &["send", "notes/NoteEvent@1", &v.to_string()]),
            0,
        );
    }
    let recs = journal(&root);
    assert!(
        recs.iter()
            .any(|r| r["kind"] == "reducer_stepped" && r["body"]["reducer"] == "notes/Archive@1"),
        "the delete cascades to the archive"
    );
    (d, root)
}

#[test]
fn a_world_on_read_only_media_still_answers_why() {
    let (d, root) = counter();
    let want = why_json(&root, &["4"]);
    std::fs::remove_dir_all(root.join(".aos/cache/why")).unwrap();
    let view = d.path().join("ro");
    let _m = common::read_only_view(&root, &view);
    let o = aos(&view, &["why", "4", "--format", "json"]);
    expect_code(&o, 0);
    let got: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(got, want);
    assert!(
        common::stderr(&o).contains("cannot write the why index"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn a_malformed_hash_is_named_as_one() {
    let (_d, root) = counter();
    let o = aos(&root, &["why", "blake3:zz"]);
    expect_code(&o, 2);
    assert!(
        common::stderr(&o).contains("is not an intent hash"),
        "{}",
        common::stderr(&o)
    );
    let o = aos(&root, &["why", COUNTER]);
    expect_code(&o, 0);
}

#[test]
fn concurrent_whys_take_turns_and_agree() {
    let (_d, root) = counter();
    let want = why_json(&root, &["4"]);
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(root.join(".aos/cache/why"));
        let children: Vec<_> = (0..6)
            .map(|_| {
                std::process::Command::new(common::aos_bin())
                    .args(["why", "4", "--format", "json"])
                    .current_dir(&root)
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            expect_code(&o, 0);
            let got: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
            assert_eq!(got, want);
        }
    }
}
