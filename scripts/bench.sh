#!/usr/bin/env bash
# `make bench`: kube-elector's watch-driven followers (--follow watch) against client-go's
# algorithm (--follow poll), side by side in one run against one simulator, with 3, 50 and 200
# candidate processes. Builds the release binaries, prints a table to stdout (progress on stderr)
# and writes every sample to $CARGO_TARGET_DIR/bench/results.json (default target/bench/).
# Takes about 6 minutes on 2 cores after the release build (7 with a baseline and 4 failovers,
# plus its build). Method and figures: docs/benchmarks.md.
#
#   scripts/bench.sh                                   the defaults: lease 3s, renew 2s, retry 500ms
#   scripts/bench.sh --sizes 3 --handovers 3 --failovers 2 --window 5s     a quick look
#   scripts/bench.sh --lease-duration 15s --renew-deadline 10s --retry-period 2s   client-go's defaults
#   scripts/bench.sh --baseline-rev REV [flags]        also run REV's kube-elector (--follow watch)
#                                                      in the same run: a change against its base
#   scripts/bench.sh --help                            every flag
set -euo pipefail
. "$(dirname "$0")/common.sh"

baseline=()
if [[ "${1:-}" == --baseline-rev ]]; then
  rev=${2:?--baseline-rev needs a git revision, such as main}
  shift 2
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  echo "bench: building the baseline kube-elector from $rev" >&2
  git archive "$rev" | tar -x -C "$src"
  # The same target directory, so the dependencies are built once; the binary is copied out
  # before this tree's build replaces it.
  (cd "$src" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --release --quiet -p kube-elector --bin kube-elector)
  mkdir -p "$TARGET_DIR/bench-baseline"
  cp "$TARGET_DIR/release/kube-elector" "$TARGET_DIR/bench-baseline/kube-elector"
  baseline=(--baseline "$TARGET_DIR/bench-baseline/kube-elector")
fi

echo "bench: building release binaries (kube-elector, bench)" >&2
cargo build --release --quiet -p kube-elector -p kube-elector-harness --bin kube-elector --bin bench

exec "$TARGET_DIR/release/bench" --out "$TARGET_DIR/bench/results.json" "${baseline[@]}" "$@"
