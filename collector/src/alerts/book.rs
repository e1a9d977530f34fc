//! Pure: the alert book — every alert and queued notification, folded from the collector's own
//! alert events (`alert_*`, `silence_added`, `notification_*`). Replaying the store rebuilds it
//! exactly, including which notices were already queued, so that nothing is notified twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{AgentId, AlertKind, Detection, Event, Message, Notice, ProvinceId, Target};
use serde::{Deserialize, Serialize};

use crate::store::StoredEvent;

/// What makes two alerts the same condition: at most one is open per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertKey {
    pub kind: AlertKind,
    pub agent: AgentId,
    pub link: Option<IpAddr>,
    pub subject: Option<String>,
}

/// One alert, open or resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: u64,
    pub key: AlertKey,
    pub province: ProvinceId,
    pub site: Option<String>,
    pub target: Option<Target>,
    pub since: DateTime<Utc>,
    /// When the collector recorded the opening.
    pub opened_at: DateTime<Utc>,
    pub detected_by: Detection,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub late: bool,
    /// `(until, duration_ms, late, recorded at)` once resolved.
    pub resolved: Option<Resolution>,
    pub suppressed_by: Option<u64>,
    pub acknowledged: Option<(String, Option<String>, DateTime<Utc>)>,
    /// Notices already queued for it, and when the last one was.
    pub notified: BTreeSet<Notice>,
    pub reminders: u32,
    pub last_notice_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub until: DateTime<Utc>,
    pub duration_ms: u64,
    pub late: bool,
    pub at: DateTime<Utc>,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.resolved.is_none()
    }
}

/// A maintenance silence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub site: String,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub by: String,
    pub note: Option<String>,
}

/// A queued notification that is not sent yet (nor given up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub id: u64,
    pub message: Message,
    pub queued_at: DateTime<Utc>,
    /// Attempts made so far, and when the next one is due.
    pub attempts: u32,
    pub next_at: DateTime<Utc>,
}

/// The outcome of a finished notification, kept for the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeOutcome {
    pub id: u64,
    pub contact: String,
    pub sent: bool,
    pub attempts: u32,
    pub at: DateTime<Utc>,
}

/// Resolved alerts stay in memory this long (for suppression of late children, and the API);
/// the store keeps them for ever.
const KEEP_RESOLVED: TimeDelta = TimeDelta::hours(24);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    pub alerts: BTreeMap<u64, Alert>,
    pub open: HashMap<AlertKey, u64>,
    pub silences: Vec<Silence>,
    pub outbox: BTreeMap<u64, Outgoing>,
    /// The last finished notifications (newest last, bounded).
    pub finished: Vec<NoticeOutcome>,
    pub next_alert: u64,
    pub next_notification: u64,
}

impl Book {
    /// Folds one of the collector's alert events; other events are ignored.
    pub fn apply(&mut self, stored: &StoredEvent) {
        let now = stored.time;
        match &stored.envelope.event {
            Event::AlertOpened {
                alert,
                kind,
                site,
                target,
                subject,
                since,
                detected_by,
                value,
                threshold,
                late,
            } => {
                let key = AlertKey {
                    kind: *kind,
                    agent: stored.envelope.agent.clone(),
                    link: target.as_ref().map(|t| t.address),
                    subject: subject.clone(),
                };
                self.next_alert = self.next_alert.max(alert + 1);
                self.open.insert(key.clone(), *alert);
                self.alerts.insert(
                    *alert,
                    Alert {
                        id: *alert,
                        key,
                        province: stored.province.clone(),
                        site: site.clone(),
                        target: target.clone(),
                        since: *since,
                        opened_at: now,
                        detected_by: *detected_by,
                        value: *value,
                        threshold: *threshold,
                        late: *late,
                        resolved: None,
                        suppressed_by: None,
                        acknowledged: None,
                        notified: BTreeSet::new(),
                        reminders: 0,
                        last_notice_at: None,
                    },
                );
            }
            Event::AlertResolved {
                alert,
                until,
                duration_ms,
                late,
            } => {
                if let Some(a) = self.alerts.get_mut(alert) {
                    a.resolved = Some(Resolution {
                        until: *until,
                        duration_ms: *duration_ms,
                        late: *late,
                        at: now,
                    });
                    if self.open.get(&a.key) == Some(alert) {
                        self.open.remove(&a.key);
                    }
                }
                self.prune(now);
            }
            Event::AlertSuppressed { alert, by } => {
                if let Some(a) = self.alerts.get_mut(alert) {
                    a.suppressed_by = Some(*by);
                }
            }
            Event::AlertAcknowledged { alert, by, note } => {
                if let Some(a) = self.alerts.get_mut(alert) {
                    a.acknowledged = Some((by.clone(), note.clone(), now));
                }
            }
            Event::SilenceAdded {
                site,
                from,
                until,
                by,
                note,
            } => {
                self.silences.retain(|s| s.until > now);
                self.silences.push(Silence {
                    site: site.clone(),
                    from: *from,
                    until: *until,
                    by: by.clone(),
                    note: note.clone(),
                });
            }
            Event::NotificationQueued {
                notification,
                message,
            } => {
                self.next_notification = self.next_notification.max(notification + 1);
                for notice in &message.notices {
                    if let Some(a) = self.alerts.get_mut(&notice.alert) {
                        // One reminder round queues a message per contact at the same time.
                        if notice.notice == Notice::Reminder && a.last_notice_at != Some(now) {
                            a.reminders += 1;
                        }
                        a.notified.insert(notice.notice);
                        a.last_notice_at = Some(now);
                    }
                }
                self.outbox.insert(
                    *notification,
                    Outgoing {
                        id: *notification,
                        message: message.clone(),
                        queued_at: now,
                        attempts: 0,
                        next_at: now,
                    },
                );
            }
            Event::NotificationSent {
                notification,
                attempt,
            } => self.finish(*notification, *attempt, true, now),
            Event::NotificationFailed {
                notification,
                attempt,
                retry_at,
                ..
            } => match retry_at {
                Some(at) => {
                    if let Some(o) = self.outbox.get_mut(notification) {
                        o.attempts = *attempt;
                        o.next_at = *at;
                    }
                }
                None => self.finish(*notification, *attempt, false, now),
            },
            _ => {}
        }
    }

    fn finish(&mut self, id: u64, attempts: u32, sent: bool, at: DateTime<Utc>) {
        if let Some(o) = self.outbox.remove(&id) {
            self.finished.push(NoticeOutcome {
                id,
                contact: o.message.contact,
                sent,
                attempts,
                at,
            });
            if self.finished.len() > 1000 {
                self.finished.drain(..500);
            }
        }
    }

    /// Forgets alerts resolved more than a day ago.
    fn prune(&mut self, now: DateTime<Utc>) {
        if self.alerts.len() < 10_000 {
            return;
        }
        self.alerts
            .retain(|_, a| a.resolved.is_none_or(|r| now - r.at < KEEP_RESOLVED));
    }

    /// Whether notifications for `site` are silenced at `now`.
    pub fn silenced(&self, site: Option<&str>, now: DateTime<Utc>) -> bool {
        site.is_some_and(|site| {
            self.silences
                .iter()
                .any(|s| s.site == site && s.from <= now && now < s.until)
        })
    }

    pub fn open_alert(&self, key: &AlertKey) -> Option<&Alert> {
        self.open.get(key).and_then(|id| self.alerts.get(id))
    }
}
