//! The four modem parsers (`at`, `quectel`, `mmcli`, `uqmi` in `agent/src/cellular/`): the first
//! byte picks the format, the rest is the modem's answer (UTF-8, lossy).
//!
//! Asserts: no parser panics; a PLMN the parser made is `MCC-MNC`; and what the agent does with the
//! result, as its reader and `ModemState` do it, yields only events the collector accepts: a
//! reading that passes the reader's `Signal::check` gate becomes `cellular_signal_sampled` (and
//! change events) that validate, and a parse error becomes a `modem_stopped_answering` that
//! validates. The parsers pass the modem's numbers through; refusing implausible ones is the
//! gate's job, so a signal that fails `check` is not a fault here.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use netmon_agent::cellular::modem::ModemState;
use netmon_agent::cellular::quality::Thresholds;
use netmon_agent::cellular::{self, Format};
use netmon_events::{AgentId, BootId, Envelope, Event};

fn envelope(event: Event) -> Envelope {
    Envelope {
        v: 1,
        agent: AgentId::new("fuzz-agent").expect("a valid agent id"),
        boot: BootId::new("b1").expect("a valid boot id"),
        seq: 1,
        time: Utc
            .with_ymd_and_hms(2026, 12, 2, 2, 0, 0)
            .single()
            .unwrap_or_default(),
        mono_ms: 1000,
        event,
    }
}

fn assert_valid(events: Vec<Event>, input: &str) {
    for event in events {
        let envelope = envelope(event);
        if let Err(e) = envelope.validate() {
            panic!(
                "the agent makes an event the collector refuses: {e}\n{envelope:?}\ninput {input:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let format = match which % 4 {
        0 => Format::At,
        1 => Format::Quectel,
        2 => Format::Mmcli,
        _ => Format::Uqmi,
    };
    let text = String::from_utf8_lossy(rest);
    let mut modem = ModemState::new("modem-1", Thresholds::default(), 1, 1);
    match cellular::parse(format, &text) {
        Ok(signal) => {
            if let Some(plmn) = &signal.plmn {
                let ok = plmn.len() >= 6
                    && plmn.len() <= 7
                    && plmn.as_bytes()[3] == b'-'
                    && plmn
                        .bytes()
                        .enumerate()
                        .all(|(i, b)| i == 3 || b.is_ascii_digit());
                assert!(ok, "a parser made the PLMN {plmn:?}");
            }
            if signal.check().is_ok() {
                // Twice, so that a change confirmed over readings is emitted too; then lost.
                let again = signal.clone();
                assert_valid(modem.observe(signal, 1000), &text);
                assert_valid(modem.observe(again, 2000), &text);
                assert_valid(modem.failed("no answer", 3000), &text);
            }
        }
        Err(e) => {
            // What the reader reports for an unreadable answer (reader.rs).
            let error = format!("unreadable {} answer: {e}", format.name());
            assert_valid(modem.failed(&error, 1000), &text);
        }
    }
});
