"""Closed-loop tests: real kscaler processes against moto (signature checking on), a real
Prometheus and the simulated cluster, with the sandbox's periods shortened further.

The kscaler binary comes from KSTEST_BINARY (default .build/debug/kscaler). A missing binary
or peer fails the tests with the reason; nothing is skipped.
"""
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ksandbox.peers import REPO_ROOT, PeerError  # noqa: E402
from ksandbox.sandbox import Sandbox, Timings, deep_merge  # noqa: E402
from ksandbox.scenario import parse  # noqa: E402

KSCALER_CONFIG = HERE.parent / "configs/kscaler.yaml"
# Every period shortened consistently: runs every 2 s, nodes Ready 4 s after launch.
TIMINGS = Timings(interval=2.0, run_timeout=10)
BOOT_DELAY = 4.0
POLICY = {
    "scale_up": {"cooldown": "3s"},
    "scale_down": {"cooldown": "4s", "delay_after_scale_up": "10s", "stabilization_window": "8s"},
    "boot_grace": "8s",
    "provision_timeout": "10s",
    "unavailable_for": "20s",
    "lease": {"ttl": "20s", "safety_margin": "5s"},
}


def kscaler_binary():
    path = Path(os.environ.get("KSTEST_BINARY", REPO_ROOT / ".build/debug/kscaler"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"no kscaler binary at {path}: run `swift build` first (or set KSTEST_BINARY)", pytrace=False)
    return path


def scenario(phases, workloads=None, never_ready_share=0.0, instance_sizes=None):
    """`instance_sizes`: the machines' allocatable per type (default the EC2 sandbox's t3.large)."""
    return parse({
        "name": "test",
        "cluster": {"boot_delay": f"{BOOT_DELAY:g}s", "never_ready_share": never_ready_share,
                    "instance_sizes": instance_sizes or {"t3.large": {"cpu": 2, "memory": "8Gi"}}},
        "workloads": workloads or {"web": {"cpu": 0.5, "memory": "1Gi"},
                                   "batch": {"cpu": 0.5, "memory": "512Mi", "kind": "Job", "namespace": "batch"}},
        "phases": phases,
    })


def play(tmp_path, name, the_scenario, overrides=None, loops=1, backend="ec2"):
    """Runs the scenario once in a fresh sandbox and returns the result as plain data; the
    run log is printed (pytest shows it when a test fails). backend "proxmox": kscaler's
    machines are the Proxmox stand-in's VMs; the result then also has `proxmox_vms`, the
    stand-in's VMs (templates left out) and `api_nodes` (name, provider id) once the runs are over."""
    config = deep_merge(POLICY, overrides)
    try:
        with Sandbox(name, the_scenario, KSCALER_CONFIG, tmp_path / name, kscaler_binary(), TIMINGS, loops=loops,
                     config_overrides=config, printer=print, backend=backend) as sandbox:
            result = asdict(sandbox.run_scenario())
            if backend == "proxmox":
                # A few more simulator ticks, so its view includes what the last run did.
                time.sleep(4 * sandbox.cluster.tick_seconds)
                result = asdict(sandbox.result())
                result["proxmox_vms"] = [{k: vm.get(k) for k in ("vmid", "node", "status", "resource")}
                                         for vm in sandbox.proxmox.state()["vms"] if not vm.get("template")]
                # The Nodes as the API shows them then (kscaler matches a node by provider id first,
                # by name second, so a run alone would not tell a wrong provider id).
                result["api_nodes"] = [{"name": n["metadata"]["name"], "provider_id": (n.get("spec") or {}).get("providerID")}
                                       for n in sandbox.cluster.kube_state.nodes()]
    except PeerError as error:
        pytest.fail(str(error), pytrace=False)
    saved = tmp_path / name / "result.json"
    saved.write_text(json.dumps(result, indent=1))
    print(f"result (samples, instances, evictions, runs): {saved}")
    assert not result["cluster_errors"], f"the simulator failed: {result['cluster_errors']}"
    return result


def scale_runs(result):
    """(t, 'up' | 'down', instance ids) of the runs that launched or terminated to scale."""
    out = []
    for run in result["runs"]:
        for action in (run["report"] or {}).get("actions", []):
            if action.get("error") or not action.get("instance_ids"):
                continue
            if action["kind"] in ("launch", "terminate"):
                out.append((run["t"], "up" if action["kind"] == "launch" else "down", action["instance_ids"]))
    return out


def direction_changes(actions):
    """How often the scale direction changed along scale_runs' actions (1: ups, then downs)."""
    directions = [d for _, d, _ in actions]
    return sum(1 for a, b in zip(directions, directions[1:]) if a != b)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("sandbox")
