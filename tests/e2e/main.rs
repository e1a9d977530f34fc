//! End-to-end tests: the real daemons, a real Mosquitto, real network namespaces. Run them with
//! `tests/run` (as root), which starts the shared broker and builds the binaries.
//!
//! - `lab_helpers`: the network lab itself (cut, restore, loss), checked with fping.
//! - `agent_lab` (on `village`'s three-namespace lab): the agent probes a commune across a veth
//!   link; events reach the store; cuts are detected within 5 s; 20 % loss is not an outage.
//! - `influx`: the InfluxDB projection into a private InfluxDB 1.6 (v1) and VictoriaMetrics (v2):
//!   every point equals its stored event; an InfluxDB outage loses nothing; `replay influx`.
//! - `intake`: the collector refuses bad payloads by reason and stores a duplicate once.
//! - `poison`: the audit's poison messages are refused alone while another agent's event is
//!   stored within a second; a refused event does not hold the watermark; a full disk (a tmpfs)
//!   and a reconnect loop make `/healthz` 503 with the reason, and nothing is lost.
//! - `replay`: a restarted collector rebuilds byte-identical state from its store.
//! - `restart`: a collector killed mid-stream restarts from its snapshot within 5 s, and its
//!   state is then the full replay's.
//! - `backup`: `backup` while events stream in, the store destroyed, `restore`, start: the state
//!   is the backup's and every event it holds is in the restored store.
//! - `bad_configs`: `check` exits 64 naming the file and the key.
//! - `inventory`: a bad site inventory exits 64 naming the inventory file and key; `inventory
//!   import` of a BOM + semicolon CSV keeps Vietnamese names; `inventory show` against a store.
//! - `tls`: the agent and the collector over `mqtts://` with a private CA.
//! - `mixed_fleet`: an agent of the previous release (rounds, full envelopes) and a current one
//!   (windows, compact batches) through one broker into one collector and one link state.
//! - `delivery`: nothing lost, nothing doubled on the host: collector killed 3×, broker
//!   restarted, journal tail torn by hand (exactly-once checked with `netmon_tests::Ledger`).
//! - `delivery_lab`: the same in the lab: a 2-minute uplink cut (and the drain-rate benchmark),
//!   the agent killed during a cut, a journal that overflows, an outage reported late.
//! - `dashboards`: every query of the Grafana dashboards in `dashboards/` answers with data on a
//!   private InfluxDB 1.6 holding points written per the agreed schema.
//! - `notify`: the notification channels against real receivers — a webhook receiver checking
//!   the HMAC signature, a Telegram Bot API stand-in, aiosmtpd (plain and STARTTLS) receiving the
//!   exact Vietnamese subject and text; failures classified retryable or final.
//! - `snmp`: the SNMP poller against a real snmpd in a lab namespace: rates vs kernel counters,
//!   snmpd restart, interface down, a saturated tbf link, bad devices, the `snmp` CLI.
//! - `coverage_alerts`: a modem from `nr5g_nsa` to no service through the real broker is one
//!   Vietnamese webhook message naming the village and operator, then one recovery; a dip
//!   under the threshold is none.
//! - `coverage`: two hours of modem readings at five inventory sites and an unlisted agent (5G
//!   SA/NSA, LTE, WCDMA, no service; three operators; a silent modem) through a real collector;
//!   `report coverage` in JSON, CSV (BOM) and table gives the exact shares, medians and x/y sites.
//! - `cellular`: the agent's modem sources over a real pty (an AT modem emulator) and an mmcli
//!   stand-in: the `cellular` CLI, readings into the store, hang/garbage/no service as events.
//! - `clock`: an agent whose wall clock says 1970, or jumps two days ahead (libfaketime), gets
//!   corrected times in the store.
//!
//! Tests that play the agent build envelopes with `netmon_events::testing` (feature `test-util`),
//! shared with the agent's tests.
#![allow(clippy::unwrap_used)]

mod agent_lab;
mod alerts;
mod alerts_lab;
mod alerts_outbox;
mod backup;
mod bad_configs;
mod broker_security;
mod cellular;
mod clock;
mod coverage;
mod coverage_alerts;
mod dashboards;
mod delivery;
mod delivery_lab;
mod http_limits;
mod influx;
mod intake;
mod inventory;
mod lab_helpers;
mod mixed_fleet;
mod notify;
mod poison;
mod replay;
mod restart;
mod snmp;
mod tls;
mod village;
