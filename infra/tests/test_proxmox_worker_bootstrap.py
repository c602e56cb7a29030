"""The Proxmox worker bootstrap runs for real, from the rendered user data, in the sandbox: the
join files come from the join directory (the sandbox cannot attach a drive labelled kscaler-join:
that path is the one a real clone takes first, and it ends in the same directory read), the
hostname is the VM name kscaler gave the clone, the k3s installer is a recorder, and every
external command is wrapped, so the test sees every argv."""

import yaml

from conftest import mode, new_cluster_id
from userdata_render import defaults, render

SERVER_URL = "https://10.0.0.10:6443"
K3S_CONFIG = "etc/rancher/k3s/config.yaml.d/50-kscaler.yaml"
BOOTSTRAP = "/usr/local/sbin/kscaler-k3s-proxmox-worker-bootstrap"
TOKEN = "K10" + "f" * 64 + "::node:" + "0123456789abcdef" * 2


def boot(sandbox, cluster, hostname, join_files=True, **values):
    user_data = render("k3s-proxmox-worker.cloud-config.tmpl",
                       {**defaults(cluster), "proxmox_cluster_name": "lab", **values})
    sandbox.install(user_data)
    sandbox.add_env("/etc/kscaler/worker.env", KSCALER_K3S_INSTALL=str(sandbox.installer), KSCALER_MAX_WAIT_SECONDS="3")
    (sandbox.root / "proc/sys/kernel").mkdir(parents=True, exist_ok=True)
    (sandbox.root / "proc/sys/kernel/hostname").write_text(hostname + "\n")
    if join_files:
        join = sandbox.root / "etc/kscaler/join"
        join.mkdir(parents=True, exist_ok=True)
        (join / "server-url").write_text(SERVER_URL + "\n")
        (join / "join-token").write_text(TOKEN + "\n")
    return user_data, sandbox.run([BOOTSTRAP])


def test_joins_as_the_vm_name_with_a_proxmox_provider_id(sandbox):
    cluster = new_cluster_id()
    user_data, result = boot(sandbox, cluster, f"kscaler-{cluster}-104.lan", pool="batch",
                             node_labels="workload=batch", node_taints="dedicated=batch:NoSchedule")

    assert result.returncode == 0, result.stderr
    [install] = sandbox.records("k3s-install.sh")
    assert install["env"]["INSTALL_K3S_EXEC"] == "agent"
    assert yaml.safe_load((sandbox.root / K3S_CONFIG).read_text()) == {
        "server": SERVER_URL,
        "token-file": "/etc/kscaler/join-token",
        "node-name": f"kscaler-{cluster}-104",
        "node-label+": [f"kscaler.io/cluster={cluster}", "kscaler.io/pool=batch", "workload=batch"],
        "node-taint+": ["dedicated=batch:NoSchedule"],
        "kubelet-arg+": ["provider-id=proxmox://lab/104"],
    }
    token_file = sandbox.root / "etc/kscaler/join-token"
    assert token_file.read_text() == TOKEN + "\n"
    assert mode(token_file) == 0o600
    assert TOKEN not in user_data
    sandbox.assert_secrets_hidden(result, TOKEN)
    assert not list((sandbox.root / "run").iterdir()), "the private directory outlived the script"


def test_a_vm_kscaler_did_not_name_does_not_join(sandbox):
    cluster = new_cluster_id()
    _, result = boot(sandbox, cluster, "ubuntu-template")

    assert result.returncode == 1
    assert f"hostname 'ubuntu-template' is not kscaler-{cluster}-<vmid>" in result.stderr
    assert not sandbox.records("k3s-install.sh")


def test_without_join_files_it_gives_up_saying_where_it_looked(sandbox):
    cluster = new_cluster_id()
    _, result = boot(sandbox, cluster, f"kscaler-{cluster}-105", join_files=False)

    assert result.returncode == 1
    assert "gave up on join files" in result.stderr
    assert "no server-url and join-token on a drive labelled kscaler-join or in" in result.stderr
    assert not sandbox.records("k3s-install.sh")
