# shellcheck shell=bash
# kscaler server-side helpers, sourced after kscaler-boot.sh by the scripts that publish the
# join parameters from a k3s server or kubeadm control plane (settings: /etc/kscaler/server.env).

kscaler_server_settings() {
  kscaler_cluster_settings
  KSCALER_PUBLISH_SERVER_URL=${KSCALER_PUBLISH_SERVER_URL:-true}
  [[ $KSCALER_PUBLISH_SERVER_URL =~ ^(true|false)$ ]] || kscaler_die "KSCALER_PUBLISH_SERVER_URL must be true or false"
}

# The URL workers join: KSCALER_SERVER_URL (a load balancer or DNS name) or https://<private IPv4>:6443.
kscaler_server_url() {
  local ip
  if [ -n "${KSCALER_SERVER_URL:-}" ]; then
    kscaler_check_url "$KSCALER_SERVER_URL"
    printf '%s\n' "$KSCALER_SERVER_URL"
  elif kscaler_imds_login && ip=$(kscaler_imds local-ipv4) && [[ $ip =~ ^[0-9.]+$ ]]; then
    printf 'https://%s:6443\n' "$ip"
  else
    kscaler_die "no private IPv4 in instance metadata; set KSCALER_SERVER_URL"
  fi
}

# kscaler_ssm_put NAME TYPE < value: stores a String or SecureString, overwriting.
kscaler_ssm_put() {
  kscaler_server_py put "$1" "$2" > "$KSCALER_RUN_DIR/request"
  kscaler_ssm PutParameter < "$KSCALER_RUN_DIR/request" || { KSCALER_LAST_ERROR+=" for $1"; return 1; }
}

# kscaler_ssm_age NAME: sets KSCALER_AGE to the seconds since NAME last changed, "" if it is missing.
kscaler_ssm_age() {
  kscaler_server_py metadata-request "$1" > "$KSCALER_RUN_DIR/request"
  if kscaler_ssm GetParameter < "$KSCALER_RUN_DIR/request"; then
    KSCALER_AGE=$(kscaler_server_py age < "$KSCALER_RUN_DIR/response")
  elif [[ $KSCALER_LAST_ERROR == *ParameterNotFound* ]]; then
    # shellcheck disable=SC2034 # read by the sourcing script
    KSCALER_AGE=
  else
    return 1
  fi
}

kscaler_server_py() { python3 -c "$KSCALER_SERVER_PY" "$@"; }

read -r -d '' KSCALER_SERVER_PY <<'PY' || true
import json, os, sys, time
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "put":
  print(json.dumps({"Name": args[0], "Type": args[1], "Value": sys.stdin.read().strip(), "Overwrite": True}))
elif cmd == "metadata-request":
  print(json.dumps({"Name": args[0], "WithDecryption": False}))
elif cmd == "age":
  print(int(time.time() - float(json.load(sys.stdin)["Parameter"]["LastModifiedDate"])))
elif cmd == "secret" and not os.path.exists(args[0]):
  with open(os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
    f.write(os.urandom(32).hex() + "\n")
PY
