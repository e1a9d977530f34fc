//! The recorder's alerting side: records what the rules decide, the notifications they queue,
//! the outcome of each send, and the operators' acknowledgements and silences — each as
//! collector-made events in one transaction, rolled back together on a failed commit.

use chrono::{DateTime, Utc};
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
        if until <= from || until <= now.wall {
            return Err(CommandError::Invalid(
                "the silence must end after it starts and after now".into(),
            ));
        }
        check_text("by", &by, 1)?;
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

fn check_text(key: &str, value: &str, min: usize) -> Result<(), CommandError> {
    let length = value.chars().count();
    if length < min || length > 500 || value.chars().any(char::is_control) {
        return Err(CommandError::Invalid(format!(
            "{key}: expected {min}-500 characters without control characters"
        )));
    }
    Ok(())
}
