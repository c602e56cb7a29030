#!/usr/bin/env python3
"""The simulated cluster's kube-state-metrics and node-exporter: the one exposition the Swift
tests, the benchmark and the sandbox all serve (Python stdlib only, so any python3 runs it).

Series carry the names, label names and jobs of kube-state-metrics v2 and node-exporter, against
which kscaler's default PromQL (Sources/KScalerCore/Signals.swift) is checked through a real
Prometheus (Tests/PrometheusTests/DefaultQueriesTests.swift). Prometheus discovers the targets
through http_sd at /sd, or scrapes /kube-state-metrics/metrics as a static target:
  /kube-state-metrics/metrics     job="kube-state-metrics", one target per kube-state-metrics pod
  /node-exporter/<node>/metrics   job="node-exporter", instance="<node ip>:9100" (nodes with node-exporter data)

A cluster is a `Cluster` of `Node`s and `Pod`s, taken afresh on every scrape from a callable:
the sandbox's simulation builds it from its state (cluster.py); as a process (below) it is one of
the fixed clusters whose answers the Swift tests know, or a description in a JSON file re-read
on every scrape, which a test or the benchmark rewrites between scenarios:

    {"workers": [{"id": "i-0abc", "ready": true, "cpu": 2, "memory": 8589934592, "instance_type": "t3.large",
                  "pods": [{"cpu": 0.1, "memory": 67108864}]}],
     "pending": [{"cpu": 1.5, "memory": 2147483648}],
     "kube_state_metrics": "up"}          # or "empty" (answers, no series) or "down" (503)

Usage: exporter.py (--scenario NAME | --cluster-file FILE) [--port N] [--lifetime S] [--exit-on-stdin-eof]
Prints one JSON line {"port": N, "targets": M} on stdout once listening on 127.0.0.1; exits by
itself after --lifetime seconds, and with --exit-on-stdin-eof as soon as stdin closes (the
process that started it went away).
"""
import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIB = 1024 ** 3
MIB = 1024 ** 2
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


@dataclass
class Node:
    name: str
    provider_id: str
    ip: str
    ready: str  # the Ready condition's status: "true", "false" or "unknown"
    cpu: float  # allocatable cores
    memory: float  # allocatable bytes
    # node-exporter: per CPU, the seconds spent {"idle": s, "user": s, "system": s}; None = no node-exporter target
    cpu_seconds: list | None = None
    memory_total: float = 0
    memory_available: float = 0
    instance_type: str = ""  # its node.kubernetes.io/instance-type label; "" = none


@dataclass
class Pod:
    namespace: str
    name: str
    node: str  # "" = not scheduled
    kind: str  # created_by_kind
    owner: str  # created_by_name
    phase: str
    unschedulable: bool  # its PodScheduled condition is False/Unschedulable
    containers: list  # [(name, cpu cores, memory bytes)]; a request of 0 has no series

    @property
    def uid(self):
        return f"uid-{self.namespace}-{self.name}"


@dataclass
class Cluster:
    nodes: list = field(default_factory=list)  # registered nodes, control plane included
    pods: list = field(default_factory=list)
    kube_state_metrics: str = "up"  # "up", "empty" (answers with no series) or "down" (503)
    # One kube-state-metrics target per pod: two during a rollout, every series then comes twice.
    kube_state_metrics_pods: tuple = ("10.42.0.7:8080",)


# MARK: exposition

def labels(**pairs):
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def number(value):
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_kube_state_metrics(cluster):
    out = []

    def family(name, help_text, rows):
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out.extend(f"{name}{labels(**lbl)} {number(value)}" for lbl, value in rows)

    nodes, pods = cluster.nodes, cluster.pods
    family("kube_node_info", "Information about a cluster node.", [
        (dict(node=n.name, kernel_version="6.1.0-21-cloud-amd64", os_image="Debian GNU/Linux 12 (bookworm)",
              container_runtime_version="containerd://1.7.11-k3s2", kubelet_version="v1.29.4+k3s1",
              kubeproxy_version="v1.29.4+k3s1", provider_id=n.provider_id, pod_cidr="",
              system_uuid=f"ec2-{n.name}", internal_ip=n.ip), 1) for n in nodes])
    # As kube-state-metrics v2 with --metric-labels-allowlist=nodes=[node.kubernetes.io/instance-type]:
    # a series per node, the label only where the node carries it.
    family("kube_node_labels", "Kubernetes labels converted to Prometheus labels.", [
        (dict(node=n.name, **({"label_node_kubernetes_io_instance_type": n.instance_type} if n.instance_type else {})), 1)
        for n in nodes])
    family("kube_node_status_condition", "The condition of a cluster node.", [
        (dict(node=n.name, condition=condition, status=status),
         1 if status == (n.ready if condition == "Ready" else "false") else 0)
        for n in nodes for condition in CONDITIONS for status in ("true", "false", "unknown")])
    family("kube_node_status_allocatable", "The allocatable for different resources of a node.", [
        row for n in nodes for row in (
            (dict(node=n.name, resource="cpu", unit="core"), n.cpu),
            (dict(node=n.name, resource="memory", unit="byte"), n.memory),
            (dict(node=n.name, resource="pods", unit="integer"), 110))])
    family("kube_pod_info", "Information about pod.", [
        (dict(namespace=p.namespace, pod=p.name, uid=p.uid, host_ip="", pod_ip="", node=p.node,
              created_by_kind=p.kind, created_by_name=p.owner, priority_class="", host_network="false"), 1) for p in pods])
    family("kube_pod_status_phase", "The pods current phase.", [
        (dict(namespace=p.namespace, pod=p.name, uid=p.uid, phase=phase), 1 if phase == p.phase else 0)
        for p in pods for phase in PHASES])
    # As kube-state-metrics: a series only for pods whose PodScheduled condition is False/Unschedulable.
    family("kube_pod_status_unschedulable", "Describes the unschedulable status for the pod.", [
        (dict(namespace=p.namespace, pod=p.name, uid=p.uid), 1) for p in pods if p.unschedulable])
    family("kube_pod_container_resource_requests", "The number of requested request resource by a container.", [
        (dict(namespace=p.namespace, pod=p.name, uid=p.uid, container=container, node=p.node, resource=resource, unit=unit), amount)
        for p in pods for container, cpu, memory in p.containers
        for resource, unit, amount in (("cpu", "core", cpu), ("memory", "byte", memory)) if amount])
    return "\n".join(out) + "\n"


def render_node_exporter(node):
    out = ["# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.",
           "# TYPE node_cpu_seconds_total counter"]
    for cpu, seconds in enumerate(node.cpu_seconds):
        for mode in ("idle", "user", "system"):
            out.append(f"node_cpu_seconds_total{labels(cpu=str(cpu), mode=mode)} {number(seconds[mode])}")
    out += ["# HELP node_uname_info Labeled system information as provided by the uname system call.",
            "# TYPE node_uname_info gauge",
            f"node_uname_info{labels(domainname='(none)', machine='x86_64', nodename=node.name, release='6.1.0-21-cloud-amd64', sysname='Linux', version='#1 SMP Debian')} 1",
            "# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.",
            "# TYPE node_memory_MemTotal_bytes gauge",
            f"node_memory_MemTotal_bytes {number(node.memory_total)}",
            "# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.",
            "# TYPE node_memory_MemAvailable_bytes gauge",
            f"node_memory_MemAvailable_bytes {number(node.memory_available)}"]
    return "\n".join(out) + "\n"


def service_discovery(port, cluster):
    address = f"127.0.0.1:{port}"
    groups = [{"targets": [address], "labels": {"job": "kube-state-metrics", "instance": pod,
                                                "__metrics_path__": "/kube-state-metrics/metrics"}}
              for pod in cluster.kube_state_metrics_pods]
    groups += [{"targets": [address], "labels": {"job": "node-exporter", "instance": f"{n.ip}:9100",
                                                "__metrics_path__": f"/node-exporter/{n.name}/metrics"}}
               for n in cluster.nodes if n.cpu_seconds is not None]
    return groups


class Exporter:
    """Serves `snapshot()` (a Cluster, taken on every request) on 127.0.0.1:`port` (0: any free port)."""

    def __init__(self, snapshot, port=0):
        self.snapshot = snapshot
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="exporter", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._thread.is_alive():
            self.server.shutdown()  # waits for serve_forever: only when it runs
        self.server.server_close()

    def answer(self, path):
        """(status, content type, body) for a GET of `path`."""
        cluster = self.snapshot()
        if path == "/sd":
            return 200, "application/json", json.dumps(service_discovery(self.port, cluster))
        if path == "/kube-state-metrics/metrics":
            if cluster.kube_state_metrics == "down":
                return 503, "text/plain", "kube-state-metrics is down\n"
            body = render_kube_state_metrics(cluster) if cluster.kube_state_metrics == "up" else ""
            return 200, "text/plain; version=0.0.4", body
        if path.startswith("/node-exporter/") and path.endswith("/metrics"):
            name = path[len("/node-exporter/"):-len("/metrics")]
            node = next((n for n in cluster.nodes if n.name == name and n.cpu_seconds is not None), None)
            if node is None:
                return 404, "text/plain", "no such node\n"
            return 200, "text/plain; version=0.0.4", render_node_exporter(node)
        return 404, "text/plain", "not found\n"

    def _handler(self):
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, content_type, body = exporter.answer(self.path.split("?")[0])
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # a scrape a second per target: keep quiet
                pass

        return Handler


# MARK: a cluster described in JSON (the Swift end-to-end tests, the benchmark)

CONTROL_PLANE = "k3s-server"


def described(description):
    """A Cluster from a description (see the module's docstring): a k3s server, the workers
    (aws:///us-east-1a/<id>) each with its pods and one DaemonSet pod, and pending pods that
    are unschedulable. No node-exporter data: only kube-state-metrics is served."""
    nodes = [Node(CONTROL_PLANE, f"k3s://{CONTROL_PLANE}", "10.0.0.10", "true", 2.0, 4.0 * GIB)]
    pods = []
    for index, worker in enumerate(description.get("workers", [])):
        wid = worker["id"]
        nodes.append(Node(wid, f"aws:///us-east-1a/{wid}", f"10.0.1.{20 + index}", "true" if worker.get("ready", True) else "false",
                          float(worker.get("cpu", 2.0)), float(worker.get("memory", 8.0 * GIB)),
                          instance_type=worker.get("instance_type", "")))
        for i, pod in enumerate(worker.get("pods", [])):
            pods.append(Pod("default", f"app-{wid}-{i}", wid, "ReplicaSet", f"app-{wid}", "Running", False,
                            [("app", float(pod["cpu"]), float(pod["memory"]))]))
        pods.append(Pod("default", f"ds-{wid}", wid, "DaemonSet", "ds", "Running", False, [("app", 0.01, float(MIB))]))
    for index, pending in enumerate(description.get("pending", [])):
        pods.append(Pod("default", f"pending-{index}", "", "ReplicaSet", "pending", "Pending", True,
                        [("app", float(pending["cpu"]), float(pending["memory"]))]))
    return Cluster(nodes, pods, description.get("kube_state_metrics", "up"))


def from_file(path):
    """A snapshot callable re-reading the JSON description at `path` on every scrape (write it
    atomically, by renaming a complete file over it)."""
    def snapshot():
        with open(path, encoding="utf-8") as f:
            return described(json.load(f))
    return snapshot


# MARK: the fixed clusters whose answers the Swift tests know (Tests/PrometheusTests)

# name, zone, instance id, internal ip, Ready status, allocatable cpu cores, allocatable memory bytes,
# node-exporter: per-CPU idle fraction, MemTotal, MemAvailable
FIXED_NODES = [
    ("ip-10-0-1-10", "us-east-1a", "i-0cccccccccccccccc", "10.0.1.10", "true", 4, 8 * GIB, [0.1, 0.1, 0.1, 0.1], 8 * GIB, GIB // 2),
    ("i-0123456789abcdef0", "us-east-1a", "i-0123456789abcdef0", "10.0.1.20", "true", 2, 8 * GIB, [0.9, 0.7], 8 * GIB, 6 * GIB),
    ("i-0123456789abcdef1", "us-east-1b", "i-0123456789abcdef1", "10.0.2.21", "true", 2, 8 * GIB, [0.5, 0.3], 8 * GIB, 2 * GIB),
    ("i-0123456789abcdef2", "us-east-1a", "i-0123456789abcdef2", "10.0.1.22", "false", 1, 4 * GIB, [0.6], 4 * GIB, 3 * GIB),
    ("i-0123456789abcdef3", "us-east-1b", "i-0123456789abcdef3", "10.0.2.23", "unknown", 1, 4 * GIB, [1.0], 4 * GIB, GIB),
]
_CP, W0, W1, W2, W3 = (n[0] for n in FIXED_NODES)
FIXED_INSTANCE_TYPES = {_CP: "c5.xlarge", W0: "m5.large", W1: "m5.large", W2: "t3.medium", W3: "t3.medium"}

# namespace, pod, node ("" = not scheduled), created_by_kind, phase, unschedulable, containers [(name, cpu, memory)]
FIXED_PODS = [
    ("default", "web-1", W0, "ReplicaSet", "Running", False, [("app", 1, 2 * GIB), ("sidecar", 0.25, 256 * MIB)]),
    ("default", "web-2", W0, "ReplicaSet", "Running", False, [("app", 1, 2 * GIB)]),
    ("kube-system", "node-exporter-w0", W0, "DaemonSet", "Running", False, [("node-exporter", 0.25, 128 * MIB)]),
    ("kube-system", "node-exporter-w1", W1, "DaemonSet", "Running", False, [("node-exporter", 0.25, 128 * MIB)]),
    ("batch", "report-1", W2, "Job", "Running", False, [("report", 0.5, GIB)]),
    ("batch", "report-0", W1, "Job", "Succeeded", False, [("report", 2, 4 * GIB)]),  # finished: holds nothing
    ("default", "api-7", W3, "ReplicaSet", "Pending", False, [("api", 0.25, 512 * MIB)]),  # scheduled, starting
    ("kube-system", "coredns-1", _CP, "ReplicaSet", "Running", False, [("coredns", 0.5, 70 * MIB)]),
    ("default", "fresh-1", "", "ReplicaSet", "Pending", False, [("app", 4, 8 * GIB)]),  # not yet tried by the scheduler
    ("default", "big-1", "", "ReplicaSet", "Pending", True, [("app", 1.5, 3 * GIB)]),
    ("default", "big-2", "", "StatefulSet", "Pending", True, [("app", 1, GIB), ("log", 0.5, 512 * MIB)]),
]

SCENARIOS = ("busy", "settled", "ksm-down", "ksm-rollout")


def fixed(scenario, started=None):
    """A snapshot callable for one of the fixed clusters:
      busy         two unschedulable pending pods (the cluster above as is)
      settled      the same cluster without the unschedulable pods
      ksm-down     kube-state-metrics answers 503 (crashed); node-exporter still serves
      ksm-rollout  busy, scraped through two kube-state-metrics targets (old and new pod of a rollout)

    Known answers (busy), checked by Tests/PrometheusTests/DefaultQueriesTests.swift:
      workers: 4 nodes named i-0123456789abcdef{0..3}; allocatable CPU 2+2+1+1 = 6 cores, memory 8+8+4+4 = 24 GiB
      CPU requested on Ready workers (i-…0, i-…1: 4 cores) by Pending|Running pods = 2.75 cores -> 2.75/4
      memory requested on Ready workers (16 GiB)                                   = 4.5 GiB    -> 4.5/16
      unschedulable pods = 2, their CPU requests = 3 cores, memory = 4.5 GiB
      non-DaemonSet Pending|Running pods per node: i-…0: 2, i-…1: 0, i-…2: 1, i-…3: 1, ip-10-0-1-10: 1
      Ready: i-…0 yes, i-…1 yes, i-…2 false, i-…3 unknown, ip-10-0-1-10 (control plane) yes
      node-exporter: worker CPU idle fractions average 4/6 -> usage 1/3; worker memory 12 GiB of 24 GiB available -> 0.5
      instance types (Ready nodes only): m5.large 2 cores / 8 GiB (i-…0, i-…1), c5.xlarge 4 cores / 8 GiB (the control
      plane); t3.medium none (i-…2, i-…3 are not Ready)
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    started = time.time() if started is None else started
    pods = [Pod(ns, pod, node, kind, pod.rsplit("-", 1)[0], phase, unschedulable, containers)
            for ns, pod, node, kind, phase, unschedulable, containers in FIXED_PODS
            if not (scenario == "settled" and unschedulable)]

    def cpu_seconds(idle, elapsed):
        # Counters grow in real time at the given share of one second per second, from a large base.
        return [{"idle": 100000 + share * elapsed, "user": 100000 + (1 - share) * 0.75 * elapsed,
                 "system": 100000 + (1 - share) * 0.25 * elapsed} for share in idle]

    def snapshot():
        elapsed = time.time() - started
        nodes = [Node(name, f"aws:///{zone}/{iid}", ip, ready, cpu, memory, cpu_seconds(idle, elapsed), total, available,
                      FIXED_INSTANCE_TYPES[name])
                 for name, zone, iid, ip, ready, cpu, memory, idle, total, available in FIXED_NODES]
        return Cluster(nodes, pods, "down" if scenario == "ksm-down" else "up",
                       ("10.42.0.7:8080", "10.42.0.8:8080") if scenario == "ksm-rollout" else ("10.42.0.7:8080",))
    return snapshot


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", choices=SCENARIOS, help="one of the fixed clusters")
    source.add_argument("--cluster-file", help="a JSON description, re-read on every scrape")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=900, help="seconds before exiting by itself")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (the parent went away)")
    args = parser.parse_args()
    exporter = Exporter(fixed(args.scenario) if args.scenario else from_file(args.cluster_file), args.port)
    targets = len(service_discovery(exporter.port, exporter.snapshot()))
    print(json.dumps({"port": exporter.port, "targets": targets}), flush=True)
    done = threading.Event()
    if args.exit_on_stdin_eof:
        # read() returns at EOF: the parent closed our stdin or died.
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    exporter.start()
    done.wait(args.lifetime)
    exporter.stop()


if __name__ == "__main__":
    main()
