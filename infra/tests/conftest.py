"""Shared fixtures: the moto peer (scripts/peers.sh), an IMDSv2 stand-in, and a sandbox that
lays rendered user data out under a scratch root and runs its scripts with every external
command wrapped, so a test sees each process's argv."""

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import yaml
from cfnlint.decode import decode

sys.path.insert(0, str(Path(__file__).parent))
import userdata_render  # noqa: E402

REPO = userdata_render.REPO
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
STACK = REPO / "infra" / "cloudformation" / "kscaler.yaml"


def environment_name(key):
    """A config key's environment variable, by the binary's rule (KScalerConfig
    .environmentVariableName in Sources/KScalerCore/ConfigSchema.swift, which a test holds to):
    `kubernetes.token_parameter` -> `KSCALER_KUBERNETES_TOKEN_PARAMETER`."""
    return "KSCALER_" + "_".join(key.split(".")).upper()


# The settings a deployment outside the cluster gives kscaler to reach the Kubernetes API.
KUBERNETES_KEYS = ["kubernetes.server", "kubernetes.ca_data", "kubernetes.token_parameter"]
KUBERNETES_ENV = {key: environment_name(key) for key in KUBERNETES_KEYS}


# ---------------------------------------------------------------------------------------------
# moto


@pytest.fixture(scope="session")
def moto():
    names = ["KSTEST_MOTO_ENDPOINT", "KSTEST_AWS_ACCESS_KEY_ID", "KSTEST_AWS_SECRET_ACCESS_KEY"]
    missing = [n for n in names if not os.environ.get(n)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: run scripts/peers.sh start && . .peers/env")
    return Moto(*(os.environ[n] for n in names))


class Moto:
    def __init__(self, endpoint, access_key, secret_key):
        self.endpoint = endpoint
        self._credentials = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key}

    def client(self, service, credentials=None):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            **(credentials or self._credentials))

    def instance_role_credentials(self, actions):
        """Credentials of a fresh role allowed `actions`, as an instance profile would have them.

        moto checks the signature, the session token and the role's policy (it authorises SSM
        against resource "*" only, so the policy names the actions, not the parameter ARNs)."""
        iam, sts = self.client("iam"), self.client("sts")
        name = f"kscaler-test-{uuid.uuid4().hex[:12]}"
        me = sts.get_caller_identity()["Arn"]
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": me}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="i-test")["Credentials"]
        return name, {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                      "Token": c["SessionToken"], "Expiration": c["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}

    def put_parameter(self, name, value, kind="SecureString"):
        self.client("ssm").put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)

    def get_parameter(self, name):
        """The parameter (Type, Value decrypted), or None when it does not exist."""
        try:
            return self.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except self.client("ssm").exceptions.ParameterNotFound:
            return None


def stack_policy_actions(role):
    """The actions the CloudFormation stack grants `role` in its inline policies: the tests give
    their instance roles exactly these, so a script needing more fails against moto."""
    template, matches = decode(str(STACK))
    assert not matches, matches
    actions = []
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            a = statement["Action"]
            actions += a if isinstance(a, list) else [a]
    return actions


def new_cluster_id():
    return "t" + uuid.uuid4().hex[:10]


# ---------------------------------------------------------------------------------------------
# IMDSv2 stand-in


class Imds:
    """Instance metadata on 127.0.0.1 with IMDSv2 rules: PUT /latest/api/token needs the TTL
    header; every GET needs a token it issued (401 otherwise). /downloads/<name> serves files
    without a token (a stand-in for a download site)."""

    def __init__(self, role_name, credentials, instance_id=None, zone="us-east-1b", local_ipv4="10.1.2.3"):
        self.instance_id = instance_id or "i-" + secrets.token_hex(8)
        self.zone, self.region = zone, REGION
        self.metadata = {
            "instance-id": self.instance_id,
            "placement/availability-zone": zone,
            "placement/region": REGION,
            "instance-type": "t3.large",
            "local-ipv4": local_ipv4,
            "iam/security-credentials/": role_name,
            f"iam/security-credentials/{role_name}": json.dumps(
                {"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": "2026-01-01T00:00:00Z", **credentials}),
        }
        self.downloads = {}
        self.tokens, self.requests = set(), []
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body=b""):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                imds.requests.append(("PUT", self.path, self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")))
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if self.path != "/latest/api/token" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self.reply(400)
                token = secrets.token_urlsafe(32)
                imds.tokens.add(token)
                self.reply(200, token.encode())

            def do_GET(self):
                token = self.headers.get("X-aws-ec2-metadata-token")
                imds.requests.append(("GET", self.path, token))
                if self.path.startswith("/downloads/"):
                    body = imds.downloads.get(self.path[len("/downloads/"):])
                    return self.reply(200, body) if body is not None else self.reply(404)
                if token not in imds.tokens:
                    return self.reply(401)
                value = imds.metadata.get(self.path.removeprefix("/latest/meta-data/"))
                self.reply(200, value.encode()) if value is not None else self.reply(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def imds_factory():
    started = []

    def start(*args, **kwargs):
        started.append(Imds(*args, **kwargs))
        return started[-1]

    yield start
    for imds in started:
        imds.close()


# ---------------------------------------------------------------------------------------------
# Sandbox: rendered user data laid out under a scratch root, run with wrapped commands


# Every external command the scripts may run. PATH holds only wrappers for these, so a command
# missing here fails the test instead of running unseen.
WRAPPED = ["curl", "python3", "mktemp", "rm", "sleep", "chmod", "mkdir", "mv", "sha256sum", "sh", "openssl"]
RECORDED = ["systemctl", "kubeadm"]  # recorded, never run for real
SYSTEM_DIRS = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]

RECORDER = """#!{python}
# Stands in for an installer or a system command: records its name, argv, environment and the
# file a --config argument names (read now: the script may delete it), then prints the file
# $KSTEST_OUTPUT_<name> names, if the test set one.
import json, os, sys
name = os.environ.pop("KSTEST_AS", os.path.basename(sys.argv[0]))
record = {{"name": name, "argv": sys.argv[1:], "env": dict(os.environ), "files": {{}}}}
if "--config" in sys.argv:
    path = sys.argv[sys.argv.index("--config") + 1]
    record["files"][path] = open(path).read()
with open(os.environ["KSTEST_RECORDS"], "a") as f:
    f.write(json.dumps(record) + "\\n")
if os.environ.get("KSTEST_OUTPUT_" + name):
    sys.stdout.write(open(os.environ["KSTEST_OUTPUT_" + name]).read())
"""


class Sandbox:
    def __init__(self, tmp_path):
        self.root = tmp_path / "root"
        self.bin = tmp_path / "bin"
        self.argv_log = tmp_path / "argv.log"
        self.records_file = tmp_path / "records.jsonl"
        for d in (self.root / "run", self.bin, self.root / "usr/local/bin"):
            d.mkdir(parents=True)
        self.recorder = tmp_path / "recorder"
        self.recorder.write_text(RECORDER.format(python=_system("python3")))
        self.recorder.chmod(0o755)
        for name in WRAPPED:
            self._wrapper(name, f'exec {_system(name)} "$@"')
        for name in RECORDED:
            self._wrapper(name, f'KSTEST_AS={name} exec {self.recorder} "$@"')
        self.installer = tmp_path / "k3s-install.sh"
        self.installer.symlink_to(self.recorder)

    def _wrapper(self, name, then):
        path = self.bin / name
        path.write_text(f"#!/bin/bash\n{{ printf '%s\\0' \"${{0##*/}}\" \"$@\"; printf '\\036'; }} >> {self.argv_log}\n{then}\n")
        path.chmod(0o755)

    def install(self, cloud_config):
        """Writes a rendered cloud-config's write_files under the root, as cloud-init would."""
        config = yaml.safe_load(cloud_config)
        for entry in config["write_files"]:
            path = self.root / entry["path"].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry["content"])
            path.chmod(int(entry["permissions"], 8))
        return config

    def add_env(self, env_file, **values):
        with open(self.root / env_file.lstrip("/"), "a") as f:
            for key, value in values.items():
                f.write(f"{key}='{value}'\n")

    def run(self, command, timeout=60, background=False, env=None):
        """Runs a script under the root with only the wrappers on PATH."""
        full_env = {
            "PATH": str(self.bin), "KSCALER_ROOT": str(self.root), "TMPDIR": str(self.root / "run"),
            "KSTEST_RECORDS": str(self.records_file), "LANG": "C.UTF-8", **(env or {})}
        argv = [str(self.root / command[0].lstrip("/"))] + command[1:]
        if background:
            return subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout)

    def argv(self):
        """Every wrapped process's argv, in order."""
        if not self.argv_log.exists():
            return []
        return [r.split("\0")[:-1] for r in self.argv_log.read_text().split("\x1e") if r]

    def records(self, name=None):
        """What the recorders saw, in order; only those standing in for `name` if given."""
        if not self.records_file.exists():
            return []
        records = [json.loads(line) for line in self.records_file.read_text().splitlines()]
        return [r for r in records if name in (None, r["name"])]

    def assert_secrets_hidden(self, result, *secrets_):
        """No secret in the script's output, in any process's argv or in a recorded environment."""
        argv_text = self.argv_log.read_text() if self.argv_log.exists() else ""
        records = json.dumps([{"argv": r["argv"], "env": r["env"]} for r in self.records()])
        for secret in secrets_:
            assert secret not in result.stdout and secret not in result.stderr, "secret in the script's output"
            assert secret not in argv_text, "secret in a process's argv"
            assert secret not in records, "secret in a recorded argv or environment"


def _system(name):
    for directory in SYSTEM_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} not found in {SYSTEM_DIRS}")


@pytest.fixture
def sandbox(tmp_path):
    return Sandbox(tmp_path)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def which(name):
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (scripts/install-deps.sh installs it)")
    return found


# ---------------------------------------------------------------------------------------------
# Real kscaler runs (kscaler_runs.py): one of each kind, JSON logs, metrics in a Pushgateway


@pytest.fixture(scope="session")
def kscaler_runs(tmp_path_factory):
    import kscaler_runs as runs
    from ksandbox.peers import PeerError
    binary = runs.kscaler_binary()
    produced = runs.produce(tmp_path_factory.mktemp("kscaler-runs"), binary)
    try:
        try:
            result = next(produced)
        except PeerError as error:
            pytest.fail(str(error), pytrace=False)
        yield result
    finally:
        produced.close()
