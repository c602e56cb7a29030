"""Safe scale-down in a closed loop: a surplus node is drained before its instance goes.

The cluster and workloads are scenarios/pdb-bursts.toml's (web: 3 replicas with a
PodDisruptionBudget minAvailable 2, Ready 8 s after binding; batch jobs of 0.8 cores), the
phases shortened: the jobs and web arrive together, so web's pods spread one per node over the
nodes the burst brings; once the jobs are done those nodes are surplus and every one of them
carries a web pod. kscaler must cordon and taint each (kscaler.io/to-be-deleted), evict its
pods through the Eviction API (the stand-in answers 429 while the budget allows no disruption,
i.e. until the previous replacement is Ready) and terminate the instance only once nothing but
its DaemonSet pod is left.

A kscaler that terminates a victim at once fails here: its web pod is lost with the node
(pods_at_termination > 0), Ready web pods drop below minAvailable, and no drain is ever seen.
"""
import tomllib
from pathlib import Path

import pytest

from conftest import BOOT_DELAY, direction_changes, play, scale_runs
from ksandbox.scenario import parse

SCENARIO_FILE = Path(__file__).resolve().parents[1] / "scenarios/pdb-bursts.toml"
MIN, MAX = 1, 5
BURST_START, BURST_END = 4.0, 24.0


def drain_scenario():
    data = tomllib.loads(SCENARIO_FILE.read_text())
    data["cluster"]["boot_delay"] = f"{BOOT_DELAY:g}s"
    data["phases"] = [{"name": "empty", "duration": "4s", "replicas": {}},
                      {"name": "burst", "duration": "20s", "replicas": {"web": 3, "batch": 6}},
                      {"name": "quiet", "duration": "60s", "replicas": {"web": 3}}]
    return parse(data, str(SCENARIO_FILE))


@pytest.fixture(scope="module")
def drained(module_tmp):
    return play(module_tmp, "drain", drain_scenario(), {"nodes": {"min": MIN, "max": MAX}})


def describe(sample):
    budget = sample["pdbs"].get("web", {})
    return (f"sample at {sample['t']:.2f}s ({sample['phase']}): web Ready {budget.get('ready')}/minAvailable "
            f"{budget.get('min_available')}, {sample['instances']} instances, {sample['cordoned']} cordoned, "
            f"{sample['draining']} draining, {sample['unschedulable']} unschedulable pods")


def test_ready_web_pods_never_drop_below_the_budget_once_reached(drained):
    samples = drained["samples"]
    first = next((i for i, s in enumerate(samples) if s["pdbs"]["web"]["ready"] >= s["pdbs"]["web"]["min_available"]), None)
    assert first is not None, "web never had minAvailable Ready pods: the scenario did not play"
    for sample in samples[first:]:
        budget = sample["pdbs"]["web"]
        assert budget["ready"] >= budget["min_available"], (
            f"the PodDisruptionBudget was broken: {describe(sample)}; web first had "
            f"{budget['min_available']} Ready pods at {samples[first]['t']:.2f}s")


def test_no_instance_is_terminated_while_a_pod_is_still_bound_to_its_node(drained):
    terminated = [i for i in drained["instances"] if i["gone_at"] is not None]
    assert terminated, "no instance was terminated: the test did not test anything"
    for life in terminated:
        assert life["pods_at_termination"] == 0, (
            f"{life['instance_id']} went at {life['gone_at']:.2f}s with {life['pods_at_termination']} non-DaemonSet "
            "pod(s) still bound to its node: it was not drained first")


def test_surplus_nodes_are_cordoned_tainted_and_their_web_pods_evicted(drained):
    drains = [s for s in drained["samples"] if s["draining"] > 0]
    assert drains, ("no node was ever tainted kscaler.io/to-be-deleted (most cordoned at once: "
                    f"{max(s['cordoned'] for s in drained['samples'])}): kscaler scaled down without draining")
    assert any(s["cordoned"] > 0 for s in drains), "a node was tainted for deletion but never cordoned"
    web = [e for e in drained["evictions"] if e["workload"] == "web"]
    assert web, "no web pod was evicted: every surplus node carried one, so none was drained"


def test_back_to_min_after_the_load_without_flapping(drained):
    end = drained["phases"][-1]["end"]
    after = [s for s in drained["samples"] if BURST_END <= s["t"] <= end]
    at_min = next((s["t"] for i, s in enumerate(after) if all(x["instances"] == MIN for x in after[i:])), None)
    assert at_min is not None, f"still {after[-1]['instances']} instances at the end, min is {MIN}: {describe(after[-1])}"
    assert at_min <= end - 2, f"back at min only at {at_min:.1f}s, the scenario ends at {end:g}s"
    final = drained["samples"][-1]
    assert final["unschedulable"] == 0 and final["ghosts"] == 0 and final["cordoned"] == 0, describe(final)
    actions = scale_runs(drained)
    assert actions and actions[0][1] == "up" and direction_changes(actions) == 1, \
        f"expected scale-ups, then scale-downs, once; got {actions}"
    assert max(s["instances"] for s in drained["samples"]) <= MAX
