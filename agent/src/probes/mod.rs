//! Probes: the ways the agent measures a link. Each probe kind is one file; today only ICMP echo.
//!
//! - [`icmp`]: the echo engine (sockets, pacing, reply matching; I/O);
//! - `echoes`: the echo table of one round (matching replies to echoes; pure);
//! - [`stats`]: what a round amounted to (counts, RTT min/avg/max/mdev, loss, failure; pure);
//! - [`window`]: what a report window of rounds amounted to, and where windows end (pure).

mod echoes;
pub mod icmp;
pub mod stats;
pub mod window;

pub use icmp::{IcmpProber, OpenError, RoundPlan};
pub use stats::{EchoOutcome, RoundStats, Rtt};
