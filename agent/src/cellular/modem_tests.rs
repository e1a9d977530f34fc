//! Readings in, events out: each case is a list of steps (a reading or a failure at a monotonic
//! time) and the events, written compactly, that the steps yield.

use netmon_events::{Event, Registration, Signal, Technology};

use super::ModemState;
use crate::cellular::quality::Thresholds;

enum Step {
    /// A reading: time, technology, PLMN, registration, RSRP.
    Read(u64, Technology, Option<&'static str>, Registration, f64),
    /// A failed reading: time, error.
    Fail(u64, &'static str),
}

use Registration::{Home, Searching};
use Step::{Fail, Read};
use Technology::{Lte, Nr5gNsa, Wcdma};

const VT: Option<&str> = Some("452-04");
const VN: Option<&str> = Some("452-02");

fn render(event: &Event) -> String {
    match event {
        Event::CellularSignalSampled {
            signal, quality, ..
        } => format!(
            "sampled {} {}",
            signal.technology.as_str(),
            quality.as_str()
        ),
        Event::CellularTechnologyChanged { from, to, .. } => {
            format!("technology {}>{}", from.as_str(), to.as_str())
        }
        Event::CellularOperatorChanged {
            from_plmn, to_plmn, ..
        } => format!(
            "operator {}>{}",
            from_plmn.as_deref().unwrap_or("?"),
            to_plmn.as_deref().unwrap_or("?")
        ),
        Event::CellularServiceLost {
            last_technology,
            registration,
            plmn,
            ..
        } => format!(
            "lost {} {} {}",
            last_technology.as_str(),
            plmn.as_deref().unwrap_or("-"),
            registration.as_str()
        ),
        Event::CellularServiceRestored {
            technology,
            lost_for_ms,
            ..
        } => format!("restored {} {lost_for_ms}", technology.as_str()),
        Event::ModemStoppedAnswering { error, .. } => format!("stopped {error}"),
        Event::ModemAnswersAgain { silent_for_ms, .. } => format!("again {silent_for_ms}"),
        other => format!("unexpected {}", other.type_name()),
    }
}

/// Runs `steps` with `fail_after` = 3 and `changes_after`; the events other than `sampled`,
/// one string per step that yielded any (joined by `, `).
fn run(changes_after: u32, steps: &[Step]) -> Vec<String> {
    let mut modem = ModemState::new("viettel", Thresholds::default(), 3, changes_after);
    let mut out = Vec::new();
    for step in steps {
        let events = match step {
            Read(at, technology, plmn, registration, rsrp) => {
                let signal = Signal {
                    technology: *technology,
                    plmn: plmn.map(str::to_owned),
                    registration: *registration,
                    rsrp_dbm: Some(*rsrp),
                    ..Signal::default()
                };
                let events = modem.observe(signal, *at);
                assert!(
                    matches!(events.first(), Some(Event::CellularSignalSampled { .. })),
                    "every reading is sampled first"
                );
                events
            }
            Fail(at, error) => modem.failed(error, *at),
        };
        let rendered: Vec<String> = events
            .iter()
            .map(render)
            .filter(|e| !e.starts_with("sampled"))
            .collect();
        if !rendered.is_empty() {
            out.push(rendered.join(", "));
        }
    }
    out
}

#[test]
fn steady_service_yields_only_samples() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Read(60, Lte, VT, Home, -95.0),
        Read(120, Lte, None, Home, -99.0),
        Read(180, Lte, VT, Home, -85.0),
    ];
    assert_eq!(run(2, &steps), Vec::<String>::new());
}

#[test]
fn technology_change_is_confirmed_by_a_second_reading() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Read(60, Nr5gNsa, VT, Home, -85.0),
        Read(120, Lte, VT, Home, -85.0),
        Read(180, Nr5gNsa, VT, Home, -85.0),
        Read(240, Nr5gNsa, VT, Home, -85.0),
        Read(300, Wcdma, VT, Home, -85.0),
        Read(360, Wcdma, VT, Home, -85.0),
    ];
    assert_eq!(
        run(2, &steps),
        ["technology lte>nr5g_nsa", "technology nr5g_nsa>wcdma"]
    );
}

#[test]
fn every_change_at_once_without_damping() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Read(60, Nr5gNsa, VT, Home, -85.0),
        Read(120, Lte, VN, Home, -85.0),
    ];
    assert_eq!(
        run(1, &steps),
        [
            "technology lte>nr5g_nsa",
            "operator 452-04>452-02, technology nr5g_nsa>lte"
        ]
    );
}

#[test]
fn operator_change_on_another_network() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Read(60, Lte, VN, Home, -85.0),
        Read(120, Lte, VN, Home, -85.0),
    ];
    assert_eq!(run(2, &steps), ["operator 452-04>452-02"]);
}

#[test]
fn service_lost_and_restored_with_the_outage_length() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        // One odd reading: no event.
        Read(60_000, Technology::None, None, Searching, -140.0),
        Read(120_000, Lte, VT, Home, -85.0),
        Read(180_000, Technology::None, None, Searching, -140.0),
        Read(
            240_000,
            Technology::None,
            None,
            Registration::Denied,
            -140.0,
        ),
        Read(300_000, Lte, VT, Home, -85.0),
        Read(360_000, Lte, VT, Home, -85.0),
    ];
    assert_eq!(
        run(2, &steps),
        ["lost lte 452-04 denied", "restored lte 120000"]
    );
}

#[test]
fn registered_on_technology_none_is_no_service() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Read(1_000, Technology::None, VT, Home, -85.0),
        Read(2_000, Nr5gNsa, VT, Home, -85.0),
    ];
    assert_eq!(
        run(1, &steps),
        ["lost lte 452-04 home", "restored nr5g_nsa 1000"]
    );
}

#[test]
fn no_service_from_the_start_is_reported() {
    let steps = [
        Read(0, Technology::None, None, Searching, -140.0),
        Read(60, Technology::None, None, Searching, -140.0),
        Read(120, Technology::None, None, Searching, -140.0),
        Read(180, Lte, VT, Home, -85.0),
        Read(240, Lte, VT, Home, -85.0),
    ];
    assert_eq!(
        run(2, &steps),
        ["lost none - searching", "restored lte 180"]
    );
}

#[test]
fn stopped_answering_after_three_failures_then_answers_again() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Fail(10_000, "timeout"),
        Fail(20_000, "timeout"),
        Read(30_000, Lte, VT, Home, -85.0),
        Fail(40_000, "timeout"),
        Fail(50_000, "ERROR"),
        Fail(60_000, "garbage"),
        Fail(70_000, "timeout"),
        Read(80_000, Lte, VT, Home, -85.0),
    ];
    assert_eq!(run(2, &steps), ["stopped garbage", "again 40000"]);
}

#[test]
fn answering_again_with_another_service_says_both() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Fail(1_000, "hang"),
        Fail(2_000, "hang"),
        Fail(3_000, "hang"),
        Read(4_000, Technology::None, None, Searching, -140.0),
    ];
    assert_eq!(
        run(1, &steps),
        ["stopped hang", "again 3000, lost lte 452-04 searching"]
    );
}

#[test]
fn a_reading_without_its_plmn_keeps_the_known_network() {
    let steps = [
        Read(0, Lte, VT, Home, -85.0),
        Read(60, Lte, None, Home, -85.0),
        Read(120, Lte, VT, Home, -85.0),
        Read(180, Lte, None, Home, -85.0),
        Read(240, Nr5gNsa, None, Home, -85.0),
        Read(300, Nr5gNsa, None, Home, -85.0),
        Read(360, Nr5gNsa, VN, Home, -85.0),
    ];
    assert_eq!(
        run(1, &steps),
        ["technology lte>nr5g_nsa", "operator 452-04>452-02"]
    );
}
