"""The simulated cluster on its own (no kscaler, moto or Prometheus): a fake EC2 and a frozen
clock drive its ticks, and the stand-in API's own write paths (patch, eviction, delete) act as a
client would. What the closed-loop drain test relies on: cordons and NoSchedule taints keep new
pods off a node, an evicted pod is replaced at once and Ready only after the startup delay, a
PodDisruptionBudget refuses evictions that would leave too few Ready pods, and every sample and
terminated instance records what the test checks."""
import datetime
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ksandbox import cluster as cluster_module  # noqa: E402
from ksandbox import kubeapi, placement  # noqa: E402
from ksandbox.aws import Instance  # noqa: E402
from ksandbox.cluster import DRAIN_TAINT, SimulatedCluster  # noqa: E402
from ksandbox.placement import node_templates  # noqa: E402
from ksandbox.scenario import ScenarioError, load, parse  # noqa: E402

NODES = kubeapi.KINDS[("", "nodes")]
PODS = kubeapi.KINDS[("", "pods")]
STARTUP = 2.0


def make_scenario(web_replicas=3, pdb=2):
    return parse({
        "name": "unit",
        "cluster": {"boot_delay": "4s", "pod_startup": f"{STARTUP:g}s",
                    "instance_sizes": {"t3.large": {"cpu": 2, "memory": "8Gi"}}},
        "workloads": {"web": {"cpu": 0.5, "memory": "1Gi", "pdb_min_available": pdb}},
        "phases": [{"name": "steady", "duration": "60s", "replicas": {"web": web_replicas}}],
    })


class Sim:
    """A SimulatedCluster whose EC2 is a list and whose clock is a number. `instance_ids`: ids
    of t3.large instances of pool "default", or (id, instance type, pool) triples."""

    def __init__(self, monkeypatch, scenario, instance_ids, templates=None):
        self.live = [i if isinstance(i, tuple) else (i, "t3.large", "default") for i in instance_ids]
        self.clock = 1000.0
        monkeypatch.setattr(cluster_module, "managed_instances", lambda ec2, cluster_id: [
            Instance(i, kind, "us-east-1a", f"172.31.0.{n + 20}", "running", datetime.datetime(2025, 1, 1), pool=pool)
            for n, (i, kind, pool) in enumerate(self.live)])
        self.state = kubeapi.KubeState()
        self.cluster = SimulatedCluster(scenario, account=None, cluster_id="c1", min_nodes=1,
                                        initial_instance_ids=[i[0] for i in self.live], kube_state=self.state,
                                        templates=templates)
        self.cluster.now = lambda: self.clock
        self.cluster.start_scenario(self.clock)

    def tick(self, advance=0.25):
        self.clock += advance
        self.cluster.tick(ec2=object())

    def bound(self, node):
        return sorted(p.name for p in self.cluster.pods.values() if p.node == node)

    def web_ready(self):
        return self.cluster.record.samples[-1].pdbs["web"]["ready"]

    def cordon_and_taint(self, node):
        self.state.api_patch(NODES, "", node, "application/merge-patch+json", {"spec": {
            "unschedulable": True, "taints": [{"key": DRAIN_TAINT, "value": "1700000000", "effect": "NoSchedule"}]}})

    def evict(self, pod):
        return self.state.api_evict("default", pod, {"apiVersion": "policy/v1", "kind": "Eviction",
                                                      "metadata": {"name": pod, "namespace": "default"}})

    def close(self):
        self.cluster.exporter.stop()


@pytest.fixture
def two_nodes(monkeypatch):
    sim = Sim(monkeypatch, make_scenario(), ["i-a", "i-b"])
    yield sim
    sim.close()


def test_pods_turn_ready_after_the_startup_delay_in_the_simulation_and_the_api(two_nodes):
    sim = two_nodes
    sim.tick()
    assert len(sim.bound("i-a")) == 3, "first fit: the three web pods on the oldest node"
    assert sim.web_ready() == 0
    assert not any(kubeapi.pod_ready(p) for p in sim.state.pods(namespace="default"))
    sim.tick(STARTUP)
    assert sim.web_ready() == 3
    assert all(kubeapi.pod_ready(p) for p in sim.state.pods(namespace="default"))
    pdb = sim.state.pdb("default", "web-pdb")
    assert pdb["status"]["currentHealthy"] == 3 and pdb["status"]["desiredHealthy"] == 2
    assert pdb["status"]["disruptionsAllowed"] == 1
    daemonset = [p for p in sim.state.pods(namespace="kube-system") if p["metadata"]["name"].startswith("node-exporter-")]
    assert sorted(p["spec"]["nodeName"] for p in daemonset) == ["i-a", "i-b", "ip-172-31-0-10"]


def test_a_cordoned_node_keeps_its_pods_but_gets_no_new_ones_and_an_uncordon_reopens_it(monkeypatch):
    sim = Sim(monkeypatch, make_scenario(web_replicas=0), ["i-a", "i-b"])
    try:
        sim.tick()
        sim.cordon_and_taint("i-a")
        sim.cluster.scenario.phases[0].replicas["web"] = 2
        sim.tick()
        assert sim.bound("i-a") == [] and len(sim.bound("i-b")) == 2, "new pods went around the cordoned node"
        node = sim.state.node("i-a")
        assert node["spec"]["unschedulable"] is True, "a tick's upsert overwrote the cordon"
        assert {t["key"] for t in node["spec"]["taints"]} == {DRAIN_TAINT, kubeapi.UNSCHEDULABLE_TAINT}
        sample = sim.cluster.record.samples[-1]
        assert (sample.cordoned, sample.draining) == (1, 1)
        # A NoSchedule taint alone (no cordon) keeps pods off too.
        sim.state.api_patch(NODES, "", "i-a", "application/merge-patch+json",
                            {"spec": {"unschedulable": None, "taints": [{"key": "x", "effect": "NoSchedule"}]}})
        sim.cluster.scenario.phases[0].replicas["web"] = 5
        sim.tick()
        assert sim.bound("i-a") == [] and len(sim.bound("i-b")) == 4, "i-b full (4 x 0.5 cores), one pending"
        # Both gone: the pending pod lands there.
        sim.state.api_patch(NODES, "", "i-a", "application/merge-patch+json", {"spec": {"taints": None}})
        sim.tick()
        assert len(sim.bound("i-a")) == 1 and sim.cluster.record.samples[-1].cordoned == 0
    finally:
        sim.close()


def test_an_eviction_is_replaced_at_once_and_the_budget_refuses_until_the_replacement_is_ready(two_nodes):
    sim = two_nodes
    sim.tick()
    sim.tick(STARTUP)
    sim.cordon_and_taint("i-a")
    victims = sim.bound("i-a")
    assert sim.evict(victims[0])[0] == 201
    assert victims[0] not in sim.bound("i-a") and sim.state.pod("default", victims[0]) is None
    assert len([p for p in sim.cluster.pods.values() if p.workload == "web"]) == 3, "the ReplicaSet replaced it at once"
    replacement = [p for p in sim.cluster.pods.values() if p.workload == "web" and p.node == "i-b"]
    assert len(replacement) == 1, "the replacement is bound at once, on the node that is not cordoned"
    assert sim.cluster.record.evictions[-1]["node"] == "i-a"
    with pytest.raises(kubeapi.APIError) as refused:
        sim.evict(victims[1])
    assert refused.value.code == 429, "2 Ready web pods left, minAvailable 2: the budget must refuse"
    sim.tick()
    assert sim.web_ready() == 2
    assert not kubeapi.pod_ready(sim.state.pod("default", replacement[0].name)), "Ready in the API before its startup delay"
    with pytest.raises(kubeapi.APIError):
        sim.evict(victims[1])
    sim.tick(STARTUP)
    assert sim.web_ready() == 3
    assert sim.evict(victims[1])[0] == 201


def test_an_instance_terminated_with_pods_on_its_node_records_them_and_a_drained_one_records_none(two_nodes):
    sim = two_nodes
    sim.tick()
    sim.tick(STARTUP)
    sim.live = [i for i in sim.live if i[0] != "i-a"]  # terminated with the three web pods on it
    sim.tick()
    lives = sim.cluster.record.instances
    assert lives["i-a"].pods_at_termination == 3 and lives["i-a"].gone_at is not None
    assert sim.web_ready() == 0, "its pods went back to pending"
    sim.tick(STARTUP + 0.1)
    assert sim.web_ready() == 3 and len(sim.bound("i-b")) == 3
    # i-b: its Node deleted through the API just after its instance, before a tick saw either.
    sim.state.api_delete(NODES, "", "i-b", {})
    sim.live = [i for i in sim.live if i[0] != "i-b"]
    sim.tick()
    assert lives["i-b"].pods_at_termination == 3 and lives["i-b"].gone_at is not None


def test_evicting_a_daemonset_pod_brings_it_back_at_the_next_tick(two_nodes):
    sim = two_nodes
    sim.tick()
    sim.state.api_evict("kube-system", "node-exporter-i-a", {"kind": "Eviction"})
    assert sim.state.pod("kube-system", "node-exporter-i-a") is None
    sim.tick()
    assert sim.state.pod("kube-system", "node-exporter-i-a")["spec"]["nodeName"] == "i-a"


def test_pdb_min_available_takes_an_int_or_a_percentage():
    assert make_scenario(pdb="50%").workloads["web"].min_available(3) == 2
    assert make_scenario(pdb=2).workloads["web"].min_available(7) == 2
    for bad in ("two", -1, "150%", True):
        with pytest.raises(ScenarioError, match="pdb_min_available"):
            make_scenario(pdb=bad)


# MARK: node pools and placement constraints

POOLS_CONFIG = HERE.parent / "configs/pools.yaml"
BATCH_TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}


def pools_scenario(web=2, batch=2, gpu=1, plain=1):
    """configs/pools.yaml's two pools: web selects general, batch selects and tolerates batch,
    gpu selects a label no pool has, plain has no constraint."""
    return parse({
        "name": "pools",
        "cluster": {"boot_delay": "4s", "pod_startup": f"{STARTUP:g}s",
                    "instance_sizes": {"t3.large": {"cpu": 2, "memory": "8Gi"}, "c5.xlarge": {"cpu": 4, "memory": "8Gi"}}},
        "workloads": {
            "web": {"cpu": 0.5, "memory": "1Gi", "node_selector": {"workload": "general"}},
            "batch": {"cpu": 1, "memory": "1Gi", "kind": "Job", "namespace": "batch", "node_selector": {"workload": "batch"},
                      "tolerations": [BATCH_TOLERATION]},
            "gpu": {"cpu": 0.5, "memory": "1Gi", "kind": "Job", "namespace": "ml", "node_selector": {"gpu": "true"}},
            "plain": {"cpu": 0.25, "memory": "256Mi"},
        },
        "phases": [{"name": "steady", "duration": "60s", "replicas": {"web": web, "batch": batch, "gpu": gpu, "plain": plain}}],
    })


@pytest.fixture
def pools(monkeypatch):
    templates = node_templates(yaml.safe_load(POOLS_CONFIG.read_text()))
    sim = Sim(monkeypatch, pools_scenario(), [("i-g", "t3.large", "general"), ("i-b", "c5.xlarge", "batch")], templates)
    yield sim
    sim.close()


def pods_of(sim, workload):
    return [p for p in sim.cluster.pods.values() if p.workload == workload]


def test_pool_nodes_register_with_the_pools_labels_and_taints(pools):
    pools.tick()
    batch = pools.state.node("i-b")
    labels = batch["metadata"]["labels"]
    assert {k: labels.get(k) for k in ("workload", "kscaler.io/pool", "kscaler.io/cluster", "node.kubernetes.io/instance-type",
                                       "kubernetes.io/os", "kubernetes.io/hostname")} == {
        "workload": "batch", "kscaler.io/pool": "batch", "kscaler.io/cluster": "c1",
        "node.kubernetes.io/instance-type": "c5.xlarge", "kubernetes.io/os": "linux", "kubernetes.io/hostname": "i-b"}
    assert batch["spec"]["taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]
    general = pools.state.node("i-g")
    assert general["metadata"]["labels"]["workload"] == "general" and "taints" not in general["spec"]
    # The kubelet registers taints once: a drain taint written through the API stays, and so
    # does the pool's taint next to it.
    pools.cordon_and_taint("i-b")
    pools.tick()
    assert {t["key"] for t in pools.state.node("i-b")["spec"]["taints"]} == {DRAIN_TAINT, kubeapi.UNSCHEDULABLE_TAINT}, \
        "the merge patch replaced the taints as a client asked; the kubelet must not write its own back"


def test_each_pod_lands_on_a_node_of_the_pool_it_targets_and_the_rest_stay_pending(pools):
    pools.tick()
    assert {p.node for p in pods_of(pools, "web")} == {"i-g"}
    assert {p.node for p in pods_of(pools, "batch")} == {"i-b"}
    assert {p.node for p in pods_of(pools, "plain")} == {"i-g"}, "a pod without a toleration goes around the tainted node"
    assert {p.node for p in pods_of(pools, "gpu")} == {""}, "no node has gpu=true"
    sample = pools.cluster.record.samples[-1]
    assert sample.unservable == 1 and sample.unschedulable == 1
    assert sample.pools == {"general": {"instances": 1, "ready": 1}, "batch": {"instances": 1, "ready": 1}}
    assert sample.workloads["batch"] == {"pending": 0, "pools": {"batch": 2}}
    assert sample.workloads["gpu"] == {"pending": 1, "pools": {}}
    assert pools.cluster.targets == {"web": ["general"], "batch": ["batch"], "gpu": [], "plain": ["general"]}


def test_the_api_serves_the_pods_constraints_and_the_schedulers_condition(pools):
    pools.tick()
    batch = pools.state.pods(namespace="batch")[0]
    assert batch["spec"]["nodeSelector"] == {"workload": "batch"}
    assert batch["spec"]["tolerations"][0] == BATCH_TOLERATION
    assert {t["key"] for t in batch["spec"]["tolerations"][1:]} == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}
    scheduled = {c["type"]: c for c in batch["status"]["conditions"]}["PodScheduled"]
    assert scheduled["status"] == "True"
    gpu = pools.state.pods(namespace="ml")[0]
    assert gpu["status"]["phase"] == "Pending" and "nodeName" not in gpu["spec"]
    [condition] = gpu["status"]["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == ("PodScheduled", "False", "Unschedulable")
    assert condition["message"] == ("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                                    "1 node(s) had untolerated taint {dedicated: batch}. preemption: 0/2 nodes are "
                                    "available: 2 Preemption is not helpful for scheduling.")
    version = pools.state.resource_version
    pools.tick()
    assert pools.state.resource_version == version, "an unchanged cluster rewrote objects"


def test_a_cordon_or_a_drain_taint_keeps_even_tolerating_pods_off_and_room_runs_out_per_pool(monkeypatch):
    templates = node_templates(yaml.safe_load(POOLS_CONFIG.read_text()))
    sim = Sim(monkeypatch, pools_scenario(web=0, batch=0, gpu=0, plain=0),
              [("i-b1", "c5.xlarge", "batch"), ("i-b2", "c5.xlarge", "batch"), ("i-g", "t3.large", "general")], templates)
    try:
        sim.tick()
        sim.cordon_and_taint("i-b1")
        sim.cluster.scenario.phases[0].replicas.update(batch=5, web=5)
        sim.tick()
        assert sim.bound("i-b1") == [] and len(sim.bound("i-b2")) == 4, "4 one-core jobs fill the open batch node"
        assert len(sim.bound("i-g")) == 4, "4 web pods of 0.5 cores fill the general node"
        pending = {p.workload: p.message for p in sim.cluster.pods.values() if not p.node}
        assert pending["batch"].startswith("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node "
                                           "affinity/selector, 1 node(s) were unschedulable.")
        # The cordon is the first filter: the cordoned batch node is counted as unschedulable.
        assert pending["web"].startswith("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
                                         "{dedicated: batch}, 1 node(s) were unschedulable.")
    finally:
        sim.close()


@pytest.mark.parametrize("requirement, labels, matches", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, {"zone": "b"}, True),
    ({"key": "zone", "operator": "In", "values": ["a"]}, {}, False),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, {"zone": "a"}, False),
    ({"key": "gpu", "operator": "Exists"}, {"gpu": ""}, True),
    ({"key": "gpu", "operator": "Exists"}, {}, False),
    ({"key": "gpu", "operator": "DoesNotExist"}, {}, True),
    ({"key": "gpu", "operator": "DoesNotExist"}, {"gpu": "true"}, False),
    ({"key": "cores", "operator": "Gt", "values": ["2"]}, {"cores": "4"}, True),
    ({"key": "cores", "operator": "Lt", "values": ["2"]}, {"cores": "x"}, False),
])
def test_node_selector_requirements_follow_the_api_reference(requirement, labels, matches):
    assert placement.requirement_matches(requirement, labels) is matches
    constraints = placement.Constraints(node_affinity=({"matchExpressions": [requirement]},))
    assert (constraints.rejection(labels, ()) is None) is matches


def test_affinity_terms_are_ored_an_empty_term_matches_nothing_and_the_selector_is_anded():
    terms = ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"matchExpressions": [{"key": "b", "operator": "Exists"}]})
    assert placement.Constraints(node_affinity=terms).affinity_matches({"b": "1"})
    assert not placement.Constraints(node_affinity=({"matchExpressions": []},)).affinity_matches({"a": "1"})
    both = placement.Constraints(node_selector={"pool": "x"}, node_affinity=terms[:1])
    assert not both.affinity_matches({"a": "1"}) and both.affinity_matches({"a": "1", "pool": "x"})


@pytest.mark.parametrize("toleration, taint, tolerated", [
    (BATCH_TOLERATION, {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}, True),
    (BATCH_TOLERATION, {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}, False),
    (BATCH_TOLERATION, {"key": "dedicated", "value": "batch", "effect": "NoExecute"}, False),
    ({"key": "dedicated", "operator": "Exists"}, {"key": "dedicated", "value": "x", "effect": "NoExecute"}, True),
    ({"operator": "Exists"}, {"key": "anything", "effect": "NoSchedule"}, True),
    ({"key": "spot", "value": ""}, {"key": "spot", "effect": "NoSchedule"}, True),
])
def test_tolerations_follow_the_api_reference(toleration, taint, tolerated):
    assert placement.tolerates(toleration, taint) is tolerated


def test_prefer_no_schedule_never_blocks_and_taints_parse_as_kubectl_writes_them():
    assert placement.parse_taint("dedicated=batch:NoSchedule") == {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}
    assert placement.parse_taint("spot:PreferNoSchedule") == {"key": "spot", "effect": "PreferNoSchedule"}
    assert placement.Constraints().rejection({}, [placement.parse_taint("spot:PreferNoSchedule")]) is None
    with pytest.raises(ValueError):
        placement.parse_taint("dedicated=batch")


@pytest.mark.parametrize("spec, message", [
    ({"node_selector": {"gpu": True}}, "node_selector"),
    ({"tolerations": [{"key": "a", "operator": "Maybe"}]}, "operator"),
    ({"tolerations": [{"operator": "Equal", "value": "x"}]}, "without a key"),
    ({"tolerations": [{"key": "a", "effect": "NoWay"}]}, "effect"),
    ({"node_affinity": [{"matchExpressions": [{"key": "a", "operator": "In"}]}]}, "needs at least one value"),
    ({"node_affinity": [{"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}]}, "takes no values"),
    ({"node_affinity": [{"matchFields": []}]}, "matchExpressions"),
])
def test_bad_placement_constraints_are_rejected_with_the_field(spec, message):
    with pytest.raises(ScenarioError, match=message):
        parse({"workloads": {"w": {"cpu": 1, "memory": "1Gi", **spec}}, "phases": [{"duration": "1s"}]})


def test_the_two_pools_scenario_targets_each_workload_at_one_pool_and_needs_what_each_pool_sizes():
    scenario = load(HERE.parent / "scenarios/two-pools.toml")
    templates = node_templates(yaml.safe_load(POOLS_CONFIG.read_text()))
    targets = {name: [t.pool for t in templates if t.takes(w.constraints, "c1")] for name, w in scenario.workloads.items()}
    assert targets == {"web": ["general"], "batch": ["batch"], "gpu": []}
    burst = next(p for p in scenario.phases if p.name == "burst").replicas
    assert scenario.nodes_needed({"web": burst["web"]}, scenario.instance_sizes["t3.large"]) == 3
    assert scenario.nodes_needed({"batch": burst["batch"]}, scenario.instance_sizes["c5.xlarge"]) == 3
