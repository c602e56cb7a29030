"""kscaler in a closed loop with the simulated cluster: what an operator must be able to rely on."""
import pytest

from conftest import BOOT_DELAY, POLICY, TIMINGS, direction_changes, play, scale_runs, scenario

INTERVAL = TIMINGS.interval
# A sample or run lands up to one Prometheus scrape (1 s) and one simulator tick after the
# event it reflects; a little more for two busy cores.
SLACK = 2.0
MIN, MAX = 1, 5


def seconds(text):
    return float(text.rstrip("s"))


def samples_between(result, start, end):
    return [s for s in result["samples"] if start <= s["t"] < end]


# MARK: quiet, burst, quiet

@pytest.fixture(scope="module")
def burst(module_tmp):
    """min 1, max 5; the burst needs 4 nodes: node 1 takes 2 of its 12 pods of 0.5 cores, 10 pend (3 nodes more)."""
    phases = [{"name": "quiet", "duration": "4s", "replicas": {"web": 2}},
              {"name": "burst", "duration": "24s", "replicas": {"web": 2, "batch": 12}},
              {"name": "quiet", "duration": "36s", "replicas": {"web": 2}}]
    return play(module_tmp, "burst", scenario(phases), {"nodes": {"min": MIN, "max": MAX}})


def test_every_pod_is_scheduled_within_two_runs_after_the_boot_delay(burst):
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


def test_never_more_than_max_nor_more_than_one_node_over_the_demand(burst):
    during = samples_between(burst, 0, 64)
    peak = max(s["instances"] for s in during)
    needed = max(s["needed"] for s in during)
    assert needed == 4
    assert peak <= MAX, f"{peak} nodes, above max {MAX}"
    assert peak <= needed + 1, f"peak {peak} nodes for a demand of {needed}: more than one node over"


def test_back_to_min_after_the_load_is_gone_and_the_window_passed(burst):
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


def test_no_up_down_up_and_cooldowns_hold(burst):
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


# MARK: failed boot

def test_a_node_that_never_turns_ready_is_terminated_after_the_provision_timeout_and_replaced(tmp_path):
    # One more 1-core pod than node 1 holds; every other launch never boots (the first does not).
    phases = [{"name": "quiet", "duration": "2s", "replicas": {"web": 2}},
              {"name": "burst", "duration": "28s", "replicas": {"web": 2, "batch": 2}}]
    workloads = {"web": {"cpu": 0.5, "memory": "1Gi"}, "batch": {"cpu": 1, "memory": "1Gi", "kind": "Job"}}
    result = play(tmp_path, "failed-boot", scenario(phases, workloads, never_ready_share=0.5), {"nodes": {"min": 1, "max": 2}})
    timeout = seconds(POLICY["provision_timeout"])
    never = [i for i in result["instances"] if i["never_ready"]]
    assert len(never) == 1, f"expected exactly one failed boot, the simulator saw {result['instances']}"
    failed = never[0]
    repairs = [r for r in result["runs"] if failed["instance_id"] in _acted(r, "terminate_failed_boot")]
    assert len(repairs) == 1, f"{failed['instance_id']} should be terminated as a failed boot once, runs: {repairs}"
    repair = repairs[0]
    waited = repair["t"] - failed["seen_at"]
    assert timeout - 1 <= waited <= timeout + INTERVAL + SLACK, \
        f"terminated {waited:.1f}s after launch; provision timeout is {timeout:g}s"
    assert any(r["code"] == "failed_boot" for r in repair["report"]["decision"]["reasons"])
    replacement = _acted(repair, "launch")
    assert len(replacement) == 1, f"the repairing run should launch one replacement, launched {replacement}"
    replaced = next(i for i in result["instances"] if i["instance_id"] == replacement[0])
    assert replaced["ready_at"] is not None and not replaced["never_ready"]
    final = result["samples"][-1]
    assert final["unschedulable"] == 0 and final["ready"] == 2, f"at the end: {final}"


def _acted(run, kind):
    return [i for a in (run["report"] or {}).get("actions", []) if a["kind"] == kind and not a.get("error")
            for i in a["instance_ids"]]


# MARK: two schedulers, one table

def test_two_concurrent_loops_on_one_table_never_act_twice_for_the_same_need(tmp_path):
    phases = [{"name": "quiet", "duration": "2s", "replicas": {"web": 2}},
              {"name": "burst", "duration": "22s", "replicas": {"web": 2, "batch": 12}}]
    result = play(tmp_path, "two-loops", scenario(phases), {"nodes": {"min": 1, "max": 8}}, loops=2)
    runs = result["runs"]
    skipped = [r for r in runs if r["report"] and r["report"]["outcome"] == "skipped"]
    held = [r for r in runs if r["report"] and r["report"]["outcome"] != "skipped" and r["report"].get("lease")]
    assert {r["loop"] for r in runs} == {"two-loops-a", "two-loops-b"}
    assert skipped, "the two loops never met at the lease: the test did not test anything"
    tokens = [r["report"]["lease"]["token"] for r in held]
    assert len(tokens) == len(set(tokens)), f"a fencing token was handed out twice: {sorted(tokens)}"
    launched = [i for r in held for i in _acted(r, "launch")]
    needed = max(s["needed"] for s in result["samples"])
    assert needed == 4
    # 3 nodes for the pending pods, at most 1 more as headroom; twice the need would be 6+.
    assert len(launched) <= needed - 1 + 1, f"launched {len(launched)} instances for a need of {needed - 1} more nodes: {launched}"
    assert max(s["instances"] for s in result["samples"]) <= needed + 1
    assert result["samples"][-1]["unschedulable"] == 0


# MARK: Node objects: no ghosts

def test_three_bursts_leave_no_ghost_node_and_never_trip_the_health_gate(tmp_path):
    """The simulated cluster keeps a terminated instance's Node object, NotReady, as k3s without
    a cloud controller does; kscaler deletes each one through the API in the run that terminated
    its instance, so the health gate never sees a ghost and none is left at the end."""
    quiet, burst = {"web": 2}, {"web": 2, "batch": 8}
    phases = [{"name": "quiet", "duration": "4s", "replicas": quiet}]
    for cycle in range(3):
        phases += [{"name": f"burst-{cycle + 1}", "duration": "12s", "replicas": burst},
                   {"name": f"quiet-{cycle + 1}", "duration": "22s" if cycle < 2 else "28s", "replicas": quiet}]
    result = play(tmp_path, "ghosts", scenario(phases), {"nodes": {"min": MIN, "max": MAX}})
    downs = [(t, ids) for t, direction, ids in scale_runs(result) if direction == "down"]
    assert len(downs) >= 3, f"expected a scale-down after each burst, got {downs}: the test did not test anything"
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
