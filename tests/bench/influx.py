#!/usr/bin/env python3
"""Time-series benchmark: points per second of `netmon-collector replay influx` into a private
InfluxDB 1.6 (v1 API) and a private VictoriaMetrics (v2 API), and the catch-up rate of a running
collector after an InfluxDB outage.

1. fill: a private Mosquitto and a collector *without* `[influx]`; N `probe_round_completed`
   events (100 targets, rounds 50 ms apart, times ending a minute ago) published as JSON batches
   of 400 by `mosquitto_pub -l`; waits until `/api/v1/intake` counts them stored.
2. replay: the collector stopped, `replay influx` of the whole store into InfluxDB (database
   `bench_v1`) and into VictoriaMetrics; wall time, points/s; point counts checked on the servers.
3. catch-up: a second collector *with* `[influx]` (database `bench_outage`); InfluxDB stopped,
   M events published and stored, InfluxDB restarted: time from the restart until every point
   is in InfluxDB.

Loopback only (every server binds 127.0.0.1 on a free port); every process is started through
`Children` and killed by pid; every wait has a deadline. Prints a Markdown fragment on stdout.
"""

import argparse
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request

from common import Children, free_port, log, wait_port

BATCH = 400
TARGETS = 100


def http_get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_until(what, timeout_s, check, every=0.2):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise SystemExit(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def batches(agent, boot, count, start_ms):
    """JSON batch lines of `count` probe rounds: target seq % 100, rounds 50 ms apart."""
    lines, batch = [], []
    for seq in range(1, count + 1):
        t = (seq - 1) % TARGETS
        ms = start_ms + ((seq - 1) // TARGETS) * 50
        received = 3 if seq % 7 else 0
        event = {
            "v": 1, "agent": agent, "boot": boot, "seq": seq, "time": iso(ms),
            "mono_ms": ms - start_ms + 1000, "type": "probe_round_completed",
            "target": {"name": f"UBND xã số {t}, Thanh Hóa", "address": f"10.40.{t // 250}.{t % 250 + 1}",
                       "role": "commune"},
            "sent": 3, "received": received, "loss_pct": 0.0 if received else 100.0,
        }
        if received:
            event.update(rtt_min_ms=1.0, rtt_avg_ms=1.5 + (seq % 10) / 10, rtt_max_ms=3.0,
                         rtt_mdev_ms=0.25)
        batch.append(event)
        if len(batch) == BATCH:
            lines.append(json.dumps(batch, ensure_ascii=False, separators=(",", ":")))
            batch = []
    if batch:
        lines.append(json.dumps(batch, ensure_ascii=False, separators=(",", ":")))
    return lines


class Servers:
    def __init__(self, children, workdir):
        self.children, self.workdir = children, workdir
        self.influx_port = free_port()
        self.influx_proc = None
        self.vm_port = free_port()

    def start_mosquitto(self):
        self.mqtt_port = free_port()
        d = os.path.join(self.workdir, "mosquitto")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"user root\nlistener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\n"
                    "max_queued_messages 100000\n")
        self.children.start(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "log"), "wb"))
        if not wait_port(self.mqtt_port, 10):
            raise SystemExit("mosquitto did not start")

    def start_influxd(self):
        d = os.path.join(self.workdir, "influxd")
        for sub in ("meta", "data", "wal"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        conf = os.path.join(d, "influxdb.conf")
        if not os.path.exists(conf):
            rpc = free_port()
            with open(conf, "w") as f:
                f.write(f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
                        f'[meta]\n  dir = "{d}/meta"\n[data]\n  dir = "{d}/data"\n'
                        f'  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
                        '[monitor]\n  store-enabled = false\n'
                        f'[http]\n  bind-address = "127.0.0.1:{self.influx_port}"\n'
                        '  log-enabled = false\n')
        self.influx_log = os.path.join(d, "influxd.log")
        self.influx_proc = self.children.start(["influxd", "-config", conf],
                                               stdout=open(self.influx_log, "ab"),
                                               stderr=subprocess.STDOUT)
        wait_until("influxd /ping", 30, lambda: self._ping(f"{self.influx_url}/ping", 204))

    def stop_influxd(self):
        self.children.stop(self.influx_proc, grace_s=20)

    def start_victoria(self):
        d = os.path.join(self.workdir, "victoria")
        os.makedirs(d, exist_ok=True)
        self.children.start(["victoria-metrics", f"-httpListenAddr=127.0.0.1:{self.vm_port}",
                             f"-storageDataPath={d}/data", "-retentionPeriod=100y",
                             "-search.latencyOffset=0s"],
                            stdout=open(os.path.join(d, "log"), "wb"), stderr=subprocess.STDOUT)
        wait_until("victoria-metrics /health", 30, lambda: self._ping(f"{self.vm_url}/health", 200))

    @property
    def influx_url(self):
        return f"http://127.0.0.1:{self.influx_port}"

    @property
    def vm_url(self):
        return f"http://127.0.0.1:{self.vm_port}"

    @staticmethod
    def _ping(url, code):
        try:
            return http_get(url, timeout=2)[0] == code
        except OSError:
            return False

    def influx_query(self, db, q, method="GET"):
        params = urllib.parse.urlencode({"db": db, "q": q})
        req = urllib.request.Request(f"{self.influx_url}/query?{params}", method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def influx_count(self, db):
        try:
            a = self.influx_query(db, 'SELECT count("sent") FROM "probe"')
            return a["results"][0]["series"][0]["values"][0][1]
        except (OSError, KeyError, IndexError, ValueError):
            return 0

    def vm_count(self):
        urllib.request.urlopen(f"{self.vm_url}/internal/force_flush", timeout=30).read()
        q = urllib.parse.urlencode({"query": "sum(count_over_time(probe_sent[1d]))"})
        try:
            a = json.loads(http_get(f"{self.vm_url}/api/v1/query?{q}")[1])
            return int(float(a["data"]["result"][0]["value"][1]))
        except (OSError, KeyError, IndexError, ValueError):
            return 0


def collector_config(path, s, store, http_port, client, influx=None):
    lines = ["[mqtt]", f'url = "mqtt://127.0.0.1:{s.mqtt_port}"', f'client_id = "{client}"',
             'province = "bench"', "[store]", f'path = "{store}"', "[http]",
             f'listen = "127.0.0.1:{http_port}"', "[silence]", 'after = "1h"']
    if influx:
        lines += ["[influx]"] + [f"{k} = {json.dumps(v)}" for k, v in influx.items()]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def run_collector(children, binary, config, log_path, startup_s=30):
    http_port = None
    with open(config) as f:
        for line in f:
            if line.startswith("listen"):
                http_port = int(line.split(":")[-1].strip().strip('"'))
    proc = children.start([binary, "run", "--config", config], stdout=open(log_path, "ab"),
                          stderr=subprocess.STDOUT,
                          env={**os.environ,
                               "RUST_LOG": os.environ.get("NETMON_BENCH_COLLECTOR_LOG", "warn")})
    wait_until("collector /healthz", startup_s,
               lambda: Servers._ping(f"http://127.0.0.1:{http_port}/healthz", 200))
    return proc, http_port


def stored(http_port):
    try:
        a = json.loads(http_get(f"http://127.0.0.1:{http_port}/api/v1/intake")[1])
        return a.get("events_stored", 0)
    except (OSError, ValueError):
        return 0


def publish(s, lines, workdir, name):
    path = os.path.join(workdir, f"{name}.lines")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(path, "rb") as f:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(s.mqtt_port), "-q", "1",
                        "-t", "netmon/v1/bench/bench-1/events", "-l"], stdin=f, check=True,
                       timeout=600)


def fill(children, args, s, name, count, config, start_ms):
    proc, port = run_collector(children, args.collector, config, os.path.join(args.workdir, f"{name}.log"))
    # Proves the subscription is live: canary heartbeats (agent bench-canary) until one is stored.
    canary = 0

    def canary_stored():
        nonlocal canary
        canary += 1
        hb = [{"v": 1, "agent": "bench-canary", "boot": f"canary-{name}", "seq": canary,
               "time": iso(int(time.time() * 1000)), "mono_ms": canary * 1000,
               "type": "agent_heartbeat", "uptime_s": canary, "backlog": 0}]
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(s.mqtt_port), "-q", "1",
                        "-t", "netmon/v1/bench/bench-canary/events", "-m", json.dumps(hb)],
                       check=True, timeout=10)
        time.sleep(0.5)
        return stored(port)

    base = wait_until("a canary event stored", 30, canary_stored)
    lines = batches("bench-1", f"boot-{name}", count, start_ms)
    t0 = time.monotonic()
    publish(s, lines, args.workdir, name)
    wait_until(f"{count} events stored", 900, lambda: stored(port) >= base + count, every=0.5)
    log(f"{name}: {count} events stored in {time.monotonic() - t0:.1f} s")
    return proc, port


def replay(args, config, expect, count_fn, what):
    t0 = time.monotonic()
    r = subprocess.run([args.collector, "replay", "influx", "--config", config],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800,
                       env={k: v for k, v in os.environ.items() if not k.startswith("NETMON_")})
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"replay into {what} failed ({r.returncode}): {r.stderr[-400:]!r}")
    got = wait_until(f"{expect} points in {what}", 120, lambda: count_fn() >= expect and count_fn())
    log(f"replay into {what}: {expect} points in {wall:.1f} s")
    return wall, got


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--collector", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--outage-events", type=int, default=50_000)
    args = p.parse_args()
    n, m = args.events, args.outage_events
    now_ms = int(time.time() * 1000)
    with Children() as children:
        s = Servers(children, args.workdir)
        s.start_mosquitto()
        s.start_influxd()
        s.start_victoria()
        for db in ("bench_v1", "bench_outage"):
            s.influx_query("", f'CREATE DATABASE "{db}"', method="POST")

        # 1. fill a store without projection.
        store = os.path.join(args.workdir, "fill.db")
        plain = os.path.join(args.workdir, "plain.toml")
        collector_config(plain, s, store, free_port(), "bench-fill")
        start_ms = now_ms - 60_000 - (n // TARGETS) * 50
        proc, _ = fill(children, args, s, "fill", n, plain, start_ms)
        children.stop(proc, grace_s=15)

        # 2. replay into InfluxDB v1 and VictoriaMetrics v2.
        common = {"batch_points": 5000, "flush_interval": "1s", "gzip": True, "timeout": "30s"}
        v1 = os.path.join(args.workdir, "v1.toml")
        collector_config(v1, s, store, free_port(), "bench-v1",
                         {"url": s.influx_url, "api": "v1", "database": "bench_v1", **common})
        v1_wall, _ = replay(args, v1, n, lambda: s.influx_count("bench_v1"), "InfluxDB 1.6 (v1)")
        v2 = os.path.join(args.workdir, "v2.toml")
        collector_config(v2, s, store, free_port(), "bench-v2",
                         {"url": s.vm_url, "api": "v2", "org": "netmon", "bucket": "netmon",
                          "token": "bench", **common})
        v2_wall, _ = replay(args, v2, n, s.vm_count, "VictoriaMetrics (v2)")

        # 3. catch-up after an outage.
        outage = os.path.join(args.workdir, "outage.toml")
        collector_config(outage, s, os.path.join(args.workdir, "outage.db"), free_port(),
                         "bench-outage",
                         {"url": s.influx_url, "api": "v1", "database": "bench_outage", **common})
        s.stop_influxd()
        start_ms = now_ms - 60_000 - (m // TARGETS) * 50
        proc, port = fill(children, args, s, "outage", m, outage, start_ms)
        s.start_influxd()  # returns once /ping answers: the collector's retries can succeed
        t0 = time.monotonic()
        wait_until(f"{m} points after the outage", 900,
                   lambda: s.influx_count("bench_outage") >= m, every=0.5)
        catch_up = time.monotonic() - t0
        log(f"catch-up: {m} points in {catch_up:.1f} s after the restart")
        children.stop(proc, grace_s=15)

    print("#### Time series: points per second and catch-up\n")
    print(f"- collector: `{os.path.relpath(args.collector)}`; {n} probe rounds in the store "
          f"({TARGETS} targets), batch_points 5000, gzip on; servers: InfluxDB "
          f"{influx_version()}, VictoriaMetrics {vm_version()} (Debian packages), private, on "
          "loopback\n")
    print("| run | points | wall s | points/s |")
    print("|---|---:|---:|---:|")
    print(f"| `replay influx` → InfluxDB 1.6, api v1 | {n} | {v1_wall:.1f} | {n / v1_wall:,.0f} |")
    print(f"| `replay influx` → VictoriaMetrics, api v2 | {n} | {v2_wall:.1f} | {n / v2_wall:,.0f} |")
    print(f"| catch-up after an InfluxDB outage (from `/ping` answering until all visible) | {m} | "
          f"{catch_up:.1f} | {m / catch_up:,.0f} |")
    print()


def deb_version(package):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip() or "unknown"


def influx_version():
    return deb_version("influxdb")


def vm_version():
    return deb_version("victoria-metrics")


if __name__ == "__main__":
    main()
