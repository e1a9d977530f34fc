//! The MQTT broker the tests talk to, and `mosquitto_pub`.
//!
//! `tests/run` starts one Mosquitto on a free loopback port and exports `NETMON_TEST_MQTT`; tests
//! that need no namespaces share it (with unique provinces, agents and client ids). A test that
//! needs a broker of its own (to restart it, or without `tests/run`) starts a [`LocalBroker`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::process::Proc;
use crate::scratch::Scratch;
use crate::wait::poll_until;

/// `max_packet_size` of every test broker, as in `deploy/mosquitto/netmon.conf`: at most the
/// collector's read limit, so an oversized packet is refused by the broker instead of breaking
/// the collector's connection (and being redelivered for ever).
pub const MAX_PACKET_SIZE: usize = 1_048_576;

/// `mqtt://127.0.0.1:PORT` of the broker started by `tests/run`. Panics when it is not set.
pub fn shared_url() -> String {
    match std::env::var("NETMON_TEST_MQTT") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "NETMON_TEST_MQTT is not set: run the tests through tests/run, or start a broker \
             (mosquitto -p 18830 &) and set NETMON_TEST_MQTT=mqtt://127.0.0.1:18830"
        ),
    }
}

/// `(host, port)` of an `mqtt://host:port` (or `mqtts://`) URL.
pub fn host_port(url: &str) -> anyhow::Result<(String, u16)> {
    let broker = netmon_mqtt::BrokerUrl::parse(url).map_err(anyhow::Error::msg)?;
    Ok((broker.host, broker.port))
}

/// A free TCP port on 127.0.0.1 (bound, read and released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
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
    run_pub(mosquitto_pub(url, topic)?, url, topic, payload)
}

/// [`publish`] with the retain flag.
pub fn publish_retained(url: &str, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
    let mut command = mosquitto_pub(url, topic)?;
    command.arg("-r");
    run_pub(command, url, topic, payload)
}

/// Clears the retained message of `topic` (publishes an empty retained one).
pub fn clear_retained(url: &str, topic: &str) -> anyhow::Result<()> {
    let mut command = mosquitto_pub(url, topic)?;
    command.args(["-r", "-n"]);
    let output = command
        .output()
        .context("starting mosquitto_pub (package mosquitto-clients)")?;
    if !output.status.success() {
        bail!(
            "clearing {topic} on {url} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Runs `mosquitto_pub` (a command from [`mosquitto_pub`], possibly wrapped to run in a
/// namespace) with `payload` on stdin, failing with its stderr.
pub fn run_pub(mut command: Command, url: &str, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
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

/// A private Mosquitto on the host's loopback, on a free port, with persistence in the test's
/// scratch directory, that a test may kill and start again on the same port and persistence.
/// Needs no root (`user root` in its config only matters when started as root).
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
        let port = free_port()?;
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

fn spawn_local(config_path: &Path, log: &Path, port: u16) -> anyhow::Result<Proc> {
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
