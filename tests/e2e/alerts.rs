//! Alerts end to end, on a commune as on the ground: the commune centre's router and three
//! villages behind it, each with an agent in its own namespace; the broker, the collector and
//! the notification receivers in the province.
//!
//! ```text
//!   village1 ─v1─┐
//!   village2 ─v2─┼─ commune ──uplink── province (Mosquitto, collector, webhook, SMTP)
//!   village3 ─v3─┘
//! ```
//! The villages route through the commune; the commune's agent probes the province, each
//! village's agent its commune. Cutting `uplink` silences all four agents: the collector must send
//! one message naming the three villages, not four.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use netmon_tests::broker::LAB_PORT;
use netmon_tests::hook::{Hooked, NsHook};
use netmon_tests::wait::{poll_until, quiet};
use netmon_tests::{
    Agent, AgentConfig, Broker, Collector, CollectorConfig, Lab, Scratch, SmtpServer, TargetConfig,
    binary, unique, wait_for,
};

/// After a village cut's message (and its outbox drained): how long the test watches for a
/// second, wrong, message. A quiet window after the awaited event, not a synchronisation.
const QUIET_AFTER_VILLAGE_CUT: Duration = Duration::from_secs(3);
/// How long the uplink test watches for a second message after the first: longer than the
/// villages' agent-unreachable delay, which the parent's outage must suppress.
const QUIET_AFTER_UPLINK_CUT: Duration = Duration::from_secs(10);
/// How long it watches for anything after the recovery message: the villages' grace period.
const QUIET_AFTER_RECOVERY: Duration = Duration::from_secs(25);

const SECRET: &str = "bí-mật-của-tỉnh-thanh-hoa";
const TOKEN: &str = "netmon-test-token-0123456789";
const VILLAGES: [&str; 3] = ["thôn Giang Trung", "thôn Trung Sơn", "thôn Tú Tạo"];

/// Fields drop in order: agents, collector and receivers, broker, lab, scratch (kept on failure).
struct Commune {
    agents: Vec<Agent>,
    collector: Collector,
    hook: NsHook,
    smtp: SmtpServer,
    _broker: Broker,
    lab: Lab,
    scratch: Scratch,
    province: String,
    ids: Vec<String>,
}

impl Commune {
    fn start(test: &str) -> Self {
        let scratch = Scratch::new(test).unwrap();
        let mut lab = Lab::new().unwrap();
        for role in ["province", "commune", "village1", "village2", "village3"] {
            lab.add_namespace(role).unwrap();
        }
        lab.connect("uplink", "commune", "province").unwrap();
        for i in 1..=3 {
            lab.connect(&format!("v{i}"), &format!("village{i}"), "commune")
                .unwrap();
        }
        // Routing: the commune forwards; the villages go through it; the province routes the
        // lab's /24 back through the commune.
        let sysctl = |ns: &str| {
            let mut c = Command::new("sysctl");
            c.args(["-qw", "net.ipv4.ip_forward=1"]);
            lab.run_in(ns, &c).unwrap();
        };
        sysctl("commune");
        for i in 1..=3 {
            route_out(&lab, i);
        }
        route_back(&lab);

        let broker = Broker::start_in(&lab, "province", &scratch).unwrap();
        let hook = NsHook::start(&lab, "province", &scratch, 18_080, SECRET).unwrap();
        let province_ns = lab.ns("province").unwrap().to_owned();
        let smtp = SmtpServer::start_in(scratch.path(), false, Some(&province_ns)).unwrap();
        let province = unique("lab");
        let ids: Vec<String> = ["ubnd", "v1", "v2", "v3"]
            .iter()
            .map(|n| unique(&format!("cam-tu-{n}")))
            .collect();
        let inventory = scratch
            .write("inventory.toml", inventory(&province, &ids, &hook.url()))
            .unwrap();
        let extra = format!(
            "[alerts]\ngroup_window = \"3s\"\nreminder_every = \"0s\"\nflap_changes = 100\n\n\
             [notify.webhook]\nsecret = \"{SECRET}\"\n\n\
             [notify.email]\nserver = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"netmon <netmon@thanhhoa.example.vn>\"\n",
            smtp.port
        );
        let config = CollectorConfig {
            mqtt_url: format!("mqtt://127.0.0.1:{LAB_PORT}"),
            ca_file: None,
            client_id: unique("collector"),
            province: Some(province.clone()),
            store_path: scratch.join("events.db").display().to_string(),
            snapshot_every: None,
            http_listen: "127.0.0.1:8080".into(),
            silence_after: "35s".into(),
            delivery: Default::default(),
            influx: None,
            inventory: Some(inventory.display().to_string()),
            http_token: Some(TOKEN.into()),
            extra_toml: extra,
        };
        let mut collector =
            Collector::start("collector", config, &scratch, Some(&province_ns)).unwrap();
        collector
            .wait_subscribed(&province, Duration::from_secs(20))
            .unwrap();

        let broker_addr = lab.addr("uplink", "province").unwrap();
        let url = format!("mqtt://{broker_addr}:{LAB_PORT}");
        let mut agents = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let mut config = AgentConfig::new(id, &province, &url);
            // Windows, heartbeats and keep-alive as shipped (30 s windows, so that the first
            // arrives soon; nothing arrives between them): the villages' agents are missed by the
            // broker's last will only (8–14 s with Mosquitto 2.0). The commune centre's agent
            // sends liveness messages every 2 s, as docs/alerts.md advises for it (ADR 16).
            config.report_every = Some("30s".into());
            config.heartbeat = "5m".into();
            if i == 0 {
                config.alive_every = Some("2s".into());
            }
            let (ns, target, role) = if i == 0 {
                ("commune".to_string(), broker_addr.to_string(), "province")
            } else {
                let link = format!("v{i}");
                let target = lab.addr(&link, "commune").unwrap().to_string();
                (format!("village{i}"), target, "commune")
            };
            config.targets.push(TargetConfig {
                name: if i == 0 {
                    "Sở KH&CN Thanh Hóa"
                } else {
                    "UBND xã Cẩm Tú"
                }
                .into(),
                address: target,
                role: role.into(),
            });
            let ns = lab.ns(&ns).unwrap().to_owned();
            agents.push(Agent::start(&format!("agent-{i}"), config, &scratch, Some(&ns)).unwrap());
        }
        let commune = Self {
            agents,
            collector,
            hook,
            smtp,
            _broker: broker,
            lab,
            scratch,
            province,
            ids,
        };
        commune.wait_all_online();
        // A first report window of each agent (after agent_started and targets_described), so
        // that the collector has seen each one probe.
        for id in &commune.ids {
            wait_for(
                "a probe window of each agent",
                Duration::from_secs(40),
                || {
                    let windows = ["--agent", id, "--type", "probe_window_completed"];
                    let n = commune.collector.events(&windows).ok()?.len();
                    (n >= 1).then_some(())
                },
            );
        }
        commune
    }

    /// Waits until every agent's rounds are stored and none is silent.
    fn wait_all_online(&self) {
        wait_for("all four agents online", Duration::from_secs(60), || {
            let state = self.collector.get_json("/api/v1/state").ok()?;
            let agents = state["agents"].as_array()?;
            let online = agents
                .iter()
                .filter(|a| self.ids.iter().any(|id| a["agent"] == id.as_str()))
                .filter(|a| a["online"].as_bool() == Some(true))
                .count();
            (online == 4).then_some(())
        });
    }

    /// The collector's CLI run inside the province namespace (where its HTTP API listens).
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(binary("netmon-collector"));
        c.args(args)
            .arg("--config")
            .arg(&self.collector.config_path);
        self.lab.output_in("province", &c).unwrap()
    }

    fn alerts(&self) -> serde_json::Value {
        self.collector.get_json("/api/v1/alerts").unwrap()
    }
}

/// Village `i`'s default route through the commune. The kernel drops it when the village's
/// link goes down, so it is set again after every restore.
fn route_out(lab: &Lab, i: usize) {
    let via = lab.addr(&format!("v{i}"), "commune").unwrap().to_string();
    let mut c = Command::new("ip");
    c.args(["route", "replace", "default", "via", &via]);
    lab.run_in(&format!("village{i}"), &c).unwrap();
}

/// The province's route back to the villages, through the commune. The kernel drops it when the
/// uplink goes down, so it is set again after every restore.
fn route_back(lab: &Lab) {
    let via = lab.addr("uplink", "commune").unwrap();
    let o = via.octets();
    let net = format!("{}.{}.{}.0/24", o[0], o[1], o[2]);
    let mut c = Command::new("ip");
    c.args(["route", "replace", &net, "via", &via.to_string()]);
    lab.run_in("province", &c).unwrap();
}

/// The inventory: the commune centre with the three villages behind it; the commune's IT
/// officer gets the webhook, the commune's leader the e-mail.
fn inventory(province: &str, ids: &[String], hook: &str) -> String {
    let mut out = format!(
        "[[provinces]]\nid = \"{province}\"\nname = \"Thanh Hóa\"\n\n\
         [[communes]]\nid = \"cam-tu\"\nprovince = \"{province}\"\nname = \"xã Cẩm Tú\"\ncontacts = [\"it\", \"chu-tich\"]\n\n\
         [[sites]]\nid = \"cam-tu-ubnd\"\ncommune = \"cam-tu\"\nname = \"UBND xã Cẩm Tú\"\nkind = \"commune_centre\"\nlat = 20.05\nlon = 105.47\nagents = [\"{}\"]\n\n",
        ids[0]
    );
    for (i, name) in VILLAGES.iter().enumerate() {
        out += &format!(
            "[[sites]]\nid = \"village-{i}\"\ncommune = \"cam-tu\"\nparent = \"cam-tu-ubnd\"\nname = \"{name}\"\nkind = \"village\"\nlat = 20.0{i}\nlon = 105.4{i}\nagents = [\"{}\"]\n\n",
            ids[i + 1]
        );
    }
    out += &format!(
        "[[contacts]]\nid = \"it\"\nname = \"Lê Văn Hùng\"\nchannel = \"webhook\"\nto = \"{hook}\"\n\n\
         [[contacts]]\nid = \"chu-tich\"\nname = \"Nguyễn Thị Lan\"\nchannel = \"email\"\nto = \"lan@camtu.example.vn\"\n"
    );
    out
}

fn notices(hooked: &Hooked) -> Vec<String> {
    hooked.body["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| n["notice"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Cuts `link`, returns (webhook latency, e-mail latency) in ms once both messages arrived.
fn cut_and_measure(
    commune: &Commune,
    link: &str,
    hooks_before: usize,
    mails_before: usize,
) -> (i64, i64) {
    let cut_at = Utc::now().timestamp_millis();
    commune.lab.cut(link).unwrap();
    let hooked = commune
        .hook
        .wait_for(hooks_before + 1, Duration::from_secs(30));
    assert!(
        hooked.len() > hooks_before,
        "no webhook within 30 s of cutting {link}"
    );
    let mails = commune
        .smtp
        .wait_for(mails_before + 1, Duration::from_secs(30));
    let mail_at = Utc::now().timestamp_millis();
    let webhook_ms = hooked[hooks_before].received_ms - cut_at;
    // The mail's arrival is observed by polling the Maildir (every 100 ms).
    let _ = mails;
    (webhook_ms, mail_at - cut_at)
}

#[test]
fn alerts_commune_uplink_cut_is_one_message_naming_the_villages() {
    let commune = Commune::start("alerts-commune");
    let started = Instant::now();

    let (uplink_webhook_ms, uplink_mail_ms) = cut_and_measure(&commune, "uplink", 0, 0);
    let (webhook_ms, mail_ms) = (uplink_webhook_ms, uplink_mail_ms);
    // Watch a named quiet window for anything else the cut might wrongly cause.
    quiet(QUIET_AFTER_UPLINK_CUT, || {
        (commune.hook.hooked().len() > 1).then_some(())
    });
    let hooked = commune.hook.hooked();
    assert_eq!(hooked.len(), 1, "one message for the commune: {hooked:#?}");
    let first = &hooked[0];
    assert!(first.signature_ok, "the HMAC signature verifies");
    assert_eq!(notices(first), vec!["opened"]);
    let text = first.body["text"].as_str().unwrap();
    for village in VILLAGES {
        assert!(text.contains(village), "{village} missing from: {text}");
    }
    assert!(text.contains("UBND xã Cẩm Tú"), "{text}");
    let mails = commune.smtp.messages().unwrap();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0].body.contains("thôn Trung Sơn"),
        "{}",
        mails[0].body
    );
    eprintln!(
        "uplink cut → webhook {webhook_ms} ms, e-mail ≤ {mail_ms} ms\n--- webhook text ---\n{text}\n--- e-mail ---\nSubject: {}\n{}",
        mails[0].subject, mails[0].body
    );
    assert!(
        webhook_ms <= 10_000,
        "webhook {webhook_ms} ms after the cut"
    );
    assert!(mail_ms <= 10_000, "e-mail {mail_ms} ms after the cut");

    // Acknowledge: refused without the token, accepted with it (HTTP), and by the CLI.
    let alerts = commune.alerts();
    let root = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["open"] == true && a["suppressed_by"].is_null() && a["kind"] == "agent_unreachable"
        })
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let mut curl = Command::new("curl");
    curl.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"by":"kẻ lạ"}"#,
        &format!("http://127.0.0.1:8080/api/v1/alerts/{root}/ack"),
    ]);
    let refused = commune.lab.output_in("province", &curl).unwrap();
    assert_eq!(String::from_utf8_lossy(&refused.stdout), "401");
    let output = commune.cli(&[
        "alerts",
        "ack",
        &root.to_string(),
        "--by",
        "Lê Văn Hùng",
        "--note",
        "Đã gọi VNPT",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed = commune.cli(&["alerts", "--open"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("đã nhận bởi Lê Văn Hùng"), "{listed}");

    // Restore: one recovery message with the outage's length, then nothing more (the villages
    // come back within the grace period).
    commune.lab.restore("uplink").unwrap();
    route_back(&commune.lab);
    let hooked = commune.hook.wait_for(2, Duration::from_secs(90));
    assert_eq!(hooked.len(), 2, "a recovery message");
    assert_eq!(notices(&hooked[1]), vec!["resolved"]);
    commune.wait_all_online();
    quiet(QUIET_AFTER_RECOVERY, || {
        (commune.hook.hooked().len() > 2).then_some(())
    });
    let hooked = commune.hook.hooked();
    assert_eq!(hooked.len(), 2, "nothing after the recovery: {hooked:#?}");
    eprintln!("recovery: {}", hooked[1].body["text"]);

    // Village cuts: each one message, that village only, and one recovery. The latency over
    // several cuts (NETMON_ALERT_CUTS, default 2) is printed for docs/benchmarks.md.
    let cuts: usize = std::env::var("NETMON_ALERT_CUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let (mut webhook, mut email) = (vec![uplink_webhook_ms], vec![uplink_mail_ms]);
    for cut in 0..cuts {
        let village = cut % 3;
        let link = format!("v{}", village + 1);
        let (hooks, mails) = (
            commune.hook.hooked().len(),
            commune.smtp.messages().unwrap().len(),
        );
        let (webhook_ms, mail_ms) = cut_and_measure(&commune, &link, hooks, mails);
        // Await the collector's side of the cut: an open alert and an empty outbox (everything
        // it queued has gone out). Then watch a named quiet window for a second message; the
        // assertion below is the same whether or not the outbox drained in time.
        poll_until(Duration::from_secs(30), || {
            let view = commune.alerts();
            let open = view["alerts"].as_array()?.iter().any(|a| a["open"] == true);
            (open && view["outbox"].as_array()?.is_empty()).then_some(())
        });
        quiet(QUIET_AFTER_VILLAGE_CUT, || {
            (commune.hook.hooked().len() > hooks + 1).then_some(())
        });
        let hooked = commune.hook.hooked();
        assert_eq!(hooked.len(), hooks + 1, "{hooked:#?}");
        let text = hooked[hooks].body["text"].as_str().unwrap();
        assert!(text.contains(VILLAGES[village]), "{text}");
        for other in VILLAGES.iter().filter(|v| **v != VILLAGES[village]) {
            assert!(!text.contains(other), "{other} in {text}");
        }
        eprintln!("village cut {cut} → webhook {webhook_ms} ms, e-mail ≤ {mail_ms} ms: {text}");
        assert!(webhook_ms <= 20_000, "agent unreachable within 20 s");
        webhook.push(webhook_ms);
        email.push(mail_ms);
        commune.lab.restore(&link).unwrap();
        route_out(&commune.lab, village + 1);
        let recovered = commune.hook.wait_for(hooks + 2, Duration::from_secs(90));
        assert_eq!(notices(&recovered[hooks + 1]), vec!["resolved"]);
        commune.wait_all_online();
    }
    let stats = |v: &mut Vec<i64>| {
        v.sort_unstable();
        (v[v.len() / 2], v[v.len() - 1])
    };
    let ((wm, wx), (em, ex)) = (stats(&mut webhook), stats(&mut email));
    eprintln!(
        "cut → notification over {} cuts: webhook median {wm} ms, max {wx} ms; e-mail median {em} ms, max {ex} ms",
        webhook.len()
    );
    eprintln!("alerts test took {:?}", started.elapsed());
    let _ = (
        &commune.scratch,
        &commune.province,
        &commune.ids,
        &commune.agents,
    );
}
