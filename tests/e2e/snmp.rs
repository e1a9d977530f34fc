//! SNMP polling against a real net-snmp snmpd exporting a lab namespace's real interfaces.
//!
//! The lab: `village` (the agent) ─mgmt─ `router` (snmpd on its mgmt address) ─uplink─ `commune`.
//! Traffic is pushed from the router to the commune over `uplink` by a bounded Python TCP sender
//! (bytes and seconds bounded) into a sink with a bounded lifetime. The agent has no broker
//! (`mqtt://127.0.0.1:1` refuses), so every event stays in its journal, which the test reads:
//! the same recorder and journal the probe events go through.
//!
//! - rates agree with the kernel's own `tx_bytes` of `uplink` within 5% (SNMPv3 authPriv);
//!   restarting snmpd gives one `device_rebooted` and no spike; `ip link set uplink down` gives
//!   `interface_went_down`, up again `interface_came_back`;
//! - a `tbf` 8 Mbit/s on `uplink`, saturated: utilisation of the configured capacity stays near
//!   100% while the flood lasts and falls when it stops (the timeline is printed);
//! - a wrong community, a port where nothing listens and a UDP socket answering random bytes are
//!   each reported once with a clear error, while the good device keeps being sampled; and the
//!   `snmp` CLI shows the same.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use netmon_events::{Envelope, Event};
use netmon_tests::agent::{journal_records, journal_segments};
use netmon_tests::snmpd::{
    COMMUNITY, Snmpd, V3_AUTH_PASSWORD, V3_PRIV_PASSWORD, V3_USER, garbage_responder,
};
use netmon_tests::{Agent, AgentConfig, Lab, Proc, Scratch, TargetConfig, binary, wait_for};

struct Site {
    agent: Agent,
    snmpd: Snmpd,
    scratch: Scratch,
    /// The router's mgmt address, where snmpd listens (port 161).
    router: String,
    /// The commune's end of `uplink`.
    commune: String,
    lab: Lab,
}

/// Builds the lab, starts snmpd in `router` and the agent in `village` with the `[snmp]`
/// section `snmp(router_address)`.
fn site(stem: &str, snmp: impl Fn(&str) -> String) -> Site {
    let scratch = Scratch::new(stem).unwrap();
    let mut lab = Lab::new().unwrap();
    lab.add_namespace("village").unwrap();
    lab.add_namespace("router").unwrap();
    lab.add_namespace("commune").unwrap();
    lab.connect("mgmt", "village", "router").unwrap();
    lab.connect("uplink", "router", "commune").unwrap();
    let router = lab.addr("mgmt", "router").unwrap().to_string();
    let commune = lab.addr("uplink", "commune").unwrap().to_string();
    let address: SocketAddr = format!("{router}:161").parse().unwrap();
    let snmpd = Snmpd::start("snmpd", &scratch, Some(lab.ns("router").unwrap()), address).unwrap();
    let mut config = AgentConfig::new("snmp-lab", "thanh-hoa", "mqtt://127.0.0.1:1");
    config.targets.push(TargetConfig {
        name: "Bộ định tuyến xã".into(),
        address: router.clone(),
        role: "gateway".into(),
    });
    config.extra_toml = snmp(&router);
    let agent = Agent::start("agent", config, &scratch, Some(lab.ns("village").unwrap())).unwrap();
    Site {
        agent,
        snmpd,
        scratch,
        router,
        commune,
        lab,
    }
}

impl Site {
    /// Every event in the agent's journal so far, in order.
    fn events(&self) -> Vec<Envelope> {
        let mut all = Vec::new();
        for segment in journal_segments(&self.agent.journal_dir()).unwrap_or_default() {
            let bytes = std::fs::read(segment).unwrap_or_default();
            all.extend(journal_records(&bytes).into_iter().map(|r| r.envelope));
        }
        all
    }

    /// The `interface_counters_sampled` of interface `uplink` of device `address`.
    fn uplink_samples(&self, address: &str) -> Vec<(Envelope, f64, f64, Option<f64>)> {
        self.events()
            .into_iter()
            .filter_map(|e| match &e.event {
                Event::InterfaceCountersSampled {
                    device,
                    interface,
                    out_bps,
                    interval_ms,
                    out_util_pct,
                    ..
                } if device.address == address && interface.name == "uplink" => {
                    let (bps, ms, util) = (*out_bps, *interval_ms, *out_util_pct);
                    Some((e, bps, ms as f64, util))
                }
                _ => None,
            })
            .collect()
    }

    fn count(&self, kind: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e.event.type_name() == kind)
            .count()
    }

    /// The kernel's `tx_bytes` of the router's end of `uplink`.
    fn kernel_tx_bytes(&self) -> u64 {
        let mut cat = Command::new("cat");
        cat.arg("/sys/class/net/uplink/statistics/tx_bytes");
        let out = self.lab.run_in("router", &cat).unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// A TCP sink in `commune` and a sender in `router` pushing at most `bytes` at most
    /// `rate_bps` (0: as fast as the link takes them) for at most `seconds`.
    fn flood(&self, bytes: u64, rate_bps: u64, seconds: u64) -> (Proc, Proc) {
        let sink = format!(
            "import socket, time\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{addr}', 5001)); s.listen(1); s.settimeout({life})\n\
             c, _ = s.accept(); c.settimeout(2); end = time.time() + {life}\n\
             while time.time() < end:\n\
             \x20   try:\n\
             \x20       if not c.recv(1 << 16): break\n\
             \x20   except socket.timeout:\n\
             \x20       pass\n",
            addr = self.commune,
            life = seconds + 10,
        );
        let sender = format!(
            "import socket, time\n\
             end = time.time() + {seconds}; start = time.time()\n\
             for _ in range(100):\n\
             \x20   try:\n\
             \x20       c = socket.create_connection(('{addr}', 5001), timeout=1); break\n\
             \x20   except OSError:\n\
             \x20       time.sleep(0.05)\n\
             c.settimeout(1)\n\
             chunk = b'x' * 65536; sent = 0\n\
             while sent < {bytes} and time.time() < end:\n\
             \x20   if {rate} > 0 and sent * 8 > {rate} * (time.time() - start):\n\
             \x20       time.sleep(0.005); continue\n\
             \x20   try:\n\
             \x20       sent += c.send(chunk[: min(65536, {bytes} - sent)])\n\
             \x20   except socket.timeout:\n\
             \x20       pass\n\
             c.close(); print('sent', sent)\n",
            addr = self.commune,
            rate = rate_bps,
        );
        let sink_py = self.scratch.write("sink.py", sink).unwrap();
        let sender_py = self.scratch.write("sender.py", sender).unwrap();
        let mut py = Command::new("python3");
        py.arg(sink_py);
        let sink = self
            .lab
            .spawn_in("commune", "sink", &py, &self.scratch.join("sink.log"))
            .unwrap();
        let mut py = Command::new("python3");
        py.arg(sender_py);
        let sender = self
            .lab
            .spawn_in("router", "sender", &py, &self.scratch.join("sender.log"))
            .unwrap();
        (sink, sender)
    }
}

fn v3_device(router: &str) -> String {
    format!(
        "\n[snmp]\ninterval = \"2s\"\nreport_every = \"2s\"\ntimeout = \"1s\"\n\n[[snmp.devices]]\naddress = \"{router}\"\n\
         version = \"3\"\nuser = \"{V3_USER}\"\nauth_protocol = \"sha1\"\nauth_password = \"{V3_AUTH_PASSWORD}\"\n\
         priv_protocol = \"aes128\"\npriv_password = \"{V3_PRIV_PASSWORD}\"\n\
         [[snmp.devices.interfaces]]\nname = \"uplink\"\n"
    )
}

#[test]
fn snmp_lab_rates_match_kernel_reboot_and_interface_down() {
    let mut site = site("snmp-rates", v3_device);
    let router = site.router.clone();
    wait_for("two uplink samples", Duration::from_secs(30), || {
        (site.uplink_samples(&router).len() >= 2).then_some(())
    });
    // Baseline: samples so far, then the kernel's counter.
    let before = site.uplink_samples(&router).len();
    let k0 = site.kernel_tx_bytes();
    let (mut sink, mut sender) = site.flood(15_000_000, 20_000_000, 20);
    sender.wait_timeout(Duration::from_secs(30)).unwrap();
    sink.wait_timeout(Duration::from_secs(30)).unwrap();
    let k1 = site.kernel_tx_bytes();
    // Let snmpd's interface cache and two more polls pass the end of the flood.
    let settled = Instant::now();
    wait_for("samples after the flood", Duration::from_secs(30), || {
        (settled.elapsed() > Duration::from_secs(6)
            && site.uplink_samples(&router).len() >= before + 4)
            .then_some(())
    });
    let k2 = site.kernel_tx_bytes();
    let samples = site.uplink_samples(&router);
    let agent_bytes: f64 = samples[before..]
        .iter()
        .map(|(_, bps, ms, _)| bps * ms / 1000.0 / 8.0)
        .sum();
    let kernel_bytes = (k2 - k0) as f64;
    let error = (agent_bytes - kernel_bytes).abs() / kernel_bytes * 100.0;
    let peak = samples[before..]
        .iter()
        .map(|s| s.1)
        .fold(0.0_f64, f64::max);
    println!(
        "SNMP vs kernel: kernel tx {kernel_bytes:.0} B (flood {} B), agent {agent_bytes:.0} B over {} samples, \
         error {error:.2}%, peak {:.2} Mbit/s",
        k1 - k0,
        samples.len() - before,
        peak / 1e6
    );
    assert!(k1 - k0 >= 14_000_000, "the flood did not go through");
    assert!(error < 5.0, "agent and kernel disagree by {error:.2}%");

    // snmpd restarts: one device_rebooted, no spike.
    let rebooted_before = site.count("device_rebooted");
    assert_eq!(rebooted_before, 0);
    let samples_before = site.uplink_samples(&router).len();
    site.snmpd.restart().unwrap();
    wait_for("device_rebooted", Duration::from_secs(30), || {
        (site.count("device_rebooted") == 1).then_some(())
    });
    wait_for("samples after the reboot", Duration::from_secs(30), || {
        (site.uplink_samples(&router).len() >= samples_before + 3).then_some(())
    });
    assert_eq!(site.count("device_rebooted"), 1, "exactly one reboot");
    let after = site.uplink_samples(&router);
    for (e, bps, _, _) in &after[samples_before..] {
        assert!(
            *bps < 1e6,
            "a spike after the reboot: {bps} bit/s at seq {}",
            e.seq
        );
    }
    let reboot = site
        .events()
        .into_iter()
        .find(|e| e.event.type_name() == "device_rebooted")
        .unwrap();
    let Event::DeviceRebooted {
        uptime_s,
        previous_uptime_s,
        ..
    } = reboot.event
    else {
        unreachable!()
    };
    println!("device_rebooted: uptime {uptime_s} s, previous {previous_uptime_s} s");
    assert!(previous_uptime_s > uptime_s);

    // The uplink goes down, then comes back.
    let mut down = Command::new("ip");
    down.args(["link", "set", "dev", "uplink", "down"]);
    site.lab.run_in("router", &down).unwrap();
    wait_for("interface_went_down", Duration::from_secs(20), || {
        (site.count("interface_went_down") == 1).then_some(())
    });
    let mut up = Command::new("ip");
    up.args(["link", "set", "dev", "uplink", "up"]);
    site.lab.run_in("router", &up).unwrap();
    wait_for("interface_came_back", Duration::from_secs(20), || {
        (site.count("interface_came_back") == 1).then_some(())
    });
    site.agent.proc.assert_running().unwrap();
    site.agent.stop().unwrap();
}

#[test]
fn snmp_lab_saturated_tbf_link_shows_sustained_utilisation() {
    let site = site("snmp-tbf", |router| {
        format!(
            "\n[snmp]\ninterval = \"2s\"\nreport_every = \"2s\"\ntimeout = \"1s\"\n\n[[snmp.devices]]\naddress = \"{router}\"\n\
             community = \"{COMMUNITY}\"\n[[snmp.devices.interfaces]]\nname = \"uplink\"\ncapacity_bps = 8000000\n"
        )
    });
    let router = site.router.clone();
    let mut tbf = Command::new("tc");
    tbf.args([
        "qdisc", "add", "dev", "uplink", "root", "tbf", "rate", "8mbit", "burst", "32kbit",
        "latency", "50ms",
    ]);
    site.lab.run_in("router", &tbf).unwrap();
    wait_for("two uplink samples", Duration::from_secs(30), || {
        (site.uplink_samples(&router).len() >= 2).then_some(())
    });
    let start = Instant::now();
    let before = site.uplink_samples(&router).len();
    // 16 s as fast as TCP goes through 8 Mbit/s: at most ~16 MB, bounded at 40 MB.
    let (mut sink, mut sender) = site.flood(40_000_000, 0, 16);
    sender.wait_timeout(Duration::from_secs(30)).unwrap();
    sink.wait_timeout(Duration::from_secs(30)).unwrap();
    let stopped = start.elapsed();
    wait_for("samples after the flood", Duration::from_secs(30), || {
        (site.uplink_samples(&router).len() >= before + 12).then_some(())
    });
    let samples = site.uplink_samples(&router);
    let t0 = samples[before].0.mono_ms;
    println!(
        "congestion timeline (flood 0 s – {:.1} s after it began):",
        stopped.as_secs_f64()
    );
    let mut run = 0;
    let mut longest = 0;
    for (e, bps, _, util) in &samples[before..] {
        let util = util.unwrap_or(0.0);
        println!(
            "  t={:>5.1}s  out {:>6.2} Mbit/s  util {util:>5.1}%",
            (e.mono_ms - t0) as f64 / 1000.0,
            bps / 1e6
        );
        run = if util >= 85.0 { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    assert!(
        longest >= 4,
        "utilisation ≥ 85% for at least 4 consecutive samples (8 s), got {longest}"
    );
    let last = samples.last().unwrap().3.unwrap_or(100.0);
    assert!(
        last < 20.0,
        "utilisation falls when the flood stops, last {last}%"
    );
}

#[test]
fn snmp_lab_bad_devices_are_reported_and_do_not_stop_good_ones() {
    let mut site = site("snmp-bad", |router| {
        format!(
            "\n[snmp]\ninterval = \"1s\"\nreport_every = \"1s\"\ntimeout = \"300ms\"\nretries = 1\n\n\
             [[snmp.devices]]\naddress = \"{router}\"\ncommunity = \"{COMMUNITY}\"\n\n\
             [[snmp.devices]]\naddress = \"{router}:161\"\ncommunity = \"wrong\"\n\n\
             [[snmp.devices]]\naddress = \"{router}:1162\"\ncommunity = \"{COMMUNITY}\"\n\n\
             [[snmp.devices]]\naddress = \"{router}:1163\"\ncommunity = \"{COMMUNITY}\"\n"
        )
    });
    let router = site.router.clone();
    let garbage_at: SocketAddr = format!("{router}:1162").parse().unwrap();
    let _garbage = garbage_responder(
        &site.scratch,
        Some(site.lab.ns("router").unwrap()),
        garbage_at,
        Duration::from_secs(120),
    )
    .unwrap();
    let errors = wait_for(
        "three devices reported silent",
        Duration::from_secs(30),
        || {
            let errors: Vec<(String, String)> = site
                .events()
                .into_iter()
                .filter_map(|e| match e.event {
                    Event::DeviceStoppedAnswering { device, error } => {
                        Some((device.address, error))
                    }
                    _ => None,
                })
                .collect();
            (errors.len() >= 3).then_some(errors)
        },
    );
    for (address, error) in &errors {
        println!("{address}: {error}");
    }
    let find = |address: String| {
        errors
            .iter()
            .find(|(a, _)| *a == address)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("no device_stopped_answering for {address}: {errors:?}"))
    };
    assert!(find(format!("{router}:161")).contains("no answer within"));
    assert!(find(format!("{router}:1162")).contains("not a valid SNMP message"));
    assert!(find(format!("{router}:1163")).contains("refused"));
    // The good device is sampled all along; each bad one is reported once, not in a loop.
    let good_before = site.uplink_samples(&router).len();
    wait_for(
        "5 more samples of the good device",
        Duration::from_secs(20),
        || (site.uplink_samples(&router).len() >= good_before + 5).then_some(()),
    );
    assert_eq!(site.count("device_stopped_answering"), 3);
    site.agent.proc.assert_running().unwrap();

    // The CLI says the same, device by device.
    let mut cli = Command::new(binary("netmon-agent"));
    cli.args(["snmp", "--json", "--sample", "1s", "--config"])
        .arg(&site.agent.config_path);
    let out = site.lab.output_in("village", &cli).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a device failed: exit 1\n{stdout}"
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0]["error"].is_null(), "{stdout}");
    let uplink = lines[0]["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["interface"]["name"] == "uplink")
        .unwrap_or_else(|| panic!("no uplink in {stdout}"));
    assert_eq!(uplink["oper_status"], "up");
    assert!(
        lines[1..].iter().all(|l| l["error"].is_string()),
        "{stdout}"
    );
}
