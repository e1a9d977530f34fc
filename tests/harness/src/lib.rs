//! The test harness every test tree shares: the agent's and the collector's integration tests
//! (`agent/tests/`, `collector/tests/`) and the end-to-end tests (`tests/e2e/`, through
//! `netmon-tests`, which re-exports these modules).
//!
//! - [`broker`]: the shared Mosquitto from `NETMON_TEST_MQTT` (started by `tests/run`),
//!   `mosquitto_pub`, and a private Mosquitto on a free loopback port ([`LocalBroker`]).
//! - [`wait`]: polling an observable condition with a deadline, blocking or async, instead of
//!   sleeping for a guessed time.
//! - [`scratch`]: per-test temporary directories (`tempfile`, kept when the test fails) and
//!   unique names.
//! - [`process`]: a guard for a child process: log file, SIGTERM/SIGKILL on drop, exit status.
//!
//! A leaf crate (it depends on `netmon-mqtt` only), so that `netmon-agent` and
//! `netmon-collector` can take it as a dev-dependency without a cycle. Everything here fails
//! loudly when the environment is incomplete: a test that cannot run must not pass.

pub mod broker;
pub mod process;
pub mod scratch;
pub mod wait;

pub use broker::{LocalBroker, publish, shared_url};
pub use process::Proc;
pub use scratch::{Scratch, unique};
pub use wait::{poll_until, poll_until_async, wait_for, wait_for_async};
