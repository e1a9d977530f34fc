//! A real SMTP server for the e-mail tests: `aiosmtpd` (Debian `python3-aiosmtpd`) on a free
//! loopback port, storing every mail in a Maildir, optionally offering STARTTLS with a
//! certificate from a private CA made with `openssl`. Mails are read back with Python's own
//! `email` package (MIME and RFC 2047 decoding independent of lettre).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::daemons::free_port;
use crate::process::Proc;
use crate::wait::{poll_until, wait_for};

/// One received mail, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub message_id: String,
    pub date: String,
    pub content_type: String,
    /// The text body, transfer encoding and charset decoded.
    pub body: String,
}

/// A running `aiosmtpd`, killed (by pid) on drop.
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    /// With STARTTLS or SMTPS: the CA file the client must trust.
    pub ca_file: Option<PathBuf>,
    maildir: PathBuf,
    proc: Proc,
}

impl SmtpServer {
    /// Starts `aiosmtpd` in `scratch/smtp-PORT/`; with `tls`, STARTTLS is offered and required
    /// (certificate for `localhost` and 127.0.0.1, signed by a fresh CA in `ca_file`).
    pub fn start(scratch: &Path, tls: bool) -> anyhow::Result<Self> {
        Self::start_in(scratch, tls, None)
    }

    /// [`SmtpServer::start`] inside network namespace `ns` (listening on its loopback).
    pub fn start_in(scratch: &Path, tls: bool, ns: Option<&str>) -> anyhow::Result<Self> {
        let mode = if tls { Mode::StartTls } else { Mode::Plain };
        Self::start_mode(scratch, mode, ns)
    }

    /// Starts `aiosmtpd` speaking TLS from the first byte (SMTPS, as on port 465).
    pub fn start_smtps(scratch: &Path) -> anyhow::Result<Self> {
        Self::start_mode(scratch, Mode::Smtps, None)
    }

    fn start_mode(scratch: &Path, mode: Mode, ns: Option<&str>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = scratch.join(format!("smtp-{port}"));
        let maildir = dir.join("Maildir");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub))
                .with_context(|| format!("creating {}/{sub}", maildir.display()))?;
        }
        let mut command = Command::new("aiosmtpd");
        command.args(["-n", "-l", &format!("127.0.0.1:{port}")]);
        let ca_file = match mode {
            Mode::Plain => None,
            Mode::StartTls | Mode::Smtps => {
                crate::certs::make_certificates(&dir)?;
                let (cert, key) = match mode {
                    Mode::Smtps => ("--smtpscert", "--smtpskey"),
                    _ => ("--tlscert", "--tlskey"),
                };
                command
                    .arg(cert)
                    .arg(dir.join("server.pem"))
                    .arg(key)
                    .arg(dir.join("server.key"));
                Some(dir.join("ca.pem"))
            }
        };
        command
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir);
        let command = crate::lab::maybe_in(ns, &command);
        let mut proc = Proc::spawn("aiosmtpd", command, &dir.join("aiosmtpd.log"))
            .context("aiosmtpd must be installed (tests/run installs python3-aiosmtpd)")?;
        let mut failure = None;
        let ready = poll_until(Duration::from_secs(15), || {
            if let Err(e) = proc.assert_running() {
                failure = Some(e);
                return Some(false);
            }
            let ready = match mode {
                // The server waits for the client's TLS hello: accepting is enough.
                Mode::Smtps => TcpStream::connect(("127.0.0.1", port)).is_ok(),
                _ => banner(port, ns),
            };
            ready.then_some(true)
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if ready != Some(true) {
            bail!(
                "aiosmtpd did not greet on 127.0.0.1:{port}; log {}",
                proc.log_path().display()
            );
        }
        Ok(Self {
            port,
            ca_file,
            maildir,
            proc,
        })
    }

    /// Every mail received so far, oldest first.
    pub fn messages(&self) -> anyhow::Result<Vec<Mail>> {
        let output = Command::new("python3")
            .args(["-c", READ_MAILDIR])
            .arg(&self.maildir)
            .output()
            .context("running python3 to read the Maildir")?;
        if !output.status.success() {
            bail!(
                "reading the Maildir failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let list: Vec<Value> =
            serde_json::from_slice(&output.stdout).context("parsing the Maildir listing")?;
        let text = |m: &Value, k: &str| m[k].as_str().unwrap_or_default().to_string();
        Ok(list
            .iter()
            .map(|m| Mail {
                subject: text(m, "subject"),
                from: text(m, "from"),
                to: text(m, "to"),
                message_id: text(m, "message_id"),
                date: text(m, "date"),
                content_type: text(m, "content_type"),
                body: text(m, "body"),
            })
            .collect())
    }

    /// Waits until at least `n` mails arrived and returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        wait_for(&format!("{n} mails"), timeout, || {
            self.messages().ok().filter(|m| m.len() >= n)
        })
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        self.proc.log()
    }
}

/// How the server secures its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    StartTls,
    Smtps,
}

/// Whether something on `port` (in namespace `ns`) greets with `220`.
fn banner(port: u16, ns: Option<&str>) -> bool {
    if ns.is_some() {
        let mut probe = Command::new("python3");
        probe.args([
            "-c",
            &format!(
                "import socket,sys; s=socket.create_connection(('127.0.0.1',{port}),2); sys.exit(0 if s.recv(3)==b'220' else 1)"
            ),
        ]);
        return crate::lab::maybe_in(ns, &probe)
            .output()
            .is_ok_and(|o| o.status.success());
    }
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("220")
}

/// Lists `argv[1]/new` and `cur` as JSON, decoded by Python's `email` package.
const READ_MAILDIR: &str = r#"
import email, email.policy, json, os, sys
root = sys.argv[1]
files = []
for sub in ("new", "cur"):
    d = os.path.join(root, sub)
    if os.path.isdir(d):
        files += [os.path.join(d, f) for f in os.listdir(d)]
files.sort(key=lambda f: (os.stat(f).st_mtime_ns, f))
out = []
for f in files:
    with open(f, "rb") as fh:
        m = email.message_from_binary_file(fh, policy=email.policy.default)
    body = m.get_body(preferencelist=("plain",))
    out.append({
        "subject": str(m["subject"] or ""),
        "from": str(m["from"] or ""),
        "to": str(m["to"] or ""),
        "message_id": str(m["message-id"] or ""),
        "date": str(m["date"] or ""),
        "content_type": m.get_content_type() + "; charset=" + str(m.get_content_charset()),
        "body": body.get_content() if body is not None else "",
    })
json.dump(out, sys.stdout, ensure_ascii=False)
"#;
