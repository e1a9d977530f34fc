//! Notification receivers inside a lab namespace (where the collector under test runs): the
//! webhook receiver `hook.py` (verifies the HMAC, records every request as a JSON line) and
//! aiosmtpd. Processes are stopped by pid when dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::lab::Lab;
use crate::process::Proc;
use crate::scratch::Scratch;
use crate::wait::poll_until;

/// The receiver's source, written into the scratch directory.
const HOOK_PY: &str = include_str!("hook.py");

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hooked {
    pub id: String,
    pub signature_ok: bool,
    pub body: Value,
    /// Receive time, unix milliseconds.
    pub received_ms: i64,
}

/// The webhook receiver in a namespace, on 127.0.0.1:`port` there.
#[derive(Debug)]
pub struct NsHook {
    pub port: u16,
    out: PathBuf,
    _proc: Proc,
}

impl NsHook {
    pub fn start(
        lab: &Lab,
        role: &str,
        scratch: &Scratch,
        port: u16,
        secret: &str,
    ) -> anyhow::Result<Self> {
        let script = scratch.join("hook.py");
        std::fs::write(&script, HOOK_PY).context("writing hook.py")?;
        let out = scratch.join(&format!("hook-{port}.jsonl"));
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .arg(port.to_string())
            .arg(secret)
            .arg(&out);
        let proc = lab.spawn_in(role, "hook", &command, &scratch.join("hook.log"))?;
        let mut probe = {
            let mut c = Command::new("python3");
            c.args([
                "-c",
                &format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1)"),
            ]);
            lab.command_in(role, &c)?
        };
        poll_until(Duration::from_secs(10), || {
            probe
                .output()
                .is_ok_and(|o| o.status.success())
                .then_some(())
        })
        .context("the webhook receiver did not listen within 10 s")?;
        Ok(Self {
            port,
            out,
            _proc: proc,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/netmon", self.port)
    }

    /// Every request so far, in order.
    pub fn hooked(&self) -> Vec<Hooked> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| Hooked {
                id: v["id"].as_str().unwrap_or_default().to_owned(),
                signature_ok: v["signature_ok"].as_bool().unwrap_or(false),
                body: v["body"].clone(),
                received_ms: v["received_ms"].as_i64().unwrap_or_default(),
            })
            .collect()
    }

    /// Waits until at least `n` requests arrived (or the timeout passed) and returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Hooked> {
        let _ = poll_until(timeout, || (self.hooked().len() >= n).then_some(()));
        self.hooked()
    }
}
