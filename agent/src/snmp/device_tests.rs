//! Data-driven tests of [`DeviceState`]: snapshots in, events out.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::snmp::mib::Counter;

fn snapshot(uptime_s: u32, octets: u64, oper: i64) -> Snapshot {
    let mut s = Snapshot {
        uptime_ticks: Some(uptime_s * 100),
        sys_name: Some("cam-tu-router".into()),
        ..Snapshot::default()
    };
    s.interfaces.insert(
        2,
        Row {
            name: Some("wan0".into()),
            alias: Some("Cáp quang VNPT về xã".into()),
            high_speed: Some(100),
            oper_status: Some(oper),
            hc_in_octets: Some(Counter::C64(octets)),
            hc_out_octets: Some(Counter::C64(octets / 2)),
            in_errors: Some(Counter::C32(0)),
            ..Row::default()
        },
    );
    s.interfaces.insert(
        3,
        Row {
            name: Some("lan0".into()),
            oper_status: Some(2),
            ..Row::default()
        },
    );
    s
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::type_name).collect()
}

fn wan(capacity_bps: Option<u64>) -> Vec<WatchedInterface> {
    vec![WatchedInterface {
        key: InterfaceKey::Name("wan0".into()),
        capacity_bps,
    }]
}

#[test]
fn samples_from_the_second_poll_with_configured_capacity() {
    let mut d = DeviceState::new("10.20.0.1".into(), wan(Some(8_000_000)));
    assert!(d.observe(&snapshot(100, 0, 1), 0).is_empty());
    assert!(d.report().is_empty(), "one poll measures nothing");
    assert!(d.observe(&snapshot(110, 10_000_000, 1), 10_000).is_empty());
    let events = d.report();
    assert_eq!(kinds(&events), ["interface_counters_sampled"]);
    assert!(d.report().is_empty(), "a report starts a new window");
    let Event::InterfaceCountersSampled {
        device,
        interface,
        in_bps,
        speed_bps,
        in_util_pct,
        out_util_pct,
        interval_ms,
        ..
    } = &events[0]
    else {
        panic!("{events:?}")
    };
    assert_eq!(device.name.as_deref(), Some("cam-tu-router"));
    assert_eq!((interface.index, interface.name.as_str()), (2, "wan0"));
    assert_eq!(*interval_ms, 10_000);
    assert!((in_bps - 8_000_000.0).abs() < 1e-6);
    assert_eq!(*speed_bps, Some(8_000_000), "the configured capacity wins");
    assert_eq!((*in_util_pct, *out_util_pct), (Some(100.0), Some(50.0)));
    for e in &events {
        netmon_events::Envelope {
            v: 1,
            agent: "a".parse().unwrap(),
            boot: "b".parse().unwrap(),
            seq: 1,
            time: chrono::Utc::now(),
            mono_ms: 0,
            event: e.clone(),
        }
        .validate()
        .unwrap();
    }
}

#[test]
fn every_interface_without_a_watch_list_and_reported_speed() {
    let mut d = DeviceState::new("10.20.0.1".into(), Vec::new());
    d.observe(&snapshot(100, 0, 1), 0);
    // lan0 has no octet counters: no sample, and being down from the start is not news.
    assert!(d.observe(&snapshot(110, 1_250_000, 1), 10_000).is_empty());
    let events = d.report();
    assert_eq!(kinds(&events), ["interface_counters_sampled"]);
    let Event::InterfaceCountersSampled {
        speed_bps,
        in_util_pct,
        ..
    } = &events[0]
    else {
        panic!()
    };
    assert_eq!(*speed_bps, Some(100_000_000));
    assert_eq!(*in_util_pct, Some(1.0));
}

#[test]
fn a_reboot_is_reported_once_and_never_a_spike() {
    let mut d = DeviceState::new("10.20.0.1".into(), wan(None));
    d.observe(&snapshot(864_000, 9_000_000_000, 1), 0);
    d.observe(&snapshot(864_010, 9_000_100_000, 1), 10_000);
    assert_eq!(kinds(&d.report()), ["interface_counters_sampled"]);
    let events = d.observe(&snapshot(3, 500, 1), 20_000);
    assert_eq!(kinds(&events), ["device_rebooted"]);
    assert!(
        d.report().is_empty(),
        "the reboot's interval is not measured"
    );
    assert!(matches!(
        events[0],
        Event::DeviceRebooted {
            uptime_s: 3,
            previous_uptime_s: 864_010,
            ..
        }
    ));
    // The next poll measures from the new baseline.
    assert!(d.observe(&snapshot(13, 1_250_500, 1), 30_000).is_empty());
    let events = d.report();
    assert_eq!(kinds(&events), ["interface_counters_sampled"]);
    let Event::InterfaceCountersSampled { in_bps, .. } = &events[0] else {
        panic!()
    };
    assert!((in_bps - 1_000_000.0).abs() < 1e-6);
}

#[test]
fn uptime_shorter_than_the_gap_is_a_reboot_and_a_ticks_wrap_is_not() {
    // Polled 10 min apart, the device says it has been up 60 s: it restarted in between.
    assert!(restarted(10_000, 0, 6_000, 600_000));
    assert!(!restarted(10_000, 0, 70_000, 600_000));
    // TimeTicks wrap after 497 days, exactly when expected.
    let prev = u32::MAX - 500;
    assert!(!restarted(prev, 0, 499, 10_000));
    assert!(restarted(prev, 0, 90_000, 10_000));
}

#[test]
fn oper_status_changes_are_events_with_the_outage_length() {
    let mut d = DeviceState::new("10.20.0.1".into(), wan(None));
    d.observe(&snapshot(100, 0, 1), 0);
    let down = d.observe(&snapshot(110, 0, 2), 10_000);
    assert_eq!(kinds(&down), ["interface_went_down"]);
    assert!(
        d.observe(&snapshot(120, 0, 2), 20_000).is_empty(),
        "still down: nothing new"
    );
    let back = d.observe(&snapshot(130, 0, 1), 42_000);
    assert_eq!(kinds(&back), ["interface_came_back"]);
    // The window's sample covers all three intervals, with the status of the latest poll.
    let report = d.report();
    assert!(matches!(
        report[..],
        [Event::InterfaceCountersSampled {
            interval_ms: 42_000,
            oper_status: OperStatus::Up,
            ..
        }]
    ));
    assert!(matches!(
        back[0],
        Event::InterfaceCameBack {
            down_for_ms: 32_000,
            ..
        }
    ));
    // A configured interface first seen down is reported.
    let mut d = DeviceState::new("10.20.0.1".into(), wan(None));
    assert_eq!(
        kinds(&d.observe(&snapshot(100, 0, 7), 0)),
        ["interface_went_down"]
    );
}

#[test]
fn silence_is_reported_once_backs_off_and_ends() {
    let interval = Duration::from_secs(10);
    let mut d = DeviceState::new("10.20.0.9:161".into(), Vec::new());
    assert_eq!(d.next_delay(interval), interval);
    let first = d.failed("no answer within 2s\n(3 attempts)", 1_000);
    assert_eq!(kinds(&first), ["device_stopped_answering"]);
    let Event::DeviceStoppedAnswering { error, .. } = &first[0] else {
        panic!()
    };
    assert!(!error.contains('\n'));
    assert_eq!(d.next_delay(interval), interval);
    assert!(d.failed("again", 11_000).is_empty());
    assert_eq!(d.next_delay(interval), interval * 2);
    for i in 0..20 {
        assert!(d.failed("again", 20_000 + i).is_empty());
    }
    assert_eq!(d.next_delay(interval), MAX_BACKOFF);
    let back = d.observe(&snapshot(100, 0, 1), 91_000);
    assert_eq!(kinds(&back), ["device_answers_again"]);
    assert!(matches!(
        back[0],
        Event::DeviceAnswersAgain {
            silent_for_ms: 90_000,
            ..
        }
    ));
    assert_eq!(d.next_delay(interval), interval);
    assert_eq!(error_text(&"é".repeat(600)).len(), 512);
}

#[test]
fn missing_configured_interfaces_are_named() {
    let d = DeviceState::new(
        "10.20.0.1".into(),
        vec![
            WatchedInterface {
                key: InterfaceKey::Index(3),
                capacity_bps: None,
            },
            WatchedInterface {
                key: InterfaceKey::Name("wwan0".into()),
                capacity_bps: None,
            },
        ],
    );
    assert_eq!(d.missing(&snapshot(1, 0, 1)), ["wwan0"]);
}

#[test]
fn backoff_doubles_at_most_eight_times_and_never_below_the_interval() {
    let mut d = DeviceState::new("10.20.0.9:161".into(), Vec::new());
    let waits = |d: &mut DeviceState, interval: Duration| -> Vec<u64> {
        (0..12)
            .map(|i| {
                d.failed("no answer", i);
                d.next_delay(interval).as_secs()
            })
            .collect()
    };
    // A 1 s interval stops at 2^8 s, below the 5 min cap.
    assert_eq!(
        waits(&mut d, Duration::from_secs(1)),
        [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 256]
    );
    // An interval longer than the cap is kept as it is.
    let hour = Duration::from_secs(3600);
    d.observe(&snapshot(100, 0, 1), 20);
    assert_eq!(waits(&mut d, hour), [3600; 12]);
}
