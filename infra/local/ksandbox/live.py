"""The sandbox's live view: one line per tick with every policy side by side, a banner when the
scenario's phase changes, and a policy's reason only when its decision changes — at most
`width` columns a line, reasons wrapped at word boundaries.

Pure: it takes run records (the shape of a Result's `runs`: the driver's Run fields plus `t`,
seconds since that sandbox's scenario started, with `report` the JSON kscaler printed) and
returns lines; printing, threads and clocks stay with the caller. Each policy plays the
scenario in its own sandbox with its own start, so runs are put on a common tick (⌊t / interval⌋)
and a tick's line is held until every policy still playing has reached it.

    view = LiveView(["kscaler", "classic"], phases, interval=3)
    lines = view.add("kscaler", run) + … + view.finish("kscaler") + view.close()
"""
import math
import re
import textwrap
from datetime import datetime

WIDTH = 100
# Where a reason's text starts: under the first policy's column, after the time.
REASON_INDENT = 8
UP, DOWN, SAME = "▲", "▼", "·"
UNIT_AFTER_FIGURE = re.compile(r"(\d) (%|[KMGT]i?B\b|vCPU\b|cores?\b)")


def phase_list(phases):
    """Phases as dicts (name, start, end and, when known, replicas) from Scenario phases or a
    Result's phase dicts."""
    listed = []
    for phase in phases:
        if isinstance(phase, dict):
            listed.append(dict(phase))
        else:
            listed.append({"name": phase.name, "start": phase.start, "end": phase.end, "replicas": dict(phase.replicas)})
    return listed


def wrap(text, width, first_prefix, next_prefix):
    """`text` in lines of at most `width` columns, broken only between words (a single word
    longer than a whole line, such as a long URL in an error, is the one thing split)."""
    # A figure stays on the line of its unit ("6 GiB", "50 %"): the space between them is made
    # one textwrap does not break at, and given back after.
    glued = UNIT_AFTER_FIGURE.sub("\\1\u00a0\\2", " ".join(text.split()))
    lines = [line.replace("\u00a0", " ") for line in
             textwrap.wrap(glued, width=width, initial_indent=first_prefix, subsequent_indent=next_prefix,
                           break_long_words=False, break_on_hyphens=False)]
    out = []
    for line in lines:
        while len(line) > width:  # only a word longer than the line itself gets here
            out.append(line[:width])
            line = next_prefix + line[width:]
        out.append(line)
    return out


class PolicyTick:
    """What one run of one policy shows on its tick: the counts, the action mark, and the
    decision (what changed, if anything) with its reason."""

    def __init__(self, run):
        self.t = run.get("t", 0.0)
        report = run.get("report")
        self.exit_code = run.get("exit_code")
        self.nodes = self.ready = self.booting = self.pods = None
        if report is None:
            self.mark = "err"
            self.key = ("no-report", self.exit_code)
            self.reason = f"exit {self.exit_code}, no report: {run.get('stderr_tail') or 'no output'}"
            return
        decision = report.get("decision") or {}
        counts = decision.get("counts") or {}
        self.nodes, self.ready, self.booting = counts.get("current"), counts.get("ready"), counts.get("booting")
        reading = ((report.get("observation") or {}).get("readings") or {}).get("unschedulable_pods") or {}
        if reading.get("status") == "value" and reading.get("value") is not None:
            self.pods = int(reading["value"])
        if report.get("outcome") == "skipped":
            self.mark = "skip"
            self.key = ("skipped",)
            self.reason = "skipped: another run holds the lease"
            return
        action = decision.get("action") or {}
        kind = action.get("type")
        if kind == "scale_up":
            self.mark = f"{UP}{action.get('count', 0)}"
        elif kind == "scale_down":
            self.mark = f"{DOWN}{len(action.get('victims') or [])}"
        else:
            self.mark = SAME
        replaced = acted(report, "terminate_failed_boot")
        if replaced:
            self.mark += "↻"
        reasons = decision.get("reasons") or []
        errors = list(report.get("errors") or [])
        if report.get("outcome") in ("failed", "action_failed", "action_result_unknown"):
            self.mark += "!"
        # The decision: what the run did and the rules that shaped it (their codes, not their
        # messages, whose figures move every run).
        self.key = (kind, action.get("count"), len(action.get("victims") or []), decision.get("halt"),
                    tuple(r.get("code") for r in shown_reasons(reasons)), tuple(other_actions(report)),
                    bool(replaced), tuple(errors), report.get("outcome"))
        did = what_it_did(report, kind, action, replaced)
        reason = f"{did} — {why(reasons, errors)}" if did else why(reasons, errors)
        pools = decision.get("pools") or []
        if pools:
            # With node pools, each pool's own decision is part of the run's.
            self.key += tuple((p.get("name"), (p.get("action") or {}).get("type"), (p.get("action") or {}).get("count"),
                               len((p.get("action") or {}).get("victims") or [])) for p in pools)
            reason += "; " + pools_summary(decision)
        self.reason = on_scenario_clock(reason, run["started"] - self.t) if "started" in run else reason

    def columns(self):
        def shown(value):
            return "?" if value is None else str(value)
        return (f"{shown(self.nodes):>5} {shown(self.ready):>5} {shown(self.booting):>7} "
                f"{shown(self.pods):>7} {self.mark:>4}")


BLANK = f"{'':>5} {'':>5} {'':>7} {'':>7} {'':>4}"
COLUMN_NAMES = "nodes Ready booting unsched  act"
GAP = "   "
LEGEND = ["t: seconds into the scenario · nodes: workers, of them Ready and booting",
          f"unsched: unschedulable pods · act: {UP}n nodes launched, {DOWN}n nodes to drain and remove, {SAME} none"]


class LiveView:
    """Collects runs from every policy and hands back the lines that are complete."""

    def __init__(self, labels, phases, interval, width=WIDTH):
        self.labels = list(labels)
        self.phases = phase_list(phases)
        self.interval = float(interval)
        self.width = width
        self.ticks = {}                               # tick -> {label: [PolicyTick]}
        self.reached = {label: -1 for label in self.labels}
        self.finished = set()
        self.next_tick = 0                            # the first tick not printed yet
        self.phase_shown = None
        self.last_key = {}
        self.header_shown = False
        # Banners are as wide as one row of every policy's columns
        # (at least 60 columns, for one policy's banners).
        self.row_width = min(self.width, max(60, len("      t  ") + len(GAP.join(COLUMN_NAMES for _ in self.labels))))

    # MARK: input

    def header(self):
        """The column titles and what they mean, handed out once, before the first tick."""
        if self.header_shown:
            return []
        self.header_shown = True
        title = "      t  " + GAP.join(f"{'── ' + label + ' ':─<{len(COLUMN_NAMES)}}" for label in self.labels)
        names = "         " + GAP.join(COLUMN_NAMES for _ in self.labels)
        return [self._fit(line) for line in LEGEND] + [self._fit(title), self._fit(names)]

    def add(self, label, run):
        """One run of `label`'s policy; returns the lines it completes (maybe none)."""
        tick = max(0, math.floor(run.get("t", 0.0) / self.interval + 1e-9))
        policy_tick = PolicyTick(run)
        if tick < self.next_tick:
            # A tick already printed (a run that came late): its own line, at once.
            return self._lines(tick, {label: [policy_tick]}, late=True)
        self.ticks.setdefault(tick, {}).setdefault(label, []).append(policy_tick)
        self.reached[label] = max(self.reached[label], tick)
        return self._complete()

    def finish(self, label):
        """`label`'s scenario is over (or stopped): its column no longer holds ticks back."""
        self.finished.add(label)
        return self._complete()

    def close(self):
        """Everything still held, whether or not every policy reached it."""
        self.finished.update(self.labels)
        return self._complete()

    # MARK: output

    def _complete(self):
        playing = [self.reached[label] for label in self.labels if label not in self.finished]
        upto = min(playing) if playing else max(list(self.ticks) + [self.next_tick - 1])
        lines = []
        if self.next_tick <= upto:
            lines += self.header()
        while self.next_tick <= upto:
            lines += self._lines(self.next_tick, self.ticks.pop(self.next_tick, {}))
            self.next_tick += 1
        return lines

    def _lines(self, tick, by_label, late=False):
        t = tick * self.interval
        lines = [] if late else self._banner(t)
        if not any(by_label.values()):
            return lines  # no policy ran in this tick (a run overran its interval)
        depth = max(len(runs) for runs in by_label.values())
        for row in range(depth):
            cells = [by_label[label][row].columns() if len(by_label.get(label, [])) > row else BLANK
                     for label in self.labels]
            lines.append(self._fit(f"{t:>6g}s  " + GAP.join(cells)))
        for label in self.labels:
            for policy_tick in by_label.get(label, []):
                if self.last_key.get(label) != policy_tick.key:
                    self.last_key[label] = policy_tick.key
                    lines += wrap(policy_tick.reason, self.width, " " * REASON_INDENT + f"{label}: ",
                                  " " * (REASON_INDENT + len(label) + 2))
        return lines

    def _banner(self, t):
        """A line naming the phase `t` falls in, when it is not the one shown last."""
        index = next((i for i, p in enumerate(self.phases) if t < p["end"]), len(self.phases) - 1)
        if not self.phases or index == self.phase_shown:
            return []
        self.phase_shown = index
        phase = self.phases[index]
        text = f"── {phase['name']}, {phase['start']:g}–{phase['end']:g} s"
        replicas = phase.get("replicas")
        if replicas:
            text += ": " + ", ".join(f"{name} {count}" for name, count in replicas.items())
        return [self._fit(f"{text} ".ljust(self.row_width, "─"))]

    def _fit(self, line):
        return line if len(line) <= self.width else line[:self.width]


def what_it_did(report, kind, action, replaced):
    """"scale up +3", "scale down -1", and whatever else the run did (terminate, delete_node,
    cordon, evict… as kscaler names them); "" when it did nothing (the column's ·)."""
    verb = {"scale_up": f"scale up +{action.get('count', 0)}",
            "scale_down": f"scale down -{len(action.get('victims') or [])}"}.get(kind)
    parts = [verb] if verb else []
    if replaced:
        parts.append(f"replaced failed boot{'s' if len(replaced) > 1 else ''} {', '.join(replaced)}")
    parts += other_actions(report)
    return ", ".join(parts)


def shown_reasons(reasons):
    """The first reason says what was asked for; the last, when there are more, what held it
    back or what came of it."""
    return reasons[:1] + reasons[-1:] if len(reasons) > 1 else list(reasons)


def why(reasons, errors):
    return "; ".join([r.get("message", "") for r in shown_reasons(reasons)] + list(errors)) or "no reason given"


TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def on_scenario_clock(text, t0):
    """kscaler's timestamps (UTC, ISO 8601) as the view's clock reads them: 2026-12-03T06:55:56Z
    becomes t=33s, seconds since the scenario started at `t0` (epoch seconds). A timestamp in
    whole seconds (EC2's launch times are) stands for that second: read as its middle, so a
    launch in the run at 24 s does not show as 23 s."""
    def relative(match):
        moment = datetime.fromisoformat(match.group(0).replace("Z", "+00:00")).timestamp()
        if match.group(1) is None:
            moment += 0.5
        return f"t={moment - t0:.0f}s"
    return TIMESTAMP.sub(relative, text)


def other_actions(report):
    """The run's actions other than launching and scaling down ("terminate", "evict ×2",
    "cordon (failed)"), in the order kscaler took them."""
    counted = {}
    for action in report.get("actions") or []:
        kind = action.get("kind", "?")
        if kind in ("launch", "drain_start", "terminate_failed_boot"):
            continue
        result = "failed" if action.get("error") else action.get("result", "done")
        key = kind + ("" if result == "done" else f" ({result})")
        counted[key] = counted.get(key, 0) + max(1, len(action.get("instance_ids") or []))
    return [f"{key} ×{n}" if n > 1 else key for key, n in counted.items()]


def pools_summary(decision):
    """Each pool's nodes now -> desired, its pending pods and its market, and the pods no pool
    can take: "pools: general 1 -> 3 (6 pending), batch spot 0 -> 3 (10 pending)"."""
    parts = []
    for pool in decision.get("pools") or []:
        counts = pool.get("counts") or {}
        market = " spot" if pool.get("capacity_type") == "spot" else ""
        pending = f" ({pool.get('pending_pods')} pending)" if pool.get("pending_pods") else ""
        parts.append(f"{pool.get('name')}{market} {counts.get('current', '?')} -> {counts.get('desired', '?')}{pending}")
    unservable = decision.get("unservable_pods") or []
    if unservable:
        parts.append(f"fitting no pool: {', '.join(u.get('pod', '?') for u in unservable)}")
    return "pools: " + ", ".join(parts)


def acted(report, kind):
    """Instance ids of the report's successful actions of `kind`."""
    return [i for a in (report or {}).get("actions", []) if a.get("kind") == kind and not a.get("error")
            for i in a.get("instance_ids", [])]


def render(runs_by_label, phases, interval, width=WIDTH):
    """The whole live view of finished runs ({label: [run records]}), as printed live."""
    view = LiveView(list(runs_by_label), phases, interval, width)
    lines = []
    for label, runs in runs_by_label.items():
        for run in runs:
            lines += view.add(label, run)
        lines += view.finish(label)
    return lines + view.close()
