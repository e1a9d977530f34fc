//! Integration tests of the agent library: modem-answer parsers, configuration files, the ICMP
//! engine on loopback, the serial AT session on a pseudo-terminal, and the daemon against a real
//! Mosquitto broker (`daemon`, `windows`; what they share in `observe`).
#![allow(clippy::unwrap_used)]

mod cellular;
mod config;
mod daemon;
mod icmp;
mod journal;
mod journal_hostile;
mod observe;
mod serial;
mod windows;
