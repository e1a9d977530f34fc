#!/usr/bin/env python3
"""The volume stage's figures in one table (issue 15): bytes per agent-month (`volume.py`),
events/s offered by a province and the country (`offered.py`), and detection latency over 20
cuts (the lab tests of `tests/bench/run outage`: from this run's log when it ran, else the newest
outage section already in docs/benchmarks.md, named by its heading).

Prints a Markdown fragment on stdout. Usage:
    volume_summary.py --volume volume.json --offered offered.json
                      (--outage-log outage.log | --benchmarks docs/benchmarks.md)
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

LINK = re.compile(r"link-down detection over (\d+) cuts.*?: median (\d+) ms, max (\d+) ms")
NOTIFY = re.compile(r"cut → notification over (\d+) cuts: webhook median (\d+) ms, max (\d+) ms")
UPLINK = re.compile(r"^uplink cut → webhook (\d+) ms", re.M)
CONFIG_NAMES = {"a": "4 targets", "b": "4 targets + modem", "c": "4 targets + modem + SNMP router"}
MQTT_GOALS = {"a": 100e6, "c": 150e6}
OFFERED_GOALS = {"province": 500, "country": 10_000}



def outage_figures(log_path, benchmarks):
    """(where, text) of the newest detection figures."""
    if log_path and os.path.exists(log_path):
        with open(log_path, encoding="utf-8", errors="replace") as f:
            return "this run", f.read()
    with open(benchmarks, encoding="utf-8") as f:
        text = f.read()
    hits = list(LINK.finditer(text))
    if not hits:
        return None, ""
    start = hits[-1].start()
    heading = text.rfind("\n### ", 0, start)
    title = text[heading + 5: text.find("\n", heading + 1)].strip() if heading >= 0 else "?"
    end = text.find("\n### ", start)
    return f"section {title}", text[heading if heading >= 0 else start: end if end > 0 else None]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--volume", required=True)
    parser.add_argument("--offered", required=True)
    parser.add_argument("--outage-log")
    parser.add_argument("--benchmarks")
    args = parser.parse_args()
    with open(args.volume, encoding="utf-8") as f:
        volume = json.load(f)
    with open(args.offered, encoding="utf-8") as f:
        offered = json.load(f)
    rows = []
    for r in volume:
        goal = MQTT_GOALS.get(r["config"])
        got = r["mqtt_bps"] * common.MONTH_S
        rows.append([f"MQTT topic + payload per agent-month, {CONFIG_NAMES[r['config']]}",
                     f"**{common.per_month(r['mqtt_bps'])}** ({r['mqtt_bps']:,.1f} B/s)",
                     f"≤ {goal / 1e6:.0f} MB" if goal else "—",
                     common.verdict(got <= goal) if goal else ""])
    for r in volume:
        rows.append([f"on the wire per agent-month (TLS, TCP/IP, both ways), "
                     f"{CONFIG_NAMES[r['config']]}",
                     f"**{common.per_month(r['wire_bps'])}** ({r['wire_bps']:,.1f} B/s)", "—", ""])
    for r in offered:
        goal = OFFERED_GOALS.get(r["fleet"]) if r["format"] == "windows" else None
        rows.append([f"events/s offered, {r['fleet']} ({r['agents']:,} agents), {r['format']} "
                     f"format ({r['how']})",
                     f"**{r['events_per_s']:,.0f}** ({r['bytes_per_s'] / 1e6:,.2f} MB/s)",
                     f"≤ {goal:,}" if goal else "—",
                     common.verdict(r["events_per_s"] <= goal) if goal else "(before)"])
    where, text = outage_figures(args.outage_log, args.benchmarks)
    link, notify, uplink = LINK.search(text), NOTIFY.search(text), UPLINK.search(text)
    if link:
        cuts, med, mx = (int(g) for g in link.groups())
        rows.append([f"hard cut → `link_went_down` stored, {cuts} cuts ({where})",
                     f"median **{med:,} ms**, max **{mx:,} ms**", "≤ 5 s",
                     common.verdict(med <= 5000 and mx <= 5000)])
    else:
        rows.append(["hard cut → `link_went_down` stored", "not measured", "≤ 5 s", ""])
    if notify:
        cuts, med, mx = (int(g) for g in notify.groups())
        first = f"; the commune uplink cut {int(uplink.group(1)):,} ms" if uplink else ""
        rows.append([f"cut → notification (webhook), {cuts} cuts ({where})",
                     f"median {med:,} ms, max {mx:,} ms{first}", "—", ""])
    print("#### Issue 15 in one table\n")
    print(common.table(["figure", "measured", "goal", "verdict"], rows))
    print()


if __name__ == "__main__":
    main()
