//! The MQTT brokers of the end-to-end tests and the daemon binaries they start.
//!
//! The shared broker (`NETMON_TEST_MQTT`), `mosquitto_pub` and [`LocalBroker`] come from
//! `netmon-harness` (re-exported here). Lab tests start a private Mosquitto inside a namespace
//! with [`Broker::start_in`] and publish from one with [`publish_in`]. The binaries come from
//! `NETMON_BIN_DIR`, set by `tests/run`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
pub use netmon_harness::broker::{
    LocalBroker, MAX_PACKET_SIZE, clear_retained, host_port, mosquitto_pub, publish,
    publish_retained, run_pub, shared_url,
};

use crate::lab::{Lab, maybe_in};
use crate::process::Proc;
use crate::scratch::Scratch;
use crate::wait::poll_until;

/// Port of a broker started inside a namespace (namespaces have their own port space).
pub const LAB_PORT: u16 = 1883;

/// The path of a daemon binary built by `tests/run`. Panics when `NETMON_BIN_DIR` is unset or the
/// binary is missing.
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var("NETMON_BIN_DIR") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => panic!("NETMON_BIN_DIR is not set: run the tests through tests/run"),
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} does not exist: tests/run builds it with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

/// [`publish`], run inside namespace `ns` when given.
pub fn publish_in(ns: Option<&str>, url: &str, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
    run_pub(
        maybe_in(ns, &mosquitto_pub(url, topic)?),
        url,
        topic,
        payload,
    )
}

/// A private Mosquitto running inside a lab namespace, on port 1883 of all its addresses.
#[derive(Debug)]
pub struct Broker {
    pub proc: Proc,
    pub port: u16,
}

impl Broker {
    /// Starts Mosquitto in namespace `role` with its config, persistence and log in `scratch`, and
    /// waits (up to 10 s) until it accepts connections.
    pub fn start_in(lab: &Lab, role: &str, scratch: &Scratch) -> anyhow::Result<Self> {
        let dir = scratch.join(&format!("mosquitto-{role}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = format!(
            "user root\nlistener {LAB_PORT}\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nmax_packet_size {MAX_PACKET_SIZE}\nlog_dest stderr\n\
             log_type all\n",
            dir.display()
        );
        let config_path = dir.join("mosquitto.conf");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let mut command = Command::new("mosquitto");
        command.arg("-c").arg(&config_path);
        let mut proc = lab.spawn_in(
            role,
            &format!("mosquitto in {role}"),
            &command,
            &dir.join("mosquitto.log"),
        )?;

        let mut probe = Command::new("mosquitto_pub");
        probe.args([
            "-h",
            "127.0.0.1",
            "-p",
            &LAB_PORT.to_string(),
            "-t",
            "netmon-test/probe",
            "-m",
            "x",
        ]);
        let ready = poll_until(Duration::from_secs(10), || {
            if let Err(e) = proc.assert_running() {
                return Some(Err(e));
            }
            lab.output_in(role, &probe)
                .ok()
                .filter(|o| o.status.success())
                .map(|_| Ok(()))
        });
        match ready {
            Some(Ok(())) => Ok(Self {
                proc,
                port: LAB_PORT,
            }),
            Some(Err(e)) => Err(e.context(format!("mosquitto in {role} did not start"))),
            None => bail!(
                "mosquitto in {role} did not accept connections within 10 s; log:\n{}",
                proc.log()
            ),
        }
    }
}

/// `mosquitto_sub -v` on one topic filter, writing every message to a file, to count messages,
/// payload bytes and events on the wire.
#[derive(Debug)]
pub struct Sniffer {
    proc: Proc,
    path: PathBuf,
}

/// What a [`Sniffer`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wire {
    pub messages: u64,
    /// MQTT payload bytes (topics not counted).
    pub payload_bytes: u64,
    /// Envelopes in those payloads (`decode_batch`).
    pub events: u64,
}

impl Sniffer {
    /// Subscribes (QoS 1, inside namespace `ns` when given) to `filter` on `url`, writing to
    /// `scratch/{name}.txt`. Publish nothing that matters before the subscription is live: wait
    /// for something on the topic first (see [`Sniffer::wire`]).
    pub fn start(
        name: &str,
        ns: Option<&str>,
        url: &str,
        filter: &str,
        scratch: &Scratch,
    ) -> anyhow::Result<Self> {
        let (host, port) = host_port(url)?;
        // Line-buffered, so that stopping it loses nothing it printed.
        let mut command = Command::new("stdbuf");
        command.args([
            "-oL",
            "mosquitto_sub",
            "-h",
            &host,
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-v",
            "-t",
            filter,
        ]);
        let path = scratch.join(&format!("{name}.txt"));
        let proc = Proc::spawn(name, maybe_in(ns, &command), &path)?;
        Ok(Self { proc, path })
    }

    /// Counts what arrived so far (complete lines only).
    pub fn wire(&self) -> anyhow::Result<Wire> {
        let text = std::fs::read(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        let mut wire = Wire::default();
        for line in text.split(|b| *b == b'\n') {
            let Some(space) = line.iter().position(|b| *b == b' ') else {
                continue;
            };
            if !line.starts_with(b"netmon/") {
                continue; // mosquitto_sub's own messages share the file
            }
            let payload = &line[space + 1..];
            wire.messages += 1;
            wire.payload_bytes += payload.len() as u64;
            if let Ok(batch) = netmon_events::decode_batch(payload) {
                wire.events += batch.events.len() as u64;
            }
        }
        Ok(wire)
    }

    /// Stops `mosquitto_sub`.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.proc.terminate(Duration::from_secs(5)).map(|_| ())
    }
}
