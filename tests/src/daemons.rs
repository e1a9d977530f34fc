//! Handles for the two daemons under test, started from the binaries `tests/run` built: the
//! collector (with its HTTP API and its store, read through `netmon-collector events --json`) and
//! the agent (in [`crate::agent`]). Either runs on the host or inside a lab namespace.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use netmon_events::{
    Ack, AgentId, BootId, Envelope, Event, ProvinceId, Topic, TopicKind, encode_batch,
};
use serde_json::Value;

pub use netmon_harness::broker::free_port;

use crate::broker::{binary, publish_in, shared_url};
use crate::configs::CollectorConfig;
use crate::lab::{maybe_in, run};
use crate::process::Proc;
use crate::scratch::{Scratch, unique};
use crate::wait::poll_until;

/// Log filter given to the daemons: enough to diagnose a failing test from its log.
pub const DAEMON_LOG: &str = "info,netmon_agent=debug,netmon_collector=debug";

/// The agent id of the canary events [`Collector::wait_subscribed`] publishes.
pub const CANARY_AGENT: &str = "netmon-test-canary";

/// A running `netmon-collector run`.
#[derive(Debug)]
pub struct Collector {
    pub proc: Proc,
    pub config: CollectorConfig,
    pub config_path: PathBuf,
    ns: Option<String>,
    canary_boot: BootId,
    canary_seq: u64,
}

/// One line of `netmon-collector events --json`: the envelope plus the store's own keys.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub envelope: Envelope,
    pub store_id: Option<i64>,
    pub province: Option<String>,
    /// The line's `stored` object (`id`, `province`, `received`).
    pub meta: Value,
    /// The envelope's JSON without the store's keys.
    pub json: Value,
    /// The line as printed.
    pub line: String,
}

impl Collector {
    /// Writes `config` to `scratch/{name}.toml`, starts the collector (inside namespace `ns` when
    /// given) and waits until `/healthz` answers 200.
    pub fn start(
        name: &str,
        config: CollectorConfig,
        scratch: &Scratch,
        ns: Option<&str>,
    ) -> anyhow::Result<Self> {
        let config_path = scratch.write(&format!("{name}.toml"), config.to_toml())?;
        let proc = spawn_collector(name, &config_path, scratch, ns)?;
        let mut collector = Self {
            proc,
            config,
            config_path,
            ns: ns.map(str::to_owned),
            canary_boot: BootId::new(unique("canary"))?,
            canary_seq: 0,
        };
        collector.wait_healthy(Duration::from_secs(20))?;
        Ok(collector)
    }

    /// Starts a collector on the host, on the shared broker of `tests/run`, taking only
    /// `province`'s topics, with a unique client id, a free HTTP port and its store in `scratch`;
    /// waits until it is healthy and its subscription is live.
    pub fn start_local(name: &str, scratch: &Scratch, province: &str) -> anyhow::Result<Self> {
        Self::start_on(name, scratch, province, &shared_url())
    }

    /// [`Collector::start_local`] on the broker at `mqtt_url` (on the host's loopback).
    pub fn start_on(
        name: &str,
        scratch: &Scratch,
        province: &str,
        mqtt_url: &str,
    ) -> anyhow::Result<Self> {
        Self::start_projecting(name, scratch, province, mqtt_url, None)
    }

    /// [`Collector::start_on`] with an optional `[influx]` section (the time-series projection).
    pub fn start_projecting(
        name: &str,
        scratch: &Scratch,
        province: &str,
        mqtt_url: &str,
        influx: Option<crate::configs::InfluxConfig>,
    ) -> anyhow::Result<Self> {
        Self::start_with_inventory(name, scratch, province, mqtt_url, influx, None)
    }

    /// [`Collector::start_projecting`] with an optional site inventory file (`inventory = …`).
    pub fn start_with_inventory(
        name: &str,
        scratch: &Scratch,
        province: &str,
        mqtt_url: &str,
        influx: Option<crate::configs::InfluxConfig>,
        inventory: Option<String>,
    ) -> anyhow::Result<Self> {
        let config = CollectorConfig {
            province: Some(province.to_owned()),
            influx,
            inventory,
            ..CollectorConfig::on_loopback(mqtt_url, &scratch.join(&format!("{name}.db")))?
        };
        let mut collector = Self::start(name, config, scratch, None)?;
        collector.wait_subscribed(province, Duration::from_secs(20))?;
        Ok(collector)
    }

    /// Stops the running process with SIGTERM (requiring exit code 0) and starts a new one on the
    /// same config and store; waits until it is healthy.
    pub fn restart(&mut self, name: &str, scratch: &Scratch) -> anyhow::Result<()> {
        let status = self.proc.terminate(Duration::from_secs(15))?;
        if !status.success() {
            bail!(
                "the collector exited with {status} on SIGTERM; log:\n{}",
                self.proc.log()
            );
        }
        self.proc = spawn_collector(name, &self.config_path, scratch, self.ns.as_deref())?;
        self.wait_healthy(Duration::from_secs(20))
    }

    /// Crashes the collector with SIGKILL (nothing flushed, nothing acknowledged) and starts a new
    /// one on the same config and store; waits until it is healthy.
    pub fn kill_and_restart(&mut self, name: &str, scratch: &Scratch) -> anyhow::Result<()> {
        self.proc.signal("KILL")?;
        if self.proc.wait_timeout(Duration::from_secs(10))?.is_none() {
            bail!("the collector did not die within 10 s of SIGKILL");
        }
        self.proc = spawn_collector(name, &self.config_path, scratch, self.ns.as_deref())?;
        self.wait_healthy(Duration::from_secs(20))
    }

    /// The retained acknowledgement watermark the collector published for `agent` of `province`
    /// (`None` when there is none yet), read with `mosquitto_sub` in the collector's namespace.
    pub fn ack(&self, province: &str, agent: &str) -> anyhow::Result<Option<Ack>> {
        let topic = Topic::new(
            ProvinceId::new(province)?,
            AgentId::new(agent)?,
            TopicKind::Ack,
        )
        .to_string();
        let (host, port) = crate::broker::host_port(&self.config.mqtt_url)?;
        let mut sub = Command::new("mosquitto_sub");
        sub.args(["-h", &host, "-p", &port.to_string(), "-t", &topic]);
        // Retained messages come at once; -W ends the wait when there is none (exit code 27).
        sub.args(["-C", "1", "-W", "2", "--retained-only"]);
        let output = maybe_in(self.ns.as_deref(), &sub)
            .output()
            .context("running mosquitto_sub")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(line) = text.lines().find(|l| !l.trim().is_empty()) else {
            return Ok(None);
        };
        Ack::from_json(line.as_bytes())
            .map(Some)
            .with_context(|| format!("the retained ack on {topic} is not an Ack: {line}"))
    }

    /// Polls `/healthz` until it answers 200; fails if the process exits first.
    pub fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let mut failure = None;
        let healthy = poll_until(timeout, || {
            if let Err(e) = self.proc.assert_running() {
                failure = Some(e);
                return Some(());
            }
            self.get("/healthz")
                .ok()
                .filter(|(code, _)| *code == 200)
                .map(|_| ())
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if healthy.is_none() {
            bail!(
                "the collector's /healthz did not answer 200 within {timeout:?}; log {}",
                self.proc.log_path().display()
            );
        }
        Ok(())
    }

    /// Proves the collector's MQTT subscription is live: publishes canary heartbeats (agent
    /// [`CANARY_AGENT`], a fresh seq each time) every second until one is in the store. A
    /// subscription made after a publish would otherwise silently miss it.
    pub fn wait_subscribed(&mut self, province: &str, timeout: Duration) -> anyhow::Result<()> {
        let topic = Topic::new(
            ProvinceId::new(province)?,
            AgentId::new(CANARY_AGENT)?,
            TopicKind::Events,
        )
        .to_string();
        let mut last_error = None;
        let stored = poll_until(timeout, || {
            self.canary_seq += 1;
            let envelope = Envelope {
                v: 1,
                agent: AgentId::new(CANARY_AGENT).ok()?,
                boot: self.canary_boot.clone(),
                seq: self.canary_seq,
                time: Utc::now(),
                mono_ms: self.canary_seq * 1000,
                event: Event::AgentHeartbeat {
                    uptime_s: self.canary_seq,
                    backlog: 0,
                },
            };
            let sent = publish_in(
                self.ns.as_deref(),
                &self.config.mqtt_url,
                &topic,
                &encode_batch(&[envelope]),
            );
            if let Err(e) = sent {
                last_error = Some(e);
                return None;
            }
            // Give the collector up to a second to store it before publishing the next one.
            poll_until(Duration::from_secs(1), || {
                self.events(&["--agent", CANARY_AGENT])
                    .ok()
                    .filter(|events| !events.is_empty())
            })
        });
        let newest = match (stored, last_error) {
            (Some(stored), _) => stored
                .iter()
                .filter(|e| e.envelope.boot == self.canary_boot)
                .map(|e| e.envelope.seq)
                .max()
                .unwrap_or(0),
            (None, Some(e)) => return Err(e.context("publishing canary events")),
            (None, None) => bail!(
                "no canary event reached the store within {timeout:?}; log {}",
                self.proc.log_path().display()
            ),
        };
        // The live view (a snapshot, published at most every few hundred ms) must show it too, or
        // counters and state read next would not include the canary yet.
        let boot = self.canary_boot.as_str().to_owned();
        poll_until(timeout, || {
            let state = self.get_json("/api/v1/state").ok()?;
            let agents = state["agents"].as_array()?;
            agents
                .iter()
                .any(|a| {
                    a["agent"] == CANARY_AGENT
                        && a["boot"] == boot.as_str()
                        && a["last_seq"].as_u64() >= Some(newest)
                })
                .then_some(())
        })
        .with_context(|| {
            format!("the canary is stored but /api/v1/state did not show it within {timeout:?}")
        })
    }

    /// `GET http://{http.listen}{path}` with curl (inside the collector's namespace): the status
    /// code and body.
    pub fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let url = format!("http://{}{path}", self.config.http_listen);
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", &url]);
        let output = run(&mut maybe_in(self.ns.as_deref(), &curl))?;
        let text =
            String::from_utf8(output.stdout).context("the collector's answer is not UTF-8")?;
        let (body, code) = text
            .rsplit_once('\n')
            .with_context(|| format!("no status code in curl's output for {url}"))?;
        let code = code
            .trim()
            .parse()
            .with_context(|| format!("bad status code {code:?} for {url}"))?;
        Ok((code, body.to_owned()))
    }

    /// `GET` a JSON document; fails unless the answer is 200 and valid JSON.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let (code, body) = self.get(path)?;
        if code != 200 {
            bail!("GET {path} answered {code}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET {path} is not JSON: {body}"))
    }

    /// The stored events, read from the store file with `netmon-collector events --json` plus
    /// `filter` (e.g. `["--agent", id, "--type", "link_went_down"]`), oldest first.
    pub fn events(&self, filter: &[&str]) -> anyhow::Result<Vec<StoredEvent>> {
        read_events(&self.config_path, filter)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it).
/// A command running daemon binary `name` (`netmon-agent`, `netmon-collector`) with the test
/// environment of [`daemon_env`].
pub fn daemon_command(name: &str) -> Command {
    let mut command = Command::new(binary(name));
    daemon_env(&mut command);
    command
}

/// Removes the test runner's own variables, so that a daemon reading `NETMON_*` overrides sees
/// only what a test sets on purpose.
pub fn daemon_env(command: &mut Command) -> &mut Command {
    command
        .env_remove("NETMON_TEST_MQTT")
        .env_remove("NETMON_BIN_DIR")
        .env("RUST_LOG", DAEMON_LOG)
        .env("RUST_BACKTRACE", "1")
}

fn spawn_collector(
    name: &str,
    config_path: &std::path::Path,
    scratch: &Scratch,
    ns: Option<&str>,
) -> anyhow::Result<Proc> {
    let mut command = Command::new(binary("netmon-collector"));
    daemon_env(command.arg("run").arg("--config").arg(config_path));
    Proc::spawn(
        name,
        maybe_in(ns, &command),
        &scratch.join(&format!("{name}.log")),
    )
}

/// Runs `netmon-collector events --config FILE --json FILTER…` and parses every line.
pub fn read_events(
    config_path: &std::path::Path,
    filter: &[&str],
) -> anyhow::Result<Vec<StoredEvent>> {
    let output = run(daemon_env(&mut Command::new(binary("netmon-collector")))
        .arg("events")
        .arg("--config")
        .arg(config_path)
        .args(["--json", "--limit", "0"])
        .args(filter))?;
    let text = String::from_utf8(output.stdout).context("`events --json` printed non-UTF-8")?;
    let mut events = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(parse_stored)
        .collect::<anyhow::Result<Vec<_>>>()?;
    events.sort_by_key(|e| e.store_id);
    Ok(events)
}

/// Reads one line: the envelope's keys plus `stored` (`id`, `province`, `received`).
fn parse_stored(line: &str) -> anyhow::Result<StoredEvent> {
    let mut json: Value = serde_json::from_str(line)
        .with_context(|| format!("`events --json` line is not JSON: {line}"))?;
    let meta = json
        .as_object_mut()
        .and_then(|o| o.remove("stored"))
        .with_context(|| format!("`events --json` line has no `stored` object: {line}"))?;
    let envelope: Envelope = serde_json::from_value(json.clone())
        .with_context(|| format!("`events --json` line is not an envelope: {line}"))?;
    Ok(StoredEvent {
        envelope,
        store_id: meta.get("id").and_then(Value::as_i64),
        province: meta
            .get("province")
            .and_then(Value::as_str)
            .map(str::to_owned),
        meta,
        json,
        line: line.to_owned(),
    })
}

impl StoredEvent {
    /// `stored.received`: when the collector got the event.
    pub fn received(&self) -> Option<DateTime<Utc>> {
        self.meta_time("received")
    }

    /// `stored.time`: the effective time (the agent's, or corrected by the collector).
    pub fn effective_time(&self) -> Option<DateTime<Utc>> {
        self.meta_time("time")
    }

    /// `stored.clock`: `agent`, `corrected` or `received`.
    pub fn clock(&self) -> Option<&str> {
        self.meta.get("clock").and_then(Value::as_str)
    }

    /// `stored.late`: received more than `delivery.late_after` after its effective time.
    pub fn late(&self) -> Option<bool> {
        self.meta.get("late").and_then(Value::as_bool)
    }

    fn meta_time(&self, key: &str) -> Option<DateTime<Utc>> {
        self.meta
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}
