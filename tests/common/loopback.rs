//! A loopback HTTP/1.1 server for end-to-end tests: it listens on 127.0.0.1 only,
//! answers every request `200 ok` and records the request paths in order.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// A loopback HTTP/1.1 server answering every request `200 ok` and recording its path.
/// The accepting thread lives as long as the test process.
pub struct Server {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with_first_delay(std::time::Duration::ZERO)
    }

    /// Like [`Server::start`], but the reply to the first request comes after `delay`
    /// (each connection is served on its own thread, so later requests are not held up).
    pub fn start_with_first_delay(delay: std::time::Duration) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let line = text.lines().next().unwrap_or_default().to_string();
                    let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                    // Recorded before the reply, so a journaled receipt implies the record.
                    seen.lock().unwrap().push(path);
                    if n == 0 {
                        std::thread::sleep(delay);
                    }
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = conn.write_all(reply.as_bytes());
                });
            }
        });
        Server { port, paths }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}
