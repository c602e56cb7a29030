"""infra/container/build-push.sh with fake podman, docker and aws on PATH: it builds, logs in with
the password on stdin only, pushes the commit-tagged image to the repository and prints its URI."""

import subprocess

import pytest

from conftest import REPO, which

SCRIPT = REPO / "infra/container/build-push.sh"
PASSWORD = "ecr-password-7f3a9c"  # what the fake `aws ecr get-login-password` prints
REPOSITORY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kscaler-demo"

RECORDER = r"""#!/bin/bash
# Record this call's argv (one line, NUL-free) and, for `login`, what arrives on stdin.
printf '%s %s\n' "$(basename "$0")" "$*" >> "$CALLS"
if [ "$(basename "$0")" = aws ]; then printf '%s' "$FAKE_PASSWORD"; fi
if [ "${1:-}" = login ]; then cat > "$CALLS.stdin"; fi
exit 0
"""


@pytest.fixture
def workspace(tmp_path):
    repo = tmp_path / "repo"
    (repo / "infra/container").mkdir(parents=True)
    (repo / "Sources").mkdir()
    (repo / "Sources/main.swift").write_text("print(1)\n")
    (repo / "Package.swift").write_text("// swift-tools-version:6.0\n")
    for name in ("Containerfile", "Containerfile.dockerignore"):
        (repo / "infra/container" / name).write_text((REPO / "infra/container" / name).read_text())
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "podman", "docker"):
        (bin_dir / tool).write_text(RECORDER)
        (bin_dir / tool).chmod(0o755)
    for tool in ("git", "basename", "cat"):
        (bin_dir / tool).symlink_to(which(tool))
    calls = tmp_path / "calls"

    def run(*args, engines=("podman", "docker"), env=None):
        for tool in {"podman", "docker"} - set(engines):
            (bin_dir / tool).unlink(missing_ok=True)
        environment = {"PATH": str(bin_dir), "CALLS": str(calls), "FAKE_PASSWORD": PASSWORD, "HOME": str(tmp_path),
                       **(env or {})}
        return subprocess.run(["/bin/bash", str(SCRIPT), *args], cwd=repo / "Sources", env=environment,
                              capture_output=True, text=True, timeout=60)

    return {"run": run, "calls": calls, "head": head, "repo": repo}


def test_builds_logs_in_through_stdin_pushes_and_prints_the_uri(workspace):
    result = workspace["run"](REPOSITORY)
    assert result.returncode == 0, result.stderr
    image = f"{REPOSITORY}:{workspace['head']}"
    assert result.stdout == image + "\n"
    calls = workspace["calls"].read_text().splitlines()
    # The password's two ends run at once (a pipe): their order in the log is either.
    assert calls[0] == (f"podman build -f infra/container/Containerfile --ignorefile "
                        f"infra/container/Containerfile.dockerignore -t {image} .")
    assert sorted(calls[1:3]) == ["aws ecr get-login-password --region eu-west-1",
                                  "podman login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com"]
    assert calls[3:] == [f"podman push {image}"]
    assert PASSWORD not in "\n".join(calls) and PASSWORD not in result.stdout + result.stderr
    assert (workspace["calls"].parent / "calls.stdin").read_text() == PASSWORD


def test_uses_docker_when_there_is_no_podman(workspace):
    result = workspace["run"](REPOSITORY, engines=("docker",))
    assert result.returncode == 0, result.stderr
    calls = workspace["calls"].read_text().splitlines()
    steps = [c.split()[:2] for c in calls]
    assert steps[0] == ["docker", "build"] and steps[3:] == [["docker", "push"]]
    assert sorted(steps[1:3]) == [["aws", "ecr"], ["docker", "login"]]


def test_refuses_without_an_engine_a_bad_uri_or_uncommitted_sources(workspace):
    result = workspace["run"]("docker.io/kscaler")
    assert result.returncode != 0 and "usage:" in result.stderr
    (workspace["repo"] / "Sources/main.swift").write_text("print(2)\n")
    result = workspace["run"](REPOSITORY)
    assert result.returncode != 0 and "uncommitted changes" in result.stderr
    result = workspace["run"](REPOSITORY, engines=())
    assert result.returncode != 0 and "neither podman nor docker" in result.stderr
    assert not workspace["calls"].exists()  # nothing was built, nothing was pushed


def test_shellcheck_clean():
    result = subprocess.run([which("shellcheck"), "--severity=style", str(SCRIPT)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout
