//! A JWKS server on loopback for the tests: plain HTTP/1.1 over a real socket, one response
//! per connection (`Connection: close`, so that a server that goes away is gone), and a switch
//! for what it serves: keys, garbage, an empty set, an oversized or slow body, an error
//! status, or a response held until the test releases it. It counts the requests it gets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use scopekey::jwks::MAX_JWKS_LEN;
use scopekey::{KeySet, SigningKey};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// What the server answers.
#[derive(Clone)]
pub(crate) enum Serve {
    /// This text, as `application/json`.
    Json(String),
    /// Random bytes that are not JSON.
    Garbage,
    /// One byte over the cap, with a `Content-Length` that says so.
    OversizedDeclared,
    /// Over the cap, chunked (no length declared), 4 KiB at a time, for as long as read.
    OversizedStreamed,
    /// The start of a JWKS, then nothing for a minute.
    Slow,
    /// This status, with an empty body.
    Status(u16),
    /// The keys, once the test calls [`JwksServer::release`].
    Held(String),
}

struct State {
    serve: Mutex<Serve>,
    cache_control: Mutex<Option<String>>,
    hits: AtomicU64,
    gate: Notify,
}

/// The server; [`stop`](Self::stop) makes it go away, [`restart`](Self::restart) brings it back
/// on the same address.
pub(crate) struct JwksServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The JWKS of these keys.
pub(crate) fn jwks(keys: &[&SigningKey]) -> String {
    let mut set = KeySet::new();
    for k in keys {
        set.insert(k.public_key().clone());
    }
    set.to_jwks(time::OffsetDateTime::now_utc())
}

impl JwksServer {
    pub(crate) async fn start(serve: Serve) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            serve: Mutex::new(serve),
            cache_control: Mutex::new(None),
            hits: AtomicU64::new(0),
            gate: Notify::new(),
        });
        let task = tokio::spawn(accept(listener, state.clone()));
        Self {
            addr,
            state,
            task: Mutex::new(Some(task)),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    pub(crate) fn serve(&self, serve: Serve) {
        *self.state.serve.lock().unwrap() = serve;
    }

    pub(crate) fn cache_control(&self, value: Option<&str>) {
        *self.state.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    /// Requests received so far.
    pub(crate) fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have arrived.
    pub(crate) async fn wait_for_hits(&self, n: u64) {
        while self.hits() < n {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Lets one held response go.
    pub(crate) fn release(&self) {
        self.state.gate.notify_one();
    }

    /// Closes the listener: connections are refused from now on.
    pub(crate) async fn stop(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same address.
    pub(crate) async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let task = tokio::spawn(accept(listener, self.state.clone()));
        *self.task.lock().unwrap() = Some(task);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(answer(stream, state.clone()));
    }
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    // The request head (GETs have no body); 16 KiB is plenty for reqwest's.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    state.hits.fetch_add(1, Ordering::SeqCst);
    let serve = state.serve.lock().unwrap().clone();
    let cache = state.cache_control.lock().unwrap().clone();
    let cache = cache.map_or(String::new(), |c| format!("cache-control: {c}\r\n"));
    let write = |status: u16, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{cache}connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let out = match serve {
        Serve::Json(text) => write(200, text.as_bytes()),
        Serve::Held(text) => {
            state.gate.notified().await;
            write(200, text.as_bytes())
        }
        Serve::Garbage => write(200, b"\x00\xff{not json at all"),
        Serve::Status(code) => write(code, b""),
        Serve::OversizedDeclared => {
            let mut body = br#"{"keys":[],"pad":""#.to_vec();
            body.resize(MAX_JWKS_LEN + 1, b'a');
            write(200, &body)
        }
        Serve::OversizedStreamed => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n{cache}connection: close\r\n\r\n"
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("1000\r\n{}\r\n", "a".repeat(0x1000));
            // Far past the cap; the client hangs up long before.
            for _ in 0..4096 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
            return;
        }
        Serve::Slow => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"keys\":[";
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return;
        }
    };
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}
