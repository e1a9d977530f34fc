//! A private InfluxDB 1.6 (`influxd`, Debian package `influxdb`) for one test: its meta, data and
//! WAL directories in the test's scratch directory, HTTP and RPC on free loopback ports (never the
//! default 8086/8088, so parallel tests never meet), no authentication, no usage reporting.
//! Stopped when dropped; [`Influxd::stop`] and [`Influxd::restart`] simulate an outage on the
//! same data and port. HTTP goes through `curl`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::daemons::free_port;
use crate::lab::run;
use crate::process::Proc;
use crate::scratch::{Scratch, unique};

/// How long `influxd` gets to answer `/ping` after it was started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running private `influxd`.
#[derive(Debug)]
pub struct Influxd {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub proc: Proc,
    config_path: PathBuf,
    log_path: PathBuf,
    name: String,
}

impl Influxd {
    /// Writes a config under `scratch/{influxd-…}/`, starts `influxd -config FILE` and waits until
    /// `/ping` answers 204.
    pub fn start(scratch: &Scratch) -> anyhow::Result<Self> {
        let name = unique("influxd");
        let dir = scratch.join(&name);
        for sub in ["meta", "data", "wal"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}/{sub}", dir.display()))?;
        }
        let http_port = free_port()?;
        let rpc_port = free_port()?;
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc_port}\"\n\
             \n[meta]\n  dir = \"{meta}\"\n\
             \n[data]\n  dir = \"{data}\"\n  wal-dir = \"{wal}\"\n  query-log-enabled = false\n\
             \n[monitor]\n  store-enabled = false\n\
             \n[http]\n  enabled = true\n  bind-address = \"127.0.0.1:{http_port}\"\n  \
             auth-enabled = false\n  log-enabled = false\n",
            meta = dir.join("meta").display(),
            data = dir.join("data").display(),
            wal = dir.join("wal").display(),
        );
        let config_path = dir.join("influxdb.conf");
        std::fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log_path = dir.join("influxd.log");
        let proc = spawn(&name, &config_path, &log_path)?;
        let mut influxd = Self {
            url: format!("http://127.0.0.1:{http_port}"),
            proc,
            config_path,
            log_path,
            name,
        };
        influxd.wait_ready()?;
        Ok(influxd)
    }

    /// Stops the server with SIGTERM (an outage); the data stays.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.proc.terminate(Duration::from_secs(20))?;
        Ok(())
    }

    /// Starts the server again on the same config, data and port (stopping it first if it still
    /// runs) and waits until `/ping` answers 204.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.proc.try_status()?.is_none() {
            self.stop()?;
        }
        self.proc = spawn(&self.name, &self.config_path, &self.log_path)?;
        self.wait_ready()
    }

    /// `CREATE DATABASE name`.
    pub fn create_database(&self, name: &str) -> anyhow::Result<()> {
        let output = run(Command::new("curl")
            .args(["-sS", "--fail-with-body", "--max-time", "10", "-XPOST"])
            .arg(format!("{}/query", self.url))
            .arg("--data-urlencode")
            .arg(format!("q=CREATE DATABASE \"{name}\"")))?;
        check_errors(&output.stdout).with_context(|| format!("CREATE DATABASE {name}"))?;
        Ok(())
    }

    /// Runs InfluxQL `q` on database `db` with timestamps as epoch milliseconds; the answer's JSON.
    /// Fails when the answer reports an error.
    pub fn query(&self, db: &str, q: &str) -> anyhow::Result<Value> {
        let output = run(Command::new("curl")
            .args(["-sS", "--fail-with-body", "--max-time", "30", "-G"])
            .arg(format!("{}/query", self.url))
            .args(["--data-urlencode", &format!("db={db}")])
            .args(["--data-urlencode", "epoch=ms"])
            .arg("--data-urlencode")
            .arg(format!("q={q}")))?;
        check_errors(&output.stdout).with_context(|| format!("query {q:?} on {db}"))
    }

    /// The rows of the first series of `SELECT …`, each as an object keyed by column (tags and
    /// fields alike, `time` in epoch ms). Empty when the measurement has no points.
    pub fn select(&self, db: &str, q: &str) -> anyhow::Result<Vec<serde_json::Map<String, Value>>> {
        let answer = self.query(db, q)?;
        let mut rows = Vec::new();
        let series = answer["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for s in series {
            let columns: Vec<String> = s["columns"]
                .as_array()
                .context("a series without columns")?
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_owned())
                .collect();
            for values in s["values"].as_array().cloned().unwrap_or_default() {
                let values = values.as_array().cloned().unwrap_or_default();
                rows.push(columns.iter().cloned().zip(values).collect());
            }
        }
        Ok(rows)
    }

    /// `SELECT count(field) FROM measurement` (0 when there are no points).
    pub fn count(&self, db: &str, measurement: &str, field: &str) -> anyhow::Result<u64> {
        let answer = self.query(
            db,
            &format!("SELECT count(\"{field}\") FROM \"{measurement}\""),
        )?;
        Ok(answer["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0))
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let url = format!("{}/ping", self.url);
        crate::wait::wait_http(&mut self.proc, &url, "204", "influxd", START_TIMEOUT)
    }
}

fn spawn(name: &str, config: &std::path::Path, log: &std::path::Path) -> anyhow::Result<Proc> {
    let mut command = Command::new(influxd_binary());
    command.arg("-config").arg(config);
    Proc::spawn(name, command, log)
}

/// `influxd` from the PATH or `/usr/bin`; fails loudly naming the package when missing.
fn influxd_binary() -> PathBuf {
    let path = PathBuf::from("/usr/bin/influxd");
    assert!(
        path.is_file(),
        "{} does not exist: install the Debian package `influxdb` (tests/run does)",
        path.display()
    );
    path
}

/// Parses an InfluxDB answer and fails on a top-level or per-statement `error`.
fn check_errors(body: &[u8]) -> anyhow::Result<Value> {
    let answer: Value = serde_json::from_slice(body).with_context(|| {
        format!(
            "InfluxDB's answer is not JSON: {}",
            String::from_utf8_lossy(body)
        )
    })?;
    if let Some(error) = answer.get("error") {
        bail!("InfluxDB answered an error: {error}");
    }
    if let Some(results) = answer.get("results").and_then(Value::as_array) {
        for result in results {
            if let Some(error) = result.get("error") {
                bail!("InfluxDB answered an error: {error}");
            }
        }
    }
    Ok(answer)
}
