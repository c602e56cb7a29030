#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test kscaler. Idempotent and quick
# when everything is present. Debian packages: libcurl headers (the HTTP layer), libssl headers
# (SigV4's SHA-256 and HMAC come from libcrypto), libyaml headers (the YAML layer), openssl (a
# TLS test peer), Prometheus and the Pushgateway (real peers), cloud-init (user-data schema),
# the shellcheck linter, jq and podman (the exec backend examples and their tests), what `make deb` and its test use (dpkg-dev for dpkg-shlibdeps, lintian,
# groff to render the manual page, zsh and fish to load the completions), and kubectl when
# there is none (Debian's kubernetes-client is kubectl
# 1.20; an existing kubectl, such as the CI image's Google Cloud dispatcher of kubectl 1.27 ...
# 1.33 that the stand-in API server's tests are grounded against, is never replaced). Python
# venv .venv: moto server (AWS peers; brings boto3 and PyYAML, which the sandbox uses), cfn-lint
# (CloudFormation), parliament (IAM policy linter, offline; pinned: the tests read its bundled
# Service Authorization Reference), pytest (shell-level and closed-loop tests).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(libcurl4-openssl-dev libssl-dev libyaml-dev pkg-config openssl prometheus prometheus-pushgateway cloud-init shellcheck curl python3-venv tzdata podman jq
              dpkg-dev lintian groff-base zsh fish)
command -v kubectl >/dev/null || apt_packages+=(kubernetes-client)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install-deps: apt-get install ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# grafana-foundation-sdk: Grafana's typed dashboard model, which infra/tests reads the dashboard
# through (its odd version has an epoch: that is the release's own number on PyPI).
python_packages=('moto[server]==5.*' 'cfn-lint==1.*' 'parliament==1.6.4' 'pytest==9.*' 'kubernetes-validate==1.37.0'
                 'grafana-foundation-sdk==1769699998!10.1.0')
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto, cfnlint, parliament, pytest, boto3, yaml, kubernetes_validate, grafana_foundation_sdk' 2>/dev/null; then
    echo "install-deps: python venv .venv with ${python_packages[*]}" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check "${python_packages[@]}"
fi
command -v swift >/dev/null || { echo "install-deps: swift not on PATH (expected a Swift 6 toolchain, e.g. /opt/swift/usr/bin)" >&2; exit 1; }
