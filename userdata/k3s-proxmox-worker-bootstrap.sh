#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# kscaler k3s worker bootstrap on Proxmox VE (run once by cloud-init; see userdata/README.md):
# the VM is named kscaler-<cluster>-<vmid> by kscaler and cloud-init makes that its hostname, so
# the node is named after it with provider id proxmox://<proxmox cluster>/<vmid>. The server URL
# and join token are files `server-url` and `join-token` on the join drive (a read-only volume
# labelled kscaler-join attached to the template, cloned with it), else in KSCALER_JOIN_DIR
# (default /etc/kscaler/join, for images that get them another way). No SSM, no IMDS.
# On disk the token sits in /etc/kscaler/join-token (0600; k3s reads it as token-file).
set -euo pipefail
KSCALER_COMPONENT='k3s-proxmox-worker'
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
join_dir=${KSCALER_JOIN_DIR:-$KSCALER_ROOT/etc/kscaler/join}

# The join drive, mounted read-only in the private run directory; else KSCALER_JOIN_DIR.
find_join_files() {
  local device
  if device=$(blkid -L kscaler-join 2>/dev/null) && [ -n "$device" ]; then
    mkdir -p "$KSCALER_RUN_DIR/join"
    mountpoint -q "$KSCALER_RUN_DIR/join" || mount -o ro "$device" "$KSCALER_RUN_DIR/join" \
      || { KSCALER_LAST_ERROR="cannot mount $device"; return 1; }
    join_dir=$KSCALER_RUN_DIR/join
  fi
  if [ ! -s "$join_dir/server-url" ] || [ ! -s "$join_dir/join-token" ]; then
    KSCALER_LAST_ERROR="no server-url and join-token on a drive labelled kscaler-join or in $join_dir"
    return 1
  fi
}

installer=${KSCALER_K3S_INSTALL:-/usr/local/bin/k3s-install.sh}
install_k3s_agent() {
  if [ -x "$installer" ]; then
    INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=agent "$installer"
    return
  fi
  kscaler_log "no $installer in the image; downloading $KSCALER_K3S_INSTALL_URL"
  curl -fsSL --retry 5 --max-time 60 -o "$KSCALER_RUN_DIR/install.sh" "$KSCALER_K3S_INSTALL_URL" || kscaler_die "download failed"
  if [ -n "${KSCALER_K3S_INSTALL_SHA256:-}" ]; then
    sha256sum -c --quiet - <<< "$KSCALER_K3S_INSTALL_SHA256  $KSCALER_RUN_DIR/install.sh" || kscaler_die "installer checksum mismatch"
  fi
  INSTALL_K3S_VERSION=${KSCALER_K3S_VERSION:-} INSTALL_K3S_EXEC=agent sh "$KSCALER_RUN_DIR/install.sh"
}

kscaler_worker_settings
[[ ${KSCALER_PROXMOX_CLUSTER:-} =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,38}[A-Za-z0-9])?$ ]] \
  || kscaler_die "KSCALER_PROXMOX_CLUSTER must be the Proxmox cluster name of fleet.proxmox.cluster_name"
[ -x "$installer" ] || [ -n "${KSCALER_K3S_INSTALL_URL:-}" ] \
  || kscaler_die "no k3s installer at $installer: bake it into the image or set KSCALER_K3S_INSTALL_URL"
node_name=$(<"$KSCALER_ROOT/proc/sys/kernel/hostname")
node_name=${node_name%%.*}
[[ $node_name =~ ^kscaler-$KSCALER_CLUSTER-([0-9]+)$ ]] \
  || kscaler_die "hostname '$node_name' is not kscaler-$KSCALER_CLUSTER-<vmid>: is this VM a clone kscaler made?"
provider_id="proxmox://$KSCALER_PROXMOX_CLUSTER/${BASH_REMATCH[1]}"
kscaler_init
kscaler_log "node $node_name ($provider_id), pool $KSCALER_POOL"
mkdir -p "$KSCALER_ROOT${token_file%/*}" "${config%/*}" "${kubelet_dropin%/*}"
kscaler_wait_for "join files" find_join_files
server_url=$(<"$join_dir/server-url")
kscaler_check_url "$server_url"
# The token goes file to file through the shell (printf is a builtin): never in an argv.
token=$(<"$join_dir/join-token")
printf '%s\n' "$token" > "$KSCALER_ROOT$token_file"
unset token
chmod 0600 "$KSCALER_ROOT$token_file"

{
  printf 'server: "%s"\ntoken-file: "%s"\nnode-name: "%s"\nnode-label+:\n' "$server_url" "$token_file" "$node_name"
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
kscaler_log "k3s agent installed; $node_name joins $server_url"
