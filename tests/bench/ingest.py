#!/usr/bin/env python3
"""Collector ingest benchmark: sustained events/s stored, lag publish → stored, collector CPU and
RSS, against `mosquitto_sub` receiving the same stream (the broker's ceiling on this machine).

Each stage is `AGENTS:INTERVAL_MS:PER_MESSAGE` (PER_MESSAGE `event` or `round`, see
`netmon-loadgen --help`): a fresh private Mosquitto on loopback, the release collector (a fresh
store; optionally its InfluxDB projection to a private VictoriaMetrics), `mosquitto_sub -q 1` on
the same `events` topics, and `netmon-loadgen` simulating the fleet for `--seconds`. Both
consumers are proved subscribed (a canary event reaches each) before the load starts.

- stored: the collector's own store, read back read-only afterwards: events of the fleet, the
  window first → last `received`, and lag = `received` − the envelope's own `time` (stamped by
  the load generator just before publishing), p50 / p99 / max over every event.
- peer: messages `mosquitto_sub` printed (`-F %U`: its receive time), first → last; events/s =
  messages/s × the stage's events per message.
- CPU: utime + stime from /proc over the window (load start → last event stored), RSS: VmHWM
  and the median of 1 s VmRSS samples.

Loopback only; every process through `Children` (killed by pid); every wait has a deadline.
Prints a Markdown fragment on stdout.
"""

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import threading
import time

from common import (Children, free_port, log, proc_cpu_s, proc_status_kib, ratio, table,
                    verdict, wait_port)
from influx import Servers, deb_version, http_get, iso, run_collector, stored, wait_until

MIB = 1024


def start_broker(children, workdir, name):
    """A private Mosquitto sized like deploy/mosquitto/netmon.conf (persistence off)."""
    port = free_port()
    d = os.path.join(workdir, f"mosquitto-{name}")
    os.makedirs(d, exist_ok=True)
    conf = os.path.join(d, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
                "max_queued_messages 2000000\nmax_inflight_messages 1000\n"
                "max_packet_size 1048576\npersistence false\n")
    proc = children.start(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                          stderr=open(os.path.join(d, "log"), "wb"))
    if not wait_port(port, 10):
        raise SystemExit("mosquitto did not start")
    return proc, port


def collector_toml(path, mqtt_port, store, http_port, client, influx=None, extra="",
                   keep_alive=None):
    lines = ["[mqtt]", f'url = "mqtt://127.0.0.1:{mqtt_port}"', f'client_id = "{client}"',
             'province = "bench"'] + ([f'keep_alive = "{keep_alive}"'] if keep_alive else []) + [ "[store]", f'path = "{store}"', "[http]",
             f'listen = "127.0.0.1:{http_port}"', "[silence]", 'after = "1h"']
    if influx:
        lines += ["[influx]"] + [f"{k} = {json.dumps(v)}" for k, v in influx.items()]
    if extra:
        lines.append(extra)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def canary_until(what, mqtt_port, check):
    """Publishes canary heartbeats (agent bench-canary) until `check()` holds (30 s at most)."""
    seq = 0

    def published_and_checked():
        nonlocal seq
        seq += 1
        canary(mqtt_port, seq)
        time.sleep(0.3)
        return check()

    wait_until(what, 30, published_and_checked)


def canary(mqtt_port, seq):
    hb = [{"v": 1, "agent": "bench-canary", "boot": "canary-ingest", "seq": seq,
           "time": iso(int(time.time() * 1000)), "mono_ms": seq * 1000,
           "type": "agent_heartbeat", "uptime_s": seq, "backlog": 0}]
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1",
                    "-t", "netmon/v1/bench/bench-canary/events", "-m", json.dumps(hb)],
                   check=True, timeout=10)


def lines_in(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


class Sampler(threading.Thread):
    """Every second: the collector's VmRSS and its stored count."""

    def __init__(self, pid, http_port):
        super().__init__(daemon=True)
        self.pid, self.http_port = pid, http_port
        self.rss, self.stored = [], []
        self.stop_event = threading.Event()

    def run(self):
        for _ in range(7200):
            if self.stop_event.wait(1.0):
                return
            rss = proc_status_kib(self.pid, "VmRSS")
            if rss:
                self.rss.append(rss)
            self.stored.append((time.monotonic(), stored(self.http_port)))


def store_figures(path):
    """Fleet events in the store, their received window and lag percentiles (ms).

    Schema 5 (ADR 15): the agent is the row's stream's; `time` is the effective time in ms, and
    the reception and the envelope's own time are `time` plus `received_dt` and `agent_dt`, so
    the lag received − envelope time is `received_dt − agent_dt`. `flags` bit 0 is set on
    collector-made rows."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = "events e JOIN streams s ON s.id = e.stream"
    where = "e.flags & 1 = 0 AND s.agent LIKE 'lg-%'"
    n, first, last = db.execute(
        f"SELECT count(*), min(e.time + e.received_dt) / 1000.0,"
        f" max(e.time + e.received_dt) / 1000.0 FROM {rows} WHERE {where}").fetchone()
    lag = "(e.received_dt - e.agent_dt)"

    def pct(p):
        if not n:
            return float("nan")
        off = min(n - 1, int(n * p))
        return db.execute(f"SELECT {lag} AS l FROM {rows} WHERE {where} ORDER BY l "
                          f"LIMIT 1 OFFSET ?", (off,)).fetchone()[0]

    out = {"events": n, "window": (last - first) if n else 0.0,
           "p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0)}
    db.close()
    return out


def sub_figures(path):
    """Messages mosquitto_sub printed, without the canaries' (first → last `%U` window)."""
    stamps = []
    with open(path, encoding="ascii", errors="replace") as f:
        for line in f:
            try:
                stamps.append(float(line.strip()))
            except ValueError:
                continue
    return stamps


def run_stage(children, args, stage, victoria=None):
    agents, interval_ms, per_message = stage
    name = f"{agents}-{interval_ms}-{per_message}{'-influx' if victoria else ''}"
    d = os.path.join(args.workdir, f"ingest-{name}")
    os.makedirs(d, exist_ok=True)
    broker, mqtt_port = start_broker(children, d, name)
    store = os.path.join(d, "store.db")
    if args.seed_store:
        # Old measurements for retention to delete while the load comes in.
        shutil.copyfile(args.seed_store, store)
    config = os.path.join(d, "collector.toml")
    influx = None
    if victoria:
        influx = {"url": victoria.vm_url, "api": "v2", "org": "netmon", "bucket": "netmon",
                  "token": "bench", "batch_points": 5000, "flush_interval": "1s", "gzip": True,
                  "timeout": "30s"}
    collector_toml(config, mqtt_port, store, free_port(), f"bench-ingest-{name}", influx,
                   args.collector_toml, args.keep_alive)
    collector_log = os.path.join(d, "collector.log")
    collector, http_port = run_collector(children, args.collector, config, collector_log,
                                         startup_s=args.startup_limit)
    sub_out = os.path.join(d, "sub.out")
    sub = children.start(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(mqtt_port), "-q", "1",
                          "-i", f"bench-sub-{name}", "-t", "netmon/v1/bench/+/events",
                          "-F", "%U"], stdout=open(sub_out, "wb"), stderr=subprocess.DEVNULL)
    canary_until("a canary at the collector and at mosquitto_sub", mqtt_port,
                 lambda: stored(http_port) >= 1 and lines_in(sub_out) >= 1)
    base_stored, base_lines = stored(http_port), lines_in(sub_out)
    cpu0 = {k: proc_cpu_s(p.pid) for k, p in
            (("collector", collector), ("broker", broker), ("sub", sub))}
    sampler = Sampler(collector.pid, http_port)
    sampler.start()
    log(f"ingest {name}: load for {args.seconds} s")
    t0 = time.monotonic()
    gen = subprocess.run(
        [args.loadgen, "--port", str(mqtt_port), "--agents", str(agents), "--connections",
         str(args.connections), "--interval-ms", str(interval_ms), "--per-message", per_message,
         "--seconds", str(args.seconds), "--max-events", str(args.max_events)],
        stdout=subprocess.PIPE, stderr=open(os.path.join(d, "loadgen.log"), "wb"),
        timeout=args.seconds + 180, env={k: v for k, v in os.environ.items()
                                         if not k.startswith("NETMON_")})
    if gen.returncode != 0:
        raise SystemExit(f"loadgen failed ({gen.returncode}), see {d}/loadgen.log")
    g = json.loads(gen.stdout)
    t_gen = time.monotonic()
    log(f"ingest {name}: loadgen {g['events']} events in {g['messages']} messages, "
        f"{g['events_per_s']:.0f}/s, max late {g['max_late_ms']} ms")
    # Drain: until every event is stored, or no progress for 30 s (bounded by --drain-limit).
    want = base_stored + g["events"]
    last_n, last_t = stored(http_port), time.monotonic()
    while time.monotonic() - t_gen < args.drain_limit:
        n = stored(http_port)
        if n >= want:
            break
        if n > last_n:
            last_n, last_t = n, time.monotonic()
        elif time.monotonic() - last_t > 30:
            break
        time.sleep(0.5)
    t_end = time.monotonic()
    cpu = {k: proc_cpu_s(p.pid) - cpu0[k] for k, p in
           (("collector", collector), ("broker", broker), ("sub", sub))}
    hwm = proc_status_kib(collector.pid, "VmHWM") or 0
    # mosquitto_sub may lag or lose messages too (the broker's queue limit): wait at most 60 s,
    # then count what it has.
    for _ in range(120):
        if lines_in(sub_out) >= base_lines + g["messages"]:
            break
        time.sleep(0.5)
    projection = None
    if victoria:
        def caught_up():
            try:
                p = json.loads(http_get(f"http://127.0.0.1:{http_port}/api/v1/projections")[1])
                return p["influx"] if p["influx"]["behind"] == 0 else None
            except (OSError, ValueError, KeyError, TypeError):
                return None
        t_p = time.monotonic()
        try:
            projection = wait_until("the InfluxDB projection caught up", args.drain_limit,
                                    caught_up, every=0.5)
            projection["caught_up_s"] = time.monotonic() - t_p
        except SystemExit:
            projection = {"behind": "not caught up", "caught_up_s": float("nan")}
    sampler.stop_event.set()
    sampler.join()
    for p in (sub, collector, broker):
        children.stop(p, grace_s=15)
    s = store_figures(store)
    stamps = sub_figures(sub_out)[base_lines:]
    sub_window = (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    per_msg = g["events"] / g["messages"] if g["messages"] else float("nan")
    window = t_end - t0
    return {
        "name": name, "agents": agents, "interval_ms": interval_ms, "per_message": per_message,
        "influx": bool(victoria), "gen": g, "store": s,
        "stored_rate": s["events"] / s["window"] if s["window"] else float("nan"),
        "sub_messages": len(stamps),
        "sub_rate": len(stamps) * per_msg / sub_window if sub_window == sub_window and sub_window
        else float("nan"),
        "missing": g["events"] - s["events"],
        "drain_s": t_end - t_gen,
        "cpu": cpu, "window": window, "hwm_mib": hwm / MIB,
        "rss_median_mib": statistics.median(sampler.rss) / MIB if sampler.rss else float("nan"),
        "projection": projection,
        "retention": retention_figures(collector_log) if args.seed_store else None,
    }


def retention_figures(log_path):
    """The collector's retention steps (its DEBUG lines `retention step`, see the README's
    `NETMON_BENCH_COLLECTOR_LOG`): how many, rows deleted, the longest and the total in ms."""
    steps, deleted, longest, total = 0, 0, 0.0, 0.0
    units = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r"retention step class=\S+ deleted=(\d+) took=([0-9.]+)(ns|µs|us|ms|s)\b",
                          line)
            if not m:
                continue
            ms = float(m.group(2)) * units[m.group(3)]
            steps, deleted = steps + 1, deleted + int(m.group(1))
            longest, total = max(longest, ms), total + ms
    return {"steps": steps, "deleted": deleted, "longest_ms": longest, "total_ms": total}


def parse_stages(text):
    out = []
    for item in filter(None, text.split(",")):
        agents, interval, per = item.split(":")
        if per not in ("event", "round"):
            raise SystemExit(f"stage {item}: PER_MESSAGE must be event or round")
        out.append((int(agents), int(interval), per))
    return out


def offered(stage):
    agents, interval_ms, _ = stage
    # 5 targets and a heartbeat per agent and interval.
    return agents * 6 / (interval_ms / 1000) if interval_ms else None


def report(results, args):
    print("#### Collector ingest vs the broker's ceiling (`mosquitto_sub -q 1`, same stream)\n")
    print(f"- per stage: a fresh Mosquitto {deb_version('mosquitto')} on loopback (persistence "
          f"off, max_inflight_messages 1000), the release collector (fresh SQLite store, WAL, "
          f"`synchronous=NORMAL`), `mosquitto_sub -q 1` on the same topics at the same time, "
          f"`netmon-loadgen` over {args.connections} MQTT connections for {args.seconds} s "
          f"(5 targets, a heartbeat every round, an outage per agent every ~360 rounds); all "
          f"on the same 2 cores\n")
    rows = []
    for r in results:
        g, s = r["gen"], r["store"]
        load = offered((r["agents"], r["interval_ms"], r["per_message"]))
        rows.append([
            f"{r['agents']:,} agents, {'every ' + str(r['interval_ms'] // 1000) + ' s' if r['interval_ms'] else 'flat out'}"
            f", 1 msg per {r['per_message']}{' + InfluxDB' if r['influx'] else ''}",
            f"{load:,.0f}" if load else "max",
            f"{g['events_per_s']:,.0f} ({g['events']:,} in {g['messages']:,} msgs)",
            f"{r['sub_rate']:,.0f}",
            f"{r['stored_rate']:,.0f}",
            ratio(r["stored_rate"], r["sub_rate"]),
            f"{s['p50']:.0f} / {s['p99']:.0f} / {s['max']:.0f}",
            f"{r['cpu']['collector']:.1f} s = {100 * r['cpu']['collector'] / r['window']:.0f}%, "
            f"{1e6 * r['cpu']['collector'] / max(s['events'], 1):.0f} µs/event",
            f"{r['hwm_mib']:.0f} / {r['rss_median_mib']:.0f}",
            f"{100 * r['cpu']['broker'] / r['window']:.0f}% / {100 * r['cpu']['sub'] / r['window']:.0f}%",
            f"{r['missing']:,} / {g['messages'] - r['sub_messages']:,}",
        ])
    print(table(["stage", "offered ev/s", "published ev/s", "mosquitto_sub ev/s",
                 "stored ev/s", "stored / sub", "lag p50 / p99 / max ms",
                 "collector CPU (of one core)", "collector RSS peak / median MiB",
                 "broker / sub CPU", "events not stored / messages mosquitto_sub missed"], rows))
    print()
    influx = [r for r in results if r["projection"]]
    if influx:
        print("InfluxDB projection (VictoriaMetrics, api v2, batch 5000, gzip): time from the "
              "last event stored until the projection's cursor reached the store's end\n")
        print(table(["stage", "points written", "caught up after s", "last error"],
                    [[r["name"], r["projection"].get("points_written", "n/a"),
                      f"{r['projection']['caught_up_s']:.1f}",
                      r["projection"].get("last_error") or "none"] for r in influx]))
        print()
    seeded = [r for r in results if r["retention"]]
    if seeded:
        print(f"Retention under load: the store started as a copy of {args.seed_store}; "
              f"the collector's retention steps while the stage ran (`store.keep_measurements` "
              f"35 days)\n")
        print(table(["stage", "steps", "events deleted", "longest step ms", "all steps ms"],
                    [[r["name"], f"{r['retention']['steps']:,}",
                      f"{r['retention']['deleted']:,}",
                      f"{r['retention']['longest_ms']:.1f}",
                      f"{r['retention']['total_ms']:,.0f}"] for r in seeded]))
        print()
    print("Goals:\n")
    for r in results:
        if r["interval_ms"] == 0:
            continue
        load = offered((r["agents"], r["interval_ms"], r["per_message"]))
        vs_sub = r["stored_rate"] >= 0.8 * r["sub_rate"] and r["missing"] == 0
        vs_load = r["stored_rate"] >= 0.95 * load and r["missing"] == 0 and r["store"]["p99"] < 5000
        print(f"- {r['name']}: stored {r['stored_rate']:,.0f} ev/s vs mosquitto_sub "
              f"{r['sub_rate']:,.0f} ev/s → {ratio(r['stored_rate'], r['sub_rate'])} (goal ≥ 0.8×, "
              f"nothing missing): {verdict(vs_sub)}; keeps up with the offered {load:,.0f} ev/s "
              f"(≥ 95 %, lag p99 < 5 s): {verdict(vs_load)}; the generator published "
              f"{r['gen']['events_per_s']:,.0f} ev/s, at most {r['gen']['max_late_ms']} ms behind "
              f"its schedule")
    print()


def binaries_args():
    """The arguments every collector benchmark with the load generator takes."""
    p = argparse.ArgumentParser()
    p.add_argument("--collector", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--workdir", required=True)
    return p


def main():
    p = binaries_args()
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--max-events", type=int, default=20_000_000)
    p.add_argument("--drain-limit", type=int, default=300)
    p.add_argument("--seed-store", help="a store copied in before each stage (old measurements "
                   "for retention to delete under load: store_bench --retention off)")
    p.add_argument("--startup-limit", type=int, default=30,
                   help="longest wait for the collector's /healthz (a seeded store replays)")
    p.add_argument("--collector-toml", default="", help="TOML appended to the collector config")
    p.add_argument("--keep-alive", help="the collector's mqtt.keep_alive (default: its own)")
    p.add_argument("--stages", default="5000:10000:event,100000:10000:event,"
                                       "100000:10000:round,100000:0:round")
    p.add_argument("--influx-stages", default="5000:10000:event,100000:10000:round")
    args = p.parse_args()
    results = []
    with Children() as children:
        for stage in parse_stages(args.stages):
            results.append(run_stage(children, args, stage))
        influx_stages = parse_stages(args.influx_stages)
        if influx_stages:
            vm = Servers(children, args.workdir)
            vm.start_victoria()
            for stage in influx_stages:
                results.append(run_stage(children, args, stage, victoria=vm))
    report(results, args)


if __name__ == "__main__":
    main()
