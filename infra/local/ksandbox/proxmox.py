#!/usr/bin/env python3
"""A stateful stand-in for the Proxmox VE API (pve-manager / qemu-server, API under /api2/json),
for the Swift tests of kscaler's Proxmox backend: no Proxmox VE can run on the test machines.
Python stdlib only, plain HTTP on 127.0.0.1.

The paths kscaler uses, with the shapes of Proxmox's published API schema (pve-docs apidoc,
qemu-server PVE/API2/Qemu.pm, pve-manager PVE/API2/Cluster.pm and Nodes.pm):
  GET    /cluster/nextid                          {"data": "<vmid>"} (a string, as the real one)
  GET    /cluster/resources?type=vm               [{id: "qemu/<vmid>", vmid, node, name, status,
                                                    tags: "a;b", template: 0|1, lock?, maxcpu,
                                                    maxmem (bytes), uptime, type: "qemu"}]
  GET    /nodes/{node}/status                     {memory: {free, total, used}, ...}
  POST   /nodes/{node}/qemu/{vmid}/clone          newid, name, full, target, storage, description
                                                  → a UPID; the clone runs --clone-seconds, the
                                                    new VM locked `clone` meanwhile
  GET    /nodes/{node}/tasks/{upid}/status        {status: running|stopped, exitstatus: OK|error}
  GET    /nodes/{node}/qemu/{vmid}/config         the VM's config (name, description, tags, ...)
  PUT    /nodes/{node}/qemu/{vmid}/config         tags, description, cicustom, cores, memory, ...
  POST   /nodes/{node}/qemu/{vmid}/status/start   → a UPID
  POST   /nodes/{node}/qemu/{vmid}/status/stop    → a UPID
  DELETE /nodes/{node}/qemu/{vmid}?purge=1&destroy-unreferenced-disks=1 → a UPID
Every request must carry `Authorization: PVEAPIToken=<token id>=<secret>` (401 otherwise, as
the real one answers, with the reason in the status line). POST/PUT bodies are form-encoded.
Errors: the HTTP status line carries the reason; a parameter error answers 400 with
{"errors": {"<param>": "<message>"}, "data": null}, as pve's HTTP server does.

Not Proxmox, for tests (same credentials): /_standin/state (GET: the VMs, nodes and requests so
far; POST: seed `{"nodes": {"pve1": {"free": bytes, "total": bytes}}, "vms": [...]}`),
/_standin/faults (POST a list of rules, DELETE to clear). A rule matches `method` and
`path_regex` for `times` requests (default 1) and either answers `status` with `body` without
acting, or with `"lose_answer": true` acts and closes the connection without answering. Two
more: `{"clone_fails": "message"}` makes the next clone task end with that exitstatus, leaving
its half-made VM behind unlocked and unnamed (the real qemu-server removes it unless that
cleanup fails too: the worst case is kept), and `{"start_fails": "message"}`
the next start task.

Where the real API differs:
  * Tasks are timers: a clone takes --clone-seconds, start/stop/destroy end at once (the
    request still answers a UPID to poll). No storage, disks, network or guest.
  * Memory: a node's free memory drops by a VM's memory when it starts and rises when it stops;
    nothing else uses memory. A start that does not fit fails its task, as a real start does
    with "Cannot allocate memory".
  * No permissions: one token, allowed everything. No `digest` checks, no HA, no pools.
  * Tags are kept as given (`;`-separated), not re-sorted or case-folded per datacenter options.

Usage: proxmox.py [--port N] [--token-id ID] [--secret-file FILE] [--nodes pve1:free_gib,...]
                  [--clone-seconds S] [--lifetime S] [--exit-on-stdin-eof]
Prints one JSON line once listening (never the secret) and exits after --lifetime seconds or,
with --exit-on-stdin-eof, as soon as stdin closes. Logs each request on stderr BEFORE answering it.
"""
import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIB = 1024 ** 3
API = "/api2/json"
TAG_RE = re.compile(r"^[a-z0-9_][a-z0-9_+.\-]*$", re.IGNORECASE)


class ApiError(Exception):
    def __init__(self, status, reason, errors=None):
        super().__init__(reason)
        self.status, self.reason, self.errors = status, reason, errors


class Proxmox:
    def __init__(self, token_id, secret, nodes, clone_seconds):
        self.lock = threading.Lock()
        self.token_id, self.secret = token_id, secret
        self.nodes = nodes  # name -> {"free": bytes, "total": bytes}
        self.clone_seconds = clone_seconds
        self.vms = {}  # vmid -> dict
        self.tasks = {}  # upid -> {"node", "type", "ends", "exitstatus", "on_end"}
        self.requests = []
        self.faults = []
        self.next_task = 1
        # The template kscaler clones: on the first node, 2 cores, 2 GiB.
        first = next(iter(nodes))
        self.vms[9000] = {"vmid": 9000, "node": first, "name": "worker-template", "status": "stopped", "template": 1,
                          "config": {"name": "worker-template", "cores": 2, "memory": 2048, "template": 1}}

    # --- tasks -----------------------------------------------------------------------------
    def task(self, node, kind, vmid, seconds=0.0, exitstatus="OK", on_end=None):
        upid = f"UPID:{node}:{self.next_task:08X}:{int(time.time()):08X}:{kind}:{vmid}:{self.token_id}:"
        self.next_task += 1
        self.tasks[upid] = {"node": node, "type": kind, "ends": time.time() + seconds, "exitstatus": exitstatus,
                            "on_end": on_end, "done": False}
        if seconds <= 0:
            self.finish(upid)
        return upid

    def finish(self, upid):
        task = self.tasks[upid]
        if not task["done"] and time.time() >= task["ends"]:
            task["done"] = True
            if task["on_end"]:
                outcome = task["on_end"]()
                if outcome:
                    task["exitstatus"] = outcome

    def tick(self):
        for upid in list(self.tasks):
            self.finish(upid)

    # --- views -----------------------------------------------------------------------------
    def resource(self, vm):
        config = vm["config"]
        entry = {"id": f"qemu/{vm['vmid']}", "vmid": vm["vmid"], "node": vm["node"], "type": "qemu",
                 "name": config.get("name", f"VM {vm['vmid']}"), "status": vm["status"],
                 "template": vm.get("template", 0), "maxcpu": config.get("cores", 1),
                 "maxmem": config.get("memory", 512) * 1024 * 1024, "uptime": 0}
        if vm["status"] == "running":
            entry["uptime"] = int(time.time() - vm.get("started", time.time()))
        if config.get("tags"):
            entry["tags"] = config["tags"]
        if config.get("lock"):
            entry["lock"] = config["lock"]
        return entry

    def vm(self, node, vmid):
        vm = self.vms.get(int(vmid))
        if vm is None or vm["node"] != node:
            raise ApiError(500, f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
        return vm

    def check_node(self, node):
        if node not in self.nodes:
            raise ApiError(595, f"no such cluster node '{node}'")

    # --- routes ----------------------------------------------------------------------------
    def route(self, method, path, query, form):
        self.tick()
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if method == "GET" and parts == ["cluster", "nextid"]:
            vmid = 100
            while vmid in self.vms:
                vmid += 1
            return str(vmid)
        if method == "GET" and parts == ["cluster", "resources"]:
            if query.get("type") not in (None, "vm"):
                raise ApiError(400, "Parameter verification failed.", {"type": "value not supported by this stand-in"})
            return [self.resource(vm) for vm in sorted(self.vms.values(), key=lambda v: v["vmid"])]
        if len(parts) < 2 or parts[0] != "nodes":
            raise ApiError(501, f"Method '{method} {API}{path}' not implemented")
        node = parts[1]
        self.check_node(node)
        rest = parts[2:]
        if method == "GET" and rest == ["status"]:
            info = self.nodes[node]
            return {"memory": {"free": info["free"], "total": info["total"], "used": info["total"] - info["free"]},
                    "cpuinfo": {"cpus": 16}, "uptime": 1000}
        if method == "GET" and len(rest) == 3 and rest[0] == "tasks" and rest[2] == "status":
            task = self.tasks.get(rest[1])
            if task is None or task["node"] != node:
                raise ApiError(500, f"no such task '{rest[1]}'")
            answer = {"upid": rest[1], "node": node, "type": task["type"], "status": "stopped" if task["done"] else "running"}
            if task["done"]:
                answer["exitstatus"] = task["exitstatus"]
            return answer
        if len(rest) >= 2 and rest[0] == "qemu":
            vmid = rest[1]
            if not vmid.isdigit():
                raise ApiError(400, "Parameter verification failed.", {"vmid": "type check ('integer') failed"})
            sub = rest[2:]
            if method == "POST" and sub == ["clone"]:
                return self.clone(node, int(vmid), form)
            if method == "GET" and sub == ["config"]:
                return dict(self.vm(node, vmid)["config"])
            if method in ("PUT", "POST") and sub == ["config"]:
                return self.configure(node, int(vmid), form, method)
            if method == "POST" and sub == ["status", "start"]:
                return self.start(node, int(vmid))
            if method == "POST" and sub == ["status", "stop"]:
                return self.stop(node, int(vmid))
            if method == "DELETE" and sub == []:
                return self.destroy(node, int(vmid), query)
        raise ApiError(501, f"Method '{method} {API}{path}' not implemented")

    def clone(self, node, vmid, form):
        source = self.vm(node, vmid)
        errors = {}
        newid = form.get("newid", "")
        if not newid.isdigit():
            errors["newid"] = "property is missing and it is not optional" if not newid else "type check ('integer') failed"
        for key in ("full",):
            if key in form and form[key] not in ("0", "1"):
                errors[key] = "type check ('boolean') failed"
        if "name" in form and not re.match(r"^[a-zA-Z0-9]([a-zA-Z0-9\-.]*[a-zA-Z0-9])?$", form["name"]):
            errors["name"] = "value must be a valid DNS name"
        if errors:
            raise ApiError(400, "Parameter verification failed.", errors)
        newid = int(newid)
        if newid in self.vms:
            raise ApiError(500, f"unable to create VM {newid}: config file already exists")
        target = form.get("target", node)
        self.check_node(target)
        if not source.get("template") and form.get("full") != "1":
            raise ApiError(500, "Linked clone feature is not supported for drive 'scsi0'")
        if target != node and form.get("full") != "1":
            raise ApiError(500, "Can't clone to other node if target is not a full clone")
        fails = self.take_special("clone_fails")
        # As qemu-server does: a locked, nearly empty config first, the full one when the copy ends.
        self.vms[newid] = {"vmid": newid, "node": target, "status": "stopped", "config": {"lock": "clone"}}

        def done():
            vm = self.vms.get(newid)
            if vm is None:
                return None
            if fails:
                # qemu-server removes a failed clone's config; when that cleanup fails too, a
                # VM with no name is left behind, unlocked: the worst case, kept here.
                vm["config"] = {}
                return fails
            config = {k: v for k, v in source["config"].items() if k != "template"}
            config["name"] = form.get("name", f"Copy-of-VM-{source['config'].get('name', vmid)}")
            if "description" in form:
                config["description"] = form["description"]
            vm["config"] = config
            vm["clone_of"] = vmid
            vm["storage"] = form.get("storage")
            return None

        return self.task(node, "qmclone", vmid, self.clone_seconds, on_end=done)

    def configure(self, node, vmid, form, method):
        vm = self.vm(node, vmid)
        if vm["config"].get("lock") and "skiplock" not in form:
            raise ApiError(500, f"VM is locked ({vm['config']['lock']})")
        errors = {}
        if "tags" in form:
            tags = [t for t in re.split(r"[;, ]+", form["tags"]) if t]
            bad = [t for t in tags if not TAG_RE.match(t)]
            if bad:
                errors["tags"] = f"invalid format - invalid characters in tag '{bad[0]}'"
        for key in ("cores", "memory"):
            if key in form and not form[key].isdigit():
                errors[key] = "type check ('integer') failed"
        if errors:
            raise ApiError(400, "Parameter verification failed.", errors)
        for key, value in form.items():
            if key in ("cores", "memory"):
                vm["config"][key] = int(value)
            elif key == "delete":
                for gone in value.split(","):
                    vm["config"].pop(gone, None)
            elif key != "digest":
                vm["config"][key] = value
        if "tags" in form:
            vm["config"]["tags"] = ";".join(t for t in re.split(r"[;, ]+", form["tags"]) if t)
        return self.task(node, "qmconfig", vmid) if method == "POST" else None

    def start(self, node, vmid):
        vm = self.vm(node, vmid)
        if vm["config"].get("lock"):
            raise ApiError(500, f"VM is locked ({vm['config']['lock']})")
        if vm.get("template"):
            raise ApiError(500, "you can't start a vm if it's a template")
        fails = self.take_special("start_fails")

        def done():
            if vm["status"] == "running":
                return None
            if fails:
                return fails
            need = vm["config"].get("memory", 512) * 1024 * 1024
            if self.nodes[vm["node"]]["free"] < need:
                return f"start failed: QEMU exited with code 1: Cannot allocate memory (node {vm['node']})"
            self.nodes[vm["node"]]["free"] -= need
            vm["status"], vm["started"] = "running", time.time()
            return None

        return self.task(node, "qmstart", vmid, on_end=done)

    def stop(self, node, vmid):
        vm = self.vm(node, vmid)

        def done():
            if vm["status"] == "running":
                self.nodes[vm["node"]]["free"] += vm["config"].get("memory", 512) * 1024 * 1024
                vm["status"] = "stopped"
            return None

        return self.task(node, "qmstop", vmid, on_end=done)

    def destroy(self, node, vmid, query):
        vm = self.vm(node, vmid)
        if vm["status"] == "running":
            raise ApiError(500, f"VM {vmid} is running - destroy failed")
        if vm["config"].get("lock"):
            raise ApiError(500, f"VM is locked ({vm['config']['lock']})")

        def done():
            self.vms.pop(vmid, None)
            return None

        vm["destroy_query"] = dict(query)
        return self.task(node, "qmdestroy", vmid, on_end=done)

    # --- faults ----------------------------------------------------------------------------
    def take_special(self, key):
        for rule in self.faults:
            if key in rule and rule.get("times", 1) > 0:
                rule["times"] = rule.get("times", 1) - 1
                return rule[key]
        return None

    def take_fault(self, method, path):
        for rule in self.faults:
            if "path_regex" not in rule or rule.get("times", 1) <= 0:
                continue
            if rule.get("method", method) == method and re.search(rule["path_regex"], path):
                rule["times"] = rule.get("times", 1) - 1
                return rule
        return None

    def state(self):
        self.tick()
        return {"nodes": self.nodes, "vms": [dict(vm, **{"resource": self.resource(vm)}) for vm in self.vms.values()],
                "requests": self.requests}

    def seed(self, body):
        if "nodes" in body:
            self.nodes = {name: {"free": int(n["free"]), "total": int(n.get("total", n["free"]))} for name, n in body["nodes"].items()}
        for vm in body.get("vms", []):
            config = dict(vm.get("config", {}))
            config.setdefault("name", vm.get("name", f"vm-{vm['vmid']}"))
            if "tags" in vm:
                config["tags"] = vm["tags"]
            self.vms[int(vm["vmid"])] = {"vmid": int(vm["vmid"]), "node": vm["node"], "status": vm.get("status", "stopped"),
                                         "template": vm.get("template", 0), "config": config, "started": time.time()}


def handler_for(api, log):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, method):
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = url.path
            # Logged before the answer, so a test that saw the answer sees the line.
            print(f"proxmox: {method} {path}", file=log, flush=True)
            expected = f"PVEAPIToken={api.token_id}={api.secret}"
            if self.headers.get("Authorization") != expected:
                return self.send(401, "authentication failure", {"data": None})
            if path.startswith("/_standin/"):
                return self.control(method, path, raw)
            if not path.startswith(API + "/"):
                return self.send(404, "Not Found", {"data": None})
            path = path[len(API):]
            form = {}
            if raw:
                if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                    return self.send(415, "Unsupported Media Type", {"data": None})
                form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
            with api.lock:
                api.requests.append({"method": method, "path": path, "query": query, "form": form})
                fault = api.take_fault(method, path)
                if fault and not fault.get("lose_answer"):
                    body = fault.get("body", {"data": None})
                    return self.send(fault.get("status", 500), fault.get("reason", "stand-in fault"), body)
                try:
                    data = api.route(method, path, query, form)
                    status, reason, body = 200, "OK", {"data": data}
                except ApiError as error:
                    status, reason, body = error.status, error.reason, {"data": None}
                    if error.errors:
                        body["errors"] = error.errors
            if fault and fault.get("lose_answer"):
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            return self.send(status, reason, body)

        def control(self, method, path, raw):
            with api.lock:
                if path == "/_standin/state" and method == "GET":
                    return self.send(200, "OK", api.state())
                if path == "/_standin/state" and method == "POST":
                    api.seed(json.loads(raw or b"{}"))
                    return self.send(200, "OK", {})
                if path == "/_standin/faults" and method == "POST":
                    api.faults.extend(json.loads(raw or b"[]"))
                    return self.send(200, "OK", {})
                if path == "/_standin/faults" and method == "DELETE":
                    api.faults.clear()
                    return self.send(200, "OK", {})
            return self.send(404, "Not Found", {})

        def send(self, status, reason, body):
            payload = json.dumps(body).encode()
            # The real pveproxy puts the reason in the status line (one line, no CR/LF).
            self.send_response(status, reason.replace("\r", " ").replace("\n", " "))
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):
            self.answer("GET")

        def do_POST(self):
            self.answer("POST")

        def do_PUT(self):
            self.answer("PUT")

        def do_DELETE(self):
            self.answer("DELETE")

        def log_message(self, *args):  # the request log is answer()'s, without headers
            pass

    return Handler


def parse_nodes(text):
    nodes = {}
    for item in text.split(","):
        name, _, gib = item.partition(":")
        free = int(float(gib or 16) * GIB)
        nodes[name] = {"free": free, "total": free}
    return nodes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-id", default="kscaler@pve!autoscaler")
    parser.add_argument("--secret-file", required=True, help="file holding the token secret")
    parser.add_argument("--nodes", default="pve1:16,pve2:32,pve3:8", help="name:free GiB, comma-separated")
    parser.add_argument("--clone-seconds", type=float, default=0.5)
    parser.add_argument("--lifetime", type=float, default=900, help="seconds before exiting by itself")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()
    with open(args.secret_file, encoding="utf-8") as handle:
        secret = handle.read().strip()
    api = Proxmox(args.token_id, secret, parse_nodes(args.nodes), args.clone_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(api, sys.stderr))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="proxmox", daemon=True).start()
    port = server.server_address[1]
    print(json.dumps({"port": port, "url": f"http://127.0.0.1:{port}", "token_id": args.token_id}), flush=True)
    done = threading.Event()
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait(args.lifetime)
    server.shutdown()


if __name__ == "__main__":
    main()
