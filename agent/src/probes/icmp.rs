//! The ICMP echo engine: one socket per address family, one task that both paces the sends of a
//! round and reads the replies, and a flat table that matches each reply to its echo.
//!
//! # Why not `surge_ping::Client`
//! We use surge-ping 0.9 to decode what the sockets receive ([`Icmpv4Packet::decode`],
//! [`Icmpv6Packet::decode`]: echo replies, and ICMP errors with the quoted request), but not its
//! `Client`/`Pinger`: that design spends a spawned future, a timer, a oneshot channel, a locked
//! hash-map entry and a `getsockname` call per echo, and it creates the socket itself, so its
//! receive buffer cannot be enlarged without `unsafe`. A round of 10,000 targets needs both to be
//! cheap. Here the socket is made with socket2 (so `SO_RCVBUF` is set before use), converted into
//! a tokio `UdpSocket` (tokio does not care about the socket type), and each round is one loop.
//!
//! # Sockets
//! For each family the engine first tries a `SOCK_DGRAM` ping socket (unprivileged, allowed by
//! `net.ipv4.ping_group_range`), then a `SOCK_RAW` one (root or `CAP_NET_RAW`); it logs which. On
//! a DGRAM socket the kernel owns the ICMP identifier and hands this socket only its own replies.
//! A RAW socket sees every ICMP packet of the host, so the engine writes its own identifier and
//! drops replies carrying another one.
//!
//! # Matching
//! Replies are matched by (address, sequence). Every target has its own sequence counter; a round
//! of `count` echoes takes `count` consecutive numbers from it, so no two echoes in flight share
//! (address, sequence) and a late reply from an earlier round falls outside the current window
//! and is ignored.
//!
//! # Pacing and time
//! Sends are spread evenly over `RoundPlan::spread` (echo-major: every target's first echo, then
//! every target's second …), topped up on each ~1 ms timer tick. A reply counts when it arrives
//! within `timeout` of its echo. The round ends when every echo is resolved, or `timeout` after the
//! last send, and never later than `RoundPlan::max_duration` (so a round never overruns its
//! interval; an echo sent late in the spread window then gets correspondingly less time).
//!
//! IPv6 link-local targets need a scope id, which the configuration does not carry; they are not
//! supported.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use surge_ping::{Icmpv4Packet, Icmpv6Packet};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::echoes::{Echo, Table};
use super::stats::{EchoOutcome, RoundStats};

/// Receive buffer asked for on every ICMP socket. Linux caps it at `net.core.rmem_max` (the
/// engine logs what it got); replies beyond it are dropped by the kernel, not by us.
pub const RECV_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Payload bytes per echo, as `ping` and `fping` send by default.
const PAYLOAD_LEN: usize = 56;

/// How one round is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundPlan {
    /// Echoes per target.
    pub count: u32,
    /// Sends are spread evenly over this window from the start of the round.
    pub spread: Duration,
    /// A reply counts when it arrives within this time of its echo.
    pub timeout: Duration,
    /// The round ends at the latest this long after it started.
    pub max_duration: Duration,
}

/// No ICMP socket could be opened for a family that some target needs.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot open an {family} ICMP socket (DGRAM: {dgram}; RAW: {raw}); allow unprivileged ping \
     with `sysctl net.ipv4.ping_group_range=\"0 2147483647\"` or grant CAP_NET_RAW"
)]
pub struct OpenError {
    pub family: &'static str,
    pub dgram: io::Error,
    pub raw: io::Error,
}

/// Probes a fixed list of addresses, one round at a time.
#[derive(Debug)]
pub struct IcmpProber {
    targets: Vec<IpAddr>,
    index: HashMap<IpAddr, usize>,
    next_seq: Vec<u16>,
    v4: Option<EchoSocket>,
    v6: Option<EchoSocket>,
}

#[derive(Debug)]
struct EchoSocket {
    socket: UdpSocket,
    raw: bool,
    /// Our identifier on a RAW socket (on DGRAM the kernel picks and checks it).
    ident: u16,
    v6: bool,
}

/// A decoded packet that may concern one of our echoes.
struct Answer {
    dest: IpAddr,
    ident: u16,
    seq: u16,
    error: bool,
}

impl IcmpProber {
    /// Opens the sockets the targets need. Must be called inside a tokio runtime.
    pub fn open(targets: Vec<IpAddr>) -> Result<IcmpProber, OpenError> {
        let v4 = match targets.iter().any(IpAddr::is_ipv4) {
            true => Some(EchoSocket::open(false)?),
            false => None,
        };
        let v6 = match targets.iter().any(IpAddr::is_ipv6) {
            true => Some(EchoSocket::open(true)?),
            false => None,
        };
        let index = targets.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        Ok(IcmpProber {
            next_seq: vec![0; targets.len()],
            targets,
            index,
            v4,
            v6,
        })
    }

    /// Runs one round; returns one result per target, in the order given to [`Self::open`].
    pub async fn round(&mut self, plan: &RoundPlan) -> Vec<RoundStats> {
        let count = plan.count.max(1) as usize;
        let mut table = Table::new(self.next_seq.clone(), count, plan.timeout);
        for seq in &mut self.next_seq {
            *seq = seq.wrapping_add(count as u16);
        }
        let total = table.echoes.len();
        let mut packet = [0u8; 8 + PAYLOAD_LEN];
        for (i, b) in packet[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut buf = vec![0u8; 2048];
        let start = Instant::now();
        let hard_end = start + plan.max_duration;
        let (mut next, mut send_errors) = (0usize, 0usize);
        let mut last_send = start;
        let mut first_error: Option<io::Error> = None;

        while table.outstanding > 0 {
            let now = Instant::now();
            if now >= hard_end {
                break;
            }
            if next < total {
                // Echoes due by now if sends were spread evenly over the window.
                let due = if plan.spread.is_zero() {
                    total
                } else {
                    let share = (now - start).as_secs_f64() / plan.spread.as_secs_f64();
                    ((share * total as f64).ceil() as usize).min(total)
                };
                while next < due {
                    let (t, seq) = table.echo(next);
                    match self.send(&mut packet, t, seq) {
                        Ok(()) => table.echoes[next] = Echo::InFlight(Instant::now()),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            let outcome = match e.kind() {
                                io::ErrorKind::NetworkUnreachable
                                | io::ErrorKind::HostUnreachable => EchoOutcome::Unreachable,
                                _ => EchoOutcome::SendFailed,
                            };
                            table.resolve(next, outcome);
                            send_errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                    next += 1;
                }
                last_send = Instant::now();
            }
            let deadline = if next < total {
                now + Duration::from_millis(1)
            } else {
                (last_send + plan.timeout).min(hard_end)
            };
            if next >= total && Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                r = readable(self.v4.as_ref()) => if r.is_ok() {
                    self.drain(false, &mut buf, &mut table);
                },
                r = readable(self.v6.as_ref()) => if r.is_ok() {
                    self.drain(true, &mut buf, &mut table);
                },
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        if let Some(error) = first_error {
            warn!(failed = send_errors, first_error = %error, "some echoes could not be sent");
        }
        table.results()
    }

    fn send(&self, packet: &mut [u8], t: usize, seq: u16) -> io::Result<()> {
        let address = self.targets[t];
        let socket = match address {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        };
        let Some(socket) = socket else {
            return Err(io::Error::other("no socket for this address family"));
        };
        // Echo request: type, code, checksum, identifier, sequence, payload.
        packet[0] = if socket.v6 { 128 } else { 8 };
        packet[1] = 0;
        packet[2..4].copy_from_slice(&[0, 0]);
        packet[4..6].copy_from_slice(&socket.ident.to_be_bytes());
        packet[6..8].copy_from_slice(&seq.to_be_bytes());
        if !socket.v6 {
            // The kernel fills in ICMPv6 checksums (and v4 ones on DGRAM sockets), not v4 RAW.
            let sum = checksum(packet);
            packet[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        socket
            .socket
            .try_send_to(packet, SocketAddr::new(address, 0))
            .map(|_| ())
    }

    /// Reads everything the socket has queued and resolves the echoes it answers.
    fn drain(&self, v6: bool, buf: &mut [u8], table: &mut Table) {
        let Some(socket) = (if v6 { &self.v6 } else { &self.v4 }) else {
            return;
        };
        loop {
            let (len, from) = match socket.socket.try_recv_from(buf) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    debug!(error = %e, "ICMP receive failed");
                    return;
                }
            };
            let now = Instant::now();
            let Some(answer) = decode(socket.raw, &buf[..len], from.ip()) else {
                continue;
            };
            if socket.raw && answer.ident != socket.ident {
                continue;
            }
            if let Some(&t) = self.index.get(&answer.dest) {
                table.answer(t, answer.seq, answer.error, now);
            }
        }
    }
}

async fn readable(socket: Option<&EchoSocket>) -> io::Result<()> {
    match socket {
        Some(s) => s.socket.readable().await,
        None => std::future::pending().await,
    }
}

impl EchoSocket {
    fn open(v6: bool) -> Result<EchoSocket, OpenError> {
        let (family, domain, protocol) = match v6 {
            false => ("IPv4", Domain::IPV4, Protocol::ICMPV4),
            true => ("IPv6", Domain::IPV6, Protocol::ICMPV6),
        };
        let (socket, raw) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
            Ok(socket) => (socket, false),
            Err(dgram) => match Socket::new(domain, Type::RAW, Some(protocol)) {
                Ok(socket) => (socket, true),
                Err(raw) => {
                    return Err(OpenError { family, dgram, raw });
                }
            },
        };
        let fail = |e: io::Error| OpenError {
            family,
            dgram: io::Error::other("not attempted"),
            raw: e,
        };
        socket.set_nonblocking(true).map_err(fail)?;
        if let Err(e) = socket.set_recv_buffer_size(RECV_BUFFER_BYTES) {
            warn!(family, error = %e, "cannot enlarge the ICMP receive buffer");
        }
        // Linux reports twice the usable size (it counts bookkeeping overhead).
        let rcvbuf = socket.recv_buffer_size().unwrap_or(0);
        if rcvbuf < RECV_BUFFER_BYTES {
            warn!(
                family,
                rcvbuf,
                wanted = RECV_BUFFER_BYTES,
                "ICMP receive buffer capped by net.core.rmem_max; large rounds may lose replies"
            );
        }
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket)).map_err(fail)?;
        let kind = if raw {
            "raw (CAP_NET_RAW)"
        } else {
            "dgram (unprivileged)"
        };
        info!(family, kind, rcvbuf, "ICMP socket open");
        Ok(EchoSocket {
            socket,
            raw,
            ident: next_ident(),
            v6,
        })
    }
}

/// Decodes what an ICMP socket received (`raw`: with the IPv4 header); `None` for anything that
/// is not an echo reply or an ICMP error quoting an echo.
fn decode(raw: bool, data: &[u8], from: IpAddr) -> Option<Answer> {
    let sock_type = if raw { Type::RAW } else { Type::DGRAM };
    match from {
        IpAddr::V4(src) => {
            // A RAW socket hands us the IP header too: make sure it is sane before decoding
            // (whatever arrives from the network must not be able to upset the parser).
            if raw {
                let ihl = usize::from(data.first()? & 0x0f) * 4;
                if ihl < 20 || data.len() < ihl + 8 {
                    return None;
                }
            } else if data.len() < 8 {
                return None;
            }
            let p = Icmpv4Packet::decode(data, sock_type, src, Ipv4Addr::UNSPECIFIED).ok()?;
            let error = match p.get_icmp_type().0 {
                0 => false,       // echo reply
                3 | 11 => true,   // destination unreachable, time exceeded
                _ => return None, // anything else is not about our echoes
            };
            Some(Answer {
                dest: IpAddr::V4(p.get_real_dest()),
                ident: p.get_identifier().0,
                seq: p.get_sequence().0,
                error,
            })
        }
        IpAddr::V6(src) => {
            let p = Icmpv6Packet::decode(data, src).ok()?;
            let error = match p.get_icmpv6_type().0 {
                129 => false,
                1 | 3 => true,
                _ => return None,
            };
            Some(Answer {
                dest: IpAddr::V6(p.get_real_dest()),
                ident: p.get_identifier().0,
                seq: p.get_sequence().0,
                error,
            })
        }
    }
}

/// A RAW-socket identifier that differs between the engines of one process and, very likely,
/// between processes.
fn next_ident() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mixed = std::process::id()
        .wrapping_mul(2_654_435_761)
        .wrapping_add(n.wrapping_mul(40_503));
    (mixed >> 16) as u16
}

/// The Internet checksum (RFC 1071) of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decoding_survives_garbage() {
        // Truncations of a valid RAW echo reply, and pseudo-random bytes: never a panic, and
        // only the complete reply decodes.
        let mut reply = vec![
            0x45, 0, 0, 36, 0, 0, 0, 0, 64, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        reply.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        reply.extend_from_slice(&[0; 8]);
        let from: IpAddr = "127.0.0.1".parse().unwrap();
        for len in 0..reply.len() {
            let _ = decode(true, &reply[..len], from);
            let _ = decode(false, &reply[..len], from);
        }
        let answer = decode(true, &reply, from).unwrap();
        assert_eq!((answer.ident, answer.seq, answer.error), (0x1234, 7, false));
        let mut state = 0x2545_f491_u32;
        let mut byte = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        };
        let v6: IpAddr = "::1".parse().unwrap();
        for round in 0..20_000 {
            let len = usize::from(byte()) % 96;
            let mut data: Vec<u8> = (0..len).map(|_| byte()).collect();
            if round % 2 == 0 && len > 20 {
                data[0] = 0x45; // a plausible IPv4 header, so the ICMP parsers are reached
                data[20] = [0u8, 3, 11][round % 3];
            }
            let _ = decode(true, &data, from);
            let _ = decode(false, &data, from);
            let _ = decode(true, &data, v6);
        }
    }

    #[test]
    fn checksum_of_a_known_echo_request() {
        // type 8, code 0, id 0x1234, seq 1, no payload: sum 0x0800 + 0x1234 + 0x0001 = 0x1a35.
        let packet = [8, 0, 0, 0, 0x12, 0x34, 0, 1];
        assert_eq!(checksum(&packet), !0x1a35);
        // A packet with its checksum filled in sums to zero.
        let mut with = packet;
        with[2..4].copy_from_slice(&checksum(&packet).to_be_bytes());
        assert_eq!(checksum(&with), 0);
    }
}
