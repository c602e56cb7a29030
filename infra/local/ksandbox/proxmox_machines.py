"""The sandbox's machines on Proxmox VE instead of EC2: the stand-in API (proxmox.py, which says
where it differs from Proxmox) run as a peer, the workers that exist before kscaler runs, and
the cluster's VMs read back as the simulator's instances, named as kscaler's Proxmox backend
expects its nodes to be (docs/backends/proxmox.md "Tags, names and ids")."""
import json
import secrets
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from .aws import Instance
from .peers import ManagedProcess, PeerError, wait_for

STANDIN = Path(__file__).resolve().parent / "proxmox.py"
TEMPLATE_VMID = 9000
NODES = ["pve1", "pve2", "pve3"]
CLUSTER_NAME = "sandbox"
# The one machine type the Proxmox sandbox launches (a size name, as the backend wants them),
# with kscaler's and the simulator's idea of its allocatable.
MACHINE_TYPE = "2c-4g"
WORKERS = {"instance_types": [MACHINE_TYPE], "sizes": {MACHINE_TYPE: {"cpu": 2, "memory": "4Gi"}}}
CLUSTER_TAG_PREFIX = "kscaler-cluster-"
POOL_TAG_PREFIX = "kscaler-pool-"
LAUNCHED_TAG_PREFIX = "kscaler-launched-"


def machine_type(cores, memory_mib):
    """A VM's type from its cores and memory, by ProxmoxFleet's rule (MachineShape): `2c-4g`
    for whole GiB, `2c-1536m` otherwise."""
    return f"{cores}c-{memory_mib // 1024}g" if memory_mib % 1024 == 0 else f"{cores}c-{memory_mib}m"


def tags_of(resource):
    return [t for t in (resource.get("tags") or "").split(";") if t]


class ProxmoxStandIn:
    """The stand-in Proxmox VE API as a peer: a fresh random token secret in a file (the
    `token_secret_file` kscaler reads; never printed), its port from the JSON line it
    announces. `clone_seconds`: how long a clone task runs."""

    def __init__(self, directory, lifetime=900, clone_seconds=0.0, nodes="pve1:16,pve2:32,pve3:8"):
        directory = Path(directory)
        self.secret_file = directory / "proxmox-token"
        self._secret = secrets.token_hex(16)
        self.secret_file.write_text(self._secret + "\n")
        self.secret_file.chmod(0o600)
        self.process = ManagedProcess(
            "proxmox", [sys.executable, str(STANDIN), "--secret-file", str(self.secret_file), "--nodes", nodes,
                        "--clone-seconds", str(clone_seconds), "--lifetime", str(int(lifetime))],
            directory / "proxmox.log", lifetime=lifetime + 30)
        announced = wait_for("the Proxmox stand-in announcing its port", self._announcement, 20, log=self.process.log_text)
        self.url, self.token_id = announced["url"], announced["token_id"]

    def _announcement(self):
        for line in self.process.log_text().splitlines():
            if line.startswith("{"):
                return json.loads(line)
        if not self.process.running():
            raise PeerError(f"the Proxmox stand-in exited: {self.process.log_text()}")
        return None

    def _call(self, method, path, body=None):
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"PVEAPIToken={self.token_id}={self._secret}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def resources(self):
        """`GET /cluster/resources?type=vm`: what kscaler lists (templates included)."""
        return self._call("GET", "/api2/json/cluster/resources?type=vm")["data"]

    def state(self):
        """The stand-in's own view (`/_standin/state`): every VM, the nodes' memory, the requests."""
        return self._call("GET", "/_standin/state")

    def seed_workers(self, cluster_id, pool, count):
        """Workers that exist before the sandbox starts, as kscaler's clones look once started:
        running, tagged for the cluster and pool, named kscaler-<cluster_id>-<vmid>, 2 cores 4 GiB
        on pve1. Returns their VM ids as strings (the machine ids kscaler uses)."""
        vmids = [100 + n for n in range(count)]
        cores, gib = (int(x) for x in MACHINE_TYPE.rstrip("g").split("c-"))
        launched = int(datetime.now(timezone.utc).timestamp())
        self._call("POST", "/_standin/state", {"vms": [
            {"vmid": vmid, "node": NODES[0], "name": f"kscaler-{cluster_id}-{vmid}", "status": "running",
             "tags": f"{CLUSTER_TAG_PREFIX}{cluster_id};{POOL_TAG_PREFIX}{pool};kscaler-launch-sandbox-initial;"
                     f"{LAUNCHED_TAG_PREFIX}{launched}",
             "config": {"cores": cores, "memory": gib * 1024}} for vmid in vmids]})
        return [str(v) for v in vmids]

    def stop(self):
        self.process.stop()


class ProxmoxMachines:
    """The simulator's machine source on Proxmox: the VMs tagged kscaler-cluster-<cluster_id>,
    whatever their state (ProxmoxFleet lists a stopped or still-locked clone as pending, a
    running one as running). Id = VM id, zone = the Proxmox node, type from cores and memory,
    pool from the kscaler-pool- tag; the node is named kscaler-<cluster_id>-<vmid> (the VM name,
    the worker's hostname) and carries proxmox://<cluster_name>/<vmid>, as the Proxmox cloud
    controller manager would set it."""

    def __init__(self, standin, cluster_id, cluster_name=CLUSTER_NAME):
        self.standin = standin
        self.cluster_id = cluster_id
        self.cluster_name = cluster_name

    def client(self):
        return self.standin  # plain urllib calls: safe to share across threads

    def instances(self, standin):
        tag = CLUSTER_TAG_PREFIX + self.cluster_id
        out = []
        for vm in standin.resources():
            tags = tags_of(vm)
            if vm.get("template") or tag not in tags:
                continue
            launched = next((int(t[len(LAUNCHED_TAG_PREFIX):]) for t in tags
                             if t.startswith(LAUNCHED_TAG_PREFIX) and t[len(LAUNCHED_TAG_PREFIX):].isdigit()), 0)
            vmid = int(vm["vmid"])
            out.append(Instance(
                id=str(vmid), instance_type=machine_type(int(vm["maxcpu"]), int(vm["maxmem"]) >> 20),
                availability_zone=vm["node"], private_ip=f"10.10.{vmid // 256 % 256}.{vmid % 256}",
                state="running" if vm["status"] == "running" else "pending",
                launch_time=datetime.fromtimestamp(launched, timezone.utc),
                pool=next((t[len(POOL_TAG_PREFIX):] for t in tags if t.startswith(POOL_TAG_PREFIX)), None)))
        return out

    def node_name(self, instance):
        return f"kscaler-{self.cluster_id}-{instance.id}"

    def provider_id(self, instance):
        return f"proxmox://{self.cluster_name}/{instance.id}"

    def fleet_config(self):
        """kscaler's `fleet` section for this stand-in."""
        return {"backend": "proxmox", "proxmox": {
            "url": self.standin.url, "token_id": self.standin.token_id, "token_secret_file": str(self.standin.secret_file),
            "nodes": list(NODES), "template_vmid": TEMPLATE_VMID, "cluster_name": self.cluster_name}}
