//! What the daemon tests share: a private broker with a client that watches the agent's topics
//! and decodes its compact batches (keys resolved from the header, else from the descriptions
//! it has seen, as the collector does) and acknowledges like the collector, an agent config for
//! it, the agent started and stopped in-process, and the journal view.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;

use netmon_agent::Config;
use netmon_events::{
    Ack, AgentId, AgentStatus, BootAck, BootId, DescribedTarget, Envelope, Event, decode_batch_with,
};
use rumqttc::{AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Packet, Publish, QoS};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use netmon_harness::{LocalBroker, Scratch, poll_until_async};

pub const AGENT: &str = "hue-phu-vinh-01";
pub const EVENTS: &str = "netmon/v1/hue/hue-phu-vinh-01/events";
pub const STATUS: &str = "netmon/v1/hue/hue-phu-vinh-01/status";
pub const ACK: &str = "netmon/v1/hue/hue-phu-vinh-01/ack";

/// `n` targets on loopback (127.80.0.1 …), named with Vietnamese text padded to about
/// `name_bytes` bytes (long names make big events: a journal fills fast).
pub fn targets(n: usize, name_bytes: usize) -> String {
    let mut out = String::new();
    for i in 1..=n {
        let mut name = format!("Nhà văn hoá thôn {i}");
        while name.len() < name_bytes {
            name.push_str(" – Phú Vinh");
        }
        let role = if i == 1 { "commune" } else { "gateway" };
        out.push_str(&format!(
            "[[targets]]\nname = \"{name}\"\naddress = \"127.80.{}.{}\"\nrole = \"{role}\"\n",
            i / 250,
            1 + i % 250
        ));
    }
    out
}

/// A test's scratch directory with a private Mosquitto and a client watching it.
pub struct Setup {
    pub dir: Scratch,
    pub broker: LocalBroker,
    /// Where the agent keeps its journal.
    pub journal: PathBuf,
    pub observer: Observer,
}

impl Setup {
    pub async fn start(name: &str) -> Setup {
        let dir = Scratch::new(name).unwrap();
        let broker = LocalBroker::start("mosquitto", &dir).unwrap();
        let observer = Observer::start(broker.port).await;
        Setup {
            journal: dir.path().join("journal"),
            dir,
            broker,
            observer,
        }
    }

    /// An agent for the broker: `sections` are the TOML sections besides `[mqtt]` and
    /// `[journal]` (with its `journal_keys`), `targets` its targets.
    pub fn config(&self, journal_keys: &str, sections: &str, targets: &str) -> Config {
        let text = format!(
            "agent_id = \"{AGENT}\"\nprovince = \"hue\"\n[mqtt]\nurl = \"{}\"\n{sections}\n\
             [journal]\ndir = \"{}\"\nfsync_interval = \"100ms\"\n{journal_keys}\n{targets}",
            self.broker.url(),
            self.journal.display()
        );
        let path = self.dir.write("agent.toml", text).unwrap();
        Config::load_with_env(&path, Some(Default::default())).unwrap()
    }
}

/// The daemon running in this process.
pub struct Agent {
    pub shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Agent {
    pub fn start(config: Config) -> Agent {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(netmon_agent::run(config, shutdown.clone()));
        Agent { shutdown, task }
    }

    /// Waits (up to 10 s) for it to end after `shutdown`; it must end without error.
    pub async fn stopped(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the agent stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

/// One `events` message: its header as sent, and its events decoded.
#[derive(Debug)]
pub struct Message {
    /// The compact header's `targets`, when it carries them.
    pub header_targets: Option<Vec<DescribedTarget>>,
    pub sender: BootId,
    pub events: Vec<Envelope>,
    /// Topic and payload, what the uplink carries (besides MQTT's few bytes of framing).
    pub bytes: usize,
}

/// A client subscribed to `netmon/v1/#`, decoding what the agent publishes.
pub struct Observer {
    pub client: AsyncClient,
    eventloop: EventLoop,
    /// Messages that arrived while waiting for something else.
    queued: VecDeque<Publish>,
    /// The `targets_described` seen, as the collector's store would hold them.
    book: HashMap<(AgentId, BootId), Vec<DescribedTarget>>,
}

impl Observer {
    /// Subscribed when this returns: nothing is missed.
    pub async fn start(port: u16) -> Observer {
        let mut options = MqttOptions::new("test-observer", "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        client
            .subscribe("netmon/v1/#", QoS::AtLeastOnce)
            .await
            .unwrap();
        loop {
            if let MqttEvent::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
                break;
            }
        }
        Observer {
            client,
            eventloop,
            queued: VecDeque::new(),
            book: HashMap::new(),
        }
    }

    async fn publish(&mut self) -> Publish {
        if let Some(p) = self.queued.pop_front() {
            return p;
        }
        loop {
            if let MqttEvent::Incoming(Packet::Publish(p)) = self.eventloop.poll().await.unwrap() {
                return p;
            }
        }
    }

    /// The next status message.
    pub async fn next_status(&mut self) -> AgentStatus {
        loop {
            let p = self.publish().await;
            if p.topic == STATUS {
                return AgentStatus::from_json(&p.payload).unwrap();
            }
        }
    }

    /// The next `events` message; `None` once the agent published `offline`.
    pub async fn next(&mut self) -> Option<Message> {
        loop {
            let p = self.publish().await;
            if p.topic == STATUS {
                if AgentStatus::from_json(&p.payload).unwrap() == AgentStatus::Offline {
                    return None;
                }
                continue;
            }
            if p.topic != EVENTS {
                continue;
            }
            let raw: Value = serde_json::from_slice(&p.payload).unwrap();
            assert!(
                raw.get("agent").is_some() && raw.get("boot").is_some(),
                "agents send compact batches: {raw}"
            );
            let header_targets = raw
                .get("targets")
                .map(|t| serde_json::from_value(t.clone()).unwrap());
            let batch = decode_batch_with(&p.payload, &self.book).unwrap();
            let events: Vec<Envelope> = batch
                .events
                .into_iter()
                .map(|e| e.unwrap_or_else(|e| panic!("{e}: {raw}")))
                .collect();
            for e in &events {
                if let Event::TargetsDescribed { targets } = &e.event {
                    self.book
                        .insert((e.agent.clone(), e.boot.clone()), targets.clone());
                }
            }
            return Some(Message {
                header_targets,
                sender: batch.sender.unwrap().boot,
                events,
                bytes: p.topic.len() + p.payload.len(),
            });
        }
    }

    /// Publishes the retained acknowledgement `boot` up to `seq`, as the collector does, and
    /// waits until the broker has it.
    pub async fn acknowledge(&mut self, boot: &BootId, seq: u64) {
        let ack = Ack {
            acks: vec![BootAck {
                boot: boot.clone(),
                seq,
            }],
        };
        self.client
            .publish(ACK, QoS::AtLeastOnce, true, ack.to_json())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.eventloop.poll().await.unwrap() {
                    MqttEvent::Incoming(Packet::PubAck(_)) => return,
                    MqttEvent::Incoming(Packet::Publish(p)) => self.queued.push_back(p),
                    _ => {}
                }
            }
        })
        .await
        .expect("the broker took the retained ack");
    }
}

/// Polls the read-only journal view until `check` holds (bounded: 10 s).
pub async fn until_journal(
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
