//! Pure: stored events → InfluxDB line-protocol points (the schema in `docs/influx.md` of the
//! issue, summarised here). No I/O, no clock: the same stored event always yields the same
//! bytes, so a replay rewrites identical points (same series, timestamp and fields).
//!
//! `targets_described` has no point (the `probe` and `link` points name their target).
//!
//! Every point has tags `province` and `agent` and the event's *effective* time in milliseconds
//! (`precision=ms`). Escaping of names (Vietnamese diacritics, spaces, commas, `=`, quotes,
//! backslashes) is done by InfluxData's `influxdb-line-protocol` builder.
//!
//! | measurement | event | extra tags | fields |
//! |---|---|---|---|
//! | `probe` | probe_round_completed (old agents) | `target`, `address`, `role` | `sent`i, `received`i, `loss_pct`, `rtt_{min,avg,max,mdev}_ms` (only when received > 0) |
//! | `probe` | probe_window_completed | `target`, `address`, `role` | as a round, then `rtt_p10_ms` … `rtt_p90_ms` (the deciles of `rtt_pct_ms`, only when received > 0), `window_ms`i, `rounds`i, `failed_rounds`i, `longest_failed_run`i, `down_ms`i (`probe.rs`) |
//! | `link` | link_went_down / link_came_back | `target`, `address`, `role` | `up`i (0/1), `reason` "…", `down_for_s` (came back only), `late` bool |
//! | `agent` | agent_heartbeat | — | `uptime_s`i, `backlog`i |
//! | `agent` | agent_started | — | `started`i (1), `version` "…" |
//! | `agent` | agent_went_silent | — | `silent`i (1), `reason` "…" |
//! | `journal` | journal_overflowed | — | `lost`i (= count) |
//! | `interface` | interface_counters_sampled | `device` (address as configured), `interface` (ifName) | `in_bps`, `out_bps`, `in_errors_ps`, `out_errors_ps`, `in_discards_ps`, `out_discards_ps`, `up`i (oper status up = 1), and when the speed is known `speed_bps`i, `in_util_pct`, `out_util_pct` |
//! | `interface` | interface_went_down / interface_came_back | `device`, `interface` | `up`i (0/1), `oper_status` "…" (went down), `down_for_s` (came back) |
//! | `device` | device_rebooted | `device` | `rebooted`i (1), `uptime_s`i, `previous_uptime_s`i |
//! | `device` | device_stopped_answering / device_answers_again | `device` | `answering`i (0/1), `error` "…" (stopped), `silent_for_s` (again) |
//! | `cellular` | cellular_signal_sampled | `modem`, `technology`, `plmn`, `operator` (`unknown` when absent), `quality` | `generation`i (5/4/3/0), `in_service`i, `on_5g`i/`on_4g`i/`on_3g_2g`i/`on_none`i (0/1), `usable_5g`i (5G and quality fair or better), the values present of `rsrp_dbm`, `rsrq_db`, `sinr_db`, `rssi_dbm`, `nr_rsrp_dbm`, `nr_rsrq_db`, `nr_sinr_db`, `rsrp`/`sinr` (in service: NR SS on 5G, else LTE), `band` "…", `arfcn`i, `cell_id` "…", `registration` "…" |
//! | `cellular_change` | cellular_technology_changed / _operator_changed / _service_lost / _service_restored | `modem`, `change` (`technology`/`operator`/`service_lost`/`service_restored`), `plmn`, `operator` | technology: `from`, `to` "…", `generation`i; operator: `from_plmn`, `to_plmn` "…"; lost: `in_service`=0i, `last_technology`, `registration` "…"; restored: `in_service`=1i, `technology` "…", `lost_for_s` |
//! | `modem` | modem_stopped_answering / modem_answers_again | `modem` | `answering`i (0/1), `error` "…" (stopped), `silent_for_s` (again) |
//!
//! With a site inventory every point of a registered agent also has tags `commune` and `site`
//! (the inventory's ids), and the `link`, `agent` and `cellular` points of a site with coordinates have float
//! fields `lat` and `lon` (WGS 84 degrees) for the province wall's geomap. Points of agents the
//! inventory does not list have neither.

use influxdb_line_protocol::builder::{AfterField, AfterMeasurement, LineProtocolBuilder};
use netmon_events::{Event, OperStatus, Target};
use serde::Serialize;

use crate::inventory::{Inventory, Site};
use crate::store::StoredEvent;

mod cellular;
mod probe;

/// One point: a single line of line protocol, ending in `\n`.
pub type Point = Vec<u8>;

/// The point for `event`; `None` for events that have no time series (alert bookkeeping,
/// notifications, `targets_described`). `inventory` adds the `commune`/`site` tags and the
/// `lat`/`lon` fields.
pub fn point(stored: &StoredEvent, inventory: Option<&Inventory>) -> Option<Point> {
    build(stored, inventory).map(one_line)
}

/// A point is one line, whatever a value holds: line breaks are dropped. Every string of a
/// valid event is free of them already (`netmon_events::text`); this holds even for a row
/// stored by an older build, or an inventory name, so a value can never start a line of its
/// own (an attacker-named measurement, or a batch the server rejects).
fn one_line(mut point: Point) -> Point {
    let body = point.len().saturating_sub(1);
    if point[..body].iter().any(|b| matches!(b, b'\n' | b'\r')) {
        point.truncate(body);
        point.retain(|b| !matches!(b, b'\n' | b'\r'));
        point.push(b'\n');
    }
    point
}

fn build(stored: &StoredEvent, inventory: Option<&Inventory>) -> Option<Point> {
    let ts = stored.time.timestamp_millis();
    let site = inventory.and_then(|i| i.site_of(&stored.envelope.agent));
    let tags = |measurement: &str| {
        let line = LineProtocolBuilder::new()
            .measurement(measurement)
            .tag("province", stored.province.as_str())
            .tag("agent", stored.envelope.agent.as_str());
        match site {
            Some(site) => line.tag("commune", &site.commune).tag("site", &site.id),
            None => line,
        }
    };
    // The geomap's `lat`/`lon` fields, last on `link` and `agent` points.
    let place = |line: LineProtocolBuilder<Vec<u8>, AfterField>| coordinates(line, site);
    match &stored.envelope.event {
        event @ (Event::ProbeRoundCompleted { .. } | Event::ProbeWindowCompleted { .. }) => {
            probe::point(event, tags("probe"), ts)
        }
        Event::LinkWentDown { target, reason, .. } => place(
            target_tags(tags("link"), target)
                .field("up", 0i64)
                .field("reason", name(reason).as_str())
                .field("late", stored.late),
        )
        .timestamp(ts)
        .close_line()
        .build()
        .into(),
        Event::LinkCameBack {
            target,
            down_for_ms,
            reason,
            ..
        } => place(
            target_tags(tags("link"), target)
                .field("up", 1i64)
                .field("reason", name(reason).as_str())
                .field("down_for_s", *down_for_ms as f64 / 1000.0)
                .field("late", stored.late),
        )
        .timestamp(ts)
        .close_line()
        .build()
        .into(),
        Event::AgentHeartbeat { uptime_s, backlog } => place(
            tags("agent")
                .field("uptime_s", clamp(*uptime_s))
                .field("backlog", clamp(*backlog)),
        )
        .timestamp(ts)
        .close_line()
        .build()
        .into(),
        Event::AgentStarted { version, .. } => place(
            tags("agent")
                .field("started", 1i64)
                .field("version", version.as_str()),
        )
        .timestamp(ts)
        .close_line()
        .build()
        .into(),
        Event::AgentWentSilent { reason, .. } => place(
            tags("agent")
                .field("silent", 1i64)
                .field("reason", name(reason).as_str()),
        )
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
        Event::InterfaceCountersSampled {
            device,
            interface,
            in_bps,
            out_bps,
            speed_bps,
            in_util_pct,
            out_util_pct,
            in_errors_ps,
            out_errors_ps,
            in_discards_ps,
            out_discards_ps,
            oper_status,
            ..
        } => {
            let mut line = tags("interface")
                .tag("device", &device.address)
                .tag("interface", &interface.name)
                .field("in_bps", *in_bps)
                .field("out_bps", *out_bps)
                .field("in_errors_ps", *in_errors_ps)
                .field("out_errors_ps", *out_errors_ps)
                .field("in_discards_ps", *in_discards_ps)
                .field("out_discards_ps", *out_discards_ps)
                .field("up", i64::from(*oper_status == OperStatus::Up));
            if let Some(speed) = speed_bps {
                line = line.field("speed_bps", clamp(*speed));
            }
            if let Some(util) = in_util_pct {
                line = line.field("in_util_pct", *util);
            }
            if let Some(util) = out_util_pct {
                line = line.field("out_util_pct", *util);
            }
            Some(line.timestamp(ts).close_line().build())
        }
        Event::InterfaceWentDown {
            device,
            interface,
            oper_status,
        } => tags("interface")
            .tag("device", &device.address)
            .tag("interface", &interface.name)
            .field("up", 0i64)
            .field("oper_status", name(oper_status).as_str())
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::InterfaceCameBack {
            device,
            interface,
            down_for_ms,
        } => tags("interface")
            .tag("device", &device.address)
            .tag("interface", &interface.name)
            .field("up", 1i64)
            .field("down_for_s", *down_for_ms as f64 / 1000.0)
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::DeviceRebooted {
            device,
            uptime_s,
            previous_uptime_s,
        } => tags("device")
            .tag("device", &device.address)
            .field("rebooted", 1i64)
            .field("uptime_s", clamp(*uptime_s))
            .field("previous_uptime_s", clamp(*previous_uptime_s))
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::DeviceStoppedAnswering { device, error } => tags("device")
            .tag("device", &device.address)
            .field("answering", 0i64)
            .field("error", error.as_str())
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        Event::DeviceAnswersAgain {
            device,
            silent_for_ms,
        } => tags("device")
            .tag("device", &device.address)
            .field("answering", 1i64)
            .field("silent_for_s", *silent_for_ms as f64 / 1000.0)
            .timestamp(ts)
            .close_line()
            .build()
            .into(),
        event @ (Event::CellularSignalSampled { .. }
        | Event::CellularTechnologyChanged { .. }
        | Event::CellularOperatorChanged { .. }
        | Event::CellularServiceLost { .. }
        | Event::CellularServiceRestored { .. }
        | Event::ModemStoppedAnswering { .. }
        | Event::ModemAnswersAgain { .. }) => cellular::point(event, tags, place, ts),
        Event::AlertOpened { .. }
        | Event::AlertAcknowledged { .. }
        | Event::AlertResolved { .. }
        | Event::AlertSuppressed { .. }
        | Event::SilenceAdded { .. }
        | Event::NotificationQueued { .. }
        | Event::NotificationSent { .. }
        | Event::NotificationFailed { .. } => None,
        // A boot's targets: the probe points carry every target's name, address and role.
        Event::TargetsDescribed { .. } => None,
        // The series store has every reading itself.
        Event::CoverageDayRolledUp { .. } => None,
    }
}

/// Adds `lat` and `lon` when the site has coordinates.
fn coordinates(
    line: LineProtocolBuilder<Vec<u8>, AfterField>,
    site: Option<&Site>,
) -> LineProtocolBuilder<Vec<u8>, AfterField> {
    match site.and_then(|s| s.lat.zip(s.lon)) {
        Some((lat, lon)) => line.field("lat", lat).field("lon", lon),
        None => line,
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
    use crate::store::testkit::stored;

    pub(super) fn line(event: &str) -> String {
        String::from_utf8(point(&stored(7, Origin::Agent, "lang-a", 3, event), None).unwrap())
            .unwrap()
    }

    /// The effective time of seq 3 in the testkit, in ms.
    pub(super) fn ts() -> i64 {
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
    fn a_value_with_a_line_break_stays_on_its_line() {
        // An envelope stored before the contract refused line breaks in operator names (F4).
        let mut event = stored(
            1,
            Origin::Agent,
            "lang-a",
            1,
            r#""type":"link_went_down","target":{"name":"x","address":"10.30.0.1","role":"commune"},"since":"2026-11-23T02:00:00.000Z","reason":"no_reply","failed_rounds":3"#,
        );
        if let Event::LinkWentDown { target, .. } = &mut event.envelope.event {
            target.name = "Viettel\nevil,agent=x up=1i 1\r".into();
        }
        let point = point(&event, None).unwrap();
        let text = String::from_utf8(point).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(text.ends_with('\n') && !text.contains('\r'), "{text:?}");
        assert!(text.starts_with("link,"), "{text:?}");
    }

    #[test]
    fn every_event_type_has_its_exact_line() {
        let t = ts();
        let target =
            r#""target":{"name":"UBND xã Kiên Thọ","address":"10.30.0.1","role":"commune"}"#;
        let tags = "province=thanh-hoa,agent=lang-a";
        let device = r#""device":{"address":"10.20.0.1","name":"cam-tu-router"}"#;
        let interface = r#""interface":{"index":2,"name":"wan0","alias":"Cáp quang VNPT"}"#;
        let table = [
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
            (
                format!(
                    r#""type":"interface_counters_sampled",{device},{interface},"interval_ms":10000,"in_bps":48213760.0,"out_bps":9120000.5,"speed_bps":50000000,"in_util_pct":96.43,"out_util_pct":18.24,"in_errors_ps":0.0,"out_errors_ps":0.0,"in_discards_ps":1.2,"out_discards_ps":0.0,"oper_status":"up""#
                ),
                format!(
                    "interface,{tags},device=10.20.0.1,interface=wan0 in_bps=48213760,out_bps=9120000.5,in_errors_ps=0,out_errors_ps=0,in_discards_ps=1.2,out_discards_ps=0,up=1i,speed_bps=50000000i,in_util_pct=96.43,out_util_pct=18.24 {t}\n"
                ),
            ),
            (
                format!(
                    r#""type":"interface_counters_sampled",{device},{interface},"interval_ms":10000,"in_bps":1.0,"out_bps":2.0,"in_errors_ps":0.0,"out_errors_ps":0.0,"in_discards_ps":0.0,"out_discards_ps":0.0,"oper_status":"lower_layer_down""#
                ),
                format!(
                    "interface,{tags},device=10.20.0.1,interface=wan0 in_bps=1,out_bps=2,in_errors_ps=0,out_errors_ps=0,in_discards_ps=0,out_discards_ps=0,up=0i {t}\n"
                ),
            ),
            (
                format!(r#""type":"interface_went_down",{device},{interface},"oper_status":"down""#),
                format!(
                    "interface,{tags},device=10.20.0.1,interface=wan0 up=0i,oper_status=\"down\" {t}\n"
                ),
            ),
            (
                format!(r#""type":"interface_came_back",{device},{interface},"down_for_ms":42000"#),
                format!(
                    "interface,{tags},device=10.20.0.1,interface=wan0 up=1i,down_for_s=42 {t}\n"
                ),
            ),
            (
                format!(
                    r#""type":"device_rebooted",{device},"uptime_s":12,"previous_uptime_s":864000"#
                ),
                format!(
                    "device,{tags},device=10.20.0.1 rebooted=1i,uptime_s=12i,previous_uptime_s=864000i {t}\n"
                ),
            ),
            (
                format!(r#""type":"device_stopped_answering",{device},"error":"no answer""#),
                format!("device,{tags},device=10.20.0.1 answering=0i,error=\"no answer\" {t}\n"),
            ),
            (
                format!(r#""type":"device_answers_again",{device},"silent_for_ms":90000"#),
                format!("device,{tags},device=10.20.0.1 answering=1i,silent_for_s=90 {t}\n"),
            ),
        ];
        for (event, expected) in table {
            assert_eq!(line(&event), expected, "for {event}");
        }
    }

    #[test]
    fn targets_described_has_no_point() {
        let event = stored(
            7,
            Origin::Agent,
            "lang-a",
            3,
            r#""type":"targets_described","targets":[{"key":1,"name":"gw","address":"10.0.0.1","role":"gateway"}]"#,
        );
        assert_eq!(point(&event, None), None);
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
        let text = String::from_utf8(point(&event, None).unwrap()).unwrap();
        assert!(text.contains(r#"version="1.0 \"rc\" \\x""#), "{text}");
        assert!(text.ends_with(&format!(" {}\n", event.time.timestamp_millis())));
        assert_ne!(event.time, event.envelope.time);
    }

    /// A registered agent's points carry its commune and site; `link` and `agent` points of a
    /// site with coordinates carry them; an unregistered agent's points have neither.
    #[test]
    fn the_inventory_adds_site_tags_and_coordinates() {
        let inventory = crate::inventory::parse(
            r#"
[[provinces]]
id = "thanh-hoa"
name = "Thanh Hóa"
[[communes]]
id = "cam-tu"
province = "thanh-hoa"
name = "xã Cẩm Tú"
[[sites]]
id = "cam-tu-ubnd"
commune = "cam-tu"
name = "UBND xã Cẩm Tú"
lat = 20.0517
lon = 105.471
agents = ["lang-a"]
[[sites]]
id = "no-map"
commune = "cam-tu"
name = "thôn X"
agents = ["lang-b"]
"#,
            "inv.toml",
        )
        .unwrap();
        let at = |agent: &str, event: &str| {
            let event = stored(7, Origin::Agent, agent, 3, event);
            String::from_utf8(point(&event, Some(&inventory)).unwrap()).unwrap()
        };
        let t = ts();
        let tags = "province=thanh-hoa,agent=lang-a,commune=cam-tu,site=cam-tu-ubnd";
        let down = r#""type":"link_went_down","target":{"name":"gw","address":"10.0.0.1","role":"gateway"},"since":"2026-11-23T02:00:03.000Z","reason":"no_reply","failed_rounds":3"#;
        assert_eq!(
            at("lang-a", down),
            format!(
                "link,{tags},target=gw,address=10.0.0.1,role=gateway up=0i,reason=\"no_reply\",late=false,lat=20.0517,lon=105.471 {t}\n"
            )
        );
        assert_eq!(
            at(
                "lang-a",
                r#""type":"agent_heartbeat","uptime_s":5,"backlog":0"#
            ),
            format!("agent,{tags} uptime_s=5i,backlog=0i,lat=20.0517,lon=105.471 {t}\n")
        );
        let reading = r#""type":"cellular_signal_sampled","modem":"m","technology":"lte","plmn":"452-04","registration":"home","quality":"poor""#;
        assert!(
            at("lang-a", reading).contains(&format!(
                "cellular,{tags},modem=m,technology=lte,plmn=452-04,operator=452-04,quality=poor "
            )),
            "{}",
            at("lang-a", reading)
        );
        assert!(at("lang-a", reading).ends_with(&format!(",lat=20.0517,lon=105.471 {t}\n")));
        let round = r#""type":"probe_round_completed","target":{"name":"gw","address":"10.0.0.1","role":"gateway"},"sent":1,"received":0,"loss_pct":100.0"#;
        assert!(at("lang-a", round).starts_with(&format!("probe,{tags},target=gw")));
        assert!(!at("lang-a", round).contains("lat="));
        assert_eq!(
            at(
                "lang-b",
                r#""type":"agent_went_silent","reason":"last_will""#
            ),
            format!(
                "agent,province=thanh-hoa,agent=lang-b,commune=cam-tu,site=no-map silent=1i,reason=\"last_will\" {t}\n"
            )
        );
        assert_eq!(
            at(
                "stranger",
                r#""type":"agent_went_silent","reason":"last_will""#
            ),
            format!("agent,province=thanh-hoa,agent=stranger silent=1i,reason=\"last_will\" {t}\n")
        );
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
        let text = String::from_utf8(point(&event, None).unwrap()).unwrap();
        assert!(
            text.contains("up=0i,reason=\"send_failed\",late=true "),
            "{text}"
        );
    }
}
