#!/usr/bin/env bash
# Starts and stops the real peers the tests talk to, on 127.0.0.1 only:
#   moto server (DynamoDB, EC2, SSM, STS, IAM) with SigV4 signature checking ON, serving one
#   request at a time so that conditional writes are atomic, as DynamoDB's are.
# Prometheus and the Pushgateway are started per test by the tests themselves (they need
# per-test configs); this script only checks their binaries exist.
#
#   scripts/peers.sh start   # writes .peers/env (source it) and .peers/moto.pid
#   scripts/peers.sh stop
#
# .peers/env exports:
#   KSTEST_MOTO_ENDPOINT           http://127.0.0.1:<port>
#   KSTEST_AWS_ACCESS_KEY_ID       an IAM user's key in moto (policy: allow all)
#   KSTEST_AWS_SECRET_ACCESS_KEY
#   KSTEST_AWS_LIMITED_ACCESS_KEY_ID / _SECRET_ACCESS_KEY   a user that may only read (Describe*/Get*)
set -euo pipefail
cd "$(dirname "$0")/.."
state=.peers
venv=${KSCALER_VENV:-.venv}

start() {
    mkdir -p "$state"
    "$venv/bin/python" -c 'import moto.server' 2>/dev/null || { echo "peers: moto is not installed in $venv: run scripts/install-deps.sh" >&2; exit 1; }
    stop_quietly
    # infra/local/ksandbox/peers.py starts moto for the sandbox and the benchmark too: every
    # request after the few unauthenticated ones that create the two users and their keys must
    # carry a valid SigV4 signature, and moto serves one request at a time, so that conditional
    # writes are atomic, as DynamoDB's always are (see scripts/moto_server_serial.py).
    local endpoint
    endpoint=$(PYTHONPATH=infra/local "$venv/bin/python" -m ksandbox.peers moto "$state") \
        || { echo "peers: moto did not start (see $state/moto.log)" >&2; exit 1; }
    echo "peers: moto on $endpoint (signature checking on); env in $state/env" >&2
}

stop_quietly() {
    if [ -f "$state/moto.pid" ]; then
        kill "$(cat "$state/moto.pid")" 2>/dev/null || true
        rm -f "$state/moto.pid"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop_quietly ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
