"""Node pools in a closed loop: each pool grows for its own pods, in one run.

The cluster, workloads and pools are scenarios/two-pools.toml's and configs/pools.yaml's: an
on-demand `general` pool (t3.large, label workload=general, min 1) and a Spot `batch` pool
(c5.xlarge, label workload=batch, taint dedicated=batch:NoSchedule, min 0). After a quiet
start (2 web pods on general's first node), a burst brings 10 web pods (nodeSelector
workload=general), 10 batch jobs (nodeSelector workload=batch, tolerating the taint) and 2 gpu
pods (nodeSelector gpu=true, which no pool's nodes carry).

The first run that acts must size each pool from the pods routed to it alone: general for the
web pods its first node cannot hold, batch for the jobs, at the pool's own instance size; it
must launch the batch nodes as Spot, tag every instance with its pool, report the gpu pods by
name as fitting no pool and launch nothing for them. The loop then runs until every other pod
is scheduled, each on a node of the pool it targets, while the gpu pods stay pending.

A kscaler that ignores the pods' constraints sizes one pool for everything (or the gpu pods
too); one that launches batch nodes on-demand, or without their pool tag, fails here too (the
simulated batch nodes register with the taint only when the instance carries kscaler:pool=batch,
so untagged nodes never take a job).
"""
import json
import math
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from conftest import BOOT_DELAY, POLICY, TIMINGS, kscaler_binary
from ksandbox.peers import PeerError
from ksandbox.sandbox import Sandbox, deep_merge
from ksandbox.scenario import parse

LOCAL = Path(__file__).resolve().parents[1]
SCENARIO_FILE = LOCAL / "scenarios/two-pools.toml"
POOLS_CONFIG = LOCAL / "configs/pools.yaml"
INTERVAL = TIMINGS.interval
QUIET = 6.0
# The bound on the whole burst: converging takes one run, the boot delay and a few runs on an
# idle machine (about 10 s); this is for a loaded 2-core CI box. The scenario stops 3 runs after
# every pod a pool can take is scheduled, so this is only spent on failure.
BURST = 120.0
SETTLE = 3 * INTERVAL
# A sample or run lands up to one Prometheus scrape (1 s) and one simulator tick after the
# event it reflects; more on two busy cores.
SLACK = 2.0
TARGETS = {"web": "general", "batch": "batch"}


def pools_scenario():
    data = tomllib.loads(SCENARIO_FILE.read_text())
    data["cluster"]["boot_delay"] = f"{BOOT_DELAY:g}s"
    burst = next(p for p in data["phases"] if p["name"] == "burst")["replicas"]
    data["phases"] = [{"name": "quiet", "duration": f"{QUIET:g}s", "replicas": data["phases"][0]["replicas"]},
                      {"name": "burst", "duration": f"{BURST:g}s", "replicas": burst}]
    return parse(data, str(SCENARIO_FILE))


def converged(sample):
    """Every pod a pool can take is scheduled, and the burst's pods all exist."""
    return sample.phase == "burst" and sample.unschedulable == sample.unservable and sample.pods > 2


@pytest.fixture(scope="module")
def pools(module_tmp):
    """The scenario played once; returns (result as plain data, scenario, config)."""
    scenario = pools_scenario()
    # The pools config with the closed-loop tests' periods (the pools' own settings untouched).
    config = deep_merge(yaml.safe_load(POOLS_CONFIG.read_text()), POLICY)
    path = module_tmp / "pools.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        with Sandbox("pools", scenario, path, module_tmp / "pools", kscaler_binary(), TIMINGS, printer=print) as sandbox:
            result = asdict(sandbox.run_scenario(until=converged, settle=SETTLE))
    except PeerError as error:
        pytest.fail(str(error), pytrace=False)
    saved = module_tmp / "pools" / "result.json"
    saved.write_text(json.dumps(result, indent=1))
    print(f"result (samples, instances, runs): {saved}")
    assert not result["cluster_errors"], f"the simulator failed: {result['cluster_errors']}"
    return result, scenario, config


def launches(run):
    """{pool: instance ids} this run launched, by the pool its report names."""
    out = {}
    for action in (run["report"] or {}).get("actions", []):
        if action["kind"] == "launch" and not action.get("error") and action.get("instance_ids"):
            out.setdefault(action.get("pool"), []).extend(action["instance_ids"])
    return out


def expected_launches(scenario, config):
    """Nodes each pool needs for its pods of the burst, from their requests and the pool's
    size: general's first node keeps the web pods it already holds and takes more up to its
    allocatable; the rest, and every batch job, need new nodes of their pool's type."""
    burst = next(p for p in scenario.phases if p.name == "burst").replicas
    out = {}
    for workload, pool in TARGETS.items():
        spec = config["pools"][pool]
        size = scenario.instance_sizes[spec["instance_types"][0]]
        w = scenario.workloads[workload]
        on_first_nodes = spec["min"] * min(math.floor(size.cpu / w.cpu + 1e-9), math.floor(size.memory / w.memory + 1e-9))
        pending = max(0, burst[workload] - on_first_nodes)
        out[pool] = (pending, max(math.ceil(pending * w.cpu / size.cpu - 1e-9), math.ceil(pending * w.memory / size.memory - 1e-9)))
    return out


def acting_runs(result):
    return [r for r in result["runs"] if r["t"] >= QUIET and launches(r)]


def test_one_run_grows_each_pool_by_what_its_own_pods_need(pools):
    result, scenario, config = pools
    expected = expected_launches(scenario, config)
    assert expected == {"general": (6, 2), "batch": (10, 3)}, "the scenario changed: recheck the figures below"
    before = [r for r in result["runs"] if r["t"] < QUIET and launches(r)]
    assert not before, f"launched before the burst: {[launches(r) for r in before]}"
    acting = acting_runs(result)
    assert acting, "no run launched anything after the burst"
    first = acting[0]
    launched = launches(first)
    assert {pool: len(ids) for pool, ids in launched.items()} == {pool: count for pool, (_, count) in expected.items()}, (
        f"the run at {first['t']:.1f}s launched {launched}; each pool should grow by what its own pods need: "
        f"{expected} (pods pending, nodes)")
    assert first["t"] - QUIET <= 3 * INTERVAL + SLACK, f"the burst started at {QUIET:g}s, the first launch only at {first['t']:.1f}s"
    later = [(r["t"], launches(r)) for r in acting[1:]]
    assert not later, f"the run at {first['t']:.1f}s should have launched everything the burst needs; later runs launched {later}"
    decision = first["report"]["decision"]
    outcomes = {p["name"]: p for p in decision["pools"]}
    for pool, (pending, count) in expected.items():
        assert outcomes[pool]["action"] == {"type": "scale_up", "count": count}, outcomes[pool]
        assert outcomes[pool]["pending_pods"] == pending, \
            f"pool {pool} was routed {outcomes[pool]['pending_pods']} pending pods, its own are {pending}"


def test_batch_nodes_are_spot_and_every_instance_carries_its_pools_tag(pools):
    result, _, _ = pools
    first = acting_runs(result)[0]
    lives = {i["instance_id"]: i for i in result["instances"]}
    for action in first["report"]["actions"]:
        if action["kind"] != "launch":
            continue
        for instance_id in action["instance_ids"]:
            life = lives.get(instance_id)
            assert life is not None, f"{instance_id} (launched for {action['pool']}) never showed up in EC2"
            assert life["pool"] == action["pool"], f"{instance_id} is tagged kscaler:pool={life['pool']}, launched for {action['pool']}"
    initial = [i for i in result["instances"] if i["initial"]]
    assert [i["pool"] for i in initial] == ["general"], f"the sandbox starts general's min only: {initial}"
    batch = [i for i in result["instances"] if i["pool"] == "batch"]
    general = [i for i in result["instances"] if i["pool"] == "general"]
    if any(i["lifecycle"] for i in result["instances"]):  # moto reports InstanceLifecycle
        assert all(i["lifecycle"] == "spot" for i in batch), f"batch instances not Spot: {batch}"
        assert not any(i["lifecycle"] for i in general), f"general instances not on-demand: {general}"
    markets = {a["pool"]: a.get("market") for a in first["report"]["actions"] if a["kind"] == "launch"}
    assert markets == {"general": "on-demand", "batch": "spot"}, f"launch markets: {markets}"


def test_pods_no_pool_can_take_are_reported_by_name_and_nothing_is_launched_for_them(pools):
    result, _, config = pools
    first = acting_runs(result)[0]
    # The pods as the simulator had them while the run read the API (the gpu pods live as long as the burst).
    at_run = max((s for s in result["samples"] if s["phase"] == "burst" and s["t"] <= first["t_end"]), key=lambda s: s["t"])
    gpu = at_run["unservable_pods"]
    assert len(gpu) == 2 and all(name.startswith("ml/gpu-") for name in gpu), f"the simulator's unservable pods: {gpu}"
    reported = first["report"]["decision"]["unservable_pods"]
    assert sorted(u["pod"] for u in reported) == gpu, f"decision.unservable_pods: {reported}"
    for entry in reported:
        assert sorted(reason.split(":")[0] for reason in entry["reasons"]) == sorted(config["pools"]), \
            f"{entry['pod']}: each pool should say why it cannot take it: {entry['reasons']}"
    routed = sum(p["pending_pods"] for p in first["report"]["decision"]["pools"])
    assert routed == 16, f"{routed} pods routed to pools: the 6 web pods and 10 jobs, not the gpu pods"
    for run in result["runs"]:
        for pool in launches(run):
            assert pool in TARGETS.values(), f"the run at {run['t']:.1f}s launched for {pool}"


def test_the_loop_converges_with_every_pod_on_a_node_of_its_pool_and_the_gpu_pods_pending(pools):
    result, scenario, config = pools
    burst = [s for s in result["samples"] if s["phase"] == "burst"]
    done = next((s for s in burst if s["unschedulable"] == s["unservable"] and s["pods"] > 2), None)
    assert done is not None, (f"pods a pool can take still pending after {BURST:g}s: "
                              f"{burst[-1]['workloads']} (nodes per pool {burst[-1]['pools']})")
    runs = [r for r in result["runs"] if QUIET <= r["t"] <= done["t"]]
    print(f"converged {done['t'] - QUIET:.1f}s after the burst, {len(runs)} runs; per pool {done['pools']}")
    for sample in result["samples"]:
        for workload, pool in TARGETS.items():
            elsewhere = {p: n for p, n in sample["workloads"][workload]["pools"].items() if p != pool}
            assert not elsewhere, f"{workload} pods on nodes of {elsewhere} at {sample['t']:.1f}s; they target {pool}"
    final = result["samples"][-1]
    replicas = next(p for p in scenario.phases if p.name == "burst").replicas
    for workload, pool in TARGETS.items():
        assert final["workloads"][workload] == {"pending": 0, "pools": {pool: replicas[workload]}}, final["workloads"]
    assert final["workloads"]["gpu"] == {"pending": 2, "pools": {}}, final["workloads"]["gpu"]
    expected = expected_launches(scenario, config)
    assert {p: c["instances"] for p, c in final["pools"].items()} == \
        {p: config["pools"][p]["min"] + n for p, (_, n) in expected.items()}, final["pools"]
    assert max(s["instances"] for s in result["samples"]) <= config["nodes"]["max"]


def test_no_run_halts_while_the_new_batch_nodes_build_up_their_history(pools):
    """The scenario stops three runs after convergence, inside the first stabilization window
    of the batch pool's new nodes: a halt then would stop every pool from scaling (up too)."""
    result, _, _ = pools
    halted = [(round(r["t"], 1), [x["message"] for x in r["report"]["decision"]["reasons"]])
              for r in result["runs"] if ((r["report"] or {}).get("decision") or {}).get("halt")]
    assert not halted, f"runs halted: {halted}"
