//! Pure: which notices are due, grouped into one message per contact; which queued messages are
//! ready to be sent; how a send's outcome becomes an event (with backoff, and giving up).
//!
//! A notice is due once per alert and kind (`Opened`, `Resolved`, `ResolvedLate`; reminders
//! repeat). Suppressed alerts wait for their parent: while it is open they say nothing; if they
//! end within `after_parent_recovery` of it they never speak; if they outlast that, they alert on
//! their own. Alerts opened from late data never send `Opened`: they send one `ResolvedLate`.
//! Silenced sites wait for the silence to end.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use netmon_events::{AlertKind, Event, Message, Notice, NoticeOf};
use netmon_mqtt::Backoff;

use super::book::{Alert, Book, Outgoing};
use super::rules::Made;
use crate::alerts::AlertsConfig;
use crate::inventory::{Contact, Inventory};
use crate::notify::view::NoticeView;

/// Notices for a contact go out once none came for this long (or the grouping window passed).
const QUIET: TimeDelta = TimeDelta::seconds(2);

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Whether `alert` is kept quiet by the alert that explains it, at `now`.
pub fn quiet(alert: &Alert, book: &Book, config: &AlertsConfig, now: DateTime<Utc>) -> bool {
    let Some(parent) = alert.suppressed_by.and_then(|p| book.alerts.get(&p)) else {
        return false;
    };
    let Some(ended) = parent.resolved else {
        return true;
    };
    let grace = ended.at + delta(config.after_parent_recovery);
    match alert.resolved {
        Some(r) => r.at <= grace,
        None => now < grace,
    }
}

/// The notice `alert` is due for at `now`, and since when it is due (for grouping).
pub fn due(
    alert: &Alert,
    book: &Book,
    config: &AlertsConfig,
    now: DateTime<Utc>,
) -> Option<(Notice, DateTime<Utc>)> {
    if quiet(alert, book, config, now) || book.silenced(alert.site.as_deref(), now) {
        return None;
    }
    let opened = alert.notified.contains(&Notice::Opened);
    let instant = alert.key.kind == AlertKind::DeviceRebooted;
    let group = delta(config.group_window);
    match alert.resolved {
        None if alert.late => None,
        None if !opened => Some((Notice::Opened, alert.opened_at + group)),
        None => {
            let every = delta(config.reminder_every?);
            let last = alert.last_notice_at.unwrap_or(alert.opened_at);
            (alert.acknowledged.is_none() && now - last >= every)
                .then_some((Notice::Reminder, last + every))
        }
        // An instant (a restart) is told once, as it happened.
        Some(r) if instant && !opened && !alert.late => Some((Notice::Opened, r.at + group)),
        Some(r) if opened && !instant && !alert.notified.contains(&Notice::Resolved) => {
            Some((Notice::Resolved, r.at + group))
        }
        Some(r)
            if !opened
                && (alert.late || r.late)
                && !alert.notified.contains(&Notice::ResolvedLate) =>
        {
            Some((Notice::ResolvedLate, r.at + group))
        }
        Some(_) => None,
    }
}

/// Who hears about `alert`.
pub fn contacts<'a>(alert: &Alert, inventory: Option<&'a Inventory>) -> Vec<&'a Contact> {
    let Some(inventory) = inventory else {
        return Vec::new();
    };
    match alert.site.as_deref().and_then(|s| inventory.sites.get(s)) {
        Some(site) => inventory.contacts_for(site),
        None => inventory.province_contacts(&alert.province),
    }
}

/// A contact's due notices: the alert, the notice, and since when it is due.
type Due<'a> = Vec<(&'a Alert, Notice, DateTime<Utc>)>;

/// Renders a message: `(lang, notices) → (subject, text)`.
pub type Render<'a> = &'a dyn Fn(&str, &[NoticeView]) -> (String, String);

/// Messages to queue now: per contact, every due notice, once the oldest has waited out the
/// grouping window. Notification ids continue from the book's.
pub fn queue(
    book: &Book,
    inventory: Option<&Inventory>,
    config: &AlertsConfig,
    render: Render<'_>,
    now: DateTime<Utc>,
) -> Vec<Made> {
    let mut per_contact: BTreeMap<&str, (&Contact, Due<'_>)> = BTreeMap::new();
    for alert in book.alerts.values() {
        let Some((notice, ready)) = due(alert, book, config, now) else {
            continue;
        };
        for contact in contacts(alert, inventory) {
            per_contact
                .entry(contact.id.as_str())
                .or_insert((contact, Vec::new()))
                .1
                .push((alert, notice, ready));
        }
    }
    let mut made = Vec::new();
    let mut next = book.next_notification.max(1);
    let group = delta(config.group_window);
    let quiet = group.min(QUIET);
    for (contact, notices) in per_contact.into_values() {
        // Sent once the oldest notice has waited the grouping window, or sooner when nothing
        // new came for a while (the alerts of one cause arrive together).
        let oldest_waited = notices.iter().any(|(_, _, ready)| *ready <= now);
        let settled = notices
            .iter()
            .all(|(_, _, ready)| *ready - group + quiet <= now);
        if !(oldest_waited || settled) {
            continue;
        }
        let views: Vec<NoticeView> = notices
            .iter()
            .map(|(alert, notice, _)| view(alert, *notice, inventory, now))
            .collect();
        let (subject, text) = render(&contact.lang, &views);
        let first = notices[0].0;
        made.push(Made {
            agent: first.key.agent.clone(),
            province: first.province.clone(),
            event: Event::NotificationQueued {
                notification: next,
                message: Message {
                    contact: contact.id.clone(),
                    channel: contact.channel,
                    notices: notices
                        .iter()
                        .map(|(a, n, _)| NoticeOf {
                            alert: a.id,
                            notice: *n,
                        })
                        .collect(),
                    lang: contact.lang.clone(),
                    subject,
                    text,
                },
            },
        });
        next += 1;
    }
    made
}

/// What a template sees of `alert`.
pub fn view(
    alert: &Alert,
    notice: Notice,
    inventory: Option<&Inventory>,
    now: DateTime<Utc>,
) -> NoticeView {
    let site = inventory.and_then(|i| alert.site.as_deref().and_then(|s| i.sites.get(s)));
    let commune = inventory.and_then(|i| site.and_then(|s| i.commune_of(s)));
    let province = inventory
        .and_then(|i| i.provinces.get(&alert.province))
        .map(|p| p.name.clone());
    let affected = match (inventory, site) {
        (Some(i), Some(s)) if super::rules::cuts(alert) => i
            .descendants(&s.id)
            .into_iter()
            .map(|d| d.name.clone())
            .collect(),
        _ => Vec::new(),
    };
    let until = alert.resolved.map(|r| r.until);
    let end = until.unwrap_or(now);
    NoticeView {
        notice,
        alert: alert.id,
        kind: alert.key.kind,
        agent: alert.key.agent.as_str().to_owned(),
        site: site.map(|s| s.name.clone()),
        commune: commune.map(|c| c.name.clone()),
        province,
        link: match (&alert.target, &alert.key.subject) {
            (Some(t), _) => Some(format!("{} ({})", t.name, t.address)),
            (None, Some(subject)) if alert.key.kind == AlertKind::CoverageLost => {
                Some(format!("modem {subject}"))
            }
            (None, Some(subject)) => Some(subject.clone()),
            (None, None) => None,
        },
        detected_by: alert.detected_by,
        since: alert.since,
        until,
        duration_ms: u64::try_from((end - alert.since).num_milliseconds()).ok(),
        value: alert.value,
        threshold: alert.threshold,
        affected,
        acknowledged_by: alert.acknowledged.as_ref().map(|a| a.0.clone()),
    }
}

/// The waits between attempts at a notification: 5 s doubling to 10 min.
const RETRY: Backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(600));

/// Queued messages whose next attempt is due, oldest first.
pub fn ready(book: &Book, now: DateTime<Utc>) -> impl Iterator<Item = &Outgoing> {
    book.outbox.values().filter(move |o| o.next_at <= now)
}

/// The event recording one attempt's outcome: sent, failed with a retry (backoff doubling from
/// 5 s up to 10 min), or failed for good (not retryable, or out of attempts).
pub fn outcome(
    outgoing: &Outgoing,
    result: Result<(), crate::notify::SendError>,
    config: &AlertsConfig,
    now: DateTime<Utc>,
) -> Event {
    let attempt = outgoing.attempts + 1;
    match result {
        Ok(()) => Event::NotificationSent {
            notification: outgoing.id,
            attempt,
        },
        Err(e) => {
            let retry = e.retryable && attempt < config.max_attempts;
            let wait = delta(RETRY.nth(attempt - 1));
            Event::NotificationFailed {
                notification: outgoing.id,
                attempt,
                error: e.message.chars().take(500).collect(),
                retry_at: retry.then_some(now + wait),
            }
        }
    }
}
