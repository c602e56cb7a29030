"""Every script passes shellcheck at style level, following the libraries it sources; the copies
embedded in the rendered examples, which lose their comment lines (and so their shellcheck
directives) on the way, still parse and have no shellcheck error."""

import subprocess

import pytest
import yaml

from conftest import REPO, which
from userdata_render import EXAMPLES

SCRIPTS = sorted(str(p.relative_to(REPO)) for p in (REPO / "userdata").glob("*.sh"))
LIBRARIES = sorted(str(p.relative_to(REPO)) for p in (REPO / "userdata" / "lib").glob("*.sh"))


def shellcheck(*args, stdin=None):
    return subprocess.run([which("shellcheck"), *args], cwd=REPO, input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("script", SCRIPTS + LIBRARIES)
def test_source_passes_shellcheck(script):
    result = shellcheck("--external-sources", "--severity=style", script)
    assert result.returncode == 0, result.stdout


def embedded_scripts():
    scripts = []
    for example in sorted(EXAMPLES):
        config = yaml.safe_load((REPO / "userdata" / "examples" / example).read_text())
        for entry in config["write_files"]:
            if entry["path"].startswith(("/usr/local/sbin/", "/usr/local/lib/kscaler/")):
                scripts.append(pytest.param(entry["content"], id=f"{example}:{entry['path']}"))
    return scripts


@pytest.mark.parametrize("content", embedded_scripts())
def test_rendered_script_parses_and_has_no_shellcheck_error(content):
    parsed = subprocess.run(["/bin/bash", "-n"], input=content, capture_output=True, text=True, timeout=60)
    assert parsed.returncode == 0, parsed.stderr
    result = shellcheck("--shell=bash", "--severity=error", "-", stdin=content)
    assert result.returncode == 0, result.stdout


def test_shellcheck_reports_findings():
    result = shellcheck("--shell=bash", "-", stdin="#!/bin/bash\ncd /tmp\nrm -rf $1/*\n")
    assert result.returncode == 1
    assert "SC2086" in result.stdout
