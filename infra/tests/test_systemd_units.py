"""The systemd units load cleanly (`systemd-analyze verify` prints nothing) and kscaler.service
keeps its hardening (`systemd-analyze security` exposure at most 1.5 of 10)."""

import shutil
import subprocess

import pytest

from conftest import REPO, which

UNITS = {
    "infra/systemd/kscaler.service": "/usr/local/bin/kscaler",
    "infra/systemd/kscaler.timer": None,
    "userdata/systemd/kscaler-publish-join.service": "/usr/local/sbin/kscaler-k3s-server",
    "userdata/systemd/kscaler-kubeadm-token-rotate.service": "/usr/local/sbin/kscaler-kubeadm-token-rotate",
    "userdata/systemd/kscaler-kubeadm-token-rotate.timer": None,
}


@pytest.fixture
def systemd_root(tmp_path):
    """A root with the host's unit library, the units under test and their executables."""
    (tmp_path / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc/systemd/system").mkdir(parents=True)
    for unit, executable in UNITS.items():
        shutil.copy(REPO / unit, tmp_path / "etc/systemd/system")
        if executable:
            path = tmp_path / executable.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
    return tmp_path


def analyze(*args):
    return subprocess.run([which("systemd-analyze"), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_verifies_without_a_warning(systemd_root, unit):
    name = unit.rsplit("/", 1)[1]
    result = analyze("verify", f"--root={systemd_root}", name)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


def test_verify_reports_an_unknown_setting(systemd_root):
    unit = systemd_root / "etc/systemd/system/kscaler.service"
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"))
    result = analyze("verify", f"--root={systemd_root}", "kscaler.service")
    assert "Unknown key 'NoNewPrivilege'" in result.stdout + result.stderr


def test_kscaler_service_is_hardened(systemd_root):
    result = analyze("security", "--offline=yes", f"--root={systemd_root}", "--threshold=15", "kscaler.service")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Overall exposure level for kscaler.service: 1." in result.stdout
    for setting in ("User=/DynamicUser=", "NoNewPrivileges=", "ProtectSystem=", "CapabilityBoundingSet=~CAP_SYS_ADMIN"):
        assert any(line.startswith("✓ " + setting) for line in result.stdout.splitlines()), setting


def test_kscaler_service_is_a_oneshot_the_timer_starts_every_minute():
    service = (REPO / "infra/systemd/kscaler.service").read_text().splitlines()
    timer = (REPO / "infra/systemd/kscaler.timer").read_text().splitlines()
    assert "Type=oneshot" in service
    assert "ExecStart=/usr/local/bin/kscaler run --config /etc/kscaler/config.yaml" in service
    assert "EnvironmentFile=/etc/kscaler/kscaler.env" in service
    assert not any("--log-format" in line for line in service)  # the environment sets it
    assert "OnCalendar=*-*-* *:*:00" in timer
    assert any(line.startswith("RandomizedDelaySec=") for line in timer)


def test_kscaler_service_logs_json_unless_its_environment_file_says_otherwise():
    """JSON lines into the journal for the CloudWatch metric filters. systemd gives a variable
    from EnvironmentFile= precedence over Environment= (systemd.exec), so kscaler.env can still
    choose plain; the example names both variables, commented out."""
    service = (REPO / "infra/systemd/kscaler.service").read_text().splitlines()
    assert "Environment=KSCALER_LOG_FORMAT=json" in service
    example = (REPO / "infra/systemd/kscaler.env.example").read_text().splitlines()
    assert "#KSCALER_LOG_FORMAT=plain" in example and "#KSCALER_LOG_LEVEL=info" in example
    assert not any(line.startswith("KSCALER_LOG_") for line in example)
