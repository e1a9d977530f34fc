//! Clock trust: an agent whose wall clock is wrong (a router without RTC that booted in 1970, or
//! one whose clock jumps two days ahead) still gets true times in the store. The agent runs under
//! libfaketime (`LD_PRELOAD`) with `FAKETIME_DONT_FAKE_MONOTONIC=1`, so only its wall clock lies; its monotonic
//! clock (`mono_ms`, the batches' `sender.mono_ms`) stays true, and the collector corrects from it.
//! Each stored event keeps the agent's own `time` in the envelope and carries the effective one in
//! `stored.time`, with `stored.clock` saying which it is.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_tests::ledger::wait_ledger;
use netmon_tests::{Agent, Collector, Launch, Scratch, StoredEvent, shared_url, unique};

use crate::delivery::{fast_agent, finish};

/// How far a corrected time may be from the receive time (publishing is immediate here).
const TOLERANCE_MS: i64 = 5_000;

/// libfaketime's preload library, wherever the Debian package put it.
fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("libfaketime not found in {candidates:?}: apt-get install faketime")
        })
}

/// Starts a fast agent on the shared broker under libfaketime with `faked` settings. Only its
/// wall clock lies (`FAKETIME_DONT_FAKE_MONOTONIC=1`). This is what `faketime … netmon-agent run`
/// does, without the `faketime` process in between (it would take the test's SIGTERM itself).
fn start_faked(
    agent_id: &str,
    province: &str,
    scratch: &Scratch,
    faked: &[(&str, String)],
) -> Agent {
    let mut env = vec![
        ("LD_PRELOAD".to_owned(), libfaketime().display().to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
    ];
    env.extend(faked.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Agent::start_with(
        "agent",
        fast_agent(agent_id, province, &shared_url()),
        scratch,
        None,
        Launch { env },
    )
    .unwrap()
}

/// Asserts the collector replaced the agent's wall time: `clock == "corrected"` and the effective
/// time is within [`TOLERANCE_MS`] of when the collector received the event.
fn assert_corrected(event: &StoredEvent) {
    assert_eq!(event.clock(), Some("corrected"), "{}", event.line);
    let time = event
        .effective_time()
        .unwrap_or_else(|| panic!("no stored.time: {}", event.line));
    let received = event.received().unwrap();
    let off = (time - received).num_milliseconds().abs();
    assert!(
        off <= TOLERANCE_MS,
        "corrected time {off} ms from receipt: {}",
        event.line
    );
}

fn year(time: DateTime<Utc>) -> i32 {
    chrono::Datelike::year(&time)
}

#[test]
fn clock_1970_is_corrected() {
    let scratch = Scratch::new("clock-1970").unwrap();
    let province = unique("clock");
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let agent_id = unique("phu-vinh");
    let mut agent = start_faked(
        &agent_id,
        &province,
        &scratch,
        &[("FAKETIME", "@1970-01-01 00:00:00".into())],
    );

    let (_, events) = wait_ledger(
        &collector,
        &agent_id,
        "20 events of the 1970 agent",
        Duration::from_secs(30),
        |ledger, _| ledger.tally().stored >= 20,
    );
    for event in &events {
        assert_eq!(
            year(event.envelope.time),
            1970,
            "faketime must set the agent's wall clock: {}",
            event.line
        );
        assert_corrected(event);
    }
    finish(&collector, &mut agent, &province, "clock 1970");
}

#[test]
fn clock_jump_forward_is_corrected() {
    let scratch = Scratch::new("clock-jump").unwrap();
    let province = unique("clock");
    let collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let agent_id = unique("phong-thai");
    // libfaketime rereads the file at every clock call (no cache): "+0" is the true time.
    let offset = scratch.write("faketime", "+0\n").unwrap();
    let mut agent = start_faked(
        &agent_id,
        &province,
        &scratch,
        &[
            ("FAKETIME_TIMESTAMP_FILE", offset.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
        ],
    );

    // Before the jump the agent's clock is right and kept.
    let (ledger, before) = wait_ledger(
        &collector,
        &agent_id,
        "10 events before the jump",
        Duration::from_secs(30),
        |ledger, _| ledger.tally().stored >= 10,
    );
    for event in &before {
        assert_eq!(event.clock(), Some("agent"), "{}", event.line);
        assert_eq!(
            event.effective_time(),
            Some(event.envelope.time),
            "{}",
            event.line
        );
        assert_eq!(event.late(), Some(false), "{}", event.line);
    }
    let stored_before = ledger.tally().stored;

    std::fs::write(&offset, "+2d\n").unwrap();
    let jumped = |events: &[StoredEvent]| -> Vec<StoredEvent> {
        events
            .iter()
            .filter(|e| e.envelope.time > Utc::now() + chrono::Duration::days(1))
            .cloned()
            .collect()
    };
    let (_, events) = wait_ledger(
        &collector,
        &agent_id,
        "20 events stamped two days ahead",
        Duration::from_secs(30),
        |_, events| jumped(events).len() >= 20,
    );
    let after = jumped(&events);
    for event in &after {
        assert_corrected(event);
        assert_eq!(event.late(), Some(false), "{}", event.line);
    }
    eprintln!(
        "clock jump: {stored_before} events kept the agent's time, {} corrected after +2d",
        after.len()
    );
    finish(&collector, &mut agent, &province, "clock jump +2d");
}
