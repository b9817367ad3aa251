#!/usr/bin/env bash
# The chaos safety suite: 5 real electors (one with its wall clock 7 minutes off under
# libfaketime) against the simulator, random faults in combination, and the safety checks.
# Exits non-zero on any violation. Extra arguments go to the harness (see `chaos --help`).
#
# Without arguments: a random seed and a lock kind drawn from it, each candidate watching or
# polling. In CI (CI=true, which .ci/run exports) the seed is pinned so a failure can be repeated,
# and every lock kind is run: a full run on Leases, then shorter runs on ConfigMaps and
# Endpoints. A failing run prints the exact command that repeats it. The ConfigMap run is also in
# exec mode (--exec): every elector runs a recording child, and no two children may run at once.
set -euo pipefail
. "$(dirname "$0")/common.sh"
cargo build --quiet -p kube-elector --bin kube-elector
cargo build --quiet -p kube-elector-harness --bin chaos
chaos=("$TARGET_DIR/debug/chaos" --elector "$TARGET_DIR/debug/kube-elector")

# The seed CI runs with; change it only together with a note in the commit saying why.
ci_seed=1717

if [ "$#" -gt 0 ] || [ "${CI:-}" != "true" ]; then
  exec "${chaos[@]}" "$@"
fi
# Sized so the three runs take about 4 minutes on two cores (CI's budget for all of `make test` is
# 20): about 700 faults and 170 leader changes on Leases, about 120 and 35 on each of the others.
"${chaos[@]}" --seed "$ci_seed" --lock-type leases --min-changes 150
"${chaos[@]}" --seed "$ci_seed" --lock-type configmaps --min-seconds 20 --min-changes 30 --max-seconds 120 --exec
"${chaos[@]}" --seed "$ci_seed" --lock-type endpoints --min-seconds 20 --min-changes 30 --max-seconds 120
