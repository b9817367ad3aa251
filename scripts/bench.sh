#!/usr/bin/env bash
# `make bench`: kube-elector's watch-driven followers (--follow watch) against client-go's
# algorithm (--follow poll), side by side in one run against one simulator, with 3 and with 50
# candidate processes. Builds the release binaries, prints a table to stdout (progress on stderr)
# and writes every sample to $CARGO_TARGET_DIR/bench/results.json (default target/bench/).
# Takes about 5 minutes on 2 cores. Method and recorded figures: docs/benchmarks.md.
#
#   scripts/bench.sh                                   the defaults: lease 3s, renew 2s, retry 500ms
#   scripts/bench.sh --sizes 3 --handovers 3 --failovers 2 --window 5s     a quick look
#   scripts/bench.sh --lease-duration 15s --renew-deadline 10s --retry-period 2s   client-go's defaults
#   scripts/bench.sh --help                            every flag
set -euo pipefail
. "$(dirname "$0")/common.sh"

echo "bench: building release binaries (kube-elector, bench)" >&2
cargo build --release --quiet -p kube-elector -p kube-elector-harness --bin kube-elector --bin bench

exec "$TARGET_DIR/release/bench" --out "$TARGET_DIR/bench/results.json" "$@"
