#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# kscaler kubeadm worker bootstrap (run once by cloud-init; see userdata/README.md): reads the
# bootstrap token, CA cert hash and API server URL from SSM with the instance role and runs
# kubeadm join as node <instance-id>, provider id aws:///<az>/<instance-id>, with the pool's
# labels and taints and graceful node shutdown (a kubeletconfiguration patch). The token only
# sits in a 0600 JoinConfiguration on tmpfs, removed on exit. kubeadm comes from the AMI.
set -euo pipefail
KSCALER_COMPONENT='kubeadm-worker'
KSCALER_ROOT=${KSCALER_ROOT:-} # tests only: prefix of every file read or written
set -a
# shellcheck source=/dev/null
. "$KSCALER_ROOT/etc/kscaler/worker.env"
set +a
# shellcheck source=lib/kscaler-boot.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-boot.sh"
# shellcheck source=lib/kscaler-worker.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-worker.sh"

patches=/etc/kscaler/kubeadm-patches

fetch_join_parameters() {
  kscaler_load_role_credentials \
    && kscaler_ssm_get "$KSCALER_SERVER_URL_PARAMETER" "$KSCALER_RUN_DIR/server-url" \
    && kscaler_ssm_get "$KSCALER_CA_CERT_HASH_PARAMETER" "$KSCALER_RUN_DIR/ca-cert-hash" \
    && kscaler_ssm_get "$KSCALER_TOKEN_PARAMETER" "$KSCALER_RUN_DIR/token"
}

taints() {
  local taint key value
  (( ${#KSCALER_TAINTS[@]} )) || { printf '  taints: []\n'; return; }
  printf '  taints:\n'
  for taint in "${KSCALER_TAINTS[@]}"; do
    key=${taint%:*} value=
    if [[ $key == *=* ]]; then value=${key#*=} key=${key%%=*}; fi
    printf '  - key: "%s"\n    value: "%s"\n    effect: "%s"\n' "$key" "$value" "${taint##*:}"
  done
}

kscaler_worker_settings
# kubeadm.k8s.io/v1beta4 lists kubelet arguments as name/value pairs, v1beta3 as a map.
case ${KSCALER_KUBEADM_API_VERSION:-v1beta4} in
  v1beta4) api=v1beta4 kubelet_arg='  - name: "%s"\n    value: "%s"\n' ;;
  v1beta3) api=v1beta3 kubelet_arg='    "%s": "%s"\n' ;;
  *) kscaler_die "KSCALER_KUBEADM_API_VERSION must be v1beta4 or v1beta3" ;;
esac
kubeadm=${KSCALER_KUBEADM:-kubeadm}
command -v "$kubeadm" >/dev/null || kscaler_die "no $kubeadm: bake kubeadm, the kubelet and a container runtime into the AMI"
kscaler_init
kscaler_wait_for "instance metadata" kscaler_load_identity
kscaler_wait_for "instance metadata" kscaler_label_instance_type
provider_id="aws:///$KSCALER_AZ/$KSCALER_INSTANCE_ID"
kscaler_log "node $KSCALER_INSTANCE_ID ($provider_id), pool $KSCALER_POOL"
kscaler_wait_for "join parameters" fetch_join_parameters
server_url=$(<"$KSCALER_RUN_DIR/server-url")
kscaler_check_url "$server_url"
endpoint=${server_url#https://}
endpoint=${endpoint%/}
[[ $endpoint == *:* ]] || endpoint+=:443
[[ $(<"$KSCALER_RUN_DIR/token") =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || kscaler_die "$KSCALER_TOKEN_PARAMETER holds no kubeadm bootstrap token"
[[ $(<"$KSCALER_RUN_DIR/ca-cert-hash") =~ ^sha256:[0-9a-f]{64}$ ]] || kscaler_die "$KSCALER_CA_CERT_HASH_PARAMETER is not sha256:<64 hex>"
labels=$(IFS=,; printf '%s' "${KSCALER_LABELS[*]}")

mkdir -p "$KSCALER_ROOT$patches"
printf 'shutdownGracePeriod: %ss\nshutdownGracePeriodCriticalPods: %ss\n' "$KSCALER_GRACE" "$KSCALER_GRACE_CRITICAL" \
  > "$KSCALER_ROOT$patches/kubeletconfiguration+merge.yaml"
chmod 0644 "$KSCALER_ROOT$patches/kubeletconfiguration+merge.yaml"
kscaler_write_logind_dropin
join_config=$KSCALER_RUN_DIR/join.yaml
{
  printf 'apiVersion: kubeadm.k8s.io/%s\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n' "$api"
  printf '    apiServerEndpoint: "%s"\n    token: "%s"\n' "$endpoint" "$(<"$KSCALER_RUN_DIR/token")"
  printf '    caCertHashes:\n    - "%s"\n' "$(<"$KSCALER_RUN_DIR/ca-cert-hash")"
  printf 'nodeRegistration:\n  name: "%s"\n  kubeletExtraArgs:\n' "$KSCALER_INSTANCE_ID"
  # shellcheck disable=SC2059 # the format is one of the two above
  printf "$kubelet_arg" provider-id "$provider_id" node-labels "$labels"
  taints
  printf 'patches:\n  directory: "%s"\n' "$patches"
} > "$join_config"
kscaler_log "kubeadm join $endpoint"
"$kubeadm" join --config "$join_config"
kscaler_log "$KSCALER_INSTANCE_ID joined $endpoint"
