"""The summary of sandbox results: the figures, a Markdown table side by side, and an SVG
chart drawn by hand (nodes, ready nodes, unschedulable pods and demand over time; cordoned and
draining nodes; each PodDisruptionBudget-protected workload's Ready pods against its
minAvailable)."""
from dataclasses import dataclass
from html import escape


@dataclass
class Summary:
    label: str
    runs: int                       # runs that held the lease (skipped ones not counted)
    burst_phase: str
    burst_start: float
    burst_end: float
    seconds_to_schedule: float | None   # from the burst's start until no pod a pool can take is unschedulable
    runs_to_schedule: int | None        # runs started in that time
    pending_at_burst_end: int
    peak_nodes: int
    peak_needed: int
    node_seconds: float
    needed_node_seconds: float
    direction_changes: int
    back_to_min_after: float | None     # from the load's drop until the fleet is at min for good
    min_nodes: int
    max_nodes: int
    # Drains: samples showing a node with kscaler's to-be-deleted taint, the most at once, and
    # non-DaemonSet pods still bound to a node when its instance went (0 when each was drained).
    draining_seen: int = 0
    most_draining: int = 0
    pods_lost_at_termination: int = 0
    evictions: int = 0
    # Per PDB-protected workload: (fewest Ready pods once minAvailable was first reached,
    # minAvailable then, samples below it).
    budgets: dict = None
    # With node pools: instances launched per pool during the scenario, and the most pods seen
    # pending that no pool could take.
    launches_by_pool: dict = None
    unservable: int = 0

    @property
    def overshoot(self):
        return self.peak_nodes - self.peak_needed


def scale_actions(result):
    """(t, +1 | -1, instance ids) for every run that launched or terminated for scaling
    (failed-boot replacements are repairs, not scaling, and are left out)."""
    actions = []
    for run in result["runs"]:
        report = run.get("report") or {}
        for action in report.get("actions", []):
            if action.get("error") or not action.get("instance_ids"):
                continue
            if action["kind"] == "launch":
                actions.append((run["t"], +1, action["instance_ids"]))
            elif action["kind"] == "terminate":
                actions.append((run["t"], -1, action["instance_ids"]))
    return actions


def direction_changes(actions):
    directions = [d for _, d, _ in actions]
    return sum(1 for a, b in zip(directions, directions[1:]) if a != b)


def burst_phase(result):
    """The phase with the highest demand in nodes (the first, on a tie)."""
    best = None
    for phase in result["phases"]:
        needed = max((s["needed"] for s in result["samples"] if phase["start"] <= s["t"] < phase["end"]), default=0)
        if best is None or needed > best[1]:
            best = (phase, needed)
    return best[0]


def summarize(result):
    samples = [s for s in result["samples"] if s["t"] >= 0]
    duration = result["phases"][-1]["end"]
    burst = burst_phase(result)
    in_burst = [s for s in samples if burst["start"] <= s["t"] < burst["end"]]
    scheduled = next((s for s in in_burst if servable_pending(s) == 0), None)
    lease_runs = [r for r in result["runs"] if (r.get("report") or {}).get("outcome") != "skipped"]
    seconds = runs = None
    if scheduled is not None:
        seconds = max(0.0, scheduled["t"] - burst["start"])
        runs = sum(1 for r in lease_runs if burst["start"] <= r["t"] <= scheduled["t"])

    node_seconds = needed_seconds = 0.0
    for a, b in zip(samples, samples[1:]):
        if a["t"] >= duration:
            break
        span = min(b["t"], duration) - a["t"]
        node_seconds += a["instances"] * span
        needed_seconds += a["needed"] * span

    nodes = result["config"].get("nodes", {})
    pools = result["config"].get("pools") or {}
    min_nodes = sum(int(p.get("min", 0)) for p in pools.values()) if pools else int(nodes.get("min", 1))
    max_nodes = int(nodes.get("max", 10))
    launches = None
    if pools:
        launches = {name: 0 for name in pools}
        for life in result["instances"]:
            if not life.get("initial") and 0 <= life["seen_at"] <= duration:
                launches[life.get("pool") or "?"] = launches.get(life.get("pool") or "?", 0) + 1
    after = [s for s in samples if s["t"] >= burst["end"]]
    back = None
    for i, s in enumerate(after):
        if all(x["instances"] <= min_nodes for x in after[i:]):
            back = s["t"] - burst["end"]
            break
    budgets = {}
    for name in sorted({w for s in samples for w in s.get("pdbs") or {}}):
        series = [s["pdbs"][name] for s in samples if name in (s.get("pdbs") or {})]
        first = next((i for i, b in enumerate(series) if b["ready"] >= b["min_available"]), None)
        if first is None:
            budgets[name] = (None, series[-1]["min_available"], 0)
        else:
            later = series[first:]
            budgets[name] = (min(b["ready"] for b in later), series[first]["min_available"],
                             sum(1 for b in later if b["ready"] < b["min_available"]))
    return Summary(
        label=result["label"], runs=len(lease_runs), burst_phase=burst["name"], burst_start=burst["start"], burst_end=burst["end"],
        seconds_to_schedule=seconds, runs_to_schedule=runs,
        pending_at_burst_end=servable_pending(in_burst[-1]) if in_burst else 0,
        peak_nodes=max(s["instances"] for s in samples), peak_needed=max(s["needed"] for s in samples),
        node_seconds=node_seconds, needed_node_seconds=needed_seconds,
        direction_changes=direction_changes(scale_actions(result)), back_to_min_after=back,
        min_nodes=min_nodes, max_nodes=max_nodes,
        draining_seen=sum(1 for s in samples if s.get("draining", 0) > 0),
        most_draining=max((s.get("draining", 0) for s in samples), default=0),
        pods_lost_at_termination=sum(i.get("pods_at_termination") or 0 for i in result["instances"]),
        evictions=len(result.get("evictions") or []), budgets=budgets, launches_by_pool=launches,
        unservable=max((s.get("unservable", 0) for s in samples), default=0))


def servable_pending(sample):
    """Pending pods that some pool's nodes could take (all of them without pools)."""
    return sample["unschedulable"] - sample.get("unservable", 0)


def markdown_table(summaries, descriptions):
    """Side by side, one column per policy. `descriptions` maps a label to its one-line policy."""
    def scheduled(s):
        if s.seconds_to_schedule is None:
            return f"not within the burst ({s.pending_at_burst_end} pods still pending at its end)", "—"
        return f"{s.seconds_to_schedule:.1f} s", str(s.runs_to_schedule)

    def back(s):
        return (f"{s.back_to_min_after:.1f} s" if s.back_to_min_after is not None
                else "not within the scenario")

    rows = [
        ("policy", [descriptions.get(s.label, s.label) for s in summaries]),
        ("seconds until every pod is scheduled (from the burst's start)", [scheduled(s)[0] for s in summaries]),
        ("runs until every pod is scheduled", [scheduled(s)[1] for s in summaries]),
        ("peak nodes / nodes really needed (overshoot)",
         [f"{s.peak_nodes} / {s.peak_needed} ({s.overshoot:+d})" for s in summaries]),
        ("node-seconds used (ideal: demand exactly met)",
         [f"{s.node_seconds:.0f} ({s.needed_node_seconds:.0f})" for s in summaries]),
        ("scale direction changes (flaps; 1 is ideal here)", [str(s.direction_changes) for s in summaries]),
        ("back to min after the load went", [back(s) for s in summaries]),
        ("runs (lease held)", [str(s.runs) for s in summaries]),
        ("drains: most nodes draining at once / pods evicted",
         [f"{s.most_draining} / {s.evictions}" for s in summaries]),
        ("pods still on a node when its instance was terminated (0 after a drain)",
         [str(s.pods_lost_at_termination) for s in summaries]),
    ]
    if any(s.launches_by_pool for s in summaries):
        rows.append(("instances launched per pool",
                     [", ".join(f"{pool} {n}" for pool, n in (s.launches_by_pool or {}).items()) or "—" for s in summaries]))
        rows.append(("pods no pool can take (pending throughout; not counted above)", [str(s.unservable) for s in summaries]))
    for name in sorted({n for s in summaries for n in s.budgets or {}}):
        def budget(s, name=name):
            if name not in (s.budgets or {}):
                return "—"
            fewest, minimum, below = s.budgets[name]
            if fewest is None:
                return f"never reached minAvailable {minimum}"
            return f"{fewest} / {minimum}" + (f" (below it in {below} samples)" if below else "")
        rows.append((f"{name}: fewest Ready pods once minAvailable was reached / minAvailable (PDB)",
                     [budget(s) for s in summaries]))
    header = "| | " + " | ".join(s.label for s in summaries) + " |"
    lines = [header, "|---|" + "---|" * len(summaries)]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return "\n".join(lines) + "\n"


# MARK: chart

SERIES = (  # sample key, legend, colour, dash pattern ("" solid)
    ("instances", "nodes (managed instances)", "#1f77b4", ""),
    ("ready", "ready nodes", "#2ca02c", ""),
    ("needed", "demand (nodes needed)", "#7f7f7f", "6 4"),
    ("unschedulable", "unschedulable pods", "#d62728", ""),
    ("cordoned", "cordoned nodes", "#ff7f0e", "2 3"),
    ("draining", "draining (kscaler.io/to-be-deleted)", "#ff7f0e", ""),
)
BUDGET_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#17becf")


def chart_series(results):
    """(value of a sample, legend, colour, dash) for every line: the fixed ones, then each
    PDB-protected workload's Ready pods and minAvailable."""
    series = [((lambda s, key=key: s.get(key, 0)), legend, colour, dash) for key, legend, colour, dash in SERIES]
    names = sorted({w for r in results for s in r["samples"] for w in s.get("pdbs") or {}})
    for name, colour in zip(names, BUDGET_COLOURS * 4):
        series.append(((lambda s, name=name: (s.get("pdbs") or {}).get(name, {}).get("ready", 0)),
                       f"{name} Ready pods", colour, ""))
        series.append(((lambda s, name=name: (s.get("pdbs") or {}).get(name, {}).get("min_available", 0)),
                       f"{name} minAvailable (PDB)", colour, "6 4"))
    return series


def svg_chart(results, width=960, panel_height=260):
    """One panel per result, stacked, with a shared legend."""
    margin_left, margin_right, margin_top, gap = 48, 16, 28, 46
    series = chart_series(results)
    # The legend wraps: as many entries a line as fit.
    entries, x, y = [], margin_left, 14
    for _, legend, colour, dash in series + [(None, "▲ scale-up  ▼ scale-down", None, "")]:
        w = (40 if colour else 0) + 7 * len(legend)
        if x + w > width - margin_right and x > margin_left:
            x, y = margin_left, y + 20
        entries.append((x, y, legend, colour, dash))
        x += w
    legend_height = y + 14
    height = legend_height + len(results) * (panel_height + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    for x, y, legend, colour, dash in entries:
        if colour is None:
            parts.append(f'<text x="{x}" y="{y + 4}">{escape(legend)}</text>')
            continue
        dash = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{colour}" stroke-width="2.5"{dash}/>')
        parts.append(f'<text x="{x + 30}" y="{y + 4}">{escape(legend)}</text>')

    for index, result in enumerate(results):
        top = legend_height + index * (panel_height + gap) + margin_top
        plot_w, plot_h = width - margin_left - margin_right, panel_height - margin_top
        duration = result["phases"][-1]["end"]
        samples = [s for s in result["samples"] if 0 <= s["t"] <= duration]
        y_max = int(max([1] + [value(s) for s in samples for value, *_ in series])) + 1

        def px(t):
            return margin_left + plot_w * t / duration

        def py(v):
            return top + plot_h - plot_h * v / y_max

        parts.append(f'<text x="{margin_left}" y="{top - 8}" font-size="14" font-weight="bold">{escape(result["label"])}</text>')
        for n, phase in enumerate(result["phases"]):
            fill = "#f3f3f3" if n % 2 == 0 else "#fafafa"
            parts.append(f'<rect x="{px(phase["start"]):.1f}" y="{top}" width="{px(phase["end"]) - px(phase["start"]):.1f}" '
                         f'height="{plot_h}" fill="{fill}"/>')
            parts.append(f'<text x="{px(phase["start"]) + 4:.1f}" y="{top + 14}" fill="#666">{escape(phase["name"])}</text>')
        step = max(1, round(y_max / 6))
        for v in range(0, y_max + 1, step):
            parts.append(f'<line x1="{margin_left}" y1="{py(v):.1f}" x2="{margin_left + plot_w}" y2="{py(v):.1f}" stroke="#ddd"/>')
            parts.append(f'<text x="{margin_left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v}</text>')
        tick = 10 if duration <= 150 else 30
        for t in range(0, int(duration) + 1, tick):
            parts.append(f'<text x="{px(t):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{t}s</text>')
        parts.append(f'<rect x="{margin_left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
        for value, _, colour, dash in series:
            points = []
            for a, b in zip(samples, samples[1:] + samples[-1:]):
                points.append(f"{px(a['t']):.1f},{py(value(a)):.1f}")
                points.append(f"{px(b['t']):.1f},{py(value(a)):.1f}")
            dash = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for t, direction, ids in scale_actions(result):
            if 0 <= t <= duration:
                mark, colour, y = ("▲", "#2ca02c", top + 28) if direction > 0 else ("▼", "#d62728", top + 28)
                parts.append(f'<text x="{px(t):.1f}" y="{y}" text-anchor="middle" fill="{colour}">'
                             f'{mark}<title>{t:.1f}s: {"launched" if direction > 0 else "terminated"} {escape(", ".join(ids))}</title></text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
