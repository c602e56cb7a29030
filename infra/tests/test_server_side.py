"""The server-side scripts run for real from the rendered user data: the k3s server install and
join-parameter publishing, the kubeadm token rotation and the optional kscaler install, against
moto's SSM (with the stack's control-plane policy) and the IMDSv2 stand-in."""

import datetime
import hashlib
import threading
import time

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import mode, new_cluster_id, stack_policy_actions
from userdata_render import EXAMPLE_CONFIG, defaults, render

K3S_SERVER = "/usr/local/sbin/kscaler-k3s-server"
ROTATE = "/usr/local/sbin/kscaler-kubeadm-token-rotate"
INSTALL = "/usr/local/sbin/kscaler-install"
SERVER_ENV = "/etc/kscaler/server.env"


class Server:
    def __init__(self, moto, imds_factory, sandbox, template, sections=(), **values):
        self.cluster = new_cluster_id()
        self.moto, self.sandbox = moto, sandbox
        self.role, self.credentials = moto.instance_role_credentials(stack_policy_actions("ControlPlaneRole"))
        self.imds = imds_factory(self.role, self.credentials)
        self.values = {**defaults(self.cluster), **values}
        self.user_data = render(template, self.values, sections, {"kscaler_config": EXAMPLE_CONFIG})
        self.config = sandbox.install(self.user_data)
        sandbox.add_env(SERVER_ENV, KSCALER_IMDS_ENDPOINT=self.imds.endpoint, KSCALER_SSM_ENDPOINT=moto.endpoint,
                        KSCALER_K3S_INSTALL=str(sandbox.installer), KSCALER_MAX_WAIT_SECONDS="20")
        self.token_parameter = f"/kscaler/{self.cluster}/join-token"
        self.url_parameter = f"/kscaler/{self.cluster}/server-url"
        self.hash_parameter = f"/kscaler/{self.cluster}/ca-cert-hash"

    def secrets(self, *more):
        return (self.credentials["SecretAccessKey"], self.credentials["Token"], *more)


@pytest.fixture
def k3s_server(moto, imds_factory, sandbox):
    return Server(moto, imds_factory, sandbox, "k3s-server.cloud-config.tmpl")


def test_k3s_server_install_generates_an_agent_token_and_starts_publishing(k3s_server, sandbox):
    result = sandbox.run([K3S_SERVER, "install"])

    assert result.returncode == 0, result.stderr
    [install] = sandbox.records("k3s-install.sh")
    assert install["env"]["INSTALL_K3S_EXEC"] == "server"
    assert install["env"]["INSTALL_K3S_SKIP_DOWNLOAD"] == "true"
    config = yaml.safe_load((sandbox.root / "etc/rancher/k3s/config.yaml.d/50-kscaler.yaml").read_text())
    instance = k3s_server.imds.instance_id
    assert config == {"node-name": instance, "agent-token-file": "/etc/rancher/k3s/agent-token",
                      "write-kubeconfig-mode": "0600", "node-label+": [f"kscaler.io/cluster={k3s_server.cluster}"],
                      "kubelet-arg+": [f"provider-id=aws:///{k3s_server.imds.zone}/{instance}"]}
    secret_file = sandbox.root / "etc/rancher/k3s/agent-token"
    secret = secret_file.read_text().strip()
    assert len(secret) == 64 and int(secret, 16) >= 0
    assert mode(secret_file) == 0o600
    assert ["systemctl", "enable", "--now", "--no-block", "kscaler-publish-join.service"] in sandbox.argv()
    sandbox.assert_secrets_hidden(result, secret)

    again = sandbox.run([K3S_SERVER, "install"])
    assert again.returncode == 0, again.stderr
    assert secret_file.read_text().strip() == secret, "a second install must keep the agent secret"


def test_k3s_server_publishes_the_agent_token_once_k3s_wrote_it(k3s_server, moto, sandbox):
    token = "K10" + hashlib.sha256(k3s_server.cluster.encode()).hexdigest() + "::node:" + "s3cr3t" * 4
    token_file = sandbox.root / "var/lib/rancher/k3s/server/agent-token"
    process = sandbox.run([K3S_SERVER, "publish"], background=True)

    def k3s_starts():
        time.sleep(1.5)
        token_file.parent.mkdir(parents=True)
        token_file.write_text(token + "\n")

    starter = threading.Thread(target=k3s_starts)
    starter.start()
    stdout, stderr = process.communicate(timeout=40)
    starter.join()

    assert process.returncode == 0, stderr
    assert "the k3s agent token: attempt 1: k3s has not written" in stderr
    published = moto.get_parameter(k3s_server.token_parameter)
    assert (published["Type"], published["Value"]) == ("SecureString", token)
    url = moto.get_parameter(k3s_server.url_parameter)
    assert (url["Type"], url["Value"]) == ("String", "https://10.1.2.3:6443")
    sandbox.assert_secrets_hidden(_result(stdout, stderr), *k3s_server.secrets(token))


def test_k3s_server_leaves_a_stack_owned_url_alone(moto, imds_factory, sandbox):
    server = Server(moto, imds_factory, sandbox, "k3s-server.cloud-config.tmpl",
                    server_url="https://api.demo.example.com:6443", publish_server_url="false")
    token_file = sandbox.root / "var/lib/rancher/k3s/server/agent-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("K10abc::node:def\n")

    result = sandbox.run([K3S_SERVER, "publish"])

    assert result.returncode == 0, result.stderr
    assert moto.get_parameter(server.token_parameter)["Value"] == "K10abc::node:def"
    assert moto.get_parameter(server.url_parameter) is None


def test_k3s_server_rejects_an_unknown_command(k3s_server, sandbox):
    result = sandbox.run([K3S_SERVER, "uninstall"])

    assert result.returncode == 1
    assert "usage: kscaler-k3s-server install|publish" in result.stderr


def certificate_authority(directory):
    """A CA certificate like kubeadm's, and the discovery hash kubeadm would print for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


@pytest.fixture
def control_plane(moto, imds_factory, sandbox):
    return Server(moto, imds_factory, sandbox, "kubeadm-control-plane.cloud-config.tmpl")


def test_rotation_waits_for_kubeadm_init(control_plane, sandbox):
    result = sandbox.run([ROTATE])

    assert result.returncode == 0, result.stderr
    assert "kubeadm init has not run on this node yet" in result.stderr
    assert sandbox.records("kubeadm") == []
    assert control_plane.imds.requests == []


def test_rotation_publishes_a_fresh_token_with_ca_hash_and_url_then_waits(control_plane, moto, sandbox):
    (sandbox.root / "etc/kubernetes").mkdir(parents=True)
    (sandbox.root / "etc/kubernetes/admin.conf").write_text("apiVersion: v1\nkind: Config\n")
    ca_hash = certificate_authority(sandbox.root / "etc/kubernetes/pki")
    token, kubeadm_output = "abc123.0123456789abcdef", sandbox.root.parent / "kubeadm-output"
    kubeadm_output.write_text(token + "\n")
    env = {"KSTEST_OUTPUT_kubeadm": str(kubeadm_output)}

    first = sandbox.run([ROTATE], env=env)

    assert first.returncode == 0, first.stderr
    [create] = sandbox.records("kubeadm")
    assert create["argv"][:2] == ["token", "create"]
    assert create["argv"][create["argv"].index("--ttl") + 1] == "120m"
    assert create["argv"][create["argv"].index("--kubeconfig") + 1] == str(sandbox.root / "etc/kubernetes/admin.conf")
    published = moto.get_parameter(control_plane.token_parameter)
    assert (published["Type"], published["Value"]) == ("SecureString", token)
    assert moto.get_parameter(control_plane.hash_parameter)["Value"] == ca_hash
    assert moto.get_parameter(control_plane.url_parameter)["Value"] == "https://10.1.2.3:6443"
    sandbox.assert_secrets_hidden(first, *control_plane.secrets(token))

    fresh = sandbox.run([ROTATE], env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert "the published token is 0 min old; it is rotated after 60 min" in fresh.stderr
    assert len(sandbox.records("kubeadm")) == 1, "a fresh token must not be replaced"

    sandbox.add_env(SERVER_ENV, KSCALER_ROTATE_AFTER_MINUTES="0", KSCALER_TOKEN_TTL_MINUTES="30")
    newer = "def456.0123456789abcdef"
    kubeadm_output.write_text(newer + "\n")
    due = sandbox.run([ROTATE], env=env)
    assert due.returncode == 0, due.stderr
    assert moto.get_parameter(control_plane.token_parameter)["Value"] == newer
    argv = sandbox.records("kubeadm")[-1]["argv"]
    assert argv[argv.index("--ttl") + 1] == "30m"
    sandbox.assert_secrets_hidden(due, *control_plane.secrets(token, newer))


def test_rotation_refuses_a_ttl_that_leaves_no_overlap(control_plane, sandbox):
    sandbox.add_env(SERVER_ENV, KSCALER_ROTATE_AFTER_MINUTES="60", KSCALER_TOKEN_TTL_MINUTES="80")

    result = sandbox.run([ROTATE])

    assert result.returncode == 1
    assert "KSCALER_TOKEN_TTL_MINUTES (80) must be at least KSCALER_ROTATE_AFTER_MINUTES (60) + 30" in result.stderr


def test_server_user_data_installs_the_kscaler_binary_only_when_its_checksum_matches(moto, imds_factory, sandbox):
    binary = b"\x7fELF pretend kscaler binary"
    server = Server(moto, imds_factory, sandbox, "k3s-server.cloud-config.tmpl", sections=("install_kscaler",),
                    region="eu-west-1", kscaler_binary_url="https://example.invalid/kscaler",
                    kscaler_binary_sha256=hashlib.sha256(binary).hexdigest())
    server.imds.downloads["kscaler"] = binary
    url = f"{server.imds.endpoint}/downloads/kscaler"
    [install_step] = [c for c in server.config["runcmd"] if c[0] == INSTALL]
    assert install_step[1:] == ["https://example.invalid/kscaler", hashlib.sha256(binary).hexdigest()]
    assert (sandbox.root / "etc/kscaler/kscaler.env").read_text() == "AWS_REGION=eu-west-1\n"
    assert yaml.safe_load((sandbox.root / "etc/kscaler/config.yaml").read_text()) == yaml.safe_load(EXAMPLE_CONFIG)

    wrong = sandbox.run([INSTALL, url, "0" * 64])
    assert wrong.returncode == 1
    assert "does not match" in wrong.stderr
    assert not (sandbox.root / "usr/local/bin/kscaler").exists()

    right = sandbox.run([INSTALL, url, hashlib.sha256(binary).hexdigest()])
    assert right.returncode == 0, right.stderr
    installed = sandbox.root / "usr/local/bin/kscaler"
    assert installed.read_bytes() == binary
    assert mode(installed) == 0o755


def _result(stdout, stderr):
    class Result:
        pass

    result = Result()
    result.stdout, result.stderr = stdout, stderr
    return result
