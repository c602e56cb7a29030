"""The other deployment shapes say what infra/README.md promises: the Kubernetes CronJob and
kscaler's RBAC, the Containerfile, the cron line and the systemd environment example."""

import itertools
import re
import subprocess

import pytest
import yaml

from conftest import KUBERNETES_ENV, REPO

KUBERNETES = REPO / "infra/kubernetes"


def manifests(path):
    """The documents of a manifest file by (kind, name)."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    keyed = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    assert len(keyed) == len(documents), f"{path}: two documents of the same kind and name"
    return keyed


def test_cronjob_runs_once_a_minute_without_overlap_hardened_on_the_control_plane():
    documents = {kind: d for (kind, _), d in manifests(KUBERNETES / "kscaler-cronjob.yaml").items()}
    cronjob = documents["CronJob"]["spec"]
    assert cronjob["schedule"] == "* * * * *"
    assert cronjob["concurrencyPolicy"] == "Forbid"
    job = cronjob["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] < 120  # the lease TTL
    pod = job["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["args"] == ["run", "--config", "/etc/kscaler/config.yaml"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    [term] = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]
    assert yaml.safe_load(documents["ConfigMap"]["data"]["config.yaml"])["cluster_id"] == "demo"


RBAC = KUBERNETES / "kscaler-rbac.yaml"
TOKEN_SECRET = KUBERNETES / "outside-cluster/kscaler-token.yaml"

# Every call kscaler makes to the Kubernetes API, as (API group, resource, verb); infra/README.md,
# "Kubernetes access", says why each.
KSCALER_CALLS = {
    ("", "nodes", "get"), ("", "nodes", "list"), ("", "nodes", "patch"), ("", "nodes", "delete"),
    ("", "pods", "list"),
    ("", "pods/eviction", "create"),
    ("policy", "poddisruptionbudgets", "list"),
    ("", "events", "create"),
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
    ("authentication.k8s.io", "selfsubjectreviews", "create"),
}


def granted(role):
    """Every (API group, resource, verb) a ClusterRole grants."""
    assert "aggregationRule" not in role  # its rules would come from other roles
    grants = set()
    for rule in role["rules"]:
        # Nothing beyond group, resource and verb: no nonResourceURLs (/metrics, /logs…).
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for field in ("apiGroups", "resources", "verbs"):
            assert not any("*" in value for value in rule[field]), f"wildcard in {rule}"
        grants |= set(itertools.product(rule["apiGroups"], rule["resources"], rule["verbs"]))
    return grants


def test_cluster_role_grants_exactly_the_calls_kscaler_makes():
    assert granted(manifests(RBAC)[("ClusterRole", "kscaler")]) == KSCALER_CALLS


def test_granted_sees_through_a_rule_that_widens_the_role():
    role = manifests(RBAC)[("ClusterRole", "kscaler")]
    widened = {**role, "rules": role["rules"] + [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]}
    assert ("", "pods", "delete") in granted(widened) - KSCALER_CALLS
    wildcard = {**role, "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["*"]}]}
    with pytest.raises(AssertionError, match="wildcard"):
        granted(wildcard)


def test_binding_gives_the_role_to_the_service_account_the_cronjob_runs_as():
    rbac = manifests(RBAC)
    [namespace] = [name for kind, name in rbac if kind == "Namespace"]
    account = rbac[("ServiceAccount", "kscaler")]
    assert account["metadata"]["namespace"] == namespace
    [binding] = [d for (kind, _), d in rbac.items() if kind == "ClusterRoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kscaler"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kscaler", "namespace": namespace}]

    cronjob_file = manifests(KUBERNETES / "kscaler-cronjob.yaml")
    # The namespace and the account are defined once, in the RBAC file, and the CronJob's
    # objects all live in that namespace.
    assert {kind for kind, _ in cronjob_file} == {"ConfigMap", "Secret", "CronJob"}
    assert {d["metadata"]["namespace"] for d in cronjob_file.values()} == {namespace}
    pod = cronjob_file[("CronJob", "kscaler")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    # The account mounts its token into no pod by default; the CronJob's pod asks for it.
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is True


def documented_commands(text):
    """Shell commands in a README or a manifest's comments, continuation lines joined."""
    return re.sub(r"[ \t]*\\\n[# \t]*", " ", text).splitlines()


def test_token_secret_is_minted_for_the_service_account_and_the_repository_holds_no_token():
    [secret] = manifests(TOKEN_SECRET).values()
    assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"] == {"name": "kscaler-token", "namespace": "kscaler",
                                  "annotations": {"kubernetes.io/service-account.name": "kscaler"}}
    assert manifests(RBAC)[("ServiceAccount", "kscaler")]["metadata"]["namespace"] == "kscaler"
    assert not {"data", "stringData"} & set(secret)  # the token controller writes the token
    # A directory apply (`kubectl apply -f infra/kubernetes/`, not recursive) mints no token the
    # CronJob does not need.
    assert TOKEN_SECRET.parent != KUBERNETES


def test_documented_token_commands_read_that_secret_and_keep_the_token_out_of_argv():
    """The put-parameter pipeline in infra/README.md and in the Secret's comment reads the
    Secret's namespace and name, and hands the token to the aws CLI on stdin, not as an argument."""
    for source in (REPO / "infra/README.md", TOKEN_SECRET):
        [command] = [c.strip(" #") for c in documented_commands(source.read_text())
                     if "get secret kscaler-token" in c and "aws ssm put-parameter" in c]
        assert command == ("kubectl -n kscaler get secret kscaler-token -o jsonpath='{.data.token}' | base64 -d"
                           " | aws ssm put-parameter --name \"/kscaler/$CLUSTER/kube-token\" --type SecureString"
                           " --value file:///dev/stdin --overwrite"), source
        # As written, not edited first: a `<cluster>` placeholder would parse as redirections.
        assert subprocess.run(["/bin/sh", "-n", "-c", command]).returncode == 0


def test_containerfile_builds_a_static_stdlib_binary_onto_slim_debian_as_non_root():
    text = (REPO / "infra/container/Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.M)
    assert [alias for _, alias in stages] == ["build", ""]
    assert stages[1][0] == "docker.io/library/debian:${DEBIAN_RELEASE}-slim"
    assert "swift build -c release --static-swift-stdlib --product kscaler" in text
    final = text.split("\nFROM ")[-1]
    installed = re.search(r"apt-get install -y --no-install-recommends ([^\\\n]+)", final).group(1).split()
    assert installed == ["libcurl4", "ca-certificates", "tzdata"]  # tzdata: schedules' time zones
    assert re.search(r"^USER 65532:65532$", final, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/kscaler"]' in final


def test_cron_line_runs_kscaler_once_a_minute_as_the_kscaler_user():
    [line] = [l for l in (REPO / "infra/cron/kscaler.cron").read_text().splitlines() if l and not l.startswith("#")]
    fields = line.split(None, 6)
    assert fields[:5] == ["*"] * 5 and fields[5] == "kscaler"
    command = fields[6]
    assert "%" not in command  # cron would turn it into a newline
    assert "exec /usr/local/bin/kscaler run --config /etc/kscaler/config.yaml" in command
    shell = re.search(r"sh -c '([^']+)'", command).group(1)
    assert subprocess.run(["/bin/sh", "-n", "-c", shell], capture_output=True).returncode == 0


def test_systemd_environment_example_names_the_kubernetes_variables_with_placeholders_only():
    text = (REPO / "infra/systemd/kscaler.env.example").read_text()
    example = dict(re.findall(r"^#(KSCALER_KUBERNETES_\w+)=(.+)$", text, re.M))
    assert sorted(example) == sorted(KUBERNETES_ENV.values())
    # Placeholders, never a real cluster's address, CA or parameter; and commented out, since
    # systemd and the cron line's `sh` would read a placeholder as the value.
    assert all("<" in value for value in example.values()), example
    assert example[KUBERNETES_ENV["kubernetes.token_parameter"]] == "/kscaler/<cluster>/kube-token"
    assert not re.search(r"^\s*KSCALER_KUBERNETES_", text, re.M)
