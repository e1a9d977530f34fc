#!/usr/bin/env python3
"""Bytes per agent-month at the shipped defaults: what one real agent publishes (MQTT topic +
payload) and what crosses its uplink (TCP/IP, TLS, MQTT keep-alive and acknowledgements), for
three configurations run side by side:

  a  4 targets                       (defaults everywhere else)
  b  4 targets + one modem           (`tests/src/modem.py` on a pty, the e2e tests' emulator)
  c  4 targets + one modem + one SNMP router (net-snmp `snmpd`, 8 interfaces, v2c)

Per configuration: a namespace `nmvol<pid>-<x>` holds the agent; a veth `wan` joins it to the
root namespace (198.18.<n>.2 ↔ 198.18.<n>.1, RFC 2544's benchmarking range), where a private
Mosquitto listens with TLS (certificates from `deploy/mosquitto/make-certs`) and the release
collector (on Mosquitto's loopback listener) stores and acknowledges. A second veth `lan` joins
the agent to a namespace `nmvol<pid>-<x>-lan` holding the four targets (198.19.<n>.1–4) and, for
c, snmpd on 198.19.3.1:161: probes and SNMP polls never cross the measured uplink.

The agent config names only what has no default (id, province, broker, CA, journal directory,
targets, modem port, SNMP device); everything else is the agent's own default. A `mosquitto_sub`
on loopback records every message (`-F '%U %l %t %p'`: receive time, payload length, topic,
payload). After a warm-up, each agent's window starts mid-way between two report windows (30 s
after a message carrying `probe_window_completed`; without any, 95 s after start: off the 10 s and
60 s timers) and lasts `--seconds` (default 300: whole report windows, cellular readings and one
5-minute heartbeat). In it: the topic + payload bytes of what the agent published (events and
status topics; the collector's acks are reported apart), and the root side of the `wan` veth's
/sys/class/net statistics, both directions (Ethernet frames: 14 B header, no preamble or FCS).
Extrapolated to a 30-day month (× 2,592,000 s), in decimal MB / GB.

Only the namespaces made here carry traffic; every process is killed by pid and every namespace
and veth deleted at the end. Prints a Markdown fragment on stdout (and `--json` a summary for the
driver); progress on stderr. Usage:
    volume.py --agent BIN --collector BIN --workdir DIR [--seconds 300] [--configs a,b,c]
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from influx import run_collector  # noqa: E402

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROVINCE = "thanh-hoa"
# The shipped example's four targets (docs: deploy/examples/agent.toml), on the lan namespace.
TARGETS = [("Bộ định tuyến thôn Giang Trung", "gateway"), ("UBND xã Cẩm Tú", "commune"),
           ("Trung tâm dữ liệu tỉnh Thanh Hóa", "province"), ("Internet", "internet")]
# An OpenWrt-like router: lo, eth0 (towards the agent) and three veth pairs.
ROUTER_PAIRS = [("eth1", "br-lan"), ("wlan0", "wlan1"), ("lan1", "wan")]
CONFIGS = {
    "a": ("4 targets", False, False),
    "b": ("4 targets + modem", True, False),
    "c": ("4 targets + modem + SNMP router (8 interfaces)", True, True),
}
COMMUNITY = "bench-volume"
# Before the window: the boot's events, the first report window (60 s) and its batch.
WARMUP_S = 75
# Without windows (an agent of the old format), the window starts this long after the warm-up:
# off its 10 s heartbeats and 60 s cellular readings.
FALLBACK_AFTER_WARMUP_S = 20
MID_WINDOW_S = 30


def sh(*argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


class Lab:
    """The namespaces and veths of one run; `close` deletes all of them (by name)."""

    def __init__(self, tag):
        self.tag = tag
        self.namespaces = []
        self.links = []

    def netns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def close(self):
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True, timeout=30)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def build_site(lab, x, n, modem, snmp):
    """The agent's namespace, its uplink veth to the root namespace and its lan namespace."""
    agent_ns = lab.netns(f"{lab.tag}-{x}")
    lan_ns = lab.netns(f"{lab.tag}-{x}-lan")
    up = f"{lab.tag}{x}"[-15:]
    sh("ip", "link", "add", up, "type", "veth", "peer", "name", "wan", "netns", agent_ns)
    lab.links.append(up)
    sh("ip", "addr", "add", f"198.18.{n}.1/24", "dev", up)
    sh("ip", "link", "set", up, "up")
    sh("ip", "-n", agent_ns, "addr", "add", f"198.18.{n}.2/24", "dev", "wan")
    sh("ip", "-n", agent_ns, "link", "set", "wan", "up")
    sh("ip", "-n", agent_ns, "link", "add", "lan", "type", "veth", "peer", "name", "eth0",
       "netns", lan_ns)
    sh("ip", "-n", agent_ns, "addr", "add", f"198.19.{n}.254/24", "dev", "lan")
    sh("ip", "-n", agent_ns, "link", "set", "lan", "up")
    for host in range(1, len(TARGETS) + 1):
        sh("ip", "-n", lan_ns, "addr", "add", f"198.19.{n}.{host}/24", "dev", "eth0")
    sh("ip", "-n", lan_ns, "link", "set", "eth0", "up")
    if snmp:
        for a, b in ROUTER_PAIRS:
            sh("ip", "-n", lan_ns, "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "-n", lan_ns, "link", "set", a, "up")
            sh("ip", "-n", lan_ns, "link", "set", b, "up")
    return {"x": x, "n": n, "agent_ns": agent_ns, "lan_ns": lan_ns, "up": up, "modem": modem,
            "snmp": snmp, "agent_id": f"cam-tu-giang-trung-{x}"}


def make_certs(work, names):
    certs = os.path.join(work, "certs")
    script = os.path.join(ROOT, "deploy", "mosquitto", "make-certs")
    sh(script, certs, "ca")
    sh(script, certs, "server", *names)
    return certs


def start_broker(children, work, sites, certs):
    """Mosquitto in the root namespace: plain on loopback (subscriber, collector), TLS on each
    site's uplink address."""
    sub_port, tls_port = common.free_port(), common.free_port()
    conf = os.path.join(work, "mosquitto.conf")
    lines = ["per_listener_settings false", "allow_anonymous true", "persistence false",
             "max_packet_size 1048576", f"listener {sub_port} 127.0.0.1"]
    for s in sites:
        lines += [f"listener {tls_port} 198.18.{s['n']}.1", f"cafile {certs}/ca.pem",
                  f"certfile {certs}/server.pem", f"keyfile {certs}/server.key"]
    with open(conf, "w", encoding="ascii") as f:
        f.write("user root\n" + "\n".join(lines) + "\n")
    log = open(os.path.join(work, "mosquitto.log"), "wb")
    children.start(["mosquitto", "-c", conf], stdout=log, stderr=log)
    if not common.wait_port(sub_port, 10):
        raise SystemExit(f"mosquitto did not start: {common.tail(os.path.join(work, 'mosquitto.log'))}")
    return sub_port, tls_port


def start_subscriber(children, work, port):
    """mosquitto_sub on everything of the province, proved subscribed by a marker."""
    path = os.path.join(work, "sub.txt")
    out = open(path, "wb")
    children.start(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                    "-F", "%U %l %t %p", "-t", f"netmon/v1/{PROVINCE}/#", "-t", "bench/marker"],
                   stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(100):
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                        "-t", "bench/marker", "-m", "marker"], timeout=5, check=False)
        with open(path, encoding="utf-8", errors="replace") as f:
            if "bench/marker" in f.read():
                return path
        time.sleep(0.1)
    raise SystemExit("mosquitto_sub did not receive the marker within 10 s")


def start_snmpd(children, work, site):
    persist = os.path.join(work, f"snmpd-{site['x']}")
    os.makedirs(persist, exist_ok=True)
    conf = os.path.join(work, f"snmpd-{site['x']}.conf")
    address = f"198.19.{site['n']}.1"
    with open(conf, "w", encoding="ascii") as f:
        f.write(f"[snmp] persistentDir {persist}\nagentAddress udp:{address}:161\n"
                f"rocommunity {COMMUNITY} default\n")
    log = open(os.path.join(work, f"snmpd-{site['x']}.log"), "wb")
    children.start(["ip", "netns", "exec", site["lan_ns"], "snmpd", "-C", "-c", conf, "-f", "-Lo",
                    "-M", "/nonexistent", "-m", ""], stdout=log, stderr=log)
    for _ in range(50):
        r = subprocess.run(["ip", "netns", "exec", site["agent_ns"], "snmpget", "-v2c", "-c",
                            COMMUNITY, "-t", "0.5", "-r", "0", address, "1.3.6.1.2.1.1.3.0"],
                           capture_output=True, timeout=10)
        if r.returncode == 0:
            return address
        time.sleep(0.2)
    raise SystemExit(f"snmpd of site {site['x']} did not answer")


def start_modem(children, work, site, lifetime_s):
    """The e2e tests' modem emulator (answers from the agent's AT fixtures) on a pty."""
    control = os.path.join(work, f"modem-{site['x']}.mode")
    port_file = os.path.join(work, f"modem-{site['x']}.port")
    with open(control, "w", encoding="ascii") as f:
        f.write("normal")
    log = open(os.path.join(work, f"modem-{site['x']}.log"), "wb")
    children.start(["python3", os.path.join(ROOT, "tests", "src", "modem.py"),
                    os.path.join(ROOT, "agent", "tests", "fixtures", "cellular", "at"), control,
                    port_file, str(lifetime_s)], stdout=log, stderr=log)
    for _ in range(100):
        if os.path.exists(port_file):
            with open(port_file, encoding="utf-8") as f:
                port = f.read().strip()
            if port:
                return port
        time.sleep(0.1)
    raise SystemExit(f"the modem emulator wrote no port: {common.tail(log.name)}")


def agent_toml(path, site, tls_port, certs, modem_port, snmp_address, keep_alive=None):
    """Only what has no default; every other key is the agent's shipped default (unless
    `keep_alive` is given: a variant, not the defaults)."""
    n = site["n"]
    lines = [f'agent_id = "{site["agent_id"]}"', f'province = "{PROVINCE}"', "[mqtt]",
             f'url = "mqtts://198.18.{n}.1:{tls_port}"', f'ca_file = "{certs}/ca.pem"']
    if keep_alive:
        lines.append(f'keep_alive = "{keep_alive}"')
    lines += ["[journal]", f'dir = "{os.path.join(os.path.dirname(path), "journal")}"']
    for i, (name, role) in enumerate(TARGETS):
        lines += ["[[targets]]", f'name = "{name}"', f'address = "198.19.{n}.{i + 1}"',
                  f'role = "{role}"']
    if modem_port:
        lines += ["[[cellular]]", 'name = "viettel"', 'source = "at"', f'port = "{modem_port}"']
    if snmp_address:
        lines += ["[[snmp.devices]]", f'address = "{snmp_address}"', f'community = "{COMMUNITY}"']
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def collector_toml(path, port, work):
    http_port = common.free_port()
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\nclient_id = "bench-volume"\n'
                f'province = "{PROVINCE}"\n[store]\npath = "{os.path.join(work, "store.db")}"\n'
                f'[http]\nlisten = "127.0.0.1:{http_port}"\n')


def wire(link):
    """(bytes, packets) in and out of the root side of a veth: rx = from the agent."""
    def read(name):
        with open(f"/sys/class/net/{link}/statistics/{name}", encoding="ascii") as f:
            return int(f.read())
    return {k: read(k) for k in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")}


def lan_bytes(site):
    """Bytes both ways on the agent's `lan` veth: its probes (and SNMP polls), off the uplink."""
    out = json.loads(sh("ip", "-n", site["agent_ns"], "-j", "-s", "link", "show", "lan"))
    stats = out[0]["stats64"]
    return stats["rx"]["bytes"] + stats["tx"]["bytes"]


def parse_line(line):
    """(time, topic, payload bytes) of one `%U %l %t %p` line, or None."""
    head = line.split(b" ", 3)
    if len(head) < 3:
        return None
    try:
        return float(head[0]), head[2].decode("utf-8", "replace"), int(head[1]), \
            (head[3] if len(head) > 3 else b"")
    except ValueError:
        return None


def events_of(payload):
    """The events of one `events` payload: any of the batch forms."""
    try:
        batch = json.loads(payload)
    except ValueError:
        return []
    if isinstance(batch, dict) and isinstance(batch.get("events"), list):
        batch = batch["events"]
    return [e for e in (batch if isinstance(batch, list) else [batch]) if isinstance(e, dict)]


class Recording:
    """Reads the subscriber's file as it grows; keeps every message by agent."""

    def __init__(self, path):
        self.path, self.offset, self.rest = path, 0, b""
        self.by_agent = {}

    def poll(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            parsed = parse_line(line)
            if not parsed:
                continue
            t, topic, length, payload = parsed
            parts = topic.split("/")
            if len(parts) != 5:
                continue
            kinds = [e.get("type", "?") for e in events_of(payload)] if parts[4] == "events" else []
            self.by_agent.setdefault(parts[3], []).append(
                {"t": t, "kind": parts[4], "topic": len(topic.encode()), "payload": length,
                 "events": kinds})


def measure(sites, rec, seconds, warmup, agent_procs, started):
    """Runs each site's window (bounded); returns {x: {t0, t1, w0, w1, lan0, lan1}}."""
    state = {s["x"]: {} for s in sites}
    limit = started + warmup + 60 + MID_WINDOW_S + seconds + 30
    while time.time() < limit:
        rec.poll()
        now = time.time()
        for s in sites:
            st = state[s["x"]]
            proc = agent_procs[s["x"]]
            if proc.poll() is not None:
                raise SystemExit(f"agent {s['x']} exited: {common.tail(s['log'])}")
            if "t0" not in st:
                msgs = rec.by_agent.get(s["agent_id"], [])
                windows = [m["t"] for m in msgs if "probe_window_completed" in m["events"]]
                if windows:
                    t0 = windows[0] + MID_WINDOW_S
                    while t0 < started + warmup:
                        t0 += 60
                elif now >= started + warmup:
                    t0 = started + warmup + FALLBACK_AFTER_WARMUP_S
                else:
                    continue
                if now >= t0:
                    st["t0"], st["w0"], st["lan0"] = now, wire(s["up"]), lan_bytes(s)
                    common.log(f"[volume] {s['x']}: window of {seconds} s from now")
            elif "t1" not in st and now >= st["t0"] + seconds:
                st["t1"], st["w1"], st["lan1"] = now, wire(s["up"]), lan_bytes(s)
                common.log(f"[volume] {s['x']}: window done")
        if all("t1" in st for st in state.values()):
            return state
        time.sleep(0.2)  # the polling period of the bounded measurement loop
    raise SystemExit("the volume windows did not complete in time")


def figures(site, st, rec):
    t0, t1 = st["t0"], st["t1"]
    span = t1 - t0
    msgs = [m for m in rec.by_agent.get(site["agent_id"], []) if t0 <= m["t"] < t1]
    own = [m for m in msgs if m["kind"] in ("events", "status")]
    acks = [m for m in msgs if m["kind"] == "ack"]
    kinds = {}
    for m in own:
        for k in m["events"]:
            kinds[k] = kinds.get(k, 0) + 1
    topic = sum(m["topic"] for m in own)
    payload = sum(m["payload"] for m in own)
    up = st["w1"]["rx_bytes"] - st["w0"]["rx_bytes"]
    down = st["w1"]["tx_bytes"] - st["w0"]["tx_bytes"]
    packets = (st["w1"]["rx_packets"] - st["w0"]["rx_packets"]
               + st["w1"]["tx_packets"] - st["w0"]["tx_packets"])
    return {"config": site["x"], "span": span, "messages": len(own), "events": sum(kinds.values()),
            "kinds": kinds, "topic": topic, "payload": payload,
            "mqtt_bps": (topic + payload) / span, "ack_messages": len(acks),
            "ack_bytes": sum(m["topic"] + m["payload"] for m in acks),
            "wire_up": up, "wire_down": down, "wire_packets": packets,
            "wire_bps": (up + down) / span, "lan_bps": (st["lan1"] - st["lan0"]) / span}



def report(results, seconds, agent, keep_alive=None):
    at = f"the defaults but `mqtt.keep_alive = \"{keep_alive}\"`" if keep_alive else \
        "the shipped defaults"
    print(f"#### Bytes per agent-month at {at} (real agent, {seconds} s windows, × 30 days)\n")
    print(f"- agent `{os.path.relpath(agent, ROOT)}` in a network namespace, TLS (P-256 "
          "certificates from `deploy/mosquitto/make-certs`) over a veth to a private Mosquitto "
          f"{mosquitto_version()} in the root namespace; the release collector stores and "
          "acknowledges; targets and the SNMP router in a second namespace behind the agent")
    print("- MQTT: topic + payload of every message the agent published (events + status) "
          "during the window, from `mosquitto_sub -F '%U %l %t %p'`; wire: the uplink veth's "
          "Ethernet bytes, both directions (TCP/IP, TLS records, MQTT headers, PUBACKs, "
          "keep-alive pings, the collector's acks)\n")
    rows = []
    for r in results:
        per_min = 60 / r["span"]
        rows.append([
            CONFIGS[r["config"]][0],
            f"{r['messages'] * per_min:.1f} / {r['events'] * per_min:.1f}",
            f"{r['mqtt_bps']:,.1f}", f"**{common.per_month(r['mqtt_bps'])}**",
            f"{r['wire_up'] / r['span']:,.1f} / {r['wire_down'] / r['span']:,.1f}",
            f"**{common.per_month(r['wire_bps'])}**",
            f"{r['wire_packets'] / r['span']:.2f}",
        ])
    print(common.table(["configuration", "messages / events per min", "MQTT B/s",
                        "MQTT per month", "wire up / down B/s", "wire per month",
                        "packets/s"], rows))
    print()
    print("Events in the window, by type (per minute):\n")
    for r in results:
        kinds = ", ".join(f"{k} {v * 60 / r['span']:.1f}" for k, v in sorted(r["kinds"].items()))
        print(f"- {r['config']}: {kinds or 'none'}; collector acks received by the agent: "
              f"{r['ack_messages']} ({r['ack_bytes']} B topic + payload); the probes' own "
              f"traffic (and SNMP) on the `lan` veth: {r['lan_bps']:,.0f} B/s = "
              f"{common.per_month(r['lan_bps'])} per month")
    print()
    goals = {"a": 100e6, "c": 150e6}
    print("Goals (MQTT topic + payload per agent-month):\n")
    for r in results:
        if r["config"] in goals:
            got = r["mqtt_bps"] * common.MONTH_S
            print(f"- {CONFIGS[r['config']][0]}: {common.per_month(r['mqtt_bps'])} ≤ "
                  f"{goals[r['config']] / 1e6:.0f} MB: {common.verdict(got <= goals[r['config']])}")
    print()


def mosquitto_version():
    r = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=10)
    first = (r.stdout or r.stderr).splitlines()
    return first[0].replace("mosquitto version ", "") if first else "?"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", required=True)
    parser.add_argument("--collector", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=WARMUP_S)
    parser.add_argument("--keep-alive", help="a variant: this mqtt.keep_alive instead of the "
                        "agent's default (the report says so)")
    parser.add_argument("--configs", default="a,b,c")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    chosen = [x for x in args.configs.split(",") if x]
    if not chosen or any(x not in CONFIGS for x in chosen):
        raise SystemExit(f"--configs: a comma list of {', '.join(CONFIGS)}")
    work = os.path.join(args.workdir, "volume")
    os.makedirs(work, exist_ok=True)
    lab = Lab(f"nmvol{os.getpid()}")
    try:
        with common.Children() as children:
            results = run(children, lab, work, args, chosen)
    finally:
        lab.close()
    report(results, args.seconds, args.agent, args.keep_alive)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f)


def run(children, lab, work, args, chosen):
    sites = []
    for x in chosen:
        n = "abc".index(x) + 1
        _, modem, snmp = CONFIGS[x]
        sites.append(build_site(lab, x, n, modem, snmp))
    certs = make_certs(work, [f"198.18.{s['n']}.1" for s in sites])
    sub_port, tls_port = start_broker(children, work, sites, certs)
    rec = Recording(start_subscriber(children, work, sub_port))
    ccfg = os.path.join(work, "collector.toml")
    collector_toml(ccfg, sub_port, work)
    run_collector(children, args.collector, ccfg, os.path.join(work, "collector.log"))
    lifetime = args.warmup + 60 + MID_WINDOW_S + args.seconds + 120
    procs = {}
    for s in sites:
        modem_port = start_modem(children, work, s, lifetime) if s["modem"] else None
        snmp_address = start_snmpd(children, work, s) if s["snmp"] else None
        d = os.path.join(work, f"agent-{s['x']}")
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "agent.toml")
        agent_toml(cfg, s, tls_port, certs, modem_port, snmp_address, args.keep_alive)
        s["log"] = os.path.join(d, "agent.log")
        log = open(s["log"], "wb")
        procs[s["x"]] = children.start(["ip", "netns", "exec", s["agent_ns"], args.agent, "run",
                                        "--config", cfg], stdout=log, stderr=log)
    started = time.time()
    common.log(f"[volume] {len(sites)} agents started; warm-up {args.warmup} s, then "
               f"{args.seconds} s windows")
    state = measure(sites, rec, args.seconds, args.warmup, procs, started)
    for proc in procs.values():
        children.stop(proc, grace_s=5)
    rec.poll()
    return [figures(s, state[s["x"]], rec) for s in sites]


if __name__ == "__main__":
    main()
