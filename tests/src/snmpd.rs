//! A private net-snmp `snmpd` (Debian's) for the SNMP tests and benchmark: started inside a lab
//! namespace (or on the host for loopback addresses) from a generated `snmpd.conf` — a v2c
//! community and an SNMPv3 user (SHA + AES), `agentAddress` on the given address — with no system
//! configuration (`-C -c FILE -f -Lo`) and a private persistent directory, so it exports that
//! namespace's real interfaces and nothing of the host's setup leaks in. Restartable on the same
//! address and persistent directory (the v3 engine boots counter then increases, as on a real
//! reboot); [`Snmpd::wait_ready`] polls `snmpget` until it answers.
//!
//! Also [`garbage_responder`]: a UDP socket that answers every datagram with random bytes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::lab::{maybe_in, run};
use crate::process::Proc;
use crate::scratch::Scratch;
use crate::wait::poll_until;

/// The v2c community of every test snmpd.
pub const COMMUNITY: &str = "netmon-lab";
/// A read-write community, used only by [`Snmpd::fresh_counters`].
const RW_COMMUNITY: &str = "netmon-lab-rw";
/// `NET-SNMP-AGENT-MIB::nsCacheTimeout` of the ifTable's cache (ifXTable shares it).
const IF_CACHE_TIMEOUT: &str = "1.3.6.1.4.1.8072.1.5.3.1.2.1.3.6.1.2.1.2.2";
/// The SNMPv3 user (authPriv: SHA-1 + AES-128).
pub const V3_USER: &str = "netmon";
pub const V3_AUTH_PASSWORD: &str = "netmon-auth-pw";
pub const V3_PRIV_PASSWORD: &str = "netmon-priv-pw";

/// A running snmpd.
#[derive(Debug)]
pub struct Snmpd {
    pub proc: Proc,
    pub address: SocketAddr,
    ns: Option<String>,
    conf: PathBuf,
    log: PathBuf,
    name: String,
}

impl Snmpd {
    /// Writes `scratch/{name}.conf` and starts snmpd on `address` (inside `ns` when given), then
    /// waits until it answers. Fails loudly when snmpd or snmpget is missing.
    pub fn start(
        name: &str,
        scratch: &Scratch,
        ns: Option<&str>,
        address: SocketAddr,
    ) -> anyhow::Result<Self> {
        let persistent = scratch.join(&format!("{name}-persist"));
        std::fs::create_dir_all(&persistent)
            .with_context(|| format!("creating {}", persistent.display()))?;
        let conf = scratch.write(
            &format!("{name}.conf"),
            format!(
                "[snmp] persistentDir {persist}\n\
                 agentAddress udp:{address}\n\
                 rocommunity {COMMUNITY} default\n\
                 rwcommunity {RW_COMMUNITY} default\n\
                 createUser {V3_USER} SHA \"{V3_AUTH_PASSWORD}\" AES \"{V3_PRIV_PASSWORD}\"\n\
                 rouser {V3_USER} priv\n",
                persist = persistent.display(),
            ),
        )?;
        let log = scratch.join(&format!("{name}.log"));
        let proc = spawn(ns, &conf, &log, name)?;
        let snmpd = Self {
            proc,
            address,
            ns: ns.map(str::to_owned),
            conf,
            log,
            name: name.to_owned(),
        };
        snmpd.wait_ready()?;
        snmpd.fresh_counters()?;
        Ok(snmpd)
    }

    /// Stops snmpd (SIGTERM) and starts it again on the same config: sysUpTime restarts at 0.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.proc.terminate(Duration::from_secs(10))?;
        self.proc = spawn(self.ns.as_deref(), &self.conf, &self.log, &self.name)?;
        self.wait_ready()?;
        self.fresh_counters()
    }

    /// net-snmp caches the interface tables for 3 s, so counters polled every 2 s move in steps
    /// (0, 150%, 150%, 0 …; averages stay exact). The tests poll fast, so they turn the cache
    /// off (`nsCacheTimeout` = 0): every answer carries the kernel's counters of that moment.
    pub fn fresh_counters(&self) -> anyhow::Result<()> {
        let mut set = Command::new("snmpset");
        set.args(["-v2c", "-c", RW_COMMUNITY, "-t", "1", "-r", "2"])
            .arg(self.address.to_string())
            .args([IF_CACHE_TIMEOUT, "i", "0"]);
        run(&mut maybe_in(self.ns.as_deref(), &set))
            .context("turning off snmpd's interface cache (nsCacheTimeout)")?;
        Ok(())
    }

    /// Polls `snmpget sysUpTime.0` (v2c) until it answers, for at most 15 s.
    pub fn wait_ready(&self) -> anyhow::Result<()> {
        let mut get = Command::new("snmpget");
        get.args(["-v2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0", "-Oqv"])
            .arg(self.address.to_string())
            .arg("1.3.6.1.2.1.1.3.0");
        let mut get = maybe_in(self.ns.as_deref(), &get);
        let answered = poll_until(Duration::from_secs(15), || {
            get.output().ok().filter(|o| o.status.success()).map(|_| ())
        });
        if answered.is_none() {
            bail!(
                "snmpd {} on {} did not answer within 15 s; log:\n{}",
                self.name,
                self.address,
                self.proc.log()
            );
        }
        Ok(())
    }
}

fn spawn(ns: Option<&str>, conf: &Path, log: &Path, name: &str) -> anyhow::Result<Proc> {
    run(Command::new("snmpd").arg("-v"))
        .context("snmpd (Debian package snmpd) is required for the SNMP tests")?;
    let mut snmpd = Command::new("snmpd");
    snmpd
        .args(["-C", "-c"])
        .arg(conf)
        .args(["-f", "-Lo", "-M", "/nonexistent", "-m", ""]);
    Proc::spawn(name, maybe_in(ns, &snmpd), log)
}

/// Starts a UDP socket on `address` (inside `ns`) that answers every datagram with 64 random
/// bytes, for at most `lifetime`: a device that answers garbage.
pub fn garbage_responder(
    scratch: &Scratch,
    ns: Option<&str>,
    address: SocketAddr,
    lifetime: Duration,
) -> anyhow::Result<Proc> {
    let script = format!(
        "import os, socket, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('{ip}', {port}))\n\
         s.settimeout(0.5)\n\
         end = time.time() + {secs}\n\
         while time.time() < end:\n\
         \x20   try:\n\
         \x20       data, peer = s.recvfrom(65535)\n\
         \x20   except socket.timeout:\n\
         \x20       continue\n\
         \x20   s.sendto(os.urandom(64), peer)\n",
        ip = address.ip(),
        port = address.port(),
        secs = lifetime.as_secs(),
    );
    let path = scratch.write("garbage.py", script)?;
    let mut python = Command::new("python3");
    python.arg(path);
    Proc::spawn(
        "garbage-responder",
        maybe_in(ns, &python),
        &scratch.join("garbage.log"),
    )
}
