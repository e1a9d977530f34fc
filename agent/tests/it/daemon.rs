//! The daemon against a real Mosquitto (started by the test on a free loopback port, stopped at
//! the end): retained status, gap-free events, graceful shutdown with `offline`; acknowledgements
//! trimming the journal, and a restarted agent resending the previous boot's unacknowledged
//! events.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netmon_events::{AgentStatus, Event};

use crate::observe::{Agent, Setup, targets, until_journal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_status_and_gap_free_events_and_stops_cleanly() {
    let mut setup = Setup::start("daemon").await;
    let config = setup.config(
        "",
        "[probe]\ninterval = \"200ms\"\ncount = 2\nreport_every = \"10s\"\n[heartbeat]\ninterval = \"1s\"\n",
        &targets(2, 0),
    );
    let observer = &mut setup.observer;
    let agent = Agent::start(config);
    let online = tokio::time::timeout(Duration::from_secs(10), observer.next_status())
        .await
        .expect("online within 10 s");
    assert!(matches!(online, AgentStatus::Online { .. }), "{online:?}");
    let mut events = Vec::new();
    let collect = async {
        while let Some(message) = observer.next().await {
            events.extend(message.events);
            let beats = events
                .iter()
                .filter(|e| matches!(e.event, Event::AgentHeartbeat { .. }))
                .count();
            if beats >= 1 {
                agent.shutdown.cancel();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("the agent published its start, a heartbeat and, at shutdown, offline within 20 s");
    agent.stopped().await;

    let kinds: Vec<&str> = events.iter().map(|e| e.event.type_name()).collect();
    assert_eq!(
        kinds[..2],
        ["agent_started", "targets_described"],
        "{kinds:?}"
    );
    assert!(matches!(
        events[0].event,
        Event::AgentStarted { targets: 2, .. }
    ));
    let boot = &events[0].boot;
    assert!(events.iter().all(|e| &e.boot == boot));
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "gap-free from 1"
    );
    assert!(!kinds.contains(&"probe_round_completed"), "{kinds:?}");
    // Stopped inside the first window: its partial summaries, one per target.
    let windows: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::ProbeWindowCompleted {
                target,
                window_ms,
                rounds,
                sent,
                received,
                ..
            } => Some((target.address, *window_ms, *rounds, *sent, *received)),
            _ => None,
        })
        .collect();
    assert_eq!(windows.len(), 2, "{windows:?}");
    assert_ne!(windows[0].0, windows[1].0);
    for (_, window_ms, rounds, sent, received) in windows {
        assert!(
            window_ms < 10_000 && rounds >= 1,
            "{window_ms} ms, {rounds} rounds"
        );
        assert_eq!(
            (sent, received),
            (2 * rounds, 2 * rounds),
            "loopback answers every echo"
        );
    }
}

fn segment_files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_trim_the_journal_and_a_restart_resends_what_was_not_acknowledged() {
    const ACKED: u64 = 60;
    let mut setup = Setup::start("daemon-ack").await;
    // 100 targets with long names, a window every 10 s: ~70 KB of events per window; 16 KiB
    // segments hold ~23 of them.
    let config = setup.config(
        "max_bytes = 262144",
        "[probe]\ncount = 1\nreport_every = \"10s\"\n[heartbeat]\ninterval = \"1s\"\n",
        &targets(100, 180),
    );
    let journal = setup.journal.clone();
    let observer = &mut setup.observer;

    // First run: wait for more than ACKED events, acknowledge up to ACKED (retained, as the
    // collector does), check the journal trims, stop.
    let agent = Agent::start(config.clone());
    let mut first_boot = None;
    let mut seen = 0u64;
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen < ACKED + 30 {
            let message = observer.next().await.unwrap();
            for e in message.events {
                first_boot.get_or_insert(e.boot.clone());
                seen = seen.max(e.seq);
            }
        }
    })
    .await
    .expect("the agent published 90 events within 20 s");
    let first_boot = first_boot.unwrap();
    let oldest_segment = segment_files(&journal).into_iter().next().unwrap();
    observer.acknowledge(&first_boot, ACKED).await;
    let wanted = Some((first_boot.clone(), ACKED + 1));
    until_journal(
        &journal,
        "the watermark is persisted and the backlog starts above it",
        |i| i.acked.seq_for(&first_boot) == Some(ACKED) && i.backlog.oldest == wanted,
    )
    .await;
    assert!(
        !oldest_segment.exists(),
        "the segment holding seq 1 is deleted once acknowledged"
    );
    agent.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        while observer.next().await.is_some() {}
    })
    .await
    .expect("offline after shutdown");
    agent.stopped().await;
    let left = netmon_agent::journal::inspect(&journal).unwrap();
    let Some((boot, last)) = left.backlog.newest.clone() else {
        panic!("events above the watermark stay in the journal: {left:?}");
    };
    assert_eq!(boot, first_boot);
    assert_eq!(left.backlog.oldest, Some((first_boot.clone(), ACKED + 1)));

    // Second run on the same journal: it resends exactly the first boot's unacknowledged events,
    // first, in order, in batches sent by the new boot, each carrying its own target table (the
    // earlier boot's description is acknowledged: the header rebuilds one from the events).
    let agent = Agent::start(config);
    let mut resent: Vec<u64> = Vec::new();
    let mut second_boot = None;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let message = observer.next().await.unwrap();
            assert_ne!(message.sender, first_boot);
            second_boot.get_or_insert(message.sender.clone());
            let first_of_boot = message.events[0].boot == first_boot;
            if first_of_boot && message.events.iter().any(|e| e.event.target().is_some()) {
                assert!(
                    message.header_targets.is_some(),
                    "an earlier boot's batch carries a table"
                );
            }
            for e in message.events {
                if e.boot == first_boot {
                    resent.push(e.seq);
                } else {
                    assert_eq!(Some(&e.boot), second_boot.as_ref());
                    assert!(!first_of_boot, "a batch holds one boot's events");
                    assert_eq!(
                        resent.last(),
                        Some(&last),
                        "earlier boots first: all of it before seq {} of the new boot",
                        e.seq
                    );
                    return;
                }
            }
        }
    })
    .await
    .expect("the restarted agent resent the previous boot within 20 s");
    assert_eq!(
        resent,
        (ACKED + 1..=last).collect::<Vec<_>>(),
        "exactly the unacknowledged events, in order"
    );
    agent.stopped().await;
}
