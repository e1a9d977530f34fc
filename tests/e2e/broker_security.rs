//! The shipped broker config against a real Mosquitto. `deploy/mosquitto/netmon.conf` and
//! `netmon.acl` are used as shipped, with only the paths and ports substituted (and a test
//! header: run as root, persistence and log in the scratch directory); the certificates come
//! from `deploy/mosquitto/make-certs`, the password file from `mosquitto_passwd -b`.
//!
//! - client ids are bound to user names: agent-a's credentials with agent-b's or the collector's
//!   client id neither disconnect them nor fire agent-b's last will;
//! - the ACL keeps an agent to its own province and id, and a collector user from publishing as
//!   an agent (the collectors never store such events; the broker logs the denials);
//! - anonymous clients and bad passwords are refused; the plain listener is on loopback only;
//!   the TLS listener works with the CA;
//! - with `require_certificate true`, a client without a certificate is refused, and the agent
//!   and the collector connect with theirs (`mqtt.client_cert`/`client_key`);
//! - a packet above `max_packet_size` is dropped by the broker (the shipped one and the shared
//!   test broker of `tests/run`) and the collector keeps storing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use netmon_events::{AgentStatus, Event, encode_batch};
use netmon_tests::configs::quote;
use netmon_tests::daemons::{daemon_command, free_port, read_events};
use netmon_tests::wait::wait_http;
use netmon_tests::{
    Agent, AgentConfig, Collector, CollectorConfig, Launch, Proc, Scratch, StoredEvent,
    TargetConfig, poll_until, shared_url, unique, wait_for,
};

use netmon_events::testing::{Boot, events_topic};

/// The users in the password file, with their passwords. Agents are `<province>/<agent id>`.
const USERS: &[(&str, &str)] = &[
    ("thanh-hoa/agent-a", "pw-agent-a"),
    ("thanh-hoa/agent-b", "pw-agent-b"),
    ("nghe-an/agent-n", "pw-agent-n"),
    ("collector-thanh-hoa", "pw-collector-thanh-hoa"),
    ("collector-nghe-an", "pw-collector-nghe-an"),
    // Only for the readiness probe: it may not publish anything.
    ("probe", "pw-probe"),
];

fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .unwrap_or_else(|| panic!("no test user {user}"))
}

/// `deploy/mosquitto/{name}`.
fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/mosquitto")
        .join(name)
}

/// Runs `command` and returns its output, failing with its stderr when it fails.
fn run_ok(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `listener 1883 127.0.0.1` of the shipped file.
    Plain,
    /// `listener 8883` of the shipped file.
    Tls,
}

/// A private Mosquitto running the shipped netmon.conf and netmon.acl.
struct ShippedBroker {
    proc: Proc,
    dir: PathBuf,
    plain: u16,
    tls: u16,
}

impl ShippedBroker {
    /// Makes the CA, the server certificate (localhost, 127.0.0.1) and client certificates for
    /// agent-a and collector-thanh-hoa with make-certs, the password file, and starts Mosquitto
    /// on two free loopback ports; `mtls` uncomments the shipped `#require_certificate true`.
    fn start(scratch: &Scratch, mtls: bool) -> ShippedBroker {
        let dir = scratch.join("broker");
        let make_certs = |args: &[&str]| {
            run_ok(Command::new(shipped("make-certs")).arg(&dir).args(args));
        };
        make_certs(&["ca"]);
        make_certs(&["server", "localhost", "127.0.0.1"]);
        make_certs(&["client", "thanh-hoa/agent-a"]);
        make_certs(&["client", "collector-thanh-hoa"]);

        let passwd = dir.join("netmon.passwd");
        std::fs::write(&passwd, "").unwrap();
        for (user, password) in USERS {
            run_ok(
                Command::new("mosquitto_passwd")
                    .arg("-b")
                    .arg(&passwd)
                    .args([user, password]),
            );
        }

        let plain = free_port().unwrap();
        let tls = free_port().unwrap();
        let mut conf = std::fs::read_to_string(shipped("netmon.conf")).unwrap();
        let mut substitute = |from: &str, to: String| {
            assert_eq!(
                conf.matches(from).count(),
                1,
                "the shipped netmon.conf should have {from:?} once:\n{conf}"
            );
            conf = conf.replace(from, &to);
        };
        substitute(
            "password_file /etc/mosquitto/netmon.passwd",
            format!("password_file {}", passwd.display()),
        );
        substitute(
            "acl_file /etc/mosquitto/netmon.acl",
            format!("acl_file {}", shipped("netmon.acl").display()),
        );
        substitute(
            "listener 1883 127.0.0.1\n",
            format!("listener {plain} 127.0.0.1\n"),
        );
        substitute("listener 8883\n", format!("listener {tls}\n"));
        for file in ["ca.pem", "server.pem", "server.key"] {
            substitute(
                &format!("/etc/mosquitto/certs/{file}"),
                dir.join(file).display().to_string(),
            );
        }
        if mtls {
            substitute(
                "#require_certificate true",
                "require_certificate true".into(),
            );
        }
        let header = format!(
            "# Test only: run as root, persistence and log in the scratch directory.\n\
             user root\npersistence_location {}/\nlog_dest stderr\nlog_type all\n\n",
            dir.display()
        );
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, format!("{header}{conf}")).unwrap();

        let mut command = Command::new("mosquitto");
        command.arg("-c").arg(&path);
        let mut proc = Proc::spawn("mosquitto (shipped config)", command, &dir.join("log"))
            .expect("mosquitto must be installed (tests/run installs it)");
        let ready = poll_until(Duration::from_secs(10), || {
            proc.assert_running().unwrap();
            // The probe user may connect (and publish nothing: the ACL drops it).
            let probe = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &plain.to_string()])
                .args(["-u", "probe", "-P", password("probe")])
                .args(["-t", "netmon-test/probe", "-m", "x"])
                .stderr(Stdio::null())
                .status()
                .unwrap();
            probe.success().then_some(())
        });
        assert!(
            ready.is_some(),
            "mosquitto with the shipped config did not start:\n{}",
            proc.log()
        );
        ShippedBroker {
            proc,
            dir,
            plain,
            tls,
        }
    }

    /// `mosquitto_pub`/`mosquitto_sub` to `port` (TLS: trusting the CA), as `user` with its
    /// password when given.
    fn client(&self, program: &str, port: Port, user: Option<&str>) -> Command {
        let mut command = Command::new(program);
        command.args(["-h", "127.0.0.1"]).stdin(Stdio::null());
        match port {
            Port::Plain => command.args(["-p", &self.plain.to_string()]),
            Port::Tls => command
                .args(["-p", &self.tls.to_string(), "--cafile"])
                .arg(self.file("ca.pem")),
        };
        if let Some(user) = user {
            command.args(["-u", user, "-P", password(user)]);
        }
        command
    }

    /// Publishes `payload` with QoS 1 as `user` (and client id `client_id` when given), waiting
    /// for the broker's PUBACK: when this returns, the broker has routed or dropped it.
    fn publish(&self, user: &str, client_id: Option<&str>, topic: &str, payload: &[u8]) {
        let mut command = self.client("mosquitto_pub", Port::Plain, Some(user));
        command.args(["-q", "1", "-t", topic, "-s"]);
        if let Some(id) = client_id {
            command.args(["-i", id]);
        }
        let output = feed(&mut command, payload);
        assert!(
            output.status.success(),
            "mosquitto_pub as {user} to {topic} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn url(&self, port: Port) -> String {
        match port {
            Port::Plain => format!("mqtt://127.0.0.1:{}", self.plain),
            Port::Tls => format!("mqtts://127.0.0.1:{}", self.tls),
        }
    }

    fn log(&self) -> String {
        self.proc.log()
    }

    /// Lines of the broker's log containing `text`.
    fn log_lines(&self, text: &str) -> usize {
        self.log().lines().filter(|l| l.contains(text)).count()
    }
}

/// Runs `command` with `payload` on its stdin.
fn feed(command: &mut Command, payload: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto-clients must be installed (tests/run installs it)");
    if let Some(mut stdin) = child.stdin.take() {
        // A broker that drops the connection may leave part of a large payload unread.
        let _ = stdin.write_all(payload);
    }
    child.wait_with_output().unwrap()
}

/// A `netmon-collector run` logged in to the shipped broker as `collector-<province>`.
struct BrokerCollector {
    proc: Proc,
    config_path: PathBuf,
    http: String,
    province: String,
}

impl BrokerCollector {
    /// Starts it on `url` taking `province`; `mqtt_extra` is added to its `[mqtt]` section (the
    /// CA and client certificate). Waits until `/healthz` answers 200.
    fn start(scratch: &Scratch, province: &str, url: &str, mqtt_extra: &str) -> BrokerCollector {
        let name = format!("collector-{province}");
        let mut config =
            CollectorConfig::on_loopback(url, &scratch.join(&format!("{name}.db"))).unwrap();
        config.province = Some(province.to_owned());
        config.client_id = format!("netmon-{name}");
        let credentials = format!(
            "[mqtt]\nusername = {}\npassword = {}\n{mqtt_extra}",
            quote(&name),
            quote(password(&name))
        );
        let toml = config.to_toml().replacen("[mqtt]\n", &credentials, 1);
        let config_path = scratch.write(&format!("{name}.toml"), toml).unwrap();
        let mut command = daemon_command("netmon-collector");
        command.arg("run").arg("--config").arg(&config_path);
        let mut proc = Proc::spawn(&name, command, &scratch.join(&format!("{name}.log"))).unwrap();
        let http = config.http_listen.clone();
        wait_http(
            &mut proc,
            &format!("http://{http}/healthz"),
            "200",
            &name,
            Duration::from_secs(20),
        )
        .unwrap();
        BrokerCollector {
            proc,
            config_path,
            http,
            province: province.to_owned(),
        }
    }

    fn events(&self, filter: &[&str]) -> Vec<StoredEvent> {
        read_events(&self.config_path, filter).unwrap()
    }

    fn healthz(&self) -> String {
        let output = run_ok(Command::new("curl").args([
            "-s",
            "--max-time",
            "5",
            "-w",
            " %{http_code}",
            &format!("http://{}/healthz", self.http),
        ]));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Publishes heartbeats of `boot` as `user` on the boot agent's own topic, one at a time,
    /// until one is stored; returns its seq. The first call proves the subscription live; a
    /// later call is a barrier: anything the broker routed to this collector before it is
    /// stored (or refused) by the time it returns.
    fn deliver(&mut self, broker: &ShippedBroker, user: &str, boot: &mut Boot) -> u64 {
        let topic = events_topic(&self.province, boot.agent.as_str());
        let agent = boot.agent.as_str().to_owned();
        let wanted = boot.boot.clone();
        let stored = poll_until(Duration::from_secs(20), || {
            self.proc.assert_running().unwrap();
            let envelope = boot.next(Event::AgentHeartbeat {
                uptime_s: 1,
                backlog: 0,
            });
            let seq = envelope.seq;
            broker.publish(user, None, &topic, &encode_batch(&[envelope]));
            poll_until(Duration::from_secs(1), || {
                self.events(&["--agent", &agent])
                    .iter()
                    .any(|e| e.envelope.boot == wanted && e.envelope.seq == seq)
                    .then_some(seq)
            })
        });
        stored.unwrap_or_else(|| {
            panic!(
                "{user}'s heartbeats on {topic} never reached {}; log {}",
                self.province,
                self.proc.log_path().display()
            )
        })
    }
}

/// An agent config for the shipped broker: `agent` of `province` on `url`, trusting the test CA,
/// probing 127.0.0.1; credentials (and more) go in the environment.
fn agent_config(broker: &ShippedBroker, province: &str, agent: &str, url: &str) -> AgentConfig {
    let mut config = AgentConfig::new(agent, province, url);
    config.ca_file = Some(broker.file("ca.pem").display().to_string());
    config.targets.push(TargetConfig {
        name: "Máy này".into(),
        address: "127.0.0.1".into(),
        role: "gateway".into(),
    });
    config
}

/// `NETMON_MQTT__USERNAME`/`PASSWORD` for `user`, plus `extra` variables.
fn agent_env(user: &str, extra: &[(&str, String)]) -> Launch {
    let mut env = vec![
        ("NETMON_MQTT__USERNAME".to_owned(), user.to_owned()),
        (
            "NETMON_MQTT__PASSWORD".to_owned(),
            password(user).to_owned(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    Launch { env }
}

/// The highest seq stored for `agent` (0 when none).
fn newest_seq(collector: &BrokerCollector, agent: &str) -> u64 {
    collector
        .events(&["--agent", agent])
        .iter()
        .map(|e| e.envelope.seq)
        .max()
        .unwrap_or(0)
}

fn silences(collector: &BrokerCollector, agent: &str) -> Vec<StoredEvent> {
    collector.events(&["--agent", agent, "--type", "agent_went_silent"])
}

#[test]
fn a_client_id_cannot_be_taken_with_another_users_credentials() {
    let scratch = Scratch::new("broker-takeover").unwrap();
    let broker = ShippedBroker::start(&scratch, false);
    let mut collector = BrokerCollector::start(&scratch, "thanh-hoa", &broker.url(Port::Plain), "");
    let mut agent_a = Boot::new("agent-a");
    collector.deliver(&broker, "thanh-hoa/agent-a", &mut agent_a);

    // The victim: a real agent-b over TLS, delivering probe rounds.
    let config = agent_config(&broker, "thanh-hoa", "agent-b", &broker.url(Port::Tls));
    let mut victim = Agent::start_with(
        "agent-b",
        config,
        &scratch,
        None,
        agent_env("thanh-hoa/agent-b", &[]),
    )
    .unwrap();
    let before = wait_for("agent-b's events over TLS", Duration::from_secs(30), || {
        victim.proc.assert_running().unwrap();
        let seq = newest_seq(&collector, "agent-b");
        (seq > 1).then_some(seq)
    });

    // agent-a's credentials with agent-b's client id, then with the collector's (clean
    // session: with the id it would wipe the collector's persistent session). Each connects,
    // publishes on agent-a's own topic, and disconnects.
    let topic_a = events_topic("thanh-hoa", "agent-a");
    for stolen in [
        "thanh-hoa/agent-b",
        "agent-b",
        "collector-thanh-hoa",
        "netmon-collector-thanh-hoa",
    ] {
        let envelope = agent_a.next(Event::AgentHeartbeat {
            uptime_s: 2,
            backlog: 0,
        });
        broker.publish(
            "thanh-hoa/agent-a",
            Some(stolen),
            &topic_a,
            &encode_batch(&[envelope]),
        );
    }
    // Barrier: agent-b's later events and agent-a's next one are stored, so an `offline` last
    // will fired by a kick would have been stored before them.
    wait_for(
        "agent-b's events after the attempts",
        Duration::from_secs(30),
        || {
            victim.proc.assert_running().unwrap();
            (newest_seq(&collector, "agent-b") > before + 1).then_some(())
        },
    );
    collector.deliver(&broker, "thanh-hoa/agent-a", &mut agent_a);

    let log = broker.log();
    assert!(
        !log.contains("already connected, closing old connection"),
        "a client was kicked off:\n{log}"
    );
    // Every connection with agent-a's credentials got agent-a's user name as its client id:
    // the canary, the four attempts, the barrier.
    assert!(
        broker.log_lines(" as thanh-hoa/agent-a (") >= 6,
        "agent-a's connections:\n{log}"
    );
    assert_eq!(broker.log_lines(" as thanh-hoa/agent-b ("), 1, "{log}");
    assert_eq!(broker.log_lines(" as collector-thanh-hoa ("), 1, "{log}");
    assert_eq!(broker.log_lines(" as agent-b ("), 0, "{log}");
    assert!(silences(&collector, "agent-b").is_empty());
    // Every event agent-a sent was stored: the attempts connected, as agent-a.
    let stored_a = collector.events(&["--agent", "agent-a"]).len();
    assert!(stored_a >= 6, "agent-a's events stored: {stored_a}");
    assert!(collector.healthz().ends_with(" 200"));
}

#[test]
fn the_acl_keeps_agents_to_their_own_topics_and_collectors_to_reading() {
    let scratch = Scratch::new("broker-acl").unwrap();
    let broker = ShippedBroker::start(&scratch, false);
    let url = broker.url(Port::Plain);
    let mut thanh_hoa = BrokerCollector::start(&scratch, "thanh-hoa", &url, "");
    let mut nghe_an = BrokerCollector::start(&scratch, "nghe-an", &url, "");
    let mut agent_a = Boot::new("agent-a");
    let mut agent_n = Boot::new("agent-n");
    thanh_hoa.deliver(&broker, "thanh-hoa/agent-a", &mut agent_a);
    nghe_an.deliver(&broker, "nghe-an/agent-n", &mut agent_n);

    // agent-a, as itself, into another province, and as agent-b; each envelope matches its
    // topic, so a collector would store it if the broker let it through.
    let mut forged_b = Boot::new("agent-b");
    let offline = AgentStatus::Offline.to_json();
    let attempts = [
        (
            events_topic("nghe-an", "agent-a"),
            encode_batch(&[agent_a.next(Event::AgentHeartbeat {
                uptime_s: 3,
                backlog: 0,
            })]),
        ),
        (
            events_topic("thanh-hoa", "agent-b"),
            encode_batch(&[forged_b.next(Event::AgentHeartbeat {
                uptime_s: 3,
                backlog: 0,
            })]),
        ),
        (
            "netmon/v1/thanh-hoa/agent-b/status".to_owned(),
            offline.clone(),
        ),
        (
            "netmon/v1/nghe-an/agent-n/status".to_owned(),
            offline.clone(),
        ),
    ];
    for (topic, payload) in &attempts {
        broker.publish("thanh-hoa/agent-a", None, topic, payload);
    }
    // The collector users may write acks only. (Their own client id is their user name, so
    // these connections briefly take the real collectors' places: the barrier waits for them.)
    let mut forged_x = Boot::new("agent-x");
    let collector_attempts = [
        (
            "collector-nghe-an",
            events_topic("nghe-an", "agent-x"),
            encode_batch(&[forged_x.next(Event::AgentHeartbeat {
                uptime_s: 3,
                backlog: 0,
            })]),
        ),
        (
            "collector-nghe-an",
            events_topic("thanh-hoa", "agent-x"),
            encode_batch(&[forged_x.next(Event::AgentHeartbeat {
                uptime_s: 3,
                backlog: 0,
            })]),
        ),
        (
            "collector-nghe-an",
            "netmon/v1/nghe-an/agent-n/status".to_owned(),
            offline.clone(),
        ),
    ];
    for (user, topic, payload) in &collector_attempts {
        broker.publish(user, None, topic, payload);
    }

    // Barriers: later events of the legitimate agents are stored by both collectors.
    thanh_hoa.deliver(&broker, "thanh-hoa/agent-a", &mut agent_a);
    nghe_an.deliver(&broker, "nghe-an/agent-n", &mut agent_n);

    for agent in ["agent-a", "agent-x"] {
        assert!(
            nghe_an.events(&["--agent", agent]).is_empty(),
            "{agent} got into nghe-an"
        );
    }
    for agent in ["agent-b", "agent-x"] {
        assert!(
            thanh_hoa.events(&["--agent", agent]).is_empty(),
            "{agent} got into thanh-hoa"
        );
    }
    assert!(silences(&thanh_hoa, "agent-b").is_empty());
    assert!(silences(&nghe_an, "agent-n").is_empty());
    // The broker says why: each attempt was a denied PUBLISH.
    let log = broker.log();
    for (user, topic) in attempts
        .iter()
        .map(|(t, _)| ("thanh-hoa/agent-a", t))
        .chain(collector_attempts.iter().map(|(u, t, _)| (*u, t)))
    {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("Denied PUBLISH from {user} "))
                    && l.contains(&format!("'{topic}'"))),
            "no denial of {user} on {topic}:\n{log}"
        );
    }
    // The collector's own writes (acks) are allowed: its watermarks were not denied.
    assert!(
        !log.contains("Denied PUBLISH from collector-thanh-hoa "),
        "{log}"
    );
}

#[test]
fn strangers_are_refused_and_the_plain_listener_is_loopback_only() {
    let scratch = Scratch::new("broker-refuse").unwrap();
    let broker = ShippedBroker::start(&scratch, false);
    let topic = events_topic("thanh-hoa", "agent-a");
    for port in [Port::Plain, Port::Tls] {
        let mut anonymous = broker.client("mosquitto_pub", port, None);
        let mut bad_password = broker.client("mosquitto_pub", port, None);
        bad_password.args(["-u", "thanh-hoa/agent-a", "-P", "not-the-password"]);
        let mut unknown = broker.client("mosquitto_pub", port, None);
        unknown.args(["-u", "thanh-hoa/agent-z", "-P", "pw-agent-a"]);
        for (what, command) in [
            ("anonymous", &mut anonymous),
            ("bad password", &mut bad_password),
            ("unknown user", &mut unknown),
        ] {
            let output = command
                .args(["-q", "1", "-t", &topic, "-m", "x"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success() && stderr.contains("not authorised"),
                "{what} on {port:?}: {} {stderr}",
                output.status
            );
        }
        // The right password works on both.
        let output = broker
            .client("mosquitto_pub", port, Some("thanh-hoa/agent-a"))
            .args(["-q", "1", "-t", &topic, "-m", "x"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{port:?}: {output:?}");
    }

    // TLS needs the CA: without --cafile the handshake fails, plain MQTT on it gets nowhere.
    // (Not `broker.client`, which brings the CA.)
    let tls_port = broker.tls.to_string();
    let as_agent_a = |connection: &[&str]| {
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &tls_port])
            .args(connection)
            .args([
                "-u",
                "thanh-hoa/agent-a",
                "-P",
                password("thanh-hoa/agent-a"),
            ])
            .args(["-t", &topic, "-m", "x"])
            .output()
            .unwrap()
    };
    let no_ca = as_agent_a(&["--capath", "/etc/ssl/certs"]);
    assert!(!no_ca.status.success(), "{no_ca:?}");
    let plain_on_tls = as_agent_a(&[]);
    assert!(!plain_on_tls.status.success(), "{plain_on_tls:?}");

    // Where each listener is bound.
    let listening = |port: u16| -> Vec<String> {
        let output = run_ok(Command::new("ss").args(["-Hltn", &format!("sport = :{port}")]));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect()
    };
    let plain = listening(broker.plain);
    assert_eq!(plain, vec![format!("127.0.0.1:{}", broker.plain)]);
    let tls = listening(broker.tls);
    assert!(
        tls.contains(&format!("0.0.0.0:{}", broker.tls)),
        "the TLS listener should be on every address: {tls:?}"
    );

    // A collector user cannot publish as an agent; the broker logs the denial.
    let topic_x = events_topic("thanh-hoa", "agent-x");
    let mut forged = Boot::new("agent-x");
    broker.publish(
        "collector-thanh-hoa",
        None,
        &topic_x,
        &encode_batch(&[forged.next(Event::AgentHeartbeat {
            uptime_s: 1,
            backlog: 0,
        })]),
    );
    assert!(
        broker
            .log()
            .lines()
            .any(|l| l.contains("Denied PUBLISH from collector-thanh-hoa ")
                && l.contains(&format!("'{topic_x}'"))),
        "{}",
        broker.log()
    );
}

#[test]
fn with_require_certificate_only_clients_with_a_certificate_get_in() {
    let scratch = Scratch::new("broker-mtls").unwrap();
    let broker = ShippedBroker::start(&scratch, true);
    let topic = events_topic("thanh-hoa", "agent-a");
    let cert = |user: &str, ext: &str| {
        broker
            .file(&format!("clients/{user}.{ext}"))
            .display()
            .to_string()
    };

    // The right password but no certificate: the TLS handshake fails.
    let output = broker
        .client("mosquitto_pub", Port::Tls, Some("thanh-hoa/agent-a"))
        .args(["-q", "1", "-t", &topic, "-m", "x"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{output:?}");
    // With the certificate it works (mosquitto's own client).
    let output = broker
        .client("mosquitto_pub", Port::Tls, Some("thanh-hoa/agent-a"))
        .args(["--cert", &cert("thanh-hoa/agent-a", "pem")])
        .args(["--key", &cert("thanh-hoa/agent-a", "key")])
        .args(["-q", "1", "-t", &topic, "-m", "x"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    // netmon's own TLS code: the collector over mTLS with mqtt.client_cert/client_key in its
    // file, the agent with them from the environment (as the systemd unit gives the key).
    let ca = broker.file("ca.pem").display().to_string();
    let mqtt_tls = format!(
        "ca_file = {}\nclient_cert = {}\nclient_key = {}\n",
        quote(&ca),
        quote(&cert("collector-thanh-hoa", "pem")),
        quote(&cert("collector-thanh-hoa", "key"))
    );
    let collector =
        BrokerCollector::start(&scratch, "thanh-hoa", &broker.url(Port::Tls), &mqtt_tls);
    let config = agent_config(&broker, "thanh-hoa", "agent-a", &broker.url(Port::Tls));
    let launch = agent_env(
        "thanh-hoa/agent-a",
        &[
            ("NETMON_MQTT__CLIENT_CERT", cert("thanh-hoa/agent-a", "pem")),
            ("NETMON_MQTT__CLIENT_KEY", cert("thanh-hoa/agent-a", "key")),
        ],
    );
    let mut agent = Agent::start_with("agent-a", config, &scratch, None, launch).unwrap();
    wait_for(
        "agent-a's probe windows over mTLS",
        Duration::from_secs(30),
        || {
            agent.proc.assert_running().unwrap();
            let windows =
                collector.events(&["--agent", "agent-a", "--type", "probe_window_completed"]);
            (!windows.is_empty()).then_some(())
        },
    );

    // A netmon agent without a certificate is refused (and says so).
    let config = agent_config(&broker, "thanh-hoa", "agent-b", &broker.url(Port::Tls));
    let mut refused = Agent::start_with(
        "agent-b",
        config,
        &scratch,
        None,
        agent_env("thanh-hoa/agent-b", &[]),
    )
    .unwrap();
    wait_for(
        "agent-b to report that it cannot connect",
        Duration::from_secs(30),
        || {
            refused.proc.assert_running().unwrap();
            refused
                .proc
                .log()
                .contains("cannot connect to the MQTT broker")
                .then_some(())
        },
    );
    assert_eq!(
        broker.log_lines(" as thanh-hoa/agent-b ("),
        0,
        "{}",
        broker.log()
    );
    assert!(collector.events(&["--agent", "agent-b"]).is_empty());
}

/// A payload of `bytes` spaces.
fn junk(bytes: usize) -> Vec<u8> {
    vec![b' '; bytes]
}

/// `/api/v1/intake`'s `rejected_by_reason.oversized`.
fn oversized_count(http: &str) -> u64 {
    let output = run_ok(Command::new("curl").args([
        "-sS",
        "--max-time",
        "5",
        &format!("http://{http}/api/v1/intake"),
    ]));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["rejected_by_reason"]["oversized"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn the_shipped_broker_drops_packets_over_max_packet_size() {
    let scratch = Scratch::new("broker-oversized").unwrap();
    let broker = ShippedBroker::start(&scratch, false);
    let mut collector = BrokerCollector::start(&scratch, "thanh-hoa", &broker.url(Port::Plain), "");
    let mut agent_a = Boot::new("agent-a");
    collector.deliver(&broker, "thanh-hoa/agent-a", &mut agent_a);
    let topic = events_topic("thanh-hoa", "agent-a");

    // 1.5 MiB: the broker drops the publisher's connection, nothing reaches the collector.
    let mut command = broker.client("mosquitto_pub", Port::Plain, Some("thanh-hoa/agent-a"));
    let output = feed(
        command.args(["-q", "1", "-t", &topic, "-s"]),
        &junk(1536 * 1024),
    );
    assert!(!output.status.success(), "{output:?}");
    assert_eq!(
        broker.log_lines("Client thanh-hoa/agent-a disconnected due to oversize packet"),
        1,
        "{}",
        broker.log()
    );
    // Just under the limit: it reaches the collector, which refuses it as oversized.
    broker.publish("thanh-hoa/agent-a", None, &topic, &junk(1024 * 1024 - 1024));
    wait_for("the oversized refusal", Duration::from_secs(15), || {
        (oversized_count(&collector.http) == 1).then_some(())
    });
    // And it keeps storing on the same connection.
    collector.deliver(&broker, "thanh-hoa/agent-a", &mut agent_a);
    assert_eq!(
        broker.log_lines(" as collector-thanh-hoa ("),
        1,
        "{}",
        broker.log()
    );
    assert!(
        collector.healthz().ends_with(" 200"),
        "{}",
        collector.healthz()
    );
}

#[test]
fn the_shared_test_broker_drops_packets_over_max_packet_size() {
    let url = shared_url();
    let scratch = Scratch::new("shared-oversized").unwrap();
    let province = unique("oversized");
    let mut collector = Collector::start_local("collector", &scratch, &province).unwrap();
    let topic = events_topic(&province, "thon-giang-trung");
    let big = scratch.write("big.json", junk(1536 * 1024)).unwrap();
    let output = netmon_tests::broker::mosquitto_pub(&url, &topic)
        .unwrap()
        .arg("-f")
        .arg(&big)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "tests/run's broker took a 1.5 MiB packet: set max_packet_size"
    );
    // The collector's connection is intact: a new canary is stored, and /healthz says 200.
    collector
        .wait_subscribed(&province, Duration::from_secs(20))
        .unwrap();
    assert_eq!(collector.get("/healthz").unwrap().0, 200);
}
