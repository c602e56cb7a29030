"""The other deployment shapes say what infra/README.md promises: the Kubernetes CronJob and
kscaler's RBAC, the Containerfile, the cron line and the systemd environment example."""

import fcntl
import itertools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import KUBERNETES_ENV, REPO, mode

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
    # JSON lines for log shippers, set by the environment (the flag is not used anywhere).
    assert {"name": "KSCALER_LOG_FORMAT", "value": "json"} in container["env"]
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
    assert installed == ["libcurl4", "libyaml-0-2", "ca-certificates", "tzdata"]  # libyaml: the config; tzdata: schedules' time zones
    assert re.search(r"^USER 65532:65532$", final, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/kscaler"]' in final


def cron_line():
    [line] = [l for l in (REPO / "infra/cron/kscaler.cron").read_text().splitlines() if l and not l.startswith("#")]
    return line.split(None, 6)


def test_cron_line_runs_kscaler_once_a_minute_as_the_kscaler_user():
    fields = cron_line()
    assert fields[:5] == ["*"] * 5 and fields[5] == "kscaler"
    command = fields[6]
    assert "%" not in command  # cron would turn it into a newline
    assert "exec /usr/local/bin/kscaler run --config /etc/kscaler/config.yaml" in command
    assert "--log-format" not in command  # the environment sets it, as in every other shape
    assert "/tmp" not in command  # world-writable: anyone could hold the lock first
    shell = re.search(r"sh -c '([^']+)'", command).group(1)
    assert subprocess.run(["/bin/sh", "-n", "-c", shell], capture_output=True).returncode == 0


NOBODY = 65534


@pytest.fixture
def cron_root():
    """A scratch root the cron line's paths are moved into, traversable by an unprivileged
    user (pytest's own tmp_path is root's 0700): run/lock as on Debian (1777), /etc/kscaler with
    kscaler.env, a stand-in kscaler that prints its log format and argv, the log directory
    owned by the user the line runs as."""
    if os.geteuid() != 0:
        pytest.fail("the cron line is run as an unprivileged user: run the tests as root (CI does)", pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="kscaler-cron-", dir="/tmp"))
    root.chmod(0o755)
    for directory, mode in (("run/lock", 0o1777), ("etc/kscaler", 0o755), ("usr/local/bin", 0o755), ("var/log/kscaler", 0o755)):
        (root / directory).mkdir(parents=True)
        (root / directory).chmod(mode)
    os.chown(root / "var/log/kscaler", NOBODY, NOBODY)
    (root / "etc/kscaler/kscaler.env").write_text("AWS_REGION=us-east-1\n")
    stub = root / "usr/local/bin/kscaler"
    stub.write_text('#!/bin/sh\nprintf \'format=%s level=%s args=%s\\n\' "$KSCALER_LOG_FORMAT" "${KSCALER_LOG_LEVEL:-}" "$*"\n')
    stub.chmod(0o755)
    yield root
    shutil.rmtree(root)


def run_cron_line(root):
    """The cron line's command, its paths moved under `root`, as cron runs it: /bin/sh -c, as
    the unprivileged user (nobody standing in for kscaler)."""
    command = cron_line()[6]
    for path in ("/run/lock", "/etc/kscaler", "/usr/local/bin/kscaler", "/var/log/kscaler"):
        command = command.replace(path, f"{root}{path}")
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/bin/sh", "-c", command],
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30)


def test_cron_line_logs_json_and_takes_its_lock_in_a_directory_of_its_own(cron_root):
    result = run_cron_line(cron_root)
    assert result.returncode == 0, result.stderr
    log = (cron_root / "var/log/kscaler/kscaler.log").read_text()
    assert log == f"format=json level= args=run --config {cron_root}/etc/kscaler/config.yaml\n"
    lock_dir = cron_root / "run/lock/kscaler"
    assert (lock_dir.stat().st_uid, mode(lock_dir)) == (NOBODY, 0o700)
    assert (lock_dir / "cron.lock").exists()
    # kscaler.env still decides: a host that ships nothing may log plain text.
    (cron_root / "etc/kscaler/kscaler.env").write_text("KSCALER_LOG_FORMAT=plain\nKSCALER_LOG_LEVEL=debug\n")
    assert run_cron_line(cron_root).returncode == 0
    assert log.splitlines()[0] != (cron_root / "var/log/kscaler/kscaler.log").read_text().splitlines()[-1]
    assert (cron_root / "var/log/kscaler/kscaler.log").read_text().splitlines()[-1].startswith("format=plain level=debug ")


def test_cron_line_starts_no_run_while_the_lock_is_held(cron_root):
    assert run_cron_line(cron_root).returncode == 0
    with open(cron_root / "run/lock/kscaler/cron.lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = run_cron_line(cron_root)
    assert result.returncode == 1  # flock -n
    assert len((cron_root / "var/log/kscaler/kscaler.log").read_text().splitlines()) == 1


def test_cron_line_refuses_a_lock_directory_someone_else_made(cron_root):
    """What /tmp (or /run/lock itself) allowed: another user creates the lock path first."""
    (cron_root / "run/lock/kscaler").mkdir(mode=0o777)
    (cron_root / "run/lock/kscaler").chmod(0o777)
    result = run_cron_line(cron_root)
    assert result.returncode != 0 and "kscaler" in result.stderr
    assert not (cron_root / "var/log/kscaler/kscaler.log").exists()


def test_systemd_environment_example_names_the_kubernetes_variables_with_placeholders_only():
    text = (REPO / "infra/systemd/kscaler.env.example").read_text()
    example = dict(re.findall(r"^#(KSCALER_KUBERNETES_\w+)=(.+)$", text, re.M))
    assert sorted(example) == sorted(KUBERNETES_ENV.values())
    # Placeholders, never a real cluster's address, CA or parameter; and commented out, since
    # systemd and the cron line's `sh` would read a placeholder as the value.
    assert all("<" in value for value in example.values()), example
    assert example[KUBERNETES_ENV["kubernetes.token_parameter"]] == "/kscaler/<cluster>/kube-token"
    assert not re.search(r"^\s*KSCALER_KUBERNETES_", text, re.M)
