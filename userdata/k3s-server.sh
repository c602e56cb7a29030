#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# kscaler on a k3s server (see userdata/README.md).
#   install  (once, from cloud-init) installs the k3s server from the AMI's installer as node
#            <instance-id> (provider id aws:///<az>/<instance-id>) with an agent token of its own,
#            generated here into /etc/rancher/k3s/agent-token (0600): the token workers read from
#            SSM joins agents, never servers. Then it starts kscaler-publish-join.service.
#   publish  (every boot, kscaler-publish-join.service) waits, bounded, for k3s to write the agent
#            token and puts it (SecureString) and the server URL (String) into SSM. Workers retry
#            their join until the API answers, so the token existing is enough.
# The token goes from k3s' file into a 0600 request body on tmpfs and on to curl's stdin.
set -euo pipefail
KSCALER_COMPONENT="k3s-server-${1:-}"
KSCALER_ROOT=${KSCALER_ROOT:-} # tests only: prefix of every file read or written
set -a
# shellcheck source=/dev/null
. "$KSCALER_ROOT/etc/kscaler/server.env"
set +a
# shellcheck source=lib/kscaler-boot.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-boot.sh"
# shellcheck source=lib/kscaler-server.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-server.sh"

agent_secret=/etc/rancher/k3s/agent-token
agent_token=$KSCALER_ROOT/var/lib/rancher/k3s/server/agent-token
config=$KSCALER_ROOT/etc/rancher/k3s/config.yaml.d/50-kscaler.yaml

install() {
  local installer=${KSCALER_K3S_INSTALL:-/usr/local/bin/k3s-install.sh}
  [ -x "$installer" ] || kscaler_die "no k3s installer at $installer: bake k3s and its installer into the AMI"
  mkdir -p "${config%/*}"
  kscaler_server_py secret "$KSCALER_ROOT$agent_secret"
  printf 'node-name: "%s"\nagent-token-file: "%s"\nwrite-kubeconfig-mode: "0600"\nnode-label+:\n  - "kscaler.io/cluster=%s"\nkubelet-arg+:\n  - "provider-id=aws:///%s/%s"\n' \
    "$KSCALER_INSTANCE_ID" "$agent_secret" "$KSCALER_CLUSTER" "$KSCALER_AZ" "$KSCALER_INSTANCE_ID" > "$config"
  kscaler_log "installing the k3s server $KSCALER_INSTANCE_ID of cluster $KSCALER_CLUSTER"
  INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC=server "$installer"
  systemctl enable --now --no-block kscaler-publish-join.service
}

agent_token_written() {
  [ -s "$agent_token" ] || { KSCALER_LAST_ERROR="k3s has not written $agent_token yet"; return 1; }
}

publish_parameters() {
  kscaler_load_role_credentials || return 1
  if [ "$KSCALER_PUBLISH_SERVER_URL" = true ]; then
    kscaler_ssm_put "$KSCALER_SERVER_URL_PARAMETER" String <<< "$server_url" || return 1
  fi
  kscaler_ssm_put "$KSCALER_TOKEN_PARAMETER" SecureString < "$agent_token"
}

publish() {
  kscaler_wait_for "the k3s agent token" agent_token_written
  server_url=$(kscaler_server_url)
  kscaler_wait_for "publishing to SSM" publish_parameters
  kscaler_log "published $KSCALER_TOKEN_PARAMETER (URL $server_url, published: $KSCALER_PUBLISH_SERVER_URL)"
}

[[ ${1:-} =~ ^(install|publish)$ ]] || kscaler_die "usage: kscaler-k3s-server install|publish"
kscaler_server_settings
kscaler_init
kscaler_wait_for "instance metadata" kscaler_load_identity
"$1"
