"""The other deployment shapes say what infra/README.md promises: the Kubernetes CronJob, the
Containerfile and the cron line."""

import re
import subprocess

import yaml

from conftest import KUBERNETES_ENV, REPO


def test_cronjob_runs_once_a_minute_without_overlap_hardened_on_the_control_plane():
    documents = {d["kind"]: d for d in yaml.safe_load_all((REPO / "infra/kubernetes/kscaler-cronjob.yaml").read_text())}
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
    assert documents["ServiceAccount"]["automountServiceAccountToken"] is False
    assert yaml.safe_load(documents["ConfigMap"]["data"]["config.yaml"])["cluster_id"] == "demo"


def test_containerfile_builds_a_static_stdlib_binary_onto_slim_debian_as_non_root():
    text = (REPO / "infra/container/Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.M)
    assert [alias for _, alias in stages] == ["build", ""]
    assert stages[1][0] == "docker.io/library/debian:${DEBIAN_RELEASE}-slim"
    assert "swift build -c release --static-swift-stdlib --product kscaler" in text
    final = text.split("\nFROM ")[-1]
    installed = re.search(r"apt-get install -y --no-install-recommends ([^\\\n]+)", final).group(1).split()
    assert installed == ["libcurl4", "ca-certificates"]
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
