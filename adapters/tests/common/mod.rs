//! Test helpers: a tiny HTTP/1.1 server on 127.0.0.1 (one request per connection,
//! answered with `connection: close`), an object store in a temp dir, and request
//! builders.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use aos_adapters::adapter::{allow_any_url, no_secrets, Adapter, Outcome, Request};
use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::Value;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Lower-cased names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
pub enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Wait, then answer.
    Slow(Duration, Box<Reply>),
    /// A body of `total` bytes read to the close (no content-length), or with a
    /// content-length when `declare` is set.
    Stream { total: u64, declare: bool },
    /// Headers declaring a body, a few bytes of it, then a stall.
    Stall(Duration),
}

impl Reply {
    pub fn status(status: u16, body: &[u8]) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body: body.to_vec(),
        }
    }
    pub fn ok(body: &[u8]) -> Reply {
        Reply::status(200, body)
    }
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(v).unwrap(),
        }
    }
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("location".into(), location.into())],
            body: b"moved".to_vec(),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Full { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A server on a free port of 127.0.0.1, stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (connections, seen, stop) = (connections.clone(), seen.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (seen, handler) = (seen.clone(), handler.clone());
                    thread::spawn(move || serve(stream, &seen, &*handler));
                }
            });
        }
        Server {
            addr,
            connections,
            seen,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&stream) else {
        return;
    };
    seen.lock().unwrap().push(req.clone());
    let mut out = stream;
    let _ = respond(&mut out, handler(&req));
    let _ = out.flush();
    let _ = out.shutdown(Shutdown::Both);
}

fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

fn respond(out: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nconnection: close\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (n, v) in headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            out.write_all(&body)
        }
        Reply::Slow(d, then) => {
            thread::sleep(d);
            respond(out, *then)
        }
        Reply::Stall(d) => {
            out.write_all(
                b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 100\r\n\r\nfirst bytes",
            )?;
            out.flush()?;
            thread::sleep(d);
            Ok(())
        }
        Reply::Stream { total, declare } => {
            let mut head = "HTTP/1.1 200 OK\r\nconnection: close\r\n".to_string();
            if declare {
                head.push_str(&format!("content-length: {total}\r\n"));
            }
            head.push_str("\r\n");
            out.write_all(head.as_bytes())?;
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = total;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                out.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            Ok(())
        }
    }
}

/// An object store in a fresh temp dir (kept alive by the returned guard).
pub fn store() -> (tempfile::TempDir, ObjectStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ObjectStore::create(&dir.path().join("objects"), &[]).unwrap();
    (dir, s)
}

/// Run one intent with the default callbacks (every URL allowed, no secrets).
pub fn run(adapter: &dyn Adapter, kind: &str, params: &Value, key: &str) -> Outcome {
    let req = Request {
        intent_hash: Hash::of(key.as_bytes()),
        kind,
        params,
        idempotency_key: key,
        allow_url: &allow_any_url,
        secrets: &no_secrets,
    };
    adapter.run(&req)
}

/// The message of a failed outcome.
pub fn message(o: &Outcome) -> String {
    o.payload["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A nat under the 64-bit rule (a number, or a decimal string above 2^53).
pub fn nat(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_u64().unwrap(),
    }
}
