//! Probes: the ways the agent measures a link. Each probe kind is one file; today only ICMP echo.
//!
//! - [`icmp`]: the echo engine (sockets, pacing, reply matching; I/O);
//! - `echoes`: the echo table of one round (matching replies to echoes; pure);
//! - [`stats`]: what a round amounted to (counts, RTT min/avg/max/mdev, loss, failure; pure).

mod echoes;
pub mod icmp;
pub mod stats;

pub use icmp::{IcmpProber, OpenError, RoundPlan};
pub use stats::{EchoOutcome, RoundStats, Rtt};
