//! Test receivers for the notification channels: a webhook receiver that checks the HMAC
//! signature, a stand-in for the Telegram Bot API, and (in [`crate::smtp`]) a real SMTP server.
//!
//! The HTTP ones are a minimal HTTP/1.1 server on `127.0.0.1:0` in a thread (one request per
//! connection, `Connection: close`): every request is recorded; the server can answer an error
//! status to the next N requests, or be "down" (its listener closed, connections refused) and
//! come back on the same port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::wait::wait_for;

/// One HTTP request as received.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub received: Instant,
    /// The status it was answered with.
    pub answered: u16,
}

impl HttpRequest {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What the server answers: `(status, JSON body)` for a request.
type Answer = Box<dyn Fn(&HttpRequest) -> (u16, Value) + Send>;

struct Shared {
    requests: Vec<HttpRequest>,
    /// Answer the next `failures.0` requests with status `failures.1` and body `failures.2`.
    failures: (usize, u16, Value),
    /// Hold the answer to the next `stall.0` requests for `stall.1` (a slow receiver).
    stall: (usize, Duration),
    answer: Answer,
    down: bool,
    listening: bool,
}

/// The minimal HTTP server under both receivers.
struct Server {
    address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(answer: Answer) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        let address = listener.local_addr().context("reading the local address")?;
        let shared = Arc::new(Mutex::new(Shared {
            requests: Vec::new(),
            failures: (0, 503, Value::Null),
            stall: (0, Duration::ZERO),
            answer,
            down: false,
            listening: true,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || serve(listener, address, &shared, &stop))
        };
        Ok(Self {
            address,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_down(&self, down: bool) {
        self.lock().down = down;
        let what = if down {
            "the listener to close"
        } else {
            "the listener to reopen"
        };
        wait_for(what, Duration::from_secs(10), || {
            (self.lock().listening != down).then_some(())
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stop`; closes and reopens the listener as `down` says.
fn serve(listener: TcpListener, address: SocketAddr, shared: &Mutex<Shared>, stop: &AtomicBool) {
    let lock = || shared.lock().unwrap_or_else(|e| e.into_inner());
    let mut listener = Some(listener);
    while !stop.load(Ordering::SeqCst) {
        let down = lock().down;
        if down && listener.is_some() {
            listener = None;
            lock().listening = false;
        } else if !down
            && listener.is_none()
            && let Ok(l) = TcpListener::bind(address)
        {
            listener = Some(l);
            lock().listening = true;
        }
        let Some(l) = &listener else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if l.set_nonblocking(true).is_err() {
            return;
        }
        match l.accept() {
            Ok((stream, _)) => {
                let _ = handle(stream, shared);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn handle(stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut request = HttpRequest {
        method,
        path,
        headers,
        body,
        received: Instant::now(),
        answered: 0,
    };
    let (status, answer, stall) = {
        let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
        let stall = if shared.stall.0 > 0 {
            shared.stall.0 -= 1;
            shared.stall.1
        } else {
            Duration::ZERO
        };
        let (status, answer) = if shared.failures.0 > 0 {
            shared.failures.0 -= 1;
            (shared.failures.1, shared.failures.2.clone())
        } else {
            (shared.answer)(&request)
        };
        request.answered = status;
        shared.requests.push(request);
        (status, answer, stall)
    };
    // A slow receiver: the client is expected to give up first.
    std::thread::sleep(stall);
    let body = answer.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// One webhook request, checked.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    /// `X-Netmon-Notification`.
    pub notification: Option<String>,
    pub timestamp: Option<String>,
    pub signature: Option<String>,
    /// The signature is `sha256=hex(HMAC-SHA256(secret, timestamp + "." + body))`.
    pub signature_ok: bool,
    pub content_type: Option<String>,
    /// The raw body, as signed.
    pub body: Vec<u8>,
    pub json: Option<Value>,
    pub received: Instant,
    pub answered: u16,
}

/// A webhook receiver verifying `X-Netmon-Signature` with its secret.
pub struct WebhookReceiver {
    server: Server,
    secret: String,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("address", &self.server.address)
            .finish()
    }
}

impl WebhookReceiver {
    /// Starts a receiver answering 200 `{"ok":true}`.
    pub fn start(secret: &str) -> anyhow::Result<Self> {
        Ok(Self {
            server: Server::start(Box::new(|_| (200, json!({"ok": true}))))?,
            secret: secret.to_string(),
        })
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.server.address)
    }

    /// Answers `status` to the next `n` requests.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.server.lock().failures = (n, status, json!({"error": "test"}));
    }

    /// Holds the answer to the next `n` requests for `delay` (to make the sender time out).
    pub fn stall_next(&self, n: usize, delay: Duration) {
        self.server.lock().stall = (n, delay);
    }

    /// Closes the listener (connections refused) or reopens it on the same port; returns once
    /// done.
    pub fn set_down(&self, down: bool) {
        self.server.set_down(down);
    }

    /// Every request so far, checked against the secret.
    pub fn deliveries(&self) -> Vec<WebhookDelivery> {
        let requests = self.server.lock().requests.clone();
        requests
            .iter()
            .map(|r| {
                let timestamp = r.header("x-netmon-timestamp").map(str::to_string);
                let signature = r.header("x-netmon-signature").map(str::to_string);
                let signature_ok = match (&timestamp, &signature) {
                    (Some(t), Some(s)) => verify(&self.secret, t, &r.body, s),
                    _ => false,
                };
                WebhookDelivery {
                    notification: r.header("x-netmon-notification").map(str::to_string),
                    timestamp,
                    signature,
                    signature_ok,
                    content_type: r.header("content-type").map(str::to_string),
                    body: r.body.clone(),
                    json: r.json(),
                    received: r.received,
                    answered: r.answered,
                }
            })
            .collect()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<WebhookDelivery> {
        wait_for(&format!("{n} webhook requests"), timeout, || {
            let d = self.deliveries();
            (d.len() >= n).then_some(d)
        })
    }
}

/// The receiver's side of the signature scheme, written independently of the collector's.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let Some(given) = signature
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    mac.verify_slice(&given).is_ok()
}

/// One `sendMessage` call.
#[derive(Debug, Clone)]
pub struct TelegramCall {
    /// The path held the stub's token.
    pub token_ok: bool,
    pub chat_id: Option<Value>,
    pub text: Option<String>,
    pub disable_web_page_preview: Option<bool>,
    pub answered: u16,
}

/// A stand-in for the Telegram Bot API: `POST /bot<token>/sendMessage`.
pub struct TelegramStub {
    server: Server,
    token: String,
}

impl std::fmt::Debug for TelegramStub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramStub")
            .field("address", &self.server.address)
            .finish()
    }
}

impl TelegramStub {
    /// Starts a stub that accepts messages sent with `token`, and answers 401 to others.
    pub fn start(token: &str) -> anyhow::Result<Self> {
        let path = format!("/bot{token}/sendMessage");
        let server = Server::start(Box::new(move |r| {
            let Some(body) = r.json().filter(|_| r.path == path && r.method == "POST") else {
                return (
                    401,
                    json!({"ok": false, "error_code": 401, "description": "Unauthorized"}),
                );
            };
            let result = json!({
                "message_id": 1,
                "chat": {"id": body["chat_id"]},
                "date": 0,
                "text": body["text"],
            });
            (200, json!({"ok": true, "result": result}))
        }))?;
        Ok(Self {
            server,
            token: token.to_string(),
        })
    }

    /// The base URL to configure (`notify.telegram.base_url`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.server.address)
    }

    /// Answers the next `n` calls with 429 and `retry_after`.
    pub fn rate_limit_next(&self, n: usize, retry_after: u64) {
        self.server.lock().failures = (
            n,
            429,
            json!({"ok": false, "error_code": 429,
                   "description": format!("Too Many Requests: retry after {retry_after}"),
                   "parameters": {"retry_after": retry_after}}),
        );
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<TelegramCall> {
        let path = format!("/bot{}/sendMessage", self.token);
        let requests = self.server.lock().requests.clone();
        requests
            .iter()
            .map(|r| {
                let json = r.json().unwrap_or(Value::Null);
                TelegramCall {
                    token_ok: r.path == path,
                    chat_id: json.get("chat_id").cloned(),
                    text: json.get("text").and_then(Value::as_str).map(str::to_string),
                    disable_web_page_preview: json
                        .get("disable_web_page_preview")
                        .and_then(Value::as_bool),
                    answered: r.answered,
                }
            })
            .collect()
    }

    /// Waits until at least `n` calls arrived and returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<TelegramCall> {
        wait_for(&format!("{n} sendMessage calls"), timeout, || {
            let c = self.calls();
            (c.len() >= n).then_some(c)
        })
    }
}
