# shellcheck shell=bash
# kscaler boot library: IMDSv2, instance-role credentials, SSM signed by curl --aws-sigv4.
# Secrets never reach argv or logs: credentials reach curl in 0600 config files (-K), bodies
# via stdin, values land in 0600 files. userdata/README.md explains the settings.
KSCALER_IMDS_ENDPOINT=${KSCALER_IMDS_ENDPOINT:-http://169.254.169.254}
KSCALER_MAX_WAIT_SECONDS=${KSCALER_MAX_WAIT_SECONDS:-900}

kscaler_log() { printf '%(%FT%T%z)T kscaler-%s: %s\n' -1 "$KSCALER_COMPONENT" "$*" >&2; }
kscaler_die() { kscaler_log "error: $*"; exit 1; }
kscaler_py() { python3 -c "$KSCALER_PY" "$@"; }

# A private tmpfs directory for curl configs, requests and responses, removed on exit.
kscaler_init() {
  umask 077
  KSCALER_RUN_DIR=$(mktemp -d "${TMPDIR:-/run}/kscaler.XXXXXX")
  trap 'rm -rf "$KSCALER_RUN_DIR"' EXIT
}

# kscaler_wait_for WHAT COMMAND...: retries with backoff 1, 2, 4 … 30 s plus jitter for at most
# KSCALER_MAX_WAIT_SECONDS; COMMAND says why it failed in KSCALER_LAST_ERROR.
kscaler_wait_for() {
  local what=$1 delay=1 attempt=1 started=$SECONDS
  shift
  until KSCALER_LAST_ERROR=failed && "$@"; do
    if (( SECONDS - started + delay > KSCALER_MAX_WAIT_SECONDS )); then
      kscaler_die "gave up on $what after $(( SECONDS - started ))s: $KSCALER_LAST_ERROR"
    fi
    kscaler_log "$what: attempt $attempt: $KSCALER_LAST_ERROR; retrying in ${delay}s"
    sleep "$delay.$(( RANDOM % 10 ))"
    attempt=$(( attempt + 1 ))
    delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
  done
}

kscaler_imds() {
  curl -fsS --max-time 2 -K "$KSCALER_RUN_DIR/imds.curlrc" "$KSCALER_IMDS_ENDPOINT/latest/meta-data/$1" 2>/dev/null
}

# A fresh IMDSv2 session token into the curl config kscaler_imds uses.
kscaler_imds_login() {
  local token
  token=$(curl -fsS --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 900' \
    "$KSCALER_IMDS_ENDPOINT/latest/api/token" 2>/dev/null) || return 1
  [[ $token =~ ^[A-Za-z0-9+/=_-]+$ ]] || return 1
  printf 'header = "X-aws-ec2-metadata-token: %s"\n' "$token" > "$KSCALER_RUN_DIR/imds.curlrc"
}

# Sets KSCALER_INSTANCE_ID, KSCALER_AZ, KSCALER_REGION and KSCALER_SSM_ENDPOINT.
kscaler_load_identity() {
  KSCALER_LAST_ERROR="instance metadata unavailable"
  kscaler_imds_login || return 1
  KSCALER_INSTANCE_ID=$(kscaler_imds instance-id) || return 1
  KSCALER_AZ=$(kscaler_imds placement/availability-zone) || return 1
  KSCALER_REGION=$(kscaler_imds placement/region) || return 1
  [[ $KSCALER_INSTANCE_ID =~ ^i-[0-9a-f]+$ && $KSCALER_AZ =~ ^[a-z0-9-]+$ && $KSCALER_REGION =~ ^[a-z0-9-]+$ ]] || return 1
  local domain=amazonaws.com
  [[ $KSCALER_REGION != cn-* ]] || domain=amazonaws.com.cn
  KSCALER_SSM_ENDPOINT=${KSCALER_SSM_ENDPOINT:-https://ssm.$KSCALER_REGION.$domain}
}

# The instance profile's credentials into a curl config: user AK:SK and the session token header.
kscaler_load_role_credentials() {
  local role
  KSCALER_LAST_ERROR="no instance profile credentials"
  kscaler_imds_login || return 1
  role=$(kscaler_imds iam/security-credentials/) || return 1
  kscaler_imds "iam/security-credentials/${role%%$'\n'*}" | kscaler_py credentials 2>/dev/null > "$KSCALER_RUN_DIR/aws.curlrc"
}

# kscaler_ssm OPERATION < body: a signed SSM call; the response lands in $KSCALER_RUN_DIR/response.
kscaler_ssm() {
  local status
  status=$(curl -sS --max-time 10 -o "$KSCALER_RUN_DIR/response" -w '%{http_code}' \
    -K "$KSCALER_RUN_DIR/aws.curlrc" --aws-sigv4 "aws:amz:$KSCALER_REGION:ssm" \
    -H 'Content-Type: application/x-amz-json-1.1' -H "X-Amz-Target: AmazonSSM.$1" \
    --data-binary @- "$KSCALER_SSM_ENDPOINT/") || { KSCALER_LAST_ERROR="SSM $1: no answer"; return 1; }
  [ "$status" = 200 ] || { KSCALER_LAST_ERROR="SSM $1: HTTP $status $(kscaler_py error < "$KSCALER_RUN_DIR/response")"; return 1; }
}

# kscaler_ssm_get NAME FILE: the decrypted value of parameter NAME (a checked name: no JSON
# escaping needed) into FILE (0600).
kscaler_ssm_get() {
  kscaler_ssm GetParameter <<< "{\"Name\":\"$1\",\"WithDecryption\":true}" || { KSCALER_LAST_ERROR+=" for $1"; return 1; }
  kscaler_py value "$2" < "$KSCALER_RUN_DIR/response"
}


kscaler_check_url() {
  [[ $1 =~ ^https://[A-Za-z0-9.-]+(:[0-9]+)?/?$ ]] || kscaler_die "server URL '$1' is not https://host[:port]"
}

# Settings shared by every script (worker.env or server.env), checked before any work.
kscaler_cluster_settings() {
  [[ ${KSCALER_CLUSTER:-} =~ ^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$ ]] || kscaler_die "KSCALER_CLUSTER must be 1-40 of [a-z0-9-]"
  KSCALER_TOKEN_PARAMETER=${KSCALER_TOKEN_PARAMETER:-/kscaler/$KSCALER_CLUSTER/join-token}
  KSCALER_SERVER_URL_PARAMETER=${KSCALER_SERVER_URL_PARAMETER:-/kscaler/$KSCALER_CLUSTER/server-url}
  KSCALER_CA_CERT_HASH_PARAMETER=${KSCALER_CA_CERT_HASH_PARAMETER:-/kscaler/$KSCALER_CLUSTER/ca-cert-hash}
  local name
  for name in "$KSCALER_TOKEN_PARAMETER" "$KSCALER_SERVER_URL_PARAMETER" "$KSCALER_CA_CERT_HASH_PARAMETER"; do
    [[ $name =~ ^/[A-Za-z0-9_./-]+$ ]] || kscaler_die "SSM parameter name '$name' must be /[A-Za-z0-9_./-]+"
  done
}

read -r -d '' KSCALER_PY <<'PY' || true
import json, os, re, sys
cmd, args = sys.argv[1], sys.argv[2:]
quote = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
if cmd == "credentials":
  c = json.load(sys.stdin)
  print("user = " + quote(c["AccessKeyId"] + ":" + c["SecretAccessKey"]))
  print("header = " + quote("X-Amz-Security-Token: " + c["Token"]))
elif cmd == "value":
  with open(os.open(args[0] + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    f.write(json.load(sys.stdin)["Parameter"]["Value"].strip() + "\n")
  os.replace(args[0] + ".new", args[0])
elif cmd == "error":
  body = sys.stdin.read()
  m = re.search(r'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"', body) or re.search(r"<Code>([^<]+)</Code>", body)
  print(m.group(1) if m else "")
PY
