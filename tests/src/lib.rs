//! Helpers shared by the end-to-end tests in `tests/e2e/` (one test binary, run by `tests/run`).
//!
//! - [`lab`]: network namespaces joined by veth pairs; cut and restore links, add ICMP loss.
//! - [`process`]: a guard for a child process: log file, SIGTERM/SIGKILL on drop, exit status.
//! - [`broker`]: the shared Mosquitto from `NETMON_TEST_MQTT`, a private one inside a namespace,
//!   `mosquitto_pub`, and the daemon binaries from `NETMON_BIN_DIR`.
//! - [`configs`]: the daemons' TOML config files.
//! - [`daemons`]: handles for a running collector (HTTP API, store) and agent.
//! - [`slot`]: per-lab subnets, so that parallel labs never share addresses.
//! - [`scratch`]: per-test temporary directories (kept when a test fails) and unique names.
//! - [`wait`]: polling an observable condition with a deadline, instead of sleeping.
//!
//! Everything here fails loudly when the environment is incomplete (not root, no broker, no
//! binaries): a test that cannot run must not pass.

pub mod broker;
pub mod configs;
pub mod daemons;
pub mod lab;
pub mod process;
pub mod scratch;
pub mod slot;
pub mod wait;

pub use broker::{Broker, binary, publish, shared_url};
pub use configs::{AgentConfig, CollectorConfig, TargetConfig};
pub use daemons::{Agent, Collector, StoredEvent};
pub use lab::Lab;
pub use process::Proc;
pub use scratch::{Scratch, unique};
pub use wait::{poll_until, wait_for};
