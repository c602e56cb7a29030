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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ksandbox import cluster as cluster_module  # noqa: E402
from ksandbox import kubeapi  # noqa: E402
from ksandbox.aws import Instance  # noqa: E402
from ksandbox.cluster import DRAIN_TAINT, SimulatedCluster  # noqa: E402
from ksandbox.scenario import ScenarioError, parse  # noqa: E402

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
    """A SimulatedCluster whose EC2 is a list and whose clock is a number."""

    def __init__(self, monkeypatch, scenario, instance_ids):
        self.live = list(instance_ids)
        self.clock = 1000.0
        monkeypatch.setattr(cluster_module, "managed_instances", lambda ec2, cluster_id: [
            Instance(i, "t3.large", "us-east-1a", f"172.31.0.{n + 20}", "running", datetime.datetime(2025, 1, 1))
            for n, i in enumerate(self.live)])
        self.state = kubeapi.KubeState()
        self.cluster = SimulatedCluster(scenario, account=None, cluster_id="c1", min_nodes=1,
                                        initial_instance_ids=instance_ids, kube_state=self.state)
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
    sim.live.remove("i-a")  # terminated with the three web pods on it
    sim.tick()
    lives = sim.cluster.record.instances
    assert lives["i-a"].pods_at_termination == 3 and lives["i-a"].gone_at is not None
    assert sim.web_ready() == 0, "its pods went back to pending"
    sim.tick(STARTUP + 0.1)
    assert sim.web_ready() == 3 and len(sim.bound("i-b")) == 3
    # i-b: its Node deleted through the API just after its instance, before a tick saw either.
    sim.state.api_delete(NODES, "", "i-b", {})
    sim.live.remove("i-b")
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
