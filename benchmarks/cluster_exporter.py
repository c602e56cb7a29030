"""A static simulated cluster for the benchmark's Prometheus to scrape (Python stdlib only).

Serves kube-state-metrics series in the shapes kscaler's default queries read (the same
shapes as Tests/KScalerTests/ClusterExporter.swift) on 127.0.0.1. The cluster is described
by a JSON file that the benchmark rewrites between scenarios; it is re-read on every scrape:

    {"workers": [{"id": "i-0abc", "pods": 10, "pod_cpu": 0.1, "pod_memory": 419430400}],
     "pending": [{"cpu": 1.5, "memory": 2147483648}]}

Usage: python3 cluster_exporter.py CLUSTER_JSON LIFETIME_SECONDS
Prints "listening on 127.0.0.1:PORT" once bound; exits by itself after LIFETIME_SECONDS.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

GIB = 1 << 30
WORKER_CPU = 2.0
WORKER_MEMORY = 8 * GIB


def exposition(cluster: dict) -> str:
    lines: list[str] = []

    def node(name: str, provider: str, cpu: float, memory: float) -> None:
        lines.append(f'kube_node_info{{node="{name}",provider_id="{provider}"}} 1')
        for status, value in (("true", 1), ("false", 0), ("unknown", 0)):
            lines.append(f'kube_node_status_condition{{node="{name}",condition="Ready",status="{status}"}} {value}')
        lines.append(f'kube_node_status_allocatable{{node="{name}",resource="cpu",unit="core"}} {cpu}')
        lines.append(f'kube_node_status_allocatable{{node="{name}",resource="memory",unit="byte"}} {memory}')

    def pod(name: str, node_name: str | None, phase: str, cpu: float, memory: float, kind: str = "ReplicaSet") -> None:
        node_label = f',node="{node_name}"' if node_name else ""
        lines.append(f'kube_pod_info{{namespace="default",pod="{name}",node="{node_name or ""}",created_by_kind="{kind}"}} 1')
        lines.append(f'kube_pod_status_phase{{namespace="default",pod="{name}",phase="{phase}"}} 1')
        for resource, unit, amount in (("cpu", "core", cpu), ("memory", "byte", memory)):
            lines.append(f'kube_pod_container_resource_requests{{namespace="default",pod="{name}",container="app"'
                         f'{node_label},resource="{resource}",unit="{unit}"}} {amount}')
        if node_name is None:
            lines.append(f'kube_pod_status_unschedulable{{namespace="default",pod="{name}"}} 1')

    node("k3s-server", "k3s://k3s-server", 2, 4 * GIB)
    for worker in cluster.get("workers", []):
        wid = worker["id"]
        node(wid, f"aws:///us-east-1a/{wid}", WORKER_CPU, WORKER_MEMORY)
        for index in range(worker["pods"]):
            pod(f"app-{wid}-{index}", wid, "Running", worker["pod_cpu"], worker["pod_memory"])
        pod(f"ds-{wid}", wid, "Running", 0.01, 1 << 20, kind="DaemonSet")
    for index, pending in enumerate(cluster.get("pending", [])):
        pod(f"pending-{index}", None, "Pending", pending["cpu"], pending["memory"])
    return "\n".join(lines) + "\n"


def main() -> None:
    cluster_file, lifetime = sys.argv[1], float(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            with open(cluster_file, encoding="utf-8") as f:
                body = exposition(json.load(f)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # one scrape a second: keep the log quiet
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Timer(lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
