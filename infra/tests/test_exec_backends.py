"""The exec backend examples (examples/backends/*/backend.sh) hold to the protocol in
docs/backends/exec.md: each is driven from here through list, launch, the same launch again,
a larger launch with the same id, terminate and terminate again, against a stateful fake of the
CLI it drives (infra/tests/exec_fakes: docker/podman for the docker and kind examples, curl and
VPSie's API for the vpsie one); unknown protocol versions and a failing engine or API answer
with a JSON error and a valid outcome, and the join or API token never reaches an argv, stdout or
stderr. The docker example also runs against the real podman engine with a stand-in image (a
static-enough rootfs holding /bin/sleep in place of k3s), or the test skips saying why podman
cannot run containers here."""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import REPO, which

EXAMPLES = REPO / "examples" / "backends"
FAKES = Path(__file__).parent / "exec_fakes"
NAMES = ["docker", "kind", "vpsie"]
SCRIPTS = sorted(str(p.relative_to(REPO)) for p in EXAMPLES.glob("*/backend.sh"))
# Each fake's failure switch: (variable, value that fails before anything is created).
FAIL_SWITCH = {"docker": ("FAKE_ENGINE_FAIL_RUN", "1"), "kind": ("FAKE_ENGINE_FAIL_RUN", "1"),
               "vpsie": ("FAKE_VPSIE_FAIL_ADD", "400")}
ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UTC_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def install_fake(bin_dir, name, source):
    """Writes the fake `source` (a file in exec_fakes) as executable `name` in bin_dir."""
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n" + (FAKES / source).read_text())
    path.chmod(0o755)


def example_backends(tmp_path):
    """For each example, by name ("docker", "kind", "vpsie"): (argv, env) to run it against its
    stateful fake. argv is the script alone (kscaler appends the operation); env is a whole
    environment for the child: PATH with the fake CLI first, the fake's state and log files
    (FAKE_ENGINE_* or FAKE_VPSIE_*), a join or API token file whose content is a fresh random
    string (KSCALER_TEST_SECRET repeats it, so a test can look for leaks; it is not the
    example's input), and the example's own settings. Each example gets its own directory under
    tmp_path, so the three can run side by side; the fakes start empty."""
    backends = {}
    for name in NAMES:
        home = tmp_path / name
        bin_dir = home / "bin"
        bin_dir.mkdir(parents=True)
        secret = f"not-a-real-token-{secrets.token_hex(12)}"
        token_file = home / "token"
        token_file.write_text(secret + "\n")
        token_file.chmod(0o600)
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home), "LANG": "C.UTF-8",
               "KSCALER_TEST_SECRET": secret}
        if name == "vpsie":
            install_fake(bin_dir, "curl", "fake_vpsie_curl.py")
            state = home / "vpsie-state.json"
            state.write_text(json.dumps({"groups": [{"id": 7, "group_name": "small", "dcIdentifier": "dc-ams1"},
                                                    {"id": 8, "group_name": "large", "dcIdentifier": "dc-ams1"}],
                                         "nodes": []}))
            env |= {"FAKE_VPSIE_STATE": str(state), "FAKE_VPSIE_LOG": str(home / "calls.jsonl"),
                    "FAKE_VPSIE_TOKEN_FILE": str(token_file), "VPSIE_TOKEN_FILE": str(token_file),
                    "VPSIE_CLUSTER": "k8s-3f2a", "VPSIE_API_URL": "https://api.vpsie.invalid/apps/v2",
                    "VPSIE_DEFAULT_GROUP": "small"}
        else:
            cli = "docker" if name == "docker" else "podman"
            install_fake(bin_dir, cli, "fake_engine.py")
            env |= {"FAKE_ENGINE_STATE": str(home / "engine-state.json"),
                    "FAKE_ENGINE_LOG": str(home / "calls.jsonl")}
            if name == "docker":
                env |= {"K3S_TOKEN_FILE": str(token_file), "K3S_URL": "https://10.0.0.2:6443"}
            else:
                env |= {"KIND_ENGINE": "podman", "KIND_CLUSTER": "kscaler-test", "KUBEADM_TOKEN_FILE": str(token_file),
                        "KUBEADM_API_SERVER": "kscaler-test-control-plane:6443",
                        "KUBEADM_CA_CERT_HASH": "sha256:" + "ab" * 32}
        backends[name] = ([str(EXAMPLES / name / "backend.sh")], env)
    return backends


class Backend:
    """Runs one example through the protocol and keeps every stdout and stderr it wrote."""

    def __init__(self, argv, env, cluster="demo"):
        self.argv, self.env, self.cluster, self.outputs = argv, env, cluster, []

    def call(self, operation, expect_success=True, env=None, **fields):
        request = {"protocol": 1, "operation": operation, "cluster_id": self.cluster, "dry_run": False} | fields
        result = subprocess.run(self.argv + [operation], input=json.dumps(request), capture_output=True,
                                text=True, env=self.env | (env or {}), timeout=120)
        self.outputs += [result.stdout, result.stderr]
        answer = json.loads(result.stdout) if result.stdout.strip() else None
        if expect_success:
            assert result.returncode == 0, (operation, result.stdout, result.stderr)
            assert answer["protocol"] == 1
        return result.returncode, answer

    def launch(self, launch_id, count, **fields):
        return self.call("launch", launch_id=launch_id, count=count,
                         offering=fields.pop("offering", {"machine_type": None, "placement": None}),
                         bootstrap={"cluster_id": self.cluster, "pool": "default",
                                    "labels": {"kscaler.io/pool": "default"}, "taints": ["dedicated=ci:NoSchedule"]},
                         **fields)

    def machines(self):
        return self.call("list")[1]["machines"]


def check_machine(machine, launch_id):
    """The list shape of docs/backends/exec.md: required fields valid, optional ones typed."""
    assert ID.match(machine["id"]), machine
    assert machine["state"] in ("pending", "running", "ended"), machine
    assert UTC_TIME.match(machine["launch_time"]), machine
    launched = datetime.strptime(machine["launch_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - launched).total_seconds()) < 3600, machine
    assert machine["launch_id"] == launch_id
    assert machine["protected"] is False
    assert machine["pool"] == "default"
    for key in ("machine_type", "placement", "provider_id"):
        assert isinstance(machine.get(key, ""), str), machine
    assert set(machine) <= {"id", "state", "launch_time", "machine_type", "placement", "pool", "launch_id",
                            "provider_id", "protected", "market"}, machine


def fake_log(env):
    path = Path(env.get("FAKE_ENGINE_LOG") or env["FAKE_VPSIE_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def backends(tmp_path):
    return example_backends(tmp_path)


def test_every_example_is_covered():
    assert sorted(Path(s).parent.name for s in SCRIPTS) == sorted(NAMES)


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_passes_shellcheck(script):
    result = subprocess.run([which("shellcheck"), "--severity=style", script], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("name", NAMES)
def test_launch_is_idempotent_and_terminate_is_too(backends, name):
    backend = Backend(*backends[name])
    assert backend.machines() == []

    first = backend.launch("run-8x2k-1", 2)[1]["machines"]
    assert len(first) == 2 and len({m["id"] for m in first}) == 2
    for machine in first:
        check_machine(machine, "run-8x2k-1")
        if name == "docker":  # node_name "{id}", provider_id "k3s://{id}"
            assert machine["provider_id"] == "k3s://" + machine["id"]
        if name == "kind":
            assert machine["provider_id"] == "kind://podman/kscaler-test/" + machine["id"]

    again = backend.launch("run-8x2k-1", 2)[1]["machines"]
    assert sorted(m["id"] for m in again) == sorted(m["id"] for m in first)
    assert len(backend.machines()) == 2

    more = backend.launch("run-8x2k-1", 3)[1]["machines"]
    assert len(more) == 3 and {m["id"] for m in first} < {m["id"] for m in more}

    gone = first[0]["id"]
    assert backend.call("terminate", machine_ids=[gone])[1] == {"protocol": 1, "terminated": [gone]}
    remaining = backend.machines()
    assert all(m["state"] == "ended" for m in remaining if m["id"] == gone)
    assert len([m for m in remaining if m["state"] != "ended"]) == 2
    assert backend.call("terminate", machine_ids=[gone])[1] == {"protocol": 1, "terminated": [gone]}


@pytest.mark.parametrize("name", NAMES)
def test_another_cluster_and_another_launch_id_are_kept_apart(backends, name):
    ours, theirs = Backend(*backends[name]), Backend(*backends[name], cluster="other")
    ours.launch("run-a", 1)
    theirs.launch("run-a", 1)
    ours.launch("run-b", 1)
    assert sorted(m["launch_id"] for m in ours.machines()) == ["run-a", "run-b"]
    assert len(theirs.machines()) == 1


@pytest.mark.parametrize("name", NAMES)
def test_dry_run_launches_nothing(backends, name):
    backend = Backend(*backends[name])
    assert backend.launch("run-dry", 2, dry_run=True)[1] == {"protocol": 1, "machines": []}
    assert backend.machines() == []


@pytest.mark.parametrize("name", NAMES)
def test_an_unknown_protocol_version_is_refused_before_acting(backends, name):
    argv, env = backends[name]
    request = {"protocol": 2, "operation": "launch", "cluster_id": "demo", "dry_run": False, "launch_id": "run-1",
               "count": 1}
    result = subprocess.run(argv + ["launch"], input=json.dumps(request), capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode != 0
    assert json.loads(result.stdout)["error"]["outcome"] == "nothing_launched"
    assert fake_log(env) == []  # not one call to the engine or the API


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("stdin, says", [
    ("not json", "JSON object"),
    (json.dumps({"protocol": 1, "operation": "launch", "cluster_id": "demo", "dry_run": False,
                 "launch_id": "run 1; rm -rf /", "count": 1}), "launch_id"),
    (json.dumps({"protocol": 1, "operation": "launch", "cluster_id": "Demo/../x", "dry_run": False,
                 "launch_id": "run-1", "count": 1}), "cluster_id"),
], ids=["not-json", "bad-launch-id", "bad-cluster-id"])
def test_bad_input_is_refused_saying_what_is_wrong(backends, name, stdin, says):
    argv, env = backends[name]
    result = subprocess.run(argv + ["launch"], input=stdin, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0
    error = json.loads(result.stdout)["error"]
    assert error["outcome"] == "nothing_launched" and says in error["message"], error
    assert says in result.stderr
    # nothing launched: no `run` to the engine, no add-node call to the API
    assert not any(call["argv"][0] == "run" or "/add/" in call["argv"][-1] for call in fake_log(env))


@pytest.mark.parametrize("name", NAMES)
def test_a_failing_engine_answers_a_json_error_with_a_valid_outcome(backends, name):
    backend = Backend(*backends[name])
    variable, value = FAIL_SWITCH[name]
    status, answer = backend.launch("run-fail", 2, expect_success=False, env={variable: value})
    assert status != 0
    assert answer["protocol"] == 1
    assert answer["error"]["outcome"] == "nothing_launched", answer  # refused before anything started
    assert answer["error"]["capacity"] is False and answer["error"]["message"]
    assert backend.machines() == []


@pytest.mark.parametrize("name", NAMES)
def test_a_failure_after_something_started_is_unknown(backends, name):
    backend = Backend(*backends[name])
    # The engine fails the second run; the API fails with a 5xx, which may have acted.
    env = {"FAKE_VPSIE_FAIL_ADD": "503"} if name == "vpsie" else {"FAKE_ENGINE_FAIL_RUN_AFTER": "1"}
    status, answer = backend.launch("run-half", 2, expect_success=False, env=env)
    assert status != 0 and answer["error"]["outcome"] == "unknown", answer
    # The retry with the same launch id completes it without launching twice.
    assert len(backend.launch("run-half", 2)[1]["machines"]) == 2


@pytest.mark.parametrize("name", NAMES)
def test_a_list_that_fails_is_never_an_empty_list(backends, name):
    """kscaler would read an empty answer as "no machines" and launch more: a failing listing must
    fail the call, in list and before launch or terminate act."""
    backend = Backend(*backends[name])
    launched = backend.launch("run-1", 1)[1]["machines"]
    failing = {"FAKE_VPSIE_FAIL_LIST": "500"} if name == "vpsie" else {"FAKE_ENGINE_FAIL_PS": "1"}
    for operation, fields in [("list", {}), ("launch", {"launch_id": "run-2", "count": 1}),
                              ("terminate", {"machine_ids": [launched[0]["id"]]})]:
        status, answer = backend.call(operation, expect_success=False, env=failing, **fields)
        assert status != 0, (operation, answer)
        assert answer is None or "machines" not in answer, (operation, answer)
        assert answer is None or answer["error"]["outcome"] == "nothing_launched", (operation, answer)
    assert [m["id"] for m in backend.machines()] == [launched[0]["id"]]


@pytest.mark.parametrize("name", NAMES)
def test_the_token_never_reaches_an_argv_or_the_output(backends, name):
    argv, env = backends[name]
    backend = Backend(argv, env)
    launched = backend.launch("run-1", 2)[1]["machines"]
    backend.machines()
    backend.call("terminate", machine_ids=[launched[0]["id"]])
    variable, value = FAIL_SWITCH[name]
    backend.launch("run-2", 1, expect_success=False, env={variable: value})
    secret = env["KSCALER_TEST_SECRET"]
    calls = fake_log(env)
    assert calls, "the fake saw no call"
    assert not any(secret in output for output in backend.outputs)
    assert not any(secret in arg for call in calls for arg in call.get("argv", []))
    if name == "kind":  # it reaches the container on stdin, in kubeadm's join configuration
        assert any(secret in call.get("exec_stdin", "") for call in calls)


def test_terminate_refuses_another_clusters_container_and_removes_nothing(backends):
    backend = Backend(*backends["docker"])
    ours = backend.launch("run-1", 1)[1]["machines"][0]["id"]
    status, answer = backend.call("terminate", expect_success=False, machine_ids=[ours, "kscaler-other-1234"])
    assert status != 0 and answer["error"]["outcome"] == "nothing_launched"
    assert [m["id"] for m in backend.machines()] == [ours]


# --- The docker example against the real podman engine ----------------------------------------

def podman(*args, check=True, timeout=120):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stderr}")
    return result


def sleeper_rootfs(tmp_path):
    """A rootfs tarball holding /bin/sleep and the shared libraries it loads (from ldd): the
    stand-in image for rancher/k3s, which no registry here can serve."""
    root = tmp_path / "rootfs"
    sleep = Path(shutil.which("sleep")).resolve()
    files = [sleep] + [Path(p) for p in re.findall(r"(/\S+\.so[.\d]*)", subprocess.run(
        ["ldd", str(sleep)], capture_output=True, text=True, check=True, timeout=60).stdout)]
    for f in files:
        target = root / ("bin/sleep" if f == sleep else str(f).lstrip("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(root, arcname=".")
    return tarball


@pytest.fixture
def real_podman(tmp_path):
    """(env overrides, image) for running the docker example on the real podman engine, or a
    skip with podman's own error. This machine's podman cannot use crun (cgroups in hybrid mode)
    nor raise rlimits (no CAP_SYS_RESOURCE), so when the plain `podman run` fails the fixture
    tries runc and lowered ulimits, the knobs DOCKER and DOCKER_RUN_ARGS exist for."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    image = f"localhost/kscaler-exec-test:{secrets.token_hex(4)}"
    podman("import", str(sleeper_rootfs(tmp_path)), image)
    wrapper = tmp_path / "podman-runc"
    wrapper.write_text('#!/bin/sh\nexec podman --runtime runc "$@"\n')
    wrapper.chmod(0o755)
    ulimits = "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024"
    attempts = [("podman", ""), (str(wrapper), ulimits)] if shutil.which("runc") else [("podman", "")]
    errors = []
    try:
        for cli, run_args in attempts:
            probe = subprocess.run([cli, "run", "--rm", *run_args.split(), image, "/bin/sleep", "0"],
                                   capture_output=True, text=True, timeout=120)
            if probe.returncode == 0:
                yield {"DOCKER": cli, "DOCKER_RUN_ARGS": run_args, "K3S_IMAGE": image,
                       "KSCALER_TEST_AGENT_COMMAND": "/bin/sleep 3600"}
                return
            errors.append(f"{cli} run {run_args}: {probe.stderr.strip()}")
        pytest.skip("podman cannot run containers here: " + " | ".join(errors))
    finally:
        podman("rmi", "-f", image, check=False)


def test_docker_example_on_the_real_podman_engine(backends, real_podman):
    argv, env = backends["docker"]
    cluster = f"real-{secrets.token_hex(3)}"
    env = {k: v for k, v in env.items() if not k.startswith("FAKE_")} | real_podman
    env["PATH"] = os.environ["PATH"]  # the real podman, not the fake
    backend = Backend(argv, env, cluster=cluster)
    try:
        first = backend.launch("run-real-1", 2)[1]["machines"]
        assert len(first) == 2
        for machine in first:
            check_machine(machine, "run-real-1")
        deadline = time.monotonic() + 60  # containers start in about a second; a loaded CI box is slower
        while not all(m["state"] == "running" for m in backend.machines()):
            assert time.monotonic() < deadline, backend.machines()
            time.sleep(1)
        again = backend.launch("run-real-1", 2)[1]["machines"]
        assert sorted(m["id"] for m in again) == sorted(m["id"] for m in first)
        labelled = podman("ps", "-a", "-q", "--filter", f"label=kscaler.cluster={cluster}").stdout.split()
        assert len(labelled) == 2
        mounts = json.loads(podman("inspect", first[0]["id"]).stdout)[0]["Mounts"]
        token_mount = next(m for m in mounts if m["Destination"] == "/etc/kscaler/k3s-token")
        assert token_mount["RW"] is False

        ids = [m["id"] for m in first]
        assert backend.call("terminate", machine_ids=ids)[1]["terminated"] == ids
        assert backend.machines() == []
        assert backend.call("terminate", machine_ids=ids)[1]["terminated"] == ids
    finally:
        leftovers = podman("ps", "-a", "-q", "--filter", f"label=kscaler.cluster={cluster}", check=False).stdout.split()
        if leftovers:
            podman("rm", "-f", *leftovers, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_kscaler_backend_test_passes_each_example(backends, name):
    """`kscaler backend test --exec` (the release binary) runs its conformance checks against
    each example over its fake: every check passes, and the token shows nowhere."""
    from kscaler_runs import kscaler_binary

    argv, env = backends[name]
    done = subprocess.run([str(kscaler_binary()), "backend", "test", "--exec", *argv], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [line for line in done.stdout.splitlines() if line.startswith(("ok ", "FAIL"))]
    assert [line.split(":")[0].split(maxsplit=1)[1] for line in checks] == [
        "list", "unknown protocol", "dry run", "launch", "launch again", "launch the missing", "terminate", "terminate again"]
    assert all(line.startswith("ok ") for line in checks), done.stdout
    assert env["KSCALER_TEST_SECRET"] not in done.stdout + done.stderr


def test_kscaler_backend_test_fails_a_program_that_launches_twice(tmp_path):
    """The same checks catch a program that ignores the launch id (the reference program with
    a fault): exit 5, the two idempotency checks named, and its machines cleaned up."""
    from kscaler_runs import kscaler_binary

    state = tmp_path / "machines.json"
    env = dict(os.environ, KSANDBOX_EXEC_STATE=str(state), KSANDBOX_EXEC_FAULT="launch:ignore-launch-id")
    done = subprocess.run([str(kscaler_binary()), "backend", "test", "--exec", str(REPO / "infra/local/ksandbox/exec_backend.py")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 5, done.stdout + done.stderr
    failed = [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == ["FAIL launch again", "FAIL launch the missing"]
    assert all(machine["state"] == "ended" for machine in json.loads(state.read_text()))
    missing = subprocess.run([str(kscaler_binary()), "backend", "test", "--exec", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "was not found" in missing.stderr
