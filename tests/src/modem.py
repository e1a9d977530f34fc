#!/usr/bin/env python3
"""A cellular modem on a pseudo-terminal, for the agent's AT tests (python3 standard library only).

usage: modem.py FIXTURE_DIR CONTROL_FILE PORT_FILE [LIFETIME_S]

Opens a pty, puts its slave in raw mode, writes the slave's path to PORT_FILE and answers AT
commands written to it from transcripts in FIXTURE_DIR (the agent's 27.007 fixtures: a line
`AT...` starts a command, the lines up to `OK`/`ERROR` are its answer). Echoes commands like a
modem with ATE1 and sends a URC (`RING`) before every answer. The mode is read from CONTROL_FILE
at every command, so a test switches it at run time:

  normal   answers from lte_home.txt      nsa      from endc_roaming.txt
  nosvc    from searching.txt             quectel  from ../quectel/lte.txt
  hang     reads and never answers
  garbage  2000 random printable bytes without a line end, no result code

Unknown commands get ERROR. Exits after LIFETIME_S seconds (default 600) at the latest.
"""

import os
import random
import select
import sys
import time
import tty

FIXTURES = {
    "normal": "lte_home.txt",
    "nsa": "endc_roaming.txt",
    "nosvc": "searching.txt",
    "quectel": "../quectel/lte.txt",
}


def transcripts(directory):
    """{mode: {COMMAND: [answer lines..., final]}} from the fixture files."""
    out = {}
    for mode, name in FIXTURES.items():
        answers, command = {}, None
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                if line.upper().startswith("AT"):
                    command = line.upper()
                    answers[command] = []
                elif command is not None:
                    answers[command].append(line)
                    if line in ("OK", "ERROR"):
                        command = None
                elif line.startswith("+") and ":" in line:
                    # An answer printed without its command: `+C5GREG: 0,5` answers AT+C5GREG?.
                    name = line.split(":", 1)[0].strip().upper()
                    answers.setdefault("AT" + name + "?", []).append(line)
        out[mode] = answers
    return out


def mode_of(control):
    try:
        with open(control, encoding="utf-8") as f:
            return f.read().strip() or "normal"
    except OSError:
        return "normal"


def answer(master, answers, mode, command):
    if mode == "hang":
        return
    if mode == "garbage":
        junk = "".join(random.choice("abcxyz0123!?#%") for _ in range(2000))
        os.write(master, junk.encode())
        return
    lines = answers.get(mode, {}).get(command.upper(), ["ERROR"])
    if lines[-1] not in ("OK", "ERROR"):
        lines = lines + ["OK"]
    out = "\r\nRING\r\n" + "".join("\r\n" + line + "\r\n" for line in lines)
    os.write(master, out.encode())


def main():
    directory, control, port_file = sys.argv[1], sys.argv[2], sys.argv[3]
    lifetime = float(sys.argv[4]) if len(sys.argv) > 4 else 600.0
    answers = transcripts(directory)
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    tmp = port_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(path)
    os.rename(tmp, port_file)
    print(f"modem on {path}", flush=True)
    deadline = time.monotonic() + lifetime
    pending = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:
            continue
        pending += data
        while b"\r" in pending:
            raw, pending = pending.split(b"\r", 1)
            command = raw.decode("utf-8", "replace").strip()
            if not command:
                continue
            mode = mode_of(control)
            print(f"{mode}: {command}", flush=True)
            if mode != "hang":
                os.write(master, (command + "\r").encode())
            answer(master, answers, mode, command)
        if len(pending) > 4096:
            pending = b""
    os.close(slave)


if __name__ == "__main__":
    main()
