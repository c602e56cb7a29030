#!/usr/bin/env bash
# `make bench`: kscaler's benchmark (figures and PASS/MISS against the targets; see
# BENCHMARKS.md). Installs hyperfine and GNU time if missing, builds the release binaries
# once, then benchmarks/bench.py stands up moto, a simulated cluster exporter and Prometheus
# on 127.0.0.1, measures, reports, and stops everything it started.
#
#   benchmarks/bench.sh [--runs N] [--workers N] [--results FILE.json]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${KSCALER_VENV:-.venv}

missing=()
command -v hyperfine > /dev/null || missing+=(hyperfine)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]} (Debian packages)" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" > /dev/null \
        || { $sudo apt-get update > /dev/null && $sudo apt-get install -y --no-install-recommends "${missing[@]}" > /dev/null; }
fi
"$venv/bin/python" -c 'import moto.server, boto3' 2> /dev/null \
    || { echo "bench: moto is not installed in $venv: run scripts/install-deps.sh" >&2; exit 1; }
[ -x "${KSTEST_PROMETHEUS_BIN:-/usr/bin/prometheus}" ] \
    || { echo "bench: no Prometheus at ${KSTEST_PROMETHEUS_BIN:-/usr/bin/prometheus}: run scripts/install-deps.sh" >&2; exit 1; }

started=$(date +%s)
swift build -c release --static-swift-stdlib
echo "bench: release build took $(( $(date +%s) - started )) s" >&2
# Every figure also goes to .build/bench-results.json (ignored by git), for comparisons.
exec "$venv/bin/python" benchmarks/bench.py --bin .build/release --results .build/bench-results.json "$@"
