"""Real `kscaler run` processes (the release binary) against the local sandbox's peers — moto
with signature checking, a real Prometheus scraping the simulated cluster's kube-state-metrics
(infra/local/ksandbox) — plus a real Pushgateway the runs push to and a second Prometheus
scraping it and the cluster, for the dashboard's queries.

One run of each kind the alarms and the dashboard care about, in this order:
  nothing  — a quiet cluster at its minimum, with room under nodes.max;
  at_max   — pending pods with nodes.max equal to the fleet (a config with max 1);
  action_failed — the same pending pods with room, but credentials denied ec2:RunInstances;
  acted    — the same pending pods with room: kscaler launches;
  failed   — Prometheus unreachable (a config pointing at a closed port): outcome failed;
  skipped  — the lease held by another owner (written into the state item): outcome skipped.
Each run's environment holds the AWS settings and KSCALER_LOG_FORMAT=json only: the format
comes from the environment, as every deployment file sets it, never from --log-format. One more
quiet run, plain_default, has no KSCALER_LOG_FORMAT: the binary's default, plain text."""
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "infra/local"))

from ksandbox.aws import MotoAccount  # noqa: E402
from ksandbox.peers import ManagedProcess, PeerError, Prometheus, http_ok, wait_for  # noqa: E402
from ksandbox.sandbox import Sandbox, Timings, kscaler_environment  # noqa: E402
from ksandbox.scenario import parse  # noqa: E402

KSCALER_CONFIG = REPO / "infra/local/configs/kscaler.yaml"
PUSHGATEWAY_BIN = "/usr/bin/prometheus-pushgateway"
# The burst phase starts this long after the quiet one; the fixture jumps to it.
QUIET = 600.0


def kscaler_binary():
    """KSTEST_BINARY, or the release build; a missing binary fails the tests, never skips."""
    path = Path(os.environ.get("KSTEST_BINARY", REPO / ".build/release/kscaler"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"no kscaler binary at {path}: run `swift build -c release --product kscaler` "
                    "(or set KSTEST_BINARY)", pytrace=False)
    return path


@dataclass
class RunOutput:
    kind: str
    exit_code: int
    report: dict | None
    stderr: str

    @property
    def lines(self):
        return self.stderr.splitlines()


@dataclass
class Runs:
    runs: dict = field(default_factory=dict)
    prometheus_url: str = ""
    pushgateway_url: str = ""
    cluster_id: str = ""
    started: float = 0.0
    # The config of the quiet run, and the binary.
    config_path: Path = None
    binary: Path = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario():
    return parse({
        "name": "log-alarms",
        "cluster": {"boot_delay": "4s", "instance_sizes": {"t3.large": {"cpu": 2, "memory": "8Gi"}}},
        "workloads": {"web": {"cpu": 0.5, "memory": "1Gi"}},
        # Quiet until the fixture jumps the clock; then 4 cores of web on one 2-core worker.
        "phases": [{"name": "quiet", "duration": f"{QUIET:g}s", "replicas": {"web": 1}},
                   {"name": "burst", "duration": "600s", "replicas": {"web": 8}}],
    })


def produce(directory, binary):
    """Plays the five runs; returns Runs while the peers still run (a generator: the caller
    keeps it open while it queries Prometheus, then closes it to stop everything)."""
    directory = Path(directory)
    pushgateway = None
    dashboard_prometheus = None
    try:
        if not os.access(PUSHGATEWAY_BIN, os.X_OK):
            raise PeerError(f"no Pushgateway at {PUSHGATEWAY_BIN}: run scripts/install-deps.sh (Debian package "
                            "prometheus-pushgateway)")
        port = free_port()
        # --persistence.file= (empty): Debian's build defaults to /var/lib/prometheus/pushgateway.data,
        # shared by every Pushgateway on the machine, so another test's groups would load here.
        pushgateway = ManagedProcess("pushgateway", [PUSHGATEWAY_BIN, f"--web.listen-address=127.0.0.1:{port}",
                                                     "--persistence.file="],
                                     directory / "pushgateway.log", lifetime=900)
        pushgateway_url = f"http://127.0.0.1:{port}"
        wait_for("the Pushgateway answering", lambda: http_ok(pushgateway_url + "/-/ready"), 20, log=pushgateway.log_text)
        overrides = {"cluster_id": "logs", "pushgateway": {"url": pushgateway_url}}
        with Sandbox("logs", scenario(), KSCALER_CONFIG, directory / "sandbox", binary, Timings(interval=3, run_timeout=10),
                     config_overrides=overrides, printer=lambda *_: None) as sandbox:
            (directory / "dashboard").mkdir()
            dashboard_prometheus = Prometheus(directory / "dashboard", prometheus_config(sandbox.cluster.port, port))
            runs = Runs(prometheus_url=dashboard_prometheus.url, pushgateway_url=pushgateway_url,
                        cluster_id=sandbox.cluster_id, started=time.time(), config_path=directory / "nothing.yaml",
                        binary=Path(binary))
            base = yaml.safe_load((sandbox.out_dir / "kscaler.yaml").read_text())
            environment = {**kscaler_environment(sandbox.moto), "KSCALER_LOG_FORMAT": "json"}

            def run(kind, environment=environment, **changes):
                config = merge(base, changes)
                path = directory / f"{kind}.yaml"
                path.write_text(yaml.safe_dump(config, sort_keys=False))
                pushed = last_push(dashboard_prometheus.url)
                done = subprocess.run([str(binary), "run", "--config", str(path), "--output", "json", "--timeout", "10"],
                                      env=environment, capture_output=True, text=True, timeout=40)
                try:
                    report = json.loads(done.stdout)
                except ValueError:
                    report = None
                runs.runs[kind] = RunOutput(kind, done.returncode, report, done.stderr)
                if report and report.get("outcome") != "skipped":
                    # Each push seen by the dashboard's Prometheus before the next replaces it.
                    wait_for(f"the {kind} run's push scraped", lambda: last_push(dashboard_prometheus.url) != pushed, 20)
                # Kept beside the configs for a failing test's reader.
                (directory / f"{kind}.stdout").write_text(done.stdout)
                (directory / f"{kind}.stderr").write_text(done.stderr)
                return runs.runs[kind]

            run("nothing")
            # The same quiet run with the binary's default format, as the deployment files ran it
            # before: what the metric filters saw.
            run("plain_default", environment=kscaler_environment(sandbox.moto))
            # The burst: the simulated cluster's demand jumps to its second phase.
            sandbox.cluster.start_scenario(time.time() - QUIET)
            wait_for("pending pods in kscaler's view", lambda: pending_pods(sandbox, base) > 0, 30)
            run("at_max", nodes={"max": 1})
            # The same need, with credentials that may do everything but launch: the launch fails.
            run("action_failed", environment={**environment, **denied_launch(MotoAccount(sandbox.moto.endpoint, sandbox.moto.credentials))})
            run("acted")
            run("failed", prometheus={"url": f"http://127.0.0.1:{free_port()}"})
            hold_lease(MotoAccount(sandbox.moto.endpoint, sandbox.moto.credentials), base["table"], sandbox.cluster_id)
            run("skipped")
            yield runs
    finally:
        for part in (dashboard_prometheus, pushgateway):
            if part is not None:
                part.stop()


def merge(base, changes):
    out = json.loads(json.dumps(base))
    for key, value in changes.items():
        if isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}
        else:
            out[key] = value
    return out


def pending_pods(sandbox, base):
    """Unschedulable pods as `kscaler plan` reads them from Prometheus."""
    _, report, _ = sandbox.command.evaluate("plan")
    reading = ((report or {}).get("observation") or {}).get("readings", {}).get("unschedulable_pods", {})
    return reading.get("value") or 0 if reading.get("status") == "value" else 0


def denied_launch(account):
    """AWS credentials of a new moto IAM user allowed everything but ec2:RunInstances."""
    iam = account.client("iam")
    iam.create_user(UserName="no-launch")
    iam.put_user_policy(UserName="no-launch", PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="no-launch")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def hold_lease(account, table, cluster_id):
    """Another owner's unexpired lease on the state item, as a run elsewhere holds it."""
    now = int(time.time())
    account.client("dynamodb").update_item(
        TableName=table, Key={"cluster_id": {"S": cluster_id}, "record": {"S": "state"}},
        UpdateExpression="SET #o = :o, #e = :e, #a = :a, #t = if_not_exists(#t, :zero) + :one",
        ExpressionAttributeNames={"#o": "lease_owner", "#e": "lease_expires_at", "#a": "lease_acquired_at", "#t": "lease_token"},
        ExpressionAttributeValues={":o": {"S": "other-host/4242"}, ":e": {"N": str(now + 15)}, ":a": {"N": str(now)},
                                   ":zero": {"N": "0"}, ":one": {"N": "1"}})


def prometheus_config(exporter_port, pushgateway_port):
    """The cluster's kube-state-metrics (the sandbox's exporter) and the Pushgateway, as a
    monitoring stack scrapes them; honor_labels keeps the pushed `job` and `cluster` labels."""
    return f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: kube-state-metrics
    http_sd_configs: [{{url: 'http://127.0.0.1:{exporter_port}/sd', refresh_interval: 1s}}]
  - job_name: pushgateway
    honor_labels: true
    static_configs: [{{targets: ['127.0.0.1:{pushgateway_port}']}}]
"""


def query(prometheus_url, expression):
    """An instant query through the HTTP API: (status, body)."""
    import urllib.error
    import urllib.parse
    import urllib.request
    data = urllib.parse.urlencode({"query": expression}).encode()
    try:
        with urllib.request.urlopen(prometheus_url + "/api/v1/query", data=data, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def last_push(prometheus_url):
    """The pushed timestamp the dashboard's Prometheus last scraped (None before any)."""
    status, body = query(prometheus_url, "max(kscaler_last_run_timestamp_seconds)")
    result = body.get("data", {}).get("result") if status == 200 else None
    return result[0]["value"][1] if result else None


def scraped(prometheus_url, expression):
    status, body = query(prometheus_url, expression)
    return status == 200 and bool(body.get("data", {}).get("result"))
