"""infra/README.md's walk-through: every ```sh block passes shellcheck, every step ends with a
check, the documented launches keep IMDS to one hop, the doctor task is the scheduled task with
`doctor` for `run`, and the Prometheus password recipe works against a real Prometheus."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from conftest import REPO, which
from stack_model import load, resolve

README = REPO / "infra/README.md"


def readme():
    return README.read_text()


def sh_blocks():
    return re.findall(r"^```sh\n(.*?)^```", readme(), re.S | re.M)


def walkthrough():
    text = readme()
    start = text.index("## From an empty AWS account to a scaling cluster")
    return text[start:text.index("\n## ", start + 1)]


def steps():
    """(number, title, body) of each numbered step of the walk-through."""
    parts = re.split(r"^### (\d+)\. (.*)$", walkthrough(), flags=re.M)
    return [(int(parts[i]), parts[i + 1], parts[i + 2]) for i in range(1, len(parts), 3)]


def shellcheck(text, *options):
    return subprocess.run([which("shellcheck"), "--shell=bash", "--severity=style", *options, "-"], input=text,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("index", range(len(sh_blocks())))
def test_sh_block_passes_shellcheck(index):
    block = sh_blocks()[index]
    # SC2034 (assigned but unused): step 0's names are used by later blocks; the next test runs
    # the walk-through's blocks as one script without this exclusion.
    result = shellcheck(block, "--exclude=SC2034")
    assert result.returncode == 0, block + "\n" + result.stdout


def test_walkthrough_blocks_pass_shellcheck_as_one_script():
    """Together, in order, as a reader runs them in one shell: no variable is used unset."""
    text = walkthrough()
    blocks = re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)
    script = "set -u\n" + "\n".join(blocks)
    result = shellcheck(script)
    assert result.returncode == 0, result.stdout
    assigned = set(re.findall(r"^\s*(?:export )?([A-Z_][A-Z0-9_]*)=", script, re.M))
    used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\b", script))
    # KSCALER_CONFIG_YAML and PROMETHEUS_PASSWORD are the task's variables, inside the doctor override.
    assert used - assigned == {"KSCALER_CONFIG_YAML", "PROMETHEUS_PASSWORD"}, used - assigned


def test_shellcheck_finds_a_broken_block():
    assert shellcheck('aws ec2 run-instances --image-id ami-… --subnet-id $SUBNET\n').returncode != 0


def test_steps_are_numbered_in_order_and_each_says_how_to_check_it():
    numbers = [n for n, _, _ in steps()]
    assert numbers == list(range(len(numbers))) and len(numbers) >= 11
    for number, title, body in steps():
        assert "Check:" in body, f"step {number} ({title}) has no Check"


def test_steps_come_in_the_order_the_issue_asks_for():
    titles = [title.lower() for _, title, _ in steps()]
    order = ["network", "worker ami", "stack", "config", "server", "user data", "prometheus", "parameter", "image",
             "doctor", "schedule on"]
    positions = [next(i for i, t in enumerate(titles) if word in t) for word in order]
    assert positions == sorted(positions), titles


def test_every_documented_launch_keeps_imds_to_one_hop():
    launches = re.findall(r"aws ec2 run-instances(?:[^\n]*\\\n)*[^\n]*", readme())
    from_template = [launch for launch in launches if "--launch-template " in launch]
    launches = [launch for launch in launches if launch not in from_template]
    assert len(launches) >= 2  # the bake instance and the server
    # A launch from the worker template gets the template's one hop (test_stack_pools.py).
    assert all("--metadata-options" not in launch for launch in from_template)
    for launch in launches:
        assert "--metadata-options HttpTokens=required,HttpPutResponseHopLimit=1,HttpEndpoint=enabled" in launch, launch
    [server] = [launch for launch in launches if "--iam-instance-profile" in launch]
    assert '--security-group-ids "$NODE_SG"' in server and '--private-ip-address "$SERVER_IP"' in server


def test_doctor_task_is_the_scheduled_task_with_doctor_for_run():
    heredoc = re.search(r"cat > doctor-overrides.json <<'EOF'\n(.*?)\nEOF\n", walkthrough(), re.S).group(1)
    [override] = json.loads(heredoc)["containerOverrides"]
    [container] = resolve(load()["Resources"]["TaskDefinition"])["Properties"]["ContainerDefinitions"]
    assert override["name"] == container["Name"]
    [command] = container["Command"]
    assert "/kscaler run --config " in command
    assert override["command"] == [command.replace("/kscaler run --config ", "/kscaler doctor --config ")]


def test_walkthrough_names_stack_outputs_that_exist():
    outputs = set(load()["Outputs"])
    named = set(re.findall(r"\$\(output (\w+)\)", walkthrough()))
    assert named and named <= outputs, named - outputs
    parameters = set(load()["Parameters"])
    overrides = set(re.findall(r"\b([A-Z][A-Za-z]+)=\"", walkthrough())) & {p for p in parameters}
    assert {"ClusterId", "VpcId", "WorkerImageId", "KScalerImage", "TaskSubnetIds"} <= overrides
    assert "ScheduleState=ENABLED" in walkthrough()
    # The task exists only with Shape=fargate (the stack's default shape is lambda).
    assert "Shape=fargate KScalerImage=" in walkthrough()


def test_config_in_the_walkthrough_matches_the_stack_and_the_manifests():
    [config] = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", walkthrough(), re.S | re.M)]
    names = dict(re.findall(r"^(CLUSTER|SERVER_IP)=(\S+)", walkthrough(), re.M))
    assert config["cluster_id"] == names["CLUSTER"]
    port = load()["Parameters"]["PrometheusNodePort"]["Default"]
    assert config["prometheus"]["url"] == f"http://{names['SERVER_IP']}:{port}"
    assert config["workers"]["launch_template"]["name"] == f"kscaler-{names['CLUSTER']}-general"
    assert "prometheus.monitoring" not in readme()  # the task cannot resolve in-cluster names


def kscaler_binary():
    for path in (REPO / ".build/release/kscaler", REPO / ".build/debug/kscaler"):
        if path.exists():
            return path
    return None


def test_readme_configs_pass_kscaler_config_check(tmp_path):
    """The walk-through's config and every other complete config in infra/README.md."""
    binary = kscaler_binary()
    if binary is None:
        pytest.skip("no kscaler binary in .build/ (swift build -c release --product kscaler); the auth keys are "
                    "checked against ConfigSettings.swift by test_monitoring_manifests.py")
    blocks = [b for b in re.findall(r"^```yaml\n(.*?)^```", readme(), re.S | re.M) if b.startswith("cluster_id:")]
    assert len(blocks) >= 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSCALER_")}
    for block in blocks:
        (tmp_path / "config.yaml").write_text(block)
        result = subprocess.run([str(binary), "config", "check", "--config", str(tmp_path / "config.yaml")],
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, block + result.stdout + result.stderr
    placeholder = load()["Resources"]["ConfigParameter"]["Properties"]["Value"]
    (tmp_path / "placeholder.yaml").write_text(placeholder)
    refused = subprocess.run([str(binary), "config", "check", "--config", str(tmp_path / "placeholder.yaml")],
                             capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode != 0, refused.stdout


# ---------------------------------------------------------------------------------------------
# The Prometheus password recipe, against Prometheus itself


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step(number):
    [(_, _, body)] = [s for s in steps() if s[0] == number]
    return body


def test_password_recipe_makes_prometheus_ask_for_it(tmp_path):
    body = step(7)
    [block, checks] = re.findall(r"^```sh\n(.*?)^```", body, re.S | re.M)
    recipe = [line for line in block.splitlines() if line.startswith(("PROM_PASSWORD=", "printf '%s\\n'", "  | awk"))]
    assert len(recipe) == 3, recipe
    which("htpasswd")
    subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(recipe)], cwd=tmp_path, check=True, timeout=60)
    web = yaml.safe_load((tmp_path / "web.yml").read_text())
    assert list(web) == ["basic_auth_users"] and list(web["basic_auth_users"]) == ["kscaler"]
    port = free_port()
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1s}\nscrape_configs: []\n")
    prometheus = subprocess.Popen([which("prometheus"), f"--config.file={tmp_path}/prometheus.yml",
                                   f"--web.config.file={tmp_path}/web.yml", f"--storage.tsdb.path={tmp_path}/data",
                                   f"--web.listen-address=127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2)
            except urllib.error.HTTPError:
                break  # it answers (401): up
            except OSError:
                assert time.monotonic() < deadline, "prometheus did not start"
                time.sleep(0.1)
        # The step's own check lines, pointed at this Prometheus, in the shell that made the hash.
        # Without the port-forward and its kill: this Prometheus listens on `port` itself.
        local = "\n".join(line for line in checks.splitlines()
                          if "port-forward" not in line and "FORWARD" not in line and line != "sleep 3")
        local = local.replace("127.0.0.1:9090", f"127.0.0.1:{port}")
        assert local.count(f"127.0.0.1:{port}") == 2
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(recipe) + "\n" + local], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        denied, answered = result.stdout.splitlines()
        assert denied == "401"
        assert json.loads(answered)["status"] == "success"
        # A wrong password is refused too.
        wrong = local.replace('"kscaler:%s"', '"kscaler:%s-wrong"').replace("curl -s -K -", "curl -s -o /dev/null -w '%{http_code}' -K -")
        result = subprocess.run(["bash", "-c", "\n".join(recipe) + "\n" + wrong], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)
        assert result.stdout.splitlines()[-1] == "401", result.stdout
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
