#!/bin/bash
# kscaler-install URL SHA256: installs the kscaler binary on a server (optional part of the server
# user data) after checking its SHA-256. The timer is left off: run `kscaler plan` first, then
# `systemctl enable --now kscaler.timer` (infra/README.md).
set -euo pipefail
url=${1:?usage: kscaler-install URL SHA256}
sha256=${2:?usage: kscaler-install URL SHA256}
target=${KSCALER_ROOT:-}/usr/local/bin/kscaler # KSCALER_ROOT: tests only
[[ $sha256 =~ ^[0-9a-f]{64}$ ]] || { echo "kscaler-install: SHA256 must be 64 hex digits" >&2; exit 1; }
umask 022
curl -fsSL --retry 5 --max-time 120 -o "$target.new" "$url"
if ! sha256sum -c --quiet - <<< "$sha256  $target.new"; then
  rm -f "$target.new"
  echo "kscaler-install: $url does not match $sha256; not installed" >&2
  exit 1
fi
chmod 0755 "$target.new"
mv "$target.new" "$target"
echo "kscaler-install: installed $target from $url; next: kscaler plan, then systemctl enable --now kscaler.timer" >&2
