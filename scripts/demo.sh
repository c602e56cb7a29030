#!/usr/bin/env bash
# The README's first command (`make demo`): installs what is missing, builds kscaler (release),
# and runs the local sandbox: the scenario "quiet, burst, quiet" twice side by side — kscaler's
# policy and the classic one-node-per-run CPU-usage policy — showing each run's decision live,
# then a summary (sandbox-out/summary.md) and a chart (sandbox-out/chart.svg).
# Everything runs on 127.0.0.1 and is stopped on exit, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d /opt/swift/usr/bin ] && export PATH="/opt/swift/usr/bin:$PATH"

scripts/install-deps.sh
echo "demo: building kscaler (release; the first build takes a few minutes)" >&2
mkdir -p sandbox-out
if ! swift build -c release --product kscaler > sandbox-out/build.log 2>&1; then
    tail -n 40 sandbox-out/build.log >&2
    echo "demo: the release build failed; the whole log is in sandbox-out/build.log" >&2
    exit 1
fi
export KSTEST_BINARY="${KSTEST_BINARY:-$PWD/.build/release/kscaler}"
exec .venv/bin/python infra/local/sandbox.py demo --out sandbox-out "$@"
