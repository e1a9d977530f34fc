//! The MQTT broker the tests talk to, the daemon binaries they start, and `mosquitto_pub`.
//!
//! `tests/run` starts one Mosquitto on a free loopback port and exports `NETMON_TEST_MQTT`; tests
//! that need no namespaces share it (with unique provinces, agents and client ids). Lab tests start
//! a private Mosquitto inside a namespace with [`Broker::start_in`]. The binaries come from
//! `NETMON_BIN_DIR`, also set by `tests/run`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::lab::{Lab, maybe_in};
use crate::process::Proc;
use crate::scratch::Scratch;
use crate::wait::poll_until;

/// Port of a broker started inside a namespace (namespaces have their own port space).
pub const LAB_PORT: u16 = 1883;

/// `max_packet_size` of every test broker, as in `deploy/mosquitto/netmon.conf`: at most the
/// collector's read limit, so an oversized packet is refused by the broker instead of breaking
/// the collector's connection (and being redelivered for ever).
pub const MAX_PACKET_SIZE: usize = 1_048_576;

/// `mqtt://127.0.0.1:PORT` of the broker started by `tests/run`. Panics when it is not set.
pub fn shared_url() -> String {
    match std::env::var("NETMON_TEST_MQTT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("NETMON_TEST_MQTT is not set: run the tests through tests/run"),
    }
}

/// `(host, port)` of an `mqtt://host:port` URL.
pub fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let broker = netmon_mqtt::BrokerUrl::parse(url).map_err(anyhow::Error::msg)?;
    Ok((broker.host, broker.port))
}

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

/// A `mosquitto_pub` command publishing to `url` (QoS 1) on `topic`; add the message options.
pub fn mosquitto_pub(url: &str, topic: &str) -> anyhow::Result<Command> {
    let (host, port) = host_port(url)?;
    let mut command = Command::new("mosquitto_pub");
    command
        .args(["-h", &host, "-p", &port.to_string(), "-q", "1", "-t", topic])
        .stdin(Stdio::null());
    Ok(command)
}

/// Publishes `payload` (any size, read from stdin) with QoS 1 and waits for the broker's ack.
pub fn publish(url: &str, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
    publish_in(None, url, topic, payload)
}

/// [`publish`], run inside namespace `ns` when given.
pub fn publish_in(ns: Option<&str>, url: &str, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
    let mut command = maybe_in(ns, &mosquitto_pub(url, topic)?);
    command
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .context("starting mosquitto_pub (package mosquitto-clients)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(payload)
            .context("writing the payload to mosquitto_pub")?;
    }
    let output = child
        .wait_with_output()
        .context("waiting for mosquitto_pub")?;
    if !output.status.success() {
        bail!(
            "mosquitto_pub to {url} {topic} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
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

/// A private Mosquitto on the host's loopback, on a free port, with persistence in the test's
/// scratch directory, that a test may kill and start again on the same port and persistence.
#[derive(Debug)]
pub struct LocalBroker {
    pub proc: Proc,
    pub port: u16,
    config_path: PathBuf,
    log_path: PathBuf,
}

impl LocalBroker {
    /// Starts Mosquitto on `127.0.0.1:{free port}` with its files in `scratch/{name}/`; waits (up
    /// to 10 s) until it accepts connections.
    pub fn start(name: &str, scratch: &Scratch) -> anyhow::Result<Self> {
        let dir = scratch.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = crate::daemons::free_port()?;
        let config = format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nautosave_interval 1\nmax_packet_size {MAX_PACKET_SIZE}\n\
             log_dest stderr\nlog_type all\n",
            dir.display()
        );
        let config_path = dir.join("mosquitto.conf");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log_path = dir.join("mosquitto.log");
        let proc = spawn_local(&config_path, &log_path, port)?;
        Ok(Self {
            proc,
            port,
            config_path,
            log_path,
        })
    }

    /// `mqtt://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stops the broker with `signal` (`TERM` for a clean restart, `KILL` for a crash), waits for
    /// it to exit, and starts it again on the same port and persistence directory.
    pub fn restart(&mut self, signal: &str) -> anyhow::Result<()> {
        self.proc.signal(signal)?;
        if self.proc.wait_timeout(Duration::from_secs(10))?.is_none() {
            bail!("mosquitto did not exit within 10 s of SIG{signal}");
        }
        self.proc = spawn_local(&self.config_path, &self.log_path, self.port)?;
        Ok(())
    }
}

fn spawn_local(
    config_path: &std::path::Path,
    log: &std::path::Path,
    port: u16,
) -> anyhow::Result<Proc> {
    let mut command = Command::new("mosquitto");
    command.arg("-c").arg(config_path);
    let mut proc = Proc::spawn("mosquitto (local)", command, log)?;
    let url = format!("mqtt://127.0.0.1:{port}");
    // The port may still be in TIME_WAIT right after a restart; mosquitto sets SO_REUSEADDR.
    let ready = poll_until(Duration::from_secs(10), || {
        if let Err(e) = proc.assert_running() {
            return Some(Err(e));
        }
        let mut probe = mosquitto_pub(&url, "netmon-test/probe").ok()?;
        probe
            .args(["-m", "x"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        probe.status().ok().filter(|s| s.success()).map(|_| Ok(()))
    });
    match ready {
        Some(Ok(())) => Ok(proc),
        Some(Err(e)) => Err(e.context("mosquitto (local) did not start")),
        None => bail!(
            "mosquitto (local) did not accept connections on {url} within 10 s; log:\n{}",
            proc.log()
        ),
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
