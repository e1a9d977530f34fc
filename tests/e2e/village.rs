//! The lab the agent tests share: three namespaces, as on the ground.
//!
//! ```text
//!   commune ──link── village ──uplink── province
//!   (probed host)    (agent)            (Mosquitto + collector)
//! ```
//! The agent reaches the broker at province's `uplink` address; the collector runs in `province`
//! against 127.0.0.1, its store in the test's scratch directory, read from the host with
//! `netmon-collector events --json`.

use std::time::Duration;

use netmon_tests::broker::LAB_PORT;
use netmon_tests::{
    Agent, AgentConfig, Broker, Collector, CollectorConfig, Lab, Scratch, StoredEvent,
    TargetConfig, unique,
};

/// The probed target's display name: diacritics must survive config, MQTT, SQLite and the CLI.
pub const TARGET_NAME: &str = "UBND xã Cẩm Tú";

/// Fields drop in declaration order: the agent stops first, the lab (namespaces) last.
pub struct Village {
    pub agent: Agent,
    pub collector: Collector,
    /// Held so that the broker stops when the village is dropped.
    _broker: Broker,
    pub lab: Lab,
    /// Dropped last: kept, with every log, when the test fails.
    pub scratch: Scratch,
    pub agent_id: String,
    pub province: String,
    pub target_addr: String,
}

impl Village {
    /// Builds the lab, starts the broker and the collector (waiting until it stores events), then
    /// the agent probing the commune with the probe settings `tune` chooses.
    pub fn start(test: &str, tune: impl FnOnce(&mut AgentConfig)) -> Self {
        Self::start_with(test, tune, |_| {})
    }

    /// [`Village::start`], with the collector's config tuned by `tune_collector` too.
    pub fn start_with(
        test: &str,
        tune: impl FnOnce(&mut AgentConfig),
        tune_collector: impl FnOnce(&mut CollectorConfig),
    ) -> Self {
        let scratch = Scratch::new(test).unwrap();
        let mut lab = Lab::new().unwrap();
        for role in ["province", "village", "commune"] {
            lab.add_namespace(role).unwrap();
        }
        lab.connect("uplink", "village", "province").unwrap();
        lab.connect("link", "village", "commune").unwrap();
        let province_ns = lab.ns("province").unwrap().to_owned();

        let broker = Broker::start_in(&lab, "province", &scratch).unwrap();
        let province = unique("lab");
        let collector = {
            let mut config = CollectorConfig {
                mqtt_url: format!("mqtt://127.0.0.1:{LAB_PORT}"),
                ca_file: None,
                client_id: unique("collector"),
                province: Some(province.clone()),
                store_path: scratch.join("events.db").display().to_string(),
                snapshot_every: None,
                http_listen: "127.0.0.1:8080".into(),
                silence_after: "1h".into(),
                delivery: Default::default(),
                influx: None,
                inventory: None,
                http_token: None,
                extra_toml: String::new(),
            };
            tune_collector(&mut config);
            let mut collector =
                Collector::start("collector", config, &scratch, Some(&province_ns)).unwrap();
            collector
                .wait_subscribed(&province, Duration::from_secs(20))
                .unwrap();
            collector
        };

        let agent_id = unique("village");
        let target_addr = lab.addr("link", "commune").unwrap().to_string();
        let broker_addr = lab.addr("uplink", "province").unwrap();
        let mut config = AgentConfig::new(
            &agent_id,
            &province,
            &format!("mqtt://{broker_addr}:{LAB_PORT}"),
        );
        config.targets.push(TargetConfig {
            name: TARGET_NAME.into(),
            address: target_addr.clone(),
            role: "commune".into(),
        });
        tune(&mut config);
        let village_ns = lab.ns("village").unwrap().to_owned();
        let agent = Agent::start("agent", config, &scratch, Some(&village_ns)).unwrap();

        Self {
            agent,
            collector,
            _broker: broker,
            lab,
            scratch,
            agent_id,
            province,
            target_addr,
        }
    }

    /// The agent's stored events of one type (all types for `None`), oldest first. Fails the test
    /// if a daemon has died.
    pub fn events(&mut self, event_type: Option<&str>) -> Vec<StoredEvent> {
        self.agent.proc.assert_running().unwrap();
        self.collector.proc.assert_running().unwrap();
        let mut filter = vec!["--agent", self.agent_id.as_str()];
        if let Some(event_type) = event_type {
            filter.extend(["--type", event_type]);
        }
        self.collector.events(&filter).unwrap()
    }
}
