"""The stand-in Kubernetes API server (ksandbox/kubeapi.py) grounded against the real kubectl.

kubectl is /usr/bin/kubectl (or KSTEST_KUBECTL): on the CI image, Google Cloud's dispatcher,
which runs kubectl 1.27 ... 1.33 according to the server's /version (its own 1.32 build for
1.32 and for versions it has no build for). Where kubectl and the stand-in disagree, kubectl is
right: these tests assert what kubectl prints and what the stand-in holds afterwards. A missing
kubectl fails them; nothing is skipped.

The plain-Python tests at the end cover what kubectl does not exercise: preconditions, errors,
fault injection, selectors, paging, events, the owner's hooks.
"""
import http.client
import json
import os
import select
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ksandbox import kubeapi  # noqa: E402

KUBECTL = os.environ.get("KSTEST_KUBECTL", "/usr/bin/kubectl")
SCRIPT = HERE.parent / "ksandbox/kubeapi.py"
CERT_USER = "kscaler-test"
SA = kubeapi.SERVICE_ACCOUNT
# Every kubectl run: its own bound, and a per-request one well inside it (a loaded 2-core box).
KUBECTL_TIMEOUT = 90
REQUEST_TIMEOUT = "--request-timeout=20s"


def require_kubectl():
    if not (os.path.isfile(KUBECTL) and os.access(KUBECTL, os.X_OK)):
        pytest.fail(f"no kubectl at {KUBECTL}: run scripts/install-deps.sh (it installs Debian's kubernetes-client "
                    "when no kubectl is present), or set KSTEST_KUBECTL", pytrace=False)


class StandIn:
    """One in-process stand-in with its credentials, and kubectl pointed at it."""

    def __init__(self, directory, version=kubeapi.DEFAULT_VERSION):
        self.directory = Path(directory)
        self.state = kubeapi.KubeState()
        self.server, self.info = kubeapi.start(self.directory / "standin", self.state, version=version)
        self.home = self.directory / "home"
        self.home.mkdir()
        self.client_context = ssl.create_default_context(cafile=self.info["ca_file"])
        self.cert_context = ssl.create_default_context(cafile=self.info["ca_file"])
        self.cert_context.load_cert_chain(self.info["client_cert_file"], self.info["client_key_file"])
        self.token = Path(self.info["token_file"]).read_text()

    def stop(self):
        self.server.stop()

    def kubectl(self, *args, kubeconfig="token", timeout=KUBECTL_TIMEOUT, extra_env=None):
        """Runs kubectl with KUBECONFIG at one of the generated kubeconfigs (token, cert,
        cert-files; None: no kubeconfig at all), a private HOME and discovery cache."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home)}
        if kubeconfig is not None:
            env["KUBECONFIG"] = self.info[{"token": "kubeconfig_token", "cert": "kubeconfig_cert",
                                           "cert-files": "kubeconfig_cert_files"}[kubeconfig]]
        env.update(extra_env or {})
        return subprocess.run([KUBECTL, *args, REQUEST_TIMEOUT, f"--cache-dir={self.home / 'cache'}"],
                              capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)

    def ok(self, *args, **kwargs):
        result = self.kubectl(*args, **kwargs)
        assert result.returncode == 0, f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def call(self, method, path, body=None, token="default", content_type="application/json", cert=False,
             headers=None, timeout=20):
        """(status, JSON or raw text) for one request; token None: no Authorization header."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.server.port, timeout=timeout,
                                                 context=self.cert_context if cert else self.client_context)
        sent = dict(headers or {})
        if token is not None and not cert:
            sent["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            sent["Content-Type"] = content_type
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read().decode()
        finally:
            connection.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw

    def requests(self):
        with self.server.requests_lock:
            return list(self.server.requests)


def seed(state):
    """A k3s server, two workers (one with an app pod behind a PDB and a DaemonSet pod), a
    NotReady worker."""
    state.add_node("k3s-server", "k3s://k3s-server", labels={"node-role.kubernetes.io/control-plane": "true"})
    state.add_node("i-0aaa", "aws:///us-east-1a/i-0aaa", labels={"pool": "workers"})
    state.add_node("i-0bbb", "aws:///us-east-1b/i-0bbb", labels={"pool": "workers"})
    state.add_node("i-0ccc", "aws:///us-east-1a/i-0ccc", ready=False, labels={"pool": "workers"})
    state.add_pod("default", "web-1", "i-0aaa", "ReplicaSet", "web-5d8f", labels={"app": "web"}, requests={"cpu": 0.5, "memory": 2 ** 30})
    state.add_pod("default", "web-2", "i-0bbb", "ReplicaSet", "web-5d8f", labels={"app": "web"})
    state.add_pod("kube-system", "node-exporter-aaa", "i-0aaa", "DaemonSet", "node-exporter", labels={"app": "node-exporter"})
    state.add_pod("kube-system", "node-exporter-bbb", "i-0bbb", "DaemonSet", "node-exporter", labels={"app": "node-exporter"})
    state.add_pod("kube-system", "coredns-1", "k3s-server", "ReplicaSet", "coredns", labels={"k8s-app": "kube-dns"})
    state.add_pdb("default", "web", {"app": "web"}, disruptions_allowed=0)


@pytest.fixture
def standin(tmp_path):
    require_kubectl()
    s = StandIn(tmp_path)
    seed(s.state)
    yield s
    s.stop()


def names(items):
    return sorted(i["metadata"]["name"] for i in items)


# MARK: kubectl

def test_the_dispatcher_runs_a_kubectl_of_the_servers_minor_version(tmp_path):
    require_kubectl()
    client = subprocess.run([KUBECTL, "version", "--client", "-o", "json"], capture_output=True, text=True,
                            timeout=KUBECTL_TIMEOUT, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
                            stdin=subprocess.DEVNULL)
    assert client.returncode == 0, client.stderr
    assert json.loads(client.stdout)["clientVersion"]["gitVersion"].endswith("-dispatcher"), \
        f"{KUBECTL} is not Google Cloud's kubectl dispatcher (these tests ground the stand-in against 1.27 ... 1.33): " \
        f"{client.stdout}"


@pytest.mark.parametrize("minor", range(27, 34))
def test_each_kubectl_the_dispatcher_picks_can_cordon_drain_and_name_the_user(tmp_path, minor):
    """Server version 1.<minor>: the dispatcher runs kubectl 1.<minor>; cordon, a drain that
    evicts, and whoami (authentication.k8s.io/v1beta1 for kubectl 1.27) all work with it."""
    require_kubectl()
    s = StandIn(tmp_path, version=f"1.{minor}.0")
    try:
        seed(s.state)
        s.state.set_pdb_disruptions_allowed("default", "web", 1)
        version = json.loads(s.ok("version", "-o", "json"))
        assert version["serverVersion"]["gitVersion"] == f"v1.{minor}.0"
        # 1.32 is the dispatcher's own build (v1.32.4-dispatcher); the others are kubectl.1.<minor>.
        assert version["clientVersion"]["gitVersion"].startswith(f"v1.{minor}."), version["clientVersion"]
        assert "i-0aaa" in s.ok("get", "nodes")
        out = s.ok("drain", "i-0aaa", "--ignore-daemonsets", "--timeout=60s")
        assert "pod/web-1 evicted" in out and "node/i-0aaa drained" in out
        assert s.state.node("i-0aaa")["spec"]["unschedulable"] is True
        assert s.state.pod("default", "web-1") is None
        assert f"Username    {SA}" in s.ok("auth", "whoami")
    finally:
        s.stop()


@pytest.mark.parametrize("kubeconfig", ["token", "cert", "cert-files"])
def test_get_nodes_lists_the_seeded_nodes(standin, kubeconfig):
    table = standin.ok("get", "nodes", kubeconfig=kubeconfig)
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert sorted(rows) == ["i-0aaa", "i-0bbb", "i-0ccc", "k3s-server"]
    assert rows["i-0aaa"][1] == "Ready" and rows["i-0ccc"][1] == "NotReady"
    assert rows["k3s-server"][2] == "control-plane"
    listed = json.loads(standin.ok("get", "nodes", "-o", "json", kubeconfig=kubeconfig))
    assert names(listed["items"]) == names(standin.state.nodes())
    assert {i["metadata"]["name"]: i["spec"]["providerID"] for i in listed["items"]}["i-0bbb"] == "aws:///us-east-1b/i-0bbb"
    workers = json.loads(standin.ok("get", "nodes", "-l", "pool=workers", "-o", "json", kubeconfig=kubeconfig))
    assert names(workers["items"]) == ["i-0aaa", "i-0bbb", "i-0ccc"]
    assert standin.ok("get", "nodes", "-l", "pool!=workers", "-o", "name", kubeconfig=kubeconfig).split() == ["node/k3s-server"]


def test_cordon_sets_unschedulable_and_uncordon_clears_it(standin):
    assert "node/i-0aaa cordoned" in standin.ok("cordon", "i-0aaa")
    node = standin.state.node("i-0aaa")
    assert node["spec"]["unschedulable"] is True
    assert [t["key"] for t in node["spec"]["taints"]] == ["node.kubernetes.io/unschedulable"]
    assert "Ready,SchedulingDisabled" in standin.ok("get", "node", "i-0aaa")
    assert any(r["method"] == "PATCH" and r["path"].startswith("/api/v1/nodes/i-0aaa") for r in standin.requests())
    assert "already cordoned" in standin.ok("cordon", "i-0aaa")
    assert "node/i-0aaa uncordoned" in standin.ok("uncordon", "i-0aaa")
    node = standin.state.node("i-0aaa")
    assert "unschedulable" not in node["spec"] and "taints" not in node["spec"]


def test_label_annotate_and_taint_patch_the_node_as_kubectl_means(standin):
    standin.ok("label", "node", "i-0aaa", "kscaler.io/draining=true")
    standin.ok("annotate", "node", "i-0aaa", "kscaler.io/since=2024-01-01T00:00:00Z")
    standin.ok("taint", "node", "i-0aaa", "dedicated=batch:NoSchedule")
    standin.ok("taint", "node", "i-0aaa", "spot=true:PreferNoSchedule")
    node = standin.state.node("i-0aaa")
    assert node["metadata"]["labels"]["kscaler.io/draining"] == "true"
    assert node["metadata"]["labels"]["pool"] == "workers"
    assert node["metadata"]["annotations"]["kscaler.io/since"] == "2024-01-01T00:00:00Z"
    assert sorted((t["key"], t["effect"]) for t in node["spec"]["taints"]) == [("dedicated", "NoSchedule"), ("spot", "PreferNoSchedule")]
    standin.ok("taint", "node", "i-0aaa", "dedicated-")
    standin.ok("label", "node", "i-0aaa", "kscaler.io/draining-")
    node = standin.state.node("i-0aaa")
    assert [t["key"] for t in node["spec"]["taints"]] == ["spot"]
    assert "kscaler.io/draining" not in node["metadata"]["labels"]


def test_get_pods_by_node_lists_exactly_that_nodes_pods(standin):
    listed = json.loads(standin.ok("get", "pods", "-A", "--field-selector", "spec.nodeName=i-0aaa", "-o", "json"))
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in listed["items"]) == \
        [("default", "web-1"), ("kube-system", "node-exporter-aaa")]
    table = standin.ok("get", "pods", "-A", "--field-selector", "spec.nodeName=i-0aaa")
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [["default", "web-1"], ["kube-system", "node-exporter-aaa"]]
    assert standin.ok("get", "pods", "-n", "kube-system", "--field-selector", "spec.nodeName=i-0aaa,metadata.name!=x",
                      "-o", "name").split() == ["pod/node-exporter-aaa"]


# A pending pod's placement constraints, in every shape kscaler reads: nodeSelector, required
# node affinity (matchExpressions with each operator, matchFields), a preferred term it ignores,
# and tolerations with and without operator, value and effect.
PLACEMENT = {
    "nodeSelector": {"kscaler.io/pool": "gpu", "kubernetes.io/arch": "amd64"},
    "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]},
                                  {"key": "node.kubernetes.io/instance-type", "operator": "NotIn", "values": ["t3.micro"]},
                                  {"key": "example.com/cores", "operator": "Gt", "values": ["3"]},
                                  {"key": "example.com/legacy", "operator": "DoesNotExist"}]},
            {"matchExpressions": [{"key": "kscaler.io/spot", "operator": "Exists"}],
             "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["i-0aaa"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "example.com/fast", "operator": "Exists"}]}}]}},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                    {"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoExecute", "tolerationSeconds": 600},
                    {"key": "team", "value": "ml"},
                    {"operator": "Exists"}],
}


def test_a_pod_kubectl_creates_keeps_its_placement_constraints(standin):
    overrides = json.dumps({"apiVersion": "v1", "spec": PLACEMENT})
    manifest = standin.ok("run", "trainer", "-n", "ml", "--image=registry.k8s.io/pause:3.9", "--restart=Never",
                          "--dry-run=client", "-o", "json", f"--overrides={overrides}")
    sent = json.loads(manifest)
    assert {k: sent["spec"][k] for k in PLACEMENT} == PLACEMENT  # kubectl's own Pod type holds them all
    path = standin.home / "trainer.json"
    path.write_text(manifest)
    standin.ok("create", "--validate=false", "-f", str(path))  # no OpenAPI to validate against
    got = json.loads(standin.ok("get", "pod", "trainer", "-n", "ml", "-o", "json"))
    assert {k: got["spec"][k] for k in PLACEMENT} == PLACEMENT
    assert standin.state.pod("ml", "trainer")["spec"]["affinity"] == PLACEMENT["affinity"]


def test_drain_is_refused_while_the_pdb_allows_no_disruption_then_succeeds_once_it_allows_one(standin):
    refused = standin.kubectl("drain", "i-0aaa", "--ignore-daemonsets", "--timeout=3s")
    assert refused.returncode != 0, refused.stdout
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr, refused.stderr
    assert "global timeout reached" in refused.stderr
    assert standin.state.pod("default", "web-1") is not None
    assert standin.state.node("i-0aaa")["spec"]["unschedulable"] is True  # drain cordons first
    evictions = [r for r in standin.requests() if r["path"].startswith("/api/v1/namespaces/default/pods/web-1/eviction")]
    assert evictions and all(r["status"] == 429 for r in evictions)
    assert standin.state.pdb("default", "web")["status"]["disruptionsAllowed"] == 0

    standin.state.set_pdb_disruptions_allowed("default", "web", 1)
    drained = standin.kubectl("drain", "i-0aaa", "--ignore-daemonsets", "--timeout=60s")
    assert drained.returncode == 0, drained.stderr
    assert "pod/web-1 evicted" in drained.stdout and "node/i-0aaa drained" in drained.stdout
    assert "ignoring DaemonSet-managed Pods: kube-system/node-exporter-aaa" in drained.stderr
    assert standin.state.pod("default", "web-1") is None
    assert standin.state.pod("kube-system", "node-exporter-aaa") is not None
    assert standin.state.pod("default", "web-2") is not None
    assert standin.state.node("i-0aaa")["spec"]["unschedulable"] is True
    assert standin.state.pdb("default", "web")["status"]["disruptionsAllowed"] == 0
    # kubectl waited for the evicted pod to be gone: it polled until a 404.
    assert any(r["path"].startswith("/api/v1/namespaces/default/pods/web-1") and r["method"] == "GET" and r["status"] == 404
               for r in standin.requests())


def test_drain_refuses_a_pod_without_a_controller_unless_forced(standin):
    standin.state.add_pod("default", "bare", "i-0bbb")
    refused = standin.kubectl("drain", "i-0bbb", "--ignore-daemonsets", "--timeout=20s")
    assert refused.returncode != 0
    assert "cannot delete Pods that declare no controller" in refused.stderr, refused.stderr
    assert standin.state.pod("default", "bare") is not None


def test_delete_node_removes_it(standin):
    deleted = []
    standin.state.on_node_deleted = deleted.append
    assert 'node "i-0ccc" deleted' in standin.ok("delete", "node", "i-0ccc")
    assert standin.state.node("i-0ccc") is None
    assert deleted == ["i-0ccc"]
    gone = standin.kubectl("get", "node", "i-0ccc")
    assert gone.returncode != 0 and 'nodes "i-0ccc" not found' in gone.stderr


def test_auth_can_i_answers_per_the_callers_permissions(standin):
    standin.server.access.set({CERT_USER: [{"verb": "delete", "group": "", "resource": "nodes"},
                                           {"verb": "create", "group": "", "resource": "pods/eviction"}]})
    allowed = standin.kubectl("auth", "can-i", "delete", "nodes")
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")
    denied = standin.kubectl("auth", "can-i", "delete", "nodes", kubeconfig="cert")
    assert denied.returncode == 1 and denied.stdout.startswith("no"), denied.stdout
    evict = standin.kubectl("auth", "can-i", "create", "pods", "--subresource=eviction", kubeconfig="cert")
    assert evict.returncode == 1 and evict.stdout.startswith("no")
    assert standin.kubectl("auth", "can-i", "list", "nodes", kubeconfig="cert").stdout.strip() == "yes"
    refused = standin.kubectl("delete", "node", "i-0ccc", kubeconfig="cert")
    assert refused.returncode != 0
    assert f'Error from server (Forbidden): nodes "i-0ccc" is forbidden: User "{CERT_USER}" cannot delete resource "nodes" ' \
           'in API group "" at the cluster scope' in refused.stderr
    assert standin.state.node("i-0ccc") is not None


def test_auth_whoami_names_the_user(standin):
    token_user = standin.ok("auth", "whoami")
    assert f"Username    {SA}" in token_user
    assert "system:serviceaccounts:kube-system" in token_user
    cert_user = standin.ok("auth", "whoami", "-o", "json", kubeconfig="cert-files")
    assert json.loads(cert_user)["status"]["userInfo"]["username"] == CERT_USER
    assert "kscaler" in json.loads(cert_user)["status"]["userInfo"]["groups"]


def test_without_valid_credentials_kubectl_reports_unauthorized(standin, tmp_path):
    server, ca = standin.info["server"], standin.info["ca_file"]
    wrong = standin.kubectl("--server", server, "--certificate-authority", ca, "--token", "not-the-token", "get", "nodes",
                            kubeconfig=None)
    assert wrong.returncode != 0
    # "(Unauthorized)", or "(the server has asked for the client to provide credentials)" when
    # discovery is what was refused: kubectl words a 401 either way.
    assert "error: You must be logged in to the server" in wrong.stderr, wrong.stderr
    # No credentials at all: kubectl asks for a username on stdin (closed here) and sends no
    # resource request; its dispatcher's /version probe was refused.
    before = len(standin.requests())
    none = standin.kubectl("--server", server, "--certificate-authority", ca, "get", "nodes", kubeconfig=None)
    assert none.returncode != 0
    after = standin.requests()[before:]
    assert after and all(r["status"] == 401 for r in after), after
    assert not any(r["path"].startswith("/api/v1/nodes") and r["status"] == 200 for r in after)
    basic = standin.kubectl("--server", server, "--certificate-authority", ca, "--username", "admin", "--password", "x",
                            "get", "nodes", kubeconfig=None)
    assert basic.returncode != 0 and "error: You must be logged in to the server" in basic.stderr, basic.stderr


def test_kubectl_reads_the_pools_nodes_and_the_pods_placement_as_the_simulation_serves_them(tmp_path, monkeypatch):
    """The simulated cluster of scenarios/two-pools.toml (configs/pools.yaml's pools, one node
    each) at its burst, served by the stand-in: kubectl shows each pool's labels and taints,
    decodes every pod with its nodeSelector, tolerations and PodScheduled condition, and
    selects the pending ones."""
    require_kubectl()
    import datetime

    import yaml

    from ksandbox import cluster as cluster_module
    from ksandbox.aws import Instance
    from ksandbox.placement import node_templates
    from ksandbox.scenario import load

    live = [("i-0g1", "t3.large", "general"), ("i-0b1", "c5.xlarge", "batch")]
    monkeypatch.setattr(cluster_module, "managed_instances", lambda ec2, cluster_id: [
        Instance(i, kind, "us-east-1a", f"172.31.0.{n + 20}", "running", datetime.datetime(2025, 1, 1), pool=pool)
        for n, (i, kind, pool) in enumerate(live)])
    s = StandIn(tmp_path)
    cluster = cluster_module.SimulatedCluster(
        load(HERE.parent / "scenarios/two-pools.toml"), None, "c1", 1, initial_instance_ids=[i for i, _, _ in live],
        kube_state=s.state, templates=node_templates(yaml.safe_load((HERE.parent / "configs/pools.yaml").read_text())))
    try:
        cluster.start_scenario(cluster.now() - 20)  # in the burst
        cluster.tick(ec2=object())
        table = s.ok("get", "nodes", "--show-labels")
        rows = {line.split()[0]: line.split()[-1].split(",") for line in table.splitlines()[1:]}
        assert {"workload=batch", "kscaler.io/pool=batch", "node.kubernetes.io/instance-type=c5.xlarge",
                "kubernetes.io/os=linux"} <= set(rows["i-0b1"]), table
        assert {"workload=general", "kscaler.io/pool=general"} <= set(rows["i-0g1"]), table
        assert s.ok("get", "nodes", "-l", "kscaler.io/pool=batch", "-o", "name").split() == ["node/i-0b1"]
        assert "Taints:             dedicated=batch:NoSchedule" in s.ok("describe", "node", "i-0b1")

        pods = {p["metadata"]["name"]: p for p in json.loads(s.ok("get", "pods", "-A", "-o", "json"))["items"]}
        gpu = [p for name, p in pods.items() if name.startswith("gpu-")]
        assert len(gpu) == 2 and all(p["spec"]["nodeSelector"] == {"gpu": "true"} for p in gpu)
        for pod in gpu:
            [condition] = pod["status"]["conditions"]
            assert (condition["type"], condition["status"], condition["reason"]) == ("PodScheduled", "False", "Unschedulable")
            assert condition["message"].startswith("0/2 nodes are available: ")
        batch = [p for name, p in pods.items() if name.startswith("batch-")]
        assert all({"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"} in p["spec"]["tolerations"]
                   for p in batch)
        assert {p["spec"].get("nodeName") for p in batch} == {"i-0b1", None}, "4 jobs on the batch node, 6 pending"
        pending = s.ok("get", "pods", "-A", "--field-selector", "status.phase=Pending", "-o", "name").split()
        assert len(pending) == 6 + 6 + 2 and "pod/gpu-00021" in pending
        described = s.ok("describe", "pod", "-n", "ml", "gpu-00021")
        assert "Node-Selectors:  gpu=true" in described and "PodScheduled   False" in described
        assert "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s" in described
    finally:
        cluster.exporter.stop()
        s.stop()


def test_kubectl_round_trips_a_pods_required_node_affinity(standin):
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kscaler.io/pool", "operator": "In", "values": ["batch"]},
                              {"key": "gpu", "operator": "DoesNotExist"}]},
        {"matchExpressions": [{"key": "workload", "operator": "NotIn", "values": ["general"]},
                              {"key": "spot", "operator": "Exists"}]}]}}}
    standin.state.add_pod("batch", "job-1", None, "Job", "job", requests={"cpu": 1}, phase="Pending", affinity=affinity,
                          tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
                          unschedulable_message="0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
    pod = json.loads(standin.ok("get", "pod", "-n", "batch", "job-1", "-o", "json"))
    assert pod["spec"]["affinity"] == affinity
    assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["status"]["conditions"][0]["message"] == "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    described = standin.ok("describe", "pod", "-n", "batch", "job-1")
    assert "dedicated:NoSchedule op=Exists" in described, described


def test_the_command_line_writes_credentials_prints_one_line_and_exits_with_its_stdin(tmp_path):
    require_kubectl()
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({
        "nodes": [{"name": "i-0aaa", "provider_id": "aws:///us-east-1a/i-0aaa", "ready": True, "labels": {"pool": "w"}}],
        "pods": [{"namespace": "default", "name": "web-1", "node": "i-0aaa", "owner_kind": "ReplicaSet",
                  "owner_name": "web", "labels": {"app": "web"}}],
        "pdbs": [{"namespace": "default", "name": "web", "match_labels": {"app": "web"}, "disruptions_allowed": 0}]}))
    directory = tmp_path / "dir"
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--dir", str(directory), "--state-file", str(state_file),
                                "--lifetime", "300", "--exit-on-stdin-eof", "--deny", f"{SA}:delete::nodes"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "no JSON line within 60 s"
        info = json.loads(process.stdout.readline())
        assert sorted(info) == sorted(["port", "server", "dir", "ca_file", "token_file", "client_cert_file", "client_key_file",
                                       "kubeconfig_token", "kubeconfig_cert", "kubeconfig_cert_files"])
        assert info["server"] == f"https://127.0.0.1:{info['port']}" and info["dir"] == str(directory)
        token = Path(info["token_file"]).read_text()
        assert len(token) >= 32 and token not in json.dumps(info)
        for key in ("token_file", "kubeconfig_token", "kubeconfig_cert", "kubeconfig_cert_files", "client_key_file"):
            assert os.stat(info[key]).st_mode & 0o077 == 0, f"{key} is readable by others"
        assert (directory / "ca.key").stat().st_mode & 0o077 == 0
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECONFIG": info["kubeconfig_cert_files"]}

        def run(*args, kubeconfig):
            return subprocess.run([KUBECTL, *args, REQUEST_TIMEOUT], capture_output=True, text=True, timeout=KUBECTL_TIMEOUT,
                                  env=dict(env, KUBECONFIG=info[kubeconfig]), stdin=subprocess.DEVNULL)

        assert run("get", "nodes", "-o", "name", kubeconfig="kubeconfig_cert_files").stdout.split() == ["node/i-0aaa"]
        assert run("get", "pdb", "web", "-o", "jsonpath={.status.disruptionsAllowed}", kubeconfig="kubeconfig_cert").stdout == "0"
        denied = run("delete", "node", "i-0aaa", kubeconfig="kubeconfig_token")
        assert denied.returncode != 0 and f'User "{SA}" cannot delete resource "nodes"' in denied.stderr
        process.stdin.close()
        assert process.wait(timeout=60) == 0
        stderr = process.stderr.read()
        assert token not in stderr and "BEGIN" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_the_command_line_exits_after_its_lifetime(tmp_path):
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--dir", str(tmp_path / "d"), "--lifetime", "1", "--verbose"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.wait(timeout=60) == 0
        assert json.loads(process.stdout.readline())["port"] > 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# MARK: plain requests (what kubectl does not exercise)

@pytest.fixture
def api(tmp_path):
    s = StandIn(tmp_path)
    seed(s.state)
    yield s
    s.stop()


def test_discovery_and_version(api):
    status, version = api.call("GET", "/version")
    assert status == 200 and (version["major"], version["minor"], version["gitVersion"]) == ("1", "31", "v1.31.0")
    status, core = api.call("GET", "/api/v1")
    eviction = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert (eviction["group"], eviction["version"], eviction["kind"]) == ("policy", "v1", "Eviction")
    assert {r["name"] for r in core["resources"]} >= {"nodes", "pods", "pods/eviction", "events", "namespaces"}
    status, groups = api.call("GET", "/apis")
    assert {g["name"] for g in groups["groups"]} >= {"policy", "authorization.k8s.io", "authentication.k8s.io", "apps"}
    assert api.call("GET", "/openapi/v2")[0] == 404
    status, body = api.call("GET", "/api/v1/nodes?watch=1")
    assert status == 405 and body["reason"] == "MethodNotAllowed" and "watch" in body["message"]


def test_no_or_unknown_credentials_are_401_everywhere(api):
    for path in ("/version", "/api", "/api/v1/nodes", "/_standin/state"):
        for token in (None, "nope"):
            status, body = api.call("GET", path, token=token)
            assert status == 401 and body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                               "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert api.call("GET", "/api/v1/nodes", cert=True)[0] == 200


def test_a_denied_verb_is_403_with_the_rbac_message_and_ssar_says_no(api):
    api.server.access.set({SA: [{"verb": "delete", "group": "", "resource": "nodes"},
                                {"verb": "list", "group": "", "resource": "nodes"},
                                {"verb": "create", "group": "", "resource": "pods/eviction"}]})
    status, body = api.call("DELETE", "/api/v1/nodes/i-0ccc")
    assert status == 403 and body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == (f'nodes "i-0ccc" is forbidden: User "{SA}" cannot delete resource "nodes" in API group "" '
                               "at the cluster scope")
    assert body["details"] == {"name": "i-0ccc", "kind": "nodes"}
    assert api.state.node("i-0ccc") is not None
    status, body = api.call("GET", "/api/v1/nodes")
    assert status == 403 and body["message"] == (f'nodes is forbidden: User "{SA}" cannot list resource "nodes" in API group "" '
                                                 "at the cluster scope")
    status, body = api.call("POST", "/api/v1/namespaces/default/pods/web-1/eviction",
                            {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "default"}})
    assert status == 403 and body["message"] == (f'pods "web-1" is forbidden: User "{SA}" cannot create resource "pods/eviction" '
                                                 'in API group "" in the namespace "default"')
    assert api.call("GET", "/api/v1/nodes/i-0ccc")[0] == 200  # get is not denied
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}}
    status, body = api.call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
    assert status == 201 and body["status"]["allowed"] is False and body["status"]["reason"]
    review["spec"]["resourceAttributes"]["verb"] = "patch"
    assert api.call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)[1]["status"]["allowed"] is True
    status, body = api.call("POST", "/_standin/permissions", {})
    assert status == 200 and api.call("DELETE", "/api/v1/nodes/i-0ccc")[0] == 200


def test_a_merge_patch_with_a_stale_resource_version_is_a_conflict(api):
    node = api.call("GET", "/api/v1/nodes/i-0aaa")[1]
    stale = node["metadata"]["resourceVersion"]
    api.state.set_node_ready("i-0aaa", False)  # someone else writes
    status, body = api.call("PATCH", "/api/v1/nodes/i-0aaa",
                            {"metadata": {"resourceVersion": stale}, "spec": {"unschedulable": True}},
                            content_type="application/merge-patch+json")
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on nodes "i-0aaa": the object has been modified; '
                               "please apply your changes to the latest version and try again")
    assert "unschedulable" not in api.state.node("i-0aaa")["spec"]
    fresh = api.state.node("i-0aaa")["metadata"]["resourceVersion"]
    status, body = api.call("PATCH", "/api/v1/nodes/i-0aaa",
                            {"metadata": {"resourceVersion": fresh, "labels": {"a": "b", "pool": None}}, "spec": {"unschedulable": True}},
                            content_type="application/merge-patch+json")
    assert status == 200 and body["spec"]["unschedulable"] is True
    assert int(body["metadata"]["resourceVersion"]) > int(fresh)
    assert body["metadata"]["labels"]["a"] == "b" and "pool" not in body["metadata"]["labels"]
    status, body = api.call("PATCH", "/api/v1/nodes/i-0aaa", {"x": 1}, content_type="application/apply-patch+yaml")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    status, body = api.call("PATCH", "/api/v1/nodes/i-0aaa",
                            [{"op": "test", "path": "/metadata/labels/a", "value": "b"},
                             {"op": "add", "path": "/metadata/annotations/x", "value": "y"}],
                            content_type="application/json-patch+json")
    assert status == 200 and body["metadata"]["annotations"]["x"] == "y"


def test_delete_with_a_failing_precondition_is_a_conflict_and_keeps_the_node(api):
    node = api.state.node("i-0ccc")
    status, body = api.call("DELETE", "/api/v1/nodes/i-0ccc", {"kind": "DeleteOptions", "apiVersion": "v1",
                                                               "preconditions": {"uid": "not-its-uid"}})
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (f'Operation cannot be fulfilled on nodes "i-0ccc": Precondition failed: UID in precondition: '
                               f'not-its-uid, UID in object meta: {node["metadata"]["uid"]}')
    status, body = api.call("DELETE", "/api/v1/nodes/i-0ccc", {"preconditions": {"resourceVersion": "1"}})
    assert status == 409 and "ResourceVersion in precondition: 1" in body["message"]
    assert api.state.node("i-0ccc") is not None
    status, body = api.call("DELETE", "/api/v1/nodes/i-0ccc", {"preconditions": {"uid": node["metadata"]["uid"],
                                                                                 "resourceVersion": node["metadata"]["resourceVersion"]}})
    assert status == 200 and body["status"] == "Success"
    assert body["details"] == {"name": "i-0ccc", "kind": "nodes", "uid": node["metadata"]["uid"]}
    assert api.state.node("i-0ccc") is None
    status, body = api.call("DELETE", "/api/v1/nodes/i-0ccc")
    assert status == 404 and body["message"] == 'nodes "i-0ccc" not found' and body["details"] == {"name": "i-0ccc", "kind": "nodes"}


def test_a_pod_delete_with_another_uid_is_a_conflict_and_keeps_the_pod(api):
    pod = api.state.pod("default", "web-2")
    status, body = api.call("DELETE", "/api/v1/namespaces/default/pods/web-2",
                            {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-its-uid"}})
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == (f'Operation cannot be fulfilled on pods "web-2": Precondition failed: UID in precondition: '
                               f'not-its-uid, UID in object meta: {pod["metadata"]["uid"]}')
    assert api.state.pod("default", "web-2") is not None
    status, body = api.call("DELETE", "/api/v1/namespaces/default/pods/web-2",
                            {"preconditions": {"uid": pod["metadata"]["uid"]}, "gracePeriodSeconds": 5})
    assert status == 200 and body["kind"] == "Pod" and body["metadata"]["deletionGracePeriodSeconds"] == 5
    assert api.state.pod("default", "web-2") is None


def test_a_seeded_pod_carries_init_containers_overhead_and_volumes(api):
    api.state.load_json({"pods": [{"namespace": "default", "name": "big", "node": "i-0aaa", "requests": {"cpu": 0.25},
                                   "init_requests": [{"cpu": 1, "memory": 2 ** 29}, None], "overhead": {"cpu": "250m"},
                                   "volumes": [{"name": "scratch", "emptyDir": {}}]}]})
    spec = api.call("GET", "/api/v1/namespaces/default/pods/big")[1]["spec"]
    assert spec["containers"][0]["resources"] == {"requests": {"cpu": "250m"}}
    assert spec["initContainers"] == [{"name": "init-0", "image": "registry.k8s.io/pause:3.9",
                                       "resources": {"requests": {"cpu": "1", "memory": "512Mi"}}},
                                      {"name": "init-1", "image": "registry.k8s.io/pause:3.9", "resources": {}}]
    assert spec["overhead"] == {"cpu": "250m"} and spec["volumes"] == [{"name": "scratch", "emptyDir": {}}]


def test_a_seeded_pending_pod_carries_its_placement_constraints(api):
    api.state.load_json({"pods": [{"namespace": "ml", "name": "trainer", "node": None, "phase": "Pending",
                                   "node_selector": PLACEMENT["nodeSelector"], "affinity": PLACEMENT["affinity"],
                                   "tolerations": PLACEMENT["tolerations"]},
                                  {"namespace": "default", "name": "plain", "node": "i-0aaa"}]})
    pod = api.call("GET", "/api/v1/namespaces/ml/pods/trainer")[1]
    assert {k: pod["spec"][k] for k in PLACEMENT} == PLACEMENT
    assert "nodeName" not in pod["spec"]
    [scheduled] = pod["status"]["conditions"]
    assert (scheduled["type"], scheduled["status"], scheduled["reason"]) == ("PodScheduled", "False", "Unschedulable")
    # Without constraints the spec has none of the fields, as the API omits empty ones.
    plain = api.call("GET", "/api/v1/namespaces/default/pods/plain")[1]["spec"]
    assert not {"nodeSelector", "affinity", "tolerations"} & plain.keys()
    # The owner's sync writes a change of constraints, and nothing while they stay.
    pods = [{"namespace": "ml", "name": "trainer", "node_name": None, "phase": "Pending", "tolerations": PLACEMENT["tolerations"]}]
    assert api.state.sync(pods=pods) == 2  # trainer rewritten without selector and affinity, plain deleted
    assert not {"nodeSelector", "affinity"} & api.state.pod("ml", "trainer")["spec"].keys()
    assert api.state.sync(pods=pods) == 0
    pods[0]["node_selector"] = {"kscaler.io/pool": "gpu"}
    assert api.state.sync(pods=pods) == 1
    assert api.state.pod("ml", "trainer")["spec"]["nodeSelector"] == {"kscaler.io/pool": "gpu"}

def test_eviction_answers_as_the_real_subresource(api):
    evicted = []
    api.state.on_pod_evicted = lambda ns, name: evicted.append((ns, name))
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "default"}}
    status, answer = api.call("POST", "/api/v1/namespaces/default/pods/web-1/eviction", body)
    assert status == 429 and answer["reason"] == "TooManyRequests" and answer["code"] == 429
    assert answer["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert answer["details"]["causes"] == [{"reason": "DisruptionBudget",
                                            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]
    status, answer = api.call("POST", "/api/v1/namespaces/default/pods/nope/eviction",
                              dict(body, metadata={"name": "nope", "namespace": "default"}))
    assert status == 404 and answer["message"] == 'pods "nope" not found'
    api.state.set_pdb_disruptions_allowed("default", "web", 1)
    status, answer = api.call("POST", "/api/v1/namespaces/default/pods/web-1/eviction",
                              dict(body, apiVersion="policy/v1beta1"))
    assert status == 201 and answer["status"] == "Success"
    assert evicted == [("default", "web-1")] and api.state.pod("default", "web-1") is None
    pdb = api.state.pdb("default", "web")["status"]
    assert (pdb["disruptionsAllowed"], pdb["currentHealthy"], pdb["expectedPods"]) == (0, 1, 1)
    assert api.call("GET", "/api/v1/namespaces/default/pods/web-1")[0] == 404
    # A pending pod has disrupted already: no budget applies.
    api.state.add_pod("default", "web-3", "", "ReplicaSet", "web-5d8f", labels={"app": "web"}, phase="Pending")
    assert api.call("POST", "/api/v1/namespaces/default/pods/web-3/eviction",
                    dict(body, metadata={"name": "web-3"}))[0] == 201
    # Two budgets for one pod: the real subresource refuses with a 500.
    api.state.add_pdb("default", "web-too", {"app": "web"}, min_available=0)
    status, answer = api.call("POST", "/api/v1/namespaces/default/pods/web-2/eviction", dict(body, metadata={"name": "web-2"}))
    assert status == 500 and "reason" not in answer
    assert answer["message"] == "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    assert api.state.pod("default", "web-2") is not None
    status, answer = api.call("POST", "/api/v1/namespaces/default/pods/web-2/eviction", dict(body, metadata={"name": "web-1"}))
    assert status == 400 and answer["message"] == "name in URL does not match name in Eviction object"


def test_a_computed_budget_follows_its_pods(api):
    api.state.add_pod("batch", "job-1", "i-0aaa", "Job", "report", labels={"job": "report"})
    api.state.add_pod("batch", "job-2", "i-0bbb", "Job", "report", labels={"job": "report"})
    api.state.add_pod("batch", "job-3", "i-0ccc", "Job", "report", labels={"job": "report"}, ready=False)
    api.state.add_pdb("batch", "report", match_expressions=[{"key": "job", "operator": "In", "values": ["report"]}],
                      min_available=1)
    status = api.state.pdb("batch", "report")["status"]
    assert (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"], status["disruptionsAllowed"]) == (3, 2, 1, 1)
    body = {"apiVersion": "policy/v1", "kind": "Eviction"}
    # An unready pod may go while the budget is met, without using it up.
    assert api.call("POST", "/api/v1/namespaces/batch/pods/job-3/eviction", body)[0] == 201
    assert api.state.pdb("batch", "report")["status"]["disruptionsAllowed"] == 1
    assert api.call("POST", "/api/v1/namespaces/batch/pods/job-1/eviction", body)[0] == 201
    assert api.call("POST", "/api/v1/namespaces/batch/pods/job-2/eviction", body)[0] == 429
    status, listed = api.call("GET", "/apis/policy/v1/poddisruptionbudgets")
    assert status == 200 and listed["kind"] == "PodDisruptionBudgetList" and names(listed["items"]) == ["report", "web"]
    assert api.call("GET", "/apis/policy/v1/namespaces/batch/poddisruptionbudgets/nope")[1]["message"] == \
        'poddisruptionbudgets.policy "nope" not found'


def test_fault_injection_answers_delays_and_clears(api):
    faults = [{"method": "DELETE", "path_regex": "^/api/v1/nodes/", "status": 500, "body": "<html>not json", "times": 2},
              {"path_regex": "^/api/v1/pods", "delay_seconds": 1.5, "times": 1}]
    status, body = api.call("POST", "/_standin/faults", faults)
    assert status == 200 and body["added"] == 2
    for _ in range(2):
        assert api.call("DELETE", "/api/v1/nodes/i-0ccc") == (500, "<html>not json")
    assert api.state.node("i-0ccc") is not None
    assert api.call("GET", "/api/v1/nodes/i-0ccc")[0] == 200  # other methods pass
    started = time.monotonic()
    assert api.call("GET", "/api/v1/pods")[0] == 200
    assert time.monotonic() - started >= 1.4
    started = time.monotonic()
    assert api.call("GET", "/api/v1/pods")[0] == 200
    assert time.monotonic() - started < 1.4  # used up
    assert api.call("DELETE", "/api/v1/nodes/i-0ccc")[0] == 200
    # A client that gives up mid-request leaves the server answering the next one.
    api.call("POST", "/_standin/faults", [{"path_regex": "^/api/v1/nodes$", "delay_seconds": 2}])
    with pytest.raises((TimeoutError, OSError)):
        api.call("GET", "/api/v1/nodes", timeout=0.5)
    assert api.call("GET", "/api/v1/namespaces")[0] == 200
    api.call("POST", "/_standin/faults", [{"path_regex": ".", "status": 503, "body": "", "times": None}])
    assert api.call("GET", "/api/v1/nodes")[0] == 503 and api.call("GET", "/api/v1/pods")[0] == 503
    assert api.call("GET", "/_standin/state")[0] == 200  # never faulted: a test can always clear
    assert api.call("DELETE", "/_standin/faults") == (200, {"faults": []})
    assert api.call("GET", "/api/v1/nodes")[0] == 200


def test_events_are_created_and_listed(api):
    created = []
    api.state.on_event_created = created.append
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "i-0aaa.", "namespace": "default"},
             "involvedObject": {"kind": "Node", "name": "i-0aaa", "uid": api.state.node("i-0aaa")["metadata"]["uid"]},
             "reason": "ScaleDown", "message": "draining i-0aaa", "type": "Normal", "source": {"component": "kscaler"},
             "reportingComponent": "kscaler", "count": 1}
    status, stored = api.call("POST", "/api/v1/namespaces/default/events", event)
    assert status == 201 and stored["metadata"]["name"].startswith("i-0aaa.") and stored["metadata"]["uid"]
    assert created and created[0]["reason"] == "ScaleDown"
    named = dict(event, metadata={"name": "k3s-server.1", "namespace": "kube-system"},
                 involvedObject={"kind": "Node", "name": "k3s-server"})
    assert api.call("POST", "/api/v1/namespaces/kube-system/events", named)[0] == 201
    status, body = api.call("POST", "/api/v1/namespaces/kube-system/events", named)
    assert status == 409 and body["reason"] == "AlreadyExists"
    status, body = api.call("POST", "/api/v1/namespaces/default/events", named)
    assert status == 400 and "does not match the namespace" in body["message"]
    assert names(api.call("GET", "/api/v1/events")[1]["items"]) == sorted([stored["metadata"]["name"], "k3s-server.1"])
    assert names(api.call("GET", "/api/v1/namespaces/kube-system/events")[1]["items"]) == ["k3s-server.1"]
    status, listed = api.call("GET", "/api/v1/events?fieldSelector=involvedObject.name%3Di-0aaa,reason%3DScaleDown")
    assert status == 200 and listed["kind"] == "EventList" and [e["message"] for e in listed["items"]] == ["draining i-0aaa"]
    assert api.call("GET", "/api/v1/events?fieldSelector=involvedObject.name%3Dnone")[1]["items"] == []


def test_label_and_field_selectors(api):
    def pods(query):
        status, body = api.call("GET", f"/api/v1/pods?{query}")
        assert status == 200, body
        return names(body["items"])

    def nodes(query):
        return names(api.call("GET", f"/api/v1/nodes?{query}")[1]["items"])

    assert nodes("labelSelector=pool%3Dworkers,kubernetes.io%2Fhostname!%3Di-0aaa") == ["i-0bbb", "i-0ccc"]
    assert nodes("labelSelector=node-role.kubernetes.io%2Fcontrol-plane") == ["k3s-server"]
    assert nodes("labelSelector=!pool") == ["k3s-server"]
    assert nodes("labelSelector=kubernetes.io%2Fhostname%20in%20(i-0aaa,i-0ccc)") == ["i-0aaa", "i-0ccc"]
    assert nodes("fieldSelector=metadata.name%3Di-0bbb") == ["i-0bbb"]
    api.state.set_node_unschedulable("i-0bbb")
    assert nodes("fieldSelector=spec.unschedulable%3Dtrue") == ["i-0bbb"]
    assert pods("fieldSelector=spec.nodeName%3Di-0aaa") == ["node-exporter-aaa", "web-1"]
    assert pods("fieldSelector=spec.nodeName!%3Di-0aaa,spec.nodeName!%3Dk3s-server") == ["node-exporter-bbb", "web-2"]
    api.state.add_pod("default", "done", "i-0aaa", "Job", "j", phase="Succeeded")
    assert pods("fieldSelector=spec.nodeName%3Di-0aaa,status.phase!%3DSucceeded,status.phase!%3DFailed") == \
        ["node-exporter-aaa", "web-1"]
    assert pods("fieldSelector=metadata.name%3Dweb-2&labelSelector=app%3Dweb") == ["web-2"]
    assert names(api.call("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb")[1]["items"]) == ["web-1", "web-2"]
    status, body = api.call("GET", "/api/v1/pods?fieldSelector=spec.color%3Dred")
    assert status == 400 and body["reason"] == "BadRequest" and "spec.color" in body["message"]
    assert api.call("GET", "/api/v1/pods?labelSelector=a%3D%3D%3Db")[0] == 400


def test_lists_page_with_limit_and_continue(api):
    status, first = api.call("GET", "/api/v1/pods?limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["metadata"]["remainingItemCount"] == 3
    seen = names(first["items"])
    token = first["metadata"]["continue"]
    while token:
        page = api.call("GET", f"/api/v1/pods?limit=2&continue={token}")[1]
        seen += names(page["items"])
        token = page["metadata"].get("continue")
    assert sorted(seen) == names(api.state.pods()) and len(seen) == 5
    assert "kind" not in first["items"][0]  # list items carry no kind, as the real server's


def test_control_endpoints_seed_and_read_the_store(api):
    status, state = api.call("POST", "/_standin/state", {"nodes": [{"name": "i-0new", "provider_id": "aws:///us-east-1a/i-0new",
                                                                    "ready": False, "labels": {"pool": "w"}}],
                                                         "pods": [], "pdbs": []})
    assert status == 200 and names(state["nodes"]) == ["i-0new"] and state["pods"] == [] and state["pdbs"] == []
    node = api.state.node("i-0new")
    assert node["spec"]["providerID"] == "aws:///us-east-1a/i-0new" and node["status"]["conditions"][0]["status"] == "False"
    round_trip = api.call("GET", "/_standin/state")[1]
    round_trip["nodes"][0]["metadata"]["labels"]["x"] = "y"
    assert api.call("POST", "/_standin/state", {"nodes": round_trip["nodes"]})[0] == 200
    assert api.state.node("i-0new")["metadata"]["labels"]["x"] == "y"
    assert api.call("POST", "/_standin/state", "not json")[0] == 400
    assert api.call("GET", "/_standin/nope")[0] == 404


def test_the_owners_sync_writes_only_changes_and_keeps_what_clients_set(api):
    nodes = [{"name": "i-0aaa", "provider_id": "aws:///us-east-1a/i-0aaa", "labels": {"pool": "workers"}},
             {"name": "i-0ddd", "provider_id": "aws:///us-east-1a/i-0ddd", "ready": False}]
    api.call("PATCH", "/api/v1/nodes/i-0aaa", {"spec": {"unschedulable": True}, "metadata": {"annotations": {"k": "v"}}},
             content_type="application/strategic-merge-patch+json")
    assert api.state.sync(nodes=nodes) == 4  # i-0aaa kept as is, i-0ddd added, three others deleted
    assert names(api.state.nodes()) == ["i-0aaa", "i-0ddd"]
    version = api.state.resource_version
    assert api.state.sync(nodes=nodes) == 0 and api.state.resource_version == version
    node = api.state.node("i-0aaa")
    assert node["spec"]["unschedulable"] is True and node["metadata"]["annotations"] == {"k": "v"}
    nodes[1]["ready"] = True
    assert api.state.sync(nodes=nodes) == 1
    assert api.state.node("i-0ddd")["status"]["conditions"][0]["status"] == "True"
    pods = [{"namespace": "default", "name": "web-1", "node_name": "i-0aaa", "owner_kind": "ReplicaSet",
             "owner_name": "web-5d8f", "labels": {"app": "web"}, "requests": {"cpu": 0.5, "memory": 2 ** 30}}]
    assert api.state.sync(pods=pods) == 4 and names(api.state.pods()) == ["web-1"]
    assert api.state.sync(pods=pods) == 0


def test_a_patch_and_delete_hook_see_client_writes(api):
    seen = []
    api.state.on_node_patched = lambda name, node: seen.append((name, node["spec"].get("unschedulable")))
    api.state.on_pod_deleted = lambda ns, name: seen.append((ns, name))
    api.call("PATCH", "/api/v1/nodes/i-0bbb", {"spec": {"unschedulable": True}}, content_type="application/merge-patch+json")
    status, pod = api.call("DELETE", "/api/v1/namespaces/default/pods/web-2")
    assert status == 200 and pod["metadata"]["deletionTimestamp"] and pod["metadata"]["name"] == "web-2"
    assert seen == [("i-0bbb", True), ("default", "web-2")]


def test_the_request_log_names_no_credentials(tmp_path):
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        state = kubeapi.KubeState()
        credentials = kubeapi.Credentials.create(tmp_path / "c")
        server = kubeapi.KubeAPIServer(state, credentials, verbose=True, log=log).start()
        try:
            context = ssl.create_default_context(cafile=credentials.ca_file)
            for token in (credentials.token, "wrong-token"):
                connection = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=20, context=context)
                connection.request("GET", "/api/v1/nodes", headers={"Authorization": f"Bearer {token}"})
                connection.getresponse().read()
                connection.close()
        finally:
            server.stop()
    text = log_path.read_text()
    assert "GET /api/v1/nodes 200" in text and "GET /api/v1/nodes 401" in text
    assert credentials.token not in text and "wrong-token" not in text


def test_requests_are_served_concurrently(api):
    """A delayed request does not hold up others (each connection has its own thread)."""
    api.call("POST", "/_standin/faults", [{"path_regex": "^/api/v1/nodes$", "delay_seconds": 3}])
    slow = threading.Thread(target=lambda: api.call("GET", "/api/v1/nodes"))
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert api.call("GET", "/version")[0] == 200
    assert time.monotonic() - started < 2.5
    slow.join(timeout=30)


def test_a_stopped_server_answers_nothing_even_on_a_kept_alive_connection(tmp_path):
    s = StandIn(tmp_path)
    connection = http.client.HTTPSConnection("127.0.0.1", s.server.port, timeout=20, context=s.client_context)
    try:
        connection.request("GET", "/version", headers={"Authorization": f"Bearer {s.token}"})
        assert connection.getresponse().read()
        s.stop()
        with pytest.raises((ConnectionError, OSError, http.client.HTTPException)):
            connection.request("GET", "/version", headers={"Authorization": f"Bearer {s.token}"})
            connection.getresponse().read()
    finally:
        connection.close()
