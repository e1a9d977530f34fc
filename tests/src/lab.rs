//! A network lab: network namespaces joined by veth pairs, built with `ip` and `nft`.
//!
//! A [`Lab`] names its namespaces `nmlab{pid}-{n}-{role}` (`tests/run` deletes leftovers with that
//! prefix whose process is gone) and gives each link a /30 from `10.{100+s/256}.{s%256}.0/24`,
//! where `s` is a slot claimed in `/tmp/netmon-lab-slots` so that labs running at the same time use
//! different subnets. Both ends of a veth pair carry the link's name (≤ 15 characters); they live
//! in different namespaces so the names never clash. Dropping the lab kills every process left in
//! its namespaces and deletes them (which deletes their veths).
//!
//! Traffic stays inside the lab: these addresses exist only in namespaces the test created.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};

use crate::process::Proc;
use crate::slot::Slot;

/// Prefix of every namespace a lab creates.
pub const PREFIX: &str = "nmlab";

const MAX_LINKS: u8 = 64;
const LOSS_TABLE: &str = "netmon_lab_loss";

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// One namespace of the lab.
#[derive(Debug, Clone)]
struct Namespace {
    role: String,
    name: String,
}

/// One end of a link.
#[derive(Debug, Clone)]
pub struct End {
    /// The namespace's role, as given to [`Lab::add_namespace`].
    pub role: String,
    /// The namespace's full name.
    pub ns: String,
    pub addr: Ipv4Addr,
}

/// A veth pair between two namespaces, both ends named `name`.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub a: End,
    pub b: End,
}

/// A set of namespaces and links, deleted on drop.
#[derive(Debug)]
pub struct Lab {
    id: String,
    slot: Slot,
    namespaces: Vec<Namespace>,
    links: Vec<Link>,
}

impl Lab {
    /// Starts an empty lab. Fails loudly when not root or when `ip` is missing.
    pub fn new() -> anyhow::Result<Self> {
        if !is_root() {
            bail!(
                "the network lab needs root (network namespaces, nftables): run tests/run as root"
            );
        }
        run(Command::new("ip").arg("-V")).context("iproute2 (`ip`) is required")?;
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            id: format!("{PREFIX}{}-{n}", std::process::id()),
            slot: Slot::claim()?,
            namespaces: Vec::new(),
            links: Vec::new(),
        })
    }

    /// Creates namespace `{lab}-{role}` with `lo` up and returns its full name.
    pub fn add_namespace(&mut self, role: &str) -> anyhow::Result<String> {
        if self.namespaces.iter().any(|n| n.role == role) {
            bail!("the lab already has a namespace {role:?}");
        }
        let name = format!("{}-{role}", self.id);
        run(Command::new("ip").args(["netns", "add", &name]))?;
        self.namespaces.push(Namespace {
            role: role.to_owned(),
            name: name.clone(),
        });
        run(Command::new("ip").args(["-n", &name, "link", "set", "dev", "lo", "up"]))?;
        Ok(name)
    }

    /// The full name of the namespace with this role.
    pub fn ns(&self, role: &str) -> anyhow::Result<&str> {
        self.namespaces
            .iter()
            .find(|n| n.role == role)
            .map(|n| n.name.as_str())
            .with_context(|| format!("the lab has no namespace {role:?}"))
    }

    /// Joins two namespaces with a veth pair named `name` on both sides, addresses `.1` (a) and
    /// `.2` (b) of the link's /30, both ends up.
    pub fn connect(&mut self, name: &str, role_a: &str, role_b: &str) -> anyhow::Result<Link> {
        if name.is_empty() || name.len() > 15 {
            bail!("interface name {name:?} must have 1-15 characters");
        }
        if self.links.iter().any(|l| l.name == name) {
            bail!("the lab already has a link {name:?}");
        }
        let index = u8::try_from(self.links.len())
            .ok()
            .filter(|i| *i < MAX_LINKS)
            .with_context(|| format!("a lab holds at most {MAX_LINKS} links"))?;
        let (ns_a, ns_b) = (self.ns(role_a)?.to_owned(), self.ns(role_b)?.to_owned());
        let [o1, o2] = self.slot.octets();
        let base = index * 4;
        let addr_a = Ipv4Addr::new(10, o1, o2, base + 1);
        let addr_b = Ipv4Addr::new(10, o1, o2, base + 2);
        run(Command::new("ip").args([
            "-n", &ns_a, "link", "add", "name", name, "type", "veth", "peer", "name", name,
            "netns", &ns_b,
        ]))?;
        for (ns, addr) in [(&ns_a, addr_a), (&ns_b, addr_b)] {
            run(Command::new("ip").args([
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                name,
            ]))?;
            run(Command::new("ip").args(["-n", ns, "link", "set", "dev", name, "up"]))?;
        }
        let link = Link {
            name: name.to_owned(),
            a: End {
                role: role_a.to_owned(),
                ns: ns_a,
                addr: addr_a,
            },
            b: End {
                role: role_b.to_owned(),
                ns: ns_b,
                addr: addr_b,
            },
        };
        self.links.push(link.clone());
        Ok(link)
    }

    /// The link named `name`.
    pub fn link(&self, name: &str) -> anyhow::Result<&Link> {
        self.links
            .iter()
            .find(|l| l.name == name)
            .with_context(|| format!("the lab has no link {name:?}"))
    }

    /// The address of `role`'s end of link `name`.
    pub fn addr(&self, link: &str, role: &str) -> anyhow::Result<Ipv4Addr> {
        let link = self.link(link)?;
        [&link.a, &link.b]
            .into_iter()
            .find(|end| end.role == role)
            .map(|end| end.addr)
            .with_context(|| format!("link {:?} does not reach {role:?}", link.name))
    }

    /// Takes both ends of the link down.
    pub fn cut(&self, link: &str) -> anyhow::Result<()> {
        self.set_link(link, "down")
    }

    /// Brings both ends of the link up again.
    pub fn restore(&self, link: &str) -> anyhow::Result<()> {
        self.set_link(link, "up")
    }

    fn set_link(&self, name: &str, state: &str) -> anyhow::Result<()> {
        let link = self.link(name)?;
        for end in [&link.a, &link.b] {
            run(Command::new("ip").args(["-n", &end.ns, "link", "set", "dev", name, state]))?;
        }
        Ok(())
    }

    /// Drops `percent` % of the ICMP echo requests (v4 and v6) arriving in namespace `role`, each
    /// one independently (nftables `numgen random`). Only one direction is filtered, so the loss
    /// per echo is exactly `percent` %. Replaces any loss set before.
    pub fn add_loss(&self, role: &str, percent: u8) -> anyhow::Result<()> {
        if percent > 100 {
            bail!("loss of {percent} % is not a percentage");
        }
        let script = format!(
            "table inet {LOSS_TABLE}\n\
             delete table inet {LOSS_TABLE}\n\
             table inet {LOSS_TABLE} {{\n\
               chain input {{\n\
                 type filter hook input priority 0; policy accept;\n\
                 icmp type echo-request numgen random mod 100 < {percent} drop\n\
                 icmpv6 type echo-request numgen random mod 100 < {percent} drop\n\
               }}\n\
             }}\n"
        );
        self.nft(role, &script)
    }

    /// Removes the loss set by [`Lab::add_loss`] (no-op when there is none).
    pub fn clear_loss(&self, role: &str) -> anyhow::Result<()> {
        self.nft(
            role,
            &format!("table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n"),
        )
    }

    fn nft(&self, role: &str, script: &str) -> anyhow::Result<()> {
        let ns = self.ns(role)?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting nft (package nftables)")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .context("writing to nft")?;
        }
        let output = child.wait_with_output().context("waiting for nft")?;
        if !output.status.success() {
            bail!(
                "nft in {ns} failed ({}): {}\nscript:\n{script}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// `command`, to be run inside namespace `role` (see [`netns_command`]).
    pub fn command_in(&self, role: &str, command: &Command) -> anyhow::Result<Command> {
        Ok(netns_command(self.ns(role)?, command))
    }

    /// Starts `command` inside namespace `role`, logging to `log`. `ip netns exec` replaces
    /// itself with the command, so the guard's pid is the command's.
    pub fn spawn_in(
        &self,
        role: &str,
        name: &str,
        command: &Command,
        log: &Path,
    ) -> anyhow::Result<Proc> {
        Proc::spawn(name, self.command_in(role, command)?, log)
    }

    /// Runs `command` inside namespace `role` to completion; fails on a non-zero exit.
    pub fn run_in(&self, role: &str, command: &Command) -> anyhow::Result<Output> {
        run(&mut self.command_in(role, command)?)
    }

    /// Runs `command` inside namespace `role` to completion, whatever its exit status.
    pub fn output_in(&self, role: &str, command: &Command) -> anyhow::Result<Output> {
        let mut wrapped = self.command_in(role, command)?;
        wrapped
            .output()
            .with_context(|| format!("running {wrapped:?}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            kill_all_in(&ns.name);
            if let Err(e) = run(Command::new("ip").args(["netns", "delete", &ns.name])) {
                eprintln!("lab cleanup: {e:#}");
            }
        }
    }
}

/// `command`, to be run inside namespace `ns` (`ip netns exec NS …`), keeping its environment and
/// working directory.
pub fn netns_command(ns: &str, command: &Command) -> Command {
    let mut wrapped = Command::new("ip");
    wrapped
        .args(["netns", "exec", ns])
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// `command` as is (`ns` is `None`) or inside namespace `ns`.
pub fn maybe_in(ns: Option<&str>, command: &Command) -> Command {
    match ns {
        Some(ns) => netns_command(ns, command),
        None => {
            let mut copy = Command::new(command.get_program());
            copy.args(command.get_args());
            for (key, value) in command.get_envs() {
                match value {
                    Some(value) => copy.env(key, value),
                    None => copy.env_remove(key),
                };
            }
            if let Some(dir) = command.get_current_dir() {
                copy.current_dir(dir);
            }
            copy
        }
    }
}

/// SIGKILLs every process still running in the namespace (daemons the test forgot, grandchildren).
fn kill_all_in(ns: &str) {
    let Ok(output) = Command::new("ip").args(["netns", "pids", ns]).output() else {
        return;
    };
    for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", pid]).output();
    }
}

/// Runs a command; fails with the command line, exit status and stderr when it does not succeed.
pub fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("could not start {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

/// True when the effective user id is 0 (read from `/proc/self/status`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
