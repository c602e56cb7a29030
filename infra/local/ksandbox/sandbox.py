"""One sandbox: moto (signature checking on, table and parameters created), the simulated
cluster, a real Prometheus scraping it, and kscaler run on a schedule against them — all on
127.0.0.1, all stopped on exit (also on Ctrl-C: use it as a context manager)."""
import copy
import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from . import kubeapi
from .aws import MotoAccount
from .cluster import SimulatedCluster
from .driver import KscalerCommand, RunLoop, describe, describe_cluster
from .peers import REGION, Moto, PeerError, Prometheus
from .placement import node_templates
from .proxmox_machines import WORKERS as PROXMOX_WORKERS, ProxmoxMachines, ProxmoxStandIn
from .scenario import parse_duration

INFRA_LOCAL = Path(__file__).resolve().parents[1]
IMAGE_ID = "ami-760aaa0f"


class Aborted(Exception):
    """The sandbox was asked to stop (Ctrl-C, SIGTERM) before it finished."""


def deep_merge(base, overrides):
    merged = copy.deepcopy(base)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class Timings:
    """The sandbox's clock: how often kscaler runs and how long one run may take. kscaler's
    own periods (cooldowns, windows, boot grace…) live in its config; the lease ttl there
    must exceed `run_timeout`."""
    interval: float = 3.0
    run_timeout: int = 10


@dataclass
class Result:
    """Everything one sandbox run observed; times are seconds since the scenario started."""
    name: str
    label: str
    config: dict
    scenario_name: str
    phases: list
    interval: float
    boot_delay: float
    samples: list
    instances: list
    runs: list
    cluster_errors: list
    # Pods evicted or deleted through the API (t: seconds since the scenario started).
    evictions: list = None
    # When the scenario stopped (seconds since it started): its end, or earlier with `until`.
    ended: float = None

    def save(self, path):
        Path(path).write_text(json.dumps(asdict(self), indent=1))


class Sandbox:
    def __init__(self, name, scenario, config_template, out_dir, kscaler_bin, timings=Timings(), loops=1,
                 config_overrides=None, printer=print, label=None, abort=None, on_run=None, backend="ec2"):
        self.name = name
        # Where kscaler's machines live: "ec2" (moto) or "proxmox" (the stand-in API; the lease
        # and state stay in moto's DynamoDB). Proxmox: the workers section only, no pools.
        if backend not in ("ec2", "proxmox"):
            raise ValueError(f"unknown sandbox backend {backend!r}: ec2 or proxmox")
        self.backend = backend
        self.label = label or name
        self.scenario = scenario
        self.out_dir = Path(out_dir)
        self.kscaler_bin = Path(kscaler_bin)
        self.timings = timings
        self.loop_count = loops
        self.printer = printer
        # Given, it receives each run as (loop name, run record) instead of the run's lines
        # being printed (the demo's side-by-side view, ksandbox/live.py).
        self.on_run = on_run
        self.abort = abort or threading.Event()
        template = yaml.safe_load(Path(config_template).read_text())
        self.config = deep_merge(template, config_overrides)
        if backend == "proxmox":
            if self.config.get("pools"):
                raise ValueError("the Proxmox sandbox runs the workers section only, not pools")
            # Its machine types are Proxmox sizes: they replace the EC2 types and sizes whole.
            self.config.setdefault("workers", {}).update(copy.deepcopy(PROXMOX_WORKERS))
        self.cluster_id = self.config.setdefault("cluster_id", f"sandbox-{name}")
        # Each pool's node template (its labels, taints, min): the pools', or the workers' one.
        self.templates = node_templates(self.config)
        self.min_nodes = sum(t.min for t in self.templates)
        self.cluster = self.prometheus = self.moto = self.kube_api = self.proxmox = None
        self.started_at = self.ended_at = None
        self.loops = []

    # MARK: start

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def _check_abort(self):
        if self.abort.is_set():
            raise Aborted(f"sandbox {self.name} stopped before it finished")

    def start(self):
        if not (self.kscaler_bin.is_file() and os.access(self.kscaler_bin, os.X_OK)):
            raise PeerError(f"no kscaler binary at {self.kscaler_bin}: build it (swift build, or swift build -c release) "
                            "or point KSTEST_BINARY at it")
        shutil.rmtree(self.out_dir, ignore_errors=True)
        self.out_dir.mkdir(parents=True)
        lifetime = self.scenario.duration + 300
        self.moto = Moto(self.out_dir, lifetime=lifetime)
        self._check_abort()
        account = MotoAccount(self.moto.endpoint, self.moto.credentials)
        table = self.config.setdefault("table", "kscaler-sandbox")
        account.create_table(table)
        machines = None
        if self.backend == "proxmox":
            self.proxmox = ProxmoxStandIn(self.out_dir, lifetime=lifetime)
            machines = ProxmoxMachines(self.proxmox, self.cluster_id)
            self.config["fleet"] = machines.fleet_config()
        else:
            account.put_join_parameters(self.cluster_id, "https://172.31.0.10:6443")
            subnets, security_group = account.default_network()
        self._check_abort()
        # The cluster's API (the stand-in API server on the simulation's own nodes and pods),
        # reached with a kubeconfig as kscaler on a laptop would.
        kube_state = kubeapi.KubeState()
        self.cluster = SimulatedCluster(self.scenario, account, self.cluster_id, self.min_nodes, kube_state=kube_state,
                                        templates=self.templates, machines=machines)
        self.kube_api, announced = kubeapi.start(str(self.out_dir / "kubeapi"), kube_state)
        self.config.setdefault("kubernetes", {}).setdefault("kubeconfig", announced["kubeconfig_token"])
        self.prometheus = Prometheus(self.out_dir, prometheus_config(self.cluster.port), lifetime=lifetime)
        self.config.update(region=REGION)
        self.config.setdefault("prometheus", {})["url"] = self.prometheus.url
        # Where kscaler launches: the workers', or each pool's.
        groups = list(self.config["pools"].values()) if self.config.get("pools") else [self.config.setdefault("workers", {})]
        for group in groups if self.backend == "ec2" else ():
            group.setdefault("image_id", IMAGE_ID)
            group.setdefault("subnets", subnets)
            group.setdefault("security_groups", [security_group])
        config_path = self.out_dir / "kscaler.yaml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.command = KscalerCommand(self.kscaler_bin, config_path, kscaler_environment(self.moto), self.timings.run_timeout)
        check = self.command.run("config", "check", deadline=30)
        if check.returncode != 0:
            raise PeerError(f"kscaler rejected the sandbox config {config_path} (exit {check.returncode}):\n{check.stdout}{check.stderr}")

        # A cluster is never created empty: each pool's minimum of workers exist, booted, from the
        # start (a Spot pool's as Spot instances).
        initial = set()
        for template, group in zip(self.templates, self._launch_settings()):
            if self.proxmox is not None:
                initial.update(self.proxmox.seed_workers(self.cluster_id, template.pool, template.min))
                continue
            initial.update(account.launch_initial_workers(
                self.cluster_id, template.pool, template.min, group["image_id"], group["instance_types"][0],
                group["subnets"][0], spot=template.capacity_type == "spot"))
        self.cluster.initial = initial
        self.cluster.start()
        self._warm_up()

    def _launch_settings(self):
        """The workers section, or each pool's, in the templates' order."""
        pools = self.config.get("pools")
        return [pools[t.pool] for t in self.templates] if pools else [self.config["workers"]]

    def _warm_up(self):
        """Waits until `kscaler plan` has every signal it needs: the stabilization window's
        history must be full before kscaler acts at all (it refuses to on partial data)."""
        window = parse_duration(self.config.get("scale_down", {}).get("stabilization_window", "10m"), "scale_down.stabilization_window")
        deadline = time.time() + window + 60
        last = "no plan yet"
        while time.time() < deadline:
            self._check_abort()
            code, report, stderr = self.command.evaluate("plan")
            if report and report.get("decision") and report["decision"].get("halt") != "missing_signals" and code == 0:
                return
            reasons = [r["message"] for r in ((report or {}).get("decision") or {}).get("reasons", [])]
            last = "; ".join(reasons + (report or {}).get("errors", [])) or stderr.strip() or f"exit {code}"
            self.abort.wait(1)
        raise PeerError(f"sandbox {self.name}: kscaler plan still lacked signals {window + 60:.0f}s after start: {last}")

    # MARK: run

    def run_scenario(self, first_run_offsets=None, until=None, settle=0.0):
        """Plays the scenario once with `loops` concurrent kscaler loops; returns the Result.
        `until(sample)`: the scenario stops `settle` seconds after the first sample (of the
        scenario, not the warm-up) for which it is true, or at its end if none is."""
        self._check_abort()
        self.started_at = time.time()
        self.cluster.start_scenario(self.started_at)
        stop = threading.Event()
        offsets = first_run_offsets or [0.0] * self.loop_count
        names = [self.label] if self.loop_count == 1 else [f"{self.label}-{chr(ord('a') + i)}" for i in range(self.loop_count)]
        print_lock = threading.Lock()

        def on_run(run):
            if self.on_run is not None:
                self.on_run(run.loop, run_record(run, self.started_at))
                return
            record = self.cluster.record
            sample = record.samples[-1] if record.samples else None
            with print_lock:
                self.printer(verbose_lines(run, self.started_at, sample, len(record.evictions)))

        self.loops = [RunLoop(name, self.command, self.timings.interval, stop, on_run, self.started_at + offset)
                      for name, offset in zip(names, offsets)]
        for loop in self.loops:
            loop.start()
        try:
            deadline, met = self.started_at + self.scenario.duration, False
            while (remaining := deadline - time.time()) > 0:
                if self.abort.wait(min(0.25, remaining)):
                    raise Aborted(f"sandbox {self.name} stopped before it finished")
                samples = self.cluster.record.samples
                if until is not None and not met and samples and samples[-1].at >= self.started_at and until(samples[-1]):
                    met, deadline = True, min(deadline, time.time() + settle)
            self.ended_at = time.time()
        finally:
            stop.set()
            for loop in self.loops:
                loop.join(timeout=self.timings.run_timeout + 20)
        return self.result()

    def result(self):
        t0 = self.started_at
        runs = sorted((run for loop in self.loops for run in loop.runs), key=lambda r: r.started)
        record = self.cluster.record
        return Result(
            name=self.name, label=self.label, config=self.config, scenario_name=self.scenario.name,
            phases=[{"name": p.name, "start": p.start, "end": p.end} for p in self.scenario.phases],
            interval=self.timings.interval, boot_delay=self.scenario.boot_delay,
            samples=[dict(asdict(s), t=round(s.at - t0, 3)) for s in list(record.samples)],
            instances=[dict(asdict(i), seen_at=i.seen_at - t0, ready_at=i.ready_at and i.ready_at - t0,
                            gone_at=i.gone_at and i.gone_at - t0,
                            node_deleted_at=i.node_deleted_at and i.node_deleted_at - t0) for i in list(record.instances.values())],
            runs=[run_record(r, t0) for r in runs],
            cluster_errors=list(record.errors),
            evictions=[dict(e, t=round(e["at"] - t0, 3)) for e in list(record.evictions)],
            ended=round(self.ended_at - t0, 3))

    # MARK: stop

    def stop(self):
        for part in (self.cluster, self.kube_api, self.prometheus, self.proxmox, self.moto):
            if part is not None:
                try:
                    part.stop()
                except Exception as error:  # stop the rest whatever happens
                    self.printer(f"sandbox {self.name}: stopping {type(part).__name__} failed: {error}")
        self.cluster = self.kube_api = self.prometheus = self.proxmox = self.moto = None


def run_record(run, t0):
    """A run as the Result keeps it: the driver's fields plus its start and end in seconds
    since the scenario started (`t0`)."""
    return dict(asdict(run), t=run.started - t0, t_end=run.finished - t0)


def verbose_lines(run, t0, sample, evictions):
    """The full stream's text for one run (`--verbose`): its decision, action and first reason,
    then the cluster's drains and budgets as `sample` shows them, when there are any."""
    state = describe_cluster(sample, evictions)
    return describe(run, t0, run.loop) + (f"\n{state}" if state else "")


def prometheus_config(exporter_port):
    return f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: simulated-cluster
    http_sd_configs: [{{url: 'http://127.0.0.1:{exporter_port}/sd', refresh_interval: 1s}}]
"""


def kscaler_environment(moto):
    """Only what kscaler needs: the AWS settings, the SDK way (no KSCALER_* leaking in)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ACCESS_KEY_ID": moto.credentials.access_key_id,
        "AWS_SECRET_ACCESS_KEY": moto.credentials.secret_access_key,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }

