//! End-to-end test of the `summarizer` example through the real binary: a triggered plan
//! fetches a document from a loopback HTTP server (`http.request` through the
//! `http_docs` grant), hands its body to `llm.generate` on a loopback OpenAI-compatible
//! server (through the `llm_summarize` grant: one provider, one model, a max_tokens
//! ceiling; the API key is a secret reference resolved only at dispatch), and raises the
//! summary to the reducer `demo/SummarySM@1`. A request for another model is denied by
//! the grant, journaled, and never reaches the server. The key appears nowhere in the
//! world directory or in any command output. The reducer module is built by
//! `scripts/build-reducers.sh`; a missing module fails the test.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};

use aos_store::receipt::Receipt;
use aos_store::world::{Access, World};
use common::{aos, expect_code, journal, kinds, nat, repo, stderr, stdout};
use serde_json::{json, Value};

const REDUCER: &str = "demo/SummarySM@1";
const TRIGGER: &str = "demo/SummarizeRequest@1";
const MODEL: &str = "summarizer-small";
const KEY: &str = "sk-loopback-7f3a9c1e5d2b8406";
const DOCUMENT: &str = "AIR plans orchestrate effects. Reducers stay deterministic. \
    Every receipt is signed and journaled, so a world replays to the same state.";
/// How long a server's report may lag the command that caused it.
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const COMPLETION: &str = "Plans run effects; reducers record results; replay is exact.";

/// Every command's output, to check that the key never shows.
struct Outputs(Vec<String>);

impl Outputs {
    fn run(&mut self, root: &Path, args: &[&str]) -> Output {
        let o = aos(root, args);
        self.keep(&o);
        o
    }

    fn keep(&mut self, o: &Output) {
        self.0.push(stdout(o));
        self.0.push(stderr(o));
    }
}

fn world(outputs: &mut Outputs) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let air = repo().join("examples/summarizer/air");
    let module = format!(
        "{REDUCER}={}",
        common::reducer_wasm("summarizer.wasm", "AOS_SUMMARIZER_WASM").display()
    );
    let o = outputs.run(
        d.path(),
        &[
            "init",
            "w",
            "--air",
            air.to_str().unwrap(),
            "--module",
            &module,
        ],
    );
    expect_code(&o, 0);
    let root = d.path().join("w");
    (d, root)
}

/// A loopback HTTP/1.1 server on 127.0.0.1 answering every request with `body`; each
/// request's head goes to the returned channel.
fn serve_document(body: &'static str) -> (u16, Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (head, _) = read_request(&mut conn);
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
            if tx.send(head).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// A loopback OpenAI-compatible chat-completions server: a request to
/// `/v1/chat/completions` with `Authorization: Bearer {key}` gets a completion of
/// `completion` with usage (12 prompt, 7 completion tokens); anything else a 401 or 404.
/// Each request's (head, body) goes to the returned channel.
fn serve_llm(key: &'static str, completion: &'static str) -> (u16, Receiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (head, body) = read_request(&mut conn);
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let authorized = head
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {key}")));
            let (status, answer) = if !head.starts_with("POST /v1/chat/completions ") {
                (
                    "404 Not Found",
                    json!({"error": {"message": "no such route"}}),
                )
            } else if !authorized {
                ("401 Unauthorized", json!({"error": {"message": "bad key"}}))
            } else {
                (
                    "200 OK",
                    json!({
                        "id": "chatcmpl-loopback",
                        "object": "chat.completion",
                        "model": body["model"],
                        "choices": [{
                            "index": 0,
                            "message": {"role": "assistant", "content": completion},
                            "finish_reason": "stop"
                        }],
                        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
                    }),
                )
            };
            let answer = answer.to_string();
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            let _ = conn.write_all(reply.as_bytes());
            if tx.send((head, body)).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// The head (up to the blank line) and the `content-length` body of one request.
fn read_request(conn: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break data.len(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = data[end..].to_vec();
    while body.len() < len {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    (head, body)
}

/// Add `llm.providers` to the world's `.aos/config.json`, keeping everything else.
fn configure_llm(root: &Path, llm_port: u16) {
    let path = root.join(".aos/config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["llm"] = json!({
        "providers": [{
            "provider_id": "local",
            "base_url": format!("http://127.0.0.1:{llm_port}/v1"),
            "default_model": MODEL,
            "prompt_cents_per_1k": 100.0,
            "completion_cents_per_1k": 200.0
        }]
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

/// `aos secret set NAME` with the value on standard input.
fn set_secret(root: &Path, name: &str, value: &str, outputs: &mut Outputs) {
    let mut child = Command::new(common::aos_bin())
        .args(["secret", "set", name])
        .current_dir(root)
        .env("USER", "tester")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    outputs.keep(&o);
    expect_code(&o, 0);
}

fn state(root: &Path, outputs: &mut Outputs) -> Value {
    let o = outputs.run(root, &["--format", "json", "state", REDUCER]);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    v["state"].clone()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn summarizer_fetches_a_document_summarizes_it_under_the_llm_grant_and_the_reducer_records_it() {
    let mut outputs = Outputs(Vec::new());
    let (_d, root) = world(&mut outputs);
    let (doc_port, doc_heads) = serve_document(DOCUMENT);
    let (llm_port, llm_requests) = serve_llm(KEY, COMPLETION);
    configure_llm(&root, llm_port);
    set_secret(&root, "LLM_API_KEY", KEY, &mut outputs);

    // The trigger starts the plan: GET the document, then summarize it.
    let url = format!("http://127.0.0.1:{doc_port}/doc.txt");
    let o = outputs.run(
        &root,
        &[
            "send",
            TRIGGER,
            &json!({"url": url, "model": MODEL}).to_string(),
        ],
    );
    expect_code(&o, 0);
    let head = doc_heads
        .recv_timeout(WAIT)
        .expect("the document was fetched");
    assert!(head.starts_with("GET /doc.txt HTTP/1.1"), "{head}");
    let (llm_head, llm_body) = llm_requests
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("the LLM was not asked: {:#?}", journal(&root)));
    assert!(
        llm_head.starts_with("POST /v1/chat/completions "),
        "{llm_head}"
    );
    assert_eq!(llm_body["model"], MODEL, "{llm_body}");
    assert_eq!(llm_body["max_tokens"], 128, "{llm_body}");
    assert_eq!(llm_body["messages"][0]["content"], DOCUMENT, "{llm_body}");

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
    let ended = recs.iter().find(|r| r["kind"] == "plan_ended").unwrap();
    assert_eq!(ended["body"]["status"], "ok", "{ended}");

    // The llm.generate receipt: signed, ok, with token usage and cost.
    let w = World::open(&root, Access::Read).unwrap();
    let signing = w.config.signing_key().expect("the world has a signing key");
    let receipts: Vec<Receipt> = recs
        .iter()
        .filter(|r| r["kind"] == "effect_receipt")
        .map(|r| Receipt::from_json(&r["body"]["receipt"]).unwrap())
        .collect();
    assert_eq!(receipts.len(), 2, "one fetch, one generate");
    for r in &receipts {
        r.verify(signing).expect("the receipt's signature verifies");
    }
    drop(w);
    let llm = receipts
        .iter()
        .find(|r| r.payload.get("token_usage").is_some())
        .expect("an llm.generate receipt");
    assert_eq!(nat(&llm.payload["token_usage"]["prompt"]), 12);
    assert_eq!(nat(&llm.payload["token_usage"]["completion"]), 7);
    // 12 × 1¢/token·1000⁻¹·100 + 7 × 200/1000 rounds up to 3¢.
    assert_eq!(nat(&llm.payload["cost_cents"]), 3);
    assert_eq!(llm.payload["provider_id"], "local");

    // The reducer holds the summary; the blob is the completion.
    let st = state(&root, &mut outputs);
    assert_eq!(nat(&st["summaries"]), 1, "{st}");
    assert_eq!(st["last_url"], url.as_str());
    assert_eq!(st["last_model"], MODEL);
    assert_eq!(nat(&st["prompt_tokens"]), 12);
    assert_eq!(nat(&st["completion_tokens"]), 7);
    let output_ref = st["last_output_ref"].as_str().unwrap().to_string();
    assert_eq!(
        output_ref,
        llm.payload["output_ref"].as_str().unwrap(),
        "the reducer records the receipt's output blob"
    );
    let o = outputs.run(&root, &["blob", "get", &output_ref]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), COMPLETION);

    // Another model is denied by the llm.basic grant: journaled, never sent.
    let before = journal(&root).len();
    let o = outputs.run(
        &root,
        &[
            "send",
            TRIGGER,
            &json!({"url": url, "model": "gpt-huge"}).to_string(),
        ],
    );
    expect_code(&o, 0);
    doc_heads
        .recv_timeout(WAIT)
        .expect("the second run fetched the document");
    assert!(
        llm_requests.try_recv().is_err(),
        "a denied model never reaches the server"
    );
    let recs = journal(&root);
    let new = &recs[before..];
    let denial = new
        .iter()
        .find(|r| r["kind"] == "policy_decision" && r["body"]["allowed"] == false)
        .unwrap_or_else(|| panic!("no journaled denial: {new:#?}"));
    let cap = &denial["body"]["cap"];
    assert_eq!(cap["allowed"], false, "{denial}");
    assert_eq!(cap["code"], "model_not_allowed", "{denial}");
    assert_eq!(cap["grant"], "llm_summarize", "{denial}");
    assert!(
        cap["reason"].as_str().unwrap().contains("gpt-huge"),
        "{denial}"
    );
    let last_end = new
        .iter()
        .rev()
        .find(|r| r["kind"] == "plan_ended")
        .expect("the denied run ended");
    assert_eq!(last_end["body"]["status"], "error", "{last_end}");
    assert!(
        last_end["body"]["error"]
            .as_str()
            .unwrap()
            .contains("gpt-huge"),
        "{last_end}"
    );
    assert_eq!(
        new.iter().filter(|r| r["kind"] == "effect_receipt").count(),
        1,
        "only the fetch of the denied run has a receipt"
    );
    let st = state(&root, &mut outputs);
    assert_eq!(nat(&st["summaries"]), 1, "{st}");

    // Replay and fsck are clean.
    expect_code(&outputs.run(&root, &["replay", "--verify"]), 0);
    expect_code(&outputs.run(&root, &["fsck"]), 0);
    // Every record traces back to a root.
    expect_code(&outputs.run(&root, &["why", "--check"]), 0);
    let o = outputs.run(&root, &["receipts", "verify"]);
    expect_code(&o, 0);
    let o = outputs.run(&root, &["log"]);
    expect_code(&o, 0);

    // The key is in no file of the world but the secret store, and in no output.
    let mut all = Vec::new();
    files(&root, &mut all);
    let secrets_dir = root.join(".aos/secrets");
    let mut checked = 0;
    for f in &all {
        if f.starts_with(&secrets_dir) {
            continue;
        }
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !contains(&bytes, KEY.as_bytes()),
            "the key leaked into {}",
            f.display()
        );
        checked += 1;
    }
    assert!(checked > 5, "checked {checked} files");
    for (i, out) in outputs.0.iter().enumerate() {
        assert!(!out.contains(KEY), "the key leaked into output #{i}: {out}");
    }
}
