//! `http.request` against real servers on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aos_adapters::adapter::{dispatch, no_secrets, Adapter, Request};
use aos_adapters::http::{HttpAdapter, HttpConfig};
use aos_adapters::{ReceiptSigner, Status};
use aos_store::Hash;
use common::{message, nat, run, store, Reply, Server};
use serde_json::{json, Value};

fn adapter(store: &aos_store::objects::ObjectStore, config: HttpConfig) -> HttpAdapter {
    HttpAdapter::new(store.clone(), config).unwrap()
}

fn params(method: &str, url: &str, body_ref: Option<Hash>) -> Value {
    json!({
        "method": method,
        "url": url,
        "headers": {"X-Test": "yes", "Idempotency-Key": "from-params", "Host": "evil.example"},
        "body_ref": body_ref.map(|h| h.to_string()),
    })
}

#[test]
fn get_and_post_round_trip_with_body_blobs_and_idempotency_key() {
    let (_dir, objects) = store();
    let server = Server::start(|seen| {
        let mut reply_body = format!("{} {} ", seen.method, seen.target).into_bytes();
        reply_body.extend_from_slice(&seen.body);
        Reply::ok(&reply_body)
            .with_header("X-Reply", "a")
            .with_header("x-reply", "b")
            .with_header("Content-Type", "text/plain")
    });
    let http = adapter(&objects, HttpConfig::default());

    let got = run(
        &http,
        "http.request",
        &params("get", &server.url("/hello?x=1"), None),
        "key-get",
    );
    assert_eq!(got.status, Status::Ok, "{:?}", got.payload);
    assert_eq!(got.payload["status"], 200);
    assert_eq!(got.payload["headers"]["x-reply"], "a, b");
    assert_eq!(got.payload["headers"]["content-type"], "text/plain");
    assert_eq!(got.payload["adapter_id"], "http");
    assert_eq!(nat(&got.payload["timings"]["start_ns"]), got.started_ns);
    assert_eq!(nat(&got.payload["timings"]["end_ns"]), got.finished_ns);
    let body_ref: Hash = got.payload["body_ref"].as_str().unwrap().parse().unwrap();
    assert_eq!(objects.get(&body_ref).unwrap(), b"GET /hello?x=1 ");

    let request_body = objects.put_bytes(b"{\"n\":1}").unwrap();
    let posted = run(
        &http,
        "http.request",
        &params("POST", &server.url("/submit"), Some(request_body)),
        "key-post",
    );
    assert_eq!(posted.status, Status::Ok, "{:?}", posted.payload);
    let body_ref: Hash = posted.payload["body_ref"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(objects.get(&body_ref).unwrap(), b"POST /submit {\"n\":1}");

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("idempotency-key"), Some("key-get"));
    assert_eq!(seen[1].header("idempotency-key"), Some("key-post"));
    assert_eq!(seen[0].header("x-test"), Some("yes"));
    // The Host header is the URL's, never the params'.
    assert_eq!(
        seen[0].header("host"),
        Some(server.addr.to_string().as_str())
    );
    assert_eq!(seen[1].body, b"{\"n\":1}");
    assert!(seen[0].body.is_empty());
}

#[test]
fn empty_body_has_no_body_ref_and_error_statuses_are_responses() {
    let (_dir, objects) = store();
    let server = Server::start(|_| Reply::status(404, b""));
    let http = adapter(&objects, HttpConfig::default());
    let o = run(
        &http,
        "http.request",
        &params("GET", &server.url("/"), None),
        "k",
    );
    assert_eq!(o.status, Status::Ok);
    assert_eq!(o.payload["status"], 404);
    assert_eq!(o.payload["body_ref"], Value::Null);
}

#[test]
fn redirects_are_followed_and_each_target_is_checked_first() {
    let (_dir, objects) = store();
    let target = Server::start(|seen| Reply::ok(format!("landed {}", seen.method).as_bytes()));
    let to = target.url("/final");
    let first = Server::start(move |seen| match seen.target.as_str() {
        "/start" => Reply::redirect(302, "/middle"),
        _ => Reply::redirect(303, &to),
    });
    let http = adapter(&objects, HttpConfig::default());
    let checked = std::sync::Mutex::new(Vec::new());
    let allow = |m: &str, u: &str| {
        checked.lock().unwrap().push(format!("{m} {u}"));
        Ok(())
    };
    let body = objects.put_bytes(b"payload").unwrap();
    let p = params("POST", &first.url("/start"), Some(body));
    let req = Request {
        intent_hash: Hash::of(b"r"),
        kind: "http.request",
        params: &p,
        idempotency_key: "redir",
        allow_url: &allow,
        secrets: &no_secrets,
    };
    let o = http.run(&req);
    assert_eq!(o.status, Status::Ok, "{:?}", o.payload);
    let body_ref: Hash = o.payload["body_ref"].as_str().unwrap().parse().unwrap();
    // 302 after POST and 303 both continue as GET without the body.
    assert_eq!(objects.get(&body_ref).unwrap(), b"landed GET");
    assert_eq!(
        *checked.lock().unwrap(),
        vec![
            format!("POST {}", first.url("/start")),
            format!("GET {}", first.url("/middle")),
            format!("GET {}", target.url("/final")),
        ]
    );
    let seen = target.seen();
    assert_eq!(seen[0].header("idempotency-key"), Some("redir"));
    assert!(seen[0].body.is_empty());
}

#[test]
fn a_redirect_to_a_disallowed_host_is_never_contacted() {
    let (_dir, objects) = store();
    let forbidden = Server::start(|_| Reply::ok(b"should never be reached"));
    let forbidden_url = forbidden.url("/steal");
    let allowed = Server::start({
        let to = forbidden_url.clone();
        move |_| Reply::redirect(307, &to)
    });
    let allowed_port = allowed.addr.port();
    let allow = move |_: &str, u: &str| {
        if u.starts_with(&format!("http://127.0.0.1:{allowed_port}/")) {
            Ok(())
        } else {
            Err("host not in the grant".to_string())
        }
    };
    let p = params("GET", &allowed.url("/go"), None);
    let req = Request {
        intent_hash: Hash::of(b"x"),
        kind: "http.request",
        params: &p,
        idempotency_key: "k",
        allow_url: &allow,
        secrets: &no_secrets,
    };
    let http = adapter(&objects, HttpConfig::default());
    let o = http.run(&req);
    assert_eq!(o.status, Status::Error);
    let msg = message(&o);
    assert!(msg.contains(&forbidden_url), "{msg}");
    assert!(msg.contains("host not in the grant"), "{msg}");
    assert_eq!(allowed.connections(), 1);
    assert_eq!(forbidden.connections(), 0, "the refused host was contacted");

    // A refused first URL is not contacted either.
    let p = params("GET", &forbidden_url, None);
    let req = Request { params: &p, ..req };
    let o = http.run(&req);
    assert_eq!(o.status, Status::Error);
    assert!(message(&o).contains(&forbidden_url));
    assert_eq!(forbidden.connections(), 0);
}

#[test]
fn too_many_redirects_fail() {
    let (_dir, objects) = store();
    let server = Server::start(|seen| {
        let n: u32 = seen.target.trim_start_matches('/').parse().unwrap_or(0);
        Reply::redirect(301, &format!("/{}", n + 1))
    });
    let http = adapter(&objects, HttpConfig::default());
    let o = run(
        &http,
        "http.request",
        &params("GET", &server.url("/0"), None),
        "k",
    );
    assert_eq!(o.status, Status::Error);
    assert!(
        message(&o).contains("more than 5 redirects"),
        "{}",
        message(&o)
    );
    assert_eq!(server.seen().len(), 6);
}

#[test]
fn a_slow_server_hits_the_timeout() {
    let (_dir, objects) = store();
    let server =
        Server::start(|_| Reply::Slow(Duration::from_secs(3), Box::new(Reply::ok(b"late"))));
    let http = adapter(
        &objects,
        HttpConfig {
            timeout: Duration::from_millis(300),
            ..HttpConfig::default()
        },
    );
    let t = Instant::now();
    let o = run(
        &http,
        "http.request",
        &params("GET", &server.url("/slow"), None),
        "k",
    );
    assert_eq!(o.status, Status::Timeout, "{:?}", o.payload);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(message(&o).contains("timed out"), "{}", message(&o));

    // The budget covers the body too: a server that stalls mid-body times out as well.
    let stalling = Server::start(|_| Reply::Stall(Duration::from_secs(3)));
    let t = Instant::now();
    let o = run(
        &http,
        "http.request",
        &params("GET", &stalling.url("/stall"), None),
        "k",
    );
    assert_eq!(o.status, Status::Timeout, "{:?}", o.payload);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_huge_response_hits_the_cap() {
    let (_dir, objects) = store();
    let cap = 1024 * 1024;
    let config = HttpConfig {
        max_response_bytes: cap,
        ..HttpConfig::default()
    };
    let http = adapter(&objects, config);
    for declare in [false, true] {
        let server = Server::start(move |_| Reply::Stream {
            total: 64 * 1024 * 1024,
            declare,
        });
        let o = run(
            &http,
            "http.request",
            &params("GET", &server.url("/big"), None),
            "k",
        );
        assert_eq!(o.status, Status::Error, "{:?}", o.payload);
        assert!(message(&o).contains(&cap.to_string()), "{}", message(&o));
    }
    // Exactly at the cap is fine.
    let server = Server::start(move |_| Reply::Stream {
        total: cap,
        declare: false,
    });
    let o = run(
        &http,
        "http.request",
        &params("GET", &server.url("/edge"), None),
        "k",
    );
    assert_eq!(o.status, Status::Ok, "{:?}", o.payload);
}

#[test]
fn bad_params_and_missing_blobs_are_errors() {
    let (_dir, objects) = store();
    let http = adapter(&objects, HttpConfig::default());
    let o = run(
        &http,
        "http.request",
        &json!({"url": "http://127.0.0.1:9/"}),
        "k",
    );
    assert_eq!(o.status, Status::Error);
    assert!(
        message(&o).contains("bad http.request params"),
        "{}",
        message(&o)
    );
    let missing = Hash::of(b"nowhere");
    let o = run(
        &http,
        "http.request",
        &params("POST", "http://127.0.0.1:9/", Some(missing)),
        "k",
    );
    assert!(
        message(&o).contains(&missing.to_string()),
        "{}",
        message(&o)
    );
    let o = run(
        &http,
        "http.request",
        &params("GET", "not a url", None),
        "k",
    );
    assert_eq!(o.status, Status::Error);
    let o = run(&http, "blob.put", &json!({}), "k");
    assert!(
        message(&o).contains("does not run blob.put"),
        "{}",
        message(&o)
    );
    // https to a plain-http server fails cleanly (with or without the https feature).
    let plain = Server::start(|_| Reply::ok(b"not tls"));
    let o = run(
        &http,
        "http.request",
        &params("GET", &format!("https://{}/", plain.addr), None),
        "k",
    );
    assert_eq!(o.status, Status::Error, "{:?}", o.payload);
    // A closed port is a transport error, not a timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = run(
        &http,
        "http.request",
        &params("GET", &format!("http://{closed}/"), None),
        "k",
    );
    assert_eq!(o.status, Status::Error, "{:?}", o.payload);
}

#[test]
fn concurrent_requests_give_signed_receipts() {
    let (_dir, objects) = store();
    let server = Server::start(|seen| Reply::ok(seen.target.as_bytes()));
    let http = Arc::new(adapter(&objects, HttpConfig::default()));
    let signer = Arc::new(ReceiptSigner::generate().unwrap());
    let url = server.url("");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (http, signer, url) = (http.clone(), signer.clone(), url.clone());
            thread::spawn(move || {
                let p = params("GET", &format!("{url}/{i}"), None);
                let key = format!("k{i}");
                let req = Request {
                    intent_hash: Hash::of(key.as_bytes()),
                    kind: "http.request",
                    params: &p,
                    idempotency_key: &key,
                    allow_url: &aos_adapters::adapter::allow_any_url,
                    secrets: &no_secrets,
                };
                dispatch(&*http, &req, &signer).unwrap()
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let r = h.join().unwrap();
        r.verify(&signer.public_key()).unwrap();
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.effect_kind, "http.request");
        assert_eq!(r.adapter_id, http.id());
        let body: Hash = r.payload["body_ref"].as_str().unwrap().parse().unwrap();
        assert_eq!(objects.get(&body).unwrap(), format!("/{i}").as_bytes());
    }
}
