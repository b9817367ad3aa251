#!/usr/bin/env bash
# Proves the shipping artefacts offline: Dockerfile, k8s/ manifests, alert rules, Grafana dashboard.
# Run scripts/install-tools.sh first (apt: prometheus podman buildah runc; pip; npm ci).
#
#   scripts/check-ship.sh            static checks, then the live proofs (builds the binaries)
#   scripts/check-ship.sh --static   static checks only (no Rust build, no processes)
#
# Static: hadolint; kustomize renders of k8s/, k8s/pod-label/, k8s/monitoring/, k8s/exec/,
#   k8s/endpointslice/, k8s/proxy/;
#   kubernetes-validate --strict (oldest supported and newest Kubernetes); README invariants and
#   a rollout/PDB model (scripts/ship/validate_manifests.py); two copies built with
#   k8s/components/election elect through distinct Leases (check_copies.py); the service-account token only in the
#   elector container (credentials_check.py); the pod-label admission policy's CEL against allowed
#   and denied requests (admission_policy_test.py); checkov on every render and the Dockerfile,
#   skips listed with reasons in scripts/ship/checkov-skips.yaml (checkov_scan.py); PodMonitor/PrometheusRule through
#   kubernetes-models and tsc; rules file regenerated and compared; promtool check rules/config;
#   promtool test rules with a mutation check; dashboard regenerated and compared, type-checked
#   against @grafana/schema, every query parsed by promtool; each alert's runbook_url names its
#   own section of docs/runbook.md; dependency policy: `cargo deny check licenses bans sources`
#   (deny.toml; advisories are left out on purpose: they need GitHub, unreachable from CI).
# Live: static binaries (crt-static, built with `cargo auditable`: the dependency list is embedded
#   in the binary's .dep-v0 section, and checked against Cargo.lock) -> the image from the one Dockerfile (builder stage replaced
#   by the local binary; its build context checked to hold the workspace) -> container against
#   kube-sim (lead, SIGTERM, release, exit 0);
#   3 electors + kube-sim + Prometheus: failovers, every dashboard query and alert expression.
#   kube-sim and the electors are run by the harness's fleet binary (a debug build), which
#   scripts/ship/live.py drives.
#
# Environment: CARGO_TARGET_DIR (default: target), SHIP_WORKDIR (default: a temp dir, removed on
# success), SHIP_PNG=1 to regenerate grafana/live-proof.png (the plot in grafana/README.md).
set -euo pipefail
. "$(dirname "$0")/common.sh"
ROOT=$PWD

MODE=all
case "${1:-}" in
  --static) MODE=static ;;
  "") ;;
  *) echo "usage: $0 [--static]" >&2; exit 2 ;;
esac

step() { printf '\n== %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "check-ship: '$1' not found; run scripts/install-tools.sh" >&2; exit 1; }
}
for t in kubectl promtool kubernetes-validate hadolint node python3; do need "$t"; done
# checkov lives in its own venv (scripts/install-tools.sh); CHECKOV overrides.
CHECKOV=${CHECKOV:-$(command -v checkov || echo "${KUBE_ELECTOR_TOOLS:-$HOME/.cache/kube-elector-tools}/checkov/bin/checkov")}
[ -x "$CHECKOV" ] || { echo "check-ship: checkov not found at $CHECKOV; run scripts/install-tools.sh" >&2; exit 1; }
python3 -c 'import cel' 2>/dev/null || { echo "check-ship: python module cel missing; run scripts/install-tools.sh" >&2; exit 1; }
[ -d scripts/ship/node_modules ] || { echo "check-ship: scripts/ship/node_modules missing; run scripts/install-tools.sh" >&2; exit 1; }
# cargo-deny and cargo-auditable: installed by scripts/install-tools.sh into its cargo root.
CARGO_TOOLS=${KUBE_ELECTOR_TOOLS:-$HOME/.cache/kube-elector-tools}/cargo
export PATH="$CARGO_TOOLS/bin:$PATH"
need cargo-deny

WORK=${SHIP_WORKDIR:-$(mktemp -d -t check-ship.XXXXXX)}
mkdir -p "$WORK"
keep_work=1
trap 'if [ "$keep_work" = 0 ]; then rm -rf "$WORK"; else echo "check-ship: work files kept in $WORK" >&2; fi' EXIT
START=$(date +%s)

# ------------------------------------------------------------------------------------- static
step "Dockerfile: hadolint"
hadolint Dockerfile
hadolint k8s/exec/Dockerfile.app
echo "  hadolint: clean (Dockerfile, k8s/exec/Dockerfile.app)"

step "k8s: kustomize renders"
kubectl kustomize k8s/ > "$WORK/base.yaml"
kubectl kustomize k8s/pod-label/ > "$WORK/pod-label.yaml"
kubectl kustomize k8s/monitoring/ > "$WORK/monitoring.yaml"
kubectl kustomize k8s/exec/ > "$WORK/exec.yaml"
kubectl kustomize k8s/endpointslice/ > "$WORK/endpointslice.yaml"
kubectl kustomize k8s/proxy/ > "$WORK/proxy.yaml"
for f in base pod-label monitoring exec endpointslice proxy; do
  echo "  $f: $(grep -c '^kind:' "$WORK/$f.yaml") objects"
done

step "k8s: kubernetes-validate --strict (core kinds)"
for v in 1.30.0 ""; do
  kubernetes-validate --strict --quiet ${v:+-k "$v"} "$WORK/base.yaml" "$WORK/pod-label.yaml" \
    "$WORK/exec.yaml" "$WORK/endpointslice.yaml" "$WORK/proxy.yaml"
  echo "  base, pod-label, exec, endpointslice and proxy: valid against Kubernetes ${v:-latest known to kubernetes-validate}"
done

step "k8s: invariants, rollout and PDB model"
python3 scripts/ship/validate_manifests.py "$WORK/base.yaml" "$WORK/pod-label.yaml" "$WORK/monitoring.yaml" \
  --operator-out "$WORK/operator.json" --endpointslice "$WORK/endpointslice.yaml" --proxy "$WORK/proxy.yaml"

step "k8s: API credentials only in the elector container"
python3 scripts/ship/credentials_check.py "$WORK/base.yaml" "$WORK/pod-label.yaml" "$WORK/endpointslice.yaml" \
  "$WORK/proxy.yaml"

step "k8s: three copies in one namespace through k8s/components/election* (distinct Leases, slices)"
kubectl kustomize k8s/examples/two-copies/alpha/ > "$WORK/copy-alpha.yaml"
kubectl kustomize k8s/examples/two-copies/beta/ > "$WORK/copy-beta.yaml"
kubectl kustomize k8s/examples/two-copies/gamma/ > "$WORK/copy-gamma.yaml"
kubernetes-validate --strict --quiet "$WORK/copy-alpha.yaml" "$WORK/copy-beta.yaml" "$WORK/copy-gamma.yaml"
python3 scripts/ship/check_copies.py "$WORK/copy-alpha.yaml" "$WORK/copy-beta.yaml" "$WORK/copy-gamma.yaml"

step "k8s: pod-label admission policy, its CEL evaluated against API-server-shaped requests"
python3 scripts/ship/admission_policy_test.py "$WORK/pod-label.yaml"

step "security scan: checkov on every rendered kustomization and on the Dockerfile"
mkdir -p "$WORK/checkov"
cp "$WORK/base.yaml" "$WORK/pod-label.yaml" "$WORK/monitoring.yaml" "$WORK/exec.yaml" "$WORK/endpointslice.yaml" \
  "$WORK/proxy.yaml" "$WORK/checkov/"
python3 scripts/ship/checkov_scan.py --checkov "$CHECKOV" --rendered "$WORK/checkov" --dockerfile Dockerfile

step "alert rules: generated file up to date, promtool check"
python3 scripts/ship/gen_rules.py --check
promtool check rules k8s/monitoring/kube-elector.rules.yml

step "alert rules: promtool test rules (+ mutation check)"
python3 scripts/ship/rules_test.py "$WORK/rules-test"

step "prometheus.yml: promtool check config"
# Debian's Prometheus is built without Kubernetes service discovery, so check a copy with the
# kubernetes_sd_configs block swapped for an empty static config (the relabelling, rule files and
# everything else are checked as shipped; the live proof runs the relabelling for real).
python3 - "$WORK" <<'EOF'
import pathlib, shutil, sys, yaml
work = pathlib.Path(sys.argv[1]) / "promcfg"
work.mkdir(exist_ok=True)
cfg = yaml.safe_load(open("k8s/monitoring/prometheus.yml"))
for job in cfg["scrape_configs"]:
    sd = job.pop("kubernetes_sd_configs", None)
    if sd is not None:
        if [s.get("role") for s in sd] != ["pod"]:
            sys.exit(f"job {job['job_name']}: expected one kubernetes_sd_config with role pod, got {sd}")
        job["static_configs"] = [{"targets": []}]
(work / "prometheus.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
shutil.copy("k8s/monitoring/kube-elector.rules.yml", work)
EOF
promtool check config "$WORK/promcfg/prometheus.yml"

step "grafana: dashboard generated file up to date, schema, queries parse"
python3 scripts/ship/gen_dashboard.py --check
(cd scripts/ship && node validate-schemas.mjs "$WORK/operator.json" "$ROOT/grafana/kube-elector.json")
python3 scripts/ship/dashboard-queries.py grafana/kube-elector.json --var namespace=default \
  --var election=demo --json > "$WORK/queries.json"
python3 - "$WORK" <<'EOF'
import json, pathlib, sys, yaml
work = pathlib.Path(sys.argv[1])
qs = json.loads((work / "queries.json").read_text())
rules = [{"record": f"dashboard:query_{i}", "expr": q["expr"]} for i, q in enumerate(qs)]
(work / "dashboard-queries.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
print(f"  {len(qs)} queries ({sum(q['kind'] == 'panel' for q in qs)} panel targets) extracted")
EOF
promtool check rules "$WORK/dashboard-queries.rules.yml" >/dev/null
echo "  every dashboard query parses as PromQL (promtool)"

step "dependencies: cargo deny check licenses bans sources (deny.toml)"
# Not `advisories`: the RustSec database is fetched from GitHub, which CI cannot reach. Run
# `cargo deny check advisories` where it can.
cargo deny --log-level error check licenses bans sources
echo "  licenses, bans (duplicates included) and sources: ok; advisories skipped (needs GitHub)"

echo
echo "static checks passed in $(( $(date +%s) - START ))s"
if [ "$MODE" = static ]; then keep_work=0; exit 0; fi

# --------------------------------------------------------------------------------------- live
for t in podman cargo prometheus cargo-auditable objcopy; do need "$t"; done
TRIPLE=x86_64-unknown-linux-gnu
BIN_DIR="$TARGET_DIR/$TRIPLE/release"

step "build: static release binaries (crt-static), dependency list embedded (cargo auditable)"
RUSTFLAGS='-C target-feature=+crt-static' cargo auditable build --release --locked --target "$TRIPLE" \
  -p kube-elector -p kube-sim --bins
for b in kube-elector kube-sim; do
  [ -x "$BIN_DIR/$b" ] || { echo "check-ship: $BIN_DIR/$b was not built" >&2; exit 1; }
done
if ldd "$BIN_DIR/kube-elector" 2>&1 | grep -q '=>'; then
  echo "check-ship: $BIN_DIR/kube-elector is dynamically linked; it cannot run on scratch" >&2
  ldd "$BIN_DIR/kube-elector" >&2
  exit 1
fi
echo "  kube-elector: $(stat -c %s "$BIN_DIR/kube-elector") bytes, static"
python3 scripts/ship/sbom_check.py "$BIN_DIR/kube-elector"

step "build: the harness's fleet binary (starts kube-sim and the electors for live.py)"
cargo build --quiet --locked -p kube-elector-harness --bin fleet
FLEET="$TARGET_DIR/debug/fleet"
[ -x "$FLEET" ] || { echo "check-ship: $FLEET was not built" >&2; exit 1; }
echo "  $FLEET"
LIVE_START=$(date +%s)

step "image: podman build (builder stage = the local static binary)"
export CONTAINERS_CONF="$WORK/containers.conf"
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits=["nofile=1024:1024","nproc=1024:1024"]
[engine]
runtime="runc"
EOF
mkdir -p "$WORK/builder"
cp "$BIN_DIR/kube-elector" "$WORK/builder/kube-elector"
IMAGE=localhost/kube-elector:check-ship
REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
podman build -q --build-context builder="$WORK/builder" --build-arg REVISION="$REVISION" -t "$IMAGE" . >/dev/null
echo "  built $IMAGE"

step "image: the builder stage's context (.dockerignore) holds the whole workspace"
# What `docker build .` sends to the builder stage, by podman's own .dockerignore handling; cargo
# must resolve the workspace and the lock file from it (offline, for the image's target).
printf 'FROM scratch\nCOPY . /ctx/\n' > "$WORK/context.Containerfile"
podman build -q -f "$WORK/context.Containerfile" -t localhost/kube-elector-context:check-ship . >/dev/null
cid=$(podman create localhost/kube-elector-context:check-ship /none)
mkdir -p "$WORK/context"
podman export "$cid" | tar -x -C "$WORK/context"
podman rm "$cid" >/dev/null
podman rmi -f localhost/kube-elector-context:check-ship >/dev/null 2>&1 || true
(cd "$WORK/context/ctx" && cargo tree --locked --offline --target "$TRIPLE" -p kube-elector -e normal,build >/dev/null)
echo "  context: $(du -sk "$WORK/context/ctx" | cut -f1) KiB; cargo resolves kube-elector from it (--locked --offline)"

step "live: container against kube-sim"
python3 scripts/ship/live.py container --image "$IMAGE" --sim "$BIN_DIR/kube-sim" --fleet "$FLEET" \
  --workdir "$WORK/container"
podman rmi -f "$IMAGE" >/dev/null 2>&1 || true

step "live: 3 electors, failovers, Prometheus, every dashboard query and alert expression"
PNG_ARGS=()
[ "${SHIP_PNG:-0}" = 1 ] && PNG_ARGS=(--png grafana/live-proof.png)
python3 scripts/ship/live.py prometheus --elector "$BIN_DIR/kube-elector" --sim "$BIN_DIR/kube-sim" \
  --fleet "$FLEET" --workdir "$WORK/prometheus" --dashboard grafana/kube-elector.json "${PNG_ARGS[@]}"

keep_work=0
echo
echo "check-ship passed: live part $(( $(date +%s) - LIVE_START ))s, total $(( $(date +%s) - START ))s"
