#!/usr/bin/env bash
# Probe (/readyz, /livez) and renew latency of a leader, quiet and under 1,000 idle or slow-header
# connections, a /readyz flood and a /metrics scrape flood (wrk), in one run (harness/src/bin/load.rs).
set -euo pipefail
. "$(dirname "$0")/common.sh"
command -v wrk >/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
echo "load: building release binaries (kube-elector, load)" >&2
cargo build --quiet --release -p kube-elector -p kube-elector-harness --bin kube-elector --bin load
exec "$TARGET_DIR/release/load" --elector "$TARGET_DIR/release/kube-elector" "$@"
