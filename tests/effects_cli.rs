//! End-to-end tests of reducer micro-effects through the real binary, on the `timer` and
//! `blob-echo` examples: the intent, both gate verdicts, the signed receipt and its
//! delivery back to the reducer are journaled in order; a policy deny is journaled with
//! its rule and nothing is dispatched; a namespace outside the blob grant is refused;
//! `aos replay --verify` and `aos fsck` accept every world. The reducer modules are
//! built by `scripts/build-reducers.sh`; a missing module fails the test.

mod common;

use std::path::{Path, PathBuf};

use aos_store::receipt::{Receipt, Status};
use aos_store::world::{Access, World};
use common::{
    aos, expect_code, init_world, journal, kinds, nat, reducer_state, replay_and_fsck, repo,
    stderr, stdout,
};
use serde_json::{json, Value};

const TIMER_EVENT: &str = "demo/TimerEvent@1";
const TIMER: &str = "demo/TimerSM@1";
const BLOB_EVENT: &str = "demo/BlobEchoEvent@1";
const BLOB: &str = "demo/BlobEchoSM@1";

/// A copy of an example's AIR directory in `into`, for variants of it.
fn copy_air(example: &str, into: &Path) -> PathBuf {
    let src = repo().join("examples").join(example).join("air");
    let dst = into.join(format!("{example}-air"));
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    dst
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn start(deliver_at_ns: u64, key: &str) -> String {
    json!({"$tag": "Start", "$value": {"deliver_at_ns": deliver_at_ns, "key": key}}).to_string()
}

/// The receipt of an `effect_receipt` record, checked against the world's key.
fn verified_receipt(root: &Path, rec: &Value) -> Receipt {
    let receipt = Receipt::from_json(&rec["body"]["receipt"]).unwrap();
    let w = World::open(root, Access::Read).unwrap();
    let key = w.config.signing_key().expect("the world has a signing key");
    receipt
        .verify(key)
        .expect("the receipt's signature verifies");
    receipt
}

#[test]
fn a_timer_fires_and_its_signed_receipt_reaches_the_reducer() {
    let air = repo().join("examples/timer/air");
    let (_d, root) = init_world(&air, TIMER, "timer.wasm", "AOS_TIMER_WASM");
    let deliver = now_ns() + 200_000_000;
    let o = aos(&root, &["send", TIMER_EVENT, &start(deliver, "k1")]);
    expect_code(&o, 0);
    // `send` does not wait for a timer that is not due; `run --until-idle` does.
    let o = aos(&root, &["run", "--until-idle"]);
    expect_code(&o, 0);

    let recs = journal(&root);
    assert_eq!(
        kinds(&recs[1..3]),
        ["domain_event", "reducer_stepped"],
        "{recs:#?}"
    );
    assert_eq!(recs[1]["body"]["schema"], TIMER_EVENT);
    let tail = &recs[3..];
    let intent = 0;
    assert_eq!(
        kinds(&tail[intent..]),
        [
            "effect_intent",
            "policy_decision",
            "effect_receipt",
            "domain_event",
            "reducer_stepped"
        ],
        "{tail:#?}"
    );
    let (i, d, r, fired) = (
        &tail[intent],
        &tail[intent + 1],
        &tail[intent + 2],
        &tail[intent + 3],
    );
    assert_eq!(i["body"]["kind"], "timer.set");
    assert_eq!(i["body"]["grant"], "timer_grant");
    assert_eq!(nat(&i["body"]["params"]["deliver_at_ns"]), deliver);
    assert_eq!(d["body"]["allowed"], true);
    assert_eq!(d["body"]["cap"]["allowed"], true);
    assert_eq!(d["body"]["policy"]["allowed"], true);
    assert_eq!(d["body"]["policy"]["rule"], 0);
    assert_eq!(d["cause"], json!([i["seq"]]));
    assert_eq!(r["cause"], json!([i["seq"]]));
    let receipt = verified_receipt(&root, r);
    assert_eq!(receipt.status, Status::Ok);
    assert_eq!(json!(receipt.intent_hash), i["body"]["intent_hash"]);
    assert_eq!(receipt.effect_kind, "timer.set");
    let delivered = nat(&receipt.payload["delivered_at_ns"]);
    assert!(delivered >= deliver, "fired at {delivered}, due {deliver}");
    assert_eq!(fired["body"]["schema"], "sys/TimerFired@1");
    assert_eq!(fired["body"]["delivered_to"]["reducer"], TIMER);
    assert_eq!(fired["body"]["value"]["status"], "ok");
    assert_eq!(fired["cause"], json!([r["seq"]]));

    let s = reducer_state(&root, TIMER);
    assert_eq!(s["pc"]["$tag"], "Fired", "{s}");
    assert_eq!(nat(&s["fired_at_ns"]), delivered);
    assert_eq!(s["key"], "k1");
    assert_eq!(nat(&s["deliver_at_ns"]), deliver);
    replay_and_fsck(&root);
}

#[test]
fn a_policy_deny_is_journaled_with_its_rule_and_nothing_is_dispatched() {
    let tmp = tempfile::tempdir().unwrap();
    let air = copy_air("timer", tmp.path());
    // Rule 0 does not match a reducer's timer; rule 1 denies it.
    std::fs::write(
        air.join("policy.air.json"),
        json!({
            "$kind": "defpolicy",
            "name": "demo/timer-policy@1",
            "rules": [
                {"when": {"effect_kind": "timer.set", "origin_kind": "plan"}, "decision": "allow"},
                {"when": {"effect_kind": "timer.set", "origin_kind": "reducer"}, "decision": "deny"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let (_d, root) = init_world(&air, TIMER, "timer.wasm", "AOS_TIMER_WASM");
    // Already due: were it allowed, `send` would dispatch it at once.
    let deliver = now_ns();
    expect_code(
        &aos(&root, &["send", TIMER_EVENT, &start(deliver, "k2")]),
        0,
    );
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);

    let recs = journal(&root);
    let all = kinds(&recs);
    assert!(!all.contains(&"effect_receipt"), "{all:?}");
    assert_eq!(all.iter().filter(|k| **k == "effect_intent").count(), 1);
    let i = recs.iter().find(|r| r["kind"] == "effect_intent").unwrap();
    let d = recs
        .iter()
        .find(|r| r["kind"] == "policy_decision")
        .expect("a policy_decision");
    assert_eq!(d["cause"], json!([i["seq"]]));
    assert_eq!(d["body"]["allowed"], false);
    assert_eq!(d["body"]["cap"]["allowed"], true);
    assert_eq!(d["body"]["policy"]["allowed"], false);
    assert_eq!(d["body"]["policy"]["rule"], 1);
    assert!(
        d["body"]["policy"]["reason"]
            .as_str()
            .unwrap()
            .contains("demo/timer-policy@1"),
        "{d}"
    );

    let s = reducer_state(&root, TIMER);
    assert_eq!(s["pc"]["$tag"], "Pending", "{s}");
    assert_eq!(s["fired_at_ns"], Value::Null);
    replay_and_fsck(&root);
}

#[test]
fn blob_echo_stores_bytes_and_reads_them_back() {
    let air = repo().join("examples/blob-echo/air");
    let (_d, root) = init_world(&air, BLOB, "blob-echo.wasm", "AOS_BLOB_ECHO_WASM");
    let bytes = b"hello from blob-echo\n";
    std::fs::write(root.join("in.txt"), bytes).unwrap();
    let o = aos(&root, &["blob", "put", "in.txt"]);
    expect_code(&o, 0);
    let hash = stdout(&o).trim().to_string();
    assert_eq!(
        hash,
        format!("blake3:{}", blake3::hash(bytes).to_hex()),
        "blob put prints the hash"
    );

    // blob effects are due at once: `send` dispatches the whole put → get chain.
    let put = json!({"$tag": "Put", "$value": {"blob_ref": hash, "namespace": "echo"}});
    expect_code(&aos(&root, &["send", BLOB_EVENT, &put.to_string()]), 0);
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);

    let recs = journal(&root);
    let flow: Vec<&Value> = recs
        .iter()
        .filter(|r| {
            matches!(
                r["kind"].as_str(),
                Some("effect_intent" | "policy_decision" | "effect_receipt")
            ) || (r["kind"] == "domain_event"
                && r["body"]["schema"].as_str().unwrap().starts_with("sys/"))
        })
        .collect();
    assert_eq!(
        kinds(&flow.iter().map(|r| (*r).clone()).collect::<Vec<_>>()),
        [
            "effect_intent",
            "policy_decision",
            "effect_receipt",
            "domain_event",
            "effect_intent",
            "policy_decision",
            "effect_receipt",
            "domain_event"
        ]
    );
    assert_eq!(flow[0]["body"]["kind"], "blob.put");
    assert_eq!(flow[0]["body"]["params"]["blob_ref"], json!(hash));
    assert_eq!(flow[1]["body"]["allowed"], true);
    assert_eq!(flow[3]["body"]["schema"], "sys/BlobPutResult@1");
    assert_eq!(flow[4]["body"]["kind"], "blob.get");
    assert_eq!(flow[4]["body"]["params"]["key"], json!(hash));
    assert_eq!(flow[5]["body"]["allowed"], true);
    assert_eq!(flow[7]["body"]["schema"], "sys/BlobGetResult@1");
    for r in [flow[2], flow[6]] {
        let receipt = verified_receipt(&root, r);
        assert_eq!(receipt.status, Status::Ok);
        assert_eq!(receipt.payload["blob_ref"], json!(hash));
        assert_eq!(nat(&receipt.payload["size"]), bytes.len() as u64);
    }

    let s = reducer_state(&root, BLOB);
    assert_eq!(s["pc"]["$tag"], "Done", "{s}");
    assert_eq!(s["got_ref"], json!(hash));
    assert_eq!(nat(&s["got_size"]), bytes.len() as u64);
    assert_eq!(nat(&s["put_size"]), bytes.len() as u64);
    assert_eq!(s["matches"], true);

    // The stored bytes come back out of the store intact.
    let out = root.join("out.txt");
    expect_code(
        &aos(&root, &["blob", "get", &hash, "-o", out.to_str().unwrap()]),
        0,
    );
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    replay_and_fsck(&root);
}

#[test]
fn a_blob_namespace_outside_the_grant_is_refused_by_the_cap_gate() {
    let air = repo().join("examples/blob-echo/air");
    let (_d, root) = init_world(&air, BLOB, "blob-echo.wasm", "AOS_BLOB_ECHO_WASM");
    std::fs::write(root.join("in.txt"), b"x").unwrap();
    let o = aos(&root, &["blob", "put", "in.txt"]);
    expect_code(&o, 0);
    let hash = stdout(&o).trim().to_string();
    let put = json!({"$tag": "Put", "$value": {"blob_ref": hash, "namespace": "elsewhere"}});
    expect_code(&aos(&root, &["send", BLOB_EVENT, &put.to_string()]), 0);
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);

    let recs = journal(&root);
    assert!(!kinds(&recs).contains(&"effect_receipt"));
    let d = recs
        .iter()
        .find(|r| r["kind"] == "policy_decision")
        .unwrap();
    assert_eq!(d["body"]["allowed"], false);
    assert_eq!(d["body"]["cap"]["allowed"], false);
    assert_eq!(d["body"]["cap"]["code"], "namespace_not_allowed");
    assert_eq!(d["body"]["cap"]["grant"], "echo_blobs");
    let s = reducer_state(&root, BLOB);
    assert_eq!(s["pc"]["$tag"], "Putting", "{s}");
    replay_and_fsck(&root);
}

#[test]
fn a_tampered_receipt_in_the_journal_is_found_by_fsck_replay_and_receipts_verify() {
    let air = repo().join("examples/timer/air");
    let (_d, root) = init_world(&air, TIMER, "timer.wasm", "AOS_TIMER_WASM");
    let o = aos(&root, &["send", TIMER_EVENT, &start(1, "k1")]);
    expect_code(&o, 0);
    expect_code(&aos(&root, &["receipts", "verify"]), 0);
    let o = aos(&root, &["--format", "json", "receipts", "ls"]);
    expect_code(&o, 0);
    let listed: Value = serde_json::from_str(stdout(&o).lines().next().unwrap()).unwrap();
    assert_eq!(listed["verified"], true);
    let seq = listed["seq"].as_u64().unwrap() as usize;
    // Another key does not verify it.
    let other = "ed25519:".to_string() + &"11".repeat(32);
    let o = aos(&root, &["receipts", "verify", "--public-key", &other]);
    assert_ne!(o.status.code(), Some(0));

    // Change the fired time inside the signed receipt and re-chain the journal.
    let text = std::fs::read_to_string(root.join(".aos/journal")).unwrap();
    let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
    let line = String::from_utf8(lines[seq].clone()).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let at = v["body"]["receipt"]["payload"]["delivered_at_ns"].clone();
    let at_text = at.to_string();
    assert_eq!(
        line.matches(&format!("\"delivered_at_ns\":{at_text}"))
            .count(),
        1,
        "{line}"
    );
    let forged = line.replace(
        &format!("\"delivered_at_ns\":{at_text}"),
        "\"delivered_at_ns\":42",
    );
    lines[seq] = forged.into_bytes();
    common::write_journal(&root, lines, seq, true);

    let o = aos(&root, &["fsck"]);
    expect_code(&o, 1);
    assert!(stdout(&o).contains("receipt_invalid"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("journal seq {seq}")),
        "{}",
        stdout(&o)
    );
    let o = aos(&root, &["receipts", "verify"]);
    expect_code(&o, 1);
    let o = aos(&root, &["replay", "--verify"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains(&format!("seq {seq}")), "{}", stderr(&o));
}

#[test]
fn a_run_killed_while_an_intent_is_open_dispatches_it_once_on_the_next_run() {
    let air = repo().join("examples/timer/air");
    let (_d, root) = init_world(&air, TIMER, "timer.wasm", "AOS_TIMER_WASM");
    // Due in 600 ms: `aos run --until-idle` waits for it, and is killed while waiting
    // (or, on a slow machine, just after it fired: either way the end must be the same).
    let deliver = now_ns() + 600_000_000;
    expect_code(
        &aos(&root, &["send", TIMER_EVENT, &start(deliver, "k1")]),
        0,
    );
    let open_before: Vec<Value> = journal(&root)
        .into_iter()
        .filter(|r| r["kind"] == "effect_intent")
        .collect();
    assert_eq!(open_before.len(), 1);
    let mut child = std::process::Command::new(common::aos_bin())
        .args(["run", "--until-idle"])
        .current_dir(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    child.kill().unwrap();
    let _ = child.wait();
    // The next run dispatches whatever is still open, with the intent's own key.
    expect_code(&aos(&root, &["run", "--until-idle"]), 0);
    let recs = journal(&root);
    let receipts: Vec<&Value> = recs
        .iter()
        .filter(|r| r["kind"] == "effect_receipt")
        .collect();
    assert_eq!(receipts.len(), 1, "exactly one receipt: {recs:#?}");
    assert_eq!(
        receipts[0]["body"]["receipt"]["intent_hash"],
        open_before[0]["body"]["intent_hash"]
    );
    let fired: Vec<&Value> = recs
        .iter()
        .filter(|r| r["body"]["schema"] == "sys/TimerFired@1")
        .collect();
    assert_eq!(fired.len(), 1, "delivered once");
    // Nothing is left to do, and a further run changes nothing.
    let len = recs.len();
    expect_code(&aos(&root, &["run", "--no-wait"]), 0);
    assert_eq!(journal(&root).len(), len);
    replay_and_fsck(&root);
}

/// A one-connection HTTP/1.1 server on 127.0.0.1 answering `body`; returns its port and
/// a handle yielding the request head it received.
fn serve_once(body: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(reply.as_bytes()).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, handle)
}

#[test]
fn fetch_a_plan_gets_a_page_and_the_reducer_records_it() {
    let air = repo().join("examples/fetch/air");
    let (_d, root) = init_world(&air, "demo/FetchSM@1", "fetch.wasm", "AOS_FETCH_WASM");
    let (port, server) = serve_once("hello from loopback");
    let url = format!("http://127.0.0.1:{port}/page");
    // send: the reducer turns the command into a FetchRequest domain event, whose
    // trigger starts the plan; its http.request is dispatched at once.
    let o = aos(
        &root,
        &[
            "send",
            "demo/FetchCommand@1",
            &json!({ "url": url }).to_string(),
        ],
    );
    expect_code(&o, 0);
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /page HTTP/1.1"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("idempotency-key: "),
        "{head}"
    );

    let recs = journal(&root);
    let ks = kinds(&recs);
    for k in [
        "plan_started",
        "effect_intent",
        "policy_decision",
        "effect_receipt",
        "plan_ended",
        "reducer_stepped",
    ] {
        assert!(ks.contains(&k), "{k} missing: {ks:?}");
    }
    let receipt = recs.iter().find(|r| r["kind"] == "effect_receipt").unwrap();
    let r = verified_receipt(&root, receipt);
    assert_eq!(r.payload["status"], 200);
    let ended = recs.iter().find(|r| r["kind"] == "plan_ended").unwrap();
    assert_eq!(ended["body"]["status"], "ok", "{ended}");
    let st = reducer_state(&root, "demo/FetchSM@1");
    assert_eq!(st["fetched"], 1);
    assert_eq!(st["requested"], 1);
    assert_eq!(st["last_status"], 200);
    assert_eq!(st["last_url"], url.as_str());
    // The body is a blob in the world.
    let body_ref = st["last_body_ref"].as_str().unwrap().to_string();
    let o = aos(&root, &["blob", "get", &body_ref]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "hello from loopback");
    replay_and_fsck(&root);

    // A URL outside the grant never leaves the process: the run ends denied.
    let o = aos(
        &root,
        &[
            "send",
            "demo/FetchCommand@1",
            r#"{"url":"http://example.com/"}"#,
        ],
    );
    expect_code(&o, 0);
    let recs = journal(&root);
    let last_end = recs
        .iter()
        .rev()
        .find(|r| r["kind"] == "plan_ended")
        .unwrap();
    assert_eq!(last_end["body"]["status"], "error");
    assert!(
        last_end["body"]["error"]
            .as_str()
            .unwrap()
            .contains("example.com"),
        "{last_end}"
    );
    assert_eq!(reducer_state(&root, "demo/FetchSM@1")["fetched"], 1);
}

#[test]
fn a_plan_started_by_hand_runs_and_plans_ls_and_show_report_it() {
    let air = repo().join("examples/fetch/air");
    let (_d, root) = init_world(&air, "demo/FetchSM@1", "fetch.wasm", "AOS_FETCH_WASM");
    let before = journal(&root).len();
    // Refusals write nothing.
    let o = aos(&root, &["plan", "start", "demo/nope@1", "{}"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("demo/fetch_plan@1"),
        "lists the plans: {}",
        stderr(&o)
    );
    let o = aos(
        &root,
        &["plan", "start", "demo/fetch_plan@1", r#"{"uri":"x"}"#],
    );
    expect_code(&o, 2);
    assert_eq!(journal(&root).len(), before);

    let (port, server) = serve_once("manual");
    let url = format!("http://127.0.0.1:{port}/m");
    let o = aos(
        &root,
        &[
            "plan",
            "start",
            "demo/fetch_plan@1",
            &json!({ "url": url }).to_string(),
        ],
    );
    expect_code(&o, 0);
    server.join().unwrap();
    assert_eq!(reducer_state(&root, "demo/FetchSM@1")["last_status"], 200);

    let o = aos(&root, &["--format", "json", "plans", "ls"]);
    expect_code(&o, 0);
    let runs: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "ok");
    assert_eq!(runs[0]["result"]["status"], 200);
    let id = runs[0]["run"].as_u64().unwrap().to_string();
    let o = aos(&root, &["--format", "json", "plans", "show", &id]);
    expect_code(&o, 0);
    let shown: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(shown["plan"], "demo/fetch_plan@1");
    let kinds: Vec<&str> = shown["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"plan_started")
            && kinds.contains(&"effect_intent")
            && kinds.contains(&"plan_ended"),
        "{kinds:?}"
    );
    expect_code(&aos(&root, &["plans", "show", "999999"]), 2);
    replay_and_fsck(&root);
}

#[test]
fn a_send_killed_while_a_plan_waits_on_its_receipt_resumes_and_the_receipt_lands_once() {
    use std::io::{Read, Write};
    use std::sync::mpsc;
    let air = repo().join("examples/fetch/air");
    let (_d, root) = init_world(&air, "demo/FetchSM@1", "fetch.wasm", "AOS_FETCH_WASM");
    // The server keeps its first request unanswered (the sender is killed meanwhile) and
    // answers the second at once; it reports each request head.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for n in 0..2 {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            if n == 0 {
                held.push(conn);
            } else {
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}/slow");
    let mut child = std::process::Command::new(common::aos_bin())
        .args([
            "send",
            "demo/FetchRequest@1",
            &json!({ "url": url }).to_string(),
        ])
        .current_dir(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the first request");
    child.kill().unwrap();
    let _ = child.wait();
    let recs = journal(&root);
    assert!(
        kinds(&recs).contains(&"effect_intent"),
        "the intent was journaled before dispatch"
    );
    assert!(!kinds(&recs).contains(&"effect_receipt"));

    // The next run re-dispatches the open intent with the same key; the run resumes.
    expect_code(&aos(&root, &["run", "--no-wait"]), 0);
    let second = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the second request");
    let key = |head: &str| {
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("idempotency-key:"))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string())
    };
    assert!(key(&first).is_some());
    assert_eq!(key(&first), key(&second), "the same idempotency key");
    let recs = journal(&root);
    assert_eq!(
        recs.iter()
            .filter(|r| r["kind"] == "effect_receipt")
            .count(),
        1
    );
    let ended = recs.iter().find(|r| r["kind"] == "plan_ended").unwrap();
    assert_eq!(ended["body"]["status"], "ok");
    assert_eq!(reducer_state(&root, "demo/FetchSM@1")["fetched"], 1);
    expect_code(&aos(&root, &["run", "--no-wait"]), 0);
    assert_eq!(journal(&root).len(), recs.len(), "nothing more to do");
    replay_and_fsck(&root);
}
