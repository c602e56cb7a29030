"""infra/kubernetes/monitoring/: every manifest is accepted by the real kubectl (client dry run)
and by the Kubernetes 1.33 schema, its images are pinned, Prometheus's scrape config passes
promtool and collects every metric kscaler's default queries read, with the labels they join on,
and Prometheus answers only with basic auth."""

import json
import os
import re
import subprocess
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import REPO, which

MONITORING = REPO / "infra/kubernetes/monitoring"
FILES = sorted(MONITORING.glob("*.yaml"))
KUBERNETES_VERSION = "1.33.0"  # the newest kubectl the machine image ships


def documents(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_documents():
    return [d for path in FILES for d in documents(path)]


def by_kind(kind, name):
    [found] = [d for d in all_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


# ---------------------------------------------------------------------------------------------
# kubectl apply --dry-run=client


# A stand-in for the API server's discovery endpoints only (/version, /api, /apis and the group
# versions the manifests use): kubectl needs them to map a manifest's kind to its resource, even
# for a client dry run. Every object GET is a 404, so kubectl plans a create; nothing is stored.
DISCOVERY = {
    ("", "v1"): [("namespaces", "Namespace", False), ("serviceaccounts", "ServiceAccount", True),
                 ("services", "Service", True), ("configmaps", "ConfigMap", True), ("secrets", "Secret", True)],
    ("apps", "v1"): [("deployments", "Deployment", True), ("daemonsets", "DaemonSet", True)],
    ("rbac.authorization.k8s.io", "v1"): [("clusterroles", "ClusterRole", False),
                                          ("clusterrolebindings", "ClusterRoleBinding", False)],
}


class Discovery(BaseHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        Discovery.requests.append(("GET", path))
        if path == "/version":
            return self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        if path == "/api":
            return self.reply(200, {"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                       "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                      for (g, v) in DISCOVERY if g]
            return self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        for (group, version), kinds in DISCOVERY.items():
            prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
            if path == prefix:
                return self.reply(200, {"kind": "APIResourceList", "groupVersion": f"{group}/{version}".lstrip("/"),
                                        "resources": [{"name": n, "singularName": "", "namespaced": ns, "kind": k,
                                                       "verbs": ["create", "get", "list", "patch"]}
                                                      for n, k, ns in kinds]})
        self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def do_POST(self):
        Discovery.requests.append(("POST", self.path))
        self.reply(500, {"kind": "Status", "status": "Failure", "message": "a client dry run must not write"})

    do_PATCH = do_PUT = do_DELETE = do_POST


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Discovery)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
        "users": [{"name": "x", "user": {"token": "not-a-secret"}}]}))
    yield path
    server.shutdown()


def kubectl_dry_run(kubeconfig, *files):
    # --validate=false: the stand-in has no OpenAPI schemas; the schema test below checks them.
    return subprocess.run([which("kubectl"), "--kubeconfig", str(kubeconfig), "apply", "--dry-run=client",
                           "--validate=false", "-o", "name", *[a for f in files for a in ("-f", str(f))]],
                          capture_output=True, text=True, timeout=120)


def test_kubectl_accepts_every_manifest(kubeconfig):
    Discovery.requests.clear()
    result = kubectl_dry_run(kubeconfig, MONITORING)
    assert result.returncode == 0, result.stderr
    expected = {f"{d['kind'].lower()}/{d['metadata']['name']}" for d in all_documents()}
    printed = {line.split("/", 1)[0].split(".")[0] + "/" + line.split("/", 1)[1] for line in result.stdout.split()}
    assert printed == expected
    assert not [r for r in Discovery.requests if r[0] != "GET"]


def test_kubectl_dry_run_refuses_a_broken_manifest(kubeconfig, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((MONITORING / "30-prometheus.yaml").read_text().replace("kind: Deployment", "kind: Deploymnt"))
    result = kubectl_dry_run(kubeconfig, broken)
    assert result.returncode != 0
    assert "Deploymnt" in result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(path):
    import kubernetes_validate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for document in documents(path):
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_schema_check_refuses_an_unknown_field():
    import kubernetes_validate
    service = by_kind("Service", "prometheus")
    broken = {**service, "spec": {**service["spec"], "nodeport": 30090}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def containers(document):
    return document["spec"]["template"]["spec"]["containers"]


def test_images_are_pinned_to_a_version():
    images = [c["image"] for d in all_documents() if d["kind"] in ("Deployment", "DaemonSet") for c in containers(d)]
    assert len(images) == 3
    for image in images:
        assert re.fullmatch(r"[a-z0-9./-]+:v[0-9]+\.[0-9]+\.[0-9]+(@sha256:[0-9a-f]{64})?", image), image


def test_everything_lives_in_the_monitoring_namespace():
    for document in all_documents():
        if document["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert document["metadata"]["namespace"] == "monitoring", document["metadata"]["name"]


# ---------------------------------------------------------------------------------------------
# What Prometheus collects, against kscaler's default queries


def scrape_config():
    return yaml.safe_load(by_kind("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])


def default_query_metrics():
    """The metric names in the default PromQL of Sources/KScalerCore/Signals.swift."""
    source = (REPO / "Sources/KScalerCore/Signals.swift").read_text()
    names = set(re.findall(r"\b((?:kube|node)_[a-zA-Z_]+)\b", source))
    names -= {"node_ready"}  # a signal's name (rawValue), not a metric
    return names


# What each exporter, as configured here, exposes of them (kube-state-metrics v2 metric names per
# --resources; node-exporter's default collectors cpu, meminfo, uname).
KUBE_STATE_METRICS = {
    "pods": {"kube_pod_status_unschedulable", "kube_pod_container_resource_requests", "kube_pod_status_phase",
             "kube_pod_info"},
    "nodes": {"kube_node_info", "kube_node_status_condition", "kube_node_status_allocatable", "kube_node_labels"},
}
NODE_EXPORTER = {"node_cpu_seconds_total", "node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes",
                 "node_uname_info"}


def test_the_default_queries_read_only_metrics_the_manifests_collect():
    wanted = default_query_metrics()
    assert {"kube_pod_status_unschedulable", "kube_node_status_condition", "node_cpu_seconds_total"} <= wanted
    [ksm] = containers(by_kind("Deployment", "kube-state-metrics"))
    [resources] = [a.split("=", 1)[1] for a in ksm["args"] if a.startswith("--resources=")]
    collected = set().union(*(KUBE_STATE_METRICS[r] for r in resources.split(","))) | NODE_EXPORTER
    assert wanted <= collected, wanted - collected
    # Sizes without typing: the instance-type label reaches kube_node_labels (Signals.swift's
    # allocatableByInstanceType joins on label_node_kubernetes_io_instance_type).
    assert "--metric-labels-allowlist=nodes=[node.kubernetes.io/instance-type]" in ksm["args"]
    jobs = {job["job_name"]: job for job in scrape_config()["scrape_configs"]}
    assert set(jobs) == {"kube-state-metrics", "node-exporter"}
    # kscaler joins kube_* series on node, namespace and pod as kube-state-metrics labels them.
    assert jobs["kube-state-metrics"]["honor_labels"] is True
    [target] = jobs["kube-state-metrics"]["static_configs"][0]["targets"]
    service = by_kind("Service", "kube-state-metrics")
    assert target == f"kube-state-metrics.monitoring.svc:{service['spec']['ports'][0]['port']}"
    # node-exporter on each node's address at the DaemonSet's host port.
    [exporter] = containers(by_kind("DaemonSet", "node-exporter"))
    assert by_kind("DaemonSet", "node-exporter")["spec"]["template"]["spec"]["hostNetwork"] is True
    port = exporter["ports"][0]["hostPort"]
    relabel = jobs["node-exporter"]["relabel_configs"][0]
    assert relabel["target_label"] == "__address__" and relabel["replacement"] == f"${{1}}:{port}"


def test_prometheus_may_discover_nodes_and_kube_state_metrics_may_list_pods_and_nodes():
    prometheus = by_kind("ClusterRole", "prometheus")["rules"]
    assert prometheus == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]}]
    ksm = by_kind("ClusterRole", "kube-state-metrics")["rules"]
    assert ksm == [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["list", "watch"]}]


def test_promtool_accepts_the_scrape_config(tmp_path):
    """Debian's promtool (2.42) is built without Kubernetes discovery ("field kubernetes_sd_configs
    not found"): the node role stanza is checked here, and promtool checks the rest with a static
    target in its place. The relabelling is applied to a discovered node address by hand."""
    config = scrape_config()
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "node-exporter"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "node"}]
    job["static_configs"] = [{"targets": ["10.0.1.5:10250"]}]
    relabel = job["relabel_configs"][0]
    # Prometheus anchors the regex at both ends and expands ${1} from the source labels' value.
    address = re.fullmatch(relabel["regex"], "10.0.1.5:10250").expand(relabel["replacement"].replace("${1}", r"\1"))
    assert address == "10.0.1.5:9100"
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([which("promtool"), "check", "config", "--syntax-only", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_asks_for_basic_auth_from_a_secret_the_repository_does_not_hold(tmp_path):
    [container] = containers(by_kind("Deployment", "prometheus"))
    assert "--web.config.file=/etc/prometheus/web/web.yml" in container["args"]
    volumes = {v["name"]: v for v in by_kind("Deployment", "prometheus")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["web"]["secret"]["secretName"] == "prometheus-web-config"
    assert not [d for d in all_documents() if d["kind"] == "Secret"]
    # The README's recipe for the Secret's web.yml, with a hash made here, passes promtool.
    readme = (REPO / "infra/README.md").read_text()
    assert "kubectl -n monitoring create secret generic prometheus-web-config --from-file=web.yml" in readme
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt  # bcrypt through libxcrypt; deprecated in Python, fine on 3.11
        digest = crypt.crypt("test-password", crypt.mksalt(crypt.METHOD_BLOWFISH))
    (tmp_path / "web.yml").write_text(yaml.safe_dump({"basic_auth_users": {"kscaler": digest}}))
    result = subprocess.run([which("promtool"), "check", "web-config", str(tmp_path / "web.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_is_reachable_on_the_node_port_the_stack_opens():
    [port] = by_kind("Service", "prometheus")["spec"]["ports"]
    assert by_kind("Service", "prometheus")["spec"]["type"] == "NodePort"
    assert port["nodePort"] == 30090 and port["port"] == 9090


def test_readme_prometheus_config_uses_the_auth_keys_the_binary_accepts():
    """The walk-through's prometheus: block, against the schema in ConfigSettings.swift."""
    settings = (REPO / "Sources/KScalerCore/ConfigSettings.swift").read_text()
    assert 'path: ["prometheus", "auth"], shape: .section(["type", "username", "password_file", "token_file", "region"])' in settings
    assert '"basic": ["username", "password_file"]' in settings
    readme = (REPO / "infra/README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    configs = [yaml.safe_load(b) for b in blocks if "prometheus:" in b and "auth:" in b]
    assert configs, "the walk-through shows a config with prometheus.auth"
    for config in configs:
        prometheus = config["prometheus"]
        assert set(prometheus) <= {"url", "auth", "timeout", "staleness"}
        auth = prometheus["auth"]
        assert auth["type"] == "basic" and set(auth) == {"type", "username", "password_file"}
        assert re.fullmatch(r"http://[^/]+:30090", prometheus["url"])


# ---------------------------------------------------------------------------------------------
# kscaler's default queries against a real Prometheus running this scrape config


# What kube-state-metrics v2 (--resources=nodes,pods) and node-exporter expose for a cluster of a
# server and one worker with one running pod and one unschedulable pod, in their label shapes.
KSM_EXPOSITION = """\
kube_node_info{node="i-0aaa",provider_id="aws:///eu-west-1a/i-0aaa",kernel_version="6.1"} 1
kube_node_info{node="i-0bbb",provider_id="aws:///eu-west-1b/i-0bbb",kernel_version="6.1"} 1
kube_node_status_condition{node="i-0aaa",condition="Ready",status="true"} 1
kube_node_status_condition{node="i-0aaa",condition="Ready",status="false"} 0
kube_node_status_condition{node="i-0bbb",condition="Ready",status="true"} 1
kube_node_status_condition{node="i-0bbb",condition="Ready",status="false"} 0
kube_node_status_allocatable{node="i-0aaa",resource="cpu",unit="core"} 2
kube_node_status_allocatable{node="i-0bbb",resource="cpu",unit="core"} 2
kube_node_status_allocatable{node="i-0aaa",resource="memory",unit="byte"} 8e9
kube_node_status_allocatable{node="i-0bbb",resource="memory",unit="byte"} 8e9
kube_pod_info{namespace="default",pod="web-1",node="i-0bbb",created_by_kind="ReplicaSet",uid="u1"} 1
kube_pod_info{namespace="default",pod="web-2",node="",created_by_kind="ReplicaSet",uid="u2"} 1
kube_pod_status_phase{namespace="default",pod="web-1",phase="Running",uid="u1"} 1
kube_pod_status_phase{namespace="default",pod="web-2",phase="Pending",uid="u2"} 1
kube_pod_status_unschedulable{namespace="default",pod="web-2",uid="u2"} 1
kube_pod_container_resource_requests{namespace="default",pod="web-1",container="c",node="i-0bbb",resource="cpu",unit="core"} 1
kube_pod_container_resource_requests{namespace="default",pod="web-2",container="c",node="",resource="cpu",unit="core"} 0.5
kube_pod_container_resource_requests{namespace="default",pod="web-1",container="c",node="i-0bbb",resource="memory",unit="byte"} 2e9
kube_pod_container_resource_requests{namespace="default",pod="web-2",container="c",node="",resource="memory",unit="byte"} 1e9
"""


def default_queries(binary, tmp_path):
    """signal name -> PromQL, as `kscaler config check` prints the defaults."""
    config = tmp_path / "config.yaml"
    config.write_text("cluster_id: demo\nregion: eu-west-1\ntable: kscaler\nprometheus: {url: 'http://127.0.0.1:9'}\n"
                      "workers: {launch_template: {name: kscaler-demo-general}, instance_types: [t3.large],"
                      " subnets: [subnet-0aaa1111bbbb2222c], sizes: {t3.large: {cpu: 2, memory: 8Gi}}}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSCALER_")}
    result = subprocess.run([str(binary), "config", "check", "--config", str(config)], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return {m.group(1): m.group(2) for m in re.finditer(r"^signals\.(\w+)\s+(.*?)\s+default$", result.stdout, re.M)}


class Exporter(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)


def serve(text):
    handler = type("Handler", (Exporter,), {"body": text.encode()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_default_queries_answer_from_what_this_scrape_config_collects(tmp_path):
    binary = next((p for p in (REPO / ".build/release/kscaler", REPO / ".build/debug/kscaler") if p.exists()), None)
    if binary is None:
        pytest.skip("no kscaler binary in .build/ to print its default queries (swift build -c release --product kscaler)")
    import socket
    import time
    import urllib.parse
    import urllib.request
    queries = default_queries(binary, tmp_path)
    assert {"unschedulable_pods", "node_ready", "pods_per_node", "cpu_utilization"} <= set(queries)
    node_exporter = ('node_cpu_seconds_total{cpu="0",mode="idle"} 100\nnode_cpu_seconds_total{cpu="0",mode="user"} 50\n'
                     'node_memory_MemAvailable_bytes 4e9\nnode_memory_MemTotal_bytes 8e9\n'
                     'node_uname_info{nodename="i-0bbb",release="6.1"} 1\n')
    ksm, node = serve(KSM_EXPOSITION), serve(node_exporter)
    config = scrape_config()
    config["global"]["scrape_interval"] = "1s"
    for job in config["scrape_configs"]:
        if job["job_name"] == "kube-state-metrics":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{ksm.server_port}"]}]
        else:
            # Debian's Prometheus has no Kubernetes discovery: one static node, as discovery would
            # give it after the address rewrite, with the node label the relabelling adds.
            job.pop("kubernetes_sd_configs")
            job.pop("relabel_configs")
            job["static_configs"] = [{"targets": [f"127.0.0.1:{node.server_port}"], "labels": {"node": "i-0bbb"}}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prometheus = subprocess.Popen([which("prometheus"), f"--config.file={tmp_path}/prometheus.yml",
                                   f"--storage.tsdb.path={tmp_path}/data", f"--web.listen-address=127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(promql):
        url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        return json.load(urllib.request.urlopen(url, timeout=5))["data"]["result"]

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if query("count(up == 1)") and query("count(up == 1)")[0]["value"][1] == "2":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus did not scrape both exporters"
            time.sleep(0.2)
        answers = {name: query(promql) for name, promql in queries.items() if not name.endswith("_window_max")}
        assert float(answers["unschedulable_pods"][0]["value"][1]) == 1
        assert float(answers["pending_cpu_requests"][0]["value"][1]) == 0.5
        assert float(answers["pending_memory_requests"][0]["value"][1]) == 1e9
        # Requested over allocatable on Ready nodes named like instances: 1 core of 4, 2 GB of 16.
        assert float(answers["cpu_utilization"][0]["value"][1]) == pytest.approx(0.25)
        assert float(answers["memory_utilization"][0]["value"][1]) == pytest.approx(0.125)
        ready = {r["metric"]["node"]: (r["metric"]["provider_id"], r["value"][1]) for r in answers["node_ready"]}
        assert ready == {"i-0aaa": ("aws:///eu-west-1a/i-0aaa", "1"), "i-0bbb": ("aws:///eu-west-1b/i-0bbb", "1")}
        pods = {r["metric"]["node"]: r["value"][1] for r in answers["pods_per_node"]}
        assert pods == {"i-0aaa": "0", "i-0bbb": "1"}
        # The usage-based join (node_* on instance, node_uname_info's nodename) finds the worker.
        usage = query('1 - sum(node_memory_MemAvailable_bytes and on(instance) node_uname_info{nodename=~"i-[0-9a-f]+"})'
                      ' / sum(node_memory_MemTotal_bytes and on(instance) node_uname_info{nodename=~"i-[0-9a-f]+"})')
        assert float(usage[0]["value"][1]) == pytest.approx(0.5)
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        ksm.shutdown()
        node.shutdown()
