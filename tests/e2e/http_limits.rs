//! The HTTP API's defences against slow, idle, oversized and unauthenticated requests, against
//! the real collector binary on loopback: the header timeout closes half-sent requests, the
//! connection limit closes extra idle sockets while `/healthz` comes back once they go, tokens
//! are checked before a body is read, bodies over 4 KiB are refused, silences are bounded, and
//! with `http.read_token` the reads need a token while `/healthz` stays open.
//!
//! Each test runs its own collector with extra `[http]` keys; requests are written by hand on
//! plain sockets, so the test controls what is sent and when, and sees when the server closes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use netmon_tests::daemons::daemon_command;
use netmon_tests::wait::wait_http;
use netmon_tests::{CollectorConfig, Proc, Scratch, shared_url, unique, wait_for};

const TOKEN: &str = "netmon-test-command-token-0123";
const READ_TOKEN: &str = "netmon-test-read-token-0123";
/// The collector's body limit (`http::MAX_BODY`).
const MAX_BODY: usize = 4096;

/// A collector with `http.token` = [`TOKEN`], the `[http]` keys of `http` and an inventory of
/// one site, `giang-trung`; stopped on drop.
struct Api {
    proc: Proc,
    address: SocketAddr,
    config: PathBuf,
    _scratch: Scratch,
}

impl Api {
    fn start(test: &str, http: &str) -> Self {
        let scratch = Scratch::new(test).unwrap();
        let province = unique("http");
        let inventory = format!(
            "[[provinces]]\nid = \"{province}\"\nname = \"Thanh Hóa\"\n\n\
             [[communes]]\nid = \"cam-tu\"\nprovince = \"{province}\"\nname = \"xã Cẩm Tú\"\n\n\
             [[sites]]\nid = \"giang-trung\"\ncommune = \"cam-tu\"\nname = \"thôn Giang Trung\"\nkind = \"village\"\nagents = [\"{}\"]\n",
            unique("giang-trung")
        );
        let inventory = scratch.write("inventory.toml", inventory).unwrap();
        let config = CollectorConfig {
            province: Some(province),
            inventory: Some(inventory.display().to_string()),
            http_token: Some(TOKEN.into()),
            ..CollectorConfig::on_loopback(&shared_url(), &scratch.join("events.db")).unwrap()
        };
        let address: SocketAddr = config.http_listen.parse().unwrap();
        // The harness writes `[http]` with listen and token only; the keys under test go
        // straight after them.
        let toml = config
            .to_toml()
            .replacen("\n[http]\n", &format!("\n[http]\n{http}\n"), 1);
        let path = scratch.write("collector.toml", toml).unwrap();
        let mut command = daemon_command("netmon-collector");
        command.arg("run").arg("--config").arg(&path);
        let mut proc = Proc::spawn("collector", command, &scratch.join("collector.log")).unwrap();
        wait_http(
            &mut proc,
            &format!("http://{address}/healthz"),
            "200",
            "the collector",
            Duration::from_secs(20),
        )
        .unwrap();
        Self {
            proc,
            address,
            config: path,
            _scratch: scratch,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(2)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
    }

    /// Sends `head` (without its blank line) and `body`, returns the status and body of the
    /// answer, read until the server closes (`Connection: close`).
    fn request(&self, head: &str, body: &[u8]) -> (u16, String) {
        let mut stream = self.connect();
        let head = format!(
            "{head}\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        answer(&mut stream, Instant::now() + Duration::from_secs(10))
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let auth = token.map_or(String::new(), |t| format!("\r\nAuthorization: Bearer {t}"));
        self.request(&format!("GET {path} HTTP/1.1{auth}"), b"")
    }

    /// POSTs a JSON command with the command token.
    fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.request(
            &format!(
                "POST {path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}",
                body.len()
            ),
            body.as_bytes(),
        )
    }

    /// `GET /healthz` on a fresh connection: the status, or `None` when the connection is
    /// closed without an answer.
    fn health(&self) -> Option<u16> {
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(2)).ok()?;
        let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        stream.write_all(request).ok()?;
        let mut text = Vec::new();
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.read_to_end(&mut text).ok()?;
        status(&String::from_utf8_lossy(&text))
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command: Command = daemon_command("netmon-collector");
        command.args(args).arg("--config").arg(&self.config);
        command.output().unwrap()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let status = self.proc.terminate(Duration::from_secs(15)).unwrap();
            assert!(status.success(), "collector exited with {status}");
        }
    }
}

fn status(text: &str) -> Option<u16> {
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Reads from `stream` until the server closes it or `deadline` passes (a failure); returns the
/// answer's status and body.
fn answer(stream: &mut TcpStream, deadline: Instant) -> (u16, String) {
    let mut text = Vec::new();
    let closed = read_until_closed(stream, deadline, &mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(closed, "the server did not close the connection: {text}");
    let code = status(&text).unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (code, body)
}

/// Reads until EOF (or a reset: the server closed with data unread) and returns true, or false
/// if `deadline` passes first. What was read is appended to `into`.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant, into: &mut Vec<u8>) -> bool {
    let mut buffer = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("reading from the collector: {e}"),
        }
    }
}

/// Whether the server has closed `stream`, looking without waiting.
fn is_closed(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

#[test]
fn http_limits_half_sent_requests_are_closed_after_the_header_timeout() {
    let api = Api::start("http-header-timeout", "header_timeout = \"1s\"");
    let opened = Instant::now();
    let mut streams: Vec<TcpStream> = (0..50)
        .map(|i| {
            let mut stream = api.connect();
            // Half the connections send part of a request head, the others nothing at all.
            if i % 2 == 0 {
                stream
                    .write_all(b"GET /api/v1/state HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
            }
            stream
        })
        .collect();
    let deadline = opened + Duration::from_secs(10);
    for stream in &mut streams {
        let mut answer = Vec::new();
        assert!(
            read_until_closed(stream, deadline, &mut answer),
            "a half-open connection was still open 10 s after it was opened"
        );
        assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
            "{answer:?}"
        );
    }
    let closed_after = opened.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}, before the 1 s header timeout"
    );
    // A complete request is still served.
    assert_eq!(api.get("/api/v1/intake", None).0, 200);
}

#[test]
fn http_limits_connections_beyond_the_limit_are_closed_at_once() {
    let api = Api::start(
        "http-max-connections",
        "max_connections = 8\nheader_timeout = \"60s\"",
    );
    let held: Vec<TcpStream> = (0..8).map(|_| api.connect()).collect();
    // Connections are accepted in order: these find every permit taken.
    let deadline = Instant::now() + Duration::from_secs(5);
    for _ in 0..4 {
        let mut extra = api.connect();
        let mut answer = Vec::new();
        assert!(
            read_until_closed(&mut extra, deadline, &mut answer),
            "a connection beyond http.max_connections was kept open"
        );
        assert!(answer.is_empty(), "{answer:?}");
    }
    assert_eq!(
        api.health(),
        None,
        "/healthz answered with every slot taken"
    );
    assert!(
        held.iter().all(|s| !is_closed(s)),
        "a connection within the limit was closed"
    );
    drop(held);
    wait_for(
        "/healthz once the idle connections went",
        Duration::from_secs(10),
        || (api.health() == Some(200)).then_some(()),
    );
}

#[test]
fn http_limits_tokens_are_checked_before_the_body_is_read() {
    let api = Api::start("http-auth-first", "");
    let head = |auth: &str| {
        format!(
            "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            1 << 20
        )
    };
    // 1 MB declared, 16 KiB sent: the answer comes before the rest, and the server closes
    // without waiting for it.
    for (auth, expected) in [
        (String::new(), 401),
        (
            "Authorization: Bearer not-the-token-0123456789\r\n".to_string(),
            401,
        ),
        (format!("Authorization: Bearer {TOKEN}\r\n"), 413),
    ] {
        let mut stream = api.connect();
        stream.write_all(head(&auth).as_bytes()).unwrap();
        stream.write_all(&[b'x'; 16 * 1024]).unwrap();
        let (code, body) = answer(&mut stream, Instant::now() + Duration::from_secs(5));
        assert_eq!(code, expected, "{auth:?}: {body}");
    }
}

#[test]
fn http_limits_bodies_over_4_kib_are_refused() {
    let api = Api::start("http-body-limit", "");
    let note = "x".repeat(MAX_BODY);
    let body = format!(
        r#"{{"site":"giang-trung","until":"2099-01-01T00:00:00Z","by":"Lê Văn Hùng","note":"{note}"}}"#
    );
    let (code, text) = api.post("/api/v1/silences", &body);
    assert_eq!(code, 413, "{text}");
    // The same without a length: chunked, refused once past the limit.
    let mut chunked = Vec::new();
    write!(chunked, "{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).unwrap();
    let (code, text) = api.request(
        &format!(
            "POST /api/v1/alerts/1/ack HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
        ),
        &chunked,
    );
    assert_eq!(code, 413, "{text}");
    // (A 1 MB note is refused the same way, before the note check: see
    // `http_limits_tokens_are_checked_before_the_body_is_read`.)
}

#[test]
fn http_limits_a_slow_body_gets_408_after_the_request_timeout() {
    let api = Api::start("http-request-timeout", "request_timeout = \"1s\"");
    let mut stream = api.connect();
    let started = Instant::now();
    stream
        .write_all(
            format!(
                "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"site\":"
            )
            .as_bytes(),
        )
        .unwrap();
    let (code, body) = answer(&mut stream, started + Duration::from_secs(10));
    assert_eq!(code, 408, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[test]
fn http_limits_silences_are_checked_and_bounded() {
    let api = Api::start("http-silences", "");
    let now = chrono::Utc::now();
    let silence = |from: Option<chrono::DateTime<chrono::Utc>>,
                   until: chrono::DateTime<chrono::Utc>,
                   by: &str,
                   note: Option<&str>| {
        let body = serde_json::json!({
            "site": "giang-trung",
            "from": from,
            "until": until,
            "by": by,
            "note": note,
        });
        api.post("/api/v1/silences", &body.to_string())
    };
    let hours = |h| now + chrono::TimeDelta::hours(h);
    let (code, text) = silence(None, hours(2), "Lê Văn Hùng", Some("Thay bộ nguồn"));
    assert_eq!(code, 200, "{text}");
    for (from, until, by, note, why) in [
        (
            None,
            hours(2),
            "Lê Văn Hùng",
            Some("\u{1b}]0;owned\u{7}"),
            "ESC in the note",
        ),
        (
            None,
            hours(2),
            "Lê Văn Hùng",
            Some("dòng 1\ndòng 2"),
            "newline in the note",
        ),
        (
            None,
            hours(2),
            "Lê Văn Hùng",
            Some(&*"ầ".repeat(501)),
            "501 characters",
        ),
        (
            None,
            hours(2),
            "Gateway \u{202e}txt.exe",
            None,
            "RTL override in by",
        ),
        (
            None,
            hours(2),
            "Lê\u{200b}Văn",
            None,
            "zero-width space in by",
        ),
        (
            None,
            hours(2),
            "Lê Văn Hùng",
            Some("a\u{2028}b"),
            "line separator",
        ),
        (None, hours(24 * 365), "Lê Văn Hùng", None, "one year"),
        (
            None,
            hours(24 * 31 + 1),
            "Lê Văn Hùng",
            None,
            "31 days and an hour",
        ),
        (
            Some(hours(-49)),
            hours(2),
            "Lê Văn Hùng",
            None,
            "from two days ago",
        ),
        (
            Some(hours(24 * 200)),
            hours(24 * 201),
            "Lê Văn Hùng",
            None,
            "from in 200 days",
        ),
        (None, hours(-1), "Lê Văn Hùng", None, "until in the past"),
    ] {
        let (code, text) = silence(from, until, by, note);
        assert_eq!(code, 422, "{why}: {text}");
    }
    // Only the valid one is recorded (the snapshot follows the writer within a moment).
    wait_for(
        "the silence in /api/v1/alerts",
        Duration::from_secs(10),
        || {
            let listed: serde_json::Value =
                serde_json::from_str(&api.get("/api/v1/alerts", None).1).ok()?;
            let silences = listed["silences"].as_array()?;
            (silences.len() == 1).then_some(())
        },
    );
}

#[test]
fn http_limits_reads_need_the_read_token_when_one_is_set() {
    let api = Api::start("http-read-token", &format!("read_token = \"{READ_TOKEN}\""));
    for path in [
        "/api/v1/state",
        "/api/v1/intake",
        "/api/v1/projections",
        "/api/v1/alerts?open=true",
    ] {
        assert_eq!(api.get(path, None).0, 401, "{path} without a token");
        assert_eq!(
            api.get(path, Some("wrong-token-0123456789")).0,
            401,
            "{path} with a wrong token"
        );
        assert_eq!(
            api.get(path, Some(READ_TOKEN)).0,
            200,
            "{path} with the read token"
        );
        assert_eq!(
            api.get(path, Some(TOKEN)).0,
            200,
            "{path} with the command token"
        );
    }
    // The read token does not run commands.
    let (code, _) = api.request(
        &format!(
            "POST /api/v1/alerts/1/ack HTTP/1.1\r\nAuthorization: Bearer {READ_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 2"
        ),
        b"{}",
    );
    assert_eq!(code, 401);
    // Supervisors check health without one.
    assert_eq!(api.get("/healthz", None).0, 200);
    // The CLI sends the read token from the same config.
    let listed = api.cli(&["alerts", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let status = api.cli(&["status", "--json"]);
    assert!(
        status.status.success()
            && !String::from_utf8_lossy(&status.stderr).contains("does not answer"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn http_limits_reads_stay_open_by_default() {
    let api = Api::start("http-reads-open", "");
    assert_eq!(api.get("/api/v1/state", None).0, 200);
    assert_eq!(api.get("/api/v1/alerts", None).0, 200);
    // The commands still need the command token.
    let (code, _) = api.request(
        "POST /api/v1/silences HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2",
        b"{}",
    );
    assert_eq!(code, 401);
}
