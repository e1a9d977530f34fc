"""Shared helpers for the netmon benchmarks (python3 standard library only).

Everything here keeps the two rules of the benchmarks:
- traffic goes only to 127.0.0.0/8: every target list is checked by `loopback_targets`;
- every process started is registered in `Children` and killed by pid on exit or on a signal.
"""

import ipaddress
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
# A 30-day month, in seconds: what a rate in B/s comes to per agent-month.
MONTH_S = 30 * 86400


def log(msg):
    """Progress goes to stderr; stdout carries only the Markdown result."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loopback_targets(count):
    """`count` addresses 127.1.0.1 upward, skipping .0 and .255; all asserted loopback."""
    out = []
    third = 0
    while len(out) < count:
        if third > 255:
            raise ValueError(f"cannot fit {count} targets into 127.1.0.0/16")
        for fourth in range(1, 255):
            if len(out) == count:
                break
            out.append(f"127.1.{third}.{fourth}")
        third += 1
    assert_loopback(out)
    return out


def assert_loopback(addresses):
    for addr in addresses:
        if ipaddress.ip_address(addr) not in LOOPBACK:
            raise SystemExit(f"refusing to send traffic to non-loopback address {addr}")


def free_port():
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout_s):
    """Waits until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def agent_config(path, targets, mqtt_port, interval="1s", count=1, timeout="1s"):
    """Writes an agent config in the format of the netmon-agent CLI contract. The journal lives
    beside the config: the default /var/lib/netmon-agent/journal would carry one run's
    unacknowledged events into the next (resent, counted, and held in memory)."""
    journal = os.path.join(os.path.dirname(os.path.abspath(path)), "journal")
    lines = [
        'agent_id = "bench-1"',
        'province = "bench"',
        "[mqtt]",
        f'url = "mqtt://127.0.0.1:{mqtt_port}"',
        "[journal]",
        f'dir = "{journal}"',
        "[probe]",
        f'interval = "{interval}"',
        f"count = {count}",
        f'timeout = "{timeout}"',
        "down_after = 3",
        "[heartbeat]",
        'interval = "10s"',
    ]
    extra = os.environ.get("NETMON_BENCH_EXTRA_TOML")
    if extra:
        lines.append(extra)
    for i, addr in enumerate(targets):
        lines += ["[[targets]]", f'name = "t{i + 1}"', f'address = "{addr}"', 'role = "other"']
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


class Children:
    """Processes this benchmark started; all are killed by pid on exit or SIGINT/SIGTERM."""

    def __init__(self):
        self.procs = []
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, _frame):
        self.kill_all()
        raise SystemExit(128 + signum)

    def start(self, argv, **kw):
        # The agent reads NETMON_* variables as config overrides and refuses unknown keys, so the
        # benchmark's own NETMON_BENCH_* / NETMON_AGENT_BIN must not reach any child.
        env = dict(kw.pop("env", None) or os.environ)
        env = {k: v for k, v in env.items() if not k.startswith("NETMON_")}
        proc = subprocess.Popen(argv, env=env, **kw)
        self.procs.append(proc)
        return proc

    def stop(self, proc, grace_s=3.0):
        """SIGTERM, then SIGKILL after the grace period; returns the exit code."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    def kill_all(self):
        for proc in list(self.procs):
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        self.procs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill_all()
        return False


def measured_run(children, argv, stdout_path, stderr_path, timeout_s):
    """Runs argv to completion under GNU time; returns dict(wall, cpu, user, sys, maxrss_kib, rc,
    timed_out).

    Wall time, user and system CPU come from wait4(2) on the `/usr/bin/time` process (microsecond
    resolution instead of time's 10 ms; they include time's own start-up, see `harness_baseline`).
    Peak RSS is GNU time's `%M`: taken from wait4 by the small `time` process, because the kernel
    carries the forking parent's high-water mark into the child's ru_maxrss across exec, which
    from a python parent would add python's ~15 MiB.
    """
    rss_path = stdout_path + ".rss"
    timed = ["/usr/bin/time", "-o", rss_path, "-f", "%M", *argv]
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.monotonic()
        proc = children.start(timed, stdout=out, stderr=err)
        # Block in wait4 (no polling that would compete for the CPU); a timer enforces the limit.
        killer = threading.Timer(timeout_s, proc.kill)
        killer.start()
        _pid, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        timed_out = not killer.is_alive() and wall >= timeout_s
        killer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    children.procs.remove(proc)
    maxrss = None
    try:
        with open(rss_path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        maxrss = int(lines[-1]) if lines else None
    except (OSError, ValueError):
        pass
    return {
        "wall": wall,
        "user": ru.ru_utime,
        "sys": ru.ru_stime,
        "cpu": ru.ru_utime + ru.ru_stime,
        "maxrss_kib": maxrss if maxrss is not None else float("nan"),
        "rc": proc.returncode,
        "timed_out": timed_out,
    }


def harness_baseline(children, workdir, runs=5):
    """What `measured_run` reports for `/bin/true`: the floor included in every measurement."""
    out = [measured_run(children, ["/bin/true"], os.path.join(workdir, "baseline.out"),
                        os.path.join(workdir, "baseline.err"), 10) for _ in range(runs)]
    return {k: median([m[k] for m in out]) for k in ("wall", "cpu", "maxrss_kib")}


def tail(path, chars=400):
    """The end of a log file on one line, for a report note."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()[-chars:]
    except OSError:
        return "(no log)"
    return " / ".join(line.strip() for line in text.strip().splitlines())


def proc_status_kib(pid, key):
    """A `VmXxx:` value from /proc/PID/status in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_ctxt_switches(pid):
    """Voluntary + involuntary context switches summed over all threads of a live process."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except OSError:
            continue  # the thread ended meanwhile
    return total


def proc_cpu_s(pid):
    """utime + stime of a live process from /proc/PID/stat, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        raw = f.read()
    # The command name (field 2) may contain spaces; fields after ')' are fixed.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def median(values):
    return statistics.median(values) if values else float("nan")


def table(header, rows):
    """A Markdown table as a string."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def ratio(ours, peer):
    if peer is None or ours is None or peer == 0 or peer != peer or ours != ours:
        return "n/a"
    return f"{ours / peer:.2f}×"


def per_month(bytes_per_s):
    """A rate over a 30-day month, in decimal MB (GB from 1 GB on)."""
    value = bytes_per_s * MONTH_S
    return f"{value / 1e9:.2f} GB" if value >= 1e9 else f"{value / 1e6:.1f} MB"


def verdict(ok):
    return "✅ met" if ok else "❌ not met"
