"""Drives `kscaler run` on a schedule, as cron or a systemd timer would, and keeps every run's
JSON report. Each loop starts a run every `interval` seconds (a run never overlaps the same
loop's previous one; a late start is not made up for)."""
import json
import subprocess
import threading
import time
from dataclasses import dataclass


@dataclass
class Run:
    """One `kscaler run`: wall-clock start/end as the driver measured them, the exit code,
    the parsed JSON report (None when stdout was not JSON) and stderr's last lines."""
    loop: str
    number: int
    started: float
    finished: float
    exit_code: int
    report: dict | None
    stderr_tail: str

    @property
    def outcome(self):
        return self.report.get("outcome", "?") if self.report else "no-report"

    @property
    def decision(self):
        return (self.report or {}).get("decision") or {}

    def acted(self, kind):
        """Instance ids of this run's successful EC2 actions of `kind` (launch, terminate, terminate_failed_boot)."""
        return [i for a in (self.report or {}).get("actions", []) if a.get("kind") == kind and not a.get("error")
                for i in a.get("instance_ids", [])]

    def reading(self, signal):
        reading = ((self.report or {}).get("observation") or {}).get("readings", {}).get(signal, {})
        return reading.get("value") if reading.get("status") == "value" else None


class KscalerCommand:
    """How to start kscaler: the binary, its config and its environment (AWS settings only)."""

    def __init__(self, binary, config_path, environment, timeout_seconds):
        self.binary = str(binary)
        self.config_path = str(config_path)
        self.environment = environment
        self.timeout_seconds = timeout_seconds

    def run(self, *arguments, deadline=None):
        return subprocess.run([self.binary, *arguments, "--config", self.config_path],
                              env=self.environment, capture_output=True, text=True,
                              timeout=deadline or self.timeout_seconds + 15)

    def evaluate(self, mode):
        """`kscaler run|plan --output json`; returns (exit code, report or None, stderr)."""
        completed = self.run(mode, "--output", "json", "--timeout", str(self.timeout_seconds), "--log-level", "warning")
        try:
            report = json.loads(completed.stdout)
        except json.JSONDecodeError:
            report = None
        return completed.returncode, report, completed.stderr


class RunLoop(threading.Thread):
    def __init__(self, name, command, interval, stop, on_run, first_run_at=None):
        super().__init__(name=f"loop-{name}", daemon=True)
        self.loop_name = name
        self.command = command
        self.interval = interval
        self.stop_event = stop
        self.on_run = on_run
        self.first_run_at = first_run_at
        self.runs = []

    def run(self):
        next_start = self.first_run_at or time.time()
        number = 0
        while not self.stop_event.is_set():
            delay = next_start - time.time()
            if delay > 0 and self.stop_event.wait(delay):
                break
            number += 1
            started = time.time()
            try:
                code, report, stderr = self.command.evaluate("run")
            except subprocess.TimeoutExpired as error:
                code, report, stderr = -1, None, f"kscaler run did not finish within {error.timeout}s"
            run = Run(self.loop_name, number, started, time.time(), code, report, "\n".join(stderr.strip().splitlines()[-5:]))
            self.runs.append(run)
            self.on_run(run)
            next_start += self.interval
            next_start = max(next_start, time.time())


def describe(run, t0, label):
    """One or two lines for a run: what it decided and did, and the first reason why."""
    t = run.started - t0
    head = f"{t:6.1f}s {label:<8} #{run.number:<3}"
    if run.report is None:
        return f"{head} exit {run.exit_code}, no report: {run.stderr_tail or 'no output'}"
    if run.outcome == "skipped":
        return f"{head} skipped: another run holds the lease"
    counts = run.decision.get("counts") or {}
    pending = run.reading("unschedulable_pods")
    action = run.decision.get("action", {})
    verb = {"scale_up": f"scale up +{action.get('count', 0)}",
            "scale_down": f"scale down -{len(action.get('victims', []))}",
            "none": "no change"}.get(action.get("type"), "?")
    failed_boots = run.acted("terminate_failed_boot")
    if failed_boots:
        verb += f", replaced failed boot{'s' if len(failed_boots) > 1 else ''} {', '.join(failed_boots)}"
    # Whatever else the run did (cordon, evict, uncordon, … as kscaler names them), counted per kind.
    others = {}
    for a in (run.report or {}).get("actions", []):
        if a.get("kind") not in ("launch", "terminate", "terminate_failed_boot", "delete_node"):
            done = "failed" if a.get("error") else a.get("result", "done")
            key = f"{a.get('kind', '?')}" + ("" if done == "done" else f" ({done})")
            others[key] = others.get(key, 0) + max(1, len(a.get("instance_ids") or []))
    if others:
        verb += ", " + ", ".join(f"{kind} ×{n}" if n > 1 else kind for kind, n in others.items())
    state = (f"nodes {counts.get('current', '?')} (ready {counts.get('ready', '?')}, booting {counts.get('booting', '?')})"
             f" -> {counts.get('desired', '?')}" if counts else "")
    line = f"{head} {verb:<16} {state}  pending pods {int(pending) if pending is not None else '?'}  [{run.outcome}]"
    pools = describe_pools(run)
    if pools:
        line += "\n" + " " * 22 + pools
    reasons = [r.get("message", "") for r in run.decision.get("reasons", [])] + list(run.report.get("errors", []))
    if reasons:
        # The first reason says what was asked for; the last, when different, what held it back.
        why = shorten(reasons[0], 200) if len(reasons) == 1 else f"{shorten(reasons[0], 95)} → {shorten(reasons[-1], 105)}"
        line += "\n" + " " * 22 + why
    return line


def describe_pools(run):
    """With node pools: each pool's nodes now -> desired, its pending pods and its market
    ("general 1 -> 3 (6 pending), batch spot 0 -> 3 (10 pending)"), and the pods no pool can
    take; None without pools."""
    pools = run.decision.get("pools") or []
    if not pools:
        return None
    parts = []
    for pool in pools:
        counts = pool.get("counts") or {}
        market = " spot" if pool.get("capacity_type") == "spot" else ""
        pending = f" ({pool.get('pending_pods')} pending)" if pool.get("pending_pods") else ""
        parts.append(f"{pool.get('name')}{market} {counts.get('current', '?')} -> {counts.get('desired', '?')}{pending}")
    unservable = run.decision.get("unservable_pods") or []
    if unservable:
        parts.append(f"fitting no pool: {', '.join(u.get('pod', '?') for u in unservable)}")
    return "pools: " + ", ".join(parts)


def describe_cluster(sample, evictions=0):
    """The drains and budgets as the simulated cluster shows them, for the live output: None
    when there is nothing to say (no node cordoned, no PodDisruptionBudget)."""
    if sample is None or not (sample.cordoned or sample.draining or sample.pdbs or evictions):
        return None
    parts = [f"cordoned {sample.cordoned}, draining {sample.draining}"]
    if evictions:
        parts.append(f"pods evicted {evictions}")
    parts += [f"{name} Ready {b['ready']}/minAvailable {b['min_available']}" + (" BELOW" if b["ready"] < b["min_available"] else "")
              for name, b in sorted(sample.pdbs.items())]
    return " " * 22 + "cluster: " + ", ".join(parts)


def shorten(text, width):
    return text if len(text) <= width else text[:width - 1] + "…"
