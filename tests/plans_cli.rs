//! End-to-end tests of plans that orchestrate several effects, through the real binary
//! and loopback HTTP servers the tests start: the `aggregator` example fans out three
//! GETs and joins their statuses in input order whatever order the receipts arrive in;
//! the `saga` example charges, reserves and notifies, and refunds instead when the
//! reservation fails (a `when` guard on the reserve status). Every world passes
//! `aos replay --verify` and `aos fsck`. The reducer modules are built by
//! `scripts/build-reducers.sh`; a missing module fails the test.

mod common;

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{aos, expect_code, journal, reducer_state, replay_and_fsck};
use serde_json::{json, Value};

/// A world from the example `example`'s AIR with `reducer` bound to its built module.
fn world(example: &str, reducer: &str, wasm: &str, env_var: &str) -> (tempfile::TempDir, PathBuf) {
    let air = common::repo().join("examples").join(example).join("air");
    common::init_world(&air, reducer, wasm, env_var)
}

/// A loopback HTTP/1.1 server answering one request with `status` after waiting
/// `delay`; returns its URL and a handle yielding the request line it received.
fn serve_status(status: u16, delay: Duration) -> (String, JoinHandle<String>) {
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
        std::thread::sleep(delay);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            409 => "Conflict",
            _ => "Status",
        };
        let body = format!("status {status}");
        let reply = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(reply.as_bytes()).unwrap();
        let head = String::from_utf8_lossy(&head).into_owned();
        head.lines().next().unwrap_or_default().to_string()
    });
    (format!("http://127.0.0.1:{port}/"), handle)
}

/// The HTTP statuses of the journaled receipts, in journal order.
fn receipt_statuses(recs: &[Value]) -> Vec<i64> {
    recs.iter()
        .filter(|r| r["kind"] == "effect_receipt")
        .map(|r| r["body"]["receipt"]["payload"]["status"].as_i64().unwrap())
        .collect()
}

fn plan_ends(recs: &[Value]) -> Vec<&Value> {
    recs.iter().filter(|r| r["kind"] == "plan_ended").collect()
}

#[test]
fn aggregator_joins_three_statuses_in_input_order_when_receipts_arrive_reversed() {
    let (_d, root) = world(
        "aggregator",
        "demo/AggregatorSM@1",
        "aggregator.wasm",
        "AOS_AGGREGATOR_WASM",
    );
    // The third URL answers first and the first last. The plan emits in reverse (third,
    // second, first) and awaits in input order, so the receipts are journaled third first
    // (`aos send` journals one dispatch round's receipts in emit order) and the run,
    // parked on the first, holds the other two until it gets there.
    let (first, s1) = serve_status(200, Duration::from_millis(600));
    let (second, s2) = serve_status(201, Duration::from_millis(300));
    let (third, s3) = serve_status(202, Duration::ZERO);
    let o = aos(
        &root,
        &[
            "send",
            "demo/AggregateRequest@1",
            &json!({ "first": first, "second": second, "third": third }).to_string(),
        ],
    );
    expect_code(&o, 0);
    for s in [s1, s2, s3] {
        let line = s.join().unwrap();
        assert!(line.starts_with("GET / HTTP/1.1"), "{line}");
    }

    let recs = journal(&root);
    let intents = recs.iter().filter(|r| r["kind"] == "effect_intent").count();
    assert_eq!(intents, 3, "three requests fanned out");
    // The receipts are journaled third first; the join is in input order.
    assert_eq!(receipt_statuses(&recs), [202, 201, 200]);
    let ends = plan_ends(&recs);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["body"]["status"], "ok", "{}", ends[0]);
    let st = reducer_state(&root, "demo/AggregatorSM@1");
    assert_eq!(st["joined"], 1, "{st}");
    assert_eq!(st["last_statuses"], json!([200, 201, 202]), "{st}");
    replay_and_fsck(&root);
}

/// The saga run for one order against four loopback services, `reserve` answering
/// `reserve_status`; returns the world (kept alive) and the request line each
/// service received (`None` when it was never called).
fn run_saga(reserve_status: u16) -> (tempfile::TempDir, PathBuf, [Option<String>; 4]) {
    let (d, root) = world("saga", "demo/OrderSM@1", "saga.wasm", "AOS_SAGA_WASM");
    let (charge, c) = serve_status(200, Duration::ZERO);
    let (reserve, r) = serve_status(reserve_status, Duration::ZERO);
    let (notify, n) = serve_status(202, Duration::ZERO);
    let (refund, f) = serve_status(200, Duration::ZERO);
    let o = aos(
        &root,
        &[
            "send",
            "demo/OrderPlaced@1",
            &json!({
                "order_id": "o-1",
                "charge_url": charge,
                "reserve_url": reserve,
                "notify_url": notify,
                "refund_url": refund,
            })
            .to_string(),
        ],
    );
    expect_code(&o, 0);
    // A service the saga did not call is released by a connection of our own.
    let called = [(charge, c), (reserve, r), (notify, n), (refund, f)].map(|(url, h)| {
        if h.is_finished() {
            return Some(h.join().unwrap());
        }
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut s, b"PROBE\r\n\r\n").unwrap();
        let line = h.join().unwrap();
        assert_eq!(line, "PROBE", "the service was called late");
        None
    });
    (d, root, called)
}

#[test]
fn saga_charges_reserves_and_notifies_when_the_reservation_holds() {
    let (_d, root, called) = run_saga(200);
    for (i, c) in called.iter().take(3).enumerate() {
        let line = c
            .as_deref()
            .unwrap_or_else(|| panic!("service {i} not called"));
        assert!(line.starts_with("POST / HTTP/1.1"), "{line}");
    }
    assert_eq!(called[3], None, "no refund");
    let recs = journal(&root);
    assert_eq!(receipt_statuses(&recs), [200, 200, 202]);
    let ends = plan_ends(&recs);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["body"]["status"], "ok", "{}", ends[0]);
    let st = reducer_state(&root, "demo/OrderSM@1");
    assert_eq!(st["order_id"], "o-1");
    assert_eq!(st["status"], "Confirmed", "{st}");
    assert_eq!(st["history"], json!(["Charged", "Confirmed"]));
    replay_and_fsck(&root);
}

#[test]
fn saga_refunds_the_charge_when_the_reservation_fails() {
    let (_d, root, called) = run_saga(409);
    for i in [0, 1, 3] {
        let line = called[i]
            .as_deref()
            .unwrap_or_else(|| panic!("service {i} not called"));
        assert!(line.starts_with("POST / HTTP/1.1"), "{line}");
    }
    assert_eq!(
        called[2], None,
        "no notification after a failed reservation"
    );
    let recs = journal(&root);
    assert_eq!(receipt_statuses(&recs), [200, 409, 200]);
    let ends = plan_ends(&recs);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["body"]["status"], "ok", "{}", ends[0]);
    let st = reducer_state(&root, "demo/OrderSM@1");
    assert_eq!(st["order_id"], "o-1");
    assert_eq!(st["status"], "Refunded", "{st}");
    assert_eq!(
        st["history"],
        json!(["Charged", "ReserveFailed", "Refunded"])
    );
    replay_and_fsck(&root);
}
