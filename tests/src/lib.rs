//! Helpers shared by the end-to-end tests in `tests/e2e/` (one test binary, run by `tests/run`).
//!
//! - [`lab`]: network namespaces joined by veth pairs; cut and restore links, add ICMP loss.
//! - [`process`], [`scratch`], [`wait`]: re-exported from `netmon-harness`, the harness the
//!   agent's and the collector's integration tests share: a guard for a child process (log file,
//!   SIGTERM/SIGKILL on drop), per-test `tempfile` directories kept when a test fails, unique
//!   names, and polling an observable condition with a deadline instead of sleeping.
//! - [`broker`]: the shared Mosquitto from `NETMON_TEST_MQTT`, a private one on loopback or
//!   inside a namespace, `mosquitto_pub`, and the daemon binaries from `NETMON_BIN_DIR`.
//! - [`configs`]: the daemons' TOML config files.
//! - [`daemons`]: a handle for a running collector (HTTP API, store).
//! - [`influxd`], [`victoria`]: a private InfluxDB 1.6 / VictoriaMetrics per test (free loopback
//!   port, data in the scratch directory), stopped and restarted for outages, read back.
//! - [`agent`]: a handle for a running agent (own journal dir, kill, restart, extra
//!   environment), and the journal's segment files read as records.
//! - [`ledger`]: the exactly-once check of one agent's stored events (gaps, duplicates, declared
//!   journal overflows) and the counts for the closing note.
//! - [`modem`]: a cellular modem emulator on a real pty (`modem.py`: AT answers from the agent's
//!   fixtures, hang/garbage/no-service modes switched at run time) and an `mmcli` stand-in script.
//! - [`snmpd`]: a private net-snmp snmpd in a namespace (v2c + v3 user), restartable; a UDP
//!   responder that answers garbage.
//! - [`slot`]: per-lab subnets, so that parallel labs never share addresses.
//! - [`receivers`]: a webhook receiver checking the HMAC signature and a Telegram Bot API
//!   stand-in (minimal HTTP servers on loopback that can fail or go down); [`smtp`]: a real SMTP
//!   server (`aiosmtpd`, optionally STARTTLS with a private CA) and its mails decoded.
//!
//! Everything here fails loudly when the environment is incomplete (not root, no broker, no
//! binaries): a test that cannot run must not pass.

pub use netmon_harness::{process, scratch, wait};

pub mod agent;
pub mod broker;
pub mod certs;
pub mod configs;
pub mod daemons;
pub mod hook;
pub mod influxd;
pub mod lab;
pub mod ledger;
pub mod modem;
pub mod receivers;
pub mod slot;
pub mod smtp;
pub mod snmpd;
pub mod victoria;

pub use agent::{Agent, Launch};
pub use broker::{Broker, LocalBroker, Sniffer, Wire, binary, publish, shared_url};
pub use configs::{AgentConfig, CollectorConfig, InfluxConfig, TargetConfig};
pub use daemons::{Collector, StoredEvent};
pub use lab::Lab;
pub use ledger::{Ledger, Tally};
pub use process::Proc;
pub use receivers::{TelegramStub, WebhookReceiver};
pub use scratch::{Scratch, unique};
pub use smtp::{Mail, SmtpServer};
pub use wait::{poll_until, wait_for};
