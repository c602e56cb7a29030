#!/usr/bin/env python3
"""A stateful stand-in for the Kubernetes API server (kube-apiserver as k3s runs it), for the
Swift tests and the local sandbox: no kube-apiserver can run on the test machines. Python stdlib
only, plus the `openssl` binary for the certificates. It is grounded against the real kubectl
(infra/local/tests/test_kubeapi_kubectl.py): where the two disagree, kubectl is right.

What it serves, over HTTPS on 127.0.0.1, to clients authenticated by bearer token or by a client
certificate its own CA signed (user = CN, groups = O):
  /version, discovery (/api, /api/v1, /apis, /apis/<group>/<version>), /healthz /livez /readyz
  core/v1   nodes (get, list, create, patch, update, delete), pods (get, list, create, patch,
            delete, pods/eviction), events (get, list, create, patch, delete), namespaces
            (get, list: the usual four plus every namespace an object is in)
  apps/v1   daemonsets (get, list): one for every DaemonSet a pod names as its owner, which is
            what `kubectl drain --ignore-daemonsets` looks up
  policy/v1 poddisruptionbudgets (get, list, create, patch, delete), honest status
  authorization.k8s.io/v1 selfsubjectaccessreviews; authentication.k8s.io/v1 selfsubjectreviews
  Table output (`Accept: ...;as=Table`) for nodes, pods and PDBs, as `kubectl get` asks for it
  `limit`/`continue` paging, labelSelector (equality, set-based `in`/`notin`, existence) and
  the fieldSelectors the real server supports for these kinds
Errors are `Status` objects with the real server's reasons, codes and message shapes.

Not Kubernetes, for tests: /_standin/faults (inject a status, a raw body or a delay into the
next matching requests), /_standin/state (read or seed the store), /_standin/permissions (deny
rules per user), /_standin/requests (what was asked, without headers). They need credentials too.

Where the real apiserver differs:
  * No watch (`?watch=1` is answered 405), no server-side apply (415), no protobuf/CBOR (always
    JSON, which clients fall back to), no aggregated discovery (the legacy documents, which
    kubectl falls back to), no OpenAPI (/openapi/v2 and /openapi/v3 are 404, which kubectl
    tolerates for everything it is used for here), no admission, no validation beyond what a
    client could trip on (names, namespaces, preconditions).
  * Nothing runs behind it: no kubelet, scheduler, controllers or garbage collector. An evicted
    or deleted pod is removed at once (the real server marks it terminating and the kubelet
    removes it after its grace period); deleting a node does not touch its pods (the pod GC
    would, later); cordoning adds the node.kubernetes.io/unschedulable taint at once (the node
    lifecycle controller does it a moment later).
  * PodDisruptionBudget status is computed from the pods in the store on every write, the way
    the disruption controller does for an integer or percentage `minAvailable` (expected pods =
    the matching pods); a budget seeded with a pinned `disruptions_allowed` keeps that number,
    minus the evictions since, and reports desiredHealthy = currentHealthy - disruptionsAllowed.
    Evictions do not record `status.disruptedPods`.
  * Strategic merge patch is a JSON merge patch plus merge-by-key for a few lists (conditions,
    addresses, ownerReferences, containers, finalizers) and the `$patch`, `$setElementOrder`
    and `$deleteFromPrimitiveList` directives; other lists, a node's taints among them (atomic
    on the real server too), are replaced whole. Enough for what kubectl cordon, taint, label
    and annotate and kscaler send; not the general algorithm.
  * Authorization is allow-all with explicit deny rules per user (verb, group, resource), not
    RBAC; a denial reads like RBAC's.

Usage: kubeapi.py --dir DIR [--state-file FILE] [--port N] [--lifetime S] [--exit-on-stdin-eof]
                  [--deny USER:VERB:GROUP:RESOURCE ...] [--server-version 1.31.0] [--verbose]
Writes certificates, a token and kubeconfigs to DIR, prints one JSON line once listening
(never the token itself), and exits after --lifetime seconds or, with --exit-on-stdin-eof, as
soon as stdin closes.
"""
import argparse
import base64
import copy
import datetime
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE_ACCOUNT = "system:serviceaccount:kube-system:kscaler"
DEFAULT_VERSION = "1.31.0"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text):
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


# MARK: errors (the real server's Status objects)

class APIError(Exception):
    """A failure answered as a Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message}
        if self.reason:  # a few real failures carry none
            body["reason"] = self.reason
        body["code"] = self.code
        if self.details is not None:
            body["details"] = self.details
        return body


def qualified(group, resource):
    """GroupResource.String(): `nodes`, `poddisruptionbudgets.policy`."""
    return f"{resource}.{group}" if group else resource


def not_found(group, resource, name):
    return APIError(404, "NotFound", f'{qualified(group, resource)} "{name}" not found',
                    {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource})


def conflict(group, resource, name, why):
    details = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {qualified(group, resource)} "{name}": {why}', details)


def already_exists(group, resource, name):
    details = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return APIError(409, "AlreadyExists", f'{qualified(group, resource)} "{name}" already exists', details)


def bad_request(message):
    return APIError(400, "BadRequest", message)


def invalid(kind, name, causes):
    """422 Invalid, as validation answers: `Event "x" is invalid: field: Required value: ...`."""
    text = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    return APIError(422, "Invalid", f'{kind} "{name}" is invalid: {text}',
                    {"name": name, "kind": kind, "causes": [{"reason": c.get("reason", "FieldValueRequired"),
                                                             "message": c["message"], "field": c["field"]} for c in causes]})


NOT_FOUND_PATH = APIError(404, "NotFound", "the server could not find the requested resource", {})
METHOD_NOT_ALLOWED = APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})
UNAUTHORIZED = APIError(401, "Unauthorized", "Unauthorized")


# MARK: quantities and selectors

def cpu_quantity(value):
    """Cores as a Kubernetes quantity: 2 -> "2", 0.25 -> "250m"; strings pass through."""
    if isinstance(value, str):
        return value
    millis = round(float(value) * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def memory_quantity(value):
    """Bytes as a Kubernetes quantity: 8 GiB -> "8Gi"; strings pass through."""
    if isinstance(value, str):
        return value
    value = int(value)
    for suffix, size in (("Gi", 1024 ** 3), ("Mi", 1024 ** 2), ("Ki", 1024)):
        if value and value % size == 0:
            return f"{value // size}{suffix}"
    return str(value)


def resources_quantities(values):
    out = {}
    for key, value in (values or {}).items():
        out[key] = cpu_quantity(value) if key == "cpu" else memory_quantity(value) if key in ("memory", "ephemeral-storage") \
            else (value if isinstance(value, str) else str(value))
    return out


_LABEL_REQUIREMENT = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|(?<=\s)(in|notin)\s*\(([^)]*)\))?\s*$")


def parse_label_selector(text):
    """`a=b,c!=d,e,!f,g in (x,y),h notin (z)` as a predicate over a labels dict; 400 if malformed."""
    if not text:
        return lambda labels: True
    parts, depth, current = [], 0, ""
    for ch in text:  # split on commas outside parentheses
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    parts.append(current)
    checks = []
    for part in parts:
        match = _LABEL_REQUIREMENT.match(part)
        if not match or (match.group(1) and (match.group(3) or match.group(5))):
            raise bad_request(f"unable to parse requirement: found '{part.strip()}', expected: identifier")
        negated, key, op, value, set_op, values = match.groups()
        if op in ("=", "=="):
            checks.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif op == "!=":
            checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif set_op == "in":
            wanted = {v.strip() for v in values.split(",")}
            checks.append(lambda labels, k=key, w=wanted: k in labels and labels[k] in w)
        elif set_op == "notin":
            unwanted = {v.strip() for v in values.split(",")}
            checks.append(lambda labels, k=key, w=unwanted: labels.get(k) not in w)
        elif negated:
            checks.append(lambda labels, k=key: k not in labels)
        else:
            checks.append(lambda labels, k=key: k in labels)
    return lambda labels: all(check(labels or {}) for check in checks)


def selector_matches(selector, labels):
    """A metav1.LabelSelector: nil matches nothing, {} matches everything (policy/v1 PDBs)."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


# Field selectors each kind supports on the real server; anything else is a 400.
FIELD_SELECTORS = {
    "nodes": ("metadata.name", "spec.unschedulable"),
    "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
             "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": ("metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
               "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
               "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent",
               "source", "type"),
}


def field_value(obj, path):
    """The string a field selector compares: booleans as "true"/"false", missing as ""."""
    if path == "source":
        return (obj.get("source") or {}).get("component", "")
    value = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if path == "spec.serviceAccountName" and value is None:
        return "default"
    return "" if value is None else str(value)


def parse_field_selector(text, resource):
    if not text:
        return lambda obj: True
    allowed = FIELD_SELECTORS.get(resource, ("metadata.name", "metadata.namespace"))
    checks = []
    for part in text.split(","):
        match = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise bad_request(f'"{path}" is not a known field selector: only "{", ".join(allowed)}"')
        checks.append((path, op == "!=", value))
    return lambda obj: all((field_value(obj, p) != v) if neg else (field_value(obj, p) == v) for p, neg, v in checks)


# MARK: patches

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Lists that strategic merge patch merges by a key (patchMergeKey in the Go types); None: a
# list of primitives merged as a set. Every other list is atomic and replaced whole; so are a
# node's taints (`kubectl taint` sends the whole new list, removals included).
STRATEGIC_LISTS = {"conditions": "type", "addresses": "type", "ownerReferences": "uid",
                   "containers": "name", "initContainers": "name", "finalizers": None}


def strategic_merge_patch(target, patch):
    """A strategic merge patch for the fields this stand-in's clients touch (see the module doc)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    orders = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and value.get("$patch") == "delete":
            result.pop(key, None)
        elif isinstance(value, list) and key in STRATEGIC_LISTS:
            result[key] = _merge_list(result.get(key) or [], value, STRATEGIC_LISTS[key])
        elif isinstance(value, dict):
            result[key] = strategic_merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    for name, order in orders.items():
        merge_key = STRATEGIC_LISTS.get(name)
        items = result.get(name) or []
        if merge_key is None:
            rank = {v: i for i, v in enumerate(order)}
            result[name] = sorted(items, key=lambda v: rank.get(v, len(rank)))
        else:
            rank = {o.get(merge_key): i for i, o in enumerate(order) if isinstance(o, dict)}
            result[name] = sorted(items, key=lambda o: rank.get(o.get(merge_key), len(rank)))
    return result


def _merge_list(current, patch, merge_key):
    if merge_key is None:
        return current + [v for v in patch if v not in current]
    merged = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict):
            continue
        key = item.get(merge_key)
        index = next((i for i, existing in enumerate(merged) if existing.get(merge_key) == key), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def json_patch(target, operations):
    """RFC 6902 JSON patch: add, remove, replace, test, copy, move."""
    doc = copy.deepcopy(target)

    def split(pointer):
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise bad_request(f"invalid JSON pointer {pointer!r}")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def parent(parts):
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def get(parts):
        node = doc
        for part in parts:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def put(parts, value, replace):
        container, last = parent(parts), parts[-1]
        if isinstance(container, list):
            if last == "-":
                container.append(value)
            elif replace:
                container[int(last)] = value
            else:
                container.insert(int(last), value)
        else:
            if replace and last not in container:
                raise KeyError(last)
            container[last] = value

    def remove(parts):
        container, last = parent(parts), parts[-1]
        return container.pop(int(last)) if isinstance(container, list) else container.pop(last)

    if not isinstance(operations, list):
        raise bad_request("a JSON patch is a list of operations")
    for operation in operations:
        op, parts = operation.get("op"), split(operation.get("path", ""))
        try:
            if op == "add":
                put(parts, copy.deepcopy(operation["value"]), False)
            elif op == "remove":
                remove(parts)
            elif op == "replace":
                put(parts, copy.deepcopy(operation["value"]), True)
            elif op == "test":
                if get(parts) != operation["value"]:
                    raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                                   f"testing value {operation.get('path')} failed")
            elif op in ("copy", "move"):
                source = split(operation["from"])
                value = remove(source) if op == "move" else copy.deepcopy(get(source))
                put(parts, value, False)
            else:
                raise bad_request(f"unexpected kind: {op}")
        except (KeyError, IndexError, ValueError, TypeError):
            raise APIError(422, "Invalid", f"the server rejected our request due to an error in our request: "
                                           f"unable to {op} {operation.get('path')}") from None
    return doc


# MARK: the store

@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool
    verbs: tuple
    short_names: tuple = ()
    stored: bool = True  # False: computed from other objects (namespaces, daemonsets)

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = {
    ("", "nodes"): Kind("", "v1", "nodes", "Node", False, ("create", "delete", "get", "list", "patch", "update"), ("no",)),
    ("", "pods"): Kind("", "v1", "pods", "Pod", True, ("create", "delete", "get", "list", "patch", "update"), ("po",)),
    ("", "events"): Kind("", "v1", "events", "Event", True, ("create", "delete", "get", "list", "patch", "update"), ("ev",)),
    ("", "namespaces"): Kind("", "v1", "namespaces", "Namespace", False, ("get", "list"), ("ns",), stored=False),
    ("apps", "daemonsets"): Kind("apps", "v1", "daemonsets", "DaemonSet", True, ("get", "list"), ("ds",), stored=False),
    ("policy", "poddisruptionbudgets"): Kind("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True,
                                              ("create", "delete", "get", "list", "patch", "update"), ("pdb",)),
}
STORED = [k.resource for k in KINDS.values() if k.stored]


def kind_of(resource):
    return next(k for k in KINDS.values() if k.resource == resource)


OWNER_API_VERSIONS = {"ReplicaSet": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1", "Deployment": "apps/v1",
                      "Job": "batch/v1", "CronJob": "batch/v1"}
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def pod_ready(pod):
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def pod_healthy(pod):
    """What the disruption controller counts as healthy: ready and not being deleted."""
    return pod_ready(pod) and not pod["metadata"].get("deletionTimestamp")


class KubeState:
    """The cluster as the API shows it: Nodes, Pods, PodDisruptionBudgets and Events as the
    JSON dicts the API serves, behind one lock, with one resourceVersion counter bumped on
    every write (each object carries the counter's value at its last write).

    Whoever owns the cluster seeds it with add_*/upsert_*/sync and reads it with the snapshot
    methods (deep copies). The API's own writes (a cordon, a node deletion, an eviction) are
    reported through the hooks, set as attributes, called after the write with the lock
    released (so a hook may call back in):
        on_node_deleted(name)            a client deleted a node
        on_node_patched(name, node)      a client patched or replaced a node (cordon, labels, ...)
        on_pod_evicted(namespace, name)  a client evicted a pod (it is gone already)
        on_pod_deleted(namespace, name)  a client deleted a pod
        on_event_created(event)          a client created an Event
    A simulated cluster (cluster.py) would call `sync(nodes=..., pods=...)` on every tick with
    what it holds, and drop what the hooks report."""

    def __init__(self):
        self.lock = threading.Lock()
        self.resource_version = 0
        self.objects = {resource: {} for resource in STORED}  # resource -> {(namespace, name): dict}
        # PDBs whose disruptionsAllowed the owner pinned: (namespace, name) -> what is left of it
        self.pinned_budgets = {}
        self.on_node_deleted = None
        self.on_node_patched = None
        self.on_pod_evicted = None
        self.on_pod_deleted = None
        self.on_event_created = None

    # MARK: internals (lock held)

    def _bump(self):
        self.resource_version += 1
        return str(self.resource_version)

    def _stamp(self, obj, kind, namespace, name):
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta["resourceVersion"] = self._bump()
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        return obj

    def _put(self, resource, obj):
        """Stores `obj` (a new dict the store owns) as one write."""
        kind = kind_of(resource)
        meta = obj["metadata"]
        key = (meta.get("namespace", "") if kind.namespaced else "", meta["name"])
        self._stamp(obj, kind, key[0], key[1])
        self.objects[resource][key] = obj
        if resource == "nodes":
            self._sync_unschedulable_taint(obj)
        if resource in ("pods", "poddisruptionbudgets"):
            self._recompute_budgets()
        return obj

    def _remove(self, resource, key):
        obj = self.objects[resource].pop(key)
        self._bump()
        if resource == "poddisruptionbudgets":
            self.pinned_budgets.pop(key, None)
        if resource == "pods":
            self._recompute_budgets()
        return obj

    @staticmethod
    def _sync_unschedulable_taint(node):
        spec = node.setdefault("spec", {})
        taints = [t for t in spec.get("taints") or [] if t.get("key") != UNSCHEDULABLE_TAINT]
        if spec.get("unschedulable"):
            existing = next((t for t in spec.get("taints") or [] if t.get("key") == UNSCHEDULABLE_TAINT), None)
            taints.append(existing or {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": now_rfc3339()})
        if taints:
            spec["taints"] = taints
        else:
            spec.pop("taints", None)

    def _recompute_budgets(self):
        """Every PDB's status from the pods now (the disruption controller's job). Changing a
        status is part of the write that caused it: no extra resourceVersion."""
        for key, pdb in self.objects["poddisruptionbudgets"].items():
            namespace = key[0]
            selector = (pdb.get("spec") or {}).get("selector")
            pods = [p for (ns, _), p in self.objects["pods"].items()
                    if ns == namespace and selector_matches(selector, p["metadata"].get("labels"))
                    and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
            expected = len(pods)
            healthy = sum(1 for p in pods if pod_healthy(p))
            spec = pdb.get("spec") or {}
            if key in self.pinned_budgets:
                allowed = max(0, self.pinned_budgets[key])
                desired = max(0, healthy - allowed)
            else:
                if spec.get("minAvailable") is not None:
                    desired = self._scaled(spec["minAvailable"], expected, up=True)
                elif spec.get("maxUnavailable") is not None:
                    desired = max(0, expected - self._scaled(spec["maxUnavailable"], expected, up=True))
                else:
                    desired = expected  # neither: the API requires one; treat as "no disruption"
                allowed = max(0, healthy - desired)
            generation = pdb["metadata"].get("generation", 1)
            previous = (pdb.get("status") or {})
            condition = {"type": "DisruptionAllowed", "status": "True" if allowed > 0 else "False",
                         "reason": "SufficientPods" if allowed > 0 else "InsufficientPods", "message": "",
                         "observedGeneration": generation}
            old = next((c for c in previous.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
            condition["lastTransitionTime"] = old["lastTransitionTime"] if old and old.get("status") == condition["status"] \
                else now_rfc3339()
            pdb["status"] = {"observedGeneration": generation, "disruptionsAllowed": allowed, "currentHealthy": healthy,
                             "desiredHealthy": desired, "expectedPods": expected, "conditions": [condition]}

    @staticmethod
    def _scaled(value, expected, up):
        if isinstance(value, str) and value.endswith("%"):
            share = int(value[:-1]) * expected
            return -(-share // 100) if up else share // 100
        return int(value)

    def _run_hooks(self, calls):
        for hook, args in calls:
            if hook is not None:
                hook(*args)

    # MARK: building objects

    @staticmethod
    def node_object(name, provider_id=None, ready=True, labels=None, unschedulable=False, allocatable=None,
                    taints=None, annotations=None, internal_ip=None):
        """A Node as a kubelet (k3s agent) registers it. `ready`: True, False or None (Unknown)."""
        allocatable = resources_quantities(allocatable or {"cpu": 2, "memory": 8 * 1024 ** 3})
        allocatable.setdefault("pods", "110")
        now = now_rfc3339()
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                       "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}
        node_labels.update(labels or {})
        spec = {}
        if provider_id:
            spec["providerID"] = provider_id
        if unschedulable:
            spec["unschedulable"] = True
        if taints:
            spec["taints"] = copy.deepcopy(taints)
        addresses = [{"type": "Hostname", "address": name}]
        if internal_ip:
            addresses.insert(0, {"type": "InternalIP", "address": internal_ip})
        return {"metadata": {"name": name, "labels": node_labels, "annotations": dict(annotations or {})},
                "spec": spec,
                "status": {"conditions": [KubeState.ready_condition(ready, now)], "allocatable": allocatable,
                           "capacity": dict(allocatable), "addresses": addresses,
                           "nodeInfo": {"kubeletVersion": "v1.31.0+k3s1", "kubeProxyVersion": "v1.31.0+k3s1",
                                        "containerRuntimeVersion": "containerd://1.7.20-k3s1",
                                        "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0-21-cloud-amd64",
                                        "operatingSystem": "linux", "architecture": "amd64",
                                        "machineID": "", "systemUUID": "", "bootID": ""}}}

    @staticmethod
    def ready_condition(ready, at):
        if ready is None:
            status, reason, message = "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."
        elif ready:
            status, reason, message = "True", "KubeletReady", "kubelet is posting ready status"
        else:
            status, reason, message = "False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false"
        return {"type": "Ready", "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": at, "lastTransitionTime": at}

    @staticmethod
    def pod_object(namespace, name, node_name, owner_kind=None, owner_name=None, labels=None, phase="Running",
                   requests=None, ready=None, annotations=None, init_requests=None, overhead=None, volumes=None,
                   node_selector=None, affinity=None, tolerations=None, unschedulable_message=None):
        """A Pod as the kubelet reports it. `ready` defaults to phase == Running; `requests` is
        {"cpu": cores or quantity, "memory": bytes or quantity} for its one container;
        `init_requests` a list of such, one init container each (init-0, init-1, ...);
        `overhead` the same shape, written to spec.overhead as is (the real server's RuntimeClass
        admission fills it in from the pod's runtimeClassName; there is no admission here);
        `volumes` a list of core/v1 Volume objects, stored as given; `node_selector` (a dict),
        `affinity` (a core/v1 Affinity) and `tolerations` (core/v1 Tolerations) go to the spec as
        given (the real server's DefaultTolerationSeconds admission would add the not-ready and
        unreachable NoExecute tolerations; there is no admission here). No initContainerStatuses
        are reported, and no kube-api-access volume is added (the real ServiceAccount admission
        adds one). A pod without a node carries PodScheduled False, reason Unschedulable, with
        `unschedulable_message` (the scheduler's words)."""
        ready = (phase == "Running") if ready is None else ready
        now = now_rfc3339()
        meta = {"name": name, "namespace": namespace, "labels": dict(labels or {}), "annotations": dict(annotations or {})}
        if owner_kind:
            owner_name = owner_name or f"{name}-owner"
            meta["ownerReferences"] = [{"apiVersion": OWNER_API_VERSIONS.get(owner_kind, "v1"), "kind": owner_kind,
                                        "name": owner_name, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{owner_kind}/{owner_name}")),
                                        "controller": True, "blockOwnerDeletion": True}]
        container = {"name": "app", "image": "registry.k8s.io/pause:3.9", "resources": {}}
        if requests:
            container["resources"]["requests"] = resources_quantities(requests)
        spec = {"containers": [container], "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "serviceAccountName": "default", "terminationGracePeriodSeconds": 30, "priority": 0}
        if init_requests:
            spec["initContainers"] = [{"name": f"init-{i}", "image": "registry.k8s.io/pause:3.9",
                                       "resources": {"requests": resources_quantities(r)} if r else {}}
                                      for i, r in enumerate(init_requests)]
        if overhead:
            spec["overhead"] = resources_quantities(overhead)
        if volumes:
            spec["volumes"] = copy.deepcopy(volumes)
        if node_selector:
            spec["nodeSelector"] = dict(node_selector)
        if affinity:
            spec["affinity"] = copy.deepcopy(affinity)
        if tolerations:
            spec["tolerations"] = copy.deepcopy(tolerations)
        if node_name:
            spec["nodeName"] = node_name
        if node_name:
            conditions = [{"type": t, "status": "True" if t == "PodScheduled" or ready else "False",
                           "lastProbeTime": None, "lastTransitionTime": now}
                          for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        else:
            conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "lastProbeTime": None,
                           "lastTransitionTime": now,
                           "message": unschedulable_message or
                                      "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
                                      "1 No preemption victims found for incoming pod."}]
        status = {"phase": phase, "conditions": conditions, "qosClass": "Burstable" if requests else "BestEffort"}
        if node_name and phase != "Pending":
            status["startTime"] = now
            status["containerStatuses"] = [{"name": "app", "ready": ready, "restartCount": 0, "started": phase == "Running",
                                            "image": container["image"], "imageID": "",
                                            "state": {"running": {"startedAt": now}} if phase == "Running"
                                            else {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                                                 "reason": "Completed" if phase == "Succeeded" else "Error"}}}]
        return {"metadata": meta, "spec": spec, "status": status}

    @staticmethod
    def pdb_object(namespace, name, match_labels=None, min_available=None, max_unavailable=None, match_expressions=None):
        selector = {}
        if match_labels is not None:
            selector["matchLabels"] = dict(match_labels)
        if match_expressions:
            selector["matchExpressions"] = copy.deepcopy(match_expressions)
        spec = {"selector": selector}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        return {"metadata": {"name": name, "namespace": namespace, "generation": 1}, "spec": spec}

    # MARK: seeding (the owner's side; no hooks)

    def add_node(self, name, provider_id=None, ready=True, labels=None, unschedulable=False, allocatable=None,
                 taints=None, annotations=None, internal_ip=None):
        """Adds (or replaces) a node; returns a copy of what is stored."""
        obj = self.node_object(name, provider_id, ready, labels, unschedulable, allocatable, taints, annotations, internal_ip)
        with self.lock:
            return copy.deepcopy(self._put("nodes", obj))

    def upsert_node(self, name, provider_id=None, ready=True, labels=None, allocatable=None, internal_ip=None, taints=None):
        """What a kubelet does on every status update: creates the node (with `taints`, as
        `--register-with-taints` does), or updates its status, provider id and the given labels
        while keeping what clients set through the API (spec.unschedulable, taints, other labels,
        annotations): after registration the kubelet never touches taints again. Writes (and
        bumps the resourceVersion) only when something changed. Returns whether it wrote."""
        fresh = self.node_object(name, provider_id, ready, labels, allocatable=allocatable, internal_ip=internal_ip,
                                 taints=[dict(t) for t in taints or []] or None)
        with self.lock:
            current = self.objects["nodes"].get(("", name))
            if current is None:
                self._put("nodes", fresh)
                return True
            updated = copy.deepcopy(current)
            updated["metadata"].setdefault("labels", {}).update(fresh["metadata"]["labels"])
            if provider_id:
                updated["spec"]["providerID"] = provider_id
            old_ready = next((c for c in current["status"].get("conditions", []) if c.get("type") == "Ready"), None)
            new_ready = fresh["status"]["conditions"][0]
            if old_ready and old_ready.get("status") == new_ready["status"]:
                new_ready = old_ready  # no transition: keep the timestamps, so nothing changes
            updated["status"].update({k: v for k, v in fresh["status"].items() if k not in ("conditions", "nodeInfo")})
            updated["status"]["conditions"] = [new_ready] + [c for c in current["status"].get("conditions", [])
                                                             if c.get("type") != "Ready"]
            if updated == current:
                return False
            self._put("nodes", updated)
            return True

    def set_node_ready(self, name, ready):
        """Ready True/False, or None for Unknown (the kubelet stopped posting)."""
        with self.lock:
            current = self.objects["nodes"].get(("", name))
            if current is None:
                raise KeyError(f"no node {name}")
            updated = copy.deepcopy(current)
            others = [c for c in updated["status"].get("conditions", []) if c.get("type") != "Ready"]
            updated["status"]["conditions"] = [self.ready_condition(ready, now_rfc3339())] + others
            self._put("nodes", updated)

    def set_node_unschedulable(self, name, unschedulable=True):
        with self.lock:
            current = self.objects["nodes"].get(("", name))
            if current is None:
                raise KeyError(f"no node {name}")
            updated = copy.deepcopy(current)
            if unschedulable:
                updated["spec"]["unschedulable"] = True
            else:
                updated["spec"].pop("unschedulable", None)
            self._put("nodes", updated)

    def delete_node(self, name):
        """Removes a node (its instance went away); False if there was none."""
        with self.lock:
            if ("", name) not in self.objects["nodes"]:
                return False
            self._remove("nodes", ("", name))
            return True

    def add_pod(self, namespace, name, node_name, owner_kind=None, owner_name=None, labels=None, phase="Running",
                requests=None, ready=None, annotations=None, init_requests=None, overhead=None, volumes=None,
                node_selector=None, affinity=None, tolerations=None, unschedulable_message=None):
        obj = self.pod_object(namespace, name, node_name, owner_kind, owner_name, labels, phase, requests, ready, annotations,
                              init_requests, overhead, volumes, node_selector, affinity, tolerations, unschedulable_message)
        with self.lock:
            return copy.deepcopy(self._put("pods", obj))

    def upsert_pod(self, namespace, name, node_name, owner_kind=None, owner_name=None, labels=None, phase="Running",
                   requests=None, ready=None, node_selector=None, affinity=None, tolerations=None, unschedulable_message=None):
        """Creates the pod or updates its node, phase, readiness, labels, requests, placement
        constraints and (pending) the scheduler's message, writing only when something changed.
        Returns whether it wrote. A PodScheduled condition whose status did not change keeps
        its lastTransitionTime."""
        fresh = self.pod_object(namespace, name, node_name, owner_kind, owner_name, labels, phase, requests, ready,
                                node_selector=node_selector, affinity=affinity, tolerations=tolerations,
                                unschedulable_message=unschedulable_message)
        with self.lock:
            current = self.objects["pods"].get((namespace, name))
            if current is None:
                self._put("pods", fresh)
                return True
            if self._same_pod(current, fresh):
                return False
            fresh["metadata"]["uid"] = current["metadata"]["uid"]
            fresh["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"]
            fresh["metadata"]["annotations"] = current["metadata"].get("annotations", {})
            old = {c.get("type"): c for c in current["status"].get("conditions") or []}
            for condition in fresh["status"]["conditions"]:
                before = old.get(condition["type"])
                if before and before.get("status") == condition["status"]:
                    condition["lastTransitionTime"] = before.get("lastTransitionTime")
            self._put("pods", fresh)
            return True

    @staticmethod
    def _same_pod(a, b):
        def essence(p):
            scheduled = next((c for c in p["status"].get("conditions") or [] if c.get("type") == "PodScheduled"), {})
            return (p["metadata"].get("labels"), p["metadata"].get("ownerReferences"), p["spec"].get("nodeName"),
                    p["spec"]["containers"][0].get("resources"), p["status"].get("phase"), pod_ready(p),
                    p["spec"].get("nodeSelector"), p["spec"].get("affinity"), p["spec"].get("tolerations"),
                    scheduled.get("status"), scheduled.get("reason"), scheduled.get("message"))
        return essence(a) == essence(b)

    def delete_pod(self, namespace, name):
        with self.lock:
            if (namespace, name) not in self.objects["pods"]:
                return False
            self._remove("pods", (namespace, name))
            return True

    def add_pdb(self, namespace, name, match_labels=None, disruptions_allowed=None, min_available=None,
                max_unavailable=None, match_expressions=None):
        """A PodDisruptionBudget. Either computed from its pods (`min_available` or
        `max_unavailable`: an int or "N%"), or with `disruptions_allowed` pinned by the owner
        (spec.maxUnavailable shows the same number; evictions count it down)."""
        if disruptions_allowed is not None and min_available is None and max_unavailable is None:
            max_unavailable = disruptions_allowed
        obj = self.pdb_object(namespace, name, match_labels, min_available, max_unavailable, match_expressions)
        with self.lock:
            if disruptions_allowed is not None:
                self.pinned_budgets[(namespace, name)] = int(disruptions_allowed)
            else:
                self.pinned_budgets.pop((namespace, name), None)
            return copy.deepcopy(self._put("poddisruptionbudgets", obj))

    def set_pdb_disruptions_allowed(self, namespace, name, allowed):
        """Pins a PDB's disruptionsAllowed (None: computed from its spec again)."""
        with self.lock:
            key = (namespace, name)
            current = self.objects["poddisruptionbudgets"].get(key)
            if current is None:
                raise KeyError(f"no PodDisruptionBudget {namespace}/{name}")
            if allowed is None:
                self.pinned_budgets.pop(key, None)
            else:
                self.pinned_budgets[key] = int(allowed)
            self._put("poddisruptionbudgets", copy.deepcopy(current))

    def sync(self, nodes=None, pods=None):
        """One tick of the owner: upserts every node and pod given (dicts of the upsert_node /
        upsert_pod arguments) and deletes the nodes and pods not given. None leaves a kind
        alone. Returns how many writes it made."""
        writes = 0
        if nodes is not None:
            wanted = {n["name"] for n in nodes}
            writes += sum(self.upsert_node(**n) for n in nodes)
            for node in self.nodes():
                if node["metadata"]["name"] not in wanted:
                    writes += self.delete_node(node["metadata"]["name"])
        if pods is not None:
            wanted = {(p["namespace"], p["name"]) for p in pods}
            writes += sum(self.upsert_pod(**p) for p in pods)
            for pod in self.pods():
                key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
                if key not in wanted:
                    writes += self.delete_pod(*key)
        return writes

    # MARK: snapshots (deep copies, sorted by namespace and name)

    def _all(self, resource):
        with self.lock:
            return [copy.deepcopy(o) for _, o in sorted(self.objects[resource].items())]

    def nodes(self):
        return self._all("nodes")

    def node(self, name):
        with self.lock:
            obj = self.objects["nodes"].get(("", name))
            return copy.deepcopy(obj) if obj else None

    def pods(self, namespace=None, node_name=None):
        return [p for p in self._all("pods") if (namespace is None or p["metadata"]["namespace"] == namespace)
                and (node_name is None or p["spec"].get("nodeName") == node_name)]

    def pod(self, namespace, name):
        with self.lock:
            obj = self.objects["pods"].get((namespace, name))
            return copy.deepcopy(obj) if obj else None

    def pdbs(self):
        return self._all("poddisruptionbudgets")

    def pdb(self, namespace, name):
        with self.lock:
            obj = self.objects["poddisruptionbudgets"].get((namespace, name))
            return copy.deepcopy(obj) if obj else None

    def events(self):
        return self._all("events")

    def to_json(self):
        """The whole store, as GET /_standin/state answers."""
        with self.lock:
            return {"resourceVersion": str(self.resource_version),
                    "nodes": [copy.deepcopy(o) for _, o in sorted(self.objects["nodes"].items())],
                    "pods": [copy.deepcopy(o) for _, o in sorted(self.objects["pods"].items())],
                    "pdbs": [copy.deepcopy(o) for _, o in sorted(self.objects["poddisruptionbudgets"].items())],
                    "events": [copy.deepcopy(o) for _, o in sorted(self.objects["events"].items())]}

    def load_json(self, data):
        """Seeds from the --state-file shape (see main()); each of "nodes", "pods", "pdbs",
        "events" present replaces that kind wholesale. An entry with "metadata" is a whole
        Kubernetes object (what GET /_standin/state returns), stored as it is."""
        if not isinstance(data, dict):
            raise bad_request("state must be a JSON object")
        with self.lock:
            for key, resource in (("nodes", "nodes"), ("pods", "pods"), ("pdbs", "poddisruptionbudgets"), ("events", "events")):
                if key in data:
                    for k in list(self.objects[resource]):
                        self._remove(resource, k)
        try:
            for entry in data.get("nodes") or []:
                if "metadata" in entry:
                    self._put_whole("nodes", entry)
                else:
                    self.add_node(entry["name"], entry.get("provider_id"), entry.get("ready", True), entry.get("labels"),
                                  entry.get("unschedulable", False), entry.get("allocatable"), entry.get("taints"),
                                  entry.get("annotations"), entry.get("internal_ip"))
            for entry in data.get("pods") or []:
                if "metadata" in entry:
                    self._put_whole("pods", entry)
                else:
                    self.add_pod(entry["namespace"], entry["name"], entry.get("node", entry.get("node_name")),
                                 entry.get("owner_kind"), entry.get("owner_name"), entry.get("labels"),
                                 entry.get("phase", "Running"), entry.get("requests"), entry.get("ready"), entry.get("annotations"),
                                 entry.get("init_requests"), entry.get("overhead"), entry.get("volumes"),
                                 entry.get("node_selector"), entry.get("affinity"), entry.get("tolerations"),
                                 entry.get("unschedulable_message"))
            for entry in data.get("pdbs") or []:
                if "metadata" in entry:
                    self._put_whole("poddisruptionbudgets", entry)
                else:
                    self.add_pdb(entry["namespace"], entry["name"], entry.get("match_labels"), entry.get("disruptions_allowed"),
                                 entry.get("min_available"), entry.get("max_unavailable"), entry.get("match_expressions"))
            for entry in data.get("events") or []:
                self._put_whole("events", entry)
        except (KeyError, TypeError, AttributeError) as error:
            raise bad_request(f"malformed state: {error!r}") from None

    def _put_whole(self, resource, obj):
        obj = copy.deepcopy(obj)
        if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
            raise bad_request(f"a {resource} entry needs metadata.name")
        with self.lock:
            self._put(resource, obj)

    # MARK: derived kinds

    def namespaces(self):
        with self.lock:
            names = set(DEFAULT_NAMESPACES)
            for resource in ("pods", "events", "poddisruptionbudgets"):
                names.update(ns for ns, _ in self.objects[resource])
        return [{"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": n, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"namespace/{n}")), "resourceVersion": "1",
                              "creationTimestamp": "2024-01-01T00:00:00Z", "labels": {"kubernetes.io/metadata.name": n}},
                 "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}} for n in sorted(names)]

    def daemonsets(self):
        """A DaemonSet for every one a pod names as its owner (kubectl drain checks they exist)."""
        found = {}
        with self.lock:
            for (ns, _), pod in self.objects["pods"].items():
                for ref in pod["metadata"].get("ownerReferences") or []:
                    if ref.get("kind") == "DaemonSet":
                        entry = found.setdefault((ns, ref["name"]), {"uid": ref.get("uid"), "pods": 0,
                                                                     "labels": pod["metadata"].get("labels") or {}})
                        entry["pods"] += 1
        out = []
        for (ns, name), entry in sorted(found.items()):
            out.append({"apiVersion": "apps/v1", "kind": "DaemonSet",
                        "metadata": {"name": name, "namespace": ns, "uid": entry["uid"], "resourceVersion": "1",
                                     "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z"},
                        "spec": {"selector": {"matchLabels": dict(entry["labels"])},
                                 "template": {"metadata": {"labels": dict(entry["labels"])},
                                              "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}},
                        "status": {"currentNumberScheduled": entry["pods"], "desiredNumberScheduled": entry["pods"],
                                   "numberAvailable": entry["pods"], "numberReady": entry["pods"], "numberMisscheduled": 0,
                                   "observedGeneration": 1, "updatedNumberScheduled": entry["pods"]}})
        return out

    # MARK: the API's writes (reported through the hooks)

    def api_objects(self, resource):
        """(resourceVersion, [(key, copy)]) of every object of a kind, stored or derived,
        sorted by key: one consistent snapshot."""
        if resource == "namespaces":
            return str(self.resource_version), [(("", o["metadata"]["name"]), o) for o in self.namespaces()]
        if resource == "daemonsets":
            return str(self.resource_version), [((o["metadata"]["namespace"], o["metadata"]["name"]), o)
                                                for o in self.daemonsets()]
        with self.lock:
            return str(self.resource_version), [(k, copy.deepcopy(o)) for k, o in sorted(self.objects[resource].items())]

    def api_get(self, kind, namespace, name):
        if not kind.stored:
            obj = next((o for (ns, n), o in self.api_objects(kind.resource)[1] if ns == namespace and n == name), None)
        else:
            with self.lock:
                obj = copy.deepcopy(self.objects[kind.resource].get((namespace, name)))
        if obj is None:
            raise not_found(kind.group, kind.resource, name)
        return obj

    def api_create(self, kind, namespace, body, dry_run=False):
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
        if meta is None:
            raise bad_request("the body of the request has no metadata")
        if kind.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        name = meta.get("name") or ""
        if not name:
            if meta.get("generateName"):
                name = meta["generateName"] + "".join(secrets.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            else:
                raise invalid(kind.kind, "", [{"field": "metadata.name", "message": "Required value: name or generateName is required"}])
        if not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", name) or len(name) > 253:
            raise invalid(kind.kind, name, [{"field": "metadata.name", "reason": "FieldValueInvalid",
                                             "message": f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of '
                                                        "lower case alphanumeric characters, '-' or '.', and must start and end "
                                                        "with an alphanumeric character"}])
        obj = copy.deepcopy(body)
        obj["metadata"] = {k: v for k, v in meta.items() if k not in ("uid", "resourceVersion", "creationTimestamp",
                                                                      "deletionTimestamp", "generation")}
        obj["metadata"]["name"] = name
        if kind.namespaced:
            obj["metadata"]["namespace"] = namespace
        if kind.resource == "poddisruptionbudgets":
            obj["metadata"]["generation"] = 1
            obj.pop("status", None)
        if kind.resource == "events":
            obj.setdefault("firstTimestamp", None)
        hooks = []
        with self.lock:
            if (namespace if kind.namespaced else "", name) in self.objects[kind.resource]:
                raise already_exists(kind.group, kind.resource, name)
            if dry_run:  # what would be stored, without a write
                obj["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(),
                                       resourceVersion=str(self.resource_version))
                obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
                return obj
            stored = copy.deepcopy(self._put(kind.resource, obj))
            if kind.resource == "events":
                hooks.append((self.on_event_created, (copy.deepcopy(stored),)))
        self._run_hooks(hooks)
        return stored

    def api_patch(self, kind, namespace, name, content_type, patch, dry_run=False):
        hooks = []
        with self.lock:
            key = (namespace if kind.namespaced else "", name)
            current = self.objects[kind.resource].get(key)
            if current is None:
                raise not_found(kind.group, kind.resource, name)
            if content_type == "application/json-patch+json":
                updated = json_patch(current, patch)
            else:
                if not isinstance(patch, dict):
                    raise bad_request("the patch is not a JSON object")
                wanted = (patch.get("metadata") or {}).get("resourceVersion")
                if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
                    raise conflict(kind.group, kind.resource, name, "the object has been modified; please apply your changes "
                                                                    "to the latest version and try again")
                merge = strategic_merge_patch if content_type == "application/strategic-merge-patch+json" else merge_patch
                updated = merge(current, patch)
            updated = self._keep_identity(kind, current, updated)
            if dry_run:
                return updated
            stored = copy.deepcopy(self._put(kind.resource, updated))
            if kind.resource == "nodes":
                hooks.append((self.on_node_patched, (name, copy.deepcopy(stored))))
        self._run_hooks(hooks)
        return stored

    def api_update(self, kind, namespace, name, body, dry_run=False):
        hooks = []
        with self.lock:
            key = (namespace if kind.namespaced else "", name)
            current = self.objects[kind.resource].get(key)
            if current is None:
                raise not_found(kind.group, kind.resource, name)
            meta = body.get("metadata") or {}
            if meta.get("name") and meta["name"] != name:
                raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
            wanted = meta.get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise conflict(kind.group, kind.resource, name, "the object has been modified; please apply your changes "
                                                                "to the latest version and try again")
            updated = self._keep_identity(kind, current, copy.deepcopy(body))
            if dry_run:
                return updated
            stored = copy.deepcopy(self._put(kind.resource, updated))
            if kind.resource == "nodes":
                hooks.append((self.on_node_patched, (name, copy.deepcopy(stored))))
        self._run_hooks(hooks)
        return stored

    @staticmethod
    def _keep_identity(kind, current, updated):
        """What a client cannot change: name, namespace, uid, creation time."""
        if not isinstance(updated, dict):
            raise bad_request("the patched object is not a JSON object")
        meta = updated.setdefault("metadata", {})
        for field_name in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if field_name in current["metadata"]:
                meta[field_name] = current["metadata"][field_name]
            else:
                meta.pop(field_name, None)
        if kind.resource == "poddisruptionbudgets" and updated.get("spec") != current.get("spec"):
            meta["generation"] = current["metadata"].get("generation", 1) + 1
        return updated

    @staticmethod
    def _check_preconditions(kind, obj, options):
        preconditions = (options or {}).get("preconditions") or {}
        name, meta = obj["metadata"]["name"], obj["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise conflict(kind.group, kind.resource, name, f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                                                            f"UID in object meta: {meta['uid']}")
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta["resourceVersion"]:
            raise conflict(kind.group, kind.resource, name,
                           f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                           f"ResourceVersion in object meta: {meta['resourceVersion']}")

    def api_delete(self, kind, namespace, name, options, dry_run=False):
        """Deletes at once. Answers as the real server does for that kind: a pod (graceful
        deletion) comes back with its deletionTimestamp; anything else as a Status Success."""
        hooks = []
        with self.lock:
            key = (namespace if kind.namespaced else "", name)
            current = self.objects[kind.resource].get(key)
            if current is None:
                raise not_found(kind.group, kind.resource, name)
            self._check_preconditions(kind, current, options)
            if not dry_run:
                self._remove(kind.resource, key)
                if kind.resource == "nodes":
                    hooks.append((self.on_node_deleted, (name,)))
                elif kind.resource == "pods":
                    hooks.append((self.on_pod_deleted, (namespace, name)))
        self._run_hooks(hooks)
        if kind.resource == "pods":
            answer = copy.deepcopy(current)
            grace = (options or {}).get("gracePeriodSeconds")
            grace = current["spec"].get("terminationGracePeriodSeconds", 30) if grace is None else grace
            answer["metadata"]["deletionTimestamp"] = now_rfc3339()
            answer["metadata"]["deletionGracePeriodSeconds"] = grace
            return 200, answer
        details = {"name": name, "kind": kind.resource, "uid": current["metadata"]["uid"]}
        if kind.group:
            details["group"] = kind.group
        return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def api_evict(self, namespace, name, body, dry_run=False):
        """POST pods/<name>/eviction, as the real eviction subresource decides it."""
        if not isinstance(body, dict) or body.get("kind", "Eviction") != "Eviction":
            raise bad_request("the body of an eviction must be an Eviction (policy/v1 or policy/v1beta1)")
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise bad_request("name in URL does not match name in Eviction object")
        pods_kind = KINDS[("", "pods")]
        hooks = []
        with self.lock:
            pod = self.objects["pods"].get((namespace, name))
            if pod is None:
                raise not_found("", "pods", name)
            self._check_preconditions(pods_kind, pod, body.get("deleteOptions"))
            phase = (pod.get("status") or {}).get("phase")
            # Terminal, pending and terminating pods have disrupted already: no budget applies.
            if phase not in ("Succeeded", "Failed", "Pending") and not pod["metadata"].get("deletionTimestamp"):
                budgets = [(k, p) for k, p in sorted(self.objects["poddisruptionbudgets"].items())
                           if k[0] == namespace and selector_matches((p.get("spec") or {}).get("selector"),
                                                                     pod["metadata"].get("labels"))]
                if len(budgets) > 1:  # the real subresource's bare Status: no reason, no details
                    raise APIError(500, None, "This pod has more than one PodDisruptionBudget, which the eviction "
                                              "subresource does not support.")
                if budgets:
                    key, pdb = budgets[0]
                    status = pdb.get("status") or {}
                    # An unready pod may go whenever the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget).
                    unready_ok = not pod_healthy(pod) and status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)
                    if not unready_ok:
                        if status.get("disruptionsAllowed", 0) <= 0:
                            raise APIError(429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.",
                                           {"causes": [{"reason": "DisruptionBudget",
                                                        "message": f"The disruption budget {key[1]} needs {status.get('desiredHealthy', 0)} "
                                                                   f"healthy pods and has {status.get('currentHealthy', 0)} currently"}]})
                        if not dry_run and key in self.pinned_budgets:
                            self.pinned_budgets[key] -= 1
            if not dry_run:
                self._remove("pods", (namespace, name))
                hooks.append((self.on_pod_evicted, (namespace, name)))
        self._run_hooks(hooks)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


# MARK: certificates, tokens and kubeconfigs

def _openssl(*args, cwd):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def _private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


@dataclass
class Credentials:
    """The files in the stand-in's directory (paths), and the token (kept out of any output)."""
    dir: str
    ca_file: str
    ca_key_file: str
    server_cert_file: str
    server_key_file: str
    client_cert_file: str
    client_key_file: str
    token_file: str
    token: str = field(repr=False)

    @classmethod
    def create(cls, directory, client_cn="kscaler-test", client_org="kscaler"):
        """CA, server certificate (127.0.0.1, localhost), client certificate and bearer token
        in `directory`, all EC P-256 (fast), valid for a week."""
        os.makedirs(directory, exist_ok=True)
        d = os.path.abspath(directory)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        old_umask = os.umask(0o077)  # keys are born private
        try:
            _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7", "-subj", "/CN=kscaler-standin-ca",
                     "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
            for name, subject, usage in (("server", "/CN=kube-apiserver",
                                          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
                                         ("client", f"/O={client_org}/CN={client_cn}", "extendedKeyUsage=clientAuth\n")):
                _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d)
                with open(os.path.join(d, f"{name}.ext"), "w") as f:
                    f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n" + usage)
                _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                         "-set_serial", str(secrets.randbits(63)), "-days", "7", "-extfile", f"{name}.ext",
                         "-out", f"{name}.crt", cwd=d)
                os.remove(os.path.join(d, f"{name}.csr"))
                os.remove(os.path.join(d, f"{name}.ext"))
        finally:
            os.umask(old_umask)
        for name in ("ca.crt", "server.crt", "client.crt"):
            os.chmod(os.path.join(d, name), 0o644)
        token = secrets.token_urlsafe(32)
        _private(os.path.join(d, "token"), token)
        return cls(d, *(os.path.join(d, n) for n in ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt",
                                                     "client.key", "token")), token)

    def write_kubeconfigs(self, server):
        """kubeconfig-token.yaml (token), kubeconfig-cert.yaml (client certificate inline) and
        kubeconfig-cert-files.yaml (the same by path); all trust the CA. Mode 0600."""
        def b64(path):
            with open(path, "rb") as f:
                return base64.b64encode(f.read()).decode()

        def config(cluster, user):
            return ("apiVersion: v1\nkind: Config\nclusters:\n- name: kscaler-standin\n  cluster:\n"
                    f"    server: {server}\n{cluster}"
                    "users:\n- name: kscaler\n  user:\n" + user +
                    "contexts:\n- name: kscaler-standin\n  context:\n    cluster: kscaler-standin\n    user: kscaler\n"
                    "current-context: kscaler-standin\npreferences: {}\n")

        inline_ca = f"    certificate-authority-data: {b64(self.ca_file)}\n"
        paths = {name: os.path.join(self.dir, f"kubeconfig-{name}.yaml") for name in ("token", "cert", "cert-files")}
        _private(paths["token"], config(inline_ca, f"    token: {self.token}\n"))
        _private(paths["cert"], config(inline_ca, f"    client-certificate-data: {b64(self.client_cert_file)}\n"
                                                  f"    client-key-data: {b64(self.client_key_file)}\n"))
        _private(paths["cert-files"], config(f"    certificate-authority: {self.ca_file}\n",
                                             f"    client-certificate: {self.client_cert_file}\n"
                                             f"    client-key: {self.client_key_file}\n"))
        return paths


# MARK: authentication, authorization, faults

@dataclass(frozen=True)
class User:
    name: str
    groups: tuple = ("system:authenticated",)
    uid: str = ""


def service_account_user(name=SERVICE_ACCOUNT):
    namespace = name.split(":")[2] if name.startswith("system:serviceaccount:") else ""
    groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated") if namespace \
        else ("system:authenticated",)
    return User(name, groups, str(uuid.uuid5(uuid.NAMESPACE_URL, name)))


class Access:
    """Deny rules per user; everything else is allowed. A rule is (verb, group, resource), where
    resource may be "pods/eviction" and any part may be "*"."""

    def __init__(self, denied=None):
        self.lock = threading.Lock()
        self.denied = {}
        self.set(denied or {})

    def set(self, denied):
        """`denied`: {user: [{"verb": .., "group": .., "resource": ..}, ...]} (replaces all)."""
        rules = {}
        if not isinstance(denied, dict):
            raise bad_request('permissions: {"<user>": [{"verb": "delete", "group": "", "resource": "nodes"}]}')
        for user, entries in denied.items():
            try:
                rules[user] = [(e["verb"], e.get("group", ""), e["resource"]) for e in entries]
            except (KeyError, TypeError):
                raise bad_request(f"permissions for {user}: each rule needs verb, group, resource") from None
        with self.lock:
            self.denied = rules

    def add(self, user, verb, group, resource):
        with self.lock:
            self.denied.setdefault(user, []).append((verb, group, resource))

    def to_json(self):
        with self.lock:
            return {u: [{"verb": v, "group": g, "resource": r} for v, g, r in rules] for u, rules in self.denied.items()}

    def allowed(self, user, verb, group, resource):
        """(allowed, reason) for a resource request."""
        with self.lock:
            rules = list(self.denied.get(user, ()))
        for v, g, r in rules:
            if v in ("*", verb) and g in ("*", group) and r in ("*", resource):
                return False, f"the stand-in denies {verb} on {qualified(group, resource)} to {user}"
        return True, "the stand-in allows what no rule denies"


def forbidden(user, verb, group, resource, subresource, namespace, name):
    """The RBAC authorizer's 403, word for word."""
    full = f"{resource}/{subresource}" if subresource else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{full}" in API group "{group}" {scope}'
    what = qualified(group, resource)
    message = f'{what} "{name}" is forbidden: {why}' if name else f"{what} is forbidden: {why}"
    details = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return APIError(403, "Forbidden", message, details)


class Faults:
    """Injected answers: the next requests matching a rule get its status and raw body, or are
    only delayed. Rules are tried in order; each is used `times` times (null: until cleared)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def add(self, rules):
        if isinstance(rules, dict):
            rules = [rules]
        if not isinstance(rules, list):
            raise bad_request("faults: a JSON list of rules")
        parsed = []
        for rule in rules:
            if not isinstance(rule, dict) or "path_regex" not in rule:
                raise bad_request("each fault needs path_regex")
            try:
                pattern = re.compile(rule["path_regex"])
            except re.error as error:
                raise bad_request(f"path_regex: {error}") from None
            parsed.append({"method": (rule.get("method") or "*").upper(), "pattern": pattern,
                           "path_regex": rule["path_regex"], "status": rule.get("status"),
                           "body": rule.get("body", ""), "content_type": rule.get("content_type", "application/json"),
                           "headers": dict(rule.get("headers") or {}),
                           "times": rule.get("times", 1), "delay_seconds": float(rule.get("delay_seconds") or 0)})
        with self.lock:
            self.rules.extend(parsed)
        return len(parsed)

    def clear(self):
        with self.lock:
            self.rules = []

    def take(self, method, target):
        """The rule for this request (consuming one use), or None."""
        with self.lock:
            for rule in self.rules:
                if rule["method"] in ("*", method) and rule["pattern"].search(target):
                    if rule["times"] is not None:
                        rule["times"] -= 1
                        if rule["times"] <= 0:
                            self.rules.remove(rule)
                    return dict(rule)
        return None

    def to_json(self):
        with self.lock:
            return [{k: v for k, v in r.items() if k != "pattern"} for r in self.rules]


# MARK: discovery and tables

def api_resource_list(group, version):
    resources = []
    for kind in sorted((k for k in KINDS.values() if k.group == group and k.version == version), key=lambda k: k.resource):
        entry = {"name": kind.resource, "singularName": kind.kind.lower(), "namespaced": kind.namespaced,
                 "kind": kind.kind, "verbs": list(kind.verbs)}
        if kind.short_names:
            entry["shortNames"] = list(kind.short_names)
        if kind.resource in ("pods", "daemonsets"):
            entry["categories"] = ["all"]
        resources.append(entry)
        if kind.resource == "pods":
            resources.append({"name": "pods/eviction", "singularName": "", "namespaced": True, "group": "policy",
                              "version": "v1", "kind": "Eviction", "verbs": ["create"]})
    if group == "authorization.k8s.io":
        resources.append({"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": False,
                          "kind": "SelfSubjectAccessReview", "verbs": ["create"]})
    if group == "authentication.k8s.io":
        resources.append({"name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": False,
                          "kind": "SelfSubjectReview", "verbs": ["create"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources}


def group_versions(minor):
    """{group: [versions, preferred first]} for a server of minor version `minor`:
    SelfSubjectReview is authentication.k8s.io/v1 from 1.28 and v1beta1 in 1.27 and 1.28
    (kubectl 1.27's `auth whoami` knows only v1alpha1 and v1beta1)."""
    authentication = (["v1"] if minor >= 28 else []) + (["v1beta1"] if minor <= 28 else [])
    return {"apps": ["v1"], "policy": ["v1"], "authorization.k8s.io": ["v1"], "authentication.k8s.io": authentication}


def api_group(name, versions):
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(minor):
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [api_group(name, versions) for name, versions in group_versions(minor).items()]}


def human_age(created):
    """The AGE column: 45s, 3m20s, 12m, 5h10m, 7h, 3d (kubectl's HumanDuration, roughly)."""
    start = parse_rfc3339(created)
    if start is None:
        return "<unknown>"
    seconds = max(0, int((datetime.datetime.now(datetime.timezone.utc) - start).total_seconds()))
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _column(name, kind="string", priority=0, fmt=""):
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def table_cells(resource, obj):
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    age = human_age(meta.get("creationTimestamp"))
    if resource == "nodes":
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
        state = {"True": "Ready", "False": "NotReady"}.get(ready.get("status"), "Unknown")
        if spec.get("unschedulable"):
            state += ",SchedulingDisabled"
        roles = sorted(k.split("/", 1)[1] for k in meta.get("labels") or {} if k.startswith("node-role.kubernetes.io/"))
        ip = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "<none>")
        return [meta["name"], state, ",".join(roles) or "<none>", age, (status.get("nodeInfo") or {}).get("kubeletVersion", ""),
                ip, "<none>", (status.get("nodeInfo") or {}).get("osImage", ""),
                (status.get("nodeInfo") or {}).get("kernelVersion", ""), (status.get("nodeInfo") or {}).get("containerRuntimeVersion", "")]
    if resource == "pods":
        containers = status.get("containerStatuses") or []
        ready = sum(1 for c in containers if c.get("ready"))
        phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "")
        if phase == "Succeeded":
            phase = "Completed"
        return [meta["name"], f"{ready}/{len(spec.get('containers') or [])}", phase,
                str(sum(c.get("restartCount", 0) for c in containers)), age, status.get("podIP", "<none>"),
                spec.get("nodeName", "<none>"), "<none>", "<none>"]
    if resource == "poddisruptionbudgets":
        return [meta["name"], str(spec.get("minAvailable", "N/A")), str(spec.get("maxUnavailable", "N/A")),
                status.get("disruptionsAllowed", 0), age]
    return [meta["name"], meta.get("creationTimestamp")]


def table_columns(resource):
    if resource == "nodes":
        return [_column("Name", fmt="name"), _column("Status"), _column("Roles"), _column("Age"), _column("Version"),
                _column("Internal-IP", priority=1), _column("External-IP", priority=1), _column("OS-Image", priority=1),
                _column("Kernel-Version", priority=1), _column("Container-Runtime", priority=1)]
    if resource == "pods":
        return [_column("Name", fmt="name"), _column("Ready"), _column("Status"), _column("Restarts"), _column("Age"),
                _column("IP", priority=1), _column("Node", priority=1), _column("Nominated Node", priority=1),
                _column("Readiness Gates", priority=1)]
    if resource == "poddisruptionbudgets":
        return [_column("Name", fmt="name"), _column("Min Available"), _column("Max Unavailable"),
                _column("Allowed Disruptions", "integer"), _column("Age")]
    return [_column("Name", fmt="name"), _column("Created At", "date")]


def as_table(resource, objects, list_meta, include):
    rows = []
    for obj in objects:
        row = {"cells": table_cells(resource, obj)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "columnDefinitions": table_columns(resource), "rows": rows}


# MARK: the server

@dataclass
class RequestInfo:
    """What a resource request's path names (k8s.io/apiserver's RequestInfo)."""
    group: str
    version: str
    namespace: str
    resource: str
    name: str
    subresource: str


def parse_resource_path(path):
    parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest or rest == [""]:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces":  # /api/v1/namespaces or /api/v1/namespaces/<name>
        pass
    if len(rest) > 3:
        return None
    return RequestInfo(group, version, namespace, rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else "")


def verb_for(method, info, query):
    if method == "GET":
        if query.get("watch") in ("1", "true"):
            return "watch"
        return "get" if info.name else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if info.name else "deletecollection"}.get(method, method.lower())


class KubeAPIServer:
    """The stand-in on 127.0.0.1:`port` (0: any free port), over TLS with `credentials`.
    `tokens`: {token: User}; client certificates signed by the CA authenticate as CN/O."""

    def __init__(self, state, credentials, tokens=None, port=0, version=DEFAULT_VERSION, access=None,
                 verbose=False, log=sys.stderr):
        self.state = state
        self.credentials = credentials
        self.tokens = dict(tokens if tokens is not None else {credentials.token: service_account_user()})
        self.version = version
        self.minor = int(re.match(r"\d*", (version.split(".") + ["", ""])[1]).group() or 0)
        self.access = access or Access()
        self.faults = Faults()
        self.verbose = verbose
        self.log = log
        self.requests = []  # (method, path, status, user), the last 1000
        self.requests_lock = threading.Lock()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(credentials.server_cert_file, credentials.server_key_file)
        self.context.load_verify_locations(credentials.ca_file)
        self.context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, or a token, on one port
        self.context.set_alpn_protocols(["http/1.1"])
        self.server = _TLSServer(("127.0.0.1", port), self._handler(), self.context)
        self.port = self.server.server_port
        self.url = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="kubeapi", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
        self.server.close_connections()  # kept-alive connections would go on answering

    def version_info(self):
        major, minor, *_ = (self.version.split(".") + ["0", "0"])
        return {"major": major, "minor": minor, "gitVersion": f"v{self.version}", "gitCommit": "0" * 40,
                "gitTreeState": "clean", "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5",
                "compiler": "gc", "platform": "linux/amd64"}

    def record(self, method, path, status, user):
        with self.requests_lock:
            self.requests.append({"method": method, "path": path, "status": status, "user": user})
            del self.requests[:-1000]
        if self.verbose:
            print(f"kubeapi: {method} {path} {status}", file=self.log, flush=True)

    # MARK: handling

    def authenticate(self, handler):
        header = handler.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            return user  # a presented, unknown credential is refused even with a valid certificate
        cert = handler.connection.getpeercert() if hasattr(handler.connection, "getpeercert") else None
        if cert:
            names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            orgs = tuple(v for rdn in cert.get("subject", ()) for k, v in rdn if k == "organizationName")
            if names:
                return User(names[0], orgs + ("system:authenticated",))
        return None

    def handle(self, handler, method):
        """(status, content type, body bytes, extra headers) for one request."""
        split = urllib.parse.urlsplit(handler.path)
        path, query = split.path, dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        body = handler.read_body()
        user = self.authenticate(handler)
        if user is None:
            return self.status_answer(UNAUTHORIZED)
        handler.user = user.name
        if path.startswith("/_standin/"):
            return self.control(method, path, query, body)
        fault = self.faults.take(method, handler.path)
        if fault:
            if fault["delay_seconds"]:
                time.sleep(fault["delay_seconds"])
            if fault["status"] is not None:
                return int(fault["status"]), fault["content_type"], fault["body"].encode(), fault["headers"]
        try:
            return self.route(method, path, query, body, user, handler.headers)
        except APIError as error:
            return self.status_answer(error)
        except Exception as error:  # a bug here must still answer like a server (NewInternalError)
            message = f"{type(error).__name__}: {error}"
            return self.status_answer(APIError(500, "InternalError", f"Internal error occurred: {message}",
                                               {"causes": [{"message": message}]}))

    @staticmethod
    def status_answer(error):
        return error.code, "application/json", json.dumps(error.status()).encode(), {}

    @staticmethod
    def json_answer(status, obj):
        return status, "application/json", json.dumps(obj).encode(), {}

    def control(self, method, path, query, body):
        try:
            data = json.loads(body or b"null") if method in ("POST", "PUT") else None
        except ValueError:
            return self.status_answer(bad_request("the body is not JSON"))
        try:
            if path == "/_standin/faults":
                if method == "POST":
                    return self.json_answer(200, {"added": self.faults.add(data), "faults": self.faults.to_json()})
                if method == "DELETE":
                    self.faults.clear()
                    return self.json_answer(200, {"faults": []})
                if method == "GET":
                    return self.json_answer(200, {"faults": self.faults.to_json()})
            elif path == "/_standin/state":
                if method == "GET":
                    return self.json_answer(200, self.state.to_json())
                if method == "POST":
                    self.state.load_json(data)
                    return self.json_answer(200, self.state.to_json())
            elif path == "/_standin/permissions":
                if method in ("POST", "PUT"):
                    self.access.set(data)
                    return self.json_answer(200, {"denied": self.access.to_json()})
                if method == "GET":
                    return self.json_answer(200, {"denied": self.access.to_json()})
            elif path == "/_standin/requests":
                with self.requests_lock:
                    if method == "DELETE":
                        self.requests = []
                    return self.json_answer(200, {"requests": list(self.requests)})
            else:
                return self.status_answer(NOT_FOUND_PATH)
            return self.status_answer(METHOD_NOT_ALLOWED)
        except APIError as error:
            return self.status_answer(error)

    def route(self, method, path, query, body, user, headers):
        if path.rstrip("/") in ("/healthz", "/livez", "/readyz") and method == "GET":
            return 200, "text/plain; charset=utf-8", b"ok", {}
        if method == "GET":
            if path == "/version":
                return self.json_answer(200, self.version_info())
            if path in ("/api", "/api/"):
                return self.json_answer(200, {"kind": "APIVersions", "versions": ["v1"],
                                              "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                              "serverAddress": f"127.0.0.1:{self.port}"}]})
            if path in ("/apis", "/apis/"):
                return self.json_answer(200, api_group_list(self.minor))
            if path.rstrip("/") == "/api/v1":
                return self.json_answer(200, api_resource_list("", "v1"))
            parts = path.strip("/").split("/")
            groups = group_versions(self.minor)
            if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
                return self.json_answer(200, {"kind": "APIGroup", "apiVersion": "v1", **api_group(parts[1], groups[parts[1]])})
            if len(parts) == 3 and parts[0] == "apis" and parts[2] in groups.get(parts[1], ()):
                return self.json_answer(200, api_resource_list(parts[1], parts[2]))
        info = parse_resource_path(path)
        if info is None:
            raise NOT_FOUND_PATH
        if info.group == "authorization.k8s.io" and info.version == "v1" and info.resource == "selfsubjectaccessreviews" \
                and not info.name and not info.namespace:
            if method != "POST":
                raise METHOD_NOT_ALLOWED
            return self.self_subject_access_review(user, self.parse_body(body))
        if info.group == "authentication.k8s.io" and info.version in group_versions(self.minor)[info.group] \
                and info.resource == "selfsubjectreviews" and not info.name and not info.namespace:
            if method != "POST":
                raise METHOD_NOT_ALLOWED
            return self.json_answer(201, {"kind": "SelfSubjectReview", "apiVersion": f"authentication.k8s.io/{info.version}",
                                          "metadata": {"creationTimestamp": now_rfc3339()},
                                          "status": {"userInfo": {"username": user.name, "uid": user.uid,
                                                                  "groups": list(user.groups)} if user.uid else
                                                     {"username": user.name, "groups": list(user.groups)}}})
        kind = KINDS.get((info.group, info.resource))
        if kind is None or kind.version != info.version:
            raise NOT_FOUND_PATH
        if info.namespace and not kind.namespaced:
            raise NOT_FOUND_PATH
        if info.subresource and not (kind.resource == "pods" and info.subresource == "eviction"):
            raise NOT_FOUND_PATH
        verb = verb_for(method, info, query)
        allowed, _ = self.access.allowed(user.name, verb, info.group, f"{info.resource}/{info.subresource}"
                                         if info.subresource else info.resource)
        if not allowed:
            raise forbidden(user.name, verb, info.group, info.resource, info.subresource, info.namespace, info.name)
        if verb == "watch":
            raise APIError(405, "MethodNotAllowed", "watch is not supported by this stand-in API server (list, then poll)", {})
        dry_run = query.get("dryRun") == "All"
        if info.subresource == "eviction":
            if method != "POST":
                raise METHOD_NOT_ALLOWED
            status, answer = self.state.api_evict(info.namespace, info.name, self.parse_body(body), dry_run)
            return self.json_answer(status, answer)
        if verb not in kind.verbs:
            raise METHOD_NOT_ALLOWED
        if verb == "list":
            return self.list(kind, info, query, headers)
        if verb == "get":
            obj = self.state.api_get(kind, info.namespace, info.name)
            return self.answer_object(kind, obj, headers, query)
        if verb == "create":
            if info.name:
                raise METHOD_NOT_ALLOWED
            if kind.namespaced and not info.namespace:
                raise NOT_FOUND_PATH
            return self.json_answer(201, self.state.api_create(kind, info.namespace, self.parse_body(body), dry_run))
        if verb == "patch":
            content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json",
                                    "application/json-patch+json"):
                raise APIError(415, "UnsupportedMediaType",
                               f"the body of the request was in an unknown format - accepted media types include: "
                               f"application/json-patch+json, application/merge-patch+json, "
                               f"application/strategic-merge-patch+json (this stand-in has no server-side apply)", {})
            return self.json_answer(200, self.state.api_patch(kind, info.namespace, info.name, content_type,
                                                              self.parse_body(body), dry_run))
        if verb == "update":
            return self.json_answer(200, self.state.api_update(kind, info.namespace, info.name, self.parse_body(body), dry_run))
        if verb == "delete":
            options = self.parse_body(body) if body.strip() else {}
            if query.get("gracePeriodSeconds"):
                options.setdefault("gracePeriodSeconds", int(query["gracePeriodSeconds"]))
            status, answer = self.state.api_delete(kind, info.namespace, info.name, options, dry_run)
            return self.json_answer(status, answer)
        raise METHOD_NOT_ALLOWED

    @staticmethod
    def parse_body(body):
        try:
            data = json.loads(body or b"{}")
        except ValueError as error:
            raise bad_request(f"the body of the request could not be decoded: {error}") from None
        if not isinstance(data, (dict, list)):
            raise bad_request("the body of the request is not a JSON object")
        return data

    def list(self, kind, info, query, headers):
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""), kind.resource)
        resource_version, everything = self.state.api_objects(kind.resource)
        items = [(key, obj) for key, obj in everything
                 if (not info.namespace or key[0] == info.namespace)
                 and labels(obj["metadata"].get("labels")) and fields(obj)]
        meta = {"resourceVersion": resource_version}
        start = query.get("continue")
        if start:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(start.encode())))
            except (ValueError, TypeError):
                raise APIError(410, "Expired", "The provided continue parameter is too old to display a consistent list "
                                               "result. You can start a new list without the continue parameter.", {}) from None
            items = [(k, o) for k, o in items if k > after]
        limit = int(query["limit"]) if query.get("limit", "").isdigit() and int(query["limit"]) > 0 else None
        if limit is not None and len(items) > limit:
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(list(items[limit - 1][0])).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        objects = [obj for _, obj in items]
        if "as=Table" in (headers.get("Accept") or ""):
            return self.json_answer(200, as_table(kind.resource, objects, meta, query.get("includeObject", "Metadata")))
        for obj in objects:  # the real server's list items carry no kind/apiVersion
            obj.pop("kind", None)
            obj.pop("apiVersion", None)
        return self.json_answer(200, {"kind": f"{kind.kind}List", "apiVersion": kind.api_version, "metadata": meta,
                                      "items": objects})

    def answer_object(self, kind, obj, headers, query):
        if "as=Table" in (headers.get("Accept") or ""):
            return self.json_answer(200, as_table(kind.resource, [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                                  query.get("includeObject", "Metadata")))
        return self.json_answer(200, obj)

    def self_subject_access_review(self, user, body):
        spec = (body or {}).get("spec") or {}
        attributes = spec.get("resourceAttributes")
        if attributes:
            resource = attributes.get("resource", "")
            if attributes.get("subresource"):
                resource += "/" + attributes["subresource"]
            allowed, reason = self.access.allowed(user.name, attributes.get("verb", ""), attributes.get("group", ""), resource)
        elif spec.get("nonResourceAttributes"):
            allowed, reason = True, "the stand-in allows every non-resource path"
        else:
            raise invalid("SelfSubjectAccessReview", "", [{"field": "spec.resourceAttributes",
                                                          "message": "Required value: exactly one of nonResourceAttributes "
                                                                     "or resourceAttributes must be specified"}])
        return self.json_answer(201, {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                                      "metadata": {"creationTimestamp": None}, "spec": spec,
                                      "status": {"allowed": allowed, "reason": reason}})

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Go's client expects
            server_version, sys_version = "kscaler-kubeapi-standin", ""
            timeout = 120  # an idle keep-alive connection's thread ends after this
            user = "-"

            def read_body(self):
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def answer(self, method):
                self.user = "-"
                try:
                    status, content_type, data, extra = api.handle(self, method)
                except (ConnectionError, ssl.SSLError, TimeoutError):
                    self.close_connection = True
                    return
                # Logged before the answer is sent: a client that has its answer finds its
                # request in /_standin/requests (logged after, a fast next request could race it).
                api.record(method, self.path, status, self.user)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Cache-Control", "no-cache, private")
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (ConnectionError, ssl.SSLError, TimeoutError):
                    self.close_connection = True

            def do_GET(self):
                self.answer("GET")

            def do_POST(self):
                self.answer("POST")

            def do_PUT(self):
                self.answer("PUT")

            def do_PATCH(self):
                self.answer("PATCH")

            def do_DELETE(self):
                self.answer("DELETE")

            def log_message(self, *args):  # the request log is api.record's, without headers
                pass

        return Handler


class _TLSServer(ThreadingHTTPServer):
    """Accepts plain TCP and does each TLS handshake on the connection's own thread, so a slow
    or silent client cannot hold up the accept loop."""
    daemon_threads = True

    def __init__(self, address, handler, context):
        self.context = context
        self.connections = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        request.settimeout(60)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # a failed handshake (a certificate the CA did not sign, a plain-HTTP client)
        with self.connections_lock:
            self.connections.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError, OSError, ValueError):
            pass
        finally:
            with self.connections_lock:
                self.connections.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def close_connections(self):
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):  # client disconnects are not the server's errors
        pass


# MARK: command line

def parse_deny(text):
    """USER:VERB:GROUP:RESOURCE; the user may contain colons (system:serviceaccount:ns:name)."""
    parts = text.rsplit(":", 3)
    if len(parts) != 4 or not parts[0] or not parts[1] or not parts[3]:
        raise argparse.ArgumentTypeError(f"--deny {text!r}: expected USER:VERB:GROUP:RESOURCE (GROUP empty for core)")
    return parts


def start(directory, state=None, port=0, version=DEFAULT_VERSION, denied=(), verbose=False):
    """Creates the credentials and kubeconfigs in `directory` and starts a server; returns
    (server, announcement), the announcement being what the CLI prints."""
    state = state or KubeState()
    credentials = Credentials.create(directory)
    access = Access()
    for user, verb, group, resource in denied:
        access.add(user, verb, group, resource)
    server = KubeAPIServer(state, credentials, port=port, version=version, access=access, verbose=verbose)
    configs = credentials.write_kubeconfigs(server.url)
    server.start()
    announcement = {"port": server.port, "server": server.url, "dir": credentials.dir, "ca_file": credentials.ca_file,
                    "token_file": credentials.token_file, "client_cert_file": credentials.client_cert_file,
                    "client_key_file": credentials.client_key_file, "kubeconfig_token": configs["token"],
                    "kubeconfig_cert": configs["cert"], "kubeconfig_cert_files": configs["cert-files"]}
    return server, announcement


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where the certificates, token and kubeconfigs go")
    parser.add_argument("--state-file", help='JSON: {"nodes": [{"name", "provider_id", "ready", "labels", "taints"}], "pods": '
                                             '[{"namespace", "name", "node", "owner_kind", "owner_name", "labels", '
                                             '"node_selector", "affinity", "tolerations"}], '
                                             '"pdbs": [{"namespace", "name", "match_labels", "disruptions_allowed"}]}')
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=900, help="seconds before exiting by itself")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (the parent went away)")
    parser.add_argument("--deny", type=parse_deny, action="append", default=[], metavar="USER:VERB:GROUP:RESOURCE")
    parser.add_argument("--server-version", default=DEFAULT_VERSION, help="what /version answers (kubectl's dispatcher "
                                                                           "picks its kubectl by it)")
    parser.add_argument("--verbose", action="store_true", help="log every request (method, path, status) to stderr")
    args = parser.parse_args()
    state = KubeState()
    if args.state_file:
        with open(args.state_file, encoding="utf-8") as f:
            state.load_json(json.load(f))
    server, announcement = start(args.dir, state, args.port, args.server_version, args.deny, args.verbose)
    print(json.dumps(announcement), flush=True)
    done = threading.Event()
    if args.exit_on_stdin_eof:
        # read() returns at EOF: the parent closed our stdin or died.
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(args.lifetime)
    server.stop()


if __name__ == "__main__":
    main()
