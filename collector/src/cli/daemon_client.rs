//! The CLI's client of the daemon's HTTP API (`status`, `alerts`, `silence`): reqwest's async
//! client run to completion on a current-thread runtime inside each call, so that the commands
//! stay synchronous. Plain HTTP to a local address: no proxy, no redirects followed.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Largest answer read, in bytes.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// Why the daemon did not answer usefully.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("cannot reach {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("reading from {0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("{0} answered with something that is not HTTP")]
    NotHttp(SocketAddr),
    #[error("{0} answered {1}")]
    Status(SocketAddr, String),
}

/// The address to connect to for a listening address: a wildcard listener is reached on loopback.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GETs `path` from `address` and returns the body of a 2xx answer.
pub fn get(address: SocketAddr, path: &str, timeout: Duration) -> Result<String, GetError> {
    get_with_token(address, path, None, timeout)
}

/// [`get`] with a bearer `token` (`http.read_token`, when the collector guards its reads).
pub fn get_with_token(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    timeout: Duration,
) -> Result<String, GetError> {
    match exchange(address, path, token, None, timeout)? {
        (200..=299, body) => Ok(body),
        (code, body) => Err(GetError::Status(
            address,
            format!(
                "HTTP {code} {}",
                body.chars().take(200).collect::<String>().trim()
            ),
        )),
    }
}

/// POSTs a JSON `body` with a bearer `token`; returns the status code and the body, whatever
/// the status (2xx or an error status).
pub fn post_json(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), GetError> {
    exchange(address, path, token, Some(body), timeout)
}

/// The daemon's `/healthz`: no reasons when it answers 2xx, else one reason a line.
pub fn health(address: SocketAddr, timeout: Duration) -> Result<Vec<String>, GetError> {
    let (code, body) = exchange(address, "/healthz", None, None, timeout)?;
    Ok(match code {
        200..=299 => Vec::new(),
        _ => body
            .lines()
            .map(|l| netmon_events::text::printable(l.trim()).into_owned())
            .filter(|l| !l.is_empty())
            .collect(),
    })
}

/// Sends a GET (or, with a `json` body, a POST) and reads the whole answer: its status code
/// and body. A 2xx or an error status (400 and up) is an answer; anything else (a redirect)
/// is a [`GetError::Status`].
fn exchange(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), GetError> {
    let url = format!("http://{address}{path}");
    let request = async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build()?;
        let mut request = match json {
            Some(body) => client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_owned()),
            None => client.get(url),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await?;
        let (version, status) = (response.version(), response.status());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_RESPONSE {
                body.truncate(MAX_RESPONSE);
                break;
            }
        }
        Ok::<_, reqwest::Error>((version, status, body))
    };
    let (version, status, body) = block_on(request)
        .map_err(|e| GetError::Io(address, e))?
        .map_err(|e| failure(address, &e))?;
    let code = status.as_u16();
    if status.is_success() || code >= 400 {
        Ok((code, String::from_utf8_lossy(&body).into_owned()))
    } else {
        Err(GetError::Status(address, format!("{version:?} {status}")))
    }
}

/// Runs `future` on a current-thread runtime of its own; on a thread of its own when called
/// from inside a runtime (which cannot block on another).
fn block_on<F>(future: F) -> std::io::Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let run = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(future))
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|scope| {
        scope
            .spawn(run)
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The [`GetError`] of a failed request: not connected, an I/O error or time-out while
/// talking, or else an answer that is not HTTP.
fn failure(address: SocketAddr, e: &reqwest::Error) -> GetError {
    let mut io = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut deepest = e.to_string();
    while let Some(error) = source {
        deepest = error.to_string();
        if let Some(found) = error.downcast_ref::<std::io::Error>() {
            io = Some(std::io::Error::new(found.kind(), found.to_string()));
            break;
        }
        source = error.source();
    }
    let io = io.or_else(|| {
        e.is_timeout()
            .then(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))
    });
    match io {
        _ if e.is_connect() => GetError::Connect(
            address,
            io.unwrap_or_else(|| std::io::Error::other(deepest)),
        ),
        Some(io) => GetError::Io(address, io),
        None if e.is_builder() => GetError::Io(address, std::io::Error::other(deepest)),
        None => GetError::NotHttp(address),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Answers one connection with `answer`; returns the request it read.
    fn serve_once(answer: &'static str) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).unwrap();
            conn.write_all(answer.as_bytes()).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (address, server)
    }

    #[test]
    fn reads_a_200_body_and_refuses_other_answers() {
        for (answer, expected) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                Ok("hello"),
            ),
            ("HTTP/1.1 204 No Content\r\n\r\n", Ok("")),
            (
                "HTTP/1.1 302 Found\r\nLocation: /y\r\nContent-Length: 0\r\n\r\n",
                Err("HTTP/1.1 302 Found"),
            ),
            (
                "HTTP/1.1 503 Service Unavailable\r\n\r\nrebuilding",
                Err("503"),
            ),
            ("SSH-2.0-OpenSSH\r\n", Err("not HTTP")),
            ("", Err("not HTTP")),
        ] {
            let (address, server) = serve_once(answer);
            let result = get(address, "/x", Duration::from_secs(5));
            server.join().unwrap();
            match (result, expected) {
                (Ok(body), Ok(want)) => assert_eq!(body, want),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e}"),
                (got, want) => panic!("{answer:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn sends_the_token_and_the_json_and_reads_any_status() {
        let (address, server) =
            serve_once("HTTP/1.1 409 Conflict\r\nContent-Length: 16\r\n\r\n{\"error\":\"late\"}");
        let answer = post_json(
            address,
            "/api/v1/x",
            Some("s3cret"),
            r#"{"a":1}"#,
            Duration::from_secs(5),
        )
        .unwrap();
        let request = server.join().unwrap();
        assert_eq!(answer, (409, r#"{"error":"late"}"#.to_string()));
        assert!(
            request.starts_with("POST /api/v1/x HTTP/1.1\r\n"),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(
            lower.contains("authorization: bearer s3cret\r\n"),
            "{request}"
        );
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"a":1}"#), "{request}");
    }

    #[test]
    fn health_gives_the_reasons_of_a_503() {
        let (address, server) = serve_once(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 31\r\n\r\nstore: disk full\n\nmqtt: down  \n",
        );
        let reasons = health(address, Duration::from_secs(5)).unwrap();
        assert!(server.join().unwrap().starts_with("GET /healthz "));
        assert_eq!(reasons, ["store: disk full", "mqtt: down"]);
        let (address, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(health(address, Duration::from_secs(5)).unwrap().is_empty());
        server.join().unwrap();
    }

    #[test]
    fn errors_name_the_address_inside_a_runtime_too() {
        let address: SocketAddr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = runtime
            .block_on(async { get(address, "/", Duration::from_secs(5)) })
            .unwrap_err();
        assert!(matches!(e, GetError::Connect(..)), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("cannot reach {address}: ")),
            "{e}"
        );
    }

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:8080".parse().unwrap()),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(
            reachable("[::]:8080".parse().unwrap()),
            "[::1]:8080".parse().unwrap()
        );
    }
}
