//! SNMP polling of the routers beside the agent: interface load, errors, oper status and
//! reboots, read from IF-MIB with `snmp2` (`docs/adr/0011-snmp2.md`).
//!
//! - [`settings`]: the `[snmp]` configuration section and its validation;
//! - [`mib`] (pure): the objects read and how varbinds become a [`mib::Snapshot`];
//! - [`rates`] (pure): counter differences into bit/s and per-second rates, wraps vs resets;
//! - [`device`] (pure): one device across polls → `interface_went_down`/`_came_back`,
//!   `device_rebooted`, `device_stopped_answering`/`_answers_again` at once, the counters into
//!   report windows, and the back-off of a silent device;
//! - [`window`] (pure): one interface's report window → `interface_counters_sampled` (rates
//!   over the window's polls, peak utilisation);
//! - [`session`] (I/O): the snmp2 client — timeouts, fresh sessions after failures, retries,
//!   GetBulk walks;
//! - [`poller`]: the task, one loop per device, events to the recorder;
//! - [`report`]: `netmon-agent snmp`, what a device says right now.

pub mod device;
pub mod mib;
pub mod poller;
pub mod rates;
pub mod report;
pub mod session;
pub mod settings;
pub mod window;

pub use poller::run_snmp;
