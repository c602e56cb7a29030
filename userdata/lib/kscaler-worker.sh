# shellcheck shell=bash
# kscaler worker helpers, sourced after kscaler-boot.sh by the k3s and kubeadm worker bootstraps
# (settings: /etc/kscaler/worker.env).

# Worker settings: KSCALER_LABELS (kscaler.io/cluster, kscaler.io/pool, then the pool's),
# KSCALER_TAINTS, grace seconds. A charset check keeps the YAML safe; the renderer checks syntax.
kscaler_worker_settings() {
  kscaler_cluster_settings
  local item items key='[A-Za-z0-9][A-Za-z0-9./_-]*' value='[A-Za-z0-9._-]*'
  KSCALER_POOL=${KSCALER_POOL:-default}
  [[ $KSCALER_POOL =~ ^$value$ ]] || kscaler_die "KSCALER_POOL '$KSCALER_POOL' is not a label value"
  KSCALER_LABELS=("kscaler.io/cluster=$KSCALER_CLUSTER" "kscaler.io/pool=$KSCALER_POOL")
  IFS=, read -ra items <<< "${KSCALER_NODE_LABELS:-}"
  for item in "${items[@]}"; do
    [[ $item =~ ^$key=$value$ && $item != kscaler.io/* ]] || kscaler_die "node label '$item' is not key=value outside kscaler.io/"
    KSCALER_LABELS+=("$item")
  done
  IFS=, read -ra KSCALER_TAINTS <<< "${KSCALER_NODE_TAINTS:-}"
  for item in "${KSCALER_TAINTS[@]}"; do
    [[ $item =~ ^$key(=$value)?:(NoSchedule|PreferNoSchedule|NoExecute)$ ]] || kscaler_die "node taint '$item' is not key[=value]:effect"
  done
  KSCALER_GRACE=${KSCALER_SHUTDOWN_GRACE_SECONDS:-45}
  KSCALER_GRACE_CRITICAL=${KSCALER_SHUTDOWN_GRACE_CRITICAL_SECONDS:-15}
  [[ $KSCALER_GRACE =~ ^[0-9]+$ && $KSCALER_GRACE_CRITICAL =~ ^[0-9]+$ ]] || kscaler_die "grace periods must be seconds"
  (( KSCALER_GRACE_CRITICAL < KSCALER_GRACE )) || kscaler_die "the critical pods' grace period must be shorter than the total"
}

# logind must let the kubelet's shutdown inhibitor hold poweroff for the whole grace period.
kscaler_write_logind_dropin() {
  local file=${KSCALER_ROOT:-}/etc/systemd/logind.conf.d/50-kscaler.conf
  mkdir -p "${file%/*}"
  printf '[Login]\nInhibitDelayMaxSec=%s\n' $(( KSCALER_GRACE + 5 )) > "$file"
  chmod 0644 "$file"
  systemctl kill --signal=SIGHUP systemd-logind.service || kscaler_log "warning: systemd-logind not reloaded"
}

# Adds the node.kubernetes.io/instance-type label from IMDS, as a cloud provider would set it:
# kscaler learns each instance type's allocatable from its Ready nodes by this label. (k3s's
# stub cloud provider keeps a kubelet-set value since v1.29.3; older k3s overwrites it with
# "k3s", and kscaler then estimates the size from EC2 instead.) Needs kscaler_load_identity.
kscaler_label_instance_type() {
  local type
  type=$(kscaler_imds instance-type) || return 1
  [[ $type =~ ^[a-z0-9][a-z0-9.-]*$ ]] || return 1
  KSCALER_LABELS+=("node.kubernetes.io/instance-type=$type")
}
