//! Integration tests of the agent library: configuration files, the ICMP engine on loopback, and
//! the daemon against a real Mosquitto broker.
#![allow(clippy::unwrap_used)]

mod config;
mod daemon;
mod icmp;
mod journal;
mod support;
