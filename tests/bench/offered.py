#!/usr/bin/env python3
"""Events/s offered to a collector by a simulated province (5,000 agents) and the country
(100,000 agents), at the defaults of ADR 14 beside the format before it, from the load
generator's own counts (`netmon-loadgen`, `tests/bench/loadgen/`).

- windows (ADR 14): per agent 4 targets, one `probe_window_completed` per target per 60 s report
  window in compact batches (`encode_compact`), a heartbeat every 300 s with them, link changes
  as they happen (an outage of one target per agent-hour on average: `link_went_down` after 3
  failed 1 s rounds, `link_came_back` after 5). Published for real, QoS 1, to a private Mosquitto
  on loopback over 16 connections for `--seconds` of steady schedule after the boot batches
  (spread over 20 s, counted apart); the province and the country run at the same time.
- rounds (before): the same agents with one `probe_round_completed` per target per 1 s round and a
  heartbeat every 10 s, one message per agent and round (`encode_batch_from`: the old agent sent
  a round's events together, 66 messages a minute at 4 targets), the same outages. The
  country would offer 410,000 events/s, more than this machine can publish, so both fleets run
  on the generator's simulated clock (`--dry-run`: every payload encoded and counted, nothing
  sent) for 20 s (two heartbeat periods).

Offered = the generator's steady events, messages and topic + payload bytes ÷ the steady
seconds. Loopback only; every process through `Children` (killed by pid), every run bounded.
Prints a Markdown fragment on stdout (and `--json` the figures); progress on stderr. Usage:
    offered.py --loadgen BIN --workdir DIR [--seconds 60] [--province 5000] [--country 100000]
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

COMMON = ["--targets", "4", "--interval-ms", "1000", "--flap-every", "3600", "--connections", "16"]
ROUNDS_SECONDS = 20
GOALS = {"province": 500, "country": 10_000}



def start_broker(children, work):
    port = common.free_port()
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w", encoding="ascii") as f:
        f.write(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\n"
                "max_inflight_messages 1000\nmax_queued_messages 100000\n"
                "max_packet_size 1048576\npersistence false\n")
    log = open(os.path.join(work, "mosquitto.log"), "wb")
    children.start(["mosquitto", "-c", conf], stdout=log, stderr=log)
    if not common.wait_port(port, 10):
        raise SystemExit("mosquitto did not start listening within 10 s")
    return port


def generator(children, loadgen, work, name, argv):
    out = open(os.path.join(work, f"{name}.json"), "wb")
    err = open(os.path.join(work, f"{name}.log"), "wb")
    return children.start([loadgen, *argv], stdout=out, stderr=err)


def finish(children, proc, work, name, limit_s):
    """Waits (bounded) for a generator and returns its summary."""
    try:
        proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        children.stop(proc)
        raise SystemExit(f"netmon-loadgen {name} did not finish within {limit_s} s")
    children.procs.remove(proc)
    if proc.returncode != 0:
        raise SystemExit(f"netmon-loadgen {name} failed ({proc.returncode}): "
                         f"{common.tail(os.path.join(work, f'{name}.log'))}")
    with open(os.path.join(work, f"{name}.json"), encoding="utf-8") as f:
        return json.loads(f.read().strip().splitlines()[-1])


def figures(name, fleet, fmt, how, g):
    s = g["steady"]
    seconds = g["steady_seconds"]
    return {"name": name, "fleet": fleet, "agents": g["agents"], "format": fmt, "how": how,
            "events_per_s": s["events"] / seconds, "messages_per_s": s["messages"] / seconds,
            "bytes_per_s": s["bytes"] / seconds, "seconds": seconds, "types": g["steady_types"],
            "boot": g["boot"], "max_late_ms": g["max_late_ms"], "errors": g["errors"],
            "acked": g["acked"], "messages": g["messages"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loadgen", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--province", type=int, default=5000)
    parser.add_argument("--country", type=int, default=100_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    work = os.path.join(args.workdir, "offered")
    os.makedirs(work, exist_ok=True)
    fleets = [("province", args.province), ("country", args.country)]
    results = []
    with common.Children() as children:
        port = start_broker(children, work)
        common.log(f"[offered] windows format, published: {args.province} and {args.country} "
                   f"agents for {args.seconds} s (+ 20 s of boot batches)")
        procs = [(fleet, agents, generator(children, args.loadgen, work, f"windows-{fleet}", [
            "--port", str(port), "--format", "windows", "--prefix", fleet[:2],
            "--agents", str(agents), "--boot-spread-ms", "20000", "--seconds", str(args.seconds),
            *COMMON])) for fleet, agents in fleets]
        for fleet, _agents, proc in procs:
            g = finish(children, proc, work, f"windows-{fleet}", args.seconds + 200)
            results.append(figures(f"windows-{fleet}", fleet, "windows", "published", g))
        for fleet, agents in fleets:
            common.log(f"[offered] rounds format, simulated clock: {agents} agents, "
                       f"{ROUNDS_SECONDS} s")
            proc = generator(children, args.loadgen, work, f"rounds-{fleet}", [
                "--dry-run", "--format", "rounds", "--per-message", "round", "--prefix", fleet[:2],
                "--agents", str(agents), "--heartbeat-every", "10",
                "--seconds", str(ROUNDS_SECONDS), *COMMON])
            g = finish(children, proc, work, f"rounds-{fleet}", 900)
            results.append(figures(f"rounds-{fleet}", fleet, "rounds", "simulated clock", g))
    report(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f)


def report(results):
    print("#### Events/s offered by a province and the country (`netmon-loadgen`, 4 targets per "
          "agent)\n")
    print("- windows (ADR 14): one `probe_window_completed` per target per 60 s, compact "
          "batches, a heartbeat every 300 s, link changes as they happen (one outage per "
          "agent-hour); published to a private Mosquitto on loopback, QoS 1, 16 connections")
    print("- rounds (before): one `probe_round_completed` per target per 1 s round, a heartbeat "
          "every 10 s, one message per agent and round; on the generator's simulated clock (every payload "
          "encoded and counted, nothing sent: the country's 410,000 events/s are beyond this "
          "machine)")
    print("- steady schedule only: the boot batches (`agent_started` + `targets_described`, the "
          "header carrying the targets) are counted apart\n")
    rows = []
    for r in results:
        per_agent = r["bytes_per_s"] / r["agents"]
        late = f"{r['max_late_ms']:,} ms" if r["how"] == "published" else "—"
        rows.append([f"{r['fleet']} ({r['agents']:,} agents)", r["format"], r["how"],
                     f"{r['seconds']} s", f"**{r['events_per_s']:,.0f}**",
                     f"{r['messages_per_s']:,.0f}", f"{r['bytes_per_s'] / 1e6:,.2f} MB/s",
                     f"{per_agent:,.1f} B/s = {common.per_month(per_agent)}", late])
    print(common.table(["fleet", "format", "how", "steady", "events/s", "messages/s",
                        "topic + payload", "per agent (per month)", "generator behind schedule"],
                       rows))
    print()
    for r in results:
        types = ", ".join(f"{k} {v / r['seconds']:,.1f}/s" for k, v in sorted(r["types"].items()))
        extra = (f"; boot batches {r['boot']['messages']:,} ({r['boot']['bytes'] / 1e6:.1f} MB); "
                 f"PUBACKs {r['acked']:,} of {r['messages']:,}, errors {r['errors']}"
                 if r["how"] == "published" else "")
        print(f"- {r['name']}: {types}{extra}")
    print()
    print("Goals (windows format):\n")
    for r in results:
        if r["format"] == "windows" and r["fleet"] in GOALS:
            goal = GOALS[r["fleet"]]
            print(f"- {r['fleet']}: {r['events_per_s']:,.0f} events/s ≤ {goal:,}: "
                  f"{common.verdict(r['events_per_s'] <= goal)}")
    print()


if __name__ == "__main__":
    main()
