"""Where a pod may run, as the scheduler's filters decide it, and what a pool's nodes look like.

The filters, in the default scheduler profile's order (each node is turned down by the first
that fails, which is the reason the PodScheduled condition's message counts):
  NodeUnschedulable  a cordoned node (spec.unschedulable) takes only pods that tolerate
                     node.kubernetes.io/unschedulable:NoSchedule
  TaintToleration    every NoSchedule/NoExecute taint of the node must be tolerated
                     (PreferNoSchedule never blocks)
  NodeAffinity       spec.nodeSelector (every pair a label of the node) and the required node
                     affinity (nodeSelectorTerms ORed, a term's matchExpressions ANDed; In,
                     NotIn, Exists, DoesNotExist, Gt, Lt; an empty term matches nothing;
                     matchFields are not read)
  NodeResourcesFit   requests against what is left (the caller's job: the simulation's room)
Field and operator meanings follow the Kubernetes API reference (core/v1 Toleration, Taint,
NodeSelectorRequirement).

A pool's node template is what a new node of it registers with (kscaler's user data: k3s
--node-label and --node-taint): the pool's labels plus kscaler.io/cluster, kscaler.io/pool and
node.kubernetes.io/instance-type, and the pool's taints. Read from the sandbox's kscaler config:
`pools.<name>` (labels, taints, min, priority, capacity_type, instance_types) or, without pools,
`workers` as the one pool `workers.pool`.
"""
import re
from dataclasses import dataclass, field

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")
# What the DefaultTolerationSeconds admission plugin adds to every pod that does not say
# otherwise: it may stay 300 s on a node that went NotReady or unreachable.
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)
# Labels every node's kubelet sets (node_object in kubeapi.py writes the same).
KUBELET_LABELS = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


# MARK: taints and tolerations

def parse_taint(text):
    """`key=value:Effect` or `key:Effect` (kubectl taint's and k3s --node-taint's spelling) as
    the API's Taint object."""
    match = re.fullmatch(r"([^=:\s]+)(?:=([^:\s]*))?:(NoSchedule|PreferNoSchedule|NoExecute)", text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a taint: write key=value:Effect or key:Effect (Effect NoSchedule, "
                         "PreferNoSchedule or NoExecute)")
    key, value, effect = match.groups()
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def tolerates(toleration, taint):
    """core/v1 Toleration.ToleratesTaint: an empty effect matches every effect, an empty key
    with Exists every taint; Equal (the default) compares the values."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    key = toleration.get("key") or ""
    if not key:
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(taints, tolerations):
    """The first NoSchedule/NoExecute taint no toleration tolerates, or None."""
    for taint in taints or ():
        if taint.get("effect") in BLOCKING_EFFECTS and not any(tolerates(t, taint) for t in tolerations or ()):
            return taint
    return None


# MARK: node affinity

def requirement_matches(requirement, labels):
    key, operator, values = requirement.get("key"), requirement.get("operator"), requirement.get("values") or []
    value = labels.get(key)
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt"):
        try:
            label, bound = int(value), int(values[0])
        except (TypeError, ValueError, IndexError):
            return False
        return label > bound if operator == "Gt" else label < bound
    return False


def term_matches(term, labels):
    """A nodeSelectorTerm: all its matchExpressions; an empty term (or one with matchFields,
    which name nodes, not read here) matches nothing."""
    expressions = term.get("matchExpressions") or []
    return bool(expressions) and not term.get("matchFields") and all(requirement_matches(r, labels) for r in expressions)


@dataclass(frozen=True)
class Constraints:
    """A pod's spec.nodeSelector, required node affinity terms and tolerations."""
    node_selector: dict = field(default_factory=dict)
    node_affinity: tuple = ()
    tolerations: tuple = ()

    def __hash__(self):
        return hash((tuple(sorted(self.node_selector.items())), repr(self.node_affinity), repr(self.tolerations)))

    def affinity_matches(self, labels):
        if any(labels.get(k) != v for k, v in self.node_selector.items()):
            return False
        return not self.node_affinity or any(term_matches(t, labels) for t in self.node_affinity)

    def rejection(self, labels, taints, unschedulable=False):
        """Why a node with these labels, taints and cordon turns the pod down, in the words of
        the scheduler's message ("node(s) had untolerated taint {dedicated: batch}"); None if it
        may run there (room aside)."""
        if unschedulable and not any(tolerates(t, UNSCHEDULABLE_TAINT) for t in self.tolerations):
            return "node(s) were unschedulable"
        taint = untolerated(taints, self.tolerations)
        if taint is not None:
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
        if not self.affinity_matches(labels):
            return "node(s) didn't match Pod's node affinity/selector"
        return None

    def api_affinity(self):
        """spec.affinity as the API writes it, or None."""
        if not self.node_affinity:
            return None
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [dict(t) for t in self.node_affinity]}}}


def unschedulable_message(rejections, nodes):
    """The scheduler's FailedScheduling words for a pod no node took: each reason with its
    count, sorted as the scheduler sorts them."""
    if nodes == 0:
        return "no nodes available to schedule pods"
    counts = {}
    for reason in rejections:
        counts[reason] = counts.get(reason, 0) + 1
    parts = sorted(f"{n} {reason}" for reason, n in counts.items())
    return (f"0/{nodes} nodes are available: {', '.join(parts)}. preemption: 0/{nodes} nodes are available: "
            f"{nodes} Preemption is not helpful for scheduling.")


# MARK: pools' node templates

@dataclass(frozen=True)
class NodeTemplate:
    pool: str
    labels: dict
    taints: tuple
    instance_type: str | None
    min: int = 0
    priority: int = 0
    capacity_type: str = "on-demand"

    def node_labels(self, cluster_id, name, instance_type=None):
        """The labels a node of this pool registers with (kubelet's own included)."""
        labels = {"kubernetes.io/hostname": name, **KUBELET_LABELS, "kscaler.io/cluster": cluster_id,
                  "kscaler.io/pool": self.pool}
        if instance_type or self.instance_type:
            labels["node.kubernetes.io/instance-type"] = instance_type or self.instance_type
        labels.update(self.labels)
        return labels

    def takes(self, constraints, cluster_id):
        """Whether a new node of this pool could take a pod with these constraints (room aside)."""
        return constraints.rejection(self.node_labels(cluster_id, "new-node"), self.taints) is None


def node_templates(config):
    """Each pool's template from a kscaler config (dict), highest priority first, then by name,
    as kscaler orders its pools; without `pools`, the one pool `workers` describes."""
    pools = config.get("pools")
    if not pools:
        workers = config.get("workers") or {}
        types = workers.get("instance_types") or [None]
        return [NodeTemplate(workers.get("pool", "default"), dict(workers.get("labels") or {}),
                             tuple(parse_taint(t) for t in workers.get("taints") or ()), types[0],
                             int((config.get("nodes") or {}).get("min", 1)))]
    templates = []
    for name, pool in pools.items():
        types = pool.get("instance_types") or [None]
        templates.append(NodeTemplate(name, dict(pool.get("labels") or {}), tuple(parse_taint(t) for t in pool.get("taints") or ()),
                                      types[0], int(pool.get("min", 0)), int(pool.get("priority", 0)),
                                      pool.get("capacity_type", "on-demand")))
    return sorted(templates, key=lambda t: (-t.priority, t.pool))
