//! Pure: stored events → InfluxDB line-protocol points (the schema in `docs/influx.md` of the
//! issue, summarised here). No I/O, no clock: the same stored event always yields the same
//! bytes, so a replay rewrites identical points (same series, timestamp and fields).
//!
//! Every point has tags `province` and `agent` and the event's *effective* time in milliseconds
//! (`precision=ms`). Escaping of names (Vietnamese diacritics, spaces, commas, `=`, quotes,
//! backslashes) is done by InfluxData's `influxdb-line-protocol` builder.
//!
//! | measurement | event | extra tags | fields |
//! |---|---|---|---|
//! | `probe` | probe_round_completed | `target`, `address`, `role` | `sent`i, `received`i, `loss_pct`, `rtt_{min,avg,max,mdev}_ms` (only when received > 0) |
//! | `link` | link_went_down / link_came_back | `target`, `address`, `role` | `up`i (0/1), `reason` "…", `down_for_s` (came back only), `late` bool |
//! | `agent` | agent_heartbeat | — | `uptime_s`i, `backlog`i |
//! | `agent` | agent_started | — | `started`i (1), `version` "…" |
//! | `agent` | agent_went_silent | — | `silent`i (1), `reason` "…" |
//! | `journal` | journal_overflowed | — | `lost`i (= count) |
//!
//! Tags `commune` and `site` come later with the site inventory.

use influxdb_line_protocol::builder::{AfterMeasurement, LineProtocolBuilder};
use netmon_events::{Event, Target};
use serde::Serialize;

use crate::store::StoredEvent;

/// One point: a single line of line protocol, ending in `\n`.
pub type Point = Vec<u8>;

/// The point for `event`; `None` for events that have no time series (alert bookkeeping,
/// notifications).
pub fn point(stored: &StoredEvent) -> Option<Point> {
    let ts = stored.time.timestamp_millis();
    let tags = |measurement: &str| {
        LineProtocolBuilder::new()
            .measurement(measurement)
            .tag("province", stored.province.as_str())
            .tag("agent", stored.envelope.agent.as_str())
    };
    match &stored.envelope.event {
        Event::ProbeRoundCompleted {
            target,
            sent,
            received,
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            rtt_mdev_ms,
            loss_pct,
        } => {
            let mut line = target_tags(tags("probe"), target)
                .field("sent", i64::from(*sent))
                .field("received", i64::from(*received))
                .field("loss_pct", *loss_pct);
            if *received > 0 {
                for (key, value) in [
                    ("rtt_min_ms", rtt_min_ms),
                    ("rtt_avg_ms", rtt_avg_ms),
                    ("rtt_max_ms", rtt_max_ms),
                    ("rtt_mdev_ms", rtt_mdev_ms),
                ] {
                    if let Some(v) = value.filter(|v| v.is_finite()) {
                        line = line.field(key, v);
                    }
                }
            }
            Some(line.timestamp(ts).close_line().build())
        }
        Event::LinkWentDown { target, reason, .. } => target_tags(tags("link"), target)
            .field("up", 0i64)
            .field("reason", name(reason).as_str())
            .field("late", stored.late)
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::LinkCameBack {
            target,
            down_for_ms,
            reason,
            ..
        } => target_tags(tags("link"), target)
            .field("up", 1i64)
            .field("reason", name(reason).as_str())
            .field("down_for_s", *down_for_ms as f64 / 1000.0)
            .field("late", stored.late)
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::AgentHeartbeat { uptime_s, backlog } => tags("agent")
            .field("uptime_s", clamp(*uptime_s))
            .field("backlog", clamp(*backlog))
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::AgentStarted { version, .. } => tags("agent")
            .field("started", 1i64)
            .field("version", version.as_str())
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::AgentWentSilent { reason, .. } => tags("agent")
            .field("silent", 1i64)
            .field("reason", name(reason).as_str())
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::JournalOverflowed { count, .. } => tags("journal")
            .field("lost", clamp(*count))
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::InterfaceCountersSampled { .. }
        | Event::InterfaceWentDown { .. }
        | Event::InterfaceCameBack { .. }
        | Event::DeviceRebooted { .. }
        | Event::DeviceStoppedAnswering { .. }
        | Event::DeviceAnswersAgain { .. }
        | Event::AlertOpened { .. }
        | Event::AlertAcknowledged { .. }
        | Event::AlertResolved { .. }
        | Event::AlertSuppressed { .. }
        | Event::SilenceAdded { .. }
        | Event::NotificationQueued { .. }
        | Event::NotificationSent { .. }
        | Event::NotificationFailed { .. } => None,
    }
}

fn target_tags(
    builder: LineProtocolBuilder<Vec<u8>, AfterMeasurement>,
    target: &Target,
) -> LineProtocolBuilder<Vec<u8>, AfterMeasurement> {
    builder
        .tag("target", &target.name)
        .tag("address", &target.address.to_string())
        .tag("role", &name(&target.role))
}

/// A contract enum's JSON name (`no_reply`, `commune`, …).
fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Influx integers are signed 64-bit.
fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::Origin;
    use crate::testkit::stored;

    fn line(event: &str) -> String {
        String::from_utf8(point(&stored(7, Origin::Agent, "lang-a", 3, event)).unwrap()).unwrap()
    }

    /// The effective time of seq 3 in the testkit, in ms.
    fn ts() -> i64 {
        stored(
            7,
            Origin::Agent,
            "lang-a",
            3,
            r#""type":"agent_heartbeat","uptime_s":1,"backlog":0"#,
        )
        .time
        .timestamp_millis()
    }

    #[test]
    fn every_event_type_has_its_exact_line() {
        let t = ts();
        let target =
            r#""target":{"name":"UBND xã Kiên Thọ","address":"10.30.0.1","role":"commune"}"#;
        let tags = "province=thanh-hoa,agent=lang-a";
        let table = [
            (
                format!(
                    r#""type":"probe_round_completed",{target},"sent":3,"received":2,"rtt_min_ms":1.5,"rtt_avg_ms":2.25,"rtt_max_ms":3.0,"rtt_mdev_ms":0.5,"loss_pct":33.3"#
                ),
                format!(
                    "probe,{tags},target=UBND\\ xã\\ Kiên\\ Thọ,address=10.30.0.1,role=commune sent=3i,received=2i,loss_pct=33.3,rtt_min_ms=1.5,rtt_avg_ms=2.25,rtt_max_ms=3,rtt_mdev_ms=0.5 {t}\n"
                ),
            ),
            (
                format!(
                    r#""type":"probe_round_completed",{target},"sent":3,"received":0,"loss_pct":100.0"#
                ),
                format!(
                    "probe,{tags},target=UBND\\ xã\\ Kiên\\ Thọ,address=10.30.0.1,role=commune sent=3i,received=0i,loss_pct=100 {t}\n"
                ),
            ),
            (
                format!(
                    r#""type":"link_went_down",{target},"since":"2026-11-23T02:00:03.000Z","reason":"no_reply","failed_rounds":3"#
                ),
                format!(
                    "link,{tags},target=UBND\\ xã\\ Kiên\\ Thọ,address=10.30.0.1,role=commune up=0i,reason=\"no_reply\",late=false {t}\n"
                ),
            ),
            (
                format!(
                    r#""type":"link_came_back",{target},"down_since":"2026-11-23T02:00:03.000Z","down_for_ms":61500,"reason":"unreachable""#
                ),
                format!(
                    "link,{tags},target=UBND\\ xã\\ Kiên\\ Thọ,address=10.30.0.1,role=commune up=1i,reason=\"unreachable\",down_for_s=61.5,late=false {t}\n"
                ),
            ),
            (
                r#""type":"agent_heartbeat","uptime_s":600,"backlog":12"#.to_string(),
                format!("agent,{tags} uptime_s=600i,backlog=12i {t}\n"),
            ),
            (
                r#""type":"agent_started","version":"0.1.0","targets":4"#.to_string(),
                format!("agent,{tags} started=1i,version=\"0.1.0\" {t}\n"),
            ),
            (
                r#""type":"agent_went_silent","reason":"last_will""#.to_string(),
                format!("agent,{tags} silent=1i,reason=\"last_will\" {t}\n"),
            ),
            (
                r#""type":"journal_overflowed","dropped_boot":"b0","first_seq":1,"last_seq":40,"count":40"#.to_string(),
                format!("journal,{tags} lost=40i {t}\n"),
            ),
        ];
        for (event, expected) in table {
            assert_eq!(line(&event), expected, "for {event}");
        }
    }

    #[test]
    fn names_with_special_characters_are_escaped() {
        let target = r#""target":{"name":"Trạm y tế, \"Thôn 3\" a=b \\ c","address":"fd00::1","role":"gateway"}"#;
        let event = format!(
            r#""type":"probe_round_completed",{target},"sent":1,"received":1,"rtt_avg_ms":2.0,"loss_pct":0.0"#
        );
        let text = line(&event);
        assert!(
            text.contains(
                r#",target=Trạm\ y\ tế\,\ "Thôn\ 3"\ a\=b\ \\\ c,address=fd00::1,role=gateway "#
            ),
            "{text}"
        );
        // The builder's own parser reads the name back unchanged.
        let parsed: Vec<_> = influxdb_line_protocol::parse_lines(text.trim_end())
            .collect::<Result<_, _>>()
            .unwrap();
        let tags = parsed[0].series.tag_set.as_ref().unwrap();
        let value = tags.iter().find(|(k, _)| k.as_str() == "target").unwrap();
        assert_eq!(value.1.as_str(), "Trạm y tế, \"Thôn 3\" a=b \\ c");
    }

    #[test]
    fn string_fields_escape_quotes_and_the_time_is_the_effective_one() {
        let mut event = stored(
            1,
            Origin::Agent,
            "lang-a",
            1,
            r#""type":"agent_started","version":"1.0 \"rc\" \\x","targets":1"#,
        );
        event.time += chrono::TimeDelta::milliseconds(1234);
        event.late = true;
        let text = String::from_utf8(point(&event).unwrap()).unwrap();
        assert!(text.contains(r#"version="1.0 \"rc\" \\x""#), "{text}");
        assert!(text.ends_with(&format!(" {}\n", event.time.timestamp_millis())));
        assert_ne!(event.time, event.envelope.time);
    }

    #[test]
    fn late_link_events_say_so() {
        let mut event = stored(
            1,
            Origin::Agent,
            "a",
            1,
            r#""type":"link_went_down","target":{"name":"gw","address":"10.0.0.1","role":"gateway"},"since":"2026-11-23T02:00:03.000Z","reason":"send_failed","failed_rounds":3"#,
        );
        event.late = true;
        let text = String::from_utf8(point(&event).unwrap()).unwrap();
        assert!(
            text.contains("up=0i,reason=\"send_failed\",late=true "),
            "{text}"
        );
    }
}
