//! A minimal HTTP/1.0 GET over a plain TCP stream, for `status` to ask the running daemon. The
//! daemon's API is local and plain HTTP, so a full client (and its TLS stack) is not needed.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Largest answer read, in bytes.
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

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

/// GETs `path` from `address` and returns the body of a 200 answer.
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
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n{auth}\r\n");
    match exchange(address, request.as_bytes(), timeout)? {
        (200, body) => Ok(body),
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
/// the status.
pub fn post_json(
    address: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
    timeout: Duration,
) -> Result<(u16, String), GetError> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(address, request.as_bytes(), timeout)
}

/// The daemon's `/healthz`: no reasons when it answers 200, else one reason a line.
pub fn health(address: SocketAddr, timeout: Duration) -> Result<Vec<String>, GetError> {
    let request = format!("GET /healthz HTTP/1.0\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let (code, body) = exchange(address, request.as_bytes(), timeout)?;
    Ok(match code {
        200 => Vec::new(),
        _ => body
            .lines()
            .map(|l| netmon_events::text::printable(l.trim()).into_owned())
            .filter(|l| !l.is_empty())
            .collect(),
    })
}

/// Sends `request` and reads the whole answer: its status code and body.
fn exchange(
    address: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<(u16, String), GetError> {
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| GetError::Connect(address, e))?;
    let io = |e| GetError::Io(address, e);
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(request).map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or(GetError::NotHttp(address))?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(GetError::NotHttp(address));
    };
    if !version.starts_with("HTTP/") {
        return Err(GetError::NotHttp(address));
    }
    let code = code
        .parse::<u16>()
        .map_err(|_| GetError::NotHttp(address))?;
    if code == 200 || code >= 400 {
        Ok((code, body.to_string()))
    } else {
        Err(GetError::Status(address, status_line.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::net::TcpListener;

    #[test]
    fn reads_a_200_body_and_refuses_other_answers() {
        for (answer, expected) in [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                Ok("hello"),
            ),
            (
                "HTTP/1.1 503 Service Unavailable\r\n\r\nrebuilding",
                Err("503"),
            ),
            ("SSH-2.0-OpenSSH\r\n", Err("not HTTP")),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let server = std::thread::spawn(move || {
                let (mut conn, _) = listener.accept().unwrap();
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).unwrap();
                conn.write_all(answer.as_bytes()).unwrap();
            });
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
