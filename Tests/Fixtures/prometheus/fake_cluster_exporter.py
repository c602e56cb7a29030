#!/usr/bin/env python3
"""A fake kube-state-metrics + node-exporter for one small, fixed cluster (stdlib only).

Prometheus discovers the targets through http_sd at /sd and scrapes
  /kube-state-metrics/metrics          job="kube-state-metrics"
  /node-exporter/<node>/metrics        job="node-exporter", instance="<node ip>:9100" (one target per node)
so the metrics carry the labels a real cluster's would.

Scenarios (--scenario):
  busy         two unschedulable pending pods (the cluster below as is)
  settled      the same cluster without the unschedulable pods
  ksm-down     kube-state-metrics answers 503 (crashed); node-exporter still serves
  ksm-rollout  busy, scraped through two kube-state-metrics targets (old and new pod of a rollout)

Known answers (busy) that the Swift tests check:
  workers: 4 nodes named i-0123456789abcdef{0..3}; allocatable CPU 2+2+1+1 = 6 cores, memory 8+8+4+4 = 24 GiB
  CPU requested on workers by Pending|Running pods = 3.5 cores   -> 3.5/6
  memory requested on workers                      = 6 GiB       -> 6/24 = 0.25
  unschedulable pods = 2, their CPU requests = 3 cores, memory = 4.5 GiB
  non-DaemonSet Pending|Running pods per node: i-…0: 2, i-…1: 0, i-…2: 1, i-…3: 1, ip-10-0-1-10: 1
  Ready: i-…0 yes, i-…1 yes, i-…2 false, i-…3 unknown, ip-10-0-1-10 (control plane) yes
  node-exporter: worker CPU idle fractions average 4/6 -> usage 1/3; worker memory 12 GiB of 24 GiB available -> 0.5

Prints one JSON line {"port": N, "targets": M} on stdout once listening on 127.0.0.1.
Exits by itself after --lifetime seconds, and with --exit-on-stdin-eof as soon as stdin closes
(the test process that started it went away).
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIB = 1024 ** 3
MIB = 1024 ** 2

# name, provider zone, internal ip, Ready status, allocatable cpu cores, allocatable memory bytes,
# node-exporter: per-CPU idle fraction, MemTotal, MemAvailable
NODES = [
    ("ip-10-0-1-10", "us-east-1a", "i-0cccccccccccccccc", "10.0.1.10", "true", 4, 8 * GIB, [0.1, 0.1, 0.1, 0.1], 8 * GIB, GIB // 2),
    ("i-0123456789abcdef0", "us-east-1a", "i-0123456789abcdef0", "10.0.1.20", "true", 2, 8 * GIB, [0.9, 0.7], 8 * GIB, 6 * GIB),
    ("i-0123456789abcdef1", "us-east-1b", "i-0123456789abcdef1", "10.0.2.21", "true", 2, 8 * GIB, [0.5, 0.3], 8 * GIB, 2 * GIB),
    ("i-0123456789abcdef2", "us-east-1a", "i-0123456789abcdef2", "10.0.1.22", "false", 1, 4 * GIB, [0.6], 4 * GIB, 3 * GIB),
    ("i-0123456789abcdef3", "us-east-1b", "i-0123456789abcdef3", "10.0.2.23", "unknown", 1, 4 * GIB, [1.0], 4 * GIB, GIB),
]

W0, W1, W2, W3 = (n[0] for n in NODES[1:])
CONTROL_PLANE = NODES[0][0]

# namespace, pod, node ("" = not scheduled), created_by_kind, phase, unschedulable,
# containers [(name, cpu cores, memory bytes)]
PODS = [
    ("default", "web-1", W0, "ReplicaSet", "Running", False, [("app", 1, 2 * GIB), ("sidecar", 0.25, 256 * MIB)]),
    ("default", "web-2", W0, "ReplicaSet", "Running", False, [("app", 1, 2 * GIB)]),
    ("kube-system", "node-exporter-w0", W0, "DaemonSet", "Running", False, [("node-exporter", 0.25, 128 * MIB)]),
    ("kube-system", "node-exporter-w1", W1, "DaemonSet", "Running", False, [("node-exporter", 0.25, 128 * MIB)]),
    ("batch", "report-1", W2, "Job", "Running", False, [("report", 0.5, GIB)]),
    ("batch", "report-0", W1, "Job", "Succeeded", False, [("report", 2, 4 * GIB)]),  # finished: holds nothing
    ("default", "api-7", W3, "ReplicaSet", "Pending", False, [("api", 0.25, 512 * MIB)]),  # scheduled, starting
    ("kube-system", "coredns-1", CONTROL_PLANE, "ReplicaSet", "Running", False, [("coredns", 0.5, 70 * MIB)]),
    ("default", "fresh-1", "", "ReplicaSet", "Pending", False, [("app", 4, 8 * GIB)]),  # not yet tried by the scheduler
    ("default", "big-1", "", "ReplicaSet", "Pending", True, [("app", 1.5, 3 * GIB)]),
    ("default", "big-2", "", "StatefulSet", "Pending", True, [("app", 1, GIB), ("log", 0.5, 512 * MIB)]),
]

PHASES = ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
START = time.time()


def labels(**pairs):
    return "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


def number(value):
    return repr(float(value)) if isinstance(value, float) else str(value)


def kube_state_metrics(scenario):
    pods = [p for p in PODS if not (scenario == "settled" and p[5])]
    out = []

    def family(name, kind, help_text, rows):
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels(**lbl)} {number(v)}" for lbl, v in rows)

    family("kube_node_info", "gauge", "Information about a cluster node.", [
        (dict(node=n, kernel_version="6.1.0-21-cloud-amd64", os_image="Debian GNU/Linux 12 (bookworm)",
              container_runtime_version="containerd://1.7.11-k3s2", kubelet_version="v1.29.4+k3s1",
              kubeproxy_version="v1.29.4+k3s1", provider_id=f"aws:///{zone}/{iid}", pod_cidr="",
              system_uuid="ec2" + iid[2:], internal_ip=ip), 1)
        for n, zone, iid, ip, *_ in NODES])
    family("kube_node_status_condition", "gauge", "The condition of a cluster node.", [
        (dict(node=n, condition=cond, status=s),
         1 if s == (ready if cond == "Ready" else "false") else 0)
        for n, _, _, _, ready, *_ in NODES
        for cond in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
        for s in ("true", "false", "unknown")])
    family("kube_node_status_allocatable", "gauge", "The allocatable for different resources of a node.", [
        row for n, _, _, _, _, cpu, mem, *_ in NODES for row in (
            (dict(node=n, resource="cpu", unit="core"), cpu),
            (dict(node=n, resource="memory", unit="byte"), mem),
            (dict(node=n, resource="pods", unit="integer"), 110))])
    family("kube_pod_info", "gauge", "Information about pod.", [
        (dict(namespace=ns, pod=pod, uid=f"uid-{pod}", host_ip="", pod_ip="", node=node,
              created_by_kind=kind, created_by_name=pod.rsplit("-", 1)[0], priority_class="",
              host_network="false"), 1)
        for ns, pod, node, kind, *_ in pods])
    family("kube_pod_status_phase", "gauge", "The pods current phase.", [
        (dict(namespace=ns, pod=pod, uid=f"uid-{pod}", phase=ph), 1 if ph == phase else 0)
        for ns, pod, _, _, phase, *_ in pods for ph in PHASES])
    # Exists only for pods whose PodScheduled condition is False/Unschedulable, as in kube-state-metrics.
    family("kube_pod_status_unschedulable", "gauge", "Describes the unschedulable status for the pod.", [
        (dict(namespace=ns, pod=pod, uid=f"uid-{pod}"), 1)
        for ns, pod, _, _, _, unschedulable, _ in pods if unschedulable])
    family("kube_pod_container_resource_requests", "gauge",
           "The number of requested request resource by a container.", [
        row for ns, pod, node, _, _, _, containers in pods for c, cpu, mem in containers for row in (
            (dict(namespace=ns, pod=pod, uid=f"uid-{pod}", container=c, node=node, resource="cpu", unit="core"), cpu),
            (dict(namespace=ns, pod=pod, uid=f"uid-{pod}", container=c, node=node, resource="memory", unit="byte"), mem))])
    return "\n".join(out) + "\n"


def node_exporter(node):
    name, _, _, _, _, _, _, idle, mem_total, mem_available = node
    elapsed = time.time() - START
    out = ["# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.",
           "# TYPE node_cpu_seconds_total counter"]
    for cpu, idle_share in enumerate(idle):
        busy = 1 - idle_share
        # Counters grow in real time at the given share of one second per second, from a large base.
        for mode, share in (("idle", idle_share), ("user", busy * 0.75), ("system", busy * 0.25)):
            out.append(f"node_cpu_seconds_total{labels(cpu=str(cpu), mode=mode)} {100000 + share * elapsed!r}")
    out += ["# HELP node_uname_info Labeled system information as provided by the uname system call.",
            "# TYPE node_uname_info gauge",
            f"node_uname_info{labels(domainname='(none)', machine='x86_64', nodename=name, release='6.1.0-21-cloud-amd64', sysname='Linux', version='#1 SMP Debian')} 1",
            "# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.",
            "# TYPE node_memory_MemTotal_bytes gauge",
            f"node_memory_MemTotal_bytes {mem_total}",
            "# HELP node_memory_MemAvailable_bytes Memory information field MemAvailable_bytes.",
            "# TYPE node_memory_MemAvailable_bytes gauge",
            f"node_memory_MemAvailable_bytes {mem_available}"]
    return "\n".join(out) + "\n"


def service_discovery(port, scenario):
    address = f"127.0.0.1:{port}"
    pods = ["10.42.0.7:8080", "10.42.0.8:8080"] if scenario == "ksm-rollout" else ["10.42.0.7:8080"]
    groups = [{"targets": [address], "labels": {"job": "kube-state-metrics", "instance": pod,
                                                "__metrics_path__": "/kube-state-metrics/metrics"}}
              for pod in pods]
    groups += [{"targets": [address], "labels": {"job": "node-exporter", "instance": f"{node[3]}:9100",
                                                "__metrics_path__": f"/node-exporter/{node[0]}/metrics"}}
               for node in NODES]
    return groups


class Handler(BaseHTTPRequestHandler):
    scenario = "busy"

    def do_GET(self):
        if self.path == "/sd":
            self.reply(200, "application/json", json.dumps(service_discovery(self.server.server_port, self.scenario)))
        elif self.path == "/kube-state-metrics/metrics":
            if self.scenario == "ksm-down":
                self.reply(503, "text/plain", "kube-state-metrics is down\n")
            else:
                self.reply(200, "text/plain; version=0.0.4", kube_state_metrics(self.scenario))
        elif self.path.startswith("/node-exporter/") and self.path.endswith("/metrics"):
            name = self.path[len("/node-exporter/"):-len("/metrics")]
            node = next((n for n in NODES if n[0] == name), None)
            if node is None:
                self.reply(404, "text/plain", "no such node\n")
            else:
                self.reply(200, "text/plain; version=0.0.4", node_exporter(node))
        else:
            self.reply(404, "text/plain", "not found\n")

    def reply(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", choices=["busy", "settled", "ksm-down", "ksm-rollout"], default="busy")
    parser.add_argument("--lifetime", type=float, default=900, help="seconds before exiting by itself")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (the parent went away)")
    args = parser.parse_args()
    Handler.scenario = args.scenario
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_port, "targets": len(service_discovery(server.server_port, args.scenario))}), flush=True)

    def exit_when_orphaned():
        sys.stdin.read()  # returns at EOF: the parent closed our stdin or died
        server.shutdown()

    if args.exit_on_stdin_eof:
        threading.Thread(target=exit_when_orphaned, daemon=True).start()
    lifetime = threading.Timer(args.lifetime, server.shutdown)
    lifetime.daemon = True
    lifetime.start()
    server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
