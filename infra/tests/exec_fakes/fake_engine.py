"""A stateful stand-in for the `docker` / `podman` CLI, for the exec backend examples
(examples/backends/docker and kind). Installed on PATH as `docker` or `podman`.

State: containers in the JSON file $FAKE_ENGINE_STATE; every argv (and every `exec -i` stdin) is
appended to $FAKE_ENGINE_LOG, one JSON object a line, so a test can check what was passed.

Implements only what the examples call:
  version | info
  ps -a -q [--filter label=K=V]...          ids of matching containers, one a line
  inspect ID... | container inspect ID...   a JSON array: Id, Name ("/name", as docker prints
                                            it), Created (RFC 3339, nanoseconds), State.Status,
                                            Config.Labels; exit 1 "no such object" if one is missing
  run -d --name N [flags] IMAGE [ARGS...]   creates a running container; value flags are skipped
  exec [-d] [-i] ID CMD...                  recorded (stdin too, with -i); the container must exist
  kill ID                                   a running container exits; otherwise exit 1
  rm -f ID...                               removes; a missing one: exit 1 "No such container"
Failure injection: FAKE_ENGINE_FAIL_RUN=1 fails every `run` before creating anything (exit 125,
as docker does when the image cannot be pulled); FAKE_ENGINE_FAIL_RUN_AFTER=N lets N runs succeed
first; FAKE_ENGINE_FAIL_PS=1 fails every `ps` (an engine that stops answering after `version`).
Where the real CLI differs: no images, processes, networks or restart policies; filters other
than label=K=V are not implemented; `ps` ignores state without -a (the examples always pass it);
podman prints Name without the slash (the examples strip it either way).
"""

import datetime
import json
import os
import secrets
import sys

STATE = os.environ["FAKE_ENGINE_STATE"]
LOG = os.environ.get("FAKE_ENGINE_LOG")
# docker run flags that take a value; anything else starting with "-" is a boolean flag.
VALUE_FLAGS = {"--name", "--hostname", "--label", "-l", "-e", "--env", "-v", "--volume", "--tmpfs",
               "--ulimit", "--network", "--net", "--restart", "--memory", "-m", "--cpus", "--entrypoint",
               "--cgroupns", "--security-opt", "--device", "--runtime"}


def load():
    try:
        with open(STATE) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"containers": {}, "runs": 0}


def save(state):
    with open(STATE, "w") as f:
        json.dump(state, f)


def log(entry):
    if LOG:
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")


def find(state, ref):
    for c in state["containers"].values():
        if ref in (c["Name"], c["Id"], c["Id"][:12]):
            return c
    return None


def main(argv):
    log({"argv": argv})
    state = load()
    if argv and argv[0] == "container":
        argv = argv[1:]
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command in ("version", "info"):
        print("fake engine 1.0")
        return 0
    if command == "ps":
        if os.environ.get("FAKE_ENGINE_FAIL_PS"):
            print("Error: fake engine: cannot connect to the engine (FAKE_ENGINE_FAIL_PS)", file=sys.stderr)
            return 125
        filters = [args[i + 1][len("label="):] for i, a in enumerate(args) if a == "--filter"]
        for c in state["containers"].values():
            labels = c["Config"]["Labels"]
            if all(labels.get(f.split("=", 1)[0]) == f.split("=", 1)[1] for f in filters):
                print(c["Id"][:12])
        return 0
    if command == "inspect":
        found = [find(state, ref) for ref in args if not ref.startswith("-")]
        if None in found:
            print("Error: no such object", file=sys.stderr)
            return 1
        print(json.dumps([{"Id": c["Id"], "Name": "/" + c["Name"], "Created": c["Created"],
                           "State": {"Status": c["Status"]}, "Config": c["Config"]} for c in found]))
        return 0
    if command == "run":
        fail_after = os.environ.get("FAKE_ENGINE_FAIL_RUN_AFTER")
        if os.environ.get("FAKE_ENGINE_FAIL_RUN") or (fail_after is not None and state["runs"] >= int(fail_after)):
            print("Error: fake engine: image pull failed (FAKE_ENGINE_FAIL_RUN)", file=sys.stderr)
            return 125
        name, labels, i = None, {}, 0
        while i < len(args) and args[i].startswith("-"):
            flag = args[i]
            if flag in VALUE_FLAGS:
                value = args[i + 1]
                if flag == "--name":
                    name = value
                elif flag in ("--label", "-l"):
                    key, _, val = value.partition("=")
                    labels[key] = val
                i += 2
            else:
                i += 1
        image, command_args = args[i], args[i + 1:]
        if name is None or find(state, name):
            print(f"Error: the container name {name!r} is already in use", file=sys.stderr)
            return 125
        cid = secrets.token_hex(32)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        state["containers"][cid] = {"Id": cid, "Name": name, "Created": now, "Status": "running", "Image": image,
                                    "Args": command_args, "Config": {"Labels": labels}}
        state["runs"] += 1
        save(state)
        print(cid)
        return 0
    if command == "exec":
        flags = [a for a in args if a.startswith("-")]
        rest = [a for a in args if not a.startswith("-")]
        if not rest or not find(state, rest[0]):
            print("Error: no such container", file=sys.stderr)
            return 1
        if "-i" in flags:
            log({"exec_stdin": sys.stdin.read(), "container": rest[0]})
        return 0
    if command == "kill":
        c = find(state, args[-1]) if args else None
        if c is None or c["Status"] != "running":
            print("Error: no such running container", file=sys.stderr)
            return 1
        c["Status"] = "exited"
        save(state)
        return 0
    if command == "rm":
        status = 0
        for ref in (a for a in args if not a.startswith("-")):
            c = find(state, ref)
            if c is None:
                print(f"Error: No such container: {ref}", file=sys.stderr)
                status = 1
            else:
                del state["containers"][c["Id"]]
        save(state)
        return status
    print(f"fake engine: unsupported command {argv!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
