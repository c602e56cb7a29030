"""The worker bootstraps run for real, from the rendered user data, against moto's SSM (signature,
session token and the stack's worker policy checked) and the IMDSv2 stand-in; the k3s installer
and kubeadm are recorders. Every external command is wrapped, so the tests see every argv."""

import hashlib
import threading
import time

import pytest
import yaml

from conftest import mode, new_cluster_id, stack_policy_actions
from userdata_render import defaults, render

SERVER_URL = "https://10.0.0.10:6443"
K3S_CONFIG = "etc/rancher/k3s/config.yaml.d/50-kscaler.yaml"
KUBELET_DROPIN = "var/lib/rancher/k3s/agent/etc/kubelet.conf.d/50-kscaler.conf"
LOGIND_DROPIN = "etc/systemd/logind.conf.d/50-kscaler.conf"
K3S_BOOTSTRAP = "/usr/local/sbin/kscaler-k3s-worker-bootstrap"
KUBEADM_BOOTSTRAP = "/usr/local/sbin/kscaler-kubeadm-worker-bootstrap"


class Worker:
    """One worker boot: a cluster with its parameters in moto, an instance behind the IMDS
    stand-in, and the rendered user data laid out in the sandbox."""

    def __init__(self, moto, imds_factory, sandbox, template, env_file="/etc/kscaler/worker.env", **values):
        self.cluster = new_cluster_id()
        self.moto, self.sandbox = moto, sandbox
        self.role, self.credentials = moto.instance_role_credentials(stack_policy_actions("WorkerRole"))
        self.imds = imds_factory(self.role, self.credentials)
        self.values = {**defaults(self.cluster), **values}
        self.user_data = render(template, self.values)
        sandbox.install(self.user_data)
        sandbox.add_env(env_file, KSCALER_IMDS_ENDPOINT=self.imds.endpoint, KSCALER_SSM_ENDPOINT=moto.endpoint,
                        KSCALER_K3S_INSTALL=str(sandbox.installer), KSCALER_MAX_WAIT_SECONDS="20")
        self.token_parameter = f"/kscaler/{self.cluster}/join-token"
        self.url_parameter = f"/kscaler/{self.cluster}/server-url"
        self.hash_parameter = f"/kscaler/{self.cluster}/ca-cert-hash"

    @property
    def provider_id(self):
        return f"aws:///{self.imds.zone}/{self.imds.instance_id}"

    def secrets(self, *more):
        return (self.credentials["SecretAccessKey"], self.credentials["Token"], *more)


@pytest.fixture
def k3s_worker(moto, imds_factory, sandbox):
    return Worker(moto, imds_factory, sandbox, "k3s-worker.cloud-config.tmpl", pool="gpu",
                  node_labels="workload=batch,example.com/team=ml",
                  node_taints="dedicated=gpu:NoSchedule,spot:PreferNoSchedule",
                  shutdown_grace_seconds="60", shutdown_grace_critical_seconds="20")


def k3s_token():
    return "K10" + hashlib.sha256(str(time.time()).encode()).hexdigest() + "::node:" + hashlib.md5(
        str(time.time_ns()).encode()).hexdigest()


def test_k3s_worker_joins_with_the_parameters_from_ssm(k3s_worker, moto, sandbox):
    token = k3s_token()
    moto.put_parameter(k3s_worker.url_parameter, SERVER_URL, "String")
    moto.put_parameter(k3s_worker.token_parameter, token)

    result = sandbox.run([K3S_BOOTSTRAP])

    assert result.returncode == 0, result.stderr
    [install] = sandbox.records("k3s-install.sh")
    assert install["env"]["INSTALL_K3S_EXEC"] == "agent"
    assert install["env"]["INSTALL_K3S_SKIP_DOWNLOAD"] == "true"
    config = yaml.safe_load((sandbox.root / K3S_CONFIG).read_text())
    assert config == {
        "server": SERVER_URL,
        "token-file": "/etc/kscaler/join-token",
        "node-name": k3s_worker.imds.instance_id,
        "node-label+": [f"kscaler.io/cluster={k3s_worker.cluster}", "kscaler.io/pool=gpu",
                        "workload=batch", "example.com/team=ml", "node.kubernetes.io/instance-type=t3.large"],
        "node-taint+": ["dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"],
        "kubelet-arg+": [f"provider-id={k3s_worker.provider_id}"],
    }
    token_file = sandbox.root / "etc/kscaler/join-token"
    assert token_file.read_text().strip() == token
    assert mode(token_file) == 0o600
    kubelet = yaml.safe_load((sandbox.root / KUBELET_DROPIN).read_text())
    assert kubelet == {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                       "shutdownGracePeriod": "60s", "shutdownGracePeriodCriticalPods": "20s"}
    assert (sandbox.root / LOGIND_DROPIN).read_text() == "[Login]\nInhibitDelayMaxSec=65\n"
    assert ["systemctl", "kill", "--signal=SIGHUP", "systemd-logind.service"] in sandbox.argv()
    sandbox.assert_secrets_hidden(result, *k3s_worker.secrets(token))
    assert token not in k3s_worker.user_data
    assert not list((sandbox.root / "run").iterdir()), "the private directory outlived the script"


def test_k3s_worker_speaks_imdsv2_only(k3s_worker, moto, sandbox):
    moto.put_parameter(k3s_worker.url_parameter, SERVER_URL, "String")
    moto.put_parameter(k3s_worker.token_parameter, k3s_token())

    result = sandbox.run([K3S_BOOTSTRAP])

    assert result.returncode == 0, result.stderr
    requests = k3s_worker.imds.requests
    assert requests and all(ttl for method, _, ttl in requests if method == "PUT")
    assert all(token in k3s_worker.imds.tokens for method, _, token in requests if method == "GET")
    paths = {path for method, path, _ in requests if method == "GET"}
    assert {"/latest/meta-data/instance-id", "/latest/meta-data/placement/availability-zone",
            "/latest/meta-data/placement/region",
            f"/latest/meta-data/iam/security-credentials/{k3s_worker.role}"} <= paths
    # Neither the IMDS session token nor the role credentials appear on any command line.
    sandbox.assert_secrets_hidden(result, *k3s_worker.imds.tokens)


def test_k3s_worker_waits_for_parameters_published_later(k3s_worker, moto, sandbox):
    token = k3s_token()
    started = time.monotonic()
    process = sandbox.run([K3S_BOOTSTRAP], background=True)

    def publish():
        time.sleep(1.5)
        moto.put_parameter(k3s_worker.url_parameter, SERVER_URL, "String")
        moto.put_parameter(k3s_worker.token_parameter, token)

    publisher = threading.Thread(target=publish)
    publisher.start()
    stdout, stderr = process.communicate(timeout=40)
    publisher.join()

    assert process.returncode == 0, stderr
    assert "join parameters: attempt 1: SSM GetParameter: HTTP 400 ParameterNotFound" in stderr
    assert time.monotonic() - started < 20
    assert (sandbox.root / "etc/kscaler/join-token").read_text().strip() == token
    assert len(sandbox.records("k3s-install.sh")) == 1
    sandbox.assert_secrets_hidden(process_result(stdout, stderr), *k3s_worker.secrets(token))


def test_k3s_worker_gives_up_after_the_maximum_wait(k3s_worker, sandbox):
    sandbox.add_env("/etc/kscaler/worker.env", KSCALER_MAX_WAIT_SECONDS="3")

    started = time.monotonic()
    result = sandbox.run([K3S_BOOTSTRAP])

    assert result.returncode == 1
    assert time.monotonic() - started < 10
    assert "error: gave up on join parameters after" in result.stderr
    assert f"ParameterNotFound for {k3s_worker.url_parameter}" in result.stderr
    assert sandbox.records("k3s-install.sh") == [], "the installer ran without parameters"


def test_k3s_worker_refuses_a_url_that_is_not_https(k3s_worker, moto, sandbox):
    moto.put_parameter(k3s_worker.url_parameter, "http://10.0.0.10:6443", "String")
    moto.put_parameter(k3s_worker.token_parameter, k3s_token())

    result = sandbox.run([K3S_BOOTSTRAP])

    assert result.returncode == 1
    assert "server URL 'http://10.0.0.10:6443' is not https://host[:port]" in result.stderr
    assert sandbox.records("k3s-install.sh") == []


def test_k3s_worker_rejects_a_malformed_taint_before_any_request(k3s_worker, sandbox):
    sandbox.add_env("/etc/kscaler/worker.env", KSCALER_NODE_TAINTS="dedicated=gpu:Sometimes")

    result = sandbox.run([K3S_BOOTSTRAP])

    assert result.returncode == 1
    assert "node taint 'dedicated=gpu:Sometimes' is not key[=value]:effect" in result.stderr
    assert k3s_worker.imds.requests == []


def test_k3s_worker_without_an_installer_downloads_one_only_when_asked_and_checked(
        k3s_worker, moto, sandbox):
    moto.put_parameter(k3s_worker.url_parameter, SERVER_URL, "String")
    moto.put_parameter(k3s_worker.token_parameter, k3s_token())
    script = f"#!/bin/sh\nKSTEST_AS=downloaded-installer exec {sandbox.recorder} \"$@\"\n".encode()
    k3s_worker.imds.downloads["install.sh"] = script
    url = f"{k3s_worker.imds.endpoint}/downloads/install.sh"

    sandbox.add_env("/etc/kscaler/worker.env", KSCALER_K3S_INSTALL="/nonexistent/k3s-install.sh")
    missing = sandbox.run([K3S_BOOTSTRAP])
    assert missing.returncode == 1
    assert "no k3s installer at /nonexistent/k3s-install.sh" in missing.stderr
    assert k3s_worker.imds.requests == [], "it should fail before any work"

    sandbox.add_env("/etc/kscaler/worker.env", KSCALER_K3S_INSTALL_URL=url, KSCALER_K3S_INSTALL_SHA256="0" * 64)
    tampered = sandbox.run([K3S_BOOTSTRAP])
    assert tampered.returncode == 1
    assert "installer checksum mismatch" in tampered.stderr
    assert sandbox.records("downloaded-installer") == []

    sandbox.add_env("/etc/kscaler/worker.env", KSCALER_K3S_INSTALL_SHA256=hashlib.sha256(script).hexdigest(),
                    KSCALER_K3S_VERSION="v1.33.1+k3s1")
    checked = sandbox.run([K3S_BOOTSTRAP])
    assert checked.returncode == 0, checked.stderr
    [install] = sandbox.records("downloaded-installer")
    assert install["env"]["INSTALL_K3S_EXEC"] == "agent"
    assert install["env"]["INSTALL_K3S_VERSION"] == "v1.33.1+k3s1"
    assert "INSTALL_K3S_SKIP_DOWNLOAD" not in install["env"]


@pytest.mark.parametrize("api", ["v1beta4", "v1beta3"])
def test_kubeadm_worker_joins_with_a_join_configuration_from_ssm(moto, imds_factory, sandbox, api):
    worker = Worker(moto, imds_factory, sandbox, "kubeadm-worker.cloud-config.tmpl", pool="batch",
                    node_labels="workload=batch", node_taints="dedicated=batch:NoSchedule,spot:PreferNoSchedule",
                    kubeadm_api_version=api)
    token, ca_hash = "abcdef.0123456789abcdef", "sha256:" + hashlib.sha256(worker.cluster.encode()).hexdigest()
    moto.put_parameter(worker.url_parameter, SERVER_URL, "String")
    moto.put_parameter(worker.hash_parameter, ca_hash, "String")
    moto.put_parameter(worker.token_parameter, token)

    result = sandbox.run([KUBEADM_BOOTSTRAP])

    assert result.returncode == 0, result.stderr
    [join] = sandbox.records("kubeadm")
    assert join["argv"][:2] == ["join", "--config"]
    config = yaml.safe_load(join["files"][join["argv"][2]])
    labels = f"kscaler.io/cluster={worker.cluster},kscaler.io/pool=batch,workload=batch,node.kubernetes.io/instance-type=t3.large"
    expected_args = {"provider-id": worker.provider_id, "node-labels": labels}
    assert config == {
        "apiVersion": f"kubeadm.k8s.io/{api}",
        "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": "10.0.0.10:6443", "token": token,
                                         "caCertHashes": [ca_hash]}},
        "nodeRegistration": {
            "name": worker.imds.instance_id,
            "kubeletExtraArgs": ([{"name": k, "value": v} for k, v in expected_args.items()]
                                 if api == "v1beta4" else expected_args),
            "taints": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
                       {"key": "spot", "value": "", "effect": "PreferNoSchedule"}],
        },
        "patches": {"directory": "/etc/kscaler/kubeadm-patches"},
    }
    patch = yaml.safe_load((sandbox.root / "etc/kscaler/kubeadm-patches/kubeletconfiguration+merge.yaml").read_text())
    assert patch == {"shutdownGracePeriod": "45s", "shutdownGracePeriodCriticalPods": "15s"}
    assert (sandbox.root / LOGIND_DROPIN).read_text() == "[Login]\nInhibitDelayMaxSec=50\n"
    assert not list((sandbox.root / "run").iterdir()), "the JoinConfiguration with the token outlived the join"
    sandbox.assert_secrets_hidden(result, *worker.secrets(token))


def test_kubeadm_worker_refuses_a_token_that_is_not_a_bootstrap_token(moto, imds_factory, sandbox):
    worker = Worker(moto, imds_factory, sandbox, "kubeadm-worker.cloud-config.tmpl")
    secret = "not-a-bootstrap-token-" + worker.cluster
    moto.put_parameter(worker.url_parameter, SERVER_URL, "String")
    moto.put_parameter(worker.hash_parameter, "sha256:" + "a" * 64, "String")
    moto.put_parameter(worker.token_parameter, secret)

    result = sandbox.run([KUBEADM_BOOTSTRAP])

    assert result.returncode == 1
    assert f"{worker.token_parameter} holds no kubeadm bootstrap token" in result.stderr
    assert sandbox.records("kubeadm") == []
    sandbox.assert_secrets_hidden(result, secret)


def process_result(stdout, stderr):
    class Result:
        pass

    result = Result()
    result.stdout, result.stderr = stdout, stderr
    return result
