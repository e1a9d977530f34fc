//! A running `netmon-agent run`, started from the binary `tests/run` built, on the host or inside
//! a lab namespace, optionally with extra environment (libfaketime). Every agent gets its own
//! journal directory in the test's scratch directory (the agent locks it), which survives
//! [`Agent::kill`] and [`Agent::restart`]: a restarted agent is a new boot on the same journal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::broker::binary;
use crate::configs::AgentConfig;
use crate::daemons::daemon_env;
use crate::lab::{maybe_in, run};
use crate::process::Proc;
use crate::scratch::Scratch;

/// How the agent's process is started besides its config: extra environment variables (such as
/// `LD_PRELOAD` of libfaketime). The agent's own process is always the one started, so that
/// signals reach it.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub env: Vec<(String, String)>,
}

/// A running (or killed, until restarted) `netmon-agent run`.
#[derive(Debug)]
pub struct Agent {
    pub proc: Proc,
    pub config: AgentConfig,
    pub config_path: PathBuf,
    name: String,
    log: PathBuf,
    ns: Option<String>,
    launch: Launch,
}

impl Agent {
    /// Writes `config` to `scratch/{name}.toml` (with `[journal] dir = scratch/{name}-journal`
    /// unless the config names one) and starts the agent (inside namespace `ns` when given). Does
    /// not wait: the agent's first events in the store are the sign it works.
    pub fn start(
        name: &str,
        config: AgentConfig,
        scratch: &Scratch,
        ns: Option<&str>,
    ) -> anyhow::Result<Self> {
        Self::start_with(name, config, scratch, ns, Launch::default())
    }

    /// [`Agent::start`] with extra environment.
    pub fn start_with(
        name: &str,
        mut config: AgentConfig,
        scratch: &Scratch,
        ns: Option<&str>,
        launch: Launch,
    ) -> anyhow::Result<Self> {
        if config.journal_dir.is_none() {
            let dir = scratch.join(&format!("{name}-journal"));
            config.journal_dir = Some(dir.display().to_string());
        }
        let config_path = scratch.write(&format!("{name}.toml"), config.to_toml())?;
        let log = scratch.join(&format!("{name}.log"));
        let proc = spawn_agent(name, &config_path, &log, ns, &launch)?;
        Ok(Self {
            proc,
            config,
            config_path,
            name: name.to_owned(),
            log,
            ns: ns.map(str::to_owned),
            launch,
        })
    }

    /// The agent's journal directory.
    pub fn journal_dir(&self) -> PathBuf {
        PathBuf::from(self.config.journal_dir.clone().unwrap_or_default())
    }

    /// SIGKILLs the agent (no flush, no goodbye) and waits until it is gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.proc.signal("KILL")?;
        match self.proc.wait_timeout(Duration::from_secs(10))? {
            Some(_) => Ok(()),
            None => bail!("{} did not die within 10 s of SIGKILL", self.name),
        }
    }

    /// SIGTERMs the agent and requires a clean exit (code 0) within 15 s.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let status = self.proc.terminate(Duration::from_secs(15))?;
        if !status.success() {
            bail!(
                "{} exited with {status} on SIGTERM; log:\n{}",
                self.name,
                self.proc.log()
            );
        }
        Ok(())
    }

    /// Starts a new process (a new boot) on the same config and journal, appending to the same
    /// log. The previous process must have exited ([`Agent::kill`], [`Agent::stop`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.proc.try_status()?.is_none() {
            bail!("{} is still running; stop or kill it first", self.name);
        }
        self.proc = spawn_agent(
            &self.name,
            &self.config_path,
            &self.log,
            self.ns.as_deref(),
            &self.launch,
        )?;
        Ok(())
    }

    /// `netmon-agent journal --config FILE --json`, run on the host (it only reads the journal
    /// directory, which the host sees too), parsed.
    pub fn journal(&self) -> anyhow::Result<Value> {
        journal_json(&self.config_path)
    }
}

/// Runs `netmon-agent journal --config FILE --json` and parses its output.
pub fn journal_json(config_path: &Path) -> anyhow::Result<Value> {
    let output = run(daemon_env(&mut Command::new(binary("netmon-agent")))
        .arg("journal")
        .arg("--config")
        .arg(config_path)
        .arg("--json"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim())
        .with_context(|| format!("`netmon-agent journal --json` printed no JSON: {text}"))
}

fn spawn_agent(
    name: &str,
    config_path: &Path,
    log: &Path,
    ns: Option<&str>,
    launch: &Launch,
) -> anyhow::Result<Proc> {
    let mut command = Command::new(binary("netmon-agent"));
    daemon_env(command.arg("run").arg("--config").arg(config_path));
    for (key, value) in &launch.env {
        command.env(key, value);
    }
    Proc::spawn(name, maybe_in(ns, &command), log)
}

/// The journal's segment files (`{number:020}.seg`), oldest first.
pub fn journal_segments(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "seg"))
        .collect();
    segments.sort();
    Ok(segments)
}

/// One intact record of a journal segment: where it lies and the envelope it holds.
#[derive(Debug, Clone)]
pub struct JournalRecord {
    pub offset: usize,
    /// Header (length u32 LE, CRC-32 u32 LE) plus payload.
    pub len: usize,
    pub envelope: netmon_events::Envelope,
}

/// The intact records at the start of a segment's bytes (the agent's record format: length,
/// CRC-32, JSON envelope), stopping at the first one that is not whole. The test only needs to
/// know where records lie and which event each holds, so the checksum is not verified here.
pub fn journal_records(bytes: &[u8]) -> Vec<JournalRecord> {
    let mut records = Vec::new();
    let mut offset = 0;
    while let Some(header) = bytes.get(offset..offset + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let Some(payload) = bytes.get(offset + 8..offset + 8 + len) else {
            break;
        };
        let Ok(envelope) = serde_json::from_slice(payload) else {
            break;
        };
        records.push(JournalRecord {
            offset,
            len: 8 + len,
            envelope,
        });
        offset += 8 + len;
    }
    records
}
