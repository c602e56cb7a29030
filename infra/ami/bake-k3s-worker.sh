#!/bin/bash
# Bake k3s into a worker AMI: run as root on a fresh AL2023 or Debian instance, then stop it and
# `aws ec2 create-image` (infra/README.md, walk-through step 4). Installs the pinned k3s binary
# and the installer of the same release where the worker user data expects them
# (/usr/local/bin/k3s, /usr/local/bin/k3s-install.sh; userdata/README.md), so a booting worker
# downloads nothing. Every download is checked against a sha256 pinned below; a mismatch stops
# the script before anything is installed.
#
# DESTDIR=/some/root installs under that root instead of / (the tests use it).
set -euo pipefail

# The pins: the k3s sums are the release's sha256sum-amd64.txt / sha256sum-arm64.txt entries,
# the installer is install.sh at the release's commit. Change all of them together. They were
# taken from public pins of this release, not re-hashed from a download (the machine that wrote
# this reaches no GitHub): compare them with the release page once before your first bake.
K3S_VERSION=v1.36.4+k3s1
K3S_SHA256_AMD64=835873f37245fc615f547a2fe2af9402a347875f13fa64a1f136de644955ea3f
K3S_SHA256_ARM64=c920706346d5ad4e5cd3c7bf1bb09ce71ebe07fec829e513e40f1caf98aed8bb
K3S_INSTALL_COMMIT=4dedb15be78017a8ddd5b9e81acd44f3481078ed
K3S_INSTALL_SHA256=46177d4c99440b4c0311b67233823a8e8a2fc09693f6c89af1a7161e152fbfad

DESTDIR=${DESTDIR:-}
RELEASES=https://github.com/k3s-io/k3s/releases/download
RAW=https://raw.githubusercontent.com/k3s-io/k3s

die() { printf 'bake-k3s-worker: %s\n' "$*" >&2; exit 1; }

# BAKE_ARCH: the machine to bake for, by default this one's.
machine=${BAKE_ARCH:-$(uname -m)}
case "$machine" in
  x86_64 | amd64) asset=k3s; sum=$K3S_SHA256_AMD64 ;;
  aarch64 | arm64) asset=k3s-arm64; sum=$K3S_SHA256_ARM64 ;;
  *) die "unsupported machine $machine: k3s workers here are amd64 or arm64" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fetch URL FILE SHA256: download to FILE, refuse it unless its sha256 is the pinned one.
fetch() {
  local url=$1 file=$2 expected=$3 actual
  curl -fsSL --proto '=https' --retry 3 --max-time 300 -o "$file" "$url" || die "download failed: $url"
  actual=$(sha256sum "$file") || die "cannot hash $file"
  actual=${actual%% *}
  [ "$actual" = "$expected" ] \
    || die "checksum mismatch for $url: expected $expected, got $actual; nothing was installed"
}

# Both downloads are checked before either is installed.
fetch "$RELEASES/${K3S_VERSION//+/%2B}/$asset" "$work/k3s" "$sum"
fetch "$RAW/$K3S_INSTALL_COMMIT/install.sh" "$work/k3s-install.sh" "$K3S_INSTALL_SHA256"

install -d "$DESTDIR/usr/local/bin"
install -m 0755 "$work/k3s" "$DESTDIR/usr/local/bin/k3s"
install -m 0755 "$work/k3s-install.sh" "$DESTDIR/usr/local/bin/k3s-install.sh"
printf 'bake-k3s-worker: k3s %s (%s) and its installer are in %s/usr/local/bin\n' "$K3S_VERSION" "$asset" "$DESTDIR"
