#!/usr/bin/env python3
"""The README's "Invoke locally" section, followed as written.

Without Docker: every command of the cargo-lambda blocks runs in the README's order, the way a
user runs them — `make tools && make services` and `cargo lambda watch` in the background (the
real cargo-lambda, installed by `make tools` into .venv/ as the README says, on PATH as
`source .venv/bin/activate` puts it), then every `cargo lambda invoke` and `curl` line — and each
outcome is checked: the answers, the digests in the emulator's outbox (a real audit's digest
holds exactly the findings ListAuditFindings returns), the answers CloudFormation would get, the
continuation queue. Every sample event in events/ must be sent by some line.

With Docker (`sam local invoke`): Docker is not here, so the block is checked as far as it can
be: each logical id is a function of template.yaml with an entry in events/env.json, each event
file exists, and every variable events/env.json sets is one SAM CLI would pass (SAM passes only
the variables the template declares; read with SAM CLI's own template provider).

Exit status 0 when everything holds; otherwise the first thing that did not, named.
"""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
EMULATOR = "http://127.0.0.1:4566"
DIGEST_TOPIC = "arn:aws:sns:us-east-1:123456789012:dd-audit-digest"
LOGS = ROOT / "target" / "invoke-locally"


def fail(msg):
    print(f"invoke-locally: FAILED: {msg}", file=sys.stderr)
    for log in sorted(LOGS.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print(f"--- last lines of {log.relative_to(ROOT)}:\n" + "\n".join(tail), file=sys.stderr)
    sys.exit(1)


def section(text, title, level="## "):
    start = text.find(level + title)
    if start < 0:
        fail(f"README.md has no section '{title}'")
    end = text.find("\n" + level, start + len(level))
    return text[start:] if end < 0 else text[start:end]


def sh_blocks(text):
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def commands(block):
    """The commands of a block, without comments and blank lines."""
    lines = (line.split(" #")[0].strip() for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def get(path):
    with urllib.request.urlopen(EMULATOR + path, timeout=10) as r:
        return json.loads(r.read())


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    fail(f"{what}: not within {seconds} s")


def digests():
    return get(f"/_emulator/outbox?topicArn={DIGEST_TOPIC}")["messages"]


def digest_of(task_id, seconds=300):
    def find():
        return next((d for d in digests() if f"Task {task_id} " in d["message"]), None)

    return wait_for(f"the digest of task {task_id}", find, seconds)


def iot_client():
    """boto3's IoT client against the emulator."""
    import boto3

    return boto3.client("iot", endpoint_url=EMULATOR, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def listed_findings(task_id):
    """Every finding ListAuditFindings returns for a task (boto3 against the emulator)."""
    iot = iot_client()
    n = 0
    for page in iot.get_paginator("list_audit_findings").paginate(taskId=task_id, PaginationConfig={"PageSize": 250}):
        n += len(page["findings"])
    return n


def digest_counts(d):
    """(new, resolved, persisting) from a digest's body."""
    m = re.search(r"([\d,]+) new, ([\d,]+) resolved, ([\d,]+) persisting", d["message"])
    if not m:
        fail(f"digest without counts: {d['subject']}")
    return tuple(int(x.replace(",", "")) for x in m.groups())


# ------------------------------------------------------------------ what each step must do

def check_full_digest(task_id, why):
    d = digest_of(task_id)
    new, _, persisting = digest_counts(d)
    listed = listed_findings(task_id)
    if "NOT READ" in d["subject"]:
        fail(f"{why}: the digest of task {task_id} says its findings were not read: {d['subject']}")
    # A first run of its audit stream: every finding is new; a later one: new + persisting.
    muted = int(re.search(r"Muted[^:]*: ([\d,]+)", d["message"]).group(1).replace(",", "")) if "Muted" in d["message"] else 0
    if new + persisting + muted != listed:
        fail(f"{why}: the digest of task {task_id} counts {new} new + {persisting} persisting + {muted} muted, "
             f"ListAuditFindings returns {listed}")
    print(f"    digest of task {task_id}: {d['subject']!r} ({listed} findings, as ListAuditFindings)")


def expect_answer(answer, **keys):
    for k, v in keys.items():
        if answer.get(k) != v:
            fail(f"the answer's {k} is {answer.get(k)!r}, expected {v!r}: {answer}")


def cfn_response(request_id):
    def find():
        for r in get("/_emulator/cloudformation-responses")["responses"]:
            if r["path"] == request_id:
                return r["response"]
        return None

    return wait_for(f"CloudFormation's answer to {request_id}", find, 60)


def event(name):
    return json.loads((ROOT / "events" / name).read_text())


def sample_task(name):
    return json.loads(event(name)["Records"][0]["Sns"]["Message"])["taskId"]


def check(name, answer, state):
    """The outcome of sending events/<name>."""
    if name == "config-sync.dry-run.json":
        expect_answer(answer, dryRun=True)
        if not answer.get("plan"):
            fail(f"the dry run has no plan: {answer}")
        print(f"    plan: {len(json.dumps(answer['plan']))} bytes, drift {len(answer.get('drift', []))}")
    elif name.startswith("config-sync.cfn-"):
        ev = event(name)
        r = cfn_response(ev["RequestId"])
        if r.get("Status") != "SUCCESS":
            fail(f"{name}: CloudFormation would get {r.get('Status')}: {r.get('Reason')}")
        print(f"    CloudFormation answer: SUCCESS, {r.get('PhysicalResourceId')}")
        audits = {a["scheduledAuditName"]: a for a in iot_client().list_scheduled_audits()["scheduledAudits"]}
        if name == "config-sync.cfn-update.json" and audits.get("daily-fleet-audit", {}).get("frequency") != "WEEKLY":
            fail(f"{name}: the update makes daily-fleet-audit weekly: {audits}")
        if name == "config-sync.cfn-delete.json" and (audits or (r.get("Data") or {}).get("DeletedAudits") != "1"):
            fail(f"{name}: the delete removes the audit the stack created: {audits}, {r.get('Data')}")
        if name == "config-sync.cfn-create.json":
            # StartOnDemandAudit: an on-demand audit ran; its notification reached
            # audit-notification through SNS and cargo lambda watch.
            task = (r.get("Data") or {}).get("OnDemandTaskId")
            if not task:
                fail(f"{name}: StartOnDemandAudit is true, yet no on-demand audit was started: {r}")
            state["on_demand"] = task
            check_full_digest(task, "the on-demand audit config-sync started")
    elif name in ("audit-notification.scheduled-audit-completed.json", "audit-notification.on-demand-completed.json"):
        task = sample_task(name)
        d = digest_of(task, 120)
        if "NOT READ" not in d["subject"] or "does not know task" not in d["message"]:
            fail(f"{name}: the digest of a task the account never ran must say its findings were not read: "
                 f"{d['subject']!r}\n{d['message'][:600]}")
        if re.search(r"\d open", d["subject"]):
            fail(f"{name}: the notification's counts are presented as open findings: {d['subject']!r}")
        print(f"    digest: {d['subject']!r}")
    elif name == "audit-notification.failed-task.json":
        d = digest_of(sample_task(name), 120)
        if not d["subject"].startswith("Audit FAILED"):
            fail(f"{name}: {d['subject']!r}")
        print(f"    digest: {d['subject']!r}")
    elif name == "audit-notification.continuation.json":
        expect_answer(answer, batchItemFailures=[])
        task = json.loads(event(name)["Records"][0]["body"])["taskId"]
        time.sleep(1)
        # The sample scheduled notification names the same task: its digest was sent once.
        before = 1 if "audit-notification.scheduled-audit-completed.json" in state["sent"] else 0
        sent = sum(f"Task {task} " in d["message"] for d in digests())
        if sent != before:
            fail(f"{name}: {sent} digests of task {task}, expected {before}: a continuation sends none")
        print(f"    {answer}; no digest")
    elif name == "audit-sweeper.schedule.json":
        if answer.get("listed", 0) < 2:
            fail(f"{name}: the sweeper must list the two audits run here ({state['on_demand']}, "
                 f"{state['scheduled']}): {answer}")
        if answer.get("queued") != []:
            fail(f"{name}: both audits were ingested, nothing to queue: {answer}")
        queue = get("/_emulator/queues/continuation")["messages"]
        if queue:
            fail(f"{name}: the continuation queue holds {queue}")
        print(f"    listed {answer['listed']}, queued none; the continuation queue is empty")
    elif name == "config-sync.drift-check.json":
        if answer.get("drift") != [] or "note" in answer:
            fail(f"{name}: the setup config-sync applied has not drifted: {answer}")
        print("    no drift")
    elif name == "org-rollup.schedule.json":
        if answer.get("members", 0) < 1:
            fail(f"{name}: the roll-up must count the hub's own account-region: {answer}")
        rollup = wait_for("the roll-up in the outbox", lambda: next(
            (d for d in digests() if d["subject"].startswith("Organization roll-up")), None), 30)
        # The account's two audits were read: the roll-up counts their open findings.
        if re.search(r", 0 CRITICAL open", rollup["subject"]):
            fail(f"{name}: the roll-up counts no open finding: {rollup['subject']!r}")
        print(f"    {answer}; {rollup['subject']!r}")
    else:
        fail(f"no expected outcome is known for events/{name}: add it to {Path(__file__).name}")


# ------------------------------------------------------------------ the two paths

def sam_local_block(text):
    """What can be checked of the `sam local invoke` block without Docker."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(ROOT / "template.yaml"))
    declared = {f.name: set((f.environment or {}).get("Variables", {})) for f in SamFunctionProvider(stacks).get_all()}
    env = json.loads((ROOT / "events" / "env.json").read_text())
    for fn, variables in env.items():
        if fn not in declared:
            fail(f"events/env.json: {fn} is not a function of template.yaml")
        ignored = set(variables) - declared[fn]
        if ignored:
            fail(f"events/env.json: SAM CLI would not pass {sorted(ignored)} to {fn}: template.yaml does not declare them")
    invoked = 0
    for block in sh_blocks(text):
        for cmd in commands(block):
            if not cmd.startswith("sam local invoke"):
                continue
            args = shlex.split(cmd)
            logical = args[3]
            if logical not in declared:
                fail(f"README: `{cmd}`: {logical} is not a function of template.yaml")
            if logical not in env:
                fail(f"README: `{cmd}`: events/env.json has no entry for {logical}")
            event_file = args[args.index("-e") + 1]
            if not (ROOT / event_file).is_file():
                fail(f"README: `{cmd}`: {event_file} does not exist")
            if args[args.index("--env-vars") + 1] != "events/env.json":
                fail(f"README: `{cmd}`: not events/env.json")
            invoked += 1
    if invoked == 0:
        fail("README: no `sam local invoke` line")
    missing = set(declared) - set(env)
    if missing:
        fail(f"events/env.json has no entry for {sorted(missing)}")
    print(f"sam local: {invoked} invocations, {len(env)} env.json entries, every variable declared")


def cargo_lambda_block(text):
    LOGS.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    procs = []
    sent = set()
    state = {"sent": sent}
    started = time.time()

    def stop_all():
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)

    def background(cmd, log, ready, seconds):
        out = open(LOGS / log, "w")
        p = subprocess.Popen(cmd, shell=True, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, executable="/bin/bash")
        procs.append(p)
        wait_for(f"`{cmd}` ({LOGS.name}/{log})", lambda: p.poll() is None and ready(), seconds)

    try:
        for block in sh_blocks(text):
            for cmd in commands(block):
                t0 = time.time()
                if cmd == "source .venv/bin/activate":
                    env["PATH"] = f"{VENV_BIN}:{env['PATH']}"
                    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
                    continue
                print(f"$ {cmd}", flush=True)
                if cmd.endswith("make services"):
                    # A test before this one may still be releasing its ports.
                    wait_for("ports 4566, 8000 and 9000 free",
                             lambda: not (port_open(4566) or port_open(8000) or port_open(9000)), 60)
                    background(cmd, "services.log", lambda: "Ready in" in (LOGS / "services.log").read_text(), 1800)
                elif cmd.startswith("cargo lambda watch"):
                    background(cmd, "cargo-lambda-watch.log", lambda: port_open(9000), 300)
                elif cmd.startswith("cargo lambda invoke"):
                    name = Path(shlex.split(cmd)[shlex.split(cmd).index("--data-file") + 1]).name
                    r = subprocess.run(cmd, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                                       timeout=900, executable="/bin/bash")
                    if r.returncode != 0:
                        fail(f"`{cmd}` exited {r.returncode}: {r.stdout}{r.stderr}")
                    try:
                        answer = json.loads(r.stdout)
                    except json.JSONDecodeError:
                        fail(f"`{cmd}`: the answer is not JSON: {r.stdout!r} {r.stderr[-500:]}")
                    if isinstance(answer, dict) and "errorType" in answer:
                        fail(f"`{cmd}`: the function failed: {answer}")
                    check(name, answer if isinstance(answer, dict) else {}, state)
                    sent.add(name)
                elif cmd.startswith("curl"):
                    r = subprocess.run(cmd, shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                                       timeout=60, executable="/bin/bash")
                    if r.returncode != 0:
                        fail(f"`{cmd}` exited {r.returncode}: {r.stderr}")
                    if "clock/advance" in cmd:
                        ended = json.loads(r.stdout).get("tasksEnded", [])
                        if len(ended) != 1:
                            fail(f"`{cmd}`: one scheduled audit must end: {r.stdout}")
                        state["scheduled"] = ended[0]
                        check_full_digest(ended[0], "the scheduled audit")
                    elif "_emulator/outbox" in cmd:
                        print(f"    {len(json.loads(r.stdout)['messages'])} messages in the outbox")
                else:
                    fail(f"README: a command this check does not know how to follow: `{cmd}`")
                print(f"    ({time.time() - t0:.1f} s)", flush=True)
        events = {p.name for p in (ROOT / "events").glob("*.json") if p.name != "env.json"}
        if events - sent:
            fail(f"README: no `cargo lambda invoke` line sends {sorted(events - sent)}")
        warned = "Lambda-Runtime-Deadline-Ms" in (LOGS / "cargo-lambda-watch.log").read_text(errors="replace")
        print(f"cargo lambda: {len(sent)} sample events, every outcome as the README says "
              f"({time.time() - started:.0f} s; the runtime's deadline {'was' if warned else 'was not'} replaced)")
    finally:
        stop_all()


def main():
    readme = (ROOT / "README.md").read_text()
    invoke = section(readme, "Invoke locally")
    sam_local_block(section(invoke, "With Docker", "### "))
    cargo_lambda_block(section(invoke, "Without Docker", "### "))


if __name__ == "__main__":
    main()
