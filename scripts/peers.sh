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
    # The first three requests are unauthenticated (they create the IAM user and its key);
    # every request after them must carry a valid SigV4 signature.
    # Served one request at a time: moto's conditional writes are atomic only then, as
    # DynamoDB's always are (see scripts/moto_server_serial.py).
    INITIAL_NO_AUTH_ACTION_COUNT=6 "$venv/bin/python" scripts/moto_server_serial.py 0 > "$state/moto.log" 2>&1 &
    echo $! > "$state/moto.pid"
    local port="" i
    for i in $(seq 1 200); do
        port=$(sed -n 's/.*Running on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$state/moto.log" | head -n1)
        [ -n "$port" ] && curl -s -o /dev/null "http://127.0.0.1:$port/moto-api/" && break
        sleep 0.05
    done
    [ -n "$port" ] || { echo "peers: moto did not start; log:" >&2; cat "$state/moto.log" >&2; exit 1; }
    local endpoint="http://127.0.0.1:$port"
    "$venv/bin/python" - "$endpoint" > "$state/env" <<'PY'
import sys, json, urllib.request, urllib.parse
endpoint = sys.argv[1]
def iam(params):
    # Unsigned requests are accepted while moto's no-auth allowance lasts; moto routes IAM by path.
    body = urllib.parse.urlencode({**params, "Version": "2010-05-08"}).encode()
    req = urllib.request.Request(endpoint + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=bootstrap/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"})
    return urllib.request.urlopen(req).read().decode()
import re
def user(name, actions):
    iam({"Action": "CreateUser", "UserName": name})
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam({"Action": "PutUserPolicy", "UserName": name, "PolicyName": "p", "PolicyDocument": json.dumps(policy)})
    out = iam({"Action": "CreateAccessKey", "UserName": name})
    return re.search(r"<AccessKeyId>(.*?)</AccessKeyId>", out).group(1), re.search(r"<SecretAccessKey>(.*?)</SecretAccessKey>", out).group(1)
ak, sk = user("kscaler-tests", "*")
lak, lsk = user("kscaler-readonly", ["dynamodb:Describe*", "dynamodb:Get*", "dynamodb:Query", "ec2:Describe*", "ssm:Get*", "sts:GetCallerIdentity"])
print(f"export KSTEST_MOTO_ENDPOINT={endpoint}")
print(f"export KSTEST_AWS_ACCESS_KEY_ID={ak}")
print(f"export KSTEST_AWS_SECRET_ACCESS_KEY={sk}")
print(f"export KSTEST_AWS_LIMITED_ACCESS_KEY_ID={lak}")
print(f"export KSTEST_AWS_LIMITED_SECRET_ACCESS_KEY={lsk}")
PY
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
