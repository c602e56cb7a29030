"""The closed-loop burst scenario's assertions (what an operator relies on), shared by the EC2
tests (test_closed_loop.py) and the Proxmox ones (test_closed_loop_proxmox.py): each takes
play()'s result of the burst scenario (quiet 4 s, burst 24 s of 12 batch pods, quiet 36 s)."""
from conftest import BOOT_DELAY, POLICY, TIMINGS, direction_changes, scale_runs

INTERVAL = TIMINGS.interval
# A sample or run lands up to one Prometheus scrape (1 s) and one simulator tick after the
# event it reflects; a little more for two busy cores.
SLACK = 2.0
MIN, MAX = 1, 5
# The burst scenario: its phases and the nodes.min/max it runs with.
BURST_PHASES = [{"name": "quiet", "duration": "4s", "replicas": {"web": 2}},
                {"name": "burst", "duration": "24s", "replicas": {"web": 2, "batch": 12}},
                {"name": "quiet", "duration": "36s", "replicas": {"web": 2}}]
BURST_NODES = {"nodes": {"min": MIN, "max": MAX}}


def seconds(text):
    return float(text.rstrip("s"))


def samples_between(result, start, end):
    return [s for s in result["samples"] if start <= s["t"] < end]


def check_every_pod_is_scheduled_within_two_runs_after_the_boot_delay(burst):
    """The burst's 10 pending pods are all scheduled within the boot delay plus two runs, by one launch of 3."""
    start, end = 4.0, 28.0
    assert max(s["unschedulable"] for s in samples_between(burst, start, start + 1.5)) == 10, \
        "10 of the burst's pods should be pending at first (the scenario did not play)"
    scheduled = next((s["t"] for s in samples_between(burst, start + 0.5, end) if s["unschedulable"] == 0), None)
    limit = BOOT_DELAY + 2 * INTERVAL + SLACK
    assert scheduled is not None, "pods still pending at the end of the burst"
    assert scheduled - start <= limit, (
        f"every pod scheduled {scheduled - start:.1f}s after the burst; expected within the boot delay "
        f"({BOOT_DELAY:g}s) plus two runs ({2 * INTERVAL:g}s) plus {SLACK:g}s of scrape lag")
    ups = [u for u in scale_runs(burst) if start <= u[0] < scheduled]
    assert len(ups) == 1 and len(ups[0][2]) == 3, f"one run should launch the 3 nodes the burst needs, got {ups}"


def check_never_more_than_max_nor_more_than_one_node_over_the_demand(burst):
    during = samples_between(burst, 0, 64)
    peak = max(s["instances"] for s in during)
    needed = max(s["needed"] for s in during)
    assert needed == 4
    assert peak <= MAX, f"{peak} nodes, above max {MAX}"
    assert peak <= needed + 1, f"peak {peak} nodes for a demand of {needed}: more than one node over"


def check_back_to_min_after_the_load_is_gone_and_the_window_passed(burst):
    burst_end = 28.0
    ups = [t for t, direction, _ in scale_runs(burst) if direction == "up"]
    window = seconds(POLICY["scale_down"]["stabilization_window"])
    delay = seconds(POLICY["scale_down"]["delay_after_scale_up"])
    # One node per cooldown; a cooldown that is a whole number of intervals can cost one run
    # more, as its stamp is the moment of the action, later in its run than the next decisions.
    step = max(seconds(POLICY["scale_down"]["cooldown"]), INTERVAL) + INTERVAL
    after = samples_between(burst, burst_end, 64)
    peak = max(s["instances"] for s in after)
    # kscaler may start once the window has only low samples and the delay after the last
    # scale-up is over, then removes one node per cooldown.
    deadline = max(burst_end + window, max(ups) + delay) + (peak - MIN) * step + 2 * INTERVAL + SLACK
    at_min = next((s["t"] for i, s in enumerate(after) if all(x["instances"] == MIN for x in after[i:])), None)
    assert at_min is not None, f"still {after[-1]['instances']} nodes at the end, min is {MIN}"
    assert at_min <= deadline, f"back at min {MIN} only at {at_min:.1f}s; expected by {deadline:.1f}s"
    assert all(s["instances"] >= MIN for s in burst["samples"] if s["t"] >= 0), "went below min"


def check_no_up_down_up_and_cooldowns_hold(burst):
    actions = scale_runs(burst)
    assert actions and actions[0][1] == "up" and direction_changes(actions) == 1, f"expected ups then downs, got {actions}"
    delay = seconds(POLICY["scale_down"]["delay_after_scale_up"])
    cooldown = seconds(POLICY["scale_down"]["cooldown"])
    last_up = max(t for t, d, _ in actions if d == "up")
    downs = [t for t, d, _ in actions if d == "down"]
    # Run start times are taken by the driver a few milliseconds before kscaler reads its clock.
    assert downs[0] - last_up >= delay - 0.5, f"scale-down {downs[0] - last_up:.1f}s after a scale-up, delay is {delay:g}s"
    gaps = [b - a for a, b in zip(downs, downs[1:])]
    assert all(g >= cooldown - 0.5 for g in gaps), f"scale-downs {gaps} apart, cooldown is {cooldown:g}s"


def check_no_ghost_node_left_and_the_health_gate_never_tripped(result):
    """Each run that terminated an instance deleted its Node (in that run), the health gate never
    halted a run, and no ghost Node is left at the end."""
    for run in result["runs"]:
        report = run["report"] or {}
        decision = report.get("decision") or {}
        assert decision.get("halt") != "cluster_unhealthy", f"the health gate tripped at {run['t']:.1f}s: {decision.get('reasons')}"
        actions = report.get("actions", [])
        terminated = {i for a in actions if a["kind"] in ("terminate", "terminate_failed_boot") and a["result"] == "done"
                      for i in a["instance_ids"]}
        deleted = {i for a in actions if a["kind"] == "delete_node" and a["result"] == "done" for i in a["instance_ids"]}
        assert terminated <= deleted, f"run at {run['t']:.1f}s terminated {sorted(terminated)} but deleted the Nodes of {sorted(deleted)}"
    lives = {i["instance_id"]: i for i in result["instances"]}
    for run in result["runs"]:
        for action in (run["report"] or {}).get("actions", []):
            if action["kind"] != "terminate" or action["result"] != "done":
                continue
            for instance_id in action["instance_ids"]:
                deleted = lives[instance_id]["node_deleted_at"]
                assert deleted is not None, f"the Node of {instance_id} (terminated at {run['t']:.1f}s) was never deleted"
                assert deleted <= run["t_end"] + 0.5, \
                    f"the Node of {instance_id} was deleted at {deleted:.1f}s, after the run that terminated it ({run['t']:.1f}–{run['t_end']:.1f}s)"
    assert result["samples"][-1]["ghosts"] == 0, f"ghost Nodes left at the end: {result['samples'][-1]}"
