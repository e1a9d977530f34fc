#!/usr/bin/env python3
"""Agent footprint vs prometheus-blackbox-exporter: binary size, peak RSS and CPU while probing
100 loopback targets every second for 60 s.

Prints a Markdown section on stdout; progress on stderr. Usage:
    footprint.py --agent target/release/netmon-agent --workdir DIR [--seconds 60] [--targets 100]
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

EXPORTER = "/usr/bin/prometheus-blackbox-exporter"


def is_stripped(path):
    try:
        out = subprocess.run(["file", "-L", path], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if "not stripped" in out:
        return "no"
    return "yes" if "stripped" in out else "unknown"


def watch(proc, seconds, tick):
    """Samples VmRSS every second for `seconds` while calling `tick(i)` once per second.

    Returns (samples_kib, hwm_kib, cpu_s, alive, context_switches, threads). The measurement is
    taken at the end, before the process is stopped, from /proc/PID/status (VmHWM = peak RSS)
    and /proc/PID/stat.
    """
    samples = []
    start = time.monotonic()
    for i in range(seconds):
        if proc.poll() is not None:
            return samples, None, None, False, None, None
        tick(i)
        rss = common.proc_status_kib(proc.pid, "VmRSS")
        if rss is not None:
            samples.append(rss)
        # Pace to wall-clock seconds since start; this is the measurement window, not a wait
        # for some event.
        delay = start + i + 1 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    if proc.poll() is not None:
        return samples, None, None, False, None, None
    return (samples, common.proc_status_kib(proc.pid, "VmHWM"), common.proc_cpu_s(proc.pid), True,
            common.proc_ctxt_switches(proc.pid), len(os.listdir(f"/proc/{proc.pid}/task")))


def start_broker(children, workdir):
    port = common.free_port()
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w", encoding="ascii") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    log = open(os.path.join(workdir, "mosquitto.log"), "wb")
    children.start(["mosquitto", "-c", conf], stdout=log, stderr=log)
    if not common.wait_port(port, 10):
        raise SystemExit("mosquitto did not start listening within 10 s (see mosquitto.log)")
    return port


def start_subscriber(children, workdir, port):
    """mosquitto_sub recording everything under netmon/v1/bench/; returns once it is subscribed,
    proven by a marker message published until it shows up in the recording."""
    path = os.path.join(workdir, "sub.txt")
    out = open(path, "wb")
    children.start(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-v",
                    "-t", "netmon/v1/bench/#"], stdout=out, stderr=subprocess.DEVNULL)
    for _ in range(100):
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                        "-t", "netmon/v1/bench/_marker/status", "-m", "marker"],
                       timeout=5, check=False)
        with open(path, encoding="utf-8", errors="replace") as f:
            if "_marker" in f.read():
                return path
        time.sleep(0.1)
    raise SystemExit("mosquitto_sub did not receive the marker within 10 s")


def count_events(sub_path):
    """(messages on events topics, distinct probe_round_completed events, of which answered,
    events seen more than once). The agent resends what no collector acknowledged after every
    reconnect, and this benchmark runs no collector, so a round may be on the wire twice."""
    messages = rounds = answered = resent = 0
    seen = set()
    with open(sub_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            topic, _, payload = line.rstrip("\n").partition(" ")
            if not topic.endswith("/events"):
                continue
            messages += 1
            try:
                batch = json.loads(payload)
            except ValueError:
                continue
            # A batch is {"sender":…,"events":[…]} (what agents send), an array, or one envelope.
            if isinstance(batch, dict) and isinstance(batch.get("events"), list):
                batch = batch["events"]
            for env in batch if isinstance(batch, list) else [batch]:
                if isinstance(env, dict) and env.get("type") == "probe_round_completed":
                    key = (env.get("boot"), env.get("seq"))
                    if key in seen:
                        resent += 1
                        continue
                    seen.add(key)
                    rounds += 1
                    if (env.get("received") or 0) > 0:
                        answered += 1
    return messages, rounds, answered, resent


def run_agent(children, agent, workdir, targets, seconds):
    port = start_broker(children, workdir)
    sub = start_subscriber(children, workdir, port)
    cfg = os.path.join(workdir, "agent.toml")
    common.agent_config(cfg, targets, port, interval="1s", count=1, timeout="1s")
    err = open(os.path.join(workdir, "agent.log"), "wb")
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
    proc = children.start([agent, "run", "--config", cfg], stdout=err, stderr=err, cwd=workdir,
                          env=env)
    common.log(f"agent pid {proc.pid} probing {len(targets)} targets for {seconds}s, "
               f"broker :{port}")
    samples, hwm, cpu, alive, switches, threads = watch(proc, seconds, lambda _i: None)
    rc = children.stop(proc, grace_s=5)
    # Give the broker a moment to forward what the agent published before it stopped.
    time.sleep(0.5)
    messages, rounds, answered, resent = count_events(sub)
    return {"samples": samples, "hwm": hwm, "cpu": cpu, "alive": alive, "rc": rc,
            "switches": switches, "threads": threads,
            "messages": messages, "rounds": rounds, "answered": answered, "resent": resent}


def run_exporter(children, workdir, targets, seconds):
    port = common.free_port()
    conf = os.path.join(workdir, "blackbox.yml")
    with open(conf, "w", encoding="ascii") as f:
        f.write("modules:\n  icmp:\n    prober: icmp\n    timeout: 1s\n"
                "    icmp:\n      preferred_ip_protocol: ip4\n")
    log = open(os.path.join(workdir, "exporter.log"), "wb")
    proc = children.start([EXPORTER, f"--config.file={conf}",
                           f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    if not common.wait_port(port, 10):
        raise SystemExit("blackbox exporter did not listen within 10 s (see exporter.log)")
    common.log(f"exporter pid {proc.pid} on :{port}, {seconds} × {len(targets)} scrapes")
    stats = {"requests": 0, "success": 0, "errors": 0}

    def scrape(addr):
        url = f"http://127.0.0.1:{port}/probe?module=icmp&target={addr}"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return "\nprobe_success 1" in resp.read().decode("utf-8", "replace")
        except OSError:
            return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(targets)) as pool:
        def tick(_i):
            # One bounded burst: len(targets) concurrent scrapes, all finished (3 s timeout each)
            # before the next second starts.
            for ok in pool.map(scrape, targets):
                stats["requests"] += 1
                if ok is None:
                    stats["errors"] += 1
                elif ok:
                    stats["success"] += 1

        samples, hwm, cpu, alive, switches, threads = watch(proc, seconds, tick)
    rc = children.stop(proc)
    return {"samples": samples, "hwm": hwm, "cpu": cpu, "alive": alive, "rc": rc,
            "switches": switches, "threads": threads, **stats}


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--targets", type=int, default=100)
    args = ap.parse_args()
    args.agent = os.path.abspath(args.agent)  # the agent runs with the work dir as cwd
    for tool in ("mosquitto", "mosquitto_sub", "mosquitto_pub", EXPORTER):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    if not os.access(args.agent, os.X_OK):
        raise SystemExit(f"agent binary {args.agent} is missing; build it first")
    if not 1 <= args.seconds <= 600 or not 1 <= args.targets <= 1000:
        raise SystemExit("--seconds must be 1..600 and --targets 1..1000")
    targets = common.loopback_targets(args.targets)

    with common.Children() as children:
        ours = run_agent(children, args.agent, args.workdir, targets, args.seconds)
        children.kill_all()  # the broker and subscriber are no longer needed
        peer = run_exporter(children, args.workdir, targets, args.seconds)

    size_ours, size_peer = os.path.getsize(args.agent), os.path.getsize(EXPORTER)
    mean = lambda s: sum(s) / len(s) if s else None  # noqa: E731
    rows = [
        ["binary size MiB (stripped: ours " + is_stripped(args.agent) + ", peer "
         + is_stripped(EXPORTER) + ")", f"{size_ours / common.MIB:.2f}",
         f"{size_peer / common.MIB:.2f}", common.ratio(size_ours, size_peer)],
        ["peak RSS (VmHWM) MiB", mib(ours["hwm"]), mib(peer["hwm"]),
         common.ratio(ours["hwm"], peer["hwm"])],
        ["mean RSS (VmRSS, 1 s samples) MiB", mib(mean(ours["samples"])),
         mib(mean(peer["samples"])), common.ratio(mean(ours["samples"]), mean(peer["samples"]))],
        [f"CPU s (user+sys) over {args.seconds} s",
         "n/a" if ours["cpu"] is None else f"{ours['cpu']:.2f}",
         "n/a" if peer["cpu"] is None else f"{peer['cpu']:.2f}",
         common.ratio(ours["cpu"], peer["cpu"])],
        ["context switches, all threads (threads)", f"{ours['switches']} ({ours['threads']})",
         f"{peer['switches']} ({peer['threads']})",
         common.ratio(ours["switches"], peer["switches"])],
        ["probes answered / done", f"{ours['answered']} / {ours['rounds']} "
         f"(in {ours['messages']} MQTT messages; {ours['resent']} rounds sent again)",
         f"{peer['success']} / {peer['requests']} ({peer['errors']} HTTP errors)", ""],
    ]
    goals = [
        f"- binary ≤ 3 MiB stripped: {size_ours / common.MIB:.2f} MiB "
        f"{common.verdict(size_ours <= 3 * common.MIB)}",
        f"- peak RSS ≤ 8 MiB: {mib(ours['hwm'])} MiB "
        f"{common.verdict(ours['hwm'] is not None and ours['hwm'] <= 8 * 1024)}",
        f"- CPU ≤ ½ of the exporter's: {common.ratio(ours['cpu'], peer['cpu'])} "
        + common.verdict(None not in (ours["cpu"], peer["cpu"])
                         and ours["cpu"] <= peer["cpu"] / 2),
    ]
    print(f"#### Agent footprint vs prometheus-blackbox-exporter "
          f"({args.targets} loopback targets, every 1 s, {args.seconds} s)\n")
    print(common.table(["measure", "netmon-agent run", "blackbox exporter", "ours / peer"], rows))
    print("\nGoals:\n")
    print("\n".join(goals))
    notes = []
    if not ours["alive"]:
        notes.append(f"netmon-agent exited before the end of the window (exit {ours['rc']}): "
                     + common.tail(os.path.join(args.workdir, "agent.log")))
    if not peer["alive"]:
        notes.append(f"the exporter exited before the end of the window (exit {peer['rc']}): "
                     + common.tail(os.path.join(args.workdir, "exporter.log")))
    if notes:
        print("\nNotes:\n")
        print("\n".join(f"- {n}" for n in notes))
    print()
    if notes:
        raise SystemExit(1)  # a footprint of a process that died is no measurement


if __name__ == "__main__":
    main()
