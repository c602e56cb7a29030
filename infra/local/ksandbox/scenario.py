"""Scenario files: how a simulated cluster behaves and what it is asked to run over time.

A scenario is TOML (stdlib `tomllib`):

    name = "quiet, burst, quiet"

    [cluster]
    boot_delay = "6s"            # instance seen running -> node Ready
    never_ready_share = 0.0      # share of launched instances whose node never registers
    pod_startup = "2s"           # a pod bound to a node -> Ready (containers started, probe passed)
    [cluster.instance_sizes]     # allocatable of a worker per instance type
    "t3.large" = { cpu = 2, memory = "8Gi" }

    [workloads.web]              # one Deployment/Job/...; its pods all alike
    cpu = 0.5                    # request per pod, cores
    memory = "1Gi"               # request per pod
    usage = 0.6                  # share of the request really used (what node-exporter sees)
    kind = "ReplicaSet"          # the pods' owner kind (kube_pod_info created_by_kind)
    pdb_min_available = 2        # optional: a PodDisruptionBudget <name>-pdb selecting app=<name>,
                                 # minAvailable an int or "N%" (evictions refused below it)
    # Optional placement constraints, written to the pods' spec as the API spells them:
    node_selector = { workload = "batch" }                     # spec.nodeSelector
    tolerations = [{ key = "dedicated", operator = "Equal", value = "batch", effect = "NoSchedule" }]
    node_affinity = [{ matchExpressions = [{ key = "kscaler.io/pool", operator = "In", values = ["batch"] }] }]
                                 # requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms

    [[phases]]                   # demand over time, one phase after the other
    name = "quiet"
    duration = "20s"
    replicas = { web = 2 }

Bad input raises ScenarioError naming the field and the fix.
"""
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .placement import NODE_SELECTOR_OPERATORS, TAINT_EFFECTS, Constraints

UNITS = {"": 1, "Ki": 1024, "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3}
OWNER_KINDS = ("ReplicaSet", "StatefulSet", "Job", "DaemonSet", "ReplicationController")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the field and the fix."""


def parse_duration(value, where):
    """'20s', '1m30s', '500ms', or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and re.fullmatch(r"(\d+(\.\d+)?(ms|s|m|h))+", value.strip()):
        scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
        seconds = sum(float(n) * scale[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ms|s|m|h)", value))
    else:
        raise ScenarioError(f"{where}: {value!r} is not a duration; write e.g. \"20s\", \"1m30s\" or a number of seconds")
    if seconds < 0:
        raise ScenarioError(f"{where}: a duration cannot be negative")
    return seconds


def parse_bytes(value, where):
    """'512Mi', '8Gi', '1G' or a number of bytes, as Kubernetes writes quantities."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = isinstance(value, str) and re.fullmatch(r"(\d+(\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G)?", value.strip())
    if not match:
        raise ScenarioError(f"{where}: {value!r} is not a memory quantity; write e.g. \"512Mi\" or \"8Gi\"")
    return float(match.group(1)) * UNITS[match.group(3) or ""]


def positive_number(value, where, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise ScenarioError(f"{where}: {value!r} must be a {'non-negative' if allow_zero else 'positive'} number")
    return float(value)


@dataclass(frozen=True)
class Size:
    cpu: float
    memory: float


@dataclass(frozen=True)
class Workload:
    name: str
    cpu: float
    memory: float
    usage: float
    kind: str
    namespace: str
    # minAvailable of the workload's PodDisruptionBudget (an int or "N%"); None: no PDB.
    pdb_min_available: int | str | None = None
    # Its pods' nodeSelector, required node affinity and tolerations.
    constraints: Constraints = field(default_factory=Constraints)

    def min_available(self, expected):
        """The PDB's minAvailable in pods for `expected` matching pods, as the disruption
        controller rounds a percentage (up)."""
        value = self.pdb_min_available
        if isinstance(value, str):
            return -(-int(value[:-1]) * expected // 100)
        return value


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    duration: float
    replicas: dict

    @property
    def end(self):
        return self.start + self.duration


@dataclass
class Scenario:
    name: str
    boot_delay: float
    never_ready_share: float
    instance_sizes: dict
    workloads: dict
    phases: list = field(default_factory=list)
    # Seconds from a pod's binding to a node until it is Ready.
    pod_startup: float = 2.0

    @property
    def duration(self):
        return self.phases[-1].end

    def phase_at(self, t):
        """The phase running at `t` seconds after the start (the last one after the end)."""
        for phase in self.phases:
            if t < phase.end:
                return phase
        return self.phases[-1]

    def replicas_at(self, t):
        return dict(self.phase_at(max(0.0, t)).replicas)

    def size_of(self, instance_type):
        size = self.instance_sizes.get(instance_type)
        if size is None:
            raise ScenarioError(f"cluster.instance_sizes has no entry for {instance_type}, which kscaler launched; "
                                f"add \"{instance_type}\" = {{ cpu = ..., memory = \"...\" }}")
        return size

    def nodes_needed(self, replicas, size):
        """Workers of `size` that first-fit decreasing needs for these pods: the demand in nodes."""
        requests = sorted(((w.cpu, w.memory) for name, w in self.workloads.items()
                           for _ in range(replicas.get(name, 0))), reverse=True)
        free = []
        for cpu, memory in requests:
            for i, (c, m) in enumerate(free):
                if cpu <= c + 1e-9 and memory <= m + 1e-9:
                    free[i] = (c - cpu, m - memory)
                    break
            else:
                free.append((size.cpu - cpu, size.memory - memory))
        return len(free)


def load(path):
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    return parse(data, str(path))


def parse(data, source="scenario"):
    known = {"name", "cluster", "workloads", "phases"}
    for key in data:
        if key not in known:
            raise ScenarioError(f"{source}: unknown key {key!r}; known keys are {', '.join(sorted(known))}")
    cluster = data.get("cluster", {})
    for key in cluster:
        if key not in {"boot_delay", "never_ready_share", "instance_sizes", "pod_startup"}:
            raise ScenarioError(f"{source}: unknown key cluster.{key}; use boot_delay, never_ready_share, pod_startup, "
                                "instance_sizes")
    boot_delay = parse_duration(cluster.get("boot_delay", "6s"), "cluster.boot_delay")
    pod_startup = parse_duration(cluster.get("pod_startup", "2s"), "cluster.pod_startup")
    share = positive_number(cluster.get("never_ready_share", 0.0), "cluster.never_ready_share", allow_zero=True)
    if share > 1:
        raise ScenarioError("cluster.never_ready_share must be between 0 and 1 (a share of launched instances)")
    sizes = {}
    for instance_type, spec in cluster.get("instance_sizes", {"t3.large": {"cpu": 2, "memory": "8Gi"}}).items():
        where = f"cluster.instance_sizes.{instance_type}"
        if not isinstance(spec, dict) or set(spec) != {"cpu", "memory"}:
            raise ScenarioError(f"{where}: write {{ cpu = <cores>, memory = \"<quantity>\" }}")
        sizes[instance_type] = Size(positive_number(spec["cpu"], where + ".cpu"), parse_bytes(spec["memory"], where + ".memory"))

    workloads = {}
    for name, spec in data.get("workloads", {}).items():
        where = f"workloads.{name}"
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name):
            raise ScenarioError(f"{where}: a workload name must be a Kubernetes name (lowercase letters, digits, -)")
        unknown = set(spec) - {"cpu", "memory", "usage", "kind", "namespace", "pdb_min_available", "node_selector",
                               "tolerations", "node_affinity"}
        if unknown:
            raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}; use cpu, memory, usage, kind, namespace, "
                                "pdb_min_available, node_selector, tolerations, node_affinity")
        if "cpu" not in spec or "memory" not in spec:
            raise ScenarioError(f"{where}: cpu and memory requests are required")
        usage = positive_number(spec.get("usage", 0.6), where + ".usage", allow_zero=True)
        kind = spec.get("kind", "ReplicaSet")
        if kind not in OWNER_KINDS or kind == "DaemonSet":
            raise ScenarioError(f"{where}.kind: {kind!r} is not one of ReplicaSet, StatefulSet, Job, ReplicationController "
                                "(DaemonSet pods are added per node by the simulator)")
        workloads[name] = Workload(name, positive_number(spec["cpu"], where + ".cpu"), parse_bytes(spec["memory"], where + ".memory"),
                                   min(usage, 1.0), kind, spec.get("namespace", "default"),
                                   parse_min_available(spec.get("pdb_min_available"), where + ".pdb_min_available"),
                                   parse_constraints(spec, where))

    phases, start = [], 0.0
    for index, spec in enumerate(data.get("phases", [])):
        where = f"phases[{index}]"
        duration = parse_duration(spec.get("duration", ""), where + ".duration")
        replicas = spec.get("replicas", {})
        for name, count in replicas.items():
            if name not in workloads:
                raise ScenarioError(f"{where}.replicas: unknown workload {name!r}; define it under [workloads.{name}]")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ScenarioError(f"{where}.replicas.{name}: {count!r} must be a whole number of pods")
        phases.append(Phase(spec.get("name", f"phase {index + 1}"), start, duration, dict(replicas)))
        start += duration
    if not phases or start <= 0:
        raise ScenarioError(f"{source}: no [[phases]] with a duration; a scenario needs at least one")
    return Scenario(data.get("name", source), boot_delay, share, sizes, workloads, phases, pod_startup)


def parse_min_available(value, where):
    """A PDB's minAvailable: a whole number of pods or a percentage "N%" (0–100); None: no PDB."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{1,3}%", value.strip()) and int(value.strip()[:-1]) <= 100:
        return value.strip()
    raise ScenarioError(f"{where}: {value!r} is neither a whole number of pods nor a percentage; write e.g. 2 or \"50%\"")


def parse_constraints(spec, where):
    """node_selector, tolerations and node_affinity of a workload, checked as the API would."""
    selector = spec.get("node_selector", {})
    if not isinstance(selector, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in selector.items()):
        raise ScenarioError(f"{where}.node_selector: write a table of label = \"value\" (values are strings: gpu = \"true\")")
    tolerations = spec.get("tolerations", [])
    if not isinstance(tolerations, list):
        raise ScenarioError(f"{where}.tolerations: write a list of {{ key, operator, value, effect }}")
    for index, toleration in enumerate(tolerations):
        at = f"{where}.tolerations[{index}]"
        if not isinstance(toleration, dict) or set(toleration) - {"key", "operator", "value", "effect", "tolerationSeconds"}:
            raise ScenarioError(f"{at}: write {{ key = ..., operator = \"Equal\" | \"Exists\", value = ..., effect = ... }}")
        operator = toleration.get("operator", "Equal")
        if operator not in ("Equal", "Exists"):
            raise ScenarioError(f"{at}.operator: {operator!r} is neither Equal nor Exists")
        if operator == "Exists" and toleration.get("value"):
            raise ScenarioError(f"{at}.value: must be empty when operator is Exists")
        if not toleration.get("key") and operator != "Exists":
            raise ScenarioError(f"{at}: a toleration without a key must have operator Exists")
        if toleration.get("effect", "") not in ("",) + TAINT_EFFECTS:
            raise ScenarioError(f"{at}.effect: {toleration['effect']!r} is not one of {', '.join(TAINT_EFFECTS)} (or empty: all)")
    terms = spec.get("node_affinity", [])
    if not isinstance(terms, list):
        raise ScenarioError(f"{where}.node_affinity: write a list of {{ matchExpressions = [...] }} terms (ORed)")
    for index, term in enumerate(terms):
        at = f"{where}.node_affinity[{index}]"
        if not isinstance(term, dict) or set(term) != {"matchExpressions"} or not isinstance(term["matchExpressions"], list):
            raise ScenarioError(f"{at}: write {{ matchExpressions = [{{ key = ..., operator = ..., values = [...] }}] }}")
        for n, requirement in enumerate(term["matchExpressions"]):
            there = f"{at}.matchExpressions[{n}]"
            if not isinstance(requirement, dict) or not requirement.get("key") or set(requirement) - {"key", "operator", "values"}:
                raise ScenarioError(f"{there}: write {{ key = ..., operator = ..., values = [...] }}")
            operator, values = requirement.get("operator"), requirement.get("values", [])
            if operator not in NODE_SELECTOR_OPERATORS:
                raise ScenarioError(f"{there}.operator: {operator!r} is not one of {', '.join(NODE_SELECTOR_OPERATORS)}")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ScenarioError(f"{there}.values: write a list of strings")
            if operator in ("In", "NotIn") and not values:
                raise ScenarioError(f"{there}.values: {operator} needs at least one value")
            if operator in ("Exists", "DoesNotExist") and values:
                raise ScenarioError(f"{there}.values: {operator} takes no values")
            if operator in ("Gt", "Lt") and (len(values) != 1 or not re.fullmatch(r"-?\d+", values[0])):
                raise ScenarioError(f"{there}.values: {operator} takes exactly one integer, as a string")
    return Constraints(dict(selector), tuple(terms), tuple(tolerations))


def never_ready(ordinal, share):
    """Whether the `ordinal`-th launched instance (1-based) never boots: deterministic, so that
    a share of 0.5 fails launches 1, 3, 5, … and a share of 0.25 fails 1, 5, 9, …"""
    return share > 0 and math.ceil(ordinal * share - 1e-9) > math.ceil((ordinal - 1) * share - 1e-9)
