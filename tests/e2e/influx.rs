//! The InfluxDB projection of the real collector against real time-series servers, each test with
//! its own private server: InfluxDB 1.6 over the v1 API, VictoriaMetrics over the v2 API, an
//! InfluxDB outage while events keep arriving, and `replay influx` into a fresh database. Every
//! point is compared — measurement, tags, fields and millisecond timestamp — with the event in
//! the store it came from (effective time `stored.time`); `targets_described` has no point.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_events::{AgentId, BootId, DownReason, Envelope, Event, LinkRole, Target, encode_batch};
use netmon_tests::daemons::daemon_env;
use netmon_tests::influxd::Influxd;
use netmon_tests::victoria::Victoria;
use netmon_tests::{
    Collector, InfluxConfig, Scratch, StoredEvent, binary, publish, shared_url, unique, wait_for,
};
use serde_json::{Map, Value, json};

use netmon_events::testing::{described, events_topic, round_rtt, window, window_rtt};

const DB: &str = "netmon";
const AGENT: &str = "thon-giang-trung";

/// Envelopes of one boot, `step_ms` apart, ending about a minute ago (times in whole ms).
struct Stream {
    agent: AgentId,
    boot: BootId,
    seq: u64,
    start: DateTime<Utc>,
    step_ms: i64,
}

impl Stream {
    fn new(agent: &str, count: u64, step_ms: i64) -> Self {
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        Self {
            agent: agent.parse().unwrap(),
            boot: unique("boot").parse().unwrap(),
            seq: 0,
            start: now
                - chrono::Duration::seconds(60)
                - chrono::Duration::milliseconds(step_ms * count as i64),
            step_ms,
        }
    }

    fn next(&mut self, event: Event) -> Envelope {
        self.seq += 1;
        Envelope {
            v: 1,
            agent: self.agent.clone(),
            boot: self.boot.clone(),
            seq: self.seq,
            time: self.time(),
            mono_ms: self.seq * self.step_ms as u64,
            event,
        }
    }

    fn time(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::milliseconds(self.step_ms * self.seq as i64)
    }
}

fn target(name: &str, address: &str, role: LinkRole) -> Target {
    Target {
        name: name.into(),
        address: address.parse().unwrap(),
        role,
    }
}

/// The known mix: agent started, its targets described, rounds with and without replies on two
/// targets (names with diacritics, a comma and spaces), the commune link down and back, a
/// heartbeat, and one-minute windows with and without replies (a real agent sends rounds or
/// windows, by version; each is projected on its own).
fn mix(agent: &str) -> Vec<Envelope> {
    let mut stream = Stream::new(agent, 10, 1000);
    let commune = target("UBND xã Kiên Thọ, Ngọc Lặc", "10.30.0.1", LinkRole::Commune);
    let gateway = target("Trạm y tế thôn Giàng", "10.30.1.1", LinkRole::Gateway);
    let mut out = vec![stream.next(Event::AgentStarted {
        version: "0.1.0".into(),
        targets: 2,
    })];
    out.push(stream.next(described(&[commune.clone(), gateway.clone()])));
    out.push(stream.next(round_rtt(&commune, 3, 12.5)));
    out.push(stream.next(round_rtt(&gateway, 2, 1.75)));
    out.push(stream.next(round_rtt(&commune, 0, 0.0)));
    let since = stream.time();
    out.push(stream.next(Event::LinkWentDown {
        target: commune.clone(),
        since,
        reason: DownReason::NoReply,
        failed_rounds: 3,
    }));
    out.push(stream.next(round_rtt(&commune, 1, 80.0)));
    out.push(stream.next(Event::LinkCameBack {
        target: commune.clone(),
        down_since: since,
        down_for_ms: 2500,
        reason: DownReason::NoReply,
    }));
    out.push(stream.next(Event::AgentHeartbeat {
        uptime_s: 600,
        backlog: 12,
    }));
    out.push(stream.next(window_rtt(&commune, 171, 14.5)));
    let mut lost = window(&gateway, 0);
    if let Event::ProbeWindowCompleted { down_ms, .. } = &mut lost {
        *down_ms = 42_000;
    }
    out.push(stream.next(lost));
    out
}

/// A point as the agreed schema says it must be: measurement, tags, fields (strings, ints as
/// numbers, bools), time in ms.
#[derive(Debug, Clone, PartialEq)]
struct Point {
    measurement: &'static str,
    tags: BTreeMap<String, String>,
    fields: BTreeMap<String, Value>,
    time_ms: i64,
}

/// `None` for the events that have no point (`targets_described`).
fn expected(stored: &StoredEvent) -> Option<Point> {
    let mut tags = BTreeMap::new();
    tags.insert("province".into(), stored.province.clone().unwrap());
    tags.insert("agent".into(), stored.envelope.agent.to_string());
    let mut fields = BTreeMap::new();
    let mut target_tags = |target: &Target| {
        tags.insert("target".into(), target.name.clone());
        tags.insert("address".into(), target.address.to_string());
        tags.insert(
            "role".into(),
            json!(target.role).as_str().unwrap().to_owned(),
        );
    };
    let measurement = match &stored.envelope.event {
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
            target_tags(target);
            let rtts = [rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms];
            echo_fields(&mut fields, *sent, *received, *loss_pct, rtts);
            "probe"
        }
        Event::ProbeWindowCompleted {
            target,
            window_ms,
            rounds,
            failed_rounds,
            longest_failed_run,
            down_ms,
            sent,
            received,
            loss_pct,
            rtt_min_ms,
            rtt_avg_ms,
            rtt_max_ms,
            rtt_mdev_ms,
            rtt_pct_ms,
        } => {
            target_tags(target);
            let rtts = [rtt_min_ms, rtt_avg_ms, rtt_max_ms, rtt_mdev_ms];
            echo_fields(&mut fields, *sent, *received, *loss_pct, rtts);
            if *received > 0 {
                let deciles = rtt_pct_ms.as_ref().unwrap();
                assert_eq!(deciles.len(), 9, "{deciles:?}");
                for (i, ms) in deciles.iter().enumerate() {
                    fields.insert(format!("rtt_p{}_ms", (i + 1) * 10), json!(ms));
                }
            }
            fields.insert("window_ms".into(), json!(window_ms));
            fields.insert("rounds".into(), json!(rounds));
            fields.insert("failed_rounds".into(), json!(failed_rounds));
            fields.insert("longest_failed_run".into(), json!(longest_failed_run));
            fields.insert("down_ms".into(), json!(down_ms));
            "probe"
        }
        Event::TargetsDescribed { .. } => return None,
        Event::LinkWentDown { target, reason, .. } => {
            target_tags(target);
            fields.insert("up".into(), json!(0));
            fields.insert("reason".into(), json!(reason));
            fields.insert("late".into(), json!(stored.late().unwrap()));
            "link"
        }
        Event::LinkCameBack {
            target,
            down_for_ms,
            reason,
            ..
        } => {
            target_tags(target);
            fields.insert("up".into(), json!(1));
            fields.insert("reason".into(), json!(reason));
            fields.insert("down_for_s".into(), json!(*down_for_ms as f64 / 1000.0));
            fields.insert("late".into(), json!(stored.late().unwrap()));
            "link"
        }
        Event::AgentHeartbeat { uptime_s, backlog } => {
            fields.insert("uptime_s".into(), json!(uptime_s));
            fields.insert("backlog".into(), json!(backlog));
            "agent"
        }
        Event::AgentStarted { version, .. } => {
            fields.insert("started".into(), json!(1));
            fields.insert("version".into(), json!(version));
            "agent"
        }
        Event::AgentWentSilent { reason, .. } => {
            fields.insert("silent".into(), json!(1));
            fields.insert("reason".into(), json!(reason));
            "agent"
        }
        Event::JournalOverflowed { count, .. } => {
            fields.insert("lost".into(), json!(count));
            "journal"
        }
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
            tags.insert("device".into(), device.address.clone());
            tags.insert("interface".into(), interface.name.clone());
            fields.insert("in_bps".into(), json!(in_bps));
            fields.insert("out_bps".into(), json!(out_bps));
            fields.insert("in_errors_ps".into(), json!(in_errors_ps));
            fields.insert("out_errors_ps".into(), json!(out_errors_ps));
            fields.insert("in_discards_ps".into(), json!(in_discards_ps));
            fields.insert("out_discards_ps".into(), json!(out_discards_ps));
            let up = i64::from(*oper_status == netmon_events::OperStatus::Up);
            fields.insert("up".into(), json!(up));
            if let Some(speed) = speed_bps {
                fields.insert("speed_bps".into(), json!(speed));
            }
            if let Some(util) = in_util_pct {
                fields.insert("in_util_pct".into(), json!(util));
            }
            if let Some(util) = out_util_pct {
                fields.insert("out_util_pct".into(), json!(util));
            }
            "interface"
        }
        Event::InterfaceWentDown {
            device,
            interface,
            oper_status,
        } => {
            tags.insert("device".into(), device.address.clone());
            tags.insert("interface".into(), interface.name.clone());
            fields.insert("up".into(), json!(0));
            fields.insert("oper_status".into(), json!(oper_status));
            "interface"
        }
        Event::InterfaceCameBack {
            device,
            interface,
            down_for_ms,
        } => {
            tags.insert("device".into(), device.address.clone());
            tags.insert("interface".into(), interface.name.clone());
            fields.insert("up".into(), json!(1));
            fields.insert("down_for_s".into(), json!(*down_for_ms as f64 / 1000.0));
            "interface"
        }
        Event::DeviceRebooted {
            device,
            uptime_s,
            previous_uptime_s,
        } => {
            tags.insert("device".into(), device.address.clone());
            fields.insert("rebooted".into(), json!(1));
            fields.insert("uptime_s".into(), json!(uptime_s));
            fields.insert("previous_uptime_s".into(), json!(previous_uptime_s));
            "device"
        }
        Event::DeviceStoppedAnswering { device, error } => {
            tags.insert("device".into(), device.address.clone());
            fields.insert("answering".into(), json!(0));
            fields.insert("error".into(), json!(error));
            "device"
        }
        Event::DeviceAnswersAgain {
            device,
            silent_for_ms,
        } => {
            tags.insert("device".into(), device.address.clone());
            fields.insert("answering".into(), json!(1));
            fields.insert("silent_for_s".into(), json!(*silent_for_ms as f64 / 1000.0));
            "device"
        }
        other => panic!("{} has no time series", other.type_name()),
    };
    Some(Point {
        measurement,
        tags,
        fields: fields.into_iter().map(|(k, v)| (k, number(&v))).collect(),
        time_ms: stored.effective_time().unwrap().timestamp_millis(),
    })
}

/// The fields of a round or a window: echoes, loss, and the RTTs when something came back.
fn echo_fields(
    fields: &mut BTreeMap<String, Value>,
    sent: u32,
    received: u32,
    loss_pct: f64,
    [min, avg, max, mdev]: [&Option<f64>; 4],
) {
    fields.insert("sent".into(), json!(sent));
    fields.insert("received".into(), json!(received));
    fields.insert("loss_pct".into(), json!(loss_pct));
    if received > 0 {
        fields.insert("rtt_min_ms".into(), json!(min.unwrap()));
        fields.insert("rtt_avg_ms".into(), json!(avg.unwrap()));
        fields.insert("rtt_max_ms".into(), json!(max.unwrap()));
        fields.insert("rtt_mdev_ms".into(), json!(mdev.unwrap()));
    }
}

/// Numbers compared as f64 (InfluxDB's JSON prints a float 100.0 as `100`).
fn number(value: &Value) -> Value {
    match value.as_f64() {
        Some(f) if value.is_number() => json!(f),
        _ => value.clone(),
    }
}

/// Every row of `measurement` for `agent` in InfluxDB, as points (null columns dropped; string
/// columns that are tags of the expected schema become tags).
fn influx_points(
    influxd: &Influxd,
    db: &str,
    measurement: &'static str,
    agent: &str,
) -> Vec<Point> {
    let tag_keys: BTreeSet<&str> = ["province", "agent", "target", "address", "role"].into();
    let rows = influxd
        .select(
            db,
            &format!("SELECT * FROM \"{measurement}\" WHERE \"agent\" = '{agent}'"),
        )
        .unwrap();
    rows.into_iter()
        .map(|row: Map<String, Value>| {
            let mut point = Point {
                measurement,
                tags: BTreeMap::new(),
                fields: BTreeMap::new(),
                time_ms: 0,
            };
            for (key, value) in row {
                if key == "time" {
                    point.time_ms = value.as_i64().unwrap();
                } else if value.is_null() {
                } else if tag_keys.contains(key.as_str()) {
                    point.tags.insert(key, value.as_str().unwrap().to_owned());
                } else {
                    point.fields.insert(key, number(&value));
                }
            }
            point
        })
        .collect()
}

/// Sorted for comparison regardless of order.
fn sorted(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    points
}

/// Waits until `agent`'s `count` events are stored and returns them.
fn stored(collector: &Collector, agent: &str, count: usize, timeout: Duration) -> Vec<StoredEvent> {
    wait_for(
        &format!("{count} stored events of {agent}"),
        timeout,
        || {
            // The collector's own alert events have no time series.
            let events: Vec<_> = collector
                .events(&["--agent", agent])
                .ok()?
                .into_iter()
                .filter(|e| !e.envelope.event.is_alerting())
                .collect();
            (events.len() >= count).then_some(events)
        },
    )
}

/// Asserts that InfluxDB holds exactly the expected point of every stored event of the agent.
fn assert_influx_matches(
    influxd: &Influxd,
    db: &str,
    agent: &str,
    events: &[StoredEvent],
    timeout: Duration,
) {
    let want = sorted(events.iter().filter_map(expected).collect());
    let read = || {
        let mut got = Vec::new();
        for m in ["probe", "link", "agent", "journal"] {
            got.extend(influx_points(influxd, db, m, agent));
        }
        sorted(got)
    };
    let matched = netmon_tests::wait::poll_until(timeout, || (read() == want).then_some(()));
    if matched.is_none() {
        let got = read();
        assert_eq!(got.len(), want.len(), "points in InfluxDB vs stored events");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w, "a point in InfluxDB differs from its stored event");
        }
    }
}

/// Starts a collector projecting into `influx` (flushing every 200 ms) for a fresh province,
/// publishes [`mix`] and returns the collector (it keeps projecting while the caller holds it)
/// with the events, once all are stored.
fn project_the_mix(
    scratch: &Scratch,
    stem: &str,
    influx: InfluxConfig,
) -> (Collector, Vec<StoredEvent>) {
    let province = unique(stem);
    let influx = InfluxConfig {
        flush_interval: Some("200ms".into()),
        ..influx
    };
    let collector =
        Collector::start_projecting("collector", scratch, &province, &shared_url(), Some(influx))
            .unwrap();
    let envelopes = mix(AGENT);
    publish(
        &shared_url(),
        &events_topic(&province, AGENT),
        &encode_batch(&envelopes),
    )
    .unwrap();
    let events = stored(&collector, AGENT, envelopes.len(), Duration::from_secs(20));
    assert_eq!(events.len(), envelopes.len());
    (collector, events)
}

#[test]
fn influx_v1_points_match_the_stored_events() {
    let scratch = Scratch::new("influx-v1").unwrap();
    let influxd = Influxd::start(&scratch).unwrap();
    influxd.create_database(DB).unwrap();
    let (_collector, events) =
        project_the_mix(&scratch, "influx-v1", InfluxConfig::v1(&influxd.url, DB));
    assert_influx_matches(&influxd, DB, AGENT, &events, Duration::from_secs(20));

    // The windows are `probe` points beside the rounds, in the same series, told apart by
    // their `rounds`; the median and the down time read by name.
    let windows = influxd
        .select(
            DB,
            &format!(
                "SELECT \"target\", \"rtt_p50_ms\", \"received\", \"down_ms\" FROM \"probe\" \
                 WHERE \"agent\" = '{AGENT}' AND \"rounds\" = 60"
            ),
        )
        .unwrap();
    let windows: Vec<_> = windows
        .iter()
        .map(|row| {
            (
                row["target"].as_str().unwrap().to_owned(),
                row["rtt_p50_ms"].as_f64(),
                row["received"].as_i64().unwrap(),
                row["down_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            ("UBND xã Kiên Thọ, Ngọc Lặc".to_owned(), Some(14.5), 171, 0),
            ("Trạm y tế thôn Giàng".to_owned(), None, 0, 42_000),
        ]
    );
    let series = influxd
        .query(
            DB,
            &format!("SHOW SERIES FROM \"probe\" WHERE \"agent\" = '{AGENT}'"),
        )
        .unwrap();
    let series = series["results"][0]["series"][0]["values"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        series, 2,
        "one probe series per target, rounds and windows alike"
    );
}

#[test]
fn influx_v2_into_victoria_metrics_matches() {
    let scratch = Scratch::new("influx-vm").unwrap();
    let victoria = Victoria::start(&scratch).unwrap();
    let (_collector, events) = project_the_mix(
        &scratch,
        "influx-vm",
        InfluxConfig::v2(&victoria.url, "netmon", "netmon"),
    );

    // VictoriaMetrics keeps numbers only: series `{measurement}_{field}`, labels = tags, string
    // fields are not kept (they are left out on both sides), bools become 0/1.
    type Sample = (String, BTreeMap<String, String>, i64);
    let mut want: BTreeMap<Sample, f64> = BTreeMap::new();
    for point in events.iter().filter_map(expected) {
        for (field, value) in &point.fields {
            let value = match value {
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Number(n) => n.as_f64().unwrap(),
                _ => continue,
            };
            let name = format!("{}_{field}", point.measurement);
            want.insert((name, point.tags.clone(), point.time_ms), value);
        }
    }
    let strings = ["link_reason", "agent_version", "agent_reason"];
    let read = || {
        let mut got: BTreeMap<Sample, f64> = BTreeMap::new();
        let series = victoria
            .export(&format!(
                "{{__name__=~\"(probe|link|agent|journal)_.*\",agent=\"{AGENT}\"}}"
            ))
            .unwrap();
        for s in series {
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(s["metric"].clone()).unwrap();
            let name = labels.remove("__name__").unwrap();
            if strings.contains(&name.as_str()) {
                continue;
            }
            let values = s["values"].as_array().unwrap();
            let times = s["timestamps"].as_array().unwrap();
            for (v, t) in values.iter().zip(times) {
                let previous = got.insert(
                    (name.clone(), labels.clone(), t.as_i64().unwrap()),
                    v.as_f64().unwrap(),
                );
                assert!(previous.is_none(), "{name} {labels:?} {t} exported twice");
            }
        }
        got
    };
    // VictoriaMetrics keeps about 12 significant digits (66.66666666666667 → 66.6666666667).
    let close = |got: &BTreeMap<Sample, f64>| {
        got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .all(|((gk, gv), (wk, wv))| gk == wk && (gv - wv).abs() <= 1e-9 * wv.abs().max(1.0))
    };
    let matched =
        netmon_tests::wait::poll_until(Duration::from_secs(20), || close(&read()).then_some(()));
    if matched.is_none() {
        assert_eq!(
            read(),
            want,
            "VictoriaMetrics' samples vs the stored events"
        );
    }
}

#[test]
fn influx_outage_loses_no_points() {
    let scratch = Scratch::new("influx-outage").unwrap();
    let mut influxd = Influxd::start(&scratch).unwrap();
    influxd.create_database(DB).unwrap();
    let province = unique("influx-outage");
    let influx = InfluxConfig {
        flush_interval: Some("200ms".into()),
        timeout: Some("2s".into()),
        ..InfluxConfig::v1(&influxd.url, DB)
    };
    let collector = Collector::start_projecting(
        "collector",
        &scratch,
        &province,
        &shared_url(),
        Some(influx),
    )
    .unwrap();
    let url = shared_url();
    let topic = events_topic(&province, AGENT);
    // 120 batches of 10 rounds, 10 ms apart in event time, sent ~every 200 ms (~25 s at most).
    const BATCHES: usize = 120;
    const PER_BATCH: usize = 10;
    let mut stream = Stream::new(AGENT, (BATCHES * PER_BATCH) as u64, 10);
    let link = target("UBND xã Kiên Thọ, Ngọc Lặc", "10.30.0.1", LinkRole::Commune);
    let batches: Vec<Vec<u8>> = (0..BATCHES)
        .map(|b| {
            let envelopes: Vec<Envelope> = (0..PER_BATCH)
                .map(|i| stream.next(round_rtt(&link, ((b + i) % 4) as u32, 1.0 + i as f64)))
                .collect();
            encode_batch(&envelopes)
        })
        .collect();
    let publisher = std::thread::spawn(move || {
        for batch in batches {
            publish(&url, &topic, &batch).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    wait_for(
        "the first points in InfluxDB",
        Duration::from_secs(20),
        || (influxd.count(DB, "probe", "sent").ok()? > 0).then_some(()),
    );
    let before = collector.events(&["--agent", AGENT]).unwrap().len();
    influxd.stop().unwrap();
    // The outage lasts while at least 40 more batches (~8 s of traffic) reach the store.
    wait_for(
        "400 events stored during the outage",
        Duration::from_secs(30),
        || {
            let now = collector.events(&["--agent", AGENT]).ok()?.len();
            (now >= before + 40 * PER_BATCH).then_some(())
        },
    );
    influxd.restart().unwrap();
    publisher.join().unwrap();
    let events = stored(
        &collector,
        AGENT,
        BATCHES * PER_BATCH,
        Duration::from_secs(30),
    );
    assert_eq!(events.len(), BATCHES * PER_BATCH);
    // Every stored probe event has exactly its point: same count, same values, nothing else.
    assert_influx_matches(&influxd, DB, AGENT, &events, Duration::from_secs(60));
}

#[test]
fn replay_influx_into_a_new_database() {
    let scratch = Scratch::new("influx-replay").unwrap();
    let influxd = Influxd::start(&scratch).unwrap();
    influxd.create_database(DB).unwrap();
    let province = unique("influx-replay");
    let influx = InfluxConfig {
        flush_interval: Some("200ms".into()),
        ..InfluxConfig::v1(&influxd.url, DB)
    };
    let collector = Collector::start_projecting(
        "collector",
        &scratch,
        &province,
        &shared_url(),
        Some(influx.clone()),
    )
    .unwrap();
    let envelopes = mix(AGENT);
    publish(
        &shared_url(),
        &events_topic(&province, AGENT),
        &encode_batch(&envelopes),
    )
    .unwrap();
    let events = stored(&collector, AGENT, envelopes.len(), Duration::from_secs(20));
    assert_influx_matches(&influxd, DB, AGENT, &events, Duration::from_secs(20));

    // The same config with a fresh database: replay re-projects the whole store into it.
    let fresh = "netmon_replayed";
    influxd.create_database(fresh).unwrap();
    let mut config = collector.config.clone();
    config.influx = Some(InfluxConfig {
        database: Some(fresh.into()),
        ..influx
    });
    let path = scratch.write("replay.toml", config.to_toml()).unwrap();
    let output = daemon_env(&mut Command::new(binary("netmon-collector")))
        .args(["replay", "influx", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "replay influx failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Every stored event (the canaries too) has its point, and the agent's are the right ones.
    let all: Vec<_> = collector
        .events(&[])
        .unwrap()
        .into_iter()
        .filter(|e| !e.envelope.event.is_alerting())
        .filter_map(|e| expected(&e))
        .collect();
    let mut total = 0;
    for m in ["probe", "link", "agent", "journal"] {
        total += influxd
            .select(fresh, &format!("SELECT * FROM \"{m}\""))
            .unwrap()
            .len();
    }
    assert_eq!(
        total,
        all.len(),
        "points replayed vs stored events that have one"
    );
    assert_influx_matches(&influxd, fresh, AGENT, &events, Duration::from_secs(5));
}
