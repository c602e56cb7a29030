"""The real peers, on 127.0.0.1 only: moto server (signature checking on) and Prometheus (the
Debian package's binary), for the sandbox, the benchmark (benchmarks/bench.py) and the tests
(scripts/peers.sh starts the tests' moto with `python -m ksandbox.peers moto DIR`).

Every process is started in its own process group under `timeout`, so it ends by itself
should the sandbox be killed without tearing down, and `stop()` ends exactly that group.
"""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGION = "us-east-1"
REPO_ROOT = Path(__file__).resolve().parents[3]


class PeerError(RuntimeError):
    """A peer is missing or did not start; the message says what to do."""


class ManagedProcess:
    """A child process in its own process group, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name, argv, log_path, env=None, lifetime=900):
        self.name = name
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        # `timeout` leads the new process group and ends the peer after `lifetime` seconds
        # even if this Python process dies (SIGKILL) before stop(); lifetime None: no bound
        # (a peer meant to outlive this process, stopped by its pid).
        bound = [] if lifetime is None else ["timeout", str(int(lifetime))]
        self.process = subprocess.Popen(
            bound + list(argv),
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def running(self):
        return self.process.poll() is None

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=5)
        self._log.close()


def wait_for(what, check, timeout, interval=0.05, log=None):
    """Polls `check()` until it returns something truthy; raises PeerError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    detail = f"; its log:\n{log()}" if log else ""
    raise PeerError(f"{what} did not happen within {timeout}s{detail}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Credentials:
    access_key_id: str
    secret_access_key: str


class Moto:
    """moto server with SigV4 checking on after the first (unauthenticated) requests, three per
    user of `users` (name: the IAM actions its policy allows), which create the users and their
    access keys; `credentials` are the first user's. It serves one request at a time
    (scripts/moto_server_serial.py): only then are moto's conditional writes atomic, as
    DynamoDB's are, and the lease means what it means on AWS."""

    def __init__(self, directory, lifetime=900, users=None):
        users = users or {"ksandbox": "*"}
        if importlib.util.find_spec("moto") is None:
            raise PeerError(f"moto is not installed for {sys.executable}: run scripts/install-deps.sh "
                            "(it creates .venv with moto[server]) and use .venv/bin/python")
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(3 * len(users)))
        self.process = ManagedProcess("moto", [sys.executable, str(REPO_ROOT / "scripts/moto_server_serial.py"), "0"],
                                      Path(directory) / "moto.log", env=env, lifetime=lifetime)
        try:
            port = wait_for("moto printing its port", self._port, 20, log=self.process.log_text)
            self.endpoint = f"http://127.0.0.1:{port}"
            wait_for("moto answering", lambda: http_ok(self.endpoint + "/moto-api/"), 20, log=self.process.log_text)
            self.users = {name: self._create_user(name, actions) for name, actions in users.items()}
            self.credentials = next(iter(self.users.values()))
            self._warm()
        except BaseException:
            self.process.stop()
            raise

    def _port(self):
        if not self.process.running():
            raise PeerError(f"moto server exited at start; its log:\n{self.process.log_text()}")
        match = re.search(r"Running on http://127\.0\.0\.1:(\d+)", self.process.log_text())
        return match and int(match.group(1))

    def _warm(self):
        """Makes one signed call per service kscaler uses, so moto loads its EC2 catalogue
        (about 2 s here, far more on a loaded machine) and its other backends now. Since moto
        serves one request at a time, that first load would otherwise stall every request
        queued behind it, and the tests' first calls would time out together."""
        import botocore.session  # moto depends on botocore; imported here, only where needed

        session = botocore.session.get_session()
        calls = [("ec2", "describe_instances", {}), ("ec2", "describe_instance_types", {"InstanceTypes": ["t3.micro"]}),
                 ("dynamodb", "list_tables", {}), ("ssm", "describe_parameters", {}), ("sts", "get_caller_identity", {})]
        for service, operation, parameters in calls:
            client = session.create_client(service, region_name=REGION, endpoint_url=self.endpoint,
                                           aws_access_key_id=self.credentials.access_key_id,
                                           aws_secret_access_key=self.credentials.secret_access_key)
            getattr(client, operation)(**parameters)

    def _iam(self, params):
        # Unsigned requests pass while moto's no-auth allowance lasts; moto routes by the scope.
        body = urllib.parse.urlencode({**params, "Version": "2010-05-08"}).encode()
        request = urllib.request.Request(self.endpoint + "/", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=bootstrap/20260101/us-east-1/iam/aws4_request, "
                             "SignedHeaders=host, Signature=0"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def _create_user(self, name, actions):
        self._iam({"Action": "CreateUser", "UserName": name})
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        self._iam({"Action": "PutUserPolicy", "UserName": name, "PolicyName": "p", "PolicyDocument": json.dumps(policy)})
        answer = self._iam({"Action": "CreateAccessKey", "UserName": name})
        key = re.search(r"<AccessKeyId>(.*?)</AccessKeyId>", answer)
        secret = re.search(r"<SecretAccessKey>(.*?)</SecretAccessKey>", answer)
        if not key or not secret:
            raise PeerError("moto's CreateAccessKey answered without a key")
        return Credentials(key.group(1), secret.group(1))

    def stop(self):
        self.process.stop()


class Prometheus:
    """A real Prometheus with the given scrape configuration, on 127.0.0.1 with a free port."""

    def __init__(self, directory, config_text, lifetime=900):
        binary = os.environ.get("KSANDBOX_PROMETHEUS_BIN") or os.environ.get("KSTEST_PROMETHEUS_BIN") or "/usr/bin/prometheus"
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            raise PeerError(f"no Prometheus at {binary}: run scripts/install-deps.sh (Debian package prometheus), "
                            "or set KSANDBOX_PROMETHEUS_BIN")
        directory = Path(directory)
        config = directory / "prometheus.yml"
        config.write_text(config_text)
        self.data = directory / "prometheus-data"
        self.process = ManagedProcess("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.data}",
            "--web.listen-address=127.0.0.1:0"],
            directory / "prometheus.log", lifetime=lifetime)
        try:
            address = wait_for("Prometheus listening", self._address, 20, log=self.process.log_text)
            self.url = f"http://{address}"
            wait_for("Prometheus ready", lambda: http_ok(self.url + "/-/ready"), 20, log=self.process.log_text)
        except BaseException:
            self.stop()
            raise

    def _address(self):
        if not self.process.running():
            raise PeerError(f"Prometheus exited at start; its log:\n{self.process.log_text()}")
        match = re.search(r'msg="Listening on" address=(127\.0\.0\.1:\d+)', self.process.log_text())
        return match and match.group(1)

    def stop(self):
        self.process.stop()
        shutil.rmtree(self.data, ignore_errors=True)


# MARK: the tests' moto (scripts/peers.sh)

TEST_USERS = {
    "kscaler-tests": "*",
    "kscaler-readonly": ["dynamodb:Describe*", "dynamodb:Get*", "dynamodb:Query", "ec2:Describe*", "ssm:Get*",
                         "sts:GetCallerIdentity"],
}


def start_test_moto(directory):
    """Starts the tests' moto, to outlive this process: DIR/moto.pid has its pid (it leads its
    process group), DIR/env the KSTEST_* variables to source (see scripts/peers.sh)."""
    directory = Path(directory)
    moto = Moto(directory, lifetime=None, users=TEST_USERS)
    full, limited = moto.users["kscaler-tests"], moto.users["kscaler-readonly"]
    (directory / "moto.pid").write_text(f"{moto.process.process.pid}\n")
    (directory / "env").write_text(
        f"export KSTEST_MOTO_ENDPOINT={moto.endpoint}\n"
        f"export KSTEST_AWS_ACCESS_KEY_ID={full.access_key_id}\n"
        f"export KSTEST_AWS_SECRET_ACCESS_KEY={full.secret_access_key}\n"
        f"export KSTEST_AWS_LIMITED_ACCESS_KEY_ID={limited.access_key_id}\n"
        f"export KSTEST_AWS_LIMITED_SECRET_ACCESS_KEY={limited.secret_access_key}\n")
    return moto.endpoint


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "moto":
        sys.exit("usage: python -m ksandbox.peers moto DIR")
    try:
        print(start_test_moto(sys.argv[2]))
    except PeerError as error:
        sys.exit(f"peers: {error}")
