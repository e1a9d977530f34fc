//! A guard for a child process started by a test: its stdout and stderr go to a log file, it is
//! stopped (SIGTERM, then SIGKILL after a grace period) when the guard is dropped, and when the
//! test fails the log's path and its last lines are printed so the failure can be diagnosed.
//!
//! Signals are sent with the `kill` command: the workspace denies unsafe code.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::wait::poll_until;

/// Time a process gets to exit after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// A running child process, stopped on drop.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `command` with stdin closed and stdout+stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log file {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("cloning log file {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            exited: None,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self
                .child
                .try_wait()
                .with_context(|| format!("checking whether {} exited", self.name))?;
        }
        Ok(self.exited)
    }

    /// Fails, with the log's tail, if the process has already exited.
    pub fn assert_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.try_status()? {
            bail!(
                "{} exited early with {status}; log {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log(), 40)
            );
        }
        Ok(())
    }

    /// Sends a signal (`TERM`, `KILL`, `INT` …) with the `kill` command.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let output = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.id().to_string())
            .output()
            .context("running kill")?;
        if !output.status.success() {
            bail!(
                "kill -{signal} {} ({}) failed: {}",
                self.id(),
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let mut error = None;
        let status = poll_until(timeout, || match self.try_status() {
            Ok(status) => status,
            Err(e) => {
                error = Some(e);
                None
            }
        });
        match error {
            Some(e) => Err(e),
            None => Ok(status),
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit status. Fails if the process does not
    /// exit in time (it is then killed).
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_status()? {
            return Ok(status);
        }
        self.signal("TERM")?;
        match self.wait_timeout(timeout)? {
            Some(status) => Ok(status),
            None => {
                self.kill();
                bail!(
                    "{} did not exit within {timeout:?} of SIGTERM (killed); log {}",
                    self.name,
                    self.log.display()
                )
            }
        }
    }

    /// SIGKILL and reap, ignoring errors (the process may be gone already).
    pub fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} (pid {}) log {} (last lines):\n{}",
                self.name,
                self.id(),
                self.log.display(),
                tail(&self.log(), 40)
            );
        }
        if matches!(self.try_status(), Ok(None)) {
            let stopped =
                self.signal("TERM").is_ok() && matches!(self.wait_timeout(GRACE), Ok(Some(_)));
            if !stopped {
                self.kill();
            }
        }
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
