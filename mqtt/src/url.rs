//! The broker setting `mqtt.url`: `mqtt://host[:port]` or `mqtts://host[:port]`.

use std::fmt;
use std::net::Ipv6Addr;

/// The port of `mqtt://` when the URL names none.
const DEFAULT_PORT: u16 = 1883;
/// The port of `mqtts://` when the URL names none.
const DEFAULT_TLS_PORT: u16 = 8883;

/// Where the broker is and whether to speak TLS to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerUrl {
    /// `mqtts://`: TLS (rustls on the ring provider, see [`crate::tls_config`]).
    pub tls: bool,
    /// A DNS name or an address literal; an IPv6 address without its brackets.
    pub host: String,
    /// 1..=65535.
    pub port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]`, with an IPv6 host in brackets and an
    /// optional trailing `/`. Paths, queries, fragments and user information are refused (give
    /// credentials as `mqtt.username` / `mqtt.password`). The error says what was expected.
    pub fn parse(url: &str) -> Result<BrokerUrl, String> {
        let expected =
            || format!("expected mqtt://host[:port] or mqtts://host[:port], got {url:?}");
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(expected());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(expected());
        }
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(expected)?;
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(expected());
            }
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(expected)?)),
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !host_ok {
            return Err(expected());
        }
        let port = match port {
            None if tls => DEFAULT_TLS_PORT,
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(format!(
                        "port {p:?} is not a number from 1 to 65535 in {url:?}"
                    ));
                }
            },
        };
        Ok(BrokerUrl {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

/// `mqtt://host:port` (the port always shown, an IPv6 host in brackets); parses back to itself.
impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parts(url: &str) -> (bool, String, u16) {
        let b = BrokerUrl::parse(url).unwrap();
        (b.tls, b.host, b.port)
    }

    #[test]
    fn good_urls() {
        let cases = [
            ("mqtt://127.0.0.1:1884", (false, "127.0.0.1", 1884)),
            (
                "mqtts://broker.example.vn",
                (true, "broker.example.vn", 8883),
            ),
            ("mqtt://broker.local", (false, "broker.local", 1883)),
            ("mqtt://[::1]:1883/", (false, "::1", 1883)),
            ("mqtts://[::1]:8884", (true, "::1", 8884)),
            ("mqtts://[2001:db8::5]", (true, "2001:db8::5", 8883)),
            (
                "mqtt://broker_1.tinh-thanh-hoa.vn/",
                (false, "broker_1.tinh-thanh-hoa.vn", 1883),
            ),
            ("mqtt://h:65535", (false, "h", 65535)),
        ];
        for (url, (tls, host, port)) in cases {
            assert_eq!(parts(url), (tls, host.to_owned(), port), "{url}");
        }
    }

    #[test]
    fn bad_urls() {
        for bad in [
            "",
            "http://x",
            "tcp://h",
            "MQTT://h",
            "mqtt:/h",
            "mqtt://",
            "mqtt:///",
            "mqtt://host:0",
            "mqtt://h:0",
            "mqtt://host:http",
            "mqtt://h:x",
            "mqtt://h:",
            "mqtt://h:65536",
            "mqtt://h:1:2",
            "mqtt://::1",
            "mqtt://a b",
            "mqtt://[::1",
            "mqtt://[::1]x",
            "mqtt://[::1]:",
            "mqtt://[]:1883",
            "mqtt://[broker]:1883",
            "mqtt://u@h",
            "mqtt://user:pw@h:1883",
            "mqtt://h/path",
            "mqtt://h:1883/netmon",
            "mqtt://h?x=1",
            "mqtt://h#frag",
            "mqtt://h//",
            " mqtt://h",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn errors_say_what_is_expected() {
        let e = BrokerUrl::parse("http://x").unwrap_err();
        assert!(
            e.contains("mqtt://host[:port]") && e.contains("http://x"),
            "{e}"
        );
        let e = BrokerUrl::parse("mqtt://h:99999").unwrap_err();
        assert!(e.contains("1 to 65535") && e.contains("99999"), "{e}");
    }

    #[test]
    fn display_shows_the_port_and_parses_back() {
        for (url, shown) in [
            ("mqtt://broker.local", "mqtt://broker.local:1883"),
            ("mqtts://10.0.0.5:8884/", "mqtts://10.0.0.5:8884"),
            ("mqtts://[::1]", "mqtts://[::1]:8883"),
        ] {
            let b = BrokerUrl::parse(url).unwrap();
            assert_eq!(b.to_string(), shown);
            assert_eq!(BrokerUrl::parse(shown).unwrap(), b);
        }
    }
}
