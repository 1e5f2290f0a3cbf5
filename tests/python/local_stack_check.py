#!/usr/bin/env python3
"""`make up`'s local stack as a user meets it, run by `make test` after the build:

- every socket it and its children listen on is on the loopback address (no open database or
  fake AWS on a shared network), and the emulator, DynamoDB Local and the functions are there;
- it runs exactly one DynamoDB Local;
- the commands its "Ready" banner prints work as printed, in order: the AWS CLI lines (when
  an `aws` is on PATH; said when not), config-sync through `cargo lambda invoke`, the clock
  advanced to the daily audit, the outbox, and `audit-history` answering with that run.

    .venv/bin/python tests/python/local_stack_check.py

Exit status 0 when everything holds; otherwise the first thing that did not, named.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PORTS = {"emulator": 4566, "DynamoDB Local": 8000, "functions": 9000}
# /proc/net/tcp{,6} spell 127.0.0.1 as 0100007F (little-endian), ::1 and ::ffff:127.0.0.1 as below.
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def fail(msg, log=None):
    print(f"local-stack-check: FAILED: {msg}", file=sys.stderr)
    if log:
        print("--- local-stack's output:\n" + "".join(log[-60:]), file=sys.stderr)
    sys.exit(1)


def children(pid):
    """`pid` and every process below it."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(parents.get(p, []))
    return tree


def listening(pids):
    """(pid's command, hex address, port) of every listening TCP socket the processes hold."""
    owner = {}
    for pid in pids:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owner[target[8:-1]] = comm
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state == "0A" and inode in owner:
                address, port = local.split(":")
                out.append((owner[inode], address, int(port, 16)))
    return out


def banner_commands(lines):
    start = next((i for i, l in enumerate(lines) if l.startswith("Point the AWS CLI")), None)
    if start is None:
        fail("the banner has no 'Point the AWS CLI' section", lines)
    commands = []
    for line in lines[start + 1:]:
        if line.startswith("The functions' log lines"):
            break
        if line.startswith("  "):
            commands.append(line.strip().split("   #")[0].strip())
    return commands


def run(command, env):
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def main():
    binary = TARGET / "debug" / "local-stack"
    if not binary.exists():
        fail(f"{binary} is missing: build first (make test builds it)")
    for name, port in PORTS.items():
        if subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"], capture_output=True).returncode == 0:
            fail(f"port {port} ({name}) is taken: stop what holds it")
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}", FLEET_DEVICES="500", FUNCTION_LOG="warn")
    for k in ("BIND_ADDRESS", "EMULATOR_PORT", "DYNAMODB_PORT", "INVOKE_PORT"):
        env.pop(k, None)
    proc = subprocess.Popen([str(binary), "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = []
    try:
        deadline = time.time() + 180
        while not any(l.startswith("Ctrl-C stops everything") for l in log):
            line = proc.stdout.readline()
            if not line or time.time() > deadline:
                fail("local-stack up never printed its banner", log)
            log.append(line)
        # Keep reading its output so that it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [log.append(l) for l in proc.stdout], daemon=True).start()

        tree = children(proc.pid)
        sockets = listening(tree)
        open_to_all = [s for s in sockets if s[1] not in LOOPBACK]
        if open_to_all:
            fail(f"listening beyond loopback: {open_to_all}", log)
        ports = {p for _, _, p in sockets}
        for name, port in PORTS.items():
            if port not in ports:
                fail(f"nothing of the stack listens on {port} ({name}): {sorted(ports)}", log)
        javas = [p for p in tree if Path(f"/proc/{p}/comm").read_text().strip() == "java"]
        if len(javas) != 1:
            fail(f"{len(javas)} DynamoDB Local processes, not one", log)
        print(f"local-stack-check: {len(sockets)} listening sockets, all on loopback; one DynamoDB Local")

        commands = banner_commands(log)
        if not any("audit-history" in c for c in commands):
            fail("the banner names no audit-history command", log)
        for command in commands:
            if command.startswith("export "):
                for pair in command[len("export "):].split():
                    key, value = pair.split("=", 1)
                    env[key] = value
                continue
            if command.startswith("aws ") and shutil.which("aws", path=env["PATH"]) is None:
                print(f"local-stack-check: no `aws` on PATH, not run: {command}")
                continue
            tries = 60 if "audit-history" in command else 1
            for attempt in range(tries):
                r = run(command, env)
                # The run's digest comes a few seconds after the audit ends.
                if r.returncode == 0 and ("audit-history" not in command or "COMPLETED" in r.stdout):
                    break
                time.sleep(2)
            else:
                fail(f"`{command}` failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}", log)
            print(f"local-stack-check: ok: {command}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print("local-stack-check: the banner's commands work as printed")


if __name__ == "__main__":
    main()
