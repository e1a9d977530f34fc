#!/usr/bin/env python3
"""SNMP polling cost: the agent polling 10 devices x 48 interfaces every 10 s.

A network namespace of our own (`nmbench-snmp-PID`) gets 24 veth pairs (48 interfaces, + lo), and
10 net-snmp snmpd instances inside it listen on 127.0.0.1:16101..16110 (each exports the same 48
49 interfaces: to the agent they are 10 devices). The agent runs inside the namespace with those 10
devices (v2c, GetBulk) and no broker (events stay in its journal), for `--seconds`; measured from
/proc: CPU seconds (utime+stime), peak RSS (VmHWM), and the interface samples in the journal.
Traffic stays inside the namespace's loopback. Every process is killed by pid; the namespace is
deleted at the end.

Prints a Markdown section on stdout; progress on stderr. Usage:
    snmp.py --agent target/release/netmon-agent --workdir DIR [--seconds 120]
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DEVICES = 10
INTERFACES = 48
BASE_PORT = 16101


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def journal_counts(directory):
    """Event types in the agent's journal segments (length u32 LE, crc u32, JSON)."""
    counts = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".seg"):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        offset = 0
        while offset + 8 <= len(data):
            (length,) = struct.unpack_from("<I", data, offset)
            payload = data[offset + 8 : offset + 8 + length]
            if len(payload) < length:
                break
            try:
                kind = json.loads(payload)["type"]
            except (ValueError, KeyError):
                break
            counts[kind] = counts.get(kind, 0) + 1
            offset += 8 + length
    return counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agent", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seconds", type=int, default=120)
    args = parser.parse_args()
    ns = f"nmbench-snmp-{os.getpid()}"
    work = os.path.join(args.workdir, "snmp")
    os.makedirs(work, exist_ok=True)
    sh("ip", "netns", "add", ns)
    try:
        with common.Children() as children:
            run(children, ns, work, args)
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def run(children, ns, work, args):
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    # 24 veth pairs inside the namespace: 48 interfaces (+ lo); this kernel has no `dummy`.
    for i in range(INTERFACES // 2):
        sh("ip", "-n", ns, "link", "add", f"porta{i}", "type", "veth", "peer", "name", f"portb{i}")
        sh("ip", "-n", ns, "link", "set", f"porta{i}", "up")
        sh("ip", "-n", ns, "link", "set", f"portb{i}", "up")
    snmpds = []
    for d in range(DEVICES):
        port = BASE_PORT + d
        persist = os.path.join(work, f"snmpd{d}")
        os.makedirs(persist, exist_ok=True)
        conf = os.path.join(work, f"snmpd{d}.conf")
        with open(conf, "w", encoding="ascii") as f:
            f.write(f"[snmp] persistentDir {persist}\nagentAddress udp:127.0.0.1:{port}\n"
                    "rocommunity bench default\n")
        log = open(os.path.join(work, f"snmpd{d}.log"), "wb")
        snmpds.append(children.start(
            ["ip", "netns", "exec", ns, "snmpd", "-C", "-c", conf, "-f", "-Lo", "-M",
             "/nonexistent", "-m", ""], stdout=log, stderr=log))
    for d in range(DEVICES):
        ok = False
        for _ in range(50):
            r = subprocess.run(["ip", "netns", "exec", ns, "snmpget", "-v2c", "-c", "bench", "-t",
                                "0.5", "-r", "0", f"127.0.0.1:{BASE_PORT + d}",
                                "1.3.6.1.2.1.1.3.0"], capture_output=True, timeout=10)
            if r.returncode == 0:
                ok = True
                break
            time.sleep(0.2)
        if not ok:
            raise SystemExit(f"snmpd {d} did not answer")
    journal = os.path.join(work, "journal")
    config = os.path.join(work, "agent.toml")
    with open(config, "w", encoding="ascii") as f:
        f.write('agent_id = "bench-snmp"\nprovince = "bench"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
                f'[journal]\ndir = "{journal}"\nmax_bytes = 268435456\n'
                '[[targets]]\nname = "lo"\naddress = "127.0.0.1"\nrole = "gateway"\n'
                '[snmp]\ninterval = "10s"\n')
        for d in range(DEVICES):
            f.write(f'[[snmp.devices]]\naddress = "127.0.0.1:{BASE_PORT + d}"\n'
                    'community = "bench"\n')
    common.log(f"[snmp] agent polling {DEVICES} x {INTERFACES} every 10 s for {args.seconds} s")
    alog = open(os.path.join(work, "agent.log"), "wb")
    agent = children.start(["ip", "netns", "exec", ns, args.agent, "run", "--config", config],
                           stdout=alog, stderr=alog)
    start = time.monotonic()
    rss = []
    while time.monotonic() - start < args.seconds:
        if agent.poll() is not None:
            raise SystemExit(f"the agent exited: {common.tail(os.path.join(work, 'agent.log'))}")
        value = common.proc_status_kib(agent.pid, "VmRSS")
        if value:
            rss.append(value)
        time.sleep(1)  # the measurement window's sampling period, not a synchronisation
    cpu = common.proc_cpu_s(agent.pid)
    hwm = common.proc_status_kib(agent.pid, "VmHWM")
    snmpd_cpu = sum(common.proc_cpu_s(p.pid) for p in snmpds if p.poll() is None)
    children.stop(agent)
    counts = journal_counts(journal)
    samples = counts.get("interface_counters_sampled", 0)
    polls = args.seconds // 10
    print("#### SNMP polling: 10 devices x 48 interfaces (+ lo) every 10 s "
          f"(net-snmp in a namespace, v2c GetBulk, {args.seconds} s)\n")
    print(common.table(
        ["measure", "value"],
        [
            ["agent CPU (utime+stime)", f"{cpu:.2f} s = {cpu / args.seconds * 100:.2f}% of one core"],
            ["agent peak RSS (VmHWM)", f"{hwm / 1024:.1f} MiB" if hwm else "n/a"],
            ["agent median RSS", f"{common.median(rss) / 1024:.1f} MiB" if rss else "n/a"],
            ["10 snmpd CPU (for scale)", f"{snmpd_cpu:.2f} s"],
            ["interface samples in the journal", f"{samples} (expected ≈ {DEVICES * (INTERFACES + 1)} x "
                                                 f"{polls - 1} = {DEVICES * (INTERFACES + 1) * (polls - 1)})"],
            ["device_stopped_answering", str(counts.get("device_stopped_answering", 0))],
        ]))
    print()


if __name__ == "__main__":
    main()
