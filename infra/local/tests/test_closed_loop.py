"""kscaler in a closed loop with the simulated cluster: what an operator must be able to rely on."""
import pytest

from closed_loop_checks import (BURST_NODES, BURST_PHASES, INTERVAL, MAX, MIN, SLACK,
                                check_back_to_min_after_the_load_is_gone_and_the_window_passed,
                                check_every_pod_is_scheduled_within_two_runs_after_the_boot_delay,
                                check_never_more_than_max_nor_more_than_one_node_over_the_demand,
                                check_no_ghost_node_left_and_the_health_gate_never_tripped,
                                check_no_up_down_up_and_cooldowns_hold, seconds)
from conftest import POLICY, play, scale_runs, scenario


# MARK: quiet, burst, quiet

@pytest.fixture(scope="module")
def burst(module_tmp):
    """min 1, max 5; the burst needs 4 nodes: node 1 takes 2 of its 12 pods of 0.5 cores, 10 pend (3 nodes more)."""
    return play(module_tmp, "burst", scenario(BURST_PHASES), BURST_NODES)


def test_every_pod_is_scheduled_within_two_runs_after_the_boot_delay(burst):
    check_every_pod_is_scheduled_within_two_runs_after_the_boot_delay(burst)


def test_never_more_than_max_nor_more_than_one_node_over_the_demand(burst):
    check_never_more_than_max_nor_more_than_one_node_over_the_demand(burst)


def test_back_to_min_after_the_load_is_gone_and_the_window_passed(burst):
    check_back_to_min_after_the_load_is_gone_and_the_window_passed(burst)


def test_no_up_down_up_and_cooldowns_hold(burst):
    check_no_up_down_up_and_cooldowns_hold(burst)


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
    check_no_ghost_node_left_and_the_health_gate_never_tripped(result)
