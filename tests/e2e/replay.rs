//! Event sourcing's promise: a collector restarted on the same store serves the same state.

use std::time::Duration;

use netmon_events::encode_batch;
use netmon_tests::{Collector, Scratch, publish, shared_url, unique, wait_for};
use serde_json::Value;

use netmon_events::testing::{Boot, came_back, events_topic, round, started, target, went_down};

#[test]
fn replay_after_restart_gives_identical_state() {
    let scratch = Scratch::new("replay").unwrap();
    let province = unique("replay");
    let mut collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let url = shared_url();

    // Thôn Giang Trung: up, down, back. Thôn Thọ Liên: up, then down (and stays down).
    let commune = target("UBND xã Cẩm Tú", "10.20.0.1");
    let kien_tho = target("UBND xã Kiên Thọ", "10.21.0.1");
    let mut a = Boot::new("giang-trung");
    let mut b = Boot::new("tho-lien");
    let mut a_events = vec![
        a.next(started()),
        a.next(round(&commune, 3)),
        a.next(round(&commune, 2)),
    ];
    let down_since = a.time() + chrono::Duration::seconds(1);
    for _ in 0..3 {
        a_events.push(a.next(round(&commune, 0)));
    }
    a_events.push(a.next(went_down(&commune, down_since)));
    a_events.push(a.next(round(&commune, 3)));
    a_events.push(a.next(came_back(&commune, down_since, 4000)));
    a_events.push(a.next(round(&commune, 3)));
    let mut b_events = vec![b.next(started()), b.next(round(&kien_tho, 3))];
    let b_since = b.time() + chrono::Duration::seconds(1);
    for _ in 0..3 {
        b_events.push(b.next(round(&kien_tho, 0)));
    }
    b_events.push(b.next(went_down(&kien_tho, b_since)));

    // In batches, as an agent with a backlog sends them.
    for (agent, events) in [("giang-trung", &a_events), ("tho-lien", &b_events)] {
        let topic = events_topic(&province, agent);
        for batch in events.chunks(4) {
            publish(&url, &topic, &encode_batch(batch)).unwrap();
        }
    }

    let expected = [
        ("giang-trung", a_events.len()),
        ("tho-lien", b_events.len()),
    ];
    let before = wait_for(
        "both agents fully folded into /api/v1/state",
        Duration::from_secs(20),
        || {
            let (code, body) = collector.get("/api/v1/state").ok()?;
            let state: Value = serde_json::from_str(&body).ok()?;
            let folded = expected.iter().all(|(agent, n)| {
                state["agents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|view| {
                        view["agent"] == *agent && view["last_seq"].as_u64() == Some(*n as u64)
                    })
            });
            (code == 200 && folded).then_some((body, state))
        },
    );
    let (before_body, state) = before;
    let link = |agent: &str| {
        state["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["agent"] == agent)
            .unwrap_or_else(|| panic!("no link of {agent} in {state}"))
            .clone()
    };
    assert_eq!(link("giang-trung")["status"], "up", "{state}");
    assert_eq!(link("tho-lien")["status"], "down", "{state}");
    assert_eq!(link("tho-lien")["name"], "UBND xã Kiên Thọ", "{state}");

    collector.restart("collector", &scratch).unwrap();
    let (code, after_body) = collector.get("/api/v1/state").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        after_body, before_body,
        "replaying the store must rebuild identical state"
    );
}
