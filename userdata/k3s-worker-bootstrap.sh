#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# kscaler k3s worker bootstrap (run once by cloud-init; see userdata/README.md): reads the join
# token and server URL from SSM with the instance role and joins as node <instance-id>, provider
# id aws:///<az>/<instance-id>, with the pool's labels and taints and graceful node shutdown.
# On disk the token sits in /etc/kscaler/join-token (0600; k3s reads it as token-file) and,
# until the script ends, in a 0600 response file on tmpfs.
set -euo pipefail
KSCALER_COMPONENT='k3s-worker'
KSCALER_ROOT=${KSCALER_ROOT:-} # tests only: prefix of every file read or written
set -a
# shellcheck source=/dev/null
. "$KSCALER_ROOT/etc/kscaler/worker.env"
set +a
# shellcheck source=lib/kscaler-boot.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-boot.sh"
# shellcheck source=lib/kscaler-worker.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-worker.sh"

token_file=/etc/kscaler/join-token
config=$KSCALER_ROOT/etc/rancher/k3s/config.yaml.d/50-kscaler.yaml
kubelet_dropin=$KSCALER_ROOT/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/50-kscaler.conf

fetch_join_parameters() {
  kscaler_load_role_credentials \
    && kscaler_ssm_get "$KSCALER_SERVER_URL_PARAMETER" "$KSCALER_RUN_DIR/server-url" \
    && kscaler_ssm_get "$KSCALER_TOKEN_PARAMETER" "$KSCALER_ROOT$token_file"
}

# k3s and its installer come from the AMI: boot downloads nothing. KSCALER_K3S_INSTALL_URL is
# the opt-in fallback: the installer is downloaded to a file, checked, and downloads k3s.
installer=${KSCALER_K3S_INSTALL:-/usr/local/bin/k3s-install.sh}
install_k3s_agent() {
  if [ -x "$installer" ]; then
    INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=agent "$installer"
    return
  fi
  kscaler_log "no $installer in the AMI; downloading $KSCALER_K3S_INSTALL_URL"
  curl -fsSL --retry 5 --max-time 60 -o "$KSCALER_RUN_DIR/install.sh" "$KSCALER_K3S_INSTALL_URL" || kscaler_die "download failed"
  if [ -n "${KSCALER_K3S_INSTALL_SHA256:-}" ]; then
    sha256sum -c --quiet - <<< "$KSCALER_K3S_INSTALL_SHA256  $KSCALER_RUN_DIR/install.sh" || kscaler_die "installer checksum mismatch"
  fi
  INSTALL_K3S_VERSION=${KSCALER_K3S_VERSION:-} INSTALL_K3S_EXEC=agent sh "$KSCALER_RUN_DIR/install.sh"
}

kscaler_worker_settings
[ -x "$installer" ] || [ -n "${KSCALER_K3S_INSTALL_URL:-}" ] \
  || kscaler_die "no k3s installer at $installer: bake it into the AMI or set KSCALER_K3S_INSTALL_URL"
kscaler_init
kscaler_wait_for "instance metadata" kscaler_load_identity
kscaler_wait_for "instance metadata" kscaler_label_instance_type
provider_id="aws:///$KSCALER_AZ/$KSCALER_INSTANCE_ID"
kscaler_log "node $KSCALER_INSTANCE_ID ($provider_id), pool $KSCALER_POOL"
mkdir -p "$KSCALER_ROOT${token_file%/*}" "${config%/*}" "${kubelet_dropin%/*}"
kscaler_wait_for "join parameters" fetch_join_parameters
server_url=$(<"$KSCALER_RUN_DIR/server-url")
kscaler_check_url "$server_url"

{
  printf 'server: "%s"\ntoken-file: "%s"\nnode-name: "%s"\nnode-label+:\n' "$server_url" "$token_file" "$KSCALER_INSTANCE_ID"
  printf '  - "%s"\n' "${KSCALER_LABELS[@]}"
  if (( ${#KSCALER_TAINTS[@]} )); then
    printf 'node-taint+:\n'
    printf '  - "%s"\n' "${KSCALER_TAINTS[@]}"
  fi
  printf 'kubelet-arg+:\n  - "provider-id=%s"\n' "$provider_id"
} > "$config"
printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nshutdownGracePeriod: %ss\nshutdownGracePeriodCriticalPods: %ss\n' \
  "$KSCALER_GRACE" "$KSCALER_GRACE_CRITICAL" > "$kubelet_dropin"
chmod 0644 "$kubelet_dropin"
kscaler_write_logind_dropin
install_k3s_agent
kscaler_log "k3s agent installed; $KSCALER_INSTANCE_ID joins $server_url"
