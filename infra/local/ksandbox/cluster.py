"""A simulated Kubernetes cluster whose workers are the instances kscaler manages in moto.

Every managed, pending or running instance becomes a worker node named after its instance id
(provider id aws:///<az>/<id>) — or, with another machine source (`machines`: the Proxmox
stand-in's VMs, proxmox_machines.py), named and identified as that backend's nodes are: it registers NotReady part-way through the boot delay and turns
Ready at its end, or, for the scenario's `never_ready_share` of launches, never registers (the
failed-boot path). A control-plane node not named i-… (k3s server) always exists. Pods come
from the scenario's demand, are placed first-fit decreasing by requests on Ready workers that
the scheduler's filters let them onto (placement.py: a cordon, NoSchedule/NoExecute taints
against the pod's tolerations, its nodeSelector and required node affinity against the node's
labels — all as the API shows the node, so what clients set through it counts), and the rest
are unschedulable, with the scheduler's PodScheduled message; a bound pod turns Ready
`pod_startup` seconds later. A terminated instance vanishes with its pods, which go back to
pending.

Node pools: a worker registers with its pool's labels and taints (`templates`, placement.py's
NodeTemplate, from the sandbox's kscaler config), found by its instance's kscaler:pool tag, plus
kscaler.io/cluster, kscaler.io/pool and node.kubernetes.io/instance-type, as kscaler's user data
has k3s register it. Each workload's pods carry its constraints (scenario.py) and the default
not-ready/unreachable tolerations admission adds. Samples count, per pool, its instances and
Ready nodes and, per workload, its pending pods and where the bound ones run; a pod that no
pool's template could take is `unservable`.

Evictions and PodDisruptionBudgets: a workload with `pdb_min_available` gets a PDB in the API
(app=<workload>), whose status the stand-in computes from the pods' readiness; an evicted (or
deleted) pod leaves its node at once and its controller creates a replacement at once, pending
until scheduled, Ready after the startup delay. Each node carries one node-exporter DaemonSet
pod (in the API and in kube-state-metrics), which nothing can move: evicted, it is back at the
next tick, as the DaemonSet controller would recreate it (DaemonSet pods tolerate cordons).

Where this differs from a real cluster, knowingly:
  * the scheduler is first-fit decreasing by requests over Ready workers, oldest first (the
    real one scores and spreads); it filters as the real one does (cordon, taints and
    tolerations, nodeSelector, required node affinity) but reads no preferred affinity, pod
    (anti-)affinity, topology spread or host ports; a NoExecute taint does not evict the pods
    already there; the unschedulable message counts the registered workers only (the k3s
    server, where the simulation never schedules a workload, is left out);
  * an evicted pod is gone at once (no termination grace period) and its replacement exists at
    once (no controller lag); the replacement of a Job's pod is created like a ReplicaSet's;
  * readiness is a fixed delay after binding: no probes, no failures, no image pulls (phase is
    Running from the binding on, not Ready until the delay is over);
  * a ReplicaSet scaling down removes pending pods first, then the newest.

It serves what kube-state-metrics and node-exporter would through exporter.py (the exposition
the Swift tests and the benchmark serve too, against which kscaler's default PromQL is checked):
registered nodes and their pods, and one node-exporter target per Ready node (http_sd at /sd).
The same nodes and pods are the Kubernetes API's (`kube_state`, a kubeapi.KubeState that the
stand-in API server serves): synced every tick, and a Node deleted through the API leaves the
simulation (`delete_node`).
"""
import threading
import time
import traceback
from dataclasses import dataclass, field

from . import exporter
from .aws import managed_instances
from .placement import DEFAULT_TOLERATIONS, Constraints, NodeTemplate, unschedulable_message
from .scenario import Size, never_ready

GIB = 1024 ** 3
MIB = 1024 ** 2
CONTROL_PLANE = "ip-172-31-0-10"
# Part of the boot delay after which a booting worker's node registers (NotReady).
REGISTER_FRACTION = 0.7
# What a node uses with no pod on it: kubelet, containerd, the OS.
BASE_CPU_CORES = 0.05
BASE_MEMORY = 400 * MIB
DAEMONSET_MEMORY_REQUEST = 50 * MIB


@dataclass
class Node:
    name: str
    instance_id: str | None
    provider_id: str
    ip: str
    zone: str
    size: Size
    seen_at: float
    registers_at: float | None
    ready_at: float | None
    worker: bool = True
    # When its instance went away (a ghost since); None while the instance lives.
    gone_at: float | None = None
    # Its kscaler:pool tag, and what it registers with (labels and taints; the API keeps what
    # clients change after).
    pool: str | None = None
    labels: dict = field(default_factory=dict)
    taints: tuple = ()
    # node-exporter counters, advanced in real time by the pods' usage
    busy_seconds: float = 0.0
    idle_seconds: float = 0.0

    def registered(self, now):
        return self.registers_at is not None and now >= self.registers_at

    def ready(self, now):
        return self.gone_at is None and self.ready_at is not None and now >= self.ready_at

    @property
    def ghost(self):
        return self.gone_at is not None


DRAIN_TAINT = "kscaler.io/to-be-deleted"


@dataclass
class Pod:
    namespace: str
    name: str
    workload: str
    kind: str
    owner: str
    cpu: float
    memory: float
    usage: float
    sequence: int
    node: str = ""
    # When it turns Ready (bound + the scenario's pod_startup); None while pending.
    ready_at: float | None = None
    constraints: Constraints = field(default_factory=Constraints)
    # Pending: the scheduler's reason, as PodScheduled's message says it.
    message: str | None = None

    @property
    def uid(self):
        return f"uid-{self.namespace}-{self.name}"

    def ready(self, now):
        return bool(self.node) and self.ready_at is not None and now >= self.ready_at

    def unbind(self):
        self.node = ""
        self.ready_at = None

    @property
    def tolerations(self):
        """Its own tolerations, then those the DefaultTolerationSeconds admission adds."""
        own = list(self.constraints.tolerations)
        return own + [t for t in DEFAULT_TOLERATIONS if not any(o.get("key") == t["key"] for o in own)]


@dataclass
class InstanceLife:
    """One managed instance as the simulator saw it (wall-clock seconds), for the tests and the summary."""
    instance_id: str
    seen_at: float
    initial: bool
    never_ready: bool
    ready_at: float | None = None
    gone_at: float | None = None
    # When its Node object was deleted through the API (None: never registered, or still there).
    node_deleted_at: float | None = None
    # Non-DaemonSet pods still bound to its node when the instance was seen gone, or when its
    # Node was deleted through the API if that came first (a deletion unbinds them). None while
    # the instance lives. 0 after a complete drain.
    pods_at_termination: int | None = None
    # Its kscaler:pool tag, type, and EC2's InstanceLifecycle as moto describes it ("spot"; None
    # for on-demand, or where moto does not report it).
    pool: str | None = None
    instance_type: str | None = None
    lifecycle: str | None = None


@dataclass
class Sample:
    """The cluster at one moment (`at`: wall-clock seconds)."""
    at: float
    phase: str
    instances: int
    registered: int
    ready: int
    # Node objects whose instance is gone (NotReady, left for kscaler to delete).
    ghosts: int
    pods: int
    unschedulable: int
    needed: int
    # Nodes the API shows cordoned (spec.unschedulable), and those carrying kscaler's
    # kscaler.io/to-be-deleted taint (a drain in progress).
    cordoned: int = 0
    draining: int = 0
    # Per workload with a PodDisruptionBudget: {"ready": Ready pods, "min_available": pods}.
    pdbs: dict = field(default_factory=dict)
    # Pending pods that no pool's node could take (their constraints fit no template), and
    # their names ("namespace/name").
    unservable: int = 0
    unservable_pods: list = field(default_factory=list)
    # Per pool: {"instances": live instances tagged for it, "ready": its Ready nodes}.
    pools: dict = field(default_factory=dict)
    # Per workload: {"pending": pods without a node, "pools": {pool: pods bound to its nodes}}.
    workloads: dict = field(default_factory=dict)


@dataclass
class ClusterRecord:
    samples: list = field(default_factory=list)
    instances: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    # Pods evicted or deleted through the API: {"at", "namespace", "name", "workload", "node"}.
    evictions: list = field(default_factory=list)


class EC2Machines:
    """The default machine source: the cluster's pending and running EC2 instances in moto
    (aws.managed_instances); a node is named after its instance id and carries aws:///<az>/<id>."""

    def __init__(self, account, cluster_id):
        self.account = account
        self.cluster_id = cluster_id

    def client(self):
        return self.account.client("ec2")

    def instances(self, ec2):
        # Looked up in this module at each call: the unit tests replace it (monkeypatch).
        return managed_instances(ec2, self.cluster_id)

    def node_name(self, instance):
        return instance.id

    def provider_id(self, instance):
        return f"aws:///{instance.availability_zone}/{instance.id}"


class SimulatedCluster:
    def __init__(self, scenario, account, cluster_id, min_nodes, initial_instance_ids=(), tick=0.25, kube_state=None,
                 templates=None, machines=None):
        self.scenario = scenario
        # Where the workers' machines come from: EC2 (moto, through `account`) unless given,
        # e.g. proxmox_machines.ProxmoxMachines.
        self.machines = machines or EC2Machines(account, cluster_id)
        # Each pool's node template, highest priority first (placement.node_templates); without
        # any, the one pool "default" with no labels or taints.
        self.templates = list(templates or [NodeTemplate("default", {}, (), None, min_nodes)])
        # Which pools' nodes could take each workload's pods.
        self.targets = {name: [t.pool for t in self.templates if t.takes(w.constraints, cluster_id)]
                        for name, w in scenario.workloads.items()}
        self.account = account
        self.cluster_id = cluster_id
        self.min_nodes = min_nodes
        self.initial = set(initial_instance_ids)
        self.tick_seconds = tick
        self.lock = threading.Lock()
        self.nodes = {}
        # Node objects deleted through the API: their instance never registers again (a tick that
        # listed it as live just before the deletion must not bring the node back as a new boot).
        self.deleted_nodes = set()
        self.pods = {}
        self.launches = 0
        self.sequence = 0
        self.started_at = None  # wall time the scenario started; demand is phase 0's before
        self.record = ClusterRecord()
        self.kube_state = kube_state
        # The Nodes as the API last showed them (cordons and taints are written there).
        self.api_nodes = {}
        if kube_state is not None:
            kube_state.on_node_deleted = self.delete_node
            kube_state.on_pod_evicted = self.pod_gone
            kube_state.on_pod_deleted = self.pod_gone
            for name, workload in scenario.workloads.items():
                if workload.pdb_min_available is not None:
                    kube_state.add_pdb(workload.namespace, f"{name}-pdb", match_labels={"app": name},
                                       min_available=workload.pdb_min_available)
        self._last_tick = time.time()
        self._stop = threading.Event()
        self._add_control_plane()
        self.exporter = exporter.Exporter(self.metrics)
        self.port = self.exporter.port
        self._loop_thread = threading.Thread(target=self._loop, name="cluster", daemon=True)

    # MARK: life cycle

    def start(self):
        self.tick()  # the initial workers exist before Prometheus first scrapes
        self.exporter.start()
        self._loop_thread.start()

    def start_scenario(self, started_at):
        with self.lock:
            self.started_at = started_at

    def stop(self):
        self._stop.set()
        self.exporter.stop()
        if self._loop_thread.is_alive():
            self._loop_thread.join(timeout=5)

    def _loop(self):
        client = self.machines.client()
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick(client)
            except Exception:  # keep simulating; the record shows what went wrong
                if len(self.record.errors) < 20:
                    self.record.errors.append(traceback.format_exc(limit=3))

    # MARK: simulation

    def _add_control_plane(self):
        self.nodes[CONTROL_PLANE] = Node(
            name=CONTROL_PLANE, instance_id=None, provider_id=f"k3s://{CONTROL_PLANE}", ip="172.31.0.10",
            zone="us-east-1a", size=Size(2, 4 * GIB), seen_at=0, registers_at=0, ready_at=0, worker=False)
        # The k3s server is tainted for system pods only; they are bound to it for good.
        for owner, pod, cpu, memory in (("coredns-6799fbcd5", "coredns-6799fbcd5-x2lqd", 0.1, 70 * MIB),
                                        ("metrics-server-54fd9b65b", "metrics-server-54fd9b65b-hs8b4", 0.1, 70 * MIB),
                                        ("kube-state-metrics-7f6b9c8d5", "kube-state-metrics-7f6b9c8d5-ztw4k", 0.1, 200 * MIB)):
            self.pods[("kube-system", pod)] = Pod("kube-system", pod, owner, "ReplicaSet", owner, cpu, memory, 0.5, -1,
                                                  node=CONTROL_PLANE, ready_at=0)

    def now(self):
        return time.time()

    def _demand(self, now):
        """Replicas wanted now: the first phase's until the scenario starts (the warm-up)."""
        return self.scenario.replicas_at(now - self.started_at if self.started_at is not None else 0)

    def tick(self, ec2=None):
        """One step; `ec2`: the machine source's client (an EC2 client by default), made if None."""
        instances = self.machines.instances(ec2 or self.machines.client())
        now = self.now()
        with self.lock:
            if self.kube_state is not None:
                self.api_nodes = {n["metadata"]["name"]: n for n in self.kube_state.nodes()}
            self._sync_nodes(instances, now)
            self._sync_demand(now)
            self._place(now)
            self._advance_counters(now)
            self._sample(now, len(instances))
            self._sync_api(now)

    def _sync_nodes(self, instances, now):
        # Nodes and their records are keyed by node name (the instance id on EC2).
        live = {self.machines.node_name(i): i for i in instances}
        for name, instance in live.items():
            if name in self.nodes or name in self.deleted_nodes:
                continue
            initial = instance.id in self.initial
            size = self.scenario.size_of(instance.instance_type)
            if initial:
                registers_at = ready_at = now
                failed = False
            else:
                self.launches += 1
                failed = never_ready(self.launches, self.scenario.never_ready_share)
                boot = self.scenario.boot_delay
                registers_at = None if failed else now + REGISTER_FRACTION * boot
                ready_at = None if failed else now + boot
            template = self._template(instance.pool)
            self.nodes[name] = Node(
                name=name, instance_id=instance.id, provider_id=self.machines.provider_id(instance),
                ip=instance.private_ip, zone=instance.availability_zone, size=size, seen_at=now,
                registers_at=registers_at, ready_at=ready_at, pool=instance.pool,
                labels=template.node_labels(self.cluster_id, name, instance.instance_type),
                taints=template.taints)
            self.record.instances[name] = InstanceLife(instance.id, now, initial, failed, pool=instance.pool,
                                                              instance_type=instance.instance_type, lifecycle=instance.lifecycle)
        for name, node in list(self.nodes.items()):
            if node.worker and not node.ghost and name not in live:
                # Terminated: its pods go back to pending; a Node that registered stays behind,
                # NotReady (k3s has no cloud controller to delete it), one that never did is gone.
                node.gone_at = now
                life = self.record.instances[name]
                if life.pods_at_termination is None:
                    life.pods_at_termination = self._unbind_pods(name)
                life.gone_at = now
                if not node.registered(now):
                    del self.nodes[name]
        for name, life in self.record.instances.items():
            # An instance whose Node was deleted through the API before this tick saw it gone.
            if life.gone_at is None and name not in live and name not in self.nodes:
                life.gone_at = now
        for name, node in self.nodes.items():
            life = self.record.instances.get(name)
            if life and life.ready_at is None and node.ready(now):
                life.ready_at = now

    def _template(self, pool):
        """The node template of a pool; an instance of no configured pool (or untagged) registers
        with kscaler's labels only."""
        return next((t for t in self.templates if t.pool == pool), NodeTemplate(pool or "", {}, (), None))

    def _unbind_pods(self, node_name):
        """Sends the pods bound to a node back to pending; returns how many there were (the
        node-exporter DaemonSet pod is not one of them: it is derived per node)."""
        count = 0
        for pod in self.pods.values():
            if pod.node == node_name:
                pod.unbind()
                count += 1
        return count

    def _new_pod(self, name, workload):
        self.sequence += 1
        pod_name = f"{name}-{self.sequence:05d}"
        self.pods[(workload.namespace, pod_name)] = Pod(
            workload.namespace, pod_name, name, workload.kind, f"{name}-{workload.kind.lower()}",
            workload.cpu, workload.memory, workload.usage, self.sequence, constraints=workload.constraints)

    def _sync_demand(self, now):
        wanted = self._demand(now)
        for name, workload in self.scenario.workloads.items():
            pods = [p for p in self.pods.values() if p.workload == name]
            missing = wanted.get(name, 0) - len(pods)
            for _ in range(missing):
                self._new_pod(name, workload)
            if missing < 0:
                # As a ReplicaSet scales down: unscheduled pods first, then the newest.
                for pod in sorted(pods, key=lambda p: (p.node != "", -p.sequence))[:-missing]:
                    del self.pods[(pod.namespace, pod.name)]

    def _node_view(self, node):
        """(labels, taints, cordoned) of a node as the scheduler sees it: as the API shows it
        (what clients wrote included), or as it registers before the API has it."""
        api = self.api_nodes.get(node.name)
        if api is None:
            return node.labels, node.taints, False
        spec = api.get("spec") or {}
        return (api["metadata"].get("labels") or {}), (spec.get("taints") or ()), bool(spec.get("unschedulable"))

    def _place(self, now):
        """First fit decreasing over the registered workers, each node through the scheduler's
        filters in their order (a NotReady node carries the node.kubernetes.io/not-ready taint,
        which the node lifecycle controller adds); pods left pending get the scheduler's message."""
        registered = sorted((n for n in self.nodes.values() if n.worker and n.registered(now) and not n.ghost),
                            key=lambda n: (n.ready_at is None, n.ready_at or 0, n.name))
        views = {n.name: self._node_view(n) for n in registered}
        free = {}
        for node in registered:
            used = [p for p in self.pods.values() if p.node == node.name]
            free[node.name] = [node.size.cpu - sum(p.cpu for p in used),
                               node.size.memory - DAEMONSET_MEMORY_REQUEST - sum(p.memory for p in used)]
        pending = sorted((p for p in self.pods.values() if not p.node), key=lambda p: (-p.cpu, -p.memory, p.sequence))
        for pod in pending:
            constraints = Constraints(pod.constraints.node_selector, pod.constraints.node_affinity, tuple(pod.tolerations))
            rejections = []
            for node in registered:
                labels, taints, cordoned = views[node.name]
                if not node.ready(now):
                    taints = list(taints) + [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]
                reason = constraints.rejection(labels, taints, cordoned)
                room = free[node.name]
                if reason is None:
                    short = [name for name, need, left in (("cpu", pod.cpu, room[0]), ("memory", pod.memory, room[1]))
                             if need > left + 1e-9]
                    if not short:
                        pod.node = node.name
                        pod.ready_at = now + self.scenario.pod_startup
                        pod.message = None
                        room[0] -= pod.cpu
                        room[1] -= pod.memory
                        break
                    reason = f"Insufficient {short[0]}"
                rejections.append(reason)
            else:
                pod.message = unschedulable_message(rejections, len(registered))

    def _advance_counters(self, now):
        elapsed = max(0.0, now - self._last_tick)
        self._last_tick = now
        for node in self.nodes.values():
            if not node.ready(now):
                continue
            used = min(node.size.cpu, BASE_CPU_CORES + sum(p.cpu * p.usage for p in self.pods.values() if p.node == node.name))
            node.busy_seconds += elapsed * used
            node.idle_seconds += elapsed * (node.size.cpu - used)

    def _needed(self, demand):
        """Demand in nodes: each pool's workloads (those the first pool, by priority, takes) at
        the size of its first instance type (the one kscaler sizes with; the scenario's first
        size when unknown), at least its minimum; pods no pool takes need nothing. With one pool
        and no constraints: the whole demand, at least nodes.min."""
        total = 0
        for template in self.templates:
            mine = {name: count for name, count in demand.items() if (self.targets.get(name) or [None])[0] == template.pool}
            size = self.scenario.instance_sizes.get(template.instance_type) or next(iter(self.scenario.instance_sizes.values()))
            total += max(template.min, self.scenario.nodes_needed(mine, size))
        return total

    def _sample(self, now, instance_count):
        workers = [n for n in self.nodes.values() if n.worker]
        demand = self._demand(now)
        workload_pods = [p for p in self.pods.values() if p.workload in self.scenario.workloads]
        unservable = sorted(f"{p.namespace}/{p.name}" for p in workload_pods if not p.node and not self.targets.get(p.workload))
        pools = {t.pool: {"instances": 0, "ready": 0} for t in self.templates}
        for node in workers:
            if node.ghost or node.pool is None:
                continue
            entry = pools.setdefault(node.pool, {"instances": 0, "ready": 0})
            entry["instances"] += 1
            entry["ready"] += node.ready(now)
        workloads = {name: {"pending": 0, "pools": {}} for name in self.scenario.workloads}
        for pod in workload_pods:
            entry = workloads[pod.workload]
            if not pod.node:
                entry["pending"] += 1
            else:
                pool = self.nodes[pod.node].pool if pod.node in self.nodes else None
                entry["pools"][pool or "?"] = entry["pools"].get(pool or "?", 0) + 1
        self.record.samples.append(Sample(
            at=now, phase=self.scenario.phase_at(now - self.started_at).name if self.started_at is not None else "warm-up",
            instances=instance_count, registered=sum(n.registered(now) and not n.ghost for n in workers),
            ready=sum(n.ready(now) for n in workers), ghosts=sum(n.ghost for n in workers), pods=len(workload_pods),
            unschedulable=sum(1 for p in workload_pods if not p.node),
            needed=self._needed(demand),
            cordoned=sum(1 for n in self.api_nodes.values() if (n.get("spec") or {}).get("unschedulable")),
            draining=sum(1 for n in self.api_nodes.values()
                         if any(t.get("key") == DRAIN_TAINT for t in (n.get("spec") or {}).get("taints") or [])),
            pdbs=self._budgets(now),
            unservable=len(unservable),
            unservable_pods=unservable,
            pools=pools, workloads=workloads))

    def _budgets(self, now):
        """Ready pods and minAvailable of each workload with a PDB, from the simulation itself
        (the API's PDB status follows it at the next sync)."""
        out = {}
        for name, workload in self.scenario.workloads.items():
            if workload.pdb_min_available is None:
                continue
            pods = [p for p in self.pods.values() if p.workload == name]
            out[name] = {"ready": sum(1 for p in pods if p.ready(now)), "min_available": workload.min_available(len(pods))}
        return out

    def _sync_api(self, now):
        """The API shows what the kubelets registered and the pods bound or pending: the same
        nodes kube-state-metrics exports, ghosts included."""
        if self.kube_state is None:
            return
        nodes = [dict(name=n.name, provider_id=n.provider_id, ready=n.ready(now), internal_ip=n.ip,
                      labels=(n.labels or {"kubernetes.io/hostname": n.name}) if n.worker
                      else {"node-role.kubernetes.io/control-plane": "true"},
                      taints=list(n.taints), allocatable={"cpu": n.size.cpu, "memory": n.size.memory})
                 for n in self.nodes.values() if n.registered(now)]
        pods = [dict(namespace=p.namespace, name=p.name, node_name=p.node or None, owner_kind=p.kind, owner_name=p.owner,
                     labels={"app": p.workload}, phase="Running" if p.node else "Pending",
                     requests={"cpu": p.cpu, "memory": p.memory}, ready=p.ready(now),
                     node_selector=p.constraints.node_selector or None, affinity=p.constraints.api_affinity(),
                     tolerations=p.tolerations if p.workload in self.scenario.workloads else None,
                     unschedulable_message=p.message)
                for p in self.pods.values()]
        pods += [dict(namespace="kube-system", name=f"node-exporter-{n['name']}", node_name=n["name"], owner_kind="DaemonSet",
                      owner_name="node-exporter", labels={"app": "node-exporter"}, phase="Running",
                      requests={"cpu": 0, "memory": DAEMONSET_MEMORY_REQUEST}, ready=True)
                 for n in nodes]
        self.kube_state.sync(nodes=nodes, pods=pods)

    def delete_node(self, name):
        """The API deleted the Node object: it leaves kube-state-metrics. Returns whether it existed."""
        with self.lock:
            node = self.nodes.pop(name, None)
            if node is None:
                return False
            self.deleted_nodes.add(name)
            bound = self._unbind_pods(name)
            life = self.record.instances.get(name)
            if life is not None:
                life.node_deleted_at = self.now()
                if life.pods_at_termination is None:
                    life.pods_at_termination = bound
            return True

    def pod_gone(self, namespace, name):
        """The API evicted or deleted a pod (it is gone from the API already): it leaves its
        node, and its controller creates a replacement at once, pending until scheduled. A
        node-exporter pod is derived per node: the next sync brings it back, as its DaemonSet would."""
        with self.lock:
            pod = self.pods.pop((namespace, name), None)
            if pod is None:
                return
            now = self.now()
            self.record.evictions.append({"at": now, "namespace": namespace, "name": name, "workload": pod.workload,
                                          "node": pod.node})
            workload = self.scenario.workloads.get(pod.workload)
            if workload is not None:
                self._new_pod(pod.workload, workload)
                # The scheduler binds the replacement within milliseconds (it is never seen as an
                # unschedulable pod if it fits), on the nodes as the API shows them now: the
                # cordon that came just before this eviction counts.
                self.api_nodes = {n["metadata"]["name"]: n for n in self.kube_state.nodes()}
                self._place(now)
            else:  # a kube-system pod on the control plane: its ReplicaSet recreates it there
                self.pods[(namespace, name)] = Pod(namespace, name, pod.workload, pod.kind, pod.owner, pod.cpu, pod.memory,
                                                   pod.usage, pod.sequence, node=pod.node, ready_at=self.now())
            if self.kube_state is not None:
                # A tick between the eviction and this hook may have written the pod back.
                self.kube_state.delete_pod(namespace, name)

    # MARK: exposition

    def metrics(self):
        """The cluster as kube-state-metrics and node-exporter show it now (exporter.py serves it):
        registered nodes, each with one node-exporter DaemonSet pod, and node-exporter on Ready ones."""
        now = self.now()
        with self.lock:
            nodes = [n for n in self.nodes.values() if n.registered(now)]
            pods = [exporter.Pod(p.namespace, p.name, p.node, p.kind, p.owner, "Running" if p.node else "Pending",
                                 not p.node, [("app", p.cpu, float(p.memory))]) for p in self.pods.values()]
            pods += [exporter.Pod("kube-system", f"node-exporter-{n.name}", n.name, "DaemonSet", "node-exporter", "Running",
                                  False, [("app", 0, float(DAEMONSET_MEMORY_REQUEST))]) for n in nodes]
            return exporter.Cluster([self._node_metrics(n, now) for n in nodes], pods)

    def _node_metrics(self, node, now):
        metrics = exporter.Node(node.name, node.provider_id, node.ip, "true" if node.ready(now) else "false",
                                float(node.size.cpu), float(node.size.memory),
                                instance_type=node.labels.get("node.kubernetes.io/instance-type", ""))
        if node.ready(now):
            cpus = max(1, int(round(node.size.cpu)))
            busy = node.busy_seconds / cpus
            metrics.cpu_seconds = [{"idle": node.idle_seconds / cpus, "user": busy * 0.75, "system": busy * 0.25}] * cpus
            used = BASE_MEMORY + sum(p.memory * p.usage for p in self.pods.values() if p.node == node.name)
            metrics.memory_total = float(node.size.memory)
            metrics.memory_available = max(0.0, node.size.memory - used)
        return metrics
