#!/usr/bin/env python3
"""A reference `exec` backend (docs/backends/exec.md, protocol 1) whose machines are records in
a JSON file: the tests' stand-in for a user's program, and the sandbox's backend when it runs
kscaler with `fleet.backend: exec`.

It keeps the protocol's every promise: this cluster's machines only, idempotent launches by
launch id (only the missing are made), terminate of a gone machine is success, an unknown
protocol version is refused with `nothing_launched`. It makes no real machine: a launched
machine is `pending` for KSANDBOX_EXEC_BOOT_SECONDS (default 0), then `running`; a terminated
one is `ended` and stays listed. Where a real program differs: it answers at once and nothing
in it can half-fail, unless a fault asks it to.

  KSANDBOX_EXEC_STATE   the JSON file holding the machines (required)
  KSANDBOX_EXEC_LOG     a file each call is appended to as one JSON line (optional)
  KSANDBOX_EXEC_FAULT   one fault for every call of the named operation, as OP:FAULT (optional):
      hang          sleep far past any timeout (the call is killed)
      garbage       exit 0 with text that is not JSON
      no-json-fail  exit 3 with nothing on stdout
      capacity      launch: exit 1, outcome nothing_launched, capacity true (placements in
                    KSANDBOX_EXEC_SHORT_PLACEMENTS only, comma-separated; all when unset)
      refuse        exit 1, outcome nothing_launched
      unknown       exit 1, outcome unknown, after doing the operation
      chatty        write KSANDBOX_EXEC_SECRET to stderr after "token=", then answer normally
      ignore-launch-id  launch always makes `count` new machines (a broken program)
"""
import fcntl
import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone


def now():
    return datetime.now(timezone.utc)


def stamp(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def answer(document, status=0):
    sys.stdout.write(json.dumps(document))
    sys.stdout.flush()
    sys.exit(status)


def fail(outcome, message, capacity=False, status=1):
    answer({"protocol": 1, "error": {"outcome": outcome, "capacity": capacity, "message": message}}, status)


def fault_for(operation):
    spec = os.environ.get("KSANDBOX_EXEC_FAULT", "")
    op, _, fault = spec.partition(":")
    return fault if op == operation else ""


def main():
    operation = sys.argv[-1] if len(sys.argv) > 1 else ""
    request = json.loads(sys.stdin.read() or "{}")
    state_path = os.environ["KSANDBOX_EXEC_STATE"]
    if os.environ.get("KSANDBOX_EXEC_LOG"):
        with open(os.environ["KSANDBOX_EXEC_LOG"], "a") as log:
            seen = {k: v for k, v in request.items() if k != "bootstrap"}
            log.write(json.dumps({"operation": operation, "request": seen, "env_has_aws_secret": "AWS_SECRET_ACCESS_KEY" in os.environ,
                                  "kscaler_protocol": os.environ.get("KSCALER_PROTOCOL"),
                                  "bootstrap": request.get("bootstrap")}) + "\n")
    if request.get("protocol") != 1:
        fail("nothing_launched", f"protocol {request.get('protocol')} is not spoken here (1 is)")
    if operation not in ("list", "launch", "terminate") or request.get("operation") != operation:
        fail("nothing_launched", f"unknown operation {operation!r}")

    fault = fault_for(operation)
    if fault == "hang":
        time.sleep(3600)
    if fault == "garbage":
        sys.stdout.write("this is not json {")
        sys.exit(0)
    if fault == "no-json-fail":
        sys.stderr.write("something broke\n")
        sys.exit(3)
    if fault == "refuse":
        fail("nothing_launched", "refused on purpose")
    if fault == "chatty":
        sys.stderr.write(f"calling the API with token={os.environ.get('KSANDBOX_EXEC_SECRET', '')} now\n")

    cluster = request["cluster_id"]
    with open(state_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one call at a time, as a real API serialises
        handle.seek(0)
        text = handle.read()
        machines = json.loads(text) if text.strip() else []
        boot = float(os.environ.get("KSANDBOX_EXEC_BOOT_SECONDS", "0"))
        for machine in machines:
            if machine["state"] == "pending" and time.time() - machine["created"] >= boot:
                machine["state"] = "running"
        ours = [m for m in machines if m["cluster_id"] == cluster]
        dry_run = bool(request.get("dry_run"))

        if operation == "launch" and fault == "capacity":
            short = [p for p in os.environ.get("KSANDBOX_EXEC_SHORT_PLACEMENTS", "").split(",") if p]
            placement = (request.get("offering") or {}).get("placement")
            if not short or placement in short:
                fail("nothing_launched", f"no capacity in {placement}", capacity=True)

        if operation == "launch" and not dry_run:
            launch_id, count = request["launch_id"], int(request["count"])
            offering = request.get("offering") or {}
            bootstrap = request.get("bootstrap") or {}
            existing = [m for m in ours if m.get("launch_id") == launch_id and m["state"] != "ended"]
            if fault == "ignore-launch-id":
                existing = []
            for _ in range(max(0, count - len(existing))):
                machine_id = f"m-{cluster[-12:]}-{uuid.uuid4().hex[:8]}"
                machine = {"id": machine_id, "cluster_id": cluster, "state": "pending", "created": time.time(),
                           "launch_time": stamp(now()), "machine_type": offering.get("machine_type"),
                           "placement": offering.get("placement"), "pool": bootstrap.get("pool"), "launch_id": launch_id,
                           "provider_id": f"sandbox://{machine_id}", "protected": False}
                machines.append(machine)
                existing.append(machine)
            launched = existing
        if operation == "terminate" and not dry_run:
            wanted = set(request.get("machine_ids") or [])
            for machine in ours:
                if machine["id"] in wanted:
                    machine["state"] = "ended"
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(machines))

    def shown(machine):
        return {k: machine[k] for k in ("id", "state", "launch_time", "machine_type", "placement", "pool", "launch_id",
                                        "provider_id", "protected") if machine.get(k) is not None}

    if fault == "unknown":
        fail("unknown", "the answer was lost on purpose")
    if operation == "list":
        answer({"protocol": 1, "machines": [shown(m) for m in ours]})
    if operation == "launch":
        answer({"protocol": 1, "machines": [] if dry_run else [shown(m) for m in launched]})
    answer({"protocol": 1, "terminated": [] if dry_run else sorted(set(request.get("machine_ids") or []))})


if __name__ == "__main__":
    main()
