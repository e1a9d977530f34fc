//! The daemon against a real Mosquitto (started by the test on a free loopback port, stopped at
//! the end): retained status, gap-free events, graceful shutdown with `offline`; acknowledgements
//! trimming the journal, and a restarted agent resending the previous boot's unacknowledged
//! events.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netmon_agent::Config;
use netmon_events::{Ack, AgentStatus, BootAck, BootId, Envelope, Event, decode_batch};
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, QoS};
use tokio_util::sync::CancellationToken;

use netmon_harness::{LocalBroker, Scratch, poll_until_async};

/// An agent config for `broker` with its journal in `journal`; `probe_interval` paces the events.
fn agent_config(dir: &Scratch, port: u16, journal: &Path, probe_interval: &str) -> Config {
    let path = dir
        .write(
            "agent.toml",
            format!(
                r#"
agent_id = "hue-phu-vinh-01"
province = "hue"
[mqtt]
url = "mqtt://127.0.0.1:{port}"
[probe]
interval = "{probe_interval}"
count = 2
[heartbeat]
interval = "1s"
[journal]
dir = "{}"
max_bytes = 262144
fsync_interval = "100ms"
[[targets]]
name = "UBND xã Phú Vinh"
address = "127.80.0.1"
role = "commune"
[[targets]]
name = "Nhà văn hoá thôn"
address = "127.80.0.2"
role = "gateway"
"#,
                journal.display()
            ),
        )
        .unwrap();
    Config::load_with_env(&path, Some(Default::default())).unwrap()
}

/// A client subscribed to `netmon/v1/#` (subscribed when this returns: nothing is missed).
async fn observer(port: u16) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new("test-observer", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (observer, mut observed) = AsyncClient::new(options, 16);
    observer
        .subscribe("netmon/v1/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    loop {
        if let MqttEvent::Incoming(Packet::SubAck(_)) = observed.poll().await.unwrap() {
            return (observer, observed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_status_and_gap_free_events_and_stops_cleanly() {
    let dir = Scratch::new("daemon").unwrap();
    let broker = LocalBroker::start("mosquitto", &dir).unwrap();
    let config = agent_config(&dir, broker.port, &dir.path().join("journal"), "200ms");
    let (_observer, mut observed) = observer(broker.port).await;

    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(netmon_agent::run(config, shutdown.clone()));
    let mut events: Vec<Envelope> = Vec::new();
    let mut statuses: Vec<AgentStatus> = Vec::new();
    let mut stopping = false;
    let collect = async {
        loop {
            let MqttEvent::Incoming(Packet::Publish(p)) = observed.poll().await.unwrap() else {
                continue;
            };
            if p.topic == "netmon/v1/hue/hue-phu-vinh-01/status" {
                statuses.push(AgentStatus::from_json(&p.payload).unwrap());
                if statuses.last() == Some(&AgentStatus::Offline) {
                    return;
                }
            } else {
                assert_eq!(p.topic, "netmon/v1/hue/hue-phu-vinh-01/events");
                for e in decode_batch(&p.payload).unwrap().events {
                    events.push(e.unwrap());
                }
                let rounds = events
                    .iter()
                    .filter(|e| matches!(e.event, Event::ProbeRoundCompleted { .. }))
                    .count();
                let beats = events
                    .iter()
                    .filter(|e| matches!(e.event, Event::AgentHeartbeat { .. }))
                    .count();
                if rounds >= 6 && beats >= 1 && !stopping {
                    stopping = true;
                    shutdown.cancel();
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("the agent published rounds, a heartbeat and, at shutdown, offline within 20 s");
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert!(
        matches!(statuses.first(), Some(AgentStatus::Online { .. })),
        "{statuses:?}"
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
    for e in &events {
        if let Event::ProbeRoundCompleted { sent, received, .. } = e.event {
            assert_eq!((sent, received), (2, 2), "loopback answers every echo");
        }
    }
}

const EVENTS: &str = "netmon/v1/hue/hue-phu-vinh-01/events";
const STATUS: &str = "netmon/v1/hue/hue-phu-vinh-01/status";
const ACK: &str = "netmon/v1/hue/hue-phu-vinh-01/ack";

/// What the observer saw on the events topic: the batch's sender boot and its events.
async fn next_batch(observed: &mut EventLoop) -> Option<(Option<BootId>, Vec<Envelope>)> {
    loop {
        let MqttEvent::Incoming(Packet::Publish(p)) = observed.poll().await.unwrap() else {
            continue;
        };
        if p.topic == STATUS {
            if AgentStatus::from_json(&p.payload).unwrap() == AgentStatus::Offline {
                return None;
            }
            continue;
        }
        if p.topic != EVENTS {
            continue;
        }
        let batch = decode_batch(&p.payload).unwrap();
        let sender = batch.sender.map(|s| s.boot);
        return Some((
            sender,
            batch.events.into_iter().map(Result::unwrap).collect(),
        ));
    }
}

/// Polls the read-only journal view until `check` holds (bounded: 10 s).
async fn until_journal(
    dir: &Path,
    what: &str,
    check: impl Fn(&netmon_agent::journal::Inspection) -> bool,
) {
    let held = poll_until_async(Duration::from_secs(10), || async {
        let inspection = netmon_agent::journal::inspect(dir).ok()?;
        check(&inspection).then_some(())
    })
    .await;
    if held.is_none() {
        panic!("{what}: {:?}", netmon_agent::journal::inspect(dir));
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
    let dir = Scratch::new("daemon-ack").unwrap();
    let broker = LocalBroker::start("mosquitto", &dir).unwrap();
    let journal = dir.path().join("journal");
    // 2 targets every 100 ms: 20 events/s; 16 KiB segments hold ~45 events each.
    let config = agent_config(&dir, broker.port, &journal, "100ms");
    let (observer, mut observed) = observer(broker.port).await;

    // First run: wait for more than ACKED events, acknowledge up to ACKED (retained, as the
    // collector does), check the journal trims, stop.
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(netmon_agent::run(config.clone(), shutdown.clone()));
    let mut first_boot = None;
    let mut seen = 0u64;
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen < ACKED + 30 {
            let (_, events) = next_batch(&mut observed).await.unwrap();
            for e in events {
                first_boot.get_or_insert(e.boot.clone());
                seen = seen.max(e.seq);
            }
        }
    })
    .await
    .expect("the agent published 90 events within 20 s");
    let first_boot = first_boot.unwrap();
    let oldest_segment = segment_files(&journal).into_iter().next().unwrap();
    let ack = Ack {
        acks: vec![BootAck {
            boot: first_boot.clone(),
            seq: ACKED,
        }],
    };
    observer
        .publish(ACK, QoS::AtLeastOnce, true, ack.to_json())
        .await
        .unwrap();
    // The observer's requests go out while its event loop is polled: until the broker has it.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let MqttEvent::Incoming(Packet::PubAck(_)) = observed.poll().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("the broker took the retained ack");
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
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), async {
        while next_batch(&mut observed).await.is_some() {}
    })
    .await
    .expect("offline after shutdown");
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let left = netmon_agent::journal::inspect(&journal).unwrap();
    let Some((boot, last)) = left.backlog.newest.clone() else {
        panic!("events above the watermark stay in the journal: {left:?}");
    };
    assert_eq!(boot, first_boot);
    assert_eq!(left.backlog.oldest, Some((first_boot.clone(), ACKED + 1)));

    // Second run on the same journal: it resends exactly the first boot's unacknowledged events,
    // first, in order, in batches sent by the new boot.
    let shutdown = CancellationToken::new();
    let agent = tokio::spawn(netmon_agent::run(config, shutdown.clone()));
    let mut resent: Vec<u64> = Vec::new();
    let mut second_boot = None;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (sender, events) = next_batch(&mut observed).await.unwrap();
            let sender = sender.expect("agents send the sender's clock");
            assert_ne!(sender, first_boot);
            second_boot.get_or_insert(sender);
            for e in events {
                if e.boot == first_boot {
                    assert!(second_boot.is_some());
                    resent.push(e.seq);
                } else {
                    assert_eq!(Some(&e.boot), second_boot.as_ref());
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
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
