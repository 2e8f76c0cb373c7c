//! `llm.generate` against an OpenAI-compatible server on 127.0.0.1.

mod common;

use aos_adapters::adapter::{allow_any_url, dispatch, Adapter, Request};
use aos_adapters::llm::{LlmAdapter, LlmConfig};
use aos_adapters::{ReceiptSigner, Status};
use aos_store::Hash;
use common::{message, store, Reply, Server};
use serde_json::{json, Value};

const KEY: &str = "sk-test-9f8e7d6c5b4a";

fn completion_server() -> Server {
    Server::start(|seen| {
        if seen.target != "/v1/chat/completions" || seen.method != "POST" {
            return Reply::status(404, b"no such route");
        }
        if seen.header("authorization") != Some(&format!("Bearer {KEY}")) {
            // Like real providers, echo (part of) what was sent.
            let sent = seen.header("authorization").unwrap_or("nothing");
            return Reply::json(
                401,
                &json!({"error": {"message": format!("Incorrect API key provided: {sent}")}}),
            );
        }
        let req: Value = serde_json::from_slice(&seen.body).unwrap();
        let last = req["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string();
        Reply::json(
            200,
            &json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("echo: {last} (model {}, max {}, t {})", req["model"].as_str().unwrap(), req["max_tokens"], req["temperature"])}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1200, "completion_tokens": 800, "total_tokens": 2000},
            }),
        )
    })
}

fn config(server: &Server) -> LlmConfig {
    LlmConfig {
        provider_id: "local".into(),
        base_url: server.url("/v1/"),
        default_model: "tiny-1".into(),
        api_key_secret: Some("LLM_KEY".into()),
        prompt_cents_per_1k: 1.0,
        completion_cents_per_1k: 2.5,
        ..LlmConfig::default()
    }
}

fn params(input_ref: Hash, api_key: Value) -> Value {
    json!({
        "provider": "local",
        "model": "",
        "temperature": "0.5",
        "max_tokens": 64,
        "input_ref": input_ref.to_string(),
        "tools": null,
        "api_key": api_key,
    })
}

fn secrets(name: &str) -> Option<String> {
    match name {
        "LLM_KEY" | "other-alias" => Some(KEY.to_string()),
        "WRONG_KEY" => Some(format!("{KEY}-wrong")),
        _ => None,
    }
}

fn request<'a>(p: &'a Value) -> Request<'a> {
    Request {
        intent_hash: Hash::of(b"llm"),
        kind: "llm.generate",
        params: p,
        idempotency_key: "llm-1",
        allow_url: &allow_any_url,
        secrets: &secrets,
    }
}

#[test]
fn chat_completion_gives_output_blob_usage_and_cost() {
    let (_dir, objects) = store();
    let server = completion_server();
    let llm = LlmAdapter::new(objects.clone(), vec![config(&server)]).unwrap();
    let input = objects.put_bytes(b"say hi").unwrap();
    let p = params(input, Value::Null);
    let signer = ReceiptSigner::generate().unwrap();
    let receipt = dispatch(&llm, &request(&p), &signer).unwrap();
    assert_eq!(receipt.status, Status::Ok, "{:?}", receipt.payload);
    receipt.verify(&signer.public_key()).unwrap();
    assert_eq!(receipt.adapter_id, "llm");
    // 1200 * 1.0/1000 + 800 * 2.5/1000 = 1.2 + 2.0 = 3.2 → 4 cents.
    assert_eq!(receipt.cost_cents, Some(4));
    assert_eq!(receipt.payload["cost_cents"], 4);
    assert_eq!(
        receipt.payload["token_usage"],
        json!({"prompt": 1200, "completion": 800})
    );
    assert_eq!(receipt.payload["provider_id"], "local");
    let out: Hash = receipt.payload["output_ref"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        String::from_utf8(objects.get(&out).unwrap()).unwrap(),
        "echo: say hi (model tiny-1, max 64, t 0.5)"
    );

    // The key went out as a Bearer header, and nowhere into the receipt.
    let seen = server.seen();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let text = serde_json::to_string(&receipt.to_json()).unwrap();
    assert!(!text.contains(KEY), "{text}");
}

#[test]
fn messages_input_and_secret_reference_in_params() {
    let (_dir, objects) = store();
    let server = completion_server();
    let mut cfg = config(&server);
    cfg.api_key_secret = None;
    let llm = LlmAdapter::new(objects.clone(), vec![cfg]).unwrap();
    let input = objects
        .put_bytes(br#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"ping"}]}"#)
        .unwrap();
    let mut p = params(
        input,
        json!({"$tag": "secret", "$value": {"alias": "other-alias", "version": 1}}),
    );
    p["model"] = json!("big-2");
    let o = llm.run(&request(&p));
    assert_eq!(o.status, Status::Ok, "{:?}", o.payload);
    let out: Hash = o.payload["output_ref"].as_str().unwrap().parse().unwrap();
    assert!(String::from_utf8(objects.get(&out).unwrap())
        .unwrap()
        .starts_with("echo: ping (model big-2"));
    let sent: Value = serde_json::from_slice(&server.seen()[0].body).unwrap();
    assert_eq!(sent["messages"][0]["role"], "system");

    // A missing secret: nothing is sent.
    let p = params(
        input,
        json!({"$tag": "secret", "$value": {"alias": "nope", "version": 1}}),
    );
    let o = llm.run(&request(&p));
    assert_eq!(o.status, Status::Error);
    assert!(message(&o).contains("\"nope\""), "{}", message(&o));
    assert_eq!(server.connections(), 1);
}

#[test]
fn the_key_never_appears_in_error_text() {
    let (_dir, objects) = store();
    let server = completion_server();
    let mut cfg = config(&server);
    cfg.api_key_secret = Some("WRONG_KEY".into());
    let llm = LlmAdapter::new(objects.clone(), vec![cfg]).unwrap();
    let input = objects.put_bytes(b"hello").unwrap();
    let signer = ReceiptSigner::generate().unwrap();
    let p = params(input, Value::Null);
    let receipt = dispatch(&llm, &request(&p), &signer).unwrap();
    assert_eq!(receipt.status, Status::Error);
    let msg = receipt.payload["message"].as_str().unwrap();
    assert!(msg.contains("401"), "{msg}");
    assert!(msg.contains("[redacted]"), "{msg}");
    let text = serde_json::to_string(&receipt.to_json()).unwrap();
    assert!(!text.contains(KEY), "{text}");
    // The server did see the (wrong) key: the echo was really there to redact.
    assert!(server.seen()[0]
        .header("authorization")
        .unwrap()
        .contains(KEY));
}

#[test]
fn refused_url_unknown_provider_tools_and_bad_answers() {
    let (_dir, objects) = store();
    let server = completion_server();
    let llm = LlmAdapter::new(objects.clone(), vec![config(&server)]).unwrap();
    let input = objects.put_bytes(b"hello").unwrap();

    let p = params(input, Value::Null);
    let deny = |_: &str, _: &str| Err("llm host not granted".to_string());
    let req = Request {
        allow_url: &deny,
        ..request(&p)
    };
    let o = llm.run(&req);
    assert!(
        message(&o).contains("llm host not granted"),
        "{}",
        message(&o)
    );
    assert_eq!(server.connections(), 0);

    let mut p = params(input, Value::Null);
    p["provider"] = json!("elsewhere");
    assert!(message(&llm.run(&request(&p))).contains("elsewhere"));

    let mut p = params(input, Value::Null);
    p["tools"] = json!(["search"]);
    assert!(message(&llm.run(&request(&p))).contains("not supported"));

    let bad = Server::start(|_| Reply::json(200, &json!({"choices": []})));
    let llm = LlmAdapter::new(
        objects.clone(),
        vec![LlmConfig {
            base_url: bad.url("/v1"),
            ..config(&server)
        }],
    )
    .unwrap();
    let o = llm.run(&request(&params(input, Value::Null)));
    assert_eq!(o.status, Status::Error);
    assert!(
        message(&o).contains("not a chat completion"),
        "{}",
        message(&o)
    );
}
