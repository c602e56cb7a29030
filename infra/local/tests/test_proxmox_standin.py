"""The Proxmox VE stand-in (ksandbox/proxmox.py) answers in the shapes of Proxmox's published API
schema (pve-docs api-viewer): token auth, `{"data": …}`, form-encoded bodies, parameter errors
as `{"errors": {…}}` with the reason in the status line, clone tasks that run then stop with
`exitstatus: OK`, and the faults the Swift tests inject. What it is checked against here is the
schema's text, since no Proxmox VE can run on the test machines."""
import http.client
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "ksandbox/proxmox.py"
TOKEN_ID = "kscaler@pve!autoscaler"
SECRET = "0b6b2c1e-stand-in-secret"


@pytest.fixture
def api(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--secret-file", str(secret), "--clone-seconds", "0.3",
                                "--lifetime", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        announced = json.loads(process.stdout.readline())
        yield Client(announced["port"])
    finally:
        process.terminate()
        process.wait(timeout=60)


class Client:
    def __init__(self, port):
        self.port = port

    def call(self, method, path, form=None, auth=f"PVEAPIToken={TOKEN_ID}={SECRET}"):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Authorization": auth} if auth else {}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, "/api2/json" + path, body=body, headers=headers)
        response = connection.getresponse()
        answer = (response.status, response.reason, json.loads(response.read() or b"null"))
        connection.close()
        return answer

    def wait(self, node, upid):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _, body = self.call("GET", f"/nodes/{node}/tasks/{urllib.parse.quote(upid, safe='')}/status")
            assert status == 200
            if body["data"]["status"] == "stopped":
                return body["data"]
            time.sleep(0.05)
        raise AssertionError(f"task {upid} still running")


def test_every_call_needs_the_api_token(api):
    assert api.call("GET", "/cluster/nextid", auth=None)[:2] == (401, "authentication failure")
    assert api.call("GET", "/cluster/nextid", auth=f"PVEAPIToken={TOKEN_ID}=wrong")[0] == 401
    assert api.call("GET", "/cluster/nextid") == (200, "OK", {"data": "100"})


def test_a_full_clone_runs_as_a_task_then_is_configured_started_stopped_and_destroyed(api):
    status, _, body = api.call("POST", "/nodes/pve1/qemu/9000/clone",
                               {"newid": "100", "full": "1", "name": "kscaler-demo-100", "target": "pve2", "description": "x"})
    assert status == 200 and body["data"].startswith("UPID:pve1:") and ":qmclone:9000:" in body["data"]
    [vm] = [v for v in api.call("GET", "/cluster/resources?type=vm")[2]["data"] if v["vmid"] == 100]
    assert vm["lock"] == "clone" and vm["node"] == "pve2"
    assert api.wait("pve1", body["data"])["exitstatus"] == "OK"
    # A locked VM cannot be configured; once the clone ends it can, tags `;`-separated.
    assert api.call("PUT", "/nodes/pve2/qemu/100/config", {"tags": "kscaler-cluster-demo;kscaler-pool-a", "cores": "2"})[:2] == (200, "OK")
    [vm] = [v for v in api.call("GET", "/cluster/resources?type=vm")[2]["data"] if v["vmid"] == 100]
    assert vm["tags"] == "kscaler-cluster-demo;kscaler-pool-a" and vm["name"] == "kscaler-demo-100" and "lock" not in vm
    assert api.wait("pve2", api.call("POST", "/nodes/pve2/qemu/100/status/start", {})[2]["data"])["exitstatus"] == "OK"
    assert api.call("DELETE", "/nodes/pve2/qemu/100?purge=1")[:2] == (500, "VM 100 is running - destroy failed")
    api.wait("pve2", api.call("POST", "/nodes/pve2/qemu/100/status/stop", {})[2]["data"])
    api.wait("pve2", api.call("DELETE", "/nodes/pve2/qemu/100?purge=1&destroy-unreferenced-disks=1")[2]["data"])
    assert [v["vmid"] for v in api.call("GET", "/cluster/resources?type=vm")[2]["data"]] == [9000]


def test_parameter_errors_name_the_parameter(api):
    status, reason, body = api.call("POST", "/nodes/pve1/qemu/9000/clone", {"full": "1"})
    assert (status, reason) == (400, "Parameter verification failed.")
    assert body == {"data": None, "errors": {"newid": "property is missing and it is not optional"}}
    api.wait("pve1", api.call("POST", "/nodes/pve1/qemu/9000/clone", {"newid": "100", "full": "1", "name": "w-100"})[2]["data"])
    status, _, body = api.call("PUT", "/nodes/pve1/qemu/100/config", {"tags": "Bad Tag!"})
    assert status == 400 and "invalid characters in tag" in body["errors"]["tags"]
    assert api.call("GET", "/nodes/pve9/status")[:2] == (595, "no such cluster node 'pve9'")


def test_a_failing_clone_task_ends_with_its_error(api):
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    connection.request("POST", "/_standin/faults", body=json.dumps([{"clone_fails": "clone failed: no space"}]),
                       headers={"Authorization": f"PVEAPIToken={TOKEN_ID}={SECRET}"})
    assert connection.getresponse().status == 200
    upid = api.call("POST", "/nodes/pve1/qemu/9000/clone", {"newid": "100", "full": "1", "name": "w-100"})[2]["data"]
    assert api.wait("pve1", upid)["exitstatus"] == "clone failed: no space"
