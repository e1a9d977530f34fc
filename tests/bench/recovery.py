#!/usr/bin/env python3
"""Recovery benchmark: collector start-up with a big store (until /healthz serves, with the
state checked against what the fleet recorded), and the drain of a backlog the broker queued
while the collector was down, against `mosquitto_sub` draining the same backlog.

1. bulk: `netmon-loadgen --store` appends N events of a simulated province (A agents, 5
   targets, a heartbeat per round) through the collector's own `Store::append` — the documented
   fast path; MQTT would take hours for 10 million events on 2 cores.
2. start-up: the release collector on that store; time from spawn until `/healthz` is 200; then
   `/api/v1/state` must list every agent with its last seq, every link, and exactly the links
   the fleet left down.
3. backlog: the collector and a persistent `mosquitto_sub -c` subscribe once and stop; the load
   generator publishes M events of B other agents flat out (queued by the broker for both);
   then `mosquitto_sub` drains its queue (timed until it has every message), then the collector
   restarts and drains its queue (timed from `/healthz` until every event is stored).

Loopback only; every process through `Children` (killed by pid); every wait has a deadline.
Prints a Markdown fragment on stdout.
"""

import json
import os
import subprocess
import time

from common import Children, free_port, log, proc_cpu_s, proc_status_kib, table
from influx import http_get, stored, wait_until
from ingest import binaries_args, canary_until, collector_toml, lines_in, start_broker

MIB = 1024


def loadgen(args, extra, timeout):
    r = subprocess.run([args.loadgen, *extra], stdout=subprocess.PIPE,
                       stderr=open(os.path.join(args.workdir, "loadgen.log"), "ab"),
                       timeout=timeout,
                       env={k: v for k, v in os.environ.items() if not k.startswith("NETMON_")})
    if r.returncode != 0:
        raise SystemExit(f"netmon-loadgen {' '.join(extra)} failed ({r.returncode})")
    return json.loads(r.stdout)


def healthy(port):
    try:
        return http_get(f"http://127.0.0.1:{port}/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def start_collector(children, args, config, http_port, log_path):
    """Spawns the collector; returns (proc, seconds until /healthz, CPU s, VmHWM MiB)."""
    t0 = time.monotonic()
    proc = children.start([args.collector, "run", "--config", config],
                          stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
                          env={**os.environ, "RUST_LOG": "warn"})
    wait_until("collector /healthz", args.startup_limit, lambda: healthy(http_port), every=0.05)
    took = time.monotonic() - t0
    return proc, took, proc_cpu_s(proc.pid), (proc_status_kib(proc.pid, "VmHWM") or 0) / MIB


def check_state(http_port, expect):
    """Compares /api/v1/state with the fleet's own account; returns a list of problems."""
    state = json.loads(http_get(f"http://127.0.0.1:{http_port}/api/v1/state", timeout=120)[1])
    fleet = [a for a in state["agents"] if a["agent"].startswith(expect["prefix"] + "-")]
    links = [lk for lk in state["links"] if lk["agent"].startswith(expect["prefix"] + "-")]
    problems = []
    if len(fleet) != expect["agents"]:
        problems.append(f"{len(fleet)} agents, expected {expect['agents']}")
    seqs = sum(a["last_seq"] for a in fleet)
    if seqs != expect["seq_total"]:
        problems.append(f"sum of last_seq {seqs}, expected {expect['seq_total']}")
    if len(links) != expect["links"]:
        problems.append(f"{len(links)} links, expected {expect['links']}")
    down = sum(1 for lk in links if lk["status"] == "down")
    if down != expect["links_down"]:
        problems.append(f"{down} links down, expected {expect['links_down']}")
    return problems, {"agents": len(fleet), "links": len(links), "down": down, "seqs": seqs}


def main():
    p = binaries_args()
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--agents", type=int, default=5_000)
    p.add_argument("--backlog-events", type=int, default=300_000)
    p.add_argument("--backlog-agents", type=int, default=5_000)
    p.add_argument("--startup-limit", type=int, default=900)
    args = p.parse_args()
    store = os.path.join(args.workdir, "recovery.db")
    log(f"recovery: appending {args.events} events of {args.agents} agents through Store::append")
    bulk = loadgen(args, ["--store", store, "--prefix", "lg", "--agents", str(args.agents),
                          "--max-events", str(args.events), "--seconds", "1"], 7200)
    size_mib = sum(os.path.getsize(store + s) for s in ("", "-wal") if os.path.exists(store + s))
    size_mib /= MIB * MIB
    log(f"recovery: {bulk['events']} events in {bulk['seconds']:.0f} s, store {size_mib:.0f} MiB")
    expect = {**bulk, "prefix": "lg"}
    with Children() as children:
        broker, mqtt_port = start_broker(children, args.workdir, "recovery")
        http_port = free_port()
        config = os.path.join(args.workdir, "recovery.toml")
        collector_toml(config, mqtt_port, store, http_port, "bench-recovery")
        clog = os.path.join(args.workdir, "collector.log")
        proc, first_s, first_cpu, first_hwm = start_collector(children, args, config, http_port,
                                                              clog)
        problems, seen = check_state(http_port, expect)
        log(f"recovery: /healthz after {first_s:.1f} s; state {seen}; problems {problems}")
        # Persistent sessions for both consumers, proved by a canary each.
        canary_until("a canary stored", mqtt_port, lambda: stored(http_port) >= 1)
        children.stop(proc, grace_s=30)
        sub_out = os.path.join(args.workdir, "sub.out")
        sub_argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1", "-c",
                    "-i", "bench-recovery-sub", "-t", "netmon/v1/bench/+/events", "-F", "%U"]
        sub = children.start(sub_argv, stdout=open(sub_out, "wb"), stderr=subprocess.DEVNULL)
        canary_until("a canary at mosquitto_sub", mqtt_port, lambda: lines_in(sub_out) >= 1)
        children.stop(sub)
        log(f"recovery: both down; publishing {args.backlog_events} events flat out")
        gen = loadgen(args, ["--port", str(mqtt_port), "--prefix", "lgb", "--agents",
                             str(args.backlog_agents), "--interval-ms", "0", "--per-message",
                             "event", "--seconds", "600", "--max-events",
                             str(args.backlog_events)], 900)
        # mosquitto_sub drains its queue first (alone on the machine), then the collector.
        base = lines_in(sub_out)
        t0 = time.monotonic()
        sub = children.start(sub_argv, stdout=open(sub_out, "ab"), stderr=subprocess.DEVNULL)
        wait_until("mosquitto_sub drained its queue", 600,
                   lambda: lines_in(sub_out) >= base + gen["messages"], every=0.2)
        sub_s = time.monotonic() - t0
        children.stop(sub)
        proc, second_s, _, _ = start_collector(children, args, config, http_port, clog)
        t1 = time.monotonic()
        cpu0 = proc_cpu_s(proc.pid)
        # The intake counts from the collector's start: the whole backlog is new to it.
        wait_until("the collector drained its queue", 900,
                   lambda: stored(http_port) >= gen["events"], every=0.2)
        drain_s = time.monotonic() - t1
        drain_cpu = proc_cpu_s(proc.pid) - cpu0
        hwm = (proc_status_kib(proc.pid, "VmHWM") or 0) / MIB
        problems2, seen2 = check_state(http_port, expect)
        backlog_expect = {"prefix": "lgb", "agents": args.backlog_agents,
                          "seq_total": gen["seq_total"], "links": args.backlog_agents * 5,
                          "links_down": None}
        problems3, seen3 = check_state(http_port, backlog_expect)
        problems3 = [x for x in problems3 if "links down" not in x]
        children.stop(proc, grace_s=30)
        children.stop(broker)

    print("#### Recovery: start-up with a big store, and a backlog queued by the broker\n")
    print(f"- store: {bulk['events']:,} events of {args.agents:,} agents (5 targets, a heartbeat "
          f"per round, outages), appended by `netmon-loadgen --store` through `Store::append` in "
          f"{bulk['seconds']:.0f} s ({bulk['events'] / bulk['seconds']:,.0f} events/s); "
          f"{size_mib:,.0f} MiB on disk")
    print(f"- backlog: {gen['events']:,} events of {args.backlog_agents:,} other agents "
          f"({gen['messages']:,} messages of one event) published flat out while both consumers "
          f"were down ({gen['events'] / gen['acked_seconds']:,.0f} events/s into the broker, "
          f"until its last PUBACK)\n")
    ok = "✅ correct" if not problems else "❌ " + "; ".join(problems)
    ok2 = "✅ correct" if not (problems2 or problems3) else "❌ " + "; ".join(problems2 + problems3)
    print(table(["measure", "value"], [
        [f"start-up until `/healthz` serves ({bulk['events']:,} events replayed)",
         f"**{first_s:.1f} s** (CPU {first_cpu:.1f} s, peak RSS {first_hwm:.0f} MiB)"],
        ["state after start-up vs the fleet's own account",
         f"{ok}: {seen['agents']:,} agents, {seen['links']:,} links, {seen['down']} down, "
         f"Σ last_seq {seen['seqs']:,}"],
        ["restart with the backlog waiting: until `/healthz`", f"{second_s:.1f} s"],
        ["backlog drained by the collector (from `/healthz`)",
         f"{drain_s:.1f} s = **{gen['events'] / drain_s:,.0f} events/s** (CPU {drain_cpu:.1f} s, "
         f"peak RSS {hwm:.0f} MiB)"],
        ["same backlog drained by `mosquitto_sub -q 1 -c` (the broker's ceiling)",
         f"{sub_s:.1f} s = {gen['messages'] / sub_s:,.0f} messages/s"],
        ["collector / mosquitto_sub", f"{(gen['events'] / drain_s) / (gen['messages'] / sub_s):.2f}×"],
        ["state after the drain", f"{ok2}: backlog agents {seen3['agents']:,}, "
         f"Σ last_seq {seen3['seqs']:,} of {gen['seq_total']:,}"],
    ]))
    print()


if __name__ == "__main__":
    main()
