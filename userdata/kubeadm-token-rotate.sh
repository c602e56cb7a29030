#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# kscaler kubeadm join-token rotation, run every 10 minutes on a control-plane node by
# kscaler-kubeadm-token-rotate.timer (see userdata/README.md). When the token in SSM is missing
# or older than KSCALER_ROTATE_AFTER_MINUTES (60) it creates a bootstrap token that lives
# KSCALER_TOKEN_TTL_MINUTES (120) and publishes it with the CA cert hash and the API server URL.
# A replaced token stays valid for at least 50 more minutes, so a worker that read it just before
# still joins. Several control-plane nodes may run this: each skips while the token is fresh.
# The token goes from kubeadm's stdout into a 0600 file on tmpfs and on to curl's stdin.
set -euo pipefail
KSCALER_COMPONENT='kubeadm-token-rotate'
KSCALER_ROOT=${KSCALER_ROOT:-} # tests only: prefix of every file read or written
set -a
# shellcheck source=/dev/null
. "$KSCALER_ROOT/etc/kscaler/server.env"
set +a
# shellcheck source=lib/kscaler-boot.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-boot.sh"
# shellcheck source=lib/kscaler-server.sh
. "$KSCALER_ROOT/usr/local/lib/kscaler/kscaler-server.sh"

admin_conf=$KSCALER_ROOT/etc/kubernetes/admin.conf
ca_cert=$KSCALER_ROOT/etc/kubernetes/pki/ca.crt

read_token_age() {
  kscaler_load_role_credentials && kscaler_ssm_age "$KSCALER_TOKEN_PARAMETER"
}

publish() {
  kscaler_load_role_credentials || return 1
  if [ "$KSCALER_PUBLISH_SERVER_URL" = true ]; then
    kscaler_ssm_put "$KSCALER_SERVER_URL_PARAMETER" String <<< "$server_url" || return 1
  fi
  kscaler_ssm_put "$KSCALER_CA_CERT_HASH_PARAMETER" String <<< "$ca_cert_hash" || return 1
  kscaler_ssm_put "$KSCALER_TOKEN_PARAMETER" SecureString < "$KSCALER_RUN_DIR/token"
}

kscaler_server_settings
ttl=${KSCALER_TOKEN_TTL_MINUTES:-120}
rotate_after=${KSCALER_ROTATE_AFTER_MINUTES:-60}
[[ $ttl =~ ^[0-9]+$ && $rotate_after =~ ^[0-9]+$ ]] || kscaler_die "token TTL and rotation age must be minutes"
(( ttl >= rotate_after + 30 )) || kscaler_die "KSCALER_TOKEN_TTL_MINUTES ($ttl) must be at least KSCALER_ROTATE_AFTER_MINUTES ($rotate_after) + 30"
kubeadm=${KSCALER_KUBEADM:-kubeadm}
if [ ! -f "$admin_conf" ]; then
  kscaler_log "no $admin_conf: kubeadm init has not run on this node yet; nothing to publish"
  exit 0
fi
kscaler_init
kscaler_wait_for "instance metadata" kscaler_load_identity
kscaler_wait_for "reading $KSCALER_TOKEN_PARAMETER" read_token_age
if [ -n "$KSCALER_AGE" ] && (( KSCALER_AGE < rotate_after * 60 )); then
  kscaler_log "the published token is $(( KSCALER_AGE / 60 )) min old; it is rotated after $rotate_after min"
  exit 0
fi

kscaler_log "creating a bootstrap token valid for $ttl min"
"$kubeadm" token create --kubeconfig "$admin_conf" --ttl "${ttl}m" \
  --description "kscaler worker join token ($KSCALER_TOKEN_PARAMETER)" > "$KSCALER_RUN_DIR/token"
[[ $(<"$KSCALER_RUN_DIR/token") =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]] || kscaler_die "kubeadm token create printed no bootstrap token"
ca_cert_hash=$(openssl x509 -pubkey -noout -in "$ca_cert" | openssl pkey -pubin -outform DER | sha256sum)
ca_cert_hash=sha256:${ca_cert_hash%% *}
server_url=$(kscaler_server_url)
kscaler_wait_for "publishing to SSM" publish
kscaler_log "rotated $KSCALER_TOKEN_PARAMETER; $KSCALER_CA_CERT_HASH_PARAMETER = $ca_cert_hash"
