//! Whether the collector is doing its job, for `/healthz` and `netmon-collector status` (pure:
//! the writer and the intake report what happened, [`judge`] decides with an explicit `now`).
//!
//! Unhealthy (HTTP 503, each reason on its own line) while any of these holds:
//! - the state is still being rebuilt from the store;
//! - a batch cannot be committed (disk full, I/O error): the writer is stalled and takes nothing
//!   new until it can;
//! - a write to the store failed within [`RECENT`] and nothing was committed since (silence,
//!   alert or notification events);
//! - the MQTT connection failed [`LOOP_FAILURES`] times within [`RECENT`] (a reconnect loop, for
//!   example a packet above the client's limit redelivered at every reconnect), or has been down
//!   for longer than [`DOWN_FOR`].

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};

/// How far back failures count.
pub const RECENT: TimeDelta = TimeDelta::seconds(60);
/// Connection failures within [`RECENT`] that make a reconnect loop.
pub const LOOP_FAILURES: usize = 3;
/// A connection down this long is reported even when the retries are spaced out.
pub const DOWN_FOR: TimeDelta = TimeDelta::seconds(30);
/// Reasons are cut to this many characters (they may quote a broker's or SQLite's words).
const MAX_REASON: usize = 300;

/// What the writer reports (part of every snapshot).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterHealth {
    /// Since when a batch has been failing to commit, and the last error; `None` when none is.
    pub stalled: Option<(DateTime<Utc>, String)>,
    /// The last failed write of the store, of any kind.
    pub last_store_error: Option<(DateTime<Utc>, String)>,
    /// The last successful commit of a batch.
    pub last_commit: Option<DateTime<Utc>>,
}

impl WriterHealth {
    /// A commit failed; `stalled` when the batch is kept for a retry.
    pub fn failed(&mut self, at: DateTime<Utc>, error: &str, stalled: bool) {
        let error = cut(error);
        if stalled {
            let since = self.stalled.as_ref().map_or(at, |(since, _)| *since);
            self.stalled = Some((since, error.clone()));
        }
        self.last_store_error = Some((at, error));
    }

    /// A batch was committed at `at`.
    pub fn committed(&mut self, at: DateTime<Utc>) {
        self.stalled = None;
        self.last_commit = Some(at);
    }
}

/// What the intake reports about the MQTT connection.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeHealth {
    /// Connected (ConnAck received and no error since).
    pub connected: bool,
    /// When the connection was last lost (or the intake started, before the first connect).
    pub down_since: DateTime<Utc>,
    /// Failures within [`RECENT`] of the newest, oldest first.
    pub failures: VecDeque<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl IntakeHealth {
    pub fn starting(at: DateTime<Utc>) -> Self {
        Self {
            connected: false,
            down_since: at,
            failures: VecDeque::new(),
            last_error: None,
        }
    }

    pub fn connected(&mut self) {
        self.connected = true;
    }

    pub fn failed(&mut self, at: DateTime<Utc>, error: &str) {
        if self.connected {
            self.down_since = at;
        }
        self.connected = false;
        self.failures.push_back(at);
        while self.failures.front().is_some_and(|t| at - *t > RECENT) {
            self.failures.pop_front();
        }
        self.last_error = Some(cut(error));
    }
}

/// The reasons the collector is unhealthy at `now`; empty when it is healthy.
pub fn judge(
    ready: bool,
    writer: &WriterHealth,
    intake: &IntakeHealth,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if !ready {
        reasons.push("rebuilding: the state is being replayed from the store".to_string());
    }
    if let Some((since, error)) = &writer.stalled {
        reasons.push(format!(
            "store: events cannot be committed since {} ({}s); nothing new is stored: {error}",
            since.format("%Y-%m-%dT%H:%M:%SZ"),
            (now - *since).num_seconds().max(0),
        ));
    } else if let Some((at, error)) = &writer.last_store_error
        && now - *at <= RECENT
        && writer.last_commit.is_none_or(|commit| commit < *at)
    {
        reasons.push(format!(
            "store: a write failed {}s ago: {error}",
            (now - *at).num_seconds().max(0)
        ));
    }
    let recent = intake
        .failures
        .iter()
        .filter(|t| now - **t <= RECENT)
        .count();
    let error = intake.last_error.as_deref().unwrap_or("no answer yet");
    if recent >= LOOP_FAILURES {
        reasons.push(format!(
            "mqtt: the connection failed {recent} times in the last {}s (a reconnect loop): {error}",
            RECENT.num_seconds()
        ));
    } else if !intake.connected && now - intake.down_since > DOWN_FOR {
        reasons.push(format!(
            "mqtt: not connected to the broker for {}s: {error}",
            (now - intake.down_since).num_seconds()
        ));
    }
    reasons
}

fn cut(text: &str) -> String {
    netmon_events::text::printable(text)
        .chars()
        .take(MAX_REASON)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::seconds(seconds)
    }

    fn up() -> IntakeHealth {
        let mut intake = IntakeHealth::starting(t(0));
        intake.connected();
        intake
    }

    #[test]
    fn healthy_when_ready_committing_and_connected() {
        assert!(judge(true, &WriterHealth::default(), &up(), t(100)).is_empty());
        let rebuilding = judge(false, &WriterHealth::default(), &up(), t(100));
        assert_eq!(rebuilding.len(), 1);
        assert!(rebuilding[0].starts_with("rebuilding"));
    }

    #[test]
    fn a_stalled_writer_is_reported_until_it_commits() {
        let mut writer = WriterHealth::default();
        writer.failed(t(10), "sqlite: database or disk is full", true);
        writer.failed(t(11), "sqlite: database or disk is full", true);
        let reasons = judge(true, &writer, &up(), t(15));
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("cannot be committed"), "{reasons:?}");
        assert!(
            reasons[0].contains("(5s)"),
            "stalled since the first failure: {reasons:?}"
        );
        assert!(reasons[0].contains("disk is full"));
        writer.committed(t(16));
        assert!(judge(true, &writer, &up(), t(17)).is_empty());
        // A failed write of the collector's own events is reported until a commit succeeds, or
        // for a minute.
        writer.failed(t(20), "sqlite: disk I/O error", false);
        assert!(judge(true, &writer, &up(), t(40))[0].starts_with("store: a write failed"));
        assert!(judge(true, &writer, &up(), t(81)).is_empty());
        writer.committed(t(41));
        assert!(judge(true, &writer, &up(), t(42)).is_empty());
    }

    #[test]
    fn a_reconnect_loop_and_a_long_outage_are_reported() {
        let mut intake = up();
        intake.failed(t(10), "payload size limit exceeded: 5242918");
        intake.connected();
        intake.failed(t(11), "payload size limit exceeded: 5242918");
        intake.connected();
        assert!(judge(true, &WriterHealth::default(), &intake, t(12)).is_empty());
        intake.failed(t(12), "payload size limit exceeded: 5242918");
        intake.connected();
        let reasons = judge(true, &WriterHealth::default(), &intake, t(12));
        assert!(reasons[0].contains("failed 3 times"), "{reasons:?}");
        assert!(reasons[0].contains("5242918"));
        // A minute later the loop is over.
        assert!(judge(true, &WriterHealth::default(), &intake, t(80)).is_empty());

        let mut down = up();
        down.failed(t(100), "connection refused");
        assert!(judge(true, &WriterHealth::default(), &down, t(120)).is_empty());
        down.failed(t(160), "connection refused");
        let reasons = judge(true, &WriterHealth::default(), &down, t(161));
        assert!(
            reasons[0].contains("not connected to the broker for 61s"),
            "{reasons:?}"
        );
        // Never connected since the start counts from the start.
        let never = IntakeHealth::starting(t(0));
        assert!(judge(true, &WriterHealth::default(), &never, t(10)).is_empty());
        assert_eq!(
            judge(true, &WriterHealth::default(), &never, t(31)).len(),
            1
        );
    }

    #[test]
    fn reasons_cannot_carry_terminal_escapes() {
        let mut writer = WriterHealth::default();
        writer.failed(t(1), "bad\u{1b}[2J\nline", true);
        let reasons = judge(true, &writer, &up(), t(2));
        assert!(!reasons[0].contains('\u{1b}') && !reasons[0].contains('\n'));
    }
}
