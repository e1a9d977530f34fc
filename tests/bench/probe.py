#!/usr/bin/env python3
"""Probe engine vs fping: one ICMP round, count 1, over N loopback targets.

Prints a Markdown section on stdout; progress on stderr. Usage:
    probe.py --agent target/release/netmon-agent [--sizes 1000,10000] [--repeat 3] --workdir DIR
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

RUN_TIMEOUT_S = 120
# fping: -C 1 one echo per target, -q only the summary, -t 1000 a 1 s reply timeout like ours,
# -i the gap between two sends in ms (0 = as fast as it can; 1 = its documented polite minimum).
FPING_VARIANTS = [("fping -i 0", ["-i", "0"]), ("fping -i 1", ["-i", "1"])]


def lost_ours(stdout_path, targets):
    """Targets whose JSON line says received = 0, plus targets missing from the output."""
    seen = set()
    lost = 0
    bad_lines = 0
    with open(stdout_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
                addr = obj["target"]["address"]
                received = int(obj["received"])
            except (ValueError, KeyError, TypeError):
                bad_lines += 1
                continue
            seen.add(addr)
            if received == 0:
                lost += 1
    missing = len(set(targets) - seen)
    return lost + missing, bad_lines


def lost_fping(stderr_path, targets):
    """fping -C prints `addr : rtt` per target; `-` stands for a lost reply."""
    seen = set()
    lost = 0
    with open(stderr_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if " : " not in line:
                continue
            addr, _, values = line.partition(" : ")
            seen.add(addr.strip())
            lost += values.split().count("-")
    missing = len(set(targets) - seen)
    return lost + missing


def run_size(children, agent, n, repeat, workdir):
    targets = common.loopback_targets(n)
    cfg = os.path.join(workdir, f"gen-{n}.toml")
    tfile = os.path.join(workdir, f"targets-{n}.txt")
    # No broker is needed for `probe`; the url is only there because the config requires it.
    common.agent_config(cfg, targets, mqtt_port=1)
    with open(tfile, "w", encoding="ascii") as f:
        f.write("\n".join(targets) + "\n")

    tools = [("netmon-agent probe", [agent, "probe", "--config", cfg, "--json"], "ours")]
    for label, extra in FPING_VARIANTS:
        argv = ["fping", "-C", "1", "-q", *extra, "-t", "1000", "-f", tfile]
        tools.append((label, argv, "fping"))

    results = {label: [] for label, _, _ in tools}
    notes, failed = [], []
    for rep in range(repeat):
        # Interleave the tools in every repetition so that drift hits all of them alike.
        for label, argv, kind in tools:
            out = os.path.join(workdir, f"out-{n}-{rep}-{kind}.txt")
            err = os.path.join(workdir, f"err-{n}-{rep}-{kind}.txt")
            m = common.measured_run(children, argv, out, err, RUN_TIMEOUT_S)
            if kind == "ours":
                m["lost"], bad = lost_ours(out, targets)
                ok_rc = m["rc"] == 0
                if bad:
                    notes.append(f"{label} at {n}: {bad} unparsable output lines")
            else:
                m["lost"] = lost_fping(err, targets)
                ok_rc = m["rc"] in (0, 1)  # 1 = some target unreachable, still a valid run
            if m["timed_out"] or not ok_rc:
                with open(err, encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-300:].strip().replace("\n", " / ")
                notes.append(f"{label} at {n}, run {rep + 1}: exit {m['rc']}"
                             f"{' (timed out)' if m['timed_out'] else ''}: {tail}")
                failed.append(label)
            common.log(f"{label:20} n={n:6} run {rep + 1}: wall {m['wall']:.3f}s "
                       f"cpu {m['cpu']:.3f}s rss {m['maxrss_kib']} KiB lost {m['lost']} "
                       f"rc {m['rc']}")
            results[label].append(m)
    return results, notes, failed


def perf_profile(children, agent, n, workdir):
    """One extra, unmeasured run of ours and fping -i 0 under `perf stat` (software events)."""
    if not shutil.which("perf"):
        return None
    cfg = os.path.join(workdir, f"gen-{n}.toml")
    tfile = os.path.join(workdir, f"targets-{n}.txt")
    events = "task-clock,context-switches,cpu-migrations,page-faults"
    rows = []
    for label, argv in [
        ("netmon-agent probe", [agent, "probe", "--config", cfg, "--json"]),
        ("fping -i 0", ["fping", "-C", "1", "-q", "-i", "0", "-t", "1000", "-f", tfile]),
    ]:
        csv = os.path.join(workdir, f"perf-{label.split()[0]}.csv")
        cmd = ["perf", "stat", "-x", ",", "-o", csv, "-e", events, *argv]
        proc = children.start(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            children.stop(proc)
            continue
        children.procs.remove(proc)
        values = {}
        with open(csv, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2] in events.split(","):
                    values[parts[2]] = parts[0]
        rows.append([label] + [values.get(e, "n/a") for e in events.split(",")])
    return common.table(["tool", "task-clock ms", "context switches", "cpu migrations",
                         "page faults"], rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    for tool in ("fping",):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    if not os.access(args.agent, os.X_OK):
        raise SystemExit(f"agent binary {args.agent} is missing; build it first")
    sizes = [int(s) for s in args.sizes.split(",")]

    rows, ratio_rows, notes, goal_lines, failed = [], [], [], [], []
    with common.Children() as children:
        base = common.harness_baseline(children, args.workdir)
        for n in sizes:
            results, size_notes, size_failed = run_size(children, args.agent, n, args.repeat,
                                                        args.workdir)
            notes += size_notes
            failed += size_failed
            med = {}
            for label, runs in results.items():
                med[label] = {k: common.median([r[k] for r in runs])
                              for k in ("wall", "cpu", "user", "sys", "maxrss_kib")}
                rows.append([
                    f"{n:,}", label,
                    f"{med[label]['wall']:.3f}",
                    f"{med[label]['cpu']:.3f}",
                    f"{med[label]['user']:.3f} / {med[label]['sys']:.3f}",
                    f"{med[label]['maxrss_kib'] / 1024:.1f}",
                    " / ".join(str(r["lost"]) for r in runs),
                ])
            ours = med["netmon-agent probe"]
            for label, _ in FPING_VARIANTS:
                ratio_rows.append([f"{n:,}", label,
                                   common.ratio(ours["cpu"], med[label]["cpu"]),
                                   common.ratio(ours["wall"], med[label]["wall"]),
                                   common.ratio(ours["maxrss_kib"], med[label]["maxrss_kib"])])
            if n == max(sizes):
                peer = med["fping -i 0"]["cpu"]
                goal_lines.append(
                    f"- CPU ≤ 1.5× `fping -i 0` at {n:,} targets: "
                    f"{ours['cpu']:.3f} s vs {peer:.3f} s → {common.ratio(ours['cpu'], peer)} "
                    f"{common.verdict(peer > 0 and ours['cpu'] <= 1.5 * peer)}")
                lost_all = [r["lost"] for r in results["netmon-agent probe"]]
                goal_lines.append(f"- zero loss at {n:,} targets: lost {lost_all} "
                                  f"{common.verdict(all(x == 0 for x in lost_all))}")
        perf = perf_profile(children, args.agent, max(sizes), args.workdir)

    print(f"#### Probe engine vs fping (one round, count 1, loopback, median of {args.repeat})\n")
    print(common.table(["targets", "tool", "wall s", "CPU s (user+sys)", "user / sys s",
                        "peak RSS MiB", "lost replies per run"], rows))
    print("\nRatios ours / peer (medians):\n")
    print(common.table(["targets", "peer", "CPU", "wall", "peak RSS"], ratio_rows))
    print("\nGoals:\n")
    print("\n".join(goal_lines))
    print(f"\nHarness floor included in every row above (`/usr/bin/time /bin/true`): "
          f"wall {base['wall'] * 1000:.1f} ms, CPU {base['cpu'] * 1000:.1f} ms, "
          f"peak RSS {base['maxrss_kib'] / 1024:.1f} MiB.")
    if perf:
        print(f"\n`perf stat` (software events, one extra run, {max(sizes):,} targets):\n")
        print(perf)
    if notes:
        print("\nNotes:\n")
        print("\n".join(f"- {n}" for n in notes))
    print()
    if failed:
        raise SystemExit(1)  # a run that failed is no measurement; see the notes


if __name__ == "__main__":
    main()
