//! `GET /api/v1/alerts` and `netmon-collector alerts --json`: the alert book as JSON.

use chrono::{DateTime, Utc};
use netmon_events::envelope::time_ms;
use netmon_events::{AlertKind, Channel, Detection, Notice, Target};
use serde::Serialize;

use super::book::{Alert, Book};
use crate::inventory::Inventory;

/// Alerts newest first, the silences in force or to come, and the outbox.
#[derive(Debug, Serialize)]
pub struct AlertsView<'a> {
    pub alerts: Vec<AlertView<'a>>,
    pub silences: Vec<SilenceView<'a>>,
    pub outbox: Vec<OutgoingView<'a>>,
}

/// One alert.
#[derive(Debug, Serialize)]
pub struct AlertView<'a> {
    pub id: u64,
    pub kind: AlertKind,
    pub open: bool,
    pub agent: &'a str,
    pub province: &'a str,
    /// Site id and display names from the inventory (`null` for unregistered agents).
    pub site: Option<&'a str>,
    pub site_name: Option<&'a str>,
    pub commune_name: Option<&'a str>,
    pub target: Option<&'a Target>,
    /// Device or interface (SNMP alerts).
    pub subject: Option<&'a str>,
    #[serde(with = "time_ms")]
    pub since: DateTime<Utc>,
    #[serde(with = "time_ms")]
    pub opened_at: DateTime<Utc>,
    pub detected_by: Detection,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub late: bool,
    #[serde(with = "time_ms::option")]
    pub until: Option<DateTime<Utc>>,
    pub duration_ms: Option<u64>,
    /// The alert that explains this one (a parent site's outage, …).
    pub suppressed_by: Option<u64>,
    pub acknowledged_by: Option<&'a str>,
    pub acknowledged_note: Option<&'a str>,
    /// Notices already queued for it.
    pub notified: Vec<Notice>,
}

#[derive(Debug, Serialize)]
pub struct SilenceView<'a> {
    pub site: &'a str,
    #[serde(with = "time_ms")]
    pub from: DateTime<Utc>,
    #[serde(with = "time_ms")]
    pub until: DateTime<Utc>,
    pub by: &'a str,
    pub note: Option<&'a str>,
}

/// A queued notification not sent yet.
#[derive(Debug, Serialize)]
pub struct OutgoingView<'a> {
    pub id: u64,
    pub contact: &'a str,
    pub channel: Channel,
    pub attempts: u32,
    #[serde(with = "time_ms")]
    pub next_at: DateTime<Utc>,
    pub subject: &'a str,
}

impl<'a> AlertView<'a> {
    pub fn new(alert: &'a Alert, inventory: Option<&'a Inventory>) -> Self {
        let site = inventory.and_then(|i| alert.site.as_deref().and_then(|s| i.sites.get(s)));
        let commune = inventory.and_then(|i| site.and_then(|s| i.commune_of(s)));
        AlertView {
            id: alert.id,
            kind: alert.key.kind,
            open: alert.is_open(),
            agent: alert.key.agent.as_str(),
            province: alert.province.as_str(),
            site: alert.site.as_deref(),
            site_name: site.map(|s| s.name.as_str()),
            commune_name: commune.map(|c| c.name.as_str()),
            target: alert.target.as_ref(),
            subject: alert.key.subject.as_deref(),
            since: alert.since,
            opened_at: alert.opened_at,
            detected_by: alert.detected_by,
            value: alert.value,
            threshold: alert.threshold,
            late: alert.late,
            until: alert.resolved.map(|r| r.until),
            duration_ms: alert.resolved.map(|r| r.duration_ms),
            suppressed_by: alert.suppressed_by,
            acknowledged_by: alert.acknowledged.as_ref().map(|a| a.0.as_str()),
            acknowledged_note: alert.acknowledged.as_ref().and_then(|a| a.1.as_deref()),
            notified: alert.notified.iter().copied().collect(),
        }
    }
}

/// The book as JSON; `open_only` leaves resolved alerts out.
pub fn alerts_json(book: &Book, inventory: Option<&Inventory>, open_only: bool) -> String {
    let view = AlertsView {
        alerts: book
            .alerts
            .values()
            .rev()
            .filter(|a| !open_only || a.is_open())
            .map(|a| AlertView::new(a, inventory))
            .collect(),
        silences: book
            .silences
            .iter()
            .map(|s| SilenceView {
                site: &s.site,
                from: s.from,
                until: s.until,
                by: &s.by,
                note: s.note.as_deref(),
            })
            .collect(),
        outbox: book
            .outbox
            .values()
            .map(|o| OutgoingView {
                id: o.id,
                contact: &o.message.contact,
                channel: o.message.channel,
                attempts: o.attempts,
                next_at: o.next_at,
                subject: &o.message.subject,
            })
            .collect(),
    };
    // Serialising borrowed strings, numbers and times cannot fail.
    serde_json::to_string(&view).unwrap_or_default()
}
