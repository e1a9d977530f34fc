//! Report windows and compact batches on the wire (ADR 14), the daemon against a real Mosquitto:
//! at the shipped defaults one `probe_window_completed` per target per window and no rounds, all
//! of a window in one message; the header's target table until the description is acknowledged,
//! and for good once the journal dropped it.

use std::time::Duration;

use netmon_events::Event;

use crate::observe::{Agent, Message, Setup, targets, until_journal};

/// How long the shipped `probe.report_every` is.
const DEFAULT_WINDOW_MS: u64 = 60_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_defaults_one_window_per_target_per_minute_and_no_rounds() {
    let mut setup = Setup::start("windows-defaults").await;
    // Nothing but the broker, the journal and the targets: every probe, report and heartbeat
    // setting is the shipped default (1 s rounds of 3 echoes, 1 min windows, 5 min heartbeat).
    let config = setup.config("", "", &targets(4, 0));
    assert_eq!(
        config.probe.report_every.as_millis(),
        u128::from(DEFAULT_WINDOW_MS)
    );
    let observer = &mut setup.observer;
    let agent = Agent::start(config);

    // Until the first full window is out (a minute after the start), then stop a few seconds into
    // the next: its partial window follows at shutdown.
    let mut messages: Vec<Message> = Vec::new();
    tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let message = observer.next().await.expect("no offline before shutdown");
            let full = message.events.iter().any(|e| {
                matches!(e.event, Event::ProbeWindowCompleted { window_ms, .. } if window_ms == DEFAULT_WINDOW_MS)
            });
            messages.push(message);
            if full {
                return;
            }
        }
    })
    .await
    .expect("the first window's summaries within 90 s");
    // The experiment: a second window of 3 s, cut short by the shutdown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    agent.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = observer.next().await {
            messages.push(message);
        }
    })
    .await
    .expect("offline after shutdown");
    agent.stopped().await;

    let kinds: Vec<Vec<&str>> = messages
        .iter()
        .map(|m| m.events.iter().map(|e| e.event.type_name()).collect())
        .collect();
    let window = vec!["probe_window_completed"; 4];
    // Three messages: the start, the window of every target at once, the partial windows.
    assert_eq!(
        kinds,
        [
            vec!["agent_started", "targets_described"],
            window.clone(),
            window
        ],
        "what was recorded together went in one message"
    );
    // The budget (ADR 14): at most 100 MB of topic and payload per 30-day month; the window
    // message is all a quiet agent sends but for a heartbeat every 5 minutes (~300 B).
    let month = messages[1].bytes * 30 * 24 * 60 + 300 * 30 * 24 * 12;
    eprintln!(
        "window message: {} B of topic and payload; about {:.1} MB a month with the heartbeats",
        messages[1].bytes,
        month as f64 / 1e6
    );
    assert!(
        month <= 100_000_000,
        "{} B a minute: {month} B a month",
        messages[1].bytes
    );
    let full = &messages[1].events;
    let partial = &messages[2].events;
    let mut seen = Vec::new();
    for e in full {
        let Event::ProbeWindowCompleted {
            target,
            window_ms,
            rounds,
            failed_rounds,
            down_ms,
            sent,
            received,
            rtt_pct_ms,
            ..
        } = &e.event
        else {
            unreachable!()
        };
        assert_eq!(*window_ms, DEFAULT_WINDOW_MS);
        assert!(
            (59..=60).contains(rounds),
            "{rounds} rounds of 1 s in a minute"
        );
        assert_eq!((*failed_rounds, *down_ms), (0, 0), "loopback answers");
        assert_eq!((*sent, *received), (3 * rounds, 3 * rounds));
        assert_eq!(rtt_pct_ms.as_ref().map(Vec::len), Some(9));
        seen.push(target.address);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "one window per target");
    for e in partial {
        assert!(
            matches!(
                e.event,
                Event::ProbeWindowCompleted { window_ms, rounds, .. }
                    if (2_500..DEFAULT_WINDOW_MS).contains(&window_ms) && (2..=5).contains(&rounds)
            ),
            "{e:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_carries_the_targets_until_the_description_is_acknowledged() {
    let mut setup = Setup::start("windows-header").await;
    // A heartbeat a second: a message a second to look at.
    let config = setup.config(
        "",
        "[probe]\nreport_every = \"10s\"\n[heartbeat]\ninterval = \"1s\"\n",
        &targets(3, 0),
    );
    let described = netmon_events::DescribedTarget::numbered(&config.targets);
    let (journal, observer) = (&setup.journal, &mut setup.observer);
    let agent = Agent::start(config);

    // Before any acknowledgement: every message carries the table.
    let mut boot = None;
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(10), observer.next())
            .await
            .expect("a message within 10 s")
            .unwrap();
        assert_eq!(message.header_targets.as_ref(), Some(&described));
        boot.get_or_insert(message.sender.clone());
    }
    let boot = boot.unwrap();
    // The collector stored the description (seq 2) and everything before it.
    observer.acknowledge(&boot, 2).await;
    until_journal(journal, "the watermark reaches the description", |i| {
        i.acked.seq_for(&boot) == Some(2)
    })
    .await;
    // Messages built before the ack arrived may still carry it; from the first that does not,
    // none does, and the events still name their targets (by key, from the stored table).
    let mut without = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while without < 12 {
            let message = observer.next().await.unwrap();
            match (&message.header_targets, without) {
                (Some(_), 0) => {}
                (Some(_), _) => panic!("the table again after it was acknowledged: {message:?}"),
                (None, _) => without += 1,
            }
        }
    })
    .await
    .expect("messages without the table after the acknowledgement");
    agent.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = observer.next().await {
            assert_eq!(message.header_targets, None);
            // The partial windows at shutdown name their targets by key: stored table.
            for e in &message.events {
                if let Some(target) = e.event.target() {
                    assert!(described.iter().any(|d| &d.target == target));
                }
            }
        }
    })
    .await
    .expect("offline after shutdown");
    agent.stopped().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_description_the_journal_dropped_stays_in_the_header() {
    let mut setup = Setup::start("windows-overflow").await;
    // Nothing is acknowledged while 100 targets with long names fill the smallest journal
    // (64 KiB) at the first 10 s window: the oldest events, the description among them, are
    // dropped unsent-for-sure (published, but never acknowledged).
    let config = setup.config(
        "max_bytes = 65536",
        "[probe]\ncount = 1\nreport_every = \"10s\"\n[heartbeat]\ninterval = \"1s\"\n",
        &targets(100, 180),
    );
    let (journal, observer) = (&setup.journal, &mut setup.observer);
    let agent = Agent::start(config);

    let (boot, declared) = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let message = observer.next().await.unwrap();
            assert!(
                message.header_targets.is_some(),
                "nothing is acknowledged yet"
            );
            for e in &message.events {
                if let Event::JournalOverflowed {
                    dropped_boot,
                    first_seq,
                    last_seq,
                    ..
                } = &e.event
                {
                    assert_eq!(dropped_boot, &e.boot);
                    assert!(
                        *first_seq <= 2 && 2 <= *last_seq,
                        "{first_seq}..={last_seq}"
                    );
                    return (e.boot.clone(), e.seq);
                }
            }
        }
    })
    .await
    .expect("the journal overflowed and said so within 30 s");
    // The collector stored the journal_overflowed: its watermark passes the description as
    // declared lost, not stored.
    observer.acknowledge(&boot, declared).await;
    until_journal(journal, "the watermark passes the declaration", |i| {
        i.acked.seq_for(&boot) == Some(declared)
    })
    .await;
    let mut after = 0;
    tokio::time::timeout(Duration::from_secs(30), async {
        while after < 5 {
            let message = observer.next().await.unwrap();
            assert!(
                message.header_targets.is_some(),
                "the dropped description is carried in the header: {message:?}"
            );
            if message.events[0].seq > declared {
                after += 1;
            }
        }
    })
    .await
    .expect("messages after the acknowledgement");
    agent.shutdown.cancel();
    agent.stopped().await;
}
