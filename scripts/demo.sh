#!/usr/bin/env bash
# `make demo`: the first thing to run. Builds what it needs (debug profile), starts the kube-sim
# API simulator and three kube-elector processes, prints the URLs of each one's /status, /readyz
# and /metrics, then shows who leads (with fencing tokens) while it crashes (SIGKILL) and stops
# (SIGTERM) leaders and followers on a schedule and restarts them, printing each failover's kind
# and duration. Runs 60 s, then stops every process it started; Ctrl-C stops it early.
#
#   scripts/demo.sh                      60 s, --follow watch
#   scripts/demo.sh --duration 2m        longer
#   scripts/demo.sh --follow poll        the same with client-go's algorithm, for comparison
#   scripts/demo.sh --help               every flag (timings, --every)
set -euo pipefail
. "$(dirname "$0")/common.sh"

echo "demo: building kube-elector, kube-sim and the demo (first build takes a few minutes)" >&2
cargo build --quiet -p kube-elector -p kube-sim -p kube-elector-harness \
  --bin kube-elector --bin kube-sim --bin demo

exec "$TARGET_DIR/debug/demo" "$@"
