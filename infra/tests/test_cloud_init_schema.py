"""Every template renders to user data that cloud-init 22.4 accepts (`cloud-init schema -c`),
fits EC2's 16 KB limit with room to spare, and the committed examples are exactly the
renderer's output (so they show what `kscaler userdata render` produces)."""

import subprocess

import pytest
import yaml

from conftest import REPO, which
from userdata_render import EXAMPLE_CONFIG, EXAMPLES, RenderError, defaults, render, render_example

EC2_USER_DATA_LIMIT = 16 * 1024
TEMPLATES = sorted(p.name for p in (REPO / "userdata").glob("*.cloud-config.tmpl"))
FULL_VALUES = {**defaults("c" + "x" * 38 + "z"), "pool": "p" * 63,
               "node_labels": ",".join(f"example.com/label-{i}=value-{i}" for i in range(8)),
               "node_taints": "dedicated=batch:NoSchedule,spot=true:PreferNoSchedule",
               "k3s_install_url": "https://get.k3s.io/", "k3s_install_sha256": "a" * 64,
               "k3s_version": "v1.33.1+k3s1", "server_url": "https://api.k8s.example.com:6443",
               "region": "eu-west-1", "kscaler_binary_url": "https://example.com/kscaler", "kscaler_binary_sha256": "b" * 64,
               "proxmox_cluster_name": "p" + "x" * 38 + "Z"}


def schema_check(path):
    return subprocess.run([which("cloud-init"), "schema", "-c", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_passes_the_cloud_init_schema(example):
    result = schema_check(REPO / "userdata" / "examples" / example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_is_the_renderers_output(example):
    committed = (REPO / "userdata" / "examples" / example).read_text()
    assert committed == render_example(example), "run: .venv/bin/python infra/tests/userdata_render.py"


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("sections", [(), ("install_kscaler",)])
def test_every_template_renders_valid_user_data_with_long_values(template, sections, tmp_path):
    rendered = render(template, FULL_VALUES, sections, {"kscaler_config": EXAMPLE_CONFIG})
    path = tmp_path / "user-data"
    path.write_text(rendered)

    result = schema_check(path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "{{" not in rendered
    config = yaml.safe_load(rendered)
    assert all(isinstance(entry["permissions"], str) for entry in config["write_files"])
    if template.endswith("-worker.cloud-config.tmpl") and "proxmox" not in template:
        # kscaler passes EC2 worker user data on every launch: keep a quarter of the budget free.
        # (The Proxmox worker's is a snippet on Proxmox storage, never sent with a launch.)
        assert len(rendered.encode()) < 0.75 * EC2_USER_DATA_LIMIT
    else:
        assert len(rendered.encode()) < EC2_USER_DATA_LIMIT


def test_the_schema_check_rejects_broken_user_data(tmp_path):
    broken = render_example("k3s-worker.yaml").replace("permissions: '0644'", "permissions: 644", 1)
    path = tmp_path / "user-data"
    path.write_text(broken)

    result = schema_check(path)

    assert result.returncode == 1
    assert "is not of type 'string'" in result.stdout + result.stderr


def test_the_renderer_refuses_a_value_that_could_escape_its_quotes():
    with pytest.raises(RenderError, match="node_labels"):
        render("k3s-worker.cloud-config.tmpl", {**defaults("demo"), "node_labels": "a=b'; rm -rf /; '"})
