"""A stateful stand-in for `curl` talking to VPSie's API, for examples/backends/vpsie. Installed on
PATH as `curl`. It serves the requests in that script's marked API block, with the shapes the
script assumes; where those are ASSUMED (see the script and its README), this fake is no evidence
that VPSie answers so: it checks the script against its own assumptions, not against VPSie.

State: $FAKE_VPSIE_STATE, {"groups": [{id, group_name, dcIdentifier}], "nodes": [{identifier,
hostname, created_on, group_name, dcIdentifier, tags}]}. Every argv is appended to
$FAKE_VPSIE_LOG (one JSON object a line) so a test can check that the token is not in it.

curl options implemented: -s -S -sS, --fail-with-body (HTTP >= 400: body printed, exit 22, as curl
does), --max-time N (ignored), -X METHOD, -H 'Name: value' and -H @file (curl 7.55+ reads headers
from a file), --data-binary BODY, -w FORMAT (only %{http_code} and \\n), one URL.
Auth: the Vpsie-Auth header must equal the content of $FAKE_VPSIE_TOKEN_FILE, else HTTP 401.
Routes (under /apps/v2): GET k8s/cluster/byId/C, GET k8s/node/groups/byClusterId/C,
POST k8s/cluster/byId/C/add/slave/group/G, PUT tags/edit, DELETE k8s/cluster/byId/C/node/ID.
Failure injection: FAKE_VPSIE_FAIL_ADD=<HTTP status> fails every add-node call with that status,
FAKE_VPSIE_FAIL_LIST=<HTTP status> every listing of the cluster's nodes.
Where the real one differs: no TLS, DNS or network (exit 6/7/28 never happen); nodes are ready at
once; VPSie's real error bodies and node fields may differ.
"""

import datetime
import json
import os
import re
import secrets
import sys
from urllib.parse import urlparse

STATE = os.environ["FAKE_VPSIE_STATE"]
LOG = os.environ.get("FAKE_VPSIE_LOG")


def respond(status, body, write_out, fail_with_body):
    sys.stdout.write(json.dumps(body))
    if write_out:
        sys.stdout.write(write_out.replace("\\n", "\n").replace("%{http_code}", str(status)))
    if status >= 400 and fail_with_body:
        print(f"curl: (22) The requested URL returned error: {status}", file=sys.stderr)
        return 22
    return 0


def route(method, path, body, state):
    m = re.fullmatch(r"/apps/v2/k8s/cluster/byId/([^/]+)", path)
    if m and method == "GET":
        if os.environ.get("FAKE_VPSIE_FAIL_LIST"):
            return int(os.environ["FAKE_VPSIE_FAIL_LIST"]), {"error": True, "code": 0, "message": "injected failure"}
        return 200, {"error": False, "data": {"identifier": m[1], "nodes": state["nodes"]}}
    m = re.fullmatch(r"/apps/v2/k8s/node/groups/byClusterId/([^/]+)", path)
    if m and method == "GET":
        return 200, {"error": False, "data": state["groups"]}
    m = re.fullmatch(r"/apps/v2/k8s/cluster/byId/([^/]+)/add/slave/group/(\d+)", path)
    if m and method == "POST":
        if os.environ.get("FAKE_VPSIE_FAIL_ADD"):
            return int(os.environ["FAKE_VPSIE_FAIL_ADD"]), {"error": True, "code": 0, "message": "injected failure"}
        group = next((g for g in state["groups"] if str(g["id"]) == m[2]), None)
        if group is None:
            return 404, {"error": True, "message": "group not found"}
        node = {"identifier": secrets.token_hex(8), "hostname": f"{m[1]}-slave-{secrets.token_hex(3)}",
                "created_on": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                "group_name": group["group_name"], "dcIdentifier": group["dcIdentifier"], "tags": []}
        state["nodes"].append(node)
        return 200, {"error": False, "data": {"identifier": node["identifier"], "hostname": node["hostname"]}}
    if path == "/apps/v2/tags/edit" and method == "PUT":
        request = json.loads(body)
        node = next((n for n in state["nodes"] if n["identifier"] == request["identifier"]), None)
        if node is None or request.get("entity") != "vm":
            return 404, {"error": True, "message": "no such vm"}
        node["tags"] = request["tags"]
        return 200, {"error": False, "data": True}
    m = re.fullmatch(r"/apps/v2/k8s/cluster/byId/([^/]+)/node/([^/]+)", path)
    if m and method == "DELETE":
        before = len(state["nodes"])
        state["nodes"] = [n for n in state["nodes"] if n["identifier"] != m[2]]
        return (200, {"error": False, "data": True}) if len(state["nodes"]) < before else \
            (404, {"error": True, "message": "node not found"})
    return 404, {"error": True, "message": f"fake VPSie: no route {method} {path}"}


def main(argv):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps({"argv": argv}) + "\n")
    method, headers, body, write_out, fail_with_body, url = "GET", {}, None, "", False, None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-s", "-S", "-sS"):
            pass
        elif arg == "--fail-with-body":
            fail_with_body = True
        elif arg in ("-X", "--max-time", "-H", "--data-binary", "-w"):
            value = argv[i + 1]
            i += 1
            if arg == "-X":
                method = value
            elif arg == "-H":
                lines = open(value[1:]).read().splitlines() if value.startswith("@") else [value]
                for line in lines:
                    name, _, val = line.partition(":")
                    headers[name.strip().lower()] = val.strip()
            elif arg == "--data-binary":
                body = value
            elif arg == "-w":
                write_out = value
        elif arg.startswith("-"):
            print(f"fake curl: unsupported option {arg}", file=sys.stderr)
            return 2
        else:
            url = arg
        i += 1
    with open(os.environ["FAKE_VPSIE_TOKEN_FILE"]) as f:
        token = f.read().strip()
    if headers.get("vpsie-auth") != token:
        return respond(401, {"error": True, "message": "unauthorized"}, write_out, fail_with_body)
    with open(STATE) as f:
        state = json.load(f)
    status, answer = route(method, urlparse(url).path, body, state)
    with open(STATE, "w") as f:
        json.dump(state, f)
    return respond(status, answer, write_out, fail_with_body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
