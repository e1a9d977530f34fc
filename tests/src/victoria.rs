//! A private VictoriaMetrics (`victoria-metrics`, Debian package `victoria-metrics`) for one test:
//! its storage in the scratch directory, HTTP on a free loopback port (never the default 8428).
//! It accepts InfluxDB line protocol on `/write` and `/api/v2/write`; points are read back with
//! `/api/v1/export` (one JSON object per series and line; VictoriaMetrics names a series
//! `{measurement}_{field}` and keeps the tags as labels, string fields are dropped). Stopped when
//! dropped; [`Victoria::stop`] / [`Victoria::restart`] keep the data and the port.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::daemons::free_port;
use crate::lab::run;
use crate::process::Proc;
use crate::scratch::{Scratch, unique};

/// How long VictoriaMetrics gets to answer `/health` after it was started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running private VictoriaMetrics.
#[derive(Debug)]
pub struct Victoria {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub proc: Proc,
    port: u16,
    data_dir: PathBuf,
    log_path: PathBuf,
    name: String,
}

impl Victoria {
    /// Starts `victoria-metrics` with its data under `scratch/{victoria-…}/` and waits until
    /// `/health` answers 200.
    pub fn start(scratch: &Scratch) -> anyhow::Result<Self> {
        let name = unique("victoria");
        let dir = scratch.join(&name);
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let port = free_port()?;
        let log_path = dir.join("victoria-metrics.log");
        let proc = spawn(&name, port, &data_dir, &log_path)?;
        let mut victoria = Self {
            url: format!("http://127.0.0.1:{port}"),
            proc,
            port,
            data_dir,
            log_path,
            name,
        };
        victoria.wait_ready()?;
        Ok(victoria)
    }

    /// Stops the server with SIGTERM (an outage); the data stays.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.proc.terminate(Duration::from_secs(20))?;
        Ok(())
    }

    /// Starts the server again on the same data and port and waits until it is healthy.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.proc.try_status()?.is_none() {
            self.stop()?;
        }
        self.proc = spawn(&self.name, self.port, &self.data_dir, &self.log_path)?;
        self.wait_ready()
    }

    /// Makes recently written points searchable at once (`/internal/force_flush`).
    pub fn flush(&self) -> anyhow::Result<()> {
        run(Command::new("curl")
            .args(["-sS", "--fail-with-body", "--max-time", "10"])
            .arg(format!("{}/internal/force_flush", self.url)))?;
        Ok(())
    }

    /// Every series matching selector `matcher` (e.g. `{__name__=~"probe_.*"}`) over all time, as
    /// exported by `/api/v1/export`: objects with `metric` (labels), `values`, `timestamps` (ms).
    pub fn export(&self, matcher: &str) -> anyhow::Result<Vec<Value>> {
        self.flush()?;
        let output = run(Command::new("curl")
            .args(["-sS", "--fail-with-body", "--max-time", "30", "-G"])
            .arg(format!("{}/api/v1/export", self.url))
            .arg("--data-urlencode")
            .arg(format!("match[]={matcher}"))
            .args(["--data-urlencode", "start=0"]))?;
        let text = String::from_utf8(output.stdout).context("the export is not UTF-8")?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .with_context(|| format!("an export line is not JSON: {line}"))
            })
            .collect()
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/health", self.url);
        crate::wait::wait_http(
            &mut self.proc,
            &url,
            "200",
            "victoria-metrics",
            START_TIMEOUT,
        )
    }
}

fn spawn(
    name: &str,
    port: u16,
    data_dir: &std::path::Path,
    log: &std::path::Path,
) -> anyhow::Result<Proc> {
    let binary = PathBuf::from("/usr/bin/victoria-metrics");
    assert!(
        binary.is_file(),
        "{} does not exist: install the Debian package `victoria-metrics` (tests/run does)",
        binary.display()
    );
    let mut command = Command::new(binary);
    command
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .arg(format!("-storageDataPath={}", data_dir.display()))
        // Points from the tests are minutes old at most; keep them whatever their age.
        .arg("-retentionPeriod=100y")
        .arg("-search.latencyOffset=0s")
        .arg("-search.disableCache");
    Proc::spawn(name, command, log)
}
