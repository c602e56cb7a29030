"""kscaler's benchmark (issue 8): figures and PASS/MISS against the targets. Run by `make bench`
(benchmarks/bench.sh builds the release binaries first); the method of every figure is in
BENCHMARKS.md.

Stands up everything it needs on 127.0.0.1 and stops it again, with the sandbox's peers
(infra/local/ksandbox): a moto server with SigV4 checking on (serving one request at a time, as
the test peer does), a lease table and a fleet of workers in it, a static simulated cluster
(ksandbox/exporter.py, served from this process) scraped by a real Prometheus, and a kscaler
config. Every child runs under `timeout`, so nothing outlives a killed benchmark by more than
five minutes.

Usage: python bench.py --bin .build/release [--runs 15] [--workers 10] [--results FILE]
Needs the Python of the moto venv (boto3 sets up the table and the fleet).
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "infra/local"))

from ksandbox import exporter as simulated  # noqa: E402
from ksandbox.aws import MotoAccount, managed_instances  # noqa: E402
from ksandbox.peers import Moto, Prometheus  # noqa: E402
from ksandbox.sandbox import prometheus_config  # noqa: E402

REGION = "us-east-1"
CLUSTER = "bench"
GIB = 1 << 30
CHILD_LIFETIME = 300  # seconds: the hard stop for every server this script starts
RSS_RUNS = 5  # runs per scenario under /usr/bin/time, for peak RSS


# ---------------------------------------------------------------- small helpers

def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def spread(values, unit="", digits=1):
    """`median (p10–p90)` of a list, for the table."""
    f = lambda v: f"{v:.{digits}f}"
    return f"{f(statistics.median(values))}{unit} ({f(percentile(values, 10))}–{f(percentile(values, 90))})"


def wait_for(what, check, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # the peer is still starting
            last = error
        time.sleep(interval)
    raise RuntimeError(f"{what} within {timeout:.0f} s (last error: {last})")


# ---------------------------------------------------------------- the simulated cluster

def cluster_description(workers, pending):
    """Each worker (2 CPU, 8 GiB) holds 10 pods of 0.1 CPU and 400 MiB: 50 % used, between the
    30 % scale-down and 70 % scale-up thresholds, so with no pending pod a run decides nothing."""
    return {"workers": [{"id": w, "pods": [{"cpu": 0.1, "memory": 400 << 20}] * 10} for w in workers],
            "pending": [{"cpu": 1.5, "memory": GIB} for _ in range(pending)]}


def prometheus_value(url, query):
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": query})) as answer:
        result = json.load(answer)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


# ---------------------------------------------------------------- measurements

def curl_round_trips(count, url, extra):
    """Median time of one request, from curl's own clock (%{time_total}: connect to last byte,
    no process start-up), over `count` sequential calls."""
    times = []
    for _ in range(count):
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"] + extra + [url],
                             capture_output=True, text=True, check=True).stdout.split()
        if out[0] != "200":
            raise RuntimeError(f"round-trip probe to {url} answered HTTP {out[0]}")
        times.append(float(out[1]) * 1000)
    return times


def run_kscaler(binary, arguments, env, rss_file=None):
    """One kscaler process and its run_finished log record.

    Without `rss_file`: wall time (perf_counter from spawn to reap) and user+system CPU from
    the kernel's rusage of the reaped process (µs resolution). With it, kscaler runs under
    `/usr/bin/time -f %M` and only its peak RSS is taken: the rusage of a process forked
    from this Python would count Python's own pages, and the wrapper's own millisecond
    would blur the times."""
    command = [binary] + arguments
    if rss_file:
        command = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + command
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = (time.perf_counter() - start) * 1000
    process.returncode = os.waitstatus_to_exitcode(status)
    finished = None
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("{") and '"run_finished"' in line:
            finished = json.loads(line)
    if finished is None:
        raise RuntimeError(f"kscaler {' '.join(arguments)} exited {process.returncode} without a run_finished line:\n{stderr.decode()[-2000:]}")
    if rss_file:
        return {"rss_mb": int(Path(rss_file).read_text().split()[-1]) / 1024, "finished": finished}
    return {"wall_ms": wall, "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000, "finished": finished}


def spawn_timed(command, env):
    """Wall (spawn to reap) and user+system CPU (the reaped child's rusage) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command[0]} exited {os.waitstatus_to_exitcode(status)}: {stderr.decode(errors='replace')[-1000:]}")
    return {"wall_ms": (time.perf_counter() - start) * 1000, "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000}


def peak_rss_mb(command, env, work):
    """Peak RSS of one process, from `/usr/bin/time -f %M` (MB)."""
    out = work / "time.out"
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(out)] + command, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return int(out.read_text().split()[-1]) / 1024


def peak_pss_mb(command, env):
    """Largest proportional set size seen while the process runs (MB): `/proc/PID/smaps_rollup`
    read as fast as Python can, so a short peak between two reads may be missed (it leans low)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    peak = 0
    while process.poll() is None:
        try:
            text = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            break
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        if match:
            peak = max(peak, int(match.group(1)))
    process.wait()
    return peak / 1024


def first_request_ms(env_with_endpoint):
    """Exec to first request: the time from spawning a process (`env_with_endpoint(port)` gives its
    command and environment) to the first connection accepted
    on a listener it was pointed at (CLOCK_MONOTONIC on both sides). Includes Python's own
    fork/exec, which the floor program's figure, measured the same way, shows."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(10)
    port = listener.getsockname()[1]
    full_command, env = env_with_endpoint(port)
    start = time.monotonic()
    process = subprocess.Popen(full_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        connection, _ = listener.accept()
        elapsed = (time.monotonic() - start) * 1000
        connection.close()
    finally:
        process.kill()
        process.wait()
        listener.close()
    return elapsed


def lambda_cold_start(binary, env):
    """`kscaler lambda` from exec to its first invocation's answer, against a minimal stand-in of
    the Lambda Runtime API (Tests/TestSupport/LambdaRuntimeStandIn.swift is the tested one):
    init = spawn → first GET /next; invocation = event handed out → response posted; the
    invocation's own run (lease to release, `duration_ms` of its run_finished line) is network
    time, so cold start = init + invocation − run."""
    marks = {}
    done = threading.Event()

    class RuntimeAPI(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if "next" in marks:  # the second `next`: hold it until the benchmark stops the process
                done.wait(10)
                return
            marks["next"] = time.monotonic()
            body = b"{}"
            self.send_response(200)
            for name, value in (("Lambda-Runtime-Aws-Request-Id", "bench-1"), ("Content-Length", str(len(body))),
                                ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60_000))):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            marks["handed"] = time.monotonic()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            marks["answered"] = time.monotonic()
            marks["path"] = self.path
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            done.set()

    server = ThreadingHTTPServer(("127.0.0.1", 0), RuntimeAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lambda_env = {**env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}", "KSCALER_LOG_FORMAT": "json"}
    start = time.monotonic()
    process = subprocess.Popen([binary], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=lambda_env)
    try:
        if not done.wait(30):
            raise RuntimeError("kscaler lambda did not answer its first invocation within 30 s")
    finally:
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=30)[1].decode(errors="replace")
        server.shutdown()
    if not marks["path"].endswith("/response"):
        raise RuntimeError(f"the first invocation was answered with {marks['path']}:\n{stderr[-2000:]}")
    run = next(json.loads(line)["duration_ms"] for line in stderr.splitlines() if '"run_finished"' in line)
    init = (marks["next"] - start) * 1000
    invocation = (marks["answered"] - marks["handed"]) * 1000
    return {"init_ms": init, "invocation_ms": invocation, "run_ms": run, "cold_ms": init + invocation - run}


def build_floor(work):
    """benchmarks/floor.c, linked statically: the minimal process of the floor."""
    compiler = shutil.which("cc") or shutil.which("clang")
    if not compiler:
        raise RuntimeError("no C compiler (cc or clang) to build the floor program")
    binary = work / "floor"
    subprocess.run([compiler, "-O2", "-static", "-o", str(binary), str(REPO / "benchmarks/floor.c")], check=True)
    return str(binary)


def signed_request(endpoint, key, secret, service, headers, body, path):
    """One complete HTTP/1.1 request, signed with botocore's SigV4 (the reference signer), as a
    file for the floor program. `Connection: close` is added after signing (it is not signed)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    request = AWSRequest(method="POST", url=endpoint + "/", data=body.encode(), headers=headers)
    SigV4Auth(Credentials(key, secret), service, REGION).add_auth(request)
    host = urllib.parse.urlsplit(endpoint).netloc
    lines = [f"POST / HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    lines += [f"Content-Length: {len(body.encode())}", "Connection: close"]
    path.write_bytes(("\r\n".join(lines) + "\r\n\r\n").encode() + body.encode())
    return str(path)


def icu_in_binary(binary):
    """Whether ICU's data or Foundation's ICU layer is linked in (symbols of the unstripped binary)."""
    symbols = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True).stdout
    return sorted({name for name in ("icudt", "FoundationInternationalization", "_FoundationICU") if name in symbols})


def summarize_runs(name, runs, rss_runs):
    finished = [r["finished"] for r in runs + rss_runs]
    return {
        "name": name, "runs": len(runs), "rss_runs": len(rss_runs),
        "wall_ms": [r["wall_ms"] for r in runs], "cpu_ms": [r["cpu_ms"] for r in runs], "rss_mb": [r["rss_mb"] for r in rss_runs],
        "duration_ms": [f["duration_ms"] for f in finished],
        "http_requests": sorted({f["http_requests"] for f in finished}),
        "http_round_trips": sorted({f["http_round_trips"] for f in finished}),
        "http_max_in_flight": sorted({f["http_max_in_flight"] for f in finished}),
        "outcomes": sorted({f["outcome"] for f in finished}),
    }


def version_start(binary):
    """`kscaler --version`, process start to exit, with hyperfine (no shell, 200 runs)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        subprocess.run(["hyperfine", "-N", "--warmup", "20", "--runs", "200", "--export-json", export.name,
                        f"{binary} --version"], check=True, capture_output=True)
        times = [t * 1000 for t in json.load(open(export.name))["results"][0]["times"]]
    return times


def binary_size(directory, work):
    """The release binary as built and stripped, and the shared libraries it loads."""
    path = Path(directory) / "kscaler"
    stripped = work / "kscaler.stripped"
    shutil.copy(path, stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]",
                        subprocess.run(["readelf", "-d", str(stripped)], capture_output=True, text=True).stdout)
    loaded = re.findall(r"^\s*\S+ => ", subprocess.run(["ldd", str(stripped)], capture_output=True, text=True).stdout, re.M)
    return {"unstripped": path.stat().st_size, "stripped": stripped.stat().st_size, "stripped_path": str(stripped),
            "needed": needed, "loaded_libraries": len(loaded)}


def image_estimate(stripped):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks/image_estimate.py"), str(stripped)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def machine():
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": re.search(r"model name\s*: (.*)", cpuinfo).group(1),
        "memory_gib": round(int(re.search(r"MemTotal:\s*(\d+)", meminfo).group(1)) / 2**20, 1),
        "kernel": platform.release(),
        "swift": next((l for l in swift if "Swift version" in l), "?"),
        "load_average_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------- the benchmark

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", required=True, help="the release build's bin directory")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--results", help="also write every figure as JSON here")
    args = parser.parse_args()
    binary = str(Path(args.bin) / "kscaler")

    # SIGTERM stops the benchmark the way Ctrl-C does: through `finally`, which stops the peers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {"machine": machine()}
    directory = Path(tempfile.mkdtemp(prefix="kscaler-bench-"))
    peers = []  # stopped in reverse order, once the benchmark is done with them

    def stop_peers():
        while peers:
            peers.pop().stop()

    try:
        print(f"bench: peers on 127.0.0.1 (state in {directory})", file=sys.stderr)
        moto = Moto(directory, lifetime=CHILD_LIFETIME, users={"kscaler-bench": "*"})
        peers.append(moto)
        endpoint, key, secret = moto.endpoint, moto.credentials.access_key_id, moto.credentials.secret_access_key
        account = MotoAccount(endpoint, moto.credentials)
        ec2 = account.client("ec2")
        table = "kscaler-bench"
        account.create_table(table)
        subnet = account.default_network()[0][0]
        workers = account.launch_initial_workers(CLUSTER, "default", args.workers, "ami-760aaa0f", "t3.large", subnet)

        cluster = {"description": cluster_description(workers, pending=0)}
        exporter = simulated.Exporter(lambda: simulated.described(cluster["description"])).start()
        peers.append(exporter)
        prometheus = Prometheus(directory, prometheus_config(exporter.port), lifetime=CHILD_LIFETIME)
        peers.append(prometheus)
        prometheus = prometheus.url

        config = directory / "config.yaml"
        config.write_text(f"""\
cluster_id: {CLUSTER}
table: {table}
region: {REGION}
prometheus: {{url: "{prometheus}", staleness: 1m, timeout: 8s}}
nodes: {{min: 1, max: 50}}
scale_up: {{cooldown: 1s}}
scale_down: {{cooldown: 1s, delay_after_scale_up: 1s, stabilization_window: 3s}}
boot_grace: 1s
lease: {{ttl: 2m, safety_margin: 1s}}
workers:
  image_id: ami-760aaa0f
  instance_types: [t3.large]
  subnets: [{subnet}]
  sizes: {{t3.large: {{cpu: 2, memory: 8Gi}}}}
""")
        env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent-kscaler-bench-home", "AWS_ACCESS_KEY_ID": key,
               "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
        run_args = ["run", "--config", str(config), "--log-format", "json"]
        kscaler = lambda rss=False: run_kscaler(binary, run_args, env, directory / "time.out" if rss else None)

        # A full stabilization window (3 s) of the steady cluster, then a run that decides nothing.
        wait_for("Prometheus did not gather a stabilization window",
                 lambda: (prometheus_value(prometheus, "count_over_time(count(kube_node_info)[4s:1s])") or 0) >= 4, timeout=30, interval=0.25)
        wait_for("the steady cluster did not give a no-op run",
                 lambda: kscaler()["finished"]["outcome"] == "nothing", timeout=20, interval=0.5)

        # Round-trip time of one request to each peer, as the run sends them.
        ddb_body = json.dumps({"TableName": table, "Key": {"cluster_id": {"S": CLUSTER}, "record": {"S": "state"}}})
        ec2_body = ("Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Akscaler%3Acluster&Filter.1.Value.1=" + CLUSTER
                    + "&Filter.2.Name=instance-state-name&Filter.2.Value.1=pending&Filter.2.Value.2=running&MaxResults=1000")
        node_ready = ('max by (node, provider_id) (kube_node_status_condition{condition="Ready",status="true"} '
                      '* on(node) group_left(provider_id) max by (node, provider_id) (kube_node_info))')
        sigv4 = lambda service: ["--aws-sigv4", f"aws:amz:{REGION}:{service}", "--user", f"{key}:{secret}"]
        results["rtt_ms"] = {
            "moto_dynamodb_getitem": curl_round_trips(30, endpoint + "/", sigv4("dynamodb") + [
                "-H", "Content-Type: application/x-amz-json-1.0", "-H", "X-Amz-Target: DynamoDB_20120810.GetItem", "--data", ddb_body]),
            "moto_ec2_describe": curl_round_trips(30, endpoint + "/", sigv4("ec2") + [
                "-H", "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "--data", ec2_body]),
            "prometheus_query": curl_round_trips(30, f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": node_ready}), []),
        }

        print(f"bench: {args.runs} no-op runs", file=sys.stderr)
        noop = [kscaler() for _ in range(args.runs)]
        results["noop"] = summarize_runs("no-op run", noop, [kscaler(rss=True) for _ in range(RSS_RUNS)])
        results["noop"]["pss_mb"] = [peak_pss_mb([binary] + run_args, env) for _ in range(RSS_RUNS)]

        # The physical floor: a minimal static process making the no-op run's three sequential
        # round trips (DynamoDB, EC2 — the slower of the observe step's two peers —, DynamoDB).
        print(f"bench: {args.runs} floor runs, exec → first request, the Python/boto3 reference", file=sys.stderr)
        floor = build_floor(directory)
        port = urllib.parse.urlsplit(endpoint).port
        ddb_headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.GetItem"}
        ec2_headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        requests = [signed_request(endpoint, key, secret, "dynamodb", ddb_headers, ddb_body, directory / "r1"),
                    signed_request(endpoint, key, secret, "ec2", ec2_headers, ec2_body, directory / "r2"),
                    signed_request(endpoint, key, secret, "dynamodb", ddb_headers, ddb_body, directory / "r3")]
        results["floor"] = [spawn_timed([floor, str(port)] + requests, env) for _ in range(args.runs)]
        results["floor_rss_mb"] = [peak_rss_mb([floor, str(port)] + requests, env, directory) for _ in range(RSS_RUNS)]
        with_listener = lambda command: lambda port: (command(port), {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
        results["first_request_ms"] = [first_request_ms(with_listener(lambda _: [binary] + run_args)) for _ in range(args.runs)]
        results["floor_first_request_ms"] = [first_request_ms(with_listener(lambda port: [floor, str(port), requests[0]]))
                                             for _ in range(args.runs)]
        results["lambda"] = [lambda_cold_start(binary, {**env, "KSCALER_CONFIG": str(config)}) for _ in range(RSS_RUNS)]
        reference = [sys.executable, str(REPO / "benchmarks/reference_autoscaler.py"), table, CLUSTER, prometheus]
        reference_env = {**env, "AWS_DEFAULT_REGION": REGION}
        results["reference"] = [spawn_timed(reference, reference_env) for _ in range(RSS_RUNS)]
        results["reference_rss_mb"] = [peak_rss_mb(reference, reference_env, directory) for _ in range(RSS_RUNS)]

        # Pending pods that need three more workers: every run launches, then the benchmark
        # terminates what it launched and waits out the 1 s scale-up cooldown.
        cluster["description"] = cluster_description(workers, pending=3)
        wait_for("Prometheus did not see the pending pods",
                 lambda: (prometheus_value(prometheus, "sum(kube_pod_status_unschedulable)") or 0) >= 3, timeout=20, interval=0.25)
        print(f"bench: {args.runs} launching runs", file=sys.stderr)
        launches = []
        for number in range(args.runs + RSS_RUNS):
            launch = kscaler(rss=number >= args.runs)
            if launch["finished"]["outcome"] != "acted":
                raise RuntimeError(f"a launching run ended {launch['finished']['outcome']}: {launch['finished']}")
            ended = time.monotonic()
            launched = {i.id for i in managed_instances(ec2, CLUSTER)} - set(workers)
            launch["launched"] = len(launched)
            launches.append(launch)
            if launched:
                ec2.terminate_instances(InstanceIds=sorted(launched))
            time.sleep(max(0.0, 1.1 - (time.monotonic() - ended)))
        results["launch"] = summarize_runs("launching run", launches[:args.runs], launches[args.runs:])
        results["launch"]["launched"] = sorted({launch["launched"] for launch in launches})
        stop_peers()  # the peers are not needed past here

        print("bench: kscaler --version (hyperfine)", file=sys.stderr)
        results["version_ms"] = version_start(binary)
        results["version_cpu_ms"] = [spawn_timed([binary, "--version"], env)["cpu_ms"] for _ in range(200)]
        print("bench: kscaler-bench (decide and parsers in process)", file=sys.stderr)
        out = subprocess.run([str(Path(args.bin) / "kscaler-bench"), "--json"], capture_output=True, text=True, check=True).stdout
        results["inprocess"] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        results["size"] = binary_size(args.bin, directory)
        results["size"]["icu"] = icu_in_binary(binary)
        results["image"] = image_estimate(results["size"]["stripped_path"])
        results["machine"]["load_average_at_end"] = os.getloadavg()
    finally:
        stop_peers()
        shutil.rmtree(directory, ignore_errors=True)

    report(results)
    if args.results:
        Path(args.results).write_text(json.dumps(results, indent=1))


# ---------------------------------------------------------------- the report

def report(r):
    m = r["machine"]
    print(f"\nkscaler benchmark — {m['nproc']} × {m['cpu']}, {m['memory_gib']} GiB, Linux {m['kernel']}, {m['swift']}")
    print(f"load average at start {m['load_average_at_start'][0]:.2f}, at end {m['load_average_at_end'][0]:.2f}"
          " (other work on the machine shows up as spread)")
    print("\nmedian (p10–p90) over repeated runs")
    rtt = {name: statistics.median(times) for name, times in r["rtt_ms"].items()}
    for name, times in r["rtt_ms"].items():
        print(f"  one request, {name.replace('_', ' '):28} {spread(times, ' ms', 2)}   [{len(times)} curl calls]")
    print(f"  kscaler --version, start to exit     {spread(r['version_ms'], ' ms', 2)}   [hyperfine, {len(r['version_ms'])} runs]")
    for key in ("noop", "launch"):
        s = r[key]
        launched = f", {'/'.join(map(str, s['launched']))} instances launched each" if "launched" in s else ""
        print(f"  {s['name']} [{s['runs']} runs, outcome {'/'.join(s['outcomes'])}{launched}]")
        print(f"    wall time                          {spread(s['wall_ms'], ' ms')}")
        print(f"      of which lease to release        {spread(s['duration_ms'], ' ms')}   [run_finished duration_ms]")
        print(f"    user+system CPU                    {spread(s['cpu_ms'], ' ms')}")
        print(f"    peak RSS                           {spread(s['rss_mb'], ' MB')}   [/usr/bin/time, {s['rss_runs']} more runs]")
        print(f"    HTTP requests / sequential / most in flight   {s['http_requests']} / {s['http_round_trips']} / {s['http_max_in_flight']}")
    print("\n  in process (kscaler-bench, µs per call; per item = median / items)")
    for b in r["inprocess"]:
        print(f"    {b['benchmark']:18} {b['variant']:10} {b['items']:>6} {b['item']:9} {b['median_us']:>10.1f} µs"
              f" ({b['p10_us']:.1f}–{b['p90_us']:.1f})  {b['per_item_ns']:>8.0f} ns/item  [{b['calls']} calls]")
    size = r["size"]
    image = r["image"]
    print(f"\n  kscaler binary (release, --static-swift-stdlib): {size['unstripped'] / 2**20:.1f} MB, stripped {size['stripped'] / 2**20:.1f} MB;"
          f" links {', '.join(size['needed'])} ({size['loaded_libraries']} shared libraries loaded in all, most of them libcurl's)")
    print(f"  container image: NOT MEASURED (Docker cannot run here). Estimate: debian:bookworm-slim"
          f" + {image['added_mb']:.1f} MB = {image['added_packages_mb']:.1f} MB of {len(image['added_packages_kib'])} Debian packages"
          f" (apt Installed-Size of what `apt-get install libcurl4 libyaml-0-2 ca-certificates` adds) + {image['binary_mb']:.1f} MB stripped binary;"
          f" the slim base's own packages sum to {image['slim_installed_size_mb']:.0f} MB Installed-Size (an upper bound: slim drops docs)")

    print("\ntargets")
    checks = []
    noop, launch = r["noop"], r["launch"]
    # The no-op run's sequential round trips are, in order (Evaluator.run): take the lease
    # (DynamoDB), observe (nine Prometheus queries beside one EC2 DescribeInstances), record
    # and release (DynamoDB). Each is as long as its slowest request, so the network part of
    # the critical path is 2 × RTT(DynamoDB) + max(RTT(EC2 DescribeInstances), RTT(Prometheus)).
    ddb, ec2, prom = rtt["moto_dynamodb_getitem"], rtt["moto_ec2_describe"], rtt["prometheus_query"]
    trips = noop["http_round_trips"]
    path = 2 * ddb + max(ec2, prom)
    budget = 1.2 * path + 20
    wall = statistics.median(noop["wall_ms"])
    checks.append((trips == [3] and wall <= budget,
                   f"no-op run wall {wall:.1f} ms ≤ 1.2 × (round trips {trips}: DynamoDB {ddb:.2f} + max(EC2 {ec2:.2f}, Prometheus {prom:.2f})"
                   f" + DynamoDB {ddb:.2f} = {path:.1f} ms) + 20 ms = {budget:.1f} ms"))
    in_flight = min(noop["http_max_in_flight"] + launch["http_max_in_flight"])
    checks.append((in_flight >= 9, f"Prometheus queries in parallel: most in flight {in_flight} ≥ 9 (every run)"))
    rss = max(noop["rss_mb"] + launch["rss_mb"])
    checks.append((rss < 30, f"peak RSS {rss:.1f} MB (largest of any run) < 30 MB"))
    version = statistics.median(r["version_ms"])
    checks.append((version < 20, f"kscaler --version {version:.2f} ms (median) < 20 ms"))
    decide = [b for b in r["inprocess"] if b["benchmark"] == "decide" and b["items"] == 1000]
    slow = max(b["median_us"] for b in decide) / 1000
    checks.append((slow < 5, f"decide on 1,000 nodes {slow:.2f} ms (slower of scale-up / scale-down, median) < 5 ms"))
    # Linear: the per-item cost (median) may grow at most 2× per tenfold step in size. A
    # quadratic cost would grow 10×; n log n about 1.3×. What growth there is comes from
    # memory (caches, page faults of fresh heap), as callgrind's flat instruction counts per
    # item show (BENCHMARKS.md).
    groups = {}
    for b in r["inprocess"]:
        groups.setdefault((b["benchmark"], b["variant"]), {})[b["items"]] = b["median_us"] * 1000 / b["items"]
    for (name, variant), per_item in groups.items():
        ratios = [per_item[10 * n] / per_item[n] for n in (100, 1000) if n in per_item and 10 * n in per_item]
        shown = " → ".join(f"{per_item[n]:.0f}" for n in sorted(per_item) if n >= 100)
        checks.append((all(x <= 2 for x in ratios), f"{name} {variant} linear: ns/item at 100 → 1,000 → 10,000 = {shown}"
                       f" (steps {', '.join(f'{x:.2f}×' for x in ratios)}; each ≤ 2×)"))
    for ok, text in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")

    print("\nlean targets (issue 18), beside a minimal static process and the Python/boto3 reference")
    floor_wall = statistics.median(f["wall_ms"] for f in r["floor"])
    reference_rss = statistics.median(r["reference_rss_mb"])
    print(f"  floor (static C, the same 3 sequential requests): wall {spread([f['wall_ms'] for f in r['floor']], ' ms')},"
          f" CPU {spread([f['cpu_ms'] for f in r['floor']], ' ms', 2)}, peak RSS {spread(r['floor_rss_mb'], ' MB')}")
    print(f"  reference (Python/boto3 classic autoscaler, no-op): wall {spread([f['wall_ms'] for f in r['reference']], ' ms')},"
          f" CPU {spread([f['cpu_ms'] for f in r['reference']], ' ms')}, peak RSS {spread(r['reference_rss_mb'], ' MB')}")
    print(f"  kscaler no-op run: wall {spread(noop['wall_ms'], ' ms')}, CPU {spread(noop['cpu_ms'], ' ms')},"
          f" peak RSS {spread(noop['rss_mb'], ' MB')}, peak PSS {spread(noop['pss_mb'], ' MB')}")
    print(f"  → against the reference: {statistics.median(f['cpu_ms'] for f in r['reference']) / statistics.median(noop['cpu_ms']):.1f}× less CPU,"
          f" {statistics.median(f['wall_ms'] for f in r['reference']) / statistics.median(noop['wall_ms']):.1f}× less wall,"
          f" {reference_rss / statistics.median(noop['rss_mb']):.1f}× less peak RSS")
    lean = []
    rss = max(noop["rss_mb"])
    lean.append((rss <= 16, f"no-op peak RSS {rss:.1f} MB (largest of {len(noop['rss_mb'])}) ≤ 16 MB"
                 f" (reference {reference_rss:.1f} MB: {reference_rss / rss:.1f}×); PSS {statistics.median(noop['pss_mb']):.1f} MB"))
    stripped = size["stripped"] / 2**20
    lean.append((stripped <= 20 and not size["icu"], f"stripped binary {stripped:.1f} MB ≤ 20 MB, ICU linked: {', '.join(size['icu']) or 'none'}"))
    first, floor_first = statistics.median(r["first_request_ms"]), statistics.median(r["floor_first_request_ms"])
    lean.append((first <= 5, f"exec → first request {first:.2f} ms (median of {len(r['first_request_ms'])}) ≤ 5 ms"
                 f" (the floor program, measured the same way: {floor_first:.2f} ms)"))
    version_cpu = statistics.median(r["version_cpu_ms"])
    lean.append((version_cpu <= 3, f"kscaler --version CPU {version_cpu:.2f} ms (median of {len(r['version_cpu_ms'])}) ≤ 3 ms"))
    wall = statistics.median(noop["wall_ms"])
    lean.append((wall <= 1.3 * floor_wall, f"no-op wall {wall:.1f} ms ≤ 1.3 × floor {floor_wall:.1f} ms = {1.3 * floor_wall:.1f} ms"
                 f" ({wall / floor_wall:.2f}×)"))
    cold = statistics.median(x["cold_ms"] for x in r["lambda"])
    lean.append((cold <= 30, f"Lambda cold start {cold:.1f} ms ≤ 30 ms: init {statistics.median(x['init_ms'] for x in r['lambda']):.1f} ms"
                 f" + first invocation {statistics.median(x['invocation_ms'] for x in r['lambda']):.1f} ms"
                 f" − its run's network time (lease to release) {statistics.median(x['run_ms'] for x in r['lambda']):.1f} ms"
                 f" (medians of {len(r['lambda'])})"))
    for ok, text in lean:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")


if __name__ == "__main__":
    main()
