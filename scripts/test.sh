#!/usr/bin/env bash
# The test command (README: `make test`). Installs what is missing, starts the real peers on
# 127.0.0.1 (moto with signature checking on), runs every test, and stops the peers on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

scripts/install-deps.sh
scripts/peers.sh start
trap 'scripts/peers.sh stop' EXIT
# shellcheck source=/dev/null
. .peers/env

# The user-data templates compiled into the binary must be those in userdata/ (regenerate with
# scripts/embed-userdata.py after editing them).
python3 scripts/embed-userdata.py --check

# Build first so a compile error is reported as one, not as a test failure. The tests that
# run kscaler as a process use the release binary, the one that ships: the optimizer has
# miscompiled code here that debug builds ran correctly (see PrometheusMetricsSource.swift).
swift build --build-tests
# All products, as the generate-manual plugin in scripts/package-deb.sh builds them: built alone,
# kscaler's module compiles differently, and each build would redo it after the other.
swift build -c release
export KSTEST_BINARY="$PWD/.build/release/kscaler"
swift test --skip-build

# Shell, cloud-init, systemd and CloudFormation (userdata/, infra/), and the closed loop:
# kscaler driving a simulated cluster on moto and Prometheus (infra/local/).
# Two sessions: each suite imports its own conftest module by name.
.venv/bin/python -m pytest infra/tests -q -p no:cacheprovider
.venv/bin/python -m pytest infra/local/tests -q -p no:cacheprovider
