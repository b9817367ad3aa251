#!/usr/bin/env bash
# The chaos safety suite: 5 real electors (one with its wall clock 7 minutes off under
# libfaketime) against the simulator, random faults in combination, and the safety checks.
# Exits non-zero on any violation. Extra arguments go to the harness (see `chaos --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p kube-elector --bin kube-elector
cargo build --quiet -p kube-elector-harness --bin chaos
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/debug/chaos" --elector "$target_dir/debug/kube-elector" "$@"
