"""Reference implementation of the user-data template contract (userdata/README.md).

`kscaler userdata render` (Swift) implements the same rules; the tests render with this module and
check that the committed examples in userdata/examples/ are exactly its output. Run it as a script
to regenerate the examples after changing a template or an embedded file:

    .venv/bin/python infra/tests/userdata_render.py
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY = r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?" + _NAME
_PARAMETER = r"/[A-Za-z0-9_./-]{1,1010}"
_URL = r"https://[A-Za-z0-9._~:/?#\[\]@!$&()*+,;=%-]+"

# What each value placeholder may hold. Besides Kubernetes syntax these rules keep every value
# free of quotes, newlines and braces, so a value can never escape its place in the YAML or in
# the single-quoted env-file line.
VALUE_RULES = {
    "cluster_id": r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?",
    "pool": _NAME,
    "token_parameter": _PARAMETER,
    "server_url_parameter": _PARAMETER,
    "ca_cert_hash_parameter": _PARAMETER,
    "node_labels": rf"({_KEY}=({_NAME})?(,{_KEY}=({_NAME})?)*)?",
    "node_taints": rf"({_KEY}(=({_NAME})?)?:(NoSchedule|PreferNoSchedule|NoExecute)"
                   rf"(,{_KEY}(=({_NAME})?)?:(NoSchedule|PreferNoSchedule|NoExecute))*)?",
    "shutdown_grace_seconds": r"[1-9][0-9]{0,3}",
    "shutdown_grace_critical_seconds": r"[0-9]{1,4}",
    "k3s_install_url": rf"({_URL})?",
    "k3s_install_sha256": r"([0-9a-f]{64})?",
    "k3s_version": r"(v[0-9A-Za-z.+-]{1,60})?",
    "kubeadm_api_version": r"v1beta4|v1beta3",
    "server_url": r"(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?)?",
    "publish_server_url": r"true|false",
    "token_ttl_minutes": r"[0-9]{2,5}",
    "rotate_after_minutes": r"[0-9]{1,5}",
    "proxmox_cluster_name": r"[A-Za-z0-9]([A-Za-z0-9-]{0,38}[A-Za-z0-9])?",
    "region": r"[a-z]{2}(-[a-z]+)+-[0-9]",
    "kscaler_binary_url": _URL,
    "kscaler_binary_sha256": r"[0-9a-f]{64}",
}

SECTION = re.compile(r"^\s*# \{\{([#/])([a-z_]+)\}\}$")
EMBED = re.compile(r"^(\s*)\{\{(file|block):([^}]+)\}\}$")
VALUE = re.compile(r"\{\{([a-z_0-9]+)\}\}")


class RenderError(Exception):
    pass


def defaults(cluster_id):
    """The values the renderer uses when the caller gives none."""
    return {
        "cluster_id": cluster_id,
        "pool": "default",
        "token_parameter": f"/kscaler/{cluster_id}/join-token",
        "server_url_parameter": f"/kscaler/{cluster_id}/server-url",
        "ca_cert_hash_parameter": f"/kscaler/{cluster_id}/ca-cert-hash",
        "node_labels": "",
        "node_taints": "",
        "shutdown_grace_seconds": "45",
        "shutdown_grace_critical_seconds": "15",
        "k3s_install_url": "",
        "k3s_install_sha256": "",
        "k3s_version": "",
        "kubeadm_api_version": "v1beta4",
        "server_url": "",
        "publish_server_url": "true",
        "token_ttl_minutes": "120",
        "rotate_after_minutes": "60",
        "proxmox_cluster_name": "",
    }


def render(template, values, sections=(), blocks=None):
    """Renders userdata/<template>; `sections` names the optional sections to keep."""
    blocks = blocks or {}
    out, open_section, keep = [], None, True
    for line in (REPO / "userdata" / template).read_text().splitlines():
        marker = SECTION.match(line)
        if marker:
            kind, name = marker.groups()
            if kind == "#":
                open_section, keep = name, name in sections
            elif name != open_section:
                raise RenderError(f"section {name} closed but {open_section} is open")
            else:
                open_section, keep = None, True
            continue
        if not keep:
            continue
        embed = EMBED.match(line)
        if embed:
            indent, kind, name = embed.groups()
            lines = _without_comments((REPO / name).read_text()) if kind == "file" else blocks[name].splitlines()
            out.extend(indent + l if l else "" for l in lines)
            continue
        out.append(VALUE.sub(lambda m: _value(m.group(1), values), line))
    if open_section:
        raise RenderError(f"section {open_section} is not closed")
    return "\n".join(out) + "\n"


def _without_comments(text):
    """An embedded file loses its comment-only and blank lines (not a first-line #!): user data
    must stay well under EC2's 16 KB, and the comments live on in the repository."""
    lines = text.splitlines()
    return [l for i, l in enumerate(lines)
            if (i == 0 and l.startswith("#!")) or (l.strip() and not l.lstrip().startswith("#"))]


def _value(name, values):
    if name not in values:
        raise RenderError(f"no value for {{{{{name}}}}}")
    if not re.fullmatch(VALUE_RULES[name], values[name]):
        raise RenderError(f"{name}={values[name]!r} does not match {VALUE_RULES[name]}")
    return values[name]


EXAMPLE_CONFIG = """\
cluster_id: demo
region: eu-west-1
table: kscaler-demo
prometheus:
  url: http://127.0.0.1:9090
nodes:
  min: 1
  max: 10
workers:
  pool: batch
  launch_template: {name: kscaler-demo-batch, version: $Latest}
  instance_types: [t3.large]
  subnets: [subnet-0123456789abcdef0]
  sizes:
    t3.large: {cpu: 2, memory: 8Gi}
  labels: {workload: batch}
  taints: ["dedicated=batch:NoSchedule"]
"""

EXAMPLES = {
    "k3s-worker.yaml": ("k3s-worker.cloud-config.tmpl", {
        "pool": "batch", "node_labels": "workload=batch", "node_taints": "dedicated=batch:NoSchedule"}, ()),
    "kubeadm-worker.yaml": ("kubeadm-worker.cloud-config.tmpl", {
        "pool": "batch", "node_labels": "workload=batch", "node_taints": "dedicated=batch:NoSchedule"}, ()),
    "k3s-server.yaml": ("k3s-server.cloud-config.tmpl", {
        "region": "eu-west-1",
        "kscaler_binary_url": "https://downloads.example.com/kscaler/0.1.0/kscaler-linux-x86_64",
        "kscaler_binary_sha256": "0" * 64}, ("install_kscaler",)),
    "kubeadm-control-plane.yaml": ("kubeadm-control-plane.cloud-config.tmpl", {}, ()),
    "k3s-proxmox-worker.yaml": ("k3s-proxmox-worker.cloud-config.tmpl", {
        "pool": "batch", "node_labels": "workload=batch", "node_taints": "dedicated=batch:NoSchedule",
        "proxmox_cluster_name": "lab"}, ()),
}


def render_example(name):
    template, overrides, sections = EXAMPLES[name]
    return render(template, {**defaults("demo"), **overrides}, sections, {"kscaler_config": EXAMPLE_CONFIG})


if __name__ == "__main__":
    for example in EXAMPLES:
        path = REPO / "userdata" / "examples" / example
        path.write_text(render_example(example))
        print(f"{path.relative_to(REPO)}: {path.stat().st_size} bytes")
