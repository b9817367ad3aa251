#!/usr/bin/env bash
# Probe (/readyz, /livez) and renew latency of a leader, quiet and under 1,000 idle or slow-header
# connections, a /readyz flood and a /metrics scrape flood (wrk), in one run (harness/src/bin/load.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
cargo build --quiet --release -p kube-elector --bin kube-elector
cargo build --quiet --release -p kube-elector-harness --bin load
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/load" --elector "$target_dir/release/kube-elector" "$@"
