//! The recorder's alerting side: records what the rules decide, the notifications they queue,
//! the outcome of each send, and the operators' acknowledgements and silences — each as
//! collector-made events in one transaction, rolled back together on a failed commit.

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::Event;

use super::{Now, Recorder};
use crate::alerts::book::Outgoing;
use crate::alerts::rules::Made;
use crate::alerts::{Alerting, outbox};
use crate::notify::SendError;
use crate::store::StoreError;

/// Why an operator's command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such alert (or site): the caller named something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The command cannot be carried out as given.
    #[error("{0}")]
    Invalid(String),
    /// The store refused the commit; try again.
    #[error("storing failed: {0}")]
    Store(String),
}

impl Recorder {
    pub fn alerting(&self) -> &Alerting {
        &self.alerting
    }

    /// Runs the rules and the outbox at `now`; records what they decide. Returns how many
    /// events were recorded.
    pub fn evaluate(&mut self, now: Now, render: outbox::Render<'_>) -> Result<usize, StoreError> {
        let decided = self.alerting.evaluate(&self.state, now.wall);
        let mut count = self.record_made(decided, now)?;
        let queued = self.alerting.notifications(render, now.wall);
        count += self.record_made(queued, now)?;
        Ok(count)
    }

    /// Queued notifications whose attempt is due at `now`.
    pub fn ready(&self, now: DateTime<Utc>) -> Vec<Outgoing> {
        outbox::ready(&self.alerting.book, now).cloned().collect()
    }

    /// Records the outcome of an attempt at notification `id`.
    pub fn notified(
        &mut self,
        id: u64,
        result: Result<(), SendError>,
        now: Now,
    ) -> Result<(), StoreError> {
        let Some(outgoing) = self.alerting.book.outbox.get(&id).cloned() else {
            return Ok(());
        };
        let event = outbox::outcome(&outgoing, result, &self.alerting.config, now.wall);
        let alert = outgoing.message.notices.first().map(|n| n.alert);
        let filed = alert.and_then(|a| self.alerting.book.alerts.get(&a));
        let (agent, province) = match filed {
            Some(a) => (a.key.agent.clone(), a.province.clone()),
            None => return Ok(()),
        };
        self.record_made(
            vec![Made {
                agent,
                province,
                event,
            }],
            now,
        )
        .map(drop)
    }

    /// Acknowledges alert `id`.
    pub fn acknowledge(
        &mut self,
        id: u64,
        by: String,
        note: Option<String>,
        now: Now,
    ) -> Result<(), CommandError> {
        let alert = self
            .alerting
            .book
            .alerts
            .get(&id)
            .ok_or_else(|| CommandError::NotFound(format!("no alert {id}")))?;
        check_text("by", &by, 1)?;
        if let Some(note) = &note {
            check_text("note", note, 0)?;
        }
        let made = Made {
            agent: alert.key.agent.clone(),
            province: alert.province.clone(),
            event: Event::AlertAcknowledged {
                alert: id,
                by,
                note,
            },
        };
        self.record_made(vec![made], now)
            .map(drop)
            .map_err(|e| CommandError::Store(e.to_string()))
    }

    /// Silences notifications for `site` from `from` until `until`.
    pub fn silence(
        &mut self,
        site: String,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        by: String,
        note: Option<String>,
        now: Now,
    ) -> Result<(), CommandError> {
        let inventory = self.alerting.inventory.as_deref();
        let Some(found) = inventory.and_then(|i| i.sites.get(&site)) else {
            return Err(CommandError::NotFound(format!(
                "no site {site:?} in the inventory"
            )));
        };
        let agent = found.agents.first().cloned();
        let province = inventory
            .and_then(|i| i.commune_of(found))
            .map(|c| c.province.clone());
        check_silence(from, until, now.wall)?;
        check_text("by", &by, 1)?;
        if let Some(note) = &note {
            check_text("note", note, 0)?;
        }
        let (Some(agent), Some(province)) = (agent, province) else {
            return Err(CommandError::Invalid(format!(
                "site {site:?} has no agent to file the silence under"
            )));
        };
        let event = Event::SilenceAdded {
            site,
            from,
            until,
            by,
            note,
        };
        self.record_made(
            vec![Made {
                agent,
                province,
                event,
            }],
            now,
        )
        .map(drop)
        .map_err(|e| CommandError::Store(e.to_string()))
    }

    /// Commits collector-made events in one transaction.
    fn record_made(&mut self, made: Vec<Made>, now: Now) -> Result<usize, StoreError> {
        if made.is_empty() {
            return Ok(0);
        }
        let saved = self.next_seq;
        let events: Vec<_> = made
            .into_iter()
            .map(|m| self.made(m.agent, m.province, m.event, now))
            .collect();
        let count = events.len();
        self.commit(&events, &[], &[], now).inspect_err(|_| {
            self.next_seq = saved;
            self.counters.store_errors += 1;
        })?;
        Ok(count)
    }
}

/// The longest silence: `until` at most this long after `from`.
pub const MAX_SILENCE: TimeDelta = TimeDelta::days(31);
/// A silence may start at most this long ago (a backdated one changes nothing already sent) …
pub const MAX_BACKDATE: TimeDelta = TimeDelta::days(1);
/// … and at most this far ahead (planned work).
pub const MAX_AHEAD: TimeDelta = TimeDelta::days(90);

/// A silence from `from` until `until`, asked for at `now`: it must end after it starts and
/// after now, last at most [`MAX_SILENCE`], and start within [`MAX_BACKDATE`] before now and
/// [`MAX_AHEAD`] after.
fn check_silence(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let invalid = |m: &str| Err(CommandError::Invalid(m.into()));
    if until <= from || until <= now {
        return invalid("the silence must end after it starts and after now");
    }
    if until - from > MAX_SILENCE {
        return invalid("until: a silence lasts at most 31 days");
    }
    if from < now - MAX_BACKDATE || from > now + MAX_AHEAD {
        return invalid("from: expected between 1 day ago and 90 days from now");
    }
    Ok(())
}

/// `by` and notes: `min` to 500 characters, none of them a control character or one that
/// hides or reorders text (the contract's one rule, `netmon_events::text`).
fn check_text(key: &str, value: &str, min: usize) -> Result<(), CommandError> {
    let length = value.chars().count();
    if length < min || length > 500 || value.chars().any(netmon_events::text::is_forbidden) {
        return Err(CommandError::Invalid(format!(
            "{key}: expected {min}-500 characters without control, bidirectional-override or \
             zero-width characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn time(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn notes_and_names_refuse_long_control_and_deceptive_text() {
        assert!(check_text("by", "Lê Văn Hùng", 1).is_ok());
        assert!(check_text("note", "", 0).is_ok());
        assert!(check_text("note", &"ầ".repeat(500), 0).is_ok());
        assert!(check_text("by", "", 1).is_err());
        assert!(check_text("note", &"a".repeat(501), 0).is_err());
        assert!(check_text("note", &"x".repeat(1 << 20), 0).is_err());
        for bad in [
            '\u{1B}', '\n', '\u{7F}', '\u{85}', '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}',
            '\u{200B}', '\u{200F}', '\u{2028}', '\u{2029}', '\u{FEFF}', '\u{061C}',
        ] {
            let text = format!("Gateway {bad}txt.exe");
            let refused = check_text("note", &text, 0).unwrap_err();
            assert!(refused.to_string().starts_with("note: "), "{refused}");
        }
        // Neighbours of the refused ranges are ordinary text.
        for fine in ['\u{2010}', '\u{2065}', '\u{206A}', '\u{2027}', '\u{061B}'] {
            assert!(
                check_text("note", &format!("a{fine}b"), 0).is_ok(),
                "{fine:?}"
            );
        }
    }

    #[test]
    fn silences_are_bounded_in_length_and_start() {
        let now = time("2026-12-02T08:00:00Z");
        let ok = |from: &str, until: &str| check_silence(time(from), time(until), now);
        assert!(ok("2026-12-02T08:00:00Z", "2026-12-02T12:00:00Z").is_ok());
        assert!(ok("2026-12-02T08:00:00Z", "2027-01-02T08:00:00Z").is_ok());
        assert!(ok("2026-12-01T08:00:00Z", "2026-12-02T09:00:00Z").is_ok());
        assert!(ok("2027-03-01T08:00:00Z", "2027-03-02T08:00:00Z").is_ok());
        for (from, until) in [
            // ends before it starts, or before now
            ("2026-12-02T10:00:00Z", "2026-12-02T09:00:00Z"),
            ("2026-12-01T08:00:00Z", "2026-12-02T07:00:00Z"),
            // longer than 31 days: a year, year 9999
            ("2026-12-02T08:00:00Z", "2027-01-02T08:00:01Z"),
            ("2026-12-02T08:00:00Z", "2027-12-02T08:00:00Z"),
            ("2026-12-02T08:00:00Z", "9999-12-31T23:59:59Z"),
            // starts more than a day ago, or more than 90 days ahead
            ("2026-11-30T08:00:00Z", "2026-12-03T08:00:00Z"),
            ("2027-03-03T08:00:00Z", "2027-03-04T08:00:00Z"),
        ] {
            assert!(
                matches!(ok(from, until), Err(CommandError::Invalid(_))),
                "{from} → {until}"
            );
        }
    }
}
