//! Alerting: the rules, the alert book and the outbox, all pure and driven by the writer.
//!
//! - [`signals`]: smoothed loss/RTT, baselines, flaps and utilisation with hysteresis, folded
//!   from the stored events;
//! - [`book`]: the alerts, silences and queued notifications, folded from the collector's own
//!   alert events (so a restart knows what was already notified);
//! - [`rules`]: which alerts should be open (level-triggered), and the events that open, resolve
//!   and suppress them (dependencies from the inventory's parent sites);
//! - [`outbox`]: which notices are due, grouped per contact; retries and giving up;
//! - [`modem_conditions`] and [`coverage_rule`]: the cellular events folded per modem (no service,
//!   5G lost) and the `coverage_lost` alerts they open;
//! - [`config`]: the `[alerts]` section; [`api`]: the `/api/v1/alerts` JSON (re-exported by
//!   `crate::api`). What the recorder stores for them is in `intake/recorder/alerting.rs`.
//!
//! [`Alerting::apply`] folds every stored event (in the replay and live); [`Alerting::evaluate`]
//! returns the events to record now. The writer records them like any other event, and they come
//! back through `apply`: the book only changes through stored events.

pub mod api;
pub mod book;
pub mod cli;
pub mod config;
pub mod coverage_rule;
pub mod modem_conditions;
pub mod outbox;
pub mod rules;
pub mod signals;
pub mod wanted;
pub use config::AlertsConfig;

#[cfg(test)]
pub(crate) mod coverage_rule_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod window_tests;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::inventory::Inventory;
use crate::state::State;
use crate::store::StoredEvent;
use book::Book;
use rules::Made;
use signals::{Limits, Signals};

/// The alerting part of the collector's state.
#[derive(Debug, Clone, Default)]
pub struct Alerting {
    pub config: AlertsConfig,
    pub inventory: Option<Arc<Inventory>>,
    pub signals: Signals,
    pub book: Book,
}

impl Alerting {
    pub fn new(config: AlertsConfig, inventory: Option<Arc<Inventory>>) -> Self {
        Self {
            config,
            inventory,
            signals: Signals::default(),
            book: Book::default(),
        }
    }

    /// Forgets the outages the replay saw end: they were judged when they happened.
    pub fn replayed(&mut self) {
        self.signals.ended.clear();
        self.signals.reboots.clear();
        self.signals.modems.cleared.clear();
    }

    /// Folds one stored event (after the state has applied it).
    pub fn apply(&mut self, stored: &StoredEvent) {
        if stored.envelope.event.is_alerting() {
            self.book.apply(stored);
            return;
        }
        let site = self
            .inventory
            .as_deref()
            .and_then(|i| i.site_of(&stored.envelope.agent))
            .map(|s| s.thresholds)
            .unwrap_or_default();
        let limits = Limits {
            global: &self.config,
            site,
        };
        self.signals.apply(stored, limits);
    }

    /// The alert events due at `now`: resolutions, openings and suppressions first; then, as a
    /// second call sees them applied, the notifications to queue.
    pub fn evaluate(&mut self, state: &State, now: DateTime<Utc>) -> Vec<Made> {
        let inventory = self.inventory.as_deref();
        let wanted = rules::desired(state, &self.signals, inventory, &self.config, now);
        let ended = std::mem::take(&mut self.signals.ended);
        let reboots = std::mem::take(&mut self.signals.reboots);
        let cleared = std::mem::take(&mut self.signals.modems.cleared);
        let finished = rules::Finished {
            ended: &ended,
            reboots: &reboots,
            coverage: &cleared,
        };
        rules::reconcile(&wanted, finished, &self.book, state, inventory, now)
    }

    /// The notifications to queue at `now`.
    pub fn notifications(&self, render: outbox::Render<'_>, now: DateTime<Utc>) -> Vec<Made> {
        outbox::queue(
            &self.book,
            self.inventory.as_deref(),
            &self.config,
            render,
            now,
        )
    }
}
